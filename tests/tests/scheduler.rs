//! End-to-end tests of the real `learnloop-scheduler` binary.
//!
//! mod list: a job on a 2-second schedule runs and is recorded, SIGTERM
//! exits 0 and releases the lease; two schedulers on one data directory
//! have exactly one leader, and after `kill -9` of the leader the other takes
//! over within the lease TTL (+ a tick) without any slot running twice; the
//! API and the scheduler side by side (ingest over HTTP, the API shows the
//! scheduler's run).
//!
//! What the scheduler did is read straight from the store (`Scratch::sql`:
//! the SQLite file, WAL, readers never block the writers; or the PostgreSQL
//! schema), so these tests depend on nothing but the two binaries and the
//! schema. Every child is killed on drop, and
//! every wait has a deadline.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use learnloop_e2e::{Child, Scratch, bin, http, terminate};
use serde_json::Value;

const TTL_MS: u64 = 3_000;
const TICK_MS: u64 = 500;

/// Writes a scheduler config for `s`: short lease, `drift.daily` every 2 s.
fn write_config(s: &Scratch) -> PathBuf {
    s.write(
        "sched.toml",
        &format!(
            "data_dir = {:?}\n\
             [scheduler]\nlease_ttl_ms = {TTL_MS}\ntick_ms = {TICK_MS}\nretry_backoff_ms = 1000\n\
             [scheduler.jobs.\"drift.daily\"]\nschedule = \"*/2 * * * * *\"\n",
            s.data_dir().display().to_string()
        ),
    )
}

/// A few events for every plugin, so the jobs have a workspace to work on.
fn ingest_sample(s: &Scratch) {
    let file = s.path("events.jsonl");
    let out = s.run(&["sample", "-o", file.to_str().unwrap(), "--per-plugin", "20"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = s.run(&["ingest", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Starts a scheduler with `holder` as its id; its stderr goes to `<holder>.log`.
fn start_scheduler(s: &Scratch, config: &Path, holder: &str) -> Child {
    let log = File::create(s.path(&format!("{holder}.log"))).unwrap();
    let mut cmd = Command::new(bin("learnloop-scheduler"));
    cmd.current_dir(s.dir.path()).env_remove("LEARNLOOP_CONFIG");
    let child = s
        .store_env(&mut cmd)
        .args(["--config", config.to_str().unwrap(), "--holder", holder])
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    Child(child)
}

fn log_of(s: &Scratch, holder: &str) -> String {
    std::fs::read_to_string(s.path(&format!("{holder}.log"))).unwrap_or_default()
}

#[derive(Debug, Clone)]
struct Run {
    plugin: String,
    job: String,
    slot: Option<i64>,
    attempt: i64,
    runner: String,
    status: String,
    started_at: i64,
    report: Option<Value>,
}

impl Run {
    fn key(&self) -> String {
        format!("{}.{}", self.plugin, self.job)
    }
}

/// Every recorded job run, oldest first.
fn runs(s: &Scratch) -> Vec<Run> {
    s.sql("SELECT plugin, job, slot, attempt, runner, status, started_at, report FROM job_runs ORDER BY id")
        .into_iter()
        .map(|r| Run {
            plugin: r[0].as_str().unwrap().to_string(),
            job: r[1].as_str().unwrap().to_string(),
            slot: r[2].as_i64(),
            attempt: r[3].as_i64().unwrap(),
            runner: r[4].as_str().unwrap().to_string(),
            status: r[5].as_str().unwrap().to_string(),
            started_at: r[6].as_i64().unwrap(),
            report: r[7].as_str().map(|t| serde_json::from_str(t).unwrap()),
        })
        .collect()
}

/// The scheduler lease row: (holder, token, expires_at micros), held or not.
fn lease(s: &Scratch) -> Option<(String, i64, i64)> {
    let rows = s.sql("SELECT holder, token, expires_at FROM leases WHERE name = 'scheduler'");
    let r = rows.first()?;
    Some((r[0].as_str()?.to_string(), r[1].as_i64()?, r[2].as_i64()?))
}

/// The current leader, if the lease is held now.
fn leader(s: &Scratch) -> Option<String> {
    lease(s).filter(|(_, _, exp)| *exp > now_micros()).map(|(h, _, _)| h)
}

fn now_micros() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_micros() as i64
}

/// Polls `f` every 100 ms until it returns Some, or panics after `limit`.
fn wait_for<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits for a child to exit after SIGTERM; its exit code.
fn stop(child: &mut Child) -> Option<i32> {
    terminate(&child.0);
    let status =
        wait_for(Duration::from_secs(15), "the scheduler to exit after SIGTERM", || child.0.try_wait().unwrap());
    status.code()
}

fn assert_no_slot_twice(all: &[Run]) {
    let mut seen = std::collections::HashSet::new();
    for r in all.iter().filter(|r| r.slot.is_some()) {
        assert!(
            seen.insert((r.key(), r.slot, r.attempt)),
            "{} slot {:?} attempt {} recorded twice: {all:#?}",
            r.key(),
            r.slot,
            r.attempt
        );
    }
}

fn drift_runs(all: &[Run]) -> Vec<&Run> {
    all.iter().filter(|r| r.key() == "drift.daily" && r.slot.is_some()).collect()
}

#[test]
fn scheduler_runs_a_job_on_a_short_schedule_and_stops_cleanly_on_sigterm() {
    let s = Scratch::new();
    ingest_sample(&s);
    let config = write_config(&s);
    let mut sched = start_scheduler(&s, &config, "e2e-one");

    // Two consecutive 2-second slots, both succeeded, each with the
    // default workspace's report.
    let done = wait_for(Duration::from_secs(20), "two succeeded drift.daily runs", || {
        let all = runs(&s);
        let ok: Vec<Run> = drift_runs(&all).into_iter().filter(|r| r.status == "succeeded").cloned().collect();
        (ok.len() >= 2).then_some(ok)
    });
    for r in &done {
        assert_eq!(r.runner, "e2e-one");
        assert_eq!(r.attempt, 1);
        assert_eq!(r.slot.unwrap() % 2_000_000, 0, "slots are even seconds: {r:?}");
        let report = r.report.as_ref().expect("a report");
        assert!(report["workspaces"]["default"].is_object(), "the job worked on the ingested workspace: {report}");
    }
    assert!(done[1].slot > done[0].slot);
    assert_eq!(leader(&s).as_deref(), Some("e2e-one"));

    assert_eq!(stop(&mut sched), Some(0), "SIGTERM exits 0; log:\n{}", log_of(&s, "e2e-one"));
    let (holder, _, expires) = lease(&s).expect("lease row");
    assert_eq!(holder, "e2e-one");
    assert!(expires <= now_micros(), "the lease was released, not left to expire");
    assert_eq!(leader(&s), None);

    let all = runs(&s);
    assert_no_slot_twice(&all);
    // Catch-up: the daily jobs' latest slot ran once at start-up, not once per missed day.
    for job in ["cost.learning_cycle", "persona.preference_update", "trust.meta_learning"] {
        let n = all.iter().filter(|r| r.key() == job).count();
        assert_eq!(n, 1, "{job}: {all:#?}");
    }
    let log = log_of(&s, "e2e-one");
    for line in ["became leader as e2e-one", "ran drift.daily slot", ": succeeded in", "released lease", "stopped"] {
        assert!(log.contains(line), "log lacks {line:?}:\n{log}");
    }

    // The CLI shows the same: history newest first, and the effective schedule.
    let (code, v) = s.json(&["jobs", "history", "--plugin", "drift", "--job", "daily", "--limit", "100"]);
    assert_eq!(code, 0, "{v}");
    let listed = v["runs"].as_array().unwrap();
    assert_eq!(listed.len(), drift_runs(&all).len(), "{v}");
    assert!(listed.iter().all(|r| r["runner"] == "e2e-one" && r["plugin"] == "drift"), "{v}");
    let slots: Vec<i64> = listed.iter().map(|r| r["slot"].as_i64().unwrap()).collect();
    assert!(slots.windows(2).all(|w| w[0] > w[1]), "newest first: {slots:?}");
    let (code, v) = s.json(&["--config", config.to_str().unwrap(), "jobs", "list"]);
    assert_eq!(code, 0, "{v}");
    let daily = v["jobs"].as_array().unwrap().iter().find(|j| j["plugin"] == "drift" && j["job"] == "daily").unwrap();
    assert_eq!(daily["schedule"], "*/2 * * * * *", "{daily}");
    assert_eq!(daily["overridden"], true);
    assert_eq!(daily["last_run"]["status"], "succeeded", "{daily}");
}

#[test]
fn two_schedulers_one_leader_and_failover_after_kill_9() {
    let s = Scratch::new();
    ingest_sample(&s);
    let config = write_config(&s);

    let mut a = start_scheduler(&s, &config, "e2e-a");
    wait_for(Duration::from_secs(15), "e2e-a to lead", || (leader(&s).as_deref() == Some("e2e-a")).then_some(()));
    let mut b = start_scheduler(&s, &config, "e2e-b");
    wait_for(Duration::from_secs(15), "e2e-b to stand by", || {
        log_of(&s, "e2e-b").contains("standing by: e2e-a leads").then_some(())
    });

    // Overlap: both run for a few slots; only the leader records runs.
    let before = drift_runs(&runs(&s)).len();
    wait_for(Duration::from_secs(15), "two more slots during the overlap", || {
        (drift_runs(&runs(&s)).len() >= before + 2).then_some(())
    });
    let overlap = runs(&s);
    assert!(overlap.iter().all(|r| r.runner == "e2e-a"), "only the leader runs jobs: {overlap:#?}");
    assert_eq!(leader(&s).as_deref(), Some("e2e-a"));
    assert!(!log_of(&s, "e2e-b").contains("became leader"), "{}", log_of(&s, "e2e-b"));

    // kill -9 the leader.
    a.0.kill().unwrap();
    a.0.wait().unwrap();
    let killed = Instant::now();
    let killed_at = now_micros();
    let a_last_slot = drift_runs(&runs(&s)).iter().filter_map(|r| r.slot).max().unwrap();

    wait_for(Duration::from_secs(15), "e2e-b to take over", || (leader(&s).as_deref() == Some("e2e-b")).then_some(()));
    let took = killed.elapsed();
    // The lease lapses at most TTL after the leader's last renewal, and the
    // standby looks every tick; allow scheduling slack on a busy machine.
    let bound = Duration::from_millis(TTL_MS + TICK_MS + 2_000);
    assert!(took <= bound, "take-over took {took:?}, more than {bound:?}");

    // The new leader runs the next slot.
    let b_run = wait_for(Duration::from_secs(10), "a drift.daily run by e2e-b", || {
        drift_runs(&runs(&s)).into_iter().find(|r| r.runner == "e2e-b" && r.status == "succeeded").cloned()
    });
    assert!(b_run.slot.unwrap() > a_last_slot, "{b_run:?} after slot {a_last_slot}");

    let all = runs(&s);
    assert_no_slot_twice(&all);
    for r in &all {
        if r.started_at < killed_at {
            assert_eq!(r.runner, "e2e-a", "nothing but the leader ran before the kill: {r:?}");
        } else {
            assert_eq!(r.runner, "e2e-b", "nothing but the new leader ran after it: {r:?}");
        }
    }
    let (_, token, _) = lease(&s).unwrap();
    assert!(token >= 2, "the lease changed hands with a new fencing token");
    assert_eq!(stop(&mut b), Some(0), "log:\n{}", log_of(&s, "e2e-b"));
    assert_eq!(leader(&s), None);
}

/// The issue's acceptance test: both real binaries on one data directory,
/// ingest over HTTP, the scheduler runs a job on a short schedule, and the
/// API shows the run.
#[test]
fn api_shows_the_run_of_a_job_the_scheduler_ran() {
    let s = Scratch::new();
    let (mut api, addr) =
        learnloop_e2e::start_api(&s, &["--data-dir", s.data_dir().to_str().unwrap(), "--bind", "127.0.0.1:0"]);
    let admin = std::fs::read_to_string(s.data_dir().join("admin.key")).unwrap().trim().to_string();

    for i in 0..5 {
        let body = format!(r#"{{"id":"p{i}","plugin":"drift","subject":"m","kind":"regression","value":{i}}}"#);
        let (st, b) = http(&addr, "POST", "/api/v1/predictions?workspace=default", Some(&admin), &body);
        assert_eq!(st, 201, "{b}");
    }

    let config = write_config(&s);
    let mut sched = start_scheduler(&s, &config, "e2e-with-api");
    let run = wait_for(Duration::from_secs(20), "the API to list a scheduled drift.daily run", || {
        let (st, body) = http(&addr, "GET", "/api/v1/jobs/runs?plugin=drift&job=daily", Some(&admin), "");
        assert_eq!(st, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        v["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["runner"] == "e2e-with-api" && r["status"] == "succeeded" && r["slot"].is_i64())
            .cloned()
    });
    assert!(run["report"]["workspaces"]["default"].is_object(), "the run saw the events ingested over HTTP: {run}");

    // `learnloop jobs run --server` runs it through the API ...
    let server = format!("http://{addr}");
    let (code, v) = s.json(&["jobs", "run", "drift", "daily", "--server", &server, "--api-key", &admin]);
    assert_eq!(code, 0, "{v}");
    assert_eq!((v["runner"].as_str(), v["status"].as_str()), (Some("api"), Some("succeeded")), "{v}");
    // ... and reports the server's problem document when refused.
    let out = s.run(&["jobs", "run", "drift", "daily", "--server", &server, "--api-key", "wrong"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("server answered 401"), "{err}");
    let out = s.run(&["jobs", "run", "drift", "nope", "--server", &server, "--api-key", &admin]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("server answered 4") && err.contains("nope"), "{err}");
    assert_eq!(stop(&mut sched), Some(0), "log:\n{}", log_of(&s, "e2e-with-api"));
    terminate(&api.0);
    wait_for(Duration::from_secs(15), "the API to exit", || api.0.try_wait().unwrap());
}
