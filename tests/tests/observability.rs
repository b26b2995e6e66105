//! Operating the servers: logs, request ids and metrics, end to end.
//!
//! mod list: the API's JSON log ties a request id to the access line and to
//! the work the request caused; `/metrics` of the API and of the scheduler
//! (on `[scheduler] metrics_bind`) pass `promtool check metrics` and label
//! plugin routes by their template; the scheduler's `/health`; a scheduler
//! whose stderr is a closed pipe still runs and releases its lease.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use learnloop_e2e::{Child, Scratch, bin, terminate};
use serde_json::Value;

/// A request with extra headers; returns status, head and body.
fn request(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String, String) {
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let (head, body) = out.split_once("\r\n\r\n").map(|(h, b)| (h.to_string(), b.to_string())).unwrap_or_default();
    (status, head, body)
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Starts `learnloop-api` with `config`, stderr to `log`, extra environment
/// `env`; returns it and its address (read from stdout).
fn start_api_logged(s: &Scratch, config: &Path, log: &Path, env: &[(&str, &str)]) -> (Child, String) {
    let mut cmd = Command::new(bin("learnloop-api"));
    cmd.current_dir(s.dir.path()).env_remove("LEARNLOOP_CONFIG").env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = s
        .store_env(&mut cmd)
        .args(["--config", config.to_str().unwrap(), "--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::from(File::create(log).unwrap()))
        .spawn()
        .expect("start learnloop-api");
    let stdout = child.stdout.take().unwrap();
    let child = Child(child);
    let mut lines = BufReader::new(stdout).lines();
    let addr = loop {
        let line = lines.next().expect("learnloop-api exited before listening").unwrap();
        if let Some(a) = line.strip_prefix("learnloop-api listening on http://") {
            break a.to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, addr)
}

/// Polls `f` every 100 ms until it returns Some, or panics after `limit`.
fn wait_for<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `promtool check metrics` on `text`: skipped (with a line saying so)
/// without promtool, a failure under CI (`scripts/promtool-up` installs it).
fn promtool_check(what: &str, text: &str) {
    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "promtool is not installed (scripts/promtool-up installs Debian's prometheus package)"
        );
        learnloop_e2e::report!("observability: skipped promtool on {what}: promtool is not installed");
        return;
    };
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics on {what} failed:\n{}{}\n--- the text:\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The JSON log lines of `log` whose request span has id `id`.
fn lines_of_request(log: &str, id: &str) -> Vec<Value> {
    log.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {l}")))
        .filter(|v| v["span"]["id"] == id)
        .collect()
}

fn sample(s: &Scratch) {
    let file = s.path("events.jsonl");
    let out = s.run(&["sample", "-o", file.to_str().unwrap(), "--per-plugin", "40"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = s.run(&["ingest", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn api_logs_json_with_request_ids_and_serves_metrics_promtool_accepts() {
    let s = Scratch::new();
    sample(&s);
    let config = s.write(
        "api.toml",
        &format!(
            "data_dir = {:?}\n[auth]\nenabled = false\n[log]\nformat = \"json\"\n",
            s.data_dir().display().to_string()
        ),
    );
    let log_path = s.path("api.log");
    let (api, addr) = start_api_logged(&s, &config, &log_path, &[("RUST_LOG", "debug")]);

    // A sane incoming id is kept and returned; the access line and the
    // ingest's own line carry it.
    let body =
        r#"{"id":"obs-1","plugin":"drift","kind":"regression","subject":"m1","value":1.0,"features":{"x1":1.0}}"#;
    let (st, head, b) = request(&addr, "POST", "/api/v1/predictions", &[("x-request-id", "e2e-ingest-1")], body);
    assert!(st == 200 || st == 201 || st == 207, "{st} {b}");
    assert_eq!(header(&head, "x-request-id"), Some("e2e-ingest-1"), "{head}");
    // A plugin route: labelled by its template, its handler logs in the span.
    let (st, head, b) = request(&addr, "GET", "/api/v1/drift/summary", &[("x-request-id", "e2e-route-1")], "");
    assert_eq!(st, 200, "{b}");
    assert_eq!(header(&head, "x-request-id"), Some("e2e-route-1"));
    let (_, _, _) = request(&addr, "GET", "/api/v1/drift/models/m1/drift", &[], "");
    // A job run through the API: its start and end lines are in the run's
    // span, inside the request's.
    let (st, _, b) = request(&addr, "POST", "/api/v1/jobs/drift/daily/run", &[("x-request-id", "e2e-job-1")], "");
    assert_eq!(st, 200, "{b}");
    // No id sent: one is made (32 hex digits); a silly one is replaced.
    let (_, head, _) = request(&addr, "GET", "/health", &[("x-request-id", "no spaces allowed")], "");
    let made = header(&head, "x-request-id").expect("an id").to_string();
    assert!(made.len() == 32 && made.chars().all(|c| c.is_ascii_hexdigit()), "{made}");

    let (st, head, metrics) = request(&addr, "GET", "/metrics", &[], "");
    assert_eq!(st, 200);
    assert!(header(&head, "content-type").unwrap().starts_with("text/plain; version=0.0.4"), "{head}");
    for needle in [
        "learnloop_http_requests_total{method=\"GET\",route=\"/api/v1/drift/summary\",status=\"200\"} 1",
        "route=\"/api/v1/drift/models/{model}/drift\"",
        "learnloop_http_request_duration_seconds_bucket{",
        "learnloop_ingested_records_total{type=\"prediction\",result=\"inserted\"} 1",
        "learnloop_build_info{program=\"learnloop-api\",version=\"",
        "process_resident_memory_bytes ",
        "process_cpu_seconds_total ",
        "process_open_fds ",
        "process_start_time_seconds ",
        "learnloop_http_connections_accepted_total ",
    ] {
        assert!(metrics.contains(needle), "/metrics lacks {needle:?}:\n{metrics}");
    }
    assert!(!metrics.contains("m1/drift"), "a path, not a template, became a label:\n{metrics}");
    promtool_check("the API's /metrics", &metrics);
    // OpenMetrics for a scraper that asks for it.
    let (_, head, om) =
        request(&addr, "GET", "/metrics", &[("accept", "application/openmetrics-text;version=1.0.0")], "");
    assert!(header(&head, "content-type").unwrap().starts_with("application/openmetrics-text"), "{head}");
    assert!(om.ends_with("# EOF\n"), "{om}");

    drop(api);
    let log = std::fs::read_to_string(&log_path).unwrap();
    let ingest = lines_of_request(&log, "e2e-ingest-1");
    let access = ingest.iter().find(|v| v["target"] == "learnloop_api::access").unwrap_or_else(|| panic!("{log}"));
    assert_eq!(access["fields"]["route"], "/api/v1/predictions", "{access}");
    assert_eq!(access["fields"]["method"], "POST");
    assert!(access["fields"]["latency_ms"].is_number(), "{access}");
    assert!(access["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')), "{access}");
    assert!(
        ingest.iter().any(|v| v["target"] == "learnloop_api::routes::ingest" && v["level"] == "DEBUG"),
        "the ingest's own line carries the request id:\n{log}"
    );
    let route = lines_of_request(&log, "e2e-route-1");
    assert!(
        route.iter().any(|v| v["target"] == "learnloop_plugin_host" && v["level"] == "DEBUG"),
        "the plugin route's handling (on a blocking thread) carries the request id:\n{log}"
    );
    assert!(
        route.iter().any(|v| v["target"] == "learnloop_api::access" && v["fields"]["route"] == "/api/v1/drift/summary")
    );
    let in_job_request = |v: &Value| v["spans"].as_array().is_some_and(|s| s.iter().any(|s| s["id"] == "e2e-job-1"));
    let ended = log
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| {
            v["span"]["name"] == "run" && in_job_request(v) && v["fields"]["message"] == "job drift.daily succeeded"
        })
        .unwrap_or_else(|| panic!("no end line of the run inside the request's span:\n{log}"));
    assert_eq!(ended["span"]["plugin"], "drift", "{ended}");
    assert_eq!(ended["span"]["job"], "daily", "{ended}");
    assert_eq!(ended["fields"]["outcome"], "succeeded", "{ended}");
    assert!(ended["fields"]["duration_ms"].is_number(), "{ended}");
}

#[test]
fn api_logs_text_lines_with_timestamps_and_key_ids_never_keys() {
    let s = Scratch::new();
    let config = s.write("api.toml", &format!("data_dir = {:?}\n", s.data_dir().display().to_string()));
    let log_path = s.path("api.log");
    let (api, addr) = start_api_logged(&s, &config, &log_path, &[]);
    let key = std::fs::read_to_string(s.data_dir().join("admin.key")).unwrap().trim().to_string();
    let (st, _, _) = request(&addr, "GET", "/api/v1/jobs", &[("authorization", &format!("Bearer {key}"))], "");
    assert_eq!(st, 200);
    terminate(&api.0);
    wait_for(Duration::from_secs(15), "the API to stop", || {
        std::fs::read_to_string(&log_path).ok()?.contains("stopped").then_some(())
    });
    drop(api);
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(!log.contains(&key), "the key was logged:\n{log}");
    assert!(log.contains("created the first admin key in"), "{log}");
    let line =
        log.lines().find(|l| l.contains("GET /api/v1/jobs 200")).unwrap_or_else(|| panic!("no access line:\n{log}"));
    assert!(line.contains("key_id=1"), "{line}");
    assert!(line.contains("request{id="), "the request span is on the line: {line}");
    for l in log.lines() {
        let stamp = l.split_whitespace().next().unwrap_or_default();
        assert!(
            stamp.len() >= 20 && stamp.ends_with('Z') && stamp.as_bytes()[10] == b'T',
            "a line without a UTC timestamp: {l}"
        );
    }
}

/// A scheduler config: `drift.daily` every 2 s, metrics on a free port.
fn scheduler_config(s: &Scratch) -> std::path::PathBuf {
    s.write(
        "sched.toml",
        &format!(
            "data_dir = {:?}\n[scheduler]\nlease_ttl_ms = 3000\ntick_ms = 500\nmetrics_bind = \"127.0.0.1:0\"\n\
             [scheduler.jobs.\"drift.daily\"]\nschedule = \"*/2 * * * * *\"\n",
            s.data_dir().display().to_string()
        ),
    )
}

#[test]
fn scheduler_serves_metrics_and_health_promtool_accepts() {
    let s = Scratch::new();
    sample(&s);
    let config = scheduler_config(&s);
    let log_path = s.path("sched.log");
    let mut cmd = Command::new(bin("learnloop-scheduler"));
    cmd.current_dir(s.dir.path()).env_remove("LEARNLOOP_CONFIG").env_remove("RUST_LOG");
    let child = s
        .store_env(&mut cmd)
        .args(["--config", config.to_str().unwrap(), "--holder", "obs-sched"])
        .stdout(Stdio::null())
        .stderr(Stdio::from(File::create(&log_path).unwrap()))
        .spawn()
        .unwrap();
    let mut child = Child(child);
    let addr = wait_for(Duration::from_secs(20), "the metrics address in the log", || {
        let log = std::fs::read_to_string(&log_path).ok()?;
        let at = log.find("serving /metrics and /health on http://")?;
        let rest = &log[at + "serving /metrics and /health on http://".len()..];
        Some(rest.split_whitespace().next()?.to_string())
    });
    let text = wait_for(Duration::from_secs(20), "a succeeded drift.daily run in /metrics", || {
        let (_, _, text) = request(&addr, "GET", "/metrics", &[], "");
        text.contains("learnloop_scheduler_job_runs_total{plugin=\"drift\",job=\"daily\",outcome=\"succeeded\"}")
            .then_some(text)
    });
    for needle in [
        "learnloop_scheduler_leader 1",
        "learnloop_scheduler_lease_expiry_timestamp_seconds ",
        "learnloop_scheduler_job_last_success_timestamp_seconds{plugin=\"drift\",job=\"daily\"} ",
        "learnloop_scheduler_job_duration_seconds_bucket{",
        "learnloop_scheduler_job_lag_seconds{plugin=\"drift\",job=\"daily\"} ",
        "learnloop_build_info{program=\"learnloop-scheduler\"",
        "process_resident_memory_bytes ",
    ] {
        assert!(text.contains(needle), "scheduler /metrics lacks {needle:?}:\n{text}");
    }
    promtool_check("the scheduler's /metrics", &text);
    let (st, _, health) = request(&addr, "GET", "/health", &[], "");
    assert_eq!(st, 200);
    let h: Value = serde_json::from_str(&health).unwrap();
    assert_eq!(h["holder"], "obs-sched", "{h}");
    assert_eq!(h["leader"], true, "{h}");
    assert!(h["lease_expires_at"].is_string(), "{h}");

    terminate(&child.0);
    let status = wait_for(Duration::from_secs(15), "the scheduler to exit", || child.0.try_wait().unwrap());
    assert_eq!(status.code(), Some(0));
    let log = std::fs::read_to_string(&log_path).unwrap();
    // Job lines carry their fields (text format: the span's, then the event's).
    let ran = log.lines().find(|l| l.contains("ran drift.daily slot")).unwrap_or_else(|| panic!("{log}"));
    for field in ["plugin=drift", "job=daily", "attempt=1", "outcome=\"succeeded\"", "duration_ms="] {
        assert!(ran.contains(field), "{field} missing: {ran}");
    }
}

#[test]
fn a_scheduler_whose_stderr_is_closed_keeps_running_and_releases_its_lease() {
    let s = Scratch::new();
    sample(&s);
    let config = scheduler_config(&s);
    // `learnloop-scheduler ... 2>&1 | head -1`: the reader goes away after
    // the first line; every later log line meets a closed pipe.
    let mut cmd = Command::new(bin("learnloop-scheduler"));
    cmd.current_dir(s.dir.path()).env_remove("LEARNLOOP_CONFIG").env("RUST_LOG", "debug");
    let mut child = s
        .store_env(&mut cmd)
        .args(["--config", config.to_str().unwrap(), "--holder", "closed-stderr"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stderr.as_mut().unwrap()).read_line(&mut first).unwrap();
    drop(child.stderr.take());
    let mut child = Child(child);
    let ran = wait_for(Duration::from_secs(20), "drift.daily runs with stderr closed", || {
        let rows =
            s.sql("SELECT count(*) FROM job_runs WHERE plugin = 'drift' AND job = 'daily' AND status = 'succeeded'");
        let n = rows[0][0].as_i64().unwrap();
        (n >= 2).then_some(n)
    });
    assert!(child.0.try_wait().unwrap().is_none(), "the scheduler died after {ran} runs");
    terminate(&child.0);
    let status = wait_for(Duration::from_secs(15), "the scheduler to exit", || child.0.try_wait().unwrap());
    assert_eq!(status.code(), Some(0), "exit status with a closed stderr");
    let rows = s.sql("SELECT holder, expires_at FROM leases WHERE name = 'scheduler'");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as i64;
    assert_eq!(rows[0][0], "closed-stderr");
    assert!(rows[0][1].as_i64().unwrap() <= now, "the lease was released, not left to expire");
}

/// One drift model's records for days `from..to` (one prediction every 6
/// hours, its outcome an hour later): `value = 2·x1 + 10`; the actual is
/// `value + bias` plus a little deterministic noise, and `x1` is shifted by
/// `shift`.
fn drift_records(from: u32, to: u32, shift: f64, bias: f64) -> String {
    let mut out = String::new();
    for i in from * 4..to * 4 {
        let x1 = ((i * 7919) % 200) as f64 / 100.0 - 1.0 + shift;
        let value = 2.0 * x1 + 10.0;
        let noise = ((i * 104_729) % 21) as f64 / 100.0 - 0.1;
        let (day, hour) = (i / 4, (i % 4) * 6);
        let t = |h: u32| {
            let date = chrono_like(day);
            format!("{date}T{h:02}:00:00Z")
        };
        out.push_str(&format!(
            "{{\"type\":\"prediction\",\"id\":\"p{i}\",\"plugin\":\"drift\",\"subject\":\"m\",\"kind\":\"regression\",\"value\":{value},\"features\":{{\"x1\":{x1}}},\"event_time\":\"{}\"}}\n",
            t(hour)
        ));
        out.push_str(&format!(
            "{{\"type\":\"outcome\",\"id\":\"o{i}\",\"plugin\":\"drift\",\"prediction_id\":\"p{i}\",\"value\":{},\"event_time\":\"{}\"}}\n",
            value + bias + noise,
            t(hour + 1)
        ));
    }
    out
}

/// The date `day` days after 2026-01-01 (days < 59 stay in January and
/// February of a common year).
fn chrono_like(day: u32) -> String {
    if day < 31 { format!("2026-01-{:02}", day + 1) } else { format!("2026-02-{:02}", day - 30) }
}

/// The value of the sample of `name` whose labels include all of `labels`.
fn gauge(metrics: &str, name: &str, labels: &[&str]) -> Option<f64> {
    metrics.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?.strip_prefix('{')?;
        let (set, value) = rest.split_once("} ")?;
        labels.iter().all(|want| set.split(',').any(|p| p == *want)).then(|| value.trim().parse().ok())?
    })
}

#[test]
fn drift_job_refreshes_per_model_error_and_severity_gauges() {
    let s = Scratch::new();
    let file = s.write("steady.jsonl", &drift_records(0, 37, 0.0, 0.0));
    let out = s.run(&["ingest", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let config =
        s.write("api.toml", &format!("data_dir = {:?}\n[auth]\nenabled = false\n", s.data_dir().display().to_string()));
    let (_api, addr) = start_api_logged(&s, &config, &s.path("api.log"), &[]);
    let labels = ["workspace=\"default\"", "model=\"m\""];
    let run_and_read = || {
        let (st, _, b) = request(&addr, "POST", "/api/v1/jobs/drift/daily/run", &[], "");
        assert_eq!(st, 200, "{b}");
        let (_, _, m) = request(&addr, "GET", "/metrics", &[], "");
        let mae = gauge(&m, "learnloop_model_error", &[labels[0], labels[1], "metric=\"mae\""])
            .unwrap_or_else(|| panic!("no MAE gauge:\n{m}"));
        let severity =
            gauge(&m, "learnloop_model_drift_severity", &labels).unwrap_or_else(|| panic!("no severity gauge:\n{m}"));
        assert_eq!(gauge(&m, "learnloop_model_metrics_omitted", &[labels[0]]), Some(0.0), "{m}");
        (mae, severity)
    };
    let (mae1, severity1) = run_and_read();
    assert!(mae1 < 0.2, "steady model: MAE {mae1}");
    // A week in which the inputs moved and the model is off by 4.
    let file = s.write("drifting.jsonl", &drift_records(37, 44, 3.0, 4.0));
    let out = s.run(&["ingest", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (mae2, severity2) = run_and_read();
    assert!(mae2 > 3.0, "drifting model: MAE {mae2} (was {mae1})");
    assert!(severity2 > severity1, "drift severity {severity2} (was {severity1})");
}
