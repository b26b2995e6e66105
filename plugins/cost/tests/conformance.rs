//! The host's plugin conformance suite on the cost plugin (static build),
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
    for i in 0..80 {
        let kind = ["rightsizing", "spot_instances"][i % 2];
        out.push(format!(
            r#"{{"type":"prediction","id":"p{i}","workspace":"alpha","plugin":"cost","subject":"i-{i}","kind":"{kind}","value":{},"features":{{"gap":{}}},"payload":{{"resource_type":"{}","region":"{}"}},"event_time":"2026-01-{:02}T00:00:00Z"}}"#,
            100 + i * 7,
            (i % 10) as f64 / 10.0,
            ["ec2", "rds"][i % 3 % 2],
            ["us-east-1", "eu-west-1"][i % 5 % 2],
            1 + i % 28
        ));
        if i % 4 != 3 {
            // No event time: the store stamps the wall clock, which must not leak into state.
            out.push(format!(
                r#"{{"type":"outcome","id":"o{i}","workspace":"alpha","plugin":"cost","prediction_id":"p{i}","success":{},"value":{},"payload":{{"issues_encountered":["{}"]}}}}"#,
                i % 5 != 0,
                (100 + i * 7) as f64 * 0.8,
                if i % 5 == 0 { "timeout" } else { "none" }
            ));
        }
    }
    out.iter().map(|s| parse_json_record(s, &Default::default()).unwrap()).collect()
}

fn run() -> conformance::Snapshot {
    let dir = tempfile::tempdir().unwrap();
    let host = host_on(test_store(dir.path(), &SqliteOptions::default()), dir.path(), "cost", "");
    conformance::check(&host, "cost", &records()).unwrap()
}

#[test]
fn conformance_is_deterministic() {
    let a = run();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let b = run();
    assert_eq!(a, b);
    let report = &a.jobs["learning_cycle"]["workspaces"]["alpha"];
    assert_eq!(report["recommendations"], 80, "{report:#}");
    assert_eq!(report["proposed"], serde_json::json!(["calibration", "risk_levels", "scoring_weights"]), "{report:#}");
}
