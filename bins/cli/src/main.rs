//! `learnloop`, the command-line tool for people and scripts.
//!
//! It works on the embedded data directory directly. Exit codes: 0 success;
//! 1 an error stopped the command; 2 the command finished but some input was
//! rejected (ingest), so scripts can tell "all landed" from "some landed".

mod call;
mod export;
mod improvements;
mod ingest;
mod jobs;
mod keys;
mod migrate;
mod plugins;
mod progress;
mod quickstart;
mod reindex;
mod remote;
mod sample;
mod simulate;
mod stats;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use learnloop_config::Config;

/// learnloop closes the loop between what AI systems predict and what really happens.
#[derive(Parser)]
#[command(name = "learnloop", version, about, long_about = None)]
struct Cli {
    /// Config file. Default: $LEARNLOOP_CONFIG, else ./learnloop.toml if it exists, else built-in defaults.
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Data directory; overrides `data_dir` from the config.
    #[arg(long, global = true, value_name = "PATH")]
    data_dir: Option<PathBuf>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the data directory (with an empty store) and a commented config file.
    Init(InitArgs),
    /// Ingest predictions and outcomes from JSONL or CSV files, or stdin.
    Ingest(ingest::Args),
    /// Export predictions and outcomes as JSONL (re-ingestable).
    Export(export::Args),
    /// Counts per workspace, plugin and kind, and predictions still waiting for an outcome.
    Stats(stats::Args),
    /// Write deterministic sample events (JSONL) for all four plugins.
    Sample(sample::Args),
    /// Feed a stream with known truth through a plugin and compare each learned decision with its truth and a naive baseline.
    Simulate(simulate::Args),
    /// Try learnloop on sample data: init, ingest, re-ingest, show what was stored and learned.
    Quickstart,
    /// List the plugins, or check a plugin library.
    #[command(subcommand)]
    Plugins(plugins::Command),
    /// Rebuild a plugin's state from the event history.
    Replay(plugins::ReplayArgs),
    /// Create, list and revoke API keys.
    #[command(subcommand)]
    Keys(keys::Command),
    /// List jobs, run one now (locally or on a server), show run history.
    #[command(subcommand)]
    Jobs(jobs::Command),
    /// The improvement lifecycle: list, show, applied, approve, reject, rollback, process.
    #[command(subcommand)]
    Improvements(improvements::Command),
    /// Copy an embedded (SQLite) installation into PostgreSQL, counts verified.
    Migrate(migrate::Args),
    /// Call any plugin route on the local data directory (or a server with --server), e.g. `call trust GET /agents`.
    Call(call::Args),
    /// Rebuild the vector index from the store (after switching embedders, or when it was lost).
    Reindex,
}

#[derive(clap::Args)]
struct InitArgs {
    /// Overwrite an existing config file.
    #[arg(long)]
    force: bool,
}

/// Default of every `--limit` (the same as the API's `limit` parameter):
/// list commands show at most this many rows unless asked for more.
pub const DEFAULT_LIMIT: u32 = 100;
/// Largest `--limit` any command accepts (the API's maximum too).
pub const MAX_LIMIT: u32 = 10_000;

/// What every command needs: the loaded config and output mode.
pub struct Env {
    /// The effective configuration.
    pub config: Config,
    /// The config file that was loaded, if any.
    pub config_path: Option<PathBuf>,
    /// JSON output.
    pub json: bool,
}

fn load_env(cli: &Cli, for_init: bool) -> Result<Env> {
    let path = learnloop_config::discover(cli.config.as_deref());
    // `init` may be asked to create the file it is pointed at.
    let load_path = path.as_deref().filter(|p| !(for_init && !p.exists()));
    let mut config = Config::load(load_path)?;
    if let Some(dir) = &cli.data_dir {
        config.data_dir = dir.clone();
    }
    Ok(Env { config, config_path: path, json: cli.json })
}

/// Creates the data directory and the plugin directory (`[plugins] dir`,
/// default `<data_dir>/plugins`), so that copying a plugin library there
/// works as documented. Returns the plugin directory.
pub fn create_dirs(config: &Config) -> Result<PathBuf> {
    let data_dir = &config.data_dir;
    std::fs::create_dir_all(data_dir).with_context(|| format!("cannot create {}", data_dir.display()))?;
    let plugin_dir = config.plugin_dir();
    std::fs::create_dir_all(&plugin_dir).with_context(|| format!("cannot create the plugin directory {}", plugin_dir.display()))?;
    Ok(plugin_dir)
}

fn init(env: &Env, cli: &Cli, args: &InitArgs) -> Result<()> {
    let data_dir = env.config.data_dir.clone();
    let plugin_dir = create_dirs(&env.config)?;
    let store = learnloop_store::open(&env.config)?;
    let config_path = env.config_path.clone().unwrap_or_else(|| PathBuf::from("learnloop.toml"));
    let wrote_config = if config_path.exists() && !args.force {
        false
    } else {
        let mut text = learnloop_config::SHIPPED_CONFIG.to_string();
        if cli.data_dir.is_some() {
            let line = format!("data_dir = {}", toml_string(&data_dir.display().to_string()));
            text = text.replacen("data_dir = \"learnloop-data\"", &line, 1);
        }
        if let Some(parent) = config_path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&config_path, text).with_context(|| format!("cannot write {}", config_path.display()))?;
        true
    };
    if env.json {
        println!(
            "{}",
            serde_json::json!({
                "data_dir": data_dir, "store": store.backend(), "plugin_dir": plugin_dir,
                "config": config_path, "config_written": wrote_config,
            })
        );
    } else {
        println!("data directory: {} ({} store ready)", data_dir.display(), store.backend());
        println!("plugin dir:     {} (for plugin libraries)", plugin_dir.display());
        if wrote_config {
            println!("config file:    {} (every key commented)", config_path.display());
        } else {
            println!("config file:    {} (exists, left as it is; --force rewrites it)", config_path.display());
        }
    }
    Ok(())
}

/// Opens the store and loads the enabled plugins. Load failures are
/// printed and the other plugins keep working.
pub fn open_host(config: &Config) -> Result<learnloop_plugin_host::PluginHost> {
    let store = learnloop_store::open(config)?;
    let services = learnloop_services::open(config, learnloop_services::Role::Cli)?;
    let host = learnloop_plugin_host::PluginHost::load(config, store).with_services(services);
    for e in &host.load_errors {
        eprintln!("learnloop: warning: {e}");
    }
    Ok(host)
}

/// Quotes a string as a TOML basic string.
fn toml_string(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialise")
}

fn run(cli: &Cli) -> Result<ExitCode> {
    let env = load_env(cli, matches!(cli.command, Command::Init(_)))?;
    match &cli.command {
        Command::Init(args) => init(&env, cli, args).map(|_| ExitCode::SUCCESS),
        Command::Ingest(args) => ingest::run(&env, args),
        Command::Export(args) => export::run(&env, args).map(|_| ExitCode::SUCCESS),
        Command::Stats(args) => stats::run(&env, args).map(|_| ExitCode::SUCCESS),
        Command::Sample(args) => sample::run(&env, args).map(|_| ExitCode::SUCCESS),
        Command::Simulate(args) => simulate::run(&env, args).map(|_| ExitCode::SUCCESS),
        Command::Quickstart => quickstart::run(&env).map(|_| ExitCode::SUCCESS),
        Command::Plugins(cmd) => plugins::run(&env, cmd).map(|_| ExitCode::SUCCESS),
        Command::Replay(args) => plugins::replay(&env, args).map(|_| ExitCode::SUCCESS),
        Command::Keys(cmd) => keys::run(&env, cmd).map(|_| ExitCode::SUCCESS),
        Command::Jobs(cmd) => jobs::run(&env, cmd).map(|_| ExitCode::SUCCESS),
        Command::Improvements(cmd) => improvements::run(&env, cmd).map(|_| ExitCode::SUCCESS),
        Command::Call(args) => call::run(&env, args).map(|_| ExitCode::SUCCESS),
        Command::Migrate(args) => migrate::run(&env, args).map(|_| ExitCode::SUCCESS),
        Command::Reindex => reindex::run(&env).map(|_| ExitCode::SUCCESS),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("learnloop: error: {e:#}");
            ExitCode::from(1)
        }
    }
}
