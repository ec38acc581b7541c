//! Memory and table limits for guest instances.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use wasmtime::ResourceLimiter;

/// Memory shared by every guest instance of a sandbox: a host whose own
/// memory is bounded (a Lambda function) gives its guests a budget below
/// it, so that however many instances run at once, a guest that asks for
/// more fails its own call (CRN304) instead of getting the process killed.
#[derive(Debug)]
pub struct MemoryBudget {
    total: usize,
    used: AtomicUsize,
}

impl MemoryBudget {
    /// A budget of `total` bytes.
    pub fn new(total: usize) -> Arc<Self> {
        Arc::new(Self {
            total,
            used: AtomicUsize::new(0),
        })
    }

    /// The budget.
    pub fn total(&self) -> usize {
        self.total
    }

    /// Bytes held by live instances now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::SeqCst)
    }

    fn reserve(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                used.checked_add(bytes).filter(|n| *n <= self.total)
            })
            .is_ok()
    }

    fn release(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::SeqCst);
    }
}

/// Caps linear memory and tables; remembers whether it refused a growth, so
/// that the trap that usually follows (an allocation failure) can be
/// reported as what it is.
#[derive(Debug)]
pub struct Limits {
    pub(crate) memory_bytes: usize,
    pub(crate) denied: bool,
    budget: Option<Arc<MemoryBudget>>,
    /// Bytes this instance holds of the budget (given back when dropped).
    reserved: usize,
}

impl Limits {
    pub(crate) fn new(memory_bytes: usize, budget: Option<Arc<MemoryBudget>>) -> Self {
        Self {
            memory_bytes,
            denied: false,
            budget,
            reserved: 0,
        }
    }

    /// The limit a refusal is reported against: the instance's own, or
    /// what the shared budget had left for it.
    pub(crate) fn reported_limit(&self) -> usize {
        match &self.budget {
            Some(b) => self
                .memory_bytes
                .min(b.total().saturating_sub(b.used()) + self.reserved),
            None => self.memory_bytes,
        }
    }
}

impl Drop for Limits {
    fn drop(&mut self) {
        if let Some(b) = &self.budget {
            b.release(self.reserved);
        }
    }
}

impl ResourceLimiter for Limits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.denied = true;
            return Ok(false);
        }
        if let Some(b) = &self.budget {
            let more = desired.saturating_sub(current);
            if !b.reserve(more) {
                self.denied = true;
                return Ok(false);
            }
            self.reserved += more;
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_share_the_budget_and_give_it_back() {
        let budget = MemoryBudget::new(100);
        let mut a = Limits::new(80, Some(budget.clone()));
        let mut b = Limits::new(80, Some(budget.clone()));
        assert!(a.memory_growing(0, 60, None).unwrap());
        assert!(
            !b.memory_growing(0, 60, None).unwrap(),
            "over the shared budget"
        );
        assert!(b.denied);
        assert!(b.memory_growing(0, 40, None).unwrap());
        assert_eq!(budget.used(), 100);
        drop(a);
        assert_eq!(budget.used(), 40);
        assert!(
            !b.memory_growing(40, 90, None).unwrap(),
            "over its own limit"
        );
        drop(b);
        assert_eq!(budget.used(), 0);
    }
}
