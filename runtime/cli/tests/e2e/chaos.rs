//! Crash harness: `kill -9` at random points, then `cairn resume`, on both
//! stores.
//!
//! Each execution is driven by `cairn run`, then `cairn resume` until it
//! finishes; any of those processes may be killed:
//!
//! - at a random wall-clock delay with SIGKILL (during start-up, replay, an
//!   activity, an append, a durable timer, a suspend…), and
//! - deterministically with `CAIRN_TEST_CRASH_BEFORE_APPEND=N`: the driver
//!   aborts right before appending entry N, after that entry's effect (an
//!   activity's ledger line) happened.
//!
//! Workloads: swap-saga (success, and failure at each step with its
//! compensations), whose activities record their effect in a ledger keyed by
//! the idempotency key; testkit's `slow` (activities that take time and log
//! every run), `nap` (a durable timer) and `approval` (a durable timer, then
//! a signal wait with a timeout).
//!
//! Checks, once every execution is done: each finished with the expected
//! outcome; each journal has indexes `0..n` with no gap and no duplicate and
//! the same entries as an uninterrupted run; each swap activity's effect is
//! in the ledger exactly once; a `slow` step journaled before a kill is not
//! run again after it. The figures are printed (`--nocapture`) before the
//! assertions.
//!
//! The seed is printed; `CAIRN_CHAOS_SEED=N` replays the same choices (the
//! kill delays are wall-clock, so the exact landing point can still differ).

use crate::support::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn sqlite_survives_kill_9_at_random_points() {
    chaos(Env::sqlite(), "sqlite");
}

#[test]
fn dynamodb_survives_kill_9_at_random_points() {
    chaos(Env::dynamo(), "dynamodb");
}

/// SplitMix64: small, seeded, good enough to pick kill points.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi` (`lo` if the range is empty).
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            lo
        } else {
            lo + self.next() % (hi - lo)
        }
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

fn seed() -> u64 {
    match std::env::var("CAIRN_CHAOS_SEED") {
        Ok(s) => s
            .parse()
            .unwrap_or_else(|_| panic!("CAIRN_CHAOS_SEED must be a u64, got {s:?}")),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    }
}

/// What an execution runs.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Workload {
    /// swap-saga; `Some(n)` fails at step n (then compensates).
    Swap(Option<u8>),
    /// testkit `slow`: 3 activities of 250 ms, each logging its run.
    Slow,
    /// testkit `nap`: one 1.5 s durable timer.
    Nap,
    /// testkit `approval`: a 1.2 s durable timer, then a signal wait that
    /// times out after 1.2 s.
    Approval,
}

impl Workload {
    fn all() -> Vec<Workload> {
        vec![
            Workload::Swap(None),
            Workload::Swap(Some(1)),
            Workload::Swap(Some(2)),
            Workload::Swap(Some(3)),
            Workload::Swap(Some(4)),
            Workload::Slow,
            Workload::Nap,
            Workload::Approval,
        ]
    }

    fn is_swap(self) -> bool {
        matches!(self, Workload::Swap(_))
    }

    /// `cairn run` arguments (without the id).
    fn run_args(self) -> Vec<String> {
        let (component, workflow, input) = match self {
            Workload::Swap(None) => (SWAP_SAGA, "swap", SWAP_OK.to_string()),
            Workload::Swap(Some(n)) => (SWAP_SAGA, "swap", swap_failing_at(n)),
            Workload::Slow => (TESTKIT, "slow", r#"{"steps": 3, "ms": 250}"#.into()),
            Workload::Nap => (TESTKIT, "nap", "1500".into()),
            Workload::Approval => (
                TESTKIT,
                "approval",
                r#"{"delay_ms": 1200, "timeout_ms": 1200}"#.into(),
            ),
        };
        vec![
            "run".into(),
            component.into(),
            "-w".into(),
            workflow.into(),
            "-i".into(),
            input,
        ]
    }

    /// The first process waits out timers for real (so that kills land
    /// during them); resumes skip time.
    fn skip_time_on_resume(self) -> bool {
        matches!(self, Workload::Nap | Workload::Approval)
    }
}

/// How a process is ended.
#[derive(Clone, Copy, Debug)]
enum Kill {
    /// Left alone.
    None,
    /// SIGKILL after this long, if it still runs.
    After(Duration),
    /// `CAIRN_TEST_CRASH_BEFORE_APPEND=N`.
    BeforeAppend(u32),
}

/// What happened to one process.
enum Ended {
    /// It exited by itself with this code.
    Exited(i32),
    /// We killed it, or the test hook aborted it.
    Killed,
}

/// The figures of one store.
#[derive(Default, Debug)]
struct Figures {
    kill_attempts: u64,
    kill_points: u64,
    wall_clock_kills: u64,
    hook_kills: u64,
    missed: u64,
    executions: u64,
    completed_as_expected: u64,
    duplicate_entries: u64,
    lost_entries: u64,
    index_gaps: u64,
    duplicate_effects: u64,
    lost_effects: u64,
    stray_effects: u64,
    reruns_of_journaled_steps: u64,
    activity_reruns: u64,
    problems: Vec<String>,
}

/// One store under test, its ledger and trace directories.
struct Harness {
    env: Env,
    ledger: PathBuf,
    trace: PathBuf,
    logs: PathBuf,
    n: u64,
    executions: u64,
    first_table: String,
}

impl Harness {
    fn new(env: Env) -> Self {
        let root = match &env {
            Env::Sqlite(c) => c.path().to_path_buf(),
            Env::Dynamo(d) => d.c.path().to_path_buf(),
        };
        let dir = |name: &str| {
            let d = root.join(name);
            std::fs::create_dir_all(&d).unwrap();
            d
        };
        Self {
            ledger: dir("ledger"),
            trace: dir("trace"),
            logs: dir("logs"),
            first_table: match &env {
                Env::Dynamo(d) => d.table.clone(),
                Env::Sqlite(_) => String::new(),
            },
            env,
            n: 0,
            executions: 0,
        }
    }

    fn command(&self, args: &[String]) -> Command {
        let mut cmd = match &self.env {
            Env::Sqlite(c) => c.command(),
            Env::Dynamo(d) => {
                let mut cmd = d.c.command();
                cmd.args(["--store", "dynamodb", "--table", &d.table])
                    .env("AWS_ENDPOINT_URL_DYNAMODB", &d.endpoint)
                    .env("AWS_ACCESS_KEY_ID", "test")
                    .env("AWS_SECRET_ACCESS_KEY", "test")
                    .env("AWS_REGION", "us-east-1");
                cmd
            }
        };
        cmd.args(args);
        cmd
    }

    /// On DynamoDB, moves to a fresh table every 20 executions: the
    /// emulator slows down as a table grows, which says nothing about Cairn.
    fn next_table(&mut self) {
        self.executions += 1;
        if !self.executions.is_multiple_of(20) {
            return;
        }
        if let Env::Dynamo(d) = &mut self.env {
            d.table = format!("{}-t{}", self.first_table, self.executions);
            let out = self
                .command(&["table".into(), "create".into()])
                .output()
                .unwrap();
            assert!(out.status.success(), "table create: {out:?}");
        }
    }

    fn activity_dirs(&self, w: Workload) -> Vec<String> {
        let (host, guest) = if w.is_swap() {
            (&self.ledger, "/ledger")
        } else {
            (&self.trace, "/trace")
        };
        vec!["--dir".into(), format!("{}:{guest}", host.display())]
    }

    /// Runs one `cairn` process, ending it as `kill` says. Its output goes
    /// to a log file, whose path is returned.
    fn process(&mut self, args: &[String], kill: Kill) -> (Ended, PathBuf) {
        self.n += 1;
        let log = self.logs.join(format!("{}.log", self.n));
        let file = std::fs::File::create(&log).unwrap();
        let mut cmd = self.command(args);
        cmd.stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file));
        if let Kill::BeforeAppend(n) = kill {
            cmd.env("CAIRN_TEST_CRASH_BEFORE_APPEND", n.to_string());
        }
        let mut child = cmd.spawn().expect("spawn cairn");
        let started = Instant::now();
        let kill_at = match kill {
            Kill::After(d) => Some(d),
            _ => None,
        };
        // A process that hangs is a failure, not a kill point.
        let hang = Duration::from_secs(120);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                let ended = match status.code() {
                    Some(code) => Ended::Exited(code),
                    // The test hook aborts (SIGABRT); any other signal is a crash.
                    None => match (kill, status.signal()) {
                        (Kill::BeforeAppend(_), Some(6)) => Ended::Killed,
                        _ => Ended::Exited(-1),
                    },
                };
                return (ended, log);
            }
            let elapsed = started.elapsed();
            if kill_at.is_some_and(|d| elapsed >= d) {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                return (Ended::Killed, log);
            }
            assert!(
                elapsed < hang,
                "cairn {args:?} ran for {hang:?}: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn status(&self, id: &str) -> Option<Value> {
        let out = self
            .command(&["status".into(), id.into(), "--json".into()])
            .output()
            .unwrap();
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("CRN201"), "status {id}: {err}");
            return None;
        }
        Some(serde_json::from_slice(&out.stdout).unwrap())
    }

    fn history(&self, id: &str) -> Vec<Value> {
        let out = self
            .command(&["history".into(), id.into(), "--json".into()])
            .output()
            .unwrap();
        assert!(out.status.success(), "history {id}: {out:?}");
        serde_json::from_slice::<Value>(&out.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }
}

/// The kinds of entries, with their operation and name: what must match an
/// uninterrupted run.
fn shape(history: &[Value]) -> Vec<String> {
    history
        .iter()
        .map(|e| {
            format!(
                "{} #{} {}",
                e["kind"].as_str().unwrap_or("?"),
                e["seq"].as_u64().unwrap_or(0),
                e["name"].as_str().unwrap_or("")
            )
        })
        .collect()
}

/// What an uninterrupted run of a workload ends with.
struct Reference {
    shape: Vec<String>,
    status: String,
    /// The failure message (the swap's compensations) or the output, with
    /// the execution id taken out.
    outcome: String,
    /// How long the uninterrupted `cairn run` took (to pick kill delays).
    duration: Duration,
}

fn outcome(w: Workload, status: &Value, id: &str) -> String {
    if w == Workload::Nap && status["status"] == "completed" {
        // Journal time slept: at least the timer, however the kills fell.
        let slept = status["output"].as_u64().unwrap_or(0);
        return format!(
            "slept {}",
            if slept >= 1500 {
                ">= 1500 ms"
            } else {
                "too little"
            }
        );
    }
    let v = if status["status"] == "completed" {
        status["output"].to_string()
    } else {
        status["failure"]["message"].to_string()
    };
    v.replace(id, "<id>")
}

/// Per-key counts of `<key>` lines in the swap ledger or the `slow` trace.
fn effect_counts(h: &Harness, w: Workload) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    if w.is_swap() {
        let text = std::fs::read_to_string(h.ledger.join("ledger.jsonl")).unwrap_or_default();
        for line in text.lines() {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("ledger line is not JSON ({e}): {line}"));
            *counts
                .entry(v["key"].as_str().unwrap().to_string())
                .or_insert(0) += 1;
        }
    } else {
        let text = std::fs::read_to_string(h.trace.join("log")).unwrap_or_default();
        for line in text.lines() {
            let key = line.split(' ').next().unwrap().to_string();
            *counts.entry(key).or_insert(0) += 1;
        }
    }
    counts
}

fn keys_of(counts: &BTreeMap<String, u64>, id: &str) -> BTreeMap<String, u64> {
    let prefix = format!("{id}/");
    counts
        .iter()
        .filter(|(k, _)| k.starts_with(&prefix))
        .map(|(k, v)| (k.clone(), *v))
        .collect()
}

/// The `<id>/<seq>` keys of activities journaled as succeeded.
fn journaled_effects(history: &[Value], id: &str) -> BTreeSet<String> {
    history
        .iter()
        .filter(|e| e["kind"] == "activity-completed" && e["result"].get("Ok").is_some())
        .map(|e| format!("{id}/{}", e["seq"].as_u64().unwrap()))
        .collect()
}

/// Drives one execution to its end through `cairn run` / `cairn resume`,
/// killing processes as `plan` says (one entry per process; then none).
fn drive(h: &mut Harness, f: &mut Figures, w: Workload, id: &str, plan: &[Kill]) {
    f.executions += 1;
    // `slow` steps journaled before a kill, with their trace counts then.
    let mut journaled_before: BTreeMap<String, u64> = BTreeMap::new();
    let mut step = 0;
    loop {
        let kill = plan.get(step).copied().unwrap_or(Kill::None);
        step += 1;
        assert!(step < 20, "{id}: more than 20 processes to finish it");
        let mut args: Vec<String> = match h.status(id) {
            None => {
                let mut a = w.run_args();
                a.extend(["--id".into(), id.into()]);
                a
            }
            Some(_) => {
                let mut a = vec!["resume".to_string(), id.to_string()];
                if w.skip_time_on_resume() {
                    a.push("--skip-time".into());
                }
                a
            }
        };
        args.extend(h.activity_dirs(w));
        if !matches!(kill, Kill::None) {
            f.kill_attempts += 1;
        }
        let (ended, log) = h.process(&args, kill);
        match ended {
            Ended::Killed => {
                f.kill_points += 1;
                match kill {
                    Kill::BeforeAppend(_) => f.hook_kills += 1,
                    _ => f.wall_clock_kills += 1,
                }
                if w == Workload::Slow && h.status(id).is_some() {
                    let counts = keys_of(&effect_counts(h, w), id);
                    for key in journaled_effects(&h.history(id), id) {
                        let n = counts.get(&key).copied().unwrap_or(0);
                        journaled_before.entry(key).or_insert(n);
                    }
                }
            }
            Ended::Exited(code) => {
                if !matches!(kill, Kill::None) {
                    f.missed += 1; // it finished (or waited) before the kill
                }
                let done = h.status(id).is_some_and(|s| {
                    ["completed", "failed"].contains(&s["status"].as_str().unwrap())
                });
                if done && (code == 0 || code == 1) {
                    break;
                }
                if !(code == 0 || code == 1) {
                    f.problems.push(format!(
                        "{id}: cairn {args:?} exited {code}:\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    ));
                    return;
                }
            }
        }
    }
    if w == Workload::Slow {
        let counts = keys_of(&effect_counts(h, w), id);
        for (key, before) in journaled_before {
            let after = counts.get(&key).copied().unwrap_or(0);
            if after != before {
                f.reruns_of_journaled_steps += 1;
                f.problems.push(format!(
                    "{id}: step {key} was journaled before a kill, then ran again ({before} -> {after} runs)"
                ));
            }
        }
    }
}

/// Checks a finished execution against the reference run of its workload.
fn check(h: &Harness, f: &mut Figures, w: Workload, id: &str, reference: &Reference) {
    let Some(status) = h.status(id) else {
        f.problems.push(format!("{id}: does not exist"));
        return;
    };
    let history = h.history(id);
    // Indexes 0..n, each once.
    let indexes: Vec<u64> = history
        .iter()
        .map(|e| e["index"].as_u64().unwrap())
        .collect();
    let distinct: BTreeSet<u64> = indexes.iter().copied().collect();
    f.duplicate_entries += (indexes.len() - distinct.len()) as u64;
    let top = distinct.iter().next_back().copied().unwrap_or(0);
    f.index_gaps += (top + 1).saturating_sub(distinct.len() as u64);
    // The same entries as an uninterrupted run.
    let got = shape(&history);
    if got != reference.shape {
        let mut missing = reference.shape.clone();
        let mut extra = Vec::new();
        for e in &got {
            match missing.iter().position(|m| m == e) {
                Some(i) => {
                    missing.remove(i);
                }
                None => extra.push(e.clone()),
            }
        }
        f.lost_entries += missing.len() as u64;
        f.duplicate_entries += extra.len() as u64;
        f.problems.push(format!(
            "{id}: journal {got:?}, expected {:?}",
            reference.shape
        ));
    }
    let ok = status["status"] == reference.status.as_str()
        && outcome(w, &status, id) == reference.outcome;
    if ok {
        f.completed_as_expected += 1;
    } else {
        f.problems.push(format!(
            "{id}: ended {} with {}, expected {} with {}",
            status["status"],
            outcome(w, &status, id),
            reference.status,
            reference.outcome
        ));
    }
    // Effects.
    let counts = keys_of(&effect_counts(h, w), id);
    let journaled = journaled_effects(&history, id);
    if w.is_swap() {
        for key in &journaled {
            match counts.get(key).copied().unwrap_or(0) {
                0 => {
                    f.lost_effects += 1;
                    f.problems
                        .push(format!("{id}: {key} journaled, not in the ledger"));
                }
                1 => {}
                n => {
                    f.duplicate_effects += n - 1;
                    f.problems.push(format!("{id}: {key} applied {n} times"));
                }
            }
        }
        for key in counts.keys().filter(|k| !journaled.contains(*k)) {
            f.stray_effects += 1;
            f.problems
                .push(format!("{id}: {key} in the ledger, not journaled"));
        }
    } else if w == Workload::Slow {
        for key in &journaled {
            match counts.get(key).copied().unwrap_or(0) {
                0 => {
                    f.lost_effects += 1;
                    f.problems.push(format!("{id}: {key} journaled, never ran"));
                }
                n => f.activity_reruns += n - 1,
            }
        }
    }
}

fn chaos(env: Env, store: &'static str) {
    let seed = seed();
    eprintln!("chaos[{store}]: seed {seed} (set CAIRN_CHAOS_SEED={seed} to replay the choices)");
    let mut rng = Rng(seed);
    let mut h = Harness::new(env);
    let mut f = Figures::default();
    let started = Instant::now();

    // Compile and cache both components first, so that the reference runs
    // time what a kill interrupts, not the first compilation.
    for w in [Workload::Swap(None), Workload::Slow] {
        let mut args = w.run_args();
        args.extend(["--id".into(), format!("warm-{w:?}").replace(['(', ')'], "")]);
        args.push("--skip-time".into());
        h.process(&args, Kill::None);
    }
    // One uninterrupted run of each workload: the reference.
    let mut references = Vec::new();
    for (i, w) in Workload::all().into_iter().enumerate() {
        let id = format!("ref{i}");
        let t = Instant::now();
        drive(&mut h, &mut f, w, &id, &[]);
        let duration = t.elapsed();
        let status = h.status(&id).expect("reference run exists");
        let history = h.history(&id);
        let reference = Reference {
            shape: shape(&history),
            status: status["status"].as_str().unwrap().to_string(),
            outcome: outcome(w, &status, &id),
            duration,
        };
        assert!(
            f.problems.is_empty(),
            "the uninterrupted run of {w:?} failed: {:?}",
            f.problems
        );
        check(&h, &mut f, w, &id, &reference);
        references.push((w, reference));
    }
    let swaps: Vec<usize> = (0..5).collect();

    let mut n = 0;
    let mut next_id = |prefix: &str| {
        n += 1;
        format!("{prefix}{n}")
    };
    // Deterministic kill points: each swap variant, each append (entry 1 to
    // the final one), then maybe a second crash at a later append or at a
    // random moment of the resume.
    for &i in &swaps {
        let (w, r) = &references[i];
        let len = r.shape.len() as u32;
        for at in 1..len {
            let id = next_id("hook");
            let mut plan = vec![Kill::BeforeAppend(at)];
            if rng.chance(50) && at + 1 < len {
                plan.push(Kill::BeforeAppend(
                    rng.range(at as u64 + 1, len as u64) as u32
                ));
            } else if rng.chance(50) {
                plan.push(random_delay(&mut rng, r.duration * 3 / 4));
            }
            drive(&mut h, &mut f, *w, &id, &plan);
            check(&h, &mut f, *w, &id, r);
            h.next_table();
        }
    }
    // Random wall-clock kills: swaps of every variant, slow activities,
    // durable timers and suspends; each process after the first is killed
    // again with probability 1/2, up to three kills per execution.
    let mut random = |h: &mut Harness, f: &mut Figures, rng: &mut Rng, i: usize, count: usize| {
        let (w, r) = &references[i];
        for _ in 0..count {
            let id = next_id("kill");
            let mut plan = vec![random_delay(rng, r.duration)];
            while plan.len() < 3 && rng.chance(50) {
                // A resume has less left to do than the first run.
                let resume_time = if w.skip_time_on_resume() {
                    Duration::from_millis(250)
                } else {
                    r.duration * 3 / 4
                };
                plan.push(random_delay(rng, resume_time));
            }
            drive(h, f, *w, &id, &plan);
            check(h, f, *w, &id, r);
            h.next_table();
        }
    };
    // DynamoDB calls go to an emulator in Python: fewer swaps keep the
    // test near two minutes there, still well over 100 kill points.
    let per_variant = match store {
        "dynamodb" => 14,
        _ => 20,
    };
    for &i in &swaps {
        random(&mut h, &mut f, &mut rng, i, per_variant);
    }
    random(&mut h, &mut f, &mut rng, 5, 10); // slow
    random(&mut h, &mut f, &mut rng, 6, 8); // nap
    random(&mut h, &mut f, &mut rng, 7, 6); // approval
    // Whether a random kill lands before the process finishes is chance
    // (on a loaded machine a seed's kills can mostly come late): top up with
    // swaps aborted before a random append, which always land, each resume
    // killed again at a random moment with probability 1/2, until 100 landed
    // (bounded, so a harness that cannot kill still fails below).
    let mut extra = 0;
    while f.kill_points < 100 && extra < 60 {
        let (w, r) = &references[swaps[extra % swaps.len()]];
        let len = r.shape.len() as u64;
        let id = next_id("topup");
        let mut plan = vec![Kill::BeforeAppend(rng.range(1, len) as u32)];
        if rng.chance(50) {
            plan.push(random_delay(&mut rng, r.duration * 3 / 4));
        }
        drive(&mut h, &mut f, *w, &id, &plan);
        check(&h, &mut f, *w, &id, r);
        h.next_table();
        extra += 1;
    }

    let elapsed = started.elapsed();
    eprintln!(
        "chaos[{store}]: seed {seed}; {} kill points ({} SIGKILL at a random moment, {} aborts before an append; {} more kills came too late), \
         {} executions, {} completed with the expected outcome; duplicate entries {}, lost entries {}, index gaps {}; \
         ledger: duplicate effects {}, lost effects {}, stray effects {}; slow steps re-run after being journaled {}, \
         activity re-runs (at least once, expected) {}; {:.1}s",
        f.kill_points,
        f.wall_clock_kills,
        f.hook_kills,
        f.missed,
        f.executions,
        f.completed_as_expected,
        f.duplicate_entries,
        f.lost_entries,
        f.index_gaps,
        f.duplicate_effects,
        f.lost_effects,
        f.stray_effects,
        f.reruns_of_journaled_steps,
        f.activity_reruns,
        elapsed.as_secs_f64()
    );
    assert!(
        f.problems.is_empty(),
        "chaos[{store}] (seed {seed}): {} problems:\n{}",
        f.problems.len(),
        f.problems.join("\n")
    );
    assert_eq!(f.completed_as_expected, f.executions);
    assert_eq!(
        (f.duplicate_entries, f.lost_entries, f.index_gaps),
        (0, 0, 0)
    );
    assert_eq!(
        (f.duplicate_effects, f.lost_effects, f.stray_effects),
        (0, 0, 0)
    );
    assert!(
        f.kill_points >= 100,
        "only {} kill points landed (seed {seed})",
        f.kill_points
    );
}

/// SIGKILL somewhere in the first 110% of a process's usual run time.
fn random_delay(rng: &mut Rng, usual: Duration) -> Kill {
    let max = (usual.as_millis() as u64 * 11 / 10).max(20);
    Kill::After(Duration::from_millis(rng.range(1, max)))
}
