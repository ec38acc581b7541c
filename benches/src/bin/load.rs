//! `cairn-load`: the load model and the cost per step on DynamoDB (issue 17).
//!
//! **Measured.** The real Lambda host (`cairn_lambda::App`, its store, its
//! Scheduler client) runs swap sagas and timer workflows (testkit `nap`:
//! start, suspend on a timer, wake) against DynamoDB Local and moto, each
//! through an accounting proxy started here. The DynamoDB proxy adds
//! `ReturnConsumedCapacity: INDEXES` to every request and records, per
//! request, the operation, the partition keys it names and the capacity
//! DynamoDB Local reports for the table and for each index (its own
//! accounting: 1 KB write units, 4 KB read units, transactions doubled, an
//! index key change a delete and a put). The Scheduler proxy counts
//! CreateSchedule/DeleteSchedule calls. The sweep is measured once.
//!
//! **Modelled** (a virtual clock, second by second): `--rate` swap-saga
//! starts per second with ids `swap-<second>-<n>`, each charged one measured
//! execution's requests (a swap saga finishes within its start invocation,
//! well under a second, so all of it lands in its start second), and
//! `--timers` waiting timers, which by Little's law are set and fire at
//! `timers / --timer-wait-s` per second, each charged a measured timer's
//! requests. Each request's capacity goes to the keys it touches: the
//! execution's own partition (`exec#<id>`, distinct per execution), the
//! shared keys it names (`workflow#swap`, `cairn#table`, ...), and for index
//! writes the execution's index shard (`shard_of(id, N)`): every status of
//! one shard is counted as one key, an upper bound on any `<status>#<shard>`
//! key. The hottest key per second of the table and of each index is the
//! figure, against DynamoDB's per-key limits (1,000 WCU/s, 3,000 RCU/s).
//!
//! **Cost.** The measured swap saga's capacity and requests, plus Lambda
//! (one request per start; GB-seconds from the handler's measured time on
//! this machine, not arm64 Lambda's) and Scheduler invocations, priced at
//! the issue's list prices, per million steps (journal entries).

#[path = "../../../runtime/store-dynamodb/tests/faults/http1.rs"]
mod http1;
use anyhow::{Context, Result, bail};
use bytes::Bytes;
use cairn_core::Store;
use clap::Parser;
use http1::{Sender, canonical_reason, forward, read_request, write_reply};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};

#[derive(Parser, Debug)]
#[command(about = "Cairn's load model and cost per step on DynamoDB (issue 17)")]
struct Args {
    /// DynamoDB Local's address (host:port or URL).
    #[arg(long)]
    upstream_dynamodb: String,
    /// moto's address, for EventBridge Scheduler.
    #[arg(long)]
    upstream_scheduler: String,
    /// Port of the DynamoDB accounting proxy (AWS_ENDPOINT_URL_DYNAMODB
    /// must point at it).
    #[arg(long)]
    dynamodb_port: u16,
    /// Port of the Scheduler counting proxy (AWS_ENDPOINT_URL_SCHEDULER).
    #[arg(long)]
    scheduler_port: u16,
    /// Swap sagas measured.
    #[arg(long, default_value_t = 40)]
    runs: usize,
    /// Timer workflows measured.
    #[arg(long, default_value_t = 10)]
    timer_runs: usize,
    /// Modelled swap-saga starts per second.
    #[arg(long, default_value_t = 10_000)]
    rate: u64,
    /// Modelled waiting timers.
    #[arg(long, default_value_t = 1_000_000)]
    timers: u64,
    /// Mean wait of a modelled timer (s).
    #[arg(long, default_value_t = 3600)]
    timer_wait_s: u64,
    /// Virtual seconds modelled.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Index shards (CAIRN_INDEX_SHARDS).
    #[arg(long, default_value_t = cairn_store_dynamodb::DEFAULT_INDEX_SHARDS)]
    shards: u32,
    /// Function memory (MB) for GB-seconds.
    #[arg(long, default_value_t = 512)]
    memory_mb: u64,
    /// Write the figures as JSON here.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

// ---- the accounting proxy ---------------------------------------------------

/// One DynamoDB request as the proxy saw it.
#[derive(Debug, Clone)]
struct Rec {
    op: String,
    /// Base-table partition keys named (one per transaction item).
    pks: Vec<String>,
    /// The index and key value a Query on an index read.
    index_read: Option<(String, String)>,
    /// Capacity of the table, and of each index.
    table: f64,
    indexes: BTreeMap<String, f64>,
}

impl Rec {
    fn is_write(&self) -> bool {
        matches!(
            self.op.as_str(),
            "PutItem" | "UpdateItem" | "DeleteItem" | "TransactWriteItems" | "BatchWriteItem"
        )
    }
}

#[derive(Default)]
struct Log {
    dynamodb: Vec<Rec>,
    scheduler: BTreeMap<String, u64>,
}

type Shared = Arc<Mutex<Log>>;

const CAPACITY_OPS: [&str; 9] = [
    "GetItem",
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "Query",
    "Scan",
    "TransactWriteItems",
    "BatchGetItem",
    "BatchWriteItem",
];

fn s_of(v: &Value) -> Option<String> {
    v.get("S").and_then(Value::as_str).map(str::to_owned)
}

/// The partition keys a request names.
fn pks_of(op: &str, req: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut from = |item: Option<&Value>| {
        if let Some(pk) = item.and_then(|i| i.get("pk")).and_then(s_of) {
            out.push(pk);
        }
    };
    match op {
        "TransactWriteItems" => {
            for t in req["TransactItems"].as_array().into_iter().flatten() {
                for (kind, field) in [
                    ("Put", "Item"),
                    ("Update", "Key"),
                    ("Delete", "Key"),
                    ("ConditionCheck", "Key"),
                ] {
                    from(t.get(kind).and_then(|k| k.get(field)));
                }
            }
        }
        // `:pk` is the store's name for the partition key's value.
        "Query" if req.get("IndexName").is_none() => {
            if let Some(pk) = req["ExpressionAttributeValues"].get(":pk").and_then(s_of) {
                out.push(pk);
            }
        }
        _ => {
            from(req.get("Key"));
            from(req.get("Item"));
        }
    }
    out
}

fn record(op: &str, req: &Value, resp: &Value) -> Rec {
    let index_read = req.get("IndexName").and_then(Value::as_str).map(|i| {
        let key = req["ExpressionAttributeValues"]
            .get(":k")
            .and_then(s_of)
            .unwrap_or_default();
        (i.to_owned(), key)
    });
    let mut rec = Rec {
        op: op.to_owned(),
        pks: pks_of(op, req),
        index_read,
        table: 0.0,
        indexes: BTreeMap::new(),
    };
    let caps: Vec<&Value> = match resp.get("ConsumedCapacity") {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(v) => vec![v],
        None => vec![],
    };
    for c in caps {
        rec.table += c["Table"]["CapacityUnits"].as_f64().unwrap_or(0.0);
        if let Some(g) = c["GlobalSecondaryIndexes"].as_object() {
            for (name, v) in g {
                *rec.indexes.entry(name.clone()).or_default() +=
                    v["CapacityUnits"].as_f64().unwrap_or(0.0);
            }
        }
    }
    rec
}

/// Serves one client connection: DynamoDB requests get
/// `ReturnConsumedCapacity: INDEXES` and are recorded; Scheduler requests
/// are counted by operation.
async fn serve(mut socket: TcpStream, upstream: String, log: Shared, dynamodb: bool) {
    let _ = socket.set_nodelay(true);
    let mut buf = Vec::new();
    let mut sender: Option<Sender> = None;
    while let Some(mut req) = read_request(&mut socket, &mut buf).await {
        let op = req
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("x-amz-target"))
            .map(|(_, v)| v.rsplit('.').next().unwrap_or(v).to_owned());
        let mut parsed = None;
        if dynamodb
            && let Some(op) = &op
            && CAPACITY_OPS.contains(&op.as_str())
            && let Ok(mut v) = serde_json::from_slice::<Value>(&req.body)
        {
            v["ReturnConsumedCapacity"] = json!("INDEXES");
            req.body = Bytes::from(serde_json::to_vec(&v).expect("json"));
            parsed = Some(v);
        }
        if !dynamodb {
            let what = match (req.method.as_str(), req.path.starts_with("/schedules/")) {
                ("POST", true) => "CreateSchedule",
                ("DELETE", true) => "DeleteSchedule",
                ("GET", true) => "GetSchedule",
                _ => "other",
            };
            *log.lock()
                .unwrap_or_else(|e| e.into_inner())
                .scheduler
                .entry(what.to_owned())
                .or_default() += 1;
        }
        let Some((status, headers, body)) = forward(&upstream, &mut sender, &req).await else {
            return;
        };
        if let (Some(op), Some(v)) = (&op, &parsed) {
            let resp: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            log.lock()
                .unwrap_or_else(|e| e.into_inner())
                .dynamodb
                .push(record(op, v, &resp));
        }
        if write_reply(
            &mut socket,
            status,
            canonical_reason(status),
            &headers,
            &body,
        )
        .await
        .is_err()
        {
            return;
        }
    }
}

async fn proxy(port: u16, upstream: &str, log: Shared, dynamodb: bool) -> Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
    let upstream = upstream
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(serve(socket, upstream.clone(), log.clone(), dynamodb));
        }
    });
    Ok(())
}

// ---- measuring --------------------------------------------------------------

/// What one measured execution (or sweep) sent.
#[derive(Debug, Clone, Default)]
struct Profile {
    recs: Vec<Rec>,
    scheduler: BTreeMap<String, u64>,
    handler: Duration,
    invocations: u64,
    steps: u64,
}

impl Profile {
    fn sum(&self, write: bool) -> (f64, BTreeMap<String, f64>) {
        let mut table = 0.0;
        let mut idx: BTreeMap<String, f64> = BTreeMap::new();
        for r in self.recs.iter().filter(|r| r.is_write() == write) {
            table += r.table;
            for (k, v) in &r.indexes {
                *idx.entry(k.clone()).or_default() += v;
            }
        }
        (table, idx)
    }

    fn requests(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for r in &self.recs {
            *out.entry(r.op.clone()).or_default() += 1;
        }
        out
    }
}

fn take(log: &Shared, from: (usize, BTreeMap<String, u64>)) -> Profile {
    let l = log.lock().unwrap_or_else(|e| e.into_inner());
    let mut scheduler = BTreeMap::new();
    for (k, v) in &l.scheduler {
        let d = v - from.1.get(k).copied().unwrap_or(0);
        if d > 0 {
            scheduler.insert(k.clone(), d);
        }
    }
    Profile {
        recs: l.dynamodb[from.0..].to_vec(),
        scheduler,
        ..Profile::default()
    }
}

fn mark(log: &Shared) -> (usize, BTreeMap<String, u64>) {
    let l = log.lock().unwrap_or_else(|e| e.into_inner());
    (l.dynamodb.len(), l.scheduler.clone())
}

const ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:cairn-load";

async fn call(app: &cairn_lambda::App, v: Value) -> Result<(Value, Duration)> {
    let t = Instant::now();
    let out = app
        .handle(v.clone(), ARN, None)
        .await
        .map_err(|e| anyhow::anyhow!("{v}: {e:?}"))?;
    Ok((out, t.elapsed()))
}

// ---- the model --------------------------------------------------------------

/// Per-key capacity in one virtual second.
#[derive(Default)]
struct Second {
    wcu: HashMap<String, f64>,
    rcu: HashMap<String, f64>,
}

impl Second {
    /// Charges `p`, one execution `id`, to the keys it touches. The
    /// measured execution's own keys (`exec#<measured id>`) become `id`'s.
    /// A read of a workflow pointer's copy (`wfcopy#<k>#<name>`) becomes
    /// copy `seq % POINTER_REPLICAS`: each instance reads the copies in
    /// turn, so across instances they share the starts evenly.
    fn charge(&mut self, p: &Profile, measured: &str, id: &str, shards: u32, seq: u64) {
        let eid = cairn_core::ExecutionId::new(id).expect("valid id");
        let shard = cairn_store_dynamodb::shard_of(&eid, shards);
        let own = format!("exec#{measured}");
        for r in &p.recs {
            let map = if r.is_write() {
                &mut self.wcu
            } else {
                &mut self.rcu
            };
            let n = r.pks.len().max(1) as f64;
            for pk in &r.pks {
                let key = if *pk == own {
                    format!("table:exec#{id}")
                } else if let Some(rest) = pk.strip_prefix("wfcopy#") {
                    let name = rest.split_once('#').map_or(rest, |(_, n)| n);
                    let k = seq % cairn_store_dynamodb::POINTER_REPLICAS;
                    format!("table:wfcopy#{k}#{name}")
                } else {
                    format!("table:{pk}")
                };
                *map.entry(key).or_default() += r.table / n;
            }
            if r.pks.is_empty() && r.index_read.is_none() {
                *map.entry("table:(scan)".into()).or_default() += r.table;
            }
            for (index, units) in &r.indexes {
                let key = match &r.index_read {
                    Some((i, k)) if i == index => format!("{index}:{k}"),
                    // An index write lands on the execution's shard (all
                    // statuses of the shard as one key: an upper bound).
                    _ => format!("{index}:shard {shard}"),
                };
                *map.entry(key).or_default() += units;
            }
        }
    }
}

/// The hottest key of `area` (`table`, or an index name) in `m`.
fn hottest<'a>(m: &'a HashMap<String, f64>, area: &str) -> (f64, &'a str) {
    m.iter()
        .filter(|(k, _)| k.split(':').next() == Some(area))
        .map(|(k, v)| (*v, k.as_str()))
        .fold((0.0, ""), |a, b| if b.0 > a.0 { b } else { a })
}

fn figure(name: &str, value: f64, unit: &str) {
    println!("figure: {name}={value:.4} {unit}");
}

/// Read units of one advance's load at step 1,000: a store that has not
/// seen the execution reads the whole run (each advance did, before the
/// journal cache); the store that wrote it reads the meta and what is new.
async fn reads_per_advance(sdk: &aws_config::SdkConfig, table: &str) -> Result<(f64, f64)> {
    use cairn_core::store::{Append, ExecutionMeta, NewExecution, Status};
    use cairn_core::{Entry, Event, ExecutionId, Payload, Timestamp};
    let warm = cairn_store_dynamodb::DynamoStore::from_sdk_config(sdk, table);
    let id = ExecutionId::new("reads-1000")?;
    let t0 = Timestamp::from_millis(1_767_225_600_000);
    let component = cairn_host::component_hash(&std::fs::read(cairn_test_artifacts::SWAP_SAGA)?);
    let started = Entry {
        index: 0,
        at: t0,
        event: Event::Started {
            workflow: "steps".into(),
            input: Payload::from("{}"),
            component: component.clone(),
            seed: 1,
            run: 1,
            parent: None,
        },
    };
    let meta = ExecutionMeta {
        id: id.clone(),
        workflow: "steps".into(),
        component,
        status: Status::Running,
        input_hash: cairn_core::input_hash(b"{}"),
        created_at: t0,
        updated_at: t0,
        inbox_version: 0,
        wake_at: None,
        due_at: None,
        waiting_on: None,
        parked: None,
        run: 1,
        lease: None,
    };
    warm.create(NewExecution { meta, started }).await?;
    let step = |index: u32| Append {
        run: 1,
        entry: Entry {
            index,
            at: t0,
            event: Event::ActivityCompleted {
                seq: index,
                name: "step".into(),
                input_hash: 1,
                attempts: 1,
                // A typical small result (the swap saga's are ~100 bytes).
                result: Ok(Payload::from(
                    format!("{{\"step\":{index},\"receipt\":\"{}\"}}", "r".repeat(80)).as_str(),
                )),
            },
        },
        consume: None,
        hold_until_heard: None,
    };
    for i in 1..1000 {
        warm.append(&id, step(i)).await?;
    }
    warm.load(&id).await?;
    let cold = cairn_store_dynamodb::DynamoStore::from_sdk_config(sdk, table);
    let u = cold.stats().read_units();
    cold.load(&id).await?;
    let before = cold.stats().read_units() - u;
    warm.append(&id, step(1000)).await?;
    let u = warm.stats().read_units();
    warm.load(&id).await?;
    let after = warm.stats().read_units() - u;
    Ok((before, after))
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    for (var, port) in [
        ("AWS_ENDPOINT_URL_DYNAMODB", args.dynamodb_port),
        ("AWS_ENDPOINT_URL_SCHEDULER", args.scheduler_port),
    ] {
        let want = format!("http://127.0.0.1:{port}");
        if std::env::var(var).ok().as_deref() != Some(want.as_str()) {
            bail!("{var} must be {want} (the proxy): run scripts/bench-load");
        }
    }
    let log: Shared = Arc::default();
    proxy(
        args.dynamodb_port,
        &args.upstream_dynamodb,
        log.clone(),
        true,
    )
    .await?;
    proxy(
        args.scheduler_port,
        &args.upstream_scheduler,
        log.clone(),
        false,
    )
    .await?;

    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "static",
        ))
        .load()
        .await;
    let table = format!("cairn-load-{}", std::process::id());
    let group = format!("cairn-load-{}", std::process::id());
    let store = cairn_store_dynamodb::DynamoStore::from_sdk_config(&sdk, &table);
    cairn_store_dynamodb::create_table(store.client(), store.table()).await?;
    aws_sdk_scheduler::Client::new(&sdk)
        .create_schedule_group()
        .name(&group)
        .send()
        .await
        .context("create the schedule group (moto)")?;
    let dir = tempfile::tempdir()?;
    let mut settings = cairn_lambda::Settings::new(table.clone());
    settings.components_dir = Some(dir.path().to_path_buf());
    settings.scheduler_group = Some(group.clone());
    settings.scheduler_role_arn = Some("arn:aws:iam::123456789012:role/cairn-scheduler".into());
    settings.cache_dir = dir.path().join("cache");
    settings.index_shards = args.shards;
    let app = cairn_lambda::App::new(settings, &sdk, Instant::now())
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    for path in [
        cairn_test_artifacts::SWAP_SAGA,
        cairn_test_artifacts::TESTKIT,
    ] {
        let bytes = std::fs::read(path)?;
        let hash = cairn_host::component_hash(&bytes);
        std::fs::write(dir.path().join(format!("{hash}.wasm")), &bytes)?;
        app.engine()
            .register(cairn_host::ComponentBytes::new(bytes))
            .await?;
    }

    // A warm instance: the first start compiles and caches the component.
    let swap_input = json!({"a": "alice", "b": "bob", "foo": 10, "bar": 20, "fail_at_step": null});
    call(
        &app,
        json!({"action": "start", "workflow": "swap", "id": "warm", "input": swap_input}),
    )
    .await?;

    // ---- swap sagas
    let mut swaps = Vec::new();
    for i in 0..args.runs {
        let id = format!("swap-measured-{i}");
        let m = mark(&log);
        let (out, t) = call(
            &app,
            json!({"action": "start", "workflow": "swap", "id": id, "input": swap_input}),
        )
        .await?;
        if out["status"] != "completed" {
            bail!("swap {id} did not complete: {out}");
        }
        let mut p = take(&log, m);
        p.handler = t;
        p.invocations = 1;
        p.steps = out["journal_len"].as_u64().unwrap_or(0);
        swaps.push((id, p));
    }

    // ---- timers: start (suspends on a timer), then the wake
    let nap_ms = 1500;
    let mut timers = Vec::new();
    for i in 0..args.timer_runs {
        let id = format!("timer-measured-{i}");
        let m = mark(&log);
        let (out, t) = call(
            &app,
            json!({"action": "start", "workflow": "nap", "id": id, "input": nap_ms}),
        )
        .await?;
        if out["status"] != "waiting" {
            bail!("nap {id} did not wait: {out}");
        }
        let mut p = take(&log, m);
        p.handler = t;
        p.invocations = 1;
        timers.push((id, p));
    }
    tokio::time::sleep(Duration::from_millis(nap_ms + 500)).await;
    for (id, p) in &mut timers {
        let m = mark(&log);
        let (out, t) = call(&app, json!({"action": "wake", "id": id})).await?;
        let journal = app
            .engine()
            .store()
            .load(&cairn_core::ExecutionId::new(id.as_str())?)
            .await?;
        if journal.meta.status != cairn_core::store::Status::Completed {
            bail!("nap {id} did not complete after its wake: {out}");
        }
        let w = take(&log, m);
        p.recs.extend(w.recs);
        for (k, v) in w.scheduler {
            *p.scheduler.entry(k).or_default() += v;
        }
        p.handler += t;
        // The wake is the Scheduler's invocation of the function.
        p.invocations += 1;
        p.steps = journal.journal.len() as u64;
    }

    // ---- the sweep (nothing due)
    let m = mark(&log);
    let (_, sweep_t) = call(&app, json!({"action": "sweep"})).await?;
    let mut sweep = take(&log, m);
    sweep.handler = sweep_t;
    sweep.invocations = 1;

    // ---- the model: a virtual clock, second by second
    let timer_rate = args.timers as f64 / args.timer_wait_s as f64;
    let mut worst_w: BTreeMap<String, (f64, String)> = BTreeMap::new();
    let mut worst_r: BTreeMap<String, (f64, String)> = BTreeMap::new();
    let areas = ["table", "by-status-shard", "by-wake"];
    let mut carry = 0.0;
    for sec in 0..args.seconds {
        let mut s = Second::default();
        for i in 0..args.rate {
            let (measured, p) = &swaps[i as usize % swaps.len()];
            s.charge(p, measured, &format!("swap-{sec}-{i}"), args.shards, i);
        }
        carry += timer_rate;
        let n = carry.floor() as u64;
        carry -= n as f64;
        for i in 0..n {
            let (measured, p) = &timers[i as usize % timers.len()];
            s.charge(p, measured, &format!("timer-{sec}-{i}"), args.shards, i);
        }
        // One sweep a minute: charged whole to the second it runs in.
        if sec % 60 == 0 {
            s.charge(&sweep, "sweep", "sweep", args.shards, 0);
        }
        for area in areas {
            for (m, worst) in [(&s.wcu, &mut worst_w), (&s.rcu, &mut worst_r)] {
                let (v, k) = hottest(m, area);
                let e = worst.entry(area.to_owned()).or_insert((0.0, String::new()));
                if v > e.0 {
                    *e = (v, k.to_owned());
                }
            }
        }
    }
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into());
    println!(
        "\nload model: {} swap-saga starts/s and {} waiting timers (set and fired at {:.0}/s: a mean wait of {} s), {} index shards, {} virtual seconds; measured: {} swap sagas, {} timers, 1 sweep through the Lambda host on DynamoDB Local (load average {load})",
        args.rate,
        args.timers,
        timer_rate,
        args.timer_wait_s,
        args.shards,
        args.seconds,
        swaps.len(),
        timers.len()
    );
    println!("hottest partition key per second (limits: 1,000 WCU/s, 3,000 RCU/s per key):");
    for area in areas {
        let (w, wk) = &worst_w[area];
        let (r, rk) = &worst_r[area];
        println!("  {area:<16} {w:>9.1} WCU/s ({wk})   {r:>9.1} RCU/s ({rk})");
    }
    let hw = worst_w.values().map(|v| v.0).fold(0.0, f64::max);
    let hr = worst_r.values().map(|v| v.0).fold(0.0, f64::max);
    figure("hottest_partition_wcu_per_s", hw, "WCU/s");
    figure("hottest_partition_rcu_per_s", hr, "RCU/s");
    figure("timers_waiting", args.timers as f64, "timers");

    // Scheduler: per measured timer and swap.
    let per = |ps: &[(String, Profile)], op: &str| {
        ps.iter()
            .map(|(_, p)| p.scheduler.get(op).copied().unwrap_or(0))
            .sum::<u64>() as f64
            / ps.len().max(1) as f64
    };
    let creates = per(&swaps, "CreateSchedule") * args.rate as f64
        + per(&timers, "CreateSchedule") * timer_rate;
    let fires = timer_rate;
    println!(
        "EventBridge Scheduler: {creates:.0} CreateSchedule/s ({:.2} per swap saga, {:.2} per timer), {fires:.0} invocations/s, {} schedules alive (one per waiting timer); default quotas (us-east-1 and the other primary Regions, docs.aws.amazon.com/scheduler/latest/UserGuide/scheduler-quotas.html): CreateSchedule 5,000/s, invocations 1,000/s, 10,000,000 schedules per Region, all adjustable",
        per(&swaps, "CreateSchedule"),
        per(&timers, "CreateSchedule"),
        args.timers
    );
    figure("scheduler_create_schedule_per_s", creates, "calls/s");
    figure("scheduler_schedules_alive", args.timers as f64, "schedules");

    // ---- cost per step
    let n = swaps.len() as f64;
    let (mut wcu, mut rcu, mut gbs, mut steps, mut reqs) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let mut breakdown_w: BTreeMap<String, f64> = BTreeMap::new();
    let mut ops: BTreeMap<String, u64> = BTreeMap::new();
    for (_, p) in &swaps {
        let (tw, iw) = p.sum(true);
        let (tr, ir) = p.sum(false);
        *breakdown_w.entry("table".into()).or_default() += tw;
        for (k, v) in iw {
            *breakdown_w.entry(k).or_default() += v;
        }
        wcu += tw + p.sum(true).1.values().sum::<f64>();
        rcu += tr + ir.values().sum::<f64>();
        // Lambda bills each invocation's duration, rounded up to 1 ms.
        gbs += (p.handler.as_secs_f64() * 1000.0).ceil() / 1000.0 * args.memory_mb as f64 / 1024.0;
        steps += p.steps as f64;
        reqs += p.invocations as f64;
        for (op, c) in p.requests() {
            *ops.entry(op).or_default() += c;
        }
    }
    let (wcu, rcu, gbs, steps, reqs) = (wcu / n, rcu / n, gbs / n, steps / n, reqs / n);
    let sched_inv = 0.0; // a swap saga sets no timer (the sweep's 1/min is ~0 per step)
    let usd = [
        ("dynamodb_write", wcu * 0.625e-6),
        ("dynamodb_read", rcu * 0.125e-6),
        ("lambda_requests", reqs * 0.20e-6),
        ("lambda_gb_seconds", gbs * 0.0000133334),
        ("scheduler_invocations", sched_inv * 1.0e-6),
    ];
    let per_million = 1e6 / steps;
    let total: f64 = usd.iter().map(|(_, u)| u).sum::<f64>() * per_million;
    println!(
        "\ncost of the swap saga on Lambda ({steps:.1} steps, {reqs:.0} invocation, {:.1} ms handler on this machine at {} MB): per execution {wcu:.1} WCU ({}), {rcu:.1} RCU; requests per execution: {}",
        gbs / (args.memory_mb as f64 / 1024.0) * 1000.0,
        args.memory_mb,
        breakdown_w
            .iter()
            .map(|(k, v)| format!("{k} {:.1}", v / n))
            .collect::<Vec<_>>()
            .join(", "),
        ops.iter()
            .map(|(k, v)| format!("{k} {:.1}", *v as f64 / n))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (k, u) in &usd {
        println!("  {k:<22} ${:.4} per million steps", u * per_million);
    }
    figure("cost_usd_per_million_steps", total, "USD");

    // ---- read units per advance of a 1,000-step run
    let (before, after) = reads_per_advance(&sdk, &table).await?;
    println!(
        "\na load of a 1,000-step run: {before:.1} RCU from a store that has not seen it (as every advance before the journal cache), {after:.1} RCU from the warm store that wrote it (the meta, and the entries since)"
    );
    figure("read_units_per_advance_1000_steps_before", before, "RCU");
    figure("read_units_per_advance_1000_steps_after", after, "RCU");

    if let Some(path) = &args.json {
        let j = json!({
            "hottest_partition_wcu_per_s": hw,
            "hottest_partition_rcu_per_s": hr,
            "hottest": areas.iter().map(|a| json!({"area": a, "wcu": worst_w[*a], "rcu": worst_r[*a]})).collect::<Vec<_>>(),
            "timers_waiting": args.timers,
            "scheduler_create_schedule_per_s": creates,
            "cost_usd_per_million_steps": total,
            "read_units_per_advance_1000_steps": {"before": before, "after": after},
            "cost_breakdown": usd.iter().map(|(k, u)| (k.to_string(), u * per_million)).collect::<BTreeMap<_, _>>(),
            "swap_per_execution": {"wcu": wcu, "rcu": rcu, "steps": steps, "gb_seconds": gbs},
        });
        std::fs::write(path, serde_json::to_string_pretty(&j)?)?;
    }
    Ok(())
}
