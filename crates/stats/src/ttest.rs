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
        return Err(StatsError::ConstantInput { function: FN, input: "x and y", what: "the t statistic" });
    }
    if t.is_nan() || !df.is_finite() {
        return Err(StatsError::Undefined {
            function: FN,
            reason: "the t statistic is not representable in double precision",
        });
    }
    Ok(TTestResult { statistic: t, pvalue: p_for(t, df, alternative), df })
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
        return Err(StatsError::ConstantInput { function: FN, input: "x", what: "the t statistic" });
    }
    if t.is_nan() {
        return Err(StatsError::Undefined {
            function: FN,
            reason: "the t statistic is not representable in double precision",
        });
    }
    Ok(TTestResult { statistic: t, pvalue: p_for(t, df, alternative), df })
}

/// How sure one can be that a candidate beats a baseline, from their losses
/// on the same cases (lower is better): one minus the p-value of the
/// one-sided paired t-test that the baseline's loss exceeds the candidate's
/// (SciPy: `1 - ttest_rel(baseline, candidate, alternative="greater").pvalue`).
/// The improvement lifecycle uses it as a backtest's confidence.
///
/// Degenerate samples get the answer the data admits: fewer than 2 pairs is
/// 0.5 (no evidence either way); identical differences are 1 when the
/// candidate is better on every case, 0 when worse, 0.5 when equal.
///
/// # Errors
/// Samples of different lengths or with non-finite values.
pub fn paired_improvement_confidence(baseline_loss: &[f64], candidate_loss: &[f64]) -> Result<f64> {
    const FN: &str = "paired_improvement_confidence";
    if baseline_loss.len() != candidate_loss.len() {
        return Err(StatsError::LengthMismatch {
            function: FN,
            left: "baseline_loss",
            left_len: baseline_loss.len(),
            right: "candidate_loss",
            right_len: candidate_loss.len(),
        });
    }
    let diffs: Vec<f64> = baseline_loss.iter().zip(candidate_loss).map(|(b, c)| b - c).collect();
    if diffs.len() < 2 {
        return Ok(0.5);
    }
    match ttest_1samp(&diffs, 0.0, Alternative::Greater) {
        Ok(r) => Ok(1.0 - r.pvalue),
        Err(StatsError::ConstantInput { .. }) => Ok(match diffs[0].partial_cmp(&0.0) {
            Some(std::cmp::Ordering::Greater) => 1.0,
            Some(std::cmp::Ordering::Less) => 0.0,
            _ => 0.5,
        }),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paired_confidence_is_the_one_sided_paired_test() {
        // ttest_rel(b, c) is ttest_1samp(b - c, 0), whose p-values the SciPy
        // reference vectors check.
        let b = [1.0, 2.0, 3.5, 0.5, 2.2, 1.1];
        let c = [0.8, 1.9, 3.0, 0.7, 1.5, 1.0];
        let d: Vec<f64> = b.iter().zip(&c).map(|(x, y)| x - y).collect();
        let p = ttest_1samp(&d, 0.0, Alternative::Greater).unwrap().pvalue;
        assert_eq!(paired_improvement_confidence(&b, &c).unwrap(), 1.0 - p);
        assert!(paired_improvement_confidence(&b, &c).unwrap() > 0.9, "the candidate is mostly better");
        assert!(paired_improvement_confidence(&c, &b).unwrap() < 0.1, "and the other way round, worse");
    }

    #[test]
    fn paired_confidence_degenerate_cases() {
        assert_eq!(paired_improvement_confidence(&[1.0], &[0.0]).unwrap(), 0.5);
        assert_eq!(paired_improvement_confidence(&[2.0, 3.0], &[1.0, 2.0]).unwrap(), 1.0);
        assert_eq!(paired_improvement_confidence(&[1.0, 2.0], &[2.0, 3.0]).unwrap(), 0.0);
        assert_eq!(paired_improvement_confidence(&[1.0, 2.0], &[1.0, 2.0]).unwrap(), 0.5);
        assert!(paired_improvement_confidence(&[1.0, 2.0], &[1.0]).is_err());
        assert!(paired_improvement_confidence(&[1.0, f64::NAN], &[1.0, 2.0]).is_err());
    }
}
