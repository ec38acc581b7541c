//! Activity mode: one attempt of one activity, with real WASI.

use crate::__private::{ActivityInfo, WitFailure};
use crate::Failure;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// What an activity knows about the call it serves.
#[derive(Debug, Clone)]
pub struct ActivityCtx {
    info: ActivityInfo,
}

impl ActivityCtx {
    /// The execution that asked for this activity.
    pub fn execution_id(&self) -> &str {
        &self.info.execution_id
    }

    /// Stable across retries, crashes and replays of this one call: pass it
    /// to the system you change (as an idempotency key, a unique request id,
    /// a ledger row key) so that running the activity twice has the effect of
    /// running it once.
    pub fn idempotency_key(&self) -> &str {
        &self.info.idempotency_key
    }

    /// 1 for the first attempt, 2 for the first retry...
    pub fn attempt(&self) -> u32 {
        self.info.attempt
    }
}

/// An activity function: `fn(&ActivityCtx, I) -> Result<O, Failure>`, or
/// `async fn(ActivityCtx, I) -> Result<O, Failure>` (run to completion on
/// [`wstd`]'s event loop, so it can await HTTP calls and timers). `M` tells
/// the two apart.
#[doc(hidden)]
pub trait ActivityFn<I, O, M> {
    fn call(self, ctx: ActivityCtx, input: I) -> Result<O, Failure>;
}

#[doc(hidden)]
pub struct SyncActivity;

#[doc(hidden)]
pub struct AsyncActivity;

impl<F, I, O> ActivityFn<I, O, SyncActivity> for F
where
    F: FnOnce(&ActivityCtx, I) -> Result<O, Failure>,
{
    fn call(self, ctx: ActivityCtx, input: I) -> Result<O, Failure> {
        self(&ctx, input)
    }
}

impl<F, Fut, I, O> ActivityFn<I, O, AsyncActivity> for F
where
    F: FnOnce(ActivityCtx, I) -> Fut,
    Fut: std::future::Future<Output = Result<O, Failure>>,
{
    fn call(self, ctx: ActivityCtx, input: I) -> Result<O, Failure> {
        wstd::runtime::block_on(self(ctx, input))
    }
}

#[doc(hidden)]
pub fn run_activity<I, O, M, F>(
    name: &str,
    input: Vec<u8>,
    info: ActivityInfo,
    f: F,
) -> Result<Vec<u8>, WitFailure>
where
    I: DeserializeOwned,
    O: Serialize,
    F: ActivityFn<I, O, M>,
{
    let input: I = serde_json::from_slice(&input).map_err(|e| {
        Failure::non_retryable(format!(
            "the input of activity '{name}' is not a valid {}: {e}",
            std::any::type_name::<I>()
        ))
    })?;
    let ctx = ActivityCtx { info };
    let output = f.call(ctx, input)?;
    serde_json::to_vec(&output).map_err(|e| {
        Failure::non_retryable(format!(
            "activity '{name}' output cannot be serialized: {e}"
        ))
        .into()
    })
}
