//! Errors of the sandbox.

use cairn_core::ErrorCode;
use std::fmt;

/// A [`crate::WorkflowCalls`] implementation stops the guest (to suspend,
/// on a conflict, on nondeterminism...). The implementation keeps its own
/// reason; the sandbox unwinds the guest and reports
/// [`crate::WorkflowExit::Interrupted`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Interrupt;

impl fmt::Display for Interrupt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the driver interrupted the workflow")
    }
}

impl std::error::Error for Interrupt {}

/// The guest failed in a way that is not a workflow failure it returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuestError {
    /// It trapped: panic, unreachable, out-of-bounds, stack overflow...
    #[error("{code} the guest trapped: {message}", code = ErrorCode::GuestTrap)]
    Trap {
        /// What happened, with the guest's backtrace when available.
        message: String,
    },
    /// It used up its fuel budget per await: ran longer than the budget
    /// without awaiting.
    #[error("{code} the workflow used up its fuel budget per await: it ran more than {budget} instructions without awaiting an operation (an endless loop?); the execution fails so it cannot hang the host", code = ErrorCode::FuelExhausted)]
    FuelExhausted {
        /// The fuel budget per await (instructions).
        budget: u64,
    },
    /// It asked for more memory than allowed.
    #[error("{code} the guest tried to grow its memory beyond the limit of {limit} bytes", code = ErrorCode::MemoryLimit)]
    MemoryLimit {
        /// The limit.
        limit: usize,
    },
    /// Workflow code used something workflow mode denies.
    #[error("{code} workflow code called {call}, which is not allowed in a workflow (its result would differ on replay): do this in an activity", code = ErrorCode::DeniedInWorkflow)]
    Denied {
        /// The denied import (`wasi:filesystem/preopens#get-directories`).
        call: String,
    },
    /// An activity sent an HTTP request to a host not on the allow-list.
    #[error(
        "{code} the activity sent an HTTP request to {target}, which is not on the allow-list: allow it with `--allow-http {target}` (in Lambda: add it to CAIRN_ALLOW_HTTP); not retried",
        code = ErrorCode::HttpNotAllowed
    )]
    HttpDenied {
        /// `host:port` of the refused request.
        target: String,
    },
    /// The activity attempt ran out of time.
    #[error("{code} activity attempt timed out after {ms} ms", code = ErrorCode::ActivityTimeout)]
    Timeout {
        /// The timeout.
        ms: u64,
    },
}

impl GuestError {
    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Trap { .. } => ErrorCode::GuestTrap,
            Self::Timeout { .. } => ErrorCode::ActivityTimeout,
            Self::HttpDenied { .. } => ErrorCode::HttpNotAllowed,
            Self::FuelExhausted { .. } => ErrorCode::FuelExhausted,
            Self::MemoryLimit { .. } => ErrorCode::MemoryLimit,
            Self::Denied { .. } => ErrorCode::DeniedInWorkflow,
        }
    }
}

/// Errors of the sandbox.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The bytes are not a WebAssembly component.
    #[error("{code} {0}", code = ErrorCode::NotAComponent)]
    NotAComponent(String),
    /// The component does not implement the `cairn:workflow` world.
    #[error("{code} {0}", code = ErrorCode::WrongWorld)]
    WrongWorld(String),
    /// The workflow name is not in the component.
    #[error("{code} this component has no workflow named '{name}' (it has: {known})", code = ErrorCode::UnknownWorkflow)]
    UnknownWorkflow {
        /// The asked name.
        name: String,
        /// The names it has.
        known: String,
    },
    /// The guest failed (see [`GuestError`]).
    #[error(transparent)]
    Guest(#[from] GuestError),
    /// The sandbox itself failed (engine setup, cache IO).
    #[error("{code} sandbox error: {0}", code = ErrorCode::Internal)]
    Internal(String),
}
