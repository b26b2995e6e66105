//! `learnloop-plugin-probe`: a probe program for this crate's own tests.
//!
//! A test executable cannot serve a probe request (its `main` is the test
//! harness), so the tests point [`learnloop_plugin_host::probe`] at this
//! binary. The three learnloop binaries do not need it: each is its own
//! probe program (`probe::init` first thing in `main`).

fn main() -> std::process::ExitCode {
    use std::io::Write;
    learnloop_plugin_host::probe::init();
    // Not eprintln!, which panics on a closed stderr (the binaries' rule).
    let _ = writeln!(
        std::io::stderr().lock(),
        "learnloop-plugin-probe: run with {}=<library> to check a plugin library in this process",
        learnloop_plugin_host::probe::PROBE_ENV
    );
    std::process::ExitCode::from(2)
}
