//! The behaviour every [`Store`] backend must show, as reusable checks.
//!
//! Backend test suites call [`run_all`] with a function that makes a fresh,
//! empty store; a new backend is done when it passes every check here. The
//! checks panic with a message naming the check, like any test assertion.

use learnloop_core::{
    DeliveryStatus, ImprovementStatus, JobStatus, NewAlert, NewImprovement, NewInsight, PluginName, Record, Severity,
    Timestamp, WorkspaceId,
};
use serde_json::json;

use learnloop_store::*;

/// Makes a fresh, empty store.
pub type Factory<'a> = &'a dyn Fn() -> Box<dyn Store>;

/// Runs every check, each on a fresh store.
pub fn run_all(make: Factory<'_>) {
    for (name, check) in CHECKS {
        eprintln!("store conformance: {name}");
        check(&*make());
    }
}

/// One check: panics, naming what broke, when the store misbehaves.
pub type Check = fn(&dyn Store);

/// Every check, by name.
pub const CHECKS: &[(&str, Check)] = &[
    ("idempotent_append", idempotent_append),
    ("batches_are_atomic", batches_are_atomic),
    ("outcomes_need_their_prediction", outcomes_need_their_prediction),
    ("queries_filter_and_page", queries_filter_and_page),
    ("streams_walk_everything", streams_walk_everything),
    ("counts_and_pending", counts_and_pending),
    ("daily_counts_by_utc_day", daily_counts_by_utc_day),
    ("state_compare_and_set", state_compare_and_set),
    ("state_scans_are_scoped", state_scans_are_scoped),
    ("job_runs_once_per_slot", job_runs_once_per_slot),
    ("leases_have_one_holder", leases_have_one_holder),
    ("one_sequence_for_predictions_and_outcomes", one_sequence_for_predictions_and_outcomes),
    ("events_merge_in_seq_order_and_page", events_merge_in_seq_order_and_page),
    ("workspaces_of_a_plugin", workspaces_of_a_plugin),
    ("columns_match_the_records", columns_match_the_records),
    ("commit_is_all_or_nothing", commit_is_all_or_nothing),
    ("commit_validates_before_writing", commit_validates_before_writing),
    ("commits_are_fenced_by_lease_token", commits_are_fenced_by_lease_token),
    ("insights_filter_newest_first", insights_filter_newest_first),
    ("alerts_deduplicate_until_acknowledged", alerts_deduplicate_until_acknowledged),
    ("improvements_number_versions_and_follow_the_lifecycle", improvements_number_versions_and_follow_the_lifecycle),
    ("improvement_transitions_commit_with_state", improvement_transitions_commit_with_state),
    ("workspaces_never_touch_each_others_results", workspaces_never_touch_each_others_results),
    ("api_keys", api_keys),
    ("outbox_commits_with_its_cause", outbox_commits_with_its_cause),
    ("deliveries_retry_and_give_up", deliveries_retry_and_give_up),
];

pub use crate::records::rec;

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
    let r = s.append(std::slice::from_ref(&p), AppendMode::AllOrNothing, t(100)).unwrap();
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
    let no_ws =
        EventQuery { prediction_id: Some(learnloop_core::RecordId::parse("", "p").unwrap()), ..Default::default() };
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
    let id = |i: &str| Some(learnloop_core::RecordId::parse("id", i).unwrap());
    assert_eq!(all(q(&|q| q.id = id("p7"))), ["p7"], "one record by id");
    assert_eq!(all(q(&|q| q.id = id("nope"))).len(), 0);
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
    let outs: Vec<Record> =
        (0..n).step_by(2).map(|i| outc("w", &format!("o{i}"), "drift", &format!("p{i}"), i)).collect();
    s.append(&outs, AppendMode::AllOrNothing, t(0)).unwrap();
    let seen: Vec<i64> =
        EventStream::predictions(s, EventQuery { limit: 300, order: Order::EventTime, ..Default::default() })
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

fn daily_counts_by_utc_day(s: &dyn Store) {
    const DAY: i64 = 86_400;
    s.append(
        &[
            pred("a", "p1", "cost", "k", "r", 10 * DAY + 5),
            pred("a", "p2", "drift", "k", "m", 10 * DAY + DAY - 1),
            pred("a", "p3", "cost", "k", "r", 12 * DAY),
            pred("a", "p4", "cost", "k", "r", 20 * DAY),
            pred("b", "p1", "cost", "k", "r", 10 * DAY),
            outc("a", "o1", "cost", "p1", 11 * DAY + 1),
        ],
        AppendMode::AllOrNothing,
        t(5),
    )
    .unwrap();
    let days = s.daily_counts(&ws("a"), t(10 * DAY), t(20 * DAY)).unwrap();
    let got: Vec<(i64, u64, u64)> =
        days.iter().map(|d| (d.day.as_micros() / 1_000_000 / DAY, d.predictions, d.outcomes)).collect();
    assert_eq!(
        got,
        vec![(10, 2, 0), (11, 0, 1), (12, 1, 0)],
        "the day 20 record is past `until`, b is another workspace"
    );
    assert!(s.daily_counts(&ws("c"), t(0), t(30 * DAY)).unwrap().is_empty());
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

    // A batched read answers exactly what one read per key would, in order,
    // across plugins and workspaces, with repeats and missing keys.
    s.put_state(&key("trust", "w", "agent/2"), b"again", Expect::Any, t(2)).unwrap();
    let wanted = [
        key("trust", "w", "agent/3"),
        key("cost", "w", "agent/8"),
        key("trust", "w", "missing"),
        key("trust", "other", "agent/9"),
        key("trust", "w", "agent/2"),
        key("trust", "w", "agent/3"),
        key("trust", "nowhere", "agent/1"),
    ];
    let one_by_one: Vec<Option<StateDoc>> = wanted.iter().map(|k| s.get_state(k).unwrap()).collect();
    assert_eq!(s.get_states(&wanted).unwrap(), one_by_one);
    assert_eq!(one_by_one[4].as_ref().map(|d| (d.value.as_slice(), d.version)), Some((&b"again"[..], 2)));
    assert!(one_by_one[2].is_none() && one_by_one[6].is_none());
    assert!(s.get_states(&[]).unwrap().is_empty());
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

/// The seq of every stored prediction and outcome, by record id.
fn all_seqs(s: &dyn Store) -> Vec<(String, i64)> {
    let mut out: Vec<(String, i64)> = Vec::new();
    for p in EventStream::predictions(s, EventQuery::default()) {
        let p = p.unwrap();
        out.push((format!("{}/{}", p.record.workspace, p.record.id), p.seq));
    }
    for o in EventStream::outcomes(s, EventQuery::default()) {
        let o = o.unwrap();
        out.push((format!("{}/{}", o.record.workspace, o.record.id), o.seq));
    }
    out.sort_by_key(|x| x.1);
    out
}

fn one_sequence_for_predictions_and_outcomes(s: &dyn Store) {
    assert_eq!(s.max_seq().unwrap(), 0, "an empty store's max_seq is 0");
    s.append(
        &[
            pred("w", "p1", "trust", "k", "a", 1),
            outc("w", "o1", "trust", "p1", 2),
            pred("w", "p2", "trust", "k", "a", 3),
        ],
        AppendMode::AllOrNothing,
        t(10),
    )
    .unwrap();
    s.append(
        &[outc("w", "o2", "trust", "p2", 4), pred("x", "p1", "cost", "k", "b", 5), outc("w", "o3", "trust", "p1", 6)],
        AppendMode::AllOrNothing,
        t(11),
    )
    .unwrap();
    let seqs = all_seqs(s);
    let order: Vec<&str> = seqs.iter().map(|x| x.0.as_str()).collect();
    assert_eq!(
        order,
        ["w/p1", "w/o1", "w/p2", "w/o2", "x/p1", "w/o3"],
        "seq order is acceptance order across both tables"
    );
    assert!(seqs.windows(2).all(|w| w[0].1 < w[1].1), "no two records share a seq: {seqs:?}");
    assert!(seqs[0].1 > 0, "seqs are positive, so after_seq = 0 means from the start");
    let max = s.max_seq().unwrap();
    assert_eq!(max, seqs.last().unwrap().1);

    // Duplicates, conflicts and an aborted batch take no seq and move nothing.
    let r = s
        .append(
            &[
                pred("w", "p1", "trust", "k", "a", 1),
                outc("w", "o1", "trust", "p1", 2),
                outc("w", "o2", "trust", "p2", 4),
            ],
            AppendMode::AllOrNothing,
            t(12),
        )
        .unwrap();
    assert_eq!(r.duplicates, 3);
    s.append(&[pred("w", "p1", "trust", "k", "a", 99)], AppendMode::SkipRejected, t(12)).unwrap();
    assert!(
        s.append(
            &[pred("w", "p9", "trust", "k", "a", 1), outc("w", "o9", "trust", "nope", 1)],
            AppendMode::AllOrNothing,
            t(12)
        )
        .is_err()
    );
    assert_eq!(all_seqs(s), seqs, "resubmissions leave every seq as it was");
    assert_eq!(s.max_seq().unwrap(), max);

    // A mixed batch of duplicates and new records: the new ones follow on.
    s.append(
        &[
            pred("w", "p1", "trust", "k", "a", 1),
            outc("w", "o4", "trust", "p1", 7),
            pred("w", "p3", "trust", "k", "a", 8),
        ],
        AppendMode::AllOrNothing,
        t(13),
    )
    .unwrap();
    let after = all_seqs(s);
    assert_eq!(after.len(), seqs.len() + 2);
    assert_eq!(&after[..seqs.len()], &seqs[..]);
    assert!(after[seqs.len()].1 > max && after[seqs.len()].0 == "w/o4");
    assert_eq!(after.last().unwrap().0, "w/p3");
    assert_eq!(s.max_seq().unwrap(), after.last().unwrap().1);
}

fn event_ids(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e {
            Event::Prediction(p) => p.record.id.to_string(),
            Event::Outcome(o) => o.record.id.to_string(),
        })
        .collect()
}

fn events_merge_in_seq_order_and_page(s: &dyn Store) {
    let (w, drift) = (ws("w"), plugin("drift"));
    assert!(s.events(&w, &drift, 0, 100).unwrap().is_empty());
    // Three batches interleaving predictions and outcomes of two plugins and
    // two workspaces; drift in w is the stream under test.
    let mut expected = Vec::new();
    for b in 0..3 {
        let mut batch = Vec::new();
        for i in 0..4 {
            let n = b * 4 + i;
            batch.push(pred("w", &format!("p{n}"), "drift", "k", "m", n));
            expected.push(format!("p{n}"));
            batch.push(pred("w", &format!("c{n}"), "cost", "k", "m", n));
            batch.push(pred("v", &format!("p{n}"), "drift", "k", "m", n));
            if n % 2 == 1 {
                batch.push(outc("w", &format!("o{n}"), "drift", &format!("p{}", n - 1), n));
                expected.push(format!("o{n}"));
                batch.push(outc("v", &format!("o{n}"), "drift", &format!("p{n}"), n));
            }
        }
        s.append(&batch, AppendMode::AllOrNothing, t(100 + b)).unwrap();
    }
    let all = s.events(&w, &drift, 0, 1000).unwrap();
    assert_eq!(event_ids(&all), expected, "one workspace, one plugin, in seq order");
    assert!(all.windows(2).all(|x| x[0].seq() < x[1].seq()));
    assert!(all.iter().all(|e| e.workspace() == &w));
    match &all[2] {
        Event::Outcome(o) => assert_eq!((o.subject.as_str(), o.record.prediction_id.as_str()), ("m", "p0")),
        other => panic!("expected outcome o1, got {other:?}"),
    }

    // Paging by after_seq with every page size visits each event once.
    for limit in [1, 2, 3, 5, 7] {
        let mut seen = Vec::new();
        let mut after = 0;
        loop {
            let page = s.events(&w, &drift, after, limit).unwrap();
            assert!(page.len() <= limit);
            if page.is_empty() {
                break;
            }
            after = page.last().unwrap().seq();
            seen.extend(page);
        }
        assert_eq!(seen, all, "pages of {limit}");
    }
    assert_eq!(s.events(&w, &drift, 0, 0).unwrap().len(), 1, "limit 0 is clamped to 1");
    assert!(s.events(&w, &drift, s.max_seq().unwrap(), 10).unwrap().is_empty());

    // New records continue the stream after the last seq seen.
    let last = all.last().unwrap().seq();
    s.append(
        &[outc("w", "late", "drift", "p3", 50), pred("w", "p99", "drift", "k", "m", 50)],
        AppendMode::AllOrNothing,
        t(200),
    )
    .unwrap();
    assert_eq!(event_ids(&s.events(&w, &drift, last, 10).unwrap()), ["late", "p99"]);
    assert_eq!(event_ids(&s.events(&ws("v"), &plugin("cost"), 0, 10).unwrap()), Vec::<String>::new());
}

/// The columnar read returns exactly what the record read does, decoded the
/// reference way ([`ColumnBuilder::push_stored`]), for every page size,
/// order and filter, with first outcomes joined.
fn columns_match_the_records(s: &dyn Store) {
    use learnloop_core::columns::ColumnBuilder;
    let mut batch = Vec::new();
    for n in 0..23i64 {
        // Event times out of ingestion order, ties included; mixed feature
        // types, a feature that comes and goes, keys in varying order,
        // payload versions as strings and numbers, label predictions.
        let time = (n * 7) % 11;
        let (value, label) = if n % 5 == 2 { ("null".to_string(), r#""up""#) } else { (format!("{}.25", n), "null") };
        let features = match n % 3 {
            0 => format!(r#"{{"x":{n},"c":"eu","flag":true}}"#),
            1 => format!(r#"{{"c":"us","x":{}.5,"extra":"e{n}"}}"#, -n),
            _ => r#"{"flag":false,"x":"mixed","k\u00e9y":1e300}"#.to_string(),
        };
        let payload = match n % 4 {
            0 => r#"{"model_version":"v1","deep":{"a":[1,2]}}"#.to_string(),
            1 => r#"{"model_version":2}"#.to_string(),
            2 => r#"{"model_version":null,"other":"x"}"#.to_string(),
            _ => "null".to_string(),
        };
        batch.push(rec(&format!(
            r#"{{"type":"prediction","id":"p{n}","workspace":"w","plugin":"drift","kind":"{kind}","subject":"{subject}","value":{value},"label":{label},"features":{features},"payload":{payload},"event_time":"{}"}}"#,
            t(time),
            kind = if n % 6 == 5 { "other" } else { "regression" },
            subject = if n % 7 == 6 { "m2" } else { "m" },
        )));
        batch.push(pred("v", &format!("p{n}"), "drift", "regression", "m", time));
    }
    // Outcomes: none, one, or two (the first by seq wins), numbers and labels.
    for n in (0..23i64).filter(|n| n % 3 != 2) {
        batch.push(rec(&format!(
            r#"{{"type":"outcome","id":"o{n}","workspace":"w","plugin":"drift","prediction_id":"p{n}","value":{n}.5,"event_time":"{}"}}"#,
            t(100 - n)
        )));
    }
    s.append(&batch, AppendMode::AllOrNothing, t(200)).unwrap();
    s.append(
        &[
            rec(&format!(r#"{{"type":"outcome","id":"o0b","workspace":"w","plugin":"drift","prediction_id":"p0","value":99,"event_time":"{}"}}"#, t(1))),
            rec(&format!(r#"{{"type":"outcome","id":"o2","workspace":"w","plugin":"drift","prediction_id":"p2","label":"up","event_time":"{}"}}"#, t(1))),
        ],
        AppendMode::AllOrNothing,
        t(201),
    )
    .unwrap();

    let all_outcomes: Vec<StoredOutcome> = {
        let q = EventQuery { workspace: Some(ws("w")), limit: EventQuery::MAX_LIMIT, ..Default::default() };
        s.outcomes(&q).unwrap().items
    };
    let first =
        |pid: &str| all_outcomes.iter().filter(|o| o.record.prediction_id.as_str() == pid).min_by_key(|o| o.seq);
    let specs = [
        ColumnSpec::default(),
        ColumnSpec { payload: vec!["model_version".into(), "absent".into()], first_outcome: true },
    ];
    let filters = [
        EventQuery { workspace: Some(ws("w")), plugin: Some(plugin("drift")), ..Default::default() },
        EventQuery {
            workspace: Some(ws("w")),
            subject: Some("m".into()),
            kind: Some("regression".into()),
            ..Default::default()
        },
        EventQuery { workspace: Some(ws("w")), from: Some(t(3)), until: Some(t(9)), ..Default::default() },
    ];
    for spec in &specs {
        for filter in &filters {
            for order in [Order::Ingestion, Order::EventTime] {
                for limit in [1, 4, 23, 1000] {
                    let mut q = EventQuery { order, limit, ..filter.clone() };
                    let (mut got, mut want) = (Vec::new(), Vec::new());
                    loop {
                        let page = s.prediction_columns(&q, spec).unwrap();
                        assert!(page.n <= limit && page.n == page.seq.len());
                        let expected = s.predictions(&q).unwrap();
                        let mut b = ColumnBuilder::new(spec);
                        for p in &expected.items {
                            let o =
                                if spec.first_outcome { first(p.record.id.as_str()).map(|o| &o.record) } else { None };
                            b.push_stored(p, o).unwrap();
                        }
                        let expected = b.finish(expected.next);
                        assert_eq!(page.seq, expected.seq, "{order:?} limit {limit} {filter:?}");
                        assert_eq!(page.next, expected.next, "{order:?} limit {limit}");
                        // As JSON: absent numbers (NaN) compare equal as null.
                        let json = |c: &PredictionColumns| serde_json::to_value(c).unwrap();
                        assert_eq!(json(&page), json(&expected), "{order:?} limit {limit} {spec:?}");
                        let next = page.next;
                        got.extend(page.seq);
                        want.push(next);
                        match next {
                            Some(c) => q.after = Some(c),
                            None => break,
                        }
                    }
                    let mut every = EventQuery { order, limit: EventQuery::MAX_LIMIT, ..filter.clone() };
                    every.after = None;
                    let seqs: Vec<i64> = s.predictions(&every).unwrap().items.iter().map(|p| p.seq).collect();
                    assert_eq!(got, seqs, "pages of {limit} visit every row once");
                }
            }
        }
    }
    // Spot checks of the reference itself, so both sides cannot be wrong together.
    let q = EventQuery { workspace: Some(ws("w")), limit: 100, ..Default::default() };
    let c = s.prediction_columns(&q, &specs[1]).unwrap();
    assert_eq!(c.n, 23);
    assert_eq!(c.outcome_value[0], 0.5, "p0's first outcome, not the later 99");
    assert!(c.outcome_value[5].is_nan() && c.outcome_label.get(5).is_none(), "p5 has none");
    assert_eq!(c.outcome_label.get(2), Some("up"));
    assert!(c.outcome_value[2].is_nan());
    assert_eq!(c.label.get(2), Some("up"));
    assert!(c.value[2].is_nan());
    assert_eq!(c.value[1], 1.25);
    assert_eq!(c.payload["model_version"].get(0), Some("v1"));
    assert_eq!(c.payload["model_version"].get(1), Some("2"));
    assert_eq!(c.payload["model_version"].get(2), None);
    assert!(c.payload["absent"].codes.iter().all(|&x| x == learnloop_core::columns::NONE));
    assert_eq!(c.features["x"].nums[1], -1.5);
    assert_eq!(c.features["x"].cat(2), Some("mixed"));
    assert_eq!(c.features["flag"].cat(0), Some("true"));
    assert_eq!(c.features["k\u{e9}y"].nums[2], 1e300);
    assert!(c.features["extra"].nums.is_empty() && c.features["extra"].cat(1) == Some("e1"));
    let e = s
        .prediction_columns(
            &EventQuery { prediction_id: Some(learnloop_core::RecordId::parse("", "p1").unwrap()), ..q.clone() },
            &specs[0],
        )
        .unwrap_err();
    assert!(e.to_string().contains("prediction_id"), "{e}");
    let big = s.prediction_columns(&EventQuery { limit: usize::MAX, ..q }, &specs[0]).unwrap();
    assert_eq!(big.n, 23, "limits are clamped to ColumnSpec::MAX_ROWS, not rejected");
}

/// A fenced commit lands while its lease is at its token and fails whole,
/// writing nothing, once the lease has changed hands (or never existed).
fn commits_are_fenced_by_lease_token(s: &dyn Store) {
    let k = key("drift", "w", "report");
    let write = |v: &[u8], fence: Option<Fence>| {
        s.commit(
            &Changes {
                state: vec![set(&k, v, Expect::Any)],
                insights: vec![insight("w", "drift", "pattern", "x")],
                fence,
                ..Default::default()
            },
            t(5),
        )
    };
    match write(b"none", Some(Fence { lease: "scheduler".into(), token: 1 })) {
        Err(StoreError::Fenced { current, .. }) => assert_eq!(current, "none"),
        other => panic!("no such lease: fenced, got {other:?}"),
    }
    let a = s.acquire_lease("scheduler", "a", 1_000, t(10)).unwrap().unwrap();
    write(b"a", Some(Fence::from(&a))).unwrap();
    assert_eq!(s.get_state(&k).unwrap().unwrap().value, b"a");
    // a is cut off; its lease lapses and b takes over.
    let b = s.acquire_lease("scheduler", "b", 1_000, t(20)).unwrap().expect("a lapsed lease is free");
    assert_ne!(a.token, b.token, "a new holder, a new token");
    match write(b"late", Some(Fence::from(&a))) {
        Err(StoreError::Fenced { lease, token, current }) => {
            assert_eq!((lease.as_str(), token, current), ("scheduler", a.token, b.token.to_string()));
        }
        other => panic!("a's stale fence must fail the commit, got {other:?}"),
    }
    assert_eq!(s.get_state(&k).unwrap().unwrap().value, b"a", "nothing of the fenced commit landed");
    assert_eq!(results(s, "w").0, 1, "not its insight either");
    write(b"b", Some(Fence::from(&b))).unwrap();
    write(b"unfenced", None).unwrap();
    assert_eq!(s.get_state(&k).unwrap().unwrap().value, b"unfenced");
}

fn workspaces_of_a_plugin(s: &dyn Store) {
    assert!(s.workspaces(&plugin("drift")).unwrap().is_empty());
    let mut batch = Vec::new();
    for w in ["zeta", "alpha", "mid", "alpha", "zeta"] {
        let n = batch.len();
        batch.push(pred(w, &format!("p{n}"), "drift", "k", "m", 1));
    }
    batch.push(pred("other", "p", "cost", "k", "m", 1));
    s.append(&batch, AppendMode::AllOrNothing, t(1)).unwrap();
    let names = |p: &str| s.workspaces(&plugin(p)).unwrap().iter().map(|w| w.to_string()).collect::<Vec<_>>();
    assert_eq!(names("drift"), ["alpha", "mid", "zeta"], "sorted, each once");
    assert_eq!(names("cost"), ["other"]);
    assert!(names("trust").is_empty());
}

fn insight(w: &str, p: &str, kind: &str, title: &str) -> NewInsight {
    NewInsight {
        workspace: ws(w),
        plugin: plugin(p),
        kind: kind.into(),
        title: title.into(),
        detail: String::new(),
        confidence: 0.5,
        impact: 1.5,
        data: json!({"n": 3}),
    }
}

fn alert(w: &str, p: &str, key: &str, severity: Severity, message: &str) -> NewAlert {
    NewAlert {
        workspace: ws(w),
        plugin: plugin(p),
        severity,
        kind: "feature_drift".into(),
        subject: "model-1".into(),
        message: message.into(),
        dedup_key: key.into(),
        data: json!({"message": message}),
    }
}

fn improvement(w: &str, p: &str, target: &str) -> NewImprovement {
    NewImprovement {
        workspace: ws(w),
        plugin: plugin(p),
        target: target.into(),
        params: json!({"slope": 0.9}),
        evidence: json!({"n": 500}),
        metric: "mape".into(),
        expected_gain: 0.02,
    }
}

fn set(k: &StateKey, value: &[u8], expect: Expect) -> StateChange {
    StateChange { key: k.clone(), value: Some(value.to_vec()), expect }
}

/// Counts of (insights, alerts including acknowledged, improvements) in `w`.
fn results(s: &dyn Store, w: &str) -> (usize, usize, usize) {
    let w = Some(ws(w));
    (
        s.insights(&InsightQuery { workspace: w.clone(), ..Default::default() }).unwrap().len(),
        s.alerts(&AlertQuery { workspace: w.clone(), include_acknowledged: true, ..Default::default() }).unwrap().len(),
        s.improvements(&ImprovementQuery { workspace: w, ..Default::default() }).unwrap().len(),
    )
}

fn commit_is_all_or_nothing(s: &dyn Store) {
    let (a, b, checkpoint) = (key("drift", "w", "a"), key("drift", "w", "b"), key("drift", "w", "checkpoint"));
    s.put_state(&a, b"a1", Expect::Absent, t(1)).unwrap();
    s.put_state(&b, b"b1", Expect::Absent, t(1)).unwrap();
    let full = |checkpoint_expect: Expect| Changes {
        state: vec![
            set(&a, b"a2", Expect::Version(1)),
            StateChange { key: b.clone(), value: None, expect: Expect::Version(1) },
            set(&checkpoint, b"seq=42", checkpoint_expect),
        ],
        insights: vec![insight("w", "drift", "pattern", "x")],
        alerts: vec![alert("w", "drift", "k1", Severity::High, "m")],
        improvements: vec![improvement("w", "drift", "calibration")],
        notifications: vec![],
        transitions: vec![],
        fence: None,
    };

    // One stale expect, last in the list: nothing at all is applied.
    match s.commit(&full(Expect::Version(7)), t(2)) {
        Err(StoreError::VersionConflict { key, expected, found }) => {
            assert_eq!(key, checkpoint.to_string(), "the conflict names the key");
            assert_eq!((expected.as_str(), found.as_str()), ("version 7", "no document"));
        }
        other => panic!("a stale expect must fail the commit, got {other:?}"),
    }
    assert_eq!(s.get_state(&a).unwrap().unwrap().value, b"a1", "earlier state changes rolled back");
    assert_eq!(s.get_state(&b).unwrap().unwrap().version, 1, "the delete rolled back");
    assert_eq!(s.get_state(&checkpoint).unwrap(), None);
    assert_eq!(results(s, "w"), (0, 0, 0), "no insight, alert or improvement landed");

    let receipt = s.commit(&full(Expect::Absent), t(3)).unwrap();
    assert_eq!(receipt.state, [Some(2), None, Some(1)]);
    assert_eq!((receipt.insights.len(), receipt.alerts.len(), receipt.improvements.len()), (1, 1, 1));
    assert_eq!(receipt.improvements[0].1, 1);
    let doc = s.get_state(&a).unwrap().unwrap();
    assert_eq!((doc.value.as_slice(), doc.version, doc.updated_at), (&b"a2"[..], 2, t(3)));
    assert_eq!(s.get_state(&b).unwrap(), None);
    assert_eq!(s.get_state(&checkpoint).unwrap().unwrap().value, b"seq=42");
    assert_eq!(results(s, "w"), (1, 1, 1));
    let i = &s.insights(&InsightQuery::default()).unwrap()[0];
    assert_eq!((i.id, i.created_at, &i.data), (receipt.insights[0], t(3), &json!({"n": 3})));
    assert_eq!(s.alerts(&AlertQuery::default()).unwrap()[0].id, receipt.alerts[0]);
    let imp = s.improvement(&ws("w"), receipt.improvements[0].0).unwrap();
    assert_eq!((imp.status, imp.version, imp.created_at), (ImprovementStatus::Proposed, 1, t(3)));

    // Changes to one key apply in order, each checked against the one before.
    let twice =
        Changes { state: vec![set(&b, b"x", Expect::Absent), set(&b, b"y", Expect::Version(1))], ..Default::default() };
    assert_eq!(s.commit(&twice, t(4)).unwrap().state, [Some(1), Some(2)]);
    let stale_second = Changes {
        state: vec![set(&b, b"z", Expect::Version(2)), set(&b, b"zz", Expect::Version(2))],
        ..Default::default()
    };
    assert!(matches!(s.commit(&stale_second, t(5)), Err(StoreError::VersionConflict { .. })));
    assert_eq!(s.get_state(&b).unwrap().unwrap().value, b"y");
    assert_eq!(s.commit(&Changes::default(), t(6)).unwrap(), CommitReceipt::default(), "an empty commit is a no-op");
}

fn commit_validates_before_writing(s: &dyn Store) {
    let k = key("drift", "w", "checkpoint");
    let mut bad_insight = insight("w", "drift", "pattern", "x");
    bad_insight.confidence = 1.5;
    let mut bad_alert = alert("w", "drift", "k", Severity::Low, "m");
    bad_alert.dedup_key = String::new();
    let mut bad_improvement = improvement("w", "drift", "calibration");
    bad_improvement.expected_gain = f64::NAN;
    let mut nul_detail = insight("w", "drift", "pattern", "x");
    nul_detail.detail = "a\0b".into();
    let bad_key = StateKey { plugin: plugin("drift"), workspace: ws("w"), key: String::new() };
    let base = || Changes {
        state: vec![set(&k, b"1", Expect::Any)],
        insights: vec![insight("w", "drift", "pattern", "ok")],
        alerts: vec![alert("w", "drift", "k", Severity::Low, "m")],
        improvements: vec![improvement("w", "drift", "calibration")],
        notifications: vec![],
        transitions: vec![],
        fence: None,
    };
    let cases: Vec<(&str, Changes)> = vec![
        ("insights[1].confidence", Changes { insights: vec![insight("w", "drift", "p", "ok"), bad_insight], ..base() }),
        ("insights[0].detail", Changes { insights: vec![nul_detail], ..base() }),
        ("alerts[0].dedup_key", Changes { alerts: vec![bad_alert], ..base() }),
        ("improvements[0].expected_gain", Changes { improvements: vec![bad_improvement], ..base() }),
        (
            "state[1].key",
            Changes { state: vec![set(&k, b"1", Expect::Any), set(&bad_key, b"1", Expect::Any)], ..base() },
        ),
    ];
    for (field, changes) in cases {
        match s.commit(&changes, t(1)) {
            Err(StoreError::Invalid { field: f, .. }) => assert_eq!(f, field),
            other => panic!("expected {field} to be invalid, got {other:?}"),
        }
        assert_eq!(s.get_state(&k).unwrap(), None, "{field}: nothing applied");
        assert_eq!(results(s, "w"), (0, 0, 0), "{field}: nothing applied");
    }
    assert!(s.put_state(&bad_key, b"1", Expect::Any, t(1)).is_err(), "put_state checks the key too");
}

fn insights_filter_newest_first(s: &dyn Store) {
    let commit =
        |i: NewInsight, at: i64| s.commit(&Changes { insights: vec![i], ..Default::default() }, t(at)).unwrap();
    commit(insight("w", "drift", "pattern", "first"), 10);
    commit(insight("w", "drift", "other", "second"), 20);
    commit(insight("w", "cost", "pattern", "third"), 30);
    commit(insight("v", "drift", "pattern", "fourth"), 40);
    let titles = |q: InsightQuery| s.insights(&q).unwrap().into_iter().map(|i| i.title).collect::<Vec<_>>();
    assert_eq!(titles(InsightQuery::default()), ["fourth", "third", "second", "first"], "newest first");
    assert_eq!(titles(InsightQuery { workspace: Some(ws("w")), ..Default::default() }), ["third", "second", "first"]);
    assert_eq!(
        titles(InsightQuery { workspace: Some(ws("w")), plugin: Some(plugin("drift")), ..Default::default() }),
        ["second", "first"]
    );
    assert_eq!(
        titles(InsightQuery { kind: Some("pattern".into()), ..Default::default() }),
        ["fourth", "third", "first"]
    );
    assert_eq!(titles(InsightQuery { since: Some(t(20)), ..Default::default() }), ["fourth", "third", "second"]);
    assert_eq!(titles(InsightQuery { limit: 2, ..Default::default() }), ["fourth", "third"]);
    let back = &s.insights(&InsightQuery { since: Some(t(40)), ..Default::default() }).unwrap()[0];
    assert_eq!((back.confidence, back.impact, back.kind.as_str(), back.created_at), (0.5, 1.5, "pattern", t(40)));
}

fn alerts_deduplicate_until_acknowledged(s: &dyn Store) {
    let raise =
        |a: NewAlert, at: i64| s.commit(&Changes { alerts: vec![a], ..Default::default() }, t(at)).unwrap().alerts[0];
    let first = raise(alert("w", "drift", "model-1/age", Severity::Low, "one"), 10);
    assert_eq!(raise(alert("w", "drift", "model-1/age", Severity::Critical, "two"), 20), first, "same key: same alert");
    assert_eq!(raise(alert("w", "drift", "model-1/age", Severity::Medium, "three"), 30), first);
    let open = s.alerts(&AlertQuery { workspace: Some(ws("w")), ..Default::default() }).unwrap();
    assert_eq!(open.len(), 1);
    let a = &open[0];
    assert_eq!(a.occurrences, 3);
    assert_eq!(a.severity, Severity::Critical, "the highest severity is kept");
    assert_eq!((a.message.as_str(), &a.data), ("three", &json!({"message": "three"})), "the newest message and data");
    assert_eq!((a.created_at, a.last_seen_at, a.acknowledged_at), (t(10), t(30), None));

    // Other keys, plugins and workspaces are other alerts; so is a repeat
    // within one change set, which folds into the first.
    let twice = Changes {
        alerts: vec![
            alert("w", "drift", "model-2/age", Severity::Low, "x"),
            alert("w", "drift", "model-2/age", Severity::Low, "y"),
        ],
        ..Default::default()
    };
    let ids = s.commit(&twice, t(40)).unwrap().alerts;
    assert_eq!(ids[0], ids[1]);
    assert_ne!(ids[0], first);
    let other_plugin = raise(alert("w", "cost", "model-1/age", Severity::Low, "x"), 41);
    let other_ws = raise(alert("v", "drift", "model-1/age", Severity::Low, "x"), 42);
    assert!(other_plugin != first && other_ws != first && other_plugin != other_ws);

    // Acknowledging closes it: the next occurrence is a new alert.
    let acked = s.acknowledge_alert(&ws("w"), first, t(50)).unwrap();
    assert_eq!((acked.id, acked.acknowledged_at, acked.occurrences), (first, Some(t(50)), 3));
    assert_eq!(
        s.acknowledge_alert(&ws("w"), first, t(55)).unwrap().acknowledged_at,
        Some(t(50)),
        "the first ack time stays"
    );
    let again = raise(alert("w", "drift", "model-1/age", Severity::Low, "four"), 60);
    assert_ne!(again, first, "after acknowledgement a new alert starts");
    let q = |include_acknowledged: bool| {
        s.alerts(&AlertQuery {
            workspace: Some(ws("w")),
            plugin: Some(plugin("drift")),
            include_acknowledged,
            ..Default::default()
        })
        .unwrap()
    };
    let open: Vec<_> = q(false).into_iter().map(|a| (a.id, a.occurrences, a.severity)).collect();
    assert_eq!(open, [(again, 1, Severity::Low), (ids[0], 2, Severity::Low)], "open only, most recent first");
    assert_eq!(q(true).iter().map(|a| a.id).collect::<Vec<_>>(), [again, ids[0], first]);
    let since = s.alerts(&AlertQuery { since: Some(t(41)), ..Default::default() }).unwrap();
    assert_eq!(since.iter().map(|a| a.id).collect::<Vec<_>>(), [again, other_ws, other_plugin]);
    assert_eq!(s.alerts(&AlertQuery { limit: 1, ..Default::default() }).unwrap().len(), 1);
    assert!(matches!(s.acknowledge_alert(&ws("w"), 9_999, t(70)), Err(StoreError::NotFound(_))));
}

fn improvements_number_versions_and_follow_the_lifecycle(s: &dyn Store) {
    use ImprovementStatus::*;
    let propose = |i: NewImprovement, at: i64| {
        s.commit(&Changes { improvements: vec![i], ..Default::default() }, t(at)).unwrap().improvements[0]
    };
    let (id1, v1) = propose(improvement("w", "cost", "calibration"), 10);
    let two = Changes {
        improvements: vec![improvement("w", "cost", "calibration"), improvement("w", "cost", "thresholds")],
        ..Default::default()
    };
    let r = s.commit(&two, t(20)).unwrap().improvements;
    assert_eq!((v1, r[0].1, r[1].1), (1, 2, 1), "versions count per target");
    assert_eq!(propose(improvement("w", "drift", "calibration"), 21).1, 1, "and per plugin");
    assert_eq!(propose(improvement("v", "cost", "calibration"), 22).1, 1, "and per workspace");
    let w = ws("w");

    // Illegal moves fail, name both statuses and change nothing.
    match s.transition_improvement(&w, id1, Applied, None, t(30)) {
        Err(StoreError::Invalid { message, .. }) => {
            assert!(message.contains("proposed") && message.contains("applied"), "{message}")
        }
        other => panic!("proposed -> applied must be refused, got {other:?}"),
    }
    let unchanged = s.improvement(&w, id1).unwrap();
    assert_eq!((unchanged.status, unchanged.updated_at, unchanged.backtest.clone()), (Proposed, t(10), None));
    assert_eq!((unchanged.params.clone(), unchanged.metric.as_str()), (json!({"slope": 0.9}), "mape"));

    let score = json!({"mape_before": 0.2, "mape_after": 0.1});
    let b = s.transition_improvement(&w, id1, Backtested, Some(&score), t(31)).unwrap();
    assert_eq!((b.status, b.backtest.as_ref(), b.updated_at, b.created_at), (Backtested, Some(&score), t(31), t(10)));
    let a = s.transition_improvement(&w, id1, Applied, None, t(32)).unwrap();
    assert_eq!((a.status, a.backtest.as_ref()), (Applied, Some(&score)), "no backtest given: the old one stays");
    s.transition_improvement(&w, id1, Kept, None, t(33)).unwrap();
    let rb = s.transition_improvement(&w, id1, RolledBack, None, t(34)).unwrap();
    assert_eq!(rb.status, RolledBack);
    assert!(matches!(s.transition_improvement(&w, id1, Applied, None, t(35)), Err(StoreError::Invalid { .. })));
    let rejected = s.transition_improvement(&w, r[0].0, Rejected, None, t(36)).unwrap();
    assert_eq!(rejected.status, Rejected);
    assert!(matches!(s.transition_improvement(&w, r[0].0, Backtested, None, t(37)), Err(StoreError::Invalid { .. })));
    assert_eq!(propose(improvement("w", "cost", "calibration"), 40).1, 3, "rejected versions are not reused");

    let q = |f: &dyn Fn(&mut ImprovementQuery)| {
        let mut q = ImprovementQuery { workspace: Some(w.clone()), ..Default::default() };
        f(&mut q);
        s.improvements(&q).unwrap().into_iter().map(|i| (i.target, i.version, i.status)).collect::<Vec<_>>()
    };
    let cal = |v, st| ("calibration".to_string(), v, st);
    assert_eq!(
        q(&|q| {
            q.plugin = Some(plugin("cost"));
            q.target = Some("calibration".into());
        }),
        [cal(3, Proposed), cal(2, Rejected), cal(1, RolledBack)],
        "newest first"
    );
    assert_eq!(q(&|q| q.status = Some(Proposed)).len(), 3);
    assert_eq!(q(&|q| q.limit = 2).len(), 2);
    assert_eq!(q(&|_| {}).len(), 5);
}

fn workspaces_never_touch_each_others_results(s: &dyn Store) {
    let changes = Changes {
        alerts: vec![alert("a", "drift", "k", Severity::High, "m")],
        improvements: vec![improvement("a", "drift", "calibration")],
        ..Default::default()
    };
    let r = s.commit(&changes, t(1)).unwrap();
    let (alert_id, (imp_id, _)) = (r.alerts[0], r.improvements[0]);
    let b = ws("b");
    assert!(matches!(s.acknowledge_alert(&b, alert_id, t(2)), Err(StoreError::NotFound(_))));
    assert!(matches!(s.improvement(&b, imp_id), Err(StoreError::NotFound(_))));
    assert!(matches!(
        s.transition_improvement(&b, imp_id, ImprovementStatus::Rejected, None, t(2)),
        Err(StoreError::NotFound(_))
    ));
    let a = ws("a");
    assert_eq!(s.alerts(&AlertQuery::default()).unwrap()[0].acknowledged_at, None, "b's ack did nothing");
    assert_eq!(s.improvement(&a, imp_id).unwrap().status, ImprovementStatus::Proposed, "b's move did nothing");
    assert!(s.alerts(&AlertQuery { workspace: Some(b.clone()), ..Default::default() }).unwrap().is_empty());
    assert!(s.improvements(&ImprovementQuery { workspace: Some(b), ..Default::default() }).unwrap().is_empty());
    assert!(s.acknowledge_alert(&a, alert_id, t(3)).is_ok());
}

/// API keys: only hashes are stored, scoping rules hold, revocation works.
pub fn api_keys(s: &dyn Store) {
    use learnloop_core::Role;
    let new = |name: &str, hash: u8, ws: Option<&str>, role: Role| NewApiKey {
        name: name.into(),
        prefix: format!("llk_{hash:02x}"),
        hash: [hash; 32],
        workspace: ws.map(|w| WorkspaceId::parse("", w).unwrap()),
        role,
        now: Timestamp::from_micros(1_000_000).unwrap(),
    };
    let admin = s.create_api_key(&new("admin", 1, None, Role::Admin)).unwrap();
    let reader = s.create_api_key(&new("reader", 2, Some("w"), Role::Reader)).unwrap();
    assert_eq!(reader.workspace.as_ref().map(|w| w.as_str()), Some("w"));
    assert!(matches!(s.create_api_key(&new("bad", 3, Some("w"), Role::Admin)), Err(StoreError::Invalid { .. })));
    assert!(matches!(s.create_api_key(&new("bad", 4, None, Role::Writer)), Err(StoreError::Invalid { .. })));
    assert_eq!(s.api_key_by_hash(&[2; 32]).unwrap().unwrap().id, reader.id);
    assert_eq!(s.api_key_by_hash(&[9; 32]).unwrap(), None);
    let revoked = s.revoke_api_key(reader.id, Timestamp::from_micros(2_000_000).unwrap()).unwrap();
    assert!(revoked.revoked_at.is_some());
    assert_eq!(s.api_key_by_hash(&[2; 32]).unwrap(), None, "revoked keys do not authenticate");
    assert_eq!(s.api_keys().unwrap().len(), 2);
    assert_eq!(s.api_key_by_hash(&[1; 32]).unwrap().unwrap().id, admin.id);
    assert!(matches!(s.revoke_api_key(999, Timestamp::now()), Err(StoreError::NotFound(_))));
}

fn improvement_transitions_commit_with_state(s: &dyn Store) {
    use ImprovementStatus::*;
    let w = ws("w");
    let (id, _) = s
        .commit(&Changes { improvements: vec![improvement("w", "cost", "calibration")], ..Default::default() }, t(10))
        .unwrap()
        .improvements[0];
    let key = StateKey::new(plugin("cost"), w.clone(), "__applied/calibration").unwrap();
    let move_to = |from, to, note: serde_json::Value| Transition {
        workspace: w.clone(),
        id,
        from,
        to,
        backtest: (to == Backtested).then(|| json!({"gain": 0.1})),
        note,
    };
    s.commit(
        &Changes { transitions: vec![move_to(Proposed, Backtested, json!({"n": 40}))], ..Default::default() },
        t(11),
    )
    .unwrap();
    // The document saying which version is in force and the status land together...
    let apply = Changes {
        state: vec![StateChange {
            key: key.clone(),
            value: Some(br#"{"version":1}"#.to_vec()),
            expect: Expect::Absent,
        }],
        transitions: vec![move_to(Backtested, Applied, json!({"policy": "auto"}))],
        ..Default::default()
    };
    s.commit(&apply, t(12)).unwrap();
    let imp = s.improvement(&w, id).unwrap();
    assert_eq!((imp.status, imp.backtest.clone()), (Applied, Some(json!({"gain": 0.1}))));
    assert_eq!(s.get_state(&key).unwrap().map(|d| d.version), Some(1));
    let steps: Vec<_> = imp.history.iter().map(|e| (e.status, e.at, e.note.clone())).collect();
    assert_eq!(
        steps,
        vec![
            (Proposed, t(10), serde_json::Value::Null),
            (Backtested, t(11), json!({"n": 40})),
            (Applied, t(12), json!({"policy": "auto"}))
        ],
        "history keeps every step with its note"
    );
    // ...or not at all: a stale `from` (someone else moved it first) fails the
    // whole set, including its state change,
    let stale = Changes {
        state: vec![StateChange { key: key.clone(), value: Some(br#"{"version":0}"#.to_vec()), expect: Expect::Any }],
        transitions: vec![move_to(Backtested, Applied, serde_json::Value::Null)],
        ..Default::default()
    };
    assert!(matches!(s.commit(&stale, t(13)), Err(StoreError::VersionConflict { .. })));
    // as does a move the lifecycle forbids (refused before anything is written).
    let illegal = Changes {
        state: vec![StateChange { key: key.clone(), value: Some(br#"{"version":0}"#.to_vec()), expect: Expect::Any }],
        transitions: vec![move_to(Applied, Proposed, serde_json::Value::Null)],
        ..Default::default()
    };
    assert!(matches!(s.commit(&illegal, t(14)), Err(StoreError::Invalid { .. })));
    assert_eq!(s.get_state(&key).unwrap().map(|d| (d.version, d.value)), Some((1, br#"{"version":1}"#.to_vec())));
    assert_eq!(s.improvement(&w, id).unwrap().history.len(), 3);
    // Another workspace cannot move it.
    let other = Transition { workspace: ws("v"), ..move_to(Applied, Kept, serde_json::Value::Null) };
    assert!(matches!(
        s.commit(&Changes { transitions: vec![other], ..Default::default() }, t(15)),
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(s.improvement(&w, id).unwrap().status, Applied);
}

fn events(s: &dyn Store) -> Vec<(String, Option<String>, String)> {
    let mut all = Vec::new();
    // Route everything to one destination "all" so deliveries list every notification.
    s.route_notifications(10_000, &mut |_| vec!["all".to_string()], None, t(0)).unwrap();
    let mut list =
        s.deliveries(&DeliveryQuery { destination: Some("all".into()), limit: 10_000, ..Default::default() }).unwrap();
    list.reverse();
    for d in list {
        let n = d.notification;
        all.push((n.event, n.workspace.map(|w| w.to_string()), n.subject));
    }
    all
}

fn notification(w: &str, event: &str, subject: &str) -> learnloop_core::NewNotification {
    learnloop_core::NewNotification {
        workspace: Some(ws(w)),
        plugin: plugin("drift"),
        event: event.into(),
        severity: Severity::Medium,
        subject: subject.into(),
        summary: format!("{event} {subject}"),
        dedup_key: format!("{event}/{subject}"),
        link: "/api/v1/drift/retrain/requests".into(),
        data: json!({"n": 1}),
    }
}

/// Alerts raised (not their repeats) and acknowledged, improvements moved,
/// failed job runs and a change set's own notifications land in the outbox
/// in the transaction of their cause, and only then.
fn outbox_commits_with_its_cause(s: &dyn Store) {
    let k = key("drift", "w", "checkpoint");
    let raise = || Changes {
        alerts: vec![alert("w", "drift", "k1", Severity::High, "drifted")],
        notifications: vec![notification("w", "retrain.requested", "m1")],
        ..Default::default()
    };
    let first = s.commit(&raise(), t(1)).unwrap();
    s.commit(&raise(), t(2)).unwrap();
    // A change set that fails commits no notification either.
    let failing = Changes { state: vec![set(&k, b"1", Expect::Version(9))], ..raise() };
    assert!(s.commit(&failing, t(3)).is_err());
    // An invalid notification is refused before anything is written.
    let mut bad = notification("w", "retrain.requested", "m1");
    bad.event = "retrain.maybe".into();
    match s.commit(&Changes { notifications: vec![bad], ..Default::default() }, t(3)) {
        Err(StoreError::Invalid { field, .. }) => assert_eq!(field, "notifications[0].event"),
        other => panic!("an unknown event type must be refused, got {other:?}"),
    }
    s.acknowledge_alert(&ws("w"), first.alerts[0], t(4)).unwrap();
    s.acknowledge_alert(&ws("w"), first.alerts[0], t(5)).unwrap();
    let imp = s
        .commit(&Changes { improvements: vec![improvement("w", "drift", "calibration")], ..Default::default() }, t(6))
        .unwrap();
    let id = imp.improvements[0].0;
    s.transition_improvement(&ws("w"), id, ImprovementStatus::Backtested, None, t(7)).unwrap();
    let tr = Transition {
        workspace: ws("w"),
        id,
        from: ImprovementStatus::Backtested,
        to: ImprovementStatus::Applied,
        backtest: None,
        note: json!("policy"),
    };
    s.commit(&Changes { transitions: vec![tr], ..Default::default() }, t(8)).unwrap();
    let run = |attempt| NewJobRun {
        plugin: plugin("drift"),
        job: "daily".into(),
        slot: Some(1),
        attempt,
        runner: "a".into(),
        now: t(9),
    };
    let r1 = s.start_job_run(&run(1)).unwrap();
    s.finish_job_run(r1.id, JobStatus::Failed, None, Some("boom"), t(10)).unwrap();
    let r2 = s.start_job_run(&run(2)).unwrap();
    s.finish_job_run(r2.id, JobStatus::Succeeded, None, None, t(11)).unwrap();

    let w = Some("w".to_string());
    assert_eq!(
        events(s),
        vec![
            ("alert.raised".to_string(), w.clone(), "model-1".to_string()),
            ("retrain.requested".into(), w.clone(), "m1".into()),
            ("retrain.requested".into(), w.clone(), "m1".into()),
            ("alert.acknowledged".into(), w.clone(), "model-1".into()),
            ("improvement.proposed".into(), w.clone(), "calibration".into()),
            ("improvement.backtested".into(), w.clone(), "calibration".into()),
            ("improvement.applied".into(), w.clone(), "calibration".into()),
            ("job.failed".into(), None, "drift/daily".into()),
        ],
        "one alert.raised for an alert raised twice, one acknowledgement, nothing of the failed commit"
    );
    let all = s.deliveries(&DeliveryQuery { limit: 100, ..Default::default() }).unwrap();
    let raised = all.iter().find(|d| d.notification.event == "alert.raised").unwrap();
    let acked = all.iter().find(|d| d.notification.event == "alert.acknowledged").unwrap();
    assert_eq!(raised.notification.dedup_key, acked.notification.dedup_key, "PagerDuty resolves by the same dedup key");
    assert_eq!(raised.notification.occurred_at, t(1));
    assert_eq!(raised.notification.data["alert_id"], json!(first.alerts[0]));
    let uids: std::collections::BTreeSet<&str> = all.iter().map(|d| d.notification.uid.as_str()).collect();
    assert_eq!(uids.len(), all.len(), "every notification has its own uid");
    assert!(all.iter().all(|d| d.notification.uid.starts_with("ntf_") && d.notification.uid.len() == 36));
}

/// Routing makes one delivery per destination, once; attempts are counted,
/// retries wait for their time, a dead delivery can be retried, a
/// delivered one cannot, and a deliverer whose lease moved on writes nothing.
fn deliveries_retry_and_give_up(s: &dyn Store) {
    for (i, subject) in ["a", "b", "c"].iter().enumerate() {
        let mut n = notification(if i == 2 { "v" } else { "w" }, "retrain.requested", subject);
        n.severity = if i == 0 { Severity::Low } else { Severity::High };
        s.commit(&Changes { notifications: vec![n], ..Default::default() }, t(10 + i as i64)).unwrap();
    }
    let lease = s.acquire_lease("notifier", "a", 60_000, t(10)).unwrap().unwrap();
    let fence = Fence::from(&lease);
    let stale = Fence { lease: "notifier".into(), token: lease.token + 1 };
    assert!(matches!(
        s.route_notifications(10, &mut |_| vec!["x".into()], Some(&stale), t(20)),
        Err(StoreError::Fenced { .. })
    ));
    assert_eq!(s.outbox_stats().unwrap().unrouted, 3, "a fenced routing changed nothing");
    assert_eq!(s.outbox_stats().unwrap().oldest_unrouted, Some(t(10)));
    // "hooks" takes high severity only; "files" takes everything of workspace w.
    let mut route = |n: &learnloop_core::Notification| {
        let mut out = Vec::new();
        if n.severity >= Severity::High {
            out.push("hooks".to_string());
        }
        if n.workspace.as_ref().is_some_and(|w| w.as_str() == "w") {
            out.push("files".to_string());
        }
        out
    };
    assert_eq!(s.route_notifications(2, &mut route, Some(&fence), t(20)).unwrap(), 2, "at most `limit`");
    assert_eq!(s.route_notifications(10, &mut route, Some(&fence), t(20)).unwrap(), 1);
    assert_eq!(s.route_notifications(10, &mut route, Some(&fence), t(21)).unwrap(), 0, "routed once");
    let hooks = s.due_deliveries("hooks", t(20), 10).unwrap();
    assert_eq!(hooks.iter().map(|d| d.notification.subject.as_str()).collect::<Vec<_>>(), ["b", "c"]);
    assert!(s.due_deliveries("hooks", t(19), 10).unwrap().is_empty(), "not due before it was routed");
    assert_eq!(s.due_deliveries("files", t(20), 10).unwrap().len(), 2);

    let (b, c) = (hooks[0].id, hooks[1].id);
    let retry = DeliveryResult::Retry { at: t(60), error: "HTTP 500".into() };
    assert!(matches!(s.record_delivery(b, &retry, Some(&stale), t(30)), Err(StoreError::Fenced { .. })));
    let d = s.record_delivery(b, &retry, Some(&fence), t(30)).unwrap();
    assert_eq!(
        (d.status, d.attempts, d.next_attempt_at, d.last_error.as_deref()),
        (DeliveryStatus::Pending, 1, Some(t(60)), Some("HTTP 500"))
    );
    assert_eq!(
        s.due_deliveries("hooks", t(59), 10).unwrap().iter().map(|d| d.id).collect::<Vec<_>>(),
        [c],
        "b waits for its retry"
    );
    assert_eq!(
        s.due_deliveries("hooks", t(60), 10).unwrap().iter().map(|d| d.id).collect::<Vec<_>>(),
        [c, b],
        "earliest due first"
    );
    let d = s.record_delivery(b, &DeliveryResult::Delivered, Some(&fence), t(61)).unwrap();
    assert_eq!(
        (d.status, d.attempts, d.finished_at, d.next_attempt_at),
        (DeliveryStatus::Delivered, 2, Some(t(61)), None)
    );
    assert_eq!(d.last_error.as_deref(), Some("HTTP 500"), "the last failure stays visible");
    assert!(
        matches!(s.record_delivery(b, &DeliveryResult::Delivered, None, t(62)), Err(StoreError::Invalid { .. })),
        "recorded once"
    );
    assert!(matches!(s.retry_delivery(b, t(62)), Err(StoreError::Invalid { .. })), "a delivered one is not sent again");

    let d = s.record_delivery(c, &DeliveryResult::Dead { error: "HTTP 410".into() }, None, t(63)).unwrap();
    assert_eq!((d.status, d.attempts, d.finished_at), (DeliveryStatus::Dead, 1, Some(t(63))));
    assert!(s.due_deliveries("hooks", t(1_000), 10).unwrap().is_empty());
    let d = s.retry_delivery(c, t(64)).unwrap();
    assert_eq!(
        (d.status, d.attempts, d.next_attempt_at, d.finished_at),
        (DeliveryStatus::Pending, 0, Some(t(64)), None)
    );
    assert_eq!(s.due_deliveries("hooks", t(64), 10).unwrap()[0].id, c);
    assert!(matches!(s.retry_delivery(9_999, t(64)), Err(StoreError::NotFound(_))));

    let dead = s.deliveries(&DeliveryQuery { status: Some(DeliveryStatus::Delivered), ..Default::default() }).unwrap();
    assert_eq!(dead.iter().map(|d| d.id).collect::<Vec<_>>(), [b]);
    let v = s.deliveries(&DeliveryQuery { workspace: Some(ws("v")), ..Default::default() }).unwrap();
    assert_eq!(v.iter().map(|d| d.notification.subject.as_str()).collect::<Vec<_>>(), ["c"]);
    let stats = s.outbox_stats().unwrap();
    assert_eq!(stats.unrouted, 0);
    assert_eq!(
        stats.deliveries,
        vec![
            ("files".to_string(), DeliveryStatus::Pending, 2),
            ("hooks".into(), DeliveryStatus::Delivered, 1),
            ("hooks".into(), DeliveryStatus::Pending, 1),
        ]
    );
    assert_eq!(stats.oldest_pending, vec![("files".to_string(), t(20)), ("hooks".into(), t(20))]);
}
