//! The shared store test suite: every [`Store`] implementation runs it.
//!
//! ```ignore
//! cairn_core::store_suite_tests!(cairn_core::store_suite::block_on, async { ((), MyStore::new()) });
//! ```
//!
//! The first argument runs a future to completion (a store that needs tokio
//! passes a function that builds a runtime); the second makes `(guard,
//! store)`: the guard (a temp dir, an emulator handle) lives as long as the
//! test. Every check uses fresh execution ids, so one store may serve all.

use crate::store::*;
use crate::{
    ComponentHash, Entry, Event, ExecutionId, Failure, FailureKind, Payload, Timestamp, input_hash,
};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Wake, Waker};

/// Generates one `#[test]` per suite check.
#[macro_export]
macro_rules! store_suite_tests {
    ($runner:path, $make:expr) => {
        $crate::store_suite_tests!(@tests $runner, $make,
            create_then_load, create_is_idempotent, append_requires_the_next_index,
            final_entry_sets_the_status, deliver_bumps_the_inbox_version_in_order,
            consuming_an_inbox_item_is_atomic_with_its_entry, suspend_checks_the_inbox_version,
            suspend_checks_the_journal_length, due_lists_waiting_executions_by_wake_time,
            list_filters_by_status_and_workflow, park_and_unpark, unknown_executions_are_not_found,
            components_and_workflow_registry, components_can_be_listed_and_deleted,
            racing_appends_have_one_winner,
            large_journals_load_whole_and_in_order, payloads_survive_byte_for_byte,
            continue_as_new_starts_a_fresh_journal, keyed_deliveries_happen_once,
            a_held_final_entry_is_due_until_settled);
    };
    (leases: $runner:path, $make:expr) => {
        $crate::store_suite_tests!(@tests $runner, $make,
            a_held_lease_keeps_other_drivers_out, an_expired_lease_is_due_and_can_be_taken,
            suspend_and_final_append_release_the_lease);
    };
    (@tests $runner:path, $make:expr, $($name:ident),*) => {
        $(
            #[test]
            fn $name() {
                $runner(async {
                    let (_guard, store) = $make.await;
                    $crate::store_suite::$name(&store).await;
                })
            }
        )*
    };
}

/// Runs a future on the current thread (for stores that need no runtime).
pub fn block_on<F: Future>(fut: F) -> F::Output {
    struct Signal(Mutex<bool>, Condvar);
    impl Wake for Signal {
        fn wake(self: Arc<Self>) {
            *self.0.lock().unwrap() = true;
            self.1.notify_one();
        }
    }
    let signal = Arc::new(Signal(Mutex::new(false), Condvar::new()));
    let waker = Waker::from(signal.clone());
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        let mut woken = signal.0.lock().unwrap();
        while !*woken {
            woken = signal.1.wait(woken).unwrap();
        }
        *woken = false;
    }
}

/// Polls all futures concurrently until all are done (no runtime needed).
pub async fn join_all<T>(futs: Vec<Pin<Box<dyn Future<Output = T> + Send + '_>>>) -> Vec<T> {
    let mut futs: Vec<_> = futs.into_iter().map(Some).collect();
    let mut out: Vec<Option<T>> = (0..futs.len()).map(|_| None).collect();
    std::future::poll_fn(move |cx| {
        let mut pending = false;
        for (i, slot) in futs.iter_mut().enumerate() {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => {
                        out[i] = Some(v);
                        *slot = None;
                    }
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(out.drain(..).map(|v| v.expect("ready")).collect())
        }
    })
    .await
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh execution id for one check.
pub fn fresh_id(check: &str) -> ExecutionId {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = Timestamp::now_system().as_millis();
    ExecutionId::new(format!("suite-{check}-{t:x}-{n}")).expect("valid id")
}

fn hash() -> ComponentHash {
    crate::testing::test_component()
}

const T0: Timestamp = Timestamp::from_millis(1_767_225_600_000);

fn at(secs: u64) -> Timestamp {
    T0.plus(std::time::Duration::from_secs(secs))
}

/// A new execution of workflow `wf` with `input`.
pub fn new_execution(id: &ExecutionId, wf: &str, input: &[u8]) -> NewExecution {
    let meta = ExecutionMeta {
        id: id.clone(),
        workflow: wf.into(),
        component: hash(),
        status: Status::Running,
        input_hash: input_hash(input),
        created_at: T0,
        updated_at: T0,
        inbox_version: 0,
        wake_at: None,
        due_at: None,
        waiting_on: None,
        parked: None,
        run: 1,
        lease: None,
    };
    let started = Entry {
        index: 0,
        at: T0,
        event: Event::Started {
            workflow: wf.into(),
            input: Payload::new(input),
            component: hash(),
            seed: 7,
            run: 1,
            parent: None,
        },
    };
    NewExecution { meta, started }
}

/// Run 1 of a journal whose entry 0 is `started` closed at `index` (time
/// `at`), continued as run 2 with the same start (input `"2"`).
pub fn continue_run_1(started: &Entry, index: u32, at: Timestamp) -> ContinueAsNew {
    ContinueAsNew {
        closing: Entry {
            index,
            at,
            event: Event::ContinuedAsNew {
                input: Payload::from("2"),
            },
        },
        next: Entry {
            index: 0,
            ..started.clone()
        },
        run: 1,
    }
}

fn activity(index: u32, seq: u32) -> Append {
    Append {
        run: 1,
        entry: Entry {
            index,
            at: at(u64::from(index)),
            event: Event::ActivityCompleted {
                seq,
                name: "step".into(),
                input_hash: 1,
                attempts: 1,
                result: Ok(Payload::from(format!("{{\"step\":{seq}}}").as_str())),
            },
        },
        consume: None,
        hold_until_heard: None,
    }
}

async fn created<S: Store + ?Sized>(store: &S, check: &str) -> ExecutionId {
    let id = fresh_id(check);
    assert_eq!(
        store
            .create(new_execution(&id, "wf", b"{\"n\":1}"))
            .await
            .unwrap(),
        Created::New
    );
    id
}

fn signal(name: &str) -> InboxMessage {
    InboxMessage::Signal {
        name: name.into(),
        payload: Payload::from("{\"ok\":true}"),
    }
}

fn suspend(len: u32, version: u64, wake: Option<Timestamp>) -> Suspend {
    Suspend {
        run: 1,
        journal_len: len,
        inbox_version: version,
        wake_at: wake,
        waiting_on: "a timer".into(),
        at: at(50),
    }
}

fn assert_conflict<T: std::fmt::Debug>(r: Result<T, StoreError>, what: &str) {
    match r {
        Err(StoreError::Conflict { .. }) => {}
        other => panic!("{what}: expected a conflict, got {other:?}"),
    }
}

/// A created execution loads with its meta, its `started` entry and no inbox.
pub async fn create_then_load<S: Store + ?Sized>(store: &S) {
    let id = created(store, "load").await;
    let ex = store.load(&id).await.unwrap();
    assert_eq!(ex.meta.id, id);
    assert_eq!(ex.meta.status, Status::Running);
    assert_eq!(ex.meta.workflow, "wf");
    assert_eq!(ex.journal.len(), 1);
    assert!(matches!(ex.journal[0].event, Event::Started { .. }));
    assert!(ex.inbox.is_empty());
    assert_eq!(store.meta(&id).await.unwrap(), ex.meta);
}

/// Same id + same input returns the existing execution; anything else is refused.
pub async fn create_is_idempotent<S: Store + ?Sized>(store: &S) {
    let id = created(store, "idem").await;
    store.append(&id, activity(1, 1)).await.unwrap();
    match store
        .create(new_execution(&id, "wf", b"{\"n\":1}"))
        .await
        .unwrap()
    {
        Created::Existing(meta) => assert_eq!(meta.id, id),
        other => panic!("expected the existing execution, got {other:?}"),
    }
    let err = store
        .create(new_execution(&id, "wf", b"{\"n\":2}"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Exists { .. }), "{err:?}");
    let err = store
        .create(new_execution(&id, "other", b"{\"n\":1}"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("workflow 'wf'"), "{err}");
    // Nothing was overwritten.
    assert_eq!(store.load(&id).await.unwrap().journal.len(), 2);
}

/// Entry n is written only when the journal has no entry n: the first
/// writer of an index wins, a later one (a stale driver) conflicts.
pub async fn append_requires_the_next_index<S: Store + ?Sized>(store: &S) {
    let id = created(store, "append").await;
    assert_conflict(
        store.append(&id, activity(0, 9)).await,
        "overwriting the started entry",
    );
    store.append(&id, activity(1, 1)).await.unwrap();
    assert_conflict(store.append(&id, activity(1, 2)).await, "duplicate index");
    store.append(&id, activity(2, 2)).await.unwrap();
    let journal = store.load(&id).await.unwrap().journal;
    assert_eq!(
        journal.iter().map(|e| e.index).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    assert_eq!(
        journal[1].event.seq(),
        Some(1),
        "the first writer of index 1 won"
    );
}

/// A final entry sets the status with it; the execution then refuses changes.
pub async fn final_entry_sets_the_status<S: Store + ?Sized>(store: &S) {
    for (event, status) in [
        (
            Event::Completed {
                output: Payload::from("1"),
            },
            Status::Completed,
        ),
        (
            Event::Failed {
                failure: Failure::new(FailureKind::NonRetryable, "no"),
            },
            Status::Failed,
        ),
        (
            Event::Failed {
                failure: Failure::new(FailureKind::Cancelled, "stop"),
            },
            Status::Cancelled,
        ),
    ] {
        let id = created(store, "final").await;
        store
            .suspend(&id, suspend(1, 0, Some(at(60))))
            .await
            .unwrap();
        store
            .append(
                &id,
                Append {
                    run: 1,
                    entry: Entry {
                        index: 1,
                        at: at(9),
                        event,
                    },
                    consume: None,
                    hold_until_heard: None,
                },
            )
            .await
            .unwrap();
        let meta = store.meta(&id).await.unwrap();
        assert_eq!(meta.status, status);
        assert_eq!(meta.wake_at, None, "a finished execution has no wake");
        // A final entry closes the journal for drivers (they load before they
        // append); stores need not re-check it on every append.
        let err = store
            .deliver(&id, signal("late"), at(10))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Finished { .. }), "{err:?}");
        assert!(
            store
                .due(at(1000), 1000)
                .await
                .unwrap()
                .iter()
                .all(|(d, _)| d != &id)
        );
    }
}

/// A final entry written with a hold (a child whose parent has not heard
/// yet) leaves the execution due at the hold, with no wake, until
/// [`Store::settle`]; both the plain and the consuming final append.
pub async fn a_held_final_entry_is_due_until_settled<S: Store + ?Sized>(store: &S) {
    let is_due = |id: ExecutionId| async move {
        store
            .due(at(1000), 1000)
            .await
            .unwrap()
            .into_iter()
            .find(|(d, _)| d == &id)
            .map(|(_, t)| t)
    };
    for consuming in [false, true] {
        let id = created(store, "held").await;
        let consume = if consuming {
            Some(store.deliver(&id, signal("go"), at(5)).await.unwrap().id)
        } else {
            None
        };
        store
            .suspend(&id, suspend(1, u64::from(consuming), Some(at(60))))
            .await
            .unwrap();
        store
            .append(
                &id,
                Append {
                    run: 1,
                    entry: Entry {
                        index: 1,
                        at: at(9),
                        event: Event::Completed {
                            output: Payload::from("1"),
                        },
                    },
                    consume,
                    hold_until_heard: Some(at(40)),
                },
            )
            .await
            .unwrap();
        let meta = store.meta(&id).await.unwrap();
        assert_eq!(meta.status, Status::Completed);
        assert_eq!(meta.wake_at, None, "a hold is not a wake: {meta:?}");
        assert_eq!(meta.due_at, Some(at(40)), "{meta:?}");
        assert_eq!(is_due(id.clone()).await, Some(at(40)));
        store.settle(&id).await.unwrap();
        assert_eq!(store.meta(&id).await.unwrap().due_at, None);
        assert_eq!(is_due(id.clone()).await, None);
        // Settling again, or an execution that never held, changes nothing.
        store.settle(&id).await.unwrap();
    }
    let waiting = created(store, "held").await;
    store
        .suspend(&waiting, suspend(1, 0, Some(at(60))))
        .await
        .unwrap();
    store.settle(&waiting).await.unwrap();
    assert_eq!(
        is_due(waiting.clone()).await,
        Some(at(60)),
        "a wake is not a hold"
    );
    let err = store.settle(&fresh_id("nobody")).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
}

/// Each inbox write bumps the version; items come back oldest first.
pub async fn deliver_bumps_the_inbox_version_in_order<S: Store + ?Sized>(store: &S) {
    let id = created(store, "inbox").await;
    let mut ids = Vec::new();
    for (i, name) in ["a", "b", "c"].iter().enumerate() {
        let item = store
            .deliver(&id, signal(name), at(i as u64))
            .await
            .unwrap();
        assert_eq!(store.meta(&id).await.unwrap().inbox_version, i as u64 + 1);
        ids.push(item.id);
    }
    let item = store
        .deliver(&id, InboxMessage::Cancel { reason: "r".into() }, at(5))
        .await
        .unwrap();
    ids.push(item.id);
    let ex = store.load(&id).await.unwrap();
    assert_eq!(ex.meta.inbox_version, 4);
    assert_eq!(
        ex.inbox.iter().map(|i| i.id.clone()).collect::<Vec<_>>(),
        ids
    );
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(sorted, ids, "inbox ids sort by arrival");
    assert_eq!(
        ex.inbox[3].message,
        InboxMessage::Cancel { reason: "r".into() }
    );
}

/// A signal entry and the removal of its inbox item happen together.
pub async fn consuming_an_inbox_item_is_atomic_with_its_entry<S: Store + ?Sized>(store: &S) {
    let id = created(store, "consume").await;
    let item = store.deliver(&id, signal("go"), at(1)).await.unwrap();
    let received = |index: u32| Append {
        run: 1,
        entry: Entry {
            index,
            at: at(2),
            event: Event::SignalReceived {
                seq: 1,
                name: "go".into(),
                payload: Payload::from("{\"ok\":true}"),
                inbox_id: item.id.clone(),
            },
        },
        consume: Some(item.id.clone()),
        hold_until_heard: None,
    };
    store.append(&id, received(1)).await.unwrap();
    let ex = store.load(&id).await.unwrap();
    assert!(ex.inbox.is_empty());
    assert_eq!(ex.journal.len(), 2);
    // Consuming it again (at the next index) fails and writes nothing.
    assert_conflict(store.append(&id, received(2)).await, "double consume");
    assert_eq!(store.load(&id).await.unwrap().journal.len(), 2);
}

/// A suspend is refused when the inbox changed since the load.
pub async fn suspend_checks_the_inbox_version<S: Store + ?Sized>(store: &S) {
    let id = created(store, "suspend-inbox").await;
    store.deliver(&id, signal("x"), at(1)).await.unwrap();
    assert_conflict(
        store.suspend(&id, suspend(1, 0, None)).await,
        "stale inbox version",
    );
    assert_eq!(store.meta(&id).await.unwrap().status, Status::Running);
    store
        .suspend(&id, suspend(1, 1, Some(at(30))))
        .await
        .unwrap();
    let meta = store.meta(&id).await.unwrap();
    assert_eq!(meta.status, Status::Waiting);
    assert_eq!(meta.wake_at, Some(at(30)));
    assert_eq!(meta.waiting_on.as_deref(), Some("a timer"));
}

/// A suspend is refused when another driver appended since the load.
pub async fn suspend_checks_the_journal_length<S: Store + ?Sized>(store: &S) {
    let id = created(store, "suspend-len").await;
    store.append(&id, activity(1, 1)).await.unwrap();
    assert_conflict(
        store.suspend(&id, suspend(1, 0, None)).await,
        "stale journal length",
    );
    store.suspend(&id, suspend(2, 0, None)).await.unwrap();
}

/// `due` finds waiting executions whose wake time has come.
pub async fn due_lists_waiting_executions_by_wake_time<S: Store + ?Sized>(store: &S) {
    let late = created(store, "due-late").await;
    let early = created(store, "due-early").await;
    let future = created(store, "due-future").await;
    store
        .suspend(&late, suspend(1, 0, Some(at(20))))
        .await
        .unwrap();
    store
        .suspend(&early, suspend(1, 0, Some(at(10))))
        .await
        .unwrap();
    store
        .suspend(&future, suspend(1, 0, Some(at(1_000_000))))
        .await
        .unwrap();
    let due: Vec<(ExecutionId, Timestamp)> = store
        .due(at(30), 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|(id, _)| id == &late || id == &early || id == &future)
        .collect();
    assert_eq!(due, vec![(early, at(10)), (late, at(20))]);
}

/// `list` filters by status and workflow, newest first.
pub async fn list_filters_by_status_and_workflow<S: Store + ?Sized>(store: &S) {
    let wf = format!("list-{}", fresh_id("wf").as_str().replace('-', "_"));
    let a = fresh_id("list-a");
    let b = fresh_id("list-b");
    store.create(new_execution(&a, &wf, b"1")).await.unwrap();
    store.create(new_execution(&b, &wf, b"2")).await.unwrap();
    store.suspend(&b, suspend(1, 0, None)).await.unwrap();
    let all = store
        .list(ListFilter {
            workflow: Some(wf.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|m| m.id.clone()).collect::<Vec<_>>(),
        vec![b.clone(), a.clone()]
    );
    let waiting = store
        .list(ListFilter {
            workflow: Some(wf.clone()),
            status: vec![Status::Waiting],
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(
        waiting.iter().map(|m| m.id.clone()).collect::<Vec<_>>(),
        vec![b]
    );
    let one = store
        .list(ListFilter {
            workflow: Some(wf),
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
}

/// A parked execution keeps its journal and says why it was parked.
pub async fn park_and_unpark<S: Store + ?Sized>(store: &S) {
    let id = created(store, "park").await;
    store.append(&id, activity(1, 1)).await.unwrap();
    let info = crate::Nondeterminism {
        code: crate::ErrorCode::NondeterministicOperation,
        index: 1,
        expected: "activity 'a'".into(),
        got: "asked for 'b'".into(),
    };
    store.park(&id, info.clone(), at(3)).await.unwrap();
    let ex = store.load(&id).await.unwrap();
    assert_eq!(ex.meta.status, Status::Parked);
    assert_eq!(ex.meta.parked, Some(info));
    assert_eq!(ex.journal.len(), 2);
    assert_conflict(
        store.suspend(&id, suspend(2, 0, None)).await,
        "suspend while parked",
    );
    store.unpark(&id).await.unwrap();
    let meta = store.meta(&id).await.unwrap();
    assert_eq!((meta.status, meta.parked), (Status::Running, None));
}

/// Every call on an unknown id says so.
pub async fn unknown_executions_are_not_found<S: Store + ?Sized>(store: &S) {
    let id = fresh_id("nobody");
    let nf = |e: StoreError| assert!(matches!(e, StoreError::NotFound(_)), "{e:?}");
    nf(store.load(&id).await.unwrap_err());
    nf(store.meta(&id).await.unwrap_err());
    // (append is not checked: a driver appends only to what it loaded.)
    nf(store.suspend(&id, suspend(1, 0, None)).await.unwrap_err());
    nf(store.deliver(&id, signal("x"), at(1)).await.unwrap_err());
}

/// Components are stored by hash; workflow names point at one.
pub async fn components_and_workflow_registry<S: Store + ?Sized>(store: &S) {
    let h = ComponentHash::parse(&format!(
        "{:064x}",
        COUNTER.fetch_add(1, Ordering::Relaxed) + 0xabc
    ))
    .unwrap();
    assert_eq!(store.get_component(&h).await.unwrap(), None);
    store.put_component(&h, b"\0asm bytes").await.unwrap();
    store.put_component(&h, b"\0asm bytes").await.unwrap();
    assert_eq!(
        store.get_component(&h).await.unwrap().as_deref(),
        Some(&b"\0asm bytes"[..])
    );
    let name = format!("wf-{}", h.short());
    assert_eq!(store.workflow_component(&name).await.unwrap(), None);
    store.set_workflow_component(&name, &h).await.unwrap();
    assert_eq!(store.workflow_component(&name).await.unwrap(), Some(h));
}

/// Stored components and workflow pointers can be listed; a deleted
/// component is gone whole (all of its bytes, however they are stored), and
/// the others are untouched.
pub async fn components_can_be_listed_and_deleted<S: Store + ?Sized>(store: &S) {
    let fresh = || {
        ComponentHash::parse(&format!(
            "{:064x}",
            COUNTER.fetch_add(1, Ordering::Relaxed) + 0xdead_0000
        ))
        .unwrap()
    };
    let (small, large) = (fresh(), fresh());
    // Large enough to span several records in a store that chunks.
    let big: Vec<u8> = (0..800_000u32).map(|i| (i % 251) as u8).collect();
    store.put_component(&small, b"\0asm small").await.unwrap();
    store.put_component(&large, &big).await.unwrap();
    let listed = store.list_components().await.unwrap();
    assert!(listed.contains(&(small.clone(), 10)), "{listed:?}");
    assert!(
        listed.contains(&(large.clone(), big.len() as u64)),
        "{listed:?}"
    );
    let name = format!("wf-{}", small.short());
    store.set_workflow_component(&name, &small).await.unwrap();
    let workflows = store.list_workflows().await.unwrap();
    assert!(
        workflows.contains(&(name.clone(), small.clone())),
        "{workflows:?}"
    );

    assert!(store.delete_component(&large).await.unwrap());
    assert_eq!(store.get_component(&large).await.unwrap(), None);
    let listed = store.list_components().await.unwrap();
    assert!(!listed.iter().any(|(h, _)| h == &large), "{listed:?}");
    assert!(
        !store.delete_component(&large).await.unwrap(),
        "deleting again finds nothing"
    );
    // The other component and the pointers are untouched.
    assert!(listed.contains(&(small.clone(), 10)), "{listed:?}");
    assert_eq!(
        store.get_component(&small).await.unwrap().as_deref(),
        Some(&b"\0asm small"[..])
    );
    assert_eq!(store.list_workflows().await.unwrap(), workflows);
    // A deleted component can be stored again (a rollback re-registers it).
    store.put_component(&large, &big).await.unwrap();
    assert_eq!(store.get_component(&large).await.unwrap(), Some(big));
}

/// Eight drivers append the same index at once: exactly one wins.
pub async fn racing_appends_have_one_winner<S: Store + ?Sized>(store: &S) {
    for round in 0..5u32 {
        let id = created(store, "race").await;
        let futs = (0..8u32)
            .map(|d| {
                let id = id.clone();
                Box::pin(async move { store.append(&id, activity(1, 100 + d)).await })
                    as Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send>>
            })
            .collect();
        let results: Vec<Result<(), StoreError>> = join_all(futs).await;
        let wins = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(wins, 1, "round {round}: {results:?}");
        for r in results.into_iter().filter(Result::is_err) {
            assert_conflict(r, "loser");
        }
        assert_eq!(store.load(&id).await.unwrap().journal.len(), 2);
    }
}

/// A journal of many large entries loads whole, in order.
pub async fn large_journals_load_whole_and_in_order<S: Store + ?Sized>(store: &S) {
    let id = created(store, "large").await;
    let big = "x".repeat(90_000);
    for i in 1..=15u32 {
        let entry = Entry {
            index: i,
            at: at(u64::from(i)),
            event: Event::ActivityCompleted {
                seq: i,
                name: "big".into(),
                input_hash: 1,
                attempts: 1,
                result: Ok(Payload::json(&big)),
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
    }
    for i in 16..=120u32 {
        store.append(&id, activity(i, i)).await.unwrap();
    }
    let journal = store.load(&id).await.unwrap().journal;
    assert_eq!(journal.len(), 121);
    assert!(
        journal
            .iter()
            .enumerate()
            .all(|(i, e)| e.index as usize == i)
    );
}

/// Payload bytes come back exactly as written, JSON or not.
pub async fn payloads_survive_byte_for_byte<S: Store + ?Sized>(store: &S) {
    let id = fresh_id("bytes");
    let input = b"{ \"spaced\" :  [1, 2.50, \"\\u00e9\"] }";
    store.create(new_execution(&id, "wf", input)).await.unwrap();
    let binary = Payload::new(vec![0u8, 255, 10, 13, 34]);
    let item = store
        .deliver(
            &id,
            InboxMessage::Signal {
                name: "bin".into(),
                payload: binary.clone(),
            },
            at(1),
        )
        .await
        .unwrap();
    let ex = store.load(&id).await.unwrap();
    let Event::Started { input: stored, .. } = &ex.journal[0].event else {
        panic!()
    };
    assert_eq!(stored.as_bytes(), input);
    assert_eq!(ex.inbox[0].id, item.id);
    assert_eq!(
        ex.inbox[0].message,
        InboxMessage::Signal {
            name: "bin".into(),
            payload: binary
        }
    );
}

/// Continue-as-new closes the run and starts the next under the same id;
/// the inbox carries over; older runs stay readable.
pub async fn continue_as_new_starts_a_fresh_journal<S: Store + ?Sized>(store: &S) {
    let id = created(store, "can").await;
    store.append(&id, activity(1, 1)).await.unwrap();
    store.deliver(&id, signal("later"), at(2)).await.unwrap();
    let next_started = |run: u32| Entry {
        index: 0,
        at: at(10),
        event: Event::Started {
            workflow: "wf".into(),
            input: Payload::from("{\"n\":2}"),
            component: hash(),
            seed: 7,
            run,
            parent: None,
        },
    };
    let closing = Entry {
        index: 2,
        at: at(10),
        event: Event::ContinuedAsNew {
            input: Payload::from("{\"n\":2}"),
        },
    };
    store
        .suspend(&id, suspend(2, 1, Some(at(99))))
        .await
        .unwrap();
    assert_conflict(
        store
            .suspend(
                &id,
                Suspend {
                    run: 2,
                    ..suspend(2, 1, None)
                },
            )
            .await,
        "suspend of a run that does not exist",
    );
    store
        .continue_as_new(
            &id,
            ContinueAsNew {
                closing: closing.clone(),
                next: next_started(2),
                run: 1,
            },
        )
        .await
        .unwrap();
    let ex = store.load(&id).await.unwrap();
    assert_eq!(
        (ex.meta.run, ex.meta.status, ex.meta.wake_at),
        (2, Status::Running, None)
    );
    assert_eq!(ex.journal.len(), 1, "a fresh journal");
    assert!(matches!(ex.journal[0].event, Event::Started { run: 2, .. }));
    assert_eq!(ex.inbox.len(), 1, "the inbox carries over");
    let old = store.load_run(&id, 1).await.unwrap();
    assert_eq!(old.len(), 3);
    assert_eq!(old[2].event, closing.event);
    // A stale driver closing run 1 again (its own closing entry, written at
    // its own time) conflicts. (The very same entry again may be reported
    // done: a store whose replies can be lost recognises its own write.)
    assert_conflict(
        store
            .continue_as_new(
                &id,
                ContinueAsNew {
                    closing: Entry {
                        at: at(11),
                        ..closing
                    },
                    next: next_started(2),
                    run: 1,
                },
            )
            .await,
        "stale continue",
    );
    // A driver still on run 1 cannot write into run 2; run 2 takes appends from index 1.
    assert_conflict(
        store.append(&id, activity(1, 9)).await,
        "append from a stale run",
    );
    store
        .append(
            &id,
            Append {
                run: 2,
                ..activity(1, 1)
            },
        )
        .await
        .unwrap();
    assert_eq!(store.load(&id).await.unwrap().journal.len(), 2);
    assert_eq!(store.load_run(&id, 2).await.unwrap().len(), 2);
    assert_eq!(store.meta(&id).await.unwrap().run, 2);
}

/// A keyed delivery happens once, even after it was consumed.
pub async fn keyed_deliveries_happen_once<S: Store + ?Sized>(store: &S) {
    let id = created(store, "once").await;
    let msg = || InboxMessage::Cancel {
        reason: "by parent".into(),
    };
    let item = store
        .deliver_once(&id, "cancel.parent", msg(), at(1))
        .await
        .unwrap()
        .expect("first delivery");
    assert_eq!(item.id, "cancel.parent");
    assert_eq!(
        store
            .deliver_once(&id, "cancel.parent", msg(), at(2))
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.meta(&id).await.unwrap().inbox_version, 1);
    let consume = Append {
        run: 1,
        entry: Entry {
            index: 1,
            at: at(3),
            event: Event::CancelRequested {
                reason: "by parent".into(),
                inbox_id: item.id.clone(),
            },
        },
        consume: Some(item.id.clone()),
        hold_until_heard: None,
    };
    store.append(&id, consume).await.unwrap();
    assert_eq!(
        store
            .deliver_once(&id, "cancel.parent", msg(), at(4))
            .await
            .unwrap(),
        None,
        "consumed stays delivered"
    );
    let ex = store.load(&id).await.unwrap();
    assert!(ex.inbox.is_empty());
    assert_eq!(ex.meta.inbox_version, 1);
    let child = InboxMessage::ChildCompleted {
        child_id: fresh_id("child"),
        result: Ok(Payload::from("1")),
    };
    let got = store
        .deliver_once(&id, "child.x", child.clone(), at(5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.message, child);
    assert_eq!(store.load(&id).await.unwrap().inbox[0].message, child);
}

/// A lease keeps other drivers out until it expires; its holder renews it;
/// a lost lease cannot be renewed.
pub async fn a_held_lease_keeps_other_drivers_out<S: Store + ?Sized>(store: &S) {
    let id = created(store, "lease-held").await;
    store.acquire_lease(&id, "a", at(30), at(0)).await.unwrap();
    match store.acquire_lease(&id, "b", at(40), at(10)).await {
        Err(StoreError::Leased { owner, until, .. }) => {
            assert_eq!((owner.as_str(), until), ("a", at(30)))
        }
        other => panic!("b took a held lease: {other:?}"),
    }
    // Its holder may take it again (a retried call) and renew it.
    store.acquire_lease(&id, "a", at(35), at(10)).await.unwrap();
    store.renew_lease(&id, "a", at(60)).await.unwrap();
    let m = store.meta(&id).await.unwrap();
    assert_eq!(
        m.lease.as_ref().map(|l| (l.owner.as_str(), l.until)),
        Some(("a", at(60)))
    );
    assert_eq!(
        m.due_at,
        Some(at(60)),
        "the lease's expiry is when the sweep looks"
    );
    assert!(
        matches!(
            store.renew_lease(&id, "b", at(70)).await,
            Err(StoreError::Conflict { .. })
        ),
        "only the holder renews"
    );
    // Released by another: nothing happens.
    store.release_lease(&id, "b", None).await.unwrap();
    assert_eq!(store.meta(&id).await.unwrap().lease.unwrap().owner, "a");
    store.release_lease(&id, "a", Some(at(61))).await.unwrap();
    let m = store.meta(&id).await.unwrap();
    assert_eq!((m.lease, m.due_at), (None, Some(at(61))));
    assert!(
        matches!(
            store.renew_lease(&id, "a", at(80)).await,
            Err(StoreError::Conflict { .. })
        ),
        "a released lease is not renewed"
    );
    assert!(matches!(
        store
            .acquire_lease(&fresh_id("lease-none"), "a", at(1), at(0))
            .await,
        Err(StoreError::NotFound(_))
    ));
}

/// A driver that died leaves a lease that expires: the execution is then
/// due (the sweep finds it, however old) and another driver takes it.
pub async fn an_expired_lease_is_due_and_can_be_taken<S: Store + ?Sized>(store: &S) {
    let id = created(store, "lease-expired").await;
    store
        .acquire_lease(&id, "dead", at(20), at(0))
        .await
        .unwrap();
    let id_ = id.clone();
    let due = |now| {
        let id = id_.clone();
        async move {
            store
                .due(now, 100_000)
                .await
                .unwrap()
                .into_iter()
                .filter(|(d, _)| d == &id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(due(at(19)).await, vec![], "not due while the lease holds");
    assert_eq!(due(at(20)).await, vec![(id.clone(), at(20))]);
    store
        .acquire_lease(&id, "next", at(50), at(20))
        .await
        .unwrap();
    assert_eq!(store.meta(&id).await.unwrap().lease.unwrap().owner, "next");
    assert!(
        matches!(
            store.renew_lease(&id, "dead", at(90)).await,
            Err(StoreError::Conflict { .. })
        ),
        "the dead driver's lease is gone"
    );
}

/// The write that ends an advance (suspend, final append) releases the
/// lease; a finished execution takes no lease.
pub async fn suspend_and_final_append_release_the_lease<S: Store + ?Sized>(store: &S) {
    let id = created(store, "lease-release").await;
    store.acquire_lease(&id, "a", at(30), at(0)).await.unwrap();
    store
        .suspend(&id, suspend(1, 0, Some(at(500))))
        .await
        .unwrap();
    let m = store.meta(&id).await.unwrap();
    assert_eq!(
        (m.lease, m.wake_at, m.due_at),
        (None, Some(at(500)), Some(at(500)))
    );
    // Taking a lease leaves the due time (the execution is due when there
    // is work, and a sweep meeting the lease stands back); renewing it
    // makes the execution due at the new expiry, never the wake the
    // workflow waits for.
    store.acquire_lease(&id, "b", at(40), at(1)).await.unwrap();
    let m = store.meta(&id).await.unwrap();
    assert_eq!((m.wake_at, m.due_at), (Some(at(500)), Some(at(500))));
    store.renew_lease(&id, "b", at(45)).await.unwrap();
    let m = store.meta(&id).await.unwrap();
    assert_eq!((m.wake_at, m.due_at), (Some(at(500)), Some(at(45))));
    let done = Append {
        run: 1,
        entry: Entry {
            index: 1,
            at: at(2),
            event: Event::Completed {
                output: Payload::json(&serde_json::json!(1)),
            },
        },
        consume: None,
        hold_until_heard: None,
    };
    store.append(&id, done).await.unwrap();
    let m = store.meta(&id).await.unwrap();
    assert_eq!((m.lease, m.wake_at, m.due_at), (None, None, None));
    assert!(matches!(
        store.acquire_lease(&id, "c", at(50), at(3)).await,
        Err(StoreError::Finished { .. })
    ));
}
