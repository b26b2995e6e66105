//! End-to-end tests that need PostgreSQL whatever `LEARNLOOP_E2E_STORE`
//! says (the server at `LEARNLOOP_TEST_PG_URL`; skipped without it, a
//! failure under CI). Each test works in its own schema.
//!
//! mod list: scale-out (two `learnloop-api` and two `learnloop-scheduler`
//! processes on one database: concurrent ingest through both APIs loses and
//! double-counts nothing, one scheduler leads, replay gives the state the
//! nodes built online); `learnloop migrate` (SQLite to PostgreSQL: counts
//! verified, the copy reads back equal, a non-empty target is refused
//! unless --resume, the copy continues where the source stopped).

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use learnloop_e2e::{Child, Scratch, bin, http, start_api, terminate};
use learnloop_store::pg_test::{TestSchema, server_url};

use serde_json::Value;

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

/// A node's config: its own data directory, the shared database, a short
/// scheduler lease and `drift.daily` every 2 seconds; `cost.learning_cycle` off,
/// so the cost state compared with a replay is the online state only.
fn node_config(s: &Scratch, node: &str, url: &str) -> PathBuf {
    s.write(
        &format!("{node}.toml"),
        &format!(
            "data_dir = {:?}\n[store]\nurl = {url:?}\n\
             [scheduler]\nlease_ttl_ms = 3000\ntick_ms = 500\nretry_backoff_ms = 1000\n\
             [scheduler.jobs.\"drift.daily\"]\nschedule = \"*/2 * * * * *\"\n\
             [scheduler.jobs.\"cost.learning_cycle\"]\nenabled = false\n",
            s.path(node).display().to_string()
        ),
    )
}

fn start_scheduler(s: &Scratch, config: &Path, holder: &str) -> Child {
    let log = File::create(s.path(&format!("{holder}.log"))).unwrap();
    Child(
        Command::new(bin("learnloop-scheduler"))
            .current_dir(s.dir.path())
            .env_remove("LEARNLOOP_CONFIG")
            .args(["--config", config.to_str().unwrap(), "--holder", holder])
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap(),
    )
}

/// `learnloop --json --config <config> ARGS`, parsed.
fn cli(s: &Scratch, config: &Path, args: &[&str]) -> Value {
    let out = Command::new(bin("learnloop"))
        .current_dir(s.dir.path())
        .env_remove("LEARNLOOP_CONFIG")
        .args(["--json", "--config", config.to_str().unwrap()])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "learnloop {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// (workspace, key, md5 of the value) of every state document of `plugin`.
fn state_digest(s: &Scratch, plugin: &str) -> Vec<Vec<Value>> {
    s.sql(&format!(
        "SELECT workspace, key, md5(value) FROM plugin_state WHERE plugin = '{plugin}' ORDER BY workspace, key"
    ))
}

#[test]
fn two_apis_and_two_schedulers_share_one_database() {
    let Some(server) = server_url("two_apis_and_two_schedulers_share_one_database") else { return };
    let s = Scratch::postgres(&server);
    let url = s.store_url().unwrap().to_string();
    let (config_a, config_b) = (node_config(&s, "node-a", &url), node_config(&s, "node-b", &url));

    // Node A creates the first admin key; B finds keys in the database and makes none.
    let (api_a, addr_a) = start_api(&s, &["--config", config_a.to_str().unwrap(), "--bind", "127.0.0.1:0"]);
    let admin = std::fs::read_to_string(s.path("node-a/admin.key")).unwrap().trim().to_string();
    let (api_b, addr_b) = start_api(&s, &["--config", config_b.to_str().unwrap(), "--bind", "127.0.0.1:0"]);
    assert!(!s.path("node-b/admin.key").exists(), "the second node made no second admin key");

    // Four clients, each alternating between the nodes: 40 batches of 50
    // predictions with their outcomes, in 4 workspaces. Every batch of
    // predictions is sent to both nodes (a retry against the other node),
    // so half of the prediction posts are duplicates.
    let (clients, batches, per) = (4, 10, 50);
    let totals: Vec<(u64, u64)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                let (admin, addrs) = (&admin, [&addr_a, &addr_b]);
                scope.spawn(move || {
                    let (mut inserted, mut duplicates) = (0, 0);
                    for b in 0..batches {
                        let ws = format!("w{}", (c + b) % 4);
                        let preds: Vec<String> = (0..per)
                            .map(|i| {
                                format!(
                                    r#"{{"id":"c{c}b{b}p{i}","workspace":"{ws}","plugin":"cost","subject":"s{}","kind":"spot","value":{}}}"#,
                                    i % 5,
                                    10 + i
                                )
                            })
                            .collect();
                        let outs: Vec<String> = (0..per)
                            .map(|i| {
                                format!(
                                    r#"{{"id":"c{c}b{b}o{i}","workspace":"{ws}","plugin":"cost","prediction_id":"c{c}b{b}p{i}","value":{}}}"#,
                                    11 + i + (i % 3)
                                )
                            })
                            .collect();
                        let first = addrs[(c + b) % 2];
                        let second = addrs[(c + b + 1) % 2];
                        for (addr, path, body) in [
                            (first, "/api/v1/predictions", &preds),
                            (second, "/api/v1/predictions", &preds),
                            (second, "/api/v1/outcomes", &outs),
                        ] {
                            let (st, text) = http(addr, "POST", path, Some(admin), &format!("[{}]", body.join(",")));
                            assert_eq!(st, 200, "{path} on {addr}: {text}");
                            let v: Value = serde_json::from_str(&text).unwrap();
                            inserted += v["inserted"].as_u64().unwrap();
                            duplicates += v["duplicates"].as_u64().unwrap();
                            assert_eq!(v["rejected"].as_u64(), Some(0), "{text}");
                        }
                    }
                    (inserted, duplicates)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let n = (clients * batches * per) as u64;
    let inserted: u64 = totals.iter().map(|t| t.0).sum();
    let duplicates: u64 = totals.iter().map(|t| t.1).sum();
    assert_eq!((inserted, duplicates), (2 * n, n), "each record stored once, each retry a duplicate");
    assert_eq!(
        s.sql("SELECT COUNT(*), COUNT(DISTINCT seq), MIN(seq), MAX(seq) FROM (SELECT seq FROM predictions UNION ALL SELECT seq FROM outcomes) e"),
        [[Value::from(2 * n), Value::from(2 * n), Value::from(1), Value::from(2 * n)]],
        "one gap-free sequence across both tables"
    );
    // Both nodes see everything (the store is shared).
    for addr in [&addr_a, &addr_b] {
        let (st, text) = http(addr, "GET", "/api/v1/jobs/runs", Some(&admin), "");
        assert_eq!(st, 200, "{text}");
    }
    let stats = cli(&s, &config_b, &["stats"]);
    assert_eq!(stats["backend"], "postgres");
    assert_eq!((stats["totals"]["predictions"].as_u64(), stats["totals"]["outcomes"].as_u64()), (Some(n), Some(n)));

    // Two schedulers: one leads, the other stands by.
    let mut sched_a = start_scheduler(&s, &config_a, "sched-a");
    let mut sched_b = start_scheduler(&s, &config_b, "sched-b");
    let runs = || {
        s.sql("SELECT runner, slot, attempt, status FROM job_runs WHERE plugin = 'drift' AND job = 'daily' AND slot IS NOT NULL ORDER BY id")
    };
    wait_for(Duration::from_secs(40), "three scheduled drift.daily runs", || {
        (runs().iter().filter(|r| r[3] == "succeeded").count() >= 3).then_some(())
    });
    let all = runs();
    let runners: HashSet<&str> = all.iter().map(|r| r[0].as_str().unwrap()).collect();
    assert_eq!(runners.len(), 1, "exactly one scheduler ran jobs: {all:?}");
    let slots: HashSet<(i64, i64)> = all.iter().map(|r| (r[1].as_i64().unwrap(), r[2].as_i64().unwrap())).collect();
    assert_eq!(slots.len(), all.len(), "no slot ran twice: {all:?}");
    let leader = s.sql("SELECT holder FROM leases WHERE name = 'scheduler'");
    assert_eq!(leader[0][0].as_str(), runners.iter().next().copied(), "the lease holder is the one that ran");
    for c in [&mut sched_a, &mut sched_b] {
        terminate(&c.0);
        let status = wait_for(Duration::from_secs(15), "a scheduler to exit", || c.0.try_wait().unwrap());
        assert!(status.success(), "{status:?}");
    }

    // The cost state both API nodes built online, batch by batch and racing
    // each other, is what a replay of the history builds. (An online update
    // that lost a race is deferred to the next catch-up, which a route call
    // does; cost is compared because no job ran for it.)
    for api in [&api_a, &api_b] {
        terminate(&api.0);
    }
    drop((api_a, api_b));
    for w in 0..4 {
        cli(&s, &config_b, &["call", "cost", "GET", "/success-rates", "--workspace", &format!("w{w}")]);
    }
    let online = state_digest(&s, "cost");
    assert!(online.len() >= 4 * 5, "the cost plugin kept state per workspace and subject: {online:?}");
    let replayed = cli(&s, &config_a, &["replay", "--plugin", "cost"]);
    assert_eq!(replayed["workspaces"].as_object().map(|w| w.len()), Some(4), "{replayed}");
    assert_eq!(state_digest(&s, "cost"), online, "replay gives the same state");
}

#[test]
fn migrate_moves_an_embedded_installation_to_postgres() {
    let Some(server) = server_url("migrate_moves_an_embedded_installation_to_postgres") else { return };
    let s = Scratch::sqlite();
    let events = s.path("events.jsonl");
    let out = s.run(&["sample", "-o", events.to_str().unwrap(), "--per-plugin", "40"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(s.run(&["ingest", events.to_str().unwrap()]).status.success());
    assert!(s.run(&["keys", "create", "--role", "admin"]).status.success());
    assert!(s.run(&["jobs", "run", "drift", "daily"]).status.success());
    // Proposals and their backtests: notifications in the outbox, routed to a file.
    assert!(s.run(&["jobs", "run", "cost", "learning_cycle"]).status.success());
    let notify = s.write(
        "notify.toml",
        &format!(
            "data_dir = {:?}\n[[notify.destinations]]\nname = \"audit\"\nkind = \"file\"\npath = \"audit.jsonl\"\n",
            s.data_dir().display().to_string()
        ),
    );
    let out = s.cmd(&["notifications", "deliver", "--config", notify.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let sqlite = s.data_dir().join("learnloop.sqlite");
    let from = format!("sqlite:{}", sqlite.display());

    let schema = TestSchema::create(&server);
    let (code, report) = s.json(&["migrate", "--from", &from, "--to", schema.url()]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["verified"], true);
    let tables = report["tables"].as_array().unwrap();
    assert_eq!(tables.len(), 11, "{report}");
    for t in tables {
        assert_eq!(t["source_rows"], t["target_rows"], "{t}");
        assert_eq!(t["source_rows"], t["copied"], "{t}");
    }
    let count = |name: &str| tables.iter().find(|t| t["table"] == name).unwrap()["source_rows"].as_u64().unwrap();
    assert!(count("predictions") > 0 && count("outcomes") > 0 && count("plugin_state") > 0, "{report}");
    assert!(count("job_runs") > 0 && count("api_keys") > 0, "{report}");
    assert!(count("notifications") > 0 && count("deliveries") == count("notifications"), "{report}");

    // What the CLI reads back from PostgreSQL equals what it read from SQLite.
    let pg = s.write(
        "pg.toml",
        &format!("data_dir = {:?}\n[store]\nurl = {:?}\n", s.path("pg-data").display().to_string(), schema.url()),
    );
    let sqlite_cfg = s.write("sqlite.toml", &format!("data_dir = {:?}\n", s.data_dir().display().to_string()));
    for args in [&["stats"][..], &["jobs", "history"], &["keys", "list"], &["notifications", "list"]] {
        let (a, b) = (cli(&s, &sqlite_cfg, args), cli(&s, &pg, args));
        let strip = |mut v: Value| {
            v.as_object_mut().map(|o| o.remove("backend"));
            v
        };
        assert_eq!(strip(a), strip(b), "learnloop {args:?} differs after the copy");
    }
    let export = |cfg: &Path| {
        let out = Command::new(bin("learnloop"))
            .current_dir(s.dir.path())
            .args(["--config", cfg.to_str().unwrap(), "export"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    };
    assert!(export(&sqlite_cfg) == export(&pg), "the exported history differs after the copy");

    // A non-empty target is refused; --resume copies nothing twice.
    let out = s.run(&["migrate", "--from", &from, "--to", schema.url()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not empty") && err.contains("--resume"), "{err}");
    let (code, again) = s.json(&["migrate", "--from", &from, "--to", schema.url(), "--resume"]);
    assert_eq!(code, 0, "{again}");
    assert!(again["tables"].as_array().unwrap().iter().all(|t| t["copied"] == 0), "{again}");

    // The copy continues the sequences: new events and runs get fresh numbers.
    let more = s.write(
        "more.jsonl",
        "{\"type\":\"prediction\",\"id\":\"after-migrate\",\"plugin\":\"cost\",\"subject\":\"r\",\"kind\":\"spot\",\"value\":1}\n",
    );
    let v = cli(&s, &pg, &["ingest", more.to_str().unwrap()]);
    assert_eq!(v["accepted"].as_u64(), Some(1), "{v}");
    cli(&s, &pg, &["jobs", "run", "drift", "daily"]);
    let stats = cli(&s, &pg, &["stats"]);
    assert_eq!(stats["totals"]["predictions"].as_u64(), Some(count("predictions") + 1));
}
