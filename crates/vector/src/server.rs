//! The server backend: collections in a Qdrant server or cluster, over gRPC
//! (`qdrant-client`). This is how an installation scales past one machine:
//! every API node and scheduler connects and writes concurrently.
//!
//! The host's services are synchronous and are called from blocking
//! threads, some of them inside the API's tokio runtime. The client runs on
//! a small runtime of its own; calls are spawned there and awaited through
//! a channel, which is safe from any thread.

use std::collections::HashSet;
use std::future::Future;

use parking_lot::Mutex;
use qdrant_client::Qdrant;
use qdrant_client::qdrant::{
    Condition, CountPointsBuilder, CreateCollectionBuilder, CreateFieldIndexCollectionBuilder, Distance, FieldType,
    Filter, PointStruct, SearchPointsBuilder, UpsertPointsBuilder, VectorParamsBuilder,
};
use serde_json::{Map, Value};

use crate::{Backend, Hit, Point, VectorError, point_uuid};

/// Collections of one installation in a Qdrant server.
pub struct QdrantBackend {
    client: std::sync::Arc<Qdrant>,
    runtime: Option<tokio::runtime::Runtime>,
    prefix: String,
    /// Collections known to exist, and fields known to be indexed.
    known: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for QdrantBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QdrantBackend").field("prefix", &self.prefix).finish()
    }
}

impl QdrantBackend {
    /// Connects to the Qdrant server at `url` (gRPC, e.g.
    /// `http://127.0.0.1:6334`); `prefix` starts every collection name of
    /// this installation. Fails when the server does not answer.
    pub fn connect(url: &str, prefix: &str) -> Result<QdrantBackend, VectorError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("learnloop-qdrant")
            .enable_all()
            .build()
            .map_err(|e| VectorError::Io(e.to_string()))?;
        let client = Qdrant::from_url(url).build().map_err(|e| VectorError::Backend(format!("{url}: {e}")))?;
        let b = QdrantBackend {
            client: std::sync::Arc::new(client),
            runtime: Some(runtime),
            prefix: crate::clean(prefix),
            known: Mutex::new(HashSet::new()),
        };
        let c = b.client.clone();
        b.run(async move { c.health_check().await })
            .map_err(|e| VectorError::Backend(format!("Qdrant at {url} does not answer: {e}")))?;
        Ok(b)
    }

    /// Runs a client call on the backend's runtime and waits for it.
    fn run<T: Send + 'static, E: std::fmt::Display + Send + 'static>(
        &self,
        fut: impl Future<Output = Result<T, E>> + Send + 'static,
    ) -> Result<T, VectorError> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.runtime.as_ref().expect("runtime lives until drop").spawn(async move {
            let _ = tx.send(fut.await.map_err(|e| e.to_string()));
        });
        rx.recv()
            .map_err(|_| VectorError::Backend("the Qdrant client task ended".into()))?
            .map_err(VectorError::Backend)
    }

    fn ensure_collection(&self, collection: &str, dims: usize) -> Result<(), VectorError> {
        if self.known.lock().contains(collection) {
            return Ok(());
        }
        let c = self.client.clone();
        let name = collection.to_string();
        let exists = self.run(async move { c.collection_exists(name).await })?;
        if !exists {
            let c = self.client.clone();
            let name = collection.to_string();
            let created = self.run(async move {
                c.create_collection(
                    CreateCollectionBuilder::new(name)
                        .vectors_config(VectorParamsBuilder::new(dims as u64, Distance::Cosine)),
                )
                .await
            });
            // Another process may have created it meanwhile.
            if let Err(e) = created {
                let c = self.client.clone();
                let name = collection.to_string();
                if !self.run(async move { c.collection_exists(name).await })? {
                    return Err(e);
                }
            }
        }
        self.known.lock().insert(collection.to_string());
        Ok(())
    }

    fn ensure_index(&self, collection: &str, field: &str, example: &Value) -> Result<(), VectorError> {
        let key = format!("{collection}\u{0}{field}");
        if self.known.lock().contains(&key) {
            return Ok(());
        }
        let ty = match example {
            Value::Bool(_) => FieldType::Bool,
            Value::Number(n) if n.is_i64() || n.is_u64() => FieldType::Integer,
            _ => FieldType::Keyword,
        };
        let c = self.client.clone();
        let (name, f) = (collection.to_string(), field.to_string());
        self.run(
            async move { c.create_field_index(CreateFieldIndexCollectionBuilder::new(name, f, ty).wait(true)).await },
        )?;
        self.known.lock().insert(key);
        Ok(())
    }

    fn exists(&self, collection: &str) -> Result<bool, VectorError> {
        if self.known.lock().contains(collection) {
            return Ok(true);
        }
        let c = self.client.clone();
        let name = collection.to_string();
        self.run(async move { c.collection_exists(name).await })
    }
}

fn to_filter(filter: &Map<String, Value>) -> Result<Option<Filter>, VectorError> {
    if filter.is_empty() {
        return Ok(None);
    }
    let mut must = Vec::new();
    for (k, v) in filter {
        must.push(match v {
            Value::String(s) => Condition::matches(k.clone(), s.clone()),
            Value::Bool(b) => Condition::matches(k.clone(), *b),
            Value::Number(n) if n.is_i64() => Condition::matches(k.clone(), n.as_i64().expect("i64")),
            other => {
                return Err(VectorError::Invalid(format!("filter.{k}: {other} is not a string, boolean or integer")));
            }
        });
    }
    Ok(Some(Filter::must(must)))
}

impl Backend for QdrantBackend {
    fn upsert(&self, collection: &str, dims: usize, points: Vec<Point>) -> Result<(), VectorError> {
        if points.is_empty() {
            return Ok(());
        }
        self.ensure_collection(collection, dims)?;
        let list: Vec<PointStruct> =
            points.into_iter().map(|p| PointStruct::new(point_uuid(&p.id).to_string(), p.vector, p.payload)).collect();
        let c = self.client.clone();
        let name = collection.to_string();
        self.run(async move { c.upsert_points(UpsertPointsBuilder::new(name, list).wait(true)).await })?;
        Ok(())
    }

    fn search(
        &self,
        collection: &str,
        vector: &[f32],
        limit: usize,
        filter: &Map<String, Value>,
    ) -> Result<Vec<Hit>, VectorError> {
        if !self.exists(collection)? {
            return Ok(Vec::new());
        }
        self.known.lock().insert(collection.to_string());
        for (k, v) in filter {
            self.ensure_index(collection, k, v)?;
        }
        let mut req = SearchPointsBuilder::new(collection, vector.to_vec(), limit as u64).with_payload(true);
        if let Some(f) = to_filter(filter)? {
            req = req.filter(f);
        }
        let c = self.client.clone();
        let res = self.run(async move { c.search_points(req).await })?;
        Ok(res
            .result
            .into_iter()
            .map(|p| Hit { score: p.score, payload: p.payload.into_iter().map(|(k, v)| (k, v.into_json())).collect() })
            .collect())
    }

    fn count(&self, collection: &str) -> Result<usize, VectorError> {
        if !self.exists(collection)? {
            return Ok(0);
        }
        let c = self.client.clone();
        let name = collection.to_string();
        let res = self.run(async move { c.count(CountPointsBuilder::new(name).exact(true)).await })?;
        Ok(res.result.map_or(0, |r| r.count as usize))
    }

    fn optimize(&self, collection: &str, fields: &Map<String, Value>) -> Result<(), VectorError> {
        // The server optimizes in the background; only the payload indexes
        // are created here.
        if !self.exists(collection)? {
            return Ok(());
        }
        for (k, v) in fields {
            self.ensure_index(collection, k, v)?;
        }
        Ok(())
    }

    fn clear(&self) -> Result<(), VectorError> {
        let c = self.client.clone();
        let list = self.run(async move { c.list_collections().await })?;
        let mine = format!("{}_", self.prefix);
        for col in list.collections {
            if col.name.starts_with(&mine) {
                let c = self.client.clone();
                self.run(async move { c.delete_collection(col.name).await })?;
            }
        }
        self.known.lock().clear();
        Ok(())
    }
}

impl Drop for QdrantBackend {
    fn drop(&mut self) {
        // Dropping a runtime blocks; from inside another runtime that panics.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}
