//! The journals a warm process advanced recently, so that a load reads
//! only the entries written since (issue 17: reads that grow with the new
//! entries, not with the square of a run's length).
//!
//! Journal entries never change once written, so a cached prefix of a run
//! stays true; a load asks DynamoDB only for the meta, the inbox and the
//! entries from the cached length on (`sk >= h#<run>#<len>`) and checks
//! what it got against the meta: the same run and creation time, and the
//! first new entry right after the cached ones. Anything else (a
//! continue-as-new elsewhere: the whole new run is above the bound and comes
//! back whole; a gap) drops the cached prefix. Bounded: at most
//! [`JOURNALS`] executions and [`BYTES`] of encoded entries, least recently
//! used out first.

use cairn_core::{Entry, ExecutionId, Timestamp};
use std::collections::HashMap;
use std::sync::Mutex;

/// Executions whose journals a store keeps.
pub const JOURNALS: usize = 256;

/// Bytes of journal bodies a store keeps (the function's host headroom is
/// 128 MiB: see infra/CONTRACT.md, "memory").
pub const BYTES: usize = 32 << 20;

struct Cached {
    run: u32,
    created_at: Timestamp,
    entries: Vec<Entry>,
    bytes: usize,
    used: u64,
}

/// The cache (see the module docs).
#[derive(Default)]
pub(crate) struct JournalCache {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    map: HashMap<ExecutionId, Cached>,
    bytes: usize,
    tick: u64,
}

impl Inner {
    fn evict(&mut self) {
        while self.map.len() > JOURNALS || self.bytes > BYTES {
            let Some(oldest) = self
                .map
                .iter()
                .min_by_key(|(_, c)| c.used)
                .map(|(id, _)| id.clone())
            else {
                return;
            };
            self.remove(&oldest);
        }
    }

    fn remove(&mut self, id: &ExecutionId) {
        if let Some(c) = self.map.remove(id) {
            self.bytes -= c.bytes;
        }
    }
}

fn body_len(e: &Entry) -> usize {
    cairn_core::entry::encode(e).len()
}

impl JournalCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached run, creation time and length of `id`'s journal.
    pub fn prefix(&self, id: &ExecutionId) -> Option<(u32, Timestamp, u32)> {
        let inner = self.lock();
        let c = inner.map.get(id)?;
        Some((c.run, c.created_at, c.entries.len() as u32))
    }

    /// The cached entries of `run`, if they are `len` long.
    pub fn entries(&self, id: &ExecutionId, run: u32, len: u32) -> Option<Vec<Entry>> {
        let mut inner = self.lock();
        inner.tick += 1;
        let tick = inner.tick;
        let c = inner.map.get_mut(id)?;
        if c.run != run || c.entries.len() as u32 != len {
            return None;
        }
        c.used = tick;
        Some(c.entries.clone())
    }

    /// Keeps `entries` (index 0 first) as `id`'s journal of `run`.
    pub fn put(&self, id: &ExecutionId, run: u32, created_at: Timestamp, entries: &[Entry]) {
        let bytes = entries.iter().map(body_len).sum();
        let mut inner = self.lock();
        inner.remove(id);
        if bytes > BYTES / 4 {
            return; // one journal never takes most of the cache
        }
        inner.tick += 1;
        let used = inner.tick;
        inner.bytes += bytes;
        inner.map.insert(
            id.clone(),
            Cached {
                run,
                created_at,
                entries: entries.to_vec(),
                bytes,
                used,
            },
        );
        inner.evict();
    }

    /// An entry this process wrote: kept if it extends the cached run.
    pub fn push(&self, id: &ExecutionId, run: u32, entry: &Entry) {
        let mut inner = self.lock();
        let n = body_len(entry);
        let Some(c) = inner.map.get_mut(id) else {
            return;
        };
        if c.run != run || c.entries.len() as u32 != entry.index {
            return;
        }
        c.entries.push(entry.clone());
        c.bytes += n;
        inner.bytes += n;
        inner.evict();
    }

    /// Forgets `id` (an execution no longer as cached).
    pub fn forget(&self, id: &ExecutionId) {
        self.lock().remove(id);
    }
}
