//! # cairn-store-dynamodb: the journal in the user's DynamoDB table
//!
//! Implements [`cairn_core::Store`] on one table (see `infra/CONTRACT.md`):
//!
//! | item | pk | sk |
//! |---|---|---|
//! | execution meta | `exec#<id>` | `meta` |
//! | journal entry | `exec#<id>` | `h#<run, 6 digits>#<index, 10 digits>` |
//! | inbox item | `exec#<id>` | `in#<ulid>` |
//! | component | `component#<sha256>` | `meta`, `c#<chunk>` |
//! | workflow registry | `workflow#<name>` | `meta` |
//!
//! The meta's index keys are sharded (no hot key at internet scale): see
//! the [`shards`] module; the table's contract item `cairn#table` / `meta`
//! records the highest shard count written with.
//!
//! Correctness under concurrent Lambda invocations rests on conditional
//! writes, never on locks:
//!
//! - **load** is one consistent `Query` on the execution's partition, read
//!   in descending key order: `meta`, then the inbox (`in#`), then the
//!   current run's entries. When the store knows the current run (it saw
//!   the meta: the lease it just acquired, an earlier load, the create or
//!   continue-as-new it wrote) the key condition starts at that run's first
//!   entry (`sk >= h#<run>#`): one page holds the whole run up to
//!   DynamoDB's 1 MB page, and older runs (closed by continue-as-new) are
//!   never read. Otherwise the first page stops at 500 items (so it reads
//!   little of an older run) and the pages after it, the run now known
//!   from the meta, are bounded to the run;
//! - **create** is entry 0, then the meta, each one conditional `PutItem`;
//!   an entry 0 without its meta (a start stopped in between) is taken
//!   over by the next start of the same workflow and input;
//! - **append** is one conditional `PutItem` (`attribute_not_exists`): the
//!   first writer of an index wins. A final entry is that put, then the
//!   meta's status in one update conditional on the run (half done, the
//!   next load finishes it): a transaction would cost twice the write
//!   units. A signal entry and its inbox item (marked consumed, expiring
//!   after 7 days) change together in one `TransactWriteItems`;
//! - **deliver** puts the inbox item and bumps the meta's inbox version in one
//!   transaction;
//! - **suspend** updates the meta only if the inbox version is the one loaded,
//!   with a condition check that the next journal entry does not exist yet.
//!
//! A conditional failure is never retried: it means another driver won,
//! unless the entry it met is the caller's own, written by an attempt whose
//! reply was lost (the SDK retries a put it sent; the caller may retry after
//! the SDK gave up): then the write is done, not a conflict. Transactions
//! carry an idempotency token, so the SDK's retry of one already applied is
//! answered as done. Throttling, 5xx and connection errors are retried by
//! the SDK under the store's [`retry_config`]; what still fails is
//! [`StoreError::Unavailable`].
//! Bodies over a threshold (64 KiB by default) go to an S3 bucket when one
//! is configured, the item holding a reference with the body's SHA-256
//! (see the [`payloads`] module), up to [`MAX_PAYLOAD_BYTES`]; without a
//! bucket, items over DynamoDB's 400 KB limit are refused before the call,
//! naming the execution, the item, the size and the setting.

mod codec;
mod journal_cache;
mod payloads;
mod requests;
mod shards;
mod table;

pub use payloads::{
    DEFAULT_PAYLOAD_THRESHOLD, MAX_PAYLOAD_BYTES, PAYLOAD_PREFIX, check_payload_threshold,
};
pub use requests::RequestStats;
pub use shards::{
    CONTRACT_VERSION, DEFAULT_INDEX_SHARDS, MAX_INDEX_SHARDS, check_index_shards, shard_of,
    status_key, wake_key,
};
pub use table::{STATUS_PROJECTION, TableCheck, create_table, describe_table, upgrade_table};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem, Update};
use cairn_core::store::*;
use cairn_core::{ComponentHash, Entry, ExecutionId, Timestamp};
use codec::*;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// DynamoDB's item size limit is 400 KB (409,600 bytes); entries are refused
/// a little below it, leaving room for keys and attribute names.
pub const MAX_ITEM_BYTES: usize = 400_000;

/// Component bytes are stored in chunks of this size.
const CHUNK_BYTES: usize = 350_000;

/// Items in the first page of a load when the store does not know the
/// current run (see [`DynamoStore::load`]): enough for a typical execution
/// in one request, small enough that reading past the current run into an
/// older one wastes little. Pages bounded to a known run have no item cap.
const COLD_FIRST_PAGE_ITEMS: i32 = 500;

/// Executions whose current run the store remembers (a few bytes each);
/// past it the memory starts over.
const RUN_HINTS: usize = 10_000;

/// Copies of each workflow's pointer that starts read in turn, so that no
/// key takes more than its share of the starts' reads (see
/// `workflow_component`): 16 copies keep each under DynamoDB's 3,000 read
/// units per second up to about 48,000 starts per second of one workflow.
pub const POINTER_REPLICAS: u64 = 16;

/// Every status, for a list that names none.
const ALL_STATUSES: [Status; 6] = [
    Status::Running,
    Status::Waiting,
    Status::Completed,
    Status::Failed,
    Status::Cancelled,
    Status::Parked,
];

/// How long consumed inbox items are kept (for audit) before TTL removes them.
const CONSUMED_RETENTION_SECS: u64 = 7 * 86_400;

/// Attempts per request (the first and its retries) under the store's own
/// retry policy.
pub const RETRY_ATTEMPTS: u32 = 5;

/// The store's retry policy, unless the SDK configuration chose one: the
/// SDK's standard retries (throttling, 5xx, connection errors and timeouts;
/// never a refused condition), [`RETRY_ATTEMPTS`] attempts, jittered
/// exponential backoff from 50 ms up to 2 s. The SDK's default (3 attempts,
/// from 1 s) gives up sooner and waits longer; DynamoDB's throttling passes
/// in milliseconds to seconds (AWS's other SDKs retry DynamoDB from 25 ms,
/// up to 10 times). What the retries cannot get through is
/// [`StoreError::Unavailable`], which the engine retries in turn.
///
/// The SDK also bounds retries by a quota per process and service (500
/// tokens; a retry takes 5 after throttling, 10 after a transient error
/// such as a 5xx or a lost connection; a retry that succeeds gives its
/// tokens back, a first attempt that succeeds adds one): during an outage
/// it stops retrying after a few dozen failed calls, so that a fleet does
/// not multiply the load of a struggling table. Calls then fail at once, as
/// `Unavailable`, until successes refill it.
pub fn retry_config() -> aws_sdk_dynamodb::config::retry::RetryConfig {
    aws_sdk_dynamodb::config::retry::RetryConfig::standard()
        .with_max_attempts(RETRY_ATTEMPTS)
        .with_initial_backoff(std::time::Duration::from_millis(50))
        .with_max_backoff(std::time::Duration::from_secs(2))
}

/// How long one attempt may wait for DynamoDB's reply (unless the SDK
/// configuration sets an attempt timeout): past it the attempt is
/// abandoned and retried like a lost connection. The SDK sets none, so a
/// request whose reply never came (a half-open connection) waited forever.
/// DynamoDB answers in milliseconds; a 1 MB query page or a 100-item
/// transaction well within this.
pub const ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The DynamoDB store.
#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    stats: Arc<RequestStats>,
    ulids: Arc<Mutex<ulid::Generator>>,
    inbox_grace: Option<std::time::Duration>,
    /// The current run of executions whose meta the store saw: the lower
    /// bound of a load's key condition.
    run_hints: Arc<Mutex<HashMap<ExecutionId, u32>>>,
    /// Index shards this store writes to (see [`shards`]).
    index_shards: u32,
    /// The shard count this process has recorded in the contract item (0:
    /// none yet): writes wait for it to reach `index_shards`.
    shards_recorded: Arc<std::sync::atomic::AtomicU32>,
    /// Workflow pointer reads so far: the next picks copy `n % POINTER_REPLICAS`.
    pointer_reads: Arc<std::sync::atomic::AtomicU64>,
    /// Journals this process loaded or wrote lately: a load reads only
    /// the entries after them (see [`journal_cache`]).
    journals: Arc<journal_cache::JournalCache>,
    /// Large bodies in S3 (see [`payloads`]).
    payloads: payloads::Payloads,
}

impl std::fmt::Debug for DynamoStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoStore")
            .field("table", &self.table)
            .finish()
    }
}

impl DynamoStore {
    /// A store on `table` with the region, credentials and endpoint of the
    /// environment (`AWS_REGION`, `AWS_ENDPOINT_URL_DYNAMODB`, ...). Checks
    /// the table exists with Cairn's key schema.
    pub async fn connect(table: &str) -> Result<Self, StoreError> {
        let store = Self::connect_unchecked(table).await;
        store.check().await?;
        Ok(store)
    }

    /// Like [`DynamoStore::connect`] without the table check (one request
    /// fewer at cold start, for callers that checked at deploy time).
    pub async fn connect_unchecked(table: &str) -> Self {
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Self::from_sdk_config(&sdk, table)
    }

    /// A store on `table` from an SDK configuration. Unless the
    /// configuration chose a retry policy (in code, or `AWS_MAX_ATTEMPTS` /
    /// `AWS_RETRY_MODE`), the store's own applies: see [`retry_config`];
    /// unless it chose an attempt timeout, [`ATTEMPT_TIMEOUT`].
    pub fn from_sdk_config(sdk: &aws_config::SdkConfig, table: &str) -> Self {
        let stats = Arc::new(RequestStats::default());
        let mut config = aws_sdk_dynamodb::config::Builder::from(sdk)
            .interceptor(requests::Counter(stats.clone()));
        let chosen = sdk.get_origin("retry_config").is_client_config()
            || std::env::var_os("AWS_MAX_ATTEMPTS").is_some()
            || std::env::var_os("AWS_RETRY_MODE").is_some();
        if !chosen {
            config = config.retry_config(retry_config());
        }
        let timeouts = sdk
            .timeout_config()
            .cloned()
            .unwrap_or_else(|| aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder().build());
        if timeouts.operation_attempt_timeout().is_none() {
            config = config.timeout_config(
                timeouts
                    .to_builder()
                    .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                    .build(),
            );
        }
        let config = config.build();
        Self {
            client: Client::from_conf(config),
            table: table.to_owned(),
            stats,
            ulids: Arc::new(Mutex::new(ulid::Generator::new())),
            inbox_grace: None,
            run_hints: Arc::default(),
            index_shards: DEFAULT_INDEX_SHARDS,
            shards_recorded: Arc::default(),
            pointer_reads: Arc::default(),
            journals: Arc::default(),
            payloads: payloads::Payloads {
                client: payloads::s3_client(sdk),
                bucket: None,
                threshold: DEFAULT_PAYLOAD_THRESHOLD,
            },
        }
    }

    /// Bodies over the payload threshold go to `bucket` (see [`payloads`]),
    /// up to [`MAX_PAYLOAD_BYTES`]. Without one, bodies stay in the item,
    /// up to [`MAX_ITEM_BYTES`].
    pub fn with_payload_bucket(mut self, bucket: impl Into<String>) -> Self {
        self.payloads.bucket = Some(bucket.into());
        self
    }

    /// Bodies over `bytes` go to the payload bucket (default
    /// [`DEFAULT_PAYLOAD_THRESHOLD`]; at most [`MAX_ITEM_BYTES`], the
    /// most an item holds).
    pub fn with_payload_threshold(mut self, bytes: usize) -> Self {
        self.payloads.threshold = bytes.min(MAX_ITEM_BYTES);
        self
    }

    /// Payloads read and written through S3 with the endpoint, region and
    /// credentials of `sdk` (by default those the store was made with).
    pub fn with_payload_sdk_config(mut self, sdk: &aws_config::SdkConfig) -> Self {
        self.payloads.client = payloads::s3_client(sdk);
        self
    }

    /// Creates the payload bucket unless it exists (`cairn table create`,
    /// for local use: the deploy stacks create theirs). `Ok(true)`: created.
    pub async fn create_payload_bucket(&self) -> Result<bool, StoreError> {
        let Some(bucket) = self.payloads.bucket.as_deref() else {
            return Err(StoreError::Misconfigured(
                "no payload bucket is configured: set CAIRN_PAYLOAD_BUCKET (or --payload-bucket)"
                    .into(),
            ));
        };
        let client = &self.payloads.client;
        if client.head_bucket().bucket(bucket).send().await.is_ok() {
            return Ok(false);
        }
        let mut create = client.create_bucket().bucket(bucket);
        if let Some(region) = client.config().region().map(|r| r.to_string())
            && region != "us-east-1"
        {
            create = create.create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(
                        region.as_str(),
                    ))
                    .build(),
            );
        }
        create.send().await.map_err(|e| {
            StoreError::Misconfigured(format!(
                "cannot create payload bucket {bucket}: {}",
                aws_sdk_s3::error::DisplayErrorContext(&e)
            ))
        })?;
        Ok(true)
    }

    /// The payload bucket, if any.
    pub fn payload_bucket(&self) -> Option<&str> {
        self.payloads.bucket.as_deref()
    }

    /// The payload threshold in bytes.
    pub fn payload_threshold(&self) -> usize {
        self.payloads.threshold
    }

    /// The same store with its SDK client's configuration adjusted by `f`
    /// (its retry partition, timeouts, another interceptor...).
    pub fn configure_client(
        mut self,
        f: impl FnOnce(aws_sdk_dynamodb::config::Builder) -> aws_sdk_dynamodb::config::Builder,
    ) -> Self {
        self.client = Client::from_conf(f(self.client.config().to_builder()).build());
        self
    }

    /// Every inbox write also sets the meta's wake time to `grace` after
    /// the write (the push host): if the stream record that should advance
    /// the execution is lost, [`cairn_core::Store::due`] (the sweep) finds
    /// it then. The advance that consumes the item sets the wake time anew.
    pub fn with_inbox_grace(mut self, grace: std::time::Duration) -> Self {
        self.inbox_grace = Some(grace);
        self
    }

    /// Writes index keys over `n` shards (see the [`shards`] module; checked
    /// with [`check_index_shards`]). Readers query every shard any store
    /// ever wrote to, so changing `n` loses no execution.
    pub fn with_index_shards(mut self, n: u32) -> Self {
        self.index_shards = n.clamp(1, MAX_INDEX_SHARDS);
        self
    }

    /// The shard count this store writes with.
    pub fn index_shards(&self) -> u32 {
        self.index_shards
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The SDK client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Requests sent, by operation (every attempt counts).
    pub fn stats(&self) -> &Arc<RequestStats> {
        &self.stats
    }

    /// Checks the table exists with the key schema and indexes Cairn needs.
    pub async fn check(&self) -> Result<(), StoreError> {
        match describe_table(&self.client, &self.table).await? {
            TableCheck::Ok => Ok(()),
            TableCheck::Missing => Err(StoreError::Misconfigured(format!(
                "table {} does not exist: create it with `cairn table create --table {}` (or deploy infra/)",
                self.table, self.table
            ))),
            TableCheck::Wrong(why) => Err(StoreError::Misconfigured(format!(
                "table {} is not a Cairn table: {why}",
                self.table
            ))),
        }
    }

    fn next_ulid(&self) -> Result<String, StoreError> {
        let mut g = self.ulids.lock().unwrap_or_else(|e| e.into_inner());
        g.generate()
            .map(|u| u.to_string())
            .map_err(|e| StoreError::Unavailable(format!("cannot make an inbox id: {e}")))
    }

    /// The run the store last saw as `id`'s current run.
    fn run_hint(&self, id: &ExecutionId) -> Option<u32> {
        self.run_hints
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .copied()
    }

    /// Remembers `run` as `id`'s current run (runs only grow: a lower one
    /// does not replace a higher one).
    fn note_run(&self, id: &ExecutionId, run: u32) {
        let mut hints = self.run_hints.lock().unwrap_or_else(|e| e.into_inner());
        if hints.len() >= RUN_HINTS && !hints.contains_key(id) {
            hints.clear();
        }
        let hint = hints.entry(id.clone()).or_insert(run);
        *hint = (*hint).max(run);
    }

    fn forget_run(&self, id: &ExecutionId) {
        self.run_hints
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }

    /// One load from `floor`, the lowest run it reads (`None`: unknown, the
    /// first page capped at [`COLD_FIRST_PAGE_ITEMS`]). `None` when the
    /// meta's run is below the floor (a hint from an execution of the same
    /// id that no longer exists): the caller loads again without it.
    async fn load_from(
        &self,
        id: &ExecutionId,
        mut floor: Option<(u32, u32)>,
    ) -> Result<Option<Execution>, StoreError> {
        let hint = floor.map(|(run, _)| run);
        let mut meta: Option<ExecutionMeta> = None;
        let mut journal = Vec::new();
        let mut inbox = Vec::new();
        let mut start = None;
        'pages: loop {
            let query = self
                .client
                .query()
                .table_name(&self.table)
                .expression_attribute_values(":pk", s(exec_pk(id)))
                .consistent_read(true)
                .scan_index_forward(false)
                .return_consumed_capacity(aws_sdk_dynamodb::types::ReturnConsumedCapacity::Total)
                .set_exclusive_start_key(start);
            // Descending, `meta` and `in#` sort above every entry: a floor
            // at the run's first entry keeps them and drops older runs.
            let query = match floor {
                Some((run, index)) => query
                    .key_condition_expression("pk = :pk AND sk >= :floor")
                    .expression_attribute_values(":floor", s(entry_sk(run, index))),
                None => query
                    .key_condition_expression("pk = :pk")
                    .limit(COLD_FIRST_PAGE_ITEMS),
            };
            let out = query.send().await.map_err(|e| sdk_error(&self.table, e))?;
            let items = out.items.unwrap_or_default();
            self.stats.add_read(
                out.consumed_capacity
                    .as_ref()
                    .and_then(|c| c.capacity_units),
                items.len() as u64,
                items.iter().map(item_bytes).sum::<usize>() as u64,
            );
            for mut item in items {
                let sk = get_s(&item, "sk").unwrap_or_default();
                if sk == "meta" {
                    let m = meta_from_item(id, &item)?;
                    if hint.is_some_and(|h| m.run < h) {
                        return Ok(None);
                    }
                    meta = Some(m);
                } else if let Some(ulid) = sk.strip_prefix("in#") {
                    // Consumed items stay (with a TTL) so keyed
                    // deliveries remain idempotent; they are not pending.
                    let consumed = item.contains_key("consumed_at");
                    if !consumed {
                        self.payloads
                            .resolve(id, || format!("inbox item {ulid}"), &mut item)
                            .await?;
                        inbox.push(inbox_from_item(id, ulid, &item)?);
                    }
                } else if let Some((run, index)) = parse_entry_sk(&sk) {
                    let current = meta
                        .as_ref()
                        .map(|m| m.run)
                        .ok_or_else(|| StoreError::NotFound(id.clone()))?;
                    if run < current {
                        break 'pages; // An earlier run: not part of this load.
                    }
                    self.payloads
                        .resolve(id, || format!("journal entry {index}"), &mut item)
                        .await?;
                    journal.push(entry_from_item(id, index, &item)?);
                }
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                break;
            }
            // The next page starts within the run (or above it): bound it
            // to the run, now known from the meta, and lift the item cap.
            // (A bound within the run, from the journal cache, stays.)
            if let Some(m) = &meta
                && floor.is_none_or(|(run, _)| run != m.run)
            {
                floor = Some((m.run, 0));
            }
        }
        let meta = meta.ok_or_else(|| StoreError::NotFound(id.clone()))?;
        journal.reverse();
        inbox.reverse();
        Ok(Some(Execution {
            meta,
            journal,
            inbox,
        }))
    }

    async fn get_meta(&self, id: &ExecutionId) -> Result<Option<ExecutionMeta>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(exec_pk(id)))
            .key("sk", s("meta"))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error(&self.table, e))?;
        out.item.map(|item| meta_from_item(id, &item)).transpose()
    }

    /// After a refused transaction: why? (not found, finished, or a conflict).
    async fn explain(&self, id: &ExecutionId, conflict: &str) -> StoreError {
        match self.get_meta(id).await {
            Ok(None) => StoreError::NotFound(id.clone()),
            Ok(Some(m)) if m.status.is_terminal() => StoreError::Finished {
                id: id.clone(),
                status: m.status,
            },
            Ok(Some(_)) => StoreError::Conflict {
                id: id.clone(),
                reason: conflict.to_string(),
            },
            Err(e) => e,
        }
    }

    /// Refuses a body over the store's limit before any request.
    fn check_size(
        &self,
        id: &ExecutionId,
        what: impl FnOnce() -> String,
        size: usize,
    ) -> Result<(), StoreError> {
        let limit = self.payloads.limit();
        if size > limit {
            return Err(StoreError::TooLarge {
                id: id.clone(),
                what: what(),
                size,
                limit,
                advice: self.payloads.advice(),
            });
        }
        Ok(())
    }

    /// The item of journal entry `index` of `run`, its body in S3 when
    /// large (written before the item: see [`payloads`]).
    async fn entry_item(
        &self,
        id: &ExecutionId,
        run: u32,
        index: u32,
        what: impl FnOnce() -> String,
        body: String,
    ) -> Result<HashMap<String, AttributeValue>, StoreError> {
        let mut item = entry_item(id, run, index);
        self.payloads.body(id, what, body).await?.set(&mut item);
        Ok(item)
    }

    /// One transaction. Cancelled for a `TransactionConflict` (another
    /// transaction held one of its items, as when a delivery and a suspend
    /// meet on the meta), it applied nothing: it is sent again, up to
    /// [`RETRY_ATTEMPTS`] times in all, after a short jittered pause (the
    /// SDK does not retry a cancelled transaction). Sent again, it meets
    /// the other transaction's outcome: done, or refused by its conditions.
    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<(), TransactError> {
        let mut attempt = 1;
        loop {
            let r = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            match r {
                Ok(_) => return Ok(()),
                Err(e) if attempt < RETRY_ATTEMPTS && is_transaction_conflict(&e) => {
                    let jitter = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.subsec_nanos() % 20_000_000);
                    let pause = std::time::Duration::from_millis(20 << (attempt - 1))
                        + std::time::Duration::from_nanos(u64::from(jitter));
                    tracing::debug!(attempt, "transaction conflict, sending again");
                    tokio::time::sleep(pause).await;
                    attempt += 1;
                }
                Err(e) => return Err(transact_error(&self.table, e)),
            }
        }
    }
}

/// Whether a transaction was cancelled only because another transaction
/// held one of its items (no condition of its own failed).
fn is_transaction_conflict<R>(
    e: &SdkError<aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError, R>,
) -> bool {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    let Some(TransactWriteItemsError::TransactionCanceledException(t)) = e.as_service_error()
    else {
        return false;
    };
    let codes = || t.cancellation_reasons().iter().filter_map(|r| r.code());
    codes().any(|c| c == "TransactionConflict") && !codes().any(|c| c == "ConditionalCheckFailed")
}

/// A conditional put in a transaction; if its condition fails, the
/// cancellation reason carries the item it found (to tell a write of our own
/// from another driver's: see [`is_own_entry`]).
fn put(table: &str, item: HashMap<String, AttributeValue>, condition: &str) -> TransactWriteItem {
    TransactWriteItem::builder()
        .put(
            Put::builder()
                .table_name(table)
                .set_item(Some(item))
                .condition_expression(condition)
                .return_values_on_condition_check_failure(
                    aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .build()
                .expect("put has table and item"),
        )
        .build()
}

/// Whether `found`, the journal entry a refused put met, is the one this
/// call writes (the same encoded body: same index, event and time). It can
/// be only when an earlier attempt of the same write was applied and its
/// reply lost: the SDK retried it (a conditional put is not idempotent), or
/// the caller retried after the SDK gave up. The write is done, once: not a
/// conflict. (Another driver's entry differs at least by its time; were it
/// byte for byte the same, the journal would hold exactly what this caller
/// meant to write.)
fn is_own_entry(found: Option<&HashMap<String, AttributeValue>>, body: &str) -> bool {
    found.is_some_and(|item| payloads::same_body(item, body))
}

impl cairn_core::Store for DynamoStore {
    fn max_item_bytes(&self) -> usize {
        self.payloads.limit()
    }

    fn too_large_advice(&self) -> String {
        self.payloads.advice()
    }

    fn create(&self, new: NewExecution) -> StoreFuture<'_, Created> {
        Box::pin(async move {
            let id = new.meta.id.clone();
            let body = String::from_utf8(cairn_core::entry::encode(&new.started))
                .expect("entries are JSON");
            self.check_size(&id, || "the input (journal entry 0)".into(), body.len())?;
            self.ensure_shards().await?;
            let entry0 = self
                .entry_item(
                    &id,
                    1,
                    0,
                    || "the input (journal entry 0)".into(),
                    body.clone(),
                )
                .await?;
            // Entry 0, then the meta, each one conditional put: no
            // transaction (which costs twice the write units, the status
            // index's too). A load needs the meta, so an entry 0 alone is
            // no execution yet; a start stopped between the two is taken
            // over by the next start of the same workflow and input.
            use aws_sdk_dynamodb::operation::put_item::PutItemError;
            use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld;
            let r = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(entry0))
                .condition_expression("attribute_not_exists(pk)")
                .return_values_on_condition_check_failure(AllOld)
                .send()
                .await;
            let ours = match r {
                Ok(_) => true,
                Err(e) => match e.as_service_error() {
                    Some(PutItemError::ConditionalCheckFailedException(c)) => {
                        if let Some(existing) = self.get_meta(&id).await? {
                            // Started before (this very start again too).
                            return cairn_core::memory::check_same_start(&existing, &new.meta);
                        } else if is_own_entry(c.item.as_ref(), &body) {
                            true // our put, applied before its reply was lost
                        } else {
                            let mut found = c.item.clone().unwrap_or_default();
                            self.payloads
                                .resolve(&id, || "journal entry 0".into(), &mut found)
                                .await?;
                            let same = Some(&found)
                                .and_then(|i| entry_from_item(&id, 0, i).ok())
                                .is_some_and(|e| match e.event {
                                    cairn_core::Event::Started {
                                        workflow, input, ..
                                    } => {
                                        workflow == new.meta.workflow
                                            && cairn_core::input_hash(input.as_bytes())
                                                == new.meta.input_hash
                                    }
                                    _ => false,
                                });
                            if !same {
                                return Err(StoreError::Conflict {
                                    id: id.clone(),
                                    reason: "the execution's items exist without its meta (another start of this id, with another workflow or input, stopped before its meta): start it with that workflow and input".into(),
                                });
                            }
                            false // its entry 0 stands; the meta follows
                        }
                    }
                    _ => return Err(sdk_error(&self.table, e)),
                },
            };
            let r = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(meta_item(&new.meta, self.index_shards)))
                .condition_expression("attribute_not_exists(pk)")
                .return_values_on_condition_check_failure(AllOld)
                .send()
                .await;
            match r {
                Ok(_) => {}
                Err(e) => match e.as_service_error() {
                    Some(PutItemError::ConditionalCheckFailedException(c)) => {
                        let found = c
                            .item
                            .as_ref()
                            .map(|i| meta_from_item(&id, i))
                            .transpose()?;
                        let mine = found.as_ref().is_some_and(|m| {
                            m.created_at == new.meta.created_at
                                && m.workflow == new.meta.workflow
                                && m.input_hash == new.meta.input_hash
                        });
                        if !mine {
                            let existing = match found {
                                Some(m) => m,
                                None => self
                                    .get_meta(&id)
                                    .await?
                                    .ok_or_else(|| StoreError::NotFound(id.clone()))?,
                            };
                            return cairn_core::memory::check_same_start(&existing, &new.meta);
                        }
                        // Our meta, applied before its reply was lost.
                    }
                    _ => return Err(sdk_error(&self.table, e)),
                },
            }
            self.note_run(&id, 1); // entry 0 is run 1's
            if ours {
                self.journals.put(
                    &id,
                    1,
                    new.meta.created_at,
                    std::slice::from_ref(&new.started),
                );
            }
            Ok(Created::New)
        })
    }

    fn load<'a>(&'a self, id: &'a ExecutionId) -> StoreFuture<'a, Execution> {
        Box::pin(async move {
            if let Some(ex) = self.load_after_cached(id).await? {
                return self.loaded(id, ex).await;
            }
            let floor = self.run_hint(id).map(|run| (run, 0));
            let ex = match self.load_from(id, floor).await {
                Ok(Some(ex)) => ex,
                Ok(None) => {
                    self.forget_run(id);
                    self.load_from(id, None)
                        .await?
                        .ok_or_else(|| StoreError::NotFound(id.clone()))?
                }
                Err(e) => {
                    if matches!(e, StoreError::NotFound(_)) {
                        self.forget_run(id);
                    }
                    return Err(e);
                }
            };
            self.loaded(id, ex).await
        })
    }

    fn meta<'a>(&'a self, id: &'a ExecutionId) -> StoreFuture<'a, ExecutionMeta> {
        Box::pin(async move {
            self.get_meta(id)
                .await?
                .ok_or_else(|| StoreError::NotFound(id.clone()))
        })
    }

    fn append<'a>(&'a self, id: &'a ExecutionId, append: Append) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let index = append.entry.index;
            let body = String::from_utf8(cairn_core::entry::encode(&append.entry))
                .expect("entries are JSON");
            self.check_size(id, || format!("journal entry {index}"), body.len())?;
            let entry = self
                .entry_item(
                    id,
                    append.run,
                    index,
                    || format!("journal entry {index}"),
                    body.clone(),
                )
                .await?;
            let finish = append.entry.event.final_status();
            let at = append.entry.at;
            if append.consume.is_none() {
                // The common step: one conditional put. A final entry is
                // then followed by the meta's status, conditional on the
                // run: no transaction (which would cost twice the write
                // units, indexes included). Stopped in between, the next
                // load finishes the meta (see `load_from`).
                let r = self
                    .client
                    .put_item()
                    .table_name(&self.table)
                    .set_item(Some(entry))
                    .condition_expression("attribute_not_exists(pk)")
                    .return_values_on_condition_check_failure(
                        aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld,
                    )
                    .send()
                    .await;
                use aws_sdk_dynamodb::operation::put_item::PutItemError;
                match r {
                    Ok(_) => {}
                    Err(e) => match e.as_service_error() {
                        Some(PutItemError::ConditionalCheckFailedException(c)) => {
                            if !is_own_entry(c.item.as_ref(), &body) {
                                return Err(StoreError::Conflict {
                                    id: id.clone(),
                                    reason: format!("journal entry {index} already exists"),
                                });
                            }
                        }
                        _ => return Err(sdk_error(&self.table, e)),
                    },
                }
                self.journals.push(id, append.run, &append.entry);
                return match finish {
                    None => Ok(()),
                    Some(status) => {
                        self.finish_meta(id, append.run, status, at, append.hold_until_heard)
                            .await
                    }
                };
            }
            let mut items = vec![put(&self.table, entry, "attribute_not_exists(pk)")];
            if let Some(item) = &append.consume {
                let expires = at.as_millis() / 1000 + CONSUMED_RETENTION_SECS;
                items.push(
                    TransactWriteItem::builder()
                        .update(
                            Update::builder()
                                .table_name(&self.table)
                                .key("pk", s(exec_pk(id)))
                                .key("sk", s(format!("in#{item}")))
                                .update_expression(
                                    "SET consumed_at = :at, consumed_by = :idx, expires_at = :exp",
                                )
                                .condition_expression(
                                    "attribute_exists(pk) AND attribute_not_exists(consumed_at)",
                                )
                                .expression_attribute_values(":at", n(at.as_millis()))
                                .expression_attribute_values(":idx", n(u64::from(index)))
                                .expression_attribute_values(":exp", n(expires))
                                .build()
                                .expect("update has table, key and expression"),
                        )
                        .build(),
                );
            }
            if let Some(status) = finish {
                self.ensure_shards().await?;
                items.push(
                    TransactWriteItem::builder()
                        .update(
                            self.finish_update(
                                Update::builder()
                                    .table_name(&self.table)
                                    .key("pk", s(exec_pk(id)))
                                    .key("sk", s("meta")),
                                id,
                                status,
                                append.hold_until_heard,
                            )
                            .condition_expression("attribute_exists(pk) AND #run = :run")
                            .expression_attribute_names("#st", "status")
                            .expression_attribute_names("#run", "run")
                            .expression_attribute_values(":at", n(at.as_millis()))
                            .expression_attribute_values(":run", n(u64::from(append.run)))
                            .build()
                            .expect("update has table, key and expression"),
                        )
                        .build(),
                );
            }
            match self.transact(items).await {
                Ok(()) => {
                    self.journals.push(id, append.run, &append.entry);
                    Ok(())
                }
                // Our own entry: this very transaction was applied before.
                Err(TransactError::Cancelled(_, found))
                    if is_own_entry(found.first().and_then(Option::as_ref), &body) =>
                {
                    self.journals.push(id, append.run, &append.entry);
                    Ok(())
                }
                Err(TransactError::Cancelled(reasons, _)) => {
                    let what =
                        if reasons.first().map(String::as_str) == Some("ConditionalCheckFailed") {
                            format!("journal entry {index} already exists")
                        } else {
                            format!(
                                "inbox item {} was already consumed",
                                append.consume.as_deref().unwrap_or("?")
                            )
                        };
                    Err(self.explain(id, &what).await)
                }
                Err(TransactError::Other(e)) => Err(e),
            }
        })
    }

    fn suspend<'a>(&'a self, id: &'a ExecutionId, sus: Suspend) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.ensure_shards().await?;
            let mut update = Update::builder()
                .table_name(&self.table)
                .key("pk", s(exec_pk(id)))
                .key("sk", s("meta"))
                .condition_expression(
                    "inbox_version = :v AND #run = :run AND (#st = :running OR #st = :waiting)",
                )
                .expression_attribute_names("#st", "status")
                .expression_attribute_names("#run", "run")
                .expression_attribute_values(":run", n(u64::from(sus.run)))
                .expression_attribute_values(":v", n(sus.inbox_version))
                .expression_attribute_values(":running", s("running"))
                .expression_attribute_values(":waiting", s("waiting"))
                .expression_attribute_values(":on", s(&sus.waiting_on))
                .expression_attribute_values(":at", n(sus.at.as_millis()))
                .expression_attribute_values(":ss", self.status_key_of(id, Status::Waiting));
            update = match sus.wake_at {
                Some(t) => update
                    .update_expression("SET #st = :waiting, status_shard = :ss, waiting_on = :on, updated_at = :at, wake_at = :wake, timer_at = :wake, wake_bucket = :b REMOVE lease_owner, lease_until")
                    .expression_attribute_values(":wake", n(t.as_millis()))
                    .expression_attribute_values(":b", self.wake_key_of(id)),
                None => update.update_expression("SET #st = :waiting, status_shard = :ss, waiting_on = :on, updated_at = :at, timer_at = :none REMOVE wake_at, wake_bucket, lease_owner, lease_until").expression_attribute_values(":none", n(0)),
            };
            let check = ConditionCheck::builder()
                .table_name(&self.table)
                .key("pk", s(exec_pk(id)))
                .key("sk", s(entry_sk(sus.run, sus.journal_len)))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .expect("condition check has table, key and expression");
            let items = vec![
                TransactWriteItem::builder()
                    .update(
                        update
                            .build()
                            .expect("update has table, key and expression"),
                    )
                    .build(),
                TransactWriteItem::builder().condition_check(check).build(),
            ];
            match self.transact(items).await {
                Ok(()) => Ok(()),
                Err(TransactError::Cancelled(reasons, _)) => {
                    let reason = if reasons.get(1).map(String::as_str)
                        == Some("ConditionalCheckFailed")
                    {
                        "the journal grew since it was loaded"
                    } else {
                        "the inbox changed since it was loaded, or the execution is no longer running"
                    };
                    match self.explain(id, reason).await {
                        StoreError::Finished { status, .. } => Err(StoreError::Conflict {
                            id: id.clone(),
                            reason: format!("the execution is {status}"),
                        }),
                        e => Err(e),
                    }
                }
                Err(TransactError::Other(e)) => Err(e),
            }
        })
    }

    fn park<'a>(
        &'a self,
        id: &'a ExecutionId,
        info: ParkInfo,
        at: Timestamp,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.ensure_shards().await?;
            let r = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(exec_pk(id)))
                .key("sk", s("meta"))
                .expression_attribute_values(":ss", self.status_key_of(id, Status::Parked))
                .update_expression("SET #st = :parked, status_shard = :ss, parked = :info, updated_at = :at REMOVE wake_at, wake_bucket, timer_at, lease_owner, lease_until")
                .condition_expression("attribute_exists(pk) AND NOT (#st IN (:c, :f, :x))")
                .expression_attribute_names("#st", "status")
                .expression_attribute_values(":parked", s("parked"))
                .expression_attribute_values(":info", s(serde_json::to_string(&info).expect("park info serializes")))
                .expression_attribute_values(":at", n(at.as_millis()))
                .expression_attribute_values(":c", s("completed"))
                .expression_attribute_values(":f", s("failed"))
                .expression_attribute_values(":x", s("cancelled"))
                .send()
                .await;
            match r {
                Ok(_) => Ok(()),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
                {
                    Err(self.explain(id, "cannot park").await)
                }
                Err(e) => Err(sdk_error(&self.table, e)),
            }
        })
    }

    fn unpark<'a>(&'a self, id: &'a ExecutionId) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.ensure_shards().await?;
            let r = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(exec_pk(id)))
                .key("sk", s("meta"))
                .expression_attribute_values(":ss", self.status_key_of(id, Status::Running))
                .update_expression("SET #st = :running, status_shard = :ss REMOVE parked")
                .condition_expression("#st = :parked")
                .expression_attribute_names("#st", "status")
                .expression_attribute_values(":running", s("running"))
                .expression_attribute_values(":parked", s("parked"))
                .send()
                .await;
            match r {
                Ok(_) => Ok(()),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
                {
                    // Not parked: fine, unless it does not exist.
                    self.get_meta(id)
                        .await?
                        .map(|_| ())
                        .ok_or_else(|| StoreError::NotFound(id.clone()))
                }
                Err(e) => Err(sdk_error(&self.table, e)),
            }
        })
    }

    fn deliver<'a>(
        &'a self,
        id: &'a ExecutionId,
        message: InboxMessage,
        at: Timestamp,
    ) -> StoreFuture<'a, InboxItem> {
        Box::pin(async move {
            let ulid = self.next_ulid()?;
            match self
                .insert_inbox(id, ulid.clone(), message.clone(), at)
                .await?
            {
                Some(item) => Ok(item),
                // The id is new to this call: an item under it can only be
                // this call's own, written by an attempt whose reply was
                // lost before the SDK retried. Delivered once: say so.
                None => Ok(InboxItem {
                    id: ulid,
                    at,
                    message,
                }),
            }
        })
    }

    fn continue_as_new<'a>(&'a self, id: &'a ExecutionId, c: ContinueAsNew) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let closing =
                String::from_utf8(cairn_core::entry::encode(&c.closing)).expect("entries are JSON");
            let next =
                String::from_utf8(cairn_core::entry::encode(&c.next)).expect("entries are JSON");
            self.check_size(
                id,
                || format!("journal entry {} of run {}", c.closing.index, c.run),
                closing.len(),
            )?;
            self.check_size(id, || format!("the input of run {}", c.run + 1), next.len())?;
            self.ensure_shards().await?;
            let closing_item = self
                .entry_item(
                    id,
                    c.run,
                    c.closing.index,
                    || format!("journal entry {} of run {}", c.closing.index, c.run),
                    closing.clone(),
                )
                .await?;
            let next_item = self
                .entry_item(
                    id,
                    c.run + 1,
                    0,
                    || format!("the input of run {}", c.run + 1),
                    next,
                )
                .await?;
            let items = vec![
                put(&self.table, closing_item, "attribute_not_exists(pk)"),
                put(&self.table, next_item, "attribute_not_exists(pk)"),
                TransactWriteItem::builder()
                    .update(
                        Update::builder()
                            .table_name(&self.table)
                            .key("pk", s(exec_pk(id)))
                            .key("sk", s("meta"))
                            .update_expression("SET #run = :next, #st = :running, status_shard = :ss, updated_at = :at, timer_at = :none REMOVE waiting_on")
                            .expression_attribute_values(":ss", self.status_key_of(id, Status::Running))
                            .expression_attribute_values(":none", n(0))
                            .condition_expression("#run = :run AND (#st = :running OR #st = :waiting)")
                            .expression_attribute_names("#st", "status")
                            .expression_attribute_names("#run", "run")
                            .expression_attribute_values(":run", n(u64::from(c.run)))
                            .expression_attribute_values(":next", n(u64::from(c.run + 1)))
                            .expression_attribute_values(":running", s("running"))
                            .expression_attribute_values(":waiting", s("waiting"))
                            .expression_attribute_values(":at", n(c.next.at.as_millis()))
                            .build()
                            .expect("update has table, key and expression"),
                    )
                    .build(),
            ];
            self.journals.forget(id);
            match self.transact(items).await {
                Ok(()) => {
                    self.note_run(id, c.run + 1);
                    Ok(())
                }
                // Our own closing entry: this continue-as-new was applied before.
                Err(TransactError::Cancelled(_, found))
                    if is_own_entry(found.first().and_then(Option::as_ref), &closing) =>
                {
                    self.note_run(id, c.run + 1);
                    Ok(())
                }
                Err(TransactError::Cancelled(..)) => Err(self
                    .explain(id, &format!("run {} has moved on", c.run))
                    .await),
                Err(TransactError::Other(e)) => Err(e),
            }
        })
    }

    fn load_run<'a>(&'a self, id: &'a ExecutionId, run: u32) -> StoreFuture<'a, Vec<Entry>> {
        Box::pin(async move {
            self.get_meta(id)
                .await?
                .ok_or_else(|| StoreError::NotFound(id.clone()))?;
            let mut out = Vec::new();
            let mut start = None;
            loop {
                let page = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("pk = :pk AND begins_with(sk, :run)")
                    .expression_attribute_values(":pk", s(exec_pk(id)))
                    .expression_attribute_values(":run", s(format!("h#{run:06}#")))
                    .consistent_read(true)
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(|e| sdk_error(&self.table, e))?;
                for mut item in page.items.unwrap_or_default() {
                    if let Some((_, index)) =
                        parse_entry_sk(&get_s(&item, "sk").unwrap_or_default())
                    {
                        self.payloads
                            .resolve(
                                id,
                                || format!("journal entry {index} of run {run}"),
                                &mut item,
                            )
                            .await?;
                        out.push(entry_from_item(id, index, &item)?);
                    }
                }
                start = page.last_evaluated_key;
                if start.is_none() {
                    break;
                }
            }
            Ok(out)
        })
    }

    fn deliver_once<'a>(
        &'a self,
        id: &'a ExecutionId,
        key: &'a str,
        message: InboxMessage,
        at: Timestamp,
    ) -> StoreFuture<'a, Option<InboxItem>> {
        Box::pin(self.insert_inbox(id, key.to_string(), message, at))
    }

    fn settle<'a>(&'a self, id: &'a ExecutionId) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let r = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(exec_pk(id)))
                .key("sk", s("meta"))
                .update_expression("REMOVE wake_at, wake_bucket")
                .condition_expression("attribute_exists(wake_at) AND #st IN (:c, :f, :x)")
                .expression_attribute_names("#st", "status")
                .expression_attribute_values(":c", s("completed"))
                .expression_attribute_values(":f", s("failed"))
                .expression_attribute_values(":x", s("cancelled"))
                .send()
                .await;
            match r {
                Ok(_) => Ok(()),
                // Not holding (settled before, or not finished): nothing to
                // do, unless there is no such execution.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
                {
                    match self.get_meta(id).await? {
                        Some(_) => Ok(()),
                        None => Err(StoreError::NotFound(id.clone())),
                    }
                }
                Err(e) => Err(sdk_error(&self.table, e)),
            }
        })
    }

    /// Scatter-gather over `by-status-shard`: for each status asked and
    /// each shard any store wrote to, the newest first, at most `limit`
    /// (paged until the filter kept that many); merged newest first.
    fn list(&self, filter: ListFilter) -> StoreFuture<'_, Vec<ExecutionMeta>> {
        Box::pin(async move {
            let statuses = if filter.status.is_empty() {
                ALL_STATUSES.to_vec()
            } else {
                filter.status.clone()
            };
            let limit = if filter.limit == 0 {
                usize::MAX
            } else {
                filter.limit
            };
            let shards = self.shards_to_read().await?;
            let keys: Vec<String> = statuses
                .iter()
                .flat_map(|st| (0..shards).map(move |k| shards::status_key(*st, k)))
                .collect();
            let mut values = Vec::new();
            if let Some(w) = &filter.workflow {
                values.push((":w", s(w)));
            }
            let q = shards::IndexQuery {
                index: table::STATUS_INDEX,
                key_attr: "status_shard",
                condition: "#k = :k",
                values,
                filter: filter.workflow.as_ref().map(|_| "workflow = :w"),
                forward: false,
            };
            let mut out = Vec::new();
            for item in self.scatter(q, keys, limit).await? {
                let pk = get_s(&item, "pk").unwrap_or_default();
                let Some(id) = pk
                    .strip_prefix("exec#")
                    .and_then(|i| ExecutionId::new(i).ok())
                else {
                    continue;
                };
                // Listed metas lack what the index does not project: the
                // lease and the due time (see `table::STATUS_PROJECTION`).
                out.push(meta_from_item(&id, &item)?);
            }
            out.sort_by(|a, b| {
                b.updated_at
                    .cmp(&a.updated_at)
                    .then_with(|| a.id.cmp(&b.id))
            });
            out.truncate(limit);
            Ok(out)
        })
    }

    /// Scatter-gather over `by-wake`: every shard any store wrote to, and
    /// contract 1's single key; due first, at most `limit` of each, merged.
    fn due(&self, now: Timestamp, limit: usize) -> StoreFuture<'_, Vec<(ExecutionId, Timestamp)>> {
        Box::pin(async move {
            let shards = self.shards_to_read().await?;
            let keys: Vec<String> = std::iter::once(shards::LEGACY_WAKE_BUCKET.to_owned())
                .chain((0..shards).map(shards::wake_key))
                .collect();
            let q = shards::IndexQuery {
                index: "by-wake",
                key_attr: "wake_bucket",
                condition: "#k = :k AND wake_at <= :now",
                values: vec![(":now", n(now.as_millis().min(i64::MAX as u64)))],
                filter: None,
                forward: true,
            };
            let want = limit;
            let mut out = Vec::new();
            for item in self.scatter(q, keys, want).await? {
                let pk = get_s(&item, "pk").unwrap_or_default();
                let (Some(id), Some(at)) = (
                    pk.strip_prefix("exec#")
                        .and_then(|i| ExecutionId::new(i).ok()),
                    get_n(&item, "wake_at"),
                ) else {
                    continue;
                };
                out.push((id, Timestamp::from_millis(at)));
            }
            out.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
            out.truncate(want);
            Ok(out)
        })
    }

    fn put_component<'a>(
        &'a self,
        hash: &'a ComponentHash,
        bytes: &'a [u8],
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            if self.get_component_meta(hash).await?.is_some() {
                return Ok(());
            }
            let chunks: Vec<&[u8]> = bytes.chunks(CHUNK_BYTES).collect();
            for (i, chunk) in chunks.iter().enumerate() {
                self.client
                    .put_item()
                    .table_name(&self.table)
                    .item("pk", s(format!("component#{hash}")))
                    .item("sk", s(format!("c#{i:04}")))
                    .item(
                        "bytes",
                        AttributeValue::B(aws_smithy_types::Blob::new(chunk.to_vec())),
                    )
                    .send()
                    .await
                    .map_err(|e| sdk_error(&self.table, e))?;
            }
            // The meta item last: a component is visible only once whole.
            self.client
                .put_item()
                .table_name(&self.table)
                .item("pk", s(format!("component#{hash}")))
                .item("sk", s("meta"))
                .item("chunks", n(chunks.len() as u64))
                .item("size", n(bytes.len() as u64))
                .send()
                .await
                .map_err(|e| sdk_error(&self.table, e))?;
            Ok(())
        })
    }

    fn get_component<'a>(&'a self, hash: &'a ComponentHash) -> StoreFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            let mut chunks: Vec<(String, Vec<u8>)> = Vec::new();
            let mut meta: Option<(u64, u64)> = None;
            let mut start = None;
            loop {
                let page = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("pk = :pk")
                    .expression_attribute_values(":pk", s(format!("component#{hash}")))
                    .consistent_read(true)
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(|e| sdk_error(&self.table, e))?;
                for item in page.items.unwrap_or_default() {
                    let sk = get_s(&item, "sk").unwrap_or_default();
                    if sk == "meta" {
                        meta = Some((
                            get_n(&item, "chunks").unwrap_or(0),
                            get_n(&item, "size").unwrap_or(0),
                        ));
                    } else if let Some(AttributeValue::B(b)) = item.get("bytes") {
                        chunks.push((sk, b.as_ref().to_vec()));
                    }
                }
                start = page.last_evaluated_key;
                if start.is_none() {
                    break;
                }
            }
            let Some((count, size)) = meta else {
                return Ok(None);
            };
            chunks.sort_by(|a, b| a.0.cmp(&b.0));
            let bytes: Vec<u8> = chunks
                .into_iter()
                .take(count as usize)
                .flat_map(|(_, b)| b)
                .collect();
            if bytes.len() as u64 != size {
                return Err(StoreError::Misconfigured(format!(
                    "component {hash} is incomplete in table {} ({} of {size} bytes)",
                    self.table,
                    bytes.len()
                )));
            }
            Ok(Some(bytes))
        })
    }

    fn set_workflow_component<'a>(
        &'a self,
        name: &'a str,
        hash: &'a ComponentHash,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            // The canonical pointer first (what `list_workflows` reads),
            // then the copies starts read (see `workflow_component`): once
            // this returns, every start follows the new pointer.
            let item = |pk: String| {
                HashMap::from([
                    ("pk".to_owned(), s(pk)),
                    ("sk".to_owned(), s("meta")),
                    ("component".to_owned(), s(hash.as_str())),
                ])
            };
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item(format!("workflow#{name}"))))
                .send()
                .await
                .map_err(|e| sdk_error(&self.table, e))?;
            // The copies in one BatchWriteItem (at most 25 puts), sent
            // again with what DynamoDB left unprocessed.
            let mut writes: Vec<aws_sdk_dynamodb::types::WriteRequest> = (0..POINTER_REPLICAS)
                .map(|k| {
                    aws_sdk_dynamodb::types::WriteRequest::builder()
                        .put_request(
                            aws_sdk_dynamodb::types::PutRequest::builder()
                                .set_item(Some(item(format!("wfcopy#{k}#{name}"))))
                                .build()
                                .expect("put request has an item"),
                        )
                        .build()
                })
                .collect();
            for attempt in 0..RETRY_ATTEMPTS * 2 {
                if writes.is_empty() {
                    return Ok(());
                }
                if attempt > 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(50 << attempt.min(5)))
                        .await;
                }
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, writes)
                    .send()
                    .await
                    .map_err(|e| sdk_error(&self.table, e))?;
                writes = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(&self.table))
                    .unwrap_or_default();
            }
            Err(StoreError::Unavailable(format!(
                "DynamoDB left {} copies of workflow {name}'s pointer unwritten on table {}: register it again",
                writes.len(),
                self.table
            )))
        })
    }

    fn acquire_lease<'a>(
        &'a self,
        id: &'a ExecutionId,
        owner: &'a str,
        until: Timestamp,
        now: Timestamp,
    ) -> StoreFuture<'a, ()> {
        Box::pin(self.set_lease(id, owner, until, Some(now)))
    }

    fn renew_lease<'a>(
        &'a self,
        id: &'a ExecutionId,
        owner: &'a str,
        until: Timestamp,
    ) -> StoreFuture<'a, ()> {
        Box::pin(self.set_lease(id, owner, until, None))
    }

    fn release_lease<'a>(
        &'a self,
        id: &'a ExecutionId,
        owner: &'a str,
        wake_at: Option<Timestamp>,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            if wake_at.is_some() {
                self.ensure_shards().await?;
            }
            let mut update = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(exec_pk(id)))
                .key("sk", s("meta"))
                .condition_expression("lease_owner = :o")
                .expression_attribute_values(":o", s(owner));
            update = match wake_at {
                Some(t) => update
                    .update_expression(
                        "SET wake_at = :w, wake_bucket = :b REMOVE lease_owner, lease_until",
                    )
                    .expression_attribute_values(":w", n(t.as_millis()))
                    .expression_attribute_values(":b", self.wake_key_of(id)),
                None => update.update_expression("REMOVE lease_owner, lease_until"),
            };
            match update.send().await {
                Ok(_) => Ok(()),
                // Not ours (any more): nothing to release.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
                {
                    Ok(())
                }
                Err(e) => Err(sdk_error(&self.table, e)),
            }
        })
    }

    /// Every start reads its workflow's pointer: one key read by every
    /// start would be hot (10,000 starts/s are 10,000 read units/s; a key
    /// takes 3,000), so the pointer has [`POINTER_REPLICAS`] copies
    /// (`wfcopy#<k>#<name>`, written by `set_workflow_component` after the
    /// canonical `workflow#<name>`) and each read takes the next copy. A
    /// table whose pointer predates the copies is read at `workflow#`.
    fn workflow_component<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<ComponentHash>> {
        Box::pin(async move {
            let k = self
                .pointer_reads
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                % POINTER_REPLICAS;
            let mut found = None;
            for pk in [format!("wfcopy#{k}#{name}"), format!("workflow#{name}")] {
                let out = self
                    .client
                    .get_item()
                    .table_name(&self.table)
                    .key("pk", s(pk))
                    .key("sk", s("meta"))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(|e| sdk_error(&self.table, e))?;
                if let Some(item) = out.item {
                    found = get_s(&item, "component");
                    break;
                }
            }
            found
                .map(|h| ComponentHash::parse(&h).map_err(StoreError::Misconfigured))
                .transpose()
        })
    }

    /// One paged `Scan` of the whole table, filtered to the `meta` items of
    /// `component#` partitions and projecting the key and `size`: every item
    /// of the table is read (and paid for) once. An operator tool
    /// (`cairn components`), not a hot path.
    fn list_components(&self) -> StoreFuture<'_, Vec<(ComponentHash, u64)>> {
        Box::pin(async move {
            let mut out = Vec::new();
            for item in self.scan_registry("component#").await? {
                let pk = get_s(&item, "pk").unwrap_or_default();
                let Some(hash) = pk.strip_prefix("component#") else {
                    continue;
                };
                let hash = ComponentHash::parse(hash).map_err(StoreError::Misconfigured)?;
                out.push((hash, get_n(&item, "size").unwrap_or(0)));
            }
            out.sort();
            Ok(out)
        })
    }

    /// Like [`DynamoStore::list_components`] (one scan of the whole table),
    /// for the `meta` items of `workflow#` partitions.
    fn list_workflows(&self) -> StoreFuture<'_, Vec<(String, ComponentHash)>> {
        Box::pin(async move {
            let mut out = Vec::new();
            for item in self.scan_registry("workflow#").await? {
                let pk = get_s(&item, "pk").unwrap_or_default();
                let (Some(name), Some(hash)) =
                    (pk.strip_prefix("workflow#"), get_s(&item, "component"))
                else {
                    continue;
                };
                let hash = ComponentHash::parse(&hash).map_err(StoreError::Misconfigured)?;
                out.push((name.to_owned(), hash));
            }
            out.sort();
            Ok(out)
        })
    }

    /// Deletes the `meta` item first (the component is no longer visible:
    /// `get_component` finds nothing), then every `c#` chunk. Interrupted
    /// in between, it leaves chunks nothing claims, never a meta whose
    /// bytes are gone; deleting again removes the rest.
    fn delete_component<'a>(&'a self, hash: &'a ComponentHash) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let pk = format!("component#{hash}");
            // Read first rather than ask the delete for the old item: a
            // delete whose reply is lost is retried by the SDK, and the
            // retry would find nothing and answer "was not stored".
            let existed = self.get_component_meta(hash).await?.is_some();
            self.client
                .delete_item()
                .table_name(&self.table)
                .key("pk", s(&pk))
                .key("sk", s("meta"))
                .send()
                .await
                .map_err(|e| sdk_error(&self.table, e))?;
            let mut start = None;
            loop {
                let page = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("pk = :pk AND begins_with(sk, :c)")
                    .expression_attribute_values(":pk", s(&pk))
                    .expression_attribute_values(":c", s("c#"))
                    .projection_expression("pk, sk")
                    .consistent_read(true)
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(|e| sdk_error(&self.table, e))?;
                for item in page.items.unwrap_or_default() {
                    self.client
                        .delete_item()
                        .table_name(&self.table)
                        .set_key(Some(item))
                        .send()
                        .await
                        .map_err(|e| sdk_error(&self.table, e))?;
                }
                start = page.last_evaluated_key;
                if start.is_none() {
                    break;
                }
            }
            Ok(existed)
        })
    }
}

impl DynamoStore {
    /// A load that reads only the entries after the journal this process
    /// keeps for `id` (see [`journal_cache`]); `None` when it keeps none,
    /// or what came back does not continue it (then a whole load follows).
    async fn load_after_cached(&self, id: &ExecutionId) -> Result<Option<Execution>, StoreError> {
        let Some((run, created_at, len)) = self.journals.prefix(id) else {
            return Ok(None);
        };
        let mut ex = match self.load_from(id, Some((run, len))).await {
            Ok(Some(ex)) => ex,
            Ok(None) => {
                self.journals.forget(id);
                return Ok(None);
            }
            Err(e) => {
                self.journals.forget(id);
                return Err(e);
            }
        };
        let first = ex.journal.first().map(|e| e.index);
        if ex.meta.created_at != created_at {
            // Not the execution the cache knew.
        } else if ex.meta.run == run && first.is_none_or(|i| i == len) {
            if let Some(mut cached) = self.journals.entries(id, run, len) {
                cached.append(&mut ex.journal);
                ex.journal = cached;
                return Ok(Some(ex));
            }
        } else if ex.meta.run > run && first == Some(0) {
            // Continued as new elsewhere: the new run is above the bound
            // and came back whole.
            return Ok(Some(ex));
        }
        self.journals.forget(id);
        Ok(None)
    }

    /// After a load: finishes a half-written final entry (see `append`),
    /// remembers the run and keeps the journal.
    async fn loaded(&self, id: &ExecutionId, mut ex: Execution) -> Result<Execution, StoreError> {
        // A final entry whose meta update did not happen (the writer
        // stopped between the two): finish it now.
        if let Some(last) = ex.journal.last()
            && let Some(status) = last.event.final_status()
            && !ex.meta.status.is_terminal()
        {
            let at = last.at;
            // A child's parent may not have heard: due at once, so that
            // whoever drives due executions tells it.
            let hold = ex
                .journal
                .first()
                .and_then(|e| match &e.event {
                    cairn_core::Event::Started { parent, .. } => parent.as_ref(),
                    _ => None,
                })
                .map(|_| at);
            self.finish_meta(id, ex.meta.run, status, at, hold).await?;
            let m = &mut ex.meta;
            m.status = status;
            m.updated_at = at;
            m.due_at = hold;
            m.wake_at = None;
            m.waiting_on = None;
            m.lease = None;
        }
        // The meta read says the run: a remembered one ahead of it (an
        // execution made again under the same id) goes.
        self.forget_run(id);
        self.note_run(id, ex.meta.run);
        self.journals
            .put(id, ex.meta.run, ex.meta.created_at, &ex.journal);
        Ok(ex)
    }

    /// The meta update of a final entry (`#st` is `status`): the status
    /// and its index key; the due time removed, or set to the hold (see
    /// `Append::hold_until_heard`), indexed like a wake; no timer, no
    /// lease.
    fn finish_expression(
        &self,
        id: &ExecutionId,
        status: Status,
        hold: Option<Timestamp>,
    ) -> (&'static str, Vec<(&'static str, AttributeValue)>) {
        let mut values = vec![
            (":st", s(status.as_str())),
            (":ss", self.status_key_of(id, status)),
        ];
        let expression = match hold {
            Some(t) => {
                values.push((":hold", n(t.as_millis())));
                values.push((":b", self.wake_key_of(id)));
                values.push((":none", n(0)));
                "SET #st = :st, status_shard = :ss, updated_at = :at, wake_at = :hold, wake_bucket = :b, timer_at = :none REMOVE waiting_on, lease_owner, lease_until"
            }
            None => {
                "SET #st = :st, status_shard = :ss, updated_at = :at REMOVE wake_at, wake_bucket, timer_at, waiting_on, lease_owner, lease_until"
            }
        };
        (expression, values)
    }

    /// [`DynamoStore::finish_expression`] on a transaction's update.
    fn finish_update(
        &self,
        mut update: aws_sdk_dynamodb::types::builders::UpdateBuilder,
        id: &ExecutionId,
        status: Status,
        hold: Option<Timestamp>,
    ) -> aws_sdk_dynamodb::types::builders::UpdateBuilder {
        let (expression, values) = self.finish_expression(id, status, hold);
        update = update.update_expression(expression);
        for (k, v) in values {
            update = update.expression_attribute_values(k, v);
        }
        update
    }

    /// Sets the meta's final `status` after run `run`'s final entry was
    /// written: one conditional update (the run is `run`, the status not
    /// final yet). Already final with `status`: done before (a retry, or a
    /// load that finished it).
    async fn finish_meta(
        &self,
        id: &ExecutionId,
        run: u32,
        status: Status,
        at: Timestamp,
        hold: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        self.ensure_shards().await?;
        let (expression, values) = self.finish_expression(id, status, hold);
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(exec_pk(id)))
            .key("sk", s("meta"))
            .update_expression(expression)
            .expression_attribute_names("#st", "status");
        for (k, v) in values {
            update = update.expression_attribute_values(k, v);
        }
        let r = update
            .condition_expression(
                "attribute_exists(pk) AND #run = :run AND NOT (#st IN (:c, :f, :x))",
            )
            .expression_attribute_names("#run", "run")
            .expression_attribute_values(":at", n(at.as_millis()))
            .expression_attribute_values(":run", n(u64::from(run)))
            .expression_attribute_values(":c", s("completed"))
            .expression_attribute_values(":f", s("failed"))
            .expression_attribute_values(":x", s("cancelled"))
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                match self.get_meta(id).await? {
                    Some(m) if m.status == status && m.run == run => Ok(()),
                    None => Err(StoreError::NotFound(id.clone())),
                    Some(m) => Err(StoreError::Conflict {
                        id: id.clone(),
                        reason: format!(
                            "cannot finish run {run} as {status}: the execution is {} in run {}",
                            m.status, m.run
                        ),
                    }),
                }
            }
            Err(e) => Err(sdk_error(&self.table, e)),
        }
    }

    /// Puts an inbox item under `item_id` and bumps the meta's inbox version,
    /// in one transaction. `None`: an item with that id exists already (a
    /// keyed delivery that happened before).
    async fn insert_inbox(
        &self,
        id: &ExecutionId,
        item_id: String,
        message: InboxMessage,
        at: Timestamp,
    ) -> Result<Option<InboxItem>, StoreError> {
        let body = serde_json::to_string(&message).expect("inbox messages serialize");
        self.check_size(id, || message.describe(), body.len())?;
        if self.inbox_grace.is_some() {
            self.ensure_shards().await?;
        }
        let mut item = inbox_item(id, &item_id, at, &message);
        self.payloads
            .body(id, || message.describe(), body)
            .await?
            .set(&mut item);
        let items = vec![
            put(&self.table, item, "attribute_not_exists(pk)"),
            self.bump_inbox_version(id, at),
        ];
        match self.transact(items).await {
            Ok(()) => Ok(Some(InboxItem {
                id: item_id,
                at,
                message,
            })),
            Err(TransactError::Cancelled(reasons, _))
                if reasons.first().map(String::as_str) == Some("ConditionalCheckFailed") =>
            {
                Ok(None)
            }
            Err(TransactError::Cancelled(..)) => Err(self.explain(id, "cannot deliver").await),
            Err(TransactError::Other(e)) => Err(e),
        }
    }

    /// The meta update that goes with every inbox write.
    fn bump_inbox_version(&self, id: &ExecutionId, at: Timestamp) -> TransactWriteItem {
        let mut update = Update::builder()
            .table_name(&self.table)
            .key("pk", s(exec_pk(id)))
            .key("sk", s("meta"));
        update = match self.inbox_grace {
            Some(grace) => update
                .update_expression("SET inbox_version = inbox_version + :one, updated_at = :at, wake_at = :due, wake_bucket = :b")
                .expression_attribute_values(":due", n(at.plus(grace).as_millis()))
                .expression_attribute_values(":b", self.wake_key_of(id)),
            None => update.update_expression("SET inbox_version = inbox_version + :one, updated_at = :at"),
        };
        TransactWriteItem::builder()
            .update(
                update
                    .condition_expression("attribute_exists(pk) AND NOT (#st IN (:c, :f, :x))")
                    .expression_attribute_names("#st", "status")
                    .expression_attribute_values(":one", n(1))
                    .expression_attribute_values(":at", n(at.as_millis()))
                    .expression_attribute_values(":c", s("completed"))
                    .expression_attribute_values(":f", s("failed"))
                    .expression_attribute_values(":x", s("cancelled"))
                    .build()
                    .expect("update has table, key and expression"),
            )
            .build()
    }

    /// One conditional update of the meta's lease (acquire or renew).
    async fn set_lease(
        &self,
        id: &ExecutionId,
        owner: &str,
        until: Timestamp,
        now: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        self.ensure_shards().await?;
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(exec_pk(id)))
            .key("sk", s("meta"))
            .update_expression(
                "SET lease_owner = :o, lease_until = :u, wake_at = :u, wake_bucket = :b",
            )
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":o", s(owner))
            .expression_attribute_values(":u", n(until.as_millis()))
            .expression_attribute_values(":b", self.wake_key_of(id))
            .expression_attribute_values(":c", s("completed"))
            .expression_attribute_values(":f", s("failed"))
            .expression_attribute_values(":x", s("cancelled"))
            .return_values_on_condition_check_failure(
                aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld,
            )
            // The meta as written (no read units: the write reads it
            // anyway): its run bounds the load that follows.
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew);
        update = match now {
            // Acquire: free, expired, or ours.
            Some(now) => update
                .condition_expression("attribute_exists(pk) AND NOT (#st IN (:c, :f, :x)) AND (attribute_not_exists(lease_owner) OR lease_owner = :o OR lease_until <= :now)")
                .expression_attribute_values(":now", n(now.as_millis())),
            // Renew: still ours.
            None => update.condition_expression(
                "attribute_exists(pk) AND NOT (#st IN (:c, :f, :x)) AND lease_owner = :o",
            ),
        };
        match update.send().await {
            Ok(out) => {
                if let Some(run) = out.attributes.as_ref().and_then(|a| get_n(a, "run")) {
                    self.note_run(id, run as u32);
                }
                Ok(())
            }
            Err(e) => {
                let old = e
                    .as_service_error()
                    .and_then(|s| match s {
                        aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(c) => Some(c.item.clone()),
                        _ => None,
                    });
                let Some(old) = old else {
                    return Err(sdk_error(&self.table, e));
                };
                let Some(old) = old else {
                    return Err(StoreError::NotFound(id.clone()));
                };
                let meta = meta_from_item(id, &old)?;
                if meta.status.is_terminal() {
                    return Err(StoreError::Finished {
                        id: id.clone(),
                        status: meta.status,
                    });
                }
                match (now, meta.lease) {
                    (Some(_), Some(l)) => Err(StoreError::Leased {
                        id: id.clone(),
                        owner: l.owner,
                        until: l.until,
                    }),
                    (_, l) => Err(StoreError::Conflict {
                        id: id.clone(),
                        reason: format!(
                            "the lease of {owner} was lost (held now by {})",
                            l.as_ref().map_or("nobody", |l| l.owner.as_str())
                        ),
                    }),
                }
            }
        }
    }

    /// The `meta` items of the partitions whose key starts with `prefix`
    /// (`component#`, `workflow#`): one paged, consistent `Scan` of the
    /// whole table, projecting `pk`, `size` and `component`.
    async fn scan_registry(
        &self,
        prefix: &str,
    ) -> Result<Vec<HashMap<String, AttributeValue>>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("begins_with(#pk, :prefix) AND #sk = :meta")
                .projection_expression("#pk, #size, #component")
                .expression_attribute_names("#pk", "pk")
                .expression_attribute_names("#sk", "sk")
                .expression_attribute_names("#size", "size")
                .expression_attribute_names("#component", "component")
                .expression_attribute_values(":prefix", s(prefix))
                .expression_attribute_values(":meta", s("meta"))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| sdk_error(&self.table, e))?;
            out.extend(page.items.unwrap_or_default());
            start = page.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        Ok(out)
    }

    async fn get_component_meta(&self, hash: &ComponentHash) -> Result<Option<u64>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(format!("component#{hash}")))
            .key("sk", s("meta"))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error(&self.table, e))?;
        Ok(out.item.and_then(|i| get_n(&i, "size")))
    }
}

/// How a transaction failed.
enum TransactError {
    /// A condition failed: the cancellation reason code of each item, and
    /// the item a refused condition found (puts ask for it).
    Cancelled(Vec<String>, Vec<Option<HashMap<String, AttributeValue>>>),
    /// Anything else.
    Other(StoreError),
}

fn transact_error<R>(
    table: &str,
    e: SdkError<aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError, R>,
) -> TransactError
where
    R: std::fmt::Debug,
{
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    if let Some(TransactWriteItemsError::TransactionCanceledException(t)) = e.as_service_error() {
        let reasons: Vec<String> = t
            .cancellation_reasons()
            .iter()
            .map(|r| r.code().unwrap_or("None").to_string())
            .collect();
        if reasons.iter().any(|r| r == "ConditionalCheckFailed") {
            let found = t
                .cancellation_reasons()
                .iter()
                .map(|r| r.item().cloned())
                .collect();
            return TransactError::Cancelled(reasons, found);
        }
        if reasons.iter().any(|r| {
            r == "TransactionConflict"
                || r == "ThrottlingError"
                || r == "ProvisionedThroughputExceeded"
        }) {
            return TransactError::Other(StoreError::Unavailable(format!(
                "DynamoDB cancelled the transaction ({}): retry",
                reasons.join(", ")
            )));
        }
        return TransactError::Other(StoreError::Misconfigured(format!(
            "DynamoDB refused the transaction on table {table}: {}",
            reasons.join(", ")
        )));
    }
    TransactError::Other(sdk_error(table, e))
}

#[cfg(test)]
mod payload_tests;
#[cfg(test)]
mod shard_tests;
#[cfg(test)]
mod tests;
