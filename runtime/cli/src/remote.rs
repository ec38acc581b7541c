//! `cairn --function NAME|ARN …`: the commands an application's operator
//! runs against a deployment, through the function's client API
//! (`cairn-client`, `docs/api.md`). Nothing runs here: the function starts,
//! advances and answers; this process only invokes it and prints.

use crate::args::Command;
use crate::{exit, render};
use anyhow::{Context, Result, anyhow, bail};
use cairn_client::{Client, api};
use cairn_core::{ErrorCode, Status};
use serde_json::Value;

/// The commands `--function` serves.
const SERVED: &str = "start, signal, query, cancel, status, history and list";

fn json_arg(what: &str, raw: &str) -> Result<Value> {
    let text = match raw.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {what} from {path}"))?,
        None => raw.to_string(),
    };
    serde_json::from_str(&text).map_err(|e| {
        anyhow!(
            "{} {what} is not valid JSON ({e}); example: --input '{{\"name\": \"alice\"}}'",
            ErrorCode::BadInput
        )
    })
}

fn print_json<T: serde::Serialize>(v: &T) {
    println!("{}", serde_json::to_string_pretty(v).expect("json"));
}

/// The exit code for an execution's status: 0 completed (or still going),
/// 1 failed or cancelled, 3 parked.
fn status_code(s: Status) -> u8 {
    match s {
        Status::Failed | Status::Cancelled => exit::FAILED,
        Status::Parked => exit::PARKED,
        _ => exit::OK,
    }
}

/// One execution, as `cairn status` prints it.
fn describe(d: &api::Description) {
    let detail = match d.status {
        Status::Waiting => format!(" (waits for {})", d.waiting_on.as_deref().unwrap_or("?")),
        Status::Parked => d
            .parked
            .as_ref()
            .map(|p| format!(": {p}"))
            .unwrap_or_default(),
        _ => match (&d.output, &d.failure) {
            (Some(o), _) => format!(": {o}"),
            (_, Some(f)) => format!(": {}: {}", f.kind.as_str(), f.message),
            _ => String::new(),
        },
    };
    println!("{}: {}{detail}", d.id, d.status);
    println!(
        "  workflow {} · component {} · {} entries · {} inbox · updated {}",
        d.workflow,
        d.component.get(..12).unwrap_or(&d.component),
        d.journal_len,
        d.inbox,
        d.updated_at
    );
    if let Some(t) = &d.wake_at {
        println!("  wakes at {t}");
    }
}

/// A time argument: RFC 3339 in UTC, or epoch milliseconds.
pub fn time_arg(what: &str, raw: Option<String>) -> Result<Option<api::Time>> {
    raw.map(|r| {
        serde_json::from_value(match r.parse::<u64>() {
            Ok(ms) => Value::from(ms),
            Err(_) => Value::from(r),
        })
        .map_err(|e| anyhow!("{} {what}: {e}", ErrorCode::BadInput))
    })
    .transpose()
}

/// Runs `command` through `function`.
pub async fn dispatch(function: &str, command: Command, quiet: bool) -> Result<u8> {
    let client = Client::from_env(function).await;
    let note = |line: String| {
        if !quiet {
            eprintln!("{line}");
        }
    };
    match command {
        Command::Start {
            component,
            start,
            wait_ms,
            json,
            ..
        } => {
            if component.is_some() {
                bail!(
                    "{} with --function, the function starts the workflow's registered component: register it (`cairn --store dynamodb register X.wasm`) and leave the file out",
                    ErrorCode::BadInput
                );
            }
            let answer = client
                .start(api::Start {
                    workflow: start.workflow,
                    id: start.id,
                    input: json_arg("--input", &start.input)?,
                    component: None,
                    wait_ms,
                })
                .await?;
            let d = &answer.execution;
            if json {
                print_json(&answer);
                return Ok(status_code(d.status));
            }
            match answer.created {
                true => note(format!(
                    "▶ {}: workflow {} started by {function}",
                    d.id, d.workflow
                )),
                false => note(format!(
                    "▶ {} already exists with this input ({})",
                    d.id, d.status
                )),
            }
            match (d.status, &d.output, &d.failure) {
                (Status::Completed, Some(output), _) => {
                    note(format!("✔ {} completed", d.id));
                    println!("{output}");
                }
                (_, _, Some(f)) => {
                    eprintln!(
                        "✘ {} {}: {}: {}",
                        d.id,
                        d.status,
                        f.kind.as_str(),
                        f.message
                    )
                }
                _ => describe(d),
            }
            Ok(status_code(d.status))
        }
        Command::Signal {
            id,
            name,
            payload,
            idempotency_key,
            ..
        } => {
            let a = client
                .signal(api::Signal {
                    id,
                    name: name.clone(),
                    payload: json_arg("the payload", &payload)?,
                    idempotency_key,
                })
                .await?;
            match a.duplicate {
                false => println!(
                    "signal '{name}' delivered to {} (inbox item {}); the function advances it",
                    a.id, a.delivered
                ),
                true => println!(
                    "signal '{name}' was already delivered to {} under this key ({}): nothing sent",
                    a.id, a.delivered
                ),
            }
            Ok(exit::OK)
        }
        Command::Cancel { id, reason, .. } => {
            let a = client.cancel(&id, Some(&reason)).await?;
            println!(
                "cancel requested for {} (inbox item {}); the function runs its compensations",
                a.id, a.delivered
            );
            Ok(exit::OK)
        }
        Command::Status { id, json } => {
            let d = client.describe(&id).await?;
            match json {
                true => print_json(&d),
                false => describe(&d),
            }
            Ok(exit::OK)
        }
        Command::Query { id, name, args } => {
            let a = client
                .query(&id, &name, json_arg("the query's arguments", &args)?)
                .await?;
            match (a.answer, a.failure) {
                (Some(answer), _) => {
                    println!("{answer}");
                    Ok(exit::OK)
                }
                (_, Some(f)) => {
                    eprintln!("✘ query '{name}' failed: {}", f.message);
                    Ok(exit::FAILED)
                }
                (None, None) => Ok(exit::OK),
            }
        }
        Command::History { id, run, json } => {
            let mut entries = Vec::new();
            let mut cursor = None;
            let shown = loop {
                let page = client
                    .history(api::History {
                        id: id.clone(),
                        run,
                        cursor,
                        limit: Some(api::MAX_PAGE),
                    })
                    .await?;
                entries.extend(page.entries);
                cursor = page.next_cursor;
                if cursor.is_none() {
                    break (page.run, page.runs);
                }
            };
            if json {
                print_json(&entries);
                return Ok(exit::OK);
            }
            if shown.1 > 1 {
                println!(
                    "  run {} of {} (continue-as-new; see the others with --run N)",
                    shown.0, shown.1
                );
            }
            for e in &entries {
                match e.to_entry() {
                    Some(entry) => println!("  {}", render::entry_line(&entry, 70)),
                    None => println!("  #{:<3} {}", e.index, e.kind),
                }
            }
            Ok(exit::OK)
        }
        Command::List {
            status,
            workflow,
            limit,
            updated_after,
            updated_before,
            json,
        } => {
            let (after, before) = (
                time_arg("--updated-after", updated_after)?,
                time_arg("--updated-before", updated_before)?,
            );
            let mut out = Vec::new();
            let mut cursor = None;
            while out.len() < limit {
                let page = client
                    .list(api::List {
                        workflow: workflow.clone(),
                        status: status.clone(),
                        updated_after: after,
                        updated_before: before,
                        cursor,
                        limit: Some((limit - out.len()).clamp(1, api::MAX_PAGE)),
                    })
                    .await?;
                out.extend(page.executions);
                cursor = page.next_cursor;
                if cursor.is_none() {
                    break;
                }
            }
            out.truncate(limit);
            if json {
                print_json(&out);
                return Ok(exit::OK);
            }
            if out.is_empty() {
                println!("no executions");
                return Ok(exit::OK);
            }
            println!(
                "{:<36} {:<16} {:<10} {:<24} WAITING ON",
                "ID", "WORKFLOW", "STATUS", "UPDATED"
            );
            for s in &out {
                println!(
                    "{:<36} {:<16} {:<10} {:<24} {}",
                    s.id,
                    s.workflow,
                    s.status.as_str(),
                    s.updated_at,
                    s.waiting_on
                        .as_deref()
                        .filter(|_| s.status == Status::Waiting)
                        .unwrap_or("")
                );
            }
            Ok(exit::OK)
        }
        other => bail!(
            "{} `{}` is not served through --function ({SERVED} are): it runs workflow code or manages components, an operator's job: run it with --store dynamodb (activities then run on this machine)",
            ErrorCode::BadInput,
            command_name(&other)
        ),
    }
}

fn command_name(c: &Command) -> &'static str {
    match c {
        Command::Run { .. } => "run",
        Command::Resume { .. } => "resume",
        Command::Wake { .. } => "wake",
        Command::ReplayCheck { .. } => "replay-check",
        Command::Inspect { .. } => "inspect",
        Command::Precompile { .. } => "precompile",
        Command::Register { .. } => "register",
        Command::Table { .. } => "table",
        Command::Components { .. } => "components",
        _ => "this command",
    }
}
