//! Copying an embedded (SQLite) installation into PostgreSQL, for
//! `learnloop migrate`.
//!
//! Every table is copied row for row, keys included: seqs, ids (alerts,
//! improvements and job runs are addressed by id), versions, fencing tokens,
//! timestamps. The source is read in one read transaction, so the copy is a
//! consistent snapshot even if something writes meanwhile; rows go over in
//! chunks in key order, each chunk one transaction with `ON CONFLICT DO
//! NOTHING`, so an interrupted copy resumes where it stopped. Afterwards the
//! target's id sequences and its event sequence continue after the copied
//! rows, and every table's row count is compared with the source's.

use std::path::Path;

use rusqlite::types::Value as SqlValue;
use serde::Serialize;

use crate::postgres::{Param, TABLES};
use crate::*;

/// What [`copy_sqlite_to_postgres`] may do.
#[derive(Debug, Clone, Copy, Default)]
pub struct CopyOptions {
    /// Copy into a target that already has rows (resuming an interrupted
    /// copy: rows already there are skipped). Without it a non-empty target
    /// is refused.
    pub resume: bool,
}

/// One table's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableCopy {
    /// Table name.
    pub table: String,
    /// Rows in the source.
    pub source_rows: u64,
    /// Rows this run inserted into the target.
    pub copied: u64,
    /// Rows in the target afterwards (equal to `source_rows`, verified).
    pub target_rows: u64,
}

/// Copies every table of the SQLite store at `source` into `target`; see
/// the module documentation. `progress` is called after each chunk with
/// the table and the rows copied so far.
pub fn copy_sqlite_to_postgres(
    source: &Path,
    target: &PostgresStore,
    options: CopyOptions,
    mut progress: impl FnMut(&str, u64),
) -> Result<Vec<TableCopy>> {
    if !source.exists() {
        return Err(StoreError::Invalid {
            field: "from".into(),
            message: format!("{} does not exist", source.display()),
        });
    }
    // Opening brings an older file's schema up to date first.
    drop(SqliteStore::open(source, &SqliteOptions::default())?);
    if !options.resume {
        let mut non_empty = Vec::new();
        for (table, _) in TABLES {
            let n = target.count_rows(table)?;
            if n > 0 {
                non_empty.push(format!("{table}: {n} rows"));
            }
        }
        if !non_empty.is_empty() {
            return Err(StoreError::Invalid {
                field: "to".into(),
                message: format!(
                    "the target database is not empty ({}); migrate into an empty database, or pass --resume to continue an interrupted copy",
                    non_empty.join(", ")
                ),
            });
        }
    }
    let mut conn = rusqlite::Connection::open_with_flags(source, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let snapshot = conn.transaction()?;
    let mut report = Vec::new();
    for (table, columns) in TABLES {
        let types = target.column_types(table, columns)?;
        let key = key_columns(table);
        let source_rows: i64 = snapshot.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))?;
        // Chunks stay under PostgreSQL's 65,535 parameters per statement.
        let chunk = (30_000 / types.len()).clamp(1, 2_000);
        let mut after: Option<Vec<SqlValue>> = None;
        let mut copied = 0u64;
        loop {
            let (sql, args) = chunk_query(table, columns, &key, after.as_deref(), chunk);
            let mut stmt = snapshot.prepare(&sql)?;
            let rows: Vec<Vec<SqlValue>> = stmt
                .query_map(rusqlite::params_from_iter(args), |r| {
                    (0..types.len()).map(|i| r.get::<_, SqlValue>(i)).collect()
                })?
                .collect::<rusqlite::Result<_>>()?;
            let Some(last) = rows.last() else { break };
            after = Some(key.iter().map(|k| last[k.1].clone()).collect());
            let params = rows
                .iter()
                .map(|row| row.iter().zip(&types).enumerate().map(|(i, (v, ty))| convert(table, i, v, ty)).collect())
                .collect::<Result<Vec<Vec<Param>>>>()?;
            copied += target.import_rows(table, columns, &params)?;
            progress(table, copied);
            if rows.len() < chunk {
                break;
            }
        }
        let target_rows = target.count_rows(table)?;
        if target_rows != source_rows {
            return Err(StoreError::Backend(format!(
                "{table}: {source_rows} rows in the source but {target_rows} in the target after the copy"
            )));
        }
        report.push(TableCopy {
            table: table.to_string(),
            source_rows: source_rows as u64,
            copied,
            target_rows: target_rows as u64,
        });
    }
    snapshot.commit()?;
    target.after_import()?;
    Ok(report)
}

/// The columns rows are ordered and resumed by, with their positions in
/// the table's column list.
fn key_columns(table: &str) -> Vec<(&'static str, usize)> {
    match table {
        "plugin_state" => vec![("plugin", 0), ("workspace", 1), ("key", 2)],
        "leases" => vec![("name", 0)],
        // predictions and outcomes: seq; the rest: id. Both come first.
        "predictions" | "outcomes" => vec![("seq", 0)],
        _ => vec![("id", 0)],
    }
}

fn chunk_query(
    table: &str,
    columns: &str,
    key: &[(&str, usize)],
    after: Option<&[SqlValue]>,
    limit: usize,
) -> (String, Vec<SqlValue>) {
    let names: Vec<&str> = key.iter().map(|k| k.0).collect();
    let tuple = format!("({})", names.join(", "));
    let mut args = Vec::new();
    let filter = match after {
        Some(values) => {
            args.extend(values.iter().cloned());
            let marks: Vec<String> = (1..=values.len()).map(|i| format!("?{i}")).collect();
            format!(" WHERE {tuple} > ({})", marks.join(", "))
        }
        None => String::new(),
    };
    (format!("SELECT {columns} FROM {table}{filter} ORDER BY {} LIMIT {limit}", names.join(", ")), args)
}

/// A SQLite value as the PostgreSQL column type `ty` wants it.
fn convert(table: &str, column: usize, v: &SqlValue, ty: &str) -> Result<Param> {
    let mismatch = || StoreError::Backend(format!("{table} column {column}: cannot copy {v:?} into a {ty} column"));
    Ok(match (ty, v) {
        ("bigint", SqlValue::Null) => Box::new(None::<i64>) as Param,
        ("bigint", SqlValue::Integer(i)) => Box::new(*i) as Param,
        ("double precision", SqlValue::Null) => Box::new(None::<f64>) as Param,
        ("double precision", SqlValue::Real(f)) => Box::new(*f) as Param,
        ("double precision", SqlValue::Integer(i)) => Box::new(*i as f64) as Param,
        ("text", SqlValue::Null) => Box::new(None::<String>) as Param,
        ("text", SqlValue::Text(s)) => Box::new(s.clone()) as Param,
        ("bytea", SqlValue::Blob(b)) => Box::new(b.clone()) as Param,
        ("bytea", SqlValue::Null) => Box::new(None::<Vec<u8>>) as Param,
        ("boolean", SqlValue::Null) => Box::new(None::<bool>) as Param,
        ("boolean", SqlValue::Integer(i)) => Box::new(*i != 0) as Param,
        _ => return Err(mismatch()),
    })
}
