//! The advance machine on journal builders: no wasmtime, no store, no clock.

use super::*;
use crate::replay::Completion;
use crate::testing::JournalBuilder;

const T0: Timestamp = JournalBuilder::T0;

fn at(ms: u64) -> Timestamp {
    T0.plus(Duration::from_millis(ms))
}

fn config() -> AdvanceConfig {
    AdvanceConfig {
        inline_timer: Duration::from_secs(1),
        inline_wake: Duration::from_millis(500),
        deadline: None,
    }
}

fn id(s: &str) -> ExecutionId {
    ExecutionId::new(s).unwrap()
}

fn machine(journal: Vec<Entry>, inbox: Vec<InboxItem>) -> AdvanceMachine {
    machine_with(journal, inbox, config())
}

fn machine_with(journal: Vec<Entry>, inbox: Vec<InboxItem>, c: AdvanceConfig) -> AdvanceMachine {
    AdvanceMachine::new(id("ex"), Replay::new(journal).unwrap(), inbox, 1, c)
}

fn fresh() -> AdvanceMachine {
    machine(JournalBuilder::new("wf", b"{}").build(), Vec::new())
}

fn call(name: &str, input: &[u8]) -> ActivityCall {
    ActivityCall {
        name: name.into(),
        input: Payload::new(input),
        retry: RetryPolicy::default(),
        timeout: None,
    }
}

fn child_call(child: &str) -> ChildCall {
    ChildCall {
        workflow: "kid".into(),
        child_id: id(child),
        input: Payload::new(b"{}".to_vec()),
    }
}

fn signal_item(n: u32, name: &str, payload: &[u8]) -> InboxItem {
    InboxItem {
        id: format!("in-{n}"),
        at: T0,
        message: InboxMessage::Signal {
            name: name.into(),
            payload: Payload::new(payload),
        },
    }
}

fn cancel_item(n: u32) -> InboxItem {
    InboxItem {
        id: format!("in-{n}"),
        at: T0,
        message: InboxMessage::Cancel {
            reason: "stop".into(),
        },
    }
}

fn child_result(n: u32, child: &str, output: &[u8]) -> InboxItem {
    InboxItem {
        id: format!("in-{n}"),
        at: T0,
        message: InboxMessage::ChildCompleted {
            child_id: id(child),
            result: Ok(Payload::new(output)),
        },
    }
}

fn done(output: &[u8]) -> ActivityOutcome {
    ActivityOutcome::Done {
        attempts: 1,
        result: Ok(Payload::new(output)),
    }
}

/// Carries out an append (as a store that accepts it would).
fn apply(m: &mut AdvanceMachine, action: Action) -> (Event, Vec<Action>) {
    let Action::Append { entry, consume } = action else {
        panic!("expected an append, got {action:?}");
    };
    let event = entry.event.clone();
    let follow = m.appended(entry, consume.as_deref());
    (event, follow)
}

/// At new ground, the next action.
fn next(m: &mut AdvanceMachine, awaited: &[u32], now: Timestamp) -> Action {
    assert_eq!(m.wait_any(awaited).unwrap(), Wait::Frontier);
    m.next(awaited, now)
}

fn started(action: Action) -> u32 {
    match action {
        Action::StartActivity { seq, .. } => seq,
        other => panic!("expected an activity start, got {other:?}"),
    }
}

fn ready(w: Wait) -> (u32, Completion) {
    match w {
        Wait::Ready { handle, completion } => (handle, completion),
        other => panic!("expected a completion, got {other:?}"),
    }
}

#[test]
fn fan_out_returns_the_first_completion_appended_and_replay_agrees() {
    let mut m = fresh();
    let a = m.activity(call("a", b"1")).unwrap();
    let b = m.activity(call("b", b"2")).unwrap();
    assert_eq!(started(next(&mut m, &[a, b], at(1))), a);
    assert_eq!(started(m.next(&[a, b], at(1))), b);
    assert_eq!(m.next(&[a, b], at(1)), Action::Wait { until: None });
    // b finishes first: it is appended first and returned first.
    let append = m.activity_finished(b, done(b"B"), at(2)).unwrap();
    {
        let action = append;
        apply(&mut m, action)
    };
    let (h, c) = ready(m.wait_any(&[a, b]).unwrap());
    assert_eq!((h, c), (b, Completion::Activity(Ok(Payload::new(b"B")))));
    let append = m.activity_finished(a, done(b"A"), at(3)).unwrap();
    {
        let action = append;
        apply(&mut m, action)
    };
    assert_eq!(ready(m.wait_any(&[a]).unwrap()).0, a);

    // The same calls against the written journal give the same answers.
    let journal = m.replay().entries().to_vec();
    let mut r = machine(journal, Vec::new());
    let a = r.activity(call("a", b"1")).unwrap();
    let b = r.activity(call("b", b"2")).unwrap();
    assert_eq!(ready(r.wait_any(&[a, b]).unwrap()).0, b);
    assert_eq!(ready(r.wait_any(&[a]).unwrap()).0, a);
    assert!(!r.replay().is_replaying());
}

#[test]
fn a_completion_of_a_handle_not_awaited_wins_a_later_wait_by_its_lower_index() {
    let mut m = fresh();
    let a = m.activity(call("a", b"1")).unwrap();
    let b = m.activity(call("b", b"2")).unwrap();
    started(next(&mut m, &[a], at(1)));
    started(m.next(&[a], at(1)));
    // b (not awaited) finishes first; the workflow still waits for a.
    let append = m.activity_finished(b, done(b"B"), at(2)).unwrap();
    {
        let action = append;
        apply(&mut m, action)
    };
    assert_eq!(m.wait_any(&[a]).unwrap(), Wait::Frontier);
    assert_eq!(m.next(&[a], at(2)), Action::Wait { until: None });
    let append = m.activity_finished(a, done(b"A"), at(3)).unwrap();
    {
        let action = append;
        apply(&mut m, action)
    };
    // Awaiting both now: b's entry has the lower index.
    assert_eq!(ready(m.wait_any(&[a, b]).unwrap()).0, b);
    assert_eq!(ready(m.wait_any(&[a]).unwrap()).0, a);
}

#[test]
fn a_cancel_request_comes_before_signals_and_cancels_started_children() {
    let inbox = vec![signal_item(1, "go", b"1"), cancel_item(2)];
    let journal = JournalBuilder::new("wf", b"{}").build();
    let mut m = machine(journal, inbox);
    let kid = m.child(child_call("kid-1")).unwrap();
    let s = m.signal("go".into()).unwrap();
    // The cancel request first, whatever the wait awaits.
    let (event, follow) = {
        let action = next(&mut m, &[s], at(1));
        apply(&mut m, action)
    };
    assert!(matches!(event, Event::CancelRequested { ref inbox_id, .. } if inbox_id == "in-2"));
    assert!(follow.is_empty(), "the child is not started yet");
    assert_eq!(
        m.wait_any(&[s]).unwrap(),
        Wait::CancelRequested {
            reason: "stop".into()
        }
    );
    // The signal is still there for the wait that awaits it.
    let (event, _) = {
        let action = next(&mut m, &[s], at(2));
        apply(&mut m, action)
    };
    assert!(matches!(event, Event::SignalReceived { seq, .. } if seq == s));
    assert_eq!(ready(m.wait_any(&[s]).unwrap()).0, s);

    // A child journaled as started is asked to cancel with the request.
    let journal = JournalBuilder::new("wf", b"{}").build();
    let mut m = machine(journal, vec![cancel_item(1)]);
    let kid2 = m.child(child_call("kid-2")).unwrap();
    assert_eq!(kid, kid2);
    let (event, _) = {
        let action = next(&mut m, &[kid2], at(1));
        apply(&mut m, action)
    };
    assert!(matches!(event, Event::CancelRequested { .. }));
    assert_eq!(
        m.wait_any(&[kid2]).unwrap(),
        Wait::CancelRequested {
            reason: "stop".into()
        }
    );
    let (event, _) = {
        let action = next(&mut m, &[kid2], at(2));
        apply(&mut m, action)
    };
    assert!(matches!(event, Event::ChildStarted { .. }));
    // A second cancel request: the started child hears about it.
    m.inbox_replaced(vec![cancel_item(9)], 2);
    let (_, follow) = {
        let action = next(&mut m, &[kid2], at(3));
        apply(&mut m, action)
    };
    assert_eq!(
        follow,
        vec![Action::CancelChild {
            child_id: id("kid-2"),
            reason: "its parent ex was cancelled: stop".into()
        }]
    );
}

#[test]
fn signals_are_consumed_oldest_first_and_only_by_a_wait_that_awaits_them() {
    let inbox = vec![
        signal_item(1, "other", b"x"),
        signal_item(2, "go", b"first"),
        signal_item(3, "go", b"second"),
    ];
    let mut m = machine(JournalBuilder::new("wf", b"{}").build(), inbox);
    let go = m.signal("go".into()).unwrap();
    let t = m.timer(60_000).unwrap();
    // Awaiting only the timer: the signal stays in the inbox.
    let (event, _) = {
        let action = next(&mut m, &[t], at(1));
        apply(&mut m, action)
    };
    assert!(matches!(event, Event::TimerStarted { seq, .. } if seq == t));
    assert!(matches!(
        next(&mut m, &[t], at(1)),
        Action::Suspend {
            wake_at: Some(_),
            ..
        }
    ));
    // Awaiting it: the oldest "go" is consumed, with its inbox item.
    let action = next(&mut m, &[go, t], at(2));
    let Action::Append { consume, .. } = &action else {
        panic!("{action:?}")
    };
    assert_eq!(consume.as_deref(), Some("in-2"));
    apply(&mut m, action);
    let (h, c) = ready(m.wait_any(&[go, t]).unwrap());
    assert_eq!((h, c), (go, Completion::Signal(Payload::new(b"first"))));
    // The next wait for "go" takes the second.
    let go2 = m.signal("go".into()).unwrap();
    let (event, _) = {
        let action = next(&mut m, &[go2], at(3));
        apply(&mut m, action)
    };
    assert!(
        matches!(event, Event::SignalReceived { ref payload, .. } if payload.as_bytes() == b"second")
    );
}

#[test]
fn select_signal_or_timeout_fires_the_inline_timer_and_leaves_the_signal() {
    let mut m = fresh();
    let s = m.signal("approve".into()).unwrap();
    let t = m.timer(800).unwrap();
    // The short timer is waited inline: no entry until it fires.
    assert_eq!(
        next(&mut m, &[s, t], at(1_000)),
        Action::Wait {
            until: Some(at(1_800))
        }
    );
    assert_eq!(m.replay().history_len(), 1);
    let (event, _) = {
        let action = m.next(&[s, t], at(1_800));
        apply(&mut m, action)
    };
    assert_eq!(
        event,
        Event::TimerFired {
            seq: t,
            duration_ms: 800
        }
    );
    assert_eq!(ready(m.wait_any(&[s, t]).unwrap()).0, t);
    assert!(m.cancel(s).unwrap().is_empty());
    // A signal arriving later is not consumed by the cancelled wait.
    m.inbox_replaced(vec![signal_item(1, "approve", b"late")], 2);
    let t2 = m.timer(60_000).unwrap();
    let (event, _) = {
        let action = next(&mut m, &[t2], at(2_000));
        apply(&mut m, action)
    };
    assert!(matches!(event, Event::TimerStarted { .. }));
    let Action::Suspend { waiting_on, .. } = next(&mut m, &[t2], at(2_000)) else {
        panic!()
    };
    assert_eq!(waiting_on, format!("timer until {}", at(62_000)));
}

#[test]
fn a_durable_timer_suspends_until_it_fires_and_a_close_one_is_waited_inline() {
    let mut m = fresh();
    let t = m.timer(10_000).unwrap();
    let (event, _) = {
        let action = next(&mut m, &[t], at(0));
        apply(&mut m, action)
    };
    assert_eq!(
        event,
        Event::TimerStarted {
            seq: t,
            duration_ms: 10_000,
            fire_at: at(10_000)
        }
    );
    assert_eq!(
        next(&mut m, &[t], at(1)),
        Action::Suspend {
            wake_at: Some(at(10_000)),
            waiting_on: format!("timer until {}", at(10_000)),
        }
    );
    // Within the inline wake: wait instead of suspending.
    assert_eq!(
        m.next(&[t], at(9_600)),
        Action::Wait {
            until: Some(at(10_000))
        }
    );
    let (event, _) = {
        let action = m.next(&[t], at(10_000));
        apply(&mut m, action)
    };
    assert!(matches!(event, Event::TimerFired { .. }));

    // The next advance replays the started timer and fires it when due.
    let journal = m.replay().entries()[..2].to_vec();
    let mut r = machine(journal, Vec::new());
    let t = r.timer(10_000).unwrap();
    assert!(matches!(
        r.operation(t),
        Some(OperationState::Timer {
            state: TimerState::Durable { .. },
            ..
        })
    ));
    assert!(matches!(
        next(&mut r, &[t], at(20_000)),
        Action::Append {
            entry: Entry {
                event: Event::TimerFired { .. },
                ..
            },
            ..
        }
    ));
}

#[test]
fn a_retry_later_is_journaled_and_suspends_until_the_retry() {
    let mut m = fresh();
    let a = m.activity(call("flaky", b"1")).unwrap();
    assert_eq!(started(next(&mut m, &[a], at(0))), a);
    let outcome = ActivityOutcome::RetryLater {
        attempts: 2,
        retry_at: at(30_000),
        failure: Failure::new(FailureKind::Application, "down"),
    };
    let (event, _) = {
        let action = m.activity_finished(a, outcome, at(1)).unwrap();
        apply(&mut m, action)
    };
    assert!(matches!(event, Event::ActivityRetrying { attempts: 2, .. }));
    assert_eq!(
        next(&mut m, &[a], at(2)),
        Action::Suspend {
            wake_at: Some(at(30_000)),
            waiting_on: format!("retry of activity 'flaky' at {}", at(30_000)),
        }
    );
    // The wake: the journal says two attempts were made.
    let journal = m.replay().entries().to_vec();
    let mut r = machine(journal, Vec::new());
    let a = r.activity(call("flaky", b"1")).unwrap();
    match next(&mut r, &[a], at(30_000)) {
        Action::StartActivity {
            attempts_before, ..
        } => assert_eq!(attempts_before, 2),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_deadline_yields_before_new_effects_but_waits_for_running_ones() {
    let c = AdvanceConfig {
        deadline: Some(at(5_000)),
        ..config()
    };
    let mut m = machine_with(JournalBuilder::new("wf", b"{}").build(), Vec::new(), c);
    let a = m.activity(call("a", b"1")).unwrap();
    assert_eq!(started(next(&mut m, &[a], at(1_000))), a);
    // Past the deadline: a running attempt is waited for...
    assert_eq!(next(&mut m, &[a], at(6_000)), Action::Wait { until: None });
    // ...but no new one starts.
    let b = m.activity(call("b", b"2")).unwrap();
    assert_eq!(next(&mut m, &[a, b], at(6_000)), Action::Yield);
    let action = m.activity_finished(a, done(b"A"), at(6_000)).unwrap();
    apply(&mut m, action);
    m.wait_any(&[a]).unwrap();
    assert_eq!(next(&mut m, &[b], at(6_000)), Action::Yield);
    // An inline wait past the deadline with nothing running: yield too.
    let c = AdvanceConfig {
        deadline: Some(at(100)),
        ..config()
    };
    let mut m = machine_with(JournalBuilder::new("wf", b"{}").build(), Vec::new(), c);
    let t = m.timer(500).unwrap();
    assert_eq!(next(&mut m, &[t], at(50)), Action::Yield);
}

#[test]
fn children_are_journaled_then_created_and_their_results_consumed_when_awaited() {
    let mut m = fresh();
    let k = m.child(child_call("kid")).unwrap();
    let (event, _) = {
        let action = next(&mut m, &[k], at(1));
        apply(&mut m, action)
    };
    assert!(matches!(event, Event::ChildStarted { seq, .. } if seq == k));
    assert_eq!(
        m.next(&[k], at(1)),
        Action::StartChild {
            seq: k,
            call: child_call("kid")
        }
    );
    // Created once per advance; then the parent waits for its result.
    assert!(
        matches!(m.next(&[k], at(1)), Action::Suspend { ref waiting_on, .. } if waiting_on == "child kid")
    );
    m.inbox_replaced(vec![child_result(7, "kid", b"42")], 2);
    let (event, _) = {
        let action = next(&mut m, &[k], at(2));
        apply(&mut m, action)
    };
    assert!(matches!(event, Event::ChildCompleted { ref inbox_id, .. } if inbox_id == "in-7"));
    assert_eq!(
        ready(m.wait_any(&[k]).unwrap()),
        (k, Completion::Child(Ok(Payload::new(b"42"))))
    );

    // A child that cannot be created fails the operation, not the workflow.
    let mut m = fresh();
    let k = m.child(child_call("bad")).unwrap();
    {
        let action = next(&mut m, &[k], at(1));
        apply(&mut m, action)
    };
    assert!(matches!(m.next(&[k], at(1)), Action::StartChild { .. }));
    let action = m
        .child_not_started(k, "no such workflow".into(), at(1))
        .unwrap();
    let (event, _) = apply(&mut m, action);
    assert!(matches!(
        event,
        Event::ChildCompleted { result: Err(_), .. }
    ));
    assert!(matches!(
        ready(m.wait_any(&[k]).unwrap()).1,
        Completion::Child(Err(_))
    ));
    // Its own id is a protocol violation.
    assert!(matches!(
        m.child(child_call("ex")),
        Err(ReplayError::Protocol(_))
    ));
}

#[test]
fn cancelling_stops_a_running_attempt_and_a_started_child() {
    let mut m = fresh();
    let a = m.activity(call("slow", b"1")).unwrap();
    let k = m.child(child_call("kid")).unwrap();
    {
        let action = next(&mut m, &[a, k], at(1));
        apply(&mut m, action)
    };
    assert!(matches!(m.next(&[a, k], at(1)), Action::StartChild { .. }));
    assert_eq!(started(m.next(&[a, k], at(1))), a);
    assert_eq!(m.cancel(a).unwrap(), vec![Action::AbortActivity { seq: a }]);
    // An outcome that raced the abort is not journaled.
    assert_eq!(m.activity_finished(a, done(b"late"), at(2)), None);
    assert_eq!(
        m.cancel(k).unwrap(),
        vec![Action::CancelChild {
            child_id: id("kid"),
            reason: "its parent ex no longer waits for it".into()
        }]
    );
    assert!(m.cancel(k).unwrap().is_empty(), "once");
    assert!(matches!(m.cancel(99), Err(ReplayError::Protocol(_))));
    assert_eq!(m.waiting_on(), "nothing");
}

#[test]
fn replayed_operations_take_their_state_from_the_journal() {
    let journal = JournalBuilder::new("wf", b"{}")
        .activity_ok(1, "a", b"1", b"A")
        .activity_retrying(2, "b", b"2", 3, at(99_000))
        .timer_started(3, 5_000)
        .build();
    let mut m = machine(journal, Vec::new());
    let a = m.activity(call("a", b"1")).unwrap();
    let b = m.activity(call("b", b"2")).unwrap();
    let t = m.timer(5_000).unwrap();
    let s = m.signal("go".into()).unwrap();
    let state = |m: &AdvanceMachine, h| m.operation(h).cloned().unwrap();
    assert!(matches!(
        state(&m, a),
        OperationState::Activity {
            state: ActivityState::Completed,
            ..
        }
    ));
    assert!(matches!(
        state(&m, b),
        OperationState::Activity {
            state: ActivityState::Backoff { attempts: 3, .. },
            ..
        }
    ));
    assert!(matches!(
        state(&m, t),
        OperationState::Timer {
            state: TimerState::Durable { .. },
            ..
        }
    ));
    assert!(matches!(
        state(&m, s),
        OperationState::Signal {
            state: SignalState::Waiting,
            ..
        }
    ));
    assert_eq!(ready(m.wait_any(&[a, b, t, s]).unwrap()).0, a);
}

#[test]
fn new_entries_never_go_back_in_time() {
    let m = fresh();
    let e = m.entry(
        Event::TimerFired {
            seq: 1,
            duration_ms: 1,
        },
        Timestamp::from_millis(5),
    );
    assert_eq!((e.index, e.at), (1, T0));
}

#[test]
fn oversized_outputs_become_failures_and_other_entries_are_refused() {
    let big = vec![b'x'; 2_000];
    let entry = Entry {
        index: 3,
        at: T0,
        event: Event::ActivityCompleted {
            seq: 1,
            name: "a".into(),
            input_hash: 0,
            attempts: 1,
            result: Ok(Payload::new(big.clone())),
        },
    };
    let fitted = fit_entry(entry, 1_000).unwrap();
    let Event::ActivityCompleted { result: Err(f), .. } = fitted.event else {
        panic!()
    };
    assert!(
        f.message
            .starts_with("CRN204 the output of activity 'a' is"),
        "{}",
        f.message
    );
    let entry = Entry {
        index: 3,
        at: T0,
        event: Event::Completed {
            output: Payload::new(big.clone()),
        },
    };
    assert!(matches!(
        fit_entry(entry, 1_000).unwrap().event,
        Event::Failed { .. }
    ));
    let entry = Entry {
        index: 3,
        at: T0,
        event: Event::SignalReceived {
            seq: 1,
            name: "s".into(),
            payload: Payload::new(big),
            inbox_id: "i".into(),
        },
    };
    assert!(fit_entry(entry.clone(), 1_000).unwrap_err() > 1_000);
    assert_eq!(fit_entry(entry.clone(), 1 << 20), Ok(entry));
}

#[test]
fn an_inline_timer_behind_a_durable_one_is_waited_for_not_lost_in_a_suspend() {
    // A durable 10 s timer (fires at T0 + 10 s) and, 9.1 s in, a new 1 s
    // timer: the durable one comes first but is not close; suspending
    // would forget the inline timer's start, so the driver waits.
    let journal = JournalBuilder::new("wf", b"{}")
        .timer_started(1, 10_000)
        .build();
    let mut m = machine(journal, Vec::new());
    let long = m.timer(10_000).unwrap();
    let short = m.timer(1_000).unwrap();
    assert_eq!(
        next(&mut m, &[long, short], at(9_100)),
        Action::Wait {
            until: Some(at(10_000))
        }
    );
    let action = m.next(&[long, short], at(10_000));
    let (event, _) = apply(&mut m, action);
    assert_eq!(
        event,
        Event::TimerFired {
            seq: long,
            duration_ms: 10_000
        }
    );
    assert_eq!(ready(m.wait_any(&[long, short]).unwrap()).0, long);
    // The short timer keeps the fire time it got at 9.1 s.
    assert_eq!(
        next(&mut m, &[short], at(10_000)),
        Action::Wait {
            until: Some(at(10_100))
        }
    );
}
