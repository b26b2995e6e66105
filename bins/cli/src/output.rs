//! Writing to stdout and stderr like a Unix tool.
//!
//! `println!` panics when stdout is closed (`learnloop jobs list | head`),
//! and `eprintln!` when stderr is. Every command writes through [`outln!`]
//! and [`out!`] (which return the error) and [`errln!`] (which drops it:
//! there is nowhere left to report a failed diagnostic). A write that finds
//! stdout closed by its reader also marks [`stdout_closed`], and `main`
//! then ends the command quietly with status 0, as `cat` and ripgrep do,
//! however the error was wrapped on its way up.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Whether a write found stdout closed by its reader (a broken pipe).
pub fn stdout_closed() -> bool {
    STDOUT_CLOSED.load(Ordering::Relaxed)
}

fn mark<T>(r: io::Result<T>) -> io::Result<T> {
    if let Err(e) = &r
        && e.kind() == io::ErrorKind::BrokenPipe
    {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
    }
    r
}

/// Standard output as a [`Write`] that records a broken pipe; use it
/// wherever a command streams to stdout.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stdout;

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        mark(io::stdout().lock().write(buf))
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        mark(io::stdout().lock().write_all(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        mark(io::stdout().lock().flush())
    }
}

/// Writes formatted text to stdout; the error is the caller's to return.
pub fn write_out(args: std::fmt::Arguments<'_>) -> io::Result<()> {
    Stdout.write_fmt(args)
}

/// Writes formatted text to stderr, ignoring failure (stderr closed).
pub fn write_err(args: std::fmt::Arguments<'_>) {
    let _ = io::stderr().lock().write_fmt(args);
}

/// `println!` that returns an `io::Result` instead of panicking.
macro_rules! outln {
    () => {
        $crate::output::write_out(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` that returns an `io::Result` instead of panicking.
#[allow(unused_macros)]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write_out(format_args!($($arg)*))
    };
}

/// `eprintln!` that never panics.
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::output::write_err(format_args!("{}\n", format_args!($($arg)*)))
    };
}
