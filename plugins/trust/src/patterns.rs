//! Pattern discovery over a lookback window of history (the meta-learning
//! cycle and the pattern refresh).
//!
//! Categories (each pattern has a success rate, a frequency, a confidence and
//! a strength):
//! * `high_confidence` — recommendations stated with confidence ≥
//!   `high_confidence_threshold` (one pattern overall);
//! * `consensus` — recommendations whose exact action (payload `content`, else
//!   the prediction `label`) was recommended by ≥ 2 distinct agents of the same
//!   workflow (payload `workflow_id`) for the same type (one pattern overall);
//! * `expert_opinion` — an agent whose approval rate exceeds
//!   `expert_approval_rate` (one pattern per agent);
//! * `failure_avoidance` — an agent × type whose rejection rate is at least
//!   `failure_rate` ("do not route this type to this agent");
//! * `success_indicator` — an agent × type whose approval rate is at least
//!   `success_indicator_rate`.
//!
//! `confidence` = 1 − width of the 95% Beta(1 + s, 1 + f) credible interval of
//! the pattern's success rate (`learnloop_stats::beta_posterior`), so it grows
//! with frequency; patterns below `min_pattern_confidence` or with fewer than
//! `min_pattern_support` observations are pruned. `strength` maps the rate the
//! pattern is about (the failure rate for failure_avoidance, else the success
//! rate) to weak (< 0.7), moderate, strong (≥ 0.8), very_strong (≥ 0.9).
//!
//! Model accuracy: every evaluated recommendation of the window that some
//! pattern covers is predicted by its most confident covering pattern
//! (approved for every category but failure_avoidance); accuracy = correct /
//! covered, coverage = covered / evaluated (in-sample, over the same window).

use std::collections::{BTreeMap, BTreeSet};

use learnloop_plugin_api::{Context, EventQuery, Order, PluginError, Timestamp};
use learnloop_stats::beta_posterior;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Config;
use crate::score::strength;

/// One discovered pattern.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pattern {
    /// Stable id: `<category>` or `<category>:<agent>[:<type>]`.
    pub id: String,
    /// Category.
    pub category: String,
    /// For people.
    pub description: String,
    /// Agent it is about, if any.
    pub agent: Option<String>,
    /// Recommendation type it is about, if any.
    pub recommendation_type: Option<String>,
    /// Share of approved (partial = half) among its observations.
    pub success_rate: f64,
    /// Observations.
    pub frequency: u64,
    /// 1 − credible interval width.
    pub confidence: f64,
    /// weak … very_strong.
    pub strength: String,
    /// What it predicts: `approved` or `rejected`.
    pub predicts: String,
}

#[derive(Default)]
struct Acc {
    s: f64,
    n: u64,
}
impl Acc {
    fn add(&mut self, y: f64) {
        self.s += y;
        self.n += 1;
    }
}

struct Rec {
    agent: String,
    kind: String,
    confidence: Option<f64>,
    group: Option<(String, String, String)>,
}

/// The result of one discovery.
pub struct Discovery {
    /// Kept patterns, by id.
    pub patterns: Vec<Pattern>,
    /// Candidates pruned for low confidence or support.
    pub pruned: usize,
    /// Evaluated recommendations in the window.
    pub samples: u64,
    /// Recommendations in the window.
    pub recommendations: u64,
    /// Agents seen.
    pub agents: usize,
    /// Approved share of the evaluated.
    pub success_rate: Option<f64>,
    /// Accuracy of the patterns on covered samples.
    pub accuracy: Option<f64>,
    /// Covered share of samples.
    pub coverage: Option<f64>,
}

fn outcome_value(label: Option<&str>, success: Option<bool>) -> Option<f64> {
    match label {
        Some("approved") => Some(1.0),
        Some("partial") => Some(0.5),
        Some("rejected") => Some(0.0),
        Some(_) => None,
        None => success.map(|s| if s { 1.0 } else { 0.0 }),
    }
}

fn confidence(s: f64, n: u64) -> f64 {
    let p = beta_posterior(0, 0, 1.0 + s, 1.0 + (n as f64 - s), 0.95).expect("valid prior");
    1.0 - (p.upper - p.lower)
}

/// Discovers patterns over `[from, until)`.
pub fn discover(ctx: &mut dyn Context, cfg: &Config, from: Timestamp, until: Timestamp) -> Result<Discovery, PluginError> {
    let mut recs: BTreeMap<String, Rec> = BTreeMap::new();
    let mut q = EventQuery { from: Some(from), until: Some(until), order: Order::EventTime, limit: 5000, ..Default::default() };
    loop {
        let page = ctx.predictions(&q)?;
        for p in page.items {
            let r = p.record;
            let wf = r.payload.get("workflow_id").and_then(Value::as_str).map(str::to_string);
            let content = match r.payload.get("content") {
                Some(Value::Null) | None => r.label.clone(),
                Some(Value::String(s)) => Some(s.clone()),
                Some(v) => Some(v.to_string()),
            };
            let group = match (wf, content) {
                (Some(w), Some(c)) => Some((w, r.kind.clone(), c)),
                _ => None,
            };
            recs.insert(r.id.as_str().to_string(), Rec { agent: r.subject, kind: r.kind, confidence: r.confidence, group });
        }
        match page.next {
            Some(c) => q.after = Some(c),
            None => break,
        }
    }
    // Consensus groups: action → distinct agents.
    let mut groups: BTreeMap<&(String, String, String), BTreeSet<&str>> = BTreeMap::new();
    for r in recs.values() {
        if let Some(g) = &r.group {
            groups.entry(g).or_default().insert(&r.agent);
        }
    }
    let consensus: BTreeSet<&(String, String, String)> = groups.iter().filter(|(_, a)| a.len() >= 2).map(|(g, _)| *g).collect();

    // Evaluations (the first final one per recommendation).
    let mut evals: BTreeMap<String, f64> = BTreeMap::new();
    let mut q = EventQuery { from: Some(from), until: None, order: Order::EventTime, limit: 5000, ..Default::default() };
    loop {
        let page = ctx.outcomes(&q)?;
        for o in page.items {
            let id = o.record.prediction_id.as_str();
            if !recs.contains_key(id) || evals.contains_key(id) {
                continue;
            }
            if let Some(y) = outcome_value(o.record.label.as_deref(), o.record.success) {
                evals.insert(id.to_string(), y);
            }
        }
        match page.next {
            Some(c) => q.after = Some(c),
            None => break,
        }
    }

    let mut total = Acc::default();
    let mut high = Acc::default();
    let mut cons = Acc::default();
    let mut by_agent: BTreeMap<&str, Acc> = BTreeMap::new();
    let mut by_pair: BTreeMap<(&str, &str), Acc> = BTreeMap::new();
    for (id, &y) in &evals {
        let r = &recs[id];
        total.add(y);
        if r.confidence.is_some_and(|c| c >= cfg.high_confidence_threshold) {
            high.add(y);
        }
        if r.group.as_ref().is_some_and(|g| consensus.contains(g)) {
            cons.add(y);
        }
        by_agent.entry(&r.agent).or_default().add(y);
        by_pair.entry((&r.agent, &r.kind)).or_default().add(y);
    }

    let mut candidates = Vec::new();
    let mut make = |id: String, category: &str, description: String, agent: Option<&str>, kind: Option<&str>, a: &Acc, predicts: &str| {
        if a.n == 0 {
            return;
        }
        let rate = a.s / a.n as f64;
        let about = if predicts == "rejected" { 1.0 - rate } else { rate };
        candidates.push(Pattern {
            id,
            category: category.into(),
            description,
            agent: agent.map(str::to_string),
            recommendation_type: kind.map(str::to_string),
            success_rate: rate,
            frequency: a.n,
            confidence: confidence(a.s, a.n),
            strength: strength(about).into(),
            predicts: predicts.into(),
        });
    };
    let hp = if high.n > 0 && high.s / high.n as f64 >= 0.5 { "approved" } else { "rejected" };
    make("high_confidence".into(), "high_confidence", format!("recommendations stated with confidence ≥ {}", cfg.high_confidence_threshold), None, None, &high, hp);
    let cp = if cons.n > 0 && cons.s / cons.n as f64 >= 0.5 { "approved" } else { "rejected" };
    make("consensus".into(), "consensus", "the same action recommended by several agents of one workflow".into(), None, None, &cons, cp);
    for (agent, a) in &by_agent {
        if a.n > 0 && a.s / a.n as f64 > cfg.expert_approval_rate {
            make(format!("expert_opinion:{agent}"), "expert_opinion", format!("{agent} is approved more than {:.0}% of the time", cfg.expert_approval_rate * 100.0), Some(agent), None, a, "approved");
        }
    }
    for ((agent, kind), a) in &by_pair {
        let rate = if a.n > 0 { a.s / a.n as f64 } else { continue };
        if 1.0 - rate >= cfg.failure_rate {
            make(format!("failure_avoidance:{agent}:{kind}"), "failure_avoidance", format!("{agent}'s {kind} recommendations are mostly rejected: route {kind} elsewhere"), Some(agent), Some(kind), a, "rejected");
        } else if rate >= cfg.success_indicator_rate {
            make(format!("success_indicator:{agent}:{kind}"), "success_indicator", format!("{agent}'s {kind} recommendations are mostly approved"), Some(agent), Some(kind), a, "approved");
        }
    }
    let before = candidates.len();
    let patterns: Vec<Pattern> = candidates
        .into_iter()
        .filter(|p| p.frequency >= cfg.min_pattern_support && p.confidence >= cfg.min_pattern_confidence)
        .collect();
    let pruned = before - patterns.len();

    // Model accuracy and coverage.
    let by_id: BTreeMap<&str, &Pattern> = patterns.iter().map(|p| (p.id.as_str(), p)).collect();
    let (mut covered, mut correct) = (0u64, 0u64);
    for (id, &y) in &evals {
        let r = &recs[id];
        let mut keys = vec![
            format!("expert_opinion:{}", r.agent),
            format!("failure_avoidance:{}:{}", r.agent, r.kind),
            format!("success_indicator:{}:{}", r.agent, r.kind),
        ];
        if r.confidence.is_some_and(|c| c >= cfg.high_confidence_threshold) {
            keys.push("high_confidence".into());
        }
        if r.group.as_ref().is_some_and(|g| consensus.contains(g)) {
            keys.push("consensus".into());
        }
        let best = keys.iter().filter_map(|k| by_id.get(k.as_str())).max_by(|a, b| a.confidence.total_cmp(&b.confidence));
        if let Some(p) = best {
            covered += 1;
            if (y >= 0.5) == (p.predicts == "approved") {
                correct += 1;
            }
        }
    }
    Ok(Discovery {
        pruned,
        samples: total.n,
        recommendations: recs.len() as u64,
        agents: by_agent.len().max(recs.values().map(|r| r.agent.as_str()).collect::<BTreeSet<_>>().len()),
        success_rate: (total.n > 0).then(|| total.s / total.n as f64),
        accuracy: (covered > 0).then(|| correct as f64 / covered as f64),
        coverage: (total.n > 0).then(|| covered as f64 / total.n as f64),
        patterns,
    })
}
