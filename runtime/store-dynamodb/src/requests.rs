//! Counting and timing the requests the store sends (an SDK interceptor).

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Requests sent, by operation name (`PutItem`, `Query`, ...). Every
/// attempt counts, retries included.
#[derive(Debug, Default)]
pub struct RequestStats {
    counts: Mutex<BTreeMap<String, u64>>,
    /// Time between a request leaving and its response arriving, summed.
    wire_ns: AtomicU64,
    /// Read capacity units consumed by loads, in thousandths, as DynamoDB
    /// reports them (`ReturnConsumedCapacity`).
    read_milliunits: AtomicU64,
    /// Items and bytes (attribute names and values) the loads' queries
    /// returned.
    items_read: AtomicU64,
    bytes_read: AtomicU64,
}

impl RequestStats {
    /// A snapshot of the counts.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Total requests.
    pub fn total(&self) -> u64 {
        self.snapshot().values().sum()
    }

    /// Time spent on the wire and in the server (request sent to response
    /// received), summed over every request: the store's share of latency
    /// (for concurrent requests, the sum exceeds the wall time).
    pub fn wire_time(&self) -> Duration {
        Duration::from_nanos(self.wire_ns.load(Ordering::Relaxed))
    }

    /// Read capacity units consumed by loads (their `Query` requests), as
    /// DynamoDB reports them; 0 from an endpoint that reports none.
    pub fn read_units(&self) -> f64 {
        self.read_milliunits.load(Ordering::Relaxed) as f64 / 1000.0
    }

    /// Items the loads' queries returned.
    pub fn items_read(&self) -> u64 {
        self.items_read.load(Ordering::Relaxed)
    }

    /// Bytes the loads' queries returned (attribute names and values, as
    /// DynamoDB sizes items).
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read.load(Ordering::Relaxed)
    }

    pub(crate) fn add_read(&self, units: Option<f64>, items: u64, bytes: u64) {
        if let Some(u) = units {
            self.read_milliunits
                .fetch_add((u * 1000.0).round() as u64, Ordering::Relaxed);
        }
        self.items_read.fetch_add(items, Ordering::Relaxed);
        self.bytes_read.fetch_add(bytes, Ordering::Relaxed);
    }

    fn count(&self, op: &str) {
        *self
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(op.to_string())
            .or_default() += 1;
    }
}

#[derive(Debug)]
pub(crate) struct Counter(pub Arc<RequestStats>);

/// When the current attempt was handed to the HTTP client.
#[derive(Debug, Clone, Copy)]
struct Sent(Instant);

impl Storable for Sent {
    type Storer = StoreReplace<Self>;
}

impl Intercept for Counter {
    fn name(&self) -> &'static str {
        "cairn-request-counter"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let op = cfg
            .load::<aws_smithy_runtime_api::client::orchestrator::Metadata>()
            .map(|m| m.name())
            .unwrap_or("unknown");
        self.0.count(op);
        cfg.interceptor_state().store_put(Sent(Instant::now()));
        Ok(())
    }

    fn read_after_transmit(
        &self,
        _context: &BeforeDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(Sent(at)) = cfg.load::<Sent>() {
            self.0
                .wire_ns
                .fetch_add(at.elapsed().as_nanos() as u64, Ordering::Relaxed);
        }
        Ok(())
    }
}
