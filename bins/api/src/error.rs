//! The one error type of the API, which is also the response.
//!
//! Policy: every client mistake is a 4xx `application/problem+json` with a
//! stable `type`, a human `detail` and, where one field is at fault, its
//! `field`. Internal failures are logged with their context and answered
//! with a 500 that reveals nothing about the internals.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use learnloop_core::ValidationError;
use learnloop_plugin_api::PluginError;
use learnloop_plugin_host::HostError;
use learnloop_store::StoreError;
use serde_json::{Value, json};

/// A failed request.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable problem kind, the last segment of `type`.
    pub kind: &'static str,
    /// What went wrong, for people.
    pub detail: String,
    /// The offending field, if one.
    pub field: Option<String>,
    /// The methods the path takes (the `Allow` header of a 405).
    pub allow: Option<String>,
    /// Seconds after which to try again (the `Retry-After` header).
    pub retry_after: Option<u32>,
    /// The store's own words, for the log, when it is out of space (boxed:
    /// the error stays small, it travels in every handler's `Result`).
    pub out_of_space: Option<Box<str>>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, detail: impl Into<String>) -> Self {
        Self { status, kind, detail: detail.into(), field: None, allow: None, retry_after: None, out_of_space: None }
    }
    /// 400: the request could not be read (malformed JSON, bad query).
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed-request", detail)
    }
    /// 422: a field is invalid.
    pub fn invalid(field: impl Into<String>, detail: impl Into<String>) -> Self {
        let field = field.into();
        Self {
            field: (!field.is_empty()).then_some(field),
            ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field", detail)
        }
    }
    /// 401: no or unknown key.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }
    /// 403: the key may not do this.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }
    /// 404.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", detail)
    }
    /// 405, with the methods the path takes (sent as `Allow`).
    pub fn method_not_allowed(detail: impl Into<String>, allow: impl Into<String>) -> Self {
        Self { allow: Some(allow.into()), ..Self::new(StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed", detail) }
    }
    /// 409.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", detail)
    }
    /// 413.
    pub fn too_large(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "too-large", detail)
    }
    /// 503.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail)
    }
    /// 507: the store is out of space; nothing of the request was stored.
    pub fn out_of_space(reason: impl std::fmt::Display) -> Self {
        Self {
            retry_after: Some(crate::status::ServerStatus::RETRY_AFTER_SECS),
            out_of_space: Some(reason.to_string().into_boxed_str()),
            ..Self::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "out-of-space",
                format!(
                    "the store is out of space, so nothing of this request was stored; send it again once space is freed ({reason})"
                ),
            )
        }
    }
    /// 408: the request (its body) did not arrive in time.
    pub fn timeout(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::REQUEST_TIMEOUT, "timeout", detail)
    }
    /// 500: logs `context` and tells the client nothing more.
    pub fn internal(context: impl std::fmt::Display) -> Self {
        tracing::error!("internal error: {context}");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error; the server log has the details")
    }

    /// The problem document.
    pub fn body(&self) -> Value {
        let mut v = json!({
            "type": format!("https://learnloop.dev/problems/{}", self.kind),
            "title": self.status.canonical_reason().unwrap_or("error"),
            "status": self.status.as_u16(),
            "detail": self.detail,
        });
        if let Some(f) = &self.field {
            v["field"] = json!(f);
        }
        v
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status, axum::Json(self.body())).into_response();
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(allow) = self.allow.as_deref().and_then(|a| HeaderValue::from_str(a).ok()) {
            r.headers_mut().insert(header::ALLOW, allow);
        }
        if let Some(reason) = self.out_of_space {
            r.extensions_mut().insert(crate::status::StoreFull(reason.into()));
        }
        if let Some(secs) = self.retry_after {
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        r
    }
}

/// Middleware: an error answer the router or an extractor made without a
/// body (405 for a method a route does not take, an `OPTIONS` preflight
/// when CORS is off, ...) becomes a problem document like every other
/// error, keeping its headers (`Allow` on a 405).
pub async fn problem_bodies(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    // With CORS on, the CORS layer answers every preflight before the router.
    let preflight =
        method == axum::http::Method::OPTIONS && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let response = next.run(req).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || response.headers().contains_key(header::CONTENT_TYPE)
    {
        return response;
    }
    let (parts, _) = response.into_parts();
    let allow = parts.headers.get(header::ALLOW).and_then(|a| a.to_str().ok()).unwrap_or("").to_string();
    let problem = match status {
        StatusCode::METHOD_NOT_ALLOWED => {
            let takes = if allow.is_empty() { "no method".to_string() } else { allow.clone() };
            let cors = if preflight {
                " (this is a CORS preflight: CORS is off; allow browser origins with api.cors_origins)"
            } else {
                ""
            };
            ApiError::method_not_allowed(format!("{path} does not take {method}; it takes {takes}{cors}"), allow)
        }
        StatusCode::NOT_FOUND => ApiError::not_found("no such route; see /api/v1/openapi.json"),
        s if s.is_server_error() => ApiError::internal(format!("{method} {path} answered {s} without a body")),
        s => ApiError::new(
            s,
            "malformed-request",
            format!("{method} {path}: {}", s.canonical_reason().unwrap_or("refused")),
        ),
    };
    let mut out = problem.into_response();
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH && !out.headers().contains_key(name) {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        ApiError::invalid(e.field, e.message)
    }
}

impl From<PluginError> for ApiError {
    fn from(e: PluginError) -> Self {
        match e {
            PluginError::Invalid { field, message } => ApiError::invalid(field, message),
            PluginError::NotFound { message } => ApiError::not_found(message),
            PluginError::Conflict { message } => ApiError::conflict(message),
            PluginError::Unavailable { message } => ApiError::unavailable(message),
            PluginError::Internal { message } => ApiError::internal(message),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid { field, message } => ApiError::invalid(field, message),
            StoreError::NotFound(m) => ApiError::not_found(format!("{m} not found")),
            StoreError::VersionConflict { .. } | StoreError::SlotTaken { .. } => ApiError::conflict(e.to_string()),
            StoreError::Rejected { reason, .. } => ApiError::conflict(reason.to_string()),
            StoreError::OutOfSpace(reason) => ApiError::out_of_space(reason),
            other => ApiError::internal(other),
        }
    }
}

impl From<HostError> for ApiError {
    fn from(e: HostError) -> Self {
        match e {
            HostError::Invalid(v) => v.into(),
            HostError::Unavailable { plugin, reason } => {
                ApiError::unavailable(format!("plugin {plugin} is unavailable: {reason}"))
            }
            HostError::Plugin { plugin, error } => match error {
                PluginError::Internal { message } => ApiError::internal(format!("plugin {plugin}: {message}")),
                other => other.into(),
            },
            HostError::Store(s) => s.into(),
            HostError::BadRequest { field, message } => {
                ApiError { field: Some(field), ..ApiError::bad_request(message) }
            }
            HostError::Stopped => ApiError::unavailable(e.to_string()),
        }
    }
}
