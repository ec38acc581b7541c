//! `/metrics` in Prometheus' text format: executions by status, steps
//! (appended entries: their rate is steps per second), advance latency,
//! store latency by operation, activity attempts and failures.

use cairn_core::{Event, ExecutionId, Status, Store};
use cairn_engine::{EngineEvent, Observer};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabel {
    op: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: String,
}

/// `cairn_executions{status}` counts at most this many per status.
pub(crate) const COUNT_CAP: usize = 10_000;

fn latency_buckets() -> Histogram {
    // 0.1 ms to ~3.3 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

/// The server's counters and histograms.
pub struct Metrics {
    registry: Registry,
    executions: Family<StatusLabel, Gauge>,
    steps: Counter,
    advances: Family<OutcomeLabel, Counter>,
    advance_seconds: Histogram,
    store_seconds: Family<OpLabel, Histogram, fn() -> Histogram>,
    store_errors: Family<OpLabel, Counter>,
    attempts: Counter,
    attempt_failures: Counter,
    http_requests: Family<OpLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric at zero, registered.
    pub fn new() -> Self {
        let executions = Family::<StatusLabel, Gauge>::default();
        let steps = Counter::default();
        let advances = Family::<OutcomeLabel, Counter>::default();
        let advance_seconds = latency_buckets();
        let store_seconds =
            Family::<OpLabel, Histogram, fn() -> Histogram>::new_with_constructor(latency_buckets);
        let store_errors = Family::<OpLabel, Counter>::default();
        let attempts = Counter::default();
        let attempt_failures = Counter::default();
        let http_requests = Family::<OpLabel, Counter>::default();
        let mut registry = Registry::with_prefix("cairn");
        registry.register(
            "executions",
            "Executions in the store by status (counted at scrape time, at most 10000 each)",
            executions.clone(),
        );
        registry.register(
            "steps",
            "Journal entries appended by this process (rate: steps per second)",
            steps.clone(),
        );
        registry.register(
            "advances",
            "Advances by outcome (completed, failed, cancelled, waiting, conflict, parked, yielded, error)",
            advances.clone(),
        );
        registry.register(
            "advance_seconds",
            "Time of one advance (load, replay, new steps, suspend)",
            advance_seconds.clone(),
        );
        registry.register(
            "store_seconds",
            "Time of one store call, by operation",
            store_seconds.clone(),
        );
        registry.register(
            "store_errors",
            "Store calls that failed (conflicts included), by operation",
            store_errors.clone(),
        );
        registry.register(
            "activity_attempts",
            "Activity attempts that ended (succeeded or failed)",
            attempts.clone(),
        );
        registry.register(
            "activity_failures",
            "Activity attempts that failed (retried or final)",
            attempt_failures.clone(),
        );
        registry.register(
            "http_requests",
            "API requests served, by verb",
            http_requests.clone(),
        );
        Self {
            registry,
            executions,
            steps,
            advances,
            advance_seconds,
            store_seconds,
            store_errors,
            attempts,
            attempt_failures,
            http_requests,
        }
    }

    pub(crate) fn store_call(&self, op: &'static str, took: Duration, ok: bool) {
        let label = OpLabel { op: op.into() };
        self.store_seconds
            .get_or_create(&label)
            .observe(took.as_secs_f64());
        if !ok {
            self.store_errors.get_or_create(&label).inc();
        }
    }

    pub(crate) fn advance(&self, outcome: &str, took: Duration) {
        self.advance_seconds.observe(took.as_secs_f64());
        self.advances
            .get_or_create(&OutcomeLabel {
                outcome: outcome.into(),
            })
            .inc();
    }

    pub(crate) fn request(&self, verb: &str) {
        self.http_requests
            .get_or_create(&OpLabel { op: verb.into() })
            .inc();
    }

    /// The text exposition, after counting the store's executions by status
    /// (up to [`COUNT_CAP`] each: a scrape of a production table must not
    /// read it all).
    pub(crate) async fn render(&self, store: &dyn Store) -> String {
        for status in [
            Status::Running,
            Status::Waiting,
            Status::Completed,
            Status::Failed,
            Status::Cancelled,
            Status::Parked,
        ] {
            let n = store
                .list(cairn_core::ListFilter {
                    status: vec![status],
                    workflow: None,
                    limit: COUNT_CAP,
                })
                .await
                .map(|l| l.len() as i64);
            if let Ok(n) = n {
                self.executions
                    .get_or_create(&StatusLabel {
                        status: status.as_str().into(),
                    })
                    .set(n);
            }
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String does not fail");
        out
    }
}

impl Observer for Metrics {
    fn event(&self, _id: &ExecutionId, event: &EngineEvent) {
        match event {
            EngineEvent::Appended(entry) => {
                self.steps.inc();
                if let Event::ActivityCompleted { result, .. } = &entry.event {
                    self.attempts.inc();
                    if result.is_err() {
                        self.attempt_failures.inc();
                    }
                }
            }
            EngineEvent::AttemptFailed { .. } => {
                self.attempts.inc();
                self.attempt_failures.inc();
            }
            _ => {}
        }
    }
}
