//! `learnloop improvements list|show|applied|approve|reject|rollback|process`:
//! the improvement lifecycle on the local data directory.
//!
//! Plugins propose learned parameter sets; the host backtests, applies by
//! policy or approval, monitors and rolls back (see
//! `learnloop_plugin_host::lifecycle`). These commands show that history and
//! let a person decide.

use anyhow::Result;
use learnloop_core::{Improvement, ImprovementStatus, PluginName, Timestamp, WorkspaceId};
use learnloop_store::ImprovementQuery;
use serde_json::{Value, json};

use crate::Env;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Improvements, newest first: id, plugin, target, version, status, backtest gain.
    List(ListArgs),
    /// One improvement: parameters, evidence, backtest and every lifecycle step.
    Show(IdArgs),
    /// The version in force of every parameter set ever applied (0 = built-in defaults).
    Applied(WsArgs),
    /// Apply a backtested improvement now.
    Approve(IdArgs),
    /// Reject a proposed or backtested improvement.
    Reject(RejectArgs),
    /// Restore an earlier version of a parameter set.
    Rollback(RollbackArgs),
    /// Run the lifecycle now: backtest proposals, apply by policy, monitor
    /// applied versions (it also runs after every job).
    Process(WsArgs),
}

#[derive(clap::Args)]
pub struct WsArgs {
    /// Only this plugin.
    #[arg(long)]
    plugin: Option<String>,
    /// Workspace (default: `default_workspace` from the config).
    #[arg(long)]
    workspace: Option<String>,
}

#[derive(clap::Args)]
pub struct ListArgs {
    /// Only this plugin.
    #[arg(long)]
    plugin: Option<String>,
    /// Only this parameter set.
    #[arg(long)]
    target: Option<String>,
    /// Only this status: proposed, backtested (waiting for a person; `held` means the same), applied, kept, rolled_back, rejected.
    #[arg(long)]
    status: Option<String>,
    /// Workspace (default: `default_workspace` from the config).
    #[arg(long)]
    workspace: Option<String>,
    /// At most this many.
    #[arg(long, default_value_t = crate::DEFAULT_LIMIT, value_parser = clap::value_parser!(u32).range(1..=crate::MAX_LIMIT as i64))]
    limit: u32,
}

#[derive(clap::Args)]
pub struct IdArgs {
    /// The improvement id.
    id: i64,
    /// Workspace (default: `default_workspace` from the config).
    #[arg(long)]
    workspace: Option<String>,
}

#[derive(clap::Args)]
pub struct RejectArgs {
    /// The improvement id.
    id: i64,
    /// Why (recorded in its history).
    #[arg(long, default_value = "")]
    reason: String,
    /// Workspace (default: `default_workspace` from the config).
    #[arg(long)]
    workspace: Option<String>,
}

#[derive(clap::Args)]
pub struct RollbackArgs {
    /// The plugin.
    plugin: String,
    /// The parameter set, e.g. `weights`.
    target: String,
    /// The version to restore (0 = built-in defaults). Default: the one in force before the current.
    #[arg(long = "to")]
    to_version: Option<u64>,
    /// Why (recorded in the history of the version rolled back).
    #[arg(long, default_value = "")]
    reason: String,
    /// Workspace (default: `default_workspace` from the config).
    #[arg(long)]
    workspace: Option<String>,
}

/// The workspace asked for with `--workspace`, else the config's `default_workspace`.
fn ws(env: &Env, s: &Option<String>) -> Result<WorkspaceId> {
    match s {
        Some(w) => Ok(WorkspaceId::parse("--workspace", w)?),
        None => Ok(WorkspaceId::parse("default_workspace", &env.config.default_workspace)?),
    }
}

fn plugin(p: &Option<String>) -> Result<Option<PluginName>> {
    Ok(p.as_deref().map(|p| PluginName::parse("plugin", p)).transpose()?)
}

pub fn run(env: &Env, cmd: &Command) -> Result<()> {
    let host = crate::open_host(&env.config)?;
    match cmd {
        Command::List(a) => {
            let status = a.status.as_deref().map(|s| ImprovementStatus::parse("status", s)).transpose()?;
            let items = host.store().improvements(&ImprovementQuery {
                workspace: Some(ws(env, &a.workspace)?),
                plugin: plugin(&a.plugin)?,
                target: a.target.clone(),
                status,
                limit: a.limit as usize,
            })?;
            if env.json {
                outln!("{}", json!({ "improvements": items }))?;
            } else if items.is_empty() {
                outln!("no improvements")?;
            } else {
                for i in &items {
                    outln!("{}", line(i))?;
                }
            }
        }
        Command::Show(a) => {
            let imp = host.store().improvement(&ws(env, &a.workspace)?, a.id)?;
            if env.json {
                outln!("{}", json!(imp))?;
            } else {
                show(&imp)?;
            }
        }
        Command::Applied(a) => {
            let rows: Vec<Value> = host
                .applied_all(&ws(env, &a.workspace)?, a.plugin.as_deref())?
                .into_iter()
                .map(|(plugin, applied)| {
                    let mut v = json!(applied);
                    v["plugin"] = json!(plugin);
                    v
                })
                .collect();
            if env.json {
                outln!("{}", json!({ "applied": rows }))?;
            } else if rows.is_empty() {
                outln!("nothing applied: every plugin serves its built-in defaults")?;
            } else {
                for r in &rows {
                    outln!(
                        "{}/{}: version {} since {}  {}",
                        r["plugin"].as_str().unwrap_or(""),
                        r["target"].as_str().unwrap_or(""),
                        r["version"],
                        r["applied_at"].as_str().unwrap_or(""),
                        r["params"]
                    )?;
                }
            }
        }
        Command::Approve(a) => {
            let imp = host.approve_improvement(&ws(env, &a.workspace)?, a.id, Timestamp::now())?;
            print_one(env, &imp, "applied")?;
        }
        Command::Reject(a) => {
            let imp = host.reject_improvement(&ws(env, &a.workspace)?, a.id, &a.reason, Timestamp::now())?;
            print_one(env, &imp, "rejected")?;
        }
        Command::Rollback(a) => {
            let applied = host.rollback_improvement(
                &a.plugin,
                &ws(env, &a.workspace)?,
                &a.target,
                a.to_version,
                &a.reason,
                Timestamp::now(),
            )?;
            if env.json {
                outln!("{}", json!({ "in_force": applied }))?;
            } else if applied.version == 0 {
                outln!("{}/{}: the built-in defaults are in force again", a.plugin, a.target)?;
            } else {
                outln!("{}/{}: version {} is in force again", a.plugin, a.target, applied.version)?;
            }
        }
        Command::Process(a) => {
            let w = ws(env, &a.workspace)?;
            let names: Vec<String> = match &a.plugin {
                Some(p) => vec![p.clone()],
                None => host.plugins().keys().cloned().collect(),
            };
            let mut out = serde_json::Map::new();
            for name in names {
                let report = host.process_improvements(&name, &w, Timestamp::now())?;
                out.insert(name, serde_json::to_value(report)?);
            }
            outln!("{}", if env.json { Value::Object(out).to_string() } else { serde_json::to_string_pretty(&out)? })?;
        }
    }
    Ok(())
}

fn gain(i: &Improvement) -> String {
    match i.backtest.as_ref().and_then(|b| b["relative_gain"].as_f64()) {
        Some(g) => {
            format!("backtest {:+.1}% (n={})", g * 100.0, i.backtest.as_ref().map_or(json!(0), |b| b["n"].clone()))
        }
        None => match i.backtest.as_ref().and_then(|b| b["error"].as_str()) {
            Some(e) => format!("no backtest: {e}"),
            None => "not backtested".to_string(),
        },
    }
}

fn line(i: &Improvement) -> String {
    format!(
        "#{:<5} {}/{} v{} {:<11} {}  ({} {})",
        i.id,
        i.plugin,
        i.target,
        i.version,
        i.status.as_str(),
        gain(i),
        i.metric,
        i.created_at
    )
}

fn show(i: &Improvement) -> Result<()> {
    outln!("{}", line(i))?;
    outln!("params:   {}", i.params)?;
    outln!("evidence: {}", i.evidence)?;
    if let Some(b) = &i.backtest {
        outln!("backtest: {b}")?;
    }
    outln!("history:")?;
    for e in &i.history {
        let note = if e.note.is_null() { String::new() } else { format!("  {}", e.note) };
        outln!("  {}  {}{note}", e.at, e.status.as_str())?;
    }
    Ok(())
}

fn print_one(env: &Env, i: &Improvement, what: &str) -> Result<()> {
    if env.json {
        outln!("{}", json!(i))?;
    } else {
        outln!("improvement {} ({}/{} v{}) {what}", i.id, i.plugin, i.target, i.version)?;
    }
    Ok(())
}
