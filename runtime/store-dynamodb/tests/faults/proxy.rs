//! A fault-injecting HTTP proxy between the store and DynamoDB Local.
//!
//! A real TCP server: it reads each HTTP/1.1 request the SDK sends (keep-alive
//! connections, `Content-Length` bodies), names its operation from the
//! `X-Amz-Target` header (`DynamoDB_20120810.PutItem` -> `PutItem`), and
//! either forwards it to DynamoDB Local (one upstream connection per client
//! connection, through hyper's client) or injects a fault:
//!
//! - **throttling**: HTTP 400 with DynamoDB's JSON error bodies
//!   (`com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException`,
//!   `com.amazon.coral.availability#ThrottlingException`);
//! - **5xx**: HTTP 500 `InternalServerError`, HTTP 503 `ServiceUnavailable`;
//! - **latency**: the request is held, then forwarded;
//! - **reset before**: the connection is reset (RST) without forwarding;
//! - **reset after**: the request is forwarded and applied, then the
//!   connection is reset instead of replying: a lost reply.
//!
//! Which requests get a fault: first the armed ones ([`Proxy::arm`]: the
//! next `n` requests of an operation), then a seeded random draw per request
//! from the rates of [`Proxy::set_rates`]. `max_streak` caps the faults in a
//! row per operation, so that a test can choose "every first attempt fails,
//! every retry passes" or "retries run out". Every injection is counted by
//! kind and operation.

use crate::http1::{Request, Sender, canonical_reason, forward, read_request, write_reply};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

/// A kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// HTTP 400 `ProvisionedThroughputExceededException`.
    Throughput,
    /// HTTP 400 `ThrottlingException`.
    Throttling,
    /// HTTP 500 `InternalServerError`.
    Internal,
    /// HTTP 503 `ServiceUnavailable`.
    Unavailable,
    /// Forwarded after a delay.
    Latency,
    /// Connection reset before the request reaches DynamoDB.
    ResetBefore,
    /// Forwarded and applied; the connection is reset instead of the reply.
    LostReply,
    /// Another transaction holds an item: a transaction is cancelled with
    /// `TransactionConflict` (HTTP 400 `TransactionCanceledException`), a
    /// single-item write refused (`TransactionConflictException`). DynamoDB
    /// Local serialises its writes and never answers this itself.
    TransactionConflict,
}

impl Fault {
    /// Every kind the SDK retries (all but `TransactionConflict`).
    pub const ALL: [Fault; 7] = [
        Fault::Throughput,
        Fault::Throttling,
        Fault::Internal,
        Fault::Unavailable,
        Fault::Latency,
        Fault::ResetBefore,
        Fault::LostReply,
    ];

    /// The kinds that fail the attempt (all but latency).
    pub const FAILING: [Fault; 6] = [
        Fault::Throughput,
        Fault::Throttling,
        Fault::Internal,
        Fault::Unavailable,
        Fault::ResetBefore,
        Fault::LostReply,
    ];

    /// The name used in figures.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Throughput => "throttle_provisioned_throughput",
            Fault::Throttling => "throttle_throttling_exception",
            Fault::Internal => "http_500",
            Fault::Unavailable => "http_503",
            Fault::Latency => "latency",
            Fault::ResetBefore => "connection_reset",
            Fault::LostReply => "lost_reply_after_write",
            Fault::TransactionConflict => "transaction_conflict",
        }
    }

    /// The error reply DynamoDB sends for it (status, reason, body), if it
    /// is one.
    fn reply(self, req: &Request) -> Option<(u16, &'static str, String)> {
        if self == Fault::TransactionConflict {
            return Some((400, "Bad Request", transaction_conflict(req)));
        }
        let (status, reason, body) = match self {
            Fault::Throughput => (
                400,
                "Bad Request",
                r#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API."}"#,
            ),
            Fault::Throttling => (
                400,
                "Bad Request",
                r#"{"__type":"com.amazon.coral.availability#ThrottlingException","message":"Throughput exceeds the current capacity of your table or index. DynamoDB is automatically scaling your table or index so please try again shortly."}"#,
            ),
            Fault::Internal => (
                500,
                "Internal Server Error",
                r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"Internal server error"}"#,
            ),
            Fault::Unavailable => (
                503,
                "Service Unavailable",
                r#"{"__type":"com.amazonaws.dynamodb.v20120810#ServiceUnavailable","message":"The service is currently unavailable or busy."}"#,
            ),
            _ => return None,
        };
        Some((status, reason, body.to_owned()))
    }
}

/// DynamoDB's answer to a write that meets an item another transaction
/// holds: for a transaction, one cancellation reason per item (the first
/// `TransactionConflict`, the others `None`); otherwise the exception.
fn transaction_conflict(req: &Request) -> String {
    if operation(req) != "TransactWriteItems" {
        return r#"{"__type":"com.amazonaws.dynamodb.v20120810#TransactionConflictException","message":"Transaction is ongoing for the item"}"#.into();
    }
    let items = serde_json::from_slice::<serde_json::Value>(&req.body)
        .ok()
        .and_then(|v| v["TransactItems"].as_array().map(Vec::len))
        .unwrap_or(1);
    let reasons: Vec<serde_json::Value> = (0..items)
        .map(|i| {
            if i == 0 {
                serde_json::json!({"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"})
            } else {
                serde_json::json!({"Code": "None"})
            }
        })
        .collect();
    let codes: Vec<&str> = reasons
        .iter()
        .map(|r| r["Code"].as_str().unwrap_or("None"))
        .collect();
    serde_json::json!({
        "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
        "CancellationReasons": reasons,
        "Message": format!("Transaction cancelled, please refer cancellation reasons for specific reasons [{}]", codes.join(", ")),
    })
    .to_string()
}

#[derive(Default)]
struct Schedule {
    /// Armed faults: (operation, fault, how many more).
    armed: Vec<(String, Fault, u64)>,
    /// Per-request probability of each fault, for `ops` (all when `None`).
    rates: Vec<(Fault, f64)>,
    ops: Option<Vec<String>>,
    max_streak: u32,
    latency: (u64, u64),
    /// Faults in a row, per operation.
    streak: HashMap<String, u32>,
    rng: u64,
    injected: BTreeMap<(Fault, String), u64>,
    requests: BTreeMap<String, u64>,
    /// Requests DynamoDB Local answered (whether or not the client still
    /// listened).
    forwarded: u64,
}

impl Schedule {
    fn next_f64(&mut self) -> f64 {
        // splitmix64: seeded, reproducible.
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    fn decide(&mut self, op: &str) -> (Option<Fault>, Duration) {
        *self.requests.entry(op.to_owned()).or_default() += 1;
        let mut fault = None;
        if let Some(a) = self.armed.iter_mut().find(|(o, _, n)| o == op && *n > 0) {
            a.2 -= 1;
            fault = Some(a.1);
        } else if self.ops.as_ref().is_none_or(|o| o.iter().any(|o| o == op))
            && self.streak.get(op).copied().unwrap_or(0) < self.max_streak
        {
            let draw = self.next_f64();
            let mut acc = 0.0;
            for (f, r) in self.rates.clone() {
                acc += r;
                if draw < acc {
                    fault = Some(f);
                    break;
                }
            }
        }
        match fault {
            // Latency does not fail the attempt: it does not count as a streak.
            Some(f) if f != Fault::Latency => *self.streak.entry(op.to_owned()).or_default() += 1,
            _ => {
                self.streak.insert(op.to_owned(), 0);
            }
        }
        let delay = if fault == Some(Fault::Latency) {
            let (lo, hi) = self.latency;
            Duration::from_millis(lo + (self.next_f64() * (hi - lo) as f64) as u64)
        } else {
            Duration::ZERO
        };
        if let Some(f) = fault {
            *self.injected.entry((f, op.to_owned())).or_default() += 1;
        }
        (fault, delay)
    }
}

/// The proxy; it runs until the process ends.
#[derive(Clone)]
pub struct Proxy {
    addr: SocketAddr,
    schedule: Arc<Mutex<Schedule>>,
}

impl Proxy {
    /// Starts a proxy to `upstream` (`http://host:port`) on a free port, on
    /// the current tokio runtime.
    pub async fn start(upstream: &str, seed: u64) -> Proxy {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let schedule = Arc::new(Mutex::new(Schedule {
            rng: seed,
            max_streak: u32::MAX,
            latency: (20, 200),
            ..Schedule::default()
        }));
        let s = schedule.clone();
        tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(serve(socket, upstream.clone(), s.clone()));
            }
        });
        Proxy { addr, schedule }
    }

    /// Its address, for the SDK's endpoint.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn with<T>(&self, f: impl FnOnce(&mut Schedule) -> T) -> T {
        f(&mut self.schedule.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Injects `fault` into the next `n` requests of `op`.
    pub fn arm(&self, op: &str, fault: Fault, n: u64) {
        self.with(|s| s.armed.push((op.to_owned(), fault, n)));
    }

    /// Draws faults for requests of `ops` (all when `None`) at these rates,
    /// at most `max_streak` in a row per operation.
    pub fn set_rates(&self, ops: Option<&[&str]>, rates: &[(Fault, f64)], max_streak: u32) {
        self.with(|s| {
            s.rates = rates.to_vec();
            s.ops = ops.map(|o| o.iter().map(|o| (*o).to_owned()).collect());
            s.max_streak = max_streak;
            s.streak.clear();
        });
    }

    /// Holds each `Latency` request between `lo` and `hi` ms (default 20..200).
    pub fn set_latency(&self, lo: u64, hi: u64) {
        self.with(|s| s.latency = (lo, hi.max(lo + 1)));
    }

    /// Requests forwarded and answered by DynamoDB Local so far.
    pub fn forwarded(&self) -> u64 {
        self.with(|s| s.forwarded)
    }

    /// Injections so far, by kind.
    pub fn injected(&self) -> BTreeMap<Fault, u64> {
        self.with(|s| {
            let mut out = BTreeMap::new();
            for ((f, _), n) in &s.injected {
                *out.entry(*f).or_default() += n;
            }
            out
        })
    }

    /// Injections so far, by kind and operation.
    pub fn injected_by_op(&self) -> BTreeMap<(Fault, String), u64> {
        self.with(|s| s.injected.clone())
    }

    /// Requests seen so far, by operation.
    pub fn requests(&self) -> BTreeMap<String, u64> {
        self.with(|s| s.requests.clone())
    }
}

/// The DynamoDB operation of `req` (its `X-Amz-Target`'s last part).
fn operation(req: &Request) -> String {
    req.headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("x-amz-target"))
        .map(|(_, v)| v.rsplit('.').next().unwrap_or(v).to_owned())
        .unwrap_or_else(|| "unknown".into())
}

/// Closes `socket` with a reset (RST), as a dropped connection or a crashed
/// load balancer does, rather than an orderly FIN.
fn reset(socket: TcpStream) {
    // SO_LINGER 0 makes the close a reset; it blocks nothing when the
    // linger time is zero.
    #[allow(deprecated)]
    let _ = socket.set_linger(Some(Duration::ZERO));
    drop(socket);
}

async fn serve(mut socket: TcpStream, upstream: String, schedule: Arc<Mutex<Schedule>>) {
    let _ = socket.set_nodelay(true);
    let mut buf = Vec::new();
    let mut sender: Option<Sender> = None;
    while let Some(req) = read_request(&mut socket, &mut buf).await {
        let op = operation(&req);
        let (fault, delay) = schedule
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .decide(&op);
        if let Some((status, reason, body)) = fault.and_then(|f| f.reply(&req)) {
            let headers = vec![
                (
                    "Content-Type".to_owned(),
                    "application/x-amz-json-1.0".to_owned(),
                ),
                ("x-amzn-RequestId".to_owned(), "INJECTED".to_owned()),
            ];
            if write_reply(&mut socket, status, reason, &headers, body.as_bytes())
                .await
                .is_err()
            {
                return;
            }
            continue;
        }
        if fault == Some(Fault::ResetBefore) {
            return reset(socket);
        }
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let Some((status, headers, body)) = forward(&upstream, &mut sender, &req).await else {
            return reset(socket);
        };
        schedule.lock().unwrap_or_else(|e| e.into_inner()).forwarded += 1;
        if fault == Some(Fault::LostReply) {
            return reset(socket);
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
