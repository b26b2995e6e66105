//! `learnloop`, the command-line tool for people and scripts.
//!
//! It works on the embedded data directory directly. Exit codes: 0 success
//! (also when the reader of stdout closed it early, as in `| head`); 1 an
//! error stopped the command, including a configuration error such as an
//! enabled plugin that refuses its section; 2 the command finished but some
//! input was rejected (ingest), so scripts can tell "all landed" from "some
//! landed".

#[macro_use]
mod output;

mod call;
mod config;
mod csv_rows;
mod export;
mod improvements;
mod ingest;
mod jobs;
mod json_array;
mod keys;
mod migrate;
mod notifications;
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
use learnloop_config::{Config, Sources};

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
    /// Feed a stream with known truth through a plugin (on a temporary store) and compare each learned decision with its truth and a naive baseline.
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
    /// Notifications: list deliveries, retry a dead one, test a destination, deliver once.
    #[command(subcommand)]
    Notifications(notifications::Command),
    /// Copy an embedded (SQLite) installation into PostgreSQL, counts verified.
    Migrate(migrate::Args),
    /// Call any plugin route on the local data directory (or a server with --server), e.g. `call trust GET /agents`.
    Call(call::Args),
    /// Rebuild the vector index from the store (after switching embedders, or when it was lost).
    Reindex,
    /// Check the config file for every error at once, or show the effective configuration.
    #[command(subcommand)]
    Config(config::Command),
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
    /// Where each configuration value came from.
    pub sources: Sources,
    /// JSON output.
    pub json: bool,
}

fn load_env(cli: &Cli, for_init: bool) -> Result<Env> {
    let path = learnloop_config::discover(cli.config.as_deref());
    // `init` may be asked to create the file it is pointed at.
    let load_path = path.as_deref().filter(|p| !for_init || p.exists());
    let (mut config, sources) = Config::load_with_sources(load_path, std::env::vars())?;
    if let Some(dir) = &cli.data_dir {
        config.data_dir = dir.clone();
    }
    Ok(Env { config, config_path: path, sources, json: cli.json })
}

/// Creates the data directory and the plugin directory (`[plugins] dir`,
/// default `<data_dir>/plugins`), so that copying a plugin library there
/// works as documented. Returns the plugin directory.
pub fn create_dirs(config: &Config) -> Result<PathBuf> {
    let data_dir = &config.data_dir;
    std::fs::create_dir_all(data_dir).with_context(|| format!("cannot create {}", data_dir.display()))?;
    let plugin_dir = config.plugin_dir();
    std::fs::create_dir_all(&plugin_dir)
        .with_context(|| format!("cannot create the plugin directory {}", plugin_dir.display()))?;
    Ok(plugin_dir)
}

fn init(env: &Env, cli: &Cli, args: &InitArgs) -> Result<()> {
    let data_dir = env.config.data_dir.clone();
    let plugin_dir = create_dirs(&env.config)?;
    let store = learnloop_services::open_store(&env.config)?;
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
        outln!(
            "{}",
            serde_json::json!({
                "data_dir": data_dir, "store": store.backend(), "plugin_dir": plugin_dir,
                "config": config_path, "config_written": wrote_config,
            })
        )?;
    } else {
        outln!("data directory: {} ({} store ready)", data_dir.display(), store.backend())?;
        outln!("plugin dir:     {} (for plugin libraries)", plugin_dir.display())?;
        if wrote_config {
            outln!("config file:    {} (every key commented)", config_path.display())?;
        } else {
            outln!("config file:    {} (exists, left as it is; --force rewrites it)", config_path.display())?;
        }
    }
    Ok(())
}

/// Opens the store and loads the enabled plugins. Commands other than
/// `plugins`, `config` and `init` have already refused to run when an enabled
/// plugin fails to load (see [`require_plugins`]); for `plugins list`, which
/// shows such failures, they are also printed here.
pub fn open_host(config: &Config) -> Result<learnloop_plugin_host::PluginHost> {
    let store = learnloop_services::open_store(config)?;
    let services = learnloop_services::open(config, learnloop_services::Role::Cli)?;
    let host =
        learnloop_plugin_host::PluginHost::load(&learnloop_plugins::registry(), config, store).with_services(services);
    for e in &host.load_errors {
        errln!("learnloop: warning: {e}");
    }
    Ok(host)
}

/// Quotes a string as a TOML basic string.
fn toml_string(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialise")
}

/// Refuses to go on when an enabled plugin fails to load or refuses its
/// config section, naming the file, the key and the reason: a command must
/// not run with a plugin silently missing. Nothing is opened for this.
fn require_plugins(env: &Env) -> Result<()> {
    learnloop_plugin_host::require_plugins(&learnloop_plugins::registry(), &env.config, &env.sources).map_err(|e| {
        anyhow::anyhow!("{e}\n(`learnloop config check` lists every error; `learnloop plugins list` shows what loads)")
    })?;
    Ok(())
}

fn run(cli: &Cli) -> Result<ExitCode> {
    if let Command::Config(cmd) = &cli.command {
        // `config check` reports a broken file instead of failing to load it.
        return config::run(cli.config.as_deref(), cli.data_dir.as_deref(), cli.json, cmd);
    }
    let env = load_env(cli, matches!(cli.command, Command::Init(_)))?;
    if !matches!(cli.command, Command::Init(_) | Command::Plugins(_)) {
        require_plugins(&env)?;
    }
    match &cli.command {
        Command::Init(args) => init(&env, cli, args).map(|_| ExitCode::SUCCESS),
        Command::Ingest(args) => ingest::run(&env, args),
        Command::Export(args) => export::run(&env, args).map(|_| ExitCode::SUCCESS),
        Command::Stats(args) => stats::run(&env, args).map(|_| ExitCode::SUCCESS),
        Command::Sample(args) => sample::run(&env, args).map(|_| ExitCode::SUCCESS),
        Command::Simulate(_) if cli.data_dir.is_some() => {
            anyhow::bail!(
                "--data-dir: simulate runs on a temporary store of its own and never touches a data directory"
            )
        }
        Command::Simulate(args) => simulate::run(&env, args).map(|_| ExitCode::SUCCESS),
        Command::Quickstart => quickstart::run(&env).map(|_| ExitCode::SUCCESS),
        Command::Plugins(cmd) => plugins::run(&env, cmd).map(|_| ExitCode::SUCCESS),
        Command::Replay(args) => plugins::replay(&env, args).map(|_| ExitCode::SUCCESS),
        Command::Keys(cmd) => keys::run(&env, cmd).map(|_| ExitCode::SUCCESS),
        Command::Jobs(cmd) => jobs::run(&env, cmd).map(|_| ExitCode::SUCCESS),
        Command::Improvements(cmd) => improvements::run(&env, cmd).map(|_| ExitCode::SUCCESS),
        Command::Call(args) => call::run(&env, args).map(|_| ExitCode::SUCCESS),
        Command::Notifications(cmd) => notifications::run(&env, cmd).map(|_| ExitCode::SUCCESS),
        Command::Migrate(args) => migrate::run(&env, args).map(|_| ExitCode::SUCCESS),
        Command::Reindex => reindex::run(&env).map(|_| ExitCode::SUCCESS),
        Command::Config(_) => unreachable!("handled above"),
    }
}

fn main() -> ExitCode {
    // A probe child checking a plugin library serves that and exits here.
    learnloop_plugin_host::probe::init();
    let cli = Cli::parse();
    match run(&cli) {
        // The reader of stdout went away (`| head`): that is its choice, not
        // an error, however the write error was wrapped on its way here.
        Err(_) if output::stdout_closed() => ExitCode::SUCCESS,
        Ok(code) => code,
        Err(e) => {
            errln!("learnloop: error: {e:#}");
            ExitCode::from(1)
        }
    }
}
