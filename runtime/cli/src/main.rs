//! # cairn: the command line
//!
//! Runs workflows on the embedded SQLite store (`.cairn/cairn.db` by
//! default): `run` drives one to the end in this process; `start`, `signal`,
//! `cancel` and `resume` push an execution forward one event at a time, the
//! way the Lambda host does in AWS; `status`, `list` and `history` read the
//! store; `inspect`, `register` and `precompile` handle components, and
//! `components list`/`components gc` the ones stored.
//!
//! `--store dynamodb` drives executions in a DynamoDB table from this
//! process: an operator's tool, which runs workflow and activity code on
//! this machine. `--function NAME|ARN` instead talks to a deployed
//! function through its client API (`cairn-client`): `start`, `signal`,
//! `query`, `cancel`, `status`, `history` and `list` are served there and
//! nothing runs here.

mod args;
mod commands;
mod context;
mod remote;
mod render;

use anyhow::Result;
use args::{Cli, Command};
use clap::Parser;
use std::process::ExitCode;

/// Exit codes.
mod exit {
    pub const OK: u8 = 0;
    pub const FAILED: u8 = 1;
    pub const ERROR: u8 = 2;
    pub const PARKED: u8 = 3;
}

/// mimalloc: the engine allocates small buffers on every replayed step,
/// where it is faster than glibc's malloc (see the workspace manifest).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    context::init_tracing(&cli.global);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::ERROR);
        }
    };
    match rt.block_on(dispatch(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {}", render::error_chain(&e));
            ExitCode::from(exit::ERROR)
        }
    }
}

async fn dispatch(cli: Cli) -> Result<u8> {
    let g = cli.global;
    if let Some(function) = &g.function
        && !matches!(
            cli.command,
            Command::Inspect { .. } | Command::Precompile { .. }
        )
    {
        return remote::dispatch(function, cli.command, g.quiet).await;
    }
    match cli.command {
        Command::Run {
            component,
            start,
            skip_time,
            activities,
            json,
        } => commands::drive::run(&g, component, start, skip_time, activities, json).await,
        Command::Start {
            component,
            start,
            wait_ms,
            activities,
            json,
        } => commands::drive::start(&g, component, start, wait_ms, activities, json).await,
        Command::Signal {
            id,
            name,
            payload,
            no_advance,
            idempotency_key,
            activities,
        } => {
            commands::drive::signal(
                &g,
                id,
                name,
                payload,
                no_advance,
                idempotency_key,
                activities,
            )
            .await
        }
        Command::Cancel {
            id,
            reason,
            activities,
        } => commands::drive::cancel(&g, id, reason, activities).await,
        Command::Resume {
            id,
            skip_time,
            component,
            no_wait,
            activities,
            json,
        } => commands::drive::resume(&g, id, skip_time, component, no_wait, activities, json).await,
        Command::Wake {
            skip_time,
            activities,
        } => commands::drive::wake(&g, skip_time, activities).await,
        Command::Status { id, json } => commands::read::status(&g, id, json).await,
        Command::List {
            status,
            workflow,
            limit,
            updated_after,
            updated_before,
            json,
        } => {
            commands::read::list(
                &g,
                status,
                workflow,
                limit,
                updated_after,
                updated_before,
                json,
            )
            .await
        }
        Command::History { id, run, json } => commands::read::history(&g, id, run, json).await,
        Command::Query { id, name, args } => commands::read::query(&g, id, name, args).await,
        Command::ReplayCheck {
            component,
            workflow,
            sample,
            json,
        } => commands::components::replay_check(&g, component, workflow, sample, json).await,
        Command::Inspect { component, json } => {
            commands::components::inspect(&g, component, json).await
        }
        Command::Precompile {
            target,
            out,
            components,
            json,
        } => commands::components::precompile(target, &out, &components, json).await,
        Command::Table { action } => commands::serve::table(&g, action).await,
        Command::Dev {
            port,
            bind,
            read_only,
            otlp_endpoint,
            activities,
        } => commands::serve::dev(&g, port, bind, read_only, otlp_endpoint, activities).await,
        Command::Components { action } => commands::components::components(&g, action).await,
        Command::Register { component } => commands::components::register(&g, component).await,
    }
}
