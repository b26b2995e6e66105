//! The services a host may lend plugins beside the store: a vector index, an
//! embedder and a local LLM, as traits.
//!
//! They live here, beside [`Context`](crate::Context), and not in the host,
//! so that the crates that implement them (`learnloop-vector`,
//! `learnloop-llm`) depend on this light crate only and never on the host
//! and its store (rusqlite, postgres). A host without one keeps working: the
//! context answers `Unavailable` for vectors and embeddings and `None` for
//! generation, and plugins take their deterministic path.

use learnloop_core::{PluginName, WorkspaceId};

use crate::{LlmRequest, PluginError, VectorHit, VectorPoint, VectorQuery};

/// Whose vectors: every collection is scoped to one plugin and one workspace.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    /// The plugin.
    pub plugin: PluginName,
    /// The workspace.
    pub workspace: WorkspaceId,
}

/// A similarity index. Derived data: losing it loses nothing that the store
/// of record cannot rebuild.
pub trait VectorIndex: Send + Sync {
    /// Inserts or replaces points (by id) in a collection of the scope.
    fn upsert(&self, scope: &Scope, collection: &str, points: Vec<VectorPoint>) -> Result<(), PluginError>;
    /// The nearest points of a collection of the scope.
    fn search(&self, scope: &Scope, collection: &str, query: &VectorQuery) -> Result<Vec<VectorHit>, PluginError>;
}

/// Turns texts into vectors.
pub trait Embedder: Send + Sync {
    /// One vector per text, all of the same length.
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, PluginError>;
}

/// A text generator (a local LLM).
pub trait Llm: Send + Sync {
    /// The generated text, or `None` when no model is reachable in time
    /// (the caller then takes its deterministic path).
    fn generate(&self, request: &LlmRequest) -> Result<Option<String>, PluginError>;
}
