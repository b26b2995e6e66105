//! Plugin libraries for tests and benchmarks: building a workspace plugin
//! (or misbehaving fixture) as a `cdylib`, and installing it where the host
//! looks for plugin libraries.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

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
pub fn install(lib: &Path, dir: &Path, plugin: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let dest = dir.join(format!("liblearnloop_plugin_{plugin}.{}", std::env::consts::DLL_EXTENSION));
    std::fs::copy(lib, &dest).unwrap();
    dest
}
