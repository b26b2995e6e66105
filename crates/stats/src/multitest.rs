//! Multiple-testing adjustments: Benjamini–Hochberg and Holm.
//!
//! The drift plugin tests every monitored feature on every run; without an
//! adjustment, twenty features at α = 0.05 raise a false alarm on most runs.
//! BH controls the false discovery rate (the default for dashboards), Holm
//! the family-wise error rate (for alerts that page someone).

use crate::error::{Result, StatsError};

fn check_pvalues(function: &'static str, p: &[f64]) -> Result<()> {
    for (index, &v) in p.iter().enumerate() {
        if v.is_nan() {
            return Err(StatsError::NonFinite { function, input: "pvalues", index, value: v });
        }
        if !(0.0..=1.0).contains(&v) {
            return Err(StatsError::InvalidParameter {
                function,
                param: "pvalues",
                value: v,
                reason: "p-values must lie in [0, 1]",
            });
        }
    }
    Ok(())
}

/// Indices that sort `p` ascending (stable, so equal p-values keep their order).
fn ascending_order(p: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    order
}

/// Benjamini–Hochberg adjusted p-values (q-values), in the input order:
/// q₍ᵢ₎ = min_{j ≥ i} min(1, m·p₍ⱼ₎ / j). Reject where q ≤ the target FDR.
/// SciPy: `scipy.stats.false_discovery_control(p, method="bh")`.
///
/// An empty input gives an empty output.
///
/// # Errors
/// A NaN or a value outside [0, 1].
pub fn benjamini_hochberg(pvalues: &[f64]) -> Result<Vec<f64>> {
    check_pvalues("benjamini_hochberg", pvalues)?;
    let m = pvalues.len();
    let order = ascending_order(pvalues);
    let mut adjusted = vec![0.0; m];
    let mut running = f64::INFINITY;
    for (rank0, &idx) in order.iter().enumerate().rev() {
        let q = pvalues[idx] * (m as f64 / (rank0 + 1) as f64);
        running = running.min(q);
        adjusted[idx] = running.min(1.0);
    }
    Ok(adjusted)
}

/// Holm's step-down adjusted p-values, in the input order:
/// p̃₍ᵢ₎ = max_{j ≤ i} min(1, (m − j + 1)·p₍ⱼ₎). Reject where p̃ ≤ α.
/// statsmodels: `multipletests(p, method="holm")[1]`.
///
/// An empty input gives an empty output.
///
/// # Errors
/// A NaN or a value outside [0, 1].
pub fn holm(pvalues: &[f64]) -> Result<Vec<f64>> {
    check_pvalues("holm", pvalues)?;
    let m = pvalues.len();
    let order = ascending_order(pvalues);
    let mut adjusted = vec![0.0; m];
    let mut running = 0.0f64;
    for (rank0, &idx) in order.iter().enumerate() {
        let v = pvalues[idx] * (m - rank0) as f64;
        running = running.max(v);
        adjusted[idx] = running.min(1.0);
    }
    Ok(adjusted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bh_known_values() {
        // false_discovery_control([0.01, 0.04, 0.03, 0.2]) = [0.04, 0.05333333, 0.05333333, 0.2]
        let q = benjamini_hochberg(&[0.01, 0.04, 0.03, 0.2]).unwrap();
        let expected = [0.04, 0.04 * 4.0 / 3.0, 0.04 * 4.0 / 3.0, 0.2];
        for (a, b) in q.iter().zip(expected) {
            assert!((a - b).abs() < 1e-15, "{q:?}");
        }
    }

    #[test]
    fn holm_known_values() {
        // multipletests([0.01, 0.04, 0.03, 0.2], method="holm") = [0.04, 0.09, 0.09, 0.2]
        let q = holm(&[0.01, 0.04, 0.03, 0.2]).unwrap();
        let expected = [0.04, 0.09, 0.09, 0.2];
        for (a, b) in q.iter().zip(expected) {
            assert!((a - b).abs() < 1e-15, "{q:?}");
        }
    }
}
