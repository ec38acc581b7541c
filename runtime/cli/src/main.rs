//! # cairn: the command line
//!
//! Runs workflows on the embedded SQLite store (`.cairn/cairn.db` by
//! default): `run` drives one to the end in this process; `start`, `signal`,
//! `cancel` and `resume` push an execution forward one event at a time, the
//! way the Lambda host does in AWS; `status`, `list` and `history` read the
//! store; `inspect`, `register` and `precompile` handle components, and
//! `components list`/`components gc` the ones stored.
//!
//! `--store dynamodb` drives executions in a DynamoDB table from this
//! process: an operator's tool, which runs workflow and activity code on
//! this machine. `--function NAME|ARN` instead talks to a deployed
//! function through its client API (`cairn-client`): `start`, `signal`,
//! `query`, `cancel`, `status`, `history` and `list` are served there and
//! nothing runs here.

mod remote;
mod render;

use anyhow::{Context, Result, anyhow, bail};
use cairn_core::{
    Clock, ComponentHash, ExecutionId, ListFilter, Payload, SimClock, Status, Timestamp,
};
use cairn_engine::{
    Advance, AdvanceOptions, Engine, EngineConfig, EngineError, StartRequest, SystemClock,
};
use cairn_host::{ComponentBytes, HttpAllowList, Sandbox, SandboxConfig};
use cairn_store_sqlite::SqliteStore;
use clap::{Args, Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Durable workflows as WebAssembly components.
#[derive(Parser, Debug)]
#[command(name = "cairn", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug, Clone)]
struct Global {
    /// Store kind: the embedded SQLite file, or a DynamoDB table (region,
    /// credentials and endpoint from the AWS environment variables).
    #[arg(long, global = true, env = "CAIRN_STORE", default_value = "sqlite", value_parser = ["sqlite", "dynamodb"])]
    store: String,
    /// A deployed Cairn function (name, ARN or alias ARN): start, signal,
    /// query, cancel, status, history and list go through its client API,
    /// with the AWS environment's credentials; nothing runs on this
    /// machine. Without it, this process drives executions in --store.
    #[arg(long, global = true, env = "CAIRN_FUNCTION", value_name = "NAME|ARN")]
    function: Option<String>,
    /// DynamoDB table (with --store dynamodb).
    #[arg(long, global = true, env = "CAIRN_TABLE", default_value = "cairn")]
    table: String,
    /// S3 bucket for payloads over --payload-threshold (with --store
    /// dynamodb; the deploy stacks create one): inputs, signals, activity
    /// results and outputs up to 32 MiB. Without it, payloads stay in the
    /// table, up to its 400 KB item limit. Endpoint from AWS_ENDPOINT_URL_S3.
    #[arg(
        long,
        global = true,
        env = "CAIRN_PAYLOAD_BUCKET",
        value_name = "BUCKET"
    )]
    payload_bucket: Option<String>,
    /// Payloads over this many bytes go to --payload-bucket (1 to 400000).
    #[arg(long, global = true, env = "CAIRN_PAYLOAD_THRESHOLD_BYTES", value_name = "BYTES", default_value_t = cairn_store_dynamodb::DEFAULT_PAYLOAD_THRESHOLD)]
    payload_threshold: usize,
    /// SQLite store file.
    #[arg(
        long,
        global = true,
        env = "CAIRN_DB",
        default_value = ".cairn/cairn.db"
    )]
    db: PathBuf,
    /// Directory for precompiled components (default: `cache/` beside the db).
    #[arg(long, global = true, env = "CAIRN_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// More logs (-v info, -vv debug). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Print only results.
    #[arg(short, long, global = true)]
    quiet: bool,
}

#[derive(Args, Debug, Clone, Default)]
struct ActivityArgs {
    /// Grant activities a host directory: HOST[:GUEST] (GUEST defaults to HOST).
    #[arg(long = "dir", value_name = "HOST[:GUEST]")]
    dirs: Vec<String>,
    /// Give activities an environment variable: KEY=VALUE.
    #[arg(long = "env", value_name = "KEY=VALUE")]
    envs: Vec<String>,
    /// Let activities send HTTP requests (wasi:http) to HOST[:PORT]
    /// (repeatable or comma-separated; `*.example.com` for subdomains, `*`
    /// for any host). Other hosts are refused.
    #[arg(
        long = "allow-http",
        value_name = "HOST[:PORT]",
        env = "CAIRN_ALLOW_HTTP",
        value_delimiter = ','
    )]
    allow_http: Vec<String>,
    /// Trust the root certificates of this PEM file for activities' HTTPS
    /// requests, besides the system's (a private CA; repeatable).
    #[arg(
        long = "http-extra-roots",
        value_name = "PEM",
        env = "CAIRN_HTTP_EXTRA_ROOTS"
    )]
    http_extra_roots: Vec<PathBuf>,
}

#[derive(Args, Debug, Clone)]
struct StartArgs {
    /// Workflow name (see `cairn inspect`).
    #[arg(long, short = 'w')]
    workflow: String,
    /// Input as JSON, or @file.json.
    #[arg(long, short = 'i', default_value = "null")]
    input: String,
    /// Execution id (default: generated). Starting an existing id with the
    /// same input returns that execution.
    #[arg(long)]
    id: Option<String>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start a workflow and drive it to the end in this process.
    Run {
        /// The component (.wasm).
        component: PathBuf,
        #[command(flatten)]
        start: StartArgs,
        /// Skip waiting: timers and retry delays elapse at once.
        #[arg(long)]
        skip_time: bool,
        #[command(flatten)]
        activities: ActivityArgs,
        /// Print the outcome as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Start an execution and advance it until it first waits.
    Start {
        /// The component (.wasm); default: the one registered for the workflow.
        component: Option<PathBuf>,
        #[command(flatten)]
        start: StartArgs,
        /// With --function: wait up to this long (ms) for the result.
        #[arg(long, value_name = "MS")]
        wait_ms: Option<u64>,
        #[command(flatten)]
        activities: ActivityArgs,
        /// Print the outcome as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Send a signal to an execution and advance it.
    Signal {
        /// Execution id.
        id: String,
        /// Signal name.
        name: String,
        /// Payload as JSON, or @file.json.
        #[arg(default_value = "null")]
        payload: String,
        /// Only write the signal to the inbox; do not advance.
        #[arg(long)]
        no_advance: bool,
        /// Deliver it once however often it is sent with this key (a retry
        /// after a lost reply).
        #[arg(long, value_name = "KEY")]
        idempotency_key: Option<String>,
        #[command(flatten)]
        activities: ActivityArgs,
    },
    /// Ask an execution to cancel and advance it (its compensations run).
    Cancel {
        /// Execution id.
        id: String,
        /// Why.
        #[arg(long, default_value = "cancelled by the user")]
        reason: String,
        #[command(flatten)]
        activities: ActivityArgs,
    },
    /// Drive a waiting or interrupted execution forward (to the end, or
    /// until it waits for a signal).
    Resume {
        /// Execution id.
        id: String,
        /// Skip waiting: timers and retry delays elapse at once.
        #[arg(long)]
        skip_time: bool,
        /// Replay against this component instead of the pinned one (an
        /// in-place upgrade); if the journal does not match it, the
        /// execution is parked. Also retries a parked execution.
        #[arg(long)]
        component: Option<PathBuf>,
        /// Return when the execution waits for a signal instead of watching
        /// its inbox.
        #[arg(long)]
        no_wait: bool,
        #[command(flatten)]
        activities: ActivityArgs,
        /// Print the outcome as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Advance every execution whose timer or retry is due.
    Wake {
        /// Skip waiting: treat every waiting timer as due.
        #[arg(long)]
        skip_time: bool,
        #[command(flatten)]
        activities: ActivityArgs,
    },
    /// Show one execution.
    Status {
        /// Execution id.
        id: String,
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// List executions, most recently updated first.
    List {
        /// Only this status (running, waiting, completed, failed, cancelled, parked).
        #[arg(long)]
        status: Vec<String>,
        /// Only this workflow.
        #[arg(long, short = 'w')]
        workflow: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Only those updated at or after this time (RFC 3339 in UTC, or
        /// epoch milliseconds).
        #[arg(long, value_name = "TIME")]
        updated_after: Option<String>,
        /// Only those updated before this time.
        #[arg(long, value_name = "TIME")]
        updated_before: Option<String>,
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show an execution's journal, one line per entry.
    History {
        /// Execution id.
        id: String,
        /// An earlier run (after continue-as-new); default: the current one.
        #[arg(long)]
        run: Option<u32>,
        /// As a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Ask a running execution a query (a handler its workflow registered
    /// with ctx.on_query); nothing is written.
    Query {
        /// Execution id.
        id: String,
        /// Query name.
        name: String,
        /// Arguments as JSON, or @file.json.
        #[arg(default_value = "null")]
        args: String,
    },
    /// Replay stored journals of the component's workflows against it, before
    /// promoting it: exit 0 if every one is compatible, 1 if any diverges.
    ReplayCheck {
        /// The new component (.wasm).
        component: PathBuf,
        /// Only this workflow (default: every workflow the component holds).
        #[arg(long, short = 'w')]
        workflow: Option<String>,
        /// Check at most this many executions per workflow, most recent first.
        #[arg(long, default_value_t = 100)]
        sample: usize,
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show what a component holds: workflows, activities, hash, WIT version.
    Inspect {
        /// The component (.wasm).
        component: PathBuf,
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Compile components ahead of time into `.cwasm` files named for the
    /// machine that will run them (e.g. the arm64 Lambda function's, from an
    /// x86_64 machine): a runtime on that triple finds them in its
    /// precompiled directory (`CAIRN_COMPONENTS_DIR`) and skips compiling.
    /// Each file is checked: loaded by this machine's sandbox for its own
    /// triple; for another, checked against wasmtime's settings for it.
    Precompile {
        /// Target triple of the machine that runs them (default: this
        /// machine's), e.g. aarch64-unknown-linux-gnu.
        #[arg(long)]
        target: Option<String>,
        /// Directory to write them into (beside the `.wasm` files).
        #[arg(long)]
        out: PathBuf,
        /// The components (.wasm).
        #[arg(required = true)]
        components: Vec<PathBuf>,
        /// One JSON object per component.
        #[arg(long)]
        json: bool,
    },
    /// Store a component and point its workflows at it for new executions.
    Register {
        /// The component (.wasm).
        component: PathBuf,
    },
    /// Manage the DynamoDB table (local use; deploy with infra/ in AWS).
    Table {
        #[command(subcommand)]
        action: TableAction,
    },
    /// Serve the client API (POST /api, docs/api.md), a web console (/)
    /// and /metrics over this store, firing timers and retries at their
    /// time and resuming interrupted executions, until Ctrl-C.
    Dev {
        /// Port to listen on.
        #[arg(long, default_value_t = 7233)]
        port: u16,
        /// Address to listen on (another than 127.0.0.1 exposes the API,
        /// which has no authentication, to the network).
        #[arg(long, default_value = "127.0.0.1")]
        bind: std::net::IpAddr,
        /// Look only: refuse start, signal and cancel, and write nothing
        /// (no timers fired, nothing resumed). For a production table.
        #[arg(long)]
        read_only: bool,
        /// Send OpenTelemetry traces (one span per advance and per activity
        /// attempt) to this OTLP/HTTP collector, e.g. http://localhost:4318
        /// (Jaeger, the OpenTelemetry Collector). Service name:
        /// OTEL_SERVICE_NAME, else cairn-dev.
        #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", value_name = "URL")]
        otlp_endpoint: Option<String>,
        #[command(flatten)]
        activities: ActivityArgs,
    },
    /// The components stored in the store: what needs each, and the
    /// removal of those nothing needs.
    Components {
        #[command(subcommand)]
        action: ComponentsAction,
    },
}

#[derive(Subcommand, Debug)]
enum ComponentsAction {
    /// Every stored component: size, the workflows pointing at it, the
    /// unfinished executions pinned to it.
    List {
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Find the components no workflow points at and no unfinished
    /// execution (running, waiting, parked) is pinned to; a dry run unless
    /// --apply. Finished executions pin nothing: status and history read
    /// their journals only. Reads the whole store (on DynamoDB, table
    /// scans): run it between deploys.
    Gc {
        /// Delete the removable components (pins are checked again right
        /// before each delete).
        #[arg(long)]
        apply: bool,
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum TableAction {
    /// Create the table (keys, indexes, stream, TTL as infra/ declares them),
    /// and the payload bucket when --payload-bucket names one.
    Create,
    /// Check the table has Cairn's schema.
    Check,
}

/// Exit codes.
mod exit {
    pub const OK: u8 = 0;
    pub const FAILED: u8 = 1;
    pub const ERROR: u8 = 2;
    pub const PARKED: u8 = 3;
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(&cli.global);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::ERROR);
        }
    };
    match rt.block_on(dispatch(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {}", render::error_chain(&e));
            ExitCode::from(exit::ERROR)
        }
    }
}

fn init_tracing(g: &Global) {
    let default = match (g.quiet, g.verbose) {
        (true, _) => "error",
        (_, 0) => "warn",
        (_, 1) => "info,wasmtime=warn,cranelift=warn",
        _ => "debug,wasmtime=info,cranelift=info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    // One JSON object per line (for `cairn dev` under a log collector).
    let _ = match std::env::var("CAIRN_LOG_FORMAT").as_deref() {
        Ok("json") => logs.json().try_init(),
        _ => logs.try_init(),
    };
}

struct Ctx {
    global: Global,
    engine: Engine,
    printer: Arc<render::Printer>,
}

fn parse_json_arg(what: &str, raw: &str) -> Result<Payload> {
    let text = match raw.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {what} from {path}"))?,
        None => raw.to_string(),
    };
    serde_json::from_str::<serde_json::Value>(&text).map_err(|e| {
        anyhow!(
            "{} {what} is not valid JSON ({e}); example: --input '{{\"name\": \"alice\"}}'",
            cairn_core::ErrorCode::BadInput
        )
    })?;
    Ok(Payload::from(text.trim()))
}

fn parse_id(raw: &str) -> Result<ExecutionId> {
    ExecutionId::new(raw).map_err(|e| anyhow!("{} {e}", cairn_core::ErrorCode::BadInput))
}

async fn open_store(global: &Global) -> Result<Arc<dyn cairn_core::Store>> {
    Ok(match global.store.as_str() {
        "dynamodb" => {
            let threshold = cairn_store_dynamodb::check_payload_threshold(
                &global.payload_threshold.to_string(),
            )?;
            let mut store = cairn_store_dynamodb::DynamoStore::connect(&global.table)
                .await?
                .with_payload_threshold(threshold);
            if let Some(bucket) = global
                .payload_bucket
                .as_deref()
                .filter(|b| !b.trim().is_empty())
            {
                store = store.with_payload_bucket(bucket.trim());
            }
            Arc::new(store)
        }
        _ => Arc::new(SqliteStore::open(&global.db)?),
    })
}

async fn build(global: &Global, skip_time: bool, activities: &ActivityArgs) -> Result<Ctx> {
    let store = open_store(global).await?;
    let cache_dir = global
        .cache_dir
        .clone()
        .unwrap_or_else(|| global.db.parent().unwrap_or(Path::new(".")).join("cache"));
    let mut config = SandboxConfig {
        cache_dir: Some(cache_dir),
        ..SandboxConfig::default()
    };
    for d in &activities.dirs {
        let (host, guest) = d.split_once(':').unwrap_or((d, d));
        let host = PathBuf::from(host);
        if !host.is_dir() {
            bail!(
                "{} --dir {d}: {} is not a directory",
                cairn_core::ErrorCode::BadInput,
                host.display()
            );
        }
        config.activity_dirs.push((host, guest.to_string()));
    }
    for kv in &activities.envs {
        let (k, v) = kv.split_once('=').ok_or_else(|| {
            anyhow!(
                "{} --env {kv}: expected KEY=VALUE",
                cairn_core::ErrorCode::BadInput
            )
        })?;
        config.activity_env.push((k.into(), v.into()));
    }
    config.http_allow = HttpAllowList::parse(&activities.allow_http)
        .map_err(|e| anyhow!("{} {e}", cairn_core::ErrorCode::BadInput))?;
    config.http_roots = activities.http_extra_roots.clone();
    let sandbox = Arc::new(Sandbox::new(config)?);
    let clock: Arc<dyn Clock> = if skip_time {
        Arc::new(SimClock::new(Timestamp::now_system()))
    } else {
        Arc::new(SystemClock)
    };
    let printer = Arc::new(render::Printer::new(global.quiet));
    let config = EngineConfig::default();
    let engine = Engine::new(sandbox, store, clock, config).with_observer(printer.clone());
    Ok(Ctx {
        global: global.clone(),
        engine,
        printer,
    })
}

fn read_component(path: &Path) -> Result<ComponentBytes> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read the component {}", path.display()))?;
    Ok(ComponentBytes::new(bytes))
}

async fn dispatch(cli: Cli) -> Result<u8> {
    let g = cli.global;
    if let Some(function) = &g.function
        && !matches!(
            cli.command,
            Command::Inspect { .. } | Command::Precompile { .. }
        )
    {
        return remote::dispatch(function, cli.command, g.quiet).await;
    }
    match cli.command {
        Command::Run {
            component,
            start,
            skip_time,
            activities,
            json,
        } => {
            let ctx = build(&g, skip_time, &activities).await?;
            let id = start_execution(&ctx, Some(&component), &start).await?;
            let outcome = drive(&ctx, &id, AdvanceOptions::default(), true).await?;
            finish(&ctx, &id, outcome, json).await
        }
        Command::Start {
            component,
            start,
            wait_ms,
            activities,
            json,
        } => {
            if wait_ms.is_some() {
                bail!(
                    "{} --wait-ms is for --function: here the start advances the execution until it waits, in this process",
                    cairn_core::ErrorCode::BadInput
                );
            }
            let ctx = build(&g, false, &activities).await?;
            let id = start_execution(&ctx, component.as_deref(), &start).await?;
            let outcome = ctx.engine.advance(&id, AdvanceOptions::default()).await?;
            finish(&ctx, &id, outcome, json).await
        }
        Command::Signal {
            id,
            name,
            payload,
            no_advance,
            idempotency_key,
            activities,
        } => {
            let ctx = build(&g, false, &activities).await?;
            let id = parse_id(&id)?;
            let payload = parse_json_arg("the payload", &payload)?;
            match idempotency_key {
                Some(key) => match ctx.engine.signal_once(&id, &name, payload, &key).await? {
                    Some(_) => ctx.printer.note(&format!(
                        "signal '{name}' delivered to {id} (inbox item signal.{key})"
                    )),
                    None => ctx.printer.note(&format!(
                        "signal '{name}' was already delivered to {id} under this key: nothing sent"
                    )),
                },
                None => {
                    let item = ctx.engine.signal(&id, &name, payload).await?;
                    ctx.printer.note(&format!(
                        "signal '{name}' delivered to {id} (inbox item {})",
                        item.id
                    ));
                }
            }
            if no_advance {
                return Ok(exit::OK);
            }
            let outcome = ctx.engine.advance(&id, AdvanceOptions::default()).await?;
            finish(&ctx, &id, outcome, false).await
        }
        Command::Cancel {
            id,
            reason,
            activities,
        } => {
            let ctx = build(&g, false, &activities).await?;
            let id = parse_id(&id)?;
            ctx.engine.cancel(&id, &reason).await?;
            ctx.printer.note(&format!("cancel requested for {id}"));
            let outcome = ctx.engine.advance(&id, AdvanceOptions::default()).await?;
            finish(&ctx, &id, outcome, false).await
        }
        Command::Resume {
            id,
            skip_time,
            component,
            no_wait,
            activities,
            json,
        } => {
            let ctx = build(&g, skip_time, &activities).await?;
            let id = parse_id(&id)?;
            ctx.engine.load(&id).await?;
            let mut opts = AdvanceOptions::default();
            if let Some(path) = component {
                let bytes = read_component(&path)?;
                let loaded = ctx.engine.add_component(bytes).await?;
                ctx.printer.note(&format!(
                    "replaying {id} against component {}",
                    loaded.hash.short()
                ));
                opts.component = Some(loaded.hash.clone());
            }
            let outcome = drive(&ctx, &id, opts, !no_wait).await?;
            finish(&ctx, &id, outcome, json).await
        }
        Command::Wake {
            skip_time,
            activities,
        } => {
            let ctx = build(&g, skip_time, &activities).await?;
            let now = if skip_time {
                Timestamp::from_millis(u64::MAX)
            } else {
                ctx.engine.clock().now()
            };
            let due = ctx.engine.store().due(now, 1000).await?;
            if due.is_empty() {
                ctx.printer.note("nothing is due");
            }
            let mut code = exit::OK;
            for (id, at) in due {
                ctx.printer.note(&format!("waking {id} (due {at})"));
                if skip_time {
                    ctx.engine.clock().sleep_until(at).await;
                }
                let outcome = ctx.engine.advance(&id, AdvanceOptions::default()).await?;
                code = code.max(finish(&ctx, &id, outcome, false).await?);
            }
            Ok(code)
        }
        Command::Status { id, json } => {
            let ctx = build(&g, false, &ActivityArgs::default()).await?;
            let ex = ctx.engine.load(&parse_id(&id)?).await?;
            render::status(&ex, json);
            Ok(exit::OK)
        }
        Command::List {
            status,
            workflow,
            limit,
            updated_after,
            updated_before,
            json,
        } => {
            let ctx = build(&g, false, &ActivityArgs::default()).await?;
            let status = status
                .iter()
                .map(|s| Status::parse(s).ok_or_else(|| anyhow!("{} unknown status '{s}' (running, waiting, completed, failed, cancelled, parked)", cairn_core::ErrorCode::BadInput)))
                .collect::<Result<Vec<_>>>()?;
            let after = remote::time_arg("--updated-after", updated_after)?;
            let before = remote::time_arg("--updated-before", updated_before)?;
            let timed = after.is_some() || before.is_some();
            let mut list = ctx
                .engine
                .list(ListFilter {
                    status,
                    workflow,
                    // With a time filter, filter all, then take `limit`.
                    limit: if timed { 0 } else { limit },
                })
                .await?;
            list.retain(|m| {
                after.is_none_or(|a| m.updated_at >= a.0)
                    && before.is_none_or(|b| m.updated_at < b.0)
            });
            list.truncate(limit);
            render::list(&list, json);
            Ok(exit::OK)
        }
        Command::History { id, run, json } => {
            let ctx = build(&g, false, &ActivityArgs::default()).await?;
            let mut ex = ctx.engine.load(&parse_id(&id)?).await?;
            if let Some(run) = run.filter(|r| *r != ex.meta.run) {
                if run == 0 || run > ex.meta.run {
                    bail!(
                        "{} execution {id} has runs 1 to {}",
                        cairn_core::ErrorCode::BadInput,
                        ex.meta.run
                    );
                }
                ex.journal = ctx.engine.store().load_run(&ex.meta.id, run).await?;
                ex.inbox.clear();
            }
            render::history(&ex, json);
            Ok(exit::OK)
        }
        Command::Query { id, name, args } => {
            let ctx = build(&g, false, &ActivityArgs::default()).await?;
            let args = parse_json_arg("the query's arguments", &args)?;
            match ctx.engine.query(&parse_id(&id)?, &name, args).await? {
                Ok(answer) => {
                    println!("{}", String::from_utf8_lossy(answer.as_bytes()));
                    Ok(exit::OK)
                }
                Err(failure) => {
                    eprintln!("✘ query '{name}' failed: {failure}");
                    Ok(exit::FAILED)
                }
            }
        }
        Command::ReplayCheck {
            component,
            workflow,
            sample,
            json,
        } => {
            let ctx = build(&g, false, &ActivityArgs::default()).await?;
            let loaded = ctx
                .engine
                .add_component(read_component(&component)?)
                .await?;
            let workflows: Vec<String> = match workflow {
                Some(w) => {
                    loaded.check_workflow(&w)?;
                    vec![w]
                }
                None => loaded.info.workflows.clone(),
            };
            let mut results = Vec::new();
            for w in &workflows {
                let list = ctx
                    .engine
                    .list(ListFilter {
                        status: vec![],
                        workflow: Some(w.clone()),
                        limit: sample,
                    })
                    .await?;
                for meta in list {
                    let outcome = ctx.engine.replay(&meta.id, Some(&loaded.hash)).await?;
                    results.push((meta, outcome));
                }
            }
            Ok(render::replay_check(
                &component,
                &loaded.hash,
                &results,
                json,
            ))
        }
        Command::Inspect { component, json } => {
            let bytes = read_component(&component)?;
            // With --cache-dir, this also leaves `<hash>-<engine>.cwasm` there
            // (for this machine; `cairn precompile` for another).
            let sandbox = Sandbox::new(SandboxConfig {
                cache_dir: g.cache_dir.clone(),
                ..SandboxConfig::default()
            })?;
            let loaded = sandbox.load(&bytes).await?;
            render::inspect(&component, &loaded, json);
            Ok(exit::OK)
        }
        Command::Precompile {
            target,
            out,
            components,
            json,
        } => precompile(target, &out, &components, json).await,
        Command::Table { action } => {
            let store = cairn_store_dynamodb::DynamoStore::connect_unchecked(&g.table).await;
            match action {
                TableAction::Create => {
                    if cairn_store_dynamodb::create_table(store.client(), store.table()).await? {
                        println!("created table {}", store.table());
                    } else {
                        println!("table {} already exists with Cairn's schema", store.table());
                    }
                    if let Some(bucket) =
                        g.payload_bucket.as_deref().filter(|b| !b.trim().is_empty())
                    {
                        let store = store.with_payload_bucket(bucket.trim());
                        if store.create_payload_bucket().await? {
                            println!("created payload bucket {}", bucket.trim());
                        } else {
                            println!("payload bucket {} already exists", bucket.trim());
                        }
                    }
                }
                TableAction::Check => {
                    store.check().await?;
                    println!("table {} is a Cairn table", store.table());
                }
            }
            Ok(exit::OK)
        }
        Command::Dev {
            port,
            bind,
            read_only,
            otlp_endpoint,
            activities,
        } => {
            if let Some(e) = &otlp_endpoint {
                // A bad URL is refused before anything starts.
                cairn_dev::otel::traces_url(e)?;
            }
            let ctx = build(&g, false, &activities).await?;
            let config = cairn_dev::DevConfig {
                addr: std::net::SocketAddr::new(bind, port),
                read_only,
                store_label: match g.store.as_str() {
                    "dynamodb" => format!("dynamodb table {}", g.table),
                    _ => format!("sqlite {}", g.db.display()),
                },
                otlp_endpoint,
                ..Default::default()
            };
            let engine = &ctx.engine;
            cairn_dev::serve(
                engine.sandbox().clone(),
                engine.store().clone(),
                config,
                |addr| eprintln!("cairn dev: console and API on http://{addr}/ (API: POST /api; Ctrl-C stops)"),
                shutdown_signal(),
            )
            .await?;
            Ok(exit::OK)
        }
        Command::Components { action } => {
            let ctx = build(&g, false, &ActivityArgs::default()).await?;
            match action {
                ComponentsAction::List { json } => {
                    render::components(&ctx.engine.components_gc(false).await?, false, json);
                }
                ComponentsAction::Gc { apply, json } => {
                    render::components(&ctx.engine.components_gc(apply).await?, true, json);
                }
            }
            Ok(exit::OK)
        }
        Command::Register { component } => {
            let ctx = build(&g, false, &ActivityArgs::default()).await?;
            let loaded = ctx.engine.register(read_component(&component)?).await?;
            println!(
                "registered {} ({}) for workflows: {}",
                loaded.hash.short(),
                component.display(),
                loaded.info.workflows.join(", ")
            );
            Ok(exit::OK)
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// `cairn precompile`: writes and checks each component's `.cwasm`.
async fn precompile(
    target: Option<String>,
    out: &Path,
    components: &[PathBuf],
    json: bool,
) -> Result<u8> {
    let host = cairn_host::host_target();
    let target = target.unwrap_or_else(|| host.clone());
    let config = SandboxConfig::default();
    let pre = cairn_host::Precompiler::new(&config, &target)?;
    // For this machine's triple, the check is the runtime's own: a sandbox
    // that finds the file in its precompiled directory must load it.
    let sandbox = match target == host {
        true => Some(Sandbox::new(SandboxConfig {
            precompiled_dirs: vec![out.to_path_buf()],
            ..config.clone()
        })?),
        false => None,
    };
    for path in components {
        let component = read_component(path)?;
        let started = std::time::Instant::now();
        let file = pre.write(&component, out)?;
        let compile_ms = started.elapsed().as_secs_f64() * 1e3;
        let written =
            std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
        pre.check(&written)
            .map_err(|e| anyhow!("{} fails its check: {e}", file.display()))?;
        let check = match &sandbox {
            Some(s) => {
                let loaded = s.load(&component).await?;
                if !loaded.from_cache {
                    bail!(
                        "{} was not accepted by this machine's sandbox (see the warning above)",
                        file.display()
                    );
                }
                format!(
                    "loaded by this machine's sandbox in {:.1} ms",
                    loaded.load_time.as_secs_f64() * 1e3
                )
            }
            None => format!(
                "a wasmtime component for {target}, with the runtime's engine settings for it"
            ),
        };
        if json {
            println!(
                "{}",
                serde_json::json!({
                    "component": path.display().to_string(), "hash": component.hash,
                    "cwasm": file.display().to_string(), "target": target,
                    "engine_tag": pre.engine_tag(), "bytes": written.len(),
                    "compile_ms": compile_ms, "accepted": true, "check": check,
                })
            );
        } else {
            println!(
                "wrote {} ({target}, {} bytes, {compile_ms:.0} ms) from {}: {check}",
                file.display(),
                written.len(),
                path.display()
            );
        }
    }
    Ok(exit::OK)
}

async fn start_execution(
    ctx: &Ctx,
    component: Option<&Path>,
    start: &StartArgs,
) -> Result<ExecutionId> {
    let input = parse_json_arg("--input", &start.input)?;
    let hash: Option<ComponentHash> = match component {
        Some(path) => Some(
            ctx.engine
                .add_component(read_component(path)?)
                .await?
                .hash
                .clone(),
        ),
        None => None,
    };
    let id = match &start.id {
        Some(id) => parse_id(id)?,
        None => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            ExecutionId::generate(
                &start.workflow,
                Timestamp::now_system(),
                u64::from(nanos) ^ u64::from(std::process::id()) << 20,
            )
        }
    };
    let started = ctx
        .engine
        .start(StartRequest {
            workflow: start.workflow.clone(),
            id: id.clone(),
            input,
            component: hash,
            parent: None,
        })
        .await?;
    if started.created {
        ctx.printer.note(&format!(
            "▶ {id}: workflow {} on component {} (store {})",
            started.meta.workflow,
            started.meta.component.short(),
            match ctx.global.store.as_str() {
                "dynamodb" => format!("dynamodb table {}", ctx.global.table),
                _ => ctx.global.db.display().to_string(),
            }
        ));
    } else {
        ctx.printer.note(&format!(
            "▶ {id} already exists with this input ({}): continuing it",
            started.meta.status
        ));
    }
    Ok(id)
}

/// Drives to the end; if `watch`, waits for signals by watching the inbox.
async fn drive(
    ctx: &Ctx,
    id: &ExecutionId,
    opts: AdvanceOptions,
    watch: bool,
) -> Result<Advance, EngineError> {
    let mut opts = opts;
    loop {
        let r = ctx.engine.advance(id, opts.clone()).await?;
        opts.component = None;
        match &r {
            Advance::Suspended {
                wake_at,
                waiting_on,
            } => {
                // This process drives the execution and its children: the
                // next wake of any of them (with --skip-time: at once).
                let next = next_wake_in_family(ctx, id).await?.or(*wake_at);
                match next {
                    Some(t) => {
                        ctx.engine.clock().sleep_until(t).await;
                        wake_family(ctx, id).await?;
                    }
                    None if watch => {
                        ctx.printer.note(&format!(
                            "… {id} waits for {waiting_on}: send it from another terminal with `cairn signal <id> <name> '<json>'`"
                        ));
                        wait_for_inbox(ctx, id).await?;
                    }
                    None => return Ok(r),
                }
            }
            Advance::Yielded => {}
            Advance::Conflict { .. } if watch => {
                // Another process (a `cairn signal`) is advancing it: follow.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            _ => return Ok(r),
        }
    }
}

/// The execution and the children it still waits for, transitively.
async fn family(
    ctx: &Ctx,
    id: &ExecutionId,
) -> Result<Vec<cairn_core::ExecutionMeta>, EngineError> {
    let mut out = Vec::new();
    let mut todo = vec![id.clone()];
    while let Some(next) = todo.pop() {
        let ex = ctx.engine.load(&next).await?;
        let done: std::collections::HashSet<u32> = ex
            .journal
            .iter()
            .filter(|e| matches!(e.event, cairn_core::Event::ChildCompleted { .. }))
            .filter_map(|e| e.event.seq())
            .collect();
        for e in &ex.journal {
            if let cairn_core::Event::ChildStarted { seq, child_id, .. } = &e.event
                && !done.contains(seq)
            {
                todo.push(child_id.clone());
            }
        }
        out.push(ex.meta);
    }
    Ok(out)
}

async fn next_wake_in_family(
    ctx: &Ctx,
    id: &ExecutionId,
) -> Result<Option<Timestamp>, EngineError> {
    Ok(family(ctx, id)
        .await?
        .iter()
        .filter(|m| m.status == Status::Waiting)
        .filter_map(|m| m.wake_at)
        .min())
}

/// Advances the family members whose wake has come.
async fn wake_family(ctx: &Ctx, id: &ExecutionId) -> Result<(), EngineError> {
    let now = ctx.engine.clock().now();
    for m in family(ctx, id).await? {
        if &m.id != id && m.status == Status::Waiting && m.wake_at.is_some_and(|t| t <= now) {
            ctx.engine.advance(&m.id, AdvanceOptions::default()).await?;
        }
    }
    Ok(())
}

/// Local-only convenience: polls the SQLite file for an inbox change (the
/// product's push path needs no polling: see `cairn signal`, and the Lambda
/// host's stream trigger).
async fn wait_for_inbox(ctx: &Ctx, id: &ExecutionId) -> Result<(), EngineError> {
    let start = ctx.engine.store().meta(id).await?;
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = ctx.engine.store().meta(id).await?;
        if now.inbox_version != start.inbox_version
            || now.status != start.status
            || now.updated_at != start.updated_at
        {
            return Ok(());
        }
    }
}

async fn finish(ctx: &Ctx, id: &ExecutionId, outcome: Advance, json: bool) -> Result<u8> {
    let elapsed = ctx.printer.elapsed();
    let code = match &outcome {
        Advance::Finished {
            status: Status::Completed,
            ..
        } => exit::OK,
        Advance::Finished { .. } => exit::FAILED,
        Advance::Parked(_) => exit::PARKED,
        _ => exit::OK,
    };
    if json {
        let ex = ctx.engine.load(id).await?;
        println!(
            "{}",
            serde_json::to_string_pretty(&render::status_json(&ex)).expect("json")
        );
    } else {
        render::outcome(id, &outcome, elapsed, ctx.global.quiet);
    }
    Ok(code)
}
