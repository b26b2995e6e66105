//! Routing rules learned from patterns, through the host's improvement
//! lifecycle.
//!
//! A rule set has one rule per (agent, type) cell of the training window
//! with at least `min_pattern_support` evaluations whose approval rate is
//! credibly on one side of ½: "prefer A for T" when the lower end of the
//! 95% Beta(1 + s, 1 + f) interval lies above ½ (the rule predicts
//! approval), "avoid routing T to A" when its upper end lies below ½ (it
//! predicts rejection). With stable agents and enough evidence this covers
//! every cell whose outcome is predictable at all, so coverage is most of
//! the traffic and accuracy is what the agents' rates allow (a cell approved
//! 65% of the time is predicted right 65% of the time); both are reported
//! side by side, in sample in the proposal and out of sample in the backtest,
//! against the seed's targets 0.80 / 0.70. Once a rule set is in force, `POST /route` leaves out the candidates an `avoid`
//! rule names for the type (unless that would leave none) and marks the
//! preferred ones.
//!
//! `meta_learning` discovers rules on the lookback window minus its newest
//! quarter and proposes them (target `rules`) when they differ from the rules
//! in force. A rule set is scored on evaluations it was not learned from
//! (the held-out quarter for the backtest, evaluations received since it was
//! applied for monitoring): each final evaluation costs 0 when a rule
//! predicted it (avoid → rejected, prefer → approved), 1 when a rule
//! predicted the opposite, ½ when no rule covers it — so a rule set is better
//! only when its rules are right more often than a coin *on the cases they
//! claim*, and covering more such cases helps. The score's detail carries
//! the out-of-sample accuracy and coverage.

use std::collections::BTreeSet;

use learnloop_plugin_api::{
    Context, EventQuery, ImprovementDraft, Order, PluginError, Score, ScoreRequest, ScoreWindow, Timestamp,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Config;
use crate::answers::Targets;
use crate::online::outcome_label;
use crate::patterns::{Discovery, Pattern};
use crate::score::{DAY, timestamp};

/// The improvement target name.
pub const TARGET: &str = "rules";

/// How well a rule set fits the history it was learned from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RulesFit {
    /// Share of covered evaluations the rules predict right.
    pub in_sample_accuracy: Option<f64>,
    /// Share of evaluations a rule covers.
    pub in_sample_coverage: Option<f64>,
    /// The seed's targets.
    pub targets: Targets,
    /// Both targets met.
    pub meets_targets: bool,
}

impl Default for RulesFit {
    fn default() -> Self {
        Self { in_sample_accuracy: None, in_sample_coverage: None, targets: Targets::SEED, meets_targets: false }
    }
}

/// What a learning cycle did about the routing rules (`rules.learning` in its report).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct RulesLearning {
    /// Whether a new rule set was proposed to the improvement lifecycle.
    pub proposed: bool,
    /// Why not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Rules in the learned set.
    pub rules: usize,
    /// Their in-sample fit.
    pub fit: RulesFit,
}

/// The evidence of a rules proposal; [`score`] reads `holdout_from` back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RulesEvidence {
    /// Start of the history learned from.
    pub window_from: Timestamp,
    /// Start of the held-out quarter.
    pub holdout_from: Timestamp,
    /// Final evaluations learned from.
    pub learned_from_evaluations: u64,
    /// In-sample accuracy.
    pub in_sample_accuracy: Option<f64>,
    /// In-sample coverage.
    pub in_sample_coverage: Option<f64>,
    /// Rules in force when proposed.
    pub rules_in_force: usize,
    /// How the rules were learned.
    pub method: String,
}

/// The detail of a rules score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RulesScoreDetail {
    /// Rules in the candidate set.
    pub candidate_rules: usize,
    /// Rules in the baseline set.
    pub baseline_rules: usize,
    /// Share of covered evaluations the candidate predicts right.
    pub out_of_sample_accuracy: Option<f64>,
    /// Share of evaluations the candidate covers.
    pub out_of_sample_coverage: Option<f64>,
    /// The seed's targets.
    pub targets: Targets,
}

/// One routing rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Rule {
    /// `avoid` or `prefer`.
    pub action: String,
    /// The agent.
    pub agent: String,
    /// The recommendation type.
    pub recommendation_type: String,
    /// Approval rate behind it.
    pub success_rate: f64,
    /// The pattern's confidence.
    pub confidence: f64,
    /// Observations behind it.
    pub frequency: u64,
}

/// A rule set, as proposed and applied.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RuleSet {
    /// The rules, sorted by (agent, type).
    pub rules: Vec<Rule>,
}

impl RuleSet {
    /// The rules of a discovery's (agent, type) cells (see the module docs),
    /// with their in-sample accuracy and coverage.
    pub fn from_cells(d: &Discovery, cfg: &Config) -> (RuleSet, Option<f64>, Option<f64>) {
        let (mut covered, mut correct, mut total) = (0u64, 0.0f64, 0u64);
        let mut rules = Vec::new();
        for (agent, kind, s, n) in &d.cells {
            total += n;
            if *n < cfg.min_pattern_support {
                continue;
            }
            let f = *n as f64 - s;
            let post = learnloop_stats::beta_posterior(0, 0, 1.0 + s, 1.0 + f, 0.95).expect("valid prior");
            let action = if post.lower > 0.5 {
                correct += s;
                "prefer"
            } else if post.upper < 0.5 {
                correct += f;
                "avoid"
            } else {
                continue;
            };
            covered += n;
            rules.push(Rule {
                action: action.into(),
                agent: agent.clone(),
                recommendation_type: kind.clone(),
                success_rate: s / *n as f64,
                confidence: 1.0 - (post.upper - post.lower),
                frequency: *n,
            });
        }
        rules.sort_by(|a, b| (&a.agent, &a.recommendation_type).cmp(&(&b.agent, &b.recommendation_type)));
        let accuracy = (covered > 0).then(|| correct / covered as f64);
        let coverage = (total > 0).then(|| covered as f64 / total as f64);
        (RuleSet { rules }, accuracy, coverage)
    }

    /// The routing rules of a discovery's failure_avoidance and
    /// success_indicator patterns (the rule set before issue 19; kept for
    /// comparison).
    pub fn from_patterns(patterns: &[Pattern]) -> RuleSet {
        let mut rules: Vec<Rule> = patterns
            .iter()
            .filter_map(|p| {
                let action = match p.category.as_str() {
                    "failure_avoidance" => "avoid",
                    "success_indicator" => "prefer",
                    _ => return None,
                };
                Some(Rule {
                    action: action.into(),
                    agent: p.agent.clone()?,
                    recommendation_type: p.recommendation_type.clone()?,
                    success_rate: p.success_rate,
                    confidence: p.confidence,
                    frequency: p.frequency,
                })
            })
            .collect();
        rules.sort_by(|a, b| (&a.agent, &a.recommendation_type).cmp(&(&b.agent, &b.recommendation_type)));
        RuleSet { rules }
    }

    /// From improvement parameters (`None`: no rules).
    pub fn from_params(params: Option<&Value>) -> Result<RuleSet, PluginError> {
        match params {
            None | Some(Value::Null) => Ok(RuleSet::default()),
            Some(v) => {
                let set: RuleSet = serde_json::from_value(v.clone())
                    .map_err(|e| PluginError::invalid("params", format!("not a rule set: {e}")))?;
                if let Some(r) = set.rules.iter().find(|r| r.action != "avoid" && r.action != "prefer") {
                    return Err(PluginError::invalid(
                        "params",
                        format!("rule action {:?} is not avoid or prefer", r.action),
                    ));
                }
                Ok(set)
            }
        }
    }

    /// What the rules say about `agent` for `kind`.
    pub fn action(&self, agent: &str, kind: &str) -> Option<&str> {
        self.rules.iter().find(|r| r.agent == agent && r.recommendation_type == kind).map(|r| r.action.as_str())
    }

    fn keys(&self) -> BTreeSet<(&str, &str, &str)> {
        self.rules.iter().map(|r| (r.action.as_str(), r.agent.as_str(), r.recommendation_type.as_str())).collect()
    }
}

/// The rules in force and their version (0: none).
pub fn in_force(ctx: &mut dyn Context) -> Result<(RuleSet, u64), PluginError> {
    match learnloop_plugin_api::applied(ctx, TARGET)? {
        Some(a) => Ok((RuleSet::from_params(Some(&a.params))?, a.version)),
        None => Ok((RuleSet::default(), 0)),
    }
}

/// Discovers rules on the lookback window minus its newest quarter and
/// proposes them when they differ from `current`. Returns the report.
pub fn learn(
    ctx: &mut dyn Context,
    cfg: &Config,
    current: &RuleSet,
    newest: i64,
) -> Result<RulesLearning, PluginError> {
    let from = newest - (cfg.lookback_days * DAY) as i64;
    let cut = newest - (cfg.lookback_days * DAY / 4.0) as i64;
    let d: Discovery = crate::patterns::discover(ctx, cfg, timestamp(from)?, timestamp(cut)?)?;
    let (candidate, accuracy, coverage) = RuleSet::from_cells(&d, cfg);
    let fit = RulesFit {
        in_sample_accuracy: accuracy,
        in_sample_coverage: coverage,
        targets: Targets::SEED,
        meets_targets: accuracy.is_some_and(|a| a >= 0.8) && coverage.is_some_and(|c| c >= 0.7),
    };
    if candidate.keys() == current.keys() {
        return Ok(RulesLearning {
            proposed: false,
            reason: Some("the rules in force are what the data says".into()),
            rules: candidate.rules.len(),
            fit,
        });
    }
    if candidate.rules.is_empty() && current.rules.is_empty() {
        return Ok(RulesLearning {
            proposed: false,
            reason: Some("no agent × type cell is credibly approved or rejected more than half the time".into()),
            rules: 0,
            fit,
        });
    }
    let evidence = RulesEvidence {
        window_from: timestamp(from)?,
        holdout_from: timestamp(cut)?,
        learned_from_evaluations: d.samples,
        in_sample_accuracy: accuracy,
        in_sample_coverage: coverage,
        rules_in_force: current.rules.len(),
        method: "one rule per (agent, type) cell with ≥ min_pattern_support evaluations whose 95% Beta interval lies above ½ (prefer) or below ½ (avoid), over the lookback window minus its newest quarter".into(),
    };
    let n = candidate.rules.len();
    ctx.propose_improvement(ImprovementDraft {
        target: TARGET.into(),
        params: serde_json::to_value(&candidate)?,
        evidence: serde_json::to_value(&evidence)?,
        metric: "rule_loss".into(),
        expected_gain: 0.0,
    })?;
    Ok(RulesLearning { proposed: true, reason: None, rules: n, fit })
}

/// The host's backtest and monitoring comparison (see the module docs).
/// `newest` is the workspace's newest event time.
pub fn score(ctx: &mut dyn Context, cfg: &Config, request: &ScoreRequest, newest: i64) -> Result<Score, PluginError> {
    let candidate = RuleSet::from_params(Some(&request.candidate))?;
    let baseline = RuleSet::from_params(request.baseline.as_ref())?;
    let (from, received_since) = match &request.window {
        ScoreWindow::HeldOut => {
            let t: Timestamp = serde_json::from_value(request.evidence["holdout_from"].clone())
                .map_err(|e| PluginError::invalid("evidence.holdout_from", e.to_string()))?;
            (t, None)
        }
        ScoreWindow::Since { since } => (timestamp(newest - (cfg.lookback_days * DAY) as i64)?, Some(*since)),
    };
    let (mut lc, mut lb) = (Vec::new(), Vec::new());
    let (mut covered, mut correct) = (0u64, 0u64);
    let mut q =
        EventQuery { from: Some(from), order: Order::EventTime, limit: EventQuery::MAX_LIMIT, ..Default::default() };
    loop {
        let page = ctx.outcomes(&q)?;
        for o in page.items.iter().filter(|o| received_since.is_none_or(|s| o.ingested_at >= s)) {
            let r = &o.record;
            let y = match outcome_label(r.label.as_deref(), r.success, r.quality) {
                "approved" => 1.0,
                "partial" => 0.5,
                "rejected" => 0.0,
                _ => continue,
            };
            let loss = |set: &RuleSet| match set.action(&o.subject, &o.kind) {
                Some("avoid") => y,
                Some(_) => 1.0 - y,
                None => 0.5,
            };
            let l = loss(&candidate);
            if candidate.action(&o.subject, &o.kind).is_some() {
                covered += 1;
                if l < 0.5 {
                    correct += 1;
                }
            }
            lc.push(l);
            lb.push(loss(&baseline));
        }
        match page.next {
            Some(c) => q.after = Some(c),
            None => break,
        }
    }
    let mean = |v: &[f64]| if v.is_empty() { 0.5 } else { v.iter().sum::<f64>() / v.len() as f64 };
    let confidence =
        learnloop_stats::paired_improvement_confidence(&lb, &lc).map_err(|e| PluginError::internal(e.to_string()))?;
    Ok(Score {
        metric: "rule_loss".into(),
        higher_is_better: false,
        candidate: mean(&lc),
        baseline: mean(&lb),
        n: lc.len() as u64,
        confidence,
        detail: serde_json::to_value(RulesScoreDetail {
            candidate_rules: candidate.rules.len(),
            baseline_rules: baseline.rules.len(),
            out_of_sample_accuracy: (covered > 0).then(|| correct as f64 / covered as f64),
            out_of_sample_coverage: (!lc.is_empty()).then(|| covered as f64 / lc.len() as f64),
            targets: Targets::SEED,
        })?,
    })
}
