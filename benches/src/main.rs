//! # cairn-bench
//!
//! Measures the figures Cairn's issues ask for, on this machine, in one run:
//!
//! - **replay**: replaying an execution with an N-step journal (load +
//!   instantiate + replay), in µs per replayed step;
//! - **swap sequential**: the swap saga, start to result, one after another:
//!   p50/p95/p99 latency;
//! - **swap throughput**: M executions with K in flight: executions/s, CPU
//!   ms per execution, peak RSS;
//! - **durable writes per step**: store writes and commits (fsyncs) per
//!   journal entry.
//!
//! With `--dynamodb-endpoint` it measures the DynamoDB store instead:
//! requests per step and per load (counted by an SDK interceptor), the swap
//! saga's latency and its split between time on the wire (request sent to
//! response received) and the rest (engine, SDK).
//!
//! `scripts/bench` and `scripts/bench-dynamodb` run it; see
//! `cairn-bench --help`.

use anyhow::{Context, Result};
use cairn_core::{ExecutionId, Payload, Store};
use cairn_engine::{
    Advance, AdvanceOptions, Engine, EngineConfig, ReplayOutcome, StartRequest, SystemClock,
};
use cairn_host::{ComponentBytes, LoadedComponent, Sandbox, SandboxConfig};
use cairn_store_sqlite::SqliteStore;
use clap::Parser;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// The allocator of the `cairn` binary, so the engine measured here is the
/// one `cairn` runs (see the workspace manifest).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Cairn benchmarks (embedded SQLite store).
#[derive(Parser, Debug)]
struct Args {
    /// Sequential swap-saga runs.
    #[arg(long, default_value_t = 200)]
    runs: usize,
    /// Executions in the throughput phase.
    #[arg(long, default_value_t = 2000)]
    executions: usize,
    /// Executions in flight in the throughput phase.
    #[arg(long, default_value_t = 50)]
    in_flight: usize,
    /// Steps in the replayed journal.
    #[arg(long, default_value_t = 1000)]
    replay_steps: u32,
    /// Replays measured (median reported).
    #[arg(long, default_value_t = 20)]
    replays: usize,
    /// Measure the replay only, then stop (scripts/bench runs it in
    /// several processes: see there).
    #[arg(long)]
    replay_only: bool,
    /// After each replay, time a fixed memory-bound probe (a dependent
    /// walk of 100,000 steps over 8 MiB) and print its median with the
    /// replay's: this 2-core VM's memory is sometimes shared with a busy
    /// neighbour, which slows the probe and the replay together.
    #[arg(long)]
    memory_probe: bool,
    /// Pooling allocator slots (0: on-demand allocation).
    #[arg(long, default_value_t = 0)]
    pooled: u32,
    /// Directory for the store (default: a temp dir). Use a real disk: fsync
    /// cost is part of the figures.
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
    /// Also write the figures as JSON here.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Measure the DynamoDB store at this endpoint (an emulator: moto's
    /// speed says nothing of DynamoDB's, so these are functional figures)
    /// instead of the SQLite phases.
    #[arg(long)]
    dynamodb_endpoint: Option<String>,
}

fn cpu_time() -> Duration {
    // utime + stime of this process, from /proc/self/stat (Linux).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields.get(11).and_then(|f| f.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|f| f.parse().ok()).unwrap_or(0);
    Duration::from_millis(ticks * 10) // USER_HZ = 100
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

const SWAP_INPUT: &str =
    r#"{"a": "alice", "b": "bob", "foo": 10, "bar": 20, "fail_at_step": null}"#;

async fn run_swap(
    engine: &Engine,
    hash: &cairn_core::ComponentHash,
    id: ExecutionId,
) -> Result<()> {
    engine
        .start(StartRequest {
            workflow: "swap".into(),
            id: id.clone(),
            input: Payload::from(SWAP_INPUT),
            component: Some(hash.clone()),
            parent: None,
        })
        .await?;
    match engine.drive(&id, AdvanceOptions::default()).await? {
        Advance::Finished {
            status: cairn_core::Status::Completed,
            ..
        } => Ok(()),
        other => anyhow::bail!("swap {id} did not complete: {other:?}"),
    }
}

fn writes(store: &SqliteStore) -> (u64, u64) {
    let s = store.stats();
    (
        s.writes.load(Ordering::Relaxed),
        s.commits.load(Ordering::Relaxed),
    )
}

/// An engine over `store` with the swap-saga and testkit components added.
async fn engine_over(
    store: Arc<dyn Store>,
    cache_dir: &std::path::Path,
    pooled: u32,
) -> Result<(Engine, Arc<LoadedComponent>, Arc<LoadedComponent>)> {
    let sandbox = Arc::new(Sandbox::new(SandboxConfig {
        pooled_instances: pooled,
        cache_dir: Some(cache_dir.to_path_buf()),
        ..Default::default()
    })?);
    let engine = Engine::new(
        sandbox,
        store,
        Arc::new(SystemClock),
        EngineConfig::default(),
    );
    let mut components = Vec::new();
    for path in [
        cairn_test_artifacts::SWAP_SAGA,
        cairn_test_artifacts::TESTKIT,
    ] {
        let bytes = std::fs::read(path).with_context(|| format!("reading {path}"))?;
        components.push(engine.add_component(ComponentBytes::new(bytes)).await?);
    }
    let testkit = components.pop().expect("two components");
    let swap = components.pop().expect("two components");
    Ok((engine, swap, testkit))
}

/// Requests by operation between two snapshots.
fn delta(
    before: &std::collections::BTreeMap<String, u64>,
    after: &std::collections::BTreeMap<String, u64>,
) -> std::collections::BTreeMap<String, u64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, v)| *v > 0)
        .collect()
}

fn show(counts: &std::collections::BTreeMap<String, u64>, per: f64) -> String {
    counts
        .iter()
        .map(|(k, v)| format!("{k} {:.2}", *v as f64 / per))
        .collect::<Vec<_>>()
        .join(" · ")
}

/// An execution with a 1,501-entry run 1 closed by continue-as-new, loaded
/// as before, by the store that wrote it and by one that knows nothing,
/// when run 2 holds 1 entry and 1,000.
async fn continued(
    store: &cairn_store_dynamodb::DynamoStore,
    id: &ExecutionId,
    component: &cairn_core::ComponentHash,
    cold: impl Fn() -> cairn_store_dynamodb::DynamoStore,
) -> Result<(u32, Vec<(usize, Load, Load, Load)>)> {
    use cairn_core::store::{Append, ContinueAsNew, ExecutionMeta, NewExecution, Status};
    use cairn_core::{Entry, Event, Timestamp};
    let at = Timestamp::from_millis(1);
    let started = |run| Entry {
        index: 0,
        at,
        event: Event::Started {
            workflow: "steps".into(),
            input: Payload::json(&1),
            component: component.clone(),
            seed: 1,
            run,
            parent: None,
        },
    };
    store
        .create(NewExecution {
            meta: ExecutionMeta {
                id: id.clone(),
                workflow: "steps".into(),
                component: component.clone(),
                status: Status::Running,
                input_hash: 0,
                created_at: at,
                updated_at: at,
                inbox_version: 0,
                wake_at: None,
                due_at: None,
                waiting_on: None,
                parked: None,
                run: 1,
                lease: None,
            },
            started: started(1),
        })
        .await?;
    let steps = |run: u32, from: u32, to: u32| async move {
        for index in from..to {
            let entry = Entry {
                index,
                at,
                event: Event::TimerFired {
                    seq: index,
                    duration_ms: 5,
                },
            };
            store
                .append(
                    id,
                    Append {
                        run,
                        entry,
                        consume: None,
                        hold_until_heard: None,
                    },
                )
                .await?;
        }
        anyhow::Ok(())
    };
    let old_run = 1501;
    steps(1, 1, old_run).await?;
    store
        .continue_as_new(
            id,
            ContinueAsNew {
                closing: Entry {
                    index: old_run,
                    at,
                    event: Event::ContinuedAsNew {
                        input: Payload::json(&2),
                    },
                },
                next: started(2),
                run: 1,
            },
        )
        .await?;
    let mut loads = Vec::new();
    let mut have = 1;
    for len in [1u32, 1000] {
        steps(2, have, len).await?;
        have = len;
        let old = load_as_before(store.client(), store.table(), id).await?;
        let warm = measure(store, id).await?;
        // A store that knows nothing, each time.
        let cold = measure(&cold(), id).await?;
        loads.push((len as usize, old, warm, cold));
    }
    Ok((old_run, loads))
}

/// One load's cost.
struct Load {
    entries: usize,
    queries: u64,
    units: f64,
    items: u64,
    bytes: u64,
    ms: f64,
}

/// The store's load of `id`, measured by its counters.
async fn measure(store: &cairn_store_dynamodb::DynamoStore, id: &ExecutionId) -> Result<Load> {
    let s = store.stats();
    let (q, u, i, b) = (
        s.snapshot().get("Query").copied().unwrap_or(0),
        s.read_units(),
        s.items_read(),
        s.bytes_read(),
    );
    let t = Instant::now();
    let ex = store.load(id).await?;
    let ms = ms(t.elapsed());
    Ok(Load {
        entries: ex.journal.len(),
        queries: s.snapshot().get("Query").copied().unwrap_or(0) - q,
        units: s.read_units() - u,
        items: s.items_read() - i,
        bytes: s.bytes_read() - b,
        ms,
    })
}

/// The load as the store sent it before the run bounded its key condition
/// (7255b14): descending from the meta, 500 items a page, until the first
/// entry of an older run or the partition's end.
async fn load_as_before(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    id: &ExecutionId,
) -> Result<Load> {
    use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity};
    let t = Instant::now();
    let mut l = Load {
        entries: 0,
        queries: 0,
        units: 0.0,
        items: 0,
        bytes: 0,
        ms: 0.0,
    };
    let mut run = None;
    let mut start = None;
    'pages: loop {
        let out = client
            .query()
            .table_name(table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(format!("exec#{id}")))
            .consistent_read(true)
            .scan_index_forward(false)
            .limit(500)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .set_exclusive_start_key(start)
            .send()
            .await?;
        l.queries += 1;
        l.units += out
            .consumed_capacity
            .as_ref()
            .and_then(|c| c.capacity_units)
            .unwrap_or(0.0);
        let items = out.items.unwrap_or_default();
        // Every item of the page is read (and paid for), used or not.
        l.items += items.len() as u64;
        for item in &items {
            l.bytes += item
                .iter()
                .map(|(k, v)| {
                    k.len()
                        + match v {
                            AttributeValue::S(s) => s.len(),
                            AttributeValue::N(n) => n.len().div_ceil(2) + 1,
                            _ => 1,
                        }
                })
                .sum::<usize>() as u64;
        }
        for item in &items {
            let sk = item
                .get("sk")
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default();
            if sk == "meta" {
                run = item
                    .get("run")
                    .and_then(|v| v.as_n().ok())
                    .and_then(|n| n.parse::<u32>().ok());
            } else if let Some(rest) = sk.strip_prefix("h#") {
                let r: u32 = rest.split('#').next().unwrap_or("0").parse()?;
                if Some(r) != run {
                    break 'pages;
                }
                l.entries += 1;
            }
        }
        start = out.last_evaluated_key;
        if start.is_none() {
            break;
        }
    }
    l.ms = ms(t.elapsed());
    Ok(l)
}

const WRITE_OPS: [&str; 4] = ["PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems"];

async fn dynamodb(args: &Args, endpoint: &str) -> Result<()> {
    use cairn_store_dynamodb::DynamoStore;
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "bench", "bench", None, None, "static",
        ))
        .load()
        .await;
    let table = format!("cairn-bench-{}", std::process::id());
    let store = Arc::new(DynamoStore::from_sdk_config(&sdk, &table));
    cairn_store_dynamodb::create_table(store.client(), store.table()).await?;
    let tmp = tempfile::tempdir()?;
    let (engine, swap, testkit) = engine_over(store.clone(), &tmp.path().join("cache"), 0).await?;
    let mut report = serde_json::Map::new();
    println!(
        "cairn-bench · DynamoDB store at {endpoint} (table {table}) · load average before: {}",
        loadavg()
    );
    let stats = store.stats().clone();

    // ---- requests per step and per load ---------------------------------
    for i in 0..10 {
        run_swap(&engine, &swap.hash, ExecutionId::new(format!("warm-{i}"))?).await?;
    }
    let (r0, wire0) = (stats.snapshot(), stats.wire_time());
    let mut lat = Vec::with_capacity(args.runs);
    for i in 0..args.runs {
        let t = Instant::now();
        run_swap(&engine, &swap.hash, ExecutionId::new(format!("seq-{i}"))?).await?;
        lat.push(t.elapsed());
    }
    let (r1, wire1) = (stats.snapshot(), stats.wire_time());
    lat.sort();
    let runs = args.runs as f64;
    let per_exec = delta(&r0, &r1);
    let writes: u64 = WRITE_OPS.iter().filter_map(|op| per_exec.get(*op)).sum();
    let wire = wire1.saturating_sub(wire0).as_secs_f64() * 1000.0 / runs;
    let total: f64 = lat.iter().map(|d| ms(*d)).sum::<f64>() / runs;
    println!(
        "
swap saga on DynamoDB, sequential, {} runs (start + one advance: 6 journal entries each):",
        args.runs
    );
    println!("  requests per execution: {}", show(&per_exec, runs));
    println!(
        "  writes per journal entry {:.2} (goal 1) · loads (Query) per advance {:.2}",
        writes as f64 / (runs * 6.0),
        per_exec.get("Query").copied().unwrap_or(0) as f64 / runs
    );
    println!(
        "  p50 {:.2} ms · p95 {:.2} ms · p99 {:.2} ms",
        ms(percentile(&lat, 0.5)),
        ms(percentile(&lat, 0.95)),
        ms(percentile(&lat, 0.99))
    );
    println!(
        "  mean {total:.2} ms = {wire:.2} ms on the wire (request sent to response received) + {:.2} ms engine, SDK and serialization",
        total - wire
    );
    report.insert(
        "ddb_requests_per_execution".into(),
        serde_json::json!(per_exec),
    );
    report.insert(
        "ddb_writes_per_entry".into(),
        (writes as f64 / (runs * 6.0)).into(),
    );
    report.insert("ddb_seq_p50_ms".into(), ms(percentile(&lat, 0.5)).into());
    report.insert("ddb_seq_p95_ms".into(), ms(percentile(&lat, 0.95)).into());
    report.insert("ddb_mean_ms".into(), total.into());
    report.insert("ddb_mean_wire_ms".into(), wire.into());

    // ---- one load of a long journal: Query pages and read units ----------
    // before: the load as it was (descending from the meta, 500 items a
    // page, whatever the run), sent here as it was sent; after: the store's
    // load, by the store that wrote the journal (it knows the run, as the
    // push host does once it acquired the lease) and by another instance
    // that knows nothing of the execution.
    println!(
        "\none load of a long journal (read units as DynamoDB Local reports them (ReturnConsumedCapacity); bytes as the store sizes items):"
    );
    let cold = DynamoStore::from_sdk_config(&sdk, &table);
    for steps in [100u32, 400, 1000] {
        let id = ExecutionId::new(format!("long-{steps}"))?;
        engine
            .start(StartRequest {
                workflow: "steps".into(),
                id: id.clone(),
                input: Payload::json(&steps),
                component: Some(testkit.hash.clone()),
                parent: None,
            })
            .await?;
        engine.drive(&id, AdvanceOptions::default()).await?;
        let old = load_as_before(store.client(), &table, &id).await?;
        let line = |who: &str, l: &Load| {
            println!(
                "  {}-entry journal, {who:<26} {} Query · {:>6.1} read units · {:>5} items · {:>8} bytes · {:.2} ms",
                l.entries, l.queries, l.units, l.items, l.bytes, l.ms
            );
        };
        line("before (500-item pages):", &old);
        let warm = measure(&store, &id).await?;
        line("after, run known:", &warm);
        let cold_load = measure(&cold, &id).await?;
        line("after, store knows nothing:", &cold_load);
        let n = warm.entries;
        if steps == 1000 {
            println!(
                "figure: load_queries_1000_entries_before={} queries",
                old.queries
            );
            println!("figure: load_queries_1000_entries={} queries", warm.queries);
            println!(
                "figure: load_queries_1000_entries_unknown_run={} queries",
                cold_load.queries
            );
            println!(
                "figure: read_units_per_load_1000_entries_before={:.1} RCU",
                old.units
            );
            println!(
                "figure: read_units_per_load_1000_entries={:.1} RCU",
                warm.units
            );
            println!(
                "figure: bytes_per_load_1000_entries_before={} bytes",
                old.bytes
            );
            println!("figure: bytes_per_load_1000_entries={} bytes", warm.bytes);
        }
        report.insert(format!("ddb_load_{n}_entries_queries"), warm.queries.into());
        report.insert(
            format!("ddb_load_{n}_entries_queries_before"),
            old.queries.into(),
        );
        report.insert(
            format!("ddb_load_{n}_entries_queries_unknown_run"),
            cold_load.queries.into(),
        );
        report.insert(
            format!("ddb_load_{n}_entries_read_units"),
            warm.units.into(),
        );
        report.insert(
            format!("ddb_load_{n}_entries_read_units_before"),
            old.units.into(),
        );
        report.insert(format!("ddb_load_{n}_entries_bytes"), warm.bytes.into());
    }
    // ---- after a continue-as-new: the older run is not read -------------
    let id = ExecutionId::new("long-continued")?;
    let (old_run, loads) = continued(&store, &id, &testkit.hash, || {
        DynamoStore::from_sdk_config(&sdk, &table)
    })
    .await?;
    for (len, old, warm, cold_load) in loads {
        println!(
            "  run 2 of {len} entries after a {old_run}-entry run 1: before {} Query · {:.1} read units · {} items; after, run known {} Query · {:.1} read units · {} items; store knows nothing {} Query · {:.1} read units · {} items",
            old.queries,
            old.units,
            old.items,
            warm.queries,
            warm.units,
            warm.items,
            cold_load.queries,
            cold_load.units,
            cold_load.items
        );
        if len == 1000 {
            println!(
                "figure: read_units_per_load_1000_entries_after_continue_as_new_before={:.1} RCU",
                old.units
            );
            println!(
                "figure: read_units_per_load_1000_entries_after_continue_as_new={:.1} RCU",
                warm.units
            );
        }
        report.insert(
            format!("ddb_load_continued_{len}_entries_read_units_before"),
            old.units.into(),
        );
        report.insert(
            format!("ddb_load_continued_{len}_entries_read_units"),
            warm.units.into(),
        );
    }
    report.insert("loadavg_after".into(), loadavg().into());
    println!("\nload average after: {}", loadavg());
    let _ = store
        .client()
        .delete_table()
        .table_name(&table)
        .send()
        .await;
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(endpoint) = args.dynamodb_endpoint.clone() {
        return dynamodb(&args, &endpoint).await;
    }
    let tmp = tempfile::tempdir()?;
    let dir = args.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    let db = dir.join(format!("bench-{}.db", std::process::id()));
    let store = Arc::new(SqliteStore::open(&db)?);
    let (engine, swap, testkit) =
        engine_over(store.clone(), &dir.join("cache"), args.pooled).await?;
    let mut report = serde_json::Map::new();
    println!(
        "cairn-bench · store {} · pooled {} · load average before: {}",
        db.display(),
        args.pooled,
        loadavg()
    );

    // ---- replay ----------------------------------------------------------
    let id = ExecutionId::new(format!("replay-{}", args.replay_steps))?;
    engine
        .start(StartRequest {
            workflow: "steps".into(),
            id: id.clone(),
            input: Payload::json(&args.replay_steps),
            component: Some(testkit.hash.clone()),
            parent: None,
        })
        .await?;
    engine.drive(&id, AdvanceOptions::default()).await?;
    let entries = store.load(&id).await?.journal.len();
    let (mut loads, mut replays, mut cold_loads) = (Vec::new(), Vec::new(), Vec::new());
    let probe = args.memory_probe.then(MemoryProbe::new);
    let mut probes = Vec::new();
    // A store that keeps no journal (as a restarted engine or a cold
    // function has none): its load reads and decodes the whole run.
    let cold = SqliteStore::open(&db)?.with_journal_cache(0);
    for _ in 0..args.replays {
        let t = Instant::now();
        let ex = cold.load(&id).await?;
        cold_loads.push(t.elapsed());
        anyhow::ensure!(
            ex.journal.len() == entries,
            "a cold load read {} entries",
            ex.journal.len()
        );
        let t = Instant::now();
        let ex = store.load(&id).await?;
        loads.push(t.elapsed());
        let t = Instant::now();
        let outcome = engine.replay(&id, None).await?;
        replays.push(t.elapsed());
        if let Some(p) = &probe {
            probes.push(p.time());
        }
        anyhow::ensure!(
            matches!(outcome, ReplayOutcome::Compatible { finished: true, .. }),
            "replay: {outcome:?}"
        );
        drop(ex);
    }
    loads.sort();
    replays.sort();
    cold_loads.sort();
    let (load, total) = (percentile(&loads, 0.5), percentile(&replays, 0.5));
    let cold_load = percentile(&cold_loads, 0.5);
    let steps = f64::from(args.replay_steps);
    let per_step_total = total.as_secs_f64() * 1e6 / steps;
    let per_step_replay = total.saturating_sub(load).as_secs_f64() * 1e6 / steps;
    let per_step_cold = (total.saturating_sub(load) + cold_load).as_secs_f64() * 1e6 / steps;
    println!(
        "\nreplay of a {}-step journal ({entries} entries), median of {}:",
        args.replay_steps, args.replays
    );
    println!(
        "  load by this engine's store  {:>6.2} ms (it keeps the journals it advanced: the meta and any new entries)",
        ms(load)
    );
    println!(
        "  load by a store that has not seen it {:>6.2} ms (reads and decodes the whole run)",
        ms(cold_load)
    );
    println!(
        "  load + instantiate + replay {:>7.2} ms  = {per_step_total:.2} µs/step ({per_step_replay:.2} µs/step without the load)",
        ms(total)
    );
    println!(
        "figure: replay_us_per_step={per_step_total:.2} µs ({} steps, load + instantiate + replay)",
        args.replay_steps
    );
    println!(
        "figure: replay_us_per_step_excluding_load={per_step_replay:.2} µs ({} steps)",
        args.replay_steps
    );
    println!(
        "figure: replay_us_per_step_cold_load={per_step_cold:.2} µs ({} steps, the replay with a cold load instead of a warm one)",
        args.replay_steps
    );
    if !probes.is_empty() {
        probes.sort();
        println!(
            "  memory probe after each replay: median {:.2} ms (p10 {:.2}, p90 {:.2}); lower is a quieter machine",
            ms(percentile(&probes, 0.5)),
            ms(percentile(&probes, 0.1)),
            ms(percentile(&probes, 0.9)),
        );
        report.insert(
            "memory_probe_ms".into(),
            ms(percentile(&probes, 0.5)).into(),
        );
    }
    report.insert("replay_us_per_step_cold_load".into(), per_step_cold.into());
    report.insert("replay_cold_load_ms".into(), ms(cold_load).into());
    report.insert("replay_steps".into(), args.replay_steps.into());
    report.insert("replay_total_ms".into(), ms(total).into());
    report.insert("replay_load_ms".into(), ms(load).into());
    report.insert("replay_us_per_step".into(), per_step_total.into());
    report.insert(
        "replay_us_per_step_excluding_load".into(),
        per_step_replay.into(),
    );
    if args.replay_only {
        if let Some(path) = &args.json {
            std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
        }
        return Ok(());
    }

    // ---- swap, sequential ------------------------------------------------
    for i in 0..10 {
        run_swap(&engine, &swap.hash, ExecutionId::new(format!("warm-{i}"))?).await?;
    }
    let (w0, c0) = writes(&store);
    let mut lat = Vec::with_capacity(args.runs);
    for i in 0..args.runs {
        let t = Instant::now();
        run_swap(&engine, &swap.hash, ExecutionId::new(format!("seq-{i}"))?).await?;
        lat.push(t.elapsed());
    }
    let (w1, c1) = writes(&store);
    lat.sort();
    let entries_seq = (args.runs * 6) as f64; // started + 4 activities + completed
    println!(
        "\nswap saga, sequential, {} runs (start to result, every step fsynced):",
        args.runs
    );
    println!(
        "  p50 {:.2} ms · p95 {:.2} ms · p99 {:.2} ms · max {:.2} ms",
        ms(percentile(&lat, 0.5)),
        ms(percentile(&lat, 0.95)),
        ms(percentile(&lat, 0.99)),
        ms(*lat.last().expect("runs > 0"))
    );
    println!(
        "  store writes per journal entry {:.2} · commits (fsyncs) per entry {:.2}",
        (w1 - w0) as f64 / entries_seq,
        (c1 - c0) as f64 / entries_seq
    );
    report.insert("seq_p50_ms".into(), ms(percentile(&lat, 0.5)).into());
    report.insert("seq_p95_ms".into(), ms(percentile(&lat, 0.95)).into());
    report.insert("seq_p99_ms".into(), ms(percentile(&lat, 0.99)).into());
    report.insert(
        "seq_writes_per_entry".into(),
        ((w1 - w0) as f64 / entries_seq).into(),
    );
    report.insert(
        "seq_commits_per_entry".into(),
        ((c1 - c0) as f64 / entries_seq).into(),
    );

    // ---- swap, throughput ------------------------------------------------
    let (w0, c0) = writes(&store);
    let cpu0 = cpu_time();
    let t = Instant::now();
    let sem = Arc::new(tokio::sync::Semaphore::new(args.in_flight));
    let mut tasks = Vec::with_capacity(args.executions);
    for i in 0..args.executions {
        let permit = sem.clone().acquire_owned().await?;
        let (engine, hash) = (engine.clone(), swap.hash.clone());
        tasks.push(tokio::spawn(async move {
            let r = run_swap(
                &engine,
                &hash,
                ExecutionId::new(format!("tp-{i}")).expect("id"),
            )
            .await;
            drop(permit);
            r
        }));
    }
    for task in tasks {
        task.await??;
    }
    let wall = t.elapsed();
    let cpu = cpu_time().saturating_sub(cpu0);
    let (w1, c1) = writes(&store);
    let entries_tp = (args.executions * 6) as f64;
    let rate = args.executions as f64 / wall.as_secs_f64();
    let cpu_per = ms(cpu) / args.executions as f64;
    println!(
        "\nswap saga, {} executions, {} in flight:",
        args.executions, args.in_flight
    );
    println!(
        "  {rate:.0} executions/s · {:.2} s wall · CPU {cpu_per:.2} ms per execution",
        wall.as_secs_f64()
    );
    println!(
        "  store writes per journal entry {:.2} · commits (fsyncs) per entry {:.3} (group commit)",
        (w1 - w0) as f64 / entries_tp,
        (c1 - c0) as f64 / entries_tp
    );
    println!("  peak RSS {:.1} MiB", peak_rss_mib());
    report.insert("tp_executions_per_s".into(), rate.into());
    report.insert("tp_cpu_ms_per_execution".into(), cpu_per.into());
    report.insert(
        "tp_writes_per_entry".into(),
        ((w1 - w0) as f64 / entries_tp).into(),
    );
    report.insert(
        "tp_commits_per_entry".into(),
        ((c1 - c0) as f64 / entries_tp).into(),
    );
    report.insert("peak_rss_mib".into(), peak_rss_mib().into());
    report.insert("loadavg_after".into(), loadavg().into());
    println!("\nload average after: {}", loadavg());
    if let Some(path) = args.json {
        std::fs::write(&path, serde_json::to_string_pretty(&report)?)?;
    }
    Ok(())
}

/// A dependent walk over 8 MiB (a random cycle), timed: it waits on memory
/// at every step, so it runs slower when a neighbour on this VM's host
/// competes for the cache and memory (see `--memory-probe`).
struct MemoryProbe(Vec<u32>);

impl MemoryProbe {
    fn new() -> Self {
        let n = 1usize << 21;
        let mut order: Vec<u32> = (0..n as u32).collect();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for i in (1..n).rev() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            order.swap(i, (x % i as u64) as usize);
        }
        // One cycle through every slot, in the shuffled order.
        let mut next = vec![0u32; n];
        for w in 0..n {
            next[order[w] as usize] = order[(w + 1) % n];
        }
        Self(next)
    }

    fn time(&self) -> std::time::Duration {
        let t = Instant::now();
        let mut p = 0u32;
        for _ in 0..100_000 {
            p = self.0[p as usize];
        }
        std::hint::black_box(p);
        t.elapsed()
    }
}
