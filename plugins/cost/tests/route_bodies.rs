//! Snapshots of every cost route's answer and of the learning cycle's
//! report, on a small deterministic stream (fixed seed, fixed event times),
//! so that a change in the shape of what the plugin serves shows up in
//! review as a changed `.snap` file under `tests/snapshots/`.
//!
//! Update after an intended change: `INSTA_UPDATE=always cargo test -p
//! learnloop-plugin-cost --test route_bodies`, then review the diff.

use std::sync::Arc;

use learnloop_core::{Record, Timestamp, parse_json_record};
use learnloop_plugin_host::{PluginHost, Services};
use learnloop_stats::SplitMix64 as Rng;
use learnloop_vector::{EdgeBackend, KnowledgeStore, StructuredEmbedder};
use serde_json::{Value, json};

const DAY: i64 = 86_400_000_000;
const T0: i64 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z

fn rec(v: Value) -> Record {
    parse_json_record(&v.to_string(), &Default::default()).unwrap()
}

fn time(us: i64) -> String {
    Timestamp::from_micros(us).unwrap().to_rfc3339()
}

/// 400 recommendations over 160 days, with executions and measured savings.
fn stream() -> Vec<Record> {
    let mut rng = Rng::new(2026);
    let mut out = Vec::new();
    for i in 0..400i64 {
        let kind = ["rightsizing", "spot_instances", "storage_tiering"][(rng.next_u64() % 3) as usize];
        let region = ["us-east-1", "eu-west-1"][(rng.next_u64() % 2) as usize];
        let resource = ["ec2", "rds"][(rng.next_u64() % 2) as usize];
        let risk = ["low", "medium", "high"][(rng.next_u64() % 3) as usize];
        let predicted = (100.0 + 900.0 * rng.uniform()).round();
        let readiness = (rng.uniform() * 100.0).round() / 100.0;
        let fail = rng.uniform() < if kind == "spot_instances" { 0.4 } else { 0.08 } * (1.5 - readiness);
        let factor = match kind {
            "rightsizing" => 0.8,
            "spot_instances" => 0.6,
            _ => 1.05,
        } * (0.1 * rng.normal()).exp();
        let t = T0 + i * DAY * 2 / 5;
        let id = format!("rec-{i:04}");
        out.push(rec(json!({
            "type": "prediction", "id": id, "workspace": "w", "plugin": "cost", "subject": format!("{resource}-{i}"),
            "kind": kind, "value": predicted, "confidence": 0.8,
            "features": {"readiness": readiness},
            "payload": {"resource_type": resource, "region": region, "risk_level": risk},
            "event_time": time(t),
        })));
        out.push(rec(json!({
            "type": "outcome", "id": format!("{id}-exec"), "workspace": "w", "plugin": "cost", "prediction_id": id,
            "success": !fail,
            "payload": {"execution_id": format!("exec-{i}"), "execution_duration_seconds": 60.0 + (i % 7) as f64,
                        "issues_encountered": if fail { vec!["capacity_unavailable"] } else { vec![] },
                        "post_execution_metrics": {"cpu_p95": 0.5}},
            "event_time": time(t + DAY),
        })));
        if !fail {
            out.push(rec(json!({
                "type": "outcome", "id": format!("{id}-savings"), "workspace": "w", "plugin": "cost", "prediction_id": id,
                "value": (predicted * factor * 100.0).round() / 100.0, "event_time": time(t + 31 * DAY),
            })));
        }
    }
    out
}

fn call(host: &PluginHost, method: &str, path: &str, query: &[(&str, &str)], body: Value) -> Value {
    learnloop_test_support::host::call(host, "cost", "w", method, path, query, body)
}

#[test]
fn route_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let host = learnloop_test_support::host::host::<learnloop_plugin_cost::CostPlugin>(dir.path(), "cost");
    let backend = EdgeBackend::open(&dir.path().join("vectors")).unwrap();
    let ks = KnowledgeStore::new(Arc::new(backend), "learnloop", StructuredEmbedder::ID, StructuredEmbedder::DIMS);
    let host = host.with_services(Services {
        vectors: Some(Arc::new(ks)),
        embedder: Some(Arc::new(StructuredEmbedder)),
        llm: None,
    });
    // Keys sorted: serde_json keeps insertion order only in builds where a
    // dependency turns on its `preserve_order` feature.
    let mut settings = insta::Settings::clone_current();
    settings.set_sort_maps(true);
    settings.bind(|| {
        learnloop_test_support::host::ingest_all(&host, stream(), T0 + 1000 * DAY);

        let run = host.run_job("cost", "learning_cycle", "test", None, 1).unwrap();
        insta::assert_json_snapshot!("learning_cycle_report", run.report.as_ref().unwrap()["workspaces"]["w"]);

        let proposal = json!({
            "recommendation_type": "spot_instances", "resource_type": "ec2", "region": "eu-west-1",
            "predicted_savings": 500.0, "risk_level": "medium", "scoring_factors": {"readiness": 0.4}, "similar_cases": 3,
        });
        // POST /similar takes `limit` in the query, not `similar_cases`.
        let mut similar_body = proposal.clone();
        similar_body.as_object_mut().unwrap().remove("similar_cases");
        /// Snapshot name, method, path, query, body.
        type Route<'a> = (&'a str, &'a str, &'a str, Vec<(&'a str, &'a str)>, Value);
        let routes: Vec<Route> = vec![
            ("assess", "POST", "/assess", vec![], proposal.clone()),
            ("recommendation", "GET", "/recommendations/rec-0007", vec![], Value::Null),
            ("recommendation_similar", "GET", "/recommendations/rec-0007/similar", vec![("limit", "3")], Value::Null),
            ("similar", "POST", "/similar", vec![("limit", "3"), ("success", "false")], similar_body),
            ("outcomes", "GET", "/outcomes", vec![("limit", "3"), ("type", "rightsizing")], Value::Null),
            ("success_rates", "GET", "/success-rates", vec![("by", "region")], Value::Null),
            ("accuracy", "GET", "/accuracy", vec![], Value::Null),
            ("accuracy_of_type", "GET", "/accuracy", vec![("type", "spot_instances")], Value::Null),
            ("analysis", "GET", "/analysis", vec![], Value::Null),
            ("insights", "GET", "/insights", vec![("limit", "5")], Value::Null),
            ("metrics", "GET", "/metrics", vec![], Value::Null),
            ("params", "GET", "/params", vec![], Value::Null),
            ("index_sync", "POST", "/index/sync", vec![], Value::Null),
        ];
        for (name, method, path, query, body) in routes {
            let answer = call(&host, method, path, &query, body);
            insta::assert_json_snapshot!(name, answer);
        }
    });
}

/// A recommendation, its execution and its measured savings all sent
/// without `event_time`: the plugin has no client time for them, so the
/// answers say `null` (not 1970-01-01) and no time to savings is made up.
#[test]
fn records_without_event_times_have_no_dates() {
    let dir = tempfile::tempdir().unwrap();
    let host = learnloop_test_support::host::host::<learnloop_plugin_cost::CostPlugin>(dir.path(), "cost");
    let records = vec![
        rec(json!({"type": "prediction", "id": "r1", "workspace": "w", "plugin": "cost", "subject": "ec2-1",
                   "kind": "rightsizing", "value": 100.0, "payload": {"resource_type": "ec2", "region": "eu-west-1"}})),
        rec(json!({"type": "outcome", "id": "r1-exec", "workspace": "w", "plugin": "cost", "prediction_id": "r1",
                   "success": true})),
        rec(json!({"type": "outcome", "id": "r1-savings", "workspace": "w", "plugin": "cost", "prediction_id": "r1",
                   "value": 90.0})),
    ];
    learnloop_test_support::host::ingest_all(&host, records, T0);
    let v = call(&host, "GET", "/recommendations/r1", &[], Value::Null);
    assert_eq!(v["execution"]["success"], true, "{v}");
    assert_eq!(v["recommended_at"], Value::Null, "{v}");
    assert_eq!(v["execution"]["executed_at"], Value::Null, "{v}");
    assert_eq!(v["measured_at"], Value::Null, "{v}");
    assert_eq!(v["days_to_savings"], Value::Null, "{v}");
    assert_eq!(v["actual_savings"], 90.0, "{v}");
}
