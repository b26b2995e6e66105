//! `learnloop-api`: the HTTP face of learnloop.
//!
//! [`app`] builds the whole router from an [`AppState`], so tests drive it
//! with `tower::ServiceExt::oneshot` and no socket. Handlers are grouped one
//! file per resource under `routes/`; every error is an [`ApiError`], which
//! renders as `application/problem+json`.
//!
//! Routes (all JSON; see `/api/v1/openapi.json` for the full document):
//! * `POST /api/v1/predictions`, `POST /api/v1/outcomes` — ingest one record
//!   (an object) or a batch (an array), durably, with per-item results;
//! * `ANY /api/v1/<plugin>/...` — each enabled plugin's routes;
//! * `GET /api/v1/insights`, `GET /api/v1/alerts`, `POST /api/v1/alerts/{id}/ack`;
//! * `GET /api/v1/jobs`, `POST /api/v1/jobs/{plugin}/{job}/run`, `GET /api/v1/jobs/runs`;
//! * `GET /api/v1/keys`, `POST /api/v1/keys`, `POST /api/v1/keys/{id}/revoke` (admin keys);
//! * `GET /health`, `GET /ready`, `GET /metrics`, `GET /api/v1/openapi.json`,
//!   `GET /docs` (the document rendered for people);
//! * `/ui/...` — the dashboard ([`ui`]): HTML pages over the same data.
//!
//! Every route is declared once in [`contract`] (name, role, query
//! parameters, body and answer types); the document is made from that table
//! and the plugins' manifests, and [`contract::check_query`] refuses a query
//! parameter a route does not declare (400) on every route.
//!
//! Every error, also one the router makes (404, 405 with `Allow`), is a
//! problem document. CORS is off unless `[api] cors_origins` lists origins
//! (see [`cors`]).

#![deny(missing_docs)]

pub mod answers;
pub mod auth;
pub mod contract;
pub mod cors;
pub mod docs;
mod error;
pub mod metrics;
pub mod openapi;
mod routes;
pub mod serve;
pub mod status;
pub mod ui;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use learnloop_config::Config;
use learnloop_plugin_host::PluginHost;

pub use error::ApiError;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The configuration.
    pub config: Arc<Config>,
    /// The plugins and the store; ingest goes through its group commit
    /// ([`learnloop_plugin_host::ingest`]).
    pub host: Arc<PluginHost>,
    /// Prometheus metrics.
    pub metrics: Arc<metrics::Metrics>,
    /// Recently verified API keys.
    pub keys: Arc<auth::KeyCache>,
    /// Out of space, draining: what `/ready` reports.
    pub status: Arc<status::ServerStatus>,
    /// Connection counters of the server loop ([`serve`]).
    pub conns: Arc<serve::ConnStats>,
}

impl AppState {
    /// State over a loaded host (which starts its ingest threads on the
    /// first ingest request).
    pub fn new(config: Config, host: PluginHost) -> AppState {
        AppState {
            config: Arc::new(config),
            host: Arc::new(host),
            metrics: Arc::new(metrics::Metrics::default()),
            keys: Arc::new(auth::KeyCache::default()),
            status: Arc::new(status::ServerStatus::default()),
            conns: Arc::new(serve::ConnStats::default()),
        }
    }
}

async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let writes = req.method() != axum::http::Method::GET && req.method() != axum::http::Method::HEAD;
    let mut response = next.run(req).await;
    let status = response.status();
    state.metrics.request(&method, &route, status.as_u16(), started.elapsed().as_secs_f64());
    if status == axum::http::StatusCode::INSUFFICIENT_STORAGE {
        let why = response.extensions().get::<status::StoreFull>().map(|f| f.0.clone());
        state.status.out_of_space(&why.unwrap_or_else(|| format!("{method} {route} answered 507")));
    } else if writes && status.is_success() {
        state.status.wrote();
    }
    // Draining: every answer closes its connection, so clients reconnect
    // (to another node, or after the restart) instead of reusing it.
    if state.status.draining() {
        response.headers_mut().insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
    }
    response
}

/// A line on stderr with a UTC timestamp and a level; a closed stderr loses
/// it but never stops the server.
fn log_line(level: &str, args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let now = learnloop_core::Timestamp::now();
    let _ = writeln!(std::io::stderr().lock(), "{now} {level} learnloop-api: {args}");
}

/// An error-level log line (see [`log_line`]).
pub fn log_error(args: std::fmt::Arguments<'_>) {
    log_line("ERROR", args)
}

/// A warning-level log line.
pub fn log_warn(args: std::fmt::Arguments<'_>) {
    log_line("WARN", args)
}

/// An info-level log line.
pub fn log_info(args: std::fmt::Arguments<'_>) {
    log_line("INFO", args)
}

/// The whole API.
pub fn app(state: AppState) -> Router {
    let limit = state.config.api.max_body_bytes;
    let router = Router::new()
        .route("/health", get(routes::health::health))
        .route("/ready", get(routes::health::ready))
        .route("/metrics", get(routes::health::metrics))
        .route("/api/v1/openapi.json", get(routes::health::openapi))
        .route("/docs", get(routes::health::docs))
        .route("/api/v1/predictions", post(routes::ingest::predictions))
        .route("/api/v1/outcomes", post(routes::ingest::outcomes))
        .route("/api/v1/insights", get(routes::findings::insights))
        .route("/api/v1/alerts", get(routes::findings::alerts).post(routes::findings::create_alert))
        .route("/api/v1/alerts/{id}/ack", post(routes::findings::acknowledge))
        .route("/api/v1/improvements", get(routes::improvements::list))
        .route("/api/v1/improvements/applied", get(routes::improvements::applied))
        .route("/api/v1/improvements/rollback", post(routes::improvements::rollback))
        .route("/api/v1/improvements/{id}", get(routes::improvements::show))
        .route("/api/v1/improvements/{id}/approve", post(routes::improvements::approve))
        .route("/api/v1/improvements/{id}/reject", post(routes::improvements::reject))
        .route("/api/v1/keys", get(routes::keys::list).post(routes::keys::create))
        .route("/api/v1/keys/{id}/revoke", post(routes::keys::revoke))
        .route("/api/v1/notifications", get(routes::notifications::list))
        .route("/api/v1/notifications/test", post(routes::notifications::test))
        .route("/api/v1/notifications/{id}/retry", post(routes::notifications::retry))
        .route("/api/v1/jobs", get(routes::jobs::list))
        .route("/api/v1/jobs/runs", get(routes::jobs::history))
        .route("/api/v1/jobs/{plugin}/{job}/run", post(routes::jobs::run))
        .route("/api/v1/{plugin}/{*rest}", axum::routing::any(routes::plugins::call))
        // The dashboard: HTML pages for people, not part of the OpenAPI document.
        .nest("/ui", ui::router(state.clone()))
        .route("/ui/", get(|| async { ui::redirect("/ui") }))
        .route_layer(middleware::from_fn(contract::check_query))
        .fallback(routes::health::not_found)
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(state.clone(), serve::read_body))
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .with_state(state.clone());
    // Around the whole router, not per route: a 405 gets its `Allow` header
    // from the router before `problem_bodies` sees it.
    let router = Router::new().fallback_service(router).layer(middleware::from_fn(error::problem_bodies));
    if state.config.api.cors_origins.is_empty() {
        router
    } else {
        router.layer(middleware::from_fn_with_state(state, cors::cors))
    }
}
