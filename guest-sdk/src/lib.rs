//! # cairn-sdk: durable workflows in plain Rust
//!
//! A Cairn component is a Rust crate compiled to `wasm32-wasip2` that holds
//! **workflows** (deterministic `async fn`s that orchestrate steps) and
//! **activities** (ordinary functions that do the side effects). The Cairn
//! host runs workflows deterministically, journals every step, and replays the
//! journal to resume them after a crash, a timer or a signal.
//!
//! ```ignore
//! use cairn_sdk::prelude::*;
//!
//! #[derive(Serialize, Deserialize)]
//! struct Order { id: String, amount: u64 }
//!
//! async fn checkout(ctx: Ctx, order: Order) -> Result<String, Failure> {
//!     let receipt: String = ctx.activity("charge", &order).retry(RetryPolicy::default()).await?;
//!     ctx.sleep(Duration::from_secs(3600)).await?;          // durable: costs nothing while waiting
//!     let ok: Option<bool> = ctx.signal("shipped").timeout(Duration::from_secs(86_400)).await?;
//!     Ok(format!("{receipt} shipped={ok:?}"))
//! }
//!
//! async fn charge(ctx: ActivityCtx, order: Order) -> Result<String, Failure> {
//!     // Real IO is allowed here. The request carries `Idempotency-Key:
//!     // ctx.idempotency_key()`, the same on every retry of this call.
//!     ctx.http().post_json("https://pay.example/charges", &order).await
//! }
//!
//! cairn_sdk::component! {
//!     workflows: [checkout],
//!     activities: [charge],
//! }
//! ```
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

pub use activity::ActivityCtx;
pub use combinators::{Either, join, join_all, select, select_all};
pub use failure::{Failure, FailureKind};
pub use ops::{Activity, Child, RetryPolicy, Signal, SignalWithTimeout, Timer};
pub use runtime::{Ctx, LogLevel};
pub use saga::{Saga, SagaReport};
/// The async runtime async activities run on (Bytecode Alliance's `wstd`):
/// its timers, streams and raw `wasi:http` client.
pub use wstd;

/// Everything a workflow crate usually needs.
pub mod prelude {
    pub use crate::{
        ActivityCtx, Ctx, Either, Failure, FailureKind, RetryPolicy, Saga, join, join_all, select,
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
/// to the Cairn host. Names are the functions' names.
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
