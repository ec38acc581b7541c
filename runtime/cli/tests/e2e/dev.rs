//! `cairn dev` as a real process over real HTTP: every verb of the client
//! API, durable timers fired with no other command, a `kill -9` then a
//! restart, bad requests, read-only mode, metrics, a clean stop.

use crate::support::*;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// A running `cairn dev` in a [`Cairn`] directory.
pub struct DevServer {
    pub child: Child,
    pub addr: String,
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }
}

/// One HTTP/1.1 request on its own connection.
pub fn http(addr: &str, method: &str, path: &str, body: &[u8]) -> Reply {
    let mut s = TcpStream::connect(addr).expect("connect to cairn dev");
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    // A refused request may be answered before the whole body is read.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Reply { status, body }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((len, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(len.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

impl DevServer {
    /// `cairn dev --port 0 ARGS` in `c`'s directory; waits until it listens.
    pub fn start(c: &Cairn, args: &[&str]) -> Self {
        Self::spawn(c.command(), args)
    }

    /// `cairn dev --port 0 ARGS` as `cmd` (its directory, environment).
    pub fn spawn(mut cmd: std::process::Command, args: &[&str]) -> Self {
        let mut child = cmd
            .args(["dev", "--port", "0"])
            .args(args)
            .stderr(Stdio::piped())
            .spawn()
            .expect("start cairn dev");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if !sent && let Some(rest) = line.split("http://").nth(1) {
                    let _ = tx.send(rest.split('/').next().unwrap().to_string());
                    sent = true;
                }
                eprintln!("[cairn dev] {line}");
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("cairn dev did not say where it listens");
        Self { child, addr }
    }

    pub fn api(&self, req: Value) -> Reply {
        http(&self.addr, "POST", "/api", req.to_string().as_bytes())
    }

    /// A request that must succeed.
    #[track_caller]
    pub fn ok(&self, req: Value) -> Value {
        let r = self.api(req.clone());
        assert_eq!(r.status, 200, "{req} → {r:?}");
        r.json()
    }

    pub fn describe(&self, id: &str) -> Value {
        self.ok(json!({"action": "describe", "id": id}))
    }

    /// Waits (by describing) until `id` has `status`.
    #[track_caller]
    pub fn wait_status(&self, id: &str, status: &str, limit: Duration) -> Value {
        let t = Instant::now();
        loop {
            let d = self.describe(id);
            if d["status"] == status {
                return d;
            }
            assert!(t.elapsed() < limit, "{id} never became {status}: {d}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn metrics(&self) -> String {
        let r = http(&self.addr, "GET", "/metrics", b"");
        assert_eq!(r.status, 200);
        r.body
    }

    /// SIGTERM, and the exit code.
    pub fn terminate(mut self) -> i32 {
        let pid = self.child.id().to_string();
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        let t = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code().unwrap_or(-1);
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "cairn dev did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A directory with the swap saga and the testkit registered.
pub fn registered() -> Cairn {
    let c = Cairn::new();
    c.run(&["register", SWAP_SAGA]).ok();
    c.run(&["register", TESTKIT]).ok();
    c
}

/// One metric's value (the sum over its label sets) in a scrape.
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|r| r.starts_with(' ') || r.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn every_verb_over_http() {
    let c = registered();
    let dev = DevServer::start(&c, &[]);
    let swap: Value = serde_json::from_str(SWAP_OK).unwrap();
    // start with wait: the answer is the finished execution.
    let a = dev.ok(json!({"v": 1, "action": "start", "workflow": "swap", "id": "s1", "input": swap, "wait_ms": 30000}));
    assert_eq!(a["status"], "completed", "{a}");
    assert_eq!(a["created"], true);
    assert_eq!(a["output"]["status"], "succeeded");
    // the same start again: the existing execution, nothing run again.
    let again = dev.ok(json!({"action": "start", "workflow": "swap", "id": "s1", "input": swap}));
    assert_eq!(again["created"], false);
    assert_eq!(again["journal_len"], a["journal_len"]);
    // a start without an id gets one.
    let generated =
        dev.ok(json!({"action": "start", "workflow": "swap", "input": swap, "wait_ms": 30000}));
    assert!(
        generated["id"].as_str().unwrap().starts_with("swap"),
        "{generated}"
    );
    // signal and query a waiting execution, then its end.
    let t = dev.ok(json!({"action": "start", "workflow": "ticker", "id": "tk", "input": null}));
    assert_eq!(t["status"], "waiting", "{t}");
    let s = dev.ok(json!({"action": "signal", "id": "tk", "name": "tick", "payload": 1, "idempotency_key": "k1"}));
    assert_eq!(
        (s["delivered"].as_str(), s["duplicate"].as_bool()),
        (Some("signal.k1"), Some(false))
    );
    let dup = dev.ok(json!({"action": "signal", "id": "tk", "name": "tick", "payload": 1, "idempotency_key": "k1"}));
    assert_eq!(dup["duplicate"], true, "a keyed signal is delivered once");
    dev.ok(json!({"action": "signal", "id": "tk", "name": "tick"}));
    let t0 = Instant::now();
    loop {
        let q = dev.ok(json!({"action": "query", "id": "tk", "name": "count"}));
        if q["answer"] == 2 {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "{q}");
        std::thread::sleep(Duration::from_millis(50));
    }
    dev.ok(json!({"action": "signal", "id": "tk", "name": "stop"}));
    let d = dev.wait_status("tk", "completed", Duration::from_secs(30));
    assert_eq!(d["output"], 2, "{d}");
    // a query on a finished execution: 409 CRN403.
    let r = dev.api(json!({"action": "query", "id": "tk", "name": "count"}));
    assert_eq!(
        (r.status, r.json()["error"]["code"].as_str()),
        (409, Some("CRN403")),
        "{r:?}"
    );
    // cancel: the execution ends cancelled.
    dev.ok(json!({"action": "start", "workflow": "collect", "id": "col", "input": 3}));
    let cx = dev.ok(json!({"action": "cancel", "id": "col", "reason": "test"}));
    assert_eq!(cx["id"], "col");
    dev.wait_status("col", "cancelled", Duration::from_secs(30));
    // history, paged.
    let p1 = dev.ok(json!({"action": "history", "id": "s1", "limit": 2}));
    assert_eq!(p1["entries"].as_array().unwrap().len(), 2);
    assert_eq!(p1["entries"][0]["kind"], "started");
    let p2 =
        dev.ok(json!({"action": "history", "id": "s1", "limit": 100, "cursor": p1["next_cursor"]}));
    assert_eq!(p2["entries"][0]["index"], 2);
    assert!(p2.get("next_cursor").is_none(), "{p2}");
    // list, filtered and paged.
    let l = dev.ok(json!({"action": "list", "workflow": "swap"}));
    let ids: Vec<&str> = l["executions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{l}");
    assert!(ids.contains(&"s1"));
    let l = dev.ok(json!({"action": "list", "status": ["cancelled"], "limit": 1}));
    assert_eq!(l["executions"][0]["id"], "col");
    let all = dev.ok(json!({"action": "list", "limit": 2}));
    assert!(all["next_cursor"].is_string(), "{all}");
    // `status` is describe's other name.
    assert_eq!(
        dev.ok(json!({"action": "status", "id": "s1"}))["status"],
        "completed"
    );
    // The CLI on the same store sees what the server wrote.
    assert_eq!(c.status("col")["status"], "cancelled");
}

#[test]
fn bad_requests_get_their_code_and_change_nothing() {
    let c = registered();
    let dev = DevServer::start(&c, &[]);
    dev.ok(json!({"action": "start", "workflow": "collect", "id": "w", "input": 2}));
    let before = dev.ok(json!({"action": "list"}));
    let hist = dev.ok(json!({"action": "history", "id": "w"}));
    let finished: Value = serde_json::from_str(SWAP_OK).unwrap();
    dev.ok(json!({"action": "start", "workflow": "swap", "id": "done", "input": finished, "wait_ms": 30000}));
    let before_done = dev.ok(json!({"action": "list"}));
    for (req, status, code) in [
        (json!({"action": "explode"}), 400, "CRN401"),
        (json!({"v": 2, "action": "list"}), 400, "CRN401"),
        (
            json!({"action": "describe", "id": "w", "typo": 1}),
            400,
            "CRN401",
        ),
        (
            json!({"action": "describe", "id": "has space"}),
            400,
            "CRN401",
        ),
        (json!({"action": "describe", "id": "nobody"}), 404, "CRN201"),
        (
            json!({"action": "signal", "id": "nobody", "name": "go"}),
            404,
            "CRN201",
        ),
        (
            json!({"action": "signal", "id": "done", "name": "go"}),
            409,
            "CRN203",
        ),
        (json!({"action": "cancel", "id": "done"}), 409, "CRN203"),
        (
            json!({"action": "start", "workflow": "swap", "id": "done", "input": {"other": 1}}),
            409,
            "CRN202",
        ),
        (
            json!({"action": "start", "workflow": "no_such_workflow", "id": "x"}),
            404,
            "CRN402",
        ),
        (
            json!({"action": "start", "workflow": "collect", "id": "x", "wait_ms": 99_999_999}),
            400,
            "CRN401",
        ),
        (
            json!({"action": "history", "id": "w", "cursor": "garbage"}),
            400,
            "CRN401",
        ),
        (json!({"action": "list", "limit": 0}), 400, "CRN401"),
    ] {
        let r = dev.api(req.clone());
        assert_eq!(r.status, status, "{req} → {r:?}");
        let e = &r.json()["error"];
        assert_eq!(e["code"], code, "{req} → {r:?}");
        assert!(
            e["message"].as_str().unwrap().len() > 10,
            "a message says what to do: {r:?}"
        );
    }
    // Not JSON, too large, not a POST.
    let r = http(&dev.addr, "POST", "/api", b"{not json");
    assert_eq!(
        (r.status, r.json()["error"]["code"].as_str()),
        (400, Some("CRN401")),
        "{r:?}"
    );
    let big = format!(
        r#"{{"action": "signal", "id": "w", "name": "go", "payload": "{}"}}"#,
        "x".repeat(1 << 21)
    );
    let r = http(&dev.addr, "POST", "/api", big.as_bytes());
    assert_eq!(
        (r.status, r.json()["error"]["code"].as_str()),
        (413, Some("CRN204")),
        "{r:?}"
    );
    let r = http(&dev.addr, "GET", "/api", b"");
    assert_eq!(
        (r.status, r.json()["error"]["code"].as_str()),
        (405, Some("CRN401")),
        "{r:?}"
    );
    // Nothing changed: the same executions, the same journal, no inbox item.
    assert_eq!(dev.ok(json!({"action": "list"})), before_done);
    assert_eq!(dev.ok(json!({"action": "history", "id": "w"})), hist);
    assert_eq!(dev.describe("w")["inbox"], 0);
    let n = before["executions"].as_array().unwrap().len();
    assert_eq!(before_done["executions"].as_array().unwrap().len(), n + 1);
}

#[test]
fn a_durable_timer_fires_without_any_other_command() {
    let c = registered();
    let dev = DevServer::start(&c, &[]);
    let a = dev.ok(json!({"action": "start", "workflow": "nap", "id": "nap", "input": 2500}));
    assert_eq!(a["status"], "waiting", "{a}");
    assert!(a["wake_at"].is_string(), "{a}");
    // Nothing else is sent: the server's wake loop fires the timer.
    let d = dev.wait_status("nap", "completed", Duration::from_secs(60));
    assert!(d["output"].as_u64().unwrap() >= 2500, "{d}");
    let h = dev.ok(json!({"action": "history", "id": "nap"}));
    let kinds: Vec<&str> = h["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["started", "timer-started", "timer-fired", "completed"]
    );
    // A start with wait covers the timer too.
    let w = dev.ok(json!({"action": "start", "workflow": "nap", "id": "nap2", "input": 1500, "wait_ms": 60000}));
    assert_eq!(w["status"], "completed", "{w}");
    assert!(w["waited_ms"].as_u64().unwrap() > 0, "{w}");
}

#[test]
fn kill_9_mid_execution_then_restart_completes_exactly_once() {
    let c = registered();
    let trace = c.trace_dir();
    let dir = format!("{}:/trace", trace.display());
    let dev = DevServer::start(&c, &["--dir", &dir]);
    let addr = dev.addr.clone();
    // The start advances in the server: three 2 s activities.
    let client = std::thread::spawn(move || {
        http(&addr, "POST", "/api", json!({"action": "start", "workflow": "slow", "id": "crash", "input": {"steps": 3, "ms": 2000}}).to_string().as_bytes())
    });
    let t = Instant::now();
    while c.run(&["status", "crash", "--json"]).json_or_null()["journal_len"]
        .as_u64()
        .unwrap_or(0)
        < 2
    {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "step 1 never journaled"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    drop(dev); // SIGKILL, during step 2
    let _ = client.join();
    assert_eq!(c.status("crash")["journal_len"], 2, "killed during step 2");
    assert_eq!(c.status("crash")["status"], "running");
    // The restarted server finds it and finishes it, with no command.
    let dev = DevServer::start(&c, &["--dir", &dir]);
    let d = dev.wait_status("crash", "completed", Duration::from_secs(60));
    assert_eq!(d["output"], json!(["crash/1", "crash/2", "crash/3"]));
    let h = c.history("crash");
    assert_contiguous(&h);
    let seqs: Vec<u64> = h
        .iter()
        .filter(|e| e["kind"] == "activity-completed")
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2, 3], "each step journaled once");
    let log = std::fs::read_to_string(trace.join("log")).unwrap();
    for key in ["crash/1", "crash/2", "crash/3"] {
        let n = log
            .lines()
            .filter(|l| l.split(' ').next() == Some(key))
            .count();
        assert_eq!(n, 1, "{key}'s effect happened once:\n{log}");
    }
    let attempts = std::fs::read_to_string(trace.join("attempts")).unwrap();
    let started = |key: &str| {
        attempts
            .lines()
            .filter(|l| l.split(' ').next() == Some(key))
            .count()
    };
    assert_eq!(
        started("crash/1"),
        1,
        "step 1 was not run again:\n{attempts}"
    );
    assert_eq!(
        started("crash/2"),
        2,
        "step 2: killed, then run once more:\n{attempts}"
    );
    assert_eq!(started("crash/3"), 1, "{attempts}");
    // A clean stop.
    assert_eq!(dev.terminate(), 0);
}

#[test]
fn sigterm_stops_cleanly_and_the_next_start_goes_on() {
    let c = registered();
    let dev = DevServer::start(&c, &[]);
    dev.ok(json!({"action": "start", "workflow": "nap", "id": "later", "input": 3000}));
    assert_eq!(dev.terminate(), 0, "SIGTERM ends cairn dev with 0");
    assert_eq!(c.status("later")["status"], "waiting");
    let dev = DevServer::start(&c, &[]);
    dev.wait_status("later", "completed", Duration::from_secs(60));
}

#[test]
fn read_only_refuses_writes_and_writes_nothing() {
    let c = registered();
    {
        let dev = DevServer::start(&c, &[]);
        dev.ok(json!({"action": "start", "workflow": "collect", "id": "w", "input": 1}));
        dev.ok(json!({"action": "start", "workflow": "nap", "id": "nap", "input": 1500}));
    }
    let dev = DevServer::start(&c, &["--read-only"]);
    let before = dev.ok(json!({"action": "list"}));
    for req in [
        json!({"action": "start", "workflow": "collect", "id": "new", "input": 1}),
        json!({"action": "signal", "id": "w", "name": "go"}),
        json!({"action": "cancel", "id": "w"}),
    ] {
        let r = dev.api(req.clone());
        assert_eq!(r.status, 403, "{req} → {r:?}");
        assert!(
            r.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains("read-only"),
            "{r:?}"
        );
    }
    assert_eq!(dev.describe("w")["status"], "waiting");
    // The timer came due, but a read-only server fires nothing.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(dev.describe("nap")["status"], "waiting");
    assert_eq!(dev.ok(json!({"action": "list"})), before);
    assert_eq!(dev.describe("w")["inbox"], 0);
    let info = http(&dev.addr, "GET", "/console/info", b"").json();
    assert_eq!(info["read_only"], true);
}

/// `cairn dev` over a DynamoDB table: the same verbs, and its wake loop
/// (the table's due index) fires a durable timer.
#[test]
fn on_dynamodb_a_durable_timer_fires_and_a_signal_is_taken() {
    let d = Dynamo::new();
    d.run(&["register", TESTKIT]).ok();
    let dev = DevServer::spawn(dynamo_cmd(&d), &[]);
    let a = dev.ok(json!({"action": "start", "workflow": "nap", "id": "nap", "input": 2000}));
    assert_eq!(a["status"], "waiting", "{a}");
    dev.ok(json!({"action": "start", "workflow": "collect", "id": "col", "input": 1}));
    dev.ok(json!({"action": "signal", "id": "col", "name": "go", "payload": "hi"}));
    let c = dev.wait_status("col", "completed", Duration::from_secs(60));
    assert_eq!(c["output"], json!(["hi"]));
    let n = dev.wait_status("nap", "completed", Duration::from_secs(60));
    assert!(n["output"].as_u64().unwrap() >= 2000, "{n}");
    assert_eq!(d.history("nap").len(), 4);
}

/// `cairn --store dynamodb --table T` on the emulator.
fn dynamo_cmd(d: &Dynamo) -> std::process::Command {
    let mut cmd = d.c.command();
    cmd.args(["--store", "dynamodb", "--table", &d.table])
        .env("AWS_ENDPOINT_URL_DYNAMODB", &d.endpoint)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1");
    cmd
}

/// A production table looked at: `--store dynamodb --table T --read-only`.
#[test]
fn a_dynamodb_table_opens_read_only() {
    let d = Dynamo::new();
    d.run(&["start", TESTKIT, "-w", "collect", "-i", "1", "--id", "w"])
        .ok();
    let dev = DevServer::spawn(dynamo_cmd(&d), &["--read-only"]);
    let w = dev.describe("w");
    assert_eq!(
        (w["status"].as_str(), w["workflow"].as_str()),
        (Some("waiting"), Some("collect"))
    );
    let l = dev.ok(json!({"action": "list"}));
    assert_eq!(l["executions"].as_array().unwrap().len(), 1, "{l}");
    let h = dev.ok(json!({"action": "history", "id": "w"}));
    assert_eq!(h["entries"][0]["kind"], "started");
    let r = dev.api(json!({"action": "signal", "id": "w", "name": "go", "payload": 1}));
    assert_eq!(r.status, 403, "{r:?}");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("read-only"),
        "{r:?}"
    );
    assert_eq!(dev.describe("w"), w, "nothing was written");
    let info = http(&dev.addr, "GET", "/console/info", b"").json();
    assert_eq!(info["store"], format!("dynamodb table {}", d.table));
}

#[test]
fn metrics_move_as_executions_run() {
    let c = registered();
    let dev = DevServer::start(&c, &[]);
    let m0 = dev.metrics();
    assert!(
        m0.contains("# TYPE cairn_advance_seconds histogram"),
        "{m0}"
    );
    let swap: Value = serde_json::from_str(SWAP_OK).unwrap();
    dev.ok(
        json!({"action": "start", "workflow": "swap", "id": "m1", "input": swap, "wait_ms": 30000}),
    );
    dev.ok(
        json!({"action": "start", "workflow": "flaky", "id": "m2", "input": 2, "wait_ms": 30000}),
    );
    let m1 = dev.metrics();
    let grew = |name: &str| metric(&m1, name) - metric(&m0, name);
    // Appended entries: 4 swap steps and its end, the flaky step and its end.
    assert!(grew("cairn_steps_total") >= 7.0, "{m1}");
    assert!(grew("cairn_advance_seconds_count") >= 2.0, "{m1}");
    assert!(
        grew("cairn_activity_attempts_total") >= 7.0,
        "4 swap steps + 3 flaky attempts: {m1}"
    );
    assert!(
        grew("cairn_activity_failures_total") >= 2.0,
        "flaky fails twice: {m1}"
    );
    assert!(grew("cairn_store_seconds_count") > 0.0, "{m1}");
    assert_eq!(
        metric(&m1, "cairn_executions{status=\"completed\"}"),
        2.0,
        "{m1}"
    );
    assert!(metric(&m1, "cairn_http_requests_total") >= 2.0);

    // Children are advanced by the server like any push (counted, in its
    // in-flight set, waited for at shutdown), not inside their parent's.
    let b = dev.ok(
        json!({"action": "start", "workflow": "brood", "id": "m3", "input": [3, 0, 0], "wait_ms": 30000}),
    );
    assert_eq!(b["status"], "completed", "{b}");
    let m2 = dev.metrics();
    let advances =
        metric(&m2, "cairn_advance_seconds_count") - metric(&m1, "cairn_advance_seconds_count");
    assert!(
        advances >= 4.0,
        "the parent and its three children: {advances} advances counted\n{m2}"
    );
}

trait JsonOrNull {
    fn json_or_null(&self) -> Value;
}

impl JsonOrNull for Run {
    fn json_or_null(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or(Value::Null)
    }
}
