//! Handlers, one file per resource.

pub mod findings;
pub mod health;
pub mod improvements;
pub mod ingest;
pub mod jobs;
pub mod keys;
pub mod plugins;

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::Query;
use axum::extract::rejection::{BytesRejection, QueryRejection};

use crate::ApiError;

/// The body, or a problem: 413 past the size limit, 400 otherwise.
pub fn body(b: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, ApiError> {
    b.map_err(|e| {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large(format!("the request body is larger than {limit} bytes (api.max_body_bytes)"))
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
pub fn json(bytes: &[u8]) -> Result<serde_json::Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("the request body is empty; send a JSON object or array"));
    }
    serde_json::from_slice(bytes).map_err(|e| {
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
