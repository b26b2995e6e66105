//! `learnloop-api`: serves the HTTP API on the configured address.
//!
//! On the first start with authentication on and no keys, it creates an
//! admin key, writes it to `<data_dir>/<auth.admin_key_file>` (mode 0600) and
//! says where it is, never the key itself (a leftover key file from an
//! earlier store is kept as `<file>.old`). SIGTERM or SIGINT drain the server ([`learnloop_api::serve`]:
//! no new connections, in-flight requests finish within
//! `api.shutdown_timeout_ms`), commit what is queued and exit 0.
//!
//! A configuration error stops the start with status 1, naming the file (or
//! environment variable), the key and the reason — including an enabled
//! plugin that cannot be loaded or refuses its section. Nothing here
//! writes with `println!`/`eprintln!`, which panic on a closed pipe.

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
    /// Address to listen on, HOST:PORT (e.g. 127.0.0.1:8080, [::1]:8080,
    /// localhost:8080); overrides `api.bind` (port 0 picks a free port).
    #[arg(long, value_name = "HOST:PORT")]
    bind: Option<learnloop_config::BindAddr>,
}

/// Creates the first admin key if there is none, writing it to a 0600 file.
///
/// A key file left from an earlier store (the store was deleted, or
/// `store.url` now points elsewhere) opens nothing in this one: it is kept
/// as `<file>.old` (or `.old.1`, `.old.2`, ...), never overwritten, and the
/// log says so.
fn first_admin_key(config: &Config, host: &PluginHost) -> Result<()> {
    if !config.auth.enabled || !host.store().api_keys()?.is_empty() {
        return Ok(());
    }
    let key = auth::generate_key();
    let path = config.data_dir.join(&config.auth.admin_key_file);
    std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
    if std::fs::symlink_metadata(&path).is_ok() {
        let old = (0..)
            .map(|i| {
                let suffix = if i == 0 { ".old".to_string() } else { format!(".old.{i}") };
                let mut name = path.as_os_str().to_owned();
                name.push(suffix);
                PathBuf::from(name)
            })
            .find(|p| std::fs::symlink_metadata(p).is_err())
            .expect("some name is free");
        std::fs::rename(&path, &old)
            .with_context(|| format!("cannot move the leftover {} aside to {}", path.display(), old.display()))?;
        learnloop_api::log_warn(format_args!(
            "{} was left from an earlier store and opens nothing in this one (it has no keys); kept it as {}",
            path.display(),
            old.display()
        ));
    }
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
    // The key itself never goes to stdout or stderr: under a service manager
    // those are a log that others may read.
    say(format_args!(
        "created the first admin key in {} (mode 0600, readable only by this user); it is not shown here",
        path.display()
    ));
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

/// A line on stdout; a closed stdout loses it but never stops the server.
fn say(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{args}");
}

/// A line on stderr; a closed stderr loses it but never stops the server.
fn log(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{args}");
}

fn main() -> std::process::ExitCode {
    // A probe child checking a plugin library serves that and exits here.
    learnloop_plugin_host::probe::init();
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            log(format_args!("learnloop-api: error: {e:#}"));
            std::process::ExitCode::from(1)
        }
    }
}

fn run() -> Result<()> {
    let args = Args::parse();
    let path = learnloop_config::discover(args.config.as_deref());
    let (mut config, sources) = Config::load_with_sources(path.as_deref(), std::env::vars())?;
    if let Some(d) = args.data_dir {
        config.data_dir = d;
    }
    if let Some(b) = args.bind {
        config.api.bind = b;
    }
    // The address and the plugins first: a config error must not leave a
    // created store behind.
    // The plugins linked into this binary (its `plugin-<name>` features).
    let registry = learnloop_plugins::registry();
    let addrs = config.api.bind.resolve().map_err(|e| anyhow::anyhow!("api.bind (or --bind): {e}"))?;
    learnloop_plugin_host::require_plugins(&registry, &config, &sources)
        .map_err(|e| anyhow::anyhow!("{e}\n(`learnloop config check` lists every error in the file)"))?;
    // Notification destinations (`POST /api/v1/notifications/test` sends to
    // them): a secret variable that is not set is a start-up error.
    learnloop_notify::Destinations::from_config(&config).map_err(|e| anyhow::anyhow!("{}: {e}", sources.origin()))?;
    let store = learnloop_services::open_store(&config)?;
    let services = learnloop_services::open(&config, learnloop_services::Role::Api)?;
    let host = PluginHost::load(&registry, &config, store).with_services(services);
    // A plugin that is enabled but not running would answer every request
    // for it with an error, and /ready would stay 503: refuse to start.
    host.require_all_loaded(&sources)?;
    first_admin_key(&config, &host)?;
    let bind = config.api.bind.clone();
    let limits = learnloop_api::serve::Limits::from_config(&config.api);
    let state = AppState::new(config, host);
    // Absorb whatever earlier processes stored without updating plugins.
    let h = state.host.clone();
    std::thread::spawn(move || {
        if let Err(e) = h.catch_up_all() {
            learnloop_api::log_warn(format_args!("start-up catch-up deferred: {e}"));
        }
    });
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&addrs[..])
            .await
            .with_context(|| format!("cannot listen on {bind} (api.bind)"))?;
        say(format_args!("learnloop-api listening on http://{}", listener.local_addr()?));
        learnloop_api::serve::serve(listener, app(state.clone()), state.clone(), limits, shutdown_signal()).await?;
        anyhow::Ok(())
    })?;
    // Every acknowledged request was committed before its answer; this
    // commits what is still queued and waits for the learner to finish.
    drop(runtime);
    state.host.shutdown_ingest();
    learnloop_api::log_info(format_args!("stopped"));
    Ok(())
}
