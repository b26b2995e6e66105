//! The API's own routes as declarations ([`RouteSpec`], the same type a
//! plugin's routes are): name (the OpenAPI `operationId`), role, query
//! parameters, body and answer schemas made from the Rust types in
//! [`crate::answers`], and the statuses each can answer.
//!
//! Two things read this table: the OpenAPI document ([`crate::openapi`])
//! and [`check_query`], the middleware that refuses an unknown query
//! parameter (400) or a value its declaration does not admit (422) on every
//! route before its handler runs. Plugin routes are checked the same way by
//! the host, against their manifests.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use learnloop_core::{ImprovementStatus, RawRecord, Role};
use learnloop_plugin_api::{QueryParam, RouteSpec, Schemas};
use serde_json::{Value, json};

use crate::ApiError;
use crate::answers::*;

/// One of the API's own routes.
pub struct CoreRoute {
    /// Method, full path (as routed), name, summary, role, query, schemas.
    pub spec: RouteSpec,
    /// Whether it takes `?workspace=` (the jobs and health routes do not).
    pub workspace: bool,
    /// What `?workspace=` means here, when not the usual (the key's own, else `default_workspace`).
    pub workspace_doc: Option<&'static str>,
    /// Whether a caller needs a key at all.
    pub open: bool,
    /// Schemas of its path parameters that are not plain text.
    pub path_params: Vec<(&'static str, Value)>,
    /// The answer of a 201, when it differs from the 200's.
    pub created: Option<Value>,
}

/// The table, and the named schemas its routes refer to (`#/$defs/Name`).
pub struct Contract {
    /// Every route of the API itself (plugin routes come from manifests).
    pub routes: Vec<CoreRoute>,
    /// Named schemas.
    pub schemas: BTreeMap<String, Value>,
}

fn limit() -> QueryParam {
    QueryParam::integer("limit", "How many at most (default 100).", 1, 10_000)
}

fn plugin() -> QueryParam {
    QueryParam::string("plugin", "Only this plugin.")
}

fn build() -> Contract {
    let mut s = Schemas::new();
    let record = s.input::<RawRecord>();
    let ingest_body = json!({"oneOf": [record, {"type": "array", "items": record, "minItems": 1}]});
    let stored = s.output::<Stored>();
    let batch = s.output::<Batch>();
    let ingest_answer = json!({"oneOf": [stored, batch]});
    let statuses: Vec<&str> = ImprovementStatus::ALL.iter().map(|x| x.as_str()).chain(["held"]).collect();
    let id = |what: &str| ("id", json!({"type": "integer", "minimum": 1, "description": what}));
    let route = |method: &str, role: Role, name: &str, path: &str, summary: &str| CoreRoute {
        spec: RouteSpec::with_method(method, role, name, path, summary),
        workspace: true,
        workspace_doc: None,
        open: false,
        path_params: Vec::new(),
        created: None,
    };
    let open = |name: &str, path: &str, summary: &str, answer: Value| CoreRoute {
        spec: RouteSpec::get(name, path, summary).answers(answer),
        workspace: false,
        workspace_doc: None,
        open: true,
        path_params: Vec::new(),
        created: None,
    };
    let ingest = |name: &str, path: &str, summary: &str| {
        let mut r = route("POST", Role::Writer, name, path, summary);
        r.spec = r.spec.body(ingest_body.clone()).answers(ingest_answer.clone()).statuses(&[201, 409]);
        r.created = Some(stored.clone());
        r
    };
    let mut routes = vec![
        open("health", "/health", "Liveness: the process answers.", s.output::<Health>()),
        {
            let mut r = open(
                "ready",
                "/ready",
                "Readiness: the store answers and every enabled plugin loaded (503 with the same body otherwise).",
                s.output::<Readiness>(),
            );
            r.spec = r.spec.statuses(&[503]);
            r
        },
        open("metrics", "/metrics", "Prometheus metrics (text format 0.0.4).", json!({"type": "string"})),
        open(
            "docs",
            "/docs",
            "This document rendered for people (one HTML page, nothing fetched).",
            json!({"type": "string"}),
        ),
        open(
            "openapi",
            "/api/v1/openapi.json",
            "This document (OpenAPI 3.1).",
            json!({"type": "object", "required": ["openapi", "paths"], "properties": {"openapi": {"type": "string"}, "paths": {"type": "object"}}}),
        ),
        ingest(
            "ingest_predictions",
            "/api/v1/predictions",
            "Ingest one prediction (an object: 201 stored, 200 duplicate, 409 conflict) or a batch (an array: 200 with each item's result).",
        ),
        ingest(
            "ingest_outcomes",
            "/api/v1/outcomes",
            "Ingest one outcome (an object: 201 stored, 200 duplicate, 409 conflict) or a batch (an array: 200 with each item's result).",
        ),
    ];
    let mut r =
        route("GET", Role::Reader, "list_insights", "/api/v1/insights", "Insights found by learning, newest first.");
    r.spec = r
        .spec
        .query(vec![
            plugin(),
            QueryParam::string("kind", "Only this kind."),
            QueryParam::date_time("since", "Only insights from this time on (RFC 3339)."),
            limit(),
        ])
        .answers(s.output::<Insights>());
    routes.push(r);
    let mut r = route(
        "GET",
        Role::Reader,
        "list_alerts",
        "/api/v1/alerts",
        "Alerts, by default the unacknowledged ones seen in the last 24 hours, newest first.",
    );
    r.spec = r
        .spec
        .query(vec![
            plugin(),
            QueryParam::date_time("since", "Only alerts seen from this time on (RFC 3339; default: 24 hours ago)."),
            QueryParam::boolean("include_acknowledged", "Also acknowledged alerts (default false)."),
            limit(),
        ])
        .answers(s.output::<Alerts>());
    routes.push(r);
    let mut r = route(
        "POST",
        Role::Writer,
        "create_alert",
        "/api/v1/alerts",
        "Raise a custom alert (201; 200 when it folds into the open alert with its dedup key), delivered to notification destinations like any other.",
    );
    r.spec = r.spec.body(s.input::<CreateAlertBody>()).answers(s.output::<learnloop_core::Alert>()).statuses(&[201]);
    r.created = Some(s.output::<learnloop_core::Alert>());
    routes.push(r);
    let mut r = route(
        "POST",
        Role::Writer,
        "ack_alert",
        "/api/v1/alerts/{id}/ack",
        "Acknowledge an alert; its next occurrence opens a new one.",
    );
    r.spec = r.spec.answers(s.output::<learnloop_core::Alert>());
    r.path_params.push(id("The alert's id."));
    routes.push(r);
    let mut r = route(
        "GET",
        Role::Reader,
        "list_improvements",
        "/api/v1/improvements",
        "Improvements plugins proposed (learned parameter sets), newest first, with backtest and history.",
    );
    r.spec = r
        .spec
        .query(vec![
            plugin(),
            QueryParam::string("target", "Only this parameter set."),
            QueryParam::one_of("status", "Only improvements in this status (held = backtested).", &statuses),
            limit(),
        ])
        .answers(s.output::<Improvements>());
    routes.push(r);
    let mut r = route(
        "GET",
        Role::Reader,
        "list_applied",
        "/api/v1/improvements/applied",
        "The version in force of every parameter set that was ever applied (version 0: the plugin's built-in defaults).",
    );
    r.spec = r.spec.query(vec![plugin()]).answers(s.output::<AppliedList>());
    routes.push(r);
    let mut r = route(
        "GET",
        Role::Reader,
        "get_improvement",
        "/api/v1/improvements/{id}",
        "One improvement: parameters, evidence, backtest, and every lifecycle step with its note.",
    );
    r.spec = r.spec.answers(s.output::<learnloop_core::Improvement>());
    r.path_params.push(id("The improvement's id."));
    routes.push(r);
    let mut r = route(
        "POST",
        Role::Writer,
        "approve_improvement",
        "/api/v1/improvements/{id}/approve",
        "Apply a backtested improvement now (atomically with its status).",
    );
    r.spec = r.spec.answers(s.output::<learnloop_core::Improvement>()).statuses(&[409]);
    r.path_params.push(id("The improvement's id."));
    routes.push(r);
    let mut r = route(
        "POST",
        Role::Writer,
        "reject_improvement",
        "/api/v1/improvements/{id}/reject",
        "Reject a proposed or backtested improvement (body optional: a reason).",
    );
    r.spec = r.spec.body(s.input::<RejectBody>()).answers(s.output::<learnloop_core::Improvement>()).statuses(&[409]);
    r.path_params.push(id("The improvement's id."));
    routes.push(r);
    let mut r = route(
        "POST",
        Role::Writer,
        "rollback_improvement",
        "/api/v1/improvements/rollback",
        "Restore an earlier version of a parameter set (default: the one before the current; 0: built-in defaults).",
    );
    r.spec = r.spec.body(s.input::<RollbackBody>()).answers(s.output::<InForce>()).statuses(&[409]);
    routes.push(r);
    let delivery_statuses: Vec<&str> = learnloop_core::DeliveryStatus::ALL.iter().map(|x| x.as_str()).collect();
    let mut r = route(
        "GET",
        Role::Admin,
        "list_notifications",
        "/api/v1/notifications",
        "Notification deliveries (one per notification and destination), newest first, with attempts and errors.",
    );
    r.spec = r
        .spec
        .query(vec![
            QueryParam::one_of("status", "Only deliveries in this status.", &delivery_statuses),
            QueryParam::string("destination", "Only to this destination."),
            plugin(),
            limit(),
        ])
        .answers(s.output::<Notifications>());
    r.workspace_doc = Some("Only notifications of this workspace (default: every workspace).");
    routes.push(r);
    let mut r = route(
        "POST",
        Role::Admin,
        "test_notification",
        "/api/v1/notifications/test",
        "Send a test event to a destination now and answer what happened (not stored, not retried).",
    );
    r.spec = r.spec.body(s.input::<TestNotificationBody>()).answers(s.output::<TestNotificationResult>());
    r.workspace = false;
    routes.push(r);
    let mut r = route(
        "POST",
        Role::Admin,
        "retry_notification",
        "/api/v1/notifications/{id}/retry",
        "Send a dead (or pending) delivery again now, with its attempts reset; 409 if it was delivered.",
    );
    r.spec = r.spec.answers(s.output::<learnloop_core::Delivery>()).statuses(&[409]);
    r.path_params.push(id("The delivery's id."));
    r.workspace = false;
    routes.push(r);
    let mut r = route("GET", Role::Admin, "list_jobs", "/api/v1/jobs", "Every job with its effective schedule.");
    r.spec = r.spec.answers(s.output::<Jobs>());
    r.workspace = false;
    routes.push(r);
    let mut r = route("GET", Role::Admin, "list_job_runs", "/api/v1/jobs/runs", "Recorded job runs, newest first.");
    r.spec = r
        .spec
        .query(vec![plugin(), QueryParam::string("job", "Only this job."), limit()])
        .answers(s.output::<JobRuns>());
    r.workspace = false;
    routes.push(r);
    let mut r = route(
        "POST",
        Role::Admin,
        "run_job",
        "/api/v1/jobs/{plugin}/{job}/run",
        "Run a job now, in every workspace; answers with the recorded run (a failed run too).",
    );
    r.spec = r.spec.answers(s.output::<learnloop_core::JobRun>()).statuses(&[409]);
    r.workspace = false;
    routes.push(r);
    let mut r = route(
        "GET",
        Role::Admin,
        "list_keys",
        "/api/v1/keys",
        "Every API key (never the key itself), revoked ones too.",
    );
    r.spec = r.spec.answers(s.output::<Keys>());
    r.workspace = false;
    routes.push(r);
    let mut r = route(
        "POST",
        Role::Admin,
        "create_key",
        "/api/v1/keys",
        "Create an API key; the answer (201) is the only place the key is ever shown.",
    );
    r.spec = r.spec.body(s.input::<CreateKeyBody>()).answers(s.output::<CreatedKey>()).statuses(&[201]);
    r.created = Some(s.output::<CreatedKey>());
    r.workspace = false;
    routes.push(r);
    let mut r = route(
        "POST",
        Role::Admin,
        "revoke_key",
        "/api/v1/keys/{id}/revoke",
        "Revoke an API key: refused at once by this node, by other nodes and after `learnloop keys revoke` within 2 s.",
    );
    r.spec = r.spec.answers(s.output::<learnloop_core::ApiKey>());
    r.path_params.push(id("The key's id."));
    r.workspace = false;
    routes.push(r);
    Contract { routes, schemas: s.into_definitions() }
}

/// The table, made once.
pub fn contract() -> &'static Contract {
    static C: OnceLock<Contract> = OnceLock::new();
    C.get_or_init(build)
}

/// Middleware on the routed paths: refuses a query the matched route does
/// not declare (400 for an unknown or repeated parameter, 422 for a value
/// its schema does not admit). Plugin routes are left to the host.
pub async fn check_query(req: Request, next: Next) -> Response {
    let Some(path) = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()) else {
        return next.run(req).await;
    };
    let route = contract().routes.iter().find(|r| r.spec.path == path && r.spec.method == req.method().as_str());
    let raw = req.uri().query().unwrap_or("");
    let mut query = BTreeMap::new();
    for (k, v) in form_urlencoded::parse(raw.as_bytes()) {
        if query.insert(k.to_string(), v.to_string()).is_some() {
            return ApiError {
                field: Some(k.to_string()),
                ..ApiError::bad_request(format!("query parameter {k:?} is given twice"))
            }
            .into_response();
        }
    }
    if let Some(route) = route {
        if !route.workspace && query.contains_key("workspace") {
            return ApiError {
                field: Some("workspace".into()),
                ..ApiError::bad_request(format!(
                    "unknown query parameter \"workspace\": {} {} spans every workspace",
                    route.spec.method, route.spec.path
                ))
            }
            .into_response();
        }
        if let Err(e) = route.spec.check_query(&query) {
            let err = if e.unknown {
                ApiError { field: Some(e.parameter), ..ApiError::bad_request(e.message) }
            } else {
                ApiError::invalid(e.parameter, e.message)
            };
            return err.into_response();
        }
    }
    next.run(req).await
}
