//! Events per second of the persona plugin on the rule-based path, through
//! the real plugin host and SQLite store (the cost of a stored event plus
//! its online update): executed interactions, responses with feedback, and
//! `POST /hypothesize` calls. mem0-style LLM memory writes take seconds per
//! event; the rule path must stay well under a millisecond.
//!
//! `cargo bench -p learnloop-plugin-persona --bench persona_events [-- N]`
//! (N interactions and N responses with feedback; default 20000). Prints
//! numbers; asserts nothing about speed.

use std::time::Instant;

use learnloop_core::{Record, Timestamp, WorkspaceId, parse_json_record};
use learnloop_plugin_host::IngestStatus;
use serde_json::json;

const T0: i64 = 1_767_225_600_000_000;
const MIN: i64 = 60_000_000;

fn rec(v: serde_json::Value) -> Record {
    parse_json_record(&v.to_string(), &Default::default()).unwrap()
}

fn time(us: i64) -> String {
    Timestamp::from_micros(us).unwrap().to_rfc3339()
}

fn main() {
    let n: i64 = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(20_000);
    let users = 200;
    let dir = tempfile::tempdir().unwrap();
    let store = learnloop_test_support::store::bench_store(dir.path());
    let section = if std::env::var_os("NO_TRAINING").is_some() { "training_data = false" } else { "" };
    let host = learnloop_test_support::host::host_on(store, dir.path(), "persona", section);
    let now = Timestamp::from_micros(T0 + 3650 * 24 * 60 * MIN).unwrap();
    let inputs = [
        ("build api", "Do you want to build a REST API with FastAPI?"),
        ("deploy api", "Do you want to containerize your REST API with Docker?"),
        ("auth please", "Do you want to add JWT auth to your REST API?"),
        ("show me code for tests", "Do you want to write unit tests?"),
    ];
    let run = |name: &str, records: Vec<Record>| {
        let count = records.len();
        let t = Instant::now();
        for chunk in records.chunks(1000) {
            let s = host.ingest(chunk.to_vec(), now).unwrap();
            assert!(s.iter().all(|s| *s == IngestStatus::Inserted));
        }
        let secs = t.elapsed().as_secs_f64();
        println!(
            "{name:<32} {count:>7} events in {secs:>7.2} s = {:>8.0} events/s, {:>7.1} µs/event (store + online update)",
            count as f64 / secs,
            secs * 1e6 / count as f64
        );
    };

    let interactions: Vec<Record> = (0..n)
        .map(|i| {
            let (input, text) = inputs[(i % 4) as usize];
            rec(json!({"type": "prediction", "id": format!("i{i}"), "workspace": "w", "plugin": "persona", "subject": format!("u{}", i % users),
                "kind": "interaction", "label": "h1", "event_time": time(T0 + i * MIN),
                "payload": {"input_text": input, "task_type": "code", "hypotheses": [
                    {"id": "h1", "text": text, "confidence": 0.75},
                    {"id": "h2", "text": "Do you want to design API endpoints?", "confidence": 0.68},
                    {"id": "h3", "text": "Do you want to set up authentication?", "confidence": 0.6}]}}))
        })
        .collect();
    run("execute (interactions)", interactions);

    let responses: Vec<Record> = (0..n)
        .map(|i| {
            let kind = ["code", "writing", "analysis"][(i % 3) as usize];
            let model = ["m1", "m2", "m3"][(i % 5 % 3) as usize];
            rec(json!({"type": "prediction", "id": format!("r{i}"), "workspace": "w", "plugin": "persona", "subject": format!("u{}", i % users),
                "kind": kind, "label": model,
                "payload": {"response_length": 300}, "event_time": time(T0 + i * MIN)}))
        })
        .collect();
    run("responses", responses);
    let feedback: Vec<Record> = (0..n)
        .map(|i| {
            rec(json!({"type": "outcome", "id": format!("f{i}"), "workspace": "w", "plugin": "persona", "prediction_id": format!("r{i}"),
                "label": if i % 2 == 0 { "thumbs_up" } else { "thumbs_down" }, "event_time": time(T0 + i * MIN + MIN / 2)}))
        })
        .collect();
    run("feedback", feedback);

    let ws = WorkspaceId::parse("", "w").unwrap();
    let calls = 2000;
    let t = Instant::now();
    for i in 0..calls {
        let body = json!({"user_id": format!("u{}", i % users), "input_text": "deploy api"});
        host.handle("persona", &ws, "POST", "/hypothesize", Default::default(), body).unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{:<32} {calls:>7} calls  in {secs:>7.2} s = {:>8.0} calls/s,  {:>7.1} µs/call",
        "POST /hypothesize (rules)",
        calls as f64 / secs,
        secs * 1e6 / calls as f64
    );
}
