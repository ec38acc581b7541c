//! The driver on each store error: retries what is transient, stops on
//! conflicts, never appends out of order, never loses a step.

use crate::run;
use cairn_core::{Status, Store, StoreError};
use cairn_engine::{Advance, AdvanceOptions};
use cairn_tests::fault::{Fault, FaultStore, Op};
use cairn_tests::{Kind, assert_journal_sound, engine, start, store};
use std::sync::Arc;

fn conflict(id: &cairn_core::ExecutionId) -> StoreError {
    StoreError::Conflict {
        id: id.clone(),
        reason: "injected".into(),
    }
}

fn each_store_error(kind: Kind) {
    run(async {
        let s = store(kind).await;
        let faults = Arc::new(FaultStore::new(s.store.clone()));
        let (engine, testkit, _) = engine(faults.clone()).await;
        let slow = |steps: u32| serde_json::json!({"steps": steps, "ms": 0});

        // A transient error on an append is retried: the step lands once.
        let id = start(&engine, &testkit, "slow", slow(3)).await;
        faults.inject(Fault::Fail {
            op: Op::Append,
            nth: faults.calls(Op::Append) + 2,
            error: StoreError::Unavailable("injected".into()),
        });
        let r = engine
            .advance(&id, AdvanceOptions::default())
            .await
            .unwrap();
        assert!(
            matches!(
                r,
                Advance::Finished {
                    status: Status::Completed,
                    ..
                }
            ),
            "{r:?}"
        );
        assert_eq!(assert_journal_sound(faults.as_ref(), &id).await.len(), 5);

        // A conflict stops the driver cleanly; nothing after it is written;
        // the next push finishes the job.
        let id = start(&engine, &testkit, "slow", slow(3)).await;
        let before = faults.appends.lock().unwrap().len();
        faults.inject(Fault::Fail {
            op: Op::Append,
            nth: faults.calls(Op::Append) + 2,
            error: conflict(&id),
        });
        let r = engine
            .advance(&id, AdvanceOptions::default())
            .await
            .unwrap();
        assert!(matches!(r, Advance::Conflict { .. }), "{r:?}");
        assert_eq!(
            faults.appends.lock().unwrap()[before..].to_vec(),
            vec![(1, true), (2, false)],
            "stopped at the conflict"
        );
        assert_eq!(assert_journal_sound(faults.as_ref(), &id).await.len(), 2);
        let r = engine
            .advance(&id, AdvanceOptions::default())
            .await
            .unwrap();
        assert!(
            matches!(
                r,
                Advance::Finished {
                    status: Status::Completed,
                    ..
                }
            ),
            "{r:?}"
        );
        assert_eq!(assert_journal_sound(faults.as_ref(), &id).await.len(), 5);

        // A lost reply (the append happened, the driver saw an error): its
        // retry meets its own entry. A store that recognises it (DynamoDB:
        // the entry found is byte for byte the one sent) reports the write
        // done and the advance goes on; one that does not reports a
        // conflict and the next advance goes on. Nothing is doubled.
        let id = start(&engine, &testkit, "slow", slow(2)).await;
        faults.inject(Fault::FailAfter {
            op: Op::Append,
            nth: faults.calls(Op::Append) + 1,
            error: StoreError::Unavailable("reply lost".into()),
        });
        let mut r = engine
            .advance(&id, AdvanceOptions::default())
            .await
            .unwrap();
        if kind == Kind::Dynamodb {
            assert!(
                !matches!(r, Advance::Conflict { .. }),
                "DynamoDB recognises its own entry: {r:?}"
            );
        } else {
            assert!(matches!(r, Advance::Conflict { .. }), "{r:?}");
            r = engine
                .advance(&id, AdvanceOptions::default())
                .await
                .unwrap();
        }
        assert!(
            matches!(
                r,
                Advance::Finished {
                    status: Status::Completed,
                    ..
                }
            ),
            "{r:?}"
        );
        assert_eq!(assert_journal_sound(faults.as_ref(), &id).await.len(), 4);

        // A store that stays down: the advance reports it (no partial state).
        let id = start(&engine, &testkit, "slow", slow(1)).await;
        for k in 1..=4 {
            faults.inject(Fault::Fail {
                op: Op::Load,
                nth: faults.calls(Op::Load) + k,
                error: StoreError::Unavailable("down".into()),
            });
        }
        let err = engine
            .advance(&id, AdvanceOptions::default())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("down"), "{err}");
        assert_eq!(assert_journal_sound(faults.as_ref(), &id).await.len(), 1);
        let r = engine
            .advance(&id, AdvanceOptions::default())
            .await
            .unwrap();
        assert!(
            matches!(
                r,
                Advance::Finished {
                    status: Status::Completed,
                    ..
                }
            ),
            "{r:?}"
        );
    })
}

#[test]
fn each_store_error_sqlite() {
    each_store_error(Kind::Sqlite);
}

#[test]
fn each_store_error_dynamodb() {
    each_store_error(Kind::Dynamodb);
}

/// A driver that stops between a child's final write and the delivery of
/// its result to the parent (here the delivery fails; in production the
/// process dies there) leaves the child due: whoever drives due executions
/// (the sweep, `cairn dev`, `cairn wake`) tells the parent, once.
fn child_result_lost_on_the_way(kind: Kind) {
    run(async {
        let s = store(kind).await;
        let faults = Arc::new(FaultStore::new(s.store.clone()));
        let (engine, testkit, _) = engine(faults.clone()).await;
        faults.inject(Fault::Fail {
            op: Op::DeliverOnce,
            nth: 1,
            error: StoreError::Unavailable("injected: the driver stopped here".into()),
        });
        let parent = start(&engine, &testkit, "brood", serde_json::json!([1, 0, 0])).await;
        let r = engine
            .advance(&parent, AdvanceOptions::default())
            .await
            .unwrap();
        assert!(matches!(r, Advance::Suspended { .. }), "{r:?}");
        let child = cairn_core::ExecutionId::new(format!("{parent}.b0")).unwrap();
        let meta = faults.meta(&child).await.unwrap();
        assert_eq!(meta.status, Status::Completed);
        assert_eq!(faults.meta(&parent).await.unwrap().status, Status::Waiting);
        assert_eq!(faults.calls(Op::DeliverOnce), 1);

        // The finished child is due (its hold), not the parent.
        let later = cairn_core::Timestamp::now_system().plus(std::time::Duration::from_secs(60));
        let due: Vec<_> = faults
            .due(later, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert!(due.contains(&child), "the child is not due: {due:?}");
        assert!(meta.wake_at.is_none(), "a hold is not a timer: {meta:?}");

        // The sweep: advancing it tells the parent, which completes.
        for id in due {
            engine
                .advance(&id, AdvanceOptions::default())
                .await
                .unwrap();
        }
        let p = faults.meta(&parent).await.unwrap();
        assert_eq!(p.status, Status::Completed, "{p:?}");
        assert_eq!(faults.calls(Op::DeliverOnce), 2);
        // Settled: nothing is due any more.
        let due = faults.due(later, 100).await.unwrap();
        assert!(due.is_empty(), "still due after the parent heard: {due:?}");
        // Another push of the child tells the parent nothing new.
        engine
            .advance(&child, AdvanceOptions::default())
            .await
            .unwrap();
        let j = assert_journal_sound(faults.as_ref(), &parent).await;
        assert_eq!(
            j.iter()
                .filter(|e| e.event.kind() == "child-completed")
                .count(),
            1,
            "{j:#?}"
        );
    })
}

#[test]
fn child_result_lost_on_the_way_sqlite() {
    child_result_lost_on_the_way(Kind::Sqlite);
}

#[test]
fn child_result_lost_on_the_way_dynamodb() {
    child_result_lost_on_the_way(Kind::Dynamodb);
}
