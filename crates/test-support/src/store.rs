//! The stores tests and benchmarks run on.
//!
//! Plugin and host tests call [`test_store`]: a SQLite file in the test's
//! temporary directory, or, with `LEARNLOOP_TEST_STORE=postgres`, a fresh
//! schema on the server at `LEARNLOOP_TEST_PG_URL` (`.ci/run` runs the suites
//! both ways). Benchmarks measure the embedded default, SQLite.

use std::path::Path;
use std::sync::Arc;

use learnloop_store::pg_test::{TestSchema, URL_VAR};
use learnloop_store::{PostgresStore, SqliteOptions, SqliteStore, Store};

/// The environment variable that moves the plugin and host tests onto
/// PostgreSQL: `LEARNLOOP_TEST_STORE=postgres` (with [`URL_VAR`] set).
pub const STORE_VAR: &str = "LEARNLOOP_TEST_STORE";

/// SQLite without `synchronous = full`: tests and benchmarks that write
/// many events need no fsync per commit.
pub fn fast() -> SqliteOptions {
    SqliteOptions { synchronous_full: false, ..Default::default() }
}

/// The store a plugin or host test runs on: a SQLite file in `dir` (with
/// `sqlite`'s options), or, when [`STORE_VAR`] is `postgres`, a fresh
/// schema on the server at [`URL_VAR`] (required then), dropped with the
/// store.
pub fn test_store(dir: &Path, sqlite: &SqliteOptions) -> Arc<dyn Store> {
    match std::env::var(STORE_VAR).as_deref() {
        Ok("postgres") => {
            let url = std::env::var(URL_VAR)
                .ok()
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| panic!("{STORE_VAR}=postgres needs {URL_VAR}=postgres://..."));
            let schema = TestSchema::create(&url);
            let store = PostgresStore::open(schema.url(), 4)
                .unwrap_or_else(|e| panic!("cannot open the test store in schema {}: {e}", schema.name()));
            Arc::new(store.keep_alive(schema))
        }
        Ok("sqlite") | Ok("") | Err(_) => Arc::new(
            SqliteStore::open(&dir.join("s.sqlite"), sqlite)
                .unwrap_or_else(|e| panic!("cannot open the test store: {e}")),
        ),
        Ok(other) => panic!("{STORE_VAR}={other:?}: expected \"sqlite\" or \"postgres\""),
    }
}

/// A benchmark's store: always SQLite (the embedded default), in `dir`,
/// without `synchronous = full`.
pub fn bench_store(dir: &Path) -> Arc<dyn Store> {
    Arc::new(
        SqliteStore::open(&dir.join("s.sqlite"), &fast())
            .unwrap_or_else(|e| panic!("cannot open the benchmark store: {e}")),
    )
}
