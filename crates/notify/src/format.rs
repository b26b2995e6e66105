//! What each kind of destination receives: the webhook's JSON event and its
//! signature, a Slack message, a PagerDuty Events API v2 event.
//!
//! The webhook body (`WebhookEvent`) is the stable, documented schema:
//! `type`, `id`, `occurred_at`, `workspace`, `plugin`, `severity`,
//! `subject`, `summary`, `dedup_key`, `link`, `data`. Its headers:
//! `Idempotency-Key` (the notification's `id`, the same on every retry and
//! on a duplicate after a crash), `Learnloop-Event` (the type) and
//! `Learnloop-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.

use hmac::{Hmac, Mac};
use learnloop_core::{Notification, Severity};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::Sha256;

/// The webhook body: one event.
#[derive(Debug, Clone, Serialize)]
pub struct WebhookEvent<'a> {
    /// The event type (`alert.raised`, ...).
    #[serde(rename = "type")]
    pub kind: &'a str,
    /// The notification's id (`ntf_` and 32 hex digits); receivers deduplicate on it.
    pub id: &'a str,
    /// When its cause committed (RFC 3339).
    pub occurred_at: String,
    /// The workspace; null for installation-wide events.
    pub workspace: Option<&'a str>,
    /// The plugin.
    pub plugin: &'a str,
    /// `low`, `medium`, `high` or `critical`.
    pub severity: Severity,
    /// What it is about.
    pub subject: &'a str,
    /// One line for people.
    pub summary: &'a str,
    /// Stable for the thing it is about (an alert's dedup key).
    pub dedup_key: &'a str,
    /// The route that shows it (absolute with `[notify] public_url`).
    pub link: String,
    /// The evidence.
    pub data: &'a Value,
}

/// The link, absolute when a public URL is configured.
pub fn link(n: &Notification, public_url: &str) -> String {
    format!("{}{}", public_url.trim_end_matches('/'), n.link)
}

/// The webhook body of `n`.
pub fn webhook_event<'a>(n: &'a Notification, public_url: &str) -> WebhookEvent<'a> {
    WebhookEvent {
        kind: &n.event,
        id: &n.uid,
        occurred_at: n.occurred_at.to_rfc3339(),
        workspace: n.workspace.as_ref().map(|w| w.as_str()),
        plugin: n.plugin.as_str(),
        severity: n.severity,
        subject: &n.subject,
        summary: &n.summary,
        dedup_key: &n.dedup_key,
        link: link(n, public_url),
        data: &n.data,
    }
}

/// `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn signature(secret: &[u8], unix_seconds: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(unix_seconds.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(64);
    for b in digest {
        hex.push_str(&format!("{b:02x}"));
    }
    format!("t={unix_seconds},v1={hex}")
}

/// What a person should do next, by event type.
fn next_step(n: &Notification) -> &'static str {
    match n.event.as_str() {
        "alert.raised" => "Look at the evidence, then acknowledge the alert (POST /api/v1/alerts/{id}/ack).",
        "alert.acknowledged" => "Nothing: someone acknowledged it.",
        "retrain.requested" => "Retrain the model on recent data and deploy it as a new version.",
        "experiment.concluded" => "Promote the winning version, then stop the experiment.",
        "improvement.proposed" | "improvement.backtested" => {
            "Review the backtest, then approve or reject it (POST /api/v1/improvements/{id}/approve)."
        }
        "improvement.applied" => "Nothing unless outcomes get worse: it is monitored and rolled back by itself.",
        "improvement.rolled_back" => "Read why in its history; the previous version is in force again.",
        "job.failed" => "Read the run's error (learnloop jobs history); it is retried by itself.",
        _ => "Nothing: this is a test.",
    }
}

/// Up to eight numbers of the evidence that matter, as `key: value` pairs
/// (top-level numbers first, then those one level down).
fn numbers(data: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let walk = |prefix: &str, v: &Value, out: &mut Vec<(String, String)>| {
        if let Value::Object(m) = v {
            for (k, v) in m {
                if out.len() >= 8 {
                    break;
                }
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                match v {
                    Value::Number(x) => out.push((key, fmt_number(x))),
                    Value::Bool(b) => out.push((key, b.to_string())),
                    Value::String(s) if s.len() <= 64 && !k.ends_with("_id") => out.push((key, s.clone())),
                    _ => {}
                }
            }
        }
    };
    walk("", data, &mut out);
    if let Value::Object(m) = data {
        for (k, v) in m {
            if v.is_object() && out.len() < 8 {
                walk(k, v, &mut out);
            }
        }
    }
    out
}

fn fmt_number(x: &serde_json::Number) -> String {
    match x.as_f64() {
        Some(f) if x.is_f64() => {
            if f.abs() >= 1000.0 || f == f.trunc() {
                format!("{f:.0}")
            } else {
                format!("{f:.4}")
            }
        }
        _ => x.to_string(),
    }
}

/// A Slack incoming-webhook message: a `text` fallback and blocks a person
/// reads (what happened, severity, the numbers that matter, what to do).
pub fn slack_message(n: &Notification, public_url: &str) -> Value {
    let icon = match n.severity {
        Severity::Critical => ":rotating_light:",
        Severity::High => ":red_circle:",
        Severity::Medium => ":large_orange_circle:",
        Severity::Low => ":large_blue_circle:",
    };
    let sev = format!("{:?}", n.severity).to_uppercase();
    let title = format!("{icon} [{sev}] {} — {} / {}", n.event, n.plugin, n.subject);
    let ws = n.workspace.as_ref().map_or("(all workspaces)".to_string(), |w| w.to_string());
    let mut fields = vec![
        json!({"type": "mrkdwn", "text": format!("*Workspace*\n{}", escape(&ws))}),
        json!({"type": "mrkdwn", "text": format!("*Severity*\n{sev}")}),
    ];
    for (k, v) in numbers(&n.data) {
        fields.push(json!({"type": "mrkdwn", "text": format!("*{}*\n{}", escape(&k), escape(&v))}));
    }
    fields.truncate(10); // Slack's limit per section
    let link = link(n, public_url);
    let link_text = if link.starts_with("http") { format!("<{link}|Open in learnloop>") } else { format!("`{link}`") };
    json!({
        "text": format!("[{sev}] {} {}: {}", n.event, n.subject, n.summary),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": truncate(&title, 150), "emoji": true}},
            {"type": "section", "text": {"type": "mrkdwn", "text": escape(&truncate(&n.summary, 2900))}},
            {"type": "section", "fields": fields},
            {"type": "section", "text": {"type": "mrkdwn", "text": format!("*Next:* {}\n{link_text}", next_step(n))}},
            {"type": "context", "elements": [
                {"type": "mrkdwn", "text": format!("learnloop · {} · {}", n.uid, n.occurred_at.to_rfc3339())}
            ]}
        ]
    })
}

/// Slack's three escapes in mrkdwn text.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut t: String = s.chars().take(max - 1).collect();
    t.push('…');
    t
}

/// A PagerDuty Events API v2 event: `resolve` for an acknowledged alert,
/// `trigger` for everything else, `dedup_key` from the alert's dedup key
/// (so the resolve closes the incident the trigger opened).
pub fn pagerduty_event(n: &Notification, routing_key: &str, public_url: &str) -> Value {
    let dedup_key = truncate(
        &format!("learnloop/{}/{}/{}", n.workspace.as_ref().map_or("-", |w| w.as_str()), n.plugin, n.dedup_key),
        255,
    );
    if n.event == "alert.acknowledged" {
        return json!({"routing_key": routing_key, "event_action": "resolve", "dedup_key": dedup_key});
    }
    let severity = match n.severity {
        Severity::Critical => "critical",
        Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low => "info",
    };
    let source = format!("learnloop/{}/{}", n.workspace.as_ref().map_or("-", |w| w.as_str()), n.plugin);
    let mut event = json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "payload": {
            "summary": truncate(&format!("{}: {}", n.subject, n.summary), 1024),
            "source": source,
            "severity": severity,
            "timestamp": n.occurred_at.to_rfc3339(),
            "component": n.plugin.as_str(),
            "group": n.workspace.as_ref().map_or("all", |w| w.as_str()),
            "class": n.event,
            "custom_details": {"event_id": n.uid, "next_step": next_step(n), "data": n.data},
        },
    });
    let link = link(n, public_url);
    if link.starts_with("http") {
        event["links"] = json!([{"href": link, "text": "Open in learnloop"}]);
    }
    event
}
