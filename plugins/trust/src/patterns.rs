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

use std::collections::BTreeMap;

use learnloop_plugin_api::{Context, EventQuery, Order, PluginError, Timestamp};
use learnloop_stats::beta_posterior;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Config;
use crate::route::fnv1a;
use crate::score::strength;

/// One discovered pattern. Fields added over time (`predicts`) default
/// when an older `patterns` document lacks them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
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

/// One recommendation of the window, compactly (agents and types interned,
/// ids and consensus groups hashed with FNV-1a) so a million fit in tens of MB.
struct Rec {
    agent: u32,
    kind: u32,
    /// NaN when not stated.
    confidence: f32,
    /// Hash of (workflow, type, action); 0 when unknown.
    group: u64,
    /// First final evaluation; NaN until one is seen.
    y: f32,
}

fn intern(map: &mut BTreeMap<String, u32>, names: &mut Vec<String>, s: &str) -> u32 {
    if let Some(&i) = map.get(s) {
        return i;
    }
    let i = names.len() as u32;
    names.push(s.to_string());
    map.insert(s.to_string(), i);
    i
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
    /// Every (agent, type) cell of the window: agent, type, Σy, evaluations.
    pub cells: Vec<(String, String, f64, u64)>,
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
pub fn discover(
    ctx: &mut dyn Context,
    cfg: &Config,
    from: Timestamp,
    until: Timestamp,
) -> Result<Discovery, PluginError> {
    let (mut agent_ix, mut agent_names) = (BTreeMap::new(), Vec::new());
    let (mut kind_ix, mut kind_names) = (BTreeMap::new(), Vec::new());
    let mut recs: BTreeMap<u64, Rec> = BTreeMap::new();
    let mut q =
        EventQuery { from: Some(from), until: Some(until), order: Order::EventTime, limit: 5000, ..Default::default() };
    loop {
        let page = ctx.predictions(&q)?;
        for p in page.items {
            let r = p.record;
            let wf = r.payload.get("workflow_id").and_then(Value::as_str);
            let content = match r.payload.get("content") {
                Some(Value::Null) | None => r.label.clone(),
                Some(Value::String(s)) => Some(s.clone()),
                Some(v) => Some(v.to_string()),
            };
            let group = match (wf, content) {
                (Some(w), Some(c)) => fnv1a(format!("{w}\u{0}{}\u{0}{c}", r.kind).as_bytes()).max(1),
                _ => 0,
            };
            let agent = intern(&mut agent_ix, &mut agent_names, &r.subject);
            let kind = intern(&mut kind_ix, &mut kind_names, &r.kind);
            let confidence = r.confidence.map_or(f32::NAN, |c| c as f32);
            recs.insert(fnv1a(r.id.as_str().as_bytes()), Rec { agent, kind, confidence, group, y: f32::NAN });
        }
        match page.next {
            Some(c) => q.after = Some(c),
            None => break,
        }
    }
    // Consensus groups: action → first agent, and whether another agent joined.
    let mut groups: BTreeMap<u64, (u32, bool)> = BTreeMap::new();
    for r in recs.values().filter(|r| r.group != 0) {
        let g = groups.entry(r.group).or_insert((r.agent, false));
        if g.0 != r.agent {
            g.1 = true;
        }
    }
    let in_consensus = |r: &Rec| r.group != 0 && groups.get(&r.group).is_some_and(|g| g.1);
    let high_conf = |r: &Rec| !r.confidence.is_nan() && f64::from(r.confidence) >= cfg.high_confidence_threshold;

    // Evaluations (the first final one per recommendation).
    let mut q =
        EventQuery { from: Some(from), until: Some(until), order: Order::EventTime, limit: 5000, ..Default::default() };
    loop {
        let page = ctx.outcomes(&q)?;
        for o in page.items {
            let Some(r) = recs.get_mut(&fnv1a(o.record.prediction_id.as_str().as_bytes())) else { continue };
            if r.y.is_nan()
                && let Some(y) = outcome_value(o.record.label.as_deref(), o.record.success)
            {
                r.y = y as f32;
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
    let mut by_agent_ix: Vec<Acc> = (0..agent_names.len()).map(|_| Acc::default()).collect();
    let mut by_pair_ix: BTreeMap<(u32, u32), Acc> = BTreeMap::new();
    for r in recs.values().filter(|r| !r.y.is_nan()) {
        let y = f64::from(r.y);
        total.add(y);
        if high_conf(r) {
            high.add(y);
        }
        if in_consensus(r) {
            cons.add(y);
        }
        by_agent_ix[r.agent as usize].add(y);
        by_pair_ix.entry((r.agent, r.kind)).or_default().add(y);
    }
    // In name order, for stable pattern order.
    let by_agent: BTreeMap<&str, &Acc> =
        agent_names.iter().zip(&by_agent_ix).filter(|(_, a)| a.n > 0).map(|(n, a)| (n.as_str(), a)).collect();
    let by_pair: BTreeMap<(&str, &str), &Acc> = by_pair_ix
        .iter()
        .map(|((a, k), acc)| ((agent_names[*a as usize].as_str(), kind_names[*k as usize].as_str()), acc))
        .collect();

    let mut candidates = Vec::new();
    let mut make = |id: String,
                    category: &str,
                    description: String,
                    agent: Option<&str>,
                    kind: Option<&str>,
                    a: &Acc,
                    predicts: &str| {
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
    make(
        "high_confidence".into(),
        "high_confidence",
        format!("recommendations stated with confidence ≥ {}", cfg.high_confidence_threshold),
        None,
        None,
        &high,
        hp,
    );
    let cp = if cons.n > 0 && cons.s / cons.n as f64 >= 0.5 { "approved" } else { "rejected" };
    make(
        "consensus".into(),
        "consensus",
        "the same action recommended by several agents of one workflow".into(),
        None,
        None,
        &cons,
        cp,
    );
    for (agent, a) in &by_agent {
        if a.n > 0 && a.s / a.n as f64 > cfg.expert_approval_rate {
            make(
                format!("expert_opinion:{agent}"),
                "expert_opinion",
                format!("{agent} is approved more than {:.0}% of the time", cfg.expert_approval_rate * 100.0),
                Some(agent),
                None,
                a,
                "approved",
            );
        }
    }
    for ((agent, kind), a) in &by_pair {
        let rate = if a.n > 0 { a.s / a.n as f64 } else { continue };
        if 1.0 - rate >= cfg.failure_rate {
            make(
                format!("failure_avoidance:{agent}:{kind}"),
                "failure_avoidance",
                format!("{agent}'s {kind} recommendations are mostly rejected: route {kind} elsewhere"),
                Some(agent),
                Some(kind),
                a,
                "rejected",
            );
        } else if rate >= cfg.success_indicator_rate {
            make(
                format!("success_indicator:{agent}:{kind}"),
                "success_indicator",
                format!("{agent}'s {kind} recommendations are mostly approved"),
                Some(agent),
                Some(kind),
                a,
                "approved",
            );
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
    let expert: Vec<Option<&Pattern>> =
        agent_names.iter().map(|a| by_id.get(format!("expert_opinion:{a}").as_str()).copied()).collect();
    let pair_pattern: BTreeMap<(u32, u32), &Pattern> = by_pair_ix
        .keys()
        .filter_map(|&(a, k)| {
            let (an, kn) = (&agent_names[a as usize], &kind_names[k as usize]);
            by_id
                .get(format!("failure_avoidance:{an}:{kn}").as_str())
                .or_else(|| by_id.get(format!("success_indicator:{an}:{kn}").as_str()))
                .map(|p| ((a, k), *p))
        })
        .collect();
    let high_p = by_id.get("high_confidence").copied();
    let cons_p = by_id.get("consensus").copied();
    let (mut covered, mut correct) = (0u64, 0u64);
    for r in recs.values().filter(|r| !r.y.is_nan()) {
        let candidates = [
            expert[r.agent as usize],
            pair_pattern.get(&(r.agent, r.kind)).copied(),
            if high_conf(r) { high_p } else { None },
            if in_consensus(r) { cons_p } else { None },
        ];
        let best = candidates.iter().flatten().max_by(|a, b| a.confidence.total_cmp(&b.confidence));
        if let Some(p) = best {
            covered += 1;
            if (r.y >= 0.5) == (p.predicts == "approved") {
                correct += 1;
            }
        }
    }
    Ok(Discovery {
        pruned,
        samples: total.n,
        recommendations: recs.len() as u64,
        agents: agent_names.len(),
        success_rate: (total.n > 0).then(|| total.s / total.n as f64),
        accuracy: (covered > 0).then(|| correct as f64 / covered as f64),
        coverage: (total.n > 0).then(|| covered as f64 / total.n as f64),
        cells: by_pair.iter().map(|((a, k), acc)| (a.to_string(), k.to_string(), acc.s, acc.n)).collect(),
        patterns,
    })
}
