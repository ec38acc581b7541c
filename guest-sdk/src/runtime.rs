//! Workflow mode: the in-guest executor and [`Ctx`].
//!
//! The workflow's future is polled by a tiny single-threaded executor. Each
//! Cairn operation (activity, timer, signal, child) is a leaf future holding
//! a host handle. A leaf's first poll queues its operation and takes the next
//! handle (the host numbers operations 1, 2, 3... in the order they start).
//! When the workflow cannot progress, the executor calls the host's
//! `wait-any` once with the queued operations and every handle a leaf is
//! waiting on: one host call per step. The host answers from the journal
//! (replay) or by making progress (new ground), and the executor wakes the
//! leaf that finished. Any other call that could observe the operations
//! (cancel, history length, time, continue-as-new, the workflow's return)
//! sends the queue first, one operation per call.

use crate::__private::WitFailure;
use crate::__private::bindings::cairn::workflow::host;
use crate::__private::bindings::cairn::workflow::types::{
    Completion, LogLevel as WitLevel, Operation, Outcome,
};
use crate::Failure;
use crate::ops::{Activity, Child, Signal, Timer};
use crate::typed::{ActivityRef, QueryRef, SignalRef, WorkflowRef};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::cell::RefCell;
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake as TaskWake, Waker};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A map keyed by handle, as a vector sorted by handle. A step holds one
/// or two entries at a time (the leaves waiting, the completion not yet
/// taken), and handles are handed out in ascending order, so an insert is
/// a push and a lookup a binary search over a few entries: no hashing, and
/// an allocation that lasts. A fan-out of n operations costs a shift of
/// at most n entries per completion.
struct HandleMap<V>(Vec<(u32, V)>);

impl<V> Default for HandleMap<V> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<V> HandleMap<V> {
    /// Sets `handle`'s value, replacing any.
    fn insert(&mut self, handle: u32, value: V) {
        match self.0.binary_search_by_key(&handle, |(h, _)| *h) {
            Ok(at) => self.0[at].1 = value,
            Err(at) => self.0.insert(at, (handle, value)),
        }
    }

    /// Takes `handle`'s value out.
    fn remove(&mut self, handle: &u32) -> Option<V> {
        let at = self.0.binary_search_by_key(handle, |(h, _)| *h).ok()?;
        Some(self.0.remove(at).1)
    }
}

#[derive(Default)]
pub(crate) struct State {
    /// Completions delivered by the host, not yet taken by their leaf.
    completions: HandleMap<Completion>,
    /// Handles some leaf is waiting on, ascending: a step usually waits on
    /// one or two, so a sorted vector (whose allocation lasts) beats a set
    /// that allocates a node whenever it stops being empty.
    waiting: Vec<u32>,
    wakers: HandleMap<Waker>,
    /// Handles that were waiting when a cancel request arrived.
    cancelled: HandleMap<String>,
    /// The handles of the next `wait-any` (kept to reuse its allocation).
    awaited: Vec<u32>,
    /// The cancel request's reason, once delivered.
    cancel_reason: Option<String>,
    /// Query handlers, by name.
    queries: HashMap<String, QueryHandler>,
    /// Operations started since the last host call, sent with the next one.
    queued: Vec<Operation>,
    /// Handles given out so far (the last operation's handle).
    handles: u32,
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
    /// Calls an activity of this component with `input`:
    /// `ctx.call(activity!(withdraw), &transfer)`. Await the returned
    /// [`Activity`] (after optional `.retry(..)` / `.timeout(..)`) for its
    /// output. The reference fixes the input and output types, so a wrong
    /// one fails to compile (see [`crate::typed`]).
    pub fn call<I: Serialize, O: DeserializeOwned>(
        &self,
        activity: ActivityRef<I, O>,
        input: &I,
    ) -> Activity<O> {
        Activity::new(self.clone(), activity.name().into(), input)
    }

    /// Calls activity `name` with `input`. Await the returned [`Activity`]
    /// (after optional `.retry(..)` / `.timeout(..)`) for its output.
    #[deprecated(
        note = "a misspelt name or a wrong type fails only at run time: use ctx.call(activity!(name), &input), checked at compile time; this string form goes in the next release"
    )]
    pub fn activity<O: DeserializeOwned>(&self, name: &str, input: &impl Serialize) -> Activity<O> {
        Activity::new(self.clone(), name.to_string().into(), input)
    }

    /// A durable timer: the execution costs nothing while it waits.
    pub fn sleep(&self, duration: Duration) -> Timer {
        Timer::new(self.clone(), duration)
    }

    /// Waits for the next signal `signal` (its payload decoded as `T`):
    /// `ctx.wait_signal(APPROVE)` with `const APPROVE: SignalRef<bool> =
    /// SignalRef::new("approve")`. Add `.timeout(d)` to give up after `d`.
    pub fn wait_signal<T: DeserializeOwned>(&self, signal: SignalRef<T>) -> Signal<T> {
        Signal::new(self.clone(), signal.name())
    }

    /// Waits for the next signal `name` (JSON-decoded as `T`). Add
    /// `.timeout(d)` to give up after `d`.
    #[deprecated(
        note = "each wait names the signal and its type again: declare `const NAME: SignalRef<T> = SignalRef::new(\"name\")` once and use ctx.wait_signal(NAME); this string form goes in the next release"
    )]
    pub fn signal<T: DeserializeOwned>(&self, name: &str) -> Signal<T> {
        Signal::new(self.clone(), name)
    }

    /// Journal time: deterministic, the same on every replay.
    pub fn now(&self) -> SystemTime {
        self.flush();
        UNIX_EPOCH + Duration::from_millis(host::now_ms())
    }

    /// A deterministic random number (seeded per execution).
    pub fn random(&self) -> u64 {
        host::random_u64()
    }

    /// Entries in this run's journal so far. Long-lived loops should
    /// [`Ctx::continue_as_new`] before it grows large.
    pub fn history_len(&self) -> u32 {
        self.flush();
        host::history_len()
    }

    /// This execution's id.
    pub fn execution_id(&self) -> String {
        host::execution_id()
    }

    /// Starts child execution `id` of a workflow of this component with
    /// `input`: `ctx.start_child(workflow!(county_search), &id, &input)`;
    /// await it for the child's output. Cancelling this execution cancels
    /// the child. The reference fixes the input and output types.
    pub fn start_child<I: Serialize, O: DeserializeOwned>(
        &self,
        workflow: WorkflowRef<I, O>,
        id: &str,
        input: &I,
    ) -> Child<O> {
        Child::new(self.clone(), workflow.name(), id, input)
    }

    /// Starts child execution `id` of `workflow` (in this component) with
    /// `input`; await it for the child's output. Cancelling this execution
    /// cancels the child.
    #[deprecated(
        note = "a misspelt workflow or a wrong type fails only at run time: use ctx.start_child(workflow!(name), id, &input), checked at compile time; this string form goes in the next release"
    )]
    pub fn child<O: DeserializeOwned>(
        &self,
        workflow: &str,
        id: &str,
        input: &impl Serialize,
    ) -> Child<O> {
        Child::new(self.clone(), workflow, id, input)
    }

    /// Answers `query` with `handler` (called with the query's arguments,
    /// on a replayed instance: it must only read state):
    /// `ctx.handle_query(PROGRESS, move |()| Ok(progress.get()))` with
    /// `const PROGRESS: QueryRef<(), u32> = QueryRef::new("progress")`.
    pub fn handle_query<A, R, F>(&self, query: QueryRef<A, R>, handler: F)
    where
        A: DeserializeOwned,
        R: Serialize,
        F: Fn(A) -> Result<R, Failure> + 'static,
    {
        self.register_query(query.name(), handler);
    }

    /// Answers the query `name` with `handler` (called with the query's JSON
    /// arguments, on a replayed instance: it must only read state).
    #[deprecated(
        note = "declare `const NAME: QueryRef<A, R> = QueryRef::new(\"name\")` once and use ctx.handle_query(NAME, handler), which checks the handler's types; this string form goes in the next release"
    )]
    pub fn on_query<A, R, F>(&self, name: &str, handler: F)
    where
        A: DeserializeOwned,
        R: Serialize,
        F: Fn(A) -> Result<R, Failure> + 'static,
    {
        self.register_query(name, handler);
    }

    fn register_query<A, R, F>(&self, name: &str, handler: F)
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
    /// small (see [`Ctx::history_len`]): `ctx.continue_as_new(&next)?;`.
    ///
    /// Returns only if `input` cannot be serialized: a non-retryable
    /// failure, for the workflow to return (the run goes on otherwise: the
    /// host stops it at the call).
    pub fn continue_as_new(&self, input: &impl Serialize) -> Result<Infallible, Failure> {
        let bytes = serde_json::to_vec(input).map_err(|e| {
            Failure::non_retryable(format!(
                "continue-as-new: the next run's input cannot be serialized as JSON: {e}"
            ))
        })?;
        self.flush();
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

    /// Queues `op` for the next host call; its handle.
    pub(crate) fn start(&self, op: Operation) -> u32 {
        let mut st = self.state.borrow_mut();
        st.queued.push(op);
        st.handles += 1;
        st.handles
    }

    /// Sends the queued operations one call each (when no `wait-any` is
    /// about to carry them).
    pub(crate) fn flush(&self) {
        let queued = std::mem::take(&mut self.state.borrow_mut().queued);
        for op in queued {
            match op {
                Operation::Activity(a) => host::schedule_activity(&a.name, &a.input, a.options),
                Operation::Timer(ms) => host::start_timer(ms),
                Operation::Signal(name) => host::wait_signal(&name),
                Operation::Child(c) => host::start_child(&c.workflow, &c.id, &c.input),
            };
        }
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
            self.flush();
            host::cancel(handle);
            return Poll::Ready(Err(Failure::cancelled(format!(
                "execution cancelled: {reason}"
            ))));
        }
        if let Err(at) = st.waiting.binary_search(&handle) {
            st.waiting.insert(at, handle);
        }
        st.wakers.insert(handle, cx.waker().clone());
        Poll::Pending
    }

    /// A leaf dropped before it finished.
    pub(crate) fn forget(&self, handle: u32) {
        let mut st = self.state.borrow_mut();
        st.waiting.retain(|h| *h != handle);
        st.wakers.remove(&handle);
        let done =
            st.completions.remove(&handle).is_some() || st.cancelled.remove(&handle).is_some();
        drop(st);
        if !done {
            self.flush();
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
        let mut guard = ctx.state.borrow_mut();
        let st = &mut *guard;
        st.awaited.clear();
        st.awaited.extend_from_slice(&st.waiting);
        if st.awaited.is_empty() {
            return Err(Failure::non_retryable(
                "the workflow is waiting on something that is not a Cairn operation (a channel, a \
                 future from another runtime...): await only ctx.call, ctx.sleep, ctx.wait_signal, \
                 ctx.start_child and their combinations",
            ));
        }
        // The queued operations travel with the wait; the buffers keep
        // their allocations for the next step.
        let outcome = host::wait_any(&st.queued, &st.awaited);
        st.queued.clear();
        drop(guard);
        match outcome {
            Outcome::Completed((handle, completion)) => {
                let mut st = ctx.state.borrow_mut();
                st.waiting.retain(|h| *h != handle);
                st.completions.insert(handle, completion);
                let w = st.wakers.remove(&handle);
                drop(st);
                if let Some(w) = w {
                    w.wake();
                }
            }
            Outcome::Query(q) => {
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
            Outcome::CancelRequested(reason) => {
                let mut st = ctx.state.borrow_mut();
                st.cancel_reason = Some(reason.clone());
                let waiting = std::mem::take(&mut st.waiting);
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
    let output = block_on(&ctx, f(ctx.clone(), input));
    // Operations started and never awaited still start, as they always did.
    ctx.flush();
    let output = output??;
    serde_json::to_vec(&output).map_err(|e| {
        Failure::non_retryable(format!(
            "workflow '{name}' output cannot be serialized: {e}"
        ))
        .into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FailureKind;

    #[test]
    fn continue_as_new_with_an_input_that_does_not_serialize_returns_a_failure() {
        let ctx = Ctx {
            state: Rc::new(RefCell::new(State::default())),
        };
        // JSON object keys are strings: a map keyed by pairs does not serialize.
        let next: HashMap<(u8, u8), u8> = HashMap::from([((1, 2), 3)]);
        // Reaching the host call would panic here (off wasm32 the WIT
        // imports are unreachable stubs): the failure must come first.
        let failure = ctx.continue_as_new(&next).unwrap_err();
        assert_eq!(failure.kind, FailureKind::NonRetryable);
        assert!(
            failure
                .message
                .contains("the next run's input cannot be serialized"),
            "{failure}"
        );
    }
}
