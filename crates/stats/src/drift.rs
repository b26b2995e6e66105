//! Distribution-drift measures: Population Stability Index and Wasserstein-1.
//!
//! The drift plugin scores how far a current window has moved from a
//! reference window. PSI is the industry's traffic-light number and needs a
//! fixed, documented binning to be comparable across runs (deciles of the
//! reference, NumPy's quantile rule, zero proportions floored at `eps`);
//! Wasserstein-1 is the scale-aware complement (in the data's own units).
//! Both run in O(n log n) for the sorts and O(n) after that.

use serde::{Deserialize, Serialize};

use crate::descriptive::quantile_sorted_unchecked;
use crate::error::{Result, StatsError, check_sample, check_sorted};
use crate::sum::{NeumaierSum, sorted_copy};

/// PSI with all its intermediate quantities, so a report can show which bins moved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PsiResult {
    /// Σ (cur − ref) · ln(cur / ref) over the bins.
    pub psi: f64,
    /// The `bins − 1` inner bin edges (reference quantiles at 1/bins, 2/bins, …).
    pub inner_edges: Vec<f64>,
    /// Reference values per bin.
    pub ref_counts: Vec<u64>,
    /// Current values per bin.
    pub cur_counts: Vec<u64>,
    /// Reference proportions, with exact zeros replaced by `eps`.
    pub ref_props: Vec<f64>,
    /// Current proportions, with exact zeros replaced by `eps`.
    pub cur_props: Vec<f64>,
}

/// Population Stability Index of `current` against `reference`.
///
/// Definition (the reference README's, which is the industry convention made exact):
/// * inner edges e₁…e_{bins−1} = NumPy `quantile(reference, k/bins)` (linear);
///   the outer edges are ±∞;
/// * a value v falls in bin #{i : eᵢ ≤ v}, so bin k is [e_k, e_{k+1});
///   repeated edges (ties in the reference) give bins that stay empty;
/// * proportions are count/n, with any exact 0 replaced by `eps` (no renormalisation);
/// * PSI = Σ (p_cur − p_ref) · ln(p_cur / p_ref).
///
/// Typical call: `psi(reference, current, 10, 1e-4)`.
///
/// # Errors
/// Empty or non-finite samples, `bins < 2`, or `eps` not in (0, 1).
pub fn psi(reference: &[f64], current: &[f64], bins: usize, eps: f64) -> Result<PsiResult> {
    const FN: &str = "psi";
    check_sample(FN, "reference", reference, 1)?;
    let sorted_ref = sorted_copy(reference);
    psi_core(FN, &sorted_ref, current, bins, eps)
}

/// [`psi`] with the reference already sorted ascending (the reference window
/// is usually fixed while many current windows are scored against it).
///
/// # Errors
/// As [`psi`], plus [`StatsError::NotSorted`].
pub fn psi_sorted_reference(sorted_reference: &[f64], current: &[f64], bins: usize, eps: f64) -> Result<PsiResult> {
    const FN: &str = "psi_sorted_reference";
    check_sample(FN, "sorted_reference", sorted_reference, 1)?;
    check_sorted(FN, "sorted_reference", sorted_reference)?;
    psi_core(FN, sorted_reference, current, bins, eps)
}

fn psi_core(function: &'static str, sorted_ref: &[f64], current: &[f64], bins: usize, eps: f64) -> Result<PsiResult> {
    check_sample(function, "current", current, 1)?;
    if bins < 2 {
        return Err(StatsError::InvalidParameter {
            function,
            param: "bins",
            value: bins as f64,
            reason: "needs at least 2 bins",
        });
    }
    if !(eps > 0.0 && eps < 1.0) {
        return Err(StatsError::InvalidParameter {
            function,
            param: "eps",
            value: eps,
            reason: "the floor for empty bins must lie in (0, 1)",
        });
    }
    let edges: Vec<f64> = (1..bins).map(|k| quantile_sorted_unchecked(sorted_ref, k as f64 / bins as f64)).collect();

    // The reference is sorted, so its bin counts are differences of
    // partition points: O(bins · log n) instead of a pass over the data.
    let mut ref_counts = vec![0u64; bins];
    let mut prev = 0usize;
    for (k, &e) in edges.iter().enumerate() {
        // max() guards against an edge one ulp below its predecessor
        let upto = sorted_ref.partition_point(|&v| v < e).max(prev);
        ref_counts[k] = (upto - prev) as u64;
        prev = upto;
    }
    ref_counts[bins - 1] = (sorted_ref.len() - prev) as u64;

    let mut cur_counts = vec![0u64; bins];
    for &v in current {
        cur_counts[edges.partition_point(|&e| e <= v)] += 1;
    }

    let props = |counts: &[u64], n: usize| -> Vec<f64> {
        counts
            .iter()
            .map(|&c| {
                let p = c as f64 / n as f64;
                if p == 0.0 { eps } else { p }
            })
            .collect()
    };
    let ref_props = props(&ref_counts, sorted_ref.len());
    let cur_props = props(&cur_counts, current.len());
    let terms: Vec<f64> = cur_props.iter().zip(&ref_props).map(|(&c, &r)| (c - r) * (c / r).ln()).collect();
    let psi = crate::sum::np_sum(&terms);
    Ok(PsiResult { psi, inner_edges: edges, ref_counts, cur_counts, ref_props, cur_props })
}

/// Wasserstein-1 (earth mover's) distance between the empirical
/// distributions of `u` and `v`: ∫ |F_u − F_v|. SciPy: `wasserstein_distance(u, v)`.
///
/// # Errors
/// Empty or non-finite samples.
pub fn wasserstein(u: &[f64], v: &[f64]) -> Result<f64> {
    const FN: &str = "wasserstein";
    check_sample(FN, "u", u, 1)?;
    check_sample(FN, "v", v, 1)?;
    let us = sorted_copy(u);
    let vs = sorted_copy(v);
    Ok(wasserstein_core(&us, &vs))
}

/// [`wasserstein`] on samples already sorted ascending (no allocation).
///
/// # Errors
/// Empty, non-finite or unsorted samples.
pub fn wasserstein_sorted(u_sorted: &[f64], v_sorted: &[f64]) -> Result<f64> {
    const FN: &str = "wasserstein_sorted";
    check_sample(FN, "u_sorted", u_sorted, 1)?;
    check_sample(FN, "v_sorted", v_sorted, 1)?;
    check_sorted(FN, "u_sorted", u_sorted)?;
    check_sorted(FN, "v_sorted", v_sorted)?;
    Ok(wasserstein_core(u_sorted, v_sorted))
}

/// Merge over the pooled distinct values: between consecutive pooled values
/// both ECDFs are constant, so the integral is Σ |F_u − F_v| · gap, with each
/// term formed as SciPy forms it (count/size differences times the gap).
fn wasserstein_core(u: &[f64], v: &[f64]) -> f64 {
    let (nu, nv) = (u.len() as f64, v.len() as f64);
    let (mut i, mut j) = (0usize, 0usize);
    let mut acc = NeumaierSum::default();
    loop {
        let cur = match (u.get(i), v.get(j)) {
            (Some(&a), Some(&b)) => a.min(b),
            (Some(&a), None) => a,
            (None, Some(&b)) => b,
            (None, None) => break,
        };
        while i < u.len() && u[i] <= cur {
            i += 1;
        }
        while j < v.len() && v[j] <= cur {
            j += 1;
        }
        let next = match (u.get(i), v.get(j)) {
            (Some(&a), Some(&b)) => a.min(b),
            (Some(&a), None) => a,
            (None, Some(&b)) => b,
            (None, None) => break,
        };
        let diff = (i as f64 / nu - j as f64 / nv).abs();
        // equal ECDFs contribute nothing, even across a gap that overflows
        if diff != 0.0 {
            acc.add(diff * (next - cur));
        }
    }
    acc.value()
}
