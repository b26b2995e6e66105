//! Progress on the terminal for the phases that can take a while: storing
//! (bytes read), learning (each plugin's online update, in events) and
//! running a job (time so far).
//!
//! Progress goes to stderr, and only when stderr is a terminal and the
//! output is text: with `--json`, or when stderr is a pipe or a file, the
//! bars are hidden and write nothing, so scripts see only the result on
//! stdout. Each line names the phase and the plugin and shows the rate and
//! the estimated time left; [`status`] formats it (and is what the tests
//! check).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

/// What a bar counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Records or events.
    Events,
    /// Bytes of input.
    Bytes,
}

/// Whether to draw progress: text output and a terminal on stderr.
pub fn wanted(json: bool) -> bool {
    !json && std::io::stderr().is_terminal()
}

/// A bar for one phase (`storing`, `learning cost`, ...) counting `unit`,
/// out of `total` when it is known (else a spinner with the count so far).
/// Hidden when `show` is false. The bar's message, if set, follows the
/// status (e.g. ` · 120,000 records stored`).
pub fn bar(show: bool, phase: &str, unit: Unit, total: Option<u64>) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let b = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
    let template =
        if total.is_some() { "{prefix} {wide_bar} {status}{msg}" } else { "{spinner} {prefix} {status}{msg}" };
    let style = ProgressStyle::with_template(template).expect("valid template").progress_chars("=> ").with_key(
        "status",
        move |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = w.write_str(&status(unit, s.pos(), s.len(), s.per_sec(), s.elapsed()));
        },
    );
    b.set_style(style);
    b.set_prefix(phase.to_string());
    // Show the phase at once, and keep the line moving (and the rate and
    // time left current) even while the work reports nothing.
    b.tick();
    b.enable_steady_tick(Duration::from_millis(200));
    b
}

/// A spinner for a phase whose length is unknown and that reports nothing
/// while it runs (a job): the phase and the time so far.
pub fn spinner(show: bool, phase: &str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let b = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{spinner} {prefix} {status}").expect("valid template").with_key(
        "status",
        |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "({} so far)", duration(s.elapsed()));
        },
    );
    b.set_style(style);
    b.set_prefix(phase.to_string());
    b.tick();
    b.enable_steady_tick(Duration::from_millis(200));
    b
}

/// The text after the bar: count (of total), rate, and time left (or time
/// so far when the total is unknown), e.g.
/// `120,000/1,400,000 events · 85.3k/s · 15 s left`.
pub fn status(unit: Unit, pos: u64, len: Option<u64>, per_sec: f64, elapsed: Duration) -> String {
    let amount = |n: u64| match unit {
        Unit::Events => thousands(n),
        Unit::Bytes => bytes(n),
    };
    let what = match unit {
        Unit::Events => " events",
        Unit::Bytes => "",
    };
    let rate = if per_sec.is_finite() && per_sec > 0.0 {
        match unit {
            Unit::Events => format!("{}/s", short(per_sec)),
            Unit::Bytes => format!("{}/s", bytes(per_sec as u64)),
        }
    } else {
        "-/s".to_string()
    };
    match len {
        Some(total) => {
            let left = if pos >= total {
                "finishing".to_string()
            } else if per_sec.is_finite() && per_sec > 0.0 {
                format!("{} left", duration(Duration::from_secs_f64((total - pos) as f64 / per_sec)))
            } else {
                "estimating time left".to_string()
            };
            format!("{}/{}{what} · {rate} · {left}", amount(pos), amount(total))
        }
        None => format!("{}{what} · {rate} · {}", amount(pos), duration(elapsed)),
    }
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A rate in three significant digits: `950`, `12.3k`, `1.25M`.
fn short(x: f64) -> String {
    let (v, suffix) = if x >= 1e6 {
        (x / 1e6, "M")
    } else if x >= 1e3 {
        (x / 1e3, "k")
    } else {
        (x, "")
    };
    let places = if suffix.is_empty() || v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    format!("{v:.places$}{suffix}")
}

/// `1536` → `1.5 KiB`; `120` → `120 B`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{n} B") } else { format!("{v:.1} {}", UNITS[u]) }
}

/// `7 s`, `2 min 05 s`, `1 h 02 min`.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{s} s")
    } else if s < 3600 {
        format!("{} min {:02} s", s / 60, s % 60)
    } else {
        format!("{} h {:02} min", s / 3600, (s % 3600) / 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_total_shows_rate_and_time_left() {
        let line = status(Unit::Events, 120_000, Some(1_400_000), 85_300.0, Duration::from_secs(1));
        assert_eq!(line, "120,000/1,400,000 events · 85.3k/s · 15 s left");
        let line = status(Unit::Bytes, 3 << 20, Some(200 << 20), 45.0 * 1048576.0, Duration::from_secs(1));
        assert_eq!(line, "3.0 MiB/200.0 MiB · 45.0 MiB/s · 4 s left");
        assert_eq!(status(Unit::Events, 10, Some(10), 5.0, Duration::ZERO), "10/10 events · 5/s · finishing");
        assert_eq!(status(Unit::Events, 0, Some(10), 0.0, Duration::ZERO), "0/10 events · -/s · estimating time left");
    }

    #[test]
    fn an_unknown_total_shows_time_so_far() {
        assert_eq!(
            status(Unit::Events, 1_234_567, None, 2_500_000.0, Duration::from_secs(125)),
            "1,234,567 events · 2.50M/s · 2 min 05 s"
        );
    }

    #[test]
    fn numbers_read_easily() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(12), "12 B");
        assert_eq!(duration(Duration::from_secs(3720)), "1 h 02 min");
    }
}
