//! The client API, version 1: the requests an application sends to a Cairn
//! deployment and the answers it gets, as JSON.
//!
//! One vocabulary for every side of the wire: the Lambda host decodes these
//! types from a direct invoke or a Function URL body and encodes its
//! answers with them; `cairn-client` (and the CLI's `--function` mode)
//! encodes the requests and decodes the answers. `docs/api.md` is the
//! reference for callers in other languages.
//!
//! - A request is one JSON object: `{"v": 1, "action": "<verb>", ...}`
//!   ([`Request`]). `v` is optional (absent means 1); another version is
//!   refused with CRN401.
//! - A success is the verb's answer object ([`StartAnswer`],
//!   [`Description`], ...).
//! - A failure is `{"error": {"code": "CRN202", "type": "ExecutionExists",
//!   "status": 409, "message": "..."}}` ([`ApiError`]); through a Function
//!   URL the same body comes with that HTTP status.

mod answer;
mod error;

pub use answer::*;
pub use error::{ApiError, http_status, type_name};

use crate::{Status, Timestamp};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use std::fmt;

/// The API version this build speaks.
pub const VERSION: u32 = 1;

/// The longest `wait_ms` a start honours (14 minutes): below Lambda's
/// 15-minute invocation limit. The host also stops waiting 2 s before its
/// own invocation's deadline, whichever comes first.
pub const MAX_WAIT_MS: u64 = 840_000;

/// The largest request body accepted (1 MiB). Inputs and payloads must also
/// fit the store's item limit (about 400 KB on DynamoDB): a larger one is
/// refused with CRN204 and nothing is written.
pub const MAX_REQUEST_BYTES: usize = 1 << 20;

/// A `history` page stops early rather than pass this much JSON (4 MiB),
/// below Lambda's 6 MB limit on a response.
pub const MAX_ANSWER_BYTES: usize = 4 << 20;

/// Page size of `history` and `list` when the request names none.
pub const DEFAULT_PAGE: usize = 100;

/// The largest page of `history` and `list`.
pub const MAX_PAGE: usize = 1000;

/// One API request. Serialized with its verb in `action`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Request {
    /// Create an execution (idempotent by id) and advance it until it
    /// waits; with `wait_ms`, wait for its result.
    Start(Start),
    /// Write a signal to an execution's inbox.
    Signal(Signal),
    /// Ask a running execution's workflow a query (nothing is written).
    Query(Query),
    /// Ask an execution to cancel (its compensations run).
    Cancel(Cancel),
    /// An execution's status, what it waits on, its output or failure.
    /// `status` is accepted as another name for it.
    #[serde(alias = "status")]
    Describe(Describe),
    /// A page of an execution's journal.
    History(History),
    /// A page of executions, most recently updated first.
    List(List),
}

impl Request {
    /// The verb (`start`, `signal`...).
    pub fn action(&self) -> &'static str {
        match self {
            Self::Start(_) => "start",
            Self::Signal(_) => "signal",
            Self::Query(_) => "query",
            Self::Cancel(_) => "cancel",
            Self::Describe(_) => "describe",
            Self::History(_) => "history",
            Self::List(_) => "list",
        }
    }

    /// The request as sent on the wire, with `"v"`.
    pub fn to_wire(&self) -> Value {
        let mut v = serde_json::to_value(self).expect("requests always serialize");
        v["v"] = VERSION.into();
        v
    }

    /// Reads a request from its wire form: checks `v`, then the verb and
    /// its fields. Every refusal is CRN401 with what was wrong and what the
    /// request should look like.
    pub fn from_wire(mut v: Value) -> Result<Self, ApiError> {
        let Some(obj) = v.as_object_mut() else {
            return Err(ApiError::bad_request(format!(
                "a request is a JSON object, not {}; {SHAPE}",
                kind_of(&v)
            )));
        };
        match obj.remove("v") {
            None => {}
            Some(Value::Number(n)) if n.as_u64() == Some(u64::from(VERSION)) => {}
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "this function speaks API version {VERSION}, the request asks for \"v\": {other}: send \"v\": {VERSION} (or leave it out)"
                )));
            }
        }
        let action = match obj.get("action") {
            Some(Value::String(a)) => a.clone(),
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "\"action\" must be a string, not {}; {SHAPE}",
                    kind_of(other)
                )));
            }
            None => {
                return Err(ApiError::bad_request(format!(
                    "the request has no \"action\"; {SHAPE}"
                )));
            }
        };
        if !ACTIONS.contains(&action.as_str()) {
            return Err(ApiError::bad_request(format!(
                "unknown action {action:?}; {SHAPE}"
            )));
        }
        serde_json::from_value(v).map_err(|e| {
            ApiError::bad_request(format!(
                "bad {action} request: {e}; see docs/api.md for its fields"
            ))
        })
    }
}

/// Every verb [`Request::from_wire`] accepts (`status` = `describe`).
pub const ACTIONS: &[&str] = &[
    "start", "signal", "query", "cancel", "describe", "status", "history", "list",
];

const SHAPE: &str = "expected {\"v\": 1, \"action\": \"start\"|\"signal\"|\"query\"|\"cancel\"|\"describe\"|\"history\"|\"list\", ...} (docs/api.md)";

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `start`: create an execution and advance it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Start {
    /// Workflow name.
    pub workflow: String,
    /// Execution id (generated when absent). Starting an existing id with
    /// the same workflow and input returns that execution; with another
    /// input, CRN202.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Input (JSON).
    #[serde(default)]
    pub input: Value,
    /// Component hash (default: the one registered for the workflow).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// Wait up to this long (ms, at most [`MAX_WAIT_MS`]) for the
    /// execution to finish; the answer then carries its output or failure.
    /// Without it (or when it elapses first) the answer is its status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_ms: Option<u64>,
}

/// `signal`: write a signal to an execution's inbox.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signal {
    /// Execution id.
    pub id: String,
    /// Signal name.
    pub name: String,
    /// Payload (JSON).
    #[serde(default)]
    pub payload: Value,
    /// Caller-chosen key (1 to 200 printable characters): the same signal
    /// sent again with the same key (a retry after a lost reply) is
    /// delivered once. Kept 7 days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

/// `query`: ask a running execution a query.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Query {
    /// Execution id.
    pub id: String,
    /// Query name.
    pub name: String,
    /// Arguments (JSON).
    #[serde(default)]
    pub args: Value,
}

/// `cancel`: ask an execution to cancel.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cancel {
    /// Execution id.
    pub id: String,
    /// Why (journaled with the request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `describe` (or `status`): one execution.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Describe {
    /// Execution id.
    pub id: String,
}

/// `history`: a page of an execution's journal.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct History {
    /// Execution id.
    pub id: String,
    /// The run (after continue-as-new); default: the current one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<u32>,
    /// Where to go on: the previous page's `next_cursor`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Entries per page (default [`DEFAULT_PAGE`], at most [`MAX_PAGE`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

/// `list`: a page of executions, most recently updated first.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct List {
    /// Only this workflow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
    /// Only these statuses (all when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub status: Vec<Status>,
    /// Only executions updated at or after this time: RFC 3339 in UTC
    /// (`2026-11-30T12:00:00Z`) or epoch milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_after: Option<Time>,
    /// Only executions updated before this time (same forms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_before: Option<Time>,
    /// Where to go on: the previous page's `next_cursor`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Executions per page (default [`DEFAULT_PAGE`], at most [`MAX_PAGE`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

/// A time in a request: RFC 3339 in UTC, or epoch milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Time(pub Timestamp);

impl Serialize for Time {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Number(n) => n.as_u64().map(|ms| Time(Timestamp::from_millis(ms))).ok_or_else(|| {
                serde::de::Error::custom(format!("time {n}: epoch milliseconds are a whole number ≥ 0"))
            }),
            Value::String(s) => parse_rfc3339(&s).map(Time).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "time {s:?} is not RFC 3339 in UTC (2026-11-30T12:00:00Z or 2026-11-30T12:00:00.250Z)"
                ))
            }),
            other => Err(serde::de::Error::custom(format!(
                "a time is an RFC 3339 string or epoch milliseconds, not {}",
                kind_of(&other)
            ))),
        }
    }
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fff]Z` (what [`Timestamp::to_rfc3339`]
/// writes, with or without the milliseconds).
pub fn parse_rfc3339(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    if b[16] != b':' || *b.last()? != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let ms = match &s[19..s.len() - 1] {
        "" => 0,
        frac if frac.len() == 4 && frac.starts_with('.') => num(20..23)?,
        _ => return None,
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if mo > 2 { mo - 3 } else { mo + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec;
    u64::try_from(secs * 1000 + ms)
        .ok()
        .map(Timestamp::from_millis)
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;
    use serde_json::json;

    #[test]
    fn requests_round_trip_with_their_version() {
        let r = Request::Start(Start {
            workflow: "swap".into(),
            id: Some("s1".into()),
            input: json!({"a": 1}),
            component: None,
            wait_ms: Some(5000),
        });
        let wire = r.to_wire();
        assert_eq!(
            wire,
            json!({"v": 1, "action": "start", "workflow": "swap", "id": "s1", "input": {"a": 1}, "wait_ms": 5000})
        );
        assert_eq!(Request::from_wire(wire).unwrap(), r);
        let status = Request::from_wire(json!({"action": "status", "id": "x"})).unwrap();
        assert_eq!(status, Request::Describe(Describe { id: "x".into() }));
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        for (v, words) in [
            (json!([1]), "a JSON object, not an array"),
            (json!({"id": "x"}), "no \"action\""),
            (json!({"action": 7}), "must be a string"),
            (json!({"action": "explode"}), "unknown action \"explode\""),
            (json!({"v": 2, "action": "list"}), "API version 1"),
            (json!({"action": "start"}), "missing field `workflow`"),
            (
                json!({"action": "describe", "id": "x", "x": 1}),
                "unknown field `x`",
            ),
            (
                json!({"action": "list", "updated_after": "yesterday"}),
                "not RFC 3339",
            ),
        ] {
            let e = Request::from_wire(v.clone()).unwrap_err();
            assert_eq!((e.code, e.status), (ErrorCode::BadInput, 400), "{v}");
            assert!(e.message.contains(words), "{v}: {}", e.message);
        }
    }

    #[test]
    fn rfc3339_times_parse_back() {
        for ms in [0, 951_782_400_000, 1_795_811_951_123] {
            let t = Timestamp::from_millis(ms);
            assert_eq!(parse_rfc3339(&t.to_rfc3339()), Some(t));
        }
        assert_eq!(
            parse_rfc3339("2026-11-30T12:00:00Z"),
            parse_rfc3339("2026-11-30T12:00:00.000Z")
        );
        assert_eq!(parse_rfc3339("2026-11-30 12:00:00Z"), None);
        assert_eq!(parse_rfc3339("2026-13-30T12:00:00Z"), None);
    }
}
