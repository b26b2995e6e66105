//! The local LLM behind the API: `learnloop-services` builds the Ollama
//! client from `[llm]`, the persona plugin asks it from the API's blocking
//! threads, and `/metrics` counts the calls by outcome. Ollama is a local
//! fake server speaking its wire format (`learnloop_llm::fake`).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use learnloop_api::{AppState, app};
use learnloop_config::Config;
use learnloop_llm::fake::{FakeOllama, Reply};
use learnloop_plugin_host::PluginHost;
use learnloop_store::{SqliteOptions, SqliteStore, Store};
use serde_json::{Value, json};
use tower::ServiceExt;

async fn call(state: &AppState, method: &str, uri: &str, body: Value) -> (StatusCode, String) {
    let req = Request::builder().method(method).uri(uri).header("content-type", "application/json");
    let body = if body.is_null() { Body::empty() } else { Body::from(body.to_string()) };
    let resp = app(state.clone()).oneshot(req.body(body).unwrap()).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

fn metric(text: &str, outcome: &str) -> u64 {
    let prefix = format!("learnloop_llm_calls_total{{operation=\"generate\",outcome=\"{outcome}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {prefix} in {text}"))
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persona_uses_ollama_through_the_api_and_metrics_count_fallbacks() {
    let fake = FakeOllama::start();
    fake.respond(|_, prompt| {
        if prompt.contains("malformed please") {
            Reply::Text("not json at all".into())
        } else {
            Reply::Text(
                json!({"hypotheses": [
                {"text": "Do you want a FastAPI service?", "confidence": 0.9},
                {"text": "Do you want an OpenAPI spec?", "confidence": 0.5},
                {"text": "Do you want GraphQL?", "confidence": 0.2}]})
                .to_string(),
            )
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config { data_dir: dir.path().to_owned(), ..Config::default() };
    config.auth.enabled = false;
    config.llm.url = fake.url.clone();
    config.llm.timeout_ms = 5_000;
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join("s.sqlite"), &SqliteOptions::default()).unwrap());
    let services = learnloop_services::open(&config, learnloop_services::Role::Api).unwrap();
    assert!(services.llm.is_some(), "[llm] url set: the services carry the Ollama client");
    let host = PluginHost::load(&config, store).with_services(services);
    let state = AppState::new(config, host);

    let (_, before) = call(&state, "GET", "/metrics", Value::Null).await;
    let (ok0, malformed0) = (metric(&before, "ok"), metric(&before, "malformed"));

    let (s, body) =
        call(&state, "POST", "/api/v1/persona/hypothesize", json!({"user_id": "u", "input_text": "build api"})).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["source"], "llm");
    assert_eq!(v["hypotheses"][0]["text"], "Do you want a FastAPI service?");

    let (s, body) =
        call(&state, "POST", "/api/v1/persona/hypothesize", json!({"user_id": "u", "input_text": "malformed please"}))
            .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["source"], "rules", "a malformed reply falls back: {v}");

    // Counters are process-wide; other tests may add to them, never subtract.
    let (_, after) = call(&state, "GET", "/metrics", Value::Null).await;
    assert!(metric(&after, "ok") > ok0, "{after}");
    assert!(metric(&after, "malformed") > malformed0, "{after}");
    assert!(after.contains("# TYPE learnloop_llm_calls_total counter"));
}
