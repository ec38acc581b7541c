//! # cairn-host: the deterministic wasmtime sandbox
//!
//! Owns everything between Cairn and WebAssembly:
//!
//! - the **engine configuration** for deterministic workflows: NaN
//!   canonicalization, deterministic relaxed SIMD, no threads, a fuel budget
//!   per await (a runaway loop fails the execution, deterministically), a
//!   memory limit, the pooling allocator;
//! - the **component cache**: components are identified by the sha256 of
//!   their bytes, compiled once, kept precompiled on disk (`.cwasm`) and in
//!   memory as `InstancePre`s ready to instantiate in microseconds; a
//!   [`Precompiler`] builds the `.cwasm` of another machine (the arm64
//!   Lambda function's, from an x86_64 one);
//! - the two **modes** a component runs in:
//!   - *workflow mode*: WASI answers deterministically (clocks read journal
//!     time, random is seeded per execution, no environment, no stdin) and
//!     the filesystem and network trap with an error naming the call; the
//!     `cairn:workflow/host` imports go to a [`WorkflowCalls`] implementation
//!     (the engine's driver);
//!   - *activity mode*: real WASI (clocks, random, network, the directories
//!     the operator grants), `wasi:http` to the hosts the operator allows
//!     (see the `http` module: TLS by the host, an allow-list), a
//!     per-attempt timeout.
//!
//! This crate knows nothing of journals or stores: the driver
//! (`cairn-engine`) answers the workflow's calls.

mod bindings;
mod error;
mod http;
mod limits;
mod precompile;
mod sandbox;
mod wasi;

pub use bindings::types::{
    ActivityInfo, ActivityOptions, Completion, ComponentInfo, Failure as WitFailure,
    FailureKind as WitFailureKind, LogLevel, Operation, Outcome, QueryRequest, RetryPolicy,
};
pub use error::{GuestError, HostError, Interrupt};
pub use http::HttpAllowList;
pub use limits::MemoryBudget;
pub use precompile::{Precompiler, engine_tag, file_name as precompiled_file_name, host_target};
pub use sandbox::{
    ActivityRun, ComponentBytes, LoadedComponent, Sandbox, SandboxConfig, WIT_PACKAGE,
    WorkflowCalls, WorkflowExit, WorkflowFuture, component_hash,
};
