//! One advance of one execution (see the crate docs for the algorithm), and
//! the read-only replays behind `replay-check` and queries.

use crate::activity::{ActivityOutcome, ActivitySpec, ActivityTask};
use crate::events::EngineEvent;
use crate::lease::{Acquired, HeldLease, LeaseCheck};
use crate::{Advance, AdvanceOptions, Engine, EngineError, StartRequest};
use cairn_core::replay::ReplayError;
use cairn_core::{
    Command, Completion, ContinueAsNew, Entry, ErrorCode, Event, Execution, ExecutionId, Failure,
    FailureKind, InboxItem, InboxMessage, Nondeterminism, ParentRef, Payload, PendingCommand,
    Replay, Status, StoreError, Suspend, Timestamp, Wait, input_hash,
};
use cairn_host::{
    ActivityOptions, Completion as WitCompletion, HostError, Interrupt, LoadedComponent, LogLevel,
    QueryRequest, Wake, WitFailure, WitFailureKind, WorkflowCalls, WorkflowFuture,
};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Why the driver stopped the guest.
#[derive(Debug)]
enum Stop {
    /// A read-only replay reached new ground.
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
    /// The workflow asked to continue as new with this input.
    ContinueAsNew(Payload),
    /// The workflow answered a query.
    QueryAnswered(Result<Payload, Failure>),
}

impl From<ReplayError> for Stop {
    fn from(e: ReplayError) -> Self {
        match e {
            ReplayError::Nondeterminism(n) => Stop::Nondeterminism(n),
            ReplayError::Protocol(p) => Stop::Protocol(p),
        }
    }
}

/// How a driver treats new ground.
#[derive(Debug, Clone)]
enum Mode {
    /// Make progress: run activities, append entries, suspend.
    Drive,
    /// Stop at new ground (replay-check).
    ReadOnly,
    /// At new ground, ask the workflow this query (then stop).
    Query(Option<QueryRequest>),
}

/// A boxed engine future, to spawn advances recursively.
type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

fn boxed_advance(engine: Engine, id: ExecutionId) -> BoxFuture<()> {
    Box::pin(async move {
        if let Err(e) = engine.advance(&id, AdvanceOptions::default()).await {
            tracing::warn!(execution = %id, "advance failed: {e}");
        }
    })
}

/// Retries a store call while it fails transiently.
async fn retrying<T, F, Fut>(engine: &Engine, mut call: F) -> Result<T, StoreError>
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

pub(crate) async fn advance(
    engine: &Engine,
    id: &ExecutionId,
    opts: AdvanceOptions,
    loaded_wake: &mut Option<Timestamp>,
) -> Result<Advance, EngineError> {
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
    r
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
        let (mut driver, result) = match run_once(
            engine,
            id,
            ex,
            &component,
            Mode::Drive,
            opts.deadline,
            check,
        )
        .await?
        {
            Ok(pair) => pair,
            Err(n) => return park(engine, id, n).await,
        };
        let outcome = conclude(engine, id, &mut driver, result).await;
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

/// Runs the workflow once against `ex` in `mode`. `Err(nondeterminism)` if
/// the journal itself cannot be replayed.
async fn run_once(
    engine: &Engine,
    id: &ExecutionId,
    ex: Execution,
    component: &Arc<LoadedComponent>,
    mode: Mode,
    deadline: Option<Timestamp>,
    lease: Option<LeaseCheck>,
) -> Result<
    Result<(Box<Driver>, Result<Result<Vec<u8>, WitFailure>, HostError>), Nondeterminism>,
    EngineError,
> {
    let replay = match Replay::new(ex.journal) {
        Ok(r) => r,
        Err(n) => return Ok(Err(n)),
    };
    let (workflow, input, seed) = {
        let (w, i, _, s) = replay.started();
        (w.to_owned(), i.clone(), s)
    };
    if component.check_workflow(&workflow).is_err() {
        return Err(EngineError::Host(HostError::UnknownWorkflow {
            name: workflow,
            known: component.info.workflows.join(", "),
        }));
    }
    let (run, parent) = {
        let (r, p) = replay.run_and_parent();
        (r, p.cloned())
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let driver = Driver {
        engine: engine.clone(),
        id: id.clone(),
        component: component.clone(),
        replay,
        run,
        parent,
        inbox: ex.inbox,
        inbox_version: ex.meta.inbox_version,
        specs: HashMap::new(),
        children: HashMap::new(),
        ensured: HashSet::new(),
        running: HashMap::new(),
        tx,
        rx,
        inline_timers: HashMap::new(),
        deadline,
        lease,
        mode,
        spawned: Vec::new(),
        warned_history: false,
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
    let driver: Box<Driver> = calls
        .into_any()
        .downcast()
        .expect("the sandbox returns the driver it was given");
    Ok(Ok((driver, result)))
}

/// Turns a driving run's result into the advance's outcome.
async fn conclude(
    engine: &Engine,
    id: &ExecutionId,
    driver: &mut Driver,
    result: Result<Result<Vec<u8>, WitFailure>, HostError>,
) -> Result<Next, EngineError> {
    let protocol = |p: String| {
        Failure::new(
            FailureKind::NonRetryable,
            format!("{} {p}", ErrorCode::ProtocolViolation),
        )
    };
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
                } => Ok(Next::Done(Advance::Suspended {
                    wake_at,
                    waiting_on,
                })),
                Stop::Conflict(reason) => {
                    tracing::info!(execution = %id, "another driver advanced the execution: {reason}");
                    Ok(Next::Done(Advance::Conflict { reason }))
                }
                Stop::Nondeterminism(n) => park(engine, id, n).await.map(Next::Done),
                Stop::Protocol(p) => driver
                    .finish(Event::Failed {
                        failure: protocol(p),
                    })
                    .await
                    .map(Next::Done),
                Stop::Yield => Ok(Next::Done(Advance::Yielded)),
                Stop::Store(e) => Err(e.into()),
                Stop::ContinueAsNew(input) => driver.continue_as_new(input).await,
                Stop::Frontier | Stop::QueryAnswered(_) => Err(EngineError::Corrupt(
                    "a driving advance stopped as a read-only one".into(),
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
        Ok(Some(event)) => driver.finish(event).await.map(Next::Done),
        Ok(None) => {
            let entry = driver
                .replay
                .final_entry()
                .cloned()
                .expect("finish returned None: the journal is final");
            let status = entry.event.final_status().unwrap_or(Status::Running);
            Ok(Next::Done(Advance::Finished { status, entry }))
        }
        Err(ReplayError::Nondeterminism(n)) => park(engine, id, n).await.map(Next::Done),
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

/// Tells the parent that child `id` finished (idempotent), and pushes it when
/// the engine is configured to (the embedded host; in AWS the stream pushes).
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
    match engine
        .inner
        .store
        .deliver_once(&parent.id, &key, message, engine.inner.clock.now())
        .await
    {
        Ok(Some(_)) if engine.inner.config.push_parents => {
            boxed_advance(engine.clone(), parent.id.clone()).await
        }
        Ok(_) => {}
        Err(StoreError::Finished { .. }) | Err(StoreError::NotFound(_)) => {}
        Err(e) => {
            tracing::warn!(execution = %id, parent = %parent.id, "cannot tell the parent: {e}")
        }
    }
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
        Completion::Child(r) => {
            WitCompletion::Child(r.map(Payload::into_bytes).map_err(failure_to_wit))
        }
    }
}

/// What the workflow asked a child to be.
#[derive(Debug, Clone)]
struct ChildSpec {
    workflow: String,
    input: Payload,
}

struct Driver {
    engine: Engine,
    id: ExecutionId,
    component: Arc<LoadedComponent>,
    replay: Replay,
    run: u32,
    parent: Option<ParentRef>,
    inbox: Vec<InboxItem>,
    inbox_version: u64,
    specs: HashMap<u32, ActivitySpec>,
    children: HashMap<u32, ChildSpec>,
    /// Children this driver made sure exist (and pushed).
    ensured: HashSet<u32>,
    running: HashMap<u32, tokio::task::JoinHandle<()>>,
    tx: mpsc::UnboundedSender<(u32, ActivityOutcome)>,
    rx: mpsc::UnboundedReceiver<(u32, ActivityOutcome)>,
    /// Fire times of short timers waited inline (never journaled as started).
    inline_timers: HashMap<u32, Timestamp>,
    deadline: Option<Timestamp>,
    /// The lease this driver holds (push host): checked before each step.
    lease: Option<LeaseCheck>,
    mode: Mode,
    /// Advances of children (and their deliveries) to await before returning.
    spawned: Vec<tokio::task::JoinHandle<()>>,
    warned_history: bool,
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

    fn spawn(&mut self, fut: BoxFuture<()>) {
        self.spawned.push(tokio::spawn(fut));
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
                            ErrorCode::TooLarge
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
                            ErrorCode::TooLarge
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
        crate::crash::point(crate::crash::CrashPoint::Append(entry.index));
        let (engine, id, run) = (&self.engine, &self.id, self.run);
        let r = retrying(engine, || {
            engine.inner.store.append(
                id,
                cairn_core::Append {
                    run,
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
                self.guard_history();
                Ok(())
            }
            Err(StoreError::Conflict { reason, .. }) => Err(Stop::Conflict(reason)),
            Err(StoreError::Finished { status, .. }) => Err(Stop::Conflict(format!(
                "the execution has already {status}"
            ))),
            Err(e) => Err(Stop::Store(e)),
        }
    }

    /// Warns once when the run's journal reaches the configured size.
    fn guard_history(&mut self) {
        let threshold = self.engine.inner.config.history_warn_at;
        if !self.warned_history && self.replay.history_len() >= threshold {
            self.warned_history = true;
            let message = format!(
                "the journal of run {} has {} entries: a long-lived workflow should call ctx.continue_as_new (see ctx.history_len())",
                self.run,
                self.replay.history_len()
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
        match self.append(event, None).await {
            Ok(()) => {
                let entry = self.replay.final_entry().cloned().expect("just appended");
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
            Err(other) => Err(EngineError::Corrupt(format!(
                "unexpected stop while finishing: {other:?}"
            ))),
        }
    }

    /// Closes this run and opens the next.
    async fn continue_as_new(&mut self, input: Payload) -> Result<Next, EngineError> {
        let at = self.now();
        let (workflow, _, component, seed) = self.replay.started();
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
            index: self.replay.history_len(),
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
            idempotency_key: idempotency_key(&self.id, self.run, seq),
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
                Wait::Frontier => match &mut self.mode {
                    Mode::Drive => self.progress(&handles).await?,
                    Mode::ReadOnly => return Err(Stop::Frontier),
                    Mode::Query(q) => match q.take() {
                        Some(q) => return Ok(Wake::Query(q)),
                        None => {
                            return Err(Stop::Protocol(
                                "the workflow waited again instead of answering the query".into(),
                            ));
                        }
                    },
                },
            }
        }
    }

    /// Makes sure child `seq` exists and is being driven. `Some(entry)`: the
    /// child could not be created; its result is this failure.
    async fn ensure_child(
        &mut self,
        seq: u32,
        child_id: &ExecutionId,
    ) -> Result<Option<Event>, Stop> {
        if !self.ensured.insert(seq) {
            return Ok(None);
        }
        let Some(spec) = self.children.get(&seq).cloned() else {
            return Ok(None);
        };
        let req = StartRequest {
            workflow: spec.workflow.clone(),
            id: child_id.clone(),
            input: spec.input.clone(),
            component: Some(self.component.hash.clone()),
            parent: Some(ParentRef {
                id: self.id.clone(),
                seq,
            }),
        };
        let failed = |message: String| {
            Some(Event::ChildCompleted {
                seq,
                child_id: child_id.clone(),
                result: Err(Failure::new(FailureKind::NonRetryable, message)),
                inbox_id: String::new(),
            })
        };
        match self.engine.start(req).await {
            Ok(started) if started.meta.status.is_terminal() => {
                // It finished, but its news may have been lost: ask again.
                let (engine, child) = (self.engine.clone(), child_id.clone());
                self.spawn(boxed_advance(engine, child));
                Ok(None)
            }
            Ok(_) => {
                self.spawn(boxed_advance(self.engine.clone(), child_id.clone()));
                Ok(None)
            }
            Err(EngineError::Store(e @ StoreError::Exists { .. })) => Ok(failed(e.to_string())),
            Err(EngineError::Store(e)) if e.is_transient() => Err(Stop::Store(e)),
            Err(e) => Ok(failed(format!("child {child_id} cannot start: {e}"))),
        }
    }

    /// New ground: make one step of progress (append an entry, or wait for
    /// something that will let the next call append one), or suspend.
    async fn progress(&mut self, awaited: &[u32]) -> Result<(), Stop> {
        let now = self.now();
        if let Some(reason) = self.lease.as_ref().and_then(|l| l.invalid(now)) {
            return Err(Stop::Conflict(format!(
                "stopped before the next step: {reason}"
            )));
        }
        if self.deadline.is_some_and(|d| now >= d) && self.running.is_empty() {
            return Err(Stop::Yield);
        }
        let pending = self.replay.pending();
        // A cancel request is delivered at the next wait; children are cancelled too.
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
                    reason: reason.clone(),
                    inbox_id: item.id.clone(),
                },
                Some(item.id),
            )
            .await?;
            self.inbox.remove(pos);
            for p in &pending {
                if let PendingCommand::Child {
                    child_id,
                    started: true,
                    ..
                } = p
                {
                    self.cancel_child(child_id);
                }
            }
            return Ok(());
        }
        // Signals and children's results: consumed only by a wait that awaits them.
        for p in &pending {
            let (seq, found) = match p {
                PendingCommand::Signal { seq, name } if awaited.contains(seq) => {
                    (*seq, self.inbox.iter().position(|i| matches!(&i.message, InboxMessage::Signal { name: n, .. } if n == name)))
                }
                PendingCommand::Child { seq, child_id, started: true, .. } if awaited.contains(seq) => (
                    *seq,
                    self.inbox.iter().position(|i| matches!(&i.message, InboxMessage::ChildCompleted { child_id: c, .. } if c == child_id)),
                ),
                _ => continue,
            };
            let Some(pos) = found else { continue };
            let item = self.inbox[pos].clone();
            let event = match (item.message, p) {
                (InboxMessage::Signal { payload, .. }, PendingCommand::Signal { name, .. }) => {
                    Event::SignalReceived {
                        seq,
                        name: name.clone(),
                        payload,
                        inbox_id: item.id.clone(),
                    }
                }
                (InboxMessage::ChildCompleted { child_id, result }, _) => Event::ChildCompleted {
                    seq,
                    child_id,
                    result,
                    inbox_id: item.id.clone(),
                },
                _ => unreachable!("matched above"),
            };
            self.append(event, Some(item.id)).await?;
            self.inbox.remove(pos);
            return Ok(());
        }
        // Children: journal the start, then make sure each exists and runs.
        for p in &pending {
            let PendingCommand::Child {
                seq,
                workflow,
                child_id,
                started,
            } = p
            else {
                continue;
            };
            if !started {
                let hash = self
                    .children
                    .get(seq)
                    .map(|c| input_hash(c.input.as_bytes()))
                    .unwrap_or(0);
                self.append(
                    Event::ChildStarted {
                        seq: *seq,
                        workflow: workflow.clone(),
                        child_id: child_id.clone(),
                        input_hash: hash,
                    },
                    None,
                )
                .await?;
                return Ok(());
            }
            if let Some(event) = self.ensure_child(*seq, child_id).await? {
                self.append(event, None).await?;
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
                    && t <= self.engine.inner.clock.now()
                {
                    self.spawn_activity(seq, attempts);
                }
                Ok(())
            }
        }
    }

    /// Asks child `child_id` to cancel (once: whichever request lands first
    /// is the one the child keeps) and pushes it. The reason says whether
    /// this execution was cancelled or merely stopped waiting for the child.
    fn cancel_child(&mut self, child_id: &ExecutionId) {
        let reason = match self.replay.cancel_reason() {
            Some(r) => format!("its parent {} was cancelled: {r}", self.id),
            None => format!("its parent {} no longer waits for it", self.id),
        };
        let (engine, child) = (self.engine.clone(), child_id.clone());
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
            journal_len: self.replay.history_len(),
            inbox_version: self.inbox_version,
            wake_at,
            waiting_on: waiting_on.clone(),
            at: self.now(),
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
                let same_run =
                    ex.meta.run == self.run && ex.journal.len() as u32 == self.replay.history_len();
                if !same_run || !matches!(ex.meta.status, Status::Running | Status::Waiting) {
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
            PendingCommand::Child { child_id, .. } => format!("child {child_id}"),
        })
        .collect();
    if parts.is_empty() {
        "nothing".into()
    } else {
        parts.join(", ")
    }
}

fn interrupt(e: ReplayError) -> Interrupt {
    Interrupt::new(Stop::from(e))
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
            .map_err(interrupt)?;
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
            .map_err(interrupt)
    }

    fn wait_signal(&mut self, name: String) -> Result<u32, Interrupt> {
        self.replay
            .command(Command::Signal { name })
            .map_err(interrupt)
    }

    fn start_child(
        &mut self,
        workflow: String,
        id: String,
        input: Vec<u8>,
    ) -> Result<u32, Interrupt> {
        let child_id = ExecutionId::new(id)
            .map_err(|e| Interrupt::new(Stop::Protocol(format!("start-child: {e}"))))?;
        if child_id == self.id {
            return Err(Interrupt::new(Stop::Protocol(format!(
                "start-child: {child_id} is this execution's own id"
            ))));
        }
        let input = Payload::new(input);
        let command = Command::Child {
            workflow: workflow.clone(),
            child_id,
            input_hash: input_hash(input.as_bytes()),
        };
        let seq = self.replay.command(command).map_err(interrupt)?;
        self.children.insert(seq, ChildSpec { workflow, input });
        Ok(seq)
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
        if matches!(self.mode, Mode::Drive) {
            let child = self.replay.pending().into_iter().find_map(|p| match p {
                PendingCommand::Child {
                    seq,
                    child_id,
                    started: true,
                    ..
                } if seq == handle => Some(child_id),
                _ => None,
            });
            if let Some(child) = child {
                self.cancel_child(&child);
            }
        }
        self.replay.cancel(handle).map_err(interrupt)
    }

    fn now_ms(&self) -> u64 {
        self.replay.now().as_millis()
    }

    fn history_len(&self) -> u32 {
        self.replay.history_len()
    }

    fn log(&mut self, level: LogLevel, message: String) {
        if self.replay.is_replaying() || !matches!(self.mode, Mode::Drive) {
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
        match self.mode {
            Mode::Drive => Interrupt::new(Stop::ContinueAsNew(Payload::new(input))),
            // A read-only replay that gets here has matched the whole run.
            Mode::ReadOnly | Mode::Query(_) => Interrupt::new(Stop::Frontier),
        }
    }

    fn answer_query(&mut self, answer: Result<Vec<u8>, WitFailure>) -> Interrupt {
        Interrupt::new(Stop::QueryAnswered(
            answer.map(Payload::new).map_err(failure_from_wit),
        ))
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

/// Replays `id`'s current run against `component` without writing anything.
pub(crate) async fn replay(
    engine: &Engine,
    id: &ExecutionId,
    component: &Arc<LoadedComponent>,
) -> Result<ReplayOutcome, EngineError> {
    let ex = retrying(engine, || engine.inner.store.load(id)).await?;
    let entries = ex.journal.len() as u32;
    let (driver, result) =
        match run_once(engine, id, ex, component, Mode::ReadOnly, None, None).await {
            Ok(Ok(pair)) => pair,
            Ok(Err(n)) => return Ok(ReplayOutcome::Diverged(n)),
            Err(EngineError::Host(HostError::UnknownWorkflow { name, .. })) => {
                return Ok(ReplayOutcome::Failed(format!(
                    "the component has no workflow named '{name}'"
                )));
            }
            Err(e) => return Err(e),
        };
    let mut driver = driver;
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
        // A journal that recorded exactly this failure is compatible.
        Err(HostError::Guest(g)) => Err(Failure::new(FailureKind::NonRetryable, g.to_string())),
        Err(e) => return Err(e.into()),
    };
    let finished = driver.replay.final_entry().is_some();
    match driver.replay.finish(result) {
        Ok(_) => Ok(ReplayOutcome::Compatible { entries, finished }),
        Err(ReplayError::Nondeterminism(n)) => Ok(ReplayOutcome::Diverged(n)),
        Err(ReplayError::Protocol(p)) => Ok(ReplayOutcome::Failed(p)),
    }
}

/// Asks a running execution's workflow a query, on a replayed instance.
pub(crate) async fn query(
    engine: &Engine,
    id: &ExecutionId,
    name: &str,
    args: Payload,
) -> Result<Result<Payload, Failure>, EngineError> {
    let ex = retrying(engine, || engine.inner.store.load(id)).await?;
    if ex.meta.status.is_terminal() {
        return Err(EngineError::QueryFinished {
            id: id.clone(),
            status: ex.meta.status,
        });
    }
    let component = engine.component(&ex.meta.component).await?;
    let request = QueryRequest {
        name: name.to_string(),
        args: args.into_bytes(),
    };
    let (_, result) = match run_once(
        engine,
        id,
        ex,
        &component,
        Mode::Query(Some(request)),
        None,
        None,
    )
    .await?
    {
        Ok(pair) => pair,
        Err(n) => {
            return Err(EngineError::Corrupt(format!(
                "the journal cannot be replayed: {n}"
            )));
        }
    };
    match result {
        Err(HostError::Interrupted(i)) => match i.downcast::<Stop>() {
            Ok(Stop::QueryAnswered(answer)) => Ok(answer),
            Ok(Stop::Nondeterminism(n)) => Err(EngineError::Corrupt(format!(
                "the execution diverges from its code: {n}"
            ))),
            Ok(Stop::Frontier) => Err(EngineError::QueryFinished {
                id: id.clone(),
                status: Status::Running,
            }),
            Ok(other) => Err(EngineError::Corrupt(format!(
                "the query stopped unexpectedly: {other:?}"
            ))),
            Err(_) => Err(EngineError::Corrupt("unknown interrupt".into())),
        },
        Err(e) => Err(e.into()),
        Ok(_) => Err(EngineError::Corrupt(
            "the workflow returned while answering a query".into(),
        )),
    }
}
