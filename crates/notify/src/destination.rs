//! Destinations: `[[notify.destinations]]` with their secrets resolved
//! from the environment, and the filters that route a notification to them.

use std::path::{Path, PathBuf};

use learnloop_config::{Config, DestinationConfig, DestinationKind};
use learnloop_core::Notification;
use learnloop_core::notify::event_matches;

/// PagerDuty's Events API v2 endpoint, used when a `pagerduty` destination gives no `url`.
pub const PAGERDUTY_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// Where one destination's notifications go, secrets resolved.
#[derive(Clone)]
pub enum Target {
    /// POST the JSON body, signed.
    Webhook {
        /// The URL.
        url: String,
        /// The HMAC-SHA256 key.
        secret: Vec<u8>,
    },
    /// POST a Slack message.
    Slack {
        /// The incoming-webhook URL.
        url: String,
    },
    /// POST a PagerDuty event.
    Pagerduty {
        /// The Events API URL.
        url: String,
        /// The integration's routing key.
        routing_key: String,
    },
    /// Append a JSON line.
    File {
        /// The file.
        path: PathBuf,
    },
}

impl std::fmt::Debug for Target {
    // Secrets never reach a log line or an error message.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Webhook { url, .. } => write!(f, "webhook {}", redact(url)),
            Target::Slack { url } => write!(f, "slack {}", redact(url)),
            Target::Pagerduty { url, .. } => write!(f, "pagerduty {}", redact(url)),
            Target::File { path } => write!(f, "file {}", path.display()),
        }
    }
}

/// A URL with everything after its host replaced (Slack's path is its token).
pub fn redact(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit('@').next().unwrap_or(host);
    if rest.len() > host.len() { format!("{scheme}://{host}/…") } else { format!("{scheme}://{host}") }
}

/// One destination: its name, filters and target.
#[derive(Debug, Clone)]
pub struct Destination {
    /// Its name in the config.
    pub name: String,
    /// What it is.
    pub kind: DestinationKind,
    /// Where it goes.
    pub target: Target,
    config: DestinationConfig,
}

impl Destination {
    /// Whether `n` passes this destination's filters (event types, least
    /// severity, workspaces, plugins). An installation-wide notification
    /// (no workspace) passes only `workspaces = ["*"]`.
    pub fn wants(&self, n: &Notification) -> bool {
        let c = &self.config;
        let event = c.events.iter().any(|p| event_matches(p, &n.event));
        let workspace =
            c.workspaces.iter().any(|w| w == "*" || n.workspace.as_ref().is_some_and(|nw| nw.as_str() == w));
        let plugin = c.plugins.iter().any(|p| p == "*" || p == n.plugin.as_str());
        event && workspace && plugin && n.severity >= c.min_severity
    }

    /// A destination made in code (the quickstart's file), not from the config.
    pub fn file(name: &str, path: PathBuf) -> Destination {
        let config = DestinationConfig {
            name: name.into(),
            kind: DestinationKind::File,
            url: String::new(),
            url_env: String::new(),
            secret_env: String::new(),
            routing_key_env: String::new(),
            path: path.display().to_string(),
            events: vec!["*".into()],
            min_severity: learnloop_core::Severity::Low,
            workspaces: vec!["*".into()],
            plugins: vec!["*".into()],
        };
        Destination { name: name.into(), kind: DestinationKind::File, target: Target::File { path }, config }
    }
}

/// Every configured destination, resolved.
#[derive(Debug, Clone, Default)]
pub struct Destinations {
    /// In config order.
    pub list: Vec<Destination>,
}

impl Destinations {
    /// Resolves `[[notify.destinations]]` with the process environment: an
    /// error names the destination and the variable that is not set.
    pub fn from_config(config: &Config) -> Result<Destinations, String> {
        Self::from_config_with_env(config, |k| std::env::var(k).ok())
    }

    /// [`Destinations::from_config`] with an explicit environment (tests).
    pub fn from_config_with_env(config: &Config, env: impl Fn(&str) -> Option<String>) -> Result<Destinations, String> {
        let mut list = Vec::new();
        for (i, d) in config.notify.destinations.iter().enumerate() {
            let var = |key: &str, name: &str| -> Result<String, String> {
                match env(name) {
                    Some(v) if !v.is_empty() => Ok(v),
                    _ => Err(format!(
                        "notify.destinations[{i}] ({:?}): {key} = {name:?}, but the environment variable {name} is not set",
                        d.name
                    )),
                }
            };
            let url = |default: Option<&str>| -> Result<String, String> {
                let url = if !d.url_env.is_empty() {
                    var("url_env", &d.url_env)?
                } else if !d.url.is_empty() {
                    d.url.clone()
                } else {
                    default.unwrap_or_default().to_string()
                };
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(format!(
                        "notify.destinations[{i}] ({:?}): the URL in {} must start with http:// or https://",
                        d.name, d.url_env
                    ));
                }
                Ok(url)
            };
            let target = match d.kind {
                DestinationKind::Webhook => {
                    Target::Webhook { url: url(None)?, secret: var("secret_env", &d.secret_env)?.into_bytes() }
                }
                DestinationKind::Slack => Target::Slack { url: url(None)? },
                DestinationKind::Pagerduty => Target::Pagerduty {
                    url: url(Some(PAGERDUTY_URL))?,
                    routing_key: var("routing_key_env", &d.routing_key_env)?,
                },
                DestinationKind::File => Target::File { path: resolve(config.data_dir(), &d.path) },
            };
            list.push(Destination { name: d.name.clone(), kind: d.kind, target, config: d.clone() });
        }
        Ok(Destinations { list })
    }

    /// The destination named `name`.
    pub fn get(&self, name: &str) -> Option<&Destination> {
        self.list.iter().find(|d| d.name == name)
    }

    /// The names of the destinations `n` goes to.
    pub fn route(&self, n: &Notification) -> Vec<String> {
        self.list.iter().filter(|d| d.wants(n)).map(|d| d.name.clone()).collect()
    }

    /// The configured names, for messages.
    pub fn names(&self) -> Vec<&str> {
        self.list.iter().map(|d| d.name.as_str()).collect()
    }
}

fn resolve(data_dir: &Path, path: &str) -> PathBuf {
    let p = PathBuf::from(path);
    if p.is_absolute() { p } else { data_dir.join(p) }
}
