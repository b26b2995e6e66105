//! The knowledge store: a similarity index over Qdrant Edge (embedded, the
//! default) or a Qdrant server, and the embedders that feed it.
//!
//! The index is **derived data**. Everything in it is rebuilt from the store
//! of record: plugins keep a sync marker inside the index itself (see the
//! cost plugin's `index` module), so an index that is lost, cleared or
//! rebuilt for a new embedder simply looks empty and is refilled.
//!
//! * [`Backend`] is the one trait over the two backends: `EdgeBackend`
//!   (one Qdrant Edge shard per collection under `<data_dir>/vectors/`;
//!   Cargo feature `edge`, on by default) and [`QdrantBackend`] (a Qdrant
//!   server or cluster over gRPC, always built). Without `edge`,
//!   [`LazyIndex::edge`] still exists and fails on use with
//!   [`VectorError::NotBuilt`], so a lean binary that never searches runs
//!   with the default config.
//! * [`KnowledgeStore`] maps learnloop-plugin-api's [`VectorIndex`] (scoped by plugin and
//!   workspace) onto physical collections of a backend:
//!   `<prefix>_<embedder tag>_<plugin>_<workspace>_<collection>`, where the
//!   embedder tag names the embedder and its dimensions, so vectors of two
//!   embedders never share a collection.
//! * [`StructuredEmbedder`] is the default embedder (no model).
//!
//! **Who writes the embedded index.** Qdrant Edge is single-process (its
//! write-ahead log takes an exclusive `flock`), so with the embedded default
//! exactly one process may open it: `learnloop-api` opens it at start-up
//! and owns it while it runs; `learnloop-scheduler` never opens it (its jobs
//! do not need similarity search, and the plugins' index sync catches up on
//! the API's next call); the `learnloop` CLI opens it on first use when no
//! API holds it, and otherwise reports that the API owns it. With a Qdrant
//! server every process connects and writes concurrently.

#![deny(missing_docs)]

#[cfg(feature = "edge")]
pub mod edge;
pub mod embed;
pub mod server;

use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;

use learnloop_plugin_api::{PluginError, VectorHit, VectorPoint, VectorQuery};
use learnloop_plugin_api::{Scope, VectorIndex};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

#[cfg(feature = "edge")]
pub use edge::EdgeBackend;
pub use embed::StructuredEmbedder;
pub use server::QdrantBackend;

/// Payload key holding a point's own id (Qdrant ids are integers or UUIDs).
pub const ID_KEY: &str = "__id";

/// Errors of the knowledge store.
#[derive(Debug, thiserror::Error)]
pub enum VectorError {
    /// Another process holds the embedded index.
    #[error("{0}")]
    Busy(String),
    /// The backend is not reachable or failed.
    #[error("vector backend: {0}")]
    Backend(String),
    /// A file system error.
    #[error("vector index: {0}")]
    Io(String),
    /// A request the index cannot answer (bad filter, bad name).
    #[error("{0}")]
    Invalid(String),
    /// The config asks for a backend this binary was built without.
    #[error("{0}")]
    NotBuilt(String),
    /// A vector of the wrong length.
    #[error("collection {collection}: vectors have {expected} dimensions, got {got}")]
    Dimensions {
        /// The physical collection.
        collection: String,
        /// Its dimensions.
        expected: usize,
        /// The offending vector's.
        got: usize,
    },
}

impl From<VectorError> for PluginError {
    fn from(e: VectorError) -> PluginError {
        match e {
            VectorError::Busy(m) => PluginError::unavailable(m),
            VectorError::Backend(_) | VectorError::Io(_) => PluginError::unavailable(e.to_string()),
            VectorError::NotBuilt(m) => PluginError::unavailable(m),
            VectorError::Invalid(m) => PluginError::invalid("filter", m),
            VectorError::Dimensions { .. } => PluginError::invalid("vector", e.to_string()),
        }
    }
}

/// A point as a backend stores it: the caller's id, a vector, a payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// The caller's id (hashed to a UUID for Qdrant).
    pub id: String,
    /// The vector.
    pub vector: Vec<f32>,
    /// The payload, including [`ID_KEY`].
    pub payload: Map<String, Value>,
}

/// A search hit as a backend returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// Cosine similarity.
    pub score: f32,
    /// The stored payload, including [`ID_KEY`].
    pub payload: Map<String, Value>,
}

/// One vector index backend.
pub trait Backend: Send + Sync {
    /// Inserts or replaces points (by id), creating the collection with
    /// `dims` dimensions and cosine distance if it does not exist.
    fn upsert(&self, collection: &str, dims: usize, points: Vec<Point>) -> Result<(), VectorError>;
    /// The `limit` nearest points whose payload matches every `filter`
    /// field exactly; an absent collection has none. The first search by a
    /// field creates a payload index on it.
    fn search(
        &self,
        collection: &str,
        vector: &[f32],
        limit: usize,
        filter: &Map<String, Value>,
    ) -> Result<Vec<Hit>, VectorError>;
    /// Points in a collection (0 when absent).
    fn count(&self, collection: &str) -> Result<usize, VectorError>;
    /// Creates payload indexes on `fields` (typed by their example values)
    /// and builds the vector index now rather than lazily.
    fn optimize(&self, collection: &str, fields: &Map<String, Value>) -> Result<(), VectorError>;
    /// Drops every collection of this installation.
    fn clear(&self) -> Result<(), VectorError>;
}

/// A deterministic UUID for a caller's point id.
pub fn point_uuid(id: &str) -> uuid::Uuid {
    let h = Sha256::digest(id.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    uuid::Builder::from_random_bytes(b).into_uuid()
}

/// A name part safe in a Qdrant collection name and a directory name.
pub(crate) fn clean(part: &str) -> String {
    part.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect()
}

/// The host's [`VectorIndex`] over a [`Backend`].
pub struct KnowledgeStore {
    backend: Arc<dyn Backend>,
    prefix: String,
    tag: String,
    dims: usize,
}

impl std::fmt::Debug for KnowledgeStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KnowledgeStore")
            .field("prefix", &self.prefix)
            .field("tag", &self.tag)
            .field("dims", &self.dims)
            .finish()
    }
}

impl KnowledgeStore {
    /// A store over `backend` for vectors of the embedder `embedder_id`
    /// with `dims` dimensions.
    pub fn new(backend: Arc<dyn Backend>, prefix: &str, embedder_id: &str, dims: usize) -> KnowledgeStore {
        KnowledgeStore { backend, prefix: clean(prefix), tag: format!("{}-{dims}", clean(embedder_id)), dims }
    }

    /// The backend.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// The physical collection of a scope's collection.
    pub fn collection(&self, scope: &Scope, collection: &str) -> String {
        format!(
            "{}_{}_{}_{}_{}",
            self.prefix,
            self.tag,
            clean(scope.plugin.as_str()),
            clean(scope.workspace.as_str()),
            clean(collection)
        )
    }

    fn check_name(collection: &str) -> Result<(), PluginError> {
        if collection.is_empty()
            || collection.len() > 64
            || !collection.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(PluginError::invalid("collection", format!("{collection:?}: expected 1–64 of a-z, 0-9, _")));
        }
        Ok(())
    }
}

impl VectorIndex for KnowledgeStore {
    fn upsert(&self, scope: &Scope, collection: &str, points: Vec<VectorPoint>) -> Result<(), PluginError> {
        Self::check_name(collection)?;
        let mut out = Vec::with_capacity(points.len());
        for p in points {
            if p.vector.len() != self.dims {
                return Err(PluginError::invalid(
                    "vector",
                    format!("point {:?} has {} dimensions; the embedder gives {}", p.id, p.vector.len(), self.dims),
                ));
            }
            if p.vector.iter().any(|x| !x.is_finite()) {
                return Err(PluginError::invalid("vector", format!("point {:?} has a non-finite component", p.id)));
            }
            let mut payload = match p.payload {
                Value::Object(m) => m,
                Value::Null => Map::new(),
                other => {
                    return Err(PluginError::invalid(
                        "payload",
                        format!("point {:?}: payload must be an object, got {other}", p.id),
                    ));
                }
            };
            payload.insert(ID_KEY.into(), Value::String(p.id.clone()));
            out.push(Point { id: p.id, vector: p.vector, payload });
        }
        Ok(self.backend.upsert(&self.collection(scope, collection), self.dims, out)?)
    }

    fn search(&self, scope: &Scope, collection: &str, query: &VectorQuery) -> Result<Vec<VectorHit>, PluginError> {
        Self::check_name(collection)?;
        if query.vector.len() != self.dims {
            return Err(PluginError::invalid(
                "vector",
                format!("query has {} dimensions; the embedder gives {}", query.vector.len(), self.dims),
            ));
        }
        let filter = match &query.filter {
            Value::Object(m) => m.clone(),
            Value::Null => Map::new(),
            other => {
                return Err(PluginError::invalid(
                    "filter",
                    format!("must be an object of exact-match fields, got {other}"),
                ));
            }
        };
        let hits = self.backend.search(&self.collection(scope, collection), &query.vector, query.limit, &filter)?;
        Ok(hits
            .into_iter()
            .map(|mut h| {
                let id = match h.payload.remove(ID_KEY) {
                    Some(Value::String(s)) => s,
                    _ => String::new(),
                };
                VectorHit { id, score: h.score, payload: Value::Object(h.payload) }
            })
            .collect())
    }
}

/// Metadata kept with the embedded index: which embedder wrote it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct IndexMeta {
    /// Embedder id.
    pub embedder: String,
    /// Its dimensions.
    pub dims: usize,
}

/// Why [`LazyIndex::edge`] cannot open in a build without the `edge` feature.
pub const EDGE_NOT_BUILT: &str = "[vector] backend = \"edge\": this binary was built without the vector-edge feature; use backend = \"qdrant\" (a Qdrant server at [vector] url) or rebuild with the vector-edge feature";

/// Whether this build has the embedded Qdrant Edge backend (feature `edge`).
pub const EDGE_BUILT: bool = cfg!(feature = "edge");

/// Opens the embedded index under `root` for `embedder`/`dims`. When the
/// index was written by another embedder (or has no metadata) it is cleared
/// and the reason returned: plugins then refill it from the store of record.
#[cfg(feature = "edge")]
pub fn open_edge(root: &Path, embedder: &str, dims: usize) -> Result<(EdgeBackend, Option<String>), VectorError> {
    let backend = EdgeBackend::open(root)?;
    let meta_path = root.join("index.json");
    let want = IndexMeta { embedder: embedder.to_string(), dims };
    let have: Option<IndexMeta> = std::fs::read(&meta_path).ok().and_then(|b| serde_json::from_slice(&b).ok());
    let mut note = None;
    if have.as_ref() != Some(&want) {
        let had_data = std::fs::read_dir(root).map(|d| d.flatten().any(|e| e.path().is_dir())).unwrap_or(false);
        backend.clear()?;
        if had_data {
            note = Some(match &have {
                Some(h) => format!(
                    "embedder changed from {} ({} dims) to {embedder} ({dims} dims): the vector index was cleared and is rebuilt from the store",
                    h.embedder, h.dims
                ),
                None => "the vector index had no metadata: it was cleared and is rebuilt from the store".to_string(),
            });
        }
        let bytes = serde_json::to_vec_pretty(&want).map_err(|e| VectorError::Io(e.to_string()))?;
        std::fs::write(&meta_path, bytes).map_err(|e| VectorError::Io(format!("{}: {e}", meta_path.display())))?;
    }
    Ok((backend, note))
}

type Opener = Box<dyn Fn() -> Result<KnowledgeStore, VectorError> + Send + Sync>;

/// Tells an index its embedder's dimensions when it is opened.
pub type Dims = Box<dyn Fn() -> Result<usize, VectorError> + Send + Sync>;

/// A [`VectorIndex`] opened on first use, so a process that never searches
/// (or runs beside the API that owns the embedded index) never takes its
/// lock or dials its server. A failure to open is not remembered: the next
/// use tries again (the other process may have exited, the server may be
/// back).
pub struct LazyIndex {
    what: String,
    open: Opener,
    cell: Mutex<Option<Arc<KnowledgeStore>>>,
}

impl std::fmt::Debug for LazyIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyIndex").field("what", &self.what).field("open", &self.cell.lock().is_some()).finish()
    }
}

impl LazyIndex {
    /// The embedded index under `root` for vectors of `embedder`, whose
    /// dimensions `dims` tells when the index is opened (a model's are only
    /// known once it answers). Without the `edge` feature every use fails
    /// with [`VectorError::NotBuilt`] ([`EDGE_NOT_BUILT`]).
    #[cfg(feature = "edge")]
    pub fn edge(root: &Path, prefix: &str, embedder: &str, dims: Dims) -> LazyIndex {
        let (root, prefix, embedder) = (root.to_path_buf(), prefix.to_string(), embedder.to_string());
        LazyIndex {
            what: format!("Qdrant Edge at {}", root.display()),
            open: Box::new(move || {
                let dims = dims()?;
                let (backend, note) = open_edge(&root, &embedder, dims)?;
                if let Some(n) = note {
                    tracing::warn!("{n}");
                }
                Ok(KnowledgeStore::new(Arc::new(backend), &prefix, &embedder, dims))
            }),
            cell: Mutex::new(None),
        }
    }

    /// See the `edge` build of this function: this build has no Qdrant Edge,
    /// so every use fails with [`VectorError::NotBuilt`] naming the setting.
    #[cfg(not(feature = "edge"))]
    pub fn edge(root: &Path, _prefix: &str, _embedder: &str, _dims: Dims) -> LazyIndex {
        LazyIndex {
            what: format!("Qdrant Edge at {} (not built in)", root.display()),
            open: Box::new(|| Err(VectorError::NotBuilt(EDGE_NOT_BUILT.to_string()))),
            cell: Mutex::new(None),
        }
    }

    /// The collections of a Qdrant server at `url`.
    pub fn server(url: &str, prefix: &str, embedder: &str, dims: Dims) -> LazyIndex {
        let (url, prefix, embedder) = (url.to_string(), prefix.to_string(), embedder.to_string());
        LazyIndex {
            what: format!("Qdrant at {url}"),
            open: Box::new(move || {
                let dims = dims()?;
                let backend = QdrantBackend::connect(&url, &prefix)?;
                Ok(KnowledgeStore::new(Arc::new(backend), &prefix, &embedder, dims))
            }),
            cell: Mutex::new(None),
        }
    }

    /// What it opens (for messages).
    pub fn describe(&self) -> &str {
        &self.what
    }

    /// The opened store, opening it now if needed.
    pub fn get(&self) -> Result<Arc<KnowledgeStore>, VectorError> {
        let mut cell = self.cell.lock();
        if let Some(s) = cell.as_ref() {
            return Ok(s.clone());
        }
        let store = Arc::new((self.open)()?);
        *cell = Some(store.clone());
        Ok(store)
    }

    /// Drops every collection (`learnloop reindex`); plugins refill them.
    pub fn clear(&self) -> Result<(), VectorError> {
        self.get()?.backend().clear()
    }
}

impl VectorIndex for LazyIndex {
    fn upsert(&self, scope: &Scope, collection: &str, points: Vec<VectorPoint>) -> Result<(), PluginError> {
        self.get()?.upsert(scope, collection, points)
    }

    fn search(&self, scope: &Scope, collection: &str, query: &VectorQuery) -> Result<Vec<VectorHit>, PluginError> {
        self.get()?.search(scope, collection, query)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn point_ids_are_stable_uuids() {
        assert_eq!(point_uuid("rec-1"), point_uuid("rec-1"));
        assert_ne!(point_uuid("rec-1"), point_uuid("rec-2"));
    }
}
