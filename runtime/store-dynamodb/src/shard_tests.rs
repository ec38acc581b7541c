//! Sharded indexes on DynamoDB Local: `list` and `due` stay paged, ordered
//! and complete across shards, a shard count change loses nothing, and a
//! contract 1 table upgrades in place.

use super::tests::{endpoint, run, schema_endpoint, sdk_config, table_name};
use super::*;
use cairn_core::Store;
use cairn_core::store_suite::{fresh_id, new_execution};

const T0: u64 = 1_767_225_600_000;

async fn store_on(table: &str, shards: u32) -> DynamoStore {
    DynamoStore::from_sdk_config(&sdk_config(&endpoint()).await, table).with_index_shards(shards)
}

async fn fresh(shards: u32) -> DynamoStore {
    let store = store_on(&table_name("shards"), shards).await;
    create_table(store.client(), store.table()).await.unwrap();
    store
}

/// Creates `count` executions of `wf`, each suspended at its own time
/// (`T0 + i` s, later ones updated later) with a wake at `T0 + 1000 - i` s
/// (later ones due earlier).
async fn suspended(store: &DynamoStore, wf: &str, count: u64) -> Vec<ExecutionId> {
    let mut ids = Vec::new();
    for i in 0..count {
        let id = fresh_id(wf);
        store.create(new_execution(&id, wf, b"{}")).await.unwrap();
        store
            .suspend(
                &id,
                Suspend {
                    run: 1,
                    journal_len: 1,
                    inbox_version: 0,
                    wake_at: Some(Timestamp::from_millis(T0 + (1000 - i) * 1000)),
                    waiting_on: "a timer".into(),
                    at: Timestamp::from_millis(T0 + i * 1000),
                },
            )
            .await
            .unwrap();
        ids.push(id);
    }
    ids
}

fn filter(wf: &str, limit: usize) -> ListFilter {
    ListFilter {
        workflow: Some(wf.into()),
        limit,
        ..Default::default()
    }
}

async fn listed(store: &DynamoStore, f: ListFilter) -> Vec<ExecutionId> {
    store
        .list(f)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect()
}

async fn due_ids(store: &DynamoStore, limit: usize) -> Vec<ExecutionId> {
    store
        .due(Timestamp::from_millis(T0 + 2_000_000), limit)
        .await
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect()
}

#[test]
fn list_and_due_are_ordered_and_complete_across_shards() {
    run(async {
        let store = fresh(8).await;
        let wf = "sharded";
        let ids = suspended(&store, wf, 40).await;
        let shards: std::collections::BTreeSet<u32> =
            ids.iter().map(|id| shard_of(id, 8)).collect();
        assert!(shards.len() >= 6, "40 ids spread over {shards:?}");
        let newest_first: Vec<ExecutionId> = ids.iter().rev().cloned().collect();
        // Unbounded: all, newest first.
        assert_eq!(listed(&store, filter(wf, 0)).await, newest_first);
        // Bounded: the newest, whichever shards they are on.
        assert_eq!(listed(&store, filter(wf, 7)).await, newest_first[..7]);
        // A filter on the status, and one that pages (the workflow filter
        // is applied after each page: other workflows' items are skipped).
        let other = suspended(&store, "other", 5).await;
        let waiting = ListFilter {
            status: vec![cairn_core::store::Status::Waiting],
            ..filter(wf, 12)
        };
        assert_eq!(listed(&store, waiting).await, newest_first[..12]);
        let running = ListFilter {
            status: vec![cairn_core::store::Status::Running],
            ..filter(wf, 0)
        };
        assert!(listed(&store, running).await.is_empty());
        // Due: the earliest wake first (the last created), across shards.
        let mut all = ids.clone();
        all.extend(other.iter().cloned());
        let due = due_ids(&store, 0).await;
        assert!(due.is_empty(), "limit 0 lists nothing");
        let due = due_ids(&store, 1000).await;
        let mut expected: Vec<ExecutionId> = other.iter().rev().cloned().collect();
        expected.extend(ids.iter().rev().cloned());
        // Both batches count down from the same wake time: merge by time.
        let wake = |id: &ExecutionId| {
            let i = ids
                .iter()
                .position(|x| x == id)
                .or_else(|| other.iter().position(|x| x == id))
                .unwrap() as u64;
            (T0 + (1000 - i) * 1000, id.clone())
        };
        expected.sort_by_key(wake);
        assert_eq!(due, expected);
        assert_eq!(due_ids(&store, 3).await, expected[..3]);
        // Each execution has exactly one index key per index.
        assert_eq!(due.len(), all.len());
    });
}

#[test]
fn changing_the_shard_count_loses_no_execution() {
    run(async {
        let four = fresh(4).await;
        let table = four.table().to_owned();
        let wf = "reshard";
        let mut ids = suspended(&four, wf, 20).await;
        // A store with fewer shards (a later deploy lowered the setting)
        // still reads every shard the table's contract item records.
        let two = store_on(&table, 2).await;
        assert_eq!(listed(&two, filter(wf, 0)).await.len(), 20);
        assert_eq!(due_ids(&two, 1000).await.len(), 20);
        // More shards: its writes land on shards the others never wrote.
        let sixteen = store_on(&table, 16).await;
        ids.extend(suspended(&sixteen, wf, 20).await);
        assert!(
            ids.iter().any(|id| shard_of(id, 16) >= 4),
            "some execution is on a shard above 4"
        );
        // The two-shard store finds them all: 40, each once.
        let mut found = listed(&two, filter(wf, 0)).await;
        assert_eq!(found.len(), 40);
        found.sort();
        found.dedup();
        assert_eq!(found.len(), 40);
        assert_eq!(due_ids(&two, 1000).await.len(), 40);
        // An execution written under 16 shards moves back under 2 at its
        // next write, and is still listed once.
        let moved = ids.iter().find(|id| shard_of(id, 16) >= 2).unwrap().clone();
        two.park(
            &moved,
            cairn_core::Nondeterminism {
                code: cairn_core::ErrorCode::NondeterministicOperation,
                index: 1,
                expected: "activity 'a'".into(),
                got: "asked for 'b'".into(),
            },
            Timestamp::from_millis(T0 + 500_000),
        )
        .await
        .unwrap();
        let parked = ListFilter {
            status: vec![cairn_core::store::Status::Parked],
            ..filter(wf, 0)
        };
        assert_eq!(listed(&sixteen, parked).await, vec![moved.clone()]);
        assert_eq!(listed(&sixteen, filter(wf, 0)).await.len(), 40);
    });
}

#[test]
fn a_contract_1_table_is_refused_then_upgraded_in_place() {
    use aws_sdk_dynamodb::types::*;
    run(async {
        let table = table_name("contract1");
        // Adding an index: on the quiet instance (see schema_endpoint).
        let store = DynamoStore::from_sdk_config(&sdk_config(&schema_endpoint()).await, &table)
            .with_index_shards(8);
        let client = store.client().clone();
        let key = |name: &str, t: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(t)
                .build()
                .unwrap()
        };
        let attr = |name: &str, t: ScalarAttributeType| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(t)
                .build()
                .unwrap()
        };
        let gsi = |name: &str, hash: &str, range: &str, p: ProjectionType| {
            GlobalSecondaryIndex::builder()
                .index_name(name)
                .key_schema(key(hash, KeyType::Hash))
                .key_schema(key(range, KeyType::Range))
                .projection(Projection::builder().projection_type(p).build())
                .build()
                .unwrap()
        };
        // The schema contract 1 stacks deployed.
        client
            .create_table()
            .table_name(&table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key("pk", KeyType::Hash))
            .key_schema(key("sk", KeyType::Range))
            .attribute_definitions(attr("pk", ScalarAttributeType::S))
            .attribute_definitions(attr("sk", ScalarAttributeType::S))
            .attribute_definitions(attr("status", ScalarAttributeType::S))
            .attribute_definitions(attr("updated_at", ScalarAttributeType::N))
            .attribute_definitions(attr("wake_bucket", ScalarAttributeType::S))
            .attribute_definitions(attr("wake_at", ScalarAttributeType::N))
            .global_secondary_indexes(gsi(
                "by-status",
                "status",
                "updated_at",
                ProjectionType::All,
            ))
            .global_secondary_indexes(gsi(
                "by-wake",
                "wake_bucket",
                "wake_at",
                ProjectionType::KeysOnly,
            ))
            .send()
            .await
            .unwrap();
        // Executions as contract 1 wrote them: no `status_shard`, wake key `w`.
        let mut ids = Vec::new();
        for i in 0..12u64 {
            let id = fresh_id("old");
            let mut meta = new_execution(&id, "old", b"{}").meta;
            meta.updated_at = Timestamp::from_millis(T0 + i);
            if i % 2 == 0 {
                meta.status = cairn_core::store::Status::Waiting;
                meta.due_at = Some(Timestamp::from_millis(T0 + 100 + i));
            }
            let mut item = codec::meta_item(&meta, 1);
            item.remove("status_shard");
            if item.contains_key("wake_bucket") {
                item.insert("wake_bucket".into(), codec::s("w"));
            }
            client
                .put_item()
                .table_name(&table)
                .set_item(Some(item))
                .send()
                .await
                .unwrap();
            ids.push(id);
        }
        // The store refuses it, saying how to upgrade.
        let err = store.check().await.unwrap_err().to_string();
        assert!(
            err.contains("contract 1") && err.contains("cairn table create"),
            "{err}"
        );
        // Upgraded (as `cairn table create` does): nothing lost.
        assert!(create_table(&client, &table).await.unwrap());
        store.check().await.unwrap();
        let mut found = listed(&store, filter("old", 0)).await;
        found.sort();
        let mut expected = ids.clone();
        expected.sort();
        assert_eq!(found, expected);
        let due = store
            .due(Timestamp::from_millis(T0 + 1000), 100)
            .await
            .unwrap();
        assert_eq!(due.len(), 6);
        // Every wake key moved off contract 1's single key.
        let old_key = client
            .query()
            .table_name(&table)
            .index_name("by-wake")
            .key_condition_expression("wake_bucket = :w")
            .expression_attribute_values(":w", codec::s("w"))
            .send()
            .await
            .unwrap();
        assert_eq!(old_key.count, 0);
        // Running it again changes nothing.
        assert_eq!(upgrade_table(&client, &table, 8).await.unwrap(), 0);
        assert_eq!(listed(&store, filter("old", 0)).await.len(), 12);
    });
}

/// A final entry is one put, then the meta's status: a writer stopped in
/// between leaves the entry without the status, and the next load (the
/// driver the sweep sends once the lease runs out) finishes the meta.
#[test]
fn a_final_entry_whose_meta_was_not_updated_is_finished_by_the_next_load() {
    run(async {
        let store = fresh(4).await;
        let id = fresh_id("half-final");
        store
            .create(new_execution(&id, "half", b"{}"))
            .await
            .unwrap();
        let done = cairn_core::Entry {
            index: 1,
            at: Timestamp::from_millis(T0 + 5_000),
            event: cairn_core::Event::Completed {
                output: cairn_core::Payload::from("{\"ok\":true}"),
            },
        };
        // The entry alone, as the first half of `append` writes it.
        let body = String::from_utf8(cairn_core::entry::encode(&done)).unwrap();
        store
            .client()
            .put_item()
            .table_name(store.table())
            .set_item(Some(codec::inline_entry_item(&id, 1, 1, body)))
            .send()
            .await
            .unwrap();
        assert_eq!(
            store.meta(&id).await.unwrap().status,
            cairn_core::store::Status::Running
        );
        // Another process's store (no memory of this one) loads it.
        let other = store_on(store.table(), 4).await;
        let ex = other.load(&id).await.unwrap();
        assert_eq!(ex.meta.status, cairn_core::store::Status::Completed);
        assert_eq!(ex.journal.last(), Some(&done));
        let meta = store.meta(&id).await.unwrap();
        assert_eq!(
            (meta.status, meta.updated_at, meta.due_at),
            (cairn_core::store::Status::Completed, done.at, None)
        );
        let completed = ListFilter {
            status: vec![cairn_core::store::Status::Completed],
            ..filter("half", 0)
        };
        assert_eq!(listed(&store, completed).await, vec![id.clone()]);
        // The append retried by the stopped writer is done, not a conflict.
        store
            .append(
                &id,
                Append {
                    run: 1,
                    entry: done.clone(),
                    consume: None,
                    hold_until_heard: None,
                },
            )
            .await
            .unwrap();
    });
}

/// A warm store keeps the journals it loaded or wrote and reads only what
/// came after: what another process appended, validated against the meta
/// (a continue-as-new elsewhere brings the new run whole).
#[test]
fn a_warm_load_reads_only_the_new_entries_and_sees_other_writers() {
    run(async {
        let warm = fresh(4).await;
        let other = store_on(warm.table(), 4).await;
        let id = fresh_id("warm");
        warm.create(new_execution(&id, "warm", b"{}"))
            .await
            .unwrap();
        let step = |index: u32| Append {
            run: 1,
            entry: cairn_core::Entry {
                index,
                at: Timestamp::from_millis(T0 + u64::from(index)),
                event: cairn_core::Event::ActivityCompleted {
                    seq: index,
                    name: "step".into(),
                    input_hash: 1,
                    attempts: 1,
                    result: Ok(cairn_core::Payload::from("{\"x\":1}")),
                },
            },
            consume: None,
            hold_until_heard: None,
        };
        for i in 1..200 {
            warm.append(&id, step(i)).await.unwrap();
        }
        let items = |s: &DynamoStore| s.stats().items_read();
        let before = items(&warm);
        let ex = warm.load(&id).await.unwrap();
        assert_eq!(ex.journal.len(), 200);
        assert_eq!(items(&warm) - before, 1, "the meta only");
        // Another process appends three entries: the warm load reads them.
        let full = other.load(&id).await.unwrap();
        for i in 200..203 {
            other.append(&id, step(i)).await.unwrap();
        }
        let before = items(&warm);
        let ex = warm.load(&id).await.unwrap();
        assert_eq!(items(&warm) - before, 4, "the meta and three entries");
        assert_eq!(ex.journal.len(), 203);
        assert_eq!(ex.journal[..200], full.journal[..]);
        assert_eq!(ex.journal, other.load(&id).await.unwrap().journal);
        // A continue-as-new by the other: the warm load gets run 2 whole.
        let started = full.journal[0].clone();
        other
            .continue_as_new(
                &id,
                cairn_core::store_suite::continue_run_1(
                    &started,
                    203,
                    Timestamp::from_millis(T0 + 300),
                ),
            )
            .await
            .unwrap();
        let ex = warm.load(&id).await.unwrap();
        assert_eq!((ex.meta.run, ex.journal.len()), (2, 1));
        assert_eq!(ex.journal, other.load(&id).await.unwrap().journal);
    });
}

/// A start with an input too large to be held in the meta is entry 0,
/// then the meta (two puts, no transaction). A start stopped between the
/// two leaves entry 0 alone: no execution yet (a load finds none); the
/// next start of the same workflow and input takes it over, another is
/// refused saying why. (A smaller start is one put and leaves no half.)
#[test]
fn a_start_stopped_before_its_meta_is_taken_over_by_the_same_start() {
    run(async {
        let store = fresh(4).await;
        let id = fresh_id("half-start");
        let input = |n: u32| format!("{{\"n\":{n},\"pad\":\"{}\"}}", "x".repeat(1_000));
        let first = new_execution(&id, "half", input(1).as_bytes());
        let body = String::from_utf8(cairn_core::entry::encode(&first.started)).unwrap();
        store
            .client()
            .put_item()
            .table_name(store.table())
            .set_item(Some(codec::inline_entry_item(&id, 1, 0, body)))
            .send()
            .await
            .unwrap();
        assert!(matches!(
            store.load(&id).await,
            Err(StoreError::NotFound(_))
        ));
        // Another workflow or input: refused, nothing changed.
        let err = store
            .create(new_execution(&id, "half", input(2).as_bytes()))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::Conflict { reason, .. } if reason.contains("without its meta")),
            "{err:?}"
        );
        // The same start, later (another time, another seed): it goes on
        // from the entry 0 that stands.
        let mut again = new_execution(&id, "half", input(1).as_bytes());
        again.meta.created_at = Timestamp::from_millis(T0 + 60_000);
        again.started.at = again.meta.created_at;
        assert_eq!(store.create(again.clone()).await.unwrap(), Created::New);
        let ex = store_on(store.table(), 4).await.load(&id).await.unwrap();
        assert_eq!(ex.journal, vec![first.started.clone()]);
        assert_eq!(ex.meta.status, cairn_core::store::Status::Running);
        // And once more: the execution exists.
        assert!(matches!(
            store.create(again).await.unwrap(),
            Created::Existing(_)
        ));
    });
}

/// `cairn dev`'s store looks for stale starts (a start whose lease ran
/// out, which has no due time) once per interval, and for due timers on
/// every call: a start gone stale after a scan is found only once the
/// interval has passed.
#[test]
fn a_server_store_scans_for_stale_starts_once_per_interval() {
    run(async {
        let every = std::time::Duration::from_secs(4);
        let store = fresh(2).await.with_stale_start_scan_every(every);
        let wf = "stale-scan";
        let stale_start = |id: ExecutionId| {
            let store = store.clone();
            async move {
                store.create(new_execution(&id, wf, b"{}")).await.unwrap();
                let (until, now) = (Timestamp::from_millis(T0), Timestamp::from_millis(T0 - 1));
                store.acquire_lease(&id, "dead", until, now).await.unwrap();
                id
            }
        };
        let timer = suspended(&store, wf, 1).await.remove(0);
        let a = stale_start(fresh_id(wf)).await;
        let first = due_ids(&store, 100).await;
        assert!(first.contains(&a), "the first call scans: {first:?}");
        assert!(first.contains(&timer), "{first:?}");

        let b = stale_start(fresh_id(wf)).await;
        let t = std::time::Instant::now();
        let second = due_ids(&store, 100).await;
        assert!(
            t.elapsed() < every,
            "the test's premise: the second call came within the interval"
        );
        assert!(second.contains(&timer), "timers on every call: {second:?}");
        assert!(
            !second.contains(&a) && !second.contains(&b),
            "no scan within the interval: {second:?}"
        );

        tokio::time::sleep(every).await;
        let third = due_ids(&store, 100).await;
        assert!(third.contains(&a) && third.contains(&b), "{third:?}");
    });
}
