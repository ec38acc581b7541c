//! Counting the requests the store sends (an SDK interceptor).

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Requests sent, by operation name (`PutItem`, `Query`, ...). Every
/// attempt counts, retries included.
#[derive(Debug, Default)]
pub struct RequestStats {
    counts: Mutex<BTreeMap<String, u64>>,
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
        Ok(())
    }
}
