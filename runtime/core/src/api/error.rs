//! The API's errors: a stable code, a message, an HTTP status.

use crate::ErrorCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A refused or failed request: its stable code, a message saying what was
/// wrong and what to do, and the HTTP status a Function URL answers with.
/// On the wire: `{"error": {"code", "type", "status", "message"}}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code} {message}")]
pub struct ApiError {
    /// Stable code (`CRN202`).
    pub code: ErrorCode,
    /// What was wrong and what to do.
    pub message: String,
    /// HTTP status (400, 404, 409, 413, 500, 503...).
    pub status: u16,
}

#[derive(Serialize, Deserialize)]
struct ErrorBody {
    code: ErrorCode,
    #[serde(rename = "type")]
    kind: String,
    status: u16,
    message: String,
}

#[derive(Serialize, Deserialize)]
struct ErrorWire {
    error: ErrorBody,
}

impl ApiError {
    /// An error with `code`'s usual HTTP status ([`http_status`]). A
    /// message that starts with the code (as the engine's do) has it
    /// removed: the code is its own field.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        let message = message.into();
        let message = match message.strip_prefix(code.as_str()) {
            Some(rest) => rest.trim_start().to_string(),
            None => message,
        };
        Self {
            code,
            message,
            status: http_status(code),
        }
    }

    /// CRN401, 400: the request is malformed.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadInput, message)
    }

    /// The readable name of the code (`ExecutionExists`).
    pub fn kind(&self) -> &'static str {
        type_name(self.code)
    }

    /// The wire form, `{"error": {...}}`.
    pub fn to_wire(&self) -> Value {
        serde_json::to_value(ErrorWire {
            error: ErrorBody {
                code: self.code,
                kind: self.kind().to_string(),
                status: self.status,
                message: self.message.clone(),
            },
        })
        .expect("errors always serialize")
    }

    /// Reads an answer's error, if it is one (`{"error": {...}}`).
    pub fn from_wire(v: &Value) -> Option<Self> {
        let wire: ErrorWire = serde_json::from_value(v.clone()).ok()?;
        Some(Self {
            code: wire.error.code,
            message: wire.error.message,
            status: wire.error.status,
        })
    }
}

/// The HTTP status for an error code: 400 for a bad request, 404 for
/// something missing, 409 for a state conflict, 413 for too large, 503 to
/// retry later, 500 otherwise.
pub fn http_status(code: ErrorCode) -> u16 {
    match code {
        ErrorCode::BadInput | ErrorCode::UnknownWorkflow => 400,
        ErrorCode::ExecutionNotFound | ErrorCode::ComponentNotFound => 404,
        ErrorCode::Conflict
        | ErrorCode::ExecutionExists
        | ErrorCode::ExecutionFinished
        | ErrorCode::QueryUnavailable => 409,
        ErrorCode::TooLarge => 413,
        ErrorCode::StoreUnavailable => 503,
        _ => 500,
    }
}

/// The readable name of a code, the error's `type` (`ExecutionExists`).
pub fn type_name(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::NondeterministicOperation
        | ErrorCode::UnexpectedEntry
        | ErrorCode::ResultMismatch => "Nondeterminism",
        ErrorCode::CorruptJournal => "CorruptJournal",
        ErrorCode::ProtocolViolation => "ProtocolViolation",
        ErrorCode::Conflict => "Conflict",
        ErrorCode::ExecutionNotFound => "ExecutionNotFound",
        ErrorCode::ExecutionExists => "ExecutionExists",
        ErrorCode::ExecutionFinished => "ExecutionFinished",
        ErrorCode::TooLarge => "TooLarge",
        ErrorCode::StoreUnavailable => "StoreUnavailable",
        ErrorCode::StoreMisconfigured => "Configuration",
        ErrorCode::NotAComponent => "NotAComponent",
        ErrorCode::WrongWorld => "WrongWorld",
        ErrorCode::GuestTrap => "GuestTrap",
        ErrorCode::FuelExhausted => "FuelExhausted",
        ErrorCode::MemoryLimit => "MemoryLimit",
        ErrorCode::DeniedInWorkflow => "DeniedInWorkflow",
        ErrorCode::HttpNotAllowed => "HttpNotAllowed",
        ErrorCode::ActivityTimeout => "ActivityTimeout",
        ErrorCode::UnknownWorkflow => "UnknownWorkflow",
        ErrorCode::BadInput => "BadRequest",
        ErrorCode::ComponentNotFound => "ComponentNotFound",
        ErrorCode::QueryUnavailable => "QueryUnavailable",
        ErrorCode::Internal => "Internal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn errors_round_trip_without_repeating_their_code() {
        let e = ApiError::new(ErrorCode::ExecutionExists, "CRN202 execution 'a' exists");
        assert_eq!(e.message, "execution 'a' exists");
        let wire = e.to_wire();
        assert_eq!(wire["error"]["type"], "ExecutionExists");
        assert_eq!(wire["error"]["status"], 409);
        assert_eq!(ApiError::from_wire(&wire), Some(e));
        assert_eq!(ApiError::from_wire(&json!({"id": "x"})), None);
    }
}
