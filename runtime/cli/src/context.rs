//! What the commands run with, built from the global options: the store,
//! the sandbox (with the activities' grants), the engine and the printer;
//! and the logs.

use crate::args::{ActivityArgs, Global, StoreKind};
use crate::render;
use anyhow::{Result, anyhow, bail};
use cairn_core::{Clock, SimClock, Timestamp};
use cairn_engine::{Engine, EngineConfig, SystemClock};
use cairn_host::{HttpAllowList, Sandbox, SandboxConfig};
use cairn_store_sqlite::SqliteStore;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub struct Ctx {
    pub global: Global,
    pub engine: Engine,
    pub printer: Arc<render::Printer>,
}

pub fn init_tracing(g: &Global) {
    let default = match (g.quiet, g.verbose) {
        (true, _) => "error",
        (_, 0) => "warn",
        (_, 1) => "info,wasmtime=warn,cranelift=warn",
        _ => "debug,wasmtime=info,cranelift=info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    // One JSON object per line (for `cairn dev` under a log collector).
    let _ = match std::env::var("CAIRN_LOG_FORMAT").as_deref() {
        Ok("json") => logs.json().try_init(),
        _ => logs.try_init(),
    };
}

/// What a store is opened for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum StoreUse {
    /// One command: every `due` call is a full sweep.
    Command,
    /// `cairn dev`, whose wake loop asks for due work every few seconds:
    /// on DynamoDB it looks for stale starts once per
    /// [`STALE_START_SCAN`] (the index scan reads every shard's
    /// `running#` key).
    Server,
}

/// How often `cairn dev` on DynamoDB looks for starts whose driving
/// process died (found within their lease plus this, plus the 2 s its
/// wake loop reads ahead).
pub const STALE_START_SCAN: std::time::Duration = std::time::Duration::from_secs(15);

pub async fn open_store(global: &Global, purpose: StoreUse) -> Result<Arc<dyn cairn_core::Store>> {
    Ok(match global.store {
        StoreKind::Dynamodb => {
            let threshold = cairn_store_dynamodb::check_payload_threshold(
                &global.payload_threshold.to_string(),
            )?;
            let mut store = cairn_store_dynamodb::DynamoStore::connect(&global.table)
                .await?
                .with_payload_threshold(threshold);
            if let Some(bucket) = global
                .payload_bucket
                .as_deref()
                .filter(|b| !b.trim().is_empty())
            {
                store = store.with_payload_bucket(bucket.trim());
            }
            if purpose == StoreUse::Server {
                store = store.with_stale_start_scan_every(STALE_START_SCAN);
            }
            Arc::new(store)
        }
        _ => Arc::new(SqliteStore::open(&global.db)?),
    })
}

pub async fn build(global: &Global, skip_time: bool, activities: &ActivityArgs) -> Result<Ctx> {
    build_for(global, skip_time, activities, StoreUse::Command).await
}

/// [`build`], with the store opened for `purpose`.
pub async fn build_for(
    global: &Global,
    skip_time: bool,
    activities: &ActivityArgs,
    purpose: StoreUse,
) -> Result<Ctx> {
    let store = open_store(global, purpose).await?;
    let cache_dir = global
        .cache_dir
        .clone()
        .unwrap_or_else(|| global.db.parent().unwrap_or(Path::new(".")).join("cache"));
    let mut config = SandboxConfig {
        cache_dir: Some(cache_dir),
        ..SandboxConfig::default()
    };
    for d in &activities.dirs {
        let (host, guest) = d.split_once(':').unwrap_or((d, d));
        let host = PathBuf::from(host);
        if !host.is_dir() {
            bail!(
                "{} --dir {d}: {} is not a directory",
                cairn_core::ErrorCode::BadInput,
                host.display()
            );
        }
        config.activity_dirs.push((host, guest.to_string()));
    }
    for kv in &activities.envs {
        let (k, v) = kv.split_once('=').ok_or_else(|| {
            anyhow!(
                "{} --env {kv}: expected KEY=VALUE",
                cairn_core::ErrorCode::BadInput
            )
        })?;
        config.activity_env.push((k.into(), v.into()));
    }
    config.http_allow = HttpAllowList::parse(&activities.allow_http)
        .map_err(|e| anyhow!("{} {e}", cairn_core::ErrorCode::BadInput))?;
    config.http_roots = activities.http_extra_roots.clone();
    let sandbox = Arc::new(Sandbox::new(config)?);
    let clock: Arc<dyn Clock> = if skip_time {
        Arc::new(SimClock::new(Timestamp::now_system()))
    } else {
        Arc::new(SystemClock)
    };
    let printer = Arc::new(render::Printer::new(global.quiet));
    let config = EngineConfig::default();
    let engine = Engine::new(sandbox, store, clock, config).with_observer(printer.clone());
    Ok(Ctx {
        global: global.clone(),
        engine,
        printer,
    })
}
