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
//! Every request has an id (`x-request-id`, honoured when the client sends
//! a sane one, returned either way), a `request` span around its work and
//! one access log line (method, route template, status, latency, key id;
//! see [`access`]).
//!
//! Every error, also one the router makes (404, 405 with `Allow`), is a
//! problem document. CORS is off unless `[api] cors_origins` lists origins
//! (see [`cors`]).

#![deny(missing_docs)]

pub mod access;
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
use tracing::Instrument;

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
        let plugins: Vec<String> = host.plugins().keys().cloned().collect();
        let metrics = metrics::Metrics::new(&plugins, config.metrics.max_models);
        let status = Arc::new(status::ServerStatus::default());
        let conns = Arc::new(serve::ConnStats::default());
        metrics.add_collector(metrics::ServerCollector { conns: conns.clone(), status: status.clone() });
        AppState {
            config: Arc::new(config),
            host: Arc::new(host),
            metrics: Arc::new(metrics),
            keys: Arc::new(auth::KeyCache::default()),
            status,
            conns,
        }
    }
}

/// Around every request: the request id and span, the access log line,
/// the request metrics, and what `/ready` learns from answers.
async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let matched = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string());
    let id = access::request_id(req.headers());
    let span = tracing::info_span!("request", id = %id);
    let writes = method != axum::http::Method::GET && method != axum::http::Method::HEAD;
    let (mut response, noted) = access::with_notes(next.run(req).instrument(span.clone())).await;
    let status = response.status();
    // A plugin route is labelled by its own template (bounded: the
    // manifests'), every other route by the router's.
    let route = noted.route.or(matched).unwrap_or_else(|| "unmatched".to_string());
    let elapsed = started.elapsed();
    state.metrics.request(method.as_str(), &route, status.as_u16(), elapsed.as_secs_f64());
    span.in_scope(|| {
        tracing::info!(
            target: "learnloop_api::access",
            method = %method,
            route = %route,
            status = status.as_u16(),
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            key_id = noted.key_id,
            "{method} {route} {}",
            status.as_u16()
        )
    });
    if let Ok(v) = axum::http::HeaderValue::from_str(&id) {
        response.headers_mut().insert(access::REQUEST_ID.clone(), v);
    }
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
