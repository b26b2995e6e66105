//! Throwaway PostgreSQL schemas for tests.
//!
//! Tests that need PostgreSQL read the server's URL from
//! `LEARNLOOP_TEST_PG_URL`. When it is unset they are skipped, saying so on
//! stderr, except under CI (`CI` set), where a missing database is a failure.
//! Each [`TestSchema`] is a fresh schema, selected through the URL's
//! `search_path`, so tests run in parallel on one database; it is dropped
//! with everything in it when the value is dropped. The store a plugin or
//! host test runs on (SQLite or such a schema) is chosen by
//! `learnloop_test_support::store::test_store`.

use std::sync::atomic::{AtomicU64, Ordering};

/// The environment variable with the test server's URL.
pub const URL_VAR: &str = "LEARNLOOP_TEST_PG_URL";

/// The test server's URL; `None` (after printing that `test` was skipped)
/// when [`URL_VAR`] is unset outside CI. Panics under CI without it.
pub fn server_url(test: &str) -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("{test}: {URL_VAR} is not set, and CI requires the PostgreSQL tests (see .ci/run)")
        }
        _ => {
            eprintln!("SKIPPED {test}: set {URL_VAR}=postgres://... to run it against PostgreSQL");
            None
        }
    }
}

/// A fresh, empty schema, dropped (with its tables) on drop.
pub struct TestSchema {
    server: String,
    name: String,
    url: String,
}

impl TestSchema {
    /// Creates a schema on the server at `server_url`.
    pub fn create(server_url: &str) -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let name =
            format!("learnloop_test_{}_{}_{}", std::process::id(), nanos, COUNTER.fetch_add(1, Ordering::Relaxed));
        let mut client = ::postgres::Client::connect(server_url, ::postgres::NoTls)
            .unwrap_or_else(|e| panic!("cannot connect to the test database {server_url}: {e}"));
        client.batch_execute(&format!("CREATE SCHEMA {name}")).expect("create test schema");
        let sep = if server_url.contains('?') { '&' } else { '?' };
        let url = format!("{server_url}{sep}options=-c%20search_path%3D{name}");
        Self { server: server_url.to_string(), name, url }
    }

    /// The URL of a store in this schema.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        if let Ok(mut c) = ::postgres::Client::connect(&self.server, ::postgres::NoTls) {
            let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
        }
    }
}
