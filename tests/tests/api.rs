//! End-to-end tests of the real `learnloop-api` binary.
//!
//! mod list: first start (admin key file, loopback bind), ingest over HTTP
//! with durable acknowledgement, keys made by the CLI, graceful shutdown.

use std::process::{Command, Stdio};

use learnloop_e2e::{Child, Scratch, bin, http, start_api, terminate};
use serde_json::Value;

/// Starts the API on a free loopback port, on the scratch data directory.
fn start_api_on(s: &Scratch) -> (Child, String) {
    start_api(s, &["--data-dir", s.data_dir().to_str().unwrap(), "--bind", "127.0.0.1:0"])
}

#[test]
fn api_binary_end_to_end() {
    let s = Scratch::new();
    let (api, addr) = start_api_on(&s);
    assert!(addr.starts_with("127.0.0.1:"), "binds to loopback: {addr}");
    let key_file = s.data_dir().join("admin.key");
    let admin = std::fs::read_to_string(&key_file).unwrap().trim().to_string();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let (st, _) = http(&addr, "GET", "/ready", None, "");
    assert_eq!(st, 200);

    // A writer key made with the CLI on the same data directory works at once.
    let out = s.run(&["--json", "keys", "create", "--role", "writer", "--workspace", "default"]);
    let writer: Value = serde_json::from_slice(&out.stdout).unwrap();
    let writer = writer["key"].as_str().unwrap().to_string();

    for i in 0..50 {
        let body = format!(r#"{{"id":"p{i}","plugin":"drift","subject":"m","kind":"regression","value":{i}}}"#);
        let (st, b) = http(&addr, "POST", "/api/v1/predictions", Some(&writer), &body);
        assert_eq!(st, 201, "{b}");
    }
    let batch: Vec<String> = (0..50)
        .map(|i| format!(r#"{{"id":"o{i}","plugin":"drift","prediction_id":"p{i}","value":{}}}"#, i + 1))
        .collect();
    let (st, b) = http(&addr, "POST", "/api/v1/outcomes", Some(&writer), &format!("[{}]", batch.join(",")));
    assert_eq!(st, 200, "{b}");
    let v: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(v["inserted"].as_u64(), Some(50));
    let (st, b) = http(&addr, "GET", "/api/v1/drift/summary", Some(&writer), "");
    assert_eq!(st, 200, "{b}");
    let (st, _) = http(&addr, "GET", "/api/v1/jobs", Some(&writer), "");
    assert_eq!(st, 403, "jobs need an admin key");
    let (st, b) = http(&addr, "POST", "/api/v1/jobs/drift/daily/run", Some(&admin), "");
    assert_eq!(st, 200, "{b}");

    // SIGTERM: graceful stop, exit 0; everything acknowledged is there.
    let mut api = api;
    terminate(&api.0);
    let status = api.0.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let (_, v) = s.json(&["stats"]);
    assert_eq!((v["totals"]["predictions"].as_u64(), v["totals"]["outcomes"].as_u64()), (Some(50), Some(50)));
    // A second start creates no second admin key.
    let (_api, _addr) = start_api_on(&s);
    assert_eq!(std::fs::read_to_string(&key_file).unwrap().trim(), admin);
    let (_, keys) = s.json(&["keys", "list"]);
    assert_eq!(keys["keys"].as_array().unwrap().len(), 2);
}

/// Both binaries on one data directory: events ingested over HTTP, the
/// scheduler runs a job on a short schedule, the API shows the run.
#[test]
fn api_and_scheduler_share_a_data_directory() {
    let s = Scratch::new();
    let config = s.write(
        "learnloop.toml",
        &format!(
            "data_dir = {:?}\n[scheduler]\nlease_ttl_ms = 3000\ntick_ms = 500\n[scheduler.jobs.\"drift.daily\"]\nschedule = \"*/2 * * * * *\"\n",
            s.data_dir().display().to_string()
        ),
    );
    let (api, addr) = start_api(&s, &["--config", config.to_str().unwrap(), "--bind", "127.0.0.1:0"]);
    let admin = std::fs::read_to_string(s.data_dir().join("admin.key")).unwrap().trim().to_string();
    let (st, b) = http(
        &addr,
        "POST",
        "/api/v1/predictions?workspace=default",
        Some(&admin),
        r#"[{"id":"p1","plugin":"drift","subject":"m","kind":"regression","value":1},{"id":"p2","plugin":"drift","subject":"m","kind":"regression","value":2}]"#,
    );
    assert_eq!(st, 200, "{b}");

    let scheduler = Child(
        s.store_env(&mut Command::new(bin("learnloop-scheduler")))
            .current_dir(s.dir.path())
            .args(["--config", config.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let run = loop {
        let (st, b) = http(&addr, "GET", "/api/v1/jobs/runs?plugin=drift&job=daily", Some(&admin), "");
        assert_eq!(st, 200, "{b}");
        let v: Value = serde_json::from_str(&b).unwrap();
        if let Some(r) =
            v["runs"].as_array().and_then(|r| r.iter().find(|r| r["status"] == "succeeded" && !r["slot"].is_null()))
        {
            break r.clone();
        }
        assert!(std::time::Instant::now() < deadline, "the scheduler never ran drift.daily: {v}");
        std::thread::sleep(std::time::Duration::from_millis(300));
    };
    assert!(run["runner"].as_str().unwrap().starts_with("scheduler"), "{run}");
    assert_eq!(
        run["report"]["workspaces"]["default"]["totals"]["predictions"], 2,
        "the job saw the HTTP-ingested events: {run}"
    );
    drop(scheduler);
    drop(api);
}
