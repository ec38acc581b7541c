//! Chaos on the serverless path: the deployed push loop, played for real,
//! with the function killed at random points.
//!
//! Two function containers (the `cairn-lambda` bootstrap against the
//! runtime API emulator) serve every invocation. Starts and signals arrive
//! as direct invokes; everything else flows as deployed: inbox inserts go
//! through DynamoDB Local's stream and the event source mapping's rules
//! (the pump, `support::pump`, with every third batch delivered twice at
//! once), timers through the schedules the function creates (fired by the
//! harness twice, and up to two seconds late), and a sweep every 4 s.
//!
//! A killer sends SIGKILL to a container every 150–900 ms (three times in
//! four the busy one that logged last, if any is busy; else any) and starts
//! a new one, as Lambda does after a crash or timeout, until at least
//! [`KILLS`] kills have landed; rounds of the workloads (at least two) keep
//! starting until then. Where each kill landed is the last line the container logged.
//!
//! Workloads: the swap saga (success, and failure with compensations), the
//! background check (a child per county, its court's signal), and `brood`
//! (children running activities, then a timer).
//!
//! The harness keeps its own ledger: every activity attempt appends
//! `<key> <attempt> <unix ms>` to `attempts` before any effect (the guests
//! write it; nothing deduplicates it). Checks, once all is done:
//! - every execution finished, with the outcome of an uninterrupted run;
//! - every journal has the entries of an uninterrupted run (in the same
//!   order for the sequential swap; the same set where children and
//!   signals race);
//! - no journaled activity ran again: no attempt started after its
//!   completion was journaled, and every journaled completion has an
//!   attempt in the ledger.

mod support;

use cairn_core::ExecutionMeta;
use cairn_store_dynamodb::DynamoStore;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::pump::{self, Pump};
use support::*;

/// The sweep runs every this many half seconds: slower than the wakes, so
/// timers are fired by their schedules (the stacks sweep every minute).
const CHAOS_SWEEP_EVERY: u32 = 8;
/// Harness calls that went unanswered twice in a row: while any is, the
/// killer holds back.
static STARVING: AtomicUsize = AtomicUsize::new(0);
/// Kills to land before the rounds stop.
const KILLS: usize = 100;
/// Longest wait for everything to finish once the kills stop.
const SETTLE: Duration = Duration::from_secs(120);

/// SplitMix64: small, seeded.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo).max(1)
    }
}

/// A container with its own log, so a kill can tell where it landed.
struct Container {
    function: Function,
    log: std::path::PathBuf,
}

/// The pool of containers the killer works on.
struct Pool {
    env: Vec<(&'static str, String)>,
    dir: std::path::PathBuf,
    containers: Vec<Container>,
    started: usize,
    /// Every third container started once the chaos is on gets a crash
    /// point (`CAIRN_TEST_CRASH_AT`): it aborts right before that write.
    crash_points: bool,
    rng: Rng,
}

/// The crash points the workloads reach (`park` needs a journal that no
/// longer matches its code, which these workloads never have).
const CRASH_POINTS: [&str; 10] = [
    "suspend",
    "deliver",
    "settle",
    "continue-as-new",
    "append:1",
    "append:2",
    "append:3",
    "append:4",
    "append:5",
    "append:6",
];

impl Pool {
    fn new(env: Vec<(&'static str, String)>, dir: &std::path::Path, n: usize) -> Self {
        let mut p = Pool {
            env,
            dir: dir.to_path_buf(),
            containers: Vec::new(),
            started: 0,
            crash_points: false,
            rng: Rng(0x5eed),
        };
        for _ in 0..n {
            p.spawn();
        }
        p
    }

    fn spawn(&mut self) {
        self.started += 1;
        let log = self.dir.join(format!("container-{}.log", self.started));
        let file = std::fs::File::create(&log).unwrap();
        let mut cmd = std::process::Command::new(env("CAIRN_TEST_LAMBDA_BIN"));
        if self.crash_points && self.started.is_multiple_of(3) {
            let i = self.rng.range(0, CRASH_POINTS.len() as u64) as usize;
            cmd.env("CAIRN_TEST_CRASH_AT", CRASH_POINTS[i]);
        }
        let child = cmd
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("the bootstrap starts");
        self.containers.push(Container {
            function: Function(child),
            log,
        });
    }

    /// Replaces the containers that crashed at their crash point; returns
    /// the points.
    fn reap(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < self.containers.len() {
            if self.containers[i].function.alive() {
                i += 1;
                continue;
            }
            let c = self.containers.remove(i);
            let text = std::fs::read_to_string(&c.log).unwrap_or_default();
            out.push(
                text.lines()
                    .rev()
                    .find(|l| l.contains("test hook"))
                    .map(landing)
                    .unwrap_or_else(|| "exited by itself".into()),
            );
            self.spawn();
        }
        out
    }

    /// The container that logged last, among those in the middle of an
    /// invocation (idle ones last logged "cairn ready" or "invocation
    /// answered"); `None` when none is busy.
    fn busiest(&self) -> Option<usize> {
        (0..self.containers.len())
            .filter(|&i| {
                let text = std::fs::read_to_string(&self.containers[i].log).unwrap_or_default();
                text.lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .is_some_and(|l| {
                        let at = landing(l);
                        !at.starts_with("cairn ready") && !at.starts_with("invocation answered")
                    })
            })
            .max_by_key(|&i| {
                std::fs::metadata(&self.containers[i].log)
                    .and_then(|m| m.modified())
                    .ok()
            })
    }

    /// Kills container `i` and starts another; returns where it landed.
    fn kill(&mut self, i: usize) -> String {
        let c = self.containers.remove(i);
        c.function.kill();
        let text = std::fs::read_to_string(&c.log).unwrap_or_default();
        let landed = text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(landing)
            .unwrap_or_else(|| "before its first log line (starting up)".into());
        self.spawn();
        landed
    }
}

/// A log line reduced to what it says (its message and the span, without
/// ids or times), so kills can be counted by place.
fn landing(line: &str) -> String {
    let v: Value = serde_json::from_str(line).unwrap_or(Value::Null);
    let message = v["fields"]["message"]
        .as_str()
        .or(v["message"].as_str())
        .unwrap_or(line);
    let message: String = message
        .split(|c: char| c.is_ascii_digit())
        .collect::<Vec<_>>()
        .join("#");
    let mut message: String = message.chars().take(70).collect();
    if let Some(point) = v["fields"]["point"].as_str() {
        message = format!("{message} {point}");
    }
    if let Some(span) = v["span"]["name"].as_str() {
        message = format!("{span}: {message}");
    }
    message
}

/// One workload execution: its id, how it starts, what it ends as.
#[derive(Clone)]
struct Run {
    id: String,
    workflow: &'static str,
    input: Value,
    /// Signals to send once it started: (execution, name, payload, and the
    /// journal length the execution must reach first). Sent earlier, a
    /// signal that races a timer (the background check's court result
    /// against its reminder) could be taken before the timer starts: a
    /// valid journal, but not the uninterrupted run's.
    signals: Vec<(String, &'static str, Value, u64)>,
    /// Whether to cancel it once the signals are in.
    cancel: bool,
    outcome: &'static str,
    /// Whether its journal's order is deterministic (no racing children
    /// or signals).
    sequential: bool,
}

fn round(tag: &str) -> Vec<Run> {
    let swap = |i: u32, fail: Option<u32>| Run {
        id: format!("{tag}-swap-{i}"),
        workflow: "swap",
        input: json!({"a": "alice", "b": "bob", "foo": 10, "bar": 20, "fail_at_step": fail}),
        signals: vec![],
        cancel: false,
        outcome: if fail.is_some() {
            "failed"
        } else {
            "completed"
        },
        sequential: true,
    };
    let bc = format!("{tag}-bc");
    vec![
        swap(1, None),
        swap(2, Some(3)),
        Run {
            id: bc.clone(),
            workflow: "background_check",
            input: json!({"candidate": "Jane Doe", "counties": ["Alameda", "Kings"]}),
            signals: ["Alameda", "Kings"]
                .iter()
                .map(|c| {
                    (
                        format!("{bc}/county/{c}"),
                        "court_result",
                        json!({"records": []}),
                        // started, the records request, the reminder timer
                        3,
                    )
                })
                .collect(),
            cancel: false,
            outcome: "completed",
            sequential: false,
        },
        Run {
            id: format!("{tag}-cancelled"),
            workflow: "collect",
            input: json!(3),
            signals: vec![(format!("{tag}-cancelled"), "go", json!("one"), 0)],
            cancel: true,
            outcome: "cancelled",
            sequential: true,
        },
        Run {
            id: format!("{tag}-keyed"),
            workflow: "keyed_runs",
            input: json!([]),
            signals: vec![],
            cancel: false,
            outcome: "completed",
            sequential: true,
        },
        Run {
            id: format!("{tag}-brood"),
            workflow: "brood",
            input: json!([4, 300, 3000]),
            signals: vec![],
            cancel: false,
            outcome: "completed",
            sequential: false,
        },
    ]
}

/// Invokes until the function answers (a killed container answers
/// nothing); `CRN202` (the execution exists: an earlier try landed) and
/// `CRN201` (not found yet, for a child's signal) are for the caller.
///
/// A call that went unanswered twice holds the killer back until it is
/// answered ([`STARVING`]): kills as frequent as these, aimed at busy
/// containers, could otherwise kill every try of a long invocation, which
/// says nothing about Cairn (in Lambda such crashes are rare).
fn invoke_until_answered(l: &str, payload: &Value) -> Value {
    let t = Instant::now();
    let mut failures = 0;
    let answered = |v: Value, failures: u32| {
        if failures >= 2 {
            STARVING.fetch_sub(1, Ordering::SeqCst);
        }
        v
    };
    loop {
        match pump::invoke_with_timeout(l, payload, Duration::from_secs(10)) {
            pump::Reply::Returned(v) | pump::Reply::Error(v) => return answered(v, failures),
            pump::Reply::Failed(why) => {
                failures += 1;
                if failures == 2 {
                    STARVING.fetch_add(1, Ordering::SeqCst);
                }
                assert!(
                    t.elapsed() < Duration::from_secs(120),
                    "no answer to {payload} in 120 s: {why}"
                );
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

fn error_code(v: &Value) -> &str {
    v["errorType"]
        .as_str()
        .and_then(|t| t.split('.').next())
        .unwrap_or("")
}

/// Starts `run` and sends its signals, through kills.
fn drive(l: &str, run: &Run) {
    let r = invoke_until_answered(
        l,
        &json!({"action": "start", "workflow": run.workflow, "id": run.id, "input": run.input}),
    );
    assert!(
        r.get("errorType").is_none() || error_code(&r) == "CRN202",
        "start {}: {r}",
        run.id
    );
    for (n, (id, name, payload, after_len)) in run.signals.iter().enumerate() {
        let t = Instant::now();
        while *after_len > 0
            && invoke_until_answered(l, &json!({"action": "status", "id": id}))["journal_len"]
                .as_u64()
                .is_none_or(|len| len < *after_len)
        {
            // (Not found yet, or not that far.)
            assert!(
                t.elapsed() < Duration::from_secs(120),
                "{id} never reached {after_len} journal entries"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        loop {
            let r = invoke_until_answered(
                l,
                &json!({"action": "signal", "id": id, "name": name, "payload": payload,
                        "idempotency_key": format!("harness-{n}")}),
            );
            if r.get("errorType").is_none() {
                break;
            }
            // The child may not exist yet.
            assert!(
                error_code(&r) == "CRN201" && t.elapsed() < Duration::from_secs(120),
                "signal {id}: {r}"
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }
    if run.cancel {
        // Once the signal is consumed, so the journal is the same each time.
        let t = Instant::now();
        while invoke_until_answered(l, &json!({"action": "status", "id": run.id}))["journal_len"]
            .as_u64()
            < Some(2)
        {
            assert!(
                t.elapsed() < Duration::from_secs(120),
                "{}: the signal was never consumed",
                run.id
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        let r = invoke_until_answered(
            l,
            &json!({"action": "cancel", "id": run.id, "reason": "the harness cancels"}),
        );
        assert!(r.get("errorType").is_none(), "cancel {}: {r}", run.id);
    }
}

/// Plays EventBridge Scheduler: fires each due schedule twice at once, up
/// to two seconds late, then deletes it (`ActionAfterCompletion: DELETE`).
async fn fire_due_schedules(aws: &Aws, seed: u64, fired: &AtomicUsize) {
    let mut token = None;
    loop {
        let Ok(page) = aws
            .scheduler
            .list_schedules()
            .group_name(&aws.group)
            .set_next_token(token)
            .send()
            .await
        else {
            return;
        };
        for s in page.schedules() {
            let name = s.name().unwrap_or_default().to_string();
            let Ok(got) = aws
                .scheduler
                .get_schedule()
                .name(&name)
                .group_name(&aws.group)
                .send()
                .await
            else {
                continue;
            };
            let input: Value = got
                .target()
                .and_then(|t| t.input())
                .and_then(|i| serde_json::from_str(i).ok())
                .unwrap_or(Value::Null);
            // Each schedule's lateness, 0 to 2 s: drawn from its name and
            // the run's seed, so it is the same at every look.
            let late = {
                use std::hash::{Hash, Hasher};
                let mut h = std::collections::hash_map::DefaultHasher::new();
                (&name, seed).hash(&mut h);
                h.finish() % 2000
            };
            let due = input["at"].as_u64().unwrap_or(0) + late;
            if due > now_ms() {
                continue;
            }
            let _ = aws
                .scheduler
                .delete_schedule()
                .name(&name)
                .group_name(&aws.group)
                .send()
                .await;
            for _ in 0..2 {
                let (l, input) = (aws.lambda.clone(), input.clone());
                fired.fetch_add(1, Ordering::SeqCst);
                tokio::task::spawn_blocking(move || {
                    pump::invoke_with_timeout(&l, &input, Duration::from_secs(10))
                });
            }
        }
        token = page.next_token;
        if token.is_none() {
            return;
        }
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The attempts ledger: key -> start times (unix ms).
fn ledger(dir: &std::path::Path) -> BTreeMap<String, Vec<u64>> {
    let text = std::fs::read_to_string(dir.join("attempts")).unwrap_or_default();
    let mut out: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let (Some(key), Some(_attempt), Some(ms)) = (f.next(), f.next(), f.next()) else {
            panic!("a torn ledger line: {line:?}");
        };
        out.entry(key.to_string())
            .or_default()
            .push(ms.parse().unwrap());
    }
    out
}

/// One execution's journals, every run of it.
struct Journals {
    id: String,
    runs: Vec<Vec<cairn_core::Entry>>,
}

/// Every execution of the tree rooted at `id` (the execution and its
/// children, by their ids' prefix), with every run's journal.
async fn tree(store: &DynamoStore, all: &[ExecutionMeta], id: &str) -> Vec<Journals> {
    use cairn_core::Store as _;
    let mut out = Vec::new();
    for m in all {
        let this = m.id.as_str();
        if this == id || this.starts_with(&format!("{id}/")) || this.starts_with(&format!("{id}."))
        {
            let mut runs = Vec::new();
            for run in 1..=m.run {
                runs.push(store.load_run(&m.id, run).await.unwrap());
            }
            out.push(Journals {
                id: this.to_string(),
                runs,
            });
        }
    }
    out
}

/// A store on the test's table, and every execution in it: listed once (a
/// list reads every shard of the status index).
async fn everything(aws: &Aws) -> (DynamoStore, Vec<ExecutionMeta>) {
    use cairn_core::Store as _;
    let store = DynamoStore::from_sdk_config(
        &aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .load()
            .await,
        &aws.table,
    );
    let all = store.list(cairn_core::ListFilter::default()).await.unwrap();
    (store, all)
}

/// The entries of `ex` (every run) with its root's id taken out.
fn shape(ex: &Journals, root: &str) -> Vec<String> {
    ex.runs
        .iter()
        .flatten()
        .map(|e| {
            let mut v: Value = serde_json::to_value(&e.event).unwrap();
            if let Some(started) = v.get_mut("started") {
                started["seed"] = json!(0);
            }
            // When a timer fires depends on when it started; a cancel's
            // inbox id is made when it is sent.
            if let Some(timer) = v.get_mut("timer-started") {
                timer["fire_at"] = json!(0);
            }
            if let Some(cancel) = v.get_mut("cancel-requested") {
                cancel["inbox_id"] = json!("");
            }
            v.to_string().replace(root, "ROOT")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_execution_completes_through_kills_duplicates_and_late_wakes() {
    let aws = Arc::new(aws().await);
    let l = aws.lambda.clone();
    let seed = std::env::var("CAIRN_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(now_ms);
    println!("chaos seed {seed} (CAIRN_CHAOS_SEED={seed} replays the choices)");
    let rng = Arc::new(Mutex::new(Rng(seed)));
    let dir = std::path::Path::new(&env("CAIRN_TEST_LAMBDA_LOG"))
        .parent()
        .unwrap()
        .join(format!("chaos-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let attempts_dir = dir.join("ledger");
    std::fs::create_dir_all(&attempts_dir).unwrap();
    let mut function_env = vec![
        ("CAIRN_LEASE_SECONDS", LEASE_S.to_string()),
        ("CAIRN_INBOX_GRACE_SECONDS", "2".into()),
        (
            "CAIRN_ACTIVITY_DIRS",
            format!("{0}=/trace,{0}=/ledger", attempts_dir.display()),
        ),
    ];
    // Debug logs of the engine: a kill's landing place is the last line.
    function_env.push((
        "RUST_LOG",
        "info,cairn_engine=debug,cairn_lambda=debug".into(),
    ));
    let pool = Arc::new(Mutex::new(Pool::new(function_env, &dir, 2)));

    // The deployed push loop.
    let mut pump = Pump::start(
        &aws,
        pump::Config {
            duplicate_every: Some(3),
            function_timeout: Duration::from_secs(10),
            ..Default::default()
        },
    )
    .await;
    let stop = Arc::new(AtomicBool::new(false));
    let fired = Arc::new(AtomicUsize::new(0));
    let background = {
        let (aws, stop, fired) = (aws.clone(), stop.clone(), fired.clone());
        tokio::spawn(async move {
            let mut sweeps = 0u32;
            while !stop.load(Ordering::SeqCst) {
                fire_due_schedules(&aws, seed, &fired).await;
                if sweeps.is_multiple_of(CHAOS_SWEEP_EVERY) {
                    let l = aws.lambda.clone();
                    tokio::task::spawn_blocking(move || {
                        pump::invoke_with_timeout(
                            &l,
                            &json!({"action": "sweep"}),
                            Duration::from_secs(10),
                        )
                    });
                }
                sweeps += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    };

    // An uninterrupted round first: the reference journals.
    let reference = round("ref");
    for run in &reference {
        drive(&l, run);
    }
    wait_all(&l, &reference).await;

    // The killer.
    let kills = Arc::new(Mutex::new(Vec::<String>::new()));
    let killing = Arc::new(AtomicBool::new(true));
    let crashes = Arc::new(Mutex::new(Vec::<String>::new()));
    pool.lock().unwrap().crash_points = true;
    let killer = {
        let (pool_ref, rng, kills, killing, crashes) = (
            pool.clone(),
            rng.clone(),
            kills.clone(),
            killing.clone(),
            crashes.clone(),
        );
        std::thread::spawn(move || {
            while killing.load(Ordering::SeqCst) {
                let wait = rng.lock().unwrap().range(150, 900);
                std::thread::sleep(Duration::from_millis(wait));
                if STARVING.load(Ordering::SeqCst) > 0 {
                    continue;
                }
                let mut pool = pool_ref.lock().unwrap();
                crashes.lock().unwrap().extend(pool.reap());
                // Mostly the container that logged last (likely busy), so
                // kills land in work rather than in idle containers.
                // Three kills in four wait (up to 1 s) for a busy
                // container; the rest land anywhere, idle ones included.
                let any = rng.lock().unwrap().range(0, pool.containers.len() as u64) as usize;
                let mut i = any;
                if rng.lock().unwrap().range(0, 4) < 3 {
                    drop(pool);
                    let t = Instant::now();
                    loop {
                        if let Some(b) = pool_ref.lock().unwrap().busiest() {
                            i = b;
                            break;
                        }
                        if t.elapsed() > Duration::from_secs(1) {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    pool = pool_ref.lock().unwrap();
                }
                let landed = pool.kill(i);
                kills.lock().unwrap().push(landed);
            }
            // The last crash-point containers are replaced by plain ones.
            let mut pool = pool_ref.lock().unwrap();
            pool.crash_points = false;
            crashes.lock().unwrap().extend(pool.reap());
        })
    };
    let mut runs = Vec::new();
    let mut rounds = 0;
    while kills.lock().unwrap().len() < KILLS || rounds < 2 {
        rounds += 1;
        let batch = round(&format!("chaos{rounds}"));
        let drivers: Vec<_> = batch
            .iter()
            .cloned()
            .map(|run| {
                let l = l.clone();
                std::thread::spawn(move || drive(&l, &run))
            })
            .collect();
        for d in drivers {
            d.join().unwrap();
        }
        runs.extend(batch);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    killing.store(false, Ordering::SeqCst);
    killer.join().unwrap();
    // Containers with a crash point may still be running: replace them.
    {
        let mut pool = pool.lock().unwrap();
        let n = pool.containers.len();
        for _ in 0..n {
            pool.kill(0);
        }
    }
    let settle = Instant::now();
    wait_all(&l, &runs).await;
    let settled = settle.elapsed();
    stop.store(true, Ordering::SeqCst);
    let _ = background.await;
    let stats = pump.stats();
    pump.stop();

    // Where the kills landed.
    let kills = kills.lock().unwrap().clone();
    let mut places: BTreeMap<&str, usize> = BTreeMap::new();
    for k in &kills {
        *places.entry(k.as_str()).or_default() += 1;
    }
    println!("kills by where they landed (the container's last log line):");
    let mut places: Vec<_> = places.into_iter().collect();
    places.sort_by_key(|p| std::cmp::Reverse(p.1));
    for (place, n) in &places {
        println!("  {n:4}  {place}");
    }

    let crashes = crashes.lock().unwrap().clone();
    let mut at_points: BTreeMap<&str, usize> = BTreeMap::new();
    for c in &crashes {
        *at_points.entry(c.as_str()).or_default() += 1;
    }
    println!("crash points reached (a container aborted right before that write):");
    for (place, n) in &at_points {
        println!("  {n:4}  {place}");
    }

    // The checks.
    let attempts = ledger(&attempts_dir);
    let mut violations = Vec::new();
    let mut reruns = 0;
    let mut journaled_completions = 0;
    let by_kind: BTreeMap<&str, &Run> = reference.iter().map(|r| (kind(&r.id), r)).collect();
    let (store, all) = everything(&aws).await;
    for run in &runs {
        let reference_run = by_kind[kind(&run.id)];
        let got = tree(&store, &all, &run.id).await;
        let want = tree(&store, &all, &reference_run.id).await;
        if got.len() != want.len() {
            violations.push(format!(
                "{}: {} executions in its tree, the uninterrupted run had {}",
                run.id,
                got.len(),
                want.len()
            ));
        }
        let mut got_shapes: Vec<Vec<String>> = got.iter().map(|e| shape(e, &run.id)).collect();
        let mut want_shapes: Vec<Vec<String>> =
            want.iter().map(|e| shape(e, &reference_run.id)).collect();
        if !run.sequential {
            for s in got_shapes.iter_mut().chain(want_shapes.iter_mut()) {
                s.sort();
            }
        }
        got_shapes.sort();
        want_shapes.sort();
        if got_shapes != want_shapes {
            violations.push(format!(
                "{}: its journals differ from an uninterrupted run's:\n got {got_shapes:#?}\nwant {want_shapes:#?}",
                run.id
            ));
        }
        for ex in &got {
            for (run, journal) in ex.runs.iter().enumerate() {
                let run = run + 1;
                for (i, e) in journal.iter().enumerate() {
                    if e.index as usize != i {
                        violations.push(format!(
                            "{} run {run}: entry {i} has index {}",
                            ex.id, e.index
                        ));
                    }
                    if let cairn_core::Event::ActivityCompleted { seq, .. } = &e.event {
                        journaled_completions += 1;
                        let key = if run == 1 {
                            format!("{}/{seq}", ex.id)
                        } else {
                            format!("{}@{run}/{seq}", ex.id)
                        };
                        let starts = attempts.get(&key).cloned().unwrap_or_default();
                        if starts.is_empty() {
                            violations
                                .push(format!("{key}: journaled, but no attempt in the ledger"));
                        }
                        reruns += starts.len().saturating_sub(1);
                        for s in starts {
                            if s > e.at.as_millis() {
                                violations.push(format!(
                                "{key}: an attempt started at {s}, after its completion was journaled at {}",
                                e.at.as_millis()
                            ));
                            }
                        }
                    }
                }
            }
        }
    }
    let executions: usize = runs.len();
    println!(
        "figure: chaos_serverless_kill_points={} kills ({} places; plus {} aborts at crash points; {rounds} rounds, {executions} root executions; settled {:.1} s after the last kill)",
        kills.len(),
        places.len(),
        crashes.len(),
        settled.as_secs_f64()
    );
    println!(
        "figure: chaos_serverless_lost_or_duplicated={} ({journaled_completions} journaled activity completions checked against the ledger; {reruns} re-runs, each of an attempt whose completion was not journaled)",
        violations.len()
    );
    println!(
        "pump: {} records matched of {} read, {} batches, {} invocations, {} duplicated at once, {} function errors, {} bisections, {} partial failures, {} retries, {} discarded to the on-failure destination; {} scheduler wakes fired (each twice)",
        stats.records_matched,
        stats.records_read,
        stats.batches,
        stats.invocations,
        stats.duplicates,
        stats.function_errors,
        stats.bisections,
        stats.partial_failures,
        stats.retries,
        stats.discarded.len(),
        fired.load(Ordering::SeqCst) / 2
    );
    assert!(violations.is_empty(), "{violations:#?}");
    assert!(kills.len() >= KILLS);
    assert!(
        stats.duplicates > 0 && stats.function_errors > 0,
        "the chaos did not happen: {stats:?}"
    );
    assert!(
        fired.load(Ordering::SeqCst) > 0,
        "no timer was fired by a schedule"
    );
}

/// The workload kind of a run id (`<tag>-<kind>[-n]`).
fn kind(id: &str) -> &str {
    id.split_once('-').map(|(_, k)| k).unwrap_or(id)
}

/// Waits until every run has its outcome (bounded by [`SETTLE`]).
async fn wait_all(l: &str, runs: &[Run]) {
    let t = Instant::now();
    for run in runs {
        loop {
            let s = invoke_until_answered(l, &json!({"action": "status", "id": run.id}));
            if s["status"] == run.outcome {
                break;
            }
            assert!(
                !matches!(
                    s["status"].as_str(),
                    Some("completed" | "failed" | "cancelled" | "parked")
                ),
                "{} ended {} instead of {}: {s}",
                run.id,
                s["status"],
                run.outcome
            );
            if t.elapsed() >= SETTLE {
                // What it waits on, to tell a lost wake from a lost result.
                let child = s["waiting_on"]
                    .as_str()
                    .and_then(|w| w.strip_prefix("child "))
                    .map(|c| invoke_until_answered(l, &json!({"action": "status", "id": c})));
                panic!(
                    "{} not {} {SETTLE:?} after the kills stopped: {s}; the child it waits on: {child:?}",
                    run.id, run.outcome
                );
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}
