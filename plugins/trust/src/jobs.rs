//! The scheduled jobs — `meta_learning` and `pattern_refresh` (pattern
//! discovery, and for the cycle the weights and rules learned through the
//! improvement lifecycle), `trust_recalculation` (snapshot, change-test
//! verdicts, alerts) and `cleanup` — with the state documents they write
//! (`patterns`, `learning`, `trust_snapshot`) and their reports, as types.
//! Reports carry no wall-clock time, so replays are identical.

use std::collections::{BTreeMap, BTreeSet};

use learnloop_plugin_api::helpers::time_json;
use learnloop_plugin_api::{AlertDraft, Context, Expect, InsightDraft, PluginError, Severity, Timestamp};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::online::{Meta, Open, load_agents};
use crate::patterns::Pattern;
use crate::rules::RulesLearning;
use crate::score::DAY;
use crate::weights::WeightsLearning;
use crate::{TrustPlugin, Weights, get_doc, patterns, put_doc, rules, time, weights};

/// The window a discovery looked at.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PatternWindow {
    /// Its start (RFC 3339).
    #[schemars(extend("format" = "date-time"))]
    pub from: Option<String>,
    /// Its end: the newest event time.
    #[schemars(extend("format" = "date-time"))]
    pub until: Option<String>,
}

/// The document `patterns`: the last discovery.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PatternsDoc {
    /// Kept patterns.
    pub patterns: Vec<Pattern>,
    /// Model accuracy on covered samples.
    pub accuracy: Option<f64>,
    /// Covered share of the samples.
    pub coverage: Option<f64>,
    /// Mean confidence of the patterns.
    pub mean_confidence: Option<f64>,
    /// The window discovered over.
    pub window: Option<PatternWindow>,
    /// Evaluated recommendations in the window.
    pub samples: u64,
}

/// The document `learning`: the learning cycles so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LearningDoc {
    /// Cycles run.
    pub cycles: u64,
    /// Final evaluations seen when the last cycle ran.
    pub evaluated_at_last_cycle: u64,
    /// The last cycle's report.
    pub last_result: Option<CycleReport>,
}

/// One agent in the document `trust_snapshot`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SnapshotAgent {
    /// Overall trust.
    pub overall: f64,
    /// Posterior mean approval.
    pub accuracy: f64,
    /// Lower end of its credible interval.
    pub lower: f64,
    /// Upper end.
    pub upper: f64,
    /// The trend then.
    pub trend: String,
    /// Decline alarms of its change test then (a higher count now is a new alarm).
    #[serde(default)]
    pub declines: u64,
    /// Improvement alarms then.
    #[serde(default)]
    pub improvements: u64,
}

/// The document `trust_snapshot`: every agent's trust at the last
/// `trust_recalculation`, to report the largest changes since.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrustSnapshot {
    /// Per agent.
    pub agents: BTreeMap<String, SnapshotAgent>,
    /// The newest event time then.
    pub as_of: Value,
}

/// Predictions and outcomes behind a report (the shape every plugin's jobs report).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct JobTotals {
    /// Recommendations.
    pub predictions: u64,
    /// Evaluations.
    pub outcomes: u64,
}

/// The window of a cycle report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CycleWindow {
    /// Its start.
    #[schemars(extend("format" = "date-time"))]
    pub from: Option<String>,
    /// Its end: the newest event time.
    #[schemars(extend("format" = "date-time"))]
    pub until: Option<String>,
    /// `lookback_days`.
    pub lookback_days: f64,
}

/// The weights part of a learning cycle's report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CycleWeights {
    /// The weights in force during the cycle.
    pub in_force: Weights,
    /// Their version.
    pub version: u64,
    /// What the cycle learned about them.
    pub learning: WeightsLearning,
}

/// The routing-rules part of a learning cycle's report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CycleRules {
    /// Rules in force during the cycle.
    pub in_force: usize,
    /// Their version.
    pub version: u64,
    /// What the cycle learned about them.
    pub learning: RulesLearning,
}

/// The report of `meta_learning` and `pattern_refresh` (the cycle fields
/// only for `meta_learning`), also kept as the `learning` document's
/// `last_result`. Fields added over time default when an older document
/// lacks them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct CycleReport {
    /// Evaluated recommendations in the window.
    pub samples_analyzed: u64,
    /// Patterns kept.
    pub patterns_discovered: usize,
    /// Of them, already known before.
    pub patterns_confirmed: usize,
    /// Candidates pruned plus earlier patterns gone.
    pub patterns_pruned: usize,
    /// Patterns that are routing rules (success_indicator, failure_avoidance, expert_opinion).
    pub rules_updated: usize,
    /// Model accuracy.
    pub iteration_accuracy: Option<f64>,
    /// Model coverage.
    pub coverage: Option<f64>,
    /// Mean pattern confidence minus the previous discovery's.
    pub pattern_confidence_improvement: Option<f64>,
    /// Model accuracy minus the previous discovery's.
    pub rule_effectiveness_improvement: Option<f64>,
    /// What the patterns say, for people.
    pub key_insights: Vec<String>,
    /// What to do about it.
    pub recommendations_for_swarm: Vec<String>,
    /// The window discovered over.
    pub window: CycleWindow,
    /// Agents seen in the window.
    pub subjects: usize,
    /// Recommendations and evaluations in the window.
    pub totals: JobTotals,
    /// Approved share of the evaluated.
    pub success_rate: Option<f64>,
    /// Why there are no timings.
    pub note: String,
    /// `iter_<workspace>_<newest seconds>` (cycles only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iteration_id: Option<String>,
    /// The workspace (cycles only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<String>,
    /// The cycle's number (cycles only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iteration: Option<u64>,
    /// Trust weights learned (cycles only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weights: Option<CycleWeights>,
    /// Routing rules learned (cycles only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules: Option<CycleRules>,
}

/// One agent's trust change since the previous snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrustChange {
    /// The agent.
    pub agent_id: String,
    /// Overall trust now minus then.
    pub change: f64,
}

/// The change test part of a `trust_recalculation` report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeTestRun {
    /// Agents whose change test is monitoring them (reference long enough).
    pub agents_monitored: usize,
    /// Agents with a decline alarm since the last run (alerted).
    pub newly_declining: Vec<String>,
    /// Agents with an improvement alarm since the last run.
    pub improving: Vec<String>,
    /// The CUSUM threshold h.
    pub threshold: f64,
    /// `decline_arl0`.
    pub arl0: f64,
    /// `decline_odds_ratio`.
    pub odds_ratio: f64,
    /// `decline_window`.
    pub window: u64,
}

/// The report of `trust_recalculation`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecalculationReport {
    /// Agents known.
    pub subjects: usize,
    /// Recommendations and final evaluations seen.
    pub totals: JobTotals,
    /// Approved share of the final evaluations.
    pub success_rate: Option<f64>,
    /// Agents at or above `trusted_threshold`.
    pub trusted_agents: usize,
    /// `trusted_threshold`.
    pub trusted_threshold: f64,
    /// Every agent whose last verdict is declining.
    pub declining_agents: Vec<String>,
    /// This run's change test.
    pub change_test: ChangeTestRun,
    /// The ten largest changes of overall trust since the last run.
    pub largest_changes: Vec<TrustChange>,
    /// The newest event time.
    pub as_of: Value,
    /// Version of the trust weights used.
    pub weights_version: u64,
}

/// The data of a `trust_declining` alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecliningAlert {
    /// The decline CUSUM when it crossed the threshold.
    pub statistic: f64,
    /// The threshold h.
    pub threshold: f64,
    /// `decline_arl0`.
    pub arl0: f64,
    /// `decline_odds_ratio`.
    pub odds_ratio: f64,
    /// The agent's final evaluations at the alarm.
    pub at_evaluation: u64,
    /// Evaluations since the estimated change point.
    pub evaluations_since_change: u64,
    /// Mean outcome value over them.
    pub observed_rate: f64,
    /// What the agent's history predicted for them (type-adjusted).
    pub expected_rate: f64,
    /// The agent's final evaluations now.
    pub evaluated: u64,
}

/// The report of `cleanup`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CleanupReport {
    /// In-flight recommendations forgotten.
    pub pruned_unevaluated_recommendations: u64,
    /// In-flight recommendations kept.
    pub kept_unevaluated_recommendations: u64,
    /// `retention_days`.
    pub retention_days: f64,
    /// Recommendations before this time were forgotten.
    pub cutoff: Value,
    /// What cleanup does and does not delete.
    pub note: String,
    /// Always 0 (no subject is looked at).
    pub subjects: u64,
    /// Recommendations and final evaluations seen.
    pub totals: JobTotals,
}

/// The job reports as JSON.
fn report<T: Serialize>(r: &T) -> Result<Value, PluginError> {
    Ok(serde_json::to_value(r)?)
}

/// Runs `job`.
pub(crate) fn run(plugin: &TrustPlugin, ctx: &mut dyn Context, job: &str) -> Result<Value, PluginError> {
    match job {
        "meta_learning" => report(&run_patterns(plugin, ctx, true)?),
        "pattern_refresh" => report(&run_patterns(plugin, ctx, false)?),
        "trust_recalculation" => report(&trust_recalculation(plugin, ctx)?),
        "cleanup" => report(&cleanup(plugin, ctx)?),
        other => Err(PluginError::invalid("job", format!("unknown job {other:?}"))),
    }
}

/// Pattern discovery + bookkeeping shared by meta_learning and pattern_refresh.
fn run_patterns(plugin: &TrustPlugin, ctx: &mut dyn Context, cycle: bool) -> Result<CycleReport, PluginError> {
    let cfg = plugin.config();
    let meta = Meta::load(ctx)?;
    let until =
        Timestamp::from_micros(meta.newest.saturating_add(1)).unwrap_or(Timestamp::from_micros(0).expect("epoch"));
    let from = Timestamp::from_micros((meta.newest as f64 - cfg.lookback_days * DAY) as i64)
        .unwrap_or(Timestamp::from_micros(0).expect("epoch"));
    let d = patterns::discover(ctx, cfg, from, until)?;
    let (old, expect) = get_doc::<PatternsDoc>(ctx, "patterns")?;
    let old_ids: BTreeSet<&str> = old.patterns.iter().map(|p| p.id.as_str()).collect();
    let confirmed = d.patterns.iter().filter(|p| old_ids.contains(p.id.as_str())).count();
    let dropped = old_ids.iter().filter(|id| !d.patterns.iter().any(|p| p.id == **id)).count();
    let mean_conf = (!d.patterns.is_empty())
        .then(|| d.patterns.iter().map(|p| p.confidence).sum::<f64>() / d.patterns.len() as f64);
    let rules_updated = d
        .patterns
        .iter()
        .filter(|p| ["success_indicator", "failure_avoidance", "expert_opinion"].contains(&p.category.as_str()))
        .count();
    let doc = PatternsDoc {
        patterns: d.patterns.clone(),
        accuracy: d.accuracy,
        coverage: d.coverage,
        mean_confidence: mean_conf,
        window: Some(PatternWindow { from: time(from.as_micros()), until: time(meta.newest) }),
        samples: d.samples,
    };
    put_doc(ctx, "patterns", &doc, expect)?;
    let count = |c: &str| d.patterns.iter().filter(|p| p.category == c).count();
    let experts = count("expert_opinion");
    let failures = count("failure_avoidance");
    let mut insights = Vec::new();
    let mut recs = Vec::new();
    if experts > 0 {
        insights.push(format!("Identified {experts} expert agents with high approval rates"));
        recs.push("Route recommendations through expert agents".to_string());
    }
    if let Some(p) = d.patterns.iter().find(|p| p.category == "consensus") {
        insights.push(format!(
            "Multi-agent consensus leads to approval {:.0}% of the time ({} recommendations)",
            p.success_rate * 100.0,
            p.frequency
        ));
        if p.predicts == "approved" {
            recs.push("Increase use of multi-agent consensus for critical decisions".into());
        }
    }
    if let Some(p) = d.patterns.iter().find(|p| p.category == "high_confidence") {
        insights
            .push(format!("High-confidence recommendations are approved {:.0}% of the time", p.success_rate * 100.0));
    }
    if failures > 0 {
        insights.push(format!("{failures} agent × type combinations are mostly rejected"));
        recs.push("Provide additional training to weak-area agents, and route those types elsewhere".into());
    }
    if let (Some(a), Some(c)) = (d.accuracy, d.coverage)
        && (a < 0.8 || c < 0.7)
    {
        recs.push(format!(
            "Patterns are below target (accuracy {a:.2} vs 0.80, coverage {c:.2} vs 0.70): collect more evaluations"
        ));
    }
    let mut report = CycleReport {
        samples_analyzed: d.samples,
        patterns_discovered: d.patterns.len(),
        patterns_confirmed: confirmed,
        patterns_pruned: d.pruned + dropped,
        rules_updated,
        iteration_accuracy: d.accuracy,
        coverage: d.coverage,
        pattern_confidence_improvement: mean_conf.zip(old.mean_confidence).map(|(a, b)| a - b),
        rule_effectiveness_improvement: d.accuracy.zip(old.accuracy).map(|(a, b)| a - b),
        key_insights: insights,
        recommendations_for_swarm: recs,
        window: CycleWindow {
            from: time(from.as_micros()),
            until: time(meta.newest),
            lookback_days: cfg.lookback_days,
        },
        subjects: d.agents,
        totals: JobTotals { predictions: d.recommendations, outcomes: d.samples },
        success_rate: d.success_rate,
        note: "timings are in the host's job-run record; reports carry no wall-clock time so replays are identical"
            .into(),
        ..Default::default()
    };
    if cycle {
        let (mut learning, expect) = get_doc::<LearningDoc>(ctx, "learning")?;
        let cycles = learning.cycles + 1;
        let ws = ctx.workspace().to_string();
        report.iteration_id = Some(format!("iter_{ws}_{}", meta.newest / 1_000_000));
        report.workspace_id = Some(ws);
        report.iteration = Some(cycles);
        learning.cycles = cycles;
        learning.evaluated_at_last_cycle = meta.evaluated;
        let (effective, weights_version) = plugin.effective(ctx)?;
        let learned = weights::learn(ctx, cfg, &effective.weights, meta.newest)?;
        report.weights =
            Some(CycleWeights { in_force: effective.weights, version: weights_version, learning: learned });
        let (rules_in_force, rules_version) = rules::in_force(ctx)?;
        let learned = rules::learn(ctx, cfg, &rules_in_force, meta.newest)?;
        report.rules =
            Some(CycleRules { in_force: rules_in_force.rules.len(), version: rules_version, learning: learned });
        learning.last_result = Some(report.clone());
        put_doc(ctx, "learning", &learning, expect)?;
        ctx.emit_insight(InsightDraft {
            kind: "learning_cycle".into(),
            title: format!("trust: {} patterns from {} evaluated recommendations", d.patterns.len(), d.samples),
            detail: report.key_insights.join("; "),
            confidence: mean_conf.unwrap_or(0.0),
            impact: 0.0,
            data: serde_json::to_value(&report)?,
        })?;
    }
    Ok(report)
}

/// Every agent's trust now, the largest changes since the last snapshot, and
/// the change test's verdicts on the blocks completed since the last run.
fn trust_recalculation(plugin: &TrustPlugin, ctx: &mut dyn Context) -> Result<RecalculationReport, PluginError> {
    let (cfg, weights_version) = plugin.effective(ctx)?;
    let cfg = &cfg;
    let meta = Meta::load(ctx)?;
    let agents = load_agents(ctx)?;
    let (old, expect) = get_doc::<TrustSnapshot>(ctx, "trust_snapshot")?;
    let mut snap = BTreeMap::new();
    let mut changes = Vec::new();
    for (id, a) in &agents {
        let s = a.all.score(cfg, meta.newest);
        if let Some(prev) = old.agents.get(id) {
            changes.push((id.clone(), s.overall - prev.overall));
        }
        snap.insert(
            id.clone(),
            SnapshotAgent {
                overall: s.overall,
                accuracy: s.accuracy,
                lower: s.lower,
                upper: s.upper,
                trend: a.trend().to_string(),
                declines: a.change.declines,
                improvements: a.change.improvements,
            },
        );
    }
    let trusted = snap.values().filter(|v| v.overall >= cfg.trusted_threshold).count();
    put_doc(ctx, "trust_snapshot", &TrustSnapshot { agents: snap, as_of: time_json(meta.newest) }, expect)?;
    changes.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()).then(a.0.cmp(&b.0)));
    // The change test runs online (score::ChangeTest); this run alerts on
    // the decline alarms raised since the previous run.
    let threshold = cfg.decline_threshold();
    let mut declining = Vec::new();
    let mut improving = Vec::new();
    for (id, a) in &agents {
        let prev = old.agents.get(id);
        if a.change.improvements > prev.map_or(0, |p| p.improvements) {
            improving.push(id.clone());
        }
        if a.change.declines <= prev.map_or(0, |p| p.declines) {
            continue;
        }
        declining.push(id.clone());
        let Some(alarm) = &a.change.last_decline else { continue };
        let data = DecliningAlert {
            statistic: alarm.statistic,
            threshold,
            arl0: cfg.decline_arl0,
            odds_ratio: cfg.decline_odds_ratio,
            at_evaluation: alarm.at_evaluation,
            evaluations_since_change: alarm.evaluations_since_change,
            observed_rate: alarm.observed_rate,
            expected_rate: alarm.expected_rate,
            evaluated: a.all.evaluated,
        };
        ctx.emit_alert(AlertDraft {
            severity: Severity::Medium,
            kind: "trust_declining".into(),
            subject: id.clone(),
            message: format!(
                "{id}: its approval over its last {} evaluations ({:.2}) fell significantly below what its history predicts for the same recommendation types ({:.2}); CUSUM {:.1} ≥ threshold {threshold:.1} (one false alarm per {} evaluations of a constant agent); its trust is declining",
                alarm.evaluations_since_change,
                alarm.observed_rate,
                alarm.expected_rate,
                alarm.statistic,
                cfg.decline_arl0
            ),
            dedup_key: format!("trust_declining:{id}"),
            data: serde_json::to_value(&data)?,
        })?;
    }
    let all_declining: Vec<String> =
        agents.iter().filter(|(_, a)| a.trend() == "declining").map(|(id, _)| id.clone()).collect();
    Ok(RecalculationReport {
        subjects: agents.len(),
        totals: JobTotals { predictions: meta.recommendations, outcomes: meta.evaluated },
        success_rate: meta.approval_rate(),
        trusted_agents: trusted,
        trusted_threshold: cfg.trusted_threshold,
        declining_agents: all_declining,
        change_test: ChangeTestRun {
            agents_monitored: agents.values().filter(|a| a.change.expect_all.is_some()).count(),
            newly_declining: declining,
            improving,
            threshold,
            arl0: cfg.decline_arl0,
            odds_ratio: cfg.decline_odds_ratio,
            window: cfg.decline_window,
        },
        largest_changes: changes
            .into_iter()
            .take(10)
            .map(|(agent_id, change)| TrustChange { agent_id, change })
            .collect(),
        as_of: time_json(meta.newest),
        weights_version,
    })
}

/// Forgets the in-flight state of recommendations older than `retention_days`.
fn cleanup(plugin: &TrustPlugin, ctx: &mut dyn Context) -> Result<CleanupReport, PluginError> {
    let cfg = plugin.config();
    let meta = Meta::load(ctx)?;
    let cutoff = meta.newest - (cfg.retention_days * DAY) as i64;
    let mut pruned = 0u64;
    let mut kept = 0u64;
    let mut after: Option<String> = None;
    loop {
        let page = ctx.scan_state("open/", after.as_deref(), 1000)?;
        let Some((last, _)) = page.last() else { break };
        after = Some(last.clone());
        for (k, s) in page {
            let o: Open = serde_json::from_value(s.value)?;
            if o.t.is_some_and(|t| t < cutoff) {
                ctx.delete_state(&k, Expect::Version(s.version))?;
                pruned += 1;
            } else {
                kept += 1;
            }
        }
    }
    Ok(CleanupReport {
        pruned_unevaluated_recommendations: pruned,
        kept_unevaluated_recommendations: kept,
        retention_days: cfg.retention_days,
        cutoff: time_json(cutoff),
        note: "events are never deleted (the host owns history); cleanup only forgets the plugin's in-flight state about recommendations older than retention_days that were never evaluated, so a late evaluation of one of them gets no timeliness score".into(),
        subjects: 0,
        totals: JobTotals { predictions: meta.recommendations, outcomes: meta.evaluated },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Documents as older versions of the plugin stored them still read:
    /// a pattern without `predicts` (before `GET /rules`), a learning
    /// report without the weights, rules, subjects and totals of later
    /// cycles, a snapshot without `as_of`.
    #[test]
    fn older_documents_deserialize() {
        let patterns: PatternsDoc = serde_json::from_value(json!({
            "patterns": [{"id": "expert_opinion:a", "category": "expert_opinion", "description": "a is good",
                          "agent": "a", "recommendation_type": null, "success_rate": 0.9, "frequency": 30,
                          "confidence": 0.8, "strength": "very_strong"}],
            "accuracy": 0.9, "coverage": 0.5
        }))
        .unwrap();
        assert_eq!(patterns.patterns[0].predicts, "");
        assert_eq!((patterns.window, patterns.mean_confidence, patterns.samples), (None, None, 0));
        let learning: LearningDoc = serde_json::from_value(json!({
            "cycles": 2, "evaluated_at_last_cycle": 40,
            "last_result": {"samples_analyzed": 40, "patterns_discovered": 1, "iteration_accuracy": 0.9,
                            "key_insights": ["x"], "iteration": 2}
        }))
        .unwrap();
        let last = learning.last_result.unwrap();
        assert_eq!((last.iteration, last.weights.is_none(), last.subjects), (Some(2), true, 0));
        let back = serde_json::to_value(&last).unwrap();
        assert!(back.get("weights").is_none() && back.get("iteration_id").is_none(), "{back}");
        let snap: TrustSnapshot = serde_json::from_value(
            json!({"agents": {"a": {"overall": 0.5, "accuracy": 0.6, "lower": 0.4, "upper": 0.8}}}),
        )
        .unwrap();
        assert_eq!(snap.agents["a"].overall, 0.5);
        assert_eq!(serde_json::from_value::<LearningDoc>(json!({})).unwrap(), LearningDoc::default());
    }
}
