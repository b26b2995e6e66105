//! Prometheus metrics, in the text exposition format, without a metrics
//! dependency: a few labelled counters and latency histograms are all the
//! API needs.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// Latency bucket bounds, seconds.
const BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.counts[i] += 1;
            }
        }
        self.sum += secs;
        self.count += 1;
    }
}

/// The registry.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(String, String, u16), u64>,
    latency: BTreeMap<(String, String), Histogram>,
    ingested: BTreeMap<(String, String), u64>,
    jobs: BTreeMap<(String, String, String), Histogram>,
    plugin_errors: BTreeMap<String, u64>,
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One finished request.
    pub fn request(&self, method: &str, route: &str, status: u16, secs: f64) {
        let mut m = self.lock();
        *m.requests.entry((method.to_string(), route.to_string(), status)).or_default() += 1;
        m.latency.entry((method.to_string(), route.to_string())).or_default().observe(secs);
    }

    /// Records ingested, by record type and outcome (`inserted`, `duplicate`, `rejected`).
    pub fn ingested(&self, record_type: &str, status: &str, n: u64) {
        if n > 0 {
            *self.lock().ingested.entry((record_type.to_string(), status.to_string())).or_default() += n;
        }
    }

    /// A job run's duration.
    pub fn job(&self, plugin: &str, job: &str, status: &str, secs: f64) {
        self.lock().jobs.entry((plugin.to_string(), job.to_string(), status.to_string())).or_default().observe(secs);
    }

    /// A plugin call that failed.
    pub fn plugin_error(&self, plugin: &str) {
        *self.lock().plugin_errors.entry(plugin.to_string()).or_default() += 1;
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let m = self.lock();
        let mut out = String::new();
        out.push_str("# HELP learnloop_http_requests_total HTTP requests by method, route and status.\n# TYPE learnloop_http_requests_total counter\n");
        for ((method, route, status), n) in &m.requests {
            let _ = writeln!(
                out,
                "learnloop_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}",
                esc(method),
                esc(route)
            );
        }
        out.push_str("# HELP learnloop_http_request_duration_seconds HTTP request latency by method and route.\n# TYPE learnloop_http_request_duration_seconds histogram\n");
        for ((method, route), h) in &m.latency {
            let labels = format!("method=\"{}\",route=\"{}\"", esc(method), esc(route));
            histogram(&mut out, "learnloop_http_request_duration_seconds", &labels, h);
        }
        out.push_str("# HELP learnloop_ingested_records_total Records received by type and result.\n# TYPE learnloop_ingested_records_total counter\n");
        for ((t, s), n) in &m.ingested {
            let _ = writeln!(out, "learnloop_ingested_records_total{{type=\"{t}\",result=\"{s}\"}} {n}");
        }
        out.push_str("# HELP learnloop_job_duration_seconds Job runs started through the API, by plugin, job and status.\n# TYPE learnloop_job_duration_seconds histogram\n");
        for ((p, j, s), h) in &m.jobs {
            let labels = format!("plugin=\"{}\",job=\"{}\",status=\"{s}\"", esc(p), esc(j));
            histogram(&mut out, "learnloop_job_duration_seconds", &labels, h);
        }
        out.push_str("# HELP learnloop_plugin_errors_total Plugin calls that failed, by plugin.\n# TYPE learnloop_plugin_errors_total counter\n");
        for (p, n) in &m.plugin_errors {
            let _ = writeln!(out, "learnloop_plugin_errors_total{{plugin=\"{}\"}} {n}", esc(p));
        }
        // The LLM client's counters (process-wide; zero without `[llm] url`).
        out.push_str("# HELP learnloop_llm_calls_total Calls to the local LLM by operation and outcome (anything but ok fell back to the rule-based path).\n# TYPE learnloop_llm_calls_total counter\n");
        for (op, outcome, n) in learnloop_llm::process_counters().snapshot() {
            let _ = writeln!(out, "learnloop_llm_calls_total{{operation=\"{op}\",outcome=\"{outcome}\"}} {n}");
        }
        out
    }
}

fn histogram(out: &mut String, name: &str, labels: &str, h: &Histogram) {
    for (b, c) in BUCKETS.iter().zip(h.counts) {
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{b}\"}} {c}");
    }
    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
    let _ = writeln!(out, "{name}_sum{{{labels}}} {}", h.sum);
    let _ = writeln!(out, "{name}_count{{{labels}}} {}", h.count);
}
