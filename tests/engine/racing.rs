//! Eight drivers advancing one execution at once: one history.

use crate::run;
use cairn_core::Status;
use cairn_engine::{Advance, AdvanceOptions};
use cairn_tests::{Kind, assert_journal_sound, engine, start, store};

fn eight_drivers_one_history(kind: Kind) {
    run(async {
        let s = store(kind).await;
        let (engine, _, swap) = engine(s.store.clone()).await;
        for round in 0..6 {
            let input = serde_json::json!({"a": "alice", "b": "bob", "foo": 10, "bar": 20, "fail_at_step": if round % 2 == 0 { None } else { Some(3) }});
            let id = start(&engine, &swap, "swap", input).await;
            let tasks: Vec<_> = (0..8)
                .map(|_| {
                    let (engine, id) = (engine.clone(), id.clone());
                    tokio::spawn(
                        async move { engine.advance(&id, AdvanceOptions::default()).await },
                    )
                })
                .collect();
            let mut finished = 0;
            let mut conflicts = 0;
            for t in tasks {
                match t.await.unwrap().expect("an advance never errors on a race") {
                    Advance::Finished { .. } => finished += 1,
                    Advance::Conflict { reason } => {
                        assert!(!reason.is_empty());
                        conflicts += 1
                    }
                    other => panic!("round {round}: unexpected {other:?}"),
                }
            }
            assert!(finished >= 1, "round {round}: someone finished");
            assert_eq!(finished + conflicts, 8);
            let meta = s.store.meta(&id).await.unwrap();
            let expected = if round % 2 == 0 {
                Status::Completed
            } else {
                Status::Failed
            };
            assert_eq!(meta.status, expected, "round {round}");
            let journal = assert_journal_sound(s.store.as_ref(), &id).await;
            let len = if round % 2 == 0 { 6 } else { 7 };
            assert_eq!(
                journal.len(),
                len,
                "round {round}: one history, every step once"
            );
        }
    })
}

#[test]
fn eight_drivers_one_history_sqlite() {
    eight_drivers_one_history(Kind::Sqlite);
}

#[test]
fn eight_drivers_one_history_dynamodb() {
    eight_drivers_one_history(Kind::Dynamodb);
}
