//! The deliverer against real HTTP receivers on loopback: bodies and
//! signatures as a receiver checks them, Slack and PagerDuty shapes,
//! retries, `Retry-After`, the dead-letter state, a slow destination that
//! must not delay the others, and two deliverers sharing one store.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use learnloop_config::Config;
use learnloop_core::{DeliveryStatus, NewAlert, NewNotification, PluginName, Severity, Timestamp, WorkspaceId};
use learnloop_notify::{Deliverer, Destinations, Settings};
use learnloop_store::{Changes, DeliveryQuery, SqliteOptions, Store};
use learnloop_test_support::receiver::{Receiver, Reply};
use learnloop_test_support::store::test_store;
use serde_json::json;
use sha2::Sha256;

const SECRET: &str = "s3cret-for-tests";

fn config(destinations: &str, extra: &str) -> Config {
    let text = format!(
        "[notify]\nretry_base_ms = 200\nretry_max_ms = 5000\ntimeout_ms = 2000\npoll_ms = 50\n{extra}\n{destinations}"
    );
    Config::from_toml("test", &text).unwrap_or_else(|e| panic!("{e}"))
}

fn env(k: &str) -> Option<String> {
    match k {
        "HOOK_SECRET" => Some(SECRET.into()),
        "PD_KEY" => Some("pd-routing-key".into()),
        _ => None,
    }
}

fn webhook(name: &str, url: &str, filters: &str) -> String {
    format!(
        "[[notify.destinations]]\nname = \"{name}\"\nkind = \"webhook\"\nurl = \"{url}\"\nsecret_env = \"HOOK_SECRET\"\n{filters}\n"
    )
}

fn deliverer(store: &Arc<dyn Store>, c: &Config, holder: &str) -> Deliverer {
    let dests = Destinations::from_config_with_env(c, env).unwrap();
    Deliverer::new(store.clone(), dests, Settings::from_config(&c.notify), holder)
}

fn ws(s: &str) -> WorkspaceId {
    WorkspaceId::parse("", s).unwrap()
}

fn raise(store: &Arc<dyn Store>, w: &str, plugin: &str, key: &str, severity: Severity) {
    let alert = NewAlert {
        workspace: ws(w),
        plugin: PluginName::parse("", plugin).unwrap(),
        severity,
        kind: "feature_drift".into(),
        subject: "churn-model".into(),
        message: format!("feature tenure drifted ({key})"),
        dedup_key: key.into(),
        data: json!({"p_value": 0.0001, "statistic": 0.31, "feature": "tenure"}),
    };
    store.commit(&Changes { alerts: vec![alert], ..Default::default() }, Timestamp::now()).unwrap();
}

fn retrain(store: &Arc<dyn Store>, model: &str) {
    let n = NewNotification {
        workspace: Some(ws("default")),
        plugin: PluginName::parse("", "drift").unwrap(),
        event: "retrain.requested".into(),
        severity: Severity::High,
        subject: model.into(),
        summary: format!("retrain {model}"),
        dedup_key: format!("retrain/{model}"),
        link: "/api/v1/drift/retrain/requests".into(),
        data: json!({"mae": 1.5}),
    };
    store.commit(&Changes { notifications: vec![n], ..Default::default() }, Timestamp::now()).unwrap();
}

/// What a receiver does: recompute the HMAC over "<t>.<body>" and compare.
fn verify(signature: &str, body: &[u8]) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in signature.split(',') {
        match part.split_once('=') {
            Some(("t", x)) => t = Some(x.to_string()),
            Some(("v1", x)) => v1 = Some(x.to_string()),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else { return false };
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(body);
    let expected: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    let age = Timestamp::now().as_micros() / 1_000_000 - t.parse::<i64>().unwrap();
    expected == v1 && (0..300).contains(&age)
}

#[test]
fn webhook_bodies_are_signed_and_filtered() {
    let dir = tempfile::tempdir().unwrap();
    let store = test_store(dir.path(), &SqliteOptions::default());
    let rx = Receiver::ok();
    let c = config(
        &webhook(
            "oncall",
            &rx.url(),
            "events = [\"alert.*\"]\nmin_severity = \"medium\"\nplugins = [\"drift\"]\nworkspaces = [\"default\"]",
        ),
        "public_url = \"https://learnloop.example.com/\"",
    );
    raise(&store, "default", "drift", "k1", Severity::High); // sent
    raise(&store, "default", "drift", "k1", Severity::High); // a repeat: no new event
    raise(&store, "default", "drift", "k2", Severity::Low); // below min_severity
    raise(&store, "default", "trust", "k3", Severity::High); // other plugin
    raise(&store, "team-b", "drift", "k4", Severity::High); // other workspace
    retrain(&store, "m"); // not an alert.* event
    let report = deliverer(&store, &c, "test").run_once().unwrap().expect("the lease is free");
    assert_eq!((report.routed, report.delivered, report.failed), (5, 1, 0), "the repeat of k1 is no new event");
    let got = rx.requests();
    assert_eq!(got.len(), 1, "one delivery: {got:?}");
    let r = &got[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(verify(r.header("learnloop-signature").unwrap(), &r.body), "the signature verifies");
    let mut tampered = r.body.clone();
    tampered[10] ^= 1;
    assert!(!verify(r.header("learnloop-signature").unwrap(), &tampered), "a changed body fails verification");
    let body = r.json();
    assert_eq!(r.header("idempotency-key"), body["id"].as_str());
    assert_eq!(r.header("learnloop-event"), Some("alert.raised"));
    assert_eq!(body["type"], "alert.raised");
    assert_eq!(body["workspace"], "default");
    assert_eq!(body["plugin"], "drift");
    assert_eq!(body["severity"], "high");
    assert_eq!(body["subject"], "churn-model");
    assert_eq!(body["dedup_key"], "k1");
    assert_eq!(body["data"]["data"]["feature"], "tenure");
    assert!(
        body["link"].as_str().unwrap().starts_with("https://learnloop.example.com/api/v1/alerts?workspace=default")
    );
    assert!(body["occurred_at"].as_str().unwrap().ends_with('Z'));
    let keys: Vec<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "data",
            "dedup_key",
            "id",
            "link",
            "occurred_at",
            "plugin",
            "severity",
            "subject",
            "summary",
            "type",
            "workspace"
        ]
    );
    let d = store.deliveries(&DeliveryQuery::default()).unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!((d[0].status, d[0].attempts), (DeliveryStatus::Delivered, 1));
    // A second pass has nothing to do.
    let report = deliverer(&store, &c, "test").run_once().unwrap().unwrap();
    assert_eq!((report.routed, report.delivered), (0, 0));
    assert_eq!(rx.requests().len(), 1);
}

#[test]
fn failures_retry_with_backoff_and_retry_after_then_give_up() {
    let dir = tempfile::tempdir().unwrap();
    let store = test_store(dir.path(), &SqliteOptions::default());
    let flaky = Receiver::start(|n| Reply::status(if n < 2 { 500 } else { 200 }));
    let limited = Receiver::start(|n| {
        if n == 0 {
            Reply { status: 429, headers: vec![("Retry-After".into(), "2".into())], delay: Duration::ZERO }
        } else {
            Reply::status(200)
        }
    });
    let broken = Receiver::start(|_| Reply::status(503));
    let c = config(
        &[
            webhook("flaky", &flaky.url(), ""),
            webhook("limited", &limited.url(), ""),
            webhook("broken", &broken.url(), ""),
        ]
        .concat(),
        "max_attempts = 3",
    );
    retrain(&store, "m1");
    let d = deliverer(&store, &c, "test");
    let start = Instant::now();
    let mut first_ok = None;
    while start.elapsed() < Duration::from_secs(15) {
        d.run_once().unwrap().unwrap();
        let all = store.deliveries(&DeliveryQuery::default()).unwrap();
        let by = |name: &str| all.iter().find(|x| x.destination == name).unwrap().clone();
        if first_ok.is_none() && by("limited").status == DeliveryStatus::Delivered {
            first_ok = Some(start.elapsed());
        }
        if all.iter().all(|x| x.status != DeliveryStatus::Pending) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let all = store.deliveries(&DeliveryQuery::default()).unwrap();
    let by = |name: &str| all.iter().find(|x| x.destination == name).unwrap().clone();
    let f = by("flaky");
    assert_eq!((f.status, f.attempts), (DeliveryStatus::Delivered, 3), "500, 500, then 200");
    assert!(f.last_error.as_deref().unwrap().starts_with("HTTP 500"), "{:?}", f.last_error);
    let reqs = flaky.requests();
    assert_eq!(reqs.len(), 3);
    let gap1 = reqs[1].at - reqs[0].at;
    let gap2 = reqs[2].at - reqs[1].at;
    // Base 200 ms: the first retry waits 100-200 ms, the second 200-400 ms (plus polling).
    assert!(gap1 >= Duration::from_millis(100), "first backoff {gap1:?}");
    assert!(gap2 >= Duration::from_millis(200), "second backoff {gap2:?}");
    let ids: Vec<_> = reqs.iter().map(|r| r.header("idempotency-key").unwrap().to_string()).collect();
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "every retry carries the same idempotency key");

    let l = limited.requests();
    assert_eq!(l.len(), 2);
    let waited = l[1].at - l[0].at;
    assert!(waited >= Duration::from_secs(2), "Retry-After: 2 was honoured, waited {waited:?}");
    assert!(first_ok.unwrap() >= Duration::from_secs(2));

    let b = by("broken");
    assert_eq!((b.status, b.attempts), (DeliveryStatus::Dead, 3), "given up after max_attempts");
    assert!(b.last_error.as_deref().unwrap().contains("given up"), "{:?}", b.last_error);
    assert_eq!(broken.requests().len(), 3);
    // A dead delivery can be sent again by hand, with its attempts reset.
    let revived = store.retry_delivery(b.id, Timestamp::now()).unwrap();
    assert_eq!((revived.status, revived.attempts), (DeliveryStatus::Pending, 0));
    d.run_once().unwrap().unwrap();
    assert_eq!(broken.requests().len(), 4);
}

#[test]
fn slack_and_pagerduty_formats() {
    let dir = tempfile::tempdir().unwrap();
    let store = test_store(dir.path(), &SqliteOptions::default());
    let slack = Receiver::ok();
    let pd = Receiver::start(|_| Reply::status(202));
    let c = config(
        &format!(
            "[[notify.destinations]]\nname = \"chat\"\nkind = \"slack\"\nurl = \"{}\"\n\
             [[notify.destinations]]\nname = \"pager\"\nkind = \"pagerduty\"\nurl = \"{}\"\nrouting_key_env = \"PD_KEY\"\nevents = [\"alert.*\"]\n",
            slack.url(),
            pd.url()
        ),
        "",
    );
    raise(&store, "default", "drift", "drift/churn-model/tenure", Severity::Critical);
    let alert = store.alerts(&Default::default()).unwrap()[0].clone();
    store.acknowledge_alert(&ws("default"), alert.id, Timestamp::now()).unwrap();
    let report = deliverer(&store, &c, "test").run_once().unwrap().unwrap();
    assert_eq!(report.delivered, 4, "two events to two destinations");

    let s = slack.requests();
    assert_eq!(s.len(), 2);
    let m = s[0].json();
    let text = m["text"].as_str().unwrap();
    assert!(text.contains("[CRITICAL] alert.raised churn-model"), "{text}");
    let blocks = m["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    let all = serde_json::to_string(&m).unwrap();
    assert!(all.contains("*p_value*") || all.contains("*data.p_value*"), "the numbers that matter: {all}");
    assert!(all.contains("*Next:*"), "what to do next: {all}");

    let p = pd.requests();
    assert_eq!(p.len(), 2);
    let (trigger, resolve) = (p[0].json(), p[1].json());
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(trigger["routing_key"], "pd-routing-key");
    assert_eq!(trigger["payload"]["severity"], "critical");
    assert_eq!(trigger["payload"]["source"], "learnloop/default/drift");
    assert!(trigger["payload"]["summary"].as_str().unwrap().starts_with("churn-model: feature tenure drifted"));
    assert!(trigger["payload"]["timestamp"].as_str().is_some());
    assert_eq!(resolve["event_action"], "resolve");
    assert_eq!(resolve["dedup_key"], trigger["dedup_key"], "resolve closes the incident the trigger opened");
    assert!(resolve.get("payload").is_none());
}

#[test]
fn a_slow_destination_does_not_delay_the_others_and_two_deliverers_share_the_work() {
    let dir = tempfile::tempdir().unwrap();
    let store = test_store(dir.path(), &SqliteOptions::default());
    let fast = Receiver::ok();
    let slow = Receiver::start(|_| Reply { status: 200, headers: vec![], delay: Duration::from_secs(30) });
    let c = config(&[webhook("fast", &fast.url(), ""), webhook("slow", &slow.url(), "")].concat(), "");
    let stop = Arc::new(AtomicBool::new(false));
    // Two deliverers, as two schedulers would run them: one holds the lease.
    let a = deliverer(&store, &c, "scheduler-a");
    let b = deliverer(&store, &c, "scheduler-b");
    let (ca, cb) = (a.counters(), b.counters());
    let ha = a.spawn(stop.clone());
    let hb = b.spawn(stop.clone());
    let n = 40;
    let start = Instant::now();
    for i in 0..n {
        retrain(&store, &format!("m{i}"));
    }
    let got = fast.wait_for(n, Duration::from_secs(20));
    let took = start.elapsed();
    assert_eq!(got.len(), n, "every notification reached the fast destination");
    assert!(took < Duration::from_secs(10), "the fast destination waited {took:?} behind the slow one");
    assert!(slow.requests().len() <= 3, "the slow destination is still on its first attempts");
    let ids: std::collections::BTreeSet<String> =
        got.iter().map(|r| r.header("idempotency-key").unwrap().to_string()).collect();
    assert_eq!(ids.len(), n, "each delivered once");
    let leaders = [ca.leader.load(Ordering::Relaxed), cb.leader.load(Ordering::Relaxed)];
    assert_eq!(leaders.iter().filter(|x| **x).count(), 1, "one deliverer holds the lease: {leaders:?}");
    stop.store(true, Ordering::Relaxed);
    ha.join().unwrap();
    hb.join().unwrap();
    let sent: u64 =
        [ca.snapshot(), cb.snapshot()].iter().flatten().filter(|(d, _)| d == "fast").map(|(_, c)| c.delivered).sum();
    assert_eq!(sent, n as u64);
    eprintln!("40 notifications to the fast destination in {took:?} while the slow one hung");
}

#[test]
fn bad_destinations_are_refused_naming_them() {
    let err = |text: &str| Config::from_toml("test", text).unwrap_err().to_string();
    let e = err("[[notify.destinations]]\nname = \"x\"\nkind = \"teams\"\nurl = \"http://a\"");
    assert!(e.contains("kind"), "{e}");
    let e = err("[[notify.destinations]]\nname = \"ml-oncall\"\nkind = \"webhook\"\nsecret_env = \"S\"");
    assert!(e.contains("ml-oncall") && e.contains("url"), "{e}");
    let e = err("[[notify.destinations]]\nname = \"ml-oncall\"\nkind = \"webhook\"\nurl = \"http://a\"");
    assert!(e.contains("ml-oncall") && e.contains("secret_env"), "{e}");
    let e = err(
        "[[notify.destinations]]\nname = \"p\"\nkind = \"webhook\"\nurl = \"http://a\"\nsecret_env = \"S\"\nevents = [\"alert.rised\"]",
    );
    assert!(e.contains("alert.rised") && e.contains("matches no event type"), "{e}");
    let e = err("[[notify.destinations]]\nname = \"p\"\nkind = \"webhook\"\nurl = \"ftp://a\"\nsecret_env = \"S\"");
    assert!(e.contains("http://"), "{e}");
    let c = config(&webhook("ml-oncall", "http://127.0.0.1:9/hook", "").replace("HOOK_SECRET", "NOT_SET_ANYWHERE"), "");
    let e = Destinations::from_config_with_env(&c, env).unwrap_err();
    assert!(e.contains("ml-oncall") && e.contains("NOT_SET_ANYWHERE") && e.contains("not set"), "{e}");
}
