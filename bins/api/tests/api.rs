//! The API driven through `tower::ServiceExt::oneshot`, no socket.
//!
//! mod list: ingest semantics, problem documents for client mistakes, the
//! auth matrix (every route × role × own/other workspace), a fuzz-style
//! run of malformed bodies, plugin routes, jobs, OpenAPI coverage, metrics.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use learnloop_api::{AppState, app, auth};
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
    writer_a: String,
    reader_a: String,
    writer_b: String,
}

fn key(store: &dyn Store, role: Role, ws: Option<&str>) -> String {
    let k = auth::generate_key();
    store
        .create_api_key(&NewApiKey {
            name: format!("{role:?}"),
            prefix: auth::key_prefix(&k),
            hash: auth::hash_key(&k),
            workspace: ws.map(|w| WorkspaceId::parse("", w).unwrap()),
            role,
            now: Timestamp::now(),
        })
        .unwrap();
    k
}

fn api_with(f: impl FnOnce(&mut Config)) -> Api {
    let dir = tempfile::tempdir().unwrap();
    let mut config =
        Config { data_dir: dir.path().to_owned(), default_workspace: "team-a".into(), ..Config::default() };
    f(&mut config);
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join("s.sqlite"), &SqliteOptions::default()).unwrap());
    let host = PluginHost::load(&learnloop_plugins::registry(), &config, store.clone());
    assert!(host.load_errors.is_empty());
    Api {
        admin: key(store.as_ref(), Role::Admin, None),
        writer_a: key(store.as_ref(), Role::Writer, Some("team-a")),
        reader_a: key(store.as_ref(), Role::Reader, Some("team-a")),
        writer_b: key(store.as_ref(), Role::Writer, Some("team-b")),
        state: AppState::new(config, host),
        _dir: dir,
    }
}

fn api() -> Api {
    api_with(|_| {})
}

impl Api {
    async fn call(
        &self,
        method: &str,
        uri: &str,
        key: Option<&str>,
        body: impl Into<Body>,
    ) -> (StatusCode, Value, String) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(k) = key {
            req = req.header("authorization", format!("Bearer {k}"));
        }
        let resp = app(self.state.clone()).oneshot(req.body(body.into()).unwrap()).await.unwrap();
        let status = resp.status();
        let ctype = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let v = serde_json::from_slice(&bytes).unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, v, ctype)
    }

    fn counts(&self) -> (u64, u64) {
        let rows = self.state.host.store().counts(None).unwrap();
        (rows.iter().map(|r| r.predictions).sum(), rows.iter().map(|r| r.outcomes).sum())
    }
}

fn pred(id: &str, ws: &str) -> String {
    json!({"id": id, "workspace": ws, "plugin": "drift", "subject": format!("model-of-{ws}"), "kind": "regression", "value": 1.5}).to_string()
}

#[tokio::test]
async fn ingest_single_batch_and_duplicates() {
    let a = api();
    let k = Some(a.writer_a.as_str());
    let (s, v, _) = a.call("POST", "/api/v1/predictions", k, pred("p1", "team-a")).await;
    assert_eq!((s, v["status"].as_str()), (StatusCode::CREATED, Some("inserted")), "{v}");
    let (s, v, _) = a.call("POST", "/api/v1/predictions", k, pred("p1", "team-a")).await;
    assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("duplicate")));
    // Same id, other content: 409.
    let changed = pred("p1", "team-a").replace("1.5", "2.5");
    let (s, v, ctype) = a.call("POST", "/api/v1/predictions", k, changed).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(ctype, "application/problem+json");
    assert_eq!(v["field"], "id", "a conflict names the field at fault: {v}");
    // Workspace defaults to the key's.
    let (s, _, _) = a
        .call("POST", "/api/v1/predictions", k, r#"{"id":"p2","plugin":"drift","subject":"m","kind":"r","value":1}"#)
        .await;
    assert_eq!(s, StatusCode::CREATED);
    // A batch with per-item results; the valid ones land together.
    let batch = json!([
        {"id": "o1", "plugin": "drift", "prediction_id": "p1", "value": 1.4},
        {"id": "o2", "plugin": "drift", "prediction_id": "nope", "value": 1.4},
        {"id": "o3", "plugin": "drift", "prediction_id": "p2", "value": "high"},
        {"id": "o1", "plugin": "drift", "prediction_id": "p1", "value": 1.4},
        {"id": "o4", "plugin": "drift", "prediction_id": "p2", "value": 0.9}
    ]);
    let (s, v, _) = a.call("POST", "/api/v1/outcomes", k, batch.to_string()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let st: Vec<&str> = v["results"].as_array().unwrap().iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(st, ["inserted", "rejected", "rejected", "duplicate", "inserted"]);
    assert_eq!(v["results"][1]["field"], "prediction_id");
    assert_eq!(v["results"][2]["field"], "value");
    assert_eq!((v["inserted"].as_u64(), v["duplicates"].as_u64(), v["rejected"].as_u64()), (Some(2), Some(1), Some(2)));
    assert_eq!(a.counts(), (2, 2));
    // The type is fixed by the route.
    let (s, v, _) = a.call("POST", "/api/v1/outcomes", k, pred("p9", "team-a")).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["field"], "subject", "{v}");
}

#[tokio::test]
async fn client_mistakes_are_problem_documents_and_store_nothing() {
    let a = api_with(|c| {
        c.api.max_body_bytes = 2048;
        c.api.max_batch = 3;
        c.plugins.enabled = vec!["drift".into(), "trust".into()];
    });
    let k = Some(a.writer_a.as_str());
    let cases: Vec<(String, StatusCode, Option<&str>, &str)> = vec![
        ("{\"id\":".into(), StatusCode::BAD_REQUEST, None, "malformed JSON"),
        (pred("x", "team-a").replace("1.5", "NaN"), StatusCode::BAD_REQUEST, None, "NaN"),
        (pred("x", "team-a").replace("1.5", "1e999"), StatusCode::BAD_REQUEST, None, "malformed JSON"),
        (
            pred("x", "team-a").replace("1.5", "\"high\""),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("value"),
            "expected a number, got the string \"high\"",
        ),
        (
            pred("x", "team-a").replace("\"drift\"", "\"horoscope\""),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("plugin"),
            "unknown plugin",
        ),
        (
            pred("x", "team-a").replace("\"drift\"", "\"cost\""),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("plugin"),
            "disabled",
        ),
        (
            pred("x", "team-a").replace("\"value\"", "\"vaule\""),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("vaule"),
            "unknown field",
        ),
        (pred("x", "team-a").replace("\"x\"", "\"a b\""), StatusCode::UNPROCESSABLE_ENTITY, Some("id"), "contains ' '"),
        (
            format!(
                "{{\"id\":\"x\",\"plugin\":\"drift\",\"subject\":\"{}\",\"kind\":\"r\",\"value\":1}}",
                "s".repeat(3000)
            ),
            StatusCode::PAYLOAD_TOO_LARGE,
            None,
            "max_body_bytes",
        ),
        (
            format!(
                "[{},{},{},{}]",
                pred("a", "team-a"),
                pred("b", "team-a"),
                pred("c", "team-a"),
                pred("d", "team-a")
            ),
            StatusCode::PAYLOAD_TOO_LARGE,
            None,
            "max_batch",
        ),
        ("".into(), StatusCode::BAD_REQUEST, None, "empty"),
        ("42".into(), StatusCode::BAD_REQUEST, None, "JSON object"),
        ("[]".into(), StatusCode::BAD_REQUEST, None, "empty"),
        (pred("x", "team-b"), StatusCode::FORBIDDEN, None, "team-a"),
    ];
    for (body, status, field, fragment) in cases {
        let (s, v, ctype) = a.call("POST", "/api/v1/predictions", k, body.clone()).await;
        assert_eq!(s, status, "{body}: {v}");
        assert_eq!(ctype, "application/problem+json", "{body}");
        assert!(v["type"].as_str().unwrap().starts_with("https://learnloop.dev/problems/"), "{v}");
        assert!(v["detail"].as_str().unwrap().contains(fragment), "{body}: {v} lacks {fragment:?}");
        if let Some(f) = field {
            assert_eq!(v["field"], f, "{body}: {v}");
        }
    }
    assert_eq!(a.counts(), (0, 0), "nothing stored");
}

#[tokio::test]
async fn auth_matrix() {
    let a = api();
    // Something to find: one prediction in team-a.
    let (s, _, _) = a.call("POST", "/api/v1/predictions", Some(&a.admin), pred("seed", "team-a")).await;
    assert_eq!(s, StatusCode::CREATED);
    use StatusCode as S;
    // (method, uri, body, [none, reader-a, writer-a, admin, writer-b])
    let routes: Vec<(&str, String, String, [S; 5])> = vec![
        (
            "POST",
            "/api/v1/predictions".into(),
            pred("m1", "team-a"),
            [S::UNAUTHORIZED, S::FORBIDDEN, S::CREATED, S::OK, S::FORBIDDEN],
        ),
        (
            "POST",
            "/api/v1/outcomes".into(),
            json!({"id":"mo","workspace":"team-a","plugin":"drift","prediction_id":"seed","value":1}).to_string(),
            [S::UNAUTHORIZED, S::FORBIDDEN, S::CREATED, S::OK, S::FORBIDDEN],
        ),
        (
            "GET",
            "/api/v1/drift/summary?workspace=team-a".into(),
            String::new(),
            [S::UNAUTHORIZED, S::OK, S::OK, S::OK, S::FORBIDDEN],
        ),
        (
            "GET",
            "/api/v1/insights?workspace=team-a".into(),
            String::new(),
            [S::UNAUTHORIZED, S::OK, S::OK, S::OK, S::FORBIDDEN],
        ),
        (
            "GET",
            "/api/v1/alerts?workspace=team-a".into(),
            String::new(),
            [S::UNAUTHORIZED, S::OK, S::OK, S::OK, S::FORBIDDEN],
        ),
        (
            "POST",
            "/api/v1/alerts/1/ack?workspace=team-a".into(),
            String::new(),
            [S::UNAUTHORIZED, S::FORBIDDEN, S::NOT_FOUND, S::NOT_FOUND, S::FORBIDDEN],
        ),
        (
            "GET",
            "/api/v1/improvements?workspace=team-a".into(),
            String::new(),
            [S::UNAUTHORIZED, S::OK, S::OK, S::OK, S::FORBIDDEN],
        ),
        (
            "GET",
            "/api/v1/improvements/applied?workspace=team-a".into(),
            String::new(),
            [S::UNAUTHORIZED, S::OK, S::OK, S::OK, S::FORBIDDEN],
        ),
        (
            "GET",
            "/api/v1/improvements/7?workspace=team-a".into(),
            String::new(),
            [S::UNAUTHORIZED, S::NOT_FOUND, S::NOT_FOUND, S::NOT_FOUND, S::FORBIDDEN],
        ),
        (
            "POST",
            "/api/v1/improvements/7/approve?workspace=team-a".into(),
            String::new(),
            [S::UNAUTHORIZED, S::FORBIDDEN, S::NOT_FOUND, S::NOT_FOUND, S::FORBIDDEN],
        ),
        (
            "POST",
            "/api/v1/improvements/7/reject?workspace=team-a".into(),
            r#"{"reason":"x"}"#.into(),
            [S::UNAUTHORIZED, S::FORBIDDEN, S::NOT_FOUND, S::NOT_FOUND, S::FORBIDDEN],
        ),
        (
            "POST",
            "/api/v1/improvements/rollback?workspace=team-a".into(),
            r#"{"plugin":"trust","target":"weights"}"#.into(),
            [S::UNAUTHORIZED, S::FORBIDDEN, S::UNPROCESSABLE_ENTITY, S::UNPROCESSABLE_ENTITY, S::FORBIDDEN],
        ),
        (
            "GET",
            "/api/v1/jobs".into(),
            String::new(),
            [S::UNAUTHORIZED, S::FORBIDDEN, S::FORBIDDEN, S::OK, S::FORBIDDEN],
        ),
        (
            "GET",
            "/api/v1/jobs/runs".into(),
            String::new(),
            [S::UNAUTHORIZED, S::FORBIDDEN, S::FORBIDDEN, S::OK, S::FORBIDDEN],
        ),
        (
            "POST",
            "/api/v1/jobs/drift/daily/run".into(),
            String::new(),
            [S::UNAUTHORIZED, S::FORBIDDEN, S::FORBIDDEN, S::OK, S::FORBIDDEN],
        ),
        ("GET", "/health".into(), String::new(), [S::OK; 5]),
        ("GET", "/ready".into(), String::new(), [S::OK; 5]),
        ("GET", "/metrics".into(), String::new(), [S::OK; 5]),
        ("GET", "/api/v1/openapi.json".into(), String::new(), [S::OK; 5]),
    ];
    let keys: [Option<&str>; 5] = [None, Some(&a.reader_a), Some(&a.writer_a), Some(&a.admin), Some(&a.writer_b)];
    let names = ["none", "reader-a", "writer-a", "admin", "writer-b"];
    for (method, uri, body, expected) in &routes {
        for ((k, name), want) in keys.iter().zip(names).zip(expected) {
            let (s, v, _) = a.call(method, uri, *k, body.clone()).await;
            assert_eq!(s, *want, "{method} {uri} with {name}: {v}");
        }
    }
    // A key of one workspace cannot read another's data, even by default.
    // (Checked on the text, so it holds whatever shape the plugin answers in.)
    let (_, mine, _) = a.call("GET", "/api/v1/drift/summary", Some(&a.reader_a), "").await;
    assert!(mine.to_string().contains("model-of-team-a"), "team-a sees its model: {mine}");
    let (s, v, _) = a.call("GET", "/api/v1/drift/summary", Some(&a.writer_b), "").await;
    assert_eq!(s, S::OK);
    assert!(!v.to_string().contains("model-of-team-a"), "team-b sees nothing of team-a: {v}");
    // Revoked and unknown keys.
    let (s, _, _) = a.call("GET", "/api/v1/insights", Some("llk_0000"), "").await;
    assert_eq!(s, S::UNAUTHORIZED);
}

/// Deterministic malformed bodies: no 5xx, nothing stored.
#[tokio::test]
async fn fuzzed_bodies_never_5xx_and_store_nothing() {
    let a = api();
    let k = Some(a.writer_a.as_str());
    let base = pred("fz", "team-a");
    let mut bodies: Vec<Vec<u8>> = Vec::new();
    // Every truncation of a valid record.
    for i in 0..base.len() - 1 {
        bodies.push(base.as_bytes()[..i].to_vec());
    }
    // Byte flips into JSON-breaking or value-breaking characters.
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let breakers = [b'{', b'}', b'"', b',', b':', b'[', 0xff, 0x00, b'\\'];
    while bodies.len() < 400 {
        let mut b = base.as_bytes().to_vec();
        let at = (next() % b.len() as u64) as usize;
        b[at] = breakers[(next() % breakers.len() as u64) as usize];
        if serde_json::from_slice::<Value>(&b).is_err() {
            bodies.push(b);
        }
    }
    // Valid JSON, invalid records.
    for v in [
        json!({"id": "", "plugin": "drift", "subject": "m", "kind": "k", "value": 1}),
        json!({"id": "x", "plugin": "drift", "subject": "m", "kind": "k", "value": 1, "confidence": 2}),
        json!({"id": "x", "plugin": "Drift", "subject": "m", "kind": "k", "value": 1}),
        json!({"id": "x", "plugin": "drift", "subject": "", "kind": "k", "value": 1}),
        json!({"id": "x", "plugin": "drift", "subject": "m", "kind": "k", "value": [1]}),
        json!({"id": "x", "plugin": "drift", "subject": "m", "kind": "k", "value": 1, "features": {"a": {"b": 1}}}),
        json!({"id": "x", "plugin": "drift", "subject": "m", "kind": "k", "value": 1, "event_time": "yesterday"}),
        json!({"id": "x", "plugin": "drift", "subject": "m", "kind": "k", "value": 1, "payload": "text"}),
        json!({"id": "x", "workspace": "team-a", "plugin": "drift", "subject": "m", "kind": "k"}),
        json!([{"id": "x"}, {"plugin": "drift"}, 7, "s", null]),
    ] {
        bodies.push(v.to_string().into_bytes());
    }
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    bodies.push(deep.into_bytes());
    for (i, b) in bodies.iter().enumerate() {
        for route in ["/api/v1/predictions", "/api/v1/outcomes"] {
            let (s, v, _) = a.call("POST", route, k, b.clone()).await;
            assert!(
                s.is_client_error() || s == StatusCode::OK,
                "body {i} {:?} on {route}: {s} {v}",
                String::from_utf8_lossy(b)
            );
            if s == StatusCode::OK {
                assert_eq!(v["inserted"].as_u64(), Some(0), "body {i}: {v}");
            }
        }
    }
    assert_eq!(a.counts(), (0, 0), "nothing stored");
}

#[tokio::test]
async fn plugin_routes_jobs_openapi_and_metrics() {
    let a = api();
    let adm = Some(a.admin.as_str());
    a.call("POST", "/api/v1/predictions", adm, pred("p1", "team-a")).await;
    a.call(
        "POST",
        "/api/v1/outcomes",
        adm,
        r#"{"id":"o1","workspace":"team-a","plugin":"drift","prediction_id":"p1","value":2}"#,
    )
    .await;
    let (s, v, _) = a.call("GET", "/api/v1/drift/summary?workspace=team-a", adm, "").await;
    assert_eq!(s, StatusCode::OK);
    assert!(v.to_string().contains("model-of-team-a"), "the online update ran before the answer: {v}");
    let (s, _, _) = a.call("GET", "/api/v1/drift/nowhere", adm, "").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v, _) = a.call("GET", "/api/v1/horoscope/summary", adm, "").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(v["detail"].as_str().unwrap().contains("unknown plugin"));

    let (s, v, _) = a.call("POST", "/api/v1/jobs/drift/daily/run", adm, "").await;
    assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("succeeded")), "{v}");
    let (_, v, _) = a.call("GET", "/api/v1/jobs/runs?plugin=drift", adm, "").await;
    assert_eq!(v["runs"].as_array().unwrap().len(), 1);
    let (s, _, _) = a.call("POST", "/api/v1/jobs/drift/nope/run", adm, "").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, v, _) = a.call("GET", "/api/v1/insights", adm, "").await;
    assert_eq!(v["insights"].as_array().unwrap().len(), 1, "the job's insight: {v}");

    let (_, doc, _) = a.call("GET", "/api/v1/openapi.json", None, "").await;
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/api/v1/predictions",
        "/api/v1/outcomes",
        "/api/v1/jobs/{plugin}/{job}/run",
        "/api/v1/alerts",
        "/metrics",
        "/api/v1/improvements",
        "/api/v1/improvements/{id}",
        "/api/v1/improvements/applied",
        "/api/v1/improvements/{id}/approve",
        "/api/v1/improvements/{id}/reject",
        "/api/v1/improvements/rollback",
    ] {
        assert!(paths.contains_key(p), "{p} missing from OpenAPI");
    }
    for (name, l) in a.state.host.plugins() {
        for r in &l.manifest.routes {
            let p = format!("/api/v1/{name}{}", r.path);
            assert!(paths.get(&p).and_then(|x| x.get(r.method.to_lowercase())).is_some(), "{} {p} missing", r.method);
        }
    }
    let (_, text, _) = a.call("GET", "/metrics", None, "").await;
    let text = text.as_str().unwrap().to_string();
    assert!(
        text.contains("learnloop_http_requests_total{method=\"POST\",route=\"/api/v1/predictions\",status=\"201\"} 1"),
        "{text}"
    );
    assert!(text.contains("learnloop_ingested_records_total{type=\"prediction\",result=\"inserted\"} 1"), "{text}");
    assert!(
        text.contains("learnloop_job_duration_seconds_count{plugin=\"drift\",job=\"daily\",status=\"succeeded\"} 1"),
        "{text}"
    );
    assert!(text.contains("learnloop_job_last_run_duration_seconds{plugin=\"drift\",job=\"daily\",status=\"succeeded\",runner=\"api\"}"), "{text}");
}

/// Which workspace an ingested record went to.
fn workspace_of(a: &Api, id: &str) -> Option<String> {
    let drift = learnloop_core::PluginName::parse("", "drift").unwrap();
    ["default", "team-a", "team-b", "team-c"].into_iter().map(str::to_string).find(|ws| {
        let ws = WorkspaceId::parse("", ws).unwrap();
        a.state.host.store().events(&ws, &drift, 0, 10_000).unwrap().iter().any(|e| match e {
            learnloop_core::history::Event::Prediction(p) => p.record.id.as_str() == id,
            learnloop_core::history::Event::Outcome(o) => o.record.id.as_str() == id,
        })
    })
}

/// `?workspace=` on the ingest routes is honoured with the same rules as a
/// record's `workspace` field; an admin key must name the workspace.
#[tokio::test]
async fn ingest_honours_the_workspace_query_parameter() {
    let a = api();
    let bare =
        |id: &str| json!({"id": id, "plugin": "drift", "subject": "m", "kind": "regression", "value": 1.0}).to_string();
    use StatusCode as S;
    // (what, uri, key, body, status, where it landed or a fragment of the problem)
    let cases: Vec<(&str, &str, &str, String, S, &str)> = vec![
        ("admin + ?workspace", "/api/v1/predictions?workspace=team-b", &a.admin, bare("q1"), S::CREATED, "team-b"),
        ("admin, record names it", "/api/v1/predictions", &a.admin, pred("q2", "team-b"), S::CREATED, "team-b"),
        (
            "admin, no workspace",
            "/api/v1/predictions",
            &a.admin,
            bare("q3"),
            S::UNPROCESSABLE_ENTITY,
            "required for admin keys",
        ),
        ("writer-a, no workspace", "/api/v1/predictions", &a.writer_a, bare("q4"), S::CREATED, "team-a"),
        (
            "writer-a + own ?workspace",
            "/api/v1/predictions?workspace=team-a",
            &a.writer_a,
            bare("q5"),
            S::CREATED,
            "team-a",
        ),
        (
            "writer-a + other ?workspace",
            "/api/v1/predictions?workspace=team-b",
            &a.writer_a,
            bare("q6"),
            S::FORBIDDEN,
            "\"team-a\", not \"team-b\"",
        ),
        (
            "writer-a, record names another",
            "/api/v1/predictions",
            &a.writer_a,
            pred("q7", "team-b"),
            S::FORBIDDEN,
            "\"team-a\", not \"team-b\"",
        ),
        (
            "query and record disagree",
            "/api/v1/predictions?workspace=team-b",
            &a.admin,
            pred("q8", "team-c"),
            S::UNPROCESSABLE_ENTITY,
            "\"team-c\" but the query parameter asks for \"team-b\"",
        ),
        (
            "query and record agree",
            "/api/v1/predictions?workspace=team-b",
            &a.admin,
            pred("q9", "team-b"),
            S::CREATED,
            "team-b",
        ),
        (
            "bad ?workspace",
            "/api/v1/predictions?workspace=Team%20B",
            &a.admin,
            bare("q10"),
            S::UNPROCESSABLE_ENTITY,
            "only lowercase ASCII letters",
        ),
        (
            "unknown query parameter",
            "/api/v1/predictions?workspac=team-b",
            &a.admin,
            bare("q11"),
            S::BAD_REQUEST,
            "unknown query parameter \"workspac\"",
        ),
    ];
    for (what, uri, key, body, status, expect) in cases {
        let (s, v, _) = a.call("POST", uri, Some(key), body.clone()).await;
        assert_eq!(s, status, "{what}: {v}");
        let id = serde_json::from_str::<Value>(&body).unwrap()["id"].as_str().unwrap().to_string();
        if s.is_success() {
            assert_eq!(workspace_of(&a, &id).as_deref(), Some(expect), "{what}");
        } else {
            assert!(v["detail"].as_str().unwrap().contains(expect), "{what}: {v} lacks {expect:?}");
            assert_eq!(workspace_of(&a, &id), None, "{what}: nothing stored");
        }
    }
    // In a batch, an admin key's record without a workspace is rejected by itself.
    let batch = json!([
        json!({"id": "b1", "workspace": "team-a", "plugin": "drift", "subject": "m", "kind": "r", "value": 1}),
        serde_json::from_str::<Value>(&bare("b2")).unwrap()
    ]);
    let (s, v, _) = a.call("POST", "/api/v1/predictions", Some(&a.admin), batch.to_string()).await;
    assert_eq!(s, S::OK, "{v}");
    assert_eq!(
        (v["results"][0]["status"].as_str(), v["results"][1]["status"].as_str()),
        (Some("inserted"), Some("rejected")),
        "{v}"
    );
    assert_eq!(v["results"][1]["field"], "workspace", "{v}");
    // Outcomes follow the same rules.
    let (s, v, _) = a
        .call(
            "POST",
            "/api/v1/outcomes?workspace=team-b",
            Some(&a.admin),
            r#"{"id":"qo","plugin":"drift","prediction_id":"q1","value":2}"#,
        )
        .await;
    assert_eq!(s, S::CREATED, "{v}");
    assert_eq!(workspace_of(&a, "qo").as_deref(), Some("team-b"));

    // With auth disabled there is no key: records default to default_workspace.
    let open = api_with(|c| c.auth.enabled = false);
    let (s, v, _) = open.call("POST", "/api/v1/predictions", None, bare("n1")).await;
    assert_eq!(s, S::CREATED, "{v}");
    assert_eq!(workspace_of(&open, "n1").as_deref(), Some("team-a"));
}

/// Every error is a problem document: 404, 405 (with `Allow`) from the
/// router and from plugin routes, and a preflight while CORS is off.
#[tokio::test]
async fn router_errors_are_problem_documents() {
    let a = api();
    let adm = Some(a.admin.as_str());
    for (method, uri, status, allow) in [
        ("GET", "/api/v1/predictions", StatusCode::METHOD_NOT_ALLOWED, Some("POST")),
        ("DELETE", "/api/v1/jobs", StatusCode::METHOD_NOT_ALLOWED, Some("GET,HEAD")),
        ("OPTIONS", "/api/v1/predictions", StatusCode::METHOD_NOT_ALLOWED, Some("POST")),
        ("PATCH", "/api/v1/drift/models/m1/retrain", StatusCode::METHOD_NOT_ALLOWED, Some("GET, POST")),
        ("OPTIONS", "/api/v1/drift/summary", StatusCode::METHOD_NOT_ALLOWED, Some("GET")),
        ("GET", "/api/v2/nothing", StatusCode::NOT_FOUND, None),
        ("GET", "/api/v1/drift/nowhere", StatusCode::NOT_FOUND, None),
    ] {
        let mut req = Request::builder().method(method).uri(uri);
        if method == "OPTIONS" {
            // A browser's preflight: no key.
            req = req.header("origin", "https://app.example.com").header("access-control-request-method", "POST");
        } else {
            req = req.header("authorization", format!("Bearer {}", a.admin));
        }
        let resp = app(a.state.clone()).oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(resp.status(), status, "{method} {uri}");
        let got_allow = resp.headers().get("allow").map(|v| v.to_str().unwrap().replace(' ', ""));
        assert_eq!(got_allow, allow.map(|a| a.replace(' ', "")), "{method} {uri}");
        assert_eq!(resp.headers()["content-type"], "application/problem+json", "{method} {uri}");
        let v: Value = serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
        assert_eq!(v["status"], status.as_u16(), "{v}");
        assert!(!v["detail"].as_str().unwrap().is_empty(), "{v}");
        if status == StatusCode::METHOD_NOT_ALLOWED {
            assert!(v["detail"].as_str().unwrap().contains(method), "{v}");
        }
        if method == "OPTIONS" && !uri.contains("drift") {
            assert!(v["detail"].as_str().unwrap().contains("cors_origins"), "{v}");
        }
    }
    let _ = adm;
}

/// `[api] cors_origins`: preflights from a listed origin are answered,
/// others refused with a problem naming the origin.
#[tokio::test]
async fn cors_preflights_are_allowed_or_refused() {
    let a = api_with(|c| c.api.cors_origins = vec!["https://app.example.com".into()]);
    let preflight = |origin: &str, method: &str, headers: &str| {
        let mut req = Request::builder()
            .method("OPTIONS")
            .uri("/api/v1/predictions")
            .header("origin", origin)
            .header("access-control-request-method", method);
        if !headers.is_empty() {
            req = req.header("access-control-request-headers", headers);
        }
        app(a.state.clone()).oneshot(req.body(Body::empty()).unwrap())
    };
    let ok = preflight("https://app.example.com", "POST", "authorization, content-type").await.unwrap();
    assert_eq!(ok.status(), StatusCode::NO_CONTENT);
    assert_eq!(ok.headers()["access-control-allow-origin"], "https://app.example.com");
    assert!(ok.headers()["access-control-allow-methods"].to_str().unwrap().contains("POST"));
    assert!(ok.headers()["access-control-allow-headers"].to_str().unwrap().contains("authorization"));
    for (origin, method, headers, fragment) in [
        ("https://evil.example.com", "POST", "", "\"https://evil.example.com\" is not in api.cors_origins"),
        ("https://app.example.com", "PATCH", "", "method \"PATCH\""),
        ("https://app.example.com", "GET", "x-custom", "header \"x-custom\""),
    ] {
        let resp = preflight(origin, method, headers).await.unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{origin} {method} {headers}");
        assert!(resp.headers().get("access-control-allow-origin").is_none());
        assert_eq!(resp.headers()["content-type"], "application/problem+json");
        let v: Value = serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
        assert!(v["detail"].as_str().unwrap().contains(fragment), "{v}");
    }
    // An actual request from the listed origin carries the header; from another it does not.
    for (origin, allowed) in [("https://app.example.com", true), ("https://evil.example.com", false)] {
        let req = Request::builder()
            .method("GET")
            .uri("/api/v1/insights")
            .header("origin", origin)
            .header("authorization", format!("Bearer {}", a.reader_a))
            .body(Body::empty())
            .unwrap();
        let resp = app(a.state.clone()).oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers().get("access-control-allow-origin").is_some(), allowed, "{origin}");
    }
    // Off by default: no CORS header at all.
    let off = api();
    let req = Request::builder()
        .method("GET")
        .uri("/health")
        .header("origin", "https://app.example.com")
        .body(Body::empty())
        .unwrap();
    let resp = app(off.state.clone()).oneshot(req).await.unwrap();
    assert!(resp.headers().get("access-control-allow-origin").is_none());
}

/// A body a field of which has the wrong type is refused naming the field
/// and what was expected in plain words: no Rust type names, no positions.
#[tokio::test]
async fn body_type_errors_name_the_field_in_plain_words() {
    let a = api_with(|c| c.plugins.enabled = vec!["drift".into(), "cost".into()]);
    let k = Some(a.writer_a.as_str());
    for (uri, body, field, fragment) in [
        ("/api/v1/predictions", pred("t1", "team-a").replace("1.5", "\"high\""), "value", "expected a number, got the string \"high\""),
        ("/api/v1/predictions", pred("t2", "team-a").replace("\"t2\"", "5"), "id", "expected a string, got the number 5"),
        ("/api/v1/predictions", pred("t3", "team-a").replace("1.5", "1, \"confidence\": [1]"), "confidence", "expected a number, got an array"),
        ("/api/v1/cost/assess", r#"{"recommendation_type":"spot","resource_type":"ec2","region":"eu","predicted_savings":"x"}"#.to_string(), "predicted_savings", "expected a number, got the string \"x\""),
        ("/api/v1/cost/assess", r#"{"recommendation_type":"spot","resource_type":"ec2","region":"eu","predicted_savings":1,"scoring_factors":{"cpu":{}}}"#.to_string(), "scoring_factors.cpu", "expected a number, got an object"),
    ] {
        let (s, v, _) = a.call("POST", uri, k, body.clone()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {v}");
        assert_eq!(v["field"], field, "{body}: {v}");
        let detail = v["detail"].as_str().unwrap();
        assert!(detail.contains(fragment), "{body}: {v}");
        for internal in ["f64", "line 1", "struct ", "`"] {
            assert!(!detail.contains(internal), "{body}: {detail:?} shows {internal:?}");
        }
    }
}
