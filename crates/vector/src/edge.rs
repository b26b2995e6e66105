//! The embedded backend: one Qdrant Edge shard per collection, in
//! `<data_dir>/vectors/<collection>/`.
//!
//! Qdrant Edge is single-process: its write-ahead log holds an exclusive
//! `flock` on the shard directory. This backend additionally locks
//! `<root>/.lock` for the life of the process, so a second process gets one
//! clear [`VectorError::Busy`] instead of a failure deep inside a shard.
//!
//! Edge runs no background optimizer: points land in a plain appendable
//! segment, and [`Backend::optimize`] (called after large upserts and by the
//! benchmark) builds the HNSW graph and payload indexes synchronously.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;
use qdrant_edge::{
    Condition, CreateIndex, DEFAULT_VECTOR_NAME, Distance, EdgeConfig, EdgeShard, EdgeVectorParams, FieldCondition,
    FieldIndexOperations, Filter, JsonPath, Match, NamedQuery, PayloadFieldSchema, PayloadSchemaType, PointId,
    PointInsertOperations, PointOperations, PointStruct, QueryEnum, QueryRequest, ScoringQuery, UpdateOperation,
    ValueVariants, WithPayloadInterface, WithVector,
};
use serde_json::{Map, Value};

use crate::{Backend, Hit, Point, VectorError, point_uuid};

/// Upserted points after which a collection is optimized automatically.
const AUTO_OPTIMIZE_EVERY: usize = 50_000;

struct Shard {
    shard: EdgeShard,
    /// Payload fields that have an index.
    indexed: Mutex<HashSet<String>>,
    /// Points upserted since the last optimization.
    since_optimize: AtomicUsize,
}

/// Qdrant Edge collections under one root directory.
pub struct EdgeBackend {
    root: PathBuf,
    _lock: File,
    shards: Mutex<HashMap<String, Arc<Shard>>>,
}

impl std::fmt::Debug for EdgeBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeBackend").field("root", &self.root).finish()
    }
}

fn edge_err(e: impl std::fmt::Display) -> VectorError {
    VectorError::Backend(e.to_string())
}

impl EdgeBackend {
    /// Opens (creating if needed) the collections under `root`, taking the
    /// process lock.
    pub fn open(root: &Path) -> Result<EdgeBackend, VectorError> {
        std::fs::create_dir_all(root).map_err(|e| VectorError::Io(format!("{}: {e}", root.display())))?;
        let lock_path = root.join(".lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| VectorError::Io(format!("{}: {e}", lock_path.display())))?;
        if lock.try_lock().is_err() {
            return Err(VectorError::Busy(format!(
                "the embedded vector index at {} is open in another process (with the embedded default, \
                 learnloop-api owns it while it runs; use the API, or stop it)",
                root.display()
            )));
        }
        Ok(EdgeBackend { root: root.to_path_buf(), _lock: lock, shards: Mutex::new(HashMap::new()) })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn dir(&self, collection: &str) -> PathBuf {
        self.root.join(collection)
    }

    fn existing(&self, collection: &str) -> Result<Option<Arc<Shard>>, VectorError> {
        let mut shards = self.shards.lock();
        if let Some(s) = shards.get(collection) {
            return Ok(Some(s.clone()));
        }
        let dir = self.dir(collection);
        if !dir.join("edge_config.json").exists() {
            return Ok(None);
        }
        let shard = EdgeShard::load(&dir, None).map_err(edge_err)?;
        let indexed = shard.info().payload_schema.keys().map(|k| k.to_string()).collect();
        let s = Arc::new(Shard { shard, indexed: Mutex::new(indexed), since_optimize: AtomicUsize::new(0) });
        shards.insert(collection.to_string(), s.clone());
        Ok(Some(s))
    }

    fn get_or_create(&self, collection: &str, dims: usize) -> Result<Arc<Shard>, VectorError> {
        if let Some(s) = self.existing(collection)? {
            let have = s.shard.config().vectors.get(DEFAULT_VECTOR_NAME).map(|p| p.size);
            if have != Some(dims) {
                return Err(VectorError::Dimensions {
                    collection: collection.to_string(),
                    expected: have.unwrap_or(0),
                    got: dims,
                });
            }
            return Ok(s);
        }
        let dir = self.dir(collection);
        std::fs::create_dir_all(&dir).map_err(|e| VectorError::Io(format!("{}: {e}", dir.display())))?;
        let config = EdgeConfig {
            // Payloads are small; keeping them in RAM keeps filtered search fast.
            on_disk_payload: false,
            vectors: HashMap::from([(
                DEFAULT_VECTOR_NAME.to_string(),
                EdgeVectorParams {
                    size: dims,
                    distance: Distance::Cosine,
                    quantization_config: None,
                    multivector_config: None,
                    datatype: None,
                    on_disk: None,
                    hnsw_config: None,
                },
            )]),
            ..EdgeConfig::default()
        };
        let shard = EdgeShard::new(&dir, config).map_err(edge_err)?;
        let s = Arc::new(Shard { shard, indexed: Mutex::new(HashSet::new()), since_optimize: AtomicUsize::new(0) });
        self.shards.lock().insert(collection.to_string(), s.clone());
        Ok(s)
    }
}

fn ensure_index(s: &Shard, field: &str, value: &Value) -> Result<(), VectorError> {
    let mut indexed = s.indexed.lock();
    if indexed.contains(field) {
        return Ok(());
    }
    let schema = match value {
        Value::Bool(_) => PayloadSchemaType::Bool,
        Value::Number(n) if n.is_i64() || n.is_u64() => PayloadSchemaType::Integer,
        _ => PayloadSchemaType::Keyword,
    };
    let field_name = JsonPath::try_from(field)
        .map_err(|_| VectorError::Invalid(format!("filter field {field:?} is not a payload path")))?;
    s.shard
        .update(UpdateOperation::FieldIndexOperation(FieldIndexOperations::CreateIndex(CreateIndex {
            field_name,
            field_schema: Some(PayloadFieldSchema::FieldType(schema)),
        })))
        .map_err(edge_err)?;
    indexed.insert(field.to_string());
    Ok(())
}

fn to_filter(filter: &Map<String, Value>) -> Result<Option<Filter>, VectorError> {
    if filter.is_empty() {
        return Ok(None);
    }
    let mut must = Vec::new();
    for (k, v) in filter {
        let value = match v {
            Value::String(s) => ValueVariants::String(s.clone()),
            Value::Bool(b) => ValueVariants::Bool(*b),
            Value::Number(n) if n.is_i64() => ValueVariants::Integer(n.as_i64().expect("i64")),
            other => {
                return Err(VectorError::Invalid(format!("filter.{k}: {other} is not a string, boolean or integer")));
            }
        };
        let key = JsonPath::try_from(k.as_str())
            .map_err(|_| VectorError::Invalid(format!("filter field {k:?} is not a payload path")))?;
        must.push(Condition::Field(FieldCondition::new_match(key, Match::new_value(value))));
    }
    Ok(Some(Filter { should: None, min_should: None, must: Some(must), must_not: None }))
}

impl Backend for EdgeBackend {
    fn upsert(&self, collection: &str, dims: usize, points: Vec<Point>) -> Result<(), VectorError> {
        if points.is_empty() {
            return Ok(());
        }
        let shard = self.get_or_create(collection, dims)?;
        let n = points.len();
        let list = points
            .into_iter()
            .map(|p| PointStruct::new(PointId::Uuid(point_uuid(&p.id)), p.vector, Value::Object(p.payload)).into())
            .collect();
        shard
            .shard
            .update(UpdateOperation::PointOperation(PointOperations::UpsertPoints(PointInsertOperations::PointsList(
                list,
            ))))
            .map_err(edge_err)?;
        if shard.since_optimize.fetch_add(n, Ordering::Relaxed) + n >= AUTO_OPTIMIZE_EVERY {
            shard.since_optimize.store(0, Ordering::Relaxed);
            shard.shard.optimize().map_err(edge_err)?;
        }
        Ok(())
    }

    fn search(
        &self,
        collection: &str,
        vector: &[f32],
        limit: usize,
        filter: &Map<String, Value>,
    ) -> Result<Vec<Hit>, VectorError> {
        let Some(shard) = self.existing(collection)? else { return Ok(Vec::new()) };
        for (k, v) in filter {
            ensure_index(&shard, k, v)?;
        }
        let points = shard
            .shard
            .query(QueryRequest {
                prefetches: vec![],
                query: Some(ScoringQuery::Vector(QueryEnum::Nearest(NamedQuery {
                    query: vector.to_vec().into(),
                    using: None,
                }))),
                filter: to_filter(filter)?,
                score_threshold: None,
                limit,
                offset: 0,
                params: None,
                with_vector: WithVector::Bool(false),
                with_payload: WithPayloadInterface::Bool(true),
            })
            .map_err(edge_err)?;
        Ok(points
            .into_iter()
            .map(|p| Hit {
                score: p.score,
                payload: p.payload.map(|pl| pl.0.into_iter().collect()).unwrap_or_default(),
            })
            .collect())
    }

    fn count(&self, collection: &str) -> Result<usize, VectorError> {
        Ok(match self.existing(collection)? {
            Some(s) => s.shard.info().points_count,
            None => 0,
        })
    }

    fn optimize(&self, collection: &str, fields: &Map<String, Value>) -> Result<(), VectorError> {
        let Some(shard) = self.existing(collection)? else { return Ok(()) };
        for (k, v) in fields {
            ensure_index(&shard, k, v)?;
        }
        shard.shard.optimize().map_err(edge_err)?;
        shard.since_optimize.store(0, Ordering::Relaxed);
        Ok(())
    }

    fn clear(&self) -> Result<(), VectorError> {
        let mut shards = self.shards.lock();
        shards.clear();
        for entry in std::fs::read_dir(&self.root).map_err(|e| VectorError::Io(e.to_string()))? {
            let entry = entry.map_err(|e| VectorError::Io(e.to_string()))?;
            if entry.path().is_dir() {
                std::fs::remove_dir_all(entry.path())
                    .map_err(|e| VectorError::Io(format!("{}: {e}", entry.path().display())))?;
            }
        }
        Ok(())
    }
}
