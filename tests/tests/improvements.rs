//! The improvement lifecycle through the CLI, on trust weights learned from
//! the bundled sample data: a proposal held for approval, approve / applied /
//! rollback / reject, plugin routes through `learnloop call` naming the
//! version in force — and `kill -9` during an approval, repeatedly, never
//! leaves a mix: either the old version is in force and the improvement is
//! still backtested, or the new one is in force and it is applied.

use std::path::Path;
use std::time::Duration;

use learnloop_e2e::Scratch;
use serde_json::Value;

const HELD: &str = "[improvements]\nauto_apply = false\n";

/// A data directory whose trust plugin proposed weights that wait for approval.
fn held_proposal_in(s: Scratch) -> Scratch {
    s.write("learnloop.toml", HELD);
    let sample = s.path("sample.jsonl");
    assert!(s.run(&["sample", "--plugins", "trust", "-o", sample.to_str().unwrap()]).status.success());
    assert!(s.run(&["ingest", sample.to_str().unwrap()]).status.success());
    let (code, run) = s.json(&["jobs", "run", "trust", "meta_learning"]);
    assert_eq!(code, 0, "{run}");
    let held = &run["report"]["improvements"]["default"]["held"];
    assert_eq!(held.as_array().map(Vec::len), Some(1), "{run:#}");
    s
}

fn held_proposal() -> Scratch {
    held_proposal_in(Scratch::new())
}

fn status(s: &Scratch, id: &str) -> String {
    let (code, v) = s.json(&["improvements", "show", id]);
    assert_eq!(code, 0, "{v}");
    v["status"].as_str().unwrap().to_string()
}

fn in_force(s: &Scratch) -> u64 {
    let (code, v) = s.json(&["improvements", "applied", "--plugin", "trust"]);
    assert_eq!(code, 0, "{v}");
    v["applied"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["target"] == "weights")
        .map_or(0, |a| a["version"].as_u64().unwrap())
}

fn weights_version(s: &Scratch) -> u64 {
    let out = s.run(&["call", "trust", "GET", "/agents"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["weights_version"].as_u64().unwrap()
}

#[test]
fn approve_apply_and_roll_back_from_the_cli() {
    let s = held_proposal();
    let (_, list) = s.json(&["improvements", "list", "--plugin", "trust", "--status", "backtested"]);
    let imp = &list["improvements"][0];
    assert_eq!((imp["target"].as_str(), imp["version"].as_u64()), (Some("weights"), Some(1)));
    assert!(imp["backtest"]["n"].as_u64().unwrap() > 0, "{imp}");
    assert_eq!((in_force(&s), weights_version(&s)), (0, 0));

    let id = imp["id"].to_string();
    let out = s.run(&["improvements", "approve", &id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!((status(&s, &id), in_force(&s), weights_version(&s)), ("applied".into(), 1, 1));

    // Approving twice is refused, naming the status.
    let again = s.run(&["improvements", "approve", &id]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("is applied"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    let out = s.run(&["improvements", "rollback", "trust", "weights", "--reason", "e2e"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("built-in defaults"));
    assert_eq!((status(&s, &id), in_force(&s), weights_version(&s)), ("rolled_back".into(), 0, 0));
    let (_, shown) = s.json(&["improvements", "show", &id]);
    let last = shown["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((last["note"]["by"].as_str(), last["note"]["reason"].as_str()), (Some("person"), Some("e2e")));

    let bad = s.run(&["improvements", "list", "--status", "approved"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("status"));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// A crash between "approved" and "applied" cannot leave a mix: the status
/// move and the document saying which version is in force are one
/// transaction. Kill the approving process at spread-out moments and check
/// both sides agree every time.
#[test]
fn kill_9_during_approval_leaves_one_version_fully_in_force() {
    // Copies of one embedded data directory (the crash is the same on any store:
    // one transaction), so this test always runs on SQLite.
    let base = held_proposal_in(Scratch::sqlite());
    let (_, list) = base.json(&["improvements", "list"]);
    let id = list["improvements"][0]["id"].to_string();
    let (mut before, mut after) = (0, 0);
    for i in 0..12u64 {
        let s = Scratch::sqlite();
        s.write("learnloop.toml", HELD);
        copy_dir(&base.data_dir(), &s.data_dir());
        let mut child = s.cmd(&["improvements", "approve", &id]).stdout(std::process::Stdio::null()).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(i * 20));
        let _ = child.kill(); // SIGKILL (may already have finished)
        let _ = child.wait();
        match (status(&s, &id).as_str(), in_force(&s)) {
            ("backtested", 0) => before += 1,
            ("applied", 1) => after += 1,
            (st, v) => panic!("kill after {} ms left improvement {id} {st} with version {v} in force", i * 20),
        }
        // Whatever happened, the plugin serves exactly what the lifecycle says.
        assert_eq!(weights_version(&s), in_force(&s));
    }
    println!("killed before the commit: {before}, after: {after}");
}
