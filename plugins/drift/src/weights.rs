//! Feature weights: how strongly each numeric feature goes with the target
//! (the actual value) and with the model's error, and how that changes
//! over time.
//!
//! Over a window's matched rows (a prediction with a numeric actual):
//! Pearson and Spearman correlation of the feature with the actual,
//! Spearman with the signed error (actual − predicted: a feature the model
//! under- or over-uses) and with the absolute error (where the model is
//! worse). A feature's *weight* is its |Spearman ρ| with the target divided
//! by the sum over the features, so the weights sum to 1.
//!
//! Trend: the rows (in event-time order) are cut into up to
//! `weights_buckets` consecutive equal-count buckets of at least
//! `weights_min_samples` rows; per bucket the same correlations. A
//! feature's trend is `strengthening` / `weakening` when |ρ with the
//! target| changed by more than 0.1 from the first to the last bucket,
//! `stable` otherwise.

use std::collections::BTreeMap;

use learnloop_plugin_api::JsonSchema;
use learnloop_stats::{pearson, spearman};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::json::nan;
use crate::window::Window;

const TREND_DELTA: f64 = 0.1;

struct Corr {
    target_pearson: Option<(f64, f64)>,
    target_spearman: Option<(f64, f64)>,
    error_spearman: Option<(f64, f64)>,
    abs_error_spearman: Option<(f64, f64)>,
}

fn corr(x: &[f64], y: &[f64], e: &[f64]) -> Corr {
    let a: Vec<f64> = e.iter().map(|v| v.abs()).collect();
    let pr = |r: learnloop_stats::Result<learnloop_stats::CorrelationResult>| r.ok().map(|r| (r.statistic, r.pvalue));
    Corr {
        target_pearson: pr(pearson(x, y)),
        target_spearman: pr(spearman(x, y)),
        error_spearman: pr(spearman(x, e)),
        abs_error_spearman: pr(spearman(x, &a)),
    }
}

/// A correlation coefficient and its p-value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Correlation {
    /// The coefficient.
    #[serde(deserialize_with = "nan")]
    #[schemars(with = "Option<f64>")]
    pub r: f64,
    /// Its p-value.
    #[serde(deserialize_with = "nan")]
    #[schemars(with = "Option<f64>")]
    pub p_value: f64,
}

fn pair(v: Option<(f64, f64)>) -> Option<Correlation> {
    v.map(|(r, p_value)| Correlation { r, p_value })
}

/// A feature's correlations with the actual.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TargetCorrelation {
    /// Pearson (null when undefined).
    pub pearson: Option<Correlation>,
    /// Spearman (null when undefined).
    pub spearman: Option<Correlation>,
}

/// A feature's Spearman correlation with an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorCorrelation {
    /// Spearman (null when undefined).
    pub spearman: Option<Correlation>,
}

/// One time bucket of a feature's trend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Bucket {
    /// Rows in the bucket.
    pub rows: usize,
    /// Event time of its first row (µs).
    pub first_row_time_us: Option<i64>,
    /// Event time of its last row (µs).
    pub last_row_time_us: Option<i64>,
    /// Spearman ρ with the actual.
    pub target_spearman: Option<f64>,
    /// Spearman ρ with the signed error.
    pub error_spearman: Option<f64>,
}

/// How a feature's correlation with the actual changed over the buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Trend {
    /// |ρ| grew by more than 0.1.
    Strengthening,
    /// |ρ| fell by more than 0.1.
    Weakening,
    /// Neither.
    Stable,
    /// Fewer than two buckets.
    Unknown,
}

/// A feature's weight, or why it has none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum FeatureWeight {
    /// Computed.
    Computed(Box<Weighted>),
    /// Too few rows with this feature.
    Skipped {
        /// Rows with the feature.
        n: usize,
        /// Why.
        skipped: String,
    },
}

/// A computed feature weight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Weighted {
    /// Rows with the feature.
    pub n: usize,
    /// |Spearman ρ| with the actual (0 when undefined).
    #[serde(deserialize_with = "nan")]
    #[schemars(with = "Option<f64>")]
    pub strength: f64,
    /// Correlations with the actual.
    pub target: TargetCorrelation,
    /// Correlation with the signed error.
    pub error: ErrorCorrelation,
    /// Correlation with the absolute error.
    pub abs_error: ErrorCorrelation,
    /// The trend.
    pub trend: Trend,
    /// The time buckets.
    pub buckets: Vec<Bucket>,
    /// strength / the sum of every feature's strength (absent when the
    /// strength is undefined).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<f64>,
}

/// A feature in the ranking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Ranked {
    /// The feature.
    pub feature: String,
    /// Its weight.
    #[serde(deserialize_with = "nan")]
    #[schemars(with = "Option<f64>")]
    pub weight: f64,
}

/// Feature weights of a window (the `weights` route's answer, without the
/// model and window).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WeightsReport {
    /// Matched outcomes in the window.
    pub matched_outcomes: usize,
    /// `weights_min_samples`.
    pub min_samples: usize,
    /// Why no weights were computed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// Features by weight, heaviest first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ranking: Option<Vec<Ranked>>,
    /// Time buckets of the trend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buckets: Option<usize>,
    /// Every numeric feature.
    pub features: BTreeMap<String, FeatureWeight>,
    /// The method, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
}

/// Feature weights and their trend over the window `w`.
pub fn weights(cfg: &Config, w: &Window) -> WeightsReport {
    let rows: Vec<usize> = w.matched().collect();
    let n = rows.len();
    let mut out = WeightsReport {
        matched_outcomes: n,
        min_samples: cfg.weights_min_samples,
        skipped: None,
        ranking: None,
        buckets: None,
        features: BTreeMap::new(),
        method: None,
    };
    if n < cfg.weights_min_samples {
        out.skipped = Some(format!("fewer than weights_min_samples = {} matched outcomes", cfg.weights_min_samples));
        return out;
    }
    let nb = cfg.weights_buckets.min(n / cfg.weights_min_samples);
    let mut features = BTreeMap::new();
    let mut total = 0.0;
    for (name, col) in &w.features {
        if col.kind() != "numeric" {
            continue;
        }
        // Rows of this feature with a value, in event-time order.
        let idx: Vec<usize> = rows.iter().copied().filter(|&i| col.nums[i].is_finite()).collect();
        if idx.len() < cfg.weights_min_samples {
            features.insert(
                name.clone(),
                FeatureWeight::Skipped { n: idx.len(), skipped: "too few rows with this feature".into() },
            );
            continue;
        }
        let x: Vec<f64> = idx.iter().map(|&i| col.nums[i]).collect();
        let y: Vec<f64> = idx.iter().map(|&i| w.actual[i]).collect();
        let e: Vec<f64> = idx.iter().map(|&i| w.actual[i] - w.pred[i]).collect();
        let c = corr(&x, &y, &e);
        let strength = c.target_spearman.map_or(0.0, |(r, _)| r.abs());
        total += strength;
        let mut buckets = Vec::new();
        if nb >= 2 {
            for b in 0..nb {
                let (lo, hi) = (b * x.len() / nb, (b + 1) * x.len() / nb);
                let c = corr(&x[lo..hi], &y[lo..hi], &e[lo..hi]);
                let i0 = idx[lo];
                let i1 = idx[hi - 1];
                buckets.push(Bucket {
                    rows: hi - lo,
                    first_row_time_us: w.times.get(i0).copied(),
                    last_row_time_us: w.times.get(i1).copied(),
                    target_spearman: c.target_spearman.map(|v| v.0).filter(|r| r.is_finite()),
                    error_spearman: c.error_spearman.map(|v| v.0),
                });
            }
        }
        let first = buckets.first().and_then(|b| b.target_spearman);
        let last = buckets.last().and_then(|b| b.target_spearman);
        let trend = match (first, last) {
            (Some(f), Some(l)) if l.abs() - f.abs() > TREND_DELTA => Trend::Strengthening,
            (Some(f), Some(l)) if f.abs() - l.abs() > TREND_DELTA => Trend::Weakening,
            (Some(_), Some(_)) => Trend::Stable,
            _ => Trend::Unknown,
        };
        features.insert(
            name.clone(),
            FeatureWeight::Computed(Box::new(Weighted {
                n: x.len(),
                strength,
                target: TargetCorrelation { pearson: pair(c.target_pearson), spearman: pair(c.target_spearman) },
                error: ErrorCorrelation { spearman: pair(c.error_spearman) },
                abs_error: ErrorCorrelation { spearman: pair(c.abs_error_spearman) },
                trend,
                buckets,
                weight: None,
            })),
        );
    }
    for v in features.values_mut() {
        if let FeatureWeight::Computed(f) = v {
            f.weight = f.strength.is_finite().then(|| if total > 0.0 { f.strength / total } else { 0.0 });
        }
    }
    let mut ranking: Vec<Ranked> = features
        .iter()
        .filter_map(|(k, v)| match v {
            FeatureWeight::Computed(f) => f.weight.map(|weight| Ranked { feature: k.clone(), weight }),
            FeatureWeight::Skipped { .. } => None,
        })
        .collect();
    ranking.sort_by(|a, b| b.weight.total_cmp(&a.weight).then_with(|| a.feature.cmp(&b.feature)));
    out.ranking = Some(ranking);
    out.buckets = Some(nb);
    out.features = features;
    out.method = Some(
        "weight = |spearman(feature, actual)| / sum over features; trend = change of |spearman with the actual| from the first to the last time bucket (> 0.1: strengthening or weakening)".into(),
    );
    out
}
