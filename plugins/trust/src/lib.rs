//! The `trust` plugin: learns how far to trust each agent of a swarm from how
//! its recommendations were judged (seed 001), and routes decisions to the
//! agents most likely to be right.
//!
//! Records:
//! * a **prediction** is an agent's recommendation: `subject` = agent id,
//!   `kind` = recommendation type, `confidence`, `label` (a short text of the
//!   action) and `payload` with `agent_name`, `workflow_id`, `correlation_id`,
//!   `content`, `reasoning`, `evidence`;
//! * an **outcome** is its evaluation: `label` approved / rejected / partial /
//!   pending (anything else is rejected), `success`, `quality` in `[0, 1]` (the
//!   seed's overall quality 0–100 is `quality × 100`; routes report
//!   `avg_quality_score` on the 0–100 scale), `feedback`, and `payload` with the
//!   per-dimension quality scores (`{"quality_scores": {"accuracy": 90, ...}}`).
//!
//! State (all reproducible from history by `learnloop replay`, except the
//! trend verdicts, which the next `trust_recalculation` writes again):
//! * `agent/<agent>` — counters per agent and per agent × type, the seed's
//!   learning-rate scores, the trend EWMAs and the change test's blocks, with
//!   the last verdict of `trust_recalculation` ([`score::AgentDoc`]);
//! * `open/<prediction id>` — the client event time and confidence of a
//!   recommendation until its final evaluation arrives (for timeliness);
//!   `cleanup` prunes those older than `retention_days`;
//! * `meta` — the newest event time of the workspace (the plugin's clock: it
//!   never reads the wall clock, and ignores ingestion times: an event sent
//!   without `event_time` has no time for timeliness or inactivity) and totals;
//! * `patterns`, `learning`, `trust_snapshot` — written by the jobs.
//!
//! Trust formulas are documented in [`score`], pattern discovery in
//! [`patterns`], routing in [`route`].

#![deny(missing_docs)]

pub mod patterns;
pub mod route;
pub mod rules;
pub mod score;
pub mod weights;

use std::collections::BTreeMap;

use learnloop_plugin_api::core::RecordType;
use learnloop_plugin_api::{
    AlertDraft, ConfigKey, Context, Event, EventQuery, Expect, InsightDraft, JobSpec, KindSpec, Manifest, Order,
    Plugin, PluginError, Record, RouteRequest, RouteResponse, RouteSpec, Severity, Timestamp, ValidationError, abi,
    parse_config,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use score::{AgentDoc, DAY, HOUR, strength};

/// Weights of the trust dimensions in the overall score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Weights {
    /// Accuracy weight (default 0.40).
    pub accuracy: f64,
    /// Consistency weight (default 0.25).
    pub consistency: f64,
    /// Timeliness weight (default 0.15).
    pub timeliness: f64,
    /// Reliability weight (default 0.20).
    pub reliability: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Self { accuracy: 0.40, consistency: 0.25, timeliness: 0.15, reliability: 0.20 }
    }
}

/// The `[trust]` config section. Every key is optional; an unknown key is an
/// error naming it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Weights of accuracy, consistency, timeliness, reliability.
    pub weights: Weights,
    /// Confidence factor n / (n + confidence_k).
    pub confidence_k: f64,
    /// The seed's learning rate for the per-dimension update.
    pub learning_rate: f64,
    /// Beta prior α of the approval probability.
    pub prior_alpha: f64,
    /// Beta prior β.
    pub prior_beta: f64,
    /// Credibility level of the intervals.
    pub credible_level: f64,
    /// Latency (outcome time − recommendation time) at which timeliness halves.
    pub timeliness_half_life_hours: f64,
    /// Idle days (relative to the workspace's newest event) before evidence starts to fade.
    pub inactivity_grace_days: f64,
    /// Half-life of the evidence of an idle agent, in days, after the grace period.
    pub inactivity_half_life_days: f64,
    /// Evaluations per block of the change test behind the trend.
    pub decline_window: u64,
    /// Evaluations an agent needs before a block to have it tested.
    pub decline_min_history: u64,
    /// Benjamini–Hochberg false-discovery rate over agents per `trust_recalculation`.
    pub decline_fdr: f64,
    /// Pseudo-evaluations shrinking an (agent, type) rate towards the agent's overall rate (change test).
    pub decline_shrinkage: f64,
    /// Default `threshold` of `GET /trusted`.
    pub trusted_threshold: f64,
    /// Default routing strategy: `thompson` or `greedy`.
    pub routing_strategy: String,
    /// Monte Carlo draws estimating Thompson selection probabilities.
    pub routing_samples: usize,
    /// Thompson routing explores with probability k / (k + n), n the leader's evaluations of the type.
    pub routing_explore_k: f64,
    /// Pattern lookback window in days.
    pub lookback_days: f64,
    /// Patterns below this confidence are pruned.
    pub min_pattern_confidence: f64,
    /// Patterns need at least this many observations.
    pub min_pattern_support: u64,
    /// Confidence at or above which a recommendation is "high confidence".
    pub high_confidence_threshold: f64,
    /// Approval rate above which an agent is an expert.
    pub expert_approval_rate: f64,
    /// Rejection rate at or above which an agent × type is a failure pattern.
    pub failure_rate: f64,
    /// Approval rate at or above which an agent × type is a success indicator.
    pub success_indicator_rate: f64,
    /// New evaluations since the last cycle that make `should_trigger_learning_cycle` true.
    pub learning_trigger_outcomes: u64,
    /// Days after which `cleanup` prunes plugin state about a recommendation (never events).
    pub retention_days: f64,
    /// History (days back from the newest event) the weights are learned from.
    pub weights_lookback_days: f64,
    /// Least final evaluations in that history before weights are learned.
    pub weights_min_evaluations: u64,
    /// Least value of each learned weight (no dimension is dropped entirely).
    pub weights_min: f64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            weights: Weights::default(),
            confidence_k: 10.0,
            learning_rate: 0.1,
            prior_alpha: 1.0,
            prior_beta: 1.0,
            credible_level: 0.95,
            timeliness_half_life_hours: 24.0,
            inactivity_grace_days: 14.0,
            inactivity_half_life_days: 30.0,
            decline_window: 10,
            decline_min_history: 60,
            decline_fdr: 2e-4,
            decline_shrinkage: 5.0,
            trusted_threshold: 0.7,
            routing_strategy: "thompson".into(),
            routing_samples: 1000,
            routing_explore_k: 1.0,
            lookback_days: 7.0,
            min_pattern_confidence: 0.7,
            min_pattern_support: 20,
            high_confidence_threshold: 0.8,
            expert_approval_rate: 0.75,
            failure_rate: 0.6,
            success_indicator_rate: 0.8,
            learning_trigger_outcomes: 100,
            retention_days: 90.0,
            weights_lookback_days: 90.0,
            weights_min_evaluations: 100,
            weights_min: 0.05,
        }
    }
}

impl Config {
    fn check(&self) -> Result<(), PluginError> {
        let bad = |k: &str, m: &str| Err(PluginError::invalid(format!("[trust] {k}"), m.to_string()));
        let w = &self.weights;
        for (k, v) in [
            ("weights.accuracy", w.accuracy),
            ("weights.consistency", w.consistency),
            ("weights.timeliness", w.timeliness),
            ("weights.reliability", w.reliability),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(k, "must be a finite number ≥ 0");
            }
        }
        if ((w.accuracy + w.consistency + w.timeliness + w.reliability) - 1.0).abs() > 1e-6 {
            return bad("weights", "must sum to 1");
        }
        for (k, v) in [
            ("confidence_k", self.confidence_k),
            ("prior_alpha", self.prior_alpha),
            ("prior_beta", self.prior_beta),
            ("timeliness_half_life_hours", self.timeliness_half_life_hours),
            ("inactivity_half_life_days", self.inactivity_half_life_days),
            ("lookback_days", self.lookback_days),
            ("retention_days", self.retention_days),
            ("weights_lookback_days", self.weights_lookback_days),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return bad(k, "must be a finite number > 0");
            }
        }
        for (k, v) in [
            ("learning_rate", self.learning_rate),
            ("credible_level", self.credible_level),
            ("min_pattern_confidence", self.min_pattern_confidence),
            ("high_confidence_threshold", self.high_confidence_threshold),
            ("expert_approval_rate", self.expert_approval_rate),
            ("failure_rate", self.failure_rate),
            ("success_indicator_rate", self.success_indicator_rate),
            ("trusted_threshold", self.trusted_threshold),
        ] {
            let ok = if k == "trusted_threshold" { (0.0..=1.0).contains(&v) } else { v > 0.0 && v < 1.0 };
            if !ok {
                return bad(k, "must lie in (0, 1)");
            }
        }
        if !(self.inactivity_grace_days.is_finite() && self.inactivity_grace_days >= 0.0) {
            return bad("inactivity_grace_days", "must be a finite number ≥ 0");
        }
        if !(self.decline_fdr.is_finite() && self.decline_fdr > 0.0 && self.decline_fdr < 1.0) {
            return bad("decline_fdr", "must lie in (0, 1)");
        }
        if self.decline_window < 5 {
            return bad("decline_window", "must be at least 5 evaluations");
        }
        if !(self.decline_shrinkage.is_finite() && self.decline_shrinkage > 0.0) {
            return bad("decline_shrinkage", "must be a finite number > 0");
        }
        if !(self.routing_explore_k.is_finite() && self.routing_explore_k >= 0.0) {
            return bad("routing_explore_k", "must be a finite number ≥ 0 (0: never explore)");
        }
        if !(self.weights_min.is_finite() && (0.0..=0.25).contains(&self.weights_min)) {
            return bad("weights_min", "must lie in [0, 0.25] (four weights sum to 1)");
        }
        if self.weights_min_evaluations < 8 {
            return bad("weights_min_evaluations", "must be at least 8 (the history is split 50/25/25)");
        }
        if !["thompson", "greedy"].contains(&self.routing_strategy.as_str()) {
            return bad("routing_strategy", "expected \"thompson\" or \"greedy\"");
        }
        if !(1..=100_000).contains(&self.routing_samples) {
            return bad("routing_samples", "must lie in 1..=100000");
        }
        Ok(())
    }

    fn config_keys() -> Vec<ConfigKey> {
        let d = serde_json::to_value(Config::default()).expect("serializable");
        let docs: [(&str, &str); 29] = [
            ("weights", "weights of accuracy, consistency, timeliness, reliability in the overall trust (sum 1)"),
            ("confidence_k", "confidence factor n / (n + confidence_k), n = effective evaluations"),
            ("learning_rate", "the seed's per-dimension update v += learning_rate·(signal − v)"),
            ("prior_alpha", "Beta prior α of an agent's approval probability"),
            ("prior_beta", "Beta prior β"),
            ("credible_level", "credibility level of the intervals"),
            ("timeliness_half_life_hours", "evaluation latency at which the timeliness score halves"),
            ("inactivity_grace_days", "idle days (relative to the newest event) before an agent's evidence fades"),
            ("inactivity_half_life_days", "half-life of an idle agent's evidence after the grace period"),
            ("decline_window", "evaluations per block of the change test behind an agent's trend"),
            ("decline_min_history", "evaluations an agent needs before a block for the block to be tested"),
            (
                "decline_fdr",
                "Benjamini–Hochberg false-discovery rate over agents per trust_recalculation (declining/improving)",
            ),
            (
                "decline_shrinkage",
                "pseudo-evaluations shrinking an agent × type rate towards the agent's rate in the change test",
            ),
            ("trusted_threshold", "default threshold of GET /trusted"),
            ("routing_strategy", "default POST /route strategy: thompson or greedy"),
            ("routing_samples", "Monte Carlo draws estimating Thompson selection probabilities"),
            (
                "routing_explore_k",
                "thompson routing explores with probability k / (k + n), n = the leader's evaluations of the type",
            ),
            ("lookback_days", "pattern discovery window, days back from the newest event"),
            ("min_pattern_confidence", "patterns below this confidence are pruned"),
            ("min_pattern_support", "patterns need at least this many observations"),
            ("high_confidence_threshold", "stated confidence that makes a recommendation high_confidence"),
            ("expert_approval_rate", "approval rate above which an agent is an expert_opinion pattern"),
            ("failure_rate", "rejection rate at or above which an agent × type is a failure_avoidance pattern"),
            ("success_indicator_rate", "approval rate at or above which an agent × type is a success_indicator"),
            ("learning_trigger_outcomes", "new evaluations since the last cycle that trigger a learning cycle"),
            (
                "retention_days",
                "cleanup prunes plugin state about recommendations older than this (events are never deleted)",
            ),
            ("weights_lookback_days", "meta_learning learns the trust weights from this many days of history"),
            ("weights_min_evaluations", "least final evaluations in that history before weights are learned"),
            ("weights_min", "least value of each learned weight"),
        ];
        ConfigKey::documented(&d, &docs)
    }
}

/// The workspace-wide document `meta`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// Newest event time seen (µs); the plugin's notion of "now".
    pub newest: i64,
    /// Recommendations seen.
    pub recommendations: u64,
    /// Final evaluations seen.
    pub evaluated: u64,
    /// Approved (partial = half) among them.
    pub approved: f64,
}

/// An in-flight recommendation: `open/<prediction id>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Open {
    t: Option<i64>,
    c: Option<f64>,
}

/// The plugin.
#[derive(Debug, Default)]
pub struct TrustPlugin {
    config: Config,
}

pub(crate) use learnloop_plugin_api::state::{get_doc, put_doc};

/// Every agent document, in agent order.
pub fn load_agents(ctx: &mut dyn Context) -> Result<BTreeMap<String, AgentDoc>, PluginError> {
    let mut out = BTreeMap::new();
    let mut after: Option<String> = None;
    loop {
        let page = ctx.scan_state("agent/", after.as_deref(), 1000)?;
        let Some((last, _)) = page.last() else { break };
        after = Some(last.clone());
        for (k, s) in page {
            out.insert(k["agent/".len()..].to_string(), serde_json::from_value(s.value)?);
        }
    }
    Ok(out)
}

pub(crate) use learnloop_plugin_api::state::get_value as get_doc_value;

fn ts(us: i64) -> Value {
    Timestamp::from_micros(us).map_or(Value::Null, |t| Value::String(t.to_rfc3339()))
}

fn q_f64(req: &RouteRequest, name: &str, default: f64) -> Result<f64, PluginError> {
    match req.query.get(name) {
        None => Ok(default),
        Some(s) => s
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| PluginError::invalid(name, format!("{s:?} is not a number"))),
    }
}

impl TrustPlugin {
    /// The config with the trust weights in force (the improvement
    /// lifecycle's applied `weights`, else the configured ones) and their
    /// version (0: the configured weights).
    pub fn effective(&self, ctx: &mut dyn Context) -> Result<(Config, u64), PluginError> {
        let mut cfg = self.config.clone();
        match learnloop_plugin_api::applied(ctx, weights::TARGET)? {
            Some(a) => {
                cfg.weights = weights::from_params(Some(&a.params), &self.config)?;
                Ok((cfg, a.version))
            }
            None => Ok((cfg, 0)),
        }
    }

    fn meta(ctx: &mut dyn Context) -> Result<Meta, PluginError> {
        Ok(get_doc::<Meta>(ctx, "meta")?.0)
    }

    fn agent_json(cfg: &Config, id: &str, a: &AgentDoc, newest: i64) -> Value {
        let s = a.all.score(cfg, newest);
        let mut v = s.to_json(cfg.credible_level);
        let o = v.as_object_mut().expect("object");
        o.insert("agent_id".into(), json!(id));
        o.insert("agent_name".into(), json!(a.name));
        o.insert("trend".into(), json!(a.trend()));
        o.insert(
            "change_test".into(),
            json!({"blocks_tested": a.change.blocks - a.change.untested, "blocks_pending": a.change.untested,
            "last_block_z": a.change.last_z, "adjusted_p": a.change.adjusted_p, "window": cfg.decline_window}),
        );
        o.insert("ewma".into(), json!({"fast": a.fast.value(), "slow": a.slow.value()}));
        o.insert("recommendation_strength".into(), json!(strength(s.accuracy)));
        o.insert("approval_rate".into(), json!(a.all.approval_rate()));
        o.insert("stats".into(), a.all.to_json());
        o.insert("last_event_time".into(), ts(a.all.last_time));
        v
    }

    fn profile(cfg: &Config, id: &str, a: &AgentDoc, newest: i64) -> Value {
        let base = a.all.score(cfg, newest).accuracy;
        let mut by_type = serde_json::Map::new();
        let (mut strengths, mut weaknesses) = (Vec::new(), Vec::new());
        for (kind, c) in &a.types {
            let s = c.score(cfg, newest);
            if c.evaluated >= 5 {
                if s.accuracy >= base + 0.05 {
                    strengths.push(json!({"recommendation_type": kind, "approval": s.accuracy, "credible_interval": [s.lower, s.upper], "evaluated": c.evaluated}));
                } else if s.accuracy <= base - 0.05 {
                    weaknesses.push(json!({"recommendation_type": kind, "approval": s.accuracy, "credible_interval": [s.lower, s.upper], "evaluated": c.evaluated}));
                }
            }
            let mut v = s.to_json(cfg.credible_level);
            v.as_object_mut().expect("object").insert("stats".into(), c.to_json());
            by_type.insert(kind.clone(), v);
        }
        let mut v = Self::agent_json(cfg, id, a, newest);
        let o = v.as_object_mut().expect("object");
        o.insert("learning_rate_scores".into(), serde_json::to_value(&a.learning_rate).expect("plain"));
        o.insert("by_type".into(), Value::Object(by_type));
        o.insert("strengths".into(), json!(strengths));
        o.insert("weaknesses".into(), json!(weaknesses));
        v
    }

    fn recommendations(
        &self,
        ctx: &mut dyn Context,
        req: &RouteRequest,
        agent: &str,
    ) -> Result<RouteResponse, PluginError> {
        let limit = match req.query.get("limit") {
            None => 50,
            Some(s) => s
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| PluginError::invalid("limit", "expected an integer in 1..=1000"))?,
        };
        let after = match req.query.get("after") {
            None => None,
            Some(s) => Some(
                s.parse().map_err(|_| PluginError::invalid("after", "not a cursor this route handed out (`next`)"))?,
            ),
        };
        // Oldest first by event time; `next` continues with `after`.
        let q = EventQuery {
            subject: Some(agent.to_string()),
            kind: req.query.get("type").cloned(),
            order: Order::EventTime,
            limit,
            after,
            ..Default::default()
        };
        let page = ctx.predictions(&q)?;
        let mut items = Vec::new();
        for p in &page.items {
            items.push(Self::recommendation_json(ctx, p)?);
        }
        Ok(RouteResponse::ok(
            json!({"agent_id": agent, "recommendations": items, "next": page.next.map(|c| c.to_string())}),
        ))
    }

    /// A recommendation with every evaluation it received (oldest first).
    fn recommendation_json(
        ctx: &mut dyn Context,
        p: &learnloop_plugin_api::StoredPrediction,
    ) -> Result<Value, PluginError> {
        let outs = ctx.outcomes(&EventQuery {
            prediction_id: Some(p.record.id.clone()),
            limit: EventQuery::MAX_LIMIT,
            ..Default::default()
        })?;
        let r = &p.record;
        Ok(json!({
            "recommendation_id": r.id, "agent_id": r.subject, "agent_name": r.payload.get("agent_name"),
            "recommendation_type": r.kind, "confidence": r.confidence, "label": r.label, "payload": r.payload,
            "event_time": r.event_time.map(|t| t.to_rfc3339()),
            "status": outs.items.last().map(|o| outcome_label(o.record.label.as_deref(), o.record.success, o.record.quality)).unwrap_or("pending"),
            "outcomes": outs.items.iter().map(|o| json!({
                "outcome_id": o.record.id, "status": o.record.label, "success": o.record.success,
                "quality": o.record.quality, "overall_quality_score": o.record.quality.map(|q| q * 100.0),
                "feedback": o.record.feedback, "payload": o.record.payload,
                "event_time": o.record.event_time.map(|t| t.to_rfc3339()),
            })).collect::<Vec<_>>(),
        }))
    }

    fn learning_status(&self, ctx: &mut dyn Context) -> Result<Value, PluginError> {
        let meta = Self::meta(ctx)?;
        let learning = ctx.get_state("learning")?.map(|s| s.value).unwrap_or(Value::Null);
        let last = learning["evaluated_at_last_cycle"].as_u64().unwrap_or(0);
        let new = meta.evaluated.saturating_sub(last);
        let patterns = ctx.get_state("patterns")?.map(|s| s.value).unwrap_or(Value::Null);
        Ok(json!({
            "should_trigger_learning_cycle": new >= self.config.learning_trigger_outcomes,
            "new_evaluations_since_last_cycle": new,
            "learning_trigger_outcomes": self.config.learning_trigger_outcomes,
            "cycles": learning["cycles"].as_u64().unwrap_or(0),
            "last_cycle": learning.get("last_result").cloned().unwrap_or(Value::Null),
            "patterns": patterns["patterns"].as_array().map_or(0, Vec::len),
            "model_accuracy": patterns.get("accuracy").cloned().unwrap_or(Value::Null),
            "model_coverage": patterns.get("coverage").cloned().unwrap_or(Value::Null),
            "targets": {"accuracy": 0.80, "coverage": 0.70},
            "totals": {"recommendations": meta.recommendations, "evaluated": meta.evaluated},
            "newest_event_time": ts(meta.newest),
        }))
    }

    /// Pattern discovery + bookkeeping shared by meta_learning and pattern_refresh.
    fn run_patterns(&self, ctx: &mut dyn Context, cycle: bool) -> Result<Value, PluginError> {
        let cfg = &self.config;
        let meta = Self::meta(ctx)?;
        let until =
            Timestamp::from_micros(meta.newest.saturating_add(1)).unwrap_or(Timestamp::from_micros(0).expect("epoch"));
        let from = Timestamp::from_micros((meta.newest as f64 - cfg.lookback_days * DAY) as i64)
            .unwrap_or(Timestamp::from_micros(0).expect("epoch"));
        let d = patterns::discover(ctx, cfg, from, until)?;
        let (old, expect) = get_doc::<Value>(ctx, "patterns")?;
        let old_ids: std::collections::BTreeSet<String> = old["patterns"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["id"].as_str().map(str::to_string))
            .collect();
        let confirmed = d.patterns.iter().filter(|p| old_ids.contains(&p.id)).count();
        let dropped = old_ids.iter().filter(|id| !d.patterns.iter().any(|p| &p.id == *id)).count();
        let old_conf = old["mean_confidence"].as_f64();
        let mean_conf = (!d.patterns.is_empty())
            .then(|| d.patterns.iter().map(|p| p.confidence).sum::<f64>() / d.patterns.len() as f64);
        let old_acc = old["accuracy"].as_f64();
        let rules = d
            .patterns
            .iter()
            .filter(|p| ["success_indicator", "failure_avoidance", "expert_opinion"].contains(&p.category.as_str()))
            .count();
        put_doc(
            ctx,
            "patterns",
            &json!({
                "patterns": d.patterns, "accuracy": d.accuracy, "coverage": d.coverage, "mean_confidence": mean_conf,
                "window": {"from": ts(from.as_micros()), "until": ts(meta.newest)}, "samples": d.samples,
            }),
            expect,
        )?;
        let count = |c: &str| d.patterns.iter().filter(|p| p.category == c).count();
        let experts = count("expert_opinion");
        let failures = count("failure_avoidance");
        let mut insights = Vec::new();
        let mut recs = Vec::new();
        if experts > 0 {
            insights.push(format!("Identified {experts} expert agents with high approval rates"));
            recs.push("Route recommendations through expert agents".to_string());
        }
        if let Some(p) = d.patterns.iter().find(|p| p.category == "consensus") {
            insights.push(format!(
                "Multi-agent consensus leads to approval {:.0}% of the time ({} recommendations)",
                p.success_rate * 100.0,
                p.frequency
            ));
            if p.predicts == "approved" {
                recs.push("Increase use of multi-agent consensus for critical decisions".into());
            }
        }
        if let Some(p) = d.patterns.iter().find(|p| p.category == "high_confidence") {
            insights.push(format!(
                "High-confidence recommendations are approved {:.0}% of the time",
                p.success_rate * 100.0
            ));
        }
        if failures > 0 {
            insights.push(format!("{failures} agent × type combinations are mostly rejected"));
            recs.push("Provide additional training to weak-area agents, and route those types elsewhere".into());
        }
        if let (Some(a), Some(c)) = (d.accuracy, d.coverage)
            && (a < 0.8 || c < 0.7)
        {
            recs.push(format!(
                "Patterns are below target (accuracy {a:.2} vs 0.80, coverage {c:.2} vs 0.70): collect more evaluations"
            ));
        }
        let totals = json!({"predictions": d.recommendations, "outcomes": d.samples});
        let mut report = json!({
            "samples_analyzed": d.samples,
            "patterns_discovered": d.patterns.len(),
            "patterns_confirmed": confirmed,
            "patterns_pruned": d.pruned + dropped,
            "rules_updated": rules,
            "iteration_accuracy": d.accuracy,
            "coverage": d.coverage,
            "pattern_confidence_improvement": match (mean_conf, old_conf) { (Some(a), Some(b)) => json!(a - b), _ => Value::Null },
            "rule_effectiveness_improvement": match (d.accuracy, old_acc) { (Some(a), Some(b)) => json!(a - b), _ => Value::Null },
            "key_insights": insights,
            "recommendations_for_swarm": recs,
            "window": {"from": ts(from.as_micros()), "until": ts(meta.newest), "lookback_days": cfg.lookback_days},
            "subjects": d.agents,
            "totals": totals,
            "success_rate": d.success_rate,
            "note": "timings are in the host's job-run record; reports carry no wall-clock time so replays are identical",
        });
        if cycle {
            let (mut learning, expect) = get_doc::<Value>(ctx, "learning")?;
            if learning.is_null() {
                learning = json!({});
            }
            let cycles = learning["cycles"].as_u64().unwrap_or(0) + 1;
            let ws = ctx.workspace().to_string();
            report["iteration_id"] = json!(format!("iter_{ws}_{}", meta.newest / 1_000_000));
            report["workspace_id"] = json!(ws);
            report["iteration"] = json!(cycles);
            learning["cycles"] = json!(cycles);
            learning["evaluated_at_last_cycle"] = json!(meta.evaluated);
            let (effective, weights_version) = self.effective(ctx)?;
            let learned = weights::learn(ctx, &self.config, &effective.weights, meta.newest)?;
            report["weights"] = json!({"in_force": effective.weights, "version": weights_version, "learning": learned});
            let (rules_in_force, rules_version) = rules::in_force(ctx)?;
            let learned = rules::learn(ctx, &self.config, &rules_in_force, meta.newest)?;
            report["rules"] =
                json!({"in_force": rules_in_force.rules.len(), "version": rules_version, "learning": learned});
            learning["last_result"] = report.clone();
            put_doc(ctx, "learning", &learning, expect)?;
            ctx.emit_insight(InsightDraft {
                kind: "learning_cycle".into(),
                title: format!("trust: {} patterns from {} evaluated recommendations", d.patterns.len(), d.samples),
                detail: report["key_insights"]
                    .as_array()
                    .map(|v| v.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("; "))
                    .unwrap_or_default(),
                confidence: mean_conf.unwrap_or(0.0),
                impact: 0.0,
                data: report.clone(),
            })?;
        }
        Ok(report)
    }

    fn trust_recalculation(&self, ctx: &mut dyn Context) -> Result<Value, PluginError> {
        let (cfg, weights_version) = self.effective(ctx)?;
        let cfg = &cfg;
        let meta = Self::meta(ctx)?;
        let agents = load_agents(ctx)?;
        let (old, expect) = get_doc::<Value>(ctx, "trust_snapshot")?;
        let mut snap = serde_json::Map::new();
        let mut changes = Vec::new();
        for (id, a) in &agents {
            let s = a.all.score(cfg, meta.newest);
            if let Some(prev) = old["agents"][id]["overall"].as_f64() {
                changes.push((id.clone(), s.overall - prev));
            }
            snap.insert(id.clone(), json!({"overall": s.overall, "accuracy": s.accuracy, "lower": s.lower, "upper": s.upper, "trend": a.trend()}));
        }
        let trusted = snap.values().filter(|v| v["overall"].as_f64().unwrap_or(0.0) >= cfg.trusted_threshold).count();
        put_doc(ctx, "trust_snapshot", &json!({"agents": snap, "as_of": ts(meta.newest)}), expect)?;
        changes.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()).then(a.0.cmp(&b.0)));
        // The change test: the blocks completed since the last run, one
        // Benjamini–Hochberg family over agents per direction (score::verdicts).
        let mut pending = Vec::new();
        let mut docs = BTreeMap::new();
        for id in agents.iter().filter(|(_, a)| a.change.untested > 0).map(|(id, _)| id) {
            let (doc, expect) = get_doc::<AgentDoc>(ctx, &format!("agent/{id}"))?;
            if let Some((pd, pi)) = doc.change.pending() {
                pending.push((id.clone(), pd, pi));
                docs.insert(id.clone(), (doc, expect));
            }
        }
        let verdicts = score::verdicts(&pending, cfg.decline_fdr);
        let mut declining = Vec::new();
        let mut improving = Vec::new();
        for ((id, status, adj), (_, p_dec, _)) in verdicts.iter().zip(&pending) {
            let (mut doc, expect) = docs.remove(id).expect("loaded above");
            let was = doc.change.status.clone();
            doc.change.decide(status, *adj);
            let z = doc.change.last_z;
            put_doc(ctx, &format!("agent/{id}"), &doc, expect)?;
            match *status {
                "declining" => {
                    declining.push(id.clone());
                    if was.as_deref() != Some("declining") {
                        ctx.emit_alert(AlertDraft {
                            severity: Severity::Medium,
                            kind: "trust_declining".into(),
                            subject: id.clone(),
                            message: format!(
                                "{id}: its recent approvals fall significantly below what its history predicts for the same recommendation types (p = {p_dec:.2e}, Benjamini–Hochberg adjusted {adj:.2e} ≤ {}); its trust is declining",
                                cfg.decline_fdr
                            ),
                            dedup_key: format!("trust_declining:{id}"),
                            data: json!({"p_value": p_dec, "adjusted_p": adj, "fdr": cfg.decline_fdr, "block_z": z, "window": cfg.decline_window, "evaluated": doc.all.evaluated}),
                        })?;
                    }
                }
                "improving" => improving.push(id.clone()),
                _ => {}
            }
        }
        // Agents whose last verdict (from an earlier run) is still declining.
        let still: Vec<&String> = agents
            .iter()
            .filter(|(id, a)| a.change.untested == 0 && a.trend() == "declining" && !declining.contains(id))
            .map(|(id, _)| id)
            .collect();
        let mut all_declining: Vec<String> = declining.clone();
        all_declining.extend(still.into_iter().cloned());
        all_declining.sort();
        let rate = (meta.evaluated > 0).then(|| meta.approved / meta.evaluated as f64);
        Ok(json!({
            "subjects": agents.len(),
            "totals": {"predictions": meta.recommendations, "outcomes": meta.evaluated},
            "success_rate": rate,
            "trusted_agents": trusted,
            "trusted_threshold": cfg.trusted_threshold,
            "declining_agents": all_declining,
            "change_test": {"agents_tested": pending.len(), "newly_declining": declining, "improving": improving, "fdr": cfg.decline_fdr, "window": cfg.decline_window},
            "largest_changes": changes.iter().take(10).map(|(id, d)| json!({"agent_id": id, "change": d})).collect::<Vec<_>>(),
            "as_of": ts(meta.newest),
            "weights_version": weights_version,
        }))
    }

    fn cleanup(&self, ctx: &mut dyn Context) -> Result<Value, PluginError> {
        let meta = Self::meta(ctx)?;
        let cutoff = meta.newest - (self.config.retention_days * DAY) as i64;
        let mut pruned = 0u64;
        let mut kept = 0u64;
        let mut after: Option<String> = None;
        loop {
            let page = ctx.scan_state("open/", after.as_deref(), 1000)?;
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            for (k, s) in page {
                let o: Open = serde_json::from_value(s.value)?;
                if o.t.is_some_and(|t| t < cutoff) {
                    ctx.delete_state(&k, Expect::Version(s.version))?;
                    pruned += 1;
                } else {
                    kept += 1;
                }
            }
        }
        Ok(json!({
            "pruned_unevaluated_recommendations": pruned,
            "kept_unevaluated_recommendations": kept,
            "retention_days": self.config.retention_days,
            "cutoff": ts(cutoff),
            "note": "events are never deleted (the host owns history); cleanup only forgets the plugin's in-flight state about recommendations older than retention_days that were never evaluated, so a late evaluation of one of them gets no timeliness score",
            "subjects": 0,
            "totals": {"predictions": meta.recommendations, "outcomes": meta.evaluated},
        }))
    }
}

/// The client's event time (µs), or `None` when the store stamped the
/// ingestion time because the client sent none (then both are equal). State
/// must be reproducible from history on any machine at any time, so the
/// plugin never lets an ingestion time into its state: such an event has no
/// time for timeliness, inactivity or the plugin's clock.
fn client_time(event_time: Option<Timestamp>, ingested_at: Timestamp) -> Option<i64> {
    event_time.filter(|t| *t != ingested_at).map(Timestamp::as_micros)
}

fn outcome_label(label: Option<&str>, success: Option<bool>, quality: Option<f64>) -> &'static str {
    match label {
        Some("approved") => "approved",
        Some("rejected") => "rejected",
        Some("partial") => "partial",
        Some(_) => "pending",
        None => match (success, quality) {
            (Some(true), _) => "approved",
            (Some(false), _) => "rejected",
            (None, Some(q)) if q >= 0.5 => "approved",
            (None, Some(_)) => "rejected",
            (None, None) => "pending",
        },
    }
}

impl Plugin for TrustPlugin {
    fn manifest(&self) -> Manifest {
        let route = RouteSpec::new;
        let job = JobSpec::new;
        Manifest {
            name: "trust".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            abi_version: abi::ABI_VERSION,
            description: "Learns how far to trust each agent of a swarm from how its recommendations were judged (seed 001): trust scores (accuracy, consistency, timeliness, reliability, Beta posteriors with credible intervals, trend), agent profiles, pattern discovery and Thompson-sampling routing.".into(),
            kinds: vec![
                KindSpec {
                    record_type: RecordType::Prediction,
                    kinds: vec![],
                    payload_schema: json!({"type": "object", "properties": {
                        "agent_name": {"type": "string"}, "workflow_id": {"type": "string"}, "correlation_id": {"type": "string"},
                        "content": {}, "reasoning": {"type": "string"}, "evidence": {}}}),
                    description: "an agent's recommendation: subject = agent id, kind = recommendation type, confidence in [0, 1]".into(),
                },
                KindSpec {
                    record_type: RecordType::Outcome,
                    kinds: vec![],
                    payload_schema: json!({"type": "object", "properties": {"quality_scores": {"type": "object"}}}),
                    description: "its evaluation: label approved/rejected/partial/pending, success, quality in [0, 1] (= overall quality 0–100 / 100), feedback".into(),
                },
            ],
            routes: vec![
                route("GET", "/agents", "Trust scores and stats of every agent, most trusted first", false, Value::Null),
                route("GET", "/agents/{agent}", "An agent's profile: trust, Beta posterior, trend, strengths and weaknesses by recommendation type", false, Value::Null),
                route("GET", "/agents/{agent}/recommendations", "An agent's recommendations with their evaluations, oldest first (query: type, limit ≤ 1000, after = the previous page's next)", false, Value::Null),
                route("GET", "/recommendations/{id}", "One recommendation with its evaluations and current status", false, Value::Null),
                route("GET", "/agents/{agent}/boost", "Decision boost for an agent and recommendation type (query: type)", false, Value::Null),
                route("GET", "/trusted", "Agents whose overall trust is at least `threshold` (query; default trusted_threshold)", false, Value::Null),
                route("POST", "/route", "Rank candidate agents for a recommendation type and pick one (Thompson sampling or greedy); logs selection probabilities as an insight", true,
                    json!({"type": "object", "required": ["recommendation_type", "candidates"], "properties": {
                        "recommendation_type": {"type": "string"}, "candidates": {"type": "array", "items": {"type": "string"}},
                        "strategy": {"enum": ["thompson", "greedy"]}, "seed": {"type": "integer"}}})),
                route("GET", "/patterns", "Discovered patterns (query: category)", false, Value::Null),
                route("GET", "/rules", "Decision rules suggested from the patterns, optionally for one recommendation type (query: type)", false, Value::Null),
                route("GET", "/learning/status", "should_trigger_learning_cycle, the last cycle and model accuracy/coverage", false, Value::Null),
                route("GET", "/stats", "Statistics of the whole learning system", false, Value::Null),
            ],
            jobs: vec![
                job("meta_learning", "0 0 2 * * *", "Daily learning cycle: pattern discovery over the lookback window, model accuracy and coverage, key insights"),
                job("trust_recalculation", "0 0 */6 * * *", "Every 6 h: recompute every agent's trust (inactivity decay included), record a snapshot, alert on declining agents"),
                job("pattern_refresh", "0 0 1 * * *", "Daily: re-validate patterns and prune those below min_pattern_confidence"),
                job("cleanup", "0 0 3 * * SUN", "Weekly: forget in-flight state of recommendations older than retention_days (never deletes events)"),
            ],
            config: Config::config_keys(),
        }
    }

    fn configure(&mut self, section: &Value) -> Result<(), PluginError> {
        let c: Config = parse_config("trust", section)?;
        c.check()?;
        self.config = c;
        Ok(())
    }

    fn validate(&self, record: &Record) -> Result<(), ValidationError> {
        match record {
            Record::Outcome(o) => {
                if let Some(label) = &o.label
                    && !["approved", "rejected", "partial", "pending"].contains(&label.as_str())
                {
                    return Err(ValidationError::new(
                        "label",
                        format!("{label:?} is not a status; expected approved, rejected, partial or pending"),
                    ));
                }
                if let Some(q) = o.quality
                    && !(0.0..=1.0).contains(&q)
                {
                    return Err(ValidationError::new(
                        "quality",
                        "must lie in [0, 1] (overall quality 0–100 divided by 100)",
                    ));
                }
            }
            Record::Prediction(p) => {
                if let Some(c) = p.confidence
                    && !(0.0..=1.0).contains(&c)
                {
                    return Err(ValidationError::new("confidence", "must lie in [0, 1]"));
                }
            }
        }
        Ok(())
    }

    fn on_events(&self, ctx: &mut dyn Context, events: &[Event]) -> Result<(), PluginError> {
        let cfg = &self.config;
        let (mut meta, meta_expect) = get_doc::<Meta>(ctx, "meta")?;
        let mut agents: BTreeMap<String, (AgentDoc, Expect)> = BTreeMap::new();
        for e in events {
            let agent = match e {
                Event::Prediction(p) => &p.record.subject,
                Event::Outcome(o) => &o.subject,
            };
            if !agents.contains_key(agent) {
                let doc = get_doc::<AgentDoc>(ctx, &format!("agent/{agent}"))?;
                agents.insert(agent.clone(), doc);
            }
            let a = &mut agents.get_mut(agent).expect("loaded").0;
            match e {
                Event::Prediction(p) => {
                    let r = &p.record;
                    let t = client_time(r.event_time, p.ingested_at);
                    meta.newest = meta.newest.max(t.unwrap_or(0));
                    meta.recommendations += 1;
                    if let Some(n) = r.payload.get("agent_name").and_then(Value::as_str) {
                        a.name = Some(n.to_string());
                    }
                    a.all.recommendations += 1;
                    a.all.last_time = a.all.last_time.max(t.unwrap_or(0));
                    let c = a.types.entry(r.kind.clone()).or_default();
                    c.recommendations += 1;
                    c.last_time = c.last_time.max(t.unwrap_or(0));
                    put_doc(ctx, &format!("open/{}", r.id.as_str()), &Open { t, c: r.confidence }, Expect::Any)?;
                }
                Event::Outcome(o) => {
                    let r = &o.record;
                    let t = client_time(r.event_time, o.ingested_at);
                    meta.newest = meta.newest.max(t.unwrap_or(0));
                    let label = outcome_label(r.label.as_deref(), r.success, r.quality);
                    if label == "pending" {
                        a.all.pending += 1;
                        a.types.entry(o.kind.clone()).or_default().pending += 1;
                        continue;
                    }
                    let y = match label {
                        "approved" => 1.0,
                        "partial" => 0.5,
                        _ => 0.0,
                    };
                    let key = format!("open/{}", r.prediction_id.as_str());
                    let open = match ctx.get_state(&key)? {
                        Some(s) => {
                            ctx.delete_state(&key, Expect::Version(s.version))?;
                            Some(serde_json::from_value::<Open>(s.value)?)
                        }
                        None => None,
                    };
                    let latency = match (open.as_ref().and_then(|o| o.t), t) {
                        (Some(from), Some(to)) => Some(((to - from) as f64 / HOUR).max(0.0)),
                        _ => None,
                    };
                    let conf = open.as_ref().and_then(|o| o.c);
                    a.evaluate(&o.kind, label, y, r.quality.unwrap_or(y), latency, conf, cfg, t.unwrap_or(0));
                    meta.evaluated += 1;
                    meta.approved += y;
                }
            }
        }
        for (agent, (doc, expect)) in agents {
            put_doc(ctx, &format!("agent/{agent}"), &doc, expect)?;
        }
        put_doc(ctx, "meta", &meta, meta_expect)
    }

    fn run_job(&self, ctx: &mut dyn Context, job: &str) -> Result<Value, PluginError> {
        match job {
            "meta_learning" => self.run_patterns(ctx, true),
            "pattern_refresh" => self.run_patterns(ctx, false),
            "trust_recalculation" => self.trust_recalculation(ctx),
            "cleanup" => self.cleanup(ctx),
            other => Err(PluginError::invalid("job", format!("unknown job {other:?}"))),
        }
    }

    fn handle(&self, ctx: &mut dyn Context, req: &RouteRequest) -> Result<RouteResponse, PluginError> {
        let (cfg, weights_version) = self.effective(ctx)?;
        let cfg = &cfg;
        match (req.method.as_str(), req.route.as_str()) {
            ("GET", "/agents") => {
                let meta = Self::meta(ctx)?;
                let agents = load_agents(ctx)?;
                let mut list: Vec<Value> =
                    agents.iter().map(|(id, a)| Self::agent_json(cfg, id, a, meta.newest)).collect();
                sort_by_trust(&mut list);
                Ok(RouteResponse::ok(
                    json!({"agents": list, "as_of": ts(meta.newest), "weights": cfg.weights, "weights_version": weights_version}),
                ))
            }
            ("GET", "/agents/{agent}") => {
                let id = req.param("agent")?;
                let meta = Self::meta(ctx)?;
                let s = ctx
                    .get_state(&format!("agent/{id}"))?
                    .ok_or_else(|| PluginError::not_found(format!("no agent {id:?}")))?;
                let a: AgentDoc = serde_json::from_value(s.value)?;
                let mut v = Self::profile(cfg, id, &a, meta.newest);
                v["weights_version"] = json!(weights_version);
                Ok(RouteResponse::ok(v))
            }
            ("GET", "/agents/{agent}/recommendations") => {
                let id = req.param("agent")?.to_string();
                self.recommendations(ctx, req, &id)
            }
            ("GET", "/recommendations/{id}") => {
                let raw = req.param("id")?;
                let id = learnloop_plugin_api::core::RecordId::parse("id", raw)
                    .map_err(|e| PluginError::invalid(e.field, e.message))?;
                let page = ctx.predictions(&EventQuery { id: Some(id), limit: 1, ..Default::default() })?;
                let p =
                    page.items.first().ok_or_else(|| PluginError::not_found(format!("no recommendation {raw:?}")))?;
                Ok(RouteResponse::ok(Self::recommendation_json(ctx, p)?))
            }
            ("GET", "/agents/{agent}/boost") => {
                let id = req.param("agent")?;
                let kind = req.query.get("type").ok_or_else(|| PluginError::invalid("type", "is required"))?;
                let meta = Self::meta(ctx)?;
                let a: AgentDoc = match ctx.get_state(&format!("agent/{id}"))? {
                    Some(s) => serde_json::from_value(s.value)?,
                    None => AgentDoc::default(),
                };
                let c = a.types.get(kind).cloned().unwrap_or_default();
                let s = c.score(cfg, meta.newest);
                // Boost: how far the posterior approval is from a coin flip,
                // shrunk by the confidence factor: in [−0.5, 0.5].
                let boost = (s.accuracy - 0.5) * s.confidence_factor;
                Ok(RouteResponse::ok(
                    json!({"agent_id": id, "recommendation_type": kind, "boost": boost, "trust": s.to_json(cfg.credible_level)}),
                ))
            }
            ("GET", "/trusted") => {
                let threshold = q_f64(req, "threshold", cfg.trusted_threshold)?;
                if !(0.0..=1.0).contains(&threshold) {
                    return Err(PluginError::invalid("threshold", "must lie in [0, 1]"));
                }
                let meta = Self::meta(ctx)?;
                let agents = load_agents(ctx)?;
                let mut list: Vec<Value> = agents
                    .iter()
                    .map(|(id, a)| Self::agent_json(cfg, id, a, meta.newest))
                    .filter(|v| v["overall_trust_score"].as_f64().unwrap_or(0.0) >= threshold)
                    .collect();
                sort_by_trust(&mut list);
                Ok(RouteResponse::ok(
                    json!({"threshold": threshold, "agents": list, "weights_version": weights_version}),
                ))
            }
            ("POST", "/route") => route::route(self, ctx, req),
            ("GET", "/patterns") => {
                let p = ctx.get_state("patterns")?.map(|s| s.value).unwrap_or(json!({"patterns": []}));
                let cats = ["high_confidence", "consensus", "expert_opinion", "failure_avoidance", "success_indicator"];
                let mut list: Vec<Value> = p["patterns"].as_array().cloned().unwrap_or_default();
                if let Some(c) = req.query.get("category") {
                    if !cats.contains(&c.as_str()) {
                        return Err(PluginError::invalid("category", format!("expected one of {}", cats.join(", "))));
                    }
                    list.retain(|x| x["category"] == c.as_str());
                }
                Ok(RouteResponse::ok(
                    json!({"patterns": list, "accuracy": p["accuracy"], "coverage": p["coverage"], "window": p["window"]}),
                ))
            }
            ("GET", "/rules") => {
                let p = get_doc_value(ctx, "patterns")?;
                let kind = req.query.get("type").map(String::as_str);
                let mut rules = Vec::new();
                for pat in p["patterns"].as_array().into_iter().flatten() {
                    let pt = pat["recommendation_type"].as_str();
                    if kind.is_some() && pt.is_some() && pt != kind {
                        continue;
                    }
                    let agent = pat["agent"].as_str().unwrap_or("");
                    let (action, text) = match pat["category"].as_str().unwrap_or("") {
                        "success_indicator" => {
                            ("prefer", format!("route {} recommendations to {agent}", pt.unwrap_or("these")))
                        }
                        "failure_avoidance" => {
                            ("avoid", format!("do not route {} recommendations to {agent}", pt.unwrap_or("these")))
                        }
                        "expert_opinion" => {
                            ("boost", format!("weight {agent}'s recommendations up: an expert across types"))
                        }
                        "consensus" if pat["predicts"] == "approved" => {
                            ("require_consensus", "seek agreement of several agents for critical decisions".to_string())
                        }
                        "high_confidence" if pat["predicts"] == "approved" => {
                            ("trust_confidence", "high stated confidence is a reliable signal".to_string())
                        }
                        "consensus" | "high_confidence" => (
                            "distrust_signal",
                            format!("{} does not predict approval here", pat["category"].as_str().unwrap_or("")),
                        ),
                        _ => continue,
                    };
                    rules.push(json!({"action": action, "rule": text, "agent": pat["agent"], "recommendation_type": pat["recommendation_type"],
                        "confidence": pat["confidence"], "strength": pat["strength"], "success_rate": pat["success_rate"],
                        "frequency": pat["frequency"], "pattern": pat["id"]}));
                }
                rules.sort_by(|a, b| {
                    b["confidence"]
                        .as_f64()
                        .unwrap_or(0.0)
                        .total_cmp(&a["confidence"].as_f64().unwrap_or(0.0))
                        .then_with(|| a["pattern"].as_str().cmp(&b["pattern"].as_str()))
                });
                let (in_force, rules_version) = rules::in_force(ctx)?;
                let applied: Vec<&rules::Rule> =
                    in_force.rules.iter().filter(|r| kind.is_none_or(|k| r.recommendation_type == k)).collect();
                Ok(RouteResponse::ok(
                    json!({"recommendation_type": kind, "rules": rules, "in_force": applied, "rules_version": rules_version}),
                ))
            }
            ("GET", "/learning/status") => Ok(RouteResponse::ok(self.learning_status(ctx)?)),
            ("GET", "/stats") => {
                let meta = Self::meta(ctx)?;
                let agents = load_agents(ctx)?;
                let mut types: BTreeMap<String, score::Counts> = BTreeMap::new();
                for a in agents.values() {
                    for (k, c) in &a.types {
                        let t = types.entry(k.clone()).or_default();
                        t.recommendations += c.recommendations;
                        t.evaluated += c.evaluated;
                        t.pending += c.pending;
                        t.approved += c.approved;
                        t.partial += c.partial;
                        t.rejected += c.rejected;
                        t.s += c.s;
                        t.f += c.f;
                        t.q_sum += c.q_sum;
                    }
                }
                let trusted =
                    agents.values().filter(|a| a.all.score(cfg, meta.newest).overall >= cfg.trusted_threshold).count();
                let status = self.learning_status(ctx)?;
                Ok(RouteResponse::ok(json!({
                    "agents": agents.len(),
                    "trusted_agents": trusted,
                    "totals": {"recommendations": meta.recommendations, "evaluated": meta.evaluated,
                               "approval_rate": (meta.evaluated > 0).then(|| meta.approved / meta.evaluated as f64)},
                    "by_type": types.iter().map(|(k, c)| (k.clone(), c.to_json())).collect::<serde_json::Map<_, _>>(),
                    "learning": status,
                    "weights": cfg.weights,
                    "weights_version": weights_version,
                })))
            }
            _ => Err(PluginError::not_found(format!("no route {} {}", req.method, req.route))),
        }
    }

    fn score(
        &self,
        ctx: &mut dyn Context,
        request: &learnloop_plugin_api::ScoreRequest,
    ) -> Result<learnloop_plugin_api::Score, PluginError> {
        match request.target.as_str() {
            weights::TARGET => {
                let newest = Self::meta(ctx)?.newest;
                weights::score(ctx, &self.config, request, newest)
            }
            rules::TARGET => {
                let newest = Self::meta(ctx)?.newest;
                rules::score(ctx, &self.config, request, newest)
            }
            other => Err(PluginError::invalid("target", format!("the trust plugin has no parameter set {other:?}"))),
        }
    }
}

fn sort_by_trust(list: &mut [Value]) {
    list.sort_by(|a, b| {
        let (x, y) =
            (a["overall_trust_score"].as_f64().unwrap_or(0.0), b["overall_trust_score"].as_f64().unwrap_or(0.0));
        y.total_cmp(&x).then_with(|| a["agent_id"].as_str().cmp(&b["agent_id"].as_str()))
    });
}

impl TrustPlugin {
    /// The active config.
    pub fn config(&self) -> &Config {
        &self.config
    }
}

learnloop_plugin_api::export_plugin!(TrustPlugin, TrustPlugin::default);
