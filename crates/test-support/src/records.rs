//! Sample records for tests of the host and the built-in plugins.

use learnloop_core::{Record, RecordDefaults, parse_json_record};

/// Parses a JSON record; panics naming the record when it is invalid.
pub fn rec(json: &str) -> Record {
    parse_json_record(json, &RecordDefaults::default()).unwrap_or_else(|e| panic!("bad test record {json}: {e}"))
}

/// Deterministic, valid records for a built-in plugin in two workspaces.
pub fn sample_records(plugin: &str, n: usize) -> Vec<Record> {
    let mut out = Vec::new();
    for ws in ["alpha", "beta"] {
        for i in 0..n {
            let subject = format!("s{}", i % 3);
            let kind = ["k1", "k2"][i % 2];
            let extra = match plugin {
                "cost" => format!(r#","value":{},"payload":{{"resource_type":"ec2","region":"r{}"}}"#, 10 + i, i % 2),
                "drift" => format!(r#","value":{}"#, 10 + i),
                _ => String::new(),
            };
            out.push(rec(&format!(
                r#"{{"type":"prediction","id":"p{i}","workspace":"{ws}","plugin":"{plugin}","subject":"{subject}","kind":"{kind}","confidence":0.5{extra},"event_time":"2026-01-01T00:00:{:02}Z"}}"#,
                i % 60
            )));
            if i % 4 != 3 {
                let outcome_extra = match plugin {
                    "trust" => r#","label":"approved""#.to_string(),
                    _ => format!(r#","value":{}"#, 9 + i),
                };
                out.push(rec(&format!(
                    r#"{{"type":"outcome","id":"o{i}","workspace":"{ws}","plugin":"{plugin}","prediction_id":"p{i}","success":{}{outcome_extra}}}"#,
                    i % 5 != 0
                )));
            }
        }
    }
    out
}
