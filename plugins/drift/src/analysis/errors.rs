//! The error analysis of a window: the distribution of `actual −
//! predicted` and the segments (categories, numeric quantile bins) whose
//! mean error is significantly not 0 (Holm adjusted).

use std::collections::BTreeMap;

use learnloop_plugin_api::JsonSchema;
use learnloop_stats::{
    Alternative, SHAPIRO_MAX_N, holm, kurtosis, mean, median, percentiles, shapiro, skewness, std, ttest_1samp,
};
use serde::{Deserialize, Serialize};

use super::num;
use crate::config::Config;
use crate::json::opt_nan;
use crate::window::{NONE, Window};

/// Percentiles of the errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
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
