//! The leaf futures: activities, timers, signals.

use crate::__private::bindings::cairn::workflow::types::{
    ActivityCall, ActivityOptions, ChildCall, Completion, Operation, RetryPolicy as WitRetry,
};
use crate::runtime::Ctx;
use crate::{Either, Failure, select};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::borrow::Cow;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// Exponential backoff between activity attempts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Delay before the second attempt.
    pub initial_interval: Duration,
    /// Each further delay is the previous one times this.
    pub backoff_coefficient: f64,
    /// Upper bound of a delay.
    pub maximum_interval: Duration,
    /// Attempts in all, the first included; 0 means unlimited.
    pub maximum_attempts: u32,
}

impl Default for RetryPolicy {
    /// 1 s, doubling, at most 100 s apart, unlimited attempts (the host's default too).
    fn default() -> Self {
        Self {
            initial_interval: Duration::from_secs(1),
            backoff_coefficient: 2.0,
            maximum_interval: Duration::from_secs(100),
            maximum_attempts: 0,
        }
    }
}

impl RetryPolicy {
    /// Never retry: one attempt.
    pub fn no_retry() -> Self {
        Self {
            maximum_attempts: 1,
            ..Self::default()
        }
    }

    /// At most `n` attempts in all.
    pub fn attempts(n: u32) -> Self {
        Self {
            maximum_attempts: n,
            ..Self::default()
        }
    }

    /// Sets the first delay.
    pub fn initial_interval(mut self, d: Duration) -> Self {
        self.initial_interval = d;
        self
    }

    /// Sets the growth factor.
    pub fn backoff(mut self, coefficient: f64) -> Self {
        self.backoff_coefficient = coefficient;
        self
    }

    /// Sets the largest delay.
    pub fn maximum_interval(mut self, d: Duration) -> Self {
        self.maximum_interval = d;
        self
    }
}

enum Leaf {
    /// Not yet asked for: the operation starts on first poll, so the order
    /// of operations is the order in which the workflow first awaits them.
    /// (Started means queued: the executor sends the operations of a step
    /// with its `wait-any`, one host call per step.)
    Unstarted,
    Started(u32),
    Done,
}

impl Leaf {
    fn poll(
        &mut self,
        ctx: &Ctx,
        cx: &mut Context<'_>,
        start: impl FnOnce() -> Operation,
    ) -> Poll<Result<Completion, Failure>> {
        let handle = match *self {
            Leaf::Unstarted => {
                let h = ctx.start(start());
                *self = Leaf::Started(h);
                h
            }
            Leaf::Started(h) => h,
            Leaf::Done => panic!("a Cairn operation was polled after it finished"),
        };
        let r = ctx.poll_handle(handle, cx);
        if r.is_ready() {
            *self = Leaf::Done;
        }
        r
    }

    fn drop_with(&mut self, ctx: &Ctx) {
        if let Leaf::Started(h) = *self {
            ctx.forget(h);
        }
    }
}

/// A call to an activity; await it for the output.
#[must_use = "an activity runs only when awaited"]
pub struct Activity<O> {
    ctx: Ctx,
    /// Borrowed for the typed references (`&'static str`): the one copy
    /// is the one the host call takes.
    name: Cow<'static, str>,
    input: Result<Vec<u8>, String>,
    options: ActivityOptions,
    leaf: Leaf,
    _out: PhantomData<fn() -> O>,
}

impl<O: DeserializeOwned> Activity<O> {
    pub(crate) fn new(ctx: Ctx, name: Cow<'static, str>, input: &impl Serialize) -> Self {
        Self {
            ctx,
            name,
            input: serde_json::to_vec(input).map_err(|e| e.to_string()),
            options: ActivityOptions {
                retry: None,
                timeout_ms: None,
            },
            leaf: Leaf::Unstarted,
            _out: PhantomData,
        }
    }

    /// Retry failed attempts by `policy` (default: the host's policy).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.options.retry = Some(WitRetry {
            initial_interval_ms: policy.initial_interval.as_millis() as u64,
            backoff_coefficient: policy.backoff_coefficient,
            maximum_interval_ms: policy.maximum_interval.as_millis() as u64,
            maximum_attempts: policy.maximum_attempts,
        });
        self
    }

    /// Limit each attempt to `timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.options.timeout_ms = Some(timeout.as_millis() as u64);
        self
    }
}

impl<O: DeserializeOwned> Future for Activity<O> {
    type Output = Result<O, Failure>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY-free: Activity is Unpin (all fields are).
        let this = self.get_mut();
        if let Err(e) = &this.input {
            return Poll::Ready(Err(Failure::non_retryable(format!(
                "the input of activity '{}' cannot be serialized: {e}",
                this.name
            ))));
        }
        let (name, input, options) = (&this.name, &mut this.input, this.options);
        let r = this.leaf.poll(&this.ctx, cx, || {
            Operation::Activity(ActivityCall {
                name: name.to_string(),
                input: input.as_mut().map(std::mem::take).unwrap_or_default(),
                options,
            })
        });
        r.map(|r| match r? {
            Completion::Activity(Ok(bytes)) => {
                decode_output(&bytes, format_args!("activity '{}'", this.name))
            }
            Completion::Activity(Err(f)) => Err(Failure::from_wit(f)),
            _ => Err(Failure::non_retryable(
                "the host answered an activity with another kind of completion",
            )),
        })
    }
}

impl<O> Drop for Activity<O> {
    fn drop(&mut self) {
        self.leaf.drop_with(&self.ctx);
    }
}

/// Decodes the output of `what` (an activity, a child) as an `O`.
fn decode_output<O: DeserializeOwned>(
    bytes: &[u8],
    what: std::fmt::Arguments<'_>,
) -> Result<O, Failure> {
    serde_json::from_slice(bytes).map_err(|e| {
        Failure::non_retryable(format!(
            "the output of {what} is not a valid {}: {e}",
            std::any::type_name::<O>()
        ))
    })
}

/// A child execution; await it for the child's output (or its failure).
#[must_use = "a child starts only when awaited"]
pub struct Child<O> {
    ctx: Ctx,
    workflow: String,
    id: String,
    input: Result<Vec<u8>, String>,
    leaf: Leaf,
    _out: PhantomData<fn() -> O>,
}

impl<O: DeserializeOwned> Child<O> {
    pub(crate) fn new(ctx: Ctx, workflow: &str, id: &str, input: &impl Serialize) -> Self {
        Self {
            ctx,
            workflow: workflow.into(),
            id: id.into(),
            input: serde_json::to_vec(input).map_err(|e| e.to_string()),
            leaf: Leaf::Unstarted,
            _out: PhantomData,
        }
    }
}

impl<O: DeserializeOwned> Future for Child<O> {
    type Output = Result<O, Failure>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Err(e) = &this.input {
            return Poll::Ready(Err(Failure::non_retryable(format!(
                "the input of child {} cannot be serialized: {e}",
                this.id
            ))));
        }
        let (workflow, id, input) = (&this.workflow, &this.id, &mut this.input);
        this.leaf
            .poll(&this.ctx, cx, || {
                Operation::Child(ChildCall {
                    workflow: workflow.clone(),
                    id: id.clone(),
                    input: input.as_mut().map(std::mem::take).unwrap_or_default(),
                })
            })
            .map(|r| match r? {
                Completion::Child(Ok(bytes)) => {
                    decode_output(&bytes, format_args!("child {}", this.id))
                }
                Completion::Child(Err(f)) => Err(Failure::from_wit(f)),
                _ => Err(Failure::non_retryable(
                    "the host answered a child with another kind of completion",
                )),
            })
    }
}

impl<O> Drop for Child<O> {
    fn drop(&mut self) {
        self.leaf.drop_with(&self.ctx);
    }
}

/// A durable timer; await it (`Err` only if the execution is cancelled).
#[must_use = "a timer starts only when awaited"]
pub struct Timer {
    ctx: Ctx,
    duration_ms: u64,
    leaf: Leaf,
}

impl Timer {
    pub(crate) fn new(ctx: Ctx, duration: Duration) -> Self {
        Self {
            ctx,
            duration_ms: duration.as_millis() as u64,
            leaf: Leaf::Unstarted,
        }
    }
}

impl Future for Timer {
    type Output = Result<(), Failure>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let ms = this.duration_ms;
        this.leaf
            .poll(&this.ctx, cx, || Operation::Timer(ms))
            .map(|r| r.map(|_| ()))
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.leaf.drop_with(&self.ctx);
    }
}

/// Waits for the next signal with a name; yields its JSON-decoded payload.
#[must_use = "a signal wait starts only when awaited"]
pub struct Signal<T> {
    ctx: Ctx,
    name: String,
    leaf: Leaf,
    _t: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> Signal<T> {
    pub(crate) fn new(ctx: Ctx, name: &str) -> Self {
        Self {
            ctx,
            name: name.into(),
            leaf: Leaf::Unstarted,
            _t: PhantomData,
        }
    }

    /// Gives up after `d`: yields `Ok(None)` on timeout.
    pub fn timeout(self, d: Duration) -> SignalWithTimeout<T> {
        let timer = self.ctx.sleep(d);
        SignalWithTimeout {
            inner: Box::pin(select(self, timer)),
        }
    }
}

impl<T: DeserializeOwned> Future for Signal<T> {
    type Output = Result<T, Failure>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let name = &this.name;
        this.leaf
            .poll(&this.ctx, cx, || Operation::Signal(name.clone()))
            .map(|r| match r? {
                Completion::Signal(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                    Failure::non_retryable(format!(
                        "the payload of signal '{}' is not a valid {}: {e}",
                        this.name,
                        std::any::type_name::<T>()
                    ))
                }),
                _ => Err(Failure::non_retryable(
                    "the host answered a signal wait with another kind of completion",
                )),
            })
    }
}

impl<T> Drop for Signal<T> {
    fn drop(&mut self) {
        self.leaf.drop_with(&self.ctx);
    }
}

/// A signal wait with a timeout: `Ok(Some(payload))`, or `Ok(None)` when
/// the timeout fired first.
#[must_use = "a signal wait starts only when awaited"]
pub struct SignalWithTimeout<T> {
    inner: Pin<Box<crate::combinators::Select<Signal<T>, Timer>>>,
}

impl<T: DeserializeOwned> Future for SignalWithTimeout<T> {
    type Output = Result<Option<T>, Failure>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx).map(|e| match e {
            Either::Left(payload) => payload.map(Some),
            Either::Right(timer) => timer.map(|()| None),
        })
    }
}
