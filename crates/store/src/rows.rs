//! Row mapping shared by both backends: a stored row, read by column index,
//! becomes a record, job run, lease, insight, alert, improvement or API key
//! the same way whichever database it came from.
//!
//! Each backend selects the columns in the order of the `*_COLUMNS` lists in
//! `common.rs` and implements [`RowRead`] for its row type; what differs is
//! only how a column is fetched and how a bad value is reported (SQLite's
//! mappers must return `rusqlite::Error` to fit `query_map`, PostgreSQL's
//! return a [`StoreError`]).

use learnloop_core::{
    Alert, ApiKey, Improvement, ImprovementStatus, Insight, JobRun, JobStatus, Outcome, Prediction, Role, Timestamp,
    ValidationError,
};
use serde_json::Value;

use crate::common::severity_from_str;
use crate::{Lease, StoredOutcome, StoredPrediction};

/// A column type both backends can decode.
#[cfg(feature = "postgres")]
pub(crate) trait Column: rusqlite::types::FromSql + for<'a> ::postgres::types::FromSql<'a> {}
#[cfg(feature = "postgres")]
impl<T: rusqlite::types::FromSql + for<'a> ::postgres::types::FromSql<'a>> Column for T {}
/// A column type both backends can decode.
#[cfg(not(feature = "postgres"))]
pub(crate) trait Column: rusqlite::types::FromSql {}
#[cfg(not(feature = "postgres"))]
impl<T: rusqlite::types::FromSql> Column for T {}

/// One result row of a backend, read by column index.
pub(crate) trait RowRead {
    /// What a failed read is in this backend.
    type Error;

    /// Column `i`, decoded as `T`.
    fn col<T: Column>(&self, i: usize) -> Result<T, Self::Error>;

    /// Column `i` holds a value the store never writes.
    fn bad(i: usize, message: String) -> Self::Error;

    /// Column `i`, microseconds since the epoch, as a timestamp.
    fn ts(&self, i: usize) -> Result<Timestamp, Self::Error> {
        let micros: i64 = self.col(i)?;
        Timestamp::from_micros(micros).ok_or_else(|| Self::bad(i, format!("timestamp {micros} out of range")))
    }

    /// [`RowRead::ts`] of a nullable column.
    fn opt_ts(&self, i: usize) -> Result<Option<Timestamp>, Self::Error> {
        match self.col::<Option<i64>>(i)? {
            None => Ok(None),
            Some(micros) => Timestamp::from_micros(micros)
                .map(Some)
                .ok_or_else(|| Self::bad(i, format!("timestamp {micros} out of range"))),
        }
    }

    /// Column `i` as an id (workspace, plugin, record id).
    fn id<T: TryFrom<String, Error = ValidationError>>(&self, i: usize) -> Result<T, Self::Error> {
        T::try_from(self.col::<String>(i)?).map_err(|e| Self::bad(i, e.to_string()))
    }

    /// Column `i`, JSON text, decoded; NULL is `T::default()`.
    fn json<T: serde::de::DeserializeOwned + Default>(&self, i: usize) -> Result<T, Self::Error> {
        match self.col::<Option<String>>(i)? {
            None => Ok(T::default()),
            Some(s) => serde_json::from_str(&s).map_err(|e| Self::bad(i, e.to_string())),
        }
    }

    /// Column `i`, JSON text (never NULL), as a value.
    fn json_value(&self, i: usize) -> Result<Value, Self::Error> {
        let s: String = self.col(i)?;
        serde_json::from_str(&s).map_err(|e| Self::bad(i, e.to_string()))
    }

    /// [`RowRead::json_value`] of a nullable column.
    fn opt_json_value(&self, i: usize) -> Result<Option<Value>, Self::Error> {
        match self.col::<Option<String>>(i)? {
            None => Ok(None),
            Some(s) => serde_json::from_str(&s).map(Some).map_err(|e| Self::bad(i, e.to_string())),
        }
    }
}

impl RowRead for rusqlite::Row<'_> {
    type Error = rusqlite::Error;

    fn col<T: Column>(&self, i: usize) -> rusqlite::Result<T> {
        self.get(i)
    }

    fn bad(i: usize, message: String) -> rusqlite::Error {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, message.into())
    }
}

#[cfg(feature = "postgres")]
impl RowRead for ::postgres::Row {
    type Error = crate::StoreError;

    fn col<T: Column>(&self, i: usize) -> crate::Result<T> {
        self.try_get(i).map_err(crate::StoreError::from)
    }

    fn bad(i: usize, message: String) -> crate::StoreError {
        crate::StoreError::Backend(format!("unreadable value in the store (column {i}): {message}"))
    }
}

/// A prediction, from [`crate::common::PREDICTION_COLUMNS`].
pub(crate) fn prediction<R: RowRead>(r: &R) -> Result<StoredPrediction, R::Error> {
    Ok(StoredPrediction {
        seq: r.col(0)?,
        ingested_at: r.ts(12)?,
        record: Prediction {
            workspace: r.id(1)?,
            id: r.id(2)?,
            plugin: r.id(3)?,
            subject: r.col(4)?,
            kind: r.col(5)?,
            value: r.col(6)?,
            label: r.col(7)?,
            confidence: r.col(8)?,
            features: r.json(9)?,
            payload: r.json(10)?,
            event_time: Some(r.ts(11)?),
        },
    })
}

/// An outcome, from [`crate::common::OUTCOME_COLUMNS`].
pub(crate) fn outcome<R: RowRead>(r: &R) -> Result<StoredOutcome, R::Error> {
    Ok(StoredOutcome {
        seq: r.col(0)?,
        ingested_at: r.ts(14)?,
        subject: r.col(5)?,
        kind: r.col(6)?,
        record: Outcome {
            workspace: r.id(1)?,
            id: r.id(2)?,
            plugin: r.id(3)?,
            prediction_id: r.id(4)?,
            value: r.col(7)?,
            label: r.col(8)?,
            success: r.col(9)?,
            quality: r.col(10)?,
            feedback: r.col(11)?,
            payload: r.json(12)?,
            event_time: Some(r.ts(13)?),
        },
    })
}

/// A job run, from [`crate::common::JOB_RUN_COLUMNS`].
pub(crate) fn job_run<R: RowRead>(r: &R) -> Result<JobRun, R::Error> {
    let attempt: i64 = r.col(4)?;
    let status: String = r.col(6)?;
    Ok(JobRun {
        id: r.col(0)?,
        plugin: r.id(1)?,
        job: r.col(2)?,
        slot: r.col(3)?,
        attempt: u32::try_from(attempt).map_err(|_| R::bad(4, format!("attempt {attempt}")))?,
        runner: r.col(5)?,
        status: JobStatus::parse(&status).ok_or_else(|| R::bad(6, format!("job status {status:?}")))?,
        started_at: r.ts(7)?,
        finished_at: r.opt_ts(8)?,
        report: r.opt_json_value(9)?,
        error: r.col(10)?,
    })
}

/// A lease, from `name, holder, token, expires_at`.
pub(crate) fn lease<R: RowRead>(r: &R) -> Result<Lease, R::Error> {
    Ok(Lease { name: r.col(0)?, holder: r.col(1)?, token: r.col(2)?, expires_at: r.ts(3)? })
}

/// An insight, from [`crate::common::INSIGHT_COLUMNS`].
pub(crate) fn insight<R: RowRead>(r: &R) -> Result<Insight, R::Error> {
    Ok(Insight {
        id: r.col(0)?,
        workspace: r.id(1)?,
        plugin: r.id(2)?,
        kind: r.col(3)?,
        title: r.col(4)?,
        detail: r.col(5)?,
        confidence: r.col(6)?,
        impact: r.col(7)?,
        data: r.json_value(8)?,
        created_at: r.ts(9)?,
    })
}

/// An alert, from [`crate::common::ALERT_COLUMNS`].
pub(crate) fn alert<R: RowRead>(r: &R) -> Result<Alert, R::Error> {
    let severity: String = r.col(3)?;
    Ok(Alert {
        id: r.col(0)?,
        workspace: r.id(1)?,
        plugin: r.id(2)?,
        severity: severity_from_str(&severity).ok_or_else(|| R::bad(3, format!("severity {severity:?}")))?,
        kind: r.col(4)?,
        subject: r.col(5)?,
        message: r.col(6)?,
        dedup_key: r.col(7)?,
        data: r.json_value(8)?,
        created_at: r.ts(9)?,
        last_seen_at: r.ts(10)?,
        occurrences: r.col::<i64>(11)? as u64,
        acknowledged_at: r.opt_ts(12)?,
    })
}

/// An improvement, from [`crate::common::IMPROVEMENT_COLUMNS`].
pub(crate) fn improvement<R: RowRead>(r: &R) -> Result<Improvement, R::Error> {
    let status: String = r.col(5)?;
    Ok(Improvement {
        id: r.col(0)?,
        workspace: r.id(1)?,
        plugin: r.id(2)?,
        target: r.col(3)?,
        version: r.col::<i64>(4)? as u64,
        status: ImprovementStatus::parse("status", &status).map_err(|e| R::bad(5, e.message))?,
        params: r.json_value(6)?,
        evidence: r.json_value(7)?,
        metric: r.col(8)?,
        expected_gain: r.col(9)?,
        backtest: r.opt_json_value(10)?,
        created_at: r.ts(11)?,
        updated_at: r.ts(12)?,
        history: serde_json::from_value(r.json_value(13)?).map_err(|e| R::bad(13, e.to_string()))?,
    })
}

/// An API key, from [`crate::common::API_KEY_COLUMNS`].
pub(crate) fn api_key<R: RowRead>(r: &R) -> Result<ApiKey, R::Error> {
    let role: String = r.col(4)?;
    Ok(ApiKey {
        id: r.col(0)?,
        name: r.col(1)?,
        prefix: r.col(2)?,
        workspace: match r.col::<Option<String>>(3)? {
            None => None,
            Some(w) => Some(w.try_into().map_err(|e: ValidationError| R::bad(3, e.to_string()))?),
        },
        role: Role::parse(&role).ok_or_else(|| R::bad(4, format!("role {role:?}")))?,
        created_at: r.ts(5)?,
        revoked_at: r.opt_ts(6)?,
    })
}

/// A notification, from [`crate::common::NOTIFICATION_COLUMNS`] starting at column `at`.
pub(crate) fn notification<R: RowRead>(r: &R, at: usize) -> Result<learnloop_core::Notification, R::Error> {
    let severity: String = r.col(at + 5)?;
    let workspace = match r.col::<Option<String>>(at + 2)? {
        None => None,
        Some(w) => Some(learnloop_core::WorkspaceId::try_from(w).map_err(|e| R::bad(at + 2, e.to_string()))?),
    };
    Ok(learnloop_core::Notification {
        id: r.col(at)?,
        uid: r.col(at + 1)?,
        workspace,
        plugin: r.id(at + 3)?,
        event: r.col(at + 4)?,
        severity: severity_from_str(&severity).ok_or_else(|| R::bad(at + 5, format!("severity {severity:?}")))?,
        subject: r.col(at + 6)?,
        summary: r.col(at + 7)?,
        dedup_key: r.col(at + 8)?,
        link: r.col(at + 9)?,
        data: r.json_value(at + 10)?,
        occurred_at: r.ts(at + 11)?,
    })
}

/// A delivery with its notification, from [`crate::common::DELIVERY_COLUMNS`].
pub(crate) fn delivery<R: RowRead>(r: &R) -> Result<learnloop_core::Delivery, R::Error> {
    let status: String = r.col(2)?;
    let attempts: i64 = r.col(3)?;
    Ok(learnloop_core::Delivery {
        id: r.col(0)?,
        destination: r.col(1)?,
        status: learnloop_core::DeliveryStatus::parse(&status)
            .ok_or_else(|| R::bad(2, format!("delivery status {status:?}")))?,
        attempts: u32::try_from(attempts).map_err(|_| R::bad(3, format!("attempts {attempts}")))?,
        next_attempt_at: r.opt_ts(4)?,
        last_error: r.col(5)?,
        created_at: r.ts(6)?,
        finished_at: r.opt_ts(7)?,
        notification: notification(r, 8)?,
    })
}
