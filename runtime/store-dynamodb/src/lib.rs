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
//! - **create** is one conditional `PutItem` of the meta holding entry 0
//!   (and the starting driver's lease) when it is small (see [`inline`]);
//!   otherwise entry 0, then the meta, each one conditional `PutItem`, and
//!   an entry 0 without its meta (a start stopped in between) is taken
//!   over by the next start of the same workflow and input;
//! - **append** is one conditional `PutItem` (`attribute_not_exists`): the
//!   first writer of an index wins. A final entry, with the completions the
//!   driver held back for it, is one update of the meta holding them when
//!   they are small and the store holds the lease (see [`inline`]);
//!   otherwise the puts, then the meta's status in one update conditional
//!   on the run (half done, the next load finishes it): a transaction
//!   would cost twice the write units. A signal entry and its inbox item
//!   (marked consumed, expiring after 7 days) change together in one
//!   `TransactWriteItems`;
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
mod inbox;
mod inline;
mod journal;
mod meta;
mod payloads;
mod registry;
mod requests;
mod shards;
mod table;
mod transactions;

pub use payloads::{
    DEFAULT_PAYLOAD_THRESHOLD, MAX_PAYLOAD_BYTES, PAYLOAD_PREFIX, check_payload_threshold,
};
pub use registry::POINTER_REPLICAS;
pub use requests::RequestStats;
pub use shards::{
    CONTRACT_VERSION, DEFAULT_INDEX_SHARDS, MAX_INDEX_SHARDS, check_index_shards, shard_of,
    status_key, wake_key,
};
pub use table::{STATUS_PROJECTION, TableCheck, create_table, describe_table, upgrade_table};

use aws_sdk_dynamodb::Client;
use cairn_core::store::*;
use cairn_core::{ComponentHash, Entry, ExecutionId, Timestamp};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// DynamoDB's item size limit is 400 KB (409,600 bytes); entries are refused
/// a little below it, leaving room for keys and attribute names.
pub const MAX_ITEM_BYTES: usize = 400_000;

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
    /// the entries after them (see [`cairn_core::journal_cache`]).
    journals: Arc<cairn_core::journal_cache::JournalCache>,
    /// Large bodies in S3 (see [`payloads`]).
    payloads: payloads::Payloads,
    /// The leases this store took and still holds, by execution (the
    /// owner): a final entry written inline in the meta is conditional on
    /// it (see [`inline`]).
    held: Arc<Mutex<HashMap<ExecutionId, String>>>,
    /// How often `due` may scan for stale starts (see
    /// [`DynamoStore::with_stale_start_scan_every`]) and when it last did;
    /// `None`: on every call.
    stale_scan: Option<(std::time::Duration, Arc<Mutex<Option<std::time::Instant>>>)>,
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
            held: Arc::default(),
            stale_scan: None,
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

    /// Scans for stale starts at most once per `every` (see
    /// [`cairn_core::Store::due`]): a start takes its lease without a due
    /// time, so finding one whose driver died reads every `running#` key
    /// of the status index and the meta of each running execution. A
    /// sweep that runs now and then (the push host's, `cairn wake`) scans
    /// on every call, the default; a loop that asks for due work every
    /// few seconds (`cairn dev`) scans less often, and finds such a start
    /// within its lease plus `every` (plus how far ahead the caller reads:
    /// `cairn dev` reads 2 s ahead, and a start found due within those 2 s
    /// is pushed only by the next scan). Due timers and retries are read
    /// on every call either way.
    pub fn with_stale_start_scan_every(mut self, every: std::time::Duration) -> Self {
        self.stale_scan = Some((every, Arc::default()));
        self
    }

    /// Whether this `due` call scans for stale starts.
    pub(crate) fn stale_scan_now(&self) -> bool {
        let Some((every, last)) = &self.stale_scan else {
            return true;
        };
        let last = last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        last.is_none_or(|t| t.elapsed() >= *every)
    }

    /// Notes a scan for stale starts that succeeded (one that failed is
    /// tried again at the next call).
    pub(crate) fn stale_scan_done(&self) {
        if let Some((_, last)) = &self.stale_scan {
            *last
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) =
                Some(std::time::Instant::now());
        }
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
}

// Each method runs an inherent method of the module that owns it: `journal`,
// `meta`, `inbox` or `registry`.
impl cairn_core::Store for DynamoStore {
    fn max_item_bytes(&self) -> usize {
        self.payloads.limit()
    }

    fn too_large_advice(&self) -> String {
        self.payloads.advice()
    }

    fn create(&self, new: NewExecution) -> StoreFuture<'_, Created> {
        Box::pin(self.create_execution(new))
    }

    fn load<'a>(&'a self, id: &'a ExecutionId) -> StoreFuture<'a, Execution> {
        Box::pin(self.load_execution(id))
    }

    fn meta<'a>(&'a self, id: &'a ExecutionId) -> StoreFuture<'a, ExecutionMeta> {
        Box::pin(self.read_meta(id))
    }

    fn append<'a>(&'a self, id: &'a ExecutionId, append: Append) -> StoreFuture<'a, ()> {
        Box::pin(self.append_entries(id, Vec::new(), append))
    }

    fn append_final<'a>(
        &'a self,
        id: &'a ExecutionId,
        preceding: Vec<Entry>,
        append: Append,
    ) -> StoreFuture<'a, ()> {
        Box::pin(self.append_entries(id, preceding, append))
    }

    fn suspend<'a>(&'a self, id: &'a ExecutionId, sus: Suspend) -> StoreFuture<'a, ()> {
        Box::pin(self.suspend_execution(id, sus))
    }

    fn park<'a>(
        &'a self,
        id: &'a ExecutionId,
        info: ParkInfo,
        at: Timestamp,
    ) -> StoreFuture<'a, ()> {
        Box::pin(self.park_execution(id, info, at))
    }

    fn unpark<'a>(&'a self, id: &'a ExecutionId) -> StoreFuture<'a, ()> {
        Box::pin(self.unpark_execution(id))
    }

    fn deliver<'a>(
        &'a self,
        id: &'a ExecutionId,
        message: InboxMessage,
        at: Timestamp,
    ) -> StoreFuture<'a, InboxItem> {
        Box::pin(self.deliver_message(id, message, at))
    }

    fn continue_as_new<'a>(&'a self, id: &'a ExecutionId, c: ContinueAsNew) -> StoreFuture<'a, ()> {
        Box::pin(self.continue_run_as_new(id, c))
    }

    fn load_run<'a>(&'a self, id: &'a ExecutionId, run: u32) -> StoreFuture<'a, Vec<Entry>> {
        Box::pin(self.load_run_entries(id, run))
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
        Box::pin(self.settle_execution(id))
    }

    fn list(&self, filter: ListFilter) -> StoreFuture<'_, Vec<ExecutionMeta>> {
        Box::pin(self.list_executions(filter))
    }

    fn due(&self, now: Timestamp, limit: usize) -> StoreFuture<'_, Vec<(ExecutionId, Timestamp)>> {
        Box::pin(self.due_executions(now, limit))
    }

    fn put_component<'a>(
        &'a self,
        hash: &'a ComponentHash,
        bytes: &'a [u8],
    ) -> StoreFuture<'a, ()> {
        Box::pin(self.write_component(hash, bytes))
    }

    fn get_component<'a>(&'a self, hash: &'a ComponentHash) -> StoreFuture<'a, Option<Vec<u8>>> {
        Box::pin(self.read_component(hash))
    }

    fn set_workflow_component<'a>(
        &'a self,
        name: &'a str,
        hash: &'a ComponentHash,
    ) -> StoreFuture<'a, ()> {
        Box::pin(self.write_workflow_pointer(name, hash))
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
        Box::pin(self.clear_lease(id, owner, wake_at))
    }

    fn workflow_component<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<ComponentHash>> {
        Box::pin(self.read_workflow_pointer(name))
    }

    fn list_components(&self) -> StoreFuture<'_, Vec<(ComponentHash, u64)>> {
        Box::pin(self.scan_components())
    }

    fn list_workflows(&self) -> StoreFuture<'_, Vec<(String, ComponentHash)>> {
        Box::pin(self.scan_workflows())
    }

    fn delete_component<'a>(&'a self, hash: &'a ComponentHash) -> StoreFuture<'a, bool> {
        Box::pin(self.remove_component(hash))
    }
}

#[cfg(test)]
mod inline_tests;
#[cfg(test)]
mod payload_tests;
#[cfg(test)]
mod shard_tests;
#[cfg(test)]
mod tests;
