//! The [`Store`] trait: where journals, inboxes, wake times and components
//! live. Implementations: [`crate::MemoryStore`] (tests), SQLite (embedded
//! default), DynamoDB.
//!
//! The contract every implementation must keep (checked by
//! [`crate::store_suite`]):
//!
//! - [`Store::append`] writes entry `n` only if the journal has no entry `n`
//!   yet; otherwise [`StoreError::Conflict`], unless entry `n` is byte for
//!   byte the one being appended: a store whose replies can be lost (a
//!   network store) may then report the write done, as it is the caller's
//!   own, applied before its reply was lost (likewise the closing entry of
//!   [`Store::continue_as_new`]). (Drivers append at the length
//!   of the journal they loaded, so a stale driver always collides; no store
//!   needs to check for gaps, nor the status: a driver appends only to a
//!   journal it loaded unfinished, and a finished journal's next index is
//!   never written. This keeps DynamoDB's common step to one conditional
//!   put, at a quarter of a transaction's write cost.) One durable write per call,
//!   durable before the call returns. A final entry and the meta's status
//!   change together; a signal entry and the removal of its inbox item change
//!   together.
//! - [`Store::deliver`] adds an inbox item and bumps the meta's
//!   `inbox_version` together.
//! - [`Store::suspend`] succeeds only if the inbox version is still the one
//!   the driver loaded and the journal still has the length it saw; so a
//!   signal that lands while a driver runs is never slept through.
//! - [`Store::load`] reads meta, journal and inbox as one consistent snapshot.

use crate::error::ErrorCode;
use crate::{ComponentHash, Entry, ExecutionId, Nondeterminism, Payload, Timestamp};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::pin::Pin;

/// Future returned by store calls.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Where an execution stands. Its name (`running`, ...) is the same in
/// serde, [`Status::as_str`], [`Status::parse`] and `Display`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::Display,
    strum::VariantNames,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum Status {
    /// Created or being advanced; no driver has suspended it since.
    Running,
    /// Suspended: waiting for a timer, a signal or a retry.
    Waiting,
    /// Finished with an output.
    Completed,
    /// Finished with a failure.
    Failed,
    /// Finished after a cancel request.
    Cancelled,
    /// Stopped because its journal no longer matches its code; see `parked`.
    Parked,
}

impl Status {
    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Parses the kebab-case name.
    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }

    /// Finished for good (no driver will touch it again).
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }
}

/// Why an execution was parked.
pub type ParkInfo = Nondeterminism;

/// The meta record of one execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionMeta {
    /// Its id.
    pub id: ExecutionId,
    /// Workflow name.
    pub workflow: String,
    /// Pinned component.
    pub component: ComponentHash,
    /// Current status.
    pub status: Status,
    /// [`crate::input_hash`] of the input (idempotent start).
    pub input_hash: u64,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change to the meta.
    pub updated_at: Timestamp,
    /// Bumped by every inbox write.
    pub inbox_version: u64,
    /// When waiting: the earliest time it should be advanced again (its
    /// next timer or retry: the wake a push host schedules).
    pub wake_at: Option<Timestamp>,
    /// When a driver must look at it at the latest, whatever happens: the
    /// wake time while waiting, a held lease's expiry, shortly after an
    /// inbox write (stores that push on inbox writes). What [`Store::due`]
    /// lists; stores without leases keep it equal to `wake_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<Timestamp>,
    /// When waiting: what it waits for, in words.
    pub waiting_on: Option<String>,
    /// When parked: where replay diverged.
    pub parked: Option<ParkInfo>,
    /// The current run (1, then +1 at each continue-as-new).
    #[serde(default = "one")]
    pub run: u32,
    /// The driver that holds the execution while it advances it (stores
    /// with leases: see [`Store::acquire_lease`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Lease>,
}

/// A driver's claim on an execution: while it is valid no other driver
/// advances it. A lease that is not renewed expires; the execution's
/// `due_at` is its expiry while it is held, so a sweep over [`Store::due`]
/// finds an execution whose driver died.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// Who holds it (unique per advance).
    pub owner: String,
    /// When it expires unless renewed.
    pub until: Timestamp,
}

fn one() -> u32 {
    1
}

/// A message for an execution's inbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InboxMessage {
    /// A signal.
    Signal {
        /// Its name.
        name: String,
        /// Its payload.
        payload: Payload,
    },
    /// A request to cancel the execution.
    Cancel {
        /// Why.
        reason: String,
    },
    /// A child execution of this one finished.
    ChildCompleted {
        /// The child.
        child_id: ExecutionId,
        /// Its output or failure.
        result: Result<Payload, crate::Failure>,
    },
}

impl InboxMessage {
    /// What it is, for messages about it (`signal 'go'`).
    pub fn describe(&self) -> String {
        match self {
            Self::Signal { name, .. } => format!("signal '{name}'"),
            Self::Cancel { .. } => "the cancel request".into(),
            Self::ChildCompleted { child_id, .. } => format!("the result of child {child_id}"),
        }
    }
}

/// An inbox item: a message with its id (a ULID, so ids sort by arrival).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboxItem {
    /// Unique, time-ordered id.
    pub id: String,
    /// When it was delivered.
    pub at: Timestamp,
    /// The message.
    pub message: InboxMessage,
}

/// Everything a driver needs, read in one consistent snapshot.
#[derive(Debug, Clone)]
pub struct Execution {
    /// The meta record.
    pub meta: ExecutionMeta,
    /// The current run's journal, index 0 first.
    pub journal: Vec<Entry>,
    /// Unconsumed inbox items, oldest first.
    pub inbox: Vec<InboxItem>,
}

/// A new execution: its meta and its `started` entry (index 0).
#[derive(Debug, Clone)]
pub struct NewExecution {
    /// Meta to write (status [`Status::Running`]).
    pub meta: ExecutionMeta,
    /// Entry 0.
    pub started: Entry,
}

/// What [`Store::create`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Created {
    /// A new execution.
    New,
    /// The id existed with the same workflow and input: nothing written.
    Existing(Box<ExecutionMeta>),
}

/// One append: an entry and what must change with it.
#[derive(Debug, Clone)]
pub struct Append {
    /// The run the entry belongs to (the driver's run).
    pub run: u32,
    /// The entry; its index must equal the journal's length.
    pub entry: Entry,
    /// Inbox item consumed by this entry (signal or cancel), removed in the
    /// same write.
    pub consume: Option<String>,
    /// For a child's final entry: the finished execution stays due at this
    /// time (its `due_at`, not its `wake_at`) until its parent has heard
    /// ([`Store::settle`]). A driver stopped between the final write and
    /// the delivery to the parent is made up for by whoever drives due
    /// executions (the sweep, `cairn dev`, `cairn wake`): a finished
    /// execution's advance tells its parent again. `None` for every other
    /// append.
    pub hold_until_heard: Option<Timestamp>,
}

impl Append {
    /// An append of `entry` to run `run` that consumes nothing and holds
    /// nothing.
    pub fn new(run: u32, entry: Entry) -> Self {
        Self {
            run,
            entry,
            consume: None,
            hold_until_heard: None,
        }
    }
}

/// Closing a run and starting the next (continue-as-new), in one write.
#[derive(Debug, Clone)]
pub struct ContinueAsNew {
    /// The closing `continued-as-new` entry; its index must be the run's
    /// journal length.
    pub closing: Entry,
    /// The next run's `started` entry (index 0).
    pub next: Entry,
    /// The run being closed.
    pub run: u32,
}

/// A suspension: the driver has nothing more to do until a wake.
#[derive(Debug, Clone)]
pub struct Suspend {
    /// The run the driver advanced.
    pub run: u32,
    /// The journal length the driver saw.
    pub journal_len: u32,
    /// The inbox version the driver loaded.
    pub inbox_version: u64,
    /// Earliest wake (a timer or a retry), if any.
    pub wake_at: Option<Timestamp>,
    /// What it waits for, in words.
    pub waiting_on: String,
    /// Now (for the meta's `updated_at`).
    pub at: Timestamp,
}

/// Filter for [`Store::list`].
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Only these statuses (all when empty).
    pub status: Vec<Status>,
    /// Only this workflow.
    pub workflow: Option<String>,
    /// At most this many, most recently updated first.
    pub limit: usize,
}

/// Why a store call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    /// Another driver advanced the execution, or its inbox changed: reload.
    #[error("{} conflict on execution {id}: {reason}", ErrorCode::Conflict)]
    Conflict {
        /// The execution.
        id: ExecutionId,
        /// What changed underneath.
        reason: String,
    },
    /// No such execution.
    #[error("{code} no execution with id '{0}': check the id with `cairn list`", code = ErrorCode::ExecutionNotFound)]
    NotFound(ExecutionId),
    /// The id exists with another workflow or input.
    #[error(
        "{} execution '{id}' already exists with {what}: choose another id, or pass the same workflow and input to get the existing one",
        ErrorCode::ExecutionExists
    )]
    Exists {
        /// The execution.
        id: ExecutionId,
        /// What differs.
        what: String,
    },
    /// The execution has finished; it takes no more messages.
    #[error(
        "{} execution '{id}' has already {status}; it takes no more signals or cancel requests",
        ErrorCode::ExecutionFinished
    )]
    Finished {
        /// The execution.
        id: ExecutionId,
        /// Its final status.
        status: Status,
    },
    /// An item would exceed the store's size limit.
    #[error(
        "{} {what} of execution '{id}' is {size} bytes; the store accepts at most {limit}: {advice}",
        ErrorCode::TooLarge
    )]
    TooLarge {
        /// The execution.
        id: ExecutionId,
        /// What was too large (`journal entry 7`, `signal 'x'`...).
        what: String,
        /// Its encoded size.
        size: usize,
        /// The limit.
        limit: usize,
        /// What to do instead (the store's [`Store::too_large_advice`]).
        advice: String,
    },
    /// The store failed in a way a retry may fix.
    #[error("{code} store unavailable: {0}", code = ErrorCode::StoreUnavailable)]
    Unavailable(String),
    /// Another driver holds an unexpired lease on the execution.
    #[error(
        "{} execution '{id}' is being advanced by {owner} (lease until {until}): it will be driven by that driver, or by the sweep once the lease expires",
        ErrorCode::Conflict
    )]
    Leased {
        /// The execution.
        id: ExecutionId,
        /// The lease's holder.
        owner: String,
        /// Its expiry.
        until: Timestamp,
    },
    /// The store is not usable as configured.
    #[error("{code} store misconfigured: {0}", code = ErrorCode::StoreMisconfigured)]
    Misconfigured(String),
    /// Stored data cannot be read.
    #[error(
        "{} stored data of execution '{id}' is unreadable: {reason}",
        ErrorCode::CorruptJournal
    )]
    Corrupt {
        /// The execution.
        id: ExecutionId,
        /// What is wrong.
        reason: String,
    },
}

impl StoreError {
    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Conflict { .. } | Self::Leased { .. } => ErrorCode::Conflict,
            Self::NotFound(_) => ErrorCode::ExecutionNotFound,
            Self::Exists { .. } => ErrorCode::ExecutionExists,
            Self::Finished { .. } => ErrorCode::ExecutionFinished,
            Self::TooLarge { .. } => ErrorCode::TooLarge,
            Self::Unavailable(_) => ErrorCode::StoreUnavailable,
            Self::Misconfigured(_) => ErrorCode::StoreMisconfigured,
            Self::Corrupt { .. } => ErrorCode::CorruptJournal,
        }
    }

    /// Whether retrying the same call may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// The advice of [`StoreError::TooLarge`] unless a store says more.
pub const DEFAULT_TOO_LARGE_ADVICE: &str =
    "pass large data by reference (e.g. an object-store key) instead";

/// Storage for executions. See the module docs for the contract.
pub trait Store: Send + Sync + 'static {
    /// Creates an execution (meta + `started` entry) unless the id exists.
    /// Same workflow and input: [`Created::Existing`]; otherwise
    /// [`StoreError::Exists`].
    fn create(&self, new: NewExecution) -> StoreFuture<'_, Created>;

    /// Meta, journal and inbox of `id` in one consistent read.
    fn load<'a>(&'a self, id: &'a ExecutionId) -> StoreFuture<'a, Execution>;

    /// Largest encoded journal entry or inbox message this store accepts.
    fn max_item_bytes(&self) -> usize {
        usize::MAX
    }

    /// What a caller refused for an item over [`Store::max_item_bytes`]
    /// should do instead (the end of [`StoreError::TooLarge`]'s message).
    fn too_large_advice(&self) -> String {
        DEFAULT_TOO_LARGE_ADVICE.to_string()
    }

    /// Meta of `id` only.
    fn meta<'a>(&'a self, id: &'a ExecutionId) -> StoreFuture<'a, ExecutionMeta>;

    /// Appends one entry (see [`Append`]); a final entry also sets the status.
    fn append<'a>(&'a self, id: &'a ExecutionId, append: Append) -> StoreFuture<'a, ()>;

    /// Appends `preceding` (entries of `append.run` not written yet, in
    /// order, each consuming nothing), then `append` (the run's final
    /// entry): the activity completions a driver held back because the
    /// workflow finished right after them. A store may write them all at
    /// once (DynamoDB: one update of the meta, see its crate docs); the
    /// default writes them one by one, each an [`Store::append`], so a
    /// writer stopped in between leaves a prefix, as any append does.
    fn append_final<'a>(
        &'a self,
        id: &'a ExecutionId,
        preceding: Vec<Entry>,
        append: Append,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            for entry in preceding {
                self.append(id, Append::new(append.run, entry)).await?;
            }
            self.append(id, append).await
        })
    }

    /// Closes run `c.run` with `c.closing` and starts run `c.run + 1` with
    /// `c.next`, together; the meta's run moves on, its status is running.
    /// Conflict if the run has another length or is not the current one.
    fn continue_as_new<'a>(&'a self, id: &'a ExecutionId, c: ContinueAsNew) -> StoreFuture<'a, ()>;

    /// The journal of an earlier (or the current) run.
    fn load_run<'a>(&'a self, id: &'a ExecutionId, run: u32) -> StoreFuture<'a, Vec<Entry>>;

    /// Marks the execution waiting (see [`Suspend`]).
    fn suspend<'a>(&'a self, id: &'a ExecutionId, suspend: Suspend) -> StoreFuture<'a, ()>;

    /// Parks the execution: its journal no longer matches its code.
    fn park<'a>(
        &'a self,
        id: &'a ExecutionId,
        info: ParkInfo,
        at: Timestamp,
    ) -> StoreFuture<'a, ()>;

    /// Clears a park so that a driver may try again (with another component).
    fn unpark<'a>(&'a self, id: &'a ExecutionId) -> StoreFuture<'a, ()>;

    /// Adds a message to the inbox and bumps the inbox version, together;
    /// returns the item. Fails with [`StoreError::Finished`] on a finished
    /// execution.
    fn deliver<'a>(
        &'a self,
        id: &'a ExecutionId,
        message: InboxMessage,
        at: Timestamp,
    ) -> StoreFuture<'a, InboxItem>;

    /// Like [`Store::deliver`], with the item id `key`: delivering the same
    /// key again (pending or consumed) does nothing and returns `None`. For
    /// messages the runtime may send twice after a crash (a child's result,
    /// a parent's cancel).
    fn deliver_once<'a>(
        &'a self,
        id: &'a ExecutionId,
        key: &'a str,
        message: InboxMessage,
        at: Timestamp,
    ) -> StoreFuture<'a, Option<InboxItem>>;

    /// Clears the hold of finished execution `id` (see
    /// [`Append::hold_until_heard`]): its parent has heard. Nothing if it
    /// holds none or has not finished; [`StoreError::NotFound`] if unknown.
    fn settle<'a>(&'a self, id: &'a ExecutionId) -> StoreFuture<'a, ()>;

    /// Executions, most recently updated first.
    fn list(&self, filter: ListFilter) -> StoreFuture<'_, Vec<ExecutionMeta>>;

    /// Executions whose `due_at` is at or before `now` (a timer or retry
    /// due, an expired lease, an inbox write not taken in time, a finished
    /// child whose parent may not have heard), earliest first, at most
    /// `limit`.
    fn due(&self, now: Timestamp, limit: usize) -> StoreFuture<'_, Vec<(ExecutionId, Timestamp)>>;

    /// Stores a component's bytes under its hash (idempotent).
    fn put_component<'a>(&'a self, hash: &'a ComponentHash, bytes: &'a [u8])
    -> StoreFuture<'a, ()>;

    /// A component's bytes, if stored.
    fn get_component<'a>(&'a self, hash: &'a ComponentHash) -> StoreFuture<'a, Option<Vec<u8>>>;

    /// Points workflow `name` at `hash` for new executions (`cairn register`).
    fn set_workflow_component<'a>(
        &'a self,
        name: &'a str,
        hash: &'a ComponentHash,
    ) -> StoreFuture<'a, ()>;

    /// The component new executions of `name` use, if registered.
    fn workflow_component<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<ComponentHash>>;

    /// Every stored component: its hash and its size in bytes, in hash
    /// order. For operator tools (`cairn components`), not a hot path: a
    /// store may read all of its components' records (DynamoDB scans the
    /// whole table once).
    fn list_components(&self) -> StoreFuture<'_, Vec<(ComponentHash, u64)>>;

    /// Every workflow pointer ([`Store::set_workflow_component`]): the
    /// workflow's name and the component it points at, in name order.
    /// Like [`Store::list_components`], an operator tool's read.
    fn list_workflows(&self) -> StoreFuture<'_, Vec<(String, ComponentHash)>>;

    /// Removes a component's bytes; true if it was stored. The caller
    /// decides that nothing needs them any more (no workflow points at it,
    /// no unfinished execution is pinned to it): the store does not check.
    /// A store that keeps a component in several records removes the one
    /// that makes it visible first, so an interrupted delete never leaves a
    /// component that claims bytes it no longer has (deleting again removes
    /// what is left).
    fn delete_component<'a>(&'a self, hash: &'a ComponentHash) -> StoreFuture<'a, bool>;

    /// Takes the lease of unfinished execution `id` for `owner` until
    /// `until`, if it has none, its lease expired (at or before `now`), or
    /// `owner` holds it. While held, the meta's `due_at` is `until`, so
    /// [`Store::due`] shows an execution whose driver died once the lease
    /// expires. [`StoreError::Leased`] if another driver holds it;
    /// [`StoreError::Finished`] if it has finished. A suspend, a final
    /// append and a park release the lease in the same write.
    ///
    /// Stores without leases (the default) refuse with
    /// [`StoreError::Misconfigured`]; the engine asks only when configured
    /// with a lease.
    fn acquire_lease<'a>(
        &'a self,
        id: &'a ExecutionId,
        owner: &'a str,
        until: Timestamp,
        now: Timestamp,
    ) -> StoreFuture<'a, ()> {
        let _ = (owner, until, now);
        no_leases(id)
    }

    /// Extends `owner`'s lease of `id` to `until` (and the meta's `due_at`
    /// with it). [`StoreError::Conflict`] if `owner` no longer holds it.
    fn renew_lease<'a>(
        &'a self,
        id: &'a ExecutionId,
        owner: &'a str,
        until: Timestamp,
    ) -> StoreFuture<'a, ()> {
        let _ = (owner, until);
        no_leases(id)
    }

    /// Gives up `owner`'s lease of `id` (nothing if it holds none). With
    /// `wake_at`, the meta's `due_at` becomes it (a continuation); without,
    /// it is left as it is (the lease's expiry: the sweep looks then).
    fn release_lease<'a>(
        &'a self,
        id: &'a ExecutionId,
        owner: &'a str,
        wake_at: Option<Timestamp>,
    ) -> StoreFuture<'a, ()> {
        let _ = (owner, wake_at);
        no_leases(id)
    }
}

/// What the lease calls of a store without leases answer.
fn no_leases<'a>(id: &ExecutionId) -> StoreFuture<'a, ()> {
    Box::pin(std::future::ready(Err(StoreError::Misconfigured(format!(
        "this store has no leases (execution {id}): run the engine without one"
    )))))
}

impl<S: Store + ?Sized> Store for std::sync::Arc<S> {
    fn create(&self, new: NewExecution) -> StoreFuture<'_, Created> {
        (**self).create(new)
    }
    fn load<'a>(&'a self, id: &'a ExecutionId) -> StoreFuture<'a, Execution> {
        (**self).load(id)
    }
    fn meta<'a>(&'a self, id: &'a ExecutionId) -> StoreFuture<'a, ExecutionMeta> {
        (**self).meta(id)
    }
    fn max_item_bytes(&self) -> usize {
        (**self).max_item_bytes()
    }

    fn too_large_advice(&self) -> String {
        (**self).too_large_advice()
    }
    fn append<'a>(&'a self, id: &'a ExecutionId, append: Append) -> StoreFuture<'a, ()> {
        (**self).append(id, append)
    }
    fn append_final<'a>(
        &'a self,
        id: &'a ExecutionId,
        preceding: Vec<Entry>,
        append: Append,
    ) -> StoreFuture<'a, ()> {
        (**self).append_final(id, preceding, append)
    }
    fn suspend<'a>(&'a self, id: &'a ExecutionId, suspend: Suspend) -> StoreFuture<'a, ()> {
        (**self).suspend(id, suspend)
    }
    fn continue_as_new<'a>(&'a self, id: &'a ExecutionId, c: ContinueAsNew) -> StoreFuture<'a, ()> {
        (**self).continue_as_new(id, c)
    }
    fn load_run<'a>(&'a self, id: &'a ExecutionId, run: u32) -> StoreFuture<'a, Vec<Entry>> {
        (**self).load_run(id, run)
    }
    fn deliver_once<'a>(
        &'a self,
        id: &'a ExecutionId,
        key: &'a str,
        message: InboxMessage,
        at: Timestamp,
    ) -> StoreFuture<'a, Option<InboxItem>> {
        (**self).deliver_once(id, key, message, at)
    }
    fn park<'a>(
        &'a self,
        id: &'a ExecutionId,
        info: ParkInfo,
        at: Timestamp,
    ) -> StoreFuture<'a, ()> {
        (**self).park(id, info, at)
    }
    fn unpark<'a>(&'a self, id: &'a ExecutionId) -> StoreFuture<'a, ()> {
        (**self).unpark(id)
    }
    fn deliver<'a>(
        &'a self,
        id: &'a ExecutionId,
        message: InboxMessage,
        at: Timestamp,
    ) -> StoreFuture<'a, InboxItem> {
        (**self).deliver(id, message, at)
    }
    fn settle<'a>(&'a self, id: &'a ExecutionId) -> StoreFuture<'a, ()> {
        (**self).settle(id)
    }
    fn list(&self, filter: ListFilter) -> StoreFuture<'_, Vec<ExecutionMeta>> {
        (**self).list(filter)
    }
    fn due(&self, now: Timestamp, limit: usize) -> StoreFuture<'_, Vec<(ExecutionId, Timestamp)>> {
        (**self).due(now, limit)
    }
    fn put_component<'a>(
        &'a self,
        hash: &'a ComponentHash,
        bytes: &'a [u8],
    ) -> StoreFuture<'a, ()> {
        (**self).put_component(hash, bytes)
    }
    fn get_component<'a>(&'a self, hash: &'a ComponentHash) -> StoreFuture<'a, Option<Vec<u8>>> {
        (**self).get_component(hash)
    }
    fn set_workflow_component<'a>(
        &'a self,
        name: &'a str,
        hash: &'a ComponentHash,
    ) -> StoreFuture<'a, ()> {
        (**self).set_workflow_component(name, hash)
    }
    fn workflow_component<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<ComponentHash>> {
        (**self).workflow_component(name)
    }
    fn list_components(&self) -> StoreFuture<'_, Vec<(ComponentHash, u64)>> {
        (**self).list_components()
    }
    fn list_workflows(&self) -> StoreFuture<'_, Vec<(String, ComponentHash)>> {
        (**self).list_workflows()
    }
    fn delete_component<'a>(&'a self, hash: &'a ComponentHash) -> StoreFuture<'a, bool> {
        (**self).delete_component(hash)
    }
    fn acquire_lease<'a>(
        &'a self,
        id: &'a ExecutionId,
        owner: &'a str,
        until: Timestamp,
        now: Timestamp,
    ) -> StoreFuture<'a, ()> {
        (**self).acquire_lease(id, owner, until, now)
    }
    fn renew_lease<'a>(
        &'a self,
        id: &'a ExecutionId,
        owner: &'a str,
        until: Timestamp,
    ) -> StoreFuture<'a, ()> {
        (**self).renew_lease(id, owner, until)
    }
    fn release_lease<'a>(
        &'a self,
        id: &'a ExecutionId,
        owner: &'a str,
        wake_at: Option<Timestamp>,
    ) -> StoreFuture<'a, ()> {
        (**self).release_lease(id, owner, wake_at)
    }
}
