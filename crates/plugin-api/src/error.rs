//! The error a plugin (or the host, on its behalf) returns.
//!
//! It crosses the C ABI as JSON, so it is plain data. The variant decides
//! the HTTP status the API gives a client: `Invalid` is a 4xx naming the
//! field, `NotFound` 404, `Conflict` 409, `Unavailable` 503 and `Internal`
//! a 500 whose message is logged but never shown to clients.

use serde::{Deserialize, Serialize};

/// What went wrong in a plugin call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PluginError {
    /// The caller sent something invalid.
    #[error("{field}: {message}")]
    Invalid {
        /// The offending field or config key.
        field: String,
        /// What was wrong and what was expected.
        message: String,
    },
    /// The thing asked for does not exist.
    #[error("{message}")]
    NotFound {
        /// What was not found.
        message: String,
    },
    /// A concurrent change won (a state compare-and-set failed).
    #[error("{message}")]
    Conflict {
        /// What conflicted.
        message: String,
    },
    /// A capability the call needs is not available (no vector store, no LLM).
    #[error("{message}")]
    Unavailable {
        /// What is missing.
        message: String,
    },
    /// A bug or a failure inside the plugin or the host.
    #[error("{message}")]
    Internal {
        /// Details, for logs only.
        message: String,
    },
}

impl PluginError {
    /// An [`PluginError::Invalid`] about `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        PluginError::Invalid { field: field.into(), message: message.into() }
    }
    /// A [`PluginError::NotFound`].
    pub fn not_found(message: impl Into<String>) -> Self {
        PluginError::NotFound { message: message.into() }
    }
    /// A [`PluginError::Internal`].
    pub fn internal(message: impl Into<String>) -> Self {
        PluginError::Internal { message: message.into() }
    }
    /// A [`PluginError::Unavailable`].
    pub fn unavailable(message: impl Into<String>) -> Self {
        PluginError::Unavailable { message: message.into() }
    }
}

impl From<learnloop_core::ValidationError> for PluginError {
    fn from(e: learnloop_core::ValidationError) -> Self {
        PluginError::Invalid { field: e.field, message: e.message }
    }
}

impl From<serde_json::Error> for PluginError {
    fn from(e: serde_json::Error) -> Self {
        PluginError::internal(format!("JSON: {e}"))
    }
}
