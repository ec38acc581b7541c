//! # cairn-peer: Cairn's side of the peer benchmark (issue #7)
//!
//! The same workload and phases as the Temporal and Restate drivers in
//! `benches/peers/`, on the in-process engine over the embedded SQLite store
//! (WAL, `synchronous=FULL`: every journal entry is fsynced before the next
//! effect). `scripts/bench-peers` runs it; it writes one JSON document in the
//! schema that `benches/peers/report.py` reads.
//!
//! - `cairn-peer bench`: warm-up, sequential latency, throughput with K in
//!   flight, the failing (compensated) variant, CPU per execution, peak RSS.
//! - `cairn-peer crash`: starts `crash-run` (a child that drives N `slow`
//!   executions of S steps of M ms each, granted a trace directory), waits
//!   until every execution is inside step K, `kill -9`s it, starts `recover`
//!   (lists the executions still `running` and advances them all at once),
//!   and times restart → all complete; then counts the effects per
//!   idempotency key in the trace file.
//! - `cairn-peer http`: the client/server shape, a client driving `cairn
//!   dev` over HTTP (`start` with `wait_ms`), the way the peers' clients
//!   drive their servers (`peer_http.rs`).

#[path = "../peer_http.rs"]
mod http;

use anyhow::{Context, Result, bail, ensure};
use cairn_core::{ComponentHash, Event, ExecutionId, ListFilter, Payload, Status};
use cairn_engine::{Advance, AdvanceOptions, Engine, EngineConfig, StartRequest, SystemClock};
use cairn_host::{ComponentBytes, Sandbox, SandboxConfig};
use cairn_store_sqlite::SqliteStore;
use clap::{Parser, Subcommand};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Cairn's harness for the side-by-side benchmark against Temporal and Restate.
#[derive(Parser, Debug)]
struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Warm-up, sequential latency, throughput, failing variant, CPU, RSS.
    Bench {
        /// Working directory (store, component cache). Use a real disk.
        #[arg(long)]
        dir: PathBuf,
        /// Write the figures here (JSON).
        #[arg(long)]
        json: PathBuf,
        #[command(flatten)]
        counts: Counts,
        /// Pooling-allocator slots (0: on-demand allocation, Cairn's default
        /// and what the CLI uses). For diagnosis, not the compared figure.
        #[arg(long, default_value_t = 0)]
        pooled: u32,
        /// A fresh instance for every activity call instead of reusing
        /// idle ones (Cairn's default). For diagnosis.
        #[arg(long)]
        fresh_activities: bool,
    },
    /// The crash phase: run, kill -9 mid-step, restart, time to all complete.
    Crash {
        /// Working directory (store, cache, trace).
        #[arg(long)]
        dir: PathBuf,
        /// Write the figures here (JSON).
        #[arg(long)]
        json: PathBuf,
        /// Executions.
        #[arg(long, default_value_t = 50)]
        n: usize,
        /// Steps per execution.
        #[arg(long, default_value_t = 4)]
        steps: u32,
        /// Milliseconds each step takes.
        #[arg(long, default_value_t = 2000)]
        ms: u64,
        /// Kill in the middle of this step (1-based).
        #[arg(long, default_value_t = 4)]
        kill_in_step: u32,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
    },
    /// The same phases as `bench` through `cairn dev` over HTTP.
    Http {
        /// The `cairn` binary.
        #[arg(long)]
        cairn: PathBuf,
        /// Working directory (the server's store and log).
        #[arg(long)]
        dir: PathBuf,
        /// Write the figures here (JSON).
        #[arg(long)]
        json: PathBuf,
        /// Port for `cairn dev` on 127.0.0.1.
        #[arg(long, default_value_t = 17240)]
        port: u16,
        #[command(flatten)]
        counts: Counts,
    },
    /// (child of `crash`) Start N `slow` executions and drive them until killed.
    CrashRun {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        n: usize,
        #[arg(long)]
        steps: u32,
        #[arg(long)]
        ms: u64,
    },
    /// (child of `crash`) Advance every execution left `running`, all at once.
    Recover {
        #[arg(long)]
        dir: PathBuf,
    },
}

/// The phases' sizes, shared by `bench` (in process) and `http` (through
/// `cairn dev`) so the two shapes run the same counts.
#[derive(clap::Args, Debug, Clone, Copy)]
pub(crate) struct Counts {
    /// Warm-up executions (half sequential, half with `in_flight`).
    #[arg(long, default_value_t = 100)]
    warmup: usize,
    /// Sequential executions.
    #[arg(long, default_value_t = 200)]
    seq: usize,
    /// Executions in the throughput phase.
    #[arg(long, default_value_t = 2000)]
    tp: usize,
    /// Executions in flight in the throughput phase (client connections
    /// through `cairn dev`).
    #[arg(long, default_value_t = 50)]
    in_flight: usize,
    /// Executions of the failing variant (step 3 fails, 2 compensations).
    #[arg(long, default_value_t = 100)]
    fail: usize,
    /// Give up on a phase after this many seconds.
    #[arg(long, default_value_t = 300)]
    phase_timeout: u64,
}

// ---- measurements ---------------------------------------------------------

/// utime + stime of a process, in ms (USER_HZ = 100).
fn cpu_ms(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    ticks as f64 * 10.0
}

/// Peak resident set (VmHWM), MiB.
fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

/// The 1-minute load average.
fn load1() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(-1.0)
}

/// Busy CPU of the whole machine, ms (all cores; /proc/stat, USER_HZ = 100).
fn machine_busy_ms() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let line = stat.lines().next().unwrap_or("");
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest is in user)
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle) as f64 * 10.0
}

/// What a phase records about the machine: load average at its ends, and
/// the CPU used by processes that are not part of the benchmark.
struct Window {
    t: Instant,
    load1_start: f64,
    busy: f64,
    ours: f64,
}

impl Window {
    fn open() -> Self {
        Self {
            t: Instant::now(),
            load1_start: load1(),
            busy: machine_busy_ms(),
            ours: cpu_ms(std::process::id()),
        }
    }

    fn close(&self, into: &mut serde_json::Map<String, Value>) {
        let wall = self.t.elapsed().as_secs_f64() * 1000.0;
        let other = (machine_busy_ms() - self.busy) - (cpu_ms(std::process::id()) - self.ours);
        into.insert("load1_start".into(), self.load1_start.into());
        into.insert("load1_end".into(), load1().into());
        into.insert("other_cores".into(), round(other.max(0.0) / wall, 2).into());
        into.insert("wall_s".into(), round(wall / 1000.0, 3).into());
    }
}

fn round(x: f64, digits: i32) -> f64 {
    let p = 10f64.powi(digits);
    (x * p).round() / p
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    round(sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0, 2)
}

// ---- the engine -------------------------------------------------------------

async fn engine(
    dir: &Path,
    trace: Option<&Path>,
    pooled: u32,
    fresh_activities: bool,
) -> Result<(Engine, Arc<SqliteStore>)> {
    std::fs::create_dir_all(dir)?;
    let store = Arc::new(SqliteStore::open(dir.join("cairn.db"))?);
    let sandbox = Arc::new(Sandbox::new(SandboxConfig {
        pooled_instances: pooled,
        reuse_activity_instances: !fresh_activities,
        cache_dir: Some(dir.join("cache")),
        activity_dirs: trace
            .map(|t| vec![(t.to_path_buf(), "/trace".to_string())])
            .unwrap_or_default(),
        ..Default::default()
    })?);
    let engine = Engine::new(
        sandbox,
        store.clone(),
        Arc::new(SystemClock),
        EngineConfig::default(),
    );
    Ok((engine, store))
}

async fn add(engine: &Engine, path: &str) -> Result<ComponentHash> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {path}"))?;
    Ok(engine
        .add_component(ComponentBytes::new(bytes))
        .await?
        .hash
        .clone())
}

fn swap_input(fail_at_step: Option<u8>) -> Payload {
    Payload::json(
        &json!({"a": "alice", "b": "bob", "foo": 10, "bar": 20, "fail_at_step": fail_at_step}),
    )
}

const COMPENSATED: &str = "compensated: refund bar to bob, refund foo to alice";

/// Start to result of one swap; checks the outcome it should have.
async fn swap(engine: &Engine, hash: &ComponentHash, id: String, fail: bool) -> Result<Duration> {
    let t = Instant::now();
    let id = ExecutionId::new(id)?;
    engine
        .start(StartRequest {
            workflow: "swap".into(),
            id: id.clone(),
            input: swap_input(fail.then_some(3)),
            component: Some(hash.clone()),
            parent: None,
        })
        .await?;
    let r = engine.drive(&id, AdvanceOptions::default()).await?;
    let elapsed = t.elapsed();
    match (&r, fail) {
        (
            Advance::Finished {
                status: Status::Completed,
                ..
            },
            false,
        ) => Ok(elapsed),
        (
            Advance::Finished {
                status: Status::Failed,
                entry,
            },
            true,
        ) => match &entry.event {
            Event::Failed { failure } if failure.message.contains(COMPENSATED) => Ok(elapsed),
            other => bail!("{id}: failed without the two compensations: {other:?}"),
        },
        _ => bail!("{id}: unexpected outcome (fail={fail}): {r:?}"),
    }
}

async fn concurrently(
    engine: &Engine,
    hash: &ComponentHash,
    prefix: &str,
    n: usize,
    in_flight: usize,
) -> Result<()> {
    let sem = Arc::new(tokio::sync::Semaphore::new(in_flight));
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let permit = sem.clone().acquire_owned().await?;
        let (engine, hash, id) = (engine.clone(), hash.clone(), format!("{prefix}-{i}"));
        tasks.push(tokio::spawn(async move {
            let r = swap(&engine, &hash, id, false).await;
            drop(permit);
            r
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

async fn bounded<T>(
    secs: u64,
    what: &str,
    f: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .with_context(|| format!("phase '{what}' took longer than {secs} s"))?
}

/// `n` swaps one after another (`fail`: the failing variant); their
/// latencies, sorted.
async fn one_by_one(
    engine: &Engine,
    hash: &ComponentHash,
    prefix: &str,
    n: usize,
    fail: bool,
) -> Result<Vec<Duration>> {
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        lat.push(swap(engine, hash, format!("{prefix}-{i}"), fail).await?);
    }
    lat.sort();
    Ok(lat)
}

#[allow(clippy::too_many_arguments)]
async fn bench(
    dir: PathBuf,
    json_path: PathBuf,
    counts: Counts,
    pooled: u32,
    fresh_activities: bool,
) -> Result<()> {
    let Counts {
        warmup,
        seq,
        tp,
        in_flight,
        fail,
        phase_timeout,
    } = counts;
    let _ = std::fs::remove_dir_all(&dir);
    let (engine, _store) = engine(&dir, None, pooled, fresh_activities).await?;
    let hash = add(&engine, cairn_test_artifacts::SWAP_SAGA).await?;
    let me = std::process::id();
    let mut out = serde_json::Map::new();
    out.insert("engine".into(), "cairn".into());
    out.insert(
        "config".into(),
        format!(
            "in-process engine, embedded SQLite (WAL, synchronous=FULL): every journal entry fsynced before the next effect; group commit; {}; {}",
            if pooled > 0 {
                format!("pooling allocator, {pooled} slots")
            } else {
                "on-demand instance allocation (default)".to_string()
            },
            if fresh_activities {
                "a fresh instance per activity call"
            } else {
                "activity instances reused (default)"
            }
        )
        .into(),
    );

    // warm-up: half sequential, half concurrent
    let w = Window::open();
    bounded(phase_timeout, "warm-up", async {
        for i in 0..warmup / 2 {
            swap(&engine, &hash, format!("warm-{i}"), false).await?;
        }
        concurrently(&engine, &hash, "warm-c", warmup - warmup / 2, in_flight).await
    })
    .await?;
    let mut m = serde_json::Map::new();
    m.insert("n".into(), warmup.into());
    w.close(&mut m);
    out.insert("warmup".into(), m.into());
    eprintln!("cairn: warm-up done");

    // sequential
    let w = Window::open();
    let cpu0 = cpu_ms(me);
    let lat = bounded(
        phase_timeout,
        "sequential",
        one_by_one(&engine, &hash, "seq", seq, false),
    )
    .await?;
    let mut m = serde_json::Map::new();
    m.insert("n".into(), seq.into());
    m.insert("p50_ms".into(), percentile(&lat, 0.50).into());
    m.insert("p95_ms".into(), percentile(&lat, 0.95).into());
    m.insert("p99_ms".into(), percentile(&lat, 0.99).into());
    m.insert("max_ms".into(), percentile(&lat, 1.0).into());
    m.insert(
        "cpu_ms".into(),
        json!({"engine (server+worker+client)": round(cpu_ms(me) - cpu0, 1)}),
    );
    w.close(&mut m);
    eprintln!("cairn: sequential {m:?}");
    out.insert("sequential".into(), m.into());

    // throughput
    let w = Window::open();
    let cpu0 = cpu_ms(me);
    let t = Instant::now();
    bounded(
        phase_timeout,
        "throughput",
        concurrently(&engine, &hash, "tp", tp, in_flight),
    )
    .await?;
    let wall = t.elapsed().as_secs_f64();
    let cpu = cpu_ms(me) - cpu0;
    let mut m = serde_json::Map::new();
    m.insert("n".into(), tp.into());
    m.insert("in_flight".into(), in_flight.into());
    m.insert("exec_per_s".into(), round(tp as f64 / wall, 1).into());
    m.insert(
        "cpu_ms".into(),
        json!({"engine (server+worker+client)": round(cpu, 1)}),
    );
    m.insert("cpu_ms_per_exec".into(), round(cpu / tp as f64, 3).into());
    m.insert(
        "cpu_ms_per_exec_excl_client".into(),
        round(cpu / tp as f64, 3).into(),
    );
    w.close(&mut m);
    eprintln!("cairn: throughput {m:?}");
    out.insert("throughput".into(), m.into());

    // failing variant
    let w = Window::open();
    let lat = bounded(
        phase_timeout,
        "failing",
        one_by_one(&engine, &hash, "fail", fail, true),
    )
    .await?;
    let mut m = serde_json::Map::new();
    m.insert("n".into(), fail.into());
    m.insert("p50_ms".into(), percentile(&lat, 0.50).into());
    m.insert("p95_ms".into(), percentile(&lat, 0.95).into());
    m.insert("ok".into(), true.into());
    m.insert(
        "checked".into(),
        format!("{fail}/{fail} ended failed with '{COMPENSATED}'").into(),
    );
    w.close(&mut m);
    eprintln!("cairn: failing {m:?}");
    out.insert("failing".into(), m.into());

    let rss = peak_rss_mib(me);
    out.insert(
        "rss_mib".into(),
        json!({"engine (server+worker+client)": round(rss, 1), "total": round(rss, 1)}),
    );
    std::fs::write(
        &json_path,
        serde_json::to_string_pretty(&Value::Object(out))?,
    )?;
    Ok(())
}

// ---- crash ----------------------------------------------------------------

/// Effects per idempotency key: the `crash-<i>/<seq>` keys in the trace file.
///
/// Counted as tokens, not lines: the testkit's `work` activity writes its
/// line with several `write` calls (`writeln!` on an unbuffered file), so
/// lines of concurrent activities interleave (`crash-1/1crash-0/1 1 \n1…`);
/// each key is still written by one call and stays whole, but the attempt
/// number of another line may follow it without a space (`crash-7/11`): the
/// sequence number is read as at most `seq_digits` digits.
fn effects(path: &Path, seq_digits: usize) -> BTreeMap<String, usize> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut m = BTreeMap::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("crash-") {
        rest = &rest[at..];
        let digits = |s: &str| s.bytes().take_while(u8::is_ascii_digit).count();
        let i = digits(&rest[6..]);
        let after = &rest[6 + i..];
        let seq = digits(&after[1.min(after.len())..]).min(seq_digits);
        if i > 0 && after.starts_with('/') && seq > 0 {
            let len = 6 + i + 1 + seq;
            *m.entry(rest[..len].to_string()).or_default() += 1;
            rest = &rest[len..];
        } else {
            rest = &rest[6..];
        }
    }
    m
}

fn count_keys(path: &Path, seq_digits: usize) -> usize {
    effects(path, seq_digits).values().sum()
}

#[allow(clippy::too_many_arguments)]
fn crash(
    dir: PathBuf,
    json_path: PathBuf,
    n: usize,
    steps: u32,
    ms: u64,
    kill_in_step: u32,
    timeout: u64,
) -> Result<()> {
    ensure!(
        (1..=steps).contains(&kill_in_step),
        "--kill-in-step must be in 1..=steps"
    );
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("trace"))?;
    let log = dir.join("trace").join("log");
    let exe = std::env::current_exe()?;
    let deadline = Instant::now() + Duration::from_secs(timeout);
    let load1_start = load1();
    let seq_digits = steps.to_string().len();

    // Precompile the component once so the run and the recovery find it in
    // the cache (a restart of a long-lived host would, too).
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let (engine, _) = engine(&dir, None, 0, false).await?;
        add(&engine, cairn_test_artifacts::TESTKIT)
            .await
            .map(|_| ())
    })?;
    drop(rt);

    let mut child = std::process::Command::new(&exe)
        .args(["crash-run", "--dir"])
        .arg(&dir)
        .args([
            "--n",
            &n.to_string(),
            "--steps",
            &steps.to_string(),
            "--ms",
            &ms.to_string(),
        ])
        .spawn()
        .context("spawning crash-run")?;
    let child_pid = child.id();
    // Every execution has finished step k-1: all are inside step k. Then wait
    // half a step, to be in its middle.
    let before = n * (kill_in_step as usize - 1);
    while count_keys(&log, seq_digits) < before {
        if Instant::now() > deadline {
            let _ = child.kill();
            bail!(
                "crash-run: only {} of {before} steps done before the timeout",
                count_keys(&log, seq_digits)
            );
        }
        if let Some(status) = child.try_wait()? {
            bail!("crash-run exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(ms / 2));
    child.kill()?; // SIGKILL
    let killed_at = Instant::now();
    child.wait()?;
    let done_before_kill = count_keys(&log, seq_digits).saturating_sub(before);
    eprintln!(
        "cairn crash: killed pid {child_pid} (kill -9) inside step {kill_in_step}; {done_before_kill} executions had already finished it"
    );

    // restart
    let t0 = Instant::now();
    let out = std::process::Command::new(&exe)
        .args(["recover", "--dir"])
        .arg(&dir)
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("spawning recover")?;
    let restart_to_done = t0.elapsed().as_secs_f64();
    ensure!(out.status.success(), "recover failed: {}", out.status);
    let rec: Value = serde_json::from_slice(&out.stdout).context("recover's JSON")?;

    let eff = effects(&log, seq_digits);
    let expected: Vec<String> = (0..n)
        .flat_map(|i| (1..=steps).map(move |s| format!("crash-{i}/{s}")))
        .collect();
    let once = expected.iter().filter(|k| eff.get(*k) == Some(&1)).count();
    let dup = expected
        .iter()
        .filter(|k| eff.get(*k).is_some_and(|c| *c > 1))
        .count();
    let missing = expected.iter().filter(|k| !eff.contains_key(*k)).count();
    let unexpected = eff.keys().filter(|k| !expected.contains(k)).count();
    let completed = rec["completed"].as_u64().unwrap_or(0) as usize;
    // The interrupted step starts over: it takes `ms` again, whatever the engine.
    let inherent = ms as f64 / 1000.0 * f64::from(steps - kill_in_step + 1);
    let result = json!({
        "engine": "cairn",
        "crash": {
            "n": n, "steps": steps, "step_ms": ms, "kill_in_step": kill_in_step,
            "killed": "kill -9 of the host process (crash-run), restarted as a new process (recover)",
            "done_before_kill": done_before_kill,
            "restart_to_all_complete_s": round(restart_to_done, 3),
            "inherent_s": inherent,
            "overhead_s": round(restart_to_done - inherent, 3),
            "kill_to_all_complete_s": round(killed_at.elapsed().as_secs_f64(), 3),
            "all_completed": completed == n,
            "completed": completed,
            "keys_expected": expected.len(), "keys_once": once, "keys_dup": dup,
            "keys_missing": missing, "keys_unexpected": unexpected,
            "exactly_once": once == expected.len() && unexpected == 0,
            "recover": rec,
            "rss_mib": {"recover": rec["peak_rss_mib"].clone()},
            "load1_start": load1_start, "load1_end": load1(),
        }
    });
    eprintln!("cairn crash: {result}");
    std::fs::write(&json_path, serde_json::to_string_pretty(&result)?)?;
    ensure!(
        completed == n,
        "only {completed} of {n} executions completed after the restart"
    );
    Ok(())
}

async fn crash_run(dir: PathBuf, n: usize, steps: u32, ms: u64) -> Result<()> {
    let (engine, _) = engine(&dir, Some(&dir.join("trace")), 0, false).await?;
    let hash = add(&engine, cairn_test_artifacts::TESTKIT).await?;
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let id = ExecutionId::new(format!("crash-{i}"))?;
        engine
            .start(StartRequest {
                workflow: "slow".into(),
                id: id.clone(),
                input: Payload::json(&json!({"steps": steps, "ms": ms})),
                component: Some(hash.clone()),
                parent: None,
            })
            .await?;
        ids.push(id);
    }
    let tasks: Vec<_> = ids
        .into_iter()
        .map(|id| {
            let engine = engine.clone();
            tokio::spawn(async move { engine.drive(&id, AdvanceOptions::default()).await })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    eprintln!("crash-run: finished without being killed");
    Ok(())
}

async fn recover(dir: PathBuf) -> Result<()> {
    let t = Instant::now();
    let (engine, _) = engine(&dir, Some(&dir.join("trace")), 0, false).await?;
    let opened = t.elapsed();
    let running = engine
        .list(ListFilter {
            status: vec![Status::Running],
            workflow: None,
            limit: 100_000,
        })
        .await?;
    let listed = t.elapsed();
    let tasks: Vec<_> = running
        .iter()
        .map(|meta| {
            let (engine, id) = (engine.clone(), meta.id.clone());
            tokio::spawn(async move {
                let t = Instant::now();
                let r = engine.drive(&id, AdvanceOptions::default()).await;
                (r, t.elapsed())
            })
        })
        .collect();
    let mut completed = 0;
    let mut slowest = Duration::ZERO;
    for task in tasks {
        let (r, d) = task.await?;
        slowest = slowest.max(d);
        if matches!(
            r?,
            Advance::Finished {
                status: Status::Completed,
                ..
            }
        ) {
            completed += 1;
        }
    }
    let out = json!({
        "running_found": running.len(),
        "completed": completed,
        "open_ms": round(opened.as_secs_f64() * 1000.0, 1),
        "open_and_list_ms": round(listed.as_secs_f64() * 1000.0, 1),
        "slowest_drive_ms": round(slowest.as_secs_f64() * 1000.0, 1),
        "total_ms": round(t.elapsed().as_secs_f64() * 1000.0, 1),
        "cpu_ms": cpu_ms(std::process::id()),
        "peak_rss_mib": round(peak_rss_mib(std::process::id()), 1),
    });
    println!("{out}");
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    match args.cmd {
        Cmd::Crash {
            dir,
            json,
            n,
            steps,
            ms,
            kill_in_step,
            timeout,
        } => crash(dir, json, n, steps, ms, kill_in_step, timeout),
        Cmd::Http {
            cairn,
            dir,
            json,
            port,
            counts,
        } => http::run(cairn, dir, json, port, counts),
        cmd => {
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(async move {
                match cmd {
                    Cmd::Bench {
                        dir,
                        json,
                        counts,
                        pooled,
                        fresh_activities,
                    } => bench(dir, json, counts, pooled, fresh_activities).await,
                    Cmd::CrashRun { dir, n, steps, ms } => crash_run(dir, n, steps, ms).await,
                    Cmd::Recover { dir } => recover(dir).await,
                    Cmd::Crash { .. } | Cmd::Http { .. } => unreachable!(),
                }
            })
        }
    }
}
