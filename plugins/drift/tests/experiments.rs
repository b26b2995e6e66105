//! The drift plugin's decision features through a real plugin host and
//! SQLite store, on simulated data with fixed seeds:
//! * A/B tests: the truly better version wins; identical arms have no
//!   winner; too little data is "no winner yet"; a broken split is a
//!   sample-ratio mismatch; assignment is deterministic and follows the split;
//! * retraining requests: recorded once per model and day, with evidence;
//! * the pinned reference set replaces the sliding reference window;
//! * feature weights: correlations equal `learnloop_stats` on the same rows;
//! * service monitoring: percentiles, slow endpoints, memory leak, health
//!   score by its documented formula, daily alerts.

use std::collections::BTreeMap;

use learnloop_core::{Record, Timestamp, WorkspaceId, parse_json_record};
use learnloop_plugin_drift::abtest::{AbTest, unit_fraction};
use learnloop_plugin_host::{IngestStatus, PluginHost};
use learnloop_stats::{SplitMix64 as Rng, chisquare, percentiles, spearman};
use learnloop_store::AlertQuery;
use serde_json::{Value, json};

const DAY: i64 = 86_400_000_000;
const T0: i64 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z

fn ts(us: i64) -> String {
    Timestamp::from_micros(us).unwrap().to_rfc3339()
}

fn rec(v: Value) -> Record {
    parse_json_record(&v.to_string(), &Default::default()).unwrap()
}

fn host(dir: &std::path::Path) -> PluginHost {
    learnloop_test_support::host::host::<learnloop_plugin_drift::DriftPlugin>(dir, "drift")
}

fn ingest(host: &PluginHost, records: Vec<Record>) {
    let statuses = host.ingest(records, Timestamp::from_micros(T0 + 40 * DAY).unwrap()).unwrap();
    assert!(
        statuses.iter().all(|s| *s == IngestStatus::Inserted),
        "{:?}",
        statuses.iter().find(|s| **s != IngestStatus::Inserted)
    );
}

fn call(host: &PluginHost, method: &str, path: &str, query: &[(&str, &str)], body: Value) -> Result<Value, String> {
    let ws = WorkspaceId::parse("", "w").unwrap();
    let q: BTreeMap<String, String> = query.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    host.handle("drift", &ws, method, path, q, body).map(|r| r.body).map_err(|e| e.to_string())
}

fn get(host: &PluginHost, path: &str, query: &[(&str, &str)]) -> Value {
    call(host, "GET", path, query, Value::Null).unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// Predictions of `model` by units assigned through the test's hash, each
/// version with its own noise; outcomes one hour later.
#[allow(clippy::too_many_arguments)]
fn ab_traffic(test: &AbTest, model: &str, seed: u64, units: usize, noise: &[f64], start: i64, out: &mut Vec<Record>) {
    let mut rng = Rng(seed);
    for u in 0..units {
        let unit = format!("user-{u}");
        let arm = test.assign(&unit);
        let t = start + (u as i64) * DAY / units as i64;
        let x = rng.normal();
        let truth = 50.0 + 5.0 * x;
        let pred = truth + noise[arm] * rng.normal();
        let id = format!("{model}-{seed}-{u}");
        out.push(rec(json!({"type": "prediction", "id": id, "workspace": "w", "plugin": "drift", "subject": model,
            "kind": "regression", "value": pred, "features": {"x": x}, "payload": {"model_version": test.versions[arm], "unit": unit},
            "event_time": ts(t)})));
        out.push(rec(json!({"type": "outcome", "id": format!("o-{id}"), "workspace": "w", "plugin": "drift",
            "prediction_id": id, "value": truth, "event_time": ts(t + DAY / 24)})));
    }
}

fn create_ab(host: &PluginHost, id: &str, model: &str, extra: Value) -> AbTest {
    let mut body = json!({"id": id, "model": model, "versions": ["v1", "v2"], "split": [0.5, 0.5], "duration_days": 7, "start": ts(T0)});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let r = call(host, "POST", "/ab_tests", &[], body.clone()).unwrap();
    assert_eq!(r["created"], true, "{r:#}");
    let split: Vec<f64> = r["split"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
    let versions: Vec<String> =
        r["versions"].as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_string()).collect();
    AbTest {
        id: id.into(),
        model: model.into(),
        versions,
        split,
        start_us: T0,
        end_us: T0 + 7 * DAY,
        confidence: 0.95,
        created_us: 0,
    }
}

#[test]
fn ab_tests_pick_the_better_version_and_no_winner_on_identical_arms() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path());
    let better = create_ab(&host, "better", "m-better", json!({}));
    let same = create_ab(&host, "same", "m-same", json!({}));
    let small = create_ab(&host, "small", "m-small", json!({}));
    let three = create_ab(&host, "three", "m-three", json!({"versions": ["a", "b", "c"], "split": [0.5, 0.25, 0.25]}));
    let mut records = Vec::new();
    ab_traffic(&better, "m-better", 1, 400, &[2.0, 1.0], T0, &mut records); // v2 has half the noise
    ab_traffic(&same, "m-same", 2, 400, &[1.0, 1.0], T0, &mut records);
    ab_traffic(&small, "m-small", 3, 30, &[2.0, 1.0], T0, &mut records); // ~15 per arm < 30
    ab_traffic(&three, "m-three", 4, 800, &[1.0, 1.0, 0.5], T0, &mut records);
    // Traffic outside the test period is not counted.
    ab_traffic(&better, "m-better", 5, 100, &[0.1, 9.0], T0 + 8 * DAY, &mut records);
    ingest(&host, records);

    let r = get(&host, "/ab_tests/better", &[]);
    assert_eq!(r["winner"], "v2", "{r:#}");
    assert_eq!(r["status"], "finished");
    let n: u64 = r["arms"].as_array().unwrap().iter().map(|a| a["n"].as_u64().unwrap()).sum();
    assert_eq!(n, 400, "{r:#}");
    assert!(r["comparisons"][0]["p_adjusted"].as_f64().unwrap() <= 0.05, "{r:#}");
    assert_eq!(r["sample_ratio_mismatch"]["mismatch"], false, "{r:#}");
    // The SRM p-value is learnloop-stats' chisquare (checked against SciPy) on the arm sizes.
    let obs: Vec<f64> = r["arms"].as_array().unwrap().iter().map(|a| a["predictions"].as_f64().unwrap()).collect();
    let c = chisquare(&obs, &[200.0, 200.0]).unwrap();
    assert_eq!(r["sample_ratio_mismatch"]["p_value"].as_f64().unwrap(), c.pvalue);

    let r = get(&host, "/ab_tests/same", &[]);
    assert!(r["winner"].is_null(), "{r:#}");
    assert!(r["conclusion"].as_str().unwrap().starts_with("no winner yet"), "{r:#}");

    let r = get(&host, "/ab_tests/small", &[]);
    assert!(r["winner"].is_null(), "{r:#}");
    assert!(r["conclusion"].as_str().unwrap().contains("fewer than ab_min_samples"), "{r:#}");

    let r = get(&host, "/ab_tests/three", &[]);
    assert_eq!(r["winner"], "c", "{r:#}");
    assert_eq!(r["comparisons"].as_array().unwrap().len(), 2);
    let sizes: Vec<u64> = r["arms"].as_array().unwrap().iter().map(|a| a["predictions"].as_u64().unwrap()).collect();
    assert!(sizes[0] > sizes[1] && sizes[0] > sizes[2], "split 0.5/0.25/0.25 gave {sizes:?}");

    let list = get(&host, "/ab_tests", &[]);
    assert_eq!(list["tests"].as_array().unwrap().len(), 4);

    // The weekly report carries the conclusions.
    let weekly = host.run_job("drift", "weekly", "test", None, 1).unwrap().report.unwrap()["workspaces"]["w"].clone();
    assert_eq!(weekly["ab_tests"]["better"]["winner"], "v2", "{weekly:#}");
    assert!(weekly["ab_tests"]["same"]["winner"].is_null());
    assert_eq!(weekly["totals"]["ab_winners"], 2);
}

#[test]
fn identical_arms_rarely_have_a_winner() {
    // 20 seeded A/A tests: each names a winner with probability <= 0.05,
    // so more than 4 of 20 (Binomial(20, 0.05) 99th percentile: 3) fails.
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path());
    let mut records = Vec::new();
    let mut tests = Vec::new();
    for seed in 0..20u64 {
        let t = create_ab(&host, &format!("aa{seed}"), &format!("aa{seed}"), json!({}));
        ab_traffic(&t, &t.model.clone(), 100 + seed, 200, &[1.0, 1.0], T0, &mut records);
        tests.push(t);
    }
    ingest(&host, records);
    let winners = tests.iter().filter(|t| !get(&host, &format!("/ab_tests/{}", t.id), &[])["winner"].is_null()).count();
    println!("A/A tests with a winner: {winners} of 20");
    assert!(winners <= 3, "{winners} of 20 A/A tests named a winner");
}

#[test]
fn ab_assignment_is_deterministic_and_follows_the_split() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path());
    let t = create_ab(&host, "split", "m", json!({"split": 0.2}));
    assert_eq!(t.split, vec![0.2, 0.8]);
    for u in ["alice", "bob", "user-17"] {
        let a = get(&host, "/ab_tests/split/assign", &[("unit", u)]);
        assert_eq!(a["arm"], t.assign(u) as u64);
        assert_eq!(a, get(&host, "/ab_tests/split/assign", &[("unit", u)]));
    }
    assert_eq!(unit_fraction("split", "alice"), unit_fraction("split", "alice"));
    assert_ne!(unit_fraction("split", "alice"), unit_fraction("other", "alice"));
    let mut counts = [0.0f64; 2];
    for u in 0..10_000 {
        counts[t.assign(&format!("u{u}"))] += 1.0;
    }
    // The hash is uniform enough that 10,000 units show no mismatch.
    let c = chisquare(&counts, &[2000.0, 8000.0]).unwrap();
    assert!(c.pvalue > 0.001, "{counts:?} {c:?}");

    // Errors name the field; nothing is stored.
    let bad = |body: Value, field: &str| {
        let e = call(&host, "POST", "/ab_tests", &[], body).unwrap_err();
        assert!(e.contains(field), "{e}");
    };
    bad(json!({"model": "m", "versions": ["a", "b"]}), "id");
    bad(json!({"id": "x", "model": "m", "versions": ["a"]}), "versions");
    bad(json!({"id": "x", "model": "m", "versions": ["a", "a"]}), "versions[1]");
    bad(json!({"id": "x", "model": "m", "versions": ["a", "b"], "split": [0.7, 0.7]}), "split");
    bad(json!({"id": "x", "model": "m", "versions": ["a", "b"], "duration_days": -1}), "duration_days");
    bad(json!({"id": "x", "model": "m", "versions": ["a", "b"], "confidence": 2}), "confidence");
    bad(json!({"id": "x", "model": "m", "versions": ["a", "b"], "colour": 1}), "colour");
    bad(json!({"id": "x", "model": "m", "versions": ["a", null]}), "versions[1]");
    bad(json!({"id": "x", "model": "m", "versions": ["a", "b"], "split": "half"}), "split");
    bad(json!({"id": "x", "model": "m", "versions": ["a", "b"], "start": "soon"}), "start");
    bad(json!({"id": "x/y", "model": "m", "versions": ["a", "b"]}), "id");
    bad(json!(["x", "m", ["a", "b"]]), "body");
    bad(json!({"id": "split", "model": "other", "versions": ["a", "b"]}), "already exists");
    assert!(call(&host, "GET", "/ab_tests/x", &[], Value::Null).unwrap_err().contains("x"));
    assert!(call(&host, "GET", "/ab_tests/split/assign", &[], Value::Null).unwrap_err().contains("unit"));
    assert_eq!(get(&host, "/ab_tests", &[])["tests"].as_array().unwrap().len(), 1);
}

#[test]
fn sample_ratio_mismatch_blocks_the_winner() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path());
    let t = create_ab(&host, "srm", "m", json!({}));
    // Log v1 for every unit the hash sent to v1, but only a third of v2's.
    let mut all = Vec::new();
    ab_traffic(&t, "m", 7, 900, &[2.0, 1.0], T0, &mut all);
    let records: Vec<Record> = all
        .chunks(2)
        .enumerate()
        .filter(|(i, pair)| {
            let Record::Prediction(p) = &pair[0] else { unreachable!() };
            p.payload["model_version"] == "v1" || i % 3 == 0
        })
        .flat_map(|(_, pair)| pair.to_vec())
        .collect();
    ingest(&host, records);
    let r = get(&host, "/ab_tests/srm", &[]);
    assert_eq!(r["sample_ratio_mismatch"]["mismatch"], true, "{r:#}");
    assert!(r["winner"].is_null(), "{r:#}");
    assert!(r["conclusion"].as_str().unwrap().contains("sample-ratio mismatch"), "{r:#}");
}

/// A model whose x1 shifts after 30 days (as in simulation.rs), 300 + 300 rows.
fn shifted_model(model: &str, seed: u64, out: &mut Vec<Record>) -> Vec<(i64, f64, f64, f64, f64, f64)> {
    let mut rng = Rng(seed);
    let n = 300;
    let mut rows = Vec::new();
    for i in 0..2 * n {
        let current = i >= n;
        let t = if current {
            T0 + 30 * DAY + ((i - n) as i64) * 7 * DAY / n as i64
        } else {
            T0 + (i as i64) * 30 * DAY / n as i64
        };
        let x1 = rng.normal() + if current { 1.0 } else { 0.0 };
        let x2 = rng.normal();
        let x3 = rng.normal();
        let actual = 10.0 + 2.0 * x1 + x2 + 0.5 * rng.normal();
        let pred = 10.0 + 2.0 * x1 + 0.5 * x2; // under-uses x2: its error correlates with x2
        let id = format!("{model}-{i}");
        out.push(rec(json!({"type": "prediction", "id": id, "workspace": "w", "plugin": "drift", "subject": model,
            "kind": "regression", "value": pred, "features": {"x1": x1, "x2": x2, "x3": x3}, "event_time": ts(t)})));
        out.push(rec(json!({"type": "outcome", "id": format!("o-{id}"), "workspace": "w", "plugin": "drift",
            "prediction_id": id, "value": actual, "event_time": ts(t + DAY / 24)})));
        rows.push((t, x1, x2, x3, pred, actual));
    }
    rows
}

#[test]
fn retraining_requests_are_recorded_once_per_model_and_day() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path());
    let mut records = Vec::new();
    shifted_model("m", 1, &mut records);
    ingest(&host, records);
    let a = call(&host, "POST", "/models/m/retrain", &[], json!({"reason": "x1 moved"})).unwrap();
    assert_eq!(a["created"], true, "{a:#}");
    assert_eq!(a["request"]["reason"], "x1 moved");
    assert_eq!(a["request"]["evidence"]["drift"]["affected_features"], json!(["x1"]), "{a:#}");
    assert!(a["request"]["evidence"]["reasons"].is_array());
    let b = call(&host, "POST", "/models/m/retrain", &[], Value::Null).unwrap();
    assert_eq!(b["created"], false);
    assert_eq!(b["request"], a["request"]);
    let list = get(&host, "/retrain/requests", &[]);
    assert_eq!(list["requests"].as_array().unwrap().len(), 1, "{list:#}");
    assert_eq!(get(&host, "/retrain/requests", &[("model", "other")])["requests"], json!([]));
    let e = call(&host, "POST", "/models/m/retrain", &[], json!({"reason": 5})).unwrap_err();
    assert!(e.contains("reason"), "{e}");
    let e = call(&host, "POST", "/models/m/retrain", &[], json!({"reason": "x", "urgent": true})).unwrap_err();
    assert!(e.contains("urgent"), "{e}");
    let e = call(&host, "POST", "/models/m/retrain", &[], json!({"reason": "é".repeat(2001)})).unwrap_err();
    assert!(e.contains("reason") && e.contains("2000"), "{e}");
    let e = call(&host, "POST", "/models/m/retrain", &[], json!(["x"])).unwrap_err();
    assert!(e.contains("body"), "{e}");
    let e = call(&host, "POST", "/models/nope/retrain", &[], Value::Null).unwrap_err();
    assert!(e.contains("nope"), "{e}");
    let e = call(&host, "GET", "/retrain/requests", &[("limit", "0")], Value::Null).unwrap_err();
    assert!(e.contains("limit"), "{e}");
}

#[test]
fn pinned_reference_replaces_the_sliding_window() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path());
    let mut records = Vec::new();
    shifted_model("m", 2, &mut records);
    ingest(&host, records);
    let d = get(&host, "/models/m/drift", &[]);
    assert_eq!(d["feature_drift"]["affected_features"], json!(["x1"]), "{d:#}");
    assert_eq!(d["reference"]["pinned"], false);
    // Pin the first days of the current period: x1 no longer drifts against it.
    let p =
        call(&host, "PUT", "/models/m/reference", &[], json!({"from": ts(T0 + 30 * DAY), "until": ts(T0 + 33 * DAY)}))
            .unwrap();
    assert!(p["pinned"]["predictions"].as_u64().unwrap() > 100, "{p:#}");
    let d = get(&host, "/models/m/drift", &[]);
    assert_eq!(d["reference"]["pinned"], true, "{d:#}");
    assert_eq!(d["reference"]["from_us"], T0 + 30 * DAY);
    assert_eq!(d["feature_drift"]["severity"], "none", "{d:#}");
    // `reference=window` still answers with the sliding window.
    let d = get(&host, "/models/m/drift", &[("reference", "window")]);
    assert_eq!(d["feature_drift"]["affected_features"], json!(["x1"]), "{d:#}");
    assert_eq!(get(&host, "/models/m/reference", &[])["pinned"]["until_us"], T0 + 33 * DAY);
    // Bad bodies name the field and change nothing.
    for (body, field) in [
        (json!({"from": ts(T0)}), "until"),
        (json!({"from": ts(T0 + 2 * DAY), "until": ts(T0)}), "from"),
        (json!({"from": ts(T0 - 10 * DAY), "until": ts(T0 - 9 * DAY)}), "from"),
        (json!({"from": ts(T0), "until": ts(T0 + DAY), "to": 1}), "to"),
    ] {
        let e = call(&host, "PUT", "/models/m/reference", &[], body).unwrap_err();
        assert!(e.contains(field), "{e}");
    }
    assert_eq!(get(&host, "/models/m/reference", &[])["pinned"]["until_us"], T0 + 33 * DAY);
    assert_eq!(call(&host, "DELETE", "/models/m/reference", &[], Value::Null).unwrap()["unpinned"], true);
    assert_eq!(get(&host, "/models/m/drift", &[])["reference"]["pinned"], false);
}

#[test]
fn feature_weights_are_correlations_with_target_and_error() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path());
    let mut records = Vec::new();
    let rows = shifted_model("m", 3, &mut records);
    ingest(&host, records);
    let w = get(&host, "/models/m/weights", &[("from", &ts(T0))]);
    let f = &w["features"];
    let (x1, x2, x3) =
        (f["x1"]["weight"].as_f64().unwrap(), f["x2"]["weight"].as_f64().unwrap(), f["x3"]["weight"].as_f64().unwrap());
    assert!(x1 > x2 && x2 > x3, "{w:#}");
    assert!((x1 + x2 + x3 - 1.0).abs() < 1e-12);
    assert_eq!(w["ranking"][0]["feature"], "x1");
    // The numbers are learnloop-stats' spearman (checked against SciPy) on the same rows.
    let col = |k: usize| rows.iter().map(|r| [r.1, r.2, r.3][k]).collect::<Vec<_>>();
    let actual: Vec<f64> = rows.iter().map(|r| r.5).collect();
    let err: Vec<f64> = rows.iter().map(|r| r.5 - r.4).collect();
    let s = spearman(&col(0), &actual).unwrap();
    assert_eq!(f["x1"]["target"]["spearman"]["r"].as_f64().unwrap(), s.statistic);
    assert_eq!(f["x1"]["target"]["spearman"]["p_value"].as_f64().unwrap(), s.pvalue);
    let s = spearman(&col(1), &err).unwrap();
    assert_eq!(f["x2"]["error"]["spearman"]["r"].as_f64().unwrap(), s.statistic);
    assert!(s.statistic > 0.5 && s.pvalue < 1e-6, "x2 is under-used, so the error follows it: {s:?}");
    assert_eq!(w["buckets"], 4);
    assert_eq!(f["x1"]["buckets"].as_array().unwrap().len(), 4);
    assert_eq!(f["x3"]["trend"], "stable", "{w:#}");
    let small = get(&host, "/models/m/weights", &[("from", &ts(T0 + 36 * DAY))]);
    assert!(small["skipped"].is_string(), "{small:#}");
}

#[test]
fn service_health_slow_endpoints_and_memory_leak() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path());
    let mut rng = Rng(11);
    let mut records = Vec::new();
    let (mut fast, mut slow) = (Vec::new(), Vec::new());
    let mut errors = 0;
    let n = 720; // two hours, one sample of each endpoint per 10 s
    for i in 0..n {
        let t = T0 + (i as i64) * 10_000_000;
        let lf = (20.0 + 5.0 * rng.normal()).max(1.0);
        let ls = (250.0 + 30.0 * rng.normal()).max(1.0);
        let err = i % 50 == 0; // 2% of /fast
        errors += usize::from(err);
        fast.push(lf);
        slow.push(ls);
        let leak = 500.0 + 150.0 * i as f64 / n as f64 + 5.0 * rng.normal(); // +150 MB over the period
        for (ep, l, e, who) in [("/fast", lf, err, "api"), ("/slow", ls, false, "api"), ("/fast", lf, false, "steady")]
        {
            let mem = if who == "api" { leak } else { 300.0 + 5.0 * rng.normal() };
            records.push(rec(json!({"type": "prediction", "id": format!("{who}-{}-{i}", &ep[1..]), "workspace": "w", "plugin": "drift",
                "subject": who, "kind": "service_sample", "value": l,
                "payload": {"endpoint": ep, "error": e, "memory_mb": mem}, "event_time": ts(t)})));
        }
    }
    ingest(&host, records);
    let h = get(&host, "/services/api/health", &[]);
    assert_eq!(h["samples"], 2 * n, "{h:#}");
    let p = percentiles(&slow, &[50.0, 95.0, 99.0]).unwrap();
    assert_eq!(h["endpoints"]["/slow"]["p95"].as_f64().unwrap(), p[1]);
    assert_eq!(h["endpoints"]["/slow"]["p99"].as_f64().unwrap(), p[2]);
    assert_eq!(h["endpoints"]["/fast"]["p50"].as_f64().unwrap(), percentiles(&fast, &[50.0]).unwrap()[0]);
    let slow_eps: Vec<&str> =
        h["slow_endpoints"].as_array().unwrap().iter().map(|s| s["endpoint"].as_str().unwrap()).collect();
    assert_eq!(slow_eps, ["/slow"]);
    let rate = errors as f64 / (2 * n) as f64;
    assert_eq!(h["error_rate"].as_f64().unwrap(), rate);
    assert_eq!(h["memory"]["leak_suspected"], true, "{h:#}");
    let growth = h["memory"]["fitted_growth_mb"].as_f64().unwrap();
    assert!((growth - 150.0).abs() < 10.0, "{growth}");
    // 5-minute windows: 2 hours = 24 windows.
    assert_eq!(h["windows"].as_array().unwrap().len(), 24);
    // The documented formula: 0.4 * (1 of 2 endpoints fast) + 0.4 * (1 - rate / 0.05) + 0.2 * 0 (growth >= 100 MB).
    let want = (1000.0 * (0.4 * 0.5 + 0.4 * (1.0 - rate / 0.05))).round() / 10.0;
    assert_eq!(h["health"]["score"].as_f64().unwrap(), want, "{h:#}");
    assert_eq!(h["health"]["status"], "unhealthy");
    let s = get(&host, "/services/steady/health", &[]);
    assert_eq!(s["memory"]["leak_suspected"], false, "{s:#}");
    assert!(s["health"]["score"].as_f64().unwrap() >= 99.0, "{s:#}");
    assert_eq!(get(&host, "/services", &[])["services"]["api"]["samples"], 2 * n);
    // Service samples are not models.
    assert_eq!(get(&host, "/summary", &[])["models"], json!({}));
    let daily = host.run_job("drift", "daily", "test", None, 1).unwrap().report.unwrap()["workspaces"]["w"].clone();
    assert_eq!(daily["totals"]["services"], 2, "{daily:#}");
    let alerts =
        host.store().alerts(&AlertQuery { include_acknowledged: true, limit: 1000, ..Default::default() }).unwrap();
    let kinds: Vec<(String, String)> = alerts.iter().map(|a| (a.kind.clone(), a.subject.clone())).collect();
    assert!(kinds.contains(&("slow_endpoint".into(), "api /slow".into())), "{kinds:?}");
    assert!(kinds.contains(&("memory_leak".into(), "api".into())), "{kinds:?}");
    assert!(!kinds.iter().any(|(_, s)| s.starts_with("steady")), "{kinds:?}");
    // Bad samples are rejected naming the field.
    let bad = rec(json!({"type": "prediction", "id": "b1", "workspace": "w", "plugin": "drift", "subject": "api",
        "kind": "service_sample", "value": 10.0, "payload": {"error": true}}));
    let st = host.ingest(vec![bad], Timestamp::from_micros(T0).unwrap()).unwrap();
    assert!(matches!(&st[0], IngestStatus::Rejected { field, .. } if field == "payload.endpoint"), "{st:?}");
    let e = call(&host, "GET", "/services/none/health", &[], Value::Null).unwrap_err();
    assert!(e.contains("none"), "{e}");
}
