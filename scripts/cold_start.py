"""Cold starts of the Lambda bootstrap, measured (client of scripts/bench-cold-start).

Each run is a fresh container as Lambda makes one: a new `cairn-lambda`
process with a new, empty CAIRN_CACHE_DIR, whose first invocation is a
start of the swap workflow. The invocation is queued at the runtime API
emulator *before* the process starts (as on Lambda, where the event that
causes a cold start is waiting), so the process never idles between its
init and the event.

The function reports, in the start's `timing` (milliseconds since the
process's `main` began):
  first_write_since_process_start_ms                the first checkpoint is durable
  store_wire_since_process_start_at_first_write_ms  of which the table's requests spent on the wire
  invocation_received_since_process_start_ms        init done, event received
  component_ms                                      loading the component (deserialize or compile)
The cold start figure is first_write - store wire: the function's own work
up to its first checkpoint, the store's round trips excluded (they depend
on the network and the server, here moto).

Usage: cold_start.py --label NAME --runs N --components DIR --component HASH
                     --bootstrap PATH [--runner CMD] --lambda URL --log-prefix P --json OUT.json
The function's environment (AWS_LAMBDA_RUNTIME_API, CAIRN_TABLE, AWS_*)
comes from ours; CAIRN_COMPONENTS_DIR and CAIRN_CACHE_DIR are set per run.
"""

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request


def invoke(url, payload, out):
    req = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            out["body"] = json.loads(r.read())
    except Exception as e:  # reported by the caller
        out["error"] = repr(e)
    out["done"] = time.monotonic()


def one_run(args, i):
    cache = tempfile.mkdtemp(prefix="cairn-cold-cache-")
    env = dict(os.environ)
    env["CAIRN_COMPONENTS_DIR"] = args.components
    env["CAIRN_CACHE_DIR"] = cache
    payload = {
        "action": "start",
        "workflow": "swap",
        "id": f"cold-{args.label}-{os.getpid()}-{i}",
        "input": {"a": "alice", "b": "bob", "foo": 10, "bar": 20, "fail_at_step": None},
        "component": args.component,
    }
    out = {}
    t = threading.Thread(
        target=invoke,
        args=(f"{args.lambda_url}/2015-03-31/functions/_/invocations", payload, out),
    )
    t.start()
    time.sleep(0.2)  # the emulator holds the event before the process exists
    log = open(f"{args.log_prefix}-{args.label}-{i}.log", "w")
    spawned = time.monotonic()
    cmd = shlex.split(args.runner) + [args.bootstrap]
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=log)
    try:
        t.join(timeout=150)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        cwasm_written = [f for f in os.listdir(cache) if f.endswith(".cwasm")]
        shutil.rmtree(cache, ignore_errors=True)
    if "body" not in out:
        raise SystemExit(f"run {i} ({args.label}): no response: {out.get('error')}")
    body = out["body"]
    timing = body.get("timing")
    if body.get("status") != "completed" or not timing:
        raise SystemExit(f"run {i} ({args.label}): unexpected response {body}")
    first = timing["first_write_since_process_start_ms"]
    wire = timing["store_wire_since_process_start_at_first_write_ms"]
    return {
        "first_write_ms": first,
        "store_wire_ms": wire,
        "cold_start_ms": first - wire,
        "received_ms": timing["invocation_received_since_process_start_ms"],
        "component_ms": timing["component_ms"],
        "client_spawn_to_result_ms": (out["done"] - spawned) * 1e3,
        "compiled_into_cache": bool(cwasm_written),
        "requests": body.get("requests"),
    }


def p50(xs):
    return statistics.median(xs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--label", required=True)
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--components", required=True)
    ap.add_argument("--component", required=True)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--runner", default="", help="runs the bootstrap (e.g. qemu-aarch64-static -L DIR)")
    ap.add_argument("--lambda", dest="lambda_url", required=True)
    ap.add_argument("--log-prefix", required=True)
    ap.add_argument("--json", required=True)
    args = ap.parse_args()

    runs = [one_run(args, i) for i in range(args.runs)]
    for i, r in enumerate(runs):
        print(
            f"  {args.label} run {i}: first write {r['first_write_ms']:.1f} ms"
            f" - store wire {r['store_wire_ms']:.1f} ms = {r['cold_start_ms']:.1f} ms"
            f" (init+event {r['received_ms']:.1f}, component {r['component_ms']:.1f},"
            f" compiled: {'yes' if r['compiled_into_cache'] else 'no'})"
        )
    summary = {
        key: p50([r[key] for r in runs])
        for key in (
            "cold_start_ms",
            "first_write_ms",
            "store_wire_ms",
            "received_ms",
            "component_ms",
            "client_spawn_to_result_ms",
        )
    }
    summary["runs"] = len(runs)
    summary["compiled_runs"] = sum(r["compiled_into_cache"] for r in runs)
    summary["requests_to_first_result"] = runs[0]["requests"]
    with open(args.json, "w") as f:
        json.dump({"label": args.label, "p50": summary, "runs": runs}, f, indent=2)
    print(
        f"  {args.label}: p50 over {len(runs)} cold starts: {summary['cold_start_ms']:.1f} ms"
        f" (first write {summary['first_write_ms']:.1f} ms, of which store wire"
        f" {summary['store_wire_ms']:.1f} ms; init+event {summary['received_ms']:.1f} ms;"
        f" component {summary['component_ms']:.1f} ms; client spawn to result"
        f" {summary['client_spawn_to_result_ms']:.1f} ms)"
    )


if __name__ == "__main__":
    main()
