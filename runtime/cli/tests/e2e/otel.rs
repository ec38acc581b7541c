//! OpenTelemetry traces from `cairn dev`: a real OTLP/HTTP receiver (the
//! tests' HTTP server, its `POST /v1/traces`) collects what the real
//! binary exports; the requests are decoded with OpenTelemetry's own
//! protobuf types. Spans must match the journal exactly, across a
//! `kill -9` and a restart: a replay that emitted spans would show twice.

use crate::dev::{DevServer, http, registered};
use crate::http_server::TestServer;
use crate::support::*;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use prost::Message;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// One exported span, flattened.
#[derive(Debug, Clone)]
struct Span {
    name: String,
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    parent: Vec<u8>,
    service: String,
    /// Unix nanoseconds.
    start: u64,
    end: u64,
    /// Attributes as text (`cairn.seq` → `"2"`).
    attrs: HashMap<String, String>,
}

impl Span {
    fn attr(&self, k: &str) -> &str {
        self.attrs.get(k).map(String::as_str).unwrap_or("")
    }
    fn num(&self, k: &str) -> u64 {
        self.attr(k)
            .parse()
            .unwrap_or_else(|_| panic!("{k} of {self:?}"))
    }
}

fn text(v: &Option<Any>) -> String {
    match v {
        Some(Any::StringValue(s)) => s.clone(),
        Some(Any::IntValue(i)) => i.to_string(),
        Some(Any::BoolValue(b)) => b.to_string(),
        Some(Any::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

/// Every span the receiver got, in arrival order.
fn spans(receiver: &TestServer) -> Vec<Span> {
    let mut out = Vec::new();
    for req in receiver.seen("/v1/traces") {
        assert_eq!(req.method, "POST");
        assert_eq!(
            req.headers.get("content-type").map(String::as_str),
            Some("application/x-protobuf")
        );
        let msg = ExportTraceServiceRequest::decode(req.body.as_slice())
            .expect("an OTLP ExportTraceServiceRequest");
        for rs in msg.resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .map(|kv| text(&kv.value.as_ref().and_then(|v| v.value.clone())))
                .unwrap_or_default();
            for ss in rs.scope_spans {
                for s in ss.spans {
                    out.push(Span {
                        name: s.name,
                        trace_id: s.trace_id,
                        span_id: s.span_id,
                        parent: s.parent_span_id,
                        service: service.clone(),
                        start: s.start_time_unix_nano,
                        end: s.end_time_unix_nano,
                        attrs: s
                            .attributes
                            .iter()
                            .map(|kv| {
                                (
                                    kv.key.clone(),
                                    text(&kv.value.as_ref().and_then(|v| v.value.clone())),
                                )
                            })
                            .collect(),
                    });
                }
            }
        }
    }
    out
}

/// Waits until `pred` holds of the spans received.
#[track_caller]
fn wait_spans(receiver: &TestServer, what: &str, pred: impl Fn(&[Span]) -> bool) -> Vec<Span> {
    let t = Instant::now();
    loop {
        let s = spans(receiver);
        if pred(&s) {
            return s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "never received {what}: {s:#?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Attempt spans of execution `id`: seq → the attempt numbers, in order.
fn attempts_by_seq(spans: &[Span], id: &str) -> BTreeMap<u64, Vec<u64>> {
    let mut m: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for s in spans
        .iter()
        .filter(|s| s.name.starts_with("activity ") && s.attr("cairn.execution_id") == id)
    {
        m.entry(s.num("cairn.seq"))
            .or_default()
            .push(s.num("cairn.attempt"));
    }
    for v in m.values_mut() {
        v.sort();
    }
    m
}

/// What the journal says: seq → 1..=attempts of each `activity-completed`.
fn journaled_attempts(history: &[serde_json::Value]) -> BTreeMap<u64, Vec<u64>> {
    history
        .iter()
        .filter(|e| e["kind"] == "activity-completed")
        .map(|e| {
            let n = e["attempts"].as_u64().unwrap();
            (e["seq"].as_u64().unwrap(), (1..=n).collect())
        })
        .collect()
}

#[test]
fn span_counts_match_steps_after_a_crash_and_resume() {
    let receiver = TestServer::http();
    let endpoint = format!("http://127.0.0.1:{}", receiver.port);
    let c = registered();
    let trace = c.trace_dir();
    let dir = format!("{}:/trace", trace.display());
    let command = || {
        let mut cmd = c.command();
        cmd.env("OTEL_BSP_SCHEDULE_DELAY", "50")
            .env("OTEL_SERVICE_NAME", "cairn-under-test");
        cmd
    };
    // First process: the flag. Three 2 s steps, killed during step 2.
    let dev = DevServer::spawn(command(), &["--dir", &dir, "--otlp-endpoint", &endpoint]);
    // Retries: two failed attempts then a success, in one advance.
    dev.ok(json!({"action": "start", "workflow": "flaky", "id": "retried", "input": 2, "wait_ms": 30000}));
    let addr = dev.addr.clone();
    let client = std::thread::spawn(move || {
        http(&addr, "POST", "/api", json!({"action": "start", "workflow": "slow", "id": "traced", "input": {"steps": 3, "ms": 2000}}).to_string().as_bytes())
    });
    let t = Instant::now();
    let journal_len = || {
        let r = c.run(&["status", "traced", "--json"]);
        serde_json::from_str::<serde_json::Value>(&r.stdout).unwrap_or_default()["journal_len"]
            .as_u64()
            .unwrap_or(0)
    };
    while journal_len() < 2 {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "step 1 never journaled"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Step 1's attempt span is out before the kill (step 2 takes 2 s).
    wait_spans(&receiver, "step 1's attempt span", |s| {
        attempts_by_seq(s, "traced").contains_key(&1)
    });
    drop(dev); // SIGKILL, during step 2
    let _ = client.join();
    assert_eq!(c.status("traced")["journal_len"], 2, "killed during step 2");
    let before_restart = spans(&receiver).len();

    // Second process: the standard environment variable. It resumes the
    // execution (a replay of step 1, then steps 2 and 3).
    let mut cmd = command();
    cmd.env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint);
    let dev = DevServer::spawn(cmd, &["--dir", &dir]);
    dev.wait_status("traced", "completed", Duration::from_secs(60));
    // Children, advanced by the engine inside their parent's advance.
    let r = dev.ok(json!({"action": "start", "workflow": "brood", "id": "fam", "input": [2, 10, 10], "wait_ms": 30000}));
    assert_eq!(r["status"], "completed", "{r}");
    assert_eq!(dev.terminate(), 0, "a clean stop (which flushes)");

    let all = spans(&receiver);
    let after: Vec<Span> = all[before_restart..].to_vec();

    // The retried execution: one span per real attempt, 1, 2, 3.
    let h = c.history("retried");
    assert_eq!(
        attempts_by_seq(&all, "retried"),
        journaled_attempts(&h),
        "{all:#?}"
    );
    let outcomes: Vec<&str> = all
        .iter()
        .filter(|s| s.attr("cairn.execution_id") == "retried" && s.name != "advance")
        .map(|s| s.attr("cairn.outcome"))
        .collect();
    assert_eq!(outcomes, ["retrying", "retrying", "ok"]);
    // Each attempt's span starts when it started (the engine's
    // attempt-started event), after the one before it ended, inside its
    // advance.
    let mut tries: Vec<&Span> = all
        .iter()
        .filter(|s| s.attr("cairn.execution_id") == "retried" && s.name != "advance")
        .collect();
    tries.sort_by_key(|s| s.num("cairn.attempt"));
    for w in tries.windows(2) {
        assert!(w[1].start >= w[0].end, "attempts overlap: {w:#?}");
    }
    let advance = all
        .iter()
        .find(|s| s.attr("cairn.execution_id") == "retried" && s.name == "advance")
        .expect("the retried execution's advance");
    for t in &tries {
        assert_eq!(t.parent, advance.span_id);
        assert!(
            advance.start <= t.start && t.end <= advance.end,
            "{t:?} outside {advance:?}"
        );
    }

    // The crashed one: each journaled completion has exactly the spans of
    // its attempts: step 1's from before the kill and none from the
    // replay; step 2's killed attempt never ended (no span), its rerun
    // has one.
    let h = c.history("traced");
    assert_contiguous(&h);
    let by_seq = attempts_by_seq(&all, "traced");
    assert_eq!(by_seq, journaled_attempts(&h), "{all:#?}");
    assert_eq!(
        by_seq,
        BTreeMap::from([(1, vec![1]), (2, vec![1]), (3, vec![1])])
    );
    assert!(
        !attempts_by_seq(&after, "traced").contains_key(&1),
        "the replay of step 1 emitted a span: {after:#?}"
    );
    // The killed advance never ended (no span); the resumed one appended
    // everything after the kill, and says so.
    let advances: Vec<&Span> = after
        .iter()
        .filter(|s| s.name == "advance" && s.attr("cairn.execution_id") == "traced")
        .collect();
    let steps: u64 = advances.iter().map(|s| s.num("cairn.steps_appended")).sum();
    assert_eq!(
        steps,
        h.len() as u64 - 2,
        "advance spans' steps vs the journal: {advances:#?}"
    );
    let last = advances.last().expect("the resumed advance");
    assert_eq!(last.attr("cairn.outcome"), "completed");
    assert_eq!(last.attr("cairn.workflow"), "slow");
    assert_eq!(last.num("cairn.run"), 1);
    // Attempts are children of their advance; one execution, one trace.
    let advance_ids: Vec<&Vec<u8>> = advances.iter().map(|s| &s.span_id).collect();
    for s in after
        .iter()
        .filter(|s| s.attr("cairn.execution_id") == "traced" && s.name == "activity work")
    {
        assert!(
            advance_ids.contains(&&s.parent),
            "{s:?} has no advance parent"
        );
    }
    let traced: Vec<&Span> = all
        .iter()
        .filter(|s| s.attr("cairn.execution_id") == "traced")
        .collect();
    assert!(traced.iter().all(|s| s.trace_id == traced[0].trace_id));
    assert_eq!(traced[0].trace_id.len(), 16);
    let other = all
        .iter()
        .find(|s| s.attr("cairn.execution_id") == "retried")
        .unwrap();
    assert_ne!(other.trace_id, traced[0].trace_id);
    assert!(all.iter().all(|s| s.service == "cairn-under-test"));

    // Every advance has its span, those the engine runs itself too: each
    // child's attempts sit under one of its own advance spans. (A child
    // may also be advanced twice at once, by its parent and by the wake
    // loop: the loser's attempt, whose completion was refused, ends
    // `abandoned`; the others are exactly the journal's.)
    for child in ["fam.b0", "fam.b1"] {
        let h = c.history(child);
        let mine: Vec<&Span> = all
            .iter()
            .filter(|s| s.attr("cairn.execution_id") == child)
            .collect();
        let kept: Vec<Span> = mine
            .iter()
            .filter(|s| s.attr("cairn.outcome") != "abandoned")
            .map(|s| (*s).clone())
            .collect();
        assert_eq!(
            attempts_by_seq(&kept, child),
            journaled_attempts(&h),
            "{child}: {mine:#?}"
        );
        let advance_ids: Vec<&Vec<u8>> = mine
            .iter()
            .filter(|s| s.name == "advance")
            .map(|s| &s.span_id)
            .collect();
        assert!(
            mine.iter()
                .any(|s| s.name == "advance" && s.attr("cairn.workflow") == "slow"),
            "{child} has no advance span: {mine:#?}"
        );
        for s in mine.iter().filter(|s| s.name != "advance") {
            assert!(
                advance_ids.contains(&&s.parent),
                "{s:?} has no advance parent"
            );
        }
    }
}

#[test]
fn a_bad_otlp_endpoint_is_refused_before_anything_starts() {
    let c = registered();
    let r = c.run(&["dev", "--port", "0", "--otlp-endpoint", "localhost:4318"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("http://") && r.stderr.contains("localhost:4318"),
        "{}",
        r.stderr
    );
}
