//! Snapshots of every persona route answer and job report
//! (`tests/snapshots/`), so a change of shape — a field renamed, dropped,
//! turned from a number into null — shows up in review as a changed `.snap`
//! file. A real host and store, deterministic event times, rules only (no
//! LLM, no embedder); maps are sorted in the snapshots because key order
//! depends on serde_json features unified from other crates in the same
//! build. Update with `INSTA_UPDATE=always`, review the diff, commit.
//!
//! `declared_query_parameters_are_taken_and_no_others` walks the manifest:
//! every declared query parameter, at each kind of valid value, is taken
//! by its route, and an undeclared one is refused with a 400 naming it.

use learnloop_core::{Record, Timestamp, parse_json_record};
use learnloop_plugin_api::{Plugin, QueryParam};
use learnloop_plugin_host::{HostError, PluginHost};
use serde_json::{Value, json};

const HOUR: i64 = 3_600_000_000;
const DAY: i64 = 24 * HOUR;
const T0: i64 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z

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

fn env(section: &str) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store = learnloop_test_support::store::test_store(dir.path(), &learnloop_test_support::store::fast());
    let host = learnloop_test_support::host::host_on::<learnloop_plugin_persona::PersonaPlugin>(
        store,
        dir.path(),
        "persona",
        section,
    );
    Env { host, _dir: dir }
}

impl Env {
    fn ingest(&self, records: Vec<Record>) {
        learnloop_test_support::host::ingest_all(&self.host, records, T0 + 1000 * DAY);
    }

    fn call(&self, method: &str, path: &str, query: &[(&str, &str)], body: Value) -> Value {
        learnloop_test_support::host::call(&self.host, "persona", "w", method, path, query, body)
    }

    fn get(&self, path: &str, query: &[(&str, &str)]) -> Value {
        self.call("GET", path, query, Value::Null)
    }

    /// Hypothesize, then execute hypothesis `pick` as a client would.
    fn interact(&self, user: &str, id: &str, input: &str, pick: &str, t: i64) -> Value {
        let h = self.call("POST", "/hypothesize", &[], json!({"user_id": user, "input_text": input}));
        let mut record = h["execute"]["record"].clone();
        record["id"] = json!(id);
        record["workspace"] = json!("w");
        record["label"] = json!(pick);
        record["event_time"] = json!(time(t));
        self.ingest(vec![rec(record)]);
        h
    }

    /// The plugin's own report of a job (the host wraps it per workspace).
    fn job(&self, job: &str) -> Value {
        let run = self.host.run_job("persona", job, "test", None, 1).unwrap();
        let report = run.report.unwrap_or_else(|| panic!("{job}: no report ({:?})", run.error));
        report["workspaces"]["w"].clone()
    }
}

/// Sorted maps (see the module docs).
fn snap(name: &str, v: &Value) {
    let mut s = insta::Settings::clone_current();
    s.set_sort_maps(true);
    s.set_snapshot_path("snapshots");
    s.set_prepend_module_to_snapshot(false);
    s.bind(|| insta::assert_json_snapshot!(name, v));
}

/// Responses by two models on two task types with thumbs and stars, morning
/// code and evening writing, for one user.
fn feedback_history(user: &str) -> Vec<Record> {
    let mut out = Vec::new();
    for i in 0..40i64 {
        let code = i % 2 == 0;
        let task = if code { "code_generation" } else { "writing" };
        let t = T0 + 2 * DAY + (i / 2) * DAY + if code { 9 * HOUR } else { 19 * HOUR };
        let model = if i % 3 == 0 { "claude" } else { "gpt-4" };
        let likes = (model == "gpt-4") == code;
        out.push(rec(
            json!({"type": "prediction", "id": format!("{user}-r{i}"), "workspace": "w", "plugin": "persona",
            "subject": user, "kind": task, "label": model, "payload": {"response_length": 100 + i % 7},
            "event_time": time(t)}),
        ));
        let fb = if i % 4 == 0 {
            json!({"label": "rating", "value": if likes { 5 } else { 2 }, "feedback": "stars"})
        } else {
            json!({"label": if likes { "thumbs_up" } else { "thumbs_down" }})
        };
        let mut o = json!({"type": "outcome", "id": format!("{user}-f{i}"), "workspace": "w", "plugin": "persona",
            "prediction_id": format!("{user}-r{i}"), "event_time": time(t + 60_000_000)});
        o.as_object_mut().unwrap().extend(fb.as_object().unwrap().clone());
        out.push(rec(o));
    }
    out
}

#[test]
fn every_route_answer_and_job_report() {
    let e = env("");
    snap("empty_users", &e.get("/users", &[]));
    snap("empty_stats", &e.get("/stats", &[]));
    snap("empty_training_stats", &e.get("/training/stats", &[]));
    snap("empty_job_preference_update", &e.job("preference_update"));
    snap("job_memory_decay_disabled", &e.job("memory_decay"));
    snap("empty_job_enrich", &e.job("enrich"));

    let h = e.interact("user123", "i1", "build api", "h1", T0 + 9 * HOUR);
    snap("hypothesize_first", &h);
    e.interact("user123", "i2", "deploy api using docker", "h2", T0 + 10 * HOUR);
    e.interact("user123", "i3", "I prefer podman instead of docker for the api", "h1", T0 + 11 * HOUR);
    snap(
        "hypothesize_with_task",
        &e.call(
            "POST",
            "/hypothesize",
            &[],
            json!({"user_id": "user123", "input_text": "write auth for the api", "task_type": "code_generation"}),
        ),
    );
    snap(
        "hypothesize_new_user",
        &e.call("POST", "/hypothesize", &[], json!({"user_id": "stranger", "input_text": "explain rust lifetimes"})),
    );
    // A failed interaction undoes its facet changes.
    e.ingest(vec![rec(json!({"type": "outcome", "id": "i2-fail", "workspace": "w", "plugin": "persona",
        "prediction_id": "i2", "success": false, "event_time": time(T0 + 12 * HOUR)}))]);
    e.ingest(feedback_history("user123"));
    // A response whose feedback has no event time, and a user with only feedback.
    e.ingest(vec![
        rec(json!({"type": "prediction", "id": "untimed", "workspace": "w", "plugin": "persona", "subject": "quiet",
            "kind": "writing", "payload": {"model": "llama3"}})),
        rec(json!({"type": "outcome", "id": "untimed-f", "workspace": "w", "plugin": "persona",
            "prediction_id": "untimed", "quality": 0.3})),
    ]);

    snap("users", &e.get("/users", &[]));
    snap("user", &e.get("/users/user123", &[]));
    snap("user_quiet", &e.get("/users/quiet", &[]));
    snap("memories", &e.get("/users/user123/memories", &[]));
    snap("memories_query", &e.get("/users/user123/memories", &[("q", "docker api"), ("limit", "3")]));
    snap(
        "memories_superseded",
        &e.get("/users/user123/memories", &[("type", "preference"), ("include_superseded", "1")]),
    );
    snap("memories_history", &e.get("/users/user123/memories", &[("type", "HISTORY"), ("min_similarity", "0.5")]));
    snap("updates", &e.get("/users/user123/updates", &[]));
    snap("updates_limit", &e.get("/users/user123/updates", &[("limit", "1")]));
    snap("preferences", &e.get("/users/user123/preferences", &[]));
    snap("preferences_quiet", &e.get("/users/quiet/preferences", &[]));
    snap("next_activity", &e.get("/users/user123/next-activity", &[]));
    snap("next_activity_at", &e.get("/users/user123/next-activity", &[("at", "2026-03-01T09:30:00Z")]));
    snap("training_stats", &e.get("/training/stats", &[]));
    snap("training_hypotheses", &e.get("/training/hypotheses", &[]));
    snap("training_hypotheses_page", &e.get("/training/hypotheses", &[("limit", "2")]));
    let first = e.get("/training/hypotheses", &[("limit", "2")]);
    let after = first["next"].as_str().unwrap().to_string();
    snap("training_hypotheses_next_page", &e.get("/training/hypotheses", &[("limit", "2"), ("after", &after)]));
    snap("training_hypotheses_jsonl", &e.get("/training/hypotheses", &[("format", "jsonl")]));
    snap("training_persona_updates", &e.get("/training/persona-updates", &[]));
    snap("training_persona_updates_jsonl", &e.get("/training/persona-updates", &[("format", "jsonl"), ("limit", "1")]));
    snap("training_dataset", &e.get("/training/dataset", &[]));
    snap("training_dataset_min", &e.get("/training/dataset", &[("min_confidence", "0.76"), ("format", "jsonl")]));
    snap("stats", &e.get("/stats", &[]));
    snap("job_preference_update", &e.job("preference_update"));
    snap("job_memory_decay_disabled_after", &e.job("memory_decay"));
    // Without an LLM the enrich job finds no answer: the rules' analysis stands.
    snap("job_enrich", &e.job("enrich"));
    snap("user_after_enrich", &e.get("/users/user123", &[]));
    snap("stats_after_enrich", &e.get("/stats", &[]));
}

#[test]
fn memory_decay_report_and_expired_memories() {
    let e = env("memory_half_life_days = 10.0\nmin_memory_confidence = 0.2\ntraining_data = false");
    e.interact("u", "a", "build api", "h1", T0);
    e.interact("u", "b", "write docs please", "h2", T0 + 30 * DAY);
    snap("decay_job_memory_decay", &e.job("memory_decay"));
    snap("decay_user", &e.get("/users/u", &[]));
    snap("decay_memories_all", &e.get("/users/u/memories", &[("include_superseded", "true")]));
    snap("decay_training_stats", &e.get("/training/stats", &[]));
    snap("decay_training_hypotheses", &e.get("/training/hypotheses", &[]));
}

/// Values of a declared query parameter that its schema admits: each enum
/// value, both bounds of a number, both booleans, a time, and for text a
/// value of the shape the handler reads.
fn valid_values(p: &QueryParam) -> Vec<String> {
    let s = &p.schema;
    if let Some(options) = s.get("enum").and_then(Value::as_array) {
        return options.iter().map(|o| o.as_str().unwrap().to_string()).collect();
    }
    let bound = |k: &str| s[k].as_f64().unwrap().to_string();
    match (s["type"].as_str().unwrap(), p.name.as_str()) {
        ("integer" | "number", _) => vec![bound("minimum"), bound("maximum")],
        ("boolean", _) => vec!["true".into(), "false".into(), "1".into(), "0".into()],
        ("string", _) if s["format"] == "date-time" => vec!["2026-03-01T09:30:00Z".into()],
        ("string", "type") => vec!["GOAL".into(), "preference".into(), "History".into()],
        ("string", "after") => vec!["0000000000000000".into()],
        ("string", "q") => vec!["docker".into(), String::new()],
        other => panic!("{}: no valid value for the schema {s} ({other:?})", p.name),
    }
}

#[test]
fn declared_query_parameters_are_taken_and_no_others() {
    let e = env("");
    e.interact("user123", "i1", "deploy api using docker", "h1", T0 + 9 * HOUR);
    e.ingest(feedback_history("user123"));
    let ws = learnloop_core::WorkspaceId::parse("", "w").unwrap();
    let manifest = learnloop_plugin_persona::PersonaPlugin::default().manifest();
    for route in &manifest.routes {
        let path = route.path.replace("{user}", "user123");
        let params = route.query.as_ref().unwrap_or_else(|| panic!("{} declares no query", route.name));
        let body = if route.method == "POST" { json!({"user_id": "user123", "input_text": "x"}) } else { Value::Null };
        let send = |extra: (String, String)| {
            let q = std::collections::BTreeMap::from([extra]);
            e.host.handle("persona", &ws, &route.method, &path, q, body.clone())
        };
        for p in params {
            assert!(!p.required, "{}: {} is required", route.name, p.name);
            for v in valid_values(p) {
                let r = send((p.name.clone(), v.clone()));
                assert!(r.is_ok(), "{} {path}?{}={v}: {:?}", route.method, p.name, r.err());
            }
        }
        match send(("bogus".into(), "1".into())) {
            Err(HostError::BadRequest { field, message }) => {
                assert_eq!(field, "bogus", "{} {path}", route.method);
                assert!(message.contains("bogus"), "{message}");
            }
            other => panic!("{} {path}?bogus=1: {other:?}", route.method),
        }
    }
}
