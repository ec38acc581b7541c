//! The inbox: deliveries (once by key, or under a new ULID), each with the
//! meta's inbox version bump in one transaction.

use crate::DynamoStore;
use crate::codec::*;
use crate::transactions::{TransactError, put};
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use cairn_core::store::*;
use cairn_core::{ExecutionId, Timestamp};

impl DynamoStore {
    pub(crate) async fn deliver_message(
        &self,
        id: &ExecutionId,
        message: InboxMessage,
        at: Timestamp,
    ) -> Result<InboxItem, StoreError> {
        let ulid = self.next_ulid()?;
        match self
            .insert_inbox(id, ulid.clone(), message.clone(), at)
            .await?
        {
            Some(item) => Ok(item),
            // The id is new to this call: an item under it can only be
            // this call's own, written by an attempt whose reply was
            // lost before the SDK retried. Delivered once: say so.
            None => Ok(InboxItem {
                id: ulid,
                at,
                message,
            }),
        }
    }

    /// Puts an inbox item under `item_id` and bumps the meta's inbox version,
    /// in one transaction. `None`: an item with that id exists already (a
    /// keyed delivery that happened before).
    pub(crate) async fn insert_inbox(
        &self,
        id: &ExecutionId,
        item_id: String,
        message: InboxMessage,
        at: Timestamp,
    ) -> Result<Option<InboxItem>, StoreError> {
        let body = serde_json::to_string(&message).expect("inbox messages serialize");
        self.check_size(id, || message.describe(), body.len())?;
        if self.inbox_grace.is_some() {
            self.ensure_shards().await?;
        }
        let mut item = inbox_item(id, &item_id, at, &message);
        self.payloads
            .body(id, || message.describe(), body)
            .await?
            .set(&mut item);
        let items = vec![
            put(&self.table, item, "attribute_not_exists(pk)"),
            self.bump_inbox_version(id, at),
        ];
        match self.transact(items).await {
            Ok(()) => Ok(Some(InboxItem {
                id: item_id,
                at,
                message,
            })),
            Err(TransactError::Cancelled(reasons, _))
                if reasons.first().map(String::as_str) == Some("ConditionalCheckFailed") =>
            {
                Ok(None)
            }
            Err(TransactError::Cancelled(..)) => Err(self.explain(id, "cannot deliver").await),
            Err(TransactError::Other(e)) => Err(e),
        }
    }

    /// The meta update that goes with every inbox write.
    fn bump_inbox_version(&self, id: &ExecutionId, at: Timestamp) -> TransactWriteItem {
        let mut update = Update::builder()
            .table_name(&self.table)
            .key("pk", s(exec_pk(id)))
            .key("sk", s("meta"));
        update = match self.inbox_grace {
            Some(grace) => update
                .update_expression("SET inbox_version = inbox_version + :one, updated_at = :at, wake_at = :due, wake_bucket = :b")
                .expression_attribute_values(":due", n(at.plus(grace).as_millis()))
                .expression_attribute_values(":b", self.wake_key_of(id)),
            None => update.update_expression("SET inbox_version = inbox_version + :one, updated_at = :at"),
        };
        TransactWriteItem::builder()
            .update(
                update
                    .condition_expression("attribute_exists(pk) AND NOT (#st IN (:c, :f, :x))")
                    .expression_attribute_names("#st", "status")
                    .expression_attribute_values(":one", n(1))
                    .expression_attribute_values(":at", n(at.as_millis()))
                    .expression_attribute_values(":c", s("completed"))
                    .expression_attribute_values(":f", s("failed"))
                    .expression_attribute_values(":x", s("cancelled"))
                    .build()
                    .expect("update has table, key and expression"),
            )
            .build()
    }

    fn next_ulid(&self) -> Result<String, StoreError> {
        let mut g = self.ulids.lock().unwrap_or_else(|e| e.into_inner());
        g.generate()
            .map(|u| u.to_string())
            .map_err(|e| StoreError::Unavailable(format!("cannot make an inbox id: {e}")))
    }
}
