//! The store under injected faults, against DynamoDB Local through a
//! fault-injecting proxy (`faults/proxy.rs`), and under drivers racing in
//! separate processes.
//!
//! What is checked, for every store operation and every kind of fault:
//! retried when it should be (the SDK's retries, [`RETRY_ATTEMPTS`]
//! attempts), a conflict when it is one, a clear `Unavailable` when the
//! retries run out, and never a lost or duplicated journal entry or inbox
//! item: each execution is read back from DynamoDB Local directly, not
//! through the proxy. Nothing here depends on timings.
//!
//! DynamoDB Local's address comes from `CAIRN_TEST_DYNAMODB_ENDPOINT`
//! (scripts/lib.sh `start_emulators`); without it the tests fail.

#[path = "faults/http1.rs"]
mod http1;
#[path = "faults/proxy.rs"]
mod proxy;

use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_dynamodb::types::AttributeValue;
use cairn_core::store::*;
use cairn_core::store_suite::{fresh_id, new_execution};
use cairn_core::{ComponentHash, Entry, Event, ExecutionId, Nondeterminism, Payload, Timestamp};
use cairn_store_dynamodb::{DynamoStore, RETRY_ATTEMPTS, create_table};
use proxy::{Fault, Proxy};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

fn endpoint() -> String {
    std::env::var("CAIRN_TEST_DYNAMODB_ENDPOINT").expect(
        "CAIRN_TEST_DYNAMODB_ENDPOINT is not set: start DynamoDB Local with scripts/lib.sh start_emulators",
    )
}

async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .load()
        .await
}

fn unique(what: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn run<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// A table, a store that talks to it through a proxy, and one that talks
/// to it directly (to check what was really written).
struct Rig {
    proxy: Proxy,
    faulty: DynamoStore,
    direct: DynamoStore,
}

/// Index shards of the rigs' stores. A `list` or `due` sends one query per
/// shard; with every request faulted once, the default's 129 queries of one
/// sweep would drain the SDK's retry quota (500 tokens, 5 a throttled
/// retry) on their own, which tests the quota, not the operation.
const FAULT_SHARDS: u32 = 2;

impl Rig {
    async fn new(seed: u64) -> Rig {
        let direct =
            DynamoStore::from_sdk_config(&sdk_config(&endpoint()).await, &unique("cairn-faults"))
                .with_index_shards(FAULT_SHARDS);
        create_table(direct.client(), direct.table())
            .await
            .expect("create table");
        let proxy = Proxy::start(&endpoint(), seed).await;
        let faulty = Rig::through(&proxy, direct.table()).await;
        Rig {
            proxy,
            faulty,
            direct,
        }
    }

    /// Another store through the same proxy, with its own retry quota (the
    /// SDK keeps one per process and retry partition: the tests of this
    /// process would otherwise share it, and drain it).
    async fn through(proxy: &Proxy, table: &str) -> DynamoStore {
        DynamoStore::from_sdk_config(&sdk_config(&proxy.url()).await, table)
            .with_index_shards(FAULT_SHARDS)
            .configure_client(|c| {
                c.retry_partition(aws_sdk_dynamodb::config::retry::RetryPartition::new(
                    unique("faults"),
                ))
            })
    }

    /// The raw items of an execution's partition, read directly.
    async fn items(&self, id: &ExecutionId) -> Vec<BTreeMap<String, AttributeValue>> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .direct
                .client()
                .query()
                .table_name(self.direct.table())
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", AttributeValue::S(format!("exec#{id}")))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .expect("direct query");
            out.extend(
                page.items
                    .unwrap_or_default()
                    .into_iter()
                    .map(|i| i.into_iter().collect()),
            );
            start = page.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        out
    }

    /// How many inbox items (pending or consumed) the partition holds.
    async fn inbox_items(&self, id: &ExecutionId) -> usize {
        self.items(id)
            .await
            .iter()
            .filter(|i| matches!(i.get("sk"), Some(AttributeValue::S(sk)) if sk.starts_with("in#")))
            .count()
    }
}

fn at(ms: u64) -> Timestamp {
    Timestamp::from_millis(1_767_225_600_000 + ms)
}

fn entry(index: u32, event: Event) -> Entry {
    Entry {
        index,
        at: at(u64::from(index) * 10),
        event,
    }
}

fn step(index: u32) -> Entry {
    entry(
        index,
        Event::TimerFired {
            seq: index,
            duration_ms: u64::from(index),
        },
    )
}

fn signal_entry(index: u32, item: &InboxItem) -> Entry {
    let InboxMessage::Signal { name, payload } = &item.message else {
        panic!("not a signal: {item:?}");
    };
    entry(
        index,
        Event::SignalReceived {
            seq: index,
            name: name.clone(),
            payload: payload.clone(),
            inbox_id: item.id.clone(),
        },
    )
}

fn signal(name: &str, v: u64) -> InboxMessage {
    InboxMessage::Signal {
        name: name.into(),
        payload: Payload::json(&v),
    }
}

fn plain(run: u32, entry: Entry) -> Append {
    Append {
        run,
        entry,
        consume: None,
        hold_until_heard: None,
    }
}

fn component_hash() -> ComponentHash {
    static N: AtomicU64 = AtomicU64::new(1);
    let n = N.fetch_add(1, Ordering::Relaxed) + u64::from(std::process::id()) * 1_000_000;
    ComponentHash::parse(&format!("{n:064x}")).unwrap()
}

/// Every store operation once or more, with the answers the contract
/// promises (conflicts included), then the execution read back directly:
/// its journal and inbox exactly as written, nothing lost or doubled.
async fn every_operation(rig: &Rig, store: &DynamoStore) {
    let id = fresh_id("faults");
    let wf = unique("wf");

    // Components and the workflow registry (two chunks: 400 KB).
    let hash = component_hash();
    let bytes: Vec<u8> = (0..400_000u32).map(|i| (i % 251) as u8).collect();
    store.put_component(&hash, &bytes).await.unwrap();
    store.put_component(&hash, &bytes).await.unwrap();
    assert_eq!(
        store.get_component(&hash).await.unwrap().as_deref(),
        Some(&bytes[..])
    );
    store.set_workflow_component(&wf, &hash).await.unwrap();
    assert_eq!(
        store.workflow_component(&wf).await.unwrap(),
        Some(hash.clone())
    );
    assert!(
        store
            .list_components()
            .await
            .unwrap()
            .contains(&(hash.clone(), bytes.len() as u64))
    );
    assert!(
        store
            .list_workflows()
            .await
            .unwrap()
            .contains(&(wf.clone(), hash.clone()))
    );

    // Create: new, the same again, another input.
    let new = new_execution(&id, &wf, b"1");
    assert_eq!(store.create(new.clone()).await.unwrap(), Created::New);
    assert!(matches!(
        store.create(new.clone()).await.unwrap(),
        Created::Existing(_)
    ));
    let err = store
        .create(new_execution(&id, &wf, b"2"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Exists { .. }), "{err:?}");

    // Plain appends, then a conflicting one.
    let mut run1 = vec![new.started.clone()];
    for i in 1..=2 {
        store.append(&id, plain(1, step(i))).await.unwrap();
        run1.push(step(i));
    }
    let mut other = step(2);
    other.at = at(99_999);
    let err = store.append(&id, plain(1, other)).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");

    // Deliveries: keyless, keyed, keyed again.
    let a = store.deliver(&id, signal("a", 1), at(30)).await.unwrap();
    let b = store
        .deliver_once(&id, "signal.k1", signal("b", 2), at(31))
        .await
        .unwrap()
        .expect("a new key delivers");
    assert_eq!(
        store
            .deliver_once(&id, "signal.k1", signal("b", 3), at(32))
            .await
            .unwrap(),
        None
    );
    let ex = store.load(&id).await.unwrap();
    assert_eq!(ex.meta.inbox_version, 2);
    assert_eq!(ex.inbox, vec![a.clone(), b.clone()]);
    assert_eq!(ex.journal, run1);

    // A signal entry consuming its inbox item (a transaction).
    let consumed = signal_entry(3, &a);
    store
        .append(
            &id,
            Append {
                run: 1,
                entry: consumed.clone(),
                consume: Some(a.id.clone()),
                hold_until_heard: None,
            },
        )
        .await
        .unwrap();
    run1.push(consumed);
    // The same item again, at the next index: it was consumed.
    let err = store
        .append(
            &id,
            Append {
                run: 1,
                entry: signal_entry(4, &a),
                consume: Some(a.id.clone()),
                hold_until_heard: None,
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");

    // Suspend: stale inbox version, stale journal length, then right.
    let mut sus = Suspend {
        run: 1,
        journal_len: 4,
        inbox_version: 1,
        wake_at: Some(at(1_000)),
        waiting_on: "a timer".into(),
        at: at(40),
    };
    let err = store.suspend(&id, sus.clone()).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    sus.inbox_version = 2;
    sus.journal_len = 3;
    let err = store.suspend(&id, sus.clone()).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    sus.journal_len = 4;
    store.suspend(&id, sus).await.unwrap();
    let meta = store.meta(&id).await.unwrap();
    assert_eq!(
        (meta.status, meta.wake_at),
        (Status::Waiting, Some(at(1_000)))
    );
    assert!(
        store
            .due(at(1_000), 10_000)
            .await
            .unwrap()
            .contains(&(id.clone(), at(1_000)))
    );
    assert!(
        !store
            .due(at(999), 10_000)
            .await
            .unwrap()
            .iter()
            .any(|(i, _)| *i == id)
    );
    let listed = store
        .list(ListFilter {
            status: vec![Status::Waiting],
            workflow: Some(wf.clone()),
            limit: 0,
        })
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|m| m.id.clone()).collect::<Vec<_>>(),
        vec![id.clone()]
    );

    // Leases: acquire, refused to another, renew, lost renew, release.
    store
        .acquire_lease(&id, "d1", at(2_000), at(1_000))
        .await
        .unwrap();
    let err = store
        .acquire_lease(&id, "d2", at(3_000), at(1_500))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Leased { owner, .. } if owner == "d1"),
        "{err:?}"
    );
    store.renew_lease(&id, "d1", at(2_500)).await.unwrap();
    let err = store.renew_lease(&id, "d2", at(2_600)).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    assert_eq!(
        store.meta(&id).await.unwrap().lease.map(|l| l.until),
        Some(at(2_500))
    );
    store
        .release_lease(&id, "d1", Some(at(2_700)))
        .await
        .unwrap();
    store.release_lease(&id, "d1", None).await.unwrap();
    let meta = store.meta(&id).await.unwrap();
    assert_eq!((meta.lease, meta.due_at), (None, Some(at(2_700))));

    // Continue as new, then a stale one.
    let closing = entry(
        4,
        Event::ContinuedAsNew {
            input: Payload::json(&2),
        },
    );
    let next = Entry {
        index: 0,
        at: at(50),
        event: Event::Started {
            workflow: wf.clone(),
            input: Payload::json(&2),
            component: new.meta.component.clone(),
            seed: 8,
            run: 2,
            parent: None,
        },
    };
    let c = ContinueAsNew {
        closing: closing.clone(),
        next: next.clone(),
        run: 1,
    };
    store.continue_as_new(&id, c.clone()).await.unwrap();
    run1.push(closing);
    // The same call again finds its own closing entry: done. Another
    // driver's (another time) finds the run moved on.
    store.continue_as_new(&id, c.clone()).await.unwrap();
    let mut stale = c;
    stale.closing.at = at(99_999);
    let err = store.continue_as_new(&id, stale).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    assert_eq!(store.load_run(&id, 1).await.unwrap(), run1);
    let mut run2 = vec![next];
    assert_eq!(store.load(&id).await.unwrap().journal, run2);

    // Park, unpark (twice: the second finds it running).
    let info = Nondeterminism {
        code: cairn_core::ErrorCode::NondeterministicOperation,
        index: 1,
        expected: "a timer".into(),
        got: "an activity".into(),
    };
    store.park(&id, info.clone(), at(60)).await.unwrap();
    let meta = store.meta(&id).await.unwrap();
    assert_eq!((meta.status, meta.parked), (Status::Parked, Some(info)));
    store.unpark(&id).await.unwrap();
    store.unpark(&id).await.unwrap();
    assert_eq!(store.meta(&id).await.unwrap().status, Status::Running);

    // The keyed signal, consumed in run 2; then the final entry.
    let consumed = signal_entry(1, &b);
    store
        .append(
            &id,
            Append {
                run: 2,
                entry: consumed.clone(),
                consume: Some(b.id.clone()),
                hold_until_heard: None,
            },
        )
        .await
        .unwrap();
    run2.push(consumed);
    let done = entry(
        2,
        Event::Completed {
            output: Payload::json(&"done"),
        },
    );
    store.append(&id, plain(2, done.clone())).await.unwrap();
    run2.push(done);
    let err = store
        .deliver(&id, signal("late", 9), at(70))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Finished {
                status: Status::Completed,
                ..
            }
        ),
        "{err:?}"
    );
    let err = store
        .acquire_lease(&id, "d3", at(9_000), at(8_000))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Finished { .. }), "{err:?}");

    // Delete the component: true, then gone, then false.
    assert!(store.delete_component(&hash).await.unwrap());
    assert_eq!(store.get_component(&hash).await.unwrap(), None);
    assert!(!store.delete_component(&hash).await.unwrap());

    // What DynamoDB Local really holds, read without the proxy.
    let ex = rig.direct.load(&id).await.unwrap();
    assert_eq!(ex.journal, run2, "run 2, whole and once");
    assert_eq!(rig.direct.load_run(&id, 1).await.unwrap(), run1);
    assert_eq!(
        (ex.meta.status, ex.meta.run, ex.meta.inbox_version),
        (Status::Completed, 2, 2)
    );
    assert!(ex.inbox.is_empty(), "both signals consumed: {:?}", ex.inbox);
    assert_eq!(
        rig.inbox_items(&id).await,
        2,
        "two deliveries, two inbox items"
    );
    assert_eq!(
        rig.items(&id).await.len(),
        1 + 2 + (run1.len() - 1) + run2.len(),
        "the meta (holding run 1's entry 0), two inbox items and the other entries of both runs: nothing more"
    );
}

/// Every operation, under each kind of fault: first with every first
/// attempt of every request hit (the retry passes), then under a seeded mix
/// of all kinds. Prints `figure: fault_injections_survived_<kind>=N`.
#[test]
fn every_operation_survives_every_kind_of_fault() {
    run(async {
        let mut survived: BTreeMap<Fault, u64> = BTreeMap::new();
        // Unhurt, for a baseline of what the scenario sends.
        let rig = Rig::new(1).await;
        every_operation(&rig, &rig.faulty).await;
        let baseline = rig.proxy.requests();
        assert!(rig.proxy.injected().is_empty());

        for fault in Fault::ALL {
            let rig = Rig::new(2).await;
            rig.proxy.set_rates(None, &[(fault, 1.0)], 1);
            every_operation(&rig, &rig.faulty).await;
            let by_op = rig.proxy.injected_by_op();
            for op in baseline.keys() {
                assert!(
                    by_op.get(&(fault, op.clone())).copied().unwrap_or(0) > 0,
                    "{op} met no {fault:?}: {by_op:?}"
                );
            }
            let n = rig.proxy.injected().get(&fault).copied().unwrap_or(0);
            eprintln!(
                "{fault:?}: {n} injected over {} requests",
                rig.proxy.requests().values().sum::<u64>()
            );
            *survived.entry(fault).or_default() += n;
        }

        // A seeded mix: ~40% of attempts fail, never RETRY_ATTEMPTS in a row.
        for seed in [11, 12, 13, 14] {
            let rig = Rig::new(seed).await;
            let mut rates: Vec<(Fault, f64)> = Fault::FAILING.iter().map(|f| (*f, 0.065)).collect();
            rates.push((Fault::Latency, 0.1));
            rig.proxy.set_rates(None, &rates, RETRY_ATTEMPTS - 2);
            for _ in 0..2 {
                every_operation(&rig, &rig.faulty).await;
            }
            eprintln!("seed {seed}: {:?}", rig.proxy.injected());
            for (f, n) in rig.proxy.injected() {
                *survived.entry(f).or_default() += n;
            }
        }
        for fault in Fault::ALL {
            println!(
                "figure: fault_injections_survived_{}={} injections",
                fault.name(),
                survived.get(&fault).copied().unwrap_or(0)
            );
        }
        let throttles = survived.get(&Fault::Throughput).copied().unwrap_or(0)
            + survived.get(&Fault::Throttling).copied().unwrap_or(0);
        println!("figure: fault_injections_survived_throttle={throttles} injections");
    });
}

/// A reply lost after DynamoDB applied the write: the SDK's retry finds the
/// write done. A conditional put meets its own entry (the store recognises
/// it); a transaction carries its idempotency token (DynamoDB answers it as
/// applied). Also when the caller itself retries after the SDK gave up.
#[test]
fn a_write_whose_reply_is_lost_is_applied_once_and_reported_done() {
    run(async {
        let rig = Rig::new(3).await;
        let store = &rig.faulty;
        let id = fresh_id("lost");
        let lose = |op: &str, n: u64| rig.proxy.arm(op, Fault::LostReply, n);

        // A start held in the meta (one put: entry 0 and the meta), its
        // reply lost: the SDK's retry meets the start's own token.
        lose("PutItem", 1);
        assert_eq!(
            store.create(new_execution(&id, "wf", b"1")).await.unwrap(),
            Created::New
        );

        // Another start, too large for the meta (entry 0, then the meta:
        // two puts), the meta's reply lost (entry 0's put passes, held a
        // moment): the SDK's retry fails its condition on the meta it wrote,
        // which is this start's: a new execution, not a conflict.
        let id_meta = fresh_id("lost-meta");
        let large = format!("\"{}\"", "x".repeat(1_000));
        let puts = rig.proxy.requests().get("PutItem").copied().unwrap_or(0);
        rig.proxy.arm("PutItem", Fault::Latency, 1);
        lose("PutItem", 1);
        assert_eq!(
            store
                .create(new_execution(&id_meta, "wf", large.as_bytes()))
                .await
                .expect("its own meta, not a conflict"),
            Created::New
        );
        assert_eq!(
            rig.proxy.requests()["PutItem"] - puts,
            3,
            "entry 0, the meta, the meta again"
        );
        let started = rig.direct.load(&id_meta).await.unwrap();
        assert_eq!(started.journal.len(), 1);
        assert_eq!(started.meta.status, Status::Running);

        // A plain append: the retried put fails its condition on its own entry.
        let before = rig.proxy.requests().get("PutItem").copied().unwrap_or(0);
        lose("PutItem", 1);
        store
            .append(&id, plain(1, step(1)))
            .await
            .expect("its own entry, not a conflict");
        assert_eq!(
            rig.proxy.requests()["PutItem"] - before,
            2,
            "the SDK retried once"
        );

        // A delivery and a consuming append (transactions).
        lose("TransactWriteItems", 1);
        let a = store.deliver(&id, signal("a", 1), at(20)).await.unwrap();
        lose("TransactWriteItems", 1);
        store
            .append(
                &id,
                Append {
                    run: 1,
                    entry: signal_entry(2, &a),
                    consume: Some(a.id.clone()),
                    hold_until_heard: None,
                },
            )
            .await
            .unwrap();

        // Every reply lost: the SDK gives up (unavailable), the write stands
        // once; the caller's own retry then finds it and reports it done.
        lose("PutItem", u64::from(RETRY_ATTEMPTS));
        let err = store.append(&id, plain(1, step(3))).await.unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        store
            .append(&id, plain(1, step(3)))
            .await
            .expect("the caller's retry finds its entry");

        lose("TransactWriteItems", u64::from(RETRY_ATTEMPTS));
        let b = store
            .deliver_once(&id, "signal.b", signal("b", 2), at(40))
            .await;
        assert!(matches!(b, Err(StoreError::Unavailable(_))), "{b:?}");
        assert_eq!(
            rig.inbox_items(&id).await,
            2,
            "{RETRY_ATTEMPTS} attempts, one transaction"
        );
        let b = store
            .deliver_once(&id, "signal.b", signal("b", 2), at(41))
            .await
            .unwrap();
        assert_eq!(b, None, "the key was delivered by the first call");
        let b = rig.direct.load(&id).await.unwrap().inbox[0].clone();

        lose("TransactWriteItems", u64::from(RETRY_ATTEMPTS));
        let consume = Append {
            run: 1,
            entry: signal_entry(4, &b),
            consume: Some(b.id.clone()),
            hold_until_heard: None,
        };
        let err = store.append(&id, consume.clone()).await.unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        store
            .append(&id, consume)
            .await
            .expect("the caller's retry finds its entry and its consumed item");

        let c = ContinueAsNew {
            closing: entry(
                5,
                Event::ContinuedAsNew {
                    input: Payload::json(&2),
                },
            ),
            next: Entry {
                index: 0,
                at: at(60),
                event: Event::Started {
                    workflow: "wf".into(),
                    input: Payload::json(&2),
                    component: cairn_core::testing::test_component(),
                    seed: 1,
                    run: 2,
                    parent: None,
                },
            },
            run: 1,
        };
        lose("TransactWriteItems", 1);
        store.continue_as_new(&id, c.clone()).await.unwrap();
        // And a caller's retry of the same continue-as-new after every
        // reply was lost: done, not "run 1 has moved on".
        let c2 = ContinueAsNew {
            closing: entry(
                1,
                Event::ContinuedAsNew {
                    input: Payload::json(&3),
                },
            ),
            next: Entry {
                index: 0,
                at: at(70),
                event: Event::Started {
                    workflow: "wf".into(),
                    input: Payload::json(&3),
                    component: cairn_core::testing::test_component(),
                    seed: 1,
                    run: 3,
                    parent: None,
                },
            },
            run: 2,
        };
        lose("TransactWriteItems", u64::from(RETRY_ATTEMPTS));
        let err = store.continue_as_new(&id, c2.clone()).await.unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        store
            .continue_as_new(&id, c2.clone())
            .await
            .expect("the caller's retry finds its run started");

        // The final entry (a put, then the meta's status), its put's reply
        // lost: the SDK's retry finds its own entry and goes on.
        lose("PutItem", 1);
        let done = entry(
            1,
            Event::Completed {
                output: Payload::json(&"ok"),
            },
        );
        store.append(&id, plain(3, done.clone())).await.unwrap();

        // A component deleted whose reply was lost: it existed.
        let hash = component_hash();
        store.put_component(&hash, b"wasm").await.unwrap();
        lose("DeleteItem", 1);
        assert!(
            store.delete_component(&hash).await.unwrap(),
            "it was stored"
        );

        let ex = rig.direct.load(&id).await.unwrap();
        assert_eq!(ex.journal, vec![c2.next.clone(), done]);
        assert_eq!(ex.meta.status, Status::Completed);
        let run1 = rig.direct.load_run(&id, 1).await.unwrap();
        assert_eq!(
            run1.iter().map(|e| e.index).collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 4, 5]
        );
        assert_eq!(rig.inbox_items(&id).await, 2);
        assert_eq!(ex.meta.inbox_version, 2);
        assert_eq!(
            rig.proxy.injected()[&Fault::LostReply],
            8 + 4 * u64::from(RETRY_ATTEMPTS)
        );
    });
}

/// When every attempt fails, the store answers `Unavailable` naming what
/// DynamoDB said, after exactly [`RETRY_ATTEMPTS`] attempts; a refused
/// condition is never retried.
#[test]
fn retries_run_out_as_a_clear_unavailable() {
    run(async {
        let rig = Rig::new(4).await;
        for fault in Fault::FAILING {
            // A fresh client per kind, with its own retry quota.
            let store = Rig::through(&rig.proxy, rig.direct.table()).await;
            let id = fresh_id("exhausted");
            store.create(new_execution(&id, "wf", b"1")).await.unwrap();
            let expect = |err: &StoreError| {
                let StoreError::Unavailable(msg) = err else {
                    panic!("{fault:?}: expected Unavailable, got {err:?}");
                };
                let named = match fault {
                    Fault::Throughput => "ProvisionedThroughputExceededException",
                    Fault::Throttling => "ThrottlingException",
                    Fault::Internal => "InternalServerError",
                    Fault::Unavailable => "ServiceUnavailable",
                    _ => "cannot reach DynamoDB",
                };
                assert!(msg.contains(named), "{fault:?}: {msg}");
                assert!(err.is_transient());
            };
            let injected = |op: &str| {
                rig.proxy
                    .injected_by_op()
                    .get(&(fault, op.to_owned()))
                    .copied()
                    .unwrap_or(0)
            };
            for op in ["PutItem", "TransactWriteItems", "Query", "UpdateItem"] {
                let before = injected(op);
                rig.proxy.arm(op, fault, u64::from(RETRY_ATTEMPTS));
                let err = match op {
                    "PutItem" => store.append(&id, plain(1, step(1))).await.unwrap_err(),
                    "TransactWriteItems" => {
                        store.deliver(&id, signal("s", 1), at(5)).await.unwrap_err()
                    }
                    "Query" => store.load(&id).await.unwrap_err(),
                    _ => store
                        .acquire_lease(&id, "d", at(100), at(1))
                        .await
                        .unwrap_err(),
                };
                expect(&err);
                assert_eq!(
                    injected(op) - before,
                    u64::from(RETRY_ATTEMPTS),
                    "{fault:?} {op}: every attempt was made"
                );
            }
            // What stands: a lost reply's write once, nothing otherwise.
            let ex = rig.direct.load(&id).await.unwrap();
            let applied = usize::from(fault == Fault::LostReply);
            assert_eq!(ex.journal.len(), 1 + applied, "{fault:?}");
            assert_eq!(ex.inbox.len(), applied, "{fault:?}");
            assert_eq!(rig.inbox_items(&id).await, applied, "{fault:?}");
            // The caller retries once DynamoDB answers again.
            store.append(&id, plain(1, step(1))).await.unwrap();
            store.acquire_lease(&id, "d", at(100), at(1)).await.unwrap();
            let ex = rig.direct.load(&id).await.unwrap();
            assert_eq!(
                ex.journal,
                vec![new_execution(&id, "wf", b"1").started, step(1)]
            );
            assert_eq!(ex.meta.lease.map(|l| l.owner).as_deref(), Some("d"));
        }
        // A refused condition is an answer, not a fault: one attempt.
        let store = Rig::through(&rig.proxy, rig.direct.table()).await;
        let id = fresh_id("cond");
        store.create(new_execution(&id, "wf", b"1")).await.unwrap();
        store.append(&id, plain(1, step(1))).await.unwrap();
        let before = rig.proxy.requests()["PutItem"];
        let mut other = step(1);
        other.at = at(12_345);
        let err = store.append(&id, plain(1, other)).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
        assert_eq!(rig.proxy.requests()["PutItem"] - before, 1);
    });
}

/// A reply slower than the attempt timeout: the SDK abandons the attempt
/// and retries; the first attempt still reaches DynamoDB, later. Each write
/// stands once and is reported done.
#[test]
fn a_reply_slower_than_the_attempt_timeout_is_retried_and_applied_once() {
    run(async {
        let rig = Rig::new(8).await;
        let store = Rig::through(&rig.proxy, rig.direct.table())
            .await
            .configure_client(|c| {
                c.timeout_config(
                    aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
                        .operation_attempt_timeout(std::time::Duration::from_millis(300))
                        .build(),
                )
            });
        rig.proxy.set_latency(1_000, 1_001);
        let id = fresh_id("slow");
        rig.direct
            .create(new_execution(&id, "wf", b"1"))
            .await
            .unwrap();
        // Until the held first attempt has reached DynamoDB too.
        let proxy = &rig.proxy;
        let settle = |n: u64| async move {
            for _ in 0..400 {
                if proxy.forwarded() >= n {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(25)).await;
            }
            panic!("the held request never reached DynamoDB Local");
        };
        let base = rig.proxy.forwarded();

        rig.proxy.arm("PutItem", Fault::Latency, 1);
        store.append(&id, plain(1, step(1))).await.unwrap();
        settle(base + 2).await;

        rig.proxy.arm("TransactWriteItems", Fault::Latency, 1);
        let a = store.deliver(&id, signal("a", 1), at(20)).await.unwrap();
        settle(base + 4).await;

        rig.proxy.arm("TransactWriteItems", Fault::Latency, 1);
        store
            .append(
                &id,
                Append {
                    run: 1,
                    entry: signal_entry(2, &a),
                    consume: Some(a.id.clone()),
                    hold_until_heard: None,
                },
            )
            .await
            .unwrap();
        settle(base + 6).await;

        let ex = rig.direct.load(&id).await.unwrap();
        assert_eq!(
            ex.journal.iter().map(|e| e.index).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
        assert_eq!(ex.journal[2], signal_entry(2, &a));
        assert!(ex.inbox.is_empty());
        assert_eq!(ex.meta.inbox_version, 1, "delivered once");
        assert_eq!(rig.inbox_items(&id).await, 1, "delivered once");
        assert_eq!(rig.proxy.injected()[&Fault::Latency], 3);
    });
}

/// A write that meets an item another transaction holds (DynamoDB's
/// `TransactionConflict`, injected: DynamoDB Local serialises its writes
/// and never answers it) applied nothing. The store sends a cancelled
/// transaction again (up to [`RETRY_ATTEMPTS`] times) and it goes through;
/// when every attempt meets a conflict, the answer is a transient
/// `Unavailable` naming it, nothing is written, and the caller's retry goes
/// through. A single-item write's `TransactionConflictException` is a
/// transient `Unavailable` at once (the SDK does not retry it; the engine
/// retries transient store errors).
#[test]
fn a_transaction_conflict_applied_nothing_and_is_sent_again() {
    const TWI: &str = "TransactWriteItems";
    run(async {
        let rig = Rig::new(6).await;
        let store = &rig.faulty;
        let proxy = &rig.proxy;
        let id = fresh_id("txc");
        store.create(new_execution(&id, "wf", b"1")).await.unwrap();
        let sent = |op: &str| proxy.requests().get(op).copied().unwrap_or(0);
        let state = || async {
            let ex = rig.direct.load(&id).await.unwrap();
            (
                ex.journal.len(),
                ex.inbox.len(),
                ex.meta.inbox_version,
                ex.meta.status,
                ex.meta.run,
                ex.meta.lease.is_some(),
            )
        };
        // Conflicts on `n` attempts of `op`; after the call, `op` was sent
        // `attempts` times and the call failed with a named conflict or not.
        let conflicts = |op: &'static str, n: u32| {
            proxy.arm(op, Fault::TransactionConflict, u64::from(n));
            let before = sent(op);
            move |attempts: u32, err: Option<StoreError>| {
                assert_eq!(sent(op) - before, u64::from(attempts), "{op}");
                if let Some(err) = err {
                    let StoreError::Unavailable(msg) = &err else {
                        panic!("{op}: expected Unavailable, got {err:?}");
                    };
                    assert!(msg.contains("TransactionConflict"), "{op}: {msg}");
                    assert!(err.is_transient());
                }
            }
        };

        // A delivery meets one conflict: sent again, delivered once.
        let check = conflicts(TWI, 1);
        let a = store.deliver(&id, signal("a", 1), at(1)).await.unwrap();
        check(2, None);
        assert_eq!(state().await, (1, 1, 1, Status::Running, 1, false));

        // A plain append (one put): unavailable at once, nothing written.
        let check = conflicts("PutItem", 1);
        let err = store.append(&id, plain(1, step(1))).await.unwrap_err();
        check(1, Some(err));
        assert_eq!(state().await, (1, 1, 1, Status::Running, 1, false));
        store.append(&id, plain(1, step(1))).await.unwrap();

        // A consuming append meets a conflict on every attempt.
        let consume = Append {
            run: 1,
            entry: signal_entry(2, &a),
            consume: Some(a.id.clone()),
            hold_until_heard: None,
        };
        let check = conflicts(TWI, RETRY_ATTEMPTS);
        let err = store.append(&id, consume.clone()).await.unwrap_err();
        check(RETRY_ATTEMPTS, Some(err));
        assert_eq!(state().await, (2, 1, 1, Status::Running, 1, false));
        store.append(&id, consume).await.unwrap();

        // A suspend meets conflicts on all but its last attempt.
        let check = conflicts(TWI, RETRY_ATTEMPTS - 1);
        let sus = Suspend {
            run: 1,
            journal_len: 3,
            inbox_version: 1,
            wake_at: None,
            waiting_on: "a signal".into(),
            at: at(3),
        };
        store.suspend(&id, sus).await.unwrap();
        check(RETRY_ATTEMPTS, None);
        assert_eq!(state().await, (3, 0, 1, Status::Waiting, 1, false));

        // A lease (one update): unavailable at once.
        let check = conflicts("UpdateItem", 1);
        let err = store
            .acquire_lease(&id, "d", at(100), at(4))
            .await
            .unwrap_err();
        check(1, Some(err));
        assert_eq!(state().await, (3, 0, 1, Status::Waiting, 1, false));
        store.acquire_lease(&id, "d", at(100), at(4)).await.unwrap();

        let c = ContinueAsNew {
            closing: entry(
                3,
                Event::ContinuedAsNew {
                    input: Payload::json(&2),
                },
            ),
            next: Entry {
                index: 0,
                at: at(5),
                event: Event::Started {
                    workflow: "wf".into(),
                    input: Payload::json(&2),
                    component: cairn_core::testing::test_component(),
                    seed: 1,
                    run: 2,
                    parent: None,
                },
            },
            run: 1,
        };
        let check = conflicts(TWI, RETRY_ATTEMPTS);
        let err = store.continue_as_new(&id, c.clone()).await.unwrap_err();
        check(RETRY_ATTEMPTS, Some(err));
        assert_eq!(state().await, (3, 0, 1, Status::Waiting, 1, true));
        store.continue_as_new(&id, c).await.unwrap();

        // The final entry of a store holding the lease is one update of
        // the meta, entry and status together (see the store's `inline`
        // module): it meets a conflict, unavailable at once, and nothing
        // is written (still running, the lease still held). The caller's
        // retry writes it; sent again after that, it is done, once.
        let check = conflicts("UpdateItem", 1);
        let done = plain(
            2,
            entry(
                1,
                Event::Completed {
                    output: Payload::json(&"ok"),
                },
            ),
        );
        let err = store.append(&id, done.clone()).await.unwrap_err();
        check(1, Some(err));
        assert_eq!(state().await, (1, 0, 1, Status::Running, 2, true));
        store.append(&id, done.clone()).await.unwrap();
        assert_eq!(state().await, (2, 0, 1, Status::Completed, 2, false));
        store.append(&id, done).await.unwrap();
        assert_eq!(state().await, (2, 0, 1, Status::Completed, 2, false));
        assert_eq!(rig.inbox_items(&id).await, 1);
        println!(
            "figure: fault_injections_survived_transaction_conflict={} injections",
            proxy.injected()[&Fault::TransactionConflict]
        );
    });
}

// ---------------------------------------------------------------------------
// Drivers racing in separate processes.
// ---------------------------------------------------------------------------

/// Steps before the signals, and signals, of the racing workflow.
const STEPS: u32 = 12;
const SIGNALS: u32 = 4;

/// What a driver does next, from what it loaded: the workflow "take
/// STEPS steps, then take SIGNALS signals in inbox order, then complete",
/// deterministic whoever drives it.
enum Next {
    Append(Append),
    Suspend(Suspend),
    Done,
}

fn next(ex: &Execution, now: Timestamp) -> Next {
    if ex.meta.status.is_terminal() {
        return Next::Done;
    }
    let len = ex.journal.len() as u32;
    let event = if len <= STEPS {
        Event::TimerFired {
            seq: len,
            duration_ms: u64::from(len),
        }
    } else if len <= STEPS + SIGNALS {
        let Some(item) = ex.inbox.first() else {
            return Next::Suspend(Suspend {
                run: ex.meta.run,
                journal_len: len,
                inbox_version: ex.meta.inbox_version,
                wake_at: None,
                waiting_on: "a signal".into(),
                at: now,
            });
        };
        let InboxMessage::Signal { name, payload } = &item.message else {
            panic!("not a signal")
        };
        return Next::Append(Append {
            run: ex.meta.run,
            entry: Entry {
                index: len,
                at: now,
                event: Event::SignalReceived {
                    seq: len,
                    name: name.clone(),
                    payload: payload.clone(),
                    inbox_id: item.id.clone(),
                },
            },
            consume: Some(item.id.clone()),
            hold_until_heard: None,
        });
    } else {
        Event::Completed {
            output: Payload::json(&len),
        }
    };
    Next::Append(Append {
        run: ex.meta.run,
        entry: Entry {
            index: len,
            at: now,
            event,
        },
        consume: None,
        hold_until_heard: None,
    })
}

/// What a racer saw.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Tally {
    /// Writes that went through.
    written: u64,
    /// `Conflict` answers (a refused condition: ConditionalCheckFailed).
    conflicts: u64,
    /// Transactions DynamoDB cancelled for a `TransactionConflict`.
    transaction_conflicts: u64,
    /// Other `Unavailable` answers (retried).
    unavailable: u64,
}

impl Tally {
    fn count<T>(&mut self, r: &Result<T, StoreError>) {
        match r {
            Ok(_) => self.written += 1,
            // Finished: another driver appended the final entry first.
            Err(StoreError::Conflict { .. } | StoreError::Finished { .. }) => self.conflicts += 1,
            Err(StoreError::Unavailable(m)) if m.contains("TransactionConflict") => {
                self.transaction_conflicts += 1
            }
            Err(StoreError::Unavailable(_)) => self.unavailable += 1,
            Err(e) => panic!("unexpected answer in a race: {e:?}"),
        }
    }

    fn line(&self) -> String {
        format!(
            "racer-tally: {} {} {} {}",
            self.written, self.conflicts, self.transaction_conflicts, self.unavailable
        )
    }

    fn parse(out: &str) -> Tally {
        let line = out
            .lines()
            .find_map(|l| l.split_once("racer-tally: ").map(|(_, t)| t))
            .unwrap_or_else(|| panic!("a racer printed no tally:\n{out}"));
        let n: Vec<u64> = line.split(' ').map(|n| n.parse().unwrap()).collect();
        Tally {
            written: n[0],
            conflicts: n[1],
            transaction_conflicts: n[2],
            unavailable: n[3],
        }
    }

    fn add(&mut self, o: Tally) {
        self.written += o.written;
        self.conflicts += o.conflicts;
        self.transaction_conflicts += o.transaction_conflicts;
        self.unavailable += o.unavailable;
    }
}

/// Drives `ids` until all have finished.
async fn drive(store: &DynamoStore, ids: &[ExecutionId]) -> Tally {
    let mut tally = Tally::default();
    let mut open: Vec<ExecutionId> = ids.to_vec();
    while !open.is_empty() {
        let mut still = Vec::new();
        for id in open {
            let ex = match store.load(&id).await {
                Ok(ex) => ex,
                Err(e) => {
                    tally.count::<()>(&Err(e));
                    still.push(id);
                    continue;
                }
            };
            match next(&ex, Timestamp::now_system()) {
                Next::Done => continue,
                Next::Append(a) => tally.count(&store.append(&id, a).await),
                Next::Suspend(s) => {
                    tally.count(&store.suspend(&id, s).await);
                    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                }
            }
            still.push(id);
        }
        open = still;
    }
    tally
}

/// Delivers the signals `sig-0..` to every id, in order, each by its key
/// (so retrying an unavailable answer is safe).
async fn send_signals(store: &DynamoStore, ids: &[ExecutionId]) -> Tally {
    let mut tally = Tally::default();
    for k in 0..SIGNALS {
        for id in ids {
            loop {
                let r = store
                    .deliver_once(
                        id,
                        &format!("sig-{k}"),
                        signal("s", k.into()),
                        Timestamp::now_system(),
                    )
                    .await;
                let retry = matches!(r, Err(StoreError::Unavailable(_)));
                tally.count(&r);
                if !retry {
                    break;
                }
            }
        }
        // Let the drivers catch up and suspend, so that deliveries and
        // suspensions race on the meta (shapes the race; nothing asserts it).
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    tally
}

/// The entry point of a racer process (a no-op in a normal test run): the
/// parent test runs this binary again with `CAIRN_FAULTS_RACER` set.
#[test]
fn racer_process() {
    let Ok(role) = std::env::var("CAIRN_FAULTS_RACER") else {
        return;
    };
    let table = std::env::var("CAIRN_FAULTS_TABLE").unwrap();
    let ids: Vec<ExecutionId> = std::env::var("CAIRN_FAULTS_IDS")
        .unwrap()
        .split(',')
        .map(|i| ExecutionId::new(i).unwrap())
        .collect();
    let tally = run(async {
        let store = DynamoStore::from_sdk_config(&sdk_config(&endpoint()).await, &table);
        match role.as_str() {
            "driver" => drive(&store, &ids).await,
            _ => send_signals(&store, &ids).await,
        }
    });
    println!("{}", tally.line());
}

fn spawn_racer(role: &str, table: &str, ids: &[ExecutionId]) -> std::process::Child {
    let ids: Vec<&str> = ids.iter().map(|i| i.as_str()).collect();
    std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "racer_process",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env("CAIRN_FAULTS_RACER", role)
        .env("CAIRN_FAULTS_TABLE", table)
        .env("CAIRN_FAULTS_IDS", ids.join(","))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("spawn a racer")
}

/// Three driver processes and two signalling processes race on the same
/// executions: real `ConditionalCheckFailed` and `TransactionConflict`
/// answers from DynamoDB Local. Every journal ends whole (indexes 0..n, no
/// gap, no duplicate) and equal, event for event, to an uninterrupted run's;
/// every signal is in the inbox once and consumed once.
#[test]
fn racing_driver_processes_keep_every_journal_whole() {
    run(async {
        let rig = Rig::new(5).await;
        let table = rig.direct.table().to_owned();

        // The uninterrupted run: one driver, the signals sent first.
        let solo = fresh_id("solo");
        rig.direct
            .create(new_execution(&solo, "race", b"1"))
            .await
            .unwrap();
        send_signals(&rig.direct, std::slice::from_ref(&solo)).await;
        drive(&rig.direct, std::slice::from_ref(&solo)).await;
        let reference: Vec<Event> = rig
            .direct
            .load(&solo)
            .await
            .unwrap()
            .journal
            .into_iter()
            .map(|e| e.event)
            .collect();
        assert_eq!(reference.len() as u32, 1 + STEPS + SIGNALS + 1);

        let mut tally = Tally::default();
        let mut rounds = 0;
        // Until the race has happened (it does at once, in practice).
        while rounds < 5 && tally.conflicts + tally.transaction_conflicts == 0 || rounds < 2 {
            rounds += 1;
            let ids: Vec<ExecutionId> = (0..4).map(|_| fresh_id("race")).collect();
            for id in &ids {
                rig.direct
                    .create(new_execution(id, "race", b"1"))
                    .await
                    .unwrap();
            }
            // Two signallers send the same keyed signals: each lands once.
            let racers: Vec<std::process::Child> = vec![
                spawn_racer("driver", &table, &ids),
                spawn_racer("signaller", &table, &ids),
                spawn_racer("driver", &table, &ids),
                spawn_racer("signaller", &table, &ids),
                spawn_racer("driver", &table, &ids),
            ];
            for r in racers {
                let out = r.wait_with_output().unwrap();
                assert!(out.status.success(), "a racer failed: {out:?}");
                tally.add(Tally::parse(&String::from_utf8_lossy(&out.stdout)));
            }
            for id in &ids {
                let ex = rig.direct.load(id).await.unwrap();
                assert_eq!(ex.meta.status, Status::Completed, "{id}");
                let indexes: Vec<u32> = ex.journal.iter().map(|e| e.index).collect();
                assert_eq!(
                    indexes,
                    (0..reference.len() as u32).collect::<Vec<_>>(),
                    "{id}: whole"
                );
                let events: Vec<Event> = ex.journal.into_iter().map(|e| e.event).collect();
                assert_eq!(events, reference, "{id}: as uninterrupted");
                assert!(ex.inbox.is_empty(), "{id}: every signal consumed");
                assert_eq!(
                    rig.inbox_items(id).await,
                    SIGNALS as usize,
                    "{id}: each signal once"
                );
                assert_eq!(ex.meta.inbox_version, u64::from(SIGNALS), "{id}");
            }
        }
        println!(
            "race: {rounds} rounds of 4 executions, 3 drivers and 2 signallers: {} writes, {} conflicts (ConditionalCheckFailed), {} TransactionConflicts, {} other retried errors",
            tally.written, tally.conflicts, tally.transaction_conflicts, tally.unavailable
        );
        println!(
            "figure: race_conflicts_seen={} answers",
            tally.conflicts + tally.transaction_conflicts
        );
        assert!(
            tally.conflicts + tally.transaction_conflicts > 0,
            "the drivers raced: {tally:?}"
        );
    });
}
