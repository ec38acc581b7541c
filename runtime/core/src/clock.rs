//! Time: journal timestamps, the [`Clock`] trait and a simulated clock.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

/// Milliseconds since the Unix epoch.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(u64);

impl Timestamp {
    /// From milliseconds since the epoch.
    pub const fn from_millis(ms: u64) -> Self {
        Self(ms)
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// This time plus `d` (saturating).
    pub fn plus(self, d: Duration) -> Self {
        Self(
            self.0
                .saturating_add(d.as_millis().min(u128::from(u64::MAX)) as u64),
        )
    }

    /// Time from `earlier` to `self`, zero if `earlier` is later.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }

    /// The system clock's current time.
    pub fn now_system() -> Self {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Self(d.as_millis() as u64)
    }

    /// RFC 3339 in UTC, millisecond precision (`2026-11-27T20:19:11.123Z`).
    pub fn to_rfc3339(self) -> String {
        let ms = self.0 % 1000;
        let secs = self.0 / 1000;
        let (days, rem) = (secs / 86_400, secs % 86_400);
        let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
        // Civil-from-days (Howard Hinnant's algorithm).
        let z = days as i64 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let y = yoe + era * 400;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let mo = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = if mo <= 2 { y + 1 } else { y };
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}.{ms:03}Z")
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// A boxed future returned by clocks.
pub type ClockFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The source of time for the driver. The real clock lives in the engine
/// (it needs an async runtime to sleep); [`SimClock`] skips time.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> Timestamp;
    /// Completes at `t` (at once if `t` has passed).
    fn sleep_until(&self, t: Timestamp) -> ClockFuture;
    /// Whether sleeps complete at once by moving time forward (`--skip-time`).
    fn skips_time(&self) -> bool {
        false
    }
}

/// A simulated clock: `sleep_until` moves its time forward at once. Used by
/// tests and `cairn run --skip-time` to finish a 15-day workflow in seconds.
#[derive(Debug)]
pub struct SimClock {
    now: Mutex<Timestamp>,
}

impl SimClock {
    /// A simulated clock starting at `start`.
    pub fn new(start: Timestamp) -> Self {
        Self {
            now: Mutex::new(start),
        }
    }

    /// Moves time forward to `t` (never backwards).
    pub fn advance_to(&self, t: Timestamp) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        if t > *now {
            *now = t;
        }
    }

    /// Moves time forward by `d`.
    pub fn advance(&self, d: Duration) {
        let now = self.now();
        self.advance_to(now.plus(d));
    }
}

impl Clock for SimClock {
    fn now(&self) -> Timestamp {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sleep_until(&self, t: Timestamp) -> ClockFuture {
        self.advance_to(t);
        Box::pin(std::future::ready(()))
    }

    fn skips_time(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(
            Timestamp::from_millis(0).to_rfc3339(),
            "1970-01-01T00:00:00.000Z"
        );
        assert_eq!(
            Timestamp::from_millis(1_795_811_951_123).to_rfc3339(),
            "2026-11-27T20:39:11.123Z"
        );
        assert_eq!(
            Timestamp::from_millis(951_782_400_000).to_rfc3339(),
            "2000-02-29T00:00:00.000Z"
        );
    }

    #[test]
    fn sim_clock_only_moves_forward() {
        let c = SimClock::new(Timestamp::from_millis(1000));
        c.advance_to(Timestamp::from_millis(500));
        assert_eq!(c.now().as_millis(), 1000);
        drop(c.sleep_until(Timestamp::from_millis(5000)));
        assert_eq!(c.now().as_millis(), 5000);
    }
}
