//! Descriptive statistics: mean, median, variance, percentiles, skewness, kurtosis.
//!
//! Dashboards and insights quote these numbers next to values computed by
//! NumPy/SciPy elsewhere, so they use NumPy's summation order, NumPy's
//! percentile interpolation (same operation order, hence identical bits) and
//! SciPy's moment formulas, including SciPy's rule for when a sample is "too
//! constant" for skewness/kurtosis to mean anything.

use serde::{Deserialize, Serialize};

use crate::error::{Result, StatsError, check_sample};
use crate::sum::{max_abs, np_mean, np_sum_by, pow2_floor, sorted_copy};

/// Arithmetic mean. NumPy: `np.mean(x)`.
///
/// # Errors
/// Empty input or a non-finite value.
pub fn mean(x: &[f64]) -> Result<f64> {
    check_sample("mean", "x", x, 1)?;
    Ok(robust_mean(x))
}

/// NumPy's mean, recomputed on x/2^k when the plain sum overflows (values
/// near ±1.8e308), so that a finite sample always has a finite mean.
pub(crate) fn robust_mean(x: &[f64]) -> f64 {
    let m = np_mean(x);
    if m.is_finite() {
        return m;
    }
    let s = pow2_floor(max_abs(x));
    mean_in(x, s) * s
}

/// Mean of x/s, for a power of two s.
fn mean_in(x: &[f64], s: f64) -> f64 {
    if s == 1.0 {
        return np_mean(x);
    }
    np_sum_by(x.len(), |i| x[i] / s) / x.len() as f64
}

/// Mean of x/s and the sum of squared deviations of x/s from it, in
/// NumPy's order (two passes, pairwise sums).
pub(crate) fn mean_ss_in(x: &[f64], s: f64) -> (f64, f64) {
    let m = mean_in(x, s);
    let ss = np_sum_by(x.len(), |i| {
        let d = x[i] / s - m;
        d * d
    });
    (m, ss)
}

/// Whether a computed sum of squares can be trusted as is: finite, and
/// either comfortably above the underflow range or exactly 0 for a sample
/// that really is constant.
fn ss_is_reliable(x: &[f64], m: f64, ss: f64) -> bool {
    m.is_finite() && ss.is_finite() && (ss >= 1e-280 || (ss == 0.0 && x.iter().all(|&v| v == x[0])))
}

/// (scale, mean/scale, Σ(x/scale − mean/scale)²): scale is 1 (NumPy's exact
/// arithmetic) unless that overflows or underflows, in which case it is the
/// power of two nearest below max|x|.
pub(crate) fn spread(x: &[f64]) -> (f64, f64, f64) {
    let (m, ss) = mean_ss_in(x, 1.0);
    if ss_is_reliable(x, m, ss) {
        return (1.0, m, ss);
    }
    let s = pow2_floor(max_abs(x));
    let (m, ss) = mean_ss_in(x, s);
    (s, m, ss)
}

/// Variance with `ddof` delta degrees of freedom (0: population, 1: sample).
/// NumPy: `np.var(x, ddof=ddof)`.
///
/// A variance beyond the double range (|x| ~ 1e300) is returned as +inf,
/// the IEEE result; [`std()`] stays finite there.
///
/// # Errors
/// Fewer than `ddof + 1` values, or a non-finite value.
pub fn var(x: &[f64], ddof: u32) -> Result<f64> {
    check_sample("var", "x", x, ddof as usize + 1)?;
    let (s, _, ss) = spread(x);
    Ok(ss / (x.len() as f64 - f64::from(ddof)) * s * s)
}

/// Standard deviation with `ddof`. NumPy: `np.std(x, ddof=ddof)`.
///
/// # Errors
/// As [`var`].
pub fn std(x: &[f64], ddof: u32) -> Result<f64> {
    check_sample("std", "x", x, ddof as usize + 1)?;
    let (s, _, ss) = spread(x);
    Ok((ss / (x.len() as f64 - f64::from(ddof))).sqrt() * s)
}

/// Median (mean of the two middle values for even n). NumPy: `np.median(x)`.
///
/// # Errors
/// Empty input or a non-finite value.
pub fn median(x: &[f64]) -> Result<f64> {
    check_sample("median", "x", x, 1)?;
    let mut v = x.to_vec();
    let n = v.len();
    let mid = n / 2;
    let (lower, m, _) = v.select_nth_unstable_by(mid, f64::total_cmp);
    let hi = *m;
    if n % 2 == 1 {
        return Ok(hi);
    }
    let lo = lower.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let s = lo + hi;
    // (lo + hi) / 2 is NumPy's mean of the pair; it only overflows for
    // values near f64::MAX, where the midpoint form is exact enough.
    Ok(if s.is_finite() { s / 2.0 } else { lo / 2.0 + hi / 2.0 })
}

/// Median of a non-empty sorted slice, NumPy's way (mean of the middle pair).
fn median_sorted(v: &[f64]) -> f64 {
    let n = v.len();
    if n % 2 == 1 {
        return v[n / 2];
    }
    let (lo, hi) = (v[n / 2 - 1], v[n / 2]);
    let s = lo + hi;
    if s.is_finite() { s / 2.0 } else { lo / 2.0 + hi / 2.0 }
}

/// NumPy's linear interpolation between neighbours, in NumPy's exact order of
/// operations (`_lerp`): from below when t < 0.5, from above otherwise.
#[inline]
fn lerp(a: f64, b: f64, t: f64) -> f64 {
    let diff = b - a;
    if !diff.is_finite() {
        // a and b of opposite signs near ±1.8e308: NumPy would return
        // inf or NaN here; the convex combination cannot overflow.
        return if t == 0.0 { a } else { a * (1.0 - t) + b * t };
    }
    if t >= 0.5 { b - diff * (1.0 - t) } else { a + diff * t }
}

/// Quantile at fraction `q` ∈ [0, 1] of a non-empty sorted slice, NumPy's
/// default `method="linear"`.
#[inline]
pub(crate) fn quantile_sorted_unchecked(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    let g = (n as f64 - 1.0) * q;
    if g >= n as f64 - 1.0 {
        return sorted[n - 1];
    }
    if g < 0.0 {
        return sorted[0];
    }
    let i = g.floor();
    let t = g - i;
    let i = i as usize;
    lerp(sorted[i], sorted[i + 1], t)
}

fn check_percent(function: &'static str, q: f64) -> Result<()> {
    if !(0.0..=100.0).contains(&q) {
        return Err(StatsError::InvalidParameter {
            function,
            param: "q",
            value: q,
            reason: "percentiles must lie in [0, 100]",
        });
    }
    Ok(())
}

/// Percentile `q` (in percent, 0–100). NumPy: `np.percentile(x, q)`
/// (linear interpolation). Sorts a copy; see [`percentiles`] for many q and
/// [`percentile_sorted`] for pre-sorted data.
///
/// # Errors
/// Empty input, a non-finite value, or q outside [0, 100].
pub fn percentile(x: &[f64], q: f64) -> Result<f64> {
    check_sample("percentile", "x", x, 1)?;
    check_percent("percentile", q)?;
    let v = sorted_copy(x);
    Ok(quantile_sorted_unchecked(&v, q / 100.0))
}

/// Several percentiles with one sort. NumPy: `np.percentile(x, qs)`.
///
/// # Errors
/// As [`percentile`], for any of the `qs`.
pub fn percentiles(x: &[f64], qs: &[f64]) -> Result<Vec<f64>> {
    check_sample("percentiles", "x", x, 1)?;
    for &q in qs {
        check_percent("percentiles", q)?;
    }
    let v = sorted_copy(x);
    Ok(qs.iter().map(|&q| quantile_sorted_unchecked(&v, q / 100.0)).collect())
}

/// Percentile of data already sorted ascending (no copy, O(1)).
///
/// # Errors
/// Empty input, a non-finite value, unsorted input, or q outside [0, 100].
pub fn percentile_sorted(sorted: &[f64], q: f64) -> Result<f64> {
    check_sample("percentile_sorted", "sorted", sorted, 1)?;
    crate::error::check_sorted("percentile_sorted", "sorted", sorted)?;
    check_percent("percentile_sorted", q)?;
    Ok(quantile_sorted_unchecked(sorted, q / 100.0))
}

/// Mean and central moments m2, m3, m4 of x/s in SciPy's `_moment`
/// arithmetic (d², d²·d and (d²)² averaged with NumPy's pairwise sum).
fn central_moments_in(x: &[f64], s: f64) -> (f64, f64, f64, f64) {
    let n = x.len();
    let nf = n as f64;
    let m = mean_in(x, s);
    let dev = |i: usize| x[i] / s - m;
    let m2 = np_sum_by(n, |i| {
        let d = dev(i);
        d * d
    }) / nf;
    let m3 = np_sum_by(n, |i| {
        let d = dev(i);
        (d * d) * d
    }) / nf;
    let m4 = np_sum_by(n, |i| {
        let d = dev(i);
        let q = d * d;
        q * q
    }) / nf;
    (m, m2, m3, m4)
}

/// Mean and central moments in units of a power of two: 1 when SciPy's
/// arithmetic stays in range (then the results are SciPy's bits), otherwise
/// 2^⌊log₂ max|x|⌋. Skewness and kurtosis are scale-free, so the units cancel.
fn central_moments(x: &[f64]) -> (f64, f64, f64, f64) {
    let r = central_moments_in(x, 1.0);
    let (m, m2, m3, m4) = r;
    let in_range = m.is_finite()
        && m3.is_finite()
        && m4.is_finite()
        && ((1e-150..=1e150).contains(&m2) || (m2 == 0.0 && x.iter().all(|&v| v == x[0])));
    if in_range {
        return r;
    }
    central_moments_in(x, pow2_floor(max_abs(x)))
}

/// SciPy's test for "the variance is zero up to rounding":
/// m2 <= (eps · mean)². Skewness and kurtosis are NaN there in SciPy.
/// Both sides are in the same power-of-two units, so the test is unchanged
/// by the rescaling in [`central_moments`].
fn is_degenerate(mean: f64, m2: f64) -> bool {
    m2 <= (f64::EPSILON * mean).powf(2.0)
}

/// Sample skewness. `bias = true`: g1 = m3 / m2^1.5; `bias = false`: the
/// adjusted Fisher–Pearson G1 = g1·√(n(n−1))/(n−2).
/// SciPy: `scipy.stats.skew(x, bias=bias)`.
///
/// # Errors
/// Empty input (n < 3 when unbiased), a non-finite value, or a constant sample.
pub fn skewness(x: &[f64], bias: bool) -> Result<f64> {
    const FN: &str = "skewness";
    check_sample(FN, "x", x, if bias { 1 } else { 3 })?;
    let (m, m2, m3, _) = central_moments(x);
    if is_degenerate(m, m2) {
        return Err(StatsError::ConstantInput { function: FN, input: "x", what: "skewness" });
    }
    let g1 = m3 / m2.powf(1.5);
    if bias {
        return Ok(g1);
    }
    let n = x.len() as f64;
    Ok(((n - 1.0) * n).sqrt() / (n - 2.0) * m3 / m2.powf(1.5))
}

/// Excess (Fisher) kurtosis. `bias = true`: m4/m2² − 3; `bias = false`: the
/// unbiased estimator from k-statistics. SciPy: `scipy.stats.kurtosis(x, fisher=True, bias=bias)`.
///
/// # Errors
/// Empty input (n < 4 when unbiased), a non-finite value, or a constant sample.
pub fn kurtosis(x: &[f64], bias: bool) -> Result<f64> {
    const FN: &str = "kurtosis";
    check_sample(FN, "x", x, if bias { 1 } else { 4 })?;
    let (m, m2, _, m4) = central_moments(x);
    if is_degenerate(m, m2) {
        return Err(StatsError::ConstantInput { function: FN, input: "x", what: "kurtosis" });
    }
    if bias {
        return Ok(m4 / m2.powf(2.0) - 3.0);
    }
    let n = x.len() as f64;
    let nval = 1.0 / (n - 2.0) / (n - 3.0) * ((n.powf(2.0) - 1.0) * m4 / m2.powf(2.0) - 3.0 * (n - 1.0).powf(2.0));
    // SciPy adds 3 to get Pearson's kurtosis and subtracts it again for
    // Fisher's; keeping both steps keeps the last bit identical.
    Ok((nval + 3.0) - 3.0)
}

/// All descriptive statistics of one sample, computed with one sort.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Number of values.
    pub n: usize,
    /// Arithmetic mean.
    pub mean: f64,
    /// Sample standard deviation (ddof = 1); `None` for n = 1.
    pub std: Option<f64>,
    /// Smallest value.
    pub min: f64,
    /// 25th percentile.
    pub p25: f64,
    /// Median.
    pub median: f64,
    /// 75th percentile.
    pub p75: f64,
    /// Largest value.
    pub max: f64,
}

/// Count, mean, std, min, quartiles and max, like pandas' `describe()`.
///
/// # Errors
/// Empty input or a non-finite value.
pub fn summary(x: &[f64]) -> Result<Summary> {
    check_sample("summary", "x", x, 1)?;
    let v = sorted_copy(x);
    let (s, _, ss) = spread(x);
    Ok(Summary {
        n: x.len(),
        mean: robust_mean(x),
        std: (x.len() > 1).then(|| (ss / (x.len() as f64 - 1.0)).sqrt() * s),
        min: v[0],
        p25: quantile_sorted_unchecked(&v, 0.25),
        median: median_sorted(&v),
        p75: quantile_sorted_unchecked(&v, 0.75),
        max: v[v.len() - 1],
    })
}
