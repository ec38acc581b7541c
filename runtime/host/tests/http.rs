//! `wasi:http` in the sandbox against a real local server: a 10 MB body
//! streams through an activity whose memory limit is 12 MiB, where reading
//! it whole hits the limit.

#[path = "../../cli/tests/e2e/http_server.rs"]
mod http_server;

use cairn_host::{
    ActivityInfo, ComponentBytes, GuestError, HostError, HttpAllowList, Sandbox, SandboxConfig,
};
use http_server::{TestServer, big_checksum};
use std::time::{Duration, Instant};

const TEN_MB: usize = 10 << 20;

fn info(attempt: u32) -> ActivityInfo {
    ActivityInfo {
        execution_id: "big".into(),
        idempotency_key: "big/1".into(),
        attempt,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_10_mb_body_streams_under_a_12_mib_memory_limit() {
    let server = TestServer::http();
    let sandbox = Sandbox::new(SandboxConfig {
        memory_limit_bytes: 12 << 20,
        http_allow: HttpAllowList::parse([server.host_port()]).unwrap(),
        ..SandboxConfig::default()
    })
    .unwrap();
    let component = ComponentBytes::new(std::fs::read(cairn_test_artifacts::HTTPKIT).unwrap());
    let loaded = sandbox.load(&component).await.unwrap();
    let url = server.url(&format!("/big?bytes={TEN_MB}"));

    let input = serde_json::json!({"url": url, "stream": true}).to_string();
    let start = Instant::now();
    let run = sandbox
        .run_activity(
            &loaded,
            "call",
            input.as_bytes(),
            info(1),
            Some(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    let elapsed = start.elapsed();
    let out: serde_json::Value = serde_json::from_slice(&run.result.unwrap()).unwrap();
    assert_eq!(out["bytes"], TEN_MB as u64);
    assert_eq!(out["checksum"], big_checksum(TEN_MB));
    println!(
        "figure: http_stream_10mb_ms={:.0} ({} chunks, {:.0} MB/s)",
        elapsed.as_secs_f64() * 1e3,
        out["chunks"],
        TEN_MB as f64 / 1e6 / elapsed.as_secs_f64()
    );

    // The same body read whole (as JSON) does not fit: the limit is real.
    let input = serde_json::json!({"url": url}).to_string();
    let r = sandbox
        .run_activity(
            &loaded,
            "call",
            input.as_bytes(),
            info(1),
            Some(Duration::from_secs(60)),
        )
        .await;
    assert!(
        matches!(r, Err(HostError::Guest(GuestError::MemoryLimit { .. }))),
        "{r:?}"
    );
}
