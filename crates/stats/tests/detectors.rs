//! Behaviour of the streaming detectors and estimation helpers on seeded data:
//! a mean shift is detected soon after it happens and in the right direction,
//! a stationary stream raises nothing, persisted state resumes exactly,
//! conformal intervals reach their nominal coverage, Beta intervals are sane.

mod common;

use common::Rng;
use learnloop_stats::{self as st, ChangeDirection};

/// 3000 N(0,1) values, then 2000 N(1,1) values (shift at index 3000).
fn shifted_stream(seed: u64, shift: f64) -> Vec<f64> {
    let mut rng = Rng(seed);
    let mut v = rng.normals(3000, 0.0, 1.0);
    v.extend(rng.normals(2000, shift, 1.0));
    v
}

/// Feeds a stream; returns (index, direction) of every detection.
fn run<F: FnMut(f64) -> Option<ChangeDirection>>(xs: &[f64], mut f: F) -> Vec<(usize, ChangeDirection)> {
    xs.iter().enumerate().filter_map(|(i, &x)| f(x).map(|d| (i, d))).collect()
}

#[test]
fn adwin_detects_a_mean_shift_and_forgets_the_old_regime() {
    for seed in [1u64, 2, 3] {
        let xs = shifted_stream(seed, 1.0);
        let mut d = st::Adwin::new(Default::default()).unwrap();
        let hits = run(&xs, |x| d.update(x).unwrap());
        assert!(!hits.is_empty(), "seed {seed}: no detection");
        let (first, dir) = hits[0];
        assert!((3000..3300).contains(&first), "seed {seed}: first detection at {first}");
        assert_eq!(dir, ChangeDirection::Increase);
        // After the stream, the window holds only post-change data.
        assert!(d.width() < 2000 + 32, "seed {seed}: window {} still spans the change", d.width());
        assert!((d.mean().unwrap() - 1.0).abs() < 0.15, "seed {seed}: mean {:?}", d.mean());
    }
    // and downwards
    let xs = shifted_stream(9, -1.0);
    let mut d = st::Adwin::new(Default::default()).unwrap();
    let hits = run(&xs, |x| d.update(x).unwrap());
    assert_eq!(hits.first().map(|h| h.1), Some(ChangeDirection::Decrease));
}

#[test]
fn adwin_is_quiet_on_a_stationary_stream() {
    for seed in [11u64, 12, 13] {
        let mut rng = Rng(seed);
        let xs = rng.normals(10_000, 5.0, 2.0);
        let mut d = st::Adwin::new(Default::default()).unwrap();
        let hits = run(&xs, |x| d.update(x).unwrap());
        assert!(hits.is_empty(), "seed {seed}: false alarms at {hits:?}");
        assert_eq!(d.width(), 10_000);
        assert!((d.mean().unwrap() - 5.0).abs() < 0.1);
        assert!((d.variance().unwrap() - 4.0).abs() < 0.3);
    }
}

fn page_hinkley() -> st::PageHinkley {
    // Tolerate shifts below 0.1σ; alarm on a cumulative excess of 50σ·step.
    st::PageHinkley::new(st::PageHinkleyConfig { delta: 0.1, threshold: 50.0, alpha: 1.0, min_instances: 30 }).unwrap()
}

#[test]
fn page_hinkley_detects_shifts_both_ways() {
    for (shift, dir) in [(1.0, ChangeDirection::Increase), (-1.0, ChangeDirection::Decrease)] {
        for seed in [21u64, 22, 23] {
            let xs = shifted_stream(seed, shift);
            let mut d = page_hinkley();
            let hits = run(&xs, |x| d.update(x).unwrap());
            let (first, got) = *hits.first().unwrap_or_else(|| panic!("seed {seed}: no detection"));
            assert!((3000..3200).contains(&first), "seed {seed}: first detection at {first}");
            assert_eq!(got, dir);
        }
    }
}

#[test]
fn page_hinkley_is_quiet_on_a_stationary_stream() {
    for seed in [31u64, 32, 33] {
        let mut rng = Rng(seed);
        let xs = rng.normals(10_000, -3.0, 1.0);
        let mut d = page_hinkley();
        let hits = run(&xs, |x| d.update(x).unwrap());
        assert!(hits.is_empty(), "seed {seed}: false alarms at {hits:?}");
    }
}

fn cusum() -> st::Cusum {
    // h = 10σ: in-control ARL of the order of 10^5 values.
    st::Cusum::new(st::CusumConfig { target: None, sigma: None, warmup: 100, k: 0.5, h: 10.0 }).unwrap()
}

#[test]
fn cusum_detects_a_one_sigma_shift_quickly() {
    for (shift, dir) in [(1.0, ChangeDirection::Increase), (-1.0, ChangeDirection::Decrease)] {
        for seed in [41u64, 42, 43] {
            let xs = shifted_stream(seed, shift);
            let mut d = cusum();
            let hits = run(&xs, |x| d.update(x).unwrap());
            let (first, got) = *hits.first().unwrap_or_else(|| panic!("seed {seed}: no detection"));
            // expected delay ≈ (h + 1.166) / (shift − k) ≈ 22 values
            assert!((3000..3080).contains(&first), "seed {seed}: first detection at {first}");
            assert_eq!(got, dir);
            let (mu, sigma) = d.reference().unwrap();
            assert!(mu.abs() < 0.3 && (sigma - 1.0).abs() < 0.2, "warm-up estimate {mu} {sigma}");
        }
    }
}

#[test]
fn cusum_is_quiet_on_a_stationary_stream() {
    for seed in [51u64, 52, 53] {
        let mut rng = Rng(seed);
        let xs = rng.normals(5_000, 100.0, 7.0);
        let mut d = cusum();
        let hits = run(&xs, |x| d.update(x).unwrap());
        assert!(hits.is_empty(), "seed {seed}: false alarms at {hits:?}");
    }
}

#[test]
fn cusum_with_known_reference_needs_no_warmup() {
    let mut d =
        st::Cusum::new(st::CusumConfig { target: Some(0.0), sigma: Some(1.0), warmup: 0, k: 0.5, h: 4.0 }).unwrap();
    let hits = run(&[3.0; 3], |x| d.update(x).unwrap());
    // S⁺ = 2.5, 5.0 > 4 → alarm on the second value, then restart.
    assert_eq!(hits, vec![(1, ChangeDirection::Increase)]);
    assert_eq!(d.sums(), (2.5, 0.0));
}

#[test]
fn detector_state_round_trips_through_json_and_resumes_identically() {
    let xs = shifted_stream(77, 1.0);
    let (head, tail) = xs.split_at(3100);

    let mut adwin = st::Adwin::new(Default::default()).unwrap();
    let mut ph = page_hinkley();
    let mut cu = cusum();
    let mut aci = st::AdaptiveConformal::new(Default::default()).unwrap();
    let mut ew = st::Ewma::new(0.1).unwrap();
    for &x in head {
        adwin.update(x).unwrap();
        ph.update(x).unwrap();
        cu.update(x).unwrap();
        aci.update(0.0, x).unwrap();
        ew.update(x).unwrap();
    }
    let mut adwin2: st::Adwin = serde_json::from_str(&serde_json::to_string(&adwin).unwrap()).unwrap();
    let mut ph2: st::PageHinkley = serde_json::from_str(&serde_json::to_string(&ph).unwrap()).unwrap();
    let mut cu2: st::Cusum = serde_json::from_str(&serde_json::to_string(&cu).unwrap()).unwrap();
    let mut aci2: st::AdaptiveConformal = serde_json::from_str(&serde_json::to_string(&aci).unwrap()).unwrap();
    let mut ew2: st::Ewma = serde_json::from_str(&serde_json::to_string(&ew).unwrap()).unwrap();
    assert_eq!(adwin2, adwin);
    assert_eq!(ph2, ph);
    assert_eq!(cu2, cu);
    assert_eq!(aci2, aci);
    assert_eq!(ew2, ew);
    for &x in tail {
        assert_eq!(adwin.update(x).unwrap(), adwin2.update(x).unwrap());
        assert_eq!(ph.update(x).unwrap(), ph2.update(x).unwrap());
        assert_eq!(cu.update(x).unwrap(), cu2.update(x).unwrap());
        assert_eq!(aci.update(0.0, x).unwrap(), aci2.update(0.0, x).unwrap());
        assert_eq!(ew.update(x).unwrap(), ew2.update(x).unwrap());
    }
    assert_eq!(adwin2, adwin);
    assert!(adwin.detections() >= 1 && ph.detections() >= 1 && cu.detections() >= 1);
}

#[test]
fn split_conformal_covers_about_90_percent() {
    for seed in [61u64, 62, 63] {
        let mut rng = Rng(seed);
        // y = 2x + N(0, 1) noise; the "model" predicts 2x.
        let sample = |rng: &mut Rng| {
            let x = rng.uniform() * 10.0;
            (2.0 * x, 2.0 * x + rng.normal())
        };
        let calib: Vec<f64> = (0..1000).map(|_| sample(&mut rng)).map(|(p, y)| (y - p).abs()).collect();
        let cp = st::SplitConformal::calibrate(&calib, 0.1).unwrap();
        // the N(0,1) 95% point is 1.645
        assert!((cp.quantile - 1.645).abs() < 0.15, "q = {}", cp.quantile);
        let covered = (0..20_000).map(|_| sample(&mut rng)).filter(|&(p, y)| cp.interval(p).contains(y)).count() as f64
            / 20_000.0;
        assert!((0.875..=0.925).contains(&covered), "seed {seed}: coverage {covered}");
    }
}

#[test]
fn adaptive_conformal_keeps_coverage_under_drift() {
    let (alpha, gamma) = (0.1, 0.005);
    let cfg = st::AdaptiveConformalConfig { alpha, gamma, window: 300 };
    let mut aci = st::AdaptiveConformal::new(cfg).unwrap();
    let mut rng = Rng(71);
    // Noise scale grows from 1 to 4 over the stream: a calibration taken at
    // the start would under-cover badly at the end.
    let t_total = 20_000;
    let first: Vec<f64> = (0..300).map(|_| rng.normal().abs()).collect();
    let fixed = st::SplitConformal::calibrate(&first, alpha).unwrap();
    let mut fixed_covered = 0usize;
    for t in 0..t_total {
        let scale = 1.0 + 3.0 * t as f64 / t_total as f64;
        let y = scale * rng.normal();
        fixed_covered += usize::from(fixed.interval(0.0).contains(y));
        aci.update(0.0, y).unwrap();
    }
    let miss = aci.empirical_miscoverage().unwrap();
    // Gibbs & Candès (2021), Prop. 4.1: |miss − α| ≤ (max(α₁, 1−α₁) + γ) / (γ·T).
    let bound = ((1.0 - alpha) + gamma) / (gamma * t_total as f64);
    assert!((miss - alpha).abs() <= bound, "miscoverage {miss}, bound {bound}");
    assert!((miss - alpha).abs() < 0.01, "miscoverage {miss}");
    let fixed_cov = fixed_covered as f64 / t_total as f64;
    assert!(fixed_cov < 0.7, "the static interval should under-cover here, got {fixed_cov}");
}

#[test]
fn adaptive_conformal_intervals_widen_when_missing() {
    let mut aci = st::AdaptiveConformal::new(Default::default()).unwrap();
    assert!(aci.interval(1.0).width().is_infinite(), "no scores yet: unbounded interval");
    for i in 0..50 {
        aci.update(0.0, (i % 5) as f64 * 0.1).unwrap();
    }
    let before = aci.interval(0.0).width();
    let a0 = aci.alpha_t();
    // a run of misses lowers α_t and widens the interval
    for _ in 0..20 {
        aci.update(0.0, 100.0).unwrap();
    }
    assert!(aci.alpha_t() < a0);
    assert!(aci.interval(0.0).width() > before);
}

#[test]
fn beta_posterior_sanity() {
    // Uniform prior, no data: Beta(1, 1) is uniform, so the interval is exact.
    let b = st::beta_posterior(0, 0, 1.0, 1.0, 0.95).unwrap();
    assert!((b.lower - 0.025).abs() < 1e-9 && (b.upper - 0.975).abs() < 1e-9, "{b:?}");
    assert_eq!(b.mean, 0.5);
    // 7 of 10 with a uniform prior: Beta(8, 4), mean 2/3.
    let b = st::beta_posterior(7, 3, 1.0, 1.0, 0.95).unwrap();
    assert_eq!((b.alpha, b.beta), (8.0, 4.0));
    assert!((b.mean - 2.0 / 3.0).abs() < 1e-15);
    assert!(b.lower < b.mean && b.mean < b.upper);
    // Integer shapes have a closed-form CDF, I_x(8, 4) = Σ_{j=8}^{11} C(11,j) x^j (1−x)^(11−j);
    // bisecting it gives (0.3902574404275787, 0.8907365561809018), as does
    // scipy.stats.beta(8, 4).interval(0.95).
    assert!((b.lower - 0.390_257_440_427_578_7).abs() < 1e-9, "{b:?}");
    assert!((b.upper - 0.890_736_556_180_901_8).abs() < 1e-9, "{b:?}");
    // the tails really hold 2.5% each
    use statrs::distribution::{Beta, ContinuousCDF};
    let d = Beta::new(8.0, 4.0).unwrap();
    assert!((d.cdf(b.lower) - 0.025).abs() < 1e-8 && (d.cdf(b.upper) - 0.975).abs() < 1e-8);
    // Symmetric posteriors give symmetric intervals; more data, narrower intervals.
    let s = st::beta_posterior(5, 5, 2.0, 2.0, 0.9).unwrap();
    assert!((s.lower + s.upper - 1.0).abs() < 1e-9);
    let wide = st::beta_posterior(3, 7, 1.0, 1.0, 0.9).unwrap();
    let narrow = st::beta_posterior(300, 700, 1.0, 1.0, 0.9).unwrap();
    assert!(narrow.upper - narrow.lower < (wide.upper - wide.lower) / 5.0);
    assert!(narrow.lower < 0.3 && 0.3 < narrow.upper);
}

#[test]
fn ewma_matches_the_recurrence() {
    let xs = [1.0, 2.0, 3.0, 10.0];
    let path = st::ewma(&xs, 0.5).unwrap();
    assert_eq!(path, vec![1.0, 1.5, 2.25, 6.125]);
    let e = st::Ewma::with_half_life(1.0).unwrap();
    let mut e2 = e;
    e2.update(0.0).unwrap();
    // half-life 1: one step halves the weight of the past
    assert!((e2.update(1.0).unwrap() - 0.5).abs() < 1e-15);
    assert_eq!(e.value(), None);
}
