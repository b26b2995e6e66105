//! Health, readiness, metrics, the OpenAPI document, and 404s.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::{ApiError, AppState};

/// `GET /health`: the process answers.
pub async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /ready`: the store answers and every enabled plugin loaded.
pub async fn ready(State(state): State<AppState>) -> Response {
    let store = state.host.store().clone();
    let store_ok = tokio::task::spawn_blocking(move || store.max_seq()).await.map(|r| r.is_ok()).unwrap_or(false);
    let errors: Vec<String> = state.host.load_errors.iter().map(|e| e.to_string()).collect();
    let ok = store_ok && errors.is_empty();
    let body = json!({
        "status": if ok { "ready" } else { "not ready" },
        "store": if store_ok { "ok" } else { "unavailable" },
        "plugins": state.host.plugins().keys().collect::<Vec<_>>(),
        "plugin_load_errors": errors,
    });
    let status = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body)).into_response()
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render()).into_response()
}

/// `GET /api/v1/openapi.json`.
pub async fn openapi(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(crate::openapi::document(&state.host))
}

/// Anything unrouted.
pub async fn not_found() -> ApiError {
    ApiError::not_found("no such route; see /api/v1/openapi.json")
}
