//! Opening an unknown plugin library in a child process first, so that a
//! library that crashes while loading is a load error for that plugin, not
//! the end of the process that wanted it.
//!
//! A native library runs its code in whoever opens it: a bad pointer is a
//! SIGSEGV, a panic in an `extern "C"` entry point an abort, and no
//! `catch_unwind` can stop either. So before [`crate::DynamicPlugin::load`]
//! opens a library here, the *probe program* opens it in a child process:
//! it runs the library's initialisers, reads its ABI version, creates an
//! instance, asks for its manifest, destroys the instance and reports, one
//! line per step, on stdout. The parent waits (at most
//! [`DEFAULT_TIMEOUT`], then kills it) and reads the report:
//!
//! * the library loaded: it is opened here too (what it did in the child it
//!   does again here, so the check covers loading, not the plugin's later
//!   calls);
//! * it failed cleanly (wrong ABI version, missing symbol, not a library, a
//!   panic the glue caught): the same [`LoadError`] loading it here would
//!   have given, without opening it here;
//! * it crashed, aborted, hung or exited: [`LoadError::Probe`], naming the
//!   file, what happened ("was killed by signal SIGSEGV (invalid memory
//!   access)", "aborted (signal SIGABRT)", "exited with status 3", "did not
//!   finish within 10 s"), the step it was on and the tail of its stderr.
//!
//! The probe program is the running executable re-executed with
//! [`PROBE_ENV`] set to the library's path: each binary calls [`init`]
//! first thing in `main`, which serves that request (and exits) in the
//! child and makes the executable the probe program in the parent. A
//! process that never calls [`init`] or [`set_program`] (a test, an
//! embedder) loads libraries in-process directly, as before. A library that
//! passed is remembered (by path, size and modification time), so loading
//! it again in the same process does not start another child.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use learnloop_plugin_api::Manifest;
use learnloop_plugin_api::abi;
use learnloop_plugin_api::loader::LoadStep;
use serde::{Deserialize, Serialize};

use crate::{DynamicPlugin, LoadError};

/// The environment variable that makes a learnloop binary a probe child:
/// it holds the path of the library to open.
pub const PROBE_ENV: &str = "LEARNLOOP_PLUGIN_PROBE";

/// How long a child may take to open a library before it is killed.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// What starts every line of the child's report on stdout (a library may
/// print to stdout too; other lines are ignored).
const PREFIX: &str = "learnloop-plugin-probe ";

/// The most of the child's stdout read (a library printing without end
/// cannot make the parent grow without bound); the rest is discarded.
const STDOUT_LIMIT: u64 = 16 << 20;

/// The most of the child's stderr kept (its tail: enough for the panic
/// message before the backtrace Rust prints when a panic cannot unwind).
const STDERR_KEEP: usize = 64 << 10;

/// The probe program of this process ([`init`], [`set_program`]).
static PROGRAM: RwLock<Option<PathBuf>> = RwLock::new(None);

/// Libraries that passed in this process, with the file's stamp then.
static PASSED: Mutex<Vec<(PathBuf, Stamp)>> = Mutex::new(Vec::new());

/// Call first thing in `main` (before parsing arguments or starting
/// threads). In a probe child (started with [`PROBE_ENV`] set) it opens
/// the library, reports, and exits the process; otherwise it makes the
/// running executable the probe program for every library this process
/// loads, and returns.
pub fn init() {
    if let Some(path) = std::env::var_os(PROBE_ENV).filter(|p| !p.is_empty()) {
        std::process::exit(child(Path::new(&path)));
    }
    if let Ok(exe) = std::env::current_exe() {
        set_program(Some(exe));
    }
}

/// Sets the probe program (`None`: open libraries in-process directly).
/// It must be a learnloop binary whose `main` calls [`init`] first; tests,
/// whose executables are not, point it at one (`learnloop-plugin-probe`,
/// this crate's own, or `learnloop`).
pub fn set_program(program: Option<PathBuf>) {
    *PROGRAM.write().unwrap_or_else(|e| e.into_inner()) = program;
}

/// The probe program of this process, if any.
pub fn program() -> Option<PathBuf> {
    PROGRAM.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Checks `path` in a child process with this process's probe program
/// (nothing to do without one, or for a library that already passed here).
/// `Err` is the reason not to open it in this process.
pub fn inspect(path: &Path) -> Result<(), LoadError> {
    let Some(program) = program() else { return Ok(()) };
    let stamp = Stamp::of(path);
    let passed = || PASSED.lock().unwrap_or_else(|e| e.into_inner());
    if stamp.is_some() && passed().iter().any(|(p, s)| p == path && Some(s) == stamp.as_ref()) {
        return Ok(());
    }
    Probe::new(program).inspect(path)?;
    if let Some(stamp) = stamp {
        passed().push((path.to_owned(), stamp));
    }
    Ok(())
}

/// Which file a passed check was about: a library replaced at the same
/// path is checked again.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
}

impl Stamp {
    fn of(path: &Path) -> Option<Stamp> {
        let m = std::fs::metadata(path).ok()?;
        Some(Stamp { len: m.len(), modified: m.modified().ok() })
    }
}

/// One way of checking libraries in a child process: which program to run
/// and how long to wait for it.
#[derive(Debug, Clone)]
pub struct Probe {
    program: PathBuf,
    timeout: Duration,
}

impl Probe {
    /// Runs `program` (a learnloop binary whose `main` calls [`init`]
    /// first), waiting [`DEFAULT_TIMEOUT`].
    pub fn new(program: PathBuf) -> Probe {
        Probe { program, timeout: DEFAULT_TIMEOUT }
    }

    /// Waits at most `timeout` for the child before killing it.
    pub fn with_timeout(mut self, timeout: Duration) -> Probe {
        self.timeout = timeout;
        self
    }

    /// Opens `path` in a child process and returns its manifest, or why it
    /// must not be opened in this one.
    pub fn inspect(&self, path: &Path) -> Result<Manifest, LoadError> {
        let refuse = |message: String| LoadError::Probe { path: path.to_owned(), message };
        let mut child = Command::new(&self.program)
            .env(PROBE_ENV, path)
            // A short stderr whose tail is the panic message, not a backtrace.
            .env("RUST_BACKTRACE", "0")
            .env("RUST_LIB_BACKTRACE", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                refuse(format!(
                    "cannot start the child process that checks a library before it is loaded ({}): {e}; the plugin was not loaded",
                    self.program.display()
                ))
            })?;
        let seen = Arc::new(Mutex::new(Seen::default()));
        let readers = [
            child.stdout.take().map(|out| {
                let seen = seen.clone();
                std::thread::spawn(move || read_report(out, &seen))
            }),
            child.stderr.take().map(|err| {
                let seen = seen.clone();
                std::thread::spawn(move || read_stderr(err, &seen))
            }),
        ];
        let started = Instant::now();
        let mut pause = Duration::from_millis(1);
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if started.elapsed() >= self.timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
                Ok(None) => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(refuse(format!("cannot wait for the child process that checks it: {e}")));
                }
            }
        };
        // The pipes close when the child exits, unless something it
        // started still holds them: wait for the readers only briefly.
        let deadline = Instant::now() + Duration::from_secs(2);
        for reader in readers.into_iter().flatten() {
            while !reader.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if reader.is_finished() {
                let _ = reader.join();
            }
        }
        let seen = std::mem::take(&mut *seen.lock().unwrap_or_else(|e| e.into_inner()));
        let report = seen.report.as_deref().map(serde_json::from_str::<Report>);
        let failed = |what: String| {
            let step = seen.step.as_deref().map_or("starting up", step_words);
            let stderr = stderr_tail(&seen.stderr);
            let stderr = if stderr.is_empty() { String::new() } else { format!("; its stderr ends: {stderr}") };
            refuse(format!(
                "the library {what} while {step}, in the child process that checks a library before it is loaded; the plugin was not loaded{stderr}"
            ))
        };
        match (status, report) {
            (None, _) => Err(failed(format!("did not finish within {} and was killed", seconds(self.timeout)))),
            (Some(status), Some(Ok(report))) => match report.into_result(path) {
                Ok(manifest) if status.success() => Ok(manifest),
                Ok(_) => Err(failed(describe(status))),
                // It failed cleanly before whatever happened at exit: that
                // is the first thing wrong with it.
                Err(e) => Err(e),
            },
            (Some(status), Some(Err(e))) => {
                Err(failed(format!("{} and its report was garbled ({e})", describe(status))))
            }
            (Some(status), None) if status.success() => Err(refuse(format!(
                "the child process that checks a library before it is loaded ({}) gave no report; is it a learnloop binary? The plugin was not loaded",
                self.program.display()
            ))),
            (Some(status), None) => Err(failed(describe(status))),
        }
    }
}

/// What the parent learned from the child's output so far.
#[derive(Default)]
struct Seen {
    /// The last step the child announced.
    step: Option<String>,
    /// The child's report (JSON), once it gave one.
    report: Option<String>,
    /// The tail of its stderr.
    stderr: Vec<u8>,
}

fn read_report(out: impl Read, seen: &Mutex<Seen>) {
    let mut out = BufReader::new(out);
    let mut limited = (&mut out).take(STDOUT_LIMIT);
    let mut line = Vec::new();
    loop {
        line.clear();
        match limited.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line);
        let Some(rest) = text.trim_end().strip_prefix(PREFIX) else { continue };
        let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(step) = rest.strip_prefix("step ") {
            seen.step = Some(step.to_string());
        } else if let Some(report) = rest.strip_prefix("report ") {
            seen.report = Some(report.to_string());
        }
    }
    let _ = std::io::copy(&mut out, &mut std::io::sink());
}

fn read_stderr(mut err: impl Read, seen: &Mutex<Seen>) {
    let mut buf = [0u8; 4096];
    loop {
        match err.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
                seen.stderr.extend_from_slice(&buf[..n]);
                let excess = seen.stderr.len().saturating_sub(STDERR_KEEP);
                seen.stderr.drain(..excess);
            }
        }
    }
}

/// The last few non-empty lines of `stderr` that are not a backtrace, on
/// one line.
fn stderr_tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty() && !backtrace_line(l)).collect();
    let mut tail = lines[lines.len().saturating_sub(6)..].join(" | ");
    if tail.chars().count() > 1200 {
        let skip = tail.chars().count() - 1200;
        tail = format!("…{}", tail.chars().skip(skip).collect::<String>());
    }
    tail
}

/// Whether a line of stderr belongs to a Rust backtrace (or the notes
/// about one), which says where in the host the library was called, not
/// what went wrong.
fn backtrace_line(line: &str) -> bool {
    let frame = line.split_once(':').is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    frame
        || line.starts_with("at ")
        || line == "stack backtrace:"
        || line.starts_with("note: run with `RUST_BACKTRACE")
        || line.starts_with("note: Some details are omitted")
}

fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 { format!("{} s", d.as_secs()) } else { format!("{:.1} s", d.as_secs_f64()) }
}

/// How a child ended, as the predicate of "the library ...".
fn describe(status: ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            let core = if status.core_dumped() { ", core dumped" } else { "" };
            return match signal_name(signal) {
                Some(("SIGABRT", _)) => format!("aborted (signal SIGABRT{core})"),
                Some((name, what)) => format!("was killed by signal {name} ({what}{core})"),
                None => format!("was killed by signal {signal}{core}"),
            };
        }
    }
    match status.code() {
        Some(code) => format!("exited with status {code}"),
        None => format!("ended ({status})"),
    }
}

/// A signal's name and what it usually means (the numbers POSIX systems
/// share, and Linux's SIGBUS).
#[cfg(unix)]
fn signal_name(signal: i32) -> Option<(&'static str, &'static str)> {
    Some(match signal {
        1 => ("SIGHUP", "hang-up"),
        2 => ("SIGINT", "interrupted"),
        3 => ("SIGQUIT", "quit"),
        4 => ("SIGILL", "illegal instruction"),
        5 => ("SIGTRAP", "trap"),
        6 => ("SIGABRT", "aborted"),
        #[cfg(target_os = "linux")]
        7 => ("SIGBUS", "bus error"),
        8 => ("SIGFPE", "arithmetic fault"),
        9 => ("SIGKILL", "killed"),
        11 => ("SIGSEGV", "invalid memory access"),
        13 => ("SIGPIPE", "broken pipe"),
        15 => ("SIGTERM", "terminated"),
        _ => return None,
    })
}

/// A step the child announces, in the words of "while ...".
fn step_words(step: &str) -> &str {
    match step {
        "open" => "opening it (running its initialisers)",
        "abi_version" => "calling `learnloop_plugin_abi_version`",
        "create" => "calling `learnloop_plugin_create`",
        "manifest" => "asking the plugin for its manifest",
        "destroy" => "destroying the plugin instance",
        "exit" => "exiting after the check (running the library's destructors)",
        other => other,
    }
}

/// The child's report: the manifest, or the clean failure loading the
/// library in-process gives (with no path: the parent knows it).
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
enum Report {
    Loaded { manifest: Box<Manifest> },
    Open { message: String },
    AbiMismatch { found: u32, expected: u32 },
    MissingSymbol { symbol: String },
    Failed { message: String },
}

impl Report {
    fn of(result: Result<Manifest, LoadError>) -> Report {
        match result {
            Ok(manifest) => Report::Loaded { manifest: Box::new(manifest) },
            Err(LoadError::Open { message, .. }) => Report::Open { message },
            Err(LoadError::AbiMismatch { found, expected, .. }) => Report::AbiMismatch { found, expected },
            Err(LoadError::MissingSymbol { symbol, .. }) => Report::MissingSymbol { symbol: symbol.to_string() },
            Err(LoadError::Create { message, .. }) => Report::Failed { message },
            Err(other) => Report::Failed { message: other.to_string() },
        }
    }

    fn into_result(self, path: &Path) -> Result<Manifest, LoadError> {
        let path = path.to_owned();
        Err(match self {
            Report::Loaded { manifest } => return Ok(*manifest),
            Report::Open { message } => LoadError::Open { path, message },
            Report::AbiMismatch { found, expected } => LoadError::AbiMismatch { path, found, expected },
            Report::MissingSymbol { symbol } => {
                match [abi::SYMBOL_ABI_VERSION, abi::SYMBOL_CREATE].into_iter().find(|s| *s == symbol) {
                    Some(symbol) => LoadError::MissingSymbol { path, symbol },
                    None => LoadError::Create { path, message: format!("missing symbol `{symbol}`") },
                }
            }
            Report::Failed { message } => LoadError::Create { path, message },
        })
    }
}

/// The child's side: opens `path` step by step, announcing each step and
/// then the report on stdout. Returns the exit status (0 whenever it got
/// as far as reporting; a crash never gets here).
fn child(path: &Path) -> i32 {
    let stdout = std::io::stdout();
    let say = |line: String| {
        let mut out = stdout.lock();
        // Flushed at once: the next step may crash the process.
        writeln!(out, "{PREFIX}{line}").and_then(|()| out.flush()).is_ok()
    };
    let result = (|| {
        let plugin = DynamicPlugin::load_in_process(path, &mut |step| {
            say(format!(
                "step {}",
                match step {
                    LoadStep::Open => "open",
                    LoadStep::AbiVersion => "abi_version",
                    LoadStep::Create => "create",
                }
            ));
        })?;
        say("step manifest".into());
        let manifest = plugin
            .try_manifest()
            .map_err(|e| LoadError::Create { path: path.to_owned(), message: format!("manifest: {e}") })?;
        say("step destroy".into());
        drop(plugin);
        Ok(manifest)
    })();
    let report = serde_json::to_string(&Report::of(result)).unwrap_or_else(|e| {
        serde_json::to_string(&Report::Failed { message: format!("the manifest cannot be written: {e}") })
            .expect("a string serialises")
    });
    if !say(format!("report {report}")) {
        return 2;
    }
    say("step exit".into());
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_round_trip_to_the_errors_loading_in_process_gives() {
        let path = Path::new("/p/lib.so");
        let cases = [
            LoadError::Open { path: path.into(), message: "file too short".into() },
            LoadError::AbiMismatch { path: path.into(), found: 999, expected: 1 },
            LoadError::MissingSymbol { path: path.into(), symbol: abi::SYMBOL_CREATE },
            LoadError::Create { path: path.into(), message: "create returned status 2 (panicked)".into() },
        ];
        for e in cases {
            let json = serde_json::to_string(&Report::of(Err(e.clone()))).unwrap();
            let back = serde_json::from_str::<Report>(&json).unwrap().into_result(path).unwrap_err();
            assert_eq!(back.to_string(), e.to_string(), "{json}");
        }
    }

    #[test]
    fn stderr_tail_keeps_the_last_lines_on_one_line() {
        let text = b"a\n\nb\nc\nd\ne\nf\ng\n";
        assert_eq!(stderr_tail(text), "b | c | d | e | f | g");
        assert_eq!(stderr_tail(b""), "");
        let abort = "thread 'main' panicked at src/lib.rs:13:5:\nfixture panics\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n\nthread 'main' panicked at library/core/src/panicking.rs:225:5:\npanic in a function that cannot unwind\nstack backtrace:\n   0:     0x7f6a3f02feda - std::backtrace_rs::trace\n                               at /rustc/library/std/src/backtrace.rs:117:9\n  44:                0x0 - <unknown>\nthread caused non-unwinding panic. aborting.\n";
        assert_eq!(
            stderr_tail(abort.as_bytes()),
            "thread 'main' panicked at src/lib.rs:13:5: | fixture panics | thread 'main' panicked at library/core/src/panicking.rs:225:5: | panic in a function that cannot unwind | thread caused non-unwinding panic. aborting."
        );
        let long = "x".repeat(5000);
        let tail = stderr_tail(long.as_bytes());
        assert!(tail.starts_with('…') && tail.chars().count() == 1201, "{}", tail.len());
    }

    #[cfg(unix)]
    #[test]
    fn signals_are_named() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(describe(ExitStatus::from_raw(11)), "was killed by signal SIGSEGV (invalid memory access)");
        assert_eq!(describe(ExitStatus::from_raw(6)), "aborted (signal SIGABRT)");
        assert_eq!(describe(ExitStatus::from_raw(3 << 8)), "exited with status 3");
        assert_eq!(
            describe(ExitStatus::from_raw(11 | 0x80)),
            "was killed by signal SIGSEGV (invalid memory access, core dumped)"
        );
        assert_eq!(describe(ExitStatus::from_raw(40)), "was killed by signal 40");
    }
}
