//! A slow LLM against the real `learnloop-api` (issue 26, finding 8).
//!
//! mod list (one file): a tiny loopback server that speaks Ollama's
//! `/api/chat` (non-streaming JSON, as `ollama-rs` sends and expects it) and
//! answers after 1.5 s; six persona interactions ingested over HTTP; the
//! persona read answers from the rules without waiting (latency printed,
//! not asserted: the answer itself says it reflects the rules with six
//! interactions pending, which it could not if it had waited); the enrich
//! job run over HTTP; the read then reports the LLM's enrichment.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use learnloop_e2e::{Scratch, SlowOllama, http, start_api};
use serde_json::{Value, json};

/// How long the fake model takes per answer.
const DELAY: Duration = Duration::from_millis(1500);

#[test]
fn a_slow_llm_never_delays_a_persona_read() {
    let ollama = SlowOllama::start(DELAY);
    let s = Scratch::new();
    let config = s.write(
        "learnloop.toml",
        &format!(
            "data_dir = {:?}\n[llm]\nurl = {:?}\ntimeout_ms = 5000\nretry_after_ms = 0\n",
            s.data_dir().display().to_string(),
            ollama.url
        ),
    );
    let (_api, addr) = start_api(&s, &["--config", config.to_str().unwrap(), "--bind", "127.0.0.1:0"]);
    let admin = std::fs::read_to_string(s.data_dir().join("admin.key")).unwrap().trim().to_string();

    // Six interactions, one request each, as live traffic arrives.
    for i in 0..6 {
        let record = json!({"id": format!("i{i}"), "plugin": "persona", "subject": "u1", "kind": "interaction",
            "label": "h1", "event_time": format!("2026-01-01T0{i}:00:00Z"),
            "payload": {"input_text": "build api", "hypotheses": [
                {"id": "h1", "text": "Do you want to build a REST API?", "confidence": 0.75},
                {"id": "h2", "text": "Do you want to design API endpoints?", "confidence": 0.68}]}});
        let (st, b) = http(&addr, "POST", "/api/v1/predictions?workspace=default", Some(&admin), &record.to_string());
        assert_eq!(st, 201, "{b}");
    }

    let started = Instant::now();
    let (st, b) = http(&addr, "GET", "/api/v1/persona/users/u1?workspace=default", Some(&admin), "");
    let read = started.elapsed();
    assert_eq!(st, 200, "{b}");
    let p: Value = serde_json::from_str(&b).unwrap();
    learnloop_e2e::report!(
        "GET /api/v1/persona/users/u1 with six interactions behind a model answering in {DELAY:?}: {read:?} (issue 26 measured 9.2 s)"
    );
    assert_eq!(p["interaction_count"], 6, "{p}");
    // Proof that it did not wait: the answer is the rules' with all six
    // interactions still waiting for the model.
    assert_eq!(p["analysis"], "rules", "{p}");
    assert_eq!(p["llm_pending"], 6, "{p}");
    assert_eq!(p["facets"]["concise"], 0.62, "six rule steps of 0.02: {p}");
    assert_eq!(ollama.chats.load(Ordering::SeqCst), 0, "no analysis was asked of the model before the job");

    let started = Instant::now();
    let (st, b) = http(&addr, "POST", "/api/v1/jobs/persona/enrich/run", Some(&admin), "");
    learnloop_e2e::report!("POST /api/v1/jobs/persona/enrich/run: {:?}", started.elapsed());
    assert_eq!(st, 200, "{b}");
    let run: Value = serde_json::from_str(&b).unwrap();
    let report = &run["report"]["workspaces"]["default"];
    assert_eq!((report["enriched"].clone(), report["remaining"].clone()), (json!(6), json!(0)), "{run}");
    assert_eq!(ollama.chats.load(Ordering::SeqCst), 6);

    let started = Instant::now();
    let (st, b) = http(&addr, "GET", "/api/v1/persona/users/u1?workspace=default", Some(&admin), "");
    learnloop_e2e::report!("GET /api/v1/persona/users/u1 after enrichment: {:?}", started.elapsed());
    assert_eq!(st, 200, "{b}");
    let p: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(p["analysis"], "rules+llm", "{p}");
    assert_eq!(p["llm_pending"], 0, "{p}");
    assert_eq!(p["analysed_by"], json!({"llm": 6, "rules": 0}), "{p}");
    assert!(p["last_enriched_at"].is_string(), "{p}");
    assert_eq!((p["facets"]["concise"].clone(), p["facets"]["formal"].clone()), (json!(0.5), json!(0.8)), "{p}");
    let goals: Vec<&str> = p["goals"].as_array().unwrap().iter().filter_map(|g| g["content"].as_str()).collect();
    assert!(goals.contains(&"ship a REST API"), "{p}");
}
