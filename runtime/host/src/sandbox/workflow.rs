//! Workflow mode: the `cairn:workflow/host` imports, answered by a
//! [`WorkflowCalls`] implementation, and a workflow run with its fuel per await.

use super::config::FUEL_YIELD_INTERVAL;
use super::trap::Interrupted;
use super::{GuestState, LoadedComponent, Sandbox};
use crate::bindings::cairn::workflow::host;
use crate::bindings::types::{
    ActivityOptions, Failure as WitFailure, LogLevel, Operation, Outcome,
};
use crate::error::{HostError, Interrupt};
use crate::http::ActivityHttp;
use crate::limits::Limits;
use crate::wasi::{JournalMonotonicClock, JournalTime, JournalWallClock, SeededRng};
use std::future::Future;
use std::pin::Pin;
use wasmtime::Store;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi_http::WasiHttpCtx;

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

impl Sandbox {
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
        // Refilled each time `wait-any` returns (see `refuel_on_wait`).
        store.set_fuel(budget)?;
        store.fuel_async_yield_interval(Some(FUEL_YIELD_INTERVAL))?;
        let guest = component
            .workflow_pre
            .instantiate_async(&mut *store)
            .await?;
        guest
            .cairn_workflow_guest()
            .call_run(&mut *store, workflow, input)
            .await
    }
}
