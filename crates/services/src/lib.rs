//! Builds the [`Services`] the plugin host lends plugins, from the config.
//!
//! Every process that hosts plugins (`learnloop`, `learnloop-api`,
//! `learnloop-scheduler`) calls [`open`] once and hands the result to
//! [`PluginHost::with_services`](learnloop_plugin_host::PluginHost::with_services),
//! so the three agree on which vector index, embedder and LLM they use.

use learnloop_config::Config;
use learnloop_plugin_host::Services;

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
    let _ = role;
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

    Ok(services)
}
