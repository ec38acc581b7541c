//! The commands that read the store: `status`, `list`, `history`, `query`.

use super::{parse_id, parse_json_arg};
use crate::args::{ActivityArgs, Global};
use crate::context::build;
use crate::{exit, remote, render};
use anyhow::{Result, bail};
use cairn_core::{ListFilter, Status};

/// `cairn status`: shows one execution.
pub async fn status(g: &Global, id: String, json: bool) -> Result<u8> {
    let ctx = build(g, false, &ActivityArgs::default()).await?;
    let ex = ctx.engine.load(&parse_id(&id)?).await?;
    render::status(&ex, json);
    Ok(exit::OK)
}

/// `cairn list`: executions, most recently updated first.
pub async fn list(
    g: &Global,
    status: Vec<Status>,
    workflow: Option<String>,
    limit: usize,
    updated_after: Option<String>,
    updated_before: Option<String>,
    json: bool,
) -> Result<u8> {
    let ctx = build(g, false, &ActivityArgs::default()).await?;
    let after = remote::time_arg("--updated-after", updated_after)?;
    let before = remote::time_arg("--updated-before", updated_before)?;
    let timed = after.is_some() || before.is_some();
    let mut list = ctx
        .engine
        .list(ListFilter {
            status,
            workflow,
            // With a time filter, filter all, then take `limit`.
            limit: if timed { 0 } else { limit },
        })
        .await?;
    list.retain(|m| {
        after.is_none_or(|a| m.updated_at >= a.0) && before.is_none_or(|b| m.updated_at < b.0)
    });
    list.truncate(limit);
    render::list(&list, json);
    Ok(exit::OK)
}

/// `cairn history`: an execution's journal (of its current run, or an earlier one).
pub async fn history(g: &Global, id: String, run: Option<u32>, json: bool) -> Result<u8> {
    let ctx = build(g, false, &ActivityArgs::default()).await?;
    let mut ex = ctx.engine.load(&parse_id(&id)?).await?;
    if let Some(run) = run.filter(|r| *r != ex.meta.run) {
        if run == 0 || run > ex.meta.run {
            bail!(
                "{} execution {id} has runs 1 to {}",
                cairn_core::ErrorCode::BadInput,
                ex.meta.run
            );
        }
        ex.journal = ctx.engine.store().load_run(&ex.meta.id, run).await?;
        ex.inbox.clear();
    }
    render::history(&ex, json);
    Ok(exit::OK)
}

/// `cairn query`: asks a running execution a query; nothing is written.
pub async fn query(g: &Global, id: String, name: String, args: String) -> Result<u8> {
    let ctx = build(g, false, &ActivityArgs::default()).await?;
    let args = parse_json_arg("the query's arguments", &args)?;
    match ctx.engine.query(&parse_id(&id)?, &name, args).await? {
        Ok(answer) => {
            println!("{}", String::from_utf8_lossy(answer.as_bytes()));
            Ok(exit::OK)
        }
        Err(failure) => {
            eprintln!("✘ query '{name}' failed: {failure}");
            Ok(exit::FAILED)
        }
    }
}
