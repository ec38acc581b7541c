"""Temporal worker for the peer benchmark: the `swap` and `slow` workflows and
their activities. Prints `ready` once it polls. Run by driver.py (which kills
it with SIGKILL in the crash phase and starts another)."""

import argparse
import asyncio
import os
import sys

from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory
from temporalio.worker import Worker

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from workflows import Slow, Swap  # noqa: E402

TRACE = os.environ.get("BENCH_TRACE")


def _key():
    info = activity.info()
    return f"{info.workflow_id}/{info.activity_id}"


def _apply(t):
    if t.get("fail"):
        # BENIGN: an expected failure, not logged with a traceback by the SDK.
        raise ApplicationError(
            "injected failure", non_retryable=True, category=ApplicationErrorCategory.BENIGN
        )
    return {"tx": _key()}


@activity.defn(name="withdraw")
async def withdraw(t: dict) -> dict:
    return _apply(t)


@activity.defn(name="deposit")
async def deposit(t: dict) -> dict:
    return _apply(t)


@activity.defn(name="work")
async def work(inp: dict) -> str:
    """Sleeps `ms`, then appends `<idempotency key> <attempt>` to the trace
    file (one write, fsynced), like testkit's `work`."""
    await asyncio.sleep(inp["ms"] / 1000.0)
    key = _key()
    if TRACE:
        fd = os.open(TRACE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{key} {activity.info().attempt}\n".encode())
            os.fsync(fd)
        finally:
            os.close(fd)
    return key


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--address", required=True)
    p.add_argument("--task-queue", default="bench")
    args = p.parse_args()
    client = await Client.connect(args.address)
    async with Worker(
        client,
        task_queue=args.task_queue,
        workflows=[Swap, Slow],
        activities=[withdraw, deposit, work],
    ):
        print("ready", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
