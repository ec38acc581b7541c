//! # cairn-sdk: durable workflows in plain Rust
//!
//! A Cairn component is a Rust crate compiled to `wasm32-wasip2` that holds
//! **workflows** (deterministic `async fn`s that orchestrate steps) and
//! **activities** (ordinary functions that do the side effects). The Cairn
//! host runs workflows deterministically, journals every step, and replays the
//! journal to resume them after a crash, a timer or a signal.
//!
//! ```no_run
//! use cairn_sdk::prelude::*;
//!
//! #[derive(Serialize, Deserialize)]
//! pub struct Order { id: String, amount: u64 }
//!
//! /// Sent by the warehouse when the order leaves it.
//! pub const SHIPPED: SignalRef<bool> = SignalRef::new("shipped");
//!
//! pub async fn checkout(ctx: Ctx, order: Order) -> Result<String, Failure> {
//!     // A typed reference: a misspelt activity or a wrong input or output
//!     // type does not compile.
//!     let receipt: String = ctx.call(activity!(charge), &order).retry(RetryPolicy::default()).await?;
//!     ctx.sleep(Duration::from_secs(3600)).await?;          // durable: costs nothing while waiting
//!     let ok: Option<bool> = ctx.wait_signal(SHIPPED).timeout(Duration::from_secs(86_400)).await?;
//!     Ok(format!("{receipt} shipped={ok:?}"))
//! }
//!
//! pub async fn charge(ctx: ActivityCtx, order: Order) -> Result<String, Failure> {
//!     // Real IO is allowed here. The request carries `Idempotency-Key:
//!     // ctx.idempotency_key()`, the same on every retry of this call.
//!     ctx.http().post_json("https://pay.example/charges", &order).await
//! }
//!
//! cairn_sdk::component! {
//!     workflows: [checkout],
//!     activities: [charge],
//! }
//! # fn main() {}
//! ```
//!
//! ## Typed references
//!
//! A workflow names what it calls by typed references (see [`typed`]):
//! [`activity!`]`(f)` and [`workflow!`]`(w)` take the function registered
//! with [`component!`] (invoked at the crate root), so its name and its
//! input and output types come from the function itself; a signal or a
//! query is a constant, [`SignalRef`] or [`QueryRef`], declared once with
//! its payload types. A misspelt or unregistered name, or a wrong type, is
//! a compile error instead of an execution failed at run time.
//!
//! | operation | typed | string form (deprecated, goes in the next release) |
//! |---|---|---|
//! | activity | `ctx.call(activity!(charge), &order)` | `ctx.activity::<O>("charge", &order)` |
//! | child | `ctx.start_child(workflow!(audit), &id, &input)` | `ctx.child::<O>("audit", &id, &input)` |
//! | signal | `ctx.wait_signal(SHIPPED)` | `ctx.signal::<T>("shipped")` |
//! | query | `ctx.handle_query(PROGRESS, handler)` | `ctx.on_query("progress", handler)` |
//!
//! ## Failures
//!
//! A [`Failure`] is retryable (an activity's retry policy runs it again) or
//! non-retryable, and the author chooses which: no error becomes a
//! `Failure` by itself. [`ResultExt`] turns any error into either one with
//! a context (`file.sync_all().retryable("saving the ledger")?`). SDK calls
//! that cannot do what was asked ([`select_all`] of nothing,
//! [`Ctx::continue_as_new`] with an input that does not serialize) return
//! non-retryable failures instead of panicking.
//!
//! ## Rules for workflow code
//!
//! Workflow code must make the same calls in the same order every time it runs
//! with the same journal. Use `ctx.now()` and `ctx.random()` instead of the
//! system clock and random sources (the host answers those deterministically
//! anyway), and do IO only in activities: in workflow mode the filesystem and
//! the network are denied.
//!
//! ## Activities
//!
//! An activity is a plain `fn(&ActivityCtx, I) -> Result<O, Failure>`, or an
//! `async fn(ActivityCtx, I) -> Result<O, Failure>` that awaits IO: HTTP
//! through [`ActivityCtx::http`] (see [`http`]: the operator allows hosts
//! with `--allow-http`), timers and streams of [`wstd`], which the SDK
//! re-exports.

extern crate self as cairn_sdk;

mod activity;
mod combinators;
mod failure;
pub mod http;
mod ops;
mod runtime;
mod saga;
pub mod typed;

pub use activity::ActivityCtx;
pub use combinators::{Either, join, join_all, select, select_all};
pub use failure::{Failure, FailureKind, ResultExt};
pub use ops::{Activity, Child, RetryPolicy, Signal, SignalWithTimeout, Timer};
pub use runtime::{Ctx, LogLevel};
pub use saga::{Saga, SagaReport};
pub use typed::{ActivityRef, QueryRef, SignalRef, WorkflowRef};
/// The async runtime async activities run on (Bytecode Alliance's `wstd`):
/// its timers, streams and raw `wasi:http` client.
pub use wstd;

/// Everything a workflow crate usually needs.
pub mod prelude {
    pub use crate::{
        ActivityCtx, ActivityRef, Ctx, Either, Failure, FailureKind, QueryRef, ResultExt,
        RetryPolicy, Saga, SignalRef, WorkflowRef, activity, join, join_all, select, workflow,
    };
    pub use serde::{Deserialize, Serialize};
    pub use std::time::Duration;
}

/// The SDK version, reported by `cairn inspect`.
pub const SDK_VERSION: &str = concat!("cairn-sdk ", env!("CARGO_PKG_VERSION"));

#[doc(hidden)]
pub mod __private {
    pub use crate::activity::run_activity;
    pub use crate::runtime::run_workflow;
    pub use wit_bindgen;

    #[allow(missing_docs)]
    pub mod bindings {
        wit_bindgen::generate!({
            world: "component",
            path: "../wit",
            pub_export_macro: true,
            export_macro_name: "__export_component",
            default_bindings_module: "::cairn_sdk::__private::bindings",
            runtime_path: "::cairn_sdk::__private::wit_bindgen::rt",
        });
    }

    pub use bindings::cairn::workflow::types::{
        ActivityInfo, ComponentInfo, Failure as WitFailure,
    };
    pub use bindings::exports::cairn::workflow::guest::Guest;

    /// `describe()`'s answer.
    pub fn component_info(workflows: &[&str], activities: &[&str]) -> ComponentInfo {
        ComponentInfo {
            workflows: workflows.iter().map(|s| s.to_string()).collect(),
            activities: activities.iter().map(|s| s.to_string()).collect(),
            sdk: crate::SDK_VERSION.to_string(),
        }
    }

    /// The failure for a name the component does not hold.
    pub fn unknown(what: &str, name: &str, known: &[&str]) -> Result<Vec<u8>, WitFailure> {
        Err(crate::Failure::non_retryable(format!(
            "this component has no {what} named '{name}' (it has: {})",
            known.join(", ")
        ))
        .into())
    }
}

/// Declares the workflows and activities of this component and exports them
/// to the Cairn host. Names are the functions' names. Invoke it at the crate
/// root: [`activity!`] and [`workflow!`] look the functions up there.
///
/// - a workflow: `async fn name(ctx: Ctx, input: I) -> Result<O, Failure>`
/// - an activity: `fn name(ctx: &ActivityCtx, input: I) -> Result<O, Failure>`,
///   or `async fn name(ctx: ActivityCtx, input: I) -> Result<O, Failure>`
///   to await IO such as [`http`] calls
///
/// where `I: Deserialize` and `O: Serialize` (JSON on the wire).
#[macro_export]
macro_rules! component {
    (
        workflows: [$($wf:ident),* $(,)?],
        activities: [$($act:ident),* $(,)?] $(,)?
    ) => {
        /// The functions this component registers, for `activity!` and
        /// `workflow!` (a name missing here does not compile there).
        #[doc(hidden)]
        #[allow(unused_imports)]
        pub(crate) mod __cairn_component {
            /// The registered activities.
            pub(crate) mod activities {
                pub(crate) use super::super::{$($act),*};
            }
            /// The registered workflows.
            pub(crate) mod workflows {
                pub(crate) use super::super::{$($wf),*};
            }
        }

        #[doc(hidden)]
        pub struct __CairnComponent;

        impl $crate::__private::Guest for __CairnComponent {
            fn describe() -> $crate::__private::ComponentInfo {
                $crate::__private::component_info(&[$(stringify!($wf)),*], &[$(stringify!($act)),*])
            }

            fn run(workflow: String, input: Vec<u8>) -> Result<Vec<u8>, $crate::__private::WitFailure> {
                match workflow.as_str() {
                    $(stringify!($wf) => $crate::__private::run_workflow(stringify!($wf), input, $wf),)*
                    other => $crate::__private::unknown("workflow", other, &[$(stringify!($wf)),*]),
                }
            }

            fn activity(
                name: String,
                input: Vec<u8>,
                info: $crate::__private::ActivityInfo,
            ) -> Result<Vec<u8>, $crate::__private::WitFailure> {
                match name.as_str() {
                    $(stringify!($act) => $crate::__private::run_activity(stringify!($act), input, info, $act),)*
                    other => $crate::__private::unknown("activity", other, &[$(stringify!($act)),*]),
                }
            }
        }

        $crate::__private::bindings::__export_component!(__CairnComponent);
    };
}
