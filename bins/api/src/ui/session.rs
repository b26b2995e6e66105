//! Dashboard sessions: a random id in a cookie, everything else here.
//!
//! Signing in with an API key makes a session in this process's memory: a
//! 256-bit random id (the only thing the browser gets, in an `HttpOnly`,
//! `SameSite=Strict` cookie, `Secure` when the request came over TLS), the
//! key's SHA-256 (never the key), a CSRF token and two clocks. Every
//! request verifies the hash again through [`crate::auth::verify_hash`],
//! so a revoked key's sessions end as its API access does. A session ends
//! after [`IDLE`] without a request, [`MAX_AGE`] after sign-in, or at sign
//! out. Sessions are not shared between API nodes and do not survive a
//! restart: signing in again is the cost, and no schema change is needed.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use axum::http::header;

/// The cookie's name.
pub const COOKIE: &str = "learnloop_session";
/// A session ends after this long without a request.
pub const IDLE: Duration = Duration::from_secs(60 * 60);
/// And this long after sign-in at the latest.
pub const MAX_AGE: Duration = Duration::from_secs(12 * 60 * 60);
/// Sessions kept at once; past it the oldest is dropped.
const MAX_SESSIONS: usize = 10_000;

/// One signed-in browser.
#[derive(Clone)]
pub struct Session {
    /// SHA-256 of the key it signed in with (`None` with `[auth] enabled = false`).
    pub key_hash: Option<[u8; 32]>,
    /// The token every state-changing form carries.
    pub csrf: String,
    /// A message for the next page shown (after an action), shown once.
    pub flash: Option<(bool, String)>,
    created: Instant,
    seen: Instant,
}

/// The sessions of this process.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

/// 32 random bytes as hex.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random source works");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Sessions {
    /// Starts a session; returns its id.
    pub fn create(&self, key_hash: Option<[u8; 32]>) -> String {
        let id = random_token();
        let now = Instant::now();
        let session = Session { key_hash, csrf: random_token(), flash: None, created: now, seen: now };
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, s| live(s, now));
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map.iter().min_by_key(|(_, s)| s.seen).map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(id.clone(), session);
        id
    }

    /// The live session `id`, touched; an expired one is removed.
    pub fn get(&self, id: &str) -> Option<Session> {
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        match map.get_mut(id) {
            Some(s) if live(s, now) => {
                s.seen = now;
                Some(s.clone())
            }
            Some(_) => {
                map.remove(id);
                None
            }
            None => None,
        }
    }

    /// Takes the session's flash message.
    pub fn take_flash(&self, id: &str) -> Option<(bool, String)> {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).get_mut(id).and_then(|s| s.flash.take())
    }

    /// Sets the message the next page shows (`ok`: success or failure).
    pub fn flash(&self, id: &str, ok: bool, message: String) {
        if let Some(s) = self.map.lock().unwrap_or_else(|e| e.into_inner()).get_mut(id) {
            s.flash = Some((ok, message));
        }
    }

    /// Ends a session.
    pub fn remove(&self, id: &str) {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
    }

    /// Live sessions (for tests).
    pub fn len(&self) -> usize {
        let now = Instant::now();
        self.map.lock().unwrap_or_else(|e| e.into_inner()).values().filter(|s| live(s, now)).count()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn live(s: &Session, now: Instant) -> bool {
    now.duration_since(s.seen) < IDLE && now.duration_since(s.created) < MAX_AGE
}

/// The session id the request's cookie carries.
pub fn cookie_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Whether the request reached us over TLS: directly (an `https` URI) or
/// through a proxy that says so (`X-Forwarded-Proto: https`, or
/// `Forwarded: proto=https`). It only adds `Secure` to the cookie, so a
/// client claiming it falsely harms only itself.
pub fn over_tls(uri: &axum::http::Uri, headers: &HeaderMap) -> bool {
    let forwarded = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').next().is_some_and(|p| p.trim().eq_ignore_ascii_case("https")));
    let standard = headers
        .get(header::FORWARDED)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("proto=https"));
    uri.scheme_str() == Some("https") || forwarded || standard
}

/// The `Set-Cookie` value that starts a session.
pub fn set_cookie(id: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}={id}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={}{secure}", MAX_AGE.as_secs())
}

/// The `Set-Cookie` value that ends one.
pub fn clear_cookie(secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0{secure}")
}

/// Compares two tokens in time independent of where they differ.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_live_and_end() {
        let s = Sessions::default();
        let id = s.create(Some([1; 32]));
        assert_eq!(id.len(), 64);
        let got = s.get(&id).expect("live");
        assert_eq!(got.csrf.len(), 64);
        assert_ne!(got.csrf, id);
        s.flash(&id, true, "done".into());
        assert_eq!(s.take_flash(&id), Some((true, "done".into())));
        assert_eq!(s.take_flash(&id), None);
        s.remove(&id);
        assert!(s.get(&id).is_none());
        assert!(s.is_empty());
    }

    #[test]
    fn cookies() {
        let mut h = HeaderMap::new();
        let id = "ab".repeat(32);
        h.insert(header::COOKIE, format!("x=1; {COOKIE}={id}; y=2").parse().unwrap());
        assert_eq!(cookie_id(&h), Some(id.clone()));
        h.insert(header::COOKIE, format!("{COOKIE}=short").parse().unwrap());
        assert_eq!(cookie_id(&h), None);
        let c = set_cookie(&id, true);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.ends_with("; Secure"));
        assert!(!set_cookie(&id, false).contains("Secure"));
        assert!(same_token("abc", "abc") && !same_token("abc", "abd") && !same_token("abc", "ab"));
        let mut h = HeaderMap::new();
        assert!(!over_tls(&"/ui/".parse().unwrap(), &h));
        h.insert("x-forwarded-proto", "https".parse().unwrap());
        assert!(over_tls(&"/ui/".parse().unwrap(), &h));
    }
}
