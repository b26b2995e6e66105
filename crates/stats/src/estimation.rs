//! Estimation helpers: conformal prediction intervals, Beta posteriors, EWMA.
//!
//! Plugins attach uncertainty to what they report: an interval around a
//! prediction that holds its coverage without distributional assumptions
//! (split conformal, and an adaptive variant that keeps the coverage when
//! the data drift), a credible interval for a rate (Beta posterior), and a
//! smoothed level for noisy series (EWMA). All states serialise with serde.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use statrs::distribution::{Beta, ContinuousCDF};

use crate::error::{Result, StatsError, check_sample};

fn invalid(function: &'static str, param: &'static str, value: f64, reason: &'static str) -> StatsError {
    StatsError::InvalidParameter { function, param, value, reason }
}

fn check_alpha(function: &'static str, alpha: f64) -> Result<()> {
    if !(alpha > 0.0 && alpha < 1.0) {
        return Err(invalid(function, "alpha", alpha, "the miscoverage rate must lie in (0, 1)"));
    }
    Ok(())
}

/// A prediction interval. Bounds may be ±∞ when no finite interval achieves
/// the requested coverage (too few calibration scores, or an adaptive level
/// that has reached 0); they are never NaN.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// Lower bound.
    pub lower: f64,
    /// Upper bound.
    pub upper: f64,
}

impl Interval {
    /// Whether `y` lies in the closed interval.
    pub fn contains(&self, y: f64) -> bool {
        self.lower <= y && y <= self.upper
    }

    /// Upper minus lower bound (∞ for an unbounded interval).
    pub fn width(&self) -> f64 {
        self.upper - self.lower
    }
}

/// The conformal quantile of nonconformity `scores` at miscoverage `alpha`:
/// the ⌈(n+1)(1−α)⌉-th smallest score, or +∞ when that rank exceeds n.
fn conformal_rank_quantile(scores: &mut [f64], alpha: f64) -> f64 {
    let n = scores.len();
    let rank = ((n as f64 + 1.0) * (1.0 - alpha)).ceil();
    if rank > n as f64 {
        return f64::INFINITY;
    }
    if rank < 1.0 {
        return 0.0;
    }
    let k = rank as usize - 1;
    let (_, v, _) = scores.select_nth_unstable_by(k, f64::total_cmp);
    *v
}

/// Split conformal regression intervals with absolute-residual scores
/// (Vovk et al.; Lei et al. 2018): with calibration residuals |y − ŷ| from
/// data the model was not fitted on, `ŷ ± q` covers a new exchangeable
/// outcome with probability ≥ 1 − α.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SplitConformal {
    /// Half-width q of every interval.
    pub quantile: f64,
    /// The target miscoverage rate α.
    pub alpha: f64,
    /// Number of calibration residuals q was computed from.
    pub n_calibration: usize,
}

impl SplitConformal {
    /// Calibrates on absolute residuals |y − ŷ| of a held-out set.
    ///
    /// # Errors
    /// No residuals, a negative or non-finite residual, `alpha` outside (0, 1),
    /// or fewer than ⌈1/α⌉ − 1 residuals (no finite interval reaches 1 − α).
    pub fn calibrate(abs_residuals: &[f64], alpha: f64) -> Result<Self> {
        const FN: &str = "SplitConformal::calibrate";
        check_sample(FN, "abs_residuals", abs_residuals, 1)?;
        check_alpha(FN, alpha)?;
        if let Some(&v) = abs_residuals.iter().find(|v| **v < 0.0) {
            return Err(invalid(FN, "abs_residuals", v, "absolute residuals must be non-negative"));
        }
        let mut scores = abs_residuals.to_vec();
        let q = conformal_rank_quantile(&mut scores, alpha);
        if q.is_infinite() {
            return Err(StatsError::TooFewSamples {
                function: FN,
                input: "abs_residuals",
                needed: ((1.0 / alpha).ceil() as usize).saturating_sub(1),
                got: abs_residuals.len(),
            });
        }
        Ok(SplitConformal { quantile: q, alpha, n_calibration: abs_residuals.len() })
    }

    /// The interval ŷ ± q around a point prediction.
    pub fn interval(&self, prediction: f64) -> Interval {
        Interval { lower: prediction - self.quantile, upper: prediction + self.quantile }
    }
}

/// Parameters of [`AdaptiveConformal`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdaptiveConformalConfig {
    /// Target miscoverage rate α (0.1 for 90% intervals).
    pub alpha: f64,
    /// Step size γ of the α update; larger adapts faster but oscillates more.
    /// Default 0.005 (Gibbs & Candès' recommendation).
    pub gamma: f64,
    /// Number of most recent scores kept for the quantile. Default 500.
    pub window: usize,
}

impl Default for AdaptiveConformalConfig {
    fn default() -> Self {
        AdaptiveConformalConfig { alpha: 0.1, gamma: 0.005, window: 500 }
    }
}

/// Adaptive conformal inference (Gibbs & Candès 2021) for drifting data:
/// after each outcome, αₜ₊₁ = αₜ + γ(α − errₜ), where errₜ = 1 if the outcome
/// fell outside the interval. Under-coverage lowers αₜ (wider intervals),
/// over-coverage raises it, so the long-run miscoverage tends to α even when
/// exchangeability fails. Scores are absolute residuals over a sliding window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdaptiveConformal {
    config: AdaptiveConformalConfig,
    alpha_t: f64,
    scores: VecDeque<f64>,
    n_seen: u64,
    n_miss: u64,
}

impl AdaptiveConformal {
    /// A fresh state.
    ///
    /// # Errors
    /// `alpha` outside (0, 1), `gamma` not positive and finite, or `window` 0.
    pub fn new(config: AdaptiveConformalConfig) -> Result<Self> {
        const FN: &str = "AdaptiveConformal::new";
        check_alpha(FN, config.alpha)?;
        if !(config.gamma > 0.0 && config.gamma.is_finite()) {
            return Err(invalid(FN, "gamma", config.gamma, "must be finite and positive"));
        }
        if config.window == 0 {
            return Err(invalid(FN, "window", 0.0, "must keep at least 1 score"));
        }
        Ok(AdaptiveConformal {
            config,
            alpha_t: config.alpha,
            scores: VecDeque::with_capacity(config.window),
            n_seen: 0,
            n_miss: 0,
        })
    }

    /// The current working miscoverage level αₜ.
    pub fn alpha_t(&self) -> f64 {
        self.alpha_t
    }

    /// Fraction of outcomes so far that fell outside their interval
    /// (`None` before the first update).
    pub fn empirical_miscoverage(&self) -> Option<f64> {
        (self.n_seen > 0).then(|| self.n_miss as f64 / self.n_seen as f64)
    }

    /// The interval for the next outcome given a point prediction.
    /// Unbounded while there are too few scores or when αₜ ≤ 0;
    /// a single point when αₜ ≥ 1.
    pub fn interval(&self, prediction: f64) -> Interval {
        let q = if self.alpha_t >= 1.0 {
            0.0
        } else if self.alpha_t <= 0.0 || self.scores.is_empty() {
            f64::INFINITY
        } else {
            let mut s: Vec<f64> = self.scores.iter().copied().collect();
            conformal_rank_quantile(&mut s, self.alpha_t)
        };
        Interval { lower: prediction - q, upper: prediction + q }
    }

    /// Records the outcome for a prediction: checks it against the interval
    /// that was (or would have been) issued, updates αₜ and the score window.
    /// Returns whether the outcome was covered.
    ///
    /// # Errors
    /// A non-finite prediction or outcome (the state is left unchanged).
    pub fn update(&mut self, prediction: f64, actual: f64) -> Result<bool> {
        const FN: &str = "AdaptiveConformal::update";
        for (input, value) in [("prediction", prediction), ("actual", actual)] {
            if !value.is_finite() {
                return Err(StatsError::NonFinite { function: FN, input, index: 0, value });
            }
        }
        let covered = self.interval(prediction).contains(actual);
        let err = if covered { 0.0 } else { 1.0 };
        self.alpha_t += self.config.gamma * (self.config.alpha - err);
        self.n_seen += 1;
        self.n_miss += u64::from(!covered);
        if self.scores.len() == self.config.window {
            self.scores.pop_front();
        }
        self.scores.push_back((actual - prediction).abs());
        Ok(covered)
    }
}

/// A Beta posterior for a success probability, with an equal-tailed credible interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BetaPosterior {
    /// Posterior α = prior α + successes.
    pub alpha: f64,
    /// Posterior β = prior β + failures.
    pub beta: f64,
    /// Posterior mean α / (α + β).
    pub mean: f64,
    /// Lower end of the credible interval (the (1−level)/2 quantile).
    pub lower: f64,
    /// Upper end of the credible interval (the (1+level)/2 quantile).
    pub upper: f64,
    /// The credibility level of [`lower`](Self::lower)..[`upper`](Self::upper).
    pub level: f64,
}

/// Conjugate update of a Beta(prior_alpha, prior_beta) prior with binomial
/// data, and the equal-tailed credible interval at `level` (e.g. 0.95).
/// Quantiles come from statrs' Beta inverse CDF. SciPy:
/// `scipy.stats.beta(a, b).mean()` / `.interval(level)`.
///
/// `beta_posterior(7, 3, 1.0, 1.0, 0.95)` is the uniform-prior posterior after
/// 7 successes in 10 trials.
///
/// # Errors
/// Non-positive or non-finite prior parameters, or `level` outside (0, 1).
pub fn beta_posterior(
    successes: u64,
    failures: u64,
    prior_alpha: f64,
    prior_beta: f64,
    level: f64,
) -> Result<BetaPosterior> {
    const FN: &str = "beta_posterior";
    if !(prior_alpha > 0.0 && prior_alpha.is_finite()) {
        return Err(invalid(FN, "prior_alpha", prior_alpha, "must be finite and positive"));
    }
    if !(prior_beta > 0.0 && prior_beta.is_finite()) {
        return Err(invalid(FN, "prior_beta", prior_beta, "must be finite and positive"));
    }
    if !(level > 0.0 && level < 1.0) {
        return Err(invalid(FN, "level", level, "the credibility level must lie in (0, 1)"));
    }
    let a = prior_alpha + successes as f64;
    let b = prior_beta + failures as f64;
    let dist = Beta::new(a, b).map_err(|_| invalid(FN, "alpha/beta", a, "posterior parameters out of range"))?;
    let lower = dist.inverse_cdf((1.0 - level) / 2.0);
    let upper = dist.inverse_cdf((1.0 + level) / 2.0);
    if !(lower.is_finite() && upper.is_finite()) {
        return Err(StatsError::Undefined { function: FN, reason: "the Beta quantile did not converge" });
    }
    Ok(BetaPosterior { alpha: a, beta: b, mean: a / (a + b), lower, upper, level })
}

/// Exponentially weighted moving average, sₜ = α·xₜ + (1−α)·sₜ₋₁ with s₀ = x₀
/// (pandas' `ewm(alpha=α, adjust=False).mean()`), as a resumable state.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Ewma {
    alpha: f64,
    value: Option<f64>,
    count: u64,
}

impl Ewma {
    /// A fresh average with smoothing factor `alpha` ∈ (0, 1]
    /// (larger follows the data more closely).
    ///
    /// # Errors
    /// `alpha` outside (0, 1].
    pub fn new(alpha: f64) -> Result<Self> {
        if !(alpha > 0.0 && alpha <= 1.0) {
            return Err(invalid("Ewma::new", "alpha", alpha, "the smoothing factor must lie in (0, 1]"));
        }
        Ok(Ewma { alpha, value: None, count: 0 })
    }

    /// A fresh average whose weights have the given half-life in observations:
    /// α = 1 − 2^(−1/half_life).
    ///
    /// # Errors
    /// `half_life` not positive and finite.
    pub fn with_half_life(half_life: f64) -> Result<Self> {
        if !(half_life > 0.0 && half_life.is_finite()) {
            return Err(invalid("Ewma::with_half_life", "half_life", half_life, "must be finite and positive"));
        }
        Ewma::new(1.0 - (-std::f64::consts::LN_2 / half_life).exp())
    }

    /// Adds a value and returns the updated average.
    ///
    /// # Errors
    /// A non-finite value (the state is left unchanged).
    pub fn update(&mut self, x: f64) -> Result<f64> {
        if !x.is_finite() {
            return Err(StatsError::NonFinite { function: "Ewma::update", input: "x", index: 0, value: x });
        }
        let v = match self.value {
            None => x,
            Some(prev) => self.alpha * x + (1.0 - self.alpha) * prev,
        };
        self.value = Some(v);
        self.count += 1;
        Ok(v)
    }

    /// The current average (`None` before the first value).
    pub fn value(&self) -> Option<f64> {
        self.value
    }

    /// Values seen so far.
    pub fn count(&self) -> u64 {
        self.count
    }
}

/// The EWMA path of a whole series (see [`Ewma`]).
///
/// # Errors
/// Empty series, a non-finite value, or `alpha` outside (0, 1].
pub fn ewma(xs: &[f64], alpha: f64) -> Result<Vec<f64>> {
    check_sample("ewma", "xs", xs, 1)?;
    let mut e = Ewma::new(alpha)?;
    xs.iter().map(|&x| e.update(x)).collect()
}
