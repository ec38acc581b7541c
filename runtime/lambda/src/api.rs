//! The client API (`cairn_core::api`, `docs/api.md`) served by the host:
//! one method per verb. Every failure is an [`ApiError`] with its code.

use crate::{App, outcome_name, requests_delta};
use base64::Engine as _;
use cairn_core::api::{
    self, ApiError, CancelAnswer, Description, HistoryEntry, HistoryPage, ListPage, QueryAnswer,
    SignalAnswer, StartAnswer, Summary,
};
use cairn_core::{ExecutionId, ListFilter, Payload, Timestamp};
use cairn_engine::{Advance, AdvanceOptions, EngineError, StartRequest};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// An engine error as the API reports it.
pub(crate) fn engine_error(e: impl Into<EngineError>) -> ApiError {
    let e = e.into();
    ApiError::new(e.code(), e.to_string())
}

fn execution_id(id: &str) -> Result<ExecutionId, ApiError> {
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

/// Polls between the advance and the end of a start's `wait_ms`: from
/// 50 ms, doubling, at most 1 s apart.
const FIRST_POLL: Duration = Duration::from_millis(50);
const MAX_POLL: Duration = Duration::from_secs(1);

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
pub(crate) fn history_page(
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

fn to_value<T: Serialize>(v: T) -> Value {
    serde_json::to_value(v).expect("answers always serialize")
}

impl App {
    /// Serves one API request.
    pub(crate) async fn api(
        &self,
        req: api::Request,
        arn: &str,
        opts: &AdvanceOptions,
    ) -> Result<Value, ApiError> {
        match req {
            api::Request::Start(s) => self.start(s, arn, opts).await.map(to_value),
            api::Request::Signal(s) => self.signal(s).await.map(to_value),
            api::Request::Query(q) => {
                let id = execution_id(&q.id)?;
                let r = self
                    .engine
                    .query(&id, &q.name, Payload::json(&q.args))
                    .await
                    .map_err(engine_error)?;
                let (answer, failure) = match r {
                    Ok(a) => (Some(a.to_json_value()), None),
                    Err(f) => (None, Some(f)),
                };
                Ok(to_value(QueryAnswer {
                    id: id.to_string(),
                    query: q.name,
                    answer,
                    failure,
                }))
            }
            api::Request::Cancel(c) => {
                let id = execution_id(&c.id)?;
                let item = self
                    .engine
                    .cancel(&id, c.reason.as_deref().unwrap_or("cancelled"))
                    .await
                    .map_err(engine_error)?;
                Ok(to_value(CancelAnswer {
                    id: id.to_string(),
                    delivered: item.id,
                }))
            }
            api::Request::Describe(d) => {
                let ex = self
                    .engine
                    .load(&execution_id(&d.id)?)
                    .await
                    .map_err(engine_error)?;
                Ok(to_value(Description::from_execution(&ex)))
            }
            api::Request::History(h) => self.history(h).await.map(to_value),
            api::Request::List(l) => self.list(l).await.map(to_value),
        }
    }

    async fn start(
        &self,
        s: api::Start,
        arn: &str,
        opts: &AdvanceOptions,
    ) -> Result<StartAnswer, ApiError> {
        if s.wait_ms.is_some_and(|w| w > api::MAX_WAIT_MS) {
            return Err(ApiError::bad_request(format!(
                "wait_ms {} is over the bound of {} ms (the invocation limit): wait less, then describe it",
                s.wait_ms.unwrap_or(0),
                api::MAX_WAIT_MS
            )));
        }
        let component = match &s.component {
            Some(h) => Some(cairn_core::ComponentHash::parse(h).map_err(ApiError::bad_request)?),
            // The table's pointer (`cairn register`): one source of truth.
            None => self
                .engine
                .store()
                .workflow_component(&s.workflow)
                .await
                .map_err(engine_error)?,
        };
        let Some(component) = component else {
            return Err(engine_error(EngineError::NoComponentFor(s.workflow)));
        };
        let id = match &s.id {
            Some(id) => execution_id(id)?,
            None => ExecutionId::generate(
                &s.workflow,
                Timestamp::now_system(),
                self.started.elapsed().as_nanos() as u64,
            ),
        };
        let before = self.requests();
        let t_component = Instant::now();
        let precompiled = self
            .engine
            .component(&component)
            .await
            .map_err(engine_error)?
            .from_cache;
        let component_ms = t_component.elapsed().as_secs_f64() * 1e3;
        let started = self
            .engine
            .start(StartRequest {
                workflow: s.workflow,
                id: id.clone(),
                input: Payload::json(&s.input),
                component: Some(component),
                parent: None,
            })
            .await
            .map_err(engine_error)?;
        let created_ms = self.started.elapsed().as_secs_f64() * 1e3;
        let wire_ms = self.store_wire_ms();
        let t = Instant::now();
        let outcome = self
            .advance(&id, arn, opts, None)
            .await
            .map_err(engine_error)?;
        let advance_ms = t.elapsed().as_secs_f64() * 1e3;
        let waited_ms = match s.wait_ms {
            Some(ms) if !matches!(outcome, Advance::Finished { .. } | Advance::Parked(_)) => {
                Some(self.wait_for_end(&id, ms, opts).await?)
            }
            Some(_) => Some(0),
            None => None,
        };
        let ex = self.engine.load(&id).await.map_err(engine_error)?;
        Ok(StartAnswer {
            execution: Description::from_execution(&ex),
            created: started.created,
            outcome: outcome_name(&outcome).to_string(),
            waited_ms,
            timing: Some(json!({
                "first_write_since_process_start_ms": created_ms,
                "store_wire_since_process_start_at_first_write_ms": wire_ms,
                "component_ms": component_ms,
                // Deserialized from a .cwasm (packaged or cached), not compiled.
                "component_precompiled": precompiled,
                "advance_ms": advance_ms,
                "since_process_start_ms": self.started.elapsed().as_secs_f64() * 1e3,
            })),
            requests: Some(requests_delta(&before, &self.requests())),
        })
    }

    /// Polls the execution's meta, with backoff, until it has finished or
    /// parked, `wait_ms` has passed, or the invocation nears its deadline.
    /// Other invocations advance it (its stream records, wakes, the sweep).
    /// Returns how long it waited (ms).
    async fn wait_for_end(
        &self,
        id: &ExecutionId,
        wait_ms: u64,
        opts: &AdvanceOptions,
    ) -> Result<u64, ApiError> {
        let t = Instant::now();
        let mut until = Timestamp::now_system().plus(Duration::from_millis(wait_ms));
        if let Some(d) = opts.deadline {
            until = until.min(d);
        }
        let mut pause = FIRST_POLL;
        loop {
            let meta = self.engine.store().meta(id).await.map_err(engine_error)?;
            if meta.status.is_terminal() || meta.status == cairn_core::Status::Parked {
                break;
            }
            let now = Timestamp::now_system();
            if now >= until {
                break;
            }
            tokio::time::sleep(pause.min(until.since(now))).await;
            pause = (pause * 2).min(MAX_POLL);
        }
        Ok(t.elapsed().as_millis() as u64)
    }

    async fn signal(&self, s: api::Signal) -> Result<SignalAnswer, ApiError> {
        let id = execution_id(&s.id)?;
        let payload = Payload::json(&s.payload);
        match s.idempotency_key {
            Some(key) => {
                let item = self
                    .engine
                    .signal_once(&id, &s.name, payload, &key)
                    .await
                    .map_err(engine_error)?;
                Ok(SignalAnswer {
                    id: id.to_string(),
                    delivered: format!("signal.{key}"),
                    duplicate: item.is_none(),
                })
            }
            None => {
                let item = self
                    .engine
                    .signal(&id, &s.name, payload)
                    .await
                    .map_err(engine_error)?;
                Ok(SignalAnswer {
                    id: id.to_string(),
                    delivered: item.id,
                    duplicate: false,
                })
            }
        }
    }

    /// A page of one run's journal. Each page reads the run's journal once.
    async fn history(&self, h: api::History) -> Result<HistoryPage, ApiError> {
        let id = execution_id(&h.id)?;
        let limit = page_limit(h.limit)?;
        let cursor: Option<HistoryCursor> = h.cursor.as_deref().map(decode_cursor).transpose()?;
        let ex = self.engine.load(&id).await.map_err(engine_error)?;
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
            self.engine
                .store()
                .load_run(&id, run)
                .await
                .map_err(engine_error)?
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

    /// A page of executions, most recently updated first. The store lists
    /// from the most recent; a page skips what the previous pages showed
    /// (by the cursor's update time and id), so an execution updated while
    /// a caller pages moves to the front and is not shown again.
    async fn list(&self, l: api::List) -> Result<ListPage, ApiError> {
        let limit = page_limit(l.limit)?;
        let cursor: Option<ListCursor> = l.cursor.as_deref().map(decode_cursor).transpose()?;
        let depth = cursor.as_ref().map_or(0, |c| c.n) + limit + 1;
        if depth > MAX_LIST_DEPTH {
            return Err(ApiError::bad_request(format!(
                "list pages reach at most {MAX_LIST_DEPTH} executions deep: narrow the list by workflow or status"
            )));
        }
        let metas = self
            .engine
            .list(ListFilter {
                status: l.status.clone(),
                workflow: l.workflow.clone(),
                limit: depth,
            })
            .await
            .map_err(engine_error)?;
        let truncated = metas.len() >= depth;
        let after_cursor = |m: &cairn_core::ExecutionMeta| match &cursor {
            None => true,
            Some(c) => {
                let t = m.updated_at.as_millis();
                t < c.t || (t == c.t && m.id.as_str() > c.id.as_str())
            }
        };
        let mut page = Vec::new();
        let mut last_seen: Option<(usize, &cairn_core::ExecutionMeta)> = None;
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
}
