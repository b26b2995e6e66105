//! `[notify]`: where learnloop sends what it learned (webhooks, Slack,
//! PagerDuty, a file), which events go where, and how delivery retries.
//!
//! Secrets never sit in the file: a destination names the environment
//! variables holding its signing secret, its URL (a Slack webhook URL is
//! itself a secret) or its PagerDuty routing key, and
//! `learnloop_notify::Destinations::from_config` resolves them at start.

use learnloop_core::Severity;
use serde::{Deserialize, Serialize};

/// `[notify]`: notification delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// Attempts per delivery before it is given up (dead letter; `learnloop
    /// notifications retry ID` sends it again).
    pub max_attempts: u32,
    /// Delay before the first retry, in milliseconds; doubled for each
    /// further one, with random jitter (half to all of it).
    pub retry_base_ms: u64,
    /// Longest delay between two attempts, in milliseconds (also caps a
    /// destination's `Retry-After`).
    pub retry_max_ms: u64,
    /// Deadline of one HTTP attempt, in milliseconds.
    pub timeout_ms: u64,
    /// How often the deliverer looks for new notifications and due retries, in milliseconds.
    pub poll_ms: u64,
    /// Notifications older than this when they are first routed go to no
    /// destination (a destination added later is not flooded with old
    /// events), in hours.
    pub max_age_hours: u64,
    /// The API's address as people reach it (`https://learnloop.example.com`),
    /// put in front of each notification's link; empty: links are paths.
    pub public_url: String,
    /// Where notifications go (`[[notify.destinations]]`, none by default).
    pub destinations: Vec<DestinationConfig>,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            max_attempts: 10,
            retry_base_ms: 5_000,
            retry_max_ms: 3_600_000,
            timeout_ms: 10_000,
            poll_ms: 1_000,
            max_age_hours: 24,
            public_url: String::new(),
            destinations: Vec::new(),
        }
    }
}

/// What kind of receiver a destination is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DestinationKind {
    /// JSON body, signed with HMAC-SHA256 (`secret_env`).
    Webhook,
    /// A Slack incoming webhook (`url_env`: the URL is the secret).
    Slack,
    /// PagerDuty Events API v2 (`routing_key_env`; `url` defaults to PagerDuty's).
    Pagerduty,
    /// One JSON line per notification appended to `path` (for trying
    /// things out, and for log shippers).
    File,
}

impl DestinationKind {
    /// The name used in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            DestinationKind::Webhook => "webhook",
            DestinationKind::Slack => "slack",
            DestinationKind::Pagerduty => "pagerduty",
            DestinationKind::File => "file",
        }
    }
}

/// One `[[notify.destinations]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationConfig {
    /// Its name (letters, digits, `-`, `_`; unique): what `notifications
    /// list`, `retry` and `test` show and take.
    pub name: String,
    /// `webhook`, `slack`, `pagerduty` or `file`.
    pub kind: DestinationKind,
    /// The URL to POST to (`http://` or `https://`). For `slack` use
    /// `url_env` instead when the URL carries the token.
    #[serde(default)]
    pub url: String,
    /// The environment variable holding the URL (instead of `url`).
    #[serde(default)]
    pub url_env: String,
    /// `webhook`: the environment variable holding the HMAC-SHA256 signing secret (required).
    #[serde(default)]
    pub secret_env: String,
    /// `pagerduty`: the environment variable holding the integration's routing key (required).
    #[serde(default)]
    pub routing_key_env: String,
    /// `file`: the file to append to (relative paths are under `data_dir`).
    #[serde(default)]
    pub path: String,
    /// Event types to send (`alert.raised`, a prefix as `alert.*`, or `*`).
    #[serde(default = "all")]
    pub events: Vec<String>,
    /// Least severity to send.
    #[serde(default = "low")]
    pub min_severity: Severity,
    /// Workspaces to send (`*` for all; installation-wide events such as
    /// `job.failed` go only to destinations with `*`).
    #[serde(default = "all")]
    pub workspaces: Vec<String>,
    /// Plugins to send (`*` for all).
    #[serde(default = "all")]
    pub plugins: Vec<String>,
}

fn all() -> Vec<String> {
    vec!["*".into()]
}

fn low() -> Severity {
    Severity::Low
}

impl NotifyConfig {
    /// Checks what needs no environment: names, kinds' required keys, URLs,
    /// filters. The key of an error names the destination's index, the
    /// message its name.
    pub(crate) fn validate(&self) -> Result<(), (String, String)> {
        let err = |k: String, m: String| Err((k, m));
        if self.max_attempts == 0 {
            return err("notify.max_attempts".into(), "must be greater than 0".into());
        }
        for (k, v) in [
            ("retry_base_ms", self.retry_base_ms),
            ("retry_max_ms", self.retry_max_ms),
            ("timeout_ms", self.timeout_ms),
            ("poll_ms", self.poll_ms),
            ("max_age_hours", self.max_age_hours),
        ] {
            if v == 0 {
                return err(format!("notify.{k}"), "must be greater than 0".into());
            }
        }
        if self.retry_max_ms < self.retry_base_ms {
            return err("notify.retry_max_ms".into(), "must be at least notify.retry_base_ms".into());
        }
        let p = &self.public_url;
        if !p.is_empty() && !(p.starts_with("http://") || p.starts_with("https://")) {
            return err("notify.public_url".into(), format!("{p:?} must start with http:// or https://"));
        }
        for (i, d) in self.destinations.iter().enumerate() {
            let at = |key: &str| format!("notify.destinations[{i}].{key}");
            let named = |m: String| format!("destination {:?}: {m}", d.name);
            let name_ok = !d.name.is_empty()
                && d.name.len() <= 64
                && d.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !name_ok {
                return err(at("name"), format!("{:?} must be 1 to 64 letters, digits, `-` or `_`", d.name));
            }
            if self.destinations[..i].iter().any(|o| o.name == d.name) {
                return err(at("name"), named("is named twice".into()));
            }
            if !d.url.is_empty() && !d.url_env.is_empty() {
                return err(at("url_env"), named("give url or url_env, not both".into()));
            }
            if !d.url.is_empty() && !(d.url.starts_with("http://") || d.url.starts_with("https://")) {
                return err(at("url"), named(format!("{:?} must start with http:// or https://", d.url)));
            }
            let has_url = !d.url.is_empty() || !d.url_env.is_empty();
            let unused = |key: &str, v: &str| -> Result<(), (String, String)> {
                if v.is_empty() {
                    Ok(())
                } else {
                    Err((at(key), named(format!("`{key}` is not used by kind {:?}", d.kind.as_str()))))
                }
            };
            match d.kind {
                DestinationKind::Webhook => {
                    if !has_url {
                        return err(at("url"), named("a webhook needs `url` (or `url_env`)".into()));
                    }
                    if d.secret_env.is_empty() {
                        return err(
                            at("secret_env"),
                            named("a webhook needs `secret_env`, the variable holding its signing secret".into()),
                        );
                    }
                    unused("routing_key_env", &d.routing_key_env)?;
                    unused("path", &d.path)?;
                }
                DestinationKind::Slack => {
                    if !has_url {
                        return err(at("url_env"), named("a Slack destination needs `url_env` (or `url`)".into()));
                    }
                    unused("secret_env", &d.secret_env)?;
                    unused("routing_key_env", &d.routing_key_env)?;
                    unused("path", &d.path)?;
                }
                DestinationKind::Pagerduty => {
                    if d.routing_key_env.is_empty() {
                        return err(
                            at("routing_key_env"),
                            named("a PagerDuty destination needs `routing_key_env`".into()),
                        );
                    }
                    unused("secret_env", &d.secret_env)?;
                    unused("path", &d.path)?;
                }
                DestinationKind::File => {
                    if d.path.is_empty() {
                        return err(at("path"), named("a file destination needs `path`".into()));
                    }
                    if has_url {
                        return err(at("url"), named("a file destination takes `path`, not a URL".into()));
                    }
                    unused("secret_env", &d.secret_env)?;
                    unused("routing_key_env", &d.routing_key_env)?;
                }
            }
            for key in ["secret_env", "url_env", "routing_key_env"] {
                let v = match key {
                    "secret_env" => &d.secret_env,
                    "url_env" => &d.url_env,
                    _ => &d.routing_key_env,
                };
                if !v.is_empty() && !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return err(at(key), named(format!("{v:?} is not an environment variable name")));
                }
            }
            if d.events.is_empty() {
                return err(at("events"), named("lists no event type; use [\"*\"] for all".into()));
            }
            for (j, e) in d.events.iter().enumerate() {
                let known = learnloop_core::notify::EVENT_TYPES
                    .iter()
                    .any(|(t, _)| learnloop_core::notify::event_matches(e, t));
                if !known {
                    let all: Vec<&str> = learnloop_core::notify::EVENT_TYPES.iter().map(|(t, _)| *t).collect();
                    return err(
                        format!("notify.destinations[{i}].events[{j}]"),
                        named(format!("{e:?} matches no event type; known: {}", all.join(", "))),
                    );
                }
            }
            if d.workspaces.is_empty() {
                return err(at("workspaces"), named("lists no workspace; use [\"*\"] for all".into()));
            }
            for (j, w) in d.workspaces.iter().enumerate() {
                if w != "*"
                    && let Err(e) = learnloop_core::WorkspaceId::parse("", w)
                {
                    return err(format!("notify.destinations[{i}].workspaces[{j}]"), named(e.message));
                }
            }
            if d.plugins.is_empty() {
                return err(at("plugins"), named("lists no plugin; use [\"*\"] for all".into()));
            }
            for (j, p) in d.plugins.iter().enumerate() {
                if p != "*"
                    && let Err(e) = learnloop_core::PluginName::parse("", p)
                {
                    return err(format!("notify.destinations[{i}].plugins[{j}]"), named(e.message));
                }
            }
        }
        Ok(())
    }
}
