//! Per-subject online counters: a small, real learner that plugin skeletons
//! use until their domain learner lands, and a worked example of the
//! `on_events` contract (deterministic, state in documents, idempotent under
//! replay because the host feeds each event once per checkpoint).
//!
//! State: one document per subject, `summary/<subject>`, holding counts of
//! predictions and outcomes, successes and failures, and the sum of outcome
//! values, per kind.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{Context, Event, Expect, InsightDraft, PluginError, RouteResponse};

/// Counters for one kind of one subject.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    /// Predictions seen.
    pub predictions: u64,
    /// Outcomes seen.
    pub outcomes: u64,
    /// Outcomes with `success = true`.
    pub successes: u64,
    /// Outcomes with `success = false`.
    pub failures: u64,
    /// Sum of outcome values.
    pub value_sum: f64,
    /// Outcomes that had a value.
    pub values: u64,
}

/// Absorbs a batch of events into the per-subject documents.
pub fn absorb(ctx: &mut dyn Context, events: &[Event]) -> Result<(), PluginError> {
    // Group first, so each subject's document is read and written once per batch.
    let mut by_subject: BTreeMap<String, Vec<&Event>> = BTreeMap::new();
    for e in events {
        let subject = match e {
            Event::Prediction(p) => &p.record.subject,
            Event::Outcome(o) => &o.subject,
        };
        by_subject.entry(subject.clone()).or_default().push(e);
    }
    for (subject, events) in by_subject {
        let key = format!("summary/{subject}");
        let current = ctx.get_state(&key)?;
        let (mut kinds, expect): (BTreeMap<String, Counts>, Expect) = match current {
            Some(s) => (serde_json::from_value(s.value)?, Expect::Version(s.version)),
            None => (BTreeMap::new(), Expect::Absent),
        };
        for e in events {
            match e {
                Event::Prediction(p) => kinds.entry(p.record.kind.clone()).or_default().predictions += 1,
                Event::Outcome(o) => {
                    let c = kinds.entry(o.kind.clone()).or_default();
                    c.outcomes += 1;
                    match o.record.success {
                        Some(true) => c.successes += 1,
                        Some(false) => c.failures += 1,
                        None => {}
                    }
                    if let Some(v) = o.record.value {
                        c.value_sum += v;
                        c.values += 1;
                    }
                }
            }
        }
        ctx.put_state(&key, serde_json::to_value(&kinds)?, expect)?;
    }
    Ok(())
}

/// Every subject's counters: the body of a `GET /summary` route.
pub fn route(ctx: &mut dyn Context) -> Result<RouteResponse, PluginError> {
    let mut subjects = serde_json::Map::new();
    let mut after: Option<String> = None;
    loop {
        let page = ctx.scan_state("summary/", after.as_deref(), 1000)?;
        let Some((last, _)) = page.last() else { break };
        after = Some(last.clone());
        for (k, s) in page {
            subjects.insert(k.trim_start_matches("summary/").to_string(), s.value);
        }
    }
    Ok(RouteResponse::ok(json!({ "workspace": ctx.workspace(), "subjects": subjects })))
}

/// A report job: totals over all subjects, recorded as an insight.
pub fn report(ctx: &mut dyn Context, plugin: &str) -> Result<Value, PluginError> {
    let body = route(ctx)?.body;
    let mut total = Counts::default();
    let subjects = body["subjects"].as_object().cloned().unwrap_or_default();
    for kinds in subjects.values() {
        let kinds: BTreeMap<String, Counts> = serde_json::from_value(kinds.clone())?;
        for c in kinds.values() {
            total.predictions += c.predictions;
            total.outcomes += c.outcomes;
            total.successes += c.successes;
            total.failures += c.failures;
            total.value_sum += c.value_sum;
            total.values += c.values;
        }
    }
    let judged = total.successes + total.failures;
    let success_rate = (judged > 0).then(|| total.successes as f64 / judged as f64);
    ctx.emit_insight(InsightDraft {
        kind: "summary".into(),
        title: format!(
            "{plugin}: {} subjects, {} predictions, {} outcomes",
            subjects.len(),
            total.predictions,
            total.outcomes
        ),
        detail: success_rate.map_or_else(String::new, |r| format!("success rate {:.1}%", r * 100.0)),
        confidence: 1.0,
        impact: 0.0,
        data: json!({ "totals": total, "success_rate": success_rate }),
    })?;
    Ok(json!({ "subjects": subjects.len(), "totals": total, "success_rate": success_rate }))
}
