//! Benchmark: SQLite vs PostgreSQL, side by side, through the real
//! `learnloop` binary: batch ingest (events/s) and a learning cycle over
//! the same history (the drift plugin: rebuilding its state from every
//! event with `replay`, then its daily job).
//!
//! `LEARNLOOP_BENCH_PG_URL=postgres://postgres@127.0.0.1:5432/test cargo bench -p learnloop-cli --bench backends`
//! (default 1,000,000 outcomes, and as many predictions; each run works in a
//! fresh schema, dropped afterwards). `LEARNLOOP_BENCH_ROWS=100000` for a
//! quicker run. Without a PostgreSQL URL only SQLite is measured.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use learnloop_store::pg_test::TestSchema;

fn learnloop(dir: &Path, store_url: Option<&str>, args: &[&str]) -> (serde_json::Value, f64) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_learnloop"));
    cmd.args(["--data-dir", dir.join("data").to_str().unwrap(), "--json"]).args(args).env_remove("LEARNLOOP_CONFIG");
    if let Some(url) = store_url {
        cmd.env("LEARNLOOP__STORE__URL", url);
    }
    let started = Instant::now();
    let out = cmd.output().expect("run learnloop");
    let secs = started.elapsed().as_secs_f64();
    assert!(out.status.success(), "learnloop {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    (serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null), secs)
}

struct Numbers {
    predictions_per_s: f64,
    outcomes_per_s: f64,
    online_learn_s: f64,
    replay_s: f64,
    job_s: f64,
}

fn measure(files: &Path, store_url: Option<&str>, rows: u64) -> Numbers {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (p, _) = learnloop(d, store_url, &["ingest", files.join("predictions.jsonl").to_str().unwrap()]);
    let (o, _) = learnloop(d, store_url, &["ingest", files.join("outcomes.jsonl").to_str().unwrap()]);
    assert_eq!(o["accepted"].as_u64(), Some(rows), "every outcome landed");
    let (r, replay_s) = learnloop(d, store_url, &["replay", "--plugin", "drift"]);
    assert!(r["workspaces"].as_object().is_some_and(|w| !w.is_empty()), "replay found events: {r}");
    let (_, job_s) = learnloop(d, store_url, &["jobs", "run", "drift", "daily"]);
    Numbers {
        predictions_per_s: p["rows_per_second"].as_f64().unwrap(),
        outcomes_per_s: o["rows_per_second"].as_f64().unwrap(),
        online_learn_s: o["learn_seconds"].as_f64().unwrap_or(0.0),
        replay_s,
        job_s,
    }
}

fn main() {
    let rows: u64 = std::env::var("LEARNLOOP_BENCH_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let pg = std::env::var("LEARNLOOP_BENCH_PG_URL").ok().filter(|u| !u.is_empty());
    let files = tempfile::tempdir().unwrap();
    let n = rows.to_string();
    for (only, name) in [("prediction", "predictions.jsonl"), ("outcome", "outcomes.jsonl")] {
        let path = files.path().join(name);
        learnloop(
            files.path(),
            None,
            &[
                "sample",
                "--plugins",
                "drift",
                "--per-plugin",
                &n,
                "--outcome-rate",
                "1",
                "--only",
                only,
                "-o",
                path.to_str().unwrap(),
            ],
        );
    }
    println!("backends benchmark: {rows} predictions, then {rows} outcomes (drift), CLI ingest; then a learning cycle");
    let sqlite = measure(files.path(), None, rows);
    let postgres = pg.as_deref().map(|url| {
        let schema = TestSchema::create(url);
        measure(files.path(), Some(schema.url()), rows)
    });
    let cell = |f: fn(&Numbers) -> f64, unit: &str| {
        (
            format!("{:.1}{unit}", f(&sqlite)),
            postgres.as_ref().map_or("(no LEARNLOOP_BENCH_PG_URL)".to_string(), |p| format!("{:.1}{unit}", f(p))),
        )
    };
    println!("{:44} {:>16} {:>28}", "", "sqlite", "postgres");
    for (label, (a, b)) in [
        ("ingest predictions (events/s)", cell(|n| n.predictions_per_s, "")),
        ("ingest outcomes (events/s)", cell(|n| n.outcomes_per_s, "")),
        ("  of which online learning (s)", cell(|n| n.online_learn_s, " s")),
        ("learning cycle: replay drift, all events (s)", cell(|n| n.replay_s, " s")),
        ("learning cycle: drift.daily job (s)", cell(|n| n.job_s, " s")),
    ] {
        println!("{label:44} {a:>16} {b:>28}");
    }
}
