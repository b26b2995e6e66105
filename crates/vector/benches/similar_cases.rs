//! Similar-case search in Qdrant Edge at scale: stores LEARNLOOP_BENCH_CASES
//! (default 1,000,000) cost cases embedded by the structured embedder
//! (8 types × 10 regions × 12 resource types × 3 risk levels, savings
//! log-uniform over $10–$100k), builds the HNSW and payload indexes, then
//! measures search latency (p50/p99 over 2,000 queries, half of them with a
//! region filter) and recall@10 against exact (brute-force) search over the
//! same vectors. A hit counts as recalled when its exact similarity reaches
//! the 10th exact similarity (the structured embedder makes many cases tie).
//!
//! `cargo bench -p learnloop-vector --bench similar_cases`

use std::sync::Arc;
use std::time::Instant;

use learnloop_core::{PluginName, WorkspaceId};
use learnloop_plugin_api::{Scope, VectorIndex};
use learnloop_plugin_api::{VectorPoint, VectorQuery};
use learnloop_stats::SplitMix64;
use learnloop_vector::{KnowledgeStore, StructuredEmbedder, open_edge};
use serde_json::{Map, Value, json};

const TYPES: [&str; 8] = [
    "rightsizing",
    "spot_instances",
    "reserved_instances",
    "storage_tiering",
    "idle_cleanup",
    "savings_plan",
    "scheduling",
    "licensing",
];
const REGIONS: [&str; 10] = [
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "eu-west-1",
    "eu-west-2",
    "eu-central-1",
    "ap-south-1",
    "ap-northeast-1",
    "sa-east-1",
];
const RESOURCES: [&str; 12] = [
    "ec2",
    "rds",
    "ebs",
    "s3",
    "lambda",
    "eks",
    "elasticache",
    "redshift",
    "dynamodb",
    "efs",
    "opensearch",
    "nat_gateway",
];
const RISKS: [&str; 3] = ["low", "medium", "high"];

struct Case {
    text: String,
    region: &'static str,
    success: bool,
    kind: &'static str,
}

fn case(rng: &mut SplitMix64) -> Case {
    let kind = TYPES[(rng.next_u64() % 8) as usize];
    let region = REGIONS[(rng.next_u64() % 10) as usize];
    let resource = RESOURCES[(rng.next_u64() % 12) as usize];
    let risk = RISKS[(rng.next_u64() % 3) as usize];
    let savings = (10f64.ln() + rng.uniform() * (100_000f64.ln() - 10f64.ln())).exp();
    Case {
        text: format!(
            "recommendation_type: {kind}\nresource_type: {resource}\nregion: {region}\nrisk_level: {risk}\nmonthly_savings: {savings:.2}"
        ),
        region,
        success: rng.uniform() < 0.85,
        kind,
    }
}

fn pct(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn main() {
    let n: usize = std::env::var("LEARNLOOP_BENCH_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let e = StructuredEmbedder;
    let dims = StructuredEmbedder::DIMS;
    let (backend, _) = open_edge(dir.path(), StructuredEmbedder::ID, dims).unwrap();
    let store = KnowledgeStore::new(Arc::new(backend), "learnloop", StructuredEmbedder::ID, dims);
    let scope = Scope {
        plugin: PluginName::parse("plugin", "cost").unwrap(),
        workspace: WorkspaceId::parse("workspace", "bench").unwrap(),
    };
    let collection = store.collection(&scope, "recommendation_outcomes");

    let mut rng = SplitMix64::new(42);
    let mut all: Vec<f32> = Vec::with_capacity(n * dims);
    let mut regions: Vec<&'static str> = Vec::with_capacity(n);
    let t = Instant::now();
    let mut embed_s = 0.0;
    let mut batch = Vec::with_capacity(10_000);
    for i in 0..n {
        let c = case(&mut rng);
        let te = Instant::now();
        let v = e.embed_one(&c.text);
        embed_s += te.elapsed().as_secs_f64();
        all.extend_from_slice(&v);
        regions.push(c.region);
        batch.push(VectorPoint {
            id: format!("rec-{i}"),
            vector: v,
            payload: json!({"recommendation_type": c.kind, "region": c.region, "success": c.success}),
        });
        if batch.len() == 10_000 || i == n - 1 {
            store.upsert(&scope, "recommendation_outcomes", std::mem::take(&mut batch)).unwrap();
        }
    }
    println!(
        "stored {n} cases in Qdrant Edge in {:.1} s (embedding {:.1} s of it)",
        t.elapsed().as_secs_f64(),
        embed_s
    );
    let t = Instant::now();
    let fields: Map<String, Value> = [
        ("recommendation_type", json!("")),
        ("resource_type", json!("")),
        ("region", json!("")),
        ("success", json!(true)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    store.backend().optimize(&collection, &fields).unwrap();
    println!(
        "built HNSW + payload indexes in {:.1} s; {} points",
        t.elapsed().as_secs_f64(),
        store.backend().count(&collection).unwrap()
    );

    let queries: Vec<Case> = (0..2000).map(|_| case(&mut rng)).collect();
    // Warm-up.
    for q in queries.iter().take(50) {
        store
            .search(
                &scope,
                "recommendation_outcomes",
                &VectorQuery { vector: e.embed_one(&q.text), limit: 10, filter: Value::Null },
            )
            .unwrap();
    }
    let mut lat = Vec::new();
    let mut lat_filtered = Vec::new();
    let mut recall_hits = 0usize;
    let mut recall_total = 0usize;
    for (qi, q) in queries.iter().enumerate() {
        let v = e.embed_one(&q.text);
        let filtered = qi % 2 == 1;
        let filter = if filtered { json!({"region": q.region}) } else { Value::Null };
        let t = Instant::now();
        let hits = store
            .search(&scope, "recommendation_outcomes", &VectorQuery { vector: v.clone(), limit: 10, filter })
            .unwrap();
        let ms = t.elapsed().as_secs_f64() * 1e3;
        if filtered {
            lat_filtered.push(ms)
        } else {
            lat.push(ms)
        }
        if qi < 300 {
            // Exact search over the same vectors (and the same filter).
            let mut exact: Vec<f32> = (0..n)
                .filter(|i| !filtered || regions[*i] == q.region)
                .map(|i| all[i * dims..(i + 1) * dims].iter().zip(&v).map(|(a, b)| a * b).sum())
                .collect();
            exact.sort_by(|a, b| b.total_cmp(a));
            let tenth = exact[9.min(exact.len() - 1)];
            for h in hits.iter().take(10) {
                let i: usize = h.id["rec-".len()..].parse().unwrap();
                let s: f32 = all[i * dims..(i + 1) * dims].iter().zip(&v).map(|(a, b)| a * b).sum();
                recall_hits += usize::from(s >= tenth - 1e-5);
            }
            recall_total += 10;
        }
    }
    lat.sort_by(f64::total_cmp);
    lat_filtered.sort_by(f64::total_cmp);
    println!(
        "similar cases, top 10, no filter:     p50 {:.2} ms, p99 {:.2} ms ({} queries)",
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        lat.len()
    );
    println!(
        "similar cases, top 10, region filter: p50 {:.2} ms, p99 {:.2} ms ({} queries)",
        pct(&lat_filtered, 0.5),
        pct(&lat_filtered, 0.99),
        lat_filtered.len()
    );
    println!("recall@10 against exact search: {:.4} (300 queries)", recall_hits as f64 / recall_total as f64);
}
