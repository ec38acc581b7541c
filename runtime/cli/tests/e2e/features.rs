//! Children, queries, cancellation, safe upgrades, continue-as-new, and the
//! long-running examples — each through the CLI, on SQLite and on DynamoDB.

use crate::support::*;
use cairn_test_artifacts::{BACKGROUND_CHECK, PROVISION, TESTKIT_LOGGED};

/// Declares one test per store for a body taking an `Env`.
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { super::$name(super::Env::sqlite()) } )*
        }
        mod dynamodb {
            $( #[test] fn $name() { super::$name(super::Env::dynamo()) } )*
        }
    };
}

on_both_stores!(
    children_run_and_report_to_their_parent,
    cancelling_a_parent_cancels_its_children,
    queries_read_state_without_writing,
    cancellation_runs_compensations_and_ends_cancelled,
    continue_as_new_keeps_every_journal_small,
    registered_components_serve_new_executions_only,
    replay_check_tells_compatible_from_incompatible,
    a_fifteen_day_background_check_finishes_in_seconds,
    provisioning_polls_with_backoff_until_ready,
);

fn children_run_and_report_to_their_parent(e: Env) {
    let r = e
        .run(&["start", TESTKIT, "-w", "family", "-i", "2", "--id", "fam"])
        .ok();
    assert!(
        r.stdout.contains("waiting for child fam.c0, child fam.c1"),
        "{r:?}"
    );
    for (i, child) in ["fam.c0", "fam.c1"].iter().enumerate() {
        let st = e.status(child);
        assert_eq!(st["status"], "waiting", "{st}");
        assert_eq!(st["workflow"], "collect");
        e.run(&["signal", child, "go", &format!("\"from {i}\"")])
            .ok();
    }
    let st = e.status("fam");
    assert_eq!(st["status"], "completed", "{st}");
    assert_eq!(st["output"], serde_json::json!([["from 0"], ["from 1"]]));
    let h = e.history("fam");
    assert_contiguous(&h);
    let k: Vec<&str> = h.iter().map(|x| x["kind"].as_str().unwrap()).collect();
    assert_eq!(k.iter().filter(|k| **k == "child-started").count(), 2);
    assert_eq!(k.iter().filter(|k| **k == "child-completed").count(), 2);
    // A duplicate push of a finished child changes nothing.
    e.run(&["resume", "fam.c0", "--no-wait"]).ok();
    assert_eq!(e.history("fam").len(), h.len());
}

fn cancelling_a_parent_cancels_its_children(e: Env) {
    e.run(&["start", TESTKIT, "-w", "family", "-i", "2", "--id", "fc"])
        .ok();
    let r = e.run(&["cancel", "fc", "--reason", "not needed"]);
    assert_eq!(r.code, 1, "a cancelled execution exits 1: {r:?}");
    assert_eq!(e.status("fc")["status"], "cancelled");
    for child in ["fc.c0", "fc.c1"] {
        let st = e.status(child);
        assert_eq!(st["status"], "cancelled", "{child}: {st}");
        assert!(
            st["failure"]["message"]
                .as_str()
                .unwrap()
                .contains("its parent fc was cancelled: not needed"),
            "{st}"
        );
    }
    // A cancelled execution takes no more signals.
    let late = e.run(&["signal", "fc.c0", "go", "1"]);
    assert!(late.stderr.contains("CRN203"), "{late:?}");
}

fn queries_read_state_without_writing(e: Env) {
    e.run(&["start", TESTKIT, "-w", "ticker", "-i", "null", "--id", "tk"])
        .ok();
    for _ in 0..3 {
        e.run(&["signal", "tk", "tick", "1"]).ok();
    }
    let before = e.history("tk");
    assert_eq!(e.run(&["query", "tk", "count"]).ok().stdout.trim(), "3");
    assert_eq!(e.history("tk"), before, "a query writes nothing");
    let unknown = e.run(&["query", "tk", "nope"]);
    assert_eq!(unknown.code, 1);
    assert!(
        unknown
            .stderr
            .contains("answers no query named 'nope' (it answers: count)"),
        "{unknown:?}"
    );
    e.run(&["signal", "tk", "stop", "1"]).ok();
    let finished = e.run(&["query", "tk", "count"]);
    assert_eq!(finished.code, 2);
    assert!(finished.stderr.contains("CRN403"), "{finished:?}");
}

fn cancellation_runs_compensations_and_ends_cancelled(e: Env) {
    // Waits (durably) between polls of a resource that takes 6 polls.
    let r = e
        .run(&[
            "start",
            PROVISION,
            "-w",
            "provision",
            "-i",
            r#"{"name": "slow-vm", "kind": "vm"}"#,
            "--id",
            "pv",
        ])
        .ok();
    assert!(r.stdout.contains("retry of activity 'wait_ready'"), "{r:?}");
    let r = e.run(&["cancel", "pv", "--reason", "user changed their mind"]);
    assert_eq!(r.code, 1, "{r:?}");
    let st = e.status("pv");
    assert_eq!(st["status"], "cancelled");
    let m = st["failure"]["message"].as_str().unwrap();
    assert!(
        m.contains("user changed their mind") && m.contains("compensated: delete vm-pv-1"),
        "{m}"
    );
    let h = e.history("pv");
    let kinds: Vec<(String, String)> = kinds(&h);
    assert!(kinds.contains(&("cancel-requested".into(), "".into())));
    assert_eq!(
        kinds.iter().filter(|(_, n)| n == "delete_resource").count(),
        1,
        "cleaned up once"
    );
    let again = e.run(&["cancel", "pv"]);
    assert!(again.stderr.contains("CRN203"), "{again:?}");
}

fn continue_as_new_keeps_every_journal_small(e: Env) {
    let r = e
        .run(&[
            "run",
            TESTKIT,
            "-w",
            "counter",
            "-i",
            r#"{"n": 300, "per_run": 40}"#,
            "--id",
            "cnt",
            "-q",
        ])
        .ok();
    assert_eq!(r.stdout.trim(), "300");
    let h = e.history("cnt");
    let runs = match &h[0]["run"] {
        serde_json::Value::Number(n) => n.as_u64().unwrap(),
        _ => panic!("the current run is numbered: {}", h[0]),
    };
    assert!(runs >= 8, "300 steps in runs of <= 40 entries: {runs} runs");
    for run in 1..=runs {
        let j = e
            .run(&["history", "cnt", "--run", &run.to_string(), "--json"])
            .ok()
            .json();
        let entries = j.as_array().unwrap();
        assert!(
            entries.len() <= 41,
            "run {run} holds {} entries",
            entries.len()
        );
        assert_eq!(entries[0]["kind"], "started");
        let last = entries.last().unwrap()["kind"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(
            last,
            if run == runs {
                "completed"
            } else {
                "continued-as-new"
            },
            "run {run}"
        );
    }
    let human = e.run(&["history", "cnt"]).ok();
    assert!(
        human.stdout.contains(&format!("run {runs} of {runs}")),
        "{human:?}"
    );
}

fn registered_components_serve_new_executions_only(e: Env) {
    // v1 pinned by a running execution; v2 (a compatible change) registered.
    e.run(&[
        "start", TESTKIT, "-w", "ordered", "-i", "null", "--id", "old",
    ])
    .ok();
    let r = e.run(&["register", TESTKIT_LOGGED]).ok();
    assert!(r.stdout.contains("ordered"), "{r:?}");
    e.run(&["start", "-w", "ordered", "-i", "null", "--id", "new"])
        .ok();
    let (old, new) = (e.status("old"), e.status("new"));
    assert_ne!(
        old["component"], new["component"],
        "the new execution uses the registered component"
    );
    let v2 = e.run(&["inspect", TESTKIT_LOGGED, "--json"]).ok().json();
    assert_eq!(new["component"], v2["hash"]);
    // Both finish, each on its own component.
    for id in ["old", "new"] {
        e.run(&["signal", id, "continue", "{}"]).ok();
        assert_eq!(e.status(id)["output"], "first=1 second=2");
    }
}

fn replay_check_tells_compatible_from_incompatible(e: Env) {
    e.run(&[
        "start", TESTKIT, "-w", "ordered", "-i", "null", "--id", "done",
    ])
    .ok();
    e.run(&["signal", "done", "continue", "{}"]).ok();
    e.run(&[
        "start", TESTKIT, "-w", "ordered", "-i", "null", "--id", "waiting",
    ])
    .ok();
    assert_eq!(e.status("done")["status"], "completed");
    // A log line after the last step: compatible.
    let ok = e.run(&["replay-check", TESTKIT_LOGGED, "-w", "ordered"]);
    assert_eq!(ok.code, 0, "{ok:?}");
    assert!(
        ok.stdout
            .contains("compatible: every execution replays the same"),
        "{ok:?}"
    );
    // Activities swapped: both executions diverge at entry 1.
    let bad = e.run(&["replay-check", TESTKIT_CHANGED, "-w", "ordered", "--json"]);
    assert_eq!(bad.code, 1, "{bad:?}");
    let v = bad.json();
    assert_eq!(v["diverged"], 2, "{v}");
    for x in v["executions"].as_array().unwrap() {
        assert_eq!(
            (
                x["compatible"].as_bool(),
                x["index"].as_u64(),
                x["code"].as_str()
            ),
            (Some(false), Some(1), Some("CRN100")),
            "{x}"
        );
    }
    // Nothing was written by the checks.
    assert_eq!(e.history("waiting").len(), 2);
}

fn a_fifteen_day_background_check_finishes_in_seconds(e: Env) {
    let t = std::time::Instant::now();
    let input = r#"{"candidate": "Jane Doe", "counties": ["Alameda", "Kings"]}"#;
    let r = e
        .run(&[
            "run",
            BACKGROUND_CHECK,
            "-w",
            "background_check",
            "-i",
            input,
            "--id",
            "bc",
            "--skip-time",
            "-q",
        ])
        .ok();
    assert!(
        t.elapsed() < std::time::Duration::from_secs(60),
        "took {:?}",
        t.elapsed()
    );
    let report: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(
        report["status"], "needs_review",
        "no court answered: {report}"
    );
    assert_eq!(report["days"], 15);
    for county in ["bc/county/Alameda", "bc/county/Kings"] {
        let h = e.history(county);
        assert_eq!(
            h.iter().filter(|x| x["name"] == "remind_court").count(),
            2,
            "{county}: two reminders"
        );
    }
    // A court that answers: the county is done early, the report says so.
    e.run(&[
        "start",
        BACKGROUND_CHECK,
        "-w",
        "background_check",
        "-i",
        r#"{"candidate": "John Roe", "counties": ["Kings"]}"#,
        "--id",
        "bc2",
    ])
    .ok();
    let progress = e.run(&["query", "bc2", "progress"]).ok().json();
    assert_eq!(
        progress["pending"],
        serde_json::json!(["county:Kings"]),
        "{progress}"
    );
    e.run(&[
        "signal",
        "bc2/county/Kings",
        "court_result",
        r#"{"records": []}"#,
    ])
    .ok();
    let st = e.status("bc2");
    assert_eq!(
        (st["status"].as_str(), st["output"]["status"].as_str()),
        (Some("completed"), Some("clear")),
        "{st}"
    );
}

fn provisioning_polls_with_backoff_until_ready(e: Env) {
    let r = e
        .run(&[
            "run",
            PROVISION,
            "-w",
            "provision",
            "-i",
            r#"{"name": "slow-db", "kind": "db"}"#,
            "--id",
            "pd",
            "--skip-time",
            "-q",
        ])
        .ok();
    let out: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(out["polls"], 6);
    let h = e.history("pd");
    assert!(
        h.iter().any(|x| x["kind"] == "activity-retrying"),
        "long backoffs are durable"
    );
    let done = h
        .iter()
        .find(|x| x["name"] == "wait_ready" && x["kind"] == "activity-completed")
        .unwrap();
    assert_eq!(done["attempts"], 6);
}
