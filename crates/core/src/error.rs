//! The one error type for rejected input.
//!
//! A validation error always carries the path of the offending field (for
//! example `features.age` or `confidence`) and a sentence a person can act on,
//! because "invalid input" without a field is the error users hate most.

use std::fmt;

/// Input that was rejected, with the field that was wrong and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ValidationError {
    /// Dotted path of the offending field (`""` when the whole record is wrong).
    pub field: String,
    /// What was wrong and what was expected, as a full sentence fragment.
    pub message: String,
}

impl ValidationError {
    /// An error about `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

impl std::error::Error for ValidationError {}
