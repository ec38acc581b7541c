use super::*;
use crate::entry;
use crate::testing::JournalBuilder;
use crate::{FailureKind, input_hash};

fn act(name: &str, input: &[u8]) -> Operation {
    Operation::Activity {
        name: name.into(),
        input_hash: input_hash(input),
    }
}

fn ready_ok(w: Wait) -> (u32, Vec<u8>) {
    match w {
        Wait::Ready {
            handle,
            completion: Completion::Activity(Ok(p)),
        } => (handle, p.into_bytes()),
        other => panic!("expected a successful activity, got {other:?}"),
    }
}

fn nondet(err: ReplayError) -> Nondeterminism {
    match err {
        ReplayError::Nondeterminism(n) => n,
        other => panic!("expected nondeterminism, got {other}"),
    }
}

#[test]
fn sequential_activities_are_answered_from_the_journal_then_finish() {
    let journal = JournalBuilder::new("swap", b"{}")
        .activity_ok(1, "withdraw", b"A", b"1")
        .activity_ok(2, "withdraw", b"B", b"2")
        .build();
    let mut r = Replay::new(journal).unwrap();
    assert!(r.is_replaying());
    let h = r.start(act("withdraw", b"A")).unwrap();
    assert_eq!(ready_ok(r.wait_any(&[h]).unwrap()), (1, b"1".to_vec()));
    assert_eq!(
        r.now(),
        JournalBuilder::T0.plus(std::time::Duration::from_secs(1))
    );
    let h = r.start(act("withdraw", b"B")).unwrap();
    assert_eq!(ready_ok(r.wait_any(&[h]).unwrap()), (2, b"2".to_vec()));
    assert!(!r.is_replaying());
    // New ground: the third call has no entry.
    let h = r.start(act("deposit", b"C")).unwrap();
    assert_eq!(r.wait_any(&[h]).unwrap(), Wait::Frontier);
    assert_eq!(
        r.pending(),
        vec![PendingOperation::Activity {
            seq: 3,
            name: "deposit".into(),
            attempts: 0,
            retry_at: None
        }]
    );
    let at = r.now().plus(std::time::Duration::from_millis(5));
    let e = r.record(
        Event::ActivityCompleted {
            seq: 3,
            name: "deposit".into(),
            input_hash: input_hash(b"C"),
            attempts: 1,
            result: Ok(Payload::from("3")),
        },
        at,
    );
    assert_eq!(e.index, 3);
    assert_eq!(ready_ok(r.wait_any(&[h]).unwrap()), (3, b"3".to_vec()));
    assert_eq!(r.now(), at);
    assert_eq!(
        r.finish(Ok(Payload::from("done"))).unwrap(),
        Some(Event::Completed {
            output: Payload::from("done")
        })
    );
}

#[test]
fn a_different_activity_at_the_same_step_is_nondeterminism_naming_the_entry() {
    let journal = JournalBuilder::new("swap", b"{}")
        .activity_ok(1, "withdraw", b"A", b"1")
        .activity_ok(2, "withdraw", b"B", b"2")
        .build();
    let mut r = Replay::new(journal).unwrap();
    r.start(act("withdraw", b"A")).unwrap();
    let n = nondet(r.start(act("deposit", b"B")).unwrap_err());
    assert_eq!(n.code, ErrorCode::NondeterministicOperation);
    assert_eq!(n.index, 2);
    assert!(n.expected.contains("activity 'withdraw'"), "{n}");
    assert!(n.got.contains("activity 'deposit'"), "{n}");
    assert!(
        n.to_string()
            .starts_with("CRN100 nondeterminism at journal entry 2"),
        "{n}"
    );
}

#[test]
fn the_same_activity_with_another_input_is_nondeterminism() {
    let journal = JournalBuilder::new("swap", b"{}")
        .activity_ok(1, "withdraw", b"A", b"1")
        .build();
    let mut r = Replay::new(journal).unwrap();
    let n = nondet(r.start(act("withdraw", b"not A")).unwrap_err());
    assert_eq!((n.code, n.index), (ErrorCode::NondeterministicOperation, 1));
}

#[test]
fn a_timer_where_an_activity_was_is_nondeterminism() {
    let journal = JournalBuilder::new("w", b"{}").timer_fired(1, 500).build();
    let mut r = Replay::new(journal).unwrap();
    let n = nondet(r.start(act("x", b"")).unwrap_err());
    assert!(n.expected.contains("timer of 500ms"), "{n}");
}

#[test]
fn wait_any_returns_the_lowest_journal_index_among_awaited_handles() {
    // Two activities in parallel; the second finished first.
    let journal = JournalBuilder::new("fan", b"{}")
        .activity_ok(2, "b", b"", b"B")
        .activity_ok(1, "a", b"", b"A")
        .build();
    let mut r = Replay::new(journal).unwrap();
    let a = r.start(act("a", b"")).unwrap();
    let b = r.start(act("b", b"")).unwrap();
    assert_eq!(ready_ok(r.wait_any(&[a, b]).unwrap()), (2, b"B".to_vec()));
    assert_eq!(ready_ok(r.wait_any(&[a]).unwrap()), (1, b"A".to_vec()));
    // Waiting on a delivered handle again gives the same answer.
    assert_eq!(ready_ok(r.wait_any(&[a]).unwrap()), (1, b"A".to_vec()));
}

#[test]
fn select_signal_or_timeout_takes_the_timeout_branch_and_cancels_the_wait() {
    let journal = JournalBuilder::new("approval", b"{}")
        .timer_started(2, 3_600_000)
        .timer_fired(2, 3_600_000)
        .build();
    let mut r = Replay::new(journal).unwrap();
    let sig = r
        .start(Operation::Signal {
            name: "approve".into(),
        })
        .unwrap();
    let timer = r
        .start(Operation::Timer {
            duration_ms: 3_600_000,
        })
        .unwrap();
    assert_eq!(
        r.wait_any(&[sig, timer]).unwrap(),
        Wait::Ready {
            handle: timer,
            completion: Completion::Timer
        }
    );
    r.cancel(sig).unwrap();
    assert!(r.pending().is_empty());
    assert!(matches!(r.wait_any(&[sig]), Err(ReplayError::Protocol(_))));
}

#[test]
fn pending_timers_and_retries_carry_what_the_journal_knows() {
    let retry_at = JournalBuilder::T0.plus(std::time::Duration::from_secs(60));
    let journal = JournalBuilder::new("w", b"{}")
        .timer_started(1, 86_400_000)
        .activity_retrying(2, "flaky", b"x", 3, retry_at)
        .build();
    let mut r = Replay::new(journal).unwrap();
    let t = r
        .start(Operation::Timer {
            duration_ms: 86_400_000,
        })
        .unwrap();
    let a = r.start(act("flaky", b"x")).unwrap();
    let s = r.start(Operation::Signal { name: "s".into() }).unwrap();
    assert_eq!(r.wait_any(&[t, a, s]).unwrap(), Wait::Frontier);
    assert_eq!(
        r.pending(),
        vec![
            PendingOperation::Timer {
                seq: 1,
                duration_ms: 86_400_000,
                fire_at: Some(
                    JournalBuilder::T0.plus(std::time::Duration::from_millis(86_400_000))
                )
            },
            PendingOperation::Activity {
                seq: 2,
                name: "flaky".into(),
                attempts: 3,
                retry_at: Some(retry_at)
            },
            PendingOperation::Signal {
                seq: 3,
                name: "s".into()
            },
        ]
    );
}

#[test]
fn a_cancel_request_is_delivered_in_journal_order() {
    let journal = JournalBuilder::new("w", b"{}")
        .cancel_requested("user asked")
        .activity_ok(1, "a", b"", b"A")
        .build();
    let mut r = Replay::new(journal).unwrap();
    let a = r.start(act("a", b"")).unwrap();
    assert_eq!(
        r.wait_any(&[a]).unwrap(),
        Wait::CancelRequested {
            reason: "user asked".into()
        }
    );
    assert_eq!(ready_ok(r.wait_any(&[a]).unwrap()), (1, b"A".to_vec()));
}

#[test]
fn journal_entries_the_workflow_never_asks_for_are_nondeterminism() {
    let journal = JournalBuilder::new("w", b"{}")
        .activity_ok(1, "a", b"", b"A")
        .activity_ok(2, "b", b"", b"B")
        .build();
    // Journaled: a (#1), a signal wait that never got a signal (#2), b (#3).
    // The new code calls a, then waits for the signal: entry 2 (b, #3) is unexplained.
    let with_gap = JournalBuilder::new("w", b"{}")
        .activity_ok(1, "a", b"", b"A")
        .activity_ok(3, "b", b"", b"B")
        .build();
    let mut r = Replay::new(with_gap).unwrap();
    let a = r.start(act("a", b"")).unwrap();
    r.wait_any(&[a]).unwrap();
    let s = r
        .start(Operation::Signal {
            name: "never".into(),
        })
        .unwrap();
    let n = nondet(r.wait_any(&[s]).unwrap_err());
    assert_eq!((n.code, n.index), (ErrorCode::UnexpectedEntry, 2));
    assert!(n.got.contains("never asked for it"), "{n}");

    // The new code calls only `a` and returns.
    let mut r = Replay::new(journal).unwrap();
    let a = r.start(act("a", b"")).unwrap();
    r.wait_any(&[a]).unwrap();
    let n = nondet(r.finish(Ok(Payload::from("x"))).unwrap_err());
    assert_eq!((n.code, n.index), (ErrorCode::UnexpectedEntry, 2));
}

#[test]
fn replaying_a_finished_journal_checks_the_result() {
    let journal = JournalBuilder::new("w", b"{}").completed(b"42").build();
    let mut r = Replay::new(journal.clone()).unwrap();
    assert_eq!(r.finish(Ok(Payload::from("42"))).unwrap(), None);
    let mut r = Replay::new(journal).unwrap();
    let n = nondet(r.finish(Ok(Payload::from("43"))).unwrap_err());
    assert_eq!((n.code, n.index), (ErrorCode::ResultMismatch, 1));
}

#[test]
fn malformed_journals_are_refused_as_corrupt() {
    let mut gap = JournalBuilder::new("w", b"{}")
        .activity_ok(1, "a", b"", b"")
        .build();
    gap[1].index = 5;
    let no_start = JournalBuilder::new("w", b"{}")
        .activity_ok(1, "a", b"", b"")
        .build()[1..]
        .to_vec();
    let after_final = JournalBuilder::new("w", b"{}")
        .completed(b"1")
        .timer_fired(1, 1)
        .build();
    let mixed = JournalBuilder::new("w", b"{}")
        .timer_started(1, 5)
        .activity_ok(1, "a", b"", b"")
        .build();
    let twice = JournalBuilder::new("w", b"{}")
        .activity_ok(1, "a", b"", b"")
        .activity_ok(1, "a", b"", b"")
        .build();
    for (what, journal) in [
        ("gap", gap),
        ("no start", no_start),
        ("after final", after_final),
        ("mixed", mixed),
        ("twice", twice),
        ("empty", vec![]),
    ] {
        let err = Replay::new(journal).expect_err(what);
        assert_eq!(err.code, ErrorCode::CorruptJournal, "{what}: {err}");
    }
}

#[test]
fn protocol_violations_are_not_nondeterminism() {
    let mut r = Replay::new(JournalBuilder::new("w", b"{}").build()).unwrap();
    assert!(matches!(r.wait_any(&[]), Err(ReplayError::Protocol(_))));
    assert!(matches!(r.wait_any(&[7]), Err(ReplayError::Protocol(_))));
    assert!(matches!(r.cancel(0), Err(ReplayError::Protocol(_))));
}

/// Golden journals on disk, written in the stored encoding, replayed by a
/// scripted guest. They pin both the encoding (old journals must stay
/// readable) and the replay answers.
mod golden {
    use super::*;

    fn load(name: &str) -> Vec<Entry> {
        let path = format!("{}/tests/journals/{name}.jsonl", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        text.lines()
            .enumerate()
            .map(|(i, l)| entry::decode(i as u32, l.as_bytes()).unwrap())
            .collect()
    }

    #[test]
    fn swap_compensated_replays_to_the_same_failure() {
        let journal = load("swap-compensated");
        let mut r = Replay::new(journal).unwrap();
        let (workflow, input, _, _) = r.started();
        assert_eq!(workflow, "swap");
        assert!(input.preview(200).contains("\"fail_at_step\":3"));
        let steps: [(&str, &[u8]); 5] = [
            (
                "withdraw",
                br#"{"account":"alice","coin":"foo","amount":10}"#,
            ),
            ("withdraw", br#"{"account":"bob","coin":"bar","amount":20}"#),
            ("deposit", br#"{"account":"bob","coin":"foo","amount":10}"#),
            ("deposit", br#"{"account":"bob","coin":"bar","amount":20}"#),
            (
                "deposit",
                br#"{"account":"alice","coin":"foo","amount":10}"#,
            ),
        ];
        for (i, (name, input)) in steps.iter().enumerate() {
            let h = r.start(act(name, input)).unwrap();
            let Wait::Ready {
                completion: Completion::Activity(result),
                ..
            } = r.wait_any(&[h]).unwrap()
            else {
                panic!("step {i}")
            };
            assert_eq!(result.is_err(), i == 2, "step {i}");
            if let Err(f) = result {
                assert_eq!(f.kind, FailureKind::NonRetryable);
            }
        }
        let failure = Failure::new(
            FailureKind::NonRetryable,
            "swap failed at step 3 (deposit foo into bob): injected failure; compensated: refund bar to bob, refund foo to alice",
        );
        assert_eq!(r.finish(Err(failure)).unwrap(), None);
    }

    #[test]
    fn approval_replays_to_its_frontier() {
        let journal = load("approval-waiting");
        let mut r = Replay::new(journal).unwrap();
        let t = r.start(Operation::Timer { duration_ms: 2000 }).unwrap();
        assert_eq!(
            r.wait_any(&[t]).unwrap(),
            Wait::Ready {
                handle: t,
                completion: Completion::Timer
            }
        );
        let s = r
            .start(Operation::Signal {
                name: "approve".into(),
            })
            .unwrap();
        let timeout = r
            .start(Operation::Timer {
                duration_ms: 3_600_000,
            })
            .unwrap();
        assert_eq!(r.wait_any(&[s, timeout]).unwrap(), Wait::Frontier);
        assert_eq!(r.pending().len(), 2);
    }
}
