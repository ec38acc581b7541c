//! Continue-as-new keeps a long-lived loop's history bounded: 100,000
//! iterations, and no journal ever holds more than the workflow's bound.

use crate::run;
use cairn_core::{Event, Store, memory::MemoryStore};
use cairn_tests::{drive_to_output, engine, start};
use std::sync::Arc;

#[test]
fn a_hundred_thousand_iterations_through_continue_as_new() {
    const N: u64 = 100_000;
    const PER_RUN: usize = 1_000;
    run(async {
        let store = Arc::new(MemoryStore::new());
        let (engine, testkit, _) = engine(store.clone()).await;
        let id = start(
            &engine,
            &testkit,
            "counter",
            serde_json::json!({ "n": N, "per_run": PER_RUN }),
        )
        .await;
        assert_eq!(drive_to_output(&engine, &id).await, serde_json::json!(N));

        let meta = store.meta(&id).await.unwrap();
        assert!(meta.run > 1, "the loop continued as new");
        let mut iterations = 0;
        for run in 1..=meta.run {
            let journal = store.load_run(&id, run).await.unwrap();
            assert!(
                journal.len() <= PER_RUN + 1,
                "run {run} holds {} entries (bound {PER_RUN} + the closing entry)",
                journal.len()
            );
            assert!(matches!(journal[0].event, Event::Started { .. }));
            let last = &journal.last().unwrap().event;
            if run < meta.run {
                assert!(
                    matches!(last, Event::ContinuedAsNew { .. }),
                    "run {run}: {last:?}"
                );
            } else {
                assert!(
                    matches!(last, Event::Completed { .. }),
                    "run {run}: {last:?}"
                );
            }
            iterations += journal
                .iter()
                .filter(|e| matches!(e.event, Event::TimerFired { .. }))
                .count() as u64;
        }
        assert_eq!(iterations, N, "every iteration journaled exactly once");
    });
}

#[test]
fn activities_of_each_run_get_their_own_idempotency_keys() {
    run(async {
        let store = Arc::new(MemoryStore::new());
        let (engine, testkit, _) = engine(store.clone()).await;
        let id = start(&engine, &testkit, "keyed_runs", serde_json::json!([])).await;
        // Each run numbers its operations from 1; the run in the key keeps a
        // later run's activity from being taken for an earlier one's.
        assert_eq!(
            drive_to_output(&engine, &id).await,
            serde_json::json!([format!("{id}/1"), format!("{id}@2/1"), format!("{id}@3/1")])
        );
    });
}

/// The fuel budget is per await: ten rounds of busy work (a million loop
/// iterations, some 15 fuel units each), each ended by an await, complete
/// under a budget that one round of all that work runs out of (so the ten
/// rounds used several budgets in all).
#[test]
fn the_fuel_budget_is_refilled_at_each_await() {
    run(async {
        let config = cairn_host::SandboxConfig {
            fuel_per_await: 50_000_000,
            ..Default::default()
        };
        let (engine, testkit, _) =
            cairn_tests::engine_with(Arc::new(MemoryStore::new()), config).await;
        let rounds = start(
            &engine,
            &testkit,
            "burn",
            serde_json::json!([10, 1_000_000]),
        )
        .await;
        assert_eq!(
            drive_to_output(&engine, &rounds).await,
            serde_json::json!(10_000_000)
        );

        let at_once = start(
            &engine,
            &testkit,
            "burn",
            serde_json::json!([1, 10_000_000]),
        )
        .await;
        let failure = cairn_tests::drive_to_end(&engine, &at_once)
            .await
            .expect_err("one round of all the work runs out of fuel");
        assert!(
            failure.message.contains("fuel budget per await"),
            "{}",
            failure.message
        );
    });
}
