//! Failures of activities and workflows, as journaled and shown to callers.

use crate::Payload;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Why something failed. Mirrors `failure-kind` in the WIT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum FailureKind {
    /// Ordinary error: retried by the activity's policy.
    Application,
    /// Retrying cannot fix it.
    NonRetryable,
    /// Ran out of time.
    Timeout,
    /// Cancelled.
    Cancelled,
}

impl FailureKind {
    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Whether an activity attempt failing this way may be retried.
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::Application | Self::Timeout)
    }
}

/// A failure with a message and optional structured details.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The kind.
    pub kind: FailureKind,
    /// Human-readable message.
    pub message: String,
    /// Structured details (JSON by convention).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub details: Option<Payload>,
}

/// A present `details` field is `Some`, even when it is JSON `null`: the
/// default `Option` decoding would turn `Some(null)` into `None`, and a
/// replayed workflow would see other details than the live one did.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Payload>, D::Error> {
    Payload::deserialize(d).map(Some)
}

impl Failure {
    /// A failure of `kind` with `message`.
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            details: None,
        }
    }

    /// Adds details.
    pub fn with_details(mut self, details: Payload) -> Self {
        self.details = Some(details);
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.message)
    }
}
