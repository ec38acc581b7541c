//! HTTP from activities (`wasi:http`) against real local HTTP and HTTPS
//! servers: JSON both ways, the allow-list, TLS with an extra root, retries
//! of 5xx with a stable idempotency key, the per-attempt timeout, and
//! workflow code refused.

use crate::http_server::TestServer;
use crate::support::*;
use cairn_test_artifacts::{DYNAMODB_ACTIVITY, HTTPKIT};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Runs `fetch` with `call` and the extra `flags`; its status.
fn fetch(c: &Cairn, id: &str, call: Value, flags: &[&str]) -> (Run, Value) {
    let input = call.to_string();
    let mut args = vec![
        "run", HTTPKIT, "-w", "fetch", "-i", &input, "--id", id, "-q",
    ];
    args.extend_from_slice(flags);
    let r = c.run(&args);
    let st = c.status(id);
    (r, st)
}

fn activity_attempts(c: &Cairn, id: &str) -> u64 {
    let h = c.history(id);
    let done = h
        .iter()
        .find(|e| e["kind"] == "activity-completed")
        .unwrap_or_else(|| panic!("no activity-completed in {h:?}"));
    done["attempts"].as_u64().unwrap()
}

#[test]
fn an_activity_gets_and_posts_json_over_http_and_https() {
    let c = Cairn::new();
    let plain = TestServer::http();
    let tls = TestServer::https(c.path());
    let roots = tls.ca_pem.as_ref().unwrap().to_str().unwrap().to_string();
    let allow = [
        "--allow-http",
        &plain.host_port(),
        "--allow-http",
        &tls.host_port(),
        "--http-extra-roots",
        &roots,
    ];

    let (r, st) = fetch(&c, "get", json!({"url": plain.url("/json")}), &allow);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(st["output"], json!({"hello": "world"}));

    let (r, st) = fetch(&c, "get-tls", json!({"url": tls.url("/json")}), &allow);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(st["output"], json!({"hello": "world"}));

    let order = json!({"order": 42, "items": ["a", "b"]});
    let (r, st) = fetch(
        &c,
        "post-tls",
        json!({"url": tls.url("/echo"), "post": order}),
        &allow,
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(st["output"], json!({"got": order, "key": "post-tls/1"}));
    let seen = tls.seen("/echo");
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].headers["content-type"], "application/json");
}

#[test]
fn https_to_a_private_ca_needs_its_root() {
    let c = Cairn::new();
    let tls = TestServer::https(c.path());
    let (r, st) = fetch(
        &c,
        "no-root",
        json!({"url": tls.url("/json")}),
        &["--allow-http", &tls.host_port()],
    );
    assert_eq!(r.code, 1, "{r:?}");
    let message = st["failure"]["message"].as_str().unwrap();
    assert!(
        message.contains("TLS") && message.contains("--http-extra-roots"),
        "{message}"
    );
    assert!(tls.seen("/").is_empty(), "no request reached the server");
}

#[test]
fn a_host_not_on_the_allow_list_fails_at_once_naming_the_flag() {
    let c = Cairn::new();
    let plain = TestServer::http();
    // Retries allowed, yet one attempt: the refusal is not retryable.
    let call = json!({"url": plain.url("/json"), "attempts": 5});
    let (r, st) = fetch(&c, "refused", call, &["--allow-http", "example.com"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(st["status"], "failed");
    let message = st["failure"]["message"].as_str().unwrap();
    let flag = format!("--allow-http {}", plain.host_port());
    assert!(
        message.contains("CRN306")
            && message.contains("not on the allow-list")
            && message.contains(&flag),
        "{message}"
    );
    assert_eq!(activity_attempts(&c, "refused"), 1);
    assert!(plain.seen("/").is_empty(), "nothing was sent");

    // `*` allows any host.
    let (r, _) = fetch(
        &c,
        "any",
        json!({"url": plain.url("/json")}),
        &["--allow-http", "*"],
    );
    assert_eq!(r.code, 0, "{r:?}");
}

#[test]
fn workflow_code_cannot_use_http() {
    let c = Cairn::new();
    let plain = TestServer::http();
    let url = json!(plain.url("/json")).to_string();
    let r = c.run(&[
        "run",
        HTTPKIT,
        "-w",
        "http_in_workflow",
        "-i",
        &url,
        "--id",
        "wf",
        "--allow-http",
        "*",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    let message = c.status("wf")["failure"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.starts_with("CRN305") && message.contains("wasi:http"),
        "{message}"
    );
    assert!(plain.seen("/").is_empty());
}

#[test]
fn a_5xx_is_retried_with_the_same_idempotency_key() {
    let c = Cairn::new();
    let plain = TestServer::http();
    let call = json!({"url": plain.url("/flaky/a?fail=2"), "attempts": 3});
    let (r, st) = fetch(&c, "flaky", call, &["--allow-http", &plain.host_port()]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(st["output"], json!({"attempt": 3}));
    assert_eq!(activity_attempts(&c, "flaky"), 3);
    let keys: Vec<String> = plain
        .seen("/flaky/a")
        .iter()
        .map(|s| s.headers["idempotency-key"].clone())
        .collect();
    assert_eq!(keys, vec!["flaky/1"; 3], "one key for every attempt");

    // A 4xx is not retried.
    let call = json!({"url": plain.url("/status/404"), "attempts": 3});
    let (r, st) = fetch(&c, "missing", call, &["--allow-http", &plain.host_port()]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        st["failure"]["message"]
            .as_str()
            .unwrap()
            .contains("HTTP 404")
    );
    assert_eq!(activity_attempts(&c, "missing"), 1);
}

#[test]
fn a_hung_server_hits_the_per_attempt_timeout() {
    let c = Cairn::new();
    let plain = TestServer::http();
    let call = json!({"url": plain.url("/hang"), "attempts": 2, "timeout_ms": 1000});
    let start = Instant::now();
    let (r, st) = fetch(&c, "hang", call, &["--allow-http", &plain.host_port()]);
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "bounded: {:?}",
        start.elapsed()
    );
    assert_eq!(r.code, 1, "{r:?}");
    let message = st["failure"]["message"].as_str().unwrap();
    assert!(message.contains("timed out after 1000 ms"), "{message}");
    // Its own code, not a trap's (CRN302).
    assert!(message.contains("CRN307"), "{message}");
    assert_eq!(activity_attempts(&c, "hang"), 2);
    assert_eq!(plain.seen("/hang").len(), 2);
}

/// The AWS SDK for Rust in an activity, over wasi:http, against the tests'
/// DynamoDB emulator; credentials only when the operator grants them.
#[test]
fn an_activity_calls_dynamodb_with_the_aws_sdk() {
    let d = Dynamo::new();
    let host = d.endpoint.trim_start_matches("http://").to_string();
    let input = json!(d.endpoint).to_string();
    let run = |id: &str, extra: &[&str]| {
        let mut args = vec![
            "run",
            DYNAMODB_ACTIVITY,
            "-w",
            "tables",
            "-i",
            &input,
            "--id",
            id,
            "--allow-http",
            &host,
            "-q",
        ];
        args.extend_from_slice(extra);
        let r = d.c.run(&args);
        (r, d.c.status(id))
    };
    let creds = [
        "--env",
        "AWS_ACCESS_KEY_ID=test",
        "--env",
        "AWS_SECRET_ACCESS_KEY=test",
        "--env",
        "AWS_REGION=us-east-1",
    ];
    let (r, st) = run("aws", &creds);
    assert_eq!(r.code, 0, "{r:?}");
    let tables = st["output"].as_array().expect("a list of tables");
    assert!(tables.contains(&json!(d.table)), "{st}");

    let (r, st) = run("aws-no-creds", &[]);
    assert_eq!(r.code, 1, "{r:?}");
    let message = st["failure"]["message"].as_str().unwrap();
    assert!(message.contains("no AWS credentials granted"), "{message}");
}

/// The provision example against an HTTP "cloud API": create (with the
/// call's idempotency key), poll with durable backoff until ready, and
/// delete when the execution is cancelled.
#[test]
fn provision_drives_an_http_cloud_api() {
    use cairn_test_artifacts::PROVISION;
    let c = Cairn::new();
    let cloud = TestServer::http();
    let allow = cloud.host_port();
    let input = json!({"name": "slow-db", "kind": "db", "api": cloud.url("")}).to_string();
    let r = c.run(&[
        "run",
        PROVISION,
        "-w",
        "provision",
        "-i",
        &input,
        "--id",
        "pd",
        "--skip-time",
        "-q",
        "--allow-http",
        &allow,
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let out: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(out["polls"], 6);
    assert_eq!(out["resource"]["id"], "db-1");
    let created = cloud.seen("/resources");
    assert_eq!(created.iter().filter(|s| s.method == "POST").count(), 1);
    assert_eq!(created[0].headers["idempotency-key"], "pd/1");
    assert_eq!(created.iter().filter(|s| s.method == "GET").count(), 6);
    let h = c.history("pd");
    assert!(
        h.iter().any(|x| x["kind"] == "activity-retrying"),
        "long backoffs are durable"
    );

    // Cancelled while it waits between polls: the resource is deleted.
    let input = json!({"name": "slow-vm", "kind": "vm", "api": cloud.url("")}).to_string();
    let r = c.run(&[
        "start",
        PROVISION,
        "-w",
        "provision",
        "-i",
        &input,
        "--id",
        "pv",
        "--allow-http",
        &allow,
    ]);
    assert!(r.stdout.contains("retry of activity 'wait_ready'"), "{r:?}");
    let r = c.run(&[
        "cancel",
        "pv",
        "--reason",
        "not needed",
        "--allow-http",
        &allow,
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    let st = c.status("pv");
    assert_eq!(st["status"], "cancelled");
    assert!(
        st["failure"]["message"]
            .as_str()
            .unwrap()
            .contains("compensated: delete vm-2"),
        "{st}"
    );
    assert_eq!(cloud.deleted(), vec!["vm-2"]);
}

/// The background check against an HTTP court-records service: each county
/// search files one records request (its body names the execution to answer;
/// its `Idempotency-Key` is the call's), the court's answers come back as
/// signals, and the report is made from them.
#[test]
fn background_check_files_its_court_requests_over_http() {
    use cairn_test_artifacts::BACKGROUND_CHECK;
    let c = Cairn::new();
    let court = TestServer::http();
    let allow = court.host_port();
    let input = json!({"candidate": "Jane Doe", "counties": ["Alameda", "Kings"], "court_api": court.url("")})
        .to_string();
    let r = c.run(&[
        "start",
        BACKGROUND_CHECK,
        "-w",
        "background_check",
        "-i",
        &input,
        "--id",
        "bch",
        "--allow-http",
        &allow,
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let filed = court.seen("/requests");
    assert_eq!(filed.len(), 2, "one request per county: {filed:?}");
    let mut keys: Vec<&str> = filed
        .iter()
        .map(|s| s.headers["idempotency-key"].as_str())
        .collect();
    keys.sort();
    assert_eq!(keys, ["bch/county/Alameda/1", "bch/county/Kings/1"]);
    for s in &filed {
        let body: Value = serde_json::from_slice(&s.body).unwrap();
        let key = &s.headers["idempotency-key"];
        assert_eq!(
            body["reply_to"].as_str(),
            key.strip_suffix("/1"),
            "the court is told whom to answer"
        );
    }
    for county in ["Alameda", "Kings"] {
        let r = c.run(&[
            "signal",
            &format!("bch/county/{county}"),
            "court_result",
            r#"{"records": []}"#,
            "--allow-http",
            &allow,
        ]);
        assert_eq!(r.code, 0, "{r:?}");
    }
    let st = c.status("bch");
    assert_eq!(
        (st["status"].as_str(), st["output"]["status"].as_str()),
        (Some("completed"), Some("clear")),
        "{st}"
    );

    // Not on the allow-list: the request fails at once, naming the flag.
    c.run(&[
        "start",
        BACKGROUND_CHECK,
        "-w",
        "background_check",
        "-i",
        &input,
        "--id",
        "bch-denied",
    ]);
    let st = c.status("bch-denied/county/Kings");
    assert_eq!(st["status"], "failed", "{st}");
    assert!(
        st["failure"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("--allow-http"),
        "{st}"
    );
}
