//! Between the WIT's generated types (`cairn_host`) and the runtime's own
//! (`cairn_core`).

use cairn_core::{Completion, Failure, FailureKind, Payload, RetryPolicy};
use cairn_host::{Completion as WitCompletion, WitFailure, WitFailureKind};

/// A failure the guest returned.
pub(crate) fn failure_from_wit(f: WitFailure) -> Failure {
    let kind = match f.kind {
        WitFailureKind::Application => FailureKind::Application,
        WitFailureKind::NonRetryable => FailureKind::NonRetryable,
        WitFailureKind::Timeout => FailureKind::Timeout,
        WitFailureKind::Cancelled => FailureKind::Cancelled,
    };
    Failure {
        kind,
        message: f.message,
        details: f.details.map(Payload::new),
    }
}

/// A failure as the guest receives it.
pub(crate) fn failure_to_wit(f: Failure) -> WitFailure {
    let kind = match f.kind {
        FailureKind::Application => WitFailureKind::Application,
        FailureKind::NonRetryable => WitFailureKind::NonRetryable,
        FailureKind::Timeout => WitFailureKind::Timeout,
        FailureKind::Cancelled => WitFailureKind::Cancelled,
    };
    WitFailure {
        kind,
        message: f.message,
        details: f.details.map(Payload::into_bytes),
    }
}

/// A completion as the guest receives it.
pub(crate) fn completion_to_wit(c: Completion) -> WitCompletion {
    match c {
        Completion::Activity(r) => {
            WitCompletion::Activity(r.map(Payload::into_bytes).map_err(failure_to_wit))
        }
        Completion::Timer => WitCompletion::Timer,
        Completion::Signal(p) => WitCompletion::Signal(p.into_bytes()),
        Completion::Child(r) => {
            WitCompletion::Child(r.map(Payload::into_bytes).map_err(failure_to_wit))
        }
    }
}

/// The retry policy the guest asked for.
pub(crate) fn retry_from_wit(p: cairn_host::RetryPolicy) -> RetryPolicy {
    RetryPolicy {
        initial_interval_ms: p.initial_interval_ms,
        backoff_coefficient: p.backoff_coefficient,
        maximum_interval_ms: p.maximum_interval_ms,
        maximum_attempts: p.maximum_attempts,
    }
}
