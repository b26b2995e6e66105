//! `learnloop config check` and `learnloop config show`.
//!
//! `check` validates the whole file without starting anything — no store is
//! opened or created, no server started — and reports every error at once
//! with its key: core keys (types, ranges, unknown keys), each enabled
//! plugin's section (through the plugin's own configure, key by key), job
//! overrides and their cron expressions, the store URL, paths and the bind
//! address. `show` prints the effective configuration and where each value
//! came from, secrets masked.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use learnloop_config::{Config, ConfigError, Setting, Source, check_file};
use learnloop_plugin_host::check_plugins;
use serde_json::json;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Validate the config file without opening or starting anything; list every error
    ///
    /// Checks the core keys, every enabled plugin's section (through the
    /// plugin, key by key), job overrides and their cron expressions, the
    /// store URL (without connecting), paths and the bind address, and prints
    /// every error with its file (or environment variable) and key. Exit 1 on
    /// errors; otherwise prints `FILE: OK`.
    Check,
    /// Print the effective configuration and where each value came from
    ///
    /// One `key = value  # source` line per value; the source is the file,
    /// an environment variable (LEARNLOOP__SECTION__KEY), an option
    /// (--data-dir) or the default (plugin keys show the plugin's default).
    /// Secrets are masked: keys named key, *_key, *token*, *secret*,
    /// *password*, and passwords in URLs.
    Show,
}

pub fn run(config: Option<&Path>, data_dir: Option<&Path>, json: bool, cmd: &Command) -> Result<ExitCode> {
    let path = learnloop_config::discover(config);
    match cmd {
        Command::Check => check(path.as_deref(), data_dir, json),
        Command::Show => show(path.as_deref(), data_dir, json),
    }
}

/// Every error in the file, in the order found.
fn errors(path: Option<&Path>, data_dir: Option<&Path>) -> (String, Vec<ConfigError>) {
    let report = check_file(path, std::env::vars());
    let mut errors = report.errors;
    let origin = path.map_or_else(|| "built-in defaults".to_string(), |p| p.display().to_string());
    let Some(mut config) = report.config else { return (origin, errors) };
    if let Some(d) = data_dir {
        config.data_dir = d.to_owned();
    }
    let sources = report.sources;
    let invalid = |key: String, message: String| ConfigError::Invalid { origin: sources.origin_of(&key), key, message };

    // Plugin sections, through each plugin's own configure.
    let plugins = check_plugins(&learnloop_plugins::registry(), &config);
    errors.extend(plugins.errors.iter().map(|(name, e)| e.config_error(name, &sources)));

    // Job overrides: each on its own, so every bad one is named.
    let manifests: Vec<(&str, &[learnloop_plugin_api::JobSpec])> =
        plugins.manifests.iter().map(|(n, m)| (n.as_str(), m.jobs.as_slice())).collect();
    for (key, job) in &config.scheduler.jobs {
        let mut one = config.clone();
        one.scheduler.jobs = [(key.clone(), job.clone())].into_iter().collect();
        if let Err(e) = learnloop_scheduler::scheduled_jobs(&one, manifests.iter().copied()) {
            errors.push(invalid(e.key, e.message));
        }
    }

    // The store URL, without connecting.
    if let Err(message) = learnloop_store::check_url(&learnloop_services::store_url(&config)) {
        errors.push(invalid("store.url".into(), message));
    }

    // Paths.
    if config.data_dir.exists() && !config.data_dir.is_dir() {
        errors.push(invalid("data_dir".into(), format!("{} exists and is not a directory", config.data_dir.display())));
    }
    if !config.plugins.dir.as_os_str().is_empty() && !config.plugins.dir.is_dir() {
        errors.push(invalid(
            "plugins.dir".into(),
            format!("{} is not a directory (empty means <data_dir>/plugins)", config.plugins.dir.display()),
        ));
    }
    let key_file = config.data_dir.join(&config.auth.admin_key_file);
    if config.auth.admin_key_file.as_os_str().is_empty() || key_file.is_dir() {
        errors.push(invalid("auth.admin_key_file".into(), format!("{} must name a file", key_file.display())));
    }

    // The bind address must resolve.
    if let Err(message) = config.api.bind.resolve() {
        errors.push(invalid("api.bind".into(), message));
    }
    (origin, errors)
}

fn error_json(e: &ConfigError) -> serde_json::Value {
    match e {
        ConfigError::Invalid { origin, key, message } => json!({"origin": origin, "key": key, "message": message}),
        ConfigError::Syntax { origin, message } => json!({"origin": origin, "key": null, "message": message}),
        ConfigError::Read { path, source } => json!({"origin": path, "key": null, "message": source.to_string()}),
    }
}

fn check(path: Option<&Path>, data_dir: Option<&Path>, json: bool) -> Result<ExitCode> {
    let (origin, errors) = errors(path, data_dir);
    if json {
        let list: Vec<_> = errors.iter().map(error_json).collect();
        outln!("{}", json!({"file": origin, "ok": errors.is_empty(), "errors": list}))?;
    } else if errors.is_empty() {
        outln!("{origin}: OK")?;
    } else {
        for e in &errors {
            errln!("error: {e}");
        }
        errln!("{origin}: {} error{}", errors.len(), if errors.len() == 1 { "" } else { "s" });
    }
    Ok(if errors.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn show(path: Option<&Path>, data_dir: Option<&Path>, json: bool) -> Result<ExitCode> {
    let (mut config, sources) = Config::load_with_sources(path, std::env::vars())
        .context("the configuration does not load; `learnloop config check` lists every error")?;
    if let Some(d) = data_dir {
        config.data_dir = d.to_owned();
    }
    let mut settings = config.settings(&sources);
    if data_dir.is_some()
        && let Some(s) = settings.iter_mut().find(|s| s.key == "data_dir")
    {
        s.source = Source::Option("--data-dir".into());
    }
    // Plugin keys nobody set, with the plugin's default.
    for (name, manifest) in check_plugins(&learnloop_plugins::registry(), &config).manifests {
        for key in &manifest.config {
            let dotted = format!("{name}.{}", key.key);
            if settings.iter().any(|s| s.key == dotted) {
                continue;
            }
            if let Ok(value) = toml::Value::try_from(&key.default) {
                settings.push(Setting { key: dotted, value, source: Source::Default });
            }
        }
    }
    settings.sort_by(|a, b| a.key.cmp(&b.key));
    let file = path.map_or_else(|| "built-in defaults".to_string(), |p| p.display().to_string());
    if json {
        outln!("{}", json!({"file": file, "settings": settings}))?;
        return Ok(ExitCode::SUCCESS);
    }
    outln!("# effective configuration ({file})")?;
    let width = settings.iter().map(|s| s.key.len()).max().unwrap_or(0);
    for s in &settings {
        let value = s.value.to_string();
        outln!("{:width$} = {value}  # {}", s.key, s.source)?;
    }
    Ok(ExitCode::SUCCESS)
}
