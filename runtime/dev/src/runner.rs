//! What moves executions forward in `cairn dev`: advances pushed by the
//! API (start, signal, cancel), by the wake loop (timers and retries due)
//! and by the resume at start, one advance per execution at a time.
//!
//! An advance asked for while one of the same execution is in flight is
//! not run beside it (it would only conflict): the running one goes round
//! once more when it ends, so what the second push brought (a signal that
//! landed after its load) is taken. Every advance runs in its own task: a
//! caller that goes away (an HTTP client that hangs up) does not cut it.

use crate::Metrics;
use crate::otel::Traces;
use cairn_core::{ExecutionId, ListFilter, Status, Timestamp};
use cairn_engine::{Advance, AdvanceOptions, Engine, EngineError, EngineEvent, Observer, Pusher};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, broadcast};

/// The wake loop looks at the store at least this often, for wakes written
/// by other processes (a `cairn start` on the same SQLite file).
const MAX_SLEEP: Duration = Duration::from_secs(2);

/// Something that changed, for the console's live updates.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// The execution.
    pub id: String,
    /// What happened: an entry's kind (`activity-completed`...), or
    /// `suspended`, `advanced`, `delivered`.
    pub what: String,
}

/// The executions in flight and who waits on them.
pub struct Runner {
    /// The engine, observed by the runner (metrics and changes).
    pub(crate) engine: Engine,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) read_only: bool,
    /// Execution → "advance again when done".
    inflight: Mutex<HashMap<ExecutionId, bool>>,
    wake: Notify,
    changes: broadcast::Sender<Change>,
    stopped: AtomicBool,
    stop_notify: Notify,
}

/// The engine's own pushes, sent to the runner (see [`Pusher`]).
struct Pushes(Weak<Runner>);

impl Pusher for Pushes {
    fn push(&self, id: ExecutionId) {
        if let Some(runner) = self.0.upgrade() {
            runner.push(id);
        }
    }
}

/// Forwards the engine's events to the metrics, the traces and the change
/// feed.
struct Watch {
    metrics: Arc<Metrics>,
    traces: Option<Arc<Traces>>,
    changes: broadcast::Sender<Change>,
}

impl Observer for Watch {
    fn event(&self, id: &ExecutionId, event: &EngineEvent) {
        self.metrics.event(id, event);
        if let Some(t) = &self.traces {
            t.event(id, event);
        }
        let what = match event {
            EngineEvent::Appended(e) => e.event.kind().to_string(),
            EngineEvent::Suspended { .. } => "suspended".into(),
            _ => return,
        };
        let _ = self.changes.send(Change {
            id: id.to_string(),
            what,
        });
    }
}

/// Removes an execution from the in-flight set if its task is dropped.
struct InflightGuard<'a> {
    runner: &'a Runner,
    id: &'a ExecutionId,
    done: bool,
}

impl Drop for InflightGuard<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.runner.inflight_lock().remove(self.id);
        }
    }
}

/// An advance's outcome as the API names it.
pub fn outcome_name(a: &Advance) -> &'static str {
    match a {
        Advance::Finished { status, .. } => status.as_str(),
        Advance::Suspended { .. } => "waiting",
        Advance::Conflict { .. } => "conflict",
        Advance::Parked(_) => "parked",
        Advance::Yielded => "yielded",
    }
}

impl Runner {
    /// A runner over `engine` (which it observes), with spans for its
    /// advances when `traces` is set.
    pub fn new(
        engine: Engine,
        metrics: Arc<Metrics>,
        traces: Option<Arc<Traces>>,
        read_only: bool,
    ) -> Arc<Self> {
        let (changes, _) = broadcast::channel(1024);
        let engine = engine.with_observer(Arc::new(Watch {
            metrics: metrics.clone(),
            traces,
            changes: changes.clone(),
        }));
        Arc::new_cyclic(|me| Self {
            // Children, parents told by a child, children asked to cancel:
            // advanced like every other push, in the in-flight set.
            engine: engine.with_pusher(Arc::new(Pushes(me.clone()))),
            metrics,
            read_only,
            inflight: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            changes,
            stopped: AtomicBool::new(false),
            stop_notify: Notify::new(),
        })
    }

    fn inflight_lock(&self) -> std::sync::MutexGuard<'_, HashMap<ExecutionId, bool>> {
        self.inflight.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Live changes, for server-sent events and waiting starts.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    pub(crate) fn publish(&self, id: &ExecutionId, what: &str) {
        let _ = self.changes.send(Change {
            id: id.to_string(),
            what: what.into(),
        });
    }

    /// Whether a stop was asked for.
    pub fn stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    /// Resolves once a stop is asked for.
    pub async fn until_stopped(&self) {
        let notified = self.stop_notify.notified();
        if self.stopped() {
            return;
        }
        notified.await;
    }

    /// No new advances from now on; waiting requests and event streams end.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.stop_notify.notify_waiters();
        self.wake.notify_one();
    }

    /// Waits up to `limit` for the advances in flight to end.
    pub async fn drain(&self, limit: Duration) {
        let t = Instant::now();
        loop {
            let n = self.inflight_lock().len();
            if n == 0 {
                return;
            }
            if t.elapsed() >= limit {
                tracing::warn!(
                    in_flight = n,
                    "stopping with advances in flight: the next start resumes them"
                );
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Advances `id` in its own task and waits for the outcome; `None` if
    /// an advance of it was already in flight (that one goes round again).
    pub async fn advance(
        self: &Arc<Self>,
        id: &ExecutionId,
    ) -> Result<Option<Advance>, EngineError> {
        let me = self.clone();
        let id = id.clone();
        match tokio::spawn(async move { me.run(&id, true).await }).await {
            Ok(r) => r,
            Err(e) => Err(EngineError::Corrupt(format!("an advance task failed: {e}"))),
        }
    }

    /// Advances `id` in the background.
    pub fn push(self: &Arc<Self>, id: ExecutionId) {
        let me = self.clone();
        tokio::spawn(async move {
            if let Err(e) = me.run(&id, true).await {
                tracing::warn!(execution = %id, "advance failed: {e}");
            }
        });
    }

    /// Advances `id` in the background unless an advance of it is in flight.
    fn push_if_idle(self: &Arc<Self>, id: ExecutionId) {
        let me = self.clone();
        tokio::spawn(async move {
            if let Err(e) = me.run(&id, false).await {
                tracing::warn!(execution = %id, "advance failed: {e}");
            }
        });
    }

    async fn run(&self, id: &ExecutionId, again: bool) -> Result<Option<Advance>, EngineError> {
        if self.stopped() || self.read_only {
            return Ok(None);
        }
        {
            let mut m = self.inflight_lock();
            if let Some(a) = m.get_mut(id) {
                *a |= again;
                return Ok(None);
            }
            m.insert(id.clone(), false);
        }
        let mut guard = InflightGuard {
            runner: self,
            id,
            done: false,
        };
        loop {
            let t = Instant::now();
            let r = self.engine.advance(id, AdvanceOptions::default()).await;
            let outcome = r.as_ref().map_or("error", outcome_name);
            let took = t.elapsed();
            self.metrics.advance(outcome, took);
            tracing::debug!(execution = %id, outcome, ms = took.as_secs_f64() * 1e3, "advanced");
            if let Ok(Advance::Suspended {
                wake_at: Some(_), ..
            }) = &r
            {
                self.wake.notify_one();
            }
            self.publish(id, "advanced");
            let go_on = {
                let mut m = self.inflight_lock();
                let again = m.get_mut(id).map(std::mem::take).unwrap_or(false);
                let go_on =
                    !self.stopped() && (matches!(r, Ok(Advance::Yielded)) || (again && r.is_ok()));
                if !go_on {
                    m.remove(id);
                    guard.done = true;
                }
                go_on
            };
            if !go_on {
                return r.map(Some);
            }
        }
    }

    /// Pushes the executions a crash left running, and the waiting ones
    /// whose inbox holds something not yet taken (a signal written by a
    /// process that died before advancing).
    pub async fn resume_interrupted(self: &Arc<Self>) {
        let store = self.engine.store();
        let running = store
            .list(ListFilter {
                status: vec![Status::Running],
                workflow: None,
                limit: 0,
            })
            .await;
        match running {
            Ok(list) => {
                if !list.is_empty() {
                    tracing::info!(count = list.len(), "resuming interrupted executions");
                }
                for m in list {
                    self.push(m.id);
                }
            }
            Err(e) => tracing::warn!("cannot list interrupted executions: {e}"),
        }
        let waiting = store
            .list(ListFilter {
                status: vec![Status::Waiting],
                workflow: None,
                limit: 10_000,
            })
            .await
            .unwrap_or_default();
        for m in waiting {
            if let Ok(ex) = self.engine.load(&m.id).await
                && !ex.inbox.is_empty()
            {
                self.push(m.id);
            }
        }
    }

    /// Fires timers and retries at their time: advances what is due,
    /// then sleeps until the next due time (at most [`MAX_SLEEP`]), woken
    /// early when an advance suspends with a wake.
    pub async fn wake_loop(self: &Arc<Self>) {
        let store = self.engine.store().clone();
        while !self.stopped() {
            let notified = self.wake.notified();
            // One read gives both what is due now (pushed) and the next
            // due time of an execution not in flight (the sleep, which
            // is at most MAX_SLEEP, so nothing later is read): up to
            // 1,000 due executions and one more than those in flight.
            let now = Timestamp::now_system();
            let horizon = now.plus(MAX_SLEEP);
            let limit = 1000 + self.inflight_lock().len() + 1;
            let mut next = None;
            match store.due(horizon, limit).await {
                Ok(due) => {
                    // A full read may have left due executions unread:
                    // look again soon, as for one that is due now.
                    if due.len() >= limit {
                        next = Some(now);
                    }
                    for (id, at) in due {
                        if at <= now {
                            tracing::debug!(execution = %id, due = %at, "wake due");
                            self.push_if_idle(id);
                        } else if next.is_none() && !self.inflight_lock().contains_key(&id) {
                            next = Some(at);
                        }
                    }
                }
                Err(e) => tracing::warn!("cannot read due wakes: {e}"),
            }
            let now = Timestamp::now_system();
            let sleep = match next {
                Some(t) if t <= now => Duration::from_millis(5),
                Some(t) => t.since(now).min(MAX_SLEEP),
                None => MAX_SLEEP,
            };
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = notified => {}
            }
        }
    }

    /// Waits until `id` has finished or parked, or `until` passes, or the
    /// server stops; woken by its changes (and looking at least every
    /// second). Returns how long it waited.
    pub async fn wait_for_end(&self, id: &ExecutionId, until: Instant) -> Result<u64, EngineError> {
        let t = Instant::now();
        let mut rx = self.subscribe();
        loop {
            let meta = self.engine.store().meta(id).await?;
            if meta.status.is_terminal() || meta.status == Status::Parked || self.stopped() {
                break;
            }
            let now = Instant::now();
            if now >= until {
                break;
            }
            let pause = (until - now).min(Duration::from_secs(1));
            let deadline = tokio::time::sleep(pause);
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    _ = &mut deadline => break,
                    _ = self.until_stopped() => break,
                    c = rx.recv() => match c {
                        Ok(c) if c.id == id.as_str() => break,
                        Ok(_) => {}
                        Err(broadcast::error::RecvError::Lagged(_)) => break,
                        Err(broadcast::error::RecvError::Closed) => break,
                    },
                }
            }
        }
        Ok(t.elapsed().as_millis() as u64)
    }
}
