//! The execution's meta item: create, reads and index queries (`list`, `due`),
//! the final status, suspend, park and unpark, settle, and leases.

use crate::DynamoStore;
use crate::codec::*;
use crate::transactions::{TransactError, is_own_entry};
use crate::{shards, table};
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, TransactWriteItem, Update};
use cairn_core::store::*;
use cairn_core::{ExecutionId, Timestamp};

/// Every status, for a list that names none.
const ALL_STATUSES: [Status; 6] = [
    Status::Running,
    Status::Waiting,
    Status::Completed,
    Status::Failed,
    Status::Cancelled,
    Status::Parked,
];

impl DynamoStore {
    pub(crate) async fn create_execution(&self, new: NewExecution) -> Result<Created, StoreError> {
        let id = new.meta.id.clone();
        let body =
            String::from_utf8(cairn_core::entry::encode(&new.started)).expect("entries are JSON");
        self.check_size(&id, || "the input (journal entry 0)".into(), body.len())?;
        self.ensure_shards().await?;
        let mut meta = meta_item(&new.meta, self.index_shards);
        meta.insert("head".into(), s(body.as_str()));
        // This start's own mark: a put met by its own earlier attempt
        // (applied, its reply lost) is told from another start's.
        let token = ulid::Ulid::new().to_string();
        meta.insert("start_token".into(), s(token.as_str()));
        if body.len() <= self.payloads.threshold
            && item_bytes(&meta) <= crate::inline::HEAD_ITEM_BYTES
        {
            // Entry 0 in the meta (see `inline`): one conditional put.
            if let Some(existing) = self.put_meta(&id, &new.meta, meta, Some(&token)).await? {
                return existing;
            }
            return Ok(self.created(&new, true));
        }
        let entry0 = self
            .entry_item(
                &id,
                1,
                0,
                || "the input (journal entry 0)".into(),
                body.clone(),
            )
            .await?;
        // Entry 0, then the meta, each one conditional put: no
        // transaction (which costs twice the write units, the status
        // index's too). A load needs the meta, so an entry 0 alone is
        // no execution yet; a start stopped between the two is taken
        // over by the next start of the same workflow and input.
        use aws_sdk_dynamodb::operation::put_item::PutItemError;
        use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld;
        let r = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(entry0))
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(AllOld)
            .send()
            .await;
        let ours = match r {
            Ok(_) => true,
            Err(e) => match e.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(c)) => {
                    if let Some(existing) = self.get_meta(&id).await? {
                        // Started before (this very start again too).
                        return cairn_core::memory::check_same_start(&existing, &new.meta);
                    } else if is_own_entry(c.item.as_ref(), &body) {
                        true // our put, applied before its reply was lost
                    } else {
                        let mut found = c.item.clone().unwrap_or_default();
                        self.payloads
                            .resolve(&id, || "journal entry 0".into(), &mut found)
                            .await?;
                        let same = Some(&found)
                            .and_then(|i| entry_from_item(&id, 0, i).ok())
                            .is_some_and(|e| match e.event {
                                cairn_core::Event::Started {
                                    workflow, input, ..
                                } => {
                                    workflow == new.meta.workflow
                                        && cairn_core::input_hash(input.as_bytes())
                                            == new.meta.input_hash
                                }
                                _ => false,
                            });
                        if !same {
                            return Err(StoreError::Conflict {
                                id: id.clone(),
                                reason: "the execution's items exist without its meta (another start of this id, with another workflow or input, stopped before its meta): start it with that workflow and input".into(),
                            });
                        }
                        false // its entry 0 stands; the meta follows
                    }
                }
                _ => return Err(sdk_error(&self.table, e)),
            },
        };
        if let Some(existing) = self
            .put_meta(
                &id,
                &new.meta,
                meta_item(&new.meta, self.index_shards),
                None,
            )
            .await?
        {
            return existing;
        }
        Ok(self.created(&new, ours))
    }

    /// After a start's writes: the store knows the run, keeps the journal
    /// it wrote and the lease it took.
    fn created(&self, new: &NewExecution, ours: bool) -> Created {
        let id = &new.meta.id;
        self.note_run(id, 1); // entry 0 is run 1's
        if let Some(l) = &new.meta.lease {
            self.hold_lease(id, &l.owner);
        }
        if ours {
            self.journals.put(
                id,
                1,
                new.meta.created_at,
                std::slice::from_ref(&new.started),
            );
        }
        Created::New
    }

    /// Puts a new execution's meta, conditional on there being none.
    /// `Some`: there was one (not this very put, applied before its reply
    /// was lost: the same `token`, or without one, after this start's own
    /// entry 0, the same creation time, workflow and input): the start's
    /// answer.
    async fn put_meta(
        &self,
        id: &ExecutionId,
        new: &ExecutionMeta,
        item: Item,
        token: Option<&str>,
    ) -> Result<Option<Result<Created, StoreError>>, StoreError> {
        use aws_sdk_dynamodb::operation::put_item::PutItemError;
        use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld;
        let r = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(AllOld)
            .send()
            .await;
        match r {
            Ok(_) => Ok(None),
            Err(e) => match e.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(c)) => {
                    let found_token = c.item.as_ref().and_then(|i| get_s(i, "start_token"));
                    let found = c.item.clone().map(|i| meta_from_item(id, i)).transpose()?;
                    let mine = match token {
                        Some(t) => found_token.as_deref() == Some(t),
                        None => found.as_ref().is_some_and(|m| {
                            m.created_at == new.created_at
                                && m.workflow == new.workflow
                                && m.input_hash == new.input_hash
                        }),
                    };
                    if mine {
                        // Our meta, applied before its reply was lost.
                        return Ok(None);
                    }
                    let existing = match found {
                        Some(m) => m,
                        None => self
                            .get_meta(id)
                            .await?
                            .ok_or_else(|| StoreError::NotFound(id.clone()))?,
                    };
                    Ok(Some(cairn_core::memory::check_same_start(&existing, new)))
                }
                _ => Err(sdk_error(&self.table, e)),
            },
        }
    }

    pub(crate) async fn get_meta(
        &self,
        id: &ExecutionId,
    ) -> Result<Option<ExecutionMeta>, StoreError> {
        self.get_meta_item(id)
            .await?
            .map(|item| meta_from_item(id, item))
            .transpose()
    }

    /// The meta item as stored (one consistent read).
    pub(crate) async fn get_meta_item(&self, id: &ExecutionId) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(exec_pk(id)))
            .key("sk", s("meta"))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error(&self.table, e))?;
        Ok(out.item)
    }

    pub(crate) async fn read_meta(&self, id: &ExecutionId) -> Result<ExecutionMeta, StoreError> {
        self.get_meta(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(id.clone()))
    }

    /// Scatter-gather over `by-status-shard`: for each status asked and
    /// each shard any store wrote to, the newest first, at most `limit`
    /// (paged until the filter kept that many); merged newest first.
    pub(crate) async fn list_executions(
        &self,
        filter: ListFilter,
    ) -> Result<Vec<ExecutionMeta>, StoreError> {
        let statuses = if filter.status.is_empty() {
            ALL_STATUSES.to_vec()
        } else {
            filter.status.clone()
        };
        let limit = if filter.limit == 0 {
            usize::MAX
        } else {
            filter.limit
        };
        let shards = self.shards_to_read().await?;
        let keys: Vec<String> = statuses
            .iter()
            .flat_map(|st| (0..shards).map(move |k| shards::status_key(*st, k)))
            .collect();
        let mut values = Vec::new();
        if let Some(w) = &filter.workflow {
            values.push((":w", s(w)));
        }
        let q = shards::IndexQuery {
            index: table::STATUS_INDEX,
            key_attr: "status_shard",
            condition: "#k = :k",
            values,
            filter: filter.workflow.as_ref().map(|_| "workflow = :w"),
            forward: false,
        };
        let mut out = Vec::new();
        for item in self.scatter(q, keys, limit).await? {
            let pk = get_s(&item, "pk").unwrap_or_default();
            let Some(id) = pk
                .strip_prefix("exec#")
                .and_then(|i| ExecutionId::new(i).ok())
            else {
                continue;
            };
            // Listed metas lack what the index does not project: the
            // lease and the due time (see `table::STATUS_PROJECTION`).
            out.push(meta_from_item(&id, item)?);
        }
        out.sort_by(|a, b| {
            b.updated_at
                .cmp(&a.updated_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        out.truncate(limit);
        Ok(out)
    }

    /// Scatter-gather over `by-wake`: every shard any store wrote to, and
    /// contract 1's single key; due first, at most `limit` of each, merged.
    pub(crate) async fn due_executions(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<(ExecutionId, Timestamp)>, StoreError> {
        let shards = self.shards_to_read().await?;
        let keys: Vec<String> = std::iter::once(shards::LEGACY_WAKE_BUCKET.to_owned())
            .chain((0..shards).map(shards::wake_key))
            .collect();
        let q = shards::IndexQuery {
            index: "by-wake",
            key_attr: "wake_bucket",
            condition: "#k = :k AND wake_at <= :now",
            values: vec![(":now", n(now.as_millis().min(i64::MAX as u64)))],
            filter: None,
            forward: true,
        };
        let want = limit;
        let mut out = Vec::new();
        for item in self.scatter(q, keys, want).await? {
            let pk = get_s(&item, "pk").unwrap_or_default();
            let (Some(id), Some(at)) = (
                pk.strip_prefix("exec#")
                    .and_then(|i| ExecutionId::new(i).ok()),
                get_n(&item, "wake_at"),
            ) else {
                continue;
            };
            out.push((id, Timestamp::from_millis(at)));
        }
        if self.stale_scan_now() {
            out.extend(self.stale_starts(now, shards, &out).await?);
            self.stale_scan_done();
        }
        out.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        out.truncate(want);
        Ok(out)
    }

    /// Running executions with no due time whose driver stopped: a start
    /// takes its lease without entering the wake index (a short execution
    /// costs no wake-index write), so the sweep finds them through the
    /// status index instead: every `running#<shard>` key (what is running
    /// now, a small set), and for each execution not already due, its
    /// meta, due when its lease ran out (or, without a lease, the inbox
    /// grace after its last update). Not `skip`ped ones only.
    async fn stale_starts(
        &self,
        now: Timestamp,
        shards: u32,
        skip: &[(ExecutionId, Timestamp)],
    ) -> Result<Vec<(ExecutionId, Timestamp)>, StoreError> {
        let keys: Vec<String> = (0..shards)
            .map(|k| shards::status_key(Status::Running, k))
            .collect();
        let q = shards::IndexQuery {
            index: table::STATUS_INDEX,
            key_attr: "status_shard",
            condition: "#k = :k AND updated_at <= :now",
            values: vec![(":now", n(now.as_millis().min(i64::MAX as u64)))],
            filter: None,
            forward: true,
        };
        let skip: std::collections::HashSet<&ExecutionId> = skip.iter().map(|(id, _)| id).collect();
        let candidates: Vec<ExecutionId> = self
            .scatter(q, keys, usize::MAX)
            .await?
            .iter()
            .filter_map(|item| {
                get_s(item, "pk")?
                    .strip_prefix("exec#")
                    .and_then(|i| ExecutionId::new(i).ok())
            })
            .filter(|id| !skip.contains(id))
            .collect();
        // A driver without a lease (an operator's `cairn`) is given the
        // inbox grace before the sweep takes over.
        let grace = self
            .inbox_grace
            .unwrap_or(std::time::Duration::from_secs(60));
        let mut set = tokio::task::JoinSet::new();
        let mut out = Vec::new();
        let mut candidates = candidates.into_iter();
        loop {
            while set.len() < 16 {
                let Some(id) = candidates.next() else { break };
                let store = self.clone();
                set.spawn(async move {
                    let meta = store.get_meta(&id).await?;
                    Ok::<_, StoreError>(meta.and_then(|m| {
                        if m.status != Status::Running || m.due_at.is_some() {
                            return None; // moved on, or due through the wake index
                        }
                        let due = m.lease.map_or(m.updated_at.plus(grace), |l| l.until);
                        (due <= now).then_some((id, due))
                    }))
                });
            }
            match set.join_next().await {
                None => break,
                Some(Ok(r)) => out.extend(r?),
                Some(Err(e)) => {
                    return Err(StoreError::Unavailable(format!(
                        "a meta read did not finish: {e}"
                    )));
                }
            }
        }
        Ok(out)
    }

    /// The meta update of a final entry (`#st` is `status`): the status
    /// and its index key; the due time removed, or set to the hold (see
    /// `Append::hold_until_heard`), indexed like a wake; no timer, no
    /// lease.
    fn finish_expression(
        &self,
        id: &ExecutionId,
        status: Status,
        hold: Option<Timestamp>,
    ) -> (&'static str, Vec<(&'static str, AttributeValue)>) {
        let mut values = vec![
            (":st", s(status.as_str())),
            (":ss", self.status_key_of(id, status)),
        ];
        let expression = match hold {
            Some(t) => {
                values.push((":hold", n(t.as_millis())));
                values.push((":b", self.wake_key_of(id)));
                values.push((":none", n(0)));
                "SET #st = :st, status_shard = :ss, updated_at = :at, wake_at = :hold, wake_bucket = :b, timer_at = :none REMOVE waiting_on, lease_owner, lease_until"
            }
            None => {
                "SET #st = :st, status_shard = :ss, updated_at = :at REMOVE wake_at, wake_bucket, timer_at, waiting_on, lease_owner, lease_until"
            }
        };
        (expression, values)
    }

    /// [`DynamoStore::finish_expression`] on a transaction's update.
    pub(crate) fn finish_update(
        &self,
        mut update: aws_sdk_dynamodb::types::builders::UpdateBuilder,
        id: &ExecutionId,
        status: Status,
        hold: Option<Timestamp>,
    ) -> aws_sdk_dynamodb::types::builders::UpdateBuilder {
        let (expression, values) = self.finish_expression(id, status, hold);
        update = update.update_expression(expression);
        for (k, v) in values {
            update = update.expression_attribute_values(k, v);
        }
        update
    }

    /// The meta's final update: status, index keys and hold (see
    /// [`DynamoStore::finish_expression`]), conditional on the run and on
    /// the status not being final yet; with `inline` (the lease owner, the
    /// tail and its first index, see [`crate::inline`]), also writing the
    /// tail, on the lease still being that owner's.
    fn finish_request(
        &self,
        id: &ExecutionId,
        run: u32,
        status: Status,
        at: Timestamp,
        hold: Option<Timestamp>,
        inline: Option<(&str, AttributeValue, u32)>,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        let (expression, values) = self.finish_expression(id, status, hold);
        let expression = match inline {
            Some(_) => expression.replacen("SET ", "SET tail = :tail, tail_from = :from, ", 1),
            None => expression.to_owned(),
        };
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(exec_pk(id)))
            .key("sk", s("meta"))
            .update_expression(expression)
            .expression_attribute_names("#st", "status")
            .expression_attribute_names("#run", "run")
            .expression_attribute_values(":at", n(at.as_millis()))
            .expression_attribute_values(":run", n(u64::from(run)))
            .expression_attribute_values(":c", s("completed"))
            .expression_attribute_values(":f", s("failed"))
            .expression_attribute_values(":x", s("cancelled"));
        for (k, v) in values {
            update = update.expression_attribute_values(k, v);
        }
        match inline {
            Some((owner, tail, from)) => update
                .expression_attribute_values(":o", s(owner))
                .expression_attribute_values(":tail", tail)
                .expression_attribute_values(":from", n(u64::from(from)))
                .condition_expression(
                    "attribute_exists(pk) AND #run = :run AND NOT (#st IN (:c, :f, :x)) AND lease_owner = :o",
                ),
            None => update.condition_expression(
                "attribute_exists(pk) AND #run = :run AND NOT (#st IN (:c, :f, :x))",
            ),
        }
    }

    /// Sets the meta's final `status` after run `run`'s final entry was
    /// written: one conditional update (the run is `run`, the status not
    /// final yet). Already final with `status`: done before (a retry, or a
    /// load that finished it).
    pub(crate) async fn finish_meta(
        &self,
        id: &ExecutionId,
        run: u32,
        status: Status,
        at: Timestamp,
        hold: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        self.ensure_shards().await?;
        let r = self
            .finish_request(id, run, status, at, hold, None)
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                match self.get_meta(id).await? {
                    Some(m) if m.status == status && m.run == run => Ok(()),
                    None => Err(StoreError::NotFound(id.clone())),
                    Some(m) => Err(StoreError::Conflict {
                        id: id.clone(),
                        reason: format!(
                            "cannot finish run {run} as {status}: the execution is {} in run {}",
                            m.status, m.run
                        ),
                    }),
                }
            }
            Err(e) => Err(sdk_error(&self.table, e)),
        }
    }

    /// The final entry of run `append.run`, after the entries from index
    /// `from` the driver held back, written inline in the meta (see
    /// [`crate::inline`]) with the final status: one update, conditional
    /// on the run, on the status not being final yet and on the lease
    /// still being `owner`'s.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn finish_inline(
        &self,
        id: &ExecutionId,
        owner: &str,
        append: &Append,
        status: Status,
        from: u32,
        tail: AttributeValue,
        bodies: Vec<String>,
    ) -> Result<(), StoreError> {
        self.ensure_shards().await?;
        let update = self
            .finish_request(
                id,
                append.run,
                status,
                append.entry.at,
                append.hold_until_heard,
                Some((owner, tail, from)),
            )
            .return_values_on_condition_check_failure(
                aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld,
            );
        let r = update.send().await;
        let found = match r {
            Ok(_) => {
                self.forget_lease(id); // the finish removed it
                return Ok(());
            }
            Err(e) => match e.as_service_error() {
                Some(
                    aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(c),
                ) => c.item.clone(),
                _ => return Err(sdk_error(&self.table, e)),
            },
        };
        self.forget_lease(id);
        let Some(found) = found else {
            return Err(StoreError::NotFound(id.clone()));
        };
        // Our own update, applied before its reply was lost: the tail it
        // wrote is there.
        let own = match found.get("tail") {
            Some(AttributeValue::L(held)) => {
                get_n(&found, "tail_from") == Some(u64::from(from))
                    && held.len() == bodies.len()
                    && held
                        .iter()
                        .zip(&bodies)
                        .all(|(h, b)| h.as_s().is_ok_and(|h| h == b))
            }
            _ => false,
        };
        if own {
            return Ok(());
        }
        let meta = meta_from_item(id, found)?;
        let reason = if meta.status.is_terminal() {
            format!(
                "cannot finish run {} as {status}: the execution has already {}",
                append.run, meta.status
            )
        } else if meta.run != append.run {
            format!(
                "cannot finish run {}: the execution is in run {}",
                append.run, meta.run
            )
        } else {
            format!(
                "the lease of {owner} was lost (held now by {})",
                meta.lease.as_ref().map_or("nobody", |l| l.owner.as_str())
            )
        };
        Err(StoreError::Conflict {
            id: id.clone(),
            reason,
        })
    }

    /// The owner of `id`'s lease if this store holds it.
    pub(crate) fn held_lease(&self, id: &ExecutionId) -> Option<String> {
        self.held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    fn hold_lease(&self, id: &ExecutionId, owner: &str) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        // Leases not released (a crashed advance) go with the map's growth.
        if held.len() >= 10_000 && !held.contains_key(id) {
            held.clear();
        }
        held.insert(id.clone(), owner.to_owned());
    }

    pub(crate) fn forget_lease(&self, id: &ExecutionId) {
        self.held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }

    pub(crate) async fn suspend_execution(
        &self,
        id: &ExecutionId,
        sus: Suspend,
    ) -> Result<(), StoreError> {
        self.ensure_shards().await?;
        let mut update = Update::builder()
            .table_name(&self.table)
            .key("pk", s(exec_pk(id)))
            .key("sk", s("meta"))
            .condition_expression(
                "inbox_version = :v AND #run = :run AND (#st = :running OR #st = :waiting)",
            )
            .expression_attribute_names("#st", "status")
            .expression_attribute_names("#run", "run")
            .expression_attribute_values(":run", n(u64::from(sus.run)))
            .expression_attribute_values(":v", n(sus.inbox_version))
            .expression_attribute_values(":running", s("running"))
            .expression_attribute_values(":waiting", s("waiting"))
            .expression_attribute_values(":on", s(&sus.waiting_on))
            .expression_attribute_values(":at", n(sus.at.as_millis()))
            .expression_attribute_values(":ss", self.status_key_of(id, Status::Waiting));
        update = match sus.wake_at {
            Some(t) => update
                .update_expression("SET #st = :waiting, status_shard = :ss, waiting_on = :on, updated_at = :at, wake_at = :wake, timer_at = :wake, wake_bucket = :b REMOVE lease_owner, lease_until")
                .expression_attribute_values(":wake", n(t.as_millis()))
                .expression_attribute_values(":b", self.wake_key_of(id)),
            None => update.update_expression("SET #st = :waiting, status_shard = :ss, waiting_on = :on, updated_at = :at, timer_at = :none REMOVE wake_at, wake_bucket, lease_owner, lease_until").expression_attribute_values(":none", n(0)),
        };
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .key("pk", s(exec_pk(id)))
            .key("sk", s(entry_sk(sus.run, sus.journal_len)))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .expect("condition check has table, key and expression");
        let items = vec![
            TransactWriteItem::builder()
                .update(
                    update
                        .build()
                        .expect("update has table, key and expression"),
                )
                .build(),
            TransactWriteItem::builder().condition_check(check).build(),
        ];
        match self.transact(items).await {
            Ok(()) => Ok(()),
            Err(TransactError::Cancelled(reasons, _)) => {
                let reason = if reasons.get(1).map(String::as_str) == Some("ConditionalCheckFailed")
                {
                    "the journal grew since it was loaded"
                } else {
                    "the inbox changed since it was loaded, or the execution is no longer running"
                };
                match self.explain(id, reason).await {
                    StoreError::Finished { status, .. } => Err(StoreError::Conflict {
                        id: id.clone(),
                        reason: format!("the execution is {status}"),
                    }),
                    e => Err(e),
                }
            }
            Err(TransactError::Other(e)) => Err(e),
        }
    }

    pub(crate) async fn park_execution(
        &self,
        id: &ExecutionId,
        info: ParkInfo,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        self.ensure_shards().await?;
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(exec_pk(id)))
            .key("sk", s("meta"))
            .expression_attribute_values(":ss", self.status_key_of(id, Status::Parked))
            .update_expression("SET #st = :parked, status_shard = :ss, parked = :info, updated_at = :at REMOVE wake_at, wake_bucket, timer_at, lease_owner, lease_until")
            .condition_expression("attribute_exists(pk) AND NOT (#st IN (:c, :f, :x))")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":parked", s("parked"))
            .expression_attribute_values(":info", s(serde_json::to_string(&info).expect("park info serializes")))
            .expression_attribute_values(":at", n(at.as_millis()))
            .expression_attribute_values(":c", s("completed"))
            .expression_attribute_values(":f", s("failed"))
            .expression_attribute_values(":x", s("cancelled"))
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Err(self.explain(id, "cannot park").await)
            }
            Err(e) => Err(sdk_error(&self.table, e)),
        }
    }

    pub(crate) async fn unpark_execution(&self, id: &ExecutionId) -> Result<(), StoreError> {
        self.ensure_shards().await?;
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(exec_pk(id)))
            .key("sk", s("meta"))
            .expression_attribute_values(":ss", self.status_key_of(id, Status::Running))
            .update_expression("SET #st = :running, status_shard = :ss REMOVE parked")
            .condition_expression("#st = :parked")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":running", s("running"))
            .expression_attribute_values(":parked", s("parked"))
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                // Not parked: fine, unless it does not exist.
                self.get_meta(id)
                    .await?
                    .map(|_| ())
                    .ok_or_else(|| StoreError::NotFound(id.clone()))
            }
            Err(e) => Err(sdk_error(&self.table, e)),
        }
    }

    pub(crate) async fn settle_execution(&self, id: &ExecutionId) -> Result<(), StoreError> {
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(exec_pk(id)))
            .key("sk", s("meta"))
            .update_expression("REMOVE wake_at, wake_bucket")
            .condition_expression("attribute_exists(wake_at) AND #st IN (:c, :f, :x)")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":c", s("completed"))
            .expression_attribute_values(":f", s("failed"))
            .expression_attribute_values(":x", s("cancelled"))
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            // Not holding (settled before, or not finished): nothing to
            // do, unless there is no such execution.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                match self.get_meta(id).await? {
                    Some(_) => Ok(()),
                    None => Err(StoreError::NotFound(id.clone())),
                }
            }
            Err(e) => Err(sdk_error(&self.table, e)),
        }
    }

    /// One conditional update of the meta's lease (acquire or renew).
    pub(crate) async fn set_lease(
        &self,
        id: &ExecutionId,
        owner: &str,
        until: Timestamp,
        now: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        self.ensure_shards().await?;
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(exec_pk(id)))
            .key("sk", s("meta"))
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":o", s(owner))
            .expression_attribute_values(":u", n(until.as_millis()))
            .expression_attribute_values(":c", s("completed"))
            .expression_attribute_values(":f", s("failed"))
            .expression_attribute_values(":x", s("cancelled"))
            .return_values_on_condition_check_failure(
                aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld,
            )
            // The meta as written (no read units: the write reads it
            // anyway): its run bounds the load that follows.
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew);
        update = match now {
            // Acquire: free, expired, or ours. The due time stays: a
            // running execution without one is found by `due` through the
            // status index, and another is due at its wake already (a
            // sweep meeting the lease held stands back). So a short
            // execution never enters the wake index.
            Some(now) => update
                .update_expression("SET lease_owner = :o, lease_until = :u")
                .condition_expression("attribute_exists(pk) AND NOT (#st IN (:c, :f, :x)) AND (attribute_not_exists(lease_owner) OR lease_owner = :o OR lease_until <= :now)")
                .expression_attribute_values(":now", n(now.as_millis())),
            // Renew: still ours; due at the new expiry (a driver that
            // stops renewing is found by the sweep then).
            None => update
                .update_expression(
                    "SET lease_owner = :o, lease_until = :u, wake_at = :u, wake_bucket = :b",
                )
                .expression_attribute_values(":b", self.wake_key_of(id))
                .condition_expression(
                "attribute_exists(pk) AND NOT (#st IN (:c, :f, :x)) AND lease_owner = :o",
            ),
        };
        match update.send().await {
            Ok(out) => {
                if let Some(run) = out.attributes.as_ref().and_then(|a| get_n(a, "run")) {
                    self.note_run(id, run as u32);
                }
                self.hold_lease(id, owner);
                Ok(())
            }
            Err(e) => {
                self.forget_lease(id);
                let old = e
                    .as_service_error()
                    .and_then(|s| match s {
                        aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(c) => Some(c.item.clone()),
                        _ => None,
                    });
                let Some(old) = old else {
                    return Err(sdk_error(&self.table, e));
                };
                let Some(old) = old else {
                    return Err(StoreError::NotFound(id.clone()));
                };
                let meta = meta_from_item(id, old)?;
                if meta.status.is_terminal() {
                    return Err(StoreError::Finished {
                        id: id.clone(),
                        status: meta.status,
                    });
                }
                match (now, meta.lease) {
                    (Some(_), Some(l)) => Err(StoreError::Leased {
                        id: id.clone(),
                        owner: l.owner,
                        until: l.until,
                    }),
                    (_, l) => Err(StoreError::Conflict {
                        id: id.clone(),
                        reason: format!(
                            "the lease of {owner} was lost (held now by {})",
                            l.as_ref().map_or("nobody", |l| l.owner.as_str())
                        ),
                    }),
                }
            }
        }
    }

    pub(crate) async fn clear_lease(
        &self,
        id: &ExecutionId,
        owner: &str,
        wake_at: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        self.forget_lease(id);
        if wake_at.is_some() {
            self.ensure_shards().await?;
        }
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(exec_pk(id)))
            .key("sk", s("meta"))
            .condition_expression("lease_owner = :o")
            .expression_attribute_values(":o", s(owner));
        update = match wake_at {
            Some(t) => update
                .update_expression(
                    "SET wake_at = :w, wake_bucket = :b REMOVE lease_owner, lease_until",
                )
                .expression_attribute_values(":w", n(t.as_millis()))
                .expression_attribute_values(":b", self.wake_key_of(id)),
            None => update.update_expression("REMOVE lease_owner, lease_until"),
        };
        match update.send().await {
            Ok(_) => Ok(()),
            // Not ours (any more): nothing to release.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(sdk_error(&self.table, e)),
        }
    }
}
