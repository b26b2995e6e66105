//! Plugin host tests.
//!
//! `learnloop_test_support` builds plugin libraries with a nested cargo,
//! makes sample records and holds the conformance suite. Here: the conformance suite for every built-in plugin,
//! statically linked and loaded from its cdylib (same snapshot), config
//! handling (enabled/disabled), and catch-up after a crash.

use std::sync::Arc;

use learnloop_config::Config;
use learnloop_plugin_host::{IngestStatus, JobRequest, Origin, PluginHost};
use learnloop_store::{Fence, SqliteOptions, Store};
use learnloop_test_support::plugin_conformance as conformance;
use learnloop_test_support::{cdylib as support, records::sample_records};

fn store(dir: &std::path::Path) -> Arc<dyn Store> {
    learnloop_test_support::store::test_store(dir, &SqliteOptions::default())
}

fn config(plugin_dir: &std::path::Path, enabled: &[&str]) -> Config {
    let mut c = Config::default();
    c.plugins.dir = plugin_dir.to_owned();
    c.plugins.enabled = enabled.iter().map(|s| s.to_string()).collect();
    c
}

/// Every built-in plugin passes the suite statically linked and as a
/// library loaded through libloading from the configured directory, with
/// identical results.
#[test]
fn static_and_dynamic_builds_behave_the_same() {
    for plugin in ["cost", "trust", "persona", "drift"] {
        let records = sample_records(plugin, 40);

        let dir = tempfile::tempdir().unwrap();
        let host = PluginHost::load(&config(&dir.path().join("none"), &[plugin]), store(dir.path()));
        assert!(host.load_errors.is_empty(), "{:?}", host.load_errors);
        assert_eq!(host.plugins()[plugin].origin, Origin::Static);
        let static_snapshot =
            conformance::check(&host, plugin, &records).unwrap_or_else(|e| panic!("{plugin} static: {e}"));

        let lib = support::build_cdylib(&format!("learnloop-plugin-{plugin}"), &["dynamic"]);
        let dir2 = tempfile::tempdir().unwrap();
        let plugins = dir2.path().join("plugins");
        let installed = support::install(&lib, &plugins, plugin);
        // The plugin directory is named in a config file, as an operator would.
        let config_file = dir2.path().join("learnloop.toml");
        std::fs::write(
            &config_file,
            format!("[plugins]\nenabled = [{plugin:?}]\ndir = {:?}\n", plugins.display().to_string()),
        )
        .unwrap();
        let loaded_config = Config::load_with_env(Some(&config_file), Vec::new()).unwrap();
        let host = PluginHost::load(&loaded_config, store(dir2.path()));
        assert!(host.load_errors.is_empty(), "{:?}", host.load_errors);
        assert_eq!(host.plugins()[plugin].origin, Origin::Dynamic { path: installed });
        let dynamic_snapshot =
            conformance::check(&host, plugin, &records).unwrap_or_else(|e| panic!("{plugin} dynamic: {e}"));

        // Job reports embed nothing time-dependent; compare everything.
        assert_eq!(static_snapshot, dynamic_snapshot, "{plugin}: static and dynamic builds differ");
    }
}

#[test]
fn disabled_plugins_have_no_routes_jobs_or_events() {
    let dir = tempfile::tempdir().unwrap();
    let host = PluginHost::load(&config(&dir.path().join("p"), &["drift"]), store(dir.path()));
    assert_eq!(host.plugins().keys().collect::<Vec<_>>(), ["drift"]);
    let records = sample_records("cost", 2);
    let statuses = host.ingest(records, learnloop_core::Timestamp::now()).unwrap();
    match &statuses[0] {
        IngestStatus::Rejected { field, message } => {
            assert_eq!(field, "plugin");
            assert!(message.contains("\"cost\" is disabled"), "{message}");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    let err = host.run_job("cost", "learning_cycle", "test", None, 1).unwrap_err().to_string();
    assert!(err.contains("disabled"), "{err}");
    let ws = learnloop_core::WorkspaceId::parse("", "alpha").unwrap();
    let err = host.handle("cost", &ws, "GET", "/summary", Default::default(), serde_json::Value::Null).unwrap_err();
    assert!(err.to_string().contains("disabled"), "{err}");
    // Unknown plugins are named as such.
    let err = host.validate(&sample_records("horoscope", 1)[0]).unwrap_err();
    assert!(err.message.contains("unknown plugin \"horoscope\""), "{err}");
}

#[test]
fn plugin_validation_rejects_before_storing() {
    let dir = tempfile::tempdir().unwrap();
    let host = PluginHost::load(&config(&dir.path().join("p"), &["drift"]), store(dir.path()));
    let bad = learnloop_core::parse_json_record(
        r#"{"type":"prediction","id":"x","workspace":"w","plugin":"drift","subject":"m","kind":"regression"}"#,
        &Default::default(),
    )
    .unwrap();
    let statuses = host.ingest(vec![bad], learnloop_core::Timestamp::now()).unwrap();
    assert!(matches!(&statuses[0], IngestStatus::Rejected { field, .. } if field == "value"), "{statuses:?}");
    assert!(host.store().counts(None).unwrap().is_empty(), "nothing stored");
}

#[test]
fn config_errors_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&dir.path().join("p"), &["drift"]);
    let mut section = toml::Table::new();
    section.insert("p_vaule".into(), toml::Value::Float(0.01));
    c.plugin_sections.insert("drift".into(), section);
    let host = PluginHost::load(&c, store(dir.path()));
    let err = host.load_errors[0].to_string();
    assert!(err.contains("[drift] p_vaule") || err.contains("p_vaule"), "{err}");
    assert!(host.plugins().is_empty());
    // As a config error: file, key, section and reason, for the binaries to refuse to start with.
    let (_, sources) = Config::load_with_sources(None, Vec::<(String, String)>::new()).expect("defaults load");
    let errors = host.config_errors(&sources);
    assert_eq!(errors.len(), 1);
    let text = errors[0].to_string();
    for fragment in ["built-in defaults", "`drift.p_vaule`", "[drift]", "unknown field \"p_vaule\""] {
        assert!(text.contains(fragment), "{fragment:?} missing: {text}");
    }
    assert!(host.require_all_loaded(&sources).is_err());
    // Checked without a store, every bad key is reported.
    c.plugin_sections.get_mut("drift").unwrap().insert("min_smaples".into(), toml::Value::Integer(3));
    let check = learnloop_plugin_host::check_plugins(&c);
    let keys: Vec<String> = check
        .errors
        .iter()
        .map(|(_, e)| match e {
            learnloop_plugin_host::LoadError::Config { key, .. } => key.clone(),
            other => panic!("{other}"),
        })
        .collect();
    assert_eq!(keys, ["min_smaples", "p_vaule"]);
}

/// Events stored without their online update (a crash in between) are
/// absorbed by the next catch-up, exactly once.
#[test]
fn catch_up_after_a_crash_between_store_and_update() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let records = sample_records("trust", 20);
    // Store directly, as if the process died before the online update.
    s.append(&records, learnloop_store::AppendMode::AllOrNothing, learnloop_core::Timestamp::now()).unwrap();
    let host = PluginHost::load(&config(&dir.path().join("p"), &["trust"]), s.clone());
    assert!(conformance::state_of(&host, "trust").unwrap().values().all(|d| d.is_empty()));
    let n = host.catch_up_all().unwrap();
    assert_eq!(n as usize, records.len());
    let after = conformance::state_of(&host, "trust").unwrap();
    assert_eq!(host.catch_up_all().unwrap(), 0, "nothing is absorbed twice");
    assert_eq!(conformance::state_of(&host, "trust").unwrap(), after);
    // Replay gives the same state.
    host.replay("trust", None).unwrap();
    assert_eq!(conformance::state_of(&host, "trust").unwrap(), after);
}

/// `catch_up_with` and `replay_with` report how far they have got after
/// every committed batch (10,000 events), ending at the total absorbed.
#[test]
fn catch_up_and_replay_report_progress() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let records = sample_records("trust", 6_000);
    s.append(&records, learnloop_store::AppendMode::AllOrNothing, learnloop_core::Timestamp::now()).unwrap();
    let host = PluginHost::load(&config(&dir.path().join("p"), &["trust"]), s.clone());
    let alpha = learnloop_core::WorkspaceId::parse("workspace", "alpha").unwrap();
    let mut seen = Vec::new();
    let n = host
        .catch_up_with("trust", &alpha, &mut |p| {
            assert_eq!((p.plugin, p.workspace.as_str()), ("trust", "alpha"));
            seen.push(p.absorbed);
        })
        .unwrap();
    assert!(n > 10_000, "{n} events, more than one batch");
    assert!(seen.len() >= 2 && seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    assert_eq!(seen.last(), Some(&n));
    let mut replayed: Vec<(String, u64)> = Vec::new();
    let done = host.replay_with("trust", None, &mut |p| replayed.push((p.workspace.to_string(), p.absorbed))).unwrap();
    for (ws, total) in &done {
        assert_eq!(replayed.iter().filter(|(w, _)| w == ws).map(|(_, a)| *a).max(), Some(*total), "{replayed:?}");
    }
}

/// A job run by a scheduler that has lost its lease commits nothing: its
/// fence is stale, the run fails saying so, and the state is untouched.
#[test]
fn a_job_fenced_by_a_lost_lease_commits_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let host = PluginHost::load(&config(&dir.path().join("p"), &["trust"]), s.clone());
    host.ingest(sample_records("trust", 40), learnloop_core::Timestamp::now()).unwrap();
    let before = conformance::state_of(&host, "trust").unwrap();
    let t = |ms: i64| learnloop_core::Timestamp::from_micros(1_800_000_000_000_000 + ms * 1000).unwrap();
    let a = s.acquire_lease("scheduler", "a", 1_000, t(0)).unwrap().unwrap();
    let b = s.acquire_lease("scheduler", "b", 1_000, t(5_000)).unwrap().expect("a's lease lapsed");
    let (stale, current) = (Fence::from(&a), Fence::from(&b));
    let fenced = |runner, lease| JobRequest {
        plugin: "trust",
        job: "meta_learning",
        runner,
        slot: None,
        attempt: 1,
        fence: Some(lease),
    };
    let run = host.run_job_request(fenced("a", &stale)).unwrap();
    assert_eq!(run.status, learnloop_core::JobStatus::Failed);
    assert!(run.error.as_deref().unwrap_or("").contains("moved on"), "{:?}", run.error);
    assert_eq!(conformance::state_of(&host, "trust").unwrap(), before, "nothing of the job landed");
    let run = host.run_job_request(fenced("b", &current)).unwrap();
    assert_eq!(run.status, learnloop_core::JobStatus::Succeeded, "{:?}", run.error);
    assert_ne!(conformance::state_of(&host, "trust").unwrap(), before, "the current holder's job commits");
}
