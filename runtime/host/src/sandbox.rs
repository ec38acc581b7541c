//! The sandbox: the public types (the sandbox, components, what a run gives
//! back) and the state a guest instance holds. The rest by concern:
//!
//! - `config`: the engine configuration, and the engine and linkers built
//!   from it;
//! - `cache`: loading components (in memory by hash, `.cwasm` on disk);
//! - `world`: the header and WIT version checks, deterministic WASI, the
//!   denied imports of workflow mode;
//! - `workflow`: the `cairn:workflow/host` imports and workflow runs;
//! - `activity`: activity runs and the pool of idle instances;
//! - `trap`: how a guest's trap becomes a [`HostError`].

mod activity;
mod cache;
mod config;
mod trap;
mod workflow;
mod world;

pub use activity::ActivityRun;
pub use config::SandboxConfig;
pub use workflow::{WorkflowCalls, WorkflowExit, WorkflowFuture};
pub(crate) use world::check_header;

use crate::bindings::ComponentPre;
use crate::bindings::types::ComponentInfo;
use crate::error::{HostError, Interrupt};
use crate::http::{ActivityHttp, HttpClient};
use crate::limits::Limits;
use crate::wasi::{JournalTime, SeededRng};
use activity::ActivityInstance;
use cairn_core::ComponentHash;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime::Engine;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// The WIT package this host implements.
pub const WIT_PACKAGE: &str = "cairn:workflow@0.2.0";

/// The sha256 of a component's bytes.
pub fn component_hash(bytes: &[u8]) -> ComponentHash {
    ComponentHash::parse(&hex::encode(Sha256::digest(bytes))).expect("sha256 hex is a valid hash")
}

/// The bytes of a component with their hash.
#[derive(Clone)]
pub struct ComponentBytes {
    /// sha256 of `bytes`.
    pub hash: ComponentHash,
    /// The component.
    pub bytes: Arc<[u8]>,
}

impl ComponentBytes {
    /// Hashes `bytes`.
    pub fn new(bytes: impl Into<Arc<[u8]>>) -> Self {
        let bytes = bytes.into();
        Self {
            hash: component_hash(&bytes),
            bytes,
        }
    }
}

/// A compiled component, ready to instantiate.
pub struct LoadedComponent {
    /// Its hash.
    pub hash: ComponentHash,
    /// What it holds.
    pub info: ComponentInfo,
    /// Size of its bytes.
    pub size: usize,
    /// How long loading took (compile or cache load + describe).
    pub load_time: Duration,
    /// Whether it came from the precompiled cache.
    pub from_cache: bool,
    workflow_pre: ComponentPre<GuestState>,
    activity_pre: ComponentPre<GuestState>,
    /// Activity instances that finished a call cleanly, ready for the next
    /// (see [`Sandbox::run_activity`]).
    idle_activities: Mutex<Vec<ActivityInstance>>,
}

impl std::fmt::Debug for LoadedComponent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedComponent")
            .field("hash", &self.hash)
            .field("info", &self.info)
            .finish()
    }
}

impl LoadedComponent {
    /// Checks that `workflow` is one of its workflows.
    pub fn check_workflow(&self, workflow: &str) -> Result<(), HostError> {
        if self.info.workflows.iter().any(|w| w == workflow) {
            return Ok(());
        }
        Err(HostError::UnknownWorkflow {
            name: workflow.into(),
            known: self.info.workflows.join(", "),
        })
    }
}

/// Per-instance state.
pub struct GuestState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: Limits,
    calls: Option<Box<dyn WorkflowCalls>>,
    journal_time: JournalTime,
    rng: SeededRng,
    interrupt: Option<Interrupt>,
    output: Option<MemoryOutputPipe>,
    http_ctx: WasiHttpCtx,
    http: ActivityHttp,
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Linked in activity mode only: workflow mode denies `wasi:http`.
impl WasiHttpView for GuestState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http_ctx,
            table: &mut self.table,
            hooks: &mut self.http,
        }
    }
}

/// The deterministic wasmtime sandbox. Cheap to share (`Arc`); one per
/// process.
pub struct Sandbox {
    engine: Engine,
    workflow_linker: Linker<GuestState>,
    activity_linker: Linker<GuestState>,
    config: SandboxConfig,
    engine_tag: String,
    components: Mutex<HashMap<ComponentHash, Arc<LoadedComponent>>>,
    budget: Option<Arc<crate::MemoryBudget>>,
    http: Arc<HttpClient>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("config", &self.config)
            .finish()
    }
}

impl Sandbox {
    /// The configuration.
    pub fn config(&self) -> &SandboxConfig {
        &self.config
    }

    /// The engine tag in the names of the precompiled files it looks for
    /// (see [`crate::Precompiler`]).
    pub fn engine_tag(&self) -> &str {
        &self.engine_tag
    }
}
