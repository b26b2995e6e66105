//! What the host lends a plugin for one call.
//!
//! A context is bound to one plugin and one workspace: every read and write
//! it offers is scoped to them by the host, so a plugin cannot see another
//! plugin's state or another workspace's data even by mistake. Writes
//! (state, insights, alerts, improvement proposals) are buffered and land
//! atomically when the call succeeds; reads see the call's own writes.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    ColumnSpec, EventQuery, Expect, Page, PluginError, PredictionColumns, Severity, StoredOutcome, StoredPrediction,
    Timestamp, WorkspaceId,
};

/// A state document as a plugin sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// The JSON the plugin wrote.
    pub value: Value,
    /// Version for compare-and-set; starts at 1.
    pub version: u64,
}

/// A state document as stored: its JSON text, for plugins that decode
/// straight into their own types (see [`Context::scan_state_raw`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawState {
    /// The JSON the plugin wrote, as text.
    pub json: String,
    /// Version for compare-and-set; starts at 1.
    pub version: u64,
}

/// An insight to record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InsightDraft {
    /// A stable machine-readable category.
    pub kind: String,
    /// One line for people.
    pub title: String,
    /// The longer explanation.
    #[serde(default)]
    pub detail: String,
    /// How sure, in `[0, 1]`.
    pub confidence: f64,
    /// Expected effect on the plugin's target metric.
    #[serde(default)]
    pub impact: f64,
    /// Supporting numbers.
    #[serde(default)]
    pub data: Value,
}

/// An alert to raise (deduplicated by `dedup_key` until acknowledged).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertDraft {
    /// How bad.
    pub severity: Severity,
    /// A stable machine-readable category.
    pub kind: String,
    /// What it is about.
    pub subject: String,
    /// One paragraph for people.
    pub message: String,
    /// Deduplication key.
    pub dedup_key: String,
    /// Supporting numbers.
    #[serde(default)]
    pub data: Value,
}

/// An event to notify the configured destinations of (webhooks, Slack,
/// PagerDuty), written to the outbox with the rest of the call's writes:
/// it is delivered exactly when they commit. The workspace and plugin are
/// the context's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationDraft {
    /// The event type, one of `learnloop_core::notify::EVENT_TYPES`
    /// (`retrain.requested`, `experiment.concluded`, ...).
    pub event: String,
    /// How bad.
    pub severity: Severity,
    /// What it is about (a model id, an agent id).
    pub subject: String,
    /// One line for people.
    pub summary: String,
    /// A key stable for the thing it is about (receivers deduplicate on it).
    pub dedup_key: String,
    /// The route that shows it (`/api/v1/<plugin>/...`).
    pub link: String,
    /// The evidence.
    #[serde(default)]
    pub data: Value,
}

/// A proposed change to what the plugin serves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImprovementDraft {
    /// Which parameter set, e.g. `calibration`.
    pub target: String,
    /// The new parameters.
    pub params: Value,
    /// Why.
    #[serde(default)]
    pub evidence: Value,
    /// The metric it should move.
    pub metric: String,
    /// Expected change of that metric.
    pub expected_gain: f64,
}

/// A point for the vector index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VectorPoint {
    /// Id, unique in the collection.
    pub id: String,
    /// The vector.
    pub vector: Vec<f32>,
    /// Filterable payload.
    #[serde(default)]
    pub payload: Value,
}

/// A similarity search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VectorQuery {
    /// The query vector.
    pub vector: Vec<f32>,
    /// How many hits.
    pub limit: usize,
    /// Exact-match filter on payload fields (`{"region": "eu-west-1"}`).
    #[serde(default)]
    pub filter: Value,
}

/// One search hit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VectorHit {
    /// Point id.
    pub id: String,
    /// Similarity (higher is closer).
    pub score: f32,
    /// The point's payload.
    pub payload: Value,
}

/// A generation request to the local LLM.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlmRequest {
    /// System prompt.
    #[serde(default)]
    pub system: String,
    /// User prompt.
    pub prompt: String,
    /// Ask for a JSON answer.
    #[serde(default)]
    pub json: bool,
}

/// Log levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Diagnostics.
    Debug,
    /// Normal operation.
    Info,
    /// Something to look at.
    Warn,
    /// Something failed.
    Error,
}

/// The host's services for one call, scoped to one plugin and one workspace.
pub trait Context {
    /// The workspace this call is for.
    fn workspace(&self) -> &WorkspaceId;

    /// The time the host considers "now" for this call.
    fn now(&self) -> Timestamp;

    /// A page of this plugin's predictions in this workspace (the query's
    /// `workspace` and `plugin` are overridden by the host).
    fn predictions(&mut self, query: &EventQuery) -> Result<Page<StoredPrediction>, PluginError>;

    /// A page of this plugin's outcomes in this workspace.
    fn outcomes(&mut self, query: &EventQuery) -> Result<Page<StoredOutcome>, PluginError>;

    /// A page of this plugin's predictions in this workspace as columns
    /// (up to [`ColumnSpec::MAX_ROWS`] rows), with the payload fields and
    /// first outcomes `spec` asks for: the read path for jobs that scan
    /// millions of rows. Same rows, order and cursors as `predictions`.
    fn prediction_columns(&mut self, query: &EventQuery, spec: &ColumnSpec) -> Result<PredictionColumns, PluginError>;

    /// Reads a state document.
    fn get_state(&mut self, key: &str) -> Result<Option<State>, PluginError>;

    /// Several state documents, in `keys`' order: read a batch's documents
    /// with this rather than one `get_state` per event (on a networked
    /// store each read is a round trip).
    fn get_states(&mut self, keys: &[String]) -> Result<Vec<Option<State>>, PluginError> {
        keys.iter().map(|k| self.get_state(k)).collect()
    }

    /// Writes a state document if `expect` holds; returns the new version.
    fn put_state(&mut self, key: &str, value: Value, expect: Expect) -> Result<u64, PluginError>;

    /// Deletes a state document if `expect` holds.
    fn delete_state(&mut self, key: &str, expect: Expect) -> Result<(), PluginError>;

    /// State documents whose key starts with `prefix`, in key order, after `after`.
    fn scan_state(
        &mut self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, State)>, PluginError>;

    /// [`Context::scan_state`] with each document as JSON text: a plugin
    /// scanning many documents decodes them straight into its own types,
    /// skipping a JSON tree per document.
    fn scan_state_raw(
        &mut self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, RawState)>, PluginError> {
        Ok(self
            .scan_state(prefix, after, limit)?
            .into_iter()
            .map(|(k, s)| (k, RawState { json: s.value.to_string(), version: s.version }))
            .collect())
    }

    /// Records an insight.
    fn emit_insight(&mut self, insight: InsightDraft) -> Result<(), PluginError>;

    /// Raises an alert.
    fn emit_alert(&mut self, alert: AlertDraft) -> Result<(), PluginError>;

    /// Proposes an improvement to the host's improvement lifecycle.
    fn propose_improvement(&mut self, improvement: ImprovementDraft) -> Result<(), PluginError>;

    /// Notifies the configured destinations of an event (see
    /// [`NotificationDraft`]); it goes to the outbox in the same commit as
    /// the call's other writes. A host too old to deliver notifications
    /// answers `Unavailable`.
    fn emit_notification(&mut self, notification: NotificationDraft) -> Result<(), PluginError> {
        let _ = notification;
        Err(PluginError::unavailable("this host does not deliver notifications"))
    }

    /// Inserts or replaces points in a collection of this plugin.
    fn upsert_vectors(&mut self, collection: &str, points: Vec<VectorPoint>) -> Result<(), PluginError>;

    /// Searches a collection of this plugin.
    fn search_vectors(&mut self, collection: &str, query: &VectorQuery) -> Result<Vec<VectorHit>, PluginError>;

    /// Embeds texts with the configured embedder.
    fn embed(&mut self, texts: &[String]) -> Result<Vec<Vec<f32>>, PluginError>;

    /// Asks the local LLM; `Ok(None)` when none is configured or reachable,
    /// so callers fall back to their deterministic path.
    fn llm_generate(&mut self, request: &LlmRequest) -> Result<Option<String>, PluginError>;

    /// Logs a line under the plugin's name.
    fn log(&mut self, level: LogLevel, message: &str);
}
