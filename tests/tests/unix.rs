//! Pipes, signals and exits behave like Unix tools (issue #17, section 3).
//!
//! mod list: every binary's `--help` and every CLI command with its stdout
//! read by a reader that goes away (`| head -c1`, and one that closes before
//! reading anything, so the very first write fails) exits 0 with nothing on
//! stderr; a scheduler whose stderr pipe is closed keeps leading and, on
//! SIGTERM, releases its lease so that a second scheduler leads at once,
//! well before the lease would have expired; a second signal releases the
//! lease too.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use learnloop_e2e::{Child, Scratch, bin, terminate};

/// Runs `cmd` with stdout piped into a reader that reads at most `bytes`
/// bytes and then closes the pipe; returns the exit status and stderr.
fn into_closing_reader(mut cmd: Command, bytes: usize) -> (Option<i32>, String) {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let mut stdout = child.stdout.take().expect("piped");
    if bytes > 0 {
        let mut buf = vec![0u8; bytes];
        let _ = stdout.read(&mut buf);
    }
    drop(stdout);
    let out = child.wait_with_output().expect("wait");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Asserts that the command ends quietly with status 0 for both readers:
/// nothing on stderr but the lines it writes there by design (starting
/// with one of `own_stderr`).
fn quiet_on_closed_stdout(what: &str, own_stderr: &[&str], make: impl Fn() -> Command) {
    for bytes in [0, 1] {
        let (code, stderr) = into_closing_reader(make(), bytes);
        assert_eq!(code, Some(0), "{what} (reader closes after {bytes} bytes) exited {code:?}; stderr: {stderr}");
        let unexpected: Vec<&str> = stderr.lines().filter(|l| !own_stderr.iter().any(|p| l.starts_with(p))).collect();
        assert!(unexpected.is_empty(), "{what} (reader closes after {bytes} bytes) wrote to stderr: {stderr}");
    }
}

#[test]
fn help_of_every_binary_into_a_closed_pipe_exits_0() {
    for name in ["learnloop", "learnloop-api", "learnloop-scheduler"] {
        for flag in ["--help", "-h", "--version"] {
            quiet_on_closed_stdout(&format!("{name} {flag}"), &[], || {
                let mut c = Command::new(bin(name));
                c.arg(flag);
                c
            });
        }
    }
}

#[test]
fn every_cli_command_into_a_closed_pipe_exits_0_quietly() {
    let s = Scratch::new();
    let events = s.path("events.jsonl");
    let out = s.run(&["sample", "-o", events.to_str().unwrap(), "--per-plugin", "40"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = s.run(&["ingest", events.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = s.run(&["jobs", "run", "cost", "learning_cycle"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let more = s.path("more.jsonl");
    // Another workspace: the quickstart below writes the same sample ids in
    // `default`, and a conflicting line would make this ingest exit 2.
    let out =
        s.run(&["sample", "-o", more.to_str().unwrap(), "--per-plugin", "5", "--seed", "7", "--workspace", "more"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (events, more) = (events.to_str().unwrap().to_string(), more.to_str().unwrap().to_string());

    // Every command, with arguments that make it succeed and print something.
    // `keys create` tells on stderr that the key on stdout is shown only once.
    let own_stderr: &[&str] = &["key "];
    let commands: Vec<Vec<&str>> = vec![
        vec!["init"],
        vec!["ingest", &events],
        vec!["export"],
        vec!["export", "--type", "outcome"],
        vec!["stats"],
        vec!["sample", "--per-plugin", "50"],
        vec!["plugins", "list"],
        vec!["replay", "--plugin", "trust"],
        vec!["keys", "create", "--role", "admin"],
        vec!["keys", "list"],
        vec!["jobs", "list"],
        vec!["jobs", "run", "drift", "daily"],
        vec!["jobs", "history"],
        vec!["improvements", "list"],
        vec!["improvements", "applied"],
        vec!["improvements", "process"],
        vec!["call", "trust", "GET", "/agents"],
        vec!["config", "check"],
        vec!["config", "show"],
        vec!["reindex"],
        vec!["quickstart"],
        vec!["ingest", &more],
    ];
    for args in &commands {
        for json in [false, true] {
            let what = format!("learnloop {}{}", if json { "--json " } else { "" }, args.join(" "));
            quiet_on_closed_stdout(&what, if args[0] == "keys" { own_stderr } else { &[] }, || {
                let mut c = s.cmd(&[]);
                if json {
                    c.arg("--json");
                }
                c.args(args);
                c
            });
        }
    }
}

/// A scheduler config for `s`: a short lease so the test can tell "released
/// at once" from "expired", a job every 2 s.
fn scheduler_config(s: &Scratch, ttl_ms: u64) -> PathBuf {
    s.write(
        "sched.toml",
        &format!(
            "data_dir = {:?}\n[scheduler]\nlease_ttl_ms = {ttl_ms}\ntick_ms = 500\n\
             [scheduler.jobs.\"drift.daily\"]\nschedule = \"*/2 * * * * *\"\n",
            s.data_dir().display().to_string()
        ),
    )
}

/// Starts a scheduler whose stderr is a pipe nobody reads: closed at once.
fn start_scheduler_with_closed_stderr(s: &Scratch, config: &Path, holder: &str) -> Child {
    let mut cmd = Command::new(bin("learnloop-scheduler"));
    cmd.current_dir(s.dir.path()).env_remove("LEARNLOOP_CONFIG");
    let mut child = s
        .store_env(&mut cmd)
        .args(["--config", config.to_str().unwrap(), "--holder", holder])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    Child(child)
}

/// The holder of the scheduler lease, if it has not expired.
fn leader(s: &Scratch) -> Option<String> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as i64;
    s.sql("SELECT holder, expires_at FROM leases WHERE name = 'scheduler'")
        .into_iter()
        .find(|r| r[1].as_i64().unwrap_or(0) > now)
        .and_then(|r| r[0].as_str().map(str::to_string))
}

fn wait_for<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_exit(child: &mut Child, limit: Duration) -> Option<i32> {
    let end = Instant::now() + limit;
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            return status.code();
        }
        assert!(Instant::now() < end, "the scheduler did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn successful_runs_by(s: &Scratch, holder: &str) -> usize {
    s.sql(&format!("SELECT count(*) FROM job_runs WHERE runner = '{holder}' AND status = 'succeeded'"))[0][0]
        .as_i64()
        .unwrap_or(0) as usize
}

#[test]
fn scheduler_with_a_closed_stderr_keeps_working_and_releases_its_lease_on_sigterm() {
    let s = Scratch::new();
    let events = s.path("events.jsonl");
    assert!(s.run(&["sample", "-o", events.to_str().unwrap(), "--per-plugin", "20"]).status.success());
    assert!(s.run(&["ingest", events.to_str().unwrap()]).status.success());
    // A lease far longer than the test waits: only a release lets b lead.
    let config = scheduler_config(&s, 60_000);

    let mut a = start_scheduler_with_closed_stderr(&s, &config, "a");
    wait_for(Duration::from_secs(20), "a to lead", || (leader(&s).as_deref() == Some("a")).then_some(()));
    // Every run logs lines to the closed stderr; a keeps going regardless.
    wait_for(Duration::from_secs(30), "two runs by a", || (successful_runs_by(&s, "a") >= 2).then_some(()));
    assert!(a.0.try_wait().unwrap().is_none(), "a died writing to a closed stderr");

    let mut b = start_scheduler_with_closed_stderr(&s, &config, "b");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(leader(&s).as_deref(), Some("a"), "b must stand by while a leads");
    terminate(&a.0);
    assert_eq!(wait_exit(&mut a, Duration::from_secs(30)), Some(0), "SIGTERM exits 0");
    let started = Instant::now();
    wait_for(Duration::from_secs(10), "b to lead", || (leader(&s).as_deref() == Some("b")).then_some(()));
    assert!(started.elapsed() < Duration::from_secs(10), "b led only after {:?}", started.elapsed());
    terminate(&b.0);
    assert_eq!(wait_exit(&mut b, Duration::from_secs(30)), Some(0));
    assert_eq!(leader(&s), None, "b released the lease too");
}

#[test]
fn a_second_signal_exits_at_once_and_still_releases_the_lease() {
    let s = Scratch::new();
    // The store exists before anyone looks at its leases.
    assert!(s.run(&["stats"]).status.success());
    let config = scheduler_config(&s, 60_000);
    let mut a = start_scheduler_with_closed_stderr(&s, &config, "a");
    wait_for(Duration::from_secs(20), "a to lead", || (leader(&s).as_deref() == Some("a")).then_some(()));
    // Two SIGINTs at once (the second arrives while the first is still
    // being acted on): the immediate exit must not leave the lease held.
    let pid = a.0.id().to_string();
    let _ = Command::new("kill").args(["-INT", &pid]).status();
    let _ = Command::new("kill").args(["-INT", &pid]).status();
    let code = wait_exit(&mut a, Duration::from_secs(30));
    assert!(code == Some(0) || code == Some(1), "exit status {code:?}");
    assert_eq!(leader(&s), None, "the lease was released");
}
