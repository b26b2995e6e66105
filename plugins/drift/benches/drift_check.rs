//! Drift check over LEARNLOOP_BENCH_ROWS (default 1,000,000) reference and as
//! many current predictions of one model, 10 numeric + 2 categorical
//! features, stored in a real SQLite store; the timed part is the
//! `GET /models/{model}/drift` route (columnar reads, KS/chi-square/PSI/
//! Wasserstein per feature, BH). Prints the time and the peak RSS of the
//! check (VmHWM reset before it through /proc/self/clear_refs).
//!
//! Predictions only (no outcomes): concept drift is skipped for lack of
//! errors; `max_pending = 0` so the online update writes no pending documents.

use std::collections::BTreeMap;
use std::time::Instant;

use learnloop_core::{Record, Timestamp, WorkspaceId, parse_json_record};
use learnloop_store::{AppendMode, ColumnSpec};
use serde_json::{Value, json};

const DAY: i64 = 86_400_000_000;
const T0: i64 = 1_767_225_600_000_000;

fn rss(field: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with(field)).map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
        })
        .unwrap_or_else(|| "?".into())
}

fn main() {
    let n: usize = std::env::var("LEARNLOOP_BENCH_ROWS").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let store = learnloop_test_support::store::bench_store(dir.path());
    let host = learnloop_test_support::host::host_on(store.clone(), dir.path(), "drift", "max_pending = 0");

    let t = Instant::now();
    let mut state = 42u64;
    let mut u = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (((z ^ (z >> 31)) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    let mut batch: Vec<Record> = Vec::with_capacity(10_000);
    for i in 0..2 * n {
        let current = i >= n;
        let ts = if current {
            T0 + 30 * DAY + ((i - n) as i64) * 7 * DAY / n as i64
        } else {
            T0 + (i as i64) * 30 * DAY / n as i64
        };
        let mut f = serde_json::Map::new();
        for k in 0..10 {
            let shift = if current && k == 0 { 0.3 } else { 0.0 };
            f.insert(format!("x{k}"), json!(u() + shift));
        }
        f.insert("channel".into(), json!(["search", "social", "email"][(u() * 3.0) as usize]));
        f.insert("region".into(), json!(["eu", "us", "apac", "latam"][(u() * 4.0) as usize]));
        let r = json!({"type": "prediction", "id": format!("p{i}"), "workspace": "w", "plugin": "drift", "subject": "m",
            "kind": "regression", "value": u() * 10.0, "features": f,
            "event_time": Timestamp::from_micros(ts).unwrap().to_rfc3339()});
        batch.push(parse_json_record(&r.to_string(), &Default::default()).unwrap());
        if batch.len() == 10_000 || i == 2 * n - 1 {
            store.append(&batch, AppendMode::AllOrNothing, Timestamp::from_micros(T0 + 40 * DAY).unwrap()).unwrap();
            batch.clear();
        }
    }
    println!("stored {} predictions in {:.1} s", 2 * n, t.elapsed().as_secs_f64());
    let t = Instant::now();
    host.catch_up_all().unwrap();
    println!("online update (catch-up) in {:.1} s", t.elapsed().as_secs_f64());

    // For comparison: the store's own columnar read of the same rows (what
    // the check reads), untouched by the plugin.
    let t = Instant::now();
    // Same filters as the plugin's reads (the host adds workspace and plugin, which the index needs).
    let mut q = learnloop_core::history::EventQuery {
        workspace: Some(WorkspaceId::parse("", "w").unwrap()),
        plugin: Some(learnloop_core::PluginName::parse("plugin", "drift").unwrap()),
        subject: Some("m".into()),
        order: learnloop_core::history::Order::EventTime,
        limit: ColumnSpec::MAX_ROWS,
        ..Default::default()
    };
    let spec = ColumnSpec { payload: vec!["model_version".into()], first_outcome: true };
    let mut read = 0usize;
    loop {
        let page = store.prediction_columns(&q, &spec).unwrap();
        read += page.n;
        match page.next {
            Some(c) => q.after = Some(c),
            None => break,
        }
    }
    println!("store columnar read alone: {read} rows in {:.2} s", t.elapsed().as_secs_f64());

    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = rss("VmRSS:");
    let ws = WorkspaceId::parse("", "w").unwrap();
    let t = Instant::now();
    let r = host.handle("drift", &ws, "GET", "/models/m/drift", BTreeMap::new(), Value::Null).unwrap();
    let secs = t.elapsed().as_secs_f64();
    let b = r.body;
    println!(
        "drift check: {n} reference + {n} current rows, 12 features: {secs:.2} s, peak RSS {} (RSS before {before})",
        rss("VmHWM:")
    );
    println!(
        "severity {}, affected features {}, reference {} / current {} rows",
        b["severity"],
        b["feature_drift"]["affected_features"],
        b["reference"]["predictions"],
        b["current"]["predictions"]
    );
}
