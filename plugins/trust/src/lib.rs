//! The `trust` plugin. Learns how far to trust each agent of a swarm from how its recommendations were judged (seed 001). Skeleton: validates records and keeps per-agent online counters; trust scores, patterns and routing arrive with the trust plugin issue.
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

/// The `[trust]` config section. The skeleton has no keys yet; an unknown
/// key is still an error naming it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {}

/// The plugin.
#[derive(Debug, Default)]
pub struct TrustPlugin {
    config: Config,
}

impl Plugin for TrustPlugin {
    fn manifest(&self) -> Manifest {
        Manifest {
            name: "trust".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            abi_version: abi::ABI_VERSION,
            description: "Learns how far to trust each agent of a swarm from how its recommendations were judged (seed 001). Skeleton: validates records and keeps per-agent online counters; trust scores, patterns and routing arrive with the trust plugin issue.".into(),
            kinds: vec![
                KindSpec {
                    record_type: RecordType::Prediction,
                    kinds: vec![],
                    payload_schema: json!({"type": "object"}),
                    description: "any recommendation type; subject is the agent id".into(),
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
                name: "meta_learning".into(),
                schedule: "0 0 2 * * *".into(),
                description: "Daily meta-learning cycle (skeleton: per-agent totals as an insight).".into(),
            }],
            config: vec![],
        }
    }

    fn configure(&mut self, section: &Value) -> Result<(), PluginError> {
        self.config = parse_config("trust", section)?;
        Ok(())
    }

    fn validate(&self, record: &Record) -> Result<(), ValidationError> {
        if let Record::Outcome(o) = record {
            if let Some(label) = &o.label {
                if !["approved", "rejected", "partial", "pending"].contains(&label.as_str()) {
                    return Err(ValidationError::new(
                        "label",
                        format!("{label:?} is not a status; expected approved, rejected, partial or pending"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn on_events(&self, ctx: &mut dyn Context, events: &[Event]) -> Result<(), PluginError> {
        summary::absorb(ctx, events)
    }

    fn run_job(&self, ctx: &mut dyn Context, job: &str) -> Result<Value, PluginError> {
        match job {
            "meta_learning" => summary::report(ctx, "trust"),
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

learnloop_plugin_api::export_plugin!(TrustPlugin, TrustPlugin::default);
