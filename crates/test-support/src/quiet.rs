//! A plugin that accepts every record and learns nothing: "another plugin"
//! for the host's own tests, which link no real plugin (the host depends on
//! none; `learnloop-plugins` tests the built-in plugins in the real host).

use learnloop_plugin_api::{
    Context, Event, KindSpec, Manifest, Plugin, PluginError, RecordType, RouteRequest, RouteResponse, abi,
};
use serde_json::Value;

/// The quiet plugin; its manifest calls it `quiet`.
#[derive(Debug, Default)]
pub struct Quiet;

impl Plugin for Quiet {
    fn manifest(&self) -> Manifest {
        let kind = |record_type| KindSpec {
            record_type,
            kinds: vec![],
            payload_schema: Value::Null,
            description: String::new(),
        };
        Manifest {
            name: "quiet".into(),
            version: "0.0.0".into(),
            abi_version: abi::ABI_VERSION,
            description: "test plugin that learns nothing".into(),
            kinds: vec![kind(RecordType::Prediction), kind(RecordType::Outcome)],
            routes: vec![],
            jobs: vec![],
            config: vec![],
            schemas: Default::default(),
        }
    }

    fn on_events(&self, _ctx: &mut dyn Context, _events: &[Event]) -> Result<(), PluginError> {
        Ok(())
    }

    fn run_job(&self, _ctx: &mut dyn Context, job: &str) -> Result<Value, PluginError> {
        Err(PluginError::not_found(format!("no job {job}")))
    }

    fn handle(&self, _ctx: &mut dyn Context, _request: &RouteRequest) -> Result<RouteResponse, PluginError> {
        Err(PluginError::not_found("no routes"))
    }
}
