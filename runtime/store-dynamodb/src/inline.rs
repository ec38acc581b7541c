//! Journal entries held in the meta item (contract 3): a write fewer at
//! each end of a short execution.
//!
//! DynamoDB bills a write by the item's size in 1 KB units, at least one,
//! and a small entry is a few hundred bytes: so the meta can carry two
//! kinds of entries for free, and the execution saves a request and a
//! write unit each time.
//!
//! - **`head`** (S): entry 0 of run 1, the start, when the meta with it
//!   stays within [`HEAD_ITEM_BYTES`]. The start is then one conditional
//!   put (it was entry 0, then the meta). It stays for the execution's
//!   life (continue-as-new does not move it: `load_run(1)` reads it).
//! - **`tail`** (L of S) from index **`tail_from`** (N): the final entry of
//!   the current run, after the activity completions the driver held back
//!   for it ([`cairn_core::Store::append_final`]), when their bodies come to
//!   at most [`TAIL_BYTES`] and none is over the payload threshold (which
//!   sends a body to the bucket, never the meta). The finish is then one update of the meta,
//!   which was an entry put per entry and then the meta's status.
//!
//! Fencing: an entry item is written with `attribute_not_exists`, the
//! first writer of an index winning. A tail cannot be fenced that way (an
//! update of the meta cannot see another item without a transaction, which
//! costs twice), so it is written only by a store holding the execution's
//! lease, on the condition that it still does: a driver that lost its lease
//! to another cannot finish over entries the other wrote. A driver without
//! a lease writes items (and clears an expired lease before its first
//! write: see the engine's driver).
//!
//! A load merges both with the entry items: the head before them, the tail
//! after, each index once.

use crate::codec::*;
use aws_sdk_dynamodb::types::AttributeValue;
use cairn_core::store::StoreError;
use cairn_core::{Entry, ExecutionId};

/// A start's entry 0 goes in the meta when the meta with it is at most
/// this many bytes (as DynamoDB counts them): room is left for what the
/// meta gains later (a lease, a wake, `waiting_on`) within the 1 KB one
/// write unit covers.
pub(crate) const HEAD_ITEM_BYTES: usize = 760;

/// The final entry and the completions before it go in the meta when
/// their bodies are at most this many bytes together.
pub(crate) const TAIL_BYTES: usize = 1024;

/// The inline entries of a meta item: `(run, entry)`, in index order.
pub(crate) fn entries(id: &ExecutionId, item: &Item) -> Result<Vec<(u32, Entry)>, StoreError> {
    let mut out = Vec::new();
    if let Some(body) = get_s(item, "head") {
        out.push((1, decode(id, 0, &body)?));
    }
    if let Some(AttributeValue::L(bodies)) = item.get("tail") {
        let run = get_n(item, "run").unwrap_or(1) as u32;
        let from = get_n(item, "tail_from")
            .ok_or_else(|| corrupt(id, "the meta has a tail without tail_from"))?
            as u32;
        for (i, body) in bodies.iter().enumerate() {
            let body = body
                .as_s()
                .map_err(|_| corrupt(id, "the meta's tail holds a non-string"))?;
            out.push((run, decode(id, from + i as u32, body)?));
        }
    }
    Ok(out)
}

fn decode(id: &ExecutionId, index: u32, body: &str) -> Result<Entry, StoreError> {
    cairn_core::entry::decode(index, body.as_bytes())
        .map_err(|e| corrupt(id, format!("journal entry {index} (held in the meta): {e}")))
}

fn corrupt(id: &ExecutionId, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        id: id.clone(),
        reason: reason.into(),
    }
}

/// Merges the inline entries of run `run` into `journal` (run `run`'s
/// entries from index `from`, ascending, read from items): each index
/// once, the result contiguous from `from`. An inline entry at an index an
/// item also holds must be the same entry (an item of entry 0 left by a
/// start of an older runtime stopped before its meta yields to the head).
pub(crate) fn merge(
    id: &ExecutionId,
    journal: &mut Vec<Entry>,
    inline: Vec<(u32, Entry)>,
    run: u32,
    from: u32,
) -> Result<(), StoreError> {
    for (r, entry) in inline {
        if r != run || entry.index < from {
            continue;
        }
        let at = (entry.index - from) as usize;
        if entry.index == 0 {
            match journal.first() {
                Some(first) if first.index == 0 => journal[0] = entry,
                _ => journal.insert(0, entry),
            }
        } else if at < journal.len() {
            if journal[at] != entry {
                return Err(corrupt(
                    id,
                    format!(
                        "journal entry {} of run {run} is both an item and, differently, in the meta",
                        entry.index
                    ),
                ));
            }
        } else if at == journal.len() {
            journal.push(entry);
        } else {
            return Err(corrupt(
                id,
                format!(
                    "the meta holds journal entry {} of run {run}, but the entries before it end at {}",
                    entry.index,
                    from as usize + journal.len()
                ),
            ));
        }
    }
    for (i, e) in journal.iter().enumerate() {
        if e.index != from + i as u32 {
            return Err(corrupt(
                id,
                format!("journal entry {} of run {run} is missing", from + i as u32),
            ));
        }
    }
    Ok(())
}

/// The tail's attribute value, or `None` when the bodies are too large to
/// be held in the meta (or one is not small enough to stay in the table).
pub(crate) fn tail(bodies: &[String]) -> Option<AttributeValue> {
    let total: usize = bodies.iter().map(String::len).sum();
    (total <= TAIL_BYTES).then(|| AttributeValue::L(bodies.iter().map(|b| s(b.as_str())).collect()))
}
