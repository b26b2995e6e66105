//! `learnloop simulate --plugin P`: streams with known truth fed causally
//! through the real host (a temporary embedded store, `PluginHost` ingest
//! and jobs), each learned decision reported against its truth and a naive
//! baseline.
//!
//! The plugin's settings and the `[improvements]` policy come from the
//! config; the store is always a temporary embedded one (removed at the
//! end), so `--data-dir` is refused.
//!
//! Each plugin's scenario is a sibling module exposing
//! `pub fn run(seed: u64, config: &Config) -> anyhow::Result<Report>`,
//! listed in [`SCENARIOS`]. A scenario is built only with its plugin (the
//! CLI's `plugin-<name>` features), so a CLI built for one plugin has that
//! plugin's scenario alone.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::Env;

#[cfg(feature = "plugin-cost")]
pub mod cost;
#[cfg(feature = "plugin-drift")]
pub mod drift;
#[cfg(feature = "plugin-persona")]
pub mod persona;
#[cfg(feature = "plugin-trust")]
pub mod trust;

#[derive(clap::Args)]
pub struct Args {
    /// The plugin whose scenario to run.
    #[arg(long)]
    plugin: String,
    /// Random seed of the generated stream (same seed, same stream and table).
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// One learned decision against its truth and its naive baseline.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// What is decided.
    pub decision: String,
    /// The metric the row compares (its direction in `lower_is_better`).
    pub metric: String,
    /// What learnloop learned / served, measured on outcomes it had not seen.
    pub learned: f64,
    /// The same metric for the true (generating) model, where it has one.
    pub truth: Option<f64>,
    /// The same metric for the naive rule named in `baseline_rule`.
    pub baseline: f64,
    /// The naive rule.
    pub baseline_rule: String,
    /// Whether lower values are better (else: closer to `truth` is better).
    pub lower_is_better: bool,
    /// Whether the learned decision beats the baseline.
    pub beats_baseline: bool,
}

/// What a scenario reports.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The plugin.
    pub plugin: &'static str,
    /// The seed.
    pub seed: u64,
    /// What was generated and how it was fed.
    pub stream: serde_json::Value,
    /// The decisions.
    pub rows: Vec<Row>,
}

/// A scenario: a seed and the config in, a report out.
#[allow(dead_code, reason = "unused in a build with no plugin")]
type Scenario = fn(u64, &learnloop_config::Config) -> Result<Report>;

/// The scenarios by plugin name (those of the plugins built in).
const SCENARIOS: &[(&str, Scenario)] = &[
    #[cfg(feature = "plugin-cost")]
    ("cost", cost::run),
    #[cfg(feature = "plugin-drift")]
    ("drift", drift::run),
    #[cfg(feature = "plugin-persona")]
    ("persona", persona::run),
    #[cfg(feature = "plugin-trust")]
    ("trust", trust::run),
];

/// Runs the scenario of `plugin` with `seed`.
pub fn simulate(plugin: &str, seed: u64, config: &learnloop_config::Config) -> Result<Report> {
    match SCENARIOS.iter().find(|(p, _)| *p == plugin) {
        Some((_, run)) => run(seed, config),
        None => {
            let known: Vec<&str> = SCENARIOS.iter().map(|(p, _)| *p).collect();
            if let Some(remedy) = learnloop_plugins::registry().left_out(plugin) {
                bail!(
                    "--plugin {plugin:?}: this binary was built without the {plugin} plugin ({remedy}) (scenarios: {})",
                    known.join(", ")
                );
            }
            bail!("--plugin {plugin:?}: no simulation scenario for that plugin (scenarios: {})", known.join(", "))
        }
    }
}

pub fn run(env: &Env, args: &Args) -> Result<()> {
    let report = simulate(&args.plugin, args.seed, &env.config)?;
    if env.json {
        outln!("{}", serde_json::to_string_pretty(&report)?)?;
        return Ok(());
    }
    outln!("== learnloop simulate --plugin {} --seed {}", report.plugin, report.seed)?;
    // The stream's scalar facts as `key value` pairs (the full description is in `--json`).
    let facts: Vec<String> = report
        .stream
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, v)| !v.is_object() && !v.is_array())
        .map(|(k, v)| format!("{k} {}", v.as_str().map_or_else(|| v.to_string(), str::to_string)))
        .collect();
    outln!("stream: {}", facts.join(", "))?;
    outln!(
        "{:<34} {:<20} {:>9} {:>9} {:>9}  {:<7} baseline rule",
        "decision",
        "metric",
        "learned",
        "truth",
        "baseline",
        "beats?"
    )?;
    for r in &report.rows {
        let truth = r.truth.map_or("-".to_string(), |t| format!("{t:.4}"));
        outln!(
            "{:<34} {:<20} {:>9.4} {:>9} {:>9.4}  {:<7} {}",
            r.decision,
            r.metric,
            r.learned,
            truth,
            r.baseline,
            if r.beats_baseline { "yes" } else { "NO" },
            r.baseline_rule
        )?;
    }
    Ok(())
}

/// A temporary data directory, removed when dropped.
pub struct TempDir(tempfile::TempDir);

impl TempDir {
    /// A fresh directory under the system's temporary directory.
    pub fn new(tag: &str) -> Result<TempDir> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("learnloop-simulate-{tag}-"))
            .tempdir()
            .context("cannot create a temporary directory")?;
        Ok(TempDir(dir))
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

/// A host with only `plugin` enabled on an embedded store in `dir`, with
/// the plugin settings and improvement policy of `config`.
pub fn host(dir: &Path, plugin: &str, config: &learnloop_config::Config) -> Result<learnloop_plugin_host::PluginHost> {
    let mut c = config.clone();
    c.data_dir = dir.to_path_buf();
    c.store.url = String::new();
    c.plugins.dir = dir.join("no-plugins");
    c.plugins.enabled = vec![plugin.to_string()];
    let store: Arc<dyn learnloop_store::Store> = learnloop_services::open_store(&c)?;
    let host = learnloop_plugin_host::PluginHost::load(&learnloop_plugins::registry(), &c, store);
    if let Some(e) = host.load_errors.first() {
        bail!("cannot load the {plugin} plugin: {e}");
    }
    Ok(host)
}
