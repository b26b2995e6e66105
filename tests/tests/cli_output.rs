//! End-to-end tests of what the `learnloop` CLI tells its user (issue 17,
//! section 4): progress on a terminal and nothing else on a pipe, `sample -o`
//! saying what it wrote, one `--limit` default, messages in plain words, and
//! a readable, idempotent quickstart.

use std::process::{Command, Stdio};

use learnloop_e2e::{Scratch, bin};
use serde_json::Value;

fn text(out: &std::process::Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn sample(s: &Scratch, name: &str, per_plugin: &str) -> std::path::PathBuf {
    let path = s.path(name);
    let out = s.run(&["sample", "--per-plugin", per_plugin, "-o", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out).1);
    path
}

/// `learnloop ARGS` on a pseudo-terminal (util-linux `script`), returning
/// everything it drew there; `None` when `script` is not installed.
fn on_terminal(s: &Scratch, args: &[&str]) -> Option<String> {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipping the terminal half: util-linux `script` is not installed");
        return None;
    }
    let mut line = format!("{} --data-dir {}", bin("learnloop").display(), s.data_dir().display());
    for a in args {
        line.push(' ');
        line.push_str(a);
    }
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &line, "/dev/null"])
        .current_dir(s.dir.path())
        .env("TERM", "xterm")
        .env_remove("LEARNLOOP_CONFIG");
    let out = s.store_env(&mut cmd).stdin(Stdio::null()).output().expect("run script");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Bullet 1: a terminal shows every long phase (storing, then each plugin's
/// online update, with rate and time left); a pipe and `--json` get the
/// result and nothing else.
#[test]
fn ingest_progress_on_a_terminal_and_clean_pipes() {
    let s = Scratch::new();
    let file = sample(&s, "events.jsonl", "300");
    let f = file.to_str().unwrap();

    // Piped: the summary on stdout, no progress and no escape codes anywhere.
    let out = s.run(&["ingest", f]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.starts_with("read ") && !stdout.contains('\u{1b}'), "{stdout:?}");
    assert!(!stderr.contains('\u{1b}') && !stderr.contains("learning") && !stderr.contains("storing"), "{stderr:?}");

    // --json: exactly one JSON document on stdout.
    let out = s.run(&["--json", "ingest", f]);
    let (stdout, stderr) = text(&out);
    let v: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout:?}"));
    assert!(v["duplicates"].as_u64().unwrap() > 0, "{v}");
    assert!(!stderr.contains('\u{1b}'), "{stderr:?}");

    // On a terminal: the storing phase, then a line per plugin learning.
    let fresh = Scratch::new();
    let file = sample(&fresh, "events.jsonl", "300");
    if let Some(screen) = on_terminal(&fresh, &["ingest", file.to_str().unwrap()]) {
        assert!(screen.contains("storing"), "{screen:?}");
        for plugin in ["cost", "trust", "persona", "drift"] {
            assert!(
                screen.contains(&format!("learning {plugin}")),
                "no progress for {plugin}'s online update: {screen:?}"
            );
        }
        assert!(screen.contains(" events") && screen.contains("/s"), "events and rate: {screen:?}");
        // Replay draws its phase too.
        let replay = on_terminal(&fresh, &["replay", "--plugin", "drift"]).unwrap();
        assert!(replay.contains("replaying drift in default"), "{replay:?}");
        // A local job run: its catch-up, then the job with the time so far.
        let job = on_terminal(&fresh, &["jobs", "run", "drift", "daily"]).unwrap();
        assert!(job.contains("running drift.daily") && job.contains("so far"), "{job:?}");
        // --json draws nothing even on a terminal.
        let quiet = on_terminal(&fresh, &["--json", "replay", "--plugin", "drift"]).unwrap();
        assert!(!quiet.contains('\u{1b}') && !quiet.contains("replaying"), "{quiet:?}");
        let v: Value = serde_json::from_str(quiet.trim()).unwrap_or_else(|e| panic!("{e}: {quiet:?}"));
        assert!(v["workspaces"]["default"].as_u64().unwrap() > 0, "{v}");
    }
}

/// Bullet 2: `sample -o FILE` says what it wrote, in text and in JSON.
#[test]
fn sample_to_a_file_says_what_it_wrote() {
    let s = Scratch::new();
    let path = s.path("s.jsonl");
    let out = s.run(&["sample", "--per-plugin", "10", "--plugins", "cost,drift", "-o", path.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let lines = std::fs::read_to_string(&path).unwrap().lines().count();
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(stdout.contains(&format!("wrote {lines} records to {}", path.display())), "{stdout}");
    assert!(stdout.contains(" B)") || stdout.contains("KiB)"), "size: {stdout}");
    assert!(stdout.lines().any(|l| l.trim_start().starts_with("cost") && l.contains("10 predictions")), "{stdout}");

    let (code, v) = s.json(&["sample", "--per-plugin", "10", "--plugins", "cost,drift", "-o", path.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert_eq!(v["records"].as_u64(), Some(lines as u64), "{v}");
    assert_eq!(v["bytes"].as_u64(), Some(size), "{v}");
    assert_eq!(v["file"].as_str(), path.to_str());
    assert_eq!(v["plugins"]["cost"]["predictions"].as_u64(), Some(10), "{v}");
    let outcomes =
        v["plugins"]["cost"]["outcomes"].as_u64().unwrap() + v["plugins"]["drift"]["outcomes"].as_u64().unwrap();
    assert_eq!(outcomes + 20, lines as u64, "{v}");

    // To stdout the events are the output: nothing else is printed.
    let out = s.run(&["sample", "--per-plugin", "3", "--plugins", "cost"]);
    let stdout = text(&out).0;
    assert!(stdout.lines().all(|l| serde_json::from_str::<Value>(l).is_ok()), "{stdout}");
}

/// The subcommand names listed under "Commands:" in a `--help` text.
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

/// Bullet 3a: every `--limit` of every command has the same default.
#[test]
fn every_limit_has_the_same_default() {
    let s = Scratch::new();
    let mut with_limit = Vec::new();
    let mut todo: Vec<Vec<String>> = vec![Vec::new()];
    while let Some(path) = todo.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let out = s.run(&args);
        let help = text(&out).0;
        for c in subcommands(&help) {
            let mut p = path.clone();
            p.push(c);
            todo.push(p);
        }
        if let Some(line) = help.lines().find(|l| l.trim_start().starts_with("--limit")) {
            // The default is on the option's line or in its description below.
            let rest: String = help.split(line).nth(1).unwrap_or("").lines().take(3).collect();
            with_limit.push((path.join(" "), format!("{line}{rest}")));
        }
    }
    assert!(with_limit.len() >= 2, "found --limit on {with_limit:?}");
    for (cmd, text) in &with_limit {
        assert!(text.contains("[default: 100]"), "`learnloop {cmd} --limit` does not default to 100: {text}");
    }
}

/// Bullet 3b: what was wrong, in plain words naming the field, on every
/// path that deserialises input: JSONL lines, CSV cells, config values,
/// plugin config sections and route bodies.
#[test]
fn messages_name_the_field_in_plain_words() {
    let s = Scratch::new();
    let base = r#""type":"prediction","plugin":"drift","subject":"m","kind":"regression""#;
    let lines = [
        format!(r#"{{{base},"id":"a","value":{{}}}}"#),
        format!(r#"{{{base},"id":"b","confidence":"high"}}"#),
        format!(r#"{{{base},"id":"c","features":[1]}}"#),
        format!(r#"{{{base},"id":"d","vaule":1}}"#),
        r#"{"type":"outcome","id":"e","plugin":"drift","prediction_id":"a","success":"yes"}"#.to_string(),
    ];
    let file = s.write("bad.jsonl", &(lines.join("\n") + "\n"));
    let (code, v) = s.json(&["ingest", file.to_str().unwrap()]);
    assert_eq!(code, 2, "{v}");
    let got: Vec<(u64, String, String)> = v["rejections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (r["line"].as_u64().unwrap(), r["field"].as_str().unwrap().into(), r["reason"].as_str().unwrap().into())
        })
        .collect();
    let want = [
        (1, "value", "expected a number, got an object"),
        (2, "confidence", "expected a number, got the string \"high\""),
        (3, "features", "expected an object, got an array"),
        (4, "vaule", "unknown field \"vaule\""),
        (5, "success", "expected true or false, got the string \"yes\""),
    ];
    assert_eq!(got.len(), want.len(), "{got:?}");
    for ((line, field, reason), (wl, wf, wr)) in got.iter().zip(want) {
        assert_eq!((*line, field.as_str()), (wl, wf), "{got:?}");
        assert!(reason.contains(wr), "line {line}: {reason:?} lacks {wr:?}");
    }
    let all = format!("{v}");
    for internal in ["invalid type", "f64", "struct ", "map,", "sequence", "`"] {
        assert!(!all.contains(internal), "serde internals ({internal:?}) in {all}");
    }
    // The text output names line and field too.
    let out = s.run(&["ingest", file.to_str().unwrap()]);
    assert!(text(&out).0.contains("bad.jsonl:1 (id a): value: expected a number, got an object"), "{}", text(&out).0);

    // A CSV JSON column.
    let csv =
        s.write("bad.csv", "type,id,plugin,subject,kind,value,features\nprediction,f,drift,m,regression,1,\"[1,2]\"\n");
    let (_, v) = s.json(&["ingest", csv.to_str().unwrap()]);
    let r = &v["rejections"][0];
    assert_eq!(r["field"].as_str(), Some("features"), "{v}");

    // Config values and plugin config sections.
    let cfg = s.write("bad.toml", "[improvements]\nmin_gain = \"lots\"\n");
    let out = s.run(&["--config", cfg.to_str().unwrap(), "stats"]);
    let err = text(&out).1;
    assert!(
        !out.status.success() && err.contains("min_gain") && err.contains("expected a number, got the string \"lots\""),
        "{err}"
    );
    assert!(!err.contains("invalid type") && !err.contains("f64"), "{err}");
    let cfg = s.write("bad-plugin.toml", "[drift]\np_value = \"small\"\n");
    let out = s.run(&["--config", cfg.to_str().unwrap(), "plugins", "list"]);
    let all = format!("{}{}", text(&out).0, text(&out).1);
    assert!(all.contains("p_value") && all.contains("expected a number, got the string \"small\""), "{all}");
    assert!(!all.contains("invalid type") && !all.contains("f64"), "{all}");

    // A route body.
    let out = s.run(&[
        "call",
        "cost",
        "POST",
        "/assess",
        "--body",
        r#"{"recommendation_type":"x","resource_type":"ec2","region":"r","predicted_savings":{}}"#,
    ]);
    let err = text(&out).1;
    assert!(
        !out.status.success() && err.contains("predicted_savings") && err.contains("expected a number, got an object"),
        "{err}"
    );
    assert!(!err.contains("invalid type") && !err.contains("f64"), "{err}");
}

/// The improvements the quickstart printed: (id, status word) from its
/// `#ID plugin/target vN STATUS: ...` lines.
fn shown_improvements(text: &str) -> Vec<(u64, String)> {
    text.lines()
        .filter_map(|l| l.strip_prefix('#'))
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let id = words.next()?.parse().ok()?;
            let status = words.nth(2)?.trim_end_matches(':').to_string();
            Some((id, status))
        })
        .collect()
}

/// Bullet 4: the quickstart reads well in 80-120 columns (no raw JSON), has
/// `--json`, uses the status words `improvements list --status` takes, and
/// a second run stores nothing new.
#[test]
fn quickstart_is_readable_consistent_and_idempotent() {
    let s = Scratch::new();
    let out = s.run(&["quickstart"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    for line in stdout.lines() {
        assert!(line.chars().count() <= 120, "{} columns: {line}", line.chars().count());
        assert!(!line.contains("{\"") && !line.contains("\":"), "raw JSON: {line}");
    }
    let shown = shown_improvements(&stdout);
    assert!(!shown.is_empty(), "{stdout}");
    for (id, status) in &shown {
        let (code, v) = s.json(&["improvements", "list", "--status", status]);
        assert_eq!(code, 0, "`improvements list --status {status}` refused: {v}");
        let ids: Vec<u64> = v["improvements"].as_array().unwrap().iter().map(|i| i["id"].as_u64().unwrap()).collect();
        assert!(ids.contains(id), "#{id} shown as {status} is not in --status {status}: {ids:?}");
    }
    // The lifecycle's own word for a backtested improvement waiting for a person.
    let (code, held) = s.json(&["improvements", "list", "--status", "held"]);
    let (_, backtested) = s.json(&["improvements", "list", "--status", "backtested"]);
    assert_eq!((code, &held), (0, &backtested));

    let stats = s.json(&["stats"]).1;
    let improvements = s.json(&["improvements", "list"]).1;
    let alerts = s.sql("SELECT count(*), CAST(sum(occurrences) AS BIGINT) FROM alerts");
    let insights = s.sql("SELECT count(*) FROM insights");
    const STATE: &str =
        "SELECT count(*), CAST(sum(version) AS BIGINT), CAST(max(updated_at) AS BIGINT) FROM plugin_state";
    let state = s.sql(STATE);
    let runs = s.sql("SELECT count(*) FROM job_runs");
    let out = s.run(&["quickstart"]);
    assert!(out.status.success(), "{}", text(&out).1);
    assert_eq!(s.json(&["stats"]).1, stats, "a second quickstart changed the counts");
    assert_eq!(s.json(&["improvements", "list"]).1, improvements, "a second quickstart proposed again");
    assert_eq!(
        s.sql("SELECT count(*), CAST(sum(occurrences) AS BIGINT) FROM alerts"),
        alerts,
        "a second quickstart raised alerts again"
    );
    assert_eq!(s.sql("SELECT count(*) FROM insights"), insights, "a second quickstart stored insights again");
    assert_eq!(s.sql(STATE), state, "a second quickstart wrote plugin state");
    assert_eq!(s.sql("SELECT count(*) FROM job_runs"), runs, "a second quickstart ran its jobs again");
    // The second run shows the same improvements with the same words.
    assert_eq!(shown_improvements(&text(&out).0), shown, "{}", text(&out).0);

    // --json: one document, nothing else on stdout.
    let (code, v) = s.json(&["quickstart"]);
    assert_eq!(code, 0);
    for key in ["sample", "ingests", "counts", "jobs", "improvements", "alerts"] {
        assert!(!v[key].is_null(), "--json lacks {key}: {v}");
    }
    assert_eq!(v["ingests"][1]["accepted"].as_u64(), Some(0), "{}", v["ingests"]);
}
