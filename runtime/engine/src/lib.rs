//! # cairn-engine: the driver
//!
//! Advances executions against any [`Store`], running workflows in the
//! [`Sandbox`]. One [`Engine::advance`] is the algorithm of ARCHITECTURE.md:
//!
//! 1. load the execution (one read: meta, journal, inbox);
//! 2. finished? return (duplicate pushes are harmless);
//! 3. instantiate its pinned component (cached, precompiled);
//! 4. run the workflow: the journal answers its calls ([`cairn_core::Replay`]);
//!    at new ground [`cairn_core::AdvanceMachine`] decides and the driver
//!    carries its actions out: it runs activities (their own instances,
//!    retry policy), starts timers (short ones waited inline, long ones
//!    journaled and suspended), consumes signals and cancel requests from
//!    the inbox;
//! 5. every new entry is one conditional append, durable before the next
//!    effect starts; a conflict means another driver won: stop;
//! 6. suspend only if the inbox and journal are as loaded; else take the new
//!    inbox and go on;
//! 7. near the deadline, stop at a step boundary ([`Advance::Yielded`]).

mod activity;
pub mod api;
mod components;
mod convert;
mod crash;
mod driver;
mod error;
mod events;
mod family;
mod lease;
mod readonly;

pub use components::{ComponentUse, GcAction, GcReport, MissingComponent};
pub use error::EngineError;
pub use events::{EngineEvent, Observer, Pusher};
pub use readonly::ReplayOutcome;

use cairn_core::{
    Clock, ComponentHash, Created, Entry, Event, Execution, ExecutionId, ExecutionMeta, InboxItem,
    InboxMessage, ListFilter, NewExecution, Nondeterminism, Payload, Status, Store, Timestamp,
    input_hash,
};
use cairn_host::{ComponentBytes, LoadedComponent, Sandbox};
use std::sync::Arc;
use std::time::Duration;

/// The system clock, sleeping on tokio's timer.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now_system()
    }

    fn sleep_until(&self, t: Timestamp) -> cairn_core::clock::ClockFuture {
        let d = t.since(Timestamp::now_system());
        Box::pin(tokio::time::sleep(d))
    }
}

/// How the driver behaves.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Timers at most this long are waited inline (not journaled as started);
    /// longer ones are journaled and the execution suspends.
    pub inline_timer: Duration,
    /// Retry delays at most this long are waited inline; longer ones are
    /// journaled (`activity-retrying`) and the execution suspends.
    pub inline_retry: Duration,
    /// A durable timer or retry due within this is waited inline instead of
    /// suspending (saves a suspend + wake round trip).
    pub inline_wake: Duration,
    /// Retry policy of activities that set none.
    pub default_retry: cairn_core::RetryPolicy,
    /// Store errors marked transient are retried this many times.
    pub store_retries: u32,
    /// Directories holding components as `<sha256>.wasm` (the Lambda
    /// layer), looked in before the store.
    pub component_dirs: Vec<std::path::PathBuf>,
    /// A run's journal reaching this many entries logs a warning (the
    /// workflow should continue as new).
    pub history_warn_at: u32,
    /// After a child finishes, advance its parent here (the embedded host);
    /// off where something else pushes on inbox writes (the Lambda host's
    /// table stream).
    pub push_parents: bool,
    /// Hold a lease of this length on each execution while advancing it
    /// (the push host, where many invocations may race): a second driver
    /// stands back while it is valid, and a driver that died leaves an
    /// execution the sweep finds once it expires (`Store::due`). `None`
    /// (embedded use): conditional appends alone keep journals right.
    pub lease: Option<Duration>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            inline_timer: Duration::from_secs(1),
            inline_retry: Duration::from_secs(5),
            inline_wake: Duration::from_millis(500),
            default_retry: cairn_core::RetryPolicy::default(),
            store_retries: 3,
            history_warn_at: 10_000,
            push_parents: true,
            component_dirs: Vec::new(),
            lease: None,
        }
    }
}

/// A request to start an execution.
#[derive(Debug, Clone)]
pub struct StartRequest {
    /// Workflow name.
    pub workflow: String,
    /// Execution id.
    pub id: ExecutionId,
    /// Input (JSON by convention).
    pub input: Payload,
    /// The component to pin; `None`: the one registered for the workflow.
    pub component: Option<ComponentHash>,
    /// For a child execution: its parent and the parent's operation.
    pub parent: Option<cairn_core::ParentRef>,
}

/// What [`Engine::start`] did.
#[derive(Debug, Clone)]
pub struct Started {
    /// The execution's meta.
    pub meta: ExecutionMeta,
    /// False when the execution already existed with the same input.
    pub created: bool,
}

/// Options of one advance.
#[derive(Debug, Clone, Default)]
pub struct AdvanceOptions {
    /// Stop at a step boundary once the clock passes this.
    pub deadline: Option<Timestamp>,
    /// Replay against this component instead of the pinned one (upgrade in
    /// place); a divergence parks the execution. Also un-parks it.
    pub component: Option<ComponentHash>,
}

/// The outcome of one advance.
#[derive(Debug, Clone, PartialEq)]
pub enum Advance {
    /// The execution has finished (now or before).
    Finished {
        /// Its status.
        status: Status,
        /// Its final entry.
        entry: Entry,
    },
    /// It waits for a timer, a retry or a signal.
    Suspended {
        /// The earliest wake time, if any.
        wake_at: Option<Timestamp>,
        /// What it waits for.
        waiting_on: String,
    },
    /// Another driver advanced it first; this one stopped cleanly.
    Conflict {
        /// What happened.
        reason: String,
    },
    /// Its journal does not match its code: parked, journal untouched.
    Parked(Nondeterminism),
    /// The deadline came: stopped at a step boundary; push a continuation.
    Yielded,
}

/// The engine: a sandbox, a store and a clock.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Clone)]
pub(crate) struct Inner {
    pub(crate) sandbox: Arc<Sandbox>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: EngineConfig,
    pub(crate) observer: Option<Arc<dyn Observer>>,
    pub(crate) pusher: Option<Arc<dyn Pusher>>,
    /// Leases taken by [`Engine::start`] in the create itself, until the
    /// advance that follows adopts them (see `lease::HeldLease::adopt`).
    pub(crate) started_leases: lease::StartedLeases,
}

impl Engine {
    /// An engine over `store`, running guests in `sandbox`, timed by `clock`.
    pub fn new(
        sandbox: Arc<Sandbox>,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        config: EngineConfig,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                sandbox,
                store,
                clock,
                config,
                observer: None,
                pusher: None,
                started_leases: Default::default(),
            }),
        }
    }

    /// Reports progress to `observer` (the CLI prints it).
    pub fn with_observer(self, observer: Arc<dyn Observer>) -> Self {
        Self {
            inner: Arc::new(Inner {
                observer: Some(observer),
                ..(*self.inner).clone()
            }),
        }
    }

    /// This engine, sending the advances it would run inline to `pusher`
    /// instead (see [`Pusher`]).
    pub fn with_pusher(self, pusher: Arc<dyn Pusher>) -> Self {
        Self {
            inner: Arc::new(Inner {
                pusher: Some(pusher),
                ..(*self.inner).clone()
            }),
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// The sandbox.
    pub fn sandbox(&self) -> &Arc<Sandbox> {
        &self.inner.sandbox
    }

    /// Loads a component into the sandbox and stores its bytes (by hash).
    pub async fn add_component(
        &self,
        bytes: ComponentBytes,
    ) -> Result<Arc<LoadedComponent>, EngineError> {
        let loaded = self.inner.sandbox.load(&bytes).await?;
        self.inner
            .store
            .put_component(&bytes.hash, &bytes.bytes)
            .await?;
        Ok(loaded)
    }

    /// Adds a component and points each of its workflows at it for new
    /// executions (`cairn register`). Running executions keep theirs.
    pub async fn register(
        &self,
        bytes: ComponentBytes,
    ) -> Result<Arc<LoadedComponent>, EngineError> {
        let loaded = self.add_component(bytes).await?;
        for wf in &loaded.info.workflows {
            self.inner
                .store
                .set_workflow_component(wf, &loaded.hash)
                .await?;
        }
        Ok(loaded)
    }

    /// A component by hash: from the sandbox, else from the store.
    pub async fn component(
        &self,
        hash: &ComponentHash,
    ) -> Result<Arc<LoadedComponent>, EngineError> {
        if let Some(c) = self.inner.sandbox.loaded(hash) {
            return Ok(c);
        }
        let from_dir = self
            .inner
            .config
            .component_dirs
            .iter()
            .map(|d| d.join(format!("{hash}.wasm")))
            .find(|p| p.is_file());
        let bytes = match from_dir {
            Some(path) => std::fs::read(&path).map_err(|e| {
                EngineError::Corrupt(format!("cannot read component {}: {e}", path.display()))
            })?,
            None => self
                .inner
                .store
                .get_component(hash)
                .await?
                .ok_or_else(|| EngineError::ComponentNotFound(hash.clone()))?,
        };
        let bytes = ComponentBytes::new(bytes);
        if &bytes.hash != hash {
            return Err(EngineError::Corrupt(format!(
                "component {hash} in the store hashes to {}",
                bytes.hash
            )));
        }
        Ok(self.inner.sandbox.load(&bytes).await?)
    }

    /// Creates an execution (idempotent: the same id, workflow and input
    /// return the existing one). Does not advance it.
    pub async fn start(&self, req: StartRequest) -> Result<Started, EngineError> {
        let hash = match req.component {
            Some(h) => h,
            None => self
                .inner
                .store
                .workflow_component(&req.workflow)
                .await?
                .ok_or_else(|| EngineError::NoComponentFor(req.workflow.clone()))?,
        };
        let component = self.component(&hash).await?;
        component.check_workflow(&req.workflow)?;
        let now = self.inner.clock.now();
        let seed = input_hash(req.id.as_str().as_bytes()) ^ now.as_millis().rotate_left(32);
        let started = Entry {
            index: 0,
            at: now,
            event: Event::Started {
                workflow: req.workflow.clone(),
                input: req.input.clone(),
                component: hash.clone(),
                seed,
                run: 1,
                parent: req.parent.clone(),
            },
        };
        let size = cairn_core::entry::encode(&started).len();
        let limit = self.inner.store.max_item_bytes();
        if size > limit {
            return Err(cairn_core::StoreError::TooLarge {
                id: req.id.clone(),
                what: "the input (journal entry 0)".into(),
                size,
                limit,
                advice: self.inner.store.too_large_advice(),
            }
            .into());
        }
        let meta = ExecutionMeta {
            id: req.id.clone(),
            workflow: req.workflow.clone(),
            component: hash,
            status: Status::Running,
            input_hash: input_hash(req.input.as_bytes()),
            created_at: now,
            updated_at: now,
            inbox_version: 0,
            wake_at: None,
            due_at: None,
            waiting_on: None,
            parked: None,
            run: 1,
            // A push host takes the lease in the create (one write fewer
            // than a create and then an acquire); the advance that follows
            // adopts it.
            lease: self.inner.config.lease.map(|length| cairn_core::Lease {
                owner: lease::new_owner(),
                until: now.plus(length),
            }),
        };
        match self
            .inner
            .store
            .create(NewExecution {
                meta: meta.clone(),
                started,
            })
            .await?
        {
            Created::New => {
                if let Some(l) = &meta.lease {
                    self.inner.started_leases.put(&req.id, l.clone());
                }
                tracing::info!(execution = %req.id, workflow = %req.workflow, "started");
                Ok(Started {
                    meta,
                    created: true,
                })
            }
            Created::Existing(meta) => Ok(Started {
                meta: *meta,
                created: false,
            }),
        }
    }

    /// Advances execution `id` as far as it can go now.
    pub async fn advance(
        &self,
        id: &ExecutionId,
        opts: AdvanceOptions,
    ) -> Result<Advance, EngineError> {
        driver::advance(self, id, opts, &mut None).await
    }

    /// Like [`Engine::advance`], also telling the wake time the execution had
    /// when loaded (a push host deletes that timer's schedule if it changed).
    pub async fn advance_reporting_wake(
        &self,
        id: &ExecutionId,
        opts: AdvanceOptions,
    ) -> Result<(Advance, Option<Timestamp>), EngineError> {
        let mut wake = None;
        let r = driver::advance(self, id, opts, &mut wake).await?;
        Ok((r, wake))
    }

    /// Replays `id`'s journal against `component` (default: its pinned one)
    /// without writing anything: is this code compatible with it?
    pub async fn replay(
        &self,
        id: &ExecutionId,
        component: Option<&ComponentHash>,
    ) -> Result<ReplayOutcome, EngineError> {
        let hash = match component {
            Some(h) => h.clone(),
            None => self.inner.store.meta(id).await?.component,
        };
        let component = self.component(&hash).await?;
        readonly::replay(self, id, &component).await
    }

    /// Asks a running execution's workflow the query `name` (answered by a
    /// handler it registered with `ctx.on_query`, on a replayed instance:
    /// nothing is written).
    pub async fn query(
        &self,
        id: &ExecutionId,
        name: &str,
        args: Payload,
    ) -> Result<Result<Payload, cairn_core::Failure>, EngineError> {
        readonly::query(self, id, name, args).await
    }

    /// Writes a signal to the execution's inbox. The caller pushes an
    /// advance (the CLI does it at once; in AWS the table's stream does).
    pub async fn signal(
        &self,
        id: &ExecutionId,
        name: &str,
        payload: Payload,
    ) -> Result<InboxItem, EngineError> {
        self.deliver(
            id,
            InboxMessage::Signal {
                name: name.into(),
                payload,
            },
        )
        .await
    }

    /// Like [`Engine::signal`], idempotent by a caller-chosen `key`: the
    /// same key again (a caller's retry after a lost reply, a duplicate
    /// event) delivers nothing and returns `None`. Keys are kept as long as
    /// consumed inbox items are (7 days on DynamoDB).
    pub async fn signal_once(
        &self,
        id: &ExecutionId,
        name: &str,
        payload: Payload,
        key: &str,
    ) -> Result<Option<InboxItem>, EngineError> {
        if key.is_empty() || key.len() > 200 || key.chars().any(char::is_control) {
            return Err(EngineError::BadInput(format!(
                "idempotency key {key:?}: use 1 to 200 printable characters"
            )));
        }
        let message = InboxMessage::Signal {
            name: name.into(),
            payload,
        };
        self.check_message_size(id, &message)?;
        Ok(self
            .inner
            .store
            .deliver_once(
                id,
                &format!("signal.{key}"),
                message,
                self.inner.clock.now(),
            )
            .await?)
    }

    /// Writes a cancel request to the execution's inbox.
    pub async fn cancel(&self, id: &ExecutionId, reason: &str) -> Result<InboxItem, EngineError> {
        self.deliver(
            id,
            InboxMessage::Cancel {
                reason: reason.into(),
            },
        )
        .await
    }

    async fn deliver(
        &self,
        id: &ExecutionId,
        message: InboxMessage,
    ) -> Result<InboxItem, EngineError> {
        self.check_message_size(id, &message)?;
        Ok(self
            .inner
            .store
            .deliver(id, message, self.inner.clock.now())
            .await?)
    }

    fn check_message_size(
        &self,
        id: &ExecutionId,
        message: &InboxMessage,
    ) -> Result<(), EngineError> {
        let size = serde_json::to_vec(message).map(|v| v.len()).unwrap_or(0);
        let limit = self.inner.store.max_item_bytes();
        if size > limit {
            return Err(cairn_core::StoreError::TooLarge {
                id: id.clone(),
                what: message.describe(),
                size,
                limit,
                advice: self.inner.store.too_large_advice(),
            }
            .into());
        }
        Ok(())
    }

    /// Meta, journal and inbox of an execution.
    pub async fn load(&self, id: &ExecutionId) -> Result<Execution, EngineError> {
        Ok(self.inner.store.load(id).await?)
    }

    /// Lists every stored component with its size, the workflows pointing
    /// at it and the unfinished executions (running, waiting, parked) pinned
    /// to it; one that nothing needs is removable (finished executions pin
    /// nothing: see the `components` module). With `apply`, deletes the
    /// removable ones, looking again for pointers and pins right before
    /// each delete (one listing of the unfinished executions per delete).
    ///
    /// An operator tool: it reads every workflow pointer, every unfinished
    /// execution and every component record (on DynamoDB, table scans).
    /// An execution started with an explicit component file
    /// (`cairn start C.wasm`) in the instant between that last look and the
    /// delete would still find its component gone: run the collection
    /// between deploys, not during one.
    pub async fn components_gc(&self, apply: bool) -> Result<GcReport, EngineError> {
        components::gc(self, apply).await
    }

    /// Executions, most recent first.
    pub async fn list(&self, filter: ListFilter) -> Result<Vec<ExecutionMeta>, EngineError> {
        Ok(self.inner.store.list(filter).await?)
    }
}
