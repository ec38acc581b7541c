//! Malformed input, property-tested: journal entry decoding and the replay
//! state machine must answer anything with a value or an error, never a
//! panic; well-formed entries survive an encode/decode round trip; a journal
//! written by a run replays to the same answers.
//!
//! Bounded so `scripts/test` runs it every time (`CAIRN_FUZZ_CASES` raises
//! the number of cases for a longer local pass). Seeds that once failed are
//! kept in `tests/corpus/fuzz.proptest-regressions` (proptest replays them
//! first); hand-written malformed entries in `tests/corpus/entries/` are
//! decoded by `the_corpus_decodes_to_values_or_errors` and seed the mutation
//! strategy.

use cairn_core::entry::{decode, encode};
use cairn_core::replay::ReplayError;
use cairn_core::{
    ComponentHash, Entry, Event, ExecutionId, Failure, FailureKind, Operation, ParentRef, Payload,
    Replay, Timestamp, Wait,
};
#[path = "support/fuzzing.rs"]
mod fuzzing;

use proptest::prelude::*;
use serde_json::Value;

// ---- generators ------------------------------------------------------------

const WORDS: &[&str] = &[
    "v",
    "at",
    "e",
    "started",
    "activity-completed",
    "activity-retrying",
    "timer-started",
    "timer-fired",
    "signal-received",
    "child-started",
    "child-completed",
    "cancel-requested",
    "completed",
    "failed",
    "continued-as-new",
    "workflow",
    "input",
    "component",
    "seed",
    "run",
    "parent",
    "id",
    "seq",
    "name",
    "input_hash",
    "attempts",
    "result",
    "Ok",
    "Err",
    "kind",
    "message",
    "details",
    "retry_at",
    "failure",
    "duration_ms",
    "fire_at",
    "payload",
    "inbox_id",
    "child_id",
    "reason",
    "output",
    "$bytes",
    "application",
    "non-retryable",
    "timeout",
    "cancelled",
];

fn payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        // What the SDK writes: compact JSON.
        3 => fuzzing::json(WORDS).prop_map(|v| Payload::json(&v)),
        1 => prop::collection::vec(any::<u8>(), 0..40).prop_map(Payload::new),
        1 => ".{0,20}".prop_map(|s: String| Payload::from(s.as_str())),
        // JSON-looking text with odd spacing: stored as JSON or as bytes,
        // it must come back byte for byte.
        1 => r#"[ \t\n\[\]{}0-9a-z":,.$-]{0,16}"#.prop_map(|s: String| Payload::from(s.as_str())),
    ]
}

fn failure() -> impl Strategy<Value = Failure> {
    (
        prop::sample::select(vec![
            FailureKind::Application,
            FailureKind::NonRetryable,
            FailureKind::Timeout,
            FailureKind::Cancelled,
        ]),
        ".{0,30}",
        prop::option::of(payload()),
    )
        .prop_map(|(kind, message, details)| {
            let f = Failure::new(kind, message);
            match details {
                Some(d) => f.with_details(d),
                None => f,
            }
        })
}

fn execution_id() -> impl Strategy<Value = ExecutionId> {
    "[a-zA-Z0-9._/@:-]{1,40}".prop_map(|s| ExecutionId::new(s).expect("valid by construction"))
}

fn component() -> impl Strategy<Value = ComponentHash> {
    "[0-9a-f]{64}".prop_map(|s| ComponentHash::parse(&s).unwrap())
}

fn result() -> impl Strategy<Value = Result<Payload, Failure>> {
    prop_oneof![payload().prop_map(Ok), failure().prop_map(Err)]
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec!["withdraw", "deposit", "approve", "go"]).prop_map(String::from),
        1 => ".{0,10}",
    ]
}

fn started() -> impl Strategy<Value = Event> {
    (
        name(),
        payload(),
        component(),
        any::<u64>(),
        1u32..4,
        prop::option::of((execution_id(), 1u32..5)),
    )
        .prop_map(
            |(workflow, input, component, seed, run, parent)| Event::Started {
                workflow,
                input,
                component,
                seed,
                run,
                parent: parent.map(|(id, seq)| ParentRef { id, seq }),
            },
        )
}

/// Any event; sequence numbers and names drawn from small sets, so that
/// journals made of them often agree with a scripted workflow.
fn event(seqs: u32) -> impl Strategy<Value = Event> {
    let seq = 0..=seqs;
    let hash = prop_oneof![3 => 0u64..3, 1 => any::<u64>()];
    let ms = prop_oneof![3 => 0u64..5000, 1 => any::<u64>()];
    prop_oneof![
        started(),
        (seq.clone(), name(), hash.clone(), 1u32..5, result()).prop_map(
            |(seq, name, input_hash, attempts, result)| Event::ActivityCompleted {
                seq,
                name,
                input_hash,
                attempts,
                result,
            }
        ),
        (
            seq.clone(),
            name(),
            hash.clone(),
            1u32..5,
            ms.clone(),
            failure()
        )
            .prop_map(|(seq, name, input_hash, attempts, retry_at, failure)| {
                Event::ActivityRetrying {
                    seq,
                    name,
                    input_hash,
                    attempts,
                    retry_at: Timestamp::from_millis(retry_at),
                    failure,
                }
            }),
        (seq.clone(), ms.clone(), ms.clone()).prop_map(|(seq, duration_ms, fire_at)| {
            Event::TimerStarted {
                seq,
                duration_ms,
                fire_at: Timestamp::from_millis(fire_at),
            }
        }),
        (seq.clone(), ms.clone())
            .prop_map(|(seq, duration_ms)| Event::TimerFired { seq, duration_ms }),
        (seq.clone(), name(), payload(), ".{0,10}").prop_map(|(seq, name, payload, inbox_id)| {
            Event::SignalReceived {
                seq,
                name,
                payload,
                inbox_id,
            }
        }),
        (seq.clone(), name(), execution_id(), hash).prop_map(
            |(seq, workflow, child_id, input_hash)| Event::ChildStarted {
                seq,
                workflow,
                child_id,
                input_hash,
            }
        ),
        (seq, execution_id(), result(), ".{0,10}").prop_map(|(seq, child_id, result, inbox_id)| {
            Event::ChildCompleted {
                seq,
                child_id,
                result,
                inbox_id,
            }
        }),
        (".{0,10}", ".{0,10}")
            .prop_map(|(reason, inbox_id)| Event::CancelRequested { reason, inbox_id }),
        payload().prop_map(|output| Event::Completed { output }),
        failure().prop_map(|failure| Event::Failed { failure }),
        payload().prop_map(|input| Event::ContinuedAsNew { input }),
    ]
}

fn entry() -> impl Strategy<Value = Entry> {
    (any::<u32>(), any::<u64>(), event(6)).prop_map(|(index, at, event)| Entry {
        index,
        at: Timestamp::from_millis(at),
        event,
    })
}

/// What one operation left in a journal (its sequence number is its place).
#[derive(Debug, Clone)]
enum Op {
    Activity {
        name: String,
        hash: u64,
        retries: u8,
        result: Option<Result<Payload, Failure>>,
    },
    Timer {
        duration_ms: u64,
        started: bool,
        fired: bool,
    },
    Signal(Option<(String, Payload)>),
    Child {
        id: ExecutionId,
        hash: u64,
        started: bool,
        result: Option<Result<Payload, Failure>>,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let hash = 0u64..3;
    prop_oneof![
        (
            name(),
            hash.clone(),
            0u8..3,
            prop::option::weighted(0.8, result())
        )
            .prop_map(|(name, hash, retries, result)| Op::Activity {
                name,
                hash,
                retries,
                result
            }),
        (
            prop::sample::select(vec![0u64, 500, 5000]),
            any::<bool>(),
            prop::bool::weighted(0.8)
        )
            .prop_map(|(duration_ms, started, fired)| Op::Timer {
                duration_ms,
                started,
                fired
            }),
        prop::option::weighted(0.8, (name(), payload())).prop_map(Op::Signal),
        (
            execution_id(),
            hash,
            prop::bool::weighted(0.9),
            prop::option::weighted(0.8, result())
        )
            .prop_map(|(id, hash, started, result)| Op::Child {
                id,
                hash,
                started,
                result
            }),
    ]
}

impl Op {
    /// Its entries, in order.
    fn events(&self, seq: u32) -> Vec<Event> {
        match self.clone() {
            Op::Activity {
                name,
                hash,
                retries,
                result,
            } => {
                let mut out: Vec<Event> = (0..retries)
                    .map(|i| Event::ActivityRetrying {
                        seq,
                        name: name.clone(),
                        input_hash: hash,
                        attempts: u32::from(i) + 1,
                        retry_at: Timestamp::from_millis(9000),
                        failure: Failure::new(FailureKind::Application, "try again"),
                    })
                    .collect();
                if let Some(result) = result {
                    out.push(Event::ActivityCompleted {
                        seq,
                        name,
                        input_hash: hash,
                        attempts: u32::from(retries) + 1,
                        result,
                    });
                }
                out
            }
            Op::Timer {
                duration_ms,
                started,
                fired,
            } => {
                let mut out = Vec::new();
                if started {
                    out.push(Event::TimerStarted {
                        seq,
                        duration_ms,
                        fire_at: Timestamp::from_millis(duration_ms),
                    });
                }
                if fired {
                    out.push(Event::TimerFired { seq, duration_ms });
                }
                out
            }
            Op::Signal(got) => got
                .map(|(name, payload)| Event::SignalReceived {
                    seq,
                    name,
                    payload,
                    inbox_id: format!("s{seq}"),
                })
                .into_iter()
                .collect(),
            Op::Child {
                id,
                hash,
                started,
                result,
            } => {
                let mut out = Vec::new();
                if started {
                    out.push(Event::ChildStarted {
                        seq,
                        workflow: "child".into(),
                        child_id: id.clone(),
                        input_hash: hash,
                    });
                }
                if let Some(result) = result {
                    out.push(Event::ChildCompleted {
                        seq,
                        child_id: id,
                        result,
                        inbox_id: "c".into(),
                    });
                }
                out
            }
        }
    }

    /// The operation that agrees with its entries.
    fn start(&self) -> Operation {
        match self.clone() {
            Op::Activity { name, hash, .. } => Operation::Activity {
                name,
                input_hash: hash,
            },
            Op::Timer { duration_ms, .. } => Operation::Timer { duration_ms },
            Op::Signal(got) => Operation::Signal {
                name: got.map(|(n, _)| n).unwrap_or_else(|| "go".into()),
            },
            Op::Child { id, hash, .. } => Operation::Child {
                workflow: "child".into(),
                child_id: id,
                input_hash: hash,
            },
        }
    }
}

/// A journal as a run could leave it: `started`, then the entries of a few
/// operations interleaved, cancel requests, maybe a final entry; then, in
/// some journals, a few corruptions (an entry replaced, dropped, repeated,
/// or renumbered). Also returns the operations that agree with it.
fn journal() -> impl Strategy<Value = (Vec<Entry>, Vec<Operation>)> {
    (
        started(),
        prop::collection::vec(op(), 0..8),
        prop::collection::vec(any::<prop::sample::Index>(), 0..40),
        prop::collection::vec((any::<prop::sample::Index>(), ".{0,6}"), 0..2),
        prop::option::weighted(0.3, event(8)),
        prop::collection::vec((0u8..4, any::<prop::sample::Index>(), event(8)), 0..3),
        prop::bool::weighted(0.5),
    )
        .prop_map(|(first, ops, picks, cancels, end, damage, damaged)| {
            let mut queues: Vec<std::collections::VecDeque<Event>> = ops
                .iter()
                .enumerate()
                .map(|(i, op)| op.events(i as u32 + 1).into())
                .collect();
            let mut events = vec![first];
            // Interleave the operations' entries, each in its own order.
            let mut picks = picks.into_iter();
            while queues.iter().any(|q| !q.is_empty()) {
                let live: Vec<usize> = (0..queues.len())
                    .filter(|&i| !queues[i].is_empty())
                    .collect();
                let i = picks
                    .next()
                    .map(|p| live[p.index(live.len())])
                    .unwrap_or(live[0]);
                events.push(queues[i].pop_front().unwrap());
            }
            for (at, reason) in cancels {
                let i = 1 + at.index(events.len());
                events.insert(
                    i.min(events.len()),
                    Event::CancelRequested {
                        reason,
                        inbox_id: "x".into(),
                    },
                );
            }
            events.extend(end);
            let mut entries: Vec<Entry> = events
                .into_iter()
                .enumerate()
                .map(|(i, event)| Entry {
                    index: i as u32,
                    at: Timestamp::from_millis(1000 + i as u64),
                    event,
                })
                .collect();
            if damaged {
                for (kind, at, event) in damage {
                    let i = at.index(entries.len());
                    match kind {
                        0 => entries[i].event = event,
                        1 if entries.len() > 1 => {
                            entries.remove(i);
                        }
                        2 => {
                            let e = entries[i].clone();
                            entries.insert(i, e);
                        }
                        _ => entries[i].index = entries[i].index.wrapping_add(1),
                    }
                }
            }
            (entries, ops.iter().map(Op::start).collect())
        })
}

/// A guest call.
#[derive(Debug, Clone)]
enum Call {
    /// The next operation, as the journal has it (or `Operation` if it has none).
    Follow(Operation),
    Operation(Operation),
    WaitAny(Vec<u32>),
    /// Wait on up to `n` outstanding handles.
    WaitSome(prop::sample::Index, usize),
    Cancel(u32),
    Pending,
    Finish(Result<Payload, Failure>),
}

fn operation() -> impl Strategy<Value = Operation> {
    let hash = prop_oneof![3 => 0u64..3, 1 => any::<u64>()];
    prop_oneof![
        (name(), hash.clone())
            .prop_map(|(name, input_hash)| Operation::Activity { name, input_hash }),
        prop_oneof![3 => 0u64..5000, 1 => any::<u64>()]
            .prop_map(|duration_ms| Operation::Timer { duration_ms }),
        name().prop_map(|name| Operation::Signal { name }),
        (name(), execution_id(), hash).prop_map(|(workflow, child_id, input_hash)| {
            Operation::Child {
                workflow,
                child_id,
                input_hash,
            }
        }),
    ]
}

fn call() -> impl Strategy<Value = Call> {
    prop_oneof![
        6 => operation().prop_map(Call::Follow),
        1 => operation().prop_map(Call::Operation),
        5 => (any::<prop::sample::Index>(), 1usize..3).prop_map(|(i, n)| Call::WaitSome(i, n)),
        1 => prop::collection::vec(prop_oneof![4 => 0u32..8, 1 => any::<u32>()], 0..4).prop_map(Call::WaitAny),
        1 => prop_oneof![0u32..8, any::<u32>()].prop_map(Call::Cancel),
        1 => Just(Call::Pending),
        1 => result().prop_map(Call::Finish),
    ]
}

// ---- journal entry decoding -------------------------------------------------

/// Encoded entries with one value swapped, removed or added somewhere.
fn mutated_entry() -> impl Strategy<Value = Vec<u8>> {
    let seeds = prop_oneof![
        3 => entry().prop_map(|e| serde_json::from_slice::<Value>(&encode(&e)).unwrap()),
        1 => prop::sample::select(corpus()).prop_map(|(_, bytes)| {
            serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null)
        }),
    ];
    fuzzing::mutated(seeds, WORDS).prop_map(|v| serde_json::to_vec(&v).unwrap())
}

/// Files in `tests/corpus/entries/`: malformed entries worth keeping.
fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus/entries");
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .expect("tests/corpus/entries")
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn the_corpus_decodes_to_values_or_errors() {
    let files = corpus();
    assert!(files.len() >= 10, "the corpus is there");
    for (name, bytes) in files {
        let r = decode(7, &bytes);
        // Files named ok-* are valid entries; the others must be refused.
        if name.starts_with("ok-") {
            let e = r.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(decode(7, &encode(&e)).unwrap(), e, "{name}");
        } else {
            let e = r.expect_err(&name);
            assert_eq!(e.index, 7, "{name}");
            assert!(!e.reason.is_empty());
        }
    }
}

#[test]
fn a_failure_with_null_details_keeps_them() {
    // Found by `entries_round_trip`: `Some(null)` details came back as `None`.
    let e = Entry {
        index: 2,
        at: Timestamp::from_millis(0),
        event: Event::Failed {
            failure: Failure::new(FailureKind::Application, "x")
                .with_details(Payload::from("null")),
        },
    };
    assert_eq!(decode(2, &encode(&e)).unwrap(), e);
}

#[test]
fn deeply_nested_payloads_do_not_overflow_the_stack() {
    for depth in [200, 10_000, 200_000] {
        let body = format!(
            r#"{{"v":1,"at":0,"e":{{"completed":{{"output":{}1{}}}}}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        );
        // Refused or accepted as an opaque payload: either way, no crash.
        let _ = decode(0, body.as_bytes());
    }
}

proptest! {
    #![proptest_config(fuzzing::config("tests/corpus/fuzz.proptest-regressions"))]

    #[test]
    fn arbitrary_bytes_decode_to_an_error_or_an_entry(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode(3, &bytes);
    }

    #[test]
    fn arbitrary_json_decodes_to_an_error_or_an_entry(v in fuzzing::json(WORDS)) {
        let _ = decode(3, &serde_json::to_vec(&v).unwrap());
        let wrapped = serde_json::json!({"v": 1, "at": 5, "e": v});
        let _ = decode(3, &serde_json::to_vec(&wrapped).unwrap());
    }

    #[test]
    fn mutated_entries_decode_to_an_error_or_an_entry(bytes in mutated_entry()) {
        if let Ok(e) = decode(3, &bytes) {
            // What decodes, re-encodes and decodes to the same entry.
            prop_assert_eq!(decode(3, &encode(&e)).unwrap(), e);
        }
    }

    #[test]
    fn entries_round_trip(e in entry()) {
        let bytes = encode(&e);
        let back = decode(e.index, &bytes).unwrap();
        prop_assert_eq!(back, e);
    }

    #[test]
    fn arbitrary_journals_and_calls_give_errors_not_panics(
        (journal, agreeing) in journal(),
        calls in prop::collection::vec(call(), 0..24),
    ) {
        let Ok(mut replay) = Replay::new(journal) else { return Ok(()) };
        let mut issued: Vec<(u32, Operation)> = Vec::new();
        for call in calls {
            let result = match call {
                Call::Follow(fallback) => {
                    let c = agreeing.get(issued.len()).cloned().unwrap_or(fallback);
                    replay.start(c.clone()).map(|h| issued.push((h, c)))
                }
                Call::Operation(c) => replay.start(c.clone()).map(|h| issued.push((h, c))),
                Call::WaitAny(h) => replay.wait_any(&h).map(drop),
                Call::WaitSome(at, n) if !issued.is_empty() => {
                    let first = at.index(issued.len());
                    let handles: Vec<u32> = issued.iter().skip(first).take(n).map(|(h, _)| *h).collect();
                    match replay.wait_any(&handles) {
                        // New ground: a driver journals a completion for
                        // the oldest pending operation it waits on.
                        Ok(Wait::Frontier) => {
                            let pending = replay.pending();
                            if let Some(p) = pending.iter().find(|p| handles.contains(&p.seq())) {
                                let cmd = &issued[p.seq() as usize - 1].1;
                                let at = Timestamp::from_millis(replay.now().as_millis() + 1);
                                replay.record(completion(p.seq(), cmd), at);
                                replay.wait_any(&handles).map(drop)
                            } else {
                                Ok(())
                            }
                        }
                        r => r.map(drop),
                    }
                }
                Call::WaitSome(..) => Ok(()),
                Call::Cancel(h) => replay.cancel(h),
                Call::Pending => { let _ = replay.pending(); Ok(()) }
                Call::Finish(r) => { let _ = replay.finish(r); break; }
            };
            // Reading the state never fails either.
            let _ = (replay.now(), replay.history_len(), replay.cancel_reason(), replay.is_replaying());
            if result.is_err() {
                break;
            }
        }
    }

    #[test]
    fn a_recorded_run_replays_to_the_same_answers(
        script in prop::collection::vec((operation(), any::<prop::sample::Index>(), 1usize..3), 1..10),
        cancel_at in prop::option::of(0usize..10),
        output in result(),
    ) {
        // First run: a workflow issues each operation, then waits on one or
        // two outstanding handles; at new ground a "driver" completes the
        // first awaited one (or delivers a cancel request).
        let started = Entry {
            index: 0,
            at: Timestamp::from_millis(1),
            event: Event::Started {
                workflow: "w".into(),
                input: Payload::from("null"),
                component: ComponentHash::parse(&"ab".repeat(32)).unwrap(),
                seed: 1,
                run: 1,
                parent: None,
            },
        };
        let mut replay = Replay::new(vec![started]).unwrap();
        let mut answers = Vec::new();
        let mut outstanding: Vec<(u32, Operation)> = Vec::new();
        let mut t = 1;
        for (step, (c, pick, n)) in script.iter().enumerate() {
            let h = replay.start(c.clone()).unwrap();
            outstanding.push((h, c.clone()));
            let first = pick.index(outstanding.len());
            let awaited: Vec<u32> = outstanding.iter().skip(first).take(*n).map(|(h, _)| *h).collect();
            let mut w = replay.wait_any(&awaited).unwrap();
            if w == Wait::Frontier {
                t += 1;
                let event = if cancel_at == Some(step) {
                    Event::CancelRequested { reason: "stop".into(), inbox_id: "c".into() }
                } else {
                    let (seq, cmd) = outstanding.iter().find(|(h, _)| *h == awaited[0]).unwrap();
                    completion(*seq, cmd)
                };
                replay.record(event, Timestamp::from_millis(t));
                w = replay.wait_any(&awaited).unwrap();
            }
            prop_assert!(w != Wait::Frontier);
            if let Wait::Ready { handle, .. } = &w {
                outstanding.retain(|(h, _)| h != handle);
            }
            answers.push((w, replay.now()));
        }
        let end = replay.finish(output.clone()).unwrap().expect("a final entry");
        replay.record(end, Timestamp::from_millis(t + 1));
        let journal = replay.entries().to_vec();

        // Replay: the same calls get the same answers, and the same end.
        let mut again = Replay::new(journal.clone()).unwrap();
        let mut outstanding: Vec<u32> = Vec::new();
        for ((c, pick, n), answer) in script.into_iter().zip(&answers) {
            outstanding.push(again.start(c).unwrap());
            let first = pick.index(outstanding.len());
            let awaited: Vec<u32> = outstanding.iter().skip(first).take(n).copied().collect();
            let w = again.wait_any(&awaited).unwrap();
            if let Wait::Ready { handle, .. } = &w {
                outstanding.retain(|h| h != handle);
            }
            prop_assert_eq!(&(w, again.now()), answer);
        }
        prop_assert_eq!(again.finish(output).unwrap(), None);
        // And a different end is nondeterminism, not a panic.
        let mut other = Replay::new(journal).unwrap();
        let _ = other.finish(Ok(Payload::from("\"something else\"")));
    }
}

/// The completion a driver journals for an operation.
fn completion(seq: u32, operation: &Operation) -> Event {
    match operation {
        Operation::Activity { name, input_hash } => Event::ActivityCompleted {
            seq,
            name: name.clone(),
            input_hash: *input_hash,
            attempts: 1,
            result: Ok(Payload::from("1")),
        },
        Operation::Timer { duration_ms } => Event::TimerFired {
            seq,
            duration_ms: *duration_ms,
        },
        Operation::Signal { name } => Event::SignalReceived {
            seq,
            name: name.clone(),
            payload: Payload::from("2"),
            inbox_id: format!("i{seq}"),
        },
        Operation::Child { child_id, .. } => Event::ChildCompleted {
            seq,
            child_id: child_id.clone(),
            result: Ok(Payload::from("3")),
            inbox_id: format!("child.{child_id}"),
        },
    }
}

#[test]
fn replay_errors_are_typed() {
    // A protocol error and a corrupt journal, as the fuzz targets see them.
    let mut r = Replay::new(vec![Entry {
        index: 0,
        at: Timestamp::from_millis(0),
        event: Event::Completed {
            output: Payload::from("1"),
        },
    }]);
    assert!(r.is_err());
    let started = Entry {
        index: 0,
        at: Timestamp::from_millis(0),
        event: Event::Started {
            workflow: "w".into(),
            input: Payload::from("null"),
            component: ComponentHash::parse(&"ab".repeat(32)).unwrap(),
            seed: 0,
            run: 1,
            parent: None,
        },
    };
    r = Replay::new(vec![started]);
    let mut r = r.unwrap();
    assert!(matches!(r.wait_any(&[9]), Err(ReplayError::Protocol(_))));
}
