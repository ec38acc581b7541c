//! Sharded index keys: no partition of `by-status-shard` or `by-wake` is hot.
//!
//! A global secondary index throttles like a table: about 1,000 write units
//! and 3,000 read units per second per partition key value, and a throttled
//! index throttles the base table's writes. With one key per status (or one
//! wake key for every timer) the whole deployment would top out at about a
//! thousand status changes or suspends per second. So each execution's meta
//! carries its index keys with a shard suffix derived from its id:
//!
//! - `status_shard` = `<status>#<shard>` (index `by-status-shard`, range `updated_at`);
//! - `wake_bucket` = `w#<shard>` (index `by-wake`, range `wake_at`).
//!
//! `shard = fnv1a64(id) % N`, N the store's setting
//! ([`DEFAULT_INDEX_SHARDS`], `CAIRN_INDEX_SHARDS` in Lambda). Readers
//! (`list`, `due`) query every shard and merge. N may change at any time
//! without losing an execution: before its first write a store raises the
//! table's *contract item* (`cairn#table` / `meta`, attribute
//! `index_shards`) to at least its own N, and readers query every shard
//! below the contract item's value (the highest N ever used), plus the wake
//! key of contract 1 (`w`). An execution written under another N moves to
//! its new shard at its next meta write.
//!
//! Wake keys carry no time bucket: the range key `wake_at` already bounds a
//! sweep's query to what is due, and a time bucket would make the sweep
//! enumerate every past bucket; spreading the writes is the shard's job.

use aws_sdk_dynamodb::types::AttributeValue;
use cairn_core::ExecutionId;
use cairn_core::store::Status;

/// The shard count when none is set: at 10,000 swap-saga starts per second
/// the hottest index key stays under DynamoDB's 1,000 write units per second
/// (see `scripts/bench-load`), while a sweep costs only this many small
/// queries.
pub const DEFAULT_INDEX_SHARDS: u32 = 128;

/// The largest shard count accepted: a sweep or a list sends one query per
/// shard (per status).
pub const MAX_INDEX_SHARDS: u32 = 1024;

/// The contract version this store writes and reads (see `infra/CONTRACT.md`).
pub const CONTRACT_VERSION: u64 = 3;

/// The partition key of the table's contract item.
pub(crate) const CONTRACT_PK: &str = "cairn#table";

/// The wake key of contract 1 tables (one for every timer): still read, so
/// that executions suspended before an upgrade are found.
pub(crate) const LEGACY_WAKE_BUCKET: &str = "w";

/// The shard of an execution among `n`: FNV-1a (64 bits) of its id, modulo
/// `n`. Stable across processes, versions and platforms.
pub fn shard_of(id: &ExecutionId, n: u32) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.as_str().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % u64::from(n.max(1))) as u32
}

/// `status_shard` of an execution in `status` on `shard`.
pub fn status_key(status: Status, shard: u32) -> String {
    format!("{}#{shard}", status.as_str())
}

/// `wake_bucket` of an execution on `shard`.
pub fn wake_key(shard: u32) -> String {
    format!("w#{shard}")
}

/// Checks a shard count setting.
pub fn check_index_shards(n: u32) -> Result<u32, String> {
    if (1..=MAX_INDEX_SHARDS).contains(&n) {
        Ok(n)
    } else {
        Err(format!(
            "the index shard count must be between 1 and {MAX_INDEX_SHARDS}, not {n}"
        ))
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn shards_are_stable_and_spread() {
        let id = ExecutionId::new("order-42").unwrap();
        // Fixed forever: a changed hash would move every execution.
        assert_eq!((shard_of(&id, 64), shard_of(&id, 1024)), (20, 724));
        assert_eq!(shard_of(&id, 1), 0);
        let mut counts = [0u32; 16];
        for i in 0..16_000 {
            let id = ExecutionId::new(format!("ex-{i}")).unwrap();
            counts[shard_of(&id, 16) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (800..1200).contains(&c)),
            "{counts:?}"
        );
        assert_eq!(status_key(Status::Waiting, 3), "waiting#3");
        assert_eq!(wake_key(7), "w#7");
        assert!(check_index_shards(0).is_err());
        assert!(check_index_shards(MAX_INDEX_SHARDS + 1).is_err());
    }
}

use crate::DynamoStore;
use crate::codec::{Item, get_n, n, s, sdk_error};
use cairn_core::StoreError;

impl DynamoStore {
    /// The shard `id` writes its index keys to.
    pub(crate) fn shard(&self, id: &ExecutionId) -> u32 {
        shard_of(id, self.index_shards)
    }

    /// `status_shard` for `id` in `status`.
    pub(crate) fn status_key_of(&self, id: &ExecutionId, status: Status) -> AttributeValue {
        s(status_key(status, self.shard(id)))
    }

    /// `wake_bucket` for `id`.
    pub(crate) fn wake_key_of(&self, id: &ExecutionId) -> AttributeValue {
        s(wake_key(self.shard(id)))
    }

    /// Before a write with index keys: the contract item records at least
    /// this store's shard count, so readers query the shard written to.
    /// One conditional update per process (raising, never lowering it).
    pub(crate) async fn ensure_shards(&self) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering;
        if self.shards_recorded.load(Ordering::Acquire) >= self.index_shards {
            return Ok(());
        }
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(CONTRACT_PK))
            .key("sk", s("meta"))
            .update_expression("SET index_shards = :n, contract = :v")
            .condition_expression("attribute_not_exists(index_shards) OR index_shards < :n")
            .expression_attribute_values(":n", n(u64::from(self.index_shards)))
            .expression_attribute_values(":v", n(CONTRACT_VERSION))
            .send()
            .await;
        match r {
            Ok(_) => {}
            // Already as high or higher.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) => {}
            Err(e) => return Err(sdk_error(&self.table, e)),
        }
        self.shards_recorded
            .fetch_max(self.index_shards, Ordering::AcqRel);
        Ok(())
    }

    /// The shard count readers must cover: the highest any store recorded
    /// in the contract item, and at least this store's own.
    pub(crate) async fn shards_to_read(&self) -> Result<u32, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(CONTRACT_PK))
            .key("sk", s("meta"))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error(&self.table, e))?;
        let recorded = out
            .item
            .as_ref()
            .and_then(|i| get_n(i, "index_shards"))
            .unwrap_or(0)
            .min(u64::from(MAX_INDEX_SHARDS)) as u32;
        Ok(recorded.max(self.index_shards))
    }

    /// Every page of one index query (`key`: the partition key's value),
    /// newest or oldest first as `forward` says, stopping once `want` items
    /// passed the filter (`usize::MAX`: all).
    pub(crate) async fn query_index(
        &self,
        q: IndexQuery<'_>,
        key: String,
        want: usize,
    ) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(q.index)
                .key_condition_expression(q.condition)
                .expression_attribute_names("#k", q.key_attr)
                .expression_attribute_values(":k", s(key.clone()))
                .scan_index_forward(q.forward)
                .set_exclusive_start_key(start);
            for (name, value) in &q.values {
                query = query.expression_attribute_values(*name, value.clone());
            }
            if let Some(f) = q.filter {
                query = query.filter_expression(f);
            }
            // Without a filter the page needs no more than what is wanted.
            if q.filter.is_none() && want < usize::MAX {
                query = query.limit((want - out.len()).clamp(1, 1000) as i32);
            }
            let page = query.send().await.map_err(|e| sdk_error(&self.table, e))?;
            out.extend(page.items.unwrap_or_default());
            start = page.last_evaluated_key;
            if start.is_none() || out.len() >= want {
                break;
            }
        }
        Ok(out)
    }

    /// [`DynamoStore::query_index`] over many keys at once (at most
    /// [`SCATTER_CONCURRENCY`] queries in flight), each key's items in
    /// its order; the caller merges.
    pub(crate) async fn scatter(
        &self,
        q: IndexQuery<'static>,
        keys: Vec<String>,
        want: usize,
    ) -> Result<Vec<Item>, StoreError> {
        let mut set = tokio::task::JoinSet::new();
        let mut keys = keys.into_iter();
        let mut out = Vec::new();
        loop {
            while set.len() < SCATTER_CONCURRENCY {
                let Some(key) = keys.next() else { break };
                let store = self.clone();
                let q = q.clone();
                set.spawn(async move { store.query_index(q, key, want).await });
            }
            match set.join_next().await {
                None => break,
                Some(Ok(r)) => out.extend(r?),
                Some(Err(e)) => {
                    return Err(StoreError::Unavailable(format!(
                        "an index query did not finish: {e}"
                    )));
                }
            }
        }
        Ok(out)
    }
}

/// Queries of a scatter-gather in flight at once.
pub(crate) const SCATTER_CONCURRENCY: usize = 16;

/// One index query's shape (its partition key's value aside).
#[derive(Clone)]
pub(crate) struct IndexQuery<'a> {
    pub index: &'a str,
    /// The partition key attribute (`#k`; its value is `:k`).
    pub key_attr: &'a str,
    pub condition: &'a str,
    pub values: Vec<(&'a str, AttributeValue)>,
    pub filter: Option<&'a str>,
    pub forward: bool,
}
