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
use learnloop_scheduler::{LEASE_NAME, Scheduler, Settings, default_holder, jobs, log, scheduled_jobs};

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

NOTIFICATIONS
  With `[[notify.destinations]]` configured, the scheduler also delivers
  notifications (alerts, retraining requests, improvement decisions, failed
  jobs) from the store's outbox, holding a lease of its own (\"notifier\"),
  so one scheduler delivers at a time. Each destination has its own sender
  thread: a slow or failing one delays no other and no job. Failed attempts
  are retried with exponential backoff and jitter (or the destination's
  Retry-After) up to `notify.max_attempts`, then kept as dead letters
  (`learnloop notifications list --status dead`, `... retry ID`). A
  destination whose secret variable is not set is a start-up error.

CONFIGURATION ERRORS
  The scheduler refuses to start (status 1) when the config has an error,
  naming the file (or environment variable), the key and the reason: an
  enabled plugin that cannot be loaded or refuses its section (e.g. a
  misspelt key in [drift]), an invalid cron expression, an override for a
  job that does not exist. `learnloop config check` lists every error at
  once without starting anything.

SIGNALS AND EXIT
  SIGTERM or SIGINT: no new job starts, a running job finishes, the lease is
  released and the process exits 0. A second signal releases the lease and
  exits at once (status 1); the running job's commits are fenced by the
  lease and jobs commit per workspace atomically, so nothing partial is
  applied. Either way another scheduler can lead at once, without waiting
  for the lease to expire. Exit status 1 also means a start-up error
  (config, store).

LOGS
  One line per event on stderr: became leader, standing by, lost lease,
  ran JOB slot S attempt N: STATUS, retry scheduled, released lease. A
  closed stderr loses the lines but does not stop the scheduler.";

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
    // Handlers first: a signal during start-up already means "stop" (the
    // signals wait in `signals` until the handler thread starts below).
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT])
        .context("installing signal handlers")?;
    let stop = Arc::new(AtomicBool::new(false));

    let path = learnloop_config::discover(cli.config.as_deref());
    let (mut config, sources) = Config::load_with_sources(path.as_deref(), std::env::vars())?;
    if let Some(dir) = &cli.data_dir {
        config.data_dir = dir.clone();
    }
    let origin = sources.origin().to_string();
    // Notification destinations with their secrets, before anything opens:
    // a variable that is not set is a start-up error naming the destination.
    let destinations =
        learnloop_notify::Destinations::from_config(&config).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;

    // Plugins first: a config error must not leave a created store behind.
    // The plugins linked into this binary (its `plugin-<name>` features).
    let registry = learnloop_plugins::registry();
    learnloop_plugin_host::require_plugins(&registry, &config, &sources)
        .map_err(|e| anyhow::anyhow!("{e}\n(`learnloop config check` lists every error in the file)"))?;
    let store = learnloop_services::open_store(&config)
        .with_context(|| format!("cannot open the store in {}", config.data_dir.display()))?;
    let services = learnloop_services::open(&config, learnloop_services::Role::Scheduler)?;
    let host = learnloop_plugin_host::PluginHost::load(&registry, &config, store.clone()).with_services(services);
    // An enabled plugin that does not load would silently lose its jobs.
    host.require_all_loaded(&sources)?;
    let (scheduled, warnings) = scheduled_jobs(&config, jobs::manifests(&host))
        .map_err(|e| anyhow::anyhow!("{}: {e}", sources.origin_of(&e.key)))?;
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
    // The notification deliverer: its own lease (`notifier`) and threads,
    // so a slow destination never holds up a job.
    let deliverer = (!destinations.list.is_empty()).then(|| {
        let settings = learnloop_notify::Settings::from_config(&config.notify);
        learnloop_notify::Deliverer::new(store.clone(), destinations.clone(), settings, &holder)
    });
    if !destinations.list.is_empty() {
        log(format!("notifications to {}", destinations.names().join(", ")));
    }
    let mut scheduler =
        Scheduler::new(store.clone(), &host, scheduled, Settings::from(&config.scheduler), holder, wall_clock());

    // The first signal stops the loop (a running job finishes, then the
    // lease is released); a second one releases the lease from here and
    // exits at once, so a standby can lead without waiting for expiry.
    let lease = scheduler.lease_handle();
    let me = scheduler.holder().to_string();
    let flag = stop.clone();
    std::thread::spawn(move || {
        for (n, sig) in signals.forever().enumerate() {
            let name = if sig == signal_hook::consts::SIGINT { "SIGINT" } else { "SIGTERM" };
            if n == 0 {
                log(format!("{name}: stopping; no new job starts"));
                flag.store(true, Ordering::SeqCst);
                continue;
            }
            // The lease as published, or (if the loop was just acquiring
            // it) as the store has it under this scheduler's name.
            let held = lease.lock().unwrap_or_else(|e| e.into_inner()).take().or_else(|| {
                let now = learnloop_core::Timestamp::now();
                store.current_lease(LEASE_NAME, now).ok().flatten().filter(|l| l.holder == me)
            });
            if let Some(l) = held {
                match store.release_lease(&l) {
                    Ok(()) => log(format!("released lease (token {})", l.token)),
                    Err(e) => log(format!("could not release lease: {e}")),
                }
            }
            log(format!("second {name}: exiting now"));
            std::process::exit(1);
        }
    });

    if cli.once {
        if !scheduler.run_once(&stop) {
            log("another scheduler leads; nothing run (--once)");
        }
        if let Some(d) = &deliverer {
            match d.run_once() {
                Ok(Some(r)) => log(format!(
                    "notifications: {} routed, {} delivered, {} failed (retried later), {} given up",
                    r.routed, r.delivered, r.failed, r.dead
                )),
                Ok(None) => log("another process delivers notifications; none sent (--once)"),
                Err(e) => log(format!("notifications: {e}")),
            }
        }
        return Ok(());
    }

    let notify_stop = Arc::new(AtomicBool::new(false));
    let notifier = deliverer.map(|d| d.spawn(notify_stop.clone()));
    while !stop.load(Ordering::SeqCst) {
        scheduler.tick(&stop);
        // At least a few ms, so a store that keeps failing cannot make this spin.
        sleep_unless_stopped(scheduler.next_wake().max(Duration::from_millis(5)), &stop);
    }
    scheduler.shutdown();
    notify_stop.store(true, Ordering::SeqCst);
    if let Some(h) = notifier {
        // An attempt in flight finishes (at most `[notify] timeout_ms`),
        // then the `notifier` lease is released.
        let _ = h.join();
    }
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
    // A probe child checking a plugin library serves that and exits here.
    learnloop_plugin_host::probe::init();
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Not eprintln!: it panics when stderr is closed.
            use std::io::Write;
            let _ = writeln!(std::io::stderr().lock(), "learnloop-scheduler: error: {e:#}");
            ExitCode::from(1)
        }
    }
}
