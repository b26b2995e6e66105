//! The drift check of one model as the routes and the jobs run it: the
//! model's windows (relative to its newest prediction), its pinned
//! reference period, and the drift report, current-window performance and
//! retraining decision computed from them.
//!
//! State document `reference/<model>` ([`PinnedReference`]): the period
//! that replaces the sliding reference window in the model's drift checks.

use learnloop_plugin_api::JsonSchema;
use learnloop_plugin_api::{Context, PluginError, Timestamp};
use serde::{Deserialize, Serialize};

use crate::analysis::{self, DriftReport, Level, Performance, RetrainDecision};
use crate::config::Config;
use crate::online::{self, ModelState};
use crate::window;

const DAY_US: f64 = 86_400_000_000.0;

/// A number of days in µs.
pub fn days_us(d: f64) -> i64 {
    (d * DAY_US).round() as i64
}

/// A pinned reference period of a model (state `reference/<model>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PinnedReference {
    /// The model.
    #[serde(default)]
    pub model: String,
    /// Start (inclusive), µs.
    pub from_us: i64,
    /// End (exclusive), µs.
    pub until_us: i64,
    /// Start (RFC 3339; null out of range).
    #[serde(default)]
    pub from: Option<Timestamp>,
    /// End (RFC 3339; null out of range).
    #[serde(default)]
    pub until: Option<Timestamp>,
    /// Predictions in the period when it was pinned.
    #[serde(default)]
    pub predictions: usize,
    /// When it was pinned (RFC 3339, the host's clock).
    #[serde(default)]
    pub pinned_at: String,
}

/// State key of a model's pinned reference period.
pub fn reference_key(model: &str) -> String {
    format!("reference/{model}")
}

/// The model's pinned reference period, if any.
pub fn pinned(ctx: &mut dyn Context, model: &str) -> Result<Option<PinnedReference>, PluginError> {
    match ctx.get_state(&reference_key(model))? {
        Some(s) => Ok(Some(serde_json::from_value(s.value)?)),
        None => Ok(None),
    }
}

/// A model's online state, or `NotFound` naming it.
pub fn model(ctx: &mut dyn Context, model: &str) -> Result<ModelState, PluginError> {
    online::load_model(ctx, model)?.ok_or_else(|| PluginError::not_found(format!("no predictions for model {model:?}")))
}

/// Every model with its online state, in name order.
pub fn models(ctx: &mut dyn Context) -> Result<Vec<(String, ModelState)>, PluginError> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = ctx.scan_state("model/", after.as_deref(), 1000)?;
        let Some((last, _)) = page.last() else { break };
        after = Some(last.clone());
        for (k, s) in page {
            out.push((k.trim_start_matches("model/").to_string(), serde_json::from_value(s.value)?));
        }
    }
    Ok(out)
}

/// Reference and current windows ending at the model's newest prediction.
pub fn windows(st: &ModelState, reference_days: f64, current_days: f64) -> [(i64, i64); 2] {
    let end = st.newest_us.saturating_add(1);
    let cur_from = end - days_us(current_days);
    [(cur_from - days_us(reference_days), cur_from), (cur_from, end)]
}

/// What a drift check finds about a model.
#[derive(Clone)]
pub struct Check {
    /// Reference vs current window.
    pub drift: DriftReport,
    /// The current window's performance.
    pub performance: Performance,
    /// The retraining decision.
    pub decision: RetrainDecision,
}

/// The drift check: the pinned reference set when the model has one
/// (and `use_pinned`), else the sliding reference window.
#[allow(clippy::too_many_arguments)]
pub fn run(
    cfg: &Config,
    ctx: &mut dyn Context,
    model: &str,
    st: &ModelState,
    reference_days: f64,
    current_days: f64,
    version: Option<&str>,
    use_pinned: bool,
) -> Result<Check, PluginError> {
    let ranges = windows(st, reference_days, current_days);
    let pinned = if use_pinned { pinned(ctx, model)? } else { None };
    let (r, c) = match &pinned {
        None => {
            let mut w = window::load(ctx, model, &ranges, version)?;
            let c = w.pop().unwrap_or_default();
            (w.pop().unwrap_or_default(), c)
        }
        Some(p) => {
            let r = window::load(ctx, model, &[(p.from_us, p.until_us)], version)?.pop().unwrap_or_default();
            (r, window::load(ctx, model, &ranges[1..], version)?.pop().unwrap_or_default())
        }
    };
    let drift = analysis::drift(cfg, model, &r, &c, pinned.is_some());
    let performance = analysis::performance(&c);
    let decision = analysis::retrain(cfg, &r, &c, &drift);
    Ok(Check { drift, performance, decision })
}

/// A drift check in brief: the severities and the recommendation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DriftBrief {
    /// The highest severity.
    pub severity: Level,
    /// Feature drift severity.
    pub feature_drift: Level,
    /// Features with a significant test.
    pub affected_features: Vec<String>,
    /// Concept drift severity.
    pub concept_drift: Level,
    /// Prediction drift severity.
    pub prediction_drift: Level,
    /// What to do, in words.
    pub recommendation: String,
}

impl DriftBrief {
    /// The brief of a drift report.
    pub fn of(d: &DriftReport) -> Self {
        Self {
            severity: d.severity,
            feature_drift: d.feature_drift.severity,
            affected_features: d.feature_drift.affected_features.clone(),
            concept_drift: d.concept_drift.severity,
            prediction_drift: d.prediction_drift.severity,
            recommendation: d.recommendation.clone(),
        }
    }
}
