//! What a plugin declares about itself.
//!
//! The host reads the manifest once at load time: it checks the ABI
//! version, mounts the routes under `/api/v1/<name>/`, schedules the jobs,
//! documents the config section and lists everything in
//! `learnloop plugins list` and the OpenAPI document.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use learnloop_core::Role;

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
///
/// Its `role` is the one declaration of who may call it: the API checks a
/// caller's key against it and the OpenAPI document shows it; nothing else
/// decides it a second time.
///
/// On the wire (the manifest a loaded library sends through the C ABI) a
/// route carries `role` and, for hosts that predate it, `writes` (`true`
/// for writer and admin routes). A manifest from before `role` existed has
/// only `writes`, which still parses: `writes: true` is a writer route,
/// anything else a reader route. A manifest whose two keys disagree is
/// refused, naming the route.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RouteSpecWire", into = "RouteSpecWire")]
pub struct RouteSpec {
    /// `GET`, `POST`, `PUT` or `DELETE`.
    pub method: String,
    /// Path relative to `/api/v1/<plugin>`, with `{param}` segments, e.g. `/models/{model}/performance`.
    pub path: String,
    /// One line for the OpenAPI document.
    pub summary: String,
    /// The least role a key needs to call the route: [`Role::Reader`] for
    /// routes that only read, [`Role::Writer`] for routes that change state,
    /// [`Role::Admin`] for routes only an admin may call.
    pub role: Role,
    /// Request body schema (JSON Schema fragment), if it takes a body.
    pub request_schema: Value,
    /// Response body schema (JSON Schema fragment).
    pub response_schema: Value,
}

impl RouteSpec {
    /// A route answering a JSON object, taking `request_schema` as its body
    /// (`Value::Null`: none); `writes` routes change state and need a writer
    /// key, the others a reader key.
    pub fn new(method: &str, path: &str, summary: &str, writes: bool, request_schema: Value) -> Self {
        RouteSpec {
            method: method.into(),
            path: path.into(),
            summary: summary.into(),
            role: if writes { Role::Writer } else { Role::Reader },
            request_schema,
            response_schema: serde_json::json!({"type": "object"}),
        }
    }

    /// Whether the route changes state (needs at least a writer key).
    pub fn writes(&self) -> bool {
        self.role >= Role::Writer
    }
}

/// [`RouteSpec`] as it crosses the ABI: `role`, plus `writes` for older hosts.
#[derive(Serialize, Deserialize)]
struct RouteSpecWire {
    method: String,
    path: String,
    summary: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    role: Option<Role>,
    #[serde(default)]
    writes: Option<bool>,
    #[serde(default)]
    request_schema: Value,
    #[serde(default)]
    response_schema: Value,
}

impl TryFrom<RouteSpecWire> for RouteSpec {
    type Error = String;

    fn try_from(w: RouteSpecWire) -> Result<Self, String> {
        let role = match (w.role, w.writes) {
            (Some(role), Some(writes)) if writes != (role >= Role::Writer) => {
                return Err(format!(
                    "route {} {}: `writes: {writes}` contradicts `role: {}`",
                    w.method,
                    w.path,
                    role.as_str()
                ));
            }
            (Some(role), _) => role,
            (None, writes) => {
                if writes.unwrap_or(false) {
                    Role::Writer
                } else {
                    Role::Reader
                }
            }
        };
        Ok(RouteSpec {
            method: w.method,
            path: w.path,
            summary: w.summary,
            role,
            request_schema: w.request_schema,
            response_schema: w.response_schema,
        })
    }
}

impl From<RouteSpec> for RouteSpecWire {
    fn from(r: RouteSpec) -> Self {
        RouteSpecWire {
            writes: Some(r.writes()),
            role: Some(r.role),
            method: r.method,
            path: r.path,
            summary: r.summary,
            request_schema: r.request_schema,
            response_schema: r.response_schema,
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<RouteSpec, String> {
        serde_json::from_value(v).map_err(|e| e.to_string())
    }

    #[test]
    fn a_manifest_from_before_role_still_parses() {
        let base = json!({"method": "POST", "path": "/x", "summary": "s"});
        let with = |k: &str, v: Value| {
            let mut r = base.clone();
            r[k] = v;
            r
        };
        assert_eq!(parse(with("writes", json!(true))).unwrap().role, Role::Writer);
        assert_eq!(parse(with("writes", json!(false))).unwrap().role, Role::Reader);
        assert_eq!(parse(base.clone()).unwrap().role, Role::Reader);
        assert_eq!(parse(with("role", json!("admin"))).unwrap().role, Role::Admin);
        let err = parse(json!({"method": "POST", "path": "/x", "summary": "s", "role": "reader", "writes": true}))
            .unwrap_err();
        assert!(err.contains("POST /x") && err.contains("contradicts"), "{err}");
    }

    #[test]
    fn a_route_is_sent_with_role_and_writes() {
        for (role, writes) in [(Role::Reader, false), (Role::Writer, true), (Role::Admin, true)] {
            let r = RouteSpec { role, ..RouteSpec::new("GET", "/y", "s", false, Value::Null) };
            let v = serde_json::to_value(&r).unwrap();
            assert_eq!((v["role"].as_str(), v["writes"].as_bool()), (Some(role.as_str()), Some(writes)), "{v}");
            assert_eq!(serde_json::from_value::<RouteSpec>(v).unwrap(), r);
        }
    }
}
