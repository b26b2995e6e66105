//! Retraining requests: `trigger_retrain` records a request with its
//! evidence, at most one per model and UTC day of the host's clock.
//!
//! State documents `retrain/<model>/<YYYY-MM-DD>`. A second trigger on the
//! same day returns the first request unchanged (`created: false`), so a
//! retried call or a second operator does not order a second retraining.
//!
//! Delivery (calling a training pipeline's webhook) is deliberately not
//! done here: plugins make no network calls. A deliverer reads
//! `GET /retrain/requests` (or a future host capability delivers them;
//! see the README).

use learnloop_plugin_api::{Context, Expect, PluginError, Timestamp};
use serde_json::{Value, json};

/// The UTC day (`YYYY-MM-DD`) of a time.
pub fn day(t: Timestamp) -> String {
    t.to_rfc3339().chars().take(10).collect()
}

/// Records a request for `model` with `evidence` unless one exists for
/// today; returns whether it was created and the stored request.
pub fn trigger(
    ctx: &mut dyn Context,
    model: &str,
    reason: Option<String>,
    evidence: Value,
) -> Result<(bool, Value), PluginError> {
    let now = ctx.now();
    let day = day(now);
    let key = format!("retrain/{model}/{day}");
    if key.len() > 512 {
        return Err(PluginError::invalid("model", "is too long for a retraining request"));
    }
    if let Some(s) = ctx.get_state(&key)? {
        return Ok((false, s.value));
    }
    let request = json!({
        "model": model,
        "day": day,
        "requested_at": now.to_rfc3339(),
        "reason": reason,
        "should_retrain": evidence["should_retrain"],
        "evidence": evidence,
        "delivery": "recorded: no webhook delivery in this version; read GET /api/v1/drift/retrain/requests",
    });
    ctx.put_state(&key, request.clone(), Expect::Absent)?;
    Ok((true, request))
}

/// Recorded requests, newest day first, optionally of one model.
pub fn list(ctx: &mut dyn Context, model: Option<&str>, limit: usize) -> Result<Vec<Value>, PluginError> {
    let prefix = match model {
        Some(m) => format!("retrain/{m}/"),
        None => "retrain/".to_string(),
    };
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = ctx.scan_state(&prefix, after.as_deref(), 1000)?;
        let Some((last, _)) = page.last() else { break };
        after = Some(last.clone());
        out.extend(page.into_iter().map(|(_, s)| s.value));
    }
    out.sort_by(|a, b| b["requested_at"].as_str().cmp(&a["requested_at"].as_str()));
    out.truncate(limit);
    Ok(out)
}
