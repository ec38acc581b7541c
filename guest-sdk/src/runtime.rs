//! Workflow mode: the in-guest executor and [`Ctx`].
//!
//! The workflow's future is polled by a tiny single-threaded executor. Each
//! Cairn operation (activity, timer, signal) is a leaf future holding a host
//! handle. When the workflow cannot progress, the executor calls the host's
//! `wait-any` with every handle a leaf is waiting on; the host answers from
//! the journal (replay) or by making progress (new ground), and the executor
//! wakes the leaf that finished.

use crate::__private::WitFailure;
use crate::__private::bindings::cairn::workflow::host;
use crate::__private::bindings::cairn::workflow::types::{Completion, LogLevel as WitLevel, Wake};
use crate::Failure;
use crate::ops::{Activity, Child, Signal, Timer};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake as TaskWake, Waker};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Default)]
pub(crate) struct State {
    /// Completions delivered by the host, not yet taken by their leaf.
    completions: HashMap<u32, Completion>,
    /// Handles some leaf is waiting on.
    waiting: BTreeSet<u32>,
    wakers: HashMap<u32, Waker>,
    /// Handles that were waiting when a cancel request arrived.
    cancelled: HashMap<u32, String>,
    /// The cancel request's reason, once delivered.
    cancel_reason: Option<String>,
    /// Query handlers, by name.
    queries: HashMap<String, QueryHandler>,
}

type QueryHandler = Box<dyn Fn(&[u8]) -> Result<Vec<u8>, Failure>>;

/// The workflow's handle on the host: start activities, timers and signal
/// waits, read journal time and deterministic random numbers, log.
///
/// Cheap to clone; every clone talks to the same execution.
#[derive(Clone)]
pub struct Ctx {
    pub(crate) state: Rc<RefCell<State>>,
}

/// Severity of a workflow log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// Very detailed.
    Trace,
    /// Detailed.
    Debug,
    /// Normal.
    Info,
    /// Something looks wrong.
    Warn,
    /// Something failed.
    Error,
}

impl Ctx {
    /// Calls activity `name` with `input`. Await the returned [`Activity`]
    /// (after optional `.retry(..)` / `.timeout(..)`) for its output.
    pub fn activity<O: DeserializeOwned>(&self, name: &str, input: &impl Serialize) -> Activity<O> {
        Activity::new(self.clone(), name, input)
    }

    /// A durable timer: the execution costs nothing while it waits.
    pub fn sleep(&self, duration: Duration) -> Timer {
        Timer::new(self.clone(), duration)
    }

    /// Waits for the next signal `name` (JSON-decoded as `T`). Add
    /// `.timeout(d)` to give up after `d`.
    pub fn signal<T: DeserializeOwned>(&self, name: &str) -> Signal<T> {
        Signal::new(self.clone(), name)
    }

    /// Journal time: deterministic, the same on every replay.
    pub fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(host::now_ms())
    }

    /// A deterministic random number (seeded per execution).
    pub fn random(&self) -> u64 {
        host::random_u64()
    }

    /// Entries in this run's journal so far. Long-lived loops should
    /// [`Ctx::continue_as_new`] before it grows large.
    pub fn history_len(&self) -> u32 {
        host::history_len()
    }

    /// This execution's id.
    pub fn execution_id(&self) -> String {
        host::execution_id()
    }

    /// Starts child execution `id` of `workflow` (in this component) with
    /// `input`; await it for the child's output. Cancelling this execution
    /// cancels the child.
    pub fn child<O: DeserializeOwned>(
        &self,
        workflow: &str,
        id: &str,
        input: &impl Serialize,
    ) -> Child<O> {
        Child::new(self.clone(), workflow, id, input)
    }

    /// Answers the query `name` with `handler` (called with the query's JSON
    /// arguments, on a replayed instance: it must only read state).
    pub fn on_query<A, R, F>(&self, name: &str, handler: F)
    where
        A: DeserializeOwned,
        R: Serialize,
        F: Fn(A) -> Result<R, Failure> + 'static,
    {
        let name_owned = name.to_string();
        let h: QueryHandler = Box::new(move |args: &[u8]| {
            let args: A = serde_json::from_slice(args).map_err(|e| {
                Failure::non_retryable(format!(
                    "the arguments of query '{name_owned}' are not valid: {e}"
                ))
            })?;
            let out = handler(args)?;
            serde_json::to_vec(&out)
                .map_err(|e| Failure::non_retryable(format!("query '{name_owned}' result: {e}")))
        });
        self.state.borrow_mut().queries.insert(name.to_string(), h);
    }

    /// Ends this run and starts the next run of this same execution with
    /// `input`, on a fresh journal. Use it to keep long-lived loops' journals
    /// small (see [`Ctx::history_len`]). Does not return.
    pub fn continue_as_new(&self, input: &impl Serialize) -> ! {
        let bytes = serde_json::to_vec(input).expect("the next run's input serializes");
        host::continue_as_new(&bytes);
        unreachable!("the host stops the workflow at continue-as-new")
    }

    /// The reason, if this execution was asked to cancel.
    pub fn cancel_requested(&self) -> Option<String> {
        self.state.borrow().cancel_reason.clone()
    }

    /// Logs a line (printed by the host, silent while replaying).
    pub fn log(&self, level: LogLevel, message: impl AsRef<str>) {
        let level = match level {
            LogLevel::Trace => WitLevel::Trace,
            LogLevel::Debug => WitLevel::Debug,
            LogLevel::Info => WitLevel::Info,
            LogLevel::Warn => WitLevel::Warn,
            LogLevel::Error => WitLevel::Error,
        };
        host::log(level, message.as_ref());
    }

    /// Logs at info level.
    pub fn info(&self, message: impl AsRef<str>) {
        self.log(LogLevel::Info, message);
    }

    /// Logs at warn level.
    pub fn warn(&self, message: impl AsRef<str>) {
        self.log(LogLevel::Warn, message);
    }

    /// Polls a leaf: its completion if delivered, else registers the wait.
    pub(crate) fn poll_handle(
        &self,
        handle: u32,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Completion, Failure>> {
        let mut st = self.state.borrow_mut();
        if let Some(c) = st.completions.remove(&handle) {
            return Poll::Ready(Ok(c));
        }
        if let Some(reason) = st.cancelled.remove(&handle) {
            drop(st);
            host::cancel(handle);
            return Poll::Ready(Err(Failure::cancelled(format!(
                "execution cancelled: {reason}"
            ))));
        }
        st.waiting.insert(handle);
        st.wakers.insert(handle, cx.waker().clone());
        Poll::Pending
    }

    /// A leaf dropped before it finished.
    pub(crate) fn forget(&self, handle: u32) {
        let mut st = self.state.borrow_mut();
        st.waiting.remove(&handle);
        st.wakers.remove(&handle);
        let done =
            st.completions.remove(&handle).is_some() || st.cancelled.remove(&handle).is_some();
        drop(st);
        if !done {
            host::cancel(handle);
        }
    }
}

struct RootWaker(AtomicBool);

impl TaskWake for RootWaker {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::Relaxed);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Runs `fut` to completion, asking the host for completions whenever it
/// cannot progress.
fn block_on<T>(ctx: &Ctx, fut: impl Future<Output = T>) -> Result<T, Failure> {
    let root = Arc::new(RootWaker(AtomicBool::new(true)));
    let waker = Waker::from(root.clone());
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if root.0.swap(false, Ordering::Relaxed) {
            if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
                return Ok(v);
            }
            continue;
        }
        let handles: Vec<u32> = ctx.state.borrow().waiting.iter().copied().collect();
        if handles.is_empty() {
            return Err(Failure::non_retryable(
                "the workflow is waiting on something that is not a Cairn operation (a channel, a \
                 future from another runtime...): await only ctx.activity, ctx.sleep, ctx.signal \
                 and their combinations",
            ));
        }
        match host::wait_any(&handles) {
            Wake::Completed((handle, completion)) => {
                let mut st = ctx.state.borrow_mut();
                st.waiting.remove(&handle);
                st.completions.insert(handle, completion);
                let w = st.wakers.remove(&handle);
                drop(st);
                if let Some(w) = w {
                    w.wake();
                }
            }
            Wake::Query(q) => {
                let answer = {
                    let st = ctx.state.borrow();
                    match st.queries.get(&q.name) {
                        Some(h) => h(&q.args),
                        None => {
                            let mut known: Vec<&str> =
                                st.queries.keys().map(String::as_str).collect();
                            known.sort();
                            Err(Failure::non_retryable(format!(
                                "this workflow answers no query named '{}' (it answers: {})",
                                q.name,
                                if known.is_empty() {
                                    "none".into()
                                } else {
                                    known.join(", ")
                                }
                            )))
                        }
                    }
                };
                let answer: Result<Vec<u8>, WitFailure> = answer.map_err(Into::into);
                host::answer_query(answer.as_deref());
                unreachable!("the host stops the workflow after a query");
            }
            Wake::CancelRequested(reason) => {
                let mut st = ctx.state.borrow_mut();
                st.cancel_reason = Some(reason.clone());
                let waiting: HashSet<u32> = std::mem::take(&mut st.waiting).into_iter().collect();
                let wakers: Vec<Waker> =
                    waiting.iter().filter_map(|h| st.wakers.remove(h)).collect();
                for h in waiting {
                    st.cancelled.insert(h, reason.clone());
                }
                drop(st);
                wakers.into_iter().for_each(Waker::wake);
            }
        }
    }
}

#[doc(hidden)]
pub fn run_workflow<I, O, F, Fut>(name: &str, input: Vec<u8>, f: F) -> Result<Vec<u8>, WitFailure>
where
    I: DeserializeOwned,
    O: Serialize,
    F: FnOnce(Ctx, I) -> Fut,
    Fut: Future<Output = Result<O, Failure>>,
{
    let input: I = serde_json::from_slice(&input).map_err(|e| {
        Failure::non_retryable(format!(
            "the input of workflow '{name}' is not a valid {}: {e}",
            std::any::type_name::<I>()
        ))
    })?;
    let ctx = Ctx {
        state: Rc::new(RefCell::new(State::default())),
    };
    let output = block_on(&ctx, f(ctx.clone(), input))??;
    serde_json::to_vec(&output).map_err(|e| {
        Failure::non_retryable(format!(
            "workflow '{name}' output cannot be serialized: {e}"
        ))
        .into()
    })
}
