//! Timer wakes through EventBridge Scheduler: one one-time schedule per
//! pending wake, deleted by the scheduler after it fires.

use crate::HandlerError;
use aws_sdk_scheduler::types::{
    ActionAfterCompletion, FlexibleTimeWindow, FlexibleTimeWindowMode, Target,
};
use cairn_core::{ExecutionId, Timestamp};
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};

/// Creates and deletes wake schedules in one group.
pub struct Scheduler {
    client: aws_sdk_scheduler::Client,
    group: String,
    role_arn: String,
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

impl Scheduler {
    /// A scheduler on `group`, invoking as `role_arn`.
    pub fn new(client: aws_sdk_scheduler::Client, group: String, role_arn: String) -> Self {
        Self {
            client,
            group,
            role_arn,
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
    pub async fn create(
        &self,
        id: &ExecutionId,
        at: Timestamp,
        function_arn: &str,
    ) -> Result<(), HandlerError> {
        let input = json!({"action": "wake", "id": id, "at": at.as_millis()}).to_string();
        let target = Target::builder()
            .arn(function_arn)
            .role_arn(&self.role_arn)
            .input(input)
            .build()
            .map_err(|e| HandlerError::config(e.to_string()))?;
        self.created.fetch_add(1, Ordering::Relaxed);
        let r = self
            .client
            .create_schedule()
            .name(schedule_name(id, at))
            .group_name(&self.group)
            .schedule_expression(at_expression(at))
            .schedule_expression_timezone("UTC")
            .flexible_time_window(
                FlexibleTimeWindow::builder()
                    .mode(FlexibleTimeWindowMode::Off)
                    .build()
                    .map_err(|e| HandlerError::config(e.to_string()))?,
            )
            .action_after_completion(ActionAfterCompletion::Delete)
            .target(target)
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conflict_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(HandlerError::config(format!(
                "cannot schedule the wake of {id} at {at}: {}",
                aws_sdk_scheduler::error::DisplayErrorContext(&e)
            ))),
        }
    }

    /// Deletes the wake of `id` at `at` (gone already is fine).
    pub async fn delete(&self, id: &ExecutionId, at: Timestamp) -> Result<(), HandlerError> {
        self.deleted.fetch_add(1, Ordering::Relaxed);
        let r = self
            .client
            .delete_schedule()
            .name(schedule_name(id, at))
            .group_name(&self.group)
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(HandlerError::config(format!(
                "cannot delete the wake of {id} at {at}: {}",
                aws_sdk_scheduler::error::DisplayErrorContext(&e)
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_expressions_fit_the_scheduler() {
        let id = ExecutionId::new("x".repeat(200)).unwrap();
        let name = schedule_name(&id, Timestamp::from_millis(1_795_811_951_123));
        assert!(name.len() <= 64, "{name}");
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
            "{name}"
        );
        assert_eq!(
            at_expression(Timestamp::from_millis(1_795_811_951_123)),
            "at(2026-11-27T20:39:12)"
        );
        assert_eq!(
            at_expression(Timestamp::from_millis(1_795_811_951_000)),
            "at(2026-11-27T20:39:11)"
        );
    }
}
