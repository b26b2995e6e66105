//! What learning produces and how work is tracked: insights, alerts,
//! improvements and job runs.
//!
//! These are written by the host on a plugin's behalf, never by clients, so
//! they carry no raw-input form; their invariants (an improvement's lifecycle
//! transitions, severity order) live here so every store and every binary
//! enforces the same ones.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{PluginName, Timestamp, WorkspaceId};

/// How bad something is; ordered from least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing.
    Low,
    /// Worth looking at soon.
    Medium,
    /// Needs action.
    High,
    /// Needs action now.
    Critical,
}

/// Something a learning cycle found out, for people to read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Insight {
    /// Store-assigned id.
    pub id: i64,
    /// The tenant.
    pub workspace: WorkspaceId,
    /// The plugin that found it.
    pub plugin: PluginName,
    /// A stable machine-readable category, e.g. `failure_pattern`.
    pub kind: String,
    /// One line for people.
    pub title: String,
    /// The longer explanation.
    pub detail: String,
    /// How sure the plugin is, in `[0, 1]`.
    pub confidence: f64,
    /// Expected effect on the plugin's target metric (plugin-defined units).
    pub impact: f64,
    /// Supporting numbers.
    pub data: Value,
    /// When it was found.
    pub created_at: Timestamp,
}

/// Something that needs attention: drift, degradation, a failing job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Alert {
    /// Store-assigned id.
    pub id: i64,
    /// The tenant.
    pub workspace: WorkspaceId,
    /// The plugin that raised it.
    pub plugin: PluginName,
    /// How bad it is.
    pub severity: Severity,
    /// A stable machine-readable category, e.g. `feature_drift`.
    pub kind: String,
    /// What it is about (a model id, an agent id).
    pub subject: String,
    /// One paragraph for people.
    pub message: String,
    /// Alerts with the same key that are not yet acknowledged are one alert.
    pub dedup_key: String,
    /// Supporting numbers.
    pub data: Value,
    /// When it was first raised.
    pub created_at: Timestamp,
    /// When it was last raised again (deduplicated occurrences update this).
    pub last_seen_at: Timestamp,
    /// How many times it was raised while unacknowledged.
    pub occurrences: u64,
    /// When someone acknowledged it.
    pub acknowledged_at: Option<Timestamp>,
}

/// Where an improvement is in its lifecycle.
///
/// ```text
/// proposed -> backtested -> applied -> kept
///     |            |           \-> rolled_back
///     \------------+-> rejected
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImprovementStatus {
    /// Proposed by a learning cycle, not yet evaluated.
    Proposed,
    /// Scored on held-out outcomes; waiting for the policy or a person.
    Backtested,
    /// In force and being monitored.
    Applied,
    /// Monitoring finished without a regression; stays in force.
    Kept,
    /// Replaced by its predecessor after a live regression or by hand.
    RolledBack,
    /// Not applied: failed its backtest or was rejected by a person.
    Rejected,
}

impl ImprovementStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [ImprovementStatus; 6] = [
        ImprovementStatus::Proposed,
        ImprovementStatus::Backtested,
        ImprovementStatus::Applied,
        ImprovementStatus::Kept,
        ImprovementStatus::RolledBack,
        ImprovementStatus::Rejected,
    ];

    /// The wire name (`rolled_back`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ImprovementStatus::Proposed => "proposed",
            ImprovementStatus::Backtested => "backtested",
            ImprovementStatus::Applied => "applied",
            ImprovementStatus::Kept => "kept",
            ImprovementStatus::RolledBack => "rolled_back",
            ImprovementStatus::Rejected => "rejected",
        }
    }

    /// Parses the wire name, or says which names there are. `held` is
    /// accepted for [`ImprovementStatus::Backtested`]: the lifecycle report
    /// (its `held` list) and the history notes (`"decision": "held"`) call a
    /// backtested improvement that waits for a person "held", so a filter
    /// typed from them finds it.
    pub fn parse(field: &str, s: &str) -> Result<Self, crate::ValidationError> {
        if s == "held" {
            return Ok(ImprovementStatus::Backtested);
        }
        Self::ALL.into_iter().find(|x| x.as_str() == s).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|x| x.as_str()).collect();
            crate::ValidationError::new(field, format!("{s:?} is not one of {} (held = backtested)", names.join(", ")))
        })
    }

    /// Whether the lifecycle allows moving from `self` to `next`.
    pub fn can_become(self, next: ImprovementStatus) -> bool {
        use ImprovementStatus::*;
        matches!(
            (self, next),
            (Proposed, Backtested)
                | (Proposed, Rejected)
                | (Backtested, Applied)
                | (Backtested, Rejected)
                | (Applied, Kept)
                | (Applied, RolledBack)
                | (Kept, RolledBack)
        )
    }
}

/// A versioned proposal to change what a plugin serves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Improvement {
    /// Store-assigned id.
    pub id: i64,
    /// The tenant.
    pub workspace: WorkspaceId,
    /// The plugin whose parameters change.
    pub plugin: PluginName,
    /// Which parameter set changes, e.g. `calibration`.
    pub target: String,
    /// Version of the parameter set this would become (1, 2, ...).
    pub version: u64,
    /// Lifecycle position.
    pub status: ImprovementStatus,
    /// The new parameter set, serialised by the plugin.
    pub params: Value,
    /// Why it was proposed.
    pub evidence: Value,
    /// The metric it should move, e.g. `savings_mape`.
    pub metric: String,
    /// The expected change of that metric.
    pub expected_gain: f64,
    /// The backtest result, once scored.
    pub backtest: Option<Value>,
    /// When it was proposed.
    pub created_at: Timestamp,
    /// When its status last changed.
    pub updated_at: Timestamp,
    /// Every status it has had, oldest first, with what was known then
    /// (backtest, monitoring result, rollback evidence).
    #[serde(default)]
    pub history: Vec<ImprovementEvent>,
}

/// One step of an improvement's lifecycle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ImprovementEvent {
    /// The status it moved to.
    pub status: ImprovementStatus,
    /// When.
    pub at: Timestamp,
    /// Why, with the numbers (null when nothing was recorded).
    #[serde(default)]
    pub note: Value,
}

/// How a job run ended (or that it has not yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Still running (or its runner died; see the lease).
    Running,
    /// Finished and its results were applied.
    Succeeded,
    /// Finished with an error; nothing partial was applied.
    Failed,
    /// Stopped on shutdown before finishing; nothing partial was applied.
    Abandoned,
}

impl JobStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Abandoned => "abandoned",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "running" => JobStatus::Running,
            "succeeded" => JobStatus::Succeeded,
            "failed" => JobStatus::Failed,
            "abandoned" => JobStatus::Abandoned,
            _ => return None,
        })
    }
}

/// One run of one job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct JobRun {
    /// Store-assigned id.
    pub id: i64,
    /// The plugin whose job ran.
    pub plugin: PluginName,
    /// The job's name within the plugin.
    pub job: String,
    /// The scheduled slot (epoch microseconds) this run fills; `None` for a run started by hand.
    pub slot: Option<i64>,
    /// Who ran it: `scheduler@host:pid`, `cli`, `api`.
    pub runner: String,
    /// Lifecycle position.
    pub status: JobStatus,
    /// When it started.
    pub started_at: Timestamp,
    /// When it ended.
    pub finished_at: Option<Timestamp>,
    /// What the job reported.
    pub report: Option<Value>,
    /// Why it failed.
    pub error: Option<String>,
    /// Which attempt at this slot this was (1 for the first).
    pub attempt: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_parse_and_held_means_backtested() {
        for s in ImprovementStatus::ALL {
            assert_eq!(ImprovementStatus::parse("status", s.as_str()).unwrap(), s);
        }
        assert_eq!(ImprovementStatus::parse("status", "held").unwrap(), ImprovementStatus::Backtested);
        let e = ImprovementStatus::parse("status", "pending").unwrap_err();
        assert!(e.message.contains("backtested") && e.message.contains("held"), "{e:?}");
    }

    #[test]
    fn lifecycle_allows_only_documented_moves() {
        use ImprovementStatus::*;
        assert!(Proposed.can_become(Backtested));
        assert!(Applied.can_become(RolledBack));
        assert!(!Proposed.can_become(Applied), "nothing is applied without a backtest");
        assert!(!Rejected.can_become(Applied));
        assert!(!RolledBack.can_become(Applied));
    }

    #[test]
    fn severity_orders() {
        assert!(Severity::Critical > Severity::High && Severity::Medium > Severity::Low);
        assert_eq!(serde_json::to_string(&Severity::High).unwrap(), "\"high\"");
    }
}

/// An insight a plugin emits; the store assigns id and time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NewInsight {
    /// The tenant.
    pub workspace: WorkspaceId,
    /// The plugin that found it.
    pub plugin: PluginName,
    /// A stable machine-readable category.
    pub kind: String,
    /// One line for people.
    pub title: String,
    /// The longer explanation.
    #[serde(default)]
    pub detail: String,
    /// How sure the plugin is, in `[0, 1]`.
    pub confidence: f64,
    /// Expected effect on the plugin's target metric.
    #[serde(default)]
    pub impact: f64,
    /// Supporting numbers.
    #[serde(default)]
    pub data: Value,
}

/// An alert a plugin raises. While an alert with the same `dedup_key` is
/// unacknowledged, raising it again bumps its `occurrences` and
/// `last_seen_at` (and keeps the higher severity) instead of adding another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NewAlert {
    /// The tenant.
    pub workspace: WorkspaceId,
    /// The plugin that raised it.
    pub plugin: PluginName,
    /// How bad it is.
    pub severity: Severity,
    /// A stable machine-readable category.
    pub kind: String,
    /// What it is about.
    pub subject: String,
    /// One paragraph for people.
    pub message: String,
    /// Deduplication key; alerts with equal keys are one alert until acknowledged.
    pub dedup_key: String,
    /// Supporting numbers.
    #[serde(default)]
    pub data: Value,
}

/// A proposal a plugin's job makes; the store assigns id, version and time,
/// and it starts as [`ImprovementStatus::Proposed`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NewImprovement {
    /// The tenant.
    pub workspace: WorkspaceId,
    /// The plugin whose parameters change.
    pub plugin: PluginName,
    /// Which parameter set changes, e.g. `calibration`.
    pub target: String,
    /// The new parameter set.
    pub params: Value,
    /// Why it was proposed.
    #[serde(default)]
    pub evidence: Value,
    /// The metric it should move.
    pub metric: String,
    /// The expected change of that metric.
    pub expected_gain: f64,
}

impl NewInsight {
    /// Checks bounds: finite numbers, confidence in `[0, 1]`, non-empty kind and title.
    pub fn validate(&self) -> Result<(), crate::ValidationError> {
        check_text("kind", &self.kind, 128)?;
        check_text("title", &self.title, 1024)?;
        check_unit("confidence", self.confidence)?;
        check_finite("impact", self.impact)
    }
}

impl NewAlert {
    /// Checks bounds: non-empty kind, subject, message and dedup key.
    pub fn validate(&self) -> Result<(), crate::ValidationError> {
        check_text("kind", &self.kind, 128)?;
        check_text("subject", &self.subject, 256)?;
        check_text("message", &self.message, 16 * 1024)?;
        check_text("dedup_key", &self.dedup_key, 512)
    }
}

impl NewImprovement {
    /// Checks bounds: non-empty target and metric, finite expected gain.
    pub fn validate(&self) -> Result<(), crate::ValidationError> {
        check_text("target", &self.target, 128)?;
        check_text("metric", &self.metric, 128)?;
        check_finite("expected_gain", self.expected_gain)
    }
}

fn check_text(field: &str, s: &str, max: usize) -> Result<(), crate::ValidationError> {
    if s.trim().is_empty() || s.len() > max || s.contains('\0') {
        return Err(crate::ValidationError::new(field, format!("must be 1 to {max} bytes of text without NUL")));
    }
    Ok(())
}

fn check_finite(field: &str, x: f64) -> Result<(), crate::ValidationError> {
    if !x.is_finite() {
        return Err(crate::ValidationError::new(field, format!("must be a finite number, got {x}")));
    }
    Ok(())
}

fn check_unit(field: &str, x: f64) -> Result<(), crate::ValidationError> {
    check_finite(field, x)?;
    if !(0.0..=1.0).contains(&x) {
        return Err(crate::ValidationError::new(field, format!("must be between 0 and 1, got {x}")));
    }
    Ok(())
}

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read its workspace's data and plugin answers.
    Reader,
    /// Reader, plus ingest and plugin routes that change state.
    Writer,
    /// Everything, in every workspace: jobs, keys, any workspace's data.
    Admin,
}

impl Role {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Writer => "writer",
            Role::Admin => "admin",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "reader" => Role::Reader,
            "writer" => Role::Writer,
            "admin" => Role::Admin,
            _ => return None,
        })
    }
}

/// A stored API key (never the key itself: only its SHA-256 is stored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ApiKey {
    /// Store-assigned id.
    pub id: i64,
    /// A name for people ("ingest from billing").
    pub name: String,
    /// The first characters of the key, to recognise it in lists.
    pub prefix: String,
    /// The workspace it is limited to; `None` for admin keys (all workspaces).
    pub workspace: Option<WorkspaceId>,
    /// What it may do.
    pub role: Role,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it was revoked, if it was.
    pub revoked_at: Option<Timestamp>,
}
