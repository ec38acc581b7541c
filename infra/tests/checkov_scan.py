#!/usr/bin/env python3
"""Run checkov on one stack with the skips of infra/checkov-skips.yaml.

  checkov_scan.py sam         checkov --framework cloudformation on infra/sam
  checkov_scan.py terraform   checkov --framework terraform on infra/terraform

checkov drops resources whose creation is conditional and off by default (the
Function URL: `Condition: FunctionUrlEnabled` in SAM, `count = 0` in
Terraform), so it never looks at them. Each stack is therefore scanned twice
in one checkov run: as it is (`as-is/`) and as a copy with the Function URL
switched on (`url-enabled/`, only the default of EnableFunctionUrl /
enable_function_url changed).

Every skip must name its stacks and give a reason; an entry without one makes
this fail before checkov runs.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SKIPS = ROOT / "infra" / "checkov-skips.yaml"
STACKS = {
    "sam": {"dir": ROOT / "infra" / "sam", "framework": "cloudformation"},
    "terraform": {"dir": ROOT / "infra" / "terraform", "framework": "terraform"},
}
CHECKOV = Path(sys.executable).parent / "checkov"


def load_skips(path: Path = SKIPS) -> list[dict]:
    """The skip entries, checked: id, stacks, and a reason for each."""
    data = yaml.safe_load(path.read_text()) or {}
    skips = data.get("skips") or []
    seen: set[tuple[str, str]] = set()
    errors = []
    for s in skips:
        sid = s.get("id", "")
        if not re.fullmatch(r"CKV2?_[A-Z0-9]+_\d+", str(sid)):
            errors.append(f"bad check id {sid!r}")
        if not str(s.get("reason") or "").strip():
            errors.append(f"{sid}: no reason given")
        stacks = s.get("stacks") or []
        if not stacks or set(stacks) - set(STACKS):
            errors.append(f"{sid}: stacks must be a list from {sorted(STACKS)}, got {stacks!r}")
        for st in stacks:
            if (sid, st) in seen:
                errors.append(f"{sid}: listed twice for {st}")
            seen.add((sid, st))
    if errors:
        raise SystemExit(f"{path.relative_to(ROOT)}: " + "; ".join(errors))
    return skips


def skip_ids(stack: str, skips: list[dict] | None = None) -> list[str]:
    return [s["id"] for s in (skips if skips is not None else load_skips()) if stack in s["stacks"]]


def enable_function_url(text: str, stack: str) -> str:
    """The same stack text with the Function URL on by default."""
    if stack == "sam":
        return re.sub(r'(EnableFunctionUrl:\n(?:[ \t]+.*\n)*?[ \t]+Default:[ \t]*)"false"', r'\1"true"', text)
    return re.sub(r'(variable "enable_function_url" \{[^}]*?default\s*=\s*)false', r"\g<1>true", text)


def copy_url_enabled(src: Path, dst: Path, stack: str) -> None:
    """Copy a stack folder, switching the Function URL on in every file."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".terraform", "*.tfstate*", ".aws-sam"))
    pattern = "**/*.yaml" if stack == "sam" else "**/*.tf"
    for p in glob.glob(str(dst / pattern), recursive=True):
        text = Path(p).read_text()
        Path(p).write_text(enable_function_url(text, stack))


def has_url_switch(d: Path, stack: str) -> bool:
    pattern = "**/*.yaml" if stack == "sam" else "**/*.tf"
    return any(
        enable_function_url(Path(p).read_text(), stack) != Path(p).read_text()
        for p in glob.glob(str(d / pattern), recursive=True)
    )


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in STACKS:
        print(__doc__)
        return 2
    stack = argv[0]
    spec = STACKS[stack]
    skips = load_skips()
    ids = skip_ids(stack, skips)
    print(f"checkov --framework {spec['framework']} on {spec['dir'].relative_to(ROOT)} (as-is/ and url-enabled/)")
    for s in skips:
        if stack in s["stacks"]:
            print(f"  skip {s['id']}: {' '.join(str(s['reason']).split())}")
    with tempfile.TemporaryDirectory(prefix=f"cairn-checkov-{stack}-") as tmp:
        root = Path(tmp)
        shutil.copytree(spec["dir"], root / "as-is", ignore=shutil.ignore_patterns(".terraform", "*.tfstate*", ".aws-sam"))
        copy_url_enabled(spec["dir"], root / "url-enabled", stack)
        if not has_url_switch(root / "as-is", stack):
            raise SystemExit("could not find the Function URL switch to turn on; update infra/tests/checkov_scan.py")
        cmd = [
            str(CHECKOV),
            "-d",
            str(root),
            "--framework",
            spec["framework"],
            "--skip-download",
            "--compact",
            "--quiet",
        ]
        if ids:
            cmd += ["--skip-check", ",".join(ids)]
        env = {**os.environ, "BC_SKIP_MAPPING": "TRUE"}
        r = subprocess.run(cmd, env=env)
    return r.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
