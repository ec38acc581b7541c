//! Engine errors.

use cairn_core::{ComponentHash, ErrorCode, StoreError};
use cairn_host::HostError;

/// Why an engine call failed (as opposed to an execution failing, which is
/// an outcome, not an error).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The sandbox refused the component or failed.
    #[error(transparent)]
    Host(#[from] HostError),
    /// No component registered for the workflow.
    #[error("{code} no component is registered for workflow '{0}': pass the .wasm file, or `cairn register` it first", code = ErrorCode::ComponentNotFound)]
    NoComponentFor(String),
    /// The pinned component is not in the store.
    #[error("{code} component {0} is not in the store: `cairn register` the .wasm it was built from", code = ErrorCode::ComponentNotFound)]
    ComponentNotFound(ComponentHash),
    /// Queries answer only while an execution runs.
    #[error("{code} execution {id} has {status}: queries are answered only while an execution runs; its result is in `cairn status {id}`", code = ErrorCode::QueryUnavailable)]
    QueryFinished {
        /// The execution.
        id: cairn_core::ExecutionId,
        /// Its status.
        status: cairn_core::Status,
    },
    /// Stored data is inconsistent.
    #[error("{code} {0}", code = ErrorCode::CorruptJournal)]
    Corrupt(String),
    /// A caller's argument is invalid.
    #[error("{code} {0}", code = ErrorCode::BadInput)]
    BadInput(String),
}

impl EngineError {
    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Store(e) => e.code(),
            Self::Host(HostError::NotAComponent(_)) => ErrorCode::NotAComponent,
            Self::Host(HostError::WrongWorld(_)) => ErrorCode::WrongWorld,
            Self::Host(HostError::UnknownWorkflow { .. }) => ErrorCode::UnknownWorkflow,
            Self::Host(HostError::Guest(g)) => g.code(),
            Self::Host(_) => ErrorCode::GuestTrap,
            Self::NoComponentFor(_) | Self::ComponentNotFound(_) => ErrorCode::ComponentNotFound,
            Self::Corrupt(_) => ErrorCode::CorruptJournal,
            Self::QueryFinished { .. } => ErrorCode::QueryUnavailable,
            Self::BadInput(_) => ErrorCode::BadInput,
        }
    }
}
