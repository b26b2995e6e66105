//! `deploy/` is checked, not just shipped.
//!
//! mod list: the alert rules and the Prometheus config pass `promtool check`
//! (skipped without promtool, a failure under CI: `scripts/promtool-up`
//! installs it); the systemd units pass `systemd-analyze verify` where the
//! tool exists; every metric the Grafana dashboard and the alert rules
//! query is one the binaries export; the compose file names the Dockerfile
//! and the Prometheus files that exist. (Building the image and `docker
//! compose config` need a Docker daemon and the compose plugin; README
//! "Running in production" says where they were checked.)

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use learnloop_e2e::{Child, Scratch, bin, start_api};
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Whether `tool` runs; under CI a missing `promtool` is a failure.
fn have(tool: &str, required_in_ci: bool) -> bool {
    let ok = Command::new(tool).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
    if !ok {
        assert!(
            !(required_in_ci && std::env::var("CI").as_deref() == Ok("true")),
            "{tool} is not installed (scripts/promtool-up installs it)"
        );
        learnloop_e2e::report!("deploy: skipped the {tool} check: {tool} is not installed");
    }
    ok
}

#[test]
fn alert_rules_and_prometheus_config_pass_promtool() {
    if !have("promtool", true) {
        return;
    }
    for args in
        [["check", "rules", "deploy/prometheus/rules.yml"], ["check", "config", "deploy/prometheus/prometheus.yml"]]
    {
        let out = Command::new("promtool").args(args).current_dir(repo()).output().unwrap();
        assert!(
            out.status.success(),
            "promtool {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn systemd_units_pass_systemd_analyze_verify() {
    if !have("systemd-analyze", false) {
        return;
    }
    // `verify` wants the ExecStart programs to exist: point them at the
    // binaries this test run built.
    let dir = tempfile::tempdir().unwrap();
    let built = bin("learnloop-api").parent().unwrap().to_path_buf();
    let mut units = Vec::new();
    for name in ["learnloop-api.service", "learnloop-scheduler.service"] {
        let text = read(&format!("deploy/systemd/{name}"));
        assert!(
            text.contains("ProtectSystem=strict") && text.contains("NoNewPrivileges=true"),
            "{name} is not hardened"
        );
        let path = dir.path().join(name);
        std::fs::write(&path, text.replace("/usr/local/bin/", &format!("{}/", built.display()))).unwrap();
        units.push(path);
    }
    let out = Command::new("systemd-analyze").arg("verify").args(&units).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.trim().is_empty(), "systemd-analyze verify: {err}");
}

/// The metric names a PromQL expression uses.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
        if is_word(bytes[i]) && (i == 0 || !is_word(bytes[i - 1])) {
            let start = i;
            while i < bytes.len() && is_word(bytes[i]) {
                i += 1;
            }
            let w = &expr[start..i];
            if w.starts_with("learnloop_") || w.starts_with("process_") {
                out.insert(w.to_string());
            }
        } else {
            i += 1;
        }
    }
    out
}

/// Series names in exposition text, histograms with their suffixes.
fn exported(text: &str, into: &mut BTreeSet<String>) {
    for l in text.lines() {
        if let Some(rest) = l.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            into.insert(name.to_string());
            if kind == "histogram" {
                for s in ["_bucket", "_sum", "_count"] {
                    into.insert(format!("{name}{s}"));
                }
            }
        }
    }
}

fn get(addr: &str, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default()
}

#[test]
fn dashboard_and_rules_query_only_metrics_the_binaries_export() {
    // What both servers export once a drift job ran.
    let s = Scratch::new();
    let file = s.path("events.jsonl");
    assert!(s.run(&["sample", "-o", file.to_str().unwrap(), "--per-plugin", "40"]).status.success());
    assert!(s.run(&["ingest", file.to_str().unwrap()]).status.success());
    let config = s.write(
        "learnloop.toml",
        &format!(
            "data_dir = {:?}\n[auth]\nenabled = false\n[scheduler]\ntick_ms = 500\nmetrics_bind = \"127.0.0.1:0\"\n\
             [scheduler.jobs.\"drift.daily\"]\nschedule = \"*/2 * * * * *\"\n",
            s.data_dir().display().to_string()
        ),
    );
    let mut names = BTreeSet::from(["up".to_string()]);
    let (_api, addr) = start_api(&s, &["--config", config.to_str().unwrap(), "--bind", "127.0.0.1:0"]);
    let body =
        r#"{"id":"deploy-1","plugin":"drift","kind":"regression","subject":"m","value":1.0,"features":{"x1":1.0}}"#;
    let stored = learnloop_e2e::http(&addr, "POST", "/api/v1/predictions", None, body);
    assert_eq!(stored.0, 201, "{}", stored.1);
    let ran = learnloop_e2e::http(&addr, "POST", "/api/v1/jobs/drift/daily/run", None, "");
    assert_eq!(ran.0, 200, "{}", ran.1);
    exported(&get(&addr, "/metrics"), &mut names);

    let log = s.path("scheduler.log");
    let mut cmd = Command::new(bin("learnloop-scheduler"));
    cmd.current_dir(s.dir.path()).env_remove("LEARNLOOP_CONFIG").env_remove("RUST_LOG");
    let _sched = Child(
        s.store_env(&mut cmd)
            .args(["--config", config.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    let text = loop {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no scheduler run: {}",
            std::fs::read_to_string(&log).unwrap()
        );
        std::thread::sleep(Duration::from_millis(200));
        let l = std::fs::read_to_string(&log).unwrap();
        let Some(at) = l.find("on http://") else { continue };
        let addr = l[at + "on http://".len()..].split_whitespace().next().unwrap().to_string();
        let t = get(&addr, "/metrics");
        if t.contains("learnloop_scheduler_job_runs_total{") {
            break t;
        }
    };
    exported(&text, &mut names);
    // Families that stay empty (and so unlisted) until something fails or
    // an LLM is configured; each is registered by name in the source.
    let source = read("bins/api/src/metrics.rs");
    for (series, registered) in [
        ("learnloop_plugin_errors_total", "\"learnloop_plugin_errors\""),
        ("learnloop_llm_calls_total", "\"learnloop_llm_calls\""),
        ("learnloop_notification_deliveries", "\"learnloop_notification_deliveries\""),
        ("learnloop_notification_pending_age_seconds", "\"learnloop_notification_pending_age\""),
    ] {
        assert!(source.contains(registered), "{registered} is not registered in bins/api/src/metrics.rs");
        names.insert(series.to_string());
    }

    let mut used = BTreeSet::new();
    let dashboard: Value = serde_json::from_str(&read("deploy/grafana/learnloop.json")).expect("the dashboard is JSON");
    assert_eq!(dashboard["uid"], "learnloop");
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(panels.len() > 10);
    for p in panels.iter().filter(|p| p["type"] != "row") {
        let targets = p["targets"].as_array().unwrap_or_else(|| panic!("panel {} has no targets", p["title"]));
        for t in targets {
            used.extend(metric_names(t["expr"].as_str().unwrap()));
        }
    }
    for line in read("deploy/prometheus/rules.yml").lines() {
        if let Some(expr) = line.trim().strip_prefix("expr:") {
            used.extend(metric_names(expr));
        }
    }
    let unknown: Vec<&String> = used.iter().filter(|n| !names.contains(*n)).collect();
    assert!(unknown.is_empty(), "queried but not exported: {unknown:?}\nexported: {names:?}");
    assert!(used.contains("learnloop_model_drift_severity") && used.contains("learnloop_scheduler_leader"));
}

#[test]
fn compose_file_uses_files_that_exist() {
    let compose = read("deploy/compose.yaml");
    for rel in [
        "deploy/Dockerfile",
        "deploy/prometheus/prometheus.yml",
        "deploy/prometheus/rules.yml",
        "deploy/grafana/learnloop.json",
        "deploy/grafana/provisioning",
    ] {
        assert!(repo().join(rel).exists(), "{rel} is missing");
        let name = rel.trim_start_matches("deploy/");
        assert!(compose.contains(name), "compose.yaml does not use {name}");
    }
    let dockerfile = read("deploy/Dockerfile");
    for needle in ["USER learnloop", "learnloop-api", "learnloop-scheduler", "target/release/learnloop "] {
        assert!(dockerfile.contains(needle), "Dockerfile lacks {needle:?}");
    }
    let rust = read("Cargo.toml");
    let version = rust.lines().find_map(|l| l.strip_prefix("rust-version = ")).unwrap().trim_matches('"');
    assert!(dockerfile.contains(&format!("FROM rust:{version}-")), "the build image is not Rust {version}");
}
