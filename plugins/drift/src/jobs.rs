//! The plugin's jobs and their typed reports:
//! * `daily` — the drift check of every model, its current-window
//!   performance and retraining decision, the health of every monitored
//!   service, and the alerts they call for;
//! * `weekly` — a learning report per model and the A/B test conclusions,
//!   as insights.

use std::collections::BTreeMap;

use learnloop_plugin_api::{AlertDraft, Context, InsightDraft, PluginError, Severity};
use serde::{Deserialize, Serialize};

use crate::abtest::{self, Arm, SampleRatio, Status};
use crate::analysis::{self, Distribution, Level, Overall, Performance, Segment};
use crate::check::{self, DriftBrief};
use crate::config::Config;
use crate::online::OnlineMetrics;
use crate::service::{self, Health};
use crate::window;

/// A feature test in the daily report: why it was or was not flagged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureTestBrief {
    /// Raw p-value (null when the test did not run).
    pub p_value: Option<f64>,
    /// Benjamini–Hochberg adjusted p-value.
    pub q_value: Option<f64>,
    /// Population stability index.
    pub psi: Option<f64>,
}

/// A model in the daily report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DailyModel {
    /// The drift check's severity.
    pub severity: Level,
    /// Feature drift severity.
    pub feature_drift: Level,
    /// Features with a significant test.
    pub affected_features: Vec<String>,
    /// Every feature's test in brief.
    pub feature_tests: BTreeMap<String, FeatureTestBrief>,
    /// Concept drift severity.
    pub concept_drift: Level,
    /// Concept drift is significant and the loss grew.
    pub concept_degraded: bool,
    /// Prediction drift severity.
    pub prediction_drift: Level,
    /// The current window's overall performance.
    pub current_window: Overall,
    /// Whether to retrain.
    pub should_retrain: bool,
    /// Why.
    pub reasons: Vec<String>,
    /// What kept the retraining test from running.
    pub retrain_blocked_by: Option<String>,
    /// What to do, in words.
    pub recommendation: String,
}

/// A service in the daily report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DailyService {
    /// The health score.
    pub health: Health,
    /// The error rate.
    pub error_rate: f64,
    /// Slow endpoints.
    pub slow_endpoints: usize,
    /// Whether a memory leak is suspected.
    pub leak_suspected: bool,
}

/// The daily report's totals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DailyTotals {
    /// Models checked.
    pub models: usize,
    /// Models with significant drift.
    pub drifted: u64,
    /// Models that should be retrained.
    pub should_retrain: u64,
    /// Retraining requests filed now (`auto_retrain = "request"`, outside
    /// each model's cooldown).
    pub retrain_requested: u64,
    /// Alerts raised.
    pub alerts_raised: u64,
    /// Predictions of every model, all time.
    pub predictions: u64,
    /// Outcomes of every model, all time.
    pub outcomes: u64,
    /// Monitored services.
    pub services: usize,
}

/// The `daily` job's report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DailyReport {
    /// What the job does.
    pub job: String,
    /// Models checked.
    pub subjects: usize,
    /// Totals.
    pub totals: DailyTotals,
    /// Per model.
    pub models: BTreeMap<String, DailyModel>,
    /// Per service.
    pub services: BTreeMap<String, DailyService>,
}

/// The data of the `daily_drift_check` insight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DailyInsight {
    /// Per model.
    pub models: BTreeMap<String, DailyModel>,
}

/// The data of a `feature_drift` alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureDriftAlert {
    /// Features with a significant test.
    pub affected_features: Vec<String>,
    /// Feature drift severity.
    pub severity: Level,
}

/// The data of a `service_error_rate` alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorRateAlert {
    /// The error rate.
    pub error_rate: f64,
    /// Samples in the period.
    pub samples: u64,
}

/// The retraining decision in brief.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetrainBrief {
    /// Whether to retrain.
    pub should_retrain: bool,
    /// Why.
    pub reasons: Vec<String>,
}

/// A model's learning report (the `weekly` job's, and its insight's data).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LearningReport {
    /// The current window's performance.
    pub performance: Performance,
    /// All-time metrics.
    pub online_all_time: OnlineMetrics,
    /// The current window's error distribution.
    pub error_distribution: Distribution,
    /// The current window's systematic errors.
    pub systematic_errors: Vec<Segment>,
    /// The drift check in brief.
    pub drift: DriftBrief,
    /// The retraining decision in brief.
    pub retrain: RetrainBrief,
}

/// An A/B test in the weekly report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeeklyAbTest {
    /// The model.
    pub model: String,
    /// Where the test is in its period.
    pub status: Status,
    /// The winning version, if any.
    pub winner: Option<String>,
    /// Why, in words.
    pub conclusion: String,
    /// Per arm.
    pub arms: Vec<Arm>,
    /// The sample-ratio-mismatch check.
    pub sample_ratio_mismatch: SampleRatio,
}

/// The data of an `ab_test_conclusion` insight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AbInsight {
    /// The test.
    pub test: String,
    /// The winning version, if any.
    pub winner: Option<String>,
    /// Matched outcomes over the arms.
    pub matched_outcomes: u64,
    /// Whether the arms' sizes mismatch the split (null when not checked).
    pub sample_ratio_mismatch: Option<bool>,
}

/// The weekly report's totals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeeklyTotals {
    /// Models reported.
    pub models: usize,
    /// Models that should be retrained.
    pub should_retrain: u64,
    /// A/B tests.
    pub ab_tests: usize,
    /// A/B tests with a winner.
    pub ab_winners: usize,
}

/// The `weekly` job's report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeeklyReport {
    /// What the job does.
    pub job: String,
    /// Models reported.
    pub subjects: usize,
    /// Totals.
    pub totals: WeeklyTotals,
    /// Per model.
    pub models: BTreeMap<String, LearningReport>,
    /// Per A/B test.
    pub ab_tests: BTreeMap<String, WeeklyAbTest>,
}

/// A value as compact JSON text, as the alert and insight texts quote it.
fn show<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn alert<D: Serialize>(
    ctx: &mut dyn Context,
    level: Level,
    kind: &str,
    subject: &str,
    message: String,
    data: &D,
) -> Result<(), PluginError> {
    let severity = match level {
        Level::Critical => Severity::Critical,
        Level::High => Severity::High,
        Level::Medium => Severity::Medium,
        Level::Low | Level::None => Severity::Low,
    };
    ctx.emit_alert(AlertDraft {
        severity,
        kind: kind.into(),
        subject: subject.into(),
        message,
        dedup_key: format!("{kind}/{subject}"),
        data: serde_json::to_value(data)?,
    })
}

/// A finite number, else 0 (what a `null` read as).
fn finite_or_zero(x: Option<f64>) -> f64 {
    x.filter(|x| x.is_finite()).unwrap_or(0.0)
}

/// The `daily` job.
pub fn daily(cfg: &Config, ctx: &mut dyn Context) -> Result<DailyReport, PluginError> {
    let mut models = BTreeMap::new();
    let (mut flagged, mut alerts, mut retrain, mut predictions, mut outcomes) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut requested = 0u64;
    for (name, st) in check::models(ctx)? {
        predictions += st.predictions;
        outcomes += st.outcomes;
        let c = check::run(cfg, ctx, &name, &st, cfg.reference_days, cfg.current_days, None, true)?;
        let (drift, decision) = (&c.drift, &c.decision);
        let fd = &drift.feature_drift;
        let fs = fd.severity;
        if fs != Level::None {
            alerts += 1;
            alert(
                ctx,
                fs,
                "feature_drift",
                &name,
                format!(
                    "Feature drift ({fs}) in model {name} on {}. {}",
                    show(&fd.affected_features),
                    drift.recommendation
                ),
                &FeatureDriftAlert { affected_features: fd.affected_features.clone(), severity: fs },
            )?;
        }
        let cd = &drift.concept_drift;
        let cs = cd.severity;
        if cd.degraded {
            alerts += 1;
            alert(
                ctx,
                cs,
                "concept_drift",
                &name,
                format!(
                    "Concept drift ({cs}) in model {name}: absolute error changed by {:.1}% between the reference and current windows.",
                    finite_or_zero(cd.test.performance_change_pct)
                ),
                &cd.test,
            )?;
        }
        let pd = &drift.prediction_drift;
        let ps = pd.severity;
        if ps != Level::None {
            alerts += 1;
            alert(
                ctx,
                ps,
                "prediction_drift",
                &name,
                format!("Prediction drift ({ps}) in model {name}: mean shift {}.", show(&pd.test.mean_shift)),
                &pd.test,
            )?;
        }
        if decision.should_retrain {
            retrain += 1;
            alerts += 1;
            alert(
                ctx,
                Level::High,
                "retrain_recommended",
                &name,
                format!("Retrain model {name}: {}.", decision.reasons.join("; ")),
                decision,
            )?;
            if cfg.auto_retrain == crate::config::AutoRetrain::Request
                && crate::retrain::cooling_down(ctx, &name, cfg.retrain_cooldown_days)?.is_none()
            {
                let evidence = crate::routes::Evidence::of(c.clone(), &st);
                let reason = "automatic: the daily drift check decided the model should be retrained".to_string();
                let (created, _) = crate::retrain::trigger(ctx, &name, Some(reason), true, &evidence)?;
                requested += u64::from(created);
            }
        }
        if drift.drifted {
            flagged += 1;
        }
        // Each feature's test in brief (raw and BH-adjusted p, PSI): why it was or was not flagged.
        let feature_tests = fd
            .tests
            .iter()
            .map(|t| (t.name.clone(), FeatureTestBrief { p_value: t.p_value, q_value: t.q_value, psi: t.psi }))
            .collect();
        models.insert(
            name,
            DailyModel {
                severity: drift.severity,
                feature_drift: fs,
                affected_features: fd.affected_features.clone(),
                feature_tests,
                concept_drift: cs,
                concept_degraded: cd.degraded,
                prediction_drift: ps,
                current_window: c.performance.overall.clone(),
                should_retrain: decision.should_retrain,
                reasons: decision.reasons.clone(),
                retrain_blocked_by: decision.blocked_by.clone(),
                recommendation: drift.recommendation.clone(),
            },
        );
    }
    let mut services = BTreeMap::new();
    for (name, st) in service::list(ctx)? {
        let until = st.newest_us.saturating_add(1);
        let h = service::health(cfg, ctx, &name, until - (cfg.service_hours * 3.6e9).round() as i64, until)?;
        for s in &h.slow_endpoints {
            alerts += 1;
            alert(ctx, Level::Medium, "slow_endpoint", &format!("{name} {}", s.endpoint), s.suggestion.clone(), s)?;
        }
        if h.memory.leak_suspected() {
            alerts += 1;
            alert(
                ctx,
                Level::High,
                "memory_leak",
                &name,
                format!(
                    "Service {name}: memory grew by {:.0} MB over {:.1} h (threshold {} MB): possible leak.",
                    finite_or_zero(Some(h.memory.fitted_growth_mb())),
                    finite_or_zero(Some(h.memory.span_hours())),
                    cfg.memory_leak_mb
                ),
                &h.memory,
            )?;
        }
        if h.error_rate > cfg.max_error_rate {
            alerts += 1;
            alert(
                ctx,
                Level::High,
                "service_error_rate",
                &name,
                format!(
                    "Service {name}: error rate {:.1}% is above {:.1}%.",
                    100.0 * h.error_rate,
                    100.0 * cfg.max_error_rate
                ),
                &ErrorRateAlert { error_rate: h.error_rate, samples: h.samples },
            )?;
        }
        services.insert(
            name,
            DailyService {
                leak_suspected: h.memory.leak_suspected(),
                slow_endpoints: h.slow_endpoints.len(),
                error_rate: h.error_rate,
                health: h.health,
            },
        );
    }
    let n = models.len();
    let insight = DailyInsight { models };
    ctx.emit_insight(InsightDraft {
        kind: "daily_drift_check".into(),
        title: format!("drift: {flagged} of {n} models drifted, {retrain} should be retrained"),
        detail: String::new(),
        confidence: 1.0,
        impact: 0.0,
        data: serde_json::to_value(&insight)?,
    })?;
    // A/B tests that found their winner since the last look are announced
    // (`experiment.concluded`, once per test and winner).
    for t in abtest::list(ctx)? {
        let r = abtest::results(cfg, ctx, &t)?;
        abtest::announce(ctx, &r)?;
    }
    Ok(DailyReport {
        job: "daily: drift check (reference vs current window), current-window performance, alerts".into(),
        subjects: n,
        totals: DailyTotals {
            models: n,
            drifted: flagged,
            should_retrain: retrain,
            retrain_requested: requested,
            alerts_raised: alerts,
            predictions,
            outcomes,
            services: services.len(),
        },
        models: insight.models,
        services,
    })
}

/// The `weekly` job.
pub fn weekly(cfg: &Config, ctx: &mut dyn Context) -> Result<WeeklyReport, PluginError> {
    let mut models = BTreeMap::new();
    let mut retrain = 0u64;
    for (name, st) in check::models(ctx)? {
        let c = check::run(cfg, ctx, &name, &st, cfg.reference_days, cfg.current_days, None, true)?;
        let ranges = check::windows(&st, cfg.reference_days, cfg.current_days);
        let w = window::load(ctx, &name, &ranges[1..], None)?.pop().unwrap_or_default();
        let errs = analysis::errors(cfg, &w);
        retrain += u64::from(c.decision.should_retrain);
        let mae = c.performance.overall.metrics.computed().map(|v| v.mae);
        let wape = c.performance.overall.metrics.computed().map(|v| v.wape);
        let mape = c.performance.overall.metrics.computed().map(|v| v.mape);
        let title = format!(
            "model {name}: MAE {} WAPE {} MAPE {} over the last {} days, drift {}, retrain {}",
            show(&mae.flatten()),
            show(&wape.flatten()),
            show(&mape.flatten()),
            cfg.current_days,
            c.drift.severity,
            c.decision.should_retrain
        );
        let report = LearningReport {
            performance: c.performance,
            online_all_time: st.totals.metrics(),
            error_distribution: errs.distribution,
            systematic_errors: errs.systematic_errors.systematic,
            drift: DriftBrief::of(&c.drift),
            retrain: RetrainBrief { should_retrain: c.decision.should_retrain, reasons: c.decision.reasons },
        };
        ctx.emit_insight(InsightDraft {
            kind: "learning_report".into(),
            title,
            detail: c.drift.recommendation.clone(),
            confidence: 1.0,
            impact: 0.0,
            data: serde_json::to_value(&report)?,
        })?;
        models.insert(name, report);
    }
    let mut ab = BTreeMap::new();
    for t in abtest::list(ctx)? {
        let r = abtest::results(cfg, ctx, &t)?;
        abtest::announce(ctx, &r)?;
        let n: u64 = r.arms.iter().map(|a| a.metrics.n as u64).sum();
        let verdict = r.winner.as_ref().map_or("no winner yet".into(), |w| format!("version {w} wins"));
        ctx.emit_insight(InsightDraft {
            kind: "ab_test_conclusion".into(),
            title: format!("A/B test {} of model {}: {verdict}", t.id, t.model),
            detail: r.conclusion.clone(),
            confidence: t.confidence,
            impact: 0.0,
            data: serde_json::to_value(AbInsight {
                test: t.id.clone(),
                winner: r.winner.clone(),
                matched_outcomes: n,
                sample_ratio_mismatch: r.sample_ratio_mismatch.mismatch,
            })?,
        })?;
        ab.insert(
            t.id.clone(),
            WeeklyAbTest {
                model: t.model.clone(),
                status: r.test.status,
                winner: r.winner,
                conclusion: r.conclusion,
                arms: r.arms,
                sample_ratio_mismatch: r.sample_ratio_mismatch,
            },
        );
    }
    Ok(WeeklyReport {
        job: "weekly: learning report (performance, error analysis, drift, systematic errors, retraining, A/B conclusions)"
            .into(),
        subjects: models.len(),
        totals: WeeklyTotals {
            models: models.len(),
            should_retrain: retrain,
            ab_tests: ab.len(),
            ab_winners: ab.values().filter(|v| v.winner.is_some()).count(),
        },
        models,
        ab_tests: ab,
    })
}
