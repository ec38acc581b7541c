//! OpenTelemetry traces over OTLP/HTTP (opt-in: `--otlp-endpoint URL` or
//! `OTEL_EXPORTER_OTLP_ENDPOINT`).
//!
//! One span per advance (`advance`, attributes `cairn.execution_id`,
//! `cairn.run`, `cairn.workflow`, `cairn.steps_appended`, `cairn.outcome`)
//! and one per activity attempt (`activity NAME`, attributes
//! `cairn.execution_id`, `cairn.seq`, `cairn.activity`, `cairn.attempt`,
//! `cairn.outcome` and, when it failed, `cairn.failure_kind`), each
//! attempt a child of the advance that ran it. The trace id is the first
//! 16 bytes of SHA-256 of the execution id: every span of one execution,
//! across advances, processes and restarts, lands in the same trace.
//!
//! **Never duplicated by replay.** Spans are built only from the engine's
//! [`EngineEvent`]s, which report new ground only: an entry appended (never
//! one replayed), an attempt started or failed (only real attempts run). A
//! replay that re-reads a journaled completion emits nothing; an attempt
//! that a crash cut short emits no span (it never ended) and its rerun
//! emits its own. `runtime/cli/tests/e2e/otel.rs` counts them across a
//! `kill -9` and a restart.
//!
//! The spans are put together here (ids, times, parents) and handed to the
//! SDK's batch processor, which exports them with `opentelemetry-otlp`'s
//! HTTP/protobuf exporter through a hyper client on the rustls stack the
//! AWS SDK already brings (HTTP and HTTPS collectors alike). The batch
//! delay is the SDK's (`OTEL_BSP_SCHEDULE_DELAY`, 5 s by default); a clean
//! stop flushes what is left.

use cairn_core::{Event, ExecutionId, Failure};
use cairn_engine::{EngineEvent, Observer};
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{
    BatchSpanProcessor, IdGenerator, RandomIdGenerator, SpanData, SpanEvents, SpanLinks,
    SpanProcessor,
};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// The path OTLP/HTTP collectors take traces on.
const TRACES_PATH: &str = "/v1/traces";

/// Why traces could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TracesError {
    /// The endpoint is not an http(s) URL.
    #[error(
        "--otlp-endpoint {0:?} is not an http:// or https:// URL (give a collector's OTLP/HTTP address, e.g. http://localhost:4318)"
    )]
    BadEndpoint(String),
    /// The exporter refused its configuration.
    #[error("cannot set up the OTLP exporter: {0}")]
    Exporter(String),
}

/// The URL traces are posted to, from a collector's base URL (as
/// `OTEL_EXPORTER_OTLP_ENDPOINT` gives it, `http://localhost:4318`) or a
/// full one ending in `/v1/traces`.
pub fn traces_url(endpoint: &str) -> Result<String, TracesError> {
    let e = endpoint.trim();
    let rest = e
        .strip_prefix("http://")
        .or_else(|| e.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !host.starts_with('/') => {}
        _ => return Err(TracesError::BadEndpoint(endpoint.to_string())),
    }
    if e.parse::<http::Uri>().is_err() {
        return Err(TracesError::BadEndpoint(endpoint.to_string()));
    }
    let base = e.trim_end_matches('/');
    Ok(if base.ends_with(TRACES_PATH) {
        base.to_string()
    } else {
        format!("{base}{TRACES_PATH}")
    })
}

/// The trace id of execution `id`: the first 16 bytes of its SHA-256.
pub fn trace_id(id: &ExecutionId) -> TraceId {
    let digest = Sha256::digest(id.as_str().as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    TraceId::from_bytes(bytes)
}

/// An advance whose span is not ended yet.
struct OpenAdvance {
    span_id: SpanId,
    start: SystemTime,
    steps: u32,
    /// The run driven (the last one, after a continue-as-new).
    run: Option<(String, u32)>,
    /// Attempts running, by operation number: (attempt, start).
    attempts: HashMap<u32, (String, u32, SystemTime)>,
}

/// Builds and exports the spans: an [`Observer`] of the engine, whose
/// events say when each advance starts and ends (those the engine runs
/// itself too: children, parents pushed) and when each attempt starts.
pub struct Traces {
    processor: BatchSpanProcessor,
    scope: InstrumentationScope,
    ids: RandomIdGenerator,
    /// Advances in flight by execution (a stack: a parent pushed by its
    /// child's end may overlap its own advance).
    open: Mutex<HashMap<ExecutionId, Vec<OpenAdvance>>>,
}

impl std::fmt::Debug for Traces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Traces").finish_non_exhaustive()
    }
}

impl Traces {
    /// Exports to `url` (see [`traces_url`]) as service `service` (unless
    /// `OTEL_SERVICE_NAME` names another). Must be called in a Tokio
    /// runtime: the exports run on it.
    pub fn new(url: &str, service: &str) -> Result<Self, TracesError> {
        let client = client::HyperClient::new(tokio::runtime::Handle::current());
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(client)
            .with_endpoint(url)
            .with_protocol(Protocol::HttpBinary)
            .with_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| TracesError::Exporter(e.to_string()))?;
        let mut processor = BatchSpanProcessor::builder(exporter).build();
        let resource = match std::env::var("OTEL_SERVICE_NAME") {
            Ok(s) if !s.is_empty() => Resource::builder().build(),
            _ => Resource::builder()
                .with_service_name(service.to_string())
                .build(),
        };
        processor.set_resource(&resource);
        let scope = InstrumentationScope::builder("cairn")
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        tracing::info!(%url, "exporting traces over OTLP/HTTP");
        Ok(Self {
            processor,
            scope,
            ids: RandomIdGenerator::default(),
            open: Mutex::new(HashMap::new()),
        })
    }

    fn open_lock(&self) -> std::sync::MutexGuard<'_, HashMap<ExecutionId, Vec<OpenAdvance>>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An advance of `id` starts now.
    fn advance_started(&self, id: &ExecutionId) {
        let open = OpenAdvance {
            span_id: self.ids.new_span_id(),
            start: SystemTime::now(),
            steps: 0,
            run: None,
            attempts: HashMap::new(),
        };
        self.open_lock().entry(id.clone()).or_default().push(open);
    }

    /// The advance of `id` ended with `outcome` (`completed`, `waiting`,
    /// `conflict`, `error`...). Attempts still open (aborted: another
    /// completion won, the advance stopped) end as `abandoned`.
    fn advance_ended(&self, id: &ExecutionId, outcome: &str) {
        let open = {
            let mut map = self.open_lock();
            let stack = map.get_mut(id);
            let open = stack.and_then(|s| s.pop());
            if map.get(id).is_some_and(|s| s.is_empty()) {
                map.remove(id);
            }
            open
        };
        let Some(open) = open else { return };
        let end = SystemTime::now();
        for (seq, (name, attempt, start)) in open.attempts {
            self.attempt_span(
                id,
                Some(open.span_id),
                seq,
                &name,
                attempt,
                start,
                end,
                "abandoned",
                None,
            );
        }
        let mut attributes = vec![
            KeyValue::new("cairn.execution_id", id.to_string()),
            KeyValue::new("cairn.steps_appended", i64::from(open.steps)),
            KeyValue::new("cairn.outcome", outcome.to_string()),
        ];
        if let Some((workflow, run)) = open.run {
            attributes.push(KeyValue::new("cairn.workflow", workflow));
            attributes.push(KeyValue::new("cairn.run", i64::from(run)));
        }
        let status = match outcome {
            "error" | "parked" => Status::error(outcome.to_string()),
            _ => Status::Unset,
        };
        self.export(
            id,
            open.span_id,
            None,
            "advance".into(),
            open.start,
            end,
            attributes,
            status,
        );
    }

    /// Sends what is buffered now (waits for the export).
    pub fn flush(&self) {
        if let Err(e) = self.processor.force_flush() {
            tracing::warn!("cannot flush traces: {e}");
        }
    }

    /// Flushes and stops the exporter.
    pub fn shutdown(&self) {
        if let Err(e) = self.processor.shutdown() {
            tracing::warn!("cannot flush traces at stop: {e}");
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn attempt_span(
        &self,
        id: &ExecutionId,
        parent: Option<SpanId>,
        seq: u32,
        name: &str,
        attempt: u32,
        start: SystemTime,
        end: SystemTime,
        outcome: &str,
        failure: Option<&Failure>,
    ) {
        let mut attributes = vec![
            KeyValue::new("cairn.execution_id", id.to_string()),
            KeyValue::new("cairn.seq", i64::from(seq)),
            KeyValue::new("cairn.activity", name.to_string()),
            KeyValue::new("cairn.attempt", i64::from(attempt)),
            KeyValue::new("cairn.outcome", outcome.to_string()),
        ];
        let status = match failure {
            Some(f) => {
                attributes.push(KeyValue::new("cairn.failure_kind", f.kind.as_str()));
                Status::error(f.message.clone())
            }
            None if outcome == "abandoned" => Status::Unset,
            None => Status::Ok,
        };
        self.export(
            id,
            self.ids.new_span_id(),
            parent,
            format!("activity {name}"),
            start,
            end,
            attributes,
            status,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn export(
        &self,
        id: &ExecutionId,
        span_id: SpanId,
        parent: Option<SpanId>,
        name: String,
        start: SystemTime,
        end: SystemTime,
        attributes: Vec<KeyValue>,
        status: Status,
    ) {
        let span_context = SpanContext::new(
            trace_id(id),
            span_id,
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        );
        self.processor.on_end(SpanData {
            span_context,
            parent_span_id: parent.unwrap_or(SpanId::INVALID),
            parent_span_is_remote: false,
            span_kind: SpanKind::Internal,
            name: name.into(),
            start_time: start,
            end_time: end.max(start),
            attributes,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status,
            instrumentation_scope: self.scope.clone(),
        });
    }

    /// Ends the open attempt `attempt` of `seq` (started when the engine
    /// said so, else when its advance started).
    fn attempt_ended(
        &self,
        id: &ExecutionId,
        seq: u32,
        name: &str,
        attempt: u32,
        outcome: &str,
        failure: Option<&Failure>,
    ) {
        let now = SystemTime::now();
        let (parent, start) = {
            let mut map = self.open_lock();
            match map.get_mut(id).and_then(|s| s.last_mut()) {
                Some(open) => {
                    let start = match open.attempts.remove(&seq) {
                        Some((_, a, t)) if a == attempt => t,
                        _ => open.start,
                    };
                    (Some(open.span_id), start)
                }
                None => (None, now),
            }
        };
        self.attempt_span(id, parent, seq, name, attempt, start, now, outcome, failure);
    }
}

impl Observer for Traces {
    fn event(&self, id: &ExecutionId, event: &EngineEvent) {
        match event {
            EngineEvent::AdvanceStarted => self.advance_started(id),
            EngineEvent::RunLoaded { workflow, run } => {
                if let Some(open) = self.open_lock().get_mut(id).and_then(|s| s.last_mut()) {
                    open.run = Some((workflow.clone(), *run));
                }
            }
            EngineEvent::AdvanceEnded { outcome } => self.advance_ended(id, outcome),
            EngineEvent::Appended(entry) => {
                if let Some(open) = self.open_lock().get_mut(id).and_then(|s| s.last_mut()) {
                    open.steps += 1;
                }
                if let Event::ActivityCompleted {
                    seq,
                    name,
                    attempts,
                    result,
                    ..
                } = &entry.event
                {
                    let (outcome, failure) = match result {
                        Ok(_) => ("ok", None),
                        Err(f) => ("failed", Some(f)),
                    };
                    self.attempt_ended(id, *seq, name, *attempts, outcome, failure);
                }
            }
            EngineEvent::AttemptStarted { seq, name, attempt } => {
                if let Some(open) = self.open_lock().get_mut(id).and_then(|s| s.last_mut()) {
                    open.attempts
                        .insert(*seq, (name.clone(), *attempt, SystemTime::now()));
                }
            }
            EngineEvent::AttemptFailed {
                seq,
                name,
                attempt,
                failure,
            } => self.attempt_ended(id, *seq, name, *attempt, "retrying", Some(failure)),
            _ => {}
        }
    }
}

/// The HTTP client of the exporter: hyper on the rustls stack already in
/// the build. The SDK exports from a thread of its own, outside Tokio; each
/// request runs as a task on the server's runtime.
mod client {
    use bytes::Bytes;
    use http::{Request, Response};
    use http_body_util::{BodyExt, Full, Limited};
    use hyper_util::client::legacy::Client;
    use hyper_util::client::legacy::connect::HttpConnector;
    use opentelemetry_http::{HttpClient, HttpError};
    use std::time::Duration;

    /// Answers over this size are cut (collectors answer with a few bytes).
    const MAX_ANSWER: usize = 1 << 20;

    #[derive(Debug, Clone)]
    pub(super) struct HyperClient {
        client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
        handle: tokio::runtime::Handle,
    }

    impl HyperClient {
        pub(super) fn new(handle: tokio::runtime::Handle) -> Self {
            let https = hyper_rustls::HttpsConnectorBuilder::new()
                .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())
                .unwrap_or_else(|e| {
                    tracing::warn!("no native root certificates ({e}): https collectors will fail");
                    hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(
                        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
                            rustls::crypto::aws_lc_rs::default_provider(),
                        ))
                        .with_safe_default_protocol_versions()
                        .expect("aws-lc-rs supports the default versions")
                        .with_root_certificates(rustls::RootCertStore::empty())
                        .with_no_client_auth(),
                    )
                })
                .https_or_http()
                .enable_http1()
                .build();
            let client = Client::builder(hyper_util::rt::TokioExecutor::new()).build(https);
            Self { client, handle }
        }
    }

    #[async_trait::async_trait]
    impl HttpClient for HyperClient {
        async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
            let client = self.client.clone();
            let task = self.handle.spawn(async move {
                let (parts, body) = request.into_parts();
                let request = Request::from_parts(parts, Full::new(body));
                let answer =
                    tokio::time::timeout(Duration::from_secs(10), client.request(request)).await;
                let answer = match answer {
                    Ok(r) => r?,
                    Err(_) => return Err::<_, HttpError>("no answer within 10 s".into()),
                };
                let (parts, body) = answer.into_parts();
                let body = Limited::new(body, MAX_ANSWER).collect().await?.to_bytes();
                Ok(Response::from_parts(parts, body))
            });
            task.await?
        }
    }
}
