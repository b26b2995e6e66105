//! The online update: what each interaction, response and feedback changes
//! as it arrives — the user's persona (`user/<user>`), the history memory
//! and persona-update log (`hist/<user>/<interaction>`), responses awaiting
//! feedback (`resp/<id>`), training records (`train/h/`, `train/p/`), the
//! interactions queued for LLM enrichment (`enrich/<seq>`) and the
//! workspace totals (`meta`) — with those documents as types.
//!
//! The online update never calls the LLM: it runs before every route
//! answers (the host catches a plugin up first), so an LLM call here would
//! make every read wait for it. Interactions are analysed by the rules at
//! once and queued; the `enrich` job ([`crate::jobs`]) asks the LLM later.

use std::collections::BTreeMap;

use learnloop_plugin_api::JsonSchema;
use learnloop_plugin_api::helpers::client_time;
use learnloop_plugin_api::{Context, Event, Expect, PluginError, StoredOutcome, StoredPrediction, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::answers::PersonaContext;
use crate::llm::LlmStatus;
use crate::persona::{self, Memory, MemoryType, Recent, UserDoc, known_time, round4};
use crate::record::{feedback_score, parse_hypotheses};
use crate::rules::{self, Hypothesis};
use crate::{INTERACTION, PersonaPlugin, get_doc, put_doc, user_key};

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
    /// Interactions ever queued for LLM enrichment (the queue's length is
    /// this minus [`EnrichStats::done`]).
    #[serde(default)]
    pub llm_queued: u64,
    /// Interactions not queued because the queue was full (`llm_queue_cap`).
    #[serde(default)]
    pub llm_dropped: u64,
}

/// `enrich/<seq>`: an interaction waiting for the `enrich` job, with what
/// the LLM is asked about it (the prompt the online update would have sent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrichItem {
    /// The user.
    pub user: String,
    /// The interaction.
    pub interaction_id: String,
    /// Its store sequence number (the key of its training record).
    pub seq: i64,
    /// Its time (µs), as the online update stamped it.
    pub time: i64,
    /// The chosen hypothesis's confidence (of the memories the LLM adds).
    pub confidence: f64,
    /// What the LLM analyses.
    pub interaction: InteractionAnalysed,
    /// The user's facets before the interaction, as the LLM sees them.
    pub facets: BTreeMap<String, f64>,
}

/// `enrich_stats`: what the `enrich` job did, written by the job only (the
/// online update only reads it), so the two never contend for it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EnrichStats {
    /// Queued interactions taken off the queue, whatever became of them.
    pub done: u64,
    /// Refined by the LLM's analysis.
    pub used: u64,
    /// Left to rules: no answer from the LLM.
    pub no_answer: u64,
    /// Left to rules: the LLM's answer did not validate.
    pub malformed: u64,
    /// Left to rules: `use_llm` was turned off after they were queued.
    pub disabled: u64,
    /// Undone (an unsuccessful outcome) before the job reached them.
    pub undone: u64,
}

/// The key of an interaction's place in the enrichment queue.
pub fn enrich_key(seq: i64) -> String {
    format!("enrich/{seq:016}")
}

/// A response awaiting feedback, `resp/<id>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Resp {
    /// The user.
    pub(crate) user: String,
    /// The task type.
    pub(crate) task: String,
    /// The model that answered.
    pub(crate) model: String,
    /// `payload.response_length`.
    pub(crate) length: Option<f64>,
}

/// What an interaction offered: the payload of an executed interaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct InteractionPayload {
    /// The user's input.
    pub input_text: String,
    /// The hypotheses offered.
    pub hypotheses: Vec<Hypothesis>,
    /// The task type, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_type: Option<String>,
}

/// An interaction as the LLM analyses it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InteractionAnalysed {
    /// The user's input.
    pub input_text: String,
    /// The hypotheses offered.
    pub hypotheses: Vec<Hypothesis>,
    /// The one chosen.
    pub selected_id: String,
}

fn yes() -> bool {
    true
}

/// What an interaction told about the user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Signals {
    /// The hypothesis chosen.
    #[serde(default)]
    pub selected_hypothesis_id: String,
    /// False once an outcome said the interaction failed (its changes undone).
    #[serde(default = "yes")]
    pub success: bool,
}

impl Default for Signals {
    fn default() -> Self {
        Self { selected_hypothesis_id: String::new(), success: true }
    }
}

/// One entry of the persona-update log; `T` is the time: µs as stored,
/// RFC 3339 (or `null`) as `GET /users/{user}/updates` shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
// `#[serde(default)]` makes the schema read the defaults, so `T` must have one.
#[schemars(rename = "PersonaUpdate", bound = "T: JsonSchema + Default")]
pub struct PersonaUpdate<T = i64> {
    /// The interaction.
    pub interaction_id: String,
    /// Its time.
    pub time: T,
    /// The user.
    pub user_id: String,
    /// Facets before.
    pub old_facets: BTreeMap<String, f64>,
    /// Facets after.
    pub new_facets: BTreeMap<String, f64>,
    /// The changes applied (rounded, zeros left out).
    pub facet_deltas: BTreeMap<String, f64>,
    /// Interaction count before and after.
    pub interaction_count: [u64; 2],
    /// Goals added.
    pub goals_added: Vec<String>,
    /// Preferences added ("Prefers: X", "Avoids: Y").
    pub preferences_added: Vec<String>,
    /// Preference memories superseded.
    pub superseded: Vec<String>,
    /// What the interaction told.
    pub signals: Signals,
    /// `rules`, or `rules+llm` once the `enrich` job refined it with the
    /// LLM's analysis (`llm` in entries written before enrichment was
    /// asynchronous).
    pub source: String,
    /// What became of the LLM: `pending` (queued for the `enrich` job),
    /// `used`, `no_answer`, `malformed`, `disabled`, `skipped_batch`,
    /// `queue_full` or `undone`.
    pub llm: String,
    /// When the interaction's changes were undone (µs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub undone_at: Option<i64>,
}

impl PersonaUpdate {
    /// The entry with its time as routes show it.
    pub fn shown(self) -> PersonaUpdate<Option<Timestamp>> {
        PersonaUpdate {
            interaction_id: self.interaction_id,
            time: known_time(self.time),
            user_id: self.user_id,
            old_facets: self.old_facets,
            new_facets: self.new_facets,
            facet_deltas: self.facet_deltas,
            interaction_count: self.interaction_count,
            goals_added: self.goals_added,
            preferences_added: self.preferences_added,
            superseded: self.superseded,
            signals: self.signals,
            source: self.source,
            llm: self.llm,
            undone_at: self.undone_at,
        }
    }
}

/// `hist/<user>/<interaction>`: the HISTORY memory and persona-update log
/// entry of one interaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistDoc {
    /// The HISTORY memory.
    pub memory: Memory,
    /// The log entry.
    pub update: PersonaUpdate,
}

/// `train/h/<seq>`: a hypothesis-selection training record
/// (hypotheses_data.jsonl).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct HypothesisRecord {
    /// The interaction's time.
    pub timestamp: Option<Timestamp>,
    /// The user.
    pub user_id: String,
    /// The user's input.
    pub user_input: String,
    /// What was known about the user.
    pub context: PersonaContext,
    /// The hypotheses offered.
    pub hypotheses: Vec<Hypothesis>,
    /// The one chosen.
    pub selected_id: String,
    /// Its text.
    pub selected_text: String,
    /// Its confidence.
    pub selected_confidence: f64,
    /// Always `positive`.
    pub label: String,
}

/// `train/p/<seq>`: a persona-update training record (persona_updates.jsonl).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct UpdateRecord {
    /// The event's time.
    pub timestamp: Option<Timestamp>,
    /// The user.
    pub user_id: String,
    /// Facets before.
    pub old_facets: BTreeMap<String, f64>,
    /// Facets after.
    pub new_facets: BTreeMap<String, f64>,
    /// The changes.
    pub facet_deltas: BTreeMap<String, f64>,
    /// What the interaction told.
    pub signals: Signals,
    /// `rules` or `rules+llm` (see [`PersonaUpdate::source`]).
    pub source: String,
}

impl PersonaPlugin {
    /// The online update of one batch of events.
    pub(crate) fn update(&self, ctx: &mut dyn Context, events: &[Event]) -> Result<(), PluginError> {
        let cfg = self.config();
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
                    let t = client_time(r.event_time, p.ingested_at);
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

    /// The online update for one executed interaction.
    fn execute(
        &self,
        ctx: &mut dyn Context,
        u: &mut UserDoc,
        meta: &mut Meta,
        p: &StoredPrediction,
        llm_allowed: bool,
    ) -> Result<(), PluginError> {
        let cfg = self.config();
        let r = &p.record;
        let t = u.saw(client_time(r.event_time, p.ingested_at));
        let input = r.payload.get("input_text").and_then(Value::as_str).unwrap_or_default().to_string();
        let hyps = parse_hypotheses(&r.payload).map_err(PluginError::from)?;
        let selected_id = r.label.clone().unwrap_or_default();
        let selected = hyps
            .iter()
            .find(|h| h.id == selected_id)
            .cloned()
            .ok_or_else(|| PluginError::invalid("label", "not one of the hypotheses"))?;
        let context = self.context(u);
        let id = r.id.as_str().to_string();

        // Analysis: the rules, at once. The LLM refines it later (the
        // `enrich` job) when allowed and the queue has room.
        let status = if !cfg.use_llm {
            LlmStatus::Disabled
        } else if !llm_allowed {
            LlmStatus::SkippedBatch
        } else {
            let (done, _) = get_doc::<EnrichStats>(ctx, "enrich_stats")?;
            if meta.llm_queued.saturating_sub(done.done) >= cfg.llm_queue_cap as u64 {
                LlmStatus::QueueFull
            } else {
                LlmStatus::Pending
            }
        };
        if status == LlmStatus::Pending {
            let item = EnrichItem {
                user: r.subject.clone(),
                interaction_id: id.clone(),
                seq: p.seq,
                time: t,
                confidence: selected.confidence,
                interaction: InteractionAnalysed {
                    input_text: input.clone(),
                    hypotheses: hyps.clone(),
                    selected_id: selected_id.clone(),
                },
                facets: u.facets.clone(),
            };
            put_doc(ctx, &enrich_key(p.seq), &item, Expect::Any)?;
            meta.llm_queued += 1;
            u.llm_pending += 1;
        } else {
            if status == LlmStatus::QueueFull {
                meta.llm_dropped += 1;
            }
            *meta.rules_because.entry(status.label().into()).or_default() += 1;
        }
        u.analysed_by_rules += 1;
        let deltas = rules::facet_deltas(&cfg.facets, &cfg.selection_facets, cfg.facet_delta, &selected_id, &input);
        let goals: Vec<String> = rules::extract_goal(&selected.text).into_iter().collect();
        let mut prefs: Vec<(String, String, bool)> = Vec::new();
        // The user's own words first: "using podman instead of docker"
        // outweighs a hypothesis that still says "with Docker".
        for f in rules::extract_preferences(&input).into_iter().chain(rules::extract_preferences(&selected.text)) {
            if !prefs.iter().any(|(i, _, _)| *i == f.item) {
                prefs.push((f.item, f.category, f.avoid));
            }
        }
        let source = "rules";

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
            u.used_task(task, client_time(r.event_time, p.ingested_at), cfg);
        }

        let applied: BTreeMap<String, f64> = new
            .iter()
            .filter_map(|(f, v)| old.get(f).map(|o| (f.clone(), round4(v - o))))
            .filter(|(_, d)| *d != 0.0)
            .collect();
        let mut history =
            Memory::new(format!("{id}:h"), MemoryType::History, content, selected.confidence, t, source, &id);
        history.tags = vec!["interaction".into(), "text".into(), selected_id.clone()];
        let signals = Signals { selected_hypothesis_id: selected_id.clone(), success: true };
        let update = PersonaUpdate {
            interaction_id: id.clone(),
            time: t,
            user_id: r.subject.clone(),
            old_facets: old.clone(),
            new_facets: new.clone(),
            facet_deltas: applied.clone(),
            interaction_count: [old_count, u.interaction_count],
            goals_added,
            preferences_added: prefs_added,
            superseded,
            signals: signals.clone(),
            source: source.into(),
            llm: status.label().into(),
            undone_at: None,
        };
        put_doc(ctx, &format!("hist/{}/{id}", r.subject), &HistDoc { memory: history, update }, Expect::Any)?;

        if cfg.training_data {
            let seq = format!("{:016}", p.seq);
            let record = HypothesisRecord {
                timestamp: known_time(t),
                user_id: r.subject.clone(),
                user_input: input,
                context,
                hypotheses: hyps,
                selected_id,
                selected_text: selected.text,
                selected_confidence: selected.confidence,
                label: "positive".into(),
            };
            put_doc(ctx, &format!("train/h/{seq}"), &record, Expect::Any)?;
            let upd = UpdateRecord {
                timestamp: known_time(t),
                user_id: r.subject.clone(),
                old_facets: old,
                new_facets: new,
                facet_deltas: applied,
                signals,
                source: source.into(),
            };
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
        let t = u.saw(client_time(r.event_time, o.ingested_at));
        let success = match feedback_score(r.label.as_deref(), r.value, r.success, r.quality) {
            Ok(s) => s > 0.5,
            Err(_) => return Ok(()),
        };
        let key = format!("hist/{}/{}", o.subject, r.prediction_id.as_str());
        let Some(s) = ctx.get_state(&key)? else { return Ok(()) };
        let mut hist: HistDoc = serde_json::from_value(s.value)?;
        if success || !hist.update.signals.success {
            return Ok(());
        }
        let undo: BTreeMap<String, f64> = hist.update.facet_deltas.iter().map(|(f, d)| (f.clone(), -d)).collect();
        let old = u.apply_deltas(&undo);
        hist.update.signals.success = false;
        hist.update.undone_at = Some(t);
        put_doc(ctx, &key, &hist, Expect::Any)?;
        if self.config().training_data {
            let upd = UpdateRecord {
                timestamp: known_time(t),
                user_id: o.subject.clone(),
                old_facets: old,
                new_facets: u.facets.clone(),
                facet_deltas: undo,
                signals: Signals {
                    selected_hypothesis_id: hist.update.signals.selected_hypothesis_id.clone(),
                    success: false,
                },
                source: "rules".into(),
            };
            put_doc(ctx, &format!("train/p/{:016}", o.seq), &upd, Expect::Any)?;
            meta.training_updates += 1;
            meta.training_negative += 1;
        }
        Ok(())
    }

    /// Feedback on a response: learned from, or scored as held out.
    fn feedback(
        &self,
        ctx: &mut dyn Context,
        u: &mut UserDoc,
        meta: &mut Meta,
        o: &StoredOutcome,
    ) -> Result<(), PluginError> {
        let cfg = self.config();
        let r = &o.record;
        u.saw(client_time(r.event_time, o.ingested_at));
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

    /// What the hypothesizer and the LLM know about a user.
    pub(crate) fn context(&self, u: &UserDoc) -> PersonaContext {
        let cfg = self.config();
        PersonaContext {
            persona_facets: u.facets.clone(),
            interaction_count: u.interaction_count,
            recent_goals: u.active(MemoryType::Goal, cfg).iter().take(5).map(|m| m.content.clone()).collect(),
            preferences: u.active(MemoryType::Preference, cfg).iter().take(10).map(|m| m.content.clone()).collect(),
            recent_history: u.recent.iter().rev().take(cfg.context_history).map(|r| r.content.clone()).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A history document without the fields added later (`llm`,
    /// `superseded`, `undone_at`) still reads, and the signals default to a
    /// successful interaction.
    #[test]
    fn older_history_documents_deserialize() {
        let h: HistDoc = serde_json::from_value(json!({
            "memory": {"id": "i1:h", "type": "HISTORY", "content": "User requested: x | Selected: h1",
                       "confidence": 0.75, "valid_from": 5, "source": "rules", "interaction_id": "i1"},
            "update": {"interaction_id": "i1", "time": 5, "user_id": "u", "facet_deltas": {"concise": 0.02},
                       "signals": {"selected_hypothesis_id": "h1"}, "source": "rules"}
        }))
        .unwrap();
        assert!(h.update.signals.success);
        assert_eq!((h.update.llm.as_str(), h.update.undone_at), ("", None));
        let shown = serde_json::to_value(h.update.shown()).unwrap();
        assert!(shown["time"].is_string() && shown.get("undone_at").is_none(), "{shown}");
        let r: HypothesisRecord = serde_json::from_value(json!({"user_id": "u", "selected_confidence": 0.8})).unwrap();
        assert_eq!((r.selected_confidence, r.label.as_str()), (0.8, ""));
    }
}
