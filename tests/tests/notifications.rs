//! Notifications end to end, through the real binaries and a real HTTP
//! receiver on loopback: `kill -9` of the delivering scheduler in the
//! middle of a burst loses nothing (every outbox entry reaches the
//! receiver at least once, a duplicate carries the same idempotency key,
//! and two schedulers running side by side send nothing twice);
//! custom alerts over HTTP; the admin routes and the CLI (`list`, `retry`,
//! `test`, `deliver`); a destination whose secret is not set stops the
//! binaries at start, naming it. Runs on SQLite, and on PostgreSQL with
//! `LEARNLOOP_E2E_STORE=postgres`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use learnloop_e2e::{Child, Scratch, bin, http, report, start_api_env};
use learnloop_test_support::receiver::{Receiver, Reply};
use serde_json::{Value, json};

const SECRET: (&str, &str) = ("LEARNLOOP_TEST_HOOK_SECRET", "e2e-secret");

fn write_config(s: &Scratch, destinations: &str) -> PathBuf {
    s.write(
        "notify.toml",
        &format!(
            "data_dir = {:?}\n[auth]\nenabled = false\n\
             [scheduler]\nlease_ttl_ms = 3000\ntick_ms = 500\n\
             [notify]\npoll_ms = 50\nretry_base_ms = 100\nretry_max_ms = 1000\ntimeout_ms = 2000\nmax_attempts = 3\n{destinations}",
            s.data_dir().display().to_string()
        ),
    )
}

fn webhook(name: &str, url: &str) -> String {
    format!(
        "[[notify.destinations]]\nname = \"{name}\"\nkind = \"webhook\"\nurl = \"{url}\"\nsecret_env = \"{}\"\n",
        SECRET.0
    )
}

fn start_scheduler(s: &Scratch, config: &Path, holder: &str) -> Child {
    let mut cmd = Command::new(bin("learnloop-scheduler"));
    cmd.current_dir(s.dir.path()).env_remove("LEARNLOOP_CONFIG").env(SECRET.0, SECRET.1);
    let child = s
        .store_env(&mut cmd)
        .args(["--config", config.to_str().unwrap(), "--holder", holder])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Child(child)
}

fn cli(s: &Scratch, config: &Path, args: &[&str]) -> std::process::Output {
    let mut c = s.cmd(&[]);
    c.env(SECRET.0, SECRET.1).arg("--config").arg(config).args(args);
    c.output().unwrap()
}

fn raise(addr: &str, n: usize, tag: &str) {
    for i in 0..n {
        let body = json!({"severity": "high", "kind": "load_test", "subject": format!("{tag}-{i}"),
            "message": format!("burst alert {i}"), "data": {"i": i}});
        let (status, text) = http(addr, "POST", "/api/v1/alerts?workspace=default", None, &body.to_string());
        assert_eq!(status, 201, "{text}");
    }
}

fn uids(s: &Scratch) -> Vec<String> {
    s.sql("SELECT uid FROM notifications ORDER BY id").into_iter().map(|r| r[0].as_str().unwrap().to_string()).collect()
}

#[test]
fn kill_9_of_the_delivering_scheduler_loses_no_notification() {
    let s = Scratch::new();
    // 20 ms per request, so a kill lands in the middle of the burst.
    let rx = Receiver::start(|_| Reply { status: 200, headers: vec![], delay: Duration::from_millis(20) });
    let config = write_config(&s, &webhook("hook", &rx.url()));
    let (api, addr) = start_api_env(&s, &["--config", config.to_str().unwrap(), "--bind", "127.0.0.1:0"], &[SECRET]);
    let n = 150;
    raise(&addr, n, "a");
    let mut kills = 0;
    for round in 0..2 {
        let mut sched = start_scheduler(&s, &config, &format!("s{round}"));
        let before = rx.requests().len();
        // Kill it once it has delivered part of what is there.
        let target = before + 25 + round * 10;
        let end = Instant::now() + Duration::from_secs(30);
        while rx.requests().len() < target && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(5));
        }
        sched.0.kill().unwrap();
        sched.0.wait().unwrap();
        kills += 1;
        if round == 0 {
            // More notifications arrive while no deliverer runs.
            raise(&addr, 50, "b");
        }
    }
    let total = n + 50;
    assert_eq!(uids(&s).len(), total, "every alert put one notification in the outbox");
    // Two schedulers from here on: one delivers (the `notifier` lease), the
    // other stands by; neither sends what the other sent.
    let _last = start_scheduler(&s, &config, "s-final-a");
    let _standby = start_scheduler(&s, &config, "s-final-b");
    rx.wait_for(total, Duration::from_secs(60));
    // A little longer, for re-sent deliveries still on their way.
    std::thread::sleep(Duration::from_millis(500));
    let got = rx.requests();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for r in &got {
        let body = r.json();
        let id = body["id"].as_str().unwrap().to_string();
        assert_eq!(r.header("idempotency-key"), Some(id.as_str()), "a duplicate carries the same idempotency key");
        *seen.entry(id).or_default() += 1;
    }
    let all = uids(&s);
    let lost: Vec<&String> = all.iter().filter(|u| !seen.contains_key(*u)).collect();
    let duplicates: usize = seen.values().map(|c| c - 1).sum();
    report!(
        "notifications: kill -9 of the deliverer {kills} times: {total} in the outbox, {} requests received, {} distinct, {} lost, {duplicates} duplicates",
        got.len(),
        seen.len(),
        lost.len()
    );
    assert!(lost.is_empty(), "lost {} notifications: {:?}", lost.len(), &lost[..lost.len().min(5)]);
    assert!(duplicates <= 2 * kills, "at most one in-flight delivery per sender thread is repeated after each kill");
    let delivered = s.sql("SELECT COUNT(*) FROM deliveries WHERE status = 'delivered'");
    let eventually = Instant::now() + Duration::from_secs(10);
    let mut delivered = delivered[0][0].as_i64().unwrap();
    while delivered < total as i64 && Instant::now() < eventually {
        std::thread::sleep(Duration::from_millis(100));
        delivered = s.sql("SELECT COUNT(*) FROM deliveries WHERE status = 'delivered'")[0][0].as_i64().unwrap();
    }
    assert_eq!(delivered, total as i64, "every delivery recorded as delivered");
    drop(api);
}

#[test]
fn custom_alerts_admin_routes_and_the_cli() {
    let s = Scratch::new();
    let good = Receiver::ok();
    let broken = Receiver::start(|_| Reply::status(500));
    let file = s.path("audit.jsonl");
    let destinations = format!(
        "{}{}[[notify.destinations]]\nname = \"audit\"\nkind = \"file\"\npath = {:?}\nevents = [\"alert.*\"]\nmin_severity = \"high\"\n",
        webhook("good", &good.url()),
        webhook("broken", &broken.url()),
        file.display().to_string()
    );
    let config = write_config(&s, &destinations);
    let (_api, addr) = start_api_env(&s, &["--config", config.to_str().unwrap(), "--bind", "127.0.0.1:0"], &[SECRET]);

    // A custom alert: 201, its repeat folds into it (200), a bad body names the field.
    let body = json!({"severity": "critical", "kind": "latency_budget", "subject": "checkout",
        "message": "p99 latency over budget for 10 minutes", "data": {"p99_ms": 930}});
    let (status, text) = http(&addr, "POST", "/api/v1/alerts", None, &body.to_string());
    assert_eq!(status, 201, "{text}");
    let alert: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (alert["plugin"].as_str(), alert["dedup_key"].as_str()),
        (Some("custom"), Some("latency_budget/checkout"))
    );
    let (status, text) = http(&addr, "POST", "/api/v1/alerts", None, &body.to_string());
    assert_eq!(status, 200, "{text}");
    let (status, text) = http(
        &addr,
        "POST",
        "/api/v1/alerts",
        None,
        &json!({"severity": "loud", "kind": "k", "subject": "s", "message": "m"}).to_string(),
    );
    assert_eq!(status, 422, "{text}");
    assert!(text.contains("severity"), "{text}");
    let (status, text) = http(
        &addr,
        "POST",
        "/api/v1/alerts",
        None,
        &json!({"severity": "low", "kind": "k", "subject": "s", "message": "m", "colour": 1}).to_string(),
    );
    assert_eq!(status, 422, "{text}");
    assert!(text.contains("colour"), "{text}");

    // One pass by hand: good and audit accept, broken fails (max_attempts 3).
    let out = cli(&s, &config, &["--json", "notifications", "deliver"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let pass: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (pass["routed"].as_u64(), pass["delivered"].as_u64(), pass["failed"].as_u64()),
        (Some(1), Some(2), Some(1)),
        "{pass}"
    );
    assert_eq!(good.requests().len(), 1);
    let line = std::fs::read_to_string(&file).unwrap();
    let event: Value = serde_json::from_str(line.lines().next().unwrap()).unwrap();
    assert_eq!((event["type"].as_str(), event["severity"].as_str()), (Some("alert.raised"), Some("critical")));

    // Until the broken destination is given up.
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let out = cli(&s, &config, &["--json", "notifications", "list", "--status", "dead"]);
        let list: Value = serde_json::from_slice(&out.stdout).unwrap();
        if list["deliveries"].as_array().unwrap().len() == 1 || Instant::now() > end {
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
        cli(&s, &config, &["notifications", "deliver"]);
    }
    let (status, text) = http(&addr, "GET", "/api/v1/notifications?status=dead", None, "");
    assert_eq!(status, 200, "{text}");
    let dead: Value = serde_json::from_str(&text).unwrap();
    let d = &dead["deliveries"][0];
    assert_eq!((d["destination"].as_str(), d["attempts"].as_u64()), (Some("broken"), Some(3)), "{dead:#}");
    assert!(d["last_error"].as_str().unwrap().contains("HTTP 500"), "{d:#}");
    assert_eq!(broken.requests().len(), 3);
    assert_eq!(dead["destinations"], json!(["good", "broken", "audit"]));

    // Retry over HTTP: pending again with its attempts reset; a delivered one is a 409.
    let id = d["id"].as_i64().unwrap();
    let (status, text) = http(&addr, "POST", &format!("/api/v1/notifications/{id}/retry"), None, "");
    assert_eq!(status, 200, "{text}");
    let retried: Value = serde_json::from_str(&text).unwrap();
    assert_eq!((retried["status"].as_str(), retried["attempts"].as_u64()), (Some("pending"), Some(0)));
    let (_, text) = http(&addr, "GET", "/api/v1/notifications?status=delivered&destination=good", None, "");
    let delivered_id = serde_json::from_str::<Value>(&text).unwrap()["deliveries"][0]["id"].as_i64().unwrap();
    let (status, text) = http(&addr, "POST", &format!("/api/v1/notifications/{delivered_id}/retry"), None, "");
    assert_eq!(status, 409, "{text}");
    // And by the CLI: the dead one again (after the retried attempts fail).
    let out = cli(&s, &config, &["notifications", "retry", &id.to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = cli(&s, &config, &["notifications", "retry", &delivered_id.to_string()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already delivered"));

    // Test events: over HTTP and by the CLI, never stored.
    let before = s.sql("SELECT COUNT(*) FROM notifications")[0][0].as_i64().unwrap();
    let (status, text) =
        http(&addr, "POST", "/api/v1/notifications/test", None, &json!({"destination": "good"}).to_string());
    assert_eq!(status, 200, "{text}");
    let t: Value = serde_json::from_str(&text).unwrap();
    assert_eq!((t["delivered"].as_bool(), t["status"].as_u64()), (Some(true), Some(200)), "{t}");
    assert_eq!(good.requests().last().unwrap().json()["type"], "test");
    let (status, text) =
        http(&addr, "POST", "/api/v1/notifications/test", None, &json!({"destination": "broken"}).to_string());
    assert_eq!(status, 200, "{text}");
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap()["delivered"], false);
    let (status, text) =
        http(&addr, "POST", "/api/v1/notifications/test", None, &json!({"destination": "nope"}).to_string());
    assert_eq!(status, 422, "{text}");
    assert!(text.contains("good, broken, audit"), "{text}");
    let out = cli(&s, &config, &["notifications", "test", "audit"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("audit: test event ntf_"));
    let out = cli(&s, &config, &["notifications", "test", "broken"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("HTTP 500"));
    assert_eq!(
        s.sql("SELECT COUNT(*) FROM notifications")[0][0].as_i64().unwrap(),
        before,
        "test events are not stored"
    );

    // Metrics show the queue.
    let (_, metrics) = http(&addr, "GET", "/metrics", None, "");
    assert!(
        metrics.contains("learnloop_notification_deliveries{destination=\"good\",status=\"delivered\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("learnloop_notifications_unrouted 0"), "{metrics}");
}

#[test]
fn a_destination_whose_secret_is_not_set_stops_the_binaries_naming_it() {
    let s = Scratch::new();
    let config = write_config(&s, &webhook("ml-oncall", "http://127.0.0.1:9/hook"));
    for (binary, args) in [
        ("learnloop-api", vec!["--config", config.to_str().unwrap(), "--bind", "127.0.0.1:0"]),
        ("learnloop-scheduler", vec!["--config", config.to_str().unwrap(), "--once"]),
    ] {
        let mut cmd = Command::new(bin(binary));
        cmd.current_dir(s.dir.path()).env_remove("LEARNLOOP_CONFIG").env_remove(SECRET.0);
        let out = s.store_env(&mut cmd).args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{binary}: {err}");
        assert!(err.contains("ml-oncall") && err.contains(SECRET.0) && err.contains("not set"), "{binary}: {err}");
    }
    let out =
        s.cmd(&["--config", config.to_str().unwrap(), "notifications", "list"]).env_remove(SECRET.0).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ml-oncall"));
}
