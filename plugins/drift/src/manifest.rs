//! The plugin's manifest: the record kinds it reads, its routes (under
//! `/api/v1/drift`; handled in [`crate::routes`]), its jobs (run in
//! [`crate::jobs`]) and its config keys.

use learnloop_plugin_api::core::{RecordType, Role};
use learnloop_plugin_api::{JobSpec, KindSpec, Manifest, RouteSpec, abi};
use serde_json::{Value, json};

use crate::config::Config;
use crate::service;

fn route(method: &str, path: &str, summary: &str, response: Value) -> RouteSpec {
    RouteSpec {
        method: method.into(),
        path: path.into(),
        summary: summary.into(),
        role: Role::Reader,
        request_schema: Value::Null,
        response_schema: response,
    }
}

fn write_route(method: &str, path: &str, summary: &str, request: Value) -> RouteSpec {
    RouteSpec { role: Role::Writer, request_schema: request, ..route(method, path, summary, json!({"type": "object"})) }
}

/// The plugin's manifest: record kinds, routes, jobs and config keys.
pub fn manifest() -> Manifest {
    let obj = json!({"type": "object"});
    Manifest {
        name: "drift".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        abi_version: abi::ABI_VERSION,
        description: "Monitors ML models: online error and ADWIN per model, performance (MAE, RMSE, R², MAPE) per model/version/window, feature/concept/prediction drift (KS, chi-square, PSI, Wasserstein, Welch t-test, BH-adjusted), error analysis with systematic segments, retraining decisions.".into(),
        kinds: vec![
            KindSpec {
                record_type: RecordType::Prediction,
                kinds: vec![],
                payload_schema: json!({"type": "object", "properties": {"model_version": {"type": ["string", "number"]}}}),
                description: "a model's prediction: subject = model id, kind = model type, value (or label) = the prediction, features = numeric and categorical inputs".into(),
            },
            KindSpec {
                record_type: RecordType::Prediction,
                kinds: vec![service::KIND.into()],
                payload_schema: json!({"type": "object", "required": ["endpoint"], "properties": {
                    "endpoint": {"type": "string"}, "error": {"type": "boolean"}, "status_code": {"type": "integer"}, "memory_mb": {"type": "number"}}}),
                description: "a monitored service's sample: subject = service, kind = service_sample, value = latency in ms, payload.endpoint, error/status_code, memory_mb".into(),
            },
            KindSpec {
                record_type: RecordType::Outcome,
                kinds: vec![],
                payload_schema: obj.clone(),
                description: "the actual value (or label) of a prediction".into(),
            },
        ],
        routes: vec![
            route("GET", "/summary", "Every model's online counters, all-time error metrics per version and ADWIN state", obj.clone()),
            route("GET", "/models/{model}/performance", "MAE, RMSE, R², MAPE, n in a window (query: from, until, version; default the last performance_days)", obj.clone()),
            route("GET", "/models/{model}/drift", "Feature, concept and prediction drift: reference vs current window (query: reference_days, current_days, version)", obj.clone()),
            route("GET", "/models/{model}/errors", "Error distribution and systematic errors per segment (query: from, until, version)", obj.clone()),
            route("GET", "/models/{model}/retrain", "Whether to retrain, with the reasons", obj.clone()),
            write_route("POST", "/models/{model}/retrain", "Record a retraining request with its evidence, at most one per model and UTC day (a repeat returns the first, created: false)",
                json!({"type": "object", "properties": {"reason": {"type": "string"}}})),
            route("GET", "/retrain/requests", "Recorded retraining requests, newest first (query: model, limit <= 1000, default 100)", obj.clone()),
            route("GET", "/models/{model}/weights", "Feature weights: correlation of each numeric feature with the actual and with the error, and their trend over time buckets (query: from, until, version)", obj.clone()),
            route("GET", "/models/{model}/reference", "The model's pinned reference period for feature drift (null when it uses the sliding window)", obj.clone()),
            write_route("PUT", "/models/{model}/reference", "Pin a reference period for the model's drift checks (body: from, until)",
                json!({"type": "object", "required": ["from", "until"], "properties": {"from": {"type": "string"}, "until": {"type": "string"}}})),
            write_route("DELETE", "/models/{model}/reference", "Unpin: back to the sliding reference window", Value::Null),
            write_route("POST", "/ab_tests", "Create an A/B test of model versions (body: id, model, versions, split, duration_days, start, confidence)",
                json!({"type": "object", "required": ["id", "model", "versions"], "properties": {
                    "id": {"type": "string"}, "model": {"type": "string"}, "versions": {"type": "array", "items": {"type": ["string", "number"]}},
                    "split": {"type": ["array", "number"]}, "duration_days": {"type": "number"}, "start": {"type": "string"}, "confidence": {"type": "number"}}})),
            route("GET", "/ab_tests", "Every A/B test with its status", obj.clone()),
            route("GET", "/ab_tests/{test}", "An A/B test's results: per-arm MAE, RMSE, MAPE, n; Welch t-tests; sample-ratio mismatch; the winner or why there is none yet", obj.clone()),
            route("GET", "/ab_tests/{test}/assign", "The arm (model version) of a unit id, deterministic (query: unit)", obj.clone()),
            route("GET", "/services", "Monitored services (service_sample records) with their counters", obj.clone()),
            route("GET", "/services/{service}/health", "A service's latency p50/p95/p99 per endpoint and per window, slow endpoints, error rate, memory growth, health score 0-100 (query: from, until)", obj.clone()),
        ],
        jobs: vec![
            JobSpec {
                name: "daily".into(),
                schedule: "0 0 1 * * *".into(),
                description: "Drift check of every model, current-window performance, alerts (feature/concept/prediction drift, retraining); health of every monitored service, alerts (slow endpoints, memory leak, error rate).".into(),
            },
            JobSpec {
                name: "weekly".into(),
                schedule: "0 30 1 * * Mon".into(),
                description: "Learning report per model: performance, error analysis, drift, systematic errors, retraining recommendation; A/B test conclusions.".into(),
            },
        ],
        config: Config::keys(),
    }
}
