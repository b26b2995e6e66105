//! `learnloop call PLUGIN METHOD PATH`: any plugin route, on the local data
//! directory without a server, or on a running `learnloop-api` with
//! `--server URL`.
//!
//! This is the CLI face of every plugin's HTTP API: the same route table,
//! the same validation and the same answer as
//! `METHOD /api/v1/PLUGIN/PATH` on `learnloop-api`, so the README's route
//! lists double as the CLI reference.
//!
//! The workspace: locally, `--workspace`, else the config's
//! `default_workspace`; with `--server`, `--workspace` is sent as the
//! `workspace` query parameter, and without it the server decides by the
//! API's rules (the key's own workspace, else its `default_workspace`).

use std::collections::BTreeMap;
use std::io::{Read, Write};

use anyhow::{Context, Result, bail};
use learnloop_core::WorkspaceId;
use serde_json::Value;

use crate::Env;
use crate::remote::{Server, encode_path, encode_segment};

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
    /// Workspace (default: `default_workspace` from the config; with
    /// --server: the key's own workspace, else the server's default).
    #[arg(long)]
    workspace: Option<String>,
    /// Call the route on a learnloop-api server (e.g. http://127.0.0.1:8080)
    /// instead of on the local data directory. Plain HTTP only.
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// API key for --server (a reader key for reads, a writer key for routes that change state).
    #[arg(long, value_name = "KEY", env = "LEARNLOOP_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
}

pub fn run(env: &Env, args: &Args) -> Result<()> {
    let method = args.method.to_ascii_uppercase();
    if !matches!(method.as_str(), "GET" | "POST" | "PUT" | "DELETE") {
        bail!("method: {:?} is not one of GET, POST, PUT, DELETE", args.method);
    }
    let explicit = args.workspace.as_deref().map(|w| WorkspaceId::parse("--workspace", w)).transpose()?;
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
            // A file may start with a byte-order mark; a key given twice is
            // refused as the API refuses it.
            let raw = raw.strip_prefix('\u{feff}').unwrap_or(&raw);
            let (value, repeated) =
                learnloop_core::json::parse_value(raw.as_bytes()).context("body: not valid JSON")?;
            if let Some(d) = repeated.first() {
                let at = match d.item {
                    Some(i) => format!("[{i}].{}", d.path),
                    None => d.path.clone(),
                };
                bail!("body: {at}: {}", learnloop_core::json::DUPLICATE_KEY_MESSAGE);
            }
            value
        }
    };
    // `-q workspace=W` (or `?workspace=W` in PATH) is the API's way of
    // naming the workspace: it means the same as --workspace here.
    let explicit = match (explicit, query.remove("workspace")) {
        (Some(w), Some(q)) if w.as_str() != q => {
            bail!("--workspace {w} and the query parameter workspace={q} disagree; give one")
        }
        (Some(w), _) => Some(w),
        (None, Some(q)) => Some(WorkspaceId::parse("workspace", &q)?),
        (None, None) => None,
    };
    let answer = match &args.server {
        Some(server) => {
            let server = Server::new(server, args.api_key.as_deref())?;
            let mut pairs: Vec<(String, String)> = query.into_iter().collect();
            if let Some(w) = &explicit {
                pairs.push(("workspace".to_string(), w.to_string()));
            }
            let url_path = format!("/api/v1/{}{}", encode_segment(&args.plugin), encode_path(&path));
            let body = (!body.is_null()).then_some(&body);
            server.call(&method, &url_path, &pairs, body, env.json)?.1
        }
        None => {
            let workspace = match explicit {
                Some(w) => w,
                None => WorkspaceId::parse("default_workspace", &env.config.default_workspace)?,
            };
            let host = crate::open_host(&env.config)?;
            host.handle(&args.plugin, &workspace, &method, &path, query, body)?.body
        }
    };
    // Piped into `head` and the like: a closed pipe is the reader's choice, not an error.
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{}", serde_json::to_string_pretty(&answer)?).and_then(|_| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
