//! The binaries' log: one `tracing` subscriber per process, set up from
//! `[log]` (or `RUST_LOG`), writing to stderr.
//!
//! Libraries and plugins emit `tracing` events (plugins through the host's
//! log facility, `Context::log`); this module is the one place that decides
//! how those events become lines. Every line starts with a UTC timestamp
//! (RFC 3339, microseconds); `[log] format = "json"` writes one JSON object
//! per line instead.
//!
//! A log line must never stop a process: a closed or full stderr (a pipe
//! whose reader went away, `learnloop-scheduler 2>&1 | head -1`) loses the
//! line, because [`QuietStderr`] reports every write as done. A panic
//! there would kill the scheduler while it holds its lease.

use std::io::{self, Write};

use learnloop_config::{LogConfig, LogFormat};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::FmtSpan;

/// Stderr that swallows its errors (`EPIPE` above all): a lost log line is
/// better than a crashed server.
#[derive(Debug, Clone, Copy, Default)]
pub struct QuietStderr;

impl Write for QuietStderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Whatever happened, the line is gone; say it was written so the
        // formatter neither retries nor reports it.
        let _ = io::stderr().lock().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let _ = io::stderr().flush();
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for QuietStderr {
    type Writer = QuietStderr;

    fn make_writer(&'a self) -> Self::Writer {
        QuietStderr
    }
}

/// Which filter applies: `RUST_LOG` when it is set and not empty, else
/// `default` (the config's `[log] level`). A `RUST_LOG` that does not parse
/// is reported on stderr and `default` is used.
fn filter(default: &str) -> EnvFilter {
    match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => match EnvFilter::builder().parse(&v) {
            Ok(f) => return f,
            Err(e) => {
                let _ = writeln!(QuietStderr, "RUST_LOG={v:?} is not a filter ({e}); using {default:?}");
            }
        },
        _ => {}
    }
    EnvFilter::builder().parse(default).unwrap_or_else(|_| EnvFilter::new("info"))
}

/// Installs the process's subscriber: `RUST_LOG`, else `config.level`;
/// `config.format` text or JSON; on stderr through [`QuietStderr`]. Only the
/// first call in a process takes effect (tests may call it repeatedly).
pub fn init(config: &LogConfig) {
    install(filter(&config.level), config.format);
}

/// The CLI's subscriber: warnings and errors only unless `RUST_LOG` says
/// otherwise (its own output is for people; library events are the
/// exception), text without colours.
pub fn init_cli() {
    install(filter("warn"), LogFormat::Text);
}

fn install(filter: EnvFilter, format: LogFormat) {
    // The default timer: RFC 3339 in UTC with microseconds
    // (`2026-01-31T09:00:00.123456Z`).
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(QuietStderr)
        .with_ansi(false)
        .with_span_events(FmtSpan::NONE)
        .log_internal_errors(false);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        // `span`: the innermost span; `spans`: every span it is in, outermost
        // first (a job run through the API: the request, then the run).
        LogFormat::Json => builder.json().flatten_event(false).with_current_span(true).with_span_list(true).try_init(),
    };
}

/// The last line of a process that fails: through the subscriber when one
/// is installed (so it has a timestamp and the configured format), else
/// straight to stderr with a timestamp. Never panics.
pub fn fatal(program: &str, error: &anyhow::Error) {
    if tracing::dispatcher::has_been_set() {
        tracing::error!("{program}: error: {error:#}");
    } else {
        let now = learnloop_core::Timestamp::now();
        let _ = writeln!(QuietStderr, "{now} ERROR {program}: error: {error:#}");
    }
}
