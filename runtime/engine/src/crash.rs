//! Test-only crash points: the process aborts right before a store write,
//! after the effects that write would record happened, as a `kill -9` there
//! would. Compiled only with the `crash-points` feature, which the test
//! builds turn on (the CLI's and the Lambda host's dev-dependencies) and a
//! release build (`cargo build --release`, `scripts/package-lambda`) does
//! not: without it every call here is empty and the environment is not read.
//!
//! Chosen by the environment of the process:
//! - `CAIRN_TEST_CRASH_AT=append:N|suspend|deliver|settle|continue-as-new|park`
//! - `CAIRN_TEST_CRASH_BEFORE_APPEND=N` (the same as `append:N`).

/// The store write to crash right before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CrashPoint {
    /// Appending the entry with this index.
    Append(u32),
    /// The write that suspends the execution.
    Suspend,
    /// Writing a message into another execution's inbox (a child's result
    /// to its parent).
    Deliver,
    /// Clearing a finished child's hold once its parent has heard.
    Settle,
    /// The write that continues the execution as new.
    ContinueAsNew,
    /// The write that parks the execution.
    Park,
}

#[cfg(feature = "crash-points")]
mod enabled {
    use super::CrashPoint;
    use std::sync::OnceLock;

    fn parse(v: &str) -> Option<CrashPoint> {
        Some(match v.trim() {
            "suspend" => CrashPoint::Suspend,
            "deliver" => CrashPoint::Deliver,
            "settle" => CrashPoint::Settle,
            "continue-as-new" => CrashPoint::ContinueAsNew,
            "park" => CrashPoint::Park,
            other => CrashPoint::Append(other.strip_prefix("append:")?.parse().ok()?),
        })
    }

    fn configured() -> Option<CrashPoint> {
        static POINT: OnceLock<Option<CrashPoint>> = OnceLock::new();
        *POINT.get_or_init(|| {
            if let Ok(v) = std::env::var("CAIRN_TEST_CRASH_AT") {
                let p = parse(&v);
                assert!(
                    p.is_some(),
                    "CAIRN_TEST_CRASH_AT={v}: expected append:N, suspend, deliver, settle, continue-as-new or park"
                );
                return p;
            }
            std::env::var("CAIRN_TEST_CRASH_BEFORE_APPEND")
                .ok()
                .and_then(|n| n.parse().ok())
                .map(CrashPoint::Append)
        })
    }

    /// Aborts the process if `point` is the configured crash point.
    pub(crate) fn point(point: CrashPoint) {
        if configured() == Some(point) {
            tracing::error!(?point, "test hook: crashing here");
            std::process::abort();
        }
    }
}

#[cfg(feature = "crash-points")]
pub(crate) use enabled::point;

/// Without the `crash-points` feature: nothing.
#[cfg(not(feature = "crash-points"))]
#[inline(always)]
pub(crate) fn point(_point: CrashPoint) {}
