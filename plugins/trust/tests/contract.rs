//! The trust plugin's route contract (issue #22): every route has a unique
//! snake_case name, declares its query parameters, and answers a schema
//! made from its Rust type (a `$ref` that resolves in the manifest's
//! `schemas`); the host accepts each declared parameter at valid values
//! (and the handler answers 200 with them), refuses an undeclared one with
//! a 400 naming it and a value outside the declaration with a 422 naming
//! it; `POST /route` refuses a body field it does not know, naming it.

use std::collections::BTreeMap;

use learnloop_core::{Record, Timestamp, WorkspaceId, parse_json_record};
use learnloop_plugin_api::{Plugin, QueryParam, RouteResponse, RouteSpec};
use learnloop_plugin_host::{HostError, PluginHost};
use learnloop_plugin_trust::TrustPlugin;
use serde_json::{Value, json};

const HOUR: i64 = 3_600_000_000;
const DAY: i64 = 24 * HOUR;
const T0: i64 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z

#[test]
fn the_manifest_declares_every_route_with_typed_schemas() {
    let m = TrustPlugin::default().manifest();
    learnloop_test_support::contract::check_manifest(&m);
    // The body is the schema of the request type; the strategies are named.
    let route = m.routes.iter().find(|r| r.name == "route").unwrap();
    assert_eq!(route.request_schema["$ref"], "#/$defs/RouteBody");
    let body = &m.schemas["RouteBody"];
    assert_eq!(body["additionalProperties"], json!(false), "{body}");
    assert_eq!(body["required"], json!(["recommendation_type", "candidates"]), "{body}");
    let strategies: Vec<&Value> =
        m.schemas["Strategy"]["oneOf"].as_array().unwrap().iter().map(|v| &v["const"]).collect();
    assert_eq!(strategies, [&json!("thompson"), &json!("greedy")], "{}", m.schemas["Strategy"]);
    let probabilities = &m.schemas["Probabilities"];
    assert_eq!(probabilities["additionalProperties"]["type"], "number", "{probabilities}");
}

fn rec(v: Value) -> Record {
    parse_json_record(&v.to_string(), &Default::default()).unwrap()
}

fn time(us: i64) -> String {
    Timestamp::from_micros(us).unwrap().to_rfc3339()
}

/// Three agents over two types, 30 recommendations per agent and type,
/// every one evaluated (a fixed pattern of the index).
fn history() -> Vec<Record> {
    let mut out = Vec::new();
    let mut t = T0;
    for i in 0..30usize {
        for (a, agent) in ["alpha", "beta", "gamma"].iter().enumerate() {
            for (k, kind) in ["strategy", "content"].iter().enumerate() {
                let id = format!("r{i}-{a}-{k}");
                let approved = (i * 7 + a + k) % 10 < [9, 5, 2][a];
                out.push(rec(json!({"type": "prediction", "id": id, "workspace": "w", "plugin": "trust",
                    "subject": agent, "kind": kind, "confidence": 0.5 + 0.01 * (i % 40) as f64,
                    "payload": {"agent_name": format!("Agent {agent}"), "workflow_id": format!("wf-{}", i / 2)},
                    "event_time": time(t)})));
                out.push(rec(json!({"type": "outcome", "id": format!("{id}-eval"), "workspace": "w",
                    "plugin": "trust", "prediction_id": id, "label": if approved { "approved" } else { "rejected" },
                    "quality": if approved { 0.8 } else { 0.2 }, "event_time": time(t + HOUR)})));
                t += HOUR / 3;
            }
        }
    }
    out
}

/// Valid values of a declared parameter: both ends of a range, every
/// enumerated value, `true` and `false`, a value the data has for text
/// (`after`: a cursor the route handed out).
fn valid_values(p: &QueryParam, cursor: &str) -> Vec<String> {
    let s = &p.schema;
    if let Some(options) = s.get("enum").and_then(Value::as_array) {
        return options.iter().map(|o| o.as_str().unwrap().to_string()).collect();
    }
    match s["type"].as_str() {
        Some("integer") | Some("number") => vec![s["minimum"].to_string(), s["maximum"].to_string()],
        Some("boolean") => vec!["true".into(), "false".into()],
        _ => vec![
            match p.name.as_str() {
                "type" => "content",
                "after" => cursor,
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
        Some("number") => Some((s["maximum"].as_f64().unwrap() + 0.5).to_string()),
        Some("boolean") => Some("maybe".into()),
        Some("string") => Some(String::new()),
        _ => None,
    }
}

fn call(host: &PluginHost, r: &RouteSpec, query: &[(&str, &str)], body: Value) -> Result<RouteResponse, HostError> {
    let ws = WorkspaceId::parse("workspace", "w").unwrap();
    let path = r.path.replace("{agent}", "alpha").replace("{id}", "r3-0-1");
    let q: BTreeMap<String, String> = query.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    host.handle("trust", &ws, &r.method, &path, q, body)
}

#[test]
fn every_declared_query_parameter_is_taken_and_others_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let host = learnloop_test_support::host::host::<TrustPlugin>(dir.path(), "trust");
    learnloop_test_support::host::ingest_all(&host, history(), T0 + 400 * DAY);
    for job in ["meta_learning", "trust_recalculation"] {
        host.run_job("trust", job, "test", None, 1).unwrap();
    }
    let routes = TrustPlugin::default().manifest().routes;
    let page = routes.iter().find(|r| r.name == "list_agent_recommendations").unwrap();
    let first = call(&host, page, &[("limit", "1")], Value::Null).unwrap().body;
    let cursor = first["next"].as_str().expect("a next page").to_string();
    let body = |r: &RouteSpec| {
        if r.request_schema.is_null() {
            Value::Null
        } else {
            json!({"recommendation_type": "content", "candidates": ["alpha", "beta"], "seed": 3})
        }
    };
    for r in &routes {
        let at = format!("{} {}", r.method, r.path);
        let params = r.query.as_deref().unwrap_or_default();
        // The required parameters at a valid value, in every call.
        let required: Vec<(String, String)> = params
            .iter()
            .filter(|p| p.required)
            .map(|p| (p.name.clone(), valid_values(p, &cursor)[0].clone()))
            .collect();
        let with = |extra: Option<(&str, &str)>| -> Vec<(String, String)> {
            let mut q: Vec<(String, String)> =
                required.iter().filter(|(k, _)| Some(k.as_str()) != extra.map(|e| e.0)).cloned().collect();
            q.extend(extra.map(|(k, v)| (k.to_string(), v.to_string())));
            q
        };
        let run = |q: Vec<(String, String)>| {
            let q: Vec<(&str, &str)> = q.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            call(&host, r, &q, body(r))
        };
        let answer = run(with(None)).unwrap_or_else(|e| panic!("{at}: {e}"));
        assert_eq!(answer.status, 200, "{at}");
        for p in params {
            for v in valid_values(p, &cursor) {
                match run(with(Some((&p.name, &v)))) {
                    Ok(a) => assert_eq!(a.status, 200, "{at}?{}={v}", p.name),
                    Err(e) => panic!("{at}?{}={v}: {e}", p.name),
                }
            }
            if let Some(v) = invalid_value(p) {
                match run(with(Some((&p.name, &v)))) {
                    Err(HostError::Invalid(e)) => assert_eq!(e.field, p.name, "{at}?{}={v}", p.name),
                    other => panic!("{at}?{}={v}: expected a 422 naming it, got {other:?}", p.name),
                }
            }
            if p.required {
                match run(with(None).into_iter().filter(|(k, _)| *k != p.name).collect()) {
                    Err(HostError::Invalid(e)) => assert_eq!(e.field, p.name, "{at} without {}", p.name),
                    other => panic!("{at} without {}: expected a 422 naming it, got {other:?}", p.name),
                }
            }
        }
        match run(with(Some(("bogus", "1")))) {
            Err(HostError::BadRequest { field, message }) => {
                assert_eq!(field, "bogus", "{at}");
                assert!(message.contains("bogus"), "{at}: {message}");
            }
            other => panic!("{at}?bogus=1: expected a 400 naming bogus, got {other:?}"),
        }
    }
    // An unknown body field is refused, naming it; the strategy must be a known one.
    let route = routes.iter().find(|r| r.name == "route").unwrap();
    let refused = |body: Value, field: &str| match call(&host, route, &[], body) {
        Err(HostError::Plugin { error: learnloop_plugin_api::PluginError::Invalid { field: f, message }, .. }) => {
            assert_eq!(f, field, "{message}");
            message
        }
        other => panic!("expected a 422 naming {field}, got {other:?}"),
    };
    let m =
        refused(json!({"recommendation_type": "content", "candidates": ["alpha"], "candidate": "beta"}), "candidate");
    assert!(m.contains("unknown field"), "{m}");
    refused(json!({"recommendation_type": "content", "candidates": ["alpha"], "strategy": "random"}), "strategy");
    refused(json!({"recommendation_type": "content", "candidates": ["alpha"], "seed": -1}), "seed");
    refused(json!({"recommendation_type": "", "candidates": ["alpha"]}), "recommendation_type");
    refused(json!({"recommendation_type": "content", "candidates": ["alpha", "alpha"]}), "candidates");
    refused(json!("route this"), "body");
}
