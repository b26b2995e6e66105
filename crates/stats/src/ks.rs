//! Two-sample Kolmogorov–Smirnov test, bit-compatible with SciPy's `ks_2samp`.
//!
//! The drift plugin compares a reference window with a current one on every
//! run, often with hundreds of thousands of values, and its alerts are
//! audited against SciPy. So this module reproduces SciPy's choices exactly
//! (which ECDF difference wins on ties, the lcm snapping of D in exact mode,
//! the fallback from exact to asymptotic, `kstwo` rather than the limiting
//! series for the asymptotic p-value) while keeping the hot path to one sort
//! per sample and one merge pass, with no allocation for pre-sorted input.

use serde::{Deserialize, Serialize};

use crate::Alternative;
use crate::error::{Result, StatsError, check_finite, check_sorted};
use crate::kolmogorov::kstwo_sf_unchecked;
use crate::sum::sorted_copy;

const FN: &str = "ks_2samp";

/// How the p-value is computed (SciPy's `method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KsMethod {
    /// Exact when both samples have at most 10 000 values, asymptotic otherwise.
    Auto,
    /// Exact null distribution of D (lattice-path counting). SciPy, and this
    /// crate, fall back to `Asymp` when the computation fails numerically.
    Exact,
    /// For two-sided: the exact one-sample distribution `kstwo` at
    /// n = round_half_even(n·m/(n+m)); for one-sided: Hodges' approximation.
    Asymp,
}

/// Result of [`ks_2samp`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct KsResult {
    /// The KS statistic D (the maximal ECDF difference in the tested direction).
    pub statistic: f64,
    /// The p-value.
    pub pvalue: f64,
    /// The data value at which D is attained.
    pub statistic_location: f64,
    /// +1 if ECDF(x) − ECDF(y) is maximal at `statistic_location`, −1 if minimal.
    pub statistic_sign: i8,
    /// The method that produced `pvalue` (`Exact` or `Asymp`; never `Auto`).
    pub method_used: KsMethod,
}

/// Two-sample KS test on unsorted samples. SciPy: `ks_2samp(x, y, alternative, method)`.
///
/// Sorts copies of both samples; use [`ks_2samp_sorted`] when the caller
/// already holds them sorted.
///
/// # Errors
/// Empty sample, NaN or infinite values, or a two-sided asymptotic p-value
/// requested for two samples of size 1 (n·m/(n+m) rounds to 0 and the
/// distribution is undefined).
pub fn ks_2samp(x: &[f64], y: &[f64], alternative: Alternative, method: KsMethod) -> Result<KsResult> {
    check_inputs(x, y)?;
    let xs = sorted_copy(x);
    let ys = sorted_copy(y);
    ks_core(&xs, &ys, alternative, method)
}

/// Two-sample KS test on samples already sorted ascending. No allocation
/// unless the exact p-value needs a work vector.
///
/// # Errors
/// As [`ks_2samp`], plus [`StatsError::NotSorted`] if either input is not sorted.
pub fn ks_2samp_sorted(
    x_sorted: &[f64],
    y_sorted: &[f64],
    alternative: Alternative,
    method: KsMethod,
) -> Result<KsResult> {
    check_inputs(x_sorted, y_sorted)?;
    check_sorted(FN, "x_sorted", x_sorted)?;
    check_sorted(FN, "y_sorted", y_sorted)?;
    ks_core(x_sorted, y_sorted, alternative, method)
}

fn check_inputs(x: &[f64], y: &[f64]) -> Result<()> {
    if x.is_empty() {
        return Err(StatsError::TooFewSamples { function: FN, input: "x", needed: 1, got: 0 });
    }
    if y.is_empty() {
        return Err(StatsError::TooFewSamples { function: FN, input: "y", needed: 1, got: 0 });
    }
    check_finite(FN, "x", x)?;
    check_finite(FN, "y", y)
}

/// Extremes of ECDF(x) − ECDF(y) over the pooled sample, with the pooled
/// value where each is first attained in SciPy's order (all of sorted x,
/// then all of sorted y).
struct Extremes {
    max_diff: f64,
    max_loc: f64,
    min_diff: f64,
    min_loc: f64,
}

/// Running extreme of the ECDF difference over one part of SciPy's pooled
/// array, keeping the first (lowest) value where it is attained.
#[derive(Clone, Copy)]
struct Extreme {
    max: f64,
    max_loc: f64,
    min: f64,
    min_loc: f64,
}

impl Extreme {
    const EMPTY: Extreme = Extreme { max: f64::NEG_INFINITY, max_loc: f64::NAN, min: f64::INFINITY, min_loc: f64::NAN };

    #[inline(always)]
    fn visit(&mut self, d: f64, v: f64) {
        // strict comparisons: the first occurrence wins, as with argmax/argmin
        if d > self.max {
            self.max = d;
            self.max_loc = v;
        }
        if d < self.min {
            self.min = d;
            self.min_loc = v;
        }
    }
}

/// What SciPy gets from `searchsorted` over the concatenation `[x, y]` and
/// `argmax`/`argmin` of the differences, in one merge pass.
///
/// At every pooled value v, d(v) = #{x ≤ v}/n1 − #{y ≤ v}/n2 (the same float
/// expression as SciPy's). All pooled elements equal to v share d(v) and the
/// location v, so the only thing SciPy's element order decides is which tie
/// group wins when the extreme is attained more than once: any group that
/// contains an x value comes before every group reached only through y
/// (x is first in the concatenation), and within each part lower values come
/// first. Hence two running extremes, over groups containing an x value and
/// over groups containing a y value, and the x part wins ties between them.
///
/// One pass over both samples instead of SciPy's two binary searches per
/// element: at 2 × 10⁶ values this scan is ~20 ms, a fraction of the sorting.
/// Callers guarantee both slices are non-empty and finite.
fn ecdf_extremes(x: &[f64], y: &[f64]) -> Extremes {
    let (n1, n2) = (x.len(), y.len());
    let (n1f, n2f) = (n1 as f64, n2 as f64);
    let mut in_x = Extreme::EMPTY;
    let mut in_y = Extreme::EMPTY;
    let (mut i, mut j) = (0usize, 0usize);
    let (mut has_x, mut has_y) = (false, false);
    // Heads of both sides; an exhausted side reads as +inf (inputs are finite).
    let (mut xv, mut yv) = (x[0], y[0]);
    loop {
        let take_x = xv <= yv;
        let v = if take_x { xv } else { yv };
        if take_x {
            i += 1;
            xv = x.get(i).copied().unwrap_or(f64::INFINITY);
        } else {
            j += 1;
            yv = y.get(j).copied().unwrap_or(f64::INFINITY);
        }
        has_x |= take_x;
        has_y |= !take_x;
        let next = xv.min(yv);
        if next > v {
            // end of the group of pooled values equal to v
            let d = i as f64 / n1f - j as f64 / n2f;
            // NaN never compares greater or smaller: a masked, branch-free visit.
            in_x.visit(if has_x { d } else { f64::NAN }, v);
            in_y.visit(if has_y { d } else { f64::NAN }, v);
            has_x = false;
            has_y = false;
            if next == f64::INFINITY {
                break;
            }
        }
    }
    let (max_diff, max_loc) = if in_x.max >= in_y.max { (in_x.max, in_x.max_loc) } else { (in_y.max, in_y.max_loc) };
    let (min_diff, min_loc) = if in_x.min <= in_y.min { (in_x.min, in_x.min_loc) } else { (in_y.min, in_y.min_loc) };
    Extremes { max_diff, max_loc, min_diff, min_loc }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

fn ks_core(x: &[f64], y: &[f64], alternative: Alternative, method: KsMethod) -> Result<KsResult> {
    let n1 = x.len() as u64;
    let n2 = y.len() as u64;
    let ext = ecdf_extremes(x, y);
    let min_s = (-ext.min_diff).clamp(0.0, 1.0);
    let max_s = ext.max_diff;
    let (mut d, location, sign) = match alternative {
        Alternative::Less => (min_s, ext.min_loc, -1i8),
        Alternative::TwoSided if min_s > max_s => (min_s, ext.min_loc, -1i8),
        _ => (max_s, ext.max_loc, 1i8),
    };

    let g = gcd(n1, n2);
    let (n1g, n2g) = (n1 / g, n2 / g);
    let mut mode = match method {
        KsMethod::Auto => {
            if n1.max(n2) <= 10_000 {
                KsMethod::Exact
            } else {
                KsMethod::Asymp
            }
        }
        KsMethod::Exact if n1g as f64 >= i32::MAX as f64 / n2g as f64 => KsMethod::Asymp,
        m => m,
    };

    let mut prob = f64::NAN;
    if mode == KsMethod::Exact {
        let (ok, snapped, p) = attempt_exact(n1, n2, g, d, alternative);
        d = snapped;
        if ok {
            prob = p;
        } else {
            mode = KsMethod::Asymp;
        }
    }
    if mode == KsMethod::Asymp {
        let (m, n) = if n1 >= n2 { (n1 as f64, n2 as f64) } else { (n2 as f64, n1 as f64) };
        let en = m * n / (m + n);
        prob = match alternative {
            Alternative::TwoSided => {
                let kn = en.round_ties_even();
                if kn < 1.0 {
                    return Err(StatsError::Undefined {
                        function: FN,
                        reason: "the asymptotic two-sided p-value needs n*m/(n+m) >= 0.5 (both samples have one value)",
                    });
                }
                kstwo_sf_unchecked(d, kn as u64)
            }
            _ => {
                // Hodges (1958) eq. 5.3; m must be the larger size.
                let z = en.sqrt() * d;
                let expt = -2.0 * z.powf(2.0) - 2.0 * z * (m + 2.0 * n) / (m * n * (m + n)).sqrt() / 3.0;
                expt.exp()
            }
        };
    }
    if prob.is_nan() {
        return Err(StatsError::Undefined { function: FN, reason: "the p-value could not be computed" });
    }
    Ok(KsResult {
        statistic: d,
        pvalue: prob.clamp(0.0, 1.0),
        statistic_location: location,
        statistic_sign: sign,
        method_used: mode,
    })
}

/// SciPy's `_attempt_exact_2kssamp`: snaps D to h/lcm(n1, n2) and computes the
/// exact p-value; `false` when the computation fails (the result leaves
/// [0, 1] through rounding, or counts overflow), which triggers the fallback.
fn attempt_exact(n1: u64, n2: u64, g: u64, d: f64, alternative: Alternative) -> (bool, f64, f64) {
    let lcm = (n1 / g) * n2;
    let h = (d * lcm as f64).round_ties_even() as u64;
    let d = h as f64 / lcm as f64;
    if h == 0 {
        return (true, d, 1.0);
    }
    let prob = match alternative {
        Alternative::TwoSided => {
            if n1 == n2 {
                prob_outside_square(n1, h)
            } else {
                outer_prob_inside_method(n1, n2, g, h)
            }
        }
        _ => {
            if n1 == n2 {
                // binom(2n, n-h) / binom(2n, n) as a product, without binomials
                let mut p = 1.0;
                for j in 0..h {
                    p *= (n1 - j) as f64 / (n1 as f64 + j as f64 + 1.0);
                }
                p
            } else {
                match count_paths_outside(n1, n2, g, h) {
                    Some(num_paths) => {
                        let bin = binom(n1 as f64 + n2 as f64, n1 as f64);
                        if !bin.is_finite() || !num_paths.is_finite() || num_paths > bin {
                            return (false, d, f64::NAN);
                        }
                        num_paths / bin
                    }
                    None => return (false, d, f64::NAN),
                }
            }
        }
    };
    if !prob.is_finite() || !(0.0..=1.0).contains(&prob) {
        return (false, d, prob);
    }
    (true, d, prob)
}

/// P(D_{n,n} ≥ h/n) for equal sample sizes, by the alternating series
/// 2·Σ (−1)^(k−1) C(2n, n−kh)/C(2n, n) evaluated Horner-style so that the
/// terms never cancel catastrophically. Same operation order as SciPy, which
/// matters: for tiny samples the result can round to just above 1, and SciPy
/// then falls back to the asymptotic p-value.
fn prob_outside_square(n: u64, h: u64) -> f64 {
    let mut p = 0.0;
    let mut k = (n as f64 / h as f64).floor() as i64;
    let (n, h) = (n as i64, h as i64);
    while k >= 0 {
        let mut p1 = 1.0;
        for j in 0..h {
            p1 = (n - k * h - j) as f64 * p1 / (n + k * h + j + 1) as f64;
        }
        p = p1 * (1.0 - p);
        k -= 1;
    }
    2.0 * p
}

/// P(D_{m,n} ≥ h/lcm) for unequal sizes: the probability that a random
/// lattice path from (0,0) to (m,n) leaves the band |x/m − y/n| < h/lcm,
/// propagated directly as a probability (Viehmann 2021) so that tiny
/// p-values keep full relative precision. Same recursion and window
/// arithmetic as SciPy's `_compute_outer_prob_inside_method`.
fn outer_prob_inside_method(m: u64, n: u64, g: u64, h: u64) -> f64 {
    let (m, n) = if m < n { (n, m) } else { (m, n) };
    let (m, n, g, h) = (m as i64, n as i64, g as i64, h as i64);
    let mg = m / g;
    let ng = n / g;
    let mut minj: i64 = 0;
    let mut maxj: i64 = ((h as f64 / mg as f64).ceil() as i64).min(n + 1);
    let mut curlen = maxj - minj;
    let len_a = (2 * maxj + 2).min(n + 1).max(1) as usize;
    let mut a = vec![1.0f64; len_a];
    for v in a.iter_mut().take(maxj as usize) {
        *v = 0.0;
    }
    for i in 1..=m {
        let lastminj = minj;
        let lastlen = curlen;
        minj = (((ng * i - h) as f64 / mg as f64).floor() as i64 + 1).max(0);
        minj = minj.min(n);
        maxj = (((ng * i + h) as f64 / mg as f64).ceil() as i64).min(n + 1);
        if maxj <= minj {
            return 1.0;
        }
        let fi = i as f64;
        let mut val = if minj == 0 { 0.0 } else { 1.0 };
        for jj in 0..(maxj - minj) {
            let j = jj + minj;
            // Cells beyond the stored window lie outside the band: probability 1.
            let prev = a.get((jj + minj - lastminj) as usize).copied().unwrap_or(1.0);
            val = (prev * fi + val * j as f64) / (fi + j as f64);
            if let Some(slot) = a.get_mut(jj as usize) {
                *slot = val;
            }
        }
        curlen = maxj - minj;
        if lastlen > curlen {
            let start = (maxj - minj) as usize;
            let end = ((maxj - minj + (lastlen - curlen)) as usize).min(a.len());
            for v in a.iter_mut().take(end).skip(start) {
                *v = 1.0;
            }
        }
    }
    a.get((maxj - minj - 1) as usize).copied().unwrap_or(1.0)
}

/// Number of lattice paths from (0,0) to (m,n) that reach the line
/// x/m − y/n = h/lcm (one-sided exact test), as a float; `None` on overflow.
/// SciPy's `_count_paths_outside_method` (Hodges 1958).
fn count_paths_outside(m: u64, n: u64, g: u64, h: u64) -> Option<f64> {
    let (m, n) = if m < n { (n, m) } else { (m, n) };
    let (m, n, g, h) = (m as i64, n as i64, g as i64, h as i64);
    let mg = m / g;
    let ng = n / g;
    let lxj = n + (mg - h).div_euclid(mg);
    if lxj <= 0 {
        return Some(binom((m + n) as f64, n as f64));
    }
    let xj: Vec<i64> = (0..lxj).map(|j| (h + mg * j + ng - 1).div_euclid(ng)).collect();
    let mut b = vec![0.0f64; lxj as usize];
    b[0] = 1.0;
    for j in 1..lxj as usize {
        let mut bj = binom((xj[j] + j as i64) as f64, j as f64);
        for i in 0..j {
            let bin = binom((xj[j] - xj[i] + (j - i) as i64) as f64, (j - i) as f64);
            bj -= bin * b[i];
        }
        if !bj.is_finite() {
            return None;
        }
        b[j] = bj;
    }
    let mut num_paths = 0.0;
    for j in 0..lxj as usize {
        let bin = binom(((m - xj[j]) + (n - j as i64)) as f64, (n - j as i64) as f64);
        num_paths += b[j] * bin;
    }
    if num_paths.is_finite() { Some(num_paths) } else { None }
}

/// Binomial coefficient C(n, k) for integer-valued n ≥ k ≥ 0, in floating point
/// (products for small k, log-gamma otherwise), overflowing to +inf.
fn binom(n: f64, k: f64) -> f64 {
    if k < 0.0 || k > n {
        return 0.0;
    }
    let k = if k > n / 2.0 { n - k } else { k };
    if k < 20.0 {
        let mut num = 1.0;
        let mut den = 1.0;
        let mut i = 1.0;
        while i <= k {
            num *= i + n - k;
            den *= i;
            if num.abs() > 1e50 {
                num /= den;
                den = 1.0;
            }
            i += 1.0;
        }
        return num / den;
    }
    (-crate::special::ln_beta(1.0 + n - k, 1.0 + k) - (n + 1.0).ln()).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SciPy's definition, literally: searchsorted over the concatenation,
    /// then argmax/argmin. Quadratic-free but allocation-heavy; for tests.
    fn extremes_reference(x: &[f64], y: &[f64]) -> (f64, f64, f64, f64) {
        let all: Vec<f64> = x.iter().chain(y).copied().collect();
        let count = |s: &[f64], v: f64| s.partition_point(|&e| e <= v);
        let d: Vec<f64> =
            all.iter().map(|&v| count(x, v) as f64 / x.len() as f64 - count(y, v) as f64 / y.len() as f64).collect();
        let (mut amax, mut amin) = (0, 0);
        for k in 1..d.len() {
            if d[k] > d[amax] {
                amax = k;
            }
            if d[k] < d[amin] {
                amin = k;
            }
        }
        (d[amax], all[amax], d[amin], all[amin])
    }

    #[test]
    fn merge_pass_matches_scipy_definition_including_ties() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..3000 {
            let n1 = 1 + (next() % 25) as usize;
            let n2 = 1 + (next() % 25) as usize;
            let levels = 1 + next() % if round % 2 == 0 { 4 } else { 1000 };
            let mut x: Vec<f64> = (0..n1).map(|_| (next() % levels) as f64).collect();
            let mut y: Vec<f64> = (0..n2).map(|_| (next() % levels) as f64 + 0.5 * (next() % 2) as f64).collect();
            x.sort_by(f64::total_cmp);
            y.sort_by(f64::total_cmp);
            let e = ecdf_extremes(&x, &y);
            let (mx, mxl, mn, mnl) = extremes_reference(&x, &y);
            assert_eq!(
                (e.max_diff.to_bits(), e.max_loc, e.min_diff.to_bits(), e.min_loc),
                (mx.to_bits(), mxl, mn.to_bits(), mnl),
                "x = {x:?}, y = {y:?}"
            );
        }
    }

    #[test]
    fn equal_size_exact_small_case() {
        // ks_2samp([1,2,3,4,5], [6,7,8,9,10]) -> D = 1, p = 2/252
        let r =
            ks_2samp(&[1., 2., 3., 4., 5.], &[6., 7., 8., 9., 10.], Alternative::TwoSided, KsMethod::Exact).unwrap();
        assert_eq!(r.statistic, 1.0);
        assert!((r.pvalue - 2.0 / 252.0).abs() < 1e-15);
        assert_eq!(r.statistic_sign, 1);
        assert_eq!(r.statistic_location, 5.0);
    }

    /// All orderings of n1 x's and n2 y's, with the one-sided statistic
    /// max(cx/n1 − cy/n2) and the two-sided one, in units of 1/lcm.
    fn enumerate(n1: u64, n2: u64) -> Vec<(i64, i64)> {
        let lcm = n1 / gcd(n1, n2) * n2;
        let total = n1 + n2;
        let mut out = Vec::new();
        for mask in 0u64..(1 << total) {
            if u64::from(mask.count_ones()) != n1 {
                continue;
            }
            let (mut cx, mut cy, mut dplus, mut dabs) = (0i64, 0i64, 0i64, 0i64);
            for b in 0..total {
                if mask >> b & 1 == 1 {
                    cx += 1
                } else {
                    cy += 1
                }
                let diff = cx * (lcm / n1) as i64 - cy * (lcm / n2) as i64;
                dplus = dplus.max(diff);
                dabs = dabs.max(diff.abs());
            }
            out.push((dplus, dabs));
        }
        out
    }

    #[test]
    fn exact_p_values_match_enumeration() {
        for (n1, n2) in [(3u64, 3u64), (4, 4), (3, 5), (4, 6), (6, 4), (2, 7)] {
            let g = gcd(n1, n2);
            let lcm = n1 / g * n2;
            let all = enumerate(n1, n2);
            for h in 1..=lcm {
                let d = h as f64 / lcm as f64;
                let frac = |k: usize| {
                    all.iter().filter(|e| if k == 0 { e.0 } else { e.1 } >= h as i64).count() as f64 / all.len() as f64
                };
                let (ok, _, p) = attempt_exact(n1, n2, g, d, Alternative::Greater);
                assert!(ok && (p - frac(0)).abs() < 1e-12, "one-sided n1={n1} n2={n2} h={h}: {p} vs {}", frac(0));
                let (ok, _, p) = attempt_exact(n1, n2, g, d, Alternative::TwoSided);
                // tiny equal samples may round just above 1 and fall back (as in SciPy)
                if ok {
                    assert!((p - frac(1)).abs() < 1e-12, "two-sided n1={n1} n2={n2} h={h}: {p} vs {}", frac(1));
                }
            }
        }
    }

    #[test]
    fn outer_prob_matches_brute_force_for_small_sizes() {
        // Enumerate all C(m+n, n) orderings and count those with D >= h/lcm.
        for (m, n) in [(3u64, 2u64), (4, 6), (5, 3)] {
            let g = gcd(m, n);
            let lcm = m / g * n;
            for h in 1..=lcm {
                let total = m + n;
                let mut hits = 0u64;
                let mut all = 0u64;
                for mask in 0u64..(1 << total) {
                    if mask.count_ones() as u64 != m {
                        continue;
                    }
                    all += 1;
                    let (mut cx, mut cy) = (0i64, 0i64);
                    let mut dmax = 0i64;
                    for b in 0..total {
                        if mask >> b & 1 == 1 {
                            cx += 1
                        } else {
                            cy += 1
                        }
                        // |cx/m - cy/n| * lcm
                        let diff = (cx * (lcm / m) as i64 - cy * (lcm / n) as i64).abs();
                        dmax = dmax.max(diff);
                    }
                    if dmax >= h as i64 {
                        hits += 1;
                    }
                }
                let brute = hits as f64 / all as f64;
                let fast = outer_prob_inside_method(m, n, g, h);
                assert!((brute - fast).abs() < 1e-12, "m={m} n={n} h={h}: {brute} vs {fast}");
            }
        }
    }
}
