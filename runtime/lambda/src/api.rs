//! The client API (`cairn_core::api`, `docs/api.md`) served by the host.
//! The verbs are `cairn_engine::api`'s, shared with `cairn dev`; what is the
//! host's own is how a `start` advances (with its schedules) and waits.

use crate::{App, outcome_name, requests_delta};
use cairn_core::ExecutionId;
use cairn_core::api::{self, ApiError, Description, StartAnswer};
use cairn_core::{Payload, Timestamp};
use cairn_engine::api::error as engine_error;
use cairn_engine::{Advance, AdvanceOptions, StartRequest};
use serde::Serialize;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Polls between the advance and the end of a start's `wait_ms`: from
/// 50 ms, doubling, at most 1 s apart.
const FIRST_POLL: Duration = Duration::from_millis(50);
const MAX_POLL: Duration = Duration::from_secs(1);

fn to_value<T: Serialize>(v: T) -> Value {
    serde_json::to_value(v).expect("answers always serialize")
}

impl App {
    /// Serves one API request.
    pub(crate) async fn api(
        &self,
        req: api::Request,
        arn: &str,
        opts: &AdvanceOptions,
    ) -> Result<Value, ApiError> {
        use cairn_engine::api as verbs;
        let engine = &self.engine;
        match req {
            api::Request::Start(s) => self.start(s, arn, opts).await.map(to_value),
            api::Request::Signal(s) => verbs::signal(engine, s).await.map(to_value),
            api::Request::Query(q) => verbs::query(engine, q).await.map(to_value),
            api::Request::Cancel(c) => verbs::cancel(engine, c).await.map(to_value),
            api::Request::Describe(d) => verbs::describe(engine, d).await.map(to_value),
            api::Request::History(h) => verbs::history(engine, h).await.map(to_value),
            api::Request::List(l) => verbs::list(engine, l).await.map(to_value),
        }
    }

    async fn start(
        &self,
        s: api::Start,
        arn: &str,
        opts: &AdvanceOptions,
    ) -> Result<StartAnswer, ApiError> {
        let (component, id) = cairn_engine::api::start_target(&self.engine, &s).await?;
        let before = self.requests();
        let t_component = Instant::now();
        let precompiled = self
            .engine
            .component(&component)
            .await
            .map_err(engine_error)?
            .from_cache;
        let component_ms = t_component.elapsed().as_secs_f64() * 1e3;
        let started = self
            .engine
            .start(StartRequest {
                workflow: s.workflow,
                id: id.clone(),
                input: Payload::json(&s.input),
                component: Some(component),
                parent: None,
            })
            .await
            .map_err(engine_error)?;
        let created_ms = self.started.elapsed().as_secs_f64() * 1e3;
        let wire_ms = self.store_wire_ms();
        let t = Instant::now();
        let outcome = self
            .advance(&id, arn, opts, None)
            .await
            .map_err(engine_error)?;
        let advance_ms = t.elapsed().as_secs_f64() * 1e3;
        let waited_ms = match s.wait_ms {
            Some(ms) if !matches!(outcome, Advance::Finished { .. } | Advance::Parked(_)) => {
                Some(self.wait_for_end(&id, ms, opts).await?)
            }
            Some(_) => Some(0),
            None => None,
        };
        let ex = self.engine.load(&id).await.map_err(engine_error)?;
        Ok(StartAnswer {
            execution: Description::from_execution(&ex),
            created: started.created,
            outcome: outcome_name(&outcome).to_string(),
            waited_ms,
            timing: Some(json!({
                "first_write_since_process_start_ms": created_ms,
                "store_wire_since_process_start_at_first_write_ms": wire_ms,
                "component_ms": component_ms,
                // Deserialized from a .cwasm (packaged or cached), not compiled.
                "component_precompiled": precompiled,
                "advance_ms": advance_ms,
                "since_process_start_ms": self.started.elapsed().as_secs_f64() * 1e3,
            })),
            requests: Some(requests_delta(&before, &self.requests())),
        })
    }

    /// Polls the execution's meta, with backoff, until it has finished or
    /// parked, `wait_ms` has passed, or the invocation nears its deadline.
    /// Other invocations advance it (its stream records, wakes, the sweep).
    /// Returns how long it waited (ms).
    async fn wait_for_end(
        &self,
        id: &ExecutionId,
        wait_ms: u64,
        opts: &AdvanceOptions,
    ) -> Result<u64, ApiError> {
        let t = Instant::now();
        let mut until = Timestamp::now_system().plus(Duration::from_millis(wait_ms));
        if let Some(d) = opts.deadline {
            until = until.min(d);
        }
        let mut pause = FIRST_POLL;
        loop {
            let meta = self.engine.store().meta(id).await.map_err(engine_error)?;
            if meta.status.is_terminal() || meta.status == cairn_core::Status::Parked {
                break;
            }
            let now = Timestamp::now_system();
            if now >= until {
                break;
            }
            tokio::time::sleep(pause.min(until.since(now))).await;
            pause = (pause * 2).min(MAX_POLL);
        }
        Ok(t.elapsed().as_millis() as u64)
    }
}
