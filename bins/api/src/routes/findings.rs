//! What learning found: insights and alerts, per workspace.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use learnloop_core::{Alert, PluginName, Role, Timestamp};
use learnloop_store::{AlertQuery, InsightQuery};
use std::collections::BTreeMap;

use crate::answers::{Alerts, Insights};
use crate::auth::Caller;
use crate::{ApiError, AppState};

type Q = Result<Query<BTreeMap<String, String>>, QueryRejection>;

fn plugin(q: &BTreeMap<String, String>) -> Result<Option<PluginName>, ApiError> {
    Ok(q.get("plugin").map(|p| PluginName::parse("plugin", p)).transpose()?)
}

fn since(q: &BTreeMap<String, String>, default_hours: Option<i64>) -> Result<Option<Timestamp>, ApiError> {
    match q.get("since") {
        Some(t) => Ok(Some(Timestamp::parse("since", t)?)),
        None => Ok(default_hours.map(|h| Timestamp::now().add_micros(-h * 3_600_000_000))),
    }
}

/// `GET /api/v1/insights?workspace=&plugin=&kind=&since=&limit=`: newest first.
pub async fn insights(State(s): State<AppState>, caller: Caller, q: Q) -> Result<Json<Insights>, ApiError> {
    caller.require(Role::Reader)?;
    let q = super::query(q)?;
    let query = InsightQuery {
        workspace: Some(caller.workspace(q.get("workspace").map(String::as_str), &s.config.default_workspace)?),
        plugin: plugin(&q)?,
        kind: q.get("kind").cloned(),
        since: since(&q, None)?,
        limit: super::limit(&q, 100, 10_000)?,
    };
    let store = s.host.store().clone();
    let items = tokio::task::spawn_blocking(move || store.insights(&query)).await.map_err(ApiError::internal)??;
    Ok(Json(Insights { insights: items }))
}

/// `GET /api/v1/alerts?workspace=&plugin=&since=&include_acknowledged=&limit=`:
/// by default the unacknowledged alerts seen in the last 24 hours.
pub async fn alerts(State(s): State<AppState>, caller: Caller, q: Q) -> Result<Json<Alerts>, ApiError> {
    caller.require(Role::Reader)?;
    let q = super::query(q)?;
    let include_acknowledged = match q.get("include_acknowledged").map(String::as_str) {
        None | Some("false" | "0") => false,
        Some("true" | "1") => true,
        Some(other) => {
            return Err(ApiError::invalid("include_acknowledged", format!("{other:?} is not true or false")));
        }
    };
    let query = AlertQuery {
        workspace: Some(caller.workspace(q.get("workspace").map(String::as_str), &s.config.default_workspace)?),
        plugin: plugin(&q)?,
        since: since(&q, Some(24))?,
        include_acknowledged,
        limit: super::limit(&q, 100, 10_000)?,
    };
    let store = s.host.store().clone();
    let items = tokio::task::spawn_blocking(move || store.alerts(&query)).await.map_err(ApiError::internal)??;
    Ok(Json(Alerts { alerts: items }))
}

/// `POST /api/v1/alerts/{id}/ack?workspace=`: acknowledges an alert of the workspace.
pub async fn acknowledge(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    q: Q,
) -> Result<Json<Alert>, ApiError> {
    caller.require(Role::Writer)?;
    let q = super::query(q)?;
    let id: i64 = id.parse().map_err(|_| ApiError::invalid("id", format!("{id:?} is not an alert id")))?;
    let ws = caller.workspace(q.get("workspace").map(String::as_str), &s.config.default_workspace)?;
    let store = s.host.store().clone();
    let alert = tokio::task::spawn_blocking(move || store.acknowledge_alert(&ws, id, Timestamp::now()))
        .await
        .map_err(ApiError::internal)??;
    Ok(Json(alert))
}

/// `POST /api/v1/alerts?workspace=`: raises a custom alert (201), or folds
/// it into the open alert with its dedup key (200); a new one is delivered
/// to the notification destinations like any other alert.
pub async fn create_alert(
    State(s): State<AppState>,
    caller: Caller,
    q: Q,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<(axum::http::StatusCode, Json<Alert>), ApiError> {
    caller.require(Role::Writer)?;
    let q = super::query(q)?;
    let ws = caller.workspace(q.get("workspace").map(String::as_str), &s.config.default_workspace)?;
    let bytes = super::body(body, s.config.api.max_body_bytes)?;
    let body: crate::answers::CreateAlertBody = learnloop_core::plain::from_json_value("", super::json(&bytes)?)?;
    let plugin = PluginName::parse("plugin", body.plugin.as_deref().unwrap_or("custom"))?;
    let alert = learnloop_core::NewAlert {
        workspace: ws.clone(),
        plugin,
        severity: body.severity,
        dedup_key: body.dedup_key.unwrap_or_else(|| format!("{}/{}", body.kind, body.subject)),
        kind: body.kind,
        subject: body.subject,
        message: body.message,
        data: body.data.unwrap_or(serde_json::Value::Null),
    };
    let store = s.host.store().clone();
    let (alert, created) = tokio::task::spawn_blocking(move || {
        let changes = learnloop_store::Changes { alerts: vec![alert], ..Default::default() };
        let id = store.commit(&changes, Timestamp::now())?.alerts[0];
        let query =
            AlertQuery { workspace: Some(ws), include_acknowledged: false, limit: 10_000, ..Default::default() };
        let found = store.alerts(&query)?.into_iter().find(|a| a.id == id);
        Ok::<_, learnloop_store::StoreError>(found.map(|a| {
            let created = a.occurrences == 1;
            (a, created)
        }))
    })
    .await
    .map_err(ApiError::internal)??
    .ok_or_else(|| ApiError::internal("the alert just raised was not found"))?;
    let status = if created { axum::http::StatusCode::CREATED } else { axum::http::StatusCode::OK };
    Ok((status, Json(alert)))
}
