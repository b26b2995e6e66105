//! Learning the trust weights, through the host's improvement lifecycle.
//!
//! The overall trust ranks agents for routing and for `/trusted`; a weight
//! set is better when the weighted dimensions of an agent, computed from its
//! history up to some time, predict how its *later* recommendations are
//! judged. The metric is the Brier score: the mean of (w·d − y)² over final
//! evaluations, `d` the agent's (accuracy, consistency, timeliness,
//! reliability) from the evaluations before, `y` 1 / 0.5 / 0 for approved /
//! partial / rejected. Lower is better.
//!
//! The `meta_learning` job takes the final evaluations of the last
//! `weights_lookback_days` in time order and splits them 50 / 25 / 25:
//! dimensions from the first half, weights fitted on the next quarter (a grid
//! over the simplex in steps of 0.05, every weight at least
//! `weights_min` so no dimension vanishes), and the newest quarter held out.
//! It proposes the fit as target `weights` when it differs from the weights
//! in force. The host then calls [`score`]: on the held-out quarter
//! (dimensions from everything before it) for the backtest, and on
//! evaluations since the weights were applied for monitoring.

use std::collections::BTreeMap;

use learnloop_plugin_api::helpers::client_time;
use learnloop_plugin_api::{
    Context, EventQuery, ImprovementDraft, Order, PluginError, Score, ScoreRequest, ScoreWindow, Timestamp,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::online::outcome_label;
use crate::score::{Counts, DAY, HOUR, timestamp};
use crate::{Config, Weights};

/// The improvement target name.
pub const TARGET: &str = "weights";

/// What a learning cycle did about the weights (`weights.learning` in its report).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct WeightsLearning {
    /// Whether the fit was proposed to the improvement lifecycle.
    pub proposed: bool,
    /// Why not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The fitted weights (absent when too few evaluations).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weights: Option<Weights>,
    /// Their Brier score on the fit quarter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fit_brier: Option<f64>,
    /// The Brier score of the weights in force on the same quarter (proposals only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fit_brier_of_weights_in_force: Option<f64>,
    /// Final evaluations in the lookback (proposals only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evaluations: Option<usize>,
}

/// The evidence of a weights proposal; [`score`] reads its times back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightsEvidence {
    /// Start of the history learned from.
    pub window_from: Timestamp,
    /// Start of the held-out quarter.
    pub holdout_from: Timestamp,
    /// Final evaluations in the history.
    pub evaluations: usize,
    /// Of them, in the fit quarter.
    pub fit_evaluations: usize,
    /// Brier score of the fit there.
    pub fit_brier: f64,
    /// Brier score of the weights in force there.
    pub fit_brier_of_weights_in_force: f64,
    /// The weights in force.
    pub weights_in_force: Weights,
    /// How the weights were fitted.
    pub method: String,
}

/// The detail of a weights score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightsScoreDetail {
    /// The proposed weights.
    pub candidate_weights: Weights,
    /// The weights compared against.
    pub baseline_weights: Weights,
    /// Agents with history before the scored evaluations.
    pub agents_with_history: usize,
}

/// Events of the history with their client times, in time order.
type Timed = Vec<(i64, Obs)>;

/// One event of the history, in time order.
#[derive(Debug, Clone)]
enum Obs {
    /// A recommendation by an agent (interned: an index into the history's agent list).
    Rec { agent: u32 },
    /// A final evaluation: agent, y, quality, latency hours.
    Eval { agent: u32, y: f64, quality: f64, latency: Option<f64> },
}

/// Events with a client time in `[from, until)`, in time order (predictions
/// before outcomes at equal times).
fn history(ctx: &mut dyn Context, from: i64, until: Option<i64>) -> Result<Vec<(i64, i64, Obs)>, PluginError> {
    let base = EventQuery {
        from: Some(timestamp(from)?),
        until: until.map(timestamp).transpose()?,
        order: Order::EventTime,
        limit: EventQuery::MAX_LIMIT,
        ..Default::default()
    };
    let mut out = Vec::new();
    let mut rec_time: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
    let mut agents: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
    let mut intern = |a: &str| -> u32 {
        let n = agents.len() as u32;
        *agents.entry(a.to_string()).or_insert(n)
    };
    let mut q = base.clone();
    loop {
        let page = ctx.predictions(&q)?;
        for p in &page.items {
            if let Some(t) = client_time(p.record.event_time, p.ingested_at) {
                rec_time.insert(p.record.id.as_str().to_string(), t);
                out.push((t, 0u8, p.ingested_at.as_micros(), Obs::Rec { agent: intern(&p.record.subject) }));
            }
        }
        match page.next {
            Some(c) => q.after = Some(c),
            None => break,
        }
    }
    let mut q = base;
    loop {
        let page = ctx.outcomes(&q)?;
        for o in &page.items {
            let r = &o.record;
            let Some(t) = client_time(r.event_time, o.ingested_at) else { continue };
            let label = outcome_label(r.label.as_deref(), r.success, r.quality);
            let y = match label {
                "approved" => 1.0,
                "partial" => 0.5,
                "rejected" => 0.0,
                _ => continue,
            };
            let latency = rec_time.get(r.prediction_id.as_str()).map(|from| ((t - from) as f64 / HOUR).max(0.0));
            out.push((
                t,
                1,
                o.ingested_at.as_micros(),
                Obs::Eval { agent: intern(&o.subject), y, quality: r.quality.unwrap_or(y), latency },
            ));
        }
        match page.next {
            Some(c) => q.after = Some(c),
            None => break,
        }
    }
    out.sort_by_key(|(t, order, _, _)| (*t, *order));
    Ok(out.into_iter().map(|(t, _, ingested, o)| (t, ingested, o)).collect())
}

/// Each agent's four dimensions from `events`, as of `newest`.
fn dimensions(events: &[(i64, Obs)], cfg: &Config, newest: i64) -> BTreeMap<u32, [f64; 4]> {
    let mut counts: BTreeMap<u32, Counts> = BTreeMap::new();
    for (t, e) in events {
        match e {
            Obs::Rec { agent } => {
                let c = counts.entry(*agent).or_default();
                c.recommendations += 1;
                c.last_time = c.last_time.max(*t);
            }
            Obs::Eval { agent, y, quality, latency } => {
                let label = if *y >= 1.0 {
                    "approved"
                } else if *y > 0.0 {
                    "partial"
                } else {
                    "rejected"
                };
                counts.entry(*agent).or_default().evaluate(label, *y, *quality, *latency, None, cfg, *t);
            }
        }
    }
    counts
        .into_iter()
        .map(|(a, c)| {
            let s = c.score(cfg, newest);
            (a, [s.accuracy, s.consistency, s.timeliness, s.reliability])
        })
        .collect()
}

/// The dimensions of an agent with no history.
fn unknown(cfg: &Config) -> [f64; 4] {
    let s = Counts::default().score(cfg, 0);
    [s.accuracy, s.consistency, s.timeliness, s.reliability]
}

fn as_array(w: &Weights) -> [f64; 4] {
    [w.accuracy, w.consistency, w.timeliness, w.reliability]
}

/// Weights from improvement parameters (`None`: the configured defaults).
pub fn from_params(params: Option<&Value>, cfg: &Config) -> Result<Weights, PluginError> {
    match params {
        None | Some(Value::Null) => Ok(cfg.weights.clone()),
        Some(v) => {
            let w: Weights = serde_json::from_value(v.clone())
                .map_err(|e| PluginError::invalid("params", format!("not trust weights: {e}")))?;
            let sum: f64 = as_array(&w).iter().sum();
            if as_array(&w).iter().any(|x| !x.is_finite() || *x < 0.0) || (sum - 1.0).abs() > 1e-6 {
                return Err(PluginError::invalid(
                    "params",
                    format!("trust weights must be non-negative and sum to 1, got {sum}"),
                ));
            }
            Ok(w)
        }
    }
}

/// The squared errors of predicting each evaluation of `evals` by `w · d`.
fn losses(evals: &[(i64, Obs)], dims: &BTreeMap<u32, [f64; 4]>, fallback: [f64; 4], w: [f64; 4]) -> Vec<f64> {
    evals
        .iter()
        .filter_map(|(_, e)| match e {
            Obs::Eval { agent, y, .. } => {
                let d = dims.get(agent).copied().unwrap_or(fallback);
                let p: f64 = (0..4).map(|i| w[i] * d[i]).sum();
                Some((p - y).powi(2))
            }
            Obs::Rec { .. } => None,
        })
        .collect()
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() { 0.0 } else { v.iter().sum::<f64>() / v.len() as f64 }
}

/// Every weight vector on the simplex grid of step 1/20 with each weight ≥ `floor`.
fn grid(floor: f64) -> Vec<[f64; 4]> {
    let mut out = Vec::new();
    for a in 0..=20 {
        for b in 0..=(20 - a) {
            for c in 0..=(20 - a - b) {
                let d = 20 - a - b - c;
                let w = [a as f64 / 20.0, b as f64 / 20.0, c as f64 / 20.0, d as f64 / 20.0];
                if w.iter().all(|x| *x >= floor - 1e-12) {
                    out.push(w);
                }
            }
        }
    }
    out
}

/// Fits weights on the history of the last `weights_lookback_days` and
/// proposes them when they differ from `current`. Returns the report.
pub fn learn(
    ctx: &mut dyn Context,
    cfg: &Config,
    current: &Weights,
    newest: i64,
) -> Result<WeightsLearning, PluginError> {
    let from = newest - (cfg.weights_lookback_days * DAY) as i64;
    let events: Vec<(i64, Obs)> =
        history(ctx, from, Some(newest.saturating_add(1)))?.into_iter().map(|(t, _, o)| (t, o)).collect();
    let eval_idx: Vec<usize> =
        events.iter().enumerate().filter(|(_, (_, e))| matches!(e, Obs::Eval { .. })).map(|(i, _)| i).collect();
    let n = eval_idx.len();
    if n < cfg.weights_min_evaluations as usize {
        return Ok(WeightsLearning {
            proposed: false,
            reason: Some(format!(
                "{n} evaluations in the last {} days (< weights_min_evaluations {})",
                cfg.weights_lookback_days, cfg.weights_min_evaluations
            )),
            ..Default::default()
        });
    }
    // 50 / 25 / 25 by evaluation count; a cut never splits equal times.
    let (b_at, c_at) = (events[eval_idx[n / 2]].0, events[eval_idx[3 * n / 4]].0);
    let first_at = |t: i64| events.partition_point(|(et, _)| *et < t);
    let (b, c) = (first_at(b_at), first_at(c_at));
    let dims = dimensions(&events[..b], cfg, b_at);
    let fallback = unknown(cfg);
    let fit_set = &events[b..c];
    // Brier(w) = w'Aw − 2w'b + c with A = mean(d d'), b = mean(d y), c = mean(y²):
    // each grid point costs 16 multiplications, whatever the history's size.
    let (mut am, mut bm, mut cm, mut m) = ([[0.0f64; 4]; 4], [0.0f64; 4], 0.0f64, 0usize);
    for (_, e) in fit_set {
        if let Obs::Eval { agent, y, .. } = e {
            let d = dims.get(agent).copied().unwrap_or(fallback);
            for i in 0..4 {
                for j in 0..4 {
                    am[i][j] += d[i] * d[j];
                }
                bm[i] += d[i] * y;
            }
            cm += y * y;
            m += 1;
        }
    }
    let brier = |w: [f64; 4]| {
        let mut q = cm;
        for i in 0..4 {
            q -= 2.0 * w[i] * bm[i];
            for j in 0..4 {
                q += w[i] * w[j] * am[i][j];
            }
        }
        q / m.max(1) as f64
    };
    let mut best: Option<([f64; 4], f64)> = None;
    for w in grid(cfg.weights_min) {
        let l = brier(w);
        if best.is_none_or(|(_, b)| l < b - 1e-12) {
            best = Some((w, l));
        }
    }
    let (w, fit_brier) = best.expect("the grid is never empty: weights_min <= 0.25");
    let candidate = Weights { accuracy: w[0], consistency: w[1], timeliness: w[2], reliability: w[3] };
    let current_brier = brier(as_array(current));
    if as_array(&candidate).iter().zip(as_array(current)).all(|(a, b)| (a - b).abs() < 1e-9) {
        return Ok(WeightsLearning {
            proposed: false,
            reason: Some("the weights in force are already the best fit".into()),
            weights: Some(candidate),
            fit_brier: Some(fit_brier),
            ..Default::default()
        });
    }
    let holdout_from = timestamp(c_at)?;
    let window_from = timestamp(from)?;
    let evidence = WeightsEvidence {
        window_from,
        holdout_from,
        evaluations: n,
        fit_evaluations: fit_set.iter().filter(|(_, e)| matches!(e, Obs::Eval { .. })).count(),
        fit_brier,
        fit_brier_of_weights_in_force: current_brier,
        weights_in_force: current.clone(),
        method: "Brier score of w·(accuracy, consistency, timeliness, reliability) against later evaluations; grid step 0.05".into(),
    };
    ctx.propose_improvement(ImprovementDraft {
        target: TARGET.into(),
        params: serde_json::to_value(&candidate)?,
        evidence: serde_json::to_value(&evidence)?,
        metric: "brier".into(),
        expected_gain: current_brier - fit_brier,
    })?;
    Ok(WeightsLearning {
        proposed: true,
        reason: None,
        weights: Some(candidate),
        fit_brier: Some(fit_brier),
        fit_brier_of_weights_in_force: Some(current_brier),
        evaluations: Some(n),
    })
}

/// The host's backtest and monitoring comparison (see the module docs).
/// `newest` is the workspace's newest event time: monitoring reads the
/// `weights_lookback_days` before it.
pub fn score(ctx: &mut dyn Context, cfg: &Config, request: &ScoreRequest, newest: i64) -> Result<Score, PluginError> {
    let candidate = from_params(Some(&request.candidate), cfg)?;
    let baseline = from_params(request.baseline.as_ref(), cfg)?;
    let ts_of = |field: &str| -> Result<i64, PluginError> {
        let t: Timestamp = serde_json::from_value(request.evidence[field].clone())
            .map_err(|e| PluginError::invalid(format!("evidence.{field}"), e.to_string()))?;
        Ok(t.as_micros())
    };
    let (before, evals, as_of): (Timed, Timed, i64) = match &request.window {
        // Backtest: by client time, everything before the held-out quarter vs the quarter.
        ScoreWindow::HeldOut => {
            let cut = ts_of("holdout_from")?;
            let events = history(ctx, ts_of("window_from")?, None)?;
            let (a, b): (Vec<_>, Vec<_>) = events.into_iter().map(|(t, _, o)| (t, o)).partition(|(t, _)| *t < cut);
            (a, b, cut)
        }
        // Monitoring: what the store received since the weights were applied,
        // judged with dimensions from everything received before.
        ScoreWindow::Since { since } => {
            let cut = since.as_micros();
            let events = history(ctx, newest - (cfg.weights_lookback_days * DAY) as i64, None)?;
            let newest_before = events.iter().filter(|(_, i, _)| *i < cut).map(|(t, _, _)| *t).max().unwrap_or(0);
            let (a, b): (Vec<_>, Vec<_>) = events.into_iter().partition(|(_, i, _)| *i < cut);
            (
                a.into_iter().map(|(t, _, o)| (t, o)).collect(),
                b.into_iter().map(|(t, _, o)| (t, o)).collect(),
                newest_before,
            )
        }
    };
    let dims = dimensions(&before, cfg, as_of);
    let fallback = unknown(cfg);
    let lc = losses(&evals, &dims, fallback, as_array(&candidate));
    let lb = losses(&evals, &dims, fallback, as_array(&baseline));
    let confidence =
        learnloop_stats::paired_improvement_confidence(&lb, &lc).map_err(|e| PluginError::internal(e.to_string()))?;
    Ok(Score {
        metric: "brier".into(),
        higher_is_better: false,
        candidate: mean(&lc),
        baseline: mean(&lb),
        n: lc.len() as u64,
        confidence,
        detail: serde_json::to_value(WeightsScoreDetail {
            candidate_weights: candidate,
            baseline_weights: baseline,
            agents_with_history: dims.len(),
        })?,
    })
}
