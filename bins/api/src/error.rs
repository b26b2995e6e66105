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
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, detail: impl Into<String>) -> Self {
        Self { status, kind, detail: detail.into(), field: None }
    }
    /// 400: the request could not be read (malformed JSON, bad query).
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed-request", detail)
    }
    /// 422: a field is invalid.
    pub fn invalid(field: impl Into<String>, detail: impl Into<String>) -> Self {
        let field = field.into();
        Self { field: (!field.is_empty()).then_some(field), ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field", detail) }
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
    /// 500: logs `context` and tells the client nothing more.
    pub fn internal(context: impl std::fmt::Display) -> Self {
        let _ = std::io::Write::write_fmt(&mut std::io::stderr(), format_args!("learnloop-api: internal error: {context}\n"));
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
        r
    }
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
        }
    }
}
