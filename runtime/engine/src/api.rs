//! The client API's verbs (`cairn_core::api`, `docs/api.md`) served over an
//! [`Engine`]: one implementation for every host that serves them (the
//! Lambda host, `cairn dev`), so their answers, cursors and error codes
//! cannot drift apart. A host adds only what is its own: how a `start`
//! advances and waits (the Lambda host's schedules and deadline, the dev
//! server's loop), and its transport.

use crate::{Engine, EngineError};
use base64::Engine as _;
use cairn_core::api::{
    self, ApiError, CancelAnswer, Description, HistoryEntry, HistoryPage, ListPage, QueryAnswer,
    SignalAnswer, Summary,
};
use cairn_core::{ComponentHash, ExecutionId, ExecutionMeta, ListFilter, Payload};
use serde::{Deserialize, Serialize};

/// An engine error as the API reports it (its code, its message).
pub fn error(e: impl Into<EngineError>) -> ApiError {
    let e = e.into();
    ApiError::new(e.code(), e.to_string())
}

/// An execution id from a request, or CRN401 saying what ids look like.
pub fn execution_id(id: &str) -> Result<ExecutionId, ApiError> {
    ExecutionId::new(id).map_err(|e| {
        ApiError::bad_request(format!(
            "{e}: ids are 1 to 200 printable characters, no whitespace or '#'"
        ))
    })
}

fn page_limit(limit: Option<usize>) -> Result<usize, ApiError> {
    match limit.unwrap_or(api::DEFAULT_PAGE) {
        n @ 1..=api::MAX_PAGE => Ok(n),
        n => Err(ApiError::bad_request(format!(
            "limit {n}: a page holds 1 to {} items",
            api::MAX_PAGE
        ))),
    }
}

/// `list` looks at most this many executions (in update order) for one
/// chain of pages.
pub const MAX_LIST_DEPTH: usize = 10_000;

/// Where the next `history` page starts.
#[derive(Serialize, Deserialize)]
struct HistoryCursor {
    run: u32,
    from: u32,
}

/// Where the next `list` page starts: after the execution `id` updated at
/// `t` (ms), about `n` executions deep.
#[derive(Serialize, Deserialize)]
struct ListCursor {
    t: u64,
    id: String,
    n: usize,
}

fn encode_cursor<T: Serialize>(c: &T) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(c).expect("cursors serialize"))
}

fn decode_cursor<T: for<'de> Deserialize<'de>>(c: &str) -> Result<T, ApiError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "cursor {c:?} is not one this API gave: pass the previous page's next_cursor as it is"
            ))
        })
}

/// Entries `from..from + limit` of `journal`, stopping early (after at
/// least one) where the page would pass `max_bytes` of JSON: one run's
/// large entries must not make an answer Lambda refuses to return.
pub fn history_page(
    journal: &[cairn_core::Entry],
    from: usize,
    limit: usize,
    max_bytes: usize,
) -> Vec<HistoryEntry> {
    let mut page = Vec::new();
    let mut bytes = 0;
    for e in journal.iter().skip(from).take(limit) {
        let h = HistoryEntry::from_entry(e);
        let size = serde_json::to_vec(&h).map_or(0, |v| v.len());
        if !page.is_empty() && bytes + size > max_bytes {
            break;
        }
        bytes += size;
        page.push(h);
    }
    page
}

/// A `start`'s checks before anything is written: `wait_ms` within its
/// bound, the component (the request's, else the store's pointer for the
/// workflow, `cairn register`), and the id (the request's, else the
/// workflow's name and a fresh ULID).
pub async fn start_target(
    engine: &Engine,
    s: &api::Start,
) -> Result<(ComponentHash, ExecutionId), ApiError> {
    if s.wait_ms.is_some_and(|w| w > api::MAX_WAIT_MS) {
        return Err(ApiError::bad_request(format!(
            "wait_ms {} is over the bound of {} ms (the invocation limit): wait less, then describe it",
            s.wait_ms.unwrap_or(0),
            api::MAX_WAIT_MS
        )));
    }
    let component = match &s.component {
        Some(h) => Some(ComponentHash::parse(h).map_err(ApiError::bad_request)?),
        None => engine
            .store()
            .workflow_component(&s.workflow)
            .await
            .map_err(error)?,
    };
    let Some(component) = component else {
        return Err(error(EngineError::NoComponentFor(s.workflow.clone())));
    };
    let id = match &s.id {
        Some(id) => execution_id(id)?,
        None => ExecutionId::generate(&s.workflow, ulid::Ulid::new()),
    };
    Ok((component, id))
}

/// `signal`: writes the inbox (once per key, with an idempotency key).
pub async fn signal(engine: &Engine, s: api::Signal) -> Result<SignalAnswer, ApiError> {
    let id = execution_id(&s.id)?;
    let payload = Payload::json(&s.payload);
    match s.idempotency_key {
        Some(key) => {
            let item = engine
                .signal_once(&id, &s.name, payload, &key)
                .await
                .map_err(error)?;
            Ok(SignalAnswer {
                id: id.to_string(),
                delivered: format!("signal.{key}"),
                duplicate: item.is_none(),
            })
        }
        None => {
            let item = engine.signal(&id, &s.name, payload).await.map_err(error)?;
            Ok(SignalAnswer {
                id: id.to_string(),
                delivered: item.id,
                duplicate: false,
            })
        }
    }
}

/// `query`: asks a running execution; nothing is written.
pub async fn query(engine: &Engine, q: api::Query) -> Result<QueryAnswer, ApiError> {
    let id = execution_id(&q.id)?;
    let r = engine
        .query(&id, &q.name, Payload::json(&q.args))
        .await
        .map_err(error)?;
    let (answer, failure) = match r {
        Ok(a) => (Some(a.to_json_value()), None),
        Err(f) => (None, Some(f)),
    };
    Ok(QueryAnswer {
        id: id.to_string(),
        query: q.name,
        answer,
        failure,
    })
}

/// `cancel`: writes a cancel request to the inbox.
pub async fn cancel(engine: &Engine, c: api::Cancel) -> Result<CancelAnswer, ApiError> {
    let id = execution_id(&c.id)?;
    let item = engine
        .cancel(&id, c.reason.as_deref().unwrap_or("cancelled"))
        .await
        .map_err(error)?;
    Ok(CancelAnswer {
        id: id.to_string(),
        delivered: item.id,
    })
}

/// `describe`: one execution.
pub async fn describe(engine: &Engine, d: api::Describe) -> Result<Description, ApiError> {
    let ex = engine.load(&execution_id(&d.id)?).await.map_err(error)?;
    Ok(Description::from_execution(&ex))
}

/// `history`: a page of one run's journal. Each page reads the run's
/// journal once.
pub async fn history(engine: &Engine, h: api::History) -> Result<HistoryPage, ApiError> {
    let id = execution_id(&h.id)?;
    let limit = page_limit(h.limit)?;
    let cursor: Option<HistoryCursor> = h.cursor.as_deref().map(decode_cursor).transpose()?;
    let ex = engine.load(&id).await.map_err(error)?;
    let runs = ex.meta.run;
    let run = match (h.run, &cursor) {
        (Some(r), Some(c)) if r != c.run => {
            return Err(ApiError::bad_request(format!(
                "the cursor is for run {}, the request asks for run {r}: pass the cursor with the run it came from",
                c.run
            )));
        }
        (Some(r), _) => r,
        (None, Some(c)) => c.run,
        (None, None) => runs,
    };
    if run == 0 || run > runs {
        return Err(ApiError::bad_request(format!(
            "execution {id} has runs 1 to {runs}, not {run}"
        )));
    }
    let journal = if run == runs {
        ex.journal
    } else {
        engine.store().load_run(&id, run).await.map_err(error)?
    };
    let from = cursor.map_or(0, |c| c.from as usize);
    let entries = history_page(&journal, from, limit, api::MAX_ANSWER_BYTES);
    let next = from + entries.len();
    Ok(HistoryPage {
        id: id.to_string(),
        run,
        runs,
        next_cursor: (next < journal.len()).then(|| {
            encode_cursor(&HistoryCursor {
                run,
                from: next as u32,
            })
        }),
        entries,
    })
}

/// `list`: a page of executions, most recently updated first. The store
/// lists from the most recent; a page skips what the previous pages showed
/// (by the cursor's update time and id), so an execution updated while a
/// caller pages moves to the front and is not shown again.
pub async fn list(engine: &Engine, l: api::List) -> Result<ListPage, ApiError> {
    let limit = page_limit(l.limit)?;
    let cursor: Option<ListCursor> = l.cursor.as_deref().map(decode_cursor).transpose()?;
    let depth = cursor.as_ref().map_or(0, |c| c.n) + limit + 1;
    if depth > MAX_LIST_DEPTH {
        return Err(ApiError::bad_request(format!(
            "list pages reach at most {MAX_LIST_DEPTH} executions deep: narrow the list by workflow or status"
        )));
    }
    let metas = engine
        .list(ListFilter {
            status: l.status.clone(),
            workflow: l.workflow.clone(),
            limit: depth,
        })
        .await
        .map_err(error)?;
    let truncated = metas.len() >= depth;
    let after_cursor = |m: &ExecutionMeta| match &cursor {
        None => true,
        Some(c) => {
            let t = m.updated_at.as_millis();
            t < c.t || (t == c.t && m.id.as_str() > c.id.as_str())
        }
    };
    let mut page = Vec::new();
    let mut last_seen: Option<(usize, &ExecutionMeta)> = None;
    let mut more = false;
    for (i, m) in metas.iter().enumerate() {
        if !after_cursor(m) {
            continue;
        }
        if l.updated_after.is_some_and(|a| m.updated_at < a.0) {
            break; // Older ones follow.
        }
        if page.len() == limit {
            more = true;
            break;
        }
        last_seen = Some((i, m));
        if l.updated_before.is_some_and(|b| m.updated_at >= b.0) {
            continue;
        }
        page.push(Summary::from_meta(m));
    }
    // A page cut by its limit, or a store listing cut by its depth
    // with the filters still matching: go on from the last one seen.
    let stopped_by_time = metas
        .last()
        .is_some_and(|m| l.updated_after.is_some_and(|a| m.updated_at < a.0));
    let next_cursor = match last_seen {
        Some((i, m)) if more || (truncated && !stopped_by_time) => {
            Some(encode_cursor(&ListCursor {
                t: m.updated_at.as_millis(),
                id: m.id.to_string(),
                n: i + 1,
            }))
        }
        _ => None,
    };
    Ok(ListPage {
        executions: page,
        next_cursor,
    })
}
