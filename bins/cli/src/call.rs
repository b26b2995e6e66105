//! `learnloop call PLUGIN METHOD PATH`: any plugin route, on the local data
//! directory, without a server.
//!
//! This is the CLI face of every plugin's HTTP API: the same route table,
//! the same validation and the same answer as
//! `METHOD /api/v1/PLUGIN/PATH` on `learnloop-api`, so the README's route
//! lists double as the CLI reference.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use anyhow::{Context, Result, bail};
use learnloop_core::WorkspaceId;
use serde_json::Value;

use crate::Env;

#[derive(clap::Args)]
pub struct Args {
    /// The plugin, e.g. `trust`.
    plugin: String,
    /// GET, POST, PUT or DELETE.
    method: String,
    /// The route below /api/v1/PLUGIN, e.g. `/agents/agent-0`. A `?k=v&…`
    /// suffix is read as query parameters.
    path: String,
    /// JSON request body: inline, `@FILE`, or `-` for stdin.
    #[arg(long, value_name = "JSON")]
    body: Option<String>,
    /// Query parameter `KEY=VALUE` (repeatable).
    #[arg(long = "query", short = 'q', value_name = "KEY=VALUE")]
    query: Vec<String>,
    /// Workspace.
    #[arg(long, default_value = "default")]
    workspace: String,
}

pub fn run(env: &Env, args: &Args) -> Result<()> {
    let method = args.method.to_ascii_uppercase();
    if !matches!(method.as_str(), "GET" | "POST" | "PUT" | "DELETE") {
        bail!("method: {:?} is not one of GET, POST, PUT, DELETE", args.method);
    }
    let workspace = WorkspaceId::parse("workspace", &args.workspace)?;
    let (path, inline_query) = match args.path.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (args.path.clone(), None),
    };
    let path = if path.starts_with('/') { path } else { format!("/{path}") };
    let mut query = BTreeMap::new();
    let pairs = inline_query.iter().flat_map(|q| q.split('&')).filter(|p| !p.is_empty()).map(str::to_string);
    for pair in pairs.chain(args.query.iter().cloned()) {
        let (k, v) = pair.split_once('=').with_context(|| format!("query: {pair:?} is not KEY=VALUE"))?;
        query.insert(k.to_string(), v.to_string());
    }
    let body = match args.body.as_deref() {
        None => Value::Null,
        Some(text) => {
            let raw = if text == "-" {
                let mut s = String::new();
                std::io::stdin().read_to_string(&mut s).context("reading the body from stdin")?;
                s
            } else if let Some(file) = text.strip_prefix('@') {
                std::fs::read_to_string(file).with_context(|| format!("body: cannot read {file}"))?
            } else {
                text.to_string()
            };
            serde_json::from_str(&raw).context("body: not valid JSON")?
        }
    };
    let host = crate::open_host(&env.config)?;
    let response = host.handle(&args.plugin, &workspace, &method, &path, query, body)?;
    // Piped into `head` and the like: a closed pipe is the reader's choice, not an error.
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{}", serde_json::to_string_pretty(&response.body)?).and_then(|_| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
