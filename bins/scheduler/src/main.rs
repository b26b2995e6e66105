//! `learnloop-scheduler`, the process that runs plugin jobs on schedule.
//!
//! A thin shell around the `learnloop_scheduler` library: it reads the config
//! the other binaries read, opens the store and the plugins, installs the
//! SIGTERM/SIGINT handlers and drives [`Scheduler`] tick by tick. See
//! `learnloop-scheduler --help` (the text below) for what operators need.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use learnloop_config::Config;
use learnloop_scheduler::leader::wall_clock;
use learnloop_scheduler::{Scheduler, Settings, default_holder, jobs, log, scheduled_jobs};

const LONG_ABOUT: &str = "\
Runs every enabled plugin's jobs on cron schedules, against the same store
and config as learnloop-api and the learnloop CLI.

SCHEDULES
  Each job's default schedule comes from its plugin's manifest (see
  `learnloop jobs list`). Override or disable one in the config:

    [scheduler.jobs.\"drift.daily\"]
    schedule = \"0 30 3 * * *\"   # sec min hour day-of-month month day-of-week, UTC
    enabled = true              # false: never scheduled (still runnable by hand)

  Standard cron syntax with a leading seconds field: `*`, lists `1,15`,
  ranges `1-5`, steps `*/10`, names `MON-FRI`, `JAN`; day-of-week 0 or 7 is
  Sunday. An invalid expression is a start-up error naming the key.

LEADERSHIP
  Run as many schedulers as you like on one store: the holder of the store
  lease \"scheduler\" runs jobs, the others stand by. The leader renews the
  lease every `scheduler.tick_ms`; if it dies, a standby takes over within
  `scheduler.lease_ttl_ms` plus one tick. Every run is recorded with its slot
  (the scheduled time) and attempt, which the store keeps unique, so no slot
  ever runs twice, even across a take-over. A run the dead leader left
  \"running\" is closed as failed by the new leader and retried. A job's
  results commit only while the lease keeps the fencing token it had when
  the job started, so a leader that was cut off cannot overwrite its
  successor's work.

RETRIES AND CATCH-UP
  A failed run is retried as a new attempt of the same slot after
  `retry_backoff_ms`, doubling each time, at most `max_retries` times. When a
  scheduler becomes leader (start-up or take-over) and `catch_up` is on, each
  job's latest due slot that has no recorded run is run once, however many
  slots were missed.

SIGNALS AND EXIT
  SIGTERM or SIGINT: no new job starts, a running job finishes, the lease is
  released and the process exits 0. A second signal exits at once (status 1);
  jobs commit per workspace atomically, so nothing partial is applied.
  Exit status 1 also means a start-up error (config, store).

LOGS
  One line per event on stderr: became leader, standing by, lost lease,
  ran JOB slot S attempt N: STATUS, retry scheduled, released lease.";

/// Runs learnloop plugin jobs on cron schedules, with one leader per store.
#[derive(Parser)]
#[command(name = "learnloop-scheduler", version, about, long_about = LONG_ABOUT)]
struct Cli {
    /// Config file. Default: $LEARNLOOP_CONFIG, else ./learnloop.toml if it exists, else built-in defaults.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Data directory; overrides `data_dir` from the config.
    #[arg(long, value_name = "PATH")]
    data_dir: Option<PathBuf>,
    /// Take the lease, run whatever is due now (each job's latest slot without
    /// a run, and retries already due), release the lease and exit. For
    /// cron-driven setups; exits 0 without running anything if another
    /// scheduler leads.
    #[arg(long)]
    once: bool,
    /// Holder id for the lease and the `runner` of recorded runs.
    /// Default: scheduler@<host>:<pid>:<random>.
    #[arg(long, value_name = "NAME")]
    holder: Option<String>,
}

fn run(cli: &Cli) -> Result<()> {
    let path = learnloop_config::discover(cli.config.as_deref());
    let mut config = Config::load(path.as_deref())?;
    if let Some(dir) = &cli.data_dir {
        config.data_dir = dir.clone();
    }
    let origin = path.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "built-in defaults".into());

    // Handlers first: a signal during start-up already means "stop".
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        // A second signal, with the flag already set, exits at once.
        signal_hook::flag::register_conditional_shutdown(sig, 1, stop.clone()).context("installing signal handler")?;
        signal_hook::flag::register(sig, stop.clone()).context("installing signal handler")?;
    }

    let store = learnloop_store::open(&config)
        .with_context(|| format!("cannot open the store in {}", config.data_dir.display()))?;
    let services = learnloop_services::open(&config, learnloop_services::Role::Scheduler)?;
    let host = learnloop_plugin_host::PluginHost::load(&config, store.clone()).with_services(services);
    for e in &host.load_errors {
        log(format!("warning: {e}"));
    }
    let (scheduled, warnings) =
        scheduled_jobs(&config, jobs::manifests(&host)).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
    for w in &warnings {
        log(format!("note: {w}"));
    }
    let list: Vec<String> = scheduled.iter().map(|j| format!("{} [{}]", j.key(), j.schedule)).collect();
    log(format!(
        "config {origin}, data dir {}, {} job(s): {}",
        config.data_dir.display(),
        scheduled.len(),
        if list.is_empty() { "none".to_string() } else { list.join(", ") }
    ));

    let holder = cli.holder.clone().unwrap_or_else(default_holder);
    let mut scheduler = Scheduler::new(store, &host, scheduled, Settings::from(&config.scheduler), holder, wall_clock());

    if cli.once {
        if !scheduler.run_once(&stop) {
            log("another scheduler leads; nothing run (--once)");
        }
        return Ok(());
    }

    while !stop.load(Ordering::SeqCst) {
        scheduler.tick(&stop);
        // At least a few ms, so a store that keeps failing cannot make this spin.
        sleep_unless_stopped(scheduler.next_wake().max(Duration::from_millis(5)), &stop);
    }
    log("stopping: no new jobs will start");
    scheduler.shutdown();
    log("stopped");
    Ok(())
}

/// Sleeps up to `d`, waking early (within 50 ms) when `stop` is set.
fn sleep_unless_stopped(d: Duration, stop: &AtomicBool) {
    let end = Instant::now() + d;
    while !stop.load(Ordering::SeqCst) {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("learnloop-scheduler: error: {e:#}");
            ExitCode::from(1)
        }
    }
}
