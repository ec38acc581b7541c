//! # cairn-dev: the local server and web console (`cairn dev`)
//!
//! One long-running process over a store (the SQLite file, or a DynamoDB
//! table) that does what, in AWS, the Lambda host and its pushes do:
//!
//! - serves the client API (`cairn_core::api`, `docs/api.md`) as `POST
//!   /api`, with the verbs of `cairn_engine::api` (the Lambda host's own),
//!   so the two cannot drift; HTTP statuses as `docs/api.md` says;
//! - advances an execution when it is started, signalled or cancelled, in
//!   this process ([`runner`]), one advance per execution at a time;
//! - fires durable timers and retries at their time: a loop over the
//!   store's due wakes ([`cairn_core::Store::due`]) that sleeps until the
//!   next one and is woken early by any advance that suspends;
//! - at start, resumes the executions a crash left running (and waiting
//!   ones with an inbox not yet taken);
//! - serves a web console (`GET /`, static assets embedded in the binary,
//!   no front-end build step) with live updates as server-sent events
//!   (`GET /events`), and `/metrics` in Prometheus' text format;
//! - sends OpenTelemetry traces over OTLP/HTTP when asked ([`otel`]): a
//!   span per advance and per activity attempt, none from replay;
//! - stops cleanly on Ctrl-C or SIGTERM: it stops taking requests and
//!   starting advances, lets those in flight finish (for a while), and
//!   leaves the rest to the next start (every step is durable before the
//!   next one starts, so nothing is lost).
//!
//! With [`DevConfig::read_only`] (a production table looked at), nothing is
//! written: no loop, no resumes, and the mutating verbs are refused.

mod console;
mod http;
mod metrics;
pub mod otel;
pub mod runner;
mod timed;

pub use metrics::Metrics;

use cairn_core::Store;
use cairn_engine::{Engine, EngineConfig, SystemClock};
use cairn_host::Sandbox;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// How `cairn dev` runs.
#[derive(Debug, Clone)]
pub struct DevConfig {
    /// Address to listen on (`127.0.0.1:7233` by default).
    pub addr: SocketAddr,
    /// Refuse every verb that writes (start, signal, cancel) and write
    /// nothing in the background: for looking at a production table.
    pub read_only: bool,
    /// What the console names as the store (`sqlite .cairn/cairn.db`).
    pub store_label: String,
    /// How long a stop waits for advances in flight before leaving them to
    /// the next start.
    pub drain: Duration,
    /// Where to send OpenTelemetry traces (OTLP/HTTP, a collector's base
    /// URL or its `/v1/traces` one); none: no traces. See [`otel`].
    pub otlp_endpoint: Option<String>,
    /// The `service.name` of the traces (unless `OTEL_SERVICE_NAME` is set).
    pub service_name: String,
}

impl Default for DevConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 7233)),
            read_only: false,
            store_label: "store".into(),
            drain: Duration::from_secs(10),
            otlp_endpoint: None,
            service_name: "cairn-dev".into(),
        }
    }
}

/// Why `cairn dev` could not run.
#[derive(Debug, thiserror::Error)]
pub enum DevError {
    /// The address could not be bound.
    #[error(
        "cannot listen on {addr}: {source} (is another `cairn dev` running? pick another --port)"
    )]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Traces were asked for but cannot be sent.
    #[error(transparent)]
    Traces(#[from] otel::TracesError),
    /// The server failed.
    #[error("the HTTP server failed: {0}")]
    Serve(std::io::Error),
}

/// Serves until `shutdown` resolves (Ctrl-C, SIGTERM): builds an engine
/// over `store` (timed for `/metrics`) running guests in `sandbox`,
/// resumes interrupted executions, runs the wake loop and the HTTP server.
/// `ready` is told the bound address once it listens.
pub async fn serve(
    sandbox: Arc<Sandbox>,
    store: Arc<dyn Store>,
    config: DevConfig,
    ready: impl FnOnce(SocketAddr),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), DevError> {
    let traces = match &config.otlp_endpoint {
        Some(e) => Some(Arc::new(otel::Traces::new(
            &otel::traces_url(e)?,
            &config.service_name,
        )?)),
        None => None,
    };
    let metrics = Arc::new(Metrics::new());
    let store: Arc<dyn Store> = Arc::new(timed::TimedStore::new(store, metrics.clone()));
    let engine = Engine::new(
        sandbox,
        store,
        Arc::new(SystemClock),
        EngineConfig::default(),
    );
    let runner = runner::Runner::new(engine, metrics.clone(), traces.clone(), config.read_only);
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .map_err(|source| DevError::Bind {
            addr: config.addr,
            source,
        })?;
    let addr = listener.local_addr().map_err(DevError::Serve)?;
    let background = if config.read_only {
        None
    } else {
        let r = runner.clone();
        Some(tokio::spawn(async move {
            r.resume_interrupted().await;
            r.wake_loop().await;
        }))
    };
    let app = http::router(runner.clone(), &config);
    tracing::info!(%addr, read_only = config.read_only, "cairn dev listening");
    ready(addr);
    let r = runner.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("stopping: no new requests or advances");
            r.stop();
        })
        .await
        .map_err(DevError::Serve)?;
    runner.stop();
    if let Some(b) = background {
        b.abort();
    }
    runner.drain(config.drain).await;
    if let Some(t) = traces {
        // The SDK's flush blocks until its export (which runs on this
        // runtime) is done.
        let _ = tokio::task::spawn_blocking(move || t.shutdown()).await;
    }
    Ok(())
}
