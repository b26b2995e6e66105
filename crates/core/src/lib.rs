//! The vocabulary every part of learnloop shares: workspaces, predictions,
//! outcomes, insights, alerts, improvements and job runs, with the validation
//! that decides what may enter the system at all.
//!
//! This crate does no I/O. It turns untrusted input (a JSON line, a CSV row, an
//! HTTP body) into validated values, or into a [`ValidationError`] that names
//! the offending field, so that every entry point rejects bad input the same
//! way and nothing downstream has to re-check it.

#![deny(missing_docs)]

pub mod columns;
mod error;
pub mod history;
mod ids;
pub mod json;
pub mod keys;
pub mod limits;
mod model;
pub mod notify;
pub mod plain;
mod record;
mod time;

pub use error::ValidationError;
pub use ids::{PluginName, RecordId, WorkspaceId};
pub use model::{
    Alert, ApiKey, Improvement, ImprovementEvent, ImprovementStatus, Insight, JobRun, JobStatus, NewAlert,
    NewImprovement, NewInsight, Role, Severity,
};
pub use notify::{Delivery, DeliveryStatus, NewNotification, Notification};
pub use record::{ContentHash, Outcome, Prediction, RawRecord, Record, RecordDefaults, RecordType, parse_json_record};
pub use time::Timestamp;
