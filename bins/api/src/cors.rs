//! CORS, off by default: `[api] cors_origins` lists the browser origins
//! (`https://app.example.com`, or `"*"` for any) whose pages may call the
//! API. Keys travel in the `Authorization` header, never in cookies, so no
//! credentials mode is needed.
//!
//! A preflight (`OPTIONS` with `Access-Control-Request-Method`) from a listed
//! origin is answered 204 with the allowed methods and headers; one from any
//! other origin, or asking for a method or header the API does not take, is
//! refused with a 403 problem document naming what was wrong. Other requests
//! from a listed origin get `Access-Control-Allow-Origin`; from an unlisted
//! one they are served without it, so the browser withholds the answer.
//! With the list empty this layer is not installed at all, and a preflight
//! gets the router's 405.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::{ApiError, AppState};

/// The methods a browser may use.
pub const METHODS: &str = "GET, POST, PUT, DELETE";
/// The request headers a browser may send beyond the CORS-safelisted ones.
pub const HEADERS: &[&str] = &["authorization", "content-type"];
/// How long a browser may cache a preflight answer (seconds).
pub const MAX_AGE: &str = "600";

/// The middleware; installed by [`crate::app`] only when `api.cors_origins` is not empty.
pub async fn cors(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(origin) = req.headers().get(header::ORIGIN).cloned() else {
        return next.run(req).await;
    };
    let allowed = allow_origin(&state.config.api.cors_origins, origin.to_str().unwrap_or(""));
    let preflight =
        req.method() == Method::OPTIONS && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        return preflight_answer(&req, &origin, allowed);
    }
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    // The answer depends on the origin (unless any origin is allowed): caches must know.
    if !state.config.api.cors_origins.iter().any(|o| o == "*") {
        h.append(header::VARY, HeaderValue::from_static("origin"));
    }
    if let Some(value) = allowed {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("allow, www-authenticate"));
    }
    response
}

/// The `Access-Control-Allow-Origin` value for `origin`, if it is listed.
fn allow_origin(list: &[String], origin: &str) -> Option<HeaderValue> {
    if list.iter().any(|o| o == "*") {
        return Some(HeaderValue::from_static("*"));
    }
    list.iter().any(|o| o.eq_ignore_ascii_case(origin)).then(|| HeaderValue::from_str(origin).ok()).flatten()
}

fn preflight_answer(req: &Request, origin: &HeaderValue, allowed: Option<HeaderValue>) -> Response {
    let origin_text = String::from_utf8_lossy(origin.as_bytes()).into_owned();
    let refuse = |detail: String| {
        let mut r = ApiError::forbidden(detail).into_response();
        r.headers_mut().insert(
            header::VARY,
            HeaderValue::from_static("origin, access-control-request-method, access-control-request-headers"),
        );
        r
    };
    let Some(allow_origin) = allowed else {
        return refuse(format!("CORS: origin {origin_text:?} is not in api.cors_origins"));
    };
    let method = req.headers().get(header::ACCESS_CONTROL_REQUEST_METHOD).and_then(|m| m.to_str().ok()).unwrap_or("");
    if !METHODS.split(", ").any(|m| m == method) {
        return refuse(format!("CORS: method {method:?} is not one the API takes ({METHODS})"));
    }
    let asked = req.headers().get(header::ACCESS_CONTROL_REQUEST_HEADERS).and_then(|h| h.to_str().ok()).unwrap_or("");
    for h in asked.split(',').map(|h| h.trim().to_ascii_lowercase()).filter(|h| !h.is_empty()) {
        if !HEADERS.contains(&h.as_str()) {
            return refuse(format!("CORS: request header {h:?} is not allowed (allowed: {})", HEADERS.join(", ")));
        }
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    let h = r.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin);
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(METHODS));
    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("authorization, content-type"));
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(MAX_AGE));
    h.insert(
        header::VARY,
        HeaderValue::from_static("origin, access-control-request-method, access-control-request-headers"),
    );
    r
}
