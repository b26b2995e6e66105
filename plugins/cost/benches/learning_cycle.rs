//! The cost plugin's learning cycle over LEARNLOOP_BENCH_ROWS (default
//! 1,000,000) executed recommendations with measured savings, stored in a
//! real SQLite store: prints the time and peak RSS of the online update
//! (catch-up over 2M events), the `learning_cycle` job and `POST /assess`
//! (mean over 1,000 calls, no vector index).
//!
//! The history spans the 13 months before now and is ingested now, as a
//! real installation's would be: the job's proposals are then monitored on
//! outcomes received after they were applied (none yet), not on the whole
//! history (which an ingestion time later than the job would make them).
//!
//! `cargo bench -p learnloop-plugin-cost --bench learning_cycle`

use std::collections::BTreeMap;
use std::time::Instant;

use learnloop_core::{Record, Timestamp, WorkspaceId, parse_json_record};
use learnloop_stats::SplitMix64;
use learnloop_store::AppendMode;
use serde_json::{Value, json};

const DAY: i64 = 86_400_000_000;

fn rss(field: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with(field)).map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
        })
        .unwrap_or_else(|| "?".into())
}

fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let t = Instant::now();
    let v = f();
    println!("{what}: {:.2} s, peak RSS {} (current {})", t.elapsed().as_secs_f64(), rss("VmHWM"), rss("VmRSS"));
    v
}

fn main() {
    let n: usize = std::env::var("LEARNLOOP_BENCH_ROWS").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let store = learnloop_test_support::store::bench_store(dir.path());
    let host = learnloop_test_support::host::host_on(store.clone(), dir.path(), "cost", "");

    let types =
        ["rightsizing", "spot_instances", "reserved_instances", "storage_tiering", "idle_cleanup", "savings_plan"];
    let regions = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-south-1"];
    let resources = ["ec2", "rds", "ebs", "s3", "lambda", "eks"];
    let mut rng = SplitMix64::new(42);
    let at = |us: i64| Timestamp::from_micros(us).unwrap().to_rfc3339();
    let t0 = Timestamp::now().as_micros() - 400 * DAY;
    let t = Instant::now();
    let (mut preds, mut outs): (Vec<Record>, Vec<Record>) = (Vec::new(), Vec::new());
    for i in 0..n {
        let (k, r, s) = ((rng.next_u64() % 6) as usize, (rng.next_u64() % 5) as usize, (rng.next_u64() % 6) as usize);
        let predicted = 50.0 + 1950.0 * rng.uniform();
        let bias = (0.6 + 0.1 * k as f64) * (1.0 - 0.05 * r as f64);
        let ok = rng.uniform() > 0.1;
        let when = t0 + (i as i64) * 365 * DAY / n as i64;
        let id = format!("r{i}");
        preds.push(
            parse_json_record(
                &json!({"type": "prediction", "id": id, "workspace": "w", "plugin": "cost",
            "subject": format!("res-{}", i % 50_000), "kind": types[k], "value": predicted, "confidence": 0.8,
            "features": {"utilization_gap": rng.uniform(), "age": rng.uniform()},
            "payload": {"resource_type": resources[s], "region": regions[r], "risk_level": "medium"},
            "event_time": at(when)})
                .to_string(),
                &Default::default(),
            )
            .unwrap(),
        );
        outs.push(parse_json_record(&json!({"type": "outcome", "id": format!("{id}-o"), "workspace": "w", "plugin": "cost",
            "prediction_id": id, "success": ok, "value": if ok { predicted * bias * (0.1 * rng.normal()).exp() } else { 0.0 },
            "payload": {"execution_duration_seconds": 60.0, "issues_encountered": if ok { vec![] } else { vec!["timeout"] }},
            "event_time": at(when + 31 * DAY)}).to_string(), &Default::default()).unwrap());
        if preds.len() == 10_000 || i == n - 1 {
            let now = Timestamp::now();
            store.append(&preds, AppendMode::AllOrNothing, now).unwrap();
            store.append(&outs, AppendMode::AllOrNothing, now).unwrap();
            preds.clear();
            outs.clear();
        }
    }
    println!("stored {n} recommendations + {n} outcomes in {:.1} s", t.elapsed().as_secs_f64());
    timed("online update (catch-up over all events)", || host.catch_up_all().unwrap());
    let run = timed("learning_cycle job", || host.run_job("cost", "learning_cycle", "bench", None, 1).unwrap());
    let r = &run.report.unwrap()["workspaces"]["w"];
    println!("  measured {}, backtest {}, applied {}", r["measured"], r["backtest"], r["applied"]);
    let ws = WorkspaceId::parse("", "w").unwrap();
    let t = Instant::now();
    for i in 0..1000 {
        let body = json!({"recommendation_type": types[i % 6], "resource_type": resources[i % 6], "region": regions[i % 5],
            "predicted_savings": 500.0, "similar_cases": 0});
        let v: Value = host.handle("cost", &ws, "POST", "/assess", BTreeMap::new(), body).unwrap().body;
        assert!(v["calibrated_savings"].is_number());
    }
    println!("POST /assess (no similar cases): {:.3} ms mean over 1000 calls", t.elapsed().as_secs_f64());
}
