//! Malformed and foreign input, on the real binaries (issue #26, findings 6
//! and 7): a key given twice refuses its record on the API (one record and
//! batches) and in `learnloop ingest`; files from other systems (a UTF-8
//! byte-order mark, CRLF line ends, a JSON array) are read; a CSV record
//! whose quote never closes or that is too long costs that record only,
//! reported by its line, and every good row after it lands.
//!
//! Each test prints what it tried, stored and refused.

use std::io::Write;
use std::process::Stdio;

use learnloop_e2e::{Scratch, http, start_api};
use serde_json::Value;

fn prediction(id: &str) -> String {
    format!(r#"{{"type":"prediction","id":"{id}","plugin":"drift","subject":"m","kind":"regression","value":1}}"#)
}

/// Predictions and outcomes stored, from `learnloop stats`.
fn totals(s: &Scratch) -> (u64, u64) {
    let (_, v) = s.json(&["stats"]);
    (v["totals"]["predictions"].as_u64().unwrap_or(0), v["totals"]["outcomes"].as_u64().unwrap_or(0))
}

/// `(line, field, reason)` of each rejection of an ingest's JSON summary.
fn rejections(v: &Value) -> Vec<(u64, String, String)> {
    v["rejections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["line"].as_u64().unwrap(),
                r["field"].as_str().unwrap().to_string(),
                r["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn report(what: &str, v: &Value) {
    learnloop_e2e::report!("{what}: tried {}, stored {}, refused {}", v["read"], v["accepted"], v["rejected"]);
}

#[test]
fn the_api_refuses_a_record_with_a_repeated_key() {
    let s = Scratch::new();
    let (_api, addr) = start_api(&s, &["--data-dir", s.data_dir().to_str().unwrap(), "--bind", "127.0.0.1:0"]);
    let admin = std::fs::read_to_string(s.data_dir().join("admin.key")).unwrap().trim().to_string();
    let post = |path: &str, body: &str| http(&addr, "POST", path, Some(&admin), body);
    let path = "/api/v1/predictions?workspace=default";
    let mut tried = 0;

    // One record: 422 naming the key, top level and nested.
    for (body, field) in [
        (r#"{"id":"a","id":"b","plugin":"drift","subject":"m","kind":"regression"}"#, "id"),
        (r#"{"id":"c","plugin":"drift","plugin":"cost","subject":"m","kind":"regression"}"#, "plugin"),
        (
            r#"{"id":"d","plugin":"drift","subject":"m","kind":"regression","payload":{"region":"eu","region":"us"}}"#,
            "payload.region",
        ),
        (r#"{"id":"e","plugin":"drift","subject":"m","kind":"regression","features":{"x":1,"x":2}}"#, "features.x"),
    ] {
        tried += 1;
        let (st, b) = post(path, body);
        assert_eq!(st, 422, "{body}: {b}");
        let v: Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v["field"], field, "{b}");
        assert!(v["detail"].as_str().unwrap().contains("more than once"), "{b}");
    }
    // An outcome too.
    tried += 1;
    let (st, b) = post(
        "/api/v1/outcomes?workspace=default",
        r#"{"id":"o","plugin":"drift","prediction_id":"p","prediction_id":"q"}"#,
    );
    assert_eq!(st, 422, "{b}");
    assert!(b.contains("prediction_id"), "{b}");

    // A batch: the items with a repeated key are refused, the others stored.
    let batch = format!(
        "[{},{},{},{}]",
        prediction("b1"),
        r#"{"id":"b2","plugin":"drift","subject":"m","kind":"regression","payload":{"a":{"z":1,"z":1}}}"#,
        prediction("b3"),
        r#"{"id":"b4","id":"b5","plugin":"drift","subject":"m","kind":"regression"}"#,
    );
    tried += 4;
    let (st, b) = post(path, &batch);
    assert_eq!(st, 200, "{b}");
    let v: Value = serde_json::from_str(&b).unwrap();
    assert_eq!((v["inserted"].as_u64(), v["rejected"].as_u64()), (Some(2), Some(2)), "{b}");
    assert_eq!(v["results"][1]["field"], "payload.a.z", "{b}");
    assert_eq!(v["results"][3]["field"], "id", "{b}");
    assert_eq!(v["results"][0]["status"], "inserted", "{b}");

    // A plugin route's body: 422 naming the key, before the plugin sees it.
    let (st, b) = post(
        "/api/v1/cost/assess?workspace=default",
        r#"{"recommendation_type":"x","resource_type":"ec2","region":"r","region":"s","predicted_savings":1}"#,
    );
    assert_eq!(st, 422, "{b}");
    assert_eq!(serde_json::from_str::<Value>(&b).unwrap()["field"], "region", "{b}");

    // A byte-order mark is refused, saying so.
    tried += 1;
    let (st, b) = post(path, &format!("\u{feff}{}", prediction("bom")));
    assert_eq!(st, 400, "{b}");
    assert!(b.contains("byte-order mark"), "{b}");

    let stored = totals(&s);
    assert_eq!(stored, (2, 0));
    learnloop_e2e::report!("API: tried {tried} records, stored {}, refused {}", stored.0, tried - stored.0);
}

#[test]
fn ingest_refuses_a_record_with_a_repeated_key() {
    let s = Scratch::new();
    let lines = [
        prediction("p1"),
        r#"{"type":"prediction","id":"p2","id":"p3","plugin":"drift","subject":"m","kind":"regression"}"#.into(),
        r#"{"type":"prediction","id":"p4","plugin":"drift","plugin":"cost","subject":"m","kind":"regression"}"#.into(),
        r#"{"type":"prediction","id":"p5","plugin":"drift","subject":"m","kind":"regression","payload":{"region":"eu","region":"us"}}"#.into(),
        r#"{"type":"prediction","id":"p6","plugin":"drift","subject":"m","kind":"regression","features":{"f":1,"g":1,"f":1}}"#.into(),
        prediction("p7"),
    ];
    let file = s.write("dups.jsonl", &(lines.join("\n") + "\n"));
    let (code, v) = s.json(&["ingest", file.to_str().unwrap()]);
    report("JSONL with repeated keys", &v);
    assert_eq!(code, 2, "{v}");
    let r = rejections(&v);
    let fields: Vec<(u64, &str)> = r.iter().map(|(l, f, _)| (*l, f.as_str())).collect();
    assert_eq!(fields, [(2, "id"), (3, "plugin"), (4, "payload.region"), (5, "features.f")], "{v}");
    assert!(r.iter().all(|(_, _, why)| why.contains("more than once")), "{r:?}");
    assert_eq!(totals(&s), (2, 0));

    // The same as a JSON array, and through stdin.
    let array = s.write("dups.json", &format!("[\n{}\n]\n", lines.join(",\n")));
    let (_, v) = s.json(&["ingest", array.to_str().unwrap()]);
    report("JSON array with repeated keys", &v);
    assert_eq!(v["rejected"].as_u64(), Some(4), "{v}");
    assert_eq!(v["duplicates"].as_u64(), Some(2), "{v}");
    let mut child = s.cmd(&["--json", "ingest"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(lines[3].as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rejections(&v)[0].1, "payload.region", "{v}");

    // CSV: a JSON cell with a repeated key, and two columns setting one key.
    let csv = "type,id,plugin,subject,kind,value,payload,payload.region\n\
               prediction,c1,drift,m,regression,1,\"{\"\"a\"\":1,\"\"a\"\":2}\",\n\
               prediction,c2,drift,m,regression,1,\"{\"\"region\"\":\"\"eu\"\"}\",us\n\
               prediction,c3,drift,m,regression,1,,us\n";
    let file = s.write("dups.csv", csv);
    let (_, v) = s.json(&["ingest", file.to_str().unwrap()]);
    report("CSV with repeated keys", &v);
    let fields: Vec<(u64, String)> = rejections(&v).into_iter().map(|(l, f, _)| (l, f)).collect();
    assert_eq!(fields, [(2, "payload.a".to_string()), (3, "payload.region".to_string())], "{v}");
    assert_eq!(totals(&s), (3, 0));
}

#[test]
fn call_refuses_a_route_body_with_a_repeated_key() {
    let s = Scratch::new();
    let body = r#"{"recommendation_type":"x","resource_type":"ec2","region":"r","region":"s","predicted_savings":1}"#;
    let out = s.run(&["call", "cost", "POST", "/assess", "--body", body]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("body: region: appears more than once"), "{err}");
}

#[test]
fn files_with_a_byte_order_mark_and_crlf_are_read() {
    let s = Scratch::new();
    let jsonl = format!("\u{feff}{}\r\n{}\r\n\r\n{}\r\n", prediction("j1"), prediction("j2"), prediction("j3"));
    let file = s.write("windows.jsonl", &jsonl);
    let (code, v) = s.json(&["ingest", file.to_str().unwrap()]);
    report("JSONL with BOM and CRLF", &v);
    assert_eq!((code, v["accepted"].as_u64()), (0, Some(3)), "{v}");

    let array = format!("\u{feff}[\r\n  {},\r\n  {}\r\n]\r\n", prediction("a1"), prediction("a2"));
    let file = s.write("windows.json", &array);
    let (code, v) = s.json(&["ingest", file.to_str().unwrap()]);
    report("JSON array with BOM and CRLF", &v);
    assert_eq!((code, v["accepted"].as_u64()), (0, Some(2)), "{v}");

    let csv = "\u{feff}type,id,plugin,subject,kind,value\r\nprediction,c1,drift,m,regression,1\r\n\
               prediction,c2,drift,\"m, quoted\",regression,2\r\nprediction,c3,drift,m,regression,3\r\n";
    let file = s.write("windows.csv", csv);
    let (code, v) = s.json(&["ingest", file.to_str().unwrap()]);
    report("CSV with BOM and CRLF", &v);
    assert_eq!((code, v["accepted"].as_u64()), (0, Some(3)), "{v}");

    // Stdin with both.
    let mut child = s.cmd(&["--json", "ingest"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(format!("\u{feff}{}\r\n", prediction("s1")).as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    report("stdin with BOM and CRLF", &v);
    assert_eq!(v["accepted"].as_u64(), Some(1), "{v}");
    assert_eq!(totals(&s), (9, 0));
}

#[test]
fn an_unclosed_quote_costs_one_csv_record() {
    let s = Scratch::new();
    let mut csv = String::from("type,id,plugin,subject,kind,value\n");
    csv.push_str("prediction,p1,drift,m,regression,1\n");
    csv.push_str("prediction,p2,drift,\"never closed,regression,2\n");
    for i in 3..=50 {
        csv.push_str(&format!("prediction,p{i},drift,m,regression,{i}\n"));
    }
    let file = s.write("unclosed.csv", &csv);
    let (code, v) = s.json(&["ingest", file.to_str().unwrap()]);
    report("CSV with an unclosed quote", &v);
    assert_eq!(code, 2, "{v}");
    let r = rejections(&v);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].0, 3, "the record is named by its line: {r:?}");
    assert!(r[0].2.contains("never closed") && r[0].2.contains("line 4"), "{r:?}");
    assert_eq!(v["accepted"].as_u64(), Some(49), "{v}");
    assert_eq!(totals(&s), (49, 0), "every good row after the bad one landed");

    // The human output names file and line.
    let out = s.run(&["ingest", file.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("unclosed.csv:3"), "{out:?}");
}

#[test]
fn an_over_long_record_is_refused_and_reading_goes_on() {
    let s = Scratch::new();
    let long = "x".repeat(300 * 1024);
    let csv = format!(
        "type,id,plugin,subject,kind,value\nprediction,p1,drift,m,regression,1\nprediction,p2,drift,{long},regression,2\n\
         prediction,p3,drift,m,regression,3\n"
    );
    let file = s.write("long.csv", &csv);
    let (code, v) = s.json(&["ingest", file.to_str().unwrap()]);
    report("CSV with an over-long field", &v);
    assert_eq!(code, 2, "{v}");
    let r = rejections(&v);
    assert_eq!((r.len(), r[0].0), (1, 3), "{r:?}");
    assert!(r[0].2.contains("longer than 262144 bytes"), "{r:?}");
    // The same inside a quoted field.
    let csv = format!(
        "type,id,plugin,subject,kind,value\nprediction,q1,drift,\"{long}\",regression,2\nprediction,q2,drift,m,regression,3\n"
    );
    let file = s.write("long-quoted.csv", &csv);
    let (_, v) = s.json(&["ingest", file.to_str().unwrap()]);
    report("CSV with an over-long quoted field", &v);
    assert_eq!((v["accepted"].as_u64(), rejections(&v)[0].0), (Some(1), 2), "{v}");

    // JSONL and a JSON array: the same cap.
    let jsonl = format!(
        "{}\n{{\"type\":\"prediction\",\"id\":\"j2\",\"plugin\":\"drift\",\"subject\":\"{long}\",\"kind\":\"k\"}}\n{}\n",
        prediction("j1"),
        prediction("j3")
    );
    let file = s.write("long.jsonl", &jsonl);
    let (_, v) = s.json(&["ingest", file.to_str().unwrap()]);
    report("JSONL with an over-long line", &v);
    assert_eq!((v["accepted"].as_u64(), rejections(&v)[0].0), (Some(2), 2), "{v}");
    let array = format!(
        "[{},\n{{\"type\":\"prediction\",\"id\":\"a2\",\"plugin\":\"drift\",\"subject\":\"{long}\",\"kind\":\"k\"}},\n{}]",
        prediction("a1"),
        prediction("a3")
    );
    let file = s.write("long.json", &array);
    let (_, v) = s.json(&["ingest", file.to_str().unwrap()]);
    report("JSON array with an over-long item", &v);
    assert_eq!((v["accepted"].as_u64(), rejections(&v)[0].0), (Some(2), 2), "{v}");
    assert_eq!(totals(&s), (7, 0));
}
