//! Snapshots of every trust route answer and job report (`tests/snapshots/`),
//! so a change of shape — a field renamed, dropped, turned from a number
//! into null — shows up in review as a changed `.snap` file. A real host and
//! store, deterministic event times and seeds; maps are sorted in the
//! snapshots because key order depends on serde_json features unified from
//! other crates in the same build. Update with `INSTA_UPDATE=always`, review
//! the diff, commit.

use learnloop_core::{Record, Timestamp, parse_json_record};
use learnloop_plugin_host::PluginHost;
use serde_json::{Value, json};

const HOUR: i64 = 3_600_000_000;
const DAY: i64 = 24 * HOUR;
const T0: i64 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z
const TYPES: [&str; 2] = ["strategy", "content"];

fn rec(v: Value) -> Record {
    parse_json_record(&v.to_string(), &Default::default()).unwrap()
}

fn time(us: i64) -> String {
    Timestamp::from_micros(us).unwrap().to_rfc3339()
}

struct Env {
    host: PluginHost,
    _dir: tempfile::TempDir,
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let host = learnloop_test_support::host::host::<learnloop_plugin_trust::TrustPlugin>(dir.path(), "trust");
    Env { host, _dir: dir }
}

impl Env {
    fn ingest(&self, records: Vec<Record>) {
        learnloop_test_support::host::ingest_all(&self.host, records, T0 + 400 * DAY);
    }

    fn call(&self, method: &str, path: &str, query: &[(&str, &str)], body: Value) -> Value {
        learnloop_test_support::host::call(&self.host, "trust", "w", method, path, query, body)
    }

    fn get(&self, path: &str, query: &[(&str, &str)]) -> Value {
        self.call("GET", path, query, Value::Null)
    }

    /// The plugin's own report of a job (the host wraps it per workspace).
    fn job(&self, job: &str, attempt: u32) -> Value {
        let run = self.host.run_job("trust", job, "test", None, attempt).unwrap();
        let report = run.report.unwrap_or_else(|| panic!("{job}: no report ({:?})", run.error));
        report["workspaces"]["w"].clone()
    }
}

/// Three agents (one strong, one middling, one weak on `content`) over two
/// types, 40 recommendations per agent and type, two of them still pending,
/// and some shared workflow actions (consensus). Outcomes are a fixed
/// pattern of the index, so nothing depends on a random generator.
fn history() -> Vec<Record> {
    let mut out = Vec::new();
    let mut t = T0;
    for i in 0..40 {
        for (a, agent) in ["alpha", "beta", "gamma"].iter().enumerate() {
            for (k, kind) in TYPES.iter().enumerate() {
                let id = format!("r{i}-{a}-{k}");
                // alpha: 9 in 10 approved; beta: 6 in 10; gamma: 8 in 10 on strategy, 2 in 10 on content.
                let approved_in_10 = match (a, k) {
                    (0, _) => 9,
                    (1, _) => 6,
                    (2, 0) => 8,
                    _ => 2,
                };
                let approved = (i * 7 + a + k) % 10 < approved_in_10;
                let content = if i % 4 == 0 { format!("{kind}-shared-{i}") } else { format!("{kind}-{id}") };
                out.push(rec(json!({"type": "prediction", "id": id, "workspace": "w", "plugin": "trust",
                    "subject": agent, "kind": kind, "confidence": 0.5 + 0.01 * ((i * 3 + a) % 50) as f64,
                    "label": format!("{kind} action {id}"),
                    "payload": {"agent_name": format!("Agent {agent}"), "workflow_id": format!("wf-{}", i / 2),
                                "correlation_id": id, "content": content, "reasoning": "fixed", "evidence": {}},
                    "event_time": time(t)})));
                if i == 39 && a == 1 {
                    // Never evaluated: stays open (timeliness, cleanup).
                } else {
                    let label = if i % 13 == 5 {
                        "partial"
                    } else if approved {
                        "approved"
                    } else {
                        "rejected"
                    };
                    let quality = if approved { 0.7 + 0.005 * (i % 40) as f64 } else { 0.1 + 0.005 * (i % 40) as f64 };
                    out.push(rec(json!({"type": "outcome", "id": format!("{id}-eval"), "workspace": "w",
                        "plugin": "trust", "prediction_id": id, "label": label, "quality": quality,
                        "feedback": "fixed", "payload": {"quality_scores": {"accuracy": quality * 100.0}},
                        "event_time": time(t + (1 + (i as i64 % 5)) * HOUR)})));
                }
                t += HOUR / 3;
            }
        }
    }
    // A recommendation sent without an event time has none for timeliness.
    out.push(rec(json!({"type": "prediction", "id": "no-time", "workspace": "w", "plugin": "trust",
        "subject": "delta", "kind": "strategy", "label": "untimed"})));
    out.push(rec(json!({"type": "outcome", "id": "no-time-eval", "workspace": "w", "plugin": "trust",
        "prediction_id": "no-time", "label": "pending"})));
    out
}

/// A route answer without a seed in its request: the seed is a hash of the
/// request body's JSON text, whose key order depends on serde_json features
/// (see the module docs), so the seed and the draws are redacted.
fn snap_unseeded(name: &str, v: &Value) {
    let mut v = v.clone();
    assert!(v["seed"].is_u64(), "{v}");
    v["seed"] = json!("[hash of the request body]");
    for r in v["ranking"].as_array_mut().unwrap() {
        if !r["sample"].is_null() {
            r["sample"] = json!("[draw]");
        }
    }
    snap(name, &v);
}

/// Sorted maps (see the module docs); the opaque page cursor is redacted.
fn snap(name: &str, v: &Value) {
    let mut s = insta::Settings::clone_current();
    s.set_sort_maps(true);
    s.set_snapshot_path("snapshots");
    s.set_prepend_module_to_snapshot(false);
    s.bind(|| {
        insta::assert_json_snapshot!(name, v, {
            ".next" => insta::dynamic_redaction(|v, _| if v.is_nil() { v } else { "[cursor]".into() }),
        });
    });
}

#[test]
fn every_route_answer_and_job_report() {
    let e = env();
    // Before anything is known.
    snap("empty_agents", &e.get("/agents", &[]));
    snap("empty_patterns", &e.get("/patterns", &[]));
    snap("empty_rules", &e.get("/rules", &[]));
    snap("empty_learning_status", &e.get("/learning/status", &[]));
    snap("empty_stats", &e.get("/stats", &[]));
    snap("unknown_agent_boost", &e.get("/agents/nobody/boost", &[("type", "strategy")]));

    e.ingest(history());
    snap("agents", &e.get("/agents", &[]));
    snap("agent_profile", &e.get("/agents/gamma", &[]));
    snap("agent_untimed", &e.get("/agents/delta", &[]));
    snap("agent_recommendations_page", &e.get("/agents/beta/recommendations", &[("limit", "2")]));
    snap(
        "agent_recommendations_by_type",
        &e.get("/agents/beta/recommendations", &[("type", "content"), ("limit", "1")]),
    );
    snap("recommendation", &e.get("/recommendations/r3-2-1", &[]));
    snap("recommendation_open", &e.get("/recommendations/r39-1-0", &[]));
    snap("boost", &e.get("/agents/alpha/boost", &[("type", "content")]));
    snap("trusted", &e.get("/trusted", &[]));
    snap("trusted_threshold", &e.get("/trusted", &[("threshold", "0.2")]));
    let candidates = json!(["alpha", "beta", "gamma", "newcomer"]);
    snap(
        "route_thompson",
        &e.call(
            "POST",
            "/route",
            &[],
            json!({"recommendation_type": "content", "candidates": candidates, "strategy": "thompson", "seed": 7}),
        ),
    );
    snap_unseeded(
        "route_greedy",
        &e.call(
            "POST",
            "/route",
            &[],
            json!({"recommendation_type": "strategy", "candidates": candidates, "strategy": "greedy"}),
        ),
    );
    snap_unseeded(
        "route_default",
        &e.call("POST", "/route", &[], json!({"recommendation_type": "content", "candidates": ["beta", "gamma"]})),
    );
    snap("learning_status_before_jobs", &e.get("/learning/status", &[]));

    snap("job_pattern_refresh", &e.job("pattern_refresh", 1));
    snap("job_meta_learning", &e.job("meta_learning", 1));
    snap("job_trust_recalculation", &e.job("trust_recalculation", 1));
    snap("job_trust_recalculation_again", &e.job("trust_recalculation", 2));
    snap("job_cleanup", &e.job("cleanup", 1));

    snap("patterns", &e.get("/patterns", &[]));
    snap("patterns_category", &e.get("/patterns", &[("category", "failure_avoidance")]));
    snap("rules", &e.get("/rules", &[]));
    snap("rules_type", &e.get("/rules", &[("type", "content")]));
    snap("learning_status", &e.get("/learning/status", &[]));
    snap("stats", &e.get("/stats", &[]));
    snap("agents_after_jobs", &e.get("/agents", &[]));
    snap(
        "route_after_jobs",
        &e.call(
            "POST",
            "/route",
            &[],
            json!({"recommendation_type": "content", "candidates": candidates, "strategy": "greedy", "seed": 1}),
        ),
    );
}
