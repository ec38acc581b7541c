//! [`FaultStore`]: wraps a store and, on chosen calls, fails them, fails them
//! after they happened, or delivers an inbox message first (a signal landing
//! while a driver runs).

use cairn_core::store::*;
use cairn_core::{ComponentHash, ExecutionId, Timestamp};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A store call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `create`
    Create,
    /// `load`
    Load,
    /// `append`
    Append,
    /// `suspend`
    Suspend,
    /// `deliver`
    Deliver,
    /// `deliver_once` (a child's result to its parent)
    DeliverOnce,
}

/// What to do on the `nth` (1-based) call of an op.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Fail it without forwarding.
    Fail {
        /// Which call.
        op: Op,
        /// Its number.
        nth: usize,
        /// The error.
        error: StoreError,
    },
    /// Forward it, then report `error` anyway (the write happened: a lost reply).
    FailAfter {
        /// Which call.
        op: Op,
        /// Its number.
        nth: usize,
        /// The error.
        error: StoreError,
    },
    /// Deliver `message` to the execution first, then forward the call.
    DeliverFirst {
        /// Which call.
        op: Op,
        /// Its number.
        nth: usize,
        /// The message.
        message: InboxMessage,
    },
}

impl Fault {
    fn target(&self) -> (Op, usize) {
        match self {
            Fault::Fail { op, nth, .. }
            | Fault::FailAfter { op, nth, .. }
            | Fault::DeliverFirst { op, nth, .. } => (*op, *nth),
        }
    }
}

/// A store wrapper that injects [`Fault`]s and records every call.
pub struct FaultStore {
    inner: Arc<dyn Store>,
    faults: Mutex<Vec<Fault>>,
    counts: Mutex<HashMap<Op, usize>>,
    /// Append calls seen, by index, with whether they succeeded.
    pub appends: Mutex<Vec<(u32, bool)>>,
}

impl FaultStore {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            inner,
            faults: Mutex::new(Vec::new()),
            counts: Mutex::new(HashMap::new()),
            appends: Mutex::new(Vec::new()),
        }
    }

    /// Adds a fault.
    pub fn inject(&self, fault: Fault) {
        self.faults.lock().unwrap().push(fault);
    }

    /// Calls made to `op` so far.
    pub fn calls(&self, op: Op) -> usize {
        self.counts.lock().unwrap().get(&op).copied().unwrap_or(0)
    }

    fn take(&self, op: Op) -> Option<Fault> {
        let n = {
            let mut counts = self.counts.lock().unwrap();
            let c = counts.entry(op).or_default();
            *c += 1;
            *c
        };
        let mut faults = self.faults.lock().unwrap();
        let pos = faults.iter().position(|f| f.target() == (op, n))?;
        Some(faults.remove(pos))
    }

    async fn around<T>(
        &self,
        op: Op,
        id: Option<&ExecutionId>,
        call: StoreFuture<'_, T>,
    ) -> Result<T, StoreError> {
        match self.take(op) {
            None => call.await,
            Some(Fault::Fail { error, .. }) => Err(error),
            Some(Fault::FailAfter { error, .. }) => {
                let _ = call.await;
                Err(error)
            }
            Some(Fault::DeliverFirst { message, .. }) => {
                let id = id.expect("deliveries need an execution");
                self.inner
                    .deliver(id, message, Timestamp::now_system())
                    .await?;
                call.await
            }
        }
    }
}

impl Store for FaultStore {
    fn max_item_bytes(&self) -> usize {
        self.inner.max_item_bytes()
    }
    fn too_large_advice(&self) -> String {
        self.inner.too_large_advice()
    }
    fn create(&self, new: NewExecution) -> StoreFuture<'_, Created> {
        Box::pin(async move {
            let id = new.meta.id.clone();
            self.around(Op::Create, Some(&id), self.inner.create(new))
                .await
        })
    }
    fn load<'a>(&'a self, id: &'a ExecutionId) -> StoreFuture<'a, Execution> {
        Box::pin(self.around(Op::Load, Some(id), self.inner.load(id)))
    }
    fn meta<'a>(&'a self, id: &'a ExecutionId) -> StoreFuture<'a, ExecutionMeta> {
        self.inner.meta(id)
    }
    fn append<'a>(&'a self, id: &'a ExecutionId, append: Append) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let index = append.entry.index;
            let r = self
                .around(Op::Append, Some(id), self.inner.append(id, append))
                .await;
            self.appends.lock().unwrap().push((index, r.is_ok()));
            r
        })
    }
    fn suspend<'a>(&'a self, id: &'a ExecutionId, suspend: Suspend) -> StoreFuture<'a, ()> {
        Box::pin(self.around(Op::Suspend, Some(id), self.inner.suspend(id, suspend)))
    }
    fn continue_as_new<'a>(&'a self, id: &'a ExecutionId, c: ContinueAsNew) -> StoreFuture<'a, ()> {
        self.inner.continue_as_new(id, c)
    }
    fn load_run<'a>(
        &'a self,
        id: &'a ExecutionId,
        run: u32,
    ) -> StoreFuture<'a, Vec<cairn_core::Entry>> {
        self.inner.load_run(id, run)
    }
    fn settle<'a>(&'a self, id: &'a ExecutionId) -> StoreFuture<'a, ()> {
        self.inner.settle(id)
    }
    fn deliver_once<'a>(
        &'a self,
        id: &'a ExecutionId,
        key: &'a str,
        message: InboxMessage,
        at: Timestamp,
    ) -> StoreFuture<'a, Option<InboxItem>> {
        Box::pin(self.around(
            Op::DeliverOnce,
            Some(id),
            self.inner.deliver_once(id, key, message, at),
        ))
    }
    fn park<'a>(
        &'a self,
        id: &'a ExecutionId,
        info: ParkInfo,
        at: Timestamp,
    ) -> StoreFuture<'a, ()> {
        self.inner.park(id, info, at)
    }
    fn unpark<'a>(&'a self, id: &'a ExecutionId) -> StoreFuture<'a, ()> {
        self.inner.unpark(id)
    }
    fn deliver<'a>(
        &'a self,
        id: &'a ExecutionId,
        message: InboxMessage,
        at: Timestamp,
    ) -> StoreFuture<'a, InboxItem> {
        Box::pin(self.around(Op::Deliver, Some(id), self.inner.deliver(id, message, at)))
    }
    fn list(&self, filter: ListFilter) -> StoreFuture<'_, Vec<ExecutionMeta>> {
        self.inner.list(filter)
    }
    fn due(&self, now: Timestamp, limit: usize) -> StoreFuture<'_, Vec<(ExecutionId, Timestamp)>> {
        self.inner.due(now, limit)
    }
    fn put_component<'a>(
        &'a self,
        hash: &'a ComponentHash,
        bytes: &'a [u8],
    ) -> StoreFuture<'a, ()> {
        self.inner.put_component(hash, bytes)
    }
    fn get_component<'a>(&'a self, hash: &'a ComponentHash) -> StoreFuture<'a, Option<Vec<u8>>> {
        self.inner.get_component(hash)
    }
    fn set_workflow_component<'a>(
        &'a self,
        name: &'a str,
        hash: &'a ComponentHash,
    ) -> StoreFuture<'a, ()> {
        self.inner.set_workflow_component(name, hash)
    }
    fn workflow_component<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<ComponentHash>> {
        self.inner.workflow_component(name)
    }
    fn list_components(&self) -> StoreFuture<'_, Vec<(ComponentHash, u64)>> {
        self.inner.list_components()
    }
    fn list_workflows(&self) -> StoreFuture<'_, Vec<(String, ComponentHash)>> {
        self.inner.list_workflows()
    }
    fn delete_component<'a>(&'a self, hash: &'a ComponentHash) -> StoreFuture<'a, bool> {
        self.inner.delete_component(hash)
    }
    fn acquire_lease<'a>(
        &'a self,
        id: &'a ExecutionId,
        owner: &'a str,
        until: Timestamp,
        now: Timestamp,
    ) -> StoreFuture<'a, ()> {
        self.inner.acquire_lease(id, owner, until, now)
    }
    fn renew_lease<'a>(
        &'a self,
        id: &'a ExecutionId,
        owner: &'a str,
        until: Timestamp,
    ) -> StoreFuture<'a, ()> {
        self.inner.renew_lease(id, owner, until)
    }
    fn release_lease<'a>(
        &'a self,
        id: &'a ExecutionId,
        owner: &'a str,
        wake_at: Option<Timestamp>,
    ) -> StoreFuture<'a, ()> {
        self.inner.release_lease(id, owner, wake_at)
    }
}
