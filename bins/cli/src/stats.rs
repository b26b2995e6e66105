//! `learnloop stats`: what the store holds, per workspace, plugin and kind.

use anyhow::Result;
use learnloop_core::WorkspaceId;
use learnloop_store::{CountRow, Store};

use crate::Env;

#[derive(clap::Args)]
pub struct Args {
    /// Only this workspace.
    #[arg(long)]
    workspace: Option<String>,
}

pub fn run(env: &Env, args: &Args) -> Result<()> {
    let workspace = args
        .workspace
        .as_deref()
        .map(|w| WorkspaceId::parse("--workspace", w))
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let store = learnloop_services::open_store(&env.config)?;
    print(store.as_ref(), workspace.as_ref(), env.json)
}

/// Prints the counts table (or JSON).
pub fn print(store: &dyn Store, workspace: Option<&WorkspaceId>, json: bool) -> Result<()> {
    let rows = store.counts(workspace)?;
    let total = |f: fn(&CountRow) -> u64| rows.iter().map(f).sum::<u64>();
    let (p, o, pending) = (total(|r| r.predictions), total(|r| r.outcomes), total(|r| r.pending));
    if json {
        outln!(
            "{}",
            serde_json::json!({
                "backend": store.backend(),
                "rows": rows,
                "totals": {"predictions": p, "outcomes": o, "pending": pending},
            })
        )?;
        return Ok(());
    }
    if rows.is_empty() {
        outln!("the store is empty")?;
        return Ok(());
    }
    let w = |f: fn(&CountRow) -> &str, head: &str| rows.iter().map(|r| f(r).len()).max().unwrap_or(0).max(head.len());
    let (ww, pw, kw) = (w(|r| &r.workspace, "workspace"), w(|r| &r.plugin, "plugin"), w(|r| &r.kind, "kind"));
    outln!(
        "{:ww$}  {:pw$}  {:kw$}  {:>11}  {:>9}  {:>8}",
        "workspace",
        "plugin",
        "kind",
        "predictions",
        "outcomes",
        "pending"
    )?;
    for r in &rows {
        outln!(
            "{:ww$}  {:pw$}  {:kw$}  {:>11}  {:>9}  {:>8}",
            r.workspace,
            r.plugin,
            r.kind,
            r.predictions,
            r.outcomes,
            r.pending
        )?;
    }
    outln!("{:ww$}  {:pw$}  {:kw$}  {:>11}  {:>9}  {:>8}", "total", "", "", p, o, pending)?;
    Ok(())
}
