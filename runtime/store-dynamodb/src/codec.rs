//! Items to and from the model; SDK errors to store errors.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use cairn_core::store::*;
use cairn_core::{ComponentHash, Entry, ExecutionId, Timestamp};
use std::collections::HashMap;

pub(crate) type Item = HashMap<String, AttributeValue>;

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(crate) fn get_s(item: &Item, k: &str) -> Option<String> {
    item.get(k).and_then(|v| v.as_s().ok()).cloned()
}

pub(crate) fn get_n(item: &Item, k: &str) -> Option<u64> {
    item.get(k)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

pub(crate) fn exec_pk(id: &ExecutionId) -> String {
    format!("exec#{id}")
}

/// Journal entries sort below `in#` (inbox) and `meta`, runs in order, so a
/// descending query reads meta, inbox, then the current run, newest first.
pub(crate) fn entry_sk(run: u32, index: u32) -> String {
    format!("h#{run:06}#{index:010}")
}

/// An item's size as DynamoDB counts it (close enough for figures):
/// attribute names plus values, numbers at about one byte per two digits.
pub(crate) fn item_bytes(item: &Item) -> usize {
    item.iter()
        .map(|(k, v)| {
            k.len()
                + match v {
                    AttributeValue::S(s) => s.len(),
                    AttributeValue::N(n) => n.len().div_ceil(2) + 1,
                    AttributeValue::B(b) => b.as_ref().len(),
                    AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
                    _ => 0,
                }
        })
        .sum()
}

/// `h#000002#0000000007` -> (2, 7).
pub(crate) fn parse_entry_sk(sk: &str) -> Option<(u32, u32)> {
    let rest = sk.strip_prefix("h#")?;
    let (run, index) = rest.split_once('#')?;
    Some((run.parse().ok()?, index.parse().ok()?))
}

fn corrupt(id: &ExecutionId, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        id: id.clone(),
        reason: reason.into(),
    }
}

/// The meta item of a new execution; `shards`: the store's index shard count.
pub(crate) fn meta_item(m: &ExecutionMeta, shards: u32) -> Item {
    let shard = crate::shards::shard_of(&m.id, shards);
    let mut item: Item = HashMap::new();
    item.insert("pk".into(), s(exec_pk(&m.id)));
    item.insert("sk".into(), s("meta"));
    item.insert("workflow".into(), s(&m.workflow));
    item.insert("component".into(), s(m.component.as_str()));
    item.insert("status".into(), s(m.status.as_str()));
    item.insert(
        "status_shard".into(),
        s(crate::shards::status_key(m.status, shard)),
    );
    item.insert("input_hash".into(), n(m.input_hash));
    item.insert("created_at".into(), n(m.created_at.as_millis()));
    item.insert("updated_at".into(), n(m.updated_at.as_millis()));
    item.insert("inbox_version".into(), n(m.inbox_version));
    item.insert("run".into(), n(u64::from(m.run)));
    // `wake_at` is the indexed due time (by-wake); `timer_at` the wake the
    // workflow waits for (0: none).
    if let Some(t) = m.due_at {
        item.insert("wake_at".into(), n(t.as_millis()));
        item.insert("wake_bucket".into(), s(crate::shards::wake_key(shard)));
    }
    item.insert("timer_at".into(), n(m.wake_at.map_or(0, |t| t.as_millis())));
    if let Some(w) = &m.waiting_on {
        item.insert("waiting_on".into(), s(w));
    }
    // A start that drives what it creates takes the lease in the same put.
    if let Some(l) = &m.lease {
        item.insert("lease_owner".into(), s(&l.owner));
        item.insert("lease_until".into(), n(l.until.as_millis()));
    }
    item
}

pub(crate) fn meta_from_item(id: &ExecutionId, item: &Item) -> Result<ExecutionMeta, StoreError> {
    let req_s = |k: &str| get_s(item, k).ok_or_else(|| corrupt(id, format!("meta has no {k}")));
    let req_n = |k: &str| get_n(item, k).ok_or_else(|| corrupt(id, format!("meta has no {k}")));
    let status = req_s("status")?;
    Ok(ExecutionMeta {
        id: id.clone(),
        workflow: req_s("workflow")?,
        component: ComponentHash::parse(&req_s("component")?).map_err(|e| corrupt(id, e))?,
        status: Status::parse(&status)
            .ok_or_else(|| corrupt(id, format!("unknown status {status:?}")))?,
        input_hash: req_n("input_hash")?,
        created_at: Timestamp::from_millis(req_n("created_at")?),
        updated_at: Timestamp::from_millis(req_n("updated_at")?),
        inbox_version: req_n("inbox_version")?,
        // Items written before `timer_at` existed: the indexed time was the wake.
        wake_at: match get_n(item, "timer_at") {
            Some(0) => None,
            Some(t) => Some(Timestamp::from_millis(t)),
            None => get_n(item, "wake_at").map(Timestamp::from_millis),
        },
        due_at: get_n(item, "wake_at").map(Timestamp::from_millis),
        waiting_on: get_s(item, "waiting_on"),
        parked: get_s(item, "parked")
            .map(|p| serde_json::from_str(&p).map_err(|e| corrupt(id, format!("parked: {e}"))))
            .transpose()?,
        run: get_n(item, "run").unwrap_or(1) as u32,
        lease: match (get_s(item, "lease_owner"), get_n(item, "lease_until")) {
            (Some(owner), Some(until)) => Some(cairn_core::Lease {
                owner,
                until: Timestamp::from_millis(until),
            }),
            _ => None,
        },
    })
}

/// A journal entry's item without its body (see `payloads::Body::set`).
pub(crate) fn entry_item(id: &ExecutionId, run: u32, index: u32) -> Item {
    let mut item: Item = HashMap::new();
    item.insert("pk".into(), s(exec_pk(id)));
    item.insert("sk".into(), s(entry_sk(run, index)));
    item
}

/// A journal entry's item with its body inline (tests that write items
/// themselves).
#[cfg(test)]
pub(crate) fn inline_entry_item(id: &ExecutionId, run: u32, index: u32, body: String) -> Item {
    let mut item = entry_item(id, run, index);
    item.insert("body".into(), s(body));
    item
}

pub(crate) fn entry_from_item(
    id: &ExecutionId,
    index: u32,
    item: &Item,
) -> Result<Entry, StoreError> {
    let body = get_s(item, "body")
        .ok_or_else(|| corrupt(id, format!("journal entry {index} has no body")))?;
    cairn_core::entry::decode(index, body.as_bytes()).map_err(|e| corrupt(id, e.to_string()))
}

pub(crate) fn inbox_item(
    id: &ExecutionId,
    ulid: &str,
    at: Timestamp,
    message: &InboxMessage,
) -> Item {
    let mut item: Item = HashMap::new();
    item.insert("pk".into(), s(exec_pk(id)));
    item.insert("sk".into(), s(format!("in#{ulid}")));
    item.insert("at".into(), n(at.as_millis()));
    let kind = match message {
        InboxMessage::Signal { .. } => "signal",
        InboxMessage::Cancel { .. } => "cancel",
        InboxMessage::ChildCompleted { .. } => "child",
    };
    item.insert("kind".into(), s(kind));
    item
}

pub(crate) fn inbox_from_item(
    id: &ExecutionId,
    ulid: &str,
    item: &Item,
) -> Result<InboxItem, StoreError> {
    let body =
        get_s(item, "body").ok_or_else(|| corrupt(id, format!("inbox item {ulid} has no body")))?;
    let message =
        serde_json::from_str(&body).map_err(|e| corrupt(id, format!("inbox item {ulid}: {e}")))?;
    Ok(InboxItem {
        id: ulid.to_string(),
        at: Timestamp::from_millis(get_n(item, "at").unwrap_or(0)),
        message,
    })
}

/// Maps an SDK error: a missing table and bad requests are configuration
/// problems; everything the SDK's retries could not get through is
/// "unavailable" (try again later).
pub(crate) fn sdk_error<E, R>(table: &str, e: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match &e {
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or("Unknown");
            let message = se.err().message().unwrap_or("");
            match code {
                "ResourceNotFoundException" => StoreError::Misconfigured(format!(
                    "table {table} does not exist (or this region has no such table): create it with `cairn table create --table {table}` ({message})"
                )),
                "ValidationException" if message.contains("size") => StoreError::Misconfigured(
                    format!("DynamoDB refused an item on table {table} as too large: {message}"),
                ),
                "ValidationException" => StoreError::Misconfigured(format!(
                    "table {table} does not fit Cairn's schema: {message}"
                )),
                "AccessDeniedException" | "UnrecognizedClientException" => {
                    StoreError::Misconfigured(format!(
                        "access to table {table} denied: check the credentials and IAM policy ({code}: {message})"
                    ))
                }
                _ => StoreError::Unavailable(format!(
                    "DynamoDB error on table {table}: {code}: {message}"
                )),
            }
        }
        SdkError::DispatchFailure(d) => {
            let endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB")
                .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
                .unwrap_or_else(|_| "the regional endpoint".into());
            let cause = std::error::Error::source(&e)
                .map(|s| s.to_string())
                .unwrap_or_default();
            let _ = d;
            StoreError::Unavailable(format!(
                "cannot reach DynamoDB at {endpoint}: {cause}; check the endpoint and network"
            ))
        }
        SdkError::TimeoutError(_) => {
            StoreError::Unavailable(format!("DynamoDB request on table {table} timed out"))
        }
        SdkError::ConstructionFailure(_) => StoreError::Misconfigured(format!(
            "cannot build a DynamoDB request: {e}; is AWS_REGION set?"
        )),
        _ => StoreError::Unavailable(format!("DynamoDB request on table {table} failed: {e}")),
    }
}
