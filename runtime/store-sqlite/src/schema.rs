//! The schema and connection setup.

use crate::sql_err;
use cairn_core::store::{ExecutionMeta, ParkInfo, Status, StoreError};
use cairn_core::{ComponentHash, ExecutionId, Timestamp};
use rusqlite::{Connection, OpenFlags, Row};
use std::path::Path;
use std::time::Duration;

/// Bumped when the schema changes; older files are migrated or refused.
const SCHEMA_VERSION: i64 = 2;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (
    id            TEXT PRIMARY KEY,
    workflow      TEXT NOT NULL,
    component     TEXT NOT NULL,
    status        TEXT NOT NULL,
    input_hash    INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    inbox_version INTEGER NOT NULL,
    wake_at       INTEGER,
    waiting_on    TEXT,
    parked        TEXT,
    journal_len   INTEGER NOT NULL,
    run           INTEGER NOT NULL DEFAULT 1
) STRICT;
-- Due executions: waiting with a timer, or finished and holding until
-- the parent has heard (Append::hold_until_heard). Nothing else has a
-- wake_at. (meta_wake, its predecessor, covered only waiting ones.)
DROP INDEX IF EXISTS meta_wake;
CREATE INDEX IF NOT EXISTS meta_due ON meta (wake_at) WHERE wake_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS meta_updated ON meta (updated_at);
CREATE TABLE IF NOT EXISTS journal (
    id   TEXT NOT NULL,
    run  INTEGER NOT NULL,
    idx  INTEGER NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (id, run, idx)
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS inbox (
    id          TEXT NOT NULL,
    item        TEXT NOT NULL,
    at          INTEGER NOT NULL,
    body        BLOB NOT NULL,
    consumed_at INTEGER,
    PRIMARY KEY (id, item)
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS components (
    hash     TEXT PRIMARY KEY,
    bytes    BLOB NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS workflows (
    name      TEXT PRIMARY KEY,
    component TEXT NOT NULL
) STRICT;
";

pub(crate) const META_COLUMNS: &str = "id, workflow, component, status, input_hash, created_at, updated_at, inbox_version, wake_at, waiting_on, parked, run";

/// v1 -> v2: journals per run (continue-as-new), consumed inbox items kept
/// (so keyed deliveries stay once).
const MIGRATE_V1: &str = "
ALTER TABLE meta ADD COLUMN run INTEGER NOT NULL DEFAULT 1;
ALTER TABLE inbox ADD COLUMN consumed_at INTEGER;
CREATE TABLE journal_v2 (
    id   TEXT NOT NULL,
    run  INTEGER NOT NULL,
    idx  INTEGER NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (id, run, idx)
) STRICT, WITHOUT ROWID;
INSERT INTO journal_v2 (id, run, idx, body) SELECT id, 1, idx, body FROM journal;
DROP TABLE journal;
ALTER TABLE journal_v2 RENAME TO journal;
";

fn pragmas(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(sql_err(path))?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(sql_err(path))?;
    conn.pragma_update(None, "foreign_keys", "OFF")
        .map_err(sql_err(path))?;
    Ok(())
}

/// Opens the writer connection: WAL, durable commits, schema in place.
///
/// Two processes opening a new store at once (a `cairn run` creating it, a
/// `cairn status` polling it) can each hold a lock that the other's switch
/// to WAL needs; SQLite then answers "database is locked" at once, and a
/// busy timeout would only make both wait for each other. So an attempt
/// that meets a lock closes its connection (releasing its own locks) and
/// starts over, for up to 10 s; a lock held past that is CRN205 (retry),
/// never "not a Cairn store".
pub(crate) fn open(path: &Path) -> Result<Connection, StoreError> {
    let start = std::time::Instant::now();
    let mut attempt: u64 = 0;
    loop {
        match open_once(path) {
            Ok(conn) => return Ok(conn),
            Err(Opening::Busy(e)) if start.elapsed() < Duration::from_secs(10) => {
                attempt += 1;
                // Spread the retries of racing processes apart.
                let jitter = u64::from(std::process::id() % 17);
                std::thread::sleep(Duration::from_millis(10 * attempt.min(10) + jitter));
                tracing::debug!(path = %path.display(), attempt, "store locked while opening, retrying: {e}");
            }
            Err(Opening::Busy(e)) => {
                return Err(StoreError::Unavailable(format!(
                    "{} stayed locked by another process for 10 s ({e}): retry",
                    path.display()
                )));
            }
            Err(Opening::Failed(e)) => return Err(e),
        }
    }
}

/// Why one attempt to open failed.
enum Opening {
    /// Another connection holds a lock: try again.
    Busy(rusqlite::Error),
    /// Anything else.
    Failed(StoreError),
}

impl From<StoreError> for Opening {
    fn from(e: StoreError) -> Self {
        Self::Failed(e)
    }
}

fn open_once(path: &Path) -> Result<Connection, Opening> {
    let conn = Connection::open(path).map_err(sql_err(path))?;
    let not_ours = |e: rusqlite::Error| match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            Opening::Busy(e)
        }
        _ => Opening::Failed(StoreError::Misconfigured(format!(
            "{} is not a Cairn store ({e}): point --db at another file, or move this one away",
            path.display()
        ))),
    };
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .map_err(not_ours)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Misconfigured(format!(
            "{}: cannot switch to WAL mode (got {mode})",
            path.display()
        ))
        .into());
    }
    pragmas(&conn, path)?;
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(not_ours)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Misconfigured(format!(
            "{} was written by a newer cairn (schema v{version}, this one knows v{SCHEMA_VERSION}): upgrade cairn",
            path.display()
        )).into());
    }
    if version < SCHEMA_VERSION {
        let has_tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
                [],
                |r| r.get(0),
            )
            .map_err(not_ours)?;
        if version == 0 && has_tables > 0 {
            let ours: i64 = conn
                .query_row(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
                    [],
                    |r| r.get(0),
                )
                .map_err(not_ours)?;
            if ours == 0 {
                return Err(StoreError::Misconfigured(format!(
                    "{} is an SQLite database but not a Cairn store: point --db at another file",
                    path.display()
                ))
                .into());
            }
        }
        if version == 1 {
            conn.execute_batch(&format!("BEGIN; {MIGRATE_V1} COMMIT;"))
                .map_err(not_ours)?;
        } else {
            conn.execute_batch(SCHEMA).map_err(not_ours)?;
        }
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(sql_err(path))?;
    }
    Ok(conn)
}

/// Opens a read connection.
pub(crate) fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql_err(path))?;
    pragmas(&conn, path)?;
    Ok(conn)
}

/// Decodes a `META_COLUMNS` row.
pub(crate) fn meta_from_row(r: &Row<'_>) -> rusqlite::Result<Result<ExecutionMeta, StoreError>> {
    let id: String = r.get(0)?;
    let component: String = r.get(2)?;
    let status: String = r.get(3)?;
    let parked: Option<String> = r.get(10)?;
    let wake_at: Option<i64> = r.get(8)?;
    let corrupt = |reason: String| StoreError::Corrupt {
        id: ExecutionId::new(id.clone()).unwrap_or_else(|_| ExecutionId::new("?").expect("valid")),
        reason,
    };
    let meta = (|| {
        let status =
            Status::parse(&status).ok_or_else(|| corrupt(format!("unknown status {status:?}")))?;
        Ok(ExecutionMeta {
            id: ExecutionId::new(id.clone()).map_err(|e| corrupt(e.to_string()))?,
            workflow: r.get(1).map_err(|e| corrupt(e.to_string()))?,
            component: ComponentHash::parse(&component).map_err(corrupt)?,
            status,
            input_hash: r.get::<_, i64>(4).map_err(|e| corrupt(e.to_string()))? as u64,
            created_at: Timestamp::from_millis(
                r.get::<_, i64>(5).map_err(|e| corrupt(e.to_string()))? as u64,
            ),
            updated_at: Timestamp::from_millis(
                r.get::<_, i64>(6).map_err(|e| corrupt(e.to_string()))? as u64,
            ),
            inbox_version: r.get::<_, i64>(7).map_err(|e| corrupt(e.to_string()))? as u64,
            // A finished execution's wake_at is its hold: due, not a wake.
            wake_at: wake_at
                .filter(|_| !status.is_terminal())
                .map(|t| Timestamp::from_millis(t as u64)),
            due_at: wake_at.map(|t| Timestamp::from_millis(t as u64)),
            waiting_on: r.get(9).map_err(|e| corrupt(e.to_string()))?,
            parked: parked
                .map(|p| {
                    serde_json::from_str::<ParkInfo>(&p)
                        .map_err(|e| corrupt(format!("parked: {e}")))
                })
                .transpose()?,
            run: r.get::<_, i64>(11).map_err(|e| corrupt(e.to_string()))? as u32,
            lease: None,
        })
    })();
    Ok(meta)
}
