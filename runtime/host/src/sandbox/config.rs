//! How the engine is configured (deterministic settings, fuel, memory, the
//! pooling allocator) and the sandbox built from it: the engine and both linkers.

use super::world::add_deterministic_wasi;
use super::{GuestState, Sandbox};
use crate::bindings::Component as Bindings;
use crate::error::HostError;
use crate::http::{HttpAllowList, HttpClient};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, StoreContextMut,
};

/// How the sandbox runs guests.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// The fuel budget per await: instructions (fuel units) a workflow may
    /// run between two awaits, refilled each time `wait-any` returns.
    pub fuel_per_await: u64,
    /// Linear memory limit per instance, in bytes.
    pub memory_limit_bytes: usize,
    /// Memory all instances may hold together (see [`crate::MemoryBudget`]);
    /// `None`: no shared bound.
    pub memory_budget_bytes: Option<usize>,
    /// Concurrent instances (workflows + activities) the pooling allocator
    /// holds; 0 selects on-demand allocation.
    pub pooled_instances: u32,
    /// Where precompiled components are kept (`<hash>-<engine>.cwasm`, see
    /// [`crate::Precompiler`]).
    pub cache_dir: Option<PathBuf>,
    /// Read-only directories searched for precompiled components first (a
    /// Lambda layer, precompiled for this host's triple by
    /// `cairn precompile`). A file there that wasmtime refuses (another
    /// architecture, CPU features this host lacks, garbage) is skipped with
    /// a warning and the component is compiled instead.
    pub precompiled_dirs: Vec<PathBuf>,
    /// Host directories granted to activities, with their guest paths.
    pub activity_dirs: Vec<(PathBuf, String)>,
    /// Environment variables given to activities.
    pub activity_env: Vec<(String, String)>,
    /// Whether activities may open network connections.
    pub activity_network: bool,
    /// Hosts activities may send `wasi:http` requests to (none by default).
    pub http_allow: HttpAllowList,
    /// PEM files of root certificates activities' HTTPS requests trust
    /// besides the system's (a private CA).
    pub http_roots: Vec<PathBuf>,
    /// Per-attempt timeout of activities that do not set one.
    pub default_activity_timeout: Duration,
    /// Keep activity instances between calls (see
    /// [`Sandbox::run_activity`]); `false` gives every call a fresh one.
    pub reuse_activity_instances: bool,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            fuel_per_await: 2_000_000_000,
            memory_limit_bytes: 256 << 20,
            memory_budget_bytes: None,
            pooled_instances: 0,
            cache_dir: None,
            precompiled_dirs: Vec::new(),
            activity_dirs: Vec::new(),
            activity_env: Vec::new(),
            activity_network: true,
            http_allow: HttpAllowList::default(),
            http_roots: Vec::new(),
            default_activity_timeout: Duration::from_secs(300),
            reuse_activity_instances: true,
        }
    }
}

impl SandboxConfig {
    /// The wasmtime configuration guests are compiled and run with: one
    /// place, so that components precompiled elsewhere
    /// ([`crate::Precompiler`]) are compiled exactly as this host would.
    ///
    /// `target`: compile for that triple (e.g. `aarch64-unknown-linux-gnu`)
    /// with its baseline CPU features, instead of for this host with the
    /// features wasmtime detects on it. The pooling allocator is not part of
    /// it: it changes how instances are allocated, not the compiled code
    /// (wasmtime's tunables do not depend on it).
    pub fn wasmtime_config(&self, target: Option<&str>) -> Result<Config, HostError> {
        let mut c = Config::new();
        // Threads: wasmtime is built without its `threads` feature, so shared
        // memories and atomics waits cannot exist here.
        c.consume_fuel(true)
            .cranelift_nan_canonicalization(true)
            .relaxed_simd_deterministic(true)
            .max_wasm_stack(1 << 20)
            .async_stack_size(2 << 20);
        if let Some(t) = target {
            c.target(t)
                .map_err(|e| HostError::Internal(format!("unknown target triple '{t}': {e:#}")))?;
        }
        Ok(c)
    }
}

/// Fuel between cooperative yields to the async runtime (~10 ms of guest
/// work), so one busy guest never starves the others on its thread.
pub(super) const FUEL_YIELD_INTERVAL: u64 = 10_000_000;

impl Sandbox {
    /// Builds the engine and linkers.
    pub fn new(config: SandboxConfig) -> Result<Self, HostError> {
        let internal = |e: wasmtime::Error| HostError::Internal(format!("{e:#}"));
        let mut c = config.wasmtime_config(None)?;
        if config.pooled_instances > 0 {
            let n = config.pooled_instances;
            let mut pool = PoolingAllocationConfig::default();
            pool.total_component_instances(n)
                .total_core_instances(n * 8)
                .total_memories(n * 2)
                .total_tables(n * 8)
                .total_stacks(n)
                .max_memory_size(config.memory_limit_bytes)
                .max_core_instances_per_component(32)
                .max_memories_per_component(4)
                .max_tables_per_component(32);
            c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        }
        let engine = Engine::new(&c).map_err(internal)?;
        // The tag of the host's portable engine, the one `cairn precompile
        // --target <this host's triple>` computes on another machine.
        let engine_tag = crate::precompile::engine_tag(&config, &crate::precompile::host_target())?;

        let mut activity_linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut activity_linker).map_err(internal)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut activity_linker)
            .map_err(internal)?;
        let http = HttpClient::new(config.http_allow.clone(), &config.http_roots)
            .map_err(HostError::Internal)?;
        Bindings::add_to_linker::<GuestState, HasSelf<GuestState>>(&mut activity_linker, |s| s)
            .map_err(internal)?;

        let mut workflow_linker = Linker::new(&engine);
        add_deterministic_wasi(&mut workflow_linker).map_err(internal)?;
        Bindings::add_to_linker::<GuestState, HasSelf<GuestState>>(&mut workflow_linker, |s| s)
            .map_err(internal)?;
        refuel_on_wait(&mut workflow_linker, config.fuel_per_await).map_err(internal)?;

        Ok(Self {
            engine,
            workflow_linker,
            activity_linker,
            engine_tag,
            components: Mutex::new(HashMap::new()),
            budget: config.memory_budget_bytes.map(crate::MemoryBudget::new),
            http: Arc::new(http),
            config,
        })
    }
}

/// Defines `wait-any` again in the workflow linker, with the store at hand:
/// an await that returns gives the guest its fuel budget afresh (the budget
/// is per await). The generated binding has no store, and a call hook that
/// refilled the fuel ran on every host call's way in and out (~3% of a
/// replayed step).
fn refuel_on_wait(linker: &mut Linker<GuestState>, budget: u64) -> wasmtime::Result<()> {
    use crate::bindings::cairn::workflow::host::Host;
    use crate::bindings::types::{Operation, Outcome};
    linker.allow_shadowing(true);
    linker
        .instance("cairn:workflow/host@0.2.0")?
        .func_wrap_async(
            "wait-any",
            move |mut store: StoreContextMut<'_, GuestState>,
                  (start, handles): (Vec<Operation>, Vec<u32>)| {
                Box::new(async move {
                    // An await that stopped the guest (an interrupt) is
                    // an error here, and the guest runs no further.
                    let outcome: Outcome = store.data_mut().wait_any(start, handles).await?;
                    store.set_fuel(budget)?;
                    Ok((outcome,))
                })
            },
        )?;
    linker.allow_shadowing(false);
    Ok(())
}
