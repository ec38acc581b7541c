//! The commands that advance executions in this process (`run`, `start`,
//! `signal`, `cancel`, `resume`, `wake`), and the loop that drives an
//! execution and the children it waits for.

use super::{parse_id, parse_json_arg, read_component};
use crate::args::{ActivityArgs, Global, StartArgs, StoreKind};
use crate::context::{Ctx, build};
use crate::{exit, render};
use anyhow::{Result, bail};
use cairn_core::{ComponentHash, ExecutionId, Status, Timestamp};
use cairn_engine::{Advance, AdvanceOptions, EngineError, StartRequest};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `cairn run`: starts a workflow and drives it to the end in this process.
pub async fn run(
    g: &Global,
    component: PathBuf,
    start: StartArgs,
    skip_time: bool,
    activities: ActivityArgs,
    json: bool,
) -> Result<u8> {
    let ctx = build(g, skip_time, &activities).await?;
    let id = start_execution(&ctx, Some(&component), &start).await?;
    let outcome = drive(&ctx, &id, AdvanceOptions::default(), true).await?;
    finish(&ctx, &id, outcome, json).await
}

/// `cairn start`: starts an execution and advances it until it first waits.
pub async fn start(
    g: &Global,
    component: Option<PathBuf>,
    start: StartArgs,
    wait_ms: Option<u64>,
    activities: ActivityArgs,
    json: bool,
) -> Result<u8> {
    if wait_ms.is_some() {
        bail!(
            "{} --wait-ms is for --function: here the start advances the execution until it waits, in this process",
            cairn_core::ErrorCode::BadInput
        );
    }
    let ctx = build(g, false, &activities).await?;
    let id = start_execution(&ctx, component.as_deref(), &start).await?;
    let outcome = ctx.engine.advance(&id, AdvanceOptions::default()).await?;
    finish(&ctx, &id, outcome, json).await
}

/// `cairn signal`: sends a signal and advances the execution.
pub async fn signal(
    g: &Global,
    id: String,
    name: String,
    payload: String,
    no_advance: bool,
    idempotency_key: Option<String>,
    activities: ActivityArgs,
) -> Result<u8> {
    let ctx = build(g, false, &activities).await?;
    let id = parse_id(&id)?;
    let payload = parse_json_arg("the payload", &payload)?;
    match idempotency_key {
        Some(key) => match ctx.engine.signal_once(&id, &name, payload, &key).await? {
            Some(_) => ctx.printer.note(&format!(
                "signal '{name}' delivered to {id} (inbox item signal.{key})"
            )),
            None => ctx.printer.note(&format!(
                "signal '{name}' was already delivered to {id} under this key: nothing sent"
            )),
        },
        None => {
            let item = ctx.engine.signal(&id, &name, payload).await?;
            ctx.printer.note(&format!(
                "signal '{name}' delivered to {id} (inbox item {})",
                item.id
            ));
        }
    }
    if no_advance {
        return Ok(exit::OK);
    }
    let outcome = ctx.engine.advance(&id, AdvanceOptions::default()).await?;
    finish(&ctx, &id, outcome, false).await
}

/// `cairn cancel`: asks an execution to cancel and advances it.
pub async fn cancel(
    g: &Global,
    id: String,
    reason: String,
    activities: ActivityArgs,
) -> Result<u8> {
    let ctx = build(g, false, &activities).await?;
    let id = parse_id(&id)?;
    ctx.engine.cancel(&id, &reason).await?;
    ctx.printer.note(&format!("cancel requested for {id}"));
    let outcome = ctx.engine.advance(&id, AdvanceOptions::default()).await?;
    finish(&ctx, &id, outcome, false).await
}

/// `cairn resume`: drives a waiting or interrupted execution forward.
pub async fn resume(
    g: &Global,
    id: String,
    skip_time: bool,
    component: Option<PathBuf>,
    no_wait: bool,
    activities: ActivityArgs,
    json: bool,
) -> Result<u8> {
    let ctx = build(g, skip_time, &activities).await?;
    let id = parse_id(&id)?;
    ctx.engine.load(&id).await?;
    let mut opts = AdvanceOptions::default();
    if let Some(path) = component {
        let bytes = read_component(&path)?;
        let loaded = ctx.engine.add_component(bytes).await?;
        ctx.printer.note(&format!(
            "replaying {id} against component {}",
            loaded.hash.short()
        ));
        opts.component = Some(loaded.hash.clone());
    }
    let outcome = drive(&ctx, &id, opts, !no_wait).await?;
    finish(&ctx, &id, outcome, json).await
}

/// `cairn wake`: advances every execution whose timer or retry is due.
pub async fn wake(g: &Global, skip_time: bool, activities: ActivityArgs) -> Result<u8> {
    let ctx = build(g, skip_time, &activities).await?;
    let now = if skip_time {
        Timestamp::from_millis(u64::MAX)
    } else {
        ctx.engine.clock().now()
    };
    let due = ctx.engine.store().due(now, 1000).await?;
    if due.is_empty() {
        ctx.printer.note("nothing is due");
    }
    let mut code = exit::OK;
    for (id, at) in due {
        ctx.printer.note(&format!("waking {id} (due {at})"));
        if skip_time {
            ctx.engine.clock().sleep_until(at).await;
        }
        let outcome = ctx.engine.advance(&id, AdvanceOptions::default()).await?;
        code = code.max(finish(&ctx, &id, outcome, false).await?);
    }
    Ok(code)
}

pub async fn start_execution(
    ctx: &Ctx,
    component: Option<&Path>,
    start: &StartArgs,
) -> Result<ExecutionId> {
    let input = parse_json_arg("--input", &start.input)?;
    let hash: Option<ComponentHash> = match component {
        Some(path) => Some(
            ctx.engine
                .add_component(read_component(path)?)
                .await?
                .hash
                .clone(),
        ),
        None => None,
    };
    let id = match &start.id {
        Some(id) => parse_id(id)?,
        None => ExecutionId::generate(&start.workflow, ulid::Ulid::new()),
    };
    let started = ctx
        .engine
        .start(StartRequest {
            workflow: start.workflow.clone(),
            id: id.clone(),
            input,
            component: hash,
            parent: None,
        })
        .await?;
    if started.created {
        ctx.printer.note(&format!(
            "▶ {id}: workflow {} on component {} (store {})",
            started.meta.workflow,
            started.meta.component.short(),
            match ctx.global.store {
                StoreKind::Dynamodb => format!("dynamodb table {}", ctx.global.table),
                StoreKind::Sqlite => ctx.global.db.display().to_string(),
            }
        ));
    } else {
        ctx.printer.note(&format!(
            "▶ {id} already exists with this input ({}): continuing it",
            started.meta.status
        ));
    }
    Ok(id)
}

/// Drives the execution and the children it waits for to the end
/// ([`cairn_engine::Engine::drive`]); if `watch`, waits for signals by
/// watching the inbox.
async fn drive(
    ctx: &Ctx,
    id: &ExecutionId,
    opts: AdvanceOptions,
    watch: bool,
) -> Result<Advance, EngineError> {
    let mut opts = opts;
    loop {
        let r = ctx.engine.drive(id, opts.clone()).await?;
        opts.component = None;
        match &r {
            Advance::Suspended { waiting_on, .. } if watch => {
                ctx.printer.note(&format!(
                    "… {id} waits for {waiting_on}: send it from another terminal with `cairn signal <id> <name> '<json>'`"
                ));
                wait_for_inbox(ctx, id).await?;
            }
            Advance::Conflict { .. } if watch => {
                // Another process (a `cairn signal`) is advancing it: follow.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            _ => return Ok(r),
        }
    }
}

/// Local-only convenience: polls the SQLite file for an inbox change (the
/// product's push path needs no polling: see `cairn signal`, and the Lambda
/// host's stream trigger).
async fn wait_for_inbox(ctx: &Ctx, id: &ExecutionId) -> Result<(), EngineError> {
    let start = ctx.engine.store().meta(id).await?;
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = ctx.engine.store().meta(id).await?;
        if now.inbox_version != start.inbox_version
            || now.status != start.status
            || now.updated_at != start.updated_at
        {
            return Ok(());
        }
    }
}

async fn finish(ctx: &Ctx, id: &ExecutionId, outcome: Advance, json: bool) -> Result<u8> {
    let elapsed = ctx.printer.elapsed();
    let code = match &outcome {
        Advance::Finished {
            status: Status::Completed,
            ..
        } => exit::OK,
        Advance::Finished { .. } => exit::FAILED,
        Advance::Parked(_) => exit::PARKED,
        _ => exit::OK,
    };
    if json {
        let ex = ctx.engine.load(id).await?;
        println!(
            "{}",
            serde_json::to_string_pretty(&render::status_json(&ex)).expect("json")
        );
    } else {
        render::outcome(id, &outcome, elapsed, ctx.global.quiet);
    }
    Ok(code)
}
