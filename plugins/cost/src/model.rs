//! What the cost plugin learns, as one serialisable parameter set
//! ([`Params`]), and how it is fitted and applied.
//!
//! * **Calibration** of predicted savings: the savings accuracy
//!   r = actual / predicted is modelled on the log scale. Each level of the
//!   hierarchy type → type × region → type × region × resource type keeps
//!   (n, mean log r); the estimate of a group is shrunk toward its parent:
//!   μ = (n·mean + k·μ_parent) / (n + k), k = `shrinkage`, starting from the
//!   global mean. Calibrated savings = predicted × exp(μ) (the median of a
//!   log-normal error).
//! * **Prediction interval**: cross-conformal on |log r − μ| residuals: the
//!   measured outcomes are cut into [`CONFORMAL_FOLDS`] contiguous folds in
//!   time order and each fold's residuals come from a calibration fitted on
//!   the other folds; q is the conformal quantile of all of them, and
//!   `predicted × exp(μ ± q)` covers a new outcome with probability about
//!   `interval_level` (per recommendation type when it has ≥
//!   [`MIN_TYPE_CALIBRATION`] residuals, else one global q).
//! * **Success probability**: Beta-binomial with the same hierarchy and
//!   shrinkage, starting from the global success rate.
//! * **Risk levels**: a type × resource type's failure rate (posterior mean
//!   with the type's rate as prior) maps to low / medium / high through the
//!   configured thresholds.
//! * **Scoring weights**: each scoring factor's Pearson correlation with
//!   success (point-biserial); the target weights are the positive
//!   correlations normalised to sum 1, and the new weights move
//!   `weight_learning_rate` of the way from the current ones.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::Config;
use crate::table::{Row, Table};

/// The calibration parameter set.
pub const CALIBRATION: &str = "calibration";
/// The success-probability and risk-level parameter set.
pub const RISK: &str = "risk_levels";
/// The scoring-weights parameter set.
pub const WEIGHTS: &str = "scoring_weights";
/// Every parameter set the plugin proposes.
pub const TARGETS: [&str; 3] = [CALIBRATION, RISK, WEIGHTS];

/// Folds of the cross-conformal interval.
pub const CONFORMAL_FOLDS: usize = 5;

/// Residuals a type needs for its own interval quantile.
pub const MIN_TYPE_CALIBRATION: usize = 30;

/// Running (n, mean) of log savings accuracy in one group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LogStat {
    /// Measured outcomes.
    pub n: u64,
    /// Mean log(actual / predicted).
    pub mean: f64,
}

impl LogStat {
    fn add(&mut self, x: f64) {
        self.n += 1;
        self.mean += (x - self.mean) / self.n as f64;
    }
}

/// Successes and executions in one group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    /// Executions.
    pub n: u64,
    /// Successful ones.
    pub s: u64,
}

impl Rate {
    fn add(&mut self, ok: bool) {
        self.n += 1;
        self.s += ok as u64;
    }
}

/// A learned risk level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RiskEntry {
    /// Posterior mean failure rate.
    pub failure_rate: f64,
    /// Executions it rests on.
    pub n: u64,
    /// low / medium / high.
    pub risk_level: String,
}

/// The conformal interval half-widths on the log scale.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IntervalParams {
    /// Nominal coverage.
    pub level: f64,
    /// Global quantile q (None: too few holdout residuals).
    pub q: Option<f64>,
    /// Residuals q rests on.
    pub n: usize,
    /// Per recommendation type.
    pub by_type: BTreeMap<String, (f64, usize)>,
}

/// Everything the plugin serves at decision time. It travels through the
/// host's improvement lifecycle as three parameter sets ([`TARGETS`]):
/// `calibration` (shrinkage, global, calibration, interval), `risk_levels`
/// (shrinkage, success_global, success, risk) and `scoring_weights`
/// (weights); [`Params::part`] and [`Params::merge`] convert. The default is
/// the untrained state: no calibration, stated risk, equal weights.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Params {
    /// Shrinkage pseudo-count k of the calibration.
    pub shrinkage: f64,
    /// Shrinkage pseudo-count k of the success probabilities (serialised
    /// as `shrinkage` in the `risk_levels` set).
    #[serde(skip)]
    pub risk_shrinkage: f64,
    /// Global log-accuracy.
    pub global: LogStat,
    /// Keys `type`, `type|region`, `type|region|resource_type`.
    pub calibration: BTreeMap<String, LogStat>,
    /// The interval.
    pub interval: IntervalParams,
    /// Global success rate.
    pub success_global: Rate,
    /// Same keys as calibration.
    pub success: BTreeMap<String, Rate>,
    /// Keys `type` and `type|resource_type`.
    pub risk: BTreeMap<String, RiskEntry>,
    /// Scoring weights by factor name (sum 1; empty: equal weights).
    pub weights: BTreeMap<String, f64>,
}

/// The hierarchy keys of a recommendation, broad to narrow.
pub fn keys(kind: &str, region: &str, resource_type: &str) -> [String; 3] {
    [kind.to_string(), format!("{kind}|{region}"), format!("{kind}|{region}|{resource_type}")]
}

/// A decision-time estimate from [`Params`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimate {
    /// Multiplier applied to the predicted savings (exp μ).
    pub calibration_factor: f64,
    /// Calibrated monthly savings.
    pub calibrated_savings: f64,
    /// Interval bounds (None before any calibration data).
    pub interval: Option<(f64, f64)>,
    /// Measured outcomes behind the narrowest group used.
    pub evidence: u64,
    /// Which level the estimate leans on most: `global`, `type`, `type|region`, `type|region|resource_type`.
    pub basis: &'static str,
    /// Probability of success.
    pub probability_of_success: f64,
}

impl Params {
    /// The JSON of one parameter set.
    pub fn part(&self, target: &str) -> Value {
        match target {
            CALIBRATION => json!({"shrinkage": self.shrinkage, "global": self.global, "calibration": self.calibration, "interval": self.interval}),
            RISK => json!({"shrinkage": self.shrinkage, "success_global": self.success_global, "success": self.success, "risk": self.risk}),
            _ => json!({"weights": self.weights}),
        }
    }

    /// Takes one parameter set's fields from `part` (`None`: the defaults).
    pub fn merge(&mut self, target: &str, part: Option<&Value>) -> Result<(), serde_json::Error> {
        let p: Params = match part {
            Some(v) => serde_json::from_value(v.clone())?,
            None => Params::default(),
        };
        match target {
            CALIBRATION => {
                self.shrinkage = p.shrinkage;
                self.global = p.global;
                self.calibration = p.calibration;
                self.interval = p.interval;
            }
            RISK => {
                self.risk_shrinkage = p.shrinkage;
                self.success_global = p.success_global;
                self.success = p.success;
                self.risk = p.risk;
            }
            _ => self.weights = p.weights,
        }
        Ok(())
    }

    /// Calibrated savings, interval and success probability of a recommendation.
    pub fn estimate(&self, kind: &str, region: &str, resource_type: &str, predicted: f64) -> Estimate {
        let k = self.shrinkage.max(0.0);
        let kr = self.risk_shrinkage.max(0.0);
        let names = ["type", "type|region", "type|region|resource_type"];
        let mut mu = if self.global.n > 0 { self.global.mean } else { 0.0 };
        let mut basis = "global";
        let mut evidence = self.global.n;
        let mut p = (self.success_global.s as f64 + 1.0) / (self.success_global.n as f64 + 2.0);
        for (i, key) in keys(kind, region, resource_type).iter().enumerate() {
            if let Some(s) = self.calibration.get(key).filter(|s| s.n > 0) {
                mu = (s.n as f64 * s.mean + k * mu) / (s.n as f64 + k);
                basis = names[i];
                evidence = s.n;
            }
            if let Some(r) = self.success.get(key).filter(|r| r.n > 0) {
                p = (r.s as f64 + kr * p) / (r.n as f64 + kr);
            }
        }
        let factor = mu.exp();
        let q = self.interval.by_type.get(kind).map(|(q, _)| *q).or(self.interval.q);
        let interval = q.filter(|_| self.global.n > 0).map(|q| (predicted * (mu - q).exp(), predicted * (mu + q).exp()));
        Estimate {
            calibration_factor: factor,
            calibrated_savings: predicted * factor,
            interval,
            evidence,
            basis,
            probability_of_success: p,
        }
    }

    /// The learned risk level of a type × resource type (else the type's), if any.
    pub fn risk_level(&self, kind: &str, resource_type: &str) -> Option<&RiskEntry> {
        self.risk.get(&format!("{kind}|{resource_type}")).or_else(|| self.risk.get(kind))
    }

    /// The recommendation's score under the weights: Σ w·x over its
    /// factors (equal weights when none are learned yet).
    pub fn score(&self, factors: &BTreeMap<String, f64>) -> Option<f64> {
        weighted_score(factors.iter().map(|(name, x)| (self.weight(name), *x)))
    }

    /// The weight of a scoring factor (1 for all when none are learned yet).
    fn weight(&self, name: &str) -> f64 {
        if self.weights.is_empty() { 1.0 } else { self.weights.get(name).copied().unwrap_or(0.0) }
    }

    /// [`Params::weight`] of every string of the table's dictionary, by code.
    fn weights_by_code(&self, table: &Table) -> Vec<f64> {
        let d = table.dict();
        (0..d.len()).map(|c| self.weight(d.name(c as u32))).collect()
    }

    /// [`Params::estimate`] of every group of the table, computed once.
    fn compile(&self, table: &Table) -> Compiled {
        let d = table.dict();
        let (mut factor, mut success) = (Vec::new(), Vec::new());
        for g in table.groups() {
            let e = self.estimate(d.name(g.kind), d.name(g.region), d.name(g.resource_type), 1.0);
            factor.push(e.calibration_factor);
            success.push(e.probability_of_success);
        }
        Compiled { factor, success }
    }
}

/// Σ w·x / Σ w over (w, x) pairs in order (None when empty or Σ w ≤ 0).
fn weighted_score(wx: impl Iterator<Item = (f64, f64)> + Clone) -> Option<f64> {
    let total: f64 = wx.clone().map(|(w, _)| w).sum();
    (total > 0.0).then(|| wx.map(|(w, x)| w * x).sum::<f64>() / total)
}

/// What [`Params::estimate`] says of each group of a table (by group
/// index): neither the calibration factor nor the success probability
/// depends on the predicted savings, and calibrated savings are
/// predicted × factor.
struct Compiled {
    factor: Vec<f64>,
    success: Vec<f64>,
}

impl Compiled {
    fn calibrated_savings(&self, row: &Row) -> f64 {
        row.predicted * self.factor[row.group as usize]
    }
}

/// A measured row: event time, group, log(actual / predicted).
type Measured = (i64, u32, f64);

/// The per-code values of `v` that `keep` accepts, by dictionary string.
fn by_name<T: Copy>(table: &Table, v: &[T], keep: impl Fn(&T) -> bool) -> BTreeMap<String, T> {
    v.iter().enumerate().filter(|(_, x)| keep(x)).map(|(c, x)| (table.dict().name(c as u32).to_string(), *x)).collect()
}

fn fit_calibration<'a>(table: &Table, measured: impl Iterator<Item = &'a Measured>, p: &mut Params) {
    let mut global = LogStat::default();
    let mut by_key = vec![LogStat::default(); table.dict().len()];
    for &(_, g, x) in measured {
        global.add(x);
        for k in table.groups()[g as usize].keys {
            by_key[k as usize].add(x);
        }
    }
    p.global = global;
    p.calibration = by_name(table, &by_key, |s| s.n > 0);
}

/// Fits a new parameter set from rows of `table` (any order). `current`
/// supplies the scoring weights to move from.
pub fn fit_rows(table: &Table, rows: &[&Row], cfg: &Config, current: &Params) -> Params {
    let mut p = Params { shrinkage: cfg.shrinkage, risk_shrinkage: cfg.shrinkage, ..Params::default() };
    fit_interval_and_calibration(table, rows, cfg, &mut p);
    fit_success_and_risk(table, rows, cfg, &mut p);
    p.weights = learn_weights(table, rows.iter().copied(), cfg, &current.weights);
    p
}

/// The cross-conformal interval, then the calibration on every measured row.
fn fit_interval_and_calibration(table: &Table, rows: &[&Row], cfg: &Config, p: &mut Params) {
    // Interval: cross-conformal (K contiguous folds in time order); every
    // measured outcome gets a residual from a calibration fitted without its
    // fold, so the quantile rests on all of them rather than on one split.
    let mut measured: Vec<Measured> = Vec::with_capacity(rows.iter().filter(|r| r.log_ratio().is_some()).count());
    measured.extend(rows.iter().filter_map(|r| Some((r.t, r.group, r.log_ratio()?))));
    measured.sort_by_key(|m| m.0);
    let folds = CONFORMAL_FOLDS.min(measured.len());
    let mut all_res = Vec::with_capacity(measured.len());
    let mut by_type: Vec<Vec<f64>> = vec![Vec::new(); table.dict().len()];
    for f in 0..folds {
        let (lo, hi) = (measured.len() * f / folds, measured.len() * (f + 1) / folds);
        fit_calibration(table, measured[..lo].iter().chain(&measured[hi..]), p);
        let ln_factor: Vec<f64> = p.compile(table).factor.iter().map(|f| f.ln()).collect();
        for &(_, g, x) in &measured[lo..hi] {
            let r = (x - ln_factor[g as usize]).abs();
            all_res.push(r);
            by_type[table.groups()[g as usize].kind as usize].push(r);
        }
    }
    let by_type: BTreeMap<&str, Vec<f64>> =
        by_type.into_iter().enumerate().filter(|(_, r)| !r.is_empty()).map(|(c, r)| (table.dict().name(c as u32), r)).collect();
    let alpha = 1.0 - cfg.interval_level;
    p.interval = IntervalParams { level: cfg.interval_level, q: None, n: all_res.len(), by_type: BTreeMap::new() };
    if let Ok(c) = learnloop_stats::SplitConformal::calibrate(&all_res, alpha) {
        p.interval.q = Some(c.quantile);
    }
    for (kind, res) in by_type {
        if res.len() >= MIN_TYPE_CALIBRATION
            && let Ok(c) = learnloop_stats::SplitConformal::calibrate(&res, alpha)
        {
            p.interval.by_type.insert(kind.to_string(), (c.quantile, res.len()));
        }
    }
    // Point estimates: everything measured.
    fit_calibration(table, measured.iter(), p);
}

/// Success rates by hierarchy key and the risk levels they imply.
fn fit_success_and_risk(table: &Table, rows: &[&Row], cfg: &Config, p: &mut Params) {
    let mut success = vec![Rate::default(); table.dict().len()];
    let mut by_type_res = vec![Rate::default(); table.dict().len()];
    for r in rows {
        let Some(ok) = r.success else { continue };
        p.success_global.add(ok);
        let g = table.group(r);
        for k in g.keys {
            success[k as usize].add(ok);
        }
        by_type_res[g.type_resource as usize].add(ok);
    }
    p.success = by_name(table, &success, |r| r.n > 0);
    let by_type_res = by_name(table, &by_type_res, |r| r.n > 0);
    let k = cfg.shrinkage;
    let level = |f: f64| {
        if f <= cfg.risk_low_max_failure {
            "low"
        } else if f <= cfg.risk_medium_max_failure {
            "medium"
        } else {
            "high"
        }
    };
    let global_fail = 1.0 - (p.success_global.s as f64 + 1.0) / (p.success_global.n as f64 + 2.0);
    let mut risk = BTreeMap::new();
    for (key, r) in p.success.iter().filter(|(key, _)| !key.contains('|')) {
        if r.n < cfg.min_group_size {
            continue;
        }
        let f = ((r.n - r.s) as f64 + k * global_fail) / (r.n as f64 + k);
        risk.insert(key.clone(), RiskEntry { failure_rate: f, n: r.n, risk_level: level(f).into() });
    }
    for (key, r) in &by_type_res {
        if r.n < cfg.min_group_size {
            continue;
        }
        let kind = key.split('|').next().unwrap_or("");
        let prior = risk.get(kind).map_or(global_fail, |e: &RiskEntry| e.failure_rate);
        let f = ((r.n - r.s) as f64 + k * prior) / (r.n as f64 + k);
        risk.insert(key.clone(), RiskEntry { failure_rate: f, n: r.n, risk_level: level(f).into() });
    }
    p.risk = risk;
}

/// Correlation of each factor with success (point-biserial), over
/// executed recommendations that carry the factor.
pub fn factor_correlations<'a>(table: &Table, rows: impl Iterator<Item = &'a Row> + Clone) -> BTreeMap<String, (f64, usize)> {
    // Sized first: the columns of a million executions are tens of megabytes.
    let mut sizes = vec![0usize; table.dict().len()];
    for r in rows.clone().filter(|r| r.success.is_some()) {
        for &(name, _) in table.factors(r) {
            sizes[name as usize] += 1;
        }
    }
    let mut cols: Vec<(Vec<f64>, Vec<f64>)> = sizes.into_iter().map(|n| (Vec::with_capacity(n), Vec::with_capacity(n))).collect();
    for r in rows {
        let Some(ok) = r.success else { continue };
        for &(name, x) in table.factors(r) {
            let c = &mut cols[name as usize];
            c.0.push(x);
            c.1.push(if ok { 1.0 } else { 0.0 });
        }
    }
    let mut out = BTreeMap::new();
    for (name, (x, y)) in cols.iter().enumerate().filter(|(_, (x, _))| !x.is_empty()) {
        if let Ok(r) = learnloop_stats::pearson(x, y)
            && r.statistic.is_finite()
        {
            out.insert(table.dict().name(name as u32).to_string(), (r.statistic, x.len()));
        }
    }
    out
}

fn learn_weights<'a>(
    table: &Table,
    rows: impl Iterator<Item = &'a Row> + Clone,
    cfg: &Config,
    current: &BTreeMap<String, f64>,
) -> BTreeMap<String, f64> {
    let corr = factor_correlations(table, rows);
    let usable: BTreeMap<&String, f64> =
        corr.iter().filter(|(_, (_, n))| *n as u64 >= cfg.min_group_size).map(|(k, (r, _))| (k, r.max(0.0))).collect();
    let total: f64 = usable.values().sum();
    if usable.is_empty() || total <= 0.0 {
        return current.clone();
    }
    let names: std::collections::BTreeSet<&String> = usable.keys().copied().chain(current.keys()).collect();
    let equal = 1.0 / names.len() as f64;
    let mut out = BTreeMap::new();
    for name in names {
        let old = if current.is_empty() { equal } else { current.get(name).copied().unwrap_or(0.0) };
        let target = usable.get(name).copied().unwrap_or(0.0) / total;
        out.insert(name.clone(), (1.0 - cfg.weight_learning_rate) * old + cfg.weight_learning_rate * target);
    }
    let s: f64 = out.values().sum();
    if s > 0.0 {
        out.values_mut().for_each(|w| *w /= s);
    }
    out
}

/// Per-sample losses of two parameter sets of `target` on the same
/// samples (lower is better), with the metric's name: absolute percentage
/// error of calibrated savings (`calibration`), Brier score of the success
/// probability (`risk_levels`), and one minus each successful execution's
/// share of failed ones its weighted score ranks below — the per-case terms
/// of 1 − AUC (`scoring_weights`).
pub fn losses(target: &str, a: &Params, b: &Params, table: &Table, rows: &[&Row]) -> (&'static str, Vec<f64>, Vec<f64>) {
    match target {
        CALIBRATION => {
            let (ea, eb) = (a.compile(table), b.compile(table));
            let (mut la, mut lb) = (Vec::new(), Vec::new());
            for s in rows {
                let Some(act) = s.actual.filter(|x| *x > 0.0 && s.predicted > 0.0) else { continue };
                for (e, l) in [(&ea, &mut la), (&eb, &mut lb)] {
                    l.push((e.calibrated_savings(s) - act).abs() / act);
                }
            }
            ("savings_mape", la, lb)
        }
        RISK => {
            let (ea, eb) = (a.compile(table), b.compile(table));
            let (mut la, mut lb) = (Vec::new(), Vec::new());
            for s in rows {
                let Some(ok) = s.success else { continue };
                let y = if ok { 1.0 } else { 0.0 };
                for (e, l) in [(&ea, &mut la), (&eb, &mut lb)] {
                    let q = e.success[s.group as usize];
                    l.push((q - y) * (q - y));
                }
            }
            ("success_brier", la, lb)
        }
        _ => {
            let rank_losses = |p: &Params| -> Vec<f64> {
                let w = p.weights_by_code(table);
                let score = |s: &Row| weighted_score(table.factors(s).iter().map(|&(c, x)| (w[c as usize], x)));
                let scored: Vec<(f64, bool)> = rows.iter().filter_map(|s| Some((score(s)?, s.success?))).collect();
                let mut neg: Vec<f64> = scored.iter().filter(|(_, ok)| !ok).map(|(x, _)| *x).collect();
                neg.sort_by(f64::total_cmp);
                if neg.is_empty() {
                    return Vec::new();
                }
                scored
                    .iter()
                    .filter(|(_, ok)| *ok)
                    .map(|(x, _)| {
                        let below = neg.partition_point(|v| v < x) as f64;
                        let ties = neg[neg.partition_point(|v| v < x)..].iter().take_while(|v| *v == x).count() as f64;
                        1.0 - (below + 0.5 * ties) / neg.len() as f64
                    })
                    .collect()
            };
            let (la, lb) = (rank_losses(a), rank_losses(b));
            if la.len() != lb.len() {
                return ("score_auc_loss", Vec::new(), Vec::new());
            }
            ("score_auc_loss", la, lb)
        }
    }
}

/// Mean absolute percentage error of `params` on measured samples:
/// mean |calibrated − actual| / actual over actual > 0 (None when none).
pub fn holdout_error(params: &Params, table: &Table, rows: &[&Row]) -> Option<(f64, f64, usize)> {
    let e = params.compile(table);
    let mut raw = 0.0;
    let mut cal = 0.0;
    let mut n = 0;
    for s in rows {
        let Some(a) = s.actual.filter(|a| *a > 0.0) else { continue };
        raw += (s.predicted - a).abs() / a;
        cal += (e.calibrated_savings(s) - a).abs() / a;
        n += 1;
    }
    (n > 0).then(|| (raw / n as f64, cal / n as f64, n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::Fields;

    fn check(params: &Params, (kind, region, rt): (&str, &str, &str), predicted: f64, expected_factor: f64, basis: &str) {
        let e = params.estimate(kind, region, rt, predicted);
        assert!((e.calibration_factor - expected_factor).abs() < 1e-12, "{kind}/{region}/{rt}: {} vs {expected_factor}", e.calibration_factor);
        assert!((e.calibrated_savings - predicted * expected_factor).abs() < 1e-9);
        assert_eq!(e.basis, basis);
    }

    #[test]
    fn thin_groups_shrink_toward_their_parent() {
        let mut p = Params { shrinkage: 10.0, risk_shrinkage: 10.0, global: LogStat { n: 100, mean: 0.8f64.ln() }, ..Params::default() };
        p.calibration.insert("spot".into(), LogStat { n: 10, mean: 0.5f64.ln() });
        p.calibration.insert("spot|eu".into(), LogStat { n: 30, mean: 0.4f64.ln() });
        // type level: (10·ln .5 + 10·ln .8) / 20
        let type_mu = (10.0 * 0.5f64.ln() + 10.0 * 0.8f64.ln()) / 20.0;
        check(&p, ("spot", "us", "ec2"), 100.0, type_mu.exp(), "type");
        // region level: (30·ln .4 + 10·type_mu) / 40
        check(&p, ("spot", "eu", "ec2"), 100.0, ((30.0 * 0.4f64.ln() + 10.0 * type_mu) / 40.0).exp(), "type|region");
        // unknown type: the global mean
        check(&p, ("other", "eu", "ec2"), 100.0, 0.8, "global");
        // no data at all: no calibration, no interval
        let e = Params::default().estimate("x", "y", "z", 50.0);
        assert_eq!((e.calibration_factor, e.interval, e.probability_of_success), (1.0, None, 0.5));
    }

    #[test]
    fn scores_use_learned_weights_or_equal_ones() {
        let f: BTreeMap<String, f64> = [("a".to_string(), 1.0), ("b".to_string(), 0.0)].into();
        assert_eq!(Params::default().score(&f), Some(0.5));
        let p = Params { weights: [("a".to_string(), 0.8), ("b".to_string(), 0.2)].into(), ..Params::default() };
        assert!((p.score(&f).unwrap() - 0.8).abs() < 1e-12);
        assert_eq!(p.score(&BTreeMap::new()), None);
    }

    #[test]
    fn fit_recovers_a_multiplicative_bias_and_conformal_quantile() {
        let cfg = Config { shrinkage: 0.0, ..Config::default() };
        // Ratios alternate 0.5·e^{±0.1}: every holdout residual is exactly 0.1 after fitting the mean.
        let mut table = Table::default();
        for i in 0..100 {
            let f = Fields {
                t: i,
                kind: "k",
                region: "r",
                resource_type: "t",
                predicted: 100.0,
                actual: Some(50.0 * if i % 2 == 0 { 0.1f64.exp() } else { (-0.1f64).exp() }),
                success: Some(true),
            };
            table.push(f, []);
        }
        let rows: Vec<&Row> = table.rows().iter().collect();
        let p = fit_rows(&table, &rows, &cfg, &Params::default());
        let e = p.estimate("k", "r", "t", 100.0);
        assert!((e.calibration_factor - 0.5).abs() < 1e-9, "{}", e.calibration_factor);
        let q = p.interval.q.unwrap();
        assert!((q - 0.1).abs() < 1e-9, "{q}");
        let (lo, hi) = e.interval.unwrap();
        assert!((lo - 50.0 * (-0.1f64).exp()).abs() < 1e-6 && (hi - 50.0 * 0.1f64.exp()).abs() < 1e-6);
        assert_eq!(p.interval.n, 100);
    }
}
