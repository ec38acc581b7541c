//! The replay state machine: guest calls in, answers out. No IO.
//!
//! A driver feeds it the execution's journal, then relays the guest's calls:
//!
//! | guest call              | answer                                                    |
//! |-------------------------|-----------------------------------------------------------|
//! | [`Replay::start`]       | a new handle (= sequence number); checked against any entry already journaled for that sequence number |
//! | [`Replay::wait_any`]    | [`Wait::Ready`] / [`Wait::CancelRequested`] from the journal, or [`Wait::Frontier`]: new ground, the driver must make progress and [`Replay::record`] it |
//! | [`Replay::cancel`]      | the handle stops counting as pending                      |
//! | [`Replay::finish`]      | the final event to append, or a mismatch with the journal |
//!
//! **Which completion `wait-any` returns.** Among the awaited handles (and a
//! not yet delivered cancel request), the one whose entry has the lowest
//! journal index. While the workflow runs on new ground the driver appends a
//! completion and returns it at once, so the first awaited entry to be
//! appended is the one returned; on replay the full journal yields the same
//! answer. Only the order of entries is journaled, no scheduling decision.
//!
//! **Journal time.** [`Replay::now`] is the time of the latest entry delivered
//! to the workflow (at first, the `started` entry): the same on every replay.

use crate::entry::ParentRef;
use crate::entry::human_duration;
use crate::error::{ErrorCode, Nondeterminism};
use crate::{ComponentHash, Entry, Event, ExecutionId, Failure, Payload, Timestamp};

/// A map keyed by sequence number: small integers from 1, hashed with
/// FxHash (one multiplication), since SipHash cost more than the lookups it
/// serves on every replayed step (the keys come from trusted journal
/// entries, so hash flooding is not a concern).
type SeqMap<V> = rustc_hash::FxHashMap<u32, V>;

/// What the guest asks for; what the journal must agree with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// Run an activity.
    Activity {
        /// Its name.
        name: String,
        /// [`crate::input_hash`] of its input.
        input_hash: u64,
    },
    /// Start a timer.
    Timer {
        /// Its duration.
        duration_ms: u64,
    },
    /// Wait for a signal.
    Signal {
        /// Its name.
        name: String,
    },
    /// Start a child execution and wait for its result.
    Child {
        /// The child's workflow.
        workflow: String,
        /// The child's execution id.
        child_id: ExecutionId,
        /// [`crate::input_hash`] of the child's input.
        input_hash: u64,
    },
}

impl Operation {
    fn describe(&self) -> String {
        match self {
            Self::Activity { name, input_hash } => {
                format!("asked for activity '{name}' (input hash {input_hash:016x})")
            }
            Self::Timer { duration_ms } => {
                format!("started a timer of {}", human_duration(*duration_ms))
            }
            Self::Signal { name } => format!("waited for signal '{name}'"),
            Self::Child {
                workflow, child_id, ..
            } => format!("started child {child_id} (workflow '{workflow}')"),
        }
    }
}

/// An operation's outcome, as delivered to the guest.
#[derive(Debug, Clone, PartialEq)]
pub enum Completion {
    /// An activity's output or last failure.
    Activity(Result<Payload, Failure>),
    /// A timer fired.
    Timer,
    /// A signal's payload.
    Signal(Payload),
    /// A child execution's output or failure.
    Child(Result<Payload, Failure>),
}

/// The answer to `wait-any`.
#[derive(Debug, Clone, PartialEq)]
pub enum Wait {
    /// This handle finished.
    Ready {
        /// The handle.
        handle: u32,
        /// Its outcome.
        completion: Completion,
    },
    /// The execution was asked to cancel.
    CancelRequested {
        /// Why.
        reason: String,
    },
    /// The journal does not answer: the driver is on new ground.
    Frontier,
}

/// A guest operation that has not finished, with what the journal knows of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PendingOperation {
    /// An activity to run (again).
    Activity {
        /// Its handle.
        seq: u32,
        /// Its name.
        name: String,
        /// Attempts already made (journaled by `activity-retrying`).
        attempts: u32,
        /// Earliest start of the next attempt, if an attempt failed.
        retry_at: Option<Timestamp>,
    },
    /// A timer.
    Timer {
        /// Its handle.
        seq: u32,
        /// Its duration.
        duration_ms: u64,
        /// When it fires, if it was started durably.
        fire_at: Option<Timestamp>,
    },
    /// A signal wait.
    Signal {
        /// Its handle.
        seq: u32,
        /// The signal's name.
        name: String,
    },
    /// A child execution.
    Child {
        /// Its handle.
        seq: u32,
        /// The child's workflow.
        workflow: String,
        /// The child's id.
        child_id: ExecutionId,
        /// Whether its `child-started` entry is journaled.
        started: bool,
    },
}

impl PendingOperation {
    /// The handle.
    pub fn seq(&self) -> u32 {
        match self {
            Self::Activity { seq, .. }
            | Self::Timer { seq, .. }
            | Self::Signal { seq, .. }
            | Self::Child { seq, .. } => *seq,
        }
    }
}

/// What the journal holds for one operation ([`Replay::journaled`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Journaled {
    /// Its completion entry is journaled.
    pub completed: bool,
    /// A durable timer's fire time (`timer-started`).
    pub timer_fire_at: Option<Timestamp>,
    /// The latest `activity-retrying`: attempts made, next attempt's time.
    pub retry: Option<(u32, Timestamp)>,
    /// Its `child-started` entry is journaled.
    pub child_started: bool,
}

/// Errors the state machine reports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// The workflow and its journal disagree: park the execution.
    #[error(transparent)]
    Nondeterminism(#[from] Nondeterminism),
    /// The guest broke the protocol (a bug in the guest or its SDK).
    #[error("{code} protocol violation: {0}", code = ErrorCode::ProtocolViolation)]
    Protocol(String),
}

#[derive(Debug, Default, Clone)]
struct SeqRecord {
    /// Index of the first entry for this sequence number.
    first: u32,
    /// Index of its completion entry.
    completion: Option<u32>,
    /// Index of its `timer-started` entry.
    timer_started: Option<u32>,
    /// Index of its latest `activity-retrying` entry.
    retry: Option<u32>,
    /// Index of its `child-started` entry.
    child_started: Option<u32>,
}

#[derive(Debug, Clone)]
struct OperationRecord {
    operation: Operation,
    cancelled: bool,
    delivered: bool,
}

/// The replay state of one execution. See the module docs.
#[derive(Debug, Clone)]
pub struct Replay {
    entries: Vec<Entry>,
    seqs: SeqMap<SeqRecord>,
    operations: Vec<OperationRecord>,
    cancels: Vec<u32>,
    cancels_delivered: usize,
    now: Timestamp,
    undelivered: usize,
}

impl Replay {
    /// Prepares replay of `entries` (a whole journal, index 0 first).
    pub fn new(entries: Vec<Entry>) -> Result<Self, Nondeterminism> {
        let corrupt = |index: u32, what: String| Nondeterminism {
            code: ErrorCode::CorruptJournal,
            index,
            expected: what,
            got: "cannot be replayed (the journal is malformed)".into(),
        };
        let Some(first) = entries.first() else {
            return Err(corrupt(0, "a 'started' entry".into()));
        };
        let Event::Started { .. } = first.event else {
            return Err(corrupt(
                0,
                format!("a 'started' entry, found '{}'", first.event.kind()),
            ));
        };
        let mut replay = Self {
            now: first.at,
            entries: Vec::with_capacity(entries.len() + 8),
            seqs: SeqMap::with_capacity_and_hasher(entries.len(), Default::default()),
            operations: Vec::with_capacity(entries.len()),
            cancels: Vec::new(),
            cancels_delivered: 0,
            undelivered: 0,
        };
        for (i, entry) in entries.into_iter().enumerate() {
            if entry.index as usize != i {
                return Err(corrupt(
                    i as u32,
                    format!("entry index {i}, found {}", entry.index),
                ));
            }
            if i > 0 && matches!(entry.event, Event::Started { .. }) {
                return Err(corrupt(entry.index, "no second 'started' entry".into()));
            }
            if replay
                .entries
                .last()
                .is_some_and(|e: &Entry| e.event.is_final())
            {
                return Err(corrupt(entry.index, "nothing after the final entry".into()));
            }
            replay
                .index_entry(&entry)
                .map_err(|what| corrupt(entry.index, what))?;
            replay.entries.push(entry);
        }
        Ok(replay)
    }

    fn index_entry(&mut self, entry: &Entry) -> Result<(), String> {
        if let Event::CancelRequested { .. } = entry.event {
            self.cancels.push(entry.index);
            self.undelivered += 1;
            return Ok(());
        }
        let Some(seq) = entry.event.seq() else {
            return Ok(());
        };
        if seq == 0 {
            return Err("sequence numbers from 1".into());
        }
        let rec = self.seqs.entry(seq).or_insert_with(|| SeqRecord {
            first: entry.index,
            ..Default::default()
        });
        let first_kind = self
            .entries
            .get(rec.first as usize)
            .map(|e| &e.event)
            .unwrap_or(&entry.event);
        let same_family = matches!(
            (first_kind, &entry.event),
            (
                Event::ActivityCompleted { .. } | Event::ActivityRetrying { .. },
                Event::ActivityCompleted { .. } | Event::ActivityRetrying { .. }
            ) | (
                Event::TimerStarted { .. } | Event::TimerFired { .. },
                Event::TimerStarted { .. } | Event::TimerFired { .. }
            ) | (Event::SignalReceived { .. }, Event::SignalReceived { .. })
                | (
                    Event::ChildStarted { .. } | Event::ChildCompleted { .. },
                    Event::ChildStarted { .. } | Event::ChildCompleted { .. }
                )
        );
        if !same_family {
            return Err(format!(
                "entries of one kind for operation #{seq}, found '{}' after '{}'",
                entry.event.kind(),
                first_kind.kind()
            ));
        }
        if rec.completion.is_some() {
            return Err(format!(
                "nothing after operation #{seq} completed, found '{}'",
                entry.event.kind()
            ));
        }
        match entry.event {
            Event::ActivityRetrying { .. } => rec.retry = Some(entry.index),
            Event::TimerStarted { .. } => rec.timer_started = Some(entry.index),
            Event::ChildStarted { .. } => rec.child_started = Some(entry.index),
            _ => {
                rec.completion = Some(entry.index);
                let cancelled = self
                    .operations
                    .get(seq as usize - 1)
                    .is_some_and(|c| c.cancelled);
                if !cancelled {
                    self.undelivered += 1;
                }
            }
        }
        Ok(())
    }

    /// The `started` entry's fields: workflow, input, component, seed.
    pub fn started(&self) -> (&str, &Payload, &ComponentHash, u64) {
        match &self.entries[0].event {
            Event::Started {
                workflow,
                input,
                component,
                seed,
                ..
            } => (workflow, input, component, *seed),
            _ => unreachable!("checked in Replay::new"),
        }
    }

    /// The run number and the parent link of the `started` entry.
    pub fn run_and_parent(&self) -> (u32, Option<&ParentRef>) {
        match &self.entries[0].event {
            Event::Started { run, parent, .. } => (*run, parent.as_ref()),
            _ => unreachable!("checked in Replay::new"),
        }
    }

    /// Journal time (see the module docs).
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// Entries in the journal, new ones included.
    pub fn history_len(&self) -> u32 {
        self.entries.len() as u32
    }

    /// The reason of the first cancel request in the journal, if any.
    pub fn cancel_reason(&self) -> Option<&str> {
        let index = *self.cancels.first()?;
        match &self.entries.get(index as usize)?.event {
            Event::CancelRequested { reason, .. } => Some(reason),
            _ => None,
        }
    }

    /// The whole journal.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The final entry, if the journal is closed.
    pub fn final_entry(&self) -> Option<&Entry> {
        self.entries.last().filter(|e| e.event.is_final())
    }

    /// True while journal answers remain that the workflow has not been
    /// given: its logs are silenced then.
    pub fn is_replaying(&self) -> bool {
        self.undelivered > 0
    }

    /// The guest asks for an operation: returns its handle. If the journal
    /// already has an entry for that handle, it must be for the same thing.
    pub fn start(&mut self, operation: Operation) -> Result<u32, ReplayError> {
        let seq = self.operations.len() as u32 + 1;
        if let Some(rec) = self.seqs.get(&seq) {
            let entry = &self.entries[rec.first as usize];
            if let Some(expected) = mismatch(&operation, &entry.event) {
                return Err(Nondeterminism {
                    code: ErrorCode::NondeterministicOperation,
                    index: entry.index,
                    expected,
                    got: operation.describe(),
                }
                .into());
            }
        }
        self.operations.push(OperationRecord {
            operation,
            cancelled: false,
            delivered: false,
        });
        Ok(seq)
    }

    /// The guest drops interest in `handle`.
    pub fn cancel(&mut self, handle: u32) -> Result<(), ReplayError> {
        let rec = self.operation_mut(handle)?;
        if rec.cancelled || rec.delivered {
            return Ok(());
        }
        rec.cancelled = true;
        if self
            .seqs
            .get(&handle)
            .is_some_and(|r| r.completion.is_some())
        {
            self.undelivered -= 1;
        }
        Ok(())
    }

    fn operation_mut(&mut self, handle: u32) -> Result<&mut OperationRecord, ReplayError> {
        let n = self.operations.len();
        self.operations
            .get_mut((handle as usize).wrapping_sub(1))
            .ok_or_else(|| {
                ReplayError::Protocol(format!(
                    "handle {handle} was never created (the workflow has {n})"
                ))
            })
    }

    /// The guest waits for the first of `handles` to finish.
    pub fn wait_any(&mut self, handles: &[u32]) -> Result<Wait, ReplayError> {
        if handles.is_empty() {
            return Err(ReplayError::Protocol(
                "wait-any on no handles would wait forever".into(),
            ));
        }
        let mut best: Option<(u32, u32)> = None; // (entry index, handle)
        for &h in handles {
            let rec = self.operation_mut(h)?;
            if rec.cancelled {
                return Err(ReplayError::Protocol(format!(
                    "wait-any on handle {h}, which the workflow cancelled"
                )));
            }
            if let Some(i) = self.seqs.get(&h).and_then(|r| r.completion)
                && best.is_none_or(|(bi, _)| i < bi)
            {
                best = Some((i, h));
            }
        }
        let cancel = self.cancels.get(self.cancels_delivered).copied();
        match (best, cancel) {
            (Some((i, _)), Some(c)) if c < i => self.deliver_cancel(c),
            (None, Some(c)) => self.deliver_cancel(c),
            (Some((i, h)), _) => {
                let entry = &self.entries[i as usize];
                let completion = match &entry.event {
                    Event::ActivityCompleted { result, .. } => Completion::Activity(result.clone()),
                    Event::TimerFired { .. } => Completion::Timer,
                    Event::SignalReceived { payload, .. } => Completion::Signal(payload.clone()),
                    Event::ChildCompleted { result, .. } => Completion::Child(result.clone()),
                    other => unreachable!("indexed as a completion: {}", other.kind()),
                };
                self.now = self.now.max(entry.at);
                let rec = &mut self.operations[h as usize - 1];
                if !rec.delivered {
                    rec.delivered = true;
                    self.undelivered -= 1;
                }
                Ok(Wait::Ready {
                    handle: h,
                    completion,
                })
            }
            (None, None) => {
                self.check_no_unexpected_entries()?;
                Ok(Wait::Frontier)
            }
        }
    }

    fn deliver_cancel(&mut self, index: u32) -> Result<Wait, ReplayError> {
        let entry = &self.entries[index as usize];
        let Event::CancelRequested { reason, .. } = &entry.event else {
            unreachable!()
        };
        self.now = self.now.max(entry.at);
        self.cancels_delivered += 1;
        self.undelivered -= 1;
        Ok(Wait::CancelRequested {
            reason: reason.clone(),
        })
    }

    /// At new ground every journaled operation must have been asked for.
    fn check_no_unexpected_entries(&self) -> Result<(), Nondeterminism> {
        let issued = self.operations.len() as u32;
        let unexpected = self
            .seqs
            .iter()
            .filter(|(seq, _)| **seq > issued)
            .map(|(_, r)| r.first)
            .min();
        match unexpected {
            Some(index) => Err(Nondeterminism {
                code: ErrorCode::UnexpectedEntry,
                index,
                expected: describe_entry(&self.entries[index as usize].event),
                got: format!(
                    "never asked for it (it made {issued} calls before waiting at new ground)"
                ),
            }),
            None => Ok(()),
        }
    }

    /// Operations the guest started that have not finished and were not
    /// cancelled, oldest first.
    pub fn pending(&self) -> Vec<PendingOperation> {
        let mut out = Vec::new();
        for (i, rec) in self.operations.iter().enumerate() {
            let seq = i as u32 + 1;
            let journaled = self.seqs.get(&seq);
            if rec.cancelled || journaled.is_some_and(|r| r.completion.is_some()) {
                continue;
            }
            out.push(match &rec.operation {
                Operation::Activity { name, .. } => {
                    let retry = journaled
                        .and_then(|r| r.retry)
                        .map(|i| &self.entries[i as usize].event);
                    let (attempts, retry_at) = match retry {
                        Some(Event::ActivityRetrying {
                            attempts, retry_at, ..
                        }) => (*attempts, Some(*retry_at)),
                        _ => (0, None),
                    };
                    PendingOperation::Activity {
                        seq,
                        name: name.clone(),
                        attempts,
                        retry_at,
                    }
                }
                Operation::Timer { duration_ms } => {
                    let started = journaled
                        .and_then(|r| r.timer_started)
                        .map(|i| &self.entries[i as usize].event);
                    let fire_at = match started {
                        Some(Event::TimerStarted { fire_at, .. }) => Some(*fire_at),
                        _ => None,
                    };
                    PendingOperation::Timer {
                        seq,
                        duration_ms: *duration_ms,
                        fire_at,
                    }
                }
                Operation::Signal { name } => PendingOperation::Signal {
                    seq,
                    name: name.clone(),
                },
                Operation::Child {
                    workflow, child_id, ..
                } => PendingOperation::Child {
                    seq,
                    workflow: workflow.clone(),
                    child_id: child_id.clone(),
                    started: journaled.is_some_and(|r| r.child_started.is_some()),
                },
            });
        }
        out
    }

    /// What the journal holds for operation `seq` (its completion, a
    /// durable timer's start, the latest retry, a child's start).
    pub fn journaled(&self, seq: u32) -> Journaled {
        let Some(rec) = self.seqs.get(&seq) else {
            return Journaled::default();
        };
        let event = |i: Option<u32>| i.map(|i| &self.entries[i as usize].event);
        Journaled {
            completed: rec.completion.is_some(),
            timer_fire_at: match event(rec.timer_started) {
                Some(Event::TimerStarted { fire_at, .. }) => Some(*fire_at),
                _ => None,
            },
            retry: match event(rec.retry) {
                Some(Event::ActivityRetrying {
                    attempts, retry_at, ..
                }) => Some((*attempts, *retry_at)),
                _ => None,
            },
            child_started: rec.child_started.is_some(),
        }
    }

    /// Appends a new entry (made by the driver on new ground) to the replay
    /// state; returns it, indexed and stamped, for the store.
    pub fn record(&mut self, event: Event, at: Timestamp) -> Entry {
        let entry = Entry {
            index: self.entries.len() as u32,
            at,
            event,
        };
        self.index_entry(&entry)
            .expect("the driver records well-formed entries");
        self.entries.push(entry.clone());
        entry
    }

    /// The workflow returned. Gives the final event to append, or `None` when
    /// the journal already ends with the same result (a replay of a finished
    /// execution). A different result is a nondeterminism error.
    pub fn finish(
        &mut self,
        result: Result<Payload, Failure>,
    ) -> Result<Option<Event>, ReplayError> {
        self.check_no_unexpected_entries()?;
        let event = match result {
            Ok(output) => Event::Completed { output },
            Err(failure) => Event::Failed { failure },
        };
        match self.final_entry() {
            Some(entry) if entry.event == event => Ok(None),
            Some(entry) => Err(Nondeterminism {
                code: ErrorCode::ResultMismatch,
                index: entry.index,
                expected: describe_entry(&entry.event),
                got: format!("finished with {}", describe_entry(&event)),
            }
            .into()),
            None => Ok(Some(event)),
        }
    }
}

/// Whether `operation` agrees with the first journaled `event` of its sequence
/// number; `Some(what the journal expected)` if not.
fn mismatch(operation: &Operation, event: &Event) -> Option<String> {
    let agrees = match (operation, event) {
        (
            Operation::Activity { name, input_hash },
            Event::ActivityCompleted {
                name: n,
                input_hash: h,
                ..
            }
            | Event::ActivityRetrying {
                name: n,
                input_hash: h,
                ..
            },
        ) => name == n && input_hash == h,
        (
            Operation::Timer { duration_ms },
            Event::TimerStarted { duration_ms: d, .. } | Event::TimerFired { duration_ms: d, .. },
        ) => duration_ms == d,
        (Operation::Signal { name }, Event::SignalReceived { name: n, .. }) => name == n,
        (
            Operation::Child {
                workflow,
                child_id,
                input_hash,
            },
            Event::ChildStarted {
                workflow: w,
                child_id: c,
                input_hash: h,
                ..
            },
        ) => workflow == w && child_id == c && input_hash == h,
        (Operation::Child { child_id, .. }, Event::ChildCompleted { child_id: c, .. }) => {
            child_id == c
        }
        _ => false,
    };
    (!agrees).then(|| describe_entry(event))
}

/// How an entry reads in a nondeterminism message.
pub fn describe_entry(event: &Event) -> String {
    match event {
        Event::ActivityCompleted {
            seq,
            name,
            input_hash,
            ..
        }
        | Event::ActivityRetrying {
            seq,
            name,
            input_hash,
            ..
        } => {
            format!("activity '{name}' (operation #{seq}, input hash {input_hash:016x})")
        }
        Event::TimerStarted {
            seq, duration_ms, ..
        }
        | Event::TimerFired { seq, duration_ms } => {
            format!(
                "a timer of {} (operation #{seq})",
                human_duration(*duration_ms)
            )
        }
        Event::SignalReceived { seq, name, .. } => format!("signal '{name}' (operation #{seq})"),
        Event::ChildStarted {
            seq,
            workflow,
            child_id,
            ..
        } => format!("child {child_id} of workflow '{workflow}' (operation #{seq})"),
        Event::ChildCompleted { seq, child_id, .. } => {
            format!("the result of child {child_id} (operation #{seq})")
        }
        Event::Completed { output } => format!("output {}", output.preview(60)),
        Event::Failed { failure } => format!("failure {failure}"),
        other => format!("'{}'", other.kind()),
    }
}

#[cfg(test)]
mod tests;
