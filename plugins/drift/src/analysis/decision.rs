//! The retraining decision: a model's current loss against its own
//! reference loss by a one-sided Welch test; drift is context, not a
//! trigger.

use learnloop_plugin_api::JsonSchema;
use learnloop_stats::{Alternative, mean, ttest_ind};
use serde::{Deserialize, Serialize};

use super::{DriftReport, Level, ModelKind, Overall, performance};
use crate::config::Config;
use crate::json::opt_nan;
use crate::window::Window;

/// The per-row loss the retraining test compares: the absolute error of a
/// regression model, the miss (1 wrong, 0 right) of a classifier.
fn losses(w: &Window, classifier: bool) -> Vec<f64> {
    if classifier { w.label_misses() } else { w.errors().iter().map(|e| e.abs()).collect() }
}

/// The retraining decision of a model: its current window `c` against its
/// own reference `r` (the windows of the drift check `drift`).
///
/// Retraining is recommended only when both windows hold at least
/// `min_retrain_samples` matched outcomes and the current window's mean
/// loss (absolute error, or error rate for a classifier) is significantly
/// above `(1 + retrain_min_error_increase)` × the reference window's:
/// Welch's one-sided t-test of the current losses against the reference
/// losses scaled by that factor, at level `retrain_p_value` (stricter than
/// `p_value`: the daily job repeats the test on overlapping windows, and a
/// classifier's losses are 0/1, where Welch's variance is least reliable on
/// a short reference). Feature drift,
/// prediction drift, WAPE and MAPE are reported as context, not triggers:
/// a model whose inputs moved but whose error did not grow does not need
/// retraining, and no percentage error decides (MAPE explodes on actuals
/// near zero).
pub fn retrain(cfg: &Config, r: &Window, c: &Window, drift: &DriftReport) -> RetrainDecision {
    let classifier = drift.model_kind == ModelKind::Classifier;
    let (lr, lc) = (losses(r, classifier), losses(c, classifier));
    let (nr, nc) = (lr.len(), lc.len());
    let margin = cfg.retrain_min_error_increase;
    let loss = if classifier { "error rate" } else { "MAE" };
    let mut test = RetrainTest {
        test: "Welch t-test, one-sided: current loss > (1 + retrain_min_error_increase) x reference loss".into(),
        loss: if classifier {
            "miss per label outcome (error rate = 1 - accuracy)"
        } else {
            "|actual - predicted| (mean: MAE)"
        }
        .into(),
        n_reference: nr,
        n_current: nc,
        min_error_increase: margin,
        p_value_threshold: cfg.retrain_p_value,
        reference: None,
        current: None,
        ratio: None,
        statistic: None,
        df: None,
        p_value: None,
        skipped: None,
    };
    let mut reasons = Vec::new();
    let blocked = if nr < cfg.min_retrain_samples || nc < cfg.min_retrain_samples {
        test.skipped = Some("not enough matched outcomes".into());
        Some(format!(
            "{nr} matched outcomes in the reference window and {nc} in the current window (min_retrain_samples = {} in both)",
            cfg.min_retrain_samples
        ))
    } else {
        let (mr, mc) = (mean(&lr).unwrap_or(f64::NAN), mean(&lc).unwrap_or(f64::NAN));
        let ratio = if mr > 0.0 { mc / mr } else { f64::NAN };
        test.reference = Some(mr);
        test.current = Some(mc);
        test.ratio = Some(ratio);
        let scaled: Vec<f64> = lr.iter().map(|x| x * (1.0 + margin)).collect();
        match ttest_ind(&lc, &scaled, false, Alternative::Greater) {
            Ok(t) => {
                test.statistic = Some(t.statistic);
                test.df = Some(t.df);
                test.p_value = Some(t.pvalue);
                if t.pvalue <= cfg.retrain_p_value {
                    reasons.push(format!(
                        "the current window's {loss} {mc:.4} is significantly above (1 + {margin}) x the reference window's {mr:.4} (ratio {ratio:.3}, one-sided p = {:.2e})",
                        t.pvalue
                    ));
                }
            }
            Err(e) => test.skipped = Some(e.to_string()),
        }
        None
    };
    RetrainDecision {
        should_retrain: !reasons.is_empty(),
        reasons,
        blocked_by: blocked,
        test,
        checks: RetrainChecks {
            model_kind: drift.model_kind,
            reference_window: LossWindow::of(&performance(r).overall),
            current_window: LossWindow::of(&performance(c).overall),
            feature_drift_severity: drift.feature_drift.severity,
            concept_drift_severity: drift.concept_drift.severity,
            prediction_drift_severity: drift.prediction_drift.severity,
            min_retrain_samples: cfg.min_retrain_samples,
        },
        rule: "should_retrain = min_retrain_samples matched outcomes in both windows AND the current mean loss is significantly (one-sided Welch, p <= retrain_p_value) above (1 + retrain_min_error_increase) x the reference's; drift severities, WAPE and MAPE are context, not triggers".into(),
    }
}

/// The retraining test: the current window's losses against the
/// reference's scaled by `1 + retrain_min_error_increase`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RetrainTest {
    /// The test.
    pub test: String,
    /// The per-row loss.
    pub loss: String,
    /// Losses in the reference window.
    pub n_reference: usize,
    /// Losses in the current window.
    pub n_current: usize,
    /// `retrain_min_error_increase`.
    pub min_error_increase: f64,
    /// `retrain_p_value`.
    pub p_value_threshold: f64,
    /// Mean loss in the reference window.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "opt_nan")]
    pub reference: Option<f64>,
    /// Mean loss in the current window.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "opt_nan")]
    pub current: Option<f64>,
    /// Current / reference mean loss.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "opt_nan")]
    pub ratio: Option<f64>,
    /// Welch's t statistic.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "opt_nan")]
    pub statistic: Option<f64>,
    /// Its degrees of freedom.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "opt_nan")]
    pub df: Option<f64>,
    /// Its one-sided p-value.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "opt_nan")]
    pub p_value: Option<f64>,
    /// Why the test did not run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// A window's loss metrics in the retraining decision: [`Overall`]
/// without R² and the MAPE's count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LossWindow {
    /// Numeric pairs.
    pub n: usize,
    /// The metrics (absent when they could not be computed).
    #[serde(flatten)]
    pub values: Option<LossValues>,
    /// Label outcomes.
    pub labels: usize,
    /// Classifier accuracy (null without label outcomes).
    pub accuracy: Option<f64>,
}

/// The loss metrics of a [`LossWindow`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LossValues {
    /// Mean absolute error.
    pub mae: Option<f64>,
    /// Root mean squared error.
    pub rmse: Option<f64>,
    /// Weighted absolute percentage error.
    pub wape: Option<f64>,
    /// Mean absolute percentage error.
    pub mape: Option<f64>,
    /// Pairs left out of the MAPE because their actual was 0.
    pub mape_skipped_zero_actuals: usize,
}

impl LossWindow {
    /// The loss metrics of a window's overall metrics.
    pub fn of(o: &Overall) -> Self {
        Self {
            n: o.metrics.n,
            values: o.metrics.computed().map(|v| LossValues {
                mae: v.mae,
                rmse: v.rmse,
                wape: v.wape,
                mape: v.mape,
                mape_skipped_zero_actuals: v.mape_skipped_zero_actuals,
            }),
            labels: o.labels,
            accuracy: o.accuracy,
        }
    }
}

/// What the retraining decision looked at besides its test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RetrainChecks {
    /// Regression or classifier.
    pub model_kind: ModelKind,
    /// The reference window's losses.
    pub reference_window: LossWindow,
    /// The current window's losses.
    pub current_window: LossWindow,
    /// Feature drift severity (context).
    pub feature_drift_severity: Level,
    /// Concept drift severity (context).
    pub concept_drift_severity: Level,
    /// Prediction drift severity (context).
    pub prediction_drift_severity: Level,
    /// `min_retrain_samples`.
    pub min_retrain_samples: usize,
}

/// The retraining decision of a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RetrainDecision {
    /// Whether to retrain.
    pub should_retrain: bool,
    /// Why (empty when not).
    pub reasons: Vec<String>,
    /// What kept the test from running (too few outcomes), if anything.
    pub blocked_by: Option<String>,
    /// The test.
    pub test: RetrainTest,
    /// Context.
    pub checks: RetrainChecks,
    /// The rule, in words.
    pub rule: String,
}
