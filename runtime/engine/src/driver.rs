//! One advance of one execution (see the crate docs for the algorithm).

use crate::activity::{ActivityOutcome, ActivitySpec, ActivityTask};
use crate::events::EngineEvent;
use crate::{Advance, AdvanceOptions, Engine, EngineError};
use cairn_core::replay::ReplayError;
use cairn_core::{
    Command, Completion, Entry, Event, ExecutionId, Failure, FailureKind, InboxItem, InboxMessage,
    Nondeterminism, Payload, PendingCommand, Replay, Status, StoreError, Suspend, Timestamp, Wait,
    input_hash,
};
use cairn_host::{
    ActivityOptions, Completion as WitCompletion, HostError, Interrupt, LoadedComponent, LogLevel,
    Wake, WitFailure, WitFailureKind, WorkflowCalls, WorkflowFuture,
};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Why the driver stopped the guest.
#[derive(Debug)]
enum Stop {
    /// Read-only replay reached new ground.
    Frontier,
    Suspended {
        wake_at: Option<Timestamp>,
        waiting_on: String,
    },
    Conflict(String),
    Nondeterminism(Nondeterminism),
    Protocol(String),
    Yield,
    Store(StoreError),
}

impl From<ReplayError> for Stop {
    fn from(e: ReplayError) -> Self {
        match e {
            ReplayError::Nondeterminism(n) => Stop::Nondeterminism(n),
            ReplayError::Protocol(p) => Stop::Protocol(p),
        }
    }
}

/// Retries a store call while it fails transiently.
async fn retrying<T, F, Fut>(engine: &Engine, mut call: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut attempt = 0;
    loop {
        match call().await {
            Err(e) if e.is_transient() && attempt < engine.inner.config.store_retries => {
                attempt += 1;
                tracing::warn!(attempt, "store call failed, retrying: {e}");
                tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
            }
            r => return r,
        }
    }
}

pub(crate) async fn advance(
    engine: &Engine,
    id: &ExecutionId,
    opts: AdvanceOptions,
    loaded_wake: &mut Option<Timestamp>,
) -> Result<Advance, EngineError> {
    let inner = &engine.inner;
    let ex = retrying(engine, || inner.store.load(id)).await?;
    *loaded_wake = ex.meta.wake_at;
    if ex.meta.status.is_terminal() {
        let entry = ex
            .journal
            .last()
            .cloned()
            .ok_or_else(|| EngineError::Corrupt(format!("execution {id} has no journal")))?;
        return Ok(Advance::Finished {
            status: ex.meta.status,
            entry,
        });
    }
    if ex.meta.status == Status::Parked {
        match (&opts.component, ex.meta.parked.clone()) {
            (None, Some(n)) => return Ok(Advance::Parked(n)),
            _ => inner.store.unpark(id).await?,
        }
    }
    let hash = opts
        .component
        .clone()
        .unwrap_or_else(|| ex.meta.component.clone());
    let component = engine.component(&hash).await?;
    let replay = match Replay::new(ex.journal) {
        Ok(r) => r,
        Err(n) => return park(engine, id, n).await,
    };
    let (workflow, input, seed) = {
        let (w, i, _, s) = replay.started();
        (w.to_owned(), i.clone(), s)
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let driver = Driver {
        engine: engine.clone(),
        id: id.clone(),
        component: component.clone(),
        replay,
        inbox: ex.inbox,
        inbox_version: ex.meta.inbox_version,
        specs: HashMap::new(),
        running: HashMap::new(),
        tx,
        rx,
        inline_timers: HashMap::new(),
        deadline: opts.deadline,
        read_only: false,
    };
    let (calls, result) = inner
        .sandbox
        .run_workflow(
            &component,
            &workflow,
            input.as_bytes(),
            seed,
            Box::new(driver),
        )
        .await;
    let mut driver: Box<Driver> = calls
        .into_any()
        .downcast()
        .expect("the sandbox returns the driver it was given");
    driver.abort_running();
    let result = match result {
        Ok(guest_result) => guest_result.map(Payload::new).map_err(failure_from_wit),
        Err(HostError::Interrupted(i)) => {
            let stop = i
                .downcast::<Stop>()
                .map_err(|_| EngineError::Corrupt("unknown interrupt".into()))?;
            return match stop {
                Stop::Suspended {
                    wake_at,
                    waiting_on,
                } => Ok(Advance::Suspended {
                    wake_at,
                    waiting_on,
                }),
                Stop::Conflict(reason) => {
                    tracing::info!(execution = %id, "another driver advanced the execution: {reason}");
                    Ok(Advance::Conflict { reason })
                }
                Stop::Nondeterminism(n) => park(engine, id, n).await,
                Stop::Protocol(p) => {
                    let f = Failure::new(
                        FailureKind::NonRetryable,
                        format!("{} {p}", cairn_core::ErrorCode::ProtocolViolation),
                    );
                    driver.finish(Event::Failed { failure: f }).await
                }
                Stop::Yield => Ok(Advance::Yielded),
                Stop::Store(e) => Err(e.into()),
                Stop::Frontier => Err(EngineError::Corrupt(
                    "a driving advance stopped at new ground".into(),
                )),
            };
        }
        Err(HostError::Guest(g)) => {
            tracing::warn!(execution = %id, "workflow failed in the guest: {g}");
            Err(Failure::new(FailureKind::NonRetryable, g.to_string()))
        }
        Err(e) => return Err(e.into()),
    };
    match driver.replay.finish(result) {
        Ok(Some(event)) => driver.finish(event).await,
        Ok(None) => {
            let entry = driver
                .replay
                .final_entry()
                .cloned()
                .expect("finish returned None: the journal is final");
            let status = entry.event.final_status().expect("final");
            Ok(Advance::Finished { status, entry })
        }
        Err(ReplayError::Nondeterminism(n)) => park(engine, id, n).await,
        Err(ReplayError::Protocol(p)) => {
            let f = Failure::new(
                FailureKind::NonRetryable,
                format!("{} {p}", cairn_core::ErrorCode::ProtocolViolation),
            );
            driver.finish(Event::Failed { failure: f }).await
        }
    }
}

fn engine_crash_point(engine: &Engine) -> Option<u32> {
    engine.inner.config.crash_before_append
}

async fn park(
    engine: &Engine,
    id: &ExecutionId,
    n: Nondeterminism,
) -> Result<Advance, EngineError> {
    tracing::error!(execution = %id, "parked: {n}");
    engine
        .inner
        .store
        .park(id, n.clone(), engine.inner.clock.now())
        .await?;
    Ok(Advance::Parked(n))
}

fn failure_from_wit(f: WitFailure) -> Failure {
    let kind = match f.kind {
        WitFailureKind::Application => FailureKind::Application,
        WitFailureKind::NonRetryable => FailureKind::NonRetryable,
        WitFailureKind::Timeout => FailureKind::Timeout,
        WitFailureKind::Cancelled => FailureKind::Cancelled,
    };
    Failure {
        kind,
        message: f.message,
        details: f.details.map(Payload::new),
    }
}

fn failure_to_wit(f: Failure) -> WitFailure {
    let kind = match f.kind {
        FailureKind::Application => WitFailureKind::Application,
        FailureKind::NonRetryable => WitFailureKind::NonRetryable,
        FailureKind::Timeout => WitFailureKind::Timeout,
        FailureKind::Cancelled => WitFailureKind::Cancelled,
    };
    WitFailure {
        kind,
        message: f.message,
        details: f.details.map(Payload::into_bytes),
    }
}

fn completion_to_wit(c: Completion) -> WitCompletion {
    match c {
        Completion::Activity(r) => {
            WitCompletion::Activity(r.map(Payload::into_bytes).map_err(failure_to_wit))
        }
        Completion::Timer => WitCompletion::Timer,
        Completion::Signal(p) => WitCompletion::Signal(p.into_bytes()),
    }
}

struct Driver {
    engine: Engine,
    id: ExecutionId,
    component: Arc<LoadedComponent>,
    replay: Replay,
    inbox: Vec<InboxItem>,
    inbox_version: u64,
    specs: HashMap<u32, ActivitySpec>,
    running: HashMap<u32, tokio::task::JoinHandle<()>>,
    tx: mpsc::UnboundedSender<(u32, ActivityOutcome)>,
    rx: mpsc::UnboundedReceiver<(u32, ActivityOutcome)>,
    /// Fire times of short timers waited inline (never journaled as started).
    inline_timers: HashMap<u32, Timestamp>,
    deadline: Option<Timestamp>,
    /// Replay only: stop at new ground, never append.
    read_only: bool,
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.abort_running();
    }
}

impl Driver {
    fn abort_running(&mut self) {
        for (_, task) in self.running.drain() {
            task.abort();
        }
    }

    fn now(&self) -> Timestamp {
        // Journal time never goes backwards, even if the system clock does.
        let now = self.engine.inner.clock.now();
        let last = self
            .replay
            .entries()
            .last()
            .map(|e| e.at)
            .unwrap_or_default();
        now.max(last)
    }

    fn observe(&self, event: EngineEvent) {
        if let Some(o) = &self.engine.inner.observer {
            o.event(&self.id, &event);
        }
    }

    /// Appends one entry: one durable, conditional write.
    async fn append(&mut self, event: Event, consume: Option<String>) -> Result<(), Stop> {
        let at = self.now();
        let mut entry = Entry {
            index: self.replay.history_len(),
            at,
            event,
        };
        let limit = self.engine.inner.store.max_item_bytes();
        let size = cairn_core::entry::encode(&entry).len();
        if size > limit {
            entry.event = match entry.event {
                Event::ActivityCompleted {
                    seq,
                    name,
                    input_hash,
                    attempts,
                    ..
                } => {
                    let failure = Failure::new(
                        FailureKind::NonRetryable,
                        format!(
                            "{} the output of activity '{name}' is {size} bytes; the store accepts entries up to {limit}: return a reference to large data instead",
                            cairn_core::ErrorCode::TooLarge
                        ),
                    );
                    Event::ActivityCompleted {
                        seq,
                        name,
                        input_hash,
                        attempts,
                        result: Err(failure),
                    }
                }
                Event::Completed { .. } => Event::Failed {
                    failure: Failure::new(
                        FailureKind::NonRetryable,
                        format!(
                            "{} the workflow's output is {size} bytes; the store accepts entries up to {limit}",
                            cairn_core::ErrorCode::TooLarge
                        ),
                    ),
                },
                _ => {
                    return Err(Stop::Store(StoreError::TooLarge {
                        id: self.id.clone(),
                        what: format!("journal entry {}", entry.index),
                        size,
                        limit,
                    }));
                }
            };
        }
        if engine_crash_point(&self.engine) == Some(entry.index) {
            tracing::error!(execution = %self.id, index = entry.index, "test hook: crashing before the append");
            std::process::abort();
        }
        let (engine, id) = (&self.engine, &self.id);
        let r = retrying(engine, || {
            engine.inner.store.append(
                id,
                cairn_core::Append {
                    entry: entry.clone(),
                    consume: consume.clone(),
                },
            )
        })
        .await;
        match r {
            Ok(()) => {
                let entry = self.replay.record(entry.event, at);
                tracing::debug!(execution = %self.id, index = entry.index, kind = entry.event.kind(), "appended");
                self.observe(EngineEvent::Appended(entry));
                Ok(())
            }
            Err(StoreError::Conflict { reason, .. }) => Err(Stop::Conflict(reason)),
            Err(StoreError::Finished { status, .. }) => Err(Stop::Conflict(format!(
                "the execution has already {status}"
            ))),
            Err(e) => Err(Stop::Store(e)),
        }
    }

    /// Appends the final entry (with the status change).
    async fn finish(&mut self, event: Event) -> Result<Advance, EngineError> {
        match self.append(event, None).await {
            Ok(()) => {
                let entry = self.replay.final_entry().cloned().expect("just appended");
                let status = entry.event.final_status().expect("final");
                tracing::info!(execution = %self.id, %status, "finished");
                Ok(Advance::Finished { status, entry })
            }
            Err(Stop::Conflict(reason)) => Ok(Advance::Conflict { reason }),
            Err(Stop::Store(e)) => Err(e.into()),
            Err(other) => Err(EngineError::Corrupt(format!(
                "unexpected stop while finishing: {other:?}"
            ))),
        }
    }

    fn spawn_activity(&mut self, seq: u32, attempts_before: u32) {
        let Some(spec) = self.specs.get(&seq).cloned() else {
            return;
        };
        let inner = &self.engine.inner;
        let task = ActivityTask {
            sandbox: inner.sandbox.clone(),
            component: self.component.clone(),
            clock: inner.clock.clone(),
            observer: inner.observer.clone(),
            execution: self.id.clone(),
            seq,
            spec,
            attempts_before,
            inline_retry: inner.config.inline_retry,
        };
        let tx = self.tx.clone();
        self.running.insert(
            seq,
            tokio::spawn(async move {
                let outcome = task.run().await;
                let _ = tx.send((seq, outcome));
            }),
        );
    }

    async fn wait_any(&mut self, handles: Vec<u32>) -> Result<Wake, Stop> {
        loop {
            match self.replay.wait_any(&handles)? {
                Wait::Ready { handle, completion } => {
                    return Ok(Wake::Completed((handle, completion_to_wit(completion))));
                }
                Wait::CancelRequested { reason } => return Ok(Wake::CancelRequested(reason)),
                Wait::Frontier if self.read_only => return Err(Stop::Frontier),
                Wait::Frontier => self.progress(&handles).await?,
            }
        }
    }

    /// New ground: make one step of progress (append an entry, or wait for
    /// something that will let the next call append one), or suspend.
    async fn progress(&mut self, awaited: &[u32]) -> Result<(), Stop> {
        let now = self.now();
        if self.deadline.is_some_and(|d| now >= d) && self.running.is_empty() {
            return Err(Stop::Yield);
        }
        // A cancel request is delivered at the next wait.
        if let Some(pos) = self
            .inbox
            .iter()
            .position(|i| matches!(i.message, InboxMessage::Cancel { .. }))
        {
            let item = self.inbox[pos].clone();
            let InboxMessage::Cancel { reason } = item.message else {
                unreachable!()
            };
            self.append(
                Event::CancelRequested {
                    reason,
                    inbox_id: item.id.clone(),
                },
                Some(item.id),
            )
            .await?;
            self.inbox.remove(pos);
            return Ok(());
        }
        let pending = self.replay.pending();
        // Signals: consumed only by a wait that awaits them, oldest first.
        for p in &pending {
            let PendingCommand::Signal { seq, name } = p else {
                continue;
            };
            if !awaited.contains(seq) {
                continue;
            }
            let found = self.inbox.iter().position(
                |i| matches!(&i.message, InboxMessage::Signal { name: n, .. } if n == name),
            );
            if let Some(pos) = found {
                let item = self.inbox[pos].clone();
                let InboxMessage::Signal { payload, .. } = item.message else {
                    unreachable!()
                };
                let event = Event::SignalReceived {
                    seq: *seq,
                    name: name.clone(),
                    payload,
                    inbox_id: item.id.clone(),
                };
                self.append(event, Some(item.id)).await?;
                self.inbox.remove(pos);
                return Ok(());
            }
        }
        // Timers: short ones are waited inline; long ones are journaled.
        let inline_timer = self.engine.inner.config.inline_timer;
        for p in &pending {
            let PendingCommand::Timer {
                seq,
                duration_ms,
                fire_at: None,
            } = p
            else {
                continue;
            };
            if self.inline_timers.contains_key(seq) {
                continue;
            }
            let fire_at = now.plus(Duration::from_millis(*duration_ms));
            if Duration::from_millis(*duration_ms) <= inline_timer {
                self.inline_timers.insert(*seq, fire_at);
            } else {
                self.append(
                    Event::TimerStarted {
                        seq: *seq,
                        duration_ms: *duration_ms,
                        fire_at,
                    },
                    None,
                )
                .await?;
                return Ok(());
            }
        }
        // Activities: run every pending one that is not running or waiting to retry.
        let mut next_retry: Option<(Timestamp, u32, u32)> = None;
        for p in &pending {
            let PendingCommand::Activity {
                seq,
                attempts,
                retry_at,
                ..
            } = p
            else {
                continue;
            };
            if self.running.contains_key(seq) {
                continue;
            }
            match retry_at {
                Some(t) if *t > now => {
                    if next_retry.is_none_or(|(nt, _, _)| *t < nt) {
                        next_retry = Some((*t, *seq, *attempts));
                    }
                }
                _ => {
                    if self.deadline.is_some_and(|d| now >= d) {
                        return Err(Stop::Yield);
                    }
                    self.spawn_activity(*seq, *attempts);
                }
            }
        }
        // The next timer.
        let mut next_timer: Option<(Timestamp, u32, u64)> = None;
        for p in &pending {
            let PendingCommand::Timer {
                seq,
                duration_ms,
                fire_at,
            } = p
            else {
                continue;
            };
            let t = fire_at
                .or_else(|| self.inline_timers.get(seq).copied())
                .expect("every pending timer has a fire time by now");
            if next_timer.is_none_or(|(nt, _, _)| t < nt) {
                next_timer = Some((t, *seq, *duration_ms));
            }
        }
        if let Some((t, seq, duration_ms)) = next_timer
            && t <= now
        {
            self.inline_timers.remove(&seq);
            return self
                .append(Event::TimerFired { seq, duration_ms }, None)
                .await;
        }
        // What to wait for inline: inline timers, and durable wakes that are close.
        let inline_wake = self.engine.inner.config.inline_wake;
        let timer_wait = next_timer
            .filter(|(t, seq, _)| {
                self.inline_timers.contains_key(seq) || t.since(now) <= inline_wake
            })
            .map(|(t, ..)| t);
        let retry_wait = next_retry
            .filter(|(t, ..)| t.since(now) <= inline_wake)
            .map(|(t, ..)| t);
        let mut wait_until = match (timer_wait, retry_wait) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let (Some(w), Some(d)) = (wait_until, self.deadline)
            && w > d
        {
            if self.running.is_empty() {
                return Err(Stop::Yield);
            }
            wait_until = None;
        }
        if self.running.is_empty() && wait_until.is_none() {
            let wake_at = [next_timer.map(|(t, ..)| t), next_retry.map(|(t, ..)| t)]
                .into_iter()
                .flatten()
                .min();
            return self
                .suspend(wake_at, describe(&pending, &self.inline_timers))
                .await;
        }
        let clock = self.engine.inner.clock.clone();
        let sleep = async move {
            match wait_until {
                Some(t) => clock.sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            Some((seq, outcome)) = self.rx.recv(), if !self.running.is_empty() => {
                self.running.remove(&seq);
                let Some(spec) = self.specs.get(&seq) else { return Ok(()) };
                let (name, input_hash) = (spec.name.clone(), input_hash(&spec.input));
                let event = match outcome {
                    ActivityOutcome::Done { attempts, result } => Event::ActivityCompleted { seq, name, input_hash, attempts, result },
                    ActivityOutcome::RetryLater { attempts, retry_at, failure } => {
                        Event::ActivityRetrying { seq, name, input_hash, attempts, retry_at, failure }
                    }
                };
                self.append(event, None).await
            }
            _ = sleep => {
                if let Some((t, seq, attempts)) = next_retry
                    && t <= self.engine.inner.clock.now() {
                        self.spawn_activity(seq, attempts);
                    }
                Ok(())
            }
        }
    }

    async fn suspend(
        &mut self,
        wake_at: Option<Timestamp>,
        waiting_on: String,
    ) -> Result<(), Stop> {
        let s = Suspend {
            journal_len: self.replay.history_len(),
            inbox_version: self.inbox_version,
            wake_at,
            waiting_on: waiting_on.clone(),
            at: self.now(),
        };
        let (engine, id) = (&self.engine, &self.id);
        match retrying(engine, || engine.inner.store.suspend(id, s.clone())).await {
            Ok(()) => {
                tracing::debug!(execution = %self.id, ?wake_at, %waiting_on, "suspended");
                self.observe(EngineEvent::Suspended {
                    wake_at,
                    waiting_on: waiting_on.clone(),
                });
                Err(Stop::Suspended {
                    wake_at,
                    waiting_on,
                })
            }
            Err(StoreError::Conflict { reason, .. }) => {
                // Something changed since the load: if only the inbox, take
                // it and go on; if the journal, another driver won.
                let ex = retrying(engine, || engine.inner.store.load(id))
                    .await
                    .map_err(Stop::Store)?;
                if ex.journal.len() as u32 != self.replay.history_len()
                    || ex.meta.status != Status::Running && ex.meta.status != Status::Waiting
                {
                    return Err(Stop::Conflict(reason));
                }
                tracing::debug!(execution = %self.id, "inbox changed while advancing; continuing with the new inbox");
                self.inbox = ex.inbox;
                self.inbox_version = ex.meta.inbox_version;
                Ok(())
            }
            Err(e) => Err(Stop::Store(e)),
        }
    }
}

/// What a suspended execution waits for, in words.
fn describe(pending: &[PendingCommand], inline: &HashMap<u32, Timestamp>) -> String {
    let parts: Vec<String> = pending
        .iter()
        .map(|p| match p {
            PendingCommand::Signal { name, .. } => format!("signal '{name}'"),
            PendingCommand::Timer { fire_at, seq, .. } => {
                let t = fire_at
                    .or_else(|| inline.get(seq).copied())
                    .unwrap_or_default();
                format!("timer until {t}")
            }
            PendingCommand::Activity { name, retry_at, .. } => match retry_at {
                Some(t) => format!("retry of activity '{name}' at {t}"),
                None => format!("activity '{name}'"),
            },
        })
        .collect();
    if parts.is_empty() {
        "nothing".into()
    } else {
        parts.join(", ")
    }
}

impl WorkflowCalls for Driver {
    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any + Send> {
        self
    }

    fn schedule_activity(
        &mut self,
        name: String,
        input: Vec<u8>,
        options: ActivityOptions,
    ) -> Result<u32, Interrupt> {
        let hash = input_hash(&input);
        let seq = self
            .replay
            .command(Command::Activity {
                name: name.clone(),
                input_hash: hash,
            })
            .map_err(|e| Interrupt::new(Stop::from(e)))?;
        let retry = options
            .retry
            .unwrap_or(self.engine.inner.config.default_retry);
        let timeout = options.timeout_ms.map(Duration::from_millis);
        self.specs.insert(
            seq,
            ActivitySpec {
                name,
                input: input.into(),
                retry,
                timeout,
            },
        );
        Ok(seq)
    }

    fn start_timer(&mut self, duration_ms: u64) -> Result<u32, Interrupt> {
        self.replay
            .command(Command::Timer { duration_ms })
            .map_err(|e| Interrupt::new(Stop::from(e)))
    }

    fn wait_signal(&mut self, name: String) -> Result<u32, Interrupt> {
        self.replay
            .command(Command::Signal { name })
            .map_err(|e| Interrupt::new(Stop::from(e)))
    }

    fn wait_any(&mut self, handles: Vec<u32>) -> WorkflowFuture<'_, Wake> {
        Box::pin(async move {
            Driver::wait_any(self, handles)
                .await
                .map_err(Interrupt::new)
        })
    }

    fn cancel(&mut self, handle: u32) -> Result<(), Interrupt> {
        if let Some(task) = self.running.remove(&handle) {
            task.abort();
        }
        self.inline_timers.remove(&handle);
        self.replay
            .cancel(handle)
            .map_err(|e| Interrupt::new(Stop::from(e)))
    }

    fn now_ms(&self) -> u64 {
        self.replay.now().as_millis()
    }

    fn history_len(&self) -> u32 {
        self.replay.history_len()
    }

    fn log(&mut self, level: LogLevel, message: String) {
        if self.replay.is_replaying() {
            return;
        }
        match level {
            LogLevel::Trace | LogLevel::Debug => tracing::debug!(execution = %self.id, "{message}"),
            LogLevel::Info => tracing::info!(execution = %self.id, "{message}"),
            LogLevel::Warn => tracing::warn!(execution = %self.id, "{message}"),
            LogLevel::Error => tracing::error!(execution = %self.id, "{message}"),
        }
        self.observe(EngineEvent::Log { level, message });
    }
}

/// What a read-only replay found.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplayOutcome {
    /// The component agrees with every journaled entry (up to new ground,
    /// or to the recorded result if the execution has finished).
    Compatible {
        /// Entries in the journal.
        entries: u32,
        /// Whether the replay reached the journal's final result.
        finished: bool,
    },
    /// The component diverges from the journal.
    Diverged(Nondeterminism),
    /// The guest failed while replaying (a trap, fuel, memory, a denied call)
    /// where the journal recorded something else.
    Failed(String),
}

/// Replays `id`'s journal against `component` without writing anything.
pub(crate) async fn replay(
    engine: &Engine,
    id: &ExecutionId,
    component: &Arc<LoadedComponent>,
) -> Result<ReplayOutcome, EngineError> {
    let ex = retrying(engine, || engine.inner.store.load(id)).await?;
    replay_journal(engine, id, ex.journal, component).await
}

/// Replays `journal` against `component` without writing anything.
pub(crate) async fn replay_journal(
    engine: &Engine,
    id: &ExecutionId,
    journal: Vec<Entry>,
    component: &Arc<LoadedComponent>,
) -> Result<ReplayOutcome, EngineError> {
    let entries = journal.len() as u32;
    let replay = match Replay::new(journal) {
        Ok(r) => r,
        Err(n) => return Ok(ReplayOutcome::Diverged(n)),
    };
    let (workflow, input, seed) = {
        let (w, i, _, s) = replay.started();
        (w.to_owned(), i.clone(), s)
    };
    if component.check_workflow(&workflow).is_err() {
        return Ok(ReplayOutcome::Failed(format!(
            "the component has no workflow named '{workflow}'"
        )));
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let driver = Driver {
        engine: engine.clone(),
        id: id.clone(),
        component: component.clone(),
        replay,
        inbox: Vec::new(),
        inbox_version: 0,
        specs: HashMap::new(),
        running: HashMap::new(),
        tx,
        rx,
        inline_timers: HashMap::new(),
        deadline: None,
        read_only: true,
    };
    let (calls, result) = engine
        .inner
        .sandbox
        .run_workflow(
            component,
            &workflow,
            input.as_bytes(),
            seed,
            Box::new(driver),
        )
        .await;
    let mut driver: Box<Driver> = calls
        .into_any()
        .downcast()
        .expect("the sandbox returns the driver it was given");
    let result = match result {
        Ok(r) => r.map(Payload::new).map_err(failure_from_wit),
        Err(HostError::Interrupted(i)) => {
            return match i.downcast::<Stop>() {
                Ok(Stop::Frontier) => Ok(ReplayOutcome::Compatible {
                    entries,
                    finished: false,
                }),
                Ok(Stop::Nondeterminism(n)) => Ok(ReplayOutcome::Diverged(n)),
                Ok(Stop::Protocol(p)) => Ok(ReplayOutcome::Failed(p)),
                Ok(other) => Err(EngineError::Corrupt(format!(
                    "unexpected stop in a read-only replay: {other:?}"
                ))),
                Err(_) => Err(EngineError::Corrupt("unknown interrupt".into())),
            };
        }
        Err(HostError::Guest(g)) => {
            // A journal that recorded exactly this failure is compatible.
            Err(Failure::new(FailureKind::NonRetryable, g.to_string()))
        }
        Err(e) => return Err(e.into()),
    };
    let finished = driver.replay.final_entry().is_some();
    match driver.replay.finish(result) {
        Ok(_) => Ok(ReplayOutcome::Compatible { entries, finished }),
        Err(ReplayError::Nondeterminism(n)) => Ok(ReplayOutcome::Diverged(n)),
        Err(ReplayError::Protocol(p)) => Ok(ReplayOutcome::Failed(p)),
    }
}
