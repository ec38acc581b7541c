//! The client API (`docs/api.md`), every verb through a direct invoke and
//! through a Function URL event, against the emulators: answers, errors
//! with their codes, and that refused requests change nothing.

use super::*;
use cairn_core::api::ApiError;
use cairn_core::{ErrorCode, Status};

/// How a request reaches the function.
#[derive(Debug, Clone, Copy)]
enum Via {
    /// `aws lambda invoke` with the request as the payload.
    Direct,
    /// A Function URL's POST (base64 body, as Lambda delivers it).
    Url,
}

/// A Function URL event carrying `body`.
fn url_event(body: &str, method: &str) -> Value {
    json!({
        "version": "2.0", "routeKey": "$default", "rawPath": "/", "rawQueryString": "",
        "headers": {"content-type": "application/json", "host": "abc.lambda-url.us-east-1.on.aws"},
        "requestContext": {"timeEpoch": 1_764_547_200_000_i64, "http": {"method": method, "path": "/", "protocol": "HTTP/1.1", "sourceIp": "203.0.113.1"}, "requestId": "r1", "accountId": "123456789012"},
        "body": base64::engine::general_purpose::STANDARD.encode(body), "isBase64Encoded": true,
    })
}

impl Fixture {
    /// Sends `req` by `via`: the answer, or the API error (whose HTTP
    /// status, through a URL, is the response's).
    async fn api(&self, via: Via, req: Value) -> Result<Value, ApiError> {
        match via {
            Via::Direct => {
                let v = self
                    .call(req)
                    .await
                    .expect("API requests are not function errors");
                match ApiError::from_wire(&v) {
                    Some(e) => Err(e),
                    None => Ok(v),
                }
            }
            Via::Url => self.url(&req.to_string(), "POST").await,
        }
    }

    async fn url(&self, body: &str, method: &str) -> Result<Value, ApiError> {
        let r = self
            .call(url_event(body, method))
            .await
            .expect("URL requests get HTTP responses");
        let status = r["statusCode"].as_u64().unwrap() as u16;
        let body: Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
        match ApiError::from_wire(&body) {
            Some(e) => {
                assert_eq!(e.status, status, "{body}");
                Err(e)
            }
            None => {
                assert_eq!(status, 200, "{body}");
                Ok(body)
            }
        }
    }

    async fn ok(&self, via: Via, req: Value) -> Value {
        let what = req.to_string();
        self.api(via, req)
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"))
    }

    async fn err(&self, via: Via, req: Value) -> ApiError {
        let what = req.to_string();
        match self.api(via, req).await {
            Ok(v) => panic!("{what} succeeded: {v}"),
            Err(e) => e,
        }
    }

    /// Every execution, with its journal length: what "nothing changed"
    /// compares.
    async fn everything(&self) -> Vec<(String, Status, usize, u64)> {
        let mut out = Vec::new();
        for m in self.app.engine().list(ListFilter::default()).await.unwrap() {
            let ex = self.app.engine().load(&m.id).await.unwrap();
            out.push((
                m.id.to_string(),
                m.status,
                ex.journal.len(),
                m.inbox_version,
            ));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

const SWAP_INPUT: &str =
    r#"{"a": "alice", "b": "bob", "foo": 10, "bar": 20, "fail_at_step": null}"#;

fn swap_input() -> Value {
    serde_json::from_str(SWAP_INPUT).unwrap()
}

/// start (and wait), idempotent start, signal with a key, query, describe
/// and history paging, by one way in.
async fn verbs(f: &Fixture, via: Via) {
    let p = format!("{via:?}").to_lowercase();
    // Start and wait: the swap's output in the answer.
    let id = format!("{p}-swap");
    let v = f
        .ok(via, json!({"v": 1, "action": "start", "workflow": "swap", "id": id, "input": swap_input(), "wait_ms": 20_000}))
        .await;
    assert_eq!(
        (v["status"].as_str(), v["created"].as_bool()),
        (Some("completed"), Some(true)),
        "{v}"
    );
    assert_eq!(v["output"]["status"], "succeeded", "{v}");
    assert_eq!(
        v["output"]["receipts"].as_array().map(Vec::len),
        Some(4),
        "{v}"
    );
    assert_eq!(v["waited_ms"], 0, "finished within the advance: {v}");
    // The same id and input: the same execution, nothing new.
    let again = f
        .ok(
            via,
            json!({"action": "start", "workflow": "swap", "id": id, "input": swap_input()}),
        )
        .await;
    assert_eq!(
        (again["created"].as_bool(), again["journal_len"].as_u64()),
        (Some(false), Some(6)),
        "{again}"
    );
    assert_eq!(again["output"], v["output"]);
    // Another input: CRN202, nothing changed.
    let before = f.everything().await;
    let e = f
        .err(via, json!({"action": "start", "workflow": "swap", "id": id, "input": {"a": "x", "b": "y", "foo": 1, "bar": 1}}))
        .await;
    assert_eq!((e.code, e.status), (ErrorCode::ExecutionExists, 409), "{e}");
    assert!(e.message.contains("already exists with"), "{e}");
    assert_eq!(f.everything().await, before);

    // Describe (and its old name, status).
    let d = f.ok(via, json!({"action": "describe", "id": id})).await;
    assert_eq!(
        (
            d["status"].as_str(),
            d["journal_len"].as_u64(),
            d["run"].as_u64()
        ),
        (Some("completed"), Some(6), Some(1)),
        "{d}"
    );
    assert_eq!(d["output"], v["output"]);
    assert_eq!(f.ok(via, json!({"action": "status", "id": id})).await, d);

    // History, two entries a page.
    let mut cursor = Value::Null;
    let mut kinds = Vec::new();
    let mut pages = 0;
    loop {
        let mut req = json!({"action": "history", "id": id, "limit": 2});
        if !cursor.is_null() {
            req["cursor"] = cursor.clone();
        }
        let page = f.ok(via, req).await;
        pages += 1;
        for e in page["entries"].as_array().unwrap() {
            assert_eq!(e["index"].as_u64(), Some(kinds.len() as u64), "{page}");
            kinds.push(e["kind"].as_str().unwrap().to_string());
        }
        cursor = page["next_cursor"].clone();
        if cursor.is_null() {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(kinds.first().map(String::as_str), Some("started"));
    assert_eq!(kinds.last().map(String::as_str), Some("completed"));
    assert_eq!(kinds.len(), 6);

    // A signal with an idempotency key, sent twice: delivered once.
    let c = format!("{p}-collect");
    let w = f
        .ok(
            via,
            json!({"action": "start", "workflow": "collect", "id": c, "input": 1}),
        )
        .await;
    assert_eq!(w["status"], "waiting", "{w}");
    assert!(w["waiting_on"].as_str().unwrap().contains("go"), "{w}");
    let send = json!({"action": "signal", "id": c, "name": "go", "payload": {"n": 1}, "idempotency_key": "k1"});
    assert_eq!(f.ok(via, send.clone()).await["duplicate"], false);
    assert_eq!(f.ok(via, send).await["duplicate"], true);
    let d = f.ok(via, json!({"action": "describe", "id": c})).await;
    assert_eq!(d["inbox"], 1, "one item: {d}");
    f.call(stream_batch(&[(&c, "10")])).await.unwrap();
    let d = f.ok(via, json!({"action": "describe", "id": c})).await;
    assert_eq!(
        (d["status"].as_str(), &d["output"]),
        (Some("completed"), &json!([{"n": 1}])),
        "{d}"
    );
    let e = f
        .err(via, json!({"action": "signal", "id": c, "name": "go"}))
        .await;
    assert_eq!(
        (e.code, e.status),
        (ErrorCode::ExecutionFinished, 409),
        "{e}"
    );

    // Query a running execution; a finished one cannot answer.
    let t = format!("{p}-ticker");
    f.ok(
        via,
        json!({"action": "start", "workflow": "ticker", "id": t}),
    )
    .await;
    f.ok(via, json!({"action": "signal", "id": t, "name": "tick"}))
        .await;
    f.call(stream_batch(&[(&t, "20")])).await.unwrap();
    let q = f
        .ok(via, json!({"action": "query", "id": t, "name": "count"}))
        .await;
    assert_eq!(q["answer"], 1, "{q}");
    let q = f
        .ok(via, json!({"action": "query", "id": t, "name": "nope"}))
        .await;
    assert!(
        q["failure"]["message"].as_str().unwrap().contains("nope"),
        "{q}"
    );
    let e = f
        .err(via, json!({"action": "query", "id": id, "name": "count"}))
        .await;
    assert_eq!(
        (e.code, e.status),
        (ErrorCode::QueryUnavailable, 409),
        "{e}"
    );
}

#[test]
fn every_verb_answers_through_a_direct_invoke_and_a_function_url() {
    run(async {
        let f = fixture().await;
        verbs(&f, Via::Direct).await;
        verbs(&f, Via::Url).await;
    })
}

#[test]
fn a_start_waits_for_a_result_that_another_invocation_brings() {
    run(async {
        let f = fixture().await;
        for via in [Via::Direct, Via::Url] {
            let id = format!("{via:?}-nap");
            // The timer's wake arrives (as the scheduler would send it)
            // while the start waits. (Early or during the start's advance,
            // a wake is harmless: it is sent again until it finishes it.)
            let wake = async {
                for _ in 0..60 {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    // (Before the start created it, a wake fails.)
                    if let Ok(r) = f.call(json!({"action": "wake", "id": id})).await
                        && r["outcome"] == "completed"
                    {
                        return r;
                    }
                }
                panic!("the wake never finished {id}");
            };
            let start = f.ok(
                via,
                json!({"action": "start", "workflow": "nap", "id": id, "input": 1500, "wait_ms": 20_000}),
            );
            let (v, woke) = tokio::join!(start, wake);
            assert_eq!(woke["outcome"], "completed", "{woke}");
            assert_eq!(
                (v["status"].as_str(), v["outcome"].as_str()),
                (Some("completed"), Some("waiting")),
                "{v}"
            );
            assert!(v["output"].as_u64() >= Some(1500), "it napped: {v}");
            assert!(v["waited_ms"].as_u64().unwrap() > 0, "{v}");
            // A short wait that runs out: the status, still waiting.
            let id = format!("{via:?}-sig");
            let v = f
                .ok(via, json!({"action": "start", "workflow": "collect", "id": id, "input": 1, "wait_ms": 300}))
                .await;
            assert_eq!(v["status"], "waiting", "{v}");
            assert!(
                (300..5000).contains(&v["waited_ms"].as_u64().unwrap()),
                "{v}"
            );
        }
    })
}

#[test]
fn a_cancel_runs_the_compensations() {
    run(async {
        let f = fixture().await;
        let bytes = std::fs::read(cairn_test_artifacts::PROVISION).unwrap();
        f.app
            .engine()
            .register(cairn_host::ComponentBytes::new(bytes))
            .await
            .unwrap();
        for (via, seq) in [(Via::Direct, "30"), (Via::Url, "31")] {
            let id = format!("{via:?}-prov");
            // Polls a slow resource: suspends on a long retry after ~7 s.
            let v = f
                .ok(via, json!({"action": "start", "workflow": "provision", "id": id, "input": {"name": "slow-db", "kind": "db"}}))
                .await;
            assert_eq!(v["status"], "waiting", "{v}");
            let c = f
                .ok(
                    via,
                    json!({"action": "cancel", "id": id, "reason": "not needed"}),
                )
                .await;
            assert!(c["delivered"].is_string(), "{c}");
            f.call(stream_batch(&[(&id, seq)])).await.unwrap();
            let d = f.ok(via, json!({"action": "describe", "id": id})).await;
            assert_eq!(d["status"], "cancelled", "{d}");
            let page = f
                .ok(via, json!({"action": "history", "id": id, "limit": 1000}))
                .await;
            let deleted = page["entries"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["kind"] == "activity-completed" && e["name"] == "delete_resource");
            assert!(deleted, "the compensation ran: {page}");
        }
    })
}

#[test]
fn list_filters_by_workflow_status_and_time_and_pages() {
    run(async {
        let f = fixture().await;
        for i in 0..5 {
            f.call(json!({"action": "start", "workflow": "swap", "id": format!("ls-{i}"), "input": swap_input()}))
                .await
                .unwrap();
        }
        let mid = Timestamp::now_system();
        tokio::time::sleep(Duration::from_millis(20)).await;
        for i in 0..3 {
            f.call(json!({"action": "start", "workflow": "collect", "id": format!("lc-{i}"), "input": 1}))
                .await
                .unwrap();
        }
        for via in [Via::Direct, Via::Url] {
            let ids = |page: &Value| -> Vec<String> {
                page["executions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["id"].as_str().unwrap().to_string())
                    .collect()
            };
            let all = f.ok(via, json!({"action": "list"})).await;
            assert_eq!(ids(&all).len(), 8, "{all}");
            assert!(all["next_cursor"].is_null());
            let swaps = f
                .ok(via, json!({"action": "list", "workflow": "swap"}))
                .await;
            assert_eq!(ids(&swaps).len(), 5);
            let waiting = f
                .ok(via, json!({"action": "list", "status": ["waiting"]}))
                .await;
            let mut w = ids(&waiting);
            w.sort();
            assert_eq!(w, ["lc-0", "lc-1", "lc-2"]);
            let recent = f
                .ok(
                    via,
                    json!({"action": "list", "updated_after": mid.to_rfc3339()}),
                )
                .await;
            assert_eq!(ids(&recent).len(), 3, "{recent}");
            let older = f
                .ok(
                    via,
                    json!({"action": "list", "updated_before": mid.as_millis()}),
                )
                .await;
            assert_eq!(ids(&older).len(), 5, "{older}");
            // Pages of three: every execution once, newest first.
            let mut seen = Vec::new();
            let mut cursor = Value::Null;
            loop {
                let mut req = json!({"action": "list", "limit": 3});
                if !cursor.is_null() {
                    req["cursor"] = cursor;
                }
                let page = f.ok(via, req).await;
                seen.extend(ids(&page));
                cursor = page["next_cursor"].clone();
                if cursor.is_null() {
                    break;
                }
            }
            assert_eq!(seen, ids(&all));
        }
    })
}

#[test]
fn bad_requests_get_their_code_and_change_nothing() {
    run(async {
        let f = fixture().await;
        f.call(json!({"action": "start", "workflow": "collect", "id": "there", "input": 1}))
            .await
            .unwrap();
        let before = f.everything().await;
        let big = "x".repeat(cairn_core::api::MAX_REQUEST_BYTES);
        let fits_the_api = "x".repeat(500_000);
        for via in [Via::Direct, Via::Url] {
            for (req, code, status, words) in [
                (
                    json!({"action": "explode"}),
                    ErrorCode::BadInput,
                    400,
                    "unknown action \"explode\"",
                ),
                (json!({"v": 1}), ErrorCode::BadInput, 400, "no \"action\""),
                (
                    json!({"v": 2, "action": "describe", "id": "there"}),
                    ErrorCode::BadInput,
                    400,
                    "API version 1",
                ),
                (
                    json!({"action": "start"}),
                    ErrorCode::BadInput,
                    400,
                    "missing field `workflow`",
                ),
                (
                    json!({"action": "signal", "id": "there"}),
                    ErrorCode::BadInput,
                    400,
                    "missing field `name`",
                ),
                (
                    json!({"action": "signal", "id": "there", "name": "go", "extra": 1}),
                    ErrorCode::BadInput,
                    400,
                    "unknown field `extra`",
                ),
                (
                    json!({"action": "start", "workflow": "swap", "id": "a b"}),
                    ErrorCode::BadInput,
                    400,
                    "whitespace",
                ),
                (
                    json!({"action": "start", "workflow": "swap", "wait_ms": 900_000}),
                    ErrorCode::BadInput,
                    400,
                    "wait_ms",
                ),
                (
                    json!({"action": "history", "id": "there", "cursor": "garbage"}),
                    ErrorCode::BadInput,
                    400,
                    "cursor",
                ),
                (
                    json!({"action": "list", "limit": 0}),
                    ErrorCode::BadInput,
                    400,
                    "limit",
                ),
                (
                    json!({"action": "signal", "id": "there", "name": "go", "idempotency_key": ""}),
                    ErrorCode::BadInput,
                    400,
                    "idempotency key",
                ),
                (
                    json!({"action": "describe", "id": "nobody"}),
                    ErrorCode::ExecutionNotFound,
                    404,
                    "no execution",
                ),
                (
                    json!({"action": "start", "workflow": "nope"}),
                    ErrorCode::ComponentNotFound,
                    404,
                    "nope",
                ),
                (
                    json!({"action": "signal", "id": "there", "name": "go", "payload": big}),
                    ErrorCode::TooLarge,
                    413,
                    "at most",
                ),
                (
                    json!({"action": "signal", "id": "there", "name": "go", "payload": fits_the_api}),
                    ErrorCode::TooLarge,
                    413,
                    "store accepts",
                ),
                (
                    json!({"action": "start", "workflow": "collect", "id": "big", "input": fits_the_api}),
                    ErrorCode::TooLarge,
                    413,
                    "store accepts",
                ),
            ] {
                let what = format!(
                    "{via:?} {}",
                    &req.to_string()[..80.min(req.to_string().len())]
                );
                let e = f.err(via, req).await;
                assert_eq!((e.code, e.status), (code, status), "{what}: {e}");
                assert!(e.message.contains(words), "{what}: {e}");
            }
        }
        // Only through a URL: a body that is not JSON, another method.
        let e = f.url("{not json", "POST").await.unwrap_err();
        assert_eq!((e.code, e.status), (ErrorCode::BadInput, 400), "{e}");
        assert!(e.message.contains("not JSON"), "{e}");
        let e = f.url("", "GET").await.unwrap_err();
        assert_eq!((e.code, e.status), (ErrorCode::BadInput, 405), "{e}");
        // An event of no known shape is a function error (a misrouted source).
        let e = f.call(json!({"hello": "world"})).await.unwrap_err();
        assert_eq!(e.error_type, "CRN401.BadRequest");
        assert!(e.message.contains("unrecognized event"), "{e}");
        assert_eq!(f.everything().await, before, "nothing changed");
    })
}

#[test]
fn a_history_page_stops_before_it_gets_too_large() {
    use cairn_core::{Entry, Event, Failure, FailureKind};
    let big = "x".repeat(1000);
    let journal: Vec<Entry> = (0..10)
        .map(|i| Entry {
            index: i,
            at: Timestamp::from_millis(1_000 + u64::from(i)),
            event: Event::ActivityCompleted {
                seq: i,
                name: "w".into(),
                input_hash: 1,
                attempts: 1,
                result: Err(Failure::new(FailureKind::Application, big.clone())),
            },
        })
        .collect();
    let all = cairn_engine::api::history_page(&journal, 0, 100, usize::MAX);
    assert_eq!(all.len(), 10);
    let one = serde_json::to_vec(&all[0]).unwrap().len();
    let page = cairn_engine::api::history_page(&journal, 2, 100, one * 3 + 10);
    assert_eq!(page.iter().map(|e| e.index).collect::<Vec<_>>(), [2, 3, 4]);
    // One entry larger than the bound still makes a page.
    assert_eq!(
        cairn_engine::api::history_page(&journal, 9, 100, 1).len(),
        1
    );
}
