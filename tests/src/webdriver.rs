//! A small W3C WebDriver client for the dashboard's browser tests: it
//! starts Debian's `chromedriver` with headless `chromium` and speaks the
//! WebDriver HTTP protocol over loopback with [`crate::http`]-style plain
//! HTTP/1.1 (no client library: the handful of commands needed are JSON
//! over one request each).
//!
//! [`Browser::start`] finds the browser through `scripts/browser-up`, which
//! installs `chromium` and `chromium-driver` with apt-get when missing.
//! Without a browser it returns `None` (the caller skips), except under
//! `CI=true`, where it panics: CI must run these tests.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

/// The key of an element reference in WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A running chromedriver with one browser session; both end on drop.
pub struct Browser {
    driver: crate::Child,
    addr: String,
    session: String,
}

/// One element of the page.
#[derive(Clone, Debug)]
pub struct Element(String);

fn request(addr: &str, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let mut s = TcpStream::connect(addr).expect("connect to chromedriver");
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let text = body.map(Value::to_string).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    )
    .unwrap();
    // chromedriver keeps the connection open: read the head, then exactly
    // Content-Length bytes (or the chunks).
    let mut reader = BufReader::new(s);
    let mut status_line = String::new();
    reader.read_line(&mut status_line).unwrap();
    let status = status_line.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let (mut length, mut chunked) = (None, false);
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap() == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.trim().eq_ignore_ascii_case("content-length") {
                length = v.trim().parse::<usize>().ok();
            } else if k.trim().eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked") {
                chunked = true;
            }
        }
    }
    let body = if let Some(n) = length {
        let mut buf = vec![0; n];
        reader.read_exact(&mut buf).unwrap();
        String::from_utf8_lossy(&buf).into_owned()
    } else {
        let mut rest = String::new();
        let _ = reader.read_to_string(&mut rest);
        if chunked { dechunk(&rest) } else { rest }
    };
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// The repository root (this crate is `tests/`).
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("repo root").to_path_buf()
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session, or `None` (with
    /// the reason on stderr) when no browser can be had outside CI.
    pub fn start() -> Option<Browser> {
        let out =
            std::process::Command::new(repo().join("scripts/browser-up")).output().expect("run scripts/browser-up");
        if !out.status.success() {
            let why = String::from_utf8_lossy(&out.stderr).into_owned();
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("CI=true and no browser for the dashboard tests: {why}");
            }
            crate::report!("dashboard browser tests skipped: no browser ({})", why.trim());
            return None;
        }
        let paths = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut lines = paths.lines();
        let (chrome, driver) = (lines.next().unwrap().to_string(), lines.next().unwrap().to_string());
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut child = std::process::Command::new(&driver)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || for _ in BufReader::new(stdout).lines() {});
        let driver = crate::Child(child);
        let addr = format!("127.0.0.1:{port}");
        let started = Instant::now();
        loop {
            if TcpStream::connect(&addr).is_ok() && request(&addr, "GET", "/status", None).1["value"]["ready"] == true {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "chromedriver did not become ready");
            std::thread::sleep(Duration::from_millis(100));
        }
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": chrome,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"]
        }}}});
        let (status, v) = request(&addr, "POST", "/session", Some(&caps));
        assert_eq!(status, 200, "new WebDriver session: {v}");
        let session = v["value"]["sessionId"].as_str().expect("session id").to_string();
        Some(Browser { driver, addr, session })
    }

    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, v) = request(&self.addr, method, &format!("/session/{}{path}", self.session), body.as_ref());
        assert_eq!(status, 200, "WebDriver {method} {path}: {v}");
        v["value"].clone()
    }

    /// Opens `url`.
    pub fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({"url": url})));
    }

    /// The current URL.
    pub fn url(&self) -> String {
        self.cmd("GET", "/url", None).as_str().unwrap_or_default().to_string()
    }

    /// The page's HTML as the browser holds it.
    pub fn source(&self) -> String {
        self.cmd("GET", "/source", None).as_str().unwrap_or_default().to_string()
    }

    /// Every element matching a CSS selector.
    pub fn all(&self, css: &str) -> Vec<Element> {
        let v = self.cmd("POST", "/elements", Some(json!({"using": "css selector", "value": css})));
        v.as_array()
            .map(|a| a.iter().filter_map(|e| e[ELEMENT].as_str()).map(|s| Element(s.to_string())).collect())
            .unwrap_or_default()
    }

    /// The first element matching `css`, waiting up to 10 s for it (a
    /// click that submits a form returns before the next page has loaded);
    /// panics (with the page) without one.
    pub fn find(&self, css: &str) -> Element {
        let started = Instant::now();
        loop {
            if let Some(e) = self.all(css).into_iter().next() {
                return e;
            }
            if started.elapsed() > Duration::from_secs(10) {
                panic!("no element {css:?} on {}: {}", self.url(), self.source());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The rendered text of an element.
    pub fn text(&self, e: &Element) -> String {
        self.cmd("GET", &format!("/element/{}/text", e.0), None).as_str().unwrap_or_default().to_string()
    }

    /// The text of the first element matching `css`.
    pub fn text_of(&self, css: &str) -> String {
        self.text(&self.find(css))
    }

    /// An attribute of an element.
    pub fn attr(&self, e: &Element, name: &str) -> Option<String> {
        self.cmd("GET", &format!("/element/{}/attribute/{name}", e.0), None).as_str().map(str::to_string)
    }

    /// Whether an element is enabled.
    pub fn enabled(&self, e: &Element) -> bool {
        self.cmd("GET", &format!("/element/{}/enabled", e.0), None).as_bool().unwrap_or(false)
    }

    /// Clicks an element.
    pub fn click(&self, e: &Element) {
        self.cmd("POST", &format!("/element/{}/click", e.0), Some(json!({})));
    }

    /// Types into an element.
    pub fn type_into(&self, e: &Element, text: &str) {
        self.cmd("POST", &format!("/element/{}/value", e.0), Some(json!({"text": text})));
    }

    /// The value of the cookie `name` (HttpOnly ones too: WebDriver sees them).
    pub fn cookie(&self, name: &str) -> Option<Value> {
        let (status, v) = request(&self.addr, "GET", &format!("/session/{}/cookie/{name}", self.session), None);
        (status == 200).then(|| v["value"].clone())
    }

    /// Whether a JavaScript dialog (an `alert(1)` that ran) is open.
    pub fn dialog_open(&self) -> bool {
        request(&self.addr, "GET", &format!("/session/{}/alert/text", self.session), None).0 == 200
    }

    /// Answers the browser's next `confirm()` with OK (the page's scripts
    /// ask before a state-changing button) by accepting any dialog open.
    pub fn accept_dialog(&self) {
        let _ = request(&self.addr, "POST", &format!("/session/{}/alert/accept", self.session), Some(&json!({})));
    }

    /// A PNG screenshot of the window, written to `path`.
    pub fn screenshot(&self, path: &Path) {
        let b64 = self.cmd("GET", "/screenshot", None);
        let png =
            base64::engine::general_purpose::STANDARD.decode(b64.as_str().unwrap_or_default()).expect("base64 PNG");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap();
    }

    /// Resizes the window (CSS pixels).
    pub fn resize(&self, width: u32, height: u32) {
        self.cmd("POST", "/window/rect", Some(json!({"width": width, "height": height})));
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = request(&self.addr, "DELETE", &format!("/session/{}", self.session), None);
        let _ = &self.driver;
    }
}

/// Where the tests write their artifacts: `<target dir>/dashboard-screenshots/`.
pub fn artifacts_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/dashboard-screenshots
    exe.parent().and_then(Path::parent).and_then(Path::parent).expect("target dir").join("dashboard-screenshots")
}
