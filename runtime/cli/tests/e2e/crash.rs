//! kill -9 in the middle of a workflow, then `cairn resume`.

use crate::support::*;
use std::time::{Duration, Instant};

fn journal_len(c: &Cairn, id: &str) -> usize {
    let r = c.run(&["status", id, "--json"]);
    if r.code != 0 {
        return 0;
    }
    r.json()["journal_len"].as_u64().unwrap_or(0) as usize
}

fn wait_for(what: &str, deadline: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn kill_during_an_activity_then_resume_completes_without_rerunning_finished_steps() {
    let c = Cairn::new();
    let trace = c.trace_dir();
    let dir = format!("{}:/trace", trace.display());
    let mut child = c
        .command()
        .args([
            "run",
            TESTKIT,
            "-w",
            "slow",
            "-i",
            r#"{"steps": 3, "ms": 2000}"#,
            "--id",
            "crash",
            "--dir",
            &dir,
        ])
        .spawn()
        .unwrap();
    // Step 1 is journaled; step 2's 2 s activity is under way.
    wait_for("step 1", Duration::from_secs(30), || {
        journal_len(&c, "crash") >= 2
    });
    std::thread::sleep(Duration::from_millis(500));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert_eq!(journal_len(&c, "crash"), 2, "killed during step 2");

    let r = c.run(&["resume", "crash", "--dir", &dir]).ok();
    assert!(r.stderr.contains("completed"), "{r:?}");
    let h = c.history("crash");
    assert_contiguous(&h);
    let seqs: Vec<u64> = h
        .iter()
        .filter(|e| e["kind"] == "activity-completed")
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, vec![1, 2, 3], "each step journaled once");
    let log = std::fs::read_to_string(trace.join("log")).unwrap();
    let runs = |key: &str| {
        log.lines()
            .filter(|l| l.split(' ').next() == Some(key))
            .count()
    };
    assert_eq!(
        runs("crash/1"),
        1,
        "the completed step 1 was not run again:\n{log}"
    );
    assert_eq!(
        runs("crash/2"),
        1,
        "step 2 was killed before its effect, then run once:\n{log}"
    );
    assert_eq!(runs("crash/3"), 1, "{log}");
}

#[test]
fn kill_during_a_durable_timer_then_resume_completes() {
    let c = Cairn::new();
    let mut child = c
        .command()
        .args(["run", TESTKIT, "-w", "nap", "-i", "3000", "--id", "nap"])
        .spawn()
        .unwrap();
    wait_for("the timer to start", Duration::from_secs(30), || {
        journal_len(&c, "nap") >= 2
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let st = c.status("nap");
    assert_eq!(st["status"], "waiting", "{st}");
    c.run(&["resume", "nap"]).ok();
    let h = c.history("nap");
    assert_contiguous(&h);
    let k: Vec<String> = kinds(&h).into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        k,
        vec!["started", "timer-started", "timer-fired", "completed"]
    );
    assert!(c.status("nap")["output"].as_u64().unwrap() >= 3000);
}
