//! Entries held in the meta (`inline`), against DynamoDB Local: a short
//! execution's start and finish are one write each, what a load returns is
//! unchanged, and a driver that lost its lease cannot finish in the meta.

use crate::tests::{endpoint, run, sdk_config, table_name};
use crate::*;
use cairn_core::store_suite::{fresh_id, new_execution};
use cairn_core::{Entry, Event, Payload, Store};

async fn store() -> DynamoStore {
    let store = DynamoStore::from_sdk_config(&sdk_config(&endpoint()).await, &table_name("inline"));
    create_table(store.client(), store.table())
        .await
        .expect("create table");
    store
}

/// Another process on the same table: no cache, no lease, no hints.
async fn other(store: &DynamoStore) -> DynamoStore {
    DynamoStore::from_sdk_config(&sdk_config(&endpoint()).await, store.table())
}

/// The sort keys of the execution's items, as stored.
async fn items(store: &DynamoStore, id: &ExecutionId) -> Vec<String> {
    let out = store
        .client()
        .query()
        .table_name(store.table())
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("exec#{id}")),
        )
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    out.items()
        .iter()
        .filter_map(|i| i.get("sk").and_then(|v| v.as_s().ok()).cloned())
        .collect()
}

fn completion(index: u32, result: &str) -> Entry {
    Entry {
        index,
        at: Timestamp::from_millis(1_767_225_600_000 + u64::from(index)),
        event: Event::ActivityCompleted {
            seq: index,
            name: "step".into(),
            input_hash: 1,
            attempts: 1,
            result: Ok(Payload::from(result)),
        },
    }
}

fn completed(index: u32, output: &str) -> Entry {
    Entry {
        index,
        at: Timestamp::from_millis(1_767_225_600_000 + u64::from(index)),
        event: Event::Completed {
            output: Payload::from(output),
        },
    }
}

/// A start of `id` that takes lease `owner` in its create.
fn leased(id: &ExecutionId, input: &[u8], owner: &str) -> NewExecution {
    let mut new = new_execution(id, "wf", input);
    new.meta.lease = Some(cairn_core::Lease {
        owner: owner.into(),
        until: Timestamp::now_system().plus(std::time::Duration::from_secs(60)),
    });
    new
}

#[test]
fn a_short_execution_is_one_write_at_each_end() {
    run(async {
        let store = store().await;
        let id = fresh_id("inline");
        let new = leased(&id, b"{\"a\":1}", "driver");
        let started = new.started.clone();
        store.create(new).await.unwrap();
        assert_eq!(
            items(&store, &id).await,
            vec!["meta"],
            "entry 0 is in the meta"
        );
        store
            .append(&id, Append::new(1, completion(1, "\"one\"")))
            .await
            .unwrap();
        let held_back = completion(2, "\"two\"");
        let last = completed(3, "{\"done\":true}");
        store
            .append_final(&id, vec![held_back.clone()], Append::new(1, last.clone()))
            .await
            .unwrap();
        assert_eq!(
            items(&store, &id).await,
            vec!["h#000001#0000000001", "meta"],
            "the held-back completion and the final entry are in the meta"
        );
        let want = vec![started, completion(1, "\"one\""), held_back, last];
        for reader in [&store, &other(&store).await] {
            let ex = reader.load(&id).await.unwrap();
            assert_eq!(ex.meta.status, Status::Completed);
            assert_eq!(ex.meta.lease, None, "the finish released the lease");
            assert_eq!(ex.journal, want);
            assert_eq!(reader.load_run(&id, 1).await.unwrap(), want);
        }
    });
}

#[test]
fn a_driver_that_lost_its_lease_cannot_finish_in_the_meta() {
    run(async {
        let a = store().await;
        let id = fresh_id("inline-fence");
        let mut new = leased(&id, b"1", "a");
        let until = Timestamp::now_system().plus(std::time::Duration::from_secs(1));
        new.meta.lease.as_mut().unwrap().until = until;
        let started = new.started.clone();
        a.create(new).await.unwrap();
        // `a` stalls past its lease; `b` takes it and appends entry 1.
        let b = other(&a).await;
        b.acquire_lease(
            &id,
            "b",
            until.plus(std::time::Duration::from_secs(30)),
            until,
        )
        .await
        .unwrap();
        let theirs = completion(1, "\"b's\"");
        b.append(&id, Append::new(1, theirs.clone())).await.unwrap();
        let err = a
            .append_final(&id, Vec::new(), Append::new(1, completed(1, "\"a's\"")))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::Conflict { reason, .. } if reason.contains("lease of a was lost") && reason.contains("held now by b")),
            "{err:?}"
        );
        let ex = other(&a).await.load(&id).await.unwrap();
        assert_eq!(ex.meta.status, Status::Running);
        assert_eq!(ex.journal, vec![started, theirs], "b's entry stands alone");
    });
}

#[test]
fn a_finish_sent_again_is_done_once() {
    run(async {
        let store = store().await;
        let id = fresh_id("inline-again");
        let new = leased(&id, b"1", "driver");
        let started = new.started.clone();
        store.create(new).await.unwrap();
        let (held_back, last) = (completion(1, "1"), completed(2, "2"));
        let send =
            || store.append_final(&id, vec![held_back.clone()], Append::new(1, last.clone()));
        send().await.unwrap();
        // The caller retries (its first reply was lost): the store no
        // longer holds the lease, so this one writes items; the meta is
        // final with the same status, and the load has each entry once.
        send().await.unwrap();
        let ex = other(&store).await.load(&id).await.unwrap();
        assert_eq!(ex.meta.status, Status::Completed);
        assert_eq!(ex.journal, vec![started, held_back, last]);
    });
}

#[test]
fn large_entries_stay_items() {
    run(async {
        let store = store().await;
        let id = fresh_id("inline-large");
        let big = format!("\"{}\"", "x".repeat(2_000));
        let new = leased(&id, big.as_bytes(), "driver");
        let started = new.started.clone();
        store.create(new).await.unwrap();
        let last = completed(1, &big);
        store
            .append_final(&id, Vec::new(), Append::new(1, last.clone()))
            .await
            .unwrap();
        assert_eq!(
            items(&store, &id).await,
            vec!["h#000001#0000000000", "h#000001#0000000001", "meta"]
        );
        let ex = other(&store).await.load(&id).await.unwrap();
        assert_eq!(ex.meta.status, Status::Completed);
        assert_eq!(ex.journal, vec![started, last]);
    });
}

#[test]
fn entries_over_the_payload_threshold_are_never_held_in_the_meta() {
    run(async {
        let store = store().await.with_payload_threshold(60);
        let id = fresh_id("inline-threshold");
        let new = leased(&id, b"{\"a\":1}", "driver");
        store.create(new).await.unwrap();
        store
            .append_final(
                &id,
                vec![completion(1, "1")],
                Append::new(1, completed(2, "2")),
            )
            .await
            .unwrap();
        assert_eq!(
            items(&store, &id).await,
            vec![
                "h#000001#0000000000",
                "h#000001#0000000001",
                "h#000001#0000000002",
                "meta"
            ],
            "each body is over 60 bytes: the payload path decides, not the meta"
        );
    });
}
