// The workload in Restate (TypeScript SDK, plain JS): the swap saga and the
// slow 4-step service of the crash phase, served over HTTP/2 on 127.0.0.1.
// Same shape as Cairn's `swap` (examples/swap-saga) and testkit `slow`.
import "./polyfill.mjs";
import * as restate from "@restatedev/restate-sdk";
import * as http2 from "node:http2";
import * as fs from "node:fs";

const TRACE = process.env.BENCH_TRACE;
const PORT = Number(process.env.PORT || 9080);

const transfer = (account, coin, amount) => ({ account, coin, amount });

// Cairn's swap: RetryPolicy::attempts(3).initial_interval(100 ms) per step;
// compensations retry without limit (ctx.run's default).
const STEP_RETRY = { maxRetryAttempts: 3, initialRetryInterval: 100 };

function apply(key, t) {
  if (t.fail) throw new restate.TerminalError("injected failure");
  return { tx: key };
}

const swap = restate.service({
  name: "swap",
  handlers: {
    transfer: async (ctx, input) => {
      const { a, b } = input;
      const steps = [
        ["withdraw", transfer(a, "foo", input.foo), `withdraw foo from ${a}`, "deposit", `refund foo to ${a}`],
        ["withdraw", transfer(b, "bar", input.bar), `withdraw bar from ${b}`, "deposit", `refund bar to ${b}`],
        ["deposit", transfer(b, "foo", input.foo), `deposit foo into ${b}`, "withdraw", `take back foo from ${b}`],
        ["deposit", transfer(a, "bar", input.bar), `deposit bar into ${a}`, "withdraw", `take back bar from ${a}`],
      ];
      const id = ctx.request().id;
      const undo = [];
      const receipts = [];
      let seq = 0;
      for (let i = 0; i < steps.length; i++) {
        const [, request, description, , undoDescription] = steps[i];
        const n = i + 1;
        const call = { ...request, fail: input.fail_at_step === n };
        const key = `${id}/${++seq}`;
        let receipt;
        try {
          receipt = await ctx.run(description, () => apply(key, call), STEP_RETRY);
        } catch (e) {
          if (!(e instanceof restate.TerminalError)) throw e;
          const cause = `swap failed at step ${n} (${description}): ${e.message}`;
          const done = [];
          for (const [desc, req] of undo.reverse()) {
            const k = `${id}/${++seq}`;
            await ctx.run(desc, () => apply(k, req));
            done.push(desc);
          }
          throw new restate.TerminalError(`${cause}; compensated: ${done.join(", ") || "nothing"}`);
        }
        receipts.push(receipt.tx);
        undo.push([undoDescription, request]);
      }
      return { status: "succeeded", receipts };
    },
  },
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// `steps` steps of `ms` each; each appends `<key> <attempt>` to the trace
// file (one write, fsynced) once its sleep is over, like testkit's `work`.
const slow = restate.service({
  name: "slow",
  handlers: {
    run: async (ctx, input) => {
      const keys = [];
      for (let step = 1; step <= input.steps; step++) {
        const key = `${input.id}/${step}`;
        keys.push(
          await ctx.run(`step ${step}`, async () => {
            await sleep(input.ms);
            if (TRACE) {
              const fd = fs.openSync(TRACE, "a");
              try {
                fs.writeSync(fd, `${key} ${process.pid}\n`);
                fs.fsyncSync(fd);
              } finally {
                fs.closeSync(fd);
              }
            }
            return key;
          }),
        );
      }
      return keys;
    },
  },
});

const server = http2.createServer(restate.createEndpointHandler({ services: [swap, slow] }));
server.listen(PORT, "127.0.0.1", () => console.log("ready"));
