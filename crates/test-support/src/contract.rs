//! The route contract every plugin's manifest keeps (issue #22), checked
//! in one place: unique snake_case route names, declared query parameters
//! (none named twice, none named `workspace`), one-line summaries, answers
//! and bodies that are named schemas of the manifest, and every `$ref`
//! resolving in its `schemas`.

use std::collections::BTreeSet;

use learnloop_plugin_api::Manifest;
use serde_json::Value;

/// Every `$ref` in `v`.
pub fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
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

/// Whether `schema` is a `$ref` to a definition of `m` (or an array of one).
pub fn is_named(schema: &Value, m: &Manifest) -> bool {
    let target = schema.get("$ref").or_else(|| schema.get("items").and_then(|i| i.get("$ref")));
    target.and_then(Value::as_str).and_then(|r| r.strip_prefix("#/$defs/")).is_some_and(|n| m.schemas.contains_key(n))
}

/// Panics, naming the route, where `m` breaks the contract above.
pub fn check_manifest(m: &Manifest) {
    let mut names = BTreeSet::new();
    for r in &m.routes {
        let at = format!("{} {}", r.method, r.path);
        assert!(names.insert(r.name.clone()), "{at}: name {} is used twice", r.name);
        assert!(r.name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{at}: {}", r.name);
        assert!(r.query.is_some(), "{at}: declares no query parameters");
        assert!(is_named(&r.response_schema, m), "{at}: answers {}", r.response_schema);
        assert!(r.request_schema.is_null() || is_named(&r.request_schema, m), "{at}: takes {}", r.request_schema);
        assert!(!r.summary.contains('\n'), "{at}: the summary is more than one line");
        let mut params = BTreeSet::new();
        for p in r.query.iter().flatten() {
            assert!(params.insert(&p.name) && p.name != "workspace", "{at}: parameter {} twice", p.name);
        }
    }
    let mut all = Vec::new();
    for r in &m.routes {
        refs(&r.request_schema, &mut all);
        refs(&r.response_schema, &mut all);
    }
    m.schemas.values().for_each(|d| refs(d, &mut all));
    for r in all {
        let name = r.strip_prefix("#/$defs/").unwrap_or_else(|| panic!("{r} does not point into the definitions"));
        assert!(m.schemas.contains_key(name), "{r} does not resolve");
    }
}
