//! Benchmark: how long each dashboard page takes to render on a data
//! directory with about a million events.
//!
//! Starts the real `learnloop-api` on a scratch data directory, ingests
//! `LEARNLOOP_BENCH_EVENTS` events (default 1,000,000: drift predictions of
//! four regression models over 120 days, each with its outcome) over HTTP
//! in batches of 1000, signs in to `/ui` with the admin key, then fetches
//! every page `LEARNLOOP_BENCH_ROUNDS` times (default 5) and prints the
//! median and the slowest time per page against the 300 ms target. The
//! ingest is what most of the run's time goes to.
//!
//! `cargo bench -p learnloop-api --bench dashboard`

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One request on a fresh connection: status, headers, body.
fn request(addr: &str, method: &str, path: &str, headers: &str, body: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    (status, head.to_string(), body.to_string())
}

fn out(args: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stdout().lock(), "{args}");
}

fn main() {
    let events: usize = std::env::var("LEARNLOOP_BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let rounds: usize = std::env::var("LEARNLOOP_BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_learnloop-api"))
        .args(["--data-dir", dir.path().to_str().unwrap(), "--bind", "127.0.0.1:0"])
        .env("LEARNLOOP__STORE__SYNCHRONOUS", "normal")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("learnloop-api exited").unwrap();
        if let Some(a) = line.strip_prefix("learnloop-api listening on http://") {
            break a.to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let key = std::fs::read_to_string(dir.path().join("admin.key")).unwrap().trim().to_string();
    let auth = format!("Authorization: Bearer {key}\r\nContent-Type: application/json\r\n");

    // Ingest: predictions and their outcomes, in event-time order, 1000 a request.
    let started = Instant::now();
    let pairs = events / 2;
    let day = 86_400_000_000i64;
    let t0 = 1_767_225_600_000_000i64; // 2026-01-01
    let span = 120 * day;
    let mut batch = Vec::with_capacity(1000);
    let mut sent = 0usize;
    for i in 0..pairs {
        let model = ["price-model", "demand-model", "churn-model", "eta-model"][i % 4];
        let t = t0 + (i as i64) * (span / pairs as i64);
        let x1 = ((i * 7919) % 1000) as f64 / 100.0 + if t > t0 + 100 * day { 2.0 } else { 0.0 };
        let seg = ["online", "retail", "wholesale"][i % 3];
        let value = 3.0 * x1 + 1.0;
        let time = |m: i64| learnloop_core::Timestamp::from_micros(m).unwrap().to_rfc3339();
        batch.push(format!(
            r#"{{"type":"prediction","id":"p{i}","workspace":"default","plugin":"drift","subject":"{model}","kind":"regression","value":{value},"features":{{"x1":{x1},"segment":"{seg}"}},"event_time":"{}"}}"#,
            time(t)
        ));
        batch.push(format!(
            r#"{{"type":"outcome","id":"o{i}","workspace":"default","plugin":"drift","prediction_id":"p{i}","value":{},"event_time":"{}"}}"#,
            value + ((i % 13) as f64 - 6.0) / 4.0,
            time(t + day / 24)
        ));
        if batch.len() >= 1000 || i + 1 == pairs {
            // Predictions first: an outcome needs its prediction stored.
            let preds: Vec<&String> = batch.iter().step_by(2).collect();
            let outs: Vec<&String> = batch.iter().skip(1).step_by(2).collect();
            for (path, items) in [("/api/v1/predictions", preds), ("/api/v1/outcomes", outs)] {
                let body = format!("[{}]", items.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(","));
                let (status, _, answer) = request(&addr, "POST", path, &auth, &body);
                assert_eq!(status, 200, "{path}: {answer}");
                sent += items.len();
            }
            batch.clear();
        }
    }
    out(format_args!("ingested {sent} events in {:.1} s", started.elapsed().as_secs_f64()));

    // Sign in.
    let form = format!("key={key}");
    let (status, head, _) =
        request(&addr, "POST", "/ui/login", "Content-Type: application/x-www-form-urlencoded\r\n", &form);
    assert_eq!(status, 303, "sign-in: {head}");
    let cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .expect("session cookie")
        .to_string();
    let cookie = format!("Cookie: {cookie}\r\n");

    out(format_args!("{:<28} {:>10} {:>10} {:>8}", "page", "median ms", "max ms", "< 300"));
    for page in
        ["/ui", "/ui/improvements", "/ui/alerts", "/ui/jobs", "/ui/drift", "/ui/trust", "/ui/cost", "/ui/persona"]
    {
        let mut times = Vec::new();
        for _ in 0..rounds {
            let t = Instant::now();
            let (status, _, body) = request(&addr, "GET", page, &cookie, "");
            let took = t.elapsed();
            assert!(status == 200, "{page}: {status} {body}");
            times.push(took);
        }
        times.sort();
        let median = times[times.len() / 2];
        let max = *times.last().unwrap();
        out(format_args!(
            "{:<28} {:>10.1} {:>10.1} {:>8}",
            page,
            median.as_secs_f64() * 1e3,
            max.as_secs_f64() * 1e3,
            if median < Duration::from_millis(300) { "yes" } else { "NO" }
        ));
    }
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
}
