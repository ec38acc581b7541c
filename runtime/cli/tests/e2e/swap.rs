//! The swap saga, both outcomes.

use crate::support::*;

#[test]
fn swap_succeeds_and_journals_each_step_once() {
    let c = Cairn::new();
    let r = c
        .run(&[
            "run",
            SWAP_SAGA,
            "--workflow",
            "swap",
            "--input",
            SWAP_OK,
            "--id",
            "swap-ok",
        ])
        .ok();
    let out: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(out["status"], "succeeded");
    assert_eq!(out["receipts"].as_array().unwrap().len(), 4);
    assert!(r.stderr.contains("completed"), "{}", r.stderr);

    let h = c.history("swap-ok");
    assert_contiguous(&h);
    let k = kinds(&h);
    assert_eq!(
        k,
        vec![
            ("started".into(), "swap".into()),
            ("activity-completed".into(), "withdraw".into()),
            ("activity-completed".into(), "withdraw".into()),
            ("activity-completed".into(), "deposit".into()),
            ("activity-completed".into(), "deposit".into()),
            ("completed".into(), "".into()),
        ]
    );
    let seqs: Vec<u64> = h.iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4], "each step journaled exactly once");
    assert_eq!(c.status("swap-ok")["status"], "completed");
}

#[test]
fn a_failing_step_compensates_the_completed_ones_in_reverse() {
    for step in 1..=4u8 {
        let c = Cairn::new();
        let id = format!("swap-fail-{step}");
        let r = c.run(&[
            "run",
            SWAP_SAGA,
            "-w",
            "swap",
            "-i",
            &swap_failing_at(step),
            "--id",
            &id,
        ]);
        assert_eq!(r.code, 1, "a failed execution exits 1: {r:?}");
        let status = c.status(&id);
        assert_eq!(status["status"], "failed");
        let message = status["failure"]["message"].as_str().unwrap().to_string();
        assert!(
            message.contains(&format!("swap failed at step {step}")),
            "{message}"
        );

        let h = c.history(&id);
        assert_contiguous(&h);
        // Completed steps, then the failed one, then compensations in reverse.
        let done = [
            "withdraw foo from alice",
            "withdraw bar from bob",
            "deposit foo into bob",
        ];
        let undo = [
            "refund foo to alice",
            "refund bar to bob",
            "take back foo from bob",
        ];
        let expected: Vec<&str> = undo[..(step as usize - 1)].iter().rev().copied().collect();
        let compensated = if expected.is_empty() {
            "nothing".to_string()
        } else {
            expected.join(", ")
        };
        assert!(
            message.ends_with(&format!("compensated: {compensated}")),
            "step {step}: {message}"
        );
        let activities = h
            .iter()
            .filter(|e| e["kind"] == "activity-completed")
            .count();
        assert_eq!(
            activities,
            step as usize + (step as usize - 1),
            "step {step}: {} done + 1 failed + compensations",
            done.len().min(step as usize - 1)
        );
        let details = &status["failure"]["details"];
        assert_eq!(
            details["compensated"].as_array().unwrap().len(),
            step as usize - 1
        );
    }
}

#[test]
fn starting_an_existing_id_is_idempotent_for_the_same_input_only() {
    let c = Cairn::new();
    c.run(&[
        "run", SWAP_SAGA, "-w", "swap", "-i", SWAP_OK, "--id", "same",
    ])
    .ok();
    // Same input: the existing execution (already completed) is returned.
    let again = c
        .run(&[
            "run", SWAP_SAGA, "-w", "swap", "-i", SWAP_OK, "--id", "same",
        ])
        .ok();
    assert!(again.stderr.contains("already exists"), "{again:?}");
    assert_eq!(c.history("same").len(), 6, "nothing was run twice");
    // Different input: a clear error, nothing touched.
    let other = c.run(&[
        "run",
        SWAP_SAGA,
        "-w",
        "swap",
        "-i",
        &swap_failing_at(2),
        "--id",
        "same",
    ]);
    assert_eq!(other.code, 2);
    assert!(
        other.stderr.contains("CRN202")
            && other
                .stderr
                .contains("already exists with a different input"),
        "{other:?}"
    );
    assert_eq!(c.history("same").len(), 6);
}

#[test]
fn the_ledger_records_each_effect_once() {
    let c = Cairn::new();
    let ledger = c.path().join("ledger");
    std::fs::create_dir_all(&ledger).unwrap();
    let dir = format!("{}:/ledger", ledger.display());
    c.run(&[
        "run",
        SWAP_SAGA,
        "-w",
        "swap",
        "-i",
        &swap_failing_at(4),
        "--id",
        "l1",
        "--dir",
        &dir,
    ]);
    let text = std::fs::read_to_string(ledger.join("ledger.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // 3 steps + 3 compensations (the failed step has no effect).
    assert_eq!(lines.len(), 6, "{text}");
    let net = |account: &str, coin: &str| -> i64 {
        lines
            .iter()
            .filter(|l| l["account"] == account && l["coin"] == coin)
            .map(|l| {
                if l["op"] == "deposit" {
                    l["amount"].as_i64().unwrap()
                } else {
                    -l["amount"].as_i64().unwrap()
                }
            })
            .sum()
    };
    for (a, coin) in [
        ("alice", "foo"),
        ("alice", "bar"),
        ("bob", "foo"),
        ("bob", "bar"),
    ] {
        assert_eq!(net(a, coin), 0, "{a}/{coin} must be back where it started");
    }
}

#[test]
fn generated_ids_are_ulids_in_start_order_and_list_filters_by_status() {
    let c = Cairn::new();
    // Without --id: `<workflow>-<ULID>`, two starts in a row never collide,
    // and ids sort as the starts happened.
    let start = || {
        let r = c
            .run(&["start", SWAP_SAGA, "-w", "swap", "-i", SWAP_OK, "--json"])
            .ok();
        r.json()["id"].as_str().unwrap().to_string()
    };
    let (a, b) = (start(), start());
    for id in [&a, &b] {
        let ulid = id.strip_prefix("swap-").unwrap_or_else(|| panic!("{id}"));
        assert_eq!(ulid.len(), 26, "{id}");
        assert!(
            ulid.chars()
                .all(|ch| ch.is_ascii_digit() || ch.is_ascii_uppercase()),
            "{id}"
        );
    }
    assert!(a < b, "{a} then {b}");

    let ids = |status: &str| -> Vec<String> {
        let list = c.run(&["list", "--status", status, "--json"]).ok().json();
        let mut ids: Vec<String> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(ids("completed"), vec![a, b]);
    assert!(ids("failed").is_empty());
    // A status clap does not know: refused with the list of those it does.
    let r = c.run(&["list", "--status", "finished"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains("possible values: running, waiting, completed, failed, cancelled, parked"),
        "{}",
        r.stderr
    );
    let r = c.run(&["--store", "postgres", "list"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("possible values: sqlite, dynamodb"),
        "{}",
        r.stderr
    );
}
