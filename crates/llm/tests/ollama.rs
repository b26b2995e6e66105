//! The real `ollama-rs` client against a local server speaking Ollama's wire
//! format ([`learnloop_llm::fake`]): normal, slow, failing and malformed
//! replies on `/api/chat`, `/api/generate`, `/api/embed` and `/api/tags`,
//! the circuit breaker, and calls from inside another tokio runtime.

use std::time::{Duration, Instant};

use learnloop_config::{LlmApi, LlmConfig};
use learnloop_llm::fake::{FakeOllama, Reply, fake_embedding};
use learnloop_llm::{OllamaClient, OllamaEmbedder, Outcome};
use learnloop_plugin_api::{Embedder, Llm};
use learnloop_plugin_api::{LlmRequest, PluginError};
use serde_json::json;

fn config(url: &str, timeout_ms: u64) -> LlmConfig {
    LlmConfig { url: url.into(), timeout_ms, retry_after_ms: 0, ..Default::default() }
}

fn ask(json: bool) -> LlmRequest {
    LlmRequest { system: "You analyse users.".into(), prompt: "build api".into(), json }
}

#[test]
fn chat_answers_json_and_sends_ollamas_request_shape() {
    let fake = FakeOllama::start();
    fake.respond(|system, prompt| Reply::Text(json!({"system": system, "prompt": prompt}).to_string()));
    let client = OllamaClient::new(&config(&fake.url, 5_000)).unwrap();
    let out = client.generate(&ask(true)).unwrap().expect("an answer");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v, json!({"system": "You analyse users.", "prompt": "build api"}));
    let seen = fake.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/api/chat");
    assert_eq!(seen[0].body["model"], "llama3.2");
    assert_eq!(seen[0].body["format"], "json");
    assert_eq!(seen[0].body["stream"], false);
    assert_eq!(seen[0].body["messages"][0]["role"], "system");
    assert_eq!(seen[0].body["messages"][1]["role"], "user");
    assert_eq!(seen[0].body["messages"][1]["content"], "build api");
    assert_eq!(client.counters().get("generate", Outcome::Ok), 1);
}

#[test]
fn generate_endpoint_when_configured() {
    let fake = FakeOllama::start();
    fake.respond(|_, p| Reply::Text(format!("echo: {p}")));
    let client = OllamaClient::new(&LlmConfig { api: LlmApi::Generate, ..config(&fake.url, 5_000) }).unwrap();
    assert_eq!(client.generate(&ask(false)).unwrap().as_deref(), Some("echo: build api"));
    let seen = fake.seen();
    assert_eq!(seen[0].path, "/api/generate");
    assert_eq!(seen[0].body["system"], "You analyse users.");
    assert_eq!(seen[0].body["prompt"], "build api");
    assert!(seen[0].body.get("format").is_none(), "no JSON mode asked: {:?}", seen[0].body);
}

#[test]
fn slow_reply_falls_back_after_the_timeout() {
    let fake = FakeOllama::start();
    fake.respond(|_, _| Reply::Slow(Duration::from_secs(30), "{}".into()));
    let client = OllamaClient::new(&config(&fake.url, 200)).unwrap();
    let t = Instant::now();
    assert_eq!(client.generate(&ask(true)).unwrap(), None);
    // Not a speed target: a client that waited for the reply would take 30 s.
    assert!(t.elapsed() < Duration::from_secs(20), "waited {:?}", t.elapsed());
    assert_eq!(client.counters().get("generate", Outcome::Timeout), 1);
}

#[test]
fn http_error_is_a_fallback_not_an_error() {
    let fake = FakeOllama::start();
    fake.respond(|_, _| Reply::Status(500));
    let client = OllamaClient::new(&config(&fake.url, 5_000)).unwrap();
    assert_eq!(client.generate(&ask(true)).unwrap(), None);
    assert_eq!(client.generate(&ask(false)).unwrap(), None);
    assert_eq!(client.counters().get("generate", Outcome::Unreachable), 2);
}

#[test]
fn malformed_replies_are_handled() {
    let fake = FakeOllama::start();
    fake.respond(
        |_, p| if p == "garbage" { Reply::Garbage } else { Reply::Text("Sure! Here is your JSON: {oops".into()) },
    );
    let client = OllamaClient::new(&config(&fake.url, 5_000)).unwrap();
    // JSON asked for, prose answered.
    assert_eq!(client.generate(&ask(true)).unwrap(), None);
    // The same text is fine when no JSON was asked for.
    assert_eq!(client.generate(&ask(false)).unwrap().as_deref(), Some("Sure! Here is your JSON: {oops"));
    // A body that is not Ollama's wire format at all.
    let garbage = LlmRequest { prompt: "garbage".into(), ..ask(false) };
    assert_eq!(client.generate(&garbage).unwrap(), None);
    assert_eq!(client.counters().get("generate", Outcome::Malformed), 2);
    assert_eq!(client.counters().get("generate", Outcome::Ok), 1);
}

#[test]
fn no_server_falls_back_and_the_breaker_skips_further_calls() {
    // A port nobody listens on: bind, note it, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    let client = OllamaClient::new(&LlmConfig { retry_after_ms: 60_000, ..config(&url, 2_000) }).unwrap();
    assert_eq!(client.generate(&ask(true)).unwrap(), None);
    assert_eq!(client.generate(&ask(true)).unwrap(), None);
    assert_eq!(client.counters().get("generate", Outcome::Unreachable), 1);
    assert_eq!(client.counters().get("generate", Outcome::Skipped), 1);
    let e = client.embed_texts(&["x".into()]).unwrap_err();
    assert!(matches!(e, PluginError::Unavailable { .. }), "{e:?}");
    assert!(learnloop_llm::process_counters().get("generate", Outcome::Skipped) >= 1);
}

#[test]
fn embeddings_come_from_api_embed() {
    let fake = FakeOllama::start();
    let client = OllamaClient::new(&config(&fake.url, 5_000)).unwrap();
    let e = OllamaEmbedder(client.clone());
    let texts = vec!["build api".to_string(), "deploy with docker".to_string()];
    let v = e.embed(&texts).unwrap();
    assert_eq!(v, texts.iter().map(|t| fake_embedding(t)).collect::<Vec<_>>());
    let seen = fake.seen();
    assert_eq!(seen[0].path, "/api/embed");
    assert_eq!(seen[0].body["model"], "nomic-embed-text");
    assert_eq!(seen[0].body["input"], json!(texts));
    // Wrong count, uneven lengths: a handled, named error.
    fake.embed_reply(Some(Reply::Text("[[1.0, 2.0]]".into())));
    let err = e.embed(&texts).unwrap_err();
    assert!(err.to_string().contains("expected 2 vectors"), "{err}");
    fake.embed_reply(Some(Reply::Status(404)));
    assert!(matches!(e.embed(&texts).unwrap_err(), PluginError::Unavailable { .. }));
    assert_eq!(client.counters().get("embed", Outcome::Ok), 1);
    assert_eq!(client.counters().get("embed", Outcome::Malformed), 1);
    assert_eq!(client.counters().get("embed", Outcome::Unreachable), 1);
}

#[test]
fn tags_lists_the_models() {
    let fake = FakeOllama::start();
    let client = OllamaClient::new(&config(&fake.url, 5_000)).unwrap();
    assert_eq!(client.models().unwrap(), vec!["llama3.2:latest".to_string(), "nomic-embed-text:latest".to_string()]);
    assert_eq!(fake.seen()[0].path, "/api/tags");
}

#[test]
fn bad_urls_are_refused_naming_the_key() {
    for url in ["", "not a url", "ftp://x"] {
        let e = OllamaClient::new(&config(url, 1_000)).unwrap_err();
        assert!(e.to_string().starts_with("llm.url"), "{url}: {e}");
    }
}

/// The API calls plugin code from threads of its own tokio runtime; the
/// client must neither panic there ("cannot start a runtime from within a
/// runtime") nor when it is dropped there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callable_and_droppable_inside_another_runtime() {
    let fake = FakeOllama::start();
    fake.respond(|_, _| Reply::Text("{\"ok\": true}".into()));
    let client = OllamaClient::new(&config(&fake.url, 5_000)).unwrap();
    // Directly on a worker thread (blocking it briefly), and from spawn_blocking.
    assert!(client.generate(&ask(true)).unwrap().is_some());
    let c2 = client.clone();
    let r = tokio::task::spawn_blocking(move || c2.generate(&ask(true)).unwrap()).await.unwrap();
    assert!(r.is_some());
    drop(client);
    drop(fake);
}

#[test]
fn concurrent_callers_each_get_their_answer() {
    let fake = FakeOllama::start();
    fake.respond(|_, p| Reply::Slow(Duration::from_millis(20), json!({"echo": p}).to_string()));
    let client = OllamaClient::new(&config(&fake.url, 10_000)).unwrap();
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let c = client.clone();
            std::thread::spawn(move || {
                let r = LlmRequest { prompt: format!("p{i}"), ..ask(true) };
                c.generate(&r).unwrap().unwrap()
            })
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        let v: serde_json::Value = serde_json::from_str(&h.join().unwrap()).unwrap();
        assert_eq!(v["echo"], format!("p{i}"));
    }
    assert_eq!(client.counters().get("generate", Outcome::Ok), 8);
}
