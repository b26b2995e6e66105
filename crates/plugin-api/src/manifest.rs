//! What a plugin declares about itself.
//!
//! The host reads the manifest once at load time: it checks the ABI
//! version, mounts the routes under `/api/v1/<name>/`, schedules the jobs,
//! documents the config section and lists everything in
//! `learnloop plugins list` and the OpenAPI document.

use std::collections::BTreeMap;

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
    /// The named JSON Schemas its routes' `request_schema` and
    /// `response_schema` refer to as `#/$defs/Name` (made by
    /// [`crate::Schemas`] from the plugin's Rust types). The OpenAPI
    /// document lists them under `components/schemas` as `PluginName`.
    #[serde(default)]
    pub schemas: BTreeMap<String, Value>,
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
    /// The operation's name, unique within the plugin, in snake_case: the
    /// OpenAPI `operationId` is `<plugin>_<name>` (and a generated client's
    /// method name is `name`). A manifest without one gets a name made from
    /// the method and path (`get_models_by_model_performance`).
    pub name: String,
    /// The query parameters the route takes, besides `workspace` (which
    /// every route takes). The host refuses any other parameter (400 naming
    /// it) and a value its schema does not admit (422 naming it) before the
    /// plugin sees the request. `None` (a manifest from before query
    /// parameters were declared) leaves the query unchecked.
    pub query: Option<Vec<QueryParam>>,
    /// Statuses the route answers besides 200 and the errors every route
    /// can answer (400, 401, 403, 404, 405, 413, 422, 503), e.g. 201 or 409.
    pub statuses: Vec<u16>,
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
            name: default_name(method, path),
            query: None,
            statuses: Vec::new(),
        }
    }

    /// A reader route `GET path`, with no query parameters until
    /// [`RouteSpec::query`] declares them.
    pub fn get(name: &str, path: &str, summary: &str) -> Self {
        RouteSpec {
            name: name.into(),
            query: Some(Vec::new()),
            ..RouteSpec::new("GET", path, summary, false, Value::Null)
        }
    }

    /// A route with another method (`POST`, `PUT`, `DELETE`) that needs
    /// `role`, with no query parameters until [`RouteSpec::query`] declares them.
    pub fn with_method(method: &str, role: Role, name: &str, path: &str, summary: &str) -> Self {
        RouteSpec {
            name: name.into(),
            role,
            query: Some(Vec::new()),
            ..RouteSpec::new(method, path, summary, false, Value::Null)
        }
    }

    /// The query parameters it takes (besides `workspace`).
    pub fn query(mut self, params: Vec<QueryParam>) -> Self {
        self.query = Some(params);
        self
    }

    /// The schema of its request body.
    pub fn body(mut self, schema: Value) -> Self {
        self.request_schema = schema;
        self
    }

    /// The schema of its answer.
    pub fn answers(mut self, schema: Value) -> Self {
        self.response_schema = schema;
        self
    }

    /// Further statuses it answers (201, 409, ...).
    pub fn statuses(mut self, statuses: &[u16]) -> Self {
        self.statuses.extend_from_slice(statuses);
        self
    }

    /// Whether the route changes state (needs at least a writer key).
    pub fn writes(&self) -> bool {
        self.role >= Role::Writer
    }

    /// Checks a request's query string against the declared parameters
    /// (`workspace` is always allowed). Unchecked when none are declared.
    pub fn check_query(&self, query: &BTreeMap<String, String>) -> Result<(), QueryError> {
        let Some(params) = &self.query else { return Ok(()) };
        for (name, value) in query {
            if name == "workspace" {
                continue;
            }
            let Some(p) = params.iter().find(|p| &p.name == name) else {
                let mut takes: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
                takes.push("workspace");
                return Err(QueryError {
                    parameter: name.clone(),
                    message: format!(
                        "unknown query parameter {name:?}: {} {} takes {}",
                        self.method,
                        self.path,
                        takes.join(", ")
                    ),
                    unknown: true,
                });
            };
            p.check(value).map_err(|message| QueryError { parameter: name.clone(), message, unknown: false })?;
        }
        if let Some(p) = params.iter().find(|p| p.required && !query.contains_key(&p.name)) {
            return Err(QueryError {
                parameter: p.name.clone(),
                message: "is required (query parameter)".into(),
                unknown: false,
            });
        }
        Ok(())
    }
}

/// A name made from a route's method and path, for manifests that give none.
fn default_name(method: &str, path: &str) -> String {
    let mut name = method.to_ascii_lowercase();
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        name.push('_');
        match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(param) => {
                name.push_str("by_");
                name.push_str(param);
            }
            None => name.push_str(seg),
        }
    }
    name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect()
}

/// A query string that does not fit a route's declared parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryError {
    /// The parameter at fault.
    pub parameter: String,
    /// What was wrong.
    pub message: String,
    /// The route takes no such parameter (a 400), rather than a value it
    /// does not admit (a 422).
    pub unknown: bool,
}

/// One query parameter of a route: its name, what it does and the JSON
/// Schema of its value, which the host enforces and the OpenAPI document
/// shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryParam {
    /// The parameter's name.
    pub name: String,
    /// What it does, for people.
    pub description: String,
    /// The schema of its value: `integer` or `number` (with `minimum` and
    /// `maximum`), `boolean`, `string` (with `enum`, or `format:
    /// date-time`: RFC 3339).
    pub schema: Value,
    /// Whether the route needs it.
    #[serde(default)]
    pub required: bool,
}

impl QueryParam {
    fn new(name: &str, description: &str, schema: Value) -> Self {
        QueryParam { name: name.into(), description: description.into(), schema, required: false }
    }

    /// A whole number in `min..=max`.
    pub fn integer(name: &str, description: &str, min: i64, max: i64) -> Self {
        Self::new(name, description, serde_json::json!({"type": "integer", "minimum": min, "maximum": max}))
    }

    /// A finite number in `[min, max]`.
    pub fn number(name: &str, description: &str, min: f64, max: f64) -> Self {
        Self::new(name, description, serde_json::json!({"type": "number", "minimum": min, "maximum": max}))
    }

    /// `true` or `false` (`1` and `0` are taken too).
    pub fn boolean(name: &str, description: &str) -> Self {
        Self::new(name, description, serde_json::json!({"type": "boolean"}))
    }

    /// Any text.
    pub fn string(name: &str, description: &str) -> Self {
        Self::new(name, description, serde_json::json!({"type": "string", "minLength": 1}))
    }

    /// One of `values`.
    pub fn one_of(name: &str, description: &str, values: &[&str]) -> Self {
        Self::new(name, description, serde_json::json!({"type": "string", "enum": values}))
    }

    /// An RFC 3339 time such as `2026-01-31T12:00:00Z`.
    pub fn date_time(name: &str, description: &str) -> Self {
        Self::new(name, description, serde_json::json!({"type": "string", "format": "date-time"}))
    }

    /// The route needs it.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// Whether `value` is one its schema admits; the message says why not.
    pub fn check(&self, value: &str) -> Result<(), String> {
        // The keywords the host enforces, read once into typed fields (a
        // schema it cannot read admits anything, as before).
        let s: ValueSchema = serde_json::from_value(self.schema.clone()).unwrap_or_default();
        let bounds = || match (s.minimum, s.maximum) {
            (Some(a), Some(b)) => format!(" from {a} to {b}"),
            (Some(a), None) => format!(" ≥ {a}"),
            (None, Some(b)) => format!(" ≤ {b}"),
            (None, None) => String::new(),
        };
        let within = |v: f64| s.minimum.is_none_or(|m| v >= m) && s.maximum.is_none_or(|m| v <= m);
        match s.kind.as_ref().and_then(Value::as_str) {
            Some("integer") => match value.parse::<i64>() {
                Ok(v) if within(v as f64) => Ok(()),
                _ => Err(format!("{value:?}: expected a whole number{}", bounds())),
            },
            Some("number") => match value.parse::<f64>() {
                Ok(v) if v.is_finite() && within(v) => Ok(()),
                _ => Err(format!("{value:?}: expected a number{}", bounds())),
            },
            Some("boolean") => match value {
                "true" | "false" | "1" | "0" => Ok(()),
                _ => Err(format!("{value:?}: expected true or false")),
            },
            _ => {
                if let Some(options) = &s.options
                    && !options.iter().any(|o| o.as_str() == Some(value))
                {
                    let list: Vec<&str> = options.iter().filter_map(Value::as_str).collect();
                    return Err(format!("{value:?}: expected one of {}", list.join(", ")));
                }
                if s.format.as_deref() == Some("date-time") {
                    learnloop_core::Timestamp::parse(&self.name, value).map_err(|e| e.message)?;
                }
                if value.is_empty() && s.min_length.is_some() {
                    return Err("is empty".into());
                }
                Ok(())
            }
        }
    }
}

/// The keywords of a query parameter's schema that the host enforces.
#[derive(Default, Deserialize)]
struct ValueSchema {
    /// A string, or (not enforced) a list of types.
    #[serde(rename = "type")]
    kind: Option<Value>,
    minimum: Option<f64>,
    maximum: Option<f64>,
    #[serde(rename = "enum")]
    options: Option<Vec<Value>>,
    format: Option<String>,
    #[serde(rename = "minLength")]
    min_length: Option<u64>,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    query: Option<Vec<QueryParam>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    statuses: Vec<u16>,
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
        let name = match w.name {
            Some(n)
                if !n.is_empty() && n.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') =>
            {
                n
            }
            Some(n) => {
                return Err(format!("route {} {}: name {n:?} is not snake_case (a-z, 0-9, _)", w.method, w.path));
            }
            None => default_name(&w.method, &w.path),
        };
        Ok(RouteSpec {
            method: w.method,
            path: w.path,
            summary: w.summary,
            role,
            request_schema: w.request_schema,
            response_schema: w.response_schema,
            name,
            query: w.query,
            statuses: w.statuses,
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
            name: Some(r.name),
            query: r.query,
            statuses: r.statuses,
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
    /// Besides its schedule, run it when one of the plugin's own routes
    /// says so (checked by the scheduler every `[scheduler]
    /// trigger_check_ms`, in every workspace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<JobTrigger>,
}

/// When a job is due besides its schedule: a `GET` route of the plugin
/// whose answer has a boolean `field`; `true` in any workspace runs the job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobTrigger {
    /// The route, as in the plugin's route table (`/learning/status`).
    pub route: String,
    /// The boolean field of its answer (`should_trigger_learning_cycle`).
    pub field: String,
}

impl JobSpec {
    /// A job with its default schedule.
    pub fn new(name: &str, schedule: &str, description: &str) -> Self {
        JobSpec { name: name.into(), schedule: schedule.into(), description: description.into(), trigger: None }
    }

    /// Also runs when `GET route` answers `field: true` (see [`JobTrigger`]).
    pub fn triggered_by(mut self, route: &str, field: &str) -> Self {
        self.trigger = Some(JobTrigger { route: route.into(), field: field.into() });
        self
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
        assert_eq!(parse(base.clone()).unwrap().name, "post_x");
        assert_eq!(parse(base.clone()).unwrap().query, None);
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

    #[test]
    fn default_names_come_from_method_and_path() {
        assert_eq!(default_name("GET", "/models/{model}/performance"), "get_models_by_model_performance");
        assert_eq!(default_name("POST", "/index/sync"), "post_index_sync");
        assert_eq!(default_name("GET", "/success-rates"), "get_success_rates");
        let err = parse(json!({"method": "GET", "path": "/x", "summary": "s", "name": "Bad-Name"})).unwrap_err();
        assert!(err.contains("snake_case"), "{err}");
    }

    #[test]
    fn declared_query_parameters_are_enforced() {
        let r = RouteSpec::get("list", "/things", "s").query(vec![
            QueryParam::integer("limit", "how many", 1, 100),
            QueryParam::number("p", "a probability", 0.0, 1.0),
            QueryParam::boolean("all", "everything"),
            QueryParam::one_of("by", "grouping", &["type", "region"]),
            QueryParam::date_time("since", "from when"),
            QueryParam::string("unit", "a unit id").required(),
        ]);
        let q = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        assert_eq!(r.check_query(&q(&[("unit", "u"), ("workspace", "w"), ("limit", "100")])), Ok(()));
        let e = r.check_query(&q(&[("unit", "u"), ("window_days", "7")])).unwrap_err();
        assert!(e.unknown && e.parameter == "window_days", "{e:?}");
        assert!(e.message.contains("limit, p, all, by, since, unit, workspace"), "{}", e.message);
        for (k, v) in [
            ("limit", "0"),
            ("limit", "x"),
            ("p", "1.5"),
            ("p", "NaN"),
            ("all", "yes"),
            ("by", "zone"),
            ("since", "yesterday"),
            ("unit", ""),
        ] {
            let e = r.check_query(&q(&[("unit", "u"), (k, v)])).unwrap_err();
            assert!(!e.unknown && e.parameter == k, "{k}={v}: {e:?}");
        }
        for (k, v) in [("p", "0.25"), ("all", "1"), ("by", "region"), ("since", "2026-01-31T12:00:00Z")] {
            assert_eq!(r.check_query(&q(&[("unit", "u"), (k, v)])), Ok(()), "{k}={v}");
        }
        let e = r.check_query(&q(&[])).unwrap_err();
        assert!(e.parameter == "unit" && !e.unknown && e.message.contains("required"), "{e:?}");
        // A route from an older manifest declares nothing and is not checked.
        assert_eq!(RouteSpec::new("GET", "/x", "s", false, Value::Null).check_query(&q(&[("any", "1")])), Ok(()));
    }

    #[test]
    fn a_route_round_trips_with_its_name_query_and_statuses() {
        let r = RouteSpec::with_method("POST", Role::Writer, "create", "/things", "s")
            .query(vec![QueryParam::integer("n", "d", 1, 2)])
            .statuses(&[201, 409]);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(serde_json::from_value::<RouteSpec>(v).unwrap(), r);
    }
}
