//! The routes: hypotheses at decision time (`POST /hypothesize`), a user's
//! persona, memories, update log, preferences and next activity, training
//! data export and totals — state documents in, typed answers
//! ([`crate::answers`]) out.

use learnloop_plugin_api::JsonSchema;
use learnloop_plugin_api::core::Role;
use learnloop_plugin_api::state::scan_all;
use learnloop_plugin_api::{
    Context, PluginError, QueryParam, RouteRequest, RouteResponse, RouteSpec, Schemas, Timestamp,
};
use serde::{Deserialize, Serialize};

use crate::answers::{
    AnalysedBy, ChatMessage, ChatSample, DatasetAnswer, DatasetJsonlPage, DatasetPage, ExecuteHint, ExecuteRecord,
    FeedbackSummary, HeldOut, HypothesizeAnswer, JsonlPage, MemoriesAnswer, ModelPreference, NextActivity,
    NextActivityAnswer, PersonaAnswer, PreferencesAnswer, RecentAnswer, RecordsPage, StatsAnswer, TimeOfDayUsage,
    TrainingCounts, TrainingPage, TrainingStats, UpdatesAnswer, UserSummary, UsersAnswer,
};
use crate::llm::{self, LlmStatus};
use crate::online::{EnrichStats, HistDoc, HypothesisRecord, InteractionPayload, Meta, UpdateRecord};
use crate::persona::{self, Memory, MemoryType, UserDoc, known_time, round4};
use crate::rules::{self, Hypothesis};
use crate::{INTERACTION, PersonaPlugin, get_doc};

/// The body of `POST /hypothesize`.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HypothesizeBody {
    /// The user (a non-empty string of at most 128 bytes).
    #[schemars(length(min = 1, max = 128))]
    pub user_id: String,
    /// What the user said (not blank, at most 2000 characters).
    #[schemars(length(min = 1, max = 2000), regex(pattern = r"\S"))]
    pub input_text: String,
    /// The task type, passed on to the record to execute (at most 64
    /// bytes).
    #[serde(default)]
    #[schemars(length(min = 1, max = 64))]
    pub task_type: Option<String>,
}

/// The routes (under `/api/v1/persona`), each with the query parameters
/// its handler reads (with the bounds it enforces) and the schemas of its
/// body and answer, made from the Rust types in `s`.
pub fn specs(s: &mut Schemas) -> Vec<RouteSpec> {
    let limit = |default: i64, max: i64| QueryParam::integer("limit", &format!("How many (default {default})"), 1, max);
    let format = || {
        QueryParam::one_of(
            "format",
            "`json` (default): the records; `jsonl`: one JSON record per line",
            &["json", "jsonl"],
        )
    };
    let after = || {
        let mut p = QueryParam::string("after", "The `next` of the previous page (16 digits)");
        p.schema = serde_json::json!({"type": "string", "pattern": "^[0-9]{16}$"});
        p
    };
    vec![
        RouteSpec::with_method("POST", Role::Reader, "hypothesize", "/hypothesize", "Three hypotheses of what the user means, with confidence, personalised by facets, goals, preferences and history (LLM when available, rules otherwise); includes the record to send to execute one")
            .body(s.input::<HypothesizeBody>())
            .answers(s.output::<HypothesizeAnswer>()),
        RouteSpec::get("list_users", "/users", "Every user with interaction and feedback counts")
            .answers(s.output::<UsersAnswer>()),
        RouteSpec::get("get_user", "/users/{user}", "A user's persona: facets, interaction count, active goals and preferences, superseded preferences, recent history, and which analysis it reflects (rules, or rules refined by the LLM; interactions still waiting for enrichment). Answers at once: never waits for the LLM")
            .answers(s.output::<PersonaAnswer>()),
        RouteSpec::get("search_memories", "/users/{user}/memories", "Search a user's memories by text, and by meaning when an embedder is configured")
            .query(vec![
                {
                    let mut q = QueryParam::string("q", "The text to search for (empty: nothing matches)");
                    q.schema = serde_json::json!({"type": "string"});
                    q
                },
                {
                    let mut t = QueryParam::string("type", "Only memories of this type: GOAL, PREFERENCE or HISTORY (any case)");
                    t.schema = serde_json::json!({"type": "string", "pattern": "^([Gg][Oo][Aa][Ll]|[Pp][Rr][Ee][Ff][Ee][Rr][Ee][Nn][Cc][Ee]|[Hh][Ii][Ss][Tt][Oo][Rr][Yy])$"});
                    t
                },
                QueryParam::boolean("include_superseded", "Also superseded and expired memories (default false)"),
                limit(50, 1000),
                QueryParam::number("min_similarity", "Least cosine similarity for a match by meaning (default 0.75)", 0.0, 1.0),
            ])
            .answers(s.output::<MemoriesAnswer>()),
        RouteSpec::get("list_updates", "/users/{user}/updates", "A user's persona-update log, newest first")
            .query(vec![limit(50, 1000)])
            .answers(s.output::<UpdatesAnswer>()),
        RouteSpec::get("get_preferences", "/users/{user}/preferences", "Feedback learning: preferred model per task type (EMA), time-of-day patterns, next activity, held-out preference accuracy")
            .answers(s.output::<PreferencesAnswer>()),
        RouteSpec::get("get_next_activity", "/users/{user}/next-activity", "The most likely next task type")
            .query(vec![QueryParam::date_time("at", "The time asked about, for the time-of-day fallback (default: the user's newest event)")])
            .answers(s.output::<NextActivityAnswer>()),
        RouteSpec::get("get_training_stats", "/training/stats", "Training data counts")
            .answers(s.output::<TrainingStats>()),
        RouteSpec::get("export_hypotheses", "/training/hypotheses", "Hypothesis-selection training records (hypotheses_data.jsonl format), a page at a time")
            .query(vec![format(), limit(1000, 10_000), after()])
            .answers(s.output::<TrainingPage<HypothesisRecord>>()),
        RouteSpec::get("export_persona_updates", "/training/persona-updates", "Persona-update training records (persona_updates.jsonl format), a page at a time")
            .query(vec![format(), limit(1000, 10_000), after()])
            .answers(s.output::<TrainingPage<UpdateRecord>>()),
        RouteSpec::get("export_dataset", "/training/dataset", "Chat-format fine-tuning dataset of the selections with confidence ≥ min_confidence, a page at a time")
            .query(vec![
                QueryParam::number("min_confidence", "Least selected confidence included (default min_training_confidence)", 0.0, 1.0),
                format(),
                limit(1000, 10_000),
                after(),
            ])
            .answers(s.output::<DatasetAnswer>()),
        RouteSpec::get("get_stats", "/stats", "Totals: users, interactions, feedback, LLM vs rules analyses, interactions waiting for LLM enrichment, overall held-out preference accuracy")
            .answers(s.output::<StatsAnswer>()),
    ]
}

/// A 200 answer with `body` as its JSON.
fn answer<T: Serialize>(body: &T) -> Result<RouteResponse, PluginError> {
    Ok(RouteResponse::ok(serde_json::to_value(body)?))
}

/// The next activity as routes show it.
fn next_activity(next: Option<(String, f64, &'static str)>) -> Option<NextActivity> {
    next.map(|(task_type, probability, basis)| NextActivity { task_type, probability, basis: basis.into() })
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

impl PersonaPlugin {
    /// Answers a route.
    pub(crate) fn route(&self, ctx: &mut dyn Context, req: &RouteRequest) -> Result<RouteResponse, PluginError> {
        if req.route.starts_with("/users/{user}") {
            let user = req.param("user")?.to_string();
            let u = self.load_user(ctx, &user)?.ok_or_else(|| PluginError::not_found(format!("no user {user:?}")))?;
            return self.user_route(ctx, req, &user, &u);
        }
        match (req.method.as_str(), req.route.as_str()) {
            ("POST", "/hypothesize") => self.hypothesize(ctx, req.body_as()?),
            ("GET", "/users") => {
                let mut users = Vec::new();
                for (k, v) in scan_all(ctx, "user/")? {
                    let u: UserDoc = serde_json::from_value(v)?;
                    users.push(UserSummary {
                        user_id: k["user/".len()..].to_string(),
                        interaction_count: u.interaction_count,
                        feedback_count: u.feedback_count(),
                        newest_event_time: known_time(u.newest),
                    });
                }
                answer(&UsersAnswer { users })
            }
            ("GET", "/training/stats") => answer(&self.training_stats(ctx)?),
            ("GET", "/training/hypotheses") => {
                let (records, next) = self.training_page::<HypothesisRecord>(ctx, req, "h")?;
                as_format(req, records, next)
            }
            ("GET", "/training/persona-updates") => {
                let (records, next) = self.training_page::<UpdateRecord>(ctx, req, "p")?;
                as_format(req, records, next)
            }
            ("GET", "/training/dataset") => self.dataset(ctx, req),
            ("GET", "/stats") => answer(&self.stats(ctx)?),
            _ => Err(PluginError::not_found(format!("no route {} {}", req.method, req.route))),
        }
    }

    /// The routes under `/users/{user}`, for a user that exists.
    fn user_route(
        &self,
        ctx: &mut dyn Context,
        req: &RouteRequest,
        user: &str,
        u: &UserDoc,
    ) -> Result<RouteResponse, PluginError> {
        let cfg = self.config();
        match (req.method.as_str(), req.route.as_str()) {
            ("GET", "/users/{user}") => answer(&self.persona(user, u)),
            ("GET", "/users/{user}/memories") => answer(&self.memories(ctx, user, u, req)?),
            ("GET", "/users/{user}/updates") => {
                let limit = req.query_usize("limit", 50, 1000)?;
                let updates = self.history(ctx, user)?.into_iter().take(limit).map(|d| d.update.shown()).collect();
                answer(&UpdatesAnswer { user_id: user.to_string(), updates })
            }
            ("GET", "/users/{user}/preferences") => answer(&self.preferences(user, u)),
            ("GET", "/users/{user}/next-activity") => {
                let at = match req.query_str("at") {
                    None => u.newest,
                    Some(s) => Timestamp::parse("at", s)?.as_micros(),
                };
                answer(&NextActivityAnswer {
                    user_id: user.to_string(),
                    at: known_time(at),
                    time_of_day: persona::time_bucket(at, cfg.utc_offset_hours).to_string(),
                    last_task: u.last_task.clone(),
                    next_activity: next_activity(u.next_activity(at, cfg)),
                })
            }
            _ => Err(PluginError::not_found(format!("no route {} {}", req.method, req.route))),
        }
    }

    /// A user's document, with facets configured since it was written.
    pub(crate) fn load_user(&self, ctx: &mut dyn Context, user: &str) -> Result<Option<UserDoc>, PluginError> {
        Ok(match ctx.get_state(&crate::user_key(user))? {
            Some(s) => {
                let mut u: UserDoc = serde_json::from_value(s.value)?;
                u.ensure_facets(self.config());
                Some(u)
            }
            None => None,
        })
    }

    fn rule_hypotheses(&self, u: &UserDoc, input: &str) -> Vec<Hypothesis> {
        let cfg = self.config();
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

    /// `POST /hypothesize`. Every refusal names its field: the parse
    /// names a missing or mistyped one, the checks here a value out of
    /// bounds.
    fn hypothesize(&self, ctx: &mut dyn Context, body: HypothesizeBody) -> Result<RouteResponse, PluginError> {
        let user = body.user_id.as_str();
        if user.is_empty() || user.len() > 128 {
            return Err(PluginError::invalid("user_id", "expected a non-empty string of at most 128 bytes"));
        }
        let input = body.input_text.as_str();
        if input.trim().is_empty() || input.chars().count() > 2000 {
            return Err(PluginError::invalid("input_text", "expected a non-empty string of at most 2000 characters"));
        }
        let task = body.task_type.clone();
        if task.as_ref().is_some_and(|t| t.is_empty() || t.len() > 64) {
            return Err(PluginError::invalid("task_type", "expected a string of at most 64 bytes"));
        }
        let u = self.load_user(ctx, user)?.unwrap_or_else(|| UserDoc::new(self.config()));
        let context = self.context(&u);
        let (hyps, status) = if self.config().use_llm {
            match llm::hypothesize(ctx, input, &serde_json::to_value(&context)?) {
                Ok(h) => (h, LlmStatus::Used),
                Err(s) => (self.rule_hypotheses(&u, input), s),
            }
        } else {
            (self.rule_hypotheses(&u, input), LlmStatus::Disabled)
        };
        answer(&HypothesizeAnswer {
            user_id: user.to_string(),
            input_text: input.to_string(),
            hypotheses: hyps.clone(),
            source: if status == LlmStatus::Used { "llm" } else { "rules" }.into(),
            llm: status.label().into(),
            context,
            execute: ExecuteHint {
                note: "send this prediction (with a new id and `label` set to the chosen hypothesis id) to POST /api/v1/predictions to execute it".into(),
                record: ExecuteRecord {
                    record_type: "prediction".into(),
                    plugin: "persona".into(),
                    subject: user.to_string(),
                    kind: INTERACTION.into(),
                    label: "h1".into(),
                    payload: InteractionPayload { input_text: input.to_string(), hypotheses: hyps, task_type: task },
                },
            },
        })
    }

    /// `GET /users/{user}`.
    fn persona(&self, user: &str, u: &UserDoc) -> PersonaAnswer {
        let cfg = self.config();
        PersonaAnswer {
            user_id: user.to_string(),
            facets: u.facets.clone(),
            interaction_count: u.interaction_count,
            goals: u.active(MemoryType::Goal, cfg).iter().map(|m| m.answer(u.newest, cfg)).collect(),
            preferences: u.active(MemoryType::Preference, cfg).iter().map(|m| m.answer(u.newest, cfg)).collect(),
            superseded_preferences: u
                .memories
                .iter()
                .filter(|m| m.mtype == MemoryType::Preference && m.valid_to.is_some())
                .map(|m| m.answer(u.newest, cfg))
                .collect(),
            recent_history: u
                .recent
                .iter()
                .rev()
                .map(|r| RecentAnswer { interaction_id: r.id.clone(), content: r.content.clone() })
                .collect(),
            analysed_by: AnalysedBy { llm: u.analysed_by_llm, rules: u.analysed_by_rules },
            analysis: if u.analysed_by_llm > 0 { "rules+llm" } else { "rules" }.into(),
            llm_pending: u.llm_pending,
            last_enriched_at: known_time(u.last_enriched_at),
            feedback_count: u.feedback_count(),
            first_event_time: known_time(u.first),
            newest_event_time: known_time(u.newest),
        }
    }

    /// `GET /users/{user}/preferences`.
    fn preferences(&self, user: &str, u: &UserDoc) -> PreferencesAnswer {
        let cfg = self.config();
        let f = &u.feedback;
        let preferred_models = f
            .ema
            .iter()
            .map(|(task, ema)| {
                let (best, score) = u.preferred_model(task).unwrap_or_default();
                let pref = ModelPreference {
                    preferred_model: best,
                    score,
                    ema: ema.clone(),
                    feedback: f.counts.get(task).cloned(),
                };
                (task.clone(), pref)
            })
            .collect();
        let time_of_day = u
            .time_of_day
            .iter()
            .map(|(bucket, m)| {
                let total: u64 = m.values().sum();
                let top = m.iter().max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)));
                let usage = TimeOfDayUsage {
                    total,
                    usual_task: top.map(|t| t.0.clone()),
                    share: top.map(|t| round4(*t.1 as f64 / total.max(1) as f64)),
                    tasks: m.clone(),
                };
                (bucket.clone(), usage)
            })
            .collect();
        let n = u.feedback_count();
        PreferencesAnswer {
            user_id: user.to_string(),
            preferred_models,
            time_of_day,
            next_activity: next_activity(u.next_activity(u.newest, cfg)),
            preference_accuracy: u.accuracy().map(round4),
            accuracy_ceiling: u.accuracy_ceiling().map(round4),
            held_out: HeldOut {
                scored: f.held_out,
                correct: f.held_out_correct,
                unscored: f.held_out_unscored,
                fraction: cfg.holdout_fraction,
            },
            feedback: FeedbackSummary {
                total: n,
                learned_from: f.learned,
                thumbs_up: f.thumbs_up,
                thumbs_down: f.thumbs_down,
                ratings: f.ratings,
                average_score: (n > 0).then(|| round4(f.score_sum / n as f64)),
                average_response_length: (f.length_n > 0).then(|| round4(f.length_sum / f.length_n as f64)),
            },
            learning_rate: cfg.learning_rate,
        }
    }

    /// History memories and update log entries of a user, newest first.
    fn history(&self, ctx: &mut dyn Context, user: &str) -> Result<Vec<HistDoc>, PluginError> {
        let mut docs = Vec::new();
        for (_, v) in scan_all(ctx, &format!("hist/{user}/"))? {
            docs.push(serde_json::from_value::<HistDoc>(v)?);
        }
        docs.sort_by(|a, b| (b.update.time, &b.update.interaction_id).cmp(&(a.update.time, &a.update.interaction_id)));
        Ok(docs)
    }

    /// `GET /users/{user}/memories`: text search, and search by meaning
    /// when an embedder is configured.
    fn memories(
        &self,
        ctx: &mut dyn Context,
        user: &str,
        u: &UserDoc,
        req: &RouteRequest,
    ) -> Result<MemoriesAnswer, PluginError> {
        let cfg = self.config();
        let mtype = match req.query_str("type") {
            None => None,
            Some(s) => Some(
                MemoryType::parse(s)
                    .ok_or_else(|| PluginError::invalid("type", format!("{s:?} is not GOAL, PREFERENCE or HISTORY")))?,
            ),
        };
        let include_superseded = req.query_bool("include_superseded")?.unwrap_or(false);
        let limit = req.query_usize("limit", 50, 1000)?;
        let raw_q = req.query_str("q").unwrap_or_default();
        let q = rules::tokens(raw_q);
        let mut all: Vec<Memory> = u.memories.clone();
        if mtype.is_none() || mtype == Some(MemoryType::History) {
            all.extend(self.history(ctx, user)?.into_iter().map(|d| d.memory));
        }
        let candidates: Vec<Memory> = all
            .into_iter()
            .filter(|m| mtype.is_none_or(|t| m.mtype == t))
            .filter(|m| include_superseded || m.valid_to.is_none())
            .collect();
        // With an embedder (e.g. `[vector] embedder = "ollama"`), a memory
        // also matches by meaning: its cosine similarity to the query, when
        // at least `min_similarity`. Without one, text matching alone.
        let min_similarity = req.query_f64("min_similarity", 0.75, 0.0, 1.0)?;
        let raw_q = raw_q.trim();
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
        Ok(MemoriesAnswer {
            user_id: user.to_string(),
            memories: hits
                .iter()
                .take(limit)
                .map(|(s, _, _, m)| {
                    let mut a = m.answer(u.newest, cfg);
                    a.match_score = Some(round4(*s));
                    a
                })
                .collect(),
            total: hits.len(),
            ranking: if similarity.is_some() { "text+embeddings" } else { "text" }.into(),
        })
    }

    /// A page of training records under `train/<kind>/`.
    fn training_page<T: serde::de::DeserializeOwned>(
        &self,
        ctx: &mut dyn Context,
        req: &RouteRequest,
        kind: &str,
    ) -> Result<(Vec<T>, Option<String>), PluginError> {
        let limit = req.query_usize("limit", 1000, 10_000)?;
        let prefix = format!("train/{kind}/");
        let after = match req.query_str("after") {
            None => None,
            Some(a) if a.len() == 16 && a.bytes().all(|b| b.is_ascii_digit()) => Some(format!("{prefix}{a}")),
            Some(_) => return Err(PluginError::invalid("after", "not a cursor this route handed out (`next`)")),
        };
        let page = ctx.scan_state(&prefix, after.as_deref(), limit)?;
        let next = if page.len() == limit { page.last().map(|(k, _)| k[prefix.len()..].to_string()) } else { None };
        let mut records = Vec::new();
        for (_, s) in page {
            records.push(serde_json::from_value(s.value)?);
        }
        Ok((records, next))
    }

    /// `GET /training/dataset`: chat-format samples of the selections with
    /// confidence ≥ `min_confidence`.
    fn dataset(&self, ctx: &mut dyn Context, req: &RouteRequest) -> Result<RouteResponse, PluginError> {
        let min = req.query_f64("min_confidence", self.config().min_training_confidence, 0.0, 1.0)?;
        let (records, next) = self.training_page::<HypothesisRecord>(ctx, req, "h")?;
        let considered = records.len();
        let samples: Vec<ChatSample> = records
            .into_iter()
            .filter(|r| r.selected_confidence >= min && r.label == "positive")
            .map(|r| {
                let c = &r.context;
                let system = format!(
                    "You guess what the user wants. Persona facets: {}. Goals: {}. Preferences: {}.",
                    json_text(&c.persona_facets),
                    json_text(&c.recent_goals),
                    json_text(&c.preferences)
                );
                let message = |role: &str, content: String| ChatMessage { role: role.into(), content };
                ChatSample {
                    messages: vec![
                        message("system", system),
                        message("user", r.user_input),
                        message("assistant", r.selected_text),
                    ],
                }
            })
            .collect();
        match format(req)? {
            Format::Json => {
                answer(&DatasetAnswer::Json(DatasetPage { samples, next, min_confidence: min, considered }))
            }
            Format::Jsonl => answer(&DatasetAnswer::Jsonl(DatasetJsonlPage {
                page: jsonl(&samples, next)?,
                min_confidence: min,
                considered,
            })),
        }
    }

    fn training_stats(&self, ctx: &mut dyn Context) -> Result<TrainingStats, PluginError> {
        let (meta, _) = get_doc::<Meta>(ctx, "meta")?;
        Ok(TrainingStats {
            enabled: self.config().training_data,
            hypotheses_count: meta.training_hypotheses,
            persona_updates_count: meta.training_updates,
            negative_updates: meta.training_negative,
            min_confidence_for_training: self.config().min_training_confidence,
        })
    }

    fn stats(&self, ctx: &mut dyn Context) -> Result<StatsAnswer, PluginError> {
        let (meta, _) = get_doc::<Meta>(ctx, "meta")?;
        let (enrich, _) = get_doc::<EnrichStats>(ctx, "enrich_stats")?;
        let mut rules_because = meta.rules_because.clone();
        for (why, n) in [
            ("no_answer", enrich.no_answer),
            ("malformed", enrich.malformed),
            ("disabled", enrich.disabled),
            ("undone", enrich.undone),
        ] {
            if n > 0 {
                *rules_because.entry(why.into()).or_default() += n;
            }
        }
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
        Ok(StatsAnswer {
            users: meta.users,
            interactions: meta.interactions,
            responses: meta.responses,
            feedback: meta.feedback,
            analysed_by_llm: meta.analysed_by_llm + enrich.used,
            analysed_by_rules: rules_because,
            llm_pending: meta.llm_queued.saturating_sub(enrich.done),
            llm_dropped: meta.llm_dropped,
            preference_accuracy: accuracy.map(round4),
            accuracy_ceiling: ceiling.map(round4),
            accuracy_of_ceiling: accuracy.zip(ceiling).filter(|(_, c)| *c > 0.0).map(|(a, c)| round4(a / c)),
            held_out_scored: scored,
            accuracy_target: 0.9,
            training: TrainingCounts {
                hypotheses_count: meta.training_hypotheses,
                persona_updates_count: meta.training_updates,
            },
        })
    }
}

/// Compact JSON text of a value, as the JSON value it is (key order as
/// serde_json's maps keep it).
fn json_text<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v).map(|v| v.to_string()).unwrap_or_default()
}

/// The `format` query parameter of the training routes.
enum Format {
    Json,
    Jsonl,
}

fn format(req: &RouteRequest) -> Result<Format, PluginError> {
    match req.query_str("format") {
        None | Some("json") => Ok(Format::Json),
        Some("jsonl") => Ok(Format::Jsonl),
        Some(other) => Err(PluginError::invalid("format", format!("{other:?} is not json or jsonl"))),
    }
}

/// Records as JSON lines, one JSON value per line.
fn jsonl<T: Serialize>(records: &[T], next: Option<String>) -> Result<JsonlPage, PluginError> {
    let mut s = String::new();
    for r in records {
        s.push_str(&serde_json::to_value(r)?.to_string());
        s.push('\n');
    }
    Ok(JsonlPage { format: "jsonl".into(), jsonl: s, count: records.len(), next })
}

/// A page of training records in the requested format.
fn as_format<T: Serialize>(
    req: &RouteRequest,
    records: Vec<T>,
    next: Option<String>,
) -> Result<RouteResponse, PluginError> {
    match format(req)? {
        Format::Json => answer(&TrainingPage::Json(RecordsPage { records, next })),
        Format::Jsonl => answer(&TrainingPage::<T>::Jsonl(jsonl(&records, next)?)),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use learnloop_plugin_api::Plugin;
    use serde_json::Value;

    /// Every `$ref` in `v`.
    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                if let Some(r) = m.get("$ref").and_then(Value::as_str) {
                    out.push(r);
                }
                m.values().for_each(|v| refs(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn routes_are_named_typed_and_their_schemas_resolve() {
        let m = crate::PersonaPlugin::default().manifest();
        let mut names = BTreeSet::new();
        for r in &m.routes {
            assert!(names.insert(r.name.as_str()), "{} is not unique", r.name);
            assert!(r.query.is_some(), "{}: query parameters are not declared", r.name);
            let answer = r.response_schema.get("items").unwrap_or(&r.response_schema);
            let target = answer["$ref"].as_str().and_then(|s| s.strip_prefix("#/$defs/"));
            assert!(
                target.is_some_and(|t| m.schemas.contains_key(t)),
                "{}: the answer is not a named schema: {}",
                r.name,
                r.response_schema
            );
            assert_eq!(r.request_schema.is_null(), r.method != "POST", "{}", r.name);
        }
        let mut all = Vec::new();
        for r in &m.routes {
            refs(&r.request_schema, &mut all);
            refs(&r.response_schema, &mut all);
        }
        m.schemas.values().for_each(|s| refs(s, &mut all));
        // Two types with one name get a number appended: name one of them.
        for name in m.schemas.keys() {
            assert!(!name.ends_with(|c: char| c.is_ascii_digit()), "{name}: two types share a schema name");
        }
        for r in all {
            let name = r.strip_prefix("#/$defs/").unwrap_or_else(|| panic!("{r} is not into the definitions"));
            assert!(m.schemas.contains_key(name), "{r} does not resolve");
        }
    }
}
