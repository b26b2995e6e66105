//! Invariants that must hold for every input, checked with proptest:
//! probabilities stay in [0, 1], statistics have their symmetries, the
//! multiple-testing adjustments are monotone and conservative, and no input
//! at all (NaN, ±inf, empty, tiny) makes any function panic or return NaN.

use learnloop_stats::{self as st, Alternative, KsMethod};
use proptest::prelude::*;

/// Samples with frequent ties (small integers) as well as continuous values.
fn sample(min_len: usize, max_len: usize) -> impl Strategy<Value = Vec<f64>> {
    prop_oneof![
        prop::collection::vec(-1e3f64..1e3, min_len..max_len),
        prop::collection::vec((0i32..6).prop_map(f64::from), min_len..max_len),
    ]
}

/// Anything a caller might pass, including non-finite values and empty slices.
fn wild() -> impl Strategy<Value = Vec<f64>> {
    let value = prop_oneof![
        4 => -1e6f64..1e6,
        2 => (0i32..3).prop_map(f64::from),
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => Just(1e300),
        1 => Just(-0.0),
    ];
    prop::collection::vec(value, 0..12)
}

/// Finite values only, biased towards the ends of the double range, where
/// sums and squares overflow or underflow.
fn extreme() -> impl Strategy<Value = Vec<f64>> {
    let value = prop_oneof![
        3 => -1e3f64..1e3,
        1 => Just(f64::MAX),
        1 => Just(-f64::MAX),
        1 => Just(1.7e308),
        1 => 1e300f64..1.7e308,
        1 => -1e200f64..-1e150,
        1 => Just(5e-324),
        1 => 1e-310f64..1e-300,
        1 => Just(0.0),
    ];
    prop::collection::vec(value, 1..14)
}

fn pvalues() -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(prop_oneof![0.0f64..=1.0, Just(0.0), Just(1.0), 1e-12f64..1e-3], 0..40)
}

fn in_unit(p: f64) -> bool {
    (0.0..=1.0).contains(&p)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn ks_is_symmetric_and_in_range(x in sample(1, 40), y in sample(1, 40)) {
        for method in [KsMethod::Exact, KsMethod::Asymp, KsMethod::Auto] {
            let a = st::ks_2samp(&x, &y, Alternative::TwoSided, method);
            let b = st::ks_2samp(&y, &x, Alternative::TwoSided, method);
            if x.len() == 1 && y.len() == 1 && method == KsMethod::Asymp {
                prop_assert!(a.is_err() && b.is_err());
                continue;
            }
            let (a, b) = (a.unwrap(), b.unwrap());
            prop_assert!(in_unit(a.statistic) && in_unit(a.pvalue), "{a:?}");
            prop_assert_eq!(a.statistic, b.statistic);
            prop_assert_eq!(a.pvalue, b.pvalue);
            prop_assert!(a.statistic_sign == 1 || a.statistic_sign == -1);
        }
        for alt in [Alternative::Less, Alternative::Greater] {
            for method in [KsMethod::Exact, KsMethod::Asymp] {
                let r = st::ks_2samp(&x, &y, alt, method).unwrap();
                prop_assert!(in_unit(r.statistic) && in_unit(r.pvalue), "{alt:?} {method:?} {r:?}");
            }
        }
        // "less" for (x, y) is "greater" for (y, x).
        let l = st::ks_2samp(&x, &y, Alternative::Less, KsMethod::Asymp).unwrap();
        let g = st::ks_2samp(&y, &x, Alternative::Greater, KsMethod::Asymp).unwrap();
        prop_assert_eq!(l.statistic, g.statistic);
    }

    #[test]
    fn ks_sorted_fast_path_agrees(mut x in sample(1, 60), mut y in sample(1, 60)) {
        let unsorted = st::ks_2samp(&x, &y, Alternative::TwoSided, KsMethod::Auto).unwrap();
        x.sort_by(f64::total_cmp);
        y.sort_by(f64::total_cmp);
        let sorted = st::ks_2samp_sorted(&x, &y, Alternative::TwoSided, KsMethod::Auto).unwrap();
        prop_assert_eq!(unsorted, sorted);
    }

    #[test]
    fn ks_exact_statistic_is_a_multiple_of_one_over_lcm(x in sample(1, 30), y in sample(1, 30)) {
        let r = st::ks_2samp(&x, &y, Alternative::TwoSided, KsMethod::Exact).unwrap();
        let (n, m) = (x.len() as u64, y.len() as u64);
        let g = (1..=n.min(m)).rev().find(|d| n % d == 0 && m % d == 0).unwrap();
        let lcm = (n / g * m) as f64;
        let h = r.statistic * lcm;
        prop_assert!((h - h.round()).abs() < 1e-9, "D*lcm = {h}");
    }

    #[test]
    fn t_tests_are_in_range_and_antisymmetric(x in sample(2, 30), y in sample(2, 30)) {
        for equal_var in [true, false] {
            let a = st::ttest_ind(&x, &y, equal_var, Alternative::TwoSided);
            let b = st::ttest_ind(&y, &x, equal_var, Alternative::TwoSided);
            match (a, b) {
                (Ok(a), Ok(b)) => {
                    prop_assert!(in_unit(a.pvalue));
                    prop_assert_eq!(a.statistic, -b.statistic);
                    prop_assert_eq!(a.pvalue, b.pvalue);
                    let (n1, n2) = (x.len() as f64, y.len() as f64);
                    if equal_var {
                        prop_assert_eq!(a.df, n1 + n2 - 2.0);
                    } else {
                        prop_assert!(a.df >= (n1.min(n2) - 1.0) * (1.0 - 1e-12) && a.df <= (n1 + n2 - 2.0) * (1.0 + 1e-12), "df {}", a.df);
                    }
                    // one-sided p-values split the two-sided one
                    let g = st::ttest_ind(&x, &y, equal_var, Alternative::Greater).unwrap().pvalue;
                    let l = st::ttest_ind(&x, &y, equal_var, Alternative::Less).unwrap().pvalue;
                    prop_assert!((g + l - 1.0).abs() < 1e-12);
                    prop_assert!((2.0 * g.min(l) - a.pvalue).abs() < 1e-12);
                }
                (Err(_), Err(_)) => {}
                (a, b) => prop_assert!(false, "asymmetric outcome {a:?} vs {b:?}"),
            }
        }
    }

    #[test]
    fn benjamini_hochberg_is_monotone_and_conservative(p in pvalues()) {
        let q = st::benjamini_hochberg(&p).unwrap();
        prop_assert_eq!(q.len(), p.len());
        for i in 0..p.len() {
            prop_assert!(q[i] >= p[i] && q[i] <= 1.0, "q[{i}] = {} for p = {}", q[i], p[i]);
            for j in 0..p.len() {
                if p[i] <= p[j] {
                    prop_assert!(q[i] <= q[j], "not monotone: p {} <= {} but q {} > {}", p[i], p[j], q[i], q[j]);
                }
            }
        }
    }

    #[test]
    fn holm_is_monotone_and_at_least_bh(p in pvalues()) {
        let h = st::holm(&p).unwrap();
        let q = st::benjamini_hochberg(&p).unwrap();
        for i in 0..p.len() {
            prop_assert!(h[i] >= p[i] && h[i] <= 1.0);
            // Holm controls the FWER, so it is never less conservative than BH.
            prop_assert!(h[i] >= q[i] * (1.0 - 1e-12), "holm {} < bh {}", h[i], q[i]);
            for j in 0..p.len() {
                if p[i] <= p[j] {
                    prop_assert!(h[i] <= h[j]);
                }
            }
        }
    }

    #[test]
    fn percentiles_are_monotone_and_bounded(x in sample(1, 50), mut qs in prop::collection::vec(0.0f64..=100.0, 1..10)) {
        qs.sort_by(f64::total_cmp);
        let v = st::percentiles(&x, &qs).unwrap();
        let lo = x.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        for w in v.windows(2) {
            prop_assert!(w[0] <= w[1]);
        }
        for &p in &v {
            prop_assert!(lo <= p && p <= hi);
        }
        prop_assert_eq!(st::percentile(&x, 0.0).unwrap(), lo);
        prop_assert_eq!(st::percentile(&x, 100.0).unwrap(), hi);
        let m = st::median(&x).unwrap();
        prop_assert!((m - st::percentile(&x, 50.0).unwrap()).abs() <= 1e-12 * (1.0 + m.abs()));
    }

    #[test]
    fn wasserstein_is_a_metric_on_samples(u in sample(1, 40), v in sample(1, 40), c in -50.0f64..50.0) {
        let d = st::wasserstein(&u, &v).unwrap();
        prop_assert!(d >= 0.0);
        prop_assert!((d - st::wasserstein(&v, &u).unwrap()).abs() <= 1e-12 * (1.0 + d));
        prop_assert_eq!(st::wasserstein(&u, &u).unwrap(), 0.0);
        // shifting one sample by c moves it by exactly |c|
        let shifted: Vec<f64> = u.iter().map(|x| x + c).collect();
        let ds = st::wasserstein(&u, &shifted).unwrap();
        prop_assert!((ds - c.abs()).abs() <= 1e-9 * (1.0 + c.abs() + 1e3), "{ds} vs {c}");
    }

    #[test]
    fn psi_is_nonnegative_and_zero_on_itself(r in sample(1, 80), c in sample(1, 80)) {
        let p = st::psi(&r, &c, 10, 1e-4).unwrap();
        prop_assert!(p.psi >= 0.0);
        prop_assert_eq!(p.ref_counts.iter().sum::<u64>(), r.len() as u64);
        prop_assert_eq!(p.cur_counts.iter().sum::<u64>(), c.len() as u64);
        prop_assert_eq!(st::psi(&r, &r, 10, 1e-4).unwrap().psi, 0.0);
    }

    #[test]
    fn correlations_are_bounded(x in sample(3, 40), noise in prop::collection::vec(-1.0f64..1.0, 40)) {
        let y: Vec<f64> = x.iter().zip(&noise).map(|(a, b)| a * 0.5 + b * 100.0).collect();
        for r in [st::pearson(&x, &y), st::spearman(&x, &y)].into_iter().flatten() {
            prop_assert!((-1.0..=1.0).contains(&r.statistic) && in_unit(r.pvalue), "{r:?}");
        }
        // Spearman is invariant under monotone transforms.
        let transformed: Vec<f64> = x.iter().map(|v| v.exp2()).collect();
        if let (Ok(a), Ok(b)) = (st::spearman(&x, &y), st::spearman(&transformed, &y)) {
            prop_assert!((a.statistic - b.statistic).abs() < 1e-12);
        }
    }

    #[test]
    fn chi2_is_in_range(row0 in prop::collection::vec(1u32..500, 2..8), seed in 0u32..1000) {
        let row1: Vec<f64> = row0.iter().enumerate().map(|(i, &v)| f64::from((v * 7 + seed + i as u32 * 13) % 400 + 1)).collect();
        let row0: Vec<f64> = row0.iter().map(|&v| f64::from(v)).collect();
        let r = st::chi2_contingency_2xk(&row0, &row1).unwrap();
        prop_assert!(r.statistic >= 0.0 && in_unit(r.pvalue));
        prop_assert_eq!(r.dof, row0.len() - 1);
        let total: f64 = row0.iter().chain(&row1).sum();
        let e_total: f64 = r.expected_freq.iter().flatten().sum();
        prop_assert!((total - e_total).abs() < 1e-9 * total);
    }

    #[test]
    fn shapiro_w_and_p_are_in_range(x in prop::collection::vec(-1e3f64..1e3, 3..200)) {
        if let Ok(r) = st::shapiro(&x) {
            prop_assert!(r.w > 0.0 && r.w <= 1.0 + 1e-12 && in_unit(r.pvalue), "{r:?}");
        }
    }

    /// Finite input near the ends of the double range: every p-value is a
    /// probability and no statistic is NaN (sums that truly exceed the range
    /// may be ±inf, the IEEE answer).
    #[test]
    fn extreme_finite_values_never_give_nan(x in extreme(), y in extreme(), q in 0.0f64..=100.0) {
        check_outputs(&x, &y, q)?;
    }

    /// Nothing panics, and whatever is returned is finite (p-values in [0, 1]).
    #[test]
    fn no_input_panics_or_yields_nan(x in wild(), y in wild(), q in -10.0f64..110.0) {
        check_outputs(&x, &y, q)?;
    }
}

fn check_outputs(x: &[f64], y: &[f64], q: f64) -> Result<(), TestCaseError> {
    {
        let (x, y) = (x.to_vec(), y.to_vec());
        let fin = |v: f64| v.is_finite();
        for m in [KsMethod::Auto, KsMethod::Exact, KsMethod::Asymp] {
            for alt in [Alternative::TwoSided, Alternative::Less, Alternative::Greater] {
                if let Ok(r) = st::ks_2samp(&x, &y, alt, m) {
                    prop_assert!(in_unit(r.statistic) && in_unit(r.pvalue) && fin(r.statistic_location));
                }
            }
        }
        for eq in [true, false] {
            if let Ok(r) = st::ttest_ind(&x, &y, eq, Alternative::TwoSided) {
                prop_assert!(fin(r.statistic) && in_unit(r.pvalue) && fin(r.df), "{r:?}");
            }
        }
        if let Ok(r) = st::ttest_1samp(&x, q, Alternative::TwoSided) {
            prop_assert!(fin(r.statistic) && in_unit(r.pvalue), "{r:?}");
        }
        if let Ok(r) = st::shapiro(&x) {
            prop_assert!(fin(r.w) && in_unit(r.pvalue));
        }
        for v in [
            st::mean(&x),
            st::median(&x),
            st::var(&x, 0),
            st::var(&x, 1),
            st::std(&x, 1),
            st::skewness(&x, true),
            st::skewness(&x, false),
            st::kurtosis(&x, true),
            st::kurtosis(&x, false),
            st::percentile(&x, q),
            st::wasserstein(&x, &y),
            st::mae(&x, &y),
            st::rmse(&x, &y),
            st::r2(&x, &y),
        ]
        .into_iter()
        .flatten()
        {
            // sums of values near 1e300 may overflow to ±inf, never to NaN
            prop_assert!(!v.is_nan());
        }
        if let Ok(p) = st::psi(&x, &y, 10, 1e-4) {
            prop_assert!(fin(p.psi));
        }
        for r in [st::pearson(&x, &y), st::spearman(&x, &y)].into_iter().flatten() {
            prop_assert!(fin(r.statistic) && in_unit(r.pvalue), "{r:?}");
        }
        if let Ok(m) = st::mape(&x, &y) {
            prop_assert!(!m.mape.is_nan());
        }
        let _ = st::rankdata(&x);
        let _ = st::benjamini_hochberg(&x);
        let _ = st::holm(&x);
        let _ = st::chi2_contingency(&[x.clone(), y.clone()]);
        let _ = st::SplitConformal::calibrate(&x, 0.1);
        let mut ad = st::Adwin::new(Default::default()).unwrap();
        let mut ph = st::PageHinkley::new(Default::default()).unwrap();
        let mut cu = st::Cusum::new(st::CusumConfig { warmup: 3, ..Default::default() }).unwrap();
        for &v in x.iter().chain(&y) {
            let _ = ad.update(v);
            let _ = ph.update(v);
            let _ = cu.update(v);
        }
        prop_assert!(ad.mean().is_none_or(|m| !m.is_nan()));
        prop_assert!(ad.variance().is_none_or(|v| !v.is_nan()));
        if let Ok(s) = st::summary(&x) {
            prop_assert!(!s.mean.is_nan() && s.std.is_none_or(|v| !v.is_nan()) && !s.median.is_nan());
        }
        if let Ok(path) = st::ewma(&x, 0.5) {
            prop_assert!(path.iter().all(|v| !v.is_nan()));
        }
    }
    Ok(())
}
