//! API keys, for admin keys: list, create, revoke.
//!
//! A key revoked here stops working at once on this node (its cached
//! verification is dropped); a key revoked elsewhere (the CLI, another API
//! node) stops working within [`crate::auth::KeyCache::TTL`].

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use learnloop_core::{ApiKey, Role, Timestamp, WorkspaceId};
use learnloop_store::NewApiKey;

use crate::answers::{CreateKeyBody, CreatedKey, Keys};
use crate::auth::{Caller, generate_key, hash_key, key_prefix};
use crate::{ApiError, AppState};

/// `GET /api/v1/keys`: every key (never the key itself), revoked ones too.
pub async fn list(State(s): State<AppState>, caller: Caller) -> Result<Json<Keys>, ApiError> {
    caller.require(Role::Admin)?;
    let store = s.host.store().clone();
    let keys = tokio::task::spawn_blocking(move || store.api_keys()).await.map_err(ApiError::internal)??;
    Ok(Json(Keys { keys }))
}

/// `POST /api/v1/keys`: a new key, shown once in the answer (201).
pub async fn create(
    State(s): State<AppState>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    caller.require(Role::Admin)?;
    let bytes = super::body(body, s.config.api.max_body_bytes)?;
    let value = super::json(&bytes)?;
    if !value.is_object() {
        return Err(ApiError::invalid("", "send a JSON object: {\"name\", \"role\", \"workspace\"}"));
    }
    let body: CreateKeyBody = learnloop_core::plain::from_json_value("", value)?;
    let workspace = body.workspace.as_deref().map(|w| WorkspaceId::parse("workspace", w)).transpose()?;
    // The name and the role/workspace rule are checked by the store
    // (`NewApiKey::validate`, 422 naming the field), as for the CLI.
    let key = generate_key();
    let new = NewApiKey {
        name: body.name.trim().to_string(),
        prefix: key_prefix(&key),
        hash: hash_key(&key),
        workspace,
        role: body.role,
        now: Timestamp::now(),
    };
    let store = s.host.store().clone();
    let stored =
        tokio::task::spawn_blocking(move || store.create_api_key(&new)).await.map_err(ApiError::internal)??;
    Ok((StatusCode::CREATED, Json(CreatedKey { key, info: stored })))
}

/// `POST /api/v1/keys/{id}/revoke`: revokes a key; it stops working on this
/// node at once.
pub async fn revoke(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ApiKey>, ApiError> {
    caller.require(Role::Admin)?;
    let id: i64 = id
        .parse()
        .ok()
        .filter(|i| *i >= 1)
        .ok_or_else(|| ApiError::invalid("id", format!("{id:?} is not a key id")))?;
    let store = s.host.store().clone();
    let key = tokio::task::spawn_blocking(move || store.revoke_api_key(id, Timestamp::now()))
        .await
        .map_err(ApiError::internal)??;
    s.keys.forget(id);
    Ok(Json(key))
}
