//! `cairn:workflow@0.2.0`: a step is one host call (the operations it
//! starts travel with its `wait-any`), journaled exactly as the two calls of
//! 0.1.0 were; so journals written by 0.1.0 guests replay under 0.2.0 ones.

use crate::run;
use cairn_core::memory::MemoryStore;
use cairn_core::store_suite::{fresh_id, new_execution};
use cairn_core::{Append, Entry, Event, Store};
use cairn_engine::ReplayOutcome;
use cairn_tests::{drive_to_output, engine, start};
use std::sync::Arc;

/// What a journal records, past its `started` entry (which names the
/// workflow), without the times.
fn events(journal: Vec<Entry>) -> Vec<Event> {
    journal.into_iter().skip(1).map(|e| e.event).collect()
}

#[test]
fn a_batched_step_journals_exactly_what_the_two_calls_did() {
    run(async {
        let store = Arc::new(MemoryStore::new());
        let (engine, testkit, _) = engine(store.clone()).await;
        // `steps`: one batched wait-any per step (the SDK's executor);
        // `steps_unbatched`: schedule-activity, then wait-any.
        let batched = start(&engine, &testkit, "steps", serde_json::json!(5)).await;
        let unbatched = start(&engine, &testkit, "steps_unbatched", serde_json::json!(5)).await;
        assert_eq!(
            drive_to_output(&engine, &batched).await,
            serde_json::json!(10)
        );
        assert_eq!(
            drive_to_output(&engine, &unbatched).await,
            serde_json::json!(10)
        );
        let batched_events = events(store.load(&batched).await.unwrap().journal);
        assert_eq!(batched_events.len(), 6, "five activities and the result");
        assert_eq!(
            batched_events,
            events(store.load(&unbatched).await.unwrap().journal)
        );
        // Each replays: the journal answers both shapes of call.
        for id in [&batched, &unbatched] {
            assert_eq!(
                engine.replay(id, None).await.unwrap(),
                ReplayOutcome::Compatible {
                    entries: 7,
                    finished: true
                }
            );
        }
    })
}

/// A journal made by 0.1.0's two calls per step (`steps_unbatched` makes
/// exactly those calls), relabelled as `steps`, replays under the 0.2.0
/// executor, which batches. (The recorded journals of 0.1 in
/// `runtime/core/tests/journals` decode and replay in cairn-core's tests.)
#[test]
fn a_journal_written_by_0_1_calls_replays_under_the_0_2_executor() {
    run(async {
        let store = Arc::new(MemoryStore::new());
        let (engine, testkit, _) = engine(store.clone()).await;
        let old = start(&engine, &testkit, "steps_unbatched", serde_json::json!(4)).await;
        assert_eq!(drive_to_output(&engine, &old).await, serde_json::json!(6));
        let mut journal = store.load(&old).await.unwrap().journal;
        let Event::Started { workflow, .. } = &mut journal[0].event else {
            panic!("{:?}", journal[0])
        };
        *workflow = "steps".into();
        let id = fresh_id("from-0-1");
        let mut new = new_execution(&id, "steps", b"4");
        new.meta.component = testkit.hash.clone();
        new.started = journal[0].clone();
        store.create(new).await.unwrap();
        for e in &journal[1..] {
            store
                .append(
                    &id,
                    Append {
                        run: 1,
                        entry: e.clone(),
                        consume: None,
                        hold_until_heard: None,
                    },
                )
                .await
                .unwrap();
        }
        assert_eq!(
            engine.replay(&id, None).await.unwrap(),
            ReplayOutcome::Compatible {
                entries: journal.len() as u32,
                finished: true
            }
        );
    })
}
