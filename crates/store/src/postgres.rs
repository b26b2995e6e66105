//! The store of record on PostgreSQL, for installations that outgrow one
//! machine: several API nodes and schedulers share one database.
//!
//! Same schema as SQLite, column for column (times are epoch microseconds in
//! `BIGINT`, JSON is text), so `learnloop migrate` copies rows unchanged.
//! Text that is compared or sorted uses the `"C"` collation, so keys sort by
//! bytes exactly as in SQLite (prefix scans and `workspaces` depend on it).
//!
//! Concurrency, where SQLite had one writer and PostgreSQL has many:
//! * `seq`: every append locks the one row of `seq_counter` (`FOR UPDATE`)
//!   until it commits, so appends that insert commit one after another in
//!   `seq` order: a reader paging by `seq` never skips a row that commits
//!   later with a smaller `seq`.
//! * state compare-and-set is a conditional `UPDATE`/`INSERT … ON CONFLICT`,
//!   alerts deduplicate with `INSERT … ON CONFLICT` on the open-alert index,
//!   improvement versions and leases are numbered under a row or advisory
//!   lock, and job slots are unique by index: no check-then-write races.
//!
//! The connection string is a libpq URL; `?options=-c%20search_path%3DNAME`
//! puts the tables in schema `NAME` (the tests give every store its own).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use ::postgres::types::ToSql;
use ::postgres::{Client, IsolationLevel, Row, Statement, Transaction};
use learnloop_core::{
    Alert, ApiKey, Delivery, DeliveryStatus, Improvement, ImprovementStatus, Insight, JobRun, JobStatus, NewAlert,
    NewImprovement, NewInsight, NewNotification, Notification, PluginName, Record, Timestamp, WorkspaceId,
};
use serde_json::Value;

use learnloop_core::columns::{ColumnBuilder, RawRow};

use crate::common::*;
use crate::types::list_limit;
use crate::*;

pub(crate) type Param = Box<dyn ToSql + Sync + Send>;

/// Schema migrations, applied in order, each once, under an advisory lock so
/// processes starting together do not race. Never edit a released one.
const MIGRATIONS: &[(i64, &str)] =
    &[(1, include_str!("schema/postgres/0001.sql")), (2, include_str!("schema/postgres/0002.sql"))];

/// The tables `learnloop migrate` copies, with their columns in the order
/// both schemas share; the first column is the key rows are copied in order of.
pub(crate) const TABLES: &[(&str, &str)] = &[
    ("predictions", PREDICTION_COLUMNS_ALL),
    ("outcomes", OUTCOME_COLUMNS_ALL),
    ("plugin_state", "plugin, workspace, key, value, version, updated_at"),
    ("job_runs", JOB_RUN_COLUMNS),
    ("leases", "name, holder, token, expires_at"),
    ("insights", INSIGHT_COLUMNS),
    ("alerts", ALERT_COLUMNS),
    (
        "improvements",
        "id, workspace, plugin, target, version, status, params, evidence, metric, expected_gain, backtest, history, created_at, updated_at",
    ),
    ("api_keys", "id, name, prefix, hash, workspace, role, created_at, revoked_at"),
    (
        "notifications",
        "id, uid, workspace, plugin, event, severity, subject, summary, dedup_key, link, data, occurred_at, routed",
    ),
    (
        "deliveries",
        "id, notification_id, destination, status, attempts, next_attempt_at, last_error, created_at, finished_at",
    ),
];

const PREDICTION_COLUMNS_ALL: &str = "seq, workspace, id, plugin, subject, kind, value, label, confidence, features, payload, event_time, ingested_at, content_hash";
const OUTCOME_COLUMNS_ALL: &str = "seq, workspace, id, plugin, prediction_id, prediction_seq, subject, kind, value, label, success, quality, feedback, payload, event_time, ingested_at, content_hash";

/// The PostgreSQL implementation of [`Store`].
pub struct PostgresStore {
    config: ::postgres::Config,
    /// `sslmode` and `sslrootcert` from the URL (see [`crate::pg_tls`]).
    tls_settings: crate::pg_tls::TlsSettings,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    pool: Mutex<Vec<Conn>>,
    pool_size: usize,
    /// Dropped after the pool (field order): see [`PostgresStore::keep_alive`].
    guard: Option<Box<dyn Send + Sync>>,
}

/// A pooled connection with its prepared statements (a statement is
/// prepared once per connection, then each use is a single round trip).
struct Conn {
    client: Client,
    cache: HashMap<String, Statement>,
}

impl Conn {
    /// `sql` prepared on this connection, once: later uses are one round
    /// trip with no parsing or planning.
    fn prepare_cached(&mut self, sql: &str) -> Result<Statement> {
        if let Some(s) = self.cache.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        self.cache.insert(sql.to_string(), s.clone());
        Ok(s)
    }
}

/// A transaction on a pooled connection, with its statement cache.
struct Tx<'a> {
    tx: Transaction<'a>,
    cache: &'a mut HashMap<String, Statement>,
}

impl Tx<'_> {
    fn prepare_cached(&mut self, sql: &str) -> Result<Statement> {
        if let Some(s) = self.cache.get(sql) {
            return Ok(s.clone());
        }
        let s = self.tx.prepare(sql)?;
        self.cache.insert(sql.to_string(), s.clone());
        Ok(s)
    }

    fn commit(self) -> Result<()> {
        Ok(self.tx.commit()?)
    }
}

impl<'a> std::ops::Deref for Tx<'a> {
    type Target = Transaction<'a>;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl std::ops::DerefMut for Tx<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl From<::postgres::Error> for StoreError {
    fn from(e: ::postgres::Error) -> Self {
        // The server's message (and detail) is what says what went wrong.
        match e.as_db_error() {
            // 53100 disk_full (a full tablespace volume, or a temp file
            // that could not be written).
            Some(db) if db.code() == &::postgres::error::SqlState::DISK_FULL => {
                StoreError::OutOfSpace(format!("{} ({})", db.message(), db.code().code()))
            }
            Some(db) => StoreError::Backend(format!(
                "{} ({}){}",
                db.message(),
                db.code().code(),
                db.detail().map(|d| format!(": {d}")).unwrap_or_default()
            )),
            None => StoreError::Backend(e.to_string()),
        }
    }
}

fn is_unique_violation(e: &::postgres::Error) -> bool {
    e.code() == Some(&::postgres::error::SqlState::UNIQUE_VIOLATION)
}

/// A corrupt or foreign value in a column.
fn bad(what: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("unreadable value in the store: {what}"))
}

fn ts(micros: i64) -> Result<Timestamp> {
    Timestamp::from_micros(micros).ok_or_else(|| bad(format!("timestamp {micros} out of range")))
}

fn id<T: TryFrom<String, Error = learnloop_core::ValidationError>>(s: String) -> Result<T> {
    T::try_from(s).map_err(bad)
}

/// `&[&dyn ToSql]` view of owned parameters.
fn refs(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| &**p as &(dyn ToSql + Sync)).collect()
}

impl PostgresStore {
    /// Keeps `guard` alive as long as the store, dropping it after the
    /// store's connections (tests tie a throwaway schema to their store).
    pub fn keep_alive(mut self, guard: impl Send + Sync + 'static) -> Self {
        self.guard = Some(Box::new(guard));
        self
    }

    /// Connects to the database at `url` (`postgres://user@host:port/db`,
    /// with libpq's `sslmode` and `sslrootcert` for TLS: see
    /// [`crate::pg_tls`]), keeping up to `pool_size` connections open, and
    /// brings the schema up to date.
    pub fn open(url: &str, pool_size: usize) -> Result<Self> {
        let (url, tls_settings) = crate::pg_tls::split_url(url)?;
        let config: ::postgres::Config = url.parse().map_err(|e| StoreError::Invalid {
            field: "store.url".into(),
            message: format!("not a PostgreSQL URL: {e}"),
        })?;
        let tls = crate::pg_tls::connector(&tls_settings)?;
        let store =
            Self { config, tls_settings, tls, pool: Mutex::new(Vec::new()), pool_size: pool_size.max(1), guard: None };
        let mut conn = store.connect()?;
        migrate(&mut conn.client)?;
        store.give_back(conn);
        Ok(store)
    }

    fn connect(&self) -> Result<Conn> {
        let client = self.config.connect(self.tls.clone()).map_err(|e| {
            let target = self.config.get_hosts().first().map(|h| format!("{h:?}")).unwrap_or_default();
            // The cause chain has the TLS reason (unknown issuer, wrong name, ...).
            let mut text = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                let more = s.to_string();
                if !text.contains(&more) {
                    text.push_str(&format!(": {more}"));
                }
                source = s.source();
            }
            StoreError::Backend(format!(
                "cannot connect to PostgreSQL {target}: {}",
                crate::pg_tls::explain(&self.tls_settings, &text)
            ))
        })?;
        Ok(Conn { client, cache: HashMap::new() })
    }

    fn give_back(&self, conn: Conn) {
        let mut pool = lock(&self.pool);
        // A closed connection (the server went away) is dropped, not reused.
        if pool.len() < self.pool_size && !conn.client.is_closed() {
            pool.push(conn);
        }
    }

    /// Runs `f` on a pooled connection.
    fn with<T>(&self, f: impl FnOnce(&mut Conn) -> Result<T>) -> Result<T> {
        let popped = lock(&self.pool).pop();
        let mut conn = match popped {
            Some(c) => c,
            None => self.connect()?,
        };
        let out = f(&mut conn);
        self.give_back(conn);
        out
    }

    /// One transaction (read committed, or `isolation`), committed if `f`
    /// returns Ok, rolled back otherwise.
    fn transaction<T>(&self, isolation: Option<IsolationLevel>, f: impl FnOnce(&mut Tx<'_>) -> Result<T>) -> Result<T> {
        self.with(|c| {
            let mut b = c.client.build_transaction();
            if let Some(level) = isolation {
                b = b.isolation_level(level).read_only(true);
            }
            let mut tx = Tx { tx: b.start()?, cache: &mut c.cache };
            let out = f(&mut tx)?;
            tx.commit()?;
            Ok(out)
        })
    }

    fn write<T>(&self, f: impl FnOnce(&mut Tx<'_>) -> Result<T>) -> Result<T> {
        self.transaction(None, f)
    }

    /// Plain reads: one statement needs no transaction.
    fn read<T>(&self, f: impl FnOnce(&mut Client) -> Result<T>) -> Result<T> {
        self.with(|c| f(&mut c.client))
    }

    /// A plain read with `sql` as a prepared (cached) statement.
    fn read_prepared<T>(&self, sql: &str, f: impl FnOnce(&mut Client, &Statement) -> Result<T>) -> Result<T> {
        self.with(|c| {
            let stmt = c.prepare_cached(sql)?;
            f(&mut c.client, &stmt)
        })
    }

    fn query<T>(&self, sql: &str, params: &[Param], row: impl Fn(&Row) -> Result<T>) -> Result<Vec<T>> {
        self.read_prepared(sql, |c, stmt| c.query(stmt, &refs(params))?.iter().map(row).collect())
    }

    /// Copies rows of `table` exactly as given (used by `learnloop migrate`):
    /// rows whose key already exists are skipped, so a copy can resume.
    /// Returns how many were inserted.
    pub(crate) fn import_rows(&self, table: &str, columns: &str, rows: &[Vec<Param>]) -> Result<u64> {
        if rows.is_empty() {
            return Ok(0);
        }
        let width = rows[0].len();
        let mut sql = format!("INSERT INTO {table} ({columns}) VALUES ");
        for (r, _) in rows.iter().enumerate() {
            sql.push_str(if r == 0 { "(" } else { ", (" });
            for c in 0..width {
                if c > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!("${}", r * width + c + 1));
            }
            sql.push(')');
        }
        sql.push_str(" ON CONFLICT DO NOTHING");
        let params: Vec<&(dyn ToSql + Sync)> =
            rows.iter().flat_map(|r| r.iter().map(|p| &**p as &(dyn ToSql + Sync))).collect();
        self.write(|tx| Ok(tx.execute(sql.as_str(), &params)?))
    }

    /// After an import: identity sequences continue after the highest id,
    /// and the event sequence after the highest seq.
    pub(crate) fn after_import(&self) -> Result<()> {
        self.write(|tx| {
            for table in ["job_runs", "insights", "alerts", "improvements", "api_keys", "notifications", "deliveries"] {
                tx.execute(
                    &format!(
                        "SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
                    ),
                    &[],
                )?;
            }
            tx.execute(
                "UPDATE seq_counter SET last = GREATEST(last,
                    COALESCE((SELECT MAX(seq) FROM predictions), 0), COALESCE((SELECT MAX(seq) FROM outcomes), 0))",
                &[],
            )?;
            Ok(())
        })
    }

    /// The data types (`information_schema` names) of `columns` of `table`, in order.
    pub(crate) fn column_types(&self, table: &str, columns: &str) -> Result<Vec<String>> {
        let names: Vec<String> = columns.split(',').map(|c| c.trim().to_string()).collect();
        self.read(|c| {
            let rows = c.query(
                "SELECT column_name::text, data_type::text FROM information_schema.columns
                 WHERE table_schema = current_schema() AND table_name = $1",
                &[&table],
            )?;
            let types: std::collections::HashMap<String, String> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
            names
                .iter()
                .map(|n| {
                    types
                        .get(n)
                        .cloned()
                        .ok_or_else(|| StoreError::Backend(format!("{table}.{n}: no such column in the target")))
                })
                .collect()
        })
    }

    /// Rows in `table`.
    pub(crate) fn count_rows(&self, table: &str) -> Result<i64> {
        self.read(|c| Ok(c.query_one(&format!("SELECT COUNT(*) FROM {table}"), &[])?.get(0)))
    }
}

fn migrate(c: &mut Client) -> Result<()> {
    let mut tx = c.transaction()?;
    // One migrator at a time per database (the key is arbitrary but fixed).
    tx.execute("SELECT pg_advisory_xact_lock(7346501990431)", &[])?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
    )?;
    let current: i64 = tx.query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[])?.get(0);
    let latest = MIGRATIONS.last().map(|m| m.0).unwrap_or(0);
    if current > latest {
        return Err(StoreError::SchemaTooNew { found: current, supported: latest });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        tx.batch_execute(sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
            &[version, &Timestamp::now().as_micros()],
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// What an append needs to know about a stored (or just inserted) prediction.
struct KnownPrediction {
    hash: Vec<u8>,
    event_time: i64,
    seq: i64,
    plugin: String,
    subject: String,
    kind: String,
}

/// Column arrays of the rows one append inserts, sent as one `unnest`.
#[derive(Default)]
struct PredictionRows<'a> {
    seq: Vec<i64>,
    workspace: Vec<&'a str>,
    id: Vec<&'a str>,
    plugin: Vec<&'a str>,
    subject: Vec<&'a str>,
    kind: Vec<&'a str>,
    value: Vec<Option<f64>>,
    label: Vec<Option<&'a str>>,
    confidence: Vec<Option<f64>>,
    features: Vec<Option<&'a str>>,
    payload: Vec<Option<&'a str>>,
    event_time: Vec<i64>,
    hash: Vec<&'a [u8]>,
}

#[derive(Default)]
struct OutcomeRows<'a> {
    seq: Vec<i64>,
    workspace: Vec<&'a str>,
    id: Vec<&'a str>,
    plugin: Vec<&'a str>,
    prediction_id: Vec<&'a str>,
    prediction_seq: Vec<i64>,
    subject: Vec<String>,
    kind: Vec<String>,
    value: Vec<Option<f64>>,
    label: Vec<Option<&'a str>>,
    success: Vec<Option<bool>>,
    quality: Vec<Option<f64>>,
    feedback: Vec<Option<&'a str>>,
    payload: Vec<Option<&'a str>>,
    event_time: Vec<i64>,
    hash: Vec<&'a [u8]>,
}

/// Appends a batch with a fixed number of round trips, whatever its size:
/// one query for the stored predictions and outcomes it names, the
/// decisions (insert, duplicate, conflict, rejection) in memory in batch
/// order, exactly as one-by-one inserts would decide them, then one
/// multi-row insert per table. Correct because the caller holds the
/// `seq_counter` row lock: no other append runs between the lookup and the
/// insert. Returns the receipt and the last seq used.
fn append_batch(
    tx: &mut Tx<'_>,
    records: &[Prepared],
    mode: AppendMode,
    now: Timestamp,
    start: i64,
) -> Result<(AppendReceipt, i64)> {
    // Every (workspace, id) of a prediction the batch names, as a prediction
    // or as an outcome's prediction; and every outcome's (workspace, id).
    let (mut pw, mut pi, mut ow, mut oi) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for prep in records {
        match prep.record() {
            Record::Prediction(p) => {
                pw.push(p.workspace.as_str());
                pi.push(p.id.as_str());
            }
            Record::Outcome(o) => {
                pw.push(o.workspace.as_str());
                pi.push(o.prediction_id.as_str());
                ow.push(o.workspace.as_str());
                oi.push(o.id.as_str());
            }
        }
    }
    let mut predictions: HashMap<(String, String), KnownPrediction> = HashMap::new();
    let stmt = tx.prepare_cached(
        "SELECT p.workspace, p.id, p.content_hash, p.event_time, p.seq, p.plugin, p.subject, p.kind
         FROM predictions p JOIN (SELECT DISTINCT w, i FROM unnest($1::text[], $2::text[]) AS k(w, i)) k
           ON p.workspace = k.w AND p.id = k.i",
    )?;
    for r in tx.query(&stmt, &[&pw, &pi])? {
        predictions.insert(
            (r.get(0), r.get(1)),
            KnownPrediction {
                hash: r.get(2),
                event_time: r.get(3),
                seq: r.get(4),
                plugin: r.get(5),
                subject: r.get(6),
                kind: r.get(7),
            },
        );
    }
    let mut outcomes: HashMap<(String, String), (Vec<u8>, i64)> = HashMap::new();
    if !ow.is_empty() {
        let stmt = tx.prepare_cached(
            "SELECT o.workspace, o.id, o.content_hash, o.event_time
             FROM outcomes o JOIN (SELECT DISTINCT w, i FROM unnest($1::text[], $2::text[]) AS k(w, i)) k
               ON o.workspace = k.w AND o.id = k.i",
        )?;
        for r in tx.query(&stmt, &[&ow, &oi])? {
            outcomes.insert((r.get(0), r.get(1)), (r.get(2), r.get(3)));
        }
    }

    let mut receipt = AppendReceipt { items: Vec::with_capacity(records.len()), ..Default::default() };
    let (mut prows, mut orows) = (PredictionRows::default(), OutcomeRows::default());
    let mut seq = start;
    for (index, prep) in records.iter().enumerate() {
        let record = prep.record();
        let status = match record {
            Record::Prediction(p) => {
                let key = (p.workspace.to_string(), p.id.to_string());
                match predictions.get(&key) {
                    Some(known) => {
                        duplicate_or_conflict(Some((known.hash.clone(), known.event_time)), &prep.hash, p.event_time)?
                    }
                    None => {
                        seq += 1;
                        let event_time = p.event_time.unwrap_or(now).as_micros();
                        prows.seq.push(seq);
                        prows.workspace.push(p.workspace.as_str());
                        prows.id.push(p.id.as_str());
                        prows.plugin.push(p.plugin.as_str());
                        prows.subject.push(&p.subject);
                        prows.kind.push(&p.kind);
                        prows.value.push(p.value);
                        prows.label.push(p.label.as_deref());
                        prows.confidence.push(p.confidence);
                        prows.features.push(prep.features.as_deref());
                        prows.payload.push(prep.payload.as_deref());
                        prows.event_time.push(event_time);
                        prows.hash.push(&prep.hash);
                        predictions.insert(
                            key,
                            KnownPrediction {
                                hash: prep.hash.to_vec(),
                                event_time,
                                seq,
                                plugin: p.plugin.to_string(),
                                subject: p.subject.clone(),
                                kind: p.kind.clone(),
                            },
                        );
                        ItemStatus::Inserted
                    }
                }
            }
            Record::Outcome(o) => match predictions.get(&(o.workspace.to_string(), o.prediction_id.to_string())) {
                None => ItemStatus::Rejected(Rejection::UnknownPrediction { prediction_id: o.prediction_id.clone() }),
                Some(known) if known.plugin != o.plugin.as_str() => {
                    ItemStatus::Rejected(Rejection::PluginMismatch { prediction_plugin: known.plugin.clone() })
                }
                Some(known) => {
                    let key = (o.workspace.to_string(), o.id.to_string());
                    match outcomes.get(&key) {
                        Some(stored) => duplicate_or_conflict(Some(stored.clone()), &prep.hash, o.event_time)?,
                        None => {
                            seq += 1;
                            let event_time = o.event_time.unwrap_or(now).as_micros();
                            orows.seq.push(seq);
                            orows.workspace.push(o.workspace.as_str());
                            orows.id.push(o.id.as_str());
                            orows.plugin.push(o.plugin.as_str());
                            orows.prediction_id.push(o.prediction_id.as_str());
                            orows.prediction_seq.push(known.seq);
                            orows.subject.push(known.subject.clone());
                            orows.kind.push(known.kind.clone());
                            orows.value.push(o.value);
                            orows.label.push(o.label.as_deref());
                            orows.success.push(o.success);
                            orows.quality.push(o.quality);
                            orows.feedback.push(o.feedback.as_deref());
                            orows.payload.push(prep.payload.as_deref());
                            orows.event_time.push(event_time);
                            orows.hash.push(&prep.hash);
                            outcomes.insert(key, (prep.hash.to_vec(), event_time));
                            ItemStatus::Inserted
                        }
                    }
                }
            },
        };
        match &status {
            ItemStatus::Inserted => receipt.inserted += 1,
            ItemStatus::Duplicate => receipt.duplicates += 1,
            ItemStatus::Rejected(reason) => {
                if mode == AppendMode::AllOrNothing {
                    return Err(StoreError::Rejected { index, id: record.id().clone(), reason: reason.clone() });
                }
                receipt.rejected += 1;
            }
        }
        receipt.items.push(status);
    }

    let ingested = now.as_micros();
    if !prows.seq.is_empty() {
        let stmt = tx.prepare_cached(
            "INSERT INTO predictions (seq, workspace, id, plugin, subject, kind, value, label, confidence, features, payload, event_time, ingested_at, content_hash)
             SELECT s, w, i, pl, su, k, v, l, c, f, pa, e, $13, h
             FROM unnest($1::int8[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::float8[], $8::text[],
                         $9::float8[], $10::text[], $11::text[], $12::int8[], $14::bytea[])
               AS t(s, w, i, pl, su, k, v, l, c, f, pa, e, h)",
        )?;
        let r = &prows;
        tx.execute(
            &stmt,
            &[
                &r.seq,
                &r.workspace,
                &r.id,
                &r.plugin,
                &r.subject,
                &r.kind,
                &r.value,
                &r.label,
                &r.confidence,
                &r.features,
                &r.payload,
                &r.event_time,
                &ingested,
                &r.hash,
            ],
        )?;
    }
    if !orows.seq.is_empty() {
        let stmt = tx.prepare_cached(
            "INSERT INTO outcomes (seq, workspace, id, plugin, prediction_id, prediction_seq, subject, kind, value, label, success, quality, feedback, payload, event_time, ingested_at, content_hash)
             SELECT s, w, i, pl, pid, ps, su, k, v, l, ok, q, fb, pa, e, $16, h
             FROM unnest($1::int8[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int8[], $7::text[], $8::text[],
                         $9::float8[], $10::text[], $11::bool[], $12::float8[], $13::text[], $14::text[], $15::int8[], $17::bytea[])
               AS t(s, w, i, pl, pid, ps, su, k, v, l, ok, q, fb, pa, e, h)",
        )?;
        let r = &orows;
        tx.execute(
            &stmt,
            &[
                &r.seq,
                &r.workspace,
                &r.id,
                &r.plugin,
                &r.prediction_id,
                &r.prediction_seq,
                &r.subject,
                &r.kind,
                &r.value,
                &r.label,
                &r.success,
                &r.quality,
                &r.feedback,
                &r.payload,
                &r.event_time,
                &ingested,
                &r.hash,
            ],
        )?;
    }
    Ok((receipt, seq))
}

/// A WHERE clause of optional filters, ANDed, with its parameters.
#[derive(Default)]
struct Filter {
    sql: String,
    params: Vec<Param>,
}

impl Filter {
    fn push(&mut self, p: impl ToSql + Sync + Send + 'static) -> String {
        self.params.push(Box::new(p));
        format!("${}", self.params.len())
    }

    fn eq(&mut self, col: &str, v: Option<String>) {
        if let Some(v) = v {
            let n = self.push(v);
            self.sql.push_str(&format!(" AND {col} = {n}"));
        }
    }

    fn at_least(&mut self, col: &str, t: Option<Timestamp>) {
        if let Some(t) = t {
            let n = self.push(t.as_micros());
            self.sql.push_str(&format!(" AND {col} >= {n}"));
        }
    }

    /// ` WHERE ... ORDER BY {order} LIMIT $n` and the parameters.
    fn finish(mut self, order: &str, limit: i64) -> (String, Vec<Param>) {
        let n = self.push(limit);
        (format!(" WHERE TRUE{} ORDER BY {order} LIMIT {n}", self.sql), self.params)
    }
}

/// The WHERE clause shared by prediction and outcome queries.
fn event_filter(q: &EventQuery, outcomes: bool, max_limit: usize) -> Result<(String, Vec<Param>)> {
    let mut f = Filter::default();
    f.eq("workspace", q.workspace.as_ref().map(|w| w.to_string()));
    f.eq("plugin", q.plugin.as_ref().map(|p| p.to_string()));
    f.eq("kind", q.kind.clone());
    f.eq("subject", q.subject.clone());
    f.eq("id", q.id.as_ref().map(|i| i.to_string()));
    if let Some(pid) = &q.prediction_id {
        if !outcomes {
            return Err(StoreError::Invalid { field: "prediction_id".into(), message: "filters outcomes only".into() });
        }
        let ws = q.workspace.as_ref().ok_or_else(|| StoreError::Invalid {
            field: "prediction_id".into(),
            message: "needs a workspace (prediction ids are unique per workspace)".into(),
        })?;
        let w = f.push(ws.to_string());
        let p = f.push(pid.to_string());
        f.sql.push_str(&format!(
            " AND prediction_seq = (SELECT seq FROM predictions WHERE workspace = {w} AND id = {p})"
        ));
    }
    if let Some(from) = effective_from(q) {
        let n = f.push(from);
        f.sql.push_str(&format!(" AND event_time >= {n}"));
    }
    if let Some(until) = q.until {
        let n = f.push(until.as_micros());
        f.sql.push_str(&format!(" AND event_time < {n}"));
    }
    if let Some(c) = q.after {
        match q.order {
            Order::Ingestion => {
                let n = f.push(c.seq);
                f.sql.push_str(&format!(" AND seq > {n}"));
            }
            Order::EventTime => {
                let t = f.push(c.time);
                let s = f.push(c.seq);
                f.sql.push_str(&format!(" AND (event_time, seq) > ({t}, {s})"));
            }
        }
    }
    let order = match q.order {
        Order::Ingestion => "seq",
        Order::EventTime => "event_time, seq",
    };
    Ok(f.finish(order, q.limit.clamp(1, max_limit) as i64 + 1))
}

// The row mappers are shared with SQLite (`rows.rs`).
use crate::rows;
use crate::rows::{
    alert as alert_row, api_key as api_key_row, improvement as improvement_row, insight as insight_row,
    job_run as job_run_row, lease as lease_row, outcome as outcome_row, prediction as prediction_row,
};

/// Writes (`Some`) or deletes (`None`) one state document if `expect`
/// holds; the new version, `None` after a delete. Each case is one
/// conditional statement, so two writers racing on a key cannot both win.
fn apply_state(
    tx: &mut Tx<'_>,
    key: &StateKey,
    value: Option<&[u8]>,
    expect: Expect,
    now: Timestamp,
) -> Result<Option<u64>> {
    // Prepared once per connection: a commit of many documents is one
    // round trip per document, with no parsing or planning.
    const UPSERT: &str =
        "INSERT INTO plugin_state (plugin, workspace, key, value, version, updated_at) VALUES ($1, $2, $3, $4, 1, $5)
         ON CONFLICT (plugin, workspace, key) DO UPDATE
         SET value = excluded.value, version = plugin_state.version + 1, updated_at = excluded.updated_at
         RETURNING version";
    const CREATE: &str =
        "INSERT INTO plugin_state (plugin, workspace, key, value, version, updated_at) VALUES ($1, $2, $3, $4, 1, $5)
         ON CONFLICT (plugin, workspace, key) DO NOTHING RETURNING version";
    const UPDATE: &str = "UPDATE plugin_state SET value = $4, version = version + 1, updated_at = $5
         WHERE plugin = $1 AND workspace = $2 AND key = $3 AND version = $6 RETURNING version";
    const DELETE: &str = "DELETE FROM plugin_state WHERE plugin = $1 AND workspace = $2 AND key = $3";
    const DELETE_AT: &str =
        "DELETE FROM plugin_state WHERE plugin = $1 AND workspace = $2 AND key = $3 AND version = $4";
    const VERSION: &str = "SELECT version FROM plugin_state WHERE plugin = $1 AND workspace = $2 AND key = $3";
    let (p, w, k) = (key.plugin.as_str(), key.workspace.as_str(), key.key.as_str());
    let micros = now.as_micros();
    let version = |r: Row| Some(r.get::<_, i64>(0) as u64);
    let done: Option<Option<u64>> = match (value, expect) {
        (Some(v), Expect::Any) => {
            let st = tx.prepare_cached(UPSERT)?;
            Some(version(tx.query_one(&st, &[&p, &w, &k, &v, &micros])?))
        }
        (Some(v), Expect::Absent) => {
            let st = tx.prepare_cached(CREATE)?;
            tx.query_opt(&st, &[&p, &w, &k, &v, &micros])?.map(version)
        }
        (Some(v), Expect::Version(n)) => {
            let st = tx.prepare_cached(UPDATE)?;
            tx.query_opt(&st, &[&p, &w, &k, &v, &micros, &(n as i64)])?.map(version)
        }
        (None, Expect::Any) => {
            let st = tx.prepare_cached(DELETE)?;
            tx.execute(&st, &[&p, &w, &k])?;
            Some(None)
        }
        (None, Expect::Absent) => None,
        (None, Expect::Version(n)) => {
            let st = tx.prepare_cached(DELETE_AT)?;
            (tx.execute(&st, &[&p, &w, &k, &(n as i64)])? == 1).then_some(None)
        }
    };
    if let Some(done) = done {
        return Ok(done);
    }
    let st = tx.prepare_cached(VERSION)?;
    let current: Option<i64> = tx.query_opt(&st, &[&p, &w, &k])?.map(|r| r.get(0));
    expect_matches(key, expect, current.map(|v| v as u64))?;
    // Only "delete, expecting absence" of a missing document gets here.
    Ok(None)
}

fn insert_insight(tx: &mut Tx<'_>, i: &NewInsight, now: Timestamp) -> Result<i64> {
    let stmt = tx.prepare_cached(
        "INSERT INTO insights (workspace, plugin, kind, title, detail, confidence, impact, data, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
    )?;
    Ok(tx
        .query_one(
            &stmt,
            &[
                &i.workspace.as_str(),
                &i.plugin.as_str(),
                &i.kind,
                &i.title,
                &i.detail,
                &i.confidence,
                &i.impact,
                &i.data.to_string(),
                &now.as_micros(),
            ],
        )?
        .get(0))
}

/// Inserts an alert, or folds it into the open alert with its dedup key,
/// in one statement (two nodes raising the same alert at once fold too).
fn raise_alert(tx: &mut Tx<'_>, a: &NewAlert, now: Timestamp) -> Result<(i64, bool)> {
    let stmt = tx.prepare_cached(
        "INSERT INTO alerts (workspace, plugin, severity, kind, subject, message, dedup_key, data, created_at, last_seen_at, occurrences)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, 1)
         ON CONFLICT (workspace, plugin, dedup_key) WHERE acknowledged_at IS NULL DO UPDATE SET
             occurrences = alerts.occurrences + 1,
             last_seen_at = excluded.last_seen_at,
             severity = CASE
                 WHEN array_position(ARRAY['low', 'medium', 'high', 'critical'], excluded.severity)
                    > array_position(ARRAY['low', 'medium', 'high', 'critical'], alerts.severity)
                 THEN excluded.severity ELSE alerts.severity END,
             message = excluded.message,
             data = excluded.data
         RETURNING id, (xmax = 0) AS inserted",
    )?;
    let row = tx.query_one(
        &stmt,
        &[
            &a.workspace.as_str(),
            &a.plugin.as_str(),
            &severity_str(a.severity),
            &a.kind,
            &a.subject,
            &a.message,
            &a.dedup_key,
            &a.data.to_string(),
            &now.as_micros(),
        ],
    )?;
    // xmax is 0 on a row version an INSERT made, and set on one made by
    // the DO UPDATE branch.
    Ok((row.get(0), row.get(1)))
}

/// Puts a notification in the outbox.
fn insert_notification(tx: &mut Tx<'_>, n: &NewNotification, now: Timestamp) -> Result<i64> {
    let stmt = tx.prepare_cached(
        "INSERT INTO notifications (uid, workspace, plugin, event, severity, subject, summary, dedup_key, link, data, occurred_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
    )?;
    Ok(tx
        .query_one(
            &stmt,
            &[
                &crate::outbox::new_uid(),
                &n.workspace.as_ref().map(|w| w.as_str()),
                &n.plugin.as_str(),
                &n.event,
                &severity_str(n.severity),
                &n.subject,
                &n.summary,
                &n.dedup_key,
                &n.link,
                &n.data.to_string(),
                &now.as_micros(),
            ],
        )?
        .get(0))
}

fn get_delivery(c: &mut impl ::postgres::GenericClient, id: i64, lock: bool) -> Result<Delivery> {
    let lock = if lock { " FOR UPDATE OF d" } else { "" };
    c.query_opt(
        &format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN notifications n ON n.id = d.notification_id WHERE d.id = $1{lock}"
        ),
        &[&id],
    )?
    .map(|r| rows::delivery(&r))
    .transpose()?
    .ok_or_else(|| StoreError::NotFound(format!("delivery {id}")))
}

/// Inserts a proposed improvement as the next version of its target. An
/// advisory lock on the target serialises proposals for it across nodes.
fn propose_improvement(tx: &mut Tx<'_>, i: &NewImprovement, now: Timestamp) -> Result<(i64, u64)> {
    let (w, p, t) = (i.workspace.as_str(), i.plugin.as_str(), i.target.as_str());
    tx.execute("SELECT pg_advisory_xact_lock(hashtextextended($1 || chr(1) || $2 || chr(1) || $3, 0))", &[&w, &p, &t])?;
    let version: i64 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM improvements WHERE workspace = $1 AND plugin = $2 AND target = $3",
            &[&w, &p, &t],
        )?
        .get(0);
    let history = Value::Array(vec![history_entry(ImprovementStatus::Proposed, now, &Value::Null)]);
    let row = tx.query_one(
        "INSERT INTO improvements (workspace, plugin, target, version, status, params, evidence, metric, expected_gain, history, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) RETURNING id",
        &[
            &w,
            &p,
            &t,
            &version,
            &improvement_status_str(ImprovementStatus::Proposed),
            &i.params.to_string(),
            &i.evidence.to_string(),
            &i.metric,
            &i.expected_gain,
            &history.to_string(),
            &now.as_micros(),
        ],
    )?;
    Ok((row.get(0), version as u64))
}

fn get_improvement(
    c: &mut impl ::postgres::GenericClient,
    workspace: &WorkspaceId,
    id: i64,
    lock: bool,
) -> Result<Improvement> {
    let sql = format!(
        "SELECT {IMPROVEMENT_COLUMNS} FROM improvements WHERE id = $1 AND workspace = $2{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    c.query_opt(&sql, &[&id, &workspace.as_str()])?
        .map(|r| improvement_row(&r))
        .transpose()?
        .ok_or_else(|| StoreError::NotFound(format!("improvement {id} in workspace {workspace}")))
}

/// Moves an improvement (see [`Move`]); appends the move to its history.
/// The row is locked (`FOR UPDATE`): two nodes moving one improvement take
/// turns, and the second sees the first's status.
fn move_improvement(tx: &mut Tx<'_>, m: &Move<'_>, now: Timestamp) -> Result<Improvement> {
    let Move { workspace, id, from, to, backtest, note } = *m;
    let current = get_improvement(&mut **tx, workspace, id, true)?;
    check_transition(id, current.status, from, to)?;
    let mut history: Vec<Value> = current.history.iter().map(|e| history_entry(e.status, e.at, &e.note)).collect();
    history.push(history_entry(to, now, note));
    let row = tx.query_one(
        &format!(
            "UPDATE improvements SET status = $2, backtest = COALESCE($3, backtest), history = $4, updated_at = $5
             WHERE id = $1 RETURNING {IMPROVEMENT_COLUMNS}"
        ),
        &[
            &id,
            &improvement_status_str(to),
            &backtest.map(|b| b.to_string()),
            &Value::Array(history).to_string(),
            &now.as_micros(),
        ],
    )?;
    improvement_row(&row)
}

/// A change set's writes inside one PostgreSQL transaction.
impl ChangeWriter for Tx<'_> {
    fn lease_token(&mut self, lease: &str) -> Result<Option<i64>> {
        // FOR SHARE: a take-over (an UPDATE of this row) waits until this
        // commit is done, so the check holds until then.
        let st = self.prepare_cached("SELECT token FROM leases WHERE name = $1 FOR SHARE")?;
        Ok(self.query_opt(&st, &[&lease])?.map(|r| r.get(0)))
    }
    fn apply_state(
        &mut self,
        key: &StateKey,
        value: Option<&[u8]>,
        expect: Expect,
        now: Timestamp,
    ) -> Result<Option<u64>> {
        apply_state(self, key, value, expect, now)
    }
    fn insert_insight(&mut self, insight: &NewInsight, now: Timestamp) -> Result<i64> {
        insert_insight(self, insight, now)
    }
    fn raise_alert(&mut self, alert: &NewAlert, now: Timestamp) -> Result<(i64, bool)> {
        raise_alert(self, alert, now)
    }
    fn insert_notification(&mut self, n: &NewNotification, now: Timestamp) -> Result<i64> {
        insert_notification(self, n, now)
    }
    fn propose_improvement(&mut self, improvement: &NewImprovement, now: Timestamp) -> Result<(i64, u64)> {
        propose_improvement(self, improvement, now)
    }
    fn move_improvement(&mut self, m: &Move<'_>, now: Timestamp) -> Result<Improvement> {
        move_improvement(self, m, now)
    }
}

impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn append_prepared(&self, records: &[Prepared], mode: AppendMode, now: Timestamp) -> Result<AppendReceipt> {
        self.write(|tx| {
            // Held until commit: appends commit in the order they take seqs.
            let start: i64 = tx.query_one("SELECT last FROM seq_counter FOR UPDATE", &[])?.get(0);
            let (receipt, last) = append_batch(tx, records, mode, now, start)?;
            if last != start {
                tx.execute("UPDATE seq_counter SET last = $1", &[&last])?;
            }
            Ok(receipt)
        })
    }

    fn events(&self, workspace: &WorkspaceId, plugin: &PluginName, after_seq: i64, limit: usize) -> Result<Vec<Event>> {
        let limit = limit.clamp(1, EventQuery::MAX_LIMIT);
        let lim = limit as i64;
        // One snapshot for both tables, as in SQLite.
        self.transaction(Some(IsolationLevel::RepeatableRead), |tx| {
            let args: [&(dyn ToSql + Sync); 4] = [&plugin.as_str(), &workspace.as_str(), &after_seq, &lim];
            let stmt = tx.prepare_cached(&format!(
                "SELECT {PREDICTION_COLUMNS} FROM predictions WHERE plugin = $1 AND workspace = $2 AND seq > $3 ORDER BY seq LIMIT $4"
            ))?;
            let predictions = tx.query(&stmt, &args)?.iter().map(prediction_row).collect::<Result<Vec<_>>>()?;
            let stmt = tx.prepare_cached(&format!(
                "SELECT {OUTCOME_COLUMNS} FROM outcomes WHERE plugin = $1 AND workspace = $2 AND seq > $3 ORDER BY seq LIMIT $4"
            ))?;
            let outcomes = tx.query(&stmt, &args)?.iter().map(outcome_row).collect::<Result<Vec<_>>>()?;
            Ok(merge_events(predictions, outcomes, limit))
        })
    }

    fn max_seq(&self) -> Result<i64> {
        // The counter, not MAX(seq): it covers exactly the committed appends.
        self.read(|c| Ok(c.query_one("SELECT last FROM seq_counter", &[])?.get(0)))
    }

    fn workspaces(&self, plugin: &PluginName) -> Result<Vec<WorkspaceId>> {
        // A skip scan of predictions_by_plugin: one index seek per workspace.
        self.query(
            "WITH RECURSIVE w(workspace) AS (
                 SELECT MIN(workspace) FROM predictions WHERE plugin = $1
                 UNION ALL
                 SELECT (SELECT MIN(workspace) FROM predictions WHERE plugin = $1 AND workspace > w.workspace)
                 FROM w WHERE w.workspace IS NOT NULL
             )
             SELECT workspace FROM w WHERE workspace IS NOT NULL",
            &[Box::new(plugin.to_string())],
            |r| id(r.get(0)),
        )
    }

    fn predictions(&self, q: &EventQuery) -> Result<Page<StoredPrediction>> {
        let (clause, params) = event_filter(q, false, EventQuery::MAX_LIMIT)?;
        let items =
            self.query(&format!("SELECT {PREDICTION_COLUMNS} FROM predictions{clause}"), &params, prediction_row)?;
        Ok(paginate(items, q.limit, |p| Cursor { time: p.record.event_time.map_or(0, |t| t.as_micros()), seq: p.seq }))
    }

    fn outcomes(&self, q: &EventQuery) -> Result<Page<StoredOutcome>> {
        let (clause, params) = event_filter(q, true, EventQuery::MAX_LIMIT)?;
        let items = self.query(&format!("SELECT {OUTCOME_COLUMNS} FROM outcomes{clause}"), &params, outcome_row)?;
        Ok(paginate(items, q.limit, |o| Cursor { time: o.record.event_time.map_or(0, |t| t.as_micros()), seq: o.seq }))
    }

    fn prediction_columns(&self, q: &EventQuery, spec: &ColumnSpec) -> Result<PredictionColumns> {
        let (clause, params) = event_filter(q, false, ColumnSpec::MAX_ROWS)?;
        let sql = format!("SELECT {} FROM predictions{clause}", column_select(spec, "o.seq + 0"));
        let limit = q.limit.clamp(1, ColumnSpec::MAX_ROWS);
        self.read_prepared(&sql, |c, stmt| {
            let rows = c.query(stmt, &refs(&params))?;
            let mut b = ColumnBuilder::new(spec);
            let mut last = None;
            for r in &rows {
                if b.len() == limit {
                    return Ok(b.finish(last));
                }
                let raw = RawRow {
                    seq: r.get(0),
                    event_time: r.get(1),
                    kind: r.get(2),
                    value: r.get(3),
                    label: r.get(4),
                    features: r.get(5),
                    payload: r.get(6),
                    outcome_value: r.get(7),
                    outcome_label: r.get(8),
                };
                last = Some(Cursor { time: raw.event_time, seq: raw.seq });
                b.push_raw(raw).map_err(|e| StoreError::Backend(e.to_string()))?;
            }
            Ok(b.finish(None))
        })
    }

    fn counts(&self, workspace: Option<&WorkspaceId>) -> Result<Vec<CountRow>> {
        let filter = if workspace.is_some() { "WHERE workspace = $1" } else { "" };
        let pfilter = if workspace.is_some() { "AND p.workspace = $1" } else { "" };
        let params: Vec<Param> = workspace.map(|w| Box::new(w.to_string()) as Param).into_iter().collect();
        let queries = [
            format!("SELECT workspace, plugin, kind, COUNT(*) FROM predictions {filter} GROUP BY 1, 2, 3"),
            format!("SELECT workspace, plugin, kind, COUNT(*) FROM outcomes {filter} GROUP BY 1, 2, 3"),
            format!(
                "SELECT p.workspace, p.plugin, p.kind, COUNT(*) FROM predictions p
                 WHERE NOT EXISTS (SELECT 1 FROM outcomes o WHERE o.prediction_seq = p.seq) {pfilter}
                 GROUP BY 1, 2, 3"
            ),
        ];
        self.transaction(Some(IsolationLevel::RepeatableRead), |tx| {
            let mut rows: BTreeMap<(String, String, String), CountRow> = BTreeMap::new();
            for (i, sql) in queries.iter().enumerate() {
                for r in tx.query(sql.as_str(), &refs(&params))? {
                    let key: (String, String, String) = (r.get(0), r.get(1), r.get(2));
                    let n = r.get::<_, i64>(3) as u64;
                    let row = rows.entry(key.clone()).or_insert_with(|| CountRow {
                        workspace: key.0,
                        plugin: key.1,
                        kind: key.2,
                        predictions: 0,
                        outcomes: 0,
                        pending: 0,
                    });
                    match i {
                        0 => row.predictions = n,
                        1 => row.outcomes = n,
                        _ => row.pending = n,
                    }
                }
            }
            Ok(rows.into_values().collect())
        })
    }

    fn daily_counts(&self, workspace: &WorkspaceId, from: Timestamp, until: Timestamp) -> Result<Vec<DailyCount>> {
        let params: Vec<Param> =
            vec![Box::new(workspace.to_string()), Box::new(from.as_micros()), Box::new(until.as_micros())];
        self.transaction(Some(IsolationLevel::RepeatableRead), |tx| {
            let mut days = BTreeMap::new();
            for (i, table) in ["predictions", "outcomes"].iter().enumerate() {
                let sql = format!(
                    "SELECT div(event_time - mod(mod(event_time, 86400000000) + 86400000000, 86400000000), 86400000000)::BIGINT,
                            COUNT(*) FROM {table}
                     WHERE workspace = $1 AND event_time >= $2 AND event_time < $3 GROUP BY 1"
                );
                for r in tx.query(sql.as_str(), &refs(&params))? {
                    add_daily(&mut days, i, r.get::<_, i64>(0), r.get::<_, i64>(1));
                }
            }
            Ok(days.into_values().collect())
        })
    }

    fn get_state(&self, key: &StateKey) -> Result<Option<StateDoc>> {
        let sql =
            "SELECT value, version, updated_at FROM plugin_state WHERE plugin = $1 AND workspace = $2 AND key = $3";
        self.read_prepared(sql, |c, stmt| {
            c.query_opt(stmt, &[&key.plugin.as_str(), &key.workspace.as_str(), &key.key])?
                .map(|r| {
                    Ok(StateDoc { value: r.get(0), version: r.get::<_, i64>(1) as u64, updated_at: ts(r.get(2))? })
                })
                .transpose()
        })
    }

    fn get_states(&self, keys: &[StateKey]) -> Result<Vec<Option<StateDoc>>> {
        // One query per (plugin, workspace) present, each key once.
        let mut groups: BTreeMap<(&str, &str), Vec<&str>> = BTreeMap::new();
        for k in keys {
            groups.entry((k.plugin.as_str(), k.workspace.as_str())).or_default().push(k.key.as_str());
        }
        // One primary-key probe per key (a lateral join), not `key =
        // ANY($3)`: without fresh statistics (a table just bulk-loaded)
        // PostgreSQL plans ANY as a filter over every document of the
        // plugin, comparing each with the whole list, and a plain join as a
        // hash join over them all; both grow with the table, this does not
        // (LIMIT 1, true of a primary key, keeps the subquery a subquery).
        let sql = "SELECT s.key, s.value, s.version, s.updated_at FROM unnest($3::text[]) AS k(key)
                   CROSS JOIN LATERAL (SELECT key, value, version, updated_at FROM plugin_state
                                       WHERE plugin = $1 AND workspace = $2 AND key = k.key LIMIT 1) s";
        let mut found: BTreeMap<(&str, &str), HashMap<String, StateDoc>> = BTreeMap::new();
        for ((p, w), names) in groups {
            let rows = self.read_prepared(sql, |c, stmt| Ok(c.query(stmt, &[&p, &w, &names])?))?;
            let docs = found.entry((p, w)).or_default();
            for r in rows {
                docs.insert(
                    r.get(0),
                    StateDoc { value: r.get(1), version: r.get::<_, i64>(2) as u64, updated_at: ts(r.get(3))? },
                );
            }
        }
        Ok(keys
            .iter()
            .map(|k| found.get(&(k.plugin.as_str(), k.workspace.as_str())).and_then(|docs| docs.get(&k.key)).cloned())
            .collect())
    }

    fn commit(&self, changes: &Changes, now: Timestamp) -> Result<CommitReceipt> {
        changes.validate()?;
        self.write(|tx| commit_changes(tx, changes, now))
    }

    fn insights(&self, q: &InsightQuery) -> Result<Vec<Insight>> {
        let mut f = Filter::default();
        f.eq("workspace", q.workspace.as_ref().map(|w| w.to_string()));
        f.eq("plugin", q.plugin.as_ref().map(|p| p.to_string()));
        f.eq("kind", q.kind.clone());
        f.at_least("created_at", q.since);
        let (clause, params) = f.finish("created_at DESC, id DESC", list_limit(q.limit) as i64);
        self.query(&format!("SELECT {INSIGHT_COLUMNS} FROM insights{clause}"), &params, insight_row)
    }

    fn alerts(&self, q: &AlertQuery) -> Result<Vec<Alert>> {
        let mut f = Filter::default();
        f.eq("workspace", q.workspace.as_ref().map(|w| w.to_string()));
        f.eq("plugin", q.plugin.as_ref().map(|p| p.to_string()));
        f.at_least("last_seen_at", q.since);
        if !q.include_acknowledged {
            f.sql.push_str(" AND acknowledged_at IS NULL");
        }
        let (clause, params) = f.finish("last_seen_at DESC, id DESC", list_limit(q.limit) as i64);
        self.query(&format!("SELECT {ALERT_COLUMNS} FROM alerts{clause}"), &params, alert_row)
    }

    fn acknowledge_alert(&self, workspace: &WorkspaceId, id: i64, now: Timestamp) -> Result<Alert> {
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE alerts SET acknowledged_at = $3 WHERE id = $1 AND workspace = $2 AND acknowledged_at IS NULL",
                &[&id, &workspace.as_str(), &now.as_micros()],
            )?;
            let alert = tx
                .query_opt(
                    &format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1 AND workspace = $2"),
                    &[&id, &workspace.as_str()],
                )?
                .map(|r| alert_row(&r))
                .transpose()?
                .ok_or_else(|| StoreError::NotFound(format!("alert {id} in workspace {workspace}")))?;
            if changed > 0 {
                insert_notification(tx, &crate::outbox::alert_acknowledged(&alert), now)?;
            }
            Ok(alert)
        })
    }

    fn improvements(&self, q: &ImprovementQuery) -> Result<Vec<Improvement>> {
        let mut f = Filter::default();
        f.eq("workspace", q.workspace.as_ref().map(|w| w.to_string()));
        f.eq("plugin", q.plugin.as_ref().map(|p| p.to_string()));
        f.eq("target", q.target.clone());
        f.eq("status", q.status.map(|s| improvement_status_str(s).to_string()));
        let (clause, params) = f.finish("created_at DESC, id DESC", list_limit(q.limit) as i64);
        self.query(&format!("SELECT {IMPROVEMENT_COLUMNS} FROM improvements{clause}"), &params, improvement_row)
    }

    fn improvement(&self, workspace: &WorkspaceId, id: i64) -> Result<Improvement> {
        self.read(|c| get_improvement(c, workspace, id, false))
    }

    fn transition_improvement(
        &self,
        workspace: &WorkspaceId,
        id: i64,
        to: ImprovementStatus,
        backtest: Option<&Value>,
        now: Timestamp,
    ) -> Result<Improvement> {
        let m = Move { workspace, id, from: None, to, backtest, note: &Value::Null };
        self.write(|tx| {
            let moved = move_improvement(tx, &m, now)?;
            insert_notification(tx, &crate::outbox::improvement_moved(&moved), now)?;
            Ok(moved)
        })
    }

    fn scan_state(
        &self,
        plugin: &PluginName,
        workspace: &WorkspaceId,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, StateDoc)>> {
        // Keys never contain U+10FFFF (checked on write) and sort by bytes
        // (collation "C"), so prefix + U+10FFFF bounds every key with the prefix.
        let upper = format!("{prefix}{}", char::MAX);
        let start_after = after.is_some_and(|a| a >= prefix);
        let lower = if start_after { after.unwrap_or(prefix).to_string() } else { prefix.to_string() };
        let op = if start_after { ">" } else { ">=" };
        self.query(
            &format!(
                "SELECT key, value, version, updated_at FROM plugin_state
                 WHERE plugin = $1 AND workspace = $2 AND key {op} $3 AND key < $4 ORDER BY key LIMIT $5"
            ),
            &[
                Box::new(plugin.to_string()),
                Box::new(workspace.to_string()),
                Box::new(lower),
                Box::new(upper),
                Box::new(limit.clamp(1, 10_000) as i64),
            ],
            |r| {
                Ok((
                    r.get(0),
                    StateDoc { value: r.get(1), version: r.get::<_, i64>(2) as u64, updated_at: ts(r.get(3))? },
                ))
            },
        )
    }

    fn start_job_run(&self, run: &NewJobRun) -> Result<JobRun> {
        self.write(|tx| {
            let row = tx.query_opt(
                &format!(
                    "INSERT INTO job_runs (plugin, job, slot, attempt, runner, status, started_at)
                     VALUES ($1, $2, $3, $4, $5, 'running', $6)
                     ON CONFLICT (plugin, job, slot, attempt) WHERE slot IS NOT NULL DO NOTHING
                     RETURNING {JOB_RUN_COLUMNS}"
                ),
                &[&run.plugin.as_str(), &run.job, &run.slot, &(run.attempt as i64), &run.runner, &run.now.as_micros()],
            )?;
            match row {
                Some(r) => job_run_row(&r),
                None => Err(StoreError::SlotTaken {
                    plugin: run.plugin.to_string(),
                    job: run.job.clone(),
                    slot: run.slot.unwrap_or_default(),
                    attempt: run.attempt,
                }),
            }
        })
    }

    fn finish_job_run(
        &self,
        id: i64,
        status: JobStatus,
        report: Option<&Value>,
        error: Option<&str>,
        now: Timestamp,
    ) -> Result<JobRun> {
        if status == JobStatus::Running {
            return Err(StoreError::Invalid {
                field: "status".into(),
                message: "a finished run cannot be `running`".into(),
            });
        }
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE job_runs SET status = $2, finished_at = $3, report = $4, error = $5 WHERE id = $1 AND status = 'running'",
                &[&id, &status.as_str(), &now.as_micros(), &report.map(|r| r.to_string()), &error],
            )?;
            let run = tx
                .query_opt(&format!("SELECT {JOB_RUN_COLUMNS} FROM job_runs WHERE id = $1"), &[&id])?
                .map(|r| job_run_row(&r))
                .transpose()?
                .ok_or_else(|| StoreError::NotFound(format!("job run {id}")))?;
            if changed == 0 {
                return Err(StoreError::Invalid {
                    field: "id".into(),
                    message: format!("job run {id} already finished as {}", run.status.as_str()),
                });
            }
            if run.status == JobStatus::Failed {
                insert_notification(tx, &crate::outbox::job_failed(&run), now)?;
            }
            Ok(run)
        })
    }

    fn job_runs(&self, q: &JobRunQuery) -> Result<Vec<JobRun>> {
        let mut f = Filter::default();
        f.eq("plugin", q.plugin.as_ref().map(|p| p.to_string()));
        f.eq("job", q.job.clone());
        if let Some(s) = q.slot {
            let n = f.push(s);
            f.sql.push_str(&format!(" AND slot = {n}"));
        }
        let (clause, params) = f.finish("id DESC", list_limit(q.limit) as i64);
        self.query(&format!("SELECT {JOB_RUN_COLUMNS} FROM job_runs{clause}"), &params, job_run_row)
    }

    fn acquire_lease(&self, name: &str, holder: &str, ttl_ms: u64, now: Timestamp) -> Result<Option<Lease>> {
        let expires = now.add_micros(ttl_ms as i64 * 1000);
        self.write(|tx| {
            // A lapsed placeholder (token 0) if the lease never existed, then
            // the row lock: contenders for one lease take turns.
            tx.execute(
                "INSERT INTO leases (name, holder, token, expires_at) VALUES ($1, '', 0, 0) ON CONFLICT (name) DO NOTHING",
                &[&name],
            )?;
            let current =
                lease_row(&tx.query_one("SELECT name, holder, token, expires_at FROM leases WHERE name = $1 FOR UPDATE", &[&name])?)?;
            let token = if current.expires_at <= now {
                // A lapsed or released lease changes hands with a new token,
                // even back to its old holder.
                current.token + 1
            } else if current.holder == holder {
                current.token
            } else {
                return Ok(None);
            };
            tx.execute(
                "UPDATE leases SET holder = $2, token = $3, expires_at = $4 WHERE name = $1",
                &[&name, &holder, &token, &expires.as_micros()],
            )?;
            Ok(Some(Lease { name: name.to_string(), holder: holder.to_string(), token, expires_at: expires }))
        })
    }

    fn renew_lease(&self, lease: &Lease, ttl_ms: u64, now: Timestamp) -> Result<Option<Lease>> {
        let expires = now.add_micros(ttl_ms as i64 * 1000);
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE leases SET expires_at = $4 WHERE name = $1 AND holder = $2 AND token = $3 AND expires_at > $5",
                &[&lease.name, &lease.holder, &lease.token, &expires.as_micros(), &now.as_micros()],
            )?;
            Ok((changed == 1).then(|| Lease { expires_at: expires, ..lease.clone() }))
        })
    }

    fn release_lease(&self, lease: &Lease) -> Result<()> {
        self.write(|tx| {
            // Expire rather than delete, so the fencing token keeps growing.
            tx.execute(
                "UPDATE leases SET expires_at = 0 WHERE name = $1 AND holder = $2 AND token = $3",
                &[&lease.name, &lease.holder, &lease.token],
            )?;
            Ok(())
        })
    }

    fn current_lease(&self, name: &str, now: Timestamp) -> Result<Option<Lease>> {
        self.read(|c| {
            c.query_opt(
                "SELECT name, holder, token, expires_at FROM leases WHERE name = $1 AND expires_at > $2",
                &[&name, &now.as_micros()],
            )?
            .map(|r| lease_row(&r))
            .transpose()
        })
    }

    fn create_api_key(&self, key: &NewApiKey) -> Result<ApiKey> {
        key.validate()?;
        self.write(|tx| {
            let row = tx
                .query_one(
                    &format!(
                        "INSERT INTO api_keys (name, prefix, hash, workspace, role, created_at) VALUES ($1, $2, $3, $4, $5, $6)
                         RETURNING {API_KEY_COLUMNS}"
                    ),
                    &[
                        &key.name,
                        &key.prefix,
                        &&key.hash[..],
                        &key.workspace.as_ref().map(|w| w.to_string()),
                        &key.role.as_str(),
                        &key.now.as_micros(),
                    ],
                )
                .map_err(|e| {
                    if is_unique_violation(&e) {
                        StoreError::Invalid { field: "hash".into(), message: "a key with this hash already exists".into() }
                    } else {
                        e.into()
                    }
                })?;
            api_key_row(&row)
        })
    }

    fn api_key_by_hash(&self, hash: &[u8; 32]) -> Result<Option<ApiKey>> {
        self.read(|c| {
            c.query_opt(
                &format!("SELECT {API_KEY_COLUMNS} FROM api_keys WHERE hash = $1 AND revoked_at IS NULL"),
                &[&&hash[..]],
            )?
            .map(|r| api_key_row(&r))
            .transpose()
        })
    }

    fn api_keys(&self) -> Result<Vec<ApiKey>> {
        self.query(&format!("SELECT {API_KEY_COLUMNS} FROM api_keys ORDER BY id"), &[], api_key_row)
    }

    fn revoke_api_key(&self, id: i64, now: Timestamp) -> Result<ApiKey> {
        self.write(|tx| {
            tx.execute(
                "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
                &[&id, &now.as_micros()],
            )?;
            tx.query_opt(&format!("SELECT {API_KEY_COLUMNS} FROM api_keys WHERE id = $1"), &[&id])?
                .map(|r| api_key_row(&r))
                .transpose()?
                .ok_or_else(|| StoreError::NotFound(format!("API key {id}")))
        })
    }

    fn route_notifications(
        &self,
        limit: usize,
        route: &mut dyn FnMut(&Notification) -> Vec<String>,
        fence: Option<&Fence>,
        now: Timestamp,
    ) -> Result<usize> {
        self.write(|tx| {
            check_fence_in(tx, fence)?;
            // SKIP LOCKED: two routers (a stale one about to be fenced) never
            // wait on each other's rows.
            let list = tx
                .query(
                    &format!(
                        "SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE NOT routed ORDER BY id LIMIT $1
                         FOR UPDATE SKIP LOCKED"
                    ),
                    &[&(limit.clamp(1, 10_000) as i64)],
                )?
                .iter()
                .map(|r| rows::notification(r, 0))
                .collect::<Result<Vec<_>>>()?;
            let insert = tx.prepare_cached(
                "INSERT INTO deliveries (notification_id, destination, status, attempts, next_attempt_at, created_at)
                 VALUES ($1, $2, 'pending', 0, $3, $3) ON CONFLICT DO NOTHING",
            )?;
            let mark = tx.prepare_cached("UPDATE notifications SET routed = TRUE WHERE id = $1")?;
            for n in &list {
                for d in route(n) {
                    tx.execute(&insert, &[&n.id, &d, &now.as_micros()])?;
                }
                tx.execute(&mark, &[&n.id])?;
            }
            Ok(list.len())
        })
    }

    fn due_deliveries(&self, destination: &str, now: Timestamp, limit: usize) -> Result<Vec<Delivery>> {
        self.query(
            &format!(
                "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN notifications n ON n.id = d.notification_id
                 WHERE d.destination = $1 AND d.status = 'pending' AND d.next_attempt_at <= $2
                 ORDER BY d.next_attempt_at, d.id LIMIT $3"
            ),
            &[Box::new(destination.to_string()), Box::new(now.as_micros()), Box::new(limit.clamp(1, 10_000) as i64)],
            rows::delivery,
        )
    }

    fn record_delivery(
        &self,
        id: i64,
        result: &DeliveryResult,
        fence: Option<&Fence>,
        now: Timestamp,
    ) -> Result<Delivery> {
        self.write(|tx| {
            check_fence_in(tx, fence)?;
            let current = get_delivery(&mut **tx, id, true)?;
            if current.status != DeliveryStatus::Pending {
                return Err(StoreError::Invalid {
                    field: "id".into(),
                    message: format!("delivery {id} is already {}", current.status.as_str()),
                });
            }
            let (status, next, error, finished) = delivery_update(result, now);
            tx.execute(
                "UPDATE deliveries SET status = $2, attempts = attempts + 1, next_attempt_at = $3,
                 last_error = COALESCE($4, last_error), finished_at = $5 WHERE id = $1",
                &[&id, &status, &next, &error, &finished],
            )?;
            get_delivery(&mut **tx, id, false)
        })
    }

    fn deliveries(&self, q: &DeliveryQuery) -> Result<Vec<Delivery>> {
        let mut f = Filter::default();
        f.eq("d.status", q.status.map(|s| s.as_str().to_string()));
        f.eq("d.destination", q.destination.clone());
        f.eq("n.workspace", q.workspace.as_ref().map(|w| w.to_string()));
        f.eq("n.plugin", q.plugin.as_ref().map(|p| p.to_string()));
        let (clause, params) = f.finish("d.id DESC", list_limit(q.limit) as i64);
        self.query(
            &format!(
                "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN notifications n ON n.id = d.notification_id{clause}"
            ),
            &params,
            rows::delivery,
        )
    }

    fn retry_delivery(&self, id: i64, now: Timestamp) -> Result<Delivery> {
        self.write(|tx| {
            let current = get_delivery(&mut **tx, id, true)?;
            if current.status == DeliveryStatus::Delivered {
                return Err(StoreError::Invalid {
                    field: "id".into(),
                    message: format!("delivery {id} was already delivered"),
                });
            }
            tx.execute(
                "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = $2, finished_at = NULL WHERE id = $1",
                &[&id, &now.as_micros()],
            )?;
            get_delivery(&mut **tx, id, false)
        })
    }

    fn outbox_stats(&self) -> Result<OutboxStats> {
        self.read(|c| {
            let row = c.query_one("SELECT COUNT(*), MIN(occurred_at) FROM notifications WHERE NOT routed", &[])?;
            let (unrouted, oldest): (i64, Option<i64>) = (row.get(0), row.get(1));
            let mut stats = OutboxStats {
                unrouted: unrouted as u64,
                oldest_unrouted: oldest.and_then(Timestamp::from_micros),
                ..Default::default()
            };
            for r in c.query(
                "SELECT destination, status, COUNT(*) FROM deliveries GROUP BY destination, status ORDER BY destination, status",
                &[],
            )? {
                let (d, st, n): (String, String, i64) = (r.get(0), r.get(1), r.get(2));
                if let Some(st) = DeliveryStatus::parse(&st) {
                    stats.deliveries.push((d, st, n as u64));
                }
            }
            for r in c.query(
                "SELECT destination, MIN(created_at) FROM deliveries WHERE status = 'pending' GROUP BY destination ORDER BY destination",
                &[],
            )? {
                let (d, t): (String, i64) = (r.get(0), r.get(1));
                if let Some(t) = Timestamp::from_micros(t) {
                    stats.oldest_pending.push((d, t));
                }
            }
            Ok(stats)
        })
    }
}
