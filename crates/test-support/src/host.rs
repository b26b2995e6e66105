//! Plugin hosts for tests and benchmarks: one plugin enabled, statically
//! linked, its config section given as TOML text. The plugin is a type
//! parameter (`host::<DriftPlugin>(dir, "drift")`): the host depends on no
//! plugin, so the test names the one it links in.

use std::path::Path;
use std::sync::Arc;

use learnloop_config::Config;
use learnloop_plugin_api::Plugin;
use learnloop_plugin_host::{PluginHost, Registry};
use learnloop_store::Store;

use crate::store::{fast, test_store};

/// The config of a test host: only `plugin` enabled, with `section` (TOML
/// text; empty for the defaults) as its section, and a plugin directory
/// under `dir` that holds no libraries, so the built-in plugin is used.
pub fn config(dir: &Path, plugin: &str, section: &str) -> Config {
    let mut c = Config::default();
    c.plugins.dir = dir.join("no-plugins");
    c.plugins.enabled = vec![plugin.to_string()];
    if !section.is_empty() {
        let table: toml::Table =
            toml::from_str(section).unwrap_or_else(|e| panic!("bad test section [{plugin}] {section:?}: {e}"));
        c.plugin_sections.insert(plugin.to_string(), table);
    }
    c
}

/// A host on `store` running `plugin`, linked in as `P`, with `section`
/// (see [`config`]); panics when the plugin does not load.
pub fn host_on<P: Plugin + Default + 'static>(
    store: Arc<dyn Store>,
    dir: &Path,
    plugin: &'static str,
    section: &str,
) -> PluginHost {
    let registry = Registry::new().with_default::<P>(plugin);
    let host = PluginHost::load(&registry, &config(dir, plugin, section), store);
    assert!(host.load_errors.is_empty(), "{:?}", host.load_errors);
    host
}

/// A host running `plugin` with its default config on a fresh
/// [`test_store`] in `dir` (SQLite without fsync per commit, or PostgreSQL).
pub fn host<P: Plugin + Default + 'static>(dir: &Path, plugin: &'static str) -> PluginHost {
    host_on::<P>(test_store(dir, &fast()), dir, plugin, "")
}

/// Ingests `records` through the host's ingest path with ingestion time
/// `now` (µs), asserting that every one was inserted.
pub fn ingest_all(host: &PluginHost, records: Vec<learnloop_core::Record>, now_us: i64) {
    let now = learnloop_core::Timestamp::from_micros(now_us).expect("a valid time");
    let statuses = host.ingest(records, now).expect("ingest");
    assert!(
        statuses.iter().all(|s| *s == learnloop_plugin_host::IngestStatus::Inserted),
        "{:?}",
        statuses.iter().find(|s| **s != learnloop_plugin_host::IngestStatus::Inserted)
    );
}

/// Calls a plugin route in workspace `workspace`, asserting a 200 answer;
/// returns its body.
pub fn call(
    host: &PluginHost,
    plugin: &str,
    workspace: &str,
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    body: serde_json::Value,
) -> serde_json::Value {
    let ws = learnloop_core::WorkspaceId::parse("workspace", workspace).expect("a valid workspace");
    let q = query.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let r = host.handle(plugin, &ws, method, path, q, body).unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    assert_eq!(r.status, 200, "{method} {path}: {}", r.body);
    r.body
}
