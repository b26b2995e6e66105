//! Benchmark: CLI ingest of outcome rows from JSONL into the embedded store.
//!
//! Runs the real `learnloop` binary, as a user would, on generated files:
//! first the predictions (so outcomes find them), then the timed outcome file.
//! Prints rows/s and the ingest process's peak RSS for two file sizes, so
//! that memory not growing with the file is visible in the numbers.
//!
//! `cargo bench -p learnloop-cli --bench ingest` (default 1,000,000 rows);
//! `LEARNLOOP_BENCH_ROWS=200000` for a quicker run.

use std::path::Path;
use std::process::Command;

fn learnloop(dir: &Path, args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_learnloop"))
        .args(["--data-dir", dir.join("data").to_str().unwrap(), "--json"])
        .args(args)
        .output()
        .expect("run learnloop");
    assert!(out.status.success(), "learnloop {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
}

fn run(rows: u64) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let n = rows.to_string();
    let preds = d.join("predictions.jsonl");
    let outs = d.join("outcomes.jsonl");
    for (only, path) in [("prediction", &preds), ("outcome", &outs)] {
        learnloop(
            d,
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
    let size = std::fs::metadata(&outs).unwrap().len();
    let p = learnloop(d, &["ingest", preds.to_str().unwrap()]);
    let o = learnloop(d, &["ingest", outs.to_str().unwrap()]);
    let again = learnloop(d, &["ingest", outs.to_str().unwrap()]);
    let mib = |v: &serde_json::Value| v["peak_rss_bytes"].as_f64().unwrap_or(0.0) / (1024.0 * 1024.0);
    println!(
        "{rows:>9} outcome rows ({:>5.0} MiB JSONL): {:>8.0} rows/s, {:>5.2} s (+{:.2} s online update), peak RSS {:>6.1} MiB | predictions first: {:>8.0} rows/s | re-ingest (all duplicates): {:>8.0} rows/s",
        size as f64 / (1024.0 * 1024.0),
        o["rows_per_second"].as_f64().unwrap(),
        o["seconds"].as_f64().unwrap(),
        o["learn_seconds"].as_f64().unwrap(),
        mib(&o),
        p["rows_per_second"].as_f64().unwrap(),
        again["rows_per_second"].as_f64().unwrap(),
    );
    assert_eq!(o["accepted"].as_u64(), Some(rows), "every outcome landed");
    assert_eq!(again["duplicates"].as_u64(), Some(rows));
}

fn main() {
    let rows: u64 = std::env::var("LEARNLOOP_BENCH_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    println!("ingest benchmark (target: >= 100,000 rows/s; peak RSS should not grow with the file)");
    run(rows / 10);
    run(rows);
}
