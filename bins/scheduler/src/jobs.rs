//! Which jobs run, and on which schedule: each loaded plugin's manifest
//! default, replaced or disabled per job by `[scheduler.jobs."plugin.job"]`.
//!
//! This lives in the library so that the scheduler and `learnloop jobs list`
//! agree on the effective schedule without the CLI depending on the
//! scheduler binary.

use learnloop_config::Config;
use learnloop_plugin_api::JobSpec;
use learnloop_plugin_host::PluginHost;
use serde::Serialize;

use crate::schedule::Schedule;

/// One job of one loaded plugin, with its effective schedule.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct JobInfo {
    /// The plugin.
    pub plugin: String,
    /// The job's name within the plugin.
    pub job: String,
    /// What the job does (from the manifest).
    pub description: String,
    /// The plugin's default schedule (manifest).
    pub default_schedule: String,
    /// The schedule the scheduler uses: the config override, else the default.
    pub schedule: String,
    /// Whether the schedule comes from the config.
    pub overridden: bool,
    /// Whether the scheduler runs it (`enabled = false` in the config stops it;
    /// it can still be run by hand).
    pub enabled: bool,
    /// Why `schedule` cannot be used, if it cannot.
    pub schedule_error: Option<String>,
    /// Besides its schedule, it runs when this plugin route says so
    /// (`GET /learning/status: should_trigger_learning_cycle`).
    pub trigger: Option<String>,
}

impl JobInfo {
    /// `plugin.job`, the key of its config override.
    pub fn key(&self) -> String {
        format!("{}.{}", self.plugin, self.job)
    }
}

/// A config problem found at start-up, naming the key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("key `{key}`: {message}")]
pub struct ScheduleError {
    /// Dotted key, e.g. `scheduler.jobs."drift.daily".schedule`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

/// A job the scheduler will run.
#[derive(Debug, Clone)]
pub struct ScheduledJob {
    /// The plugin.
    pub plugin: String,
    /// The job.
    pub job: String,
    /// When.
    pub schedule: Schedule,
    /// Also when this route says so.
    pub trigger: Option<learnloop_plugin_api::JobTrigger>,
}

impl ScheduledJob {
    /// `plugin.job`.
    pub fn key(&self) -> String {
        format!("{}.{}", self.plugin, self.job)
    }
}

/// Every job of every plugin the host loaded, with its effective schedule.
pub fn effective_jobs(config: &Config, host: &PluginHost) -> Vec<JobInfo> {
    effective_jobs_from(config, manifests(host))
}

/// The loaded plugins' job lists, as [`effective_jobs_from`] takes them.
pub fn manifests(host: &PluginHost) -> Vec<(&str, &[JobSpec])> {
    host.plugins().iter().map(|(name, l)| (name.as_str(), l.manifest.jobs.as_slice())).collect()
}

/// [`effective_jobs`] over explicit (plugin, jobs) lists.
pub fn effective_jobs_from<'a>(
    config: &Config,
    plugins: impl IntoIterator<Item = (&'a str, &'a [JobSpec])>,
) -> Vec<JobInfo> {
    let mut out = Vec::new();
    for (plugin, jobs) in plugins {
        for spec in jobs {
            let key = format!("{plugin}.{}", spec.name);
            let over = config.scheduler.jobs.get(&key);
            let schedule = over.and_then(|o| o.schedule.clone()).unwrap_or_else(|| spec.schedule.clone());
            let schedule_error = Schedule::parse(&schedule).err();
            out.push(JobInfo {
                plugin: plugin.to_string(),
                job: spec.name.clone(),
                description: spec.description.clone(),
                default_schedule: spec.schedule.clone(),
                overridden: over.is_some_and(|o| o.schedule.is_some()),
                enabled: over.is_none_or(|o| o.enabled),
                schedule: schedule.trim().to_string(),
                schedule_error,
                trigger: spec.trigger.as_ref().map(|t| format!("GET {}: {}", t.route, t.field)),
            });
        }
    }
    out
}

/// The config key of a job override's field, quoted as TOML writes it.
pub fn override_key(job_key: &str, field: &str) -> String {
    format!("scheduler.jobs.\"{job_key}\".{field}")
}

/// What the scheduler runs: the enabled jobs with parsed schedules, plus
/// warnings worth logging. Errors are config mistakes that must stop
/// start-up: an invalid cron expression in `[scheduler.jobs]`, or an override
/// for a job a loaded plugin does not have (a typo would otherwise silently
/// leave the default in place).
///
/// A plugin whose *manifest* schedule is invalid only loses that job (with a
/// warning): one plugin's fault never stops the others.
pub fn scheduled_jobs<'a>(
    config: &Config,
    plugins: impl IntoIterator<Item = (&'a str, &'a [JobSpec])>,
) -> Result<(Vec<ScheduledJob>, Vec<String>), ScheduleError> {
    let plugins: Vec<(&str, &[JobSpec])> = plugins.into_iter().collect();
    let mut warnings = Vec::new();
    for (key, over) in &config.scheduler.jobs {
        if let Some(expr) = &over.schedule {
            Schedule::parse(expr).map_err(|message| ScheduleError { key: override_key(key, "schedule"), message })?;
        }
        let (plugin, job) = key.split_once('.').unwrap_or((key.as_str(), ""));
        match plugins.iter().find(|(p, _)| *p == plugin) {
            Some((_, jobs)) => {
                if !jobs.iter().any(|j| j.name == job) {
                    let names: Vec<&str> = jobs.iter().map(|j| j.name.as_str()).collect();
                    return Err(ScheduleError {
                        key: format!("scheduler.jobs.\"{key}\""),
                        message: format!("plugin {plugin:?} has no job {job:?} (jobs: {})", names.join(", ")),
                    });
                }
            }
            None => warnings.push(format!(
                "config overrides job {key:?}, but plugin {plugin:?} is not loaded; the override is unused"
            )),
        }
    }
    let mut out = Vec::new();
    for info in effective_jobs_from(config, plugins.iter().copied()) {
        if !info.enabled {
            warnings.push(format!("job {} is disabled in the config", info.key()));
            continue;
        }
        let trigger = plugins
            .iter()
            .find(|(p, _)| *p == info.plugin)
            .and_then(|(_, jobs)| jobs.iter().find(|j| j.name == info.job))
            .and_then(|j| j.trigger.clone());
        match Schedule::parse(&info.schedule) {
            Ok(schedule) => out.push(ScheduledJob { plugin: info.plugin, job: info.job, schedule, trigger }),
            Err(e) => warnings.push(format!("job {} is not scheduled: plugin's default schedule: {e}", info.key())),
        }
    }
    Ok((out, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, schedule: &str) -> JobSpec {
        JobSpec { name: name.into(), schedule: schedule.into(), description: format!("{name} job"), trigger: None }
    }

    fn config(text: &str) -> Config {
        Config::from_toml("test.toml", text).unwrap()
    }

    #[test]
    fn defaults_overrides_and_disabling() {
        let drift = [spec("daily", "0 0 1 * * *"), spec("hourly", "0 0 * * * *")];
        let cost = [spec("learning_cycle", "0 0 3 * * *")];
        let c = config(
            r#"
            [scheduler.jobs."drift.daily"]
            schedule = "*/2 * * * * *"
            [scheduler.jobs."cost.learning_cycle"]
            enabled = false
            "#,
        );
        let jobs = effective_jobs_from(&c, [("drift", &drift[..]), ("cost", &cost[..])]);
        let find = |k: &str| jobs.iter().find(|j| j.key() == k).unwrap().clone();
        let daily = find("drift.daily");
        assert_eq!((daily.schedule.as_str(), daily.overridden, daily.enabled), ("*/2 * * * * *", true, true));
        assert_eq!(daily.default_schedule, "0 0 1 * * *");
        let hourly = find("drift.hourly");
        assert_eq!((hourly.schedule.as_str(), hourly.overridden, hourly.enabled), ("0 0 * * * *", false, true));
        let cycle = find("cost.learning_cycle");
        assert_eq!((cycle.schedule.as_str(), cycle.overridden, cycle.enabled), ("0 0 3 * * *", false, false));

        let (scheduled, warnings) = scheduled_jobs(&c, [("drift", &drift[..]), ("cost", &cost[..])]).unwrap();
        let keys: Vec<String> = scheduled.iter().map(|j| j.key()).collect();
        assert_eq!(keys, ["drift.daily", "drift.hourly"], "the disabled job is not scheduled");
        assert_eq!(scheduled[0].schedule.expr(), "*/2 * * * * *");
        assert!(warnings.iter().any(|w| w.contains("cost.learning_cycle is disabled")), "{warnings:?}");
    }

    #[test]
    fn invalid_override_is_an_error_naming_the_key() {
        let drift = [spec("daily", "0 0 1 * * *")];
        let c = config("[scheduler.jobs.\"drift.daily\"]\nschedule = \"*/2 * * *\"\n");
        let e = scheduled_jobs(&c, [("drift", &drift[..])]).unwrap_err();
        assert_eq!(e.key, "scheduler.jobs.\"drift.daily\".schedule");
        assert!(e.to_string().contains("key `scheduler.jobs.\"drift.daily\".schedule`"), "{e}");
        assert!(e.message.contains("expected 6"), "{e}");
        // Invalid even when the plugin is not loaded: the file is wrong either way.
        let e = scheduled_jobs(&c, []).unwrap_err();
        assert_eq!(e.key, "scheduler.jobs.\"drift.daily\".schedule");
    }

    #[test]
    fn override_of_an_unknown_job_is_an_error_and_of_an_unloaded_plugin_a_warning() {
        let drift = [spec("daily", "0 0 1 * * *")];
        let c = config("[scheduler.jobs.\"drift.dialy\"]\nenabled = false\n");
        let e = scheduled_jobs(&c, [("drift", &drift[..])]).unwrap_err();
        assert_eq!(e.key, "scheduler.jobs.\"drift.dialy\"");
        assert!(e.message.contains("no job \"dialy\" (jobs: daily)"), "{e}");
        let c = config("[scheduler.jobs.\"cost.learning_cycle\"]\nenabled = false\n");
        let (jobs, warnings) = scheduled_jobs(&c, [("drift", &drift[..])]).unwrap();
        assert_eq!(jobs.len(), 1);
        assert!(warnings.iter().any(|w| w.contains("\"cost\" is not loaded")), "{warnings:?}");
    }

    #[test]
    fn a_bad_manifest_schedule_drops_only_that_job() {
        let drift = [spec("daily", "every day"), spec("hourly", "0 0 * * * *")];
        let c = Config::default();
        let (jobs, warnings) = scheduled_jobs(&c, [("drift", &drift[..])]).unwrap();
        assert_eq!(jobs.iter().map(|j| j.key()).collect::<Vec<_>>(), ["drift.hourly"]);
        assert!(warnings.iter().any(|w| w.contains("drift.daily is not scheduled")), "{warnings:?}");
        let info = effective_jobs_from(&c, [("drift", &drift[..])]);
        assert!(info[0].schedule_error.is_some());
    }
}
