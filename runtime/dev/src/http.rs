//! The HTTP side: the client API (`POST /api`), server-sent events
//! (`GET /events`), `/metrics`, and the console (see [`crate::console`]).

use crate::DevConfig;
use crate::runner::{Runner, outcome_name};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use cairn_core::api::{self, ApiError, Description, StartAnswer};
use cairn_core::{ErrorCode, Payload};
use cairn_engine::StartRequest;
use cairn_engine::api as verbs;
use serde::Serialize;
use serde_json::Value;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The server's state: the runner and what the console shows.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) runner: Arc<Runner>,
    pub(crate) store_label: String,
}

pub(crate) fn router(runner: Arc<Runner>, config: &DevConfig) -> Router {
    let state = AppState {
        runner,
        store_label: config.store_label.clone(),
    };
    Router::new()
        .route("/api", any(api_endpoint))
        .route("/events", get(events))
        .route("/metrics", get(metrics))
        .merge(crate::console::routes())
        .with_state(state)
}

/// An API error as an HTTP response: its status, the error object.
pub(crate) fn error_response(e: &ApiError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(e.to_wire())).into_response()
}

fn answer<T: Serialize>(r: Result<T, ApiError>) -> Response {
    match r {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => error_response(&e),
    }
}

/// `POST /api`: one request of `docs/api.md`, answered as a Function URL
/// answers it.
async fn api_endpoint(State(s): State<AppState>, req: Request) -> Response {
    if req.method() != axum::http::Method::POST {
        let mut r = error_response(&ApiError {
            status: 405,
            ..ApiError::bad_request(format!(
                "{} /api: send the request as the body of a POST (docs/api.md)",
                req.method()
            ))
        });
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return r;
    }
    let body = match axum::body::to_bytes(req.into_body(), api::MAX_REQUEST_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return error_response(&ApiError::new(
                ErrorCode::TooLarge,
                format!(
                    "the request is over {} bytes: pass large data by reference (an object-store key)",
                    api::MAX_REQUEST_BYTES
                ),
            ));
        }
    };
    answer(serve(&s, &body).await)
}

async fn serve(s: &AppState, body: &Bytes) -> Result<Value, ApiError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body is not JSON ({e}): send {{\"v\": 1, \"action\": ..., ...}} (docs/api.md)"
        ))
    })?;
    let req = api::Request::from_wire(v)?;
    s.runner.metrics.request(req.action());
    if s.runner.read_only
        && matches!(
            req,
            api::Request::Start(_) | api::Request::Signal(_) | api::Request::Cancel(_)
        )
    {
        return Err(ApiError {
            status: 403,
            ..ApiError::bad_request(format!(
                "{} is refused: this `cairn dev` opened its store read-only (--read-only); it answers describe, history, list and query only",
                req.action()
            ))
        });
    }
    let engine = s.runner.engine();
    match req {
        api::Request::Start(st) => start(s, st).await.map(val),
        api::Request::Signal(sig) => {
            let a = verbs::signal(engine, sig).await?;
            s.runner.push(verbs::execution_id(&a.id)?);
            Ok(val(a))
        }
        api::Request::Cancel(c) => {
            let a = verbs::cancel(engine, c).await?;
            s.runner.push(verbs::execution_id(&a.id)?);
            Ok(val(a))
        }
        api::Request::Query(q) => verbs::query(engine, q).await.map(val),
        api::Request::Describe(d) => verbs::describe(engine, d).await.map(val),
        api::Request::History(h) => verbs::history(engine, h).await.map(val),
        api::Request::List(l) => verbs::list(engine, l).await.map(val),
    }
}

fn val<T: Serialize>(v: T) -> Value {
    serde_json::to_value(v).expect("answers always serialize")
}

/// `start`: create (idempotent by id), advance in this process until it
/// waits; with `wait_ms`, wait for its end while the runner moves it on.
async fn start(s: &AppState, st: api::Start) -> Result<StartAnswer, ApiError> {
    let engine = s.runner.engine();
    let (component, id) = verbs::start_target(engine, &st).await?;
    let started = engine
        .start(StartRequest {
            workflow: st.workflow.clone(),
            id: id.clone(),
            input: Payload::json(&st.input),
            component: Some(component),
            parent: None,
        })
        .await
        .map_err(verbs::error)?;
    if started.created {
        s.runner.publish(&id, "started");
    }
    let outcome = s.runner.advance(&id).await.map_err(verbs::error)?;
    let ended = matches!(
        outcome,
        Some(cairn_engine::Advance::Finished { .. } | cairn_engine::Advance::Parked(_))
    );
    let waited_ms = match st.wait_ms {
        Some(ms) if !ended => Some(
            s.runner
                .wait_for_end(&id, Instant::now() + Duration::from_millis(ms))
                .await
                .map_err(verbs::error)?,
        ),
        Some(_) => Some(0),
        None => None,
    };
    let ex = engine.load(&id).await.map_err(verbs::error)?;
    Ok(StartAnswer {
        execution: Description::from_execution(&ex),
        created: started.created,
        // An advance already in flight (a retried start) is followed, not
        // doubled: the answer names what the execution is doing.
        outcome: match &outcome {
            Some(o) => outcome_name(o).to_string(),
            None => ex.meta.status.as_str().to_string(),
        },
        waited_ms,
        timing: None,
        requests: None,
    })
}

/// `GET /events`: every change (an entry appended, an advance ended, a
/// signal delivered) as a server-sent event `{"id", "what"}`; the stream
/// ends when the server stops.
async fn events(State(s): State<AppState>) -> impl IntoResponse {
    let rx = s.runner.subscribe();
    let runner = s.runner.clone();
    let stream = futures_util::stream::unfold((rx, runner), |(mut rx, runner)| async move {
        let c = tokio::select! {
            _ = runner.until_stopped() => return None,
            c = rx.recv() => c,
        };
        let ev = match c {
            Ok(c) => Event::default()
                .event("change")
                .data(serde_json::to_string(&c).expect("changes serialize")),
            // Too slow a reader: tell it to reload everything.
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                Event::default().event("reload").data("{}")
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
        };
        Some((Ok::<_, Infallible>(ev), (rx, runner)))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// `GET /metrics`: Prometheus' text format.
async fn metrics(State(s): State<AppState>) -> Response {
    let text = s
        .runner
        .metrics
        .render(s.runner.engine().store().as_ref())
        .await;
    Response::builder()
        .header(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )
        .body(Body::from(text))
        .expect("a valid response")
}
