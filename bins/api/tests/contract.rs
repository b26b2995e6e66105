//! The OpenAPI document against the code it describes.
//!
//! mod list: the document is typed (no untyped answer), its operationIds
//! unique and every `$ref` resolves; the API's own answers match their
//! declared schemas (plugin answers are checked on every call in test
//! builds by the host's `check-answers` feature); every route refuses an
//! undeclared or repeated query parameter (400 naming it) and an ill-typed
//! one (422); `/docs` renders every operation without fetching anything.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use learnloop_api::{AppState, app, auth, contract};
use learnloop_config::Config;
use learnloop_core::{Role, Timestamp, WorkspaceId};
use learnloop_plugin_host::PluginHost;
use learnloop_store::{NewApiKey, SqliteOptions, SqliteStore, Store};
use serde_json::{Value, json};
use tower::ServiceExt;

struct Api {
    state: AppState,
    _dir: tempfile::TempDir,
    admin: String,
}

fn api() -> Api {
    let dir = tempfile::tempdir().unwrap();
    let config = Config { data_dir: dir.path().to_owned(), default_workspace: "team-a".into(), ..Config::default() };
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join("s.sqlite"), &SqliteOptions::default()).unwrap());
    let host = PluginHost::load(&learnloop_plugins::registry(), &config, store.clone());
    assert!(host.load_errors.is_empty());
    let k = auth::generate_key();
    store
        .create_api_key(&NewApiKey {
            name: "admin".into(),
            prefix: auth::key_prefix(&k),
            hash: auth::hash_key(&k),
            workspace: None::<WorkspaceId>,
            role: Role::Admin,
            now: Timestamp::now(),
        })
        .unwrap();
    Api { state: AppState::new(config, host), _dir: dir, admin: k }
}

impl Api {
    async fn call(&self, method: &str, uri: &str, body: impl Into<Body>) -> (StatusCode, Value, String) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", format!("Bearer {}", self.admin))
            .body(body.into())
            .unwrap();
        let resp = app(self.state.clone()).oneshot(req).await.unwrap();
        let status = resp.status();
        let ctype = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let v = serde_json::from_slice(&bytes).unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, v, ctype)
    }

    async fn document(&self) -> Value {
        let (s, doc, _) = self.call("GET", "/api/v1/openapi.json", "").await;
        assert_eq!(s, StatusCode::OK);
        doc
    }
}

fn resolve<'a>(doc: &'a Value, r: &str) -> Option<&'a Value> {
    doc.pointer(r.strip_prefix('#')?)
}

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

/// Whether a generator can make a typed model of `s`: a named or inline
/// object with properties, an array of typed items, a scalar, or a choice
/// among typed schemas. `{}` and a bare `{"type": "object"}` are untyped.
fn typed(doc: &Value, s: &Value, depth: usize) -> bool {
    if depth > 20 {
        return true;
    }
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        return resolve(doc, r).is_some_and(|t| typed(doc, t, depth + 1));
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(alts) = s.get(key).and_then(Value::as_array) {
            return !alts.is_empty() && alts.iter().all(|a| typed(doc, a, depth + 1));
        }
    }
    if s.get("enum").is_some() || s.get("const").is_some() {
        return true;
    }
    let types: Vec<&str> = match s.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => return false,
    };
    types.iter().all(|t| match *t {
        "object" => {
            s.get("properties").and_then(Value::as_object).is_some_and(|p| !p.is_empty())
                || s.get("additionalProperties").is_some_and(|a| a.is_object() && typed(doc, a, depth + 1))
        }
        "array" => s.get("items").is_some_and(|i| typed(doc, i, depth + 1)),
        _ => true,
    })
}

fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            out.push((method.to_uppercase(), path.clone(), op.clone()));
        }
    }
    out
}

#[tokio::test]
async fn the_document_is_typed_unique_and_resolvable() {
    let a = api();
    let doc = a.document().await;
    let mut all = Vec::new();
    refs(&doc, &mut all);
    let broken: BTreeSet<&str> = all.into_iter().filter(|r| resolve(&doc, r).is_none()).collect();
    assert!(broken.is_empty(), "unresolved references: {broken:?}");
    let mut ids = BTreeSet::new();
    let mut untyped = Vec::new();
    let ops = operations(&doc);
    assert!(ops.len() >= 60, "{} operations", ops.len());
    for (method, path, op) in &ops {
        let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path} has no operationId"));
        assert!(ids.insert(id.to_string()), "operationId {id} is used twice");
        assert!(id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'), "{id}");
        assert!(!op["summary"].as_str().unwrap_or("").is_empty(), "{id} has no summary");
        assert_eq!(op["tags"].as_array().map(Vec::len), Some(1), "{id} has one tag");
        let responses = op["responses"].as_object().unwrap();
        assert!(responses.contains_key("200"), "{id} declares 200");
        for status in ["400", "404", "405"] {
            assert!(responses.contains_key(status), "{id} declares {status}");
        }
        for (status, r) in responses {
            let content = r["content"].as_object().unwrap_or_else(|| panic!("{id} {status} has no content"));
            for (media, c) in content {
                // `/ready` answers 503 with its own body: the readiness report.
                if op["tags"][0] != "core" {
                    assert!(media.ends_with("json"), "{id} {status}: a plugin route answers JSON, not {media}");
                }
                if status.starts_with('2') || (id == "ready" && status == "503") {
                    if !typed(&doc, &c["schema"], 0) {
                        untyped.push(format!("{id} {status} {media}: {}", c["schema"]));
                    }
                } else {
                    assert_eq!(media, "application/problem+json", "{id} {status}");
                    assert_eq!(c["schema"]["$ref"], "#/components/schemas/Problem", "{id} {status}");
                }
            }
        }
        for p in op["parameters"].as_array().unwrap() {
            assert!(p["schema"]["type"].is_string(), "{id}: parameter {} has no type", p["name"]);
        }
        if let Some(body) = op.get("requestBody") {
            let s = &body["content"]["application/json"]["schema"];
            assert!(typed(&doc, s, 0), "{id}: untyped request body {s}");
        }
    }
    assert!(untyped.is_empty(), "{} untyped answers:\n{}", untyped.len(), untyped.join("\n"));
    for (name, l) in a.state.host.plugins() {
        for r in &l.manifest.routes {
            assert!(ids.contains(&format!("{name}_{}", r.name)), "{name} {} {} missing", r.method, r.path);
        }
    }
    for r in &contract::contract().routes {
        assert!(ids.contains(&r.spec.name), "{} missing", r.spec.name);
    }
}

fn validator(doc: &Value, schema: &Value) -> jsonschema::Validator {
    let root = json!({"components": doc["components"], "allOf": [schema]});
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(&root)
        .unwrap_or_else(|e| panic!("schema does not compile: {e}: {schema}"))
}

fn assert_matches(doc: &Value, method: &str, path: &str, status: StatusCode, body: &Value) {
    let op = &doc["paths"][path][method.to_lowercase()];
    let schema = &op["responses"][status.as_str()]["content"]["application/json"]["schema"];
    assert!(!schema.is_null(), "{method} {path} does not declare {status}");
    let v = validator(doc, schema);
    let errors: Vec<String> = v.iter_errors(body).map(|e| format!("at {}: {e}", e.instance_path().as_str())).collect();
    assert!(
        errors.is_empty(),
        "{method} {path} {status}: the answer breaks its schema:\n{}\n{body}",
        errors.join("\n")
    );
}

#[tokio::test]
async fn core_answers_match_their_declared_schemas() {
    let a = api();
    let doc = a.document().await;
    let rec = |id: &str| {
        json!({"id": id, "workspace": "team-a", "plugin": "drift", "subject": "m", "kind": "regression", "value": 1.5, "features": {"x": 1.0}})
            .to_string()
    };
    let (s, v, _) = a.call("POST", "/api/v1/predictions", rec("p1")).await;
    assert_eq!(s, StatusCode::CREATED);
    assert_matches(&doc, "POST", "/api/v1/predictions", s, &v);
    let (s, v, _) = a.call("POST", "/api/v1/predictions", rec("p1")).await;
    assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("duplicate")));
    assert_matches(&doc, "POST", "/api/v1/predictions", s, &v);
    let batch = format!("[{}, {{\"id\": \"bad id\"}}]", rec("p2"));
    let (s, v, _) = a.call("POST", "/api/v1/predictions", batch).await;
    assert_eq!((s, v["rejected"].as_u64()), (StatusCode::OK, Some(1)), "{v}");
    assert_matches(&doc, "POST", "/api/v1/predictions", s, &v);
    let outcome = json!({"id": "o1", "workspace": "team-a", "plugin": "drift", "prediction_id": "p1", "value": 2.0});
    let (s, v, _) = a.call("POST", "/api/v1/outcomes", outcome.to_string()).await;
    assert_matches(&doc, "POST", "/api/v1/outcomes", s, &v);
    let (s, v, _) = a.call("POST", "/api/v1/jobs/drift/daily/run", "").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_matches(&doc, "POST", "/api/v1/jobs/{plugin}/{job}/run", s, &v);
    let mut checked = 0;
    for r in &contract::contract().routes {
        let spec = &r.spec;
        if spec.method != "GET" || spec.path.contains('{') || ["/metrics", "/docs"].contains(&spec.path.as_str()) {
            continue;
        }
        let uri = if r.workspace { format!("{}?workspace=team-a", spec.path) } else { spec.path.clone() };
        let (s, v, _) = a.call("GET", &uri, "").await;
        assert_eq!(s, StatusCode::OK, "{uri}: {v}");
        assert_matches(&doc, "GET", &spec.path, s, &v);
        checked += 1;
    }
    assert!(checked >= 9, "{checked} GET routes checked");
    let (_, v, _) = a
        .call("GET", "/api/v1/alerts?workspace=team-a&include_acknowledged=true&since=2020-01-01T00:00:00Z&limit=5", "")
        .await;
    assert_matches(&doc, "GET", "/api/v1/alerts", StatusCode::OK, &v);
    let (_, v, _) = a.call("GET", "/api/v1/insights?workspace=team-a", "").await;
    if let Some(id) = v["insights"].get(0).and_then(|i| i["id"].as_i64()) {
        assert!(id > 0);
    }
}

#[tokio::test]
async fn undeclared_repeated_or_ill_typed_query_parameters_are_refused() {
    let a = api();
    let doc = a.document().await;
    let mut seen = 0;
    for (method, path, _) in operations(&doc) {
        let concrete: String = path
            .split('/')
            .map(|seg| if seg.starts_with('{') { if seg == "{plugin}" { "drift" } else { "x1" } } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        let (s, v, _) = a.call(&method, &format!("{concrete}?window_days=7"), "").await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{method} {path}: {v}");
        assert_eq!(v["field"], "window_days", "{method} {path}: {v}");
        assert!(v["detail"].as_str().unwrap().contains("window_days"), "{v}");
        seen += 1;
    }
    assert!(seen >= 60);
    let cases: BTreeMap<&str, (StatusCode, &str)> = BTreeMap::from([
        ("/api/v1/alerts?limit=0", (StatusCode::UNPROCESSABLE_ENTITY, "limit")),
        ("/api/v1/alerts?limit=2&limit=3", (StatusCode::BAD_REQUEST, "limit")),
        ("/api/v1/alerts?include_acknowledged=maybe", (StatusCode::UNPROCESSABLE_ENTITY, "include_acknowledged")),
        ("/api/v1/insights?since=yesterday", (StatusCode::UNPROCESSABLE_ENTITY, "since")),
        ("/api/v1/improvements?status=pending", (StatusCode::UNPROCESSABLE_ENTITY, "status")),
        ("/api/v1/jobs?workspace=team-a", (StatusCode::BAD_REQUEST, "workspace")),
    ]);
    for (uri, (status, field)) in cases {
        let (s, v, ctype) = a.call("GET", uri, "").await;
        assert_eq!((s, v["field"].as_str()), (status, Some(field)), "{uri}: {v}");
        assert_eq!(ctype, "application/problem+json");
    }
    // Declared parameters at valid values pass.
    let (s, v, _) = a.call("GET", "/api/v1/alerts?include_acknowledged=1&limit=10000", "").await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

#[tokio::test]
async fn the_docs_page_renders_every_operation_from_this_binary() {
    let a = api();
    let doc = a.document().await;
    let (s, page, ctype) = a.call("GET", "/docs", "").await;
    assert_eq!(s, StatusCode::OK);
    assert!(ctype.starts_with("text/html"), "{ctype}");
    let page = page.as_str().unwrap();
    for (method, path, op) in operations(&doc) {
        let id = op["operationId"].as_str().unwrap();
        assert!(page.contains(&format!("id=\"op-{id}\"")), "{method} {path} ({id}) is not on /docs");
    }
    for name in doc["components"]["schemas"].as_object().unwrap().keys() {
        assert!(page.contains(&format!("id=\"schema-{name}\"")), "schema {name} is not on /docs");
    }
    assert!(!page.contains("<script") && !page.contains("src=\"http") && !page.contains("<link"), "self-contained");
}
