//! The host's plugin conformance suite on the drift plugin (static build),
//! twice on fresh stores at different wall-clock times: the snapshots
//! (state, job reports, GET routes) must be equal, so nothing wall-clock
//! dependent leaks into them. (crates/plugin-host's test also compares the
//! cdylib build.)

use learnloop_core::{Record, parse_json_record};
use learnloop_store::SqliteOptions;
use learnloop_test_support::plugin_conformance as conformance;
use learnloop_test_support::{host::host_on, store::test_store};

fn records() -> Vec<Record> {
    let mut out = Vec::new();
    for i in 0..60 {
        let f = format!(r#"{{"x":{},"c":"{}"}}"#, (i * 37 % 11) as f64 / 3.0, ["a", "b", "c"][i % 3]);
        out.push(format!(r#"{{"type":"prediction","id":"p{i}","workspace":"alpha","plugin":"drift","subject":"m{}","kind":"regression","value":{},"features":{f},"payload":{{"model_version":"v{}"}},"event_time":"2026-01-{:02}T00:00:00Z"}}"#, i % 2, 10 + i % 7, i % 2, 1 + i % 28));
        if i % 4 != 3 {
            // No event time: the store stamps the wall clock.
            out.push(format!(r#"{{"type":"outcome","id":"o{i}","workspace":"alpha","plugin":"drift","prediction_id":"p{i}","value":{}}}"#, 9 + i % 5));
        }
    }
    out.iter().map(|s| parse_json_record(s, &Default::default()).unwrap()).collect()
}

fn run() -> conformance::Snapshot {
    let dir = tempfile::tempdir().unwrap();
    let host = host_on(test_store(dir.path(), &SqliteOptions::default()), dir.path(), "drift", "");
    conformance::check(&host, "drift", &records()).unwrap()
}

#[test]
fn conformance_is_deterministic() {
    let a = run();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let b = run();
    assert_eq!(a, b);
    assert!(a.jobs["daily"]["workspaces"]["alpha"]["totals"]["models"] == 2, "{:#}", a.jobs["daily"]);
}
