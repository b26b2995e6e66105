//! The cost plugin's route contract (issue #22): every route has a unique
//! snake_case name, declares its query parameters, and answers a schema
//! made from its Rust type (a `$ref` that resolves in the manifest's
//! `schemas`); the host accepts each declared parameter at valid values
//! (and the handler answers 200 with them), refuses an undeclared one with
//! a 400 naming it and a value outside the declaration with a 422 naming it.

use std::collections::BTreeMap;
use std::sync::Arc;

use learnloop_core::{Record, Timestamp, WorkspaceId, parse_json_record};
use learnloop_plugin_api::{Plugin, QueryParam, RouteSpec};
use learnloop_plugin_cost::CostPlugin;
use learnloop_plugin_host::{HostError, PluginHost, Services};
use learnloop_vector::{EdgeBackend, KnowledgeStore, StructuredEmbedder};
use serde_json::{Value, json};

const DAY: i64 = 86_400_000_000;
const T0: i64 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z

#[test]
fn the_manifest_declares_every_route_with_typed_schemas() {
    let m = CostPlugin::default().manifest();
    learnloop_test_support::contract::check_manifest(&m);
    // The bodies are schemas of the request type, the answers of the answer types.
    let assess = m.routes.iter().find(|r| r.name == "assess").unwrap();
    let proposal = &m.schemas["Proposal"];
    assert_eq!(proposal["additionalProperties"], json!(false), "{proposal}");
    assert_eq!(proposal["properties"]["risk_level"]["default"], "medium", "{proposal}");
    assert_eq!(assess.response_schema["$ref"], "#/$defs/Assessment");
    let similar = m.routes.iter().find(|r| r.name == "similar_to_recommendation").unwrap();
    assert_eq!(
        similar.query.as_ref().unwrap()[0],
        QueryParam::integer("limit", "similar cases to return (default 10)", 1, 100)
    );
}

fn rec(v: Value) -> Record {
    parse_json_record(&v.to_string(), &Default::default()).unwrap()
}

fn time(us: i64) -> String {
    Timestamp::from_micros(us).unwrap().to_rfc3339()
}

/// 60 recommendations of two types, all executed, the successful ones measured.
fn stream() -> Vec<Record> {
    let mut out = Vec::new();
    for i in 0..60i64 {
        let kind = ["rightsizing", "spot_instances"][(i % 2) as usize];
        let id = format!("rec-{i:04}");
        let t = T0 + i * DAY;
        let ok = i % 5 != 0;
        let region = ["us-east-1", "eu-west-1"][(i % 3 % 2) as usize];
        out.push(rec(json!({
            "type": "prediction", "id": id, "workspace": "w", "plugin": "cost", "subject": format!("ec2-{i}"),
            "kind": kind, "value": 100.0 + i as f64, "confidence": 0.8, "features": {"readiness": (i % 10) as f64 / 10.0},
            "payload": {"resource_type": "ec2", "region": region, "risk_level": "medium"},
            "event_time": time(t),
        })));
        out.push(rec(json!({
            "type": "outcome", "id": format!("{id}-exec"), "workspace": "w", "plugin": "cost", "prediction_id": id,
            "success": ok, "payload": {"issues_encountered": if ok { vec![] } else { vec!["timeout"] }},
            "event_time": time(t + DAY),
        })));
        if ok {
            out.push(rec(json!({
                "type": "outcome", "id": format!("{id}-savings"), "workspace": "w", "plugin": "cost",
                "prediction_id": id, "value": 0.8 * (100.0 + i as f64), "event_time": time(t + 31 * DAY),
            })));
        }
    }
    out
}

/// Valid values of a declared parameter: both ends of a range, every
/// enumerated value, `true` and `false`, a value the data has for text.
fn valid_values(p: &QueryParam) -> Vec<String> {
    let s = &p.schema;
    if let Some(options) = s.get("enum").and_then(Value::as_array) {
        return options.iter().map(|o| o.as_str().unwrap().to_string()).collect();
    }
    match s["type"].as_str() {
        Some("integer") | Some("number") => vec![s["minimum"].to_string(), s["maximum"].to_string()],
        Some("boolean") => vec!["true".into(), "false".into()],
        _ => vec![
            match p.name.as_str() {
                "type" => "rightsizing",
                "resource_type" => "ec2",
                "region" => "us-east-1",
                "risk_level" => "medium",
                "after" => "rec-0003",
                other => panic!("no sample value for the text parameter {other}"),
            }
            .to_string(),
        ],
    }
}

/// A value the declaration does not admit, when there is one.
fn invalid_value(p: &QueryParam) -> Option<String> {
    let s = &p.schema;
    if s.get("enum").is_some() {
        return Some("none-of-these".into());
    }
    match s["type"].as_str() {
        Some("integer") => Some((s["maximum"].as_i64().unwrap() + 1).to_string()),
        Some("number") => Some("NaN".into()),
        Some("boolean") => Some("maybe".into()),
        Some("string") => Some(String::new()),
        _ => None,
    }
}

fn host(dir: &std::path::Path) -> PluginHost {
    let host = learnloop_test_support::host::host::<CostPlugin>(dir, "cost");
    let backend = EdgeBackend::open(&dir.join("vectors")).unwrap();
    let ks = KnowledgeStore::new(Arc::new(backend), "learnloop", StructuredEmbedder::ID, StructuredEmbedder::DIMS);
    host.with_services(Services {
        vectors: Some(Arc::new(ks)),
        embedder: Some(Arc::new(StructuredEmbedder)),
        llm: None,
    })
}

/// The route's path with its parameters filled in, and a body if it takes one.
fn request(r: &RouteSpec) -> (String, Value) {
    let path = r.path.replace("{id}", "rec-0007");
    let body = if r.request_schema.is_null() {
        Value::Null
    } else {
        json!({"recommendation_type": "spot_instances", "resource_type": "ec2", "region": "eu-west-1", "predicted_savings": 500.0})
    };
    (path, body)
}

#[test]
fn every_declared_query_parameter_is_taken_and_others_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path());
    learnloop_test_support::host::ingest_all(&host, stream(), T0 + 1000 * DAY);
    host.run_job("cost", "learning_cycle", "test", None, 1).unwrap();
    let ws = WorkspaceId::parse("workspace", "w").unwrap();
    let call = |r: &RouteSpec, query: &[(&str, &str)]| {
        let (path, body) = request(r);
        let q: BTreeMap<String, String> = query.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        host.handle("cost", &ws, &r.method, &path, q, body)
    };
    for r in CostPlugin::default().manifest().routes {
        let at = format!("{} {}", r.method, r.path);
        let answer = call(&r, &[]).unwrap_or_else(|e| panic!("{at}: {e}"));
        assert_eq!(answer.status, 200, "{at}");
        for p in r.query.iter().flatten() {
            for v in valid_values(p) {
                match call(&r, &[(&p.name, &v)]) {
                    Ok(a) => assert_eq!(a.status, 200, "{at}?{}={v}", p.name),
                    Err(e) => panic!("{at}?{}={v}: {e}", p.name),
                }
            }
            if let Some(v) = invalid_value(p) {
                match call(&r, &[(&p.name, &v)]) {
                    Err(HostError::Invalid(e)) => assert_eq!(e.field, p.name, "{at}?{}={v}", p.name),
                    other => panic!("{at}?{}={v}: expected a 422 naming it, got {other:?}", p.name),
                }
            }
        }
        match call(&r, &[("bogus", "1")]) {
            Err(HostError::BadRequest { field, message }) => {
                assert_eq!(field, "bogus", "{at}");
                assert!(message.contains("bogus"), "{at}: {message}");
            }
            other => panic!("{at}?bogus=1: expected a 400 naming bogus, got {other:?}"),
        }
    }
}
