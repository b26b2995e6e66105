//! What both servers' `/metrics` share: an [`Exporter`] over a
//! `prometheus-client` registry, the `process_*` metrics read from
//! `/proc/self`, `learnloop_build_info`, and the text they are served as.
//!
//! **Adding a metric.** Make it (`Counter`, `Gauge`, `Histogram`, or a
//! `Family` of one over [`Labels`]), hand it to [`Exporter::add`] with its
//! name, HELP text and unit, and keep the returned handle (metrics are
//! shared handles: a clone updates the same series):
//!
//! ```
//! use learnloop_services::metrics::{Exporter, Labels, Unit, label};
//! use prometheus_client::metrics::{counter::Counter, family::Family};
//!
//! let exporter = Exporter::new("learnloop-api", &["drift".to_string()]);
//! let sent: Family<Labels, Counter> =
//!     exporter.add("learnloop_notifications_sent", "Notifications delivered, by channel.", None, Family::default());
//! sent.get_or_create(&vec![("channel", label("webhook"))]).inc();
//! assert!(exporter.render(false).contains("learnloop_notifications_sent_total{channel=\"webhook\"} 1"));
//! ```
//!
//! Names follow Prometheus' rules: a counter is registered without its
//! `_total` (the encoder adds it), a unit is passed as [`Unit`] (the encoder
//! appends `_seconds`, `_bytes`, ...), and label values go through
//! [`label`], which escapes them (`prometheus-client` writes them as given).
//!
//! **Formats.** [`Exporter::render`] gives OpenMetrics text to a scraper
//! that asks for it (`Accept: application/openmetrics-text`, as Prometheus
//! does) and otherwise the classic text format 0.0.4, which `promtool check
//! metrics` and older scrapers read: the same families, with a counter's
//! HELP and TYPE named after its `_total` samples and no `# UNIT`/`# EOF`.

use std::sync::Mutex;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::TypedMetric;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
pub use prometheus_client::registry::Metric;
use prometheus_client::registry::Registry;
pub use prometheus_client::registry::Unit;

/// A metric's labels: names and (escaped, see [`label`]) values.
pub type Labels = Vec<(&'static str, String)>;

/// The content type of OpenMetrics text.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The content type of the classic text format.
pub const CLASSIC: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A label value as the text format needs it: backslash, double quote and
/// newline escaped.
pub fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// One process's registry, with the process and build metrics in it.
#[derive(Debug)]
pub struct Exporter {
    registry: Mutex<Registry>,
}

impl Exporter {
    /// A registry holding the `process_*` metrics and
    /// `learnloop_build_info{program, version, plugins}` (the plugins
    /// loaded, comma-separated).
    pub fn new(program: &str, plugins: &[String]) -> Exporter {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(ProcessCollector));
        registry.register_collector(Box::new(BuildInfo {
            labels: vec![
                ("program", label(program)),
                ("version", label(env!("CARGO_PKG_VERSION"))),
                ("plugins", label(&plugins.join(","))),
            ],
        }));
        Exporter { registry: Mutex::new(registry) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers `metric` as `name` (a counter without `_total`; `unit`
    /// appends its suffix) with its HELP text, and returns it.
    pub fn add<M: Metric + Clone>(&self, name: &str, help: &str, unit: Option<Unit>, metric: M) -> M {
        let mut r = self.lock();
        // The registry ends every HELP text with a full stop of its own.
        let help = help.trim_end_matches('.');
        match unit {
            Some(u) => r.register_with_unit(name, help, u, metric.clone()),
            None => r.register(name, help, metric.clone()),
        }
        metric
    }

    /// Registers a collector, asked for its metrics on every scrape (for
    /// values that live elsewhere: atomics of another module, the store).
    pub fn add_collector(&self, collector: impl Collector) {
        self.lock().register_collector(Box::new(collector));
    }

    /// The exposition text: OpenMetrics when `openmetrics`, else the
    /// classic format (see the module documentation).
    pub fn render(&self, openmetrics: bool) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.lock());
        if openmetrics { out } else { classic(&out) }
    }
}

/// Whether an `Accept` header asks for OpenMetrics.
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.contains("application/openmetrics-text"))
}

/// OpenMetrics text as the classic format: a counter's HELP and TYPE lines
/// take the `_total` name its samples have, `# UNIT` and `# EOF` go,
/// `unknown` is `untyped`.
fn classic(openmetrics: &str) -> String {
    let lines: Vec<&str> = openmetrics.lines().collect();
    let mut counters = std::collections::HashSet::new();
    for l in &lines {
        if let Some(rest) = l.strip_prefix("# TYPE ")
            && let Some(name) = rest.strip_suffix(" counter")
        {
            counters.insert(name.to_string());
        }
    }
    let mut out = String::with_capacity(openmetrics.len());
    for l in lines {
        if l.starts_with("# UNIT ") || l == "# EOF" {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|p| {
            let rest = l.strip_prefix(p)?;
            let (name, tail) = rest.split_once(' ')?;
            counters.contains(name).then(|| format!("{p}{name}_total {tail}"))
        });
        match renamed {
            Some(r) => out.push_str(&r),
            None if l.starts_with("# TYPE ") && l.ends_with(" unknown") => {
                out.push_str(&l.replace(" unknown", " untyped"));
            }
            None => out.push_str(l),
        }
        out.push('\n');
    }
    out
}

/// Encodes one gauge (no labels) from a collector.
pub fn const_gauge<N>(e: &mut DescriptorEncoder, name: &str, help: &str, unit: Option<&Unit>, v: N) -> std::fmt::Result
where
    ConstGauge<N>: EncodeMetric + TypedMetric,
{
    let g = ConstGauge::new(v);
    let m = e.encode_descriptor(name, help, unit, ConstGauge::<N>::TYPE)?;
    g.encode(m)
}

/// Encodes one counter (no labels; `name` without `_total`) from a collector.
pub fn const_counter<N>(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    v: N,
) -> std::fmt::Result
where
    ConstCounter<N>: EncodeMetric + TypedMetric,
{
    let c = ConstCounter::new(v);
    let m = e.encode_descriptor(name, help, unit, ConstCounter::<N>::TYPE)?;
    c.encode(m)
}

/// Drift's severity names on a number line (the plugin's `Level`).
pub const SEVERITIES: [&str; 5] = ["none", "low", "medium", "high", "critical"];

/// Per-model learning metrics, refreshed from the report of the drift
/// plugin's `daily` job each time a run of it succeeds: the current
/// window's MAE, RMSE and MAPE and the drift check's severity (0 none, 1
/// low, 2 medium, 3 high, 4 critical), labelled by workspace and model.
/// At most `max_models` models per workspace get series (by name order);
/// the rest are counted in `learnloop_model_metrics_omitted`, so the
/// label set stays bounded however many models report.
#[derive(Debug, Clone)]
pub struct ModelGauges {
    error: Family<Labels, FloatGauge>,
    severity: Family<Labels, FloatGauge>,
    omitted: Family<Labels, FloatGauge>,
    max_models: usize,
}

type FloatGauge = prometheus_client::metrics::gauge::Gauge<f64, std::sync::atomic::AtomicU64>;

impl ModelGauges {
    /// Registers the gauges with `exporter`.
    pub fn new(exporter: &Exporter, max_models: usize) -> ModelGauges {
        ModelGauges {
            error: exporter.add(
                "learnloop_model_error",
                "A model's error on the drift plugin's current window as of its latest daily job, by workspace, model and metric (mae, rmse, mape; mape in percent).",
                None,
                Family::default(),
            ),
            severity: exporter.add(
                "learnloop_model_drift_severity",
                "A model's drift severity as of the drift plugin's latest daily job: 0 none, 1 low, 2 medium, 3 high, 4 critical.",
                None,
                Family::default(),
            ),
            omitted: exporter.add(
                "learnloop_model_metrics_omitted",
                "Models left out of the per-model metrics by [metrics] max_models, by workspace.",
                None,
                Family::default(),
            ),
            max_models,
        }
    }

    /// Takes the gauges from `run` when it is a succeeded `drift.daily`
    /// run; returns whether it was. The series of models no longer in the
    /// report go.
    pub fn update(&self, run: &learnloop_core::JobRun) -> bool {
        if run.plugin.as_str() != "drift" || run.job != "daily" || run.status != learnloop_core::JobStatus::Succeeded {
            return false;
        }
        let Some(workspaces) = run.report.as_ref().and_then(|r| r.get("workspaces")).and_then(|w| w.as_object()) else {
            return false;
        };
        self.error.clear();
        self.severity.clear();
        self.omitted.clear();
        for (ws, report) in workspaces {
            let Some(models) = report.get("models").and_then(|m| m.as_object()) else { continue };
            // serde_json's map is ordered by key: the first max_models names.
            for (model, m) in models.iter().take(self.max_models) {
                let base: Labels = vec![("workspace", label(ws)), ("model", label(model))];
                if let Some(level) = m.get("severity").and_then(|v| v.as_str())
                    && let Some(n) = SEVERITIES.iter().position(|s| *s == level)
                {
                    self.severity.get_or_create(&base).set(n as f64);
                }
                for metric in ["mae", "rmse", "mape"] {
                    if let Some(v) = m.get("current_window").and_then(|w| w.get(metric)).and_then(|v| v.as_f64()) {
                        let mut labels = base.clone();
                        labels.push(("metric", metric.to_string()));
                        self.error.get_or_create(&labels).set(v);
                    }
                }
            }
            let left = models.len().saturating_sub(self.max_models);
            self.omitted.get_or_create(&vec![("workspace", label(ws))]).set(left as f64);
        }
        true
    }
}

#[derive(Debug)]
struct BuildInfo {
    labels: Labels,
}

impl Collector for BuildInfo {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let g = ConstGauge::new(1i64);
        let mut m = e.encode_descriptor(
            "learnloop_build_info",
            "Always 1; the labels say which program, version and plugins this process runs.",
            None,
            ConstGauge::<i64>::TYPE,
        )?;
        g.encode(m.encode_family(&self.labels)?)
    }
}

/// `process_*` as the Prometheus client libraries name them, read from
/// `/proc/self` on each scrape (nothing on systems without it).
#[derive(Debug)]
struct ProcessCollector;

/// Linux reports CPU times in clock ticks of 1/100 s (`USER_HZ`, fixed at
/// 100 for user space on every architecture Linux runs learnloop on; the
/// Go client's procfs assumes the same).
const USER_HZ: f64 = 100.0;

impl Collector for ProcessCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let Some(p) = ProcStat::read() else { return Ok(()) };
        const_counter(
            &mut e,
            "process_cpu",
            "User and system CPU time this process has used.",
            Some(&Unit::Seconds),
            p.cpu_seconds,
        )?;
        if let Some(rss) = p.resident_bytes {
            const_gauge(&mut e, "process_resident_memory", "Resident memory size.", Some(&Unit::Bytes), rss)?;
        }
        if let Some(vsz) = p.virtual_bytes {
            const_gauge(&mut e, "process_virtual_memory", "Virtual memory size.", Some(&Unit::Bytes), vsz)?;
        }
        if let Some(fds) = p.open_fds {
            const_gauge(&mut e, "process_open_fds", "Open file descriptors.", None, fds)?;
        }
        if let Some(max) = p.max_fds {
            const_gauge(&mut e, "process_max_fds", "Limit on open file descriptors.", None, max)?;
        }
        if let Some(start) = p.start_time_seconds {
            const_gauge(
                &mut e,
                "process_start_time",
                "Start time of the process since the Unix epoch.",
                Some(&Unit::Seconds),
                start,
            )?;
        }
        Ok(())
    }
}

/// What `/proc/self` says about this process.
#[derive(Debug, Default, PartialEq)]
pub struct ProcStat {
    /// utime + stime.
    pub cpu_seconds: f64,
    /// VmRSS.
    pub resident_bytes: Option<i64>,
    /// VmSize.
    pub virtual_bytes: Option<i64>,
    /// Entries of `/proc/self/fd`.
    pub open_fds: Option<i64>,
    /// The soft "Max open files" limit.
    pub max_fds: Option<i64>,
    /// Boot time plus the process's start, in seconds since the epoch.
    pub start_time_seconds: Option<f64>,
}

impl ProcStat {
    /// Reads `/proc/self`; `None` where there is no `/proc`.
    pub fn read() -> Option<ProcStat> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name, which is in parentheses and may
        // hold spaces: state is field 3, utime 14, stime 15, starttime 22.
        let after = &stat[stat.rfind(')')? + 2..];
        let f: Vec<&str> = after.split_whitespace().collect();
        let num = |i: usize| f.get(i - 3).and_then(|v| v.parse::<f64>().ok());
        let cpu_seconds = (num(14)? + num(15)?) / USER_HZ;
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let kb = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
                .map(|k| k * 1024)
        };
        let boot = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| s.lines().find_map(|l| l.strip_prefix("btime ")?.trim().parse::<f64>().ok()));
        let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
        let max_fds = limits
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .and_then(|l| l.split_whitespace().nth(3))
            .and_then(|v| v.parse::<i64>().ok());
        Some(ProcStat {
            cpu_seconds,
            resident_bytes: kb("VmRSS:"),
            virtual_bytes: kb("VmSize:"),
            open_fds: std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count() as i64),
            max_fds,
            start_time_seconds: boot.zip(num(22)).map(|(b, s)| b + s / USER_HZ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::counter::Counter;

    #[test]
    fn classic_text_names_counters_by_their_samples_and_drops_openmetrics_lines() {
        let ex = Exporter::new("test", &["drift".into(), "cost".into()]);
        let c: Family<Labels, Counter> = ex.add("t_events", "Events.", None, Family::default());
        c.get_or_create(&vec![("kind", label("a\"b"))]).inc_by(3);
        let text = ex.render(false);
        assert!(text.contains("# HELP t_events_total Events.\n# TYPE t_events_total counter\n"), "{text}");
        assert!(text.contains("t_events_total{kind=\"a\\\"b\"} 3\n"), "{text}");
        assert!(!text.contains("# EOF") && !text.contains("# UNIT"), "{text}");
        assert!(text.contains("learnloop_build_info{program=\"test\",version=\""), "{text}");
        assert!(text.contains(",plugins=\"drift,cost\"} 1"), "{text}");
        let om = ex.render(true);
        assert!(om.ends_with("# EOF\n") && om.contains("# TYPE t_events counter"), "{om}");
    }

    #[test]
    fn process_metrics_come_from_proc() {
        let p = ProcStat::read().expect("/proc/self");
        assert!(p.resident_bytes.unwrap() > 1 << 20, "{p:?}");
        assert!(p.open_fds.unwrap() >= 3, "{p:?}");
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
        let start = p.start_time_seconds.unwrap();
        assert!(start <= now + 1.0 && start > now - 3600.0, "started {start}, now {now}");
        let text = Exporter::new("test", &[]).render(false);
        for name in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_open_fds",
            "process_start_time_seconds",
        ] {
            assert!(text.contains(&format!("# TYPE {name} ")), "{name} missing:\n{text}");
        }
    }
}
