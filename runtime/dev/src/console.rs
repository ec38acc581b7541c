//! The web console: one page (HTML, CSS, JavaScript embedded in the binary
//! with `include_str!`, no build step) that reads the same `POST /api` as
//! any client, follows `GET /events`, and two reads of its own: the
//! components (`GET /console/components`) and a replay check of a
//! component against stored journals (`POST /console/replay-check`).

use crate::http::{AppState, error_response};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use cairn_core::api::ApiError;
use cairn_core::{ComponentHash, ListFilter};
use cairn_engine::ReplayOutcome;
use cairn_engine::api as verbs;
use serde::Deserialize;
use serde_json::{Value, json};

const INDEX: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");
const STYLE: &str = include_str!("../assets/style.css");

pub(crate) fn routes() -> axum::Router<AppState> {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX) }),
        )
        .route(
            "/assets/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/assets/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
        .route("/console/info", get(info))
        .route("/console/components", get(components))
        .route("/console/replay-check", post(replay_check))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

async fn info(State(s): State<AppState>) -> Json<Value> {
    Json(json!({
        "store": s.store_label,
        "read_only": s.runner.read_only,
        "version": env!("CARGO_PKG_VERSION"),
    }))
}

/// Every stored component: hash, size, the workflows pointing at it, the
/// unfinished executions pinned to it, and what it holds (its workflows
/// and activities, read by loading it).
async fn components(State(s): State<AppState>) -> Response {
    let engine = s.runner.engine();
    let report = match engine.components_gc(false).await {
        Ok(r) => r,
        Err(e) => return error_response(&verbs::error(e)),
    };
    let mut out = Vec::new();
    for c in &report.components {
        let held = match engine.component(&c.hash).await {
            Ok(l) => json!({
                "workflows": l.info.workflows,
                "activities": l.info.activities,
                "sdk": l.info.sdk,
            }),
            Err(e) => json!({"error": e.to_string()}),
        };
        out.push(json!({
            "hash": c.hash.to_string(),
            "size": c.size,
            "registered_for": c.workflows,
            "pinned": c.pinned,
            "holds": held,
        }));
    }
    Json(json!({
        "components": out,
        "missing": report.missing.iter().map(|m| json!({
            "hash": m.hash.to_string(), "workflows": m.workflows, "pinned": m.pinned,
        })).collect::<Vec<_>>(),
    }))
    .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayCheck {
    component: String,
    #[serde(default)]
    sample: Option<usize>,
}

/// Replays the most recent executions of each of the component's
/// workflows against it, writing nothing (`cairn replay-check` for a
/// stored component).
async fn replay_check(State(s): State<AppState>, body: axum::body::Bytes) -> Response {
    let req: ReplayCheck = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error_response(&ApiError::bad_request(format!(
                "bad replay-check request ({e}): send {{\"component\": \"<sha256>\", \"sample\": 20}}"
            )));
        }
    };
    let hash = match ComponentHash::parse(&req.component) {
        Ok(h) => h,
        Err(e) => return error_response(&ApiError::bad_request(e)),
    };
    let engine = s.runner.engine();
    let loaded = match engine.component(&hash).await {
        Ok(l) => l,
        Err(e) => return error_response(&verbs::error(e)),
    };
    let mut results = Vec::new();
    for w in &loaded.info.workflows {
        let list = engine
            .list(ListFilter {
                status: vec![],
                workflow: Some(w.clone()),
                limit: req.sample.unwrap_or(20).clamp(1, 200),
            })
            .await;
        let list = match list {
            Ok(l) => l,
            Err(e) => return error_response(&verbs::error(e)),
        };
        for meta in list {
            let r = engine.replay(&meta.id, Some(&hash)).await;
            let (verdict, detail) = match r {
                Ok(ReplayOutcome::Compatible { entries, finished }) => (
                    "compatible",
                    json!({"entries": entries, "finished": finished}),
                ),
                Ok(ReplayOutcome::Diverged(n)) => ("diverged", json!(n)),
                Ok(ReplayOutcome::Failed(m)) => ("failed", json!({"message": m})),
                Err(e) => ("error", json!({"message": e.to_string()})),
            };
            results.push(json!({
                "id": meta.id.to_string(), "workflow": w, "verdict": verdict, "detail": detail,
            }));
        }
    }
    Json(json!({"component": hash.to_string(), "results": results})).into_response()
}
