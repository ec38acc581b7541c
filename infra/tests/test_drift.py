"""pytest: the contract/drift test on the real stacks (infra/tests/drift.py).

Run by scripts/check-infra; alone: .venv/bin/python -m pytest infra/tests
"""

import copy
import re

import pytest

import drift


@pytest.fixture(scope="module")
def contract():
    return drift.load_contract()


@pytest.fixture(scope="module")
def iam():
    return drift.load_iam()


@pytest.fixture(scope="module")
def models():
    out = {}
    for kind, path in (("sam", drift.SAM_TEMPLATE), ("tf", drift.TF_MODULE)):
        model, problems = drift.read_stack(kind, path)
        assert model is not None, problems
        assert not problems, problems
        out[kind] = model
    return out


def test_contract_page_parses(contract):
    assert contract["hash_key"] == ("pk", "S") and contract["range_key"] == ("sk", "S")
    assert set(contract["gsis"]) == {"by-status-shard", "by-wake"}
    assert "status" in contract["gsis"]["by-status-shard"]["attributes"]
    assert "lease_owner" not in contract["gsis"]["by-status-shard"]["attributes"]
    assert contract["filter"]["eventName"] == ["INSERT"]
    assert set(contract["env"]) >= {
        "CAIRN_TABLE",
        "CAIRN_COMPONENTS_DIR",
        "CAIRN_SCHEDULER_GROUP",
        "CAIRN_SCHEDULER_ROLE_ARN",
        "CAIRN_SCHEDULER_DLQ_ARN",
        "CAIRN_LEASE_SECONDS",
        "CAIRN_INBOX_GRACE_SECONDS",
        "CAIRN_BATCH_CONCURRENCY",
        "CAIRN_ALLOW_HTTP",
        "CAIRN_HTTP_EXTRA_ROOTS",
    }
    assert contract["env_params"] == {
        "CAIRN_LEASE_SECONDS": "LeaseSeconds",
        "CAIRN_INBOX_GRACE_SECONDS": "InboxGraceSeconds",
        "CAIRN_BATCH_CONCURRENCY": "BatchConcurrency",
        "CAIRN_INDEX_SHARDS": "IndexShards",
        "CAIRN_PAYLOAD_THRESHOLD_BYTES": "PayloadThresholdBytes",
        "CAIRN_ALLOW_HTTP": "AllowHttp",
        "CAIRN_HTTP_EXTRA_ROOTS": "HttpExtraRoots",
        "CAIRN_ACTIVITY_ENV": "ActivityEnv",
        "CAIRN_ACTIVITY_SECRETS": "ActivitySecrets",
        "CAIRN_ACTIVITY_AWS_CREDENTIALS": "ActivityAwsCredentials",
    }
    assert contract["params"] == {
        "MemorySize": 512,
        "Timeout": 900,
        "LogRetentionDays": 30,
        "EnableFunctionUrl": False,
        "SweepRate": "rate(1 minute)",
        "LeaseSeconds": 30,
        "InboxGraceSeconds": 60,
        "BatchConcurrency": 8,
        "IndexShards": 128,
        "PayloadThresholdBytes": 65536,
        "PayloadRetentionDays": 365,
        "ParallelizationFactor": 2,
        "NamePrefix": "",
        "ReservedConcurrency": -1,
        "AlarmTopicArn": "",
        "AllowHttp": "",
        "HttpExtraRoots": "",
        "ActivityEnv": "",
        "ActivitySecrets": "",
        "ActivitySecretsKmsKeyArn": "",
        "ActivityAwsCredentials": False,
    }
    # SAM's empty prefix keeps CloudFormation's generated names; Terraform's keeps "cairn".
    # The HTTP lists: SAM an empty string, Terraform an empty list (joined: "").
    # The activities' variables and secrets: SAM a string of pairs, Terraform a map.
    assert contract["tf_param_defaults"] == {
        "NamePrefix": "cairn",
        "AllowHttp": [],
        "HttpExtraRoots": [],
        "ActivityEnv": {},
        "ActivitySecrets": {},
    }
    assert contract["param_ranges"]["ParallelizationFactor"] == (1, 10)
    assert contract["param_ranges"]["ReservedConcurrency"] == (-1, None)
    assert contract["reserved_concurrency_param"] == "ReservedConcurrency"
    assert contract["deletion_protection"] is True
    assert contract["sweep_param"] == "SweepRate" and contract["parallelization_param"] == "ParallelizationFactor"
    assert contract["schedule_retry_policy"] == (86400, 185)
    assert contract["scheduler_dlq_encrypted"] and contract["on_failure_encrypted"]
    assert contract["max_retries"] == 10  # the stream mapping's, not the schedules' 185
    assert contract["payload_bucket"] == {"sse": "AES256", "prefix": "payloads/", "retention_param": "PayloadRetentionDays"}
    assert contract["param_ranges"]["PayloadRetentionDays"] == (1, None)


def test_contract_alarms_names_and_caller_parse(contract):
    assert set(contract["alarms"]) == {
        "stream-iterator-age",
        "function-errors",
        "function-throttles",
        "dead-letter",
        "scheduler-dead-letter",
        "table-throttles",
        "scheduler-target-errors",
        "scheduler-dropped",
    }
    a = contract["alarms"]
    assert (a["stream-iterator-age"]["namespace"], a["stream-iterator-age"]["metrics"]) == ("AWS/Lambda", ["IteratorAge"])
    assert a["scheduler-dropped"]["namespace"] == "AWS/Scheduler"
    assert a["scheduler-dropped"]["metrics"] == ["InvocationDroppedCount"]
    assert a["scheduler-target-errors"]["metrics"] == ["TargetErrorCount"]
    assert [d["queue"] for d in a["dead-letter"]["dimsets"]] == ["dlq"]
    assert [d["queue"] for d in a["scheduler-dead-letter"]["dimsets"]] == ["scheduler_dlq"]
    # The table alarm covers reads and writes of the table and of each GSI.
    table = drift.expected_alarm(a["table-throttles"], contract)
    assert len(table["series"]) == 2 * (1 + len(contract["gsis"])) and table["expression"] == "SUM(all series)"
    assert contract["alarm_missing"] == "notBreaching" and contract["alarm_param"] == "AlarmTopicArn"
    assert contract["name_param"] == "NamePrefix"
    assert contract["names"]["dlq"] == "{param:NamePrefix}-dead-letter"
    assert contract["caller_url_condition"] == {"StringEquals": {"lambda:FunctionUrlAuthType": "AWS_IAM"}}
    assert contract["caller_output"] in contract["outputs"]


def test_contract_names_the_terraform_variables(contract):
    # drift.TF_VARIABLES reads Terraform variables as contract parameters.
    assert contract["tf_variables"] == drift.TF_VARIABLES


def test_iam_list_groups_are_all_placed(iam):
    # Every group of iam-actions.json has resources the stacks may use.
    for principal, groups in iam.items():
        for group in groups:
            assert (principal, group) in drift.ALLOWED_RESOURCES, f"{principal}/{group}: add it to drift.ALLOWED_RESOURCES"


@pytest.mark.parametrize("kind", ["sam", "tf"])
def test_stack_meets_contract_and_iam_list(kind, models, contract, iam):
    p = drift.Problems()
    drift.check_contract(models[kind], contract, iam, p)
    assert not p, "\n".join(p)


def test_sam_build_settings(models, contract):
    p = drift.Problems()
    drift.check_sam_only(models["sam"], contract, p)
    assert not p, "\n".join(p)


def test_terraform_packages_are_variables(models):
    p = drift.Problems()
    drift.check_tf_only(models["tf"], p)
    assert not p, "\n".join(p)


def test_stacks_agree(models):
    p = drift.Problems()
    drift.check_same(models["sam"], models["tf"], p)
    assert not p, "\n".join(p)


def test_granted_actions_equal_the_list_exactly(models, iam):
    for kind, model in models.items():
        for principal, role in (("function", "function_role"), ("scheduler_role", "scheduler_role")):
            granted = {a for _e, actions, _r, _c in model["roles"][role]["statements"] for a in actions}
            assert granted == {a for g in iam[principal].values() for a in g}, (kind, principal)
        granted = {a for _e, actions, _r, _c, _w in model["caller"]["statements"] for a in actions}
        assert granted == {a for g in iam["caller"].values() for a in g}, (kind, "caller")


def test_every_name_is_prefixed(models, contract):
    # Each stack names every resource it has from the prefix, and both name the same resources.
    for kind, model in models.items():
        assert not model["unknown_types"], (kind, model["unknown_types"])
        names = {k for k, _n, _u in model["names"]}
        assert names == set(contract["names"]), kind
        assert all(n.startswith("{param:NamePrefix}") or n.startswith("/aws/lambda/{param:NamePrefix}") for _k, n, _u in model["names"])


# The checker itself: a change in the model must show up as a problem.


@pytest.mark.parametrize(
    "mutate, expect",
    [
        (lambda m: m["table"]["gsis"].pop("by-wake"), "table GSI names"),
        (lambda m: m["table"]["gsis"]["by-status-shard"]["attributes"].append("lease_owner"), "GSI by-status-shard"),
        (lambda m: m["table"].update(stream_view_type="NEW_AND_OLD_IMAGES"), "stream view type"),
        (lambda m: m["table"].update(ttl_attribute="ttl"), "TTL attribute"),
        (lambda m: m["esm"].update(max_retries=-1), "max retries"),
        (lambda m: m["esm"]["filters"][0].update(eventName=["INSERT", "MODIFY"]), "stream mapping filters"),
        (lambda m: m["sweep"].update(expression="rate(5 minutes)"), "sweep expression"),
        (lambda m: m["params"].update(Timeout=60), "parameter Timeout default"),
        (lambda m: m["params"].update(MemorySize=256), "parameter MemorySize default"),
        (lambda m: m["params"].update(SweepRate="rate(5 minutes)"), "parameter SweepRate default"),
        (lambda m: m["params"].pop("LeaseSeconds"), "parameters: missing ['LeaseSeconds']"),
        (lambda m: m["param_ranges"].update(ParallelizationFactor=(1, 100)), "parameter ParallelizationFactor allowed range"),
        (lambda m: m["function"]["env"].pop("CAIRN_LEASE_SECONDS"), "function environment names"),
        (lambda m: m["function"]["env"].update(CAIRN_BATCH_CONCURRENCY="8"), "environment variable CAIRN_BATCH_CONCURRENCY"),
        (lambda m: m["function"]["env"].update(CAIRN_SCHEDULER_DLQ_ARN="{dlq.arn}"), "environment variable CAIRN_SCHEDULER_DLQ_ARN"),
        (lambda m: m["function"]["env"].pop("CAIRN_ALLOW_HTTP"), "function environment names"),
        (lambda m: m["function"]["env"].pop("CAIRN_HTTP_EXTRA_ROOTS"), "function environment names"),
        (lambda m: m["function"]["env"].update(CAIRN_ALLOW_HTTP="*"), "environment variable CAIRN_ALLOW_HTTP"),
        (lambda m: m["function"]["env"].update(CAIRN_HTTP_EXTRA_ROOTS=""), "environment variable CAIRN_HTTP_EXTRA_ROOTS"),
        (lambda m: m["function"]["env"].update(CAIRN_ALLOW_HTTP="{param:AllowHttp} as a list"), "environment variable CAIRN_ALLOW_HTTP"),
        (lambda m: m["params"].pop("AllowHttp"), "parameters: missing ['AllowHttp']"),
        (lambda m: m["params"].update(HttpExtraRoots=["/opt/ca.pem"]), "parameter HttpExtraRoots default"),
        # the activities' environment and secrets
        (lambda m: m["function"]["env"].pop("CAIRN_ACTIVITY_ENV"), "function environment names"),
        (lambda m: m["function"]["env"].pop("CAIRN_ACTIVITY_SECRETS"), "function environment names"),
        (lambda m: m["function"]["env"].update(CAIRN_ACTIVITY_SECRETS=""), "environment variable CAIRN_ACTIVITY_SECRETS"),
        (lambda m: m["function"]["env"].update(CAIRN_ACTIVITY_AWS_CREDENTIALS="true"), "environment variable CAIRN_ACTIVITY_AWS_CREDENTIALS"),
        (lambda m: m["params"].update(ActivityAwsCredentials=True), "parameter ActivityAwsCredentials default"),
        (
            lambda m: m["roles"]["function_role"]["statements"].append(
                ("Allow", ("ssm:GetParameters",), ("arn:{partition}:ssm:{region}:{account}:parameter/*",), "")
            ),
            "ssm:GetParameters on 'arn:{partition}:ssm:{region}:{account}:parameter/*'",
        ),
        (
            lambda m: m["roles"]["function_role"]["statements"].append(("Allow", ("ssm:GetParameter",), (drift.SECRET_ARNS,), "")),
            "actions not in infra/iam-actions.json: ['ssm:GetParameter']",
        ),
        (
            lambda m: m["roles"]["function_role"]["statements"].append(("Allow", ("kms:Decrypt",), ("*",), "")),
            "kms:Decrypt on '*'",
        ),
        (lambda m: m["esm"].update(parallelization=None), "stream mapping parallelization factor"),
        (lambda m: m["scheduler_queue"].update(encrypted=False), "schedule dead-letter queue encrypted"),
        (lambda m: m["outputs"].pop("SchedulerDeadLetterQueueUrl"), "outputs"),
        (
            lambda m: m["roles"]["function_role"]["statements"].append(("Allow", ("dynamodb:Scan",), ("{table.arn}",), "")),
            "actions not in infra/iam-actions.json",
        ),
        (
            lambda m: m["roles"]["scheduler_role"]["statements"].append(("Allow", ("lambda:InvokeFunction",), ("*",), "")),
            "lambda:InvokeFunction on '*'",
        ),
        (lambda m: m["roles"]["function_role"]["statements"].pop(), "not granted"),
        (
            lambda m: m["roles"]["scheduler_role"]["statements"].remove(
                ("Allow", ("sqs:SendMessage",), ("{scheduler_dlq.arn}",), "")
            ),
            "IAM scheduler_role: actions of infra/iam-actions.json not granted: ['sqs:SendMessage']",
        ),
        (
            lambda m: m["roles"]["scheduler_role"]["statements"].append(("Allow", ("sqs:SendMessage",), ("{dlq.arn}",), "")),
            "sqs:SendMessage on '{dlq.arn}'",
        ),
        (lambda m: m["roles"]["function_role"]["managed"].append("arn:aws:iam::aws:policy/AdministratorAccess"), "managed"),
        (lambda m: m["table"].update(deletion_protection=False), "table deletion protection"),
        (lambda m: m["table"].update(retain=False), "table kept by the stack"),
        (lambda m: m["function"].update(reserved_concurrency=None), "function reserved concurrency"),
        (lambda m: m["params"].update(NamePrefix=""), "parameter NamePrefix default"),
        (lambda m: m["params"].pop("AlarmTopicArn"), "parameters: missing ['AlarmTopicArn']"),
        (lambda m: m["param_ranges"].update(ReservedConcurrency=(0, None)), "parameter ReservedConcurrency allowed range"),
        (lambda m: m["outputs"].pop("CallerPolicyArn"), "outputs"),
        # the payload bucket
        (lambda m: m["payload_bucket"].update(encryption=[]), "payload bucket encryption"),
        (lambda m: m["payload_bucket"].update(public_access_blocked=False), "payload bucket public access blocked"),
        (lambda m: m["payload_bucket"].update(expiration=[("payloads/", 30)]), "payload bucket expiration"),
        (lambda m: m["payload_bucket"].update(retain=False), "payload bucket kept by the stack"),
        (lambda m: m["function"]["env"].pop("CAIRN_PAYLOAD_BUCKET"), "function environment names"),
        (lambda m: m["outputs"].pop("PayloadBucketName"), "outputs"),
        (
            lambda m: m["roles"]["function_role"]["statements"].append(("Allow", ("s3:GetObject",), ("{payload_bucket.arn}/*",), "")),
            "s3:GetObject on '{payload_bucket.arn}/*'",
        ),
        # alarms
        (lambda m: m["alarms"].pop("{param:NamePrefix}-scheduler-dropped"), "alarms: missing"),
        (lambda m: m["alarms"]["{param:NamePrefix}-function-errors"].update(threshold=50), "function-errors threshold"),
        (lambda m: m["alarms"]["{param:NamePrefix}-dead-letter"].update(actions=[]), "dead-letter actions"),
        (lambda m: m["alarms"]["{param:NamePrefix}-stream-iterator-age"].update(treat_missing="breaching"), "treat_missing"),
        (
            lambda m: m["alarms"]["{param:NamePrefix}-scheduler-target-errors"].update(
                series=[("AWS/Events", "FailedInvocations", (("ScheduleGroup", "{schedule_group.name}"),), "Sum", 300)]
            ),
            "scheduler-target-errors series",
        ),
        (
            # the schedule DLQ alarm watching the other queue
            lambda m: m["alarms"]["{param:NamePrefix}-scheduler-dead-letter"].update(
                series=[("AWS/SQS", "ApproximateNumberOfMessagesVisible", (("QueueName", "{dlq.name}"),), "Maximum", 300)]
            ),
            "scheduler-dead-letter series",
        ),
        (lambda m: m["alarms"]["{param:NamePrefix}-table-throttles"]["series"].pop(), "table-throttles series"),
        # names
        (lambda m: m["names"].append(("dlq", "cairn-dead-letter-2", None)), "names: dlq is named"),
        (lambda m: m["names"].append(("alarm", "{param:NamePrefix}-extra", None)), "names: alarm named"),
        (lambda m: m["unknown_types"].append("aws_sns_topic"), "unknown to the name check"),
        # the callers' policy
        (lambda m: m["caller"]["statements"].pop(), "actions of infra/iam-actions.json not granted: ['lambda:InvokeFunctionUrl']"),
        (lambda m: m["caller"]["statements"].append(("Allow", ("lambda:GetFunction",), ("{function.arn}",), "", "")), "actions not in infra/iam-actions.json"),
        (lambda m: m["caller"]["statements"].append(("Allow", ("lambda:InvokeFunction",), ("*",), "", "")), "lambda:InvokeFunction on '*'"),
        (lambda m: m["caller"]["statements"].__setitem__(1, m["caller"]["statements"][1][:4] + ("",)), "granted always"),
        (lambda m: m["caller"]["statements"].__setitem__(1, m["caller"]["statements"][1][:3] + ("", drift.URL_ON)), "with condition none"),
    ],
)
def test_checker_notices(mutate, expect, models, contract, iam):
    model = copy.deepcopy(models["tf"])
    mutate(model)
    p = drift.Problems()
    drift.check_contract(model, contract, iam, p)
    assert any(expect in msg for msg in p), list(p)


# How each stack turns a list parameter into an environment string.


def _tf_env(tmp_path, allow_http_value: str, allow_http_type: str = "list(string)"):
    """The Terraform module with CAIRN_ALLOW_HTTP set to `allow_http_value`, read into the model."""
    found = {"value": 0, "type": 0}
    for src in sorted(drift.TF_MODULE.glob("*.tf")):
        text = src.read_text()
        found["value"] += text.count('join(",", var.allow_http)')
        text = text.replace('join(",", var.allow_http)', allow_http_value)
        head, sep, rest = text.partition('variable "allow_http" {\n')
        if sep:
            found["type"] += 1
            rest = rest.replace("type        = list(string)", f"type        = {allow_http_type}", 1)
            text = head + sep + rest
        (tmp_path / src.name).write_text(text)
    assert found == {"value": 1, "type": 1}, f"the module changed; update this test ({found})"
    model, problems = drift.read_stack("tf", tmp_path)
    assert model is not None, problems
    return model["function"]["env"]["CAIRN_ALLOW_HTTP"]


def test_terraform_list_variable_feeds_env_joined_with_commas(tmp_path):
    assert _tf_env(tmp_path, 'join(",", var.allow_http)') == "{param:AllowHttp}"


@pytest.mark.parametrize(
    "value, want",
    [
        ("var.allow_http", "{param:AllowHttp} as a list"),  # not joined (and not a string)
        ('join(";", var.allow_http)', {"join": ";", "items": "{param:AllowHttp} as a list"}),
    ],
)
def test_terraform_list_variable_not_joined_with_commas_is_noticed(tmp_path, value, want, contract, iam):
    assert _tf_env(tmp_path, value) == want
    # ... which the contract check reports.
    model, _ = drift.read_stack("tf", tmp_path)
    p = drift.Problems()
    drift.check_contract(model, contract, iam, p)
    assert any("environment variable CAIRN_ALLOW_HTTP" in msg for msg in p), list(p)


def test_terraform_string_variable_is_not_read_as_a_list(tmp_path):
    # A string variable used bare is the parameter itself.
    assert _tf_env(tmp_path, "var.allow_http", "string") == "{param:AllowHttp}"


def _sam_env(tmp_path, param_type: str, value: str):
    text = drift.SAM_TEMPLATE.read_text()
    text = text.replace("  AllowHttp:\n    Type: String\n", f"  AllowHttp:\n    Type: {param_type}\n", 1)
    text = text.replace("          CAIRN_ALLOW_HTTP: !Ref AllowHttp\n", f"          CAIRN_ALLOW_HTTP: {value}\n", 1)
    path = tmp_path / "template.yaml"
    path.write_text(text)
    model, problems = drift.read_stack("sam", path)
    assert model is not None, problems
    return model["function"]["env"]["CAIRN_ALLOW_HTTP"]


@pytest.mark.parametrize(
    "param_type, value, want",
    [
        ("String", "!Ref AllowHttp", "{param:AllowHttp}"),
        ("CommaDelimitedList", '!Join [",", !Ref AllowHttp]', "{param:AllowHttp}"),
        ("CommaDelimitedList", "!Ref AllowHttp", "{param:AllowHttp} as a list"),
        ("CommaDelimitedList", '!Join [" ", !Ref AllowHttp]', {"join": " ", "items": "{param:AllowHttp} as a list"}),
    ],
)
def test_sam_list_parameter_feeds_env_joined_with_commas(tmp_path, param_type, value, want):
    assert _sam_env(tmp_path, param_type, value) == want


def test_checker_notices_a_sam_name_set_without_the_prefix(models, contract, iam):
    model = copy.deepcopy(models["sam"])
    model["names"] = [(k, n, "cairn-dlq" if k == "dlq" else u) for k, n, u in model["names"]]
    p = drift.Problems()
    drift.check_contract(model, contract, iam, p)
    assert any("CloudFormation must name it" in msg for msg in p), list(p)


@pytest.mark.parametrize(
    "mutate, expect",
    [
        (lambda m: m["alarms"]["{param:NamePrefix}-function-throttles"].update(threshold=11), "alarms.{param:NamePrefix}-function-throttles differs"),
        (lambda m: m["function"].update(reserved_concurrency=5), "function.reserved_concurrency differs"),
        (lambda m: m["names"].append(("caller_policy", "{param:NamePrefix}-caller2", None)), "names differ"),
        (lambda m: m["caller"]["statements"].pop(), "caller.statements differs"),
    ],
)
def test_stack_comparison_notices(mutate, expect, models, contract):
    tf = copy.deepcopy(models["tf"])
    mutate(tf)
    p = drift.Problems()
    drift.check_same(models["sam"], tf, p, contract)
    assert any(expect in msg for msg in p), list(p)


# ---- the activity secrets' parameter ARNs -----------------------------------


_NO_VALUE = object()


def _cfn_eval(v, params, conditions):
    """Evaluates the intrinsic functions of the secrets' ARN slots."""
    pseudo = {"AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012"}
    ev = lambda x: _cfn_eval(x, params, conditions)  # noqa: E731
    if isinstance(v, list):
        return [x for x in map(ev, v) if x is not _NO_VALUE]
    if not isinstance(v, dict):
        return v
    ((fn, arg),) = v.items()
    if fn == "Ref":
        return _NO_VALUE if arg == "AWS::NoValue" else params[arg]
    if fn == "Fn::If":
        return ev(arg[1]) if ev(conditions[arg[0]]) else ev(arg[2])
    if fn == "Fn::Not":
        return not ev(arg[0])
    if fn == "Fn::Equals":
        return ev(arg[0]) == ev(arg[1])
    if fn == "Fn::Select":
        return ev(arg[1])[arg[0]]
    if fn == "Fn::Join":
        return ev(arg[0]).join(ev(arg[1]))
    if fn == "Fn::Split":
        return ev(arg[1]).split(arg[0])
    if fn == "Fn::Sub":
        text, names = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
        values = {**pseudo, **{k: ev(x) for k, x in names.items()}}
        return re.sub(r"\$\{([^}]+)\}", lambda m: values[m.group(1)], text)
    raise AssertionError(f"unexpected {fn}")


@pytest.mark.parametrize(
    "names, arns",
    [
        ([""], []),  # the default: no grant (and the policy's condition is false)
        (["/app/db-password"], ["parameter/app/db-password"]),
        (["plain"], ["parameter/plain"]),
        (["/a/b", "c", "/d"], ["parameter/a/b", "parameter/c", "parameter/d"]),
        ([f"/p{i}" for i in range(10)], [f"parameter/p{i}" for i in range(10)]),
    ],
)
def test_sam_secret_arns_are_exactly_the_named_parameters(names, arns):
    tpl = drift.load_cfn(drift.SAM_TEMPLATE)
    policy = tpl["Resources"]["ActivitySecretsPolicy"]
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Action"] == ["ssm:GetParameters"]
    # The template writes the slots the drift test recognizes...
    assert statement["Resource"] == drift.sam_secret_arns(drift.SAM_SECRET_NAMES_PARAM)
    # ...and they evaluate to one ARN per name, one slash before it.
    params = {drift.SAM_SECRET_NAMES_PARAM: names}
    conditions = tpl["Conditions"]
    got = _cfn_eval(statement["Resource"], params, conditions)
    assert got == [f"arn:aws:ssm:us-east-1:123456789012:{a}" for a in arns]
    assert _cfn_eval(conditions[policy["Condition"]], params, conditions) == bool(arns)
    assert tpl["Resources"]["ActivitySecretsKeyPolicy"]["Condition"] == "HasActivitySecretsKmsKey"


def test_terraform_secret_grant_read_with_a_wildcard_is_noticed(tmp_path, contract, iam):
    text = (drift.TF_MODULE / "main.tf").read_text()
    wanted = 'parameter/${trimprefix(name, "/")}"]'
    assert wanted in text
    for f in drift.TF_MODULE.glob("*.tf"):
        (tmp_path / f.name).write_text(f.read_text())
    (tmp_path / "main.tf").write_text(text.replace(wanted, 'parameter/*"]'))
    model, p = drift.read_stack("tf", tmp_path)
    drift.check_contract(model, contract, iam, p)
    assert any("ssm:GetParameters on" in msg for msg in p), list(p)
