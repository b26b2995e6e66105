//! The cost plugin's part of the knowledge store: which points it keeps in
//! the vector index, how it keeps them in step with the store of record,
//! and similar-case search.
//!
//! Collections (per workspace, as in the seed):
//! * `recommendation_outcomes` — one point per recommendation with an
//!   outcome (id = recommendation id), payload `recommendation_type`,
//!   `resource_type`, `region`, `risk_level`, `success`, savings;
//! * `execution_history` — one point per outcome record (id = outcome id);
//! * `learning_insights` — the insights of the latest learning cycles;
//! * `index_state` — one marker point holding how far the index has
//!   caught up (the sequence number of the last outcome indexed).
//!
//! The marker lives *in the index*, so an index that is lost, cleared by
//! `learnloop reindex` or rebuilt for a new embedder has no marker and is
//! refilled from the first outcome. Upserts are idempotent (by id), so a
//! sync interrupted half-way repeats some points and loses none.

use learnloop_plugin_api::core::history::Cursor;
use learnloop_plugin_api::{Context, EventQuery, Order, PluginError, VectorHit, VectorPoint, VectorQuery};
use serde_json::{Map, Value, json};

use crate::answers::{CaseContext, CaseOutcome, SimilarCase};
use crate::record::Rec;

/// Recommendations with outcomes.
pub const CASES: &str = "recommendation_outcomes";
/// Execution records.
pub const EXECUTIONS: &str = "execution_history";
/// Learning insights.
pub const INSIGHTS: &str = "learning_insights";
/// The sync marker.
pub const MARKER: &str = "index_state";
const MARKER_ID: &str = "sync-marker";
const MARKER_TEXT: &str = "learnloop index sync marker";

/// What a sync did (`POST /index/sync`).
#[derive(Debug, Clone, Default, serde::Serialize, schemars::JsonSchema)]
pub struct SyncReport {
    /// Outcome sequence the index had reached before.
    pub from_seq: i64,
    /// And now.
    pub to_seq: i64,
    /// Outcome records read.
    pub outcomes: u64,
    /// Case points written.
    pub cases: u64,
    /// Insight points written.
    pub insights: u64,
    /// True when it stopped at its budget with more to do.
    pub more: bool,
}

fn marker(ctx: &mut dyn Context) -> Result<(Vec<f32>, i64, u64), PluginError> {
    let v = ctx
        .embed(&[MARKER_TEXT.to_string()])?
        .pop()
        .ok_or_else(|| PluginError::internal("embedder returned no vector"))?;
    let hits =
        ctx.search_vectors(MARKER, &VectorQuery { vector: v.clone(), limit: 1, filter: json!({"marker": "sync"}) })?;
    // A marker the index cannot read counts as none: the sync starts over.
    let m = hits.first().and_then(|h| serde_json::from_value::<Marker>(h.payload.clone()).ok()).unwrap_or_default();
    Ok((v, m.outcome_seq, m.insights))
}

/// Brings the index up to date with the outcomes stored so far, reading at
/// most `budget` outcome records.
pub fn sync(ctx: &mut dyn Context, budget: u64) -> Result<SyncReport, PluginError> {
    let (mv, from, insights_done) = marker(ctx)?;
    let mut rep = SyncReport { from_seq: from, to_seq: from, ..Default::default() };
    let mut seq = from;
    loop {
        if rep.outcomes >= budget {
            rep.more = true;
            break;
        }
        let page = ctx.outcomes(&EventQuery {
            order: Order::Ingestion,
            after: Some(Cursor { time: 0, seq }),
            limit: 1000,
            ..Default::default()
        })?;
        if page.items.is_empty() {
            break;
        }
        let mut cases: Vec<(String, Rec)> = Vec::new();
        let mut execs = Vec::new();
        for o in &page.items {
            seq = seq.max(o.seq);
            rep.outcomes += 1;
            let pid = o.record.prediction_id.as_str().to_string();
            let Some(rec) = crate::get_rec(ctx, &pid)? else { continue };
            if o.record.success.is_some() {
                execs.push((o.record.id.as_str().to_string(), pid.clone(), rec.clone()));
            }
            if let Some(slot) = cases.iter_mut().find(|(id, _)| *id == pid) {
                slot.1 = rec;
            } else {
                cases.push((pid, rec));
            }
        }
        let texts: Vec<String> =
            cases.iter().map(|(_, r)| r.embed_text()).chain(execs.iter().map(|(_, _, r)| r.embed_text())).collect();
        let mut vectors = ctx.embed(&texts)?.into_iter();
        let case_points: Vec<VectorPoint> = cases
            .iter()
            .map(|(id, r)| VectorPoint {
                id: id.clone(),
                vector: vectors.next().unwrap_or_default(),
                payload: case_payload(id, r),
            })
            .collect();
        let exec_points: Vec<VectorPoint> = execs
            .iter()
            .map(|(oid, pid, r)| {
                let e = r.exec.as_ref();
                VectorPoint {
                    id: oid.clone(),
                    vector: vectors.next().unwrap_or_default(),
                    payload: json!({
                        "outcome_id": oid, "recommendation_id": pid, "recommendation_type": r.kind,
                        "resource_type": r.resource_type, "region": r.region,
                        "execution_id": e.and_then(|e| e.execution_id.clone()), "success": e.map(|e| e.success),
                        "execution_duration_seconds": e.and_then(|e| e.duration_seconds),
                        "issues_encountered": e.map(|e| e.issues.clone()).unwrap_or_default(),
                    }),
                }
            })
            .collect();
        rep.cases += case_points.len() as u64;
        ctx.upsert_vectors(CASES, case_points)?;
        ctx.upsert_vectors(EXECUTIONS, exec_points)?;
        ctx.upsert_vectors(MARKER, vec![marker_point(&mv, seq, insights_done)])?;
        rep.to_seq = seq;
        if page.next.is_none() {
            break;
        }
    }
    // Insights of the learning cycles (few; re-sent when new ones exist).
    let list = crate::get_doc::<crate::report::InsightsDoc>(ctx, "insights")?.0;
    let (items, total) = (list.items, list.total);
    if total > insights_done && !items.is_empty() {
        let texts: Vec<String> = items.iter().map(|i| format!("{}\n{}", i.title, i.detail)).collect();
        let vectors = ctx.embed(&texts)?;
        let points = items
            .iter()
            .zip(vectors)
            .map(|(i, v)| VectorPoint {
                id: i.insight_id.clone(),
                vector: v,
                payload: serde_json::to_value(i).unwrap_or_default(),
            })
            .collect::<Vec<_>>();
        rep.insights = points.len() as u64;
        ctx.upsert_vectors(INSIGHTS, points)?;
        ctx.upsert_vectors(MARKER, vec![marker_point(&mv, seq, total)])?;
    }
    Ok(rep)
}

/// The payload of the sync marker point: how far the index has got.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
struct Marker {
    /// Always `sync` (the search filters on it).
    marker: String,
    /// Store sequence of the last outcome indexed.
    outcome_seq: i64,
    /// Insights indexed (the `insights` document's total).
    insights: u64,
}

fn marker_point(v: &[f32], seq: i64, insights: u64) -> VectorPoint {
    let m = Marker { marker: "sync".into(), outcome_seq: seq, insights };
    VectorPoint { id: MARKER_ID.into(), vector: v.to_vec(), payload: serde_json::to_value(m).unwrap_or_default() }
}

fn case_payload(id: &str, r: &Rec) -> Value {
    let mut m = Map::new();
    m.insert("recommendation_id".into(), json!(id));
    m.insert("recommendation_type".into(), json!(r.kind));
    m.insert("resource_type".into(), json!(r.resource_type));
    m.insert("resource_id".into(), json!(r.resource_id));
    m.insert("region".into(), json!(r.region));
    m.insert("risk_level".into(), json!(r.risk));
    m.insert("predicted_savings".into(), json!(r.predicted));
    if let Some(e) = &r.exec {
        m.insert("success".into(), json!(e.success));
        m.insert("execution_date".into(), json!(crate::record::time_string(e.t)));
        m.insert("issues_encountered".into(), json!(e.issues));
    }
    if let Some(a) = r.actual {
        m.insert("actual_savings".into(), json!(a));
    }
    if let Some(x) = r.savings_accuracy() {
        m.insert("savings_accuracy".into(), json!(x));
    }
    Value::Object(m)
}

/// The most similar past cases to a recommendation described by its embed
/// text, with exact-match `filter`s, excluding `exclude`.
pub fn similar(
    ctx: &mut dyn Context,
    text: &str,
    limit: usize,
    filter: Value,
    exclude: Option<&str>,
) -> Result<Vec<SimilarCase>, PluginError> {
    let v =
        ctx.embed(&[text.to_string()])?.pop().ok_or_else(|| PluginError::internal("embedder returned no vector"))?;
    let hits =
        ctx.search_vectors(CASES, &VectorQuery { vector: v, limit: limit + usize::from(exclude.is_some()), filter })?;
    Ok(hits.into_iter().filter(|h| Some(h.id.as_str()) != exclude).take(limit).map(similar_case).collect())
}

/// A search hit of [`CASES`] as a similar case: its payload (see
/// `case_payload`) read field by field; a field the point lacks is `null`.
fn similar_case(h: VectorHit) -> SimilarCase {
    let p = &h.payload;
    let text = |k: &str| p.get(k).and_then(Value::as_str).map(str::to_string);
    let number = |k: &str| p.get(k).and_then(Value::as_f64);
    SimilarCase {
        similarity_score: h.score,
        outcome: CaseOutcome {
            success: p.get("success").and_then(Value::as_bool),
            actual_savings: number("actual_savings"),
            predicted_savings: number("predicted_savings"),
            savings_accuracy: number("savings_accuracy"),
            issues_encountered: p
                .get("issues_encountered")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect()),
            execution_date: text("execution_date"),
        },
        context: CaseContext {
            recommendation_type: text("recommendation_type"),
            resource_type: text("resource_type"),
            resource_id: text("resource_id"),
            region: text("region"),
            risk_level: text("risk_level"),
        },
        recommendation_id: h.id,
    }
}
