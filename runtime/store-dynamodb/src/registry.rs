//! The registry: components (chunked under `component#<sha256>`) and workflow
//! pointers (`workflow#<name>` and its read copies).

use crate::DynamoStore;
use crate::RETRY_ATTEMPTS;
use crate::codec::*;
use aws_sdk_dynamodb::types::AttributeValue;
use cairn_core::ComponentHash;
use cairn_core::store::*;
use std::collections::HashMap;

/// Component bytes are stored in chunks of this size.
const CHUNK_BYTES: usize = 350_000;

/// Copies of each workflow's pointer that starts read in turn, so that no
/// key takes more than its share of the starts' reads (see
/// `workflow_component`): 16 copies keep each under DynamoDB's 3,000 read
/// units per second up to about 48,000 starts per second of one workflow.
pub const POINTER_REPLICAS: u64 = 16;

impl DynamoStore {
    pub(crate) async fn write_component(
        &self,
        hash: &ComponentHash,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        if self.get_component_meta(hash).await?.is_some() {
            return Ok(());
        }
        let chunks: Vec<&[u8]> = bytes.chunks(CHUNK_BYTES).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            self.client
                .put_item()
                .table_name(&self.table)
                .item("pk", s(format!("component#{hash}")))
                .item("sk", s(format!("c#{i:04}")))
                .item(
                    "bytes",
                    AttributeValue::B(aws_smithy_types::Blob::new(chunk.to_vec())),
                )
                .send()
                .await
                .map_err(|e| sdk_error(&self.table, e))?;
        }
        // The meta item last: a component is visible only once whole.
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("component#{hash}")))
            .item("sk", s("meta"))
            .item("chunks", n(chunks.len() as u64))
            .item("size", n(bytes.len() as u64))
            .send()
            .await
            .map_err(|e| sdk_error(&self.table, e))?;
        Ok(())
    }

    pub(crate) async fn read_component(
        &self,
        hash: &ComponentHash,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let mut chunks: Vec<(String, Vec<u8>)> = Vec::new();
        let mut meta: Option<(u64, u64)> = None;
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(format!("component#{hash}")))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| sdk_error(&self.table, e))?;
            for item in page.items.unwrap_or_default() {
                let sk = get_s(&item, "sk").unwrap_or_default();
                if sk == "meta" {
                    meta = Some((
                        get_n(&item, "chunks").unwrap_or(0),
                        get_n(&item, "size").unwrap_or(0),
                    ));
                } else if let Some(AttributeValue::B(b)) = item.get("bytes") {
                    chunks.push((sk, b.as_ref().to_vec()));
                }
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        let Some((count, size)) = meta else {
            return Ok(None);
        };
        chunks.sort_by(|a, b| a.0.cmp(&b.0));
        let bytes: Vec<u8> = chunks
            .into_iter()
            .take(count as usize)
            .flat_map(|(_, b)| b)
            .collect();
        if bytes.len() as u64 != size {
            return Err(StoreError::Misconfigured(format!(
                "component {hash} is incomplete in table {} ({} of {size} bytes)",
                self.table,
                bytes.len()
            )));
        }
        Ok(Some(bytes))
    }

    async fn get_component_meta(&self, hash: &ComponentHash) -> Result<Option<u64>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(format!("component#{hash}")))
            .key("sk", s("meta"))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error(&self.table, e))?;
        Ok(out.item.and_then(|i| get_n(&i, "size")))
    }

    /// Deletes the `meta` item first (the component is no longer visible:
    /// `get_component` finds nothing), then every `c#` chunk. Interrupted
    /// in between, it leaves chunks nothing claims, never a meta whose
    /// bytes are gone; deleting again removes the rest.
    pub(crate) async fn remove_component(&self, hash: &ComponentHash) -> Result<bool, StoreError> {
        let pk = format!("component#{hash}");
        // Read first rather than ask the delete for the old item: a
        // delete whose reply is lost is retried by the SDK, and the
        // retry would find nothing and answer "was not stored".
        let existed = self.get_component_meta(hash).await?.is_some();
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(&pk))
            .key("sk", s("meta"))
            .send()
            .await
            .map_err(|e| sdk_error(&self.table, e))?;
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :c)")
                .expression_attribute_values(":pk", s(&pk))
                .expression_attribute_values(":c", s("c#"))
                .projection_expression("pk, sk")
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| sdk_error(&self.table, e))?;
            for item in page.items.unwrap_or_default() {
                self.client
                    .delete_item()
                    .table_name(&self.table)
                    .set_key(Some(item))
                    .send()
                    .await
                    .map_err(|e| sdk_error(&self.table, e))?;
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        Ok(existed)
    }

    /// One paged `Scan` of the whole table, filtered to the `meta` items of
    /// `component#` partitions and projecting the key and `size`: every item
    /// of the table is read (and paid for) once. An operator tool
    /// (`cairn components`), not a hot path.
    pub(crate) async fn scan_components(&self) -> Result<Vec<(ComponentHash, u64)>, StoreError> {
        let mut out = Vec::new();
        for item in self.scan_registry("component#").await? {
            let pk = get_s(&item, "pk").unwrap_or_default();
            let Some(hash) = pk.strip_prefix("component#") else {
                continue;
            };
            let hash = ComponentHash::parse(hash).map_err(StoreError::Misconfigured)?;
            out.push((hash, get_n(&item, "size").unwrap_or(0)));
        }
        out.sort();
        Ok(out)
    }

    pub(crate) async fn write_workflow_pointer(
        &self,
        name: &str,
        hash: &ComponentHash,
    ) -> Result<(), StoreError> {
        // The canonical pointer first (what `list_workflows` reads),
        // then the copies starts read (see `workflow_component`): once
        // this returns, every start follows the new pointer.
        let item = |pk: String| {
            HashMap::from([
                ("pk".to_owned(), s(pk)),
                ("sk".to_owned(), s("meta")),
                ("component".to_owned(), s(hash.as_str())),
            ])
        };
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item(format!("workflow#{name}"))))
            .send()
            .await
            .map_err(|e| sdk_error(&self.table, e))?;
        // The copies in one BatchWriteItem (at most 25 puts), sent
        // again with what DynamoDB left unprocessed.
        let mut writes: Vec<aws_sdk_dynamodb::types::WriteRequest> = (0..POINTER_REPLICAS)
            .map(|k| {
                aws_sdk_dynamodb::types::WriteRequest::builder()
                    .put_request(
                        aws_sdk_dynamodb::types::PutRequest::builder()
                            .set_item(Some(item(format!("wfcopy#{k}#{name}"))))
                            .build()
                            .expect("put request has an item"),
                    )
                    .build()
            })
            .collect();
        for attempt in 0..RETRY_ATTEMPTS * 2 {
            if writes.is_empty() {
                return Ok(());
            }
            if attempt > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(50 << attempt.min(5))).await;
            }
            let out = self
                .client
                .batch_write_item()
                .request_items(&self.table, writes)
                .send()
                .await
                .map_err(|e| sdk_error(&self.table, e))?;
            writes = out
                .unprocessed_items
                .and_then(|mut u| u.remove(&self.table))
                .unwrap_or_default();
        }
        Err(StoreError::Unavailable(format!(
            "DynamoDB left {} copies of workflow {name}'s pointer unwritten on table {}: register it again",
            writes.len(),
            self.table
        )))
    }

    /// Every start reads its workflow's pointer: one key read by every
    /// start would be hot (10,000 starts/s are 10,000 read units/s; a key
    /// takes 3,000), so the pointer has [`POINTER_REPLICAS`] copies
    /// (`wfcopy#<k>#<name>`, written by `set_workflow_component` after the
    /// canonical `workflow#<name>`) and each read takes the next copy. A
    /// table whose pointer predates the copies is read at `workflow#`.
    pub(crate) async fn read_workflow_pointer(
        &self,
        name: &str,
    ) -> Result<Option<ComponentHash>, StoreError> {
        let k = self
            .pointer_reads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            % POINTER_REPLICAS;
        let mut found = None;
        for pk in [format!("wfcopy#{k}#{name}"), format!("workflow#{name}")] {
            let out = self
                .client
                .get_item()
                .table_name(&self.table)
                .key("pk", s(pk))
                .key("sk", s("meta"))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| sdk_error(&self.table, e))?;
            if let Some(item) = out.item {
                found = get_s(&item, "component");
                break;
            }
        }
        found
            .map(|h| ComponentHash::parse(&h).map_err(StoreError::Misconfigured))
            .transpose()
    }

    /// Like [`DynamoStore::scan_components`] (one scan of the whole table),
    /// for the `meta` items of `workflow#` partitions.
    pub(crate) async fn scan_workflows(&self) -> Result<Vec<(String, ComponentHash)>, StoreError> {
        let mut out = Vec::new();
        for item in self.scan_registry("workflow#").await? {
            let pk = get_s(&item, "pk").unwrap_or_default();
            let (Some(name), Some(hash)) =
                (pk.strip_prefix("workflow#"), get_s(&item, "component"))
            else {
                continue;
            };
            let hash = ComponentHash::parse(&hash).map_err(StoreError::Misconfigured)?;
            out.push((name.to_owned(), hash));
        }
        out.sort();
        Ok(out)
    }

    /// The `meta` items of the partitions whose key starts with `prefix`
    /// (`component#`, `workflow#`): one paged, consistent `Scan` of the
    /// whole table, projecting `pk`, `size` and `component`.
    async fn scan_registry(
        &self,
        prefix: &str,
    ) -> Result<Vec<HashMap<String, AttributeValue>>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("begins_with(#pk, :prefix) AND #sk = :meta")
                .projection_expression("#pk, #size, #component")
                .expression_attribute_names("#pk", "pk")
                .expression_attribute_names("#sk", "sk")
                .expression_attribute_names("#size", "size")
                .expression_attribute_names("#component", "component")
                .expression_attribute_values(":prefix", s(prefix))
                .expression_attribute_values(":meta", s("meta"))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| sdk_error(&self.table, e))?;
            out.extend(page.items.unwrap_or_default());
            start = page.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        Ok(out)
    }
}
