//! Human and JSON output.

use cairn_core::entry::human_duration;
use cairn_core::{Entry, Event, Execution, ExecutionId, ExecutionMeta, Status};
use cairn_engine::{Advance, EngineEvent, Observer};
use cairn_host::{LoadedComponent, LogLevel, WIT_PACKAGE};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

/// Prints progress to stderr as the driver reports it.
pub struct Printer {
    quiet: bool,
    started: Instant,
}

impl Printer {
    pub fn new(quiet: bool) -> Self {
        Self {
            quiet,
            started: Instant::now(),
        }
    }

    pub fn note(&self, line: &str) {
        if !self.quiet {
            eprintln!("{line}");
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

impl Observer for Printer {
    fn event(&self, _id: &ExecutionId, event: &EngineEvent) {
        if self.quiet {
            return;
        }
        let t = ms(self.started.elapsed());
        match event {
            EngineEvent::Appended(e) => eprintln!("  {}  {:>8}", entry_line(e, 70), t),
            EngineEvent::AttemptFailed {
                name,
                attempt,
                failure,
                ..
            } => {
                eprintln!(
                    "  ↻ activity '{name}' attempt {attempt} failed, retrying: {}",
                    failure.message
                )
            }
            EngineEvent::Log { level, message } => {
                let level = match level {
                    LogLevel::Trace => "trace",
                    LogLevel::Debug => "debug",
                    LogLevel::Info => "info",
                    LogLevel::Warn => "warn",
                    LogLevel::Error => "error",
                };
                eprintln!("  [{level}] {message}");
            }
            EngineEvent::Suspended {
                wake_at,
                waiting_on,
            } => match wake_at {
                Some(t) => eprintln!("  ⏸ suspended: waits for {waiting_on} (wake at {t})"),
                None => eprintln!("  ⏸ suspended: waits for {waiting_on}"),
            },
            EngineEvent::AttemptStarted { .. }
            | EngineEvent::AdvanceStarted
            | EngineEvent::RunLoaded { .. }
            | EngineEvent::AdvanceEnded { .. } => {}
        }
    }
}

/// One journal line: `#3  activity-completed  deposit  ok {...}`.
pub fn entry_line(e: &Entry, width: usize) -> String {
    let name = e.event.name().unwrap_or("");
    format!(
        "#{:<3} {:<19} {:<12} {}",
        e.index,
        e.event.kind(),
        name,
        e.event.summary(width)
    )
}

pub fn error_chain(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ")
}

pub fn outcome(id: &ExecutionId, outcome: &Advance, elapsed: Duration, quiet: bool) {
    match outcome {
        Advance::Finished {
            status: Status::Completed,
            entry,
        } => {
            if let Event::Completed { output } = &entry.event {
                if !quiet {
                    eprintln!("✔ {id} completed in {}", ms(elapsed));
                }
                println!("{}", String::from_utf8_lossy(output.as_bytes()));
            }
        }
        Advance::Finished { status, entry } => {
            let message = match &entry.event {
                Event::Failed { failure } => {
                    format!("{}: {}", failure.kind.as_str(), failure.message)
                }
                other => other.summary(200),
            };
            eprintln!("✘ {id} {status} in {}: {message}", ms(elapsed));
        }
        Advance::Suspended {
            wake_at,
            waiting_on,
        } => {
            let wake = wake_at
                .map(|t| format!(" (wake at {t})"))
                .unwrap_or_default();
            println!("{id} is waiting for {waiting_on}{wake}");
        }
        Advance::Conflict { reason } => println!("{id}: another driver is advancing it ({reason})"),
        Advance::Parked(n) => {
            eprintln!("✘ {id} parked: {n}");
            eprintln!("  its journal is kept as it was; see `cairn history {id}`");
        }
        Advance::Yielded => {
            println!(
                "{id}: yielded at the deadline (at a step boundary); `cairn resume {id}` continues"
            )
        }
    }
}

pub fn status_json(ex: &Execution) -> Value {
    let m = &ex.meta;
    let mut v = json!({
        "id": m.id,
        "workflow": m.workflow,
        "status": m.status,
        "component": m.component,
        "created_at": m.created_at.to_rfc3339(),
        "updated_at": m.updated_at.to_rfc3339(),
        "journal_len": ex.journal.len(),
        "inbox": ex.inbox.len(),
    });
    if let Some(w) = &m.waiting_on {
        v["waiting_on"] = json!(w);
    }
    if let Some(t) = m.wake_at {
        v["wake_at"] = json!(t.to_rfc3339());
    }
    if let Some(p) = &m.parked {
        v["parked"] =
            json!({"code": p.code, "index": p.index, "expected": p.expected, "got": p.got});
    }
    match ex.journal.last().map(|e| &e.event) {
        Some(Event::Completed { output }) => v["output"] = output.to_json_value(),
        Some(Event::Failed { failure }) => {
            v["failure"] = serde_json::to_value(failure).expect("json")
        }
        _ => {}
    }
    v
}

pub fn status(ex: &Execution, as_json: bool) {
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&status_json(ex)).expect("json")
        );
        return;
    }
    let m = &ex.meta;
    let detail = match (m.status, ex.journal.last().map(|e| &e.event)) {
        (Status::Waiting, _) => format!(" (waits for {})", m.waiting_on.as_deref().unwrap_or("?")),
        (Status::Parked, _) => m
            .parked
            .as_ref()
            .map(|p| format!(": {p}"))
            .unwrap_or_default(),
        (_, Some(e @ (Event::Completed { .. } | Event::Failed { .. }))) => {
            format!(": {}", e.summary(160))
        }
        _ => String::new(),
    };
    println!("{}: {}{detail}", m.id, m.status);
    println!(
        "  workflow {} · component {} · {} entries · {} inbox · updated {}",
        m.workflow,
        m.component.short(),
        ex.journal.len(),
        ex.inbox.len(),
        m.updated_at
    );
    if let Some(t) = m.wake_at {
        println!("  wakes at {t}");
    }
}

fn meta_json(m: &ExecutionMeta) -> Value {
    json!({
        "id": m.id, "workflow": m.workflow, "status": m.status, "component": m.component,
        "created_at": m.created_at.to_rfc3339(), "updated_at": m.updated_at.to_rfc3339(),
        "waiting_on": m.waiting_on, "wake_at": m.wake_at.map(|t| t.to_rfc3339()),
    })
}

pub fn list(list: &[ExecutionMeta], as_json: bool) {
    if as_json {
        let v: Vec<Value> = list.iter().map(meta_json).collect();
        println!("{}", serde_json::to_string_pretty(&v).expect("json"));
        return;
    }
    if list.is_empty() {
        println!("no executions");
        return;
    }
    println!(
        "{:<36} {:<16} {:<10} {:<24} WAITING ON",
        "ID", "WORKFLOW", "STATUS", "UPDATED"
    );
    for m in list {
        println!(
            "{:<36} {:<16} {:<10} {:<24} {}",
            m.id.as_str(),
            m.workflow,
            m.status.as_str(),
            m.updated_at.to_rfc3339(),
            m.waiting_on
                .as_deref()
                .filter(|_| m.status == Status::Waiting)
                .unwrap_or("")
        );
    }
}

/// One entry as JSON: index, kind, name, seq, at, then the event's fields.
pub fn entry_json(e: &Entry) -> Value {
    let mut v = json!({ "index": e.index, "kind": e.event.kind(), "name": e.event.name(), "at": e.at.to_rfc3339() });
    if let Some(seq) = e.event.seq() {
        v["seq"] = json!(seq);
    }
    if let Ok(Value::Object(outer)) = serde_json::to_value(&e.event)
        && let Some(Value::Object(fields)) = outer.into_iter().next().map(|(_, f)| f)
    {
        for (k, val) in fields {
            let key = if k == "name" || k == "workflow" {
                continue;
            } else {
                k
            };
            v[key] = val;
        }
    }
    v
}

pub fn history(ex: &Execution, as_json: bool) {
    if as_json {
        let v: Vec<Value> = ex.journal.iter().map(entry_json).collect();
        println!("{}", serde_json::to_string_pretty(&v).expect("json"));
        return;
    }
    let m = &ex.meta;
    println!(
        "{} · {} · {} · component {}",
        m.id,
        m.workflow,
        m.status,
        m.component.short()
    );
    let shown = match ex.journal.first().map(|e| &e.event) {
        Some(Event::Started { run, .. }) => *run,
        _ => m.run,
    };
    if m.run > 1 || shown != m.run {
        println!(
            "  run {shown} of {} (continue-as-new; see the others with `cairn history {} --run N`)",
            m.run, m.id
        );
    }
    let mut prev = None;
    for e in &ex.journal {
        let gap = prev
            .map(|p: cairn_core::Timestamp| {
                format!("+{}", human_duration(e.at.since(p).as_millis() as u64))
            })
            .unwrap_or_default();
        println!("  {}  {gap}", entry_line(e, 70));
        prev = Some(e.at);
    }
    if let Some(p) = &m.parked {
        println!(
            "  ✘ replay diverged at entry #{}: {} — expected {}, but the workflow {}",
            p.index, p.code, p.expected, p.got
        );
    }
    for item in &ex.inbox {
        println!(
            "  inbox {}: {}",
            item.id,
            serde_json::to_string(&item.message).unwrap_or_default()
        );
    }
}

pub fn inspect(path: &Path, c: &LoadedComponent, as_json: bool) {
    if as_json {
        let v = json!({
            "file": path.display().to_string(), "hash": c.hash, "size": c.size, "wit": WIT_PACKAGE,
            "sdk": c.info.sdk, "workflows": c.info.workflows, "activities": c.info.activities,
        });
        println!("{}", serde_json::to_string_pretty(&v).expect("json"));
        return;
    }
    println!("{}", path.display());
    println!("  hash        {}", c.hash);
    println!("  size        {} bytes", c.size);
    println!("  wit         {WIT_PACKAGE}");
    println!("  sdk         {}", c.info.sdk);
    println!("  workflows   {}", c.info.workflows.join(", "));
    println!("  activities  {}", c.info.activities.join(", "));
}

/// Prints replay-check results; returns the exit code (1 if any diverges).
pub fn replay_check(
    path: &Path,
    hash: &cairn_core::ComponentHash,
    results: &[(ExecutionMeta, cairn_engine::ReplayOutcome)],
    as_json: bool,
) -> u8 {
    use cairn_engine::ReplayOutcome;
    let bad = results
        .iter()
        .filter(|(_, o)| !matches!(o, ReplayOutcome::Compatible { .. }))
        .count();
    if as_json {
        let v: Vec<Value> = results
            .iter()
            .map(|(m, o)| match o {
                ReplayOutcome::Compatible { entries, finished } => {
                    json!({"id": m.id, "workflow": m.workflow, "compatible": true, "entries": entries, "finished": finished})
                }
                ReplayOutcome::Diverged(n) => json!({
                    "id": m.id, "workflow": m.workflow, "compatible": false,
                    "code": n.code, "index": n.index, "expected": n.expected, "got": n.got,
                }),
                ReplayOutcome::Failed(f) => json!({"id": m.id, "workflow": m.workflow, "compatible": false, "error": f}),
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"component": hash, "executions": v, "diverged": bad})
            )
            .expect("json")
        );
    } else {
        println!(
            "replaying {} stored execution(s) against {} ({})",
            results.len(),
            path.display(),
            hash.short()
        );
        for (m, o) in results {
            match o {
                ReplayOutcome::Compatible { entries, finished } => {
                    let how = if *finished {
                        "to its result"
                    } else {
                        "to where it waits"
                    };
                    println!(
                        "  ✔ {:<36} compatible ({entries} entries, {how})",
                        m.id.as_str()
                    );
                }
                ReplayOutcome::Diverged(n) => println!(
                    "  ✘ {:<36} diverges at entry {} ({}): expected {}, but the new code {}",
                    m.id.as_str(),
                    n.index,
                    n.code,
                    n.expected,
                    n.got
                ),
                ReplayOutcome::Failed(f) => println!("  ✘ {:<36} fails: {f}", m.id.as_str()),
            }
        }
        if bad == 0 {
            println!("compatible: every execution replays the same");
        } else {
            println!(
                "{bad} execution(s) would diverge: do not promote this component (running executions stay pinned to theirs)"
            );
        }
    }
    if bad == 0 { 0 } else { 1 }
}

/// `1.2 MiB`, `340.0 KiB`, `12 B`.
fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / f64::from(1 << 20)),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / f64::from(1 << 10)),
        n => format!("{n} B"),
    }
}

/// `collect, ordered, +10 more`, or `-`.
fn workflow_names(names: &[String]) -> String {
    match names.len() {
        0 => "-".into(),
        1..=3 => names.join(", "),
        n => format!("{}, +{} more", names[..2].join(", "), n - 2),
    }
}

/// Prints `cairn components list` (`gc` false) or `cairn components gc`.
pub fn components(report: &cairn_engine::GcReport, gc: bool, as_json: bool) {
    use cairn_engine::GcAction;
    let (kept, kept_bytes) = report.count(GcAction::Keep);
    let (removable, removable_bytes) = report.count(GcAction::Remove);
    let (removed, removed_bytes) = report.count(GcAction::Removed);
    let total: u64 = report.components.iter().map(|c| c.size).sum();
    if as_json {
        let components: Vec<Value> = report
            .components
            .iter()
            .map(|c| {
                json!({
                    "hash": c.hash, "size": c.size, "workflows": c.workflows,
                    "pinned": c.pinned, "action": c.action.as_str(), "reason": c.reason(),
                })
            })
            .collect();
        let missing: Vec<Value> = report
            .missing
            .iter()
            .map(|m| json!({"hash": m.hash, "workflows": m.workflows, "pinned": m.pinned}))
            .collect();
        let v = json!({
            "applied": report.applied, "components": components, "missing": missing,
            "bytes": total, "kept": kept, "bytes_kept": kept_bytes,
            "removable": removable, "bytes_removable": removable_bytes,
            "removed": removed, "bytes_removed": removed_bytes,
        });
        println!("{}", serde_json::to_string_pretty(&v).expect("json"));
        return;
    }
    for c in &report.components {
        let decision = match (gc, c.action) {
            (false, GcAction::Keep) => "in use".to_string(),
            (false, _) => "unused".to_string(),
            (true, a) => a.as_str().to_string(),
        };
        println!(
            "{}  {:>10}  pinned {:<3}  workflows {:<32}  {decision}: {}",
            c.hash.short(),
            human_bytes(c.size),
            c.pinned,
            workflow_names(&c.workflows),
            c.reason()
        );
    }
    for m in &report.missing {
        let mut why = Vec::new();
        if m.pinned > 0 {
            why.push(format!("{} unfinished execution(s) pinned to it", m.pinned));
        }
        if !m.workflows.is_empty() {
            why.push(format!("workflows {} point at it", m.workflows.join(", ")));
        }
        println!(
            "! {} is not stored, yet {}: store its .wasm again, or they cannot advance from the store",
            m.hash.short(),
            why.join(" and ")
        );
    }
    let n = report.components.len();
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    if !gc {
        println!(
            "{n} component{} ({}): {kept} in use, {removable} unused ({}){}",
            plural(n),
            human_bytes(total),
            human_bytes(removable_bytes),
            if removable > 0 {
                ": `cairn components gc` shows what it would remove"
            } else {
                ""
            }
        );
        return;
    }
    if report.applied {
        println!(
            "{n} component{}: {kept} kept ({}), {removed} removed ({} deleted)",
            plural(n),
            human_bytes(kept_bytes),
            human_bytes(removed_bytes)
        );
    } else {
        println!(
            "{n} component{}: {kept} kept ({}), {removable} removable ({})",
            plural(n),
            human_bytes(kept_bytes),
            human_bytes(removable_bytes)
        );
        if removable > 0 {
            println!(
                "dry run: nothing deleted; run `cairn components gc --apply` to delete the {removable} removable component{}",
                plural(removable)
            );
        } else {
            println!("dry run: nothing to remove");
        }
    }
    println!(
        "finished executions pin nothing: `status` and `history` read their journals only, and `replay-check` replays them against the new component, not their own"
    );
}
