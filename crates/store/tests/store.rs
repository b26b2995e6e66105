//! Store tests.
//!
//! mod list: `sqlite_conformance` and `postgres_conformance` run the shared
//! behaviour suite against both backends (PostgreSQL at
//! `LEARNLOOP_TEST_PG_URL`, each check in a fresh schema); the rest are
//! backend-specific (files, processes, durability, concurrent writers).

use learnloop_store::pg_test::{TestSchema, server_url};
use learnloop_store::{PostgresStore, SqliteOptions, SqliteStore, Store};
use learnloop_test_support::store_conformance as conformance;

#[test]
fn sqlite_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let counter = std::cell::Cell::new(0);
    conformance::run_all(&|| {
        counter.set(counter.get() + 1);
        let path = dir.path().join(format!("s{}.sqlite", counter.get()));
        Box::new(SqliteStore::open(&path, &SqliteOptions::default()).unwrap()) as Box<dyn Store>
    });
}

#[test]
fn postgres_conformance() {
    let Some(server) = server_url("postgres_conformance") else { return };
    // Every store's schema lives until the end of the test, then is dropped.
    let schemas = std::cell::RefCell::new(Vec::new());
    conformance::run_all(&|| {
        let schema = TestSchema::create(&server);
        let store = PostgresStore::open(schema.url(), 2).unwrap();
        schemas.borrow_mut().push(schema);
        Box::new(store) as Box<dyn Store>
    });
}

#[test]
fn reopening_keeps_data_and_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/db.sqlite");
    {
        let s = SqliteStore::open(&path, &SqliteOptions::default()).unwrap();
        let r = conformance::rec(
            r#"{"type":"prediction","id":"p","workspace":"w","plugin":"cost","kind":"k","subject":"s"}"#,
        );
        s.append(&[r], learnloop_store::AppendMode::AllOrNothing, learnloop_core::Timestamp::now()).unwrap();
    }
    let s = SqliteStore::open(&path, &SqliteOptions::default()).unwrap();
    assert_eq!(s.counts(None).unwrap()[0].predictions, 1);
}

#[test]
fn refuses_a_newer_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    drop(SqliteStore::open(&path, &SqliteOptions::default()).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("INSERT INTO schema_migrations VALUES (999, 0)", []).unwrap();
    drop(conn);
    let err = SqliteStore::open(&path, &SqliteOptions::default()).err().unwrap().to_string();
    assert!(err.contains("999") && err.contains("upgrade"), "{err}");
}

/// Two "nodes" (two stores on one schema) append concurrently while a third
/// follows the history with `events` after the last seq it saw, as the
/// plugin host's catch-up does. PostgreSQL commits in parallel; the reader
/// must still see every record exactly once, and the seqs must be 1..=n.
#[test]
fn postgres_concurrent_appends_are_seen_in_seq_order() {
    use learnloop_core::{PluginName, Timestamp, WorkspaceId};
    use learnloop_store::AppendMode;
    let Some(server) = server_url("postgres_concurrent_appends_are_seen_in_seq_order") else { return };
    let schema = TestSchema::create(&server);
    let nodes: Vec<PostgresStore> = (0..2).map(|_| PostgresStore::open(schema.url(), 2).unwrap()).collect();
    let reader = PostgresStore::open(schema.url(), 1).unwrap();
    let (writers, batches, per_batch) = (4, 25, 8);
    let done = std::sync::atomic::AtomicUsize::new(0);
    let (ws, plugin) = (WorkspaceId::parse("", "w").unwrap(), PluginName::parse("", "drift").unwrap());
    let seen = std::thread::scope(|scope| {
        for w in 0..writers {
            let (node, done) = (&nodes[w % 2], &done);
            scope.spawn(move || {
                for b in 0..batches {
                    let batch: Vec<_> = (0..per_batch)
                        .map(|i| {
                            conformance::rec(&format!(
                                r#"{{"type":"prediction","id":"w{w}b{b}i{i}","workspace":"w","plugin":"drift","kind":"k","subject":"s"}}"#
                            ))
                        })
                        .collect();
                    node.append(&batch, AppendMode::AllOrNothing, Timestamp::now()).unwrap();
                }
                done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            });
        }
        // Follow until every writer finished and a last pass finds nothing new.
        let mut seen = Vec::new();
        let mut after = 0;
        loop {
            let finished = done.load(std::sync::atomic::Ordering::SeqCst) == writers;
            let page = reader.events(&ws, &plugin, after, 7).unwrap();
            if page.is_empty() && finished {
                break seen;
            }
            for e in page {
                assert!(e.seq() > after, "events went backwards: {} after {after}", e.seq());
                after = e.seq();
                seen.push(e.seq());
            }
        }
    });
    let n = (writers * batches * per_batch) as i64;
    assert_eq!(seen, (1..=n).collect::<Vec<_>>(), "the follower missed or repeated records");
    assert_eq!(reader.max_seq().unwrap(), n);
}

/// Compare-and-set across nodes: of many writers expecting the same
/// version, exactly one wins each round.
#[test]
fn postgres_compare_and_set_has_one_winner_across_nodes() {
    use learnloop_core::{PluginName, Timestamp, WorkspaceId};
    use learnloop_store::{Expect, StateKey, StoreError};
    let Some(server) = server_url("postgres_compare_and_set_has_one_winner_across_nodes") else { return };
    let schema = TestSchema::create(&server);
    let nodes: Vec<PostgresStore> = (0..4).map(|_| PostgresStore::open(schema.url(), 1).unwrap()).collect();
    let key = StateKey::new(PluginName::parse("", "cost").unwrap(), WorkspaceId::parse("", "w").unwrap(), "k").unwrap();
    for round in 0..10u64 {
        let expect = if round == 0 { Expect::Absent } else { Expect::Version(round) };
        let results: Vec<_> = std::thread::scope(|scope| {
            let handles: Vec<_> =
                nodes.iter().map(|n| scope.spawn(|| n.put_state(&key, b"x", expect, Timestamp::now()))).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let wins: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(wins, [&(round + 1)], "round {round}: {results:?}");
        for r in &results {
            assert!(matches!(r, Ok(_) | Err(StoreError::VersionConflict { .. })), "{r:?}");
        }
    }
}
