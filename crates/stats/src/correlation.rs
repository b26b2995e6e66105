//! Pearson and Spearman correlation with two-sided p-values, as in SciPy.
//!
//! Insights relate a model's error to features and over time; these are the
//! two coefficients they report, with the p-values SciPy gives (exact under
//! bivariate normality for Pearson, the t approximation for Spearman).

use serde::{Deserialize, Serialize};

use crate::error::{Result, StatsError, check_paired, check_sample};
use crate::special::corr_two_sided_p;
use crate::sum::{max_abs, np_mean, np_sum_by, pow2_floor};

/// A correlation coefficient with its two-sided p-value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CorrelationResult {
    /// The coefficient, in [−1, 1].
    pub statistic: f64,
    /// Two-sided p-value for the null of no correlation.
    pub pvalue: f64,
}

fn check_pair(function: &'static str, x: &[f64], y: &[f64]) -> Result<()> {
    check_paired(function, "x", x, "y", y)?;
    // n - 2 degrees of freedom: with 2 points r is always ±1.
    check_sample(function, "x", x, 3)?;
    check_sample(function, "y", y, 3)
}

/// Pearson's r and its p-value (r ~ 2·Beta(n/2−1, n/2−1) − 1 under the
/// null, equivalently t = r·√((n−2)/(1−r²)) on n−2 df).
/// SciPy: `scipy.stats.pearsonr(x, y)`.
///
/// # Errors
/// Different lengths, fewer than 3 pairs, a non-finite value, or a constant input.
pub fn pearson(x: &[f64], y: &[f64]) -> Result<CorrelationResult> {
    const FN: &str = "pearson";
    check_pair(FN, x, y)?;
    let r = pearson_r(FN, x, y)?;
    Ok(CorrelationResult { statistic: r, pvalue: corr_two_sided_p(r, x.len()) })
}

/// r computed as SciPy does: centre, scale each sample by its largest
/// absolute deviation (guards against overflow and underflow in the sums),
/// normalise to unit length, take the dot product.
fn pearson_r(function: &'static str, x: &[f64], y: &[f64]) -> Result<f64> {
    let n = x.len();
    // r is scale-free; values beyond 1e300 are first divided by a power of
    // two so that the mean and the deviations cannot overflow.
    let unit = |v: &[f64]| {
        let m = max_abs(v);
        if m > 1e300 { pow2_floor(m) } else { 1.0 }
    };
    let (sx, sy) = (unit(x), unit(y));
    let x = |i: usize| x[i] / sx;
    let y = |i: usize| y[i] / sy;
    let (mx, my) = (np_sum_by(n, x) / n as f64, np_sum_by(n, y) / n as f64);
    let xmax = (0..n).fold(0.0f64, |a, i| a.max((x(i) - mx).abs()));
    let ymax = (0..n).fold(0.0f64, |a, i| a.max((y(i) - my).abs()));
    if xmax == 0.0 {
        return Err(StatsError::ConstantInput { function, input: "x", what: "the correlation coefficient" });
    }
    if ymax == 0.0 {
        return Err(StatsError::ConstantInput { function, input: "y", what: "the correlation coefficient" });
    }
    let xs = |i: usize| (x(i) - mx) / xmax;
    let ys = |i: usize| (y(i) - my) / ymax;
    let normx = np_sum_by(n, |i| xs(i) * xs(i)).sqrt();
    let normy = np_sum_by(n, |i| ys(i) * ys(i)).sqrt();
    let r = np_sum_by(n, |i| (xs(i) / normx) * (ys(i) / normy));
    Ok(r.clamp(-1.0, 1.0))
}

/// Average ranks (1-based; ties share the mean of their positions).
/// SciPy: `scipy.stats.rankdata(x, method="average")`.
///
/// # Errors
/// Empty input or a non-finite value.
pub fn rankdata(x: &[f64]) -> Result<Vec<f64>> {
    check_sample("rankdata", "x", x, 1)?;
    Ok(average_ranks(x))
}

fn average_ranks(x: &[f64]) -> Vec<f64> {
    let n = x.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_unstable_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut ranks = vec![0.0; n];
    let mut i = 0;
    while i < n {
        let mut j = i + 1;
        while j < n && x[order[j]] == x[order[i]] {
            j += 1;
        }
        // positions i..j (0-based) share rank mean(i+1 ..= j)
        let r = (i + 1 + j) as f64 / 2.0;
        for &k in &order[i..j] {
            ranks[k] = r;
        }
        i = j;
    }
    ranks
}

/// Spearman's rank correlation ρ (Pearson's r of the average ranks) and its
/// p-value from t = ρ·√((n−2)/((1+ρ)(1−ρ))) on n−2 df.
/// SciPy: `scipy.stats.spearmanr(x, y)`.
///
/// # Errors
/// Different lengths, fewer than 3 pairs, a non-finite value, or a constant input.
pub fn spearman(x: &[f64], y: &[f64]) -> Result<CorrelationResult> {
    const FN: &str = "spearman";
    check_pair(FN, x, y)?;
    let rx = average_ranks(x);
    let ry = average_ranks(y);
    // np.corrcoef: covariance matrix scaled by the standard deviations.
    let n = rx.len();
    let (mx, my) = (np_mean(&rx), np_mean(&ry));
    let ddof = n as f64 - 1.0;
    let sxx = np_sum_by(n, |i| (rx[i] - mx) * (rx[i] - mx)) / ddof;
    let syy = np_sum_by(n, |i| (ry[i] - my) * (ry[i] - my)) / ddof;
    let sxy = np_sum_by(n, |i| (rx[i] - mx) * (ry[i] - my)) / ddof;
    if sxx == 0.0 {
        return Err(StatsError::ConstantInput { function: FN, input: "x", what: "the rank correlation" });
    }
    if syy == 0.0 {
        return Err(StatsError::ConstantInput { function: FN, input: "y", what: "the rank correlation" });
    }
    let rho = (sxy / sxx.sqrt() / syy.sqrt()).clamp(-1.0, 1.0);
    Ok(CorrelationResult { statistic: rho, pvalue: corr_two_sided_p(rho, n) })
}
