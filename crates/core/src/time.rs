//! Event time and ingestion time, as microseconds since the Unix epoch.
//!
//! Both are kept for every record: event time is when the thing happened (a
//! client may import months of history), ingestion time is when learnloop
//! accepted it. Microseconds in an `i64` sort as integers in every store and
//! cover any date a client can name; on the wire they are RFC 3339 strings.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ValidationError;

/// A UTC instant with microsecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// The earliest accepted instant, 1000-01-01T00:00:00Z.
const MIN_MICROS: i64 = -30_610_224_000_000_000;
/// The latest accepted instant, 9999-12-31T23:59:59.999999Z.
const MAX_MICROS: i64 = 253_402_300_799_999_999;

impl Timestamp {
    /// The current wall-clock time.
    pub fn now() -> Self {
        Self(Utc::now().timestamp_micros())
    }

    /// From microseconds since the epoch, if within the accepted range
    /// (years 1000 to 9999).
    pub fn from_micros(micros: i64) -> Option<Self> {
        (MIN_MICROS..=MAX_MICROS).contains(&micros).then_some(Self(micros))
    }

    /// From milliseconds since the epoch, if within the accepted range.
    pub fn from_millis(millis: i64) -> Option<Self> {
        millis.checked_mul(1000).and_then(Self::from_micros)
    }

    /// Microseconds since the epoch.
    pub fn as_micros(self) -> i64 {
        self.0
    }

    /// This instant moved by `micros` (saturating at the accepted range).
    pub fn add_micros(self, micros: i64) -> Self {
        Self(self.0.saturating_add(micros).clamp(MIN_MICROS, MAX_MICROS))
    }

    /// Parses RFC 3339 (`2026-01-31T12:00:00Z`, `2026-01-31T13:00:00.25+01:00`);
    /// `field` names the input field in the error.
    pub fn parse(field: &str, s: &str) -> Result<Self, ValidationError> {
        let dt = DateTime::parse_from_rfc3339(s).map_err(|e| {
            ValidationError::new(field, format!("{s:?} is not an RFC 3339 time such as 2026-01-31T12:00:00Z ({e})"))
        })?;
        Self::from_micros(dt.timestamp_micros())
            .ok_or_else(|| ValidationError::new(field, format!("{s:?} is outside the years 1000 to 9999")))
    }

    /// RFC 3339 in UTC, with as many fractional digits as needed.
    pub fn to_rfc3339(self) -> String {
        DateTime::<Utc>::from_timestamp_micros(self.0)
            .expect("range checked on construction")
            .to_rfc3339_opts(SecondsFormat::AutoSi, true)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl schemars::JsonSchema for Timestamp {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Timestamp".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "format": "date-time"})
    }
    fn inline_schema() -> bool {
        true
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        Timestamp::parse("", &s).map_err(|e| serde::de::Error::custom(e.message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_rfc3339() {
        let t = Timestamp::parse("t", "2026-01-31T13:00:00.25+01:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-01-31T12:00:00.250Z");
        assert_eq!(Timestamp::parse("t", &t.to_rfc3339()).unwrap(), t);
        let z = Timestamp::parse("t", "1970-01-01T00:00:00Z").unwrap();
        assert_eq!(z.as_micros(), 0);
    }

    #[test]
    fn rejects_bad_times() {
        let e = Timestamp::parse("event_time", "yesterday").unwrap_err();
        assert_eq!(e.field, "event_time");
        assert!(e.message.contains("RFC 3339"));
        assert!(Timestamp::parse("t", "0999-12-31T23:59:59Z").is_err());
        assert!(Timestamp::parse("t", "2026-01-31 12:00:00").is_err());
        assert!(Timestamp::from_micros(i64::MAX).is_none());
    }
}
