//! Misbehaving plugin libraries against the real binaries (issue #26,
//! finding 1): a library that segfaults or aborts while loading, one built
//! for another ABI, one missing its entry symbol, an empty file and a file
//! of random bytes named `.so`.
//!
//! mod list: `learnloop plugins check <file>` reports each with a clear
//! message and exit status 1 (the CLI itself never crashes);
//! `learnloop-api` with all of them in its plugin directory, none enabled,
//! starts and serves the built-in plugins; with one enabled, the API, the
//! scheduler and the CLI refuse to start, naming the plugin, the file and
//! what happened, and `learnloop plugins list` shows the load error.
//!
//! The fixture libraries are built here (as `learnloop-test-support`'s
//! `cdylib` helper does, into `target/cdylib-plugins`): `cargo test` does
//! not build a workspace `cdylib` the tests do not link.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use learnloop_e2e::{Scratch, bin, http, start_api, terminate};
use serde_json::Value;

/// Serialises the nested cargo builds of parallel tests.
static BUILD: Mutex<()> = Mutex::new(());

/// Builds a fixture crate as a `cdylib` and returns the library.
fn fixture(package: &str) -> PathBuf {
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test> -> target
    let target = exe.parent().and_then(Path::parent).and_then(Path::parent).unwrap().join("cdylib-plugins");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["build", "--quiet", "--lib", "-p", package])
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo");
    assert!(out.status.success(), "building {package} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let lib =
        target.join("debug").join(format!("lib{}.{}", package.replace('-', "_"), std::env::consts::DLL_EXTENSION));
    assert!(lib.exists(), "{} was not built", lib.display());
    lib
}

/// One bad library: the plugin name it is installed as, the file, and
/// what every message about it must say.
struct Bad {
    name: &'static str,
    source: PathBuf,
    says: &'static [&'static str],
}

/// Every misbehaving library, the files among them written into `dir`.
fn bad_libraries(dir: &Path) -> Vec<Bad> {
    std::fs::create_dir_all(dir).unwrap();
    let empty = dir.join("empty.so");
    std::fs::write(&empty, b"").unwrap();
    let random = dir.join("random.so");
    // Fixed-seed "random" bytes (xorshift), the same every run.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let bytes: Vec<u8> = (0..65_536)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(&random, bytes).unwrap();
    vec![
        Bad {
            name: "segv",
            source: fixture("learnloop-fixture-garbage-pointer"),
            says: &["killed by signal SIGSEGV", "while asking the plugin for its manifest", "not loaded"],
        },
        Bad {
            name: "abort",
            source: fixture("learnloop-fixture-abi-panic"),
            says: &["aborted (signal SIGABRT", "learnloop_plugin_abi_version", "fixture panics"],
        },
        Bad {
            name: "wrongabi",
            source: fixture("learnloop-fixture-wrong-abi"),
            says: &["plugin ABI version 999", "version 1"],
        },
        Bad {
            name: "noentry",
            source: fixture("learnloop-fixture-no-entry"),
            says: &["missing symbol `learnloop_plugin_create`"],
        },
        Bad { name: "empty", source: empty, says: &["cannot load the library", "too short"] },
        Bad { name: "random", source: random, says: &["cannot load the library"] },
    ]
}

/// Copies `bad` into the plugin directory under the name the host looks for.
fn install(bad: &Bad, plugins: &Path) -> PathBuf {
    std::fs::create_dir_all(plugins).unwrap();
    let dest = plugins.join(format!("liblearnloop_plugin_{}.{}", bad.name, std::env::consts::DLL_EXTENSION));
    std::fs::copy(&bad.source, &dest).unwrap();
    dest
}

fn assert_says(what: &str, text: &str, fragments: &[&str]) {
    for f in fragments {
        assert!(text.contains(f), "{what}: lacks {f:?}: {text}");
    }
}

#[test]
fn plugins_check_reports_every_bad_library_and_the_cli_survives() {
    let s = Scratch::new();
    for bad in bad_libraries(&s.path("libs")) {
        let file = bad.source.to_str().unwrap();
        let out = s.run(&["plugins", "check", file]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{}: {:?} {err}", bad.name, out.status);
        assert!(err.starts_with(&format!("learnloop: error: {file}: ")), "{}: {err}", bad.name);
        assert_says(bad.name, &err, bad.says);

        let (code, v) = s.json(&["plugins", "check", file]);
        assert_eq!(code, 1, "{}: {v}", bad.name);
        assert_eq!(v["ok"], false, "{v}");
        assert_says(bad.name, v["error"].as_str().unwrap(), bad.says);
    }
}

#[test]
fn the_api_serves_the_other_plugins_with_bad_libraries_it_does_not_enable() {
    let s = Scratch::new();
    let plugins = s.data_dir().join("plugins");
    for bad in bad_libraries(&s.path("libs")) {
        install(&bad, &plugins);
    }
    let (api, addr) = start_api(&s, &["--data-dir", s.data_dir().to_str().unwrap(), "--bind", "127.0.0.1:0"]);
    let (st, b) = http(&addr, "GET", "/ready", None, "");
    assert_eq!(st, 200, "{b}");
    let out = s.run(&["--json", "keys", "create", "--role", "writer", "--workspace", "default"]);
    let writer: Value = serde_json::from_slice(&out.stdout).unwrap();
    let writer = writer["key"].as_str().unwrap();
    for i in 0..5 {
        let body = format!(r#"{{"id":"p{i}","plugin":"drift","subject":"m","kind":"regression","value":{i}}}"#);
        let (st, b) = http(&addr, "POST", "/api/v1/predictions", Some(writer), &body);
        assert_eq!(st, 201, "{b}");
    }
    let (st, b) = http(&addr, "GET", "/api/v1/drift/summary", Some(writer), "");
    assert_eq!(st, 200, "{b}");
    let mut api = api;
    terminate(&api.0);
    assert!(api.0.wait().unwrap().success());
}

/// Runs a binary expected to refuse to start; returns its exit code and stderr.
fn refused(s: &Scratch, name: &str, args: &[&str]) -> (Option<i32>, String) {
    let mut cmd = Command::new(bin(name));
    cmd.current_dir(s.dir.path()).env_remove("LEARNLOOP_CONFIG");
    let out = s.store_env(&mut cmd).args(args).stdin(Stdio::null()).output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn an_enabled_bad_library_stops_every_binary_naming_it() {
    let s = Scratch::new();
    let plugins = s.path("plugins");
    let data = s.data_dir().display().to_string();
    let mut segv_config = None;
    for bad in bad_libraries(&s.path("libs")) {
        let file = install(&bad, &plugins);
        let cfg = s.write(
            &format!("{}.toml", bad.name),
            &format!(
                "data_dir = {data:?}\n[plugins]\nenabled = [\"drift\", {:?}]\ndir = {:?}\n",
                bad.name,
                plugins.display().to_string()
            ),
        );
        let cfg = cfg.to_str().unwrap();
        let (code, err) = refused(&s, "learnloop-api", &["--config", cfg, "--bind", "127.0.0.1:0"]);
        assert_eq!(code, Some(1), "{}: {err}", bad.name);
        assert_says(bad.name, &err, &[&format!("plugin {:?}", bad.name), &file.display().to_string()]);
        assert_says(bad.name, &err, bad.says);
        assert!(!s.data_dir().exists(), "{}: a refused start created the data directory", bad.name);

        if bad.name == "segv" {
            segv_config = Some(cfg.to_string());
        }
    }
    // The other binaries, on the library that segfaults.
    let cfg = segv_config.expect("the segv case ran");
    let cfg = cfg.as_str();
    {
        let (code, err) = refused(&s, "learnloop-scheduler", &["--config", cfg]);
        assert_eq!(code, Some(1), "{err}");
        assert_says("scheduler", &err, &["plugin \"segv\"", "SIGSEGV"]);
        let out = s.cmd(&["--config", cfg, "stats"]).stdin(Stdio::null()).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert_says("learnloop stats", &err, &["plugin \"segv\"", "SIGSEGV"]);
        // `plugins list` still shows what loads and what does not.
        let out = s.cmd(&["--config", cfg, "--json", "plugins", "list"]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_says("plugins list", &v["load_errors"].to_string(), &["liblearnloop_plugin_segv", "SIGSEGV"]);
        assert!(v["plugins"].as_array().unwrap().iter().any(|p| p["name"] == "drift" && p["enabled"] == true), "{v}");
    }
}
