//! Recall of routed search, the number an operator needs to pick
//! `num_probes`.
//!
//! [`verify`] takes queries (given, or stored vectors picked at random with
//! a little noise), computes their exact top-k by brute force over every
//! vector of every shard (read back with [`AsyncShardedVectorReader::scan_shard`],
//! one shard at a time, scored with the snapshot's metric by the core's
//! distance functions), then runs the reader's routed search at each
//! `num_probes` and reports recall@k (the share of the exact top-k ids the
//! routed answer contains), shards queried and latency.

use std::time::Instant;

use serde::Serialize;
use shardvec_core::distance::{distance, total_order};
use shardvec_core::{merge_by, Metric, ShardId, Strategy, VectorId};

use shardvec::reader::{AsyncShardedVectorReader, SearchOptions};
use shardvec::{Error, Result};

/// Options of [`verify`]. Defaults on each setter.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    queries: usize,
    top_k: usize,
    num_probes: Vec<u32>,
    seed: u64,
    noise: f32,
    given: Option<Vec<Vec<f32>>>,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            queries: 100,
            top_k: 10,
            num_probes: Vec::new(),
            seed: 7,
            noise: 0.01,
            given: None,
        }
    }
}

impl VerifyOptions {
    /// Defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Queries drawn from the snapshot (default 100).
    pub fn queries(mut self, n: usize) -> Self {
        self.queries = n;
        self
    }

    /// The k of recall@k (default 10).
    pub fn top_k(mut self, k: usize) -> Self {
        self.top_k = k;
        self
    }

    /// The `num_probes` values to measure (default 1, 2, 4, ... up to and
    /// including `num_dbs`).
    pub fn num_probes(mut self, p: Vec<u32>) -> Self {
        self.num_probes = p;
        self
    }

    /// Seed of the query draw (default 7).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Standard deviation of the noise added to drawn queries, relative to
    /// the data's per-coordinate standard deviation (default 0.01).
    pub fn noise(mut self, noise: f32) -> Self {
        self.noise = noise;
        self
    }

    /// Use these queries instead of drawing them.
    pub fn given_queries(mut self, q: Vec<Vec<f32>>) -> Self {
        self.given = Some(q);
        self
    }
}

/// Recall at one `num_probes`.
#[derive(Debug, Clone, Serialize)]
pub struct RecallRow {
    /// Shards probed per query.
    pub num_probes: u32,
    /// Mean recall@k over the queries (0 to 1).
    pub recall_at_k: f64,
    /// Mean number of non-empty shards searched.
    pub mean_shards_queried: f64,
    /// Mean search latency.
    pub mean_latency_ms: f64,
}

/// What [`verify`] measured.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// Queries run.
    pub queries: usize,
    /// k.
    pub top_k: usize,
    /// Vectors in the snapshot (scanned).
    pub vectors: usize,
    /// The snapshot's metric.
    pub metric: Metric,
    /// The snapshot's strategy.
    pub strategy: Strategy,
    /// One row per `num_probes`.
    pub rows: Vec<RecallRow>,
}

/// Exact top-k ids of each query over the whole snapshot.
async fn exact_top_k(
    reader: &AsyncShardedVectorReader,
    queries: &[Vec<f32>],
    k: usize,
    metric: Metric,
    num_dbs: u32,
) -> Result<(Vec<Vec<VectorId>>, usize)> {
    let mut best: Vec<Vec<(f32, VectorId)>> = vec![Vec::new(); queries.len()];
    let mut vectors = 0;
    for s in 0..num_dbs {
        let rows = reader.scan_shard(ShardId(s)).await?;
        vectors += rows.len();
        for (q, b) in queries.iter().zip(best.iter_mut()) {
            let mut here: Vec<(f32, VectorId)> = rows
                .iter()
                .map(|(id, v)| (distance(metric, q, v), id.clone()))
                .collect();
            here.sort_by(|a, b| total_order(a.0, b.0));
            here.truncate(k);
            *b = merge_by([std::mem::take(b), here], k, |x| x.0);
        }
    }
    Ok((
        best.into_iter()
            .map(|b| b.into_iter().map(|(_, id)| id).collect())
            .collect(),
        vectors,
    ))
}

/// Draws `n` stored vectors (one shard at a time, seeded) and adds noise.
async fn draw_queries(
    reader: &AsyncShardedVectorReader,
    opts: &VerifyOptions,
    num_dbs: u32,
) -> Result<Vec<Vec<f32>>> {
    use rand::{Rng, SeedableRng};
    use rand_distr::{Distribution, StandardNormal};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(opts.seed);
    let mut sample = shardvec::writer::train::Reservoir::new(opts.queries, opts.seed);
    let (mut sum, mut sum2, mut count) = (0f64, 0f64, 0u64);
    for s in 0..num_dbs {
        for (_, v) in reader.scan_shard(ShardId(s)).await? {
            for x in &v {
                sum += f64::from(*x);
                sum2 += f64::from(*x) * f64::from(*x);
                count += 1;
            }
            sample.offer(&v);
        }
    }
    let std = if count > 1 {
        let mean = sum / count as f64;
        ((sum2 / count as f64) - mean * mean).max(0.0).sqrt() as f32
    } else {
        1.0
    };
    let mut queries = sample.into_items();
    for q in &mut queries {
        for x in q.iter_mut() {
            let e: f32 = StandardNormal.sample(&mut rng);
            *x += opts.noise * std * e;
        }
    }
    // Shuffle away the reservoir's shard order.
    for i in (1..queries.len()).rev() {
        queries.swap(i, rng.random_range(0..=i));
    }
    Ok(queries)
}

/// Measures recall@k of routed search at each `num_probes`.
pub async fn verify(
    reader: &AsyncShardedVectorReader,
    opts: &VerifyOptions,
) -> Result<VerifyReport> {
    let info = reader.snapshot_info()?;
    if !matches!(info.sharding, Strategy::Cluster | Strategy::Lsh) {
        return Err(Error::InvalidArgument(format!(
            "verify measures recall against num_probes, which only CLUSTER and LSH snapshots have; this one is {}",
            info.sharding.as_str()
        )));
    }
    if opts.top_k == 0 {
        return Err(Error::InvalidArgument("top_k must be at least 1".into()));
    }
    let queries = match &opts.given {
        Some(q) => q.clone(),
        None => draw_queries(reader, opts, info.num_dbs).await?,
    };
    if queries.is_empty() {
        return Err(Error::InvalidArgument("no queries to verify with".into()));
    }
    let (truth, vectors) =
        exact_top_k(reader, &queries, opts.top_k, info.metric, info.num_dbs).await?;
    let probes: Vec<u32> = if opts.num_probes.is_empty() {
        let mut p: Vec<u32> = std::iter::successors(Some(1u32), |p| p.checked_mul(2))
            .take_while(|p| *p < info.num_dbs)
            .collect();
        p.push(info.num_dbs);
        p
    } else {
        opts.num_probes.clone()
    };
    let mut rows = Vec::new();
    for p in probes {
        let so = SearchOptions::new().num_probes(p);
        let (mut recall, mut shards, mut latency) = (0f64, 0usize, 0f64);
        for (q, exact) in queries.iter().zip(&truth) {
            let started = Instant::now();
            let r = reader.search(q, opts.top_k, &so).await?;
            latency += started.elapsed().as_secs_f64() * 1e3;
            shards += r.num_shards_queried;
            let found = exact
                .iter()
                .filter(|id| r.results.iter().any(|x| same_id(&x.id, id)))
                .count();
            recall += found as f64 / exact.len().max(1) as f64;
        }
        let n = queries.len() as f64;
        rows.push(RecallRow {
            num_probes: p,
            recall_at_k: recall / n,
            mean_shards_queried: shards as f64 / n,
            mean_latency_ms: latency / n,
        });
    }
    Ok(VerifyReport {
        queries: queries.len(),
        top_k: opts.top_k,
        vectors,
        metric: info.metric,
        strategy: info.sharding,
        rows,
    })
}

/// Ids compare by value; LanceDB shards return every id as a string.
pub(crate) fn same_id(a: &VectorId, b: &VectorId) -> bool {
    a == b || a.to_string() == b.to_string()
}
