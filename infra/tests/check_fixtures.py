#!/usr/bin/env python3
"""Prove the infra checks catch broken stacks.

Each case below is a deliberately broken copy of one of the two stacks, one
breakage each (CASES below), rendered from the current stack into a temporary
folder at every run (so the copies never go stale and are not kept in the
repository). This runs every check on every copy -- cfn-lint
(SAM copies), checkov with the skips of infra/checkov-skips.yaml, and the drift
test (drift.py, against the other, unbroken stack) -- prints which check
caught which copy, and fails unless each copy is caught by the checks its case
names, for the reason it names.

  check_fixtures.py          check (what scripts/check-infra runs)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import checkov_scan  # noqa: E402
import drift  # noqa: E402

ROOT = drift.ROOT
# Where the broken copies are rendered: a temporary folder set by main().
FIXTURES = HERE / "fixtures"
BIN = Path(sys.executable).parent

# Each case: the stack it breaks, how (one exact text replacement in the real
# stack: SAM template.yaml or Terraform main.tf), and which checks must catch
# it, each with a text that its failure output must contain.
CASES = [
    {
        "name": "sam-wildcard-action",
        "stack": "sam",
        "broken": "the function role grants dynamodb:* instead of the seven table actions",
        "old": "\n".join(
            ["                Action:"]
            + [
                f"                  - dynamodb:{a}"
                for a in ("ConditionCheckItem", "DescribeTable", "GetItem", "PutItem", "Query", "TransactWriteItems", "UpdateItem")
            ]
        ),
        "new": "                Action:\n                  - dynamodb:*",
        "caught_by": {"drift": "wildcard action 'dynamodb:*'"},
    },
    {
        "name": "sam-wrong-key-schema",
        "stack": "sam",
        "broken": "the table's partition key is `id`, not `pk` (and not even an attribute definition)",
        "old": "        - { AttributeName: pk, KeyType: HASH }",
        "new": "        - { AttributeName: id, KeyType: HASH }",
        "caught_by": {"cfn-lint": "E3039", "drift": "table partition key"},
    },
    {
        "name": "sam-missing-required-property",
        "stack": "sam",
        "broken": "the sweep schedule lacks FlexibleTimeWindow, which CloudFormation requires",
        "old": '      FlexibleTimeWindow:\n        Mode: "OFF"\n',
        "new": "",
        "caught_by": {"cfn-lint": "E3003"},
    },
    {
        "name": "sam-missing-lease-env",
        "stack": "sam",
        "broken": "the function lacks CAIRN_LEASE_SECONDS (the LeaseSeconds parameter feeds nothing)",
        "old": "          CAIRN_LEASE_SECONDS: !Ref LeaseSeconds\n",
        "new": "",
        "caught_by": {"drift": "function environment names"},
    },
    {
        "name": "sam-public-function-url",
        "stack": "sam",
        "broken": "the Function URL has AuthType NONE (open to anyone)",
        "old": "      AuthType: AWS_IAM",
        "new": "      AuthType: NONE",
        "caught_by": {"checkov": "CKV_AWS_258", "drift": "Function URL auth type"},
    },
    {
        "name": "tf-missing-gsi",
        "stack": "terraform",
        "broken": "the by-wake index is gone",
        "old": (
            "  # Sparse: only executions with a wake time carry `wake_bucket` (`w#<shard>`).\n"
            "  global_secondary_index {\n"
            '    name            = "by-wake"\n'
            '    hash_key        = "wake_bucket"\n'
            '    range_key       = "wake_at"\n'
            '    projection_type = "KEYS_ONLY"\n'
            "  }\n\n"
        ),
        "new": "",
        "caught_by": {"drift": "table GSI names"},
    },
    {
        "name": "tf-extra-iam-action",
        "stack": "terraform",
        "broken": "the function role also grants dynamodb:Scan",
        "old": '      "dynamodb:UpdateItem",\n',
        "new": '      "dynamodb:UpdateItem",\n      "dynamodb:Scan",\n',
        "caught_by": {"drift": "actions not in infra/iam-actions.json: ['dynamodb:Scan']"},
    },
    {
        "name": "tf-wildcard-resource",
        "stack": "terraform",
        "broken": 'sqs:SendMessage on any queue ("*") instead of the dead-letter queue',
        "old": "    resources = [aws_sqs_queue.dead_letter.arn]",
        "new": '    resources = ["*"]',
        "caught_by": {"checkov": "CKV_AWS_111", "drift": "sqs:SendMessage on '*'"},
    },
    {
        "name": "tf-unencrypted-queue",
        "stack": "terraform",
        "broken": "the dead-letter queue is not encrypted",
        "old": '  name                      = "${var.name_prefix}-dead-letter"\n  sqs_managed_sse_enabled   = true',
        "new": '  name                      = "${var.name_prefix}-dead-letter"\n  sqs_managed_sse_enabled   = false',
        "caught_by": {"checkov": "CKV_AWS_27", "drift": "dead-letter queue encrypted"},
    },
    {
        "name": "sam-payload-grant-bucket-wide",
        "stack": "sam",
        "broken": "the function may read and write every object of the payload bucket, not only payloads/",
        "old": '                Resource: !Sub "${PayloadBucket.Arn}/payloads/*"',
        "new": '                Resource: !Sub "${PayloadBucket.Arn}/*"',
        "caught_by": {"drift": "s3:GetObject on '{payload_bucket.arn}/*'"},
    },
    {
        "name": "tf-payload-bucket-public",
        "stack": "terraform",
        "broken": "the payload bucket's public access is not blocked",
        "old": "  restrict_public_buckets = true\n",
        "new": "  restrict_public_buckets = false\n",
        "caught_by": {"drift": "payload bucket public access blocked"},
    },
    {
        "name": "sam-table-deletable",
        "stack": "sam",
        "broken": "the table has no deletion protection",
        "old": "      DeletionProtectionEnabled: true\n",
        "new": "",
        "caught_by": {"drift": "table deletion protection"},
    },
    {
        "name": "tf-table-destroyable",
        "stack": "terraform",
        "broken": "Terraform may destroy the table (no prevent_destroy)",
        "old": "  lifecycle {\n    prevent_destroy = true\n  }\n",
        "new": "",
        "caught_by": {"drift": "table kept by the stack"},
    },
    {
        "name": "sam-unprefixed-queue",
        "stack": "sam",
        "broken": "the schedule dead-letter queue is not named from NamePrefix (two environments would share it)",
        "old": '      QueueName: !If [HasNamePrefix, !Sub "${NamePrefix}-scheduler-dead-letter", !Ref AWS::NoValue]\n',
        "new": "",
        "caught_by": {"drift": "names: scheduler_dlq is named None"},
    },
    {
        "name": "tf-hardcoded-role-name",
        "stack": "terraform",
        "broken": "the scheduler role has a fixed name instead of the prefix",
        "old": '  name               = "${var.name_prefix}-scheduler"\n',
        "new": '  name               = "cairn-scheduler"\n',
        "caught_by": {"drift": "names: scheduler_role is named 'cairn-scheduler'"},
    },
    {
        "name": "sam-alarm-wrong-metric",
        "stack": "sam",
        "broken": "the dropped-invocations alarm watches a metric Scheduler does not publish",
        "old": "      MetricName: InvocationDroppedCount\n",
        "new": "      MetricName: InvocationsDropped\n",
        "caught_by": {"drift": "scheduler-dropped series"},
    },
    {
        "name": "tf-alarm-without-actions",
        "stack": "terraform",
        "broken": "the iterator age alarm notifies nobody even when alarm_topic_arn is set",
        "old": '  alarm_name          = "${var.name_prefix}-stream-iterator-age"\n',
        "new": '  alarm_name          = "${var.name_prefix}-stream-iterator-age"\n  actions_enabled     = false\n',
        "caught_by": {"checkov": "CKV_AWS_319", "drift": "stream-iterator-age actions_enabled"},
    },
    {
        "name": "tf-caller-url-unconditioned",
        "stack": "terraform",
        "broken": "the callers' policy grants lambda:InvokeFunctionUrl without the AWS_IAM auth type condition",
        "old": '      condition {\n        test     = "StringEquals"\n        variable = "lambda:FunctionUrlAuthType"\n        values   = ["AWS_IAM"]\n      }\n',
        "new": "",
        "caught_by": {"drift": "lambda:InvokeFunctionUrl with condition none"},
    },
    {
        "name": "sam-caller-any-function",
        "stack": "sam",
        "broken": "the callers' policy lets its holder invoke any function",
        "old": "              - lambda:InvokeFunction\n            Resource: !GetAtt Function.Arn\n          - !If",
        "new": '              - lambda:InvokeFunction\n            Resource: "*"\n          - !If',
        "caught_by": {"drift": "IAM caller: lambda:InvokeFunction on '*'"},
    },
    {
        "name": "sam-allow-http-fixed",
        "stack": "sam",
        "broken": "CAIRN_ALLOW_HTTP is \"*\" (every host) instead of the AllowHttp parameter",
        "old": "          CAIRN_ALLOW_HTTP: !Ref AllowHttp\n",
        "new": '          CAIRN_ALLOW_HTTP: "*"\n',
        "caught_by": {"drift": "environment variable CAIRN_ALLOW_HTTP"},
    },
    {
        "name": "tf-allow-http-not-joined",
        "stack": "terraform",
        "broken": "CAIRN_ALLOW_HTTP is the allow_http list itself, not joined with \",\"",
        "old": 'join(",", var.allow_http)',
        "new": "var.allow_http",
        "caught_by": {"drift": "environment variable CAIRN_ALLOW_HTTP"},
    },
    {
        "name": "tf-missing-extra-roots-env",
        "stack": "terraform",
        "broken": "the function lacks CAIRN_HTTP_EXTRA_ROOTS (the http_extra_roots variable feeds nothing)",
        "old": '      CAIRN_HTTP_EXTRA_ROOTS        = join(",", var.http_extra_roots)\n',
        "new": "",
        "caught_by": {"drift": "function environment names"},
    },
]


def fixture_path(case: dict) -> Path:
    """The copy: a template file (SAM) or a module folder (Terraform)."""
    d = FIXTURES / case["name"]
    return d / "template.yaml" if case["stack"] == "sam" else d


def render(case: dict) -> dict[str, str]:
    """The broken copy's files, by name."""
    if case["stack"] == "sam":
        text = drift.SAM_TEMPLATE.read_text()
        # The copy sits two folders deeper: keep CodeUri/ContentUri on the same targets.
        rel = os.path.relpath(drift.SAM_TEMPLATE.parent, FIXTURES / case["name"])
        text = re.sub(r"(CodeUri|ContentUri): \.\./\.\.", lambda m: f"{m.group(1)}: {rel}/../..", text)
        files = {"template.yaml": text}
        target = "template.yaml"
    else:
        files = {p.name: p.read_text() for p in sorted(drift.TF_MODULE.glob("*.tf"))}
        target = "main.tf"
    if files[target].count(case["old"]) != 1:
        raise SystemExit(f"{case['name']}: the text to break is not in the current stack exactly once; update CASES")
    files[target] = files[target].replace(case["old"], case["new"])
    header = {
        "sam": f"# BROKEN ON PURPOSE (infra/tests/check_fixtures.py, case {case['name']}): {case['broken']}\n",
        "terraform": f"# BROKEN ON PURPOSE (infra/tests/check_fixtures.py, case {case['name']}): {case['broken']}\n",
    }[case["stack"]]
    files[target] = header + files[target]
    return files


def write_copies() -> None:
    """Renders every case's broken copy under FIXTURES."""
    for case in CASES:
        d = FIXTURES / case["name"]
        d.mkdir(parents=True)
        for name, text in render(case).items():
            (d / name).write_text(text)


def load_skips() -> dict[str, list[str]]:
    skips = checkov_scan.load_skips()
    return {stack: checkov_scan.skip_ids(stack, skips) for stack in checkov_scan.STACKS}


# -- the checks, each run once over all copies ---------------------------------------


def run_cfn_lint(cases: list[dict]) -> dict[str, list[str]]:
    paths = [str(fixture_path(c)) for c in cases if c["stack"] == "sam"]
    found: dict[str, list[str]] = {c["name"]: [] for c in cases}
    if not paths:
        return found
    r = subprocess.run([str(BIN / "cfn-lint"), "--format", "parseable", *paths], capture_output=True, text=True)
    for line in r.stdout.splitlines():
        for c in cases:
            if c["stack"] == "sam" and line.startswith(str(fixture_path(c)) + ":"):
                # path:line:col:endline:endcol:RULE:message
                parts = line[len(str(fixture_path(c))) + 1 :].split(":", 5)
                found[c["name"]].append(f"{parts[4]} {parts[5]}" if len(parts) == 6 else line)
    if r.returncode not in (0, 2, 4, 6, 8, 10, 12, 14):
        raise SystemExit(f"cfn-lint crashed ({r.returncode}): {r.stderr[-2000:]}")
    return found


def run_checkov(cases: list[dict]) -> dict[str, list[str]]:
    """One checkov run over (a Function-URL-enabled copy of) the fixtures; the
    per-stack skips of infra/checkov-skips.yaml are applied to its results."""
    skips = load_skips()
    found: dict[str, list[str]] = {c["name"]: [] for c in cases}
    with tempfile.TemporaryDirectory(prefix="cairn-fixtures-") as tmp:
        root = Path(tmp)
        for c in cases:
            checkov_scan.copy_url_enabled(FIXTURES / c["name"], root / c["name"], c["stack"])
        r = subprocess.run(
            [str(BIN / "checkov"), "-d", str(root), "--framework", "cloudformation", "terraform"]
            + ["--skip-download", "--quiet", "-o", "json"],
            capture_output=True,
            text=True,
            env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
        )
    if r.returncode not in (0, 1):
        raise SystemExit(f"checkov crashed ({r.returncode}): {r.stderr[-2000:]}")
    reports = json.loads(r.stdout or "[]")
    if isinstance(reports, dict):
        reports = [reports]
    for report in reports:
        stack = {"cloudformation": "sam", "terraform": "terraform"}.get(report.get("check_type"))
        for fc in (report.get("results") or {}).get("failed_checks", []):
            if fc["check_id"] in skips.get(stack, []):
                continue
            fpath = fc.get("file_path", "")
            for c in cases:
                if c["stack"] == stack and fpath.startswith(f"/{c['name']}/"):
                    found[c["name"]].append(f"{fc['check_id']} {fc.get('check_name', '')} ({fc.get('resource', '')})")
    return found


def run_drift(cases: list[dict]) -> dict[str, list[str]]:
    found = {}
    for c in cases:
        if c["stack"] == "sam":
            results = drift.run(sam_path=fixture_path(c), tf_dir=drift.TF_MODULE)
        else:
            results = drift.run(sam_path=drift.SAM_TEMPLATE, tf_dir=fixture_path(c))
        found[c["name"]] = [f"{area}: {msg}" for area, problems in results.items() for msg in problems]
    return found


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.parse_args(argv)
    global FIXTURES
    with tempfile.TemporaryDirectory(prefix="cairn-broken-stacks-") as tmp:
        FIXTURES = Path(tmp)
        write_copies()
        results = {"cfn-lint": run_cfn_lint(CASES), "checkov": run_checkov(CASES), "drift": run_drift(CASES)}

    failures = 0
    for c in CASES:
        print(f"\n{c['name']} ({c['stack']}): {c['broken']}")
        for check, by_case in results.items():
            applicable = not (check == "cfn-lint" and c["stack"] != "sam")
            findings = by_case.get(c["name"], [])
            want = c["caught_by"].get(check)
            if not applicable:
                status = "n/a"
            elif findings:
                status = "CAUGHT"
            else:
                status = "passed (not caught)"
            line = f"  {check:9} {status}"
            if findings:
                shown = [f for f in findings if want and want in f] or findings
                line += f": {shown[0]}" + (f" (+{len(findings) - 1} more)" if len(findings) > 1 else "")
            if want is not None:
                ok = any(want in f for f in findings)
                line += "   [expected: ok]" if ok else f"   [EXPECTED to catch it with {want!r}]"
                failures += not ok
            print(line)
    caught = sum(1 for c in CASES if any(results[k].get(c["name"]) for k in results))
    print(f"\nfixtures: {caught}/{len(CASES)} caught; {failures} expected catch(es) missing")
    return 1 if failures or caught != len(CASES) else 0


if __name__ == "__main__":
    sys.exit(main())
