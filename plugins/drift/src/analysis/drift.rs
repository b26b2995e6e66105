//! The drift check of one model: every feature's test (Kolmogorov–Smirnov
//! or χ², with PSI), concept drift (Welch on the absolute error, or the
//! classifier's accuracy) and prediction drift, one Benjamini–Hochberg
//! family, severities and the recommendation (thresholds in [`super`]).

use std::collections::BTreeMap;

use learnloop_plugin_api::JsonSchema;
use learnloop_plugin_api::Timestamp;
use learnloop_stats::{
    Alternative, KsMethod, benjamini_hochberg, chi2_contingency_2xk, ks_2samp_sorted, mean, psi_sorted_reference, std,
    ttest_ind, wasserstein_sorted,
};
use serde::{Deserialize, Serialize};

use super::{Direction, Level, ModelKind, ValueType, change_severity, psi_severity, sorted};
use crate::config::Config;
use crate::json::opt_nan;
use crate::window::{Column, Window};

/// A category's share in each window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Proportion {
    /// Share in the reference window.
    pub reference: f64,
    /// Share in the current window.
    pub current: f64,
}

/// One test of a drift check: a feature's, the concept's or the
/// predictions'. Which fields are present depends on the test (and on
/// whether it ran); a present number is `null` where undefined.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReferenceSpan {
    /// The window.
    #[serde(flatten)]
    pub span: WindowSpan,
    /// Whether it is the pinned reference period.
    pub pinned: bool,
    /// Its start (RFC 3339; null out of range).
    pub from: Option<Timestamp>,
    /// Its end (RFC 3339; null out of range).
    pub until: Option<Timestamp>,
}

/// Feature drift (data drift) of a drift check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PredictionDrift {
    /// `prediction_drift`.
    pub drift_type: String,
    /// The test's severity.
    pub severity: Level,
    /// The test.
    pub test: TestDetail,
}

/// The drift check of one model (the `drift` route's answer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
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
            from: Timestamp::from_micros(r.from),
            until: Timestamp::from_micros(r.until),
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
