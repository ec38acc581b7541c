//! End to end through the real Lambda runtime API emulator: `cargo lambda
//! watch --only-lambda-apis` serves the runtime and invoke APIs, this test
//! starts the `cairn-lambda` bootstrap against it (a cold start, right before
//! the first invoke) with the function's environment from scripts/lambda-e2e,
//! DynamoDB Local serves DynamoDB and its stream, and moto EventBridge Scheduler. This test plays the rest of AWS: it invokes the
//! function, reads the table's stream with GetRecords and forwards the inbox
//! inserts in the exact event shape an event source mapping uses, and fires
//! timers by invoking the function with the payload given to the scheduler.
//!
//! Environment: CAIRN_TEST_LAMBDA_ENDPOINT (the emulator's invoke address),
//! CAIRN_TEST_LAMBDA_BIN (the bootstrap to start; it inherits the function's
//! environment: AWS_LAMBDA_RUNTIME_API, CAIRN_*), AWS_ENDPOINT_URL_DYNAMODB,
//! AWS_ENDPOINT_URL_DYNAMODB_STREAMS (DynamoDB Local) and
//! AWS_ENDPOINT_URL_SCHEDULER (moto), CAIRN_TABLE and CAIRN_SCHEDULER_GROUP (the function's table and
//! schedule group).

mod support;

use serde_json::json;
use std::time::{Duration, Instant};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_the_lambda_runtime_emulator() {
    let aws = aws().await;
    let l = aws.lambda.clone();
    // A new container: its /tmp cache is empty.
    let empty_cache = tempfile::tempdir().unwrap();
    let function =
        Function::start_with(&[("CAIRN_CACHE_DIR", empty_cache.path().display().to_string())]);

    // Start: the swap runs to the end within the invocation, both outcomes.
    let t = Instant::now();
    let ok = invoke(
        &l,
        &json!({"action": "start", "workflow": "swap", "id": "emu-swap", "input": {"a": "alice", "b": "bob", "foo": 10, "bar": 20, "fail_at_step": null}}),
    );
    let first = t.elapsed();
    assert_eq!(ok["status"], "completed", "{ok}");
    // A cold start from an empty /tmp cache: the component came from the
    // package's .cwasm (scripts/lambda-e2e precompiles it), not from Cranelift.
    assert_eq!(ok["timing"]["component_precompiled"], true, "{ok}");
    assert_eq!(ok["output"]["status"], "succeeded");
    let bad = invoke(
        &l,
        &json!({"action": "start", "workflow": "swap", "id": "emu-swap-3", "input": {"a": "alice", "b": "bob", "foo": 10, "bar": 20, "fail_at_step": 3}}),
    );
    assert_eq!(bad["status"], "failed", "{bad}");
    assert!(
        bad["failure"]["message"]
            .as_str()
            .unwrap()
            .ends_with("compensated: refund bar to bob, refund foo to alice")
    );
    let mut warm = Vec::new();
    for i in 0..20 {
        let t = Instant::now();
        let r = invoke(
            &l,
            &json!({"action": "start", "workflow": "swap", "id": format!("emu-warm-{i}"), "input": {"a": "a", "b": "b", "foo": 1, "bar": 2}}),
        );
        warm.push(t.elapsed());
        assert_eq!(r["status"], "completed");
        if i == 0 {
            println!(
                "figure: requests for one swap (start + 4 steps + final): {}",
                r["requests"]
            );
        }
    }
    warm.sort();
    println!(
        "figure: first invoke (cold) {:.1} ms client-side; in the function: {}",
        first.as_secs_f64() * 1e3,
        ok["timing"]
    );
    println!(
        "figure: warm swap start-to-result p50 {:.1} ms (client-side, 20 invokes)",
        warm[10].as_secs_f64() * 1e3
    );

    // A signal: written by one invoke, advanced by the stream record.
    let w = invoke(
        &l,
        &json!({"action": "start", "workflow": "collect", "id": "emu-sig", "input": 1}),
    );
    assert_eq!(w["status"], "waiting", "{w}");
    let s = invoke(
        &l,
        &json!({"action": "signal", "id": "emu-sig", "name": "go", "payload": {"from": "stream"}}),
    );
    assert!(s["delivered"].is_string(), "{s}");
    assert_eq!(
        invoke(&l, &json!({"action": "status", "id": "emu-sig"}))["status"],
        "waiting"
    );
    let batch = aws.inbox_inserts().await;
    let n = batch["Records"].as_array().unwrap().len();
    assert!(n >= 1, "moto's stream has the inbox insert: {batch}");
    let r = invoke(&l, &batch);
    assert_eq!(r, json!({"batchItemFailures": []}));
    let st = invoke(&l, &json!({"action": "status", "id": "emu-sig"}));
    assert_eq!(st["status"], "completed", "{st}");
    assert_eq!(st["output"], json!([{"from": "stream"}]));
    // The same records again, then in reverse: harmless.
    assert_eq!(invoke(&l, &batch), json!({"batchItemFailures": []}));
    let mut reversed = batch.clone();
    reversed["Records"].as_array_mut().unwrap().reverse();
    assert_eq!(invoke(&l, &reversed), json!({"batchItemFailures": []}));
    assert_eq!(
        invoke(&l, &json!({"action": "status", "id": "emu-sig"}))["journal_len"],
        3
    );

    // A timer: the function scheduled its wake; fire it with that payload.
    let n = invoke(
        &l,
        &json!({"action": "start", "workflow": "nap", "id": "emu-nap", "input": 2000}),
    );
    assert_eq!(n["status"], "waiting", "{n}");
    println!(
        "figure: requests for start + suspend on a timer: {}",
        n["requests"]
    );
    let wakes = aws.wakes_for("emu-nap").await;
    assert_eq!(wakes.len(), 1, "{wakes:?}");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = invoke(&l, &wakes[0]);
    assert_eq!(r["outcome"], "completed", "{r}");
    println!(
        "figure: warm advance on a wake {:.1} ms, requests {}",
        r["advance_ms"].as_f64().unwrap_or(0.0),
        r["requests"]
    );
    assert_eq!(
        invoke(&l, &wakes[0])["outcome"],
        "completed",
        "a duplicate wake is harmless"
    );

    // A malformed event: a clear error, nothing changed.
    let before = invoke(&l, &json!({"action": "status", "id": "emu-nap"}));
    let err = invoke(&l, &json!({"hello": "world"}));
    assert_eq!(err["errorType"], "CRN401.BadRequest", "{err}");
    assert!(
        err["errorMessage"]
            .as_str()
            .unwrap()
            .contains("unrecognized event"),
        "{err}"
    );
    assert_eq!(
        invoke(&l, &json!({"action": "status", "id": "emu-nap"})),
        before
    );
    println!(
        "figure: function process peak RSS {:.1} MiB",
        function.peak_rss_mib()
    );
}

// ---- Recovery, leases, dropped records, upgrades, memory (issue 11) ----
//
// These tests play EventBridge's periodic sweep themselves (an invoke of
// `{"action": "sweep"}` every `SWEEP_EVERY`) and run the function with a
// short lease, so the bounds they check are the deployed ones scaled down:
// with the stacks' defaults (lease 30 s, sweep every 60 s) the same
// arithmetic gives a recovery within 90 s plus the interrupted work.

/// The test's sweep cadence (the stacks' `SweepRate` is a minute).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_killed_mid_activity_is_recovered_by_the_sweep() {
    let aws = aws().await;
    let l = aws.lambda.clone();
    let trace = Trace::new("kill");
    let f1 = Function::start_with(&trace.env());
    let input = json!({"steps": 3, "ms": 1000});
    // An uninterrupted run, for comparison.
    let reference = invoke(
        &l,
        &json!({"action": "start", "workflow": "slow", "id": "rec-ref", "input": input}),
    );
    assert_eq!(reference["status"], "completed", "{reference}");

    let _lost_reply = invoke_in_background(
        &l,
        json!({"action": "start", "workflow": "slow", "id": "rec-kill", "input": input}),
    );
    // Mid-activity: step 1 is journaled, step 2 has started.
    trace.wait_for_attempt("rec-kill/2", Duration::from_secs(30));
    f1.kill();
    let killed = Instant::now();
    // Lambda starts a new container for the next invocation.
    let _f2 = Function::start_with(&trace.env());
    let mut sweeps = 0;
    loop {
        let s = status(&l, "rec-kill");
        if s["status"] == "completed" {
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(60),
            "not recovered 60 s after the kill: {s}"
        );
        std::thread::sleep(SWEEP_EVERY);
        invoke(&l, &json!({"action": "sweep"}));
        sweeps += 1;
    }
    let recovery = killed.elapsed();
    // The bound: the lease runs out, the next sweep finds it, the two
    // remaining steps (1 s each) run, with 2 s for process starts and calls.
    let bound = Duration::from_secs(LEASE_S) + SWEEP_EVERY + Duration::from_secs(2 + 2);
    println!(
        "figure: recovery_after_kill_s={:.1} s (lease {LEASE_S} s, sweep every {} s, {sweeps} sweeps; bound {:.0} s; with the stacks' defaults, lease 30 s + sweep 60 s + the same work: <= {} s)",
        recovery.as_secs_f64(),
        SWEEP_EVERY.as_secs(),
        bound.as_secs_f64(),
        30 + 60 + 2 + 2
    );
    assert!(
        recovery <= bound,
        "recovered in {recovery:?}, over the bound {bound:?}"
    );
    // Its journal is an uninterrupted run's.
    assert_eq!(
        journal_shape("rec-kill").await,
        journal_shape("rec-ref").await
    );
    // The harness's ledger: step 1 (journaled before the kill) ran once,
    // step 2 (killed before its completion was journaled) ran again, step 3 once.
    let attempts = trace.attempts();
    assert_eq!(attempts.get("rec-kill/1"), Some(&1), "{attempts:?}");
    assert_eq!(attempts.get("rec-kill/2"), Some(&2), "{attempts:?}");
    assert_eq!(attempts.get("rec-kill/3"), Some(&1), "{attempts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_advance_longer_than_its_lease_has_one_driver() {
    let aws = aws().await;
    let l = aws.lambda.clone();
    let trace = Trace::new("long");
    // Two containers: while one advances, the other takes every other push.
    let _f1 = Function::start_with(&trace.env());
    let _f2 = Function::start_with(&trace.env());
    let long = invoke_in_background(
        &l,
        json!({"action": "start", "workflow": "slow", "id": "long-1", "input": {"steps": 1, "ms": 8000}}),
    );
    trace.wait_for_attempt("long-1/1", Duration::from_secs(30));
    // Four leases long: wakes and sweeps land on the other container.
    let mut refused = 0;
    let mut pushes = 0;
    while !long.is_finished() {
        let r = invoke(&l, &json!({"action": "wake", "id": "long-1"}));
        pushes += 1;
        if r["outcome"] == "conflict" {
            refused += 1;
        } else {
            assert!(
                r["outcome"] == "completed",
                "a second driver advanced it: {r}"
            );
        }
        invoke(&l, &json!({"action": "sweep"}));
        std::thread::sleep(Duration::from_millis(500));
    }
    let r = long.join().unwrap();
    assert_eq!(r["status"], "completed", "{r}");
    let attempts = trace.attempts();
    let duplicate_drivers = attempts.get("long-1/1").copied().unwrap_or(0) - 1;
    println!(
        "figure: duplicate_drivers={duplicate_drivers} (an 8 s activity under a {LEASE_S} s lease; {refused} of {pushes} concurrent pushes stood back)"
    );
    assert_eq!(duplicate_drivers, 0, "{attempts:?}");
    assert!(
        refused >= 4,
        "the race did not happen: only {refused} pushes met the running advance"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_whose_stream_record_was_lost_is_driven_by_the_sweep() {
    let aws = aws().await;
    let l = aws.lambda.clone();
    let trace = Trace::new("drop");
    let _f = Function::start_with(&trace.env());
    let w = invoke(
        &l,
        &json!({"action": "start", "workflow": "collect", "id": "drop-1", "input": 1}),
    );
    assert_eq!(w["status"], "waiting", "{w}");
    let s = invoke(
        &l,
        &json!({"action": "signal", "id": "drop-1", "name": "go", "payload": "late"}),
    );
    assert!(s["delivered"].is_string(), "{s}");
    // Its stream record is never delivered (the test drops it). Until the
    // grace time passes the sweep leaves it to the stream...
    invoke(&l, &json!({"action": "sweep"}));
    assert_eq!(status(&l, "drop-1")["status"], "waiting");
    // ...then finds it.
    std::thread::sleep(Duration::from_millis(2200));
    let r = invoke(&l, &json!({"action": "sweep"}));
    let st = status(&l, "drop-1");
    assert_eq!(st["status"], "completed", "{st} after {r}");
    assert_eq!(st["output"], json!(["late"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_strands_no_execution_and_register_rolls_starts_back() {
    let aws = aws().await;
    let l = aws.lambda.clone();
    let cli = std::path::Path::new(&env("CAIRN_TEST_LAMBDA_BIN")).with_file_name("cairn");
    let register = |wasm: &str| {
        let out = std::process::Command::new(&cli)
            .args([
                "--store",
                "dynamodb",
                "--table",
                &env("CAIRN_TABLE"),
                "register",
                wasm,
            ])
            .output()
            .expect("cairn register");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let hash = |wasm: &str| cairn_host::component_hash(&std::fs::read(wasm).unwrap()).to_string();
    let (v1, v2) = (
        cairn_test_artifacts::TESTKIT,
        cairn_test_artifacts::TESTKIT_CHANGED,
    );
    // v1, registered and deployed before the upgrade.
    register(v1);
    let f1 = Function::start();
    let old: Vec<String> = (0..5).map(|i| format!("up-old-{i}")).collect();
    for id in &old {
        let r = invoke(
            &l,
            &json!({"action": "start", "workflow": "collect", "id": id, "input": 1}),
        );
        assert_eq!(
            (r["status"].as_str(), r["component"].as_str()),
            (Some("waiting"), Some(hash(v1).as_str())),
            "{r}"
        );
    }
    // The upgrade: v2 is registered and deployed in a package without v1.
    register(v2);
    f1.kill();
    let package = tempfile::tempdir().unwrap();
    std::fs::copy(v2, package.path().join(format!("{}.wasm", hash(v2)))).unwrap();
    let _f2 =
        Function::start_with(&[("CAIRN_COMPONENTS_DIR", package.path().display().to_string())]);
    let new: Vec<String> = (0..5).map(|i| format!("up-new-{i}")).collect();
    for id in &new {
        let r = invoke(
            &l,
            &json!({"action": "start", "workflow": "collect", "id": id, "input": 1}),
        );
        assert_eq!(r["component"].as_str(), Some(hash(v2).as_str()), "{r}");
    }
    for id in old.iter().chain(&new) {
        invoke(
            &l,
            &json!({"action": "signal", "id": id, "name": "go", "payload": id}),
        );
    }
    let mut batch = aws.inbox_inserts().await;
    batch["Records"].as_array_mut().unwrap().retain(|r| {
        r["dynamodb"]["Keys"]["pk"]["S"]
            .as_str()
            .is_some_and(|pk| pk.starts_with("exec#up-"))
    });
    assert_eq!(invoke(&l, &batch), json!({"batchItemFailures": []}));
    let mut stranded = 0;
    for id in &old {
        let st = status(&l, id);
        if st["status"] != "completed" {
            stranded += 1;
        }
        assert_eq!(st["component"].as_str(), Some(hash(v1).as_str()), "{st}");
    }
    println!(
        "figure: stranded_executions_after_upgrade={stranded} ({} executions started on v1 finished on v1, loaded from the table; {} started on v2)",
        old.len() - stranded,
        new.len()
    );
    assert_eq!(stranded, 0);
    for id in &new {
        assert_eq!(status(&l, id)["status"], "completed");
    }
    // Rollback: register v1 again and Lambda starts follow at once.
    register(v1);
    let r = invoke(
        &l,
        &json!({"action": "start", "workflow": "collect", "id": "up-back", "input": 1}),
    );
    assert_eq!(r["component"].as_str(), Some(hash(v1).as_str()), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_over_the_memory_budget_fails_and_the_container_survives() {
    let aws = aws().await;
    let l = aws.lambda.clone();
    let mut f = Function::start_with(&[("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256".into())]);
    let r = invoke(
        &l,
        &json!({"action": "start", "workflow": "hog", "id": "mem-hog", "input": null}),
    );
    assert_eq!(r["status"], "failed", "{r}");
    let message = r["failure"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("CRN304"), "{r}");
    assert!(f.alive(), "the container died");
    // The same container goes on serving.
    let ok = invoke(
        &l,
        &json!({"action": "start", "workflow": "swap", "id": "mem-after", "input": {"a": "a", "b": "b", "foo": 1, "bar": 2}}),
    );
    assert_eq!(ok["status"], "completed", "{ok}");
    let rss = f.peak_rss_mib();
    println!(
        "figure: function peak RSS with a memory hog {rss:.0} MiB (function memory 256 MB, guest budget 128 MiB)"
    );
    assert!(
        rss < 256.0,
        "peak RSS {rss} MiB is over the function's memory"
    );
}
