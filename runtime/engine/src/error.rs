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
    /// An internal invariant failed: a bug in Cairn, not bad data.
    #[error("{code} internal error (a bug in Cairn; please report it): {0}", code = ErrorCode::Internal)]
    Internal(String),
    /// The guest broke the protocol of the host calls (a bug in the guest
    /// or its SDK).
    #[error("{code} protocol violation: {0}", code = ErrorCode::ProtocolViolation)]
    Protocol(String),
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
            Self::Host(HostError::Internal(_)) => ErrorCode::Internal,
            Self::NoComponentFor(_) | Self::ComponentNotFound(_) => ErrorCode::ComponentNotFound,
            Self::Corrupt(_) => ErrorCode::CorruptJournal,
            Self::Internal(_) => ErrorCode::Internal,
            Self::Protocol(_) => ErrorCode::ProtocolViolation,
            Self::QueryFinished { .. } => ErrorCode::QueryUnavailable,
            Self::BadInput(_) => ErrorCode::BadInput,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_failures_and_sandbox_errors_have_their_own_code() {
        let e = EngineError::Internal("a driver stopped without a reason".into());
        assert_eq!(e.code(), ErrorCode::Internal);
        assert!(e.to_string().starts_with("CRN500 "), "{e}");
        let e = EngineError::Host(HostError::Internal("cannot write the cache".into()));
        assert_eq!(e.code(), ErrorCode::Internal);
        let e = EngineError::Protocol("waited again".into());
        assert_eq!(e.code(), ErrorCode::ProtocolViolation);
        assert_eq!(
            EngineError::Corrupt("no journal".into()).code(),
            ErrorCode::CorruptJournal
        );
        let timeout =
            EngineError::Host(HostError::Guest(cairn_host::GuestError::Timeout { ms: 5 }));
        assert_eq!(timeout.code(), ErrorCode::ActivityTimeout);
        assert!(timeout.to_string().starts_with("CRN307 "), "{timeout}");
    }
}
