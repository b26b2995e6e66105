//! The OpenAPI 3.1 document: the fixed routes, plus every loaded plugin's
//! routes from its manifest, so the document always matches what is served.

use learnloop_plugin_host::PluginHost;
use serde_json::{Map, Value, json};

fn problem() -> Value {
    json!({"description": "Problem (application/problem+json)", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}})
}

fn op(summary: &str, role: &str, params: Value, body: Option<Value>, ok: Value) -> Value {
    let mut v = json!({
        "summary": summary,
        "description": format!("Needs a {role} key."),
        "security": [{"bearer": []}],
        "parameters": params,
        "responses": {"200": ok, "400": problem(), "401": problem(), "403": problem(), "404": problem(), "405": problem(), "413": problem(), "422": problem()},
    });
    if let Some(b) = body {
        v["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": b}}});
    }
    v
}

fn ok(schema: Value) -> Value {
    json!({"description": "OK", "content": {"application/json": {"schema": schema}}})
}

fn q(name: &str, desc: &str) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": desc, "schema": {"type": "string"}})
}

fn p(name: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}})
}

/// Builds the document.
pub fn document(host: &PluginHost) -> Value {
    let record = json!({"$ref": "#/components/schemas/Record"});
    let ingest_body = json!({"oneOf": [record, {"type": "array", "items": record}]});
    let ingest_ok = ok(json!({"$ref": "#/components/schemas/IngestResult"}));
    let mut paths = Map::new();
    let open = |summary: &str| json!({"get": {"summary": summary, "responses": {"200": {"description": "OK"}}}});
    paths.insert("/health".into(), open("Liveness: the process answers."));
    paths
        .insert("/ready".into(), open("Readiness: the store answers and every enabled plugin loaded (503 otherwise)."));
    paths.insert("/metrics".into(), open("Prometheus metrics (text format)."));
    paths.insert("/api/v1/openapi.json".into(), open("This document."));
    let ingest_ws = q(
        "workspace",
        "Workspace of records that name none (a record naming another one is refused with 422). \
         Default: the key's own; an admin key covers every workspace, so with it each record must name its workspace \
         or this parameter must (422 otherwise). The only query parameter: any other is refused with 400.",
    );
    paths.insert("/api/v1/predictions".into(), json!({"post": op("Ingest one prediction (object: 201 stored, 200 duplicate) or a batch (array, per-item results).", "writer", json!([ingest_ws.clone()]), Some(ingest_body.clone()), ingest_ok.clone())}));
    paths.insert("/api/v1/outcomes".into(), json!({"post": op("Ingest one outcome or a batch, as for predictions.", "writer", json!([ingest_ws]), Some(ingest_body), ingest_ok)}));
    // A dynamically loaded plugin that fails at run time answers 503 (not 422).
    for path in ["/api/v1/predictions", "/api/v1/outcomes"] {
        paths[path]["post"]["responses"]["503"] = problem();
    }
    let ws = q("workspace", "Workspace (default: the key's own, else default_workspace).");
    paths.insert("/api/v1/insights".into(), json!({"get": op("Insights found by learning, newest first.", "reader", json!([ws, q("plugin", "Only this plugin."), q("kind", "Only this kind."), q("since", "RFC 3339 time."), q("limit", "1 to 10000, default 100.")]), None, ok(json!({"type": "object"})))}));
    paths.insert("/api/v1/alerts".into(), json!({"get": op("Alerts, unacknowledged and from the last 24 hours by default.", "reader", json!([ws, q("plugin", "Only this plugin."), q("since", "RFC 3339 time (default: 24 hours ago)."), q("include_acknowledged", "true or false."), q("limit", "1 to 10000, default 100.")]), None, ok(json!({"type": "object"})))}));
    let obj = || ok(json!({"type": "object"}));
    paths.insert("/api/v1/improvements".into(), json!({"get": op("Improvements plugins proposed (learned parameter sets), newest first, with backtest and history.", "reader", json!([ws, q("plugin", "Only this plugin."), q("target", "Only this parameter set."), q("status", "proposed, backtested, applied, kept, rolled_back or rejected."), q("limit", "1 to 10000, default 100.")]), None, obj())}));
    paths.insert("/api/v1/improvements/applied".into(), json!({"get": op("The version in force of every parameter set that was ever applied (version 0: the plugin's built-in defaults).", "reader", json!([ws, q("plugin", "Only this plugin.")]), None, obj())}));
    paths.insert("/api/v1/improvements/{id}".into(), json!({"get": op("One improvement: parameters, evidence, backtest, and every lifecycle step with its note.", "reader", json!([p("id"), ws]), None, obj())}));
    paths.insert("/api/v1/improvements/{id}/approve".into(), json!({"post": op("Apply a backtested improvement now (atomically with its status).", "writer", json!([p("id"), ws]), None, obj())}));
    paths.insert("/api/v1/improvements/{id}/reject".into(), json!({"post": op("Reject a proposed or backtested improvement.", "writer", json!([p("id"), ws]), Some(json!({"type": "object", "properties": {"reason": {"type": "string"}}})), obj())}));
    paths.insert("/api/v1/improvements/rollback".into(), json!({"post": op("Restore an earlier version of a parameter set (default: the one before the current; 0: built-in defaults).", "writer", json!([ws]), Some(json!({"type": "object", "required": ["plugin", "target"], "properties": {"plugin": {"type": "string"}, "target": {"type": "string"}, "to_version": {"type": "integer", "minimum": 0}, "reason": {"type": "string"}}})), obj())}));
    paths.insert("/api/v1/alerts/{id}/ack".into(), json!({"post": op("Acknowledge an alert; the next occurrence opens a new one.", "writer", json!([p("id"), ws]), None, ok(json!({"type": "object"})))}));
    paths.insert("/api/v1/jobs".into(), json!({"get": op("Every job with its effective schedule.", "admin", json!([]), None, ok(json!({"type": "object"})))}));
    paths.insert("/api/v1/jobs/runs".into(), json!({"get": op("Recorded job runs, newest first.", "admin", json!([q("plugin", "Only this plugin."), q("job", "Only this job."), q("limit", "1 to 10000, default 100.")]), None, ok(json!({"type": "object"})))}));
    paths.insert("/api/v1/jobs/{plugin}/{job}/run".into(), json!({"post": op("Run a job now, in every workspace; answers with the recorded run.", "admin", json!([p("plugin"), p("job")]), None, ok(json!({"type": "object"})))}));
    for (name, loaded) in host.plugins() {
        for r in &loaded.manifest.routes {
            let full = format!("/api/v1/{name}{}", r.path);
            let mut params: Vec<Value> = r
                .path
                .split('/')
                .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                .map(p)
                .collect();
            params.push(q("workspace", "Workspace (default: the key's own, else default_workspace)."));
            let body = (!r.request_schema.is_null()).then(|| r.request_schema.clone());
            let role = r.role.as_str();
            let mut operation = op(
                &r.summary,
                role,
                Value::Array(params),
                body,
                ok(if r.response_schema.is_null() { json!({}) } else { r.response_schema.clone() }),
            );
            operation["tags"] = json!([name]);
            operation["responses"]["503"] = problem();
            let entry = paths.entry(full).or_insert_with(|| json!({}));
            entry[r.method.to_lowercase()] = operation;
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "learnloop", "version": env!("CARGO_PKG_VERSION"), "description": "Closes the loop between predictions and outcomes. Every error is application/problem+json, also 404 for an unknown path and 405 for a method a path does not take (with an Allow header). CORS is off unless [api] cors_origins lists origins: then a preflight from a listed origin is answered 204, from any other 403."},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Problem": {"type": "object", "required": ["type", "title", "status", "detail"], "properties": {
                    "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                    "detail": {"type": "string"}, "field": {"type": "string"}}},
                "Record": {"type": "object", "required": ["id", "plugin"], "properties": {
                    "type": {"enum": ["prediction", "outcome"]}, "id": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"},
                    "workspace": {"type": "string"}, "plugin": {"type": "string"}, "subject": {"type": "string"}, "kind": {"type": "string"},
                    "value": {"type": "number"}, "label": {"type": "string"}, "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                    "features": {"type": "object"}, "payload": {"type": "object"}, "event_time": {"type": "string", "format": "date-time"},
                    "prediction_id": {"type": "string"}, "success": {"type": "boolean"}, "quality": {"type": "number", "minimum": 0, "maximum": 1},
                    "feedback": {"type": "string"}}},
                "IngestResult": {"type": "object", "properties": {
                    "id": {"type": "string"}, "status": {"enum": ["inserted", "duplicate"]},
                    "inserted": {"type": "integer"}, "duplicates": {"type": "integer"}, "rejected": {"type": "integer"},
                    "results": {"type": "array", "items": {"type": "object"}}}},
            },
        },
    })
}
