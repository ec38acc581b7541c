//! Items to and from the model; SDK errors to store errors.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use cairn_core::store::*;
use cairn_core::{ComponentHash, Entry, ExecutionId, Timestamp};
use serde::{Deserialize, Serialize};
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

/// A meta item's own attributes, as stored (existing tables hold them so):
/// strings S, numbers N, and an absent `Option` no attribute at all (never
/// NULL: `wake_at` and `wake_bucket` key the `by-wake` index, which refuses
/// one). The item holds more, written and read on their own: the inline
/// journal (`head`, `tail`, `tail_from`: see `inline`) and a start's
/// `start_token`. Unknown attributes are ignored on reads.
#[derive(Serialize, Deserialize)]
struct MetaItem {
    // Written, not read: a read knows its id, and the index keys follow
    // from the id and the status.
    #[serde(skip_deserializing)]
    pk: String,
    #[serde(skip_deserializing)]
    sk: String,
    #[serde(skip_deserializing)]
    status_shard: String,
    #[serde(skip_deserializing, skip_serializing_if = "Option::is_none")]
    wake_bucket: Option<String>,
    workflow: String,
    component: String,
    status: String,
    input_hash: u64,
    created_at: u64,
    updated_at: u64,
    inbox_version: u64,
    /// Absent in items written before continue-as-new: run 1.
    #[serde(default = "first_run")]
    run: u32,
    /// The indexed due time (`by-wake`).
    #[serde(skip_serializing_if = "Option::is_none")]
    wake_at: Option<u64>,
    /// The wake the workflow waits for (0: none); absent in items written
    /// before it existed, when the indexed time was the wake.
    #[serde(skip_serializing_if = "Option::is_none")]
    timer_at: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    waiting_on: Option<String>,
    /// The `ParkInfo` as JSON, set by `park` (never by a put).
    #[serde(skip_serializing_if = "Option::is_none")]
    parked: Option<String>,
    /// A lease is read only when both are there.
    #[serde(skip_serializing_if = "Option::is_none")]
    lease_owner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lease_until: Option<u64>,
}

fn first_run() -> u32 {
    1
}

/// The meta item of a new execution; `shards`: the store's index shard count.
pub(crate) fn meta_item(m: &ExecutionMeta, shards: u32) -> Item {
    let shard = crate::shards::shard_of(&m.id, shards);
    serde_dynamo::to_item(MetaItem {
        pk: exec_pk(&m.id),
        sk: "meta".into(),
        status_shard: crate::shards::status_key(m.status, shard),
        wake_bucket: m.due_at.map(|_| crate::shards::wake_key(shard)),
        workflow: m.workflow.clone(),
        component: m.component.as_str().into(),
        status: m.status.as_str().into(),
        input_hash: m.input_hash,
        created_at: m.created_at.as_millis(),
        updated_at: m.updated_at.as_millis(),
        inbox_version: m.inbox_version,
        run: m.run,
        wake_at: m.due_at.map(Timestamp::as_millis),
        timer_at: Some(m.wake_at.map_or(0, Timestamp::as_millis)),
        waiting_on: m.waiting_on.clone(),
        parked: None,
        // A start that drives what it creates takes the lease in the same put.
        lease_owner: m.lease.as_ref().map(|l| l.owner.clone()),
        lease_until: m.lease.as_ref().map(|l| l.until.as_millis()),
    })
    .expect("a meta item is strings and numbers")
}

/// Reads a meta item (taken: every caller is done with it, so a load does
/// not copy the inline journal it carries). The error names the attribute.
pub(crate) fn meta_from_item(id: &ExecutionId, item: Item) -> Result<ExecutionMeta, StoreError> {
    let item = serde_dynamo::AttributeValue::M(serde_dynamo::Item::from(item).into());
    let m: MetaItem =
        serde_path_to_error::deserialize(serde_dynamo::Deserializer::from_attribute_value(item))
            .map_err(|e| corrupt(id, format!("meta item: {e}")))?;
    Ok(ExecutionMeta {
        id: id.clone(),
        workflow: m.workflow,
        component: ComponentHash::parse(&m.component).map_err(|e| corrupt(id, e))?,
        status: Status::parse(&m.status)
            .ok_or_else(|| corrupt(id, format!("unknown status {:?}", m.status)))?,
        input_hash: m.input_hash,
        created_at: Timestamp::from_millis(m.created_at),
        updated_at: Timestamp::from_millis(m.updated_at),
        inbox_version: m.inbox_version,
        wake_at: match m.timer_at {
            Some(0) => None,
            Some(t) => Some(Timestamp::from_millis(t)),
            None => m.wake_at.map(Timestamp::from_millis),
        },
        due_at: m.wake_at.map(Timestamp::from_millis),
        waiting_on: m.waiting_on,
        parked: m
            .parked
            .map(|p| serde_json::from_str(&p).map_err(|e| corrupt(id, format!("parked: {e}"))))
            .transpose()?,
        run: m.run,
        lease: match (m.lease_owner, m.lease_until) {
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
