//! The OpenAPI 3.1 document: the API's own routes ([`crate::contract`])
//! and every loaded plugin's routes from its manifest, with schemas made
//! from the Rust types, so the document always matches what is served.
//!
//! Each operation has a unique `operationId` (the route's name; a plugin
//! route's is `<plugin>_<name>`), a tag (its plugin, or `core`), typed path
//! and query parameters, its request body, its answer, and every status it
//! can answer with the problem+json schema for errors. Named schemas live
//! under `components/schemas`; a plugin's are prefixed with its name in
//! PascalCase (`CostAssessment`).

use std::collections::BTreeMap;

use learnloop_plugin_api::{QueryParam, RouteSpec};
use learnloop_plugin_host::PluginHost;
use serde_json::{Map, Value, json};

use crate::contract::{CoreRoute, contract};

/// `cost` → `Cost`, `my_plugin` → `MyPlugin`.
fn pascal(name: &str) -> String {
    name.split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect()
}

/// Rewrites `#/$defs/Name` references to `#/components/schemas/<prefix>Name`.
fn rehome(v: &Value, prefix: &str) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let v = match (k.as_str(), v.as_str().and_then(|r| r.strip_prefix("#/$defs/"))) {
                        ("$ref", Some(name)) => Value::String(format!("#/components/schemas/{prefix}{name}")),
                        _ => rehome(v, prefix),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|v| rehome(v, prefix)).collect()),
        other => other.clone(),
    }
}

fn problem(description: &str) -> Value {
    json!({"description": description, "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}})
}

fn query_param(p: &QueryParam) -> Value {
    json!({"name": p.name, "in": "query", "required": p.required, "description": p.description, "schema": p.schema})
}

fn workspace_param() -> Value {
    json!({"name": "workspace", "in": "query", "required": false,
           "description": "The workspace (default: the key's own, else default_workspace). A reader or writer key gets 403 for any other.",
           "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]*$", "minLength": 1, "maxLength": 64}})
}

/// One operation.
fn operation(
    spec: &RouteSpec,
    id: String,
    tag: &str,
    params: Vec<Value>,
    prefix: &str,
    open: bool,
    created: Option<&Value>,
) -> Value {
    let mut responses = Map::new();
    let answer = rehome(&spec.response_schema, prefix);
    let core = tag == "core";
    let media = match (core, spec.path.as_str()) {
        (true, "/metrics") => "text/plain",
        (true, "/docs") => "text/html",
        _ => "application/json",
    };
    let content = json!({ media: {"schema": answer} });
    responses.insert("200".into(), json!({"description": "OK", "content": content}));
    for status in &spec.statuses {
        let r = match status {
            201 => match created {
                Some(c) => json!({"description": "Created", "content": {media: {"schema": rehome(c, prefix)}}}),
                None => json!({"description": "Created", "content": content}),
            },
            409 => problem("Conflict: the same id with other content, or a concurrent change won"),
            503 if core && spec.path == "/ready" => json!({"description": "Not ready", "content": content}),
            s => problem(&format!("{s}")),
        };
        responses.insert(status.to_string(), r);
    }
    responses.insert("400".into(), problem("Malformed request: unreadable body, unknown or repeated query parameter"));
    responses.insert("404".into(), problem("Not found"));
    responses.insert("405".into(), problem("Method not allowed (the Allow header lists the ones the path takes)"));
    if !open {
        responses.insert("401".into(), problem("No key, or an unknown or revoked one"));
        responses.insert("403".into(), problem("The key's role or workspace does not allow this"));
        responses.insert("422".into(), problem("Invalid input: `field` names it"));
        responses.entry("503").or_insert_with(|| problem("The server is stopping, or a plugin is unavailable"));
    }
    if !spec.request_schema.is_null() {
        responses
            .insert("413".into(), problem("The body is larger than api.max_body_bytes, or a batch than api.max_batch"));
    }
    if spec.method != "GET" {
        responses.insert(
            "408".into(),
            problem("The body did not arrive within api.body_timeout_ms (the connection is closed)"),
        );
        if !open {
            responses.insert(
                "507".into(),
                problem("The store is out of space: nothing was stored; send it again after Retry-After seconds"),
            );
        }
    }
    let role = if open { "No key needed.".to_string() } else { format!("Needs a {} key.", spec.role.as_str()) };
    let mut op = json!({
        "operationId": id,
        "summary": spec.summary,
        "description": role,
        "tags": [tag],
        "parameters": params,
        "responses": responses,
    });
    if !open {
        op["security"] = json!([{"bearer": []}]);
    }
    if !spec.request_schema.is_null() {
        // A body that may be empty (reject's reason) is not required.
        let required = !(core && spec.path.ends_with("/reject"));
        op["requestBody"] = json!({"required": required, "content": {"application/json": {"schema": rehome(&spec.request_schema, prefix)}}});
    }
    op
}

fn path_params(path: &str, typed: &[(&str, Value)]) -> Vec<Value> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| {
            let schema = typed
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, s)| s.clone())
                .unwrap_or_else(|| json!({"type": "string", "minLength": 1}));
            json!({"name": name, "in": "path", "required": true, "schema": schema})
        })
        .collect()
}

fn core_operation(r: &CoreRoute, host: &PluginHost) -> Value {
    let mut typed = r.path_params.clone();
    if r.spec.path.contains("{plugin}") {
        // The plugins and jobs this server has: a generated client (and a
        // fuzzer) sees the values that can succeed.
        let plugins: Vec<&str> = host.plugins().keys().map(String::as_str).collect();
        let mut jobs: Vec<&str> =
            host.plugins().values().flat_map(|l| l.manifest.jobs.iter().map(|j| j.name.as_str())).collect();
        jobs.sort_unstable();
        jobs.dedup();
        if !plugins.is_empty() {
            typed.push(("plugin", json!({"type": "string", "enum": plugins})));
            typed.push(("job", json!({"type": "string", "enum": jobs})));
        }
    }
    let mut params = path_params(&r.spec.path, &typed);
    if r.workspace {
        let mut p = workspace_param();
        if let Some(doc) = r.workspace_doc {
            p["description"] = json!(doc);
        }
        params.push(p);
    }
    params.extend(r.spec.query.iter().flatten().map(query_param));
    operation(&r.spec, r.spec.name.clone(), "core", params, "", r.open, r.created.as_ref())
}

/// Builds the document.
pub fn document(host: &PluginHost) -> Value {
    let c = contract();
    let mut paths: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    let mut schemas: Map<String, Value> = c.schemas.iter().map(|(k, v)| (k.clone(), rehome(v, ""))).collect();
    for r in &c.routes {
        paths.entry(r.spec.path.clone()).or_default().insert(r.spec.method.to_lowercase(), core_operation(r, host));
    }
    let mut tags =
        vec![json!({"name": "core", "description": "Ingest, findings, the improvement lifecycle, jobs, health."})];
    for (name, loaded) in host.plugins() {
        let prefix = pascal(name);
        let m = &loaded.manifest;
        tags.push(json!({"name": name, "description": m.description}));
        for (def, schema) in &m.schemas {
            schemas.insert(format!("{prefix}{def}"), rehome(schema, &prefix));
        }
        for r in &m.routes {
            let mut params = path_params(&r.path, &[]);
            params.push(workspace_param());
            params.extend(r.query.iter().flatten().map(query_param));
            let op = operation(r, format!("{name}_{}", r.name), name, params, &prefix, false, None);
            paths.entry(format!("/api/v1/{name}{}", r.path)).or_default().insert(r.method.to_lowercase(), op);
        }
    }
    schemas.insert(
        "Problem".into(),
        json!({"type": "object", "description": "An error (RFC 9457 problem details).",
               "required": ["type", "title", "status", "detail"], "properties": {
            "type": {"type": "string", "description": "Stable kind of problem, e.g. https://learnloop.dev/problems/invalid-field."},
            "title": {"type": "string"}, "status": {"type": "integer"},
            "detail": {"type": "string", "description": "What was wrong, for people."},
            "field": {"type": "string", "description": "The field or parameter at fault, where one is."}}}),
    );
    json!({
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "learnloop",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Closes the loop between predictions and outcomes. Every error is application/problem+json, also 404 for an unknown path and 405 for a method a path does not take (with an Allow header). Unknown query parameters are refused (400 naming them). CORS is off unless [api] cors_origins lists origins: then a preflight from a listed origin is answered 204, from any other 403. A page for people renders this document at /docs.",
        },
        "tags": tags,
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_move_under_components_with_the_plugin_prefix() {
        let v = json!({"$ref": "#/$defs/Assessment", "items": [{"$ref": "#/$defs/Case"}], "x": {"$ref": "#/other"}});
        let r = rehome(&v, "Cost");
        assert_eq!(r["$ref"], "#/components/schemas/CostAssessment");
        assert_eq!(r["items"][0]["$ref"], "#/components/schemas/CostCase");
        assert_eq!(r["x"]["$ref"], "#/other");
        assert_eq!(pascal("my_plugin"), "MyPlugin");
    }
}
