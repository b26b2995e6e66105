//! `beta_binomial_cdf`, `beta_binomial_sf` and `normal_cdf` against SciPy
//! (`tests/data/betabinom_vectors.json`, made by
//! `tests/data/make_betabinom_vectors.py` with SciPy 1.17.1): relative error
//! ≤ 1e-7 (the log-gamma terms of statrs, ~1e-10 relative on values in the
//! hundreds, bound the precision; ample for p-values).

use learnloop_stats::{beta_binomial_cdf, beta_binomial_sf, normal_cdf};
use serde_json::Value;

fn doc() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/betabinom_vectors.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn close(got: f64, want: f64) -> bool {
    (got - want).abs() <= 1e-7 * want.abs() + 1e-300
}

#[test]
fn beta_binomial_matches_scipy() {
    let d = doc();
    let cases = d["betabinom"].as_array().unwrap();
    assert!(cases.len() >= 50);
    for c in cases {
        let (k, n) = (c["k"].as_u64().unwrap(), c["n"].as_u64().unwrap());
        let (a, b) = (c["a"].as_f64().unwrap(), c["b"].as_f64().unwrap());
        let cdf = beta_binomial_cdf(k, n, a, b).unwrap();
        let sf = beta_binomial_sf(k, n, a, b).unwrap();
        assert!(close(cdf, c["cdf"].as_f64().unwrap()), "cdf {c}: got {cdf}");
        assert!(close(sf, c["sf"].as_f64().unwrap()), "sf {c}: got {sf}");
    }
    assert!(beta_binomial_cdf(3, 10, 0.0, 1.0).is_err());
    assert!(beta_binomial_sf(3, 10, 1.0, f64::NAN).is_err());
}

#[test]
fn normal_cdf_matches_scipy() {
    for c in doc()["normal_cdf"].as_array().unwrap() {
        let got = normal_cdf(c["x"].as_f64().unwrap());
        assert!(close(got, c["cdf"].as_f64().unwrap()), "{c}: got {got}");
    }
}
