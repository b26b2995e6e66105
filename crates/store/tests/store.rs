//! Store tests.
//!
//! mod list: `sqlite_conformance` and `postgres_conformance` run the shared
//! behaviour suite against both backends (PostgreSQL at
//! `LEARNLOOP_TEST_PG_URL`, each check in a fresh schema); the rest are
//! backend-specific (files, processes, durability, concurrent writers).

use learnloop_store::pg_test::{TestSchema, server_url};
use learnloop_store::{PostgresStore, SqliteOptions, SqliteStore, Store, conformance};

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
        let r = conformance::rec(r#"{"type":"prediction","id":"p","workspace":"w","plugin":"cost","kind":"k","subject":"s"}"#);
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
