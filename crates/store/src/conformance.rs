//! The behaviour every [`Store`] backend must show, as reusable checks.
//!
//! Backend test suites call [`run_all`] with a function that makes a fresh,
//! empty store; a new backend is done when it passes every check here. The
//! checks panic with a message naming the check, like any test assertion.

use learnloop_core::{
    JobStatus, PluginName, Record, RecordDefaults, Timestamp, WorkspaceId, parse_json_record,
};

use crate::*;

/// Makes a fresh, empty store.
pub type Factory<'a> = &'a dyn Fn() -> Box<dyn Store>;

/// Runs every check, each on a fresh store.
pub fn run_all(make: Factory<'_>) {
    for (name, check) in CHECKS {
        eprintln!("store conformance: {name}");
        check(&*make());
    }
}

/// Every check, by name.
pub const CHECKS: &[(&str, fn(&dyn Store))] = &[
    ("idempotent_append", idempotent_append),
    ("batches_are_atomic", batches_are_atomic),
    ("outcomes_need_their_prediction", outcomes_need_their_prediction),
    ("queries_filter_and_page", queries_filter_and_page),
    ("streams_walk_everything", streams_walk_everything),
    ("counts_and_pending", counts_and_pending),
    ("state_compare_and_set", state_compare_and_set),
    ("state_scans_are_scoped", state_scans_are_scoped),
    ("job_runs_once_per_slot", job_runs_once_per_slot),
    ("leases_have_one_holder", leases_have_one_holder),
];

/// Parses a JSON record for tests.
pub fn rec(json: &str) -> Record {
    parse_json_record(json, &RecordDefaults::default()).unwrap_or_else(|e| panic!("bad test record {json}: {e}"))
}

fn pred(ws: &str, id: &str, plugin: &str, kind: &str, subject: &str, t: i64) -> Record {
    rec(&format!(
        r#"{{"type":"prediction","id":"{id}","workspace":"{ws}","plugin":"{plugin}","kind":"{kind}","subject":"{subject}","value":{t},"event_time":"{}"}}"#,
        Timestamp::from_micros(t * 1_000_000).unwrap()
    ))
}

fn outc(ws: &str, id: &str, plugin: &str, pid: &str, t: i64) -> Record {
    rec(&format!(
        r#"{{"type":"outcome","id":"{id}","workspace":"{ws}","plugin":"{plugin}","prediction_id":"{pid}","value":1,"success":true,"event_time":"{}"}}"#,
        Timestamp::from_micros(t * 1_000_000).unwrap()
    ))
}

fn t(secs: i64) -> Timestamp {
    Timestamp::from_micros(secs * 1_000_000).unwrap()
}

fn ws(s: &str) -> WorkspaceId {
    WorkspaceId::parse("", s).unwrap()
}

fn plugin(s: &str) -> PluginName {
    PluginName::parse("", s).unwrap()
}

fn statuses(r: &AppendReceipt) -> Vec<String> {
    r.items
        .iter()
        .map(|s| match s {
            ItemStatus::Inserted => "inserted".to_string(),
            ItemStatus::Duplicate => "duplicate".to_string(),
            ItemStatus::Rejected(r) => format!("rejected: {r}"),
        })
        .collect()
}

fn idempotent_append(s: &dyn Store) {
    let p = pred("w", "p1", "drift", "k", "m", 10);
    let r = s.append(&[p.clone()], AppendMode::AllOrNothing, t(100)).unwrap();
    assert_eq!(statuses(&r), ["inserted"]);
    let r = s.append(&[p.clone(), p.clone()], AppendMode::AllOrNothing, t(101)).unwrap();
    assert_eq!(statuses(&r), ["duplicate", "duplicate"], "a retry is a duplicate");

    // Same id, other content: conflict. Same id, other event time: conflict.
    let changed = pred("w", "p1", "drift", "k", "m", 11);
    let r = s.append(&[changed], AppendMode::SkipRejected, t(102)).unwrap();
    assert!(statuses(&r)[0].contains("different content"), "{:?}", statuses(&r));
    let mut moved = p.clone();
    if let Record::Prediction(x) = &mut moved {
        x.event_time = Some(t(99));
    }
    let r = s.append(&[moved], AppendMode::SkipRejected, t(102)).unwrap();
    assert!(statuses(&r)[0].contains("different event_time"), "{:?}", statuses(&r));

    // Without an event time, a retry matches whatever time was stored.
    let mut untimed = p.clone();
    if let Record::Prediction(x) = &mut untimed {
        x.event_time = None;
    }
    let r = s.append(&[untimed.clone()], AppendMode::AllOrNothing, t(103)).unwrap();
    assert_eq!(statuses(&r), ["duplicate"]);
    // A new record without an event time gets the ingestion time.
    let mut fresh = untimed;
    if let Record::Prediction(x) = &mut fresh {
        x.id = learnloop_core::RecordId::parse("", "p2").unwrap();
    }
    s.append(&[fresh], AppendMode::AllOrNothing, t(104)).unwrap();
    let page = s.predictions(&EventQuery { order: Order::Ingestion, ..Default::default() }).unwrap();
    assert_eq!(page.items.len(), 2, "duplicates and conflicts stored nothing");
    assert_eq!(page.items[0].record.event_time, Some(t(10)));
    assert_eq!(page.items[0].ingested_at, t(100));
    assert_eq!(page.items[1].record.event_time, Some(t(104)));
    // Ids are per workspace.
    let r = s.append(&[pred("other", "p1", "drift", "k", "m", 10)], AppendMode::AllOrNothing, t(105)).unwrap();
    assert_eq!(statuses(&r), ["inserted"]);
    // What was stored reads back equal to what was sent.
    let back = s.predictions(&EventQuery { workspace: Some(ws("w")), limit: 1, ..Default::default() }).unwrap();
    assert_eq!(Record::Prediction(back.items[0].record.clone()), p);
}

fn batches_are_atomic(s: &dyn Store) {
    s.append(&[pred("w", "a", "cost", "k", "s", 1)], AppendMode::AllOrNothing, t(10)).unwrap();
    let batch = [
        pred("w", "b", "cost", "k", "s", 2),
        pred("w", "a", "cost", "k", "s", 999), // conflict
        pred("w", "c", "cost", "k", "s", 3),
    ];
    match s.append(&batch, AppendMode::AllOrNothing, t(11)) {
        Err(StoreError::Rejected { index: 1, reason: Rejection::Conflict { .. }, .. }) => {}
        other => panic!("expected a rejection of item 1, got {other:?}"),
    }
    let n = s.predictions(&EventQuery::default()).unwrap().items.len();
    assert_eq!(n, 1, "an aborted batch stores nothing");
    let r = s.append(&batch, AppendMode::SkipRejected, t(12)).unwrap();
    assert_eq!((r.inserted, r.duplicates, r.rejected), (2, 0, 1));
    assert_eq!(s.predictions(&EventQuery::default()).unwrap().items.len(), 3);
}

fn outcomes_need_their_prediction(s: &dyn Store) {
    let r = s
        .append(
            &[
                pred("w", "p", "trust", "k", "agent-1", 1),
                outc("w", "o1", "trust", "p", 2), // prediction earlier in the same batch
                outc("w", "o2", "trust", "nope", 2),
                outc("w", "o3", "cost", "p", 2),
                outc("x", "o4", "trust", "p", 2), // prediction is in another workspace
                outc("w", "o5", "trust", "p", 3), // a second outcome is fine
            ],
            AppendMode::SkipRejected,
            t(10),
        )
        .unwrap();
    let st = statuses(&r);
    assert_eq!(st[0], "inserted");
    assert_eq!(st[1], "inserted");
    assert!(st[2].contains("no prediction \"nope\""), "{st:?}");
    assert!(st[3].contains("belongs to plugin \"trust\""), "{st:?}");
    assert!(st[4].contains("no prediction"), "{st:?}");
    assert_eq!(st[5], "inserted");
    let o = s
        .outcomes(&EventQuery { subject: Some("agent-1".into()), kind: Some("k".into()), ..Default::default() })
        .unwrap();
    assert_eq!(o.items.len(), 2, "outcomes filter by their prediction's subject and kind");
    assert_eq!(o.items[0].subject, "agent-1");
    let again = s.append(&[outc("w", "o1", "trust", "p", 2)], AppendMode::AllOrNothing, t(11)).unwrap();
    assert_eq!(statuses(&again), ["duplicate"]);
    let by_pred = s
        .outcomes(&EventQuery {
            workspace: Some(ws("w")),
            prediction_id: Some(learnloop_core::RecordId::parse("", "p").unwrap()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(by_pred.items.len(), 2);
    let no_ws = EventQuery { prediction_id: Some(learnloop_core::RecordId::parse("", "p").unwrap()), ..Default::default() };
    assert!(matches!(s.outcomes(&no_ws), Err(StoreError::Invalid { .. })));
}

fn queries_filter_and_page(s: &dyn Store) {
    // Event times deliberately out of ingestion order.
    let mut batch = Vec::new();
    for i in 0..30i64 {
        let plugin = if i % 3 == 0 { "cost" } else { "drift" };
        let kind = if i % 2 == 0 { "even" } else { "odd" };
        batch.push(pred("w", &format!("p{i}"), plugin, kind, &format!("s{}", i % 5), 100 - i));
    }
    s.append(&batch, AppendMode::AllOrNothing, t(1000)).unwrap();
    let all = |q: EventQuery| -> Vec<String> {
        let mut out = Vec::new();
        let mut q = q;
        loop {
            let page = s.predictions(&q).unwrap();
            assert!(page.items.len() <= q.limit);
            out.extend(page.items.iter().map(|p| p.record.id.to_string()));
            match page.next {
                Some(c) => q.after = Some(c),
                None => break,
            }
        }
        out
    };
    let q = |f: &dyn Fn(&mut EventQuery)| {
        let mut q = EventQuery { limit: 4, ..Default::default() };
        f(&mut q);
        q
    };
    let ids = all(q(&|_| {}));
    assert_eq!(ids.len(), 30);
    assert_eq!(ids[0], "p0", "ingestion order");
    let by_time = all(q(&|q| q.order = Order::EventTime));
    assert_eq!(by_time[0], "p29", "event-time order");
    assert_eq!(by_time.len(), 30);
    assert_eq!(all(q(&|q| q.plugin = Some(plugin("cost")))).len(), 10);
    assert_eq!(all(q(&|q| q.kind = Some("odd".into()))).len(), 15);
    assert_eq!(all(q(&|q| q.subject = Some("s1".into()))).len(), 6);
    assert_eq!(all(q(&|q| q.workspace = Some(ws("none")))).len(), 0);
    // Times 71..=100 exist; [80, 90) holds 10 of them.
    let window = all(q(&|q| {
        q.from = Some(t(80));
        q.until = Some(t(90));
        q.order = Order::EventTime;
    }));
    assert_eq!(window.len(), 10);
    assert_eq!(window[0], "p20");
    let combined = all(q(&|q| {
        q.plugin = Some(plugin("drift"));
        q.kind = Some("even".into());
        q.from = Some(t(85));
    }));
    // i in 0..=15 with i % 3 != 0 and i even: 2, 4, 8, 10, 14.
    assert_eq!(combined, ["p2", "p4", "p8", "p10", "p14"]);
    let bad: std::result::Result<Cursor, _> = "x".parse();
    assert!(bad.is_err());
    let c = Cursor { time: -5, seq: 7 };
    assert_eq!(c.to_string().parse::<Cursor>().unwrap(), c);
}

fn streams_walk_everything(s: &dyn Store) {
    let n = 2_500;
    let batch: Vec<Record> = (0..n).map(|i| pred("w", &format!("p{i}"), "drift", "k", "m", i)).collect();
    s.append(&batch, AppendMode::AllOrNothing, t(0)).unwrap();
    let outs: Vec<Record> = (0..n).step_by(2).map(|i| outc("w", &format!("o{i}"), "drift", &format!("p{i}"), i)).collect();
    s.append(&outs, AppendMode::AllOrNothing, t(0)).unwrap();
    let seen: Vec<i64> = EventStream::predictions(s, EventQuery { limit: 300, order: Order::EventTime, ..Default::default() })
        .map(|r| r.unwrap().record.value.unwrap() as i64)
        .collect();
    assert_eq!(seen, (0..n).collect::<Vec<_>>());
    let outcomes = EventStream::outcomes(s, EventQuery { limit: 7, ..Default::default() }).count();
    assert_eq!(outcomes as i64, n / 2);
}

fn counts_and_pending(s: &dyn Store) {
    s.append(
        &[
            pred("a", "p1", "cost", "rightsizing", "r1", 1),
            pred("a", "p2", "cost", "rightsizing", "r2", 1),
            pred("a", "p3", "cost", "spot", "r3", 1),
            pred("b", "p1", "drift", "reg", "m", 1),
            outc("a", "o1", "cost", "p1", 2),
            outc("a", "o2", "cost", "p1", 3),
        ],
        AppendMode::AllOrNothing,
        t(5),
    )
    .unwrap();
    let rows = s.counts(None).unwrap();
    let find = |w: &str, k: &str| rows.iter().find(|r| r.workspace == w && r.kind == k).cloned().unwrap();
    let r = find("a", "rightsizing");
    assert_eq!((r.predictions, r.outcomes, r.pending), (2, 2, 1));
    assert_eq!(find("a", "spot").pending, 1);
    assert_eq!(find("b", "reg").predictions, 1);
    let only_b = s.counts(Some(&ws("b"))).unwrap();
    assert_eq!(only_b.len(), 1);
    assert_eq!(only_b[0].pending, 1);
}

fn key(p: &str, w: &str, k: &str) -> StateKey {
    StateKey::new(plugin(p), ws(w), k).unwrap()
}

fn state_compare_and_set(s: &dyn Store) {
    let k = key("trust", "w", "agent/1");
    assert_eq!(s.get_state(&k).unwrap(), None);
    assert_eq!(s.put_state(&k, b"one", Expect::Absent, t(1)).unwrap(), 1);
    assert!(matches!(s.put_state(&k, b"x", Expect::Absent, t(2)), Err(StoreError::VersionConflict { .. })));
    assert_eq!(s.put_state(&k, b"two", Expect::Version(1), t(3)).unwrap(), 2);
    let stale = s.put_state(&k, b"lost update", Expect::Version(1), t(4));
    match stale {
        Err(StoreError::VersionConflict { expected, found, .. }) => {
            assert_eq!(expected, "version 1");
            assert_eq!(found, "version 2");
        }
        other => panic!("stale write must fail, got {other:?}"),
    }
    let doc = s.get_state(&k).unwrap().unwrap();
    assert_eq!((doc.value.as_slice(), doc.version, doc.updated_at), (&b"two"[..], 2, t(3)));
    assert_eq!(s.put_state(&k, b"three", Expect::Any, t(5)).unwrap(), 3);
    assert!(s.delete_state(&k, Expect::Version(2)).is_err());
    s.delete_state(&k, Expect::Version(3)).unwrap();
    assert_eq!(s.get_state(&k).unwrap(), None);
    assert!(StateKey::new(plugin("trust"), ws("w"), "").is_err());
    assert!(StateKey::new(plugin("trust"), ws("w"), "a\nb").is_err());
}

fn state_scans_are_scoped(s: &dyn Store) {
    for k in ["agent/1", "agent/2", "agent/3", "agentx", "rule/1"] {
        s.put_state(&key("trust", "w", k), k.as_bytes(), Expect::Any, t(1)).unwrap();
    }
    s.put_state(&key("trust", "other", "agent/9"), b"x", Expect::Any, t(1)).unwrap();
    s.put_state(&key("cost", "w", "agent/8"), b"x", Expect::Any, t(1)).unwrap();
    let keys = |prefix: &str, after: Option<&str>, limit: usize| -> Vec<String> {
        s.scan_state(&plugin("trust"), &ws("w"), prefix, after, limit).unwrap().into_iter().map(|(k, _)| k).collect()
    };
    assert_eq!(keys("agent/", None, 100), ["agent/1", "agent/2", "agent/3"]);
    assert_eq!(keys("agent/", None, 2), ["agent/1", "agent/2"]);
    assert_eq!(keys("agent/", Some("agent/2"), 100), ["agent/3"]);
    assert_eq!(keys("", None, 100).len(), 5, "no other plugin's or workspace's state");
}

fn job_runs_once_per_slot(s: &dyn Store) {
    let new = |slot: Option<i64>, attempt: u32, runner: &str| NewJobRun {
        plugin: plugin("drift"),
        job: "daily".into(),
        slot,
        attempt,
        runner: runner.into(),
        now: t(100),
    };
    let run = s.start_job_run(&new(Some(86_400), 1, "a")).unwrap();
    assert_eq!(run.status, JobStatus::Running);
    match s.start_job_run(&new(Some(86_400), 1, "b")) {
        Err(StoreError::SlotTaken { slot: 86_400, attempt: 1, .. }) => {}
        other => panic!("a slot runs once, got {other:?}"),
    }
    let retry = s.start_job_run(&new(Some(86_400), 2, "a")).unwrap();
    let manual1 = s.start_job_run(&new(None, 1, "cli")).unwrap();
    let manual2 = s.start_job_run(&new(None, 1, "cli")).unwrap();
    assert_ne!(manual1.id, manual2.id, "runs by hand have no slot and never collide");
    let report = serde_json::json!({"checked": 3});
    let done = s.finish_job_run(run.id, JobStatus::Failed, None, Some("boom"), t(101)).unwrap();
    assert_eq!((done.status, done.error.as_deref(), done.finished_at), (JobStatus::Failed, Some("boom"), Some(t(101))));
    let ok = s.finish_job_run(retry.id, JobStatus::Succeeded, Some(&report), None, t(102)).unwrap();
    assert_eq!(ok.report, Some(report));
    assert!(s.finish_job_run(retry.id, JobStatus::Failed, None, None, t(103)).is_err(), "finishing twice is an error");
    assert!(matches!(s.finish_job_run(9_999, JobStatus::Failed, None, None, t(103)), Err(StoreError::NotFound(_))));
    let history = s.job_runs(&JobRunQuery { plugin: Some(plugin("drift")), ..Default::default() }).unwrap();
    assert_eq!(history.len(), 4);
    assert_eq!(history[0].id, manual2.id, "newest first");
    let slot = s.job_runs(&JobRunQuery { slot: Some(86_400), ..Default::default() }).unwrap();
    assert_eq!(slot.len(), 2);
}

fn leases_have_one_holder(s: &dyn Store) {
    let a = s.acquire_lease("scheduler", "a", 1_000, t(0)).unwrap().expect("free lease");
    assert_eq!(a.token, 1);
    assert_eq!(s.acquire_lease("scheduler", "b", 1_000, t(0)).unwrap(), None, "held by a");
    let a = s.renew_lease(&a, 1_000, t(0)).unwrap().expect("a renews");
    assert_eq!(s.current_lease("scheduler", t(0)).unwrap().unwrap().holder, "a");
    // a stops renewing; after expiry b takes over with a new token.
    let b = s.acquire_lease("scheduler", "b", 1_000, t(2)).unwrap().expect("expired lease is free");
    assert!(b.token > a.token, "fencing token grows on handover");
    assert_eq!(s.renew_lease(&a, 1_000, t(2)).unwrap(), None, "a lost it");
    s.release_lease(&a).unwrap(); // a no-op: a does not hold it
    assert_eq!(s.current_lease("scheduler", t(2)).unwrap().unwrap().holder, "b");
    s.release_lease(&b).unwrap();
    assert_eq!(s.current_lease("scheduler", t(2)).unwrap(), None);
    let c = s.acquire_lease("scheduler", "c", 1_000, t(2)).unwrap().unwrap();
    assert!(c.token > b.token, "tokens never repeat, even after a release");
    assert!(s.acquire_lease("other-lease", "b", 1_000, t(2)).unwrap().is_some(), "leases are independent");
}
