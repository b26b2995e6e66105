//! The one configuration file that all three binaries read.
//!
//! `config/learnloop.toml` documents every key; [`Config::default`] is the
//! same thing in code, and a test keeps the two equal. Loading goes: file
//! (or built-in defaults) → `LEARNLOOP__SECTION__KEY` environment overrides →
//! typed deserialisation → cross-field validation. Every failure names the
//! file (or environment variable), the key and what was expected, because a
//! config error is usually found by an operator reading a log at night.
//!
//! Plugin sections (`[cost]`, `[drift]`, ...) are kept as raw TOML tables
//! here: each plugin validates its own section, so a third-party plugin can
//! have one without this crate knowing its schema.

#![deny(missing_docs)]

mod bind;
mod check;
mod notify;
mod show;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use bind::BindAddr;
pub use check::{CheckReport, ConfigErrors, check_file};
pub use notify::{DestinationConfig, DestinationKind, NotifyConfig};
pub use show::{Setting, Source, Sources};

/// The shipped, fully commented config file (also what `learnloop init` writes).
pub const SHIPPED_CONFIG: &str = include_str!("../../../config/learnloop.toml");

/// Plugins that ship with learnloop; their sections are always allowed.
pub const BUILTIN_PLUGINS: [&str; 4] = ["cost", "trust", "persona", "drift"];

/// Prefix of environment overrides: `LEARNLOOP__API__BIND=0.0.0.0:8080`.
pub const ENV_PREFIX: &str = "LEARNLOOP__";

/// What went wrong while loading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("{origin} is not valid TOML: {message}")]
    Syntax {
        /// The file.
        origin: String,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A key is unknown, has the wrong type or an invalid value.
    #[error("{origin}: key `{key}`: {message}")]
    Invalid {
        /// The file, or the environment variable that set the key.
        origin: String,
        /// Dotted path of the key, e.g. `api.bind`.
        key: String,
        /// What was wrong and what was expected.
        message: String,
    },
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Directory of the embedded store, vector index, keys and plugins.
    /// Relative paths are resolved against the current directory.
    pub data_dir: PathBuf,
    /// Workspace given to records that name none.
    pub default_workspace: String,
    /// Store of record.
    pub store: StoreConfig,
    /// Vector index (knowledge store).
    pub vector: VectorConfig,
    /// Local language model (Ollama).
    pub llm: LlmConfig,
    /// HTTP API server.
    pub api: ApiConfig,
    /// Job scheduler.
    pub scheduler: SchedulerConfig,
    /// The improvement lifecycle: backtest, apply, monitor, roll back.
    pub improvements: ImprovementsConfig,
    /// API keys.
    pub auth: AuthConfig,
    /// Which plugins run, and where dynamic ones are found.
    pub plugins: PluginsConfig,
    /// Notifications: destinations and delivery.
    pub notify: NotifyConfig,
    /// Each plugin's own section (`[cost]`, `[drift]`, ...), validated by the plugin.
    #[serde(skip)]
    pub plugin_sections: BTreeMap<String, toml::Table>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("learnloop-data"),
            default_workspace: "default".into(),
            store: StoreConfig::default(),
            vector: VectorConfig::default(),
            llm: LlmConfig::default(),
            api: ApiConfig::default(),
            scheduler: SchedulerConfig::default(),
            improvements: ImprovementsConfig::default(),
            auth: AuthConfig::default(),
            plugins: PluginsConfig::default(),
            notify: NotifyConfig::default(),
            plugin_sections: BUILTIN_PLUGINS.iter().map(|p| (p.to_string(), toml::Table::new())).collect(),
        }
    }
}

/// How hard SQLite works to make a commit durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    /// fsync on every commit: an acknowledged write survives power loss.
    Full,
    /// fsync at checkpoints: survives a crash of the process, not of the machine.
    Normal,
}

/// `[store]`: the store of record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Empty: embedded SQLite at `<data_dir>/learnloop.sqlite`.
    /// `sqlite:PATH` for another SQLite file, `postgres://...` for PostgreSQL.
    pub url: String,
    /// SQLite durability; see [`Synchronous`].
    pub synchronous: Synchronous,
    /// How long a writer waits for another process's write lock, in milliseconds.
    pub busy_timeout_ms: u64,
    /// Connections in the pool (PostgreSQL) or readers kept open (SQLite).
    pub pool_size: u32,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self { url: String::new(), synchronous: Synchronous::Full, busy_timeout_ms: 10_000, pool_size: 8 }
    }
}

/// Which vector index backs the knowledge store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VectorBackend {
    /// Qdrant Edge, in-process, in the data directory.
    Edge,
    /// A Qdrant server or cluster at `vector.url`.
    Qdrant,
}

/// Which embedder turns records into vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmbedderKind {
    /// Deterministic, from a record's structured fields; needs no model.
    Structured,
    /// Ollama's embedding model from `[llm]`.
    Ollama,
}

/// `[vector]`: the knowledge store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VectorConfig {
    /// `edge` (embedded, default) or `qdrant` (server).
    pub backend: VectorBackend,
    /// Qdrant server URL, used when `backend = "qdrant"`.
    pub url: String,
    /// `structured` (default) or `ollama`.
    pub embedder: EmbedderKind,
    /// Prefix of collection names, so several installations can share a Qdrant cluster.
    pub collection_prefix: String,
}

impl Default for VectorConfig {
    fn default() -> Self {
        Self {
            backend: VectorBackend::Edge,
            url: String::new(),
            embedder: EmbedderKind::Structured,
            collection_prefix: "learnloop".into(),
        }
    }
}

/// `[llm]`: an optional local Ollama server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LlmConfig {
    /// Ollama's URL, e.g. `http://127.0.0.1:11434`. Empty: no LLM, rule-based paths only.
    pub url: String,
    /// Generation model.
    pub model: String,
    /// Embedding model.
    pub embed_model: String,
    /// Longest wait for one LLM call before falling back, in milliseconds.
    pub timeout_ms: u64,
    /// Ollama endpoint used for generation: `/api/chat` or `/api/generate`.
    pub api: LlmApi,
    /// After Ollama was unreachable or timed out, skip it for this long
    /// (milliseconds) so the rule-based path is not slowed down by every call.
    pub retry_after_ms: u64,
}

/// Which Ollama endpoint generates text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LlmApi {
    /// `POST /api/chat` with a system and a user message.
    Chat,
    /// `POST /api/generate` with a system prompt and a prompt.
    Generate,
}

impl Default for LlmConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            model: "llama3.2".into(),
            embed_model: "nomic-embed-text".into(),
            timeout_ms: 10_000,
            api: LlmApi::Chat,
            retry_after_ms: 30_000,
        }
    }
}

/// `[api]`: the HTTP server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Address to listen on (`HOST:PORT`; a host name is resolved when the
    /// server starts). Loopback by default: exposing the API is a decision.
    pub bind: BindAddr,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Most records in one batch request.
    pub max_batch: usize,
    /// Browser origins allowed to call the API (CORS), e.g.
    /// `"https://app.example.com"`, or `"*"` for any. Empty: CORS is off.
    pub cors_origins: Vec<String>,
    /// Longest a client may take to send a request's headers
    /// (milliseconds), counted from its first byte; slower connections are
    /// closed.
    pub header_timeout_ms: u64,
    /// Longest a client may take to send a request's body (milliseconds);
    /// slower requests get 408 and their connection is closed.
    pub body_timeout_ms: u64,
    /// Longest a kept-alive connection may sit idle between requests
    /// (milliseconds) before the server closes it.
    pub idle_timeout_ms: u64,
    /// Most client connections open at once; further ones wait in the
    /// listen queue until one closes.
    pub max_connections: usize,
    /// On SIGTERM/SIGINT, longest the server waits for in-flight requests
    /// to finish before it closes their connections (milliseconds).
    pub shutdown_timeout_ms: u64,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".parse().expect("valid"),
            max_body_bytes: 4 * 1024 * 1024,
            max_batch: 1000,
            cors_origins: Vec::new(),
            header_timeout_ms: 10_000,
            body_timeout_ms: 30_000,
            idle_timeout_ms: 60_000,
            max_connections: 512,
            shutdown_timeout_ms: 30_000,
        }
    }
}

/// Checks one entry of `api.cors_origins`: `"*"`, or an origin as browsers
/// send it — `http://` or `https://`, a host, an optional port, nothing else
/// (no path, not even a trailing `/`).
pub fn check_cors_origin(origin: &str) -> Result<(), String> {
    if origin == "*" {
        return Ok(());
    }
    let rest = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://")).ok_or_else(|| {
        format!("{origin:?} is not an origin: it must start with http:// or https:// (or be \"*\" for any)")
    })?;
    let (host, port) = match rest.find(']') {
        Some(end) if rest.starts_with('[') => {
            (&rest[..=end], rest[end + 1..].strip_prefix(':').or(Some("").filter(|_| end + 1 < rest.len())))
        }
        _ => match rest.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        },
    };
    let host_ok = !host.is_empty()
        && !host.starts_with('.')
        && (host.starts_with('[') && host.ends_with(']') && host.len() > 2
            || host.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'));
    if !host_ok {
        return Err(format!(
            "{origin:?} is not an origin: expected scheme://host[:port], with no path (not even a trailing /)"
        ));
    }
    if let Some(p) = port
        && !p.parse::<u16>().is_ok_and(|n| n > 0)
    {
        return Err(format!("{origin:?} is not an origin: the port {p:?} is not a number from 1 to 65535"));
    }
    Ok(())
}

/// `[scheduler]`: the job runner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerConfig {
    /// How long the leader's lease lasts without renewal, in milliseconds.
    /// A standby takes over at most this long after the leader dies.
    pub lease_ttl_ms: u64,
    /// How often the scheduler wakes to renew its lease and look for due jobs, in milliseconds.
    pub tick_ms: u64,
    /// Retries of a failed run before the slot is given up.
    pub max_retries: u32,
    /// Delay before the first retry, doubled for each further one, in milliseconds.
    pub retry_backoff_ms: u64,
    /// Run a slot missed while no scheduler was running once at start-up.
    pub catch_up: bool,
    /// Per-job overrides, keyed `"plugin.job"`.
    pub jobs: BTreeMap<String, JobOverride>,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            lease_ttl_ms: 15_000,
            tick_ms: 1_000,
            max_retries: 3,
            retry_backoff_ms: 30_000,
            catch_up: true,
            jobs: BTreeMap::new(),
        }
    }
}

/// `[improvements]`: when a learned parameter set is applied, kept or rolled back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImprovementsConfig {
    /// Apply a proposal by itself when its backtest clears the thresholds
    /// below; otherwise (or when false) it waits for approval.
    pub auto_apply: bool,
    /// Least backtest confidence (probability the candidate is better) to apply by itself.
    pub min_confidence: f64,
    /// Least relative backtest gain over the version in force to apply by itself (0.02 = 2%).
    pub min_gain: f64,
    /// Least held-out outcomes a backtest needs before it can apply anything by itself.
    pub min_backtest_samples: u64,
    /// How long an applied version is monitored before it is kept, in hours.
    pub monitor_hours: u64,
    /// Least new outcomes before monitoring judges an applied version.
    pub monitor_min_samples: u64,
    /// Relative loss against the previous version, on outcomes since it was
    /// applied, that rolls an applied version back (0.05 = 5% worse).
    pub rollback_tolerance: f64,
}

impl Default for ImprovementsConfig {
    fn default() -> Self {
        Self {
            auto_apply: true,
            min_confidence: 0.7,
            min_gain: 0.01,
            min_backtest_samples: 30,
            monitor_hours: 168,
            monitor_min_samples: 30,
            rollback_tolerance: 0.05,
        }
    }
}

/// `[scheduler.jobs."plugin.job"]`: one job's schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobOverride {
    /// Cron expression replacing the plugin's default schedule.
    #[serde(default)]
    pub schedule: Option<String>,
    /// `false` stops the scheduler from running this job (it can still be run by hand).
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// `[auth]`: API keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Require an API key on every route but health. Turn off only behind
    /// something else that authenticates.
    pub enabled: bool,
    /// File (relative to `data_dir`) where the first admin key is written, mode 0600.
    pub admin_key_file: PathBuf,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self { enabled: true, admin_key_file: PathBuf::from("admin.key") }
    }
}

/// `[plugins]`: which plugins run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginsConfig {
    /// Plugins to load. Events for any other plugin are rejected.
    pub enabled: Vec<String>,
    /// Directory of dynamic plugins (`.so`). Empty: `<data_dir>/plugins`.
    pub dir: PathBuf,
}

impl Default for PluginsConfig {
    fn default() -> Self {
        Self { enabled: BUILTIN_PLUGINS.iter().map(|s| s.to_string()).collect(), dir: PathBuf::new() }
    }
}

/// Which config file a binary should read: `explicit` (`--config`), else
/// `$LEARNLOOP_CONFIG`, else `./learnloop.toml` if it exists; `None` means
/// the built-in defaults. All three binaries use this one rule.
pub fn discover(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_owned());
    }
    if let Some(p) = std::env::var_os("LEARNLOOP_CONFIG").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let local = PathBuf::from("learnloop.toml");
    local.exists().then_some(local)
}

/// Reads the config file, or nothing for the built-in defaults; returns
/// the name errors use for it and its text.
fn read(path: Option<&Path>) -> Result<(String, String), ConfigError> {
    match path {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read { path: p.to_owned(), source })?;
            Ok((p.display().to_string(), text))
        }
        None => Ok(("built-in defaults".to_string(), String::new())),
    }
}

/// The file's table with the environment's overrides applied, before
/// anything is typed, and where each key came from.
struct Layered {
    table: toml::Table,
    sources: Sources,
}

/// Top-level keys of [`Config`] (everything else is a plugin section).
const CORE_KEYS: [&str; 11] = [
    "data_dir",
    "default_workspace",
    "store",
    "vector",
    "llm",
    "api",
    "scheduler",
    "improvements",
    "auth",
    "plugins",
    "notify",
];

impl Layered {
    fn new(origin: &str, text: &str, env: impl IntoIterator<Item = (String, String)>) -> Result<Layered, ConfigError> {
        let file: toml::Table = text.parse().map_err(|e: toml::de::Error| ConfigError::Syntax {
            origin: origin.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        let mut table = file.clone();
        // Which keys came from the environment, so an error can name the variable.
        let mut env_keys: BTreeMap<String, String> = BTreeMap::new();
        let mut env: Vec<(String, String)> = env.into_iter().filter(|(k, _)| k.starts_with(ENV_PREFIX)).collect();
        env.sort();
        for (var, raw) in env {
            let path: Vec<String> = var[ENV_PREFIX.len()..].split("__").map(|s| s.to_lowercase()).collect();
            if path.iter().any(|s| s.is_empty()) {
                return Err(ConfigError::Invalid {
                    origin: format!("environment variable {var}"),
                    key: path.join("."),
                    message: "empty key segment; use LEARNLOOP__SECTION__KEY".into(),
                });
            }
            set_path(&mut table, &path, env_value(&raw)).map_err(|message| ConfigError::Invalid {
                origin: format!("environment variable {var}"),
                key: path.join("."),
                message,
            })?;
            env_keys.insert(path.join("."), var);
        }
        let sources = Sources::new(origin, (!text.is_empty()).then_some(file), env_keys);
        Ok(Layered { table, sources })
    }

    fn invalid(&self, key: String, message: String) -> ConfigError {
        ConfigError::Invalid { origin: self.sources.origin_of(&key), key, message }
    }

    /// Moves plugin sections out of `table`, so that unknown top-level keys
    /// are still errors; returns the sections and one error per bad key.
    fn split_plugins(&self, table: &mut toml::Table) -> (BTreeMap<String, toml::Table>, Vec<ConfigError>) {
        let enabled: Vec<String> = match table.get("plugins").and_then(|p| p.get("enabled")) {
            Some(toml::Value::Array(items)) => items.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
            _ => PluginsConfig::default().enabled,
        };
        let mut plugin_sections: BTreeMap<String, toml::Table> = Config::default().plugin_sections;
        let mut errors = Vec::new();
        let keys: Vec<String> = table.keys().cloned().collect();
        for key in keys {
            if CORE_KEYS.contains(&key.as_str()) {
                continue;
            }
            let is_plugin = BUILTIN_PLUGINS.contains(&key.as_str()) || enabled.contains(&key);
            if !is_plugin {
                let message = format!(
                    "unknown key; expected one of {}, or a section named after an enabled plugin ({})",
                    CORE_KEYS.join(", "),
                    enabled.join(", ")
                );
                table.remove(&key);
                errors.push(self.invalid(key, message));
                continue;
            }
            match table.remove(&key) {
                Some(toml::Value::Table(t)) => {
                    plugin_sections.insert(key, t);
                }
                _ => errors.push(self.invalid(key, "must be a table (a [section])".into())),
            }
        }
        (plugin_sections, errors)
    }

    /// The typed pass over the core keys.
    fn typed(&self, table: toml::Table) -> Result<Config, ConfigError> {
        serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            let key = e.path().to_string();
            self.invalid(key, learnloop_core::plain::serde_message(e.into_inner().message()))
        })
    }

    /// The configuration, or its first error.
    fn build(&self) -> Result<Config, ConfigError> {
        let mut table = self.table.clone();
        let (plugin_sections, errors) = self.split_plugins(&mut table);
        if let Some(e) = errors.into_iter().next() {
            return Err(e);
        }
        let mut config = self.typed(table)?;
        config.plugin_sections = plugin_sections;
        config.validate().map_err(|(key, message)| self.invalid(key, message))?;
        Ok(config)
    }
}

impl Config {
    /// Loads `path`, or the built-in defaults when `path` is `None`, then
    /// applies the process environment's `LEARNLOOP__*` overrides.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_with_env(path, std::env::vars())
    }

    /// [`Config::load`] with explicit environment variables (for tests).
    pub fn load_with_env(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        Self::load_with_sources(path, env).map(|(config, _)| config)
    }

    /// [`Config::load_with_env`], also saying where each key came from (the
    /// file, an environment variable or the default), so that errors found
    /// later — a plugin refusing its section, a job override — can name the
    /// file or variable, and `learnloop config show` can print it.
    pub fn load_with_sources(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(Config, Sources), ConfigError> {
        let (origin, text) = read(path)?;
        let layered = Layered::new(&origin, &text, env)?;
        let config = layered.build()?;
        Ok((config, layered.sources))
    }

    /// Parses config text; `origin` names it in errors.
    pub fn from_toml(origin: &str, text: &str) -> Result<Config, ConfigError> {
        Layered::new(origin, text, std::iter::empty())?.build()
    }

    /// Checks what types alone cannot: ids, ranges, URLs.
    fn validate(&self) -> Result<(), (String, String)> {
        let err = |k: &str, m: String| Err((k.to_string(), m));
        if self.data_dir.as_os_str().is_empty() {
            return err("data_dir", "must not be empty".into());
        }
        if let Err(e) = learnloop_core::WorkspaceId::parse("default_workspace", &self.default_workspace) {
            return err("default_workspace", e.message);
        }
        let url = &self.store.url;
        if !(url.is_empty()
            || url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return err("store.url", format!("{url:?} is not empty, `sqlite:PATH` or `postgres://...`"));
        }
        let imp = &self.improvements;
        for (k, v) in [
            ("min_confidence", imp.min_confidence),
            ("min_gain", imp.min_gain),
            ("rollback_tolerance", imp.rollback_tolerance),
        ] {
            if !v.is_finite() || !(0.0..=1.0).contains(&v) {
                return err(&format!("improvements.{k}"), format!("must be between 0 and 1, got {v}"));
            }
        }
        if imp.monitor_hours == 0 {
            return err("improvements.monitor_hours", "must be greater than 0".into());
        }
        if self.store.busy_timeout_ms == 0 {
            return err("store.busy_timeout_ms", "must be greater than 0".into());
        }
        if self.store.pool_size == 0 {
            return err("store.pool_size", "must be greater than 0".into());
        }
        if self.vector.backend == VectorBackend::Qdrant && self.vector.url.is_empty() {
            return err("vector.url", "is required when vector.backend = \"qdrant\"".into());
        }
        if self.vector.embedder == EmbedderKind::Ollama && self.llm.url.is_empty() {
            return err("vector.embedder", "\"ollama\" needs llm.url to be set".into());
        }
        let http = self.llm.url.starts_with("http://") || self.llm.url.starts_with("https://");
        if !self.llm.url.is_empty() && !http {
            return err("llm.url", format!("{:?} must start with http:// or https://", self.llm.url));
        }
        if self.llm.timeout_ms == 0 {
            return err("llm.timeout_ms", "must be greater than 0".into());
        }
        if self.api.max_body_bytes < 1024 {
            return err("api.max_body_bytes", "must be at least 1024".into());
        }
        if self.api.max_batch == 0 {
            return err("api.max_batch", "must be greater than 0".into());
        }
        for (k, v) in [
            ("header_timeout_ms", self.api.header_timeout_ms),
            ("body_timeout_ms", self.api.body_timeout_ms),
            ("idle_timeout_ms", self.api.idle_timeout_ms),
            ("shutdown_timeout_ms", self.api.shutdown_timeout_ms),
        ] {
            if v == 0 {
                return err(&format!("api.{k}"), "must be greater than 0".into());
            }
        }
        if self.api.max_connections == 0 {
            return err("api.max_connections", "must be greater than 0".into());
        }
        for (i, origin) in self.api.cors_origins.iter().enumerate() {
            if let Err(m) = check_cors_origin(origin) {
                return err(&format!("api.cors_origins[{i}]"), m);
            }
        }
        if self.scheduler.tick_ms == 0 || self.scheduler.tick_ms * 3 > self.scheduler.lease_ttl_ms {
            return err(
                "scheduler.tick_ms",
                "must be greater than 0 and at most a third of scheduler.lease_ttl_ms, so the lease is renewed in time"
                    .into(),
            );
        }
        for key in self.scheduler.jobs.keys() {
            let ok = key.split_once('.').is_some_and(|(p, j)| !p.is_empty() && !j.is_empty());
            if !ok {
                return err(&format!("scheduler.jobs.{key}"), "job keys are \"plugin.job\"".into());
            }
        }
        for (i, name) in self.plugins.enabled.iter().enumerate() {
            if let Err(e) = learnloop_core::PluginName::parse("", name) {
                return err(&format!("plugins.enabled[{i}]"), e.message);
            }
            if self.plugins.enabled[..i].contains(name) {
                return err(&format!("plugins.enabled[{i}]"), format!("{name:?} is listed twice"));
            }
        }
        self.notify.validate()?;
        Ok(())
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Where dynamic plugins are looked for.
    pub fn plugin_dir(&self) -> PathBuf {
        if self.plugins.dir.as_os_str().is_empty() { self.data_dir.join("plugins") } else { self.plugins.dir.clone() }
    }

    /// Whether `plugin` is enabled.
    pub fn plugin_enabled(&self, plugin: &str) -> bool {
        self.plugins.enabled.iter().any(|p| p == plugin)
    }

    /// The path of the embedded SQLite file, when the store is SQLite.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        if self.store.url.is_empty() {
            Some(self.data_dir.join("learnloop.sqlite"))
        } else {
            self.store.url.strip_prefix("sqlite:").map(|p| PathBuf::from(p.trim_start_matches("//")))
        }
    }
}

/// Interprets an environment value as TOML (numbers, booleans, arrays,
/// quoted strings); anything else is taken as a plain string.
fn env_value(raw: &str) -> toml::Value {
    let doc = format!("v = {raw}");
    match doc.parse::<toml::Table>() {
        Ok(mut t) => t.remove("v").unwrap_or_else(|| toml::Value::String(raw.to_string())),
        Err(_) => toml::Value::String(raw.to_string()),
    }
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), String> {
    let (last, parents) = path.split_last().expect("non-empty");
    let mut t = table;
    for (i, seg) in parents.iter().enumerate() {
        let entry = t.entry(seg.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        t = match entry {
            toml::Value::Table(inner) => inner,
            _ => return Err(format!("`{}` is not a section", path[..=i].join("."))),
        };
    }
    t.insert(last.clone(), value);
    Ok(())
}
