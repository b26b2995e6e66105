//! Learned parameters under the host's improvement lifecycle.
//!
//! A plugin's job proposes a new parameter set for a *target* (e.g. `weights`)
//! with [`Context::propose_improvement`](crate::Context::propose_improvement).
//! The host then asks the plugin to [`Plugin::score`](crate::Plugin::score)
//! the candidate against the version in force — first on held-out outcomes
//! the candidate was not learned from (the backtest), later on outcomes that
//! arrived after it was applied (monitoring) — and applies, holds, keeps or
//! rolls back by the configured policy.
//!
//! What is in force lives in one state document per target, written only by
//! the host, under [`APPLIED_PREFIX`]; a plugin reads it with [`applied`] and
//! serves with it, saying which version it used.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Context, PluginError, Timestamp};

/// State keys under this prefix are the host's record of which parameter
/// version is in force; plugins may read them and never write them.
pub const APPLIED_PREFIX: &str = "__applied/";

/// The state key of `target`'s applied parameters.
pub fn applied_key(target: &str) -> String {
    format!("{APPLIED_PREFIX}{target}")
}

/// A parameter set in force.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Applied {
    /// The parameter set's name.
    pub target: String,
    /// The improvement version in force (0 = the plugin's built-in defaults).
    pub version: u64,
    /// The improvement it came from (`None` for the built-in defaults).
    pub improvement_id: Option<i64>,
    /// The parameters.
    pub params: Value,
    /// When it came into force.
    pub applied_at: Timestamp,
    /// What was in force before, for monitoring and rollback (`None`: the
    /// plugin's built-in defaults).
    #[serde(default)]
    pub previous: Option<Box<Applied>>,
}

/// The parameters in force for `target`, or `None` when the plugin's
/// built-in defaults are (nothing was ever applied, or it was rolled back to
/// them).
pub fn applied(ctx: &mut dyn Context, target: &str) -> Result<Option<Applied>, PluginError> {
    match ctx.get_state(&applied_key(target))? {
        None => Ok(None),
        Some(s) => {
            let a: Applied = serde_json::from_value(s.value)
                .map_err(|e| PluginError::internal(format!("applied parameters of {target:?} are unreadable: {e}")))?;
            Ok((a.version > 0).then_some(a))
        }
    }
}

/// Which outcomes to score on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "window", rename_all = "snake_case")]
pub enum ScoreWindow {
    /// The backtest: outcomes the candidate was not learned from. The plugin
    /// records in the proposal's evidence which those are.
    HeldOut,
    /// Monitoring: outcomes the store recorded (`ingested_at`) at or after
    /// `since`, the moment the candidate was applied by the host's clock —
    /// whatever event times clients gave them.
    Since {
        /// The start.
        since: Timestamp,
    },
}

/// "How would `candidate` have done, compared with `baseline`?"
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreRequest {
    /// The parameter set's name.
    pub target: String,
    /// The metric the proposal said it would move.
    pub metric: String,
    /// The candidate parameters.
    pub candidate: Value,
    /// The candidate's evidence, as proposed.
    #[serde(default)]
    pub evidence: Value,
    /// The parameters to compare with; `None` means the plugin's built-in defaults.
    pub baseline: Option<Value>,
    /// Which outcomes.
    #[serde(flatten)]
    pub window: ScoreWindow,
}

/// A comparison of two parameter sets on the same outcomes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// The metric, e.g. `brier` or `savings_mape`.
    pub metric: String,
    /// Whether larger values of the metric are better.
    pub higher_is_better: bool,
    /// The candidate's value.
    pub candidate: f64,
    /// The baseline's value.
    pub baseline: f64,
    /// How many outcomes were scored.
    pub n: u64,
    /// How sure the plugin is that the candidate is better, in `[0, 1]`
    /// (e.g. one minus a one-sided paired test's p-value).
    pub confidence: f64,
    /// Anything else worth recording with the result.
    #[serde(default)]
    pub detail: Value,
}

impl Score {
    /// The candidate's improvement over the baseline relative to the
    /// baseline's magnitude: positive is better, `0.1` is 10% better.
    pub fn relative_gain(&self) -> f64 {
        let diff = if self.higher_is_better { self.candidate - self.baseline } else { self.baseline - self.candidate };
        let scale = self.baseline.abs().max(1e-12);
        diff / scale
    }

    /// Checks the numbers are usable.
    pub fn validate(&self) -> Result<(), PluginError> {
        for (field, v) in [("candidate", self.candidate), ("baseline", self.baseline)] {
            if !v.is_finite() {
                return Err(PluginError::invalid(field, format!("score must be finite, got {v}")));
            }
        }
        if !(0.0..=1.0).contains(&self.confidence) {
            return Err(PluginError::invalid("confidence", format!("must be in [0, 1], got {}", self.confidence)));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(higher: bool, candidate: f64, baseline: f64) -> Score {
        Score {
            metric: "m".into(),
            higher_is_better: higher,
            candidate,
            baseline,
            n: 10,
            confidence: 0.9,
            detail: Value::Null,
        }
    }

    #[test]
    fn gain_is_signed_by_direction() {
        assert!((score(false, 0.8, 1.0).relative_gain() - 0.2).abs() < 1e-12, "lower error is better");
        assert!((score(true, 0.8, 1.0).relative_gain() + 0.2).abs() < 1e-12, "lower accuracy is worse");
        assert!(score(true, 1.0, 1.0).relative_gain().abs() < 1e-12);
        assert!(score(false, f64::NAN, 1.0).validate().is_err());
    }

    #[test]
    fn window_round_trips_flattened() {
        let r = ScoreRequest {
            target: "t".into(),
            metric: "m".into(),
            candidate: serde_json::json!({"k": 1}),
            evidence: Value::Null,
            baseline: None,
            window: ScoreWindow::Since { since: Timestamp::from_micros(5).unwrap() },
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["window"], "since");
        assert_eq!(serde_json::from_value::<ScoreRequest>(v).unwrap(), r);
    }
}
