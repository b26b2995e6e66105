//! Test builds only (feature `check-answers`): every answer of a plugin
//! route is checked against the response schema its route declares, so
//! that the OpenAPI document cannot promise a shape the code does not
//! keep. A mismatch panics, naming the route and every violation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use learnloop_plugin_api::{Manifest, RouteResponse, RouteSpec};
use serde_json::json;

type Cache = Mutex<HashMap<String, Arc<jsonschema::Validator>>>;

fn validator(manifest: &Manifest, route: &RouteSpec) -> Arc<jsonschema::Validator> {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let key = format!("{} {} {} {}", manifest.name, manifest.version, route.method, route.path);
    let mut cache = CACHE.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    if let Some(v) = cache.get(&key) {
        return v.clone();
    }
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$defs": manifest.schemas,
        "allOf": [route.response_schema],
    });
    let v = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(&root)
        .unwrap_or_else(|e| {
            panic!(
                "plugin {}: {} {} declares a response schema that does not compile: {e}",
                manifest.name, route.method, route.path
            )
        });
    let v = Arc::new(v);
    cache.insert(key, v.clone());
    v
}

/// Panics when a successful answer does not match its declared schema.
pub(crate) fn check(manifest: &Manifest, route: &RouteSpec, response: &RouteResponse) {
    if !(200..300).contains(&response.status) || route.response_schema.is_null() {
        return;
    }
    let errors: Vec<String> = validator(manifest, route)
        .iter_errors(&response.body)
        .take(10)
        .map(|e| format!("  at {:?}: {e}", e.instance_path().as_str()))
        .collect();
    if !errors.is_empty() {
        let body = serde_json::to_string(&response.body).unwrap_or_default();
        let body: String = body.chars().take(2000).collect();
        panic!(
            "plugin {}: {} {} answered a body its declared response schema refuses:\n{}\nbody: {body}",
            manifest.name,
            route.method,
            route.path,
            errors.join("\n"),
        );
    }
}
