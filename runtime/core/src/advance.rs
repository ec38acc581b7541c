//! The advance as a pure state machine: what a driver does on new ground.
//!
//! [`Replay`] answers the workflow's calls from the journal; this machine
//! wraps it and decides what to do when the journal has no answer. It does
//! no IO: the engine's driver feeds it **inputs** and carries out the
//! **actions** it returns, one at a time.
//!
//! **Inputs.** The loaded execution ([`AdvanceMachine::new`]: the journal,
//! the inbox and its version); the guest's calls ([`AdvanceMachine::activity`],
//! [`timer`](AdvanceMachine::timer), [`signal`](AdvanceMachine::signal),
//! [`child`](AdvanceMachine::child), [`cancel`](AdvanceMachine::cancel),
//! [`wait_any`](AdvanceMachine::wait_any)); the result of each append
//! ([`appended`](AdvanceMachine::appended)); activity outcomes
//! ([`activity_finished`](AdvanceMachine::activity_finished)); a child that
//! could not be created ([`child_not_started`](AdvanceMachine::child_not_started));
//! an inbox re-read after a refused suspend ([`inbox_replaced`](AdvanceMachine::inbox_replaced));
//! and the time, passed to every decision.
//!
//! **Actions** ([`Action`]): append an entry (with the inbox item it
//! consumes), start an activity attempt, abort one, create a child, cancel a
//! child, wait (for an activity or until a time), suspend (what it waits on,
//! when to wake), yield at the deadline.
//!
//! **Decisions** ([`AdvanceMachine::next`], called at new ground with the
//! handles the workflow awaits), in this order; the first that applies wins:
//!
//! | # | when | action |
//! |---|------|--------|
//! | 1 | the deadline passed and no activity runs | `Yield` |
//! | 2 | the inbox holds a cancel request | append `cancel-requested` (consuming it); then cancel every started child |
//! | 3 | an awaited signal wait (an awaited started child) has a matching inbox item, oldest first | append `signal-received` (`child-completed`), consuming it |
//! | 4 | a child not yet journaled | append `child-started` |
//! | 5 | a journaled child not yet created by this advance | `StartChild` (the executor's failure to create it comes back as `child-completed` with the failure) |
//! | 6 | a new timer | longer than the inline limit: append `timer-started`; else it fires inline (no entry until it fires) |
//! | 7 | an activity ready (never run, or its retry is due) | the deadline passed: `Yield`; else `StartActivity` |
//! | 8 | the earliest timer is due | append `timer-fired` |
//! | 9 | an inline timer (then the earliest timer, whatever it is), or a timer or retry due within the inline wake | `Wait` until it (or for a running activity); past the deadline: `Yield` if nothing runs |
//! | 10 | activities run | `Wait` for one |
//! | 11 | otherwise | `Suspend` until the earliest timer or retry |
//!
//! **Which completion `wait-any` returns** is [`Replay`]'s rule: the lowest
//! journal index among the awaited handles and an undelivered cancel
//! request. Every append goes through [`AdvanceMachine::appended`], so the
//! first awaited completion appended is the one the next `wait_any` returns.
//!
//! Each operation has one state enum ([`ActivityState`], [`TimerState`],
//! [`SignalState`], [`ChildState`]), set from the journal when the workflow
//! asks for the operation and moved by appends, starts and cancels.

use crate::replay::{Operation, Replay, ReplayError, Wait};
use crate::{
    Entry, ErrorCode, Event, ExecutionId, Failure, FailureKind, InboxItem, InboxMessage, Payload,
    RetryPolicy, Timestamp, input_hash,
};
use std::time::Duration;

/// What the machine needs to know of the engine's configuration.
#[derive(Debug, Clone)]
pub struct AdvanceConfig {
    /// Timers at most this long are waited inline (never journaled as started).
    pub inline_timer: Duration,
    /// A durable timer or retry due within this is waited inline.
    pub inline_wake: Duration,
    /// Stop at a step boundary once the time passes this.
    pub deadline: Option<Timestamp>,
}

/// An activity call, as the workflow asked for it.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityCall {
    /// Its name.
    pub name: String,
    /// Its input.
    pub input: Payload,
    /// Its retry policy.
    pub retry: RetryPolicy,
    /// Per-attempt timeout; `None`: the host's default.
    pub timeout: Option<Duration>,
}

/// A child execution, as the workflow asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildCall {
    /// The child's workflow.
    pub workflow: String,
    /// The child's execution id.
    pub child_id: ExecutionId,
    /// Its input.
    pub input: Payload,
}

/// How one activity call ended (for now), as the executor reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum ActivityOutcome {
    /// Finished: its output, or its last failure.
    Done {
        /// Attempts made in all.
        attempts: u32,
        /// Output or last failure.
        result: Result<Payload, Failure>,
    },
    /// An attempt failed and the next waits longer than the driver waits inline.
    RetryLater {
        /// Attempts made in all.
        attempts: u32,
        /// When the next may start.
        retry_at: Timestamp,
        /// The last attempt's failure.
        failure: Failure,
    },
}

/// An activity's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivityState {
    /// Not running; `attempts` already made (journaled).
    Ready {
        /// Attempts made.
        attempts: u32,
    },
    /// An attempt failed; the next waits until `retry_at` (journaled).
    Backoff {
        /// Attempts made.
        attempts: u32,
        /// Earliest start of the next attempt.
        retry_at: Timestamp,
    },
    /// An attempt runs (started by this advance).
    Running,
    /// Its completion is journaled.
    Completed,
    /// The workflow cancelled it.
    Cancelled,
}

/// A timer's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerState {
    /// Not started yet.
    New,
    /// Short: waited inline until `fire_at`, never journaled as started.
    Inline {
        /// When it fires.
        fire_at: Timestamp,
    },
    /// Journaled as started (`timer-started`).
    Durable {
        /// When it fires.
        fire_at: Timestamp,
    },
    /// Fired (journaled).
    Fired,
    /// The workflow cancelled it.
    Cancelled,
}

/// A signal wait's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalState {
    /// Waiting for the signal.
    Waiting,
    /// Received (journaled).
    Received,
    /// The workflow cancelled the wait.
    Cancelled,
}

/// A child execution's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildState {
    /// Its start is not journaled yet.
    New,
    /// `child-started` is journaled; this advance has not created it yet.
    Started,
    /// Created (idempotently) and pushed by this advance.
    Created,
    /// Its result is journaled (`child-completed`).
    Completed,
    /// The workflow cancelled it.
    Cancelled,
}

/// One operation the workflow asked for, with its state.
#[derive(Debug, Clone, PartialEq)]
pub enum OperationState {
    /// An activity call.
    Activity {
        /// What was asked.
        call: ActivityCall,
        /// Where it is.
        state: ActivityState,
    },
    /// A timer.
    Timer {
        /// Its duration.
        duration_ms: u64,
        /// Where it is.
        state: TimerState,
    },
    /// A signal wait.
    Signal {
        /// The signal's name.
        name: String,
        /// Where it is.
        state: SignalState,
    },
    /// A child execution.
    Child {
        /// What was asked.
        call: ChildCall,
        /// Where it is.
        state: ChildState,
    },
}

impl OperationState {
    /// Whether it still waits for its completion (not finished, not cancelled).
    pub fn is_pending(&self) -> bool {
        match self {
            Self::Activity { state, .. } => {
                !matches!(state, ActivityState::Completed | ActivityState::Cancelled)
            }
            Self::Timer { state, .. } => {
                !matches!(state, TimerState::Fired | TimerState::Cancelled)
            }
            Self::Signal { state, .. } => *state == SignalState::Waiting,
            Self::Child { state, .. } => {
                !matches!(state, ChildState::Completed | ChildState::Cancelled)
            }
        }
    }
}

/// What the executor must do next.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Append `entry` (one conditional write), removing inbox item
    /// `consume` in the same write; then report it with
    /// [`AdvanceMachine::appended`].
    Append {
        /// The entry (index and time set).
        entry: Entry,
        /// The inbox item it consumes.
        consume: Option<String>,
    },
    /// Run attempts of activity `seq` in its own instance; report the
    /// outcome with [`AdvanceMachine::activity_finished`].
    StartActivity {
        /// Its sequence number.
        seq: u32,
        /// What to run.
        call: ActivityCall,
        /// Attempts already made.
        attempts_before: u32,
    },
    /// Stop the running attempt of activity `seq`: the workflow cancelled it.
    AbortActivity {
        /// Its sequence number.
        seq: u32,
    },
    /// Create child `seq` (idempotently) and push it; if it cannot be
    /// created, report it with [`AdvanceMachine::child_not_started`].
    StartChild {
        /// Its sequence number.
        seq: u32,
        /// What to start.
        call: ChildCall,
    },
    /// Ask a child to cancel, with this reason (idempotent).
    CancelChild {
        /// The child.
        child_id: ExecutionId,
        /// Why.
        reason: String,
    },
    /// Wait for a running activity, or until `until` (then decide again).
    Wait {
        /// The time to decide again, if any.
        until: Option<Timestamp>,
    },
    /// Nothing can happen now: record what the execution waits for.
    Suspend {
        /// The earliest timer or retry.
        wake_at: Option<Timestamp>,
        /// What it waits for, in words.
        waiting_on: String,
    },
    /// The deadline passed: stop at this step boundary.
    Yield,
}

/// One advance of one execution, without IO. See the module docs.
#[derive(Debug, Clone)]
pub struct AdvanceMachine {
    id: ExecutionId,
    replay: Replay,
    /// Index `seq - 1`.
    ops: Vec<OperationState>,
    inbox: Vec<InboxItem>,
    inbox_version: u64,
    config: AdvanceConfig,
}

impl AdvanceMachine {
    /// The machine for execution `id`, whose journal `replay` holds, with
    /// its inbox as loaded.
    pub fn new(
        id: ExecutionId,
        replay: Replay,
        inbox: Vec<InboxItem>,
        inbox_version: u64,
        config: AdvanceConfig,
    ) -> Self {
        Self {
            id,
            replay,
            ops: Vec::new(),
            inbox,
            inbox_version,
            config,
        }
    }

    /// The replay state (journal, journal time, final entry).
    pub fn replay(&self) -> &Replay {
        &self.replay
    }

    /// The replay state, to finish the run ([`Replay::finish`]).
    pub fn replay_mut(&mut self) -> &mut Replay {
        &mut self.replay
    }

    /// The operation with handle `seq`.
    pub fn operation(&self, seq: u32) -> Option<&OperationState> {
        self.ops.get((seq as usize).wrapping_sub(1))
    }

    /// The inbox version the machine's inbox was read at.
    pub fn inbox_version(&self) -> u64 {
        self.inbox_version
    }

    /// The time a new entry gets: the clock's, never before the latest entry.
    pub fn now(&self, clock: Timestamp) -> Timestamp {
        let last = self
            .replay
            .entries()
            .last()
            .map(|e| e.at)
            .unwrap_or_default();
        clock.max(last)
    }

    /// An entry for `event` at the next index.
    pub fn entry(&self, event: Event, clock: Timestamp) -> Entry {
        Entry {
            index: self.replay.history_len(),
            at: self.now(clock),
            event,
        }
    }

    fn push(&mut self, operation: Operation, op: OperationState) -> Result<u32, ReplayError> {
        let seq = self.replay.start(operation)?;
        debug_assert_eq!(seq as usize, self.ops.len() + 1);
        self.ops.push(op);
        Ok(seq)
    }

    /// The workflow asks for an activity.
    pub fn activity(&mut self, call: ActivityCall) -> Result<u32, ReplayError> {
        let operation = Operation::Activity {
            name: call.name.clone(),
            input_hash: input_hash(call.input.as_bytes()),
        };
        let j = self.replay.journaled(self.ops.len() as u32 + 1);
        let state = match (j.completed, j.retry) {
            (true, _) => ActivityState::Completed,
            (false, Some((attempts, retry_at))) => ActivityState::Backoff { attempts, retry_at },
            (false, None) => ActivityState::Ready { attempts: 0 },
        };
        self.push(operation, OperationState::Activity { call, state })
    }

    /// The workflow starts a timer.
    pub fn timer(&mut self, duration_ms: u64) -> Result<u32, ReplayError> {
        let j = self.replay.journaled(self.ops.len() as u32 + 1);
        let state = match (j.completed, j.timer_fire_at) {
            (true, _) => TimerState::Fired,
            (false, Some(fire_at)) => TimerState::Durable { fire_at },
            (false, None) => TimerState::New,
        };
        self.push(
            Operation::Timer { duration_ms },
            OperationState::Timer { duration_ms, state },
        )
    }

    /// The workflow waits for a signal.
    pub fn signal(&mut self, name: String) -> Result<u32, ReplayError> {
        let j = self.replay.journaled(self.ops.len() as u32 + 1);
        let state = if j.completed {
            SignalState::Received
        } else {
            SignalState::Waiting
        };
        self.push(
            Operation::Signal { name: name.clone() },
            OperationState::Signal { name, state },
        )
    }

    /// The workflow starts a child execution.
    pub fn child(&mut self, call: ChildCall) -> Result<u32, ReplayError> {
        if call.child_id == self.id {
            return Err(ReplayError::Protocol(format!(
                "start-child: {} is this execution's own id",
                call.child_id
            )));
        }
        let operation = Operation::Child {
            workflow: call.workflow.clone(),
            child_id: call.child_id.clone(),
            input_hash: input_hash(call.input.as_bytes()),
        };
        let j = self.replay.journaled(self.ops.len() as u32 + 1);
        let state = match (j.completed, j.child_started) {
            (true, _) => ChildState::Completed,
            (false, true) => ChildState::Started,
            (false, false) => ChildState::New,
        };
        self.push(operation, OperationState::Child { call, state })
    }

    /// The workflow drops interest in `handle`: what to stop (a running
    /// attempt, a started child).
    pub fn cancel(&mut self, handle: u32) -> Result<Vec<Action>, ReplayError> {
        self.replay.cancel(handle)?;
        let reason = self.child_cancel_reason();
        let Some(op) = self.ops.get_mut(handle as usize - 1) else {
            return Ok(Vec::new());
        };
        let mut actions = Vec::new();
        match op {
            OperationState::Activity { state, .. } => match state {
                ActivityState::Completed | ActivityState::Cancelled => {}
                ActivityState::Running => {
                    actions.push(Action::AbortActivity { seq: handle });
                    *state = ActivityState::Cancelled;
                }
                _ => *state = ActivityState::Cancelled,
            },
            OperationState::Timer { state, .. } => {
                if !matches!(state, TimerState::Fired) {
                    *state = TimerState::Cancelled;
                }
            }
            OperationState::Signal { state, .. } => {
                if *state == SignalState::Waiting {
                    *state = SignalState::Cancelled;
                }
            }
            OperationState::Child { call, state } => match state {
                ChildState::Completed | ChildState::Cancelled => {}
                ChildState::New => *state = ChildState::Cancelled,
                ChildState::Started | ChildState::Created => {
                    actions.push(Action::CancelChild {
                        child_id: call.child_id.clone(),
                        reason,
                    });
                    *state = ChildState::Cancelled;
                }
            },
        }
        Ok(actions)
    }

    /// Why a child is asked to cancel: this execution was cancelled, or no
    /// longer waits for it.
    fn child_cancel_reason(&self) -> String {
        match self.replay.cancel_reason() {
            Some(r) => format!("its parent {} was cancelled: {r}", self.id),
            None => format!("its parent {} no longer waits for it", self.id),
        }
    }

    /// The workflow waits for the first of `handles`: the journal's answer,
    /// or [`Wait::Frontier`] (then ask [`AdvanceMachine::next`]).
    pub fn wait_any(&mut self, handles: &[u32]) -> Result<Wait, ReplayError> {
        self.replay.wait_any(handles)
    }

    /// The inbox changed since the load (a refused suspend re-read it).
    pub fn inbox_replaced(&mut self, inbox: Vec<InboxItem>, version: u64) {
        self.inbox = inbox;
        self.inbox_version = version;
    }

    fn running(&self) -> bool {
        self.ops.iter().any(|op| {
            matches!(
                op,
                OperationState::Activity {
                    state: ActivityState::Running,
                    ..
                }
            )
        })
    }

    fn past_deadline(&self, now: Timestamp) -> bool {
        self.config.deadline.is_some_and(|d| now >= d)
    }

    fn append(&self, event: Event, consume: Option<String>, now: Timestamp) -> Action {
        Action::Append {
            entry: self.entry(event, now),
            consume,
        }
    }

    /// New ground: the next action, given the handles the workflow awaits
    /// and the clock. See the module docs for the order of decisions.
    pub fn next(&mut self, awaited: &[u32], clock: Timestamp) -> Action {
        let now = self.now(clock);
        if self.past_deadline(now) && !self.running() {
            return Action::Yield;
        }
        // A cancel request is delivered at the next wait.
        if let Some(item) = self
            .inbox
            .iter()
            .find(|i| matches!(i.message, InboxMessage::Cancel { .. }))
        {
            let InboxMessage::Cancel { reason } = &item.message else {
                unreachable!("matched above")
            };
            let event = Event::CancelRequested {
                reason: reason.clone(),
                inbox_id: item.id.clone(),
            };
            return self.append(event, Some(item.id.clone()), now);
        }
        // Signals and children's results: consumed only by a wait that awaits them.
        for (i, op) in self.ops.iter().enumerate() {
            let seq = i as u32 + 1;
            if !awaited.contains(&seq) {
                continue;
            }
            let found = match op {
                OperationState::Signal {
                    name,
                    state: SignalState::Waiting,
                } => self.inbox.iter().find_map(|item| match &item.message {
                    InboxMessage::Signal { name: n, payload } if n == name => {
                        Some(Event::SignalReceived {
                            seq,
                            name: name.clone(),
                            payload: payload.clone(),
                            inbox_id: item.id.clone(),
                        })
                    }
                    _ => None,
                }),
                OperationState::Child {
                    call,
                    state: ChildState::Started | ChildState::Created,
                } => self.inbox.iter().find_map(|item| match &item.message {
                    InboxMessage::ChildCompleted { child_id, result }
                        if *child_id == call.child_id =>
                    {
                        Some(Event::ChildCompleted {
                            seq,
                            child_id: child_id.clone(),
                            result: result.clone(),
                            inbox_id: item.id.clone(),
                        })
                    }
                    _ => None,
                }),
                _ => None,
            };
            if let Some(event) = found {
                let consume = match &event {
                    Event::SignalReceived { inbox_id, .. }
                    | Event::ChildCompleted { inbox_id, .. } => inbox_id.clone(),
                    _ => unreachable!("built above"),
                };
                return self.append(event, Some(consume), now);
            }
        }
        // Children: journal the start, then make sure each exists and runs.
        for i in 0..self.ops.len() {
            let seq = i as u32 + 1;
            let OperationState::Child { call, state } = &mut self.ops[i] else {
                continue;
            };
            match state {
                ChildState::New => {
                    let event = Event::ChildStarted {
                        seq,
                        workflow: call.workflow.clone(),
                        child_id: call.child_id.clone(),
                        input_hash: input_hash(call.input.as_bytes()),
                    };
                    return self.append(event, None, now);
                }
                ChildState::Started => {
                    *state = ChildState::Created;
                    return Action::StartChild {
                        seq,
                        call: call.clone(),
                    };
                }
                _ => {}
            }
        }
        // Timers: short ones are waited inline; long ones are journaled.
        for i in 0..self.ops.len() {
            let seq = i as u32 + 1;
            let OperationState::Timer {
                duration_ms,
                state: state @ TimerState::New,
            } = &mut self.ops[i]
            else {
                continue;
            };
            let duration = Duration::from_millis(*duration_ms);
            let fire_at = now.plus(duration);
            if duration <= self.config.inline_timer {
                *state = TimerState::Inline { fire_at };
            } else {
                let event = Event::TimerStarted {
                    seq,
                    duration_ms: *duration_ms,
                    fire_at,
                };
                return self.append(event, None, now);
            }
        }
        // Activities: start every ready one; note the next retry.
        let mut next_retry: Option<Timestamp> = None;
        for i in 0..self.ops.len() {
            let seq = i as u32 + 1;
            let past_deadline = self.past_deadline(now);
            let OperationState::Activity { call, state } = &mut self.ops[i] else {
                continue;
            };
            let attempts = match *state {
                ActivityState::Backoff { retry_at, .. } if retry_at > now => {
                    next_retry = Some(next_retry.map_or(retry_at, |t| t.min(retry_at)));
                    continue;
                }
                ActivityState::Backoff { attempts, .. } | ActivityState::Ready { attempts } => {
                    attempts
                }
                _ => continue,
            };
            if past_deadline {
                return Action::Yield;
            }
            *state = ActivityState::Running;
            return Action::StartActivity {
                seq,
                call: call.clone(),
                attempts_before: attempts,
            };
        }
        // The next timer.
        let mut next_timer: Option<(Timestamp, u32, u64, bool)> = None;
        for (i, op) in self.ops.iter().enumerate() {
            let (fire_at, inline, duration_ms) = match op {
                OperationState::Timer {
                    duration_ms,
                    state: TimerState::Inline { fire_at },
                } => (*fire_at, true, *duration_ms),
                OperationState::Timer {
                    duration_ms,
                    state: TimerState::Durable { fire_at },
                } => (*fire_at, false, *duration_ms),
                _ => continue,
            };
            if next_timer.is_none_or(|(t, ..)| fire_at < t) {
                next_timer = Some((fire_at, i as u32 + 1, duration_ms, inline));
            }
        }
        if let Some((t, seq, duration_ms, _)) = next_timer
            && t <= now
        {
            return self.append(Event::TimerFired { seq, duration_ms }, None, now);
        }
        // What to wait for inline: inline timers, and durable wakes that are
        // close. While an inline timer is pending the earliest timer is at
        // most the inline limit away and is waited for too: suspending would
        // lose the inline timer's start (it is not journaled).
        let inline_wake = self.config.inline_wake;
        let inline_pending = self.ops.iter().any(|op| {
            matches!(
                op,
                OperationState::Timer {
                    state: TimerState::Inline { .. },
                    ..
                }
            )
        });
        let timer_wait = next_timer
            .filter(|(t, _, _, inline)| *inline || inline_pending || t.since(now) <= inline_wake)
            .map(|(t, ..)| t);
        let retry_wait = next_retry.filter(|t| t.since(now) <= inline_wake);
        let mut until = match (timer_wait, retry_wait) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let running = self.running();
        if let (Some(w), Some(d)) = (until, self.config.deadline)
            && w > d
        {
            if !running {
                return Action::Yield;
            }
            until = None;
        }
        if !running && until.is_none() {
            let wake_at = [next_timer.map(|(t, ..)| t), next_retry]
                .into_iter()
                .flatten()
                .min();
            return Action::Suspend {
                wake_at,
                waiting_on: self.waiting_on(),
            };
        }
        Action::Wait { until }
    }

    /// What a suspended execution waits for, in words.
    pub fn waiting_on(&self) -> String {
        let parts: Vec<String> = self
            .ops
            .iter()
            .filter(|op| op.is_pending())
            .map(|op| match op {
                OperationState::Signal { name, .. } => format!("signal '{name}'"),
                OperationState::Timer { state, .. } => {
                    let t = match state {
                        TimerState::Inline { fire_at } | TimerState::Durable { fire_at } => {
                            *fire_at
                        }
                        _ => Timestamp::default(),
                    };
                    format!("timer until {t}")
                }
                OperationState::Activity { call, state } => match state {
                    ActivityState::Backoff { retry_at, .. } => {
                        format!("retry of activity '{}' at {retry_at}", call.name)
                    }
                    _ => format!("activity '{}'", call.name),
                },
                OperationState::Child { call, .. } => format!("child {}", call.child_id),
            })
            .collect();
        if parts.is_empty() {
            "nothing".into()
        } else {
            parts.join(", ")
        }
    }

    /// Entry `entry` (from an [`Action::Append`]) is durable: record it.
    /// Returns what must follow at once (after a cancel request: cancel the
    /// started children). `consume` is the inbox item the write removed.
    pub fn appended(&mut self, entry: Entry, consume: Option<&str>) -> Vec<Action> {
        if let Some(id) = consume {
            self.inbox.retain(|i| i.id != id);
        }
        let op = entry
            .event
            .seq()
            .and_then(|seq| self.ops.get_mut((seq as usize).wrapping_sub(1)));
        let mut follow = Vec::new();
        match (&entry.event, op) {
            (Event::ActivityCompleted { .. }, Some(OperationState::Activity { state, .. })) => {
                *state = ActivityState::Completed
            }
            (
                Event::ActivityRetrying {
                    attempts, retry_at, ..
                },
                Some(OperationState::Activity { state, .. }),
            ) => {
                *state = ActivityState::Backoff {
                    attempts: *attempts,
                    retry_at: *retry_at,
                }
            }
            (Event::TimerStarted { fire_at, .. }, Some(OperationState::Timer { state, .. })) => {
                *state = TimerState::Durable { fire_at: *fire_at }
            }
            (Event::TimerFired { .. }, Some(OperationState::Timer { state, .. })) => {
                *state = TimerState::Fired
            }
            (Event::SignalReceived { .. }, Some(OperationState::Signal { state, .. })) => {
                *state = SignalState::Received
            }
            (Event::ChildStarted { .. }, Some(OperationState::Child { state, .. })) => {
                *state = ChildState::Started
            }
            (Event::ChildCompleted { .. }, Some(OperationState::Child { state, .. })) => {
                *state = ChildState::Completed
            }
            _ => {}
        }
        let cancel = matches!(entry.event, Event::CancelRequested { .. });
        self.replay.record(entry.event, entry.at);
        if cancel {
            let reason = self.child_cancel_reason();
            for op in &self.ops {
                if let OperationState::Child {
                    call,
                    state: ChildState::Started | ChildState::Created,
                } = op
                {
                    follow.push(Action::CancelChild {
                        child_id: call.child_id.clone(),
                        reason: reason.clone(),
                    });
                }
            }
        }
        follow
    }

    /// Activity `seq` ended (for now): the entry to append, or `None` if
    /// the workflow no longer runs it (cancelled meanwhile).
    pub fn activity_finished(
        &self,
        seq: u32,
        outcome: ActivityOutcome,
        clock: Timestamp,
    ) -> Option<Action> {
        let Some(OperationState::Activity {
            call,
            state: ActivityState::Running,
        }) = self.operation(seq)
        else {
            return None;
        };
        let (name, input_hash) = (call.name.clone(), input_hash(call.input.as_bytes()));
        let event = match outcome {
            ActivityOutcome::Done { attempts, result } => Event::ActivityCompleted {
                seq,
                name,
                input_hash,
                attempts,
                result,
            },
            ActivityOutcome::RetryLater {
                attempts,
                retry_at,
                failure,
            } => Event::ActivityRetrying {
                seq,
                name,
                input_hash,
                attempts,
                retry_at,
                failure,
            },
        };
        Some(self.append(event, None, clock))
    }

    /// Child `seq` could not be created (`message` says why): its result is
    /// that failure, non-retryable.
    pub fn child_not_started(&self, seq: u32, message: String, clock: Timestamp) -> Option<Action> {
        let Some(OperationState::Child { call, .. }) = self.operation(seq) else {
            return None;
        };
        let event = Event::ChildCompleted {
            seq,
            child_id: call.child_id.clone(),
            result: Err(Failure::new(FailureKind::NonRetryable, message)),
            inbox_id: String::new(),
        };
        Some(self.append(event, None, clock))
    }
}

/// Makes `entry` fit a store that accepts entries up to `limit` bytes: an
/// activity output that is too large becomes the activity's failure, a
/// workflow output the workflow's failure (both `CRN204`, non-retryable).
/// Any other entry cannot shrink: `Err(its size)`.
pub fn fit_entry(mut entry: Entry, limit: usize) -> Result<Entry, usize> {
    let size = crate::entry::encode(&entry).len();
    if size <= limit {
        return Ok(entry);
    }
    let too_large = |what: String| {
        Failure::new(
            FailureKind::NonRetryable,
            format!(
                "{} {what} is {size} bytes; the store accepts entries up to {limit}",
                ErrorCode::TooLarge
            ),
        )
    };
    entry.event = match entry.event {
        Event::ActivityCompleted {
            seq,
            name,
            input_hash,
            attempts,
            ..
        } => {
            let mut failure = too_large(format!("the output of activity '{name}'"));
            failure
                .message
                .push_str(": return a reference to large data instead");
            Event::ActivityCompleted {
                seq,
                name,
                input_hash,
                attempts,
                result: Err(failure),
            }
        }
        Event::Completed { .. } => Event::Failed {
            failure: too_large("the workflow's output".into()),
        },
        _ => return Err(size),
    };
    Ok(entry)
}

#[cfg(test)]
mod tests;
