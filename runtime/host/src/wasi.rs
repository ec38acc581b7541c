//! Deterministic WASI pieces for workflow mode.

use rand_core::TryRng;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock};

/// Journal time shared with the WASI clocks: the driver moves it.
#[derive(Debug, Clone, Default)]
pub struct JournalTime(Arc<AtomicU64>);

impl JournalTime {
    pub fn set_ms(&self, ms: u64) {
        self.0.store(ms, Ordering::Relaxed);
    }

    fn ms(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// `wasi:clocks/wall-clock` in workflow mode: journal time.
pub struct JournalWallClock(pub JournalTime);

impl HostWallClock for JournalWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }
    fn now(&self) -> Duration {
        Duration::from_millis(self.0.ms())
    }
}

/// `wasi:clocks/monotonic-clock` in workflow mode: journal time in ns
/// (never goes back, the same on every replay).
pub struct JournalMonotonicClock(pub JournalTime);

impl HostMonotonicClock for JournalMonotonicClock {
    fn resolution(&self) -> u64 {
        1_000_000
    }
    fn now(&self) -> u64 {
        self.0.ms().saturating_mul(1_000_000)
    }
}

/// SplitMix64: tiny, fast, and the same sequence for the same seed on every
/// platform. Workflow randomness needs determinism, not secrecy.
#[derive(Debug, Clone)]
pub struct SeededRng(u64);

impl SeededRng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl TryRng for SeededRng {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(self.next() as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(self.next())
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for chunk in dst.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_rng_is_reproducible_and_seed_dependent() {
        let a: Vec<u64> = {
            let mut r = SeededRng::new(7);
            (0..4).map(|_| r.next()).collect()
        };
        let b: Vec<u64> = {
            let mut r = SeededRng::new(7);
            (0..4).map(|_| r.next()).collect()
        };
        let c: Vec<u64> = {
            let mut r = SeededRng::new(8);
            (0..4).map(|_| r.next()).collect()
        };
        assert_eq!(a, b);
        assert_ne!(a, c);
        let mut bytes = [0u8; 13];
        SeededRng::new(7).try_fill_bytes(&mut bytes).unwrap();
        assert_eq!(&bytes[..8], &a[0].to_le_bytes());
    }
}
