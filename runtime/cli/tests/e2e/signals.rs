//! Signals: before the wait, after it, and timeouts.

use crate::support::*;

#[test]
fn a_signal_sent_after_the_workflow_waits_is_delivered() {
    let c = Cairn::new();
    let r = c
        .run(&[
            "start", TESTKIT, "-w", "collect", "-i", "1", "--id", "after",
        ])
        .ok();
    assert!(r.stdout.contains("waiting for signal 'go'"), "{r:?}");
    assert_eq!(c.status("after")["status"], "waiting");
    let r = c.run(&["signal", "after", "go", r#"{"n": 1}"#]).ok();
    assert!(r.stderr.contains("completed"), "{r:?}");
    assert_eq!(c.status("after")["output"], serde_json::json!([{"n": 1}]));
}

#[test]
fn a_signal_sent_before_the_workflow_waits_is_kept_until_it_does() {
    let c = Cairn::new();
    // Sleeps 2 s (durably) before waiting for `approve`.
    c.run(&[
        "start",
        TESTKIT,
        "-w",
        "approval",
        "-i",
        r#"{"delay_ms": 2000, "timeout_ms": 3600000}"#,
        "--id",
        "before",
    ])
    .ok();
    let st = c.status("before");
    assert_eq!(st["status"], "waiting");
    assert!(st["waiting_on"].as_str().unwrap().contains("timer"), "{st}");
    // The signal lands while it sleeps: kept in the inbox.
    c.run(&["signal", "before", "approve", r#"{"by": "carol"}"#])
        .ok();
    let st = c.status("before");
    assert_eq!(st["status"], "waiting");
    assert_eq!(st["inbox"], 1, "{st}");
    // Timer passes: the workflow waits for the signal and finds it at once.
    c.run(&["resume", "before", "--skip-time"]).ok();
    let st = c.status("before");
    assert_eq!(st["status"], "completed", "{st}");
    assert_eq!(
        st["output"],
        serde_json::json!({"approved": {"by": "carol"}})
    );
    assert_eq!(st["inbox"], 0);
}

#[test]
fn a_signal_wait_that_times_out_takes_the_timeout_branch() {
    let c = Cairn::new();
    let r = c
        .run(&[
            "run",
            TESTKIT,
            "-w",
            "approval",
            "-i",
            r#"{"delay_ms": 0, "timeout_ms": 3600000}"#,
            "--id",
            "late",
            "--skip-time",
        ])
        .ok();
    assert_eq!(r.stdout.trim(), r#"{"timed_out":true}"#);
    // A signal after the timeout is refused: the execution has finished.
    let late = c.run(&["signal", "late", "approve", "true"]);
    assert_eq!(late.code, 2);
    assert!(late.stderr.contains("CRN203"), "{late:?}");
}

#[test]
fn several_signals_of_one_name_arrive_in_order() {
    let c = Cairn::new();
    c.run(&[
        "start", TESTKIT, "-w", "collect", "-i", "3", "--id", "order",
    ])
    .ok();
    for n in 1..=3 {
        c.run(&["signal", "order", "go", &n.to_string(), "--no-advance"])
            .ok();
    }
    c.run(&["resume", "order", "--no-wait"]).ok();
    assert_eq!(c.status("order")["output"], serde_json::json!([1, 2, 3]));
    let h = c.history("order");
    assert_contiguous(&h);
    assert_eq!(
        h.iter().filter(|e| e["kind"] == "signal-received").count(),
        3
    );
}

#[test]
fn durable_timers_survive_between_processes() {
    let c = Cairn::new();
    c.run(&[
        "start", TESTKIT, "-w", "nap", "-i", "86400000", "--id", "day",
    ])
    .ok();
    let st = c.status("day");
    assert_eq!(st["status"], "waiting");
    assert!(st["wake_at"].is_string(), "{st}");
    // Nothing is due yet without skipping time.
    let r = c.run(&["wake"]).ok();
    assert!(r.stderr.contains("nothing is due"), "{r:?}");
    c.run(&["wake", "--skip-time"]).ok();
    let st = c.status("day");
    assert_eq!(st["status"], "completed");
    // Journal time moved a day (plus the milliseconds the first advance took).
    let slept = st["output"].as_u64().unwrap();
    assert!((86_400_000..86_460_000).contains(&slept), "{st}");
}

#[test]
fn a_signal_sent_twice_with_one_idempotency_key_is_delivered_once() {
    let c = Cairn::new();
    c.run(&[
        "start", TESTKIT, "-w", "collect", "-i", "2", "--id", "keyed",
    ])
    .ok();
    for _ in 0..2 {
        c.run(&[
            "signal",
            "keyed",
            "go",
            "1",
            "--idempotency-key",
            "k1",
            "--no-advance",
        ])
        .ok();
    }
    let r = c
        .run(&["signal", "keyed", "go", "1", "--idempotency-key", "k1"])
        .ok();
    assert!(r.stderr.contains("already delivered"), "{r:?}");
    // One delivery: the workflow still waits for its second `go`.
    assert_eq!(c.status("keyed")["status"], "waiting");
    c.run(&["signal", "keyed", "go", "2", "--idempotency-key", "k2"])
        .ok();
    assert_eq!(c.status("keyed")["output"], serde_json::json!([1, 2]));
    // Filtered by update time (RFC 3339 or epoch milliseconds).
    let recent = c
        .run(&["list", "--updated-after", "2020-01-01T00:00:00Z", "--json"])
        .ok()
        .json();
    assert_eq!(recent.as_array().map(Vec::len), Some(1), "{recent}");
    let none = c
        .run(&["list", "--updated-before", "1000", "--json"])
        .ok()
        .json();
    assert_eq!(none, serde_json::json!([]));
}
