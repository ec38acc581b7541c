//! HTTP from an activity in the Lambda host, the allow-list read from the
//! function's environment (`CAIRN_ALLOW_HTTP`): through the runtime API
//! emulator, as `emulator.rs` runs (scripts/lambda-e2e sets it up). The test
//! starts its own HTTP server and registers the HTTP test guest itself.

mod support;

#[path = "../../cli/tests/e2e/http_server.rs"]
mod http_server;

use http_server::TestServer;
use serde_json::json;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_activity_calls_http_with_the_allow_list_from_the_environment() {
    let aws = aws().await;
    let server = TestServer::http();
    // The function's components are the table's: register the guest there,
    // as an operator does (the CLI beside the bootstrap).
    let bin = std::path::PathBuf::from(env("CAIRN_TEST_LAMBDA_BIN"));
    let cli = bin.with_file_name("cairn");
    let out = std::process::Command::new(&cli)
        .args(["--store", "dynamodb", "--table", &aws.table, "register"])
        .arg(cairn_test_artifacts::HTTPKIT)
        .output()
        .expect("cairn register");
    assert!(out.status.success(), "{out:?}");

    let function = Function::start_with(&[("CAIRN_ALLOW_HTTP", server.host_port())]);
    let ok = invoke(
        &aws.lambda,
        &json!({"action": "start", "workflow": "fetch", "id": "http-allowed",
                "input": {"url": server.url("/json")}}),
    );
    assert_eq!(ok["status"], "completed", "{ok}");
    assert_eq!(ok["output"], json!({"hello": "world"}));
    assert_eq!(
        server.seen("/json")[0].headers["idempotency-key"],
        "http-allowed/1"
    );

    // `localhost` is not on the list, though it is the same server.
    let url = format!("http://localhost:{}/json", server.port);
    let refused = invoke(
        &aws.lambda,
        &json!({"action": "start", "workflow": "fetch", "id": "http-refused",
                "input": {"url": url, "attempts": 3}}),
    );
    assert_eq!(refused["status"], "failed", "{refused}");
    let message = refused["failure"]["message"].as_str().unwrap();
    let target = format!("localhost:{}", server.port);
    assert!(
        message.contains("CRN306")
            && message.contains(&format!("--allow-http {target}"))
            && message.contains("CAIRN_ALLOW_HTTP"),
        "{message}"
    );
    assert_eq!(
        server.seen("/json").len(),
        1,
        "the refused request was not sent"
    );
    function.kill();
}
