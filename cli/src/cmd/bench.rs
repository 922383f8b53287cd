//! `shardvec bench` (see `shardvec_cli::bench`) and `shardvec synth`, the
//! seeded clustered data the benchmarks build snapshots from.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use shardvec::ReaderOptions;
use shardvec_cli::bench::{bench, Api, BenchOptions};
use shardvec_core::npy::Matrix;

use crate::read::read_queries;
use crate::{print_json, BoxError, SqliteScan, Store};

#[derive(Clone, Copy, ValueEnum)]
enum BackendMode {
    /// Download LanceDB shards into the local cache.
    Local,
    /// Search LanceDB shards in place on the object store.
    Remote,
}

#[derive(Clone, Copy, ValueEnum)]
enum LanceSearchArg {
    /// Lance's vector index (the reference's answers).
    Index,
    /// An exact in-memory scan (recall 1.0).
    Exact,
}

impl BackendMode {
    /// `opts` with LanceDB shards searched in this mode, by `search`.
    fn apply(self, search: LanceSearchArg, opts: ReaderOptions) -> ReaderOptions {
        #[cfg(feature = "lancedb")]
        {
            use shardvec::backend::lancedb::{
                LanceDbBackend, LanceDistance, LanceMode, LanceSearch,
            };
            let mode = match self {
                BackendMode::Local => LanceMode::Local,
                BackendMode::Remote => LanceMode::Remote,
            };
            let search = match search {
                LanceSearchArg::Index => LanceSearch::Index,
                LanceSearchArg::Exact => LanceSearch::Exact,
            };
            opts.shard_backend(LanceDbBackend::new(mode, LanceDistance::default()).search(search))
        }
        #[cfg(not(feature = "lancedb"))]
        {
            let _ = (self, search);
            opts
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum ApiArg {
    Async,
    Sync,
}

#[derive(Args)]
pub struct BenchArgs {
    #[command(flatten)]
    store: Store,
    /// float32 .npy [q, dim]: every row is a query.
    #[arg(long)]
    queries: PathBuf,
    /// Results per query.
    #[arg(long, default_value_t = 10)]
    top_k: usize,
    /// Shards probed (default: the manifest's num_probes).
    #[arg(long)]
    num_probes: Option<u32>,
    /// Concurrent callers.
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// Timed rounds over the queries.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Shard cache (default: a fresh temporary folder, so the open is cold).
    #[arg(long)]
    local_root: Option<PathBuf>,
    /// Where LanceDB shards are searched.
    #[arg(long, value_enum, default_value_t = BackendMode::Local)]
    backend_mode: BackendMode,
    /// How LanceDB shards find an unfiltered top-k.
    #[arg(long, value_enum, default_value_t = LanceSearchArg::Index)]
    lance_search: LanceSearchArg,
    /// How sqlite-vec shards find their top-k.
    #[arg(long, value_enum, default_value_t = SqliteScan::Memory)]
    sqlite_scan: SqliteScan,
    /// Reader API of the callers.
    #[arg(long, value_enum, default_value_t = ApiArg::Async)]
    api: ApiArg,
    /// Also measure recall@k against exact brute force (loads every vector).
    #[arg(long)]
    recall: bool,
    /// Also time the in-memory SIMD brute force of the same routes.
    #[arg(long)]
    floor: bool,
    /// Payload filter (JSON) for every search; see `search --filter`.
    #[arg(long)]
    filter: Option<String>,
    /// Time routing alone (no search): ns per query, one caller.
    #[arg(long)]
    route_only: bool,
    /// Print one JSON document.
    #[arg(long)]
    json: bool,
}

pub async fn run(a: &BenchArgs) -> Result<(), BoxError> {
    let queries = read_queries(&a.queries)?;
    if a.route_only {
        return route_only(a, &queries).await;
    }
    let tmp;
    let root = match &a.local_root {
        Some(r) => r.clone(),
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    let opts = BenchOptions::new()
        .top_k(a.top_k)
        .num_probes(a.num_probes)
        .concurrency(a.concurrency)
        .rounds(a.rounds)
        .api(match a.api {
            ApiArg::Async => Api::Async,
            ApiArg::Sync => Api::Sync,
        })
        .recall(a.recall)
        .floor(a.floor)
        .filter(
            a.filter
                .as_deref()
                .map(shardvec::Filter::parse_str)
                .transpose()
                .map_err(|e| format!("--filter: {e}"))?,
        )
        .reader(
            a.backend_mode.apply(
                a.lance_search,
                a.sqlite_scan.apply(
                    ReaderOptions::new()
                        .store_options(a.store.options())
                        .max_concurrency(a.concurrency.max(8)),
                ),
            ),
        );
    let r = bench(&a.store.prefix, &root, &queries, &opts).await?;
    if a.json {
        return print_json(&r);
    }
    println!(
        "queries            {} x {} rounds, {} caller(s), {:?} API",
        r.queries, a.rounds, r.concurrency, r.api
    );
    println!("cold open + query  {:.1} ms", r.cold_open_first_query_ms);
    println!(
        "warm p50 / p99     {:.3} / {:.3} ms",
        r.warm_p50_ms, r.warm_p99_ms
    );
    println!("throughput         {:.0} queries/s", r.qps);
    println!("shards per query   {:.2}", r.mean_shards_queried);
    if let Some(x) = r.recall_at_k {
        println!("recall@{}          {x:.4}", r.top_k);
    }
    if let Some(f) = &r.floor {
        println!(
            "floor p50 / p99    {:.3} / {:.3} ms, {:.0} queries/s",
            f.p50_ms, f.p99_ms, f.qps
        );
    }
    if let (Some(c), Some(w)) = (r.cold_bytes_read, r.warm_bytes_read_per_query) {
        println!("store bytes        {c} cold, {w:.0} per warm query");
    }
    if let Some(m) = r.peak_rss_mib {
        println!("peak RSS           {m:.0} MiB");
    }
    println!("shards resident    {:.1} MiB", r.shards_resident_mib);
    if let Some(i) = r.int8 {
        println!(
            "int8 select        {} shard searches, {} rows rescored beyond the candidates",
            i.searches, i.extra_rows
        );
    }
    Ok(())
}

/// Routing alone: every query routed `rounds` times (at least 10 000
/// routes), after one warm-up pass.
async fn route_only(a: &BenchArgs, queries: &[Vec<f32>]) -> Result<(), BoxError> {
    let tmp = tempfile::tempdir()?;
    let reader = shardvec::AsyncShardedVectorReader::open(
        &a.store.prefix,
        tmp.path(),
        ReaderOptions::new().store_options(a.store.options()),
    )
    .await?;
    let opts = shardvec::SearchOptions {
        num_probes: a.num_probes,
        ..Default::default()
    };
    for q in queries {
        std::hint::black_box(reader.route(q, &opts)?);
    }
    let rounds = a.rounds.max(10_000usize.div_ceil(queries.len().max(1)));
    let started = std::time::Instant::now();
    for _ in 0..rounds {
        for q in queries {
            std::hint::black_box(reader.route(q, &opts)?);
        }
    }
    let n = rounds * queries.len();
    let ns = started.elapsed().as_nanos() as f64 / n as f64;
    let info = reader.snapshot_info()?;
    if a.json {
        return print_json(&serde_json::json!({
            "route_ns_per_query": ns, "routes": n, "dim": info.dim,
            "num_dbs": info.num_dbs, "strategy": info.sharding,
        }));
    }
    println!(
        "routing  {ns:.0} ns/query ({n} routes, {} shards, dimension {})",
        info.num_dbs, info.dim
    );
    Ok(())
}

#[derive(Args)]
pub struct SynthArgs {
    /// Vectors.
    #[arg(long)]
    n: usize,
    /// Dimension.
    #[arg(long)]
    dim: usize,
    /// Gaussian clusters.
    #[arg(long, default_value_t = 64)]
    clusters: usize,
    /// Standard deviation around each centre (centres are N(0, 1)).
    #[arg(long, default_value_t = 0.35)]
    spread: f32,
    /// Queries drawn near stored vectors.
    #[arg(long, default_value_t = 1000)]
    queries: usize,
    /// Seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Output: DIR/vectors.npy and DIR/queries.npy (float32).
    #[arg(long)]
    out: PathBuf,
}

pub fn synth(a: &SynthArgs) -> Result<(), BoxError> {
    let data = shardvec_cli::synthetic::blobs(a.n, a.dim, a.clusters, a.spread, a.seed)?;
    let queries =
        shardvec_cli::synthetic::queries_near(&data.vectors, a.queries, a.spread / 2.0, a.seed + 1);
    let flat: Vec<f32> = queries.concat();
    let queries = Matrix::new(queries.len(), a.dim, flat)?;
    std::fs::create_dir_all(&a.out)?;
    std::fs::write(a.out.join("vectors.npy"), data.vectors.to_npy())?;
    std::fs::write(a.out.join("queries.npy"), queries.to_npy())?;
    println!(
        "{} vectors and {} queries of dimension {} in {}",
        a.n,
        queries.rows(),
        a.dim,
        a.out.display()
    );
    Ok(())
}
