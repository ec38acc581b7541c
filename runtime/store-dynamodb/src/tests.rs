//! Tests against AWS's own DynamoDB emulator (DynamoDB Local, started by
//! scripts/test; its address in `CAIRN_TEST_DYNAMODB_ENDPOINT`).

use super::*;
use aws_sdk_dynamodb::config::Credentials;
use cairn_core::Store;
use std::sync::atomic::{AtomicU64, Ordering};

/// The emulator's address; the test fails (never skips) without one.
pub(crate) fn endpoint() -> String {
    std::env::var("CAIRN_TEST_DYNAMODB_ENDPOINT")
        .expect("CAIRN_TEST_DYNAMODB_ENDPOINT is not set: run the tests with scripts/test, which starts DynamoDB Local")
}

/// The quiet DynamoDB Local for tests that change a table's schema (see
/// `start_dynamodb_local` in scripts/lib.sh: a busy instance leaves an index
/// added by UpdateTable CREATING for minutes).
pub(crate) fn schema_endpoint() -> String {
    std::env::var("CAIRN_TEST_DYNAMODB_SCHEMA_ENDPOINT")
        .expect("CAIRN_TEST_DYNAMODB_SCHEMA_ENDPOINT is not set: run the tests with scripts/test, which starts DynamoDB Local")
}

pub(crate) async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .load()
        .await
}

pub(crate) fn table_name(what: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "cairn-{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

async fn fresh_store() -> ((), DynamoStore) {
    let store = DynamoStore::from_sdk_config(&sdk_config(&endpoint()).await, &table_name("suite"));
    create_table(store.client(), store.table())
        .await
        .expect("create table");
    store.check().await.expect("a fresh table passes the check");
    ((), store)
}

pub(crate) fn run<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

cairn_core::store_suite_tests!(run, fresh_store());
cairn_core::store_suite_tests!(leases: run, fresh_store());

#[test]
fn an_unknown_table_says_how_to_create_it() {
    run(async {
        let store = DynamoStore::from_sdk_config(&sdk_config(&endpoint()).await, "no-such-table");
        let err = store.check().await.unwrap_err();
        assert!(matches!(err, StoreError::Misconfigured(_)), "{err:?}");
        assert!(
            err.to_string().contains("does not exist")
                && err.to_string().contains("cairn table create"),
            "{err}"
        );
        let err = store
            .load(&ExecutionId::new("x").unwrap())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("no-such-table"), "{err}");
    });
}

#[test]
fn table_create_again_turns_on_a_ttl_a_cut_short_create_left_off() {
    run(async {
        use aws_sdk_dynamodb::types::{TimeToLiveSpecification, TimeToLiveStatus};
        let client = Client::new(&sdk_config(&endpoint()).await);
        let table = table_name("ttl");
        assert!(create_table(&client, &table).await.unwrap());
        let ttl = |client: Client, table: String| async move {
            let d = client
                .describe_time_to_live()
                .table_name(&table)
                .send()
                .await
                .unwrap()
                .time_to_live_description
                .unwrap();
            (
                d.time_to_live_status().cloned(),
                d.attribute_name().map(str::to_string),
            )
        };
        assert_eq!(
            ttl(client.clone(), table.clone()).await,
            (Some(TimeToLiveStatus::Enabled), Some("expires_at".into()))
        );
        // As a create whose wait timed out leaves it: TTL off.
        client
            .update_time_to_live()
            .table_name(&table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(false)
                    .attribute_name("expires_at")
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        assert_ne!(
            ttl(client.clone(), table.clone()).await.0,
            Some(TimeToLiveStatus::Enabled)
        );
        assert!(!create_table(&client, &table).await.unwrap(), "it exists");
        assert_eq!(
            ttl(client.clone(), table.clone()).await,
            (Some(TimeToLiveStatus::Enabled), Some("expires_at".into()))
        );
    })
}

#[test]
fn a_table_with_another_key_schema_is_refused() {
    run(async {
        use aws_sdk_dynamodb::types::*;
        let cfg = sdk_config(&endpoint()).await;
        let table = table_name("wrong");
        let client = Client::new(&cfg);
        client
            .create_table()
            .table_name(&table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("id")
                    .key_type(KeyType::Hash)
                    .build()
                    .unwrap(),
            )
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("id")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        let err = DynamoStore::from_sdk_config(&cfg, &table)
            .check()
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("not a Cairn table") && err.to_string().contains("id (HASH)"),
            "{err}"
        );
    });
}

#[test]
fn an_unreachable_endpoint_is_a_clear_error() {
    run(async {
        let store = DynamoStore::from_sdk_config(&sdk_config("http://127.0.0.1:9").await, "t");
        let err = store.check().await.unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        assert!(err.to_string().contains("cannot reach DynamoDB"), "{err}");
    });
}

#[test]
fn oversized_items_are_refused_before_any_request() {
    run(async {
        let ((), store) = fresh_store().await;
        let id = cairn_core::store_suite::fresh_id("big");
        store
            .create(cairn_core::store_suite::new_execution(&id, "wf", b"1"))
            .await
            .unwrap();
        let before = store.stats().total();
        let entry = cairn_core::Entry {
            index: 1,
            at: Timestamp::from_millis(1),
            event: cairn_core::Event::Completed {
                output: cairn_core::Payload::json(&"x".repeat(500_000)),
            },
        };
        let err = store
            .append(
                &id,
                Append {
                    run: 1,
                    entry,
                    consume: None,
                    hold_until_heard: None,
                },
            )
            .await
            .unwrap_err();
        match &err {
            StoreError::TooLarge {
                what, size, limit, ..
            } => {
                assert_eq!(what, "journal entry 1");
                assert!(*size > 500_000 && *limit == MAX_ITEM_BYTES, "{err}");
            }
            other => panic!("expected TooLarge, got {other:?}"),
        }
        assert!(
            err.to_string().contains(id.as_str()),
            "names the execution: {err}"
        );
        assert_eq!(store.stats().total(), before, "no request was sent");
        let big_signal = cairn_core::InboxMessage::Signal {
            name: "s".into(),
            payload: cairn_core::Payload::json(&"y".repeat(450_000)),
        };
        let err = store
            .deliver(&id, big_signal, Timestamp::from_millis(2))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("signal 's'"), "{err}");
    });
}

#[test]
fn a_plain_step_is_one_put_and_a_load_is_one_query() {
    run(async {
        let ((), store) = fresh_store().await;
        let id = cairn_core::store_suite::fresh_id("count");
        store
            .create(cairn_core::store_suite::new_execution(&id, "wf", b"1"))
            .await
            .unwrap();
        let before = store.stats().snapshot();
        let entry = cairn_core::Entry {
            index: 1,
            at: Timestamp::from_millis(1),
            event: cairn_core::Event::TimerFired {
                seq: 1,
                duration_ms: 5,
            },
        };
        store
            .append(
                &id,
                Append {
                    run: 1,
                    entry,
                    consume: None,
                    hold_until_heard: None,
                },
            )
            .await
            .unwrap();
        store.load(&id).await.unwrap();
        let after = store.stats().snapshot();
        let delta =
            |op: &str| after.get(op).copied().unwrap_or(0) - before.get(op).copied().unwrap_or(0);
        assert_eq!(delta("PutItem"), 1);
        assert_eq!(delta("Query"), 1);
        assert_eq!(
            after.values().sum::<u64>() - before.values().sum::<u64>(),
            2
        );
    });
}

/// Appends timer entries `from..to` to `run`.
async fn append_steps(store: &DynamoStore, id: &ExecutionId, run: u32, from: u32, to: u32) {
    for index in from..to {
        let entry = cairn_core::Entry {
            index,
            at: Timestamp::from_millis(u64::from(index)),
            event: cairn_core::Event::TimerFired {
                seq: index,
                duration_ms: 5,
            },
        };
        store
            .append(
                id,
                Append {
                    run,
                    entry,
                    consume: None,
                    hold_until_heard: None,
                },
            )
            .await
            .unwrap();
    }
}

/// Queries, items read and read units of one load.
async fn measured_load(store: &DynamoStore, id: &ExecutionId) -> (Execution, u64, u64, f64) {
    let stats = store.stats();
    let (q0, i0, u0) = (
        stats.snapshot().get("Query").copied().unwrap_or(0),
        stats.items_read(),
        stats.read_units(),
    );
    let ex = store.load(id).await.unwrap();
    (
        ex,
        stats.snapshot().get("Query").copied().unwrap_or(0) - q0,
        stats.items_read() - i0,
        stats.read_units() - u0,
    )
}

/// A 1,000-entry journal loads in one Query, also after a continue-as-new
/// with a longer older run, which the load never reads: the store knows
/// the run (it wrote it, loaded it, or acquired the lease). A store that
/// knows nothing reads at most 500 items before it learns the run.
#[test]
fn a_long_journal_loads_in_one_query_and_older_runs_are_never_read() {
    run(async {
        let ((), store) = fresh_store().await;
        let id = cairn_core::store_suite::fresh_id("long");
        store
            .create(cairn_core::store_suite::new_execution(&id, "wf", b"1"))
            .await
            .unwrap();
        append_steps(&store, &id, 1, 1, 1000).await;
        // The store wrote them: it reads only the meta, the journal comes
        // from its cache.
        let (ex, queries, items, _) = measured_load(&store, &id).await;
        assert_eq!((ex.journal.len(), queries, items), (1000, 1, 1));
        store.journals.forget(&id);
        let (ex, queries, items, _) = measured_load(&store, &id).await;
        assert_eq!(ex.journal.len(), 1000);
        assert!(
            ex.journal
                .iter()
                .enumerate()
                .all(|(i, e)| e.index as usize == i)
        );
        assert_eq!(
            (queries, items),
            (1, 1000),
            "the meta (holding entry 0) and 999 entries, one page"
        );

        // A longer run 1, then run 2 with 1,000 entries.
        append_steps(&store, &id, 1, 1000, 1500).await;
        let started = ex.journal[0].clone();
        store
            .continue_as_new(
                &id,
                cairn_core::store_suite::continue_run_1(
                    &started,
                    1500,
                    Timestamp::from_millis(2000),
                ),
            )
            .await
            .unwrap();
        let (ex, queries, items, _) = measured_load(&store, &id).await;
        assert_eq!((ex.meta.run, ex.journal.len()), (2, 1));
        assert_eq!(
            (queries, items),
            (1, 2),
            "run 1's 1,501 entries are not read"
        );
        append_steps(&store, &id, 2, 1, 1000).await;
        store.journals.forget(&id);
        let (ex, queries, items, units) = measured_load(&store, &id).await;
        assert_eq!((ex.meta.run, ex.journal.len()), (2, 1000));
        assert_eq!((queries, items), (1, 1001));

        // Another instance of the store, which has not seen the execution:
        // two pages, the second bounded to run 2.
        let cold = DynamoStore::from_sdk_config(&sdk_config(&endpoint()).await, store.table());
        let (ex, queries, items, cold_units) = measured_load(&cold, &id).await;
        assert_eq!((ex.meta.run, ex.journal.len()), (2, 1000));
        assert_eq!((queries, items), (2, 1001));
        assert!(cold_units <= units + 1.0, "{cold_units} vs {units}");
        // ... one page once it knows the run.
        let (_, queries, _, _) = measured_load(&cold, &id).await;
        assert_eq!(queries, 1);
        // A third, which acquires the lease first (as a push host does).
        let leased = DynamoStore::from_sdk_config(&sdk_config(&endpoint()).await, store.table());
        leased
            .acquire_lease(
                &id,
                "me",
                Timestamp::from_millis(u64::MAX / 2),
                Timestamp::from_millis(1),
            )
            .await
            .unwrap();
        let (ex, queries, items, _) = measured_load(&leased, &id).await;
        assert_eq!((ex.journal.len(), queries, items), (1000, 1, 1001));
    });
}

/// A run the store remembers that is ahead of the meta (the execution was
/// deleted and made again under the same id) is noticed, and the load made
/// again without it.
#[test]
fn a_remembered_run_ahead_of_the_meta_is_dropped() {
    run(async {
        let ((), store) = fresh_store().await;
        let id = cairn_core::store_suite::fresh_id("stale");
        store
            .create(cairn_core::store_suite::new_execution(&id, "wf", b"1"))
            .await
            .unwrap();
        append_steps(&store, &id, 1, 1, 10).await;
        store.note_run(&id, 7);
        let ex = store.load(&id).await.unwrap();
        assert_eq!((ex.meta.run, ex.journal.len()), (1, 10));
        assert_eq!(store.run_hint(&id), Some(1));
    });
}

/// Replaces the reply to the first `op` request, after DynamoDB applied it,
/// with a 500: the reply is lost and the SDK retries the same request.
#[derive(Debug)]
struct LoseFirstReply {
    op: &'static str,
    armed: Arc<std::sync::atomic::AtomicBool>,
    lost: Arc<AtomicU64>,
}

impl aws_smithy_runtime_api::client::interceptors::Intercept for LoseFirstReply {
    fn name(&self) -> &'static str {
        "lose-first-reply"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextMut<'_>,
        _components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let op = cfg
            .load::<aws_smithy_runtime_api::client::orchestrator::Metadata>()
            .map(|m| m.name())
            .unwrap_or_default();
        if op == self.op && self.armed.swap(false, Ordering::SeqCst) {
            self.lost.fetch_add(1, Ordering::SeqCst);
            let body = r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"injected: the reply was lost after the write"}"#;
            *context.response_mut() = aws_smithy_runtime_api::http::Response::new(
                500u16.try_into().expect("a status"),
                aws_smithy_types::body::SdkBody::from(body),
            );
        }
        Ok(())
    }
}

/// A store that loses the first `op` reply once `armed` (see [`LoseFirstReply`]).
async fn store_losing_first(
    op: &'static str,
) -> (
    DynamoStore,
    Arc<std::sync::atomic::AtomicBool>,
    Arc<AtomicU64>,
) {
    let base = fresh_store().await.1;
    let lost = Arc::new(AtomicU64::new(0));
    let armed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let config = aws_sdk_dynamodb::config::Builder::from(&sdk_config(&endpoint()).await)
        .interceptor(requests::Counter(base.stats.clone()))
        .interceptor(LoseFirstReply {
            op,
            armed: armed.clone(),
            lost: lost.clone(),
        })
        .build();
    let store = DynamoStore {
        client: Client::from_conf(config),
        ..base
    };
    (store, armed, lost)
}

#[test]
fn a_signal_whose_reply_is_lost_is_delivered_once() {
    run(async {
        // Keyless: the SDK's retry finds the item its first attempt wrote.
        let (store, armed, lost) = store_losing_first("TransactWriteItems").await;
        let id = ExecutionId::new("lost-reply").unwrap();
        store
            .create(cairn_core::store_suite::new_execution(&id, "wf", b"1"))
            .await
            .unwrap();
        armed.store(true, Ordering::SeqCst);
        let before = store
            .stats()
            .snapshot()
            .get("TransactWriteItems")
            .copied()
            .unwrap_or(0);
        let message = InboxMessage::Signal {
            name: "go".into(),
            payload: cairn_core::Payload::json(&serde_json::json!(1)),
        };
        let item = store
            .deliver(&id, message.clone(), Timestamp::from_millis(1))
            .await
            .expect("a lost reply retried by the SDK is not an error");
        assert_eq!(lost.load(Ordering::SeqCst), 1, "the reply was lost");
        assert_eq!(
            store.stats().snapshot()["TransactWriteItems"] - before,
            2,
            "the SDK retried the transaction once"
        );
        let ex = store.load(&id).await.unwrap();
        assert_eq!(ex.inbox.len(), 1, "delivered once");
        assert_eq!(
            (ex.inbox[0].id.as_str(), ex.meta.inbox_version),
            (item.id.as_str(), 1)
        );

        // Keyed (a caller's idempotency key): the retry says "already there".
        let (store, armed, lost) = store_losing_first("TransactWriteItems").await;
        let id = ExecutionId::new("lost-reply-keyed").unwrap();
        store
            .create(cairn_core::store_suite::new_execution(&id, "wf", b"1"))
            .await
            .unwrap();
        armed.store(true, Ordering::SeqCst);
        let first = store
            .deliver_once(&id, "signal.k1", message.clone(), Timestamp::from_millis(1))
            .await
            .unwrap();
        assert_eq!(lost.load(Ordering::SeqCst), 1);
        // The SDK's retry carries the transaction's ClientRequestToken, so
        // DynamoDB answers it as the transaction it already applied: this
        // call delivered the signal, and says so.
        assert!(
            first.is_some(),
            "the retried transaction is the same one (its idempotency token)"
        );
        let again = store
            .deliver_once(&id, "signal.k1", message, Timestamp::from_millis(2))
            .await
            .unwrap();
        assert_eq!(again, None);
        let ex = store.load(&id).await.unwrap();
        assert_eq!(
            (ex.inbox.len(), ex.meta.inbox_version),
            (1, 1),
            "delivered once"
        );
    })
}

/// The meta item's shape is the table's contract (deployed tables and
/// older runtimes read it): its attributes and their types stay as they
/// are, an absent value is no attribute (never NULL, which the `by-wake`
/// index refuses), and an item of an older runtime still loads.
#[test]
fn the_meta_item_keeps_its_attributes_and_older_items_load() {
    use aws_sdk_dynamodb::types::AttributeValue as V;
    use codec::{n, s};
    run(async {
        let ((), store) = fresh_store().await;
        let id = cairn_core::store_suite::fresh_id("shape");
        let mut new = cairn_core::store_suite::new_execution(&id, "wf", b"1");
        let until = Timestamp::from_millis(1_767_225_660_000);
        new.meta.lease = Some(cairn_core::Lease {
            owner: "driver-1".into(),
            until,
        });
        new.meta.due_at = Some(until);
        let meta = new.meta.clone();
        store.create(new).await.unwrap();
        let item = store.get_meta_item(&id).await.unwrap().unwrap();
        let mut shape: Vec<(&str, &str)> = item
            .iter()
            .map(|(k, v)| {
                let t = match v {
                    V::S(_) => "S",
                    V::N(_) => "N",
                    _ => "other",
                };
                (k.as_str(), t)
            })
            .collect();
        shape.sort();
        #[rustfmt::skip]
        assert_eq!(shape, [
            ("component", "S"), ("created_at", "N"), ("head", "S"), ("inbox_version", "N"),
            ("input_hash", "N"), ("lease_owner", "S"), ("lease_until", "N"), ("pk", "S"),
            ("run", "N"), ("sk", "S"), ("start_token", "S"), ("status", "S"),
            ("status_shard", "S"), ("timer_at", "N"), ("updated_at", "N"), ("wake_at", "N"),
            ("wake_bucket", "S"), ("workflow", "S"),
        ]);
        assert_eq!(item["timer_at"], n(0));
        assert_eq!(item["wake_at"], n(until.as_millis()));
        assert_eq!(store.get_meta(&id).await.unwrap().unwrap(), meta);

        // As an older runtime wrote it: no `run`, no `timer_at` (the
        // indexed time was the wake).
        let old = cairn_core::store_suite::fresh_id("shape-old");
        let wake = 1_767_225_700_000;
        let item: codec::Item = [
            ("pk", s(codec::exec_pk(&old))),
            ("sk", s("meta")),
            ("workflow", s("wf")),
            ("component", s(meta.component.as_str())),
            ("status", s("waiting")),
            ("status_shard", s("waiting#0")),
            ("input_hash", n(meta.input_hash)),
            ("created_at", n(5)),
            ("updated_at", n(6)),
            ("inbox_version", n(2)),
            ("wake_at", n(wake)),
            ("wake_bucket", s("w#0")),
            ("waiting_on", s("a timer")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let put = |item: codec::Item| {
            store
                .client()
                .put_item()
                .table_name(store.table())
                .set_item(Some(item))
                .send()
        };
        put(item.clone()).await.unwrap();
        let m = store.get_meta(&old).await.unwrap().unwrap();
        assert_eq!((m.run, m.status, m.inbox_version), (1, Status::Waiting, 2));
        assert_eq!(m.wake_at, Some(Timestamp::from_millis(wake)));
        assert_eq!(m.due_at, m.wake_at);
        assert_eq!(m.waiting_on.as_deref(), Some("a timer"));
        assert_eq!((m.lease, m.parked), (None, None));

        // What is wrong is named, with the execution.
        for (attr, value) in [("workflow", None), ("status", Some(n(3)))] {
            let mut bad = item.clone();
            match value {
                Some(v) => bad.insert(attr.into(), v),
                None => bad.remove(attr),
            };
            put(bad).await.unwrap();
            let err = store.get_meta(&old).await.unwrap_err();
            assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
            let err = err.to_string();
            assert!(err.contains(old.as_str()) && err.contains(attr), "{err}");
        }
    });
}
