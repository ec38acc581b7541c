//! The writer thread: every write, grouped into shared commits.

use crate::{Stats, read_meta, sql_err};
use cairn_core::memory::check_same_start;
use cairn_core::store::*;
use cairn_core::{ComponentHash, ExecutionId, Timestamp};
use rusqlite::{Connection, params};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, Sender};

/// Writes taken per commit at most.
const MAX_GROUP: usize = 256;

pub(crate) enum Op {
    Create {
        meta: ExecutionMeta,
        started: Vec<u8>,
    },
    Append {
        run: u32,
        index: u32,
        at: Timestamp,
        body: Vec<u8>,
        consume: Option<String>,
        finish: Option<Status>,
        /// A child's final entry: due at this time until settled.
        hold: Option<Timestamp>,
    },
    Suspend(Suspend),
    Park {
        info: ParkInfo,
        at: Timestamp,
    },
    Unpark,
    /// Clears a finished execution's hold.
    Settle,
    /// An inbox insert: under `key` at most once (a keyed delivery), or
    /// under a fresh ULID.
    Deliver {
        key: Option<String>,
        message: InboxMessage,
        body: Vec<u8>,
        at: Timestamp,
    },
    ContinueAsNew {
        run: u32,
        closing_index: u32,
        closing: Vec<u8>,
        next: Vec<u8>,
        at: Timestamp,
    },
    PutComponent {
        hash: ComponentHash,
        bytes: Vec<u8>,
    },
    SetWorkflow {
        name: String,
        hash: ComponentHash,
    },
    /// Removes a component's bytes (`cairn components gc`).
    DeleteComponent {
        hash: ComponentHash,
    },
}

pub(crate) enum Reply {
    Done,
    Created(Created),
    /// `None`: a keyed delivery that had already happened.
    Delivered(Option<InboxItem>),
    /// Whether the row removed existed.
    Deleted(bool),
}

pub(crate) struct Job {
    pub id: Option<ExecutionId>,
    pub op: Op,
    pub reply: tokio::sync::oneshot::Sender<Result<Reply, StoreError>>,
}

pub(crate) fn spawn(
    conn: Connection,
    path: PathBuf,
    stats: Arc<Stats>,
) -> Result<Sender<Job>, StoreError> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("cairn-sqlite-writer".into())
        .spawn(move || run(conn, path, rx, stats))
        .map_err(|e| {
            StoreError::Unavailable(format!("cannot start the SQLite writer thread: {e}"))
        })?;
    Ok(tx)
}

fn run(mut conn: Connection, path: PathBuf, rx: Receiver<Job>, stats: Arc<Stats>) {
    let mut ulids = ulid::Generator::new();
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let mut results = Vec::with_capacity(group.len());
        let committed = (|| -> Result<(), StoreError> {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(sql_err(&path))?;
            for job in &group {
                tx.execute_batch("SAVEPOINT op").map_err(sql_err(&path))?;
                let r = apply(&tx, &path, job.id.as_ref(), &job.op, &mut ulids);
                if r.is_err() {
                    tx.execute_batch("ROLLBACK TO op").map_err(sql_err(&path))?;
                }
                tx.execute_batch("RELEASE op").map_err(sql_err(&path))?;
                results.push(r);
            }
            tx.commit().map_err(sql_err(&path))
        })();
        stats.commits.fetch_add(1, Ordering::Relaxed);
        stats
            .writes
            .fetch_add(group.len() as u64, Ordering::Relaxed);
        match committed {
            Ok(()) => {
                for (job, r) in group.into_iter().zip(results) {
                    let _ = job.reply.send(r);
                }
            }
            Err(e) => {
                tracing::error!(path = %path.display(), "commit failed: {e}");
                for job in group {
                    let _ = job.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

fn not_found(id: &ExecutionId) -> StoreError {
    StoreError::NotFound(id.clone())
}

fn conflict(id: &ExecutionId, reason: impl Into<String>) -> StoreError {
    StoreError::Conflict {
        id: id.clone(),
        reason: reason.into(),
    }
}

/// (status, journal_len, inbox_version, run) of `id`.
fn state(
    tx: &Connection,
    path: &std::path::Path,
    id: &ExecutionId,
) -> Result<(Status, u32, u64, u32), StoreError> {
    let row: Option<(String, i64, i64, i64)> = {
        let mut stmt = tx
            .prepare_cached(
                "SELECT status, journal_len, inbox_version, run FROM meta WHERE id = ?1",
            )
            .map_err(sql_err(path))?;
        let mut rows = stmt.query(params![id.as_str()]).map_err(sql_err(path))?;
        match rows.next().map_err(sql_err(path))? {
            Some(r) => Some((
                r.get(0).map_err(sql_err(path))?,
                r.get(1).map_err(sql_err(path))?,
                r.get(2).map_err(sql_err(path))?,
                r.get(3).map_err(sql_err(path))?,
            )),
            None => None,
        }
    };
    let (status, len, version, run) = row.ok_or_else(|| not_found(id))?;
    let status = Status::parse(&status).ok_or_else(|| StoreError::Corrupt {
        id: id.clone(),
        reason: format!("unknown status {status:?}"),
    })?;
    Ok((status, len as u32, version as u64, run as u32))
}

fn apply(
    tx: &Connection,
    path: &std::path::Path,
    id: Option<&ExecutionId>,
    op: &Op,
    ulids: &mut ulid::Generator,
) -> Result<Reply, StoreError> {
    let e = sql_err(path);
    match op {
        Op::PutComponent { hash, bytes } => {
            tx.execute(
                "INSERT OR IGNORE INTO components (hash, bytes) VALUES (?1, ?2)",
                params![hash.as_str(), bytes],
            )
            .map_err(e)?;
            Ok(Reply::Done)
        }
        Op::SetWorkflow { name, hash } => {
            tx.execute(
                "INSERT OR REPLACE INTO workflows (name, component) VALUES (?1, ?2)",
                params![name, hash.as_str()],
            )
            .map_err(e)?;
            Ok(Reply::Done)
        }
        Op::DeleteComponent { hash } => {
            let n = tx
                .execute(
                    "DELETE FROM components WHERE hash = ?1",
                    params![hash.as_str()],
                )
                .map_err(e)?;
            Ok(Reply::Deleted(n > 0))
        }
        Op::Create { meta, started } => {
            if let Some(existing) = read_meta(tx, path, &meta.id)? {
                return check_same_start(&existing, meta).map(Reply::Created);
            }
            tx.prepare_cached(
                "INSERT INTO meta (id, workflow, component, status, input_hash, created_at, updated_at, inbox_version, journal_len)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, 1)",
            )
            .map_err(&e)?
            .execute(params![
                meta.id.as_str(),
                meta.workflow,
                meta.component.as_str(),
                meta.status.as_str(),
                meta.input_hash as i64,
                meta.created_at.as_millis() as i64,
                meta.updated_at.as_millis() as i64
            ])
            .map_err(&e)?;
            tx.prepare_cached("INSERT INTO journal (id, run, idx, body) VALUES (?1, 1, 0, ?2)")
                .map_err(&e)?
                .execute(params![meta.id.as_str(), started])
                .map_err(&e)?;
            Ok(Reply::Created(Created::New))
        }
        Op::Append {
            run: driver_run,
            index,
            at,
            body,
            consume,
            finish,
            hold,
        } => {
            let id = id.expect("appends name an execution");
            let (status, len, _, run) = state(tx, path, id)?;
            if *driver_run != run {
                return Err(conflict(
                    id,
                    format!("run {driver_run} is over: the execution continued as run {run}"),
                ));
            }
            if status.is_terminal() {
                return Err(StoreError::Finished {
                    id: id.clone(),
                    status,
                });
            }
            if *index != len {
                return Err(conflict(
                    id,
                    format!(
                        "journal entry {index} cannot be written: the journal has {len} entries"
                    ),
                ));
            }
            if let Some(item) = consume {
                let n = tx
                    .prepare_cached("UPDATE inbox SET consumed_at = ?3 WHERE id = ?1 AND item = ?2 AND consumed_at IS NULL")
                    .map_err(&e)?
                    .execute(params![id.as_str(), item, at.as_millis() as i64])
                    .map_err(&e)?;
                if n == 0 {
                    return Err(conflict(
                        id,
                        format!("inbox item {item} was already consumed"),
                    ));
                }
            }
            tx.prepare_cached("INSERT INTO journal (id, run, idx, body) VALUES (?1, ?2, ?3, ?4)")
                .map_err(&e)?
                .execute(params![id.as_str(), run, index, body])
                .map_err(&e)?;
            match finish {
                Some(status) => tx
                    .prepare_cached(
                        "UPDATE meta SET journal_len = ?2, status = ?3, wake_at = ?5, waiting_on = NULL, updated_at = ?4 WHERE id = ?1",
                    )
                    .map_err(&e)?
                    .execute(params![id.as_str(), index + 1, status.as_str(), at.as_millis() as i64, hold.map(|t| t.as_millis() as i64)]),
                None => tx
                    .prepare_cached("UPDATE meta SET journal_len = ?2 WHERE id = ?1")
                    .map_err(&e)?
                    .execute(params![id.as_str(), index + 1]),
            }
            .map_err(&e)?;
            Ok(Reply::Done)
        }
        Op::Suspend(s) => {
            let id = id.expect("suspends name an execution");
            let (status, len, version, run) = state(tx, path, id)?;
            if status.is_terminal() || status == Status::Parked {
                return Err(conflict(id, format!("the execution is {status}")));
            }
            if run != s.run {
                return Err(conflict(
                    id,
                    format!(
                        "run {} is over: the execution continued as run {run}",
                        s.run
                    ),
                ));
            }
            if len != s.journal_len {
                return Err(conflict(
                    id,
                    format!(
                        "the journal grew to {len} entries since it was loaded ({})",
                        s.journal_len
                    ),
                ));
            }
            if version != s.inbox_version {
                return Err(conflict(id, "the inbox changed since it was loaded"));
            }
            tx.prepare_cached("UPDATE meta SET status = 'waiting', wake_at = ?2, waiting_on = ?3, updated_at = ?4 WHERE id = ?1")
                .map_err(&e)?
                .execute(params![id.as_str(), s.wake_at.map(|t| t.as_millis() as i64), s.waiting_on, s.at.as_millis() as i64])
                .map_err(&e)?;
            Ok(Reply::Done)
        }
        Op::Park { info, at } => {
            let id = id.expect("parks name an execution");
            let (status, ..) = state(tx, path, id)?;
            if status.is_terminal() {
                return Err(StoreError::Finished {
                    id: id.clone(),
                    status,
                });
            }
            let info = serde_json::to_string(info).expect("park info serializes");
            tx.execute(
                "UPDATE meta SET status = 'parked', parked = ?2, wake_at = NULL, updated_at = ?3 WHERE id = ?1",
                params![id.as_str(), info, at.as_millis() as i64],
            )
            .map_err(&e)?;
            Ok(Reply::Done)
        }
        Op::Settle => {
            let id = id.expect("settles name an execution");
            state(tx, path, id)?;
            tx.execute("UPDATE meta SET wake_at = NULL WHERE id = ?1 AND status IN ('completed', 'failed', 'cancelled')", params![id.as_str()])
                .map_err(&e)?;
            Ok(Reply::Done)
        }
        Op::Unpark => {
            let id = id.expect("unparks name an execution");
            state(tx, path, id)?;
            tx.execute("UPDATE meta SET status = 'running', parked = NULL WHERE id = ?1 AND status = 'parked'", params![id.as_str()])
                .map_err(&e)?;
            Ok(Reply::Done)
        }
        Op::ContinueAsNew {
            run,
            closing_index,
            closing,
            next,
            at,
        } => {
            let id = id.expect("continue-as-new names an execution");
            let (status, len, _, current) = state(tx, path, id)?;
            if status.is_terminal() {
                return Err(StoreError::Finished {
                    id: id.clone(),
                    status,
                });
            }
            if current != *run || len != *closing_index {
                return Err(conflict(
                    id,
                    format!(
                        "run {run} has moved on (the execution is at run {current}, entry {len})"
                    ),
                ));
            }
            let insert = "INSERT INTO journal (id, run, idx, body) VALUES (?1, ?2, ?3, ?4)";
            tx.prepare_cached(insert)
                .map_err(&e)?
                .execute(params![id.as_str(), run, closing_index, closing])
                .map_err(&e)?;
            tx.prepare_cached(insert)
                .map_err(&e)?
                .execute(params![id.as_str(), run + 1, 0, next])
                .map_err(&e)?;
            tx.prepare_cached(
                "UPDATE meta SET run = ?2, journal_len = 1, status = 'running', wake_at = NULL, waiting_on = NULL, updated_at = ?3 WHERE id = ?1",
            )
            .map_err(&e)?
            .execute(params![id.as_str(), run + 1, at.as_millis() as i64])
            .map_err(&e)?;
            Ok(Reply::Done)
        }
        Op::Deliver {
            key,
            message,
            body,
            at,
        } => {
            let id = id.expect("deliveries name an execution");
            let (status, ..) = state(tx, path, id)?;
            if status.is_terminal() {
                return Err(StoreError::Finished {
                    id: id.clone(),
                    status,
                });
            }
            let item = match key {
                Some(k) => k.clone(),
                None => ulids
                    .generate()
                    .map_err(|err| {
                        StoreError::Unavailable(format!("cannot make an inbox id: {err}"))
                    })?
                    .to_string(),
            };
            let inserted = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO inbox (id, item, at, body) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(&e)?
                .execute(params![id.as_str(), item, at.as_millis() as i64, body])
                .map_err(&e)?;
            if inserted == 0 {
                if key.is_some() {
                    return Ok(Reply::Delivered(None));
                }
                return Err(StoreError::Unavailable(format!(
                    "inbox id {item} of execution '{id}' is taken: retry"
                )));
            }
            tx.prepare_cached(
                "UPDATE meta SET inbox_version = inbox_version + 1, updated_at = ?2 WHERE id = ?1",
            )
            .map_err(&e)?
            .execute(params![id.as_str(), at.as_millis() as i64])
            .map_err(&e)?;
            Ok(Reply::Delivered(Some(InboxItem {
                id: item,
                at: *at,
                message: message.clone(),
            })))
        }
    }
}
