//! The table's event source mapping, played as AWS documents it: it reads
//! the stream from DynamoDB Local (DescribeStream, GetShardIterator,
//! GetRecords), keeps the records that pass the stacks' filter, batches
//! them, and invokes the function through the runtime API emulator.
//!
//! The rules it follows (Lambda's "Lambda parameters for Amazon DynamoDB
//! event source mappings" and "Configuring partial batch response with
//! DynamoDB and Lambda"), with the stacks' settings as defaults:
//!
//! - `FilterCriteria`: only `INSERT`s of inbox items (`sk` begins `in#`)
//!   reach the function; the rest are checkpointed unseen.
//! - `BatchSize` 100 and `MaximumBatchingWindowInSeconds` 1: a batch goes
//!   when it is full or its first record has waited the window.
//! - `ParallelizationFactor` 2: records are split over concurrent batches
//!   by partition key, so one execution's records stay in order.
//! - `ReportBatchItemFailures`: an empty or null `batchItemFailures` is a
//!   complete success; a null or empty `itemIdentifier`, or one naming no
//!   record of the batch, is a complete failure; otherwise the checkpoint
//!   moves to the failed record with the lowest sequence number and the
//!   records from there are retried.
//! - `BisectBatchOnFunctionError`: a function error (an error reply, a
//!   crashed or timed-out invocation) splits the batch in two, and each half
//!   is retried on its own; with a partial failure the batch is split at
//!   the returned sequence number (only the rest is retried).
//! - `MaximumRetryAttempts` 10: past it, the records go to the on-failure
//!   destination (here a list the test reads) and the shard moves on.
//!
//! A failing batch blocks the records behind it on its lane, as a failing
//! batch blocks its shard in Lambda. For chaos, every `duplicate_every`-th
//! batch is also delivered a second time, concurrently with the first
//! (Lambda's delivery is at least once).

use super::{Aws, esm_record};
use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The stacks' `FilterCriteria`: `{"eventName": ["INSERT"], "dynamodb":
/// {"Keys": {"sk": {"S": [{"prefix": "in#"}]}}}}`.
pub fn is_inbox_insert(r: &Record) -> bool {
    let insert = r.event_name().map(|e| e.as_str()) == Some("INSERT");
    let inbox = r
        .dynamodb()
        .and_then(|d| d.keys())
        .and_then(|k| k.get("sk"))
        .and_then(|v| v.as_s().ok())
        .is_some_and(|s| s.starts_with("in#"));
    insert && inbox
}

/// The mapping's settings (defaults: the stacks').
#[derive(Debug, Clone)]
pub struct Config {
    /// `BatchSize`.
    pub batch_size: usize,
    /// `MaximumBatchingWindowInSeconds`.
    pub batching_window: Duration,
    /// `ParallelizationFactor`.
    pub parallelization: usize,
    /// `MaximumRetryAttempts`.
    pub max_retries: u32,
    /// `BisectBatchOnFunctionError`.
    pub bisect_on_error: bool,
    /// `FunctionResponseTypes: [ReportBatchItemFailures]`.
    pub report_batch_item_failures: bool,
    /// The function's timeout: an invocation with no reply by then failed.
    pub function_timeout: Duration,
    /// Chaos: deliver every n-th batch twice at once.
    pub duplicate_every: Option<u64>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            batch_size: 100,
            batching_window: Duration::from_secs(1),
            parallelization: 2,
            max_retries: 10,
            bisect_on_error: true,
            report_batch_item_failures: true,
            function_timeout: Duration::from_secs(30),
            duplicate_every: None,
        }
    }
}

/// What the mapping did.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Stream records read (all of them, before the filter).
    pub records_read: usize,
    /// Records the filter let through.
    pub records_matched: usize,
    /// Invocations of the function.
    pub invocations: usize,
    /// Batches formed (before retries and bisections).
    pub batches: usize,
    /// Invocations that failed (error reply, crash, timeout).
    pub function_errors: usize,
    /// Replies that reported some records failed.
    pub partial_failures: usize,
    /// Replies the rules read as a complete failure.
    pub whole_failures: usize,
    /// Batches split in two after a function error.
    pub bisections: usize,
    /// Retries of a batch (or of what was left of it).
    pub retries: usize,
    /// Batches delivered twice at once (chaos).
    pub duplicates: usize,
    /// Sequence numbers sent to the on-failure destination.
    pub discarded: Vec<String>,
}

/// A running mapping; stopped when dropped.
pub struct Pump {
    stats: Arc<Mutex<Stats>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

struct Lane {
    lambda: String,
    config: Config,
    stats: Arc<Mutex<Stats>>,
    sent: std::sync::atomic::AtomicU64,
}

impl Pump {
    /// Starts reading the table's stream from its current end (the
    /// mapping's `StartingPosition: LATEST`), and invoking the function.
    pub async fn start(aws: &Aws, config: Config) -> Pump {
        let arn = aws.stream_arn().await;
        let stats = Arc::new(Mutex::new(Stats::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        let mut lanes = Vec::new();
        for _ in 0..config.parallelization.max(1) {
            let (tx, rx) = mpsc::unbounded_channel::<Value>();
            lanes.push(tx);
            let lane = Arc::new(Lane {
                lambda: aws.lambda.clone(),
                config: config.clone(),
                stats: stats.clone(),
                sent: Default::default(),
            });
            let stop = stop.clone();
            tasks.push(tokio::spawn(async move { lane.run(rx, stop).await }));
        }
        // The shards there now start at their end; shards opened later
        // (DynamoDB rolls them over) from their beginning.
        let streams = aws.streams.clone();
        let mut iterators = Vec::new();
        let mut known = HashSet::new();
        for shard in describe(&streams, &arn).await {
            let it = iterator(&streams, &arn, &shard, ShardIteratorType::Latest).await;
            known.insert(shard);
            iterators.extend(it);
        }
        let (stats2, stop2) = (stats.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut last_describe = Instant::now();
            while !stop2.load(Ordering::SeqCst) {
                if last_describe.elapsed() > Duration::from_secs(2) {
                    last_describe = Instant::now();
                    for shard in describe(&streams, &arn).await {
                        if known.insert(shard.clone()) {
                            iterators.extend(
                                iterator(&streams, &arn, &shard, ShardIteratorType::TrimHorizon)
                                    .await,
                            );
                        }
                    }
                }
                let mut next = Vec::new();
                for it in iterators.drain(..) {
                    let page = match streams.get_records().shard_iterator(&it).send().await {
                        Ok(p) => p,
                        Err(e) => {
                            eprintln!("pump: GetRecords failed ({e:?}); retrying");
                            next.push(it);
                            continue;
                        }
                    };
                    for r in page.records() {
                        stats2.lock().unwrap().records_read += 1;
                        if !is_inbox_insert(r) {
                            continue;
                        }
                        stats2.lock().unwrap().records_matched += 1;
                        let record = esm_record(r, &arn);
                        let pk = record["dynamodb"]["Keys"]["pk"]["S"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string();
                        let mut h = std::collections::hash_map::DefaultHasher::new();
                        pk.hash(&mut h);
                        let lane = (h.finish() % lanes.len() as u64) as usize;
                        let _ = lanes[lane].send(record);
                    }
                    // A closed shard has no next iterator.
                    next.extend(page.next_shard_iterator);
                }
                iterators = next;
                // Lambda polls each shard about four times a second.
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }));
        Pump { stats, stop, tasks }
    }

    /// What the mapping did so far.
    pub fn stats(&self) -> Stats {
        self.stats.lock().unwrap().clone()
    }

    /// Stops reading and invoking.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }
}

impl Drop for Pump {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn describe(streams: &aws_sdk_dynamodbstreams::Client, arn: &str) -> Vec<String> {
    match streams.describe_stream().stream_arn(arn).send().await {
        Ok(d) => d
            .stream_description()
            .map(|s| {
                s.shards()
                    .iter()
                    .filter_map(|sh| sh.shard_id().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        Err(e) => {
            eprintln!("pump: DescribeStream failed ({e:?})");
            Vec::new()
        }
    }
}

async fn iterator(
    streams: &aws_sdk_dynamodbstreams::Client,
    arn: &str,
    shard: &str,
    kind: ShardIteratorType,
) -> Option<String> {
    streams
        .get_shard_iterator()
        .stream_arn(arn)
        .shard_id(shard)
        .shard_iterator_type(kind)
        .send()
        .await
        .expect("GetShardIterator")
        .shard_iterator
}

/// How one invocation went.
#[derive(Debug)]
pub enum Reply {
    /// The function returned this.
    Returned(Value),
    /// The function returned an error (`errorType`, `errorMessage`).
    Error(Value),
    /// No reply: the container crashed, or the invocation timed out.
    Failed(String),
}

/// What the mapping makes of a reply, for a batch of `n` records.
#[derive(Debug, PartialEq)]
enum Verdict {
    Success,
    /// Records from this index on failed.
    Partial(usize),
    Whole,
}

fn verdict(reply: &Value, batch: &[Value], report: bool) -> Verdict {
    if !report {
        return Verdict::Success;
    }
    let failures = match reply.get("batchItemFailures") {
        None | Some(Value::Null) => return Verdict::Success,
        Some(Value::Array(a)) if a.is_empty() => return Verdict::Success,
        Some(Value::Array(a)) => a,
        Some(_) => return Verdict::Whole,
    };
    let mut lowest = usize::MAX;
    for f in failures {
        let Some(id) = f.get("itemIdentifier").and_then(Value::as_str) else {
            return Verdict::Whole;
        };
        match batch
            .iter()
            .position(|r| r["dynamodb"]["SequenceNumber"].as_str() == Some(id))
        {
            Some(i) if !id.is_empty() => lowest = lowest.min(i),
            _ => return Verdict::Whole,
        }
    }
    Verdict::Partial(lowest)
}

impl Lane {
    async fn run(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<Value>, stop: Arc<AtomicBool>) {
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            let deadline = tokio::time::Instant::now() + self.config.batching_window;
            while batch.len() < self.config.batch_size {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(r)) => batch.push(r),
                    Ok(None) | Err(_) => break,
                }
            }
            if stop.load(Ordering::SeqCst) {
                return;
            }
            {
                let mut s = self.stats.lock().unwrap();
                s.batches += 1;
            }
            self.deliver(batch, 0).await;
        }
    }

    /// Delivers `batch` until it succeeds or runs out of retries.
    fn deliver(
        self: &Arc<Self>,
        mut batch: Vec<Value>,
        mut retries: u32,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            while !batch.is_empty() {
                let n = self.sent.fetch_add(1, Ordering::SeqCst) + 1;
                let duplicate = self
                    .config
                    .duplicate_every
                    .is_some_and(|k| n.is_multiple_of(k));
                let reply = if duplicate {
                    self.stats.lock().unwrap().duplicates += 1;
                    let (a, _b) = tokio::join!(self.invoke(&batch), self.invoke(&batch));
                    a
                } else {
                    self.invoke(&batch).await
                };
                match reply {
                    Reply::Returned(v) => {
                        match verdict(&v, &batch, self.config.report_batch_item_failures) {
                            Verdict::Success => {
                                return;
                            }
                            Verdict::Partial(i) => {
                                self.stats.lock().unwrap().partial_failures += 1;
                                batch.drain(..i);
                            }
                            Verdict::Whole => self.stats.lock().unwrap().whole_failures += 1,
                        }
                    }
                    failed @ (Reply::Error(_) | Reply::Failed(_)) => {
                        self.stats.lock().unwrap().function_errors += 1;
                        eprintln!("pump: invocation failed: {failed:?}");
                        if self.config.bisect_on_error && batch.len() > 1 {
                            self.stats.lock().unwrap().bisections += 1;
                            let second = batch.split_off(batch.len() / 2);
                            self.deliver(batch, retries).await;
                            self.deliver(second, retries).await;
                            return;
                        }
                    }
                }
                retries += 1;
                if retries > self.config.max_retries {
                    let mut s = self.stats.lock().unwrap();
                    s.discarded.extend(batch.iter().map(|r| {
                        r["dynamodb"]["SequenceNumber"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string()
                    }));
                    return;
                }
                self.stats.lock().unwrap().retries += 1;
                tokio::time::sleep(Duration::from_millis(100 * u64::from(retries.min(10)))).await;
            }
        })
    }

    async fn invoke(&self, batch: &[Value]) -> Reply {
        self.stats.lock().unwrap().invocations += 1;
        let payload = json!({ "Records": batch });
        let (lambda, timeout) = (self.lambda.clone(), self.config.function_timeout);
        tokio::task::spawn_blocking(move || invoke_with_timeout(&lambda, &payload, timeout))
            .await
            .unwrap_or_else(|e| Reply::Failed(format!("the invoking thread died: {e}")))
    }
}

/// One invocation through the emulator's invoke endpoint, failed when the
/// function replies an error, dies, or runs past `timeout`.
pub fn invoke_with_timeout(lambda: &str, payload: &Value, timeout: Duration) -> Reply {
    use std::io::Write;
    let mut child = match std::process::Command::new("curl")
        .args(["-s", "-o", "-", "-w", "\n%{http_code}", "--max-time"])
        .arg(format!("{:.1}", timeout.as_secs_f64()))
        .args([
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "--data-binary",
            "@-",
        ])
        .arg(format!("{lambda}/2015-03-31/functions/_/invocations"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return Reply::Failed(format!("cannot run curl: {e}")),
    };
    let _ = child
        .stdin
        .take()
        .unwrap()
        .write_all(payload.to_string().as_bytes());
    let out = match child.wait_with_output() {
        Ok(o) => o,
        Err(e) => return Reply::Failed(format!("curl: {e}")),
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    if !out.status.success() {
        return Reply::Failed(format!(
            "no reply (curl exit {:?}; a crash or a timeout)",
            out.status.code()
        ));
    }
    let code: u16 = code.trim().parse().unwrap_or(0);
    let value: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    if value.get("errorType").is_some() {
        return Reply::Error(value);
    }
    if !(200..300).contains(&code) {
        return Reply::Failed(format!("HTTP {code}: {body}"));
    }
    Reply::Returned(value)
}

#[cfg(test)]
mod rules {
    use super::*;

    fn batch(n: usize) -> Vec<Value> {
        (0..n)
            .map(|i| json!({"dynamodb": {"SequenceNumber": format!("{}", 100 + i)}}))
            .collect()
    }

    #[test]
    fn the_documented_success_and_failure_conditions() {
        let b = batch(4);
        for ok in [
            json!(null),
            json!({}),
            json!({"batchItemFailures": null}),
            json!({"batchItemFailures": []}),
        ] {
            assert_eq!(verdict(&ok, &b, true), Verdict::Success, "{ok}");
        }
        for whole in [
            json!({"batchItemFailures": [{"itemIdentifier": ""}]}),
            json!({"batchItemFailures": [{"itemIdentifier": null}]}),
            json!({"batchItemFailures": [{"item": "101"}]}),
            json!({"batchItemFailures": [{"itemIdentifier": "999"}]}),
        ] {
            assert_eq!(verdict(&whole, &b, true), Verdict::Whole, "{whole}");
        }
        // The lowest sequence number is the checkpoint.
        let two =
            json!({"batchItemFailures": [{"itemIdentifier": "103"}, {"itemIdentifier": "101"}]});
        assert_eq!(verdict(&two, &b, true), Verdict::Partial(1));
        // Without ReportBatchItemFailures the reply is not read.
        assert_eq!(verdict(&two, &b, false), Verdict::Success);
    }
}
