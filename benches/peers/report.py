"""Merges the per-engine JSON of the peer benchmark into one table (Markdown)
and one JSON document, and checks Cairn's goals against the peers of the
same run (issue #7).

    report.py DIR OUT.md OUT.json [META.json]

DIR holds cairn.json, cairn-crash.json, restate.json, temporal-sqlite-full.json
and temporal-default.json (those that exist are reported; a missing or failed
engine shows as such)."""

import json
import os
import sys

ENGINES = [
    ("cairn", "Cairn", "embedded SQLite, every step fsynced"),
    ("cairn-dev", "Cairn dev", "`cairn dev` over HTTP, SQLite, every step fsynced"),
    ("restate", "Restate", "server defaults"),
    ("temporal-sqlite-full", "Temporal", "SQLite file, synchronous=FULL"),
    ("temporal-default", "Temporal", "dev-server defaults: in-memory SQLite"),
]

# Goals of the issue, for Cairn, as ratios within the same run.
TP_VS_RESTATE = 5.0
TP_VS_TEMPORAL = 50.0
CPU_VS_RESTATE = 0.1
RSS_MAX_MIB = 64.0
CRASH_OVERHEAD_MAX_S = 1.0
# The client/server shape (`cairn dev` over HTTP) against Restate (issue 16).
DEV_TP_VS_RESTATE = 5.0
DEV_CPU_VS_RESTATE = 0.2


def load(d, name):
    p = os.path.join(d, f"{name}.json")
    if not os.path.exists(p):
        return None
    with open(p) as f:
        return json.load(f)


def la(phase):
    """The load average beside a figure: 1-min load at the phase's start, and
    the CPU other processes used meanwhile (cores)."""
    if not phase:
        return ""
    other = phase.get("other_cores")
    other = "" if other is None else f", other {other:.2f} cores"
    return f" <sub>load {phase['load1_start']:.2f}{other}</sub>"


def fmt(x, d=1):
    return "–" if x is None else f"{x:,.{d}f}"


def cell(e, key):
    if e is None:
        return "not run"
    if "error" in e and key not in e:
        return f"failed: {e['error'][:80]}"
    p = e.get({"cpu": "throughput", "cpu_excl": "throughput", "rss": "rss_mib"}.get(key, key))
    if p is None:
        return "–"
    if key == "sequential":
        return f"{fmt(p['p50_ms'])} / {fmt(p['p95_ms'])} / {fmt(p['p99_ms'])} ms" + la(p)
    if key == "throughput":
        return f"**{fmt(p['exec_per_s'])}** exec/s" + la(p)
    if key == "cpu":
        t = e["throughput"]
        # server, then worker(s), then client, whatever order the JSON kept
        rank = lambda k: 0 if "server" in k else 2 if "client" in k else 1
        parts = " / ".join(fmt(t["cpu_ms"][k] / t["n"], 2) for k in sorted(t["cpu_ms"], key=rank))
        split = f" ({parts})" if len(t["cpu_ms"]) > 1 else ""
        return f"**{fmt(t['cpu_ms_per_exec'], 2)}** ms{split}" + la(t)
    if key == "cpu_excl":
        t = e["throughput"]
        return f"{fmt(t['cpu_ms_per_exec_excl_client'], 2)} ms" + la(t)
    if key == "failing":
        ok = "all failed with both compensations" if p.get("ok") else "CHECK FAILED"
        return f"{fmt(p['p50_ms'])} ms ({p['n']}: {ok})" + la(p)
    if key == "rss":
        parts = [f"{k} {fmt(v)}" for k, v in p.items() if k != "total"]
        split = f" ({', '.join(parts)})" if len(parts) > 1 else ""
        return f"**{fmt(p['total'])}** MiB{split}"
    if key == "crash":
        once = "exactly once" if p.get("exactly_once") else (
            f"NOT exactly once: {p.get('keys_dup')} dup, {p.get('keys_missing')} missing")
        done = f"{p.get('completed')}/{p['n']} completed"
        return (f"{fmt(p['restart_to_all_complete_s'], 2)} s (overhead {fmt(p['overhead_s'], 2)} s); "
                f"{done}, {once}") + la(p)
    return "–"


ROWS = [
    ("sequential", "Sequential, {n} runs: p50 / p95 / p99 (client start → result)"),
    ("throughput", "{n:,} executions, {in_flight} in flight"),
    ("cpu", "CPU per execution, all processes (server / worker / client)"),
    ("cpu_excl", "CPU per execution without the load-generating client"),
    ("failing", "Failing variant (step 3 fails, 2 compensations), {n} runs: p50"),
    ("rss", "Peak RSS, all processes (VmHWM)"),
    ("crash", "Crash: {n} executions of {steps} × {step_ms} ms steps, kill -9 inside step {kill_in_step}, "
     "restart → all complete"),
]


def title(runs, key, template):
    if "{" not in template:
        return template
    for e in runs.values():
        if isinstance(e.get(key), dict):
            try:
                return template.format(**e[key])
            except (KeyError, ValueError):
                pass
    return template.split(",")[0].replace("{n} ", "").replace("{n:,} ", "")


def goals(runs):
    c, r = runs.get("cairn"), runs.get("restate")
    ts = [runs.get(k) for k in ("temporal-sqlite-full", "temporal-default")]
    ts = [t for t in ts if t and "throughput" in t]
    out = []

    def add(name, ok, detail):
        out.append({"goal": name, "met": ok, "detail": detail})

    if not c or "throughput" not in c:
        return [{"goal": "all", "met": None, "detail": "Cairn did not run"}]
    ctp = c["throughput"]["exec_per_s"]
    if r and "throughput" in r:
        x = ctp / r["throughput"]["exec_per_s"]
        add(f"throughput ≥ {TP_VS_RESTATE:g}× Restate", x >= TP_VS_RESTATE,
            f"{x:.2f}× ({fmt(ctp)} vs {fmt(r['throughput']['exec_per_s'])} exec/s)")
    for t in ts:
        x = ctp / t["throughput"]["exec_per_s"]
        add(f"throughput ≥ {TP_VS_TEMPORAL:g}× {t['engine']}", x >= TP_VS_TEMPORAL,
            f"{x:.1f}× ({fmt(ctp)} vs {fmt(t['throughput']['exec_per_s'])} exec/s)")
    if r and "sequential" in r:
        a, b = c["sequential"]["p50_ms"], r["sequential"]["p50_ms"]
        add("sequential p50 ≤ Restate's, every step durable", a <= b, f"{a:.2f} ms vs {b:.2f} ms ({a / b:.2f}×)")
    if r and "throughput" in r:
        a, b = c["throughput"]["cpu_ms_per_exec"], r["throughput"]["cpu_ms_per_exec"]
        b2 = r["throughput"]["cpu_ms_per_exec_excl_client"]
        add(f"CPU per execution ≤ {CPU_VS_RESTATE:g}× Restate's", a <= CPU_VS_RESTATE * b,
            f"{a / b:.3f}× all processes ({a:.2f} vs {b:.2f} ms); {a / b2:.3f}× without Restate's client ({b2:.2f} ms)")
    rss = c.get("rss_mib", {}).get("total")
    if rss is not None:
        add(f"total RSS ≤ {RSS_MAX_MIB:g} MiB", rss <= RSS_MAX_MIB, f"{rss:.1f} MiB")
    cr = c.get("crash")
    if cr:
        ok = bool(cr.get("all_completed") and cr.get("exactly_once") and cr["overhead_s"] <= CRASH_OVERHEAD_MAX_S)
        add("crash: all complete exactly once within 1 s of the restart", ok,
            f"restart → all complete {cr['restart_to_all_complete_s']:.2f} s = the interrupted step's "
            f"{cr['inherent_s']:g} s re-run + {cr['overhead_s']:.2f} s; "
            f"{cr.get('completed')}/{cr['n']} completed, exactly once: {cr.get('exactly_once')}")
    else:
        add("crash: all complete exactly once within 1 s of the restart", None, "crash phase did not run")
    return out


def dev_goals(runs):
    """`cairn dev` driven over HTTP against Restate, same run (issue 16)."""
    c, r = runs.get("cairn-dev"), runs.get("restate")
    if not c or "throughput" not in c:
        return []
    if not r or "throughput" not in r:
        return [{"goal": "cairn dev vs Restate", "met": None, "detail": "Restate did not run"}]
    out = []
    ctp, rtp = c["throughput"]["exec_per_s"], r["throughput"]["exec_per_s"]
    out.append({"goal": f"cairn dev: throughput ≥ {DEV_TP_VS_RESTATE:g}× Restate", "met": ctp / rtp >= DEV_TP_VS_RESTATE,
                "detail": f"{ctp / rtp:.2f}× ({fmt(ctp)} vs {fmt(rtp)} exec/s, 50 in flight)"})
    a, b = c["throughput"]["cpu_ms_per_exec"], r["throughput"]["cpu_ms_per_exec"]
    out.append({"goal": f"cairn dev: CPU per execution ≤ {DEV_CPU_VS_RESTATE:g}× Restate's", "met": a <= DEV_CPU_VS_RESTATE * b,
                "detail": f"{a / b:.3f}× (server and client: {a:.3f} vs {b:.3f} ms)"})
    a, b = c["sequential"]["p50_ms"], r["sequential"]["p50_ms"]
    out.append({"goal": "cairn dev: p50 latency ≤ Restate's", "met": a <= b, "detail": f"{a:.2f} ms vs {b:.2f} ms"})
    return out


def figures(runs):
    """`figure:` lines, for the client/server shape and its peer."""
    lines = []
    for key, name in (("cairn-dev", "cairn_dev"), ("restate", "restate"), ("cairn", "cairn_embedded")):
        e = runs.get(key)
        if not e or "throughput" not in e:
            continue
        t, s = e["throughput"], e.get("sequential", {})
        load = t.get("load1_start")
        lines.append(f"figure: peers_{name}_throughput_50_in_flight={t['exec_per_s']} exec/s (load {load})")
        lines.append(f"figure: peers_{name}_cpu_per_workflow={t['cpu_ms_per_exec']} ms (all processes; load {load})")
        if "p50_ms" in s:
            lines.append(f"figure: peers_{name}_p50_latency={s['p50_ms']} ms (load {s.get('load1_start')})")
    c, r = runs.get("cairn-dev"), runs.get("restate")
    if c and r and "throughput" in c and "throughput" in r:
        lines.append(f"figure: peers_cairn_dev_vs_restate_throughput={c['throughput']['exec_per_s'] / r['throughput']['exec_per_s']:.2f} x")
        lines.append(f"figure: peers_cairn_dev_vs_restate_cpu={c['throughput']['cpu_ms_per_exec'] / r['throughput']['cpu_ms_per_exec']:.3f} x")
        lines.append(f"figure: peers_cairn_dev_vs_restate_p50={c['sequential']['p50_ms'] / r['sequential']['p50_ms']:.2f} x")
    return lines


def main():
    d, md_path, json_path = sys.argv[1:4]
    meta = {}
    if len(sys.argv) > 4 and os.path.exists(sys.argv[4]):
        with open(sys.argv[4]) as f:
            meta = json.load(f)
    runs = {}
    for key, _, _ in ENGINES:
        e = load(d, key)
        if key == "cairn":
            cr = load(d, "cairn-crash")
            if cr:
                e = e or {"engine": "cairn"}
                e["crash"] = cr.get("crash")
                if "error" in cr:
                    e["crash_error"] = cr["error"]
        if e is not None:
            runs[key] = e
    cols = [(k, f"{n} ({what})") for k, n, what in ENGINES]
    lines = []
    lines.append("| | " + " | ".join(c for _, c in cols) + " |")
    lines.append("|---|" + "---|" * len(cols))
    for key, tmpl in ROWS:
        lines.append(f"| {title(runs, key, tmpl)} | " + " | ".join(cell(runs.get(k), key) for k, _ in cols) + " |")
    g = goals(runs) + dev_goals(runs)
    mark = {True: "met", False: "**missed**", None: "not measured"}
    glines = ["| goal (Cairn, same run) | | measured |", "|---|---|---|"]
    glines += [f"| {x['goal']} | {mark[x['met']]} | {x['detail']} |" for x in g]
    head = [
        "# Cairn vs Temporal vs Restate: the swap saga, side by side",
        "",
        f"Machine: {meta.get('machine', '?')}. Run: {meta.get('date', '?')} "
        f"(commit {meta.get('commit', '?')}). Command: `{meta.get('command', 'scripts/bench-peers')}`.",
        "Each figure carries the 1-minute load average at the start of its phase and the CPU that "
        "processes outside the benchmark used meanwhile (`other`, cores). The load average also counts "
        "the benchmark's own processes (a Temporal run keeps both cores busy for minutes), so `other` "
        "is the measure of interference.",
        "",
    ]
    notes = [
        "",
        "Workload: transfer(a, b) = 4 sequential activities/steps with trivial bodies (withdraw A, "
        "withdraw B, deposit B, deposit A); each execution has a caller-chosen id (Temporal workflow id, "
        "Restate idempotency key). Latency is measured by the client from start to result. CPU is "
        "utime+stime of every process over the throughput phase, divided by its executions. "
        "Crash: 50 executions of 4 steps of 2 s; the worker/host is killed with SIGKILL in the middle "
        "of step 4 and restarted; the interrupted step must run again (2 s), 'overhead' is the rest. "
        "Exactly once: every `<execution>/<step>` key appears once in the effects file.",
    ]
    md = "\n".join(head + lines + ["", "## Goals", ""] + glines + notes) + "\n"
    print(md)
    for line in figures(runs):
        print(line)
    with open(md_path, "w") as f:
        f.write(md)
    with open(json_path, "w") as f:
        json.dump({"meta": meta, "engines": runs, "goals": g}, f, indent=2)


if __name__ == "__main__":
    main()
