//! Undefined inputs give a typed error that names the problem, never a panic
//! or a NaN. One test per kind of undefinedness: too few values, constant
//! samples, non-finite values, bad parameters, structural problems.

use learnloop_stats::{self as st, Alternative, KsMethod, StatsError};

const TS: Alternative = Alternative::TwoSided;

fn too_few(r: st::Result<impl std::fmt::Debug>, function: &str, needed: usize, got: usize) {
    match r {
        Err(StatsError::TooFewSamples { function: f, needed: nd, got: g, .. }) => {
            assert_eq!((f, nd, g), (function, needed, got));
        }
        other => panic!("{function}: expected TooFewSamples, got {other:?}"),
    }
}

#[test]
fn too_few_samples() {
    too_few(st::ks_2samp(&[], &[1.0], TS, KsMethod::Auto), "ks_2samp", 1, 0);
    too_few(st::ks_2samp(&[1.0], &[], TS, KsMethod::Auto), "ks_2samp", 1, 0);
    too_few(st::ttest_ind(&[1.0], &[1.0, 2.0], true, TS), "ttest_ind", 2, 1);
    too_few(st::ttest_1samp(&[1.0], 0.0, TS), "ttest_1samp", 2, 1);
    too_few(st::shapiro(&[1.0, 2.0]), "shapiro", 3, 2);
    too_few(st::mean(&[]), "mean", 1, 0);
    too_few(st::median(&[]), "median", 1, 0);
    too_few(st::var(&[1.0], 1), "var", 2, 1);
    too_few(st::std(&[], 0), "std", 1, 0);
    too_few(st::skewness(&[1.0, 2.0], false), "skewness", 3, 2);
    too_few(st::kurtosis(&[1.0, 2.0, 4.0], false), "kurtosis", 4, 3);
    too_few(st::percentile(&[], 50.0), "percentile", 1, 0);
    too_few(st::psi(&[1.0, 2.0], &[], 10, 1e-4), "psi", 1, 0);
    too_few(st::wasserstein(&[], &[1.0]), "wasserstein", 1, 0);
    too_few(st::pearson(&[1.0, 2.0], &[2.0, 1.0]), "pearson", 3, 2);
    too_few(st::spearman(&[1.0, 2.0], &[2.0, 1.0]), "spearman", 3, 2);
    too_few(st::mae(&[], &[]), "mae", 1, 0);
    // ⌈(n+1)(1−α)⌉ > n: 8 residuals cannot give a finite 90% interval.
    too_few(st::SplitConformal::calibrate(&[1.0; 8], 0.1), "SplitConformal::calibrate", 9, 8);

    // The smallest valid sizes work.
    assert_eq!(st::var(&[3.0], 0).unwrap(), 0.0);
    assert!(st::shapiro(&[1.0, 2.0, 4.0]).is_ok());
    assert!(st::kurtosis(&[1.0, 2.0, 4.0, 8.0], false).is_ok());
}

fn constant(r: st::Result<impl std::fmt::Debug>, function: &str, input: &str) {
    match r {
        Err(StatsError::ConstantInput { function: f, input: i, .. }) => assert_eq!((f, i), (function, input)),
        other => panic!("{function}: expected ConstantInput, got {other:?}"),
    }
}

#[test]
fn constant_samples() {
    let c = [2.5; 10];
    let v = [1.0, 2.0, 3.0, 4.0, 6.0, 1.0, 2.0, 3.0, 4.0, 6.0];
    constant(st::shapiro(&c), "shapiro", "x");
    constant(st::skewness(&c, true), "skewness", "x");
    constant(st::kurtosis(&c, false), "kurtosis", "x");
    // values equal only up to rounding are treated as constant, as in SciPy
    let nearly = [0.1, 0.1 + 1e-17, 0.1, 0.1];
    constant(st::skewness(&nearly, true), "skewness", "x");
    constant(st::ttest_ind(&c, &c, true, TS), "ttest_ind", "x and y");
    constant(st::ttest_ind(&c, &c, false, TS), "ttest_ind", "x and y");
    constant(st::ttest_1samp(&c, 0.0, TS), "ttest_1samp", "x");
    constant(st::pearson(&c, &v), "pearson", "x");
    constant(st::pearson(&v, &c), "pearson", "y");
    constant(st::spearman(&v, &c), "spearman", "y");
    constant(st::r2(&c, &v), "r2", "y");
    // Constant samples are fine where the statistic is defined.
    assert_eq!(st::var(&c, 1).unwrap(), 0.0);
    let ks = st::ks_2samp(&c, &c, TS, KsMethod::Auto).unwrap();
    assert_eq!((ks.statistic, ks.pvalue), (0.0, 1.0));
    assert_eq!(st::wasserstein(&c, &c).unwrap(), 0.0);
    // One constant sample in a two-sample t-test still has a standard error.
    assert!(st::ttest_ind(&c, &v, false, TS).is_ok());
}

fn non_finite(r: st::Result<impl std::fmt::Debug>, function: &str, input: &str, index: usize) {
    match r {
        Err(StatsError::NonFinite { function: f, input: i, index: ix, .. }) => {
            assert_eq!((f, i, ix), (function, input, index));
        }
        other => panic!("{function}: expected NonFinite, got {other:?}"),
    }
}

#[test]
fn nan_and_infinity() {
    let good = [1.0, 2.0, 3.0, 4.0, 5.0, 7.0];
    let with_nan = [1.0, 2.0, f64::NAN, 4.0, 5.0, 7.0];
    let with_inf = [1.0, 2.0, 3.0, f64::INFINITY, 5.0, 7.0];
    non_finite(st::ks_2samp(&good, &with_nan, TS, KsMethod::Auto), "ks_2samp", "y", 2);
    non_finite(st::ks_2samp(&with_inf, &good, TS, KsMethod::Asymp), "ks_2samp", "x", 3);
    non_finite(st::ks_2samp_sorted(&good, &with_inf, TS, KsMethod::Asymp), "ks_2samp", "y", 3);
    non_finite(st::ttest_ind(&with_nan, &good, false, TS), "ttest_ind", "x", 2);
    non_finite(st::ttest_1samp(&with_inf, 0.0, TS), "ttest_1samp", "x", 3);
    non_finite(st::shapiro(&with_nan), "shapiro", "x", 2);
    non_finite(st::mean(&with_nan), "mean", "x", 2);
    non_finite(st::median(&with_inf), "median", "x", 3);
    non_finite(st::var(&with_nan, 0), "var", "x", 2);
    non_finite(st::skewness(&with_nan, true), "skewness", "x", 2);
    non_finite(st::kurtosis(&with_inf, true), "kurtosis", "x", 3);
    non_finite(st::percentiles(&with_nan, &[50.0]), "percentiles", "x", 2);
    non_finite(st::psi(&good, &with_nan, 10, 1e-4), "psi", "current", 2);
    non_finite(st::psi(&with_inf, &good, 10, 1e-4), "psi", "reference", 3);
    non_finite(st::wasserstein(&good, &with_nan), "wasserstein", "v", 2);
    non_finite(st::pearson(&good, &with_nan), "pearson", "y", 2);
    non_finite(st::spearman(&with_inf, &good), "spearman", "x", 3);
    non_finite(st::mae(&with_nan, &good), "mae", "y", 2);
    non_finite(st::mape(&good, &with_inf), "mape", "yhat", 3);
    non_finite(st::benjamini_hochberg(&[0.1, f64::NAN]), "benjamini_hochberg", "pvalues", 1);
    non_finite(st::chi2_contingency(&[[1.0, f64::NAN], [1.0, 2.0]]), "chi2_contingency", "table", 1);
    non_finite(st::ewma(&with_nan, 0.5), "ewma", "xs", 2);
    non_finite(st::kstwo_sf(f64::NAN, 10), "kstwo_sf", "x", 0);
    non_finite(st::kolmogorov_sf(f64::NAN), "kolmogorov_sf", "x", 0);

    let mut adwin = st::Adwin::new(Default::default()).unwrap();
    adwin.update(1.0).unwrap();
    let before = adwin.clone();
    non_finite(adwin.update(f64::NAN), "Adwin::update", "x", 0);
    assert_eq!(adwin, before, "a refused value must not change the state");
    let mut ph = st::PageHinkley::new(Default::default()).unwrap();
    non_finite(ph.update(f64::NEG_INFINITY), "PageHinkley::update", "x", 0);
    let mut cusum = st::Cusum::new(Default::default()).unwrap();
    non_finite(cusum.update(f64::NAN), "Cusum::update", "x", 0);
    let mut aci = st::AdaptiveConformal::new(Default::default()).unwrap();
    non_finite(aci.update(f64::NAN, 1.0), "AdaptiveConformal::update", "prediction", 0);
    let mut e = st::Ewma::new(0.3).unwrap();
    non_finite(e.update(f64::INFINITY), "Ewma::update", "x", 0);
}

fn invalid(r: st::Result<impl std::fmt::Debug>, function: &str, param: &str) {
    match r {
        Err(StatsError::InvalidParameter { function: f, param: p, .. }) => assert_eq!((f, p), (function, param)),
        other => panic!("{function}: expected InvalidParameter({param}), got {other:?}"),
    }
}

#[test]
fn invalid_parameters() {
    let x = [1.0, 2.0, 3.0, 5.0];
    invalid(st::ttest_1samp(&x, f64::NAN, TS), "ttest_1samp", "popmean");
    invalid(st::percentile(&x, 100.5), "percentile", "q");
    invalid(st::percentiles(&x, &[10.0, -1.0]), "percentiles", "q");
    invalid(st::psi(&x, &x, 1, 1e-4), "psi", "bins");
    invalid(st::psi(&x, &x, 10, 0.0), "psi", "eps");
    invalid(st::shapiro(&vec![1.0; 5001]), "shapiro", "n");
    invalid(st::benjamini_hochberg(&[0.2, 1.5]), "benjamini_hochberg", "pvalues");
    invalid(st::holm(&[-0.1]), "holm", "pvalues");
    invalid(st::chi2_contingency(&[[1.0, 2.0, 3.0]]), "chi2_contingency", "rows");
    invalid(st::chi2_contingency(&[[1.0], [2.0]]), "chi2_contingency", "columns");
    invalid(st::chi2_contingency(&[[1.0, -2.0], [2.0, 1.0]]), "chi2_contingency", "table");
    invalid(st::SplitConformal::calibrate(&x, 1.0), "SplitConformal::calibrate", "alpha");
    invalid(st::SplitConformal::calibrate(&[1.0, -1.0], 0.5), "SplitConformal::calibrate", "abs_residuals");
    invalid(st::beta_posterior(1, 1, 0.0, 1.0, 0.9), "beta_posterior", "prior_alpha");
    invalid(st::beta_posterior(1, 1, 1.0, 1.0, 1.0), "beta_posterior", "level");
    invalid(st::Ewma::new(0.0), "Ewma::new", "alpha");
    invalid(st::kstwo_sf(0.3, 0), "kstwo_sf", "n");
    let mut adwin = st::Adwin::new(Default::default()).unwrap();
    invalid(adwin.update(1e200), "Adwin::update", "x");
    assert_eq!(adwin.width(), 0, "a refused value must not enter the window");
    let mut ph = st::PageHinkley::new(Default::default()).unwrap();
    invalid(ph.update(-1e151), "PageHinkley::update", "x");
    invalid(st::smirnov_sf(0, 0.3), "smirnov_sf", "n");
    invalid(st::ewma(&x, 1.5), "Ewma::new", "alpha");
    invalid(st::Adwin::new(st::AdwinConfig { delta: 0.0, ..Default::default() }), "Adwin::new", "delta");
    invalid(
        st::PageHinkley::new(st::PageHinkleyConfig { threshold: -1.0, ..Default::default() }),
        "PageHinkley::new",
        "threshold",
    );
    invalid(st::Cusum::new(st::CusumConfig { sigma: Some(0.0), ..Default::default() }), "Cusum::new", "sigma");
    invalid(
        st::AdaptiveConformal::new(st::AdaptiveConformalConfig { window: 0, ..Default::default() }),
        "AdaptiveConformal::new",
        "window",
    );
}

#[test]
fn structural_problems() {
    assert!(matches!(
        st::pearson(&[1.0, 2.0, 3.0], &[1.0, 2.0]),
        Err(StatsError::LengthMismatch { left_len: 3, right_len: 2, .. })
    ));
    assert!(matches!(st::rmse(&[1.0], &[1.0, 2.0]), Err(StatsError::LengthMismatch { .. })));
    assert!(matches!(
        st::chi2_contingency(&[vec![1.0, 2.0], vec![1.0, 2.0, 3.0]]),
        Err(StatsError::LengthMismatch { .. })
    ));
    assert!(matches!(
        st::ks_2samp_sorted(&[1.0, 3.0, 2.0], &[1.0], TS, KsMethod::Auto),
        Err(StatsError::NotSorted { input: "x_sorted", index: 2, .. })
    ));
    assert!(matches!(st::wasserstein_sorted(&[1.0], &[2.0, 1.0]), Err(StatsError::NotSorted { .. })));
    assert!(matches!(st::percentile_sorted(&[2.0, 1.0], 50.0), Err(StatsError::NotSorted { .. })));
    // An empty column means a zero expected frequency.
    assert!(matches!(
        st::chi2_contingency(&[[1.0, 0.0, 3.0], [2.0, 0.0, 1.0]]),
        Err(StatsError::Undefined { function: "chi2_contingency", .. })
    ));
    // Every actual is 0: MAPE has no terms, but MAE/RMSE are defined.
    assert!(matches!(st::mape(&[0.0, 0.0], &[1.0, 2.0]), Err(StatsError::Undefined { function: "mape", .. })));
    let all = st::regression_metrics(&[0.0, 0.0], &[1.0, 2.0]).unwrap();
    assert_eq!(all.mae, 1.5);
    assert!(all.mape.is_err());
    assert!(all.r2.is_err());
    // Two samples of one value each: the asymptotic two-sided distribution
    // has n = round(0.5) = 0, which SciPy answers with NaN.
    assert!(matches!(
        st::ks_2samp(&[1.0], &[2.0], TS, KsMethod::Asymp),
        Err(StatsError::Undefined { function: "ks_2samp", .. })
    ));
    // ... while the exact p-value is defined (and 1).
    let r = st::ks_2samp(&[1.0], &[2.0], TS, KsMethod::Exact).unwrap();
    assert_eq!((r.statistic, r.pvalue), (1.0, 1.0));
}

#[test]
fn messages_name_function_input_and_problem() {
    let e = st::ttest_ind(&[1.0], &[1.0, 2.0], true, TS).unwrap_err();
    assert_eq!(e.to_string(), "ttest_ind: `x` needs at least 2 values, got 1");
    let e = st::shapiro(&[1.0, f64::NAN, 2.0]).unwrap_err();
    assert_eq!(e.to_string(), "shapiro: `x` contains a non-finite value (NaN) at index 1");
    let e = st::skewness(&[4.0; 5], true).unwrap_err();
    assert_eq!(e.to_string(), "skewness: `x` is constant, so skewness is undefined");
    let e = st::ks_2samp_sorted(&[2.0, 1.0], &[1.0], TS, KsMethod::Auto).unwrap_err();
    assert_eq!(e.to_string(), "ks_2samp: `x_sorted` must be sorted ascending but index 1 is smaller than index 0");
}
