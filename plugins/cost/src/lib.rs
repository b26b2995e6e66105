//! The `cost` plugin. Learns from cost-saving recommendations and their executed outcomes (seed 000). Skeleton: validates records and keeps per-resource online counters; calibration, similar cases and assess arrive with the cost plugin issue.
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

/// The `[cost]` config section. The skeleton has no keys yet; an unknown
/// key is still an error naming it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {}

/// The plugin.
#[derive(Debug, Default)]
pub struct CostPlugin {
    config: Config,
}

impl Plugin for CostPlugin {
    fn manifest(&self) -> Manifest {
        Manifest {
            name: "cost".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            abi_version: abi::ABI_VERSION,
            description: "Learns from cost-saving recommendations and their executed outcomes (seed 000). Skeleton: validates records and keeps per-resource online counters; calibration, similar cases and assess arrive with the cost plugin issue.".into(),
            kinds: vec![
                KindSpec {
                    record_type: RecordType::Prediction,
                    kinds: vec![],
                    payload_schema: json!({"type": "object"}),
                    description: "any recommendation type, e.g. rightsizing, spot_instances, reserved_instances, storage_tiering".into(),
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
                name: "learning_cycle".into(),
                schedule: "0 0 3 * * *".into(),
                description: "Daily learning cycle (skeleton: per-resource totals as an insight).".into(),
            }],
            config: vec![],
        }
    }

    fn configure(&mut self, section: &Value) -> Result<(), PluginError> {
        self.config = parse_config("cost", section)?;
        Ok(())
    }

    fn validate(&self, record: &Record) -> Result<(), ValidationError> {
        match record {
            Record::Prediction(p) => {
                let savings = p.value.ok_or_else(|| ValidationError::new("value", "is required: the predicted monthly savings"))?;
                if savings < 0.0 {
                    return Err(ValidationError::new("value", format!("predicted savings must not be negative, got {savings}")));
                }
            }
            Record::Outcome(o) => {
                if let Some(issues) = o.payload.get("issues_encountered") {
                    let ok = issues.as_array().is_some_and(|a| a.iter().all(|v| v.is_string()));
                    if !ok {
                        return Err(ValidationError::new("payload.issues_encountered", "must be a list of strings"));
                    }
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
            "learning_cycle" => summary::report(ctx, "cost"),
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

learnloop_plugin_api::export_plugin!(CostPlugin, CostPlugin::default);
