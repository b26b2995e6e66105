//! The `persona` plugin: learns a user's facets, goals and preferences from
//! their interactions with an assistant (seed 002's hypothesize/execute
//! learning loop) and their feedback on its answers (seed 003's preference
//! tracker); optionally enhanced by a local Ollama model through the host's
//! LLM service, always working without one. The online update (which every
//! route waits for) never calls the LLM: the `enrich` job does.
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
//! State (the rule analysis is reproducible from history by replay; LLM
//! enrichment is not — replay queues interactions again and the `enrich`
//! job asks the LLM again):
//! * `user/<user>` — [`persona::UserDoc`]: facets, goal and preference
//!   memories with validity intervals, recent interactions, feedback learner;
//! * `hist/<user>/<interaction>` — the HISTORY memory and persona-update log
//!   entry of one interaction;
//! * `resp/<response>` — a response's model and task until its feedback;
//! * `enrich/<seq>` — an interaction waiting for LLM enrichment, and
//!   `enrich_stats` — what the `enrich` job did (written by the job only);
//! * `train/h/<seq>`, `train/p/<seq>` — training data in the seed's
//!   formats (hypotheses_data.jsonl, persona_updates.jsonl) unless
//!   `training_data = false`;
//! * `meta` — totals.
//!
//! Code map: [`config`] (the `[persona]` section), [`record`] (which
//! records are accepted), [`online`] (the update as events arrive, and the
//! documents it writes), [`routes`] (the routes, declared with their query
//! parameters and with schemas made from their body and answer types, and
//! answered; the answers are the types of [`answers`]), [`jobs`] (the
//! scheduled jobs and their reports), [`enrich`] (the job that refines
//! queued interactions with the LLM, off the read path), [`persona`] (the
//! user document), [`rules`] and [`llm`] (the two ways of analysing an
//! interaction). This file wires them into the [`Plugin`] trait.

#![deny(missing_docs)]

pub mod answers;
pub mod config;
pub mod enrich;
pub mod jobs;
pub mod llm;
pub mod online;
pub mod persona;
pub mod record;
pub mod routes;
pub mod rules;

use learnloop_plugin_api::core::RecordType;
use learnloop_plugin_api::{
    Context, Event, JobSpec, KindSpec, Manifest, Plugin, PluginError, Record, RouteRequest, RouteResponse, Schemas,
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
        let job = JobSpec::new;
        let mut schemas = Schemas::new();
        let routes = routes::specs(&mut schemas);
        Manifest {
            name: "persona".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            abi_version: abi::ABI_VERSION,
            description: "Learns a user's facets, goals and preferences from their interactions with an assistant (seeds 002, 003): hypotheses personalised by what it learned, execute learning loop (goal and preference extraction, facet updates, history, persona-update log, training data), feedback learning (preferred model per task by EMA, time-of-day patterns, next-activity prediction, held-out accuracy). Rules analyse each interaction at once; with a local LLM, the enrich job refines that analysis later (reads never wait for it).".into(),
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
            routes,
            jobs: vec![
                job("preference_update", "0 0 4 * * *", "Daily: preferred models, accuracy and next activity of every user as an insight"),
                job("memory_decay", "0 30 4 * * *", "Daily: expire memories whose decayed confidence fell below min_memory_confidence (when memory_half_life_days > 0)"),
                job("enrich", "0 * * * * *", "Every minute: ask the LLM about interactions queued since (at most enrich_per_run) and refine their rule analysis with its answer"),
            ],
            config: Config::keys(),
            schemas: schemas.into_definitions(),
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
