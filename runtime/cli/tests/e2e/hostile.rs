//! Guests that misbehave: each fails its execution with a clear error and
//! never hangs or crashes the host.

use crate::support::*;
use std::time::{Duration, Instant};

fn fails_with(workflow: &str, input: &str, code: &str, words: &[&str]) -> serde_json::Value {
    let c = Cairn::new();
    let id = format!("hostile-{workflow}");
    let start = Instant::now();
    let r = c.run(&["run", TESTKIT, "-w", workflow, "-i", input, "--id", &id]);
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "{workflow} must fail in bounded time"
    );
    assert_eq!(r.code, 1, "{workflow}: {r:?}");
    let st = c.status(&id);
    assert_eq!(st["status"], "failed");
    let message = st["failure"]["message"].as_str().unwrap();
    assert!(message.starts_with(code), "{workflow}: {message}");
    for w in words {
        assert!(
            message.contains(w),
            "{workflow}: expected {w:?} in {message}"
        );
    }
    st
}

#[test]
fn an_endless_loop_runs_out_of_fuel() {
    fails_with(
        "spin",
        "null",
        "CRN303",
        &["fuel budget per await", "without awaiting"],
    );
}

#[test]
fn unbounded_allocation_hits_the_memory_limit() {
    fails_with("hog", "null", "CRN304", &["memory", "limit"]);
}

#[test]
fn a_panic_reports_its_message_and_location() {
    fails_with(
        "boom",
        "null",
        "CRN302",
        &["boom: the workflow hit a bug", "testkit/src/lib.rs"],
    );
}

#[test]
fn sdk_misuse_fails_the_execution_with_a_clear_failure_not_a_trap() {
    for (kind, words) in [
        ("select_all_of_nothing", "select_all was given no futures"),
        (
            "unserializable_next_run",
            "continue-as-new: the next run's input cannot be serialized as JSON",
        ),
    ] {
        let c = Cairn::new();
        let id = format!("misuse-{kind}");
        let input = format!("{kind:?}");
        let r = c.run(&["run", TESTKIT, "-w", "misuse", "-i", &input, "--id", &id]);
        assert_eq!(r.code, 1, "{kind}: {r:?}");
        let st = c.status(&id);
        assert_eq!(st["status"], "failed", "{kind}: {st}");
        assert_eq!(st["failure"]["kind"], "non-retryable", "{kind}: {st}");
        let message = st["failure"]["message"].as_str().unwrap();
        assert!(message.contains(words), "{kind}: {message}");
        assert!(!message.contains("CRN302"), "{kind}: a trap: {message}");
    }
}

#[test]
fn deep_recursion_is_a_stack_overflow() {
    fails_with("recurse", "null", "CRN302", &["stack overflow", "depth"]);
}

#[test]
fn the_filesystem_is_denied_in_workflow_code_naming_the_call() {
    fails_with(
        "read_file",
        "null",
        "CRN305",
        &["wasi:filesystem/", "activity"],
    );
}

#[test]
fn the_network_is_denied_in_workflow_code_naming_the_call() {
    fails_with("connect", "null", "CRN305", &["wasi:sockets/"]);
}

#[test]
fn a_panicking_activity_is_retried_then_fails_the_call() {
    let st = fails_with(
        "bad_activity",
        "null",
        "attempt 2 failed",
        &["the activity exploded"],
    );
    assert_eq!(st["failure"]["kind"], "application");
}

#[test]
fn an_oversized_activity_output_fails_the_call_not_the_store() {
    fails_with("big_output", "5000000", "CRN204", &["make_big", "bytes"]);
}

#[test]
fn workflow_code_sees_journal_time_and_an_empty_environment() {
    let c = Cairn::new();
    let r = c
        .run(&[
            "run",
            TESTKIT,
            "-w",
            "environment",
            "-i",
            "null",
            "--id",
            "env",
        ])
        .ok();
    let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(
        v["system_ms"], v["ctx_ms"],
        "the WASI clock reads journal time"
    );
    assert_eq!(v["env"], 0);
    let started = c.history("env")[0]["at"].as_str().unwrap().to_string();
    assert!(!started.is_empty());
}

#[test]
fn parallel_activities_and_retries_work() {
    let c = Cairn::new();
    let r = c
        .run(&["run", TESTKIT, "-w", "fanout", "-i", "8", "--id", "fan"])
        .ok();
    assert_eq!(r.stdout.trim(), "[0,1,2,3,4,5,6,7]");
    let h = c.history("fan");
    assert_contiguous(&h);
    let mut seqs: Vec<u64> = h.iter().filter_map(|e| e["seq"].as_u64()).collect();
    seqs.sort();
    assert_eq!(seqs, (1..=8).collect::<Vec<_>>());
    let r = c
        .run(&["run", TESTKIT, "-w", "flaky", "-i", "2", "--id", "flaky"])
        .ok();
    assert_eq!(r.stdout.trim(), "3", "succeeded on attempt 3");
    assert_eq!(c.history("flaky")[1]["attempts"], 3);
}

/// swap-saga with its `cairn:workflow` interfaces renamed to another
/// version (same length, so the binary stays a valid component): what a
/// guest built against an older or newer WIT looks like to this host.
fn with_wit_version(c: &Cairn, version: &str) -> String {
    assert_eq!(version.len(), "0.2.0".len());
    let mut bytes = std::fs::read(SWAP_SAGA).unwrap();
    let mut renamed = 0;
    for iface in ["types", "host", "guest"] {
        let from = format!("cairn:workflow/{iface}@0.2.0");
        let to = format!("cairn:workflow/{iface}@{version}");
        let mut i = 0;
        while let Some(at) = bytes[i..]
            .windows(from.len())
            .position(|w| w == from.as_bytes())
        {
            let at = i + at;
            bytes[at..at + to.len()].copy_from_slice(to.as_bytes());
            renamed += 1;
            i = at + to.len();
        }
    }
    assert!(renamed > 0, "swap-saga names cairn:workflow@0.2.0");
    let path = c.path().join(format!("swap-{version}.wasm"));
    std::fs::write(&path, bytes).unwrap();
    path.display().to_string()
}

#[test]
fn a_guest_built_against_another_wit_version_is_refused_naming_both_versions() {
    let c = Cairn::new();
    for (version, advice) in [
        ("0.3.0", "upgrade cairn"),
        // What every component built before the 0.2.0 vocabulary and
        // batched `wait-any` looks like.
        (
            "0.1.0",
            "rebuild the component with the cairn-sdk of this cairn (WIT 0.2.0)",
        ),
    ] {
        let wasm = with_wit_version(&c, version);
        for args in [
            vec!["run", &wasm, "-w", "swap", "-i", SWAP_OK, "--id", "v"],
            vec!["inspect", &wasm],
        ] {
            let r = c.run(&args);
            assert_eq!(r.code, 2, "{args:?}: {r:?}");
            for words in [
                "CRN301",
                &format!("cairn:workflow@{version}"),
                "this host implements cairn:workflow@0.2.0",
                advice,
            ] {
                assert!(
                    r.stderr.contains(words),
                    "{version}: expected {words:?} in {}",
                    r.stderr
                );
            }
        }
    }
    let list = c.run(&["list", "--json"]).ok().json();
    assert_eq!(list, serde_json::json!([]), "nothing was stored");
}
