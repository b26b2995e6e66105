//! API keys: generation, hashing, and the `Caller` every handler gets.
//!
//! Keys are 160 random bits, shown once and stored only as SHA-256. A
//! reader or writer key belongs to one workspace and sees nothing of any
//! other; an admin key covers every workspace. Keys travel as
//! `Authorization: Bearer <key>`.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use learnloop_core::{Role, WorkspaceId};

use crate::{ApiError, AppState};

/// Makes a new key from the OS random source (see [`learnloop_core::keys`]).
pub fn generate_key() -> String {
    let mut bytes = [0u8; 20];
    getrandom::fill(&mut bytes).expect("the OS random source works");
    learnloop_core::keys::format_key(bytes)
}

pub use learnloop_core::keys::{hash_key, key_prefix};

/// Who is calling.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The key's role (admin when auth is disabled).
    pub role: Role,
    /// The key's workspace; `None` for all workspaces.
    pub workspace: Option<WorkspaceId>,
    /// Whether the caller sent a key (false only with `[auth] enabled = false`).
    pub keyed: bool,
}

impl Caller {
    /// Fails with 403 unless the caller has at least `role`.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.role >= role {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this needs a {} key; yours is a {} key",
                role.as_str(),
                self.role.as_str()
            )))
        }
    }

    /// The workspace a request acts on: the one asked for (which must be
    /// the key's own), else the key's own, else the configured default.
    pub fn workspace(&self, requested: Option<&str>, default: &str) -> Result<WorkspaceId, ApiError> {
        let ws = match (requested, &self.workspace) {
            (Some(r), _) => WorkspaceId::parse("workspace", r)?,
            (None, Some(own)) => own.clone(),
            (None, None) => WorkspaceId::parse("workspace", default)?,
        };
        self.check_workspace(&ws)?;
        Ok(ws)
    }

    /// The workspace of records that name none: `?workspace=` (which the key
    /// must cover), else the key's own, else — with auth disabled —
    /// `default_workspace`. `None` for an admin key without `?workspace=`:
    /// such a key covers every workspace, so each record must name its own.
    pub fn record_default(&self, requested: Option<&str>, default: &str) -> Result<Option<WorkspaceId>, ApiError> {
        match (requested, &self.workspace) {
            (Some(_), _) | (None, Some(_)) => self.workspace(requested, default).map(Some),
            (None, None) if !self.keyed => Ok(Some(WorkspaceId::parse("default_workspace", default)?)),
            (None, None) => Ok(None),
        }
    }

    /// Fails with 403 if the key may not touch `ws`.
    pub fn check_workspace(&self, ws: &WorkspaceId) -> Result<(), ApiError> {
        match &self.workspace {
            Some(own) if own != ws => Err(ApiError::forbidden(format!(
                "this key belongs to workspace {:?}, not {:?}; a {} key reads and writes only its own workspace",
                own.as_str(),
                ws.as_str(),
                self.role.as_str()
            ))),
            _ => Ok(()),
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if !state.config.auth.enabled {
            return Ok(Caller { role: Role::Admin, workspace: None, keyed: false });
        }
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("send an API key as `Authorization: Bearer <key>`"))?;
        let key = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| ApiError::unauthorized("the Authorization header must be `Bearer <key>`"))?;
        verify_hash(state, hash_key(key)).await
    }
}

/// The caller a key's hash stands for: from the cache of recently verified
/// keys, else the store (401 when unknown or revoked). The one check every
/// way in shares: the `Authorization` header and the dashboard's sessions,
/// which keep the hash (never the key) and verify it again on each request.
pub async fn verify_hash(state: &AppState, hash: [u8; 32]) -> Result<Caller, ApiError> {
    if let Some((c, id)) = state.keys.get(&hash) {
        crate::access::note_key(id);
        return Ok(c);
    }
    let store = state.host.store().clone();
    let found =
        tokio::task::spawn_blocking(move || store.api_key_by_hash(&hash)).await.map_err(ApiError::internal)??;
    let key = found.ok_or_else(|| ApiError::unauthorized("unknown or revoked API key"))?;
    let caller = Caller { role: key.role, workspace: key.workspace, keyed: true };
    crate::access::note_key(key.id);
    state.keys.put(hash, key.id, caller.clone());
    Ok(caller)
}

/// Recently verified keys, so a busy client does not cost a store lookup
/// per request. Entries live [`KeyCache::TTL`]: a key revoked through this
/// node's `POST /api/v1/keys/{id}/revoke` stops working at once
/// ([`KeyCache::forget`]); one revoked elsewhere (`learnloop keys revoke`,
/// another API node: they share only the store) within that time.
#[derive(Default)]
pub struct KeyCache {
    entries: std::sync::Mutex<std::collections::HashMap<[u8; 32], (Caller, i64, std::time::Instant)>>,
}

impl KeyCache {
    /// How long a verified key is trusted without asking the store again.
    pub const TTL: std::time::Duration = std::time::Duration::from_secs(2);

    fn get(&self, hash: &[u8; 32]) -> Option<(Caller, i64)> {
        let map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        map.get(hash).filter(|(_, _, at)| at.elapsed() < Self::TTL).map(|(c, id, _)| (c.clone(), *id))
    }

    fn put(&self, hash: [u8; 32], id: i64, caller: Caller) {
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 10_000 {
            map.retain(|_, (_, _, at)| at.elapsed() < Self::TTL);
        }
        map.insert(hash, (caller, id, std::time::Instant::now()));
    }

    /// Drops the cached verification of key `id` (it was just revoked).
    pub fn forget(&self, id: i64) {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).retain(|_, (_, key, _)| *key != id);
    }
}
