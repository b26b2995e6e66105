//! Libraries that crash the process that opens them: each is opened in a
//! child process first ([`learnloop_plugin_host::probe`]), and comes back as
//! a load error naming the file, how the child ended and where; this
//! process and the other plugins carry on.
//!
//! mod list: the garbage-pointer fixture (SIGSEGV) and the abi-panic
//! fixture (SIGABRT) through `load_library`, `PluginHost::load` and
//! `check_plugins`; the clean failures (wrong ABI, missing symbol, empty
//! and random files) give the same errors through the child as in-process;
//! a good library passes and loads; a probe program that hangs, answers
//! nothing or does not exist.
//!
//! This test executable cannot serve a probe request, so every test points
//! the probe at this crate's `learnloop-plugin-probe` binary.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use learnloop_config::{Config, Sources};
use learnloop_plugin_host::probe::{self, Probe};
use learnloop_plugin_host::{LoadError, PluginHost, Registry, check_plugins, load_library};
use learnloop_store::{SqliteOptions, Store};
use learnloop_test_support::cdylib as support;
use learnloop_test_support::records::sample_records;
use serde_json::Value;

const PROBE: &str = env!("CARGO_BIN_EXE_learnloop-plugin-probe");

fn use_probe() {
    probe::set_program(Some(PathBuf::from(PROBE)));
}

fn store(dir: &Path) -> Arc<dyn Store> {
    learnloop_test_support::store::test_store(dir, &SqliteOptions::default())
}

/// Loads `lib` and returns the error's message, checking it is a probe
/// error naming the file.
fn probe_error(lib: &Path) -> String {
    let err = load_library(lib, &Value::Null).err().expect("refused");
    assert!(matches!(err, LoadError::Probe { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.starts_with(&lib.display().to_string()), "{msg}");
    assert!(msg.contains("the plugin was not loaded"), "{msg}");
    msg
}

#[test]
fn a_garbage_pointer_is_a_segfault_in_the_child_reported_as_a_load_error() {
    use_probe();
    let lib = support::build_cdylib("learnloop-fixture-garbage-pointer", &[]);
    let msg = probe_error(&lib);
    assert!(msg.contains("killed by signal SIGSEGV"), "{msg}");
    assert!(msg.contains("while asking the plugin for its manifest"), "{msg}");
}

#[test]
fn a_panic_in_the_abi_version_symbol_is_an_abort_in_the_child_reported_as_a_load_error() {
    use_probe();
    let lib = support::build_cdylib("learnloop-fixture-abi-panic", &[]);
    let msg = probe_error(&lib);
    assert!(msg.contains("aborted (signal SIGABRT"), "{msg}");
    assert!(msg.contains("while calling `learnloop_plugin_abi_version`"), "{msg}");
    // The tail of its stderr says why, without the backtrace.
    assert!(msg.contains("fixture panics in learnloop_plugin_abi_version"), "{msg}");
    assert!(!msg.contains("stack backtrace"), "{msg}");
}

#[test]
fn crashing_plugins_fail_alone_in_the_host_and_only_when_enabled() {
    use_probe();
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    let segv = support::install(&support::build_cdylib("learnloop-fixture-garbage-pointer", &[]), &plugins, "segv");
    let abort = support::install(&support::build_cdylib("learnloop-fixture-abi-panic", &[]), &plugins, "abort");
    let registry = Registry::new().with_default::<learnloop_test_support::quiet::Quiet>("quiet");
    let mut config = Config::default();
    config.plugins.dir = plugins.clone();

    // In the plugin directory but not enabled: never opened, nothing fails.
    config.plugins.enabled = vec!["quiet".into()];
    let host = PluginHost::load(&registry, &config, store(dir.path()));
    assert!(host.load_errors.is_empty(), "{:?}", host.load_errors);
    host.require_all_loaded(&Sources::default()).unwrap();
    assert!(check_plugins(&registry, &config).errors.is_empty());

    // Enabled: each is a load error of its own; the other plugin works.
    config.plugins.enabled = vec!["segv".into(), "quiet".into(), "abort".into()];
    let host = PluginHost::load(&registry, &config, store(dir.path()));
    let errors: Vec<String> = host.load_errors.iter().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].contains(&segv.display().to_string()) && errors[0].contains("SIGSEGV"), "{errors:?}");
    assert!(errors[1].contains(&abort.display().to_string()) && errors[1].contains("SIGABRT"), "{errors:?}");
    assert!(host.plugins().contains_key("quiet"));
    let records = sample_records("quiet", 3);
    let statuses = host.ingest(records.clone(), learnloop_core::Timestamp::now()).unwrap();
    assert_eq!(statuses.len(), records.len());
    assert!(statuses.iter().all(|s| *s == learnloop_plugin_host::IngestStatus::Inserted), "{statuses:?}");
    let err = host.validate(&sample_records("segv", 1)[0]).unwrap_err();
    assert!(err.message.contains("failed to load"), "{err}");

    // The start-up check refuses, naming each plugin, its file and the crash.
    let err = host.require_all_loaded(&Sources::default()).unwrap_err().to_string();
    for fragment in ["\"segv\"", "\"abort\"", "liblearnloop_plugin_segv", "SIGSEGV", "SIGABRT", "plugins.enabled"] {
        assert!(err.contains(fragment), "lacks {fragment}: {err}");
    }
    let check = check_plugins(&registry, &config);
    let names: Vec<&str> = check.errors.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["segv", "abort"]);
    assert!(check.manifests.contains_key("quiet"));
}

#[test]
fn clean_failures_come_back_from_the_child_as_they_would_in_process() {
    use_probe();
    let wrong = support::build_cdylib("learnloop-fixture-wrong-abi", &[]);
    let err = load_library(&wrong, &Value::Null).err().expect("refused");
    assert!(matches!(err, LoadError::AbiMismatch { found: 999, expected: 1, .. }), "{err:?}");

    let no_entry = support::build_cdylib("learnloop-fixture-no-entry", &[]);
    let err = load_library(&no_entry, &Value::Null).err().expect("refused");
    assert!(matches!(err, LoadError::MissingSymbol { symbol: "learnloop_plugin_create", .. }), "{err:?}");

    // Files that are no library at all: empty, and random bytes.
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.so");
    std::fs::write(&empty, b"").unwrap();
    let random = dir.path().join("random.so");
    // A fixed seed: the same "random" bytes every run.
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let bytes: Vec<u8> = (0..65_536)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(&random, bytes).unwrap();
    for file in [&empty, &random] {
        let err = load_library(file, &Value::Null).err().expect("refused");
        assert!(matches!(err, LoadError::Open { .. }), "{err:?}");
        assert!(err.to_string().contains(&file.display().to_string()), "{err}");
    }
}

#[test]
fn a_good_library_passes_the_child_and_loads() {
    use_probe();
    let lib = support::build_cdylib("learnloop-fixture-panicky", &[]);
    let manifest = Probe::new(PROBE.into()).inspect(&lib).unwrap();
    assert_eq!(manifest.name, "panicky");
    let loaded = load_library(&lib, &Value::Null).unwrap();
    assert_eq!(loaded.manifest.name, "panicky");
}

#[cfg(unix)]
#[test]
fn a_probe_program_that_hangs_is_killed_and_one_that_answers_nothing_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path().join("liblearnloop_plugin_x.so");
    std::fs::write(&lib, b"").unwrap();
    let script = |name: &str, body: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    };

    let hangs = script("hangs", "echo 'learnloop-plugin-probe step open'\nexec sleep 60");
    let err = Probe::new(hangs).with_timeout(Duration::from_millis(300)).inspect(&lib).unwrap_err().to_string();
    assert!(err.contains("did not finish within 0.3 s and was killed while opening it"), "{err}");

    let silent = script("silent", "exit 0");
    let err = Probe::new(silent).inspect(&lib).unwrap_err().to_string();
    assert!(err.contains("gave no report") && err.contains("silent"), "{err}");

    let fails = script("fails", "echo 'something went wrong' >&2\nexit 3");
    let err = Probe::new(fails).inspect(&lib).unwrap_err().to_string();
    assert!(err.contains("exited with status 3 while starting up") && err.contains("something went wrong"), "{err}");

    let err = Probe::new(dir.path().join("missing")).inspect(&lib).unwrap_err().to_string();
    assert!(err.contains("cannot start the child process"), "{err}");
}
