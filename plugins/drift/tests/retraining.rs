//! The retraining decision and classifier drift, through a real plugin host
//! and SQLite store on seeded streams:
//! * a stable regression model fed thousands of outcomes, a few of whose
//!   actuals are near zero (MAPE over 30 % in its current window), is never
//!   recommended for retraining, on every seed and every day checked;
//! * a model whose absolute error really grows is recommended;
//! * a model with no reference window (its first days) is not, however bad
//!   its MAPE: `min_retrain_samples` applies to both windows;
//! * classifiers get concept drift (a two-proportion test on accuracy) and
//!   prediction drift (χ² on the predicted labels), p-values equal to
//!   `learnloop_stats::chi2_contingency_2xk` on the same counts;
//! * the removed `mape_threshold` key is refused by name.

use std::collections::BTreeMap;
use std::sync::Arc;

use learnloop_config::Config;
use learnloop_core::{Record, Timestamp, WorkspaceId, parse_json_record};
use learnloop_plugin_host::{IngestStatus, PluginHost};
use learnloop_stats::SplitMix64 as Rng;
use learnloop_stats::chi2_contingency_2xk;
use learnloop_store::{SqliteOptions, Store};
use serde_json::{Value, json};

const DAY: i64 = 86_400_000_000;
const T0: i64 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z

fn rec(v: Value) -> Record {
    parse_json_record(&v.to_string(), &Default::default()).unwrap()
}

fn ts(us: i64) -> String {
    Timestamp::from_micros(us).unwrap().to_rfc3339()
}

fn host(dir: &std::path::Path) -> PluginHost {
    learnloop_test_support::host::host::<learnloop_plugin_drift::DriftPlugin>(dir, "drift")
}

fn ingest(host: &PluginHost, records: Vec<Record>) {
    let statuses = host.ingest(records, Timestamp::from_micros(T0 + 400 * DAY).unwrap()).unwrap();
    assert!(
        statuses.iter().all(|s| *s == IngestStatus::Inserted),
        "{:?}",
        statuses.iter().find(|s| **s != IngestStatus::Inserted)
    );
}

fn get(host: &PluginHost, path: &str) -> Value {
    let ws = WorkspaceId::parse("", "w").unwrap();
    let r = host
        .handle("drift", &ws, "GET", path, BTreeMap::new(), Value::Null)
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    assert_eq!(r.status, 200);
    r.body
}

/// Day `day` of a regression model: `per_day` predictions around 10 with
/// noise `sd` (MAPE about 14 % for sd 1.75), and `near_zero` of them whose
/// actual is 0.001–0.004 while the prediction is 0.4–1.0 above it.
fn regression_day(
    model: &str,
    rng: &mut Rng,
    day: i64,
    per_day: usize,
    sd: f64,
    near_zero: usize,
    out: &mut Vec<Record>,
) {
    let zeros: Vec<usize> = (0..near_zero).map(|_| (rng.next_u64() % per_day as u64) as usize).collect();
    for i in 0..per_day {
        let t = T0 + day * DAY + i as i64 * DAY / per_day as i64;
        let x1 = rng.normal();
        let mut pred = 10.0 + 1.5 * x1;
        let mut actual = pred + sd * rng.normal();
        if zeros.contains(&i) {
            actual = 0.001 + 0.003 * rng.uniform();
            pred = actual + 0.4 + 0.6 * rng.uniform();
        }
        let id = format!("{model}-{day}-{i}");
        out.push(rec(json!({"type": "prediction", "id": id, "workspace": "w", "plugin": "drift", "subject": model,
            "kind": "regression", "value": pred, "features": {"x1": x1}, "event_time": ts(t)})));
        out.push(rec(json!({"type": "outcome", "id": format!("o-{id}"), "workspace": "w", "plugin": "drift",
            "prediction_id": id, "value": actual, "event_time": ts(t + DAY / 24)})));
    }
}

#[test]
fn stable_model_with_near_zero_actuals_is_never_recommended() {
    let mut mape_over_30 = 0;
    let mut checks = 0;
    for seed in [11u64, 12, 13, 14] {
        let dir = tempfile::tempdir().unwrap();
        let host = host(dir.path());
        let mut rng = Rng::new(seed);
        // 30 days of reference, then 10 days checked one by one: 300 outcomes a
        // day, two near-zero actuals a week on average.
        let mut records = Vec::new();
        for day in 0..30 {
            let zeros = usize::from(rng.uniform() < 0.3);
            regression_day("stable", &mut rng, day, 300, 1.75, zeros, &mut records);
        }
        ingest(&host, records);
        for day in 30..40 {
            let mut records = Vec::new();
            let zeros = if day == 31 { 1 } else { usize::from(rng.uniform() < 0.3) };
            regression_day("stable", &mut rng, day, 300, 1.75, zeros, &mut records);
            ingest(&host, records);
            let r = get(&host, "/models/stable/retrain");
            checks += 1;
            assert_eq!(r["should_retrain"], false, "seed {seed} day {day}: {r:#}");
            assert!(r["blocked_by"].is_null(), "{r:#}");
            let cur = &r["checks"]["current_window"];
            assert!(cur["n"].as_u64().unwrap() >= 2000, "{r:#}");
            // WAPE is not moved by the near-zero actuals; MAPE is.
            assert!(cur["wape"].as_f64().unwrap() < 0.2, "{r:#}");
            if cur["mape"].as_f64().unwrap() > 30.0 {
                mape_over_30 += 1;
            }
        }
    }
    // The old rule (MAPE > 30 %) would have recommended retraining on most of these checks.
    println!("current-window MAPE over 30% in {mape_over_30} of {checks} checks; retraining recommended in 0");
    assert!(mape_over_30 * 2 >= checks, "{mape_over_30} of {checks}: the stream lost its near-zero actuals");
}

#[test]
fn a_model_whose_error_grows_is_recommended() {
    for seed in [21u64, 22, 23] {
        let dir = tempfile::tempdir().unwrap();
        let host = host(dir.path());
        let mut rng = Rng::new(seed);
        let mut records = Vec::new();
        for day in 0..37 {
            let sd = if day >= 33 { 1.75 * 1.6 } else { 1.75 };
            regression_day("m", &mut rng, day, 200, sd, 0, &mut records);
        }
        ingest(&host, records);
        let r = get(&host, "/models/m/retrain");
        assert_eq!(r["should_retrain"], true, "seed {seed}: {r:#}");
        assert!(r["reasons"][0].as_str().unwrap().contains("MAE"), "{r:#}");
        assert!(r["test"]["p_value"].as_f64().unwrap() <= 0.01, "{r:#}");
        assert!(r["test"]["ratio"].as_f64().unwrap() > 1.1, "{r:#}");
    }
}

#[test]
fn a_model_without_a_reference_window_is_not_recommended() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path());
    let mut rng = Rng::new(5);
    let mut records = Vec::new();
    // One day, 500 outcomes, poor and with near-zero actuals: MAPE far over 30 %.
    regression_day("new", &mut rng, 0, 500, 5.0, 3, &mut records);
    ingest(&host, records);
    let r = get(&host, "/models/new/retrain");
    assert!(r["checks"]["current_window"]["mape"].as_f64().unwrap() > 30.0, "{r:#}");
    assert_eq!(r["should_retrain"], false, "{r:#}");
    let blocked = r["blocked_by"].as_str().unwrap();
    assert!(
        blocked.contains("0 matched outcomes in the reference window") && blocked.contains("min_retrain_samples"),
        "{blocked}"
    );
    // The daily job agrees and raises no retraining alert.
    let run = host.run_job("drift", "daily", "test", None, 1).unwrap();
    let report = run.report.unwrap()["workspaces"]["w"].clone();
    assert_eq!(report["models"]["new"]["should_retrain"], false, "{report:#}");
    assert_eq!(report["totals"]["should_retrain"], 0);
}

/// A classifier: `per_day` label predictions a day; the predicted label's
/// mix and the accuracy change from `change_day` on.
fn classifier(
    model: &str,
    seed: u64,
    days: i64,
    change_day: i64,
    mix: [[f64; 3]; 2],
    accuracy: [f64; 2],
    out: &mut Vec<Record>,
) {
    const LABELS: [&str; 3] = ["buy", "browse", "leave"];
    let mut rng = Rng::new(seed);
    for day in 0..days {
        let k = usize::from(day >= change_day);
        for i in 0..150 {
            let t = T0 + day * DAY + i * DAY / 150;
            let u = rng.uniform();
            let p = if u < mix[k][0] {
                0
            } else if u < mix[k][0] + mix[k][1] {
                1
            } else {
                2
            };
            let a = if rng.uniform() < accuracy[k] { p } else { (p + 1 + (rng.next_u64() % 2) as usize) % 3 };
            let id = format!("{model}-{day}-{i}");
            out.push(rec(
                json!({"type": "prediction", "id": id, "workspace": "w", "plugin": "drift", "subject": model,
                "kind": "classification", "label": LABELS[p], "features": {"x1": rng.normal()}, "event_time": ts(t)}),
            ));
            out.push(rec(json!({"type": "outcome", "id": format!("o-{id}"), "workspace": "w", "plugin": "drift",
                "prediction_id": id, "label": LABELS[a], "event_time": ts(t + DAY / 24)})));
        }
    }
}

#[test]
fn classifiers_get_concept_and_prediction_drift() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path());
    let mut records = Vec::new();
    let same = [[0.5, 0.3, 0.2], [0.5, 0.3, 0.2]];
    classifier("steady", 1, 37, 30, same, [0.85, 0.85], &mut records);
    classifier("drifting", 2, 37, 30, [[0.5, 0.3, 0.2], [0.3, 0.3, 0.4]], [0.85, 0.65], &mut records);
    ingest(&host, records);

    let d = get(&host, "/models/drifting/drift");
    assert_eq!(d["model_kind"], "classifier", "{d:#}");
    let c = &d["concept_drift"];
    assert!(c["test"]["test"].as_str().unwrap().contains("two-proportion"), "{d:#}");
    assert_eq!(c["degraded"], true, "{d:#}");
    assert!(["high", "critical"].contains(&c["severity"].as_str().unwrap()), "{d:#}");
    let p = &d["prediction_drift"];
    assert_eq!(p["test"]["name"], "predicted_label", "{d:#}");
    assert_eq!(p["test"]["drifted"], true, "{d:#}");
    // The p-values are learnloop-stats' χ² (checked against SciPy) on the windows' counts.
    let n_ref = c["test"]["n_reference"].as_f64().unwrap();
    let n_cur = c["test"]["n_current"].as_f64().unwrap();
    let (er, ec) =
        (c["test"]["error_rate_reference"].as_f64().unwrap(), c["test"]["error_rate_current"].as_f64().unwrap());
    let (mr, mc) = ((er * n_ref).round(), (ec * n_cur).round());
    let chi = chi2_contingency_2xk(&[n_ref - mr, mr], &[n_cur - mc, mc]).unwrap();
    assert!(
        (c["test"]["p_value"].as_f64().unwrap() - chi.pvalue).abs() <= 1e-12 * chi.pvalue.max(1e-300),
        "{} vs {}",
        c["test"]["p_value"],
        chi.pvalue
    );
    let props = &p["test"]["proportions"];
    let counts = |w: &str, n: f64| -> Vec<f64> {
        ["browse", "buy", "leave"].iter().map(|l| (props[l][w].as_f64().unwrap() * n).round()).collect()
    };
    let (pr, pc) = (p["test"]["n_reference"].as_f64().unwrap(), p["test"]["n_current"].as_f64().unwrap());
    let chi = chi2_contingency_2xk(&counts("reference", pr), &counts("current", pc)).unwrap();
    assert_eq!(p["test"]["p_value"].as_f64().unwrap(), chi.pvalue);
    let r = get(&host, "/models/drifting/retrain");
    assert_eq!(r["should_retrain"], true, "{r:#}");
    assert!(r["reasons"][0].as_str().unwrap().contains("error rate"), "{r:#}");

    // The steady classifier: both tests run; its accuracy did not change.
    // (Its predicted-label test is a false alarm with probability about
    // p_value, as for any stable model, so it is not asserted here.)
    let d = get(&host, "/models/steady/drift");
    assert_eq!(d["concept_drift"]["severity"], "none", "{d:#}");
    assert!(d["concept_drift"]["test"]["p_value"].is_number(), "{d:#}");
    assert!(d["prediction_drift"]["test"]["p_value"].is_number(), "{d:#}");
    assert_eq!(get(&host, "/models/steady/retrain")["should_retrain"], false);
}

#[test]
fn the_removed_mape_threshold_key_is_refused_by_name() {
    for (key, value) in [
        ("mape_threshold", toml::Value::Float(30.0)),
        ("retrain_min_error_increase", toml::Value::Float(-0.1)),
        ("min_retrain_samples", toml::Value::Integer(1)),
        ("retrain_p_value", toml::Value::Float(0.0)),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = learnloop_test_support::store::test_store(dir.path(), &SqliteOptions::default());
        let mut c = Config::default();
        c.plugins.dir = dir.path().join("p");
        c.plugins.enabled = vec!["drift".into()];
        let mut section = toml::Table::new();
        section.insert(key.into(), value);
        c.plugin_sections.insert("drift".into(), section);
        let host = PluginHost::load(
            &learnloop_plugin_host::Registry::new().with_default::<learnloop_plugin_drift::DriftPlugin>("drift"),
            &c,
            store,
        );
        let err = host.load_errors.first().unwrap_or_else(|| panic!("{key} accepted")).to_string();
        assert!(err.contains(key), "{err}");
    }
}

/// The drift plugin's own outbox entries of `event`, read by routing the
/// unrouted ones to a counting closure (nothing is sent).
fn retrain_requests_in_outbox(store: &Arc<dyn Store>) -> Vec<String> {
    let mut seen = Vec::new();
    store
        .route_notifications(
            10_000,
            &mut |n| {
                if n.event == "retrain.requested" {
                    seen.push(n.subject.clone());
                }
                Vec::new()
            },
            None,
            Timestamp::now(),
        )
        .unwrap();
    seen
}

#[test]
fn a_drifting_model_files_one_request_per_cooldown_and_it_is_delivered() {
    for seed in [31u64, 32, 33] {
        let dir = tempfile::tempdir().unwrap();
        let host = host(dir.path());
        let store = host.store().clone();
        let mut rng = Rng::new(seed);
        let mut records = Vec::new();
        for day in 0..37 {
            let sd = if day >= 33 { 1.75 * 1.6 } else { 1.75 };
            regression_day("m", &mut rng, day, 200, sd, 0, &mut records);
            regression_day("steady", &mut rng, day, 200, 1.75, 0, &mut records);
        }
        ingest(&host, records);
        let rx = learnloop_test_support::receiver::Receiver::ok();
        let mut requests = Vec::new();
        // The daily job runs three times (three days of a scheduler): one request.
        for _ in 0..3 {
            let run = host.run_job("drift", "daily", "test", None, 1).unwrap();
            let report = &run.report.unwrap()["workspaces"]["w"];
            assert_eq!(report["models"]["m"]["should_retrain"], true, "seed {seed}: {report:#}");
            assert_eq!(report["models"]["steady"]["should_retrain"], false, "seed {seed}");
            requests.push(report["totals"]["retrain_requested"].as_u64().unwrap());
        }
        assert_eq!(requests, [1, 0, 0], "seed {seed}: one request, then the cooldown");
        let listed = get(&host, "/retrain/requests");
        assert_eq!(listed["requests"].as_array().unwrap().len(), 1, "{listed:#}");
        assert!(listed["requests"][0]["reason"].as_str().unwrap().starts_with("automatic"), "{listed:#}");
        // Delivered: a webhook destination receives exactly one retrain.requested.
        let text = format!(
            "[notify]\npoll_ms = 50\n[[notify.destinations]]\nname = \"pipeline\"\nkind = \"webhook\"\nurl = \"{}\"\nsecret_env = \"S\"\nevents = [\"retrain.requested\"]\n",
            rx.url()
        );
        let c = Config::from_toml("test", &text).unwrap();
        let dests = learnloop_notify::Destinations::from_config_with_env(&c, |_| Some("k".into())).unwrap();
        let d = learnloop_notify::Deliverer::new(store.clone(), dests, learnloop_notify::Settings::from_config(&c.notify), "t");
        let pass = d.run_once().unwrap().unwrap();
        assert_eq!(pass.delivered, 1, "seed {seed}: {pass:?}");
        let got = rx.requests();
        assert_eq!(got.len(), 1);
        let body = got[0].json();
        assert_eq!((body["type"].as_str(), body["subject"].as_str()), (Some("retrain.requested"), Some("m")));
        assert_eq!(body["severity"], "high");
        assert_eq!(body["data"]["should_retrain"], true);
        assert!(body["data"]["evidence"]["test"]["p_value"].as_f64().unwrap() <= 0.01, "{body:#}");
        assert!(body["link"].as_str().unwrap().starts_with("/api/v1/drift/retrain/requests?model=m"));
    }
}

#[test]
fn cooldown_and_auto_retrain_off() {
    let mut rng = Rng::new(41);
    let mut records = Vec::new();
    for day in 0..37 {
        let sd = if day >= 33 { 1.75 * 1.6 } else { 1.75 };
        regression_day("m", &mut rng, day, 200, sd, 0, &mut records);
    }
    // auto_retrain = "off": the alert, no request, no notification.
    let dir = tempfile::tempdir().unwrap();
    let store = learnloop_test_support::store::test_store(dir.path(), &SqliteOptions::default());
    let off = learnloop_test_support::host::host_on::<learnloop_plugin_drift::DriftPlugin>(
        store.clone(),
        dir.path(),
        "drift",
        "auto_retrain = \"off\"",
    );
    ingest(&off, records.clone());
    let run = off.run_job("drift", "daily", "test", None, 1).unwrap();
    assert_eq!(run.report.unwrap()["workspaces"]["w"]["totals"]["retrain_requested"], 0);
    assert!(retrain_requests_in_outbox(&store).is_empty());
    assert_eq!(get(&off, "/retrain/requests")["requests"].as_array().unwrap().len(), 0);

    // A request 8 days ago is outside the 7-day cooldown: a new one is filed;
    // one 3 days ago is inside it: none is.
    for (age_days, expected) in [(8i64, 1u64), (3, 0)] {
        let dir = tempfile::tempdir().unwrap();
        let store = learnloop_test_support::store::test_store(dir.path(), &SqliteOptions::default());
        let host = learnloop_test_support::host::host_on::<learnloop_plugin_drift::DriftPlugin>(
            store.clone(),
            dir.path(),
            "drift",
            "",
        );
        ingest(&host, records.clone());
        let then = Timestamp::now().add_micros(-age_days * DAY);
        let day = learnloop_plugin_drift::retrain::day(then);
        let old = json!({"model": "m", "day": day, "requested_at": then.to_rfc3339(), "reason": "by hand",
            "should_retrain": true, "evidence": {}, "delivery": ""});
        let key = learnloop_store::StateKey {
            plugin: learnloop_core::PluginName::parse("", "drift").unwrap(),
            workspace: WorkspaceId::parse("", "w").unwrap(),
            key: format!("retrain/m/{day}"),
        };
        store.put_state(&key, old.to_string().as_bytes(), learnloop_core::history::Expect::Absent, then).unwrap();
        let run = host.run_job("drift", "daily", "test", None, 1).unwrap();
        let filed = run.report.unwrap()["workspaces"]["w"]["totals"]["retrain_requested"].as_u64().unwrap();
        assert_eq!(filed, expected, "last request {age_days} days ago");
        assert_eq!(retrain_requests_in_outbox(&store).len() as u64, expected);
    }
}
