//! The drift scenario of `learnloop simulate`: six monitored models fed
//! causally, one day at a time (each day's predictions with their outcomes,
//! then the `daily` job), with known truth:
//!
//! * `stable` — a regression model whose world never changes (the control);
//! * `near_zero` — the same, but about one actual in a thousand is near zero
//!   (0.001–0.004) while its prediction is a little above it: harmless
//!   absolute errors, percentage errors in the hundreds of thousands of %;
//! * `shifted` — one numeric feature (drawn per seed) moves by 1.5–2.5
//!   standard deviations on the shift day, and on odd seeds the categorical
//!   `channel` changes its mix too (email from 20 % to 60 %), large enough
//!   for one day of it to stand out in the default 7-day current window; its predictions follow the inputs, so its
//!   error does not grow (retraining is not needed);
//! * `degrading` — its noise grows 1.6–2.5× on the change day (retraining is);
//! * `classifier` — a label model whose accuracy (0.75–0.9) never changes;
//! * `classifier_degrading` — a label model whose accuracy drops by 0.15–0.25
//!   on the change day.
//!
//! Each seed draws its own volumes, noise, shift sizes and days. Every
//! decision of the daily job is scored against this truth and against a
//! naive rule: PSI ≥ 0.25 for feature detection, unadjusted p < 0.05 for
//! false alarms, and learnloop's old retraining rule (current-window MAPE
//! over 30 %, feature drift high or worse, or degrading concept drift medium
//! or worse, with 100 current outcomes and no reference needed) for
//! retraining.

use anyhow::{Context, Result, bail};
use learnloop_core::{Record, Timestamp, parse_json_record};
use learnloop_plugin_host::{IngestStatus, PluginHost};
use learnloop_stats::SplitMix64 as Rng;
use serde_json::{Value, json};

use super::{Report, Row, TempDir};

const DAY: i64 = 86_400_000_000;
const T0: i64 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z
const WS: &str = "simulation";
/// Days fed (the daily job runs after each).
const DAYS: usize = 32;
/// Numeric features of every model.
const FEATURES: [&str; 4] = ["x1", "x2", "x3", "x4"];
const CHANNELS: [&str; 3] = ["search", "social", "email"];
const LABELS: [&str; 3] = ["buy", "browse", "leave"];
/// The significance level of the drift plugin's default config.
const ALPHA: f64 = 0.05;
/// The naive retraining rule, as the report names it.
const OLD_RULE: &str = "old rule: MAPE > 30%, feature drift >= high or concept >= medium";
/// Days after a change within which retraining must be recommended.
const RETRAIN_WITHIN_DAYS: usize = 3;

/// The generating process of one seed.
#[derive(Debug)]
struct Truth {
    per_day: usize,
    noise: f64,
    near_zero_rate: f64,
    shift_day: usize,
    shift_feature: usize,
    shift_sd: f64,
    channel_shift: bool,
    change_day: usize,
    noise_growth: f64,
    accuracy: f64,
    accuracy_drop: f64,
}

impl Truth {
    fn draw(seed: u64, rng: &mut Rng) -> Truth {
        let mut u = |lo: f64, hi: f64| lo + (hi - lo) * rng.uniform();
        Truth {
            per_day: u(150.0, 220.0) as usize,
            noise: u(1.2, 2.0),
            near_zero_rate: u(0.6, 1.5) / 1000.0,
            shift_day: u(14.0, 24.0) as usize,
            shift_feature: u(0.0, 3.999) as usize,
            shift_sd: u(1.5, 2.5),
            channel_shift: seed % 2 == 1,
            change_day: u(14.0, 24.0) as usize,
            noise_growth: u(1.6, 2.5),
            accuracy: u(0.75, 0.9),
            accuracy_drop: u(0.15, 0.25),
        }
    }
}

/// The models, in feeding order.
const MODELS: [&str; 6] = ["stable", "near_zero", "shifted", "degrading", "classifier", "classifier_degrading"];

fn is_classifier(model: &str) -> bool {
    model.starts_with("classifier")
}

fn time(us: i64) -> String {
    Timestamp::from_micros(us).map(|t| t.to_rfc3339()).unwrap_or_default()
}

fn record(v: Value) -> Result<Record> {
    parse_json_record(&v.to_string(), &Default::default())
        .map_err(|e| anyhow::anyhow!("generated record is invalid: {e}"))
}

/// Day `day`'s predictions of `model` and their outcomes (one hour later).
fn day_records(t: &Truth, rng: &mut Rng, model: &str, day: usize, out: &mut Vec<Record>) -> Result<()> {
    let shifted = model == "shifted" && day >= t.shift_day;
    let changed = day >= t.change_day;
    for i in 0..t.per_day {
        let at = T0 + day as i64 * DAY + (i as i64) * DAY / t.per_day as i64;
        let mut x = [0.0; 4];
        for (k, v) in x.iter_mut().enumerate() {
            *v = rng.normal() + if shifted && k == t.shift_feature { t.shift_sd } else { 0.0 };
        }
        let mix = if shifted && t.channel_shift { [0.1, 0.3, 0.6] } else { [0.5, 0.3, 0.2] };
        let c = rng.uniform();
        let channel = if c < mix[0] {
            0
        } else if c < mix[0] + mix[1] {
            1
        } else {
            2
        };
        let features = json!({"x1": x[0], "x2": x[1], "x3": x[2], "x4": x[3], "channel": CHANNELS[channel]});
        let id = format!("{model}-{day:03}-{i:04}");
        let (prediction, outcome) = if is_classifier(model) {
            let predicted = LABELS[(rng.next_u64() % 3) as usize];
            let accuracy = t.accuracy - if model == "classifier_degrading" && changed { t.accuracy_drop } else { 0.0 };
            let actual = if rng.uniform() < accuracy {
                predicted
            } else {
                LABELS
                    [(LABELS.iter().position(|l| *l == predicted).unwrap_or(0) + 1 + (rng.next_u64() % 2) as usize) % 3]
            };
            (json!({"label": predicted}), json!({"label": actual}))
        } else {
            let mut pred = 10.0 + 0.6 * x[0] + 0.4 * x[1] - 0.5 * x[2] + 0.3 * x[3] + [0.0, 0.5, -0.5][channel];
            let sd = t.noise * if model == "degrading" && changed { t.noise_growth } else { 1.0 };
            let mut actual = pred + sd * rng.normal();
            if model == "near_zero" && rng.uniform() < t.near_zero_rate {
                // A near-zero actual, predicted a little above it: a normal-
                // sized absolute error, an enormous percentage error.
                actual = 0.001 + 0.003 * rng.uniform();
                pred = actual + 0.4 + 0.6 * rng.uniform();
            }
            (json!({"value": pred}), json!({"value": actual}))
        };
        let mut p = json!({"type": "prediction", "id": id, "workspace": WS, "plugin": "drift", "subject": model,
            "kind": if is_classifier(model) { "classification" } else { "regression" }, "features": features, "event_time": time(at)});
        let mut o = json!({"type": "outcome", "id": format!("{id}-o"), "workspace": WS, "plugin": "drift", "prediction_id": id,
            "event_time": time(at + DAY / 24)});
        for (k, v) in prediction.as_object().into_iter().flatten() {
            p[k] = v.clone();
        }
        for (k, v) in outcome.as_object().into_iter().flatten() {
            o[k] = v.clone();
        }
        out.push(record(p)?);
        out.push(record(o)?);
    }
    Ok(())
}

/// Counts of one kind of decision.
#[derive(Default, Clone, Copy)]
struct Rate {
    hits: usize,
    of: usize,
}

impl Rate {
    fn add(&mut self, hit: bool) {
        self.hits += usize::from(hit);
        self.of += 1;
    }
    fn rate(self) -> f64 {
        if self.of == 0 { 0.0 } else { self.hits as f64 / self.of as f64 }
    }
}

/// What the scenario measured (also read by the drift plugin's tests).
#[derive(Default, Clone, Copy)]
pub struct Tally {
    /// Shifted features flagged at the first daily run with one day of shifted data.
    found_in_a_day: Rate,
    /// The same by the PSI ≥ 0.25 rule.
    found_in_a_day_psi: Rate,
    /// Unshifted feature tests flagged (BH q ≤ α).
    false_feature: Rate,
    /// Unshifted feature tests with an unadjusted p < α.
    false_feature_raw: Rate,
    /// Daily checks of a model with no shifted input that flagged any feature.
    false_check: Rate,
    /// The same with unadjusted p-values.
    false_check_raw: Rate,
    /// Daily retraining recommendations of the stable controls (stable, near_zero, classifier).
    stable_retrain: Rate,
    /// The old rule ([`old_rule`]) on the same runs.
    stable_retrain_old: Rate,
    /// Recommendations for the `shifted` model (its error never grew).
    shifted_retrain: Rate,
    /// The old rule on it.
    shifted_retrain_old: Rate,
    /// Degrading models recommended within `RETRAIN_WITHIN_DAYS` of the change.
    degraded_found: Rate,
    /// The old rule on them.
    degraded_found_old: Rate,
}

/// The retraining rule learnloop had before its statistical test, on the
/// daily job's report of one model: at least 100 matched numeric outcomes
/// in the current window (none needed in the reference) and the current
/// window's MAPE over 30 %, feature drift high or worse, or degrading
/// concept drift medium or worse. (Classifiers had no concept test then,
/// and no numeric outcomes, so it never recommended them.)
fn old_rule(m: &Value) -> bool {
    let rank = |k: &str| ["none", "low", "medium", "high", "critical"].iter().position(|s| m[k] == *s).unwrap_or(0);
    let numeric = m["current_window"]["n"].as_u64().unwrap_or(0);
    numeric >= 100
        && (m["current_window"]["mape"].as_f64().is_some_and(|x| x > 30.0)
            || rank("feature_drift") >= 3
            || (m["concept_degraded"] == true && rank("concept_drift") >= 2))
}

/// Runs the drift scenario with `seed`.
pub fn run(seed: u64, config: &learnloop_config::Config) -> Result<Report> {
    let (report, _) = run_tally(seed, config)?;
    Ok(report)
}

/// Runs the scenario and returns its report and its counts.
pub fn run_tally(seed: u64, config: &learnloop_config::Config) -> Result<(Report, Tally)> {
    let mut rng = Rng::new(seed ^ 0xD81F_7000);
    let truth = Truth::draw(seed, &mut rng);
    let dir = TempDir::new("drift")?;
    let host: PluginHost = super::host(dir.path(), "drift", config)?;
    let mut s = Tally::default();
    let mut degraded_seen = [false; 2];
    let mut degraded_seen_old = [false; 2];
    for day in 0..DAYS {
        let mut recs = Vec::new();
        for model in MODELS {
            day_records(&truth, &mut rng, model, day, &mut recs)?;
        }
        let now = Timestamp::from_micros(T0 + (day as i64 + 1) * DAY).context("simulation clock out of range")?;
        let statuses = host.ingest(recs, now)?;
        if let Some(bad) = statuses.iter().find(|s| !matches!(s, IngestStatus::Inserted)) {
            bail!("the host did not take a generated record: {bad:?}");
        }
        let run = host.run_job("drift", "daily", "simulate", None, 1)?;
        let Some(report) = run.report else { bail!("the daily job failed: {:?}", run.error) };
        let models = &report["workspaces"][WS]["models"];
        for model in MODELS {
            let m = &models[model];
            if m.is_null() {
                bail!("the daily job reported nothing for model {model}: {report}");
            }
            let recommended = m["should_retrain"] == true;
            let shifted_now = model == "shifted" && day >= truth.shift_day;
            // Features: which are truly shifted in this check's current window.
            let mut any = false;
            let mut any_raw = false;
            for (name, t) in m["feature_tests"].as_object().into_iter().flatten() {
                let (Some(p), Some(q)) = (t["p_value"].as_f64(), t["q_value"].as_f64()) else { continue };
                let truly = shifted_now
                    && ((name == "channel" && truth.channel_shift)
                        || FEATURES.get(truth.shift_feature).is_some_and(|f| f == name));
                if truly {
                    if day == truth.shift_day {
                        s.found_in_a_day.add(q <= ALPHA);
                        s.found_in_a_day_psi.add(t["psi"].as_f64().is_some_and(|x| x >= 0.25));
                    }
                } else {
                    s.false_feature.add(q <= ALPHA);
                    s.false_feature_raw.add(p < ALPHA);
                    any |= q <= ALPHA;
                    any_raw |= p < ALPHA;
                }
            }
            if !shifted_now
                && m["feature_tests"].as_object().is_some_and(|o| o.values().any(|t| t["p_value"].is_number()))
            {
                s.false_check.add(any);
                s.false_check_raw.add(any_raw);
            }
            match model {
                "stable" | "near_zero" | "classifier" => {
                    s.stable_retrain.add(recommended);
                    s.stable_retrain_old.add(old_rule(m));
                }
                "shifted" => {
                    s.shifted_retrain.add(recommended);
                    s.shifted_retrain_old.add(old_rule(m));
                }
                _ => {
                    let k = usize::from(model == "classifier_degrading");
                    if (truth.change_day..truth.change_day + RETRAIN_WITHIN_DAYS).contains(&day) {
                        degraded_seen[k] |= recommended;
                        degraded_seen_old[k] |= old_rule(m);
                    }
                }
            }
        }
    }
    for k in 0..2 {
        s.degraded_found.add(degraded_seen[k]);
        s.degraded_found_old.add(degraded_seen_old[k]);
    }
    let rows = vec![
        Row {
            decision: "shifted features found in 1 day".into(),
            metric: "recall".into(),
            learned: s.found_in_a_day.rate(),
            truth: Some(1.0),
            baseline: s.found_in_a_day_psi.rate(),
            baseline_rule: "PSI >= 0.25 on the same windows".into(),
            lower_is_better: false,
            beats_baseline: s.found_in_a_day.rate() > s.found_in_a_day_psi.rate() || s.found_in_a_day.rate() == 1.0,
        },
        Row {
            decision: "false feature alarms".into(),
            metric: "rate per feature test".into(),
            learned: s.false_feature.rate(),
            truth: Some(0.0),
            baseline: s.false_feature_raw.rate(),
            baseline_rule: "unadjusted p < 0.05 per feature".into(),
            lower_is_better: true,
            beats_baseline: s.false_feature.rate() <= s.false_feature_raw.rate(),
        },
        Row {
            decision: "false feature alarms".into(),
            metric: "rate per model check".into(),
            learned: s.false_check.rate(),
            truth: Some(0.0),
            baseline: s.false_check_raw.rate(),
            baseline_rule: "unadjusted p < 0.05 per feature".into(),
            lower_is_better: true,
            beats_baseline: s.false_check.rate() <= s.false_check_raw.rate(),
        },
        Row {
            decision: "retrain stable controls".into(),
            metric: "false recommendations".into(),
            learned: s.stable_retrain.rate(),
            truth: Some(0.0),
            baseline: s.stable_retrain_old.rate(),
            baseline_rule: OLD_RULE.into(),
            lower_is_better: true,
            beats_baseline: s.stable_retrain.rate() <= s.stable_retrain_old.rate(),
        },
        Row {
            decision: "retrain: inputs moved, error same".into(),
            metric: "false recommendations".into(),
            learned: s.shifted_retrain.rate(),
            truth: Some(0.0),
            baseline: s.shifted_retrain_old.rate(),
            baseline_rule: OLD_RULE.into(),
            lower_is_better: true,
            beats_baseline: s.shifted_retrain.rate() <= s.shifted_retrain_old.rate(),
        },
        Row {
            decision: format!("retrain degraded in {RETRAIN_WITHIN_DAYS} days"),
            metric: "recall".into(),
            learned: s.degraded_found.rate(),
            truth: Some(1.0),
            baseline: s.degraded_found_old.rate(),
            baseline_rule: OLD_RULE.into(),
            lower_is_better: false,
            beats_baseline: s.degraded_found.rate() >= s.degraded_found_old.rate(),
        },
    ];
    let report = Report {
        plugin: "drift",
        seed,
        stream: json!({
            "models": MODELS, "days": DAYS, "predictions_per_model_per_day": truth.per_day, "daily_runs": DAYS,
            "truth": {
                "noise_sd": truth.noise, "near_zero_rate": truth.near_zero_rate,
                "shift": {"model": "shifted", "day": truth.shift_day, "feature": FEATURES[truth.shift_feature], "sd": truth.shift_sd, "channel": truth.channel_shift},
                "change": {"day": truth.change_day, "degrading_noise_growth": truth.noise_growth,
                           "classifier_accuracy": truth.accuracy, "classifier_accuracy_drop": truth.accuracy_drop},
            },
            "checks": {"feature_tests_unshifted": s.false_feature.of, "stable_control_runs": s.stable_retrain.of},
        }),
        rows,
    };
    Ok((report, s))
}

// Read by the multi-seed test below.
#[allow(dead_code)]
impl Tally {
    /// Share of shifted features flagged at the first run with one day of shifted data.
    pub fn found_in_a_day(&self) -> f64 {
        self.found_in_a_day.rate()
    }
    /// Share of unshifted feature tests flagged.
    pub fn false_feature_rate(&self) -> f64 {
        self.false_feature.rate()
    }
    /// Share of daily checks of unshifted models with any feature flagged.
    pub fn false_check_rate(&self) -> f64 {
        self.false_check.rate()
    }
    /// Retraining recommendations of the stable controls, and the old rule's.
    pub fn stable_retrain(&self) -> (usize, usize, usize) {
        (self.stable_retrain.hits, self.stable_retrain_old.hits, self.stable_retrain.of)
    }
    /// Recommendations for the model whose inputs moved but error did not, and the old rule's.
    pub fn shifted_retrain(&self) -> (usize, usize, usize) {
        (self.shifted_retrain.hits, self.shifted_retrain_old.hits, self.shifted_retrain.of)
    }
    /// Degrading models recommended within the window, of how many.
    pub fn degraded_found(&self) -> (usize, usize) {
        (self.degraded_found.hits, self.degraded_found.of)
    }
}

#[cfg(test)]
mod tests {
    /// The drift scenario on several seeds, each drawing its
    /// own volumes, noise, shift sizes, shifted feature and days. On every seed:
    /// * the shifted features are flagged at the first daily run that holds
    ///   one day of shifted data;
    /// * no stable control (a plain regression model, one with near-zero
    ///   actuals, a classifier) is ever recommended for retraining, nor the
    ///   model whose inputs moved but whose error did not grow;
    /// * both degrading models (regression and classifier) are recommended
    ///   within three days of the change;
    /// * false feature alarms stay at or below α = 0.05 per feature test.
    ///
    /// The old rule (current-window MAPE > 30 %, or feature drift high or
    /// worse, with no reference needed) recommended the near-zero control and
    /// the shifted model on these streams: the test asserts it still would, so
    /// the scenario keeps exercising the failures it was written for.
    #[test]
    fn drift_scenario_holds_on_every_seed() {
        let seeds = [3u64, 7, 12, 20];
        let (mut old_stable, mut old_shifted) = (0, 0);
        for seed in seeds {
            let (report, t) = super::run_tally(seed, &learnloop_config::Config::default()).unwrap();
            let (new, old, runs) = t.stable_retrain();
            let (new_s, old_s, runs_s) = t.shifted_retrain();
            println!(
                "seed {seed}: found in a day {:.2}; false feature alarms {:.4} per test, {:.4} per check; stable controls retrained {new} (old rule {old}) of {runs} runs; shifted {new_s} (old rule {old_s}) of {runs_s}; degraded found {:?}; stream {}",
                t.found_in_a_day(),
                t.false_feature_rate(),
                t.false_check_rate(),
                t.degraded_found(),
                report.stream
            );
            for r in &report.rows {
                println!(
                    "  {:<36} {:<24} learned {:.4} baseline {:.4} ({}) beats {}",
                    r.decision, r.metric, r.learned, r.baseline, r.baseline_rule, r.beats_baseline
                );
            }
            assert_eq!(t.found_in_a_day(), 1.0, "seed {seed}: a shifted feature was not flagged within one day");
            assert_eq!(new, 0, "seed {seed}: a stable control was recommended for retraining");
            assert_eq!(new_s, 0, "seed {seed}: the model whose error did not grow was recommended for retraining");
            assert_eq!(
                t.degraded_found(),
                (2, 2),
                "seed {seed}: a degrading model was not recommended within three days"
            );
            assert!(
                t.false_feature_rate() <= 0.05,
                "seed {seed}: false feature alarm rate {} > 0.05",
                t.false_feature_rate()
            );
            assert!(report.rows.iter().all(|r| r.beats_baseline), "seed {seed}: {:#?}", report.rows);
            old_stable += old;
            old_shifted += old_s;
        }
        assert!(
            old_stable > 0,
            "the old MAPE rule no longer fires on these streams: the scenario lost its near-zero actuals"
        );
        assert!(
            old_shifted > 0,
            "the old rule no longer recommends the shifted model: the scenario lost its feature shift"
        );
    }
}
