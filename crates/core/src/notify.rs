//! Notifications: the events learnloop tells the outside world about, and
//! their delivery to each configured destination.
//!
//! A [`NewNotification`] is written to the store's outbox in the same
//! transaction as what caused it (an alert raised, an improvement moved, a
//! retraining request, a failed job), so a notification exists exactly when
//! its cause committed. A deliverer then routes each one to the
//! destinations whose filters it passes, which makes one [`Delivery`] per
//! (notification, destination) with its own attempts and status.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{PluginName, Severity, Timestamp, WorkspaceId};

/// The event types learnloop emits. A destination's `events` filter names
/// them, or a prefix with `*` (`alert.*`).
pub const EVENT_TYPES: &[(&str, &str)] = &[
    ("alert.raised", "a new alert (not a repeat of an open one with the same dedup key)"),
    ("alert.acknowledged", "an open alert was acknowledged (PagerDuty: resolve)"),
    ("retrain.requested", "a retraining request was filed for a model"),
    ("experiment.concluded", "an A/B test found a winner"),
    ("improvement.proposed", "a learning cycle proposed new parameters"),
    ("improvement.backtested", "a proposal was scored on held-out outcomes"),
    ("improvement.applied", "parameters were put in force"),
    ("improvement.kept", "applied parameters passed monitoring"),
    ("improvement.rolled_back", "applied parameters were rolled back"),
    ("improvement.rejected", "a proposal was rejected (backtest or a person)"),
    ("job.failed", "a scheduled or manual job run failed"),
    ("test", "sent by `learnloop notifications test`"),
];

/// Whether `t` is one of [`EVENT_TYPES`].
pub fn is_event_type(t: &str) -> bool {
    EVENT_TYPES.iter().any(|(name, _)| *name == t)
}

/// Whether a filter entry (`alert.raised`, `alert.*`, `*`) matches `event`.
pub fn event_matches(pattern: &str, event: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => event.starts_with(prefix),
        None => pattern == event,
    }
}

/// An event to put in the outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewNotification {
    /// The workspace it concerns; `None` for installation-wide events
    /// (`job.failed`).
    pub workspace: Option<WorkspaceId>,
    /// The plugin it concerns.
    pub plugin: PluginName,
    /// The event type, one of [`EVENT_TYPES`].
    pub event: String,
    /// How bad it is (events that are not alerts carry the severity of
    /// what they report: a retraining request that of its drift).
    pub severity: Severity,
    /// What it is about (a model id, an agent id, an improvement target).
    pub subject: String,
    /// One line for people.
    pub summary: String,
    /// Alerts' dedup key (PagerDuty's `dedup_key`); other events a key of
    /// their own, stable for the thing they are about.
    pub dedup_key: String,
    /// The route that shows it (`/api/v1/alerts?...`).
    pub link: String,
    /// The evidence.
    #[serde(default)]
    pub data: Value,
}

impl NewNotification {
    /// Checks the event type and bounds.
    pub fn validate(&self) -> Result<(), crate::ValidationError> {
        if !is_event_type(&self.event) {
            let known: Vec<&str> = EVENT_TYPES.iter().map(|(n, _)| *n).collect();
            return Err(crate::ValidationError::new(
                "event",
                format!("unknown event type {:?}; known: {}", self.event, known.join(", ")),
            ));
        }
        for (field, s, max) in [
            ("subject", &self.subject, 256),
            ("summary", &self.summary, 16 * 1024),
            ("dedup_key", &self.dedup_key, 512),
            ("link", &self.link, 2048),
        ] {
            if s.trim().is_empty() || s.len() > max || s.contains('\0') {
                return Err(crate::ValidationError::new(
                    field,
                    format!("must be 1 to {max} bytes of text without NUL"),
                ));
            }
        }
        Ok(())
    }
}

/// An event in the outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Notification {
    /// Store-assigned id.
    pub id: i64,
    /// Its stable identity for receivers (`ntf_` and 32 hex digits): the
    /// webhook's `id`, and with the destination its idempotency key.
    pub uid: String,
    /// The workspace it concerns; absent for installation-wide events.
    pub workspace: Option<WorkspaceId>,
    /// The plugin it concerns.
    pub plugin: PluginName,
    /// The event type.
    pub event: String,
    /// How bad it is.
    pub severity: Severity,
    /// What it is about.
    pub subject: String,
    /// One line for people.
    pub summary: String,
    /// Deduplication key.
    pub dedup_key: String,
    /// The route that shows it.
    pub link: String,
    /// The evidence.
    pub data: Value,
    /// When its cause committed.
    pub occurred_at: Timestamp,
}

/// Where a delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Waiting for its next attempt.
    Pending,
    /// The destination accepted it (2xx).
    Delivered,
    /// Gave up after the configured attempts (or a permanent refusal).
    Dead,
}

impl DeliveryStatus {
    /// Every status.
    pub const ALL: [DeliveryStatus; 3] = [DeliveryStatus::Pending, DeliveryStatus::Delivered, DeliveryStatus::Dead];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Dead => "dead",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// One notification on its way to one destination.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Delivery {
    /// Store-assigned id (what `notifications retry` takes).
    pub id: i64,
    /// The destination's name in `[[notify.destinations]]`.
    pub destination: String,
    /// Where it is.
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: Option<Timestamp>,
    /// The last attempt's failure, if any.
    pub last_error: Option<String>,
    /// When it was routed to the destination.
    pub created_at: Timestamp,
    /// When it was delivered or given up.
    pub finished_at: Option<Timestamp>,
    /// The notification.
    pub notification: Notification,
}
