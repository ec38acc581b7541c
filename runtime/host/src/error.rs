//! Errors of the sandbox.

use cairn_core::ErrorCode;
use std::fmt;

/// The driver stops the guest: suspension, a store conflict, nondeterminism.
/// The host turns it into a trap that unwinds the guest, and hands it back
/// from [`crate::Sandbox::run_workflow`] untouched.
pub struct Interrupt(pub Box<dyn std::any::Any + Send + Sync>);

impl Interrupt {
    /// Wraps any reason.
    pub fn new<T: Send + Sync + 'static>(reason: T) -> Self {
        Self(Box::new(reason))
    }

    /// Takes the reason back if it is a `T`.
    pub fn downcast<T: 'static>(self) -> Result<T, Self> {
        self.0.downcast::<T>().map(|b| *b).map_err(Self)
    }
}

impl fmt::Debug for Interrupt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Interrupt(..)")
    }
}

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
    /// It ran longer than its fuel budget without awaiting.
    #[error("{code} the workflow ran more than {budget} instructions without awaiting an operation (an endless loop?); the execution fails so it cannot hang the host", code = ErrorCode::FuelExhausted)]
    FuelExhausted {
        /// Fuel per step.
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
    #[error("activity attempt timed out after {ms} ms")]
    Timeout {
        /// The timeout.
        ms: u64,
    },
}

impl GuestError {
    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Trap { .. } | Self::Timeout { .. } => ErrorCode::GuestTrap,
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
    /// The driver interrupted the guest.
    #[error("interrupted by the driver")]
    Interrupted(Interrupt),
    /// The sandbox itself failed (engine setup, cache IO).
    #[error("sandbox error: {0}")]
    Internal(String),
}
