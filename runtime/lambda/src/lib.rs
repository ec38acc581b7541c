//! # cairn-lambda: the push host
//!
//! The `bootstrap` of Cairn's Lambda function. Nothing polls: every
//! invocation is a push that advances executions and returns.
//!
//! | event | what happens |
//! |---|---|
//! | direct invoke / Function URL: `{"action": "start", "workflow", "id", "input"}` | create the execution (idempotent) and advance it until it waits |
//! | `{"action": "signal", "id", "name", "payload"}`, `{"action": "cancel", "id", "reason"}` | write the inbox; the table's stream pushes the advance |
//! | `{"action": "status", "id"}` | the execution's status |
//! | `{"action": "query", "id", "name", "args"}` | the workflow's answer to a query (nothing is written) |
//! | DynamoDB stream batch (inbox inserts) | advance each execution once; `batchItemFailures` names the records of the ones that failed |
//! | `{"action": "wake", "id", "at"}` from EventBridge Scheduler | a timer is due (or a continuation): advance |
//! | `{"action": "sweep"}` (periodic) | advance due executions whose wake was lost, and interrupted ones |
//!
//! After an advance that suspends on a timer, the host creates a one-time
//! schedule `at(...)` that invokes the function with a wake; a replaced
//! timer's schedule is deleted. Near the invocation's deadline the driver
//! stops at a step boundary and a continuation is scheduled.

pub mod events;
mod schedule;

pub use events::{HandlerError, Request};
pub use schedule::Scheduler;

use cairn_core::{ExecutionId, ListFilter, Payload, Status, Timestamp};
use cairn_engine::{Advance, AdvanceOptions, Engine, EngineConfig, StartRequest, SystemClock};
use cairn_host::{Sandbox, SandboxConfig};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
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
}

impl Settings {
    /// Reads the environment.
    pub fn from_env() -> Result<Self, HandlerError> {
        let table = std::env::var("CAIRN_TABLE").map_err(|_| {
            HandlerError::config("CAIRN_TABLE is not set: the function needs its table's name")
        })?;
        Ok(Self {
            table,
            components_dir: std::env::var_os("CAIRN_COMPONENTS_DIR").map(PathBuf::from),
            scheduler_group: std::env::var("CAIRN_SCHEDULER_GROUP").ok(),
            scheduler_role_arn: std::env::var("CAIRN_SCHEDULER_ROLE_ARN").ok(),
            cache_dir: std::env::var_os("CAIRN_CACHE_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/tmp/cairn-cache")),
        })
    }
}

/// Everything built once per container and borrowed by every invocation.
pub struct App {
    engine: Engine,
    scheduler: Option<Scheduler>,
    /// Workflow name -> component hash, from the components directory's manifest.
    workflows: HashMap<String, cairn_core::ComponentHash>,
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

/// Safety margin before the invocation's deadline.
fn margin(remaining: Duration) -> Duration {
    (remaining / 4).min(Duration::from_secs(10))
}

impl App {
    /// Builds the engine, the AWS clients and the component index.
    pub async fn new(
        settings: Settings,
        sdk: &aws_config::SdkConfig,
        started: Instant,
    ) -> Result<Self, HandlerError> {
        let store = cairn_store_dynamodb::DynamoStore::from_sdk_config(sdk, &settings.table);
        let dynamo_stats = Some(store.stats().clone());
        let mut sandbox = SandboxConfig {
            cache_dir: Some(settings.cache_dir.clone()),
            ..SandboxConfig::default()
        };
        // Inbox writes push through the table's stream, parents included.
        let mut config = EngineConfig {
            push_parents: false,
            ..EngineConfig::default()
        };
        let mut workflows = HashMap::new();
        if let Some(dir) = &settings.components_dir {
            sandbox.precompiled_dirs.push(dir.clone());
            config.component_dirs.push(dir.clone());
            workflows = read_manifest(dir)?;
        }
        let sandbox =
            Arc::new(Sandbox::new(sandbox).map_err(|e| HandlerError::config(e.to_string()))?);
        let engine = Engine::new(sandbox, Arc::new(store), Arc::new(SystemClock), config);
        let scheduler = match (settings.scheduler_group, settings.scheduler_role_arn) {
            (Some(group), Some(role)) => Some(Scheduler::new(
                aws_sdk_scheduler::Client::new(sdk),
                group,
                role,
            )),
            _ => None,
        };
        Ok(Self {
            engine,
            scheduler,
            workflows,
            started,
            dynamo_stats,
        })
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
        let from_url = events::is_function_url(&payload);
        let decoded = match events::decode(payload) {
            Err(e) if from_url => return Ok(events::http_response(Err(e))),
            d => d?,
        };
        match decoded {
            events::Decoded::Request(req) => self.request(req, function_arn, &opts).await,
            events::Decoded::Http(req) => Ok(events::http_response(
                self.request(req, function_arn, &opts).await,
            )),
            events::Decoded::Stream(records) => Ok(self.stream(records, function_arn, &opts).await),
        }
    }

    async fn request(
        &self,
        req: Request,
        arn: &str,
        opts: &AdvanceOptions,
    ) -> Result<Value, HandlerError> {
        match req {
            Request::Start {
                workflow,
                id,
                input,
                component,
            } => {
                let component = match component {
                    Some(h) => Some(
                        cairn_core::ComponentHash::parse(&h).map_err(HandlerError::bad_request)?,
                    ),
                    None => self.workflows.get(&workflow).cloned(),
                };
                let id = match id {
                    Some(id) => ExecutionId::new(id)
                        .map_err(|e| HandlerError::bad_request(e.to_string()))?,
                    None => ExecutionId::generate(
                        &workflow,
                        Timestamp::now_system(),
                        self.started.elapsed().as_nanos() as u64,
                    ),
                };
                let input = Payload::json(&input);
                let before = self.requests();
                let t_component = Instant::now();
                if let Some(h) = &component {
                    self.engine.component(h).await?;
                }
                let component_ms = t_component.elapsed().as_secs_f64() * 1e3;
                let started = self
                    .engine
                    .start(StartRequest {
                        workflow,
                        id: id.clone(),
                        input,
                        component,
                        parent: None,
                    })
                    .await?;
                let created_ms = self.started.elapsed().as_secs_f64() * 1e3;
                let t = Instant::now();
                let outcome = self.advance(&id, arn, opts, None).await?;
                let mut v = self.status(&id).await?;
                v["created"] = json!(started.created);
                v["outcome"] = json!(outcome_name(&outcome));
                v["timing"] = json!({
                    "first_write_since_process_start_ms": created_ms,
                    "component_ms": component_ms,
                    "advance_ms": t.elapsed().as_secs_f64() * 1e3,
                    "since_process_start_ms": self.started.elapsed().as_secs_f64() * 1e3,
                });
                v["requests"] = requests_delta(&before, &self.requests());
                Ok(v)
            }
            Request::Signal { id, name, payload } => {
                let id =
                    ExecutionId::new(id).map_err(|e| HandlerError::bad_request(e.to_string()))?;
                let item = self
                    .engine
                    .signal(&id, &name, Payload::json(&payload))
                    .await?;
                Ok(json!({"id": id, "delivered": item.id}))
            }
            Request::Cancel { id, reason } => {
                let id =
                    ExecutionId::new(id).map_err(|e| HandlerError::bad_request(e.to_string()))?;
                let item = self
                    .engine
                    .cancel(&id, reason.as_deref().unwrap_or("cancelled"))
                    .await?;
                Ok(json!({"id": id, "delivered": item.id}))
            }
            Request::Status { id } => {
                let id =
                    ExecutionId::new(id).map_err(|e| HandlerError::bad_request(e.to_string()))?;
                self.status(&id).await
            }
            Request::Query { id, name, args } => {
                let id =
                    ExecutionId::new(id).map_err(|e| HandlerError::bad_request(e.to_string()))?;
                match self.engine.query(&id, &name, Payload::json(&args)).await? {
                    Ok(answer) => {
                        Ok(json!({"id": id, "query": name, "answer": answer.to_json_value()}))
                    }
                    Err(failure) => Ok(
                        json!({"id": id, "query": name, "failure": serde_json::to_value(&failure).unwrap_or_default()}),
                    ),
                }
            }
            Request::Wake { id, at } => {
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
            Request::Sweep {} => self.sweep(arn, opts).await,
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
    ) -> Result<Advance, HandlerError> {
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
        if let Some(old) = loaded_wake.filter(|o| Some(*o) != new_wake && Some(*o) != fired) {
            scheduler.delete(id, old).await?;
        }
        if let Some(new) =
            new_wake.filter(|n| Some(*n) != loaded_wake || matches!(outcome, Advance::Yielded))
        {
            scheduler.create(id, new, arn).await?;
        }
        Ok(outcome)
    }

    async fn status(&self, id: &ExecutionId) -> Result<Value, HandlerError> {
        let ex = self.engine.load(id).await?;
        let m = &ex.meta;
        let mut v = json!({"id": m.id, "workflow": m.workflow, "status": m.status, "journal_len": ex.journal.len()});
        if let Some(w) = &m.waiting_on {
            v["waiting_on"] = json!(w);
        }
        if let Some(t) = m.wake_at {
            v["wake_at"] = json!(t.to_rfc3339());
        }
        match ex.journal.last().map(|e| &e.event) {
            Some(cairn_core::Event::Completed { output }) => v["output"] = output.to_json_value(),
            Some(cairn_core::Event::Failed { failure }) => {
                v["failure"] = serde_json::to_value(failure).unwrap_or_default()
            }
            _ => {}
        }
        if let Some(p) = &m.parked {
            v["parked"] = serde_json::to_value(p).unwrap_or_default();
        }
        Ok(v)
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
        let mut failures = Vec::new();
        for (id, seqs) in by_execution {
            match self.advance(&id, arn, opts, None).await {
                Ok(outcome) => {
                    tracing::info!(execution = %id, outcome = outcome_name(&outcome), records = seqs.len(), "advanced from the stream")
                }
                Err(e) => {
                    tracing::error!(execution = %id, "advance failed; its records will be retried: {e}");
                    failures.extend(seqs.into_iter().map(|s| json!({"itemIdentifier": s})));
                }
            }
        }
        json!({"batchItemFailures": failures})
    }

    /// The safety net: due executions whose wake was lost, and executions a
    /// crashed invocation left running for more than 15 minutes.
    async fn sweep(&self, arn: &str, opts: &AdvanceOptions) -> Result<Value, HandlerError> {
        let now = Timestamp::now_system();
        let mut ids: Vec<ExecutionId> = self
            .engine
            .store()
            .due(now, 200)
            .await?
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        let stale = now.as_millis().saturating_sub(15 * 60 * 1000);
        let running = self
            .engine
            .list(ListFilter {
                status: vec![Status::Running],
                workflow: None,
                limit: 200,
            })
            .await?;
        ids.extend(
            running
                .into_iter()
                .filter(|m| m.updated_at.as_millis() < stale)
                .map(|m| m.id),
        );
        let mut advanced = 0;
        let mut failed = Vec::new();
        for id in &ids {
            if opts.deadline.is_some_and(|d| Timestamp::now_system() >= d) {
                break;
            }
            match self.advance(id, arn, opts, None).await {
                Ok(_) => advanced += 1,
                Err(e) => failed.push(json!({"id": id, "error": e.to_string()})),
            }
        }
        Ok(json!({"found": ids.len(), "advanced": advanced, "failed": failed}))
    }
}

fn outcome_name(a: &Advance) -> &'static str {
    match a {
        Advance::Finished { status, .. } => status.as_str(),
        Advance::Suspended { .. } => "waiting",
        Advance::Conflict { .. } => "conflict",
        Advance::Parked(_) => "parked",
        Advance::Yielded => "continuing",
    }
}

/// `components.json` in the components directory: workflow -> component hash.
fn read_manifest(
    dir: &std::path::Path,
) -> Result<HashMap<String, cairn_core::ComponentHash>, HandlerError> {
    let path = dir.join("components.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(HashMap::new());
    };
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| HandlerError::config(format!("{}: {e}", path.display())))?;
    let mut out = HashMap::new();
    if let Some(map) = v.get("workflows").and_then(Value::as_object) {
        for (name, hash) in map {
            let hash = hash
                .as_str()
                .and_then(|h| cairn_core::ComponentHash::parse(h).ok());
            if let Some(h) = hash {
                out.insert(name.clone(), h);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
