//! Memory and table limits for guest instances.

use wasmtime::ResourceLimiter;

/// Caps linear memory and tables; remembers whether it refused a growth, so
/// that the trap that usually follows (an allocation failure) can be
/// reported as what it is.
#[derive(Debug)]
pub struct Limits {
    pub(crate) memory_bytes: usize,
    pub(crate) denied: bool,
}

impl Limits {
    pub(crate) fn new(memory_bytes: usize) -> Self {
        Self {
            memory_bytes,
            denied: false,
        }
    }
}

impl ResourceLimiter for Limits {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.denied = true;
            return Ok(false);
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
