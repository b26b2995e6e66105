//! The `[drift]` config section: every key, its default and what it does.

use learnloop_plugin_api::{ConfigKey, PluginError, parse_config};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The `[drift]` config section. Unknown keys are errors naming the key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Length of the reference window in days (the days before the current window).
    pub reference_days: f64,
    /// Length of the current window in days, ending at the model's newest prediction.
    pub current_days: f64,
    /// Significance level for every test, after multiple-testing adjustment.
    pub p_value: f64,
    /// Minimum values per window (and per segment) before a test is run.
    pub min_samples: usize,
    /// Minimum matched outcomes in the reference and in the current window before retraining is recommended.
    pub min_retrain_samples: usize,
    /// Significance level of the one-sided retraining test.
    pub retrain_p_value: f64,
    /// Relative growth of the mean loss (absolute error, or error rate) the retraining test must show significantly.
    pub retrain_min_error_increase: f64,
    /// Quantile bins of the PSI.
    pub psi_bins: usize,
    /// Days of history the performance and error routes use when no `from` is given.
    pub performance_days: f64,
    /// Quantile bins of a numeric feature for the systematic-error segments.
    pub segment_bins: usize,
    /// Pending predictions (waiting for their outcome) kept per model for the online error.
    pub max_pending: u64,
    /// ADWIN confidence on the absolute error (smaller: fewer false alarms, later detection).
    pub adwin_delta: f64,
    /// Confidence an A/B test needs to name a winner.
    pub ab_confidence: f64,
    /// Matched outcomes per arm before an A/B test can name a winner.
    pub ab_min_samples: usize,
    /// p-value below which an A/B test's arm sizes mismatch its split (sample-ratio mismatch).
    pub srm_p_value: f64,
    /// Matched outcomes (per time bucket) before feature weights are computed.
    pub weights_min_samples: usize,
    /// Consecutive time buckets of the feature-weight trend.
    pub weights_buckets: usize,
    /// Aggregation window of service monitoring, in minutes.
    pub service_window_minutes: f64,
    /// Hours of service samples the health route reads when no `from` is given.
    pub service_hours: f64,
    /// p95 latency (ms) above which an endpoint is slow.
    pub slow_endpoint_ms: f64,
    /// Error rate at which the health score's error component reaches 0.
    pub max_error_rate: f64,
    /// Memory growth (MB) over the period that suggests a leak.
    pub memory_leak_mb: f64,
    /// What the daily job does when its decision is "retrain": `request`
    /// files a retraining request (delivered as `retrain.requested`), `off`
    /// only raises the `retrain_recommended` alert.
    pub auto_retrain: AutoRetrain,
    /// Days after a retraining request of a model during which the daily
    /// job files no other for it.
    pub retrain_cooldown_days: f64,
}

/// `auto_retrain`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AutoRetrain {
    /// Only the alert.
    Off,
    /// File a retraining request (once per cooldown).
    Request,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            reference_days: 30.0,
            current_days: 7.0,
            p_value: 0.05,
            min_samples: 10,
            min_retrain_samples: 100,
            retrain_p_value: 0.01,
            retrain_min_error_increase: 0.1,
            psi_bins: 10,
            performance_days: 30.0,
            segment_bins: 4,
            max_pending: 100_000,
            adwin_delta: 0.002,
            ab_confidence: 0.95,
            ab_min_samples: 30,
            srm_p_value: 0.001,
            weights_min_samples: 50,
            weights_buckets: 4,
            service_window_minutes: 5.0,
            service_hours: 24.0,
            slow_endpoint_ms: 100.0,
            max_error_rate: 0.05,
            memory_leak_mb: 100.0,
            auto_retrain: AutoRetrain::Request,
            retrain_cooldown_days: 7.0,
        }
    }
}

impl Config {
    /// Reads and checks the `[drift]` section; errors name the key. The
    /// removed `mape_threshold` is refused by name, saying what replaced it.
    pub fn from_section(section: &Value) -> Result<Self, PluginError> {
        if section.get("mape_threshold").is_some() {
            return Err(PluginError::invalid(
                "[drift] mape_threshold",
                "is no longer used: retraining compares each model's current error with its own reference error by a one-sided test (see retrain_min_error_increase); remove the key",
            ));
        }
        let config: Config = parse_config("drift", section)?;
        config.check()?;
        Ok(config)
    }

    /// Checks ranges; errors name the key.
    pub fn check(&self) -> Result<(), PluginError> {
        let bad = |k: &str, m: &str| Err(PluginError::invalid(format!("[drift] {k}"), m.to_string()));
        for (k, v) in [
            ("reference_days", self.reference_days),
            ("current_days", self.current_days),
            ("performance_days", self.performance_days),
        ] {
            if !(v.is_finite() && v > 0.0 && v <= 36_500.0) {
                return bad(k, "must be a number of days in (0, 36500]");
            }
        }
        if !(self.p_value > 0.0 && self.p_value < 1.0) {
            return bad("p_value", "must be in (0, 1)");
        }
        if self.min_samples < 3 {
            return bad("min_samples", "must be at least 3");
        }
        if self.min_retrain_samples < 2 {
            return bad("min_retrain_samples", "must be at least 2 (the retraining test needs a variance per window)");
        }
        if !(self.retrain_p_value > 0.0 && self.retrain_p_value < 1.0) {
            return bad("retrain_p_value", "must be in (0, 1)");
        }
        if !(self.retrain_min_error_increase.is_finite() && (0.0..=10.0).contains(&self.retrain_min_error_increase)) {
            return bad(
                "retrain_min_error_increase",
                "must be a fraction in [0, 10] (0.1 = the loss grew by more than 10%)",
            );
        }
        if self.psi_bins < 2 || self.psi_bins > 100 {
            return bad("psi_bins", "must be in 2..=100");
        }
        if self.segment_bins < 2 || self.segment_bins > 20 {
            return bad("segment_bins", "must be in 2..=20");
        }
        if !(self.adwin_delta > 0.0 && self.adwin_delta < 1.0) {
            return bad("adwin_delta", "must be in (0, 1)");
        }
        if !(self.ab_confidence > 0.5 && self.ab_confidence < 1.0) {
            return bad("ab_confidence", "must be in (0.5, 1)");
        }
        if self.ab_min_samples < 3 {
            return bad("ab_min_samples", "must be at least 3");
        }
        if !(self.srm_p_value > 0.0 && self.srm_p_value < 1.0) {
            return bad("srm_p_value", "must be in (0, 1)");
        }
        if self.weights_min_samples < 3 {
            return bad("weights_min_samples", "must be at least 3");
        }
        if self.weights_buckets < 2 || self.weights_buckets > 52 {
            return bad("weights_buckets", "must be in 2..=52");
        }
        if !(self.service_window_minutes.is_finite()
            && self.service_window_minutes >= 1.0 / 60.0
            && self.service_window_minutes <= 1440.0)
        {
            return bad("service_window_minutes", "must be in [1/60, 1440] minutes");
        }
        if !(self.service_hours.is_finite() && self.service_hours > 0.0 && self.service_hours <= 8760.0) {
            return bad("service_hours", "must be in (0, 8760] hours");
        }
        for (k, v) in [("slow_endpoint_ms", self.slow_endpoint_ms), ("memory_leak_mb", self.memory_leak_mb)] {
            if !(v.is_finite() && v > 0.0) {
                return bad(k, "must be a positive number");
            }
        }
        if !(self.max_error_rate > 0.0 && self.max_error_rate <= 1.0) {
            return bad("max_error_rate", "must be in (0, 1]");
        }
        if !(self.retrain_cooldown_days.is_finite() && (0.0..=3650.0).contains(&self.retrain_cooldown_days)) {
            return bad("retrain_cooldown_days", "must be a number of days in [0, 3650]");
        }
        Ok(())
    }

    /// The manifest's list of keys.
    pub fn keys() -> Vec<ConfigKey> {
        let d = Config::default();
        let k =
            |key: &str, default: serde_json::Value, doc: &str| ConfigKey { key: key.into(), default, doc: doc.into() };
        vec![
            k(
                "reference_days",
                json!(d.reference_days),
                "Reference window length in days: the days before the current window.",
            ),
            k(
                "current_days",
                json!(d.current_days),
                "Current window length in days, ending at the model's newest prediction event time (not the wall clock).",
            ),
            k(
                "p_value",
                json!(d.p_value),
                "Significance level of every test, applied to Benjamini-Hochberg (drift) or Holm (segments) adjusted p-values.",
            ),
            k("min_samples", json!(d.min_samples), "Minimum values per window or segment before a test is run."),
            k(
                "min_retrain_samples",
                json!(d.min_retrain_samples),
                "Minimum matched outcomes in the reference window and in the current window before retraining can be recommended.",
            ),
            k(
                "retrain_p_value",
                json!(d.retrain_p_value),
                "Significance level of the one-sided retraining test (stricter than p_value: the daily job repeats it on overlapping windows).",
            ),
            k(
                "retrain_min_error_increase",
                json!(d.retrain_min_error_increase),
                "Retraining is recommended when the current window's mean loss (absolute error; error rate for a classifier) is significantly (one-sided Welch t-test at retrain_p_value) above (1 + this) x the reference window's.",
            ),
            k("psi_bins", json!(d.psi_bins), "Quantile bins of the Population Stability Index."),
            k(
                "performance_days",
                json!(d.performance_days),
                "Days of history the performance and errors routes use when no `from` is given.",
            ),
            k(
                "segment_bins",
                json!(d.segment_bins),
                "Quantile bins per numeric feature for systematic-error segments.",
            ),
            k(
                "max_pending",
                json!(d.max_pending),
                "Predictions per model kept waiting for their outcome (online error); beyond it new ones are not kept and counted as dropped.",
            ),
            k("adwin_delta", json!(d.adwin_delta), "ADWIN confidence on each model's absolute error (online drift)."),
            k(
                "ab_confidence",
                json!(d.ab_confidence),
                "Confidence an A/B test needs to name a winner (Holm-adjusted Welch p-values at most 1 - confidence).",
            ),
            k(
                "ab_min_samples",
                json!(d.ab_min_samples),
                "Matched outcomes per arm before an A/B test can name a winner.",
            ),
            k(
                "srm_p_value",
                json!(d.srm_p_value),
                "An A/B test's arm sizes mismatch its traffic split (no winner) when the chi-square goodness-of-fit p-value is below this.",
            ),
            k(
                "weights_min_samples",
                json!(d.weights_min_samples),
                "Matched outcomes per time bucket before feature weights are computed.",
            ),
            k(
                "weights_buckets",
                json!(d.weights_buckets),
                "Consecutive equal-count time buckets of the feature-weight trend.",
            ),
            k(
                "service_window_minutes",
                json!(d.service_window_minutes),
                "Aggregation window of service monitoring (latency percentiles, error rate, memory), in minutes.",
            ),
            k(
                "service_hours",
                json!(d.service_hours),
                "Hours of service samples the health route reads when no `from` is given (back from the newest sample).",
            ),
            k("slow_endpoint_ms", json!(d.slow_endpoint_ms), "p95 latency (ms) above which an endpoint is slow."),
            k(
                "max_error_rate",
                json!(d.max_error_rate),
                "Error rate at which the health score's error component reaches 0.",
            ),
            k(
                "memory_leak_mb",
                json!(d.memory_leak_mb),
                "Fitted memory growth (MB) over the period that suggests a leak.",
            ),
            k(
                "auto_retrain",
                json!("request"),
                "When the daily job decides a model should be retrained: \"request\" files a retraining request (delivered as `retrain.requested` to notification destinations), \"off\" only raises the retrain_recommended alert.",
            ),
            k(
                "retrain_cooldown_days",
                json!(d.retrain_cooldown_days),
                "Days after a retraining request of a model during which the daily job files no other for it (one drifted model is one request, not one per day).",
            ),
        ]
    }
}
