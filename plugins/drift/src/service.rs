//! Service monitoring (seed 003's performance analyzer): latency, error and
//! memory samples per endpoint of a monitored service.
//!
//! A sample is a prediction of kind [`KIND`] (`subject`: the service,
//! `value`: the latency in ms, `payload.endpoint`, optionally
//! `payload.error` (boolean), `payload.status_code` (5xx counts as an
//! error) and `payload.memory_mb`). Samples never touch the model state:
//! online, only a counter document `service/<service>` is kept; the health
//! route reads the samples of its period in pages.
//!
//! # Health score (0–100)
//!
//! `100 · (0.4·L + 0.4·E + 0.2·M)`, where
//! * L = share of endpoints (with at least `min_samples` samples) whose p95
//!   latency is at most `slow_endpoint_ms` (1 when none qualifies);
//! * E = max(0, 1 − error rate / `max_error_rate`);
//! * M = 1 − min(1, max(0, memory growth) / `memory_leak_mb`), where the
//!   memory growth is the least-squares slope of memory over time times the
//!   period's span (1 without memory samples).
//!
//! Status: `healthy` ≥ 90, `degraded` ≥ 70, else `unhealthy`. A leak is
//! suspected when the fitted growth is at least `memory_leak_mb` and memory
//! rises monotonically over time (Spearman ρ > 0, p ≤ `p_value`).

use std::collections::BTreeMap;

use learnloop_plugin_api::JsonSchema;
use learnloop_plugin_api::{Context, EventQuery, Expect, Order, PluginError, Prediction, Timestamp, ValidationError};
use learnloop_stats::{mean, percentiles, spearman};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::Config;
use crate::json::nan;

/// The prediction kind of a service sample.
pub const KIND: &str = "service_sample";

/// Online counters of one service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceState {
    /// Samples seen.
    pub samples: u64,
    /// Samples that were errors.
    pub errors: u64,
    /// Newest sample event time (µs): the end of the default health period.
    pub newest_us: i64,
    /// Oldest sample event time (µs).
    pub oldest_us: i64,
}

/// State key of a service's counters.
pub fn key(service: &str) -> String {
    format!("service/{service}")
}

/// Checks a sample; errors name the field.
pub fn validate(p: &Prediction) -> Result<(), ValidationError> {
    match p.value {
        Some(v) if v.is_finite() && v >= 0.0 => {}
        _ => return Err(ValidationError::new("value", "is required for a service_sample: the latency in ms (>= 0)")),
    }
    match p.payload.get("endpoint") {
        Some(Value::String(s)) if !s.is_empty() => {}
        _ => {
            return Err(ValidationError::new(
                "payload.endpoint",
                "is required for a service_sample: the endpoint's name",
            ));
        }
    }
    match p.payload.get("error") {
        None | Some(Value::Bool(_)) | Some(Value::Null) => {}
        Some(_) => return Err(ValidationError::new("payload.error", "must be a boolean")),
    }
    match p.payload.get("status_code") {
        None | Some(Value::Null) => {}
        Some(v) if v.as_u64().is_some_and(|c| (100..=599).contains(&c)) => {}
        Some(_) => return Err(ValidationError::new("payload.status_code", "must be an HTTP status code (100-599)")),
    }
    match p.payload.get("memory_mb") {
        None | Some(Value::Null) => {}
        Some(v) if v.as_f64().is_some_and(|m| m.is_finite() && m >= 0.0) => {}
        Some(_) => return Err(ValidationError::new("payload.memory_mb", "must be a non-negative number")),
    }
    Ok(())
}

fn is_error(payload: &Value) -> bool {
    payload.get("error").and_then(Value::as_bool).unwrap_or(false)
        || payload.get("status_code").and_then(Value::as_u64).is_some_and(|c| c >= 500)
}

/// Online update of a service's counters from one batch of its samples.
pub fn absorb(ctx: &mut dyn Context, service: &str, samples: &[&Prediction]) -> Result<(), PluginError> {
    let k = key(service);
    let (mut st, expect) = match ctx.get_state(&k)? {
        Some(s) => (serde_json::from_value::<ServiceState>(s.value)?, Expect::Version(s.version)),
        None => (ServiceState { newest_us: i64::MIN, oldest_us: i64::MAX, ..Default::default() }, Expect::Absent),
    };
    for p in samples {
        st.samples += 1;
        st.errors += u64::from(is_error(&p.payload));
        let t = p.event_time.map(|t| t.as_micros()).unwrap_or(0);
        st.newest_us = st.newest_us.max(t);
        st.oldest_us = st.oldest_us.min(t);
    }
    ctx.put_state(&k, serde_json::to_value(&st)?, expect)?;
    Ok(())
}

/// Every monitored service with its counters.
pub fn list(ctx: &mut dyn Context) -> Result<Vec<(String, ServiceState)>, PluginError> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = ctx.scan_state("service/", after.as_deref(), 1000)?;
        let Some((last, _)) = page.last() else { break };
        after = Some(last.clone());
        for (k, s) in page {
            out.push((k.trim_start_matches("service/").to_string(), serde_json::from_value(s.value)?));
        }
    }
    Ok(out)
}

/// A service's counters (the `services` route's answer per service).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ServiceCounts {
    /// Samples seen.
    pub samples: u64,
    /// Samples that were errors.
    pub errors: u64,
    /// Event time of the oldest sample (RFC 3339; null out of range).
    pub oldest_sample: Option<Timestamp>,
    /// Event time of the newest sample (RFC 3339; null out of range).
    pub newest_sample: Option<Timestamp>,
}

impl ServiceState {
    /// The counters as answered.
    pub fn counts(&self) -> ServiceCounts {
        ServiceCounts {
            samples: self.samples,
            errors: self.errors,
            oldest_sample: Timestamp::from_micros(self.oldest_us),
            newest_sample: Timestamp::from_micros(self.newest_us),
        }
    }
}

/// Latency statistics (ms) of a set of samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Latency {
    /// Samples.
    pub n: usize,
    /// The statistics (absent without samples).
    #[serde(flatten)]
    pub stats: Option<LatencyStats>,
}

/// The statistics of a non-empty [`Latency`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LatencyStats {
    /// Minimum.
    #[serde(deserialize_with = "nan")]
    #[schemars(with = "Option<f64>")]
    pub min: f64,
    /// Maximum.
    #[serde(deserialize_with = "nan")]
    #[schemars(with = "Option<f64>")]
    pub max: f64,
    /// Mean.
    #[serde(deserialize_with = "nan")]
    #[schemars(with = "Option<f64>")]
    pub avg: f64,
    /// Median.
    #[serde(deserialize_with = "nan")]
    #[schemars(with = "Option<f64>")]
    pub p50: f64,
    /// 95th percentile.
    #[serde(deserialize_with = "nan")]
    #[schemars(with = "Option<f64>")]
    pub p95: f64,
    /// 99th percentile.
    #[serde(deserialize_with = "nan")]
    #[schemars(with = "Option<f64>")]
    pub p99: f64,
}

fn latency(v: &[f64]) -> Latency {
    if v.is_empty() {
        return Latency { n: 0, stats: None };
    }
    let p = percentiles(v, &[50.0, 95.0, 99.0]).unwrap_or_else(|_| vec![f64::NAN; 3]);
    Latency {
        n: v.len(),
        stats: Some(LatencyStats {
            min: v.iter().copied().fold(f64::INFINITY, f64::min),
            max: v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            avg: mean(v).unwrap_or(f64::NAN),
            p50: p[0],
            p95: p[1],
            p99: p[2],
        }),
    }
}

/// One endpoint in the health report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EndpointHealth {
    /// Its latency.
    #[serde(flatten)]
    pub latency: Latency,
    /// Its error samples.
    pub errors: u64,
    /// Its error rate.
    #[serde(deserialize_with = "nan")]
    #[schemars(with = "Option<f64>")]
    pub error_rate: f64,
    /// p95 above `slow_endpoint_ms` (with at least `min_samples` samples).
    pub slow: bool,
}

/// A slow endpoint, with a suggestion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SlowEndpoint {
    /// The endpoint.
    pub endpoint: String,
    /// Its p95 latency (ms).
    #[serde(deserialize_with = "nan")]
    #[schemars(with = "Option<f64>")]
    pub p95_ms: f64,
    /// Its mean latency (ms).
    pub avg_ms: Option<f64>,
    /// Its samples.
    pub samples: usize,
    /// What to do, in words.
    pub suggestion: String,
}

/// One aggregation window of the health report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WindowHealth {
    /// Its latency.
    #[serde(flatten)]
    pub latency: Latency,
    /// Its start (RFC 3339; null out of range).
    pub start: Option<Timestamp>,
    /// Its error rate.
    #[serde(deserialize_with = "nan")]
    #[schemars(with = "Option<f64>")]
    pub error_rate: f64,
    /// Mean memory (MB; null without memory samples).
    pub memory_mb: Option<f64>,
}

/// Memory over the period: its growth and whether it suggests a leak.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Memory {
    /// Fewer than `min_samples` memory samples.
    Skipped {
        /// Memory samples.
        samples: usize,
        /// Why.
        skipped: String,
        /// Always false.
        leak_suspected: bool,
    },
    /// The growth was fitted.
    Fitted(MemoryTrend),
}

/// The fitted memory growth of a [`Memory`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MemoryTrend {
    /// Memory samples.
    pub samples: usize,
    /// The first sample (MB).
    #[serde(deserialize_with = "nan")]
    #[schemars(with = "Option<f64>")]
    pub first_mb: f64,
    /// The last sample (MB).
    #[serde(deserialize_with = "nan")]
    #[schemars(with = "Option<f64>")]
    pub last_mb: f64,
    /// Least-squares slope (MB per hour).
    #[serde(deserialize_with = "nan")]
    #[schemars(with = "Option<f64>")]
    pub slope_mb_per_hour: f64,
    /// Slope × span.
    #[serde(deserialize_with = "nan")]
    #[schemars(with = "Option<f64>")]
    pub fitted_growth_mb: f64,
    /// Hours between the first and the last sample.
    #[serde(deserialize_with = "nan")]
    #[schemars(with = "Option<f64>")]
    pub span_hours: f64,
    /// Spearman's ρ of memory over time (null when undefined).
    pub spearman_rho: Option<f64>,
    /// Its p-value.
    pub spearman_p_value: Option<f64>,
    /// `memory_leak_mb`.
    pub threshold_mb: f64,
    /// Growth at least the threshold and rising monotonically.
    pub leak_suspected: bool,
}

impl Memory {
    /// Whether a leak is suspected.
    pub fn leak_suspected(&self) -> bool {
        match self {
            Memory::Skipped { leak_suspected, .. } => *leak_suspected,
            Memory::Fitted(m) => m.leak_suspected,
        }
    }

    /// The fitted growth (MB; 0 when skipped).
    pub fn fitted_growth_mb(&self) -> f64 {
        match self {
            Memory::Skipped { .. } => 0.0,
            Memory::Fitted(m) => m.fitted_growth_mb,
        }
    }

    /// The span of the memory samples (hours; 0 when skipped).
    pub fn span_hours(&self) -> f64 {
        match self {
            Memory::Skipped { .. } => 0.0,
            Memory::Fitted(m) => m.span_hours,
        }
    }
}

/// The health score's components, each in [0, 1].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Components {
    /// Share of endpoints that are not slow.
    pub latency: f64,
    /// 1 − error rate / `max_error_rate`, at least 0.
    pub errors: f64,
    /// 1 − memory growth / `memory_leak_mb`, at least 0.
    pub memory: f64,
}

/// `healthy` ≥ 90, `degraded` ≥ 70, else `unhealthy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(rename = "HealthStatus")]
pub enum Status {
    /// Score ≥ 90.
    Healthy,
    /// Score ≥ 70.
    Degraded,
    /// Score < 70.
    Unhealthy,
}

/// The health score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Health {
    /// 0–100, one decimal.
    pub score: f64,
    /// The status.
    pub status: Status,
    /// The components.
    pub components: Components,
    /// The formula, in words.
    pub formula: String,
}

/// A service's health over a period (the `health` route's answer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HealthReport {
    /// The service.
    pub service: String,
    /// Start of the period (RFC 3339; null out of range).
    pub from: Option<Timestamp>,
    /// End of the period (RFC 3339; null out of range).
    pub until: Option<Timestamp>,
    /// Samples.
    pub samples: u64,
    /// Error samples.
    pub errors: u64,
    /// Error rate (0 without samples).
    pub error_rate: f64,
    /// Latency over every endpoint.
    pub latency: Latency,
    /// Per endpoint.
    pub endpoints: BTreeMap<String, EndpointHealth>,
    /// Slow endpoints, slowest first.
    pub slow_endpoints: Vec<SlowEndpoint>,
    /// `slow_endpoint_ms`.
    pub slow_endpoint_ms: f64,
    /// `service_window_minutes`.
    pub window_minutes: f64,
    /// Per aggregation window (the last 2000).
    pub windows: Vec<WindowHealth>,
    /// Memory.
    pub memory: Memory,
    /// The score.
    pub health: Health,
}

/// The health report of `service` over `[from, until)` (µs).
pub fn health(
    cfg: &Config,
    ctx: &mut dyn Context,
    service: &str,
    from: i64,
    until: i64,
) -> Result<HealthReport, PluginError> {
    let tsq =
        |us: i64, name: &str| Timestamp::from_micros(us).ok_or_else(|| PluginError::invalid(name, "time out of range"));
    let mut q = EventQuery {
        subject: Some(service.to_string()),
        kind: Some(KIND.to_string()),
        from: Some(tsq(from, "from")?),
        until: Some(tsq(until, "until")?),
        order: Order::EventTime,
        limit: EventQuery::MAX_LIMIT,
        ..Default::default()
    };
    let win_us = (cfg.service_window_minutes * 60_000_000.0).round().max(1.0) as i64;
    struct Acc {
        lat: Vec<f64>,
        errors: u64,
        mem: Vec<f64>,
    }
    let new = || Acc { lat: Vec::new(), errors: 0, mem: Vec::new() };
    let mut by_endpoint: BTreeMap<String, Acc> = BTreeMap::new();
    let mut by_window: BTreeMap<i64, Acc> = BTreeMap::new();
    let (mut mem_t, mut mem_v) = (Vec::new(), Vec::new());
    let (mut n, mut errors) = (0u64, 0u64);
    loop {
        let page = ctx.predictions(&q)?;
        for p in &page.items {
            let r = &p.record;
            let (Some(lat), Some(ep)) = (r.value, r.payload.get("endpoint").and_then(Value::as_str)) else { continue };
            let t = r.event_time.map(|t| t.as_micros()).unwrap_or(0);
            let err = is_error(&r.payload);
            n += 1;
            errors += u64::from(err);
            let e = by_endpoint.entry(ep.to_string()).or_insert_with(new);
            e.lat.push(lat);
            e.errors += u64::from(err);
            let w = by_window.entry(t.div_euclid(win_us) * win_us).or_insert_with(new);
            w.lat.push(lat);
            w.errors += u64::from(err);
            if let Some(m) = r.payload.get("memory_mb").and_then(Value::as_f64) {
                w.mem.push(m);
                mem_t.push((t - from) as f64 / 3.6e9);
                mem_v.push(m);
            }
        }
        match page.next {
            Some(c) => q.after = Some(c),
            None => break,
        }
    }
    let error_rate = if n > 0 { errors as f64 / n as f64 } else { 0.0 };

    let mut endpoints = BTreeMap::new();
    let mut slow = Vec::new();
    let (mut qualified, mut fast) = (0usize, 0usize);
    for (ep, a) in &by_endpoint {
        let l = latency(&a.lat);
        let p95 = l.stats.as_ref().map_or(0.0, |s| s.p95);
        // A NaN p95 (no percentile) counted as 0, as before typing.
        let p95 = if p95.is_finite() { p95 } else { 0.0 };
        let is_slow = a.lat.len() >= cfg.min_samples && p95 > cfg.slow_endpoint_ms;
        if a.lat.len() >= cfg.min_samples {
            qualified += 1;
            fast += usize::from(!is_slow);
        }
        if is_slow {
            slow.push(SlowEndpoint {
                endpoint: ep.clone(),
                p95_ms: p95,
                avg_ms: l.stats.as_ref().map(|s| s.avg),
                samples: a.lat.len(),
                suggestion: format!("{ep}: p95 {p95:.0} ms is over {} ms; profile it, cache or paginate its slowest calls, check its queries", cfg.slow_endpoint_ms),
            });
        }
        endpoints.insert(
            ep.clone(),
            EndpointHealth {
                latency: l,
                errors: a.errors,
                error_rate: a.errors as f64 / a.lat.len() as f64,
                slow: is_slow,
            },
        );
    }
    slow.sort_by(|a, b| b.p95_ms.total_cmp(&a.p95_ms));

    let windows: Vec<WindowHealth> = by_window
        .iter()
        .rev()
        .take(2000)
        .rev()
        .map(|(start, a)| WindowHealth {
            latency: latency(&a.lat),
            start: Timestamp::from_micros(*start),
            error_rate: a.errors as f64 / a.lat.len() as f64,
            memory_mb: if a.mem.is_empty() { None } else { Some(mean(&a.mem).unwrap_or(f64::NAN)) },
        })
        .collect();

    // Memory: least-squares growth over the period and Spearman's trend test.
    let memory = if mem_v.len() < cfg.min_samples {
        Memory::Skipped {
            samples: mem_v.len(),
            skipped: format!("fewer than min_samples = {} memory samples", cfg.min_samples),
            leak_suspected: false,
        }
    } else {
        let (mt, mv) = (mean(&mem_t).unwrap_or(0.0), mean(&mem_v).unwrap_or(0.0));
        let sxx: f64 = mem_t.iter().map(|t| (t - mt) * (t - mt)).sum();
        let sxy: f64 = mem_t.iter().zip(&mem_v).map(|(t, v)| (t - mt) * (v - mv)).sum();
        let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
        let span_h = mem_t.last().unwrap_or(&0.0) - mem_t.first().unwrap_or(&0.0);
        let growth = slope * span_h;
        let trend = spearman(&mem_t, &mem_v).ok();
        let monotone = trend.is_some_and(|r| r.statistic > 0.0 && r.pvalue <= cfg.p_value);
        Memory::Fitted(MemoryTrend {
            samples: mem_v.len(),
            first_mb: mem_v[0],
            last_mb: mem_v[mem_v.len() - 1],
            slope_mb_per_hour: slope,
            fitted_growth_mb: growth,
            span_hours: span_h,
            spearman_rho: trend.map(|r| r.statistic),
            spearman_p_value: trend.map(|r| r.pvalue),
            threshold_mb: cfg.memory_leak_mb,
            leak_suspected: monotone && growth >= cfg.memory_leak_mb,
        })
    };
    let growth = memory.fitted_growth_mb();
    let growth = if growth.is_finite() { growth } else { 0.0 };
    let l = if qualified == 0 { 1.0 } else { fast as f64 / qualified as f64 };
    let e = (1.0 - error_rate / cfg.max_error_rate).max(0.0);
    let m = 1.0 - (growth.max(0.0) / cfg.memory_leak_mb).min(1.0);
    let score = (1000.0 * (0.4 * l + 0.4 * e + 0.2 * m)).round() / 10.0;
    let status = if score >= 90.0 {
        Status::Healthy
    } else if score >= 70.0 {
        Status::Degraded
    } else {
        Status::Unhealthy
    };
    Ok(HealthReport {
        service: service.to_string(),
        from: Timestamp::from_micros(from),
        until: Timestamp::from_micros(until),
        samples: n,
        errors,
        error_rate,
        latency: latency(&by_endpoint.values().flat_map(|a| a.lat.iter().copied()).collect::<Vec<_>>()),
        endpoints,
        slow_endpoints: slow,
        slow_endpoint_ms: cfg.slow_endpoint_ms,
        window_minutes: cfg.service_window_minutes,
        windows,
        memory,
        health: Health {
            score,
            status,
            components: Components { latency: l, errors: e, memory: m },
            formula: "100 * (0.4 * share of endpoints with p95 <= slow_endpoint_ms + 0.4 * max(0, 1 - error_rate / max_error_rate) + 0.2 * (1 - min(1, max(0, memory growth) / memory_leak_mb)))".into(),
        },
    })
}
