//! The trait a plugin implements.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

use crate::{Context, Event, Manifest, PluginError, Record, Score, ScoreRequest, ValidationError};

/// A learner. One value serves every workspace, concurrently: everything
/// per-workspace lives in state documents reached through the [`Context`].
///
/// Contract with the host:
/// * `configure` is called once, before any other call except `manifest`.
/// * `validate` sees a record before it is stored and must not look anything
///   up: a rejection is a 4xx for the client and nothing is stored.
/// * `on_events` sees stored events in store order, in batches. It must be
///   deterministic given its state and the events: the host may re-run a
///   batch (after losing a state compare-and-set) and `learnloop replay`
///   rebuilds all state from history. Its state writes, insights and alerts
///   land atomically together with the host's checkpoint.
/// * `run_job` writes land atomically when it returns `Ok`; an error or a
///   shutdown leaves nothing half-applied.
pub trait Plugin: Send + Sync + 'static {
    /// The plugin's self-description.
    fn manifest(&self) -> Manifest;

    /// Validates and applies the plugin's config section (a JSON object; null
    /// when the section is absent). Errors name the key.
    fn configure(&mut self, section: &Value) -> Result<(), PluginError> {
        let _ = section;
        Ok(())
    }

    /// Checks a record (its kind and payload) before it is stored.
    fn validate(&self, record: &Record) -> Result<(), ValidationError> {
        let _ = record;
        Ok(())
    }

    /// [`Plugin::validate`] as the host calls it: a refused record is
    /// [`PluginError::Invalid`]; any other error means the plugin could not
    /// look at the record at all (a dynamically loaded plugin that failed),
    /// which the host answers as "unavailable", not as a bad record. Plugins
    /// implement `validate`; only the host's adapter for loaded libraries
    /// overrides this.
    fn try_validate(&self, record: &Record) -> Result<(), PluginError> {
        self.validate(record).map_err(|e| PluginError::invalid(e.field, e.message))
    }

    /// Online update from stored events of the context's workspace.
    fn on_events(&self, ctx: &mut dyn Context, events: &[Event]) -> Result<(), PluginError>;

    /// Runs the job `job` for the context's workspace; returns its report.
    fn run_job(&self, ctx: &mut dyn Context, job: &str) -> Result<Value, PluginError>;

    /// Answers a request to one of the manifest's routes.
    fn handle(&self, ctx: &mut dyn Context, request: &RouteRequest) -> Result<RouteResponse, PluginError>;

    /// Scores a proposed parameter set against a baseline on the outcomes
    /// `request.window` names (see [`crate::improve`]). Read-only: writes
    /// made here are discarded. A plugin that proposes improvements
    /// implements it; the default says it cannot, and the host then holds
    /// proposals for a person to decide.
    fn score(&self, ctx: &mut dyn Context, request: &ScoreRequest) -> Result<Score, PluginError> {
        let _ = (ctx, request);
        Err(PluginError::unavailable("this plugin does not score its proposals"))
    }
}

/// A request to a plugin route, already authenticated and scoped to the
/// context's workspace by the host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteRequest {
    /// The matched route's method.
    pub method: String,
    /// The matched route's path pattern as declared, e.g. `/models/{model}`.
    pub route: String,
    /// Path parameters by name.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// Query-string parameters.
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// The JSON body (null when none).
    #[serde(default)]
    pub body: Value,
}

impl RouteRequest {
    /// A path parameter, or a `NotFound`-free `Invalid` error naming it.
    pub fn param(&self, name: &str) -> Result<&str, PluginError> {
        self.params.get(name).map(String::as_str).ok_or_else(|| PluginError::invalid(name, "is required"))
    }

    /// The JSON body as `T`, or an `Invalid` error naming the field in
    /// plain words (`predicted_savings: expected a number, got an object`;
    /// `body` when the body as a whole is wrong), never in Rust types.
    ///
    /// The body must be a JSON object: a derived `Deserialize` would also
    /// read an array into a struct field by field, in order.
    pub fn body_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, PluginError> {
        if !self.body.is_object() {
            let got = match &self.body {
                Value::Null => "no body",
                Value::Array(_) => "an array",
                Value::String(_) => "a string",
                Value::Number(_) => "a number",
                _ => "a boolean",
            };
            return Err(PluginError::invalid("body", format!("expected a JSON object, got {got}")));
        }
        learnloop_core::plain::from_json_value("", self.body.clone())
            .map_err(|e| PluginError::invalid(if e.field.is_empty() { "body".to_string() } else { e.field }, e.message))
    }
}

/// A plugin's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteResponse {
    /// HTTP status (2xx; errors are returned as [`PluginError`]).
    pub status: u16,
    /// JSON body.
    pub body: Value,
}

impl RouteResponse {
    /// 200 with `body`.
    pub fn ok(body: Value) -> Self {
        Self { status: 200, body }
    }
    /// 201 with `body`.
    pub fn created(body: Value) -> Self {
        Self { status: 201, body }
    }
}
