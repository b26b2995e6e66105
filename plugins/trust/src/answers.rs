//! The bodies of the trust routes, as types: a misspelt field is a compile
//! error, and the snapshot tests (`tests/snapshots.rs`) show any change of
//! shape. Field order is the order of the JSON objects the routes have
//! always answered (it shows when serde_json keeps insertion order).
//! Times are RFC 3339 strings, or `null` when unknown ([`crate::time`]).
//! Each type derives `JsonSchema`: the manifest's route schemas (and the
//! OpenAPI document) are made from the same types the routes serialise.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Weights;
use crate::jobs::{CycleReport, PatternWindow};
use crate::patterns::Pattern;
use crate::rules::Rule;
use crate::score::{Alarm, CountStats, LearningRate, TrustScores};

/// One agent in `GET /agents` and `GET /trusted`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AgentSummary {
    /// The agent's overall trust scores.
    #[serde(flatten)]
    pub trust: TrustScores,
    /// The agent id (the recommendations' subject).
    pub agent_id: String,
    /// Display name, last seen in a payload's `agent_name`.
    pub agent_name: Option<String>,
    /// improving / stable / declining / insufficient_data.
    pub trend: String,
    /// The change test behind the trend.
    pub change_test: ChangeTestSummary,
    /// Fast and slow EWMAs of the outcome values (reported only).
    pub ewma: EwmaSummary,
    /// weak / moderate / strong / very_strong from the accuracy score.
    pub recommendation_strength: String,
    /// Approved / evaluated, partial counted as half.
    pub approval_rate: Option<f64>,
    /// The agent's counters.
    pub stats: CountStats,
    /// Event time of the agent's last event.
    #[schemars(extend("format" = "date-time"))]
    pub last_event_time: Option<String>,
}

/// The change test of an agent, as routes show it: two one-sided CUSUMs of
/// its type-adjusted outcomes against its own history (see the README).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ChangeTestSummary {
    /// Whether the agent is monitored (its reference has at least
    /// `decline_min_history` evaluations).
    pub monitored: bool,
    /// Evaluations monitored since the test last (re)started.
    pub monitored_evaluations: u64,
    /// Evaluations in the reference (the history it is compared with).
    pub reference_evaluations: u64,
    /// The reference's approval rate (`null`: not monitored).
    pub reference_rate: Option<f64>,
    /// The decline CUSUM now.
    pub decline_statistic: f64,
    /// The improvement CUSUM now.
    pub improvement_statistic: f64,
    /// The threshold h either must reach to raise an alarm.
    pub threshold: f64,
    /// Decline alarms so far.
    pub declines: u64,
    /// Improvement alarms so far.
    pub improvements: u64,
    /// The newest decline alarm.
    pub last_decline: Option<Alarm>,
    /// Evaluations per block (the reference leaves out the newest 10).
    pub window: u64,
}

/// Fast (α = 0.2) and slow (α = 0.05) EWMAs of the outcome values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EwmaSummary {
    /// Fast EWMA (`null` before the first evaluation).
    pub fast: Option<f64>,
    /// Slow EWMA.
    pub slow: Option<f64>,
}

/// `GET /agents`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AgentsAnswer {
    /// Every agent, most trusted first.
    pub agents: Vec<AgentSummary>,
    /// The workspace's newest event time.
    #[schemars(extend("format" = "date-time"))]
    pub as_of: Option<String>,
    /// The trust weights in force.
    pub weights: Weights,
    /// Their version (0: the configured weights).
    pub weights_version: u64,
}

/// `GET /agents/{agent}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AgentProfile {
    /// What `GET /agents` says about the agent.
    #[serde(flatten)]
    pub summary: AgentSummary,
    /// The seed's learning-rate scores.
    pub learning_rate_scores: LearningRate,
    /// Trust per recommendation type.
    pub by_type: BTreeMap<String, TypeTrust>,
    /// Types approved at least 5 points above the agent's accuracy (≥ 5 evaluations).
    pub strengths: Vec<TypeStrength>,
    /// Types approved at least 5 points below it.
    pub weaknesses: Vec<TypeStrength>,
    /// Version of the trust weights in force.
    pub weights_version: u64,
}

/// An agent's trust on one recommendation type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TypeTrust {
    /// Trust scores of the agent × type counters.
    #[serde(flatten)]
    pub trust: TrustScores,
    /// The counters.
    pub stats: CountStats,
}

/// A strength or weakness of an agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TypeStrength {
    /// The recommendation type.
    pub recommendation_type: String,
    /// Posterior mean approval on it.
    pub approval: f64,
    /// Its credible interval.
    pub credible_interval: [f64; 2],
    /// Final evaluations of the type.
    pub evaluated: u64,
}

/// `GET /recommendations/{id}`, and one item of an agent's recommendations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RecommendationAnswer {
    /// The prediction id.
    pub recommendation_id: String,
    /// The agent.
    pub agent_id: String,
    /// The payload's `agent_name`, as sent (`null` when absent).
    pub agent_name: Option<Value>,
    /// The prediction kind.
    pub recommendation_type: String,
    /// Stated confidence.
    pub confidence: Option<f64>,
    /// The action, as a short text.
    pub label: Option<String>,
    /// The payload as sent.
    pub payload: Value,
    /// Client event time.
    pub event_time: Option<String>,
    /// Status of the last evaluation (`pending` without one).
    pub status: String,
    /// Every evaluation, oldest first.
    pub outcomes: Vec<EvaluationAnswer>,
}

/// One evaluation of a recommendation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EvaluationAnswer {
    /// The outcome id.
    pub outcome_id: String,
    /// Its label as sent.
    pub status: Option<String>,
    /// `success` as sent.
    pub success: Option<bool>,
    /// Quality in `[0, 1]`.
    pub quality: Option<f64>,
    /// Quality on the 0–100 scale.
    pub overall_quality_score: Option<f64>,
    /// The evaluator's comment.
    pub feedback: Option<String>,
    /// The payload as sent.
    pub payload: Value,
    /// Client event time.
    pub event_time: Option<String>,
}

/// `GET /agents/{agent}/recommendations`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RecommendationsPage {
    /// The agent.
    pub agent_id: String,
    /// Its recommendations, oldest first by event time.
    pub recommendations: Vec<RecommendationAnswer>,
    /// The cursor of the next page (`after`), `null` on the last.
    pub next: Option<String>,
}

/// `GET /agents/{agent}/boost`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BoostAnswer {
    /// The agent.
    pub agent_id: String,
    /// The recommendation type asked about.
    pub recommendation_type: String,
    /// (approval − ½) × confidence factor, in [−0.5, 0.5].
    pub boost: f64,
    /// The agent × type trust behind it.
    pub trust: TrustScores,
}

/// `GET /trusted`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TrustedAnswer {
    /// The threshold applied.
    pub threshold: f64,
    /// Agents at or above it, most trusted first.
    pub agents: Vec<AgentSummary>,
    /// Version of the trust weights in force.
    pub weights_version: u64,
}

/// `GET /patterns`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PatternsAnswer {
    /// The patterns of the last discovery (optionally of one category).
    pub patterns: Vec<Pattern>,
    /// Model accuracy on covered samples.
    pub accuracy: Option<f64>,
    /// Covered share of the samples.
    pub coverage: Option<f64>,
    /// The window discovered over (`null` before the first discovery).
    pub window: Option<PatternWindow>,
}

/// A decision rule suggested from a pattern (`GET /rules`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SuggestedRule {
    /// prefer / avoid / boost / require_consensus / trust_confidence / distrust_signal.
    pub action: String,
    /// The rule in words.
    pub rule: String,
    /// The agent it is about, if any.
    pub agent: Option<String>,
    /// The recommendation type it is about, if any.
    pub recommendation_type: Option<String>,
    /// The pattern's confidence.
    pub confidence: f64,
    /// The pattern's strength.
    pub strength: String,
    /// The pattern's success rate.
    pub success_rate: f64,
    /// The pattern's observations.
    pub frequency: u64,
    /// The pattern's id.
    pub pattern: String,
}

/// `GET /rules`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RulesAnswer {
    /// The type asked about (`null`: all).
    pub recommendation_type: Option<String>,
    /// Rules suggested from the patterns, most confident first.
    pub rules: Vec<SuggestedRule>,
    /// The routing rules in force (the improvement lifecycle's).
    pub in_force: Vec<Rule>,
    /// Their version (0: none).
    pub rules_version: u64,
}

/// The seed's targets of pattern accuracy and coverage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Targets {
    /// Accuracy target (0.80).
    pub accuracy: f64,
    /// Coverage target (0.70).
    pub coverage: f64,
}

impl Targets {
    /// The seed's targets.
    pub const SEED: Targets = Targets { accuracy: 0.80, coverage: 0.70 };
}

/// Recommendations and final evaluations seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SeenTotals {
    /// Recommendations seen.
    pub recommendations: u64,
    /// Final evaluations seen.
    pub evaluated: u64,
}

/// `GET /learning/status` (also `learning` in `GET /stats`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LearningStatus {
    /// At least `learning_trigger_outcomes` new evaluations since the last cycle.
    pub should_trigger_learning_cycle: bool,
    /// Final evaluations since the last cycle.
    pub new_evaluations_since_last_cycle: u64,
    /// The configured trigger.
    pub learning_trigger_outcomes: u64,
    /// Learning cycles run.
    pub cycles: u64,
    /// The last cycle's report (`null` before the first).
    pub last_cycle: Option<CycleReport>,
    /// Patterns in force.
    pub patterns: usize,
    /// Their accuracy.
    pub model_accuracy: Option<f64>,
    /// Their coverage.
    pub model_coverage: Option<f64>,
    /// The seed's targets.
    pub targets: Targets,
    /// What was seen.
    pub totals: SeenTotals,
    /// The workspace's newest event time.
    #[schemars(extend("format" = "date-time"))]
    pub newest_event_time: Option<String>,
}

/// Totals of `GET /stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StatsTotals {
    /// Recommendations seen.
    pub recommendations: u64,
    /// Final evaluations seen.
    pub evaluated: u64,
    /// Approved share of them (partial = half).
    pub approval_rate: Option<f64>,
}

/// `GET /stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StatsAnswer {
    /// Agents known.
    pub agents: usize,
    /// Agents at or above `trusted_threshold`.
    pub trusted_agents: usize,
    /// What was seen.
    pub totals: StatsTotals,
    /// Counters per recommendation type, over all agents.
    pub by_type: BTreeMap<String, CountStats>,
    /// The learning status.
    pub learning: LearningStatus,
    /// The trust weights in force.
    pub weights: Weights,
    /// Their version.
    pub weights_version: u64,
}
