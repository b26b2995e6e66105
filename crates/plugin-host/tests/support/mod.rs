//! Shared by the host's integration tests and benchmarks: building plugin libraries and
//! making sample records.

#![allow(dead_code, reason = "each test target uses a part of it")]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use learnloop_core::{Record, RecordDefaults, parse_json_record};

/// Serialises nested cargo builds from parallel tests.
static BUILD: Mutex<()> = Mutex::new(());

/// Builds a workspace package as a `cdylib` (with `features`) into a
/// separate target directory, so the outer `cargo test` keeps its lock and
/// its artifacts, and returns the library's path.
pub fn build_cdylib(package: &str, features: &[&str]) -> PathBuf {
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test> -> target
    let target = exe.parent().and_then(Path::parent).and_then(Path::parent).unwrap().join("cdylib-plugins");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "--lib", "-p", package])
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if !features.is_empty() {
        cmd.args(["--features", &features.join(",")]);
    }
    // Benchmarks (built without debug assertions) measure optimised plugins.
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    if profile == "release" {
        cmd.arg("--release");
    }
    let out = cmd.output().expect("run cargo");
    assert!(out.status.success(), "building {package} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let lib =
        target.join(profile).join(format!("lib{}.{}", package.replace('-', "_"), std::env::consts::DLL_EXTENSION));
    assert!(lib.exists(), "{} was not built", lib.display());
    lib
}

/// Copies a built library into `dir` under the name the host looks for.
#[allow(dead_code)]
pub fn install(lib: &Path, dir: &Path, plugin: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let dest = dir.join(format!("liblearnloop_plugin_{plugin}.{}", std::env::consts::DLL_EXTENSION));
    std::fs::copy(lib, &dest).unwrap();
    dest
}

fn rec(json: String) -> Record {
    parse_json_record(&json, &RecordDefaults::default()).unwrap_or_else(|e| panic!("{json}: {e}"))
}

#[allow(dead_code)]
/// Deterministic, valid records for a built-in plugin in two workspaces.
pub fn sample_records(plugin: &str, n: usize) -> Vec<Record> {
    let mut out = Vec::new();
    for ws in ["alpha", "beta"] {
        for i in 0..n {
            let subject = format!("s{}", i % 3);
            let kind = ["k1", "k2"][i % 2];
            let extra = match plugin {
                "cost" => format!(r#","value":{},"payload":{{"resource_type":"ec2","region":"r{}"}}"#, 10 + i, i % 2),
                "drift" => format!(r#","value":{}"#, 10 + i),
                _ => String::new(),
            };
            out.push(rec(format!(
                r#"{{"type":"prediction","id":"p{i}","workspace":"{ws}","plugin":"{plugin}","subject":"{subject}","kind":"{kind}","confidence":0.5{extra},"event_time":"2026-01-01T00:00:{:02}Z"}}"#,
                i % 60
            )));
            if i % 4 != 3 {
                let outcome_extra = match plugin {
                    "trust" => r#","label":"approved""#.to_string(),
                    _ => format!(r#","value":{}"#, 9 + i),
                };
                out.push(rec(format!(
                    r#"{{"type":"outcome","id":"o{i}","workspace":"{ws}","plugin":"{plugin}","prediction_id":"p{i}","success":{}{outcome_extra}}}"#,
                    i % 5 != 0
                )));
            }
        }
    }
    out
}

/// A plugin that accepts every record and learns nothing: "another plugin"
/// for the host's tests, which link no real plugin (the host depends on
/// none; the built-in plugins are tested in the real host by
/// `learnloop-plugins`).
#[derive(Default)]
#[allow(dead_code)]
pub struct Quiet;

impl learnloop_plugin_api::Plugin for Quiet {
    fn manifest(&self) -> learnloop_plugin_api::Manifest {
        use learnloop_plugin_api::{KindSpec, Manifest, RecordType, abi};
        let kind = |record_type| KindSpec {
            record_type,
            kinds: vec![],
            payload_schema: serde_json::Value::Null,
            description: String::new(),
        };
        Manifest {
            name: "quiet".into(),
            version: "0.0.0".into(),
            abi_version: abi::ABI_VERSION,
            description: "test plugin that learns nothing".into(),
            kinds: vec![kind(RecordType::Prediction), kind(RecordType::Outcome)],
            routes: vec![],
            jobs: vec![],
            config: vec![],
        }
    }

    fn on_events(
        &self,
        _ctx: &mut dyn learnloop_plugin_api::Context,
        _events: &[learnloop_plugin_api::Event],
    ) -> Result<(), learnloop_plugin_api::PluginError> {
        Ok(())
    }

    fn run_job(
        &self,
        _ctx: &mut dyn learnloop_plugin_api::Context,
        job: &str,
    ) -> Result<serde_json::Value, learnloop_plugin_api::PluginError> {
        Err(learnloop_plugin_api::PluginError::not_found(format!("no job {job}")))
    }

    fn handle(
        &self,
        _ctx: &mut dyn learnloop_plugin_api::Context,
        _request: &learnloop_plugin_api::RouteRequest,
    ) -> Result<learnloop_plugin_api::RouteResponse, learnloop_plugin_api::PluginError> {
        Err(learnloop_plugin_api::PluginError::not_found("no routes"))
    }
}
