//! The journal: load (from the run hint or after the journal cache), append,
//! continue-as-new, a closed run's entries, and the run hints that bound a load.

use crate::DynamoStore;
use crate::codec::*;
use crate::transactions::{TransactError, is_own_entry, put};
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use cairn_core::store::*;
use cairn_core::{Entry, ExecutionId};
use std::collections::HashMap;

/// Items in the first page of a load when the store does not know the
/// current run (see [`DynamoStore::load_execution`]): enough for a typical execution
/// in one request, small enough that reading past the current run into an
/// older one wastes little. Pages bounded to a known run have no item cap.
const COLD_FIRST_PAGE_ITEMS: i32 = 500;

/// Executions whose current run the store remembers (a few bytes each);
/// past it the memory starts over.
const RUN_HINTS: usize = 10_000;

/// How long consumed inbox items are kept (for audit) before TTL removes them.
const CONSUMED_RETENTION_SECS: u64 = 7 * 86_400;

impl DynamoStore {
    pub(crate) async fn load_execution(&self, id: &ExecutionId) -> Result<Execution, StoreError> {
        if let Some(ex) = self.load_after_cached(id).await? {
            return self.loaded(id, ex).await;
        }
        let floor = self.run_hint(id).map(|run| (run, 0));
        let ex = match self.load_from(id, floor).await {
            Ok(Some(ex)) => ex,
            Ok(None) => {
                self.forget_run(id);
                self.load_from(id, None)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(id.clone()))?
            }
            Err(e) => {
                if matches!(e, StoreError::NotFound(_)) {
                    self.forget_run(id);
                }
                return Err(e);
            }
        };
        self.loaded(id, ex).await
    }

    /// A load that reads only the entries after the journal this process
    /// keeps for `id` (see [`cairn_core::journal_cache`]); `None` when it keeps none,
    /// or what came back does not continue it (then a whole load follows).
    async fn load_after_cached(&self, id: &ExecutionId) -> Result<Option<Execution>, StoreError> {
        let Some((run, created_at, len)) = self.journals.prefix(id) else {
            return Ok(None);
        };
        let mut ex = match self.load_from(id, Some((run, len))).await {
            Ok(Some(ex)) => ex,
            Ok(None) => {
                self.journals.forget(id);
                return Ok(None);
            }
            Err(e) => {
                self.journals.forget(id);
                return Err(e);
            }
        };
        let first = ex.journal.first().map(|e| e.index);
        if ex.meta.created_at != created_at {
            // Not the execution the cache knew.
        } else if ex.meta.run == run && first.is_none_or(|i| i == len) {
            if let Some(mut cached) = self.journals.entries(id, run, len) {
                cached.append(&mut ex.journal);
                ex.journal = cached;
                return Ok(Some(ex));
            }
        } else if ex.meta.run > run && first == Some(0) {
            // Continued as new elsewhere: the new run is above the bound
            // and came back whole.
            return Ok(Some(ex));
        }
        self.journals.forget(id);
        Ok(None)
    }

    /// After a load: finishes a half-written final entry (see `append`),
    /// remembers the run and keeps the journal.
    async fn loaded(&self, id: &ExecutionId, mut ex: Execution) -> Result<Execution, StoreError> {
        // A final entry whose meta update did not happen (the writer
        // stopped between the two): finish it now.
        if let Some(last) = ex.journal.last()
            && let Some(status) = last.event.final_status()
            && !ex.meta.status.is_terminal()
        {
            let at = last.at;
            // A child's parent may not have heard: due at once, so that
            // whoever drives due executions tells it.
            let hold = ex
                .journal
                .first()
                .and_then(|e| match &e.event {
                    cairn_core::Event::Started { parent, .. } => parent.as_ref(),
                    _ => None,
                })
                .map(|_| at);
            self.finish_meta(id, ex.meta.run, status, at, hold).await?;
            let m = &mut ex.meta;
            m.status = status;
            m.updated_at = at;
            m.due_at = hold;
            m.wake_at = None;
            m.waiting_on = None;
            m.lease = None;
        }
        // The meta read says the run: a remembered one ahead of it (an
        // execution made again under the same id) goes.
        self.forget_run(id);
        self.note_run(id, ex.meta.run);
        self.journals
            .keep(id, ex.meta.run, ex.meta.created_at, &ex.journal);
        Ok(ex)
    }

    /// One load from `floor`, the lowest run it reads (`None`: unknown, the
    /// first page capped at [`COLD_FIRST_PAGE_ITEMS`]). `None` when the
    /// meta's run is below the floor (a hint from an execution of the same
    /// id that no longer exists): the caller loads again without it.
    async fn load_from(
        &self,
        id: &ExecutionId,
        mut floor: Option<(u32, u32)>,
    ) -> Result<Option<Execution>, StoreError> {
        let hint = floor.map(|(run, _)| run);
        let bound = floor;
        let mut meta: Option<ExecutionMeta> = None;
        let mut inline = Vec::new();
        let mut journal = Vec::new();
        let mut inbox = Vec::new();
        let mut start = None;
        'pages: loop {
            let query = self
                .client
                .query()
                .table_name(&self.table)
                .expression_attribute_values(":pk", s(exec_pk(id)))
                .consistent_read(true)
                .scan_index_forward(false)
                .return_consumed_capacity(aws_sdk_dynamodb::types::ReturnConsumedCapacity::Total)
                .set_exclusive_start_key(start);
            // Descending, `meta` and `in#` sort above every entry: a floor
            // at the run's first entry keeps them and drops older runs.
            let query = match floor {
                Some((run, index)) => query
                    .key_condition_expression("pk = :pk AND sk >= :floor")
                    .expression_attribute_values(":floor", s(entry_sk(run, index))),
                None => query
                    .key_condition_expression("pk = :pk")
                    .limit(COLD_FIRST_PAGE_ITEMS),
            };
            let out = query.send().await.map_err(|e| sdk_error(&self.table, e))?;
            let items = out.items.unwrap_or_default();
            self.stats.add_read(
                out.consumed_capacity
                    .as_ref()
                    .and_then(|c| c.capacity_units),
                items.len() as u64,
                items.iter().map(item_bytes).sum::<usize>() as u64,
            );
            for mut item in items {
                let sk = get_s(&item, "sk").unwrap_or_default();
                if sk == "meta" {
                    inline = crate::inline::entries(id, &item)?;
                    let m = meta_from_item(id, item)?;
                    if hint.is_some_and(|h| m.run < h) {
                        return Ok(None);
                    }
                    meta = Some(m);
                } else if let Some(ulid) = sk.strip_prefix("in#") {
                    // Consumed items stay (with a TTL) so keyed
                    // deliveries remain idempotent; they are not pending.
                    let consumed = item.contains_key("consumed_at");
                    if !consumed {
                        self.payloads
                            .resolve(id, || format!("inbox item {ulid}"), &mut item)
                            .await?;
                        inbox.push(inbox_from_item(id, ulid, &item)?);
                    }
                } else if let Some((run, index)) = parse_entry_sk(&sk) {
                    let current = meta
                        .as_ref()
                        .map(|m| m.run)
                        .ok_or_else(|| StoreError::NotFound(id.clone()))?;
                    if run < current {
                        break 'pages; // An earlier run: not part of this load.
                    }
                    self.payloads
                        .resolve(id, || format!("journal entry {index}"), &mut item)
                        .await?;
                    journal.push(entry_from_item(id, index, &item)?);
                }
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                break;
            }
            // The next page starts within the run (or above it): bound it
            // to the run, now known from the meta, and lift the item cap.
            // (A bound within the run, from the journal cache, stays.)
            if let Some(m) = &meta
                && floor.is_none_or(|(run, _)| run != m.run)
            {
                floor = Some((m.run, 0));
            }
        }
        let meta = meta.ok_or_else(|| StoreError::NotFound(id.clone()))?;
        journal.reverse();
        inbox.reverse();
        let from = match bound {
            Some((run, index)) if run == meta.run => index,
            _ => 0,
        };
        crate::inline::merge(id, &mut journal, inline, meta.run, from)?;
        Ok(Some(Execution {
            meta,
            journal,
            inbox,
        }))
    }

    /// The run the store last saw as `id`'s current run.
    pub(crate) fn run_hint(&self, id: &ExecutionId) -> Option<u32> {
        self.run_hints
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .copied()
    }

    /// Remembers `run` as `id`'s current run (runs only grow: a lower one
    /// does not replace a higher one).
    pub(crate) fn note_run(&self, id: &ExecutionId, run: u32) {
        let mut hints = self.run_hints.lock().unwrap_or_else(|e| e.into_inner());
        if hints.len() >= RUN_HINTS && !hints.contains_key(id) {
            hints.clear();
        }
        let hint = hints.entry(id.clone()).or_insert(run);
        *hint = (*hint).max(run);
    }

    fn forget_run(&self, id: &ExecutionId) {
        self.run_hints
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }

    /// Appends `preceding` and then `append` (see
    /// [`cairn_core::Store::append_final`]): a final entry of a store
    /// holding the lease, small enough, is one update of the meta (see
    /// [`crate::inline`]); anything else is one write per entry.
    pub(crate) async fn append_entries(
        &self,
        id: &ExecutionId,
        preceding: Vec<Entry>,
        append: Append,
    ) -> Result<(), StoreError> {
        if append.entry.index == 0 {
            // Entry 0 is written by a start (maybe in the meta, where no
            // item put would meet it).
            return Err(StoreError::Conflict {
                id: id.clone(),
                reason: "journal entry 0 already exists".into(),
            });
        }
        if append.consume.is_none()
            && let Some(status) = append.entry.event.final_status()
            && let Some(owner) = self.held_lease(id)
        {
            let bodies: Vec<String> = preceding
                .iter()
                .chain(std::iter::once(&append.entry))
                .map(|e| String::from_utf8(cairn_core::entry::encode(e)).expect("entries are JSON"))
                .collect();
            // Over the payload threshold a body goes to the bucket, never
            // the meta.
            if let Some(tail) = crate::inline::tail(&bodies)
                .filter(|_| bodies.iter().all(|b| b.len() <= self.payloads.threshold))
            {
                let from = preceding.first().map_or(append.entry.index, |e| e.index);
                return self
                    .finish_inline(id, &owner, &append, status, from, tail, bodies)
                    .await
                    .map(|()| {
                        for e in &preceding {
                            self.journals.push(id, append.run, e);
                        }
                        self.journals.push(id, append.run, &append.entry);
                    });
            }
        }
        for entry in preceding {
            self.append_entry(id, Append::new(append.run, entry))
                .await?;
        }
        self.append_entry(id, append).await
    }

    pub(crate) async fn append_entry(
        &self,
        id: &ExecutionId,
        append: Append,
    ) -> Result<(), StoreError> {
        let index = append.entry.index;
        let body =
            String::from_utf8(cairn_core::entry::encode(&append.entry)).expect("entries are JSON");
        self.check_size(id, || format!("journal entry {index}"), body.len())?;
        let entry = self
            .entry_item(
                id,
                append.run,
                index,
                || format!("journal entry {index}"),
                body.clone(),
            )
            .await?;
        let finish = append.entry.event.final_status();
        let at = append.entry.at;
        if append.consume.is_none() {
            // The common step: one conditional put. A final entry is
            // then followed by the meta's status, conditional on the
            // run: no transaction (which would cost twice the write
            // units, indexes included). Stopped in between, the next
            // load finishes the meta (see `load_from`).
            let r = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(entry))
                .condition_expression("attribute_not_exists(pk)")
                .return_values_on_condition_check_failure(
                    aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
                .await;
            use aws_sdk_dynamodb::operation::put_item::PutItemError;
            match r {
                Ok(_) => {}
                Err(e) => match e.as_service_error() {
                    Some(PutItemError::ConditionalCheckFailedException(c)) => {
                        if !is_own_entry(c.item.as_ref(), &body) {
                            return Err(StoreError::Conflict {
                                id: id.clone(),
                                reason: format!("journal entry {index} already exists"),
                            });
                        }
                    }
                    _ => return Err(sdk_error(&self.table, e)),
                },
            }
            self.journals.push(id, append.run, &append.entry);
            return match finish {
                None => Ok(()),
                Some(status) => {
                    self.finish_meta(id, append.run, status, at, append.hold_until_heard)
                        .await
                }
            };
        }
        let mut items = vec![put(&self.table, entry, "attribute_not_exists(pk)")];
        if let Some(item) = &append.consume {
            let expires = at.as_millis() / 1000 + CONSUMED_RETENTION_SECS;
            items.push(
                TransactWriteItem::builder()
                    .update(
                        Update::builder()
                            .table_name(&self.table)
                            .key("pk", s(exec_pk(id)))
                            .key("sk", s(format!("in#{item}")))
                            .update_expression(
                                "SET consumed_at = :at, consumed_by = :idx, expires_at = :exp",
                            )
                            .condition_expression(
                                "attribute_exists(pk) AND attribute_not_exists(consumed_at)",
                            )
                            .expression_attribute_values(":at", n(at.as_millis()))
                            .expression_attribute_values(":idx", n(u64::from(index)))
                            .expression_attribute_values(":exp", n(expires))
                            .build()
                            .expect("update has table, key and expression"),
                    )
                    .build(),
            );
        }
        if let Some(status) = finish {
            self.ensure_shards().await?;
            items.push(
                TransactWriteItem::builder()
                    .update(
                        self.finish_update(
                            Update::builder()
                                .table_name(&self.table)
                                .key("pk", s(exec_pk(id)))
                                .key("sk", s("meta")),
                            id,
                            status,
                            append.hold_until_heard,
                        )
                        .condition_expression("attribute_exists(pk) AND #run = :run")
                        .expression_attribute_names("#st", "status")
                        .expression_attribute_names("#run", "run")
                        .expression_attribute_values(":at", n(at.as_millis()))
                        .expression_attribute_values(":run", n(u64::from(append.run)))
                        .build()
                        .expect("update has table, key and expression"),
                    )
                    .build(),
            );
        }
        match self.transact(items).await {
            Ok(()) => {
                self.journals.push(id, append.run, &append.entry);
                Ok(())
            }
            // Our own entry: this very transaction was applied before.
            Err(TransactError::Cancelled(_, found))
                if is_own_entry(found.first().and_then(Option::as_ref), &body) =>
            {
                self.journals.push(id, append.run, &append.entry);
                Ok(())
            }
            Err(TransactError::Cancelled(reasons, _)) => {
                let what = if reasons.first().map(String::as_str) == Some("ConditionalCheckFailed")
                {
                    format!("journal entry {index} already exists")
                } else {
                    format!(
                        "inbox item {} was already consumed",
                        append.consume.as_deref().unwrap_or("?")
                    )
                };
                Err(self.explain(id, &what).await)
            }
            Err(TransactError::Other(e)) => Err(e),
        }
    }

    pub(crate) async fn continue_run_as_new(
        &self,
        id: &ExecutionId,
        c: ContinueAsNew,
    ) -> Result<(), StoreError> {
        let closing =
            String::from_utf8(cairn_core::entry::encode(&c.closing)).expect("entries are JSON");
        let next = String::from_utf8(cairn_core::entry::encode(&c.next)).expect("entries are JSON");
        self.check_size(
            id,
            || format!("journal entry {} of run {}", c.closing.index, c.run),
            closing.len(),
        )?;
        self.check_size(id, || format!("the input of run {}", c.run + 1), next.len())?;
        self.ensure_shards().await?;
        let closing_item = self
            .entry_item(
                id,
                c.run,
                c.closing.index,
                || format!("journal entry {} of run {}", c.closing.index, c.run),
                closing.clone(),
            )
            .await?;
        let next_item = self
            .entry_item(
                id,
                c.run + 1,
                0,
                || format!("the input of run {}", c.run + 1),
                next,
            )
            .await?;
        let items = vec![
            put(&self.table, closing_item, "attribute_not_exists(pk)"),
            put(&self.table, next_item, "attribute_not_exists(pk)"),
            TransactWriteItem::builder()
                .update(
                    Update::builder()
                        .table_name(&self.table)
                        .key("pk", s(exec_pk(id)))
                        .key("sk", s("meta"))
                        .update_expression("SET #run = :next, #st = :running, status_shard = :ss, updated_at = :at, timer_at = :none REMOVE waiting_on")
                        .expression_attribute_values(":ss", self.status_key_of(id, Status::Running))
                        .expression_attribute_values(":none", n(0))
                        .condition_expression("#run = :run AND (#st = :running OR #st = :waiting)")
                        .expression_attribute_names("#st", "status")
                        .expression_attribute_names("#run", "run")
                        .expression_attribute_values(":run", n(u64::from(c.run)))
                        .expression_attribute_values(":next", n(u64::from(c.run + 1)))
                        .expression_attribute_values(":running", s("running"))
                        .expression_attribute_values(":waiting", s("waiting"))
                        .expression_attribute_values(":at", n(c.next.at.as_millis()))
                        .build()
                        .expect("update has table, key and expression"),
                )
                .build(),
        ];
        self.journals.forget(id);
        match self.transact(items).await {
            Ok(()) => {
                self.note_run(id, c.run + 1);
                Ok(())
            }
            // Our own closing entry: this continue-as-new was applied before.
            Err(TransactError::Cancelled(_, found))
                if is_own_entry(found.first().and_then(Option::as_ref), &closing) =>
            {
                self.note_run(id, c.run + 1);
                Ok(())
            }
            Err(TransactError::Cancelled(..)) => Err(self
                .explain(id, &format!("run {} has moved on", c.run))
                .await),
            Err(TransactError::Other(e)) => Err(e),
        }
    }

    pub(crate) async fn load_run_entries(
        &self,
        id: &ExecutionId,
        run: u32,
    ) -> Result<Vec<Entry>, StoreError> {
        let meta = self
            .get_meta_item(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(id.clone()))?;
        let inline = crate::inline::entries(id, &meta)?;
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :run)")
                .expression_attribute_values(":pk", s(exec_pk(id)))
                .expression_attribute_values(":run", s(format!("h#{run:06}#")))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| sdk_error(&self.table, e))?;
            for mut item in page.items.unwrap_or_default() {
                if let Some((_, index)) = parse_entry_sk(&get_s(&item, "sk").unwrap_or_default()) {
                    self.payloads
                        .resolve(
                            id,
                            || format!("journal entry {index} of run {run}"),
                            &mut item,
                        )
                        .await?;
                    out.push(entry_from_item(id, index, &item)?);
                }
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        crate::inline::merge(id, &mut out, inline, run, 0)?;
        Ok(out)
    }

    /// Refuses a body over the store's limit before any request.
    pub(crate) fn check_size(
        &self,
        id: &ExecutionId,
        what: impl FnOnce() -> String,
        size: usize,
    ) -> Result<(), StoreError> {
        let limit = self.payloads.limit();
        if size > limit {
            return Err(StoreError::TooLarge {
                id: id.clone(),
                what: what(),
                size,
                limit,
                advice: self.payloads.advice(),
            });
        }
        Ok(())
    }

    /// The item of journal entry `index` of `run`, its body in S3 when
    /// large (written before the item: see [`payloads`]).
    pub(crate) async fn entry_item(
        &self,
        id: &ExecutionId,
        run: u32,
        index: u32,
        what: impl FnOnce() -> String,
        body: String,
    ) -> Result<HashMap<String, AttributeValue>, StoreError> {
        let mut item = entry_item(id, run, index);
        self.payloads.body(id, what, body).await?.set(&mut item);
        Ok(item)
    }
}
