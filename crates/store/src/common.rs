//! Helpers shared by the backends: status names as stored, and the rules
//! that do not depend on the database (compare-and-set, duplicate or
//! conflict, paging).

use learnloop_core::{ImprovementStatus, Severity, Timestamp};
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
