//! The fault suite: the real binaries under the faults an operator meets —
//! `kill -9` during ingest (API and CLI), a full disk, slow and idle
//! clients, SIGTERM under load, a leftover admin key, a scheduler stalled
//! past its lease. README's "Reliability" section says what this checks.
//!
//! Each test prints its counts (attempts, acknowledged, lost) so a CI log
//! shows what was exercised. The store is SQLite in the scratch directory,
//! or a fresh PostgreSQL schema with `LEARNLOOP_E2E_STORE=postgres` (`.ci/run`
//! runs the crate both ways). The full-disk test mounts a small tmpfs, which
//! needs root: elsewhere it says so and skips, except under `CI=true`, where
//! that is a failure.

use std::collections::{BTreeSet, HashMap};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use learnloop_e2e::{Child, Scratch, bin, http, start_api, terminate};
use serde_json::{Value, json};

/// A random number from the OS-seeded hasher (no rand dependency); printed
/// by the tests that use it, so a failure can be replayed by reading the log.
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(Instant::now().elapsed().as_nanos() as u64);
    h.finish()
}

/// Writes a config for `s` with `api` lines added to `[api]` and auth off.
fn config(s: &Scratch, data_dir: &Path, api: &str, auth: bool) -> PathBuf {
    s.write(
        "faults.toml",
        &format!(
            "data_dir = {:?}\n[api]\nbind = \"127.0.0.1:0\"\n{api}\n[auth]\nenabled = {auth}\n[plugins]\nenabled = [\"drift\"]\n",
            data_dir.to_str().unwrap()
        ),
    )
}

fn start(s: &Scratch, config: &Path) -> (Child, String) {
    start_api(s, &["--config", config.to_str().unwrap()])
}

/// `n` drift predictions as a JSON array, ids `{prefix}{i}`, each with a
/// payload of `pad` bytes.
fn batch(prefix: &str, range: std::ops::Range<u64>, pad: usize) -> (String, Vec<String>) {
    let ids: Vec<String> = range.clone().map(|i| format!("{prefix}{i}")).collect();
    let pad = "x".repeat(pad);
    let items: Vec<String> = ids
        .iter()
        .zip(range)
        .map(|(id, i)| {
            format!(
                r#"{{"id":"{id}","plugin":"drift","subject":"m","kind":"regression","value":{i},"payload":{{"pad":"{pad}"}}}}"#
            )
        })
        .collect();
    (format!("[{}]", items.join(",")), ids)
}

/// The ids of the items of a batch answer that are stored (inserted now or before).
fn stored_items(body: &str) -> Vec<String> {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    v["results"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter(|i| matches!(i["status"].as_str(), Some("inserted" | "duplicate")))
                .filter_map(|i| i["id"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn stored_ids(s: &Scratch) -> BTreeSet<String> {
    s.sql("SELECT id FROM predictions").into_iter().map(|r| r[0].as_str().unwrap().to_string()).collect()
}

fn integrity_ok(s: &Scratch) {
    if !s.is_postgres() {
        assert_eq!(s.sql("PRAGMA integrity_check"), [[serde_json::json!("ok")]]);
    }
}

/// A keep-alive HTTP/1.1 connection (the `http` helper closes after one request).
struct Conn {
    s: TcpStream,
    buf: Vec<u8>,
}

/// One answer on a [`Conn`].
struct Answer {
    status: u16,
    headers: HashMap<String, String>,
    body: String,
}

impl Conn {
    fn open(addr: &str) -> std::io::Result<Conn> {
        let s = TcpStream::connect(addr)?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(Conn { s, buf: Vec::new() })
    }

    fn send(&mut self, method: &str, path: &str, body: &str) -> std::io::Result<()> {
        write!(
            self.s,
            "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    fn answer(&mut self) -> std::io::Result<Answer> {
        let eof = || std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed before a complete answer");
        let mut chunk = [0u8; 16384];
        let head_end = loop {
            if let Some(p) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            let n = self.s.read(&mut chunk)?;
            if n == 0 {
                return Err(eof());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).to_string();
        let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        let headers: HashMap<String, String> = head
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let len: usize = headers.get("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
        while self.buf.len() < head_end + len {
            let n = self.s.read(&mut chunk)?;
            if n == 0 {
                return Err(eof());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
        let body = String::from_utf8_lossy(&self.buf[head_end..head_end + len]).to_string();
        self.buf.drain(..head_end + len);
        Ok(Answer { status, headers, body })
    }

    /// Whether the server has closed the connection (EOF or reset) within `wait`.
    fn closed_within(&mut self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        let mut b = [0u8; 1024];
        while Instant::now() < deadline {
            let _ = self.s.set_read_timeout(Some(Duration::from_millis(200)));
            match self.s.read(&mut b) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(_) => return true,
            }
        }
        false
    }
}

fn metric(addr: &str, name: &str) -> f64 {
    let (_, text) = http(addr, "GET", "/metrics", None, "");
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no metric {name} in /metrics"))
}

/// `kill -9` of the API while four clients ingest, at a random moment,
/// three times over: every record the API acknowledged is in the store
/// afterwards, the store is intact, and sending everything again inserts
/// exactly what was never acknowledged-and-stored.
#[test]
fn kill_9_of_the_api_during_concurrent_ingest_loses_no_acknowledged_record() {
    let s = Scratch::new();
    let cfg = config(&s, &s.data_dir(), "", false);
    let acked: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let mut attempted: Vec<(String, String)> = Vec::new(); // (body, prefix) of every batch sent
    let mut attempts = 0usize;
    for run in 0..3 {
        let (mut api, addr) = start(&s, &cfg);
        let stop = Arc::new(AtomicBool::new(false));
        let sent: Arc<Mutex<Vec<String>>> = Arc::default();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let (addr, stop, acked, sent) = (addr.clone(), stop.clone(), acked.clone(), sent.clone());
                std::thread::spawn(move || {
                    let mut n = 0u64;
                    while !stop.load(Ordering::SeqCst) {
                        let (body, _) = batch(&format!("k{run}-{t}-"), n..n + 25, 64);
                        n += 25;
                        sent.lock().unwrap().push(body.clone());
                        let Ok(mut c) = Conn::open(&addr) else { break };
                        if c.send("POST", "/api/v1/predictions", &body).is_err() {
                            break;
                        }
                        match c.answer() {
                            Ok(a) if a.status == 200 => acked.lock().unwrap().extend(stored_items(&a.body)),
                            Ok(a) => panic!("unexpected answer {}: {}", a.status, a.body),
                            Err(_) => break, // killed mid-request: not acknowledged
                        }
                    }
                })
            })
            .collect();
        let wait = 200 + random_u64() % 1500;
        learnloop_e2e::report!("run {run}: kill -9 after {wait} ms");
        std::thread::sleep(Duration::from_millis(wait));
        api.0.kill().unwrap();
        api.0.wait().unwrap();
        stop.store(true, Ordering::SeqCst);
        for t in threads {
            t.join().unwrap();
        }
        let sent = std::mem::take(&mut *sent.lock().unwrap());
        attempts += sent.len() * 25;
        attempted.extend(sent.into_iter().map(|b| (b, String::new())));
        let stored = stored_ids(&s);
        let acked = acked.lock().unwrap();
        let lost: Vec<&String> = acked.iter().filter(|id| !stored.contains(*id)).collect();
        learnloop_e2e::report!(
            "run {run}: records attempted {attempts}, acknowledged {}, stored {}, lost {}",
            acked.len(),
            stored.len(),
            lost.len()
        );
        assert!(lost.is_empty(), "acknowledged but not stored: {lost:?}");
        integrity_ok(&s);
    }
    // Everything again: what was acknowledged is a duplicate, and exactly
    // the records that never landed are inserted.
    let before = stored_ids(&s);
    let (api, addr) = start(&s, &cfg);
    let (mut inserted, mut duplicates) = (0usize, 0usize);
    for (body, _) in &attempted {
        let (st, b) = http(&addr, "POST", "/api/v1/predictions", None, body);
        assert_eq!(st, 200, "{b}");
        let v: Value = serde_json::from_str(&b).unwrap();
        inserted += v["inserted"].as_u64().unwrap() as usize;
        duplicates += v["duplicates"].as_u64().unwrap_or(0) as usize;
        for item in v["results"].as_array().unwrap() {
            if item["status"] == "inserted" {
                let id = item["id"].as_str().unwrap();
                assert!(!acked.lock().unwrap().contains(id), "{id} was acknowledged, yet inserted again");
            }
        }
    }
    drop(api);
    let after = stored_ids(&s);
    learnloop_e2e::report!(
        "re-sent {attempts} records: {inserted} inserted (never stored before), {duplicates} duplicates; stored {} -> {}",
        before.len(),
        after.len()
    );
    assert_eq!(after.len(), before.len() + inserted);
    assert_eq!(after.len(), attempts, "every attempted record is stored exactly once");
    integrity_ok(&s);
}

/// `kill -9` of `learnloop ingest` at random moments: what was committed
/// before the kill stays, the store is intact, and running the same file
/// again completes it with each record stored once.
#[test]
fn kill_9_of_the_cli_during_ingest_loses_nothing_committed() {
    let s = Scratch::new();
    assert!(s.run(&["init"]).status.success());
    const N: u64 = 40_000;
    let mut text = String::new();
    for i in 0..N {
        text.push_str(&format!(
            "{{\"type\":\"prediction\",\"id\":\"c{i}\",\"plugin\":\"drift\",\"subject\":\"m\",\"kind\":\"regression\",\"value\":{i}}}\n"
        ));
    }
    let file = s.write("records.jsonl", &text);
    let count = || s.sql("SELECT COUNT(*) FROM predictions")[0][0].as_i64().unwrap() as u64;
    for run in 0..3 {
        let mut child = Child(
            s.cmd(&["ingest", "--batch-size", "500", file.to_str().unwrap()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let wait = 100 + random_u64() % 900;
        std::thread::sleep(Duration::from_millis(wait));
        let seen = count();
        child.0.kill().unwrap();
        let finished = child.0.wait().unwrap().success();
        let after = count();
        learnloop_e2e::report!(
            "run {run}: kill -9 after {wait} ms: {seen} committed before the kill, {after} after (finished: {finished})"
        );
        assert!(after >= seen, "committed rows lost: {seen} before the kill, {after} after");
        integrity_ok(&s);
    }
    let out = s.run(&["--json", "ingest", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(count(), N, "every record stored once after the re-run");
    integrity_ok(&s);
}

/// A small tmpfs mounted for one test, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. `"4m"`) at `dir`; `None` (after saying
    /// why) where mounting is not allowed, which fails the test under CI.
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        Self::mount_with(dir, &format!("size={size}"))
    }

    /// Mounts with these tmpfs options (`size=...,uid=...,mode=...`).
    fn mount_with(dir: &Path, options: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount").args(["-t", "tmpfs", "-o", options, "tmpfs", dir.to_str().unwrap()]).output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs(dir.to_path_buf())),
            other => {
                let why = match other {
                    Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
                    Err(e) => e.to_string(),
                };
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "the full-disk test needs to mount a tmpfs (run as root): {why}"
                );
                learnloop_e2e::report!("SKIPPED: cannot mount a tmpfs here ({why}); the full-disk test needs root");
                None
            }
        }
    }

    fn resize(&self, size: &str) {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,size={size}"), self.0.to_str().unwrap()])
            .status()
            .unwrap();
        assert!(st.success(), "remount {size}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").args(["-l", self.0.to_str().unwrap()]).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// The disk fills up under the SQLite store: writes answer 507 with
/// `Retry-After` (problem+json), `/ready` is 503 saying why, a metric says
/// so, reads keep working, nothing acknowledged is lost, and everything
/// recovers when space returns.
#[test]
fn a_full_disk_answers_507_and_recovers_when_space_returns() {
    let s = Scratch::sqlite();
    // The data directory itself is the small disk (`Scratch::sql` reads the
    // store there).
    let data = s.data_dir();
    let Some(disk) = Tmpfs::mount(&data, "3m") else { return };
    let cfg = config(&s, &data, "", false);
    let (mut api, addr) = start(&s, &cfg);
    let (acked, full) = fill(&addr);
    check_full(&addr, &full);
    disk.resize("64m");
    recover(&addr);
    terminate(&api.0);
    assert!(api.0.wait().unwrap().success());
    check_acked(&s, &acked);
}

/// A tablespace on a small tmpfs of the PostgreSQL server's machine
/// (loopback: this one), dropped and unmounted on drop — after the schema
/// that uses it, so create it before the [`Scratch`].
struct PgSmallDisk {
    server: String,
    name: String,
    disk: Tmpfs,
}

impl PgSmallDisk {
    fn create(server: &str) -> Option<PgSmallDisk> {
        let name = format!("ll_full_{}", random_u64() % 1_000_000_000);
        let dir = std::env::temp_dir().join(&name);
        let uid = Command::new("id").args(["-u", "postgres"]).output().ok().filter(|o| o.status.success());
        let Some(uid) = uid else {
            assert!(std::env::var("CI").as_deref() != Ok("true"), "no `postgres` user to own the tablespace");
            learnloop_e2e::report!("SKIPPED: no local `postgres` user (the server is not on this machine)");
            return None;
        };
        let uid = String::from_utf8_lossy(&uid.stdout).trim().to_string();
        let disk = Tmpfs::mount_with(&dir, &format!("size=3m,uid={uid},mode=0700"))?;
        let mut c = postgres::Client::connect(server, postgres::NoTls).expect("connect");
        c.batch_execute(&format!("CREATE TABLESPACE {name} LOCATION '{}'", dir.display())).expect("create tablespace");
        Some(PgSmallDisk { server: server.to_string(), name, disk })
    }
}

impl Drop for PgSmallDisk {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&self.server, postgres::NoTls) {
            let _ = c.batch_execute(&format!("DROP TABLESPACE IF EXISTS {}", self.name));
        }
    }
}

/// The same on PostgreSQL: every table of the store's schema moved to a
/// tablespace on a 3 MB tmpfs. The server says `disk_full` (53100); the API
/// answers 507 and `/ready` 503, and all recovers when the volume grows.
#[test]
fn a_full_disk_under_postgresql_answers_507_and_recovers() {
    let Some(server) = learnloop_store::pg_test::server_url("a_full_disk_under_postgresql_answers_507_and_recovers")
    else {
        return;
    };
    let Some(small) = PgSmallDisk::create(&server) else { return };
    let s = Scratch::postgres(&server);
    let cfg = config(&s, &s.data_dir(), "", false);
    let (mut api, addr) = start(&s, &cfg);
    let tables = s.sql("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()");
    for t in &tables {
        s.sql(&format!("ALTER TABLE {} SET TABLESPACE {}", t[0].as_str().unwrap(), small.name));
    }
    let (acked, full) = fill(&addr);
    check_full(&addr, &full);
    small.disk.resize("256m");
    recover(&addr);
    terminate(&api.0);
    assert!(api.0.wait().unwrap().success());
    check_acked(&s, &acked);
    drop(s);
    drop(small);
}

/// Ingests 50-record batches of 1 KB records until a 507; the ids
/// acknowledged before it, and the 507.
fn fill(addr: &str) -> (BTreeSet<String>, Answer) {
    let mut acked = BTreeSet::new();
    for n in 0..4_000u64 {
        let (body, _) = batch("f", n * 50..n * 50 + 50, 1024);
        let mut c = Conn::open(addr).unwrap();
        c.send("POST", "/api/v1/predictions", &body).unwrap();
        let a = c.answer().unwrap();
        match a.status {
            200 => acked.extend(stored_items(&a.body)),
            507 => {
                learnloop_e2e::report!("acknowledged {} records before the disk filled", acked.len());
                return (acked, a);
            }
            other => panic!("answer {other} while the disk filled: {}", a.body),
        }
    }
    panic!("the small disk never filled");
}

/// The 507 is a problem document with `Retry-After`; `/ready` and the
/// metrics say the store is full; reads still work.
fn check_full(addr: &str, full: &Answer) {
    assert_eq!(full.headers.get("content-type").map(String::as_str), Some("application/problem+json"));
    assert!(full.headers.contains_key("retry-after"), "{:?}", full.headers);
    let problem: Value = serde_json::from_str(&full.body).unwrap();
    assert_eq!(problem["type"], "https://learnloop.dev/problems/out-of-space", "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("out of space"), "{problem}");
    let (st, b) = http(addr, "GET", "/ready", None, "");
    assert_eq!(st, 503, "{b}");
    let ready: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(ready["store"], "out of space", "{ready}");
    assert_eq!(metric(addr, "learnloop_store_out_of_space"), 1.0);
    assert!(metric(addr, "learnloop_store_out_of_space_writes_total") >= 1.0);
    let (st, b) = http(addr, "GET", "/api/v1/insights", None, "");
    assert_eq!(st, 200, "reads work on a full store: {b}");
}

/// Once space is back, `/ready` turns 200 by itself (its probe write) and
/// writes are accepted again.
fn recover(addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (st, _) = http(addr, "GET", "/ready", None, "");
        if st == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "/ready stayed {st} after space returned");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(metric(addr, "learnloop_store_out_of_space"), 0.0);
    let (body, _) = batch("after", 0..50, 16);
    let (st, b) = http(addr, "POST", "/api/v1/predictions", None, &body);
    assert_eq!(st, 200, "{b}");
}

fn check_acked(s: &Scratch, acked: &BTreeSet<String>) {
    let stored = stored_ids(s);
    let lost = acked.iter().filter(|id| !stored.contains(*id)).count();
    learnloop_e2e::report!("acknowledged {}, stored {}, lost {lost}", acked.len(), stored.len());
    assert_eq!(lost, 0);
    integrity_ok(s);
}

/// Clients that send their headers a byte at a time, connections left idle,
/// and a body that never completes are all cut off; meanwhile a normal
/// client is still served, though more slow clients connect than the
/// connection cap allows.
#[test]
fn slow_and_idle_clients_are_cut_off() {
    let s = Scratch::new();
    let cfg = config(
        &s,
        &s.data_dir(),
        "header_timeout_ms = 1000\nbody_timeout_ms = 1000\nidle_timeout_ms = 1500\nmax_connections = 40",
        false,
    );
    let (_api, addr) = start(&s, &cfg);

    // 100 slow clients: more than the cap of 40.
    let request = b"GET /health HTTP/1.1\r\nHost: slow\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let mut slow: Vec<Option<TcpStream>> = (0..100).map(|_| Some(TcpStream::connect(&addr).unwrap())).collect();
    let started = Instant::now();
    let normal = {
        let addr = addr.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            let t = Instant::now();
            let (st, _) = http(&addr, "GET", "/health", None, "");
            (st, t.elapsed())
        })
    };
    let mut i = 0;
    while slow.iter().any(Option::is_some) {
        assert!(started.elapsed() < Duration::from_secs(20), "slow clients still connected after 20 s");
        for c in slow.iter_mut() {
            let closed = match c.as_mut() {
                Some(stream) => stream.write_all(&request[i % request.len()..i % request.len() + 1]).is_err(),
                None => false,
            };
            if closed {
                *c = None;
            }
        }
        i += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    learnloop_e2e::report!(
        "100 slow-header clients (cap 40, header timeout 1 s) all cut off after {:?}",
        started.elapsed()
    );
    let (st, took) = normal.join().unwrap();
    learnloop_e2e::report!("a normal request during the attack answered {st} in {took:?}");
    assert_eq!(st, 200);

    // Idle keep-alive connections are closed.
    let mut idle: Vec<Conn> = (0..10)
        .map(|_| {
            let mut c = Conn::open(&addr).unwrap();
            c.send("GET", "/health", "").unwrap();
            assert_eq!(c.answer().unwrap().status, 200);
            c
        })
        .collect();
    let t = Instant::now();
    assert!(idle.iter_mut().all(|c| c.closed_within(Duration::from_secs(10))), "idle connections stayed open");
    learnloop_e2e::report!("10 idle keep-alive connections (idle timeout 1.5 s) closed after {:?}", t.elapsed());

    // A body that never completes: 408, and the connection closes.
    let mut c = Conn::open(&addr).unwrap();
    write!(c.s, "POST /api/v1/predictions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n[{{").unwrap();
    let a = c.answer().unwrap();
    assert_eq!(a.status, 408, "{}", a.body);
    assert_eq!(a.headers.get("connection").map(String::as_str), Some("close"));
    assert!(c.closed_within(Duration::from_secs(5)));

    let header = metric(&addr, "learnloop_http_header_timeouts_total");
    let idle_closed = metric(&addr, "learnloop_http_idle_timeouts_total");
    let body = metric(&addr, "learnloop_http_body_timeouts_total");
    learnloop_e2e::report!("metrics: header timeouts {header}, idle timeouts {idle_closed}, body timeouts {body}");
    assert!(header >= 100.0 && idle_closed >= 10.0 && body >= 1.0);
}

/// SIGTERM while clients ingest on kept-alive connections: every request
/// already sent is answered, the server closes connections after their
/// answer (`Connection: close`) and then refuses new ones, exits 0, and
/// everything acknowledged is stored.
#[test]
fn sigterm_under_load_answers_what_was_sent() {
    let s = Scratch::new();
    let cfg = config(&s, &s.data_dir(), "", false);
    let (mut api, addr) = start(&s, &cfg);
    let acked: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    // Requests written on a connection that had already answered before,
    // with no answer: the failure this test exists for.
    let unanswered_on_reused: Arc<Mutex<usize>> = Arc::default();
    // Requests written on a brand-new connection that was reset before any
    // answer: the kernel had queued it just as the listener closed. HTTP/1.1
    // cannot tell the client more; counted, not failed.
    let reset_fresh: Arc<Mutex<usize>> = Arc::default();
    let sent_total: Arc<Mutex<usize>> = Arc::default();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (addr, acked, reused, fresh, total) =
                (addr.clone(), acked.clone(), unanswered_on_reused.clone(), reset_fresh.clone(), sent_total.clone());
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(30);
                let mut n = 0u64;
                let mut closes = 0usize;
                'conns: while Instant::now() < deadline {
                    let Ok(mut c) = Conn::open(&addr) else { break }; // refused: the server is gone
                    let mut answered = 0;
                    loop {
                        let id = format!("s{t}-{n}");
                        n += 1;
                        let body =
                            format!(r#"{{"id":"{id}","plugin":"drift","subject":"m","kind":"regression","value":1}}"#);
                        if c.send("POST", "/api/v1/predictions", &body).is_err() {
                            continue 'conns; // never sent
                        }
                        *total.lock().unwrap() += 1;
                        match c.answer() {
                            Ok(a) => {
                                assert!(matches!(a.status, 200 | 201), "{} {}", a.status, a.body);
                                acked.lock().unwrap().insert(id);
                                answered += 1;
                                if a.headers.get("connection").map(String::as_str) == Some("close") {
                                    closes += 1;
                                    continue 'conns;
                                }
                            }
                            Err(_) if answered == 0 => {
                                *fresh.lock().unwrap() += 1;
                                continue 'conns;
                            }
                            Err(e) => {
                                learnloop_e2e::report!("request {id} on a reused connection got no answer: {e}");
                                *reused.lock().unwrap() += 1;
                                continue 'conns;
                            }
                        }
                    }
                }
                closes
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    terminate(&api.0);
    let status = api.0.wait().unwrap();
    let closes: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let stored = stored_ids(&s);
    let acked = acked.lock().unwrap();
    let lost = acked.iter().filter(|id| !stored.contains(*id)).count();
    let reused = *unanswered_on_reused.lock().unwrap();
    let fresh = *reset_fresh.lock().unwrap();
    learnloop_e2e::report!(
        "SIGTERM under load: {} requests sent, {} acknowledged, {lost} lost; {closes} answers said `Connection: close`; \
         {reused} unanswered on reused connections; {fresh} reset on fresh connections",
        *sent_total.lock().unwrap(),
        acked.len()
    );
    assert!(status.success(), "{status:?}");
    assert_eq!(lost, 0);
    assert_eq!(reused, 0, "requests sent on open connections must be answered");
    assert!(closes >= 1, "draining answers carry `Connection: close`");
    integrity_ok(&s);
}

/// An `admin.key` left next to a new, empty store (the old store was
/// deleted) no longer stops the start: it is kept as `admin.key.old`, a new
/// key is made, and it works.
#[test]
fn a_leftover_admin_key_is_kept_aside_and_a_new_one_made() {
    let s = Scratch::new();
    let data = s.data_dir();
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("admin.key"), "ll_stale_key_from_an_old_store\n").unwrap();
    let cfg = config(&s, &data, "", true);
    let (_api, addr) = start(&s, &cfg);
    assert_eq!(std::fs::read_to_string(data.join("admin.key.old")).unwrap(), "ll_stale_key_from_an_old_store\n");
    let key = std::fs::read_to_string(data.join("admin.key")).unwrap().trim().to_string();
    assert_ne!(key, "ll_stale_key_from_an_old_store");
    let (st, b) = http(&addr, "GET", "/api/v1/jobs", Some(&key), "");
    assert_eq!(st, 200, "{b}");
    let (st, _) = http(&addr, "GET", "/api/v1/jobs", Some("ll_stale_key_from_an_old_store"), "");
    assert_eq!(st, 401);
}

/// Starts `learnloop-scheduler` on `config` as `holder`, its stderr in `<holder>.log`.
fn start_scheduler(s: &Scratch, config: &Path, holder: &str) -> Child {
    let mut cmd = Command::new(bin("learnloop-scheduler"));
    cmd.current_dir(s.dir.path()).env_remove("LEARNLOOP_CONFIG");
    s.store_env(&mut cmd)
        .args(["--config", config.to_str().unwrap(), "--holder", holder])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(s.dir.path().join(format!("{holder}.log"))).unwrap());
    Child(cmd.spawn().unwrap())
}

/// A leading scheduler stalled (SIGSTOP) past its lease: the standby takes
/// over within the lease bound, and when the stalled one wakes up it runs
/// nothing (its lease token is stale), so no slot succeeds twice.
#[test]
fn a_scheduler_stalled_past_its_lease_runs_no_slot_twice() {
    const TTL_MS: u64 = 3_000;
    let s = Scratch::new();
    let data = s.data_dir();
    let cfg = s.write(
        "sched.toml",
        &format!(
            "data_dir = {:?}\n[plugins]\nenabled = [\"drift\"]\n[scheduler]\nlease_ttl_ms = {TTL_MS}\ntick_ms = 500\ncatch_up = false\n[scheduler.jobs.\"drift.daily\"]\nschedule = \"*/2 * * * * *\"\n",
            data.to_str().unwrap()
        ),
    );
    // Something for the job to read.
    let file = s.path("events.jsonl");
    assert!(s.run(&["sample", "-o", file.to_str().unwrap(), "--per-plugin", "20"]).status.success());
    assert!(s.run(&["ingest", file.to_str().unwrap()]).status.success());
    let start_sched = |holder: &str| start_scheduler(&s, &cfg, holder);
    let leader = || -> Option<String> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as i64;
        s.sql("SELECT holder, expires_at FROM leases WHERE name = 'scheduler'")
            .into_iter()
            .find(|r| r[1].as_i64().unwrap_or(0) > now)
            .and_then(|r| r[0].as_str().map(String::from))
    };
    let wait_for = |what: &str, f: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let a = start_sched("stall-a");
    wait_for("stall-a to lead", &|| leader().as_deref() == Some("stall-a"));
    let _b = start_sched("stall-b");
    std::thread::sleep(Duration::from_secs(3));
    let kill = |sig: &str, c: &Child| {
        assert!(Command::new("kill").args([sig, &c.0.id().to_string()]).status().unwrap().success());
    };
    kill("-STOP", &a);
    let stalled = Instant::now();
    wait_for("stall-b to take over", &|| leader().as_deref() == Some("stall-b"));
    let took = stalled.elapsed();
    learnloop_e2e::report!("stall-a stopped; stall-b took over after {took:?} (lease {TTL_MS} ms)");
    assert!(took <= Duration::from_millis(TTL_MS + 500 + 3_000), "take-over took {took:?}");
    std::thread::sleep(Duration::from_secs(3));
    kill("-CONT", &a);
    std::thread::sleep(Duration::from_secs(5));
    let runs = s.sql(
        "SELECT slot, runner, status FROM job_runs WHERE plugin = 'drift' AND job = 'daily' AND status = 'succeeded'",
    );
    let mut seen = BTreeSet::new();
    for r in &runs {
        assert!(seen.insert(r[0].as_i64()), "slot {:?} succeeded twice: {runs:?}", r[0]);
    }
    let by_a_after = runs.iter().filter(|r| r[1] == "stall-a").count();
    learnloop_e2e::report!("{} slots succeeded, each once ({} by stall-a in all)", runs.len(), by_a_after);
    assert_eq!(leader().as_deref(), Some("stall-b"), "the woken scheduler did not take the lease back");
}

/// A key revoked through the API is refused by that node at once (not
/// after the 2 s the key cache keeps a verified key); the key routes need
/// an admin key and never show a key again.
#[test]
fn a_key_revoked_through_the_api_is_refused_at_once() {
    let s = Scratch::new();
    let data = s.data_dir();
    let cfg = config(&s, &data, "", true);
    let (_api, addr) = start(&s, &cfg);
    let admin = std::fs::read_to_string(data.join("admin.key")).unwrap().trim().to_string();
    let (st, b) = http(
        &addr,
        "POST",
        "/api/v1/keys",
        Some(&admin),
        r#"{"name":"billing ingest","role":"writer","workspace":"default"}"#,
    );
    assert_eq!(st, 201, "{b}");
    let created: Value = serde_json::from_str(&b).unwrap();
    let key = created["key"].as_str().unwrap().to_string();
    let id = created["id"].as_i64().unwrap();
    assert_eq!(created["role"], "writer");
    // Bad bodies are refused, naming the field.
    for (body, field) in [
        (r#"{"name":"x","role":"writer"}"#, "workspace"),
        (r#"{"name":"x","role":"admin","workspace":"default"}"#, "workspace"),
        (r#"{"name":"x","role":"owner"}"#, "role"),
        (r#"{"name":"","role":"admin"}"#, "name"),
        (r#"{"name":"x","role":"admin","color":"red"}"#, ""),
    ] {
        let (st, b) = http(&addr, "POST", "/api/v1/keys", Some(&admin), body);
        assert_eq!(st, 422, "{body}: {b}");
        if !field.is_empty() {
            let v: Value = serde_json::from_str(&b).unwrap();
            assert_eq!(v["field"], field, "{body}: {b}");
        }
    }
    // The writer key works, and is cached now.
    let record = r#"{"id":"rk1","plugin":"drift","subject":"m","kind":"regression","value":1}"#;
    let (st, b) = http(&addr, "POST", "/api/v1/predictions", Some(&key), record);
    assert_eq!(st, 201, "{b}");
    let (st, _) = http(&addr, "GET", "/api/v1/keys", Some(&key), "");
    assert_eq!(st, 403, "the key routes need an admin key");
    let (st, b) = http(&addr, "POST", &format!("/api/v1/keys/{id}/revoke"), Some(&admin), "");
    assert_eq!(st, 200, "{b}");
    let revoked = Instant::now();
    let (st, b) = http(&addr, "GET", "/api/v1/drift/summary", Some(&key), "");
    learnloop_e2e::report!("first request {:?} after revoking: {st}", revoked.elapsed());
    assert_eq!(st, 401, "a revoked key is refused at once: {b}");
    let (st, b) = http(&addr, "GET", "/api/v1/keys", Some(&admin), "");
    assert_eq!(st, 200, "{b}");
    let list: Value = serde_json::from_str(&b).unwrap();
    let listed = list["keys"].as_array().unwrap().iter().find(|k| k["id"] == id).unwrap().clone();
    assert!(listed["revoked_at"].is_string(), "{listed}");
    assert!(!b.contains(&key), "the list never shows a key");
    let (st, _) = http(&addr, "POST", "/api/v1/keys/999999/revoke", Some(&admin), "");
    assert_eq!(st, 404);
}

/// `kill -9` of the leading scheduler in the middle of a job run (the
/// persona `enrich` job, made slow by a model that takes 700 ms an answer):
/// the standby takes over within the lease bound, the killed run never
/// counts as succeeded and nothing of it is applied (its results commit
/// fenced, all at the end), the standby runs later slots, and no slot
/// succeeds twice.
#[test]
fn a_scheduler_killed_mid_job_hands_over_and_runs_no_slot_twice() {
    const TTL_MS: u64 = 3_000;
    let ollama = learnloop_e2e::SlowOllama::start(Duration::from_millis(700));
    let s = Scratch::new();
    let data = s.data_dir();
    let cfg = s.write(
        "sched.toml",
        &format!(
            "data_dir = {:?}\n[llm]\nurl = {:?}\ntimeout_ms = 5000\nretry_after_ms = 0\n\
             [scheduler]\nlease_ttl_ms = {TTL_MS}\ntick_ms = 500\ncatch_up = false\nretry_backoff_ms = 1000\n\
             [scheduler.jobs.\"persona.enrich\"]\nschedule = \"*/2 * * * * *\"\n",
            data.to_str().unwrap(),
            ollama.url
        ),
    );
    // Eight interactions waiting for the model: one run takes about 5.6 s.
    let mut lines = String::new();
    for i in 0..8 {
        lines.push_str(&format!(
            "{{\"type\":\"prediction\",\"id\":\"i{i}\",\"plugin\":\"persona\",\"subject\":\"u1\",\"kind\":\"interaction\",\
             \"label\":\"h1\",\"event_time\":\"2026-01-01T0{i}:00:00Z\",\"payload\":{{\"input_text\":\"build api\",\
             \"hypotheses\":[{{\"id\":\"h1\",\"text\":\"Do you want to build a REST API?\",\"confidence\":0.75}}]}}}}\n"
        ));
    }
    let file = s.write("interactions.jsonl", &lines);
    let out = s.run(&["--config", cfg.to_str().unwrap(), "ingest", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let start_sched = |holder: &str| start_scheduler(&s, &cfg, holder);
    let runs = || -> Vec<(i64, i64, String, String)> {
        s.sql("SELECT slot, attempt, runner, status FROM job_runs WHERE plugin = 'persona' AND job = 'enrich' ORDER BY id")
            .into_iter()
            .map(|r| {
                (r[0].as_i64().unwrap(), r[1].as_i64().unwrap(), r[2].as_str().unwrap().into(), r[3].as_str().unwrap().into())
            })
            .collect()
    };
    let wait_for = |what: &str, limit: Duration, f: &dyn Fn() -> bool| {
        let deadline = Instant::now() + limit;
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}; runs: {:?}", runs());
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let mut a = start_sched("mid-a");
    wait_for("mid-a to start an enrich run", Duration::from_secs(30), &|| {
        runs().iter().any(|r| r.2 == "mid-a" && r.3 == "running")
    });
    let _b = start_sched("mid-b");
    // Well inside the run (the model has answered some items, not all).
    std::thread::sleep(Duration::from_millis(1500));
    let killed_slot = runs().iter().find(|r| r.2 == "mid-a" && r.3 == "running").map(|r| r.0);
    a.0.kill().unwrap();
    a.0.wait().unwrap();
    let killed = Instant::now();
    let killed_slot = killed_slot.expect("mid-a's run was still going when it was killed");
    let chats_at_kill = ollama.chats.load(Ordering::SeqCst);
    wait_for("mid-b to finish an enrich run", Duration::from_secs(40), &|| {
        runs().iter().any(|r| r.2 == "mid-b" && r.3 == "succeeded")
    });
    learnloop_e2e::report!(
        "mid-a killed during slot {killed_slot} after {chats_at_kill} model calls; mid-b succeeded a run {:?} later",
        killed.elapsed()
    );
    let all = runs();
    learnloop_e2e::report!("runs: {all:?}");
    let mut succeeded = BTreeSet::new();
    for r in all.iter().filter(|r| r.3 == "succeeded") {
        assert!(succeeded.insert(r.0), "slot {} succeeded twice: {all:?}", r.0);
    }
    assert!(
        !all.iter().any(|r| r.2 == "mid-a" && r.0 == killed_slot && r.3 == "succeeded"),
        "the killed run counts as succeeded: {all:?}"
    );
    // mid-b enriched everything the killed run had asked the model about:
    // its answers were never applied.
    let (code, stats) = s.json(&["--config", cfg.to_str().unwrap(), "call", "persona", "GET", "/stats"]);
    assert_eq!(code, 0, "{stats}");
    learnloop_e2e::report!("persona stats after the hand-over: {stats}");
    assert_eq!((stats["analysed_by_llm"].clone(), stats["llm_pending"].clone()), (json!(8), json!(0)), "{stats}");
}
