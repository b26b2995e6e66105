//! Misbehaving plugins: each fixture must be refused or survived with a
//! clear error, and the host (and the other plugins) must carry on.
//!
//! `learnloop_test_support::cdylib` builds the fixture libraries. The panic test sets
//! an environment variable the fixture reads, so it runs its cases in one
//! test, in sequence.

// The panicky fixture reads where to panic from an environment variable
// (it must be able to panic before any config reaches it, in `create`),
// and setting one is `unsafe` since Rust 2024 (another thread may read the
// environment at the same time). Only this test binary's own threads run.
#![allow(unsafe_code)]

use std::sync::Arc;

use learnloop_config::Config;
use learnloop_plugin_host::{HostError, LoadError, PluginHost, load_library};
use learnloop_store::{SqliteOptions, Store};
use learnloop_test_support::cdylib as support;
use learnloop_test_support::records::sample_records;
use serde_json::Value;

fn store(dir: &std::path::Path) -> Arc<dyn Store> {
    learnloop_test_support::store::test_store(dir, &SqliteOptions::default())
}

#[test]
fn wrong_abi_version_is_refused_naming_both_versions_and_others_keep_working() {
    let lib = support::build_cdylib("learnloop-fixture-wrong-abi", &[]);
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    let path = support::install(&lib, &plugins, "acme");
    let mut config = Config::default();
    config.plugins.dir = plugins.clone();
    config.plugins.enabled = vec!["acme".into(), "drift".into()];
    let host = PluginHost::load(&config, store(dir.path()));
    assert_eq!(host.load_errors.len(), 1);
    let e = &host.load_errors[0];
    assert!(matches!(e, LoadError::AbiMismatch { found: 999, expected: 1, .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains(&path.display().to_string()) && msg.contains("999") && msg.contains("version 1"), "{msg}");
    assert!(host.plugins().contains_key("drift"), "the other plugin still loads");
    let err = host.validate(&sample_records("acme", 1)[0]).unwrap_err();
    assert!(err.message.contains("failed to load"), "{err}");
}

#[test]
fn missing_entry_symbol_is_refused() {
    let lib = support::build_cdylib("learnloop-fixture-no-entry", &[]);
    let err = load_library(&lib, &Value::Null).err().expect("refused");
    assert!(matches!(err, LoadError::MissingSymbol { symbol: "learnloop_plugin_create", .. }), "{err:?}");
    assert!(err.to_string().contains("dynamic"), "{err}");
    // A file that is not a library at all.
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.so");
    std::fs::write(&junk, b"not an ELF file").unwrap();
    let err = load_library(&junk, &Value::Null).err().expect("refused");
    assert!(matches!(err, LoadError::Open { .. }) && err.to_string().contains("junk.so"), "{err}");
}

#[test]
fn panics_in_every_entry_point_come_back_as_errors() {
    let lib = support::build_cdylib("learnloop-fixture-panicky", &[]);
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let record = sample_records("panicky", 1).remove(0);
    let ws = record.workspace().clone();

    // Panics while loading: refused with the panic named, nothing loaded.
    for point in ["create", "manifest", "configure"] {
        unsafe { std::env::set_var("LEARNLOOP_FIXTURE_PANIC_IN", point) };
        let err = load_library(&lib, &Value::Null).err().unwrap_or_else(|| panic!("{point}: loaded"));
        let msg = err.to_string();
        assert!(msg.contains("panic"), "{point}: {msg}");
    }
    // A panic in configure is a refused section, naming the plugin's section.
    unsafe { std::env::set_var("LEARNLOOP_FIXTURE_PANIC_IN", "configure") };
    let err = load_library(&lib, &Value::Null).err().unwrap();
    assert!(matches!(&err, LoadError::Config { plugin, .. } if plugin == "panicky"), "{err:?}");

    // Panics at run time: an error for that call; the host carries on.
    let loaded = |p: &str| {
        unsafe { std::env::set_var("LEARNLOOP_FIXTURE_PANIC_IN", p) };
        load_library(&lib, &Value::Null).unwrap()
    };
    let host = PluginHost::with_plugins(s.clone(), vec![loaded("validate")]);
    let err = host.validate(&record).unwrap_err();
    assert!(err.message.contains("fixture panics in validate"), "{err}");
    // The record was not invalid: the plugin is unavailable (503 in the API).
    let err = host.validate_record(&record).unwrap_err();
    assert!(
        matches!(&err, HostError::Unavailable { plugin, reason } if plugin == "panicky" && reason.contains("fixture panics in validate")),
        "{err:?}"
    );

    let host = PluginHost::with_plugins(s.clone(), vec![loaded("on_events")]);
    let statuses = host.ingest(vec![record.clone()], learnloop_core::Timestamp::now()).unwrap();
    assert_eq!(statuses[0], learnloop_plugin_host::IngestStatus::Inserted, "the event is stored regardless");
    let err = host.catch_up("panicky", &ws).unwrap_err().to_string();
    assert!(err.contains("fixture panics in on_events"), "{err}");
    // With no panic requested, the same library works, and the event stored
    // while on_events panicked is absorbed now: nothing was lost.
    let host = PluginHost::with_plugins(s.clone(), vec![loaded("nowhere")]);
    assert_eq!(host.catch_up("panicky", &ws).unwrap(), 1);

    let host = PluginHost::with_plugins(s.clone(), vec![loaded("run_job")]);
    let run = host.run_job("panicky", "boom", "test", None, 1).unwrap();
    assert_eq!(run.status, learnloop_core::JobStatus::Failed);
    assert!(run.error.unwrap().contains("fixture panics in run_job"));

    let host = PluginHost::with_plugins(s.clone(), vec![loaded("handle")]);
    let err = host.handle("panicky", &ws, "GET", "/boom", Default::default(), Value::Null).unwrap_err();
    assert!(matches!(&err, HostError::Unavailable { plugin, .. } if plugin == "panicky"), "{err:?}");
    assert!(err.to_string().contains("fixture panics in handle"), "{err}");

    unsafe { std::env::remove_var("LEARNLOOP_FIXTURE_PANIC_IN") };
}
