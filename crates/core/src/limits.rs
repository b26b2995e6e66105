//! Size limits on everything a client can send.
//!
//! Limits exist so that one bad client cannot make the store, a plugin or a
//! learning job allocate without bound. They are constants rather than
//! configuration because stored data must stay readable by every node of an
//! installation, whatever each node's config says.

/// Longest record id (prediction and outcome ids), in bytes.
pub const MAX_ID_LEN: usize = 128;
/// Longest workspace id, in bytes.
pub const MAX_WORKSPACE_LEN: usize = 64;
/// Longest plugin name, in bytes.
pub const MAX_PLUGIN_LEN: usize = 32;
/// Longest `subject` and `kind`, in bytes.
pub const MAX_NAME_LEN: usize = 256;
/// Longest `label`, in bytes.
pub const MAX_LABEL_LEN: usize = 1024;
/// Longest free-text `feedback`, in bytes.
pub const MAX_FEEDBACK_LEN: usize = 16 * 1024;
/// Most entries in a `features` object.
pub const MAX_FEATURES: usize = 256;
/// Longest feature name, in bytes.
pub const MAX_FEATURE_NAME_LEN: usize = 128;
/// Largest `payload` once serialised as JSON, in bytes.
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;
/// Deepest nesting allowed inside a `payload`.
pub const MAX_PAYLOAD_DEPTH: usize = 32;
/// Longest input line (JSONL) or CSV record, in bytes.
pub const MAX_LINE_BYTES: usize = 256 * 1024;
