//! Shapiro–Wilk normality test (Royston's algorithm AS R94), as in SciPy.
//!
//! Plugins check residuals and metric distributions for normality before
//! choosing a parametric test. SciPy's `shapiro` runs a double-precision
//! translation of Royston's Fortran: the coefficients come from AS 111's
//! normal quantile approximation (not an exact inverse CDF) and the p-value
//! from AS 66's normal tail approximation, so matching SciPy to 1e-10 means
//! using those same approximations, which is what this module does.

use serde::{Deserialize, Serialize};

use crate::error::{Result, StatsError, check_sample};
use crate::sum::sorted_copy;

/// Result of [`shapiro`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ShapiroResult {
    /// The W statistic, in (0, 1].
    pub w: f64,
    /// The p-value (small values reject normality).
    pub pvalue: f64,
}

/// Largest sample size for which AS R94's p-value approximation was fitted.
pub const SHAPIRO_MAX_N: usize = 5000;

/// Shapiro–Wilk test. SciPy: `scipy.stats.shapiro(x)`.
///
/// Valid for 3 ≤ n ≤ 5000; above 5000 the W statistic is still exact but
/// the p-value approximation is outside its fitted range, so it is refused.
///
/// # Errors
/// n < 3 or n > 5000, a non-finite value, or a sample with zero range.
pub fn shapiro(x: &[f64]) -> Result<ShapiroResult> {
    const FN: &str = "shapiro";
    check_sample(FN, "x", x, 3)?;
    if x.len() > SHAPIRO_MAX_N {
        return Err(StatsError::InvalidParameter {
            function: FN,
            param: "n",
            value: x.len() as f64,
            reason: "the AS R94 p-value is only valid for n <= 5000",
        });
    }
    let n = x.len();
    // SciPy subtracts x[n//2] of the *unsorted* input (gh-15777: centring
    // reduces rounding in the sums of squares); same shift, same bits.
    let shift = x[n / 2];
    let sorted = sorted_copy(x);
    let mut y = sorted.clone();
    for v in y.iter_mut() {
        *v -= shift;
    }
    if !(y[n - 1] - y[0]).is_finite() || y.iter().any(|v| !v.is_finite()) {
        // Beyond the double range: W is invariant under shifts and scalings,
        // and a quarter of the data cannot overflow.
        for (v, s) in y.iter_mut().zip(&sorted) {
            *v = s * 0.25 - shift * 0.25;
        }
    }
    swilk(&y).ok_or(StatsError::ConstantInput { function: FN, input: "x", what: "the Shapiro-Wilk W" })
}

/// Evaluates c[0] + c[1]·x + … with AS R94's coefficient layout.
fn poly(c: &[f64], x: f64) -> f64 {
    let nord = c.len();
    let mut res = c[0];
    if nord == 1 {
        return res;
    }
    let mut p = x * c[nord - 1];
    if nord == 2 {
        return res + p;
    }
    for ind in (1..=nord - 2).rev() {
        p = (p + c[ind]) * x;
    }
    res += p;
    res
}

/// AS 111 (Beasley–Springer) normal quantile, as used by AS R94.
fn ppnd(p: f64) -> f64 {
    const A0: f64 = 2.50662823884;
    const A1: f64 = -18.61500062529;
    const A2: f64 = 41.39119773534;
    const A3: f64 = -25.44106049637;
    const B1: f64 = -8.47351093090;
    const B2: f64 = 23.08336743743;
    const B3: f64 = -21.06224101826;
    const B4: f64 = 3.13082909833;
    const C0: f64 = -2.78718931138;
    const C1: f64 = -2.29796479134;
    const C2: f64 = 4.85014127135;
    const C3: f64 = 2.32121276858;
    const D1: f64 = 3.54388924762;
    const D2: f64 = 1.63706781897;
    let q = p - 0.5;
    if q.abs() <= 0.42 {
        let r = q * q;
        let num = q * (((A3 * r + A2) * r + A1) * r + A0);
        return num / ((((B4 * r + B3) * r + B2) * r + B1) * r + 1.0);
    }
    let mut r = if q > 0.0 { 1.0 - p } else { p };
    if r <= 0.0 {
        return 0.0;
    }
    r = (-r.ln()).sqrt();
    let num = ((C3 * r + C2) * r + C1) * r + C0;
    let val = num / ((D2 * r + D1) * r + 1.0);
    if q < 0.0 { -val } else { val }
}

/// AS 66 upper normal tail P(Z > x) (Hill 1973), with SciPy's extended range.
fn alnorm_upper(x: f64) -> f64 {
    const LTONE: f64 = 7.0;
    const UTZERO: f64 = 38.0;
    const CON: f64 = 1.28;
    const A1: f64 = 0.398942280444;
    const A2: f64 = 0.399903438504;
    const A3: f64 = 5.75885480458;
    const A4: f64 = 29.8213557808;
    const A5: f64 = 2.62433121679;
    const A6: f64 = 48.6959930692;
    const A7: f64 = 5.92885724438;
    const B1: f64 = 0.398942280385;
    const B2: f64 = 3.8052e-8;
    const B3: f64 = 1.00000615302;
    const B4: f64 = 3.98064794e-4;
    const B5: f64 = 1.98615381364;
    const B6: f64 = 0.151679116635;
    const B7: f64 = 5.29330324926;
    const B8: f64 = 4.8385912808;
    const B9: f64 = 15.1508972451;
    const B10: f64 = 0.742380924027;
    const B11: f64 = 30.789933034;
    const B12: f64 = 3.99019417011;
    let mut upper = true;
    let mut z = x;
    // NaN takes this branch too, as in SciPy (`if not (z > 0)`)
    if z.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
        upper = false;
        z = -z;
    }
    if !(z <= LTONE || (upper && z <= UTZERO)) {
        return if upper { 0.0 } else { 1.0 };
    }
    let y = 0.5 * z * z;
    let temp = if z <= CON {
        0.5 - z * (A1 - A2 * y / (y + A3 - A4 / (y + A5 + A6 / (y + A7))))
    } else {
        B1 * (-y).exp() / (z - B2 + B3 / (z + B4 + B5 / (z - B6 + B7 / (z + B8 - B9 / (z + B10 + B11 / (z + B12))))))
    };
    if upper { temp } else { 1.0 - temp }
}

/// AS R94 on a sorted sample; `None` when the range is zero.
fn swilk(x: &[f64]) -> Option<ShapiroResult> {
    const C1: [f64; 6] = [0.0, 0.221157, -0.147981, -0.207119e1, 0.4434685e1, -0.2706056e1];
    const C2: [f64; 6] = [0.0, 0.42981e-1, -0.293762, -0.1752461e1, 0.5682633e1, -0.3582633e1];
    const C3: [f64; 4] = [0.5440, -0.39978, 0.25054e-1, -0.6714e-3];
    const C4: [f64; 4] = [0.13822e1, -0.77857, 0.62767e-1, -0.20322e-2];
    const C5: [f64; 4] = [-0.15861e1, -0.31082, -0.83751e-1, 0.38915e-2];
    const C6: [f64; 3] = [-0.4803, -0.82676e-1, 0.30302e-2];
    const G: [f64; 2] = [-0.2273e1, 0.459];
    const SMALL: f64 = 1e-19;

    let n = x.len();
    let nn2 = n / 2;
    let an = n as f64;
    let mut a = vec![0.0f64; nn2];

    // Coefficients a_i: Royston's approximation to the expected normal
    // order statistics, with the two extreme ones corrected by polynomials in 1/√n.
    if n == 3 {
        a[0] = std::f64::consts::SQRT_2 / 2.0;
    } else {
        let an25 = an + 0.25;
        let mut summ2 = 0.0;
        for (i, ai) in a.iter_mut().enumerate() {
            let temp = ppnd((i as f64 + 1.0 - 0.375) / an25);
            *ai = temp;
            summ2 += temp * temp;
        }
        summ2 *= 2.0;
        let ssumm2 = summ2.sqrt();
        let rsn = 1.0 / an.sqrt();
        let a1 = poly(&C1, rsn) - (a[0] / ssumm2);
        let (i1, fac) = if n > 5 {
            let a2 = -a[1] / ssumm2 + poly(&C2, rsn);
            let fac = ((summ2 - (2.0 * a[0].powf(2.0)) - 2.0 * a[1].powf(2.0))
                / (1.0 - (2.0 * a1.powf(2.0)) - 2.0 * a2.powf(2.0)))
            .sqrt();
            a[1] = a2;
            (2, fac)
        } else {
            (1, ((summ2 - 2.0 * a[0].powf(2.0)) / (1.0 - 2.0 * a1.powf(2.0))).sqrt())
        };
        a[0] = a1;
        for ai in a.iter_mut().take(nn2).skip(i1) {
            *ai *= -1.0 / fac;
        }
    }

    let range = x[n - 1] - x[0];
    if range < SMALL {
        return None;
    }

    // Coefficient of the i-th order statistic: -a[i] in the lower half,
    // +a[n-1-i] in the upper half, 0 for the middle of an odd sample.
    let coef = |i: usize| -> f64 {
        let j = n - 1 - i;
        if i < j {
            -a[i]
        } else if i > j {
            a[j]
        } else {
            0.0
        }
    };
    let mut sx = x[0] / range;
    let mut sa = -a[0];
    for (i, &xi) in x.iter().enumerate().skip(1) {
        sx += xi / range;
        if i != n - 1 - i {
            sa += coef(i);
        }
    }
    sa /= an;
    sx /= an;
    let (mut ssa, mut ssx, mut sax) = (0.0, 0.0, 0.0);
    for (i, &xi) in x.iter().enumerate() {
        let asa = if i != n - 1 - i { coef(i) - sa } else { -sa };
        let xsx = xi / range - sx;
        ssa += asa * asa;
        ssx += xsx * xsx;
        sax += asa * xsx;
    }
    let ssassx = (ssa * ssx).sqrt();
    let w1 = (ssassx - sax) * (ssassx + sax) / (ssa * ssx);
    let w = 1.0 - w1;

    if n == 3 {
        // Exact for n = 3; W >= 0.75 in theory, rounding can dip below.
        if w < 0.75 {
            return Some(ShapiroResult { w: 0.75, pvalue: 0.0 });
        }
        let pw = 1.0 - 6.0 / std::f64::consts::PI * w.sqrt().acos();
        return Some(ShapiroResult { w, pvalue: pw });
    }

    let mut y = w1.ln();
    let xx = an.ln();
    let (m, s) = if n <= 11 {
        let gamma = poly(&G, an);
        if y >= gamma {
            return Some(ShapiroResult { w, pvalue: SMALL });
        }
        y = -(gamma - y).ln();
        (poly(&C3, an), poly(&C4, an).exp())
    } else {
        (poly(&C5, xx), poly(&C6, xx).exp())
    };
    Some(ShapiroResult { w, pvalue: alnorm_upper((y - m) / s) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn n3_is_exact() {
        // Equally spaced: W = 1, p = 1. Two equal values: W = 3/4, its minimum, p = 0.
        let r = shapiro(&[0.0, 1.0, 2.0]).unwrap();
        assert!((r.w - 1.0).abs() < 1e-15 && (r.pvalue - 1.0).abs() < 1e-7, "{r:?}");
        let r = shapiro(&[0.0, 0.0, 1.0]).unwrap();
        assert!((r.w - 0.75).abs() < 1e-15 && r.pvalue < 1e-7, "{r:?}");
    }

    #[test]
    fn w_is_affine_invariant() {
        let x = [2.1, 3.7, 0.4, 5.5, 4.4, 2.9, 3.3, 8.0, 1.2, 2.2, 3.1, 4.0];
        let a = shapiro(&x).unwrap();
        let y: Vec<f64> = x.iter().map(|v| 1e6 + 250.0 * v).collect();
        let b = shapiro(&y).unwrap();
        assert!((a.w - b.w).abs() < 1e-12 && (a.pvalue - b.pvalue).abs() < 1e-10, "{a:?} {b:?}");
        // and survives values near the end of the double range
        let z: Vec<f64> = x.iter().map(|v| (v - 4.0) * 4e307).collect();
        let c = shapiro(&z).unwrap();
        assert!((a.w - c.w).abs() < 1e-12, "{a:?} {c:?}");
    }
}
