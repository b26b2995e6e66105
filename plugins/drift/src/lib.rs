//! The `drift` plugin. Monitors ML models: performance, error analysis, drift, retraining, A/B tests (seeds 004, 003). Skeleton: validates records and keeps per-model online counters; the statistics arrive with the drift plugin issue.
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

/// The `[drift]` config section. The skeleton has no keys yet; an unknown
/// key is still an error naming it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {}

/// The plugin.
#[derive(Debug, Default)]
pub struct DriftPlugin {
    config: Config,
}

impl Plugin for DriftPlugin {
    fn manifest(&self) -> Manifest {
        Manifest {
            name: "drift".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            abi_version: abi::ABI_VERSION,
            description: "Monitors ML models: performance, error analysis, drift, retraining, A/B tests (seeds 004, 003). Skeleton: validates records and keeps per-model online counters; the statistics arrive with the drift plugin issue.".into(),
            kinds: vec![
                KindSpec {
                    record_type: RecordType::Prediction,
                    kinds: vec![],
                    payload_schema: json!({"type": "object"}),
                    description: "model type; subject is the model id".into(),
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
                name: "daily".into(),
                schedule: "0 0 1 * * *".into(),
                description: "Daily check (skeleton: per-model totals as an insight).".into(),
            }],
            config: vec![],
        }
    }

    fn configure(&mut self, section: &Value) -> Result<(), PluginError> {
        self.config = parse_config("drift", section)?;
        Ok(())
    }

    fn validate(&self, record: &Record) -> Result<(), ValidationError> {
        match record {
            Record::Prediction(p) if p.value.is_none() && p.label.is_none() => Err(ValidationError::new(
                "value",
                "is required: the model's predicted value (or `label` for a classifier)",
            )),
            Record::Outcome(o) if o.value.is_none() && o.label.is_none() => Err(ValidationError::new(
                "value",
                "is required: the actual value (or `label` for a classifier)",
            )),
            _ => Ok(()),
        }
    }

    fn on_events(&self, ctx: &mut dyn Context, events: &[Event]) -> Result<(), PluginError> {
        summary::absorb(ctx, events)
    }

    fn run_job(&self, ctx: &mut dyn Context, job: &str) -> Result<Value, PluginError> {
        match job {
            "daily" => summary::report(ctx, "drift"),
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

learnloop_plugin_api::export_plugin!(DriftPlugin, DriftPlugin::default);
