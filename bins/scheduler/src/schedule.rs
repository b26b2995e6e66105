//! Cron schedules and the slots they define.
//!
//! A job's schedule is a 6-field cron expression, `sec min hour
//! day-of-month month day-of-week`, evaluated in UTC with standard cron
//! semantics (day-of-week `0` or `7` is Sunday, `1` Monday; names such as
//! `MON` and `JAN` work; when both day fields are restricted either may
//! match, as in Vixie cron). Parsing is done by the `croner` crate; this
//! module pins its options (seconds required, no year field) so that what the
//! config file documents is exactly what is accepted.
//!
//! A **slot** is one instant the schedule names, kept as epoch microseconds
//! (always a whole second). The store makes a (plugin, job, slot, attempt)
//! unique, which is what stops two schedulers from running one slot twice.

use std::fmt;

use chrono::{DateTime, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use learnloop_core::Timestamp;

/// A parsed cron schedule.
#[derive(Clone)]
pub struct Schedule {
    expr: String,
    cron: Cron,
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Schedule").field(&self.expr).finish()
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.expr)
    }
}

impl Schedule {
    /// Parses a 6-field cron expression; the error says what is wrong and
    /// what is expected.
    pub fn parse(expr: &str) -> Result<Schedule, String> {
        let trimmed = expr.trim();
        let fields = trimmed.split_whitespace().count();
        if !trimmed.starts_with('@') && fields != 6 {
            return Err(format!(
                "{expr:?} has {fields} fields; expected 6: sec min hour day-of-month month day-of-week (e.g. \"0 30 3 * * *\")"
            ));
        }
        let parser = CronParser::builder().seconds(Seconds::Required).year(Year::Disallowed).build();
        let cron = parser.parse(trimmed).map_err(|e| format!("{expr:?} is not a valid cron expression: {e}"))?;
        let schedule = Schedule { expr: trimmed.to_string(), cron };
        // A pattern that can never fire (e.g. 30 February) is a mistake too.
        if schedule.next_after(Timestamp::from_micros(0).expect("epoch")).is_none() {
            return Err(format!("{expr:?} never fires"));
        }
        Ok(schedule)
    }

    /// The expression as written (trimmed).
    pub fn expr(&self) -> &str {
        &self.expr
    }

    /// The first slot strictly after `t`, if the schedule fires again.
    pub fn next_after(&self, t: Timestamp) -> Option<Timestamp> {
        let dt = to_datetime(t)?;
        let next = self.cron.find_next_occurrence(&dt, false).ok()?;
        from_datetime(next)
    }

    /// The latest slot at or before `t`: the one that is due at `t`.
    pub fn latest_at_or_before(&self, t: Timestamp) -> Option<Timestamp> {
        // Slots are whole seconds; truncating first makes "at or before"
        // exact for instants with a fractional second.
        let whole = t.as_micros().div_euclid(1_000_000) * 1_000_000;
        let dt = to_datetime(Timestamp::from_micros(whole)?)?;
        let prev = self.cron.find_previous_occurrence(&dt, true).ok()?;
        from_datetime(prev)
    }
}

fn to_datetime(t: Timestamp) -> Option<DateTime<Utc>> {
    DateTime::<Utc>::from_timestamp_micros(t.as_micros())
}

fn from_datetime(dt: DateTime<Utc>) -> Option<Timestamp> {
    Timestamp::from_micros(dt.timestamp_micros())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        Timestamp::parse("t", s).unwrap()
    }

    #[test]
    fn parses_six_fields_only() {
        assert!(Schedule::parse("0 30 3 * * *").is_ok());
        assert!(Schedule::parse("*/2 * * * * *").is_ok());
        assert!(Schedule::parse("0 0 9 * * MON-FRI").is_ok());
        let five = Schedule::parse("30 3 * * *").unwrap_err();
        assert!(five.contains("has 5 fields; expected 6"), "{five}");
        let seven = Schedule::parse("0 30 3 * * * 2030").unwrap_err();
        assert!(seven.contains("expected 6"), "{seven}");
        for bad in ["", "0 61 * * * *", "0 0 25 * * *", "x * * * * *", "0 0 0 30 2 *"] {
            assert!(Schedule::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn next_and_latest_slots() {
        let s = Schedule::parse("0 30 3 * * *").unwrap();
        let t = at("2026-01-10T12:00:00Z");
        assert_eq!(s.next_after(t), Some(at("2026-01-11T03:30:00Z")));
        assert_eq!(s.latest_at_or_before(t), Some(at("2026-01-10T03:30:00Z")));
        // Exactly on a slot: it is due now, and the next one is tomorrow.
        let on = at("2026-01-10T03:30:00Z");
        assert_eq!(s.latest_at_or_before(on), Some(on));
        assert_eq!(s.next_after(on), Some(at("2026-01-11T03:30:00Z")));
        // A fraction of a second after a slot still names it.
        let frac = at("2026-01-10T03:30:00.4Z");
        assert_eq!(s.latest_at_or_before(frac), Some(on));
        assert_eq!(s.next_after(frac), Some(at("2026-01-11T03:30:00Z")));

        let every2 = Schedule::parse("*/2 * * * * *").unwrap();
        let t = at("2026-01-10T12:00:03.5Z");
        assert_eq!(every2.latest_at_or_before(t), Some(at("2026-01-10T12:00:02Z")));
        assert_eq!(every2.next_after(t), Some(at("2026-01-10T12:00:04Z")));
        // Slots are whole seconds in microseconds.
        assert_eq!(every2.next_after(t).unwrap().as_micros() % 1_000_000, 0);
    }

    #[test]
    fn day_of_week_is_standard_cron() {
        // 2026-01-12 is a Monday.
        let mon = Schedule::parse("0 0 9 * * 1").unwrap();
        assert_eq!(mon.next_after(at("2026-01-10T00:00:00Z")), Some(at("2026-01-12T09:00:00Z")));
        let sun0 = Schedule::parse("0 0 9 * * 0").unwrap();
        let sun7 = Schedule::parse("0 0 9 * * 7").unwrap();
        assert_eq!(sun0.next_after(at("2026-01-10T00:00:00Z")), Some(at("2026-01-11T09:00:00Z")));
        assert_eq!(sun7.next_after(at("2026-01-10T00:00:00Z")), Some(at("2026-01-11T09:00:00Z")));
    }
}
