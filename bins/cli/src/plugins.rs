//! `learnloop plugins` and `learnloop replay`: what is loaded, checking a
//! library before deploying it, and rebuilding plugin state from history.

use std::path::PathBuf;

use anyhow::{Result, bail};
use learnloop_core::WorkspaceId;
use learnloop_plugin_host::{Origin, PluginHost, load_library};
use serde_json::{Value, json};

use crate::Env;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Every plugin: name, version, static or dynamic, path, routes, jobs, enabled or not, load errors.
    List,
    /// Load a plugin library (.so) and report its manifest or why it cannot load
    /// (it is opened in a child process first: a library that crashes is reported, not fatal).
    Check {
        /// The library.
        path: PathBuf,
    },
}

#[derive(clap::Args)]
pub struct ReplayArgs {
    /// The plugin whose state to rebuild.
    #[arg(long)]
    plugin: String,
    /// Only this workspace (default: every workspace with events for the plugin).
    #[arg(long)]
    workspace: Option<String>,
}

fn manifest_json(m: &learnloop_plugin_api::Manifest) -> Value {
    json!({
        "version": m.version,
        "abi_version": m.abi_version,
        "description": m.description,
        "routes": m.routes.iter().map(|r| format!("{} /api/v1/{}{}", r.method, m.name, r.path)).collect::<Vec<_>>(),
        "jobs": m.jobs.iter().map(|j| json!({"name": j.name, "schedule": j.schedule, "description": j.description})).collect::<Vec<_>>(),
    })
}

pub fn run(env: &Env, cmd: &Command) -> Result<()> {
    match cmd {
        Command::List => list(env),
        Command::Check { path } => check(env, path),
    }
}

fn list(env: &Env) -> Result<()> {
    let host = crate::open_host(&env.config)?;
    let mut rows = Vec::new();
    for (name, l) in host.plugins() {
        let mut row = manifest_json(&l.manifest);
        row["name"] = json!(name);
        row["enabled"] = json!(true);
        match &l.origin {
            Origin::Static => row["origin"] = json!("static"),
            Origin::Dynamic { path } => {
                row["origin"] = json!("dynamic");
                row["path"] = json!(path);
            }
        }
        rows.push(row);
    }
    for name in host.registry().names() {
        if !env.config.plugin_enabled(name) {
            rows.push(json!({"name": name, "origin": "static", "enabled": false}));
        }
    }
    // Built-in plugins this binary was built without (its `plugin-<name>` features).
    for (name, _) in learnloop_plugins::FEATURES {
        if let Some(remedy) = host.registry().left_out(name)
            && !host.plugins().contains_key(name)
        {
            rows.push(json!({"name": name, "origin": "not_built_in", "enabled": env.config.plugin_enabled(name), "remedy": remedy}));
        }
    }
    let errors: Vec<String> = host.load_errors.iter().map(|e| e.to_string()).collect();
    if env.json {
        outln!("{}", json!({"plugins": rows, "load_errors": errors, "plugin_dir": env.config.plugin_dir()}))?;
        return Ok(());
    }
    for r in &rows {
        let name = r["name"].as_str().unwrap_or("");
        if let Some(remedy) = r["remedy"].as_str() {
            outln!("{name:8} not built into this binary ({remedy})")?;
            continue;
        }
        if r["enabled"] == json!(false) {
            outln!("{name:8} disabled (built in; enable it in [plugins] enabled)")?;
            continue;
        }
        let origin = match r["path"].as_str() {
            Some(p) => format!("dynamic {p}"),
            None => "static".to_string(),
        };
        outln!("{name:8} {} ({origin})", r["version"].as_str().unwrap_or(""))?;
        for route in r["routes"].as_array().into_iter().flatten() {
            outln!("         route {}", route.as_str().unwrap_or(""))?;
        }
        for job in r["jobs"].as_array().into_iter().flatten() {
            outln!(
                "         job   {} [{}]",
                job["name"].as_str().unwrap_or(""),
                job["schedule"].as_str().unwrap_or("")
            )?;
        }
    }
    for e in &errors {
        outln!("load error: {e}")?;
    }
    outln!("plugin directory: {}", env.config.plugin_dir().display())?;
    Ok(())
}

fn check(env: &Env, path: &std::path::Path) -> Result<()> {
    // Configure it with its section from the config, as the host would.
    let name_guess = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("")
        .trim_start_matches("lib")
        .trim_start_matches("learnloop_plugin_");
    let section = learnloop_plugin_host::plugin_section(&env.config, name_guess);
    match load_library(path, &section) {
        Ok(l) => {
            let mut v = manifest_json(&l.manifest);
            v["name"] = json!(l.manifest.name);
            v["ok"] = json!(true);
            if env.json {
                outln!("{v}")?;
            } else {
                outln!(
                    "{}: ok — plugin {:?} {} (ABI {})",
                    path.display(),
                    l.manifest.name,
                    l.manifest.version,
                    l.manifest.abi_version
                )?;
                for r in v["routes"].as_array().into_iter().flatten() {
                    outln!("  route {}", r.as_str().unwrap_or(""))?;
                }
                for j in v["jobs"].as_array().into_iter().flatten() {
                    outln!("  job   {} [{}]", j["name"].as_str().unwrap_or(""), j["schedule"].as_str().unwrap_or(""))?;
                }
            }
            Ok(())
        }
        Err(e) => {
            if env.json {
                outln!("{}", json!({"ok": false, "error": e.to_string()}))?;
            }
            bail!("{e}")
        }
    }
}

pub fn replay(env: &Env, args: &ReplayArgs) -> Result<()> {
    let host: PluginHost = crate::open_host(&env.config)?;
    let ws = args
        .workspace
        .as_deref()
        .map(|w| WorkspaceId::parse("--workspace", w))
        .transpose()
        .map_err(anyhow::Error::msg)?;
    // How many events each workspace's rebuild absorbs, for the progress bar.
    let show = crate::progress::wanted(env.json);
    let totals: Vec<(String, u64)> = if show {
        host.store()
            .counts(ws.as_ref())?
            .into_iter()
            .filter(|r| r.plugin == args.plugin)
            .map(|r| (r.workspace, r.predictions + r.outcomes))
            .collect()
    } else {
        Vec::new()
    };
    let mut bar: Option<(String, indicatif::ProgressBar)> = None;
    let done = host.replay_with(&args.plugin, ws.as_ref(), &mut |p| {
        let key = p.workspace.to_string();
        if bar.as_ref().is_none_or(|(w, _)| *w != key) {
            if let Some((_, b)) = bar.take() {
                b.finish_and_clear();
            }
            let total: u64 = totals.iter().filter(|(w, _)| *w == key).map(|(_, n)| n).sum();
            let phase = format!("replaying {} in {key}", args.plugin);
            bar = Some((
                key,
                crate::progress::bar(show, &phase, crate::progress::Unit::Events, Some(total.max(p.absorbed))),
            ));
        }
        if let Some((_, b)) = &bar {
            if b.length().is_some_and(|l| p.absorbed > l) {
                b.set_length(p.absorbed);
            }
            b.set_position(p.absorbed);
        }
    });
    if let Some((_, b)) = bar.take() {
        b.finish_and_clear();
    }
    let done = done?;
    if env.json {
        outln!("{}", json!({"plugin": args.plugin, "workspaces": done}))?;
    } else if done.is_empty() {
        outln!("{}: no events to replay", args.plugin)?;
    } else {
        for (ws, n) in done {
            outln!("{}: rebuilt state in workspace {ws} from {n} events", args.plugin)?;
        }
    }
    Ok(())
}
