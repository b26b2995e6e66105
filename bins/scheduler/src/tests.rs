//! Unit tests of the scheduling rules and of [`Scheduler`] on a real store
//! with a fake clock and a fake job runner, so every timing is exact.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use learnloop_core::{JobRun, JobStatus, PluginName, Timestamp};
use learnloop_plugin_host::{HostError, JobRequest};
use learnloop_store::{Fence, JobRunQuery, NewJobRun, SqliteOptions, SqliteStore, Store};

use crate::leader::{Clock, Due, JobRunner, JobState, Scheduler, Settings, resume, retry_after, scheduled, take_due};
use crate::{LEASE_NAME, backoff_ms};

fn at(s: &str) -> Timestamp {
    Timestamp::parse("t", s).unwrap()
}

fn settings() -> Settings {
    Settings {
        lease_ttl_ms: 3_000,
        tick_ms: 500,
        max_retries: 3,
        retry_backoff_ms: 1_000,
        catch_up: true,
        trigger_check_ms: 10_000,
    }
}

/// A clock the test moves by hand.
#[derive(Clone)]
struct FakeClock(Arc<AtomicI64>);

impl FakeClock {
    fn new(t: Timestamp) -> Self {
        FakeClock(Arc::new(AtomicI64::new(t.as_micros())))
    }
    fn set(&self, t: Timestamp) {
        self.0.store(t.as_micros(), Ordering::SeqCst);
    }
    fn advance_ms(&self, ms: i64) {
        self.0.fetch_add(ms * 1000, Ordering::SeqCst);
    }
    fn now(&self) -> Timestamp {
        Timestamp::from_micros(self.0.load(Ordering::SeqCst)).unwrap()
    }
    fn clock(&self) -> Clock {
        let c = self.clone();
        Arc::new(move || c.now())
    }
}

/// Records runs in the store like the host does; fails the first `fail`
/// attempts it is given, and can move the clock forward while "running".
struct FakeRunner {
    store: Arc<dyn Store>,
    clock: FakeClock,
    fail: AtomicU32,
    takes_ms: i64,
    calls: Mutex<Vec<(String, i64, u32)>>,
    /// Called while a job "runs" (to let something else happen meanwhile).
    during: Mutex<Option<Box<dyn FnMut() + Send>>>,
    /// The fence each run was given.
    fences: Mutex<Vec<Option<Fence>>>,
    /// What successive trigger checks answer (then false); how many were asked.
    triggers: Mutex<std::collections::VecDeque<bool>>,
    trigger_checks: AtomicU32,
}

impl FakeRunner {
    fn new(store: Arc<dyn Store>, clock: FakeClock, fail: u32) -> Self {
        FakeRunner {
            store,
            clock,
            fail: AtomicU32::new(fail),
            takes_ms: 0,
            calls: Mutex::new(Vec::new()),
            during: Mutex::new(None),
            fences: Mutex::new(Vec::new()),
            triggers: Mutex::new(Default::default()),
            trigger_checks: AtomicU32::new(0),
        }
    }
}

impl JobRunner for FakeRunner {
    fn run_job(&self, r: JobRequest<'_>) -> Result<JobRun, HostError> {
        let JobRequest { plugin, job, runner, slot, attempt, fence } = r;
        self.calls.lock().unwrap().push((format!("{plugin}.{job}"), slot.unwrap_or(-1), attempt));
        self.fences.lock().unwrap().push(fence.cloned());
        let run = self.store.start_job_run(&NewJobRun {
            plugin: PluginName::parse("plugin", plugin).unwrap(),
            job: job.into(),
            slot,
            attempt,
            runner: runner.into(),
            now: self.clock.now(),
        })?;
        self.clock.advance_ms(self.takes_ms);
        if let Some(f) = self.during.lock().unwrap().as_mut() {
            f();
        }
        let failing = self.fail.load(Ordering::SeqCst) > 0;
        if failing {
            self.fail.fetch_sub(1, Ordering::SeqCst);
        }
        let (status, error) = if failing { (JobStatus::Failed, Some("boom")) } else { (JobStatus::Succeeded, None) };
        Ok(self.store.finish_job_run(run.id, status, None, error, self.clock.now())?)
    }

    fn trigger_due(&self, _plugin: &str, _trigger: &learnloop_plugin_api::JobTrigger) -> Result<bool, String> {
        self.trigger_checks.fetch_add(1, Ordering::SeqCst);
        Ok(self.triggers.lock().unwrap().pop_front().unwrap_or(false))
    }
}

/// Attempt 1 of drift.daily's `slot`, run by `runner` without a fence.
fn request(runner: &str, slot: Timestamp) -> JobRequest<'_> {
    JobRequest { plugin: "drift", job: "daily", runner, slot: Some(slot.as_micros()), attempt: 1, fence: None }
}

fn store() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let opts = SqliteOptions { synchronous_full: false, ..SqliteOptions::default() };
    let s: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("t.sqlite"), &opts).unwrap());
    (dir, s)
}

fn runs(store: &dyn Store) -> Vec<JobRun> {
    let mut v = store.job_runs(&JobRunQuery { limit: 1000, ..JobRunQuery::default() }).unwrap();
    v.reverse(); // oldest first
    v
}

fn slots(store: &dyn Store) -> Vec<(Timestamp, u32, JobStatus)> {
    runs(store).iter().map(|r| (Timestamp::from_micros(r.slot.unwrap()).unwrap(), r.attempt, r.status)).collect()
}

fn no_stop() -> AtomicBool {
    AtomicBool::new(false)
}

/// Ticks every 500 ms (the configured tick) until the clock reads `until`,
/// as the real loop would.
fn tick_until(s: &mut Scheduler<'_>, clock: &FakeClock, until: Timestamp) {
    while clock.now() < until {
        let step = ((until.as_micros() - clock.now().as_micros()) / 1000).min(500);
        clock.advance_ms(step);
        s.tick(&no_stop());
    }
}

#[test]
fn backoff_doubles_from_the_base() {
    let got: Vec<u64> = (1..=5).map(|a| backoff_ms(30_000, a)).collect();
    assert_eq!(got, [30_000, 60_000, 120_000, 240_000, 480_000]);
    assert_eq!(backoff_ms(1_000, 0), 1_000, "attempt 0 is treated as the first");
    assert_eq!(backoff_ms(1_000, 70), u64::MAX, "saturates instead of overflowing");
    assert_eq!(backoff_ms(0, 70), 0);
}

#[test]
fn retry_schedule_stops_after_max_retries() {
    let s = settings(); // 3 retries, 1 s base
    let t0 = at("2026-01-10T12:00:00Z");
    let mut due = Due { slot: t0, attempt: 1, at: t0 };
    let mut delays = Vec::new();
    while let Some(next) = retry_after(&due, due.at, &s) {
        assert_eq!(next.slot, t0, "a retry is the same slot");
        assert_eq!(next.attempt, due.attempt + 1);
        delays.push((next.at.as_micros() - due.at.as_micros()) / 1000);
        due = next;
    }
    assert_eq!(delays, [1_000, 2_000, 4_000]);
    assert_eq!(due.attempt, 4, "1 attempt + 3 retries");
}

fn run_record(attempt: u32, status: JobStatus, started: Timestamp, finished: Option<Timestamp>) -> JobRun {
    JobRun {
        id: attempt as i64,
        plugin: PluginName::parse("p", "drift").unwrap(),
        job: "daily".into(),
        slot: Some(0),
        runner: "x".into(),
        status,
        started_at: started,
        finished_at: finished,
        report: None,
        error: None,
        attempt,
    }
}

#[test]
fn resume_decides_from_the_latest_slots_record() {
    let s = settings();
    let slot = at("2026-01-10T03:00:00Z");
    let now = at("2026-01-10T12:00:00Z");
    assert_eq!(resume(Some(slot), &[], now, true, &s), Some(Due { slot, attempt: 1, at: now }), "catch-up");
    assert_eq!(resume(Some(slot), &[], now, false, &s), None, "catch_up = false");
    assert_eq!(resume(None, &[], now, true, &s), None, "no slot yet");
    let ok = run_record(1, JobStatus::Succeeded, slot, Some(slot));
    assert_eq!(resume(Some(slot), &[ok], now, true, &s), None, "already done");
    let running = run_record(1, JobStatus::Running, slot, None);
    assert_eq!(resume(Some(slot), &[running], now, true, &s), None, "running elsewhere");
    let f1 = run_record(1, JobStatus::Failed, slot, Some(slot.add_micros(1_000_000)));
    let f2 = run_record(2, JobStatus::Failed, slot, Some(slot.add_micros(5_000_000)));
    assert_eq!(
        resume(Some(slot), &[f2.clone(), f1.clone()], now, true, &s),
        Some(Due { slot, attempt: 3, at: slot.add_micros(7_000_000) }),
        "the newest attempt decides; retry 2 waits 2 × base after it"
    );
    let f4 = run_record(4, JobStatus::Failed, slot, Some(slot));
    assert_eq!(resume(Some(slot), &[f1, f2, f4], now, true, &s), None, "retries used up");
}

#[test]
fn overrun_slots_collapse_into_one_run() {
    let job = scheduled("drift", "daily", "0 * * * * *").unwrap();
    let mut st = JobState { job, next_slot: Some(at("2026-01-10T12:01:00Z")), pending: None };
    assert_eq!(take_due(&mut st, at("2026-01-10T12:00:59Z")), None, "not yet");
    // Ten slots passed (say, a long run): one run, of the latest.
    let now = at("2026-01-10T12:10:30Z");
    let due = take_due(&mut st, now).unwrap();
    assert_eq!(due, Due { slot: at("2026-01-10T12:10:00Z"), attempt: 1, at: now });
    assert_eq!(st.next_slot, Some(at("2026-01-10T12:11:00Z")));
    assert_eq!(take_due(&mut st, now), None);
    // A newer slot supersedes a pending retry of an older one.
    st.pending = Some(Due { slot: at("2026-01-10T12:10:00Z"), attempt: 2, at: at("2026-01-10T12:15:00Z") });
    let due = take_due(&mut st, at("2026-01-10T12:11:00Z")).unwrap();
    assert_eq!((due.slot, due.attempt), (at("2026-01-10T12:11:00Z"), 1));
}

#[test]
fn catch_up_runs_the_latest_missed_slot_once_not_once_per_slot() {
    let (_d, store) = store();
    let clock = FakeClock::new(at("2026-01-10T12:00:30Z"));
    // A scheduler ran slot 11:00 and then nothing ran for an hour: 60 slots missed.
    let runner = FakeRunner::new(store.clone(), clock.clone(), 0);
    runner.run_job(request("old", at("2026-01-10T11:00:00Z"))).unwrap();
    let jobs = vec![scheduled("drift", "daily", "0 * * * * *").unwrap()];
    let mut s = Scheduler::new(store.clone(), &runner, jobs.clone(), settings(), "a".into(), clock.clock());
    s.tick(&no_stop());
    assert!(s.is_leader());
    s.tick(&no_stop());
    clock.advance_ms(500);
    s.tick(&no_stop());
    let got = slots(store.as_ref());
    assert_eq!(
        got,
        [(at("2026-01-10T11:00:00Z"), 1, JobStatus::Succeeded), (at("2026-01-10T12:00:00Z"), 1, JobStatus::Succeeded),],
        "exactly one catch-up run, of the latest missed slot"
    );
    // Then the schedule goes on normally.
    tick_until(&mut s, &clock, at("2026-01-10T12:01:00Z"));
    assert_eq!(slots(store.as_ref()).last().unwrap().0, at("2026-01-10T12:01:00Z"));
    assert_eq!(runs(store.as_ref()).len(), 3);
    s.shutdown();
    // A restart a little later catches up nothing: the latest slot has a run.
    clock.set(at("2026-01-10T12:01:20Z"));
    let mut again = Scheduler::new(store.clone(), &runner, jobs, settings(), "b".into(), clock.clock());
    again.tick(&no_stop());
    assert!(again.is_leader(), "the released lease is free at once");
    assert_eq!(runs(store.as_ref()).len(), 3);
}

#[test]
fn without_catch_up_a_missed_slot_is_not_run() {
    let (_d, store) = store();
    let clock = FakeClock::new(at("2026-01-10T12:00:30Z"));
    let runner = FakeRunner::new(store.clone(), clock.clone(), 0);
    let jobs = vec![scheduled("drift", "daily", "0 * * * * *").unwrap()];
    let mut s = Scheduler::new(
        store.clone(),
        &runner,
        jobs.clone(),
        Settings { catch_up: false, ..settings() },
        "a".into(),
        clock.clock(),
    );
    s.tick(&no_stop());
    assert!(runs(store.as_ref()).is_empty());
    assert_eq!(s.next_wake(), std::time::Duration::from_millis(500), "a tick, as the next slot is 30 s away");
    tick_until(&mut s, &clock, at("2026-01-10T12:01:00Z"));
    assert_eq!(slots(store.as_ref()), [(at("2026-01-10T12:01:00Z"), 1, JobStatus::Succeeded)]);
    // --once runs the latest due slot even without catch_up.
    s.shutdown();
    clock.set(at("2026-01-10T12:02:05Z"));
    let mut once = Scheduler::new(
        store.clone(),
        &runner,
        jobs,
        Settings { catch_up: false, ..settings() },
        "o".into(),
        clock.clock(),
    );
    assert!(once.run_once(&no_stop()));
    assert_eq!(slots(store.as_ref()).last().unwrap().0, at("2026-01-10T12:02:00Z"));
    assert!(!once.is_leader(), "--once gives the lease back");
}

#[test]
fn failed_runs_retry_with_doubling_backoff_as_new_attempts_of_the_slot() {
    let (_d, store) = store();
    let t0 = at("2026-01-10T12:00:00Z");
    let clock = FakeClock::new(t0);
    let runner = FakeRunner::new(store.clone(), clock.clone(), 2); // fails twice
    let jobs = vec![scheduled("drift", "daily", "0 0 * * * *").unwrap()];
    let mut s = Scheduler::new(store.clone(), &runner, jobs, settings(), "a".into(), clock.clock());
    s.tick(&no_stop()); // catch-up of slot 12:00, fails
    assert_eq!(slots(store.as_ref()), [(t0, 1, JobStatus::Failed)]);
    clock.advance_ms(999);
    s.tick(&no_stop());
    assert_eq!(runs(store.as_ref()).len(), 1, "not before the backoff");
    clock.advance_ms(1);
    s.tick(&no_stop()); // t0 + 1 s: attempt 2, fails
    assert_eq!(runs(store.as_ref()).len(), 2);
    clock.advance_ms(1_999);
    s.tick(&no_stop());
    assert_eq!(runs(store.as_ref()).len(), 2, "second retry waits 2 × base");
    clock.advance_ms(1);
    s.tick(&no_stop()); // t0 + 3 s: attempt 3 succeeds
    assert_eq!(
        slots(store.as_ref()),
        [(t0, 1, JobStatus::Failed), (t0, 2, JobStatus::Failed), (t0, 3, JobStatus::Succeeded)]
    );
    clock.advance_ms(60_000);
    s.tick(&no_stop());
    assert_eq!(runs(store.as_ref()).len(), 3, "nothing more until the next slot");
}

#[test]
fn a_slot_is_given_up_after_max_retries() {
    let (_d, store) = store();
    let t0 = at("2026-01-10T12:00:00Z");
    let clock = FakeClock::new(t0);
    let runner = FakeRunner::new(store.clone(), clock.clone(), u32::MAX);
    let jobs = vec![scheduled("drift", "daily", "0 0 * * * *").unwrap()];
    let mut s = Scheduler::new(
        store.clone(),
        &runner,
        jobs.clone(),
        Settings { max_retries: 2, ..settings() },
        "a".into(),
        clock.clock(),
    );
    for _ in 0..40 {
        s.tick(&no_stop());
        clock.advance_ms(500);
    }
    assert_eq!(
        slots(store.as_ref()),
        [(t0, 1, JobStatus::Failed), (t0, 2, JobStatus::Failed), (t0, 3, JobStatus::Failed)]
    );
    // A new leader does not resume a slot whose retries are used up.
    s.shutdown();
    let mut b = Scheduler::new(
        store.clone(),
        &runner,
        jobs,
        Settings { max_retries: 2, ..settings() },
        "b".into(),
        clock.clock(),
    );
    b.tick(&no_stop());
    assert!(b.is_leader());
    assert_eq!(runs(store.as_ref()).len(), 3);
}

#[test]
fn a_new_leader_resumes_pending_retries() {
    let (_d, store) = store();
    let t0 = at("2026-01-10T12:00:00Z");
    let clock = FakeClock::new(t0);
    let runner = FakeRunner::new(store.clone(), clock.clone(), 1);
    let jobs = vec![scheduled("drift", "daily", "0 0 * * * *").unwrap()];
    let mut a = Scheduler::new(store.clone(), &runner, jobs.clone(), settings(), "a".into(), clock.clock());
    a.tick(&no_stop()); // attempt 1 fails; a then dies
    drop(a);
    clock.advance_ms(3_000); // lease lapses
    let mut b = Scheduler::new(store.clone(), &runner, jobs, settings(), "b".into(), clock.clock());
    b.tick(&no_stop());
    assert_eq!(slots(store.as_ref()), [(t0, 1, JobStatus::Failed), (t0, 2, JobStatus::Succeeded)]);
    assert_eq!(runs(store.as_ref())[1].runner, "b");
}

#[test]
fn jobs_run_fenced_by_the_leaders_lease() {
    let (_d, store) = store();
    let clock = FakeClock::new(at("2026-01-10T12:00:00Z"));
    let runner = FakeRunner::new(store.clone(), clock.clone(), 0);
    let jobs = vec![scheduled("drift", "daily", "0 0 * * * *").unwrap()];
    let mut s = Scheduler::new(store.clone(), &runner, jobs, settings(), "a".into(), clock.clock());
    s.tick(&no_stop());
    let lease = store.current_lease(LEASE_NAME, clock.now()).unwrap().expect("a leads");
    assert_eq!(*runner.fences.lock().unwrap(), [Some(Fence { lease: LEASE_NAME.into(), token: lease.token })]);
}

#[test]
fn a_run_left_running_by_a_killed_leader_is_closed_and_retried() {
    let (_d, store) = store();
    let t0 = at("2026-01-10T12:00:00Z");
    let clock = FakeClock::new(t0);
    // Leader "a" started slot 12:00 and was killed before finishing it.
    store
        .start_job_run(&NewJobRun {
            plugin: PluginName::parse("plugin", "drift").unwrap(),
            job: "daily".into(),
            slot: Some(t0.as_micros()),
            attempt: 1,
            runner: "a".into(),
            now: t0,
        })
        .unwrap();
    let runner = FakeRunner::new(store.clone(), clock.clone(), 0);
    let jobs = vec![scheduled("drift", "daily", "0 0 * * * *").unwrap()];
    clock.advance_ms(3_000); // a's lease lapses
    let mut b = Scheduler::new(store.clone(), &runner, jobs, settings(), "b".into(), clock.clock());
    b.tick(&no_stop());
    assert!(b.is_leader());
    let first = &runs(store.as_ref())[0];
    assert_eq!(first.status, JobStatus::Failed, "no longer shown as running");
    let why = first.error.as_deref().unwrap();
    assert!(why.contains("abandoned") && why.contains("\"a\"") && why.contains("\"b\""), "{why}");
    clock.advance_ms(1_000); // the retry backoff
    b.tick(&no_stop());
    assert_eq!(slots(store.as_ref()), [(t0, 1, JobStatus::Failed), (t0, 2, JobStatus::Succeeded)]);
    assert_eq!(runs(store.as_ref())[1].runner, "b");
}

#[test]
fn one_leader_and_failover_without_running_a_slot_twice() {
    let (_d, store) = store();
    let clock = FakeClock::new(at("2026-01-10T12:00:00.100Z"));
    let runner = FakeRunner::new(store.clone(), clock.clone(), 0);
    let jobs = vec![scheduled("drift", "daily", "*/2 * * * * *").unwrap()];
    let mut a = Scheduler::new(store.clone(), &runner, jobs.clone(), settings(), "a".into(), clock.clock());
    let mut b = Scheduler::new(store.clone(), &runner, jobs, settings(), "b".into(), clock.clock());
    for _ in 0..20 {
        a.tick(&no_stop());
        b.tick(&no_stop());
        assert!(a.is_leader() && !b.is_leader());
        clock.advance_ms(500);
    }
    let before: Vec<JobRun> = runs(store.as_ref());
    assert_eq!(before.len(), 5, "one run per 2 s slot over 10 s: {before:?}");
    assert!(before.iter().all(|r| r.runner == "a"));
    // `a` dies (stops ticking). `b` takes over once the lease lapses.
    let died = clock.now();
    let mut took_over = None;
    for _ in 0..20 {
        b.tick(&no_stop());
        if b.is_leader() && took_over.is_none() {
            took_over = Some(clock.now());
        }
        clock.advance_ms(500);
    }
    let took_over = took_over.expect("b takes over");
    let waited = (took_over.as_micros() - died.as_micros()) / 1000;
    assert!(waited <= 3_000 + 500, "take-over within lease TTL + a tick, took {waited} ms");
    let after = runs(store.as_ref());
    let mut seen = std::collections::HashSet::new();
    for r in &after {
        assert!(seen.insert((r.slot, r.attempt)), "slot {:?} attempt {} recorded twice", r.slot, r.attempt);
    }
    let b_runs: Vec<&JobRun> = after.iter().filter(|r| r.runner == "b").collect();
    assert!(b_runs.len() >= 3, "{after:?}");
    let a_last = before.iter().map(|r| r.slot.unwrap()).max().unwrap();
    assert!(b_runs.iter().all(|r| r.slot.unwrap() > a_last));
    // The old leader comes back: it has lost the lease and runs nothing.
    let n = after.len();
    a.tick(&no_stop());
    assert!(!a.is_leader());
    assert_eq!(runs(store.as_ref()).len(), n);
    assert_eq!(store.current_lease(LEASE_NAME, clock.now()).unwrap().unwrap().holder, "b");
}

#[test]
fn a_slot_started_elsewhere_is_skipped() {
    let (_d, store) = store();
    let t0 = at("2026-01-10T12:00:00Z");
    let clock = FakeClock::new(t0);
    let runner = FakeRunner::new(store.clone(), clock.clone(), 0);
    let jobs = vec![scheduled("drift", "daily", "0 * * * * *").unwrap()];
    let mut s = Scheduler::new(
        store.clone(),
        &runner,
        jobs,
        Settings { catch_up: false, ..settings() },
        "a".into(),
        clock.clock(),
    );
    s.tick(&no_stop());
    // Someone (a leader whose lease lapsed mid-tick) starts the next slot first.
    let next = at("2026-01-10T12:01:00Z");
    runner.run_job(request("other", next)).unwrap();
    tick_until(&mut s, &clock, next);
    let all = runs(store.as_ref());
    assert_eq!(all.len(), 1, "the slot ran once, by the other runner");
    assert_eq!(runner.calls.lock().unwrap().len(), 2, "the scheduler tried and was refused");
    assert!(s.is_leader(), "a taken slot does not cost the lease");
}

#[test]
fn stop_flag_stops_between_jobs_and_shutdown_releases_the_lease() {
    let (_d, store) = store();
    let clock = FakeClock::new(at("2026-01-10T12:00:30Z"));
    let runner = FakeRunner::new(store.clone(), clock.clone(), 0);
    let jobs = vec![
        scheduled("drift", "daily", "0 * * * * *").unwrap(),
        scheduled("cost", "learning_cycle", "0 * * * * *").unwrap(),
    ];
    let mut s = Scheduler::new(store.clone(), &runner, jobs, settings(), "a".into(), clock.clock());
    s.tick(&AtomicBool::new(true));
    assert!(s.is_leader());
    assert!(runs(store.as_ref()).is_empty(), "stop set: no job starts");
    s.shutdown();
    assert_eq!(store.current_lease(LEASE_NAME, clock.now()).unwrap(), None);
}

#[test]
fn no_job_starts_once_the_lease_is_lost() {
    let (_d, store) = store();
    let clock = FakeClock::new(at("2026-01-10T12:00:30Z"));
    let mut runner = FakeRunner::new(store.clone(), clock.clone(), 0);
    // The first job stalls past the lease TTL (in this process's eyes; the
    // keeper thread renews on real time, which hardly passes), and another
    // scheduler takes the lapsed lease meanwhile.
    runner.takes_ms = 4_000;
    let (st, c) = (store.clone(), clock.clone());
    *runner.during.lock().unwrap() = Some(Box::new(move || {
        assert!(st.acquire_lease(LEASE_NAME, "b", 3_000, c.now()).unwrap().is_some());
    }));
    let jobs = vec![
        scheduled("drift", "daily", "0 * * * * *").unwrap(),
        scheduled("cost", "learning_cycle", "0 * * * * *").unwrap(),
    ];
    let mut a = Scheduler::new(store.clone(), &runner, jobs, settings(), "a".into(), clock.clock());
    a.tick(&no_stop());
    let calls = runner.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1, "the second due job was not started: {calls:?}");
    assert!(!a.is_leader());
    assert_eq!(runs(store.as_ref()).len(), 1);
}

#[test]
fn a_triggered_job_runs_when_its_route_says_so_once_per_check_on_the_leader_only() {
    let (_d, store) = store();
    let clock = FakeClock::new(at("2026-01-10T12:00:00Z"));
    let runner = FakeRunner::new(store.clone(), clock.clone(), 0);
    runner.triggers.lock().unwrap().extend([false, true, false]);
    let mut job = scheduled("trust", "meta_learning", "0 0 2 * * *").unwrap();
    job.trigger = Some(learnloop_plugin_api::JobTrigger {
        route: "/learning/status".into(),
        field: "should_trigger_learning_cycle".into(),
    });
    // No catch-up: the cron slot of 02:00 stays missed; only the trigger runs it.
    let quiet = Settings { catch_up: false, ..settings() };
    let mut s = Scheduler::new(store.clone(), &runner, vec![job.clone()], quiet.clone(), "a".into(), clock.clock());
    let mut standby = Scheduler::new(store.clone(), &runner, vec![job], quiet, "b".into(), clock.clock());
    s.tick(&no_stop()); // check 1 (false)
    standby.tick(&no_stop());
    assert!(!standby.is_leader());
    assert_eq!(runner.trigger_checks.load(Ordering::SeqCst), 1, "only the leader asks");
    tick_until(&mut s, &clock, at("2026-01-10T12:00:09.5Z"));
    assert_eq!(runner.trigger_checks.load(Ordering::SeqCst), 1, "once per trigger_check_ms");
    assert!(runs(store.as_ref()).is_empty());
    tick_until(&mut s, &clock, at("2026-01-10T12:00:10Z")); // check 2 (true): runs now
    let r = runs(store.as_ref());
    assert_eq!(r.len(), 1);
    assert_eq!(
        (r[0].slot, r[0].attempt, r[0].status),
        (Some(at("2026-01-10T12:00:10Z").as_micros()), 1, JobStatus::Succeeded)
    );
    assert_eq!(
        runner.fences.lock().unwrap()[0].as_ref().map(|f| f.lease.as_str()),
        Some(LEASE_NAME),
        "fenced like any job"
    );
    tick_until(&mut s, &clock, at("2026-01-10T12:00:30Z")); // checks 3 and 4 (false)
    assert_eq!(runs(store.as_ref()).len(), 1, "not again while the route says no");
    assert_eq!(runner.trigger_checks.load(Ordering::SeqCst), 4);
}
