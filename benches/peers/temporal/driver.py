"""Temporal side of the peer benchmark: runs the phases against a running
`temporal server start-dev` with a worker it starts (and kills with SIGKILL
in the crash phase), and writes the figures as JSON in the schema
benches/peers/report.py reads. The client is this process."""

import argparse
import asyncio
import json
import os
import signal
import sys
import time

from temporalio.client import Client, WorkflowFailureError

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import procstat  # noqa: E402

COMPENSATED = "compensated: refund bar to bob, refund foo to alice"
TQ = "bench"


def swap_input(fail):
    return {"a": "alice", "b": "bob", "foo": 10, "bar": 20, "fail_at_step": 3 if fail else None}


class Workers:
    """The worker processes this driver started (their pids also go to the
    pidfile, so the script's trap can stop them if this driver dies)."""

    def __init__(self, args):
        self.args = args
        self.procs = []

    async def start(self, wait_ready=True):
        env = dict(os.environ, BENCH_TRACE=self.args.trace)
        log = open(os.path.join(self.args.workdir, "worker.log"), "ab")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, os.path.join(HERE, "worker.py"), "--address", self.args.address,
            "--task-queue", TQ, stdout=asyncio.subprocess.PIPE, stderr=log, env=env,
        )
        self.procs.append(proc)
        if self.args.pidfile:
            with open(self.args.pidfile, "a") as f:
                f.write(f"{proc.pid} {procstat.starttime(proc.pid)}\n")
        if wait_ready:
            await self.ready(proc)
        return proc

    async def ready(self, proc):
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        if line.strip() != b"ready":
            raise RuntimeError(f"worker did not start: {line!r}")

    async def stop_all(self):
        for p in self.procs:
            if p.returncode is None:
                p.kill()
                await p.wait()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--address", default="127.0.0.1:7233")
    ap.add_argument("--server-pid", type=int, required=True)
    ap.add_argument("--engine", required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--pidfile")
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--seq", type=int, default=200)
    ap.add_argument("--tp", type=int, default=2000)
    ap.add_argument("--in-flight", type=int, default=50)
    ap.add_argument("--fail", type=int, default=100)
    ap.add_argument("--crash-n", type=int, default=50)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--ms", type=int, default=2000)
    ap.add_argument("--kill-in-step", type=int, default=4)
    ap.add_argument("--phase-timeout", type=float, default=300)
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    args.trace = os.path.join(args.workdir, "trace.log")
    if os.path.exists(args.trace):
        os.remove(args.trace)

    out = {"engine": args.engine, "config": args.config}
    workers = Workers(args)
    try:
        # The port opens before the frontend serves: retry for a while.
        for attempt in range(60):
            try:
                client = await Client.connect(args.address)
                await client.count_workflows()
                break
            except Exception:
                if attempt == 59:
                    raise
                await asyncio.sleep(0.5)
        worker = await workers.start()
        roles = {"server": args.server_pid, "worker": worker.pid, "client": os.getpid()}
        await phases(args, client, roles, out)
        if args.crash_n > 0:
            out["crash"] = await asyncio.wait_for(crash(args, client, workers, worker), args.phase_timeout)
    except BaseException as e:
        out["error"] = f"{type(e).__name__}: {e}"
        raise
    finally:
        await workers.stop_all()
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


async def swap(client, wid, fail):
    t = time.perf_counter()
    try:
        r = await client.execute_workflow("swap", swap_input(fail), id=wid, task_queue=TQ)
        ok, what = (not fail and r.get("status") == "succeeded"), r
    except WorkflowFailureError as e:
        msg = getattr(e.cause, "message", str(e.cause))
        ok, what = (fail and COMPENSATED in msg), msg
    if not ok:
        raise RuntimeError(f"{wid}: unexpected outcome (fail={fail}): {what}")
    return (time.perf_counter() - t) * 1000.0


async def concurrently(client, prefix, n, in_flight):
    sem = asyncio.Semaphore(in_flight)

    async def one(i):
        async with sem:
            return await swap(client, f"{prefix}-{i}", False)

    await asyncio.gather(*(one(i) for i in range(n)))


async def phases(args, client, roles, out):
    pids = list(roles.values())
    bound = lambda c: asyncio.wait_for(c, args.phase_timeout)  # noqa: E731

    w = procstat.Window(pids)
    async def warm():
        for i in range(args.warmup // 2):
            await swap(client, f"warm-{i}", False)
        await concurrently(client, "warm-c", args.warmup - args.warmup // 2, args.in_flight)
    await bound(warm())
    out["warmup"] = w.close({"n": args.warmup})
    print(f"{args.engine}: warm-up done", file=sys.stderr)

    w = procstat.Window(pids)
    async def seq():
        return [await swap(client, f"seq-{i}", False) for i in range(args.seq)]
    lat = sorted(await bound(seq()))
    d = w.ours_delta()
    out["sequential"] = w.close({
        "n": args.seq, "p50_ms": procstat.percentile(lat, 0.5), "p95_ms": procstat.percentile(lat, 0.95),
        "p99_ms": procstat.percentile(lat, 0.99), "max_ms": procstat.percentile(lat, 1.0),
        "cpu_ms": {role: round(d[pid], 1) for role, pid in roles.items()},
    })
    print(f"{args.engine}: sequential {out['sequential']}", file=sys.stderr)

    w = procstat.Window(pids)
    t = time.perf_counter()
    await bound(concurrently(client, "tp", args.tp, args.in_flight))
    wall = time.perf_counter() - t
    d = w.ours_delta()
    cpu = {role: round(d[pid], 1) for role, pid in roles.items()}
    total = sum(cpu.values())
    out["throughput"] = w.close({
        "n": args.tp, "in_flight": args.in_flight, "exec_per_s": round(args.tp / wall, 1), "cpu_ms": cpu,
        "cpu_ms_per_exec": round(total / args.tp, 3),
        "cpu_ms_per_exec_excl_client": round((total - cpu["client"]) / args.tp, 3),
    })
    print(f"{args.engine}: throughput {out['throughput']}", file=sys.stderr)

    w = procstat.Window(pids)
    async def fails():
        return [await swap(client, f"fail-{i}", True) for i in range(args.fail)]
    lat = sorted(await bound(fails()))
    out["failing"] = w.close({
        "n": args.fail, "p50_ms": procstat.percentile(lat, 0.5), "p95_ms": procstat.percentile(lat, 0.95),
        "ok": True, "checked": f"{args.fail}/{args.fail} ended failed with '{COMPENSATED}'",
    })
    print(f"{args.engine}: failing {out['failing']}", file=sys.stderr)

    rss = {role: round(procstat.peak_rss_mib(pid), 1) for role, pid in roles.items()}
    rss["total"] = round(sum(rss.values()), 1)
    out["rss_mib"] = rss


async def crash(args, client, workers, worker):
    n, steps, ms, k = args.crash_n, args.steps, args.ms, args.kill_in_step
    keys = [f"crash-{i}/{s}" for i in range(n) for s in range(1, steps + 1)]
    load1_start = procstat.load1()
    handles = [
        await client.start_workflow("slow", {"steps": steps, "ms": ms}, id=f"crash-{i}", task_queue=TQ)
        for i in range(n)
    ]
    results = [asyncio.ensure_future(h.result()) for h in handles]
    before = n * (k - 1)
    deadline = time.monotonic() + args.phase_timeout / 2

    def done():
        c, _ = procstat.count_keys(args.trace, keys)
        return sum(c.values())

    while done() < before:
        if time.monotonic() > deadline:
            raise RuntimeError(f"crash: only {done()} of {before} steps done in time")
        await asyncio.sleep(0.01)
    await asyncio.sleep(ms / 2000.0)
    worker.send_signal(signal.SIGKILL)
    await worker.wait()
    done_before_kill = done() - before
    print(f"{args.engine} crash: killed worker {worker.pid} (kill -9) inside step {k}; "
          f"{done_before_kill} executions had already finished it", file=sys.stderr)
    t0 = time.perf_counter()
    new = await workers.start(wait_ready=False)
    completed = 0
    for r in results:
        out = await r
        completed += len(out) == steps
    restart_to_done = time.perf_counter() - t0
    inherent = ms / 1000.0 * (steps - k + 1)
    counts, unexpected = procstat.count_keys(args.trace, keys)
    res = {
        "n": n, "steps": steps, "step_ms": ms, "kill_in_step": k,
        "killed": "kill -9 of the worker process; a new worker started (server kept running)",
        "done_before_kill": done_before_kill,
        "restart_to_all_complete_s": round(restart_to_done, 3),
        "inherent_s": inherent,
        "overhead_s": round(restart_to_done - inherent, 3),
        "all_completed": completed == n, "completed": completed,
        **procstat.exactly_once(counts, unexpected),
        "rss_mib": {"new worker": round(procstat.peak_rss_mib(new.pid), 1)},
        "load1_start": load1_start, "load1_end": procstat.load1(),
    }
    print(f"{args.engine} crash: {res}", file=sys.stderr)
    return res


if __name__ == "__main__":
    asyncio.run(main())
