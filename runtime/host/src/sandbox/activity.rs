//! Activity mode: the store with real WASI, one attempt under its timeout, and
//! the pool of idle instances reused between calls.

use super::config::FUEL_YIELD_INTERVAL;
use super::{GuestState, LoadedComponent, Sandbox};
use crate::bindings::Component as Bindings;
use crate::bindings::types::{ActivityInfo, Failure as WitFailure};
use crate::error::{GuestError, HostError};
use crate::http::ActivityHttp;
use crate::limits::Limits;
use crate::wasi::{JournalTime, SeededRng};
use std::path::PathBuf;
use std::time::Duration;
use wasmtime::Store;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi_http::WasiHttpCtx;

/// An activity-mode instance kept between calls, with its store.
pub(super) struct ActivityInstance {
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

/// One finished activity attempt.
#[derive(Debug)]
pub struct ActivityRun {
    /// The guest's answer.
    pub result: Result<Vec<u8>, WitFailure>,
    /// What it printed (stdout and stderr), truncated.
    pub output: String,
}

impl Sandbox {
    pub(super) fn activity_store(
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
}
