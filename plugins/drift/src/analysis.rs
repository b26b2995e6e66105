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

use std::collections::BTreeMap;

use learnloop_stats::{
    Alternative, KsMethod, SHAPIRO_MAX_N, benjamini_hochberg, chi2_contingency_2xk, holm, ks_2samp_sorted, kurtosis,
    mean, median, percentiles, psi_sorted_reference, regression_metrics, shapiro, skewness, std, ttest_1samp,
    ttest_ind, wasserstein_sorted,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::Config;
use crate::json::{Entries, opt_nan};
use crate::window::{Column, NONE, Window};
use learnloop_plugin_api::helpers::time_json;

/// The severity of a test or of a drift type, in increasing order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// Predicts a value.
    Regression,
    /// Predicts a label.
    Classifier,
}

/// Which way a model's loss moved from the reference to the current window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// The loss grew.
    Degraded,
    /// The loss did not grow.
    Improved,
}

/// The kind of values a feature test compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Pairs.
    pub n: usize,
    /// The metrics, or why they could not be computed.
    #[serde(flatten)]
    pub values: MetricValues,
}

/// The metrics of [`Metrics`], or the reason there are none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

/// A category's share in each window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proportion {
    /// Share in the reference window.
    pub reference: f64,
    /// Share in the current window.
    pub current: f64,
}

/// One test of a drift check: a feature's, the concept's or the
/// predictions'. Which fields are present depends on the test (and on
/// whether it ran); a present number is `null` where undefined.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TestDetail {
    /// The values compared (feature tests only).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub value_type: Option<ValueType>,
    /// The statistical test.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<String>,
    /// Values in the reference window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_reference: Option<usize>,
    /// Values in the current window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_current: Option<usize>,
    /// Classifier accuracy in the reference window.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "opt_nan")]
    pub accuracy_reference: Option<f64>,
    /// Classifier accuracy in the current window.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "opt_nan")]
    pub accuracy_current: Option<f64>,
    /// Classifier error rate in the reference window.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "opt_nan")]
    pub error_rate_reference: Option<f64>,
    /// Classifier error rate in the current window.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "opt_nan")]
    pub error_rate_current: Option<f64>,
    /// MAE in the reference window.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "opt_nan")]
    pub mae_reference: Option<f64>,
    /// MAE in the current window.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "opt_nan")]
    pub mae_current: Option<f64>,
    /// Relative change of the loss, in %.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "opt_nan")]
    pub performance_change_pct: Option<f64>,
    /// Which way the loss moved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    /// Why the test did not run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// The test statistic.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "opt_nan")]
    pub statistic: Option<f64>,
    /// Degrees of freedom of a χ² test.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dof: Option<usize>,
    /// Degrees of freedom of a t-test.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "opt_nan")]
    pub df: Option<f64>,
    /// The raw p-value.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "opt_nan")]
    pub p_value: Option<f64>,
    /// Population stability index.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "opt_nan")]
    pub psi: Option<f64>,
    /// Wasserstein distance.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "opt_nan")]
    pub wasserstein: Option<f64>,
    /// Mean in the reference window.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "opt_nan")]
    pub mean_reference: Option<f64>,
    /// Mean in the current window.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "opt_nan")]
    pub mean_current: Option<f64>,
    /// Current mean − reference mean.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "opt_nan")]
    pub mean_shift: Option<f64>,
    /// The mean shift in reference standard deviations.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "opt_nan")]
    pub mean_shift_in_reference_std: Option<f64>,
    /// Categories in both windows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categories: Option<usize>,
    /// Each category's share (the first 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proportions: Option<BTreeMap<String, Proportion>>,
    /// The feature's name, `abs_error`/`accuracy` (concept) or
    /// `predicted_value`/`predicted_label` (predictions).
    #[serde(default)]
    pub name: String,
    /// The Benjamini–Hochberg adjusted p-value (when the test ran).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "opt_nan")]
    pub q_value: Option<f64>,
    /// Whether the test is significant.
    #[serde(default)]
    pub drifted: bool,
    /// The test's severity.
    #[serde(default)]
    pub severity: Level,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    Feature,
    Concept,
    Prediction,
}

struct Test {
    family: Family,
    name: String,
    p: Option<f64>,
    effect: Level,
    detail: TestDetail,
}

fn skipped(family: Family, name: &str, mut detail: TestDetail, why: String) -> Test {
    detail.skipped = Some(why);
    Test { family, name: name.to_string(), p: None, effect: Level::None, detail }
}

fn numeric_test(cfg: &Config, family: Family, name: &str, r: Vec<f64>, c: Vec<f64>) -> Test {
    let (rs, cs) = (sorted(r), sorted(c));
    let mut detail = TestDetail {
        value_type: Some(ValueType::Numeric),
        test: Some("ks_2samp".into()),
        n_reference: Some(rs.len()),
        n_current: Some(cs.len()),
        ..Default::default()
    };
    if rs.len() < cfg.min_samples || cs.len() < cfg.min_samples {
        let why = format!("fewer than min_samples = {} values in a window", cfg.min_samples);
        return skipped(family, name, detail, why);
    }
    let ks = match ks_2samp_sorted(&rs, &cs, Alternative::TwoSided, KsMethod::Auto) {
        Ok(k) => k,
        Err(e) => return skipped(family, name, detail, e.to_string()),
    };
    let psi = psi_sorted_reference(&rs, &cs, cfg.psi_bins, 1e-4).map(|p| p.psi).unwrap_or(f64::NAN);
    let wd = wasserstein_sorted(&rs, &cs).unwrap_or(f64::NAN);
    let (mr, mc) = (mean(&rs).unwrap_or(f64::NAN), mean(&cs).unwrap_or(f64::NAN));
    let sr = std(&rs, 1).unwrap_or(f64::NAN);
    detail.statistic = Some(ks.statistic);
    detail.p_value = Some(ks.pvalue);
    detail.psi = Some(psi);
    detail.wasserstein = Some(wd);
    detail.mean_reference = Some(mr);
    detail.mean_current = Some(mc);
    detail.mean_shift = Some(mc - mr);
    detail.mean_shift_in_reference_std = Some(if sr > 0.0 { (mc - mr) / sr } else { f64::NAN });
    Test {
        family,
        name: name.to_string(),
        p: Some(ks.pvalue),
        effect: psi_severity(if psi.is_finite() { psi } else { 0.0 }),
        detail,
    }
}

fn categorical_test(cfg: &Config, name: &str, r: &Column, c: &Column) -> Test {
    counts_test(cfg, Family::Feature, name, &r.counts(), &c.counts())
}

/// χ² test of independence (2 × categories, no continuity correction) of
/// two windows' category counts, with the PSI of the proportions as effect.
fn counts_test(cfg: &Config, family: Family, name: &str, rc: &BTreeMap<&str, u64>, cc: &BTreeMap<&str, u64>) -> Test {
    let mut cats: Vec<&str> = rc.keys().chain(cc.keys()).copied().collect();
    cats.sort_unstable();
    cats.dedup();
    let row0: Vec<f64> = cats.iter().map(|k| *rc.get(k).unwrap_or(&0) as f64).collect();
    let row1: Vec<f64> = cats.iter().map(|k| *cc.get(k).unwrap_or(&0) as f64).collect();
    let (n0, n1) = (row0.iter().sum::<f64>(), row1.iter().sum::<f64>());
    let detail = TestDetail {
        value_type: Some(ValueType::Categorical),
        test: Some("chi2_contingency".into()),
        n_reference: Some(n0 as usize),
        n_current: Some(n1 as usize),
        ..Default::default()
    };
    if (n0 as usize) < cfg.min_samples || (n1 as usize) < cfg.min_samples {
        let why = format!("fewer than min_samples = {} values in a window", cfg.min_samples);
        return skipped(family, name, detail, why);
    }
    if cats.len() < 2 {
        return skipped(family, name, detail, "a single category in both windows".into());
    }
    let chi = match chi2_contingency_2xk(&row0, &row1) {
        Ok(c) => c,
        Err(e) => return skipped(family, name, detail, e.to_string()),
    };
    let eps = 1e-4;
    let mut psi = 0.0;
    let mut props = BTreeMap::new();
    for (i, k) in cats.iter().enumerate() {
        let (pr, pc) = ((row0[i] / n0).max(eps), (row1[i] / n1).max(eps));
        psi += (pc - pr) * (pc / pr).ln();
        if i < 50 {
            props.insert(k.to_string(), Proportion { reference: row0[i] / n0, current: row1[i] / n1 });
        }
    }
    let detail = TestDetail {
        statistic: Some(chi.statistic),
        dof: Some(chi.dof),
        p_value: Some(chi.pvalue),
        psi: Some(psi),
        categories: Some(cats.len()),
        proportions: Some(props),
        ..detail
    };
    Test { family, name: name.to_string(), p: Some(chi.pvalue), effect: psi_severity(psi), detail }
}

/// `f` over `items` on up to as many threads as there are cores, results
/// in `items`' order.
fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(items.len());
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut out: Vec<(usize, R)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        done.push((i, f(item)));
                    }
                    done
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().expect("a drift test panicked")).collect()
    });
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, r)| r).collect()
}

/// Concept drift of a classifier: the pooled two-proportion z-test of its
/// accuracy between windows (the χ² test of the 2 × 2 hits/misses table
/// without continuity correction, z² = χ²). `mr`/`mc` are per-row misses
/// (1 missed, 0 right). The effect is the relative change of the error rate.
fn accuracy_test(cfg: &Config, mr: &[f64], mc: &[f64]) -> Test {
    let mut d = TestDetail {
        test: Some("two-proportion z-test on accuracy (chi2_contingency 2x2, no continuity correction)".into()),
        n_reference: Some(mr.len()),
        n_current: Some(mc.len()),
        ..Default::default()
    };
    if mr.len() < cfg.min_samples || mc.len() < cfg.min_samples {
        let why = format!("fewer than min_samples = {} label outcomes in a window", cfg.min_samples);
        return skipped(Family::Concept, "accuracy", d, why);
    }
    let (er, ec) = (mr.iter().sum::<f64>() / mr.len() as f64, mc.iter().sum::<f64>() / mc.len() as f64);
    d.accuracy_reference = Some(1.0 - er);
    d.accuracy_current = Some(1.0 - ec);
    d.error_rate_reference = Some(er);
    d.error_rate_current = Some(ec);
    let change = if er > 0.0 {
        100.0 * (ec - er) / er
    } else if ec > 0.0 {
        f64::INFINITY
    } else {
        0.0
    };
    d.performance_change_pct = Some(change);
    d.direction = Some(if ec > er { Direction::Degraded } else { Direction::Improved });
    let row = |m: &[f64]| {
        let miss = m.iter().sum::<f64>();
        [m.len() as f64 - miss, miss]
    };
    match chi2_contingency_2xk(&row(mr), &row(mc)) {
        Ok(chi) => {
            d.statistic = Some(chi.statistic);
            d.p_value = Some(chi.pvalue);
            let effect = if change.is_finite() { change_severity(change) } else { Level::Critical };
            Test { family: Family::Concept, name: "accuracy".into(), p: Some(chi.pvalue), effect, detail: d }
        }
        Err(e) => skipped(Family::Concept, "accuracy", d, e.to_string()),
    }
}

/// Concept drift of a regression model: Welch's t-test of the absolute
/// errors, current vs reference.
fn abs_error_test(cfg: &Config, er: &[f64], ec: &[f64]) -> Test {
    let mut d = TestDetail {
        test: Some("ttest_ind (Welch) on |error|".into()),
        n_reference: Some(er.len()),
        n_current: Some(ec.len()),
        ..Default::default()
    };
    if er.len() < cfg.min_samples || ec.len() < cfg.min_samples {
        let why = format!("fewer than min_samples = {} matched outcomes in a window", cfg.min_samples);
        return skipped(Family::Concept, "abs_error", d, why);
    }
    let (mr, mc) = (mean(er).unwrap_or(f64::NAN), mean(ec).unwrap_or(f64::NAN));
    let change = if mr > 0.0 { 100.0 * (mc - mr) / mr } else { f64::NAN };
    d.mae_reference = Some(mr);
    d.mae_current = Some(mc);
    d.performance_change_pct = Some(change);
    d.direction = Some(if mc > mr { Direction::Degraded } else { Direction::Improved });
    match ttest_ind(ec, er, false, Alternative::TwoSided) {
        Ok(t) => {
            d.statistic = Some(t.statistic);
            d.df = Some(t.df);
            d.p_value = Some(t.pvalue);
            let effect = if change.is_finite() { change_severity(change) } else { Level::Critical };
            Test { family: Family::Concept, name: "abs_error".into(), p: Some(t.pvalue), effect, detail: d }
        }
        Err(e) => skipped(Family::Concept, "abs_error", d, e.to_string()),
    }
}

/// A window of a drift check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowSpan {
    /// Start (inclusive), µs.
    pub from_us: i64,
    /// End (exclusive), µs.
    pub until_us: i64,
    /// Predictions in it.
    pub predictions: usize,
}

/// The reference window of a drift check: the sliding window or the
/// model's pinned reference period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferenceSpan {
    /// The window.
    #[serde(flatten)]
    pub span: WindowSpan,
    /// Whether it is the pinned reference period.
    pub pinned: bool,
    /// Its start (RFC 3339; null out of range).
    pub from: Value,
    /// Its end (RFC 3339; null out of range).
    pub until: Value,
}

/// Feature drift (data drift) of a drift check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureDrift {
    /// `data_drift`.
    pub drift_type: String,
    /// The highest severity of the feature tests.
    pub severity: Level,
    /// Features with a significant test.
    pub affected_features: Vec<String>,
    /// Every feature's test, in name order.
    pub tests: Vec<TestDetail>,
}

/// Concept drift of a drift check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConceptDrift {
    /// `concept_drift`.
    pub drift_type: String,
    /// The test's severity.
    pub severity: Level,
    /// Significant and the loss grew.
    pub degraded: bool,
    /// The test.
    pub test: TestDetail,
}

/// Prediction drift of a drift check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictionDrift {
    /// `prediction_drift`.
    pub drift_type: String,
    /// The test's severity.
    pub severity: Level,
    /// The test.
    pub test: TestDetail,
}

/// The drift check of one model (the `drift` route's answer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftReport {
    /// The model.
    pub model: String,
    /// The reference window.
    pub reference: ReferenceSpan,
    /// The current window.
    pub current: WindowSpan,
    /// The significance level.
    pub p_value: f64,
    /// How the p-values were adjusted.
    pub adjustment: String,
    /// Regression or classifier.
    pub model_kind: ModelKind,
    /// The highest severity of the three drift types.
    pub severity: Level,
    /// Whether any drift type is significant.
    pub drifted: bool,
    /// Feature drift.
    pub feature_drift: FeatureDrift,
    /// Concept drift.
    pub concept_drift: ConceptDrift,
    /// Prediction drift.
    pub prediction_drift: PredictionDrift,
    /// What to do, in words.
    pub recommendation: String,
}

/// Completes a test with its adjusted p-value `q` (when it ran): name,
/// `q_value`, `drifted` and `severity`.
fn finish(cfg: &Config, t: Test, q: Option<f64>) -> TestDetail {
    let mut d = t.detail;
    d.name = t.name;
    match q {
        Some(q) => {
            d.q_value = Some(q);
            d.drifted = q <= cfg.p_value;
            d.severity = if d.drifted { t.effect } else { Level::None };
        }
        None => {
            d.drifted = false;
            d.severity = Level::None;
        }
    }
    d
}

/// The drift check of one model: reference window `r` (the pinned
/// reference period when `pinned`) vs current window `c`.
pub fn drift(cfg: &Config, model: &str, r: &Window, c: &Window, pinned: bool) -> DriftReport {
    let empty = Column::default();
    let names: std::collections::BTreeSet<&String> = r.features.keys().chain(c.features.keys()).collect();
    let names: Vec<&String> = names.into_iter().collect();
    // Features are independent: test them on every core.
    let mut tests: Vec<Test> = par_map(&names, |&name| {
        let rc = r.features.get(name).unwrap_or(&empty);
        let cc = c.features.get(name).unwrap_or(&empty);
        let kinds = (rc.kind(), cc.kind());
        match kinds {
            ("numeric" | "empty", "numeric" | "empty") => {
                numeric_test(cfg, Family::Feature, name, rc.values(), cc.values())
            }
            ("categorical" | "empty", "categorical" | "empty") => categorical_test(cfg, name, rc, cc),
            _ => Test {
                family: Family::Feature,
                name: name.clone(),
                p: None,
                effect: Level::None,
                detail: TestDetail {
                    value_type: Some(ValueType::Mixed),
                    skipped: Some("numbers and strings mixed in this feature".into()),
                    ..Default::default()
                },
            },
        }
    });
    // Concept drift: Welch t-test of absolute errors, current vs reference;
    // for a classifier, a two-proportion test of its accuracy.
    let classifier = r.is_classifier() || c.is_classifier();
    tests.push(if classifier {
        accuracy_test(cfg, &r.label_misses(), &c.label_misses())
    } else {
        let (er, ec): (Vec<f64>, Vec<f64>) =
            (r.errors().iter().map(|e| e.abs()).collect(), c.errors().iter().map(|e| e.abs()).collect());
        abs_error_test(cfg, &er, &ec)
    });
    tests.push(if classifier {
        counts_test(
            cfg,
            Family::Prediction,
            "predicted_label",
            &r.predicted_label_counts(),
            &c.predicted_label_counts(),
        )
    } else {
        numeric_test(cfg, Family::Prediction, "predicted_value", r.predicted(), c.predicted())
    });

    // One BH family over every test that ran.
    let ps: Vec<f64> = tests.iter().filter_map(|t| t.p).map(|p| p.clamp(0.0, 1.0)).collect();
    let qs = benjamini_hochberg(&ps).unwrap_or_else(|_| ps.clone());
    let mut qi = qs.into_iter();
    let (mut fs, mut cs, mut ps_) = (Level::None, Level::None, Level::None);
    let mut ftests = Vec::new();
    let mut affected = Vec::new();
    let (mut concept_d, mut pred_d) = (TestDetail::default(), TestDetail::default());
    for t in tests {
        let family = t.family;
        let q = t.p.map(|_| qi.next().unwrap_or(1.0));
        let d = finish(cfg, t, q);
        match family {
            Family::Feature => {
                fs = fs.max(d.severity);
                if d.severity > Level::None {
                    affected.push(d.name.clone());
                }
                ftests.push(d);
            }
            Family::Concept => {
                cs = cs.max(d.severity);
                concept_d = d;
            }
            Family::Prediction => {
                ps_ = ps_.max(d.severity);
                pred_d = d;
            }
        }
    }
    let degraded = concept_d.direction == Some(Direction::Degraded);
    let overall = fs.max(cs).max(ps_);

    let mut rec = Vec::new();
    if fs > Level::None {
        rec.push(if fs >= Level::High {
            format!("Input distribution shifted ({fs}) on {}: investigate the upstream data; retrain on recent data if the error grows (see the retraining decision).", affected.join(", "))
        } else {
            format!("Input distribution shifted slightly ({fs}) on {}: monitor these features.", affected.join(", "))
        });
    }
    let what = if classifier { "error rate (1 - accuracy)" } else { "absolute error" };
    if cs > Level::None {
        let pct = concept_d.performance_change_pct.filter(|x| x.is_finite()).unwrap_or(0.0);
        rec.push(if degraded {
            format!(
                "The {what} grew by {pct:.1}% ({cs}): the input-output relationship changed; retrain{}.",
                if cs >= Level::Medium { " soon" } else { " if it persists" }
            )
        } else {
            format!("The {what} fell by {:.1}%: the model fits recent data better; no action needed.", -pct)
        });
    }
    if ps_ > Level::None && classifier {
        rec.push(format!(
            "The predicted labels' distribution shifted ({ps_}): check the inputs and the model version in service."
        ));
    } else if ps_ > Level::None {
        rec.push(format!(
            "The predictions' distribution shifted ({ps_}; mean shift {}): check the inputs and the model version in service.",
            pred_d.mean_shift.filter(|x| x.is_finite()).map_or("?".into(), |x| format!("{x:.4}"))
        ));
    }
    if rec.is_empty() {
        rec.push("No significant drift: keep monitoring.".into());
    }
    DriftReport {
        model: model.to_string(),
        reference: ReferenceSpan {
            span: WindowSpan { from_us: r.from, until_us: r.until, predictions: r.n },
            pinned,
            from: time_json(r.from),
            until: time_json(r.until),
        },
        current: WindowSpan { from_us: c.from, until_us: c.until, predictions: c.n },
        p_value: cfg.p_value,
        adjustment: "benjamini_hochberg over every test of this check (features, concept, prediction)".into(),
        model_kind: if classifier { ModelKind::Classifier } else { ModelKind::Regression },
        severity: overall,
        drifted: overall > Level::None,
        feature_drift: FeatureDrift {
            drift_type: "data_drift".into(),
            severity: fs,
            affected_features: affected,
            tests: ftests,
        },
        concept_drift: ConceptDrift {
            drift_type: "concept_drift".into(),
            severity: cs,
            degraded: degraded && cs > Level::None,
            test: concept_d,
        },
        prediction_drift: PredictionDrift { drift_type: "prediction_drift".into(), severity: ps_, test: pred_d },
        recommendation: rec.join(" "),
    }
}
/// Percentiles of the errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorPercentiles {
    /// 25th.
    pub p25: Option<f64>,
    /// 50th.
    pub p50: Option<f64>,
    /// 75th.
    pub p75: Option<f64>,
    /// 90th.
    pub p90: Option<f64>,
    /// 95th.
    pub p95: Option<f64>,
}

/// Shapiro–Wilk's normality test of the errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normality {
    /// `shapiro`.
    pub test: String,
    /// The W statistic.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "opt_nan")]
    pub w: Option<f64>,
    /// The p-value.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "opt_nan")]
    pub p_value: Option<f64>,
    /// Errors tested (at most 5000, evenly spaced).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<usize>,
    /// p-value above `p_value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normal: Option<bool>,
    /// Why the test did not run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// The error distribution of a window (error = actual − predicted); the
/// statistics are absent without errors and `null` where undefined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Distribution {
    /// Errors.
    pub n: usize,
    /// `error = actual - predicted`.
    pub convention: String,
    /// Mean error.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "opt_nan")]
    pub mean: Option<f64>,
    /// Median error.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "opt_nan")]
    pub median: Option<f64>,
    /// Standard deviation (ddof 1).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "opt_nan")]
    pub std: Option<f64>,
    /// Percentiles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentiles: Option<ErrorPercentiles>,
    /// Skewness (bias-corrected).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "opt_nan")]
    pub skewness: Option<f64>,
    /// Excess kurtosis (bias-corrected).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "opt_nan")]
    pub kurtosis: Option<f64>,
    /// Mean absolute error.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "opt_nan")]
    pub mean_abs_error: Option<f64>,
    /// Normality test.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normality: Option<Normality>,
}

/// One segment's systematic-error test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// The feature.
    pub feature: String,
    /// The category, or the numeric bin `[lo, hi)`.
    pub segment: String,
    /// Errors in the segment.
    pub n: usize,
    /// Mean error.
    pub mean_error: Option<f64>,
    /// One-sample t statistic against 0.
    pub t_statistic: Option<f64>,
    /// Its p-value.
    pub p_value: Option<f64>,
    /// Holm-adjusted p-value.
    pub p_adjusted: Option<f64>,
    /// Whether the adjusted p-value is at most `p_value`.
    pub systematic: bool,
    /// What a systematic error means, in words (`none` otherwise).
    pub pattern: String,
}

/// Systematic errors per segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystematicErrors {
    /// The test.
    pub test: String,
    /// The adjustment.
    pub adjustment: String,
    /// Segments tested.
    pub segments_tested: usize,
    /// Segments too small (or constant) to test.
    pub segments_skipped: usize,
    /// The systematic segments, most significant first.
    pub systematic: Vec<Segment>,
    /// Every tested segment, most significant first.
    pub segments: Vec<Segment>,
}

/// Error distribution and systematic errors of a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorsReport {
    /// The distribution.
    pub distribution: Distribution,
    /// The segments.
    pub systematic_errors: SystematicErrors,
}

/// Error distribution and systematic errors per segment of a window.
pub fn errors(cfg: &Config, w: &Window) -> ErrorsReport {
    let rows: Vec<usize> = w.matched().collect();
    let errs: Vec<f64> = rows.iter().map(|&i| w.actual[i] - w.pred[i]).collect();
    let n = errs.len();
    let mut dist = Distribution {
        n,
        convention: "error = actual - predicted".into(),
        mean: None,
        median: None,
        std: None,
        percentiles: None,
        skewness: None,
        kurtosis: None,
        mean_abs_error: None,
        normality: None,
    };
    if n > 0 {
        dist.mean = Some(mean(&errs).unwrap_or(f64::NAN));
        dist.median = Some(median(&errs).unwrap_or(f64::NAN));
        dist.std = Some(std(&errs, 1).unwrap_or(f64::NAN));
        if let Ok(p) = percentiles(&errs, &[25.0, 50.0, 75.0, 90.0, 95.0]) {
            dist.percentiles = Some(ErrorPercentiles {
                p25: num(p[0]),
                p50: num(p[1]),
                p75: num(p[2]),
                p90: num(p[3]),
                p95: num(p[4]),
            });
        }
        dist.skewness = Some(skewness(&errs, true).unwrap_or(f64::NAN));
        dist.kurtosis = Some(kurtosis(&errs, true).unwrap_or(f64::NAN));
        let abs: Vec<f64> = errs.iter().map(|e| e.abs()).collect();
        dist.mean_abs_error = Some(mean(&abs).unwrap_or(f64::NAN));
        // Shapiro–Wilk is defined for 3..=5000 values; above, an evenly
        // spaced deterministic subsample of 5000 (in row order) is tested.
        let sample: Vec<f64> = if n > SHAPIRO_MAX_N {
            (0..SHAPIRO_MAX_N).map(|k| errs[k * n / SHAPIRO_MAX_N]).collect()
        } else {
            errs.clone()
        };
        dist.normality = Some(match shapiro(&sample) {
            Ok(s) => Normality {
                test: "shapiro".into(),
                w: Some(s.w),
                p_value: Some(s.pvalue),
                n: Some(sample.len()),
                normal: Some(s.pvalue > cfg.p_value),
                skipped: None,
            },
            Err(e) => Normality {
                test: "shapiro".into(),
                w: None,
                p_value: None,
                n: None,
                normal: None,
                skipped: Some(e.to_string()),
            },
        });
    }

    // Segments: each category of a categorical feature, quantile bins of a numeric one.
    struct Seg {
        feature: String,
        segment: String,
        errs: Vec<f64>,
    }
    let mut segs: Vec<Seg> = Vec::new();
    for (name, col) in &w.features {
        match col.kind() {
            "categorical" => {
                let mut by: BTreeMap<u32, Vec<f64>> = BTreeMap::new();
                for (k, &i) in rows.iter().enumerate() {
                    if col.cats[i] != NONE {
                        by.entry(col.cats[i]).or_default().push(errs[k]);
                    }
                }
                for (code, e) in by {
                    segs.push(Seg { feature: name.clone(), segment: col.dict[code as usize].clone(), errs: e });
                }
            }
            "numeric" => {
                let vals: Vec<f64> = rows.iter().map(|&i| col.nums[i]).filter(|x| x.is_finite()).collect();
                if vals.len() < cfg.min_samples {
                    continue;
                }
                let qs: Vec<f64> = (1..cfg.segment_bins).map(|k| 100.0 * k as f64 / cfg.segment_bins as f64).collect();
                let mut edges = percentiles(&vals, &qs).unwrap_or_default();
                edges.dedup();
                let mut bins: Vec<Vec<f64>> = vec![Vec::new(); edges.len() + 1];
                for (k, &i) in rows.iter().enumerate() {
                    let x = col.nums[i];
                    if x.is_finite() {
                        bins[edges.partition_point(|e| *e <= x)].push(errs[k]);
                    }
                }
                for (b, e) in bins.into_iter().enumerate() {
                    let lo = if b == 0 { "-inf".to_string() } else { format!("{}", edges[b - 1]) };
                    let hi = if b == edges.len() { "inf".to_string() } else { format!("{}", edges[b]) };
                    segs.push(Seg { feature: name.clone(), segment: format!("[{lo}, {hi})"), errs: e });
                }
            }
            _ => {}
        }
    }
    let mut tested: Vec<(Seg, f64, f64)> = Vec::new();
    let mut skipped = 0usize;
    for s in segs {
        if s.errs.len() < cfg.min_samples {
            skipped += 1;
            continue;
        }
        match ttest_1samp(&s.errs, 0.0, Alternative::TwoSided) {
            Ok(t) => tested.push((s, t.statistic, t.pvalue)),
            Err(_) => skipped += 1,
        }
    }
    let ps: Vec<f64> = tested.iter().map(|t| t.2.clamp(0.0, 1.0)).collect();
    let adj = holm(&ps).unwrap_or_else(|_| ps.clone());
    let mut segments: Vec<(f64, Segment)> = tested
        .into_iter()
        .zip(adj)
        .map(|((s, stat, p), q)| {
            let m = mean(&s.errs).unwrap_or(f64::NAN);
            let systematic = q <= cfg.p_value;
            let pattern = if !systematic {
                "none"
            } else if m > 0.0 {
                "under-predicts (actual above prediction)"
            } else {
                "over-predicts (actual below prediction)"
            };
            let v = Segment {
                n: s.errs.len(),
                feature: s.feature,
                segment: s.segment,
                mean_error: num(m),
                t_statistic: num(stat),
                p_value: num(p),
                p_adjusted: num(q),
                systematic,
                pattern: pattern.into(),
            };
            (q, v)
        })
        .collect();
    segments.sort_by(|a, b| a.0.total_cmp(&b.0));
    let segments: Vec<Segment> = segments.into_iter().map(|s| s.1).collect();
    ErrorsReport {
        distribution: dist,
        systematic_errors: SystematicErrors {
            test: "ttest_1samp against 0 per segment".into(),
            adjustment: "holm over the segments tested".into(),
            segments_tested: segments.len(),
            segments_skipped: skipped,
            systematic: segments.iter().filter(|v| v.systematic).cloned().collect(),
            segments,
        },
    }
}

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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
