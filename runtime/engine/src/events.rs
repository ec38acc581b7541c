//! Progress events, for people watching (`cairn run` prints them).

use cairn_core::{Entry, ExecutionId, Failure, Timestamp};
use cairn_host::LogLevel;

/// Something the driver did.
#[derive(Debug, Clone)]
pub enum EngineEvent {
    /// An advance of the execution starts (every one: those a host asks
    /// for and those the engine runs itself, a child it started or a
    /// parent its child's end pushed).
    AdvanceStarted,
    /// The advance runs run `run` of `workflow` (after a continue-as-new,
    /// again for the next run).
    RunLoaded {
        /// The workflow.
        workflow: String,
        /// The run (1, then +1 at each continue-as-new).
        run: u32,
    },
    /// The advance ended: `completed`, `failed`, `cancelled`, `waiting`,
    /// `conflict`, `parked`, `yielded` (stopped at the deadline), or `error`.
    AdvanceEnded {
        /// The outcome.
        outcome: &'static str,
    },
    /// An entry was appended (durable).
    Appended(Entry),
    /// An activity attempt starts (a real one: replay runs none). Its end
    /// is the `activity-completed` entry appended, or an
    /// [`EngineEvent::AttemptFailed`]; an attempt aborted (another
    /// completion won, the advance stopped) or cut by a crash has neither.
    AttemptStarted {
        /// Operation number.
        seq: u32,
        /// Activity name.
        name: String,
        /// The attempt (1 for the first).
        attempt: u32,
    },
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

/// Where the engine sends the advances it would otherwise run itself, inline
/// (a child it started, a parent its finished child told, a child it asked
/// to cancel): a long-running host (`cairn dev`) schedules them with its
/// own advances, so its in-flight set, metrics and shutdown see them all.
/// Must be quick: it runs on the driver's task.
pub trait Pusher: Send + Sync {
    /// Advance `id` soon.
    fn push(&self, id: ExecutionId);
}
