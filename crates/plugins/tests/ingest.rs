//! The ingest engine (`learnloop_plugin_host::ingest`): group commit shared
//! by concurrent callers, each answered with its own part; ingestion times
//! honoured; the three moments of online learning; shutdown.

use std::sync::Arc;
use std::time::{Duration, Instant};

use learnloop_config::Config;
use learnloop_core::history::EventQuery;
use learnloop_core::{PluginName, Record, RecordDefaults, Timestamp, WorkspaceId, parse_json_record};
use learnloop_plugin_host::{CatchUp, HostError, PluginHost};
use learnloop_store::{ItemStatus, Prepared, SqliteOptions, Store};

fn host(dir: &std::path::Path) -> PluginHost {
    let store: Arc<dyn Store> = learnloop_test_support::store::test_store(dir, &SqliteOptions::default());
    let mut c = Config::default();
    c.plugins.dir = dir.join("none");
    c.plugins.enabled = vec!["drift".into(), "trust".into()];
    PluginHost::load(&learnloop_plugins::registry(), &c, store)
}

fn rec(json: &str) -> Record {
    parse_json_record(json, &RecordDefaults::default()).unwrap_or_else(|e| panic!("{json}: {e}"))
}

fn pred(ws: &str, id: &str, value: f64) -> Record {
    rec(&format!(
        r#"{{"type":"prediction","id":"{id}","workspace":"{ws}","plugin":"drift","subject":"m","kind":"regression","value":{value}}}"#
    ))
}

fn ws(name: &str) -> WorkspaceId {
    WorkspaceId::parse("workspace", name).unwrap()
}

fn prepared(records: Vec<Record>) -> Vec<Prepared> {
    records.into_iter().map(Prepared::new).collect()
}

/// Many callers at once: whatever transactions they end up sharing, each
/// gets the statuses of its own records, in its own order.
#[test]
fn concurrent_callers_each_get_their_own_part_of_the_receipt() {
    let dir = tempfile::tempdir().unwrap();
    let host = Arc::new(host(dir.path()));
    // One record each caller will send again (a duplicate) and one with other content (a conflict).
    host.append(prepared(vec![pred("w", "shared", 1.0)]), None, CatchUp::Later).unwrap();
    // A large first batch keeps the writer busy while the small ones queue behind it.
    let big: Vec<Record> = (0..3000).map(|i| pred("w", &format!("big{i}"), i as f64)).collect();
    let h = host.clone();
    let first = std::thread::spawn(move || h.append(prepared(big), None, CatchUp::Later).unwrap());
    let callers: Vec<_> = (0..8)
        .map(|c| {
            let h = host.clone();
            std::thread::spawn(move || {
                let records = vec![
                    pred("w", &format!("c{c}a"), 1.0),
                    pred("w", "shared", 1.0),
                    pred("w", "shared", 2.0),
                    pred(&format!("w{c}"), &format!("c{c}b"), 1.0),
                ];
                (c, h.append(prepared(records), None, CatchUp::Later).unwrap())
            })
        })
        .collect();
    let first = first.join().unwrap();
    assert_eq!((first.receipt.inserted, first.records.len()), (3000, 3000));
    assert_eq!(
        first.touched.iter().map(|(p, w, n)| (p.to_string(), w.to_string(), n)).collect::<Vec<_>>(),
        [("drift".to_string(), "w".to_string(), 3000)]
    );
    for c in callers {
        let (c, got) = c.join().unwrap();
        let ids: Vec<&str> = got.records.iter().map(|p| p.record().id().as_str()).collect();
        assert_eq!(ids, [format!("c{c}a").as_str(), "shared", "shared", format!("c{c}b").as_str()]);
        assert_eq!(&got.receipt.items[..2], [ItemStatus::Inserted, ItemStatus::Duplicate]);
        assert!(
            matches!(&got.receipt.items[2], ItemStatus::Rejected(r) if r.is_conflict() && r.field() == "id"),
            "{:?}",
            got.receipt.items
        );
        assert_eq!(got.receipt.items[3], ItemStatus::Inserted);
        assert_eq!((got.receipt.inserted, got.receipt.duplicates, got.receipt.rejected), (2, 1, 1));
        let touched: Vec<(String, u64)> = got.touched.iter().map(|(_, w, n)| (w.to_string(), n)).collect();
        let mut want = vec![("w".to_string(), 1), (format!("w{c}"), 1)];
        want.sort();
        assert_eq!(touched, want);
    }
    assert_eq!(host.store().counts(None).unwrap().iter().map(|r| r.predictions).sum::<u64>(), 1 + 3000 + 16);
}

/// An explicit ingestion time is what the store records, also when
/// batches with other times are queued at once (they never share a
/// transaction).
#[test]
fn explicit_ingestion_times_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let host = Arc::new(host(dir.path()));
    let t = |s: i64| Timestamp::from_micros(1_800_000_000_000_000 + s * 1_000_000).unwrap();
    let threads: Vec<_> = (0..6)
        .map(|i| {
            let h = host.clone();
            std::thread::spawn(move || {
                let records = (0..50).map(|j| pred("w", &format!("t{i}-{j}"), 1.0)).collect();
                h.append(prepared(records), Some(t(i % 3)), CatchUp::Later).unwrap();
            })
        })
        .collect();
    for th in threads {
        th.join().unwrap();
    }
    let page =
        host.store().predictions(&EventQuery { workspace: Some(ws("w")), limit: 1000, ..Default::default() }).unwrap();
    assert_eq!(page.items.len(), 300);
    for p in &page.items {
        let i: i64 = p.record.id.as_str()[1..].split('-').next().unwrap().parse().unwrap();
        assert_eq!(p.ingested_at, t(i % 3), "{}", p.record.id.as_str());
    }
}

/// `CatchUp::Now` returns with the plugins up to date; `Later` leaves it to
/// `learn`, which reports what each pair absorbed; `Background` gets there
/// on the learner thread.
#[test]
fn learning_runs_when_the_caller_asks() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path());
    let drift = |w: &str| host.catch_up("drift", &ws(w));

    let got = host.append(prepared(vec![pred("now", "a", 1.0)]), None, CatchUp::Now).unwrap();
    assert_eq!(got.learned.len(), 1);
    assert_eq!(got.learned[0].result.as_ref().ok(), Some(&1));
    assert_eq!(drift("now").unwrap(), 0, "nothing left to absorb");

    let got = host.append(prepared(vec![pred("later", "a", 1.0), pred("later", "b", 1.0)]), None, CatchUp::Later);
    let got = got.unwrap();
    assert!(got.learned.is_empty());
    let mut seen = Vec::new();
    let learned = host.learn(&got.touched, &mut |p| seen.push((p.plugin.to_string(), p.absorbed)));
    assert_eq!(learned.iter().map(|l| l.result.as_ref().ok().copied()).collect::<Vec<_>>(), [Some(2)]);
    assert_eq!(seen, [("drift".to_string(), 0), ("drift".to_string(), 2)], "a start, then each batch");

    // In the background: another catch-up here would race the learner, so
    // wait for the checkpoint instead.
    host.append(prepared(vec![pred("bg", "a", 1.0)]), None, CatchUp::Background).unwrap();
    let key = learnloop_store::StateKey::new(
        PluginName::parse("plugin", "drift").unwrap(),
        ws("bg"),
        format!("{}checkpoint", learnloop_plugin_host::context::HOST_PREFIX),
    )
    .unwrap();
    let started = Instant::now();
    while host.store().get_state(&key).unwrap().is_none() {
        assert!(started.elapsed() < Duration::from_secs(20), "the learner never caught up");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Shutting ingest down answers what was queued and refuses what comes after.
#[test]
fn shutdown_commits_what_is_queued_then_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let host = Arc::new(host(dir.path()));
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let h = host.clone();
            std::thread::spawn(move || h.append(prepared(vec![pred("w", &format!("s{i}"), 1.0)]), None, CatchUp::Later))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(10));
    host.shutdown_ingest();
    let mut stored = 0;
    for t in threads {
        match t.join().unwrap() {
            Ok(c) => stored += c.receipt.inserted,
            Err(HostError::Stopped) => {}
            Err(e) => panic!("{e}"),
        }
    }
    let counted: u64 = host.store().counts(None).unwrap().iter().map(|r| r.predictions).sum();
    assert_eq!(counted, stored as u64, "every answered record is stored, nothing else");
    let err = host.append(prepared(vec![pred("w", "late", 1.0)]), None, CatchUp::Later).unwrap_err();
    assert!(matches!(err, HostError::Stopped), "{err}");
    // `ingest` goes the same way.
    assert!(matches!(host.ingest(vec![pred("w", "late", 1.0)], Timestamp::now()), Err(HostError::Stopped)));
}
