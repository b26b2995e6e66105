//! Chi-square test of independence for contingency tables (2×K in practice).
//!
//! Categorical drift — "has the mix of categories changed between the
//! reference and the current window?" — is a 2×K table: one row per window,
//! one column per category. This is SciPy's `chi2_contingency` without the
//! Yates correction (which SciPy only applies to 2×2 tables and which would
//! make 2×2 results inconsistent with 2×K ones).

use serde::{Deserialize, Serialize};

use crate::error::{Result, StatsError};
use crate::special::chi2_sf;
use crate::sum::np_sum_by;

/// Result of [`chi2_contingency`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chi2Result {
    /// Pearson's χ² = Σ (observed − expected)² / expected.
    pub statistic: f64,
    /// P(χ²_dof ≥ statistic).
    pub pvalue: f64,
    /// Degrees of freedom, (rows − 1)(columns − 1).
    pub dof: usize,
    /// Expected frequencies under independence, row_sum · col_sum / total, row-major.
    pub expected_freq: Vec<Vec<f64>>,
}

/// χ² test of independence on a table of counts (rows × columns, at least
/// 2×2), no continuity correction. SciPy:
/// `scipy.stats.chi2_contingency(table, correction=False)`.
///
/// Counts are `f64` so that weighted counts work; they must be finite and
/// non-negative.
///
/// # Errors
/// Fewer than 2 rows or columns, ragged rows, a negative or non-finite count,
/// or a row or column that sums to 0 (its expected frequencies are 0).
pub fn chi2_contingency<R: AsRef<[f64]>>(table: &[R]) -> Result<Chi2Result> {
    const FN: &str = "chi2_contingency";
    let nrows = table.len();
    if nrows < 2 {
        return Err(StatsError::InvalidParameter {
            function: FN,
            param: "rows",
            value: nrows as f64,
            reason: "a contingency table needs at least 2 rows",
        });
    }
    let ncols = table[0].as_ref().len();
    if ncols < 2 {
        return Err(StatsError::InvalidParameter {
            function: FN,
            param: "columns",
            value: ncols as f64,
            reason: "a contingency table needs at least 2 columns (otherwise there are no degrees of freedom)",
        });
    }
    for row in table {
        let row = row.as_ref();
        if row.len() != ncols {
            return Err(StatsError::LengthMismatch {
                function: FN,
                left: "table[0]",
                left_len: ncols,
                right: "another row",
                right_len: row.len(),
            });
        }
        if let Some((index, &value)) = row.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(StatsError::NonFinite { function: FN, input: "table", index, value });
        }
        if let Some(&value) = row.iter().find(|v| **v < 0.0) {
            return Err(StatsError::InvalidParameter {
                function: FN,
                param: "table",
                value,
                reason: "counts must be non-negative",
            });
        }
    }
    let row_sums: Vec<f64> = table.iter().map(|r| r.as_ref().iter().sum()).collect();
    let col_sums: Vec<f64> = (0..ncols).map(|j| table.iter().map(|r| r.as_ref()[j]).sum()).collect();
    if row_sums.contains(&0.0) || col_sums.contains(&0.0) {
        return Err(StatsError::Undefined {
            function: FN,
            reason: "a row or column of the table sums to 0, so some expected frequencies are 0",
        });
    }
    let total: f64 = row_sums.iter().sum();
    let expected_freq: Vec<Vec<f64>> =
        row_sums.iter().map(|&r| col_sums.iter().map(|&c| r * c / total).collect()).collect();
    let statistic = np_sum_by(nrows * ncols, |k| {
        let (i, j) = (k / ncols, k % ncols);
        let d = table[i].as_ref()[j] - expected_freq[i][j];
        d * d / expected_freq[i][j]
    });
    if !statistic.is_finite() || expected_freq.iter().flatten().any(|e| !e.is_finite()) {
        return Err(StatsError::Undefined {
            function: FN,
            reason: "the counts are too large for the statistic to be represented in double precision",
        });
    }
    let dof = (nrows - 1) * (ncols - 1);
    Ok(Chi2Result { statistic, pvalue: chi2_sf(statistic, dof as f64), dof, expected_freq })
}

/// Convenience for the usual 2×K case: one row per window, counts per category.
///
/// # Errors
/// As [`chi2_contingency`], plus rows of different lengths.
pub fn chi2_contingency_2xk(row0: &[f64], row1: &[f64]) -> Result<Chi2Result> {
    chi2_contingency(&[row0, row1])
}

/// Result of [`chisquare`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ChisquareResult {
    /// Σ (observed − expected)² / expected.
    pub statistic: f64,
    /// P(χ²_{k−1} ≥ statistic).
    pub pvalue: f64,
    /// Degrees of freedom, k − 1.
    pub dof: usize,
}

/// χ² goodness-of-fit test of observed counts against expected counts
/// (e.g. an A/B test's units per arm against its configured traffic split:
/// the sample-ratio-mismatch check). SciPy: `scipy.stats.chisquare(f_obs, f_exp)`.
///
/// # Errors
/// Fewer than 2 categories, different lengths, a negative or non-finite
/// count, a non-positive expected count, or sums of `f_obs` and `f_exp`
/// that differ by more than a relative 1e-8 (SciPy's check).
pub fn chisquare(f_obs: &[f64], f_exp: &[f64]) -> Result<ChisquareResult> {
    const FN: &str = "chisquare";
    let bad = |param: &'static str, value: f64, reason: &'static str| {
        Err(StatsError::InvalidParameter { function: FN, param, value, reason })
    };
    if f_obs.len() < 2 {
        return bad("f_obs", f_obs.len() as f64, "needs at least 2 categories");
    }
    if f_exp.len() != f_obs.len() {
        return bad("f_exp", f_exp.len() as f64, "must have as many categories as f_obs");
    }
    if let Some(&x) = f_obs.iter().find(|x| !(x.is_finite() && **x >= 0.0)) {
        return bad("f_obs", x, "counts must be finite and non-negative");
    }
    if let Some(&x) = f_exp.iter().find(|x| !(x.is_finite() && **x > 0.0)) {
        return bad("f_exp", x, "expected counts must be finite and positive");
    }
    let (so, se) = (np_sum_by(f_obs.len(), |i| f_obs[i]), np_sum_by(f_exp.len(), |i| f_exp[i]));
    if (so - se).abs() > 1e-8 * so.max(se) {
        return bad("f_exp", se, "must sum to the same total as f_obs");
    }
    let statistic = np_sum_by(f_obs.len(), |i| {
        let d = f_obs[i] - f_exp[i];
        d * d / f_exp[i]
    });
    let dof = f_obs.len() - 1;
    Ok(ChisquareResult { statistic, pvalue: chi2_sf(statistic, dof as f64), dof })
}

#[cfg(test)]
mod chisquare_tests {
    use super::chisquare;

    /// The examples of SciPy's `chisquare` documentation.
    #[test]
    fn matches_scipy_documentation_examples() {
        let r = chisquare(&[16.0, 18.0, 16.0, 14.0, 12.0, 12.0], &[14.666666666666666; 6]).unwrap();
        assert!((r.statistic - 2.0).abs() < 1e-12, "{r:?}");
        assert!((r.pvalue - 0.849_145_036_084_609_6).abs() < 1e-12, "{r:?}");
        let r = chisquare(&[16.0, 18.0, 16.0, 14.0, 12.0, 12.0], &[16.0, 16.0, 16.0, 16.0, 16.0, 8.0]).unwrap();
        assert!((r.statistic - 3.5).abs() < 1e-12, "{r:?}");
        assert!((r.pvalue - 0.623_387_627_749_582_2).abs() < 1e-12, "{r:?}");
        assert_eq!(r.dof, 5);
    }

    /// Two degrees of freedom: the survival function is exp(−x/2).
    #[test]
    fn three_categories_closed_form() {
        let r = chisquare(&[30.0, 50.0, 20.0], &[40.0, 40.0, 20.0]).unwrap();
        assert!((r.statistic - 5.0).abs() < 1e-12);
        assert!((r.pvalue - (-2.5f64).exp()).abs() < 1e-14);
        assert!(chisquare(&[1.0, 2.0], &[1.0, 1.0]).is_err());
        assert!(chisquare(&[1.0], &[1.0]).is_err());
        assert!(chisquare(&[1.0, 1.0], &[2.0, 0.0]).is_err());
    }
}
