//! `learnloop reindex`: rebuild the vector index from the store of record.
//!
//! The index is derived data. This clears every collection of the
//! configured index (Qdrant Edge in the data directory, or this
//! installation's collections in a Qdrant server), then asks every loaded
//! plugin that keeps vectors (it has a `POST /index/sync` route) to refill
//! its collections in every workspace it has events in. Use it after
//! switching embedders (the embedded index also detects that by itself and
//! refills lazily) or when the index was lost or damaged.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use learnloop_core::PluginName;
use serde_json::{Value, json};

use crate::Env;

pub fn run(env: &Env) -> Result<()> {
    let config = &env.config;
    let store = learnloop_services::open_store(config)?;
    let mut services = learnloop_services::open(config, learnloop_services::Role::Cli)?;
    let Some(index) = learnloop_services::vector_index(config, learnloop_services::Role::Cli, &services)? else {
        bail!("no vector index is configured for the CLI");
    };
    index.clear().with_context(|| format!("clearing {}", index.describe()))?;
    services.vectors = Some(index.clone());
    let host = learnloop_plugin_host::PluginHost::load(&learnloop_plugins::registry(), config, store.clone())
        .with_services(services);
    let mut report = BTreeMap::new();
    for (name, loaded) in host.plugins() {
        if !loaded.manifest.routes.iter().any(|r| r.method == "POST" && r.path == "/index/sync") {
            continue;
        }
        let plugin = PluginName::parse("plugin", name)?;
        for ws in store.workspaces(&plugin)? {
            let r = host.handle(name, &ws, "POST", "/index/sync", BTreeMap::new(), Value::Null)?;
            if !env.json {
                outln!(
                    "{name} / {ws}: {} outcomes read, {} cases indexed",
                    r.body["outcomes"].as_u64().unwrap_or(0),
                    r.body["cases"].as_u64().unwrap_or(0)
                )?;
            }
            report.insert(format!("{name}/{ws}"), r.body);
        }
    }
    if env.json {
        outln!("{}", json!({"index": index.describe(), "rebuilt": report}))?;
    } else {
        outln!("vector index rebuilt: {}", index.describe())?;
    }
    Ok(())
}
