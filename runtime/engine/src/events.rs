//! Progress events, for people watching (`cairn run` prints them).

use cairn_core::{Entry, ExecutionId, Failure, Timestamp};
use cairn_host::LogLevel;

/// Something the driver did.
#[derive(Debug, Clone)]
pub enum EngineEvent {
    /// An entry was appended (durable).
    Appended(Entry),
    /// An activity attempt failed and will be retried.
    AttemptFailed {
        /// Operation number.
        seq: u32,
        /// Activity name.
        name: String,
        /// The failed attempt.
        attempt: u32,
        /// Why.
        failure: Failure,
    },
    /// The workflow logged a line (never while replaying).
    Log {
        /// Severity.
        level: LogLevel,
        /// The line.
        message: String,
    },
    /// The execution suspended.
    Suspended {
        /// Earliest wake.
        wake_at: Option<Timestamp>,
        /// What it waits for.
        waiting_on: String,
    },
}

/// Receives [`EngineEvent`]s. Must be quick: it runs on the driver's task.
pub trait Observer: Send + Sync {
    /// One event of execution `id`.
    fn event(&self, id: &ExecutionId, event: &EngineEvent);
}
