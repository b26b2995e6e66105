//! The statistics over windows: performance, drift, error analysis and the
//! retraining decision. Pure functions of loaded [`Window`]s and the config.
//!
//! # Severity thresholds
//!
//! A test only has a severity when it is significant: its Benjamini–Hochberg
//! adjusted p-value (q) is ≤ `p_value`. All tests of one drift check (every
//! feature, concept drift, prediction drift) form one family for the
//! adjustment, so a stable model is flagged with probability about
//! `p_value` however many features it has. The severity of a significant
//! test then comes from its effect size:
//!
//! | effect | low | medium | high | critical |
//! |---|---|---|---|---|
//! | PSI (features, predictions) | < 0.10 | 0.10–0.25 | 0.25–0.50 | ≥ 0.50 |
//! | \|MAE change\| % (concept) | < 10 | 10–25 | 25–50 | ≥ 50 |
//!
//! A drift type's severity is the highest of its significant tests, `none`
//! when none is significant.

mod decision;
mod drift;
mod errors;

use learnloop_plugin_api::JsonSchema;
use learnloop_stats::regression_metrics;
use serde::{Deserialize, Serialize};

use crate::json::Entries;
use crate::window::Window;

pub use decision::{LossValues, LossWindow, RetrainChecks, RetrainDecision, RetrainTest, retrain};
pub use drift::{
    ConceptDrift, DriftReport, FeatureDrift, PredictionDrift, Proportion, ReferenceSpan, TestDetail, WindowSpan, drift,
};
pub use errors::{Distribution, ErrorPercentiles, ErrorsReport, Normality, Segment, SystematicErrors, errors};

/// The severity of a test or of a drift type, in increasing order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Not significant (or not tested).
    #[default]
    None,
    /// Significant, small effect.
    Low,
    /// Significant, medium effect.
    Medium,
    /// Significant, large effect.
    High,
    /// Significant, very large effect.
    Critical,
}

impl Level {
    /// The level's name, as in the answers.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::None => "none",
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
            Level::Critical => "critical",
        }
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a model predicts numbers or labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// Predicts a value.
    Regression,
    /// Predicts a label.
    Classifier,
}

/// Which way a model's loss moved from the reference to the current window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// The loss grew.
    Degraded,
    /// The loss did not grow.
    Improved,
}

/// The kind of values a feature test compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ValueType {
    /// Numbers (Kolmogorov–Smirnov).
    Numeric,
    /// Categories (χ²).
    Categorical,
    /// Numbers and strings mixed: not tested.
    Mixed,
}

fn psi_severity(psi: f64) -> Level {
    if psi < 0.10 {
        Level::Low
    } else if psi < 0.25 {
        Level::Medium
    } else if psi < 0.5 {
        Level::High
    } else {
        Level::Critical
    }
}

fn change_severity(pct: f64) -> Level {
    let a = pct.abs();
    if a < 10.0 {
        Level::Low
    } else if a < 25.0 {
        Level::Medium
    } else if a < 50.0 {
        Level::High
    } else {
        Level::Critical
    }
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    // Equal under total_cmp means bit-identical, so unstable is exact.
    v.sort_unstable_by(f64::total_cmp);
    v
}

/// A number that is `null` when undefined (non-finite).
fn num(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

/// Weighted absolute percentage error, Σ|actual − predicted| / Σ|actual|
/// (NaN when every actual is 0). Unlike MAPE, an actual near zero adds its
/// absolute error to the numerator and almost nothing to the denominator,
/// so a handful of them cannot make it explode.
pub fn wape(actual: &[f64], pred: &[f64]) -> f64 {
    let (e, a) = actual.iter().zip(pred).fold((0.0, 0.0), |(e, a), (y, p)| (e + (y - p).abs(), a + y.abs()));
    if a > 0.0 { e / a } else { f64::NAN }
}

/// MAE, RMSE, R², WAPE, MAPE and n of paired actuals/predictions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Metrics {
    /// Pairs.
    pub n: usize,
    /// The metrics, or why they could not be computed.
    #[serde(flatten)]
    pub values: MetricValues,
}

/// The metrics of [`Metrics`], or the reason there are none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum MetricValues {
    /// Computed (each `null` where undefined, all `null` without pairs).
    Computed(RegressionValues),
    /// The pairs were refused (e.g. a non-finite value).
    Failed {
        /// Why.
        error: String,
    },
}

/// Regression metrics, `null` where undefined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RegressionValues {
    /// Mean absolute error.
    pub mae: Option<f64>,
    /// Root mean squared error.
    pub rmse: Option<f64>,
    /// Coefficient of determination.
    pub r2: Option<f64>,
    /// Weighted absolute percentage error ([`wape`]).
    pub wape: Option<f64>,
    /// Mean absolute percentage error over non-zero actuals.
    pub mape: Option<f64>,
    /// Pairs in the MAPE.
    pub mape_n: usize,
    /// Pairs left out of the MAPE because their actual was 0.
    pub mape_skipped_zero_actuals: usize,
}

impl Metrics {
    /// The computed values, if any.
    pub fn computed(&self) -> Option<&RegressionValues> {
        match &self.values {
            MetricValues::Computed(v) => Some(v),
            MetricValues::Failed { .. } => None,
        }
    }
}

/// MAE, RMSE, R², WAPE, MAPE and n of paired actuals/predictions (nulls and the
/// reason where undefined).
pub fn metrics(actual: &[f64], pred: &[f64]) -> Metrics {
    if actual.is_empty() {
        return Metrics {
            n: 0,
            values: MetricValues::Computed(RegressionValues {
                mae: None,
                rmse: None,
                r2: None,
                wape: None,
                mape: None,
                mape_n: 0,
                mape_skipped_zero_actuals: 0,
            }),
        };
    }
    match regression_metrics(actual, pred) {
        Ok(m) => {
            let (mape, used, skipped) = match &m.mape {
                Ok(r) => (num(r.mape), r.n_used, r.n_skipped),
                Err(_) => (None, 0, actual.len()),
            };
            Metrics {
                n: m.n,
                values: MetricValues::Computed(RegressionValues {
                    mae: num(m.mae),
                    rmse: num(m.rmse),
                    r2: m.r2.as_ref().ok().and_then(|x| num(*x)),
                    wape: num(wape(actual, pred)),
                    mape,
                    mape_n: used,
                    mape_skipped_zero_actuals: skipped,
                }),
            }
        }
        Err(e) => Metrics { n: actual.len(), values: MetricValues::Failed { error: e.to_string() } },
    }
}

/// A window's overall metrics: [`Metrics`] and the classifier's accuracy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Overall {
    /// Metrics of the numeric pairs.
    #[serde(flatten)]
    pub metrics: Metrics,
    /// Label outcomes.
    pub labels: usize,
    /// Share of label outcomes equal to the predicted label (null without any).
    pub accuracy: Option<f64>,
}

/// Performance of a window, overall and per model version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Performance {
    /// Predictions in the window.
    pub predictions: usize,
    /// Every version together.
    pub overall: Overall,
    /// Per `payload.model_version` (`(none)` without one), in order of
    /// appearance; empty when no prediction names a version.
    pub versions: Entries<Metrics>,
}

/// Performance of a window, overall and per model version.
pub fn performance(w: &Window) -> Performance {
    let rows: Vec<usize> = w.matched().collect();
    let a: Vec<f64> = rows.iter().map(|&i| w.actual[i]).collect();
    let p: Vec<f64> = rows.iter().map(|&i| w.pred[i]).collect();
    let labels: Vec<i8> = w.label_hit.iter().copied().filter(|h| *h >= 0).collect();
    let accuracy =
        (!labels.is_empty()).then(|| labels.iter().filter(|h| **h == 1).count() as f64 / labels.len() as f64);
    let overall = Overall { metrics: metrics(&a, &p), labels: labels.len(), accuracy };
    let mut by_version = Entries::default();
    if w.versions.len() > 1 || w.versions.first().is_some_and(|v| !v.is_empty()) {
        for (code, name) in w.versions.iter().enumerate() {
            let rows: Vec<usize> = rows.iter().copied().filter(|&i| w.version[i] == code as u32).collect();
            let a: Vec<f64> = rows.iter().map(|&i| w.actual[i]).collect();
            let p: Vec<f64> = rows.iter().map(|&i| w.pred[i]).collect();
            by_version.push(if name.is_empty() { "(none)".into() } else { name.clone() }, metrics(&a, &p));
        }
    }
    Performance { predictions: w.n, overall, versions: by_version }
}
