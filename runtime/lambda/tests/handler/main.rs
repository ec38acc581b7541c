//! Handler tests in process, against the DynamoDB and Scheduler emulator
//! (DynamoDB Local, and moto for EventBridge Scheduler and SSM Parameter
//! Store) that scripts/test starts, with realistic event payloads: the
//! library's public `App` as the function's `main` drives it.

use aws_lambda_events::event::dynamodb::{Event as StreamEvent, EventRecord, StreamRecord};
use base64::Engine as _;
use cairn_core::{ExecutionId, ListFilter, Payload, Timestamp};
use cairn_lambda::{
    AWS_CREDENTIAL_VARS, App, HandlerError, Settings, at_expression, deadline, parse_pairs,
    schedule_name,
};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

mod api;

const ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:cairn";

struct Fixture {
    app: App,
    table: String,
    _dir: tempfile::TempDir,
    scheduler: aws_sdk_scheduler::Client,
    group: String,
}

fn run<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

async fn fixture() -> Fixture {
    fixture_with(|_| {}).await
}

/// A fixture whose settings `change` adjusts.
async fn fixture_with(change: impl FnOnce(&mut Settings)) -> Fixture {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    // The endpoints come from the environment, per service, as in Lambda:
    // AWS_ENDPOINT_URL_DYNAMODB (DynamoDB Local) and
    // AWS_ENDPOINT_URL_SCHEDULER (moto), both set by scripts/lib.sh.
    for var in ["AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_SCHEDULER"] {
        assert!(
            std::env::var(var).is_ok(),
            "{var} is not set: run the tests with scripts/test, which starts DynamoDB Local and moto"
        );
    }
    let sdk = test_sdk().await;
    let table = format!("cairn-lambda-{}-{n}", std::process::id());
    let group = format!("cairn-{}-{n}", std::process::id());
    let store = cairn_store_dynamodb::DynamoStore::from_sdk_config(&sdk, &table);
    cairn_store_dynamodb::create_table(store.client(), store.table())
        .await
        .unwrap();
    let scheduler = aws_sdk_scheduler::Client::new(&sdk);
    scheduler
        .create_schedule_group()
        .name(&group)
        .send()
        .await
        .unwrap();
    // The components directory, as the packaging script lays it out (a
    // cache: which component starts a workflow is the table's pointer).
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::new(table);
    settings.components_dir = Some(dir.path().to_path_buf());
    settings.scheduler_group = Some(group.clone());
    settings.scheduler_role_arn = Some("arn:aws:iam::123456789012:role/cairn-scheduler".into());
    settings.cache_dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-cache");
    // A few shards, not the deployed 128: the sweeps these tests run are a
    // scatter-gather query per shard, and the store's own tests cover the
    // sharding (order, completeness, changing the count).
    settings.index_shards = 4;
    change(&mut settings);
    let app = App::new(settings, &sdk, Instant::now()).await.unwrap();
    for path in [
        cairn_test_artifacts::SWAP_SAGA,
        cairn_test_artifacts::TESTKIT,
    ] {
        let bytes = std::fs::read(path).unwrap();
        let hash = cairn_host::component_hash(&bytes);
        std::fs::write(dir.path().join(format!("{hash}.wasm")), &bytes).unwrap();
        // `cairn register --store dynamodb`: bytes and pointers in the table.
        app.engine()
            .register(cairn_host::ComponentBytes::new(bytes))
            .await
            .unwrap();
    }
    Fixture {
        app,
        table: store.table().to_owned(),
        _dir: dir,
        scheduler,
        group,
    }
}

/// The SDK configuration of the tests: endpoints per service from the
/// environment (AWS_ENDPOINT_URL_SSM too: moto), static test credentials.
async fn test_sdk() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb_credentials())
        .load()
        .await
}

fn aws_sdk_dynamodb_credentials() -> aws_sdk_scheduler::config::Credentials {
    aws_sdk_scheduler::config::Credentials::new("test", "test", None, None, "static")
}

impl Fixture {
    async fn call(&self, v: Value) -> Result<Value, HandlerError> {
        self.app.handle(v, ARN, None).await
    }

    /// The inputs of the wake schedules in the group.
    async fn schedules(&self) -> Vec<(String, Value)> {
        let list = self
            .scheduler
            .list_schedules()
            .group_name(&self.group)
            .send()
            .await
            .unwrap();
        let mut out = Vec::new();
        for s in list.schedules() {
            let name = s.name().unwrap().to_string();
            let got = self
                .scheduler
                .get_schedule()
                .name(&name)
                .group_name(&self.group)
                .send()
                .await
                .unwrap();
            let input: Value =
                serde_json::from_str(got.target().unwrap().input().unwrap()).unwrap();
            assert_eq!(got.target().unwrap().arn(), ARN);
            assert!(
                got.schedule_expression().unwrap().starts_with("at("),
                "{:?}",
                got.schedule_expression()
            );
            out.push((name, input));
        }
        out
    }
}

/// A stream batch as the event source mapping delivers it, built with the
/// `aws_lambda_events` types.
fn stream_batch(records: &[(&str, &str)]) -> Value {
    let mut event = StreamEvent::default();
    for (i, (id, seq)) in records.iter().enumerate() {
        let mut change = StreamRecord::default();
        change.keys.insert(
            "pk".into(),
            serde_dynamo::AttributeValue::S(format!("exec#{id}")),
        );
        change.keys.insert(
            "sk".into(),
            serde_dynamo::AttributeValue::S(format!("in#01J{i:023}")),
        );
        change.new_image = change.keys.clone();
        change.new_image.insert(
            "kind".into(),
            serde_dynamo::AttributeValue::S("signal".into()),
        );
        change.sequence_number = Some(seq.to_string());
        change.size_bytes = 120;
        let record = EventRecord {
            aws_region: "us-east-1".into(),
            change,
            event_id: format!("ev-{i}"),
            event_name: "INSERT".into(),
            event_source: Some("aws:dynamodb".into()),
            event_version: Some("1.1".into()),
            event_source_arn: Some("arn:aws:dynamodb:us-east-1:123456789012:table/cairn/stream/2026-11-27T00:00:00.000".into()),
            ..Default::default()
        };
        event.records.push(record);
    }
    serde_json::to_value(event).unwrap()
}

#[test]
fn start_runs_the_swap_to_the_end_and_is_idempotent() {
    run(async {
        let f = fixture().await;
        let input = json!({"a": "alice", "b": "bob", "foo": 10, "bar": 20, "fail_at_step": null});
        let v = f
            .call(json!({"action": "start", "workflow": "swap", "id": "s1", "input": input}))
            .await
            .unwrap();
        assert_eq!(v["status"], "completed", "{v}");
        assert_eq!(v["output"]["status"], "succeeded");
        assert_eq!(v["created"], true);
        let again = f
            .call(json!({"action": "start", "workflow": "swap", "id": "s1", "input": input}))
            .await
            .unwrap();
        assert_eq!(
            (again["created"].as_bool(), again["journal_len"].as_u64()),
            (Some(false), Some(6)),
            "{again}"
        );
        let failing = json!({"a": "alice", "b": "bob", "foo": 10, "bar": 20, "fail_at_step": 3});
        let v = f
            .call(json!({"action": "start", "workflow": "swap", "id": "s2", "input": failing}))
            .await
            .unwrap();
        assert_eq!(v["status"], "failed");
        assert!(
            v["failure"]["message"]
                .as_str()
                .unwrap()
                .contains("compensated: refund bar to bob, refund foo to alice"),
            "{v}"
        );
    })
}

/// What a short execution costs in DynamoDB requests: the start is one
/// put (entry 0 and the lease in the meta), each activity completion one
/// put, and the last completion goes with the end in one update of the
/// meta. Six journal entries, five writes, no transaction.
#[test]
fn a_swap_saga_writes_once_per_step_and_its_end_with_the_last() {
    run(async {
        let f = fixture().await;
        let input = json!({"a": "alice", "b": "bob", "foo": 10, "bar": 20, "fail_at_step": null});
        // The first start of a process also records the shard count.
        f.call(json!({"action": "start", "workflow": "swap", "id": "w0", "input": input}))
            .await
            .unwrap();
        let v = f
            .call(json!({"action": "start", "workflow": "swap", "id": "w1", "input": input}))
            .await
            .unwrap();
        assert_eq!(
            (v["status"].as_str(), v["journal_len"].as_u64()),
            (Some("completed"), Some(6)),
            "{v}"
        );
        let r = &v["requests"];
        let n = |op: &str| r[format!("dynamodb:{op}")].as_u64().unwrap_or(0);
        assert_eq!(
            (n("PutItem"), n("UpdateItem"), n("TransactWriteItems")),
            (4, 1, 0),
            "the start and three completions are puts, the last completion and the end one update: {r}"
        );
        // The same journal as ever, read by a process that wrote none of it.
        let other = cairn_store_dynamodb::DynamoStore::from_sdk_config(&test_sdk().await, &f.table);
        let ex = cairn_core::Store::load(&other, &ExecutionId::new("w1").unwrap())
            .await
            .unwrap();
        let kinds: Vec<&str> = ex.journal.iter().map(|e| e.event.kind()).collect();
        assert_eq!(
            kinds,
            [
                "started",
                "activity-completed",
                "activity-completed",
                "activity-completed",
                "activity-completed",
                "completed"
            ]
        );
        assert_eq!(
            ex.journal.iter().map(|e| e.index).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4, 5]
        );
    })
}

#[test]
fn a_signal_is_written_then_its_stream_record_advances_the_execution() {
    run(async {
        let f = fixture().await;
        let v = f
            .call(json!({"action": "start", "workflow": "collect", "id": "c1", "input": 1}))
            .await
            .unwrap();
        assert_eq!(v["status"], "waiting");
        let v = f
            .call(json!({"action": "signal", "id": "c1", "name": "go", "payload": {"n": 7}}))
            .await
            .unwrap();
        assert!(v["delivered"].is_string());
        // Writing the signal does not advance: the stream does.
        assert_eq!(
            f.call(json!({"action": "status", "id": "c1"}))
                .await
                .unwrap()["status"],
            "waiting"
        );
        let r = f.call(stream_batch(&[("c1", "100")])).await.unwrap();
        assert_eq!(r, json!({"batchItemFailures": []}));
        let st = f
            .call(json!({"action": "status", "id": "c1"}))
            .await
            .unwrap();
        assert_eq!(
            (st["status"].as_str(), &st["output"]),
            (Some("completed"), &json!([{"n": 7}]))
        );
        // The same record again, and an older one after it: harmless.
        assert_eq!(
            f.call(stream_batch(&[("c1", "100"), ("c1", "99")]))
                .await
                .unwrap(),
            json!({"batchItemFailures": []})
        );
        assert_eq!(
            f.call(json!({"action": "status", "id": "c1"}))
                .await
                .unwrap()["journal_len"],
            3
        );
    })
}

#[test]
fn a_failing_execution_fails_only_its_own_records() {
    run(async {
        let f = fixture().await;
        f.call(json!({"action": "start", "workflow": "collect", "id": "ok", "input": 1}))
            .await
            .unwrap();
        f.call(json!({"action": "signal", "id": "ok", "name": "go", "payload": 1}))
            .await
            .unwrap();
        // "ghost" does not exist: its advance fails, its records are retried.
        let r = f
            .call(stream_batch(&[
                ("ghost", "200"),
                ("ok", "201"),
                ("ghost", "202"),
            ]))
            .await
            .unwrap();
        assert_eq!(
            r,
            json!({"batchItemFailures": [{"itemIdentifier": "200"}, {"itemIdentifier": "202"}]})
        );
        assert_eq!(
            f.call(json!({"action": "status", "id": "ok"}))
                .await
                .unwrap()["status"],
            "completed"
        );
    })
}

#[test]
fn a_durable_timer_schedules_a_wake_that_finishes_it() {
    run(async {
        let f = fixture().await;
        // Long enough that the early delivery below comes before it is due
        // on a loaded machine too; the wait after it ends at the due time.
        let v = f
            .call(json!({"action": "start", "workflow": "nap", "id": "n1", "input": 4000}))
            .await
            .unwrap();
        assert_eq!(v["status"], "waiting", "{v}");
        let schedules = f.schedules().await;
        assert_eq!(schedules.len(), 1, "{schedules:?}");
        let wake = schedules[0].1.clone();
        assert_eq!(
            (wake["action"].as_str(), wake["id"].as_str()),
            (Some("wake"), Some("n1"))
        );
        // Delivered early (clock skew, a duplicate): harmless, still waiting.
        assert_eq!(f.call(wake.clone()).await.unwrap()["outcome"], "waiting");
        let due = Timestamp::from_millis(wake["at"].as_u64().expect("the wake names its time"));
        tokio::time::sleep(due.since(Timestamp::now_system()) + Duration::from_millis(100)).await;
        assert_eq!(f.call(wake.clone()).await.unwrap()["outcome"], "completed");
        // Again (a duplicate delivery): harmless.
        assert_eq!(f.call(wake).await.unwrap()["outcome"], "completed");
        assert_eq!(
            f.call(json!({"action": "status", "id": "n1"}))
                .await
                .unwrap()["journal_len"],
            4
        );
    })
}

#[test]
fn a_timer_that_no_longer_matters_has_its_schedule_deleted() {
    run(async {
        let f = fixture().await;
        // Waits for `approve` with a one-hour timeout: one schedule.
        f.call(json!({"action": "start", "workflow": "approval", "id": "a1", "input": {"delay_ms": 0, "timeout_ms": 3_600_000}})).await.unwrap();
        assert_eq!(f.schedules().await.len(), 1);
        f.call(json!({"action": "signal", "id": "a1", "name": "approve", "payload": true}))
            .await
            .unwrap();
        f.call(stream_batch(&[("a1", "300")])).await.unwrap();
        assert_eq!(
            f.call(json!({"action": "status", "id": "a1"}))
                .await
                .unwrap()["output"],
            json!({"approved": true})
        );
        assert_eq!(
            f.schedules().await.len(),
            0,
            "the timeout's schedule was deleted"
        );
    })
}

#[test]
fn near_the_deadline_the_driver_stops_at_a_step_and_schedules_a_continuation() {
    run(async {
        let f = fixture().await;
        // 3 s left: the advance keeps a 1 s margin, so it has 2 s for ten
        // 300 ms steps (the start's own writes and load first, slower on
        // a busy machine): it stops at a step boundary before the end.
        let deadline = Timestamp::now_system().plus(Duration::from_millis(3000));
        let v = f
            .app
            .handle(json!({"action": "start", "workflow": "slow", "id": "long", "input": {"steps": 10, "ms": 300}}), ARN, Some(deadline))
            .await
            .unwrap();
        assert_eq!(v["outcome"], "yielded", "{v}");
        assert!(
            Timestamp::now_system() < deadline,
            "stopped before the deadline"
        );
        let done = v["journal_len"].as_u64().unwrap();
        assert!((2..11).contains(&done), "{v}");
        let schedules = f.schedules().await;
        assert_eq!(schedules.len(), 1);
        let r = f.call(schedules[0].1.clone()).await.unwrap();
        assert_eq!(r["outcome"], "completed", "{r}");
        assert_eq!(
            f.call(json!({"action": "status", "id": "long"}))
                .await
                .unwrap()["journal_len"],
            12
        );
    })
}

#[test]
fn the_sweep_finds_due_executions_whose_wake_was_lost() {
    run(async {
        let f = fixture().await;
        f.call(json!({"action": "start", "workflow": "nap", "id": "lost", "input": 1500}))
            .await
            .unwrap();
        for (name, _) in f.schedules().await {
            f.scheduler
                .delete_schedule()
                .name(name)
                .group_name(&f.group)
                .send()
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(1600)).await;
        let r = f.call(json!({"action": "sweep"})).await.unwrap();
        assert_eq!(
            (r["found"].as_u64(), r["outcomes"]["completed"].as_u64()),
            (Some(1), Some(1)),
            "{r}"
        );
        assert_eq!(
            f.call(json!({"action": "status", "id": "lost"}))
                .await
                .unwrap()["status"],
            "completed"
        );
    })
}

#[test]
fn malformed_events_get_a_clear_error_and_change_nothing() {
    run(async {
        let f = fixture().await;
        for (event, words) in [
            (json!({}), "unrecognized event"),
            (json!([1, 2]), "unrecognized event"),
            (json!({"action": "wake"}), "missing field `id`"),
            (json!({"action": "sweep", "extra": 1}), "unknown field"),
            (
                json!({"Records": [{"eventName": "INSERT"}]}),
                "not a DynamoDB stream batch",
            ),
        ] {
            let err = f.call(event.clone()).await.unwrap_err();
            assert!(err.error_type.starts_with("CRN401"), "{event}: {err:?}");
            assert!(err.message.contains(words), "{event}: {}", err.message);
        }
        // API requests answer their errors (tests/api.rs has them all).
        let err = f
            .call(json!({"action": "signal", "id": "nobody", "name": "go"}))
            .await
            .unwrap();
        assert_eq!(err["error"]["code"], "CRN201", "{err}");
        let err = f
            .call(json!({"action": "start", "workflow": "nope", "input": 1}))
            .await
            .unwrap();
        assert_eq!(err["error"]["code"], "CRN402", "{err}");
        let list = f.app.engine().list(ListFilter::default()).await.unwrap();
        assert!(list.is_empty(), "nothing was created: {list:?}");
    })
}

#[test]
fn function_url_requests_get_http_responses() {
    run(async {
        let f = fixture().await;
        let body =
            json!({"action": "start", "workflow": "collect", "id": "u1", "input": 1}).to_string();
        let req = json!({
            "version": "2.0", "rawPath": "/", "rawQueryString": "", "headers": {"content-type": "application/json"},
            "requestContext": {"timeEpoch": 1_764_547_200_000_i64, "http": {"method": "POST", "path": "/"}, "requestId": "r1"},
            "body": base64::engine::general_purpose::STANDARD.encode(&body), "isBase64Encoded": true,
        });
        let r = f.call(req).await.unwrap();
        assert_eq!(r["statusCode"], 200, "{r}");
        let inner: Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
        assert_eq!(inner["status"], "waiting");
        let bad = json!({"rawPath": "/", "requestContext": {}, "body": "not json"});
        let r = f.call(bad).await.unwrap();
        assert_eq!(r["statusCode"], 400, "{r}");
    })
}

#[test]
fn deadlines_are_read_as_epoch_or_as_a_duration() {
    let now = Timestamp::from_millis(1_795_818_816_067);
    assert_eq!(deadline(0, now), None);
    assert_eq!(
        deadline(600_000, now),
        Some(Timestamp::from_millis(1_795_819_416_067))
    );
    assert_eq!(
        deadline(1_795_818_900_000, now),
        Some(Timestamp::from_millis(1_795_818_900_000))
    );
}

#[test]
fn a_query_reads_a_running_execution_and_writes_nothing() {
    run(async {
        let f = fixture().await;
        f.call(json!({"action": "start", "workflow": "ticker", "id": "tk", "input": null}))
            .await
            .unwrap();
        for _ in 0..2 {
            f.call(json!({"action": "signal", "id": "tk", "name": "tick", "payload": 1}))
                .await
                .unwrap();
        }
        f.call(stream_batch(&[("tk", "200")])).await.unwrap();
        let before = f
            .call(json!({"action": "status", "id": "tk"}))
            .await
            .unwrap();
        let q = f
            .call(json!({"action": "query", "id": "tk", "name": "count", "args": null}))
            .await
            .unwrap();
        assert_eq!(q["answer"], 2, "{q}");
        let after = f
            .call(json!({"action": "status", "id": "tk"}))
            .await
            .unwrap();
        assert_eq!(
            before["journal_len"], after["journal_len"],
            "a query appends nothing"
        );
        let unknown = f
            .call(json!({"action": "query", "id": "tk", "name": "nope", "args": null}))
            .await
            .unwrap();
        assert!(
            unknown["failure"]["message"]
                .as_str()
                .unwrap()
                .contains("answers no query named 'nope'"),
            "{unknown}"
        );
    })
}

#[test]
fn children_report_to_their_parent_through_the_stream_and_a_cancel_reaches_them() {
    run(async {
        let f = fixture().await;
        let v = f
            .call(json!({"action": "start", "workflow": "family", "id": "fam", "input": 2}))
            .await
            .unwrap();
        assert_eq!(v["status"], "waiting", "{v}");
        // The parent's invocation started its children; each waits for `go`.
        for (child, seq) in [("fam.c0", "300"), ("fam.c1", "301")] {
            let st = f
                .call(json!({"action": "status", "id": child}))
                .await
                .unwrap();
            assert_eq!(st["status"], "waiting", "{child}: {st}");
            f.call(json!({"action": "signal", "id": child, "name": "go", "payload": child}))
                .await
                .unwrap();
            f.call(stream_batch(&[(child, seq)])).await.unwrap();
            let st = f
                .call(json!({"action": "status", "id": child}))
                .await
                .unwrap();
            assert_eq!(st["status"], "completed", "{child}: {st}");
        }
        // Their results sit in the parent's inbox; the inserts' stream
        // records advance it (the host does not push parents itself).
        let st = f
            .call(json!({"action": "status", "id": "fam"}))
            .await
            .unwrap();
        assert_eq!(st["status"], "waiting", "{st}");
        let r = f
            .call(stream_batch(&[("fam", "302"), ("fam", "303")]))
            .await
            .unwrap();
        assert_eq!(r, json!({"batchItemFailures": []}));
        let st = f
            .call(json!({"action": "status", "id": "fam"}))
            .await
            .unwrap();
        assert_eq!(st["status"], "completed", "{st}");
        assert_eq!(st["output"], json!([["fam.c0"], ["fam.c1"]]), "{st}");

        // Cancelling a parent cancels its unfinished children.
        f.call(json!({"action": "start", "workflow": "family", "id": "fam2", "input": 1}))
            .await
            .unwrap();
        f.call(json!({"action": "cancel", "id": "fam2", "reason": "not needed"}))
            .await
            .unwrap();
        f.call(stream_batch(&[("fam2", "400")])).await.unwrap();
        let st = f
            .call(json!({"action": "status", "id": "fam2"}))
            .await
            .unwrap();
        assert_eq!(st["status"], "cancelled", "{st}");
        let child = f
            .call(json!({"action": "status", "id": "fam2.c0"}))
            .await
            .unwrap();
        assert_eq!(child["status"], "cancelled", "{child}");
    })
}

#[test]
fn executions_of_one_batch_advance_side_by_side() {
    run(async {
        let f = fixture().await;
        // "a-slow" sorts first: advanced one after another, "b-fast" would
        // finish only after a-slow's 3 s activity.
        for (id, ms) in [("a-slow", 3000), ("b-fast", 10)] {
            f.app
                .engine()
                .start(cairn_engine::StartRequest {
                    workflow: "slow".into(),
                    id: ExecutionId::new(id).unwrap(),
                    input: Payload::json(&json!({"steps": 1, "ms": ms})),
                    component: None,
                    parent: None,
                })
                .await
                .unwrap();
        }
        let r = f
            .call(stream_batch(&[("a-slow", "1"), ("b-fast", "2")]))
            .await
            .unwrap();
        assert_eq!(r, json!({"batchItemFailures": []}));
        let finished_at = |id: &'static str| {
            let engine = f.app.engine().clone();
            async move {
                let ex = engine.load(&ExecutionId::new(id).unwrap()).await.unwrap();
                assert_eq!(ex.meta.status, cairn_core::Status::Completed, "{id}");
                ex.journal.last().unwrap().at
            }
        };
        let (slow, fast) = (finished_at("a-slow").await, finished_at("b-fast").await);
        assert!(
            fast.as_millis() + 2000 < slow.as_millis(),
            "b-fast finished at {fast}, a-slow at {slow}: the slow one held up the batch"
        );
    })
}

#[test]
fn a_signal_with_an_idempotency_key_is_delivered_once() {
    run(async {
        let f = fixture().await;
        f.call(json!({"action": "start", "workflow": "collect", "id": "keyed", "input": 2}))
            .await
            .unwrap();
        let send = || {
            f.call(json!({"action": "signal", "id": "keyed", "name": "go", "payload": 1, "idempotency_key": "order-7"}))
        };
        let first = send().await.unwrap();
        assert_eq!(first["duplicate"], false, "{first}");
        // The caller's retry (say its reply was lost): delivered once.
        let again = send().await.unwrap();
        assert_eq!(again["duplicate"], true, "{again}");
        let ex = f
            .app
            .engine()
            .load(&ExecutionId::new("keyed").unwrap())
            .await
            .unwrap();
        assert_eq!((ex.inbox.len(), ex.meta.inbox_version), (1, 1));
        let bad = f
            .call(json!({"action": "signal", "id": "keyed", "name": "go", "idempotency_key": ""}))
            .await
            .unwrap();
        assert_eq!(bad["error"]["code"], "CRN401", "{bad}");
    })
}

#[test]
fn a_timer_whose_schedule_cannot_be_created_is_woken_by_the_sweep() {
    run(async {
        // The scheduler refuses every CreateSchedule (no such group).
        let f = fixture_with(|s| s.scheduler_group = Some("no-such-group".into())).await;
        let r = f
            .call(json!({"action": "start", "workflow": "nap", "id": "unscheduled", "input": 1500}))
            .await
            .expect("the advance succeeds: the wake is in the table");
        assert_eq!(r["status"], "waiting", "{r}");
        assert!(
            r["requests"]["scheduler:CreateSchedule"].as_u64() >= Some(1),
            "{r}"
        );
        tokio::time::sleep(Duration::from_millis(1600)).await;
        let swept = f.call(json!({"action": "sweep"})).await.unwrap();
        assert_eq!(swept["outcomes"]["completed"], 1, "{swept}");
        assert_eq!(
            f.call(json!({"action": "status", "id": "unscheduled"}))
                .await
                .unwrap()["status"],
            "completed"
        );
    })
}

// ---- the activities' environment: CAIRN_ACTIVITY_ENV, _SECRETS, _AWS_CREDENTIALS ----

/// The variables `names` as the testkit's `read_env` activity sees them.
async fn activity_env_of(f: &Fixture, id: &str, names: &[&str]) -> Value {
    let v = f
        .call(json!({"action": "start", "workflow": "activity_env", "id": id, "input": names}))
        .await
        .unwrap();
    assert_eq!(v["status"], "completed", "{v}");
    v["output"].clone()
}

/// SecureStrings `(name, value)` put into Parameter Store (moto).
async fn put_secure_strings(params: &[(String, String)]) {
    assert!(
        std::env::var("AWS_ENDPOINT_URL_SSM").is_ok(),
        "AWS_ENDPOINT_URL_SSM is not set: run the tests with scripts/test (moto serves SSM)"
    );
    let ssm = aws_sdk_ssm::Client::new(&test_sdk().await);
    for (name, value) in params {
        ssm.put_parameter()
            .name(name)
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .overwrite(true)
            .send()
            .await
            .unwrap();
    }
}

#[test]
fn secrets_from_parameter_store_and_plain_variables_reach_activities() {
    run(async {
        let pid = std::process::id();
        // 11 parameters: two GetParameters calls (ten names at most each).
        let params: Vec<(String, String)> = (0..11)
            .map(|i| {
                (
                    format!("/cairn-test/{pid}/secret-{i}"),
                    format!("s3cr3t={i},x"),
                )
            })
            .collect();
        put_secure_strings(&params).await;
        let f = fixture_with(|s| {
            s.activity_env =
                parse_pairs("CAIRN_ACTIVITY_ENV", "PLAIN=a=b,OTHER=2", "KEY=VALUE").unwrap();
            s.activity_secrets = params
                .iter()
                .enumerate()
                .map(|(i, (name, _))| (format!("SECRET_{i}"), name.clone()))
                .collect();
        })
        .await;
        let mut names = vec![
            "PLAIN",
            "OTHER",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
        ];
        let keys: Vec<String> = (0..11).map(|i| format!("SECRET_{i}")).collect();
        names.extend(keys.iter().map(String::as_str));
        let env = activity_env_of(&f, "env1", &names).await;
        assert_eq!(env["PLAIN"], "a=b", "{env}");
        assert_eq!(env["OTHER"], "2", "{env}");
        for (i, (_, value)) in params.iter().enumerate() {
            assert_eq!(env[format!("SECRET_{i}")], value.as_str(), "{env}");
        }
        // Not opted in: the function's credentials stay with the host.
        assert_eq!(env["AWS_ACCESS_KEY_ID"], Value::Null, "{env}");
        assert_eq!(env["AWS_SECRET_ACCESS_KEY"], Value::Null, "{env}");
    })
}

#[test]
fn a_missing_secret_parameter_fails_the_cold_start_naming_it() {
    run(async {
        let pid = std::process::id();
        let present = format!("/cairn-test/{pid}/present");
        put_secure_strings(&[(present.clone(), "here".into())]).await;
        let missing = format!("/cairn-test/{pid}/no-such-parameter");
        let mut settings = Settings::new(format!("cairn-lambda-{pid}-unused"));
        settings.cache_dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-cache");
        settings.activity_secrets = vec![
            ("PRESENT".into(), present),
            ("DB_PASSWORD".into(), missing.clone()),
        ];
        let Err(e) = App::new(settings, &test_sdk().await, Instant::now()).await else {
            panic!("a missing parameter must fail the cold start");
        };
        let message = e.to_string();
        assert!(message.contains(&missing), "{message}");
        assert!(message.contains("not found"), "{message}");
        assert!(message.contains("ssm:GetParameters"), "{message}");
        assert!(
            message.contains(&format!("parameter/cairn-test/{pid}/no-such-parameter")),
            "the ARN has one slash before the name: {message}"
        );
        assert!(!message.contains("here"), "a value leaked: {message}");
        assert!(
            parse_pairs("CAIRN_ACTIVITY_SECRETS", "KEY", "KEY=/name").is_err(),
            "an item without `=` is refused"
        );
    })
}

#[test]
fn the_function_credentials_reach_activities_only_when_granted() {
    run(async {
        // scripts/lib.sh exports test credentials and a region, as Lambda
        // sets the role's.
        let key = std::env::var("AWS_ACCESS_KEY_ID").expect("AWS_ACCESS_KEY_ID (scripts/lib.sh)");
        let region = std::env::var("AWS_REGION").expect("AWS_REGION (scripts/lib.sh)");
        let f = fixture_with(|s| {
            s.activity_aws_credentials = true;
            // A plain variable of the same name is replaced by the granted one.
            s.activity_env = vec![("AWS_REGION".into(), "nowhere-1".into())];
        })
        .await;
        let env = activity_env_of(&f, "creds", &AWS_CREDENTIAL_VARS).await;
        assert_eq!(env["AWS_ACCESS_KEY_ID"], key.as_str(), "{env}");
        assert_eq!(env["AWS_REGION"], region.as_str(), "{env}");
        assert_eq!(
            env["AWS_SECRET_ACCESS_KEY"],
            std::env::var("AWS_SECRET_ACCESS_KEY").unwrap().as_str()
        );
        assert_eq!(
            env["AWS_SESSION_TOKEN"],
            std::env::var("AWS_SESSION_TOKEN").map_or(Value::Null, Value::from)
        );
        let plain = fixture().await;
        let env = activity_env_of(&plain, "no-creds", &AWS_CREDENTIAL_VARS).await;
        for var in AWS_CREDENTIAL_VARS {
            assert_eq!(env[var], Value::Null, "{var}: {env}");
        }
    })
}

#[test]
fn schedule_names_and_expressions_fit_the_scheduler() {
    let id = ExecutionId::new("x".repeat(200)).unwrap();
    let name = schedule_name(&id, Timestamp::from_millis(1_795_811_951_123));
    assert!(name.len() <= 64, "{name}");
    assert!(
        name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
        "{name}"
    );
    assert_eq!(
        at_expression(Timestamp::from_millis(1_795_811_951_123)),
        "at(2026-11-27T20:39:12)"
    );
    assert_eq!(
        at_expression(Timestamp::from_millis(1_795_811_951_000)),
        "at(2026-11-27T20:39:11)"
    );
    let e = HandlerError::unavailable("x");
    assert!(e.error_type.starts_with("CRN205."), "{}", e.error_type);
}
