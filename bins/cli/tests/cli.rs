//! Smoke tests of the binary's command line.
//!
//! mod list: argument handling only. Behaviour on real data is tested end to
//! end in the workspace's `tests/` package; having an integration test here
//! also makes `cargo test --workspace` build the `learnloop` binary that
//! those tests run.

use std::process::Command;

fn learnloop(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_learnloop")).args(args).output().unwrap()
}

#[test]
fn help_lists_every_command() {
    let out = learnloop(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for cmd in
        ["init", "ingest", "export", "stats", "sample", "simulate", "quickstart", "plugins", "replay", "keys", "jobs"]
    {
        assert!(text.contains(cmd), "--help lacks {cmd}: {text}");
    }
}

#[test]
fn every_command_takes_config_and_data_dir() {
    for cmd in [
        &["init"][..],
        &["ingest"],
        &["export"],
        &["stats"],
        &["sample"],
        &["quickstart"],
        &["plugins", "list"],
        &["plugins", "check"],
        &["replay"],
    ] {
        let mut args = cmd.to_vec();
        args.push("--help");
        let out = learnloop(&args);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("--config") && text.contains("--data-dir"), "{cmd:?}: {text}");
    }
}

#[test]
fn bad_arguments_exit_nonzero_with_a_message() {
    let out = learnloop(&["ingest", "--batch-size", "0"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--batch-size"));
    let out = learnloop(&["--data-dir", "/nonexistent-dir/x", "ingest", "/nonexistent-file.jsonl"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such file"));
}
