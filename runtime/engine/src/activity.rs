//! Running one activity call: attempts, timeouts, retries with backoff.

use crate::convert::failure_from_wit;
use crate::events::{EngineEvent, Observer};
use cairn_core::advance::{ActivityCall, ActivityOutcome};
use cairn_core::{Clock, ErrorCode, ExecutionId, Failure, FailureKind, Payload};
use cairn_host::{ActivityInfo, GuestError, HostError, LoadedComponent, Sandbox};
use std::sync::Arc;
use std::time::Duration;

/// The attempts of one activity call, run by the driver in a task of its own.
pub(crate) struct ActivityTask {
    pub sandbox: Arc<Sandbox>,
    pub component: Arc<LoadedComponent>,
    pub clock: Arc<dyn Clock>,
    pub observer: Option<Arc<dyn Observer>>,
    pub execution: ExecutionId,
    pub idempotency_key: String,
    pub seq: u32,
    pub call: ActivityCall,
    /// Attempts already made (journaled).
    pub attempts_before: u32,
    pub inline_retry: Duration,
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
            if let Some(o) = &self.observer {
                o.event(
                    &self.execution,
                    &EngineEvent::AttemptStarted {
                        seq: self.seq,
                        name: self.call.name.clone(),
                        attempt,
                    },
                );
            }
            let r = self
                .sandbox
                .run_activity(
                    &self.component,
                    &self.call.name,
                    self.call.input.as_bytes(),
                    info,
                    self.call.timeout,
                )
                .await;
            let failure = match r {
                Ok(run) => {
                    if !run.output.is_empty() {
                        tracing::debug!(execution = %self.execution, activity = %self.call.name, output = %run.output, "activity output");
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
                    format!(
                        "{} attempt {attempt} timed out after {ms} ms",
                        ErrorCode::ActivityTimeout
                    ),
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
            if !failure.kind.is_retryable() || !self.call.retry.allows_after(attempt) {
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
                        name: self.call.name.clone(),
                        attempt,
                        failure: failure.clone(),
                    },
                );
            }
            let delay = self.call.retry.delay_before(attempt + 1);
            let retry_at = self.clock.now().plus(delay);
            if delay > self.inline_retry {
                return ActivityOutcome::RetryLater {
                    attempts: attempt,
                    retry_at,
                    failure,
                };
            }
            tracing::debug!(execution = %self.execution, activity = %self.call.name, attempt, ?delay, "retrying: {}", failure.message);
            self.clock.sleep_until(retry_at).await;
            attempt += 1;
        }
    }
}
