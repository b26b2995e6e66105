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
use serde_json::{Map, Value, json};

use crate::config::Config;
use crate::window::{Column, NONE, Window};

/// Severity names in increasing order.
pub const SEVERITIES: [&str; 5] = ["none", "low", "medium", "high", "critical"];

/// Rank of a severity name (0 for `none` or unknown).
pub fn rank(s: &str) -> usize {
    SEVERITIES.iter().position(|x| *x == s).unwrap_or(0)
}

fn psi_severity(psi: f64) -> &'static str {
    if psi < 0.10 {
        "low"
    } else if psi < 0.25 {
        "medium"
    } else if psi < 0.5 {
        "high"
    } else {
        "critical"
    }
}

fn change_severity(pct: f64) -> &'static str {
    let a = pct.abs();
    if a < 10.0 {
        "low"
    } else if a < 25.0 {
        "medium"
    } else if a < 50.0 {
        "high"
    } else {
        "critical"
    }
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    // Equal under total_cmp means bit-identical, so unstable is exact.
    v.sort_unstable_by(f64::total_cmp);
    v
}

fn num(x: f64) -> Value {
    if x.is_finite() { json!(x) } else { Value::Null }
}

/// Weighted absolute percentage error, Σ|actual − predicted| / Σ|actual|
/// (NaN when every actual is 0). Unlike MAPE, an actual near zero adds its
/// absolute error to the numerator and almost nothing to the denominator,
/// so a handful of them cannot make it explode.
pub fn wape(actual: &[f64], pred: &[f64]) -> f64 {
    let (e, a) = actual.iter().zip(pred).fold((0.0, 0.0), |(e, a), (y, p)| (e + (y - p).abs(), a + y.abs()));
    if a > 0.0 { e / a } else { f64::NAN }
}

/// MAE, RMSE, R², WAPE, MAPE and n of paired actuals/predictions (nulls and the
/// reason where undefined).
pub fn metrics(actual: &[f64], pred: &[f64]) -> Value {
    if actual.is_empty() {
        return json!({"n": 0, "mae": null, "rmse": null, "r2": null, "wape": null, "mape": null, "mape_n": 0, "mape_skipped_zero_actuals": 0});
    }
    match regression_metrics(actual, pred) {
        Ok(m) => {
            let (mape, used, skipped) = match &m.mape {
                Ok(r) => (num(r.mape), r.n_used, r.n_skipped),
                Err(_) => (Value::Null, 0, actual.len()),
            };
            json!({"n": m.n, "mae": num(m.mae), "rmse": num(m.rmse),
                   "r2": m.r2.as_ref().map(|x| num(*x)).unwrap_or(Value::Null),
                   "wape": num(wape(actual, pred)),
                   "mape": mape, "mape_n": used, "mape_skipped_zero_actuals": skipped})
        }
        Err(e) => json!({"n": actual.len(), "error": e.to_string()}),
    }
}

/// Performance of a window, overall and per model version.
pub fn performance(w: &Window) -> Value {
    let rows: Vec<usize> = w.matched().collect();
    let a: Vec<f64> = rows.iter().map(|&i| w.actual[i]).collect();
    let p: Vec<f64> = rows.iter().map(|&i| w.pred[i]).collect();
    let mut overall = metrics(&a, &p);
    let labels: Vec<i8> = w.label_hit.iter().copied().filter(|h| *h >= 0).collect();
    overall["labels"] = json!(labels.len());
    overall["accuracy"] = if labels.is_empty() {
        Value::Null
    } else {
        json!(labels.iter().filter(|h| **h == 1).count() as f64 / labels.len() as f64)
    };
    let mut by_version = Map::new();
    if w.versions.len() > 1 || w.versions.first().is_some_and(|v| !v.is_empty()) {
        for (code, name) in w.versions.iter().enumerate() {
            let rows: Vec<usize> = rows.iter().copied().filter(|&i| w.version[i] == code as u32).collect();
            let a: Vec<f64> = rows.iter().map(|&i| w.actual[i]).collect();
            let p: Vec<f64> = rows.iter().map(|&i| w.pred[i]).collect();
            by_version.insert(if name.is_empty() { "(none)".into() } else { name.clone() }, metrics(&a, &p));
        }
    }
    json!({"predictions": w.n, "overall": overall, "versions": by_version})
}

struct Test {
    family: &'static str,
    name: String,
    p: Option<f64>,
    effect: &'static str,
    detail: Value,
}

fn numeric_test(cfg: &Config, family: &'static str, name: &str, r: Vec<f64>, c: Vec<f64>) -> Test {
    let (rs, cs) = (sorted(r), sorted(c));
    let mut detail = json!({"type": "numeric", "test": "ks_2samp", "n_reference": rs.len(), "n_current": cs.len()});
    let skip = |mut detail: Value, why: String| {
        detail["skipped"] = json!(why);
        Test { family, name: name.to_string(), p: None, effect: "none", detail }
    };
    if rs.len() < cfg.min_samples || cs.len() < cfg.min_samples {
        return skip(detail, format!("fewer than min_samples = {} values in a window", cfg.min_samples));
    }
    let ks = match ks_2samp_sorted(&rs, &cs, Alternative::TwoSided, KsMethod::Auto) {
        Ok(k) => k,
        Err(e) => return skip(detail, e.to_string()),
    };
    let psi = psi_sorted_reference(&rs, &cs, cfg.psi_bins, 1e-4).map(|p| p.psi).unwrap_or(f64::NAN);
    let wd = wasserstein_sorted(&rs, &cs).unwrap_or(f64::NAN);
    let (mr, mc) = (mean(&rs).unwrap_or(f64::NAN), mean(&cs).unwrap_or(f64::NAN));
    let sr = std(&rs, 1).unwrap_or(f64::NAN);
    detail["statistic"] = num(ks.statistic);
    detail["p_value"] = num(ks.pvalue);
    detail["psi"] = num(psi);
    detail["wasserstein"] = num(wd);
    detail["mean_reference"] = num(mr);
    detail["mean_current"] = num(mc);
    detail["mean_shift"] = num(mc - mr);
    detail["mean_shift_in_reference_std"] = num(if sr > 0.0 { (mc - mr) / sr } else { f64::NAN });
    Test {
        family,
        name: name.to_string(),
        p: Some(ks.pvalue),
        effect: psi_severity(if psi.is_finite() { psi } else { 0.0 }),
        detail,
    }
}

fn categorical_test(cfg: &Config, name: &str, r: &Column, c: &Column) -> Test {
    counts_test(cfg, "feature", name, &r.counts(), &c.counts())
}

/// χ² test of independence (2 × categories, no continuity correction) of
/// two windows' category counts, with the PSI of the proportions as effect.
fn counts_test(
    cfg: &Config,
    family: &'static str,
    name: &str,
    rc: &BTreeMap<&str, u64>,
    cc: &BTreeMap<&str, u64>,
) -> Test {
    let mut cats: Vec<&str> = rc.keys().chain(cc.keys()).copied().collect();
    cats.sort_unstable();
    cats.dedup();
    let row0: Vec<f64> = cats.iter().map(|k| *rc.get(k).unwrap_or(&0) as f64).collect();
    let row1: Vec<f64> = cats.iter().map(|k| *cc.get(k).unwrap_or(&0) as f64).collect();
    let (n0, n1) = (row0.iter().sum::<f64>(), row1.iter().sum::<f64>());
    let mut detail =
        json!({"type": "categorical", "test": "chi2_contingency", "n_reference": n0 as u64, "n_current": n1 as u64});
    let skip = |mut detail: Value, why: String| {
        detail["skipped"] = json!(why);
        Test { family, name: name.to_string(), p: None, effect: "none", detail }
    };
    if (n0 as usize) < cfg.min_samples || (n1 as usize) < cfg.min_samples {
        return skip(detail, format!("fewer than min_samples = {} values in a window", cfg.min_samples));
    }
    if cats.len() < 2 {
        return skip(detail, "a single category in both windows".into());
    }
    let chi = match chi2_contingency_2xk(&row0, &row1) {
        Ok(c) => c,
        Err(e) => return skip(detail, e.to_string()),
    };
    let eps = 1e-4;
    let mut psi = 0.0;
    let mut props = Map::new();
    for (i, k) in cats.iter().enumerate() {
        let (pr, pc) = ((row0[i] / n0).max(eps), (row1[i] / n1).max(eps));
        psi += (pc - pr) * (pc / pr).ln();
        if i < 50 {
            props.insert(k.to_string(), json!({"reference": row0[i] / n0, "current": row1[i] / n1}));
        }
    }
    detail["statistic"] = num(chi.statistic);
    detail["dof"] = json!(chi.dof);
    detail["p_value"] = num(chi.pvalue);
    detail["psi"] = num(psi);
    detail["categories"] = json!(cats.len());
    detail["proportions"] = Value::Object(props);
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
    let mut d = json!({"test": "two-proportion z-test on accuracy (chi2_contingency 2x2, no continuity correction)",
                       "n_reference": mr.len(), "n_current": mc.len()});
    let skip = |mut d: Value, why: String| {
        d["skipped"] = json!(why);
        Test { family: "concept", name: "accuracy".into(), p: None, effect: "none", detail: d }
    };
    if mr.len() < cfg.min_samples || mc.len() < cfg.min_samples {
        return skip(d, format!("fewer than min_samples = {} label outcomes in a window", cfg.min_samples));
    }
    let (er, ec) = (mr.iter().sum::<f64>() / mr.len() as f64, mc.iter().sum::<f64>() / mc.len() as f64);
    d["accuracy_reference"] = num(1.0 - er);
    d["accuracy_current"] = num(1.0 - ec);
    d["error_rate_reference"] = num(er);
    d["error_rate_current"] = num(ec);
    let change = if er > 0.0 {
        100.0 * (ec - er) / er
    } else if ec > 0.0 {
        f64::INFINITY
    } else {
        0.0
    };
    d["performance_change_pct"] = num(change);
    d["direction"] = json!(if ec > er { "degraded" } else { "improved" });
    let row = |m: &[f64]| {
        let miss = m.iter().sum::<f64>();
        [m.len() as f64 - miss, miss]
    };
    match chi2_contingency_2xk(&row(mr), &row(mc)) {
        Ok(chi) => {
            d["statistic"] = num(chi.statistic);
            d["p_value"] = num(chi.pvalue);
            let effect = if change.is_finite() { change_severity(change) } else { "critical" };
            Test { family: "concept", name: "accuracy".into(), p: Some(chi.pvalue), effect, detail: d }
        }
        Err(e) => skip(d, e.to_string()),
    }
}

/// The drift check of one model: reference window `r` vs current window `c`.
pub fn drift(cfg: &Config, model: &str, r: &Window, c: &Window) -> Value {
    let empty = Column::default();
    let names: std::collections::BTreeSet<&String> = r.features.keys().chain(c.features.keys()).collect();
    let names: Vec<&String> = names.into_iter().collect();
    // Features are independent: test them on every core.
    let mut tests: Vec<Test> = par_map(&names, |&name| {
        let rc = r.features.get(name).unwrap_or(&empty);
        let cc = c.features.get(name).unwrap_or(&empty);
        let kinds = (rc.kind(), cc.kind());
        match kinds {
            ("numeric" | "empty", "numeric" | "empty") => numeric_test(cfg, "feature", name, rc.values(), cc.values()),
            ("categorical" | "empty", "categorical" | "empty") => categorical_test(cfg, name, rc, cc),
            _ => Test {
                family: "feature",
                name: name.clone(),
                p: None,
                effect: "none",
                detail: json!({"type": "mixed", "skipped": "numbers and strings mixed in this feature"}),
            },
        }
    });
    // Concept drift: Welch t-test of absolute errors, current vs reference;
    // for a classifier, a two-proportion test of its accuracy.
    let classifier = r.is_classifier() || c.is_classifier();
    let (er, ec): (Vec<f64>, Vec<f64>) =
        (r.errors().iter().map(|e| e.abs()).collect(), c.errors().iter().map(|e| e.abs()).collect());
    let mut concept = json!({"test": "ttest_ind (Welch) on |error|", "n_reference": er.len(), "n_current": ec.len()});
    let concept_test = if classifier {
        accuracy_test(cfg, &r.label_misses(), &c.label_misses())
    } else if er.len() < cfg.min_samples || ec.len() < cfg.min_samples {
        concept["skipped"] =
            json!(format!("fewer than min_samples = {} matched outcomes in a window", cfg.min_samples));
        Test { family: "concept", name: "abs_error".into(), p: None, effect: "none", detail: concept }
    } else {
        let (mr, mc) = (mean(&er).unwrap_or(f64::NAN), mean(&ec).unwrap_or(f64::NAN));
        let change = if mr > 0.0 { 100.0 * (mc - mr) / mr } else { f64::NAN };
        concept["mae_reference"] = num(mr);
        concept["mae_current"] = num(mc);
        concept["performance_change_pct"] = num(change);
        concept["direction"] = json!(if mc > mr { "degraded" } else { "improved" });
        match ttest_ind(&ec, &er, false, Alternative::TwoSided) {
            Ok(t) => {
                concept["statistic"] = num(t.statistic);
                concept["df"] = num(t.df);
                concept["p_value"] = num(t.pvalue);
                let effect = if change.is_finite() { change_severity(change) } else { "critical" };
                Test { family: "concept", name: "abs_error".into(), p: Some(t.pvalue), effect, detail: concept }
            }
            Err(e) => {
                concept["skipped"] = json!(e.to_string());
                Test { family: "concept", name: "abs_error".into(), p: None, effect: "none", detail: concept }
            }
        }
    };
    tests.push(concept_test);
    tests.push(if classifier {
        counts_test(cfg, "prediction", "predicted_label", &r.predicted_label_counts(), &c.predicted_label_counts())
    } else {
        numeric_test(cfg, "prediction", "predicted_value", r.predicted(), c.predicted())
    });

    // One BH family over every test that ran.
    let ps: Vec<f64> = tests.iter().filter_map(|t| t.p).map(|p| p.clamp(0.0, 1.0)).collect();
    let qs = benjamini_hochberg(&ps).unwrap_or_else(|_| ps.clone());
    let mut qi = qs.into_iter();
    let mut out: BTreeMap<&str, (usize, Vec<Value>, Vec<String>)> = BTreeMap::new();
    for fam in ["feature", "concept", "prediction"] {
        out.insert(fam, (0, Vec::new(), Vec::new()));
    }
    for t in tests {
        let mut d = t.detail;
        d["name"] = json!(t.name);
        let sev = match t.p {
            Some(_) => {
                let q = qi.next().unwrap_or(1.0);
                d["q_value"] = num(q);
                let drifted = q <= cfg.p_value;
                d["drifted"] = json!(drifted);
                if drifted { t.effect } else { "none" }
            }
            None => {
                d["drifted"] = json!(false);
                "none"
            }
        };
        d["severity"] = json!(sev);
        let e = out.get_mut(t.family).expect("family");
        e.0 = e.0.max(rank(sev));
        if rank(sev) > 0 {
            e.2.push(t.name.clone());
        }
        e.1.push(d);
    }
    let (fs, ftests, affected) = out.remove("feature").unwrap_or_default();
    let (cs, mut ctests, _) = out.remove("concept").unwrap_or_default();
    let (ps_, mut ptests, _) = out.remove("prediction").unwrap_or_default();
    let concept_d = ctests.pop().unwrap_or(Value::Null);
    let pred_d = ptests.pop().unwrap_or(Value::Null);
    let degraded = concept_d["direction"] == "degraded";
    let overall = fs.max(cs).max(ps_);

    let mut rec = Vec::new();
    if fs > 0 {
        rec.push(if fs >= 3 {
            format!("Input distribution shifted ({}) on {}: investigate the upstream data; retrain on recent data if the error grows (see the retraining decision).", SEVERITIES[fs], affected.join(", "))
        } else {
            format!("Input distribution shifted slightly ({}) on {}: monitor these features.", SEVERITIES[fs], affected.join(", "))
        });
    }
    let what = if classifier { "error rate (1 - accuracy)" } else { "absolute error" };
    if cs > 0 {
        let pct = concept_d["performance_change_pct"].as_f64().unwrap_or(0.0);
        rec.push(if degraded {
            format!(
                "The {what} grew by {pct:.1}% ({}): the input-output relationship changed; retrain{}.",
                SEVERITIES[cs],
                if cs >= 2 { " soon" } else { " if it persists" }
            )
        } else {
            format!("The {what} fell by {:.1}%: the model fits recent data better; no action needed.", -pct)
        });
    }
    if ps_ > 0 && classifier {
        rec.push(format!(
            "The predicted labels' distribution shifted ({}): check the inputs and the model version in service.",
            SEVERITIES[ps_]
        ));
    } else if ps_ > 0 {
        rec.push(format!(
            "The predictions' distribution shifted ({}; mean shift {}): check the inputs and the model version in service.",
            SEVERITIES[ps_],
            pred_d["mean_shift"].as_f64().map_or("?".into(), |x| format!("{x:.4}"))
        ));
    }
    if rec.is_empty() {
        rec.push("No significant drift: keep monitoring.".into());
    }
    json!({
        "model": model,
        "reference": {"from_us": r.from, "until_us": r.until, "predictions": r.n},
        "current": {"from_us": c.from, "until_us": c.until, "predictions": c.n},
        "p_value": cfg.p_value,
        "adjustment": "benjamini_hochberg over every test of this check (features, concept, prediction)",
        "model_kind": if classifier { "classifier" } else { "regression" },
        "severity": SEVERITIES[overall],
        "drifted": overall > 0,
        "feature_drift": {"drift_type": "data_drift", "severity": SEVERITIES[fs], "affected_features": affected, "tests": ftests},
        "concept_drift": {"drift_type": "concept_drift", "severity": SEVERITIES[cs], "degraded": degraded && cs > 0, "test": concept_d},
        "prediction_drift": {"drift_type": "prediction_drift", "severity": SEVERITIES[ps_], "test": pred_d},
        "recommendation": rec.join(" "),
    })
}

/// Error distribution and systematic errors per segment of a window.
pub fn errors(cfg: &Config, w: &Window) -> Value {
    let rows: Vec<usize> = w.matched().collect();
    let errs: Vec<f64> = rows.iter().map(|&i| w.actual[i] - w.pred[i]).collect();
    let n = errs.len();
    let mut dist = json!({"n": n, "convention": "error = actual - predicted"});
    if n > 0 {
        dist["mean"] = num(mean(&errs).unwrap_or(f64::NAN));
        dist["median"] = num(median(&errs).unwrap_or(f64::NAN));
        dist["std"] = std(&errs, 1).map(num).unwrap_or(Value::Null);
        if let Ok(p) = percentiles(&errs, &[25.0, 50.0, 75.0, 90.0, 95.0]) {
            dist["percentiles"] = json!({"p25": p[0], "p50": p[1], "p75": p[2], "p90": p[3], "p95": p[4]});
        }
        dist["skewness"] = skewness(&errs, true).map(num).unwrap_or(Value::Null);
        dist["kurtosis"] = kurtosis(&errs, true).map(num).unwrap_or(Value::Null);
        let abs: Vec<f64> = errs.iter().map(|e| e.abs()).collect();
        dist["mean_abs_error"] = num(mean(&abs).unwrap_or(f64::NAN));
        // Shapiro–Wilk is defined for 3..=5000 values; above, an evenly
        // spaced deterministic subsample of 5000 (in row order) is tested.
        let sample: Vec<f64> = if n > SHAPIRO_MAX_N {
            (0..SHAPIRO_MAX_N).map(|k| errs[k * n / SHAPIRO_MAX_N]).collect()
        } else {
            errs.clone()
        };
        dist["normality"] = match shapiro(&sample) {
            Ok(s) => json!({"test": "shapiro", "w": num(s.w), "p_value": num(s.pvalue), "n": sample.len(),
                            "normal": s.pvalue > cfg.p_value}),
            Err(e) => json!({"test": "shapiro", "skipped": e.to_string()}),
        };
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
    let mut segments: Vec<(f64, Value)> = tested
        .into_iter()
        .zip(adj)
        .map(|((s, stat, p), q)| {
            let m = mean(&s.errs).unwrap_or(f64::NAN);
            let systematic = q <= cfg.p_value;
            let v = json!({"feature": s.feature, "segment": s.segment, "n": s.errs.len(), "mean_error": num(m),
                "t_statistic": num(stat), "p_value": num(p), "p_adjusted": num(q), "systematic": systematic,
                "pattern": if !systematic { "none" } else if m > 0.0 { "under-predicts (actual above prediction)" } else { "over-predicts (actual below prediction)" }});
            (q, v)
        })
        .collect();
    segments.sort_by(|a, b| a.0.total_cmp(&b.0));
    let systematic: Vec<&Value> = segments.iter().map(|s| &s.1).filter(|v| v["systematic"] == true).collect();
    json!({
        "distribution": dist,
        "systematic_errors": {
            "test": "ttest_1samp against 0 per segment",
            "adjustment": "holm over the segments tested",
            "segments_tested": segments.len(),
            "segments_skipped": skipped,
            "systematic": systematic,
            "segments": segments.iter().map(|s| &s.1).collect::<Vec<_>>(),
        }
    })
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
pub fn retrain(cfg: &Config, r: &Window, c: &Window, drift: &Value) -> Value {
    let classifier = drift["model_kind"] == "classifier";
    let (lr, lc) = (losses(r, classifier), losses(c, classifier));
    let (nr, nc) = (lr.len(), lc.len());
    let margin = cfg.retrain_min_error_increase;
    let loss = if classifier { "error rate" } else { "MAE" };
    let mut test = json!({
        "test": "Welch t-test, one-sided: current loss > (1 + retrain_min_error_increase) x reference loss",
        "loss": if classifier { "miss per label outcome (error rate = 1 - accuracy)" } else { "|actual - predicted| (mean: MAE)" },
        "n_reference": nr, "n_current": nc, "min_error_increase": margin, "p_value_threshold": cfg.retrain_p_value,
    });
    let mut reasons = Vec::new();
    let blocked = if nr < cfg.min_retrain_samples || nc < cfg.min_retrain_samples {
        test["skipped"] = json!("not enough matched outcomes");
        Some(format!(
            "{nr} matched outcomes in the reference window and {nc} in the current window (min_retrain_samples = {} in both)",
            cfg.min_retrain_samples
        ))
    } else {
        let (mr, mc) = (mean(&lr).unwrap_or(f64::NAN), mean(&lc).unwrap_or(f64::NAN));
        let ratio = if mr > 0.0 { mc / mr } else { f64::NAN };
        test["reference"] = num(mr);
        test["current"] = num(mc);
        test["ratio"] = num(ratio);
        let scaled: Vec<f64> = lr.iter().map(|x| x * (1.0 + margin)).collect();
        match ttest_ind(&lc, &scaled, false, Alternative::Greater) {
            Ok(t) => {
                test["statistic"] = num(t.statistic);
                test["df"] = num(t.df);
                test["p_value"] = num(t.pvalue);
                if t.pvalue <= cfg.retrain_p_value {
                    reasons.push(format!(
                        "the current window's {loss} {mc:.4} is significantly above (1 + {margin}) x the reference window's {mr:.4} (ratio {ratio:.3}, one-sided p = {:.2e})",
                        t.pvalue
                    ));
                }
            }
            Err(e) => test["skipped"] = json!(e.to_string()),
        }
        None
    };
    let window = |w: &Window| {
        let mut m = performance(w)["overall"].clone();
        if let Some(o) = m.as_object_mut() {
            o.retain(|k, _| {
                ["n", "mae", "rmse", "wape", "mape", "mape_skipped_zero_actuals", "labels", "accuracy"]
                    .contains(&k.as_str())
            });
        }
        m
    };
    json!({
        "should_retrain": !reasons.is_empty(),
        "reasons": reasons,
        "blocked_by": blocked,
        "test": test,
        "checks": {
            "model_kind": if classifier { "classifier" } else { "regression" },
            "reference_window": window(r),
            "current_window": window(c),
            "feature_drift_severity": drift["feature_drift"]["severity"],
            "concept_drift_severity": drift["concept_drift"]["severity"],
            "prediction_drift_severity": drift["prediction_drift"]["severity"],
            "min_retrain_samples": cfg.min_retrain_samples,
        },
        "rule": "should_retrain = min_retrain_samples matched outcomes in both windows AND the current mean loss is significantly (one-sided Welch, p <= retrain_p_value) above (1 + retrain_min_error_increase) x the reference's; drift severities, WAPE and MAPE are context, not triggers",
    })
}
