//! The dashboard (`/ui`) in a real browser: headless Chromium driven over
//! WebDriver against the real `learnloop-api` on a quickstart data
//! directory. Signs in, opens every page (screenshots in
//! `<target>/dashboard-screenshots/`), checks each page's key numbers
//! against the JSON route, approves an improvement and acknowledges an
//! alert through the buttons, and checks what a reader key cannot do, that
//! one workspace's key never sees another's, and that an XSS probe renders
//! as text. Skipped (with a message) without a browser, except under
//! `CI=true` (see `scripts/browser-up`).

use learnloop_e2e::webdriver::{Browser, artifacts_dir};
use learnloop_e2e::{Scratch, http, start_api};
use serde_json::Value;

const PROBE: &str = "<script>alert(1)</script>";

fn get(addr: &str, key: &str, path: &str) -> Value {
    let (status, body) = http(addr, "GET", path, Some(key), "");
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// A raw form POST with the session cookie, as a forged request would be.
fn post_form(addr: &str, path: &str, cookie: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nCookie: learnloop_session={cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, out)
}

fn sign_in(b: &Browser, base: &str, key: &str) {
    b.goto(&format!("{base}/ui"));
    assert!(b.url().ends_with("/ui/login"), "not signed in: to the login page, got {}", b.url());
    b.type_into(&b.find("#key"), key);
    b.click(&b.find("#sign-in"));
    b.find("#role");
    assert!(b.url().ends_with("/ui"), "signed in: to the overview, got {}", b.url());
}

fn sign_out(b: &Browser) {
    b.click(&b.find("form[action='/ui/logout'] button"));
    b.find("#sign-in");
    assert!(b.url().ends_with("/ui/login"), "{}", b.url());
}

fn number(text: &str) -> f64 {
    text.trim().parse().unwrap_or_else(|_| panic!("{text:?} is not a number"))
}

#[test]
fn dashboard_in_a_real_browser() {
    let Some(b) = Browser::start() else { return };
    let s = Scratch::new();
    let out = s.run(&["quickstart"]);
    assert!(out.status.success(), "quickstart: {}", String::from_utf8_lossy(&out.stderr));
    let other = serde_json::json!({"type": "prediction", "id": "other-1", "workspace": "other", "plugin": "drift",
        "subject": "other-model", "kind": "regression", "value": 2.5, "features": {"x1": 0.3}, "event_time": "2026-01-20T00:00:00Z"});
    let file = s.write("other.jsonl", &format!("{other}\n"));
    let out = s.run(&["ingest", file.to_str().unwrap()]);
    assert!(out.status.success(), "ingest: {}", String::from_utf8_lossy(&out.stderr));
    let (_, reader) = s.json(&["keys", "create", "--role", "reader", "--workspace", "default", "--name", "ui-reader"]);
    let reader = reader["key"].as_str().expect("reader key").to_string();
    let (_, admin) = s.json(&["keys", "create", "--role", "admin", "--name", "ui-admin"]);
    let admin = admin["key"].as_str().expect("admin key").to_string();
    let data = s.data_dir();
    let (_api, addr) = start_api(&s, &["--data-dir", data.to_str().unwrap(), "--bind", "127.0.0.1:0"]);
    let base = format!("http://{addr}");
    let shots = artifacts_dir();

    // A wrong key is refused on the login page.
    b.goto(&format!("{base}/ui/login"));
    b.type_into(&b.find("#key"), "ll_not-a-key");
    b.click(&b.find("#sign-in"));
    assert!(b.text_of("#error").contains("unknown or revoked"), "{}", b.source());

    // Admin: every page, with its key numbers equal to the JSON routes'.
    sign_in(&b, &base, &admin);
    let session = b.cookie("learnloop_session").expect("session cookie");
    assert_eq!(session["httpOnly"], true, "{session}");
    assert_eq!(session["sameSite"], "Strict", "{session}");
    assert!(!session["value"].as_str().unwrap().contains(&admin), "the cookie holds a session id, never the key");
    let open = get(&addr, &admin, "/api/v1/alerts?workspace=default&since=1970-01-01T00:00:00Z&limit=10000");
    assert_eq!(number(&b.text_of("#open-alerts")) as usize, open["alerts"].as_array().unwrap().len());
    assert!(
        b.all("#ws-switch option").iter().any(|o| b.attr(o, "value").as_deref() == Some("other")),
        "admin switcher lists every workspace"
    );
    b.screenshot(&shots.join("overview.png"));
    // Large screens and narrow laptops get the same page, laid out for them.
    for (w, h, name) in [(1920, 1080, "overview-1920.png"), (1024, 768, "overview-1024.png")] {
        b.resize(w, h);
        b.find("#open-alerts");
        b.screenshot(&shots.join(name));
    }
    b.resize(1400, 1000);

    let imps = get(&addr, &admin, "/api/v1/improvements?workspace=default");
    let imps = imps["improvements"].as_array().unwrap().clone();
    b.goto(&format!("{base}/ui/improvements"));
    assert_eq!(b.all("tr[id^='improvement-']").len(), imps.len());
    b.screenshot(&shots.join("improvements.png"));

    let alerts = get(&addr, &admin, "/api/v1/alerts?workspace=default");
    b.goto(&format!("{base}/ui/alerts"));
    assert_eq!(number(&b.text_of("#alert-count")) as usize, alerts["alerts"].as_array().unwrap().len());
    b.screenshot(&shots.join("alerts.png"));

    let jobs = get(&addr, &admin, "/api/v1/jobs");
    b.goto(&format!("{base}/ui/jobs"));
    assert_eq!(b.all("#jobs tbody tr").len(), jobs["jobs"].as_array().unwrap().len());
    b.screenshot(&shots.join("jobs.png"));

    let summary = get(&addr, &admin, "/api/v1/drift/summary?workspace=default");
    b.goto(&format!("{base}/ui/drift?model=price-model"));
    assert_eq!(b.all("#models tbody tr").len(), summary["models"].as_object().unwrap().len());
    assert!(b.all("#feature-drift tbody tr").len() >= 2, "price-model's features are tested");
    b.screenshot(&shots.join("drift.png"));

    let agents = get(&addr, &admin, "/api/v1/trust/agents?workspace=default");
    b.goto(&format!("{base}/ui/trust"));
    let first = &agents["agents"][0];
    let row = b.find("#agents tbody tr");
    assert_eq!(b.attr(&row, "data-agent").as_deref(), first["agent_id"].as_str());
    let shown = number(&b.text_of("#agents tbody tr td.trust"));
    assert!((shown - first["overall_trust_score"].as_f64().unwrap()).abs() < 1e-4, "trust {shown} vs {first}");
    b.screenshot(&shots.join("trust.png"));

    let acc = get(&addr, &admin, "/api/v1/cost/accuracy?workspace=default");
    b.goto(&format!("{base}/ui/cost"));
    assert_eq!(number(&b.text_of("#cost-recommendations")), acc["recommendations"].as_f64().unwrap());
    assert!(number(&b.text_of("#scatter-count")) > 0.0);
    b.click(&b.find("#assess button"));
    assert!(b.text_of("#assessment").contains("Calibrated savings"), "{}", b.source());
    b.screenshot(&shots.join("cost.png"));

    let stats = get(&addr, &admin, "/api/v1/persona/stats?workspace=default");
    b.goto(&format!("{base}/ui/persona"));
    assert_eq!(number(&b.text_of("#persona-users")), stats["users"].as_f64().unwrap());
    b.screenshot(&shots.join("persona.png"));

    // Approve an improvement through its button: the store changes.
    let backtested =
        imps.iter().find(|i| i["status"] == "backtested").expect("the quickstart leaves a backtested improvement");
    let id = backtested["id"].as_i64().unwrap();
    b.goto(&format!("{base}/ui/improvements"));
    b.click(&b.find(&format!("#improvement-{id} form[action*='/approve'] button")));
    assert!(b.text_of("#flash").contains("approved"), "{}", b.source());
    let after = get(&addr, &admin, &format!("/api/v1/improvements/{id}?workspace=default"));
    assert_eq!(after["status"], "applied", "{after}");

    // Acknowledge an alert through its button.
    let alert_id = alerts["alerts"][0]["id"].as_i64().expect("the quickstart raises drift alerts");
    b.goto(&format!("{base}/ui/alerts"));
    b.click(&b.find(&format!("#alert-{alert_id} button")));
    assert!(b.text_of("#flash").contains("acknowledged"), "{}", b.source());
    let all =
        get(&addr, &admin, "/api/v1/alerts?workspace=default&include_acknowledged=true&since=1970-01-01T00:00:00Z");
    let acked = all["alerts"].as_array().unwrap().iter().find(|a| a["id"] == alert_id).unwrap();
    assert!(!acked["acknowledged_at"].is_null(), "{acked}");

    // Sign out ends the session server-side: the old cookie no longer works.
    let old = b.cookie("learnloop_session").unwrap()["value"].as_str().unwrap().to_string();
    sign_out(&b);
    let (status, answer) = post_form(&addr, "/ui/alerts/1/ack?workspace=default", &old, "csrf=x");
    assert_eq!(status, 303, "{answer}");
    assert!(answer.contains("location: /ui/login"), "{answer}");

    // Reader: sees its workspace, buttons disabled, a forged POST is 403.
    sign_in(&b, &base, &reader);
    assert_eq!(b.text_of("#role"), "reader key");
    assert!(b.all("#ws-switch").is_empty(), "no workspace switcher for a one-workspace key");
    let second =
        alerts["alerts"].as_array().unwrap().iter().find(|a| a["id"] != alert_id).expect("a second open alert")["id"]
            .as_i64()
            .unwrap();
    b.goto(&format!("{base}/ui/alerts"));
    let button = b.find(&format!("#alert-{second} button"));
    assert!(!b.enabled(&button), "a reader's acknowledge button is disabled");
    let csrf = b.attr(&b.find(&format!("#alert-{second} input[name=csrf]")), "value").unwrap();
    let cookie = b.cookie("learnloop_session").unwrap()["value"].as_str().unwrap().to_string();
    let (status, answer) =
        post_form(&addr, &format!("/ui/alerts/{second}/ack?workspace=default"), &cookie, &format!("csrf={csrf}"));
    assert_eq!(status, 403, "{answer}");
    assert!(answer.contains("writer"), "the route's own refusal: {answer}");
    let (status, answer) =
        post_form(&addr, &format!("/ui/alerts/{second}/ack?workspace=default"), &cookie, "csrf=forged");
    assert_eq!(status, 403, "a wrong CSRF token: {answer}");
    let all =
        get(&addr, &admin, "/api/v1/alerts?workspace=default&include_acknowledged=true&since=1970-01-01T00:00:00Z");
    let still = all["alerts"].as_array().unwrap().iter().find(|a| a["id"] == second).unwrap();
    assert!(still["acknowledged_at"].is_null(), "nothing changed: {still}");
    b.goto(&format!("{base}/ui/improvements"));
    for e in b.all("td.actions button") {
        assert!(!b.enabled(&e), "a reader's improvement buttons are disabled");
    }
    b.goto(&format!("{base}/ui/jobs"));
    assert!(b.text_of("#jobs-admin-only").contains("admin"));

    // Workspace A's key never sees workspace B.
    b.goto(&format!("{base}/ui/drift?workspace=other"));
    assert!(b.text_of("#error").contains("belongs to workspace"), "{}", b.source());
    assert!(!b.source().contains("other-model"));

    // The XSS probe (a model and a feature named `<script>alert(1)</script>`) is text.
    let probe_model = serde_json::json!({"type": "prediction", "id": "xss-1", "workspace": "default", "plugin": "drift",
        "subject": PROBE, "kind": "regression", "value": 1.5, "features": {PROBE: 0.3}, "event_time": "2026-01-20T00:00:00Z"});
    let (status, answer) = http(&addr, "POST", "/api/v1/predictions", Some(&admin), &probe_model.to_string());
    assert_eq!(status, 201, "{answer}");
    b.goto(&format!("{base}/ui/drift"));
    assert!(b.all("#models td a").iter().any(|a| b.text(a) == PROBE), "the probe model is listed as text");
    assert!(!b.dialog_open(), "no script ran");
    assert!(!b.source().contains(PROBE), "never unescaped in the markup");
    b.screenshot(&shots.join("xss-probe.png"));
    learnloop_e2e::report!("dashboard screenshots in {}", shots.display());
}
