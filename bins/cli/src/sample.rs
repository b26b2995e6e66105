//! `learnloop sample`: deterministic sample events for all four plugins.
//!
//! The events carry the structure each plugin learns from (cost savings that
//! are biased per type and region, agents with different approval rates,
//! users with model preferences per task, a model whose feature drifts), so
//! the quickstart and the benchmarks exercise real learning rather than noise.
//! Same seed, same bytes: re-running the quickstart is idempotent.

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use indicatif::ProgressBar;
use serde::Serialize;
use serde_json::{Value, json};

use crate::Env;

#[derive(clap::Args)]
pub struct Args {
    /// Predictions per plugin.
    #[arg(long, default_value_t = 250)]
    per_plugin: u64,
    /// Plugins to generate for (default: the enabled built-in plugins).
    #[arg(long, value_delimiter = ',')]
    plugins: Vec<String>,
    /// Fraction of predictions that get an outcome.
    #[arg(long, default_value_t = 0.8)]
    outcome_rate: f64,
    /// Only write this record type (the ids are the same either way).
    #[arg(long, value_enum)]
    only: Option<Only>,
    /// Random seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Workspace (default: `default_workspace` from the config).
    #[arg(long)]
    workspace: Option<String>,
    /// Write here instead of stdout, and say what was written (records per
    /// plugin, file, size; `--json` says it as JSON).
    #[arg(long, short)]
    output: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Only {
    Prediction,
    Outcome,
}

/// What to generate.
pub struct Spec {
    pub plugins: Vec<String>,
    pub per_plugin: u64,
    pub outcome_rate: f64,
    pub only: Option<Only>,
    pub seed: u64,
    pub workspace: String,
}

pub fn run(env: &Env, args: &Args) -> Result<()> {
    if !(0.0..=1.0).contains(&args.outcome_rate) {
        bail!("--outcome-rate must be between 0 and 1, got {}", args.outcome_rate);
    }
    let plugins = if args.plugins.is_empty() {
        env.config
            .plugins
            .enabled
            .iter()
            .filter(|p| learnloop_config::BUILTIN_PLUGINS.contains(&p.as_str()))
            .cloned()
            .collect()
    } else {
        args.plugins.clone()
    };
    for p in &plugins {
        if !learnloop_config::BUILTIN_PLUGINS.contains(&p.as_str()) {
            bail!("--plugins: no sample generator for {p:?}; choose from cost, trust, persona, drift");
        }
    }
    let spec = Spec {
        plugins,
        per_plugin: args.per_plugin,
        outcome_rate: args.outcome_rate,
        only: args.only,
        seed: args.seed,
        workspace: args.workspace.clone().unwrap_or_else(|| env.config.default_workspace.clone()),
    };
    let Some(path) = &args.output else {
        // The events are the output: nothing else goes to stdout.
        write(&spec, crate::output::Stdout, &ProgressBar::hidden())?;
        return Ok(());
    };
    let file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let passes = if spec.only.is_some() { 1 } else { 2 };
    let show = crate::progress::wanted(env.json);
    let bar = crate::progress::bar(
        show,
        "writing sample",
        crate::progress::Unit::Events,
        Some(spec.per_plugin * spec.plugins.len() as u64 * passes),
    );
    let written = write(&spec, file, &bar).with_context(|| format!("writing {}", path.display()))?;
    bar.finish_and_clear();
    let bytes = std::fs::metadata(path).map(|m| m.len()).with_context(|| format!("reading back {}", path.display()))?;
    if env.json {
        outln!("{}", json!({"file": path, "bytes": bytes, "records": written.records, "plugins": written.plugins}))?;
    } else {
        outln!(
            "wrote {} records to {} ({})",
            crate::progress::thousands(written.records),
            path.display(),
            crate::progress::bytes(bytes)
        )?;
        for (plugin, c) in &written.plugins {
            outln!(
                "  {plugin:8} {:>9} predictions  {:>9} outcomes",
                crate::progress::thousands(c.predictions),
                crate::progress::thousands(c.outcomes)
            )?;
        }
    }
    Ok(())
}

/// What [`write`] wrote.
#[derive(Debug, Default, Serialize)]
pub struct Written {
    /// Records (lines) in all.
    pub records: u64,
    /// Per plugin.
    pub plugins: BTreeMap<String, Counts>,
}

/// Records of one plugin, by type.
#[derive(Debug, Default, Serialize)]
pub struct Counts {
    /// Prediction records.
    pub predictions: u64,
    /// Outcome records.
    pub outcomes: u64,
}

/// The shared seeded generator, with the helpers sample data needs. `unit`
/// is the half-open [0, 1) variant the sample was first generated with; it is
/// kept so the same seed keeps giving byte-identical sample files.
struct Rng(learnloop_stats::SplitMix64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let u1 = self.unit().max(1e-300);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next_u64() % items.len() as u64) as usize]
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

/// 2026-01-01T00:00:00Z in microseconds.
const BASE_MICROS: i64 = 1_767_225_600_000_000;
const DAY_MICROS: i64 = 86_400_000_000;

fn time(micros: i64) -> String {
    learnloop_core::Timestamp::from_micros(micros).expect("in range").to_rfc3339()
}

fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

/// One generated pair: a prediction and maybe its outcome.
type Pair = (Value, Option<Value>);

fn cost(rng: &mut Rng, i: u64, t: i64, ws: &str) -> Pair {
    let kind = rng.pick(&["rightsizing", "spot_instances", "reserved_instances", "storage_tiering"]);
    let region = rng.pick(&["us-east-1", "eu-west-1", "ap-south-1"]);
    let resource = rng.pick(&["ec2", "rds", "ebs", "s3"]);
    let risk = rng.pick(&["low", "medium", "high"]);
    let predicted = round(50.0 + rng.unit() * 1950.0, 2);
    // Scoring factors the recommender ranked with: utilization_gap predicts
    // success, age_days does not. The plugin learns which one to weight.
    let utilization_gap = round(rng.unit(), 3);
    let age_days = round(rng.unit(), 3);
    let id = format!("cost-{i}");
    let p = json!({
        "type": "prediction", "id": id, "workspace": ws, "plugin": "cost",
        "subject": format!("{resource}-{:05}", i % 5000), "kind": kind, "value": predicted,
        "confidence": round(0.5 + rng.unit() * 0.45, 3),
        "features": {"utilization_gap": utilization_gap, "age_days": age_days},
        "payload": {"resource_type": resource, "region": region, "risk_level": risk},
        "event_time": time(t),
    });
    // Realised savings are biased per type and region: what the plugin learns to correct.
    let type_bias = match kind {
        "rightsizing" => 0.85,
        "spot_instances" => 0.65,
        "reserved_instances" => 1.05,
        _ => 0.75,
    };
    let region_bias = match region {
        "us-east-1" => 1.0,
        "eu-west-1" => 0.9,
        _ => 0.8,
    };
    let fail_p = match risk {
        "low" => 0.05,
        "medium" => 0.15,
        _ => 0.35,
    } * (1.5 - utilization_gap);
    let success = !rng.chance(fail_p);
    let actual =
        if success { round(predicted * type_bias * region_bias * (1.0 + 0.08 * rng.normal()), 2) } else { 0.0 };
    let issues: Vec<&str> = if success {
        vec![]
    } else {
        vec![rng.pick(&["timeout", "dependency_conflict", "capacity_unavailable", "rollback_required"])]
    };
    // The execution result and the savings measured over the following 30 days, in one outcome.
    let o = json!({
        "type": "outcome", "id": format!("{id}-exec"), "workspace": ws, "plugin": "cost", "prediction_id": id,
        "value": actual, "success": success,
        "payload": {"execution_id": format!("exec-{i}"), "execution_duration_seconds": round(30.0 + rng.unit() * 600.0, 1),
                    "issues_encountered": issues, "measurement_window_days": 30},
        "event_time": time(t + 33 * DAY_MICROS),
    });
    (p, Some(o))
}

fn trust(rng: &mut Rng, i: u64, t: i64, ws: &str) -> Pair {
    let agent = (rng.next_u64() % 8) as usize;
    let kind = rng.pick(&["scaling", "security", "cost", "performance"]);
    // Each agent has a true approval rate, better at some types than others.
    let base = [0.92, 0.85, 0.78, 0.7, 0.62, 0.55, 0.45, 0.35][agent];
    let p_approve: f64 = if kind == "security" && agent % 2 == 1 { base - 0.2 } else { base };
    let id = format!("trust-{i}");
    let p = json!({
        "type": "prediction", "id": id, "workspace": ws, "plugin": "trust",
        "subject": format!("agent-{agent}"), "kind": kind, "confidence": round(0.5 + rng.unit() * 0.5, 3),
        "label": format!("{kind} recommendation {i}"),
        "payload": {"agent_name": format!("Agent {agent}"), "workflow_id": format!("wf-{}", i / 4),
                    "correlation_id": format!("corr-{i}"), "reasoning": "sample", "evidence": []},
        "event_time": time(t),
    });
    let approved = rng.chance(p_approve.clamp(0.05, 0.98));
    let quality = round(if approved { 0.6 + rng.unit() * 0.4 } else { rng.unit() * 0.5 }, 3);
    let o = json!({
        "type": "outcome", "id": format!("{id}-eval"), "workspace": ws, "plugin": "trust", "prediction_id": id,
        "label": if approved { "approved" } else { "rejected" }, "success": approved, "quality": quality,
        "feedback": if approved { "useful" } else { "not applicable" },
        "event_time": time(t + DAY_MICROS / 24),
    });
    (p, Some(o))
}

/// Persona: every fourth event is an executed interaction (the hypotheses
/// offered and the one chosen; user-0 picks the direct h1, user-1 the
/// step-by-step h2, user-2 alternates); the rest are assistant responses for
/// a task type by a model, rated with thumbs or stars. Users like one model
/// per task type; code happens in the morning, writing in the evening.
fn persona(rng: &mut Rng, i: u64, t: i64, ws: &str) -> Pair {
    const INTERACTIONS: [(&str, [&str; 3]); 5] = [
        (
            "build api",
            [
                "Do you want to build a REST API with FastAPI?",
                "Do you want to design API endpoints?",
                "Do you want to set up authentication?",
            ],
        ),
        (
            "deploy api",
            [
                "Do you want to deploy your REST API?",
                "Do you want to containerize your REST API with Docker?",
                "Do you want to set up a CI/CD pipeline for your REST API?",
            ],
        ),
        (
            "add auth please",
            [
                "Do you want to add JWT auth to your REST API?",
                "Do you want to set up OAuth2?",
                "Do you want to implement role-based access control?",
            ],
        ),
        (
            "show me code for tests",
            [
                "Do you want to write unit tests for your REST API?",
                "Do you want to set up integration tests?",
                "Do you want to measure test coverage?",
            ],
        ),
        (
            "db schema",
            [
                "Do you want to design the database schema with PostgreSQL?",
                "Do you want to add database migrations?",
                "Do you want to optimize slow queries?",
            ],
        ),
    ];
    const CONF: [f64; 3] = [0.75, 0.68, 0.6];
    let user = rng.next_u64() % 3;
    let id = format!("persona-{i}");
    if i.is_multiple_of(4) {
        let (input, texts) = INTERACTIONS[((i / 4) % 5) as usize];
        let pick = match user {
            0 => 0,
            1 => 1,
            _ => ((i / 4) % 2) as usize * 2,
        };
        let hypotheses: Vec<Value> = texts
            .iter()
            .enumerate()
            .map(|(k, text)| json!({"id": format!("h{}", k + 1), "text": text, "confidence": CONF[k]}))
            .collect();
        let p = json!({
            "type": "prediction", "id": id, "workspace": ws, "plugin": "persona",
            "subject": format!("user-{user}"), "kind": "interaction", "label": format!("h{}", pick + 1),
            "confidence": CONF[pick],
            "payload": {"input_text": input, "hypotheses": hypotheses, "task_type": "code"},
            "event_time": time(t),
        });
        return (p, None);
    }
    let task = rng.pick(&["code", "writing", "analysis"]);
    let model = rng.pick(&["qwen2.5-coder", "llama3.2", "mistral"]);
    // Users like one model per task type.
    let liked = match task {
        "code" => "qwen2.5-coder",
        "writing" => "llama3.2",
        _ => "mistral",
    };
    // Code in the morning, writing in the evening, analysis in the afternoon.
    let hour = match task {
        "code" => 9,
        "writing" => 19,
        _ => 14,
    };
    let day = t - t.rem_euclid(DAY_MICROS);
    let t = day + hour * 3_600_000_000 + (i as i64 % 60) * 60_000_000;
    let p = json!({
        "type": "prediction", "id": id, "workspace": ws, "plugin": "persona",
        "subject": format!("user-{user}"), "kind": task, "label": model,
        "payload": {"response_length": 200 + (rng.next_u64() % 800)},
        "event_time": time(t),
    });
    let likes = rng.chance(if model == liked { 0.95 } else { 0.05 });
    let o = if i.is_multiple_of(3) {
        let stars = if likes { 4 + rng.next_u64() % 2 } else { 1 + rng.next_u64() % 2 };
        json!({
            "type": "outcome", "id": format!("{id}-fb"), "workspace": ws, "plugin": "persona", "prediction_id": id,
            "label": "rating", "value": stars, "feedback": if likes { "helpful" } else { "not what I wanted" },
            "event_time": time(t + 60_000_000),
        })
    } else {
        json!({
            "type": "outcome", "id": format!("{id}-fb"), "workspace": ws, "plugin": "persona", "prediction_id": id,
            "label": if likes { "thumbs_up" } else { "thumbs_down" },
            "event_time": time(t + 60_000_000),
        })
    };
    (p, Some(o))
}

fn drift(rng: &mut Rng, i: u64, t: i64, ws: &str, n: u64) -> Pair {
    let model = if i.is_multiple_of(2) { "price-model" } else { "demand-model" };
    // In the last quarter of the period, price-model's x1 shifts by +1.5 sd.
    let shifted = model == "price-model" && i > n * 3 / 4;
    let x1 = rng.normal() + if shifted { 1.5 } else { 0.0 };
    let x2 = rng.normal();
    let segment = rng.pick(&["retail", "wholesale", "online"]);
    let actual = 10.0 + 3.0 * x1 + 2.0 * x2 + if segment == "online" { 1.0 } else { 0.0 } + rng.normal();
    // The model learned x1 as it was: after the shift its errors grow.
    let mut predicted = 10.0 + 3.0 * x1.min(2.0) + 2.0 * x2 + 0.3 * rng.normal();
    // demand-model serves two versions half-and-half (an A/B test): v1 is noisier.
    let version = if model == "demand-model" && i % 4 == 1 {
        "v1"
    } else if model == "demand-model" {
        "v2"
    } else {
        "v1"
    };
    if model == "demand-model" && version == "v1" {
        predicted += 2.0 * rng.normal();
    }
    let id = format!("drift-{i}");
    let p = json!({
        "type": "prediction", "id": id, "workspace": ws, "plugin": "drift",
        "subject": model, "kind": "regression", "value": round(predicted, 4),
        "features": {"x1": round(x1, 4), "x2": round(x2, 4), "segment": segment},
        "payload": {"model_version": version},
        "event_time": time(t),
    });
    let o = json!({
        "type": "outcome", "id": format!("{id}-actual"), "workspace": ws, "plugin": "drift", "prediction_id": id,
        "value": round(actual, 4), "event_time": time(t + DAY_MICROS),
    });
    (p, Some(o))
}

/// Writes the sample as JSONL: all predictions, then all outcomes. `bar`
/// advances by one per prediction generated (in each pass).
pub fn write(spec: &Spec, out: impl Write, bar: &ProgressBar) -> Result<Written> {
    let mut out = BufWriter::with_capacity(1 << 16, out);
    let mut written = Written::default();
    for pass in [Only::Prediction, Only::Outcome] {
        if spec.only.is_some_and(|o| o != pass) {
            continue;
        }
        for (pi, plugin) in spec.plugins.iter().enumerate() {
            // Each pass replays the same random sequence, so ids and values agree.
            let mut rng = Rng(learnloop_stats::SplitMix64(spec.seed ^ ((pi as u64 + 1) << 32)));
            let counts = written.plugins.entry(plugin.clone()).or_default();
            let n = spec.per_plugin.max(1);
            let span = 30 * DAY_MICROS;
            for i in 0..spec.per_plugin {
                let t = BASE_MICROS + (span / n as i64) * i as i64;
                let ws = spec.workspace.as_str();
                let (p, o) = match plugin.as_str() {
                    "cost" => cost(&mut rng, i, t, ws),
                    "trust" => trust(&mut rng, i, t, ws),
                    "persona" => persona(&mut rng, i, t, ws),
                    _ => drift(&mut rng, i, t, ws, n),
                };
                let with_outcome = rng.chance(spec.outcome_rate);
                let record = match pass {
                    Only::Prediction => Some(p),
                    Only::Outcome => o.filter(|_| with_outcome),
                };
                if let Some(r) = record {
                    serde_json::to_writer(&mut out, &r)?;
                    out.write_all(b"\n")?;
                    written.records += 1;
                    match pass {
                        Only::Prediction => counts.predictions += 1,
                        Only::Outcome => counts.outcomes += 1,
                    }
                }
                if i % 4096 == 4095 {
                    bar.inc(4096);
                }
            }
            bar.inc(spec.per_plugin % 4096);
        }
    }
    out.flush()?;
    Ok(written)
}
