//! Activity instances are reused between calls (globals survive, like a
//! warm Lambda container) unless the sandbox is told to give every call a
//! fresh one; an instance that trapped is never reused.

use crate::run;
use cairn_core::memory::MemoryStore;
use cairn_host::SandboxConfig;
use cairn_tests::{drive_to_output, engine_with, start};
use std::sync::Arc;

/// What each of three sequential `instance_calls` saw.
async fn calls_seen(reuse: bool) -> serde_json::Value {
    let config = SandboxConfig {
        reuse_activity_instances: reuse,
        ..Default::default()
    };
    let (engine, testkit, _) = engine_with(Arc::new(MemoryStore::new()), config).await;
    let id = start(&engine, &testkit, "reuse", serde_json::json!(3)).await;
    drive_to_output(&engine, &id).await
}

#[test]
fn activity_instances_are_reused_unless_configured_fresh() {
    run(async {
        assert_eq!(
            calls_seen(true).await,
            serde_json::json!([1, 2, 3]),
            "one instance takes the three calls"
        );
        assert_eq!(
            calls_seen(false).await,
            serde_json::json!([1, 1, 1]),
            "every call gets a fresh instance"
        );
    });
}
