//! Services the host lends plugins beside the store: a vector index, an
//! embedder and a local LLM.
//!
//! The traits live in `learnloop-plugin-api` (re-exported here), so that the
//! crates that implement them (`learnloop-vector`, `learnloop-llm`) plug in
//! without depending on the host or its store. A host without one keeps
//! working: the context answers `Unavailable` for vectors and embeddings and
//! `None` for generation, and plugins take their deterministic path.

use std::sync::Arc;

pub use learnloop_plugin_api::services::{Embedder, Llm, Scope, VectorIndex};

/// What the host lends plugins besides the store. Every part is optional.
#[derive(Clone, Default)]
pub struct Services {
    /// The vector index.
    pub vectors: Option<Arc<dyn VectorIndex>>,
    /// The embedder.
    pub embedder: Option<Arc<dyn Embedder>>,
    /// The LLM.
    pub llm: Option<Arc<dyn Llm>>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("vectors", &self.vectors.is_some())
            .field("embedder", &self.embedder.is_some())
            .field("llm", &self.llm.is_some())
            .finish()
    }
}
