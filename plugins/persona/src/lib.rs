//! The `persona` plugin: learns a user's facets, goals and preferences from
//! their interactions with an assistant (seed 002's hypothesize/execute
//! learning loop) and their feedback on its answers (seed 003's preference
//! tracker); optionally enhanced by a local Ollama model through the host's
//! LLM service, always working without one.
//!
//! Records (subject = user id):
//! * **execute** — a prediction of kind `interaction`: the hypotheses the
//!   user was offered (`payload.hypotheses`: `[{id, text, confidence}]`),
//!   the input (`payload.input_text`), the chosen one (`label`, e.g. `h1`)
//!   and optionally `payload.task_type`. `POST /hypothesize` returns one
//!   ready to send.
//! * **response** — a prediction of any other kind: an assistant answer for
//!   the task type `kind` by the model `label` (or `payload.model`), with
//!   `payload.response_length`.
//! * **feedback** — an outcome of a response: `label` thumbs_up /
//!   thumbs_down / rating (`value` 1–5), or just `success`; `feedback` is the
//!   comment. An outcome of an interaction with `success: false` undoes that
//!   interaction's facet changes.
//!
//! State (reproducible from history by replay when no LLM is configured;
//! with one, replay asks it again):
//! * `user/<user>` — [`persona::UserDoc`]: facets, goal and preference
//!   memories with validity intervals, recent interactions, feedback learner;
//! * `hist/<user>/<interaction>` — the HISTORY memory and persona-update log
//!   entry of one interaction;
//! * `resp/<response>` — a response's model and task until its feedback;
//! * `train/h/<seq>`, `train/p/<seq>` — training data in the seed's
//!   formats (hypotheses_data.jsonl, persona_updates.jsonl) unless
//!   `training_data = false`;
//! * `meta` — totals.

#![deny(missing_docs)]

pub mod config;
pub mod llm;
pub mod persona;
pub mod rules;

use std::collections::BTreeMap;

use learnloop_plugin_api::core::RecordType;
use learnloop_plugin_api::{
    Context, Event, Expect, InsightDraft, JobSpec, KindSpec, Manifest, Plugin, PluginError, Record, RouteRequest,
    RouteResponse, RouteSpec, StoredOutcome, StoredPrediction, ValidationError, abi, parse_config,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub use config::Config;
use llm::LlmStatus;
use persona::{Memory, MemoryType, Recent, UserDoc, round4, ts};
use rules::Hypothesis;

/// The prediction kind of an executed interaction.
pub const INTERACTION: &str = "interaction";

/// Workspace totals, `meta`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// Users seen.
    pub users: u64,
    /// Interactions executed.
    pub interactions: u64,
    /// Responses recorded.
    pub responses: u64,
    /// Feedback received.
    pub feedback: u64,
    /// Interactions analysed by the LLM.
    pub analysed_by_llm: u64,
    /// Interactions analysed by rules, by why the LLM was not used.
    pub rules_because: BTreeMap<String, u64>,
    /// Training records written (hypothesis selections, persona updates).
    pub training_hypotheses: u64,
    /// Persona update training records.
    pub training_updates: u64,
    /// Positive / negative training labels.
    pub training_negative: u64,
}

/// A response awaiting feedback, `resp/<id>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Resp {
    user: String,
    task: String,
    model: String,
    length: Option<f64>,
}

/// The plugin.
#[derive(Debug, Default)]
pub struct PersonaPlugin {
    config: Config,
}

pub(crate) use learnloop_plugin_api::state::{get_doc, put_doc};

use learnloop_plugin_api::state::scan_all;

/// The client's event time (µs), if it sent one. The store fills a missing
/// event time with the ingestion time; that is the wall clock, which plugin
/// state must not depend on (replay and the conformance suite compare it),
/// so such events advance no clock and count in no time-of-day bucket.
fn event_time(
    event_time: Option<learnloop_plugin_api::Timestamp>,
    ingested: learnloop_plugin_api::Timestamp,
) -> Option<i64> {
    event_time.filter(|t| *t != ingested).map(learnloop_plugin_api::Timestamp::as_micros)
}

fn user_key(user: &str) -> String {
    format!("user/{user}")
}

fn q_usize(req: &RouteRequest, name: &str, default: usize, max: usize) -> Result<usize, PluginError> {
    match req.query.get(name) {
        None => Ok(default),
        Some(s) => s
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| PluginError::invalid(name, format!("expected an integer in 1..={max}"))),
    }
}

fn q_f64(req: &RouteRequest, name: &str, default: f64) -> Result<f64, PluginError> {
    match req.query.get(name) {
        None => Ok(default),
        Some(s) => s
            .parse::<f64>()
            .ok()
            .filter(|v| (0.0..=1.0).contains(v))
            .ok_or_else(|| PluginError::invalid(name, format!("{s:?} is not a number in [0, 1]"))),
    }
}

fn q_bool(req: &RouteRequest, name: &str) -> Result<bool, PluginError> {
    match req.query.get(name).map(String::as_str) {
        None | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") => Ok(true),
        Some(s) => Err(PluginError::invalid(name, format!("{s:?} is not true or false"))),
    }
}

/// Cosine similarity (0 when either vector is zero or lengths differ).
fn cosine(a: &[f32], b: &[f32]) -> f64 {
    if a.len() != b.len() {
        return 0.0;
    }
    let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (*x as f64, *y as f64);
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 { 0.0 } else { dot / (na.sqrt() * nb.sqrt()) }
}

/// A hypothesis as JSON.
fn hyp_json(h: &Hypothesis) -> Value {
    json!({"id": h.id, "text": h.text, "confidence": h.confidence})
}

/// Validates a string field of a payload.
fn payload_str<'a>(
    payload: &'a Value,
    field: &str,
    max: usize,
    required: bool,
) -> Result<Option<&'a str>, ValidationError> {
    match payload.get(field) {
        None | Some(Value::Null) if !required => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() && s.chars().count() <= max => Ok(Some(s)),
        _ => Err(ValidationError::new(
            format!("payload.{field}"),
            format!("expected a non-empty string of at most {max} characters"),
        )),
    }
}

/// The hypotheses of an interaction payload (validated before storing).
fn parse_hypotheses(payload: &Value) -> Result<Vec<Hypothesis>, ValidationError> {
    let Some(list) = payload.get("hypotheses").and_then(Value::as_array) else {
        return Err(ValidationError::new(
            "payload.hypotheses",
            "expected an array of {id, text, confidence} (the hypotheses offered)",
        ));
    };
    if list.is_empty() || list.len() > 10 {
        return Err(ValidationError::new("payload.hypotheses", "expected 1 to 10 hypotheses"));
    }
    let mut out: Vec<Hypothesis> = Vec::new();
    for (i, h) in list.iter().enumerate() {
        let id = h.get("id").and_then(Value::as_str).filter(|s| !s.is_empty() && s.len() <= 32);
        let Some(id) = id else {
            return Err(ValidationError::new(
                format!("payload.hypotheses[{i}].id"),
                "expected a non-empty string of at most 32 bytes",
            ));
        };
        if out.iter().any(|o| o.id == id) {
            return Err(ValidationError::new(format!("payload.hypotheses[{i}].id"), format!("{id:?} appears twice")));
        }
        let text = h.get("text").and_then(Value::as_str).filter(|s| !s.trim().is_empty() && s.chars().count() <= 500);
        let Some(text) = text else {
            return Err(ValidationError::new(
                format!("payload.hypotheses[{i}].text"),
                "expected a non-empty string of at most 500 characters",
            ));
        };
        let c = h.get("confidence").and_then(Value::as_f64).filter(|c| (0.0..=1.0).contains(c));
        let Some(c) = c else {
            return Err(ValidationError::new(
                format!("payload.hypotheses[{i}].confidence"),
                "expected a number in [0, 1]",
            ));
        };
        out.push(Hypothesis { id: id.into(), text: text.into(), confidence: c });
    }
    Ok(out)
}

/// The feedback score in `[0, 1]` of an outcome (validated before storing).
fn feedback_score(
    label: Option<&str>,
    value: Option<f64>,
    success: Option<bool>,
    quality: Option<f64>,
) -> Result<f64, ValidationError> {
    match label {
        Some("thumbs_up") | Some("thumbs_down") => {
            let up = label == Some("thumbs_up");
            if success.is_some_and(|s| s != up) {
                return Err(ValidationError::new(
                    "success",
                    format!("contradicts label {:?}", label.unwrap_or_default()),
                ));
            }
            Ok(if up { 1.0 } else { 0.0 })
        }
        Some("rating") => match value {
            Some(v) if (1.0..=5.0).contains(&v) && v.fract() == 0.0 => Ok((v - 1.0) / 4.0),
            _ => Err(ValidationError::new("value", "a rating needs value = 1, 2, 3, 4 or 5 stars")),
        },
        Some(other) => Err(ValidationError::new(
            "label",
            format!("{other:?} is not feedback; expected thumbs_up, thumbs_down or rating"),
        )),
        None => match (success, quality) {
            (_, Some(q)) if (0.0..=1.0).contains(&q) => Ok(q),
            (_, Some(_)) => Err(ValidationError::new("quality", "must lie in [0, 1]")),
            (Some(s), None) => Ok(if s { 1.0 } else { 0.0 }),
            (None, None) => Err(ValidationError::new(
                "label",
                "feedback needs label thumbs_up / thumbs_down / rating (with value 1–5), success or quality",
            )),
        },
    }
}

impl PersonaPlugin {
    /// The active configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    fn load_user(&self, ctx: &mut dyn Context, user: &str) -> Result<Option<UserDoc>, PluginError> {
        Ok(match ctx.get_state(&user_key(user))? {
            Some(s) => {
                let mut u: UserDoc = serde_json::from_value(s.value)?;
                u.ensure_facets(&self.config);
                Some(u)
            }
            None => None,
        })
    }

    /// What the hypothesizer and the LLM know about a user.
    fn context_json(&self, u: &UserDoc) -> Value {
        let cfg = &self.config;
        json!({
            "persona_facets": u.facets,
            "interaction_count": u.interaction_count,
            "recent_goals": u.active(MemoryType::Goal, cfg).iter().take(5).map(|m| m.content.clone()).collect::<Vec<_>>(),
            "preferences": u.active(MemoryType::Preference, cfg).iter().take(10).map(|m| m.content.clone()).collect::<Vec<_>>(),
            "recent_history": u.recent.iter().rev().take(cfg.context_history).map(|r| r.content.clone()).collect::<Vec<_>>(),
        })
    }

    fn rule_hypotheses(&self, u: &UserDoc, input: &str) -> Vec<Hypothesis> {
        let cfg = &self.config;
        let ctx = rules::Context {
            facets: &u.facets,
            goals: u.active(MemoryType::Goal, cfg).iter().map(|m| m.content.clone()).collect(),
            preferences: u
                .active(MemoryType::Preference, cfg)
                .iter()
                .filter(|m| !m.avoid)
                .filter_map(|m| Some((m.item.clone()?, m.category.clone()?)))
                .collect(),
        };
        rules::hypothesize(input, &ctx)
    }

    fn hypothesize(&self, ctx: &mut dyn Context, body: &Value) -> Result<RouteResponse, PluginError> {
        let user = body.get("user_id").and_then(Value::as_str).filter(|s| !s.is_empty() && s.len() <= 128);
        let Some(user) = user else {
            return Err(PluginError::invalid("user_id", "expected a non-empty string of at most 128 bytes"));
        };
        let input = body
            .get("input_text")
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty() && s.chars().count() <= 2000);
        let Some(input) = input else {
            return Err(PluginError::invalid("input_text", "expected a non-empty string of at most 2000 characters"));
        };
        let task = match body.get("task_type") {
            None | Some(Value::Null) => None,
            Some(Value::String(t)) if !t.is_empty() && t.len() <= 64 => Some(t.clone()),
            _ => return Err(PluginError::invalid("task_type", "expected a string of at most 64 bytes")),
        };
        let u = self.load_user(ctx, user)?.unwrap_or_else(|| UserDoc::new(&self.config));
        let context = self.context_json(&u);
        let (hyps, status) = if self.config.use_llm {
            match llm::hypothesize(ctx, input, &context) {
                Ok(h) => (h, LlmStatus::Used),
                Err(s) => (self.rule_hypotheses(&u, input), s),
            }
        } else {
            (self.rule_hypotheses(&u, input), LlmStatus::Disabled)
        };
        let mut payload = json!({"input_text": input, "hypotheses": hyps.iter().map(hyp_json).collect::<Vec<_>>()});
        if let Some(t) = &task {
            payload["task_type"] = json!(t);
        }
        Ok(RouteResponse::ok(json!({
            "user_id": user,
            "input_text": input,
            "hypotheses": hyps.iter().map(hyp_json).collect::<Vec<_>>(),
            "source": if status == LlmStatus::Used { "llm" } else { "rules" },
            "llm": status.label(),
            "context": context,
            "execute": {
                "note": "send this prediction (with a new id and `label` set to the chosen hypothesis id) to POST /api/v1/predictions to execute it",
                "record": {"type": "prediction", "plugin": "persona", "subject": user, "kind": INTERACTION, "label": "h1", "payload": payload},
            },
        })))
    }

    /// The online update for one executed interaction.
    fn execute(
        &self,
        ctx: &mut dyn Context,
        u: &mut UserDoc,
        meta: &mut Meta,
        p: &StoredPrediction,
        llm_allowed: bool,
    ) -> Result<(), PluginError> {
        let cfg = &self.config;
        let r = &p.record;
        let t = u.saw(event_time(r.event_time, p.ingested_at));
        let input = r.payload.get("input_text").and_then(Value::as_str).unwrap_or_default().to_string();
        let hyps = parse_hypotheses(&r.payload).map_err(PluginError::from)?;
        let selected_id = r.label.clone().unwrap_or_default();
        let selected = hyps
            .iter()
            .find(|h| h.id == selected_id)
            .cloned()
            .ok_or_else(|| PluginError::invalid("label", "not one of the hypotheses"))?;
        let context = self.context_json(u);
        let id = r.id.as_str().to_string();

        // Analysis: the LLM when allowed and its answer validates, else rules.
        let interaction = json!({"input_text": input, "hypotheses": hyps.iter().map(hyp_json).collect::<Vec<_>>(), "selected_id": selected_id});
        let analysis = if !cfg.use_llm {
            Err(LlmStatus::Disabled)
        } else if !llm_allowed {
            Err(LlmStatus::SkippedBatch)
        } else {
            llm::analyse(ctx, cfg, &interaction, &u.facets)
        };
        let (deltas, goals, prefs, status) = match analysis {
            Ok(a) => (a.facet_deltas, a.goals, a.preferences, LlmStatus::Used),
            Err(status) => {
                if let LlmStatus::Malformed(why) = &status {
                    ctx.log(
                        learnloop_plugin_api::LogLevel::Warn,
                        &format!("LLM analysis of interaction {id} was malformed ({why}); used rules"),
                    );
                }
                let deltas =
                    rules::facet_deltas(&cfg.facets, &cfg.selection_facets, cfg.facet_delta, &selected_id, &input);
                let goals: Vec<String> = rules::extract_goal(&selected.text).into_iter().collect();
                let mut prefs: Vec<(String, String, bool)> = Vec::new();
                // The user's own words first: "using podman instead of docker"
                // outweighs a hypothesis that still says "with Docker".
                for f in
                    rules::extract_preferences(&input).into_iter().chain(rules::extract_preferences(&selected.text))
                {
                    if !prefs.iter().any(|(i, _, _)| *i == f.item) {
                        prefs.push((f.item, f.category, f.avoid));
                    }
                }
                (deltas, goals, prefs, status)
            }
        };
        let source = if status == LlmStatus::Used { "llm" } else { "rules" };
        if status == LlmStatus::Used {
            u.analysed_by_llm += 1;
            meta.analysed_by_llm += 1;
        } else {
            u.analysed_by_rules += 1;
            *meta.rules_because.entry(status.label().into()).or_default() += 1;
        }

        let mut goals_added = Vec::new();
        for (n, g) in goals.iter().enumerate() {
            if u.add_goal(g, selected.confidence, format!("{id}:g{n}"), t, source, &id).is_some() {
                goals_added.push(g.clone());
            }
        }
        let mut prefs_added = Vec::new();
        let mut superseded = Vec::new();
        for (n, (item, category, avoid)) in prefs.iter().enumerate() {
            if let Some((_, sup)) = u.add_preference(
                item,
                category,
                *avoid,
                round4(0.9 * selected.confidence),
                format!("{id}:p{n}"),
                t,
                source,
                &id,
            ) {
                prefs_added.push(if *avoid { format!("Avoids: {item}") } else { format!("Prefers: {item}") });
                superseded.extend(sup);
            }
        }
        let old = u.apply_deltas(&deltas);
        let new = u.facets.clone();
        let old_count = u.interaction_count;
        u.interaction_count += 1;
        let content =
            format!("User requested: {} | Selected: {}", input.chars().take(200).collect::<String>(), selected_id);
        u.recent.push_back(Recent { id: id.clone(), content: content.clone() });
        while u.recent.len() > cfg.context_history.max(1) {
            u.recent.pop_front();
        }
        if let Some(task) = r.payload.get("task_type").and_then(Value::as_str) {
            u.used_task(task, event_time(r.event_time, p.ingested_at), cfg);
        }

        let applied: BTreeMap<String, f64> = new
            .iter()
            .filter_map(|(f, v)| old.get(f).map(|o| (f.clone(), round4(v - o))))
            .filter(|(_, d)| *d != 0.0)
            .collect();
        let mut history =
            Memory::new(format!("{id}:h"), MemoryType::History, content, selected.confidence, t, source, &id);
        history.tags = vec!["interaction".into(), "text".into(), selected_id.clone()];
        let update = json!({
            "interaction_id": id, "time": t, "user_id": r.subject,
            "old_facets": old, "new_facets": new, "facet_deltas": applied,
            "interaction_count": [old_count, u.interaction_count],
            "goals_added": goals_added, "preferences_added": prefs_added, "superseded": superseded,
            "signals": {"selected_hypothesis_id": selected_id, "success": true},
            "source": source, "llm": status.label(),
        });
        put_doc(ctx, &format!("hist/{}/{id}", r.subject), &json!({"memory": history, "update": update}), Expect::Any)?;

        if cfg.training_data {
            let seq = format!("{:016}", p.seq);
            let record = json!({
                "timestamp": ts(t), "user_id": r.subject, "user_input": input, "context": context,
                "hypotheses": hyps.iter().map(hyp_json).collect::<Vec<_>>(),
                "selected_id": selected_id, "selected_text": selected.text, "selected_confidence": selected.confidence, "label": "positive",
            });
            put_doc(ctx, &format!("train/h/{seq}"), &record, Expect::Any)?;
            let upd = json!({
                "timestamp": ts(t), "user_id": r.subject, "old_facets": old, "new_facets": new,
                "facet_deltas": applied, "signals": {"selected_hypothesis_id": selected_id, "success": true}, "source": source,
            });
            put_doc(ctx, &format!("train/p/{seq}"), &upd, Expect::Any)?;
            meta.training_hypotheses += 1;
            meta.training_updates += 1;
        }
        meta.interactions += 1;
        Ok(())
    }

    /// An outcome of an interaction: `success: false` undoes its facet changes.
    fn interaction_outcome(
        &self,
        ctx: &mut dyn Context,
        u: &mut UserDoc,
        meta: &mut Meta,
        o: &StoredOutcome,
    ) -> Result<(), PluginError> {
        let r = &o.record;
        let t = u.saw(event_time(r.event_time, o.ingested_at));
        let success = match feedback_score(r.label.as_deref(), r.value, r.success, r.quality) {
            Ok(s) => s > 0.5,
            Err(_) => return Ok(()),
        };
        let key = format!("hist/{}/{}", o.subject, r.prediction_id.as_str());
        let Some(mut hist) = ctx.get_state(&key)?.map(|s| s.value) else { return Ok(()) };
        if success || hist["update"]["signals"]["success"] == json!(false) {
            return Ok(());
        }
        let deltas: BTreeMap<String, f64> =
            serde_json::from_value(hist["update"]["facet_deltas"].clone()).unwrap_or_default();
        let undo: BTreeMap<String, f64> = deltas.iter().map(|(f, d)| (f.clone(), -d)).collect();
        let old = u.apply_deltas(&undo);
        hist["update"]["signals"]["success"] = json!(false);
        hist["update"]["undone_at"] = json!(t);
        put_doc(ctx, &key, &hist, Expect::Any)?;
        if self.config.training_data {
            let upd = json!({
                "timestamp": ts(t), "user_id": o.subject, "old_facets": old, "new_facets": u.facets,
                "facet_deltas": undo, "signals": {"selected_hypothesis_id": hist["update"]["signals"]["selected_hypothesis_id"], "success": false},
                "source": "rules",
            });
            put_doc(ctx, &format!("train/p/{:016}", o.seq), &upd, Expect::Any)?;
            meta.training_updates += 1;
            meta.training_negative += 1;
        }
        Ok(())
    }

    fn feedback(
        &self,
        ctx: &mut dyn Context,
        u: &mut UserDoc,
        meta: &mut Meta,
        o: &StoredOutcome,
    ) -> Result<(), PluginError> {
        let cfg = &self.config;
        let r = &o.record;
        u.saw(event_time(r.event_time, o.ingested_at));
        let score = feedback_score(r.label.as_deref(), r.value, r.success, r.quality).map_err(PluginError::from)?;
        let key = format!("resp/{}", r.prediction_id.as_str());
        let resp: Option<Resp> = match ctx.get_state(&key)? {
            Some(s) => {
                ctx.delete_state(&key, Expect::Version(s.version))?;
                Some(serde_json::from_value(s.value)?)
            }
            None => None,
        };
        let model = resp
            .as_ref()
            .map(|x| x.model.clone())
            .or_else(|| r.payload.get("model").and_then(Value::as_str).map(String::from))
            .unwrap_or_else(|| "unknown".into());
        let held = persona::held_out(r.id.as_str(), cfg.holdout_fraction);
        u.feedback(&o.kind, &model, score, held, cfg);
        let f = &mut u.feedback;
        match r.label.as_deref() {
            Some("rating") => f.ratings += 1,
            Some("thumbs_up") => f.thumbs_up += 1,
            Some("thumbs_down") => f.thumbs_down += 1,
            _ => {}
        }
        if let Some(len) = resp.and_then(|x| x.length) {
            f.length_sum += len;
            f.length_n += 1;
        }
        meta.feedback += 1;
        Ok(())
    }

    fn persona_json(&self, user: &str, u: &UserDoc) -> Value {
        let cfg = &self.config;
        json!({
            "user_id": user,
            "facets": u.facets,
            "interaction_count": u.interaction_count,
            "goals": u.active(MemoryType::Goal, cfg).iter().map(|m| m.to_json(u.newest, cfg)).collect::<Vec<_>>(),
            "preferences": u.active(MemoryType::Preference, cfg).iter().map(|m| m.to_json(u.newest, cfg)).collect::<Vec<_>>(),
            "superseded_preferences": u.memories.iter().filter(|m| m.mtype == MemoryType::Preference && m.valid_to.is_some()).map(|m| m.to_json(u.newest, cfg)).collect::<Vec<_>>(),
            "recent_history": u.recent.iter().rev().map(|r| json!({"interaction_id": r.id, "content": r.content})).collect::<Vec<_>>(),
            "analysed_by": {"llm": u.analysed_by_llm, "rules": u.analysed_by_rules},
            "feedback_count": u.feedback.learned + u.feedback.held_out + u.feedback.held_out_unscored,
            "first_event_time": ts(u.first),
            "newest_event_time": ts(u.newest),
        })
    }

    fn preferences_json(&self, user: &str, u: &UserDoc) -> Value {
        let cfg = &self.config;
        let f = &u.feedback;
        let models: BTreeMap<&String, Value> = f
            .ema
            .keys()
            .map(|task| {
                let (best, score) = u.preferred_model(task).unwrap_or_default();
                (task, json!({"preferred_model": best, "score": score, "ema": f.ema[task], "feedback": f.counts.get(task)}))
            })
            .collect();
        let patterns: BTreeMap<&String, Value> = u
            .time_of_day
            .iter()
            .map(|(bucket, m)| {
                let total: u64 = m.values().sum();
                let top = m.iter().max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)));
                (bucket, json!({"total": total, "usual_task": top.map(|t| t.0), "share": top.map(|t| round4(*t.1 as f64 / total.max(1) as f64)), "tasks": m}))
            })
            .collect();
        let n = f.learned + f.held_out + f.held_out_unscored;
        json!({
            "user_id": user,
            "preferred_models": models,
            "time_of_day": patterns,
            "next_activity": u.next_activity(u.newest, cfg).map(|(t, p, b)| json!({"task_type": t, "probability": p, "basis": b})),
            "preference_accuracy": u.accuracy().map(round4),
            "accuracy_ceiling": u.accuracy_ceiling().map(round4),
            "held_out": {"scored": f.held_out, "correct": f.held_out_correct, "unscored": f.held_out_unscored, "fraction": cfg.holdout_fraction},
            "feedback": {"total": n, "learned_from": f.learned, "thumbs_up": f.thumbs_up, "thumbs_down": f.thumbs_down, "ratings": f.ratings,
                         "average_score": if n > 0 { Some(round4(f.score_sum / n as f64)) } else { None },
                         "average_response_length": if f.length_n > 0 { Some(round4(f.length_sum / f.length_n as f64)) } else { None }},
            "learning_rate": cfg.learning_rate,
        })
    }

    /// History memories and update log entries of a user, newest first.
    fn history(&self, ctx: &mut dyn Context, user: &str) -> Result<Vec<Value>, PluginError> {
        let mut docs: Vec<Value> = scan_all(ctx, &format!("hist/{user}/"))?.into_iter().map(|(_, v)| v).collect();
        docs.sort_by_key(|d| {
            std::cmp::Reverse((
                d["update"]["time"].as_i64().unwrap_or(0),
                d["update"]["interaction_id"].as_str().unwrap_or_default().to_string(),
            ))
        });
        Ok(docs)
    }

    fn memories(
        &self,
        ctx: &mut dyn Context,
        user: &str,
        u: &UserDoc,
        req: &RouteRequest,
    ) -> Result<Value, PluginError> {
        let cfg = &self.config;
        let mtype = match req.query.get("type") {
            None => None,
            Some(s) => Some(
                MemoryType::parse(s)
                    .ok_or_else(|| PluginError::invalid("type", format!("{s:?} is not GOAL, PREFERENCE or HISTORY")))?,
            ),
        };
        let include_superseded = q_bool(req, "include_superseded")?;
        let limit = q_usize(req, "limit", 50, 1000)?;
        let q = rules::tokens(req.query.get("q").map(String::as_str).unwrap_or_default());
        let mut all: Vec<Memory> = u.memories.clone();
        if mtype.is_none() || mtype == Some(MemoryType::History) {
            for d in self.history(ctx, user)? {
                all.push(serde_json::from_value(d["memory"].clone())?);
            }
        }
        let candidates: Vec<Memory> = all
            .into_iter()
            .filter(|m| mtype.is_none_or(|t| m.mtype == t))
            .filter(|m| include_superseded || m.valid_to.is_none())
            .collect();
        // With an embedder (e.g. `[vector] embedder = "ollama"`), a memory
        // also matches by meaning: its cosine similarity to the query, when
        // at least `min_similarity`. Without one, text matching alone.
        let min_similarity = q_f64(req, "min_similarity", 0.75)?;
        let raw_q = req.query.get("q").map(String::as_str).unwrap_or_default().trim();
        let mut similarity: Option<Vec<f64>> = None;
        if !raw_q.is_empty() && !candidates.is_empty() && candidates.len() <= 2000 {
            let mut texts = vec![raw_q.to_string()];
            texts.extend(candidates.iter().map(|m| m.content.clone()));
            if let Ok(v) = ctx.embed(&texts)
                && v.len() == texts.len()
            {
                similarity = Some(v[1..].iter().map(|e| cosine(&v[0], e)).collect());
            }
        }
        let mut hits: Vec<(f64, f64, i64, Memory)> = candidates
            .into_iter()
            .enumerate()
            .map(|(i, m)| {
                let text = persona::search_score(&m, &q);
                let sem = similarity.as_ref().map_or(0.0, |s| s[i]);
                let score = if sem >= min_similarity { text.max(sem) } else { text };
                (score, m.decayed(u.newest, cfg.memory_half_life_days), m.valid_from, m)
            })
            .filter(|(s, ..)| *s > 0.0)
            .collect();
        hits.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.total_cmp(&a.1)).then(b.2.cmp(&a.2)));
        Ok(json!({
            "user_id": user,
            "memories": hits.iter().take(limit).map(|(s, _, _, m)| { let mut v = m.to_json(u.newest, cfg); v["match"] = json!(round4(*s)); v }).collect::<Vec<_>>(),
            "total": hits.len(),
            "ranking": if similarity.is_some() { "text+embeddings" } else { "text" },
        }))
    }

    /// A page of training records under `train/<kind>/`.
    fn training_page(
        &self,
        ctx: &mut dyn Context,
        req: &RouteRequest,
        kind: &str,
    ) -> Result<(Vec<Value>, Option<String>), PluginError> {
        let limit = q_usize(req, "limit", 1000, 10_000)?;
        let prefix = format!("train/{kind}/");
        let after = match req.query.get("after") {
            None => None,
            Some(a) if a.len() == 16 && a.bytes().all(|b| b.is_ascii_digit()) => Some(format!("{prefix}{a}")),
            Some(_) => return Err(PluginError::invalid("after", "not a cursor this route handed out (`next`)")),
        };
        let page = ctx.scan_state(&prefix, after.as_deref(), limit)?;
        let next = if page.len() == limit { page.last().map(|(k, _)| k[prefix.len()..].to_string()) } else { None };
        Ok((page.into_iter().map(|(_, s)| s.value).collect(), next))
    }

    fn as_format(
        req: &RouteRequest,
        key: &str,
        records: Vec<Value>,
        next: Option<String>,
    ) -> Result<RouteResponse, PluginError> {
        match req.query.get("format").map(String::as_str) {
            None | Some("json") => Ok(RouteResponse::ok(json!({key: records, "next": next}))),
            Some("jsonl") => {
                let mut s = String::new();
                for r in &records {
                    s.push_str(&r.to_string());
                    s.push('\n');
                }
                Ok(RouteResponse::ok(json!({"format": "jsonl", "jsonl": s, "count": records.len(), "next": next})))
            }
            Some(other) => Err(PluginError::invalid("format", format!("{other:?} is not json or jsonl"))),
        }
    }

    fn dataset(&self, ctx: &mut dyn Context, req: &RouteRequest) -> Result<RouteResponse, PluginError> {
        let min = q_f64(req, "min_confidence", self.config.min_training_confidence)?;
        let (records, next) = self.training_page(ctx, req, "h")?;
        let total = records.len();
        let samples: Vec<Value> = records
            .into_iter()
            .filter(|r| r["selected_confidence"].as_f64().unwrap_or(0.0) >= min && r["label"] == "positive")
            .map(|r| {
                let system = format!(
                    "You guess what the user wants. Persona facets: {}. Goals: {}. Preferences: {}.",
                    r["context"]["persona_facets"], r["context"]["recent_goals"], r["context"]["preferences"]
                );
                json!({"messages": [
                    {"role": "system", "content": system},
                    {"role": "user", "content": r["user_input"]},
                    {"role": "assistant", "content": r["selected_text"]},
                ]})
            })
            .collect();
        let mut resp = Self::as_format(req, "samples", samples, next)?;
        resp.body["min_confidence"] = json!(min);
        resp.body["considered"] = json!(total);
        Ok(resp)
    }

    fn training_stats(&self, ctx: &mut dyn Context) -> Result<Value, PluginError> {
        let (meta, _) = get_doc::<Meta>(ctx, "meta")?;
        Ok(json!({
            "enabled": self.config.training_data,
            "hypotheses_count": meta.training_hypotheses,
            "persona_updates_count": meta.training_updates,
            "negative_updates": meta.training_negative,
            "min_confidence_for_training": self.config.min_training_confidence,
        }))
    }

    fn stats(&self, ctx: &mut dyn Context) -> Result<Value, PluginError> {
        let (meta, _) = get_doc::<Meta>(ctx, "meta")?;
        let (mut scored, mut correct, mut best, mut tallied) = (0u64, 0u64, 0u64, 0u64);
        for (_, v) in scan_all(ctx, "user/")? {
            let u: UserDoc = serde_json::from_value(v)?;
            scored += u.feedback.held_out;
            correct += u.feedback.held_out_correct;
            let (b, n) = persona::ceiling_counts(&u.feedback.held_out_tally);
            best += b;
            tallied += n;
        }
        let accuracy = (scored > 0).then(|| correct as f64 / scored as f64);
        let ceiling = (tallied > 0).then(|| best as f64 / tallied as f64);
        Ok(json!({
            "users": meta.users, "interactions": meta.interactions, "responses": meta.responses, "feedback": meta.feedback,
            "analysed_by_llm": meta.analysed_by_llm, "analysed_by_rules": meta.rules_because,
            "preference_accuracy": accuracy.map(round4),
            "accuracy_ceiling": ceiling.map(round4),
            "accuracy_of_ceiling": accuracy.zip(ceiling).filter(|(_, c)| *c > 0.0).map(|(a, c)| round4(a / c)),
            "held_out_scored": scored, "accuracy_target": 0.9,
            "training": {"hypotheses_count": meta.training_hypotheses, "persona_updates_count": meta.training_updates},
        }))
    }

    fn preference_update(&self, ctx: &mut dyn Context) -> Result<Value, PluginError> {
        let cfg = &self.config;
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
                if let Some((m, s)) = u.preferred_model(task) {
                    preferred += 1;
                    per.insert(task.clone(), json!({"model": m, "score": s}));
                }
            }
            let next = u.next_activity(u.newest, cfg).map(|(t, p, _)| json!({"task_type": t, "probability": p}));
            table.insert(
                k["user/".len()..].to_string(),
                json!({"preferred_models": per, "accuracy": u.accuracy().map(round4), "accuracy_ceiling": u.accuracy_ceiling().map(round4), "next_activity": next}),
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
                    (Some(a), None) => format!("Held-out preference accuracy {:.1}% on {scored} feedback events (target 90%).", a * 100.0),
                    (None, _) => "No held-out feedback scored yet.".into(),
                },
                confidence: accuracy.unwrap_or(0.5),
                impact: 0.0,
                data: json!({"users": table}),
            })?;
        }
        let (meta, _) = get_doc::<Meta>(ctx, "meta")?;
        Ok(json!({
            "users": users, "preferred_pairs": preferred, "preference_accuracy": accuracy, "accuracy_ceiling": ceiling,
            "accuracy_of_ceiling": accuracy.zip(ceiling).filter(|(_, c)| *c > 0.0).map(|(a, c)| round4(a / c)),
            "held_out_scored": scored,
            // The shape every plugin's first job reports (the quickstart prints it).
            "subjects": users,
            "totals": {"predictions": meta.interactions + meta.responses, "outcomes": meta.feedback, "interactions": meta.interactions,
                       "feedback": meta.feedback, "preferred_pairs": preferred, "held_out_scored": scored},
        }))
    }

    fn memory_decay(&self, ctx: &mut dyn Context) -> Result<Value, PluginError> {
        let cfg = &self.config;
        if cfg.memory_half_life_days <= 0.0 {
            return Ok(json!({"enabled": false, "expired": 0}));
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
        Ok(json!({"enabled": true, "expired": expired}))
    }
}

impl Plugin for PersonaPlugin {
    fn manifest(&self) -> Manifest {
        let route = RouteSpec::new;
        let job = JobSpec::new;
        Manifest {
            name: "persona".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            abi_version: abi::ABI_VERSION,
            description: "Learns a user's facets, goals and preferences from their interactions with an assistant (seeds 002, 003): hypotheses personalised by what it learned, execute learning loop (goal and preference extraction, facet updates, history, persona-update log, training data), feedback learning (preferred model per task by EMA, time-of-day patterns, next-activity prediction, held-out accuracy). Uses the local LLM when configured, rules otherwise.".into(),
            kinds: vec![
                KindSpec {
                    record_type: RecordType::Prediction,
                    kinds: vec![],
                    payload_schema: json!({"type": "object", "properties": {
                        "input_text": {"type": "string"}, "task_type": {"type": "string"},
                        "hypotheses": {"type": "array", "items": {"type": "object", "required": ["id", "text", "confidence"],
                            "properties": {"id": {"type": "string"}, "text": {"type": "string"}, "confidence": {"type": "number"}}}},
                        "model": {"type": "string"}, "response_length": {"type": "number"}}}),
                    description: "subject = user id. kind \"interaction\": an executed hypothesis (payload input_text, hypotheses, optional task_type; label = the chosen hypothesis id). Any other kind: an assistant response for that task type by the model in label (or payload.model), payload.response_length".into(),
                },
                KindSpec {
                    record_type: RecordType::Outcome,
                    kinds: vec![],
                    payload_schema: json!({"type": "object"}),
                    description: "feedback: label thumbs_up / thumbs_down / rating (value 1–5 stars), or success; feedback = comment. On an interaction, success false undoes its facet changes".into(),
                },
            ],
            routes: vec![
                route("POST", "/hypothesize", "Three hypotheses of what the user means, with confidence, personalised by facets, goals, preferences and history (LLM when available, rules otherwise); includes the record to send to execute one", false,
                    json!({"type": "object", "required": ["user_id", "input_text"], "properties": {"user_id": {"type": "string"}, "input_text": {"type": "string"}, "task_type": {"type": "string"}}})),
                route("GET", "/users", "Every user with interaction and feedback counts", false, Value::Null),
                route("GET", "/users/{user}", "A user's persona: facets, interaction count, active goals and preferences, superseded preferences, recent history", false, Value::Null),
                route("GET", "/users/{user}/memories", "Search a user's memories by text, and by meaning when an embedder is configured (query: q, type = GOAL/PREFERENCE/HISTORY, include_superseded, limit, min_similarity)", false, Value::Null),
                route("GET", "/users/{user}/updates", "A user's persona-update log, newest first (query: limit)", false, Value::Null),
                route("GET", "/users/{user}/preferences", "Feedback learning: preferred model per task type (EMA), time-of-day patterns, next activity, held-out preference accuracy", false, Value::Null),
                route("GET", "/users/{user}/next-activity", "The most likely next task type (query: at = RFC 3339 time for the time-of-day fallback)", false, Value::Null),
                route("GET", "/training/stats", "Training data counts", false, Value::Null),
                route("GET", "/training/hypotheses", "Hypothesis-selection training records (hypotheses_data.jsonl format; query: format = json/jsonl, limit, after = the previous page's next)", false, Value::Null),
                route("GET", "/training/persona-updates", "Persona-update training records (persona_updates.jsonl format; query: format, limit, after)", false, Value::Null),
                route("GET", "/training/dataset", "Chat-format fine-tuning dataset of selections with confidence ≥ min_confidence (query: min_confidence, format, limit, after)", false, Value::Null),
                route("GET", "/stats", "Totals: users, interactions, feedback, LLM vs rules analyses, overall held-out preference accuracy", false, Value::Null),
            ],
            jobs: vec![
                job("preference_update", "0 0 4 * * *", "Daily: preferred models, accuracy and next activity of every user as an insight"),
                job("memory_decay", "0 30 4 * * *", "Daily: expire memories whose decayed confidence fell below min_memory_confidence (when memory_half_life_days > 0)"),
            ],
            config: Config::keys(),
        }
    }

    fn configure(&mut self, section: &Value) -> Result<(), PluginError> {
        let c: Config = parse_config("persona", section)?;
        c.check()?;
        self.config = c;
        Ok(())
    }

    fn validate(&self, record: &Record) -> Result<(), ValidationError> {
        match record {
            Record::Prediction(p) => {
                if p.subject.is_empty() || p.subject.len() > 128 {
                    return Err(ValidationError::new("subject", "the user id: 1 to 128 bytes"));
                }
                if let Some(c) = p.confidence
                    && !(0.0..=1.0).contains(&c)
                {
                    return Err(ValidationError::new("confidence", "must lie in [0, 1]"));
                }
                if p.kind == INTERACTION {
                    payload_str(&p.payload, "input_text", 2000, true)?;
                    payload_str(&p.payload, "task_type", 64, false)?;
                    let hyps = parse_hypotheses(&p.payload)?;
                    let Some(sel) = &p.label else {
                        return Err(ValidationError::new(
                            "label",
                            "the id of the chosen hypothesis (h1, h2, ...) is required",
                        ));
                    };
                    if !hyps.iter().any(|h| &h.id == sel) {
                        return Err(ValidationError::new(
                            "label",
                            format!("{sel:?} is not one of the hypotheses' ids"),
                        ));
                    }
                } else {
                    if p.kind.len() > 64 {
                        return Err(ValidationError::new("kind", "the task type: at most 64 bytes"));
                    }
                    payload_str(&p.payload, "model", 128, false)?;
                    if let Some(l) = &p.label
                        && l.len() > 128
                    {
                        return Err(ValidationError::new("label", "the model: at most 128 bytes"));
                    }
                    match p.payload.get("response_length") {
                        None | Some(Value::Null) => {}
                        Some(v) if v.as_f64().is_some_and(|x| x >= 0.0) => {}
                        _ => return Err(ValidationError::new("payload.response_length", "expected a number ≥ 0")),
                    }
                }
            }
            Record::Outcome(o) => {
                feedback_score(o.label.as_deref(), o.value, o.success, o.quality)?;
            }
        }
        Ok(())
    }

    fn on_events(&self, ctx: &mut dyn Context, events: &[Event]) -> Result<(), PluginError> {
        let cfg = &self.config;
        let (mut meta, meta_expect) = get_doc::<Meta>(ctx, "meta")?;
        let interactions =
            events.iter().filter(|e| matches!(e, Event::Prediction(p) if p.record.kind == INTERACTION)).count();
        let llm_allowed = interactions <= cfg.llm_max_batch;
        let mut users: BTreeMap<String, (UserDoc, Expect)> = BTreeMap::new();
        for e in events {
            let user = match e {
                Event::Prediction(p) => &p.record.subject,
                Event::Outcome(o) => &o.subject,
            };
            if !users.contains_key(user) {
                let (mut u, expect) = get_doc::<UserDoc>(ctx, &user_key(user))?;
                if expect == Expect::Absent {
                    u = UserDoc::new(cfg);
                    meta.users += 1;
                }
                u.ensure_facets(cfg);
                users.insert(user.clone(), (u, expect));
            }
            let u = &mut users.get_mut(user).expect("loaded").0;
            match e {
                Event::Prediction(p) if p.record.kind == INTERACTION => {
                    self.execute(ctx, u, &mut meta, p, llm_allowed)?
                }
                Event::Prediction(p) => {
                    let r = &p.record;
                    let t = event_time(r.event_time, p.ingested_at);
                    u.saw(t);
                    u.used_task(&r.kind, t, cfg);
                    let model = r
                        .label
                        .clone()
                        .or_else(|| r.payload.get("model").and_then(Value::as_str).map(String::from))
                        .unwrap_or_else(|| "unknown".into());
                    let resp = Resp {
                        user: r.subject.clone(),
                        task: r.kind.clone(),
                        model,
                        length: r.payload.get("response_length").and_then(Value::as_f64),
                    };
                    put_doc(ctx, &format!("resp/{}", r.id.as_str()), &resp, Expect::Any)?;
                    meta.responses += 1;
                }
                Event::Outcome(o) if o.kind == INTERACTION => self.interaction_outcome(ctx, u, &mut meta, o)?,
                Event::Outcome(o) => self.feedback(ctx, u, &mut meta, o)?,
            }
        }
        for (user, (doc, expect)) in users {
            put_doc(ctx, &user_key(&user), &doc, expect)?;
        }
        put_doc(ctx, "meta", &meta, meta_expect)
    }

    fn run_job(&self, ctx: &mut dyn Context, job: &str) -> Result<Value, PluginError> {
        match job {
            "preference_update" => self.preference_update(ctx),
            "memory_decay" => self.memory_decay(ctx),
            other => Err(PluginError::invalid("job", format!("unknown job {other:?}"))),
        }
    }

    fn handle(&self, ctx: &mut dyn Context, req: &RouteRequest) -> Result<RouteResponse, PluginError> {
        let user_route = req.route.starts_with("/users/{user}");
        let loaded = if user_route {
            let user = req.param("user")?.to_string();
            let u = self.load_user(ctx, &user)?.ok_or_else(|| PluginError::not_found(format!("no user {user:?}")))?;
            Some((user, u))
        } else {
            None
        };
        match (req.method.as_str(), req.route.as_str()) {
            ("POST", "/hypothesize") => self.hypothesize(ctx, &req.body),
            ("GET", "/users") => {
                let mut list = Vec::new();
                for (k, v) in scan_all(ctx, "user/")? {
                    let u: UserDoc = serde_json::from_value(v)?;
                    list.push(json!({"user_id": &k["user/".len()..], "interaction_count": u.interaction_count,
                        "feedback_count": u.feedback.learned + u.feedback.held_out + u.feedback.held_out_unscored, "newest_event_time": ts(u.newest)}));
                }
                Ok(RouteResponse::ok(json!({"users": list})))
            }
            ("GET", "/users/{user}") => {
                let (user, u) = loaded.expect("user route");
                Ok(RouteResponse::ok(self.persona_json(&user, &u)))
            }
            ("GET", "/users/{user}/memories") => {
                let (user, u) = loaded.expect("user route");
                Ok(RouteResponse::ok(self.memories(ctx, &user, &u, req)?))
            }
            ("GET", "/users/{user}/updates") => {
                let (user, _) = loaded.expect("user route");
                let limit = q_usize(req, "limit", 50, 1000)?;
                let updates: Vec<Value> = self
                    .history(ctx, &user)?
                    .into_iter()
                    .take(limit)
                    .map(|mut d| {
                        let t = d["update"]["time"].as_i64().unwrap_or(0);
                        d["update"]["time"] = ts(t);
                        d["update"].take()
                    })
                    .collect();
                Ok(RouteResponse::ok(json!({"user_id": user, "updates": updates})))
            }
            ("GET", "/users/{user}/preferences") => {
                let (user, u) = loaded.expect("user route");
                Ok(RouteResponse::ok(self.preferences_json(&user, &u)))
            }
            ("GET", "/users/{user}/next-activity") => {
                let (user, u) = loaded.expect("user route");
                let at = match req.query.get("at") {
                    None => u.newest,
                    Some(s) => learnloop_plugin_api::Timestamp::parse("at", s)?.as_micros(),
                };
                let next = u.next_activity(at, &self.config);
                Ok(RouteResponse::ok(json!({
                    "user_id": user, "at": ts(at), "time_of_day": persona::time_bucket(at, self.config.utc_offset_hours),
                    "last_task": u.last_task,
                    "next_activity": next.map(|(t, p, b)| json!({"task_type": t, "probability": p, "basis": b})),
                })))
            }
            ("GET", "/training/stats") => Ok(RouteResponse::ok(self.training_stats(ctx)?)),
            ("GET", "/training/hypotheses") => {
                let (records, next) = self.training_page(ctx, req, "h")?;
                Self::as_format(req, "records", records, next)
            }
            ("GET", "/training/persona-updates") => {
                let (records, next) = self.training_page(ctx, req, "p")?;
                Self::as_format(req, "records", records, next)
            }
            ("GET", "/training/dataset") => self.dataset(ctx, req),
            ("GET", "/stats") => Ok(RouteResponse::ok(self.stats(ctx)?)),
            _ => Err(PluginError::not_found(format!("no route {} {}", req.method, req.route))),
        }
    }
}

learnloop_plugin_api::export_plugin!(PersonaPlugin, PersonaPlugin::default);
