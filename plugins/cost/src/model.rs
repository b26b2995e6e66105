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
//! * **Success probability** ([`SuccessModel`]): nested Beta-binomial
//!   partial pooling over the levels of [`SUCCESS_LEVELS`] — stated risk →
//!   type × risk → … × resource type → … × region — starting from the base
//!   rate, each level's estimate p = (s + k·p_parent) / (n + k) with its own
//!   pseudo-count k chosen from [`SHRINKAGE_GRID`] by [`SUCCESS_FOLDS`]-fold
//!   cross-validation (contiguous folds in time order, log loss), level by
//!   level; a level whose every k loses to its parent is left out, so a level
//!   without signal falls back to its parent. The numeric scoring factors
//!   then enter as a ridge-penalised logistic term on top of the pooled
//!   log-odds (standardised factors, penalty from [`RIDGE_GRID`] chosen by
//!   the same cross-validation, or no term when none helps).
//! * **Risk levels**: a type × resource type's failure rate (posterior mean
//!   with the type's rate as prior) maps to low / medium / high through the
//!   configured thresholds.
//! * **Scoring weights**: each scoring factor's Pearson correlation with
//!   success (point-biserial); the target weights are the positive
//!   correlations normalised to sum 1, and the new weights move
//!   `weight_learning_rate` of the way from the current ones.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

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

/// The levels of the success model, broad to narrow, each nested in the one before.
pub const SUCCESS_LEVELS: [&str; 4] =
    ["risk", "type|risk", "type|risk|resource_type", "type|risk|resource_type|region"];

/// Pseudo-counts cross-validation tries at each success level.
pub const SHRINKAGE_GRID: [f64; 9] = [0.5, 2.0, 8.0, 32.0, 128.0, 512.0, 2048.0, 8192.0, 32768.0];

/// Ridge penalties cross-validation tries for the factor term.
pub const RIDGE_GRID: [f64; 6] = [0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0];

/// Folds of the success model's cross-validation.
pub const SUCCESS_FOLDS: usize = 5;

/// Scoring factors the success model's logistic term uses at most (the
/// most common ones).
pub const MAX_SUCCESS_FACTORS: usize = 8;

/// Executions the factor term is fitted on at most (an evenly spaced
/// sample in time beyond that: a handful of coefficients needs no more).
const FACTOR_FIT_ROWS: usize = 200_000;

/// Executions of that sample its penalty is cross-validated on at most.
const FACTOR_CV_ROWS: usize = 50_000;

/// The success-model keys of a recommendation, one per [`SUCCESS_LEVELS`].
pub fn success_keys(kind: &str, region: &str, resource_type: &str, risk: &str) -> [String; 4] {
    [
        risk.to_string(),
        format!("{kind}|{risk}"),
        format!("{kind}|{risk}|{resource_type}"),
        format!("{kind}|{risk}|{resource_type}|{region}"),
    ]
}

/// One level of the success model in use: its pseudo-count and the
/// executions of each of its groups.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct SuccessLevel {
    /// One of `risk`, `type|risk`, `type|risk|resource_type`,
    /// `type|risk|resource_type|region` (see `SUCCESS_LEVELS`).
    pub level: String,
    /// Pseudo-count k chosen by cross-validation.
    pub shrinkage: f64,
    /// Executions by key.
    pub counts: BTreeMap<String, Rate>,
}

/// A standardised scoring factor's coefficient on the log-odds of success.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FactorTerm {
    /// Factor name.
    pub name: String,
    /// Mean it is centred on.
    pub mean: f64,
    /// Standard deviation it is scaled by.
    pub sd: f64,
    /// Coefficient of (x − mean) / sd.
    pub coef: f64,
}

/// What cross-validation measured while fitting the success model (mean
/// log loss on the held-out folds).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct SuccessCv {
    /// Folds (contiguous in time).
    pub folds: usize,
    /// Executions cross-validated.
    pub executions: usize,
    /// The base rate alone.
    pub log_loss_base_rate: f64,
    /// The pooled levels.
    pub log_loss_levels: f64,
    /// Executions the factor term was cross-validated on.
    pub factor_executions: usize,
    /// The pooled levels on those executions, without and with the factor term.
    pub log_loss_without_factors: f64,
    /// See `log_loss_without_factors`.
    pub log_loss_with_factors: f64,
    /// Levels left out because no pseudo-count beat their parent.
    pub levels_without_signal: Vec<String>,
}

/// The success-probability model (see the module documentation). Empty
/// (`base.n == 0`) until fitted: callers then answer the base rate.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct SuccessModel {
    /// Successes and executions it was fitted on.
    pub base: Rate,
    /// The levels in use, broad to narrow.
    pub levels: Vec<SuccessLevel>,
    /// The factor term (empty: none).
    pub factors: Vec<FactorTerm>,
    /// The factor term's ridge penalty.
    pub ridge: Option<f64>,
    /// Cross-validation evidence.
    pub cv: SuccessCv,
}

fn logit(p: f64) -> f64 {
    let p = p.clamp(1e-6, 1.0 - 1e-6);
    (p / (1.0 - p)).ln()
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// Log loss of probability `p` for outcome `y` (p clamped to [1e-6, 1 − 1e-6]).
pub fn log_loss(p: f64, y: bool) -> f64 {
    let p = p.clamp(1e-6, 1.0 - 1e-6);
    -(if y { p.ln() } else { (1.0 - p).ln() })
}

impl SuccessModel {
    /// Whether it was never fitted.
    pub fn is_empty(&self) -> bool {
        self.base.n == 0
    }

    /// The base rate it was fitted on, (s + 1) / (n + 2).
    pub fn base_rate(&self) -> f64 {
        self.base.smoothed()
    }

    /// The pooled probability of the levels for the keys of [`success_keys`].
    fn pooled(&self, keys: &[String; 4]) -> f64 {
        let mut p = self.base_rate();
        for lv in &self.levels {
            let Some(i) = SUCCESS_LEVELS.iter().position(|l| *l == lv.level) else { continue };
            if let Some(r) = lv.counts.get(&keys[i]).filter(|r| r.n > 0) {
                p = (r.s as f64 + lv.shrinkage * p) / (r.n as f64 + lv.shrinkage);
            }
        }
        p
    }

    /// The probability of success of a recommendation (None when empty).
    pub fn probability(&self, keys: &[String; 4], factor: impl Fn(&str) -> Option<f64>) -> Option<f64> {
        if self.is_empty() {
            return None;
        }
        let mut z = logit(self.pooled(keys));
        for f in &self.factors {
            if let Some(x) = factor(&f.name) {
                z += f.coef * (x - f.mean) / f.sd;
            }
        }
        Some(sigmoid(z))
    }
}

/// Running (n, mean) of log savings accuracy in one group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
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
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
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

    fn plus(self, o: Rate) -> Rate {
        Rate { n: self.n + o.n, s: self.s + o.s }
    }

    fn minus(self, o: Rate) -> Rate {
        Rate { n: self.n - o.n, s: self.s - o.s }
    }

    /// (s + 1) / (n + 2).
    pub fn smoothed(&self) -> f64 {
        (self.s as f64 + 1.0) / (self.n as f64 + 2.0)
    }
}

/// A learned risk level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RiskEntry {
    /// Posterior mean failure rate.
    pub failure_rate: f64,
    /// Executions it rests on.
    pub n: u64,
    /// low / medium / high.
    pub risk_level: String,
}

/// The conformal interval half-widths on the log scale.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct IntervalParams {
    /// Nominal coverage.
    pub level: f64,
    /// Global quantile q (`null`: too few holdout residuals).
    pub q: Option<f64>,
    /// Residuals q rests on.
    pub n: usize,
    /// Per recommendation type with enough residuals of its own: (q, residuals it rests on).
    pub by_type: BTreeMap<String, (f64, usize)>,
}

/// Everything the plugin serves at decision time. It travels through the
/// host's improvement lifecycle as three parameter sets ([`TARGETS`]):
/// `calibration` (shrinkage, global, calibration, interval), `risk_levels`
/// (success_model, risk) and `scoring_weights` (weights); [`Params::part`]
/// and [`Params::merge`] convert. The default is the untrained state: no
/// calibration, the base rate, stated risk, equal weights.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Params {
    /// Shrinkage pseudo-count k of the calibration.
    pub shrinkage: f64,
    /// Global log-accuracy.
    pub global: LogStat,
    /// Keys `type`, `type|region`, `type|region|resource_type`.
    pub calibration: BTreeMap<String, LogStat>,
    /// The interval.
    pub interval: IntervalParams,
    /// The success-probability model.
    pub success_model: SuccessModel,
    /// Keys `type` and `type|resource_type`.
    pub risk: BTreeMap<String, RiskEntry>,
    /// Scoring weights by factor name (sum 1; empty: equal weights).
    pub weights: BTreeMap<String, f64>,
}

/// The `calibration` parameter set.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct CalibrationSet {
    /// Shrinkage pseudo-count k of the calibration.
    pub shrinkage: f64,
    /// Global log-accuracy.
    pub global: LogStat,
    /// Log-accuracy by `type`, `type|region` and `type|region|resource_type`.
    pub calibration: BTreeMap<String, LogStat>,
    /// The conformal interval.
    pub interval: IntervalParams,
}

/// The `risk_levels` parameter set.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct RiskSet {
    /// The success-probability model (empty until fitted).
    pub success_model: SuccessModel,
    /// Learned risk levels by `type` and `type|resource_type`.
    pub risk: BTreeMap<String, RiskEntry>,
}

/// The `scoring_weights` parameter set.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct WeightsSet {
    /// Scoring weights by factor name (sum 1; empty: equal weights).
    pub weights: BTreeMap<String, f64>,
}

/// The three parameter sets in force (`GET /params`).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ParamSets {
    /// Calibration of predicted savings and its interval.
    pub calibration: CalibrationSet,
    /// Success probability and risk levels.
    pub risk_levels: RiskSet,
    /// Scoring weights.
    pub scoring_weights: WeightsSet,
}

/// The version of each parameter set in force (0: the untrained default),
/// as the host's improvement lifecycle numbers them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ParamsVersions {
    /// Version of `calibration`.
    pub calibration: u64,
    /// Version of `risk_levels`.
    pub risk_levels: u64,
    /// Version of `scoring_weights`.
    pub scoring_weights: u64,
}

impl ParamsVersions {
    /// The version of `target` (one of [`TARGETS`]).
    pub fn get(&self, target: &str) -> u64 {
        match target {
            CALIBRATION => self.calibration,
            RISK => self.risk_levels,
            _ => self.scoring_weights,
        }
    }

    /// Sets the version of `target` (one of [`TARGETS`]).
    pub fn set(&mut self, target: &str, version: u64) {
        match target {
            CALIBRATION => self.calibration = version,
            RISK => self.risk_levels = version,
            _ => self.scoring_weights = version,
        }
    }

    /// Parameter sets applied (version > 0).
    pub fn applied(&self) -> usize {
        TARGETS.iter().filter(|t| self.get(t) > 0).count()
    }
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
}

impl Params {
    /// The JSON of one parameter set (as proposed to and applied by the
    /// improvement lifecycle).
    pub fn part(&self, target: &str) -> Value {
        let v = match target {
            CALIBRATION => serde_json::to_value(self.calibration_set()),
            RISK => serde_json::to_value(self.risk_set()),
            _ => serde_json::to_value(self.weights_set()),
        };
        v.expect("parameter sets serialise")
    }

    /// The `calibration` set.
    pub fn calibration_set(&self) -> CalibrationSet {
        CalibrationSet {
            shrinkage: self.shrinkage,
            global: self.global,
            calibration: self.calibration.clone(),
            interval: self.interval.clone(),
        }
    }

    /// The `risk_levels` set.
    pub fn risk_set(&self) -> RiskSet {
        RiskSet { success_model: self.success_model.clone(), risk: self.risk.clone() }
    }

    /// The `scoring_weights` set.
    pub fn weights_set(&self) -> WeightsSet {
        WeightsSet { weights: self.weights.clone() }
    }

    /// All three sets.
    pub fn sets(&self) -> ParamSets {
        ParamSets {
            calibration: self.calibration_set(),
            risk_levels: self.risk_set(),
            scoring_weights: self.weights_set(),
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
                self.success_model = p.success_model;
                self.risk = p.risk;
            }
            _ => self.weights = p.weights,
        }
        Ok(())
    }

    /// The learned probability of success of a recommendation (None while
    /// no success model is in force).
    pub fn success_probability(
        &self,
        kind: &str,
        region: &str,
        resource_type: &str,
        risk: &str,
        factors: &BTreeMap<String, f64>,
    ) -> Option<f64> {
        self.success_model
            .probability(&success_keys(kind, region, resource_type, risk), |name| factors.get(name).copied())
    }

    /// Calibrated savings and interval of a recommendation.
    pub fn estimate(&self, kind: &str, region: &str, resource_type: &str, predicted: f64) -> Estimate {
        let k = self.shrinkage.max(0.0);
        let names = ["type", "type|region", "type|region|resource_type"];
        let mut mu = if self.global.n > 0 { self.global.mean } else { 0.0 };
        let mut basis = "global";
        let mut evidence = self.global.n;
        for (i, key) in keys(kind, region, resource_type).iter().enumerate() {
            if let Some(s) = self.calibration.get(key).filter(|s| s.n > 0) {
                mu = (s.n as f64 * s.mean + k * mu) / (s.n as f64 + k);
                basis = names[i];
                evidence = s.n;
            }
        }
        let factor = mu.exp();
        let q = self.interval.by_type.get(kind).map(|(q, _)| *q).or(self.interval.q);
        let interval =
            q.filter(|_| self.global.n > 0).map(|q| (predicted * (mu - q).exp(), predicted * (mu + q).exp()));
        Estimate { calibration_factor: factor, calibrated_savings: predicted * factor, interval, evidence, basis }
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
        let factor = table
            .groups()
            .iter()
            .map(|g| self.estimate(d.name(g.kind), d.name(g.region), d.name(g.resource_type), 1.0).calibration_factor)
            .collect();
        Compiled { factor }
    }
}

/// Σ w·x / Σ w over (w, x) pairs in order (None when empty or Σ w ≤ 0).
fn weighted_score(wx: impl Iterator<Item = (f64, f64)> + Clone) -> Option<f64> {
    let total: f64 = wx.clone().map(|(w, _)| w).sum();
    (total > 0.0).then(|| wx.map(|(w, x)| w * x).sum::<f64>() / total)
}

/// What [`Params::estimate`] says of each group of a table (by group
/// index): the calibration factor does not depend on the predicted
/// savings, and calibrated savings are predicted × factor.
struct Compiled {
    factor: Vec<f64>,
}

/// A success model compiled for a table: the pooled log-odds of each group
/// and the factor terms by dictionary code.
struct CompiledSuccess {
    pooled: Vec<f64>,
    terms: Vec<Option<(f64, f64, f64)>>,
}

impl CompiledSuccess {
    fn new(m: &SuccessModel, table: &Table) -> CompiledSuccess {
        let d = table.dict();
        let pooled =
            table.groups().iter().map(|g| logit(m.pooled(&g.success_keys.map(|c| d.name(c).to_string())))).collect();
        let mut terms = vec![None; d.len()];
        for f in &m.factors {
            if let Some(c) = (0..d.len()).find(|c| d.name(*c as u32) == f.name) {
                terms[c] = Some((f.mean, f.sd, f.coef));
            }
        }
        CompiledSuccess { pooled, terms }
    }

    fn probability(&self, table: &Table, row: &Row) -> f64 {
        let mut z = self.pooled[row.group as usize];
        for &(c, x) in table.factors(row) {
            if let Some((mean, sd, coef)) = self.terms[c as usize] {
                z += coef * (x - mean) / sd;
            }
        }
        sigmoid(z)
    }
}

/// Per-execution Brier and log-loss terms of a success model on `rows`
/// (executed ones only); an empty model answers `fallback` (a base rate).
pub fn success_losses(m: &SuccessModel, fallback: f64, table: &Table, rows: &[&Row]) -> (Vec<f64>, Vec<f64>) {
    let c = (!m.is_empty()).then(|| CompiledSuccess::new(m, table));
    let (mut brier, mut ll) = (Vec::new(), Vec::new());
    for r in rows {
        let Some(ok) = r.success else { continue };
        let p = c.as_ref().map_or(fallback, |c| c.probability(table, r));
        let y = if ok { 1.0 } else { 0.0 };
        brier.push((p - y) * (p - y));
        ll.push(log_loss(p, ok));
    }
    (brier, ll)
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
    let mut p = Params { shrinkage: cfg.shrinkage, ..Params::default() };
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
    let by_type: BTreeMap<&str, Vec<f64>> = by_type
        .into_iter()
        .enumerate()
        .filter(|(_, r)| !r.is_empty())
        .map(|(c, r)| (table.dict().name(c as u32), r))
        .collect();
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

/// The success model, and the risk levels the failure rates by type and
/// by type × resource type imply.
fn fit_success_and_risk(table: &Table, rows: &[&Row], cfg: &Config, p: &mut Params) {
    p.success_model = fit_success(table, rows, cfg);
    let mut by_type = vec![Rate::default(); table.dict().len()];
    let mut by_type_res = vec![Rate::default(); table.dict().len()];
    for r in rows {
        let Some(ok) = r.success else { continue };
        let g = table.group(r);
        by_type[g.keys[0] as usize].add(ok);
        by_type_res[g.type_resource as usize].add(ok);
    }
    let by_type = by_name(table, &by_type, |r| r.n > 0);
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
    let global_fail = 1.0 - p.success_model.base.smoothed();
    let mut risk = BTreeMap::new();
    for (key, r) in &by_type {
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

/// Executions by dictionary code for every success key, per fold, with
/// the per-fold totals and per-fold, per-group counts.
struct FoldCounts {
    folds: usize,
    base: Vec<Rate>,
    keys: Vec<Vec<Rate>>,
    cells: Vec<Vec<Rate>>,
    total_base: Rate,
    total_keys: Vec<Rate>,
}

impl FoldCounts {
    /// The pooled probability of group `g` learned without fold `f`
    /// (`f == folds`: learned from everything), with pseudo-count `ks[l]`
    /// at level l (None: level left out).
    fn pooled(&self, table: &Table, f: usize, g: usize, ks: &[Option<f64>; 4]) -> f64 {
        let out = |total: Rate, part: &Rate| if f == self.folds { total } else { total.minus(*part) };
        let mut p = out(self.total_base, self.base.get(f).unwrap_or(&Rate::default())).smoothed();
        let keys = table.groups()[g].success_keys;
        for (l, k) in ks.iter().enumerate() {
            let Some(k) = k else { continue };
            let c = keys[l] as usize;
            let r = if f == self.folds { self.total_keys[c] } else { self.total_keys[c].minus(self.keys[f][c]) };
            if r.n > 0 {
                p = (r.s as f64 + k * p) / (r.n as f64 + k);
            }
        }
        p
    }

    /// Mean held-out log loss of the pooled levels over all folds.
    fn cv_loss(&self, table: &Table, ks: &[Option<f64>; 4]) -> f64 {
        let mut loss = 0.0;
        for f in 0..self.folds {
            for (g, c) in self.cells[f].iter().enumerate().filter(|(_, c)| c.n > 0) {
                let p = self.pooled(table, f, g, ks).clamp(1e-6, 1.0 - 1e-6);
                loss -= c.s as f64 * p.ln() + (c.n - c.s) as f64 * (1.0 - p).ln();
            }
        }
        loss / self.total_base.n.max(1) as f64
    }
}

/// Fits the [`SuccessModel`] on the executed rows (see the module documentation).
fn fit_success(table: &Table, rows: &[&Row], cfg: &Config) -> SuccessModel {
    let mut ex: Vec<&Row> = rows.iter().copied().filter(|r| r.success.is_some()).collect();
    ex.sort_by_key(|r| r.t);
    let n = ex.len();
    let mut m = SuccessModel::default();
    for r in &ex {
        m.base.add(r.success == Some(true));
    }
    let folds = SUCCESS_FOLDS;
    if n < 2 * folds {
        return m;
    }
    let fold_of = |i: usize| i * folds / n;
    let (d, ng) = (table.dict().len(), table.groups().len());
    let mut fc = FoldCounts {
        folds,
        base: vec![Rate::default(); folds],
        keys: vec![vec![Rate::default(); d]; folds],
        cells: vec![vec![Rate::default(); ng]; folds],
        total_base: m.base,
        total_keys: vec![Rate::default(); d],
    };
    for (i, r) in ex.iter().enumerate() {
        let (f, ok) = (fold_of(i), r.success == Some(true));
        fc.base[f].add(ok);
        fc.cells[f][r.group as usize].add(ok);
    }
    for f in 0..folds {
        for (g, c) in fc.cells[f].iter().enumerate().filter(|(_, c)| c.n > 0) {
            for k in table.groups()[g].success_keys {
                fc.keys[f][k as usize] = fc.keys[f][k as usize].plus(*c);
                fc.total_keys[k as usize] = fc.total_keys[k as usize].plus(*c);
            }
        }
    }
    // Level by level, broad to narrow: the pseudo-count with the lowest
    // held-out log loss, or none when no k beats the parent.
    let mut ks: [Option<f64>; 4] = [None; 4];
    m.cv.folds = folds;
    m.cv.executions = n;
    m.cv.log_loss_base_rate = fc.cv_loss(table, &ks);
    let mut best = m.cv.log_loss_base_rate;
    for l in 0..SUCCESS_LEVELS.len() {
        let mut chosen = None;
        for k in SHRINKAGE_GRID {
            ks[l] = Some(k);
            let loss = fc.cv_loss(table, &ks);
            if loss < best - 1e-12 {
                best = loss;
                chosen = Some(k);
            }
        }
        ks[l] = chosen;
    }
    m.cv.log_loss_levels = best;
    for (l, k) in ks.iter().enumerate() {
        let Some(k) = *k else {
            m.cv.levels_without_signal.push(SUCCESS_LEVELS[l].to_string());
            continue;
        };
        let mut counts = BTreeMap::new();
        for g in table.groups() {
            let c = g.success_keys[l] as usize;
            if fc.total_keys[c].n > 0 {
                counts.insert(table.dict().name(c as u32).to_string(), fc.total_keys[c]);
            }
        }
        m.levels.push(SuccessLevel { level: SUCCESS_LEVELS[l].to_string(), shrinkage: k, counts });
    }
    fit_factor_term(table, &ex, &fc, &ks, cfg, &mut m);
    m
}

/// The scoring factors' ridge logistic term on top of the pooled log-odds
/// (offsets cross-fitted: each execution's from the levels learned
/// without its fold), penalty chosen by cross-validation; fitted on at
/// most [`FACTOR_FIT_ROWS`] executions, cross-validated on at most
/// [`FACTOR_CV_ROWS`].
fn fit_factor_term(
    table: &Table,
    ex: &[&Row],
    fc: &FoldCounts,
    ks: &[Option<f64>; 4],
    cfg: &Config,
    m: &mut SuccessModel,
) {
    let n = ex.len();
    let folds = fc.folds;
    // The most common factors with enough executions and some spread.
    let d_all = table.dict().len();
    let mut stat = vec![(0usize, 0.0f64, 0.0f64); d_all];
    for r in ex {
        for &(c, x) in table.factors(r) {
            let s = &mut stat[c as usize];
            s.0 += 1;
            s.1 += x;
            s.2 += x * x;
        }
    }
    let mut names: Vec<(u32, usize, f64, f64)> = stat
        .iter()
        .enumerate()
        .filter(|(_, s)| s.0 as u64 >= cfg.min_group_size.max(2))
        .filter_map(|(c, &(k, sum, sq))| {
            let mean = sum / k as f64;
            let sd = (sq / k as f64 - mean * mean).max(0.0).sqrt();
            (sd > 1e-9).then_some((c as u32, k, mean, sd))
        })
        .collect();
    names.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    names.truncate(MAX_SUCCESS_FACTORS);
    names.sort_by(|a, b| table.dict().name(a.0).cmp(table.dict().name(b.0)));
    if names.is_empty() {
        return;
    }
    let dim = names.len();
    let mut slot = vec![usize::MAX; d_all];
    for (j, nm) in names.iter().enumerate() {
        slot[nm.0 as usize] = j;
    }
    let pooled: Vec<Vec<f64>> =
        (0..folds).map(|f| (0..table.groups().len()).map(|g| logit(fc.pooled(table, f, g, ks))).collect()).collect();
    // An evenly spaced sample (in time) of the executions, each with its
    // fold; everything below works on it.
    let picked: Vec<usize> = (0..n).step_by(n.div_ceil(FACTOR_FIT_ROWS).max(1)).collect();
    let m_rows = picked.len();
    let mut x = vec![0.0f32; m_rows * dim];
    let mut y = Vec::with_capacity(m_rows);
    let mut off = Vec::with_capacity(m_rows);
    let mut fold = Vec::with_capacity(m_rows);
    for (i, &e) in picked.iter().enumerate() {
        let r = ex[e];
        for &(c, v) in table.factors(r) {
            let j = slot[c as usize];
            if j != usize::MAX {
                x[i * dim + j] = ((v - names[j].2) / names[j].3) as f32;
            }
        }
        let f = e * folds / n;
        y.push(r.success == Some(true));
        off.push(pooled[f][r.group as usize]);
        fold.push(f);
    }
    let data = Logistic { x: &x, y: &y, off: &off, dim };
    // Cross-validation on an evenly spaced part of at most FACTOR_CV_ROWS.
    let sample: Vec<usize> = (0..m_rows).step_by(m_rows.div_ceil(FACTOR_CV_ROWS).max(1)).collect();
    let without: f64 = sample.iter().map(|&i| data.loss(i, &vec![0.0; dim])).sum::<f64>() / sample.len() as f64;
    let mut best: (f64, Option<f64>) = (without, None);
    let mut beta = vec![0.0; dim];
    for lambda in RIDGE_GRID.iter().rev() {
        let mut loss = 0.0;
        for f in 0..folds {
            let train = sample.iter().copied().filter(|&i| fold[i] != f);
            data.fit(train, *lambda, &mut beta);
            loss += sample.iter().filter(|&&i| fold[i] == f).map(|&i| data.loss(i, &beta)).sum::<f64>();
        }
        let loss = loss / sample.len() as f64;
        if loss < best.0 - 1e-12 {
            best = (loss, Some(*lambda));
        }
    }
    m.cv.factor_executions = sample.len();
    m.cv.log_loss_without_factors = without;
    m.cv.log_loss_with_factors = best.0;
    let Some(lambda) = best.1 else { return };
    let mut beta = vec![0.0; dim];
    data.fit(0..m_rows, lambda, &mut beta);
    m.ridge = Some(lambda);
    m.factors = names
        .iter()
        .zip(&beta)
        .map(|(nm, b)| FactorTerm { name: table.dict().name(nm.0).to_string(), mean: nm.2, sd: nm.3, coef: *b })
        .collect();
}

/// Standardised factors (row-major), outcomes and log-odds offsets.
struct Logistic<'a> {
    x: &'a [f32],
    y: &'a [bool],
    off: &'a [f64],
    dim: usize,
}

impl Logistic<'_> {
    fn z(&self, i: usize, beta: &[f64]) -> f64 {
        let row = &self.x[i * self.dim..(i + 1) * self.dim];
        self.off[i] + row.iter().zip(beta).map(|(x, b)| *x as f64 * b).sum::<f64>()
    }

    fn loss(&self, i: usize, beta: &[f64]) -> f64 {
        log_loss(sigmoid(self.z(i, beta)), self.y[i])
    }

    /// Newton–Raphson on the ridge-penalised log likelihood, from `beta`.
    fn fit(&self, rows: impl Iterator<Item = usize> + Clone, lambda: f64, beta: &mut [f64]) {
        let d = self.dim;
        for _ in 0..25 {
            let mut g: Vec<f64> = beta.iter().map(|b| -lambda * b).collect();
            let mut h = vec![0.0; d * d];
            for j in 0..d {
                h[j * d + j] = lambda;
            }
            for i in rows.clone() {
                let p = sigmoid(self.z(i, beta));
                let (w, r) = (p * (1.0 - p), if self.y[i] { 1.0 } else { 0.0 } - p);
                let row = &self.x[i * d..(i + 1) * d];
                for a in 0..d {
                    let xa = row[a] as f64;
                    if xa == 0.0 {
                        continue;
                    }
                    g[a] += r * xa;
                    for b in 0..=a {
                        h[a * d + b] += w * xa * row[b] as f64;
                    }
                }
            }
            for a in 0..d {
                for b in 0..a {
                    h[b * d + a] = h[a * d + b];
                }
            }
            let Some(step) = solve(&mut h, &mut g, d) else { return };
            let mut biggest = 0.0f64;
            for (b, s) in beta.iter_mut().zip(&step) {
                *b += s;
                biggest = biggest.max(s.abs());
            }
            if biggest < 1e-7 {
                return;
            }
        }
    }
}

/// Solves the d × d system `a · x = b` (Gaussian elimination with partial
/// pivoting; None when singular).
fn solve(a: &mut [f64], b: &mut [f64], d: usize) -> Option<Vec<f64>> {
    for c in 0..d {
        let piv = (c..d).max_by(|&i, &j| a[i * d + c].abs().total_cmp(&a[j * d + c].abs()))?;
        if a[piv * d + c].abs() < 1e-12 {
            return None;
        }
        if piv != c {
            for k in 0..d {
                a.swap(c * d + k, piv * d + k);
            }
            b.swap(c, piv);
        }
        for i in c + 1..d {
            let f = a[i * d + c] / a[c * d + c];
            for k in c..d {
                a[i * d + k] -= f * a[c * d + k];
            }
            b[i] -= f * b[c];
        }
    }
    let mut x = vec![0.0; d];
    for c in (0..d).rev() {
        let s: f64 = (c + 1..d).map(|k| a[c * d + k] * x[k]).sum();
        x[c] = (b[c] - s) / a[c * d + c];
    }
    Some(x)
}

/// Correlation of each factor with success (point-biserial), over
/// executed recommendations that carry the factor.
pub fn factor_correlations<'a>(
    table: &Table,
    rows: impl Iterator<Item = &'a Row> + Clone,
) -> BTreeMap<String, (f64, usize)> {
    // Sized first: the columns of a million executions are tens of megabytes.
    let mut sizes = vec![0usize; table.dict().len()];
    for r in rows.clone().filter(|r| r.success.is_some()) {
        for &(name, _) in table.factors(r) {
            sizes[name as usize] += 1;
        }
    }
    let mut cols: Vec<(Vec<f64>, Vec<f64>)> =
        sizes.into_iter().map(|n| (Vec::with_capacity(n), Vec::with_capacity(n))).collect();
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
/// probability (`risk_levels`; a set without a success model answers the
/// other set's base rate), and one minus each successful execution's
/// share of failed ones its weighted score ranks below — the per-case terms
/// of 1 − AUC (`scoring_weights`).
pub fn losses(
    target: &str,
    a: &Params,
    b: &Params,
    table: &Table,
    rows: &[&Row],
) -> (&'static str, Vec<f64>, Vec<f64>) {
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
            // A set without a success model answers the other's base rate.
            let fallback =
                if a.success_model.is_empty() { b.success_model.base_rate() } else { a.success_model.base_rate() };
            let (la, _) = success_losses(&a.success_model, fallback, table, rows);
            let (lb, _) = success_losses(&b.success_model, fallback, table, rows);
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

/// One calendar month of the calibrated error trend (see `monthly_errors`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct MonthError {
    /// `YYYY-MM` (UTC) of the recommendations' event time.
    pub month: String,
    /// Measured recommendations of the month.
    pub n: usize,
    /// Mean |predicted − actual| / actual.
    pub raw_error: f64,
    /// Mean |calibrated − actual| / actual, calibrated by what was learned
    /// from the months before (none in the first: equal to the raw error).
    pub calibrated_error: f64,
}

/// `YYYY-MM` of an event time in µs (UTC, proleptic Gregorian).
pub fn month_of(t: i64) -> (i64, u32) {
    let z = t.div_euclid(86_400_000_000) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m)
}

/// The calibration error month by month, prequentially: each month's
/// measured recommendations calibrated by a calibration fitted on every
/// measured recommendation of the months before it (`shrinkage` as
/// configured), next to their raw error.
pub fn monthly_errors(table: &Table, rows: &[&Row], shrinkage: f64) -> Vec<MonthError> {
    let mut measured: Vec<(i64, &Row, f64)> = rows.iter().filter_map(|r| Some((r.t, *r, r.log_ratio()?))).collect();
    measured.sort_by_key(|m| m.0);
    let mut global = LogStat::default();
    let mut by_key = vec![LogStat::default(); table.dict().len()];
    let mut out = Vec::new();
    let mut i = 0;
    while i < measured.len() {
        let month = month_of(measured[i].0);
        let end = i + measured[i..].iter().take_while(|m| month_of(m.0) == month).count();
        let p = Params { shrinkage, global, calibration: by_name(table, &by_key, |s| s.n > 0), ..Params::default() };
        let c = p.compile(table);
        let (mut raw, mut cal) = (0.0, 0.0);
        for &(_, r, x) in &measured[i..end] {
            let a = r.actual.unwrap_or(0.0);
            raw += (r.predicted - a).abs() / a;
            cal += (c.calibrated_savings(r) - a).abs() / a;
            global.add(x);
            for k in table.group(r).keys {
                by_key[k as usize].add(x);
            }
        }
        let n = end - i;
        out.push(MonthError {
            month: format!("{:04}-{:02}", month.0, month.1),
            n,
            raw_error: raw / n as f64,
            calibrated_error: cal / n as f64,
        });
        i = end;
    }
    out
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

    fn check(
        params: &Params,
        (kind, region, rt): (&str, &str, &str),
        predicted: f64,
        expected_factor: f64,
        basis: &str,
    ) {
        let e = params.estimate(kind, region, rt, predicted);
        assert!(
            (e.calibration_factor - expected_factor).abs() < 1e-12,
            "{kind}/{region}/{rt}: {} vs {expected_factor}",
            e.calibration_factor
        );
        assert!((e.calibrated_savings - predicted * expected_factor).abs() < 1e-9);
        assert_eq!(e.basis, basis);
    }

    #[test]
    fn thin_groups_shrink_toward_their_parent() {
        let mut p = Params { shrinkage: 10.0, global: LogStat { n: 100, mean: 0.8f64.ln() }, ..Params::default() };
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
        assert_eq!((e.calibration_factor, e.interval), (1.0, None));
        assert_eq!(Params::default().success_probability("x", "y", "z", "low", &BTreeMap::new()), None);
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
                risk: "medium",
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

    #[test]
    fn cross_validation_keeps_the_stated_risk_and_lets_a_no_signal_region_fall_back() {
        // Success depends on the stated risk only; the region is noise.
        let mut rng = learnloop_stats::SplitMix64::new(17);
        let mut table = Table::default();
        for i in 0..6000 {
            let risk = ["low", "medium", "high"][(rng.next_u64() % 3) as usize];
            let region = ["r1", "r2", "r3", "r4"][(rng.next_u64() % 4) as usize];
            let p = match risk {
                "low" => 0.95,
                "medium" => 0.8,
                _ => 0.55,
            };
            let ok = rng.uniform() < p;
            table.push(
                Fields {
                    t: i,
                    kind: "k",
                    region,
                    resource_type: "ec2",
                    risk,
                    predicted: 1.0,
                    actual: None,
                    success: Some(ok),
                },
                [("noise", rng.uniform())],
            );
        }
        let rows: Vec<&Row> = table.rows().iter().collect();
        let m = fit_success(&table, &rows, &Config::default());
        assert!(m.levels.iter().any(|l| l.level == "risk"), "{:#?}", m.cv);
        assert!(m.cv.log_loss_levels < m.cv.log_loss_base_rate - 0.02, "{:#?}", m.cv);
        let p =
            |risk: &str, region: &str| m.probability(&success_keys("k", region, "ec2", risk), |_| Some(0.5)).unwrap();
        for risk in ["low", "medium", "high"] {
            let by_region: Vec<f64> = ["r1", "r2", "r3", "r4"].iter().map(|r| p(risk, r)).collect();
            let spread =
                by_region.iter().cloned().fold(f64::MIN, f64::max) - by_region.iter().cloned().fold(f64::MAX, f64::min);
            assert!(
                spread < 0.02,
                "{risk}: the region has no signal yet moves the probability by {spread:.3}: {by_region:?}"
            );
        }
        assert!(
            (p("low", "r1") - 0.95).abs() < 0.03 && (p("high", "r1") - 0.55).abs() < 0.04,
            "{} {}",
            p("low", "r1"),
            p("high", "r1")
        );
        // A factor without signal gets no (or a negligible) coefficient.
        assert!(m.factors.iter().all(|f| f.coef.abs() < 0.1), "{:?}", m.factors);
    }

    #[test]
    fn a_scoring_factor_with_signal_enters_the_success_model() {
        // Success rises with `readiness` (logit slope 3 over [0, 1]); `noise` carries nothing.
        let mut rng = learnloop_stats::SplitMix64::new(5);
        let mut table = Table::default();
        for i in 0..5000 {
            let (ready, noise) = (rng.uniform(), rng.uniform());
            let ok = rng.uniform() < 1.0 / (1.0 + (-(1.5 + 3.0 * (ready - 0.5))).exp());
            table.push(
                Fields {
                    t: i,
                    kind: "k",
                    region: "r",
                    resource_type: "ec2",
                    risk: "medium",
                    predicted: 1.0,
                    actual: None,
                    success: Some(ok),
                },
                [("noise", noise), ("readiness", ready)],
            );
        }
        let rows: Vec<&Row> = table.rows().iter().collect();
        let m = fit_success(&table, &rows, &Config::default());
        assert!(m.ridge.is_some() && m.cv.log_loss_with_factors < m.cv.log_loss_without_factors, "{:#?}", m.cv);
        let coef = |name: &str| m.factors.iter().find(|f| f.name == name).map_or(0.0, |f| f.coef / f.sd);
        assert!((coef("readiness") - 3.0).abs() < 0.6, "{:?}", m.factors);
        assert!(coef("noise").abs() < 0.5, "{:?}", m.factors);
        let keys = success_keys("k", "r", "ec2", "medium");
        let p = |x: f64| m.probability(&keys, |n| (n == "readiness").then_some(x)).unwrap();
        assert!(p(0.9) > p(0.1) + 0.2, "{} {}", p(0.9), p(0.1));
    }
}
