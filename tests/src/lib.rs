//! Helpers for end-to-end tests that run the real binaries.
//!
//! Binaries are found next to the test executable (`target/<profile>/`),
//! where `cargo test --workspace` builds them before running any test.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Path of a workspace binary built for this test run.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not found: run the tests with `cargo test --workspace` so the binaries are built",
        path.display()
    );
    path
}

/// A scratch data directory with helpers to run `learnloop` on it.
pub struct Scratch {
    /// Kept alive for the test's duration.
    pub dir: tempfile::TempDir,
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

impl Scratch {
    /// A new empty scratch directory.
    pub fn new() -> Self {
        Self { dir: tempfile::tempdir().expect("tempdir") }
    }

    /// The data directory inside it.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A path inside the scratch directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `learnloop --data-dir <data> ARGS`, run in the scratch directory.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin("learnloop"));
        c.current_dir(self.dir.path())
            .env_remove("LEARNLOOP_CONFIG")
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(args);
        c
    }

    /// Runs `learnloop` and returns its output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run learnloop")
    }

    /// Runs `learnloop --json ARGS` and parses stdout.
    pub fn json(&self, args: &[&str]) -> (i32, serde_json::Value) {
        let mut full = vec!["--json"];
        full.extend_from_slice(args);
        let out = self.run(&full);
        let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
            panic!(
                "learnloop {args:?} printed no JSON. stdout: {} stderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code().unwrap_or(-1), v)
    }

    /// Writes a file in the scratch directory.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).expect("write");
        p
    }
}

/// One HTTP/1.1 request on loopback (no client library needed): returns
/// the status and the body.
pub fn http(addr: &str, method: &str, path: &str, key: Option<&str>, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
    let auth = key.map(|k| format!("Authorization: Bearer {k}\r\n")).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

/// A child process killed when dropped, so failing tests leave nothing behind.
pub struct Child(pub std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends SIGTERM to a child.
pub fn terminate(child: &std::process::Child) {
    let _ = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
}

/// Starts the real `learnloop-api` in the scratch directory with `args`
/// (e.g. `--data-dir ...` or `--config ...`, plus `--bind 127.0.0.1:0`),
/// waits until it listens and returns it with its address. Its stdout keeps
/// being drained so it never blocks on a full pipe.
pub fn start_api(s: &Scratch, args: &[&str]) -> (Child, String) {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(bin("learnloop-api"))
        .current_dir(s.dir.path())
        .env_remove("LEARNLOOP_CONFIG")
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("start learnloop-api");
    let stdout = child.stdout.take().expect("piped stdout");
    let child = Child(child);
    let mut lines = BufReader::new(stdout).lines();
    let addr = loop {
        let line = lines.next().expect("learnloop-api exited before listening").expect("read stdout");
        if let Some(a) = line.strip_prefix("learnloop-api listening on http://") {
            break a.to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, addr)
}
