//! The plugin's manifest: the record kinds it reads, its routes (under
//! `/api/v1/drift`; handled in [`crate::routes`]) with their query
//! parameters and the schemas of their bodies and answers (made from the
//! Rust types, so the OpenAPI document cannot drift from the code), its
//! jobs (run in [`crate::jobs`]) and its config keys.

use learnloop_plugin_api::core::{RecordType, Role};
use learnloop_plugin_api::{JobSpec, KindSpec, Manifest, QueryParam, RouteSpec, Schemas, abi};
use serde_json::json;

use crate::abtest::{AbResults, AbTestBody, AbTestCreated};
use crate::analysis::DriftReport;
use crate::config::Config;
use crate::routes::{
    AbTestsAnswer, Assignment, ErrorsAnswer, PerformanceAnswer, PinAnswer, PinBody, ReferenceAnswer, RequestsAnswer,
    RetrainAnswer, RetrainBody, ServicesAnswer, Summary, TriggerAnswer, UnpinAnswer, WeightsAnswer,
};
use crate::service::{self, HealthReport};

/// The most days a `reference_days` / `current_days` parameter takes
/// (the handler's bound).
pub const MAX_DAYS: f64 = 36_500.0;

fn from() -> QueryParam {
    QueryParam::date_time(
        "from",
        "Start of the window (RFC 3339, inclusive); default: `until` minus the default length",
    )
}

fn until() -> QueryParam {
    QueryParam::date_time(
        "until",
        "End of the window (RFC 3339, exclusive); default: just after the newest prediction (or sample)",
    )
}

/// Any text, the empty string included (it means something to the
/// handler, so the declaration must not refuse it).
fn text(name: &str, description: &str) -> QueryParam {
    let mut p = QueryParam::string(name, description);
    p.schema = json!({"type": "string"});
    p
}

fn version() -> QueryParam {
    text("version", "Only predictions of this `payload.model_version` (empty: those without one)")
}

/// A number of days in (0, MAX_DAYS]: 0 is refused by the handler, so the
/// minimum is exclusive.
fn days(name: &str, description: &str) -> QueryParam {
    let mut p = QueryParam::number(name, description, 0.0, MAX_DAYS);
    p.schema = json!({"type": "number", "exclusiveMinimum": 0.0, "maximum": MAX_DAYS});
    p
}

fn writer(method: &str, name: &str, path: &str, summary: &str) -> RouteSpec {
    RouteSpec::with_method(method, Role::Writer, name, path, summary)
}

/// The plugin's routes (handled in [`crate::routes`]), each with its
/// query parameters and the schemas of its body and answer, made from the
/// Rust types in `s`.
pub fn routes(s: &mut Schemas) -> Vec<RouteSpec> {
    vec![
        RouteSpec::get("get_summary", "/summary", "Every model's online counters, all-time error metrics per version and ADWIN state")
            .answers(s.output::<Summary>()),
        RouteSpec::get("get_model_performance", "/models/{model}/performance", "MAE, RMSE, R², WAPE, MAPE, n in a window (default: the last performance_days), overall and per version")
            .query(vec![from(), until(), version()])
            .answers(s.output::<PerformanceAnswer>()),
        RouteSpec::get("get_model_drift", "/models/{model}/drift", "Feature, concept and prediction drift: reference (pinned or sliding) vs current window, BH-adjusted, with severities")
            .query(vec![
                days("reference_days", "Length of the sliding reference window in days; default `reference_days`"),
                days("current_days", "Length of the current window in days; default `current_days`"),
                version(),
                QueryParam::one_of("reference", "`pinned` (default): the pinned reference period when there is one; `window`: the sliding window", &["pinned", "window"]),
            ])
            .answers(s.output::<DriftReport>()),
        RouteSpec::get("get_model_errors", "/models/{model}/errors", "Error distribution and systematic errors per segment (Holm-adjusted) in a window")
            .query(vec![from(), until(), version()])
            .answers(s.output::<ErrorsAnswer>()),
        RouteSpec::get("get_retrain_decision", "/models/{model}/retrain", "Whether to retrain, with the reasons")
            .answers(s.output::<RetrainAnswer>()),
        writer("POST", "request_retrain", "/models/{model}/retrain", "Record a retraining request with its evidence, at most one per model and UTC day (a repeat returns the first, created: false)")
            .body(s.input::<RetrainBody>())
            .answers(s.output::<TriggerAnswer>())
            .statuses(&[409]),
        RouteSpec::get("list_retrain_requests", "/retrain/requests", "Recorded retraining requests, newest first")
            .query(vec![
                text("model", "Only this model's requests"),
                QueryParam::integer("limit", "How many (default 100)", 1, 1000),
            ])
            .answers(s.output::<RequestsAnswer>()),
        RouteSpec::get("get_feature_weights", "/models/{model}/weights", "Feature weights: correlation of each numeric feature with the actual and with the error, and their trend over time buckets")
            .query(vec![from(), until(), version()])
            .answers(s.output::<WeightsAnswer>()),
        RouteSpec::get("get_reference", "/models/{model}/reference", "The model's pinned reference period for feature drift (null when it uses the sliding window)")
            .answers(s.output::<ReferenceAnswer>()),
        writer("PUT", "pin_reference", "/models/{model}/reference", "Pin a reference period for the model's drift checks")
            .body(s.input::<PinBody>())
            .answers(s.output::<PinAnswer>()),
        writer("DELETE", "unpin_reference", "/models/{model}/reference", "Unpin: back to the sliding reference window")
            .answers(s.output::<UnpinAnswer>())
            .statuses(&[409]),
        writer("POST", "create_ab_test", "/ab_tests", "Create an A/B test of model versions (retrying an identical definition is harmless)")
            .body(s.input::<AbTestBody>())
            .answers(s.output::<AbTestCreated>())
            .statuses(&[409]),
        RouteSpec::get("list_ab_tests", "/ab_tests", "Every A/B test with its status")
            .answers(s.output::<AbTestsAnswer>()),
        RouteSpec::get("get_ab_test_results", "/ab_tests/{test}", "An A/B test's results: per-arm metrics, Welch t-tests, sample-ratio mismatch, the winner or why there is none yet")
            .answers(s.output::<AbResults>()),
        RouteSpec::get("assign", "/ab_tests/{test}/assign", "The arm (model version) of a unit id, deterministic")
            .query(vec![QueryParam::string("unit", "The unit (user, request, ...) id to assign").required()])
            .answers(s.output::<Assignment>()),
        RouteSpec::get("list_services", "/services", "Monitored services (service_sample records) with their counters")
            .answers(s.output::<ServicesAnswer>()),
        RouteSpec::get("get_service_health", "/services/{service}/health", "A service's latency p50/p95/p99 per endpoint and window, slow endpoints, error rate, memory growth, health score 0-100 (default: the last service_hours)")
            .query(vec![from(), until()])
            .answers(s.output::<HealthReport>()),
    ]
}

/// The plugin's manifest: record kinds, routes, jobs and config keys.
pub fn manifest() -> Manifest {
    let mut schemas = Schemas::new();
    let routes = routes(&mut schemas);
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
                payload_schema: json!({"type": "object"}),
                description: "the actual value (or label) of a prediction".into(),
            },
        ],
        routes,
        jobs: vec![
            JobSpec {
                name: "daily".into(),
                trigger: None,
                schedule: "0 0 1 * * *".into(),
                description: "Drift check of every model, current-window performance, alerts (feature/concept/prediction drift, retraining); health of every monitored service, alerts (slow endpoints, memory leak, error rate).".into(),
            },
            JobSpec {
                name: "weekly".into(),
                trigger: None,
                schedule: "0 30 1 * * Mon".into(),
                description: "Learning report per model: performance, error analysis, drift, systematic errors, retraining recommendation; A/B test conclusions.".into(),
            },
        ],
        config: Config::keys(),
        schemas: schemas.into_definitions(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::*;

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
        let m = manifest();
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
            assert_eq!(r.request_schema.is_null(), !matches!(r.method.as_str(), "POST" | "PUT"), "{}", r.name);
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
