//! The sandbox: engine, linkers, component cache, workflow and activity runs.

use crate::bindings::cairn::workflow::host;
use crate::bindings::types::{
    ActivityInfo, ActivityOptions, ComponentInfo, Failure as WitFailure, LogLevel, Operation,
    Outcome,
};
use crate::bindings::{Component as Bindings, ComponentPre};
use crate::error::{GuestError, HostError, Interrupt};
use crate::http::{ActivityHttp, HttpAllowList, HttpClient};
use crate::limits::Limits;
use crate::wasi::{JournalMonotonicClock, JournalTime, JournalWallClock, SeededRng};
use cairn_core::ComponentHash;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{
    CallHook, Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap,
};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// The WIT package this host implements.
pub const WIT_PACKAGE: &str = "cairn:workflow@0.2.0";

/// The sha256 of a component's bytes.
pub fn component_hash(bytes: &[u8]) -> ComponentHash {
    ComponentHash::parse(&hex::encode(Sha256::digest(bytes))).expect("sha256 hex is a valid hash")
}

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

/// The future of [`WorkflowCalls::wait_any`].
pub type WorkflowFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, Interrupt>> + Send + 'a>>;

/// The driver's side of the `cairn:workflow/host` imports. Each call may
/// return an [`Interrupt`] to stop the guest (suspend, conflict,
/// nondeterminism), keeping the reason itself; the sandbox unwinds the
/// guest and hands the implementation back with
/// [`WorkflowExit::Interrupted`].
pub trait WorkflowCalls: std::any::Any + Send {
    /// `schedule-activity`.
    fn schedule_activity(
        &mut self,
        name: String,
        input: Vec<u8>,
        options: ActivityOptions,
    ) -> Result<u32, Interrupt>;
    /// `start-timer`.
    fn start_timer(&mut self, duration_ms: u64) -> Result<u32, Interrupt>;
    /// `wait-signal`.
    fn wait_signal(&mut self, name: String) -> Result<u32, Interrupt>;
    /// The wait of `wait-any` (its operations were started first, one
    /// [`WorkflowCalls`] call each, in order).
    fn wait_any(&mut self, handles: Vec<u32>) -> WorkflowFuture<'_, Outcome>;
    /// `cancel`.
    fn cancel(&mut self, handle: u32) -> Result<(), Interrupt>;
    /// Journal time (ms since the epoch): `now-ms` and the WASI clocks.
    fn now_ms(&self) -> u64;
    /// `history-len`.
    fn history_len(&self) -> u32;
    /// `log`.
    fn log(&mut self, level: LogLevel, message: String);
    /// `start-child`.
    fn start_child(
        &mut self,
        workflow: String,
        id: String,
        input: Vec<u8>,
    ) -> Result<u32, Interrupt>;
    /// `execution-id`.
    fn execution_id(&self) -> String;
    /// `continue-as-new`: always stops the guest.
    fn continue_as_new(&mut self, input: Vec<u8>) -> Interrupt;
    /// `answer-query`: always stops the guest.
    fn answer_query(&mut self, answer: Result<Vec<u8>, WitFailure>) -> Interrupt;
}

/// How a workflow run ended, when the sandbox did not fail.
#[derive(Debug)]
pub enum WorkflowExit {
    /// The guest returned its result.
    Returned(Result<Vec<u8>, WitFailure>),
    /// A call of the [`WorkflowCalls`] implementation returned an
    /// [`Interrupt`]: it knows why.
    Interrupted,
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

/// An activity-mode instance kept between calls, with its store.
struct ActivityInstance {
    store: Store<GuestState>,
    guest: Bindings,
    /// Bytes its earlier calls printed (the pipe keeps them).
    printed: usize,
}

/// Idle activity instances kept per component: enough for the activities
/// of many executions in flight, small enough to keep memory low.
const IDLE_ACTIVITY_INSTANCES: usize = 32;

/// An instance whose captured output has grown past this is not reused (its
/// pipe has a fixed capacity).
const REUSE_OUTPUT_LIMIT: usize = 16 << 10;

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

/// One finished activity attempt.
#[derive(Debug)]
pub struct ActivityRun {
    /// The guest's answer.
    pub result: Result<Vec<u8>, WitFailure>,
    /// What it printed (stdout and stderr), truncated.
    pub output: String,
}

/// Trap marker: the driver interrupted the guest (the reason is in the
/// store's state).
#[derive(Debug)]
struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted by the Cairn driver")
    }
}

impl std::error::Error for Interrupted {}

/// Per-instance state.
pub struct GuestState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: Limits,
    calls: Option<Box<dyn WorkflowCalls>>,
    journal_time: JournalTime,
    rng: SeededRng,
    refuel: bool,
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

impl GuestState {
    fn calls(&mut self, call: &str) -> wasmtime::Result<&mut Box<dyn WorkflowCalls>> {
        match self.calls.as_mut() {
            Some(c) => Ok(c),
            None => Err(wasmtime::Error::msg(format!(
                "{} activity code called cairn:workflow/host#{call}: only workflows can schedule operations",
                cairn_core::ErrorCode::ProtocolViolation
            ))),
        }
    }

    fn interrupted<T>(&mut self, i: Interrupt) -> wasmtime::Result<T> {
        self.interrupt = Some(i);
        Err(wasmtime::Error::new(Interrupted))
    }
}

impl crate::bindings::types::Host for GuestState {}

impl host::Host for GuestState {
    fn schedule_activity(
        &mut self,
        name: String,
        input: Vec<u8>,
        options: ActivityOptions,
    ) -> wasmtime::Result<u32> {
        match self
            .calls("schedule-activity")?
            .schedule_activity(name, input, options)
        {
            Ok(h) => Ok(h),
            Err(i) => self.interrupted(i),
        }
    }

    fn start_timer(&mut self, duration_ms: u64) -> wasmtime::Result<u32> {
        match self.calls("start-timer")?.start_timer(duration_ms) {
            Ok(h) => Ok(h),
            Err(i) => self.interrupted(i),
        }
    }

    fn wait_signal(&mut self, name: String) -> wasmtime::Result<u32> {
        match self.calls("wait-signal")?.wait_signal(name) {
            Ok(h) => Ok(h),
            Err(i) => self.interrupted(i),
        }
    }

    async fn wait_any(
        &mut self,
        start: Vec<Operation>,
        handles: Vec<u32>,
    ) -> wasmtime::Result<Outcome> {
        let calls = self.calls("wait-any")?;
        // Exactly what the one-operation calls would do, in the same order:
        // the journal cannot tell a batched step from separate calls.
        for op in start {
            let started = match op {
                Operation::Activity(a) => calls.schedule_activity(a.name, a.input, a.options),
                Operation::Timer(ms) => calls.start_timer(ms),
                Operation::Signal(name) => calls.wait_signal(name),
                Operation::Child(c) => calls.start_child(c.workflow, c.id, c.input),
            };
            if let Err(i) = started {
                return self.interrupted(i);
            }
        }
        let r = calls.wait_any(handles).await;
        let now = calls.now_ms();
        match r {
            Ok(wake) => {
                self.journal_time.set_ms(now);
                self.refuel = true;
                Ok(wake)
            }
            Err(i) => self.interrupted(i),
        }
    }

    fn cancel(&mut self, handle: u32) -> wasmtime::Result<()> {
        match self.calls("cancel")?.cancel(handle) {
            Ok(()) => Ok(()),
            Err(i) => self.interrupted(i),
        }
    }

    fn now_ms(&mut self) -> wasmtime::Result<u64> {
        Ok(self.calls("now-ms")?.now_ms())
    }

    fn random_u64(&mut self) -> wasmtime::Result<u64> {
        self.calls("random-u64")?;
        Ok(self.rng.next())
    }

    fn history_len(&mut self) -> wasmtime::Result<u32> {
        Ok(self.calls("history-len")?.history_len())
    }

    fn log(&mut self, level: LogLevel, message: String) -> wasmtime::Result<()> {
        self.calls("log")?.log(level, message);
        Ok(())
    }

    fn start_child(
        &mut self,
        workflow: String,
        id: String,
        input: Vec<u8>,
    ) -> wasmtime::Result<u32> {
        match self.calls("start-child")?.start_child(workflow, id, input) {
            Ok(h) => Ok(h),
            Err(i) => self.interrupted(i),
        }
    }

    fn execution_id(&mut self) -> wasmtime::Result<String> {
        Ok(self.calls("execution-id")?.execution_id())
    }

    fn continue_as_new(&mut self, input: Vec<u8>) -> wasmtime::Result<()> {
        let i = self.calls("continue-as-new")?.continue_as_new(input);
        self.interrupted(i)
    }

    fn answer_query(&mut self, answer: Result<Vec<u8>, WitFailure>) -> wasmtime::Result<()> {
        let i = self.calls("answer-query")?.answer_query(answer);
        self.interrupted(i)
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

/// Fuel between cooperative yields to the async runtime (~10 ms of guest
/// work), so one busy guest never starves the others on its thread.
const FUEL_YIELD_INTERVAL: u64 = 10_000_000;

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

    /// The configuration.
    pub fn config(&self) -> &SandboxConfig {
        &self.config
    }

    /// The engine tag in the names of the precompiled files it looks for
    /// (see [`crate::Precompiler`]).
    pub fn engine_tag(&self) -> &str {
        &self.engine_tag
    }

    /// A loaded component, if this sandbox has it.
    pub fn loaded(&self, hash: &ComponentHash) -> Option<Arc<LoadedComponent>> {
        self.components
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(hash)
            .cloned()
    }

    /// Compiles (or loads precompiled) and checks a component; cached by hash.
    pub async fn load(
        &self,
        component: &ComponentBytes,
    ) -> Result<Arc<LoadedComponent>, HostError> {
        if let Some(c) = self.loaded(&component.hash) {
            return Ok(c);
        }
        let started = Instant::now();
        check_header(&component.bytes)?;
        let (compiled, from_cache) = self.compile(component)?;
        check_world(&self.engine, &compiled)?;

        let mut workflow_linker = self.workflow_linker.clone();
        deny_nondeterministic_imports(&self.engine, &mut workflow_linker, &compiled)
            .map_err(|e| HostError::WrongWorld(format!("{e:#}")))?;
        let link = |linker: &Linker<GuestState>| {
            linker
                .instantiate_pre(&compiled)
                .and_then(ComponentPre::new)
                .map_err(|e| {
                    HostError::WrongWorld(format!(
                        "the component cannot be linked against the Cairn host: {e:#}"
                    ))
                })
        };
        let workflow_pre = link(&workflow_linker)?;
        let activity_pre = link(&self.activity_linker)?;

        // Ask the component what it holds (activity mode: it may touch WASI).
        let mut store = self.activity_store(None)?;
        let guest = activity_pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| self.guest_error(e, &store))?;
        let info = guest
            .cairn_workflow_guest()
            .call_describe(&mut store)
            .await
            .map_err(|e| self.guest_error(e, &store))?;

        let loaded = Arc::new(LoadedComponent {
            hash: component.hash.clone(),
            info,
            size: component.bytes.len(),
            load_time: started.elapsed(),
            from_cache,
            workflow_pre,
            activity_pre,
            idle_activities: Mutex::new(Vec::new()),
        });
        tracing::debug!(hash = %loaded.hash, ms = loaded.load_time.as_secs_f64() * 1e3, from_cache, "component loaded");
        self.components
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(component.hash.clone(), loaded.clone());
        Ok(loaded)
    }

    fn compile(&self, component: &ComponentBytes) -> Result<(Component, bool), HostError> {
        let not_component = |e: wasmtime::Error| {
            HostError::NotAComponent(format!(
                "the file is not a valid WebAssembly component: {e:#}"
            ))
        };
        let file = crate::precompile::file_name(&component.hash, &self.engine_tag);
        let candidates = self
            .config
            .precompiled_dirs
            .iter()
            .chain(self.config.cache_dir.as_ref());
        for path in candidates.map(|d| d.join(&file)).filter(|p| p.is_file()) {
            // SAFETY: `deserialize_file` trusts the file to be wasmtime's own
            // output. Precompiled files are written only by
            // `precompile_component` below or by `Precompiler` (`cairn
            // precompile`, the packaging step), with this configuration (the
            // file name carries the engine tag), renamed into place
            // atomically, in directories the operator controls. Wasmtime
            // checks the rest before using it: the ELF header, its version,
            // the target, flags against this CPU, tunables and features; a
            // refusal only costs a compilation.
            #[allow(unsafe_code)]
            let loaded = unsafe { Component::deserialize_file(&self.engine, &path) };
            match loaded {
                Ok(c) => return Ok((c, true)),
                Err(e) => tracing::warn!(
                    "ignoring precompiled component {}, compiling it instead: {e:#}",
                    path.display()
                ),
            }
        }
        let Some(dir) = &self.config.cache_dir else {
            return Ok((
                Component::new(&self.engine, &component.bytes).map_err(not_component)?,
                false,
            ));
        };
        let path = dir.join(&file);
        let bytes = self
            .engine
            .precompile_component(&component.bytes)
            .map_err(not_component)?;
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(dir)?;
            let tmp = path.with_extension(format!("tmp{}", std::process::id()));
            std::fs::write(&tmp, &bytes)?;
            std::fs::rename(&tmp, &path)
        };
        if let Err(e) = write() {
            tracing::warn!(dir = %dir.display(), "cannot cache the precompiled component: {e}");
        }
        // SAFETY: `bytes` was produced just above by `precompile_component`
        // on this very engine.
        #[allow(unsafe_code)]
        let c = unsafe { Component::deserialize(&self.engine, &bytes) }.map_err(not_component)?;
        Ok((c, false))
    }

    fn activity_store(
        &self,
        dirs: Option<&[(PathBuf, String)]>,
    ) -> Result<Store<GuestState>, HostError> {
        let mut b = WasiCtxBuilder::new();
        b.envs(&self.config.activity_env);
        if self.config.activity_network {
            b.inherit_network().allow_ip_name_lookup(true);
        }
        for (host_dir, guest_dir) in dirs.unwrap_or(&[]) {
            b.preopened_dir(host_dir, guest_dir, wasmtime_wasi::FsPerms::ReadWrite)
                .map_err(|e| {
                    HostError::Internal(format!(
                        "cannot open {} for activities: {e:#}",
                        host_dir.display()
                    ))
                })?;
        }
        let out = MemoryOutputPipe::new(64 << 10);
        b.stdout(out.clone()).stderr(out.clone());
        let state = GuestState {
            output: Some(out),
            wasi: b.build(),
            table: ResourceTable::new(),
            limits: Limits::new(self.config.memory_limit_bytes, self.budget.clone()),
            calls: None,
            journal_time: JournalTime::default(),
            rng: SeededRng::new(0),
            refuel: false,
            interrupt: None,
            http_ctx: WasiHttpCtx::new(),
            http: ActivityHttp::new(self.http.clone()),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        store
            .set_fuel(u64::MAX)
            .map_err(|e| HostError::Internal(format!("{e:#}")))?;
        store
            .fuel_async_yield_interval(Some(FUEL_YIELD_INTERVAL))
            .map_err(|e| HostError::Internal(format!("{e:#}")))?;
        Ok(store)
    }

    /// Runs workflow `workflow` of `component` from the start with `input`,
    /// its host calls answered by `calls`. Gives `calls` back with how the
    /// run ended: the guest's own result, an interrupt by `calls`, or the
    /// guest's failure (trap, fuel, memory, a denied call).
    pub async fn run_workflow<C: WorkflowCalls>(
        &self,
        component: &LoadedComponent,
        workflow: &str,
        input: &[u8],
        seed: u64,
        calls: C,
    ) -> (C, Result<WorkflowExit, HostError>) {
        let journal_time = JournalTime::default();
        journal_time.set_ms(calls.now_ms());
        let out = MemoryOutputPipe::new(16 << 10);
        let wasi = WasiCtxBuilder::new()
            .stdout(out.clone())
            .stderr(out.clone())
            .wall_clock(JournalWallClock(journal_time.clone()))
            .monotonic_clock(JournalMonotonicClock(journal_time.clone()))
            .secure_random(SeededRng::new(seed ^ 0x5EC0_DE00_0000_0001))
            .insecure_random(SeededRng::new(seed ^ 0x5EC0_DE00_0000_0002))
            .insecure_random_seed(u128::from(seed) << 64 | u128::from(seed.rotate_left(17)))
            .build();
        let state = GuestState {
            wasi,
            table: ResourceTable::new(),
            limits: Limits::new(self.config.memory_limit_bytes, self.budget.clone()),
            calls: Some(Box::new(calls)),
            journal_time,
            rng: SeededRng::new(seed),
            refuel: false,
            interrupt: None,
            output: Some(out),
            http_ctx: WasiHttpCtx::new(),
            http: ActivityHttp::new(self.http.clone()),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        let budget = self.config.fuel_per_await;
        let r = self
            .run_in(&mut store, component, workflow, input, budget)
            .await;
        let calls: Box<dyn std::any::Any> = store
            .data_mut()
            .calls
            .take()
            .expect("the calls are kept until the run ends");
        let calls = *calls
            .downcast::<C>()
            .expect("the store holds the calls it was given");
        if store.data_mut().interrupt.take().is_some() {
            return (calls, Ok(WorkflowExit::Interrupted));
        }
        (
            calls,
            r.map(WorkflowExit::Returned)
                .map_err(|e| self.guest_error(e, &store)),
        )
    }

    async fn run_in(
        &self,
        store: &mut Store<GuestState>,
        component: &LoadedComponent,
        workflow: &str,
        input: &[u8],
        budget: u64,
    ) -> wasmtime::Result<Result<Vec<u8>, WitFailure>> {
        store.set_fuel(budget)?;
        store.fuel_async_yield_interval(Some(FUEL_YIELD_INTERVAL))?;
        store.call_hook(move |mut ctx, hook| {
            if matches!(hook, CallHook::ReturningFromHost) && ctx.data().refuel {
                ctx.data_mut().refuel = false;
                ctx.set_fuel(budget)?;
            }
            Ok(())
        });
        let guest = component
            .workflow_pre
            .instantiate_async(&mut *store)
            .await?;
        guest
            .cairn_workflow_guest()
            .call_run(&mut *store, workflow, input)
            .await
    }

    /// Runs one attempt of activity `name` with real WASI, bounded by
    /// `timeout`.
    ///
    /// Activity instances are reused: one that returned (success or a
    /// failure the guest chose) goes back to a small idle list of its
    /// component and takes a later call, of any execution — like a warm
    /// Lambda container, globals survive between calls, so an activity can
    /// keep a client or a cache there but must not keep per-call state. An
    /// instance that trapped, timed out, hit a limit or was cancelled is
    /// dropped. Reuse saves an instantiation (its memory mapping and
    /// initialization) per call: most of an activity's host cost.
    pub async fn run_activity(
        &self,
        component: &LoadedComponent,
        name: &str,
        input: &[u8],
        info: ActivityInfo,
        timeout: Option<Duration>,
    ) -> Result<ActivityRun, HostError> {
        let timeout = timeout.unwrap_or(self.config.default_activity_timeout);
        let idle = component
            .idle_activities
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop();
        let (mut store, guest, printed_before) = match idle {
            Some(i) => (i.store, Some(i.guest), i.printed),
            None => (
                self.activity_store(Some(&self.config.activity_dirs))?,
                None,
                0,
            ),
        };
        store
            .set_fuel(u64::MAX)
            .map_err(|e| HostError::Internal(format!("{e:#}")))?;
        let run = async {
            let guest = match guest {
                Some(g) => g,
                None => component.activity_pre.instantiate_async(&mut store).await?,
            };
            let r = guest
                .cairn_workflow_guest()
                .call_activity(&mut store, name, input, &info)
                .await?;
            wasmtime::Result::Ok((guest, r))
        };
        let r = tokio::time::timeout(timeout, run).await;
        let printed = match &store.data().output {
            Some(pipe) => pipe.contents(),
            None => Default::default(),
        };
        let output: String = String::from_utf8_lossy(&printed[printed_before.min(printed.len())..])
            .chars()
            .take(4096)
            .collect();
        // A refused request fails the attempt whatever the guest made of
        // the error: the operator's allow-list, not the guest, decides.
        if let Some(target) = store.data().http.denied.clone()
            && r.is_ok()
        {
            return Err(GuestError::HttpDenied { target }.into());
        }
        match r {
            Err(_) => Err(GuestError::Timeout {
                ms: timeout.as_millis() as u64,
            }
            .into()),
            Ok(Ok((guest, result))) => {
                if self.config.reuse_activity_instances
                    && printed.len() < REUSE_OUTPUT_LIMIT
                    && !store.data().limits.denied
                {
                    let mut idle = component
                        .idle_activities
                        .lock()
                        .unwrap_or_else(|e| e.into_inner());
                    if idle.len() < IDLE_ACTIVITY_INSTANCES {
                        idle.push(ActivityInstance {
                            store,
                            guest,
                            printed: printed.len(),
                        });
                    }
                }
                Ok(ActivityRun { result, output })
            }
            Ok(Err(e)) => Err(self.guest_error(e, &store)),
        }
    }

    fn guest_error(&self, e: wasmtime::Error, store: &Store<GuestState>) -> HostError {
        if store.data().limits.denied {
            return GuestError::MemoryLimit {
                limit: store.data().limits.reported_limit(),
            }
            .into();
        }
        if let Some(Trap::OutOfFuel) = e.downcast_ref::<Trap>() {
            return GuestError::FuelExhausted {
                budget: self.config.fuel_per_await,
            }
            .into();
        }
        if let Some(DeniedCall(call)) = e.downcast_ref::<DeniedCall>() {
            return GuestError::Denied { call: call.clone() }.into();
        }
        let mut message = match e.downcast_ref::<Trap>() {
            Some(Trap::StackOverflow) => "stack overflow (recursion too deep?)".to_string(),
            Some(trap) => trap.to_string(),
            None => e.root_cause().to_string(),
        };
        // A Rust panic prints its message to stderr before it aborts.
        if let Some(out) = &store.data().output {
            let text = String::from_utf8_lossy(&out.contents()).into_owned();
            if let Some(panic) = text.lines().rev().find(|l| l.contains("panicked at")) {
                let next = text
                    .lines()
                    .skip_while(|l| *l != panic)
                    .nth(1)
                    .unwrap_or("");
                message = format!("{message}: {} {}", panic.trim(), next.trim())
                    .trim()
                    .to_string();
            }
        }
        if let Some(bt) = e.downcast_ref::<wasmtime::WasmBacktrace>() {
            let frames: Vec<String> = bt
                .frames()
                .iter()
                .filter_map(|f| f.func_name().map(short_symbol))
                .filter(|n| !is_runtime_frame(n))
                .take(4)
                .collect();
            if !frames.is_empty() {
                message.push_str(&format!(" (at {})", frames.join(" <- ")));
            }
        }
        GuestError::Trap { message }.into()
    }
}

/// `swap_saga::swap::{{closure}}::h1234` -> `swap_saga::swap::{{closure}}`.
fn short_symbol(name: &str) -> String {
    let name = name.strip_prefix('<').unwrap_or(name);
    match name.rsplit_once("::h") {
        Some((head, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            head.to_string()
        }
        _ => name.to_string(),
    }
}

/// Frames of std, the SDK and the bindings: noise in a guest backtrace.
fn is_runtime_frame(name: &str) -> bool {
    [
        "std::",
        "core::",
        "alloc::",
        "__rust",
        "rust_panic",
        "cairn_sdk::",
        "wit_bindgen",
        "<cairn_sdk",
        "abort",
        "dlmalloc",
    ]
    .iter()
    .any(|p| name.starts_with(p) || name.contains("_export_") || name.contains("__CairnComponent"))
}

/// Trap raised by an import workflow mode denies; names the call.
#[derive(Debug)]
struct DeniedCall(String);

impl std::fmt::Display for DeniedCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "workflow code called {}, which workflow mode denies",
            self.0
        )
    }
}

impl std::error::Error for DeniedCall {}

/// Interfaces (without version) the workflow linker provides.
const WORKFLOW_INTERFACES: &[&str] = &[
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:clocks/wall-clock",
    "wasi:clocks/monotonic-clock",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:cli/exit",
    "wasi:cli/environment",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "cairn:workflow/types",
    "cairn:workflow/host",
];

/// Every other import of the component (filesystem, sockets, http...) is
/// defined as a trap that names the call: the component links, and fails
/// only if workflow code actually uses one.
fn deny_nondeterministic_imports(
    engine: &Engine,
    linker: &mut Linker<GuestState>,
    component: &Component,
) -> wasmtime::Result<()> {
    use wasmtime::component::types::ComponentItem;
    for (name, item) in component.component_type().imports(engine) {
        let interface = name.split('@').next().unwrap_or(name);
        if WORKFLOW_INTERFACES.contains(&interface) {
            continue;
        }
        let ComponentItem::ComponentInstance(instance) = item.ty else {
            continue;
        };
        let mut inst = linker.instance(name)?;
        for (export, item) in instance.exports(engine) {
            match item.ty {
                ComponentItem::ComponentFunc(_) => {
                    let call = format!("{interface}#{export}");
                    inst.func_new(export, move |_, _, _, _| {
                        Err(wasmtime::Error::new(DeniedCall(call.clone())))
                    })?;
                }
                ComponentItem::Resource(_) => {
                    // Aliases of wasi:io resources must be the very types the
                    // io interfaces use; the denied interfaces' own resources
                    // are never created, so one placeholder type serves them.
                    use wasmtime::component::ResourceType;
                    let ty = match export {
                        "input-stream" => {
                            ResourceType::host::<wasmtime_wasi_io::streams::DynInputStream>()
                        }
                        "output-stream" => {
                            ResourceType::host::<wasmtime_wasi_io::streams::DynOutputStream>()
                        }
                        "error" => ResourceType::host::<wasmtime_wasi_io::streams::Error>(),
                        "pollable" => ResourceType::host::<wasmtime_wasi_io::poll::DynPollable>(),
                        _ => ResourceType::host::<()>(),
                    };
                    inst.resource(export, ty, |_, _| Ok(()))?;
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// The WASI interfaces a workflow may use, all deterministic. Filesystem and
/// sockets are left out: [`deny_nondeterministic_imports`] turns each of
/// their functions into a trap that names it.
fn add_deterministic_wasi(l: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    use wasmtime_wasi::cli::WasiCli;
    use wasmtime_wasi::clocks::WasiClocks;
    use wasmtime_wasi::p2::bindings::{cli, clocks, random};
    use wasmtime_wasi::random::WasiRandom;
    use wasmtime_wasi::{cli::WasiCliView, clocks::WasiClocksView};

    struct HasIo;
    impl wasmtime::component::HasData for HasIo {
        type Data<'a> = &'a mut ResourceTable;
    }
    wasmtime_wasi_io::bindings::wasi::io::error::add_to_linker::<GuestState, HasIo>(l, |t| {
        &mut t.table
    })?;
    wasmtime_wasi_io::bindings::wasi::io::poll::add_to_linker::<GuestState, HasIo>(l, |t| {
        &mut t.table
    })?;
    wasmtime_wasi_io::bindings::wasi::io::streams::add_to_linker::<GuestState, HasIo>(l, |t| {
        &mut t.table
    })?;
    clocks::wall_clock::add_to_linker::<GuestState, WasiClocks>(l, GuestState::clocks)?;
    clocks::monotonic_clock::add_to_linker::<GuestState, WasiClocks>(l, GuestState::clocks)?;
    random::random::add_to_linker::<GuestState, WasiRandom>(l, |t| t.wasi.random())?;
    random::insecure::add_to_linker::<GuestState, WasiRandom>(l, |t| t.wasi.random())?;
    random::insecure_seed::add_to_linker::<GuestState, WasiRandom>(l, |t| t.wasi.random())?;
    cli::exit::add_to_linker::<GuestState, WasiCli>(l, GuestState::cli)?;
    cli::environment::add_to_linker::<GuestState, WasiCli>(l, GuestState::cli)?;
    cli::stdin::add_to_linker::<GuestState, WasiCli>(l, GuestState::cli)?;
    cli::stdout::add_to_linker::<GuestState, WasiCli>(l, GuestState::cli)?;
    cli::stderr::add_to_linker::<GuestState, WasiCli>(l, GuestState::cli)?;
    cli::terminal_input::add_to_linker::<GuestState, WasiCli>(l, GuestState::cli)?;
    cli::terminal_output::add_to_linker::<GuestState, WasiCli>(l, GuestState::cli)?;
    cli::terminal_stdin::add_to_linker::<GuestState, WasiCli>(l, GuestState::cli)?;
    cli::terminal_stdout::add_to_linker::<GuestState, WasiCli>(l, GuestState::cli)?;
    cli::terminal_stderr::add_to_linker::<GuestState, WasiCli>(l, GuestState::cli)?;
    Ok(())
}

/// Refuses what is not a component before compiling it, with a hint.
pub(crate) fn check_header(bytes: &[u8]) -> Result<(), HostError> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(HostError::NotAComponent(
            "the file is not WebAssembly (no \\0asm header): pass the .wasm built by `cargo build --target wasm32-wasip2`".into(),
        ));
    }
    if bytes[4..8] == [1, 0, 0, 0] {
        return Err(HostError::NotAComponent(
            "this is a core WebAssembly module, not a component: build the guest for the wasm32-wasip2 target (cargo build --target wasm32-wasip2)".into(),
        ));
    }
    Ok(())
}

/// What to say about a component that uses `name` (`cairn:workflow/guest@0.2.0`)
/// instead of this host's version: both versions, and what to do.
fn version_mismatch(name: &str) -> String {
    let ours = &WIT_PACKAGE["cairn:workflow@".len()..];
    let theirs = name.rsplit_once('@').map_or("", |(_, v)| v);
    let parse = |v: &str| -> Option<Vec<u64>> { v.split('.').map(|p| p.parse().ok()).collect() };
    let advice = match (parse(theirs), parse(ours)) {
        (Some(t), Some(o)) if t > o => format!(
            "the component's SDK is newer than this cairn: upgrade cairn to one that implements {theirs}, or rebuild the component with the cairn-sdk of this cairn (WIT {ours})"
        ),
        _ => format!("rebuild the component with the cairn-sdk of this cairn (WIT {ours})"),
    };
    format!(
        "the component was built against cairn:workflow@{theirs} (it uses {name}), but this host implements {WIT_PACKAGE}: {advice}"
    )
}

/// Checks the component speaks this host's WIT version.
fn check_world(engine: &Engine, component: &Component) -> Result<(), HostError> {
    let ty = component.component_type();
    let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_string()).collect();
    let imports: Vec<String> = ty.imports(engine).map(|(n, _)| n.to_string()).collect();
    let guest = format!(
        "cairn:workflow/guest@{}",
        &WIT_PACKAGE["cairn:workflow@".len()..]
    );
    let other_version = exports.iter().chain(&imports).find(|n| {
        n.starts_with("cairn:workflow/") && !n.ends_with(&WIT_PACKAGE["cairn:workflow".len()..])
    });
    if let Some(name) = other_version {
        return Err(HostError::WrongWorld(version_mismatch(name)));
    }
    if !exports.contains(&guest) {
        return Err(HostError::WrongWorld(format!(
            "the component does not export {guest}, so it is not a Cairn component (exports: {}): build it with cairn-sdk and `cairn_sdk::component!`",
            if exports.is_empty() {
                "none".into()
            } else {
                exports.join(", ")
            }
        )));
    }
    Ok(())
}
