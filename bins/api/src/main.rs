//! `learnloop-api`: serves the HTTP API on the configured address.
//!
//! On the first start with authentication on and no keys, it creates an
//! admin key, writes it to `<data_dir>/<auth.admin_key_file>` (mode 0600) and
//! prints it once. SIGTERM or SIGINT stop accepting connections, let
//! in-flight requests finish, commit what is queued and exit 0.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Parser;
use learnloop_api::{AppState, app, auth};
use learnloop_config::Config;
use learnloop_core::{Role, Timestamp};
use learnloop_plugin_host::PluginHost;
use learnloop_store::NewApiKey;

/// learnloop's HTTP API.
#[derive(Parser)]
#[command(name = "learnloop-api", version, about)]
struct Args {
    /// Config file. Default: $LEARNLOOP_CONFIG, else ./learnloop.toml if it exists, else built-in defaults.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Data directory; overrides `data_dir`.
    #[arg(long, value_name = "PATH")]
    data_dir: Option<PathBuf>,
    /// Address to listen on; overrides `api.bind` (port 0 picks a free port).
    #[arg(long)]
    bind: Option<std::net::SocketAddr>,
}

/// Creates the first admin key if there is none, writing it to a 0600 file.
fn first_admin_key(config: &Config, host: &PluginHost) -> Result<()> {
    if !config.auth.enabled || !host.store().api_keys()?.is_empty() {
        return Ok(());
    }
    let key = auth::generate_key();
    let path = config.data_dir.join(&config.auth.admin_key_file);
    std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
    {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(&path).with_context(|| format!("cannot create {}", path.display()))?;
        writeln!(f, "{key}")?;
    }
    host.store().create_api_key(&NewApiKey {
        name: "first admin key".into(),
        prefix: auth::key_prefix(&key),
        hash: auth::hash_key(&key),
        workspace: None,
        role: Role::Admin,
        now: Timestamp::now(),
    })?;
    println!("created the first admin key (shown once; also in {}, mode 0600):\n{key}", path.display());
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("learnloop-api: error: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}

fn run() -> Result<()> {
    let args = Args::parse();
    let mut config = Config::load(learnloop_config::discover(args.config.as_deref()).as_deref())?;
    if let Some(d) = args.data_dir {
        config.data_dir = d;
    }
    if let Some(b) = args.bind {
        config.api.bind = b;
    }
    let store = learnloop_store::open(&config)?;
    let services = learnloop_services::open(&config, learnloop_services::Role::Api)?;
    let host = PluginHost::load(&config, store).with_services(services);
    for e in &host.load_errors {
        eprintln!("learnloop-api: warning: {e}");
    }
    first_admin_key(&config, &host)?;
    let bind = config.api.bind;
    let state = AppState::new(config, host);
    // Absorb whatever earlier processes stored without updating plugins.
    let h = state.host.clone();
    std::thread::spawn(move || {
        if let Err(e) = h.catch_up_all() {
            eprintln!("learnloop-api: start-up catch-up deferred: {e}");
        }
    });
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(bind).await.with_context(|| format!("cannot listen on {bind}"))?;
        println!("learnloop-api listening on http://{}", listener.local_addr()?);
        axum::serve(listener, app(state.clone())).with_graceful_shutdown(shutdown_signal()).await?;
        anyhow::Ok(())
    })?;
    // Every acknowledged request was committed before its answer; this only
    // waits for the learner to finish.
    drop(runtime);
    if let Ok(mut c) = std::sync::Arc::try_unwrap(state.committer) {
        c.shutdown();
    }
    eprintln!("learnloop-api: stopped");
    Ok(())
}
