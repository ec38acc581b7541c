//! One advance of one execution: the executor of
//! [`cairn_core::AdvanceMachine`]'s actions.
//!
//! The machine decides (what to append, which activity to start, when to
//! wait, suspend or yield); this module carries its actions out against the
//! store, the sandbox and the clock, and reports back: appends and their
//! conflicts, activity outcomes, children that could not be created, an
//! inbox re-read after a refused suspend. It also owns what happens around
//! the run: the load, the lease, parking, the final entry, continue-as-new
//! and telling a parent that its child finished.

use crate::activity::ActivityTask;
use crate::convert::{completion_to_wit, failure_from_wit, retry_from_wit};
use crate::events::EngineEvent;
use crate::lease::{Acquired, HeldLease, LeaseCheck};
use crate::{Advance, AdvanceOptions, Engine, EngineError, StartRequest};
use cairn_core::advance::{ActivityCall, ActivityOutcome, AdvanceConfig, ChildCall, fit_entry};
use cairn_core::replay::ReplayError;
use cairn_core::{
    Action, AdvanceMachine, ContinueAsNew, Entry, ErrorCode, Event, Execution, ExecutionId,
    Failure, FailureKind, InboxMessage, Nondeterminism, ParentRef, Payload, Replay, Status,
    StoreError, Suspend, Timestamp, Wait,
};
use cairn_host::{
    ActivityOptions, HostError, Interrupt, LoadedComponent, LogLevel, Outcome, WitFailure,
    WorkflowCalls, WorkflowExit, WorkflowFuture,
};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Why the driver stopped the guest.
#[derive(Debug)]
enum Stop {
    Suspended {
        wake_at: Option<Timestamp>,
        waiting_on: String,
    },
    Conflict(String),
    Nondeterminism(Nondeterminism),
    Protocol(String),
    Yield,
    Store(StoreError),
    /// The workflow asked to continue as new with this input.
    ContinueAsNew(Payload),
}

impl From<ReplayError> for Stop {
    fn from(e: ReplayError) -> Self {
        match e {
            ReplayError::Nondeterminism(n) => Stop::Nondeterminism(n),
            ReplayError::Protocol(p) => Stop::Protocol(p),
        }
    }
}

/// A boxed engine future, to spawn advances recursively.
type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Advances `id` here, or hands it to the engine's [`crate::Pusher`].
fn boxed_advance(engine: Engine, id: ExecutionId) -> BoxFuture<()> {
    if let Some(p) = &engine.inner.pusher {
        p.push(id);
        return Box::pin(std::future::ready(()));
    }
    Box::pin(async move {
        if let Err(e) = engine.advance(&id, AdvanceOptions::default()).await {
            tracing::warn!(execution = %id, "advance failed: {e}");
        }
    })
}

/// Retries a store call while it fails transiently.
pub(crate) async fn retrying<T, F, Fut>(engine: &Engine, mut call: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
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

/// The idempotency key of operation `seq` of `run`.
pub(crate) fn idempotency_key(id: &ExecutionId, run: u32, seq: u32) -> String {
    if run == 1 {
        format!("{id}/{seq}")
    } else {
        format!("{id}@{run}/{seq}")
    }
}

/// What a run of the workflow starts from: its journal, ready to replay,
/// and the `started` entry's workflow, input and seed.
pub(crate) struct ExecutionStart {
    pub replay: Replay,
    pub workflow: String,
    pub input: Payload,
    pub seed: u64,
}

/// Prepares the replay of `journal` by `component`. `Ok(Err(_))`: the
/// journal itself cannot be replayed.
pub(crate) fn prepare(
    journal: Vec<Entry>,
    component: &LoadedComponent,
) -> Result<Result<ExecutionStart, Nondeterminism>, EngineError> {
    let replay = match Replay::new(journal) {
        Ok(r) => r,
        Err(n) => return Ok(Err(n)),
    };
    let (workflow, input, _, seed) = replay.started();
    let (workflow, input) = (workflow.to_owned(), input.clone());
    component.check_workflow(&workflow)?;
    Ok(Ok(ExecutionStart {
        replay,
        workflow,
        input,
        seed,
    }))
}

pub(crate) async fn advance(
    engine: &Engine,
    id: &ExecutionId,
    opts: AdvanceOptions,
    loaded_wake: &mut Option<Timestamp>,
) -> Result<Advance, EngineError> {
    observe(engine, id, EngineEvent::AdvanceStarted);
    let mut lease = None;
    let r = advance_leased(engine, id, opts, loaded_wake, &mut lease).await;
    if let Some(l) = lease {
        // A suspend, a final append and a park released it in their write.
        let (release, wake_at) = match &r {
            Ok(Advance::Suspended { .. } | Advance::Finished { .. } | Advance::Parked(_)) => {
                (false, None)
            }
            // The continuation's wake: the sweep's net if its schedule is lost.
            Ok(Advance::Yielded) => (
                true,
                Some(engine.inner.clock.now().plus(Duration::from_secs(1))),
            ),
            Ok(Advance::Conflict { .. }) | Err(_) => (true, None),
        };
        l.end(engine, id, release, wake_at).await;
    }
    let outcome = match &r {
        Ok(Advance::Finished { status, .. }) => status.as_str(),
        Ok(Advance::Suspended { .. }) => "waiting",
        Ok(Advance::Conflict { .. }) => "conflict",
        Ok(Advance::Parked(_)) => "parked",
        Ok(Advance::Yielded) => "yielded",
        Err(_) => "error",
    };
    observe(engine, id, EngineEvent::AdvanceEnded { outcome });
    r
}

/// Tells the engine's observer, if any.
fn observe(engine: &Engine, id: &ExecutionId, event: EngineEvent) {
    if let Some(o) = &engine.inner.observer {
        o.event(id, &event);
    }
}

async fn advance_leased(
    engine: &Engine,
    id: &ExecutionId,
    opts: AdvanceOptions,
    loaded_wake: &mut Option<Timestamp>,
    lease: &mut Option<HeldLease>,
) -> Result<Advance, EngineError> {
    let inner = &engine.inner;
    let mut first = true;
    let mut component_override = opts.component.clone();
    loop {
        let ex = retrying(engine, || inner.store.load(id)).await?;
        if first {
            *loaded_wake = ex.meta.wake_at;
            first = false;
        }
        if ex.meta.status.is_terminal() {
            let entry =
                ex.journal.last().cloned().ok_or_else(|| {
                    EngineError::Corrupt(format!("execution {id} has no journal"))
                })?;
            // A duplicate push: make sure the parent heard (idempotent).
            if let Some(parent) = parent_of(&ex) {
                notify_parent(engine, id, &parent, &entry.event).await;
            }
            return Ok(Advance::Finished {
                status: ex.meta.status,
                entry,
            });
        }
        if ex.meta.status == Status::Parked {
            match (&component_override, ex.meta.parked.clone()) {
                (None, Some(n)) => return Ok(Advance::Parked(n)),
                _ => inner.store.unpark(id).await?,
            }
        }
        // A driver without leases (an operator's `cairn --store dynamodb`)
        // still stands back from one a push host holds.
        if inner.config.lease.is_none()
            && let Some(l) = &ex.meta.lease
            && l.until > inner.clock.now()
        {
            let reason = format!(
                "driven by {} until its lease expires at {}",
                l.owner, l.until
            );
            tracing::info!(execution = %id, "not advancing: {reason}");
            return Ok(Advance::Conflict { reason });
        }
        // An expired lease goes before a driver without one writes: its
        // holder, stalled past it, can then no longer finish the run in the
        // meta (a write fenced by the lease alone, see the DynamoDB store's
        // `inline` module) over the entries this driver appends.
        if inner.config.lease.is_none()
            && let Some(l) = &ex.meta.lease
        {
            inner.store.release_lease(id, &l.owner, None).await?;
        }
        if lease.is_none()
            && let Some(length) = inner.config.lease
        {
            match HeldLease::acquire(engine, id, length).await {
                Ok(Acquired::Held(l)) => *lease = Some(l),
                Ok(Acquired::Busy(reason)) => {
                    tracing::info!(execution = %id, "not advancing: {reason}");
                    return Ok(Advance::Conflict { reason });
                }
                // Finished since the load: the reload says how.
                Err(StoreError::Finished { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        let hash = component_override
            .take()
            .unwrap_or_else(|| ex.meta.component.clone());
        let component = engine.component(&hash).await?;
        let check = lease.as_ref().map(HeldLease::check);
        let (mut driver, exit) =
            match run_once(engine, id, ex, &component, opts.deadline, check).await? {
                Ok(pair) => pair,
                Err(n) => return park(engine, id, n).await,
            };
        let outcome = conclude(engine, id, &mut driver, exit).await;
        driver.abort_running();
        // Children started by this advance are driven before it returns.
        for task in std::mem::take(&mut driver.spawned) {
            let _ = task.await;
        }
        match outcome? {
            Next::Done(advance) => return Ok(advance),
            Next::ContinueAsNew => {
                if opts.deadline.is_some_and(|d| engine.inner.clock.now() >= d) {
                    return Ok(Advance::Yielded);
                }
                // The next run, in the same advance.
            }
        }
    }
}

enum Next {
    Done(Advance),
    ContinueAsNew,
}

fn parent_of(ex: &Execution) -> Option<ParentRef> {
    match ex.journal.first().map(|e| &e.event) {
        Some(Event::Started { parent, .. }) => parent.clone(),
        _ => None,
    }
}

/// Runs the workflow once against `ex`, driving it. `Err(nondeterminism)`
/// if the journal itself cannot be replayed.
async fn run_once(
    engine: &Engine,
    id: &ExecutionId,
    ex: Execution,
    component: &Arc<LoadedComponent>,
    deadline: Option<Timestamp>,
    lease: Option<LeaseCheck>,
) -> Result<Result<(Driver, Result<WorkflowExit, HostError>), Nondeterminism>, EngineError> {
    let ExecutionStart {
        replay,
        workflow,
        input,
        seed,
    } = match prepare(ex.journal, component)? {
        Ok(s) => s,
        Err(n) => return Ok(Err(n)),
    };
    let (run, parent) = {
        let (r, p) = replay.run_and_parent();
        (r, p.cloned())
    };
    observe(
        engine,
        id,
        EngineEvent::RunLoaded {
            workflow: workflow.clone(),
            run,
        },
    );
    let config = &engine.inner.config;
    let machine = AdvanceMachine::new(
        id.clone(),
        replay,
        ex.inbox,
        ex.meta.inbox_version,
        AdvanceConfig {
            inline_timer: config.inline_timer,
            inline_wake: config.inline_wake,
            deadline,
        },
    );
    let (tx, rx) = mpsc::unbounded_channel();
    let driver = Driver {
        engine: engine.clone(),
        id: id.clone(),
        component: component.clone(),
        machine,
        run,
        parent,
        running: HashMap::new(),
        tx,
        rx,
        lease,
        spawned: Vec::new(),
        warned_history: false,
        stop: None,
        held_back: Vec::new(),
    };
    let (driver, exit) = engine
        .inner
        .sandbox
        .run_workflow(component, &workflow, input.as_bytes(), seed, driver)
        .await;
    Ok(Ok((driver, exit)))
}

/// The outcome of an advance a failed write of held-back completions
/// stopped.
fn stopped(stop: Stop) -> Result<Next, EngineError> {
    match stop {
        Stop::Conflict(reason) => Ok(Next::Done(Advance::Conflict { reason })),
        Stop::Store(e) => Err(e.into()),
        other => Err(EngineError::Internal(format!(
            "unexpected stop while writing: {other:?}"
        ))),
    }
}

/// A failed append as the reason the advance stops.
fn stop_of(e: StoreError) -> Stop {
    match e {
        StoreError::Conflict { reason, .. } => Stop::Conflict(reason),
        StoreError::Finished { status, .. } => {
            Stop::Conflict(format!("the execution has already {status}"))
        }
        e => Stop::Store(e),
    }
}

/// Turns a driving run's end into the advance's outcome.
async fn conclude(
    engine: &Engine,
    id: &ExecutionId,
    driver: &mut Driver,
    exit: Result<WorkflowExit, HostError>,
) -> Result<Next, EngineError> {
    let protocol = |p: String| {
        Failure::new(
            FailureKind::NonRetryable,
            format!("{} {p}", ErrorCode::ProtocolViolation),
        )
    };
    let result = match exit {
        Ok(WorkflowExit::Returned(guest_result)) => {
            guest_result.map(Payload::new).map_err(failure_from_wit)
        }
        Ok(WorkflowExit::Interrupted) => {
            let stop = driver.stop.take().ok_or_else(|| {
                EngineError::Internal("the workflow was interrupted without a reason".into())
            })?;
            return match stop {
                Stop::Suspended {
                    wake_at,
                    waiting_on,
                } => Ok(Next::Done(Advance::Suspended {
                    wake_at,
                    waiting_on,
                })),
                Stop::Conflict(reason) => {
                    tracing::info!(execution = %id, "another driver advanced the execution: {reason}");
                    Ok(Next::Done(Advance::Conflict { reason }))
                }
                Stop::Nondeterminism(n) => match driver.flush().await {
                    Ok(()) => park(engine, id, n).await.map(Next::Done),
                    Err(stop) => stopped(stop),
                },
                Stop::Protocol(p) => driver
                    .finish(Event::Failed {
                        failure: protocol(p),
                    })
                    .await
                    .map(Next::Done),
                Stop::Yield => Ok(Next::Done(Advance::Yielded)),
                Stop::Store(e) => Err(e.into()),
                Stop::ContinueAsNew(input) => match driver.flush().await {
                    Ok(()) => driver.continue_as_new(input).await,
                    Err(stop) => stopped(stop),
                },
            };
        }
        Err(HostError::Guest(g)) => {
            tracing::warn!(execution = %id, "workflow failed in the guest: {g}");
            Err(Failure::new(FailureKind::NonRetryable, g.to_string()))
        }
        Err(e) => return Err(e.into()),
    };
    match driver.machine.replay_mut().finish(result) {
        Ok(Some(event)) => driver.finish(event).await.map(Next::Done),
        Ok(None) => {
            let entry = driver
                .machine
                .replay()
                .final_entry()
                .cloned()
                .expect("finish returned None: the journal is final");
            let status = entry.event.final_status().unwrap_or(Status::Running);
            Ok(Next::Done(Advance::Finished { status, entry }))
        }
        Err(ReplayError::Nondeterminism(n)) => match driver.flush().await {
            Ok(()) => park(engine, id, n).await.map(Next::Done),
            Err(stop) => stopped(stop),
        },
        Err(ReplayError::Protocol(p)) => driver
            .finish(Event::Failed {
                failure: protocol(p),
            })
            .await
            .map(Next::Done),
    }
}

async fn park(
    engine: &Engine,
    id: &ExecutionId,
    n: Nondeterminism,
) -> Result<Advance, EngineError> {
    tracing::error!(execution = %id, "parked: {n}");
    crate::crash::point(crate::crash::CrashPoint::Park);
    engine
        .inner
        .store
        .park(id, n.clone(), engine.inner.clock.now())
        .await?;
    Ok(Advance::Parked(n))
}

/// How long a finished child stays held (`Append::hold_until_heard`)
/// before whoever drives due executions tells its parent again: the lease
/// when there is one (a driver that stops after the final write is treated
/// like one whose lease expired), else 30 s.
fn hold_for(engine: &Engine) -> Duration {
    engine.inner.config.lease.unwrap_or(Duration::from_secs(30))
}

/// Tells the parent that child `id` finished (idempotent), then settles
/// the child's hold, and pushes the parent when the engine is configured to
/// (the embedded host; in AWS the stream pushes). A delivery that fails
/// leaves the hold: the child is due again, and its next advance tells the
/// parent again.
async fn notify_parent(engine: &Engine, id: &ExecutionId, parent: &ParentRef, event: &Event) {
    let result = match event {
        Event::Completed { output } => Ok(output.clone()),
        Event::Failed { failure } => Err(failure.clone()),
        _ => return,
    };
    let message = InboxMessage::ChildCompleted {
        child_id: id.clone(),
        result,
    };
    let key = format!("child.{id}");
    crate::crash::point(crate::crash::CrashPoint::Deliver);
    let push = match engine
        .inner
        .store
        .deliver_once(&parent.id, &key, message, engine.inner.clock.now())
        .await
    {
        Ok(delivered) => delivered.is_some() && engine.inner.config.push_parents,
        // The parent no longer listens: nothing to tell.
        Err(StoreError::Finished { .. }) | Err(StoreError::NotFound(_)) => false,
        Err(e) => {
            tracing::warn!(execution = %id, parent = %parent.id, "cannot tell the parent (the child stays due, to tell it again): {e}");
            return;
        }
    };
    crate::crash::point(crate::crash::CrashPoint::Settle);
    if let Err(e) = engine.inner.store.settle(id).await {
        // Harmless: the next advance of the child tells the parent again.
        tracing::warn!(execution = %id, "cannot settle the finished child: {e}");
    }
    if push {
        boxed_advance(engine.clone(), parent.id.clone()).await
    }
}

/// The executor: carries out the machine's actions for one run.
struct Driver {
    engine: Engine,
    id: ExecutionId,
    component: Arc<LoadedComponent>,
    machine: AdvanceMachine,
    run: u32,
    parent: Option<ParentRef>,
    /// Activity attempts in flight, by sequence number.
    running: HashMap<u32, tokio::task::JoinHandle<()>>,
    tx: mpsc::UnboundedSender<(u32, ActivityOutcome)>,
    rx: mpsc::UnboundedReceiver<(u32, ActivityOutcome)>,
    /// The lease this driver holds (push host): checked before each step.
    lease: Option<LeaseCheck>,
    /// Advances of children (and their deliveries) to await before returning.
    spawned: Vec<tokio::task::JoinHandle<()>>,
    warned_history: bool,
    /// Why the guest was interrupted.
    stop: Option<Stop>,
    /// Activity completions the machine has, not written yet (see
    /// [`Driver::hold_back`]).
    held_back: Vec<Entry>,
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

    fn clock(&self) -> Timestamp {
        self.engine.inner.clock.now()
    }

    fn observe(&self, event: EngineEvent) {
        if let Some(o) = &self.engine.inner.observer {
            o.event(&self.id, &event);
        }
    }

    fn spawn(&mut self, fut: BoxFuture<()>) {
        self.spawned.push(tokio::spawn(fut));
    }

    /// Stops the guest for `why`.
    fn interrupt(&mut self, why: impl Into<Stop>) -> Interrupt {
        self.stop = Some(why.into());
        Interrupt
    }

    /// Carries out an action that needs no answer: start or abort an
    /// activity attempt, ask a child to cancel.
    fn carry_out(&mut self, action: Action) {
        match action {
            Action::StartActivity {
                seq,
                call,
                attempts_before,
            } => self.spawn_activity(seq, call, attempts_before),
            Action::AbortActivity { seq } => {
                if let Some(task) = self.running.remove(&seq) {
                    task.abort();
                }
            }
            Action::CancelChild { child_id, reason } => self.cancel_child(child_id, reason),
            other => unreachable!("not a fire-and-forget action: {other:?}"),
        }
    }

    /// Refuses an entry over the store's item limit.
    fn fit(&self, entry: Entry) -> Result<Entry, Stop> {
        let limit = self.engine.inner.store.max_item_bytes();
        let index = entry.index;
        fit_entry(entry, limit).map_err(|size| {
            Stop::Store(StoreError::TooLarge {
                id: self.id.clone(),
                what: format!("journal entry {index}"),
                size,
                limit,
                advice: self.engine.inner.store.too_large_advice(),
            })
        })
    }

    /// Appends one entry: one durable, conditional write (after the
    /// completions held back, see [`Driver::hold_back`]).
    async fn append(&mut self, entry: Entry, consume: Option<String>) -> Result<(), Stop> {
        let entry = self.fit(entry)?;
        if entry.event.final_status().is_some() && consume.is_none() {
            // The held-back completions go with the final entry, in one
            // write where the store can (`Store::append_final`).
            let preceding = std::mem::take(&mut self.held_back);
            return self.write(preceding, entry, None).await;
        }
        self.flush().await?;
        self.write(Vec::new(), entry, consume).await
    }

    /// Writes `entry` (which the machine has not seen yet) after
    /// `preceding` (held back: the machine has them).
    async fn write(
        &mut self,
        preceding: Vec<Entry>,
        entry: Entry,
        consume: Option<String>,
    ) -> Result<(), Stop> {
        for e in &preceding {
            crate::crash::point(crate::crash::CrashPoint::Append(e.index));
        }
        crate::crash::point(crate::crash::CrashPoint::Append(entry.index));
        let (engine, id, run) = (&self.engine, &self.id, self.run);
        // A child's final entry keeps it due until its parent has heard.
        let hold_until_heard = (self.parent.is_some() && entry.event.final_status().is_some())
            .then(|| self.clock().plus(hold_for(engine)));
        let append = cairn_core::Append {
            run,
            entry: entry.clone(),
            consume: consume.clone(),
            hold_until_heard,
        };
        let r = if preceding.is_empty() {
            retrying(engine, || engine.inner.store.append(id, append.clone())).await
        } else {
            retrying(engine, || {
                engine
                    .inner
                    .store
                    .append_final(id, preceding.clone(), append.clone())
            })
            .await
        };
        r.map_err(stop_of)?;
        for e in preceding {
            tracing::debug!(execution = %self.id, index = e.index, kind = e.event.kind(), "appended");
            self.observe(EngineEvent::Appended(e));
        }
        tracing::debug!(execution = %self.id, index = entry.index, kind = entry.event.kind(), "appended");
        let follow = self.machine.appended(entry.clone(), consume.as_deref());
        self.observe(EngineEvent::Appended(entry));
        self.guard_history();
        for action in follow {
            self.carry_out(action);
        }
        Ok(())
    }

    /// An activity's completion, journaled in the machine now and written
    /// with the next write: before the next effect (an activity attempt, a
    /// child, a timer's wait, a suspend; see [`Driver::flush`]) or together
    /// with the final entry when the workflow ends right after it. So a
    /// workflow's last completion and its end are one write
    /// (`Store::append_final`), and no effect ever depends on a completion
    /// that is not durable: a driver stopped before the write runs that
    /// attempt again (at least once, with its idempotency key), as when it
    /// stops just before an append.
    async fn hold_back(&mut self, entry: Entry) -> Result<(), Stop> {
        let entry = self.fit(entry)?;
        let follow = self.machine.appended(entry.clone(), None);
        self.held_back.push(entry);
        self.guard_history();
        if follow
            .iter()
            .any(|a| matches!(a, Action::StartActivity { .. } | Action::CancelChild { .. }))
        {
            self.flush().await?;
        }
        for action in follow {
            self.carry_out(action);
        }
        Ok(())
    }

    /// Writes the completions held back, one append each.
    async fn flush(&mut self) -> Result<(), Stop> {
        for entry in std::mem::take(&mut self.held_back) {
            crate::crash::point(crate::crash::CrashPoint::Append(entry.index));
            let (engine, id) = (&self.engine, &self.id);
            let append = cairn_core::Append::new(self.run, entry.clone());
            retrying(engine, || engine.inner.store.append(id, append.clone()))
                .await
                .map_err(stop_of)?;
            tracing::debug!(execution = %self.id, index = entry.index, kind = entry.event.kind(), "appended");
            self.observe(EngineEvent::Appended(entry));
        }
        Ok(())
    }

    /// Warns once when the run's journal reaches the configured size.
    fn guard_history(&mut self) {
        let threshold = self.engine.inner.config.history_warn_at;
        let len = self.machine.replay().history_len();
        if !self.warned_history && len >= threshold {
            self.warned_history = true;
            let message = format!(
                "the journal of run {} has {len} entries: a long-lived workflow should call ctx.continue_as_new (see ctx.history_len())",
                self.run,
            );
            tracing::warn!(execution = %self.id, "{message}");
            self.observe(EngineEvent::Log {
                level: LogLevel::Warn,
                message,
            });
        }
    }

    /// Appends the final entry (with the status change), then tells the parent.
    async fn finish(&mut self, event: Event) -> Result<Advance, EngineError> {
        let entry = self.machine.entry(event, self.clock());
        match self.append(entry, None).await {
            Ok(()) => {
                let entry = self
                    .machine
                    .replay()
                    .final_entry()
                    .cloned()
                    .expect("just appended");
                let status = entry.event.final_status().expect("final");
                tracing::info!(execution = %self.id, %status, "finished");
                if let Some(parent) = self.parent.clone() {
                    let (engine, id, event) =
                        (self.engine.clone(), self.id.clone(), entry.event.clone());
                    self.spawn(Box::pin(async move {
                        notify_parent(&engine, &id, &parent, &event).await
                    }));
                }
                Ok(Advance::Finished { status, entry })
            }
            Err(Stop::Conflict(reason)) => Ok(Advance::Conflict { reason }),
            Err(Stop::Store(e)) => Err(e.into()),
            Err(other) => Err(EngineError::Internal(format!(
                "unexpected stop while finishing: {other:?}"
            ))),
        }
    }

    /// Closes this run and opens the next.
    async fn continue_as_new(&mut self, input: Payload) -> Result<Next, EngineError> {
        let at = self.machine.now(self.clock());
        let (workflow, _, component, seed) = self.machine.replay().started();
        let next = Entry {
            index: 0,
            at,
            event: Event::Started {
                workflow: workflow.to_owned(),
                input: input.clone(),
                component: component.clone(),
                seed: seed.rotate_left(7) ^ u64::from(self.run + 1),
                run: self.run + 1,
                parent: self.parent.clone(),
            },
        };
        let closing = Entry {
            index: self.machine.replay().history_len(),
            at,
            event: Event::ContinuedAsNew { input },
        };
        let c = ContinueAsNew {
            closing: closing.clone(),
            next: next.clone(),
            run: self.run,
        };
        let (engine, id) = (&self.engine, &self.id);
        crate::crash::point(crate::crash::CrashPoint::ContinueAsNew);
        match retrying(engine, || engine.inner.store.continue_as_new(id, c.clone())).await {
            Ok(()) => {
                tracing::info!(execution = %self.id, run = self.run + 1, "continued as new");
                self.observe(EngineEvent::Appended(closing));
                self.observe(EngineEvent::Appended(next));
                Ok(Next::ContinueAsNew)
            }
            Err(StoreError::Conflict { reason, .. }) => {
                Ok(Next::Done(Advance::Conflict { reason }))
            }
            Err(StoreError::TooLarge { size, limit, .. }) => {
                let failure = Failure::new(
                    FailureKind::NonRetryable,
                    format!(
                        "{} the input of the next run is {size} bytes; the store accepts entries up to {limit}",
                        ErrorCode::TooLarge
                    ),
                );
                self.finish(Event::Failed { failure }).await.map(Next::Done)
            }
            Err(e) => Err(e.into()),
        }
    }

    fn spawn_activity(&mut self, seq: u32, call: ActivityCall, attempts_before: u32) {
        let inner = &self.engine.inner;
        let task = ActivityTask {
            sandbox: inner.sandbox.clone(),
            component: self.component.clone(),
            clock: inner.clock.clone(),
            observer: inner.observer.clone(),
            execution: self.id.clone(),
            idempotency_key: idempotency_key(&self.id, self.run, seq),
            seq,
            call,
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

    async fn wait_any(&mut self, handles: Vec<u32>) -> Result<Outcome, Stop> {
        loop {
            match self.machine.wait_any(&handles)? {
                Wait::Ready { handle, completion } => {
                    return Ok(Outcome::Completed((handle, completion_to_wit(completion))));
                }
                Wait::CancelRequested { reason } => return Ok(Outcome::CancelRequested(reason)),
                Wait::Frontier => self.progress(&handles).await?,
            }
        }
    }

    /// New ground: carry out the machine's actions until one appends an
    /// entry (or waits for something that lets the next call append one),
    /// suspends or yields.
    async fn progress(&mut self, awaited: &[u32]) -> Result<(), Stop> {
        let clock = self.clock();
        if let Some(reason) = self
            .lease
            .as_ref()
            .and_then(|l| l.invalid(self.machine.now(clock)))
        {
            return Err(Stop::Conflict(format!(
                "stopped before the next step: {reason}"
            )));
        }
        // New ground: whatever happens next (an effect, a wait, a
        // suspend), the completions held back are written first.
        self.flush().await?;
        loop {
            match self.machine.next(awaited, clock) {
                Action::Append { entry, consume } => return self.append(entry, consume).await,
                Action::StartChild { seq, call } => {
                    if let Some(message) = self.start_child(seq, call).await?
                        && let Some(Action::Append { entry, consume }) =
                            self.machine.child_not_started(seq, message, clock)
                    {
                        return self.append(entry, consume).await;
                    }
                }
                Action::Wait { until } => return self.wait(until).await,
                Action::Suspend {
                    wake_at,
                    waiting_on,
                } => return self.suspend(wake_at, waiting_on).await,
                Action::Yield => return Err(Stop::Yield),
                action => self.carry_out(action),
            }
        }
    }

    /// Makes sure child `seq` exists and is being driven. `Some(why)`: it
    /// could not be created; its result is that failure.
    async fn start_child(&mut self, seq: u32, call: ChildCall) -> Result<Option<String>, Stop> {
        let child_id = call.child_id.clone();
        let req = StartRequest {
            workflow: call.workflow,
            id: call.child_id,
            input: call.input,
            component: Some(self.component.hash.clone()),
            parent: Some(ParentRef {
                id: self.id.clone(),
                seq,
            }),
        };
        match self.engine.start(req).await {
            // Finished or not, make sure it runs (or re-sends its news).
            Ok(_) => {
                self.spawn(boxed_advance(self.engine.clone(), child_id));
                Ok(None)
            }
            Err(EngineError::Store(e @ StoreError::Exists { .. })) => Ok(Some(e.to_string())),
            Err(EngineError::Store(e)) if e.is_transient() => Err(Stop::Store(e)),
            Err(e) => Ok(Some(format!("child {child_id} cannot start: {e}"))),
        }
    }

    /// Waits for a running activity, until `until`, or for the lease to end.
    async fn wait(&mut self, until: Option<Timestamp>) -> Result<(), Stop> {
        let clock = self.engine.inner.clock.clone();
        let sleep = async move {
            match until {
                Some(t) => clock.sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        let (lease, engine) = (self.lease.clone(), self.engine.clone());
        let lease_expired = async move {
            match lease {
                Some(l) => l.expired(&engine).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            reason = lease_expired => {
                Err(Stop::Conflict(format!("stopped mid-step, effects in flight aborted: {reason}")))
            }
            Some((seq, outcome)) = self.rx.recv(), if !self.running.is_empty() => {
                self.running.remove(&seq);
                match self.machine.activity_finished(seq, outcome, self.clock()) {
                    Some(Action::Append { entry, consume: None }) => self.hold_back(entry).await,
                    Some(Action::Append { entry, consume }) => self.append(entry, consume).await,
                    _ => Ok(()),
                }
            }
            _ = sleep => Ok(()),
        }
    }

    /// Asks child `child_id` to cancel (once: whichever request lands first
    /// is the one the child keeps) and pushes it.
    fn cancel_child(&mut self, child: ExecutionId, reason: String) {
        let engine = self.engine.clone();
        self.spawn(Box::pin(async move {
            let message = InboxMessage::Cancel { reason };
            match engine
                .inner
                .store
                .deliver_once(&child, "cancel.parent", message, engine.inner.clock.now())
                .await
            {
                Ok(Some(_)) => boxed_advance(engine, child).await,
                Ok(None) | Err(StoreError::Finished { .. }) => {}
                Err(e) => tracing::warn!(child = %child, "cannot cancel the child: {e}"),
            }
        }));
    }

    async fn suspend(
        &mut self,
        wake_at: Option<Timestamp>,
        waiting_on: String,
    ) -> Result<(), Stop> {
        let s = Suspend {
            run: self.run,
            journal_len: self.machine.replay().history_len(),
            inbox_version: self.machine.inbox_version(),
            wake_at,
            waiting_on: waiting_on.clone(),
            at: self.machine.now(self.clock()),
        };
        let (engine, id) = (&self.engine, &self.id);
        crate::crash::point(crate::crash::CrashPoint::Suspend);
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
                let len = self.machine.replay().history_len();
                let same_run = ex.meta.run == self.run && ex.journal.len() as u32 == len;
                if !same_run || !matches!(ex.meta.status, Status::Running | Status::Waiting) {
                    return Err(Stop::Conflict(reason));
                }
                tracing::debug!(execution = %self.id, "inbox changed while advancing; continuing with the new inbox");
                self.machine.inbox_replaced(ex.inbox, ex.meta.inbox_version);
                Ok(())
            }
            Err(e) => Err(Stop::Store(e)),
        }
    }
}

impl WorkflowCalls for Driver {
    fn schedule_activity(
        &mut self,
        name: String,
        input: Vec<u8>,
        options: ActivityOptions,
    ) -> Result<u32, Interrupt> {
        let call = ActivityCall {
            name,
            input: Payload::new(input),
            retry: options
                .retry
                .map(retry_from_wit)
                .unwrap_or(self.engine.inner.config.default_retry),
            timeout: options.timeout_ms.map(Duration::from_millis),
        };
        self.machine.activity(call).map_err(|e| self.interrupt(e))
    }

    fn start_timer(&mut self, duration_ms: u64) -> Result<u32, Interrupt> {
        self.machine
            .timer(duration_ms)
            .map_err(|e| self.interrupt(e))
    }

    fn wait_signal(&mut self, name: String) -> Result<u32, Interrupt> {
        self.machine.signal(name).map_err(|e| self.interrupt(e))
    }

    fn start_child(
        &mut self,
        workflow: String,
        id: String,
        input: Vec<u8>,
    ) -> Result<u32, Interrupt> {
        let child_id = match ExecutionId::new(id) {
            Ok(c) => c,
            Err(e) => return Err(self.interrupt(Stop::Protocol(format!("start-child: {e}")))),
        };
        let call = ChildCall {
            workflow,
            child_id,
            input: Payload::new(input),
        };
        self.machine.child(call).map_err(|e| self.interrupt(e))
    }

    fn wait_any(&mut self, handles: Vec<u32>) -> WorkflowFuture<'_, Outcome> {
        Box::pin(async move {
            Driver::wait_any(self, handles)
                .await
                .map_err(|stop| self.interrupt(stop))
        })
    }

    fn cancel(&mut self, handle: u32) -> Result<(), Interrupt> {
        let actions = self.machine.cancel(handle).map_err(|e| self.interrupt(e))?;
        for action in actions {
            self.carry_out(action);
        }
        Ok(())
    }

    fn now_ms(&self) -> u64 {
        self.machine.replay().now().as_millis()
    }

    fn history_len(&self) -> u32 {
        self.machine.replay().history_len()
    }

    fn log(&mut self, level: LogLevel, message: String) {
        if self.machine.replay().is_replaying() {
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

    fn execution_id(&self) -> String {
        self.id.to_string()
    }

    fn continue_as_new(&mut self, input: Vec<u8>) -> Interrupt {
        self.interrupt(Stop::ContinueAsNew(Payload::new(input)))
    }

    fn answer_query(&mut self, _answer: Result<Vec<u8>, WitFailure>) -> Interrupt {
        self.interrupt(Stop::Protocol(
            "answer-query without a query to answer".into(),
        ))
    }
}
