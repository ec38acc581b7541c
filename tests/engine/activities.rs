//! Activity instances are reused between calls (globals survive, like a
//! warm Lambda container) unless the sandbox is told to give every call a
//! fresh one; an instance that trapped is never reused.

use crate::run;
use cairn_core::Store as _;
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

/// Hostile activities (a CPU loop, unbounded allocation, a hang past the
/// timeout, a panic), all at once beside a healthy execution on one engine:
/// each attempt fails with its own error, the policy's two attempts are
/// made, and the healthy execution completes as if nothing happened.
#[test]
fn hostile_activities_fail_their_attempts_and_spare_the_rest() {
    run(async {
        let config = SandboxConfig {
            memory_limit_bytes: 64 << 20,
            ..Default::default()
        };
        let store = Arc::new(MemoryStore::new());
        let (engine, testkit, _) = engine_with(store.clone(), config).await;
        let kinds = ["spin", "hog", "hang", "panic"];
        let mut hostile = Vec::new();
        for kind in kinds {
            hostile.push(
                start(
                    &engine,
                    &testkit,
                    "hostile_activity",
                    serde_json::json!(kind),
                )
                .await,
            );
        }
        let healthy = start(
            &engine,
            &testkit,
            "slow",
            serde_json::json!({"steps": 3, "ms": 50}),
        )
        .await;
        let drives: Vec<_> = hostile
            .iter()
            .chain([&healthy])
            .map(|id| {
                let (engine, id) = (engine.clone(), id.clone());
                tokio::spawn(async move {
                    engine
                        .drive(&id, cairn_engine::AdvanceOptions::default())
                        .await
                })
            })
            .collect();
        let mut results = Vec::new();
        for d in drives {
            results.push(d.await);
        }
        for (kind, (id, r)) in kinds.iter().zip(hostile.iter().zip(&results)) {
            let r = r
                .as_ref()
                .unwrap()
                .as_ref()
                .expect("the drive itself succeeds");
            assert!(
                matches!(
                    r,
                    cairn_engine::Advance::Finished {
                        status: cairn_core::Status::Failed,
                        ..
                    }
                ),
                "{kind}: {r:?}"
            );
            let journal = store.load(id).await.unwrap().journal;
            let completed = journal
                .iter()
                .find_map(|e| match &e.event {
                    cairn_core::Event::ActivityCompleted {
                        attempts, result, ..
                    } => Some((*attempts, result.clone())),
                    _ => None,
                })
                .unwrap_or_else(|| panic!("{kind}: no activity completion in {journal:?}"));
            let failure = completed.1.expect_err("the activity failed");
            println!("{kind}: {} attempts, {failure}", completed.0);
            assert_eq!(completed.0, 2, "{kind}: the policy's two attempts");
            let expect = match *kind {
                "spin" | "hang" => "timed out",
                "hog" => "memory",
                _ => "misbehave: the activity hit a bug",
            };
            assert!(
                failure.to_string().contains(expect),
                "{kind}: {failure} does not say {expect:?}"
            );
        }
        assert_eq!(
            drive_to_output(&engine, &healthy)
                .await
                .as_array()
                .map(Vec::len),
            Some(3),
            "the healthy execution completed"
        );
    });
}
