//! A dynamically loaded plugin that fails at run time: its ingest and its
//! routes answer 503 problem+json naming the plugin and the reason — the
//! request was not invalid (422) and the server is fine (not 500).
//!
//! `learnloop_test_support::cdylib` builds the panicking fixture library
//! (once per target directory, shared with the host's tests).

// The panicky fixture reads where to panic from an environment variable
// (it must be able to panic before any config reaches it, in `create`),
// and setting one is `unsafe` since Rust 2024 (another thread may read the
// environment at the same time). Only this test binary's own threads run.
#![allow(unsafe_code)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use learnloop_api::{AppState, app};
use learnloop_config::Config;
use learnloop_plugin_host::{PluginHost, load_library};
use learnloop_store::{SqliteOptions, SqliteStore, Store};
use learnloop_test_support::cdylib as support;
use serde_json::Value;
use tower::ServiceExt;

async fn call(state: &AppState, method: &str, uri: &str, body: &str) -> (StatusCode, String, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = app(state.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let ctype = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, ctype, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_failing_dynamic_plugin_is_503_naming_plugin_and_reason() {
    let lib = support::build_cdylib("learnloop-fixture-panicky", &[]);
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config { data_dir: dir.path().to_owned(), ..Config::default() };
    config.auth.enabled = false;
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join("s.sqlite"), &SqliteOptions::default()).unwrap());
    // The fixture panics in the entry point this variable names, read at each call.
    let loaded = load_library(&lib, &Value::Null).unwrap();
    let state = AppState::new(config, PluginHost::with_plugins(store, vec![loaded]));

    unsafe { std::env::set_var("LEARNLOOP_FIXTURE_PANIC_IN", "validate") };
    let record = r#"{"id":"p1","workspace":"default","plugin":"panicky","subject":"s","kind":"k","value":1}"#;
    let (status, ctype, body) = call(&state, "POST", "/api/v1/predictions", record).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(ctype, "application/problem+json");
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("plugin panicky") && detail.contains("fixture panics in validate"), "{body}");

    unsafe { std::env::set_var("LEARNLOOP_FIXTURE_PANIC_IN", "handle") };
    let (status, ctype, body) = call(&state, "GET", "/api/v1/panicky/boom?workspace=default", "").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(ctype, "application/problem+json");
    assert!(body["detail"].as_str().unwrap().contains("fixture panics in handle"), "{body}");

    // Without a panic the same plugin serves: nothing was wrong with the requests.
    unsafe { std::env::set_var("LEARNLOOP_FIXTURE_PANIC_IN", "nowhere") };
    let (status, _, body) = call(&state, "POST", "/api/v1/predictions", record).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    unsafe { std::env::remove_var("LEARNLOOP_FIXTURE_PANIC_IN") };

    // The OpenAPI document says so.
    let (_, _, doc) = call(&state, "GET", "/api/v1/openapi.json", "").await;
    assert!(doc["paths"]["/api/v1/predictions"]["post"]["responses"]["503"].is_object(), "{doc}");
    assert!(doc["paths"]["/api/v1/panicky/boom"]["get"]["responses"]["503"].is_object(), "{doc}");
}
