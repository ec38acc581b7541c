//! The driver on each store error: retries what is transient, stops on
//! conflicts, never appends out of order, never loses a step.

use crate::run;
use cairn_core::{Status, StoreError};
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
