//! The scheduler's `/metrics` and `/health`, served on `[scheduler]
//! metrics_bind` when it is set ([`serve`]).
//!
//! [`SchedulerMetrics`] is updated by the loop ([`crate::Scheduler`]):
//! whether this process leads and until when its lease runs, each job's
//! runs by outcome and their duration, the last success per job, and the
//! lag of a due slot not yet started. The process and build metrics come
//! from [`learnloop_services::metrics::Exporter`], like the API's; other
//! parts of the scheduler add theirs with [`SchedulerMetrics::add`].

use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use learnloop_core::Timestamp;
use learnloop_services::metrics::{
    CLASSIC, Exporter, Labels, ModelGauges, OPENMETRICS, Unit, label, wants_openmetrics,
};
use learnloop_store::Lease;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

type FloatGauge = Gauge<f64, AtomicU64>;

fn durations() -> Histogram {
    // 10 ms to about 22 minutes.
    Histogram::new(exponential_buckets(0.01, 4.0, 10))
}

fn attempt_durations() -> Histogram {
    // 1 ms to about 4 minutes.
    Histogram::new(exponential_buckets(0.001, 4.0, 10))
}

/// What `/health` says.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Health {
    /// This scheduler's holder id.
    pub holder: String,
    /// Whether it holds the lease.
    pub leader: bool,
    /// When the lease runs out unless renewed (RFC 3339), while leading.
    pub lease_expires_at: Option<String>,
}

/// The scheduler's metrics and health.
#[derive(Debug)]
pub struct SchedulerMetrics {
    exporter: Exporter,
    leader: Gauge,
    lease_expiry: FloatGauge,
    runs: Family<Labels, Counter>,
    durations: Family<Labels, Histogram, fn() -> Histogram>,
    last_success: Family<Labels, FloatGauge>,
    lag: Family<Labels, FloatGauge>,
    models: ModelGauges,
    health: Mutex<Health>,
}

fn seconds(t: Timestamp) -> f64 {
    t.as_micros() as f64 / 1e6
}

impl SchedulerMetrics {
    /// The registry of a scheduler `holder` running `plugins`' jobs,
    /// exporting at most `max_models` models per workspace in the learning
    /// metrics (`[metrics] max_models`).
    pub fn new(holder: &str, plugins: &[String], max_models: usize) -> SchedulerMetrics {
        let exporter = Exporter::new("learnloop-scheduler", plugins);
        let leader = exporter.add(
            "learnloop_scheduler_leader",
            "1 while this scheduler holds the lease and runs jobs, 0 while it stands by.",
            None,
            Gauge::default(),
        );
        let lease_expiry = exporter.add(
            "learnloop_scheduler_lease_expiry_timestamp",
            "When this scheduler's lease runs out unless renewed, since the Unix epoch (0 while standing by).",
            Some(Unit::Seconds),
            FloatGauge::default(),
        );
        let runs = exporter.add(
            "learnloop_scheduler_job_runs",
            "Job runs this scheduler started, by plugin, job and outcome (succeeded, failed, abandoned, slot_taken, error).",
            None,
            Family::default(),
        );
        let durations = exporter.add(
            "learnloop_scheduler_job_duration",
            "Duration of the job runs this scheduler started, by plugin, job and outcome.",
            Some(Unit::Seconds),
            Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(durations),
        );
        let last_success = exporter.add(
            "learnloop_scheduler_job_last_success_timestamp",
            "When each job's latest successful run by this scheduler finished, since the Unix epoch.",
            Some(Unit::Seconds),
            Family::default(),
        );
        let lag = exporter.add(
            "learnloop_scheduler_job_lag",
            "How long each job's due attempt (a slot, a catch-up or a retry) has waited to start; 0 when none is due.",
            Some(Unit::Seconds),
            Family::default(),
        );
        let models = ModelGauges::new(&exporter, max_models);
        let health = Mutex::new(Health { holder: holder.to_string(), ..Health::default() });
        SchedulerMetrics { exporter, leader, lease_expiry, runs, durations, last_success, lag, models, health }
    }

    /// Registers another metric (a counter without `_total`, `unit`
    /// appending its suffix; see [`learnloop_services::metrics`]) and
    /// returns it: how other parts of the scheduler add theirs.
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
    pub fn add_collector(&self, collector: impl prometheus_client::collector::Collector) {
        self.exporter.add_collector(collector)
    }

    /// The lease as it stands now (`None`: standing by).
    pub fn lease(&self, lease: Option<&Lease>) {
        self.leader.set(i64::from(lease.is_some()));
        self.lease_expiry.set(lease.map_or(0.0, |l| seconds(l.expires_at)));
        let mut h = self.health.lock().unwrap_or_else(|e| e.into_inner());
        h.leader = lease.is_some();
        h.lease_expires_at = lease.map(|l| l.expires_at.to_string());
    }

    /// Counts the notification deliverer's attempts
    /// (`learnloop_notification_attempts_total{destination, result}`, result
    /// `delivered`, `failed` or `dead`) and their durations.
    pub fn notification_hook(&self) -> learnloop_notify::AttemptHook {
        let attempts: Family<Labels, Counter> = self.add(
            "learnloop_notification_attempts",
            "Notification delivery attempts of this scheduler's deliverer, by destination and result (delivered, failed: retried later, dead: given up).",
            None,
            Family::default(),
        );
        let seconds: Family<Labels, Histogram, fn() -> Histogram> = self.add(
            "learnloop_notification_attempt_duration",
            "How long each notification delivery attempt took, by destination.",
            Some(Unit::Seconds),
            Family::new_with_constructor(attempt_durations as fn() -> Histogram),
        );
        std::sync::Arc::new(move |destination: &str, result: &str, secs: f64| {
            attempts.get_or_create(&vec![("destination", label(destination)), ("result", label(result))]).inc();
            seconds.get_or_create(&vec![("destination", label(destination))]).observe(secs);
        })
    }

    /// One attempt finished with `outcome` after `secs`, at `at`.
    pub fn job_finished(&self, plugin: &str, job: &str, outcome: &str, secs: f64, at: Timestamp) {
        let job_labels: Labels = vec![("plugin", label(plugin)), ("job", label(job))];
        let mut labels = job_labels.clone();
        labels.push(("outcome", label(outcome)));
        self.runs.get_or_create(&labels).inc();
        self.durations.get_or_create(&labels).observe(secs);
        if outcome == "succeeded" {
            self.last_success.get_or_create(&job_labels).set(seconds(at));
        }
    }

    /// A run this scheduler recorded: the learning metrics its report
    /// carries (drift's daily job) are taken over.
    pub fn run_recorded(&self, run: &learnloop_core::JobRun) {
        self.models.update(run);
    }

    /// How long `job`'s due attempt has waited (0 when none is due).
    pub fn lag(&self, plugin: &str, job: &str, secs: f64) {
        self.lag.get_or_create(&vec![("plugin", label(plugin)), ("job", label(job))]).set(secs.max(0.0));
    }

    /// What `/health` answers.
    pub fn health(&self) -> Health {
        self.health.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The exposition text.
    pub fn render(&self, openmetrics: bool) -> String {
        self.exporter.render(openmetrics)
    }
}

/// Serves `GET /metrics` and `GET /health` on `listener` from a thread of
/// its own (a one-thread runtime), for as long as the process runs.
pub fn serve(
    listener: std::net::TcpListener,
    metrics: std::sync::Arc<SchedulerMetrics>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    use axum::http::{HeaderMap, header};
    use axum::response::IntoResponse;
    use axum::routing::get;

    listener.set_nonblocking(true)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_io().build()?;
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(|axum::extract::State(m): axum::extract::State<std::sync::Arc<SchedulerMetrics>>, h: HeaderMap| async move {
                let om = wants_openmetrics(h.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
                ([(header::CONTENT_TYPE, if om { OPENMETRICS } else { CLASSIC })], m.render(om)).into_response()
            }),
        )
        .route(
            "/health",
            get(|axum::extract::State(m): axum::extract::State<std::sync::Arc<SchedulerMetrics>>| async move {
                axum::Json(m.health())
            }),
        )
        .with_state(metrics);
    std::thread::Builder::new().name("metrics".into()).spawn(move || {
        runtime.block_on(async move {
            match tokio::net::TcpListener::from_std(listener) {
                Ok(l) => {
                    if let Err(e) = axum::serve(l, app).await {
                        tracing::error!("metrics server stopped: {e}");
                    }
                }
                Err(e) => tracing::error!("metrics server: {e}"),
            }
        })
    })
}
