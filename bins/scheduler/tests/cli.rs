//! Tests of the `learnloop-scheduler` binary itself: help, start-up errors,
//! `--once`. Using `CARGO_BIN_EXE_learnloop-scheduler` here also makes
//! `cargo test --workspace` build the binary that the end-to-end tests in
//! `tests/tests/scheduler.rs` spawn.

use std::path::Path;
use std::process::{Command, Output};

use learnloop_config::Config;
use learnloop_store::JobRunQuery;

fn scheduler(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_learnloop-scheduler"))
        .current_dir(dir)
        .env_remove("LEARNLOOP_CONFIG")
        .args(args)
        .output()
        .unwrap()
}

fn write_config(dir: &Path, extra: &str) -> String {
    let path = dir.join("learnloop.toml");
    let text = format!("data_dir = {:?}\n{extra}", dir.join("data").display().to_string());
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn help_documents_schedules_leadership_and_signals() {
    let dir = tempfile::tempdir().unwrap();
    let out = scheduler(dir.path(), &["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in ["--config", "--data-dir", "--once", "--holder", "[scheduler.jobs.", "lease", "SIGTERM", "catch_up"] {
        assert!(text.contains(needle), "--help lacks {needle}: {text}");
    }
}

#[test]
fn an_invalid_cron_expression_is_a_start_up_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "[scheduler.jobs.\"drift.daily\"]\nschedule = \"every two seconds\"\n");
    let out = scheduler(dir.path(), &["--config", &config, "--once"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("key `scheduler.jobs.\"drift.daily\".schedule`"), "{err}");
    assert!(err.contains("learnloop.toml"), "names the file: {err}");
    let typo = write_config(dir.path(), "[scheduler.jobs.\"drift.dialy\"]\nenabled = false\n");
    let out = scheduler(dir.path(), &["--config", &typo, "--once"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no job \"dialy\""));
}

#[test]
fn once_runs_each_due_slot_once_and_releases_the_lease() {
    let dir = tempfile::tempdir().unwrap();
    let config_path = write_config(
        dir.path(),
        "[scheduler]\ncatch_up = false\n[scheduler.jobs.\"cost.learning_cycle\"]\nenabled = false\n",
    );
    let out = scheduler(dir.path(), &["--config", &config_path, "--once", "--holder", "cron-1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let config = Config::load(Some(Path::new(&config_path))).unwrap();
    let store = learnloop_services::open_store(&config).unwrap();
    let runs = store.job_runs(&JobRunQuery::default()).unwrap();
    let mut jobs: Vec<String> = runs.iter().map(|r| format!("{}.{}", r.plugin, r.job)).collect();
    jobs.sort();
    // Expected: every enabled job of the loaded plugins, whatever jobs the
    // plugins declare today.
    let host = learnloop_plugin_host::PluginHost::load(&learnloop_plugins::registry(), &config, store.clone());
    let mut expected: Vec<String> = learnloop_scheduler::effective_jobs(&config, &host)
        .into_iter()
        .filter(|j| j.enabled)
        .map(|j| format!("{}.{}", j.plugin, j.job))
        .collect();
    expected.sort();
    assert!(!expected.iter().any(|j| j == "cost.learning_cycle"), "disabled in the config");
    assert!(expected.len() >= 3, "{expected:?}");
    assert_eq!(jobs, expected, "each enabled job's latest due slot, once; the disabled job not at all");
    assert!(runs.iter().all(|r| r.runner == "cron-1" && r.slot.is_some() && r.attempt == 1));
    assert_eq!(store.current_lease("scheduler", learnloop_core::Timestamp::now()).unwrap(), None);
    // Again: those slots have runs, so nothing is due (the daily slots have
    // not moved on in the seconds between the two calls).
    let out = scheduler(dir.path(), &["--config", &config_path, "--once", "--holder", "cron-2"]);
    assert!(out.status.success());
    assert_eq!(store.job_runs(&JobRunQuery::default()).unwrap().len(), expected.len());
}
