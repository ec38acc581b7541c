//! The command line's clap types: the global options, the commands and
//! their arguments.

use cairn_core::Status;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Durable workflows as WebAssembly components.
#[derive(Parser, Debug)]
#[command(name = "cairn", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// `--store`: where executions live.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// The embedded SQLite file (--db).
    Sqlite,
    /// A DynamoDB table (--table).
    Dynamodb,
}

/// `--status`: one of core's status names (its strum table, so the list in
/// `--help` and the parse never drift from [`Status`]).
fn status_parser() -> impl TypedValueParser<Value = Status> {
    PossibleValuesParser::new(<Status as strum::VariantNames>::VARIANTS)
        .map(|s| Status::parse(&s).expect("a possible value is a status name"))
}

#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Store kind: the embedded SQLite file, or a DynamoDB table (region,
    /// credentials and endpoint from the AWS environment variables).
    #[arg(long, global = true, env = "CAIRN_STORE", value_enum, default_value_t = StoreKind::Sqlite)]
    pub store: StoreKind,
    /// A deployed Cairn function (name, ARN or alias ARN): start, signal,
    /// query, cancel, status, history and list go through its client API,
    /// with the AWS environment's credentials; nothing runs on this
    /// machine. Without it, this process drives executions in --store.
    #[arg(long, global = true, env = "CAIRN_FUNCTION", value_name = "NAME|ARN")]
    pub function: Option<String>,
    /// DynamoDB table (with --store dynamodb).
    #[arg(long, global = true, env = "CAIRN_TABLE", default_value = "cairn")]
    pub table: String,
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
    pub payload_bucket: Option<String>,
    /// Payloads over this many bytes go to --payload-bucket (1 to 400000).
    #[arg(long, global = true, env = "CAIRN_PAYLOAD_THRESHOLD_BYTES", value_name = "BYTES", default_value_t = cairn_store_dynamodb::DEFAULT_PAYLOAD_THRESHOLD)]
    pub payload_threshold: usize,
    /// SQLite store file.
    #[arg(
        long,
        global = true,
        env = "CAIRN_DB",
        default_value = ".cairn/cairn.db"
    )]
    pub db: PathBuf,
    /// Directory for precompiled components (default: `cache/` beside the db).
    #[arg(long, global = true, env = "CAIRN_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// More logs (-v info, -vv debug). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Print only results.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

#[derive(Args, Debug, Clone, Default)]
pub struct ActivityArgs {
    /// Grant activities a host directory: HOST[:GUEST] (GUEST defaults to HOST).
    #[arg(long = "dir", value_name = "HOST[:GUEST]")]
    pub dirs: Vec<String>,
    /// Give activities an environment variable: KEY=VALUE.
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub envs: Vec<String>,
    /// Let activities send HTTP requests (wasi:http) to HOST[:PORT]
    /// (repeatable or comma-separated; `*.example.com` for subdomains, `*`
    /// for any host). Other hosts are refused.
    #[arg(
        long = "allow-http",
        value_name = "HOST[:PORT]",
        env = "CAIRN_ALLOW_HTTP",
        value_delimiter = ','
    )]
    pub allow_http: Vec<String>,
    /// Trust the root certificates of this PEM file for activities' HTTPS
    /// requests, besides the system's (a private CA; repeatable).
    #[arg(
        long = "http-extra-roots",
        value_name = "PEM",
        env = "CAIRN_HTTP_EXTRA_ROOTS"
    )]
    pub http_extra_roots: Vec<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct StartArgs {
    /// Workflow name (see `cairn inspect`).
    #[arg(long, short = 'w')]
    pub workflow: String,
    /// Input as JSON, or @file.json.
    #[arg(long, short = 'i', default_value = "null")]
    pub input: String,
    /// Execution id (default: generated). Starting an existing id with the
    /// same input returns that execution.
    #[arg(long)]
    pub id: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
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
        /// Only this status (repeat the option for several).
        #[arg(long, value_parser = status_parser())]
        status: Vec<Status>,
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
pub enum ComponentsAction {
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
pub enum TableAction {
    /// Create the table (keys, indexes, stream, TTL as infra/ declares them),
    /// and the payload bucket when --payload-bucket names one.
    Create,
    /// Check the table has Cairn's schema.
    Check,
}
