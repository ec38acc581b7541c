//! A [`Store`] that times every call for `/metrics` (store latency by
//! operation) and passes it on unchanged.

use crate::Metrics;
use cairn_core::store::{
    Append, ContinueAsNew, Created, Execution, ExecutionMeta, InboxItem, InboxMessage, ListFilter,
    NewExecution, ParkInfo, Store, StoreFuture, Suspend,
};
use cairn_core::{ComponentHash, Entry, ExecutionId, Timestamp};
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

/// The store `cairn dev` drives, timed.
pub(crate) struct TimedStore {
    inner: Arc<dyn Store>,
    metrics: Arc<Metrics>,
}

impl TimedStore {
    pub(crate) fn new(inner: Arc<dyn Store>, metrics: Arc<Metrics>) -> Self {
        Self { inner, metrics }
    }

    fn timed<'a, T: 'a>(
        &'a self,
        op: &'static str,
        f: impl Future<Output = Result<T, cairn_core::StoreError>> + Send + 'a,
    ) -> StoreFuture<'a, T> {
        Box::pin(async move {
            let t = Instant::now();
            let r = f.await;
            self.metrics.store_call(op, t.elapsed(), r.is_ok());
            r
        })
    }
}

impl Store for TimedStore {
    fn create(&self, new: NewExecution) -> StoreFuture<'_, Created> {
        self.timed("create", self.inner.create(new))
    }
    fn load<'a>(&'a self, id: &'a ExecutionId) -> StoreFuture<'a, Execution> {
        self.timed("load", self.inner.load(id))
    }
    fn max_item_bytes(&self) -> usize {
        self.inner.max_item_bytes()
    }
    fn too_large_advice(&self) -> String {
        self.inner.too_large_advice()
    }
    fn meta<'a>(&'a self, id: &'a ExecutionId) -> StoreFuture<'a, ExecutionMeta> {
        self.timed("meta", self.inner.meta(id))
    }
    fn append<'a>(&'a self, id: &'a ExecutionId, append: Append) -> StoreFuture<'a, ()> {
        self.timed("append", self.inner.append(id, append))
    }
    fn append_final<'a>(
        &'a self,
        id: &'a ExecutionId,
        preceding: Vec<Entry>,
        append: Append,
    ) -> StoreFuture<'a, ()> {
        self.timed("append", self.inner.append_final(id, preceding, append))
    }
    fn continue_as_new<'a>(&'a self, id: &'a ExecutionId, c: ContinueAsNew) -> StoreFuture<'a, ()> {
        self.timed("continue_as_new", self.inner.continue_as_new(id, c))
    }
    fn load_run<'a>(&'a self, id: &'a ExecutionId, run: u32) -> StoreFuture<'a, Vec<Entry>> {
        self.timed("load_run", self.inner.load_run(id, run))
    }
    fn suspend<'a>(&'a self, id: &'a ExecutionId, suspend: Suspend) -> StoreFuture<'a, ()> {
        self.timed("suspend", self.inner.suspend(id, suspend))
    }
    fn park<'a>(
        &'a self,
        id: &'a ExecutionId,
        info: ParkInfo,
        at: Timestamp,
    ) -> StoreFuture<'a, ()> {
        self.timed("park", self.inner.park(id, info, at))
    }
    fn unpark<'a>(&'a self, id: &'a ExecutionId) -> StoreFuture<'a, ()> {
        self.timed("unpark", self.inner.unpark(id))
    }
    fn deliver<'a>(
        &'a self,
        id: &'a ExecutionId,
        message: InboxMessage,
        at: Timestamp,
    ) -> StoreFuture<'a, InboxItem> {
        self.timed("deliver", self.inner.deliver(id, message, at))
    }
    fn settle<'a>(&'a self, id: &'a ExecutionId) -> StoreFuture<'a, ()> {
        self.timed("settle", self.inner.settle(id))
    }
    fn deliver_once<'a>(
        &'a self,
        id: &'a ExecutionId,
        key: &'a str,
        message: InboxMessage,
        at: Timestamp,
    ) -> StoreFuture<'a, Option<InboxItem>> {
        self.timed("deliver", self.inner.deliver_once(id, key, message, at))
    }
    fn list(&self, filter: ListFilter) -> StoreFuture<'_, Vec<ExecutionMeta>> {
        self.timed("list", self.inner.list(filter))
    }
    fn due(&self, now: Timestamp, limit: usize) -> StoreFuture<'_, Vec<(ExecutionId, Timestamp)>> {
        self.timed("due", self.inner.due(now, limit))
    }
    fn put_component<'a>(
        &'a self,
        hash: &'a ComponentHash,
        bytes: &'a [u8],
    ) -> StoreFuture<'a, ()> {
        self.timed("put_component", self.inner.put_component(hash, bytes))
    }
    fn get_component<'a>(&'a self, hash: &'a ComponentHash) -> StoreFuture<'a, Option<Vec<u8>>> {
        self.timed("get_component", self.inner.get_component(hash))
    }
    fn set_workflow_component<'a>(
        &'a self,
        name: &'a str,
        hash: &'a ComponentHash,
    ) -> StoreFuture<'a, ()> {
        self.timed(
            "set_workflow_component",
            self.inner.set_workflow_component(name, hash),
        )
    }
    fn workflow_component<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<ComponentHash>> {
        self.timed("workflow_component", self.inner.workflow_component(name))
    }
    fn list_components(&self) -> StoreFuture<'_, Vec<(ComponentHash, u64)>> {
        self.timed("list_components", self.inner.list_components())
    }
    fn list_workflows(&self) -> StoreFuture<'_, Vec<(String, ComponentHash)>> {
        self.timed("list_workflows", self.inner.list_workflows())
    }
    fn delete_component<'a>(&'a self, hash: &'a ComponentHash) -> StoreFuture<'a, bool> {
        self.timed("delete_component", self.inner.delete_component(hash))
    }
    fn acquire_lease<'a>(
        &'a self,
        id: &'a ExecutionId,
        owner: &'a str,
        until: Timestamp,
        now: Timestamp,
    ) -> StoreFuture<'a, ()> {
        self.timed("lease", self.inner.acquire_lease(id, owner, until, now))
    }
    fn renew_lease<'a>(
        &'a self,
        id: &'a ExecutionId,
        owner: &'a str,
        until: Timestamp,
    ) -> StoreFuture<'a, ()> {
        self.timed("lease", self.inner.renew_lease(id, owner, until))
    }
    fn release_lease<'a>(
        &'a self,
        id: &'a ExecutionId,
        owner: &'a str,
        wake_at: Option<Timestamp>,
    ) -> StoreFuture<'a, ()> {
        self.timed("lease", self.inner.release_lease(id, owner, wake_at))
    }
}
