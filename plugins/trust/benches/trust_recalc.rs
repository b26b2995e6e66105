//! Trust recalculation and pattern discovery over LEARNLOOP_BENCH_ROWS
//! (default 1,000,000) evaluated recommendations from LEARNLOOP_BENCH_AGENTS
//! (default 1,000) agents, 5 recommendation types, stored in a real SQLite
//! store (all within the 7-day lookback, so pattern discovery reads all of
//! them). Prints the time and peak RSS (VmHWM, reset through
//! /proc/self/clear_refs before each timed part) of: the online update
//! (catch-up over 2M events), the `trust_recalculation` job, the
//! `meta_learning` job (pattern discovery) and `GET /agents`.
//!
//! `cargo bench -p learnloop-plugin-trust --bench trust_recalc`

use std::collections::BTreeMap;
use std::time::Instant;

use learnloop_core::{Record, Timestamp, WorkspaceId, parse_json_record};
use learnloop_store::AppendMode;
use serde_json::{Value, json};

const HOUR: i64 = 3_600_000_000;
const T0: i64 = 1_767_225_600_000_000;

fn rss(field: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with(field)).map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
        })
        .unwrap_or_else(|| "?".into())
}

fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    reset_peak();
    let t = Instant::now();
    let v = f();
    println!("{what}: {:.2} s, peak RSS {} (current {})", t.elapsed().as_secs_f64(), rss("VmHWM"), rss("VmRSS"));
    v
}

fn main() {
    let n: usize = std::env::var("LEARNLOOP_BENCH_ROWS").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let agents: usize = std::env::var("LEARNLOOP_BENCH_AGENTS").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000);
    let dir = tempfile::tempdir().unwrap();
    let store = learnloop_test_support::store::bench_store(dir.path());
    let host = learnloop_test_support::host::host_on(store.clone(), dir.path(), "trust", "");

    let mut state = 42u64;
    let mut u = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (((z ^ (z >> 31)) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    let types = ["strategy", "content", "analytics", "pricing", "channel"];
    let t = Instant::now();
    let mut preds: Vec<Record> = Vec::with_capacity(10_000);
    let mut outs: Vec<Record> = Vec::with_capacity(10_000);
    let at = |us: i64| Timestamp::from_micros(us).unwrap().to_rfc3339();
    for i in 0..n {
        let a = i % agents;
        let k = (u() * 5.0) as usize;
        let p = 0.3 + 0.6 * (a as f64 / agents as f64) + if k == a % 5 { 0.1 } else { 0.0 };
        let approved = u() < p.min(0.98);
        let when = T0 + (i as i64) * 6 * 24 * HOUR / n as i64;
        let id = format!("r{i}");
        preds.push(parse_json_record(&json!({"type": "prediction", "id": id, "workspace": "w", "plugin": "trust",
            "subject": format!("agent-{a}"), "kind": types[k], "confidence": u(), "label": format!("action {}", i % 5000),
            "payload": {"workflow_id": format!("wf-{}", i / 8), "agent_name": format!("Agent {a}")},
            "event_time": at(when)}).to_string(), &Default::default()).unwrap());
        outs.push(parse_json_record(&json!({"type": "outcome", "id": format!("{id}-e"), "workspace": "w", "plugin": "trust",
            "prediction_id": id, "label": if approved { "approved" } else { "rejected" }, "quality": if approved { 0.8 } else { 0.2 },
            "event_time": at(when + HOUR)}).to_string(), &Default::default()).unwrap());
        if preds.len() == 10_000 || i == n - 1 {
            let now = Timestamp::from_micros(T0 + 30 * 24 * HOUR).unwrap();
            store.append(&preds, AppendMode::AllOrNothing, now).unwrap();
            store.append(&outs, AppendMode::AllOrNothing, now).unwrap();
            preds.clear();
            outs.clear();
        }
    }
    println!("stored {n} recommendations + {n} evaluations from {agents} agents in {:.1} s", t.elapsed().as_secs_f64());
    timed("online update (catch-up over all events)", || host.catch_up_all().unwrap());
    let run =
        timed("trust_recalculation job", || host.run_job("trust", "trust_recalculation", "bench", None, 1).unwrap());
    let r = &run.report.unwrap()["workspaces"]["w"];
    println!("  agents {}, trusted {}", r["subjects"], r["trusted_agents"]);
    let run = timed("meta_learning job (pattern discovery)", || {
        host.run_job("trust", "meta_learning", "bench", None, 1).unwrap()
    });
    let r = &run.report.unwrap()["workspaces"]["w"];
    println!(
        "  samples {}, patterns {}, accuracy {}, coverage {}",
        r["samples_analyzed"], r["patterns_discovered"], r["iteration_accuracy"], r["coverage"]
    );
    let ws = WorkspaceId::parse("", "w").unwrap();
    let v: Value = timed("GET /agents", || {
        host.handle("trust", &ws, "GET", "/agents", BTreeMap::new(), Value::Null).unwrap().body
    });
    println!("  most trusted: {}", v["agents"][0]["agent_id"]);
}
