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
            return Err(StatsError::NonFinite {
                function: FN,
                input: "table",
                index,
                value,
            });
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
    let expected_freq: Vec<Vec<f64>> = row_sums
        .iter()
        .map(|&r| col_sums.iter().map(|&c| r * c / total).collect())
        .collect();
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
    Ok(Chi2Result {
        statistic,
        pvalue: chi2_sf(statistic, dof as f64),
        dof,
        expected_freq,
    })
}

/// Convenience for the usual 2×K case: one row per window, counts per category.
///
/// # Errors
/// As [`chi2_contingency`], plus rows of different lengths.
pub fn chi2_contingency_2xk(row0: &[f64], row1: &[f64]) -> Result<Chi2Result> {
    chi2_contingency(&[row0, row1])
}
