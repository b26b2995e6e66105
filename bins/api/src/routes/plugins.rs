//! `/api/v1/<plugin>/...`: each enabled plugin's own routes.
//!
//! The host matches the path against the plugin's manifest; a key needs
//! the role the route declares in its `RouteSpec` (reader, writer or
//! admin). The workspace is the `workspace` query parameter, else the
//! key's, else the default.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use learnloop_plugin_host::match_route;
use serde_json::Value;

use crate::auth::Caller;
use crate::{ApiError, AppState};

/// Any method on `/api/v1/{plugin}/{*rest}`.
pub async fn call(
    State(s): State<AppState>,
    caller: Result<Caller, ApiError>,
    method: Method,
    Path((plugin, rest)): Path<(String, String)>,
    q: Result<Query<BTreeMap<String, String>>, QueryRejection>,
    b: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let loaded = s.host.plugin(&plugin).map_err(|e| ApiError::not_found(e.message))?;
    let path = format!("/{rest}");
    let Some((route, _)) = match_route(&loaded.manifest.routes, method.as_str(), &path) else {
        // The path exists with other methods: 405 with `Allow`, like every other route.
        let mut allow: Vec<&str> = Vec::new();
        for r in &loaded.manifest.routes {
            let m = r.method.as_str();
            if !allow.iter().any(|a| a.eq_ignore_ascii_case(m))
                && match_route(&loaded.manifest.routes, m, &path).is_some()
            {
                allow.push(m);
            }
        }
        if allow.is_empty() {
            return Err(ApiError::not_found(format!("plugin {plugin:?} has no route {method} {path}")));
        }
        let allow = allow.join(", ");
        return Err(ApiError::method_not_allowed(
            format!("/api/v1/{plugin}{path} does not take {method}; it takes {allow}"),
            allow,
        ));
    };
    // Labelled by the plugin's own template from here on (bounded by the
    // manifests, unlike the path).
    crate::access::note_route(format!("/api/v1/{plugin}/{}", route.path.trim_start_matches('/')));
    // After the route check, so a method the path does not take (a CORS
    // preflight carries no key) is a 405 with `Allow`, like everywhere else.
    let caller = caller?;
    caller.require(route.role)?;
    let query = super::query(q)?;
    let ws = caller.workspace(query.get("workspace").map(String::as_str), &s.config.default_workspace)?;
    let bytes = super::body(b, s.config.api.max_body_bytes)?;
    let body = if bytes.iter().all(u8::is_ascii_whitespace) { Value::Null } else { super::json(&bytes)? };
    let host = s.host.clone();
    let m = method.to_string();
    let p = plugin.clone();
    // The request's span goes along: the catch-up and the plugin's own log
    // lines carry the request id.
    let span = tracing::Span::current();
    let result = tokio::task::spawn_blocking(move || span.in_scope(|| host.handle(&p, &ws, &m, &path, query, body)))
        .await
        .map_err(ApiError::internal)?;
    match result {
        Ok(r) => {
            let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::OK);
            Ok((status, Json(r.body)).into_response())
        }
        Err(e) => {
            if let learnloop_plugin_host::HostError::Plugin {
                error: learnloop_plugin_api::PluginError::Internal { .. },
                ..
            } = &e
            {
                s.metrics.plugin_error(&plugin);
            }
            Err(e.into())
        }
    }
}
