//! The values that cross the [`Store`](crate::Store) trait.

use learnloop_core::{PluginName, Record, Timestamp, WorkspaceId};
use serde::Serialize;

use crate::{Rejection, StoreError};

pub use learnloop_core::history::{
    Cursor, Event, EventQuery, Expect, Order, Page, StoredOutcome, StoredPrediction,
};

/// What to do with a batch that has rejected records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendMode {
    /// Store nothing if any record is rejected.
    AllOrNothing,
    /// Store the others, report the rejected ones.
    SkipRejected,
}

/// What happened to one record of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ItemStatus {
    /// Newly stored.
    Inserted,
    /// Already stored with the same content; nothing changed.
    Duplicate,
    /// Not stored.
    Rejected(Rejection),
}

/// The per-item result of an append, in input order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AppendReceipt {
    /// One status per input record.
    pub items: Vec<ItemStatus>,
    /// How many were inserted.
    pub inserted: usize,
    /// How many were duplicates.
    pub duplicates: usize,
    /// How many were rejected.
    pub rejected: usize,
}

/// Counts for one (workspace, plugin, kind).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CountRow {
    /// Workspace.
    pub workspace: String,
    /// Plugin.
    pub plugin: String,
    /// Kind.
    pub kind: String,
    /// Predictions.
    pub predictions: u64,
    /// Outcomes.
    pub outcomes: u64,
    /// Predictions with no outcome yet.
    pub pending: u64,
}

/// Address of a plugin state document. Plugins see only their own plugin
/// and the workspace they are called for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StateKey {
    /// Owning plugin.
    pub plugin: PluginName,
    /// Workspace.
    pub workspace: WorkspaceId,
    /// Document key within the plugin and workspace.
    pub key: String,
}

impl StateKey {
    /// Longest document key, in bytes.
    pub const MAX_KEY_LEN: usize = 512;

    /// Builds a key, checking the document key: 1 to 512 bytes, no control
    /// characters and no U+10FFFF (prefix scans use it as their upper bound).
    pub fn new(plugin: PluginName, workspace: WorkspaceId, key: impl Into<String>) -> Result<Self, StoreError> {
        let key = key.into();
        check_state_key(&key)?;
        Ok(Self { plugin, workspace, key })
    }
}

pub(crate) fn check_state_key(key: &str) -> Result<(), StoreError> {
    let bad = |m: &str| Err(StoreError::Invalid { field: "state key".into(), message: format!("{key:?}: {m}") });
    if key.is_empty() || key.len() > StateKey::MAX_KEY_LEN {
        return bad("must be 1 to 512 bytes long");
    }
    if key.chars().any(|c| c.is_control() || c == char::MAX) {
        return bad("must not contain control characters");
    }
    Ok(())
}

impl std::fmt::Display for StateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.plugin, self.workspace, self.key)
    }
}

/// A stored state document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDoc {
    /// The bytes the plugin wrote.
    pub value: Vec<u8>,
    /// Starts at 1, grows by one on every write.
    pub version: u64,
    /// When it was last written.
    pub updated_at: Timestamp,
}

/// The start of a job run.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJobRun {
    /// Plugin.
    pub plugin: PluginName,
    /// Job.
    pub job: String,
    /// Scheduled slot (epoch micros), `None` for a run by hand.
    pub slot: Option<i64>,
    /// Attempt number, from 1.
    pub attempt: u32,
    /// Who runs it.
    pub runner: String,
    /// Start time.
    pub now: Timestamp,
}

/// Filters for job-run history.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobRunQuery {
    /// Only this plugin.
    pub plugin: Option<PluginName>,
    /// Only this job.
    pub job: Option<String>,
    /// Only this slot.
    pub slot: Option<i64>,
    /// At most this many (newest first); 0 means 100.
    pub limit: usize,
}

/// A held lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lease {
    /// Lease name, e.g. `scheduler`.
    pub name: String,
    /// Who holds it.
    pub holder: String,
    /// Fencing token: grows every time the lease changes hands.
    pub token: i64,
    /// When it lapses unless renewed.
    pub expires_at: Timestamp,
}

/// A record with the CPU work of storing it already done: its content hash
/// and the JSON text of its features and payload.
///
/// Preparing is pure computation, so a caller with spare cores (the CLI's
/// reader thread, an HTTP handler) prepares records in parallel and leaves
/// only the database work to the single writer.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    record: Record,
    pub(crate) hash: [u8; 32],
    pub(crate) features: Option<String>,
    pub(crate) payload: Option<String>,
}

impl Prepared {
    /// Prepares a record for [`Store::append_prepared`](crate::Store::append_prepared).
    pub fn new(record: Record) -> Self {
        let hash = record.content_hash().0;
        let json = |v: &serde_json::Value| (!v.is_null()).then(|| v.to_string());
        let (features, payload) = match &record {
            Record::Prediction(p) => (
                (!p.features.is_empty()).then(|| serde_json::to_string(&p.features).expect("maps serialise")),
                json(&p.payload),
            ),
            Record::Outcome(o) => (None, json(&o.payload)),
        };
        Self { record, hash, features, payload }
    }

    /// The record.
    pub fn record(&self) -> &Record {
        &self.record
    }
}
