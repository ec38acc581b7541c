//! How an activity is retried: exponential backoff between attempts.
//!
//! The WIT carries the same record (`retry-policy`); this is the runtime's
//! own type, so the engine's configuration and the advance machine do not
//! depend on code generated from the WIT.

use std::time::Duration;

/// Exponential backoff between activity attempts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Delay before the second attempt.
    pub initial_interval_ms: u64,
    /// Each further delay is the previous one times this (at least 1.0).
    pub backoff_coefficient: f64,
    /// Upper bound of a delay.
    pub maximum_interval_ms: u64,
    /// Attempts in all, the first included; 0 means unlimited.
    pub maximum_attempts: u32,
}

impl Default for RetryPolicy {
    /// 1 s, doubling, at most 100 s apart, unlimited attempts.
    fn default() -> Self {
        Self {
            initial_interval_ms: 1000,
            backoff_coefficient: 2.0,
            maximum_interval_ms: 100_000,
            maximum_attempts: 0,
        }
    }
}

impl RetryPolicy {
    /// The delay before attempt `next` (2 = the first retry).
    pub fn delay_before(&self, next: u32) -> Duration {
        let exp = next.saturating_sub(2).min(64) as i32;
        let ms = self.initial_interval_ms as f64 * self.backoff_coefficient.max(1.0).powi(exp);
        let ms = ms.min(self.maximum_interval_ms.max(self.initial_interval_ms) as f64);
        Duration::from_millis(ms as u64)
    }

    /// Whether attempt `attempt` (1 = the first) may be followed by another.
    pub fn allows_after(&self, attempt: u32) -> bool {
        self.maximum_attempts == 0 || attempt < self.maximum_attempts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        let p = RetryPolicy {
            initial_interval_ms: 100,
            backoff_coefficient: 2.0,
            maximum_interval_ms: 1000,
            maximum_attempts: 0,
        };
        let ms: Vec<u128> = (2..=7).map(|n| p.delay_before(n).as_millis()).collect();
        assert_eq!(ms, vec![100, 200, 400, 800, 1000, 1000]);
        assert!(p.allows_after(1_000));
        let three = RetryPolicy {
            maximum_attempts: 3,
            ..p
        };
        assert!(three.allows_after(2));
        assert!(!three.allows_after(3));
    }
}
