//! The `[trust]` config section: every key with its default, the checks a
//! section must pass, and the documented key list the manifest carries.

use learnloop_plugin_api::{ConfigKey, PluginError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Weights of the trust dimensions in the overall score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
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
    /// Evaluations per block of the change test's reference: the reference
    /// leaves out the agent's newest 10 blocks.
    pub decline_window: u64,
    /// Evaluations the reference needs before the agent is monitored.
    pub decline_min_history: u64,
    /// In-control average run length of the change test's CUSUMs: expected
    /// evaluations of an agent of constant quality between false alarms.
    pub decline_arl0: f64,
    /// The decline the CUSUM is tuned to: approval odds times this (< 1);
    /// an improvement is odds divided by it.
    pub decline_odds_ratio: f64,
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
            decline_min_history: 200,
            decline_arl0: 5e6,
            decline_odds_ratio: 0.3,
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
    /// The change test's CUSUM threshold for `decline_arl0` and
    /// `decline_odds_ratio` ([`crate::score::cusum_threshold`]).
    pub fn decline_threshold(&self) -> f64 {
        crate::score::cusum_threshold(self.decline_arl0, self.decline_odds_ratio)
    }

    pub(crate) fn check(&self) -> Result<(), PluginError> {
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
        if !(self.decline_arl0.is_finite() && self.decline_arl0 >= 100.0) {
            return bad("decline_arl0", "must be a finite number ≥ 100 (evaluations)");
        }
        if !(self.decline_odds_ratio.is_finite() && self.decline_odds_ratio > 0.0 && self.decline_odds_ratio < 1.0) {
            return bad("decline_odds_ratio", "must lie in (0, 1)");
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

    pub(crate) fn config_keys() -> Vec<ConfigKey> {
        let d = serde_json::to_value(Config::default()).expect("serializable");
        let docs: [(&str, &str); 30] = [
            ("weights", "weights of accuracy, consistency, timeliness, reliability in the overall trust (sum 1)"),
            ("confidence_k", "confidence factor n / (n + confidence_k), n = effective evaluations"),
            ("learning_rate", "the seed's per-dimension update v += learning_rate·(signal − v)"),
            ("prior_alpha", "Beta prior α of an agent's approval probability"),
            ("prior_beta", "Beta prior β"),
            ("credible_level", "credibility level of the intervals"),
            ("timeliness_half_life_hours", "evaluation latency at which the timeliness score halves"),
            ("inactivity_grace_days", "idle days (relative to the newest event) before an agent's evidence fades"),
            ("inactivity_half_life_days", "half-life of an idle agent's evidence after the grace period"),
            ("decline_window", "evaluations per block; the change test's reference leaves out the newest 10 blocks"),
            ("decline_min_history", "evaluations the change test's reference needs before an agent is monitored"),
            (
                "decline_arl0",
                "in-control average run length of the change test: evaluations of a constant agent per false alarm",
            ),
            ("decline_odds_ratio", "the decline the change test is tuned to: approval odds times this (< 1)"),
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
