//! Typed references: activities, child workflows, signals and queries named
//! by values whose types carry the input and the output.
//!
//! An activity or a workflow is referenced through its function item with
//! [`activity!`](crate::activity) or [`workflow!`](crate::workflow): the
//! macro looks the function up among the ones [`component!`](crate::component)
//! registered, takes its name from it, and reads the input and output types
//! off its signature. A signal or a query has no function: declare it once
//! as a constant ([`SignalRef::new`], [`QueryRef::new`]) and use the
//! constant everywhere.
//!
//! So a misspelt name, a function the component does not register, a wrong
//! input or a wrong output type fails to compile, instead of failing the
//! execution (non-retryable) when it runs:
//!
//! ```no_run
//! use cairn_sdk::prelude::*;
//!
//! #[derive(Serialize, Deserialize)]
//! pub struct Transfer { account: String, amount: u64 }
//!
//! /// The signal a person sends to approve a transfer.
//! pub const APPROVE: SignalRef<bool> = SignalRef::new("approve");
//! /// How many transfers are done.
//! pub const DONE: QueryRef<(), u32> = QueryRef::new("done");
//!
//! pub async fn pay(ctx: Ctx, t: Transfer) -> Result<String, Failure> {
//!     ctx.handle_query(DONE, |()| Ok(0));
//!     if !ctx.wait_signal(APPROVE).await? {
//!         return Err(Failure::non_retryable("refused"));
//!     }
//!     let receipt: String = ctx.call(activity!(withdraw), &t).await?;
//!     let audit: u32 = ctx.start_child(workflow!(audit), "audit-1", &receipt).await?;
//!     Ok(format!("{receipt} (audit {audit})"))
//! }
//!
//! pub async fn audit(_ctx: Ctx, receipt: String) -> Result<u32, Failure> {
//!     Ok(receipt.len() as u32)
//! }
//!
//! pub fn withdraw(ctx: &ActivityCtx, t: Transfer) -> Result<String, Failure> {
//!     Ok(format!("{} -{} ({})", t.account, t.amount, ctx.idempotency_key()))
//! }
//!
//! cairn_sdk::component! { workflows: [pay, audit], activities: [withdraw] }
//! # fn main() {}
//! ```
//!
//! ## What does not compile
//!
//! A misspelt activity (or one the component does not register):
//!
//! ```compile_fail,E0425
//! use cairn_sdk::prelude::*;
//! pub async fn pay(ctx: Ctx, account: String) -> Result<String, Failure> {
//!     ctx.call(activity!(withdrew), &account).await
//! }
//! pub fn withdraw(_: &ActivityCtx, account: String) -> Result<String, Failure> { Ok(account) }
//! cairn_sdk::component! { workflows: [pay], activities: [withdraw] }
//! # fn main() {}
//! ```
//!
//! A function that exists but is not registered as an activity:
//!
//! ```compile_fail,E0425
//! use cairn_sdk::prelude::*;
//! pub async fn pay(ctx: Ctx, account: String) -> Result<String, Failure> {
//!     ctx.call(activity!(refund), &account).await
//! }
//! pub fn withdraw(_: &ActivityCtx, account: String) -> Result<String, Failure> { Ok(account) }
//! pub fn refund(_: &ActivityCtx, account: String) -> Result<String, Failure> { Ok(account) }
//! cairn_sdk::component! { workflows: [pay], activities: [withdraw] }
//! # fn main() {}
//! ```
//!
//! The wrong input type:
//!
//! ```compile_fail,E0308
//! use cairn_sdk::prelude::*;
//! pub async fn pay(ctx: Ctx, amount: u64) -> Result<String, Failure> {
//!     ctx.call(activity!(withdraw), &amount).await
//! }
//! pub fn withdraw(_: &ActivityCtx, account: String) -> Result<String, Failure> { Ok(account) }
//! cairn_sdk::component! { workflows: [pay], activities: [withdraw] }
//! # fn main() {}
//! ```
//!
//! The wrong output type:
//!
//! ```compile_fail,E0308
//! use cairn_sdk::prelude::*;
//! pub async fn pay(ctx: Ctx, account: String) -> Result<u64, Failure> {
//!     let n: u64 = ctx.call(activity!(withdraw), &account).await?;
//!     Ok(n)
//! }
//! pub fn withdraw(_: &ActivityCtx, account: String) -> Result<String, Failure> { Ok(account) }
//! cairn_sdk::component! { workflows: [pay], activities: [withdraw] }
//! # fn main() {}
//! ```
//!
//! A child workflow's wrong input type:
//!
//! ```compile_fail,E0308
//! use cairn_sdk::prelude::*;
//! pub async fn parent(ctx: Ctx, n: u64) -> Result<u64, Failure> {
//!     ctx.start_child(workflow!(child), "c-1", &n.to_string()).await
//! }
//! pub async fn child(_: Ctx, n: u64) -> Result<u64, Failure> { Ok(n + 1) }
//! cairn_sdk::component! { workflows: [parent, child], activities: [] }
//! # fn main() {}
//! ```
//!
//! A workflow referenced as an activity:
//!
//! ```compile_fail,E0425
//! use cairn_sdk::prelude::*;
//! pub async fn parent(ctx: Ctx, n: u64) -> Result<u64, Failure> {
//!     ctx.call(activity!(child), &n).await
//! }
//! pub async fn child(_: Ctx, n: u64) -> Result<u64, Failure> { Ok(n + 1) }
//! cairn_sdk::component! { workflows: [parent, child], activities: [] }
//! # fn main() {}
//! ```
//!
//! A signal's payload read as another type:
//!
//! ```compile_fail,E0308
//! use cairn_sdk::prelude::*;
//! pub const APPROVE: SignalRef<bool> = SignalRef::new("approve");
//! pub async fn wait(ctx: Ctx, _: ()) -> Result<String, Failure> {
//!     let reason: String = ctx.wait_signal(APPROVE).await?;
//!     Ok(reason)
//! }
//! cairn_sdk::component! { workflows: [wait], activities: [] }
//! # fn main() {}
//! ```
//!
//! A query handler with the wrong answer type:
//!
//! ```compile_fail,E0308
//! use cairn_sdk::prelude::*;
//! pub const DONE: QueryRef<(), u32> = QueryRef::new("done");
//! pub async fn wait(ctx: Ctx, _: ()) -> Result<(), Failure> {
//!     ctx.handle_query(DONE, |()| Ok("three".to_string()));
//!     Ok(())
//! }
//! cairn_sdk::component! { workflows: [wait], activities: [] }
//! # fn main() {}
//! ```

use crate::activity::ActivityFn;
use crate::{Ctx, Failure};
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;

/// A typed reference to an activity of this component: made by
/// [`activity!`](crate::activity), passed to [`Ctx::call`].
pub struct ActivityRef<I, O> {
    name: &'static str,
    types: PhantomData<fn(I) -> O>,
}

/// A typed reference to a workflow of this component, to start as a child:
/// made by [`workflow!`](crate::workflow), passed to [`Ctx::start_child`].
pub struct WorkflowRef<I, O> {
    name: &'static str,
    types: PhantomData<fn(I) -> O>,
}

/// A signal this workflow waits for, with its payload's type: declare it
/// once, `pub const APPROVE: SignalRef<bool> = SignalRef::new("approve");`,
/// and wait with [`Ctx::wait_signal`].
pub struct SignalRef<T> {
    name: &'static str,
    types: PhantomData<fn() -> T>,
}

/// A query this workflow answers, with its arguments' and its answer's
/// types: declare it once, `pub const PROGRESS: QueryRef<(), Progress> =
/// QueryRef::new("progress");`, and answer it with [`Ctx::handle_query`].
pub struct QueryRef<A, R> {
    name: &'static str,
    types: PhantomData<fn(A) -> R>,
}

impl<I, O> ActivityRef<I, O> {
    /// Used by [`activity!`](crate::activity): `f` fixes `I` and `O`.
    #[doc(hidden)]
    pub fn __from_fn<F, M>(name: &'static str, f: F) -> Self
    where
        F: ActivityFn<I, O, M>,
    {
        let _ = f;
        Self {
            name,
            types: PhantomData,
        }
    }

    /// The activity's name (its function's name).
    pub fn name(&self) -> &'static str {
        self.name
    }
}

/// A workflow function: `async fn(Ctx, I) -> Result<O, Failure>`.
#[doc(hidden)]
pub trait WorkflowFn<I, O> {}

impl<F, Fut, I, O> WorkflowFn<I, O> for F
where
    F: FnOnce(Ctx, I) -> Fut,
    Fut: Future<Output = Result<O, Failure>>,
{
}

impl<I, O> WorkflowRef<I, O> {
    /// Used by [`workflow!`](crate::workflow): `f` fixes `I` and `O`.
    #[doc(hidden)]
    pub fn __from_fn<F>(name: &'static str, f: F) -> Self
    where
        F: WorkflowFn<I, O>,
    {
        let _ = f;
        Self {
            name,
            types: PhantomData,
        }
    }

    /// The workflow's name (its function's name).
    pub fn name(&self) -> &'static str {
        self.name
    }
}

impl<T> SignalRef<T> {
    /// The signal `name` (what `cairn signal ID NAME JSON` sends), whose
    /// payload is a JSON `T`.
    pub const fn new(name: &'static str) -> Self {
        Self {
            name,
            types: PhantomData,
        }
    }

    /// The signal's name.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

impl<A, R> QueryRef<A, R> {
    /// The query `name` (what `cairn query ID NAME JSON` asks), whose
    /// arguments are a JSON `A` and whose answer is a JSON `R`.
    pub const fn new(name: &'static str) -> Self {
        Self {
            name,
            types: PhantomData,
        }
    }

    /// The query's name.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

// Copy and Debug by hand: derives would require them of I, O, T, A, R.
macro_rules! impl_ref_traits {
    ($ty:ident <$($p:ident),+>, $what:literal) => {
        impl<$($p),+> Clone for $ty<$($p),+> {
            fn clone(&self) -> Self {
                *self
            }
        }
        impl<$($p),+> Copy for $ty<$($p),+> {}
        impl<$($p),+> fmt::Debug for $ty<$($p),+> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{} {:?}", $what, self.name)
            }
        }
    };
}
impl_ref_traits!(ActivityRef<I, O>, "activity");
impl_ref_traits!(WorkflowRef<I, O>, "workflow");
impl_ref_traits!(SignalRef<T>, "signal");
impl_ref_traits!(QueryRef<A, R>, "query");

/// A typed reference to an activity of this component, from its function:
/// `ctx.call(activity!(withdraw), &transfer)`.
///
/// The function must be listed in `activities: [...]` of
/// [`component!`](crate::component), which must be invoked at the crate
/// root: otherwise (or if the name is misspelt) this fails to compile with
/// "cannot find value `NAME` in module `crate::__cairn_component::activities`".
/// The input and output types are the function's.
// `crate` (not `$crate`) on purpose: the registry is the caller's.
#[allow(clippy::crate_in_macro_def)]
#[macro_export]
macro_rules! activity {
    ($name:ident) => {
        $crate::ActivityRef::__from_fn(
            ::core::stringify!($name),
            crate::__cairn_component::activities::$name,
        )
    };
}

/// A typed reference to a workflow of this component, from its function, to
/// start as a child: `ctx.start_child(workflow!(county_search), &id, &input)`.
///
/// The function must be listed in `workflows: [...]` of
/// [`component!`](crate::component), invoked at the crate root: otherwise
/// (or if the name is misspelt) this fails to compile with "cannot find
/// value `NAME` in module `crate::__cairn_component::workflows`".
// `crate` (not `$crate`) on purpose: the registry is the caller's.
#[allow(clippy::crate_in_macro_def)]
#[macro_export]
macro_rules! workflow {
    ($name:ident) => {
        $crate::WorkflowRef::__from_fn(
            ::core::stringify!($name),
            crate::__cairn_component::workflows::$name,
        )
    };
}
