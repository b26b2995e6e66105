//! The store of record: everything learnloop knows, durably.
//!
//! One object-safe, synchronous trait, [`Store`], with an embedded SQLite
//! implementation ([`SqliteStore`]); PostgreSQL implements the same trait.
//! The trait is synchronous on purpose: plugins (including ones behind a C
//! ABI) and jobs read history as plain iterators, and async callers such as
//! the HTTP API move store calls onto blocking threads. Nothing SQLite-specific
//! crosses the trait: no SQL, no rowids, no connection types.
//!
//! What the store promises, and [`conformance`] checks for every backend:
//! * appends are idempotent by client-chosen id: same id and same content is a
//!   duplicate (a no-op), same id and other content is a conflict;
//! * a batch is one transaction: after a crash either all of its accepted
//!   records are there or none;
//! * an acknowledged append survives `kill -9` of the process;
//! * queries page by an opaque cursor and [`EventStream`] walks any history in
//!   bounded memory;
//! * plugin state documents have versions for compare-and-set;
//! * job runs and leases give the scheduler exactly-once slots and one leader.

#![deny(missing_docs)]

pub mod conformance;
mod error;
mod sqlite;
mod stream;
mod types;

use std::sync::Arc;

use learnloop_core::{JobRun, JobStatus, PluginName, Record, Timestamp, WorkspaceId};

pub use error::{Rejection, StoreError};
pub use sqlite::{SqliteOptions, SqliteStore};
pub use stream::EventStream;
pub use types::*;

/// Result alias for store calls.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The store of record.
///
/// Every method is a complete unit of work: it commits before returning Ok.
pub trait Store: Send + Sync {
    /// A short name of the backend for logs and `stats` (`sqlite`, `postgres`).
    fn backend(&self) -> &'static str;

    /// Appends predictions and outcomes in one transaction.
    ///
    /// Each item is inserted, found to be a duplicate, or rejected (see
    /// [`Rejection`]). With [`AppendMode::AllOrNothing`] the first rejection
    /// aborts the batch with [`StoreError::Rejected`] and nothing is stored;
    /// with [`AppendMode::SkipRejected`] the rejected items are reported and the
    /// rest commit together. `now` becomes the ingestion time, and the event
    /// time of records that have none.
    fn append(&self, records: &[Record], mode: AppendMode, now: Timestamp) -> Result<AppendReceipt> {
        let prepared: Vec<Prepared> = records.iter().cloned().map(Prepared::new).collect();
        self.append_prepared(&prepared, mode, now)
    }

    /// [`Store::append`] for records prepared in advance (see [`Prepared`]).
    fn append_prepared(&self, records: &[Prepared], mode: AppendMode, now: Timestamp) -> Result<AppendReceipt>;

    /// One page of predictions matching `query`.
    fn predictions(&self, query: &EventQuery) -> Result<Page<StoredPrediction>>;

    /// One page of outcomes matching `query` (`kind` and `subject` filter by
    /// the outcome's prediction).
    fn outcomes(&self, query: &EventQuery) -> Result<Page<StoredOutcome>>;

    /// Record counts per workspace, plugin and kind, with predictions that
    /// have no outcome yet.
    fn counts(&self, workspace: Option<&WorkspaceId>) -> Result<Vec<CountRow>>;

    /// One state document of a plugin in a workspace.
    fn get_state(&self, key: &StateKey) -> Result<Option<StateDoc>>;

    /// Writes a state document if its current version is what `expect` says;
    /// returns the new version. Otherwise fails with [`StoreError::VersionConflict`].
    fn put_state(&self, key: &StateKey, value: &[u8], expect: Expect, now: Timestamp) -> Result<u64>;

    /// Deletes a state document if its current version is what `expect` says.
    fn delete_state(&self, key: &StateKey, expect: Expect) -> Result<()>;

    /// State documents of a plugin in a workspace whose key starts with
    /// `prefix`, in key order, after the key `after`, at most `limit`.
    fn scan_state(
        &self,
        plugin: &PluginName,
        workspace: &WorkspaceId,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, StateDoc)>>;

    /// Records the start of a job run. Fails with [`StoreError::SlotTaken`]
    /// if this slot and attempt were already started by anyone.
    fn start_job_run(&self, run: &NewJobRun) -> Result<JobRun>;

    /// Records how a run ended.
    fn finish_job_run(
        &self,
        id: i64,
        status: JobStatus,
        report: Option<&serde_json::Value>,
        error: Option<&str>,
        now: Timestamp,
    ) -> Result<JobRun>;

    /// Job runs, newest first.
    fn job_runs(&self, query: &JobRunQuery) -> Result<Vec<JobRun>>;

    /// Takes the lease `name` for `holder` if it is free, expired, or already
    /// `holder`'s; `None` if someone else holds it.
    fn acquire_lease(&self, name: &str, holder: &str, ttl_ms: u64, now: Timestamp) -> Result<Option<Lease>>;

    /// Extends a lease still held; `None` if it was lost (expired or taken).
    fn renew_lease(&self, lease: &Lease, ttl_ms: u64, now: Timestamp) -> Result<Option<Lease>>;

    /// Gives a lease up, if still held.
    fn release_lease(&self, lease: &Lease) -> Result<()>;

    /// Who holds `name` now, if anyone.
    fn current_lease(&self, name: &str, now: Timestamp) -> Result<Option<Lease>>;
}

/// Opens the store the configuration names (embedded SQLite by default).
pub fn open(config: &learnloop_config::Config) -> Result<Arc<dyn Store>> {
    match config.sqlite_path() {
        Some(path) => Ok(Arc::new(SqliteStore::open(
            &path,
            &SqliteOptions {
                synchronous_full: config.store.synchronous == learnloop_config::Synchronous::Full,
                busy_timeout_ms: config.store.busy_timeout_ms,
                readers: config.store.pool_size as usize,
            },
        )?)),
        None => Err(StoreError::Unsupported(format!(
            "store.url {:?}: PostgreSQL is not built into this version yet",
            config.store.url
        ))),
    }
}
