//! Helpers for end-to-end tests that run the real binaries.
//!
//! Binaries are found next to the test executable (`target/<profile>/`),
//! where `cargo test --workspace` builds them before running any test.
//!
//! The store: by default the binaries use SQLite in the scratch data
//! directory. With `LEARNLOOP_E2E_STORE=postgres` every [`Scratch`] gets a
//! fresh PostgreSQL schema on the server at `LEARNLOOP_TEST_PG_URL` (dropped
//! with the scratch directory), and every binary started through the
//! helpers gets it as `LEARNLOOP__STORE__URL`. Tests read what the binaries
//! stored with [`Scratch::sql`], which runs on either backend (the schemas
//! are the same).

pub mod webdriver;

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
    /// The PostgreSQL schema of this scratch store, in PostgreSQL mode.
    pg: Option<learnloop_store::pg_test::TestSchema>,
}

/// Whether the end-to-end tests run on PostgreSQL (`LEARNLOOP_E2E_STORE=postgres`).
pub fn postgres_mode() -> bool {
    match std::env::var("LEARNLOOP_E2E_STORE").as_deref() {
        Ok("postgres") => true,
        Ok("") | Ok("sqlite") | Err(_) => false,
        Ok(other) => panic!("LEARNLOOP_E2E_STORE={other:?}: use `sqlite` (default) or `postgres`"),
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

impl Scratch {
    /// A new empty scratch directory.
    pub fn new() -> Self {
        let pg = postgres_mode().then(|| {
            let server = std::env::var(learnloop_store::pg_test::URL_VAR)
                .unwrap_or_else(|_| panic!("LEARNLOOP_E2E_STORE=postgres needs {}", learnloop_store::pg_test::URL_VAR));
            learnloop_store::pg_test::TestSchema::create(&server)
        });
        Self { dir: tempfile::tempdir().expect("tempdir"), pg }
    }

    /// A scratch directory whose binaries use SQLite in it, whatever
    /// `LEARNLOOP_E2E_STORE` says (for tests of SQLite itself, or of moving
    /// off it).
    pub fn sqlite() -> Self {
        Self { dir: tempfile::tempdir().expect("tempdir"), pg: None }
    }

    /// A scratch directory whose store is a fresh schema on the PostgreSQL
    /// server at `server_url`, whatever `LEARNLOOP_E2E_STORE` says.
    pub fn postgres(server_url: &str) -> Self {
        let pg = learnloop_store::pg_test::TestSchema::create(server_url);
        Self { dir: tempfile::tempdir().expect("tempdir"), pg: Some(pg) }
    }

    /// Whether the binaries of this scratch store into PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.pg.is_some()
    }

    /// The `store.url` the binaries use (`None`: SQLite in the data directory).
    pub fn store_url(&self) -> Option<&str> {
        self.pg.as_ref().map(|p| p.url())
    }

    /// Points a command at this scratch store (sets `LEARNLOOP__STORE__URL`
    /// in PostgreSQL mode; nothing otherwise).
    pub fn store_env<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        if let Some(url) = self.store_url() {
            cmd.env("LEARNLOOP__STORE__URL", url);
        }
        cmd
    }

    /// Runs a query on the store the binaries use (SQLite file or
    /// PostgreSQL schema) and returns its rows as JSON values (integers,
    /// floats, text, booleans, null). Empty if the SQLite file does not
    /// exist yet.
    pub fn sql(&self, query: &str) -> Vec<Vec<serde_json::Value>> {
        use serde_json::Value;
        if let Some(pg) = &self.pg {
            use postgres::types::Type;
            let mut c = postgres::Client::connect(pg.url(), postgres::NoTls).expect("connect to the test schema");
            let rows = c.query(query, &[]).unwrap_or_else(|e| panic!("{query}: {e}"));
            return rows
                .iter()
                .map(|r| {
                    (0..r.len())
                        .map(|i| match *r.columns()[i].type_() {
                            Type::INT8 => r.get::<_, Option<i64>>(i).map_or(Value::Null, Value::from),
                            Type::INT4 => r.get::<_, Option<i32>>(i).map_or(Value::Null, Value::from),
                            Type::FLOAT8 => r.get::<_, Option<f64>>(i).map_or(Value::Null, Value::from),
                            Type::BOOL => r.get::<_, Option<bool>>(i).map_or(Value::Null, Value::from),
                            Type::TEXT | Type::VARCHAR | Type::NAME => {
                                r.get::<_, Option<String>>(i).map_or(Value::Null, Value::from)
                            }
                            ref t => panic!("{query}: column {i} has type {t}, which `sql` does not read"),
                        })
                        .collect()
                })
                .collect();
        }
        let path = self.data_dir().join("learnloop.sqlite");
        if !path.exists() {
            return Vec::new();
        }
        let conn = rusqlite::Connection::open(path).expect("open the SQLite store");
        conn.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
        let mut stmt = conn.prepare(query).unwrap_or_else(|e| panic!("{query}: {e}"));
        let n = stmt.column_count();
        stmt.query_map([], |r| {
            (0..n)
                .map(|i| {
                    Ok(match r.get_ref(i)? {
                        rusqlite::types::ValueRef::Null => Value::Null,
                        rusqlite::types::ValueRef::Integer(v) => Value::from(v),
                        rusqlite::types::ValueRef::Real(v) => Value::from(v),
                        rusqlite::types::ValueRef::Text(t) => Value::from(String::from_utf8_lossy(t).into_owned()),
                        rusqlite::types::ValueRef::Blob(_) => panic!("{query}: column {i} is a blob"),
                    })
                })
                .collect()
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
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
        c.current_dir(self.dir.path()).env_remove("LEARNLOOP_CONFIG");
        self.store_env(&mut c).arg("--data-dir").arg(self.data_dir()).args(args);
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
/// being drained so it never blocks on a full pipe; its stderr is the
/// test's, at `[log] level = "warn"`.
pub fn start_api(s: &Scratch, args: &[&str]) -> (Child, String) {
    start_api_env(s, args, &[])
}

/// [`start_api`] with extra environment variables (e.g. a notification
/// destination's secret).
pub fn start_api_env(s: &Scratch, args: &[&str], env: &[(&str, &str)]) -> (Child, String) {
    use std::io::{BufRead, BufReader};
    let mut cmd = Command::new(bin("learnloop-api"));
    cmd.current_dir(s.dir.path()).env_remove("LEARNLOOP_CONFIG");
    // Its stderr is the test's: warnings and errors only, not an access
    // line per request (RUST_LOG, when the person running the tests sets
    // it, still wins).
    cmd.env("LEARNLOOP__LOG__LEVEL", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = s
        .store_env(&mut cmd)
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

mod fake_ollama {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use serde_json::{Value, json};

    /// A loopback server speaking Ollama's wire format (non-streaming JSON, as
    /// `ollama-rs` sends and expects it): `/api/chat` answers after a delay
    /// (a persona interaction analysis, or no hypotheses), `/api/tags` lists
    /// the default models. Counts the chat requests. Runs until the test
    /// process ends.
    pub struct SlowOllama {
        /// Its base URL, for `[llm] url`.
        pub url: String,
        /// Chat requests received so far.
        pub chats: Arc<AtomicUsize>,
    }

    impl SlowOllama {
        /// Starts one whose chat answers take `delay`.
        pub fn start(delay: Duration) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            let chats = Arc::new(AtomicUsize::new(0));
            let counter = chats.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming().flatten() {
                    let counter = counter.clone();
                    std::thread::spawn(move || {
                        let _ = serve_ollama(stream, &counter, delay);
                    });
                }
            });
            SlowOllama { url, chats }
        }
    }

    /// Answers one request on `stream` (and closes it).
    fn serve_ollama(stream: TcpStream, chats: &AtomicUsize, delay: Duration) -> std::io::Result<()> {
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let path = line.split_whitespace().nth(1).unwrap_or_default().to_string();
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            reader.read_line(&mut h)?;
            if h.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let (status, answer) = match path.as_str() {
            "/api/chat" => {
                chats.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(delay);
                let system = request["messages"][0]["content"].as_str().unwrap_or_default();
                let content = if system.contains("analyse one interaction") {
                    json!({"facet_deltas": {"formal": 0.05}, "goals": ["ship a REST API"]})
                } else {
                    json!({"hypotheses": []})
                };
                let model = request["model"].as_str().unwrap_or("llama3.2");
                (
                    "200 OK",
                    json!({"model": model, "created_at": "2026-01-01T00:00:00Z",
                        "message": {"role": "assistant", "content": content.to_string()}, "done": true}),
                )
            }
            "/api/tags" => (
                "200 OK",
                json!({"models": [{"name": "llama3.2:latest", "modified_at": "2026-01-01T00:00:00Z", "size": 1},
                                   {"name": "nomic-embed-text:latest", "modified_at": "2026-01-01T00:00:00Z", "size": 1}]}),
            ),
            _ => ("404 Not Found", json!({"error": "not found"})),
        };
        let text = answer.to_string();
        let mut stream = stream;
        write!(
            stream,
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
            text.len()
        )?;
        stream.flush()
    }
}

pub use fake_ollama::SlowOllama;

/// A line a test's log should show even when the test passes (the fault
/// suite's counts): it is written straight to stderr, around libtest's
/// output capture, which takes only `print!`/`eprint!` output.
#[macro_export]
macro_rules! report {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}
