//! `learnloop-scheduler`: runs every enabled plugin's jobs on cron schedules.
//!
//! This library is the scheduler's logic; `src/main.rs` is the thin binary
//! around it, and `learnloop jobs list` uses [`effective_jobs`] so the CLI
//! and the scheduler agree on what runs when.
//!
//! * **Schedules** ([`schedule`]): 6-field cron (`sec min hour day-of-month
//!   month day-of-week`), UTC. Each job's default comes from its plugin's
//!   manifest; `[scheduler.jobs."plugin.job"]` in the config replaces it
//!   (`schedule = "..."`) or turns the job off (`enabled = false`). An invalid
//!   expression in the config stops start-up with an error naming the key
//!   ([`jobs`]).
//! * **Leadership** ([`leader`]): any number of schedulers may run against
//!   one store; the holder of the store lease `"scheduler"` runs jobs, the
//!   others stand by and take over within `lease_ttl_ms` (+ one tick) of the
//!   leader dying.
//! * **Exactly once**: every run is recorded with its slot (scheduled time in
//!   epoch microseconds) and attempt, which the store keeps unique.
//! * **Retries** with doubling backoff, and **catch-up** of the latest missed
//!   slot (once, not once per missed slot) when a scheduler becomes leader.
//! * **Logs and metrics**: every event is a `tracing` event (a run's lines
//!   inside a `job` span with plugin, job, slot and attempt); with
//!   `[scheduler] metrics_bind` set, [`metrics`] serves `/metrics` and
//!   `/health`.

#![deny(missing_docs)]

pub mod jobs;
pub mod leader;
pub mod metrics;
pub mod schedule;

pub use jobs::{JobInfo, ScheduleError, ScheduledJob, effective_jobs, effective_jobs_from, scheduled_jobs};
pub use leader::{JobRunner, LEASE_NAME, Scheduler, Settings, backoff_ms};
pub use schedule::Schedule;

/// A holder id unique to this process: `scheduler@<host>:<pid>:<random>`.
pub fn default_holder() -> String {
    use std::hash::{BuildHasher, Hasher};
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "localhost".to_string());
    // RandomState is seeded from the OS per process: enough to tell two
    // schedulers apart even if a pid is reused.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    format!("scheduler@{host}:{}:{:08x}", std::process::id(), h.finish() as u32)
}

#[cfg(test)]
mod tests;
