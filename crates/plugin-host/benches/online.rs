//! Benchmark: what the C ABI costs. Online-update throughput (catch-up over
//! stored events) and per-record validation through the statically linked
//! and the dynamically loaded build of the same plugin (drift).
//!
//! `cargo bench -p learnloop-plugin-host --bench online`
//! (`LEARNLOOP_BENCH_EVENTS=N`, default 200,000).

use std::sync::Arc;
use std::time::Instant;

use learnloop_config::Config;
use learnloop_core::Timestamp;
use learnloop_plugin_host::PluginHost;
use learnloop_store::{AppendMode, SqliteOptions, SqliteStore, Store};
use learnloop_test_support::cdylib as support;

fn records(n: usize) -> Vec<learnloop_core::Record> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n / 2 {
        let p = format!(
            r#"{{"type":"prediction","id":"p{i}","workspace":"w","plugin":"drift","subject":"m{}","kind":"regression","value":{i},"features":{{"x":{}}}}}"#,
            i % 10,
            i % 97
        );
        let o = format!(
            r#"{{"type":"outcome","id":"o{i}","workspace":"w","plugin":"drift","prediction_id":"p{i}","value":{}}}"#,
            i + 1
        );
        for line in [p, o] {
            out.push(learnloop_core::parse_json_record(&line, &Default::default()).unwrap());
        }
    }
    out
}

fn host(dir: &std::path::Path, plugin_dir: &std::path::Path, events: &[learnloop_core::Record]) -> PluginHost {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.join("s.sqlite"), &SqliteOptions::default()).unwrap());
    for chunk in events.chunks(20_000) {
        store.append(chunk, AppendMode::AllOrNothing, Timestamp::now()).unwrap();
    }
    let mut c = Config::default();
    c.plugins.dir = plugin_dir.to_owned();
    c.plugins.enabled = vec!["drift".into()];
    let h = PluginHost::load(&c, store);
    assert!(h.load_errors.is_empty(), "{:?}", h.load_errors);
    h
}

fn measure(label: &str, h: &PluginHost, events: &[learnloop_core::Record]) -> (f64, f64) {
    let t = Instant::now();
    let n = h.catch_up_all().unwrap();
    let online = n as f64 / t.elapsed().as_secs_f64();
    assert_eq!(n as usize, events.len());
    let t = Instant::now();
    for r in events {
        h.validate(r).unwrap();
    }
    let validate = events.len() as f64 / t.elapsed().as_secs_f64();
    println!("{label:8} online update {online:>10.0} events/s | validate {validate:>10.0} records/s");
    (online, validate)
}

fn main() {
    let n: usize = std::env::var("LEARNLOOP_BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(200_000);
    let events = records(n);
    println!("plugin ABI benchmark: drift plugin, {n} stored events, catch-up in batches, fsync per commit");
    let d1 = tempfile::tempdir().unwrap();
    let (s_on, s_val) = measure("static", &host(d1.path(), &d1.path().join("none"), &events), &events);
    let lib = support::build_cdylib("learnloop-plugin-drift", &["dynamic"]);
    let d2 = tempfile::tempdir().unwrap();
    let plugins = d2.path().join("plugins");
    support::install(&lib, &plugins, "drift");
    let (d_on, d_val) = measure("dynamic", &host(d2.path(), &plugins, &events), &events);
    println!(
        "dynamic/static: online update {:.2}x, validate {:.2}x (per validate call the ABI adds {:.2} µs)",
        d_on / s_on,
        d_val / s_val,
        (1.0 / d_val - 1.0 / s_val) * 1e6
    );
}
