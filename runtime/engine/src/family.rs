//! [`Engine::drive`]: one process drives an execution and the children it
//! waits for to the end, sleeping through the family's timers and retries.
//! The push hosts need none of this (a scheduled wake or the sweep pushes
//! each member); `cairn run`, `cairn start`, tests and benchmarks do.

use crate::{Advance, AdvanceOptions, Engine, EngineError};
use cairn_core::{Event, ExecutionId, ExecutionMeta, Status};
use std::collections::HashSet;

impl Engine {
    /// Drives `id` until it finishes or its family (it and the children it
    /// still waits for, transitively) waits for something no clock brings:
    /// a signal, or an execution outside the family. Sleeps through timers
    /// and retries on the engine's clock (which may skip time), advancing
    /// each member when its wake comes; a child's result reaches its parent
    /// the usual way (the child's advance tells it).
    pub async fn drive(
        &self,
        id: &ExecutionId,
        opts: AdvanceOptions,
    ) -> Result<Advance, EngineError> {
        let mut opts = opts;
        loop {
            let r = self.advance(id, opts.clone()).await?;
            opts.component = None;
            match &r {
                Advance::Suspended { wake_at, .. } => {
                    // One look at the family serves the sleep and the
                    // wakes after it: only this process advances it (a
                    // signal from elsewhere makes a member advance early,
                    // which is harmless).
                    let family = self.family(id).await?;
                    let waiting = || {
                        family
                            .iter()
                            .filter(|m| m.status == Status::Waiting)
                            .filter_map(|m| Some((&m.id, m.wake_at?)))
                    };
                    let Some(next) = waiting().map(|(_, t)| t).min().or(*wake_at) else {
                        return Ok(r);
                    };
                    self.clock().sleep_until(next).await;
                    // The members whose wake has come; `id` itself is
                    // advanced next, by the loop.
                    let now = self.clock().now();
                    for (member, at) in waiting() {
                        if member != id && at <= now {
                            self.advance(member, AdvanceOptions::default()).await?;
                        }
                    }
                }
                Advance::Yielded => {}
                _ => return Ok(r),
            }
        }
    }

    /// `id` and the children it still waits for, transitively.
    async fn family(&self, id: &ExecutionId) -> Result<Vec<ExecutionMeta>, EngineError> {
        let mut out = Vec::new();
        let mut todo = vec![id.clone()];
        while let Some(next) = todo.pop() {
            let ex = self.load(&next).await?;
            let done: HashSet<u32> = ex
                .journal
                .iter()
                .filter(|e| matches!(e.event, Event::ChildCompleted { .. }))
                .filter_map(|e| e.event.seq())
                .collect();
            for e in &ex.journal {
                if let Event::ChildStarted { seq, child_id, .. } = &e.event
                    && !done.contains(seq)
                {
                    todo.push(child_id.clone());
                }
            }
            out.push(ex.meta);
        }
        Ok(out)
    }
}
