//! Helpers shared by the backends: status names as stored, and the rules
//! that do not depend on the database (compare-and-set, duplicate or
//! conflict, paging).

use learnloop_core::{ImprovementStatus, NewAlert, NewImprovement, NewInsight, Severity, Timestamp};
use serde_json::Value;

use crate::*;

pub(crate) fn severity_str(s: Severity) -> &'static str {
    match s {
        Severity::Low => "low",
        Severity::Medium => "medium",
        Severity::High => "high",
        Severity::Critical => "critical",
    }
}

pub(crate) fn improvement_status_str(s: ImprovementStatus) -> &'static str {
    s.as_str()
}

pub(crate) fn expect_matches(key: &StateKey, expect: Expect, current: Option<u64>) -> Result<()> {
    let ok = match (expect, current) {
        (Expect::Any, _) => true,
        (Expect::Absent, None) => true,
        (Expect::Version(v), Some(c)) => v == c,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(StoreError::VersionConflict {
            key: key.to_string(),
            expected: expect.to_string(),
            found: current.map_or("no document".into(), |v| format!("version {v}")),
        })
    }
}

// The columns each table is read from, in the order both backends' row
// mappers (`prediction_row`, `outcome_row`, ...) expect them.
pub(crate) const PREDICTION_COLUMNS: &str =
    "seq, workspace, id, plugin, subject, kind, value, label, confidence, features, payload, event_time, ingested_at";
pub(crate) const OUTCOME_COLUMNS: &str = "seq, workspace, id, plugin, prediction_id, subject, kind, value, label, success, quality, feedback, payload, event_time, ingested_at";
pub(crate) const JOB_RUN_COLUMNS: &str =
    "id, plugin, job, slot, attempt, runner, status, started_at, finished_at, report, error";
pub(crate) const INSIGHT_COLUMNS: &str =
    "id, workspace, plugin, kind, title, detail, confidence, impact, data, created_at";
pub(crate) const ALERT_COLUMNS: &str = "id, workspace, plugin, severity, kind, subject, message, dedup_key, data, created_at, last_seen_at, occurrences, acknowledged_at";
pub(crate) const IMPROVEMENT_COLUMNS: &str = "id, workspace, plugin, target, version, status, params, evidence, metric, expected_gain, backtest, created_at, updated_at, history";
pub(crate) const NOTIFICATION_COLUMNS: &str =
    "id, uid, workspace, plugin, event, severity, subject, summary, dedup_key, link, data, occurred_at";
/// A delivery joined with its notification (`d` and `n`).
pub(crate) const DELIVERY_COLUMNS: &str = "d.id, d.destination, d.status, d.attempts, d.next_attempt_at, d.last_error, d.created_at, d.finished_at, \
     n.id, n.uid, n.workspace, n.plugin, n.event, n.severity, n.subject, n.summary, n.dedup_key, n.link, n.data, n.occurred_at";
pub(crate) const API_KEY_COLUMNS: &str = "id, name, prefix, workspace, role, created_at, revoked_at";

/// The select list of a columnar prediction read (`predictions` is the
/// outer table; its first outcome by correlated subqueries on
/// `prediction_seq`, which both backends index). `first_by` orders a
/// prediction's outcomes: SQLite's `prediction_seq` index already yields
/// them in seq order (`o.seq`); PostgreSQL needs `o.seq + 0`, because
/// ordering by the bare primary key lets it walk the whole outcomes primary
/// key looking for this prediction's rows (LIMIT 1 makes that look cheap),
/// once per prediction, where the expression keeps it on the index.
pub(crate) fn column_select(spec: &ColumnSpec, first_by: &str) -> String {
    // Typed NULLs: PostgreSQL decodes an untyped NULL as text.
    let payload = if spec.payload.is_empty() { "CAST(NULL AS TEXT)" } else { "payload" };
    let outcome = |col: &str, ty: &str| {
        if spec.first_outcome {
            format!(
                "(SELECT o.{col} FROM outcomes o WHERE o.prediction_seq = predictions.seq ORDER BY {first_by} LIMIT 1)"
            )
        } else {
            format!("CAST(NULL AS {ty})")
        }
    };
    format!(
        "seq, event_time, kind, value, label, features, {payload}, {}, {}",
        outcome("value", "DOUBLE PRECISION"),
        outcome("label", "TEXT")
    )
}

/// Whether a fenced commit may go ahead: its lease is still at its token.
pub(crate) fn check_fence(f: &Fence, current: Option<i64>) -> Result<()> {
    match current {
        Some(t) if t == f.token => Ok(()),
        other => Err(StoreError::Fenced {
            lease: f.lease.clone(),
            token: f.token,
            current: other.map_or_else(|| "none".to_string(), |t| t.to_string()),
        }),
    }
}

/// Checks `fence` (if any) inside `w`'s write transaction: the one fence
/// check of change sets and of the deliverer's writes.
pub(crate) fn check_fence_in(w: &mut impl ChangeWriter, fence: Option<&Fence>) -> Result<()> {
    match fence {
        Some(f) => {
            let current = w.lease_token(&f.lease)?;
            check_fence(f, current)
        }
        None => Ok(()),
    }
}

/// The lower event-time bound (µs) of a query. Paging by event time, the
/// cursor's time is one too, and the one an index can seek to: with only
/// `from` the database seeks there and filters out every earlier page's rows
/// again on each page (quadratic in the window). The cursor comparison
/// still decides ties.
pub(crate) fn effective_from(q: &EventQuery) -> Option<i64> {
    let from = q.from.map(|t| t.as_micros());
    match (q.order, q.after) {
        (Order::EventTime, Some(c)) => Some(from.map_or(c.time, |f| f.max(c.time))),
        _ => from,
    }
}

pub(crate) fn paginate<T>(mut items: Vec<T>, limit: usize, cursor: impl Fn(&T) -> Cursor) -> Page<T> {
    let limit = limit.clamp(1, EventQuery::MAX_LIMIT);
    if items.len() > limit {
        items.truncate(limit);
        let next = items.last().map(&cursor);
        Page { items, next }
    } else {
        Page { items, next: None }
    }
}

pub(crate) fn history_entry(status: ImprovementStatus, at: Timestamp, note: &Value) -> Value {
    serde_json::json!({ "status": improvement_status_str(status), "at": at, "note": note })
}

/// Whether improvement `id`, now at `current`, may move to `to`: it must be
/// at `from` when that is given (else a [`StoreError::VersionConflict`]:
/// someone else moved it first), and the lifecycle must allow the move.
pub(crate) fn check_transition(
    id: i64,
    current: ImprovementStatus,
    from: Option<ImprovementStatus>,
    to: ImprovementStatus,
) -> Result<()> {
    if let Some(from) = from
        && current != from
    {
        return Err(StoreError::VersionConflict {
            key: format!("improvement {id}"),
            expected: format!("status {}", improvement_status_str(from)),
            found: format!("status {}", improvement_status_str(current)),
        });
    }
    if !current.can_become(to) {
        return Err(StoreError::Invalid {
            field: "status".into(),
            message: format!(
                "improvement {id} cannot move from {} to {}",
                improvement_status_str(current),
                improvement_status_str(to)
            ),
        });
    }
    Ok(())
}

/// Compares an existing record with a resubmission of the same id.
pub(crate) fn duplicate_or_conflict(
    existing: Option<(Vec<u8>, i64)>,
    hash: &[u8; 32],
    event_time: Option<Timestamp>,
) -> Result<ItemStatus> {
    let (stored_hash, stored_time) =
        existing.ok_or_else(|| StoreError::Backend("row vanished during append".into()))?;
    if stored_hash.as_slice() != hash {
        return Ok(ItemStatus::Rejected(Rejection::Conflict { differs: "content" }));
    }
    if event_time.is_some_and(|t| t.as_micros() != stored_time) {
        return Ok(ItemStatus::Rejected(Rejection::Conflict { differs: "event_time" }));
    }
    Ok(ItemStatus::Duplicate)
}

/// The severity stored as `s`.
pub(crate) fn severity_from_str(s: &str) -> Option<Severity> {
    Some(match s {
        "low" => Severity::Low,
        "medium" => Severity::Medium,
        "high" => Severity::High,
        "critical" => Severity::Critical,
        _ => return None,
    })
}

/// Merges the first `limit` predictions and the first `limit` outcomes after
/// some seq (each in seq order) into the first `limit` events of both.
pub(crate) fn merge_events(
    predictions: Vec<StoredPrediction>,
    outcomes: Vec<StoredOutcome>,
    limit: usize,
) -> Vec<Event> {
    let mut out = Vec::with_capacity(limit.min(predictions.len() + outcomes.len()));
    let mut ps = predictions.into_iter().peekable();
    let mut os = outcomes.into_iter().peekable();
    while out.len() < limit {
        let take_prediction = match (ps.peek(), os.peek()) {
            (Some(p), Some(o)) => p.seq < o.seq,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        out.push(if take_prediction {
            Event::Prediction(ps.next().expect("peeked"))
        } else {
            Event::Outcome(os.next().expect("peeked"))
        });
    }
    out
}

/// One improvement move: to `to`, if it is at `from` (any status when
/// `None`) and the lifecycle allows it; `backtest` replaces the stored one
/// when given, `note` goes into its history with the move.
pub(crate) struct Move<'a> {
    pub workspace: &'a WorkspaceId,
    pub id: i64,
    pub from: Option<ImprovementStatus>,
    pub to: ImprovementStatus,
    pub backtest: Option<&'a Value>,
    pub note: &'a Value,
}

/// The writes a [`Changes`] set is made of, inside one backend's write
/// transaction. Each backend keeps its own SQL (SQLite reads then writes
/// under its single-writer lock; PostgreSQL uses conditional statements and
/// row locks so many nodes can share one database); [`commit_changes`] is
/// the one order they are applied in.
pub(crate) trait ChangeWriter {
    /// The current token of lease `name`, read so that no take-over can
    /// commit before this transaction does.
    fn lease_token(&mut self, lease: &str) -> Result<Option<i64>>;
    /// Writes (`Some`) or deletes (`None`) one state document if `expect`
    /// holds; the new version, `None` after a delete.
    fn apply_state(
        &mut self,
        key: &StateKey,
        value: Option<&[u8]>,
        expect: Expect,
        now: Timestamp,
    ) -> Result<Option<u64>>;
    /// Inserts an insight; its id.
    fn insert_insight(&mut self, insight: &NewInsight, now: Timestamp) -> Result<i64>;
    /// Inserts an alert or folds it into the open one with its dedup key;
    /// its id and whether it was inserted.
    fn raise_alert(&mut self, alert: &NewAlert, now: Timestamp) -> Result<(i64, bool)>;
    /// Puts a notification in the outbox; its id.
    fn insert_notification(&mut self, n: &learnloop_core::NewNotification, now: Timestamp) -> Result<i64>;
    /// Inserts a proposal as the next version of its target; its id and version.
    fn propose_improvement(&mut self, improvement: &NewImprovement, now: Timestamp) -> Result<(i64, u64)>;
    /// Moves an improvement (see [`Move`]); the improvement after the move.
    fn move_improvement(&mut self, m: &Move<'_>, now: Timestamp) -> Result<Improvement>;
}

/// Applies a validated change set in its one order: the fence first (so
/// nothing of a superseded lease holder lands), then state, insights,
/// alerts, proposals and transitions. The caller commits the transaction.
pub(crate) fn commit_changes(w: &mut impl ChangeWriter, changes: &Changes, now: Timestamp) -> Result<CommitReceipt> {
    check_fence_in(w, changes.fence.as_ref())?;
    let mut receipt = CommitReceipt {
        state: Vec::with_capacity(changes.state.len()),
        insights: Vec::with_capacity(changes.insights.len()),
        alerts: Vec::with_capacity(changes.alerts.len()),
        improvements: Vec::with_capacity(changes.improvements.len()),
    };
    for c in &changes.state {
        receipt.state.push(w.apply_state(&c.key, c.value.as_deref(), c.expect, now)?);
    }
    for i in &changes.insights {
        receipt.insights.push(w.insert_insight(i, now)?);
    }
    for a in &changes.alerts {
        let (id, inserted) = w.raise_alert(a, now)?;
        if inserted {
            w.insert_notification(&crate::outbox::alert_raised(a, id), now)?;
        }
        receipt.alerts.push(id);
    }
    for i in &changes.improvements {
        let (id, version) = w.propose_improvement(i, now)?;
        w.insert_notification(&crate::outbox::improvement_proposed(i, id, version), now)?;
        receipt.improvements.push((id, version));
    }
    for t in &changes.transitions {
        let m = Move {
            workspace: &t.workspace,
            id: t.id,
            from: Some(t.from),
            to: t.to,
            backtest: t.backtest.as_ref(),
            note: &t.note,
        };
        let moved = w.move_improvement(&m, now)?;
        w.insert_notification(&crate::outbox::improvement_moved(&moved), now)?;
    }
    for n in &changes.notifications {
        w.insert_notification(n, now)?;
    }
    Ok(receipt)
}

/// The columns a delivery attempt's result sets: status, next attempt,
/// error (kept from before when `None`), finish time.
pub(crate) fn delivery_update(
    result: &DeliveryResult,
    now: Timestamp,
) -> (&'static str, Option<i64>, Option<String>, Option<i64>) {
    match result {
        DeliveryResult::Delivered => ("delivered", None, None, Some(now.as_micros())),
        DeliveryResult::Retry { at, error } => ("pending", Some(at.as_micros()), Some(error.clone()), None),
        DeliveryResult::Dead { error } => ("dead", None, Some(error.clone()), Some(now.as_micros())),
    }
}
