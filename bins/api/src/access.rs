//! Request ids, the request span and what handlers tell the access log.
//!
//! Every request gets an id: the client's `x-request-id` when it is sane
//! (1 to 128 characters of letters, digits and `-_.:@`), else 16 random
//! bytes in hex. It is returned in the `x-request-id` header and is a field
//! of the span `request` that wraps the handler, so whatever the request
//! causes (parsing, the group commit wait, a plugin route's catch-up and
//! handler, on blocking threads too: handlers enter [`Span::current`]
//! there) logs with it, and the access log line (`lib.rs`'s `track`) ties
//! them together.
//!
//! Handlers learn things the middleware cannot see from outside — which
//! key called, which plugin route template matched — and note them here
//! through a task-local ([`note_key`], [`note_route`]); outside a request
//! (tests calling a handler directly) the notes are dropped.

use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, HeaderName};

/// The header carrying the request id, both ways.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What the handler noted for the access log and the metrics.
#[derive(Debug, Default)]
pub struct Notes {
    inner: Mutex<Noted>,
}

#[derive(Debug, Default, Clone)]
pub(crate) struct Noted {
    /// The caller's key id (never the key).
    pub key_id: Option<i64>,
    /// The matched route template when the router's is too coarse (a
    /// plugin route: `/api/v1/drift/models/{model}/drift`).
    pub route: Option<String>,
}

impl Notes {
    pub(crate) fn taken(&self) -> Noted {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

tokio::task_local! {
    static NOTES: Arc<Notes>;
}

/// Runs `f` (the rest of the request) with fresh notes; returns its result
/// and the notes.
pub(crate) async fn with_notes<F: std::future::Future>(f: F) -> (F::Output, Noted) {
    let notes = Arc::new(Notes::default());
    let out = NOTES.scope(notes.clone(), f).await;
    let noted = notes.taken();
    (out, noted)
}

fn note(f: impl FnOnce(&mut Noted)) {
    let _ = NOTES.try_with(|n| f(&mut n.inner.lock().unwrap_or_else(|e| e.into_inner())));
}

/// The request's caller is key `id`.
pub fn note_key(id: i64) {
    note(|n| n.key_id = Some(id));
}

/// The request matched route template `template` (a plugin route).
pub fn note_route(template: String) {
    note(|n| n.route = Some(template));
}

/// The request id: the client's `x-request-id` when sane, else a new one.
pub fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| is_sane(v))
        .map(str::to_string)
        .unwrap_or_else(generate)
}

/// Short, printable, and nothing a log or a header could trip on.
fn is_sane(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '@'))
}

fn generate() -> String {
    let mut bytes = [0u8; 16];
    // The OS random source does not fail on Linux once booted; if it ever
    // did, an all-zero id is still an id.
    let _ = getrandom::fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sane_incoming_id_is_kept_and_anything_else_replaced() {
        let mut h = HeaderMap::new();
        h.insert(&REQUEST_ID, "abc-123_x.y:z@w".parse().unwrap());
        assert_eq!(request_id(&h), "abc-123_x.y:z@w");
        for bad in ["", "has space", "quote\"", &"x".repeat(129)] {
            let mut h = HeaderMap::new();
            h.insert(&REQUEST_ID, bad.parse().unwrap());
            let id = request_id(&h);
            assert_ne!(id, bad);
            assert_eq!(id.len(), 32, "{id}");
            assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
        }
        assert_ne!(request_id(&HeaderMap::new()), request_id(&HeaderMap::new()));
    }
}
