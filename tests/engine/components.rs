//! `Engine::components_gc`: what pins a component (running, waiting and
//! parked executions; not finished ones), what points at one, and the
//! components needed but not stored.

use crate::run;
use cairn_core::memory::MemoryStore;
use cairn_core::{ComponentHash, ErrorCode, Nondeterminism, Payload, Store, Timestamp};
use cairn_engine::{AdvanceOptions, GcAction, GcReport};
use cairn_tests::{drive_to_output, engine, start};
use std::sync::Arc;

fn action(report: &GcReport, hash: &ComponentHash) -> Option<(GcAction, usize)> {
    report
        .components
        .iter()
        .find(|c| &c.hash == hash)
        .map(|c| (c.action, c.pinned))
}

#[test]
fn unfinished_executions_and_pointers_keep_components_finished_ones_do_not() {
    run(async {
        let store = Arc::new(MemoryStore::new());
        let (engine, testkit, swap) = engine(store.clone()).await;
        // Waiting on testkit; a swap that finished: swap is pinned by nothing.
        let waiting = start(&engine, &testkit, "collect", serde_json::json!(1)).await;
        engine
            .advance(&waiting, AdvanceOptions::default())
            .await
            .unwrap();
        let done = start(
            &engine,
            &swap,
            "swap",
            serde_json::json!({"a": "a", "b": "b", "foo": 1, "bar": 2}),
        )
        .await;
        drive_to_output(&engine, &done).await;
        // A parked execution pinned to a component the store does not hold,
        // and a workflow pointing at another one it does not hold.
        let ghost = cairn_core::testing::test_component();
        let parked = cairn_core::store_suite::fresh_id("parked");
        store
            .create(cairn_core::store_suite::new_execution(
                &parked, "wf", b"null",
            ))
            .await
            .unwrap();
        let info = Nondeterminism {
            code: ErrorCode::NondeterministicOperation,
            index: 1,
            expected: "x".into(),
            got: "y".into(),
        };
        store
            .park(&parked, info, Timestamp::now_system())
            .await
            .unwrap();
        let pointed = ComponentHash::parse(&"ab".repeat(32)).unwrap();
        store
            .set_workflow_component("elsewhere", &pointed)
            .await
            .unwrap();

        let dry = engine.components_gc(false).await.unwrap();
        assert!(!dry.applied);
        assert_eq!(action(&dry, &testkit.hash), Some((GcAction::Keep, 1)));
        assert_eq!(action(&dry, &swap.hash), Some((GcAction::Remove, 0)));
        let missing: Vec<_> = dry
            .missing
            .iter()
            .map(|m| (m.hash.clone(), m.workflows.clone(), m.pinned))
            .collect();
        let mut expected = vec![
            (ghost.clone(), vec![], 1),
            (pointed.clone(), vec!["elsewhere".to_string()], 0),
        ];
        expected.sort();
        assert_eq!(missing, expected, "the parked execution pins its component");
        assert!(store.get_component(&swap.hash).await.unwrap().is_some());

        let applied = engine.components_gc(true).await.unwrap();
        assert_eq!(action(&applied, &swap.hash), Some((GcAction::Removed, 0)));
        assert_eq!(action(&applied, &testkit.hash), Some((GcAction::Keep, 1)));
        assert_eq!(store.get_component(&swap.hash).await.unwrap(), None);
        // The finished execution's journal does not need its component.
        assert!(store.load(&done).await.unwrap().meta.status.is_terminal());

        // Once the waiting execution finishes, testkit goes too.
        engine
            .signal(&waiting, "go", Payload::json(&serde_json::json!(7)))
            .await
            .unwrap();
        assert_eq!(
            drive_to_output(&engine, &waiting).await,
            serde_json::json!([7])
        );
        let applied = engine.components_gc(true).await.unwrap();
        assert_eq!(
            action(&applied, &testkit.hash),
            Some((GcAction::Removed, 0))
        );
        assert!(store.list_components().await.unwrap().is_empty());
    });
}
