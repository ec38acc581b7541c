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

/// With leases (the push host), eight concurrent pushes of one execution
/// give one driver: the others stand back, and every activity is attempted
/// once (the harness's own ledger, not the journal, says so). A driver
/// without leases (an operator's CLI) also stands back from a held lease.
#[test]
fn with_leases_eight_pushes_make_one_driver_dynamodb() {
    run(async {
        let s = store(Kind::Dynamodb).await;
        let trace = tempfile::tempdir().unwrap();
        let (plain, testkit, _) = cairn_tests::engine_with(
            s.store.clone(),
            cairn_host::SandboxConfig {
                activity_dirs: vec![(trace.path().to_path_buf(), "/trace".into())],
                ..Default::default()
            },
        )
        .await;
        let leased = cairn_engine::Engine::new(
            plain.sandbox().clone(),
            s.store.clone(),
            std::sync::Arc::new(cairn_engine::SystemClock),
            cairn_engine::EngineConfig {
                lease: Some(std::time::Duration::from_secs(5)),
                ..Default::default()
            },
        );
        let id = start(
            &leased,
            &testkit,
            "slow",
            serde_json::json!({"steps": 3, "ms": 300}),
        )
        .await;
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (engine, id) = (leased.clone(), id.clone());
                tokio::spawn(async move { engine.advance(&id, AdvanceOptions::default()).await })
            })
            .collect();
        let (mut finished, mut stood_back) = (0, 0);
        for t in tasks {
            match t.await.unwrap().expect("an advance never errors on a race") {
                Advance::Finished { .. } => finished += 1,
                Advance::Conflict { reason } => {
                    assert!(reason.contains("driven by"), "{reason}");
                    stood_back += 1
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!((finished, stood_back), (1, 7), "one driver");
        let ledger = std::fs::read_to_string(trace.path().join("attempts")).unwrap();
        let mut keys: Vec<&str> = ledger
            .lines()
            .map(|l| l.split(' ').next().unwrap())
            .collect();
        keys.sort();
        assert_eq!(
            keys,
            vec![format!("{id}/1"), format!("{id}/2"), format!("{id}/3")],
            "each activity attempted once"
        );
        assert_journal_sound(s.store.as_ref(), &id).await;

        // A lease held by a push host keeps a lease-less driver out.
        let other = start(&plain, &testkit, "collect", serde_json::json!(1)).await;
        let now = cairn_core::Timestamp::now_system();
        s.store
            .acquire_lease(
                &other,
                "push-host",
                now.plus(std::time::Duration::from_secs(60)),
                now,
            )
            .await
            .unwrap();
        match plain
            .advance(&other, AdvanceOptions::default())
            .await
            .unwrap()
        {
            Advance::Conflict { reason } => assert!(reason.contains("push-host"), "{reason}"),
            got => panic!("a lease-less driver ran beside a held lease: {got:?}"),
        }
    })
}

/// A driver without a lease that meets an expired one clears it before it
/// writes: the holder, stalled past its lease (another process), can then
/// no longer finish the run in the meta, a write the lease alone fences
/// (the DynamoDB store's entries held in the meta), over what the driver
/// appended.
#[test]
fn a_driver_without_a_lease_fences_out_a_stalled_holder_dynamodb() {
    use cairn_core::Store as _;
    run(async {
        let s = store(Kind::Dynamodb).await;
        let (plain, testkit, _) = cairn_tests::engine(s.store.clone()).await;
        let id = start(&plain, &testkit, "collect", serde_json::json!(1)).await;
        let stalled = cairn_store_dynamodb::DynamoStore::from_sdk_config(
            &cairn_tests::dynamodb_sdk().await,
            s.table.as_deref().unwrap(),
        );
        let now = cairn_core::Timestamp::now_system();
        stalled
            .acquire_lease(
                &id,
                "stalled",
                now.plus(std::time::Duration::from_millis(1)),
                now,
            )
            .await
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let before = s.store.load(&id).await.unwrap();
        assert_eq!(
            before.meta.lease.map(|l| l.owner).as_deref(),
            Some("stalled")
        );
        plain.advance(&id, AdvanceOptions::default()).await.unwrap();
        let after = s.store.load(&id).await.unwrap();
        assert_eq!(after.meta.lease, None, "the expired lease was cleared");
        let end = cairn_core::Entry {
            index: after.journal.len() as u32,
            at: now,
            event: cairn_core::Event::Completed {
                output: cairn_core::Payload::json(&"stale"),
            },
        };
        let err = stalled
            .append_final(&id, Vec::new(), cairn_core::Append::new(1, end))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, cairn_core::StoreError::Conflict { reason, .. } if reason.contains("lease of stalled was lost")),
            "{err:?}"
        );
        assert_eq!(
            s.store.load(&id).await.unwrap().meta.status,
            after.meta.status
        );
    })
}
