//! The cost plugin's per-recommendation document (`rec/<id>`) and the
//! online aggregates (`stats`) kept up to date as events arrive.
//!
//! Aggregates are updated by subtracting a recommendation's old
//! contribution and adding its new one, so an outcome reported twice (an
//! execution, then the measured savings weeks later) is counted once.

use std::borrow::Cow;
use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::answers::{ExecutionView, RecommendationView};

/// Microseconds per day.
pub const DAY: f64 = 86_400e6;

/// The execution of a recommendation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exec {
    /// Outcome record id.
    pub outcome_id: String,
    /// The executor's id for the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_id: Option<String>,
    /// Whether it succeeded.
    pub success: bool,
    /// Seconds it took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
    /// Issues met.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub issues: Vec<String>,
    /// Metrics observed after the execution.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub metrics: Value,
    /// When (µs).
    pub t: i64,
}

/// One recommendation with what became of it: `rec/<id>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rec {
    /// Recommendation time (µs).
    pub t: i64,
    /// Recommendation type.
    pub kind: String,
    /// Resource id.
    pub resource_id: String,
    /// Resource type.
    pub resource_type: String,
    /// Region.
    pub region: String,
    /// Stated risk level.
    pub risk: String,
    /// Predicted monthly savings.
    pub predicted: f64,
    /// Stated confidence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    /// Scoring factors.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub factors: BTreeMap<String, f64>,
    /// The execution, once reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<Exec>,
    /// Realised monthly savings, once measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actual: Option<f64>,
    /// When the savings were measured (µs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actual_t: Option<i64>,
    /// Days the measurement covers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_days: Option<f64>,
}

/// What learning reads of a `rec/<id>` document, borrowed from its JSON:
/// [`Rec`]'s `t`, `kind`, `region`, `resource_type`, `risk`, `predicted`,
/// `factors`, `actual` and the execution's `success`, nothing else.
#[derive(Debug, Clone, Deserialize)]
pub struct RecView<'a> {
    /// Recommendation time (µs).
    pub t: i64,
    /// Recommendation type (borrowed unless it has escapes).
    #[serde(borrow)]
    pub kind: Cow<'a, str>,
    /// Resource type.
    #[serde(borrow)]
    pub resource_type: Cow<'a, str>,
    /// Region.
    #[serde(borrow)]
    pub region: Cow<'a, str>,
    /// Stated risk level.
    #[serde(borrow)]
    pub risk: Cow<'a, str>,
    /// Predicted monthly savings.
    pub predicted: f64,
    /// Scoring factors.
    #[serde(default, borrow)]
    pub factors: BTreeMap<Cow<'a, str>, f64>,
    /// The execution, once reported.
    #[serde(default)]
    pub exec: Option<ExecView>,
    /// Realised monthly savings, once measured.
    #[serde(default)]
    pub actual: Option<f64>,
}

/// What learning reads of an execution: whether it succeeded.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct ExecView {
    /// Whether it succeeded.
    pub success: bool,
}

impl<'a> RecView<'a> {
    /// The view of a `rec/<id>` document (`key` names it in the error).
    pub fn of(key: &str, doc: &'a Value) -> Result<RecView<'a>, serde_json::Error> {
        RecView::deserialize(doc)
            .map_err(|e| serde::de::Error::custom(format_args!("{key} is not a recommendation document: {e}")))
    }

    /// The view of a `rec/<id>` document given as JSON text (no JSON tree
    /// in between; see `Context::scan_state_raw`).
    pub fn of_text(key: &str, json: &'a str) -> Result<RecView<'a>, serde_json::Error> {
        serde_json::from_str(json)
            .map_err(|e| serde::de::Error::custom(format_args!("{key} is not a recommendation document: {e}")))
    }
}

impl Rec {
    /// actual / predicted, when both are known and predicted > 0.
    pub fn savings_accuracy(&self) -> Option<f64> {
        self.actual.filter(|_| self.predicted > 0.0).map(|a| a / self.predicted)
    }

    /// |predicted − actual| / actual, when actual > 0.
    pub fn prediction_error(&self) -> Option<f64> {
        self.actual.filter(|a| *a > 0.0).map(|a| (self.predicted - a).abs() / a)
    }

    /// Days from execution to the savings measurement.
    pub fn days_to_savings(&self) -> Option<f64> {
        match (&self.exec, self.actual_t) {
            // Both times must be known (0: the client sent none).
            (Some(e), Some(t)) if e.t != 0 && t != 0 && t >= e.t => Some((t - e.t) as f64 / DAY),
            _ => None,
        }
    }

    /// The text the embedder turns into this case's vector: `key: value`
    /// lines (see the structured embedder in `learnloop-vector`).
    pub fn embed_text(&self) -> String {
        embed_text(&self.kind, &self.resource_type, &self.region, &self.risk, self.predicted)
    }

    /// The recommendation as the comparison routes show it.
    pub fn view(&self, id: &str) -> RecommendationView {
        RecommendationView {
            recommendation_id: id.to_string(),
            recommendation_type: self.kind.clone(),
            resource_id: self.resource_id.clone(),
            resource_type: self.resource_type.clone(),
            region: self.region.clone(),
            risk_level: self.risk.clone(),
            predicted_savings: self.predicted,
            confidence: self.confidence,
            scoring_factors: self.factors.clone(),
            recommended_at: time_string(self.t),
            execution: self.exec.as_ref().map(|e| ExecutionView {
                outcome_id: e.outcome_id.clone(),
                execution_id: e.execution_id.clone(),
                success: e.success,
                execution_duration_seconds: e.duration_seconds,
                issues_encountered: e.issues.clone(),
                post_execution_metrics: e.metrics.as_object().cloned(),
                executed_at: time_string(e.t),
            }),
            actual_savings: self.actual,
            measured_at: self.actual_t.and_then(time_string),
            measurement_window_days: self.window_days,
            savings_accuracy: self.savings_accuracy(),
            prediction_error: self.prediction_error(),
            savings_difference: self.actual.map(|a| a - self.predicted),
            days_to_savings: self.days_to_savings(),
        }
    }
}

/// An RFC 3339 time for a time in µs (`None` when out of range).
///
/// 0 is "no client time" in this plugin's documents (an event sent
/// without `event_time` has no time for the plugin's clocks): `None`, not
/// 1970-01-01.
pub fn time_string(us: i64) -> Option<String> {
    if us == 0 {
        return None;
    }
    crate::ts(us).as_str().map(str::to_string)
}

/// The embedding text of a recommendation's defining fields. Type and
/// region carry weights (`key*w`, see the structured embedder) so that cases
/// of the same type and region come first, then resource type, risk and
/// savings magnitude.
pub fn embed_text(kind: &str, resource_type: &str, region: &str, risk: &str, predicted: f64) -> String {
    format!(
        "recommendation_type*3: {kind}\nregion*2: {region}\nresource_type: {resource_type}\nrisk_level: {risk}\nmonthly_savings: {predicted}"
    )
}

/// Counters of one group of recommendations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Agg {
    /// Recommendations.
    pub recs: i64,
    /// Executed.
    pub executed: i64,
    /// Executed successfully.
    pub succeeded: i64,
    /// With measured savings.
    pub measured: i64,
    /// Σ predicted over measured.
    pub sum_predicted: f64,
    /// Σ actual over measured.
    pub sum_actual: f64,
    /// Σ savings accuracy over measured with predicted > 0.
    pub sum_accuracy: f64,
    /// Measured with predicted > 0.
    pub n_accuracy: i64,
    /// Σ |p − a| / a over measured with a > 0.
    pub sum_error: f64,
    /// Measured with actual > 0.
    pub n_error: i64,
    /// Σ execution seconds.
    pub sum_duration: f64,
    /// Executions with a duration.
    pub n_duration: i64,
    /// Σ days from execution to measurement.
    pub sum_days: f64,
    /// Measurements with both times.
    pub n_days: i64,
    /// Issues among failed executions, by text.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub failure_issues: BTreeMap<String, i64>,
    /// Issues among successful executions, by text.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub success_issues: BTreeMap<String, i64>,
}

impl Agg {
    /// Adds (`sign` = 1) or removes (`sign` = −1) a recommendation's contribution.
    pub fn apply(&mut self, r: &Rec, sign: i64) {
        let f = sign as f64;
        self.recs += sign;
        if let Some(e) = &r.exec {
            self.executed += sign;
            if e.success {
                self.succeeded += sign;
            }
            if let Some(d) = e.duration_seconds {
                self.sum_duration += f * d;
                self.n_duration += sign;
            }
            let issues = if e.success { &mut self.success_issues } else { &mut self.failure_issues };
            for i in &e.issues {
                let c = issues.entry(i.clone()).or_default();
                *c += sign;
                if *c <= 0 {
                    issues.remove(i);
                }
            }
        }
        if let Some(a) = r.actual {
            self.measured += sign;
            self.sum_predicted += f * r.predicted;
            self.sum_actual += f * a;
        }
        if let Some(x) = r.savings_accuracy() {
            self.sum_accuracy += f * x;
            self.n_accuracy += sign;
        }
        if let Some(x) = r.prediction_error() {
            self.sum_error += f * x;
            self.n_error += sign;
        }
        if let Some(d) = r.days_to_savings() {
            self.sum_days += f * d;
            self.n_days += sign;
        }
    }

    /// Success rate among executions.
    pub fn success_rate(&self) -> Option<f64> {
        (self.executed > 0).then(|| self.succeeded as f64 / self.executed as f64)
    }

    /// The counters as the metrics routes serve them.
    pub fn summary(&self) -> AggJson {
        let div = |s: f64, n: i64| (n > 0).then(|| s / n as f64);
        let mut issues: Vec<(&String, &i64)> = self.failure_issues.iter().collect();
        issues.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        AggJson {
            recommendations: self.recs,
            total_executions: self.executed,
            successful_executions: self.succeeded,
            failed_executions: self.executed - self.succeeded,
            success_rate: self.success_rate(),
            measured: self.measured,
            avg_savings_accuracy: div(self.sum_accuracy, self.n_accuracy),
            avg_prediction_error: div(self.sum_error, self.n_error),
            roi_accuracy: (self.sum_predicted > 0.0).then(|| self.sum_actual / self.sum_predicted),
            total_predicted_savings: self.sum_predicted,
            total_actual_savings: self.sum_actual,
            avg_execution_duration_seconds: div(self.sum_duration, self.n_duration),
            avg_days_to_savings: div(self.sum_days, self.n_days),
            top_failure_issues: issues
                .iter()
                .take(5)
                .map(|(k, v)| IssueCount { issue: (*k).clone(), count: **v })
                .collect(),
        }
    }
}

/// A failure issue and how often it occurred.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct IssueCount {
    /// The issue's text.
    pub issue: String,
    /// Failed executions that reported it.
    pub count: i64,
}

/// The counters of a group of recommendations as the metrics routes serve them.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct AggJson {
    /// Recommendations.
    pub recommendations: i64,
    /// Executed.
    pub total_executions: i64,
    /// Executed successfully.
    pub successful_executions: i64,
    /// Executed and failed.
    pub failed_executions: i64,
    /// Success rate among executions.
    pub success_rate: Option<f64>,
    /// With measured savings.
    pub measured: i64,
    /// Mean actual / predicted.
    pub avg_savings_accuracy: Option<f64>,
    /// Mean |predicted − actual| / actual.
    pub avg_prediction_error: Option<f64>,
    /// Σ actual / Σ predicted.
    pub roi_accuracy: Option<f64>,
    /// Σ predicted over measured.
    pub total_predicted_savings: f64,
    /// Σ actual over measured.
    pub total_actual_savings: f64,
    /// Mean execution seconds.
    pub avg_execution_duration_seconds: Option<f64>,
    /// Mean days from execution to measurement.
    pub avg_days_to_savings: Option<f64>,
    /// The five most common failure issues.
    pub top_failure_issues: Vec<IssueCount>,
}

/// The online aggregates: `stats`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Newest event time (µs): the plugin's clock.
    pub newest: i64,
    /// Everything.
    pub all: Agg,
    /// By recommendation type.
    pub by_type: BTreeMap<String, Agg>,
    /// By region.
    pub by_region: BTreeMap<String, Agg>,
    /// By resource type.
    pub by_resource_type: BTreeMap<String, Agg>,
    /// By `type|region`.
    pub by_type_region: BTreeMap<String, Agg>,
    /// By `type|resource_type`.
    pub by_type_resource: BTreeMap<String, Agg>,
    /// By `type|risk_level`.
    pub by_type_risk: BTreeMap<String, Agg>,
}

impl Stats {
    /// Adds or removes a recommendation everywhere it counts.
    pub fn apply(&mut self, r: &Rec, sign: i64) {
        self.all.apply(r, sign);
        self.by_type.entry(r.kind.clone()).or_default().apply(r, sign);
        self.by_region.entry(r.region.clone()).or_default().apply(r, sign);
        self.by_resource_type.entry(r.resource_type.clone()).or_default().apply(r, sign);
        self.by_type_region.entry(format!("{}|{}", r.kind, r.region)).or_default().apply(r, sign);
        self.by_type_resource.entry(format!("{}|{}", r.kind, r.resource_type)).or_default().apply(r, sign);
        self.by_type_risk.entry(format!("{}|{}", r.kind, r.risk)).or_default().apply(r, sign);
    }
}
