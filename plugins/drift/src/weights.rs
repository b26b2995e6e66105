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

use learnloop_stats::{pearson, spearman};
use serde_json::{Map, Value, json};

use crate::config::Config;
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

fn pair(v: Option<(f64, f64)>) -> Value {
    match v {
        Some((r, p)) => json!({"r": r, "p_value": p}),
        None => Value::Null,
    }
}

/// Feature weights and their trend over the window `w`.
pub fn weights(cfg: &Config, w: &Window) -> Value {
    let rows: Vec<usize> = w.matched().collect();
    let n = rows.len();
    let mut out = json!({"matched_outcomes": n, "min_samples": cfg.weights_min_samples});
    if n < cfg.weights_min_samples {
        out["skipped"] =
            json!(format!("fewer than weights_min_samples = {} matched outcomes", cfg.weights_min_samples));
        out["features"] = json!({});
        return out;
    }
    let nb = cfg.weights_buckets.min(n / cfg.weights_min_samples);
    let mut features = Map::new();
    let mut total = 0.0;
    for (name, col) in &w.features {
        if col.kind() != "numeric" {
            continue;
        }
        // Rows of this feature with a value, in event-time order.
        let idx: Vec<usize> = rows.iter().copied().filter(|&i| col.nums[i].is_finite()).collect();
        if idx.len() < cfg.weights_min_samples {
            features.insert(name.clone(), json!({"n": idx.len(), "skipped": "too few rows with this feature"}));
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
                buckets.push(json!({
                    "rows": hi - lo,
                    "first_row_time_us": w.times.get(i0), "last_row_time_us": w.times.get(i1),
                    "target_spearman": c.target_spearman.map(|v| v.0), "error_spearman": c.error_spearman.map(|v| v.0),
                }));
            }
        }
        let first = buckets.first().and_then(|b| b["target_spearman"].as_f64());
        let last = buckets.last().and_then(|b| b["target_spearman"].as_f64());
        let trend = match (first, last) {
            (Some(f), Some(l)) if l.abs() - f.abs() > TREND_DELTA => "strengthening",
            (Some(f), Some(l)) if f.abs() - l.abs() > TREND_DELTA => "weakening",
            (Some(_), Some(_)) => "stable",
            _ => "unknown",
        };
        features.insert(
            name.clone(),
            json!({
                "n": x.len(), "strength": strength,
                "target": {"pearson": pair(c.target_pearson), "spearman": pair(c.target_spearman)},
                "error": {"spearman": pair(c.error_spearman)},
                "abs_error": {"spearman": pair(c.abs_error_spearman)},
                "trend": trend, "buckets": buckets,
            }),
        );
    }
    for v in features.values_mut() {
        if let Some(s) = v["strength"].as_f64() {
            v["weight"] = json!(if total > 0.0 { s / total } else { 0.0 });
        }
    }
    let mut ranking: Vec<(String, f64)> =
        features.iter().filter_map(|(k, v)| v["weight"].as_f64().map(|w| (k.clone(), w))).collect();
    ranking.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    out["ranking"] = json!(ranking.iter().map(|(k, w)| json!({"feature": k, "weight": w})).collect::<Vec<_>>());
    out["buckets"] = json!(nb);
    out["features"] = Value::Object(features);
    out["method"] = json!(
        "weight = |spearman(feature, actual)| / sum over features; trend = change of |spearman with the actual| from the first to the last time bucket (> 0.1: strengthening or weakening)"
    );
    out
}
