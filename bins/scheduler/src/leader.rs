//! The scheduling loop: leadership, due slots, retries and catch-up.
//!
//! Everything that decides *what* to run is a small pure function
//! ([`resume`], [`take_due`], [`retry_after`], [`backoff_ms`]) so the rules
//! can be tested without clocks or processes; [`Scheduler`] wires them to
//! the store's lease and job-run records:
//!
//! * **One leader.** Each tick a standby tries to acquire the store lease
//!   [`LEASE_NAME`]; the leader renews it. Before starting any job the leader
//!   renews again and does not start if the lease was lost; while a job runs a
//!   helper thread keeps renewing it every tick, so a long job does not hand
//!   leadership away.
//! * **Exactly-once slots.** A run is recorded with its slot (the scheduled
//!   time, epoch microseconds) and attempt; the store refuses a second
//!   (plugin, job, slot, attempt) with `SlotTaken`, which means someone else
//!   ran it, and the slot is skipped.
//! * **Retries.** A failed attempt `n` is retried as attempt `n + 1` of the
//!   same slot after `retry_backoff_ms × 2^(n-1)`, up to `max_retries`
//!   retries. A newer slot coming due supersedes a pending retry.
//! * **Catch-up.** On becoming leader (start-up or take-over), each job's
//!   latest due slot (the last one at or before now) is run once if no run of
//!   it is recorded and `catch_up` is on — one run, however many slots were
//!   missed. A recorded failure of that slot with retries left is resumed.
//!   Slots that pass while one run overruns are skipped, not queued.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use learnloop_config::SchedulerConfig;
use learnloop_core::{JobRun, JobStatus, PluginName, Timestamp};
use learnloop_plugin_host::{HostError, JobRequest, PluginHost};
use learnloop_store::{Fence, JobRunQuery, Lease, Store, StoreError};

use crate::jobs::ScheduledJob;
use crate::metrics::SchedulerMetrics;
use crate::schedule::Schedule;

/// The store lease whose holder is the leading scheduler.
pub const LEASE_NAME: &str = "scheduler";

/// Runs one job and records the run; [`PluginHost`] in production, a fake
/// in tests.
pub trait JobRunner {
    /// See [`PluginHost::run_job_request`]: the job's results commit only
    /// while the scheduler's lease is still at the request's fence.
    fn run_job(&self, request: JobRequest<'_>) -> Result<JobRun, HostError>;

    /// Whether `trigger`'s route answers `true` in any workspace of
    /// `plugin` (see [`learnloop_plugin_api::JobTrigger`]); an error is
    /// the reason it could not be asked.
    fn trigger_due(&self, plugin: &str, trigger: &learnloop_plugin_api::JobTrigger) -> Result<bool, String> {
        let _ = (plugin, trigger);
        Ok(false)
    }
}

impl JobRunner for PluginHost {
    fn run_job(&self, request: JobRequest<'_>) -> Result<JobRun, HostError> {
        self.run_job_request(request)
    }

    fn trigger_due(&self, plugin: &str, trigger: &learnloop_plugin_api::JobTrigger) -> Result<bool, String> {
        let name = learnloop_core::PluginName::parse("plugin", plugin).map_err(|e| e.to_string())?;
        for ws in self.store().workspaces(&name).map_err(|e| e.to_string())? {
            let answer = self
                .handle(plugin, &ws, "GET", &trigger.route, Default::default(), serde_json::Value::Null)
                .map_err(|e| format!("GET {} in {ws}: {e}", trigger.route))?;
            if answer.body.get(&trigger.field).and_then(serde_json::Value::as_bool) == Some(true) {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// Where the scheduler reads the time (a fixed clock in tests).
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// The wall clock.
pub fn wall_clock() -> Clock {
    Arc::new(Timestamp::now)
}

/// The `[scheduler]` settings the loop uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Lease lifetime without renewal, ms.
    pub lease_ttl_ms: u64,
    /// Wake-up interval, ms.
    pub tick_ms: u64,
    /// Retries of a failed slot.
    pub max_retries: u32,
    /// First retry delay, ms (doubled per further retry).
    pub retry_backoff_ms: u64,
    /// Run the latest missed slot once on becoming leader.
    pub catch_up: bool,
    /// How often triggered jobs are checked, ms.
    pub trigger_check_ms: u64,
}

impl From<&SchedulerConfig> for Settings {
    fn from(c: &SchedulerConfig) -> Self {
        Settings {
            lease_ttl_ms: c.lease_ttl_ms,
            tick_ms: c.tick_ms,
            max_retries: c.max_retries,
            retry_backoff_ms: c.retry_backoff_ms,
            catch_up: c.catch_up,
            trigger_check_ms: c.trigger_check_ms,
        }
    }
}

/// Delay after failed attempt `attempt` (1-based) before the next one:
/// `base`, `2 × base`, `4 × base`, ... (saturating).
pub fn backoff_ms(base: u64, attempt: u32) -> u64 {
    let doublings = attempt.saturating_sub(1);
    if doublings >= 64 {
        return if base == 0 { 0 } else { u64::MAX };
    }
    base.saturating_mul(1u64 << doublings)
}

/// One attempt at one slot, and when it may start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    /// The slot (scheduled time).
    pub slot: Timestamp,
    /// Attempt number, from 1.
    pub attempt: u32,
    /// Not before this instant.
    pub at: Timestamp,
}

/// The retry that follows a failed `due`, if any are left.
pub fn retry_after(due: &Due, failed_at: Timestamp, settings: &Settings) -> Option<Due> {
    (due.attempt <= settings.max_retries).then(|| Due {
        slot: due.slot,
        attempt: due.attempt + 1,
        at: failed_at
            .add_micros(backoff_ms(settings.retry_backoff_ms, due.attempt).min(i64::MAX as u64 / 1000) as i64 * 1000),
    })
}

/// What is due for a job when a scheduler becomes leader, from the runs
/// recorded for `latest`, its latest slot at or before now.
///
/// * No run recorded: run `latest` now if `run_missed` (catch-up, or
///   `--once`), else nothing.
/// * The last attempt failed and retries are left: that retry, at its
///   backoff time after the failure.
/// * Otherwise (succeeded, running elsewhere, given up): nothing.
pub fn resume(
    latest: Option<Timestamp>,
    runs: &[JobRun],
    now: Timestamp,
    run_missed: bool,
    settings: &Settings,
) -> Option<Due> {
    let slot = latest?;
    let Some(last) = runs.iter().max_by_key(|r| r.attempt) else {
        return run_missed.then_some(Due { slot, attempt: 1, at: now });
    };
    if last.status != JobStatus::Failed {
        return None;
    }
    let failed = Due { slot, attempt: last.attempt, at: last.started_at };
    retry_after(&failed, last.finished_at.unwrap_or(last.started_at), settings)
}

/// A job's place in its schedule while this scheduler leads.
#[derive(Debug, Clone)]
pub struct JobState {
    /// The job.
    pub job: ScheduledJob,
    /// The next slot that will come due (after the last one handled).
    pub next_slot: Option<Timestamp>,
    /// The attempt waiting to run (a new slot, a catch-up or a retry).
    pub pending: Option<Due>,
}

/// Advances `state` to `now` and takes the attempt to run now, if any.
///
/// When the next slot has come due, the latest slot at or before `now`
/// becomes pending (so slots passed during an overrunning job collapse into
/// one run, and a newer slot supersedes an older slot's retry).
pub fn take_due(state: &mut JobState, now: Timestamp) -> Option<Due> {
    if let Some(next) = state.next_slot.filter(|n| *n <= now) {
        let slot = state.job.schedule.latest_at_or_before(now).unwrap_or(next).max(next);
        if let Some(old) = state.pending.filter(|p| p.slot < slot) {
            tracing::info!("{}: slot {} attempt {} superseded by slot {slot}", state.job.key(), old.slot, old.attempt);
        }
        state.pending = Some(Due { slot, attempt: 1, at: now });
        state.next_slot = state.job.schedule.next_after(now);
    }
    match state.pending {
        Some(p) if p.at <= now => state.pending.take(),
        _ => None,
    }
}

/// How one attempt ended, as far as scheduling cares.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Recorded as succeeded.
    Succeeded(JobRun),
    /// Recorded as failed (or abandoned).
    Failed(JobRun),
    /// Someone else already started this slot and attempt: skip it.
    SlotTaken,
    /// The run could not be started or recorded.
    Error(String),
}

impl Outcome {
    /// The outcome as a metric label.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Succeeded(_) => "succeeded",
            Outcome::Failed(run) if run.status == JobStatus::Abandoned => "abandoned",
            Outcome::Failed(_) => "failed",
            Outcome::SlotTaken => "slot_taken",
            Outcome::Error(_) => "error",
        }
    }

    fn from_result(r: Result<JobRun, HostError>) -> Outcome {
        match r {
            Ok(run) if run.status == JobStatus::Succeeded => Outcome::Succeeded(run),
            Ok(run) => Outcome::Failed(run),
            Err(HostError::Store(StoreError::SlotTaken { .. })) => Outcome::SlotTaken,
            Err(e) => Outcome::Error(e.to_string()),
        }
    }
}

/// The scheduler: one per process.
pub struct Scheduler<'a> {
    store: Arc<dyn Store>,
    runner: &'a dyn JobRunner,
    settings: Settings,
    holder: String,
    clock: Clock,
    jobs: Vec<JobState>,
    lease: Option<Lease>,
    /// The other holder last reported, so standby is logged once per holder.
    seen_holder: Option<String>,
    /// The lease as last acquired, for [`Scheduler::lease_handle`].
    published: Arc<Mutex<Option<Lease>>>,
    /// When triggered jobs are next checked.
    next_trigger_check: Option<Timestamp>,
    /// Where leadership and runs are reported (`/metrics`), if anywhere.
    metrics: Option<Arc<SchedulerMetrics>>,
}

impl<'a> Scheduler<'a> {
    /// A scheduler for `jobs`, identifying itself as `holder`.
    pub fn new(
        store: Arc<dyn Store>,
        runner: &'a dyn JobRunner,
        jobs: Vec<ScheduledJob>,
        settings: Settings,
        holder: String,
        clock: Clock,
    ) -> Self {
        let jobs = jobs.into_iter().map(|job| JobState { job, next_slot: None, pending: None }).collect();
        let published = Arc::new(Mutex::new(None));
        Scheduler {
            store,
            runner,
            settings,
            holder,
            clock,
            jobs,
            lease: None,
            seen_holder: None,
            published,
            next_trigger_check: None,
            metrics: None,
        }
    }

    /// Reports leadership, runs and lag to `metrics` from now on.
    pub fn with_metrics(mut self, metrics: Arc<SchedulerMetrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Tells the metrics where the lease and each job's due attempt stand.
    fn report(&self) {
        let Some(m) = &self.metrics else { return };
        m.lease(self.lease.as_ref());
        let now = (self.clock)();
        for j in &self.jobs {
            let waiting = match (&self.lease, j.pending) {
                (Some(_), Some(p)) if p.at <= now => (now.as_micros() - p.at.as_micros()) as f64 / 1e6,
                _ => 0.0,
            };
            m.lag(&j.job.plugin, &j.job.job, waiting);
        }
    }

    /// This scheduler's holder id.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// The lease this scheduler holds (as acquired: renewals keep its
    /// token), shared so that a signal handler thread can release it while
    /// a job runs. Releasing it makes the running job's commits fail their
    /// fence, so nothing is applied after the release.
    pub fn lease_handle(&self) -> Arc<Mutex<Option<Lease>>> {
        self.published.clone()
    }

    fn publish(&self, lease: Option<&Lease>) {
        *self.published.lock().unwrap_or_else(|e| e.into_inner()) = lease.cloned();
    }

    /// Whether it currently holds the lease.
    pub fn is_leader(&self) -> bool {
        self.lease.is_some()
    }

    /// The jobs and where they stand (for tests and logs).
    pub fn jobs(&self) -> &[JobState] {
        &self.jobs
    }

    /// One wake-up: take or keep the lease, then run whatever is due,
    /// checking `stop` between jobs.
    pub fn tick(&mut self, stop: &AtomicBool) {
        let leads = self.ensure_lease(false);
        self.report();
        if !leads {
            return;
        }
        for i in 0..self.jobs.len() {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            let now = (self.clock)();
            if let Some(due) = take_due(&mut self.jobs[i], now) {
                self.run(i, due);
                if self.lease.is_none() {
                    return;
                }
            }
        }
        self.check_triggers(stop);
    }

    /// Every `trigger_check_ms`: runs each job whose trigger route says it
    /// is due, as a run of its own slot (the check time), recorded, fenced
    /// and retried like a scheduled one.
    fn check_triggers(&mut self, stop: &AtomicBool) {
        let now = (self.clock)();
        if self.next_trigger_check.is_some_and(|t| t > now) {
            return;
        }
        self.next_trigger_check = Some(now.add_micros(self.settings.trigger_check_ms as i64 * 1000));
        for i in 0..self.jobs.len() {
            if stop.load(Ordering::SeqCst) || self.lease.is_none() {
                return;
            }
            let Some(trigger) = self.jobs[i].job.trigger.clone() else { continue };
            let key = self.jobs[i].job.key();
            match self.runner.trigger_due(&self.jobs[i].job.plugin, &trigger) {
                Ok(true) => {
                    let now = (self.clock)();
                    tracing::info!(job = %key, route = %trigger.route, "{key}: GET {} says {}: running it now", trigger.route, trigger.field);
                    self.run(i, Due { slot: now, attempt: 1, at: now });
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(job = %key, "{key}: could not check its trigger: {e}"),
            }
        }
    }

    /// `--once`: take the lease, run each job's latest due slot if it has no
    /// run yet (whatever `catch_up` says) and any retry already due, then
    /// give the lease back. Returns false if another scheduler leads.
    pub fn run_once(&mut self, stop: &AtomicBool) -> bool {
        if !self.ensure_lease(true) {
            return false;
        }
        for i in 0..self.jobs.len() {
            if stop.load(Ordering::SeqCst) || self.lease.is_none() {
                break;
            }
            let now = (self.clock)();
            match self.jobs[i].pending.take() {
                Some(due) if due.at <= now => self.run(i, due),
                Some(due) => tracing::info!(
                    "{}: retry of slot {} (attempt {}) is due at {}; not waiting (--once)",
                    self.jobs[i].job.key(),
                    due.slot,
                    due.attempt,
                    due.at
                ),
                None => {}
            }
        }
        // Retries scheduled by this run are left to the next invocation.
        self.shutdown();
        true
    }

    /// How long to sleep before the next tick: `tick_ms`, or less when an
    /// attempt comes due sooner.
    pub fn next_wake(&self) -> Duration {
        let tick = Duration::from_millis(self.settings.tick_ms);
        if self.lease.is_none() {
            return tick;
        }
        let now = (self.clock)().as_micros();
        let soonest = self
            .jobs
            .iter()
            .flat_map(|j| [j.next_slot, j.pending.map(|p| p.at)])
            .flatten()
            .map(|t| t.as_micros())
            .min();
        match soonest {
            Some(t) if t <= now => Duration::ZERO,
            Some(t) => tick.min(Duration::from_micros((t - now) as u64)),
            None => tick,
        }
    }

    /// Gives the lease up (on shutdown).
    pub fn shutdown(&mut self) {
        if let Some(m) = &self.metrics {
            m.lease(None);
        }
        if let Some(lease) = self.lease.take() {
            self.publish(None);
            match self.store.release_lease(&lease) {
                Ok(()) => tracing::info!(token = lease.token, "released lease (token {})", lease.token),
                Err(e) => tracing::warn!("could not release lease: {e}"),
            }
        }
    }

    /// Renews or acquires the lease; on becoming leader, works out what is
    /// due from the store. Returns whether this scheduler leads.
    fn ensure_lease(&mut self, once: bool) -> bool {
        let now = (self.clock)();
        if let Some(lease) = &self.lease {
            return match self.store.renew_lease(lease, self.settings.lease_ttl_ms, now) {
                Ok(Some(renewed)) => {
                    self.lease = Some(renewed);
                    true
                }
                Ok(None) => {
                    // Lapsed (this process stalled past the TTL) or taken.
                    // If it merely lapsed, take it back at once below: the
                    // store, not memory, says what is due after a gap.
                    self.lose_lease();
                    self.acquire(now, once)
                }
                Err(e) => {
                    tracing::warn!("could not renew lease: {e}; not running jobs this tick");
                    false
                }
            };
        }
        self.acquire(now, once)
    }

    fn acquire(&mut self, now: Timestamp, once: bool) -> bool {
        match self.store.acquire_lease(LEASE_NAME, &self.holder, self.settings.lease_ttl_ms, now) {
            Ok(Some(lease)) => {
                tracing::info!(
                    holder = %self.holder,
                    token = lease.token,
                    "became leader as {} (token {})",
                    self.holder,
                    lease.token
                );
                self.publish(Some(&lease));
                self.lease = Some(lease);
                self.seen_holder = None;
                self.resume_all(now, once);
                true
            }
            Ok(None) => {
                let holder = self.store.current_lease(LEASE_NAME, now).ok().flatten().map(|l| l.holder);
                if holder.is_some() && holder != self.seen_holder {
                    tracing::info!("standing by: {} leads", holder.as_deref().unwrap_or("?"));
                    self.seen_holder = holder;
                }
                false
            }
            Err(e) => {
                tracing::warn!("could not acquire lease: {e}");
                false
            }
        }
    }

    fn lose_lease(&mut self) {
        tracing::warn!("lost lease; standing by");
        self.lease = None;
        self.publish(None);
        for j in &mut self.jobs {
            j.pending = None;
            j.next_slot = None;
        }
    }

    fn resume_all(&mut self, now: Timestamp, once: bool) {
        let run_missed = once || self.settings.catch_up;
        for j in &mut self.jobs {
            let latest = j.job.schedule.latest_at_or_before(now);
            let runs = match latest.map(|slot| recorded_runs(self.store.as_ref(), &j.job, slot)) {
                Some(Ok(runs)) => close_orphans(self.store.as_ref(), &j.job, runs, &self.holder, now),
                Some(Err(e)) => {
                    tracing::warn!("{}: cannot read run history: {e}", j.job.key());
                    j.next_slot = j.job.schedule.next_after(now);
                    continue;
                }
                None => Vec::new(),
            };
            j.pending = resume(latest, &runs, now, run_missed, &self.settings);
            if let Some(p) = j.pending {
                let what = if p.attempt == 1 { "catch-up: missed slot" } else { "resuming retries of slot" };
                tracing::info!("{}: {what} {} (attempt {}) at {}", j.job.key(), p.slot, p.attempt, p.at);
            }
            j.next_slot = j.job.schedule.next_after(now);
        }
    }

    /// Runs one attempt, keeping the lease alive meanwhile, and schedules
    /// its retry if it failed.
    fn run(&mut self, i: usize, due: Due) {
        let key = self.jobs[i].job.key();
        // Never start without the lease: it may have lapsed during the
        // previous job or while this process was stalled.
        let Some(lease) = self.lease.clone() else { return };
        let now = (self.clock)();
        match self.store.renew_lease(&lease, self.settings.lease_ttl_ms, now) {
            Ok(Some(renewed)) => self.lease = Some(renewed),
            Ok(None) => {
                tracing::warn!("{key}: not starting slot {}: lease lost", due.slot);
                self.lose_lease();
                return;
            }
            Err(e) => {
                tracing::warn!("{key}: not starting slot {}: cannot renew lease: {e}", due.slot);
                self.jobs[i].pending = Some(due);
                return;
            }
        }
        let lease = self.lease.clone().expect("just renewed");
        // The job's results commit only while the lease is still this one's
        // (renewals keep the token; a take-over changes it).
        let fence = Fence::from(&lease);
        let (plugin, job) = (self.jobs[i].job.plugin.clone(), self.jobs[i].job.job.clone());
        // The run's span: its start and end lines, and whatever the host
        // and the plugin log meanwhile, carry plugin, job, slot and attempt.
        let span = tracing::info_span!(
            "job",
            plugin = %plugin,
            job = %job,
            slot = %due.slot,
            attempt = due.attempt
        );
        let _entered = span.enter();
        tracing::info!("starting {key} slot {} attempt {}", due.slot, due.attempt);
        let started = std::time::Instant::now();
        let (result, kept) = std::thread::scope(|s| {
            let (done_tx, done_rx) = mpsc::channel::<()>();
            let store = self.store.clone();
            let clock = self.clock.clone();
            let (ttl, tick) = (self.settings.lease_ttl_ms, Duration::from_millis(self.settings.tick_ms));
            let keeper = s.spawn(move || {
                let mut lease = lease;
                loop {
                    match done_rx.recv_timeout(tick) {
                        Err(mpsc::RecvTimeoutError::Timeout) => match store.renew_lease(&lease, ttl, clock()) {
                            Ok(Some(renewed)) => lease = renewed,
                            Ok(None) => return None,
                            Err(_) => {} // try again next tick; the lease may still be ours
                        },
                        _ => return Some(lease),
                    }
                }
            });
            let result = self.runner.run_job(JobRequest {
                plugin: &plugin,
                job: &job,
                runner: &self.holder,
                slot: Some(due.slot.as_micros()),
                attempt: due.attempt,
                fence: Some(&fence),
            });
            drop(done_tx);
            (result, keeper.join().unwrap_or(None))
        });
        let finished = (self.clock)();
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        let outcome = Outcome::from_result(result);
        if let Some(metrics) = &self.metrics {
            metrics.job_finished(&plugin, &job, outcome.label(), elapsed_ms / 1000.0, finished);
            if let Outcome::Succeeded(run) = &outcome {
                metrics.run_recorded(run);
            }
        }
        match outcome {
            Outcome::Succeeded(run) => tracing::info!(
                outcome = "succeeded",
                duration_ms = duration_ms(&run),
                run = run.id,
                "ran {key} slot {} attempt {}: succeeded in {} ms",
                due.slot,
                due.attempt,
                duration_ms(&run)
            ),
            Outcome::Failed(run) => {
                let error = run.error.clone().unwrap_or_default();
                tracing::warn!(
                    outcome = run.status.as_str(),
                    duration_ms = duration_ms(&run),
                    run = run.id,
                    "ran {key} slot {} attempt {}: {} in {} ms: {error}",
                    due.slot,
                    due.attempt,
                    run.status.as_str(),
                    duration_ms(&run)
                );
                self.schedule_retry(i, &key, due, finished);
            }
            Outcome::SlotTaken => tracing::info!(
                outcome = "slot_taken",
                "{key} slot {} attempt {} was already started by another runner; skipping",
                due.slot,
                due.attempt
            ),
            Outcome::Error(e) => {
                tracing::warn!(
                    outcome = "error",
                    duration_ms = elapsed_ms as i64,
                    "{key} slot {} attempt {}: could not run: {e}",
                    due.slot,
                    due.attempt
                );
                self.schedule_retry(i, &key, due, finished);
            }
        }
        match kept {
            Some(lease) => self.lease = Some(lease),
            None => self.lose_lease(),
        }
        self.report();
    }

    fn schedule_retry(&mut self, i: usize, key: &str, due: Due, failed_at: Timestamp) {
        match retry_after(&due, failed_at, &self.settings) {
            Some(retry) => {
                tracing::info!("retry scheduled: {key} slot {} attempt {} at {}", retry.slot, retry.attempt, retry.at);
                // A newer slot that came due meanwhile wins over the retry.
                if self.jobs[i].pending.is_none_or(|p| p.slot <= retry.slot) {
                    self.jobs[i].pending = Some(retry);
                }
            }
            None => tracing::warn!("{key} slot {}: giving up after {} attempts", due.slot, due.attempt),
        }
    }
}

/// Runs still `running` when this scheduler becomes leader were started by
/// a leader that lost its lease before finishing them (killed, or cut off
/// from the database): no one will finish them. Each is recorded as failed,
/// naming what happened, so the retry policy takes the slot over instead of
/// the run showing `running` forever. (A leader that was only cut off and
/// finishes later finds its run closed and cannot record it: the store
/// finishes only running runs.)
fn close_orphans(store: &dyn Store, job: &ScheduledJob, runs: Vec<JobRun>, me: &str, now: Timestamp) -> Vec<JobRun> {
    runs.into_iter()
        .map(|run| {
            if run.status != JobStatus::Running {
                return run;
            }
            let why = format!(
                "abandoned: scheduler {:?} lost its lease before finishing this run (killed or cut off); \
                 closed by scheduler {me:?} on taking the lease over",
                run.runner
            );
            match store.finish_job_run(run.id, JobStatus::Failed, None, Some(&why), now) {
                Ok(closed) => {
                    tracing::warn!("{}: run {} (slot attempt {}) {why}", job.key(), run.id, run.attempt);
                    closed
                }
                Err(e) => {
                    tracing::warn!("{}: cannot close orphaned run {}: {e}", job.key(), run.id);
                    run
                }
            }
        })
        .collect()
}

fn recorded_runs(store: &dyn Store, job: &ScheduledJob, slot: Timestamp) -> Result<Vec<JobRun>, StoreError> {
    let plugin = PluginName::parse("plugin", &job.plugin)
        .map_err(|e| StoreError::Invalid { field: "plugin".into(), message: e.message })?;
    store.job_runs(&JobRunQuery {
        plugin: Some(plugin),
        job: Some(job.job.clone()),
        slot: Some(slot.as_micros()),
        limit: 1000,
    })
}

fn duration_ms(run: &JobRun) -> i64 {
    run.finished_at.map(|f| (f.as_micros() - run.started_at.as_micros()) / 1000).unwrap_or(0)
}

/// Parses a schedule for tests and callers that build [`ScheduledJob`]s by hand.
pub fn scheduled(plugin: &str, job: &str, expr: &str) -> Result<ScheduledJob, String> {
    Ok(ScheduledJob { plugin: plugin.into(), job: job.into(), schedule: Schedule::parse(expr)?, trigger: None })
}
