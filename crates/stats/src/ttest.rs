//! Student's, Welch's and one-sample t-tests, as SciPy's `ttest_ind` / `ttest_1samp`.
//!
//! Plugins use these to decide whether a metric moved between two periods.
//! The arithmetic follows SciPy's formulas step by step (pooled variance,
//! Welch–Satterthwaite df) and the p-values come from an incomplete beta
//! evaluated with the exact complement, so even p-values of 1e-100 keep their
//! digits.

use serde::{Deserialize, Serialize};

use crate::Alternative;
use crate::descriptive::mean_ss_in;
use crate::error::{Result, StatsError, check_sample};
use crate::special::{t_cdf, t_sf, t_two_sided_p};
use crate::sum::{max_abs, pow2_floor};

/// Result of a t-test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TTestResult {
    /// The t statistic.
    pub statistic: f64,
    /// The p-value for the requested alternative.
    pub pvalue: f64,
    /// Degrees of freedom (a non-integer for Welch's test).
    pub df: f64,
}

fn p_for(t: f64, df: f64, alternative: Alternative) -> f64 {
    match alternative {
        Alternative::TwoSided => t_two_sided_p(t, df),
        Alternative::Greater => t_sf(t, df),
        Alternative::Less => t_cdf(t, df),
    }
}

/// Two-sample t-test. `equal_var = true` is Student's test with a pooled
/// variance, `false` is Welch's test. SciPy: `ttest_ind(x, y, equal_var, alternative)`.
///
/// `Greater` tests mean(x) > mean(y).
///
/// # Errors
/// Either sample with fewer than 2 values or a non-finite value; both samples
/// constant (the standard error is 0, so t is undefined).
pub fn ttest_ind(x: &[f64], y: &[f64], equal_var: bool, alternative: Alternative) -> Result<TTestResult> {
    const FN: &str = "ttest_ind";
    check_sample(FN, "x", x, 2)?;
    check_sample(FN, "y", y, 2)?;
    // t and df are scale-free: if SciPy's arithmetic overflows or underflows
    // (|values| near 1e±300), redo it in units of a common power of two.
    let mut r = ind_in(x, y, equal_var, 1.0);
    if !(r.0.is_finite() && r.1.is_finite() && r.2 > 0.0) {
        let s = pow2_floor(max_abs(x).max(max_abs(y)));
        r = ind_in(x, y, equal_var, s);
    }
    let (t, df, denom) = r;
    if denom == 0.0 {
        return Err(StatsError::ConstantInput {
            function: FN,
            input: "x and y",
            what: "the t statistic",
        });
    }
    if t.is_nan() || !df.is_finite() {
        return Err(StatsError::Undefined {
            function: FN,
            reason: "the t statistic is not representable in double precision",
        });
    }
    Ok(TTestResult {
        statistic: t,
        pvalue: p_for(t, df, alternative),
        df,
    })
}

/// (t, df, standard error) of the two-sample test on x/s and y/s.
fn ind_in(x: &[f64], y: &[f64], equal_var: bool, s: f64) -> (f64, f64, f64) {
    let (n1, n2) = (x.len() as f64, y.len() as f64);
    let (m1, ss1) = mean_ss_in(x, s);
    let (m2, ss2) = mean_ss_in(y, s);
    let (v1, v2) = (ss1 / (n1 - 1.0), ss2 / (n2 - 1.0));
    let (df, denom) = if equal_var {
        let df = n1 + n2 - 2.0;
        let svar = ((n1 - 1.0) * v1 + (n2 - 1.0) * v2) / df;
        (df, (svar * (1.0 / n1 + 1.0 / n2)).sqrt())
    } else {
        let vn1 = v1 / n1;
        let vn2 = v2 / n2;
        let df = (vn1 + vn2).powf(2.0) / (vn1.powf(2.0) / (n1 - 1.0) + vn2.powf(2.0) / (n2 - 1.0));
        (df, (vn1 + vn2).sqrt())
    };
    ((m1 - m2) / denom, df, denom)
}

/// One-sample t-test of mean(x) = `popmean`. SciPy: `ttest_1samp(x, popmean, alternative)`.
///
/// # Errors
/// Fewer than 2 values, a non-finite value or `popmean`, or a constant sample.
pub fn ttest_1samp(x: &[f64], popmean: f64, alternative: Alternative) -> Result<TTestResult> {
    const FN: &str = "ttest_1samp";
    check_sample(FN, "x", x, 2)?;
    if !popmean.is_finite() {
        return Err(StatsError::InvalidParameter {
            function: FN,
            param: "popmean",
            value: popmean,
            reason: "must be finite",
        });
    }
    let n = x.len() as f64;
    let df = n - 1.0;
    let one = |s: f64| {
        let (m, ss) = mean_ss_in(x, s);
        let denom = (ss / df / n).sqrt();
        ((m - popmean / s) / denom, denom)
    };
    let mut r = one(1.0);
    if !(r.0.is_finite() && r.1 > 0.0) {
        r = one(pow2_floor(max_abs(x).max(popmean.abs())));
    }
    let (t, denom) = r;
    if denom == 0.0 {
        return Err(StatsError::ConstantInput {
            function: FN,
            input: "x",
            what: "the t statistic",
        });
    }
    if t.is_nan() {
        return Err(StatsError::Undefined {
            function: FN,
            reason: "the t statistic is not representable in double precision",
        });
    }
    Ok(TTestResult {
        statistic: t,
        pvalue: p_for(t, df, alternative),
        df,
    })
}
