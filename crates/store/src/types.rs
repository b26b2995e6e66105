//! The values that cross the [`Store`](crate::Store) trait.

use learnloop_core::{
    ImprovementStatus, NewAlert, NewImprovement, NewInsight, PluginName, Record, Timestamp, WorkspaceId,
};
use serde::Serialize;

use crate::{Rejection, StoreError};

pub use learnloop_core::history::{Cursor, Event, EventQuery, Expect, Order, Page, StoredOutcome, StoredPrediction};

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

/// Records of one workspace whose event time falls on one UTC day
/// ([`Store::daily_counts`](crate::Store::daily_counts)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DailyCount {
    /// Midnight UTC starting the day.
    pub day: Timestamp,
    /// Predictions.
    pub predictions: u64,
    /// Outcomes.
    pub outcomes: u64,
}

/// Microseconds in a day.
const DAY_MICROS: i64 = 86_400_000_000;

/// Adds `n` records of `table` (`predictions` or `outcomes`) on the day
/// number `day` (days since 1970-01-01 UTC) to `days`, the one way both
/// backends fold their grouped rows.
pub(crate) fn add_daily(days: &mut std::collections::BTreeMap<i64, DailyCount>, table: usize, day: i64, n: i64) {
    let entry = days.entry(day).or_insert_with(|| DailyCount {
        day: Timestamp::from_micros(day * DAY_MICROS).unwrap_or_else(|| Timestamp::from_micros(0).expect("epoch")),
        predictions: 0,
        outcomes: 0,
    });
    if table == 0 {
        entry.predictions += n as u64;
    } else {
        entry.outcomes += n as u64;
    }
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

/// One change to a plugin state document, part of a [`Changes`] set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateChange {
    /// The document.
    pub key: StateKey,
    /// The new bytes; `None` deletes the document.
    pub value: Option<Vec<u8>>,
    /// What the document's version must be for the change to apply.
    pub expect: Expect,
}

/// Everything a plugin's online update or a job's run produces, committed
/// together by [`Store::commit`](crate::Store::commit): all of it or none of it.
///
/// Items apply in order, state changes first, then insights, alerts and
/// improvements; a later change to the same state key sees (and its `expect`
/// is checked against) the earlier one.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Changes {
    /// State documents to write or delete (a plugin's checkpoint is one of them).
    pub state: Vec<StateChange>,
    /// Insights to add.
    pub insights: Vec<NewInsight>,
    /// Alerts to raise (deduplicated against unacknowledged ones, see [`NewAlert`]).
    pub alerts: Vec<NewAlert>,
    /// Improvements to propose.
    pub improvements: Vec<NewImprovement>,
    /// Notifications to put in the outbox (besides those the store writes by
    /// itself for alerts raised and improvements moved).
    pub notifications: Vec<learnloop_core::NewNotification>,
    /// Lifecycle moves of existing improvements, applied last (so a state
    /// document saying which version is in force and the status saying it
    /// was applied land together).
    pub transitions: Vec<Transition>,
    /// Commit only while this lease is still at this fencing token (a
    /// scheduler's job results): once another process has taken the lease,
    /// the whole commit fails with [`StoreError::Fenced`], so a leader that
    /// was cut off mid-job cannot write over its successor.
    pub fence: Option<Fence>,
}

/// A lease at a fencing token, see [`Changes::fence`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    /// Lease name.
    pub lease: String,
    /// The token the lease had when the work began.
    pub token: i64,
}

impl From<&Lease> for Fence {
    fn from(l: &Lease) -> Self {
        Fence { lease: l.name.clone(), token: l.token }
    }
}

/// Moves one improvement along its lifecycle inside a [`Changes`] set.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// Its workspace.
    pub workspace: WorkspaceId,
    /// Its id.
    pub id: i64,
    /// The status it must have now (compare-and-set: another process that
    /// moved it first wins and this whole change set fails).
    pub from: ImprovementStatus,
    /// The status it moves to; [`ImprovementStatus::can_become`] must allow it.
    pub to: ImprovementStatus,
    /// Replaces the stored backtest result, if given.
    pub backtest: Option<serde_json::Value>,
    /// Recorded in its history with the move.
    pub note: serde_json::Value,
}

impl Changes {
    /// Checks everything that can be checked without the store: state keys
    /// (see [`StateKey::new`]) and the `validate` rules of each insight, alert
    /// and improvement. The error names the item and its field, e.g.
    /// `insights[1].confidence`. Every backend's
    /// [`Store::commit`](crate::Store::commit) calls this first.
    pub fn validate(&self) -> Result<(), StoreError> {
        let invalid = |list: &str, i: usize, e: learnloop_core::ValidationError| StoreError::Invalid {
            field: format!("{list}[{i}].{}", e.field),
            message: e.message,
        };
        for (i, c) in self.state.iter().enumerate() {
            check_state_key(&c.key.key).map_err(|e| match e {
                StoreError::Invalid { message, .. } => {
                    StoreError::Invalid { field: format!("state[{i}].key"), message }
                }
                other => other,
            })?;
        }
        for (i, x) in self.insights.iter().enumerate() {
            x.validate().map_err(|e| invalid("insights", i, e))?;
            // `NewInsight::validate` leaves `detail` free-form; it still must
            // not contain NUL, which PostgreSQL cannot store.
            if x.detail.contains('\0') {
                return Err(invalid(
                    "insights",
                    i,
                    learnloop_core::ValidationError::new("detail", "must not contain NUL"),
                ));
            }
        }
        for (i, x) in self.alerts.iter().enumerate() {
            x.validate().map_err(|e| invalid("alerts", i, e))?;
        }
        for (i, x) in self.improvements.iter().enumerate() {
            x.validate().map_err(|e| invalid("improvements", i, e))?;
        }
        for (i, x) in self.notifications.iter().enumerate() {
            x.validate().map_err(|e| invalid("notifications", i, e))?;
        }
        for (i, t) in self.transitions.iter().enumerate() {
            if !t.from.can_become(t.to) {
                return Err(StoreError::Invalid {
                    field: format!("transitions[{i}].to"),
                    message: format!("an improvement cannot move from {:?} to {:?}", t.from, t.to),
                });
            }
        }
        Ok(())
    }

    /// Whether there is nothing to commit.
    pub fn is_empty(&self) -> bool {
        self.state.is_empty()
            && self.insights.is_empty()
            && self.alerts.is_empty()
            && self.improvements.is_empty()
            && self.transitions.is_empty()
    }
}

/// What a [`Store::commit`](crate::Store::commit) did, each list in the
/// order of the corresponding list of [`Changes`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct CommitReceipt {
    /// The new version of each state document; `None` where it was deleted.
    pub state: Vec<Option<u64>>,
    /// The ids of the inserted insights.
    pub insights: Vec<i64>,
    /// The id of each raised alert: a new one, or the unacknowledged alert it
    /// was deduplicated into.
    pub alerts: Vec<i64>,
    /// The id and the version of each proposed improvement.
    pub improvements: Vec<(i64, u64)>,
}

/// Filters for insights. All filters combine with AND.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InsightQuery {
    /// Only this workspace.
    pub workspace: Option<WorkspaceId>,
    /// Only this plugin.
    pub plugin: Option<PluginName>,
    /// Only this kind.
    pub kind: Option<String>,
    /// Only those created at or after this.
    pub since: Option<Timestamp>,
    /// At most this many (newest first); 0 means 100, at most 10,000.
    pub limit: usize,
}

/// Filters for alerts. All filters combine with AND.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AlertQuery {
    /// Only this workspace.
    pub workspace: Option<WorkspaceId>,
    /// Only this plugin.
    pub plugin: Option<PluginName>,
    /// Only those last raised at or after this.
    pub since: Option<Timestamp>,
    /// Also return acknowledged alerts (by default only open ones).
    pub include_acknowledged: bool,
    /// At most this many (most recently raised first); 0 means 100, at most 10,000.
    pub limit: usize,
}

/// Filters for improvements. All filters combine with AND.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ImprovementQuery {
    /// Only this workspace.
    pub workspace: Option<WorkspaceId>,
    /// Only this plugin.
    pub plugin: Option<PluginName>,
    /// Only this parameter set.
    pub target: Option<String>,
    /// Only improvements in this lifecycle position.
    pub status: Option<ImprovementStatus>,
    /// At most this many (newest first); 0 means 100, at most 10,000.
    pub limit: usize,
}

/// The page size of the insight, alert, improvement and job-run queries:
/// 0 means 100, and no more than 10,000.
pub(crate) fn list_limit(limit: usize) -> usize {
    if limit == 0 { 100 } else { limit.min(10_000) }
}

/// A key to store: only its SHA-256 and a short prefix are kept.
#[derive(Debug, Clone, PartialEq)]
pub struct NewApiKey {
    /// A name for people.
    pub name: String,
    /// The key's first characters.
    pub prefix: String,
    /// SHA-256 of the key.
    pub hash: [u8; 32],
    /// Its workspace (`None` for admin keys).
    pub workspace: Option<learnloop_core::WorkspaceId>,
    /// Its role.
    pub role: learnloop_core::Role,
    /// Creation time.
    pub now: Timestamp,
}

impl NewApiKey {
    /// Checks what every backend checks before storing a key: a name of 1
    /// to 256 bytes, and a workspace exactly when the role is not admin.
    pub fn validate(&self) -> Result<(), StoreError> {
        if self.name.trim().is_empty() || self.name.len() > 256 {
            return Err(StoreError::Invalid { field: "name".into(), message: "must be 1 to 256 bytes".into() });
        }
        if (self.role == learnloop_core::Role::Admin) != self.workspace.is_none() {
            return Err(StoreError::Invalid {
                field: "workspace".into(),
                message: "admin keys cover every workspace; reader and writer keys need exactly one".into(),
            });
        }
        Ok(())
    }
}
