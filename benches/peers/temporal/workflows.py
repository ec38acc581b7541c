"""The workload in Temporal (Python SDK): the swap saga and the slow
4-step workflow of the crash phase. Same shape as Cairn's `swap`
(examples/swap-saga) and testkit `slow`: four sequential activities with
trivial bodies; with `fail_at_step`, that step fails non-retryably and the
steps already done are compensated in reverse; the failure lists them.

Activities are called by name, so this module stays free of IO and imports
nothing but the SDK (the workflow sandbox re-imports it)."""

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

# Cairn's swap: RetryPolicy::attempts(3).initial_interval(100 ms) per step;
# compensations retry without limit.
STEP_RETRY = RetryPolicy(maximum_attempts=3, initial_interval=timedelta(milliseconds=100))
UNDO_RETRY = RetryPolicy(maximum_attempts=0, initial_interval=timedelta(seconds=1))
STEP_TIMEOUT = timedelta(seconds=10)


def transfer(account, coin, amount):
    return {"account": account, "coin": coin, "amount": amount}


@workflow.defn(name="swap")
class Swap:
    @workflow.run
    async def run(self, inp: dict) -> dict:
        a, b = inp["a"], inp["b"]
        steps = [
            ("withdraw", transfer(a, "foo", inp["foo"]), f"withdraw foo from {a}", "deposit", f"refund foo to {a}"),
            ("withdraw", transfer(b, "bar", inp["bar"]), f"withdraw bar from {b}", "deposit", f"refund bar to {b}"),
            ("deposit", transfer(b, "foo", inp["foo"]), f"deposit foo into {b}", "withdraw", f"take back foo from {b}"),
            ("deposit", transfer(a, "bar", inp["bar"]), f"deposit bar into {a}", "withdraw", f"take back bar from {a}"),
        ]
        undo = []
        receipts = []
        for i, (activity, request, description, undo_activity, undo_description) in enumerate(steps):
            n = i + 1
            call = dict(request, fail=inp.get("fail_at_step") == n)
            try:
                receipt = await workflow.execute_activity(
                    activity, call, start_to_close_timeout=STEP_TIMEOUT, retry_policy=STEP_RETRY
                )
            except ActivityError as e:
                cause = f"swap failed at step {n} ({description}): {getattr(e.cause, 'message', e)}"
                done = []
                for desc, act, req in reversed(undo):
                    await workflow.execute_activity(
                        act, req, start_to_close_timeout=STEP_TIMEOUT, retry_policy=UNDO_RETRY
                    )
                    done.append(desc)
                raise ApplicationError(
                    f"{cause}; compensated: {', '.join(done) or 'nothing'}", non_retryable=True
                )
            receipts.append(receipt["tx"])
            undo.append((undo_description, undo_activity, request))
        return {"status": "succeeded", "receipts": receipts}


@workflow.defn(name="slow")
class Slow:
    """`steps` activities of `ms` each, one after another (testkit `slow`)."""

    @workflow.run
    async def run(self, inp: dict) -> list:
        keys = []
        for step in range(1, inp["steps"] + 1):
            keys.append(
                await workflow.execute_activity(
                    "work",
                    {"step": step, "ms": inp["ms"]},
                    # A killed worker's activity is retried once this expires
                    # (no heartbeats): twice the step's duration.
                    start_to_close_timeout=timedelta(milliseconds=2 * inp["ms"]),
                )
            )
        return keys
