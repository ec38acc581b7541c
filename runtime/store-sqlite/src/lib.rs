//! # cairn-store-sqlite: the embedded store
//!
//! One SQLite file (default `.cairn/cairn.db` under the working directory) in
//! WAL mode with `synchronous=FULL`: a write returns only once it is on disk.
//!
//! **Group commit.** All writes go to one writer thread. It takes every write
//! waiting in its queue, runs each in its own savepoint (so one write's
//! conflict does not undo another's), and commits them together: one fsync
//! for the whole group. A lone driver pays one fsync per step; fifty
//! concurrent drivers share them. Each write still returns only after its
//! group's commit, so every step is durable before the driver's next effect.
//!
//! Reads use a small pool of read connections; WAL lets them run beside the
//! writer, and each `load` reads meta, journal and inbox in one transaction.

mod schema;
mod writer;

use cairn_core::journal_cache::JournalCache;
use cairn_core::store::*;
use cairn_core::{ComponentHash, Entry, ExecutionId, Timestamp};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use writer::{Job, Op, Reply};

/// Largest journal entry or inbox message accepted by default (4 MiB).
pub const DEFAULT_MAX_ITEM_BYTES: usize = 4 << 20;

/// Counters for benchmarks and tests.
#[derive(Debug, Default)]
pub struct Stats {
    /// Write operations (appends, suspends, deliveries...).
    pub writes: AtomicU64,
    /// Commits (each one fsync).
    pub commits: AtomicU64,
    /// Read transactions.
    pub reads: AtomicU64,
}

/// The SQLite store.
pub struct SqliteStore {
    path: PathBuf,
    jobs: Mutex<std::sync::mpsc::Sender<Job>>,
    readers: Mutex<Vec<Connection>>,
    stats: Arc<Stats>,
    max_item_bytes: usize,
    /// The journals this process advanced recently: a load reads only the
    /// entries after them (see [`cairn_core::journal_cache`]).
    journals: JournalCache,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

fn unavailable(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("{}: {e}", path.display()))
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Misconfigured(format!(
                    "cannot create the store directory {}: {e}",
                    dir.display()
                ))
            })?;
        }
        let conn = schema::open(&path)?;
        let stats = Arc::new(Stats::default());
        let jobs = writer::spawn(conn, path.clone(), stats.clone())?;
        Ok(Self {
            path,
            jobs: Mutex::new(jobs),
            readers: Mutex::new(Vec::new()),
            stats,
            max_item_bytes: DEFAULT_MAX_ITEM_BYTES,
            journals: JournalCache::default(),
        })
    }

    /// Keeps at most `journals` recently advanced journals in memory (the
    /// default: [`cairn_core::journal_cache::JOURNALS`]); `0` keeps none, so
    /// that every load reads the whole run from the file.
    pub fn with_journal_cache(mut self, journals: usize) -> Self {
        self.journals = JournalCache::with_limits(journals, cairn_core::journal_cache::BYTES);
        self
    }

    /// Sets the largest entry or message accepted.
    pub fn with_max_item_bytes(mut self, bytes: usize) -> Self {
        self.max_item_bytes = bytes;
        self
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Write and commit counters.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    async fn write(&self, id: Option<ExecutionId>, op: Op) -> Result<Reply, StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(Job { id, op, reply: tx })
            .map_err(|_| unavailable(&self.path, "the writer thread has stopped"))?;
        rx.await
            .map_err(|_| unavailable(&self.path, "the writer thread has stopped"))?
    }

    fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self.readers.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match conn {
            Some(c) => c,
            None => schema::open_reader(&self.path)?,
        };
        self.stats.reads.fetch_add(1, Ordering::Relaxed);
        let r = f(&conn);
        let mut pool = self.readers.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < 8 {
            pool.push(conn);
        }
        r
    }

    /// The current run's journal of `meta`'s execution: the cached prefix
    /// (when it is of this run and this very execution) and the entries
    /// after it, read in the caller's transaction; then kept in the cache.
    fn read_journal(
        &self,
        conn: &Connection,
        id: &ExecutionId,
        meta: &ExecutionMeta,
    ) -> Result<Vec<Entry>, StoreError> {
        let path = &self.path;
        if let Some((run, created_at, len)) = self.journals.prefix(id)
            && run == meta.run
            && created_at == meta.created_at
        {
            let tail = read_run_from(conn, path, id, run, len, 4)?;
            if tail.first().is_none_or(|e| e.index == len)
                && let Some(mut journal) = self.journals.entries(id, run, len)
            {
                if !tail.is_empty() {
                    journal.extend(tail);
                    self.journals.keep(id, run, created_at, &journal);
                }
                return Ok(journal);
            }
        }
        self.journals.forget(id);
        let journal = read_run(conn, path, id, meta.run)?;
        self.journals.keep(id, meta.run, meta.created_at, &journal);
        Ok(journal)
    }

    /// Refuses an item over the store's limit before writing anything.
    fn check_size(
        &self,
        id: &ExecutionId,
        what: impl FnOnce() -> String,
        size: usize,
    ) -> Result<(), StoreError> {
        if size > self.max_item_bytes {
            return Err(StoreError::TooLarge {
                id: id.clone(),
                what: what(),
                size,
                limit: self.max_item_bytes,
                advice: cairn_core::store::DEFAULT_TOO_LARGE_ADVICE.into(),
            });
        }
        Ok(())
    }

    /// One inbox insert: under `key` at most once (`None` when it was
    /// delivered before), or under a fresh ULID.
    async fn deliver_keyed(
        &self,
        id: &ExecutionId,
        key: Option<String>,
        message: InboxMessage,
        at: Timestamp,
    ) -> Result<Option<InboxItem>, StoreError> {
        let body = serde_json::to_vec(&message).expect("inbox messages serialize");
        self.check_size(id, || message.describe(), body.len())?;
        let op = Op::Deliver {
            key,
            message,
            body,
            at,
        };
        match self.write(Some(id.clone()), op).await? {
            Reply::Delivered(item) => Ok(item),
            _ => unreachable!("deliver replies Delivered"),
        }
    }
}

/// The journal of run `run`, index 0 first.
fn read_run(
    conn: &Connection,
    path: &Path,
    id: &ExecutionId,
    run: u32,
) -> Result<Vec<Entry>, StoreError> {
    read_run_from(conn, path, id, run, 0, 16)
}

/// The entries of run `run` from index `from` on, in order (`capacity`: the
/// number expected).
fn read_run_from(
    conn: &Connection,
    path: &Path,
    id: &ExecutionId,
    run: u32,
    from: u32,
    capacity: usize,
) -> Result<Vec<Entry>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT idx, body FROM journal WHERE id = ?1 AND run = ?2 AND idx >= ?3 ORDER BY idx",
        )
        .map_err(sql_err(path))?;
    let mut rows = stmt
        .query(params![id.as_str(), run, from])
        .map_err(sql_err(path))?;
    let mut journal = Vec::with_capacity(capacity);
    while let Some(row) = rows.next().map_err(sql_err(path))? {
        let idx: u32 = row.get(0).map_err(sql_err(path))?;
        let body = row
            .get_ref(1)
            .map_err(sql_err(path))?
            .as_blob()
            .map_err(|e| unavailable(path, e))?;
        journal.push(
            cairn_core::entry::decode(idx, body).map_err(|e| StoreError::Corrupt {
                id: id.clone(),
                reason: e.to_string(),
            })?,
        );
    }
    Ok(journal)
}

pub(crate) fn sql_err(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |e| match e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(
                f.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ) =>
        {
            StoreError::Unavailable(format!("{}: the database is busy: {e}", path.display()))
        }
        other => unavailable(path, other),
    }
}

pub(crate) fn read_meta(
    conn: &Connection,
    path: &Path,
    id: &ExecutionId,
) -> Result<Option<ExecutionMeta>, StoreError> {
    conn.query_row(
        &format!("SELECT {} FROM meta WHERE id = ?1", schema::META_COLUMNS),
        params![id.as_str()],
        schema::meta_from_row,
    )
    .optional()
    .map_err(sql_err(path))?
    .transpose()
}

impl Store for SqliteStore {
    fn max_item_bytes(&self) -> usize {
        self.max_item_bytes
    }

    fn create(&self, new: NewExecution) -> StoreFuture<'_, Created> {
        Box::pin(async move {
            let body = cairn_core::entry::encode(&new.started);
            let id = new.meta.id.clone();
            let created_at = new.meta.created_at;
            match self
                .write(
                    Some(id.clone()),
                    Op::Create {
                        meta: new.meta,
                        started: body,
                    },
                )
                .await?
            {
                Reply::Created(c) => {
                    if c == Created::New {
                        self.journals
                            .put(&id, 1, created_at, std::slice::from_ref(&new.started));
                    }
                    Ok(c)
                }
                _ => unreachable!("create replies Created"),
            }
        })
    }

    fn load<'a>(&'a self, id: &'a ExecutionId) -> StoreFuture<'a, Execution> {
        Box::pin(async move {
            self.read(|conn| {
                let path = &self.path;
                let tx = conn.unchecked_transaction().map_err(sql_err(path))?;
                let meta =
                    read_meta(&tx, path, id)?.ok_or_else(|| StoreError::NotFound(id.clone()))?;
                let journal = self.read_journal(&tx, id, &meta)?;
                let mut inbox = Vec::new();
                {
                    let mut stmt = tx
                        .prepare_cached(
                            "SELECT item, at, body FROM inbox WHERE id = ?1 AND consumed_at IS NULL ORDER BY item",
                        )
                        .map_err(sql_err(path))?;
                    let mut rows = stmt.query(params![id.as_str()]).map_err(sql_err(path))?;
                    while let Some(row) = rows.next().map_err(sql_err(path))? {
                        let item: String = row.get(0).map_err(sql_err(path))?;
                        let at: i64 = row.get(1).map_err(sql_err(path))?;
                        let body: Vec<u8> = row.get(2).map_err(sql_err(path))?;
                        let message =
                            serde_json::from_slice(&body).map_err(|e| StoreError::Corrupt {
                                id: id.clone(),
                                reason: format!("inbox item {item}: {e}"),
                            })?;
                        inbox.push(InboxItem {
                            id: item,
                            at: Timestamp::from_millis(at as u64),
                            message,
                        });
                    }
                }
                tx.commit().map_err(sql_err(path))?;
                Ok(Execution {
                    meta,
                    journal,
                    inbox,
                })
            })
        })
    }

    fn meta<'a>(&'a self, id: &'a ExecutionId) -> StoreFuture<'a, ExecutionMeta> {
        Box::pin(async move {
            self.read(|conn| {
                read_meta(conn, &self.path, id)?.ok_or_else(|| StoreError::NotFound(id.clone()))
            })
        })
    }

    fn append<'a>(&'a self, id: &'a ExecutionId, append: Append) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let body = cairn_core::entry::encode(&append.entry);
            self.check_size(
                id,
                || format!("journal entry {}", append.entry.index),
                body.len(),
            )?;
            let op = Op::Append {
                run: append.run,
                index: append.entry.index,
                at: append.entry.at,
                body,
                consume: append.consume,
                finish: append.entry.event.final_status(),
                hold: append.hold_until_heard,
            };
            let r = self.write(Some(id.clone()), op).await.map(|_| ());
            match &r {
                Ok(()) => self.journals.push(id, append.run, &append.entry),
                // Whatever is there now, the next load reads it whole.
                Err(_) => self.journals.forget(id),
            }
            r
        })
    }

    fn suspend<'a>(&'a self, id: &'a ExecutionId, suspend: Suspend) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.write(Some(id.clone()), Op::Suspend(suspend))
                .await
                .map(|_| ())
        })
    }

    fn park<'a>(
        &'a self,
        id: &'a ExecutionId,
        info: ParkInfo,
        at: Timestamp,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.write(Some(id.clone()), Op::Park { info, at })
                .await
                .map(|_| ())
        })
    }

    fn settle<'a>(&'a self, id: &'a ExecutionId) -> StoreFuture<'a, ()> {
        Box::pin(async move { self.write(Some(id.clone()), Op::Settle).await.map(|_| ()) })
    }

    fn unpark<'a>(&'a self, id: &'a ExecutionId) -> StoreFuture<'a, ()> {
        Box::pin(async move { self.write(Some(id.clone()), Op::Unpark).await.map(|_| ()) })
    }

    fn deliver<'a>(
        &'a self,
        id: &'a ExecutionId,
        message: InboxMessage,
        at: Timestamp,
    ) -> StoreFuture<'a, InboxItem> {
        Box::pin(async move {
            let item = self.deliver_keyed(id, None, message, at).await?;
            Ok(item.expect("an unkeyed delivery always inserts"))
        })
    }

    fn continue_as_new<'a>(&'a self, id: &'a ExecutionId, c: ContinueAsNew) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let closing = cairn_core::entry::encode(&c.closing);
            let next = cairn_core::entry::encode(&c.next);
            self.check_size(
                id,
                || format!("journal entry {} of run {}", c.closing.index, c.run),
                closing.len(),
            )?;
            self.check_size(id, || format!("the input of run {}", c.run + 1), next.len())?;
            let op = Op::ContinueAsNew {
                run: c.run,
                closing_index: c.closing.index,
                closing,
                next,
                at: c.next.at,
            };
            self.journals.forget(id);
            self.write(Some(id.clone()), op).await.map(|_| ())
        })
    }

    fn load_run<'a>(&'a self, id: &'a ExecutionId, run: u32) -> StoreFuture<'a, Vec<Entry>> {
        Box::pin(async move {
            self.read(|conn| {
                read_meta(conn, &self.path, id)?.ok_or_else(|| StoreError::NotFound(id.clone()))?;
                read_run(conn, &self.path, id, run)
            })
        })
    }

    fn deliver_once<'a>(
        &'a self,
        id: &'a ExecutionId,
        key: &'a str,
        message: InboxMessage,
        at: Timestamp,
    ) -> StoreFuture<'a, Option<InboxItem>> {
        Box::pin(self.deliver_keyed(id, Some(key.to_string()), message, at))
    }

    fn list(&self, filter: ListFilter) -> StoreFuture<'_, Vec<ExecutionMeta>> {
        Box::pin(async move {
            self.read(|conn| {
                let mut sql = format!("SELECT {} FROM meta WHERE 1=1", schema::META_COLUMNS);
                let mut args: Vec<String> = Vec::new();
                if !filter.status.is_empty() {
                    let marks: Vec<String> = filter
                        .status
                        .iter()
                        .map(|s| {
                            args.push(s.as_str().into());
                            format!("?{}", args.len())
                        })
                        .collect();
                    sql.push_str(&format!(" AND status IN ({})", marks.join(",")));
                }
                if let Some(w) = &filter.workflow {
                    args.push(w.clone());
                    sql.push_str(&format!(" AND workflow = ?{}", args.len()));
                }
                let limit = if filter.limit == 0 {
                    -1
                } else {
                    filter.limit as i64
                };
                sql.push_str(&format!(" ORDER BY updated_at DESC, id LIMIT {limit}"));
                let mut stmt = conn.prepare(&sql).map_err(sql_err(&self.path))?;
                let rows = stmt
                    .query_map(
                        rusqlite::params_from_iter(args.iter()),
                        schema::meta_from_row,
                    )
                    .map_err(sql_err(&self.path))?;
                rows.map(|r| r.map_err(sql_err(&self.path))?).collect()
            })
        })
    }

    fn due(&self, now: Timestamp, limit: usize) -> StoreFuture<'_, Vec<(ExecutionId, Timestamp)>> {
        Box::pin(async move {
            self.read(|conn| {
                let mut stmt = conn
                    .prepare_cached("SELECT id, wake_at FROM meta WHERE wake_at <= ?1 ORDER BY wake_at, id LIMIT ?2")
                    .map_err(sql_err(&self.path))?;
                let rows = stmt
                    .query_map(params![now.as_millis().min(i64::MAX as u64) as i64, limit as i64], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
                    .map_err(sql_err(&self.path))?;
                let mut out = Vec::new();
                for row in rows {
                    let (id, at) = row.map_err(sql_err(&self.path))?;
                    let id = ExecutionId::new(id).map_err(|e| StoreError::Corrupt { id: ExecutionId::new("?").expect("valid"), reason: e.to_string() })?;
                    out.push((id, Timestamp::from_millis(at as u64)));
                }
                Ok(out)
            })
        })
    }

    fn put_component<'a>(
        &'a self,
        hash: &'a ComponentHash,
        bytes: &'a [u8],
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.write(
                None,
                Op::PutComponent {
                    hash: hash.clone(),
                    bytes: bytes.to_vec(),
                },
            )
            .await
            .map(|_| ())
        })
    }

    fn get_component<'a>(&'a self, hash: &'a ComponentHash) -> StoreFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            self.read(|conn| {
                conn.query_row(
                    "SELECT bytes FROM components WHERE hash = ?1",
                    params![hash.as_str()],
                    |r| r.get(0),
                )
                .optional()
                .map_err(sql_err(&self.path))
            })
        })
    }

    fn set_workflow_component<'a>(
        &'a self,
        name: &'a str,
        hash: &'a ComponentHash,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.write(
                None,
                Op::SetWorkflow {
                    name: name.into(),
                    hash: hash.clone(),
                },
            )
            .await
            .map(|_| ())
        })
    }

    fn workflow_component<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<ComponentHash>> {
        Box::pin(async move {
            self.read(|conn| {
                let h: Option<String> = conn
                    .query_row(
                        "SELECT component FROM workflows WHERE name = ?1",
                        params![name],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(sql_err(&self.path))?;
                h.map(|h| ComponentHash::parse(&h).map_err(StoreError::Misconfigured))
                    .transpose()
            })
        })
    }

    fn list_components(&self) -> StoreFuture<'_, Vec<(ComponentHash, u64)>> {
        Box::pin(async move {
            self.read(|conn| {
                let mut stmt = conn
                    .prepare("SELECT hash, length(bytes) FROM components ORDER BY hash")
                    .map_err(sql_err(&self.path))?;
                let rows = stmt
                    .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
                    .map_err(sql_err(&self.path))?;
                let mut out = Vec::new();
                for row in rows {
                    let (hash, size) = row.map_err(sql_err(&self.path))?;
                    let hash = ComponentHash::parse(&hash).map_err(StoreError::Misconfigured)?;
                    out.push((hash, size as u64));
                }
                Ok(out)
            })
        })
    }

    fn list_workflows(&self) -> StoreFuture<'_, Vec<(String, ComponentHash)>> {
        Box::pin(async move {
            self.read(|conn| {
                let mut stmt = conn
                    .prepare("SELECT name, component FROM workflows ORDER BY name")
                    .map_err(sql_err(&self.path))?;
                let rows = stmt
                    .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                    .map_err(sql_err(&self.path))?;
                let mut out = Vec::new();
                for row in rows {
                    let (name, hash) = row.map_err(sql_err(&self.path))?;
                    let hash = ComponentHash::parse(&hash).map_err(StoreError::Misconfigured)?;
                    out.push((name, hash));
                }
                Ok(out)
            })
        })
    }

    /// Deletes the row; the file keeps its size (SQLite reuses the freed
    /// pages for later writes).
    fn delete_component<'a>(&'a self, hash: &'a ComponentHash) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            match self
                .write(None, Op::DeleteComponent { hash: hash.clone() })
                .await?
            {
                Reply::Deleted(existed) => Ok(existed),
                _ => unreachable!("delete replies Deleted"),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    fn run<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    async fn make() -> (tempfile::TempDir, super::SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = super::SqliteStore::open(dir.path().join("cairn.db")).unwrap();
        (dir, store)
    }

    cairn_core::store_suite_tests!(run, make());

    fn step(run: u32, index: u32) -> cairn_core::store::Append {
        cairn_core::store::Append::new(
            run,
            cairn_core::Entry {
                index,
                at: cairn_core::Timestamp::from_millis(u64::from(index)),
                event: cairn_core::Event::TimerFired {
                    seq: index,
                    duration_ms: 5,
                },
            },
        )
    }

    /// A process keeps the journals it wrote or loaded and reads only the
    /// entries after them (issue 17, the local engine), yet sees every
    /// entry another process (another handle on the same file) appended,
    /// and a new run it started.
    #[test]
    fn a_cached_journal_reads_only_new_entries_and_sees_other_writers() {
        use cairn_core::Store;
        run(async {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("cairn.db");
            let a = super::SqliteStore::open(&file).unwrap();
            let b = super::SqliteStore::open(&file).unwrap();
            let id = cairn_core::store_suite::fresh_id("cache");
            a.create(cairn_core::store_suite::new_execution(&id, "wf", b"1"))
                .await
                .unwrap();
            for i in 1..3 {
                a.append(&id, step(1, i)).await.unwrap();
            }
            for i in 3..5 {
                b.append(&id, step(1, i)).await.unwrap();
            }
            let ex = a.load(&id).await.unwrap();
            let indexes: Vec<u32> = ex.journal.iter().map(|e| e.index).collect();
            assert_eq!(indexes, [0, 1, 2, 3, 4], "b's entries 3 and 4 are seen");
            assert_eq!(ex.journal[3], step(1, 3).entry);

            // Entry 1 made unreadable on disk: a only reads past its
            // cached prefix, so its load still succeeds (and would fail if
            // it read the whole run); a process without the cache fails
            // with the entry's index.
            let raw = rusqlite::Connection::open(&file).unwrap();
            raw.execute(
                "UPDATE journal SET body = x'7b7d' WHERE id = ?1 AND idx = 1",
                [id.as_str()],
            )
            .unwrap();
            b.append(&id, step(1, 5)).await.unwrap();
            assert_eq!(a.load(&id).await.unwrap().journal.len(), 6);
            let cold = super::SqliteStore::open(&file).unwrap();
            let err = cold.load(&id).await.unwrap_err().to_string();
            assert!(err.contains("entry 1") || err.contains("index 1"), "{err}");
            raw.execute(
                "UPDATE journal SET body = ?2 WHERE id = ?1 AND idx = 1",
                rusqlite::params![id.as_str(), cairn_core::entry::encode(&step(1, 1).entry)],
            )
            .unwrap();

            // A new run started elsewhere replaces the cached one.
            let started = ex.journal[0].clone();
            b.continue_as_new(
                &id,
                cairn_core::store_suite::continue_run_1(
                    &started,
                    6,
                    cairn_core::Timestamp::from_millis(6),
                ),
            )
            .await
            .unwrap();
            let ex = a.load(&id).await.unwrap();
            assert_eq!((ex.meta.run, ex.journal.len()), (2, 1));
            a.append(&id, step(2, 1)).await.unwrap();
            assert_eq!(b.load(&id).await.unwrap().journal.len(), 2);
            assert_eq!(a.load(&id).await.unwrap().journal.len(), 2);
        })
    }

    #[test]
    fn concurrent_writes_share_commits() {
        use cairn_core::Store;
        run(async {
            let (_dir, store) = make().await;
            let store = std::sync::Arc::new(store);
            let mut tasks = Vec::new();
            for i in 0..32 {
                let store = store.clone();
                tasks.push(tokio::spawn(async move {
                    let id = cairn_core::store_suite::fresh_id(&format!("gc{i}"));
                    store
                        .create(cairn_core::store_suite::new_execution(&id, "wf", b"1"))
                        .await
                        .unwrap();
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
            let s = store.stats();
            let (writes, commits) = (
                s.writes.load(std::sync::atomic::Ordering::Relaxed),
                s.commits.load(std::sync::atomic::Ordering::Relaxed),
            );
            assert_eq!(writes, 32);
            assert!(commits <= writes, "{commits} commits for {writes} writes");
        });
    }

    #[test]
    fn data_survives_reopening_the_file() {
        use cairn_core::Store;
        run(async {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("sub/dir/cairn.db");
            let id = cairn_core::store_suite::fresh_id("reopen");
            {
                let store = super::SqliteStore::open(&path).unwrap();
                store
                    .create(cairn_core::store_suite::new_execution(&id, "wf", b"1"))
                    .await
                    .unwrap();
            }
            let store = super::SqliteStore::open(&path).unwrap();
            assert_eq!(store.load(&id).await.unwrap().journal.len(), 1);
        });
    }

    #[test]
    fn a_file_that_is_not_a_database_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cairn.db");
        std::fs::write(
            &path,
            b"this is not sqlite, just some text long enough to have a header........",
        )
        .unwrap();
        let err = super::SqliteStore::open(&path).unwrap_err();
        assert!(err.to_string().contains("not a Cairn store"), "{err}");
    }
}
