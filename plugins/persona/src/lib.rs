//! The `persona` plugin. Learns a user's facets, goals and preferences from their interactions with an assistant (seeds 002, 003). Skeleton: validates records and keeps per-user online counters; facets, preferences and the Ollama path arrive with the persona plugin issue.
//!
//! SKELETON: this crate is the honest minimum the plugin host needs
//! (manifest, config section, record validation, online counters through
//! [`learnloop_plugin_api::summary`], one job and one route). It is marked as
//! such in README.md until its own issue replaces it.

#![deny(missing_docs)]

use learnloop_plugin_api::core::RecordType;
use learnloop_plugin_api::{
    Context, Event, JobSpec, KindSpec, Manifest, Plugin, PluginError, Record, RouteRequest, RouteResponse, RouteSpec,
    ValidationError, abi, parse_config, summary,
};
use serde::Deserialize;
use serde_json::{Value, json};

/// The `[persona]` config section. The skeleton has no keys yet; an unknown
/// key is still an error naming it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {}

/// The plugin.
#[derive(Debug, Default)]
pub struct PersonaPlugin {
    config: Config,
}

impl Plugin for PersonaPlugin {
    fn manifest(&self) -> Manifest {
        Manifest {
            name: "persona".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            abi_version: abi::ABI_VERSION,
            description: "Learns a user's facets, goals and preferences from their interactions with an assistant (seeds 002, 003). Skeleton: validates records and keeps per-user online counters; facets, preferences and the Ollama path arrive with the persona plugin issue.".into(),
            kinds: vec![
                KindSpec {
                    record_type: RecordType::Prediction,
                    kinds: vec![],
                    payload_schema: json!({"type": "object"}),
                    description: "task type (code, writing, analysis, ...); subject is the user id".into(),
                },
                KindSpec {
                    record_type: RecordType::Outcome,
                    kinds: vec![],
                    payload_schema: json!({"type": "object"}),
                    description: "what happened to a prediction".into(),
                },
            ],
            routes: vec![RouteSpec {
                method: "GET".into(),
                path: "/summary".into(),
                summary: "Per-subject online counters (predictions, outcomes, successes, failures, value sums) by kind".into(),
                writes: false,
                request_schema: Value::Null,
                response_schema: json!({"type": "object"}),
            }],
            jobs: vec![JobSpec {
                name: "preference_update".into(),
                schedule: "0 0 4 * * *".into(),
                description: "Daily preference update (skeleton: per-user totals as an insight).".into(),
            }],
            config: vec![],
        }
    }

    fn configure(&mut self, section: &Value) -> Result<(), PluginError> {
        self.config = parse_config("persona", section)?;
        Ok(())
    }

    fn validate(&self, record: &Record) -> Result<(), ValidationError> {
        if let Record::Prediction(p) = record {
            if p.subject.len() > 128 {
                return Err(ValidationError::new("subject", "user ids are at most 128 bytes"));
            }
        }
        Ok(())
    }

    fn on_events(&self, ctx: &mut dyn Context, events: &[Event]) -> Result<(), PluginError> {
        summary::absorb(ctx, events)
    }

    fn run_job(&self, ctx: &mut dyn Context, job: &str) -> Result<Value, PluginError> {
        match job {
            "preference_update" => summary::report(ctx, "persona"),
            other => Err(PluginError::invalid("job", format!("unknown job {other:?}"))),
        }
    }

    fn handle(&self, ctx: &mut dyn Context, request: &RouteRequest) -> Result<RouteResponse, PluginError> {
        match (request.method.as_str(), request.route.as_str()) {
            ("GET", "/summary") => summary::route(ctx),
            _ => Err(PluginError::not_found(format!("no route {} {}", request.method, request.route))),
        }
    }
}

learnloop_plugin_api::export_plugin!(PersonaPlugin, PersonaPlugin::default);
