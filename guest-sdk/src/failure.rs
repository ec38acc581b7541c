//! [`Failure`]: what activities and workflows return when they fail.

use crate::__private::{WitFailure, bindings::cairn::workflow::types::FailureKind as WitKind};
use std::fmt;

/// Why something failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// An ordinary error: an activity failing this way is retried.
    Application,
    /// Retrying cannot fix it: never retried.
    NonRetryable,
    /// Ran out of time.
    Timeout,
    /// Cancelled.
    Cancelled,
}

/// A failure: a kind, a message, optional JSON details.
///
/// Any `std::error::Error` converts into an [`FailureKind::Application`]
/// failure, so `?` works in activities; use [`Failure::non_retryable`] for
/// errors that retrying cannot fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The kind.
    pub kind: FailureKind,
    /// Human-readable message.
    pub message: String,
    /// Structured details (JSON).
    pub details: Option<Vec<u8>>,
}

impl Failure {
    /// A retryable failure.
    pub fn retryable(message: impl Into<String>) -> Self {
        Self {
            kind: FailureKind::Application,
            message: message.into(),
            details: None,
        }
    }

    /// A failure retrying cannot fix.
    pub fn non_retryable(message: impl Into<String>) -> Self {
        Self {
            kind: FailureKind::NonRetryable,
            message: message.into(),
            details: None,
        }
    }

    /// A cancellation.
    pub fn cancelled(message: impl Into<String>) -> Self {
        Self {
            kind: FailureKind::Cancelled,
            message: message.into(),
            details: None,
        }
    }

    /// Attaches details, serialized as JSON.
    pub fn with_details<T: serde::Serialize>(mut self, details: &T) -> Self {
        self.details = serde_json::to_vec(details).ok();
        self
    }

    /// Whether this is a cancellation.
    pub fn is_cancelled(&self) -> bool {
        self.kind == FailureKind::Cancelled
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            FailureKind::Application => "application",
            FailureKind::NonRetryable => "non-retryable",
            FailureKind::Timeout => "timeout",
            FailureKind::Cancelled => "cancelled",
        };
        write!(f, "{kind}: {}", self.message)
    }
}

impl<E: std::error::Error> From<E> for Failure {
    fn from(e: E) -> Self {
        Self::retryable(e.to_string())
    }
}

impl From<Failure> for WitFailure {
    fn from(f: Failure) -> Self {
        let kind = match f.kind {
            FailureKind::Application => WitKind::Application,
            FailureKind::NonRetryable => WitKind::NonRetryable,
            FailureKind::Timeout => WitKind::Timeout,
            FailureKind::Cancelled => WitKind::Cancelled,
        };
        WitFailure {
            kind,
            message: f.message,
            details: f.details,
        }
    }
}

impl Failure {
    pub(crate) fn from_wit(f: WitFailure) -> Self {
        let kind = match f.kind {
            WitKind::Application => FailureKind::Application,
            WitKind::NonRetryable => FailureKind::NonRetryable,
            WitKind::Timeout => FailureKind::Timeout,
            WitKind::Cancelled => FailureKind::Cancelled,
        };
        Failure {
            kind,
            message: f.message,
            details: f.details,
        }
    }
}
