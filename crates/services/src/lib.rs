//! Builds, from the config, what the binaries hand the plugin host: the
//! store of record ([`open_store`]) and the [`Services`] it lends plugins
//! ([`open`]).
//!
//! Every process that hosts plugins (`learnloop`, `learnloop-api`,
//! `learnloop-scheduler`) calls [`open`] once and hands the result to
//! [`PluginHost::with_services`](learnloop_plugin_host::PluginHost::with_services),
//! so the three agree on which vector index, embedder and LLM they use.
//! This crate is where the config meets the implementations: the store,
//! the vector index and the LLM client each take plain options, not the
//! config. [`logging`] sets up the binaries' log from `[log]`;
//! [`metrics`] is what both servers' `/metrics` share.

pub mod logging;
pub mod metrics;

use std::sync::Arc;

use anyhow::bail;
use learnloop_config::{Config, EmbedderKind, VectorBackend};
use learnloop_plugin_host::{Embedder, Services};
use learnloop_store::{Store, StoreError, StoreOptions};
use learnloop_vector::{LazyIndex, StructuredEmbedder, VectorError};

/// The store URL of `[store] url`, resolved: empty is the embedded SQLite
/// file in the data directory (`sqlite:<data_dir>/learnloop.sqlite`).
pub fn store_url(config: &Config) -> String {
    match config.sqlite_path() {
        Some(path) => format!("sqlite:{}", path.display()),
        None => config.store.url.clone(),
    }
}

/// The options of `[store]` for [`learnloop_store::open`].
pub fn store_options(config: &Config) -> StoreOptions {
    StoreOptions {
        synchronous_full: config.store.synchronous == learnloop_config::Synchronous::Full,
        busy_timeout_ms: config.store.busy_timeout_ms,
        pool_size: config.store.pool_size as usize,
    }
}

/// Opens the store of record the config names (embedded SQLite by default).
pub fn open_store(config: &Config) -> Result<Arc<dyn Store>, StoreError> {
    learnloop_store::open(&store_url(config), &store_options(config))
}

/// What the process is, which decides who may write shared local indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The command-line tool.
    Cli,
    /// The API server.
    Api,
    /// The scheduler.
    Scheduler,
}

/// The services configured in `config` for a process of the given role.
/// A service that is not configured is left out; plugins then take their
/// deterministic path.
pub fn open(config: &Config, role: Role) -> anyhow::Result<Services> {
    let mut services = Services::default();

    // LLM (learnloop-llm): Ollama when `[llm] url` is set. Building the
    // client contacts nothing; a background probe logs whether the server
    // and its models are there. `[vector] embedder = "ollama"` uses the same
    // client's embeddings.
    if !config.llm.url.is_empty() {
        let client = learnloop_llm::OllamaClient::new(&config.llm)?;
        client.probe_in_background();
        if config.vector.embedder == learnloop_config::EmbedderKind::Ollama {
            services.embedder = Some(std::sync::Arc::new(learnloop_llm::OllamaEmbedder(client.clone())));
        }
        services.llm = Some(std::sync::Arc::new(client));
    }

    // Vector index and embedder (learnloop-vector), after the LLM so that
    // `embedder = "ollama"` finds the Ollama embedder.
    let (embedder, id, dims) = embedder(config, &services)?;
    services.embedder = Some(embedder);
    if let Some(index) = vector_index_for(config, role, &id, dims) {
        if role == Role::Api {
            match index.get() {
                Ok(_) => {}
                // Built without Qdrant Edge: every use fails naming the setting; say so once now.
                Err(e @ VectorError::NotBuilt(_)) => tracing::warn!("vector index unavailable: {e}"),
                // The API owns the embedded index; it retries on first use.
                Err(e) => tracing::warn!("vector index not open yet ({e}); retrying on first use"),
            }
        }
        services.vectors = Some(index);
    }
    Ok(services)
}

/// The embedder of `[vector] embedder`, its id, and how to learn its
/// dimensions (the structured embedder's are fixed; a model's are probed
/// when the index is first opened, so start-up contacts nothing).
fn embedder(config: &Config, services: &Services) -> anyhow::Result<(Arc<dyn Embedder>, String, DimsOf)> {
    match config.vector.embedder {
        EmbedderKind::Structured => Ok((
            Arc::new(StructuredEmbedder),
            StructuredEmbedder::ID.to_string(),
            DimsOf::Fixed(StructuredEmbedder::DIMS),
        )),
        EmbedderKind::Ollama => {
            let Some(e) = services.embedder.clone() else {
                bail!("[vector] embedder = \"ollama\" needs [llm] url (the Ollama server)");
            };
            Ok((e.clone(), format!("ollama-{}", config.llm.embed_model), DimsOf::Probe(e)))
        }
    }
}

enum DimsOf {
    Fixed(usize),
    Probe(Arc<dyn Embedder>),
}

impl DimsOf {
    fn get(&self) -> learnloop_vector::Dims {
        match self {
            DimsOf::Fixed(n) => {
                let n = *n;
                Box::new(move || Ok(n))
            }
            DimsOf::Probe(e) => {
                let e = e.clone();
                Box::new(move || {
                    let v = e
                        .embed(&["learnloop embedder probe".to_string()])
                        .map_err(|err| VectorError::Backend(format!("embedder: {err}")))?;
                    v.first()
                        .map(Vec::len)
                        .filter(|n| *n > 0)
                        .ok_or_else(|| VectorError::Backend("the embedder returned an empty vector".into()))
                })
            }
        }
    }
}

fn vector_index_for(config: &Config, role: Role, embedder: &str, dims: DimsOf) -> Option<Arc<LazyIndex>> {
    let prefix = &config.vector.collection_prefix;
    match config.vector.backend {
        // Qdrant Edge is single-process: the API owns it, the scheduler
        // never opens it, the CLI opens it on first use when it is free.
        VectorBackend::Edge if role == Role::Scheduler => None,
        VectorBackend::Edge => {
            Some(Arc::new(LazyIndex::edge(&config.data_dir().join("vectors"), prefix, embedder, dims.get())))
        }
        VectorBackend::Qdrant => Some(Arc::new(LazyIndex::server(&config.vector.url, prefix, embedder, dims.get()))),
    }
}

/// The vector index of the config for a process of `role` (`None`: this
/// role does not open it), unopened, for the embedder of `services` (from
/// [`open`]). `learnloop reindex` uses it to clear the index before plugins
/// refill it.
pub fn vector_index(config: &Config, role: Role, services: &Services) -> anyhow::Result<Option<Arc<LazyIndex>>> {
    let (_, id, dims) = embedder(config, services)?;
    Ok(vector_index_for(config, role, &id, dims))
}
