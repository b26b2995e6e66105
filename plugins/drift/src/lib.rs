//! The `drift` plugin: monitors ML models (seed 004).
//!
//! * **Online** ([`online`]): every prediction is kept (bounded) until its
//!   outcome arrives; each outcome gets its error (`actual − predicted`) and
//!   error % and feeds all-time totals per model and per
//!   `payload.model_version`, and ADWIN on the absolute error, which raises an
//!   `online_error_increase` alert when the error grows.
//! * **Windows** ([`window`]): the routes and jobs read history in pages:
//!   predictions by event time, joined with their first outcomes. Windows
//!   are relative to the model's newest prediction event time, never the wall
//!   clock, so every answer is a deterministic function of the history.
//! * **Statistics** ([`analysis`]): performance (MAE, RMSE, R², MAPE), feature /
//!   concept / prediction drift with Benjamini–Hochberg adjusted p-values and
//!   documented severity thresholds, error distribution and systematic errors
//!   per segment (Holm adjusted), the retraining decision. All from
//!   `learnloop-stats`.
//!
//! * **A/B tests** ([`abtest`]): versions of a model compared on the same
//!   period, deterministic unit assignment, SRM check, winner.
//! * **Retraining requests** ([`retrain`]): recorded with their evidence,
//!   once per model and day. **Feature weights** ([`weights`]).
//! * **Service monitoring** ([`service`]): latency/error/memory samples per
//!   endpoint, p50/p95/p99 per window, slow endpoints, leaks, health score.
//!
//! Routes (under `/api/v1/drift`) are listed in the [`manifest`] (with
//! their query parameters, and schemas made from their body and answer
//! types) and the README, and answered in [`routes`]; the drift check they
//! and the jobs share is [`check`]. Jobs ([`jobs`]): `daily` (drift check,
//! performance, alerts, service health) and `weekly` (learning report with
//! A/B conclusions). State documents, route answers and job reports are
//! typed (serde), so their shape is checked by the compiler; the snapshot
//! tests in `tests/routes.rs` show any change of it.
//!
//! This file is the [`Plugin`] wiring only.

#![deny(missing_docs)]

pub mod abtest;
pub mod analysis;
pub mod check;
pub mod config;
pub mod jobs;
pub mod json;
pub mod manifest;
pub mod online;
pub mod retrain;
pub mod routes;
pub mod service;
pub mod weights;
pub mod window;

use learnloop_plugin_api::{
    Context, Event, Manifest, Plugin, PluginError, Record, RouteRequest, RouteResponse, ValidationError,
};
use serde_json::Value;

pub use config::Config;

/// The plugin.
#[derive(Debug, Default)]
pub struct DriftPlugin {
    config: Config,
}

impl Plugin for DriftPlugin {
    fn manifest(&self) -> Manifest {
        manifest::manifest()
    }

    fn configure(&mut self, section: &Value) -> Result<(), PluginError> {
        self.config = Config::from_section(section)?;
        Ok(())
    }

    fn validate(&self, record: &Record) -> Result<(), ValidationError> {
        online::validate(record)
    }

    fn on_events(&self, ctx: &mut dyn Context, events: &[Event]) -> Result<(), PluginError> {
        online::absorb(&self.config, ctx, events)
    }

    fn run_job(&self, ctx: &mut dyn Context, job: &str) -> Result<Value, PluginError> {
        match job {
            "daily" => Ok(serde_json::to_value(jobs::daily(&self.config, ctx)?)?),
            "weekly" => Ok(serde_json::to_value(jobs::weekly(&self.config, ctx)?)?),
            other => Err(PluginError::invalid("job", format!("unknown job {other:?}"))),
        }
    }

    fn handle(&self, ctx: &mut dyn Context, req: &RouteRequest) -> Result<RouteResponse, PluginError> {
        routes::handle(&self.config, ctx, req)
    }
}

learnloop_plugin_api::export_plugin!(DriftPlugin, DriftPlugin::default);
