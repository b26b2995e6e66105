//! The notification outbox, as both backends share it: the events the store
//! writes by itself beside their cause (an alert raised or acknowledged, an
//! improvement moved, a job run failed), the uid each notification gets,
//! and the queries and results of the deliverer.

use learnloop_core::{
    Alert, DeliveryStatus, Improvement, ImprovementStatus, JobRun, NewAlert, NewImprovement, NewNotification,
    PluginName, Severity, Timestamp, WorkspaceId,
};
use serde_json::json;

/// A fresh notification uid: `ntf_` and 32 hex digits from the system's
/// random source.
pub(crate) fn new_uid() -> String {
    let mut b = [0u8; 16];
    // getrandom only fails when the OS has no random source at all; the
    // time and a counter then still make the uid unique in this process.
    if getrandom::fill(&mut b).is_err() {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        b[..8].copy_from_slice(&Timestamp::now().as_micros().to_le_bytes());
        b[8..].copy_from_slice(&n.to_le_bytes());
    }
    let mut s = String::with_capacity(36);
    s.push_str("ntf_");
    for x in b {
        s.push_str(&format!("{x:02x}"));
    }
    s
}

/// `alert.raised` for an alert that was inserted (not folded into an open one).
pub(crate) fn alert_raised(a: &NewAlert, id: i64) -> NewNotification {
    NewNotification {
        workspace: Some(a.workspace.clone()),
        plugin: a.plugin.clone(),
        event: "alert.raised".into(),
        severity: a.severity,
        subject: a.subject.clone(),
        summary: a.message.clone(),
        dedup_key: a.dedup_key.clone(),
        link: format!("/api/v1/alerts?workspace={}&plugin={}", a.workspace, a.plugin),
        data: json!({"alert_id": id, "kind": a.kind, "data": a.data}),
    }
}

/// `alert.acknowledged` for an alert that was open until now.
pub(crate) fn alert_acknowledged(a: &Alert) -> NewNotification {
    NewNotification {
        workspace: Some(a.workspace.clone()),
        plugin: a.plugin.clone(),
        event: "alert.acknowledged".into(),
        severity: a.severity,
        subject: a.subject.clone(),
        summary: format!("acknowledged: {}", a.message),
        dedup_key: a.dedup_key.clone(),
        link: format!("/api/v1/alerts?workspace={}&plugin={}&include_acknowledged=true", a.workspace, a.plugin),
        data: json!({"alert_id": a.id, "kind": a.kind, "occurrences": a.occurrences}),
    }
}

/// `improvement.proposed` for a proposal just stored as `version`.
pub(crate) fn improvement_proposed(i: &NewImprovement, id: i64, version: u64) -> NewNotification {
    NewNotification {
        workspace: Some(i.workspace.clone()),
        plugin: i.plugin.clone(),
        event: "improvement.proposed".into(),
        severity: Severity::Low,
        subject: i.target.clone(),
        summary: format!(
            "{} {} version {version} proposed (metric {}, expected gain {})",
            i.plugin, i.target, i.metric, i.expected_gain
        ),
        dedup_key: format!("improvement/{}/{}/{version}", i.plugin, i.target),
        link: format!("/api/v1/improvements/{id}?workspace={}", i.workspace),
        data: json!({
            "improvement_id": id,
            "target": i.target,
            "version": version,
            "status": "proposed",
            "metric": i.metric,
            "expected_gain": i.expected_gain,
            "evidence": i.evidence,
        }),
    }
}

/// `improvement.<status>` for an improvement that just moved there.
pub(crate) fn improvement_moved(i: &Improvement) -> NewNotification {
    let severity = match i.status {
        ImprovementStatus::RolledBack => Severity::High,
        ImprovementStatus::Applied | ImprovementStatus::Rejected => Severity::Medium,
        _ => Severity::Low,
    };
    let what = match i.status {
        ImprovementStatus::Proposed => "proposed",
        ImprovementStatus::Backtested => "backtested",
        ImprovementStatus::Applied => "applied",
        ImprovementStatus::Kept => "kept after monitoring",
        ImprovementStatus::RolledBack => "rolled back",
        ImprovementStatus::Rejected => "rejected",
    };
    let note = i.history.last().map(|e| e.note.clone()).unwrap_or_default();
    NewNotification {
        workspace: Some(i.workspace.clone()),
        plugin: i.plugin.clone(),
        event: format!("improvement.{}", i.status.as_str()),
        severity,
        subject: i.target.clone(),
        summary: format!("{} {} version {} {what} (metric {})", i.plugin, i.target, i.version, i.metric),
        dedup_key: format!("improvement/{}/{}/{}", i.plugin, i.target, i.version),
        link: format!("/api/v1/improvements/{}?workspace={}", i.id, i.workspace),
        data: json!({
            "improvement_id": i.id,
            "target": i.target,
            "version": i.version,
            "status": i.status.as_str(),
            "metric": i.metric,
            "expected_gain": i.expected_gain,
            "backtest": i.backtest,
            "note": note,
        }),
    }
}

/// `job.failed` for a run that just finished failed.
pub(crate) fn job_failed(run: &JobRun) -> NewNotification {
    NewNotification {
        workspace: None,
        plugin: run.plugin.clone(),
        event: "job.failed".into(),
        severity: Severity::High,
        subject: format!("{}/{}", run.plugin, run.job),
        summary: format!(
            "job {}/{} failed (attempt {}): {}",
            run.plugin,
            run.job,
            run.attempt,
            run.error.as_deref().unwrap_or("no error recorded")
        ),
        dedup_key: format!("job/{}/{}", run.plugin, run.job),
        link: format!("/api/v1/jobs/runs?plugin={}&job={}", run.plugin, run.job),
        data: json!({
            "run_id": run.id,
            "job": run.job,
            "slot": run.slot,
            "attempt": run.attempt,
            "runner": run.runner,
            "error": run.error,
        }),
    }
}

/// Filters for [`Store::deliveries`](crate::Store::deliveries); all combine with AND.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeliveryQuery {
    /// Only deliveries in this status.
    pub status: Option<DeliveryStatus>,
    /// Only to this destination.
    pub destination: Option<String>,
    /// Only notifications of this workspace.
    pub workspace: Option<WorkspaceId>,
    /// Only notifications of this plugin.
    pub plugin: Option<PluginName>,
    /// At most this many (newest first); 0 means 100, at most 10,000.
    pub limit: usize,
}

/// What one delivery attempt came to.
#[derive(Debug, Clone, PartialEq)]
pub enum DeliveryResult {
    /// The destination accepted it.
    Delivered,
    /// It failed; try again at `at`.
    Retry {
        /// When the next attempt is due.
        at: Timestamp,
        /// What went wrong.
        error: String,
    },
    /// It failed for good (attempts used up, or a refusal retrying cannot fix).
    Dead {
        /// What went wrong.
        error: String,
    },
}

/// The outbox in numbers, for `/metrics` and `notifications list`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OutboxStats {
    /// Notifications not yet routed to destinations.
    pub unrouted: u64,
    /// When the oldest unrouted notification occurred.
    pub oldest_unrouted: Option<Timestamp>,
    /// Per destination and status, how many deliveries.
    pub deliveries: Vec<(String, DeliveryStatus, u64)>,
    /// Per destination, when its oldest pending delivery was routed.
    pub oldest_pending: Vec<(String, Timestamp)>,
}
