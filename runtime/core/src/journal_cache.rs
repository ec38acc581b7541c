//! The journals a warm process advanced recently, so that a load reads
//! only the entries written since (issue 17: reads that grow with the new
//! entries, not with the square of a run's length). Both stores keep one:
//! DynamoDB (a warm function instance) and SQLite (the local engine).
//!
//! Journal entries never change once written, so a cached prefix of a run
//! stays true; a store's load reads only the meta, the inbox and the
//! entries from the cached length on, and checks what it got against the
//! meta: the same run and creation time, and the first new entry right
//! after the cached ones. Anything else (a continue-as-new elsewhere, a
//! gap, an execution made again under the same id) drops the cached
//! prefix. Bounded: at most [`JOURNALS`] executions and [`BYTES`] of
//! entries (estimated by [`weight`]), least recently used out first. No IO.

use crate::{Entry, Event, ExecutionId, Failure, Timestamp};
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
pub struct JournalCache {
    inner: Mutex<Inner>,
}

impl Default for JournalCache {
    fn default() -> Self {
        Self::with_limits(JOURNALS, BYTES)
    }
}

struct Inner {
    max_journals: usize,
    max_bytes: usize,
    map: HashMap<ExecutionId, Cached>,
    bytes: usize,
    tick: u64,
}

impl Inner {
    fn evict(&mut self) {
        while self.map.len() > self.max_journals || self.bytes > self.max_bytes {
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

/// Roughly what `e` takes in memory and in its encoded form: its strings
/// and payloads plus a fixed overhead. An estimate (encoding every entry
/// to measure it would cost more than the cache saves).
pub fn weight(e: &Entry) -> usize {
    fn failure(f: &Failure) -> usize {
        f.message.len() + f.details.as_ref().map_or(0, |d| d.len()) + 32
    }
    fn result(r: &Result<crate::Payload, Failure>) -> usize {
        match r {
            Ok(p) => p.len(),
            Err(f) => failure(f),
        }
    }
    96 + match &e.event {
        Event::Started {
            workflow, input, ..
        } => workflow.len() + input.len() + 64,
        Event::ActivityCompleted {
            name, result: r, ..
        } => name.len() + result(r),
        Event::ActivityRetrying {
            name, failure: f, ..
        } => name.len() + failure(f),
        Event::TimerStarted { .. } | Event::TimerFired { .. } => 0,
        Event::SignalReceived {
            name,
            payload,
            inbox_id,
            ..
        } => name.len() + payload.len() + inbox_id.len(),
        Event::ChildStarted {
            workflow, child_id, ..
        } => workflow.len() + child_id.as_str().len(),
        Event::ChildCompleted {
            child_id,
            result: r,
            inbox_id,
            ..
        } => child_id.as_str().len() + result(r) + inbox_id.len(),
        Event::CancelRequested { reason, inbox_id } => reason.len() + inbox_id.len(),
        Event::Completed { output } => output.len(),
        Event::Failed { failure: f } => failure(f),
        Event::ContinuedAsNew { input } => input.len(),
    }
}

impl JournalCache {
    /// A cache of at most `journals` executions and `bytes` of entries
    /// (`0` journals: keeps nothing, every load reads the whole run).
    pub fn with_limits(journals: usize, bytes: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                max_journals: journals,
                max_bytes: bytes,
                map: HashMap::new(),
                bytes: 0,
                tick: 0,
            }),
        }
    }

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
        let bytes = entries.iter().map(weight).sum();
        let mut inner = self.lock();
        inner.remove(id);
        if bytes > inner.max_bytes / 4 || inner.max_journals == 0 {
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
        let n = weight(entry);
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

    /// Keeps `entries` (the whole of run `run`, index 0 first, as a load
    /// returned it): only the entries past the cached ones are copied when
    /// the cache already holds a prefix of them.
    pub fn keep(&self, id: &ExecutionId, run: u32, created_at: Timestamp, entries: &[Entry]) {
        {
            let mut inner = self.lock();
            inner.tick += 1;
            let tick = inner.tick;
            if let Some(c) = inner.map.get_mut(id)
                && c.run == run
                && c.created_at == created_at
                && c.entries.len() <= entries.len()
            {
                let tail = &entries[c.entries.len()..];
                let n: usize = tail.iter().map(weight).sum();
                c.entries.extend_from_slice(tail);
                c.bytes += n;
                c.used = tick;
                inner.bytes += n;
                inner.evict();
                return;
            }
        }
        self.put(id, run, created_at, entries);
    }

    /// Forgets `id` (an execution no longer as cached).
    pub fn forget(&self, id: &ExecutionId) {
        self.lock().remove(id);
    }
}
