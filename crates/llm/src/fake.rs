//! A local HTTP server that speaks Ollama's wire format (`/api/generate`,
//! `/api/chat`, `/api/embed`, `/api/tags`), for tests that run the real
//! `ollama-rs` client: answers are scripted per request, including slow,
//! failing and malformed replies. Not a mock of learnloop code: it stands
//! in for the external Ollama server, byte for byte on the wire.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

/// How the server answers one generation request.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// A normal answer with this text as the model's output.
    Text(String),
    /// The same, after a delay.
    Slow(Duration, String),
    /// An HTTP error status with Ollama's `{"error": ...}` body.
    Status(u16),
    /// A 200 whose body is not Ollama's JSON at all.
    Garbage,
}

/// One request the server saw.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    /// `/api/chat`, `/api/generate`, `/api/embed` or `/api/tags`.
    pub path: String,
    /// The JSON body (null for GET).
    pub body: Value,
}

type Responder = Box<dyn Fn(&str, &str) -> Reply + Send + Sync>;

struct Shared {
    responder: Responder,
    embed_reply: Option<Reply>,
    models: Vec<String>,
    seen: Vec<Seen>,
}

/// A running fake server; stops when dropped.
pub struct FakeOllama {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    shared: Arc<Mutex<Shared>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for FakeOllama {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

fn lock(s: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

impl FakeOllama {
    /// Starts a server on a free loopback port that answers every generation
    /// with `{}` until [`FakeOllama::respond`] says otherwise.
    pub fn start() -> Self {
        let shared = Arc::new(Mutex::new(Shared {
            responder: Box::new(|_, _| Reply::Text("{}".into())),
            embed_reply: None,
            models: vec!["llama3.2:latest".into(), "nomic-embed-text:latest".into()],
            seen: Vec::new(),
        }));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("fake Ollama runtime");
        // Bound with std so that starting works inside another runtime too.
        let listener = std::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).expect("bind fake Ollama");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("address");
        let app = Router::new()
            .route("/api/generate", post(generate))
            .route("/api/chat", post(chat))
            .route("/api/embed", post(embed))
            .route("/api/tags", get(tags))
            .with_state(shared.clone());
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
            let _ = axum::serve(listener, app).await;
        });
        Self { url: format!("http://{addr}"), shared, runtime: Some(runtime) }
    }

    /// Sets how generation requests are answered: `f(system, prompt)`.
    pub fn respond(&self, f: impl Fn(&str, &str) -> Reply + Send + Sync + 'static) {
        lock(&self.shared).responder = Box::new(f);
    }

    /// Sets how embedding requests are answered (`None`: a deterministic
    /// 8-dimensional vector per input).
    pub fn embed_reply(&self, reply: Option<Reply>) {
        lock(&self.shared).embed_reply = reply;
    }

    /// Every request seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        lock(&self.shared).seen.clone()
    }
}

type St = State<Arc<Mutex<Shared>>>;

/// The deterministic embedding of one text: byte histogram over 8 buckets, normalised.
pub fn fake_embedding(text: &str) -> Vec<f32> {
    let mut v = [0f32; 8];
    for b in text.bytes() {
        v[(b % 8) as usize] += 1.0;
    }
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
    v.iter().map(|x| x / n).collect()
}

async fn answer(reply: Reply, wrap: impl FnOnce(String) -> Value) -> Response {
    match reply {
        Reply::Text(t) => Json(wrap(t)).into_response(),
        Reply::Slow(d, t) => {
            tokio::time::sleep(d).await;
            Json(wrap(t)).into_response()
        }
        Reply::Status(code) => {
            let code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (code, Json(json!({"error": "scripted failure"}))).into_response()
        }
        Reply::Garbage => Response::builder()
            .status(200)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("<html>not ollama</html>"))
            .expect("response"),
    }
}

fn record(s: &Mutex<Shared>, path: &str, body: &Value) {
    lock(s).seen.push(Seen { path: path.into(), body: body.clone() });
}

async fn generate(State(s): St, Json(body): Json<Value>) -> Response {
    record(&s, "/api/generate", &body);
    let model = body["model"].as_str().unwrap_or_default().to_string();
    let reply =
        (lock(&s).responder)(body["system"].as_str().unwrap_or_default(), body["prompt"].as_str().unwrap_or_default());
    answer(reply, |t| json!({"model": model, "created_at": "2026-01-01T00:00:00Z", "response": t, "done": true})).await
}

async fn chat(State(s): St, Json(body): Json<Value>) -> Response {
    record(&s, "/api/chat", &body);
    let model = body["model"].as_str().unwrap_or_default().to_string();
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let of = |role: &str| {
        messages
            .iter()
            .filter(|m| m["role"] == role)
            .filter_map(|m| m["content"].as_str())
            .next_back()
            .unwrap_or_default()
            .to_string()
    };
    let reply = (lock(&s).responder)(&of("system"), &of("user"));
    answer(reply, |t| {
        json!({"model": model, "created_at": "2026-01-01T00:00:00Z", "message": {"role": "assistant", "content": t}, "done": true})
    })
    .await
}

async fn embed(State(s): St, Json(body): Json<Value>) -> Response {
    record(&s, "/api/embed", &body);
    let model = body["model"].as_str().unwrap_or_default().to_string();
    let inputs: Vec<String> = match &body["input"] {
        Value::String(t) => vec![t.clone()],
        Value::Array(a) => a.iter().filter_map(|v| v.as_str().map(String::from)).collect(),
        _ => vec![],
    };
    let scripted = lock(&s).embed_reply.clone();
    match scripted {
        None => {
            Json(json!({"model": model, "embeddings": inputs.iter().map(|t| fake_embedding(t)).collect::<Vec<_>>()}))
                .into_response()
        }
        // A scripted text is sent as the raw `embeddings` value.
        Some(Reply::Text(raw)) => {
            let v: Value = serde_json::from_str(&raw).unwrap_or(Value::Null);
            Json(json!({"model": model, "embeddings": v})).into_response()
        }
        Some(other) => answer(other, |_| json!({"model": model, "embeddings": []})).await,
    }
}

async fn tags(State(s): St) -> Response {
    record(&s, "/api/tags", &Value::Null);
    let models = lock(&s).models.clone();
    Json(json!({"models": models.iter().map(|m| json!({"name": m, "modified_at": "2026-01-01T00:00:00Z", "size": 1})).collect::<Vec<_>>()}))
        .into_response()
}
