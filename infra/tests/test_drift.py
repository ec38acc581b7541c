"""pytest: the contract/drift test on the real stacks (infra/tests/drift.py).

Run by scripts/check-infra; alone: .venv/bin/python -m pytest infra/tests
"""

import copy

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
    assert set(contract["gsis"]) == {"by-status", "by-wake"}
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
    }
    assert contract["env_params"] == {
        "CAIRN_LEASE_SECONDS": "LeaseSeconds",
        "CAIRN_INBOX_GRACE_SECONDS": "InboxGraceSeconds",
        "CAIRN_BATCH_CONCURRENCY": "BatchConcurrency",
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
        "ParallelizationFactor": 2,
    }
    assert contract["param_ranges"]["ParallelizationFactor"] == (1, 10)
    assert contract["sweep_param"] == "SweepRate" and contract["parallelization_param"] == "ParallelizationFactor"
    assert contract["schedule_retry_policy"] == (86400, 185)
    assert contract["scheduler_dlq_encrypted"] and contract["on_failure_encrypted"]
    assert contract["max_retries"] == 10  # the stream mapping's, not the schedules' 185


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


# The checker itself: a change in the model must show up as a problem.


@pytest.mark.parametrize(
    "mutate, expect",
    [
        (lambda m: m["table"]["gsis"].pop("by-wake"), "table GSI names"),
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
    ],
)
def test_checker_notices(mutate, expect, models, contract, iam):
    model = copy.deepcopy(models["tf"])
    mutate(model)
    p = drift.Problems()
    drift.check_contract(model, contract, iam, p)
    assert any(expect in msg for msg in p), list(p)
