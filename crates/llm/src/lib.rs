//! learnloop's local LLM: Ollama generation and embeddings through
//! `ollama-rs`, behind learnloop-plugin-api's synchronous [`Llm`] and [`Embedder`]
//! traits.
//!
//! Everything that uses the LLM must keep working without it, so this crate
//! never makes a caller wait longer than `[llm] timeout_ms` and never turns
//! an unreachable, slow or confused model into an error: generation answers
//! `Ok(None)` and the caller takes its deterministic path. Each kind of
//! failure is logged once per client (not once per call: a missing Ollama
//! would otherwise fill the log) and counted in [`Counters`], which the API
//! exposes at `/metrics` through [`process_counters`].
//!
//! Sync over async: plugin contexts are synchronous and are called from the
//! API's blocking threads, the learner thread, the scheduler and the CLI;
//! `ollama-rs` is async. The client owns a small tokio runtime (one worker
//! thread) and *spawns* each call onto it, then waits on a channel with a
//! deadline. Spawning never blocks and never enters the caller's runtime, so
//! it is safe from any thread — including a thread of another tokio runtime,
//! where `block_on` would panic — and the runtime is shut down in the
//! background on drop for the same reason.
//!
//! A circuit breaker keeps a dead Ollama cheap: after an unreachable or
//! timed-out call, calls within `[llm] retry_after_ms` are answered `None` at
//! once (counted as `skipped`).

#![deny(missing_docs)]

#[cfg(feature = "fake-server")]
pub mod fake;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use learnloop_config::{LlmApi, LlmConfig};
use learnloop_plugin_api::{Embedder, Llm};
use learnloop_plugin_api::{LlmRequest, PluginError};
use ollama_rs::Ollama;
use ollama_rs::generation::chat::ChatMessage;
use ollama_rs::generation::chat::request::ChatMessageRequest;
use ollama_rs::generation::completion::request::GenerationRequest;
use ollama_rs::generation::embeddings::request::{EmbeddingsInput, GenerateEmbeddingsRequest};
use ollama_rs::generation::parameters::FormatType;

/// How one call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The model answered (and, for JSON mode, with valid JSON).
    Ok,
    /// Connection refused or an HTTP error status.
    Unreachable,
    /// No answer within the timeout.
    Timeout,
    /// The wire reply is not Ollama's JSON, or JSON mode was asked for and
    /// the model's answer is not a JSON value.
    Malformed,
    /// Not attempted: the circuit breaker is open after a recent failure.
    Skipped,
}

impl Outcome {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Unreachable => "unreachable",
            Outcome::Timeout => "timeout",
            Outcome::Malformed => "malformed",
            Outcome::Skipped => "skipped",
        }
    }

    const ALL: [Outcome; 5] =
        [Outcome::Ok, Outcome::Unreachable, Outcome::Timeout, Outcome::Malformed, Outcome::Skipped];

    fn index(self) -> usize {
        self as usize
    }
}

/// Call counters by operation (`generate`, `embed`) and [`Outcome`].
#[derive(Debug, Default)]
pub struct Counters {
    generate: [AtomicU64; 5],
    embed: [AtomicU64; 5],
}

impl Counters {
    fn add(&self, op: Op, outcome: Outcome) {
        let row = match op {
            Op::Generate => &self.generate,
            Op::Embed => &self.embed,
        };
        row[outcome.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Calls of `op` (`"generate"` or `"embed"`) that ended in `outcome`.
    pub fn get(&self, op: &str, outcome: Outcome) -> u64 {
        let row = if op == "embed" { &self.embed } else { &self.generate };
        row[outcome.index()].load(Ordering::Relaxed)
    }

    /// Every counter as `(operation, outcome label, count)`, for `/metrics`.
    pub fn snapshot(&self) -> Vec<(&'static str, &'static str, u64)> {
        let mut out = Vec::new();
        for (op, row) in [("generate", &self.generate), ("embed", &self.embed)] {
            for o in Outcome::ALL {
                out.push((op, o.label(), row[o.index()].load(Ordering::Relaxed)));
            }
        }
        out
    }
}

static PROCESS: Counters =
    Counters { generate: [const { AtomicU64::new(0) }; 5], embed: [const { AtomicU64::new(0) }; 5] };

/// The sum of every client's counters in this process (what `/metrics` shows).
pub fn process_counters() -> &'static Counters {
    &PROCESS
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Generate,
    Embed,
}

/// What went wrong in one call, before it is turned into an [`Outcome`].
#[derive(Debug)]
enum CallError {
    Unreachable(String),
    /// The server answered 200 with a body that is not Ollama's JSON.
    Malformed(String),
    Timeout,
}

/// An Ollama client: generation with the `[llm] model`, embeddings with the
/// `[llm] embed_model`. Cheap to clone (shared state).
#[derive(Clone)]
pub struct OllamaClient {
    inner: Arc<Inner>,
}

struct Inner {
    ollama: Ollama,
    model: String,
    embed_model: String,
    api: LlmApi,
    timeout: Duration,
    retry_after: Duration,
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
    handle: tokio::runtime::Handle,
    counters: Counters,
    warned: [AtomicBool; 5],
    down_until: Mutex<Option<Instant>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which panics inside another runtime's
        // async context; shutting down in the background never blocks.
        if let Some(rt) = self.runtime.lock().unwrap_or_else(|e| e.into_inner()).take() {
            rt.shutdown_background();
        }
    }
}

impl std::fmt::Debug for OllamaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OllamaClient")
            .field("url", &self.inner.ollama.url_str())
            .field("model", &self.inner.model)
            .field("embed_model", &self.inner.embed_model)
            .field("timeout", &self.inner.timeout)
            .finish()
    }
}

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// `[llm] url` is empty or not an http(s) URL.
    #[error("llm.url: {0}")]
    Url(String),
    /// The client's runtime could not start.
    #[error("llm: cannot start the client runtime: {0}")]
    Runtime(std::io::Error),
}

impl OllamaClient {
    /// A client for the `[llm]` section. Does not contact the server.
    pub fn new(config: &LlmConfig) -> Result<Self, BuildError> {
        if config.url.is_empty() {
            return Err(BuildError::Url("is empty (no LLM configured)".into()));
        }
        let ollama =
            Ollama::try_new(config.url.as_str()).map_err(|e| BuildError::Url(format!("{:?}: {e}", config.url)))?;
        if !matches!(ollama.url().scheme(), "http" | "https") {
            return Err(BuildError::Url(format!("{:?} must start with http:// or https://", config.url)));
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("learnloop-llm")
            .enable_time()
            .enable_io()
            .build()
            .map_err(BuildError::Runtime)?;
        let handle = runtime.handle().clone();
        Ok(Self {
            inner: Arc::new(Inner {
                ollama,
                model: config.model.clone(),
                embed_model: config.embed_model.clone(),
                api: config.api,
                timeout: Duration::from_millis(config.timeout_ms.max(1)),
                retry_after: Duration::from_millis(config.retry_after_ms),
                runtime: Mutex::new(Some(runtime)),
                handle,
                counters: Counters::default(),
                warned: Default::default(),
                down_until: Mutex::new(None),
            }),
        })
    }

    /// This client's counters.
    pub fn counters(&self) -> &Counters {
        &self.inner.counters
    }

    /// Runs `fut` on the client's runtime and waits at most the timeout.
    fn run<T, F>(&self, fut: F) -> Result<T, CallError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, ollama_rs::error::OllamaError>> + Send + 'static,
    {
        let timeout = self.inner.timeout;
        let (tx, rx) = mpsc::sync_channel(1);
        self.inner.handle.spawn(async move {
            let r = match tokio::time::timeout(timeout, fut).await {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(e @ ollama_rs::error::OllamaError::JsonError(_))) => Err(CallError::Malformed(describe(&e))),
                Ok(Err(e)) => Err(CallError::Unreachable(describe(&e))),
                Err(_) => Err(CallError::Timeout),
            };
            let _ = tx.send(r);
        });
        // The task enforces the timeout; the margin only covers a runtime
        // that cannot schedule it at all.
        match rx.recv_timeout(timeout + Duration::from_millis(250)) {
            Ok(r) => r,
            Err(_) => Err(CallError::Timeout),
        }
    }

    fn breaker_open(&self) -> bool {
        let mut d = self.inner.down_until.lock().unwrap_or_else(|e| e.into_inner());
        match *d {
            Some(t) if Instant::now() < t => true,
            Some(_) => {
                *d = None;
                false
            }
            None => false,
        }
    }

    fn record(&self, op: Op, outcome: Outcome, detail: &str) {
        self.inner.counters.add(op, outcome);
        PROCESS.add(op, outcome);
        if matches!(outcome, Outcome::Unreachable | Outcome::Timeout) && !self.inner.retry_after.is_zero() {
            *self.inner.down_until.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(Instant::now() + self.inner.retry_after);
        }
        if !matches!(outcome, Outcome::Ok | Outcome::Skipped)
            && !self.inner.warned[outcome.index()].swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                "Ollama at {} {}: {detail}; using the rule-based path (logged once; counted in learnloop_llm_calls_total{{outcome=\"{}\"}})",
                self.inner.ollama.url_str(),
                match outcome {
                    Outcome::Timeout => "timed out",
                    Outcome::Malformed => "gave a malformed reply",
                    _ => "is unreachable",
                },
                outcome.label()
            );
        }
    }

    /// Generates an answer; `None` on any failure (see the crate docs).
    pub fn generate_text(&self, request: &LlmRequest) -> Option<String> {
        if self.breaker_open() {
            self.record(Op::Generate, Outcome::Skipped, "");
            return None;
        }
        let ollama = self.inner.ollama.clone();
        let model = self.inner.model.clone();
        let (system, prompt, json) = (request.system.clone(), request.prompt.clone(), request.json);
        let result = match self.inner.api {
            LlmApi::Chat => self.run(async move {
                let mut messages = Vec::new();
                if !system.is_empty() {
                    messages.push(ChatMessage::system(system));
                }
                messages.push(ChatMessage::user(prompt));
                let mut req = ChatMessageRequest::new(model, messages);
                if json {
                    req = req.format(FormatType::Json);
                }
                ollama.send_chat_messages(req).await.map(|r| r.message.content)
            }),
            LlmApi::Generate => self.run(async move {
                let mut req = GenerationRequest::new(model, prompt);
                if !system.is_empty() {
                    req = req.system(system);
                }
                if json {
                    req = req.format(FormatType::Json);
                }
                ollama.generate(req).await.map(|r| r.response)
            }),
        };
        match result {
            Ok(text) => {
                if json && serde_json::from_str::<serde_json::Value>(text.trim()).is_err() {
                    self.record(
                        Op::Generate,
                        Outcome::Malformed,
                        "JSON was asked for and the answer does not parse as JSON",
                    );
                    return None;
                }
                self.record(Op::Generate, Outcome::Ok, "");
                Some(text)
            }
            Err(CallError::Timeout) => {
                self.record(
                    Op::Generate,
                    Outcome::Timeout,
                    &format!("no answer within {} ms", self.inner.timeout.as_millis()),
                );
                None
            }
            Err(CallError::Unreachable(e)) => {
                self.record(Op::Generate, Outcome::Unreachable, &e);
                None
            }
            Err(CallError::Malformed(e)) => {
                self.record(Op::Generate, Outcome::Malformed, &e);
                None
            }
        }
    }

    /// Embeddings of `texts` with the embedding model.
    pub fn embed_texts(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, PluginError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        if self.breaker_open() {
            self.record(Op::Embed, Outcome::Skipped, "");
            return Err(PluginError::unavailable("Ollama embeddings: the server failed recently; retrying later"));
        }
        let ollama = self.inner.ollama.clone();
        let req =
            GenerateEmbeddingsRequest::new(self.inner.embed_model.clone(), EmbeddingsInput::Multiple(texts.to_vec()));
        match self.run(async move { ollama.generate_embeddings(req).await.map(|r| r.embeddings) }) {
            Ok(v) => {
                let dims = v.first().map_or(0, Vec::len);
                if v.len() != texts.len()
                    || dims == 0
                    || v.iter().any(|e| e.len() != dims || e.iter().any(|x| !x.is_finite()))
                {
                    self.record(
                        Op::Embed,
                        Outcome::Malformed,
                        "the embeddings reply has the wrong count, uneven lengths or non-finite values",
                    );
                    return Err(PluginError::unavailable(format!(
                        "Ollama embeddings: expected {} vectors of one length, got {} (malformed reply)",
                        texts.len(),
                        v.len()
                    )));
                }
                self.record(Op::Embed, Outcome::Ok, "");
                Ok(v)
            }
            Err(CallError::Timeout) => {
                self.record(
                    Op::Embed,
                    Outcome::Timeout,
                    &format!("no embeddings within {} ms", self.inner.timeout.as_millis()),
                );
                Err(PluginError::unavailable(format!(
                    "Ollama embeddings: no answer within {} ms",
                    self.inner.timeout.as_millis()
                )))
            }
            Err(CallError::Unreachable(e)) => {
                self.record(Op::Embed, Outcome::Unreachable, &e);
                Err(PluginError::unavailable(format!("Ollama embeddings: {e}")))
            }
            Err(CallError::Malformed(e)) => {
                self.record(Op::Embed, Outcome::Malformed, &e);
                Err(PluginError::unavailable(format!("Ollama embeddings: malformed reply: {e}")))
            }
        }
    }

    /// The models the server has (`GET /api/tags`), or why not.
    pub fn models(&self) -> Result<Vec<String>, PluginError> {
        let ollama = self.inner.ollama.clone();
        match self.run(async move { ollama.list_local_models().await }) {
            Ok(models) => Ok(models.into_iter().map(|m| m.name).collect()),
            Err(CallError::Timeout) => Err(PluginError::unavailable("Ollama: /api/tags timed out")),
            Err(CallError::Unreachable(e) | CallError::Malformed(e)) => {
                Err(PluginError::unavailable(format!("Ollama: {e}")))
            }
        }
    }

    /// Checks in the background (without blocking the caller) whether the
    /// server answers and has the configured models, and logs what it found.
    pub fn probe_in_background(&self) {
        let client = self.clone();
        std::thread::Builder::new()
            .name("learnloop-llm-probe".into())
            .spawn(move || {
                let url = client.inner.ollama.url_str().to_string();
                match client.models() {
                    Ok(models) => {
                        let has = |m: &str| models.iter().any(|n| n == m || n.split(':').next() == Some(m));
                        for m in [&client.inner.model, &client.inner.embed_model] {
                            if !has(m) {
                                tracing::warn!(
                                    "Ollama at {url} has no model {m:?} (has {models:?}); `ollama pull {m}`"
                                );
                            }
                        }
                    }
                    Err(e) => tracing::warn!(
                        "Ollama at {url} is not answering ({e}); the rule-based path serves until it does"
                    ),
                }
            })
            .ok();
    }
}

fn describe(e: &ollama_rs::error::OllamaError) -> String {
    use std::error::Error;
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

impl Llm for OllamaClient {
    fn generate(&self, request: &LlmRequest) -> Result<Option<String>, PluginError> {
        Ok(self.generate_text(request))
    }
}

/// The embedder half of an [`OllamaClient`] (`[vector] embedder = "ollama"`).
#[derive(Debug, Clone)]
pub struct OllamaEmbedder(pub OllamaClient);

impl Embedder for OllamaEmbedder {
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, PluginError> {
        self.0.embed_texts(texts)
    }
}
