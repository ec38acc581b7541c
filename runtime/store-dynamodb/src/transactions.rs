//! Transactions: `TransactWriteItems` with its retry on a transaction
//! conflict, the cancellation reasons it returns, the conditional `put` in
//! one, and how a refusal is explained (not found, finished or a conflict).

use crate::DynamoStore;
use crate::codec::*;
use crate::{RETRY_ATTEMPTS, payloads};
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use cairn_core::ExecutionId;
use cairn_core::store::*;
use std::collections::HashMap;

impl DynamoStore {
    /// One transaction. Cancelled for a `TransactionConflict` (another
    /// transaction held one of its items, as when a delivery and a suspend
    /// meet on the meta), it applied nothing: it is sent again, up to
    /// [`RETRY_ATTEMPTS`] times in all, after a short jittered pause (the
    /// SDK does not retry a cancelled transaction). Sent again, it meets
    /// the other transaction's outcome: done, or refused by its conditions.
    pub(crate) async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<(), TransactError> {
        let mut attempt = 1;
        loop {
            let r = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            match r {
                Ok(_) => return Ok(()),
                Err(e) if attempt < RETRY_ATTEMPTS && is_transaction_conflict(&e) => {
                    let jitter = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.subsec_nanos() % 20_000_000);
                    let pause = std::time::Duration::from_millis(20 << (attempt - 1))
                        + std::time::Duration::from_nanos(u64::from(jitter));
                    tracing::debug!(attempt, "transaction conflict, sending again");
                    tokio::time::sleep(pause).await;
                    attempt += 1;
                }
                Err(e) => return Err(transact_error(&self.table, e)),
            }
        }
    }

    /// After a refused transaction: why? (not found, finished, or a conflict).
    pub(crate) async fn explain(&self, id: &ExecutionId, conflict: &str) -> StoreError {
        match self.get_meta(id).await {
            Ok(None) => StoreError::NotFound(id.clone()),
            Ok(Some(m)) if m.status.is_terminal() => StoreError::Finished {
                id: id.clone(),
                status: m.status,
            },
            Ok(Some(_)) => StoreError::Conflict {
                id: id.clone(),
                reason: conflict.to_string(),
            },
            Err(e) => e,
        }
    }
}

/// How a transaction failed.
pub(crate) enum TransactError {
    /// A condition failed: the cancellation reason code of each item, and
    /// the item a refused condition found (puts ask for it).
    Cancelled(Vec<String>, Vec<Option<HashMap<String, AttributeValue>>>),
    /// Anything else.
    Other(StoreError),
}

fn transact_error<R>(
    table: &str,
    e: SdkError<aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError, R>,
) -> TransactError
where
    R: std::fmt::Debug,
{
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    if let Some(TransactWriteItemsError::TransactionCanceledException(t)) = e.as_service_error() {
        let reasons: Vec<String> = t
            .cancellation_reasons()
            .iter()
            .map(|r| r.code().unwrap_or("None").to_string())
            .collect();
        if reasons.iter().any(|r| r == "ConditionalCheckFailed") {
            let found = t
                .cancellation_reasons()
                .iter()
                .map(|r| r.item().cloned())
                .collect();
            return TransactError::Cancelled(reasons, found);
        }
        if reasons.iter().any(|r| {
            r == "TransactionConflict"
                || r == "ThrottlingError"
                || r == "ProvisionedThroughputExceeded"
        }) {
            return TransactError::Other(StoreError::Unavailable(format!(
                "DynamoDB cancelled the transaction ({}): retry",
                reasons.join(", ")
            )));
        }
        return TransactError::Other(StoreError::Misconfigured(format!(
            "DynamoDB refused the transaction on table {table}: {}",
            reasons.join(", ")
        )));
    }
    TransactError::Other(sdk_error(table, e))
}

/// Whether a transaction was cancelled only because another transaction
/// held one of its items (no condition of its own failed).
fn is_transaction_conflict<R>(
    e: &SdkError<aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError, R>,
) -> bool {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    let Some(TransactWriteItemsError::TransactionCanceledException(t)) = e.as_service_error()
    else {
        return false;
    };
    let codes = || t.cancellation_reasons().iter().filter_map(|r| r.code());
    codes().any(|c| c == "TransactionConflict") && !codes().any(|c| c == "ConditionalCheckFailed")
}

/// A conditional put in a transaction; if its condition fails, the
/// cancellation reason carries the item it found (to tell a write of our own
/// from another driver's: see [`is_own_entry`]).
pub(crate) fn put(
    table: &str,
    item: HashMap<String, AttributeValue>,
    condition: &str,
) -> TransactWriteItem {
    TransactWriteItem::builder()
        .put(
            Put::builder()
                .table_name(table)
                .set_item(Some(item))
                .condition_expression(condition)
                .return_values_on_condition_check_failure(
                    aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .build()
                .expect("put has table and item"),
        )
        .build()
}

/// Whether `found`, the journal entry a refused put met, is the one this
/// call writes (the same encoded body: same index, event and time). It can
/// be only when an earlier attempt of the same write was applied and its
/// reply lost: the SDK retried it (a conditional put is not idempotent), or
/// the caller retried after the SDK gave up. The write is done, once: not a
/// conflict. (Another driver's entry differs at least by its time; were it
/// byte for byte the same, the journal would hold exactly what this caller
/// meant to write.)
pub(crate) fn is_own_entry(found: Option<&HashMap<String, AttributeValue>>, body: &str) -> bool {
    found.is_some_and(|item| payloads::same_body(item, body))
}
