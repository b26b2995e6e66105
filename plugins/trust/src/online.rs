//! The online update: what each recommendation and evaluation changes in the
//! plugin's state as it arrives (`meta`, `agent/<agent>`, `open/<id>`), and
//! how an outcome's status is read.

use std::collections::BTreeMap;

use learnloop_plugin_api::helpers::client_time;
use learnloop_plugin_api::{Context, Event, Expect, PluginError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Config;
use crate::score::{AgentDoc, HOUR};
use crate::{get_doc, put_doc};

/// The workspace-wide document `meta`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// Newest event time seen (µs); the plugin's notion of "now".
    pub newest: i64,
    /// Recommendations seen.
    pub recommendations: u64,
    /// Final evaluations seen.
    pub evaluated: u64,
    /// Approved (partial = half) among them.
    pub approved: f64,
}

impl Meta {
    /// The document as stored (its default before the first event).
    pub fn load(ctx: &mut dyn Context) -> Result<Meta, PluginError> {
        Ok(get_doc::<Meta>(ctx, "meta")?.0)
    }

    /// Approved share of the final evaluations (`None` before the first).
    pub fn approval_rate(&self) -> Option<f64> {
        (self.evaluated > 0).then(|| self.approved / self.evaluated as f64)
    }
}

/// An in-flight recommendation: `open/<prediction id>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Open {
    /// The recommendation's client event time (µs), if it had one.
    pub(crate) t: Option<i64>,
    /// Its stated confidence.
    pub(crate) c: Option<f64>,
}

/// Every agent document, in agent order.
pub fn load_agents(ctx: &mut dyn Context) -> Result<BTreeMap<String, AgentDoc>, PluginError> {
    let mut out = BTreeMap::new();
    let mut after: Option<String> = None;
    loop {
        let page = ctx.scan_state("agent/", after.as_deref(), 1000)?;
        let Some((last, _)) = page.last() else { break };
        after = Some(last.clone());
        for (k, s) in page {
            out.insert(k["agent/".len()..].to_string(), serde_json::from_value(s.value)?);
        }
    }
    Ok(out)
}

/// An agent's document, or a new one when the agent is unknown.
pub(crate) fn load_agent(ctx: &mut dyn Context, agent: &str) -> Result<Option<AgentDoc>, PluginError> {
    match ctx.get_state(&format!("agent/{agent}"))? {
        Some(s) => Ok(Some(serde_json::from_value(s.value)?)),
        None => Ok(None),
    }
}

/// The status of an outcome: its label when it is one of the statuses
/// (anything else is still pending), else from `success`, else from
/// `quality` (≥ 0.5 approved).
pub(crate) fn outcome_label(label: Option<&str>, success: Option<bool>, quality: Option<f64>) -> &'static str {
    match label {
        Some("approved") => "approved",
        Some("rejected") => "rejected",
        Some("partial") => "partial",
        Some(_) => "pending",
        None => match (success, quality) {
            (Some(true), _) => "approved",
            (Some(false), _) => "rejected",
            (None, Some(q)) if q >= 0.5 => "approved",
            (None, Some(_)) => "rejected",
            (None, None) => "pending",
        },
    }
}

/// The online update of one batch of events. Event times are the clients'
/// only ([`client_time`]): an event sent without one has no time for
/// timeliness, inactivity or the plugin's clock, so replays are identical.
pub(crate) fn on_events(cfg: &Config, ctx: &mut dyn Context, events: &[Event]) -> Result<(), PluginError> {
    let (mut meta, meta_expect) = get_doc::<Meta>(ctx, "meta")?;
    let mut agents: BTreeMap<String, (AgentDoc, Expect)> = BTreeMap::new();
    for e in events {
        let agent = match e {
            Event::Prediction(p) => &p.record.subject,
            Event::Outcome(o) => &o.subject,
        };
        if !agents.contains_key(agent) {
            let doc = get_doc::<AgentDoc>(ctx, &format!("agent/{agent}"))?;
            agents.insert(agent.clone(), doc);
        }
        let a = &mut agents.get_mut(agent).expect("loaded").0;
        match e {
            Event::Prediction(p) => {
                let r = &p.record;
                let t = client_time(r.event_time, p.ingested_at);
                meta.newest = meta.newest.max(t.unwrap_or(0));
                meta.recommendations += 1;
                if let Some(n) = r.payload.get("agent_name").and_then(Value::as_str) {
                    a.name = Some(n.to_string());
                }
                a.all.recommendations += 1;
                a.all.last_time = a.all.last_time.max(t.unwrap_or(0));
                let c = a.types.entry(r.kind.clone()).or_default();
                c.recommendations += 1;
                c.last_time = c.last_time.max(t.unwrap_or(0));
                put_doc(ctx, &format!("open/{}", r.id.as_str()), &Open { t, c: r.confidence }, Expect::Any)?;
            }
            Event::Outcome(o) => {
                let r = &o.record;
                let t = client_time(r.event_time, o.ingested_at);
                meta.newest = meta.newest.max(t.unwrap_or(0));
                let label = outcome_label(r.label.as_deref(), r.success, r.quality);
                if label == "pending" {
                    a.all.pending += 1;
                    a.types.entry(o.kind.clone()).or_default().pending += 1;
                    continue;
                }
                let y = match label {
                    "approved" => 1.0,
                    "partial" => 0.5,
                    _ => 0.0,
                };
                let key = format!("open/{}", r.prediction_id.as_str());
                let open = match ctx.get_state(&key)? {
                    Some(s) => {
                        ctx.delete_state(&key, Expect::Version(s.version))?;
                        Some(serde_json::from_value::<Open>(s.value)?)
                    }
                    None => None,
                };
                let latency = match (open.as_ref().and_then(|o| o.t), t) {
                    (Some(from), Some(to)) => Some(((to - from) as f64 / HOUR).max(0.0)),
                    _ => None,
                };
                let conf = open.as_ref().and_then(|o| o.c);
                a.evaluate(&o.kind, label, y, r.quality.unwrap_or(y), latency, conf, cfg, t.unwrap_or(0));
                meta.evaluated += 1;
                meta.approved += y;
            }
        }
    }
    for (agent, (doc, expect)) in agents {
        put_doc(ctx, &format!("agent/{agent}"), &doc, expect)?;
    }
    put_doc(ctx, "meta", &meta, meta_expect)
}
