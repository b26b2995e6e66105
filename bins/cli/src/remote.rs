//! Talking to a running `learnloop-api`: what `--server URL` and `--api-key`
//! (or `LEARNLOOP_API_KEY`) mean for every command that takes them
//! (`learnloop call`, `learnloop jobs run`).
//!
//! Plain HTTP only (no TLS stack to build): a server is reached on loopback
//! or through a local TLS-terminating proxy. A problem document from the
//! server becomes an error naming the status, its title and its detail.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// A server and the key to call it with.
pub struct Server {
    base: String,
    key: Option<String>,
    agent: ureq::Agent,
}

impl Server {
    /// Checks `--server` (an `http://` URL) and keeps the key, which may be
    /// absent when the server runs with `[auth] enabled = false`.
    pub fn new(server: &str, key: Option<&str>) -> Result<Server> {
        let base = server.trim_end_matches('/');
        if base.starts_with("https://") {
            bail!(
                "--server {server}: this build of learnloop speaks plain HTTP only; use http:// (e.g. on loopback or through a local TLS-terminating proxy)"
            );
        }
        let rest = base.strip_prefix("http://").unwrap_or("");
        if rest.is_empty() || rest.contains(['/', '?', '#']) {
            bail!("--server {server}: expected a URL such as http://127.0.0.1:8080 (scheme, host and port, no path)");
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .build()
            .into();
        Ok(Server { base: base.to_string(), key: key.filter(|k| !k.is_empty()).map(str::to_string), agent })
    }

    /// Whether a key was given.
    pub fn has_key(&self) -> bool {
        self.key.is_some()
    }

    /// `METHOD base+path?query` with an optional JSON body. Answers the
    /// status and the parsed JSON body of a 2xx; any other status is an
    /// error (with the problem document printed to stdout first when
    /// `json_errors`, for scripts).
    pub fn call(
        &self,
        method: &str,
        path: &str,
        query: &[(String, String)],
        body: Option<&Value>,
        json_errors: bool,
    ) -> Result<(u16, Value)> {
        let url = format!("{}{path}", self.base);
        let what = format!("{method} {url}");
        let mut builder = match method {
            "GET" => self.agent.get(&url).force_send_body(),
            "DELETE" => self.agent.delete(&url).force_send_body(),
            "POST" => self.agent.post(&url),
            "PUT" => self.agent.put(&url),
            other => bail!("method: {other:?} is not one of GET, POST, PUT, DELETE"),
        };
        for (k, v) in query {
            builder = builder.query(k, v);
        }
        if let Some(key) = &self.key {
            builder = builder.header("Authorization", format!("Bearer {key}"));
        }
        let sent = match body {
            Some(b) => builder.header("Content-Type", "application/json").send(serde_json::to_vec(b)?),
            None if matches!(method, "GET" | "DELETE") => builder.send(&[][..]),
            None => builder.send_empty(),
        };
        let mut response = sent.with_context(|| what.clone())?;
        let status = response.status();
        let text = response.body_mut().read_to_string().with_context(|| format!("reading the answer to {what}"))?;
        let parsed: Option<Value> = serde_json::from_str(&text).ok();
        if !status.is_success() {
            let (title, detail) = match &parsed {
                Some(p) => {
                    (p["title"].as_str().unwrap_or("").to_string(), p["detail"].as_str().unwrap_or("").to_string())
                }
                None => (String::new(), text.chars().take(500).collect()),
            };
            if let (true, Some(p)) = (json_errors, &parsed) {
                outln!("{p}")?;
            }
            let title = if title.is_empty() { status.canonical_reason().unwrap_or("error").to_string() } else { title };
            let hint = if status.as_u16() == 401 && self.key.is_none() {
                " (pass --api-key KEY or set LEARNLOOP_API_KEY)"
            } else {
                ""
            };
            if detail.is_empty() {
                bail!("server answered {}: {title}{hint}", status.as_u16());
            }
            bail!("server answered {}: {title}: {detail}{hint}", status.as_u16());
        }
        let value = parsed.with_context(|| {
            format!("the answer to {what} is not JSON: {}", text.chars().take(500).collect::<String>())
        })?;
        Ok((status.as_u16(), value))
    }
}

/// Percent-encodes a path segment (plugin and job names are plain, but a
/// typo must not change the path).
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Percent-encodes a path, keeping its `/` separators.
pub fn encode_path(path: &str) -> String {
    path.split('/').map(encode_segment).collect::<Vec<_>>().join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(encode_segment("learning_cycle"), "learning_cycle");
        assert_eq!(encode_segment("a/b c"), "a%2Fb%20c");
        assert_eq!(encode_path("/models/m 1/drift"), "/models/m%201/drift");
    }

    #[test]
    fn server_urls_are_checked() {
        assert!(Server::new("http://127.0.0.1:8080/", None).is_ok());
        for bad in ["https://x", "127.0.0.1:8080", "http://", "http://h/api"] {
            assert!(Server::new(bad, None).is_err(), "{bad}");
        }
    }
}
