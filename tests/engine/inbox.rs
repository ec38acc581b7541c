//! A signal written while a driver is mid-advance is consumed, never slept
//! through: the suspend is refused (inbox version), the driver takes the new
//! inbox and goes on.

use crate::run;
use cairn_core::{InboxMessage, Payload, Status, Store};
use cairn_engine::{Advance, AdvanceOptions, Engine};
use cairn_tests::fault::{Fault, FaultStore, Op};
use cairn_tests::{Kind, assert_journal_sound, engine, start, store};
use std::sync::Arc;
use std::time::Duration;

fn signal_lands_before_the_suspend(kind: Kind) {
    run(async {
        let s = store(kind).await;
        let faults = Arc::new(FaultStore::new(s.store.clone()));
        let (engine, testkit, _) = engine(faults.clone()).await;
        for round in 1..=20usize {
            let id = start(&engine, &testkit, "collect", serde_json::json!(1)).await;
            // The signal arrives after this driver loaded, before it suspends.
            let message = InboxMessage::Signal {
                name: "go".into(),
                payload: Payload::json(&round),
            };
            faults.inject(Fault::DeliverFirst {
                op: Op::Suspend,
                nth: faults.calls(Op::Suspend) + 1,
                message,
            });
            let r = engine
                .advance(&id, AdvanceOptions::default())
                .await
                .unwrap();
            let Advance::Finished {
                status: Status::Completed,
                entry,
            } = r
            else {
                panic!("round {round}: {r:?}")
            };
            assert_eq!(
                entry.event.summary(100),
                format!("[{round}]"),
                "round {round}: the signal was consumed"
            );
            assert_journal_sound(faults.as_ref(), &id).await;
            assert!(faults.load(&id).await.unwrap().inbox.is_empty());
        }
    })
}

#[test]
fn signal_lands_before_the_suspend_sqlite() {
    signal_lands_before_the_suspend(Kind::Sqlite);
}

#[test]
fn signal_lands_before_the_suspend_dynamodb() {
    signal_lands_before_the_suspend(Kind::Dynamodb);
}

/// Real races: a signal sent at a random moment while a driver advances; the
/// sender then pushes (as the stream would). Never lost, never doubled.
fn racing_signals_are_never_lost(kind: Kind) {
    run(async {
        let s = store(kind).await;
        let (engine, testkit, _) = engine(s.store.clone()).await;
        for round in 0..20u64 {
            let id = start(&engine, &testkit, "collect", serde_json::json!(1)).await;
            let driver = {
                let (engine, id) = (engine.clone(), id.clone());
                tokio::spawn(async move { engine.advance(&id, AdvanceOptions::default()).await })
            };
            tokio::time::sleep(Duration::from_millis(round % 7)).await;
            engine
                .signal(&id, "go", Payload::json(&round))
                .await
                .unwrap();
            let pushed: Result<Advance, _> = push(&engine, &id).await;
            driver.await.unwrap().unwrap();
            pushed.unwrap();
            let meta = s.store.meta(&id).await.unwrap();
            assert_eq!(meta.status, Status::Completed, "round {round}");
            let journal = assert_journal_sound(s.store.as_ref(), &id).await;
            assert_eq!(
                journal
                    .iter()
                    .filter(|e| e.event.kind() == "signal-received")
                    .count(),
                1
            );
        }
    })
}

/// The push after a signal: advance until it is not a conflict.
async fn push(
    engine: &Engine,
    id: &cairn_core::ExecutionId,
) -> Result<Advance, cairn_engine::EngineError> {
    loop {
        match engine.advance(id, AdvanceOptions::default()).await? {
            Advance::Conflict { .. } => tokio::time::sleep(Duration::from_millis(5)).await,
            other => return Ok(other),
        }
    }
}

#[test]
fn racing_signals_are_never_lost_sqlite() {
    racing_signals_are_never_lost(Kind::Sqlite);
}

#[test]
fn racing_signals_are_never_lost_dynamodb() {
    racing_signals_are_never_lost(Kind::Dynamodb);
}
