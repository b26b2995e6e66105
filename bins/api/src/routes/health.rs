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
            Ok(Err(e)) => crate::log_error(format_args!("/ready: the probe write failed: {e}")),
            Err(e) => crate::log_error(format_args!("/ready: the probe write panicked: {e}")),
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

/// `GET /metrics`: Prometheus text format. Besides this process's counters,
/// it reports the last recorded run of every job from the store, so runs
/// made by the scheduler (another process) are visible too.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut text = state.metrics.render();
    server_metrics(&state, &mut text);
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
    let store = state.host.store().clone();
    if let Ok(Ok(stats)) = tokio::task::spawn_blocking(move || store.outbox_stats()).await {
        outbox_metrics(&stats, learnloop_core::Timestamp::now(), &mut text);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// The notification outbox, read from the store (so what the scheduler's
/// deliverer did is visible here too).
pub fn outbox_metrics(stats: &learnloop_store::OutboxStats, now: learnloop_core::Timestamp, out: &mut String) {
    use std::fmt::Write;
    let age = |t: learnloop_core::Timestamp| (now.as_micros() - t.as_micros()).max(0) as f64 / 1e6;
    let _ = write!(
        out,
        "# HELP learnloop_notifications_unrouted Notifications in the outbox not yet routed to destinations.\n\
         # TYPE learnloop_notifications_unrouted gauge\nlearnloop_notifications_unrouted {}\n",
        stats.unrouted
    );
    let _ = write!(
        out,
        "# HELP learnloop_notifications_unrouted_age_seconds Age of the oldest notification not yet routed (0 when none).\n\
         # TYPE learnloop_notifications_unrouted_age_seconds gauge\nlearnloop_notifications_unrouted_age_seconds {}\n",
        stats.oldest_unrouted.map_or(0.0, age)
    );
    out.push_str(
        "# HELP learnloop_notification_deliveries Notification deliveries by destination and status (pending, delivered, dead).\n\
         # TYPE learnloop_notification_deliveries gauge\n",
    );
    for (d, status, n) in &stats.deliveries {
        let _ = writeln!(
            out,
            "learnloop_notification_deliveries{{destination=\"{d}\",status=\"{}\"}} {n}",
            status.as_str()
        );
    }
    out.push_str(
        "# HELP learnloop_notification_pending_age_seconds Age of each destination's oldest pending delivery (queue age).\n\
         # TYPE learnloop_notification_pending_age_seconds gauge\n",
    );
    for (d, t) in &stats.oldest_pending {
        let _ = writeln!(out, "learnloop_notification_pending_age_seconds{{destination=\"{d}\"}} {}", age(*t));
    }
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

/// The server loop's and the store's condition as metrics.
fn server_metrics(state: &AppState, out: &mut String) {
    use std::fmt::Write;
    use std::sync::atomic::Ordering::Relaxed;
    let c = &state.conns;
    let s = &state.status;
    let gauges: [(&str, &str, &str, u64); 9] = [
        (
            "learnloop_store_out_of_space",
            "gauge",
            "1 while the store refuses writes for want of space (writes answer 507, /ready 503).",
            u64::from(s.full_reason().is_some()),
        ),
        (
            "learnloop_store_out_of_space_writes_total",
            "counter",
            "Writes refused because the store was out of space.",
            s.out_of_space_writes.load(Relaxed),
        ),
        (
            "learnloop_draining",
            "gauge",
            "1 once SIGTERM/SIGINT arrived: finishing requests in flight, taking no new connections.",
            u64::from(s.draining()),
        ),
        ("learnloop_http_connections_open", "gauge", "Client connections open now.", c.open.load(Relaxed)),
        (
            "learnloop_http_connections_accepted_total",
            "counter",
            "Client connections accepted.",
            c.accepted.load(Relaxed),
        ),
        (
            "learnloop_http_header_timeouts_total",
            "counter",
            "Connections closed because a request's headers did not arrive within api.header_timeout_ms.",
            c.header_timeouts.load(Relaxed),
        ),
        (
            "learnloop_http_idle_timeouts_total",
            "counter",
            "Kept-alive connections closed after api.idle_timeout_ms without a request.",
            c.idle_timeouts.load(Relaxed),
        ),
        (
            "learnloop_http_body_timeouts_total",
            "counter",
            "Requests answered 408 because the body did not arrive within api.body_timeout_ms.",
            c.body_timeouts.load(Relaxed),
        ),
        (
            "learnloop_http_shutdown_aborts_total",
            "counter",
            "Connections closed with a request in flight at the shutdown deadline.",
            c.shutdown_aborts.load(Relaxed),
        ),
    ];
    for (name, kind, help, value) in gauges {
        let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n");
    }
}
