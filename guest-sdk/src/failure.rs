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
/// The author says whether retrying may help: [`Failure::retryable`] (an
/// activity failing so is retried by its policy) or
/// [`Failure::non_retryable`] (never retried; the caller sees it at once).
/// No error converts into a `Failure` by itself: turn other errors into one
/// with [`ResultExt`] (`std::fs::read(path).retryable("reading the
/// ledger")?`), which makes the choice explicit at each `?`.
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

/// Turns any error into a [`Failure`] of the kind the author chooses, with
/// a context that says what was being done:
///
/// ```no_run
/// use cairn_sdk::prelude::*;
///
/// fn read_ledger(_ctx: &ActivityCtx, path: String) -> Result<String, Failure> {
///     // A disk hiccup may pass: retry. A ledger that is not UTF-8 will not.
///     let bytes = std::fs::read(&path).retryable(format_args!("reading {path}"))?;
///     String::from_utf8(bytes).non_retryable("the ledger is not UTF-8")
/// }
/// ```
pub trait ResultExt<T> {
    /// On error, a retryable failure `"{context}: {error}"`: the activity's
    /// retry policy runs it again.
    fn retryable(self, context: impl fmt::Display) -> Result<T, Failure>;

    /// On error, a non-retryable failure `"{context}: {error}"`: retrying
    /// cannot fix it, the caller sees it at once.
    fn non_retryable(self, context: impl fmt::Display) -> Result<T, Failure>;
}

impl<T, E: fmt::Display> ResultExt<T> for Result<T, E> {
    fn retryable(self, context: impl fmt::Display) -> Result<T, Failure> {
        self.map_err(|e| Failure::retryable(format!("{context}: {e}")))
    }

    fn non_retryable(self, context: impl fmt::Display) -> Result<T, Failure> {
        self.map_err(|e| Failure::non_retryable(format!("{context}: {e}")))
    }
}

impl std::error::Error for Failure {}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_ext_makes_the_kind_the_author_chose_with_the_context() {
        let e = || Err::<(), _>(std::io::Error::other("disk full"));
        let r = e().retryable("saving the ledger").unwrap_err();
        assert_eq!(r.kind, FailureKind::Application);
        assert_eq!(r.message, "saving the ledger: disk full");
        let n = e()
            .non_retryable(format_args!("reading {}", "/x"))
            .unwrap_err();
        assert_eq!(n.kind, FailureKind::NonRetryable);
        assert_eq!(n.message, "reading /x: disk full");
        assert_eq!(Ok::<u8, String>(1).non_retryable("unused"), Ok(1));
    }
}
