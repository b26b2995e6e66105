//! The API's Prometheus metrics, on `prometheus-client`
//! ([`learnloop_services::metrics::Exporter`]).
//!
//! [`Metrics`] holds the families the handlers update (requests by method,
//! route template and status, their latency, records ingested, jobs run
//! through the API, plugin failures); the collectors registered in
//! [`Metrics::new`] read at scrape time what lives elsewhere (the LLM
//! client's counters, the server loop's connection counters, `/ready`'s
//! condition), and `GET /metrics` refreshes the per-job gauges from the
//! store before it renders.
//!
//! **Adding a metric** (a module of the API, e.g. notifications): call
//! [`Metrics::add`] once, where the state is built, with the metric's name
//! (a counter without `_total`), HELP text and unit, keep the returned
//! handle and update it; or register a collector with
//! [`Metrics::add_collector`] for values read at scrape time. See
//! [`learnloop_services::metrics`] for the naming rules.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use learnloop_services::metrics::{Exporter, Labels, ModelGauges, Unit, const_counter, const_gauge, label};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::TypedMetric;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;

/// Latency bucket bounds, seconds.
const BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

fn latency() -> Histogram {
    Histogram::new(BUCKETS)
}

/// A histogram family with the API's latency buckets.
type Latencies = Family<Labels, Histogram, fn() -> Histogram>;

/// The API's metrics.
#[derive(Debug)]
pub struct Metrics {
    exporter: Exporter,
    requests: Family<Labels, Counter>,
    request_latency: Latencies,
    ingested: Family<Labels, Counter>,
    jobs: Latencies,
    plugin_errors: Family<Labels, Counter>,
    job_last_duration: Family<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    models: ModelGauges,
    outbox: Outbox,
}

/// The notification outbox's gauges (read from the store at scrape time,
/// so what the scheduler's deliverer did shows here too).
#[derive(Debug)]
struct Outbox {
    unrouted: Gauge,
    unrouted_age: Gauge<f64, std::sync::atomic::AtomicU64>,
    deliveries: Family<Labels, Gauge>,
    pending_age: Family<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new(&[], learnloop_config::MetricsConfig::default().max_models)
    }
}

impl Metrics {
    /// The registry of an API process running `plugins`, exporting at
    /// most `max_models` models per workspace (`[metrics] max_models`).
    pub fn new(plugins: &[String], max_models: usize) -> Metrics {
        let exporter = Exporter::new("learnloop-api", plugins);
        let requests = exporter.add(
            "learnloop_http_requests",
            "HTTP requests by method, route template and status.",
            None,
            Family::default(),
        );
        let request_latency = exporter.add(
            "learnloop_http_request_duration",
            "HTTP request latency by method and route template.",
            Some(Unit::Seconds),
            Latencies::new_with_constructor(latency),
        );
        let ingested = exporter.add(
            "learnloop_ingested_records",
            "Records received by type and result (inserted, duplicate, rejected).",
            None,
            Family::default(),
        );
        let jobs = exporter.add(
            "learnloop_job_duration",
            "Job runs started through the API, by plugin, job and status.",
            Some(Unit::Seconds),
            Latencies::new_with_constructor(latency),
        );
        let plugin_errors =
            exporter.add("learnloop_plugin_errors", "Plugin calls that failed, by plugin.", None, Family::default());
        let job_last_duration = exporter.add(
            "learnloop_job_last_run_duration",
            "Duration of the latest finished run of each job (any runner), by status.",
            Some(Unit::Seconds),
            Family::default(),
        );
        exporter.add_collector(LlmCalls);
        let models = ModelGauges::new(&exporter, max_models);
        let outbox = Outbox {
            unrouted: exporter.add(
                "learnloop_notifications_unrouted",
                "Notifications in the outbox not yet routed to destinations.",
                None,
                Gauge::default(),
            ),
            unrouted_age: exporter.add(
                "learnloop_notifications_unrouted_age",
                "Age of the oldest notification not yet routed (0 when none).",
                Some(Unit::Seconds),
                Gauge::default(),
            ),
            deliveries: exporter.add(
                "learnloop_notification_deliveries",
                "Notification deliveries by destination and status (pending, delivered, dead).",
                None,
                Family::default(),
            ),
            pending_age: exporter.add(
                "learnloop_notification_pending_age",
                "Age of each destination's oldest pending delivery (queue age).",
                Some(Unit::Seconds),
                Family::default(),
            ),
        };
        Metrics {
            exporter,
            requests,
            request_latency,
            ingested,
            jobs,
            plugin_errors,
            job_last_duration,
            models,
            outbox,
        }
    }

    /// Registers another metric (see the module documentation) and
    /// returns it.
    pub fn add<M: learnloop_services::metrics::Metric + Clone>(
        &self,
        name: &str,
        help: &str,
        unit: Option<Unit>,
        metric: M,
    ) -> M {
        self.exporter.add(name, help, unit, metric)
    }

    /// Registers a collector, asked on every scrape.
    pub fn add_collector(&self, collector: impl Collector) {
        self.exporter.add_collector(collector)
    }

    /// One finished request; `route` is the matched template, never the path.
    pub fn request(&self, method: &str, route: &str, status: u16, secs: f64) {
        let (m, r) = (label(method), label(route));
        self.requests
            .get_or_create(&vec![("method", m.clone()), ("route", r.clone()), ("status", status.to_string())])
            .inc();
        self.request_latency.get_or_create(&vec![("method", m), ("route", r)]).observe(secs);
    }

    /// Records ingested, by record type and outcome (`inserted`, `duplicate`, `rejected`).
    pub fn ingested(&self, record_type: &str, status: &str, n: u64) {
        if n > 0 {
            self.ingested.get_or_create(&vec![("type", label(record_type)), ("result", label(status))]).inc_by(n);
        }
    }

    /// A job run's duration.
    pub fn job(&self, plugin: &str, job: &str, status: &str, secs: f64) {
        self.jobs
            .get_or_create(&vec![("plugin", label(plugin)), ("job", label(job)), ("status", label(status))])
            .observe(secs);
    }

    /// A plugin call that failed.
    pub fn plugin_error(&self, plugin: &str) {
        self.plugin_errors.get_or_create(&vec![("plugin", label(plugin))]).inc();
    }

    /// Replaces the per-job gauges with the latest finished runs (newest
    /// first, as the store lists them), and the per-model learning metrics
    /// with the latest succeeded `drift.daily` run's report (whoever ran it).
    pub fn job_runs(&self, runs: &[learnloop_core::JobRun]) {
        for r in runs {
            if self.models.update(r) {
                break;
            }
        }
        self.job_last_duration.clear();
        let mut seen = std::collections::BTreeSet::new();
        for r in runs {
            let Some(finished) = r.finished_at else { continue };
            if seen.insert((r.plugin.to_string(), r.job.clone())) {
                let secs = (finished.as_micros() - r.started_at.as_micros()) as f64 / 1e6;
                self.job_last_duration
                    .get_or_create(&vec![
                        ("plugin", label(r.plugin.as_str())),
                        ("job", label(&r.job)),
                        ("status", label(r.status.as_str())),
                        ("runner", label(&r.runner)),
                    ])
                    .set(secs);
            }
        }
    }

    /// Replaces the outbox gauges with `stats` as of `now`.
    pub fn outbox(&self, stats: &learnloop_store::OutboxStats, now: learnloop_core::Timestamp) {
        let age = |t: learnloop_core::Timestamp| (now.as_micros() - t.as_micros()).max(0) as f64 / 1e6;
        let o = &self.outbox;
        o.unrouted.set(i64::try_from(stats.unrouted).unwrap_or(i64::MAX));
        o.unrouted_age.set(stats.oldest_unrouted.map_or(0.0, age));
        o.deliveries.clear();
        for (d, status, n) in &stats.deliveries {
            o.deliveries
                .get_or_create(&vec![("destination", label(d)), ("status", label(status.as_str()))])
                .set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
        o.pending_age.clear();
        for (d, t) in &stats.oldest_pending {
            o.pending_age.get_or_create(&vec![("destination", label(d))]).set(age(*t));
        }
    }

    /// The exposition text (OpenMetrics or classic, see
    /// [`learnloop_services::metrics`]).
    pub fn render(&self, openmetrics: bool) -> String {
        self.exporter.render(openmetrics)
    }
}

/// The LLM client's counters (process-wide; zero without `[llm] url`).
#[derive(Debug)]
struct LlmCalls;

impl Collector for LlmCalls {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let snapshot = learnloop_llm::process_counters().snapshot();
        let mut m = e.encode_descriptor(
            "learnloop_llm_calls",
            "Calls to the local LLM by operation and outcome (anything but ok fell back to the rule-based path).",
            None,
            ConstCounter::<u64>::TYPE,
        )?;
        for (op, outcome, n) in snapshot {
            let labels: Labels = vec![("operation", label(op)), ("outcome", label(outcome))];
            ConstCounter::new(n).encode(m.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// The server loop's and `/ready`'s condition, read at scrape time.
pub struct ServerCollector {
    /// The connection counters of [`crate::serve`].
    pub conns: Arc<crate::serve::ConnStats>,
    /// Out of space, draining.
    pub status: Arc<crate::status::ServerStatus>,
}

impl std::fmt::Debug for ServerCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerCollector")
    }
}

impl Collector for ServerCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let (c, s) = (&self.conns, &self.status);
        const_gauge(
            &mut e,
            "learnloop_store_out_of_space",
            "1 while the store refuses writes for want of space (writes answer 507, /ready 503).",
            None,
            i64::from(s.full_reason().is_some()),
        )?;
        const_counter(
            &mut e,
            "learnloop_store_out_of_space_writes",
            "Writes refused because the store was out of space.",
            None,
            s.out_of_space_writes.load(Relaxed),
        )?;
        const_gauge(
            &mut e,
            "learnloop_draining",
            "1 once SIGTERM/SIGINT arrived: finishing requests in flight, taking no new connections.",
            None,
            i64::from(s.draining()),
        )?;
        const_gauge(
            &mut e,
            "learnloop_http_connections_open",
            "Client connections open now.",
            None,
            c.open.load(Relaxed) as i64,
        )?;
        for (name, help, v) in [
            ("learnloop_http_connections_accepted", "Client connections accepted.", &c.accepted),
            (
                "learnloop_http_header_timeouts",
                "Connections closed because a request's headers did not arrive within api.header_timeout_ms.",
                &c.header_timeouts,
            ),
            (
                "learnloop_http_idle_timeouts",
                "Kept-alive connections closed after api.idle_timeout_ms without a request.",
                &c.idle_timeouts,
            ),
            (
                "learnloop_http_body_timeouts",
                "Requests answered 408 because the body did not arrive within api.body_timeout_ms.",
                &c.body_timeouts,
            ),
            (
                "learnloop_http_shutdown_aborts",
                "Connections closed with a request in flight at the shutdown deadline.",
                &c.shutdown_aborts,
            ),
        ] {
            const_counter(&mut e, name, help, None, v.load(Relaxed))?;
        }
        Ok(())
    }
}
