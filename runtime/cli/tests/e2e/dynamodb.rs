//! The CLI against DynamoDB (the emulator scripts/test starts).

use crate::support::*;

#[test]
fn swap_saga_both_outcomes_on_dynamodb() {
    let d = Dynamo::new();
    let r = d
        .run(&["run", SWAP_SAGA, "-w", "swap", "-i", SWAP_OK, "--id", "ok"])
        .ok();
    assert!(r.stdout.contains("succeeded"), "{r:?}");
    let h = d.history("ok");
    assert_contiguous(&h);
    assert_eq!(h.len(), 6);

    let r = d.run(&[
        "run",
        SWAP_SAGA,
        "-w",
        "swap",
        "-i",
        &swap_failing_at(3),
        "--id",
        "bad",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    let st = d.run(&["status", "bad", "--json"]).ok().json();
    assert_eq!(st["status"], "failed");
    assert!(
        st["failure"]["message"]
            .as_str()
            .unwrap()
            .ends_with("compensated: refund bar to bob, refund foo to alice"),
        "{st}"
    );
    assert_contiguous(&d.history("bad"));
    let list = d.run(&["list", "--json"]).ok().json();
    assert_eq!(list.as_array().unwrap().len(), 2);
}

#[test]
fn signals_and_timers_on_dynamodb() {
    let d = Dynamo::new();
    d.run(&[
        "start",
        TESTKIT,
        "-w",
        "approval",
        "-i",
        r#"{"delay_ms": 5000, "timeout_ms": 3600000}"#,
        "--id",
        "ap",
    ])
    .ok();
    d.run(&["signal", "ap", "approve", r#""yes""#]).ok();
    let st = d.run(&["status", "ap", "--json"]).ok().json();
    assert_eq!(
        (st["status"].as_str(), st["inbox"].as_u64()),
        (Some("waiting"), Some(1)),
        "{st}"
    );
    // The timer is found by the wake index and fired.
    let r = d.run(&["wake", "--skip-time"]).ok();
    assert!(r.stderr.contains("waking ap"), "{r:?}");
    let st = d.run(&["status", "ap", "--json"]).ok().json();
    assert_eq!(st["output"], serde_json::json!({"approved": "yes"}), "{st}");
}

#[test]
fn a_crash_between_an_effect_and_its_append_reruns_the_activity_once_more() {
    let d = Dynamo::new();
    let trace = d.c.trace_dir();
    let dir = format!("{}:/trace", trace.display());
    // Abort right before appending entry 2 (step 2's completion): its effect
    // (a trace line) has happened, its entry has not.
    let r = d.run_env(
        &[
            "run",
            TESTKIT,
            "-w",
            "slow",
            "-i",
            r#"{"steps": 3, "ms": 0}"#,
            "--id",
            "cr",
            "--dir",
            &dir,
        ],
        &[("CAIRN_TEST_CRASH_BEFORE_APPEND", "2")],
    );
    assert_ne!(r.code, 0, "the process died: {r:?}");
    assert_eq!(d.history("cr").len(), 2);
    d.run(&["resume", "cr", "--dir", &dir]).ok();
    let h = d.history("cr");
    assert_contiguous(&h);
    let seqs: Vec<u64> = h
        .iter()
        .filter(|e| e["kind"] == "activity-completed")
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, vec![1, 2, 3], "exactly one completion entry per step");
    let log = std::fs::read_to_string(trace.join("log")).unwrap();
    let keys: Vec<&str> = log.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(
        keys,
        vec!["cr/1", "cr/2", "cr/2", "cr/3"],
        "step 2 ran again with the same idempotency key:\n{log}"
    );
}

#[test]
fn store_errors_on_dynamodb_are_clear() {
    let d = Dynamo::new();
    let r =
        d.c.command()
            .args(["--store", "dynamodb", "--table", "no-such-table", "list"])
            .env("AWS_ENDPOINT_URL_DYNAMODB", &d.endpoint)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .output()
            .unwrap();
    let r: Run = r.into();
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("CRN206")
            && r.stderr
                .contains("cairn table create --table no-such-table"),
        "{r:?}"
    );
    let r: Run =
        d.c.command()
            .args(["--store", "dynamodb", "--table", "t", "list"])
            .env("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:9")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .output()
            .unwrap()
            .into();
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("CRN205")
            && r.stderr
                .contains("cannot reach DynamoDB at http://127.0.0.1:9"),
        "{r:?}"
    );
    let big = format!("\"{}\"", "x".repeat(500_000));
    let path = d.c.path().join("big.json");
    std::fs::write(&path, big).unwrap();
    let r = d.run(&[
        "start",
        TESTKIT,
        "-w",
        "nap",
        "-i",
        &format!("@{}", path.display()),
        "--id",
        "big",
    ]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("CRN204") && r.stderr.contains("execution 'big'"),
        "{r:?}"
    );
}

/// A 5 MB input, signal, activity result and output on DynamoDB, their
/// bodies in S3 (moto) under the payload bucket `cairn table create` made;
/// each CLI call is a new process, so every advance replays the journal
/// from the table and the bucket, and `replay-check` replays it again.
#[test]
fn five_megabyte_payloads_on_dynamodb_go_through_s3() {
    let s3 = std::env::var("CAIRN_TEST_S3_ENDPOINT")
        .expect("CAIRN_TEST_S3_ENDPOINT is not set: run the tests with scripts/test, which starts moto (S3)");
    let d = Dynamo::new();
    let bucket = format!("{}-payloads", d.table).to_lowercase();
    let env = [
        ("AWS_ENDPOINT_URL_S3", s3.as_str()),
        ("CAIRN_PAYLOAD_BUCKET", bucket.as_str()),
    ];
    let r = d.run_env(&["table", "create"], &env).ok();
    assert!(r.stdout.contains("created payload bucket"), "{r:?}");
    const MB5: usize = 5 << 20;
    let input = d.c.path().join("input.json");
    std::fs::write(&input, format!("\"{}\"", "i".repeat(MB5))).unwrap();
    let signal = d.c.path().join("signal.json");
    std::fs::write(&signal, format!("\"{}\"", "s".repeat(MB5))).unwrap();
    let input_arg = format!("@{}", input.display());
    let signal_arg = format!("@{}", signal.display());

    // Without a bucket the input is refused, naming the setting.
    let r = d.run(&[
        "start",
        TESTKIT,
        "-w",
        "big_payloads",
        "-i",
        &input_arg,
        "--id",
        "nob",
    ]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("CRN204") && r.stderr.contains("CAIRN_PAYLOAD_BUCKET"),
        "{r:?}"
    );

    let started = std::time::Instant::now();
    d.run_env(
        &[
            "start",
            TESTKIT,
            "-w",
            "big_payloads",
            "-i",
            &input_arg,
            "--id",
            "big",
        ],
        &env,
    )
    .ok();
    d.run_env(&["signal", "big", "go", &signal_arg], &env).ok();
    let st = d.run_env(&["status", "big", "--json"], &env).ok().json();
    let ms = started.elapsed().as_millis();
    assert_eq!(
        st["status"],
        "completed",
        "{}",
        &st.to_string()[..300.min(st.to_string().len())]
    );
    let out = &st["output"];
    assert_eq!(
        (&out["input"], &out["signal"], &out["result"]),
        (
            &serde_json::json!(MB5),
            &serde_json::json!(MB5),
            &serde_json::json!(MB5)
        )
    );
    assert_eq!(out["output"].as_str().map(str::len), Some(MB5));
    // The history reads back whole; a replay of the new process agrees.
    let h = d.run_env(&["history", "big", "--json"], &env).ok().json();
    let h = h.as_array().unwrap();
    assert_contiguous(h);
    let r = d
        .run_env(&["replay-check", TESTKIT, "-w", "big_payloads"], &env)
        .ok();
    assert!(!r.stdout.contains("diverge"), "{r:?}");
    println!("figure: large_payload_cli_e2e_5mb_ms={ms} ms");
}
