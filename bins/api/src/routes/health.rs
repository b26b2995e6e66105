//! Health, readiness, metrics, the OpenAPI document, and 404s.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::answers::{Health, Readiness};
use crate::{ApiError, AppState};

/// `GET /health`: the process answers.
pub async fn health() -> Json<Health> {
    Json(Health { status: "ok".into() })
}

/// `GET /ready`: the store answers and every enabled plugin loaded.
pub async fn ready(State(state): State<AppState>) -> Response {
    let store = state.host.store().clone();
    let store_ok = tokio::task::spawn_blocking(move || store.max_seq()).await.map(|r| r.is_ok()).unwrap_or(false);
    let errors: Vec<String> = state.host.load_errors.iter().map(|e| e.to_string()).collect();
    let ok = store_ok && errors.is_empty();
    let body = Readiness {
        status: if ok { "ready" } else { "not ready" }.into(),
        store: if store_ok { "ok" } else { "unavailable" }.into(),
        plugins: state.host.plugins().keys().cloned().collect(),
        plugin_load_errors: errors,
    };
    let status = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body)).into_response()
}

/// `GET /metrics`: Prometheus text format. Besides this process's counters,
/// it reports the last recorded run of every job from the store, so runs
/// made by the scheduler (another process) are visible too.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut text = state.metrics.render();
    let store = state.host.store().clone();
    let runs = tokio::task::spawn_blocking(move || {
        store.job_runs(&learnloop_store::JobRunQuery { limit: 1000, ..Default::default() })
    })
    .await
    .ok()
    .and_then(Result::ok)
    .unwrap_or_default();
    text.push_str("# HELP learnloop_job_last_run_duration_seconds Duration of the latest finished run of each job (any runner), by status.\n# TYPE learnloop_job_last_run_duration_seconds gauge\n");
    let mut seen = std::collections::BTreeSet::new();
    for r in runs.iter().filter(|r| r.finished_at.is_some()) {
        // Newest first: the first finished run of each job is its latest.
        if seen.insert((r.plugin.to_string(), r.job.clone())) {
            let secs = (r.finished_at.unwrap().as_micros() - r.started_at.as_micros()) as f64 / 1e6;
            text.push_str(&format!(
                "learnloop_job_last_run_duration_seconds{{plugin=\"{}\",job=\"{}\",status=\"{}\",runner=\"{}\"}} {secs}\n",
                r.plugin,
                r.job.replace('"', "'"),
                r.status.as_str(),
                r.runner.replace('"', "'").replace('\\', "/")
            ));
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// `GET /api/v1/openapi.json`.
pub async fn openapi(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(crate::openapi::document(&state.host))
}

/// `GET /docs`: the document as a page for people.
pub async fn docs(State(state): State<AppState>) -> Response {
    let page = crate::docs::page(&crate::openapi::document(&state.host));
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response()
}

/// Anything unrouted.
pub async fn not_found() -> ApiError {
    ApiError::not_found("no such route; see /api/v1/openapi.json")
}
