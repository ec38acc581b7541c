#!/usr/bin/env python3
"""Contract and drift test for Cairn's two deployment stacks.

Reads infra/sam/template.yaml (YAML with CloudFormation's short-form tags)
and infra/terraform/modules/cairn/*.tf (python-hcl2), turns each into the
same small model -- table, function, stream mapping, scheduler, IAM -- with
every reference written one way (`{table.arn}`, `{param:MemorySize}`, ...),
then checks:

  * each stack against the facts of infra/CONTRACT.md (parsed from the page,
    so a contract change that the stacks do not follow fails here),
  * the IAM actions of the function role, the scheduler role and the callers'
    managed policy against infra/iam-actions.json: exactly those actions, no
    more, no less, each on the narrow resource its group allows, nothing
    managed attached to the roles,
  * the alarms (CONTRACT.md "Alarms": metrics, dimensions, thresholds,
    actions), the table's deletion protection, reserved concurrency, and the
    name prefix on every resource that has a name ("Names"),
  * the two stacks against each other (same statements, same settings).

Usage: drift.py [--sam TEMPLATE] [--tf MODULE_DIR]   (exit 1 on any problem)
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT / "infra" / "CONTRACT.md"
IAM_ACTIONS = ROOT / "infra" / "iam-actions.json"
SAM_TEMPLATE = ROOT / "infra" / "sam" / "template.yaml"
TF_MODULE = ROOT / "infra" / "terraform" / "modules" / "cairn"

# python-hcl2 and checkov's fork (bc-python-hcl2) both install a package
# named `hcl2`; scripts/check-infra keeps python-hcl2 in its own folder.
_HCL2_DIR = ROOT / ".venv" / "python-hcl2"
if _HCL2_DIR.is_dir() and str(_HCL2_DIR) not in sys.path:
    sys.path.insert(0, str(_HCL2_DIR))

import yaml  # noqa: E402


class ContractFormatError(Exception):
    """CONTRACT.md no longer reads the way this parser expects."""


# ---------------------------------------------------------------------------
# The contract (infra/CONTRACT.md) and the IAM list (infra/iam-actions.json)
# ---------------------------------------------------------------------------


def _find(pattern: str, text: str, what: str, flags: int = 0) -> re.Match:
    m = re.search(pattern, text, flags)
    if not m:
        raise ContractFormatError(f"CONTRACT.md: cannot find {what} (pattern {pattern!r}); update infra/tests/drift.py")
    return m


def load_contract(path: Path = CONTRACT) -> dict:
    """The facts of CONTRACT.md that a stack must show."""
    text = path.read_text()
    c: dict[str, Any] = {}
    m = _find(r"\|\s*partition key\s*\|\s*`(\w+)`\s*\((\w)\)", text, "the partition key")
    c["hash_key"] = (m.group(1), m.group(2))
    m = _find(r"\|\s*sort key\s*\|\s*`(\w+)`\s*\((\w)\)", text, "the sort key")
    c["range_key"] = (m.group(1), m.group(2))
    c["billing"] = _find(r"\|\s*billing\s*\|[^|\n]*`(\w+)`", text, "billing").group(1)
    c["stream_view_type"] = _find(r"\|\s*stream\s*\|\s*`(\w+)`", text, "the stream view type").group(1)
    c["ttl_attribute"] = _find(r"\|\s*TTL attribute\s*\|\s*`(\w+)`", text, "the TTL attribute").group(1)
    gsis = {}
    for m in re.finditer(
        r"\|\s*GSI `([\w-]+)`\s*\|\s*hash `(\w+)` \((\w)\), range `(\w+)` \((\w)\), projection (\w+)(?: \(((?:`\w+`(?:, )?)+)\))?", text
    ):
        gsis[m.group(1)] = {
            "hash": (m.group(2), m.group(3)),
            "range": (m.group(4), m.group(5)),
            "projection": m.group(6),
            # INCLUDE: the non-key attributes projected, sorted.
            "attributes": sorted(re.findall(r"`(\w+)`", m.group(7) or "")),
        }
    if not gsis:
        raise ContractFormatError("CONTRACT.md: no GSI rows found; update infra/tests/drift.py")
    c["gsis"] = gsis
    c["pitr"] = _find(r"\|\s*point-in-time recovery\s*\|\s*(\w+)", text, "PITR").group(1) == "on"
    c["sse"] = _find(r"\|\s*server-side encryption\s*\|\s*(\w+)", text, "SSE").group(1) == "on"
    c["deletion_protection"] = _find(r"\|\s*deletion protection\s*\|\s*(\w+)", text, "deletion protection").group(1) == "on"

    c["runtime"] = _find(r"runtime `([^`]+)`", text, "the runtime").group(1)
    c["architecture"] = _find(r"architecture `([^`]+)`", text, "the architecture").group(1)
    c["handler"] = _find(r"handler `([^`]+)`", text, "the handler").group(1)
    c["build_method"] = _find(r"BuildMethod: ([\w-]+)", text, "the SAM build method").group(1)
    c["binary"] = _find(r"Binary: ([\w-]+)", text, "the binary").group(1)
    c["layer_dir"] = _find(r"layer built from `([^`]+)`", text, "the layer folder").group(1).rstrip("/")
    c["components_mount"] = _find(r"mounted at `([^`]+)`", text, "the layer mount").group(1)

    env_block = _find(r"- environment:\n((?:\s+- .*\n)+)", text, "the environment list").group(1)
    env: dict[str, str | None] = {}
    env_params: dict[str, str] = {}
    for m in re.finditer(r"- `(\w+)(?:=([^`]*))?`(.*)", env_block):
        env[m.group(1)] = m.group(2)
        pm = re.match(r"\s*\S+\s*parameter `(\w+)`", m.group(3))
        if pm:
            env_params[m.group(1)] = pm.group(1)
    c["env"] = env
    # Variables whose value is a parameter: {env var: parameter}.
    c["env_params"] = env_params
    c["log_format"] = _find(r"LogFormat: (\w+)", text, "the log format").group(1)
    c["reserved_concurrency_param"] = _find(
        r"reserved concurrency: parameter `(\w+)` \((-?\d+): unreserved", text, "the reserved concurrency parameter"
    ).group(1)

    # The parameter table: | `Name` | `tf_name` | `default` | allowed | feeds |
    section = _find(r"## Parameters \(SAM\) / variables \(Terraform\)\n(.*?)(?=\n## )", text, "the parameter section", re.S).group(1)
    params: dict[str, Any] = {}
    tf_defaults: dict[str, Any] = {}
    tf_names: dict[str, str] = {}
    ranges: dict[str, tuple[int, int | None]] = {}

    def value(v: str) -> Any:
        if v == '""':
            return ""
        if v == "[]":
            return []
        if v == "{}":
            return {}
        return {"true": True, "false": False}.get(v, int(v) if re.fullmatch(r"-?\d+", v) else v)

    # A default cell is `X`, or `X` (SAM), `Y` (Terraform) when the stacks differ.
    row = r"^\|\s*`(\w+)`\s*\|\s*`(\w+)`\s*\|\s*`([^`]*)`(?:\s*\(SAM\),\s*`([^`]*)`\s*\(Terraform\))?\s*\|([^|]*)\|"
    for m in re.finditer(row, section, re.M):
        name, v, allowed = m.group(1), m.group(3), m.group(5)
        params[name] = value(v)
        if m.group(4) is not None:
            tf_defaults[name] = value(m.group(4))
        tf_names[name] = m.group(2)
        rm = re.fullmatch(r"\s*(\d+)\s*[–-]\s*(\d+)\s*", allowed)
        if rm:
            ranges[name] = (int(rm.group(1)), int(rm.group(2)))
        rm = re.fullmatch(r"\s*≥\s*(-?\d+)\s*", allowed)
        if rm:
            ranges[name] = (int(rm.group(1)), None)
    if not params:
        raise ContractFormatError("CONTRACT.md: no parameter rows found; update infra/tests/drift.py")
    c["params"] = params
    # Parameters whose Terraform default differs from SAM's: {name: Terraform default}.
    c["tf_param_defaults"] = tf_defaults
    c["tf_variables"] = tf_names
    c["param_ranges"] = ranges

    c["starting_position"] = _find(r"starting position `(\w+)`", text, "the starting position").group(1)
    c["batch_size"] = int(_find(r"batch size (\d+)", text, "the batch size").group(1))
    c["batching_window"] = int(_find(r"batching window (\d+) s", text, "the batching window").group(1))
    c["response_types"] = [
        s.strip() for s in _find(r"FunctionResponseTypes: \[([^\]]*)\]", text, "FunctionResponseTypes").group(1).split(",")
    ]
    c["bisect"] = _find(r"BisectBatchOnFunctionError: (\w+)", text, "bisect").group(1) == "true"
    c["max_retries"] = int(_find(r"MaximumRetryAttempts: (\d+)", text, "the retry limit").group(1))
    c["on_failure_encrypted"] = bool(re.search(r"on-failure destination: an SQS queue \(encrypted\)", text))
    c["filter"] = json.loads(_find(r"filter \(inbox inserts only\):\s*\n\s*`([^`]+)`", text, "the filter").group(1))
    c["parallelization_param"] = _find(r"parallelization factor: parameter `(\w+)`", text, "the parallelization factor").group(1)

    c["sweep_param"] = _find(r"sweep schedule \(parameter `(\w+)`\)", text, "the sweep rate parameter").group(1)
    m = _find(
        r"RetryPolicy: \{MaximumEventAgeInSeconds: (\d+), MaximumRetryAttempts: (\d+)\}", text, "the schedules' retry policy"
    )
    c["schedule_retry_policy"] = (int(m.group(1)), int(m.group(2)))
    c["scheduler_dlq_encrypted"] = bool(re.search(r"schedule dead-letter queue: an SQS queue \(encrypted\)", text))
    c["sweep_input"] = json.loads(_find(r"with `(\{[^`]*\"sweep\"[^`]*\})`", text, "the sweep input").group(1))
    c["scheduler_principal"] = _find(r"assumable by `([\w.]+)`", text, "the scheduler principal").group(1)
    c["url_auth"] = _find(r"`AuthType: (\w+)`", text, "the Function URL auth type").group(1)
    outputs_line = _find(r"## Outputs\s*\n\s*\n(.*)", text, "the outputs").group(1)
    c["outputs"] = re.findall(r"`(\w+)`", outputs_line)

    # Names: | `kind` | `pattern with {prefix}` |
    section = _find(r"\n## Names\n(.*?)(?=\n## )", text, "the Names section", re.S).group(1)
    c["name_param"] = _find(r"`\{prefix\}`\s*below \(parameter `(\w+)`\)", section, "the name prefix parameter").group(1)
    names = {}
    for m in re.finditer(r"^\|\s*`(\w+)`\s*\|\s*`([^`]+)`", section, re.M):
        names[m.group(1)] = m.group(2).replace("{prefix}", f"{{param:{c['name_param']}}}")
    if "alarm" not in names or "table" not in names:
        raise ContractFormatError("CONTRACT.md: the Names table lacks rows; update infra/tests/drift.py")
    c["names"] = names

    # Alarms: | `name` | `namespace` | metrics | dimensions | `statistic` | period | periods | threshold |
    section = _find(r"\n## Alarms\n(.*?)(?=\n## )", text, "the Alarms section", re.S).group(1)
    c["alarm_param"] = _find(r"SNS topic of parameter `(\w+)`", section, "the alarm topic parameter").group(1)
    c["alarm_comparison"] = _find(r"each `(\w+)`", section, "the alarms' comparison").group(1)
    c["alarm_missing"] = "notBreaching" if re.search(r"missing data not\s+breaching", section) else "missing"
    alarms = {}
    for m in re.finditer(
        r"^\|\s*`([\w-]+)`\s*\|\s*`([\w/]+)`\s*\|([^|]+)\|([^|]+)\|\s*`(\w+)`\s*\|\s*(\d+)\s*\|\s*(\d+)\s*\|\s*(\d+)\s*\|",
        section,
        re.M,
    ):
        dimsets = []
        for part in m.group(4).split(";"):
            dims = tuple(re.findall(r"`(\w+)`", part))
            queue = "scheduler_dlq" if "schedule dead-letter queue" in part else "dlq" if "dead-letter queue" in part else None
            dimsets.append({"dims": dims, "queue": queue, "each_gsi": "each GSI" in part})
        alarms[m.group(1)] = {
            "namespace": m.group(2),
            "metrics": re.findall(r"`(\w+)`", m.group(3)),
            "dimsets": dimsets,
            "statistic": m.group(5),
            "period": int(m.group(6)),
            "periods": int(m.group(7)),
            "threshold": int(m.group(8)),
        }
    if not alarms:
        raise ContractFormatError("CONTRACT.md: no alarm rows found; update infra/tests/drift.py")
    c["alarms"] = alarms

    section = _find(r"\n## Payload bucket\n(.*?)(?=\n## )", text, "the Payload bucket section", re.S).group(1)
    c["payload_bucket"] = {
        "sse": _find(r"default encryption `(\w+)`", section, "the payload bucket's encryption").group(1),
        "prefix": _find(r"objects under `([^`]+)` expire", section, "the payload prefix").group(1),
        "retention_param": _find(r"expire .*?parameter\s+`(\w+)`", section, "the payload retention parameter", re.S).group(1),
    }

    section = _find(r"\n## Callers' policy\n(.*?)(?=\n## )", text, "the Callers' policy section", re.S).group(1)
    m = _find(r"with the condition `([\w:]+)` = `(\w+)`", section, "the Function URL condition")
    c["caller_url_condition"] = {"StringEquals": {m.group(1): m.group(2)}}
    c["caller_output"] = _find(r"the\s+output `(\w+)`", section, "the caller policy output").group(1)
    return c


def load_iam(path: Path = IAM_ACTIONS) -> dict[str, dict[str, list[str]]]:
    data = json.loads(path.read_text())
    return {k: v for k, v in data.items() if not k.startswith("_")}


# Where each group of infra/iam-actions.json may point (canonical references,
# see Canon below). A statement may use a subset, never anything else.
ALLOWED_RESOURCES = {
    ("function", "dynamodb_table"): {"{table.arn}", "{table.arn}/index/*"},
    ("function", "dynamodb_stream"): {"{table.stream_arn}", "{table.arn}/stream/*"},
    ("function", "scheduler"): {"arn:{partition}:scheduler:{region}:{account}:schedule/{schedule_group.name}/*"},
    ("function", "pass_role"): {"{scheduler_role.arn}"},
    ("function", "dead_letter_queue"): {"{dlq.arn}"},
    ("function", "logs"): {"{log_group.arn}:*"},
    # Objects under the payload prefix only, never the bucket itself.
    ("function", "payloads"): {"{payload_bucket.arn}/payloads/*"},
    # Exactly the parameters named as activity secrets, never a wildcard.
    ("function", "ssm_parameters"): {"arn:{partition}:ssm:{region}:{account}:parameter/{activity secret names}"},
    ("function", "kms_decrypt"): {"{param:ActivitySecretsKmsKeyArn}"},
    ("scheduler_role", "invoke"): {"{function.arn}"},
    ("scheduler_role", "dead_letter_queue"): {"{scheduler_dlq.arn}"},
    ("caller", "invoke"): {"{function.arn}"},
    ("caller", "invoke_url"): {"{function.arn}"},
}
# The caller group granted only while the Function URL is on (CONTRACT.md, "Callers' policy").
CALLER_URL_GROUP = "invoke_url"
URL_ON = "{param:EnableFunctionUrl} == true"

# Alarm dimensions by name: what each must point at.
ALARM_DIMENSIONS = {
    "FunctionName": "{function.name}",
    "TableName": "{table.name}",
    "ScheduleGroup": "{schedule_group.name}",
}

# Contract parameter names and the Terraform variables that carry them.
# (The contract's parameter table names them too; a unit test keeps the two equal.)
TF_VARIABLES = {
    "NamePrefix": "name_prefix",
    "ReservedConcurrency": "reserved_concurrency",
    "AlarmTopicArn": "alarm_topic_arn",
    "MemorySize": "memory_size",
    "Timeout": "timeout",
    "LogRetentionDays": "log_retention_days",
    "EnableFunctionUrl": "enable_function_url",
    "SweepRate": "sweep_rate",
    "LeaseSeconds": "lease_seconds",
    "InboxGraceSeconds": "inbox_grace_seconds",
    "BatchConcurrency": "batch_concurrency",
    "IndexShards": "index_shards",
    "PayloadThresholdBytes": "payload_threshold_bytes",
    "PayloadRetentionDays": "payload_retention_days",
    "ParallelizationFactor": "parallelization_factor",
    "AllowHttp": "allow_http",
    "HttpExtraRoots": "http_extra_roots",
    "ActivityEnv": "activity_env",
    "ActivitySecrets": "activity_secrets",
    "ActivitySecretsKmsKeyArn": "activity_secrets_kms_key_arn",
    "ActivityAwsCredentials": "activity_aws_credentials",
}
# The ARN of each activity secret's SSM parameter (one slash before the name):
# SAM from that list parameter (CloudFormation cannot take the names out
# of ActivitySecrets' KEY=name pairs), Terraform from the map's values.
SECRET_ARNS = "arn:{partition}:ssm:{region}:{account}:parameter/{activity secret names}"
SAM_SECRET_NAMES_PARAM = "ActivitySecretParameterNames"
TF_SECRETS_VAR = "activity_secrets"
# SAM: ARN slots, so at most this many parameter names.
SAM_SECRET_SLOTS = 10


def sam_secret_arns(param: str) -> list:
    """The Resource list (short tags resolved) that turns list parameter
    `param` into parameter ARNs, as infra/sam/template.yaml writes it: one
    slot per name, under condition HasActivitySecret<i>."""
    padded = {"Fn::Split": [",", {"Fn::Join": [",", [{"Fn::Join": [",", {"Ref": param}]}, ",,,,,,,,,"]]}]}
    out = []
    for i in range(SAM_SECRET_SLOTS):
        name = {"Fn::Join": ["/", {"Fn::Split": ["//", {"Fn::Join": ["", ["/", {"Fn::Select": [i, padded]}]]}]}]}
        arn = {"Fn::Sub": ["arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${Name}", {"Name": name}]}
        out.append({"Fn::If": [f"HasActivitySecret{i}", arn, {"Ref": "AWS::NoValue"}]})
    return out


TF_OUTPUTS = {
    "TableName": "table_name",
    "FunctionArn": "function_arn",
    "FunctionUrl": "function_url",
    "SchedulerDeadLetterQueueUrl": "scheduler_dead_letter_queue_url",
    "SchedulerDeadLetterQueueArn": "scheduler_dead_letter_queue_arn",
    "CallerPolicyArn": "caller_policy_arn",
    "PayloadBucketName": "payload_bucket_name",
}
# The environment variable that names the schedule dead-letter queue: the
# queue it points at is read as `scheduler_dlq`, any other queue as `dlq`.
SCHEDULER_DLQ_ENV = "CAIRN_SCHEDULER_DLQ_ARN"
# An environment variable is a string: a list parameter (SAM
# CommaDelimitedList, Terraform list(string)) feeds one joined with this
# separator, which reads as the parameter itself (`{param:X}`); used bare it
# reads as `{param:X} as a list`, joined otherwise as the join.
LIST_SEPARATOR = ","


# ---------------------------------------------------------------------------
# The model both stacks are read into
# ---------------------------------------------------------------------------
#
# model = {
#   "table": {hash_key, range_key, attributes, billing, gsis, stream_view_type,
#             ttl_attribute, ttl_enabled, pitr, sse},
#   "params": {MemorySize: 512, ...},
#   "param_ranges": {MemorySize: (256, 10240), ...},
#   "function": {runtime, architectures, handler, memory, timeout, env, log_format,
#                log_group, layers, dead_letter, role},
#   "layer": {source, architectures},
#   "queue": {encrypted, retention},            (the stream / async dead-letter queue)
#   "scheduler_queue": {encrypted, retention},  (the schedule dead-letter queue)
#   "log_group": {retention},
#   "esm": {function, source, starting_position, batch_size, batching_window,
#           parallelization, response_types, bisect, max_retries, on_failure, filters},
#   "sweep": {group, expression, input, target, role, state},
#   "url": {auth, condition, target},
#   "roles": {function_role: {trust, statements, managed}, scheduler_role: {...}},
#   "outputs": {TableName: ..., FunctionArn: ..., FunctionUrl: ...},
#   "stack": "sam" | "tf",
#   "names": [(kind, name, name without a prefix (SAM) or None), ...]  (every named resource)
#   "unknown_types": [resource types the name check does not know],
#   "alarms": {name: {series: [(namespace, metric, ((dim, value), ...), stat, period)],
#              expression, evaluation_periods, datapoints, threshold, comparison,
#              treat_missing, actions, ok_actions}},
#   "caller": {statements: [(effect, actions, resources, condition-json, when)]},
# }
# Table adds deletion_protection and retain (never deleted by the stack);
# function adds reserved_concurrency.
# A statement is (effect, (actions...), (resources...), condition-json).


def _sum_of(expression: str | None, ids: list[str]) -> str | None:
    """`SUM([a, b, ...])` over exactly the alarm's metric queries -> "SUM(all series)"."""
    if expression is None:
        return None
    m = re.fullmatch(r"\s*SUM\(\[([\w\s,]*)\]\)\s*", expression)
    if m and sorted(x.strip() for x in m.group(1).split(",") if x.strip()) == sorted(ids):
        return "SUM(all series)"
    return expression


class Problems(list):
    def add(self, msg: str) -> None:
        self.append(msg)


def _kind_of_role(trust_services: set[str]) -> str | None:
    if "lambda.amazonaws.com" in trust_services:
        return "function_role"
    if "scheduler.amazonaws.com" in trust_services:
        return "scheduler_role"
    return None


def _as_list(v: Any) -> list:
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


# ---------------------------------------------------------------------------
# SAM / CloudFormation
# ---------------------------------------------------------------------------


class CfnLoader(yaml.SafeLoader):
    """YAML loader that reads `!Ref X` as {"Ref": X}, `!GetAtt A.B` as
    {"Fn::GetAtt": [A, B]}, and every other `!Fn` as {"Fn::Fn": ...}."""


def _cfn_tag(loader: yaml.Loader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    if suffix == "Condition":
        return {"Condition": value}
    return {f"Fn::{suffix}": value}


CfnLoader.add_multi_constructor("!", _cfn_tag)


def load_cfn(path: Path) -> dict:
    with open(path) as f:
        return yaml.load(f, Loader=CfnLoader)


SAM_KINDS = {
    "AWS::IAM::ManagedPolicy": "caller_policy",
    "AWS::CloudWatch::Alarm": "alarm",
    "AWS::DynamoDB::Table": "table",
    "AWS::SQS::Queue": "dlq",
    "AWS::Logs::LogGroup": "log_group",
    "AWS::Serverless::LayerVersion": "layer",
    "AWS::Lambda::LayerVersion": "layer",
    "AWS::Serverless::Function": "function",
    "AWS::Lambda::Function": "function",
    "AWS::Lambda::EventSourceMapping": "esm",
    "AWS::Scheduler::ScheduleGroup": "schedule_group",
    "AWS::Scheduler::Schedule": "sweep",
    "AWS::Lambda::Url": "url",
    "AWS::S3::Bucket": "payload_bucket",
}
SAM_REF_ATTR = {"AWS::IAM::ManagedPolicy": "arn", "AWS::SQS::Queue": "url", "AWS::Serverless::LayerVersion": "arn", "AWS::Lambda::LayerVersion": "arn"}
# The property that names a resource, by type; resources of the other known
# types have no name of their own (a mapping, a URL, an inline policy).
SAM_NAME_PROPS = {
    "AWS::DynamoDB::Table": "TableName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::Serverless::LayerVersion": "LayerName",
    "AWS::Lambda::LayerVersion": "LayerName",
    "AWS::Serverless::Function": "FunctionName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::Scheduler::ScheduleGroup": "Name",
    "AWS::Scheduler::Schedule": "Name",
    "AWS::CloudWatch::Alarm": "AlarmName",
}
# The payload bucket is named by CloudFormation / Terraform: bucket names are
# global and lowercase, the prefix need not be (CONTRACT.md, "Payload bucket").
SAM_UNNAMED = {"AWS::Lambda::EventSourceMapping", "AWS::Lambda::Url", "AWS::IAM::Policy", "AWS::S3::Bucket", "AWS::S3::BucketPolicy"}
TF_NAME_PROPS = {
    "aws_dynamodb_table": "name",
    "aws_sqs_queue": "name",
    "aws_cloudwatch_log_group": "name",
    "aws_lambda_layer_version": "layer_name",
    "aws_lambda_function": "function_name",
    "aws_iam_role": "name",
    "aws_iam_policy": "name",
    "aws_scheduler_schedule_group": "name",
    "aws_scheduler_schedule": "name",
    "aws_cloudwatch_metric_alarm": "alarm_name",
}
TF_UNNAMED = {
    "aws_lambda_event_source_mapping",
    "aws_lambda_function_url",
    "aws_iam_role_policy",
    "aws_s3_bucket",
    "aws_s3_bucket_server_side_encryption_configuration",
    "aws_s3_bucket_public_access_block",
    "aws_s3_bucket_ownership_controls",
    "aws_s3_bucket_lifecycle_configuration",
    "aws_s3_bucket_policy",
}

PSEUDO = {"AWS::Partition": "{partition}", "AWS::Region": "{region}", "AWS::AccountId": "{account}", "AWS::StackName": "{stack}"}


def _snake(attr: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", attr).lower()


class SamReader:
    def __init__(self, path: Path, problems: Problems):
        self.path = path
        self.p = problems
        self.tpl = load_cfn(path)
        self.resources: dict[str, dict] = self.tpl.get("Resources") or {}
        self.params: dict[str, dict] = self.tpl.get("Parameters") or {}
        self.kinds: dict[str, str] = {}
        for lid, r in self.resources.items():
            t = r.get("Type", "")
            if t in SAM_KINDS:
                self.kinds[lid] = SAM_KINDS[t]
            elif t == "AWS::IAM::Role":
                trust = self._trust_services(r)
                k = _kind_of_role(trust)
                if k:
                    self.kinds[lid] = k
                else:
                    self.kinds[lid] = f"role:{lid}"
        # The queue the function hands Scheduler is the schedule dead-letter queue.
        for lid, r in self.resources.items():
            if self.kinds.get(lid) != "function":
                continue
            env = (((r.get("Properties") or {}).get("Environment") or {}).get("Variables")) or {}
            ref = env.get(SCHEDULER_DLQ_ENV)
            if isinstance(ref, dict) and "Fn::GetAtt" in ref:
                qid = ref["Fn::GetAtt"][0]
                if self.kinds.get(qid) == "dlq":
                    self.kinds[qid] = "scheduler_dlq"

    def _trust_services(self, role: dict) -> set[str]:
        doc = (role.get("Properties") or {}).get("AssumeRolePolicyDocument") or {}
        out: set[str] = set()
        for st in _as_list(doc.get("Statement")):
            out.update(_as_list((st.get("Principal") or {}).get("Service")))
        return out

    def one(self, kind: str) -> tuple[str, dict]:
        ids = [lid for lid, k in self.kinds.items() if k == kind]
        if len(ids) != 1:
            self.p.add(f"expected exactly one {kind} resource, found {len(ids)} ({', '.join(ids) or 'none'})")
            return ("", {})
        return ids[0], self.resources[ids[0]].get("Properties") or {}

    # canonical references ---------------------------------------------------

    def _ref(self, name: str) -> str | None:
        if name == "AWS::NoValue":
            return None
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.params:
            if str(self.params[name].get("Type", "")).startswith(("CommaDelimitedList", "List<")):
                return f"{{param:{name}}} as a list"
            return f"{{param:{name}}}"
        if name in self.resources:
            kind = self.kinds.get(name, name)
            attr = SAM_REF_ATTR.get(self.resources[name].get("Type", ""), "name")
            return f"{{{kind}.{attr}}}"
        return f"{{unknown:{name}}}"

    def _getatt(self, lid: str, attr: str) -> str:
        kind = self.kinds.get(lid, lid)
        if self.resources.get(lid, {}).get("Type") == "AWS::Logs::LogGroup" and attr == "Arn":
            return f"{{{kind}.arn}}:*"  # CloudFormation's LogGroup Arn ends in :*
        if attr == "QueueName":
            return f"{{{kind}.name}}"
        return f"{{{kind}.{_snake(attr)}}}"

    def _sub(self, s: str) -> str:
        def repl(m: re.Match) -> str:
            inner = m.group(1)
            if inner in PSEUDO or "." not in inner:
                return self._ref(inner)
            lid, attr = inner.split(".", 1)
            return self._getatt(lid, attr)

        return re.sub(r"\$\{([^}!]+)\}", repl, s)

    def canon(self, v: Any) -> Any:
        if isinstance(v, list) and v == sam_secret_arns(SAM_SECRET_NAMES_PARAM):
            return [SECRET_ARNS]
        if isinstance(v, dict):
            if set(v) == {"Ref"}:
                return self._ref(v["Ref"])
            if set(v) == {"Fn::GetAtt"}:
                lid, attr = v["Fn::GetAtt"]
                return self._getatt(lid, attr)
            if set(v) == {"Fn::Sub"}:
                s = v["Fn::Sub"]
                return self._sub(s if isinstance(s, str) else s[0])
            if set(v) == {"Fn::If"}:
                cond, a, b = v["Fn::If"]
                return {"if": cond, "then": self.canon(a), "else": self.canon(b)}
            if set(v) == {"Fn::Join"} and isinstance(v["Fn::Join"], list) and len(v["Fn::Join"]) == 2:
                sep, items = v["Fn::Join"][0], self.canon(v["Fn::Join"][1])
                m = re.fullmatch(r"(\{param:\w+\}) as a list", items) if isinstance(items, str) else None
                if m and sep == LIST_SEPARATOR:
                    return m.group(1)
                return {"join": sep, "items": items}
            return {k: self.canon(x) for k, x in v.items()}
        if isinstance(v, list):
            return [self.canon(x) for x in v]
        return v

    # the model --------------------------------------------------------------

    def model(self) -> dict:
        m: dict[str, Any] = {}
        c = self.canon

        tid, t = self.one("table")
        keys = {k["KeyType"]: k["AttributeName"] for k in _as_list(t.get("KeySchema"))}
        attrs = {a["AttributeName"]: a["AttributeType"] for a in _as_list(t.get("AttributeDefinitions"))}
        gsis = {}
        for g in _as_list(t.get("GlobalSecondaryIndexes")):
            gk = {k["KeyType"]: k["AttributeName"] for k in _as_list(g.get("KeySchema"))}
            gsis[g.get("IndexName")] = {
                "hash": (gk.get("HASH"), attrs.get(gk.get("HASH"))),
                "range": (gk.get("RANGE"), attrs.get(gk.get("RANGE"))),
                "projection": (g.get("Projection") or {}).get("ProjectionType"),
                "attributes": sorted(_as_list((g.get("Projection") or {}).get("NonKeyAttributes"))),
            }
        ttl = t.get("TimeToLiveSpecification") or {}
        m["table"] = {
            "hash_key": (keys.get("HASH"), attrs.get(keys.get("HASH"))),
            "range_key": (keys.get("RANGE"), attrs.get(keys.get("RANGE"))),
            "attributes": attrs,
            "billing": t.get("BillingMode", "PROVISIONED"),
            "gsis": gsis,
            "stream_view_type": (t.get("StreamSpecification") or {}).get("StreamViewType"),
            "ttl_attribute": ttl.get("AttributeName"),
            "ttl_enabled": ttl.get("Enabled") is True,
            "pitr": (t.get("PointInTimeRecoverySpecification") or {}).get("PointInTimeRecoveryEnabled") is True,
            "sse": (t.get("SSESpecification") or {}).get("SSEEnabled") is True,
            "deletion_protection": t.get("DeletionProtectionEnabled") is True,
            "retain": all((self.resources.get(tid) or {}).get(k) == "Retain" for k in ("DeletionPolicy", "UpdateReplacePolicy")),
        }
        m["stack"] = "sam"

        m["params"] = {name: p.get("Default") for name, p in self.params.items()}
        # CloudFormation parameter defaults of Type Number may be strings.
        for name, p in self.params.items():
            d = p.get("Default")
            if p.get("Type") == "Number" and isinstance(d, str) and d.isdigit():
                m["params"][name] = int(d)
            if p.get("Type") == "String" and d in ("true", "false"):
                m["params"][name] = d == "true"
        m["param_ranges"] = {
            name: (int(p["MinValue"]), int(p["MaxValue"]) if "MaxValue" in p else None)
            for name, p in self.params.items()
            if "MinValue" in p
        }

        fid, f = self.one("function")
        meta = (self.resources.get(fid) or {}).get("Metadata") or {}
        env = ((f.get("Environment") or {}).get("Variables")) or {}
        logging = f.get("LoggingConfig") or {}
        dlq = f.get("DeadLetterQueue") or {}
        base = self.path.parent
        code_uri = f.get("CodeUri")
        m["function"] = {
            "runtime": f.get("Runtime"),
            "architectures": _as_list(f.get("Architectures")),
            "handler": f.get("Handler"),
            "memory": c(f.get("MemorySize")),
            "timeout": c(f.get("Timeout")),
            "env": {k: c(v) for k, v in env.items()},
            "log_format": logging.get("LogFormat"),
            "log_group": c(logging.get("LogGroup")),
            "layers": c(_as_list(f.get("Layers"))),
            "dead_letter": c(dlq.get("TargetArn")),
            "role": c(f.get("Role")),
            "reserved_concurrency": self._unless(c(f.get("ReservedConcurrentExecutions")), "!= -1"),
            "sam_policies": f.get("Policies"),
            "build_method": meta.get("BuildMethod"),
            "binary": (meta.get("BuildProperties") or {}).get("Binary"),
            "code_dir": os.path.normpath(base / code_uri) if isinstance(code_uri, str) else code_uri,
        }

        _, layer = self.one("layer")
        content = layer.get("ContentUri")
        m["layer"] = {
            "source_dir": os.path.normpath(base / content) if isinstance(content, str) else content,
            "architectures": _as_list(layer.get("CompatibleArchitectures")),
        }

        for kind, key in (("dlq", "queue"), ("scheduler_dlq", "scheduler_queue")):
            _, q = self.one(kind)
            m[key] = {
                "encrypted": q.get("SqsManagedSseEnabled") is True or bool(q.get("KmsMasterKeyId")),
                "retention": q.get("MessageRetentionPeriod"),
            }
        _, lg = self.one("log_group")
        m["log_group"] = {"retention": c(lg.get("RetentionInDays"))}

        bid, b = self.one("payload_bucket")
        sse = [(r.get("ServerSideEncryptionByDefault") or {}).get("SSEAlgorithm") for r in _as_list((b.get("BucketEncryption") or {}).get("ServerSideEncryptionConfiguration"))]
        pab = b.get("PublicAccessBlockConfiguration") or {}
        rules = [r for r in _as_list((b.get("LifecycleConfiguration") or {}).get("Rules")) if r.get("Status") == "Enabled"]
        m["payload_bucket"] = {
            "encryption": sse,
            "public_access_blocked": all(pab.get(k) is True for k in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")),
            "expiration": [(r.get("Prefix") or ((r.get("Filter") or {}).get("Prefix")), c(r.get("ExpirationInDays"))) for r in rules if r.get("ExpirationInDays") is not None],
            "abort_multipart_days": [((r.get("AbortIncompleteMultipartUpload") or {}).get("DaysAfterInitiation")) for r in rules if r.get("AbortIncompleteMultipartUpload")],
            "retain": all((self.resources.get(bid) or {}).get(k) == "Retain" for k in ("DeletionPolicy", "UpdateReplacePolicy")),
        }

        _, e = self.one("esm")
        filters = []
        for flt in _as_list((e.get("FilterCriteria") or {}).get("Filters")):
            pat = flt.get("Pattern")
            try:
                filters.append(json.loads(pat) if isinstance(pat, str) else pat)
            except json.JSONDecodeError as err:
                self.p.add(f"stream filter pattern is not JSON: {err}")
        fn = c(e.get("FunctionName"))
        m["esm"] = {
            "function": "function" if fn in ("{function.name}", "{function.arn}") else fn,
            "source": c(e.get("EventSourceArn")),
            "starting_position": e.get("StartingPosition"),
            "batch_size": e.get("BatchSize"),
            "batching_window": e.get("MaximumBatchingWindowInSeconds"),
            "parallelization": c(e.get("ParallelizationFactor")),
            "response_types": _as_list(e.get("FunctionResponseTypes")),
            "bisect": e.get("BisectBatchOnFunctionError") is True,
            "max_retries": e.get("MaximumRetryAttempts"),
            "on_failure": c(((e.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")),
            "filters": filters,
        }

        self.one("schedule_group")
        _, s = self.one("sweep")
        target = s.get("Target") or {}
        try:
            sweep_input = json.loads(target.get("Input")) if isinstance(target.get("Input"), str) else target.get("Input")
        except json.JSONDecodeError:
            sweep_input = target.get("Input")
        m["sweep"] = {
            "group": c(s.get("GroupName")),
            "expression": c(s.get("ScheduleExpression")),
            "input": sweep_input,
            "target": c(target.get("Arn")),
            "role": c(target.get("RoleArn")),
            "state": s.get("State", "ENABLED"),
        }

        uid, u = self.one("url")
        cond_name = (self.resources.get(uid) or {}).get("Condition")
        cond = ((self.tpl.get("Conditions") or {}).get(cond_name)) if cond_name else None
        m["url"] = {
            "auth": u.get("AuthType"),
            "target": c(u.get("TargetFunctionArn")),
            "condition": self._url_condition(cond),
        }

        m["roles"] = self._roles()
        m["names"], m["unknown_types"] = self._names()
        m["alarms"] = self._alarms()
        _, cp = self.one("caller_policy")
        m["caller"] = {"statements": self._caller_statements(cp.get("PolicyDocument"))}

        outs = self.tpl.get("Outputs") or {}
        m["outputs"] = {name: c((o or {}).get("Value")) for name, o in outs.items()}
        url_out = m["outputs"].get("FunctionUrl")
        if isinstance(url_out, dict) and url_out.get("if") == cond_name:
            m["outputs"]["FunctionUrl"] = {"when_enabled": url_out["then"], "otherwise": url_out["else"]}
        return m

    def _cond_text(self, name: str) -> str | None:
        """A condition as `{param:X} == v` or `{param:X} != v`."""
        cond = (self.tpl.get("Conditions") or {}).get(name)
        neg = False
        if isinstance(cond, dict) and set(cond) == {"Fn::Not"}:
            neg, cond = True, _as_list(cond["Fn::Not"])[0]
        if isinstance(cond, dict) and set(cond) == {"Fn::Equals"}:
            a, b = (self.canon(x) for x in cond["Fn::Equals"])
            if isinstance(b, str) and b.startswith("{param:"):
                a, b = b, a
            return f"{a} {'!=' if neg else '=='} {str(b).lower()}".rstrip()
        return None

    def _unless(self, v: Any, test: str) -> Any:
        """`!If [C, X, !Ref AWS::NoValue]` where C is `{param:P} <test>` -> X."""
        if isinstance(v, dict) and set(v) == {"if", "then", "else"} and v["else"] is None:
            cond = self._cond_text(v["if"]) or ""
            if re.fullmatch(r"\{param:\w+\} " + re.escape(test), cond):
                return v["then"]
        return v

    def _names(self) -> tuple[list, list]:
        """(kind, name with the prefix, name without it) of every named resource."""
        out, unknown = [], []
        for lid, r in self.resources.items():
            t = r.get("Type", "")
            if t in SAM_UNNAMED:
                continue
            if t not in SAM_NAME_PROPS:
                unknown.append(t)
                continue
            v = self.canon((r.get("Properties") or {}).get(SAM_NAME_PROPS[t]))
            if isinstance(v, dict) and set(v) == {"if", "then", "else"} and self._cond_text(v["if"]) == f"{{param:{self.name_param}}} !=":
                out.append((self.kinds.get(lid, lid), v["then"], v["else"] if v["else"] != lid else "{logical id}"))
            else:
                out.append((self.kinds.get(lid, lid), v, "(not conditional on the prefix)"))
        return out, unknown

    name_param = "NamePrefix"

    def _alarms(self) -> dict:
        out = {}
        for lid, r in self.resources.items():
            if r.get("Type") != "AWS::CloudWatch::Alarm":
                continue
            a = r.get("Properties") or {}
            name = self._unless(self.canon(a.get("AlarmName")), "!=")
            series, expression, ids = [], None, []
            if a.get("Metrics"):
                for q in _as_list(a.get("Metrics")):
                    if q.get("Expression"):
                        expression = q["Expression"] if q.get("ReturnData", True) else f"(not returned) {q['Expression']}"
                        continue
                    ms = q.get("MetricStat") or {}
                    met = ms.get("Metric") or {}
                    ids.append(q.get("Id"))
                    series.append(self._series(met.get("Namespace"), met.get("MetricName"), met.get("Dimensions"), ms.get("Stat"), ms.get("Period")))
            else:
                series.append(self._series(a.get("Namespace"), a.get("MetricName"), a.get("Dimensions"), a.get("Statistic"), a.get("Period")))
            out[str(name)] = {
                "series": sorted(series),
                "expression": _sum_of(expression, ids),
                "evaluation_periods": a.get("EvaluationPeriods"),
                "datapoints": a.get("DatapointsToAlarm"),
                "threshold": a.get("Threshold"),
                "comparison": a.get("ComparisonOperator"),
                "treat_missing": a.get("TreatMissingData", "missing"),
                "actions_enabled": a.get("ActionsEnabled", True),
                "actions": self._topic(a.get("AlarmActions")),
                "ok_actions": self._topic(a.get("OKActions")),
            }
        return out

    def _series(self, ns: Any, metric: Any, dims: Any, stat: Any, period: Any) -> tuple:
        d = tuple(sorted((x.get("Name"), str(self.canon(x.get("Value")))) for x in _as_list(dims)))
        return (ns, metric, d, stat, period)

    def _topic(self, v: Any) -> Any:
        v = self.canon(v)
        if isinstance(v, dict) and set(v) == {"if", "then", "else"} and v["else"] is None:
            cond = self._cond_text(v["if"]) or ""
            then = _as_list(v["then"])
            if len(then) == 1 and cond == f"{then[0]} !=":
                return f"[{then[0]}] unless empty"
        return v

    def _caller_statements(self, doc: Any) -> list[tuple]:
        out = []
        for st in _as_list((doc or {}).get("Statement")):
            when = ""
            if isinstance(st, dict) and set(st) == {"Fn::If"}:
                cond, then, other = st["Fn::If"]
                if self.canon(other) is not None:
                    self.p.add("caller policy: a conditional statement with a statement on both branches")
                when = self._cond_text(cond) or f"condition {cond}"
                st = then
            for s in self._statements({"Statement": [st]}):
                out.append(s + (when,))
        return out

    def _url_condition(self, cond: Any) -> str | None:
        """`{param:EnableFunctionUrl} == true` for the expected condition."""
        if isinstance(cond, dict) and "Fn::Equals" in cond:
            a, b = cond["Fn::Equals"]
            a, b = self.canon(a), self.canon(b)
            if isinstance(b, str) and b.startswith("{param:"):
                a, b = b, a
            return f"{a} == {str(b).lower()}"
        return None

    def _statements(self, doc: Any) -> list[tuple]:
        out = []
        for st in _as_list((doc or {}).get("Statement")):
            for bad in ("NotAction", "NotResource", "NotPrincipal"):
                if bad in st:
                    self.p.add(f"IAM statement {st.get('Sid', '?')} uses {bad}")
            out.append(
                (
                    st.get("Effect"),
                    tuple(sorted(_as_list(st.get("Action")))),
                    tuple(sorted(str(r) for r in self.canon(_as_list(st.get("Resource"))))),
                    json.dumps(self.canon(st.get("Condition")), sort_keys=True) if st.get("Condition") else "",
                )
            )
        return out

    def _roles(self) -> dict:
        roles: dict[str, dict] = {}
        for lid, r in self.resources.items():
            if r.get("Type") != "AWS::IAM::Role":
                continue
            kind = self.kinds[lid]
            props = r.get("Properties") or {}
            stmts = []
            for pol in _as_list(props.get("Policies")):
                stmts += self._statements(pol.get("PolicyDocument"))
            roles[kind] = {
                "trust": sorted(self._trust_services(r)),
                "trust_conditions": [
                    json.dumps(self.canon(st.get("Condition")), sort_keys=True)
                    for st in _as_list((props.get("AssumeRolePolicyDocument") or {}).get("Statement"))
                    if st.get("Condition")
                ],
                "statements": stmts,
                "managed": list(_as_list(props.get("ManagedPolicyArns"))) + list(_as_list(props.get("PermissionsBoundary"))),
            }
        # Policies attached from outside the role.
        for lid, r in self.resources.items():
            t = r.get("Type")
            props = r.get("Properties") or {}
            if t in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::RolePolicy"):
                targets = _as_list(props.get("Roles")) + _as_list(props.get("RoleName"))
                for target in targets:
                    ref = self.canon(target)
                    kind = ref[1:].split(".")[0] if isinstance(ref, str) and ref.startswith("{") else None
                    if kind in roles:
                        roles[kind]["statements"] += self._statements(props.get("PolicyDocument"))
                    else:
                        self.p.add(f"{lid} is attached to a role this test does not know: {target}")
        return roles


# ---------------------------------------------------------------------------
# Terraform
# ---------------------------------------------------------------------------


def _unquote(v: Any) -> Any:
    """python-hcl2 >= 7 keeps string quotes ('"pk"'); older versions do not."""
    if isinstance(v, str):
        if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
            return v[1:-1].replace('\\"', '"')
        return v
    if isinstance(v, list):
        return [_unquote(x) for x in v]
    if isinstance(v, dict):
        return {_unquote(k): _unquote(x) for k, x in v.items() if not (isinstance(k, str) and k.startswith("__"))}
    return v


def load_tf(module_dir: Path) -> dict:
    """Every top-level block of every .tf file, merged: {block: [..]}."""
    import hcl2

    merged: dict[str, list] = {}
    files = sorted(glob.glob(str(module_dir / "*.tf")))
    if not files:
        raise FileNotFoundError(f"no .tf files in {module_dir}")
    for path in files:
        with open(path) as f:
            data = hcl2.load(f)
        for block, items in data.items():
            if block.startswith("__"):
                continue
            merged.setdefault(block, []).extend(_unquote(items))
    return merged


TF_KINDS = {
    "aws_iam_policy": "caller_policy",
    "aws_cloudwatch_metric_alarm": "alarm",
    "aws_dynamodb_table": "table",
    "aws_sqs_queue": "dlq",
    "aws_cloudwatch_log_group": "log_group",
    "aws_lambda_layer_version": "layer",
    "aws_lambda_function": "function",
    "aws_lambda_event_source_mapping": "esm",
    "aws_scheduler_schedule_group": "schedule_group",
    "aws_scheduler_schedule": "sweep",
    "aws_lambda_function_url": "url",
    "aws_s3_bucket": "payload_bucket",
}
TF_ATTR = {"function_name": "name", "layer_name": "name", "url": "url", "id": "name"}


def _block(v: Any) -> dict:
    """A nested block: python-hcl2 gives a list of one dict."""
    if isinstance(v, list):
        return v[0] if v else {}
    return v or {}


class TfReader:
    def __init__(self, module_dir: Path, problems: Problems):
        self.dir = module_dir
        self.p = problems
        self.tf = load_tf(module_dir)
        self.resources: dict[tuple[str, str], dict] = {}
        for item in self.tf.get("resource", []):
            for rtype, named in item.items():
                for name, body in named.items():
                    self.resources[(rtype, name)] = body
        self.data: dict[tuple[str, str], dict] = {}
        for item in self.tf.get("data", []):
            for dtype, named in item.items():
                for name, body in named.items():
                    self.data[(dtype, name)] = body
        self.locals: dict[str, Any] = {}
        for item in self.tf.get("locals", []):
            self.locals.update(item)
        self.variables: dict[str, dict] = {}
        for item in self.tf.get("variable", []):
            self.variables.update(item)
        self.kinds: dict[tuple[str, str], str] = {}
        for (rtype, name), body in self.resources.items():
            if rtype in TF_KINDS:
                self.kinds[(rtype, name)] = TF_KINDS[rtype]
            elif rtype == "aws_iam_role":
                k = _kind_of_role(self._trust_services(body))
                self.kinds[(rtype, name)] = k or f"role:{name}"
        # The queue the function hands Scheduler is the schedule dead-letter queue.
        for (rtype, name), body in self.resources.items():
            if rtype != "aws_lambda_function":
                continue
            env = _block(body.get("environment")).get("variables") or {}
            qm = re.fullmatch(r"\$\{aws_sqs_queue\.(\w+)\.arn\}", str(env.get(SCHEDULER_DLQ_ENV)))
            if qm and self.kinds.get(("aws_sqs_queue", qm.group(1))) == "dlq":
                self.kinds[("aws_sqs_queue", qm.group(1))] = "scheduler_dlq"

    def _policy_doc(self, ref: Any) -> dict | None:
        m = re.fullmatch(r"\$\{data\.aws_iam_policy_document\.(\w+)\.json\}", str(ref))
        if not m:
            if ref is not None:
                self.p.add(f"policy is not a data.aws_iam_policy_document reference: {ref}")
            return None
        return self.data.get(("aws_iam_policy_document", m.group(1)))

    def _trust_services(self, role: dict) -> set[str]:
        doc = self._policy_doc(role.get("assume_role_policy")) or {}
        out: set[str] = set()
        for st in _as_list(doc.get("statement")):
            for pr in _as_list(st.get("principals")):
                if pr.get("type") == "Service":
                    out.update(_as_list(pr.get("identifiers")))
        return out

    def one(self, kind: str) -> tuple[tuple[str, str] | None, dict]:
        ids = [rid for rid, k in self.kinds.items() if k == kind]
        if len(ids) != 1:
            self.p.add(f"expected exactly one {kind} resource, found {len(ids)} ({', '.join('.'.join(i) for i in ids) or 'none'})")
            return (None, {})
        return ids[0], self.resources[ids[0]]

    # canonical references ---------------------------------------------------

    def _is_list(self, var: str) -> bool:
        """A variable declared list(...), set(...) or tuple(...)."""
        ty = str((self.variables.get(var) or {}).get("type", ""))
        return bool(re.fullmatch(r"(\$\{)?\s*(list|set|tuple)\b.*", ty))

    def _addr(self, rtype: str, name: str, attr: str) -> str:
        kind = self.kinds.get((rtype, name), f"{rtype}.{name}")
        return f"{{{kind}.{TF_ATTR.get(attr, attr)}}}"

    def canon(self, v: Any) -> Any:
        if isinstance(v, list):
            return [self.canon(x) for x in v]
        if isinstance(v, dict):
            return {k: self.canon(x) for k, x in v.items()}
        if not isinstance(v, str):
            return v
        s = v
        m = re.fullmatch(r"\$\{jsonencode\(local\.(\w+)\)\}", s)
        if m:
            return {"json": self.canon(self.locals.get(m.group(1)))}
        m = re.fullmatch(r"\$\{local\.(\w+)\}", s)
        if m:
            return self.canon(self.locals.get(m.group(1)))
        rev = {v: k for k, v in TF_VARIABLES.items()}
        # A map variable joined as KEY=VALUE pairs with LIST_SEPARATOR: the parameter.
        m = re.fullmatch(r'\$\{join\(\\?"(.*?)\\?", \[for (\w+), (\w+) in var\.(\w+) : \\?"\$\{\2\}=\$\{\3\}\\?"\]\)\}', s)
        if m and m.group(1) == LIST_SEPARATOR:
            return f"{{param:{rev.get(m.group(4), m.group(4))}}}"
        # The ARNs of the activity secrets' parameters, one slash before each name.
        m = re.fullmatch(
            r'\$\{\[for (\w+) in values\(var\.(\w+)\) : \\?"arn:\$\{data\.aws_partition\.\w+\.partition\}:ssm:'
            r'\$\{data\.aws_region\.\w+\.(?:name|region|id)\}:\$\{data\.aws_caller_identity\.\w+\.account_id\}:parameter/'
            r'\$\{trimprefix\(\1, \\?"/\\?"\)\}\\?"\]\}',
            s,
        )
        if m and m.group(2) == TF_SECRETS_VAR:
            return SECRET_ARNS
        # A list variable: joined with LIST_SEPARATOR it is the parameter, bare a list.
        m = re.fullmatch(r'\$\{join\(\\?"(.*?)\\?",\s*var\.(\w+)\)\}', s)
        if m and self._is_list(m.group(2)):
            param = f"{{param:{rev.get(m.group(2), m.group(2))}}}"
            return param if m.group(1) == LIST_SEPARATOR else {"join": m.group(1), "items": f"{param} as a list"}
        m = re.fullmatch(r"\$\{var\.(\w+)\}", s)
        if m and self._is_list(m.group(1)):
            return f"{{param:{rev.get(m.group(1), m.group(1))}}} as a list"
        # `cond ? [x] : []` and friends, as the SAM reader writes them.
        m = re.fullmatch(r'\$\{var\.(\w+) == \\?"\\?" \? \[\] : \[var\.\1\]\}', s)
        if m:
            return f"[{{param:{rev.get(m.group(1), m.group(1))}}}] unless empty"
        # An optional override whose default is null falls back to the other variable.
        m = re.fullmatch(r"\$\{coalesce\(var\.(\w+), var\.(\w+)\)\}", s)
        if m and m.group(1) in self.variables and self.variables[m.group(1)].get("default") is None:
            s = "${var." + m.group(2) + "}"
        # arn:...:schedule-group/NAME -> arn:...:schedule/NAME (the group's schedules)
        s = re.sub(
            r"\$\{replace\(aws_scheduler_schedule_group\.\w+\.arn,\s*\\?\":schedule-group/\\?\",\s*\\?\":schedule/\\?\"\)\}",
            "arn:{partition}:scheduler:{region}:{account}:schedule/{schedule_group.name}",
            s,
        )
        s = re.sub(r"\$\{data\.aws_caller_identity\.\w+\.account_id\}", "{account}", s)
        s = re.sub(r"\$\{data\.aws_partition\.\w+\.partition\}", "{partition}", s)
        s = re.sub(r"\$\{data\.aws_region\.\w+\.(?:name|region|id)\}", "{region}", s)
        s = re.sub(r"\$\{var\.(\w+)\}", lambda m: f"{{param:{rev.get(m.group(1), m.group(1))}}}", s)
        s = re.sub(
            r"\$\{(aws_\w+)\.(\w+)(?:\[\d+\])?\.(\w+)\}",
            lambda m: self._addr(m.group(1), m.group(2), m.group(3)),
            s,
        )
        return s

    # the model --------------------------------------------------------------

    def model(self) -> dict:
        m: dict[str, Any] = {}
        c = self.canon

        _, t = self.one("table")
        attrs = {a.get("name"): a.get("type") for a in _as_list(t.get("attribute"))}
        gsis = {}
        for g in _as_list(t.get("global_secondary_index")):
            gsis[g.get("name")] = {
                "hash": (g.get("hash_key"), attrs.get(g.get("hash_key"))),
                "range": (g.get("range_key"), attrs.get(g.get("range_key"))),
                "projection": g.get("projection_type"),
                "attributes": sorted(_as_list(g.get("non_key_attributes"))),
            }
        ttl = _block(t.get("ttl"))
        m["table"] = {
            "hash_key": (t.get("hash_key"), attrs.get(t.get("hash_key"))),
            "range_key": (t.get("range_key"), attrs.get(t.get("range_key"))),
            "attributes": attrs,
            "billing": t.get("billing_mode", "PROVISIONED"),
            "gsis": gsis,
            "stream_view_type": t.get("stream_view_type") if t.get("stream_enabled") is True else None,
            "ttl_attribute": ttl.get("attribute_name"),
            "ttl_enabled": ttl.get("enabled") is True,
            "pitr": _block(t.get("point_in_time_recovery")).get("enabled") is True,
            "sse": _block(t.get("server_side_encryption")).get("enabled") is True,
            "deletion_protection": t.get("deletion_protection_enabled") is True,
            "retain": _block(t.get("lifecycle")).get("prevent_destroy") is True,
        }
        m["stack"] = "tf"

        rev = {v: k for k, v in TF_VARIABLES.items()}
        m["params"] = {rev.get(n, n): body.get("default") for n, body in self.variables.items()}
        m["param_ranges"] = {}
        for n, body in self.variables.items():
            for v in _as_list(body.get("validation")):
                cond = str(_block(v).get("condition"))
                rm = re.fullmatch(rf"\$\{{var\.{n} >= (-?\d+) && var\.{n} <= (\d+)\}}", cond)
                if rm:
                    m["param_ranges"][rev.get(n, n)] = (int(rm.group(1)), int(rm.group(2)))
                rm = re.fullmatch(rf"\$\{{var\.{n} >= (-?\d+)\}}", cond)
                if rm:
                    m["param_ranges"][rev.get(n, n)] = (int(rm.group(1)), None)

        _, f = self.one("function")
        env = _block(f.get("environment")).get("variables") or {}
        logging = _block(f.get("logging_config"))
        m["function"] = {
            "runtime": f.get("runtime"),
            "architectures": _as_list(f.get("architectures")),
            "handler": f.get("handler"),
            "memory": c(f.get("memory_size")),
            "timeout": c(f.get("timeout")),
            "env": {k: c(v) for k, v in env.items()},
            "log_format": logging.get("log_format"),
            "log_group": c(logging.get("log_group")),
            "layers": c(_as_list(f.get("layers"))),
            "dead_letter": c(_block(f.get("dead_letter_config")).get("target_arn")),
            "role": c(f.get("role")),
            "reserved_concurrency": c(f.get("reserved_concurrent_executions")),
            "package": c(f.get("filename")),
        }
        _, layer = self.one("layer")
        m["layer"] = {"package": c(layer.get("filename")), "architectures": _as_list(layer.get("compatible_architectures"))}

        for kind, key in (("dlq", "queue"), ("scheduler_dlq", "scheduler_queue")):
            _, q = self.one(kind)
            m[key] = {
                "encrypted": q.get("sqs_managed_sse_enabled") is True or bool(q.get("kms_master_key_id")),
                "retention": q.get("message_retention_seconds"),
            }
        _, lg = self.one("log_group")
        m["log_group"] = {"retention": c(lg.get("retention_in_days"))}

        _, e = self.one("esm")
        filters = []
        for flt in _as_list(_block(e.get("filter_criteria")).get("filter")):
            pat = c(flt.get("pattern"))
            if isinstance(pat, dict) and "json" in pat:
                filters.append(pat["json"])
            else:
                try:
                    filters.append(json.loads(pat))
                except (TypeError, json.JSONDecodeError):
                    self.p.add(f"stream filter pattern is neither jsonencode(local.X) nor a JSON string: {pat}")
        fn = c(e.get("function_name"))
        m["esm"] = {
            "function": "function" if fn in ("{function.name}", "{function.arn}") else fn,
            "source": c(e.get("event_source_arn")),
            "starting_position": e.get("starting_position"),
            "batch_size": e.get("batch_size"),
            "batching_window": e.get("maximum_batching_window_in_seconds"),
            "parallelization": c(e.get("parallelization_factor")),
            "response_types": _as_list(e.get("function_response_types")),
            "bisect": e.get("bisect_batch_on_function_error") is True,
            "max_retries": e.get("maximum_retry_attempts"),
            "on_failure": c(_block(_block(e.get("destination_config")).get("on_failure")).get("destination_arn")),
            "filters": filters,
        }

        self.one("schedule_group")
        _, s = self.one("sweep")
        target = _block(s.get("target"))
        sweep_input = c(target.get("input"))
        if isinstance(sweep_input, dict) and "json" in sweep_input:
            sweep_input = sweep_input["json"]
        elif isinstance(sweep_input, str):
            try:
                sweep_input = json.loads(sweep_input)
            except json.JSONDecodeError:
                pass
        m["sweep"] = {
            "group": c(s.get("group_name")),
            "expression": c(s.get("schedule_expression")),
            "input": sweep_input,
            "target": c(target.get("arn")),
            "role": c(target.get("role_arn")),
            "state": s.get("state", "ENABLED"),
        }

        _, u = self.one("url")
        count = str(u.get("count", ""))
        cm = re.fullmatch(r"\$\{var\.(\w+) \? 1 : 0\}", count)
        fn = c(u.get("function_name"))
        m["url"] = {
            "auth": u.get("authorization_type"),
            "target": "{function.arn}" if fn in ("{function.name}", "{function.arn}") else fn,
            "condition": f"{{param:{rev.get(cm.group(1), cm.group(1))}}} == true" if cm else None,
        }

        _, b = self.one("payload_bucket")

        def bucket_config(rtype: str) -> dict:
            found = [body for (rt, _n), body in self.resources.items() if rt == rtype and c(body.get("bucket")) == "{payload_bucket.name}"]
            return found[0] if len(found) == 1 else {}

        enc = bucket_config("aws_s3_bucket_server_side_encryption_configuration")
        pab = bucket_config("aws_s3_bucket_public_access_block")
        rules = [r for r in _as_list(bucket_config("aws_s3_bucket_lifecycle_configuration").get("rule")) if r.get("status") == "Enabled"]
        m["payload_bucket"] = {
            "encryption": [_block(r.get("apply_server_side_encryption_by_default")).get("sse_algorithm") for r in _as_list(enc.get("rule"))],
            "public_access_blocked": all(pab.get(k) is True for k in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets")),
            "expiration": [(_block(r.get("filter")).get("prefix"), c(_block(r.get("expiration")).get("days"))) for r in rules if r.get("expiration")],
            "abort_multipart_days": [_block(r.get("abort_incomplete_multipart_upload")).get("days_after_initiation") for r in rules if r.get("abort_incomplete_multipart_upload")],
            "retain": _block(b.get("lifecycle")).get("prevent_destroy") is True,
        }

        m["roles"] = self._roles()
        m["names"], m["unknown_types"] = self._names()
        m["alarms"] = self._alarms()
        _, cp = self.one("caller_policy")
        m["caller"] = {"statements": self._caller_statements(self._policy_doc(cp.get("policy")))}

        outs: dict[str, Any] = {}
        rev_out = {v: k for k, v in TF_OUTPUTS.items()}
        for item in self.tf.get("output", []):
            for name, body in item.items():
                outs[rev_out.get(name, name)] = c(body.get("value"))
        url_out = outs.get("FunctionUrl")
        if isinstance(url_out, str):
            um = re.fullmatch(r"\$\{var\.(\w+) \? (aws_lambda_function_url\.\w+\[0\]\.function_url) : \\?\"\\?\"\}", url_out)
            if um:
                outs["FunctionUrl"] = {"when_enabled": c("${" + um.group(2) + "}"), "otherwise": ""}
        m["outputs"] = outs
        return m

    def _names(self) -> tuple[list, list]:
        out, unknown = [], []
        for (rtype, name), body in self.resources.items():
            if rtype in TF_UNNAMED:
                continue
            if rtype not in TF_NAME_PROPS:
                unknown.append(rtype)
                continue
            out.append((self.kinds.get((rtype, name), f"{rtype}.{name}"), self.canon(body.get(TF_NAME_PROPS[rtype])), None))
        return out, unknown

    def _alarms(self) -> dict:
        out = {}
        for (rtype, _name), a in self.resources.items():
            if rtype != "aws_cloudwatch_metric_alarm":
                continue
            series, expression, ids = [], None, []
            if a.get("metric_query"):
                for q in _as_list(a.get("metric_query")):
                    if q.get("expression"):
                        expression = q["expression"] if q.get("return_data", False) else f"(not returned) {q['expression']}"
                        continue
                    met = _block(q.get("metric"))
                    ids.append(q.get("id"))
                    series.append(self._series(met.get("namespace"), met.get("metric_name"), met.get("dimensions"), met.get("stat"), met.get("period")))
            else:
                series.append(self._series(a.get("namespace"), a.get("metric_name"), a.get("dimensions"), a.get("statistic"), a.get("period")))
            out[str(self.canon(a.get("alarm_name")))] = {
                "series": sorted(series),
                "expression": _sum_of(expression, ids),
                "evaluation_periods": a.get("evaluation_periods"),
                "datapoints": a.get("datapoints_to_alarm"),
                "threshold": a.get("threshold"),
                "comparison": a.get("comparison_operator"),
                "treat_missing": a.get("treat_missing_data", "missing"),
                "actions_enabled": a.get("actions_enabled", True),
                "actions": self.canon(a.get("alarm_actions")),
                "ok_actions": self.canon(a.get("ok_actions")),
            }
        return out

    def _series(self, ns: Any, metric: Any, dims: Any, stat: Any, period: Any) -> tuple:
        d = tuple(sorted((k, str(self.canon(v))) for k, v in (dims or {}).items()))
        return (ns, metric, d, stat, period)

    def _caller_statements(self, doc: dict | None) -> list[tuple]:
        out = [s + ("",) for s in self._statements(doc, dynamic_ok=True)]
        rev = {v: k for k, v in TF_VARIABLES.items()}
        for dyn in _as_list((doc or {}).get("dynamic")):
            body = dyn.get("statement")
            if not body:
                continue
            fm = re.fullmatch(r"\$\{var\.(\w+) \? \[1\] : \[\]\}", str(body.get("for_each")))
            when = f"{{param:{rev.get(fm.group(1), fm.group(1))}}} == true" if fm else f"for_each {body.get('for_each')}"
            out += [s + (when,) for s in self._statements({"statement": _as_list(body.get("content"))})]
        return out

    def _statements(self, doc: dict | None, dynamic_ok: bool = False) -> list[tuple]:
        out = []
        if (doc or {}).get("dynamic") and not dynamic_ok:
            self.p.add("policy document has dynamic statements; the test cannot see them")
        for st in _as_list((doc or {}).get("statement")):
            for bad in ("not_actions", "not_resources", "not_principals"):
                if bad in st:
                    self.p.add(f"IAM statement {st.get('sid', '?')} uses {bad}")
            cond = {}
            for cnd in _as_list(st.get("condition")):
                cond.setdefault(cnd.get("test"), {})[cnd.get("variable")] = (
                    self.canon(cnd["values"][0]) if len(_as_list(cnd.get("values"))) == 1 else self.canon(cnd.get("values"))
                )
            out.append(
                (
                    st.get("effect", "Allow"),
                    tuple(sorted(_as_list(st.get("actions")))),
                    tuple(sorted(str(r) for r in self.canon(_as_list(st.get("resources"))))),
                    json.dumps(cond, sort_keys=True) if cond else "",
                )
            )
        if (doc or {}).get("source_policy_documents") or (doc or {}).get("override_policy_documents"):
            self.p.add("policy document merges other documents; the test cannot see their actions")
        return out

    def _roles(self) -> dict:
        roles: dict[str, dict] = {}
        by_addr: dict[str, str] = {}
        for (rtype, name), body in self.resources.items():
            if rtype != "aws_iam_role":
                continue
            kind = self.kinds[(rtype, name)]
            by_addr[name] = kind
            doc = self._policy_doc(body.get("assume_role_policy")) or {}
            trust_conds = []
            for st in _as_list(doc.get("statement")):
                for cnd in _as_list(st.get("condition")):
                    vals = _as_list(cnd.get("values"))
                    trust_conds.append(
                        json.dumps({cnd.get("test"): {cnd.get("variable"): self.canon(vals[0] if len(vals) == 1 else vals)}}, sort_keys=True)
                    )
            stmts = []
            for inline in _as_list(body.get("inline_policy")):
                self.p.add(f"aws_iam_role.{name} has an inline_policy block; use aws_iam_role_policy")
            roles[kind] = {
                "trust": sorted(self._trust_services(body)),
                "trust_conditions": trust_conds,
                "statements": stmts,
                "managed": list(_as_list(body.get("managed_policy_arns"))) + list(_as_list(body.get("permissions_boundary"))),
            }
        for (rtype, name), body in self.resources.items():
            if rtype == "aws_iam_role_policy":
                rm = re.fullmatch(r"\$\{aws_iam_role\.(\w+)\.(?:id|name)\}", str(body.get("role")))
                if not rm or rm.group(1) not in by_addr:
                    self.p.add(f"aws_iam_role_policy.{name} is attached to a role this test does not know: {body.get('role')}")
                    continue
                roles[by_addr[rm.group(1)]]["statements"] += self._statements(self._policy_doc(body.get("policy")))
            elif rtype in ("aws_iam_role_policy_attachment", "aws_iam_policy_attachment", "aws_iam_policy", "aws_iam_role_policies_exclusive"):
                rm = re.search(r"aws_iam_role\.(\w+)", json.dumps(body))
                if rtype == "aws_iam_policy" and not rm:
                    continue  # the callers' policy, attached to nothing (checked on its own)
                if rm and rm.group(1) in by_addr:
                    roles[by_addr[rm.group(1)]]["managed"].append(f"{rtype}.{name}")
                else:
                    self.p.add(f"{rtype}.{name}: a managed policy; the stacks grant only inline policies")
        return roles


# ---------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------


def check_contract(m: dict, c: dict, iam: dict, p: Problems) -> None:
    """One stack's model against CONTRACT.md and iam-actions.json."""

    def eq(what: str, got: Any, want: Any) -> None:
        if got != want:
            p.add(f"{what}: has {got!r}, contract says {want!r}")

    t = m.get("table", {})
    eq("table partition key", t.get("hash_key"), c["hash_key"])
    eq("table sort key", t.get("range_key"), c["range_key"])
    eq("table billing", t.get("billing"), c["billing"])
    eq("table stream view type", t.get("stream_view_type"), c["stream_view_type"])
    eq("table TTL attribute", t.get("ttl_attribute"), c["ttl_attribute"])
    eq("table TTL enabled", t.get("ttl_enabled"), True)
    eq("table point-in-time recovery", t.get("pitr"), c["pitr"])
    eq("table server-side encryption", t.get("sse"), c["sse"])
    eq("table deletion protection", t.get("deletion_protection"), c["deletion_protection"])
    eq("table kept by the stack (SAM DeletionPolicy/UpdateReplacePolicy Retain, Terraform prevent_destroy)", t.get("retain"), True)
    gsis = t.get("gsis", {})
    eq("table GSI names", sorted(gsis), sorted(c["gsis"]))
    for name, want in c["gsis"].items():
        if name in gsis:
            eq(f"GSI {name}", gsis[name], want)
    key_attrs = {c["hash_key"][0], c["range_key"][0]} | {a for g in c["gsis"].values() for a in (g["hash"][0], g["range"][0])}
    eq("table attribute definitions", sorted(t.get("attributes", {})), sorted(key_attrs))

    missing_params = sorted(set(c["params"]) - set(m.get("params", {})))
    if missing_params:
        p.add(f"parameters: missing {missing_params}")
    for name, default in c["params"].items():
        if m.get("stack") == "tf":
            default = c["tf_param_defaults"].get(name, default)
        if name in m.get("params", {}):
            eq(f"parameter {name} default", m["params"][name], default)
    for name, want_range in c["param_ranges"].items():
        if name in m.get("params", {}):
            eq(f"parameter {name} allowed range", m.get("param_ranges", {}).get(name), want_range)

    f = m.get("function", {})
    eq("function runtime", f.get("runtime"), c["runtime"])
    eq("function architectures", f.get("architectures"), [c["architecture"]])
    eq("function handler", f.get("handler"), c["handler"])
    eq("function memory", f.get("memory"), "{param:MemorySize}")
    eq("function timeout", f.get("timeout"), "{param:Timeout}")
    eq("function log format", f.get("log_format"), c["log_format"])
    eq("function log group", f.get("log_group"), "{log_group.name}")
    eq("log group retention", m.get("log_group", {}).get("retention"), "{param:LogRetentionDays}")
    eq("function layers", f.get("layers"), ["{layer.arn}"])
    eq("layer architectures", m.get("layer", {}).get("architectures"), [c["architecture"]])
    eq("function role", f.get("role"), "{function_role.arn}")
    eq("function dead-letter queue", f.get("dead_letter"), "{dlq.arn}")
    eq("function reserved concurrency", f.get("reserved_concurrency"), f"{{param:{c['reserved_concurrency_param']}}}")
    eq("function environment names", sorted(f.get("env", {})), sorted(c["env"]))
    # Values the contract gives in words.
    referenced = {
        "CAIRN_TABLE": "{table.name}",
        "CAIRN_SCHEDULER_GROUP": "{schedule_group.name}",
        "CAIRN_SCHEDULER_ROLE_ARN": "{scheduler_role.arn}",
        SCHEDULER_DLQ_ENV: "{scheduler_dlq.arn}",
        "CAIRN_PAYLOAD_BUCKET": "{payload_bucket.name}",
    }
    referenced.update({name: f"{{param:{param}}}" for name, param in c["env_params"].items()})
    for name, param in c["env_params"].items():
        if param not in c["params"]:
            p.add(f"contract: {name} takes parameter {param}, which the parameter table does not list")
    for name, literal in c["env"].items():
        want = literal if literal is not None else referenced.get(name)
        if want is None:
            p.add(f"environment variable {name}: the contract gives no value and the test knows none")
        elif name in f.get("env", {}):
            eq(f"environment variable {name}", f["env"][name], want)
    if c["env"].get("CAIRN_COMPONENTS_DIR") != c["components_mount"]:
        p.add("contract: CAIRN_COMPONENTS_DIR differs from the layer mount point")

    e = m.get("esm", {})
    eq("stream mapping function", e.get("function"), "function")
    eq("stream mapping source", e.get("source"), "{table.stream_arn}")
    eq("stream mapping starting position", e.get("starting_position"), c["starting_position"])
    eq("stream mapping batch size", e.get("batch_size"), c["batch_size"])
    eq("stream mapping batching window", e.get("batching_window"), c["batching_window"])
    eq("stream mapping parallelization factor", e.get("parallelization"), f"{{param:{c['parallelization_param']}}}")
    eq("stream mapping response types", e.get("response_types"), c["response_types"])
    eq("stream mapping bisect", e.get("bisect"), c["bisect"])
    eq("stream mapping max retries", e.get("max_retries"), c["max_retries"])
    eq("stream mapping on-failure destination", e.get("on_failure"), "{dlq.arn}")
    eq("stream mapping filters", e.get("filters"), [c["filter"]])
    if c["on_failure_encrypted"]:
        eq("dead-letter queue encrypted", m.get("queue", {}).get("encrypted"), True)
    if c["scheduler_dlq_encrypted"]:
        eq("schedule dead-letter queue encrypted", m.get("scheduler_queue", {}).get("encrypted"), True)

    b = m.get("payload_bucket", {})
    eq("payload bucket encryption", b.get("encryption"), [c["payload_bucket"]["sse"]])
    eq("payload bucket public access blocked", b.get("public_access_blocked"), True)
    eq("payload bucket expiration (prefix, days)", b.get("expiration"), [(c["payload_bucket"]["prefix"], f"{{param:{c['payload_bucket']['retention_param']}}}")])
    eq("payload bucket aborts incomplete uploads after (days)", b.get("abort_multipart_days"), [1])
    eq("payload bucket kept by the stack (SAM DeletionPolicy/UpdateReplacePolicy Retain, Terraform prevent_destroy)", b.get("retain"), True)

    s = m.get("sweep", {})
    eq("sweep schedule group", s.get("group"), "{schedule_group.name}")
    eq("sweep expression", s.get("expression"), f"{{param:{c['sweep_param']}}}")
    eq("sweep input", s.get("input"), c["sweep_input"])
    eq("sweep target", s.get("target"), "{function.arn}")
    eq("sweep role", s.get("role"), "{scheduler_role.arn}")
    eq("sweep state", s.get("state"), "ENABLED")

    u = m.get("url", {})
    eq("Function URL auth type", u.get("auth"), c["url_auth"])
    eq("Function URL target", u.get("target"), "{function.arn}")
    eq("Function URL created only when", u.get("condition"), "{param:EnableFunctionUrl} == true")

    eq("outputs", sorted(m.get("outputs", {})), sorted(c["outputs"]))
    outs = m.get("outputs", {})
    if "TableName" in outs:
        eq("output TableName", outs["TableName"], "{table.name}")
    if "FunctionArn" in outs:
        eq("output FunctionArn", outs["FunctionArn"], "{function.arn}")
    if "FunctionUrl" in outs:
        eq("output FunctionUrl", outs["FunctionUrl"], {"when_enabled": "{url.function_url}", "otherwise": ""})
    if "SchedulerDeadLetterQueueUrl" in outs:
        eq("output SchedulerDeadLetterQueueUrl", outs["SchedulerDeadLetterQueueUrl"], "{scheduler_dlq.url}")
    if "SchedulerDeadLetterQueueArn" in outs:
        eq("output SchedulerDeadLetterQueueArn", outs["SchedulerDeadLetterQueueArn"], "{scheduler_dlq.arn}")
    if "PayloadBucketName" in outs:
        eq("output PayloadBucketName", outs["PayloadBucketName"], "{payload_bucket.name}")
    if c["caller_output"] in outs:
        eq(f"output {c['caller_output']}", outs[c["caller_output"]], "{caller_policy.arn}")

    check_names(m, c, p)
    check_alarms(m, c, p)
    check_caller(m, c, iam, p)

    roles = m.get("roles", {})
    eq("IAM roles", sorted(roles), sorted(["function_role", "scheduler_role"]))
    if c["scheduler_principal"] and "scheduler_role" in roles:
        eq("scheduler role trust", roles["scheduler_role"]["trust"], [c["scheduler_principal"]])
    if "function_role" in roles:
        eq("function role trust", roles["function_role"]["trust"], ["lambda.amazonaws.com"])
    for principal, role_kind in (("function", "function_role"), ("scheduler_role", "scheduler_role")):
        check_iam(principal, roles.get(role_kind), iam, p)
    if c["alarm_param"] not in c["params"] or c["name_param"] not in c["params"]:
        p.add("contract: the alarm topic or name prefix parameter is not in the parameter table")


def check_names(m: dict, c: dict, p: Problems) -> None:
    """Every named resource takes its name from the prefix (CONTRACT.md, "Names")."""
    for t in m.get("unknown_types", []):
        p.add(f"names: resource type {t} is unknown to the name check; add it to drift.py's NAME_PROPS (and name it from the prefix)")
    alarm_names = {c["names"]["alarm"].replace("{alarm}", a) for a in c["alarms"]}
    seen: dict[str, int] = {}
    for kind, name, unprefixed in m.get("names", []):
        seen[kind] = seen.get(kind, 0) + 1
        if kind == "alarm":
            if name not in alarm_names:
                p.add(f"names: alarm named {name!r}, not the prefix and an alarm of the contract ({sorted(alarm_names)})")
        elif kind not in c["names"]:
            p.add(f"names: a {kind} resource, which CONTRACT.md's Names table does not list")
        elif name != c["names"][kind]:
            p.add(f"names: {kind} is named {name!r}, contract says {c['names'][kind]!r}")
        if m.get("stack") == "sam" and unprefixed is not None and not (kind == "layer" and unprefixed == "{logical id}"):
            p.add(f"names: {kind} without a prefix is named {unprefixed!r}; CloudFormation must name it (AWS::NoValue)")
    for kind in c["names"]:
        if kind != "alarm" and seen.get(kind, 0) != 1:
            p.add(f"names: expected one named {kind}, found {seen.get(kind, 0)}")


def expected_alarm(a: dict, c: dict) -> dict:
    """One alarm of CONTRACT.md's Alarms table, in the model's shape."""
    series = []
    for metric in a["metrics"]:
        for ds in a["dimsets"]:
            for gsi in sorted(c["gsis"]) if ds["each_gsi"] else [None]:
                dims = {}
                for d in ds["dims"]:
                    if d == "QueueName":
                        dims[d] = f"{{{ds['queue']}.name}}"
                    elif d == "GlobalSecondaryIndexName":
                        dims[d] = gsi
                    else:
                        dims[d] = ALARM_DIMENSIONS.get(d, f"{{unknown dimension {d}}}")
                series.append((a["namespace"], metric, tuple(sorted(dims.items())), a["statistic"], a["period"]))
    topic = f"[{{param:{c['alarm_param']}}}] unless empty"
    return {
        "series": sorted(series),
        "expression": "SUM(all series)" if len(series) > 1 else None,
        "evaluation_periods": a["periods"],
        "datapoints": a["periods"],
        "threshold": a["threshold"],
        "comparison": c["alarm_comparison"],
        "treat_missing": c["alarm_missing"],
        "actions_enabled": True,
        "actions": topic,
        "ok_actions": topic,
    }


def check_alarms(m: dict, c: dict, p: Problems) -> None:
    have = m.get("alarms", {})
    want = {c["names"]["alarm"].replace("{alarm}", name): expected_alarm(a, c) for name, a in c["alarms"].items()}
    missing, extra = sorted(set(want) - set(have)), sorted(set(have) - set(want))
    if missing:
        p.add(f"alarms: missing {missing}")
    if extra:
        p.add(f"alarms: not in the contract {extra}")
    for name in sorted(set(want) & set(have)):
        for k, v in want[name].items():
            got = have[name].get(k)
            if k == "series":
                got = sorted(tuple(tuple(x) if isinstance(x, list) else x for x in s) for s in got or [])
            if got != v:
                p.add(f"alarm {name} {k}: has {got!r}, contract says {v!r}")


def check_caller(m: dict, c: dict, iam: dict, p: Problems) -> None:
    """The callers' policy: exactly iam-actions.json["caller"]; the URL only when it is on, only for AWS_IAM."""
    stmts = m.get("caller", {}).get("statements", [])
    check_iam("caller", {"statements": [s[:4] for s in stmts], "managed": []}, iam, p)
    group_of = {a: g for g, acts in iam["caller"].items() for a in acts}
    url_cond = json.dumps(c["caller_url_condition"], sort_keys=True)
    for _effect, actions, _resources, cond, when in stmts:
        for action in actions:
            if group_of.get(action) == CALLER_URL_GROUP:
                if when != URL_ON:
                    p.add(f"IAM caller: {action} granted {'always' if not when else 'when ' + when}, contract says only when {URL_ON}")
                if cond != url_cond:
                    p.add(f"IAM caller: {action} with condition {cond or 'none'}, contract says {url_cond}")
            elif action in group_of and when:
                p.add(f"IAM caller: {action} granted only when {when}; callers need it always")


def check_iam(principal: str, role: dict | None, iam: dict, p: Problems) -> None:
    """Exactly the actions of iam-actions.json[principal], each on its narrow resources."""
    if role is None:
        p.add(f"IAM {principal}: no such role")
        return
    if role["managed"]:
        p.add(f"IAM {principal}: managed policies or boundaries attached: {role['managed']}")
    want = {a for group in iam[principal].values() for a in group}
    group_of = {a: g for g, acts in iam[principal].items() for a in acts}
    granted: set[str] = set()
    for effect, actions, resources, _cond in role["statements"]:
        if effect != "Allow":
            p.add(f"IAM {principal}: a {effect} statement; the stacks use Allow only")
            continue
        for action in actions:
            granted.add(action)
            if "*" in action or "?" in action:
                p.add(f"IAM {principal}: wildcard action {action!r}")
                continue
            group = group_of.get(action)
            if group is None:
                continue  # reported below as extra
            allowed = ALLOWED_RESOURCES[(principal, group)]
            for r in resources:
                if r not in allowed:
                    p.add(f"IAM {principal}: {action} on {r!r}; its group {group!r} allows only {sorted(allowed)}")
    extra = sorted(granted - want)
    missing = sorted(want - granted)
    if extra:
        p.add(f"IAM {principal}: actions not in infra/iam-actions.json: {extra}")
    if missing:
        p.add(f"IAM {principal}: actions of infra/iam-actions.json not granted: {missing}")


COMPARED = [
    ("table",),
    ("function", "runtime"),
    ("function", "architectures"),
    ("function", "handler"),
    ("function", "memory"),
    ("function", "timeout"),
    ("function", "env"),
    ("function", "log_format"),
    ("function", "log_group"),
    ("function", "layers"),
    ("function", "dead_letter"),
    ("function", "role"),
    ("layer", "architectures"),
    ("queue",),
    ("scheduler_queue",),
    ("log_group",),
    ("esm",),
    ("sweep",),
    ("url",),
    ("outputs",),
    ("function", "reserved_concurrency"),
    ("alarms",),
    ("caller",),
]


def check_same(sam: dict, tf: dict, p: Problems, contract: dict | None = None) -> None:
    """The two stacks describe the same deployment."""
    # Parameters whose defaults the contract sets apart (NamePrefix) are not compared.
    apart = set((contract or load_contract())["tf_param_defaults"])
    na = sorted((k, n) for k, n, _ in sam.get("names", []))
    nb = sorted((k, n) for k, n, _ in tf.get("names", []))
    if na != nb:
        p.add(f"names differ: only in SAM {sorted(set(na) - set(nb))}, only in Terraform {sorted(set(nb) - set(na))}")
    for path in COMPARED:
        a, b = sam, tf
        for k in path:
            a = a.get(k) if isinstance(a, dict) else None
            b = b.get(k) if isinstance(b, dict) else None
        if a != b:
            if isinstance(a, dict) and isinstance(b, dict):
                for k in sorted(set(a) | set(b)):
                    if a.get(k) != b.get(k):
                        p.add(f"{'.'.join(path)}.{k} differs: SAM {a.get(k)!r} vs Terraform {b.get(k)!r}")
            else:
                p.add(f"{'.'.join(path)} differs: SAM {a!r} vs Terraform {b!r}")
    pa = {k: v for k, v in sam.get("params", {}).items() if k in TF_VARIABLES and k not in apart}
    pb = {k: v for k, v in tf.get("params", {}).items() if k in TF_VARIABLES and k not in apart}
    if pa != pb:
        p.add(f"parameters differ: SAM {pa!r} vs Terraform {pb!r}")
    ra = {k: v for k, v in sam.get("param_ranges", {}).items() if k in TF_VARIABLES}
    rb = {k: v for k, v in tf.get("param_ranges", {}).items() if k in TF_VARIABLES}
    if ra != rb:
        p.add(f"parameter ranges differ: SAM {ra!r} vs Terraform {rb!r}")
    for role in ("function_role", "scheduler_role"):
        ra = sam.get("roles", {}).get(role) or {}
        rb = tf.get("roles", {}).get(role) or {}
        sa, sb = set(ra.get("statements", [])), set(rb.get("statements", []))
        for st in sorted(sa - sb):
            p.add(f"{role}: statement only in SAM: {st}")
        for st in sorted(sb - sa):
            p.add(f"{role}: statement only in Terraform: {st}")
        if sorted(ra.get("trust_conditions", [])) != sorted(rb.get("trust_conditions", [])):
            p.add(f"{role}: trust conditions differ: SAM {ra.get('trust_conditions')} vs Terraform {rb.get('trust_conditions')}")


def check_sam_only(sam: dict, c: dict, p: Problems) -> None:
    """What only the SAM template says: how it builds."""
    f = sam.get("function", {})
    if f.get("build_method") != c["build_method"]:
        p.add(f"SAM BuildMethod: has {f.get('build_method')!r}, contract says {c['build_method']!r}")
    if f.get("binary") != c["binary"]:
        p.add(f"SAM BuildProperties.Binary: has {f.get('binary')!r}, contract says {c['binary']!r}")
    if f.get("code_dir") != str(ROOT):
        p.add(f"SAM CodeUri: points at {f.get('code_dir')}, not the workspace root {ROOT}")
    if f.get("sam_policies"):
        p.add("SAM function has Policies: grant through the explicit role only")
    if sam.get("layer", {}).get("source_dir") != str(ROOT / c["layer_dir"]):
        p.add(f"SAM layer ContentUri: points at {sam.get('layer', {}).get('source_dir')}, contract says {c['layer_dir']}")


def check_tf_only(tf: dict, p: Problems) -> None:
    if tf.get("function", {}).get("package") != "{param:lambda_zip_path}":
        p.add("Terraform function filename is not var.lambda_zip_path")
    if tf.get("layer", {}).get("package") != "{param:layer_zip_path}":
        p.add("Terraform layer filename is not var.layer_zip_path")


def read_stack(kind: str, path: Path) -> tuple[dict | None, Problems]:
    p = Problems()
    try:
        reader = SamReader(path, p) if kind == "sam" else TfReader(path, p)
        model = reader.model()
    except Exception as err:  # a broken stack must read as a failure, not a crash
        p.add(f"cannot read the stack: {type(err).__name__}: {err}")
        return None, p
    return model, p


def run(sam_path: Path = SAM_TEMPLATE, tf_dir: Path = TF_MODULE) -> dict[str, Problems]:
    """All checks; problems by area (empty lists when everything holds)."""
    contract = load_contract()
    iam = load_iam()
    out: dict[str, Problems] = {}
    sam, out["SAM"] = read_stack("sam", sam_path)
    tf, out["Terraform"] = read_stack("tf", tf_dir)
    if sam is not None:
        check_contract(sam, contract, iam, out["SAM"])
        check_sam_only(sam, contract, out["SAM"])
    if tf is not None:
        check_contract(tf, contract, iam, out["Terraform"])
        check_tf_only(tf, out["Terraform"])
    out["SAM vs Terraform"] = Problems()
    if sam is not None and tf is not None:
        check_same(sam, tf, out["SAM vs Terraform"], contract)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sam", type=Path, default=SAM_TEMPLATE)
    ap.add_argument("--tf", type=Path, default=TF_MODULE)
    args = ap.parse_args(argv)
    results = run(args.sam.resolve(), args.tf.resolve())
    total = 0
    for area, problems in results.items():
        print(f"drift: {area}: {'ok' if not problems else f'{len(problems)} problem(s)'}")
        for msg in problems:
            print(f"  - {msg}")
        total += len(problems)
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
