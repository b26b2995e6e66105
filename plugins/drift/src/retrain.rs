//! Retraining requests: `trigger_retrain` records a request with its
//! evidence, at most one per model and UTC day of the host's clock.
//!
//! State documents `retrain/<model>/<YYYY-MM-DD>`. A second trigger on the
//! same day returns the first request unchanged (`created: false`), so a
//! retried call or a second operator does not order a second retraining.
//!
//! Delivery: a request recorded now is also a `retrain.requested`
//! notification, written to the host's outbox in the same commit and
//! delivered by the host to the configured destinations (a training
//! pipeline's webhook, Slack, PagerDuty); plugins make no network calls.
//! The daily job files requests by itself (`auto_retrain = "request"`), at
//! most one per model within `retrain_cooldown_days` ([`cooling_down`]).

use learnloop_plugin_api::JsonSchema;
use learnloop_plugin_api::{Context, Expect, NotificationDraft, PluginError, Severity, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A recorded retraining request (state `retrain/<model>/<day>`).
///
/// The evidence is kept as it was recorded: its shape is that of the
/// version that recorded it (the retraining decision changed over time),
/// so it is read back untouched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RetrainRequest {
    /// The model.
    pub model: String,
    /// The UTC day of the host's clock (`YYYY-MM-DD`).
    #[schemars(extend("format" = "date"))]
    pub day: String,
    /// When it was recorded (RFC 3339, the host's clock).
    #[schemars(with = "learnloop_plugin_api::Timestamp")]
    pub requested_at: String,
    /// The caller's reason.
    #[serde(default)]
    pub reason: Option<String>,
    /// Whether the evidence recommended retraining.
    #[serde(default)]
    pub should_retrain: bool,
    /// The evidence: the retraining decision, the drift check in brief and
    /// the current window's performance (`Evidence` in this version; a
    /// request recorded by an older version keeps the shape it had then,
    /// so its schema is any JSON value).
    #[serde(default)]
    pub evidence: Value,
    /// How it is delivered.
    #[serde(default)]
    pub delivery: String,
}

/// The UTC day (`YYYY-MM-DD`) of a time.
pub fn day(t: Timestamp) -> String {
    t.to_rfc3339().chars().take(10).collect()
}

/// Records a request for `model` with `evidence` unless one exists for
/// today; returns whether it was created and the stored request.
pub fn trigger<E: Serialize>(
    ctx: &mut dyn Context,
    model: &str,
    reason: Option<String>,
    should_retrain: bool,
    evidence: &E,
) -> Result<(bool, RetrainRequest), PluginError> {
    let now = ctx.now();
    let day = day(now);
    let key = format!("retrain/{model}/{day}");
    if key.len() > 512 {
        return Err(PluginError::invalid("model", "is too long for a retraining request"));
    }
    if let Some(s) = ctx.get_state(&key)? {
        return Ok((false, serde_json::from_value(s.value)?));
    }
    let request = RetrainRequest {
        model: model.to_string(),
        day,
        requested_at: now.to_rfc3339(),
        reason,
        should_retrain,
        evidence: serde_json::to_value(evidence)?,
        delivery: "notified: retrain.requested to the destinations in [[notify.destinations]]".into(),
    };
    ctx.put_state(&key, serde_json::to_value(&request)?, Expect::Absent)?;
    let why = match (&request.reason, request.should_retrain) {
        (Some(r), _) => r.clone(),
        (None, true) => "the drift check's evidence says the model should be retrained".into(),
        (None, false) => "requested by hand; the evidence does not call for it".into(),
    };
    let reasons: Vec<String> = request.evidence["reasons"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let summary = if reasons.is_empty() {
        format!("Retraining requested for model {model}: {why}.")
    } else {
        format!("Retraining requested for model {model}: {why}. Evidence: {}.", reasons.join("; "))
    };
    ctx.emit_notification(NotificationDraft {
        event: "retrain.requested".into(),
        severity: if should_retrain { Severity::High } else { Severity::Medium },
        subject: model.to_string(),
        summary,
        dedup_key: format!("retrain/{model}/{}", request.day),
        link: format!("/api/v1/drift/retrain/requests?model={model}&workspace={}", ctx.workspace()),
        data: serde_json::json!({
            "model": model,
            "day": request.day,
            "reason": request.reason,
            "should_retrain": should_retrain,
            "evidence": request.evidence,
        }),
    })?;
    Ok((true, request))
}

/// The latest request of `model` if it was made less than `days` days
/// before now (the host's clock): the daily job files none meanwhile.
pub fn cooling_down(ctx: &mut dyn Context, model: &str, days: f64) -> Result<Option<RetrainRequest>, PluginError> {
    let latest = list(ctx, Some(model), 1)?.into_iter().next();
    let now = ctx.now();
    Ok(latest.filter(|r| {
        Timestamp::parse("requested_at", &r.requested_at)
            .map(|t| ((now.as_micros() - t.as_micros()) as f64) < days * 86_400e6)
            .unwrap_or(false)
    }))
}

/// Recorded requests, newest day first, optionally of one model.
pub fn list(ctx: &mut dyn Context, model: Option<&str>, limit: usize) -> Result<Vec<RetrainRequest>, PluginError> {
    let prefix = match model {
        Some(m) => format!("retrain/{m}/"),
        None => "retrain/".to_string(),
    };
    let mut out: Vec<RetrainRequest> = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = ctx.scan_state(&prefix, after.as_deref(), 1000)?;
        let Some((last, _)) = page.last() else { break };
        after = Some(last.clone());
        for (_, s) in page {
            out.push(serde_json::from_value(s.value)?);
        }
    }
    out.sort_by(|a, b| b.requested_at.cmp(&a.requested_at));
    out.truncate(limit);
    Ok(out)
}
