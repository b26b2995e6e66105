//! What a plugin declares about itself.
//!
//! The host reads the manifest once at load time: it checks the ABI
//! version, mounts the routes under `/api/v1/<name>/`, schedules the jobs,
//! documents the config section and lists everything in
//! `learnloop plugins list` and the OpenAPI document.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::PluginError;
use crate::RecordType;

/// A plugin's self-description.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Plugin name: `a-z 0-9 _`, starting with a letter; records name it in `plugin`.
    pub name: String,
    /// The plugin's own version (semver).
    pub version: String,
    /// The C ABI version it was built for ([`crate::abi::ABI_VERSION`]).
    pub abi_version: u32,
    /// One paragraph for people.
    pub description: String,
    /// The records it accepts.
    pub kinds: Vec<KindSpec>,
    /// Its HTTP routes, relative to `/api/v1/<name>`.
    pub routes: Vec<RouteSpec>,
    /// Its jobs.
    pub jobs: Vec<JobSpec>,
    /// The keys of its config section, with defaults.
    pub config: Vec<ConfigKey>,
}

/// Records of one type a plugin accepts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KindSpec {
    /// Prediction or outcome.
    pub record_type: RecordType,
    /// Accepted `kind` values (predictions); empty means any.
    #[serde(default)]
    pub kinds: Vec<String>,
    /// What the payload holds, as a JSON Schema fragment (documentation; the
    /// plugin's `validate` enforces it).
    #[serde(default)]
    pub payload_schema: Value,
    /// One sentence for people.
    pub description: String,
}

/// One HTTP route.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteSpec {
    /// `GET`, `POST`, `PUT` or `DELETE`.
    pub method: String,
    /// Path relative to `/api/v1/<plugin>`, with `{param}` segments, e.g. `/models/{model}/performance`.
    pub path: String,
    /// One line for the OpenAPI document.
    pub summary: String,
    /// Whether the route changes state (needs a writer key rather than a reader key).
    #[serde(default)]
    pub writes: bool,
    /// Request body schema (JSON Schema fragment), if it takes a body.
    #[serde(default)]
    pub request_schema: Value,
    /// Response body schema (JSON Schema fragment).
    #[serde(default)]
    pub response_schema: Value,
}

impl RouteSpec {
    /// A route answering a JSON object, taking `request_schema` as its body
    /// (`Value::Null`: none).
    pub fn new(method: &str, path: &str, summary: &str, writes: bool, request_schema: Value) -> Self {
        RouteSpec {
            method: method.into(),
            path: path.into(),
            summary: summary.into(),
            writes,
            request_schema,
            response_schema: serde_json::json!({"type": "object"}),
        }
    }
}

/// One job (learning cycle, cleanup, report).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    /// Name, unique within the plugin.
    pub name: String,
    /// Default cron schedule: `sec min hour day-of-month month day-of-week`.
    pub schedule: String,
    /// One line for people.
    pub description: String,
}

impl JobSpec {
    /// A job with its default schedule.
    pub fn new(name: &str, schedule: &str, description: &str) -> Self {
        JobSpec { name: name.into(), schedule: schedule.into(), description: description.into() }
    }
}

/// One key of a plugin's config section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigKey {
    /// The key.
    pub key: String,
    /// Its default.
    pub default: Value,
    /// What it does.
    pub doc: String,
}

impl ConfigKey {
    /// The keys `docs` documents (key, what it does), each with its default
    /// read from `defaults`: the plugin's default config, serialized.
    pub fn documented(defaults: &Value, docs: &[(&str, &str)]) -> Vec<ConfigKey> {
        docs.iter()
            .map(|(k, doc)| ConfigKey { key: (*k).into(), default: defaults[*k].clone(), doc: (*doc).into() })
            .collect()
    }
}

/// Parses a plugin's config section into `T` (which should be
/// `#[serde(deny_unknown_fields, default)]`), naming the offending key in
/// the error in plain words: `[drift] p_value: expected a number, got the string "x"`.
pub fn parse_config<T: DeserializeOwned>(plugin: &str, section: &Value) -> Result<T, PluginError> {
    let section = if section.is_null() { Value::Object(Default::default()) } else { section.clone() };
    serde_path_to_error::deserialize(section).map_err(|e| {
        let key = e.path().to_string();
        PluginError::invalid(
            format!("[{plugin}] {key}"),
            learnloop_core::plain::serde_message(&e.into_inner().to_string()),
        )
    })
}
