//! The improvement lifecycle: backtest, apply, monitor, roll back.
//!
//! Plugins propose parameter sets from their jobs; the host decides what is
//! in force. For one plugin in one workspace, [`PluginHost::process_improvements`]:
//!
//! 1. **Backtests** the newest proposal of each target: the plugin scores the
//!    candidate and the version in force on held-out outcomes the candidate
//!    was not learned from ([`ScoreWindow::HeldOut`]). Older proposals of the
//!    target are rejected as superseded.
//! 2. **Decides**: a candidate that is not better is rejected; one whose
//!    relative gain, confidence and sample size clear `[improvements]`
//!    thresholds is applied when `auto_apply` is on; anything else waits for
//!    [`PluginHost::approve_improvement`] or [`PluginHost::reject_improvement`].
//! 3. **Monitors** every applied version on outcomes recorded since it was
//!    applied ([`ScoreWindow::Since`]) against the version it replaced: worse
//!    beyond `rollback_tolerance` with at least `monitor_min_samples` outcomes
//!    rolls it back; otherwise, after `monitor_hours`, it is kept.
//!
//! What is in force is one state document per target under
//! [`APPLIED_PREFIX`] (see [`Applied`]), written only here. Every change of
//! it commits in the same transaction as the improvement's status move
//! (a [`Transition`] with compare-and-set on the status), so a crash at any
//! point leaves either the old or the new version fully in force, and the
//! status always says which.

use std::collections::BTreeMap;

use learnloop_config::ImprovementsConfig;
use learnloop_core::{Improvement, ImprovementStatus, PluginName, Timestamp, ValidationError, WorkspaceId};
use learnloop_plugin_api::improve::{APPLIED_PREFIX, applied_key};
use learnloop_plugin_api::{Applied, Expect, PluginError, Score, ScoreRequest, ScoreWindow};
use learnloop_store::{Changes, ImprovementQuery, StateChange, StateKey, StoreError, Transition};
use serde::Serialize;
use serde_json::{Value, json};

use crate::{HostContext, HostError, PluginHost};

/// What one pass of the lifecycle did, by improvement.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LifecycleReport {
    /// Applied by the policy after their backtest.
    pub applied: Vec<Value>,
    /// Backtested and waiting for a person (with the reasons).
    pub held: Vec<Value>,
    /// Rejected: worse than the version in force, or superseded.
    pub rejected: Vec<Value>,
    /// Monitored long enough without a regression.
    pub kept: Vec<Value>,
    /// Rolled back after a live regression.
    pub rolled_back: Vec<Value>,
    /// Still being monitored, with the interim comparison.
    pub monitoring: Vec<Value>,
}

impl LifecycleReport {
    /// Whether nothing happened.
    pub fn is_empty(&self) -> bool {
        self.applied.is_empty()
            && self.held.is_empty()
            && self.rejected.is_empty()
            && self.kept.is_empty()
            && self.rolled_back.is_empty()
            && self.monitoring.is_empty()
    }
}

fn invalid(field: &str, message: String) -> HostError {
    HostError::Invalid(ValidationError::new(field, message))
}

/// The backtest or monitoring result as recorded.
fn score_json(score: &Score, baseline_version: u64) -> Value {
    json!({
        "metric": score.metric,
        "higher_is_better": score.higher_is_better,
        "candidate": score.candidate,
        "baseline": score.baseline,
        "baseline_version": baseline_version,
        "relative_gain": score.relative_gain(),
        "confidence": score.confidence,
        "n": score.n,
        "detail": score.detail,
    })
}

/// `applied` without its grandparent, so the chain of previous versions a
/// document carries stays two deep.
fn shallow(applied: &Applied) -> Applied {
    let mut a = applied.clone();
    if let Some(p) = a.previous.as_mut() {
        p.previous = None;
    }
    a
}

impl PluginHost {
    /// The parameters in force for `target` of `plugin` in `workspace`
    /// (`None`: the plugin's built-in defaults).
    pub fn applied_params(
        &self,
        plugin: &str,
        workspace: &WorkspaceId,
        target: &str,
    ) -> Result<Option<Applied>, HostError> {
        Ok(self.applied_doc(plugin, workspace, target)?.map(|(a, _)| a).filter(|a| a.version > 0))
    }

    /// What is in force for every parameter set that was ever applied in
    /// `workspace` (all loaded plugins, or `only` one), each with its plugin.
    pub fn applied_all(
        &self,
        workspace: &WorkspaceId,
        only: Option<&str>,
    ) -> Result<Vec<(String, Applied)>, HostError> {
        let mut out = Vec::new();
        for name in self.plugins().keys().filter(|n| only.is_none_or(|o| o == n.as_str())) {
            let plugin = PluginName::parse("plugin", name).map_err(HostError::Invalid)?;
            for (key, doc) in self.store().scan_state(&plugin, workspace, APPLIED_PREFIX, None, 10_000)? {
                let a: Applied = serde_json::from_slice(&doc.value)
                    .map_err(|e| StoreError::Backend(format!("{key}: unreadable applied parameters: {e}")))?;
                out.push((name.clone(), a));
            }
        }
        Ok(out)
    }

    /// The applied document and its state version.
    fn applied_doc(
        &self,
        plugin: &str,
        workspace: &WorkspaceId,
        target: &str,
    ) -> Result<Option<(Applied, u64)>, HostError> {
        let key = self.applied_state_key(plugin, workspace, target)?;
        match self.store().get_state(&key)? {
            None => Ok(None),
            Some(doc) => {
                let a: Applied = serde_json::from_slice(&doc.value)
                    .map_err(|e| StoreError::Backend(format!("{key}: unreadable applied parameters: {e}")))?;
                Ok(Some((a, doc.version)))
            }
        }
    }

    fn applied_state_key(&self, plugin: &str, workspace: &WorkspaceId, target: &str) -> Result<StateKey, HostError> {
        let name = PluginName::parse("plugin", plugin).map_err(HostError::Invalid)?;
        Ok(StateKey::new(name, workspace.clone(), applied_key(target))?)
    }

    /// Asks the plugin to compare `candidate` with what was in force.
    fn score(
        &self,
        plugin: &str,
        workspace: &WorkspaceId,
        imp: &Improvement,
        candidate: &Value,
        baseline: Option<&Applied>,
        window: ScoreWindow,
    ) -> Result<Score, PluginError> {
        let loaded = self.plugin(plugin).map_err(|e| PluginError::invalid(e.field, e.message))?;
        let name = PluginName::parse("plugin", plugin).map_err(|e| PluginError::invalid(e.field, e.message))?;
        // Scoring is read-only: whatever the plugin writes is dropped with the context.
        let mut ctx =
            HostContext::new(self.store().as_ref(), self.services(), name, workspace.clone(), Timestamp::now());
        let request = ScoreRequest {
            target: imp.target.clone(),
            metric: imp.metric.clone(),
            candidate: candidate.clone(),
            evidence: imp.evidence.clone(),
            baseline: baseline.map(|b| b.params.clone()),
            window,
        };
        let score = loaded.plugin.score(&mut ctx, &request)?;
        score.validate()?;
        Ok(score)
    }

    /// The change of the applied document that puts `imp` in force.
    fn apply_change(
        &self,
        imp: &Improvement,
        current: Option<&(Applied, u64)>,
        now: Timestamp,
    ) -> Result<(StateChange, Applied), HostError> {
        let doc = Applied {
            target: imp.target.clone(),
            version: imp.version,
            improvement_id: Some(imp.id),
            params: imp.params.clone(),
            applied_at: now,
            previous: current.map(|(a, _)| Box::new(shallow(a))),
        };
        let change = StateChange {
            key: self.applied_state_key(imp.plugin.as_str(), &imp.workspace, &imp.target)?,
            value: Some(serde_json::to_vec(&doc).expect("JSON values serialise")),
            expect: current.map_or(Expect::Absent, |(_, v)| Expect::Version(*v)),
        };
        Ok((change, doc))
    }

    /// One pass of the lifecycle for `plugin` in `workspace` (see the module
    /// documentation). Runs after every job of the plugin; safe to run any
    /// time, from any process: every step is a compare-and-set.
    pub fn process_improvements(
        &self,
        plugin: &str,
        workspace: &WorkspaceId,
        now: Timestamp,
    ) -> Result<LifecycleReport, HostError> {
        let policy = self.improvement_policy().clone();
        let name = PluginName::parse("plugin", plugin).map_err(HostError::Invalid)?;
        let mut report = LifecycleReport::default();
        let list = |status| {
            self.store().improvements(&ImprovementQuery {
                workspace: Some(workspace.clone()),
                plugin: Some(name.clone()),
                target: None,
                status: Some(status),
                limit: 10_000,
            })
        };

        // 1. Backtest the newest proposal of each target; older ones are superseded.
        let mut newest: BTreeMap<String, Improvement> = BTreeMap::new();
        let mut superseded = Vec::new();
        for imp in list(ImprovementStatus::Proposed)? {
            match newest.get(&imp.target) {
                Some(n) if n.version > imp.version => superseded.push(imp),
                _ => {
                    if let Some(old) = newest.insert(imp.target.clone(), imp) {
                        superseded.push(old);
                    }
                }
            }
        }
        let held_before = list(ImprovementStatus::Backtested)?;
        for (target, imp) in &newest {
            for old in superseded
                .iter()
                .filter(|o| &o.target == target)
                .chain(held_before.iter().filter(|h| &h.target == target && h.version < imp.version))
            {
                let note = json!({"decision": "rejected", "reason": format!("superseded by version {}", imp.version)});
                let t = Transition {
                    workspace: workspace.clone(),
                    id: old.id,
                    from: old.status,
                    to: ImprovementStatus::Rejected,
                    backtest: None,
                    note: note.clone(),
                };
                match self.store().commit(&Changes { transitions: vec![t], ..Default::default() }, now) {
                    Ok(_) => report
                        .rejected
                        .push(json!({"id": old.id, "target": old.target, "version": old.version, "note": note})),
                    // Someone else moved it first: their decision stands.
                    Err(StoreError::VersionConflict { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            self.backtest_one(plugin, workspace, imp, &policy, now, &mut report)?;
        }

        // 2. Monitor what is applied.
        let docs = self.store().scan_state(&name, workspace, APPLIED_PREFIX, None, 10_000)?;
        for (_, doc) in docs {
            let Ok(applied) = serde_json::from_slice::<Applied>(&doc.value) else { continue };
            let Some(id) = applied.improvement_id else { continue };
            let imp = match self.store().improvement(workspace, id) {
                Ok(i) => i,
                Err(StoreError::NotFound(_)) => continue,
                Err(e) => return Err(e.into()),
            };
            if imp.status != ImprovementStatus::Applied {
                continue;
            }
            self.monitor_one(plugin, workspace, &imp, (&applied, doc.version), &policy, now, &mut report)?;
        }
        Ok(report)
    }

    fn backtest_one(
        &self,
        plugin: &str,
        workspace: &WorkspaceId,
        imp: &Improvement,
        policy: &ImprovementsConfig,
        now: Timestamp,
        report: &mut LifecycleReport,
    ) -> Result<(), HostError> {
        let current = self.applied_doc(plugin, workspace, &imp.target)?;
        let baseline = current.as_ref().map(|(a, _)| a).filter(|a| a.version > 0);
        let baseline_version = baseline.map_or(0, |a| a.version);
        let scored = self.score(plugin, workspace, imp, &imp.params, baseline, ScoreWindow::HeldOut);
        let backtested = |backtest: Value, note: Value| Transition {
            workspace: workspace.clone(),
            id: imp.id,
            from: ImprovementStatus::Proposed,
            to: ImprovementStatus::Backtested,
            backtest: Some(backtest),
            note,
        };
        let then = |to, note: Value| Transition {
            workspace: workspace.clone(),
            id: imp.id,
            from: ImprovementStatus::Backtested,
            to,
            backtest: None,
            note,
        };
        let summary = |note: &Value| json!({"id": imp.id, "target": imp.target, "version": imp.version, "note": note});
        let (changes, bucket, note) = match scored {
            Err(e) => {
                // No backtest, no automatic application: a person decides.
                let backtest = json!({"error": e.to_string()});
                let note = json!({"decision": "held", "reasons": [format!("the plugin could not backtest it: {e}")]});
                (Changes { transitions: vec![backtested(backtest, note.clone())], ..Default::default() }, 1, note)
            }
            Ok(score) => {
                let backtest = score_json(&score, baseline_version);
                let gain = score.relative_gain();
                if gain <= 0.0 {
                    let note = json!({
                        "decision": "rejected",
                        "reason": format!(
                            "backtest: {} {:.6} vs {:.6} for {} ({} outcomes): not better",
                            score.metric,
                            score.candidate,
                            score.baseline,
                            // A plugin may score against a stronger baseline than the version in force (cost: the base rate).
                            if score.detail["baseline"] == "base_rate" { "the base rate" } else { "the version in force" },
                            score.n
                        ),
                    });
                    let changes = Changes {
                        transitions: vec![
                            backtested(backtest, Value::Null),
                            then(ImprovementStatus::Rejected, note.clone()),
                        ],
                        ..Default::default()
                    };
                    (changes, 2, note)
                } else {
                    let mut reasons = Vec::new();
                    if !policy.auto_apply {
                        reasons.push("improvements.auto_apply is off".to_string());
                    }
                    if score.confidence < policy.min_confidence {
                        reasons.push(format!(
                            "confidence {:.3} < min_confidence {}",
                            score.confidence, policy.min_confidence
                        ));
                    }
                    if gain < policy.min_gain {
                        reasons.push(format!("relative gain {gain:.4} < min_gain {}", policy.min_gain));
                    }
                    if score.n < policy.min_backtest_samples {
                        reasons.push(format!(
                            "{} held-out outcomes < min_backtest_samples {}",
                            score.n, policy.min_backtest_samples
                        ));
                    }
                    if reasons.is_empty() {
                        let note = json!({"decision": "applied", "by": "policy", "relative_gain": gain, "confidence": score.confidence});
                        let (state, _) = self.apply_change(imp, current.as_ref(), now)?;
                        let changes = Changes {
                            state: vec![state],
                            transitions: vec![
                                backtested(backtest, Value::Null),
                                then(ImprovementStatus::Applied, note.clone()),
                            ],
                            ..Default::default()
                        };
                        (changes, 0, note)
                    } else {
                        let note = json!({"decision": "held", "reasons": reasons});
                        (
                            Changes { transitions: vec![backtested(backtest, note.clone())], ..Default::default() },
                            1,
                            note,
                        )
                    }
                }
            }
        };
        match self.store().commit(&changes, now) {
            Ok(_) => {
                let list = match bucket {
                    0 => &mut report.applied,
                    1 => &mut report.held,
                    _ => &mut report.rejected,
                };
                list.push(summary(&note));
                Ok(())
            }
            // Another process processed it (or changed what is in force) first.
            Err(StoreError::VersionConflict { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn monitor_one(
        &self,
        plugin: &str,
        workspace: &WorkspaceId,
        imp: &Improvement,
        (applied, doc_version): (&Applied, u64),
        policy: &ImprovementsConfig,
        now: Timestamp,
        report: &mut LifecycleReport,
    ) -> Result<(), HostError> {
        let previous = applied.previous.as_deref().filter(|p| p.version > 0);
        let window = ScoreWindow::Since { since: applied.applied_at };
        let score = match self.score(plugin, workspace, imp, &applied.params, previous, window) {
            Ok(s) => s,
            Err(e) => {
                report
                    .monitoring
                    .push(json!({"id": imp.id, "target": imp.target, "version": imp.version, "error": e.to_string()}));
                return Ok(());
            }
        };
        let result = score_json(&score, previous.map_or(0, |p| p.version));
        let gain = score.relative_gain();
        let enough = score.n >= policy.monitor_min_samples;
        let elapsed_hours = (now.as_micros() - applied.applied_at.as_micros()) as f64 / 3.6e9;
        let transition = |to, note: Value| Transition {
            workspace: workspace.clone(),
            id: imp.id,
            from: ImprovementStatus::Applied,
            to,
            backtest: None,
            note,
        };
        let summary = |note: &Value| json!({"id": imp.id, "target": imp.target, "version": imp.version, "note": note});
        if enough && gain < -policy.rollback_tolerance {
            let restored = match previous {
                Some(p) => Applied { applied_at: now, ..p.clone() },
                None => Applied {
                    target: imp.target.clone(),
                    version: 0,
                    improvement_id: None,
                    params: Value::Null,
                    applied_at: now,
                    previous: None,
                },
            };
            let note = json!({
                "decision": "rolled_back",
                "by": "monitoring",
                "reason": format!(
                    "live {} {:.6} vs {:.6} for version {} on {} outcomes since it was applied: {:.1}% worse (tolerance {:.1}%)",
                    score.metric, score.candidate, score.baseline, restored.version, score.n,
                    -gain * 100.0, policy.rollback_tolerance * 100.0
                ),
                "monitoring": result,
                "restored_version": restored.version,
            });
            let changes = Changes {
                state: vec![self.restore_change(imp, &restored, doc_version)?],
                transitions: vec![transition(ImprovementStatus::RolledBack, note.clone())],
                ..Default::default()
            };
            return match self.store().commit(&changes, now) {
                Ok(_) => {
                    report.rolled_back.push(summary(&note));
                    Ok(())
                }
                Err(StoreError::VersionConflict { .. }) => Ok(()),
                Err(e) => Err(e.into()),
            };
        }
        if elapsed_hours >= policy.monitor_hours as f64 {
            let note = json!({
                "decision": "kept",
                "monitoring": result,
                "enough_outcomes": enough,
                "reason": if enough {
                    format!("no regression beyond {:.1}% in {} hours", policy.rollback_tolerance * 100.0, policy.monitor_hours)
                } else {
                    format!("only {} outcomes in {} hours (< {}): kept, as nothing showed a regression", score.n, policy.monitor_hours, policy.monitor_min_samples)
                },
            });
            let changes =
                Changes { transitions: vec![transition(ImprovementStatus::Kept, note.clone())], ..Default::default() };
            return match self.store().commit(&changes, now) {
                Ok(_) => {
                    report.kept.push(summary(&note));
                    Ok(())
                }
                Err(StoreError::VersionConflict { .. }) => Ok(()),
                Err(e) => Err(e.into()),
            };
        }
        report
            .monitoring
            .push(json!({"id": imp.id, "target": imp.target, "version": imp.version, "monitoring": result}));
        Ok(())
    }

    fn restore_change(
        &self,
        imp: &Improvement,
        restored: &Applied,
        doc_version: u64,
    ) -> Result<StateChange, HostError> {
        Ok(StateChange {
            key: self.applied_state_key(imp.plugin.as_str(), &imp.workspace, &imp.target)?,
            value: Some(serde_json::to_vec(restored).expect("JSON values serialise")),
            expect: Expect::Version(doc_version),
        })
    }

    /// A person approves a backtested improvement: it is applied now, in one
    /// transaction with its status.
    pub fn approve_improvement(
        &self,
        workspace: &WorkspaceId,
        id: i64,
        now: Timestamp,
    ) -> Result<Improvement, HostError> {
        let imp = self.store().improvement(workspace, id)?;
        if imp.status != ImprovementStatus::Backtested {
            return Err(invalid(
                "status",
                format!("improvement {id} is {}, only a backtested improvement can be approved", imp.status.as_str()),
            ));
        }
        let current = self.applied_doc(imp.plugin.as_str(), workspace, &imp.target)?;
        let (state, _) = self.apply_change(&imp, current.as_ref(), now)?;
        let note = json!({"decision": "applied", "by": "approval"});
        let t = Transition {
            workspace: workspace.clone(),
            id,
            from: imp.status,
            to: ImprovementStatus::Applied,
            backtest: None,
            note,
        };
        self.store().commit(&Changes { state: vec![state], transitions: vec![t], ..Default::default() }, now)?;
        Ok(self.store().improvement(workspace, id)?)
    }

    /// A person rejects a proposed or backtested improvement.
    pub fn reject_improvement(
        &self,
        workspace: &WorkspaceId,
        id: i64,
        reason: &str,
        now: Timestamp,
    ) -> Result<Improvement, HostError> {
        let imp = self.store().improvement(workspace, id)?;
        if !matches!(imp.status, ImprovementStatus::Proposed | ImprovementStatus::Backtested) {
            return Err(invalid(
                "status",
                format!(
                    "improvement {id} is {}, only a proposed or backtested improvement can be rejected",
                    imp.status.as_str()
                ),
            ));
        }
        let note = json!({"decision": "rejected", "by": "person", "reason": reason});
        let t = Transition {
            workspace: workspace.clone(),
            id,
            from: imp.status,
            to: ImprovementStatus::Rejected,
            backtest: None,
            note,
        };
        self.store().commit(&Changes { transitions: vec![t], ..Default::default() }, now)?;
        Ok(self.store().improvement(workspace, id)?)
    }

    /// Rolls `target` of `plugin` back by hand: to `to_version` (0 = the
    /// plugin's built-in defaults; any version that was once in force), or by
    /// default to the version in force before the current one. The current
    /// version's improvement becomes rolled back. Returns what is now in force.
    pub fn rollback_improvement(
        &self,
        plugin: &str,
        workspace: &WorkspaceId,
        target: &str,
        to_version: Option<u64>,
        reason: &str,
        now: Timestamp,
    ) -> Result<Applied, HostError> {
        let Some((current, doc_version)) = self.applied_doc(plugin, workspace, target)?.filter(|(a, _)| a.version > 0)
        else {
            return Err(invalid(
                "target",
                format!("nothing of {plugin}/{target:?} is applied in {workspace}: the built-in defaults are in force"),
            ));
        };
        let defaults = || Applied {
            target: target.to_string(),
            version: 0,
            improvement_id: None,
            params: Value::Null,
            applied_at: now,
            previous: None,
        };
        let restored = match to_version {
            None => current
                .previous
                .as_deref()
                .filter(|p| p.version > 0)
                .map_or_else(defaults, |p| Applied { applied_at: now, ..p.clone() }),
            Some(0) => defaults(),
            Some(v) if v == current.version => {
                return Err(invalid("version", format!("version {v} of {plugin}/{target:?} is already in force")));
            }
            Some(v) => {
                let name = PluginName::parse("plugin", plugin).map_err(HostError::Invalid)?;
                let found = self
                    .store()
                    .improvements(&ImprovementQuery {
                        workspace: Some(workspace.clone()),
                        plugin: Some(name),
                        target: Some(target.to_string()),
                        status: None,
                        limit: 10_000,
                    })?
                    .into_iter()
                    .find(|i| i.version == v)
                    .ok_or_else(|| invalid("version", format!("{plugin}/{target:?} has no version {v}")))?;
                if !matches!(
                    found.status,
                    ImprovementStatus::Applied | ImprovementStatus::Kept | ImprovementStatus::RolledBack
                ) {
                    return Err(invalid(
                        "version",
                        format!(
                            "version {v} of {plugin}/{target:?} was never in force (it is {})",
                            found.status.as_str()
                        ),
                    ));
                }
                Applied {
                    target: target.to_string(),
                    version: v,
                    improvement_id: Some(found.id),
                    params: found.params,
                    applied_at: now,
                    previous: Some(Box::new(shallow(&current))),
                }
            }
        };
        let mut transitions = Vec::new();
        if let Some(id) = current.improvement_id {
            let imp = self.store().improvement(workspace, id)?;
            if matches!(imp.status, ImprovementStatus::Applied | ImprovementStatus::Kept) {
                let note = json!({"decision": "rolled_back", "by": "person", "reason": reason, "restored_version": restored.version});
                transitions.push(Transition {
                    workspace: workspace.clone(),
                    id,
                    from: imp.status,
                    to: ImprovementStatus::RolledBack,
                    backtest: None,
                    note,
                });
            }
        }
        let key = self.applied_state_key(plugin, workspace, target)?;
        let state = StateChange {
            key,
            value: Some(serde_json::to_vec(&restored).expect("JSON values serialise")),
            expect: Expect::Version(doc_version),
        };
        self.store().commit(&Changes { state: vec![state], transitions, ..Default::default() }, now)?;
        Ok(restored)
    }
}
