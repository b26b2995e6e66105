//! The scheduled jobs — `preference_update` (every user's preferred models,
//! accuracy and next activity, as an insight) and `memory_decay` (expiring
//! memories whose decayed confidence fell below the minimum) — and their
//! reports, as types. The third, `enrich` (LLM enrichment of queued
//! interactions), is [`crate::enrich`].

use std::collections::BTreeMap;

use learnloop_plugin_api::state::scan_all;
use learnloop_plugin_api::{Context, Expect, InsightDraft, PluginError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::online::Meta;
use crate::persona::{self, UserDoc, round4};
use crate::{PersonaPlugin, get_doc, put_doc};

/// A user's preferred model for one task type, in the insight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreferredModel {
    /// The model.
    pub model: String,
    /// Its EMA.
    pub score: f64,
}

/// A user's next activity, in the insight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LikelyTask {
    /// The task type.
    pub task_type: String,
    /// How likely.
    pub probability: f64,
}

/// One user in the `preferences` insight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserPreferences {
    /// Per task type.
    pub preferred_models: BTreeMap<String, PreferredModel>,
    /// Held-out accuracy.
    pub accuracy: Option<f64>,
    /// Its ceiling.
    pub accuracy_ceiling: Option<f64>,
    /// The most likely next task type.
    pub next_activity: Option<LikelyTask>,
}

/// The data of the `preferences` insight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreferencesInsight {
    /// Per user.
    pub users: BTreeMap<String, UserPreferences>,
}

/// Totals of the `preference_update` report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreferenceTotals {
    /// Interactions and responses.
    pub predictions: u64,
    /// Feedback.
    pub outcomes: u64,
    /// Interactions.
    pub interactions: u64,
    /// Feedback.
    pub feedback: u64,
    /// User × task pairs with a preferred model.
    pub preferred_pairs: u64,
    /// Held-out feedback scored.
    pub held_out_scored: u64,
}

/// The report of `preference_update`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreferenceReport {
    /// Users.
    pub users: u64,
    /// User × task pairs with a preferred model.
    pub preferred_pairs: u64,
    /// Held-out accuracy over all users.
    pub preference_accuracy: Option<f64>,
    /// Its ceiling.
    pub accuracy_ceiling: Option<f64>,
    /// Accuracy / ceiling.
    pub accuracy_of_ceiling: Option<f64>,
    /// Held-out feedback scored.
    pub held_out_scored: u64,
    /// Users (the shape every plugin's first job reports).
    pub subjects: u64,
    /// Totals.
    pub totals: PreferenceTotals,
}

/// The report of `memory_decay`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecayReport {
    /// `memory_half_life_days > 0`.
    pub enabled: bool,
    /// Memories expired.
    pub expired: u64,
}

impl PersonaPlugin {
    /// Runs `job`.
    pub(crate) fn job(&self, ctx: &mut dyn Context, job: &str) -> Result<Value, PluginError> {
        match job {
            "preference_update" => Ok(serde_json::to_value(self.preference_update(ctx)?)?),
            "memory_decay" => Ok(serde_json::to_value(self.memory_decay(ctx)?)?),
            "enrich" => Ok(serde_json::to_value(self.enrich(ctx)?)?),
            other => Err(PluginError::invalid("job", format!("unknown job {other:?}"))),
        }
    }

    fn preference_update(&self, ctx: &mut dyn Context) -> Result<PreferenceReport, PluginError> {
        let cfg = self.config();
        let (mut users, mut scored, mut correct, mut preferred) = (0u64, 0u64, 0u64, 0u64);
        let (mut best, mut tallied) = (0u64, 0u64);
        let mut table = BTreeMap::new();
        for (k, v) in scan_all(ctx, "user/")? {
            let u: UserDoc = serde_json::from_value(v)?;
            users += 1;
            scored += u.feedback.held_out;
            correct += u.feedback.held_out_correct;
            let (b, n) = persona::ceiling_counts(&u.feedback.held_out_tally);
            best += b;
            tallied += n;
            let mut per = BTreeMap::new();
            for task in u.feedback.ema.keys() {
                if let Some((model, score)) = u.preferred_model(task) {
                    preferred += 1;
                    per.insert(task.clone(), PreferredModel { model, score });
                }
            }
            let next =
                u.next_activity(u.newest, cfg).map(|(task_type, probability, _)| LikelyTask { task_type, probability });
            table.insert(
                k["user/".len()..].to_string(),
                UserPreferences {
                    preferred_models: per,
                    accuracy: u.accuracy().map(round4),
                    accuracy_ceiling: u.accuracy_ceiling().map(round4),
                    next_activity: next,
                },
            );
        }
        let accuracy = (scored > 0).then(|| round4(correct as f64 / scored as f64));
        let ceiling = (tallied > 0).then(|| round4(best as f64 / tallied as f64));
        if users > 0 {
            ctx.emit_insight(InsightDraft {
                kind: "preferences".into(),
                title: format!("Preferred models learned for {users} users ({preferred} user × task pairs)"),
                detail: match (accuracy, ceiling) {
                    (Some(a), Some(c)) => format!(
                        "Held-out preference accuracy {:.1}% on {scored} feedback events; the best any predictor could reach on the same events is {:.1}% (target 90%).",
                        a * 100.0,
                        c * 100.0
                    ),
                    (Some(a), None) => {
                        format!("Held-out preference accuracy {:.1}% on {scored} feedback events (target 90%).", a * 100.0)
                    }
                    (None, _) => "No held-out feedback scored yet.".into(),
                },
                confidence: accuracy.unwrap_or(0.5),
                impact: 0.0,
                data: serde_json::to_value(PreferencesInsight { users: table })?,
            })?;
        }
        let (meta, _) = get_doc::<Meta>(ctx, "meta")?;
        Ok(PreferenceReport {
            users,
            preferred_pairs: preferred,
            preference_accuracy: accuracy,
            accuracy_ceiling: ceiling,
            accuracy_of_ceiling: accuracy.zip(ceiling).filter(|(_, c)| *c > 0.0).map(|(a, c)| round4(a / c)),
            held_out_scored: scored,
            subjects: users,
            totals: PreferenceTotals {
                predictions: meta.interactions + meta.responses,
                outcomes: meta.feedback,
                interactions: meta.interactions,
                feedback: meta.feedback,
                preferred_pairs: preferred,
                held_out_scored: scored,
            },
        })
    }

    fn memory_decay(&self, ctx: &mut dyn Context) -> Result<DecayReport, PluginError> {
        let cfg = self.config();
        if cfg.memory_half_life_days <= 0.0 {
            return Ok(DecayReport { enabled: false, expired: 0 });
        }
        let mut expired = 0u64;
        let mut after: Option<String> = None;
        loop {
            let page = ctx.scan_state("user/", after.as_deref(), 200)?;
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            for (k, s) in page {
                let mut u: UserDoc = serde_json::from_value(s.value)?;
                let now = u.newest;
                let mut changed = false;
                for m in u.memories.iter_mut().filter(|m| m.valid_to.is_none()) {
                    if m.decayed(now, cfg.memory_half_life_days) < cfg.min_memory_confidence {
                        m.valid_to = Some(now);
                        expired += 1;
                        changed = true;
                    }
                }
                if changed {
                    put_doc(ctx, &k, &u, Expect::Version(s.version))?;
                }
            }
        }
        Ok(DecayReport { enabled: true, expired })
    }
}
