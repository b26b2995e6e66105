//! Regression error metrics: MAE, RMSE, R², MAPE.
//!
//! The metrics plugin scores predictions against outcomes. The definitions
//! are the textbook ones, summed in NumPy's order so that stored metrics match
//! a notebook recomputation. MAPE skips zero actuals (where the percentage
//! error is infinite) and reports how many points it used, so a MAPE over 3
//! of 1000 points cannot pass for a MAPE over 1000.

use serde::{Deserialize, Serialize};

use crate::descriptive::mean_ss_in;
use crate::error::{Result, StatsError, check_paired, check_sample};
use crate::sum::{max_abs, np_sum_by, pow2_floor};

fn check(function: &'static str, y: &[f64], yhat: &[f64]) -> Result<()> {
    check_paired(function, "y", y, "yhat", yhat)?;
    check_sample(function, "y", y, 1)?;
    check_sample(function, "yhat", yhat, 1)
}

/// Mean absolute error, mean |y − ŷ|.
///
/// # Errors
/// Empty, mismatched or non-finite inputs.
pub fn mae(y: &[f64], yhat: &[f64]) -> Result<f64> {
    check("mae", y, yhat)?;
    Ok(np_sum_by(y.len(), |i| (y[i] - yhat[i]).abs()) / y.len() as f64)
}

/// Root mean squared error, √(mean (y − ŷ)²).
///
/// # Errors
/// Empty, mismatched or non-finite inputs.
pub fn rmse(y: &[f64], yhat: &[f64]) -> Result<f64> {
    check("rmse", y, yhat)?;
    Ok(rmse_unchecked(y, yhat))
}

/// Σ((y − ŷ)/s)² for a power of two s.
fn sse_in(y: &[f64], yhat: &[f64], s: f64) -> f64 {
    np_sum_by(y.len(), |i| {
        let e = y[i] / s - yhat[i] / s;
        e * e
    })
}

/// Power of two used when the direct sums leave the double range.
fn unit(y: &[f64], yhat: &[f64]) -> f64 {
    pow2_floor(max_abs(y).max(max_abs(yhat)))
}

fn rmse_unchecked(y: &[f64], yhat: &[f64]) -> f64 {
    let n = y.len() as f64;
    let sse = sse_in(y, yhat, 1.0);
    if sse.is_finite() && (sse >= 1e-280 || sse == 0.0) {
        return (sse / n).sqrt();
    }
    let s = unit(y, yhat);
    (sse_in(y, yhat, s) / n).sqrt() * s
}

/// Coefficient of determination, 1 − Σ(y − ŷ)² / Σ(y − ȳ)².
///
/// # Errors
/// Empty, mismatched or non-finite inputs, or constant `y` (the denominator is 0).
pub fn r2(y: &[f64], yhat: &[f64]) -> Result<f64> {
    check("r2", y, yhat)?;
    r2_unchecked(y, yhat)
}

fn r2_unchecked(y: &[f64], yhat: &[f64]) -> Result<f64> {
    let ratio_in = |s: f64| {
        let (_, ss_tot) = mean_ss_in(y, s);
        (sse_in(y, yhat, s), ss_tot)
    };
    let (mut sse, mut ss_tot) = ratio_in(1.0);
    let reliable = |v: f64| v.is_finite() && (v >= 1e-280 || v == 0.0);
    if !(reliable(sse) && reliable(ss_tot)) || (ss_tot == 0.0 && y.iter().any(|&v| v != y[0])) {
        (sse, ss_tot) = ratio_in(unit(y, yhat));
    }
    if ss_tot == 0.0 {
        return Err(StatsError::ConstantInput { function: "r2", input: "y", what: "R^2" });
    }
    Ok(1.0 - sse / ss_tot)
}

/// MAPE with the bookkeeping of skipped points.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MapeResult {
    /// 100 · mean |y − ŷ| / |y| over the points with y ≠ 0, in percent.
    pub mape: f64,
    /// Points used (y ≠ 0).
    pub n_used: usize,
    /// Points skipped because y = 0.
    pub n_skipped: usize,
}

/// Mean absolute percentage error over the points with y ≠ 0.
///
/// # Errors
/// Empty, mismatched or non-finite inputs, or every y equal to 0.
pub fn mape(y: &[f64], yhat: &[f64]) -> Result<MapeResult> {
    check("mape", y, yhat)?;
    mape_unchecked(y, yhat)
}

fn mape_unchecked(y: &[f64], yhat: &[f64]) -> Result<MapeResult> {
    // Gather the used indices first so that the ratios are summed in the
    // same order (and pairwise tree) as NumPy's mean over y[y != 0].
    let used: Vec<usize> = (0..y.len()).filter(|&i| y[i] != 0.0).collect();
    if used.is_empty() {
        return Err(StatsError::Undefined { function: "mape", reason: "every y is 0, so MAPE has no terms" });
    }
    let s = np_sum_by(used.len(), |k| {
        let i = used[k];
        let e = y[i] - yhat[i];
        // |1 − ŷ/y| is the same ratio without the overflow of y − ŷ near ±1.8e308
        if e.is_finite() { e.abs() / y[i].abs() } else { (1.0 - yhat[i] / y[i]).abs() }
    });
    Ok(MapeResult { mape: s / used.len() as f64 * 100.0, n_used: used.len(), n_skipped: y.len() - used.len() })
}

/// All regression metrics at once. R² and MAPE can be undefined when MAE
/// and RMSE are not, so they carry their own `Result`.
#[derive(Debug, Clone, PartialEq)]
pub struct RegressionMetrics {
    /// Number of pairs.
    pub n: usize,
    /// Mean absolute error.
    pub mae: f64,
    /// Root mean squared error.
    pub rmse: f64,
    /// R², or why it is undefined (constant y).
    pub r2: Result<f64>,
    /// MAPE, or why it is undefined (every y is 0).
    pub mape: Result<MapeResult>,
}

/// MAE, RMSE, R² and MAPE of predictions `yhat` against truth `y`.
///
/// # Errors
/// Empty, mismatched or non-finite inputs (R² and MAPE report their own
/// undefined cases inside the result).
pub fn regression_metrics(y: &[f64], yhat: &[f64]) -> Result<RegressionMetrics> {
    check("regression_metrics", y, yhat)?;
    let n = y.len();
    let mae = np_sum_by(n, |i| (y[i] - yhat[i]).abs()) / n as f64;
    let rmse = rmse_unchecked(y, yhat);
    Ok(RegressionMetrics { n, mae, rmse, r2: r2_unchecked(y, yhat), mape: mape_unchecked(y, yhat) })
}
