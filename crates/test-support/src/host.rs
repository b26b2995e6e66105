//! Plugin hosts for tests and benchmarks: one plugin enabled, statically
//! linked, its config section given as TOML text.

use std::path::Path;
use std::sync::Arc;

use learnloop_config::Config;
use learnloop_plugin_host::PluginHost;
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

/// A host on `store` running `plugin` with `section` (see [`config`]);
/// panics when the plugin does not load.
pub fn host_on(store: Arc<dyn Store>, dir: &Path, plugin: &str, section: &str) -> PluginHost {
    let host = PluginHost::load(&config(dir, plugin, section), store);
    assert!(host.load_errors.is_empty(), "{:?}", host.load_errors);
    host
}

/// A host running `plugin` with its default config on a fresh
/// [`test_store`] in `dir` (SQLite without fsync per commit, or PostgreSQL).
pub fn host(dir: &Path, plugin: &str) -> PluginHost {
    host_on(test_store(dir, &fast()), dir, plugin, "")
}
