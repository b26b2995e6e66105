//! Store errors.
//!
//! Policy: variants that describe something the caller did (a conflict, a
//! rejected record, a lost compare-and-set, a taken slot) carry enough to
//! build a client-facing message; [`StoreError::Backend`] is everything else
//! (I/O, a corrupt file, a dropped connection) and its text is for logs only.

use learnloop_core::RecordId;

/// Why the store refused one record of a batch.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Rejection {
    /// A record with this id exists with different content.
    Conflict {
        /// What differs: `content` or `event_time`.
        differs: &'static str,
    },
    /// The outcome's prediction is not in this workspace.
    UnknownPrediction {
        /// The missing prediction.
        prediction_id: RecordId,
    },
    /// The outcome names another plugin than its prediction.
    PluginMismatch {
        /// The prediction's plugin.
        prediction_plugin: String,
    },
}

impl Rejection {
    /// The record field at fault: `id` for a conflict, `prediction_id` for
    /// an unknown prediction, `plugin` for a plugin mismatch. Callers show
    /// it as data (an API item's `field`, a CLI rejection's `field`) rather
    /// than recovering it from the message text.
    pub fn field(&self) -> &'static str {
        match self {
            Rejection::Conflict { .. } => "id",
            Rejection::UnknownPrediction { .. } => "prediction_id",
            Rejection::PluginMismatch { .. } => "plugin",
        }
    }

    /// Why, in plain words, without the field.
    pub fn message(&self) -> String {
        match self {
            Rejection::Conflict { differs } => {
                format!("a record with this id already exists with a different {differs}")
            }
            Rejection::UnknownPrediction { prediction_id } => {
                format!("no prediction {:?} in this workspace (send the prediction first)", prediction_id.as_str())
            }
            Rejection::PluginMismatch { prediction_plugin } => {
                format!("the prediction belongs to plugin {prediction_plugin:?}")
            }
        }
    }

    /// Whether the record conflicts with a stored one (same id, other
    /// content): the API answers a single such record with 409.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Rejection::Conflict { .. })
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A conflict is named as such rather than by its field (`id`), as
        // the store's messages always have.
        let label = if self.is_conflict() { "conflict" } else { self.field() };
        write!(f, "{label}: {}", self.message())
    }
}

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An all-or-nothing batch had a rejected record; nothing was stored.
    #[error("record {index} ({id}) was rejected, nothing stored: {reason}")]
    Rejected {
        /// Position in the batch.
        index: usize,
        /// The record's id.
        id: RecordId,
        /// Why.
        reason: Rejection,
    },
    /// Compare-and-set failed: the document is not at the expected version.
    #[error("state {key}: expected {expected}, found {found}")]
    VersionConflict {
        /// The document key.
        key: String,
        /// What the caller expected.
        expected: String,
        /// What is there.
        found: String,
    },
    /// This job slot and attempt were already started.
    #[error("job {plugin}.{job} slot {slot} attempt {attempt} was already started")]
    SlotTaken {
        /// Plugin.
        plugin: String,
        /// Job.
        job: String,
        /// Slot (epoch microseconds).
        slot: i64,
        /// Attempt.
        attempt: u32,
    },
    /// A fenced commit whose lease has changed hands since: nothing was written.
    #[error(
        "lease {lease:?} moved on (token {token} is now {current}): this process no longer holds it, nothing was written"
    )]
    Fenced {
        /// The lease.
        lease: String,
        /// The token the commit carried.
        token: i64,
        /// The lease's token now (`none` when it does not exist).
        current: String,
    },
    /// No such object.
    #[error("{0} not found")]
    NotFound(String),
    /// An argument was invalid (a bad cursor, an over-long state key).
    #[error("{field}: {message}")]
    Invalid {
        /// The argument.
        field: String,
        /// What was wrong.
        message: String,
    },
    /// The data was written by a newer learnloop.
    #[error("the store has schema version {found}, newer than this binary's {supported}; upgrade learnloop")]
    SchemaTooNew {
        /// Version in the store.
        found: i64,
        /// Newest version this binary knows.
        supported: i64,
    },
    /// The configuration asks for something this build cannot do.
    #[error("{0}")]
    Unsupported(String),
    /// The disk (or the database's space) is full: nothing of this write
    /// was stored. Writes work again once space is freed; reads still work.
    #[error("the store is out of space: {0}")]
    OutOfSpace(String),
    /// The database or the file system failed.
    #[error("store backend error: {0}")]
    Backend(String),
}

impl StoreError {
    /// The same failure for another caller of a shared write (a group
    /// commit): out of space stays out of space, anything else becomes
    /// [`StoreError::Backend`] with this error's text.
    pub fn for_another_caller(&self) -> StoreError {
        match self {
            StoreError::OutOfSpace(m) => StoreError::OutOfSpace(m.clone()),
            other => StoreError::Backend(other.to_string()),
        }
    }
}

/// `ENOSPC` and `EDQUOT`: no space left on the device, or over quota.
fn is_no_space(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull || matches!(e.raw_os_error(), Some(28) | Some(122))
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        // SQLITE_FULL: the disk is full (SQLite's unix VFS turns a write's
        // ENOSPC into it), or the file reached max_page_count.
        let full = matches!(&e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::DiskFull);
        if full { StoreError::OutOfSpace(e.to_string()) } else { StoreError::Backend(e.to_string()) }
    }
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        if is_no_space(&e) { StoreError::OutOfSpace(e.to_string()) } else { StoreError::Backend(e.to_string()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The field is data; the text the store always showed is unchanged.
    #[test]
    fn a_rejection_names_its_field_as_data() {
        let id = RecordId::parse("prediction_id", "p1").unwrap();
        let cases = [
            (
                Rejection::Conflict { differs: "content" },
                "id",
                "conflict: a record with this id already exists with a different content",
            ),
            (
                Rejection::UnknownPrediction { prediction_id: id },
                "prediction_id",
                "prediction_id: no prediction \"p1\" in this workspace (send the prediction first)",
            ),
            (
                Rejection::PluginMismatch { prediction_plugin: "cost".into() },
                "plugin",
                "plugin: the prediction belongs to plugin \"cost\"",
            ),
        ];
        for (r, field, text) in cases {
            assert_eq!(r.field(), field);
            assert_eq!(r.to_string(), text);
            assert!(text.ends_with(&r.message()), "{text}");
        }
    }
}
