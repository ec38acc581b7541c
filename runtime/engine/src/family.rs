//! [`Engine::drive`]: one process drives an execution and the children it
//! waits for to the end, sleeping through the family's timers and retries.
//! The push hosts need none of this (a scheduled wake or the sweep pushes
//! each member); `cairn run`, `cairn start`, tests and benchmarks do.

use crate::{Advance, AdvanceOptions, Engine, EngineError};
use cairn_core::{Event, ExecutionId, ExecutionMeta, Status, Timestamp};
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
                    let Some(next) = self.next_wake_in_family(id).await?.or(*wake_at) else {
                        return Ok(r);
                    };
                    self.clock().sleep_until(next).await;
                    self.wake_family(id).await?;
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

    async fn next_wake_in_family(
        &self,
        id: &ExecutionId,
    ) -> Result<Option<Timestamp>, EngineError> {
        Ok(self
            .family(id)
            .await?
            .iter()
            .filter(|m| m.status == Status::Waiting)
            .filter_map(|m| m.wake_at)
            .min())
    }

    /// Advances the members other than `id` whose wake has come (the
    /// caller advances `id` itself next).
    async fn wake_family(&self, id: &ExecutionId) -> Result<(), EngineError> {
        let now = self.clock().now();
        for m in self.family(id).await? {
            if &m.id != id && m.status == Status::Waiting && m.wake_at.is_some_and(|t| t <= now) {
                self.advance(&m.id, AdvanceOptions::default()).await?;
            }
        }
        Ok(())
    }
}
