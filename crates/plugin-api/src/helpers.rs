//! Small helpers every plugin needs, written once: reading query-string
//! parameters with bounds, turning stored microsecond times into JSON, and
//! telling a client's event time from the time the store stamped.

use serde_json::Value;

use crate::{PluginError, RouteRequest, Timestamp};

/// An RFC 3339 string for a time in microseconds since the Unix epoch, or
/// `null` when the value is out of range (0 is a real time: 1970-01-01).
pub fn time_json(us: i64) -> Value {
    Timestamp::from_micros(us).map_or(Value::Null, |t| Value::String(t.to_rfc3339()))
}

/// The client's event time (µs), or `None` when the store stamped the
/// ingestion time because the client sent none (then both are equal).
///
/// Plugin state must be reproducible from history on any machine at any
/// time, so no wall-clock time may enter it: an event without a client time
/// has no time for the plugin's clocks, buckets or windows.
pub fn client_time(event_time: Option<Timestamp>, ingested_at: Timestamp) -> Option<i64> {
    event_time.filter(|t| *t != ingested_at).map(Timestamp::as_micros)
}

impl RouteRequest {
    /// A query parameter as text, if given.
    pub fn query_str(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }

    /// An integer query parameter in `1..=max`, or `default` when absent.
    pub fn query_usize(&self, name: &str, default: usize, max: usize) -> Result<usize, PluginError> {
        match self.query.get(name) {
            None => Ok(default),
            Some(s) => s
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| PluginError::invalid(name, format!("{s:?}: expected an integer in 1..={max}"))),
        }
    }

    /// A number query parameter within `min..=max`, or `default` when absent.
    pub fn query_f64(&self, name: &str, default: f64, min: f64, max: f64) -> Result<f64, PluginError> {
        match self.query.get(name) {
            None => Ok(default),
            Some(s) => s
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && (min..=max).contains(v))
                .ok_or_else(|| PluginError::invalid(name, format!("{s:?}: expected a number in [{min}, {max}]"))),
        }
    }

    /// A boolean query parameter (`true`/`false`, `1`/`0`), `None` when absent.
    pub fn query_bool(&self, name: &str) -> Result<Option<bool>, PluginError> {
        match self.query.get(name).map(String::as_str) {
            None => Ok(None),
            Some("true" | "1") => Ok(Some(true)),
            Some("false" | "0") => Ok(Some(false)),
            Some(s) => Err(PluginError::invalid(name, format!("{s:?}: expected true or false"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(pairs: &[(&str, &str)]) -> RouteRequest {
        RouteRequest {
            method: "GET".into(),
            route: "/x".into(),
            params: Default::default(),
            query: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            body: Value::Null,
        }
    }

    #[test]
    fn query_parameters_are_bounded_and_named_in_errors() {
        let r = req(&[("limit", "0"), ("n", "7"), ("p", "1.5"), ("b", "yes"), ("t", "1")]);
        assert_eq!(r.query_usize("n", 3, 10).unwrap(), 7);
        assert_eq!(r.query_usize("missing", 3, 10).unwrap(), 3);
        let e = r.query_usize("limit", 3, 10).unwrap_err().to_string();
        assert!(e.contains("limit") && e.contains("1..=10"), "{e}");
        assert!(r.query_usize("n", 3, 5).is_err());
        assert!(r.query_f64("p", 0.5, 0.0, 1.0).is_err());
        assert_eq!(r.query_f64("p", 0.5, 0.0, 2.0).unwrap(), 1.5);
        assert!(r.query_bool("b").is_err());
        assert_eq!(r.query_bool("t").unwrap(), Some(true));
        assert_eq!(r.query_bool("none").unwrap(), None);
    }

    #[test]
    fn times() {
        assert_eq!(time_json(0), Value::String("1970-01-01T00:00:00Z".into()));
        let t = Timestamp::from_micros(5_000_000).unwrap();
        assert_eq!(client_time(Some(t), t), None);
        assert_eq!(client_time(Some(t), Timestamp::from_micros(6).unwrap()), Some(5_000_000));
        assert_eq!(client_time(None, t), None);
    }
}
