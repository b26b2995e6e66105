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

/// `GET /ready`: the store answers and takes writes, every enabled plugin
/// loaded, and the server is not shutting down. 503 with `Retry-After`
/// otherwise, the body saying which.
pub async fn ready(State(state): State<AppState>) -> Response {
    let store = state.host.store().clone();
    let store_ok = tokio::task::spawn_blocking(move || store.max_seq()).await.map(|r| r.is_ok()).unwrap_or(false);
    // A store marked full is probed (at most once a second) with a small
    // write, so /ready turns 200 again once space is freed even when no
    // client writes meanwhile.
    if store_ok && state.status.probe_due() {
        let store = state.host.store().clone();
        match tokio::task::spawn_blocking(move || probe_write(store.as_ref())).await {
            Ok(Ok(())) => state.status.wrote(),
            Ok(Err(learnloop_store::StoreError::OutOfSpace(_))) => {}
            Ok(Err(e)) => tracing::error!("/ready: the probe write failed: {e}"),
            Err(e) => tracing::error!("/ready: the probe write panicked: {e}"),
        }
    }
    let full = state.status.full_reason();
    let draining = state.status.draining();
    let errors: Vec<String> = state.host.load_errors.iter().map(|e| e.to_string()).collect();
    let ok = store_ok && full.is_none() && !draining && errors.is_empty();
    let body = Readiness {
        status: if draining {
            "shutting down"
        } else if ok {
            "ready"
        } else {
            "not ready"
        }
        .into(),
        store: match (store_ok, &full) {
            (false, _) => "unavailable",
            (true, Some(_)) => "out of space",
            (true, None) => "ok",
        }
        .into(),
        store_problem: full,
        plugins: state.host.plugins().keys().cloned().collect(),
        plugin_load_errors: errors,
    };
    if ok {
        (StatusCode::OK, Json(body)).into_response()
    } else {
        let retry = crate::status::ServerStatus::RETRY_AFTER_SECS.to_string();
        (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, retry)], Json(body)).into_response()
    }
}

/// A write that needs fresh space (a 64 KiB state document of
/// incompressible bytes, written and deleted), so it fails on a full disk or
/// a database at its size limit (PostgreSQL would compress a repetitive one
/// into a page it already has).
fn probe_write(store: &dyn learnloop_store::Store) -> Result<(), learnloop_store::StoreError> {
    use learnloop_core::history::Expect;
    use learnloop_core::{PluginName, Timestamp, WorkspaceId};
    let key = learnloop_store::StateKey {
        plugin: PluginName::parse("plugin", "api").map_err(|e| learnloop_store::StoreError::Backend(e.to_string()))?,
        workspace: WorkspaceId::parse("workspace", "default")
            .map_err(|e| learnloop_store::StoreError::Backend(e.to_string()))?,
        key: "__host/ready-probe".into(),
    };
    let mut x = u64::from(std::process::id()) | 1;
    let value: Vec<u8> = (0..64 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 56) as u8
        })
        .collect();
    store.put_state(&key, &value, Expect::Any, Timestamp::now())?;
    store.delete_state(&key, Expect::Any)
}

/// `GET /metrics`: Prometheus text (OpenMetrics when the scraper's
/// `Accept` asks for it, else the classic format; see [`crate::metrics`]).
/// Besides this process's counters, it reports the last recorded run of
/// every job from the store, so runs made by the scheduler (another
/// process) are visible too.
pub async fn metrics(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    let store = state.host.store().clone();
    let runs = tokio::task::spawn_blocking(move || {
        store.job_runs(&learnloop_store::JobRunQuery { limit: 1000, ..Default::default() })
    })
    .await
    .ok()
    .and_then(Result::ok)
    .unwrap_or_default();
    state.metrics.job_runs(&runs);
    let store = state.host.store().clone();
    if let Ok(Ok(stats)) = tokio::task::spawn_blocking(move || store.outbox_stats()).await {
        state.metrics.outbox(&stats, learnloop_core::Timestamp::now());
    }
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let openmetrics = learnloop_services::metrics::wants_openmetrics(accept);
    let text = state.metrics.render(openmetrics);
    let kind =
        if openmetrics { learnloop_services::metrics::OPENMETRICS } else { learnloop_services::metrics::CLASSIC };
    ([(header::CONTENT_TYPE, kind)], text).into_response()
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
