//! The cost scenario of `learnloop simulate`: recommendations whose realised
//! savings are biased per type, region and resource type (with log-normal
//! noise), whose execution success depends on the stated risk, the type,
//! the resource type and one scoring factor (`readiness`) but not on the
//! region (the no-signal level) nor on the `noise` factor. Every seed draws
//! its own biases, effects and noise level, so the streams vary.
//!
//! The stream is fed causally in batches: each batch of recommendations is
//! first assessed (`POST /assess`, with the parameters in force), then its
//! predictions and outcomes are ingested and the learning cycle runs (the
//! host backtests and applies its proposals). Only assessments made before
//! their outcomes were ingested are scored, from the fourth batch on.

use anyhow::{Context, Result, bail};
use learnloop_core::{Record, Timestamp, WorkspaceId, parse_json_record};
use learnloop_plugin_host::{IngestStatus, PluginHost};
use learnloop_stats::SplitMix64 as Rng;
use serde_json::{Value, json};

use super::{Report, Row, TempDir};

const DAY: i64 = 86_400_000_000;
const T0: i64 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z
const TYPES: [&str; 4] = ["rightsizing", "spot_instances", "reserved_instances", "storage_tiering"];
const REGIONS: [&str; 3] = ["us-east-1", "eu-west-1", "ap-south-1"];
const RESOURCES: [&str; 3] = ["ec2", "rds", "ebs"];
const RISKS: [&str; 3] = ["low", "medium", "high"];
/// Recommendations per stream and per batch.
const N: usize = 2400;
const BATCH: usize = 200;
/// Batches learned from before assessments are scored.
const WARM_UP: usize = 3;
const WS: &str = "simulation";

/// The generating model of one seed.
struct Truth {
    type_bias: [f64; 4],
    region_bias: [f64; 3],
    resource_bias: [f64; 3],
    noise: f64,
    risk_logit: [f64; 3],
    type_logit: [f64; 4],
    resource_logit: [f64; 3],
    readiness_slope: f64,
}

impl Truth {
    fn draw(rng: &mut Rng) -> Truth {
        let mut u = |lo: f64, hi: f64| lo + (hi - lo) * rng.uniform();
        Truth {
            type_bias: [u(0.6, 1.15), u(0.6, 1.15), u(0.6, 1.15), u(0.6, 1.15)],
            region_bias: [u(0.8, 1.05), u(0.8, 1.05), u(0.8, 1.05)],
            resource_bias: [u(0.93, 1.05), u(0.93, 1.05), u(0.93, 1.05)],
            noise: u(0.05, 0.10),
            risk_logit: [u(2.8, 3.6), u(1.6, 2.4), u(0.5, 1.3)],
            type_logit: [u(-0.9, 0.9), u(-0.9, 0.9), u(-0.9, 0.9), u(-0.9, 0.9)],
            resource_logit: [u(-0.4, 0.4), u(-0.4, 0.4), u(-0.4, 0.4)],
            readiness_slope: u(1.5, 3.0),
        }
    }

    fn success_probability(&self, c: &Case) -> f64 {
        let z = self.risk_logit[c.risk]
            + self.type_logit[c.kind]
            + self.resource_logit[c.resource]
            + self.readiness_slope * (c.readiness - 0.5);
        1.0 / (1.0 + (-z).exp())
    }

    fn factor(&self, c: &Case) -> f64 {
        self.type_bias[c.kind] * self.region_bias[c.region] * self.resource_bias[c.resource]
    }
}

/// One recommendation and what became of it.
struct Case {
    id: String,
    t: i64,
    kind: usize,
    region: usize,
    resource: usize,
    risk: usize,
    predicted: f64,
    readiness: f64,
    noise_factor: f64,
    p_success: f64,
    success: bool,
    actual: f64,
}

fn cases(truth: &Truth, rng: &mut Rng) -> Vec<Case> {
    (0..N)
        .map(|i| {
            let mut c = Case {
                id: format!("sim-{i:05}"),
                t: T0 + (i as i64) * DAY / 8,
                kind: (rng.next_u64() % 4) as usize,
                region: (rng.next_u64() % 3) as usize,
                resource: (rng.next_u64() % 3) as usize,
                risk: (rng.next_u64() % 3) as usize,
                predicted: (50.0 + 1950.0 * rng.uniform()).round(),
                readiness: rng.uniform(),
                noise_factor: rng.uniform(),
                p_success: 0.0,
                success: false,
                actual: 0.0,
            };
            c.p_success = truth.success_probability(&c);
            c.success = rng.uniform() < c.p_success;
            let a = c.predicted * truth.factor(&c) * (truth.noise * rng.normal()).exp();
            c.actual = (a * 100.0).round() / 100.0;
            c
        })
        .collect()
}

fn time(us: i64) -> String {
    Timestamp::from_micros(us).map(|t| t.to_rfc3339()).unwrap_or_default()
}

fn record(v: Value) -> Result<Record> {
    parse_json_record(&v.to_string(), &Default::default())
        .map_err(|e| anyhow::anyhow!("generated record is invalid: {e}"))
}

fn records(c: &Case) -> Result<Vec<Record>> {
    let mut out = vec![record(json!({
        "type": "prediction", "id": c.id, "workspace": WS, "plugin": "cost", "subject": format!("res-{}", c.id),
        "kind": TYPES[c.kind], "value": c.predicted, "confidence": 0.8,
        "features": {"readiness": c.readiness, "noise": c.noise_factor},
        "payload": {"resource_type": RESOURCES[c.resource], "region": REGIONS[c.region], "risk_level": RISKS[c.risk]},
        "event_time": time(c.t),
    }))?];
    out.push(record(json!({
        "type": "outcome", "id": format!("{}-exec", c.id), "workspace": WS, "plugin": "cost", "prediction_id": c.id,
        "success": c.success, "event_time": time(c.t + DAY),
    }))?);
    if c.success {
        out.push(record(json!({
            "type": "outcome", "id": format!("{}-savings", c.id), "workspace": WS, "plugin": "cost", "prediction_id": c.id,
            "value": c.actual, "event_time": time(c.t + 31 * DAY),
        }))?);
    }
    Ok(out)
}

fn assess(host: &PluginHost, ws: &WorkspaceId, c: &Case) -> Result<Value> {
    let body = json!({
        "recommendation_type": TYPES[c.kind], "resource_type": RESOURCES[c.resource], "region": REGIONS[c.region],
        "predicted_savings": c.predicted, "risk_level": RISKS[c.risk],
        "scoring_factors": {"readiness": c.readiness, "noise": c.noise_factor}, "similar_cases": 0,
    });
    let r = host
        .handle("cost", ws, "POST", "/assess", Default::default(), body)
        .map_err(|e| anyhow::anyhow!("POST /assess: {e}"))?;
    if r.status != 200 {
        bail!("POST /assess answered {}: {}", r.status, r.body);
    }
    Ok(r.body)
}

fn num(v: &Value, what: &str) -> Result<f64> {
    v.as_f64().with_context(|| format!("/assess answered no number for {what}"))
}

/// Running sums of the scored assessments.
#[derive(Default)]
struct Sums {
    measured: usize,
    raw: f64,
    calibrated: f64,
    true_err: f64,
    covered: usize,
    naive_covered: usize,
    executed: usize,
    brier: f64,
    brier_base: f64,
    brier_true: f64,
    logloss: f64,
    logloss_base: f64,
    logloss_true: f64,
}

fn logloss(p: f64, y: bool) -> f64 {
    let p = p.clamp(1e-6, 1.0 - 1e-6);
    -(if y { p.ln() } else { (1.0 - p).ln() })
}

/// Runs the cost scenario with `seed`.
pub fn run(seed: u64, config: &learnloop_config::Config) -> Result<Report> {
    let mut rng = Rng::new(seed ^ 0xC057_5EED);
    let truth = Truth::draw(&mut rng);
    let all = cases(&truth, &mut rng);
    let dir = TempDir::new("cost")?;
    let host = super::host(dir.path(), "cost", config)?;
    let ws = WorkspaceId::parse("workspace", WS).map_err(anyhow::Error::msg)?;
    let now = Timestamp::from_micros(T0 + 2000 * DAY).context("simulation clock out of range")?;
    let (mut seen, mut seen_ok) = (0usize, 0usize);
    let mut s = Sums::default();
    let mut cycles = 0;
    for (b, batch) in all.chunks(BATCH).enumerate() {
        if b >= WARM_UP {
            let base = (seen_ok as f64 + 1.0) / (seen as f64 + 2.0);
            for c in batch {
                let a = assess(&host, &ws, c)?;
                let p = num(&a["probability_of_success"], "probability_of_success")?;
                let y = if c.success { 1.0 } else { 0.0 };
                s.executed += 1;
                s.brier += (p - y) * (p - y);
                s.brier_base += (base - y) * (base - y);
                s.brier_true += (c.p_success - y) * (c.p_success - y);
                s.logloss += logloss(p, c.success);
                s.logloss_base += logloss(base, c.success);
                s.logloss_true += logloss(c.p_success, c.success);
                if c.success {
                    let cal = num(&a["calibrated_savings"], "calibrated_savings")?;
                    let lo = num(&a["interval"]["lower"], "interval.lower")?;
                    let hi = num(&a["interval"]["upper"], "interval.upper")?;
                    s.measured += 1;
                    s.raw += (c.predicted - c.actual).abs() / c.actual;
                    s.calibrated += (cal - c.actual).abs() / c.actual;
                    s.true_err += (c.predicted * truth.factor(c) - c.actual).abs() / c.actual;
                    s.covered += usize::from(lo <= c.actual && c.actual <= hi);
                    s.naive_covered += usize::from((c.predicted * 0.85..=c.predicted * 1.15).contains(&c.actual));
                }
            }
        }
        let mut recs = Vec::with_capacity(batch.len() * 3);
        for c in batch {
            recs.extend(records(c)?);
        }
        let statuses = host.ingest(recs, now)?;
        if let Some(bad) = statuses.iter().find(|s| !matches!(s, IngestStatus::Inserted)) {
            bail!("the host did not take a generated record: {bad:?}");
        }
        seen += batch.len();
        seen_ok += batch.iter().filter(|c| c.success).count();
        host.run_job("cost", "learning_cycle", "simulate", None, 1)?;
        cycles += 1;
    }
    if s.measured == 0 || s.executed == 0 {
        bail!("the stream produced no scored outcomes");
    }
    let (m, e) = (s.measured as f64, s.executed as f64);
    let metrics = host
        .handle("cost", &ws, "GET", "/metrics", Default::default(), Value::Null)
        .map_err(|e| anyhow::anyhow!("GET /metrics: {e}"))?
        .body;
    let coverage = s.covered as f64 / m;
    let naive_coverage = s.naive_covered as f64 / m;
    let rows = vec![
        Row {
            decision: "calibrated savings".into(),
            metric: "mean abs % error".into(),
            learned: s.calibrated / m,
            truth: Some(s.true_err / m),
            baseline: s.raw / m,
            baseline_rule: "the predicted savings as stated".into(),
            lower_is_better: true,
            beats_baseline: s.calibrated < s.raw,
        },
        Row {
            decision: "90% savings interval".into(),
            metric: "coverage".into(),
            learned: coverage,
            truth: Some(0.9),
            baseline: naive_coverage,
            baseline_rule: "predicted ± 15%".into(),
            lower_is_better: false,
            beats_baseline: (coverage - 0.9).abs() < (naive_coverage - 0.9).abs(),
        },
        Row {
            decision: "probability of success".into(),
            metric: "Brier score".into(),
            learned: s.brier / e,
            truth: Some(s.brier_true / e),
            baseline: s.brier_base / e,
            baseline_rule: "the success rate so far".into(),
            lower_is_better: true,
            beats_baseline: s.brier < s.brier_base,
        },
        Row {
            decision: "probability of success".into(),
            metric: "log loss".into(),
            learned: s.logloss / e,
            truth: Some(s.logloss_true / e),
            baseline: s.logloss_base / e,
            baseline_rule: "the success rate so far".into(),
            lower_is_better: true,
            beats_baseline: s.logloss < s.logloss_base,
        },
    ];
    Ok(Report {
        plugin: "cost",
        seed,
        stream: json!({
            "recommendations": N, "batches": N.div_ceil(BATCH), "learning_cycles": cycles,
            "scored_assessments": s.executed, "scored_savings": s.measured,
            "truth": {"savings_noise_sd": truth.noise, "no_signal": "region (success)", "success_rate": all.iter().filter(|c| c.success).count() as f64 / N as f64},
            "params_versions": metrics["params_versions"],
        }),
        rows,
    })
}
