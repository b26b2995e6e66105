//! Throughput of the hot-path statistics at drift-plugin scale.
//!
//! The drift plugin compares windows of up to a million values; this bench
//! shows whether KS, PSI and Wasserstein stay interactive there (target: KS on
//! 2 × 1,000,000 values under 200 ms) and what Shapiro–Wilk costs at its
//! maximum n. It needs no benchmarking crate: the data come from a seeded
//! splitmix64 + Box–Muller generator, each case runs a few times, and the
//! table prints min and median wall time.
//!
//! Run with `cargo bench -p learnloop-stats`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use learnloop_stats::{
    Alternative, KsMethod, SplitMix64, ks_2samp, ks_2samp_sorted, psi, shapiro, wasserstein, wasserstein_sorted,
};

/// n normals by Box–Muller from the shared generator, shifted by `mean`
/// (both variates of each pair are used).
fn normals(rng: &mut SplitMix64, n: usize, mean: f64) -> Vec<f64> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let (u1, u2) = (rng.uniform(), rng.uniform());
        let r = (-2.0 * u1.ln()).sqrt();
        let t = 2.0 * std::f64::consts::PI * u2;
        out.push(mean + r * t.cos());
        if out.len() < n {
            out.push(mean + r * t.sin());
        }
    }
    out
}

fn time<T>(reps: usize, mut f: impl FnMut() -> T) -> (Duration, Duration) {
    let mut times: Vec<Duration> = (0..reps)
        .map(|_| {
            let start = Instant::now();
            black_box(f());
            start.elapsed()
        })
        .collect();
    times.sort();
    (times[0], times[times.len() / 2])
}

fn row(name: &str, size: &str, (min, median): (Duration, Duration), note: &str) {
    println!(
        "| {name:<34} | {size:>13} | {:>9.2} | {:>9.2} | {note}",
        min.as_secs_f64() * 1e3,
        median.as_secs_f64() * 1e3
    );
}

fn main() {
    const N: usize = 1_000_000;
    const REPS: usize = 7;
    let mut rng = SplitMix64(0x5EED_1EA7_1006);
    let x = normals(&mut rng, N, 0.0);
    let y_shift = normals(&mut rng, N, 0.005);
    let y_same = normals(&mut rng, N, 0.0);
    let mut xs = x.clone();
    xs.sort_unstable_by(f64::total_cmp);
    let mut ys = y_shift.clone();
    ys.sort_unstable_by(f64::total_cmp);
    let sw = normals(&mut rng, 5000, 3.0);
    let small_x = normals(&mut rng, 10_000, 0.0);
    let small_y = normals(&mut rng, 10_000, 0.03);

    println!("learnloop-stats throughput ({REPS} repetitions each; times in ms)");
    println!();
    println!("| {:<34} | {:>13} | {:>9} | {:>9} | result", "case", "size", "min", "median");
    println!("|{:-<36}|{:->15}|{:->11}|{:->11}|-------", "", "", "", "");

    let r = ks_2samp(&x, &y_shift, Alternative::TwoSided, KsMethod::Asymp).expect("ks");
    row(
        "ks_2samp asymp (unsorted input)",
        "2 x 1,000,000",
        time(REPS, || ks_2samp(&x, &y_shift, Alternative::TwoSided, KsMethod::Asymp)),
        &format!("D = {:.6}, p = {:.3e}", r.statistic, r.pvalue),
    );
    let r = ks_2samp(&x, &y_same, Alternative::TwoSided, KsMethod::Asymp).expect("ks");
    row(
        "ks_2samp asymp, no shift",
        "2 x 1,000,000",
        time(REPS, || ks_2samp(&x, &y_same, Alternative::TwoSided, KsMethod::Asymp)),
        &format!("D = {:.6}, p = {:.3e}", r.statistic, r.pvalue),
    );
    row(
        "ks_2samp_sorted asymp (pre-sorted)",
        "2 x 1,000,000",
        time(REPS, || ks_2samp_sorted(&xs, &ys, Alternative::TwoSided, KsMethod::Asymp)),
        "",
    );
    row(
        "ref: std sort by total_cmp",
        "1,000,000",
        time(REPS, || {
            let mut v = x.clone();
            v.sort_unstable_by(f64::total_cmp);
            v
        }),
        "",
    );
    let r = ks_2samp(&small_x, &small_y, Alternative::TwoSided, KsMethod::Auto).expect("ks");
    row(
        "ks_2samp auto (= exact)",
        "2 x 10,000",
        time(REPS, || ks_2samp(&small_x, &small_y, Alternative::TwoSided, KsMethod::Auto)),
        &format!("D = {:.4}, p = {:.3e}", r.statistic, r.pvalue),
    );
    let r = psi(&x, &y_shift, 10, 1e-4).expect("psi");
    row("psi (10 bins)", "2 x 1,000,000", time(REPS, || psi(&x, &y_shift, 10, 1e-4)), &format!("PSI = {:.3e}", r.psi));
    let r = wasserstein(&x, &y_shift).expect("wasserstein");
    row(
        "wasserstein (unsorted input)",
        "2 x 1,000,000",
        time(REPS, || wasserstein(&x, &y_shift)),
        &format!("W1 = {r:.6}"),
    );
    row("wasserstein_sorted (pre-sorted)", "2 x 1,000,000", time(REPS, || wasserstein_sorted(&xs, &ys)), "");
    let r = shapiro(&sw).expect("shapiro");
    row("shapiro", "5,000", time(REPS, || shapiro(&sw)), &format!("W = {:.6}, p = {:.4}", r.w, r.pvalue));
}
