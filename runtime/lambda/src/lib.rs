//! # cairn-lambda: the push host
//!
//! The `bootstrap` of Cairn's Lambda function. Nothing polls: every
//! invocation is a push that advances executions and returns.
//!
//! | event | what happens |
//! |---|---|
//! | direct invoke / Function URL: the client API `{"v": 1, "action": ...}` (`docs/api.md`, `cairn_core::api`) | see below; a failure is answered as `{"error": {"code", "type", "status", "message"}}` (through a Function URL with that HTTP status), never as a function error |
//! | `start` | create the execution (idempotent by id) and advance it until it waits; with `wait_ms`, wait for its end |
//! | `signal`, `cancel` | write the inbox; the table's stream pushes the advance |
//! | `query`, `describe` (alias `status`), `history`, `list` | read; nothing is written |
//! | DynamoDB stream batch (inbox inserts) | advance each execution once; `batchItemFailures` names the records of the ones that failed |
//! | `{"action": "wake", "id", "at"}` from EventBridge Scheduler | a timer is due (or a continuation): advance |
//! | `{"action": "sweep"}` (periodic) | advance due executions whose wake was lost, and interrupted ones |
//!
//! A wake, a sweep or an event of no known shape that fails is a function
//! error (`errorType` `CRN…`), so that the scheduler retries a wake and a
//! misrouted event source shows in the function's Errors.
//!
//! After an advance that suspends on a timer, the host creates a one-time
//! schedule `at(...)` that invokes the function with a wake; a replaced
//! timer's schedule is deleted. Near the invocation's deadline the driver
//! stops at a step boundary and a continuation is scheduled.

mod api;
pub mod events;
mod schedule;

pub use events::{Decoded, HandlerError, Internal};
pub use schedule::{Scheduler, at_expression, schedule_name};

use cairn_core::{ExecutionId, Timestamp};
use cairn_engine::{Advance, AdvanceOptions, Engine, EngineConfig, EngineError, SystemClock};
use cairn_host::{HttpAllowList, Sandbox, SandboxConfig};
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Settings read from the environment at init (see `infra/CONTRACT.md`).
#[derive(Debug, Clone)]
pub struct Settings {
    /// `CAIRN_TABLE`.
    pub table: String,
    /// `CAIRN_COMPONENTS_DIR`.
    pub components_dir: Option<PathBuf>,
    /// `CAIRN_SCHEDULER_GROUP`.
    pub scheduler_group: Option<String>,
    /// `CAIRN_SCHEDULER_ROLE_ARN`.
    pub scheduler_role_arn: Option<String>,
    /// Writable directory for precompiled components (`/tmp/cairn-cache`).
    pub cache_dir: PathBuf,
    /// `CAIRN_SCHEDULER_DLQ_ARN`: where the scheduler sends wakes it could
    /// not deliver after its retries.
    pub scheduler_dlq_arn: Option<String>,
    /// `CAIRN_LEASE_SECONDS` (30): the lease an advance holds and renews;
    /// a driver that dies is replaced once it expires (by the sweep).
    pub lease: Duration,
    /// `CAIRN_INBOX_GRACE_SECONDS` (60): an inbox write makes the execution
    /// due for the sweep this long after it, in case its stream record is lost.
    pub inbox_grace: Duration,
    /// `CAIRN_BATCH_CONCURRENCY` (8): executions of one stream batch (and
    /// of one sweep) advanced at the same time.
    pub batch_concurrency: usize,
    /// `CAIRN_INDEX_SHARDS` (128): shards of the status and wake index keys
    /// the store writes (see `cairn_store_dynamodb::DEFAULT_INDEX_SHARDS`).
    pub index_shards: u32,
    /// `CAIRN_PAYLOAD_BUCKET`: the S3 bucket that holds payloads over the
    /// threshold (both stacks create it); unset: payloads stay in the
    /// table, up to its 400 KB item limit.
    pub payload_bucket: Option<String>,
    /// `CAIRN_PAYLOAD_THRESHOLD_BYTES` (65,536): bodies over it go to the
    /// payload bucket (see `cairn_store_dynamodb::DEFAULT_PAYLOAD_THRESHOLD`).
    pub payload_threshold: usize,
    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` (MB): the guest memory budget is
    /// derived from it (see [`guest_memory_budget`]).
    pub function_memory_mb: Option<u64>,
    /// `CAIRN_ACTIVITY_DIRS`: `host=guest` pairs (comma-separated) granted
    /// to activities, as `cairn --dir` does locally.
    pub activity_dirs: Vec<(PathBuf, String)>,
    /// `CAIRN_ALLOW_HTTP`: hosts activities may send HTTP requests to,
    /// comma-separated `HOST[:PORT]` (`*` for any), as `cairn --allow-http`.
    pub http_allow: HttpAllowList,
    /// `CAIRN_HTTP_EXTRA_ROOTS`: PEM files (comma-separated) of root
    /// certificates trusted besides the system's, as
    /// `cairn --http-extra-roots`.
    pub http_extra_roots: Vec<PathBuf>,
    /// `CAIRN_ACTIVITY_ENV`: `KEY=VALUE` pairs (comma-separated) given to
    /// activities as environment variables, as `cairn --env` does locally.
    pub activity_env: Vec<(String, String)>,
    /// `CAIRN_ACTIVITY_SECRETS`: `KEY=/ssm/parameter/name` pairs
    /// (comma-separated). [`App::new`] reads the parameters once (SSM
    /// `GetParameters` with decryption) and gives activities `KEY=value`;
    /// only the names are kept here, never the values.
    pub activity_secrets: Vec<(String, String)>,
    /// `CAIRN_ACTIVITY_AWS_CREDENTIALS=1`: copy the function's own
    /// credentials (its role's `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_SESSION_TOKEN`, and `AWS_REGION`) to activities. Off by default.
    pub activity_aws_credentials: bool,
}

/// The variables [`Settings::activity_aws_credentials`] copies from the
/// function's environment to activities.
pub const AWS_CREDENTIAL_VARS: [&str; 4] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
];

/// `KEY=VALUE` pairs, comma-separated, from environment variable `name`.
fn env_pairs(name: &str, what: &str) -> Result<Vec<(String, String)>, HandlerError> {
    match std::env::var(name) {
        Ok(v) => parse_pairs(name, &v, what),
        Err(_) => Ok(Vec::new()),
    }
}

/// `KEY=VALUE` pairs, comma-separated (a value may contain `=`; empty items
/// are skipped); `name` and `what` only word the error.
pub fn parse_pairs(name: &str, v: &str, what: &str) -> Result<Vec<(String, String)>, HandlerError> {
    v.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
            // Not echoed: the item may be a value meant to stay private.
            _ => Err(HandlerError::config(format!(
                "{name}: an item is not {what} (items are comma-separated)"
            ))),
        })
        .collect()
}

/// Reads the SSM parameters of `secrets` (`(KEY, parameter name)`) with
/// decryption, ten names per `GetParameters` call, and returns
/// `(KEY, value)`. A parameter that does not exist or cannot be read is an
/// error naming it and the permission it needs. Values are never logged.
pub async fn resolve_secrets(
    ssm: &aws_sdk_ssm::Client,
    secrets: &[(String, String)],
) -> Result<Vec<(String, String)>, HandlerError> {
    let mut names: Vec<&str> = secrets.iter().map(|(_, n)| n.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let need = |names: &[&str]| {
        format!(
            "the function's role needs ssm:GetParameters on {} (and kms:Decrypt on the \
             key of a SecureString encrypted with a customer managed key)",
            names
                .iter()
                .map(|n| format!(
                    "arn:aws:ssm:REGION:ACCOUNT:parameter/{}",
                    n.trim_start_matches('/')
                ))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let mut values = BTreeMap::new();
    for chunk in names.chunks(10) {
        let out = ssm
            .get_parameters()
            .set_names(Some(chunk.iter().map(|n| n.to_string()).collect()))
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| {
                HandlerError::config(format!(
                    "CAIRN_ACTIVITY_SECRETS: reading SSM parameter(s) {} failed: {}; {}",
                    chunk.join(", "),
                    aws_sdk_ssm::error::DisplayErrorContext(&e),
                    need(chunk)
                ))
            })?;
        if !out.invalid_parameters().is_empty() {
            let missing = out.invalid_parameters().join(", ");
            return Err(HandlerError::config(format!(
                "CAIRN_ACTIVITY_SECRETS: SSM parameter(s) {missing} not found (create them, \
                 e.g. `aws ssm put-parameter --type SecureString --name NAME --value ...`); \
                 {}",
                need(
                    &out.invalid_parameters()
                        .iter()
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                )
            )));
        }
        for p in out.parameters() {
            if let (Some(n), Some(v)) = (p.name(), p.value()) {
                values.insert(n.to_string(), v.to_string());
            }
        }
    }
    secrets
        .iter()
        .map(|(key, name)| match values.get(name) {
            Some(v) => Ok((key.clone(), v.clone())),
            None => Err(HandlerError::config(format!(
                "CAIRN_ACTIVITY_SECRETS: SSM did not return parameter {name} (for {key}); {}",
                need(&[name])
            ))),
        })
        .collect()
}

/// Sets `key` to `value` in `env`, replacing an earlier value.
fn set_env(env: &mut Vec<(String, String)>, key: String, value: String) {
    env.retain(|(k, _)| *k != key);
    env.push((key, value));
}

/// Memory left to the host (runtime, SDK clients, compiled code, buffers)
/// when the guest budget is derived from the function's memory.
pub const HOST_HEADROOM_MB: u64 = 128;

/// The memory all guest instances of one function container may use
/// together: the function's memory less [`HOST_HEADROOM_MB`] (at least
/// 32 MiB). A guest that asks for more fails its execution with CRN304;
/// the container survives.
pub fn guest_memory_budget(function_memory_mb: u64) -> usize {
    (function_memory_mb.saturating_sub(HOST_HEADROOM_MB).max(32) as usize) << 20
}

/// The number in environment variable `name`, if set; a clear error if it
/// is not a number.
fn env_number<T: std::str::FromStr>(name: &str) -> Result<Option<T>, HandlerError> {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| HandlerError::config(format!("{name}={v:?} is not a valid number"))),
        Err(_) => Ok(None),
    }
}

impl Settings {
    /// The defaults for `table` (what an empty environment gives).
    pub fn new(table: impl Into<String>) -> Self {
        Self {
            table: table.into(),
            components_dir: None,
            scheduler_group: None,
            scheduler_role_arn: None,
            cache_dir: PathBuf::from("/tmp/cairn-cache"),
            scheduler_dlq_arn: None,
            lease: Duration::from_secs(30),
            inbox_grace: Duration::from_secs(60),
            batch_concurrency: 8,
            index_shards: cairn_store_dynamodb::DEFAULT_INDEX_SHARDS,
            payload_bucket: None,
            payload_threshold: cairn_store_dynamodb::DEFAULT_PAYLOAD_THRESHOLD,
            function_memory_mb: None,
            activity_dirs: Vec::new(),
            http_allow: HttpAllowList::default(),
            http_extra_roots: Vec::new(),
            activity_env: Vec::new(),
            activity_secrets: Vec::new(),
            activity_aws_credentials: false,
        }
    }

    /// Reads the environment.
    pub fn from_env() -> Result<Self, HandlerError> {
        let table = std::env::var("CAIRN_TABLE").map_err(|_| {
            HandlerError::config("CAIRN_TABLE is not set: the function needs its table's name")
        })?;
        let defaults = Self::new(table);
        Ok(Self {
            components_dir: std::env::var_os("CAIRN_COMPONENTS_DIR").map(PathBuf::from),
            scheduler_group: std::env::var("CAIRN_SCHEDULER_GROUP").ok(),
            scheduler_role_arn: std::env::var("CAIRN_SCHEDULER_ROLE_ARN").ok(),
            cache_dir: std::env::var_os("CAIRN_CACHE_DIR")
                .map(PathBuf::from)
                .unwrap_or(defaults.cache_dir.clone()),
            scheduler_dlq_arn: std::env::var("CAIRN_SCHEDULER_DLQ_ARN")
                .ok()
                .filter(|s| !s.is_empty()),
            lease: match env_number::<f64>("CAIRN_LEASE_SECONDS")? {
                Some(s) => Duration::from_secs_f64(s.max(1.0)),
                None => defaults.lease,
            },
            inbox_grace: match env_number::<f64>("CAIRN_INBOX_GRACE_SECONDS")? {
                Some(s) => Duration::from_secs_f64(s.max(0.0)),
                None => defaults.inbox_grace,
            },
            batch_concurrency: env_number::<usize>("CAIRN_BATCH_CONCURRENCY")?
                .map_or(defaults.batch_concurrency, |n| n.max(1)),
            index_shards: match env_number::<u32>("CAIRN_INDEX_SHARDS")? {
                Some(n) => cairn_store_dynamodb::check_index_shards(n)
                    .map_err(|e| HandlerError::config(format!("CAIRN_INDEX_SHARDS: {e}")))?,
                None => defaults.index_shards,
            },
            payload_bucket: std::env::var("CAIRN_PAYLOAD_BUCKET")
                .ok()
                .map(|b| b.trim().to_string())
                .filter(|b| !b.is_empty()),
            payload_threshold: match std::env::var("CAIRN_PAYLOAD_THRESHOLD_BYTES") {
                Ok(v) => cairn_store_dynamodb::check_payload_threshold(&v)
                    .map_err(|e| HandlerError::config(e.to_string()))?,
                Err(_) => defaults.payload_threshold,
            },
            function_memory_mb: env_number("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")?,
            activity_dirs: match std::env::var("CAIRN_ACTIVITY_DIRS") {
                Ok(v) => v
                    .split(',')
                    .filter(|p| !p.trim().is_empty())
                    .map(|pair| match pair.split_once('=') {
                        Some((host, guest)) => {
                            Ok((PathBuf::from(host.trim()), guest.trim().to_string()))
                        }
                        None => Err(HandlerError::config(format!(
                            "CAIRN_ACTIVITY_DIRS: {pair:?} is not HOST_DIR=GUEST_DIR"
                        ))),
                    })
                    .collect::<Result<_, _>>()?,
                Err(_) => Vec::new(),
            },
            http_allow: HttpAllowList::parse(std::env::var("CAIRN_ALLOW_HTTP").ok())
                .map_err(|e| HandlerError::config(format!("CAIRN_ALLOW_HTTP: {e}")))?,
            http_extra_roots: std::env::var("CAIRN_HTTP_EXTRA_ROOTS")
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
                .collect(),
            activity_env: env_pairs("CAIRN_ACTIVITY_ENV", "KEY=VALUE")?,
            activity_secrets: env_pairs("CAIRN_ACTIVITY_SECRETS", "KEY=/ssm/parameter/name")?
                .into_iter()
                .map(|(k, n)| (k, n.trim().to_string()))
                .collect(),
            activity_aws_credentials: match std::env::var("CAIRN_ACTIVITY_AWS_CREDENTIALS")
                .unwrap_or_default()
                .trim()
            {
                "" | "0" | "false" => false,
                "1" | "true" => true,
                v => {
                    return Err(HandlerError::config(format!(
                        "CAIRN_ACTIVITY_AWS_CREDENTIALS={v:?}: expected 1 (or true) or 0 (or false)"
                    )));
                }
            },
            ..defaults
        })
    }
}

/// Everything built once per container and borrowed by every invocation.
pub struct App {
    engine: Engine,
    scheduler: Option<Scheduler>,
    batch_concurrency: usize,
    started: Instant,
    dynamo_stats: Option<Arc<cairn_store_dynamodb::RequestStats>>,
}

fn requests_delta(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> Value {
    let mut v = serde_json::Map::new();
    for (op, n) in after {
        let d = n - before.get(op).copied().unwrap_or(0);
        if d > 0 {
            v.insert(op.clone(), json!(d));
        }
    }
    Value::Object(v)
}

/// The invocation's deadline from `Lambda-Runtime-Deadline-Ms`: Lambda sends
/// epoch milliseconds; some emulators (cargo-lambda) send the timeout in
/// milliseconds instead. A value before the year 2000 can only be the latter.
pub fn deadline(header_ms: u64, now: Timestamp) -> Option<Timestamp> {
    const Y2000_MS: u64 = 946_684_800_000;
    match header_ms {
        0 => None,
        ms if ms < Y2000_MS => Some(now.plus(Duration::from_millis(ms))),
        ms => Some(Timestamp::from_millis(ms)),
    }
}

/// Safety margin before the invocation's deadline: what the advance leaves
/// for the step in flight to be journaled and the continuation to be
/// scheduled. A quarter of the time left, at most 10 s; at least 1 s (or
/// half the time left, if less), so a short timeout on a slow moment still
/// ends before Lambda stops the function.
fn margin(remaining: Duration) -> Duration {
    let floor = Duration::from_secs(1).min(remaining / 2);
    (remaining / 4).clamp(floor, Duration::from_secs(10))
}

impl App {
    /// Builds the engine, the AWS clients and the component index.
    pub async fn new(
        settings: Settings,
        sdk: &aws_config::SdkConfig,
        started: Instant,
    ) -> Result<Self, HandlerError> {
        let mut store = cairn_store_dynamodb::DynamoStore::from_sdk_config(sdk, &settings.table)
            .with_inbox_grace(settings.inbox_grace)
            .with_index_shards(settings.index_shards)
            .with_payload_threshold(settings.payload_threshold);
        if let Some(bucket) = &settings.payload_bucket {
            store = store.with_payload_bucket(bucket);
        }
        let dynamo_stats = Some(store.stats().clone());
        let mut sandbox = SandboxConfig {
            cache_dir: Some(settings.cache_dir.clone()),
            ..SandboxConfig::default()
        };
        if let Some(mb) = settings.function_memory_mb {
            // Every instance (workflows and activities of concurrent
            // advances) draws from one budget below the function's memory.
            sandbox.memory_budget_bytes = Some(guest_memory_budget(mb));
            sandbox.memory_limit_bytes = sandbox.memory_limit_bytes.min(guest_memory_budget(mb));
        }
        sandbox.activity_dirs = settings.activity_dirs.clone();
        sandbox.http_allow = settings.http_allow.clone();
        sandbox.http_roots = settings.http_extra_roots.clone();
        // The activities' environment: the plain variables, then the
        // secrets (read once, here, for the container's life), then the
        // function's credentials if granted; a later one replaces an earlier.
        let mut env = Vec::new();
        for (k, v) in &settings.activity_env {
            set_env(&mut env, k.clone(), v.clone());
        }
        if !settings.activity_secrets.is_empty() {
            let secrets =
                resolve_secrets(&aws_sdk_ssm::Client::new(sdk), &settings.activity_secrets).await?;
            // The keys only: values are never logged.
            tracing::info!(
                keys = ?secrets.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
                "activity secrets read from SSM"
            );
            for (k, v) in secrets {
                set_env(&mut env, k, v);
            }
        }
        if settings.activity_aws_credentials {
            for var in AWS_CREDENTIAL_VARS {
                if let Ok(v) = std::env::var(var) {
                    set_env(&mut env, var.to_string(), v);
                }
            }
        }
        sandbox.activity_env = env;
        // Inbox writes push through the table's stream, parents included.
        // The lease keeps racing invocations apart and lets the sweep find
        // the executions of a container that died.
        let mut config = EngineConfig {
            push_parents: false,
            lease: Some(settings.lease),
            ..EngineConfig::default()
        };
        // The package's components (and their precompiled .cwasm) spare a
        // read of the table; which component starts a workflow is the
        // table's `workflow#` pointer alone (`cairn register`).
        if let Some(dir) = &settings.components_dir {
            sandbox.precompiled_dirs.push(dir.clone());
            config.component_dirs.push(dir.clone());
        }
        let sandbox =
            Arc::new(Sandbox::new(sandbox).map_err(|e| HandlerError::config(e.to_string()))?);
        let engine = Engine::new(sandbox, Arc::new(store), Arc::new(SystemClock), config);
        let scheduler = match (settings.scheduler_group, settings.scheduler_role_arn) {
            (Some(group), Some(role)) => Some(Scheduler::new(
                aws_sdk_scheduler::Client::new(sdk),
                group,
                role,
                settings.scheduler_dlq_arn.clone(),
            )),
            _ => None,
        };
        Ok(Self {
            engine,
            scheduler,
            batch_concurrency: settings.batch_concurrency,
            started,
            dynamo_stats,
        })
    }

    /// Time the table's requests spent on the wire since the process
    /// started (ms): a start reports it so that benchmarks can tell the
    /// store's round trips from the function's own work.
    fn store_wire_ms(&self) -> f64 {
        self.dynamo_stats
            .as_ref()
            .map_or(0.0, |s| s.wire_time().as_secs_f64() * 1e3)
    }

    /// Requests sent so far, by service and operation.
    fn requests(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        if let Some(stats) = &self.dynamo_stats {
            for (op, n) in stats.snapshot() {
                out.insert(format!("dynamodb:{op}"), n);
            }
        }
        if let Some(s) = &self.scheduler {
            for (op, n) in s.counts() {
                out.insert(format!("scheduler:{op}"), n);
            }
        }
        out
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Handles one invocation: `payload` is the event, `function_arn` the
    /// function's own ARN (for schedules), `deadline` the invocation's end.
    pub async fn handle(
        &self,
        payload: Value,
        function_arn: &str,
        deadline: Option<Timestamp>,
    ) -> Result<Value, HandlerError> {
        let received_ms = self.started.elapsed().as_secs_f64() * 1e3;
        let mut v = self.handle_inner(payload, function_arn, deadline).await?;
        if let Some(t) = v.get_mut("timing") {
            t["invocation_received_since_process_start_ms"] = json!(received_ms);
        }
        Ok(v)
    }

    async fn handle_inner(
        &self,
        payload: Value,
        function_arn: &str,
        deadline: Option<Timestamp>,
    ) -> Result<Value, HandlerError> {
        let opts = AdvanceOptions {
            deadline: deadline.map(|d| {
                let now = Timestamp::now_system();
                Timestamp::from_millis(
                    d.as_millis()
                        .saturating_sub(margin(d.since(now)).as_millis() as u64),
                )
            }),
            component: None,
        };
        match events::decode(payload)? {
            // A caller's failure is answered, not raised as a function
            // error: it is not the function's (and must not set off its
            // Errors alarm).
            Decoded::Api(req) => Ok(match req {
                // Boxed: the API's futures are deep (the start's advance).
                Ok(req) => Box::pin(self.api(req, function_arn, &opts)).await,
                Err(e) => Err(e),
            }
            .unwrap_or_else(|e| e.to_wire())),
            Decoded::Http(req) => Ok(events::http_response(match req {
                Ok(req) => Box::pin(self.api(req, function_arn, &opts)).await,
                Err(e) => Err(e),
            })),
            Decoded::Internal(req) => self.internal(req, function_arn, &opts).await,
            Decoded::Stream(records) => Ok(self.stream(records, function_arn, &opts).await),
        }
    }

    /// A scheduler's wake or the sweep.
    async fn internal(
        &self,
        req: Internal,
        arn: &str,
        opts: &AdvanceOptions,
    ) -> Result<Value, HandlerError> {
        match req {
            Internal::Wake { id, at } => {
                let id =
                    ExecutionId::new(id).map_err(|e| HandlerError::bad_request(e.to_string()))?;
                let before = self.requests();
                let t = Instant::now();
                let outcome = self
                    .advance(&id, arn, opts, at.map(Timestamp::from_millis))
                    .await?;
                let ms = t.elapsed().as_secs_f64() * 1e3;
                Ok(
                    json!({"id": id, "outcome": outcome_name(&outcome), "advance_ms": ms, "requests": requests_delta(&before, &self.requests())}),
                )
            }
            Internal::Sweep {} => self.sweep(arn, opts).await,
        }
    }

    /// One advance plus its timer bookkeeping. `fired`: the wake time of the
    /// schedule that invoked us (already deleted by the scheduler).
    async fn advance(
        &self,
        id: &ExecutionId,
        arn: &str,
        opts: &AdvanceOptions,
        fired: Option<Timestamp>,
    ) -> Result<Advance, EngineError> {
        let (outcome, loaded_wake) = self.engine.advance_reporting_wake(id, opts.clone()).await?;
        let Some(scheduler) = &self.scheduler else {
            return Ok(outcome);
        };
        let new_wake = match &outcome {
            Advance::Suspended { wake_at, .. } => *wake_at,
            Advance::Yielded => Some(Timestamp::now_system().plus(Duration::from_secs(1))),
            _ => None,
        };
        if matches!(outcome, Advance::Conflict { .. }) {
            return Ok(outcome); // The winner does the bookkeeping.
        }
        // Neither failure loses the wake: a stale schedule only pushes a
        // harmless advance, and a missing one is made up for by the sweep,
        // which finds the execution through its `wake_at` in the table.
        if let Some(old) = loaded_wake.filter(|o| Some(*o) != new_wake && Some(*o) != fired)
            && let Err(e) = scheduler.delete(id, old).await
        {
            tracing::warn!(execution = %id, "{e}; its wake will be a harmless extra advance");
        }
        if let Some(new) =
            new_wake.filter(|n| Some(*n) != loaded_wake || matches!(outcome, Advance::Yielded))
            && let Err(e) = scheduler.create(id, new, arn).await
        {
            tracing::error!(execution = %id, "{e}; the sweep will advance it once due");
        }
        Ok(outcome)
    }

    /// Advances each execution named by the batch once; failures are
    /// reported per record so only their records are retried.
    async fn stream(
        &self,
        records: Vec<events::StreamItem>,
        arn: &str,
        opts: &AdvanceOptions,
    ) -> Value {
        let mut by_execution: BTreeMap<ExecutionId, Vec<String>> = BTreeMap::new();
        for r in records {
            by_execution
                .entry(r.execution)
                .or_default()
                .push(r.sequence_number);
        }
        // Each execution advances on its own (at most `batch_concurrency`
        // at once): one slow activity does not hold up the batch.
        let results: Vec<Vec<Value>> = futures_util::stream::iter(by_execution)
            .map(|(id, seqs)| async move {
                match self.advance(&id, arn, opts, None).await {
                    Ok(outcome) => {
                        tracing::info!(execution = %id, outcome = outcome_name(&outcome), records = seqs.len(), "advanced from the stream");
                        Vec::new()
                    }
                    Err(e) => {
                        tracing::error!(execution = %id, "advance failed; its records will be retried: {e}");
                        seqs.into_iter()
                            .map(|s| json!({"itemIdentifier": s}))
                            .collect()
                    }
                }
            })
            .buffer_unordered(self.batch_concurrency)
            .collect()
            .await;
        json!({"batchItemFailures": results.concat()})
    }

    /// The safety net, run on a schedule: every execution due now, oldest
    /// first and paged to the end (`Store::due`): timers and retries whose
    /// wake was lost, expired leases (a driver that died mid-advance),
    /// inbox writes whose stream record was lost, continuations. Each is
    /// advanced (at most `batch_concurrency` at once); one whose lease is
    /// still held is left to its driver. Stops starting new ones near the
    /// invocation's deadline; the next sweep takes the rest.
    async fn sweep(&self, arn: &str, opts: &AdvanceOptions) -> Result<Value, HandlerError> {
        let now = Timestamp::now_system();
        let due = self.engine.store().due(now, SWEEP_LIMIT).await?;
        let found = due.len();
        let oldest_ms = due
            .first()
            .map(|(_, t)| now.as_millis().saturating_sub(t.as_millis()));
        let outcomes: Vec<(ExecutionId, Result<&'static str, String>)> =
            futures_util::stream::iter(due)
                .map(|(id, _)| async move {
                    if opts.deadline.is_some_and(|d| Timestamp::now_system() >= d) {
                        return (id, Ok("skipped"));
                    }
                    let r = self.advance(&id, arn, opts, None).await;
                    (id, r.map(|o| outcome_name(&o)).map_err(|e| e.to_string()))
                })
                .buffer_unordered(self.batch_concurrency)
                .collect()
                .await;
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        let mut failed = Vec::new();
        for (id, r) in outcomes {
            match r {
                Ok(o) => *counts.entry(o).or_default() += 1,
                Err(e) => failed.push(json!({"id": id, "error": e})),
            }
        }
        tracing::info!(found, ?counts, failed = failed.len(), "sweep done");
        Ok(
            json!({"found": found, "oldest_overdue_ms": oldest_ms, "outcomes": counts, "failed": failed}),
        )
    }
}

/// At most this many due executions are read by one sweep (oldest first);
/// the next sweep takes the rest.
const SWEEP_LIMIT: usize = 100_000;

fn outcome_name(a: &Advance) -> &'static str {
    match a {
        Advance::Finished { status, .. } => status.as_str(),
        Advance::Suspended { .. } => "waiting",
        Advance::Conflict { .. } => "conflict",
        Advance::Parked(_) => "parked",
        Advance::Yielded => "yielded",
    }
}
