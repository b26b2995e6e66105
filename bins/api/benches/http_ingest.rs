//! Benchmark: HTTP ingest through the real `learnloop-api` binary on
//! loopback. Every answer comes after its transaction is committed; it runs
//! once with `store.synchronous = "full"` (fsynced: survives power loss) and
//! once with `"normal"` (survives a process crash), so the cost of the disk's
//! fsync is visible.
//!
//! Phase 1: single-event `POST /api/v1/predictions` from many keep-alive
//! connections: requests/s, p50/p99/max latency. Phase 2: batches of 500:
//! events/s. Each phase is bounded in time. The load generator shares the
//! machine's two cores with the server.
//!
//! `cargo bench -p learnloop-api --bench http_ingest`
//! (`LEARNLOOP_BENCH_SECONDS` per phase, default 10; `LEARNLOOP_BENCH_CONNECTIONS`, default 32).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Conn {
    fn open(addr: &str) -> Conn {
        let s = TcpStream::connect(addr).unwrap();
        s.set_nodelay(true).unwrap();
        Conn { reader: BufReader::new(s.try_clone().unwrap()), writer: s }
    }

    fn post(&mut self, path: &str, key: &str, body: &str) -> u16 {
        write!(
            self.writer,
            "POST {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut status_line = String::new();
        self.reader.read_line(&mut status_line).unwrap();
        let status = status_line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            self.reader.read_line(&mut h).unwrap();
            if h == "\r\n" || h.is_empty() {
                break;
            }
            if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; len];
        self.reader.read_exact(&mut body).unwrap();
        status
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    for sync in ["full", "normal"] {
        run(sync);
    }
}

fn run(sync: &str) {
    let secs: u64 = std::env::var("LEARNLOOP_BENCH_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let conns: usize = std::env::var("LEARNLOOP_BENCH_CONNECTIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(32);
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_learnloop-api"))
        .args(["--data-dir", dir.path().to_str().unwrap(), "--bind", "127.0.0.1:0"])
        .env("LEARNLOOP__PLUGINS__ENABLED", "[\"drift\"]")
        .env("LEARNLOOP__STORE__SYNCHRONOUS", sync)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let l = lines.next().unwrap().unwrap();
        if let Some(a) = l.strip_prefix("learnloop-api listening on http://") {
            break a.to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let key = std::fs::read_to_string(dir.path().join("admin.key")).unwrap().trim().to_string();
    let meaning = if sync == "full" {
        "fsync per commit: survives power loss"
    } else {
        "no fsync per commit: survives a process crash, not power loss"
    };
    println!("HTTP ingest benchmark: learnloop-api on {addr}, store.synchronous = {sync} ({meaning})");

    // Phase 1: single events.
    let deadline = Instant::now() + Duration::from_secs(secs);
    let next_id = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let handles: Vec<_> = (0..conns)
        .map(|_| {
            let (addr, key, next_id) = (addr.clone(), key.clone(), next_id.clone());
            std::thread::spawn(move || {
                let mut c = Conn::open(&addr);
                let mut lat = Vec::new();
                while Instant::now() < deadline {
                    let i = next_id.fetch_add(1, Ordering::Relaxed);
                    let body = format!(
                        r#"{{"id":"s{i}","plugin":"drift","subject":"m{}","kind":"regression","value":{i}}}"#,
                        i % 10
                    );
                    let t = Instant::now();
                    let st = c.post("/api/v1/predictions?workspace=default", &key, &body);
                    lat.push(t.elapsed());
                    assert_eq!(st, 201);
                }
                lat
            })
        })
        .collect();
    let mut lat: Vec<Duration> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    let elapsed = started.elapsed().as_secs_f64();
    lat.sort();
    println!(
        "single events: {:>8.0} requests/s over {} connections ({} requests in {elapsed:.1} s) | p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        lat.len() as f64 / elapsed,
        conns,
        lat.len(),
        percentile(&lat, 0.5).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
        lat.last().unwrap().as_secs_f64() * 1e3
    );

    // Phase 2: batches of 500.
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let events = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let (addr, key, next_id, events) = (addr.clone(), key.clone(), next_id.clone(), events.clone());
            std::thread::spawn(move || {
                let mut c = Conn::open(&addr);
                while Instant::now() < deadline {
                    let first = next_id.fetch_add(500, Ordering::Relaxed);
                    let items: Vec<String> = (first..first + 500)
                        .map(|i| {
                            format!(
                                r#"{{"id":"b{i}","plugin":"drift","subject":"m{}","kind":"regression","value":{i}}}"#,
                                i % 10
                            )
                        })
                        .collect();
                    assert_eq!(
                        c.post("/api/v1/predictions?workspace=default", &key, &format!("[{}]", items.join(","))),
                        200
                    );
                    events.fetch_add(500, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!("batches of 500: {:>8.0} events/s over 8 connections", events.load(Ordering::Relaxed) as f64 / elapsed);
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
}
