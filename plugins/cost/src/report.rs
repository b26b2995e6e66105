//! The typed shapes of what the cost plugin stores beside its aggregates
//! (`learning`, `insights`) and of what its learning routes answer
//! (`/metrics`, `/accuracy`, `/analysis`, the learning cycle's report).
//!
//! Field order is the order of the JSON the plugin has always served; the
//! snapshot tests (`tests/route_bodies.rs`) hold every answer's shape. Every
//! field of a stored document has a default, so documents written by older
//! versions still read.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::{FactorTerm, IntervalParams, MonthError, ParamsVersions, SuccessCv};
use crate::record::AggJson;

/// One insight of a learning cycle: an item of the `insights` document, the
/// data of the emitted insight, and the payload of its vector point.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct Insight {
    /// `prediction_bias`, `failure_pattern` or `success_pattern`.
    pub insight_type: String,
    /// The recommendation type it is about (`null`: all).
    pub recommendation_type: Option<String>,
    /// One line.
    pub title: String,
    /// The evidence in words.
    pub detail: String,
    /// 0..1.
    pub confidence: f64,
    /// How much acting on it is worth (relative).
    pub impact: f64,
    /// What to do.
    pub actionable_recommendations: Vec<String>,
    /// `cycle<N>-<i>`.
    pub insight_id: String,
    /// The learning cycle that found it.
    pub cycle: u64,
    /// The newest event time the cycle had seen (RFC 3339).
    pub as_of: Option<String>,
}

/// The `insights` document: the newest cycle's insights.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct InsightsDoc {
    /// Insights found by every cycle so far.
    pub total: u64,
    /// The newest cycle's.
    pub items: Vec<Insight>,
}

/// The `learning` document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct LearningDoc {
    /// Cycles completed.
    pub cycles: u64,
    /// The last cycle's report.
    pub last_cycle: Option<CycleReport>,
    /// The last cycle's relative error reduction of calibrated over raw predictions.
    pub improvement_over_baseline: Option<f64>,
}

/// One parameter set's held-out backtest in a cycle report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct Backtest {
    /// The loss measured.
    pub metric: String,
    /// The candidate's mean loss.
    pub candidate: Option<f64>,
    /// The mean loss of the set in force.
    pub in_force: Option<f64>,
    /// Held-out cases.
    pub n: usize,
    /// Version of the set in force during the cycle.
    pub version_in_force: u64,
}

/// Mean losses of the candidate, the model in force and the base rate.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct Losses {
    /// The candidate.
    pub candidate: Option<f64>,
    /// The model in force.
    pub in_force: Option<f64>,
    /// The base rate of the candidate's training outcomes.
    pub base_rate: Option<f64>,
}

/// A level of the success model, summarised.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct LevelSummary {
    /// The level's name.
    pub level: String,
    /// Its pseudo-count, chosen by cross-validation.
    pub shrinkage: f64,
    /// Groups it holds.
    pub groups: usize,
}

/// The candidate success model, summarised.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct CandidateSummary {
    /// Its levels, broad to narrow.
    pub levels: Vec<LevelSummary>,
    /// Its factor term.
    pub factors: Vec<FactorTerm>,
    /// The factor term's ridge penalty.
    pub ridge: Option<f64>,
    /// What cross-validation measured.
    pub cross_validation: SuccessCv,
}

/// The success model's held-out backtest.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct SuccessBacktest {
    /// Held-out executions.
    pub n: usize,
    /// The base rate of the candidate's training outcomes.
    pub base_rate: f64,
    /// Mean Brier scores.
    pub brier: Losses,
    /// Mean log losses.
    pub log_loss: Losses,
    /// Whether the candidate beats the base rate on both (`null`: nothing to compare).
    pub candidate_beats_base_rate: Option<bool>,
    /// Version of the risk set in force during the cycle.
    pub version_in_force: u64,
    /// `success_model`, or `base_rate` when none was in force.
    pub in_force: String,
    /// The candidate.
    pub candidate: CandidateSummary,
    /// The version in force when `/metrics` answered (only in that answer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_in_force_now: Option<u64>,
}

/// The error three months after the first month, against the seed's promise.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct ThreeMonths {
    /// First month (`YYYY-MM`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Three months later.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Calibrated error of the first month.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_from: Option<f64>,
    /// Calibrated error three months later.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_to: Option<f64>,
    /// Relative improvement.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub improvement: Option<f64>,
    /// The promised improvement.
    pub promised: f64,
    /// Whether it was achieved (`null`: not measurable yet).
    pub achieved: Option<bool>,
    /// Why it is not measurable yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Month-by-month calibrated error.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct CalibrationTrend {
    /// Per calendar month.
    pub months: Vec<MonthError>,
    /// Against the seed's promise.
    pub three_month_improvement: ThreeMonths,
}

/// Recommendations and outcomes counted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct Totals {
    /// Recommendations.
    pub predictions: i64,
    /// Outcomes.
    pub outcomes: i64,
}

/// The learning cycle's report (per workspace), kept as `learning.last_cycle`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct CycleReport {
    /// Cycle number.
    pub cycle: u64,
    /// Recommendations read.
    pub recommendations: usize,
    /// Executed or measured recommendations.
    pub outcomes_tracked: i64,
    /// Recommendations with measured savings.
    pub measured: usize,
    /// Execution success rate.
    pub success_rate: Option<f64>,
    /// Event time from which recommendations were held out.
    pub holdout_from: Option<String>,
    /// Recommendations learned from.
    pub learned_from: usize,
    /// Recommendations held out.
    pub held_out: usize,
    /// Per parameter set.
    pub backtest: BTreeMap<String, Backtest>,
    /// Held-out error of the raw predictions.
    pub raw_error: Option<f64>,
    /// Held-out error of the candidate's calibrated predictions.
    pub calibrated_error: Option<f64>,
    /// Held-out error of what was served during the cycle.
    pub served_error: Option<f64>,
    /// The success model's backtest.
    pub success_backtest: Option<SuccessBacktest>,
    /// Month-by-month calibrated error.
    pub calibrated_error_trend: Option<CalibrationTrend>,
    /// Relative error reduction of calibrated over raw.
    pub improvement_over_baseline: Option<f64>,
    /// Parameter sets proposed to the improvement lifecycle.
    pub proposed: Vec<String>,
    /// Calibration groups.
    pub calibration_groups: usize,
    /// The candidate's interval.
    pub interval: IntervalParams,
    /// Learned risk level per type.
    pub risk_levels: BTreeMap<String, String>,
    /// Learned scoring weights.
    pub scoring_weights: BTreeMap<String, f64>,
    /// Insights found.
    pub insights: usize,
    /// Newest event time seen.
    pub as_of: Option<String>,
    /// Recommendation types.
    pub subjects: usize,
    /// Counts.
    pub totals: Totals,
}

/// `GET /accuracy`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Accuracy {
    /// The counters.
    #[serde(flatten)]
    pub agg: AggJson,
    /// The type asked for (`null`: all).
    pub recommendation_type: Option<String>,
    /// From the last cycle.
    pub improvement_over_baseline: Option<f64>,
    /// From the last cycle.
    pub calibrated_error_on_holdout: Option<f64>,
    /// From the last cycle.
    pub raw_error_on_holdout: Option<f64>,
}

/// The prediction error against the seed's target, in `/metrics`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct PredictionError {
    /// The target.
    pub target: f64,
    /// Raw predictions' held-out error.
    pub raw: Option<f64>,
    /// Whether it meets the target.
    pub raw_meets_target: Option<bool>,
    /// What `/assess` serves.
    pub served: Option<f64>,
    /// Whether it meets the target.
    pub served_meets_target: Option<bool>,
    /// Version of the calibration served.
    pub served_version: u64,
    /// The last cycle's candidate.
    pub candidate: Option<f64>,
    /// Where it was measured.
    pub measured_on: &'static str,
}

/// The success rate against the seed's target, in `/metrics`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct SuccessRateTarget {
    /// The target.
    pub target: f64,
    /// The success rate.
    pub success_rate: Option<f64>,
    /// Whether it meets the target.
    pub meets_target: Option<bool>,
}

/// `GET /metrics`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Metrics {
    /// Against the seed's target.
    pub prediction_error: PredictionError,
    /// Against the seed's target.
    pub success_rate_target: SuccessRateTarget,
    /// From the last cycle.
    pub calibrated_error_trend: Option<CalibrationTrend>,
    /// From the last cycle, with the version in force now.
    pub success_model: Option<SuccessBacktest>,
    /// Executed or measured recommendations.
    pub total_outcomes_tracked: i64,
    /// Recommendations.
    pub total_recommendations: i64,
    /// Execution success rate.
    pub success_rate: Option<f64>,
    /// Mean actual / predicted.
    pub avg_savings_accuracy: Option<f64>,
    /// Mean relative error.
    pub avg_prediction_error: Option<f64>,
    /// From the last cycle.
    pub improvement_over_baseline: Option<f64>,
    /// Cycles completed.
    pub learning_cycles_completed: u64,
    /// The last cycle's `as_of`.
    pub last_learning_cycle: Option<String>,
    /// The last cycle's report.
    pub last_cycle: Option<CycleReport>,
    /// Parameter sets applied (version > 0).
    pub active_improvements: usize,
    /// Versions in force.
    pub params_versions: ParamsVersions,
    /// The plugin's clock.
    pub newest_event_time: Option<String>,
}

/// A dimension's best value for a type, in `/analysis`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Optimal {
    /// The value.
    pub value: String,
    /// Its success rate.
    pub success_rate: f64,
}

/// Success pattern of a type, in `/analysis`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct SuccessPattern {
    /// The type.
    pub recommendation_type: String,
    /// Its success rate.
    pub success_rate: f64,
    /// Its executions.
    pub executions: i64,
    /// Groups doing clearly better.
    pub common_characteristics: Vec<String>,
    /// Best value per dimension.
    pub optimal_conditions: BTreeMap<String, Optimal>,
    /// In words.
    pub best_practices: Vec<String>,
}

/// Failure pattern of a type, in `/analysis`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct FailurePattern {
    /// The type.
    pub recommendation_type: String,
    /// Its failure rate.
    pub failure_rate: f64,
    /// Its failures.
    pub failures: i64,
    /// Most common issues.
    pub common_causes: Vec<String>,
    /// Groups doing clearly worse.
    pub risk_factors: Vec<String>,
    /// In words.
    pub avoidance_strategies: Vec<String>,
    /// The risk level in force.
    pub learned_risk_level: Option<String>,
}

/// An improvement opportunity, in `/analysis`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Opportunity {
    /// `area:type`.
    pub opportunity_id: String,
    /// `prediction`, `risk_assessment` or `scoring`.
    pub area: &'static str,
    /// The type (`null`: all).
    pub recommendation_type: Option<String>,
    /// Where it stands.
    pub current_performance: Option<f64>,
    /// How much better it could be.
    pub potential_improvement: Option<f64>,
    /// What to do.
    pub suggested_actions: Vec<String>,
    /// `high` or `medium`.
    pub estimated_impact: &'static str,
}

/// `GET /analysis`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Analysis {
    /// Per type.
    pub success_patterns: Vec<SuccessPattern>,
    /// Per type.
    pub failure_patterns: Vec<FailurePattern>,
    /// As `/accuracy`.
    pub accuracy: Accuracy,
    /// What to improve.
    pub improvement_opportunities: Vec<Opportunity>,
    /// The newest cycle's insights (`null` before the first cycle).
    pub insights: Option<Vec<Insight>>,
    /// Versions in force.
    pub params_versions: ParamsVersions,
}

/// Serialises a route answer.
pub fn to_value<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("route answers serialise")
}
