//! `learnloop jobs list|run|history`: what the scheduler will run and when,
//! running a job by hand (on the embedded store, or through the API with
//! `--server`), and the recorded runs.
//!
//! The effective schedule (manifest default or config override) comes from
//! `learnloop_scheduler::effective_jobs`, the same function the scheduler
//! uses, so the two cannot disagree.

use anyhow::{Context, Result, bail};
use learnloop_core::{JobRun, JobStatus, PluginName, Timestamp};
use learnloop_store::JobRunQuery;
use serde_json::{Value, json};

use crate::Env;
use crate::remote::{Server, encode_segment};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Every job of every loaded plugin: effective schedule, enabled, description, last run.
    List,
    /// Run a job now, in every workspace, and print the recorded run (exit 1 if it failed).
    Run(RunArgs),
    /// Recorded job runs, newest first.
    History(HistoryArgs),
}

#[derive(clap::Args)]
pub struct RunArgs {
    /// The plugin, e.g. `drift`.
    plugin: String,
    /// The job, e.g. `daily` (see `learnloop jobs list`).
    job: String,
    /// Run it through a learnloop-api server (e.g. http://127.0.0.1:8080) instead
    /// of on the local data directory. Plain HTTP only.
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// API key for --server (an admin key).
    #[arg(long, value_name = "KEY", env = "LEARNLOOP_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
}

#[derive(clap::Args)]
pub struct HistoryArgs {
    /// Only this plugin.
    #[arg(long)]
    plugin: Option<String>,
    /// Only this job.
    #[arg(long)]
    job: Option<String>,
    /// At most this many runs.
    #[arg(long, default_value_t = crate::DEFAULT_LIMIT, value_parser = clap::value_parser!(u32).range(1..=crate::MAX_LIMIT as i64))]
    limit: u32,
}

pub fn run(env: &Env, cmd: &Command) -> Result<()> {
    match cmd {
        Command::List => list(env),
        Command::Run(args) => match &args.server {
            Some(server) => run_remote(env, args, server),
            None => run_local(env, args),
        },
        Command::History(args) => history(env, args),
    }
}

fn list(env: &Env) -> Result<()> {
    let host = crate::open_host(&env.config)?;
    let store = host.store().clone();
    let mut rows = Vec::new();
    for info in learnloop_scheduler::effective_jobs(&env.config, &host) {
        let plugin = PluginName::parse("plugin", &info.plugin).map_err(anyhow::Error::msg)?;
        let last = store
            .job_runs(&JobRunQuery { plugin: Some(plugin), job: Some(info.job.clone()), slot: None, limit: 1 })?
            .into_iter()
            .next();
        let mut row = serde_json::to_value(&info)?;
        row["last_run"] = json!(last);
        rows.push(row);
    }
    let errors: Vec<String> = host.load_errors.iter().map(|e| e.to_string()).collect();
    if env.json {
        outln!("{}", json!({"jobs": rows, "load_errors": errors}))?;
        return Ok(());
    }
    if rows.is_empty() {
        outln!("no jobs (no plugin with jobs is loaded)")?;
    }
    for r in &rows {
        let key = format!("{}.{}", r["plugin"].as_str().unwrap_or(""), r["job"].as_str().unwrap_or(""));
        let mut schedule = format!("[{}]", r["schedule"].as_str().unwrap_or(""));
        if r["overridden"] == json!(true) {
            schedule.push_str(" (config)");
        }
        if let Some(t) = r["trigger"].as_str() {
            schedule.push_str(&format!(" and when {t}"));
        }
        let state = if r["enabled"] == json!(true) { "enabled" } else { "disabled" };
        let last = match r["last_run"].as_object() {
            Some(l) => format!(
                "last run: {} {}",
                l.get("status").and_then(Value::as_str).unwrap_or(""),
                l.get("finished_at")
                    .and_then(Value::as_str)
                    .or(l.get("started_at").and_then(Value::as_str))
                    .unwrap_or("")
            ),
            None => "never run".to_string(),
        };
        outln!("{key:32} {schedule:24} {state:8} {last}")?;
        outln!("    {}", r["description"].as_str().unwrap_or(""))?;
        if let Some(e) = r["schedule_error"].as_str() {
            outln!("    schedule error: {e}")?;
        }
    }
    for e in &errors {
        outln!("load error: {e}")?;
    }
    Ok(())
}

fn run_local(env: &Env, args: &RunArgs) -> Result<()> {
    use crate::progress::{self, Unit};
    let host = crate::open_host(&env.config)?;
    let show = progress::wanted(env.json);
    if show && host.plugins().contains_key(&args.plugin) {
        // The job first absorbs what its plugin has not learned yet; doing
        // that here, with progress, leaves the job's own catch-up nothing to do.
        let plugin = PluginName::parse("plugin", &args.plugin).map_err(anyhow::Error::msg)?;
        for ws in host.store().workspaces(&plugin)? {
            let bar = progress::bar(show, &format!("learning {} in {ws}", args.plugin), Unit::Events, None);
            // A failure is the job's to report: its own catch-up fails the
            // same way and its run records it.
            let _ = host.catch_up_with(&args.plugin, &ws, &mut |p| bar.set_position(p.absorbed));
            bar.finish_and_clear();
        }
    }
    let spinner = progress::spinner(show, &format!("running {}.{}", args.plugin, args.job));
    let run = host.run_job(&args.plugin, &args.job, "cli", None, 1);
    spinner.finish_and_clear();
    print_run(env, &run?)
}

fn print_run(env: &Env, run: &JobRun) -> Result<()> {
    if env.json {
        outln!("{}", json!(run))?;
    } else {
        outln!(
            "{}.{} run {} by {}: {} in {}",
            run.plugin,
            run.job,
            run.id,
            run.runner,
            run.status.as_str(),
            duration(run)
        )?;
        if let Some(report) = &run.report {
            outln!("report: {}", serde_json::to_string_pretty(report)?)?;
        }
        if let Some(e) = &run.error {
            outln!("error: {e}")?;
        }
    }
    if run.status != JobStatus::Succeeded {
        bail!(
            "job {}.{} {}: {}",
            run.plugin,
            run.job,
            run.status.as_str(),
            run.error.as_deref().unwrap_or("no error message")
        );
    }
    Ok(())
}

fn run_remote(env: &Env, args: &RunArgs, server: &str) -> Result<()> {
    let server = Server::new(server, args.api_key.as_deref())?;
    if !server.has_key() {
        bail!("--server needs an API key: --api-key KEY or LEARNLOOP_API_KEY");
    }
    let path = format!("/api/v1/jobs/{}/{}/run", encode_segment(&args.plugin), encode_segment(&args.job));
    let (_, value) = server.call("POST", &path, &[], None, env.json)?;
    let run: JobRun = serde_json::from_value(value).context("the server's answer is not a job run")?;
    print_run(env, &run)
}

fn history(env: &Env, args: &HistoryArgs) -> Result<()> {
    let store = learnloop_services::open_store(&env.config)?;
    let plugin =
        args.plugin.as_deref().map(|p| PluginName::parse("--plugin", p)).transpose().map_err(anyhow::Error::msg)?;
    let runs =
        store.job_runs(&JobRunQuery { plugin, job: args.job.clone(), slot: None, limit: args.limit as usize })?;
    if env.json {
        outln!("{}", json!({ "runs": runs }))?;
        return Ok(());
    }
    if runs.is_empty() {
        outln!("no job runs recorded")?;
        return Ok(());
    }
    let header = ["id", "job", "slot", "try", "status", "took", "runner", "error"];
    outln!(
        "{:>6}  {:28} {:24} {:>3}  {:10} {:>9}  {:24} {}",
        header[0],
        header[1],
        header[2],
        header[3],
        header[4],
        header[5],
        header[6],
        header[7]
    )?;
    for r in &runs {
        let slot = r.slot.and_then(Timestamp::from_micros).map(|t| t.to_string()).unwrap_or_else(|| "by hand".into());
        outln!(
            "{:>6}  {:28} {:24} {:>3}  {:10} {:>9}  {:24} {}",
            r.id,
            format!("{}.{}", r.plugin, r.job),
            slot,
            r.attempt,
            r.status.as_str(),
            duration(r),
            r.runner,
            r.error.as_deref().unwrap_or("")
        )?;
    }
    Ok(())
}

fn duration(run: &JobRun) -> String {
    match run.finished_at {
        Some(f) => format!("{} ms", (f.as_micros() - run.started_at.as_micros()) / 1000),
        None => "-".into(),
    }
}
