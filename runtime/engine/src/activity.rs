//! Running one activity call: attempts, timeouts, retries with backoff.

use crate::events::{EngineEvent, Observer};
use cairn_core::{Clock, ExecutionId, Failure, FailureKind, Payload, Timestamp};
use cairn_host::{
    ActivityInfo, GuestError, HostError, LoadedComponent, RetryPolicy, Sandbox, WitFailure,
    WitFailureKind,
};
use std::sync::Arc;
use std::time::Duration;

/// What the workflow asked for.
#[derive(Debug, Clone)]
pub(crate) struct ActivitySpec {
    pub name: String,
    pub input: Arc<[u8]>,
    pub retry: RetryPolicy,
    pub timeout: Option<Duration>,
}

/// How a call ended (for now).
#[derive(Debug)]
pub(crate) enum ActivityOutcome {
    /// Finished: its output, or its last failure.
    Done {
        attempts: u32,
        result: Result<Payload, Failure>,
    },
    /// An attempt failed and the next waits longer than the driver waits inline.
    RetryLater {
        attempts: u32,
        retry_at: Timestamp,
        failure: Failure,
    },
}

pub(crate) struct ActivityTask {
    pub sandbox: Arc<Sandbox>,
    pub component: Arc<LoadedComponent>,
    pub clock: Arc<dyn Clock>,
    pub observer: Option<Arc<dyn Observer>>,
    pub execution: ExecutionId,
    pub idempotency_key: String,
    pub seq: u32,
    pub spec: ActivitySpec,
    /// Attempts already made (journaled).
    pub attempts_before: u32,
    pub inline_retry: Duration,
}

/// Delay before attempt `next` (2 = the first retry).
pub(crate) fn backoff(policy: &RetryPolicy, next: u32) -> Duration {
    let exp = next.saturating_sub(2).min(64) as i32;
    let ms = policy.initial_interval_ms as f64 * policy.backoff_coefficient.max(1.0).powi(exp);
    let ms = ms.min(policy.maximum_interval_ms.max(policy.initial_interval_ms) as f64);
    Duration::from_millis(ms as u64)
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

impl ActivityTask {
    pub(crate) async fn run(self) -> ActivityOutcome {
        let mut attempt = self.attempts_before + 1;
        loop {
            let info = ActivityInfo {
                execution_id: self.execution.to_string(),
                idempotency_key: self.idempotency_key.clone(),
                attempt,
            };
            let r = self
                .sandbox
                .run_activity(
                    &self.component,
                    &self.spec.name,
                    &self.spec.input,
                    info,
                    self.spec.timeout,
                )
                .await;
            let failure = match r {
                Ok(run) => {
                    if !run.output.is_empty() {
                        tracing::debug!(execution = %self.execution, activity = %self.spec.name, output = %run.output, "activity output");
                    }
                    match run.result {
                        Ok(out) => {
                            return ActivityOutcome::Done {
                                attempts: attempt,
                                result: Ok(Payload::new(out)),
                            };
                        }
                        Err(f) => failure_from_wit(f),
                    }
                }
                Err(HostError::Guest(GuestError::Timeout { ms })) => Failure::new(
                    FailureKind::Timeout,
                    format!("attempt {attempt} timed out after {ms} ms"),
                ),
                // Retrying cannot change the operator's allow-list.
                Err(HostError::Guest(g @ GuestError::HttpDenied { .. })) => Failure::new(
                    FailureKind::NonRetryable,
                    format!("attempt {attempt} failed: {g}"),
                ),
                Err(HostError::Guest(g)) => Failure::new(
                    FailureKind::Application,
                    format!("attempt {attempt} failed: {g}"),
                ),
                Err(e) => Failure::new(
                    FailureKind::Application,
                    format!("attempt {attempt} could not run: {e}"),
                ),
            };
            let max = self.spec.retry.maximum_attempts;
            if !failure.kind.is_retryable() || (max > 0 && attempt >= max) {
                return ActivityOutcome::Done {
                    attempts: attempt,
                    result: Err(failure),
                };
            }
            if let Some(o) = &self.observer {
                o.event(
                    &self.execution,
                    &EngineEvent::AttemptFailed {
                        seq: self.seq,
                        name: self.spec.name.clone(),
                        attempt,
                        failure: failure.clone(),
                    },
                );
            }
            let delay = backoff(&self.spec.retry, attempt + 1);
            let retry_at = self.clock.now().plus(delay);
            if delay > self.inline_retry {
                return ActivityOutcome::RetryLater {
                    attempts: attempt,
                    retry_at,
                    failure,
                };
            }
            tracing::debug!(execution = %self.execution, activity = %self.spec.name, attempt, ?delay, "retrying: {}", failure.message);
            self.clock.sleep_until(retry_at).await;
            attempt += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        let p = RetryPolicy {
            initial_interval_ms: 100,
            backoff_coefficient: 2.0,
            maximum_interval_ms: 1000,
            maximum_attempts: 0,
        };
        let ms: Vec<u128> = (2..=7).map(|n| backoff(&p, n).as_millis()).collect();
        assert_eq!(ms, vec![100, 200, 400, 800, 1000, 1000]);
    }
}
