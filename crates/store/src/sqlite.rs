//! The embedded store of record: one SQLite file in the data directory.
//!
//! WAL mode lets the API, the scheduler and the CLI use the same file from
//! separate processes: readers never block the writer, and writers queue on
//! SQLite's lock (`busy_timeout`) rather than failing. Every write starts with
//! `BEGIN IMMEDIATE` so two processes never deadlock upgrading a read
//! transaction. With `synchronous = FULL` a commit is on disk before `append`
//! returns, which is what "acknowledged" means.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc::{SyncSender, sync_channel};
use std::time::Duration;

use learnloop_core::{
    Alert, ApiKey, Delivery, DeliveryStatus, Improvement, ImprovementStatus, Insight, JobRun, JobStatus, NewAlert,
    NewImprovement, NewInsight, NewNotification, Notification, Outcome, PluginName, Prediction, Record, Severity,
    Timestamp, WorkspaceId,
};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params, params_from_iter};
use serde_json::Value;

use learnloop_core::columns::{ColumnBuilder, RawRow};

use crate::common::*;
use crate::rows;
use crate::types::list_limit;
use crate::*;

/// How the SQLite file is opened.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// fsync every commit (`synchronous = FULL`), else only at checkpoints.
    pub synchronous_full: bool,
    /// How long to wait for another process's write lock.
    pub busy_timeout_ms: u64,
    /// Read connections kept open for concurrent queries.
    pub readers: usize,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self { synchronous_full: true, busy_timeout_ms: 10_000, readers: 4 }
    }
}

/// The SQLite implementation of [`Store`].
pub struct SqliteStore {
    path: PathBuf,
    options: SqliteOptions,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    /// Wakes the checkpointer after a commit; dropped to stop it.
    checkpoint_tx: Option<SyncSender<()>>,
    checkpointer: Option<std::thread::JoinHandle<()>>,
}

/// Copies committed WAL frames into the database file on its own thread and
/// connection, so appends do not pay for checkpoints (about a tenth of
/// ingest time when the writer did it). A passive checkpoint never blocks
/// writers or readers; at most one runs every 100 ms.
fn spawn_checkpointer(path: &Path, options: &SqliteOptions) -> Result<(SyncSender<()>, std::thread::JoinHandle<()>)> {
    let conn = SqliteStore::connect(path, options)?;
    let (tx, rx) = sync_channel::<()>(1);
    let handle = std::thread::Builder::new()
        .name("learnloop-checkpoint".into())
        .spawn(move || {
            while rx.recv().is_ok() {
                // Errors (a busy database) just mean the next commit tries again.
                let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                std::thread::sleep(Duration::from_millis(100));
            }
        })
        .map_err(|e| StoreError::Backend(format!("cannot start the checkpoint thread: {e}")))?;
    Ok((tx, handle))
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.checkpoint_tx.take();
        if let Some(h) = self.checkpointer.take() {
            let _ = h.join();
        }
    }
}

/// Schema migrations, applied in order, each once. Never edit a released one:
/// add a new version instead.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("schema/sqlite/0001.sql")),
    (2, include_str!("schema/sqlite/0002.sql")),
    (3, include_str!("schema/sqlite/0003.sql")),
];

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock dropped its transaction, which rolled
    // back; the connection itself is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl SqliteStore {
    /// Opens (creating if needed) the SQLite store at `path` and brings its
    /// schema up to date.
    pub fn open(path: &Path, options: &SqliteOptions) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Backend(format!("cannot create {}: {e}", dir.display())))?;
        }
        let mut writer = Self::connect(path, options)?;
        // 8 MiB of page cache for the writer. Measured on the ingest benchmark:
        // larger caches were slower (SQLite walks the whole cache at every
        // commit) and use more memory; bounded, so memory does not grow with
        // the history.
        writer.pragma_update(None, "cache_size", -8_192)?;
        // Checkpoints happen on the checkpointer thread instead (see
        // `spawn_checkpointer`). Other connections keep SQLite's default, so
        // the WAL is still bounded if this process dies.
        writer.pragma_update(None, "wal_autocheckpoint", 0)?;
        migrate(&mut writer)?;
        let (checkpoint_tx, checkpointer) = spawn_checkpointer(path, options)?;
        Ok(Self {
            path: path.to_owned(),
            options: options.clone(),
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
            checkpoint_tx: Some(checkpoint_tx),
            checkpointer: Some(checkpointer),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn connect(path: &Path, options: &SqliteOptions) -> Result<Connection> {
        let conn =
            Connection::open(path).map_err(|e| StoreError::Backend(format!("cannot open {}: {e}", path.display())))?;
        conn.busy_timeout(Duration::from_millis(options.busy_timeout_ms))?;
        // 16 KiB pages: fewer page splits and a shallower index for appends
        // (about a third faster ingest than 4 KiB in the benchmark). Takes
        // effect only when the file is created; existing files keep theirs.
        conn.pragma_update(None, "page_size", 16_384)?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Backend(format!(
                "{}: cannot switch to WAL mode (got {mode}); is it on a network file system?",
                path.display()
            )));
        }
        conn.pragma_update(None, "synchronous", if options.synchronous_full { "FULL" } else { "NORMAL" })?;
        Ok(conn)
    }

    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = match lock(&self.readers).pop() {
            Some(c) => c,
            None => Self::connect(&self.path, &self.options)?,
        };
        let out = f(&conn);
        let mut pool = lock(&self.readers);
        if pool.len() < self.options.readers.max(1) {
            pool.push(conn);
        }
        out
    }

    fn write<T>(&self, f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        if let Some(ch) = &self.checkpoint_tx {
            // Full channel: a checkpoint is already due; never block a commit.
            let _ = ch.try_send(());
        }
        Ok(out)
    }
}

fn migrate(conn: &mut Connection) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    )?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let current: i64 = tx.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |r| r.get(0))?;
    let latest = MIGRATIONS.last().map(|m| m.0).unwrap_or(0);
    if current > latest {
        return Err(StoreError::SchemaTooNew { found: current, supported: latest });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
            params![version, Timestamp::now().as_micros()],
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// The seq the next inserted prediction or outcome gets: one past the
/// highest of both tables (two rowid maxima, O(log n)). Called inside the
/// write transaction, so no other writer can take it.
fn next_seq(tx: &rusqlite::Transaction<'_>) -> Result<i64> {
    let max: i64 = tx
        .prepare_cached(
            "SELECT MAX(COALESCE((SELECT MAX(seq) FROM predictions), 0), COALESCE((SELECT MAX(seq) FROM outcomes), 0))",
        )?
        .query_row([], |r| r.get(0))?;
    Ok(max + 1)
}

fn insert_prediction(
    tx: &rusqlite::Transaction<'_>,
    p: &Prediction,
    prep: &Prepared,
    now: Timestamp,
    seq: &mut i64,
) -> Result<ItemStatus> {
    let hash = prep.hash;
    let mut stmt = tx.prepare_cached(
        "INSERT INTO predictions (workspace, id, plugin, subject, kind, value, label, confidence, features, payload, event_time, ingested_at, content_hash, seq)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
         ON CONFLICT (workspace, id) DO NOTHING",
    )?;
    let changed = stmt.execute(params![
        p.workspace.as_str(),
        p.id.as_str(),
        p.plugin.as_str(),
        p.subject,
        p.kind,
        p.value,
        p.label,
        p.confidence,
        prep.features,
        prep.payload,
        p.event_time.unwrap_or(now).as_micros(),
        now.as_micros(),
        &hash[..],
        *seq,
    ])?;
    if changed == 1 {
        *seq += 1;
        return Ok(ItemStatus::Inserted);
    }
    let existing = tx
        .prepare_cached("SELECT content_hash, event_time FROM predictions WHERE workspace = ?1 AND id = ?2")?
        .query_row(params![p.workspace.as_str(), p.id.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    duplicate_or_conflict(existing, &hash, p.event_time)
}

fn insert_outcome(
    tx: &rusqlite::Transaction<'_>,
    o: &Outcome,
    prep: &Prepared,
    now: Timestamp,
    seq: &mut i64,
) -> Result<ItemStatus> {
    let prediction: Option<(i64, String, String, String)> = tx
        .prepare_cached("SELECT seq, plugin, subject, kind FROM predictions WHERE workspace = ?1 AND id = ?2")?
        .query_row(params![o.workspace.as_str(), o.prediction_id.as_str()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?;
    let Some((prediction_seq, plugin, subject, kind)) = prediction else {
        return Ok(ItemStatus::Rejected(Rejection::UnknownPrediction { prediction_id: o.prediction_id.clone() }));
    };
    if plugin != o.plugin.as_str() {
        return Ok(ItemStatus::Rejected(Rejection::PluginMismatch { prediction_plugin: plugin }));
    }
    let hash = prep.hash;
    let changed = tx
        .prepare_cached(
            "INSERT INTO outcomes (workspace, id, plugin, prediction_id, subject, kind, value, label, success, quality, feedback, payload, event_time, ingested_at, content_hash, prediction_seq, seq)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)
             ON CONFLICT (workspace, id) DO NOTHING",
        )?
        .execute(params![
            o.workspace.as_str(),
            o.id.as_str(),
            o.plugin.as_str(),
            o.prediction_id.as_str(),
            subject,
            kind,
            o.value,
            o.label,
            o.success,
            o.quality,
            o.feedback,
            prep.payload,
            o.event_time.unwrap_or(now).as_micros(),
            now.as_micros(),
            &hash[..],
            prediction_seq,
            *seq,
        ])?;
    if changed == 1 {
        *seq += 1;
        return Ok(ItemStatus::Inserted);
    }
    let existing = tx
        .prepare_cached("SELECT content_hash, event_time FROM outcomes WHERE workspace = ?1 AND id = ?2")?
        .query_row(params![o.workspace.as_str(), o.id.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    duplicate_or_conflict(existing, &hash, o.event_time)
}

/// Builds the WHERE clause shared by prediction and outcome queries.
fn where_clause(q: &EventQuery, outcomes: bool, max_limit: usize) -> Result<(String, Vec<SqlValue>)> {
    let mut sql = String::from(" WHERE 1 = 1");
    let mut args: Vec<SqlValue> = Vec::new();
    let mut eq = |col: &str, v: Option<String>, sql: &mut String| {
        if let Some(v) = v {
            args.push(SqlValue::Text(v));
            sql.push_str(&format!(" AND {col} = ?{}", args.len()));
        }
    };
    eq("workspace", q.workspace.as_ref().map(|w| w.to_string()), &mut sql);
    eq("plugin", q.plugin.as_ref().map(|p| p.to_string()), &mut sql);
    eq("kind", q.kind.clone(), &mut sql);
    eq("subject", q.subject.clone(), &mut sql);
    eq("id", q.id.as_ref().map(|i| i.to_string()), &mut sql);
    if let Some(pid) = &q.prediction_id {
        if !outcomes {
            return Err(StoreError::Invalid { field: "prediction_id".into(), message: "filters outcomes only".into() });
        }
        // Through the prediction's seq, which is what outcomes are indexed by.
        let ws = q.workspace.as_ref().ok_or_else(|| StoreError::Invalid {
            field: "prediction_id".into(),
            message: "needs a workspace (prediction ids are unique per workspace)".into(),
        })?;
        args.push(SqlValue::Text(ws.to_string()));
        args.push(SqlValue::Text(pid.to_string()));
        sql.push_str(&format!(
            " AND prediction_seq = (SELECT seq FROM predictions WHERE workspace = ?{} AND id = ?{})",
            args.len() - 1,
            args.len()
        ));
    }
    if let Some(from) = effective_from(q) {
        args.push(SqlValue::Integer(from));
        sql.push_str(&format!(" AND event_time >= ?{}", args.len()));
    }
    if let Some(until) = q.until {
        args.push(SqlValue::Integer(until.as_micros()));
        sql.push_str(&format!(" AND event_time < ?{}", args.len()));
    }
    if let Some(c) = q.after {
        match q.order {
            Order::Ingestion => {
                args.push(SqlValue::Integer(c.seq));
                sql.push_str(&format!(" AND seq > ?{}", args.len()));
            }
            Order::EventTime => {
                args.push(SqlValue::Integer(c.time));
                args.push(SqlValue::Integer(c.seq));
                sql.push_str(&format!(" AND (event_time, seq) > (?{}, ?{})", args.len() - 1, args.len()));
            }
        }
    }
    sql.push_str(match q.order {
        Order::Ingestion => " ORDER BY seq",
        Order::EventTime => " ORDER BY event_time, seq",
    });
    let limit = q.limit.clamp(1, max_limit);
    args.push(SqlValue::Integer(limit as i64 + 1));
    sql.push_str(&format!(" LIMIT ?{}", args.len()));
    Ok((sql, args))
}

fn ts(micros: i64) -> rusqlite::Result<Timestamp> {
    Timestamp::from_micros(micros).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Integer, "timestamp out of range".into())
    })
}

fn parse_id<T: TryFrom<String, Error = learnloop_core::ValidationError>>(s: String) -> rusqlite::Result<T> {
    T::try_from(s).map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
}

// The row mappers are shared with PostgreSQL (`rows.rs`); these name them
// for `query_map`, which wants a function of any `Row<'_>`.
fn prediction_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredPrediction> {
    rows::prediction(r)
}

fn outcome_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredOutcome> {
    rows::outcome(r)
}

fn job_run_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<JobRun> {
    rows::job_run(r)
}

fn lease_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Lease> {
    rows::lease(r)
}

fn insight_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Insight> {
    rows::insight(r)
}

fn alert_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Alert> {
    rows::alert(r)
}

fn improvement_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Improvement> {
    rows::improvement(r)
}

fn api_key_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ApiKey> {
    rows::api_key(r)
}

/// Writes (`Some`) or deletes (`None`) one state document if `expect`
/// holds; the new version, `None` after a delete.
fn apply_state(
    tx: &rusqlite::Transaction<'_>,
    key: &StateKey,
    value: Option<&[u8]>,
    expect: Expect,
    now: Timestamp,
) -> Result<Option<u64>> {
    let current: Option<i64> = tx
        .prepare_cached("SELECT version FROM plugin_state WHERE plugin = ?1 AND workspace = ?2 AND key = ?3")?
        .query_row(params![key.plugin.as_str(), key.workspace.as_str(), key.key], |r| r.get(0))
        .optional()?;
    expect_matches(key, expect, current.map(|v| v as u64))?;
    let Some(value) = value else {
        tx.prepare_cached("DELETE FROM plugin_state WHERE plugin = ?1 AND workspace = ?2 AND key = ?3")?
            .execute(params![key.plugin.as_str(), key.workspace.as_str(), key.key])?;
        return Ok(None);
    };
    let next = current.unwrap_or(0) + 1;
    tx.prepare_cached(
        "INSERT INTO plugin_state (plugin, workspace, key, value, version, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (plugin, workspace, key) DO UPDATE SET value = excluded.value, version = excluded.version, updated_at = excluded.updated_at",
    )?
    .execute(params![key.plugin.as_str(), key.workspace.as_str(), key.key, value, next, now.as_micros()])?;
    Ok(Some(next as u64))
}

fn insert_insight(tx: &rusqlite::Transaction<'_>, i: &NewInsight, now: Timestamp) -> Result<i64> {
    tx.prepare_cached(
        "INSERT INTO insights (workspace, plugin, kind, title, detail, confidence, impact, data, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        i.workspace.as_str(),
        i.plugin.as_str(),
        i.kind,
        i.title,
        i.detail,
        i.confidence,
        i.impact,
        i.data.to_string(),
        now.as_micros()
    ])?;
    Ok(tx.last_insert_rowid())
}

/// Inserts an alert, or folds it into the open alert with its dedup key.
fn raise_alert(tx: &rusqlite::Transaction<'_>, a: &NewAlert, now: Timestamp) -> Result<(i64, bool)> {
    let open: Option<(i64, String)> = tx
        .prepare_cached(
            "SELECT id, severity FROM alerts
             WHERE workspace = ?1 AND plugin = ?2 AND dedup_key = ?3 AND acknowledged_at IS NULL",
        )?
        .query_row(params![a.workspace.as_str(), a.plugin.as_str(), a.dedup_key], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if let Some((id, severity)) = open {
        let severity = parse_severity(&severity).map_err(|e| StoreError::Backend(e.to_string()))?;
        tx.prepare_cached(
            "UPDATE alerts SET occurrences = occurrences + 1, last_seen_at = ?2, severity = ?3, message = ?4, data = ?5
             WHERE id = ?1",
        )?
        .execute(params![
            id,
            now.as_micros(),
            severity_str(severity.max(a.severity)),
            a.message,
            a.data.to_string()
        ])?;
        return Ok((id, false));
    }
    tx.prepare_cached(
        "INSERT INTO alerts (workspace, plugin, severity, kind, subject, message, dedup_key, data, created_at, last_seen_at, occurrences)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, 1)",
    )?
    .execute(params![
        a.workspace.as_str(),
        a.plugin.as_str(),
        severity_str(a.severity),
        a.kind,
        a.subject,
        a.message,
        a.dedup_key,
        a.data.to_string(),
        now.as_micros()
    ])?;
    Ok((tx.last_insert_rowid(), true))
}

/// Puts a notification in the outbox.
fn insert_notification(tx: &Connection, n: &NewNotification, now: Timestamp) -> Result<i64> {
    tx.prepare_cached(
        "INSERT INTO notifications (uid, workspace, plugin, event, severity, subject, summary, dedup_key, link, data, occurred_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        crate::outbox::new_uid(),
        n.workspace.as_ref().map(|w| w.as_str()),
        n.plugin.as_str(),
        n.event,
        severity_str(n.severity),
        n.subject,
        n.summary,
        n.dedup_key,
        n.link,
        n.data.to_string(),
        now.as_micros()
    ])?;
    Ok(tx.last_insert_rowid())
}

fn get_delivery(conn: &Connection, id: i64) -> Result<Delivery> {
    conn.prepare_cached(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN notifications n ON n.id = d.notification_id WHERE d.id = ?1"
    ))?
    .query_row([id], |r| rows::delivery(r))
    .optional()?
    .ok_or_else(|| StoreError::NotFound(format!("delivery {id}")))
}

/// Inserts a proposed improvement as the next version of its target.
fn propose_improvement(tx: &rusqlite::Transaction<'_>, i: &NewImprovement, now: Timestamp) -> Result<(i64, u64)> {
    let version: i64 = tx
        .prepare_cached(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM improvements WHERE workspace = ?1 AND plugin = ?2 AND target = ?3",
        )?
        .query_row(params![i.workspace.as_str(), i.plugin.as_str(), i.target], |r| r.get(0))?;
    let history = Value::Array(vec![history_entry(ImprovementStatus::Proposed, now, &Value::Null)]);
    tx.prepare_cached(
        "INSERT INTO improvements (workspace, plugin, target, version, status, params, evidence, metric, expected_gain, history, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)",
    )?
    .execute(params![
        i.workspace.as_str(),
        i.plugin.as_str(),
        i.target,
        version,
        improvement_status_str(ImprovementStatus::Proposed),
        i.params.to_string(),
        i.evidence.to_string(),
        i.metric,
        i.expected_gain,
        history.to_string(),
        now.as_micros()
    ])?;
    Ok((tx.last_insert_rowid(), version as u64))
}

/// Moves an improvement (see [`Move`]); appends the move to its history.
fn move_improvement(tx: &Connection, m: &Move<'_>, now: Timestamp) -> Result<Improvement> {
    let Move { workspace, id, from, to, backtest, note } = *m;
    let current = get_improvement(tx, workspace, id)?;
    check_transition(id, current.status, from, to)?;
    let history: String =
        tx.prepare_cached("SELECT history FROM improvements WHERE id = ?1")?.query_row([id], |r| r.get(0))?;
    let mut history: Vec<Value> = serde_json::from_str(&history)
        .map_err(|e| StoreError::Backend(format!("improvement {id}: unreadable history: {e}")))?;
    history.push(history_entry(to, now, note));
    tx.prepare_cached(
        "UPDATE improvements SET status = ?2, backtest = COALESCE(?3, backtest), history = ?4, updated_at = ?5
         WHERE id = ?1",
    )?
    .execute(params![
        id,
        improvement_status_str(to),
        backtest.map(|b| b.to_string()),
        Value::Array(history).to_string(),
        now.as_micros()
    ])?;
    get_improvement(tx, workspace, id)
}

/// A change set's writes inside one SQLite write transaction.
struct Writer<'a, 'c>(&'a rusqlite::Transaction<'c>);

impl ChangeWriter for Writer<'_, '_> {
    fn lease_token(&mut self, lease: &str) -> Result<Option<i64>> {
        // Inside the write transaction, which excludes every other writer
        // (a lease take-over included) until commit.
        Ok(self.0.query_row("SELECT token FROM leases WHERE name = ?1", params![lease], |r| r.get(0)).optional()?)
    }
    fn apply_state(
        &mut self,
        key: &StateKey,
        value: Option<&[u8]>,
        expect: Expect,
        now: Timestamp,
    ) -> Result<Option<u64>> {
        apply_state(self.0, key, value, expect, now)
    }
    fn insert_insight(&mut self, insight: &NewInsight, now: Timestamp) -> Result<i64> {
        insert_insight(self.0, insight, now)
    }
    fn raise_alert(&mut self, alert: &NewAlert, now: Timestamp) -> Result<(i64, bool)> {
        raise_alert(self.0, alert, now)
    }
    fn insert_notification(&mut self, n: &NewNotification, now: Timestamp) -> Result<i64> {
        insert_notification(self.0, n, now)
    }
    fn propose_improvement(&mut self, improvement: &NewImprovement, now: Timestamp) -> Result<(i64, u64)> {
        propose_improvement(self.0, improvement, now)
    }
    fn move_improvement(&mut self, m: &Move<'_>, now: Timestamp) -> Result<Improvement> {
        move_improvement(self.0, m, now)
    }
}

fn get_improvement(conn: &Connection, workspace: &WorkspaceId, id: i64) -> Result<Improvement> {
    conn.prepare_cached(&format!("SELECT {IMPROVEMENT_COLUMNS} FROM improvements WHERE id = ?1 AND workspace = ?2"))?
        .query_row(params![id, workspace.as_str()], improvement_row)
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("improvement {id} in workspace {workspace}")))
}

/// A WHERE clause of optional filters, ANDed, with its arguments.
#[derive(Default)]
struct Filter {
    sql: String,
    args: Vec<SqlValue>,
}

impl Filter {
    fn eq(&mut self, col: &str, v: Option<String>) {
        if let Some(v) = v {
            self.args.push(SqlValue::Text(v));
            self.sql.push_str(&format!(" AND {col} = ?{}", self.args.len()));
        }
    }

    fn at_least(&mut self, col: &str, t: Option<Timestamp>) {
        if let Some(t) = t {
            self.args.push(SqlValue::Integer(t.as_micros()));
            self.sql.push_str(&format!(" AND {col} >= ?{}", self.args.len()));
        }
    }

    /// ` WHERE ... ORDER BY {order} LIMIT ?` and the arguments.
    fn finish(mut self, order: &str, limit: usize) -> (String, Vec<SqlValue>) {
        self.args.push(SqlValue::Integer(list_limit(limit) as i64));
        (format!(" WHERE 1 = 1{} ORDER BY {order} LIMIT ?{}", self.sql, self.args.len()), self.args)
    }
}

fn parse_severity(s: &str) -> rusqlite::Result<Severity> {
    severity_from_str(s).ok_or_else(|| bad_text(format!("bad severity {s:?}")))
}

fn bad_text(message: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, message.into())
}

impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn append_prepared(&self, records: &[Prepared], mode: AppendMode, now: Timestamp) -> Result<AppendReceipt> {
        self.write(|tx| {
            let mut receipt = AppendReceipt { items: Vec::with_capacity(records.len()), ..Default::default() };
            let mut seq = next_seq(tx)?;
            for (index, prep) in records.iter().enumerate() {
                let record = prep.record();
                let status = match record {
                    Record::Prediction(p) => insert_prediction(tx, p, prep, now, &mut seq)?,
                    Record::Outcome(o) => insert_outcome(tx, o, prep, now, &mut seq)?,
                };
                match &status {
                    ItemStatus::Inserted => receipt.inserted += 1,
                    ItemStatus::Duplicate => receipt.duplicates += 1,
                    ItemStatus::Rejected(reason) => {
                        if mode == AppendMode::AllOrNothing {
                            // Returning the error drops the transaction: rollback.
                            return Err(StoreError::Rejected {
                                index,
                                id: record.id().clone(),
                                reason: reason.clone(),
                            });
                        }
                        receipt.rejected += 1;
                    }
                }
                receipt.items.push(status);
            }
            Ok(receipt)
        })
    }

    fn predictions(&self, q: &EventQuery) -> Result<Page<StoredPrediction>> {
        let (clause, args) = where_clause(q, false, EventQuery::MAX_LIMIT)?;
        let sql = format!("SELECT {PREDICTION_COLUMNS} FROM predictions{clause}");
        let items = self.read(|conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(params_from_iter(args), prediction_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })?;
        Ok(paginate(items, q.limit, |p| Cursor { time: p.record.event_time.map_or(0, |t| t.as_micros()), seq: p.seq }))
    }

    fn outcomes(&self, q: &EventQuery) -> Result<Page<StoredOutcome>> {
        let (clause, args) = where_clause(q, true, EventQuery::MAX_LIMIT)?;
        let sql = format!("SELECT {OUTCOME_COLUMNS} FROM outcomes{clause}");
        let items = self.read(|conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(params_from_iter(args), outcome_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })?;
        Ok(paginate(items, q.limit, |o| Cursor { time: o.record.event_time.map_or(0, |t| t.as_micros()), seq: o.seq }))
    }

    fn prediction_columns(&self, q: &EventQuery, spec: &ColumnSpec) -> Result<PredictionColumns> {
        let (clause, args) = where_clause(q, false, ColumnSpec::MAX_ROWS)?;
        let sql = format!("SELECT {} FROM predictions{clause}", column_select(spec, "o.seq"));
        let limit = q.limit.clamp(1, ColumnSpec::MAX_ROWS);
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut rows = stmt.query(params_from_iter(args))?;
            let mut b = ColumnBuilder::new(spec);
            let mut last = None;
            while let Some(r) = rows.next()? {
                if b.len() == limit {
                    return Ok(b.finish(last));
                }
                // Text borrowed from SQLite's row buffer: no copy per row.
                let text = |i: usize| -> rusqlite::Result<Option<&str>> {
                    r.get_ref(i)?.as_str_or_null().map_err(|e| {
                        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
                    })
                };
                let raw = RawRow {
                    seq: r.get(0)?,
                    event_time: r.get(1)?,
                    kind: text(2)?.unwrap_or(""),
                    value: r.get(3)?,
                    label: text(4)?,
                    features: text(5)?,
                    payload: text(6)?,
                    outcome_value: r.get(7)?,
                    outcome_label: text(8)?,
                };
                last = Some(Cursor { time: raw.event_time, seq: raw.seq });
                b.push_raw(raw).map_err(|e| StoreError::Backend(e.to_string()))?;
            }
            Ok(b.finish(None))
        })
    }

    fn events(&self, workspace: &WorkspaceId, plugin: &PluginName, after_seq: i64, limit: usize) -> Result<Vec<Event>> {
        let limit = limit.clamp(1, EventQuery::MAX_LIMIT);
        let args = params![plugin.as_str(), workspace.as_str(), after_seq, limit as i64];
        self.read(|conn| {
            // One read transaction: both queries see the same snapshot, so a
            // batch that committed in between cannot show its outcomes here
            // without its predictions.
            let tx = conn.unchecked_transaction()?;
            let predictions = tx
                .prepare_cached(&format!(
                    "SELECT {PREDICTION_COLUMNS} FROM predictions
                     WHERE plugin = ?1 AND workspace = ?2 AND seq > ?3 ORDER BY seq LIMIT ?4"
                ))?
                .query_map(args, prediction_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let outcomes = tx
                .prepare_cached(&format!(
                    "SELECT {OUTCOME_COLUMNS} FROM outcomes
                     WHERE plugin = ?1 AND workspace = ?2 AND seq > ?3 ORDER BY seq LIMIT ?4"
                ))?
                .query_map(args, outcome_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            tx.commit()?;
            Ok(merge_events(predictions, outcomes, limit))
        })
    }

    fn max_seq(&self) -> Result<i64> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT MAX(COALESCE((SELECT MAX(seq) FROM predictions), 0), COALESCE((SELECT MAX(seq) FROM outcomes), 0))",
                )?
                .query_row([], |r| r.get(0))?)
        })
    }

    fn workspaces(&self, plugin: &PluginName) -> Result<Vec<WorkspaceId>> {
        // A skip scan of predictions_by_plugin: one index seek per workspace,
        // however many predictions each has.
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "WITH RECURSIVE w(workspace) AS (
                     SELECT MIN(workspace) FROM predictions WHERE plugin = ?1
                     UNION ALL
                     SELECT (SELECT MIN(workspace) FROM predictions WHERE plugin = ?1 AND workspace > w.workspace)
                     FROM w WHERE w.workspace IS NOT NULL
                 )
                 SELECT workspace FROM w WHERE workspace IS NOT NULL",
            )?;
            let rows = stmt.query_map([plugin.as_str()], |r| parse_id(r.get(0)?))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn counts(&self, workspace: Option<&WorkspaceId>) -> Result<Vec<CountRow>> {
        let filter = if workspace.is_some() { "WHERE workspace = ?1" } else { "" };
        let pfilter = if workspace.is_some() { "AND p.workspace = ?1" } else { "" };
        let args: Vec<SqlValue> = workspace.map(|w| SqlValue::Text(w.to_string())).into_iter().collect();
        self.read(|conn| {
            let mut rows: BTreeMap<(String, String, String), CountRow> = BTreeMap::new();
            let queries = [
                format!("SELECT workspace, plugin, kind, COUNT(*) FROM predictions {filter} GROUP BY 1, 2, 3"),
                format!("SELECT workspace, plugin, kind, COUNT(*) FROM outcomes {filter} GROUP BY 1, 2, 3"),
                format!(
                    "SELECT p.workspace, p.plugin, p.kind, COUNT(*) FROM predictions p
                     WHERE NOT EXISTS (SELECT 1 FROM outcomes o WHERE o.prediction_seq = p.seq) {pfilter}
                     GROUP BY 1, 2, 3"
                ),
            ];
            for (i, sql) in queries.iter().enumerate() {
                let mut stmt = conn.prepare(sql)?;
                let mut q = stmt.query(params_from_iter(args.iter()))?;
                while let Some(r) = q.next()? {
                    let key: (String, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
                    let n: i64 = r.get(3)?;
                    let row = rows.entry(key.clone()).or_insert_with(|| CountRow {
                        workspace: key.0,
                        plugin: key.1,
                        kind: key.2,
                        predictions: 0,
                        outcomes: 0,
                        pending: 0,
                    });
                    match i {
                        0 => row.predictions = n as u64,
                        1 => row.outcomes = n as u64,
                        _ => row.pending = n as u64,
                    }
                }
            }
            Ok(rows.into_values().collect())
        })
    }

    fn daily_counts(&self, workspace: &WorkspaceId, from: Timestamp, until: Timestamp) -> Result<Vec<DailyCount>> {
        self.read(|conn| {
            let mut days = BTreeMap::new();
            for (i, table) in ["predictions", "outcomes"].iter().enumerate() {
                // Floor division, so a day before 1970 is still whole.
                let sql = format!(
                    "SELECT (event_time - (((event_time % 86400000000) + 86400000000) % 86400000000)) / 86400000000,
                            COUNT(*) FROM {table}
                     WHERE workspace = ?1 AND event_time >= ?2 AND event_time < ?3 GROUP BY 1"
                );
                let mut stmt = conn.prepare_cached(&sql)?;
                let mut q = stmt.query(params![workspace.as_str(), from.as_micros(), until.as_micros()])?;
                while let Some(r) = q.next()? {
                    add_daily(&mut days, i, r.get(0)?, r.get(1)?);
                }
            }
            Ok(days.into_values().collect())
        })
    }

    fn get_state(&self, key: &StateKey) -> Result<Option<StateDoc>> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT value, version, updated_at FROM plugin_state WHERE plugin = ?1 AND workspace = ?2 AND key = ?3",
                )?
                .query_row(params![key.plugin.as_str(), key.workspace.as_str(), key.key], |r| {
                    Ok(StateDoc { value: r.get(0)?, version: r.get::<_, i64>(1)? as u64, updated_at: ts(r.get(2)?)? })
                })
                .optional()?)
        })
    }

    fn commit(&self, changes: &Changes, now: Timestamp) -> Result<CommitReceipt> {
        changes.validate()?;
        self.write(|tx| commit_changes(&mut Writer(tx), changes, now))
    }

    fn insights(&self, q: &InsightQuery) -> Result<Vec<Insight>> {
        let mut f = Filter::default();
        f.eq("workspace", q.workspace.as_ref().map(|w| w.to_string()));
        f.eq("plugin", q.plugin.as_ref().map(|p| p.to_string()));
        f.eq("kind", q.kind.clone());
        f.at_least("created_at", q.since);
        let (clause, args) = f.finish("created_at DESC, id DESC", q.limit);
        let sql = format!("SELECT {INSIGHT_COLUMNS} FROM insights{clause}");
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(params_from_iter(args), insight_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn alerts(&self, q: &AlertQuery) -> Result<Vec<Alert>> {
        let mut f = Filter::default();
        f.eq("workspace", q.workspace.as_ref().map(|w| w.to_string()));
        f.eq("plugin", q.plugin.as_ref().map(|p| p.to_string()));
        f.at_least("last_seen_at", q.since);
        if !q.include_acknowledged {
            f.sql.push_str(" AND acknowledged_at IS NULL");
        }
        let (clause, args) = f.finish("last_seen_at DESC, id DESC", q.limit);
        let sql = format!("SELECT {ALERT_COLUMNS} FROM alerts{clause}");
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(params_from_iter(args), alert_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn acknowledge_alert(&self, workspace: &WorkspaceId, id: i64, now: Timestamp) -> Result<Alert> {
        self.write(|tx| {
            let changed = tx
                .prepare_cached(
                    "UPDATE alerts SET acknowledged_at = ?3 WHERE id = ?1 AND workspace = ?2 AND acknowledged_at IS NULL",
                )?
                .execute(params![id, workspace.as_str(), now.as_micros()])?;
            let alert = tx
                .prepare_cached(&format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = ?1 AND workspace = ?2"))?
                .query_row(params![id, workspace.as_str()], alert_row)
                .optional()?
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
        let (clause, args) = f.finish("created_at DESC, id DESC", q.limit);
        let sql = format!("SELECT {IMPROVEMENT_COLUMNS} FROM improvements{clause}");
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(params_from_iter(args), improvement_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn improvement(&self, workspace: &WorkspaceId, id: i64) -> Result<Improvement> {
        self.read(|conn| get_improvement(conn, workspace, id))
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
        // Keys never contain U+10FFFF (checked on write), so prefix + U+10FFFF
        // is an upper bound of every key with the prefix and the scan uses
        // the primary key.
        let upper = format!("{prefix}{}", char::MAX);
        let lower = match after {
            Some(a) if a >= prefix => a.to_string(),
            _ => prefix.to_string(),
        };
        let lower_op = if after.is_some_and(|a| a >= prefix) { ">" } else { ">=" };
        let sql = format!(
            "SELECT key, value, version, updated_at FROM plugin_state
             WHERE plugin = ?1 AND workspace = ?2 AND key {lower_op} ?3 AND key < ?4 ORDER BY key LIMIT ?5"
        );
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(
                params![plugin.as_str(), workspace.as_str(), lower, upper, limit.clamp(1, 10_000) as i64],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        StateDoc { value: r.get(1)?, version: r.get::<_, i64>(2)? as u64, updated_at: ts(r.get(3)?)? },
                    ))
                },
            )?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn start_job_run(&self, run: &NewJobRun) -> Result<JobRun> {
        self.write(|tx| {
            let inserted = tx.execute(
                "INSERT INTO job_runs (plugin, job, slot, attempt, runner, status, started_at) VALUES (?1, ?2, ?3, ?4, ?5, 'running', ?6)",
                params![run.plugin.as_str(), run.job, run.slot, run.attempt, run.runner, run.now.as_micros()],
            );
            match inserted {
                Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
                    return Err(StoreError::SlotTaken {
                        plugin: run.plugin.to_string(),
                        job: run.job.clone(),
                        slot: run.slot.unwrap_or_default(),
                        attempt: run.attempt,
                    });
                }
                other => other?,
            };
            let id = tx.last_insert_rowid();
            Ok(tx.query_row(&format!("SELECT {JOB_RUN_COLUMNS} FROM job_runs WHERE id = ?1"), [id], job_run_row)?)
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
                "UPDATE job_runs SET status = ?2, finished_at = ?3, report = ?4, error = ?5 WHERE id = ?1 AND status = 'running'",
                params![id, status.as_str(), now.as_micros(), report.map(|r| r.to_string()), error],
            )?;
            let run = tx
                .query_row(&format!("SELECT {JOB_RUN_COLUMNS} FROM job_runs WHERE id = ?1"), [id], job_run_row)
                .optional()?
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
        let mut sql = format!("SELECT {JOB_RUN_COLUMNS} FROM job_runs WHERE 1 = 1");
        let mut args: Vec<SqlValue> = Vec::new();
        if let Some(p) = &q.plugin {
            args.push(SqlValue::Text(p.to_string()));
            sql.push_str(&format!(" AND plugin = ?{}", args.len()));
        }
        if let Some(j) = &q.job {
            args.push(SqlValue::Text(j.clone()));
            sql.push_str(&format!(" AND job = ?{}", args.len()));
        }
        if let Some(s) = q.slot {
            args.push(SqlValue::Integer(s));
            sql.push_str(&format!(" AND slot = ?{}", args.len()));
        }
        args.push(SqlValue::Integer(list_limit(q.limit) as i64));
        sql.push_str(&format!(" ORDER BY id DESC LIMIT ?{}", args.len()));
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(params_from_iter(args), job_run_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn acquire_lease(&self, name: &str, holder: &str, ttl_ms: u64, now: Timestamp) -> Result<Option<Lease>> {
        let expires = now.add_micros(ttl_ms as i64 * 1000);
        self.write(|tx| {
            let current = tx
                .query_row("SELECT name, holder, token, expires_at FROM leases WHERE name = ?1", [name], lease_row)
                .optional()?;
            let token = match &current {
                None => 1,
                // A lapsed or released lease changes hands with a new token,
                // even back to its old holder: whatever it did under the old
                // token may have been overtaken.
                Some(l) if l.expires_at <= now => l.token + 1,
                Some(l) if l.holder == holder => l.token,
                Some(_) => return Ok(None),
            };
            tx.execute(
                "INSERT INTO leases (name, holder, token, expires_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, token = excluded.token, expires_at = excluded.expires_at",
                params![name, holder, token, expires.as_micros()],
            )?;
            Ok(Some(Lease { name: name.to_string(), holder: holder.to_string(), token, expires_at: expires }))
        })
    }

    fn renew_lease(&self, lease: &Lease, ttl_ms: u64, now: Timestamp) -> Result<Option<Lease>> {
        let expires = now.add_micros(ttl_ms as i64 * 1000);
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE leases SET expires_at = ?4 WHERE name = ?1 AND holder = ?2 AND token = ?3 AND expires_at > ?5",
                params![lease.name, lease.holder, lease.token, expires.as_micros(), now.as_micros()],
            )?;
            Ok((changed == 1).then(|| Lease { expires_at: expires, ..lease.clone() }))
        })
    }

    fn release_lease(&self, lease: &Lease) -> Result<()> {
        self.write(|tx| {
            // Expire rather than delete, so the fencing token keeps growing.
            tx.execute(
                "UPDATE leases SET expires_at = ?4 WHERE name = ?1 AND holder = ?2 AND token = ?3",
                params![lease.name, lease.holder, lease.token, 0i64],
            )?;
            Ok(())
        })
    }

    fn current_lease(&self, name: &str, now: Timestamp) -> Result<Option<Lease>> {
        self.read(|conn| {
            Ok(conn
                .query_row(
                    "SELECT name, holder, token, expires_at FROM leases WHERE name = ?1 AND expires_at > ?2",
                    params![name, now.as_micros()],
                    lease_row,
                )
                .optional()?)
        })
    }
    fn create_api_key(&self, key: &NewApiKey) -> Result<ApiKey> {
        key.validate()?;
        self.write(|tx| {
            tx.execute(
                "INSERT INTO api_keys (name, prefix, hash, workspace, role, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    key.name,
                    key.prefix,
                    &key.hash[..],
                    key.workspace.as_ref().map(|w| w.to_string()),
                    key.role.as_str(),
                    key.now.as_micros()
                ],
            )?;
            let id = tx.last_insert_rowid();
            Ok(tx.query_row(&format!("SELECT {API_KEY_COLUMNS} FROM api_keys WHERE id = ?1"), [id], api_key_row)?)
        })
    }

    fn api_key_by_hash(&self, hash: &[u8; 32]) -> Result<Option<ApiKey>> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached(&format!(
                    "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE hash = ?1 AND revoked_at IS NULL"
                ))?
                .query_row([&hash[..]], api_key_row)
                .optional()?)
        })
    }

    fn api_keys(&self) -> Result<Vec<ApiKey>> {
        self.read(|conn| {
            let mut stmt = conn.prepare(&format!("SELECT {API_KEY_COLUMNS} FROM api_keys ORDER BY id"))?;
            let rows = stmt.query_map([], api_key_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn revoke_api_key(&self, id: i64, now: Timestamp) -> Result<ApiKey> {
        self.write(|tx| {
            tx.execute(
                "UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                params![id, now.as_micros()],
            )?;
            tx.query_row(&format!("SELECT {API_KEY_COLUMNS} FROM api_keys WHERE id = ?1"), [id], api_key_row)
                .optional()?
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
            check_fence_in(&mut Writer(tx), fence)?;
            let list = tx
                .prepare_cached(&format!(
                    "SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE routed = 0 ORDER BY id LIMIT ?1"
                ))?
                .query_map([limit.clamp(1, 10_000) as i64], |r| rows::notification(r, 0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            for n in &list {
                for d in route(n) {
                    tx.prepare_cached(
                        "INSERT OR IGNORE INTO deliveries (notification_id, destination, status, attempts, next_attempt_at, created_at)
                         VALUES (?1, ?2, 'pending', 0, ?3, ?3)",
                    )?
                    .execute(params![n.id, d, now.as_micros()])?;
                }
                tx.prepare_cached("UPDATE notifications SET routed = 1 WHERE id = ?1")?.execute([n.id])?;
            }
            Ok(list.len())
        })
    }

    fn due_deliveries(&self, destination: &str, now: Timestamp, limit: usize) -> Result<Vec<Delivery>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN notifications n ON n.id = d.notification_id
                 WHERE d.destination = ?1 AND d.status = 'pending' AND d.next_attempt_at <= ?2
                 ORDER BY d.next_attempt_at, d.id LIMIT ?3"
            ))?;
            let rows = stmt.query_map(params![destination, now.as_micros(), limit.clamp(1, 10_000) as i64], |r| {
                rows::delivery(r)
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn record_delivery(
        &self,
        id: i64,
        result: &DeliveryResult,
        fence: Option<&Fence>,
        now: Timestamp,
    ) -> Result<Delivery> {
        self.write(|tx| {
            check_fence_in(&mut Writer(tx), fence)?;
            let current = get_delivery(tx, id)?;
            if current.status != DeliveryStatus::Pending {
                return Err(StoreError::Invalid {
                    field: "id".into(),
                    message: format!("delivery {id} is already {}", current.status.as_str()),
                });
            }
            let (status, next, error, finished) = delivery_update(result, now);
            tx.prepare_cached(
                "UPDATE deliveries SET status = ?2, attempts = attempts + 1, next_attempt_at = ?3, last_error = COALESCE(?4, last_error),
                 finished_at = ?5 WHERE id = ?1",
            )?
            .execute(params![id, status, next, error, finished])?;
            get_delivery(tx, id)
        })
    }

    fn deliveries(&self, q: &DeliveryQuery) -> Result<Vec<Delivery>> {
        let mut f = Filter::default();
        f.eq("d.status", q.status.map(|s| s.as_str().to_string()));
        f.eq("d.destination", q.destination.clone());
        f.eq("n.workspace", q.workspace.as_ref().map(|w| w.to_string()));
        f.eq("n.plugin", q.plugin.as_ref().map(|p| p.to_string()));
        let (clause, args) = f.finish("d.id DESC", q.limit);
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN notifications n ON n.id = d.notification_id{clause}"
        );
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(params_from_iter(args), |r| rows::delivery(r))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn retry_delivery(&self, id: i64, now: Timestamp) -> Result<Delivery> {
        self.write(|tx| {
            let current = get_delivery(tx, id)?;
            if current.status == DeliveryStatus::Delivered {
                return Err(StoreError::Invalid {
                    field: "id".into(),
                    message: format!("delivery {id} was already delivered"),
                });
            }
            tx.prepare_cached(
                "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?2, finished_at = NULL WHERE id = ?1",
            )?
            .execute(params![id, now.as_micros()])?;
            get_delivery(tx, id)
        })
    }

    fn outbox_stats(&self) -> Result<OutboxStats> {
        self.read(|conn| {
            let (unrouted, oldest): (i64, Option<i64>) = conn.query_row(
                "SELECT COUNT(*), MIN(occurred_at) FROM notifications WHERE routed = 0",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let mut stats = OutboxStats { unrouted: unrouted as u64, oldest_unrouted: oldest.and_then(Timestamp::from_micros), ..Default::default() };
            let mut stmt = conn.prepare_cached(
                "SELECT destination, status, COUNT(*) FROM deliveries GROUP BY destination, status ORDER BY destination, status",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?)))?;
            for row in rows {
                let (d, s, n) = row?;
                if let Some(s) = DeliveryStatus::parse(&s) {
                    stats.deliveries.push((d, s, n as u64));
                }
            }
            let mut stmt = conn.prepare_cached(
                "SELECT destination, MIN(created_at) FROM deliveries WHERE status = 'pending' GROUP BY destination ORDER BY destination",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            for row in rows {
                let (d, t) = row?;
                if let Some(t) = Timestamp::from_micros(t) {
                    stats.oldest_pending.push((d, t));
                }
            }
            Ok(stats)
        })
    }
}
