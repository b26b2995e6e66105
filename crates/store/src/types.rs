//! The values that cross the [`Store`](crate::Store) trait.

use learnloop_core::{Outcome, PluginName, Prediction, Record, RecordId, Timestamp, WorkspaceId};
use serde::Serialize;

use crate::{Rejection, StoreError};

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

/// Order of query results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// The order the store accepted the records in.
    #[default]
    Ingestion,
    /// By event time, ties in ingestion order.
    EventTime,
}

/// Where the next page starts. Opaque to callers; its text form
/// (`Display`/`FromStr`) is what APIs hand out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// Event time (micros) of the last row, for [`Order::EventTime`].
    pub time: i64,
    /// Store sequence of the last row.
    pub seq: i64,
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.time, self.seq)
    }
}

impl std::str::FromStr for Cursor {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, StoreError> {
        let bad = || StoreError::Invalid { field: "cursor".into(), message: format!("{s:?} is not a cursor this store handed out") };
        let (t, q) = s.split_once('.').ok_or_else(bad)?;
        Ok(Cursor { time: t.parse().map_err(|_| bad())?, seq: q.parse().map_err(|_| bad())? })
    }
}

/// Filters for prediction and outcome queries. All filters combine with AND.
#[derive(Debug, Clone, PartialEq)]
pub struct EventQuery {
    /// Only this workspace.
    pub workspace: Option<WorkspaceId>,
    /// Only this plugin.
    pub plugin: Option<PluginName>,
    /// Only this kind (of the prediction).
    pub kind: Option<String>,
    /// Only this subject (of the prediction).
    pub subject: Option<String>,
    /// Outcomes only: only those resolving this prediction.
    pub prediction_id: Option<RecordId>,
    /// Event time at or after this.
    pub from: Option<Timestamp>,
    /// Event time strictly before this.
    pub until: Option<Timestamp>,
    /// Result order.
    pub order: Order,
    /// Continue after this cursor.
    pub after: Option<Cursor>,
    /// Page size (at most [`EventQuery::MAX_LIMIT`]).
    pub limit: usize,
}

impl EventQuery {
    /// The largest page a store returns.
    pub const MAX_LIMIT: usize = 10_000;
}

impl Default for EventQuery {
    fn default() -> Self {
        Self {
            workspace: None,
            plugin: None,
            kind: None,
            subject: None,
            prediction_id: None,
            from: None,
            until: None,
            order: Order::Ingestion,
            after: None,
            limit: 1000,
        }
    }
}

/// One page of results.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The rows.
    pub items: Vec<T>,
    /// Cursor for the next page; `None` when this was the last.
    pub next: Option<Cursor>,
}

/// A stored prediction with the store's metadata. Its `event_time` is always set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredPrediction {
    /// Position in ingestion order.
    pub seq: i64,
    /// When the store accepted it.
    pub ingested_at: Timestamp,
    /// The prediction.
    pub record: Prediction,
}

/// A stored outcome with the store's metadata. Its `event_time` is always set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredOutcome {
    /// Position in ingestion order.
    pub seq: i64,
    /// When the store accepted it.
    pub ingested_at: Timestamp,
    /// Its prediction's subject.
    pub subject: String,
    /// Its prediction's kind.
    pub kind: String,
    /// The outcome.
    pub record: Outcome,
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

/// The compare in compare-and-set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Write whatever is there (last writer wins).
    Any,
    /// Only create: fail if the document exists.
    Absent,
    /// Only if the document is at this version.
    Version(u64),
}

impl std::fmt::Display for Expect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expect::Any => write!(f, "any version"),
            Expect::Absent => write!(f, "no document"),
            Expect::Version(v) => write!(f, "version {v}"),
        }
    }
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
