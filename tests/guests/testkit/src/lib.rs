//! Guest workflows for Cairn's end-to-end tests: signals, timers, slow
//! activities, fan-out, and hostile guests (endless loops, memory hogs,
//! traps, forbidden IO). Built twice: plainly, and with the `changed`
//! feature, which reorders `ordered` to prove nondeterminism detection.
//!
//! Most workflows use the SDK's typed references (`ctx.call(activity!(echo),
//! &n)`); `flaky`, `family` and `ticker` keep the deprecated string forms
//! (`ctx.activity`, `ctx.child`, `ctx.signal`, `ctx.on_query`) on purpose,
//! so the end-to-end tests prove those still work while they last.

use cairn_sdk::prelude::*;
use std::io::Write;

// ---- signals and timers -------------------------------------------------

/// Input of `approval`.
#[derive(Deserialize)]
pub struct Approval {
    /// Durable wait before asking.
    pub delay_ms: u64,
    /// How long to wait for the `approve` signal.
    pub timeout_ms: u64,
}

/// The signal `approval` waits for (any JSON).
pub const APPROVE: SignalRef<serde_json::Value> = SignalRef::new("approve");

/// The signals `collect` gathers (any JSON).
pub const GO: SignalRef<serde_json::Value> = SignalRef::new("go");

/// The signal `ordered` waits for between its two steps.
pub const CONTINUE: SignalRef<serde_json::Value> = SignalRef::new("continue");

/// Sleeps `delay_ms`, then waits for signal `approve` up to `timeout_ms`.
pub async fn approval(ctx: Ctx, input: Approval) -> Result<serde_json::Value, Failure> {
    ctx.sleep(Duration::from_millis(input.delay_ms)).await?;
    let decision = ctx
        .wait_signal(APPROVE)
        .timeout(Duration::from_millis(input.timeout_ms))
        .await?;
    Ok(match decision {
        Some(d) => serde_json::json!({"approved": d}),
        None => serde_json::json!({"timed_out": true}),
    })
}

/// Waits for `count` signals named `go` and returns their payloads in order.
pub async fn collect(ctx: Ctx, count: u32) -> Result<Vec<serde_json::Value>, Failure> {
    let mut got = Vec::new();
    for _ in 0..count {
        got.push(ctx.wait_signal(GO).await?);
    }
    Ok(got)
}

/// Sleeps, durably, for `ms`.
pub async fn nap(ctx: Ctx, ms: u64) -> Result<u64, Failure> {
    let before = ctx.now();
    ctx.sleep(Duration::from_millis(ms)).await?;
    Ok(ctx
        .now()
        .duration_since(before)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0))
}

// ---- activities that take time and leave traces ------------------------

/// Input of `slow`. (Fields in this order so that `brood`'s children get
/// the bytes they got when it sent `json!({"steps": .., "ms": ..})`, whose
/// keys serde_json sorts.)
#[derive(Serialize, Deserialize)]
pub struct Slow {
    /// Milliseconds each step's activity sleeps.
    pub ms: u64,
    /// Steps to run.
    pub steps: u32,
}

/// Runs `steps` activities of `ms` each, one after another.
pub async fn slow(ctx: Ctx, input: Slow) -> Result<Vec<String>, Failure> {
    let mut keys = Vec::new();
    for step in 1..=input.steps {
        let key = ctx
            .call(
                activity!(work),
                &serde_json::json!({"step": step, "ms": input.ms}),
            )
            .await?;
        keys.push(key);
    }
    Ok(keys)
}

/// Sleeps `ms`, then appends `<idempotency key> <attempt>` to `/trace/log`
/// when that directory is granted; returns the key.
///
/// Every attempt also appends `<key> <attempt> <unix ms>` to `/trace/attempts` when it
/// starts, before any effect: a harness's own ledger of attempts, whatever
/// the runtime journals or deduplicates.
pub fn work(ctx: &ActivityCtx, input: serde_json::Value) -> Result<String, Failure> {
    let ms = input["ms"].as_u64().unwrap_or(0);
    if std::path::Path::new("/trace").is_dir() {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open("/trace/attempts")
            .retryable("opening /trace/attempts")?;
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        f.write_all(format!("{} {} {ms}\n", ctx.idempotency_key(), ctx.attempt()).as_bytes())
            .retryable("writing /trace/attempts")?;
        f.sync_all().retryable("syncing /trace/attempts")?;
    }
    std::thread::sleep(std::time::Duration::from_millis(ms));
    if std::path::Path::new("/trace").is_dir() {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open("/trace/log")
            .retryable("opening /trace/log")?;
        // One write per line: a kill between two writes would tear it.
        f.write_all(format!("{} {}\n", ctx.idempotency_key(), ctx.attempt()).as_bytes())
            .retryable("writing /trace/log")?;
        f.sync_all().retryable("syncing /trace/log")?;
    }
    Ok(ctx.idempotency_key().to_string())
}

/// Runs `n` `echo` activities at once and returns their outputs in order.
pub async fn fanout(ctx: Ctx, n: u32) -> Result<Vec<u32>, Failure> {
    let calls: Vec<_> = (0..n).map(|i| ctx.call(activity!(echo), &i)).collect();
    join_all(calls).await.into_iter().collect()
}

/// Runs `n` `echo` activities one after another (replay benchmarks).
pub async fn steps(ctx: Ctx, n: u32) -> Result<u32, Failure> {
    let mut sum = 0u32;
    for i in 0..n {
        sum = sum.wrapping_add(ctx.call(activity!(echo), &i).await?);
    }
    Ok(sum)
}

/// `steps` without the SDK's executor: each step is two host calls,
/// `schedule-activity` then `wait-any` with nothing to start (what every
/// step was before `cairn:workflow@0.2.0`). Its journal must equal
/// `steps`', whose steps are one batched `wait-any` each.
pub async fn steps_unbatched(_ctx: Ctx, n: u32) -> Result<u32, Failure> {
    use cairn_sdk::__private::bindings::cairn::workflow::host;
    use cairn_sdk::__private::bindings::cairn::workflow::types::{
        ActivityOptions, Completion, Outcome,
    };
    let options = ActivityOptions {
        retry: None,
        timeout_ms: None,
    };
    let mut sum = 0u32;
    for i in 0..n {
        let input = serde_json::to_vec(&i).map_err(|e| Failure::non_retryable(e.to_string()))?;
        let h = host::schedule_activity("echo", &input, options);
        let out = match host::wait_any(&[], &[h]) {
            Outcome::Completed((got, Completion::Activity(Ok(bytes)))) if got == h => bytes,
            _ => return Err(Failure::non_retryable("unexpected outcome")),
        };
        let out: u32 =
            serde_json::from_slice(&out).map_err(|e| Failure::non_retryable(e.to_string()))?;
        sum = sum.wrapping_add(out);
    }
    Ok(sum)
}

/// Calls `instance_calls` `n` times in sequence and returns what each saw.
pub async fn reuse(ctx: Ctx, n: u32) -> Result<Vec<u32>, Failure> {
    let mut seen = Vec::new();
    for _ in 0..n {
        seen.push(ctx.call(activity!(instance_calls), &()).await?);
    }
    Ok(seen)
}

/// How many calls this activity instance has taken, this one included
/// (globals survive between calls of a reused instance).
pub fn instance_calls(_ctx: &ActivityCtx, _: ()) -> Result<u32, Failure> {
    static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    Ok(CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1)
}

/// Returns its input.
pub fn echo(_ctx: &ActivityCtx, n: u32) -> Result<u32, Failure> {
    Ok(n)
}

/// Fails the first `fail_times` attempts, then succeeds. (The deprecated
/// string form on purpose: it still works.)
#[allow(deprecated)]
pub async fn flaky(ctx: Ctx, fail_times: u32) -> Result<u32, Failure> {
    let policy = RetryPolicy::attempts(fail_times + 1).initial_interval(Duration::from_millis(10));
    ctx.activity("sometimes", &fail_times).retry(policy).await
}

/// Fails while `attempt <= fail_times`.
pub fn sometimes(ctx: &ActivityCtx, fail_times: u32) -> Result<u32, Failure> {
    if ctx.attempt() <= fail_times {
        return Err(Failure::retryable(format!(
            "attempt {} fails on purpose",
            ctx.attempt()
        )));
    }
    Ok(ctx.attempt())
}

// ---- nondeterminism ------------------------------------------------------

/// `first`, then a signal `continue`, then `second` (or, built with
/// `changed`: `second` first).
pub async fn ordered(ctx: Ctx, _input: serde_json::Value) -> Result<String, Failure> {
    let (a, b) = if cfg!(feature = "changed") {
        ("second", "first")
    } else {
        ("first", "second")
    };
    let x = ctx
        .call(activity!(echo), &if a == "first" { 1 } else { 2 })
        .await?;
    ctx.wait_signal(CONTINUE).await?;
    let y = ctx
        .call(activity!(echo), &if b == "first" { 1 } else { 2 })
        .await?;
    if cfg!(feature = "logged") {
        // A compatible change: a log line after the last step.
        ctx.info(format!("ordered finished: {x} {y}"));
    }
    Ok(format!("{a}={x} {b}={y}"))
}

// ---- continue-as-new, children, queries ------------------------------------

/// Input of `counter`.
#[derive(Serialize, Deserialize)]
pub struct Counter {
    /// Iterations in all.
    pub n: u64,
    /// Iterations done by earlier runs.
    #[serde(default)]
    pub done: u64,
    /// Continue as new when the run's journal reaches this many entries.
    pub per_run: u32,
}

/// Runs one `work` activity per run for `runs` runs (continuing as new in
/// between) and returns the idempotency keys the activities were given.
pub async fn keyed_runs(ctx: Ctx, mut keys: Vec<String>) -> Result<Vec<String>, Failure> {
    keys.push(ctx.call(activity!(work), &serde_json::json!({})).await?);
    if keys.len() < 3 {
        ctx.continue_as_new(&keys)?;
    }
    Ok(keys)
}

/// Loops `n` times (one journaled step each), continuing as new whenever
/// the run's journal reaches `per_run` entries.
pub async fn counter(ctx: Ctx, mut c: Counter) -> Result<u64, Failure> {
    while c.done < c.n {
        ctx.sleep(Duration::from_millis(0)).await?;
        c.done += 1;
        if ctx.history_len() >= c.per_run && c.done < c.n {
            ctx.continue_as_new(&c)?;
        }
    }
    Ok(c.done)
}

/// A child-heavy run: `n` children running `slow` (two `work` steps of
/// `ms` each) at once, then a durable timer of `nap_ms`; returns the
/// children's keys.
pub async fn brood(ctx: Ctx, (n, ms, nap_ms): (u32, u64, u64)) -> Result<Vec<String>, Failure> {
    let me = ctx.execution_id();
    let children: Vec<_> = (0..n)
        .map(|i| {
            ctx.start_child(
                workflow!(slow),
                &format!("{me}.b{i}"),
                &Slow { steps: 2, ms },
            )
        })
        .collect();
    let mut keys = Vec::new();
    for r in join_all(children).await {
        keys.extend(r?);
    }
    ctx.sleep(Duration::from_millis(nap_ms)).await?;
    Ok(keys)
}

/// Starts `count` children running `collect(1)` and returns their results.
/// (The deprecated string form on purpose: it still works.)
#[allow(deprecated)]
pub async fn family(ctx: Ctx, count: u32) -> Result<Vec<serde_json::Value>, Failure> {
    let me = ctx.execution_id();
    let children: Vec<_> = (0..count)
        .map(|i| ctx.child::<Vec<serde_json::Value>>("collect", &format!("{me}.c{i}"), &1))
        .collect();
    let results = join_all(children).await;
    results
        .into_iter()
        .map(|r| r.map(|v| serde_json::json!(v)))
        .collect()
}

/// Counts signals `tick` until `stop`, answering the query `count`. (The
/// deprecated string forms on purpose: they still work.)
#[allow(deprecated)]
pub async fn ticker(ctx: Ctx, _input: serde_json::Value) -> Result<u32, Failure> {
    let count = std::rc::Rc::new(std::cell::Cell::new(0u32));
    {
        let count = count.clone();
        ctx.on_query("count", move |_: serde_json::Value| Ok(count.get()));
    }
    loop {
        match select(
            ctx.signal::<serde_json::Value>("tick"),
            ctx.signal::<serde_json::Value>("stop"),
        )
        .await
        {
            Either::Left(t) => {
                t?;
                count.set(count.get() + 1);
            }
            Either::Right(s) => {
                s?;
                return Ok(count.get());
            }
        }
    }
}

// ---- determinism of the environment ------------------------------------

/// Reports the clock, randomness and environment a workflow sees.
pub async fn environment(
    ctx: Ctx,
    _input: serde_json::Value,
) -> Result<serde_json::Value, Failure> {
    let system_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let ctx_ms = ctx
        .now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let mut map = std::collections::HashMap::new();
    map.insert("k", 1);
    Ok(serde_json::json!({
        "system_ms": system_ms,
        "ctx_ms": ctx_ms,
        "random": ctx.random(),
        "env": std::env::vars().count(),
    }))
}

// ---- hostile guests ------------------------------------------------------

/// Never awaits: loops forever.
pub async fn spin(_ctx: Ctx, _input: serde_json::Value) -> Result<(), Failure> {
    let mut x: u64 = 0;
    loop {
        x = std::hint::black_box(x.wrapping_add(1));
    }
}

/// `rounds` rounds of `iterations` of busy work, each ended by an activity
/// call (an await): the fuel budget is per await, so many rounds pass
/// where one round of all the work would not.
pub async fn burn(ctx: Ctx, input: (u32, u64)) -> Result<u64, Failure> {
    let (rounds, iterations) = input;
    let mut x: u64 = 0;
    for r in 0..rounds {
        for _ in 0..iterations {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        ctx.call(activity!(echo), &r).await?;
    }
    Ok(x)
}

/// Allocates without bound.
pub async fn hog(_ctx: Ctx, _input: serde_json::Value) -> Result<(), Failure> {
    let mut keep: Vec<Vec<u8>> = Vec::new();
    loop {
        keep.push(vec![1u8; 16 << 20]);
        std::hint::black_box(&keep);
    }
}

/// Calls `misbehave(kind)`: two attempts 10 ms apart, each limited to 1 s.
pub async fn hostile_activity(ctx: Ctx, kind: String) -> Result<(), Failure> {
    ctx.call(activity!(misbehave), &kind)
        .retry(RetryPolicy::attempts(2).initial_interval(Duration::from_millis(10)))
        .timeout(Duration::from_secs(1))
        .await
}

/// An activity that misbehaves as told: `spin` (a CPU loop), `hog`
/// (allocates without bound), `hang` (sleeps a minute), `panic`.
pub fn misbehave(_ctx: &ActivityCtx, kind: String) -> Result<(), Failure> {
    match kind.as_str() {
        "spin" => {
            let mut x: u64 = 0;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        "hog" => {
            let mut keep: Vec<Vec<u8>> = Vec::new();
            loop {
                keep.push(vec![1u8; 16 << 20]);
                std::hint::black_box(&keep);
            }
        }
        "hang" => {
            std::thread::sleep(Duration::from_secs(60));
            Ok(())
        }
        "panic" => panic!("misbehave: the activity hit a bug"),
        other => Err(Failure::non_retryable(format!("unknown kind {other}"))),
    }
}

/// Misuses the SDK as told, which fails the execution (non-retryable)
/// instead of trapping: `select_all_of_nothing` (no future to wait for),
/// `unserializable_next_run` (a continue-as-new input JSON cannot hold).
pub async fn misuse(ctx: Ctx, kind: String) -> Result<(), Failure> {
    match kind.as_str() {
        "select_all_of_nothing" => {
            let (_, fired) = cairn_sdk::select_all(Vec::<cairn_sdk::Timer>::new()).await?;
            fired?;
        }
        "unserializable_next_run" => {
            // JSON object keys are strings: a map keyed by pairs is not JSON.
            let next = std::collections::BTreeMap::from([((1u8, 2u8), 3u8)]);
            ctx.continue_as_new(&next)?;
        }
        other => return Err(Failure::non_retryable(format!("unknown misuse {other}"))),
    }
    Ok(())
}

/// Panics.
pub async fn boom(_ctx: Ctx, _input: serde_json::Value) -> Result<(), Failure> {
    panic!("boom: the workflow hit a bug");
}

fn depth(n: u64) -> u64 {
    if n == 0 {
        0
    } else {
        1 + std::hint::black_box(depth(n - 1))
    }
}

/// Recurses until the stack overflows.
pub async fn recurse(_ctx: Ctx, _input: serde_json::Value) -> Result<u64, Failure> {
    Ok(depth(u64::MAX))
}

/// Reads a file from workflow code (denied).
pub async fn read_file(_ctx: Ctx, _input: serde_json::Value) -> Result<String, Failure> {
    std::fs::read_to_string("/etc/hostname").non_retryable("reading /etc/hostname")
}

/// Opens a network connection from workflow code (denied).
pub async fn connect(_ctx: Ctx, _input: serde_json::Value) -> Result<(), Failure> {
    std::net::TcpStream::connect("127.0.0.1:9").non_retryable("connecting to 127.0.0.1:9")?;
    Ok(())
}

/// Calls an activity that panics.
pub async fn bad_activity(ctx: Ctx, _input: serde_json::Value) -> Result<(), Failure> {
    ctx.call(activity!(explode), &())
        .retry(RetryPolicy::attempts(2).initial_interval(Duration::from_millis(1)))
        .await
}

/// Panics (in activity mode).
pub fn explode(_ctx: &ActivityCtx, _input: ()) -> Result<(), Failure> {
    panic!("the activity exploded");
}

/// Reports the named environment variables an activity sees (`null` for
/// the ones it lacks): what the host gives activities (`cairn --env`,
/// Lambda's `CAIRN_ACTIVITY_ENV` and `CAIRN_ACTIVITY_SECRETS`).
pub async fn activity_env(
    ctx: Ctx,
    names: Vec<String>,
) -> Result<serde_json::Map<String, serde_json::Value>, Failure> {
    ctx.call(activity!(read_env), &names).await
}

/// Reads environment variables (in activity mode).
pub fn read_env(
    _ctx: &ActivityCtx,
    names: Vec<String>,
) -> Result<serde_json::Map<String, serde_json::Value>, Failure> {
    Ok(names
        .into_iter()
        .map(|n| {
            let v = std::env::var(&n)
                .ok()
                .map_or(serde_json::Value::Null, Into::into);
            (n, v)
        })
        .collect())
}

/// Returns an output of `n` bytes (too large for the store when huge).
pub async fn big_output(ctx: Ctx, n: u64) -> Result<usize, Failure> {
    let s = ctx.call(activity!(make_big), &n).await?;
    Ok(s.len())
}

/// `n` bytes of text.
pub fn make_big(_ctx: &ActivityCtx, n: u64) -> Result<String, Failure> {
    Ok("x".repeat(n as usize))
}

/// Every kind of payload large: takes a large input (a string), waits for
/// signal `go` (a string), calls `make_big` for a result as long as the
/// input and returns an output holding the three lengths and the result.
pub async fn big_payloads(ctx: Ctx, input: String) -> Result<serde_json::Value, Failure> {
    let signal = ctx.wait_signal(GO).await?;
    let result = ctx.call(activity!(make_big), &(input.len() as u64)).await?;
    Ok(serde_json::json!({
        "input": input.len(),
        "signal": signal.as_str().map_or(0, str::len),
        "result": result.len(),
        "output": result,
    }))
}

cairn_sdk::component! {
    workflows: [approval, collect, nap, slow, fanout, steps, steps_unbatched, flaky, ordered, counter, keyed_runs, family, brood, ticker, reuse, environment, spin, hog, boom, misuse, hostile_activity, burn, recurse, read_file, connect, bad_activity, big_output, big_payloads, activity_env],
    activities: [work, echo, instance_calls, sometimes, explode, make_big, misbehave, read_env],
}
