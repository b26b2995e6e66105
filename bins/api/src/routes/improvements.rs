//! The improvement lifecycle over HTTP: what plugins proposed, what is in
//! force, and a person's approve / reject / rollback.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use learnloop_core::{Improvement, ImprovementStatus, PluginName, Role, Timestamp};
use learnloop_store::ImprovementQuery;

use crate::answers::{AppliedEntry, AppliedList, Improvements, InForce, RejectBody, RollbackBody};
use crate::auth::Caller;
use crate::{ApiError, AppState};

type Q = Result<Query<BTreeMap<String, String>>, QueryRejection>;

fn id(raw: &str) -> Result<i64, ApiError> {
    raw.parse().map_err(|_| ApiError::invalid("id", format!("{raw:?} is not an improvement id")))
}

/// A JSON body as `T` (an empty body is `T::default()` when `empty` is
/// given), or a problem naming the field.
fn typed_body<T: serde::de::DeserializeOwned>(
    b: Result<Bytes, BytesRejection>,
    limit: usize,
    empty: Option<T>,
) -> Result<T, ApiError> {
    let bytes = super::body(b, limit)?;
    if bytes.iter().all(u8::is_ascii_whitespace)
        && let Some(e) = empty
    {
        return Ok(e);
    }
    let value = super::json(&bytes)?;
    if !value.is_object() {
        return Err(ApiError::bad_request("the request body must be a JSON object"));
    }
    learnloop_core::plain::from_json_value("", value).map_err(|e| ApiError::invalid(e.field, e.message))
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, ApiError> + Send + 'static) -> Result<T, ApiError> {
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(f)).await.map_err(ApiError::internal)?
}

/// `GET /api/v1/improvements?workspace=&plugin=&target=&status=&limit=`: newest first.
pub async fn list(State(s): State<AppState>, caller: Caller, q: Q) -> Result<Json<Improvements>, ApiError> {
    caller.require(Role::Reader)?;
    let q = super::query(q)?;
    let query = ImprovementQuery {
        workspace: Some(caller.workspace(q.get("workspace").map(String::as_str), &s.config.default_workspace)?),
        plugin: q.get("plugin").map(|p| PluginName::parse("plugin", p)).transpose()?,
        target: q.get("target").cloned(),
        status: q.get("status").map(|v| ImprovementStatus::parse("status", v)).transpose()?,
        limit: super::limit(&q, 100, 10_000)?,
    };
    let store = s.host.store().clone();
    let items = blocking(move || Ok(store.improvements(&query)?)).await?;
    Ok(Json(Improvements { improvements: items }))
}

/// `GET /api/v1/improvements/{id}?workspace=`: one improvement with its history.
pub async fn show(
    State(s): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    q: Q,
) -> Result<Json<Improvement>, ApiError> {
    caller.require(Role::Reader)?;
    let q = super::query(q)?;
    let id = id(&raw)?;
    let ws = caller.workspace(q.get("workspace").map(String::as_str), &s.config.default_workspace)?;
    let store = s.host.store().clone();
    let imp = blocking(move || Ok(store.improvement(&ws, id)?)).await?;
    Ok(Json(imp))
}

/// `GET /api/v1/improvements/applied?workspace=&plugin=`: the version in force
/// of every parameter set that was ever applied (version 0: built-in defaults).
pub async fn applied(State(s): State<AppState>, caller: Caller, q: Q) -> Result<Json<AppliedList>, ApiError> {
    caller.require(Role::Reader)?;
    let q = super::query(q)?;
    let ws = caller.workspace(q.get("workspace").map(String::as_str), &s.config.default_workspace)?;
    let host = s.host.clone();
    let items = blocking(move || Ok(host.applied_all(&ws, q.get("plugin").map(String::as_str))?)).await?;
    let applied = items.into_iter().map(|(plugin, applied)| AppliedEntry { plugin, applied }).collect();
    Ok(Json(AppliedList { applied }))
}

/// `POST /api/v1/improvements/{id}/approve?workspace=`: applies a backtested improvement now.
pub async fn approve(
    State(s): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    q: Q,
) -> Result<Json<Improvement>, ApiError> {
    caller.require(Role::Writer)?;
    let q = super::query(q)?;
    let id = id(&raw)?;
    let ws = caller.workspace(q.get("workspace").map(String::as_str), &s.config.default_workspace)?;
    let host = s.host.clone();
    let imp = blocking(move || Ok(host.approve_improvement(&ws, id, Timestamp::now())?)).await?;
    Ok(Json(imp))
}

/// `POST /api/v1/improvements/{id}/reject?workspace=` `{"reason": "..."}`.
pub async fn reject(
    State(s): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    q: Q,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Improvement>, ApiError> {
    caller.require(Role::Writer)?;
    let q = super::query(q)?;
    let id = id(&raw)?;
    let ws = caller.workspace(q.get("workspace").map(String::as_str), &s.config.default_workspace)?;
    let body: RejectBody = typed_body(body, s.config.api.max_body_bytes, Some(RejectBody::default()))?;
    let reason = body.reason.unwrap_or_default();
    let host = s.host.clone();
    let imp = blocking(move || Ok(host.reject_improvement(&ws, id, &reason, Timestamp::now())?)).await?;
    Ok(Json(imp))
}

/// `POST /api/v1/improvements/rollback?workspace=`
/// `{"plugin": "trust", "target": "weights", "to_version": 2, "reason": "..."}`:
/// restores an earlier version (default: the one before the current; 0: the built-in defaults).
pub async fn rollback(
    State(s): State<AppState>,
    caller: Caller,
    q: Q,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<InForce>, ApiError> {
    caller.require(Role::Writer)?;
    let q = super::query(q)?;
    let ws = caller.workspace(q.get("workspace").map(String::as_str), &s.config.default_workspace)?;
    let body: RollbackBody = typed_body(body, s.config.api.max_body_bytes, None)?;
    for (field, v) in [("plugin", &body.plugin), ("target", &body.target)] {
        if v.is_empty() {
            return Err(ApiError::invalid(field, "is required (a non-empty string)"));
        }
    }
    let (plugin, target, to_version) = (body.plugin, body.target, body.to_version);
    let reason = body.reason.unwrap_or_default();
    let host = s.host.clone();
    let applied = blocking(move || {
        Ok(host.rollback_improvement(&plugin, &ws, &target, to_version, &reason, Timestamp::now())?)
    })
    .await?;
    Ok(Json(InForce { in_force: applied }))
}
