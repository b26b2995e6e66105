//! learnloop-stats: the statistics learnloop's plugins stand on.
//!
//! Plugins (drift, metrics, insights) turn predictions and outcomes into
//! claims like "this feature drifted" or "the error went up". Those claims are
//! only as good as the numbers under them, and they are checked against
//! SciPy/NumPy, so this crate reproduces SciPy's algorithms (not just their
//! formulas) and is tested case by case against SciPy 1.17 / NumPy 2.4 output
//! (`tests/data/stats_vectors.json`). Everything is a pure function or a small
//! serialisable state machine: no I/O, no global state, no panics on bad input.
//!
//! Undefined inputs (too few values, a constant sample, NaN/inf, a parameter
//! out of range) return a [`StatsError`] naming the function, the argument
//! and the problem; no function returns a silent NaN.
//!
//! # Example
//!
//! ```
//! use learnloop_stats::{Alternative, KsMethod, ks_2samp, benjamini_hochberg, Adwin};
//!
//! let reference = [0.1, 0.4, 0.35, 0.8, 0.55, 0.2, 0.9, 0.6];
//! let current = [0.7, 1.1, 0.95, 1.3, 0.85, 1.2, 0.75, 1.0];
//! let ks = ks_2samp(&reference, &current, Alternative::TwoSided, KsMethod::Auto)?;
//! assert_eq!(ks.statistic, 0.75);
//! assert!(ks.pvalue < 0.05);
//!
//! // Many features tested at once: control the false discovery rate.
//! let q = benjamini_hochberg(&[ks.pvalue, 0.30, 0.04])?;
//! assert!(q.iter().zip([ks.pvalue, 0.30, 0.04]).all(|(q, p)| *q >= p));
//!
//! // Online: feed values one by one; the state is serde-serialisable.
//! let mut adwin = Adwin::new(Default::default())?;
//! for i in 0..2000 {
//!     let x = if i < 1000 { 0.0 } else { 1.0 } + 0.1 * ((i * 7919 % 13) as f64 - 6.0);
//!     if let Some(change) = adwin.update(x)? {
//!         println!("mean changed ({change:?}) at value {i}");
//!     }
//! }
//! assert!(adwin.detections() >= 1);
//! # Ok::<(), learnloop_stats::StatsError>(())
//! ```
//!
//! # Functions and their SciPy/NumPy equivalents
//!
//! | function | SciPy / NumPy equivalent |
//! |---|---|
//! | [`ks_2samp`], [`ks_2samp_sorted`] | `scipy.stats.ks_2samp(x, y, alternative, method)` (`method` = [`KsMethod`]: auto, exact, asymp; reports `statistic_location`/`statistic_sign`) |
//! | [`kstwo_sf`] | `scipy.stats.kstwo.sf(d, n)` (exact one-sample KS distribution) |
//! | [`kolmogorov_sf`] | `scipy.stats.kstwobign.sf(x)` / `scipy.special.kolmogorov(x)` |
//! | [`smirnov_sf`] | `scipy.special.smirnov(n, x)` |
//! | [`ttest_ind`] | `scipy.stats.ttest_ind(x, y, equal_var, alternative)` (Student / Welch) |
//! | [`ttest_1samp`] | `scipy.stats.ttest_1samp(x, popmean, alternative)` |
//! | [`shapiro`] | `scipy.stats.shapiro(x)` (AS R94, n = 3..5000) |
//! | [`mean`] | `numpy.mean(x)` |
//! | [`median`] | `numpy.median(x)` |
//! | [`var`], [`std()`] | `numpy.var(x, ddof)`, `numpy.std(x, ddof)` |
//! | [`percentile`], [`percentiles`], [`percentile_sorted`] | `numpy.percentile(x, q)` (method `linear`) |
//! | [`skewness`] | `scipy.stats.skew(x, bias)` |
//! | [`kurtosis`] | `scipy.stats.kurtosis(x, fisher=True, bias)` |
//! | [`summary`] | `pandas.Series.describe()` (count, mean, std, min, quartiles, max) |
//! | [`psi`], [`psi_sorted_reference`] | no SciPy function; Population Stability Index with decile edges from `numpy.quantile` (definition on [`psi`]) |
//! | [`wasserstein`], [`wasserstein_sorted`] | `scipy.stats.wasserstein_distance(u, v)` |
//! | [`chi2_contingency`], [`chi2_contingency_2xk`] | `scipy.stats.chi2_contingency(table, correction=False)` |
//! | [`pearson`] | `scipy.stats.pearsonr(x, y)` |
//! | [`spearman`] | `scipy.stats.spearmanr(x, y)` |
//! | [`rankdata`] | `scipy.stats.rankdata(x, method="average")` |
//! | [`mae`], [`rmse`], [`r2`] | `sklearn.metrics.mean_absolute_error`, `root_mean_squared_error`, `r2_score` |
//! | [`mape`] | `sklearn.metrics.mean_absolute_percentage_error` × 100, but skipping (and counting) zero actuals |
//! | [`regression_metrics`] | all four at once |
//! | [`benjamini_hochberg`] | `scipy.stats.false_discovery_control(p, method="bh")` |
//! | [`holm`] | `statsmodels.stats.multitest.multipletests(p, method="holm")[1]` |
//! | [`Adwin`] | `river.drift.ADWIN` (Bifet & Gavaldà 2007) |
//! | [`PageHinkley`] | `river.drift.PageHinkley` (two-sided) |
//! | [`Cusum`] | tabular two-sided CUSUM (Page 1954; Montgomery's parametrisation in σ units) |
//! | [`SplitConformal`] | split conformal regression intervals (MAPIE `method="base"`, absolute residuals) |
//! | [`AdaptiveConformal`] | adaptive conformal inference (Gibbs & Candès 2021) |
//! | [`beta_posterior`] | `scipy.stats.beta(a + s, b + f).mean()` / `.interval(level)` |
//! | [`Ewma`], [`ewma`] | `pandas.Series.ewm(alpha, adjust=False).mean()` |
//!
//! # Where the arithmetic deliberately differs from SciPy
//!
//! * SciPy's one-sided Smirnov tail uses double-double arithmetic; here it is
//!   summed in log space (all terms are positive), which agrees to ~1e-13.
//! * t, correlation and chi-square p-values come from Cephes-style incomplete
//!   beta/gamma evaluations rather than Boost's; they agree to ~1e-13 in the
//!   reference set, including p-values down to 1e-300.
//! * [`shapiro`] refuses n > 5000 (SciPy warns that its p-value is invalid there).
//! * Where SciPy returns NaN (constant samples, n too small, NaN input) this
//!   crate returns a [`StatsError`]; where SciPy's sums overflow or underflow
//!   for finite input near ±1e308 or ±1e-300, the computation is redone on the
//!   data divided by a power of two (exact, so results elsewhere are unchanged)
//!   instead of returning NaN/inf.
//! * The streaming detectors accept |x| ≤ [`MAX_STREAM_MAGNITUDE`] (1e150) so
//!   that their running sums of squares cannot overflow.

#![deny(missing_docs)]

mod contingency;
mod correlation;
mod descriptive;
mod drift;
mod error;
mod estimation;
mod kolmogorov;
mod ks;
mod multitest;
mod regression;
mod rng;
mod shapiro;
mod special;
mod streaming;
mod sum;
mod ttest;

use serde::{Deserialize, Serialize};

pub use contingency::{Chi2Result, ChisquareResult, chi2_contingency, chi2_contingency_2xk, chisquare};
pub use correlation::{CorrelationResult, pearson, rankdata, spearman};
pub use descriptive::{
    Summary, kurtosis, mean, median, percentile, percentile_sorted, percentiles, skewness, std, summary, var,
};
pub use drift::{PsiResult, psi, psi_sorted_reference, wasserstein, wasserstein_sorted};
pub use error::{Result, StatsError};
pub use estimation::{
    AdaptiveConformal, AdaptiveConformalConfig, BetaPosterior, Ewma, Interval, SplitConformal, beta_posterior, ewma,
};
pub use kolmogorov::{kolmogorov_sf, kstwo_sf, smirnov_sf};
pub use ks::{KsMethod, KsResult, ks_2samp, ks_2samp_sorted};
pub use multitest::{benjamini_hochberg, holm};
pub use regression::{MapeResult, RegressionMetrics, mae, mape, r2, regression_metrics, rmse};
pub use rng::SplitMix64;
pub use shapiro::{SHAPIRO_MAX_N, ShapiroResult, shapiro};
pub use special::{beta_binomial_cdf, beta_binomial_sf, normal_cdf};
pub use streaming::{
    Adwin, AdwinConfig, ChangeDirection, Cusum, CusumConfig, MAX_STREAM_MAGNITUDE, PageHinkley, PageHinkleyConfig,
};
pub use ttest::{TTestResult, paired_improvement_confidence, ttest_1samp, ttest_ind};

/// The alternative hypothesis of a test (SciPy's `alternative`).
///
/// For two-sample tests, `Less`/`Greater` refer to the first sample relative
/// to the second (for KS: the first sample's CDF lying below/above the
/// second's, as in SciPy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Alternative {
    /// Two-sided (the default).
    #[default]
    TwoSided,
    /// One-sided, "less".
    Less,
    /// One-sided, "greater".
    Greater,
}
