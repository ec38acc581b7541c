// Restate side of the peer benchmark: runs the phases against a running
// restate-server (through its HTTP ingress, request-response) with the
// service process it starts (and kills with SIGKILL in the crash phase), and
// writes the figures as JSON in the schema benches/peers/report.py reads.
// The client is this process (Node's fetch, keep-alive).
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const COMPENSATED = "compensated: refund bar to bob, refund foo to alice";

const { values: a } = parseArgs({
  options: {
    ingress: { type: "string", default: "http://127.0.0.1:8080" },
    admin: { type: "string", default: "http://127.0.0.1:9070" },
    "service-port": { type: "string", default: "9080" },
    "server-pid": { type: "string" },
    engine: { type: "string", default: "restate" },
    config: { type: "string", default: "" },
    json: { type: "string" },
    workdir: { type: "string" },
    pidfile: { type: "string" },
    warmup: { type: "string", default: "100" },
    seq: { type: "string", default: "200" },
    tp: { type: "string", default: "2000" },
    "in-flight": { type: "string", default: "50" },
    fail: { type: "string", default: "100" },
    "crash-n": { type: "string", default: "50" },
    steps: { type: "string", default: "4" },
    ms: { type: "string", default: "2000" },
    "kill-in-step": { type: "string", default: "4" },
    "phase-timeout": { type: "string", default: "300" },
  },
});
const num = (k) => Number(a[k]);
const PHASE_MS = num("phase-timeout") * 1000;
fs.mkdirSync(a.workdir, { recursive: true });
const TRACE = path.join(a.workdir, "trace.log");
fs.rmSync(TRACE, { force: true });

// ---- measurements (same reads as procstat.py and cairn-peer) ------------
const TICK_MS = 10; // USER_HZ = 100
function cpuMs(pid) {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(")").pop().trim().split(/\s+/);
    return (Number(f[11]) + Number(f[12])) * TICK_MS;
  } catch {
    return 0;
  }
}
// Field 22 of /proc/PID/stat (scripts/bench-peers signals a PID only while
// its start time still matches).
function starttime(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(")").pop().trim().split(/\s+/)[19];
  } catch {
    return "";
  }
}
function peakRssMib(pid) {
  try {
    const l = fs.readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith("VmHWM:"));
    return Number(l.split(/\s+/)[1]) / 1024;
  } catch {
    return 0;
  }
}
const load1 = () => Number(fs.readFileSync("/proc/loadavg", "utf8").split(" ")[0]);
function machineBusyMs() {
  const v = fs.readFileSync("/proc/stat", "utf8").split("\n")[0].split(/\s+/).slice(1, 9).map(Number);
  return (v.reduce((x, y) => x + y, 0) - v[3] - v[4]) * TICK_MS;
}
const round = (x, d) => Math.round(x * 10 ** d) / 10 ** d;
class Window {
  constructor(pids) {
    this.pids = pids;
    this.t = performance.now();
    this.load1Start = load1();
    this.busy = machineBusyMs();
    this.ours = new Map(pids.map((p) => [p, cpuMs(p)]));
  }
  oursDelta() {
    return new Map(this.pids.map((p) => [p, cpuMs(p) - this.ours.get(p)]));
  }
  close(into) {
    const wall = performance.now() - this.t;
    const ours = [...this.oursDelta().values()].reduce((x, y) => x + y, 0);
    const other = machineBusyMs() - this.busy - ours;
    return Object.assign(into, {
      load1_start: this.load1Start,
      load1_end: load1(),
      other_cores: round(Math.max(other, 0) / wall, 2),
      wall_s: round(wall / 1000, 3),
    });
  }
}
function percentile(sorted, p) {
  const i = Math.round((sorted.length - 1) * p);
  return round(sorted[Math.min(i, sorted.length - 1)], 2);
}
function countKeys(keys) {
  const counts = new Map(keys.map((k) => [k, 0]));
  let unexpected = 0;
  let text = "";
  try {
    text = fs.readFileSync(TRACE, "utf8");
  } catch {}
  for (const line of text.split("\n")) {
    const k = line.split(" ")[0];
    if (!k) continue;
    if (counts.has(k)) counts.set(k, counts.get(k) + 1);
    else unexpected++;
  }
  return { counts, unexpected };
}
function exactlyOnce({ counts, unexpected }) {
  const c = [...counts.values()];
  const once = c.filter((x) => x === 1).length;
  return {
    keys_expected: c.length,
    keys_once: once,
    keys_dup: c.filter((x) => x > 1).length,
    keys_missing: c.filter((x) => x === 0).length,
    keys_unexpected: unexpected,
    exactly_once: once === c.length && unexpected === 0,
  };
}
const bounded = (what, p, ms = PHASE_MS) =>
  Promise.race([p, new Promise((_, rej) => setTimeout(() => rej(new Error(`phase '${what}' took longer than ${ms / 1000} s`)), ms).unref())]);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- the service process -------------------------------------------------
const services = [];
function startService() {
  const log = fs.openSync(path.join(a.workdir, "service.log"), "a");
  const child = spawn(process.execPath, [path.join(HERE, "service.mjs")], {
    env: { ...process.env, BENCH_TRACE: TRACE, PORT: a["service-port"] },
    stdio: ["ignore", "pipe", log],
  });
  services.push(child);
  if (a.pidfile) fs.appendFileSync(a.pidfile, `${child.pid} ${starttime(child.pid)}\n`);
  const ready = new Promise((resolve, reject) => {
    child.stdout.once("data", (d) => (String(d).startsWith("ready") ? resolve() : reject(new Error(`service: ${d}`))));
    child.once("exit", (c) => reject(new Error(`service exited: ${c}`)));
  });
  ready.catch(() => {});
  return { child, ready };
}
function stopServices() {
  for (const c of services) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
}

async function register() {
  // The admin port opens before the node is provisioned: retry for a while.
  let last;
  for (let i = 0; i < 120; i++) {
    try {
      const r = await fetch(`${a.admin}/deployments`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ uri: `http://127.0.0.1:${a["service-port"]}`, force: true }),
      });
      if (r.ok) return;
      last = `${r.status} ${await r.text()}`;
    } catch (e) {
      last = String(e);
    }
    await sleep(250);
  }
  throw new Error(`registering the deployment: ${last}`);
}

// ---- calls ---------------------------------------------------------------
// Every execution gets a caller-chosen id, as in Cairn and Temporal: the
// idempotency-key header (a second call with the same key does not run twice).
async function call(service, handler, body, id) {
  const r = await fetch(`${a.ingress}/${service}/${handler}`, {
    method: "POST",
    headers: { "content-type": "application/json", "idempotency-key": id },
    body: JSON.stringify(body),
  });
  const text = await r.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = { raw: text };
  }
  return { status: r.status, json };
}

const swapInput = (fail) => ({ a: "alice", b: "bob", foo: 10, bar: 20, fail_at_step: fail ? 3 : null });

async function swap(id, fail) {
  const t = performance.now();
  const { status, json } = await call("swap", "transfer", swapInput(fail), id);
  const ms = performance.now() - t;
  const ok = fail
    ? status >= 400 && String(json.message || "").includes(COMPENSATED)
    : status === 200 && json.status === "succeeded";
  if (!ok) throw new Error(`${id}: unexpected outcome (fail=${fail}): ${status} ${JSON.stringify(json)}`);
  return ms;
}

async function concurrently(prefix, n, inFlight) {
  let next = 0;
  const lane = async () => {
    while (next < n) {
      const i = next++;
      await swap(`${prefix}-${i}`, false);
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, n) }, lane));
}

// ---- phases --------------------------------------------------------------
const out = { engine: a.engine, config: a.config };
const run = `${Date.now().toString(36)}`; // idempotency keys are kept 1 day: unique per run

async function phases(roles) {
  const pids = Object.values(roles);
  let w = new Window(pids);
  await bounded("warm-up", (async () => {
    for (let i = 0; i < Math.floor(num("warmup") / 2); i++) await swap(`${run}-warm-${i}`, false);
    await concurrently(`${run}-warm-c`, num("warmup") - Math.floor(num("warmup") / 2), num("in-flight"));
  })());
  out.warmup = w.close({ n: num("warmup") });
  console.error(`${a.engine}: warm-up done`);

  w = new Window(pids);
  const lat = await bounded("sequential", (async () => {
    const l = [];
    for (let i = 0; i < num("seq"); i++) l.push(await swap(`${run}-seq-${i}`, false));
    return l;
  })());
  lat.sort((x, y) => x - y);
  const sd = w.oursDelta();
  out.sequential = w.close({
    n: num("seq"), p50_ms: percentile(lat, 0.5), p95_ms: percentile(lat, 0.95),
    p99_ms: percentile(lat, 0.99), max_ms: percentile(lat, 1),
    cpu_ms: Object.fromEntries(Object.entries(roles).map(([r, p]) => [r, round(sd.get(p), 1)])),
  });
  console.error(`${a.engine}: sequential ${JSON.stringify(out.sequential)}`);

  w = new Window(pids);
  const t = performance.now();
  await bounded("throughput", concurrently(`${run}-tp`, num("tp"), num("in-flight")));
  const wall = (performance.now() - t) / 1000;
  const d = w.oursDelta();
  const cpu = Object.fromEntries(Object.entries(roles).map(([r, p]) => [r, round(d.get(p), 1)]));
  const total = Object.values(cpu).reduce((x, y) => x + y, 0);
  out.throughput = w.close({
    n: num("tp"), in_flight: num("in-flight"), exec_per_s: round(num("tp") / wall, 1), cpu_ms: cpu,
    cpu_ms_per_exec: round(total / num("tp"), 3),
    cpu_ms_per_exec_excl_client: round((total - cpu.client) / num("tp"), 3),
  });
  console.error(`${a.engine}: throughput ${JSON.stringify(out.throughput)}`);

  w = new Window(pids);
  const fl = await bounded("failing", (async () => {
    const l = [];
    for (let i = 0; i < num("fail"); i++) l.push(await swap(`${run}-fail-${i}`, true));
    return l;
  })());
  fl.sort((x, y) => x - y);
  out.failing = w.close({
    n: num("fail"), p50_ms: percentile(fl, 0.5), p95_ms: percentile(fl, 0.95), ok: true,
    checked: `${num("fail")}/${num("fail")} ended failed with '${COMPENSATED}'`,
  });
  console.error(`${a.engine}: failing ${JSON.stringify(out.failing)}`);

  const rss = Object.fromEntries(Object.entries(roles).map(([r, p]) => [r, round(peakRssMib(p), 1)]));
  rss.total = round(Object.values(rss).reduce((x, y) => x + y, 0), 1);
  out.rss_mib = rss;
}

async function crash(service) {
  const n = num("crash-n"), steps = num("steps"), ms = num("ms"), k = num("kill-in-step");
  const keys = [];
  for (let i = 0; i < n; i++) for (let s = 1; s <= steps; s++) keys.push(`${run}-crash-${i}/${s}`);
  const load1Start = load1();
  const results = Array.from({ length: n }, (_, i) =>
    call("slow", "run", { id: `${run}-crash-${i}`, steps, ms }, `${run}-crash-${i}`));
  results.forEach((p) => p.catch(() => {}));
  const before = n * (k - 1);
  const done = () => [...countKeys(keys).counts.values()].reduce((x, y) => x + y, 0);
  const deadline = performance.now() + PHASE_MS / 2;
  while (done() < before) {
    if (performance.now() > deadline) throw new Error(`crash: only ${done()} of ${before} steps done in time`);
    await sleep(10);
  }
  await sleep(ms / 2);
  const exited = new Promise((r) => service.child.once("exit", r));
  service.child.kill("SIGKILL");
  await exited;
  const doneBeforeKill = done() - before;
  console.error(`${a.engine} crash: killed service ${service.child.pid} (kill -9) inside step ${k}; ${doneBeforeKill} executions had already finished it`);
  const t0 = performance.now();
  const fresh = startService();
  let completed = 0;
  for (const r of results) {
    const { status, json } = await r;
    if (status === 200 && Array.isArray(json) && json.length === steps) completed++;
  }
  const restartToDone = (performance.now() - t0) / 1000;
  const inherent = (ms / 1000) * (steps - k + 1);
  return {
    n, steps, step_ms: ms, kill_in_step: k,
    killed: "kill -9 of the service (SDK endpoint) process; a new one started on the same port (server kept running)",
    done_before_kill: doneBeforeKill,
    restart_to_all_complete_s: round(restartToDone, 3),
    inherent_s: inherent,
    overhead_s: round(restartToDone - inherent, 3),
    all_completed: completed === n, completed,
    ...exactlyOnce(countKeys(keys)),
    rss_mib: { "new service": round(peakRssMib(fresh.child.pid), 1) },
    load1_start: load1Start, load1_end: load1(),
  };
}

let code = 0;
try {
  const svc = startService();
  await bounded("service start", svc.ready, 60_000);
  await bounded("registration", register(), 60_000);
  const roles = { server: Number(a["server-pid"]), worker: svc.child.pid, client: process.pid };
  await phases(roles);
  if (num("crash-n") > 0) {
    out.crash = await bounded("crash", crash(svc));
    console.error(`${a.engine} crash: ${JSON.stringify(out.crash)}`);
  }
} catch (e) {
  console.error(`${a.engine}: ${e.stack || e}`);
  out.error = String(e);
  code = 1;
} finally {
  stopServices();
  fs.writeFileSync(a.json, JSON.stringify(out, null, 2));
}
process.exit(code);
