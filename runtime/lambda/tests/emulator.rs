//! End to end through the real Lambda runtime API emulator: `cargo lambda
//! watch --only-lambda-apis` serves the runtime and invoke APIs, this test
//! starts the `cairn-lambda` bootstrap against it (a cold start, right before
//! the first invoke) with the function's environment from scripts/lambda-e2e,
//! and moto serves DynamoDB, its stream and EventBridge Scheduler. This test plays the rest of AWS: it invokes the
//! function, reads the table's stream with GetRecords and forwards the inbox
//! inserts in the exact event shape an event source mapping uses, and fires
//! timers by invoking the function with the payload given to the scheduler.
//!
//! Environment: CAIRN_TEST_LAMBDA_ENDPOINT (the emulator's invoke address),
//! CAIRN_TEST_LAMBDA_BIN (the bootstrap to start; it inherits the function's
//! environment: AWS_LAMBDA_RUNTIME_API, CAIRN_*), CAIRN_TEST_DYNAMODB_ENDPOINT
//! (moto), CAIRN_TABLE and CAIRN_SCHEDULER_GROUP (the function's table and
//! schedule group).

use aws_sdk_dynamodbstreams::types::{AttributeValue, ShardIteratorType};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn env(k: &str) -> String {
    std::env::var(k)
        .unwrap_or_else(|_| panic!("{k} is not set: run this test with scripts/lambda-e2e"))
}

struct Aws {
    lambda: String,
    table: String,
    group: String,
    dynamodb: aws_sdk_dynamodb::Client,
    streams: aws_sdk_dynamodbstreams::Client,
    scheduler: aws_sdk_scheduler::Client,
}

/// Invokes the function through the emulator's invoke endpoint.
fn invoke(lambda: &str, payload: &Value) -> Value {
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "900",
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "--data-binary",
            "@-",
        ])
        .arg(format!(
            // `_`: the function served by an API-only emulator.
            "{lambda}/2015-03-31/functions/_/invocations"
        ))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(payload.to_string().as_bytes())?;
            child.wait_with_output()
        })
        .expect("curl");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

async fn aws() -> Aws {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(env("CAIRN_TEST_DYNAMODB_ENDPOINT"))
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

fn attr_json(v: &AttributeValue) -> Value {
    match v {
        AttributeValue::S(s) => json!({"S": s}),
        AttributeValue::N(n) => json!({"N": n}),
        AttributeValue::Bool(b) => json!({"BOOL": b}),
        AttributeValue::Null(_) => json!({"NULL": true}),
        other => panic!("unexpected attribute in a Cairn inbox item: {other:?}"),
    }
}

impl Aws {
    /// Every inbox INSERT on the table's stream so far, as an event source
    /// mapping with Cairn's filter would deliver them.
    async fn inbox_inserts(&self) -> Value {
        let table = self
            .dynamodb
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .unwrap();
        let arn = table
            .table()
            .and_then(|t| t.latest_stream_arn())
            .expect("the table has a stream")
            .to_string();
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
                .shard_iterator
                .map(String::from);
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
                    let d = r.dynamodb().unwrap();
                    let keys: serde_json::Map<String, Value> = d
                        .keys()
                        .unwrap()
                        .iter()
                        .map(|(k, v)| (k.clone(), attr_json(v)))
                        .collect();
                    let is_inbox = keys
                        .get("sk")
                        .and_then(|s| s["S"].as_str())
                        .is_some_and(|s| s.starts_with("in#"));
                    if r.event_name().map(|e| e.as_str()) != Some("INSERT") || !is_inbox {
                        continue;
                    }
                    let image: serde_json::Map<String, Value> = d
                        .new_image()
                        .map(|m| m.iter().map(|(k, v)| (k.clone(), attr_json(v))).collect())
                        .unwrap_or_default();
                    records.push(json!({
                        "eventID": r.event_id(),
                        "eventName": "INSERT",
                        "eventVersion": r.event_version().unwrap_or("1.1"),
                        "eventSource": "aws:dynamodb",
                        "awsRegion": "us-east-1",
                        "dynamodb": {
                            "ApproximateCreationDateTime": d.approximate_creation_date_time().map(|t| t.secs()).unwrap_or(0),
                            "Keys": keys,
                            "NewImage": image,
                            "SequenceNumber": d.sequence_number(),
                            "SizeBytes": d.size_bytes().unwrap_or(0),
                            "StreamViewType": "NEW_IMAGE",
                        },
                        "eventSourceARN": arn,
                    }));
                }
                it = page.next_shard_iterator.map(String::from);
            }
        }
        json!({"Records": records})
    }

    /// The inputs of the wake schedules for `id`.
    async fn wakes_for(&self, id: &str) -> Vec<Value> {
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
struct Function(std::process::Child);

impl Function {
    /// Starts the bootstrap, as Lambda does on a cold start.
    fn start() -> Self {
        let bin = env("CAIRN_TEST_LAMBDA_BIN");
        let log = std::fs::File::create(env("CAIRN_TEST_LAMBDA_LOG")).expect("function log");
        let child = std::process::Command::new(&bin)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        Self(child)
    }

    /// Peak RSS of the function process so far, in MiB.
    fn peak_rss_mib(&self) -> f64 {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_the_lambda_runtime_emulator() {
    let aws = aws().await;
    let l = aws.lambda.clone();
    let function = Function::start();

    // Start: the swap runs to the end within the invocation, both outcomes.
    let t = Instant::now();
    let ok = invoke(
        &l,
        &json!({"action": "start", "workflow": "swap", "id": "emu-swap", "input": {"a": "alice", "b": "bob", "foo": 10, "bar": 20, "fail_at_step": null}}),
    );
    let first = t.elapsed();
    assert_eq!(ok["status"], "completed", "{ok}");
    assert_eq!(ok["output"]["status"], "succeeded");
    let bad = invoke(
        &l,
        &json!({"action": "start", "workflow": "swap", "id": "emu-swap-3", "input": {"a": "alice", "b": "bob", "foo": 10, "bar": 20, "fail_at_step": 3}}),
    );
    assert_eq!(bad["status"], "failed", "{bad}");
    assert!(
        bad["failure"]["message"]
            .as_str()
            .unwrap()
            .ends_with("compensated: refund bar to bob, refund foo to alice")
    );
    let mut warm = Vec::new();
    for i in 0..20 {
        let t = Instant::now();
        let r = invoke(
            &l,
            &json!({"action": "start", "workflow": "swap", "id": format!("emu-warm-{i}"), "input": {"a": "a", "b": "b", "foo": 1, "bar": 2}}),
        );
        warm.push(t.elapsed());
        assert_eq!(r["status"], "completed");
        if i == 0 {
            println!(
                "figure: requests for one swap (start + 4 steps + final): {}",
                r["requests"]
            );
        }
    }
    warm.sort();
    println!(
        "figure: first invoke (cold) {:.1} ms client-side; in the function: {}",
        first.as_secs_f64() * 1e3,
        ok["timing"]
    );
    println!(
        "figure: warm swap start-to-result p50 {:.1} ms (client-side, 20 invokes)",
        warm[10].as_secs_f64() * 1e3
    );

    // A signal: written by one invoke, advanced by the stream record.
    let w = invoke(
        &l,
        &json!({"action": "start", "workflow": "collect", "id": "emu-sig", "input": 1}),
    );
    assert_eq!(w["status"], "waiting", "{w}");
    let s = invoke(
        &l,
        &json!({"action": "signal", "id": "emu-sig", "name": "go", "payload": {"from": "stream"}}),
    );
    assert!(s["delivered"].is_string(), "{s}");
    assert_eq!(
        invoke(&l, &json!({"action": "status", "id": "emu-sig"}))["status"],
        "waiting"
    );
    let batch = aws.inbox_inserts().await;
    let n = batch["Records"].as_array().unwrap().len();
    assert!(n >= 1, "moto's stream has the inbox insert: {batch}");
    let r = invoke(&l, &batch);
    assert_eq!(r, json!({"batchItemFailures": []}));
    let st = invoke(&l, &json!({"action": "status", "id": "emu-sig"}));
    assert_eq!(st["status"], "completed", "{st}");
    assert_eq!(st["output"], json!([{"from": "stream"}]));
    // The same records again, then in reverse: harmless.
    assert_eq!(invoke(&l, &batch), json!({"batchItemFailures": []}));
    let mut reversed = batch.clone();
    reversed["Records"].as_array_mut().unwrap().reverse();
    assert_eq!(invoke(&l, &reversed), json!({"batchItemFailures": []}));
    assert_eq!(
        invoke(&l, &json!({"action": "status", "id": "emu-sig"}))["journal_len"],
        3
    );

    // A timer: the function scheduled its wake; fire it with that payload.
    let n = invoke(
        &l,
        &json!({"action": "start", "workflow": "nap", "id": "emu-nap", "input": 2000}),
    );
    assert_eq!(n["status"], "waiting", "{n}");
    println!(
        "figure: requests for start + suspend on a timer: {}",
        n["requests"]
    );
    let wakes = aws.wakes_for("emu-nap").await;
    assert_eq!(wakes.len(), 1, "{wakes:?}");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = invoke(&l, &wakes[0]);
    assert_eq!(r["outcome"], "completed", "{r}");
    println!(
        "figure: warm advance on a wake {:.1} ms, requests {}",
        r["advance_ms"].as_f64().unwrap_or(0.0),
        r["requests"]
    );
    assert_eq!(
        invoke(&l, &wakes[0])["outcome"],
        "completed",
        "a duplicate wake is harmless"
    );

    // A malformed event: a clear error, nothing changed.
    let before = invoke(&l, &json!({"action": "status", "id": "emu-nap"}));
    let err = invoke(&l, &json!({"hello": "world"}));
    assert_eq!(err["errorType"], "CRN401.BadRequest", "{err}");
    assert!(
        err["errorMessage"]
            .as_str()
            .unwrap()
            .contains("unrecognized event"),
        "{err}"
    );
    assert_eq!(
        invoke(&l, &json!({"action": "status", "id": "emu-nap"})),
        before
    );
    println!(
        "figure: function process peak RSS {:.1} MiB",
        function.peak_rss_mib()
    );
}
