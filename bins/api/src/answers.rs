//! The bodies the API's own routes take and answer, as Rust types: the
//! handlers build them and the OpenAPI document's schemas are made from
//! them ([`crate::contract`]), so the two cannot disagree.

use learnloop_core::{Alert, Improvement, Insight, JobRun};
use learnloop_plugin_api::improve::Applied;
use learnloop_scheduler::JobInfo;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `GET /health`.
#[derive(Serialize, JsonSchema)]
pub struct Health {
    /// Always `ok`: the process answers.
    pub status: String,
}

/// `GET /ready` (200 when ready, 503 otherwise).
#[derive(Serialize, JsonSchema)]
pub struct Readiness {
    /// `ready`, `not ready`, or `shutting down` (SIGTERM received: finishing
    /// what it has, taking nothing new).
    pub status: String,
    /// `ok`, `unavailable` (it does not answer) or `out of space` (reads
    /// work, writes are refused with 507 until space is freed).
    pub store: String,
    /// Why the store refuses writes, when it does.
    pub store_problem: Option<String>,
    /// The plugins that loaded.
    pub plugins: Vec<String>,
    /// Why an enabled plugin did not load.
    pub plugin_load_errors: Vec<String>,
}

/// What became of one record sent alone: 201 `inserted`, 200 `duplicate`
/// (the same id with the same content was stored before).
#[derive(Serialize, JsonSchema)]
pub struct Stored {
    /// The record's id.
    pub id: String,
    /// `inserted` or `duplicate`.
    pub status: ItemStatus,
}

/// What became of one record.
#[derive(Serialize, JsonSchema, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ItemStatus {
    /// Stored now.
    Inserted,
    /// Stored before with the same content: nothing changed.
    Duplicate,
    /// Not stored: `field` and `message` say why.
    Rejected,
}

/// One item of a batch.
#[derive(Serialize, JsonSchema)]
pub struct ItemResult {
    /// Its position in the batch (from 0).
    pub index: usize,
    /// Its id, when it had one.
    pub id: Option<String>,
    /// What became of it.
    pub status: ItemStatus,
    /// The field at fault (rejected only; empty when the record as a whole).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Why it was rejected (rejected only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The answer to a batch (a JSON array): every valid record is stored in one
/// durable transaction.
#[derive(Serialize, JsonSchema)]
pub struct Batch {
    /// Records stored now.
    pub inserted: u64,
    /// Records stored before with the same content.
    pub duplicates: u64,
    /// Records not stored.
    pub rejected: u64,
    /// Each item's result, in the batch's order.
    pub results: Vec<ItemResult>,
}

/// `GET /api/v1/insights`.
#[derive(Serialize, JsonSchema)]
pub struct Insights {
    /// Newest first.
    pub insights: Vec<Insight>,
}

/// `GET /api/v1/alerts`.
#[derive(Serialize, JsonSchema)]
pub struct Alerts {
    /// Newest first.
    pub alerts: Vec<Alert>,
}

/// `GET /api/v1/improvements`.
#[derive(Serialize, JsonSchema)]
pub struct Improvements {
    /// Newest first.
    pub improvements: Vec<Improvement>,
}

/// A parameter set in force, with its plugin.
#[derive(Serialize, JsonSchema)]
pub struct AppliedEntry {
    /// The plugin whose parameters these are.
    pub plugin: String,
    /// The version in force.
    #[serde(flatten)]
    pub applied: Applied,
}

/// `GET /api/v1/improvements/applied`.
#[derive(Serialize, JsonSchema)]
pub struct AppliedList {
    /// Every parameter set that was ever applied, with its version in force.
    pub applied: Vec<AppliedEntry>,
}

/// `POST /api/v1/improvements/rollback`.
#[derive(Serialize, JsonSchema)]
pub struct InForce {
    /// What is in force after the rollback.
    pub in_force: Applied,
}

/// `GET /api/v1/jobs`.
#[derive(Serialize, JsonSchema)]
pub struct Jobs {
    /// Every job of every loaded plugin, with its effective schedule.
    pub jobs: Vec<JobInfo>,
}

/// `GET /api/v1/jobs/runs`.
#[derive(Serialize, JsonSchema)]
pub struct JobRuns {
    /// Newest first.
    pub runs: Vec<JobRun>,
}

/// The body of `POST /api/v1/improvements/{id}/reject` (may be empty).
#[derive(Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RejectBody {
    /// Why, for the improvement's history.
    #[serde(default)]
    pub reason: Option<String>,
}

/// The body of `POST /api/v1/improvements/rollback`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackBody {
    /// The plugin whose parameter set to restore.
    pub plugin: String,
    /// The parameter set.
    pub target: String,
    /// The version to restore (default: the one before the current; 0: the
    /// plugin's built-in defaults).
    #[serde(default)]
    pub to_version: Option<u64>,
    /// Why, for the history.
    #[serde(default)]
    pub reason: Option<String>,
}

/// `GET /api/v1/keys`.
#[derive(Serialize, JsonSchema)]
pub struct Keys {
    /// Every key, revoked ones too (never the key itself).
    pub keys: Vec<learnloop_core::ApiKey>,
}

/// The body of `POST /api/v1/keys`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyBody {
    /// A name for people ("ingest from billing"), 1 to 256 bytes.
    pub name: String,
    /// `reader`, `writer` or `admin`.
    pub role: learnloop_core::Role,
    /// The workspace of a reader or writer key; none for an admin key.
    #[serde(default)]
    pub workspace: Option<String>,
}

/// `POST /api/v1/keys` (201): the key itself, shown only in this answer.
#[derive(Serialize, JsonSchema)]
pub struct CreatedKey {
    /// The key: send it as `Authorization: Bearer <key>`. Only its hash is
    /// stored; it cannot be shown again.
    pub key: String,
    /// What is stored about it.
    #[serde(flatten)]
    pub info: learnloop_core::ApiKey,
}

/// `GET /api/v1/notifications`: deliveries, newest first.
#[derive(Serialize, JsonSchema)]
pub struct Notifications {
    /// One per (notification, destination).
    pub deliveries: Vec<learnloop_core::Delivery>,
    /// Notifications not yet routed to destinations (the deliverer runs in
    /// `learnloop-scheduler`, or `learnloop notifications deliver`).
    pub unrouted: u64,
    /// The configured destinations.
    pub destinations: Vec<String>,
}

/// `POST /api/v1/notifications/test`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestNotificationBody {
    /// A destination's name from `[[notify.destinations]]`.
    pub destination: String,
}

/// What a test notification came to.
#[derive(Serialize, JsonSchema)]
pub struct TestNotificationResult {
    /// The destination.
    pub destination: String,
    /// Whether it accepted the test event.
    pub delivered: bool,
    /// Its HTTP status (absent for a file, or when no answer came).
    pub status: Option<u16>,
    /// What went wrong, when it did.
    pub error: Option<String>,
    /// The event sent (never stored).
    pub notification: learnloop_core::Notification,
}

/// `POST /api/v1/alerts`: a custom alert, delivered like any other.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAlertBody {
    /// How bad: `low`, `medium`, `high` or `critical`.
    pub severity: learnloop_core::Severity,
    /// A stable machine-readable category, e.g. `latency_budget`.
    pub kind: String,
    /// What it is about (a model, a service).
    pub subject: String,
    /// One paragraph for people.
    pub message: String,
    /// Alerts with the same key are one alert until acknowledged (default: `kind/subject`).
    #[serde(default)]
    pub dedup_key: Option<String>,
    /// The plugin it concerns (default `custom`); destinations filter on it.
    #[serde(default)]
    pub plugin: Option<String>,
    /// Supporting numbers.
    #[serde(default)]
    pub data: Option<serde_json::Value>,
}
