//! Handlers, one file per resource.

pub mod findings;
pub mod health;
pub mod improvements;
pub mod ingest;
pub mod jobs;
pub mod keys;
pub mod notifications;
pub mod plugins;

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::Query;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use learnloop_core::json::DuplicateKey;

use crate::ApiError;

/// The 413 of a body over `api.max_body_bytes`.
pub fn too_large(limit: usize) -> ApiError {
    ApiError::too_large(format!("the request body is larger than {limit} bytes (api.max_body_bytes)"))
}

/// The body, or a problem: 413 past the size limit, 400 otherwise.
pub fn body(b: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, ApiError> {
    b.map_err(|e| {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            too_large(limit)
        } else {
            ApiError::bad_request(format!("cannot read the request body: {e}"))
        }
    })
}

/// The query string as a map, or a 400.
pub fn query(q: Result<Query<BTreeMap<String, String>>, QueryRejection>) -> Result<BTreeMap<String, String>, ApiError> {
    q.map(|Query(m)| m).map_err(|e| ApiError::bad_request(format!("bad query string: {e}")))
}

/// A JSON body parsed as a value, with a message that says where it broke.
/// A key repeated in one object is a 422 naming it (with its path: for a
/// top-level array, `[INDEX].` first).
pub fn json(bytes: &[u8]) -> Result<serde_json::Value, ApiError> {
    let (value, duplicates) = json_with_duplicates(bytes)?;
    if let Some(d) = duplicates.first() {
        let field = match d.item {
            Some(i) => format!("[{i}].{}", d.path),
            None => d.path.clone(),
        };
        return Err(ApiError::invalid(field, learnloop_core::json::DUPLICATE_KEY_MESSAGE));
    }
    Ok(value)
}

/// A JSON body parsed as a value, and every key repeated in one of its
/// objects (for callers that refuse only the items that hold one, like an
/// ingest batch).
///
/// A UTF-8 byte-order mark is refused with a message that says so: RFC 8259
/// forbids one in JSON sent over a network, and like serde_json, Python's
/// `json`, Go and JavaScript, learnloop does not guess (files read by
/// `learnloop ingest` may have one).
pub fn json_with_duplicates(bytes: &[u8]) -> Result<(serde_json::Value, Vec<DuplicateKey>), ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("the request body is empty; send a JSON object or array"));
    }
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        return Err(ApiError::bad_request(
            "the request body starts with a UTF-8 byte-order mark (bytes EF BB BF); JSON sent over HTTP must \
             not have one (RFC 8259, section 8.1): send the body without it",
        ));
    }
    learnloop_core::json::parse_value(bytes).map_err(|e| {
        let hint = if e.to_string().contains("expected value") {
            " (NaN and Infinity are not JSON; numbers must be finite)"
        } else {
            ""
        };
        ApiError::bad_request(format!("malformed JSON: {e}{hint}"))
    })
}

/// Parses an optional positive integer query parameter.
pub fn limit(q: &BTreeMap<String, String>, default: usize, max: usize) -> Result<usize, ApiError> {
    match q.get("limit") {
        None => Ok(default),
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::invalid("limit", format!("{s:?} is not a whole number from 1 to {max}"))),
        },
    }
}
