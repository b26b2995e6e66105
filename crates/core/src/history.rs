//! History as plugins, jobs and clients read it: stored records with their
//! store metadata, queries, pages and cursors.
//!
//! These types live in `core` rather than in the store so that a plugin can
//! be built against `learnloop-plugin-api` alone, without any database code.

use serde::{Deserialize, Serialize};

use crate::{Outcome, PluginName, Prediction, RecordId, Timestamp, ValidationError, WorkspaceId};

/// Order of query results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    /// The order the store accepted the records in.
    #[default]
    Ingestion,
    /// By event time, ties in ingestion order.
    EventTime,
}

/// Where the next page starts. Opaque to callers; its text form
/// (`Display`/`FromStr`) is what APIs hand out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, ValidationError> {
        let bad = || ValidationError::new("cursor", format!("{s:?} is not a cursor this store handed out"));
        let (t, q) = s.split_once('.').ok_or_else(bad)?;
        Ok(Cursor { time: t.parse().map_err(|_| bad())?, seq: q.parse().map_err(|_| bad())? })
    }
}

/// Filters for prediction and outcome queries. All filters combine with AND.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EventQuery {
    /// Only this workspace.
    pub workspace: Option<WorkspaceId>,
    /// Only this plugin.
    pub plugin: Option<PluginName>,
    /// Only this kind (of the prediction).
    pub kind: Option<String>,
    /// Only this subject (of the prediction).
    pub subject: Option<String>,
    /// Only the record with this id (ids are unique per workspace and type).
    pub id: Option<RecordId>,
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
            id: None,
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The rows.
    pub items: Vec<T>,
    /// Cursor for the next page; `None` when this was the last.
    pub next: Option<Cursor>,
}

/// A stored prediction with the store's metadata. Its `event_time` is always set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredPrediction {
    /// Position in ingestion order.
    pub seq: i64,
    /// When the store accepted it.
    pub ingested_at: Timestamp,
    /// The prediction.
    pub record: Prediction,
}

/// A stored outcome with the store's metadata. Its `event_time` is always set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

/// The compare in compare-and-set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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

/// One stored record, as the online update of a plugin sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Event {
    /// A stored prediction.
    Prediction(StoredPrediction),
    /// A stored outcome.
    Outcome(StoredOutcome),
}

impl Event {
    /// The store sequence number: predictions and outcomes share one sequence,
    /// so events sort in the order the store accepted them.
    pub fn seq(&self) -> i64 {
        match self {
            Event::Prediction(p) => p.seq,
            Event::Outcome(o) => o.seq,
        }
    }

    /// The event's workspace.
    pub fn workspace(&self) -> &WorkspaceId {
        match self {
            Event::Prediction(p) => &p.record.workspace,
            Event::Outcome(o) => &o.record.workspace,
        }
    }
}
