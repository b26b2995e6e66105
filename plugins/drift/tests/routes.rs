//! Snapshots of every drift route answer's body and of both job reports,
//! through a real plugin host and store, on seeded data with fixed event
//! times. A change of shape (a field renamed, added or dropped, a null
//! turned into an omission, an integer into a float) shows up here as a
//! changed `.snap` file under `tests/snapshots/`, to be reviewed.
//!
//! The models cover every variant of an answer: `m` (regression, two
//! versions, a numeric, a categorical and a mixed feature; its error grows
//! in the current window), `k` (a classifier) and `tiny` (too few samples:
//! every test skipped); the services `api` (a slow endpoint, errors and a
//! memory leak) and `quiet` (no memory samples).
//!
//! Each body is also read into its typed answer (`routes::Summary`,
//! `analysis::DriftReport`, ...) and written back: it must be the same
//! JSON, so the types describe the answers exactly.
//!
//! `declared_query_parameters_are_taken_and_no_others` walks the manifest:
//! every declared query parameter, at each kind of valid value, is taken
//! by its route, and an undeclared one is refused with a 400 naming it.
//!
//! Maps are snapshotted sorted: key order is not part of the answer's
//! shape (it depends on whether serde_json's `preserve_order` is on in the
//! build). Wall-clock times (creation, request and pin times) are redacted.

use std::collections::BTreeMap;

use insta::{assert_json_snapshot, with_settings};
use learnloop_core::{Record, Timestamp, WorkspaceId, parse_json_record};
use learnloop_plugin_api::{Plugin, QueryParam};
use learnloop_plugin_drift::abtest::{AbResults, AbTestCreated};
use learnloop_plugin_drift::analysis::DriftReport;
use learnloop_plugin_drift::jobs::{DailyReport, WeeklyReport};
use learnloop_plugin_drift::routes::{
    AbTestsAnswer, Assignment, ErrorsAnswer, Evidence, PerformanceAnswer, PinAnswer, ReferenceAnswer, RequestsAnswer,
    RetrainAnswer, ServicesAnswer, Summary, TriggerAnswer, UnpinAnswer, WeightsAnswer,
};
use learnloop_plugin_drift::service::HealthReport;
use learnloop_plugin_host::{HostError, IngestStatus, PluginHost};
use learnloop_stats::SplitMix64 as Rng;
use learnloop_store::{AlertQuery, InsightQuery};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

const DAY: i64 = 86_400_000_000;
const MINUTE: i64 = 60_000_000;
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
    let statuses = host.ingest(records, Timestamp::from_micros(T0 + 60 * DAY).unwrap()).unwrap();
    assert!(statuses.iter().all(|s| *s == IngestStatus::Inserted), "{statuses:?}");
}

fn call(host: &PluginHost, method: &str, path: &str, query: &[(&str, &str)], body: Value) -> Value {
    let ws = WorkspaceId::parse("", "w").unwrap();
    let q: BTreeMap<String, String> = query.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let r = host.handle("drift", &ws, method, path, q, body).unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    assert_eq!(r.status, 200, "{method} {path}");
    r.body
}

fn get(host: &PluginHost, path: &str, query: &[(&str, &str)]) -> Value {
    call(host, "GET", path, query, Value::Null)
}

/// Regression model `m`: 40 days of 40 predictions; versions v1/v2 by
/// turns; `x` shifts and the error grows in the last 7 days; every tenth
/// prediction has no outcome yet.
fn model_m(out: &mut Vec<Record>) {
    let mut rng = Rng::new(7);
    for day in 0..40 {
        let late = day >= 33;
        for i in 0..40 {
            let t = T0 + day * DAY + i * DAY / 40;
            let x = rng.normal() + if late { 1.5 } else { 0.0 };
            let c = ["a", "b", "c"][(rng.next_u64() % 3) as usize];
            let mix = if i % 2 == 0 { json!(rng.uniform()) } else { json!("s") };
            let truth = 20.0 + 3.0 * x + if c == "c" { 2.0 } else { 0.0 };
            let noise = if late { 4.0 } else { 1.0 };
            let pred = truth - 3.0 * x * 0.2 + noise * rng.normal();
            let id = format!("m-{day}-{i}");
            out.push(rec(json!({"type": "prediction", "id": id, "workspace": "w", "plugin": "drift", "subject": "m",
                "kind": "regression", "value": pred, "features": {"x": x, "c": c, "mix": mix},
                "payload": {"model_version": if i % 2 == 0 { "v1" } else { "v2" }}, "event_time": ts(t)})));
            if i % 10 != 9 {
                let actual = if i == 3 && day % 5 == 0 { 0.0 } else { truth };
                out.push(rec(json!({"type": "outcome", "id": format!("o-{id}"), "workspace": "w", "plugin": "drift",
                    "prediction_id": id, "value": actual, "event_time": ts(t + DAY / 24)})));
            }
        }
    }
}

/// Classifier `k`: 40 days of 20 label predictions, more misses and more
/// `yes` in the last 7 days.
fn model_k(out: &mut Vec<Record>) {
    let mut rng = Rng::new(8);
    for day in 0..40 {
        let late = day >= 33;
        for i in 0..20 {
            let t = T0 + day * DAY + i * DAY / 20;
            let f = rng.normal();
            let yes = rng.uniform() < if late { 0.7 } else { 0.4 };
            let pred = if yes { "yes" } else { "no" };
            let miss = rng.uniform() < if late { 0.4 } else { 0.1 };
            let actual = if miss != yes { "yes" } else { "no" };
            let id = format!("k-{day}-{i}");
            out.push(rec(json!({"type": "prediction", "id": id, "workspace": "w", "plugin": "drift", "subject": "k",
                "kind": "classifier", "label": pred, "features": {"f": f}, "payload": {"model_version": 3},
                "event_time": ts(t)})));
            out.push(rec(json!({"type": "outcome", "id": format!("o-{id}"), "workspace": "w", "plugin": "drift",
                "prediction_id": id, "label": actual, "event_time": ts(t + DAY / 24)})));
        }
    }
}

/// Model `tiny`: five predictions, four outcomes (and a second outcome of
/// the first, unmatched).
fn model_tiny(out: &mut Vec<Record>) {
    for i in 0..5i64 {
        let t = T0 + 39 * DAY + i * MINUTE;
        let id = format!("tiny-{i}");
        out.push(rec(json!({"type": "prediction", "id": id, "workspace": "w", "plugin": "drift", "subject": "tiny",
            "kind": "regression", "value": 1.0 + i as f64, "features": {"x": i}, "event_time": ts(t)})));
        if i < 4 {
            out.push(rec(json!({"type": "outcome", "id": format!("o-{id}"), "workspace": "w", "plugin": "drift",
                "prediction_id": id, "value": 1.5 + 2.0 * i as f64, "event_time": ts(t + MINUTE)})));
        }
    }
    out.push(rec(json!({"type": "outcome", "id": "o2-tiny-0", "workspace": "w", "plugin": "drift",
        "prediction_id": "tiny-0", "value": 1.0, "event_time": ts(T0 + 39 * DAY + 2 * MINUTE)})));
}

/// Services: `api` over 6 hours (a fast and a slow endpoint, errors,
/// memory growing steadily), `quiet` without memory samples.
fn services(out: &mut Vec<Record>) {
    let mut rng = Rng::new(9);
    let start = T0 + 39 * DAY;
    for i in 0..360i64 {
        let t = start + i * MINUTE;
        let slow = i % 3 == 0;
        let latency = if slow { 150.0 + 40.0 * rng.uniform() } else { 20.0 + 10.0 * rng.uniform() };
        let mut payload =
            json!({"endpoint": if slow { "/slow" } else { "/fast" }, "memory_mb": 500.0 + i as f64 * 0.5});
        if i % 25 == 0 {
            payload["status_code"] = json!(503);
        }
        out.push(rec(json!({"type": "prediction", "id": format!("api-{i}"), "workspace": "w", "plugin": "drift",
            "subject": "api", "kind": "service_sample", "value": latency, "payload": payload, "event_time": ts(t)})));
        if i % 4 == 0 {
            out.push(rec(
                json!({"type": "prediction", "id": format!("quiet-{i}"), "workspace": "w", "plugin": "drift",
                "subject": "quiet", "kind": "service_sample", "value": 5.0 + (i % 7) as f64,
                "payload": {"endpoint": "/ping", "error": i % 40 == 0}, "event_time": ts(t)}),
            ));
        }
    }
}

/// Snapshots `body` after checking that it is a `T` exactly: read into the
/// type and written back, it is the same JSON (nothing dropped, renamed,
/// added, or turned from null into absent).
fn snap<T: Serialize + DeserializeOwned>(name: &str, body: &Value) {
    let typed: T = serde_json::from_value(body.clone()).unwrap_or_else(|e| panic!("{name}: {e}\n{body:#}"));
    assert_eq!(&serde_json::to_value(&typed).unwrap(), body, "{name}: the typed answer differs");
    raw(name, body);
}

/// Snapshots `body` (wall-clock times redacted, maps sorted).
fn raw(name: &str, body: &Value) {
    with_settings!({sort_maps => true, prepend_module_to_snapshot => false}, {
        assert_json_snapshot!(name, body, {
            ".created" => "[created]",
            ".tests[].created" => "[created]",
            ".pinned.pinned_at" => "[pinned_at]",
            ".request.requested_at" => "[requested_at]",
            ".request.day" => "[day]",
            ".requests[].requested_at" => "[requested_at]",
            ".requests[].day" => "[day]",
        });
    });
}

#[test]
fn every_route_answer_keeps_its_shape() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path());
    let mut records = Vec::new();
    model_m(&mut records);
    model_k(&mut records);
    model_tiny(&mut records);
    services(&mut records);
    ingest(&host, records);

    snap::<Summary>("summary", &get(&host, "/summary", &[]));

    snap::<PerformanceAnswer>("performance_m", &get(&host, "/models/m/performance", &[]));
    snap::<PerformanceAnswer>("performance_m_v1", &get(&host, "/models/m/performance", &[("version", "v1")]));
    snap::<PerformanceAnswer>("performance_k", &get(&host, "/models/k/performance", &[("from", &ts(T0 + 30 * DAY))]));
    snap::<PerformanceAnswer>("performance_tiny", &get(&host, "/models/tiny/performance", &[]));

    snap::<DriftReport>("drift_m", &get(&host, "/models/m/drift", &[]));
    snap::<DriftReport>(
        "drift_m_window",
        &get(&host, "/models/m/drift", &[("reference", "window"), ("current_days", "5")]),
    );
    snap::<DriftReport>("drift_k", &get(&host, "/models/k/drift", &[]));
    snap::<DriftReport>("drift_tiny", &get(&host, "/models/tiny/drift", &[]));

    snap::<ErrorsAnswer>("errors_m", &get(&host, "/models/m/errors", &[]));
    snap::<ErrorsAnswer>("errors_tiny", &get(&host, "/models/tiny/errors", &[]));

    snap::<RetrainAnswer>("retrain_m", &get(&host, "/models/m/retrain", &[]));
    snap::<RetrainAnswer>("retrain_k", &get(&host, "/models/k/retrain", &[]));
    snap::<RetrainAnswer>("retrain_tiny", &get(&host, "/models/tiny/retrain", &[]));

    snap::<WeightsAnswer>("weights_m", &get(&host, "/models/m/weights", &[]));
    snap::<WeightsAnswer>("weights_tiny", &get(&host, "/models/tiny/weights", &[]));

    snap::<ReferenceAnswer>("reference_unpinned", &get(&host, "/models/m/reference", &[]));
    let pin = json!({"from": ts(T0), "until": ts(T0 + 10 * DAY)});
    snap::<PinAnswer>("reference_put", &call(&host, "PUT", "/models/m/reference", &[], pin));
    snap::<ReferenceAnswer>("reference_pinned", &get(&host, "/models/m/reference", &[]));
    snap::<DriftReport>("drift_m_pinned", &get(&host, "/models/m/drift", &[]));

    let post = call(&host, "POST", "/models/m/retrain", &[], json!({"reason": "nightly check"}));
    let evidence: Evidence = serde_json::from_value(post["request"]["evidence"].clone()).unwrap();
    assert_eq!(serde_json::to_value(&evidence).unwrap(), post["request"]["evidence"], "the evidence is an Evidence");
    snap::<TriggerAnswer>("retrain_post", &post);
    snap::<TriggerAnswer>("retrain_post_again", &call(&host, "POST", "/models/tiny/retrain", &[], Value::Null));
    snap::<RequestsAnswer>("retrain_requests", &get(&host, "/retrain/requests", &[("limit", "5")]));

    let ab =
        json!({"id": "t1", "model": "m", "versions": ["v1", "v2"], "start": ts(T0 + 20 * DAY), "duration_days": 14});
    snap::<AbTestCreated>("ab_create", &call(&host, "POST", "/ab_tests", &[], ab.clone()));
    snap::<AbTestCreated>("ab_create_again", &call(&host, "POST", "/ab_tests", &[], ab));
    let small =
        json!({"id": "t2", "model": "tiny", "versions": ["a", 2], "split": 0.3, "start": ts(T0), "confidence": 0.9});
    snap::<AbTestCreated>("ab_create_small", &call(&host, "POST", "/ab_tests", &[], small));
    snap::<AbTestsAnswer>("ab_list", &get(&host, "/ab_tests", &[]));
    snap::<AbResults>("ab_results_t1", &get(&host, "/ab_tests/t1", &[]));
    snap::<AbResults>("ab_results_t2", &get(&host, "/ab_tests/t2", &[]));
    snap::<Assignment>("ab_assign", &get(&host, "/ab_tests/t1/assign", &[("unit", "user-1")]));

    snap::<ServicesAnswer>("services", &get(&host, "/services", &[]));
    snap::<HealthReport>("service_health_api", &get(&host, "/services/api/health", &[]));
    snap::<HealthReport>(
        "service_health_quiet",
        &get(&host, "/services/quiet/health", &[("from", &ts(T0 + 39 * DAY))]),
    );

    // Both job reports (with a pinned reference and two A/B tests).
    for job in ["daily", "weekly"] {
        let run = host.run_job("drift", job, "test", None, 1).unwrap();
        assert!(run.error.is_none(), "{job}: {:?}", run.error);
        let report = run.report.unwrap();
        let report = &report["workspaces"]["w"];
        match job {
            "daily" => snap::<DailyReport>("job_daily", report),
            _ => snap::<WeeklyReport>("job_weekly", report),
        }
    }
    // What the jobs and the online update raised and found (message, data).
    let mut alerts: Vec<Value> = host
        .store()
        .alerts(&AlertQuery { include_acknowledged: true, limit: 1000, ..Default::default() })
        .unwrap()
        .into_iter()
        .map(|a| json!({"severity": a.severity, "kind": a.kind, "subject": a.subject, "message": a.message, "data": a.data}))
        .collect();
    alerts.sort_by_key(|a| (a["kind"].to_string(), a["subject"].to_string()));
    raw("alerts", &json!(alerts));
    let mut insights: Vec<Value> = host
        .store()
        .insights(&InsightQuery { limit: 1000, ..Default::default() })
        .unwrap()
        .into_iter()
        .map(|i| json!({"kind": i.kind, "title": i.title, "detail": i.detail, "confidence": i.confidence, "data": i.data}))
        .collect();
    insights.sort_by_key(|i| (i["kind"].to_string(), i["title"].to_string()));
    raw("insights", &json!(insights));

    snap::<UnpinAnswer>("reference_delete", &call(&host, "DELETE", "/models/m/reference", &[], Value::Null));
    snap::<UnpinAnswer>("reference_delete_again", &call(&host, "DELETE", "/models/m/reference", &[], Value::Null));
}

/// Values of a declared query parameter that its schema admits: each enum
/// value, both bounds of a number, a time inside the data, a name that
/// exists.
fn valid_values(p: &QueryParam) -> Vec<String> {
    let s = &p.schema;
    if let Some(options) = s.get("enum").and_then(Value::as_array) {
        return options.iter().map(|o| o.as_str().unwrap().to_string()).collect();
    }
    let bound = |k: &str| s.get(k).and_then(Value::as_f64);
    match (s["type"].as_str().unwrap(), s.get("format").and_then(Value::as_str)) {
        ("integer", _) => vec![bound("minimum").unwrap().to_string(), bound("maximum").unwrap().to_string()],
        ("number", _) => {
            let low = bound("minimum").or(bound("exclusiveMinimum").map(|m| m + 1.0)).unwrap();
            vec![low.to_string(), bound("maximum").unwrap().to_string()]
        }
        ("boolean", _) => vec!["true".into(), "false".into()],
        ("string", Some("date-time")) => vec![ts(T0 + 39 * DAY + 3 * 60 * MINUTE)],
        ("string", None) => vec![match p.name.as_str() {
            "version" => "v1".into(),
            "model" => "m".into(),
            _ => "user-1".into(),
        }],
        other => panic!("{}: no valid value for the schema {other:?}", p.name),
    }
}

#[test]
fn declared_query_parameters_are_taken_and_no_others() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path());
    let mut records = Vec::new();
    model_m(&mut records);
    services(&mut records);
    ingest(&host, records);
    let ab = json!({"id": "t1", "model": "m", "versions": ["v1", "v2"], "start": ts(T0 + 20 * DAY)});
    call(&host, "POST", "/ab_tests", &[], ab);
    let ws = WorkspaceId::parse("", "w").unwrap();
    let manifest = learnloop_plugin_drift::DriftPlugin::default().manifest();
    for route in &manifest.routes {
        let path = route.path.replace("{model}", "m").replace("{test}", "t1").replace("{service}", "api");
        let params = route.query.as_ref().unwrap_or_else(|| panic!("{} declares no query", route.name));
        let required: Vec<(String, String)> =
            params.iter().filter(|p| p.required).map(|p| (p.name.clone(), valid_values(p)[0].clone())).collect();
        let send = |extra: &[(String, String)]| {
            let q: BTreeMap<String, String> = required.iter().chain(extra).cloned().collect();
            host.handle("drift", &ws, &route.method, &path, q, Value::Null)
        };
        // Writer routes change state and need a body: only their refusal
        // of an unknown parameter is checked (it comes before the body).
        if route.method == "GET" {
            for p in params {
                for v in valid_values(p) {
                    let r = send(&[(p.name.clone(), v.clone())]);
                    assert!(r.is_ok(), "{} {path}?{}={v}: {:?}", route.method, p.name, r.err());
                }
            }
        }
        match send(&[("bogus".into(), "1".into())]) {
            Err(HostError::BadRequest { field, message }) => {
                assert_eq!(field, "bogus", "{} {path}", route.method);
                assert!(message.contains("bogus"), "{message}");
            }
            other => panic!("{} {path}?bogus=1: {other:?}", route.method),
        }
    }
}
