//! The cost plugin driven through a real plugin host, SQLite store and (for
//! similar cases) a real Qdrant Edge index, on simulated recommendations
//! with fixed seeds:
//! * realised savings are biased differently per type and region (raw
//!   prediction error ≥ 20%); after learning from the oldest 80%, the
//!   calibrated predictions of the newest 20% have an error under 15% (aim
//!   10%) and their 90% conformal intervals cover 86–94% of actual savings;
//! * success probability, risk levels and scoring weights follow the
//!   planted truth; similar-case search puts the same type and region first;
//! * the success model is applied only when it beats the base rate on
//!   held-out outcomes (a stream whose successes carry no signal keeps the
//!   base rate); `/metrics` reports the served calibrated error next to the
//!   raw one against the seed's targets, its monthly trend, and the success
//!   model's backtest;
//! * bad input is rejected naming the field, nothing stored.

use std::sync::Arc;

use learnloop_core::{PluginName, Record, Timestamp, WorkspaceId, parse_json_record};
use learnloop_plugin_host::{IngestStatus, PluginHost, Services};
use learnloop_store::Store;
use learnloop_vector::{EdgeBackend, KnowledgeStore, StructuredEmbedder};
use serde_json::{Value, json};

use learnloop_stats::SplitMix64 as Rng;

const DAY: i64 = 86_400_000_000;
const T0: i64 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z
const TYPES: [(&str, f64); 4] =
    [("rightsizing", 0.85), ("spot_instances", 0.65), ("reserved_instances", 1.10), ("storage_tiering", 0.75)];
const REGIONS: [(&str, f64); 3] = [("us-east-1", 1.0), ("eu-west-1", 0.88), ("ap-south-1", 0.78)];
const RESOURCES: [(&str, f64); 3] = [("ec2", 1.0), ("rds", 0.95), ("ebs", 1.04)];
const NOISE: f64 = 0.08;

fn rec(v: Value) -> Record {
    parse_json_record(&v.to_string(), &Default::default()).unwrap()
}

fn time(us: i64) -> String {
    Timestamp::from_micros(us).unwrap().to_rfc3339()
}

/// A simulated recommendation and what happened to it.
#[derive(Debug, Clone)]
struct Case {
    id: String,
    t: i64,
    kind: &'static str,
    region: &'static str,
    resource: &'static str,
    risk: &'static str,
    predicted: f64,
    readiness: f64,
    noise_factor: f64,
    success: bool,
    actual: f64,
}

fn failure_probability(kind: &str, risk: &str, readiness: f64) -> f64 {
    let base = match risk {
        "low" => 0.04,
        "medium" => 0.12,
        _ => 0.25,
    };
    // spot instances fail much more often whatever their stated risk;
    // readiness (a scoring factor) predicts success, noise does not.
    let kind_extra = if kind == "spot_instances" { 0.25 } else { 0.0 };
    (base + kind_extra) * (1.5 - readiness)
}

fn cases(n: usize, seed: u64) -> Vec<Case> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    for i in 0..n {
        let (kind, tb) = TYPES[(rng.next_u64() % 4) as usize];
        let (region, rb) = REGIONS[(rng.next_u64() % 3) as usize];
        let (resource, sb) = RESOURCES[(rng.next_u64() % 3) as usize];
        let risk = ["low", "medium", "high"][(rng.next_u64() % 3) as usize];
        let predicted = (50.0 + 1950.0 * rng.uniform()).round();
        let readiness = rng.uniform();
        let noise_factor = rng.uniform();
        let success = rng.uniform() >= failure_probability(kind, risk, readiness);
        let actual = predicted * tb * rb * sb * (NOISE * rng.normal()).exp();
        out.push(Case {
            id: format!("rec-{i:05}"),
            t: T0 + (i as i64) * DAY / 10,
            kind,
            region,
            resource,
            risk,
            predicted,
            readiness,
            noise_factor,
            success,
            actual: (actual * 100.0).round() / 100.0,
        });
    }
    out
}

fn records(c: &Case, ws: &str) -> Vec<Record> {
    let mut out = vec![rec(json!({
        "type": "prediction", "id": c.id, "workspace": ws, "plugin": "cost", "subject": format!("{}-{}", c.resource, c.id),
        "kind": c.kind, "value": c.predicted, "confidence": 0.8,
        "features": {"readiness": c.readiness, "noise": c.noise_factor},
        "payload": {"resource_type": c.resource, "region": c.region, "risk_level": c.risk},
        "event_time": time(c.t),
    }))];
    let issues: Vec<&str> = if c.success {
        vec![]
    } else {
        vec![if c.kind == "spot_instances" { "capacity_unavailable" } else { "timeout" }]
    };
    out.push(rec(json!({
        "type": "outcome", "id": format!("{}-exec", c.id), "workspace": ws, "plugin": "cost", "prediction_id": c.id,
        "success": c.success,
        "payload": {"execution_id": format!("exec-{}", c.id), "execution_duration_seconds": 120.0, "issues_encountered": issues,
                    "post_execution_metrics": {"cpu_p95": 0.5}},
        "event_time": time(c.t + DAY),
    })));
    if c.success {
        // Actual savings arrive later, measured over the default window.
        out.push(rec(json!({
            "type": "outcome", "id": format!("{}-savings", c.id), "workspace": ws, "plugin": "cost", "prediction_id": c.id,
            "value": c.actual, "event_time": time(c.t + 31 * DAY),
        })));
    }
    out
}

fn host(dir: &std::path::Path, vectors: bool) -> PluginHost {
    host_on(learnloop_test_support::store::test_store(dir, &learnloop_test_support::store::fast()), dir, vectors)
}

fn host_on(store: Arc<dyn Store>, dir: &std::path::Path, vectors: bool) -> PluginHost {
    let host = learnloop_test_support::host::host_on(store, dir, "cost", "");
    if !vectors {
        return host;
    }
    let backend = EdgeBackend::open(&dir.join("vectors")).unwrap();
    let ks = KnowledgeStore::new(Arc::new(backend), "learnloop", StructuredEmbedder::ID, StructuredEmbedder::DIMS);
    host.with_services(Services {
        vectors: Some(Arc::new(ks)),
        embedder: Some(Arc::new(StructuredEmbedder)),
        llm: None,
    })
}

fn ingest(host: &PluginHost, records: Vec<Record>) {
    let statuses = host.ingest(records, Timestamp::from_micros(T0 + 1000 * DAY).unwrap()).unwrap();
    assert!(
        statuses.iter().all(|s| *s == IngestStatus::Inserted),
        "{:?}",
        statuses.iter().find(|s| **s != IngestStatus::Inserted)
    );
}

fn call(host: &PluginHost, method: &str, path: &str, query: &[(&str, &str)], body: Value) -> Value {
    let ws = WorkspaceId::parse("workspace", "w").unwrap();
    let q = query.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let r = host.handle("cost", &ws, method, path, q, body).unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    assert_eq!(r.status, 200, "{method} {path}: {}", r.body);
    r.body
}

fn assess(host: &PluginHost, c: &Case, similar: usize) -> Value {
    call(
        host,
        "POST",
        "/assess",
        &[],
        json!({
            "recommendation_type": c.kind, "resource_type": c.resource, "region": c.region, "predicted_savings": c.predicted,
            "risk_level": c.risk, "scoring_factors": {"readiness": c.readiness, "noise": c.noise_factor}, "similar_cases": similar,
        }),
    )
}

#[test]
fn calibration_learns_biases_and_intervals_cover() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path(), false);
    let all = cases(5000, 7);
    let cut = all.len() * 8 / 10;
    let (train, test) = all.split_at(cut);
    ingest(&host, train.iter().flat_map(|c| records(c, "w")).collect());
    let run = host.run_job("cost", "learning_cycle", "test", None, 1).unwrap();
    let report = run.report.as_ref().unwrap();
    let w = &report["workspaces"]["w"];
    assert_eq!(w["proposed"], json!(["calibration", "risk_levels", "scoring_weights"]), "{w:#}");
    // The host backtested the proposals (Plugin::score on the held-out outcomes) and applied them.
    let mut applied: Vec<&str> = report["improvements"]["w"]["applied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["target"].as_str().unwrap())
        .collect();
    applied.sort_unstable();
    assert_eq!(applied, ["calibration", "risk_levels", "scoring_weights"], "{:#}", report["improvements"]);

    let (mut raw, mut cal, mut covered, mut n) = (0.0, 0.0, 0usize, 0usize);
    for c in test.iter().filter(|c| c.success) {
        let a = assess(&host, c, 0);
        let calibrated = a["calibrated_savings"].as_f64().unwrap();
        let (lo, hi) = (a["interval"]["lower"].as_f64().unwrap(), a["interval"]["upper"].as_f64().unwrap());
        raw += (c.predicted - c.actual).abs() / c.actual;
        cal += (calibrated - c.actual).abs() / c.actual;
        covered += usize::from(lo <= c.actual && c.actual <= hi);
        n += 1;
        assert_eq!(a["params_versions"], json!({"calibration": 1, "risk_levels": 1, "scoring_weights": 1}));
    }
    let (raw, cal, coverage) = (raw / n as f64, cal / n as f64, covered as f64 / n as f64);
    println!("held-out: n = {n}, raw error {raw:.3}, calibrated error {cal:.3}, 90% interval coverage {coverage:.3}");
    assert!(raw >= 0.20, "the simulation must start with a raw error ≥ 20%, got {raw:.3}");
    assert!(cal < 0.10, "calibrated error {cal:.3} (seed target < 0.15, aim < 0.10)");
    assert!((0.86..=0.94).contains(&coverage), "coverage {coverage:.3} outside 0.86–0.94");

    // Success probability and risk: spot instances fail far more often.
    let spot = test.iter().find(|c| c.kind == "spot_instances" && c.risk == "low").unwrap();
    let rs = test.iter().find(|c| c.kind == "reserved_instances" && c.risk == "low").unwrap();
    let (a, b) = (assess(&host, spot, 0), assess(&host, rs, 0));
    assert!(
        a["probability_of_success"].as_f64().unwrap() + 0.1 < b["probability_of_success"].as_f64().unwrap(),
        "{a:#} {b:#}"
    );
    assert_eq!(a["stated_risk_level"], "low");
    assert_eq!(a["updated_risk_level"], "high", "{a:#}");

    // Scoring weights move toward the factor that predicts success.
    let p = call(&host, "GET", "/params", &[], Value::Null);
    let w = &p["params"]["scoring_weights"]["weights"];
    let (wr, wn) = (w["readiness"].as_f64().unwrap(), w["noise"].as_f64().unwrap());
    assert!(wr > 0.7 && wn < 0.3, "weights {w:#}");

    // Feedback analysis names the planted failure cause and the biased types.
    let an = call(&host, "GET", "/analysis", &[("type", "spot_instances")], Value::Null);
    let causes = an["failure_patterns"][0]["common_causes"].as_array().unwrap();
    assert!(causes[0].as_str().unwrap().starts_with("capacity_unavailable"), "{an:#}");
    assert!(an["improvement_opportunities"].as_array().unwrap().iter().any(|o| o["area"] == "prediction"), "{an:#}");
    let m = call(&host, "GET", "/metrics", &[], Value::Null);
    assert_eq!(m["learning_cycles_completed"], 1);
    assert!(m["improvement_over_baseline"].as_f64().unwrap() > 0.5, "{m:#}");
    // The calibrated error /assess serves (the applied candidate), next to the raw one, against the seed's targets.
    let pe = &m["prediction_error"];
    assert_eq!((pe["target"].as_f64(), pe["served_version"].as_u64()), (Some(0.15), Some(1)), "{pe:#}");
    let (served, raw) = (pe["served"].as_f64().unwrap(), pe["raw"].as_f64().unwrap());
    assert!(served < 0.15 && raw > 0.2, "{pe:#}");
    assert_eq!(
        (pe["served_meets_target"].as_bool(), pe["raw_meets_target"].as_bool()),
        (Some(true), Some(false)),
        "{pe:#}"
    );
    let sr = &m["success_rate_target"];
    assert_eq!((sr["target"].as_f64(), sr["meets_target"].as_bool()), (Some(0.95), Some(false)), "{sr:#}");
    // The monthly trend: the first month is uncalibrated, later months are not; the promised 30% happened.
    let months = m["calibrated_error_trend"]["months"].as_array().unwrap();
    assert!(months.len() >= 12, "{months:#?}");
    assert_eq!(months[0]["month"], "2026-01");
    assert!((months[0]["calibrated_error"].as_f64().unwrap() - months[0]["raw_error"].as_f64().unwrap()).abs() < 1e-12);
    assert!(months.iter().skip(3).all(|x| x["calibrated_error"].as_f64().unwrap() < 0.12), "{months:#?}");
    let three = &m["calibrated_error_trend"]["three_month_improvement"];
    assert_eq!(
        (three["from"].as_str(), three["to"].as_str(), three["achieved"].as_bool()),
        (Some("2026-01"), Some("2026-04"), Some(true)),
        "{three:#}"
    );
    // The success model's backtest: better than the base rate in Brier and log loss, version 1 in force.
    let sm = &m["success_model"];
    assert!(sm["brier"]["candidate"].as_f64().unwrap() < sm["brier"]["base_rate"].as_f64().unwrap(), "{sm:#}");
    assert!(sm["log_loss"]["candidate"].as_f64().unwrap() < sm["log_loss"]["base_rate"].as_f64().unwrap(), "{sm:#}");
    assert_eq!(
        (sm["candidate_beats_base_rate"].as_bool(), sm["version_in_force_now"].as_u64()),
        (Some(true), Some(1)),
        "{sm:#}"
    );

    // The improvement proposals reached the host.
    let ws = WorkspaceId::parse("workspace", "w").unwrap();
    let imps = host.store().improvements(&learnloop_store::ImprovementQuery {
        workspace: Some(ws),
        plugin: Some(PluginName::parse("plugin", "cost").unwrap()),
        ..Default::default()
    });
    let targets: Vec<String> = imps.unwrap().iter().map(|i| i.target.clone()).collect();
    assert!(
        targets.contains(&"calibration".to_string()) && targets.contains(&"scoring_weights".to_string()),
        "{targets:?}"
    );
}

/// Which targets the first learning cycle's lifecycle pass applied, and
/// what it rejected or held.
fn applied_targets(report: &Value) -> Vec<String> {
    let mut applied: Vec<String> = report["improvements"]["w"]["applied"]
        .as_array()
        .map_or(vec![], |a| a.iter().map(|a| a["target"].as_str().unwrap().to_string()).collect());
    applied.sort_unstable();
    applied
}

#[test]
fn success_model_is_applied_only_when_it_beats_the_base_rate() {
    for seed in [3, 8, 21] {
        // No signal: every execution succeeds with probability 0.85, whatever its risk, type, region or factors.
        let dir = tempfile::tempdir().unwrap();
        let host = host(dir.path(), false);
        let mut all = cases(3000, seed);
        let mut rng = Rng::new(seed + 1000);
        for c in &mut all {
            c.success = rng.uniform() < 0.85;
        }
        ingest(&host, all.iter().flat_map(|c| records(c, "w")).collect());
        let run = host.run_job("cost", "learning_cycle", "test", None, 1).unwrap();
        let report = run.report.as_ref().unwrap();
        let applied = applied_targets(report);
        assert!(
            !applied.contains(&"risk_levels".to_string()),
            "seed {seed}: a model without signal was applied: {:#}",
            report["improvements"]
        );
        // Refused (or at most held for a person), never applied; a refusal names the base rate.
        for r in report["improvements"]["w"]["rejected"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["target"] == "risk_levels")
        {
            assert!(r["note"]["reason"].as_str().unwrap().contains("for the base rate"), "{r:#}");
        }
        assert!(applied.contains(&"calibration".to_string()), "{:#}", report["improvements"]);
        let a = assess(&host, &all[0], 0);
        assert_eq!(a["probability_of_success_basis"], "base_rate", "{a:#}");
        let rate = (all.iter().filter(|c| c.success).count() as f64 + 1.0) / (all.len() as f64 + 2.0);
        assert!((a["probability_of_success"].as_f64().unwrap() - rate).abs() < 1e-12, "{a:#}");
        assert_eq!(a["params_versions"]["risk_levels"], 0);
        let m = call(&host, "GET", "/metrics", &[], Value::Null);
        assert_eq!(m["success_model"]["version_in_force_now"], 0, "{:#}", m["success_model"]);
        assert_eq!(m["success_model"]["in_force"], "base_rate");

        // Signal (the stated risk, the type and a factor): applied, and /assess says so.
        let dir = tempfile::tempdir().unwrap();
        let host = self::host(dir.path(), false);
        let all = cases(3000, seed);
        ingest(&host, all.iter().flat_map(|c| records(c, "w")).collect());
        let run = host.run_job("cost", "learning_cycle", "test", None, 1).unwrap();
        let report = run.report.as_ref().unwrap();
        assert!(
            applied_targets(report).contains(&"risk_levels".to_string()),
            "seed {seed}: {:#}",
            report["improvements"]
        );
        let sb = &report["workspaces"]["w"]["success_backtest"];
        assert_eq!(sb["candidate_beats_base_rate"], true, "{sb:#}");
        let levels: Vec<&str> =
            sb["candidate"]["levels"].as_array().unwrap().iter().map(|l| l["level"].as_str().unwrap()).collect();
        assert!(levels.contains(&"risk"), "{sb:#}");
        let a = assess(&host, &all[0], 0);
        assert_eq!(
            (a["probability_of_success_basis"].as_str(), a["params_versions"]["risk_levels"].as_u64()),
            (Some("success_model"), Some(1)),
            "{a:#}"
        );
    }
}

#[test]
fn predicted_vs_actual_and_history() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path(), false);
    let all = cases(200, 11);
    ingest(&host, all.iter().flat_map(|c| records(c, "w")).collect());
    let c = all.iter().find(|c| c.success).unwrap();
    let v = call(&host, "GET", &format!("/recommendations/{}", c.id), &[], Value::Null);
    assert_eq!(v["predicted_savings"], c.predicted);
    assert_eq!(v["actual_savings"], c.actual);
    let acc = v["savings_accuracy"].as_f64().unwrap();
    assert!((acc - c.actual / c.predicted).abs() < 1e-12);
    assert_eq!(v["measurement_window_days"], 30.0);
    assert!((v["days_to_savings"].as_f64().unwrap() - 30.0).abs() < 1e-9);
    assert_eq!(v["execution"]["execution_id"], format!("exec-{}", c.id));

    // Filters and paging.
    let page =
        call(&host, "GET", "/outcomes", &[("type", "rightsizing"), ("success", "false"), ("limit", "3")], Value::Null);
    let items = page["outcomes"].as_array().unwrap();
    assert!(items.iter().all(|i| i["recommendation_type"] == "rightsizing" && i["execution"]["success"] == false));
    let want = all.iter().filter(|c| c.kind == "rightsizing" && !c.success).count();
    let mut seen = items.len();
    let mut next = page["next"].as_str().map(str::to_string);
    while let Some(after) = next {
        let p = call(
            &host,
            "GET",
            "/outcomes",
            &[("type", "rightsizing"), ("success", "false"), ("limit", "3"), ("after", &after)],
            Value::Null,
        );
        seen += p["outcomes"].as_array().unwrap().len();
        next = p["next"].as_str().map(str::to_string);
    }
    assert_eq!(seen, want);

    // Success rates per type are the simulated ones, exactly.
    let rates = call(&host, "GET", "/success-rates", &[], Value::Null);
    for (kind, _) in TYPES {
        let n = all.iter().filter(|c| c.kind == kind).count();
        let s = all.iter().filter(|c| c.kind == kind && c.success).count();
        let got = rates["groups"][kind]["success_rate"].as_f64().unwrap();
        assert!((got - s as f64 / n as f64).abs() < 1e-12, "{kind}");
    }
}

#[test]
fn similar_cases_put_the_same_type_and_region_first() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path(), true);
    let all = cases(600, 5);
    ingest(&host, all.iter().flat_map(|c| records(c, "w")).collect());
    let q = &all[0];
    let v = call(&host, "GET", &format!("/recommendations/{}/similar", q.id), &[("limit", "10")], Value::Null);
    let cases = v["similar_cases"].as_array().unwrap();
    assert_eq!(cases.len(), 10);
    for c in cases {
        assert_ne!(c["recommendation_id"], q.id.as_str());
        assert_eq!(c["context"]["recommendation_type"], q.kind, "{c:#}");
        assert_eq!(c["context"]["region"], q.region, "{c:#}");
    }
    let scores: Vec<f64> = cases.iter().map(|c| c["similarity_score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");

    // Filters: only failures of another region.
    let v = call(
        &host,
        "POST",
        "/similar",
        &[("region", "ap-south-1"), ("success", "false"), ("limit", "5")],
        json!({
        "recommendation_type": "spot_instances", "resource_type": "ec2", "region": "us-east-1", "predicted_savings": 500.0}),
    );
    for c in v["similar_cases"].as_array().unwrap() {
        assert_eq!(c["context"]["region"], "ap-south-1");
        assert_eq!(c["outcome"]["success"], false);
    }

    // Assess includes similar cases.
    let a = assess(&host, q, 3);
    assert_eq!(a["similar_cases"].as_array().unwrap().len(), 3, "{a:#}");

    // The index is derived: a fresh (empty) index is refilled from the store.
    let store = host.store().clone();
    drop(host);
    std::fs::remove_dir_all(dir.path().join("vectors")).unwrap();
    let host = host_on(store, dir.path(), true);
    let v = call(&host, "GET", &format!("/recommendations/{}/similar", q.id), &[("limit", "10")], Value::Null);
    assert_eq!(v["similar_cases"].as_array().unwrap().len(), 10);
    let sync = call(&host, "POST", "/index/sync", &[], Value::Null);
    assert_eq!(sync["outcomes"], 0, "already in step: {sync:#}");
}

#[test]
fn bad_input_is_rejected_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path(), false);
    let bad = [
        (
            json!({"type": "prediction", "id": "a", "workspace": "w", "plugin": "cost", "subject": "r", "kind": "rightsizing",
                "payload": {"resource_type": "ec2", "region": "x"}}),
            "value",
        ),
        (
            json!({"type": "prediction", "id": "b", "workspace": "w", "plugin": "cost", "subject": "r", "kind": "rightsizing", "value": 5.0,
                "payload": {"resource_type": 5, "region": "x"}}),
            "payload.resource_type",
        ),
        (
            json!({"type": "prediction", "id": "c", "workspace": "w", "plugin": "cost", "subject": "r", "kind": "rightsizing", "value": -5.0,
                "payload": {"resource_type": "ec2", "region": "x"}}),
            "value",
        ),
        (
            json!({"type": "prediction", "id": "d", "workspace": "w", "plugin": "cost", "subject": "r", "kind": "rightsizing", "value": 5.0,
                "payload": {"resource_type": "ec2", "region": "x", "risk_level": "extreme"}}),
            "payload.risk_level",
        ),
    ];
    for (r, field) in bad {
        let statuses = host.ingest(vec![rec(r)], Timestamp::from_micros(T0).unwrap()).unwrap();
        match &statuses[0] {
            IngestStatus::Rejected { field: f, .. } => assert_eq!(f, field),
            other => panic!("{other:?}"),
        }
    }
    let ws = WorkspaceId::parse("workspace", "w").unwrap();
    let err = host
        .handle(
            "cost",
            &ws,
            "POST",
            "/assess",
            Default::default(),
            json!({"recommendation_type": "x", "resource_type": "y", "region": "z", "predicted_savings": -1.0}),
        )
        .unwrap_err();
    assert!(err.to_string().contains("predicted_savings"), "{err}");
    // Without a vector index, similar-case search says so (503), assess still answers.
    let err = host
        .handle(
            "cost",
            &ws,
            "POST",
            "/similar",
            Default::default(),
            json!({"recommendation_type": "x", "resource_type": "y", "region": "z", "predicted_savings": 1.0}),
        )
        .unwrap_err();
    assert!(err.to_string().contains("no embedder") || err.to_string().contains("vector"), "{err}");
}
