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
//!
//! Code map: [`config`] (the `[persona]` section), [`record`] (which
//! records are accepted), [`online`] (the update as events arrive, and the
//! documents it writes), [`routes`] (the routes; their answers are the types
//! of [`answers`]), [`jobs`] (the scheduled jobs and their reports),
//! [`persona`] (the user document), [`rules`] and [`llm`] (the two ways of
//! analysing an interaction). This file wires them into the [`Plugin`] trait.

#![deny(missing_docs)]

pub mod answers;
pub mod config;
pub mod jobs;
pub mod llm;
pub mod online;
pub mod persona;
pub mod record;
pub mod routes;
pub mod rules;

use learnloop_plugin_api::core::RecordType;
use learnloop_plugin_api::{
    Context, Event, JobSpec, KindSpec, Manifest, Plugin, PluginError, Record, RouteRequest, RouteResponse, RouteSpec,
    ValidationError, abi, parse_config,
};
use serde_json::{Value, json};

pub use config::Config;
pub use online::Meta;

pub(crate) use learnloop_plugin_api::state::{get_doc, put_doc};

/// The prediction kind of an executed interaction.
pub const INTERACTION: &str = "interaction";

/// The plugin.
#[derive(Debug, Default)]
pub struct PersonaPlugin {
    config: Config,
}

impl PersonaPlugin {
    /// The active configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }
}

/// The key of a user's document.
fn user_key(user: &str) -> String {
    format!("user/{user}")
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
        record::validate(record)
    }

    fn on_events(&self, ctx: &mut dyn Context, events: &[Event]) -> Result<(), PluginError> {
        self.update(ctx, events)
    }

    fn run_job(&self, ctx: &mut dyn Context, job: &str) -> Result<Value, PluginError> {
        self.job(ctx, job)
    }

    fn handle(&self, ctx: &mut dyn Context, req: &RouteRequest) -> Result<RouteResponse, PluginError> {
        self.route(ctx, req)
    }
}

learnloop_plugin_api::export_plugin!(PersonaPlugin, PersonaPlugin::default);
