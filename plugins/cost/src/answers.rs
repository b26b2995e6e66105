//! The typed answers of the cost plugin's decision-time and listing routes
//! (`POST /assess`, `/recommendations/{id}`, the similar-case routes,
//! `/outcomes`, `/success-rates`, `/insights`, `/params`); the learning
//! routes' answers are in [`crate::report`].
//!
//! Each type derives `JsonSchema`, so the manifest's route schemas (and the
//! OpenAPI document) are made from the same types the routes serialise.
//! Times are RFC 3339 strings, `null` when unknown.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::model::{ParamSets, ParamsVersions};
use crate::record::AggJson;
use crate::report::Insight;

/// The savings prediction interval of an assessment.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Interval {
    /// Lower bound of the calibrated monthly savings.
    pub lower: f64,
    /// Upper bound.
    pub upper: f64,
    /// Nominal coverage.
    pub level: f64,
}

/// What the probability of success of an assessment rests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProbabilityBasis {
    /// The learned success model in force.
    SuccessModel,
    /// The observed success rate (no success model is in force yet).
    BaseRate,
}

/// `POST /assess`: what to expect of a proposed recommendation.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Assessment {
    /// Recommendation type, as given.
    pub recommendation_type: String,
    /// Resource type, as given.
    pub resource_type: String,
    /// Region, as given.
    pub region: String,
    /// Resource id, as given.
    pub resource_id: Option<String>,
    /// Predicted monthly savings, as given.
    pub predicted_savings: f64,
    /// Predicted savings × calibration factor.
    pub calibrated_savings: f64,
    /// The learned multiplier of predicted savings (1 before any calibration).
    pub calibration_factor: f64,
    /// Conformal interval of the calibrated savings (`null` before any calibration data).
    pub interval: Option<Interval>,
    /// Probability that the execution succeeds.
    pub probability_of_success: f64,
    /// What that probability rests on.
    pub probability_of_success_basis: ProbabilityBasis,
    /// Probability of success × calibrated savings.
    pub expected_monthly_savings: f64,
    /// Risk level, as given.
    pub stated_risk_level: String,
    /// The learned risk level of the type × resource type (else the stated one).
    pub updated_risk_level: String,
    /// The learned failure rate behind it (`null`: none learned).
    pub learned_failure_rate: Option<f64>,
    /// Confidence, as given.
    pub stated_confidence: Option<f64>,
    /// Score of the scoring factors under equal weights (`null`: no factors).
    pub original_score: Option<f64>,
    /// Score under the learned weights.
    pub adjusted_score: Option<f64>,
    /// The scoring weights in force (empty: equal weights).
    pub scoring_weights: BTreeMap<String, f64>,
    /// Calibration level the estimate leans on most: `global`, `type`,
    /// `type|region` or `type|region|resource_type`.
    pub basis: &'static str,
    /// Measured outcomes behind that level.
    pub evidence: u64,
    /// Versions of the parameter sets used.
    pub params_versions: ParamsVersions,
    /// The most similar past cases (`null` when the knowledge store is unavailable).
    pub similar_cases: Option<Vec<SimilarCase>>,
    /// Why the similar cases are missing (`null` when they are not).
    pub similar_cases_unavailable: Option<String>,
}

/// The execution of a recommendation.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ExecutionView {
    /// The outcome record that reported it.
    pub outcome_id: String,
    /// The executor's id for the run.
    pub execution_id: Option<String>,
    /// Whether it succeeded.
    pub success: bool,
    /// Seconds it took.
    pub execution_duration_seconds: Option<f64>,
    /// Issues met.
    pub issues_encountered: Vec<String>,
    /// Metrics observed after the execution, as reported.
    pub post_execution_metrics: Option<Map<String, Value>>,
    /// When it was reported.
    #[schemars(extend("format" = "date-time"))]
    pub executed_at: Option<String>,
}

/// A recommendation with what became of it (an item of `GET /outcomes`).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct RecommendationView {
    /// Recommendation id.
    pub recommendation_id: String,
    /// Recommendation type.
    pub recommendation_type: String,
    /// Resource id.
    pub resource_id: String,
    /// Resource type (`unknown` when not given).
    pub resource_type: String,
    /// Region (`unknown` when not given).
    pub region: String,
    /// Stated risk level.
    pub risk_level: String,
    /// Predicted monthly savings.
    pub predicted_savings: f64,
    /// Stated confidence.
    pub confidence: Option<f64>,
    /// Scoring factors.
    pub scoring_factors: BTreeMap<String, f64>,
    /// Event time of the recommendation (`null`: sent without one).
    #[schemars(extend("format" = "date-time"))]
    pub recommended_at: Option<String>,
    /// The execution, once reported.
    pub execution: Option<ExecutionView>,
    /// Realised monthly savings, once measured.
    pub actual_savings: Option<f64>,
    /// When the savings were measured.
    #[schemars(extend("format" = "date-time"))]
    pub measured_at: Option<String>,
    /// Days the measurement covers.
    pub measurement_window_days: Option<f64>,
    /// actual / predicted.
    pub savings_accuracy: Option<f64>,
    /// |predicted − actual| / actual.
    pub prediction_error: Option<f64>,
    /// actual − predicted.
    pub savings_difference: Option<f64>,
    /// Days from execution to the savings measurement.
    pub days_to_savings: Option<f64>,
}

/// `GET /recommendations/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct RecommendationAnswer {
    /// The recommendation.
    #[serde(flatten)]
    pub recommendation: RecommendationView,
    /// Its predicted savings calibrated by what is in force.
    pub calibrated_savings: f64,
    /// Versions of the parameter sets used.
    pub params_versions: ParamsVersions,
}

/// What became of a similar past case.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct CaseOutcome {
    /// Whether its execution succeeded (`null`: not executed).
    pub success: Option<bool>,
    /// Realised monthly savings (`null`: not measured).
    pub actual_savings: Option<f64>,
    /// Predicted monthly savings.
    pub predicted_savings: Option<f64>,
    /// actual / predicted.
    pub savings_accuracy: Option<f64>,
    /// Issues met in its execution.
    pub issues_encountered: Option<Vec<String>>,
    /// When it was executed.
    #[schemars(extend("format" = "date-time"))]
    pub execution_date: Option<String>,
}

/// What a similar past case was.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct CaseContext {
    /// Recommendation type.
    pub recommendation_type: Option<String>,
    /// Resource type.
    pub resource_type: Option<String>,
    /// Resource id.
    pub resource_id: Option<String>,
    /// Region.
    pub region: Option<String>,
    /// Stated risk level.
    pub risk_level: Option<String>,
}

/// A past case similar to a recommendation, from the knowledge store.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct SimilarCase {
    /// Its recommendation id.
    pub recommendation_id: String,
    /// Similarity (higher is closer).
    pub similarity_score: f32,
    /// What became of it.
    pub outcome: CaseOutcome,
    /// What it was.
    pub context: CaseContext,
}

/// `GET /recommendations/{id}/similar`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct SimilarToRecommendation {
    /// The recommendation compared with.
    pub recommendation_id: String,
    /// The most similar past cases, closest first.
    pub similar_cases: Vec<SimilarCase>,
}

/// `POST /similar`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct SimilarCases {
    /// The most similar past cases, closest first.
    pub similar_cases: Vec<SimilarCase>,
}

/// `GET /outcomes`: one page of recommendations with an outcome.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct OutcomesPage {
    /// Recommendations in id order.
    pub outcomes: Vec<RecommendationView>,
    /// The `after` of the next page (`null` on the last).
    pub next: Option<String>,
}

/// The grouping of `GET /success-rates`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// By recommendation type.
    Type,
    /// By region.
    Region,
    /// By resource type.
    ResourceType,
}

/// `GET /success-rates`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct SuccessRates {
    /// The grouping.
    pub by: GroupBy,
    /// The counters per group.
    pub groups: BTreeMap<String, AggJson>,
    /// The counters over everything.
    pub overall: AggJson,
}

/// `GET /insights`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct InsightsAnswer {
    /// The newest learning cycle's insights.
    pub insights: Vec<Insight>,
}

/// `GET /params`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ParamsAnswer {
    /// Version of each parameter set in force.
    pub versions: ParamsVersions,
    /// The parameter sets in force.
    pub params: ParamSets,
}
