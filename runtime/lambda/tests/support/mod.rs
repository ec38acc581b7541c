//! The harness shared by the Lambda end-to-end tests: the function's
//! processes, invokes through the runtime API emulator, the table, its
//! stream and the schedules, and the harness's own ledger of attempts.
#![allow(dead_code)] // each test binary uses its own part of it

pub mod pump;

use aws_sdk_dynamodbstreams::types::{AttributeValue, ShardIteratorType};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

pub fn env(k: &str) -> String {
    std::env::var(k)
        .unwrap_or_else(|_| panic!("{k} is not set: run this test with scripts/lambda-e2e"))
}

/// The AWS side of the test: the emulators' clients and names.
pub struct Aws {
    /// The runtime API emulator's address (its invoke endpoint).
    pub lambda: String,
    /// The function's table.
    pub table: String,
    /// The function's schedule group.
    pub group: String,
    /// DynamoDB (DynamoDB Local).
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// The table's stream (DynamoDB Local).
    pub streams: aws_sdk_dynamodbstreams::Client,
    /// EventBridge Scheduler (moto).
    pub scheduler: aws_sdk_scheduler::Client,
}

/// Invokes the function through the emulator's invoke endpoint; its reply,
/// or its error reply (`errorType`, `errorMessage`). Panics when there is
/// none (the container died, or 900 s passed).
pub fn invoke(lambda: &str, payload: &Value) -> Value {
    match pump::invoke_with_timeout(lambda, payload, Duration::from_secs(900)) {
        pump::Reply::Returned(v) | pump::Reply::Error(v) => v,
        pump::Reply::Failed(why) => panic!("no reply to {payload}: {why}"),
    }
}

/// A stream record as an event source mapping hands it to the function.
pub fn esm_record(r: &aws_sdk_dynamodbstreams::types::Record, arn: &str) -> Value {
    let d = r.dynamodb().expect("a DynamoDB stream record");
    let map = |m: &std::collections::HashMap<String, AttributeValue>| {
        m.iter()
            .map(|(k, v)| (k.clone(), attr_json(v)))
            .collect::<serde_json::Map<String, Value>>()
    };
    json!({
        "eventID": r.event_id(),
        "eventName": r.event_name().map(|e| e.as_str()),
        "eventVersion": r.event_version().unwrap_or("1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "ApproximateCreationDateTime": d.approximate_creation_date_time().map(|t| t.secs()).unwrap_or(0),
            "Keys": d.keys().map(map).unwrap_or_default(),
            "NewImage": d.new_image().map(map).unwrap_or_default(),
            "SequenceNumber": d.sequence_number(),
            "SizeBytes": d.size_bytes().unwrap_or(0),
            "StreamViewType": "NEW_IMAGE",
        },
        "eventSourceARN": arn,
    })
}

/// The emulators' clients, the function's table (created) and its
/// schedule group (created).
pub async fn aws() -> Aws {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_scheduler::config::Credentials::new(
            "test", "test", None, None, "static",
        ))
        .load()
        .await;
    let a = Aws {
        lambda: env("CAIRN_TEST_LAMBDA_ENDPOINT"),
        table: env("CAIRN_TABLE"),
        group: env("CAIRN_SCHEDULER_GROUP"),
        dynamodb: aws_sdk_dynamodb::Client::new(&sdk),
        streams: aws_sdk_dynamodbstreams::Client::new(&sdk),
        scheduler: aws_sdk_scheduler::Client::new(&sdk),
    };
    cairn_store_dynamodb::create_table(&a.dynamodb, &a.table)
        .await
        .expect("table");
    let _ = a
        .scheduler
        .create_schedule_group()
        .name(&a.group)
        .send()
        .await;
    a
}

pub fn attr_json(v: &AttributeValue) -> Value {
    match v {
        AttributeValue::S(s) => json!({"S": s}),
        AttributeValue::N(n) => json!({"N": n}),
        AttributeValue::Bool(b) => json!({"BOOL": b}),
        AttributeValue::Null(_) => json!({"NULL": true}),
        other => panic!("unexpected attribute in a Cairn inbox item: {other:?}"),
    }
}

impl Aws {
    /// The table's stream.
    pub async fn stream_arn(&self) -> String {
        self.dynamodb
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .unwrap()
            .table()
            .and_then(|t| t.latest_stream_arn())
            .expect("the table has a stream")
            .to_string()
    }

    /// Every inbox INSERT on the table's stream so far, as an event source
    /// mapping with Cairn's filter would deliver them.
    pub async fn inbox_inserts(&self) -> Value {
        let arn = self.stream_arn().await;
        let stream = self
            .streams
            .describe_stream()
            .stream_arn(&arn)
            .send()
            .await
            .unwrap();
        let mut records = Vec::new();
        for shard in stream.stream_description().unwrap().shards() {
            let mut it = self
                .streams
                .get_shard_iterator()
                .stream_arn(&arn)
                .shard_id(shard.shard_id().unwrap())
                .shard_iterator_type(ShardIteratorType::TrimHorizon)
                .send()
                .await
                .unwrap()
                .shard_iterator;
            while let Some(iterator) = it {
                let page = self
                    .streams
                    .get_records()
                    .shard_iterator(iterator)
                    .send()
                    .await
                    .unwrap();
                if page.records().is_empty() {
                    break;
                }
                for r in page.records() {
                    if pump::is_inbox_insert(r) {
                        records.push(esm_record(r, &arn));
                    }
                }
                it = page.next_shard_iterator;
            }
        }
        json!({"Records": records})
    }

    /// The inputs of the wake schedules for `id`.
    pub async fn wakes_for(&self, id: &str) -> Vec<Value> {
        let list = self
            .scheduler
            .list_schedules()
            .group_name(&self.group)
            .send()
            .await
            .unwrap();
        let mut out = Vec::new();
        for s in list.schedules() {
            let got = self
                .scheduler
                .get_schedule()
                .name(s.name().unwrap())
                .group_name(&self.group)
                .send()
                .await
                .unwrap();
            let input: Value =
                serde_json::from_str(got.target().unwrap().input().unwrap()).unwrap();
            if input["id"] == id {
                out.push(input);
            }
        }
        out
    }
}

/// The function's process; killed when the test ends.
pub struct Function(pub std::process::Child);

impl Function {
    /// Starts the bootstrap, as Lambda does on a cold start.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a bootstrap (one more container) with extra environment.
    pub fn start_with(extra: &[(&str, String)]) -> Self {
        let bin = env("CAIRN_TEST_LAMBDA_BIN");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(env("CAIRN_TEST_LAMBDA_LOG"))
            .expect("function log");
        let child = std::process::Command::new(&bin)
            .envs(extra.iter().map(|(k, v)| (k, v)))
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        Self(child)
    }

    /// `kill -9`, as Lambda does to a container that timed out or ran out
    /// of memory.
    pub fn kill(mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }

    /// Peak RSS of the function process so far, in MiB.
    pub fn peak_rss_mib(&self) -> f64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.0.id())).unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// The test's lease (the stacks' `LeaseSeconds` is 30).
pub const LEASE_S: u64 = 2;

/// Invokes in the background (the caller goes on; the reply, if any, is
/// in the handle).
pub fn invoke_in_background(lambda: &str, payload: Value) -> std::thread::JoinHandle<Value> {
    let lambda = lambda.to_string();
    std::thread::spawn(move || invoke(&lambda, &payload))
}

/// A directory granted to the function's activities as `/trace`, where
/// testkit's `work` logs every attempt's start (`/trace/attempts`).
pub struct Trace(std::path::PathBuf);

impl Trace {
    pub fn new(name: &str) -> Self {
        let dir = std::path::Path::new(&env("CAIRN_TEST_LAMBDA_LOG"))
            .parent()
            .unwrap()
            .join(format!("trace-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    /// The function's environment for this trace and a short lease.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("CAIRN_LEASE_SECONDS", LEASE_S.to_string()),
            ("CAIRN_INBOX_GRACE_SECONDS", "2".into()),
            (
                "CAIRN_ACTIVITY_DIRS",
                format!("{}=/trace", self.0.display()),
            ),
        ]
    }

    /// Attempts started per idempotency key (the harness's own ledger).
    pub fn attempts(&self) -> std::collections::BTreeMap<String, usize> {
        let text = std::fs::read_to_string(self.0.join("attempts")).unwrap_or_default();
        let mut out = std::collections::BTreeMap::new();
        for line in text.lines() {
            let key = line.split_whitespace().next().unwrap_or_default();
            *out.entry(key.to_string()).or_insert(0) += 1;
        }
        out
    }

    pub fn wait_for_attempt(&self, key: &str, timeout: Duration) {
        let t = Instant::now();
        while !self.attempts().contains_key(key) {
            assert!(
                t.elapsed() < timeout,
                "no attempt of {key} within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

pub fn status(l: &str, id: &str) -> Value {
    invoke(l, &json!({"action": "status", "id": id}))
}

/// The journal of `id` with the execution id taken out (so two runs of the
/// same workflow compare equal) and times dropped.
pub async fn journal_shape(id: &str) -> Vec<Value> {
    use cairn_core::Store as _;
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .load()
        .await;
    let store = cairn_store_dynamodb::DynamoStore::from_sdk_config(&sdk, &env("CAIRN_TABLE"));
    let ex = store
        .load(&cairn_core::ExecutionId::new(id).unwrap())
        .await
        .unwrap();
    ex.journal
        .iter()
        .map(|e| {
            let text = serde_json::to_string(&e.event).unwrap().replace(id, "ID");
            let mut v: Value = serde_json::from_str(&text).unwrap();
            // The seed is per execution; everything else must match.
            if let Some(started) = v.get_mut("started") {
                started["seed"] = json!(0);
            }
            v
        })
        .collect()
}
