//! Activity instances are reused between calls (globals survive, like a
//! warm Lambda container) unless the sandbox is told to give every call a
//! fresh one; an instance that trapped is never reused.

use crate::run;
use cairn_core::{Event, Status, memory::MemoryStore};
use cairn_engine::{Advance, AdvanceOptions, Engine, EngineConfig, SystemClock};
use cairn_host::{ComponentBytes, Sandbox, SandboxConfig};
use cairn_tests::start;
use std::sync::Arc;

/// What each of three sequential `instance_calls` saw.
async fn calls_seen(reuse: bool) -> serde_json::Value {
    let sandbox = Sandbox::new(SandboxConfig {
        reuse_activity_instances: reuse,
        ..Default::default()
    })
    .expect("sandbox");
    let engine = Engine::new(
        Arc::new(sandbox),
        Arc::new(MemoryStore::new()),
        Arc::new(SystemClock),
        EngineConfig::default(),
    );
    let testkit = engine
        .add_component(ComponentBytes::new(
            std::fs::read(cairn_test_artifacts::TESTKIT).expect("testkit"),
        ))
        .await
        .expect("add testkit");
    let id = start(&engine, &testkit, "reuse", serde_json::json!(3)).await;
    let r = engine.drive(&id, AdvanceOptions::default()).await.unwrap();
    let Advance::Finished {
        status: Status::Completed,
        entry,
    } = r
    else {
        panic!("{r:?}")
    };
    let Event::Completed { output } = entry.event else {
        panic!("{entry:?}")
    };
    output.to_json_value()
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
