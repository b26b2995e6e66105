//! The store of record: everything learnloop knows, durably.
//!
//! One object-safe, synchronous trait, [`Store`], with an embedded SQLite
//! implementation ([`SqliteStore`]) and a PostgreSQL one (`PostgresStore`,
//! feature `postgres`, on by default) for several nodes on one database.
//! The trait is synchronous on purpose: plugins (including ones behind a C
//! ABI) and jobs read history as plain iterators, and async callers such as
//! the HTTP API move store calls onto blocking threads. Nothing SQLite-specific
//! crosses the trait: no SQL, no rowids, no connection types.
//!
//! What the store promises, and the conformance suite in
//! `learnloop-test-support` (`store_conformance`) checks for every backend:
//! * appends are idempotent by client-chosen id: same id and same content is a
//!   duplicate (a no-op), same id and other content is a conflict;
//! * a batch is one transaction: after a crash either all of its accepted
//!   records are there or none;
//! * an acknowledged append survives `kill -9` of the process;
//! * predictions and outcomes share one sequence number (`seq`), assigned in
//!   the order the store accepts them: no two records share one, duplicates
//!   and rejections consume none that anyone sees, and a record that becomes
//!   visible later never has a lower `seq` than one already visible, so
//!   [`Store::events`] after the last `seq` seen misses nothing;
//! * queries page by an opaque cursor and [`EventStream`] walks any history in
//!   bounded memory;
//! * plugin state documents have versions for compare-and-set;
//! * a [`Changes`] set (state, insights, alerts, improvements) commits all
//!   together or not at all ([`Store::commit`]);
//! * alerts are deduplicated while unacknowledged, improvements are numbered
//!   per target and move only along their lifecycle, and nothing addressed
//!   by workspace reaches another workspace's alerts or improvements;
//! * job runs and leases give the scheduler exactly-once slots and one leader.

#![deny(missing_docs)]

mod common;
#[cfg(feature = "postgres")]
mod copy;
mod error;
mod outbox;
#[cfg(feature = "postgres")]
pub mod pg_test;
#[cfg(feature = "postgres")]
pub mod pg_tls;
#[cfg(feature = "postgres")]
mod postgres;
mod rows;
mod sqlite;
mod stream;
mod types;

use std::sync::Arc;

use learnloop_core::{
    Alert, ApiKey, Delivery, Improvement, ImprovementStatus, Insight, JobRun, JobStatus, Notification, PluginName,
    Record, Timestamp, WorkspaceId,
};

#[cfg(feature = "postgres")]
pub use copy::{CopyOptions, TableCopy, copy_sqlite_to_postgres};
pub use error::{Rejection, StoreError};
pub use learnloop_core::columns::{ColumnSpec, PredictionColumns};
pub use outbox::{DeliveryQuery, DeliveryResult, OutboxStats};
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
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

    /// Predictions and outcomes of `plugin` in `workspace` with a `seq`
    /// greater than `after_seq`, merged in `seq` order (the order the store
    /// accepted them), at most `limit` (clamped to 1..=10,000).
    ///
    /// Pass the last event's `seq` as the next `after_seq` to continue; 0
    /// starts at the beginning. Both record types are read from one snapshot,
    /// so a page never skips a record that committed together with one it
    /// contains.
    fn events(&self, workspace: &WorkspaceId, plugin: &PluginName, after_seq: i64, limit: usize) -> Result<Vec<Event>>;

    /// The highest `seq` of any stored prediction or outcome; 0 when empty.
    fn max_seq(&self) -> Result<i64>;

    /// The workspaces that have predictions of `plugin`, sorted, each once.
    fn workspaces(&self, plugin: &PluginName) -> Result<Vec<WorkspaceId>>;

    /// One page of predictions matching `query`.
    fn predictions(&self, query: &EventQuery) -> Result<Page<StoredPrediction>>;

    /// One page of outcomes matching `query` (`kind` and `subject` filter by
    /// the outcome's prediction).
    fn outcomes(&self, query: &EventQuery) -> Result<Page<StoredOutcome>>;

    /// One page of predictions matching `query` as columns (at most
    /// [`ColumnSpec::MAX_ROWS`] rows; `query.limit` may go up to that), with
    /// the payload fields and first outcomes `spec` asks for. Same rows,
    /// order and cursors as [`Store::predictions`]; features are decoded
    /// from their stored text straight into columns.
    fn prediction_columns(&self, query: &EventQuery, spec: &ColumnSpec) -> Result<PredictionColumns>;

    /// Record counts per workspace, plugin and kind, with predictions that
    /// have no outcome yet.
    fn counts(&self, workspace: Option<&WorkspaceId>) -> Result<Vec<CountRow>>;

    /// Predictions and outcomes of `workspace` per UTC day of their event
    /// time, for event times in `[from, until)`, oldest day first; days
    /// with no record are left out (the dashboard's events-per-day chart).
    fn daily_counts(&self, workspace: &WorkspaceId, from: Timestamp, until: Timestamp) -> Result<Vec<DailyCount>>;

    /// One state document of a plugin in a workspace.
    fn get_state(&self, key: &StateKey) -> Result<Option<StateDoc>>;

    /// Several state documents at once, in `keys`' order: what a batch of
    /// events needs, in one round trip where the backend has round trips.
    fn get_states(&self, keys: &[StateKey]) -> Result<Vec<Option<StateDoc>>> {
        keys.iter().map(|k| self.get_state(k)).collect()
    }

    /// Writes a state document if its current version is what `expect` says;
    /// returns the new version. Otherwise fails with [`StoreError::VersionConflict`].
    ///
    /// A one-item [`Store::commit`].
    fn put_state(&self, key: &StateKey, value: &[u8], expect: Expect, now: Timestamp) -> Result<u64> {
        let changes = Changes {
            state: vec![StateChange { key: key.clone(), value: Some(value.to_vec()), expect }],
            ..Default::default()
        };
        let receipt = self.commit(&changes, now)?;
        receipt
            .state
            .first()
            .copied()
            .flatten()
            .ok_or_else(|| StoreError::Backend("commit returned no version for a write".into()))
    }

    /// Deletes a state document if its current version is what `expect` says
    /// (deleting a missing document with [`Expect::Any`] or [`Expect::Absent`]
    /// is a no-op). Otherwise fails with [`StoreError::VersionConflict`].
    ///
    /// A one-item [`Store::commit`].
    fn delete_state(&self, key: &StateKey, expect: Expect) -> Result<()> {
        let changes =
            Changes { state: vec![StateChange { key: key.clone(), value: None, expect }], ..Default::default() };
        self.commit(&changes, Timestamp::now()).map(|_| ())
    }

    /// Applies a change set in one transaction: all of it or none of it.
    ///
    /// First [`Changes::validate`]: a failure is [`StoreError::Invalid`]
    /// naming the item and field. Then, in order: each state change, whose
    /// `expect` must hold (else [`StoreError::VersionConflict`] naming the
    /// key); each insight; each alert, deduplicated into the unacknowledged
    /// alert with the same workspace, plugin and `dedup_key` if there is one
    /// (occurrences + 1, `last_seen_at = now`, the higher severity, the newest
    /// message and data); each improvement, as
    /// [`ImprovementStatus::Proposed`] with version 1 + the highest version of
    /// its workspace, plugin and target. On any error nothing is stored.
    /// `now` is the time of every write.
    fn commit(&self, changes: &Changes, now: Timestamp) -> Result<CommitReceipt>;

    /// Insights matching `query`, newest (`created_at`) first.
    fn insights(&self, query: &InsightQuery) -> Result<Vec<Insight>>;

    /// Alerts matching `query`, most recently raised (`last_seen_at`) first.
    fn alerts(&self, query: &AlertQuery) -> Result<Vec<Alert>>;

    /// Marks the alert `id` of `workspace` acknowledged at `now` and returns
    /// it; the next alert with its `dedup_key` starts a new alert.
    /// Acknowledging twice keeps the first time. [`StoreError::NotFound`] if
    /// `workspace` has no alert `id` (even if another workspace does).
    fn acknowledge_alert(&self, workspace: &WorkspaceId, id: i64, now: Timestamp) -> Result<Alert>;

    /// Improvements matching `query`, newest (`created_at`) first.
    fn improvements(&self, query: &ImprovementQuery) -> Result<Vec<Improvement>>;

    /// The improvement `id` of `workspace`; [`StoreError::NotFound`] if
    /// `workspace` has none with that id (even if another workspace does).
    fn improvement(&self, workspace: &WorkspaceId, id: i64) -> Result<Improvement>;

    /// Moves the improvement `id` of `workspace` to `to`, atomically, if
    /// [`ImprovementStatus::can_become`] allows it (else
    /// [`StoreError::Invalid`] naming both statuses, nothing changed);
    /// `backtest`, if given, replaces the stored backtest result. Sets
    /// `updated_at = now` and returns the updated improvement.
    /// [`StoreError::NotFound`] as for [`Store::improvement`].
    fn transition_improvement(
        &self,
        workspace: &WorkspaceId,
        id: i64,
        to: ImprovementStatus,
        backtest: Option<&serde_json::Value>,
        now: Timestamp,
    ) -> Result<Improvement>;

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

    /// Stores a new API key (its hash). Admin keys have no workspace;
    /// reader and writer keys have exactly one.
    fn create_api_key(&self, key: &NewApiKey) -> Result<ApiKey>;

    /// The active (not revoked) key with this SHA-256, if any.
    fn api_key_by_hash(&self, hash: &[u8; 32]) -> Result<Option<ApiKey>>;

    /// Every key, revoked ones included, oldest first.
    fn api_keys(&self) -> Result<Vec<ApiKey>>;

    /// Revokes a key; revoking twice keeps the first time.
    fn revoke_api_key(&self, id: i64, now: Timestamp) -> Result<ApiKey>;

    /// Routes up to `limit` notifications not yet routed, oldest first, in
    /// one transaction: `route` names the destinations each goes to, a
    /// pending delivery due at `now` is made for each, and the notification
    /// is marked routed (with no destination, it is only marked). With a
    /// `fence`, nothing lands once that lease has changed hands. Returns
    /// how many notifications were routed.
    fn route_notifications(
        &self,
        limit: usize,
        route: &mut dyn FnMut(&Notification) -> Vec<String>,
        fence: Option<&Fence>,
        now: Timestamp,
    ) -> Result<usize>;

    /// Pending deliveries to `destination` due at `now`, earliest due first,
    /// at most `limit`.
    fn due_deliveries(&self, destination: &str, now: Timestamp, limit: usize) -> Result<Vec<Delivery>>;

    /// Records one attempt at delivery `id` (counted in `attempts`), if it
    /// is still pending: [`StoreError::Invalid`] if it was delivered or
    /// given up meanwhile, [`StoreError::Fenced`] if `fence` no longer holds.
    fn record_delivery(
        &self,
        id: i64,
        result: &DeliveryResult,
        fence: Option<&Fence>,
        now: Timestamp,
    ) -> Result<Delivery>;

    /// Deliveries matching `query`, newest first.
    fn deliveries(&self, query: &DeliveryQuery) -> Result<Vec<Delivery>>;

    /// Puts delivery `id` back to pending, due at `now`, with its attempts
    /// reset (a dead one gets its full number of attempts again; a pending
    /// one is due at once). [`StoreError::Invalid`] if it was delivered.
    fn retry_delivery(&self, id: i64, now: Timestamp) -> Result<Delivery>;

    /// The outbox in numbers.
    fn outbox_stats(&self) -> Result<OutboxStats>;
}

/// How to open a store, besides its URL: the settings of `[store]` that
/// the backends use. (The store does not read the config itself, so that it
/// depends on no config schema; `learnloop-services` builds this from it.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// SQLite: `synchronous = FULL` (every commit fsynced) rather than `NORMAL`.
    pub synchronous_full: bool,
    /// SQLite: how long a writer waits for another process's write lock, in milliseconds.
    pub busy_timeout_ms: u64,
    /// Connections in the pool (PostgreSQL) or readers kept open (SQLite).
    pub pool_size: usize,
}

impl Default for StoreOptions {
    /// The defaults of `[store]`.
    fn default() -> Self {
        StoreOptions { synchronous_full: true, busy_timeout_ms: 10_000, pool_size: 8 }
    }
}

/// The SQLite file a store URL names (`sqlite:PATH` or `sqlite://PATH`), or
/// `None` for any other URL (PostgreSQL).
pub fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    url.strip_prefix("sqlite:").map(|p| std::path::PathBuf::from(p.trim_start_matches("//")))
}

/// Opens the store at `url`: `sqlite:PATH` for an SQLite file (created
/// when absent), anything else as a PostgreSQL URL (`postgres://...`, with
/// libpq's `sslmode` and `sslrootcert`).
pub fn open(url: &str, options: &StoreOptions) -> Result<Arc<dyn Store>> {
    match sqlite_path(url) {
        Some(path) => Ok(Arc::new(SqliteStore::open(
            &path,
            &SqliteOptions {
                synchronous_full: options.synchronous_full,
                busy_timeout_ms: options.busy_timeout_ms,
                readers: options.pool_size,
            },
        )?)),
        #[cfg(feature = "postgres")]
        None => Ok(Arc::new(PostgresStore::open(url, options.pool_size)?)),
        #[cfg(not(feature = "postgres"))]
        None => Err(StoreError::Unsupported(format!(
            "store.url {url:?}: this build has no PostgreSQL support (feature `postgres` of learnloop-store)"
        ))),
    }
}

/// Checks a store URL (as [`open`] reads it) without connecting or
/// creating anything (`learnloop config check`): a PostgreSQL URL must
/// parse, and this build must support it; an SQLite path must not be a
/// directory.
pub fn check_url(url: &str) -> std::result::Result<(), String> {
    match sqlite_path(url) {
        Some(path) if path.is_dir() => Err(format!("{} is a directory, not an SQLite file", path.display())),
        Some(_) => Ok(()),
        #[cfg(feature = "postgres")]
        None => url.parse::<::postgres::Config>().map(|_| ()).map_err(|e| format!("not a valid PostgreSQL URL: {e}")),
        #[cfg(not(feature = "postgres"))]
        None => Err("this build has no PostgreSQL support (feature `postgres` of learnloop-store)".into()),
    }
}
