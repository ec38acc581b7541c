//! [`MemoryStore`]: a [`Store`] in a mutex, for tests and examples.

use crate::store::*;
use crate::{ComponentHash, Entry, ExecutionId, Timestamp};
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Debug, Clone)]
struct Record {
    meta: ExecutionMeta,
    /// One journal per run; the last is the current one.
    runs: Vec<Vec<Entry>>,
    inbox: Vec<InboxItem>,
    /// Ids of consumed inbox items (so a keyed delivery stays once).
    consumed: std::collections::HashSet<String>,
}

impl Record {
    fn journal(&mut self) -> &mut Vec<Entry> {
        self.runs.last_mut().expect("an execution has a run")
    }
}

#[derive(Debug, Default)]
struct Inner {
    executions: HashMap<ExecutionId, Record>,
    components: HashMap<ComponentHash, Vec<u8>>,
    workflows: HashMap<String, ComponentHash>,
    next_inbox_id: u64,
}

/// An in-memory store. Keeps the full [`Store`] contract (it passes the
/// shared suite), loses everything when dropped.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Inner) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut inner)
    }
}

fn record<'a>(inner: &'a mut Inner, id: &ExecutionId) -> Result<&'a mut Record, StoreError> {
    inner
        .executions
        .get_mut(id)
        .ok_or_else(|| StoreError::NotFound(id.clone()))
}

fn not_finished(r: &Record) -> Result<(), StoreError> {
    if r.meta.status.is_terminal() {
        return Err(StoreError::Finished {
            id: r.meta.id.clone(),
            status: r.meta.status,
        });
    }
    Ok(())
}

/// The idempotent-start rule shared by stores: same workflow and input is
/// the same execution.
pub fn check_same_start(
    existing: &ExecutionMeta,
    new: &ExecutionMeta,
) -> Result<Created, StoreError> {
    if existing.workflow != new.workflow {
        return Err(StoreError::Exists {
            id: new.id.clone(),
            what: format!(
                "workflow '{}' (asked: '{}')",
                existing.workflow, new.workflow
            ),
        });
    }
    if existing.input_hash != new.input_hash {
        return Err(StoreError::Exists {
            id: new.id.clone(),
            what: "a different input".into(),
        });
    }
    Ok(Created::Existing(Box::new(existing.clone())))
}

impl Store for MemoryStore {
    fn create(&self, new: NewExecution) -> StoreFuture<'_, Created> {
        let r = self.with(|inner| {
            if let Some(existing) = inner.executions.get(&new.meta.id) {
                return check_same_start(&existing.meta, &new.meta);
            }
            inner.executions.insert(
                new.meta.id.clone(),
                Record {
                    meta: new.meta,
                    runs: vec![vec![new.started]],
                    inbox: Vec::new(),
                    consumed: Default::default(),
                },
            );
            Ok(Created::New)
        });
        Box::pin(std::future::ready(r))
    }

    fn load<'a>(&'a self, id: &'a ExecutionId) -> StoreFuture<'a, Execution> {
        let r = self.with(|inner| {
            let r = record(inner, id)?;
            Ok(Execution {
                meta: r.meta.clone(),
                journal: r.journal().clone(),
                inbox: r.inbox.clone(),
            })
        });
        Box::pin(std::future::ready(r))
    }

    fn meta<'a>(&'a self, id: &'a ExecutionId) -> StoreFuture<'a, ExecutionMeta> {
        let r = self.with(|inner| Ok(record(inner, id)?.meta.clone()));
        Box::pin(std::future::ready(r))
    }

    fn append<'a>(&'a self, id: &'a ExecutionId, append: Append) -> StoreFuture<'a, ()> {
        let r = self.with(|inner| {
            let r = record(inner, id)?;
            not_finished(r)?;
            if append.run != r.meta.run || append.entry.index as usize != r.journal().len() {
                return Err(StoreError::Conflict {
                    id: id.clone(),
                    reason: format!("journal entry {} already exists", append.entry.index),
                });
            }
            if let Some(item) = &append.consume {
                let Some(pos) = r.inbox.iter().position(|i| &i.id == item) else {
                    return Err(StoreError::Conflict {
                        id: id.clone(),
                        reason: format!("inbox item {item} was already consumed"),
                    });
                };
                let item = r.inbox.remove(pos);
                r.consumed.insert(item.id);
            }
            if let Some(status) = append.entry.event.final_status() {
                r.meta.status = status;
                r.meta.wake_at = None;
                r.meta.due_at = append.hold_until_heard;
                r.meta.waiting_on = None;
                r.meta.lease = None;
                r.meta.updated_at = append.entry.at;
            }
            r.journal().push(append.entry);
            Ok(())
        });
        Box::pin(std::future::ready(r))
    }

    fn suspend<'a>(&'a self, id: &'a ExecutionId, s: Suspend) -> StoreFuture<'a, ()> {
        let r = self.with(|inner| {
            let r = record(inner, id)?;
            if r.meta.status.is_terminal() || r.meta.status == Status::Parked {
                return Err(StoreError::Conflict {
                    id: id.clone(),
                    reason: format!("execution is {}", r.meta.status),
                });
            }
            if s.run != r.meta.run || r.journal().len() != s.journal_len as usize {
                return Err(StoreError::Conflict {
                    id: id.clone(),
                    reason: "the journal grew since it was loaded".into(),
                });
            }
            if r.meta.inbox_version != s.inbox_version {
                return Err(StoreError::Conflict {
                    id: id.clone(),
                    reason: "the inbox changed since it was loaded".into(),
                });
            }
            r.meta.status = Status::Waiting;
            r.meta.wake_at = s.wake_at;
            r.meta.due_at = s.wake_at;
            r.meta.lease = None;
            r.meta.waiting_on = Some(s.waiting_on);
            r.meta.updated_at = s.at;
            Ok(())
        });
        Box::pin(std::future::ready(r))
    }

    fn park<'a>(
        &'a self,
        id: &'a ExecutionId,
        info: ParkInfo,
        at: Timestamp,
    ) -> StoreFuture<'a, ()> {
        let r = self.with(|inner| {
            let r = record(inner, id)?;
            not_finished(r)?;
            r.meta.status = Status::Parked;
            r.meta.parked = Some(info);
            r.meta.wake_at = None;
            r.meta.due_at = None;
            r.meta.lease = None;
            r.meta.updated_at = at;
            Ok(())
        });
        Box::pin(std::future::ready(r))
    }

    fn unpark<'a>(&'a self, id: &'a ExecutionId) -> StoreFuture<'a, ()> {
        let r = self.with(|inner| {
            let r = record(inner, id)?;
            if r.meta.status == Status::Parked {
                r.meta.status = Status::Running;
                r.meta.parked = None;
            }
            Ok(())
        });
        Box::pin(std::future::ready(r))
    }

    fn deliver<'a>(
        &'a self,
        id: &'a ExecutionId,
        message: InboxMessage,
        at: Timestamp,
    ) -> StoreFuture<'a, InboxItem> {
        let r = self.with(|inner| {
            inner.next_inbox_id += 1;
            let item_id = format!("{:026}", inner.next_inbox_id);
            let r = record(inner, id)?;
            not_finished(r)?;
            let item = InboxItem {
                id: item_id,
                at,
                message,
            };
            r.inbox.push(item.clone());
            r.meta.inbox_version += 1;
            r.meta.updated_at = at;
            Ok(item)
        });
        Box::pin(std::future::ready(r))
    }

    fn continue_as_new<'a>(&'a self, id: &'a ExecutionId, c: ContinueAsNew) -> StoreFuture<'a, ()> {
        let r = self.with(|inner| {
            let r = record(inner, id)?;
            not_finished(r)?;
            if r.meta.run != c.run || r.journal().len() != c.closing.index as usize {
                return Err(StoreError::Conflict {
                    id: id.clone(),
                    reason: format!("run {} has moved on", c.run),
                });
            }
            r.journal().push(c.closing);
            r.runs.push(vec![c.next.clone()]);
            r.meta.run = c.run + 1;
            r.meta.status = Status::Running;
            // A held lease keeps its expiry as the due time (the sweep's net).
            r.meta.wake_at = None;
            r.meta.due_at = r.meta.lease.as_ref().map(|l| l.until);
            r.meta.waiting_on = None;
            r.meta.updated_at = c.next.at;
            Ok(())
        });
        Box::pin(std::future::ready(r))
    }

    fn load_run<'a>(&'a self, id: &'a ExecutionId, run: u32) -> StoreFuture<'a, Vec<Entry>> {
        let r = self.with(|inner| {
            let r = record(inner, id)?;
            Ok(r.runs
                .get((run as usize).wrapping_sub(1))
                .cloned()
                .unwrap_or_default())
        });
        Box::pin(std::future::ready(r))
    }

    fn deliver_once<'a>(
        &'a self,
        id: &'a ExecutionId,
        key: &'a str,
        message: InboxMessage,
        at: Timestamp,
    ) -> StoreFuture<'a, Option<InboxItem>> {
        let r = self.with(|inner| {
            let r = record(inner, id)?;
            not_finished(r)?;
            if r.consumed.contains(key) || r.inbox.iter().any(|i| i.id == key) {
                return Ok(None);
            }
            let item = InboxItem {
                id: key.to_string(),
                at,
                message,
            };
            r.inbox.push(item.clone());
            r.meta.inbox_version += 1;
            r.meta.updated_at = at;
            Ok(Some(item))
        });
        Box::pin(std::future::ready(r))
    }

    fn list(&self, filter: ListFilter) -> StoreFuture<'_, Vec<ExecutionMeta>> {
        let r = self.with(|inner| {
            let mut out: Vec<_> = inner
                .executions
                .values()
                .map(|r| r.meta.clone())
                .filter(|m| filter.status.is_empty() || filter.status.contains(&m.status))
                .filter(|m| filter.workflow.as_ref().is_none_or(|w| &m.workflow == w))
                .collect();
            out.sort_by(|a, b| {
                b.updated_at
                    .cmp(&a.updated_at)
                    .then_with(|| a.id.cmp(&b.id))
            });
            out.truncate(if filter.limit == 0 {
                usize::MAX
            } else {
                filter.limit
            });
            Ok(out)
        });
        Box::pin(std::future::ready(r))
    }

    fn settle<'a>(&'a self, id: &'a ExecutionId) -> StoreFuture<'a, ()> {
        let r = self.with(|inner| {
            let r = record(inner, id)?;
            if r.meta.status.is_terminal() {
                r.meta.due_at = None;
            }
            Ok(())
        });
        Box::pin(std::future::ready(r))
    }

    fn due(&self, now: Timestamp, limit: usize) -> StoreFuture<'_, Vec<(ExecutionId, Timestamp)>> {
        let r = self.with(|inner| {
            let mut out: Vec<_> = inner
                .executions
                .values()
                // A finished execution is due only while it holds (see
                // `Append::hold_until_heard`).
                .filter(|r| r.meta.status != Status::Parked)
                .filter_map(|r| {
                    r.meta
                        .due_at
                        .filter(|w| *w <= now)
                        .map(|w| (r.meta.id.clone(), w))
                })
                .collect();
            out.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
            out.truncate(limit);
            Ok(out)
        });
        Box::pin(std::future::ready(r))
    }

    fn put_component<'a>(
        &'a self,
        hash: &'a ComponentHash,
        bytes: &'a [u8],
    ) -> StoreFuture<'a, ()> {
        let r = self.with(|inner| {
            inner
                .components
                .entry(hash.clone())
                .or_insert_with(|| bytes.to_vec());
            Ok(())
        });
        Box::pin(std::future::ready(r))
    }

    fn get_component<'a>(&'a self, hash: &'a ComponentHash) -> StoreFuture<'a, Option<Vec<u8>>> {
        let r = self.with(|inner| Ok(inner.components.get(hash).cloned()));
        Box::pin(std::future::ready(r))
    }

    fn set_workflow_component<'a>(
        &'a self,
        name: &'a str,
        hash: &'a ComponentHash,
    ) -> StoreFuture<'a, ()> {
        let r = self.with(|inner| {
            inner.workflows.insert(name.to_owned(), hash.clone());
            Ok(())
        });
        Box::pin(std::future::ready(r))
    }

    fn workflow_component<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<ComponentHash>> {
        let r = self.with(|inner| Ok(inner.workflows.get(name).cloned()));
        Box::pin(std::future::ready(r))
    }

    fn list_components(&self) -> StoreFuture<'_, Vec<(ComponentHash, u64)>> {
        let r = self.with(|inner| {
            let mut out: Vec<_> = inner
                .components
                .iter()
                .map(|(h, b)| (h.clone(), b.len() as u64))
                .collect();
            out.sort();
            Ok(out)
        });
        Box::pin(std::future::ready(r))
    }

    fn list_workflows(&self) -> StoreFuture<'_, Vec<(String, ComponentHash)>> {
        let r = self.with(|inner| {
            let mut out: Vec<_> = inner
                .workflows
                .iter()
                .map(|(n, h)| (n.clone(), h.clone()))
                .collect();
            out.sort();
            Ok(out)
        });
        Box::pin(std::future::ready(r))
    }

    fn delete_component<'a>(&'a self, hash: &'a ComponentHash) -> StoreFuture<'a, bool> {
        let r = self.with(|inner| Ok(inner.components.remove(hash).is_some()));
        Box::pin(std::future::ready(r))
    }

    fn acquire_lease<'a>(
        &'a self,
        id: &'a ExecutionId,
        owner: &'a str,
        until: Timestamp,
        now: Timestamp,
    ) -> StoreFuture<'a, ()> {
        let r = self.with(|inner| {
            let r = record(inner, id)?;
            not_finished(r)?;
            if let Some(l) = &r.meta.lease
                && l.owner != owner
                && l.until > now
            {
                return Err(StoreError::Leased {
                    id: id.clone(),
                    owner: l.owner.clone(),
                    until: l.until,
                });
            }
            r.meta.lease = Some(Lease {
                owner: owner.to_string(),
                until,
            });
            // Due when there is work (kept), or else when the lease ends.
            r.meta.due_at.get_or_insert(until);
            Ok(())
        });
        Box::pin(std::future::ready(r))
    }

    fn renew_lease<'a>(
        &'a self,
        id: &'a ExecutionId,
        owner: &'a str,
        until: Timestamp,
    ) -> StoreFuture<'a, ()> {
        let r = self.with(|inner| {
            let r = record(inner, id)?;
            match &mut r.meta.lease {
                Some(l) if l.owner == owner => {
                    l.until = until;
                    r.meta.due_at = Some(until);
                    Ok(())
                }
                other => Err(StoreError::Conflict {
                    id: id.clone(),
                    reason: format!(
                        "the lease of {owner} was lost (held now by {})",
                        other.as_ref().map_or("nobody", |l| l.owner.as_str())
                    ),
                }),
            }
        });
        Box::pin(std::future::ready(r))
    }

    fn release_lease<'a>(
        &'a self,
        id: &'a ExecutionId,
        owner: &'a str,
        wake_at: Option<Timestamp>,
    ) -> StoreFuture<'a, ()> {
        let r = self.with(|inner| {
            let r = record(inner, id)?;
            if r.meta.lease.as_ref().is_some_and(|l| l.owner == owner) {
                r.meta.lease = None;
                if wake_at.is_some() {
                    r.meta.due_at = wake_at;
                }
            }
            Ok(())
        });
        Box::pin(std::future::ready(r))
    }
}

#[cfg(test)]
mod tests {
    crate::store_suite_tests!(crate::store_suite::block_on, async {
        ((), super::MemoryStore::new())
    });
    crate::store_suite_tests!(leases: crate::store_suite::block_on, async {
        ((), super::MemoryStore::new())
    });
}
