//! End-to-end tests of the `learnloop` CLI on the embedded store.
//!
//! mod list: every test here spawns the real binary on a scratch data
//! directory: quickstart, ingest (JSONL, CSV, stdin, bad lines, retries),
//! export round trips, config handling, concurrent writer processes and
//! `kill -9` durability.

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use learnloop_e2e::{Scratch, bin};
use serde_json::Value;

fn totals(s: &Scratch) -> (u64, u64, u64) {
    let (code, v) = s.json(&["stats"]);
    assert_eq!(code, 0, "{v}");
    let t = &v["totals"];
    (t["predictions"].as_u64().unwrap(), t["outcomes"].as_u64().unwrap(), t["pending"].as_u64().unwrap())
}

fn sample(s: &Scratch, name: &str, args: &[&str]) -> std::path::PathBuf {
    let path = s.path(name);
    let mut full = vec!["sample", "-o", path.to_str().unwrap()];
    full.extend_from_slice(args);
    let out = s.run(&full);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    path
}

#[test]
fn quickstart_runs_and_is_idempotent() {
    let s = Scratch::new();
    let out = s.cmd(&["quickstart"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    // "read N records: N accepted, ..." then "read N records: 0 accepted, N duplicates, ..."
    let reads: Vec<&str> = text.lines().filter(|l| l.starts_with("read ")).collect();
    let n: u64 = reads[0].split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(n > 1000, "{text}");
    assert!(reads[0].contains(&format!("{n} accepted, 0 duplicates, 0 rejected")), "{text}");
    assert!(
        reads[1].contains(&format!("0 accepted, {n} duplicates, 0 rejected")),
        "second ingest is all duplicates: {text}"
    );
    assert!(text.contains("1 accepted, 0 duplicates, 4 rejected"), "{text}");
    for plugin in ["cost", "trust", "persona", "drift"] {
        assert!(text.contains(plugin), "stats show {plugin}: {text}");
    }
    let before = totals(&s);
    assert!(s.cmd(&["quickstart"]).output().unwrap().status.success());
    assert_eq!(totals(&s), before, "running the quickstart again changes no count");
}

#[test]
fn ingesting_twice_reports_duplicates_and_changes_no_count() {
    let s = Scratch::new();
    let file = sample(&s, "events.jsonl", &["--per-plugin", "100"]);
    let (code, first) = s.json(&["ingest", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{first}");
    let n = first["read"].as_u64().unwrap();
    assert_eq!(first["accepted"].as_u64(), Some(n));
    let counts = totals(&s);
    assert_eq!(counts.0 + counts.1, n);
    let (code, second) = s.json(&["ingest", file.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert_eq!((second["accepted"].as_u64(), second["duplicates"].as_u64()), (Some(0), Some(n)));
    assert_eq!(totals(&s), counts);
}

#[test]
fn bad_lines_are_rejected_with_reasons_and_the_rest_lands() {
    let s = Scratch::new();
    let good = |id: &str| {
        format!(r#"{{"type":"prediction","id":"{id}","plugin":"drift","subject":"m","kind":"regression","value":1}}"#)
    };
    let lines = [
        good("a"),
        r#"{"type":"prediction","id":"nan","plugin":"drift","subject":"m","kind":"regression","value":NaN}"#
            .to_string(),
        good("b"),
        r#"{"type":"prediction","plugin":"drift","subject":"m","kind":"regression","value":1}"#.to_string(),
        String::new(),
        r#"{"type":"prediction","id":"u","plugin":"horoscope","subject":"m","kind":"k"}"#.to_string(),
        good("c"),
        r#"{"type":"outcome","id":"o","plugin":"drift","prediction_id":"a","value":2}"#.to_string(),
        r#"{"type":"prediction","id":"a","plugin":"drift","subject":"m","kind":"regression","value":999}"#.to_string(),
    ];
    let file = s.write("mixed.jsonl", &(lines.join("\n") + "\n"));
    let (code, v) = s.json(&["ingest", file.to_str().unwrap()]);
    assert_eq!(code, 2, "exit code 2 when some lines were rejected: {v}");
    assert_eq!(v["accepted"].as_u64(), Some(4), "{v}");
    let rejections: Vec<(u64, String, String)> = v["rejections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["line"].as_u64().unwrap(),
                r["field"].as_str().unwrap().to_string(),
                r["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(rejections.len(), 4, "{rejections:?}");
    assert_eq!((rejections[0].0, rejections[0].1.as_str()), (2, "value"));
    assert!(rejections[0].2.contains("NaN"), "{rejections:?}");
    assert_eq!((rejections[1].0, rejections[1].1.as_str(), rejections[1].2.as_str()), (4, "id", "is required"));
    assert_eq!((rejections[2].0, rejections[2].1.as_str()), (6, "plugin"));
    assert!(rejections[2].2.contains("unknown plugin \"horoscope\""), "{rejections:?}");
    assert_eq!(rejections[3].0, 9);
    assert!(rejections[3].2.contains("different content"), "{rejections:?}");
    assert_eq!(totals(&s), (3, 1, 2));

    // The human output lists the same lines.
    let out = s.run(&["ingest", file.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("mixed.jsonl:2") && text.contains("mixed.jsonl:6"), "{text}");
}

#[test]
fn csv_with_feature_columns() {
    let s = Scratch::new();
    let csv = "type,id,plugin,subject,kind,value,confidence,features.x1,features.segment,event_time,prediction_id,success\n\
               prediction,p1,drift,m,regression,1.5,0.9,0.25,retail,2026-01-01T00:00:00Z,,\n\
               prediction,p2,drift,m,regression,NaN,0.9,0.25,retail,2026-01-01T00:00:00Z,,\n\
               prediction,p3,drift,m,regression,2,,,online,,,\n\
               outcome,o1,drift,,,1.4,,,,2026-01-02T00:00:00Z,p1,yes\n\
               outcome,o2,drift,,,1.4,,,,,p1,maybe\n";
    let file = s.write("events.csv", csv);
    let (code, v) = s.json(&["ingest", file.to_str().unwrap()]);
    assert_eq!(code, 2, "{v}");
    assert_eq!(v["accepted"].as_u64(), Some(3), "{v}");
    let r = v["rejections"].as_array().unwrap();
    assert_eq!((r[0]["line"].as_u64(), r[0]["field"].as_str()), (Some(3), Some("value")));
    assert_eq!((r[1]["line"].as_u64(), r[1]["field"].as_str()), (Some(6), Some("success")));
    let out = s.run(&["export", "--type", "prediction"]);
    let first: Value = serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(first["features"], serde_json::json!({"x1": 0.25, "segment": "retail"}));

    let bad_header = s.write("bad.csv", "type,id,colour\nprediction,x,red\n");
    let out = s.run(&["ingest", bad_header.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("column \"colour\""));
}

#[test]
fn stdin_and_defaults() {
    let s = Scratch::new();
    let mut child = s
        .cmd(&["--json", "ingest", "--workspace", "team-a", "--type", "prediction"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"{\"id\":\"x\",\"plugin\":\"cost\",\"subject\":\"r\",\"kind\":\"spot\",\"value\":10}\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let (_, v) = s.json(&["stats", "--workspace", "team-a"]);
    assert_eq!(v["totals"]["predictions"].as_u64(), Some(1));
}

#[test]
fn export_round_trips() {
    let s = Scratch::new();
    let file = sample(&s, "events.jsonl", &["--per-plugin", "60"]);
    assert_eq!(s.json(&["ingest", file.to_str().unwrap()]).0, 0);
    let export = s.path("export.jsonl");
    assert!(s.run(&["export", "-o", export.to_str().unwrap()]).status.success());
    let before = totals(&s);

    // Into the same store: all duplicates.
    let (_, v) = s.json(&["ingest", export.to_str().unwrap()]);
    assert_eq!(v["accepted"].as_u64(), Some(0), "{v}");
    // Into a fresh store: the same counts.
    let other = Scratch::new();
    let (code, v) = other.json(&["ingest", export.to_str().unwrap()]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(totals(&other), before);

    // Filters.
    let out = s.run(&["export", "--plugin", "trust", "--type", "outcome", "--from", "2026-01-15T00:00:00Z"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().count() > 0);
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!((v["plugin"].as_str(), v["type"].as_str()), (Some("trust"), Some("outcome")));
        assert!(v["event_time"].as_str().unwrap() >= "2026-01-15");
    }
}

#[test]
fn config_errors_name_file_and_key() {
    let s = Scratch::new();
    let cfg = s.write("bad.toml", "[api]\nbind = \"not an address\"\n");
    let out = s.run(&["--config", cfg.to_str().unwrap(), "stats"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml") && err.contains("api.bind"), "{err}");
}

#[test]
fn disabled_plugins_are_rejected_and_env_overrides_apply() {
    let s = Scratch::new();
    let cfg = s.write("learnloop.toml", "[plugins]\nenabled = [\"drift\"]\n");
    let file = s.write(
        "e.jsonl",
        "{\"type\":\"prediction\",\"id\":\"a\",\"plugin\":\"cost\",\"subject\":\"r\",\"kind\":\"spot\"}\n",
    );
    // ./learnloop.toml is found without --config; LEARNLOOP__DATA_DIR moves the data.
    let out = s
        .store_env(&mut std::process::Command::new(bin("learnloop")))
        .current_dir(s.dir.path())
        .env_remove("LEARNLOOP_CONFIG")
        .env("LEARNLOOP__DATA_DIR", s.path("elsewhere"))
        .args(["--json", "ingest", file.to_str().unwrap()])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["rejections"][0]["reason"].as_str().unwrap().contains("disabled"), "{v}");
    // The data moved (with PostgreSQL the store is in the database, not in the data directory).
    assert!(s.path("elsewhere/learnloop.sqlite").exists() != s.is_postgres());
    assert!(cfg.exists());
}

#[test]
fn init_creates_data_dir_and_commented_config() {
    let s = Scratch::new();
    let cfg = s.path("conf/learnloop.toml");
    let out = s.run(&["--config", cfg.to_str().unwrap(), "init"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(s.data_dir().join("learnloop.sqlite").exists() != s.is_postgres());
    // The plugin directory the README copies plugin libraries into.
    assert!(s.data_dir().join("plugins").is_dir(), "init creates <data_dir>/plugins");
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(
        text.contains("[scheduler]") && text.contains(&format!("data_dir = {:?}", s.data_dir().display().to_string()))
    );
    // The written file loads.
    assert!(s.run(&["--config", cfg.to_str().unwrap(), "stats"]).status.success());
}

/// Two writer processes on one data directory: everything either of them
/// acknowledged is present, nothing is counted twice, the file is intact.
#[test]
fn two_concurrent_writer_processes_lose_nothing() {
    let s = Scratch::new();
    assert!(s.run(&["init"]).status.success());
    let make = |name: &str, from: u64, to: u64| {
        let mut text = String::new();
        for i in from..to {
            text.push_str(&format!(
                "{{\"type\":\"prediction\",\"id\":\"p{i}\",\"plugin\":\"drift\",\"subject\":\"m{}\",\"kind\":\"regression\",\"value\":{i}}}\n",
                i % 7
            ));
        }
        for i in from..to {
            text.push_str(&format!(
                "{{\"type\":\"outcome\",\"id\":\"o{i}\",\"plugin\":\"drift\",\"prediction_id\":\"p{i}\",\"value\":{i}}}\n"
            ));
        }
        s.write(name, &text)
    };
    // 20,000 rows each, 4,000 of them in both files.
    let a = make("a.jsonl", 0, 12_000);
    let b = make("b.jsonl", 10_000, 20_000);
    let spawn = |f: &std::path::Path| {
        s.cmd(&["--json", "ingest", "--batch-size", "250", f.to_str().unwrap()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (pa, pb) = (spawn(&a), spawn(&b));
    let (oa, ob) = (pa.wait_with_output().unwrap(), pb.wait_with_output().unwrap());
    for o in [&oa, &ob] {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let va: Value = serde_json::from_slice(&oa.stdout).unwrap();
    let vb: Value = serde_json::from_slice(&ob.stdout).unwrap();
    let accepted = va["accepted"].as_u64().unwrap() + vb["accepted"].as_u64().unwrap();
    let dups = va["duplicates"].as_u64().unwrap() + vb["duplicates"].as_u64().unwrap();
    assert_eq!(accepted, 40_000, "each distinct row stored once");
    assert_eq!(dups, 4_000, "the overlap counted once as duplicates");
    assert_eq!(totals(&s), (20_000, 20_000, 0));
    if !s.is_postgres() {
        assert_eq!(s.sql("PRAGMA integrity_check"), [[serde_json::json!("ok")]]);
    }
}

/// What another process can read has been committed; `kill -9` must not take it back.
#[test]
fn committed_rows_survive_kill_9() {
    let s = Scratch::new();
    assert!(s.run(&["init"]).status.success());
    let mut child =
        s.cmd(&["ingest", "--batch-size", "100", "-"]).stdin(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let line = |i: u64| {
        format!(
            "{{\"type\":\"prediction\",\"id\":\"p{i}\",\"plugin\":\"cost\",\"subject\":\"r\",\"kind\":\"spot\",\"value\":{i}}}\n"
        )
    };
    for i in 0..1_000 {
        stdin.write_all(line(i).as_bytes()).unwrap();
    }
    stdin.flush().unwrap();
    // Wait until another process sees all of them (batches commit as they
    // fill, and an idle pipe flushes the rest).
    let deadline = Instant::now() + Duration::from_secs(30);
    while totals(&s).0 < 1_000 {
        assert!(Instant::now() < deadline, "rows never became visible");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Keep writing, then kill mid-stream.
    for i in 1_000..5_000 {
        stdin.write_all(line(i).as_bytes()).unwrap();
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    drop(stdin);
    let (p, _, _) = totals(&s);
    assert!(p >= 1_000, "acknowledged rows lost: {p}");
    if !s.is_postgres() {
        assert_eq!(s.sql("PRAGMA integrity_check"), [[serde_json::json!("ok")]]);
    }
    // Every stored row is complete: ids 0..p form a prefix (batches commit whole, in order).
    let max = s.sql("SELECT CAST(MAX(value) AS BIGINT) FROM predictions")[0][0].as_i64().unwrap();
    assert_eq!(max as u64 + 1, p);
}

#[test]
fn plugins_list_check_and_replay() {
    let s = Scratch::new();
    let (code, v) = s.json(&["plugins", "list"]);
    assert_eq!(code, 0, "{v}");
    let names: Vec<&str> = v["plugins"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["cost", "drift", "persona", "trust"]);
    for p in v["plugins"].as_array().unwrap() {
        assert_eq!((p["origin"].as_str(), p["enabled"].as_bool()), (Some("static"), Some(true)));
        assert!(!p["routes"].as_array().unwrap().is_empty() && !p["jobs"].as_array().unwrap().is_empty(), "{p}");
    }

    // Disabled plugins are listed as such.
    let cfg = s.write("only-drift.toml", "[plugins]\nenabled = [\"drift\"]\n");
    let (_, v) = s.json(&["--config", cfg.to_str().unwrap(), "plugins", "list"]);
    let cost = v["plugins"].as_array().unwrap().iter().find(|p| p["name"] == "cost").unwrap().clone();
    assert_eq!(cost["enabled"].as_bool(), Some(false));

    // `plugins check` on something that is not a plugin.
    let junk = s.write("junk.so", "not a library");
    let out = s.run(&["plugins", "check", junk.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("junk.so"));

    // Ingest learns online; replay rebuilds the same state from history.
    let file = sample(&s, "events.jsonl", &["--per-plugin", "50", "--plugins", "trust"]);
    let (code, v) = s.json(&["ingest", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{v}");
    let n = v["accepted"].as_u64().unwrap();
    assert_eq!(v["learned"]["trust"].as_u64(), Some(n), "every new event absorbed online: {v}");
    let (code, v) = s.json(&["replay", "--plugin", "trust"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["workspaces"]["default"].as_u64(), Some(n));
    let out = s.run(&["replay", "--plugin", "horoscope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown plugin"));
}
