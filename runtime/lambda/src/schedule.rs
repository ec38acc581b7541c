//! Timer wakes through EventBridge Scheduler: one one-time schedule per
//! pending wake, deleted by the scheduler after it fires.

use crate::HandlerError;
use aws_sdk_scheduler::types::{
    ActionAfterCompletion, DeadLetterConfig, FlexibleTimeWindow, FlexibleTimeWindowMode,
    RetryPolicy, Target,
};

/// CreateSchedule calls per wake before giving up (the sweep is the net).
pub const CREATE_ATTEMPTS: u32 = 4;
use cairn_core::{ExecutionId, Timestamp};
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};

/// Creates and deletes wake schedules in one group.
pub struct Scheduler {
    client: aws_sdk_scheduler::Client,
    group: String,
    role_arn: String,
    dlq_arn: Option<String>,
    created: AtomicU64,
    deleted: AtomicU64,
}

/// The schedule's name: stable for (execution, wake time), within the
/// scheduler's 64 characters.
pub fn schedule_name(id: &ExecutionId, at: Timestamp) -> String {
    format!(
        "cairn-{:016x}-{}",
        cairn_core::input_hash(id.as_str().as_bytes()),
        at.as_millis()
    )
}

/// `at(2026-11-27T20:19:12)`, rounded up to the next second (UTC).
pub fn at_expression(at: Timestamp) -> String {
    let secs = at.as_millis().div_ceil(1000);
    let iso = Timestamp::from_millis(secs * 1000).to_rfc3339();
    format!("at({})", &iso[..19])
}

/// A failed Scheduler request as [`send_with_retries`] takes it: whether
/// the service said throttling or internal error (`None`: no answer) and
/// the error's text. (The operations' error types share these methods, not
/// a trait.)
macro_rules! failure {
    ($e:expr) => {{
        let e = $e;
        (
            e.as_service_error()
                .map(|s| s.is_throttling_exception() || s.is_internal_server_exception()),
            aws_sdk_scheduler::error::DisplayErrorContext(&e).to_string(),
        )
    }};
}

impl Scheduler {
    /// A scheduler on `group`, invoking as `role_arn`.
    pub fn new(
        client: aws_sdk_scheduler::Client,
        group: String,
        role_arn: String,
        dlq_arn: Option<String>,
    ) -> Self {
        Self {
            client,
            group,
            role_arn,
            dlq_arn,
            created: AtomicU64::new(0),
            deleted: AtomicU64::new(0),
        }
    }

    /// Requests sent: (`CreateSchedule`, n), (`DeleteSchedule`, n).
    pub fn counts(&self) -> [(&'static str, u64); 2] {
        [
            ("CreateSchedule", self.created.load(Ordering::Relaxed)),
            ("DeleteSchedule", self.deleted.load(Ordering::Relaxed)),
        ]
    }

    /// Schedules a wake of `id` at `at` invoking `function_arn`. Idempotent.
    /// The schedule retries its invocation for a day (185 attempts) and
    /// then sends it to the dead-letter queue. A refused or failed
    /// CreateSchedule is retried here (throttling, 5xx) up to
    /// [`CREATE_ATTEMPTS`] times; if it still fails the error is returned,
    /// and the execution stays due in the table (its `wake_at`), where the
    /// sweep finds it.
    pub async fn create(
        &self,
        id: &ExecutionId,
        at: Timestamp,
        function_arn: &str,
    ) -> Result<(), HandlerError> {
        let input = json!({"action": "wake", "id": id, "at": at.as_millis()}).to_string();
        let mut target = Target::builder()
            .arn(function_arn)
            .role_arn(&self.role_arn)
            .input(input)
            .retry_policy(
                RetryPolicy::builder()
                    .maximum_event_age_in_seconds(86_400)
                    .maximum_retry_attempts(185)
                    .build(),
            );
        if let Some(dlq) = &self.dlq_arn {
            target = target.dead_letter_config(DeadLetterConfig::builder().arn(dlq).build());
        }
        let target = target
            .build()
            .map_err(|e| HandlerError::config(e.to_string()))?;
        let window = FlexibleTimeWindow::builder()
            .mode(FlexibleTimeWindowMode::Off)
            .build()
            .map_err(|e| HandlerError::config(e.to_string()))?;
        let sent = send_with_retries(&self.created, || async {
            match self
                .client
                .create_schedule()
                .name(schedule_name(id, at))
                .group_name(&self.group)
                .schedule_expression(at_expression(at))
                .schedule_expression_timezone("UTC")
                .flexible_time_window(window.clone())
                .action_after_completion(ActionAfterCompletion::Delete)
                .target(target.clone())
                .send()
                .await
            {
                Ok(_) => Ok(()),
                // Created already: idempotent.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_conflict_exception()) =>
                {
                    Ok(())
                }
                Err(e) => Err(failure!(e)),
            }
        })
        .await;
        // A quota or a bad request does not pass within seconds either: the
        // sweep is the net, so both are "unavailable".
        sent.map_err(|(attempt, _, detail)| {
            HandlerError::unavailable(format!(
                "cannot schedule the wake of {id} at {at} (attempt {attempt}): {detail}"
            ))
        })
    }

    /// Deletes the wake of `id` at `at` (gone already is fine). Throttling,
    /// 5xx and transport errors are retried like a create's, then reported
    /// as unavailable (`CRN205`, retry later); anything else (a refused
    /// request: the role, the group) is a configuration error (`CRN206`).
    pub async fn delete(&self, id: &ExecutionId, at: Timestamp) -> Result<(), HandlerError> {
        let sent = send_with_retries(&self.deleted, || async {
            match self
                .client
                .delete_schedule()
                .name(schedule_name(id, at))
                .group_name(&self.group)
                .send()
                .await
            {
                Ok(_) => Ok(()),
                // Gone already (fired, or deleted by another invocation).
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_resource_not_found_exception()) =>
                {
                    Ok(())
                }
                Err(e) => Err(failure!(e)),
            }
        })
        .await;
        sent.map_err(|(attempt, retryable, detail)| {
            let message =
                format!("cannot delete the wake of {id} at {at} (attempt {attempt}): {detail}");
            if retryable {
                HandlerError::unavailable(message)
            } else {
                HandlerError::config(message)
            }
        })
    }
}

/// Sends one Scheduler request (counted in `sent`) until it succeeds,
/// retrying transient failures (see [`transient`]) up to
/// [`CREATE_ATTEMPTS`] times with doubling delays. `send` gives `Ok` for a
/// success (or a benign refusal), else whether the service said throttling
/// or internal error (`None`: no service answer) and the error's text. On
/// giving up: the attempts made, whether the last failure was transient,
/// and its text.
async fn send_with_retries<F, Fut>(sent: &AtomicU64, mut send: F) -> Result<(), (u32, bool, String)>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), (Option<bool>, String)>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        sent.fetch_add(1, Ordering::Relaxed);
        let (throttled_or_internal, detail) = match send().await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        let retryable = transient(throttled_or_internal);
        if !retryable || attempt >= CREATE_ATTEMPTS {
            return Err((attempt, retryable, detail));
        }
        tracing::warn!("a Scheduler request failed (attempt {attempt}): {detail}; retrying");
        tokio::time::sleep(std::time::Duration::from_millis(100 << attempt)).await;
    }
}

/// Whether a Scheduler error may pass if retried: a service error that is
/// throttling or internal (`Some(true)`), or no service answer at all
/// (`None`: a timeout, a reset connection, a dispatch failure).
fn transient(throttled_or_internal: Option<bool>) -> bool {
    throttled_or_internal.unwrap_or(true)
}
