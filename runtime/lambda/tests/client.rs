//! `cairn --function` end to end: the CLI's remote mode (`cairn-client`,
//! the AWS SDK's Lambda client) invokes the function through the Lambda
//! emulator's Invoke API (`cargo lambda watch` serves
//! `POST /2015-03-31/functions/{name}/invocations`, here `_`), the table's
//! stream reaches the function through the event source mapping the
//! support module plays, and nothing runs in the CLI's process.
//!
//! Environment: as the `emulator` test (scripts/lambda-e2e); the `cairn`
//! binary is the one beside CAIRN_TEST_LAMBDA_BIN.

mod support;

use serde_json::{Value, json};
use std::process::Output;
use std::time::{Duration, Instant};
use support::*;

/// `cairn --function _ ARGS…`, with the emulator as Lambda's endpoint and
/// no table or store configured (a remote command needs none).
fn cairn(args: &[&str]) -> Output {
    let bin = std::path::Path::new(&env("CAIRN_TEST_LAMBDA_BIN")).with_file_name("cairn");
    std::process::Command::new(&bin)
        .args(["--function", "_"])
        .args(args)
        .env("AWS_ENDPOINT_URL_LAMBDA", env("CAIRN_TEST_LAMBDA_ENDPOINT"))
        .env_remove("CAIRN_STORE")
        .env("CAIRN_DB", "/nonexistent/remote-mode-opens-no-store.db")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()))
}

/// Runs `cairn` and reads its stdout as JSON; it must exit with `code`.
fn cairn_json(args: &[&str], code: i32) -> Value {
    let out = cairn(args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(code),
        "cairn {args:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("cairn {args:?}: {e}: {stdout}"))
}

/// Polls `cairn status` until the execution exists and its status is
/// `want`.
fn await_status(id: &str, want: &str) -> Value {
    let t = Instant::now();
    loop {
        let out = cairn(&["status", id, "--json"]);
        let d: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if d["status"] == want {
            return d;
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() || stderr.contains("CRN201"),
            "cairn status {id}: {stderr}"
        );
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "{id} never {want}: {d} {stderr}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cairn_function_drives_the_swap_and_the_background_check() {
    let aws = aws().await;
    // The background check is registered in the table (bytes and pointer),
    // as an operator does after a deploy; the function loads it from there.
    let register = std::process::Command::new(
        std::path::Path::new(&env("CAIRN_TEST_LAMBDA_BIN")).with_file_name("cairn"),
    )
    .args(["--store", "dynamodb", "--table", &aws.table, "register"])
    .arg(cairn_test_artifacts::BACKGROUND_CHECK)
    .env(
        "CAIRN_CACHE_DIR",
        std::env::temp_dir().join("cairn-client-test-cache"),
    )
    .output()
    .unwrap();
    assert!(register.status.success(), "{register:?}");
    // Two containers: a start that waits holds one, the other serves the
    // stream and the signals meanwhile.
    let _a = Function::start();
    let _b = Function::start();
    let _pump = pump::Pump::start(&aws, pump::Config::default()).await;

    // The swap, started and waited for: its output in the answer.
    let input = r#"{"a": "alice", "b": "bob", "foo": 10, "bar": 20, "fail_at_step": null}"#;
    let swap = cairn_json(
        &[
            "start",
            "-w",
            "swap",
            "--id",
            "cli-swap",
            "-i",
            input,
            "--wait-ms",
            "30000",
            "--json",
        ],
        0,
    );
    assert_eq!(swap["status"], "completed", "{swap}");
    assert_eq!(swap["output"]["status"], "succeeded", "{swap}");
    assert_eq!(swap["output"]["receipts"].as_array().map(Vec::len), Some(4));
    // Again: the same execution; with another input, CRN202 and exit 2.
    let again = cairn_json(
        &[
            "start", "-w", "swap", "--id", "cli-swap", "-i", input, "--json",
        ],
        0,
    );
    assert_eq!(
        (again["created"].as_bool(), &again["output"]),
        (Some(false), &swap["output"])
    );
    let other = cairn(&[
        "start",
        "-w",
        "swap",
        "--id",
        "cli-swap",
        "-i",
        r#"{"a": "x", "b": "y", "foo": 1, "bar": 1}"#,
    ]);
    let stderr = String::from_utf8_lossy(&other.stderr);
    assert_eq!(other.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("CRN202"), "{stderr}");
    let history = cairn_json(&["history", "cli-swap", "--json"], 0);
    let kinds: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "started",
            "activity-completed",
            "activity-completed",
            "activity-completed",
            "activity-completed",
            "completed"
        ]
    );

    // The background check: its county search is a child waiting for the
    // court; the signal goes through the function, the stream does the rest.
    let check = r#"{"candidate": "Jane Doe", "counties": ["Alameda"]}"#;
    let bc = cairn_json(
        &[
            "start",
            "-w",
            "background_check",
            "--id",
            "cli-bc",
            "-i",
            check,
            "--json",
        ],
        0,
    );
    assert_eq!(bc["status"], "waiting", "{bc}");
    let child = "cli-bc/county/Alameda";
    await_status(child, "waiting");
    let out = cairn(&["query", "cli-bc", "progress"]);
    let progress: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert!(
        progress["pending"]
            .as_array()
            .is_some_and(|p| p.contains(&json!("county:Alameda"))),
        "{progress} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for _ in 0..2 {
        // A retry with the same key: delivered once.
        let out = cairn(&[
            "signal",
            child,
            "court_result",
            r#"{"records": []}"#,
            "--idempotency-key",
            "court-1",
        ]);
        assert!(out.status.success(), "{out:?}");
    }
    let done = await_status("cli-bc", "completed");
    assert_eq!(done["output"]["status"], "clear", "{done}");
    let child_history = cairn_json(&["history", child, "--json"], 0);
    let signals = child_history
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "signal-received")
        .count();
    assert_eq!(signals, 1, "{child_history}");
    let listed = cairn_json(&["list", "-w", "background_check", "--json"], 0);
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["id"], "cli-bc");

    // A start that waits while another invocation brings the result.
    let waiter = std::thread::spawn(|| {
        cairn_json(
            &[
                "start",
                "-w",
                "collect",
                "--id",
                "cli-wait",
                "-i",
                "1",
                "--wait-ms",
                "30000",
                "--json",
            ],
            0,
        )
    });
    await_status("cli-wait", "waiting");
    assert!(
        cairn(&["signal", "cli-wait", "go", r#""now""#])
            .status
            .success()
    );
    let waited = waiter.join().unwrap();
    assert_eq!(
        (waited["status"].as_str(), &waited["output"]),
        (Some("completed"), &json!(["now"])),
        "{waited}"
    );
    assert!(waited["waited_ms"].as_u64() > Some(0), "{waited}");

    // Cancel: the check and its county search end cancelled.
    let bc2 = cairn_json(
        &[
            "start",
            "-w",
            "background_check",
            "--id",
            "cli-bc2",
            "-i",
            check,
            "--json",
        ],
        0,
    );
    assert_eq!(bc2["status"], "waiting", "{bc2}");
    assert!(
        cairn(&["cancel", "cli-bc2", "--reason", "withdrawn"])
            .status
            .success()
    );
    await_status("cli-bc2", "cancelled");
    await_status("cli-bc2/county/Alameda", "cancelled");

    // The same API as Function URL events and direct invokes, through the
    // emulator: answers, and errors with their code and HTTP status.
    let url = |body: Value| {
        let r = invoke(
            &aws.lambda,
            &json!({
                "version": "2.0", "rawPath": "/", "rawQueryString": "",
                "headers": {"content-type": "application/json"},
                "requestContext": {"timeEpoch": 1_764_547_200_000_i64, "http": {"method": "POST", "path": "/"}, "requestId": "r1"},
                "body": body.to_string(), "isBase64Encoded": false,
            }),
        );
        let body: Value =
            serde_json::from_str(r["body"].as_str().unwrap_or_default()).unwrap_or_default();
        (r["statusCode"].as_u64(), body)
    };
    let (status, d) = url(json!({"v": 1, "action": "describe", "id": "cli-swap"}));
    assert_eq!((status, &d["output"]), (Some(200), &swap["output"]), "{d}");
    let (status, page) = url(json!({"v": 1, "action": "history", "id": "cli-swap", "limit": 4}));
    assert_eq!(
        (status, page["entries"].as_array().map(Vec::len)),
        (Some(200), Some(4)),
        "{page}"
    );
    let (status, e) = url(json!({"v": 1, "action": "describe", "id": "nobody"}));
    assert_eq!(
        (status, &e["error"]["code"]),
        (Some(404), &json!("CRN201")),
        "{e}"
    );
    let (status, e) = url(json!({"v": 1, "action": "explode"}));
    assert_eq!(
        (status, &e["error"]["code"]),
        (Some(400), &json!("CRN401")),
        "{e}"
    );
    let e = invoke(
        &aws.lambda,
        &json!({"v": 1, "action": "start", "workflow": "swap", "id": "cli-swap", "input": 1}),
    );
    assert_eq!(
        e["error"]["code"], "CRN202",
        "a direct invoke answers the error: {e}"
    );

    // Commands that would run code here are refused, not run.
    let out = cairn(&["resume", "cli-bc2"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not served through --function"));
}
