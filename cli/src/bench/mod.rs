//! Benchmarks of a snapshot as a user sees it (`shardvec bench`): cold open
//! and first query, warm latency percentiles and throughput from concurrent
//! callers (async or blocking reader), recall@k against exact brute force,
//! bytes read from the object store, peak RSS, and the in-memory SIMD
//! brute-force floor ([`floor`]) of the same routed queries.
//!
//! Every query of the set runs once per round from `concurrency` callers
//! pulling from one shared counter, so the load is closed-loop and the run
//! stops by itself. A warm-up round (all queries once) precedes the timed
//! rounds; its answers give the recall.

mod counting;
pub mod floor;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use shardvec_core::{ShardId, VectorId};

pub use self::counting::CountingStore;
use self::floor::FlatSnapshot;
use crate::verify::same_id;
use shardvec::location::SnapshotLocation;
use shardvec::reader::{AsyncShardedVectorReader, ReaderOptions, SearchOptions};
use shardvec::ShardedVectorReader;
use shardvec::{Error, Filter, Result};

/// Which reader API the callers use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    /// [`AsyncShardedVectorReader`], one tokio task per caller.
    #[default]
    Async,
    /// [`ShardedVectorReader`], one OS thread per caller.
    Sync,
}

/// Options of [`bench`]. Defaults: `top_k` 10, the manifest's
/// `num_probes`, 1 caller, the async API, 1 timed round, no recall, no
/// floor, default reader options.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    top_k: usize,
    num_probes: Option<u32>,
    concurrency: usize,
    api: Api,
    rounds: usize,
    recall: bool,
    floor: bool,
    filter: Option<Filter>,
    reader: ReaderOptions,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            top_k: 10,
            num_probes: None,
            concurrency: 1,
            api: Api::Async,
            rounds: 1,
            recall: false,
            floor: false,
            filter: None,
            reader: ReaderOptions::default(),
        }
    }
}

impl BenchOptions {
    /// Default options.
    pub fn new() -> Self {
        Self::default()
    }
    /// Results per query.
    pub fn top_k(mut self, k: usize) -> Self {
        self.top_k = k;
        self
    }
    /// Shards probed per query (CLUSTER, LSH).
    pub fn num_probes(mut self, p: Option<u32>) -> Self {
        self.num_probes = p;
        self
    }
    /// Concurrent callers.
    pub fn concurrency(mut self, c: usize) -> Self {
        self.concurrency = c;
        self
    }
    /// Reader API.
    pub fn api(mut self, api: Api) -> Self {
        self.api = api;
        self
    }
    /// Timed rounds over the query set.
    pub fn rounds(mut self, r: usize) -> Self {
        self.rounds = r;
        self
    }
    /// Also measure recall@k against exact brute force (holds every vector
    /// in memory).
    pub fn recall(mut self, yes: bool) -> Self {
        self.recall = yes;
        self
    }
    /// Also time the in-memory SIMD brute force of the routed shards.
    pub fn floor(mut self, yes: bool) -> Self {
        self.floor = yes;
        self
    }
    /// Searches with this payload filter. Recall and floor are then not
    /// measured (they know no payloads): the tests check filtered answers
    /// against a brute force instead.
    pub fn filter(mut self, f: Option<Filter>) -> Self {
        self.filter = f;
        self
    }
    /// Reader options (store, backend mode, ...).
    pub fn reader(mut self, r: ReaderOptions) -> Self {
        self.reader = r;
        self
    }
}

/// Latency percentiles and throughput of one timed run.
#[derive(Debug, Clone, Serialize)]
pub struct Timing {
    /// Median latency per query.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Queries per second over the run's wall time.
    pub qps: f64,
    /// Queries timed.
    pub n: usize,
}

/// What [`bench`] measured. The first seven fields are the `--json` keys
/// the issue tracker fixed; the rest are extras.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// Open (empty cache unless given) plus the first query.
    pub cold_open_first_query_ms: f64,
    /// Warm median latency.
    pub warm_p50_ms: f64,
    /// Warm 99th percentile.
    pub warm_p99_ms: f64,
    /// Warm throughput.
    pub qps: f64,
    /// Concurrent callers.
    pub concurrency: usize,
    /// Queries in the set.
    pub queries: usize,
    /// Mean recall@k against exact brute force, when measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recall_at_k: Option<f64>,
    /// k.
    pub top_k: usize,
    /// Probes asked (none: the manifest's default).
    pub num_probes: Option<u32>,
    /// Reader API.
    pub api: Api,
    /// Mean non-empty shards searched per query.
    pub mean_shards_queried: f64,
    /// Bytes read from the object store by the open and first query
    /// (async API only).
    pub cold_bytes_read: Option<u64>,
    /// Bytes read from the object store per warm query (async API only).
    pub warm_bytes_read_per_query: Option<f64>,
    /// Peak resident set size of the process (Linux), MiB.
    pub peak_rss_mib: Option<f64>,
    /// Memory the open shards held after the warm rounds beyond their
    /// files (vectors, int8 codes, indexes), MiB: the reader's
    /// `resident_bytes`.
    pub shards_resident_mib: f64,
    /// The in-memory SIMD brute force of the same routes, when measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub floor: Option<Timing>,
    /// Shard searches of the int8 select pass (`--sqlite-scan quantized`),
    /// and the rows its bound could not rule out (rescored beyond the
    /// first candidates).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub int8: Option<Int8Stats>,
}

/// The int8 select pass's searches in a run.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Int8Stats {
    /// Shard searches that used the codes.
    pub searches: u64,
    /// Rows rescored beyond the first candidates, over all searches.
    pub extra_rows: u64,
}

/// Benchmarks the snapshot at `prefix` with `queries`, caching shards under
/// `local_root` (pass an empty folder for a cold open).
pub async fn bench(
    prefix: &str,
    local_root: &Path,
    queries: &[Vec<f32>],
    opts: &BenchOptions,
) -> Result<BenchReport> {
    if queries.is_empty() {
        return Err(Error::InvalidArgument("no queries to run".into()));
    }
    if opts.concurrency == 0 || opts.rounds == 0 {
        return Err(Error::InvalidArgument(
            "concurrency and rounds must be at least 1".into(),
        ));
    }
    if opts.filter.is_some() && (opts.recall || opts.floor) {
        return Err(Error::InvalidArgument(
            "recall and floor are not measured with a filter".into(),
        ));
    }
    let search = SearchOptions {
        num_probes: opts.num_probes,
        filter: opts.filter.clone().map(Arc::new),
        ..SearchOptions::default()
    };
    let (report, reader) = match opts.api {
        Api::Async => run_async(prefix, local_root, queries, opts, &search).await?,
        Api::Sync => {
            let (p, root) = (prefix.to_string(), local_root.to_path_buf());
            let (q, o, s) = (queries.to_vec(), opts.clone(), search.clone());
            // The blocking reader must not run inside the runtime.
            let handle = std::thread::spawn(move || run_sync(&p, &root, &q, &o, &s));
            let (report, _) = tokio::task::spawn_blocking(move || handle.join())
                .await
                .map_err(|e| Error::internal("cannot start a benchmark thread", e))?
                .map_err(|_| Error::Internal {
                    what: "the benchmark thread panicked".into(),
                    source: None,
                })??;
            // Recall and floor need an async reader on the warm cache.
            let reader =
                AsyncShardedVectorReader::open(prefix, local_root, opts.reader.clone()).await?;
            (report, reader)
        }
    };
    finish(report, &reader, queries, opts, &search).await
}

/// Recall and floor, then peak RSS.
async fn finish(
    mut report: Partial,
    reader: &AsyncShardedVectorReader,
    queries: &[Vec<f32>],
    opts: &BenchOptions,
    search: &SearchOptions,
) -> Result<BenchReport> {
    let mut recall = None;
    let mut floor_timing = None;
    if opts.recall || opts.floor {
        let info = reader.snapshot_info()?;
        let mut shards = Vec::with_capacity(info.num_dbs as usize);
        for s in 0..info.num_dbs {
            shards.push(reader.scan_shard(ShardId(s)).await?);
        }
        let flat = Arc::new(FlatSnapshot::new(shards, info.dim, info.metric)?);
        let all: Vec<ShardId> = (0..info.num_dbs).map(ShardId).collect();
        if opts.recall {
            let mut sum = 0.0;
            for (q, found) in queries.iter().zip(&report.answers) {
                let exact = flat.search(q, opts.top_k, &all);
                let hits = exact
                    .iter()
                    .filter(|(_, id)| found.iter().any(|f| same_id(f, id)))
                    .count();
                sum += hits as f64 / exact.len().max(1) as f64;
            }
            recall = Some(sum / queries.len() as f64);
        }
        if opts.floor {
            let routes: Vec<Vec<ShardId>> = queries
                .iter()
                .map(|q| reader.route(q, search))
                .collect::<Result<_>>()?;
            let (k, c, rounds) = (opts.top_k, opts.concurrency, opts.rounds);
            let q = queries.to_vec();
            let f = flat.clone();
            floor_timing = Some(
                tokio::task::spawn_blocking(move || {
                    run_threads(q.len(), c, rounds, |i| {
                        std::hint::black_box(f.search(&q[i], k, &routes[i]));
                        Ok(())
                    })
                })
                .await
                .map_err(|e| Error::task("floor", e))??,
            );
        }
    }
    let t = report.timing;
    Ok(BenchReport {
        cold_open_first_query_ms: report.cold.as_secs_f64() * 1e3,
        warm_p50_ms: t.p50_ms,
        warm_p99_ms: t.p99_ms,
        qps: t.qps,
        concurrency: opts.concurrency,
        queries: queries.len(),
        recall_at_k: recall,
        top_k: opts.top_k,
        num_probes: opts.num_probes,
        api: opts.api,
        mean_shards_queried: report.shards_queried as f64 / queries.len() as f64,
        cold_bytes_read: report.cold_bytes.take(),
        warm_bytes_read_per_query: report.warm_bytes_per_query,
        peak_rss_mib: peak_rss_mib(),
        shards_resident_mib: report.resident_bytes as f64 / (1024.0 * 1024.0),
        floor: floor_timing,
        int8: {
            let (searches, extra_rows) = shardvec::flat::int8_stats();
            (searches > 0).then_some(Int8Stats {
                searches,
                extra_rows,
            })
        },
    })
}

/// What a run measured before recall and floor.
struct Partial {
    cold: Duration,
    timing: Timing,
    answers: Vec<Vec<VectorId>>,
    shards_queried: usize,
    cold_bytes: Option<u64>,
    warm_bytes_per_query: Option<f64>,
    resident_bytes: usize,
}

async fn run_async(
    prefix: &str,
    local_root: &Path,
    queries: &[Vec<f32>],
    opts: &BenchOptions,
    search: &SearchOptions,
) -> Result<(Partial, AsyncShardedVectorReader)> {
    let location = SnapshotLocation::open(prefix, opts.reader.store())?;
    let counting = Arc::new(CountingStore::new(location.store().clone()));
    let location = location.with_store(counting.clone());
    let started = Instant::now();
    let reader =
        AsyncShardedVectorReader::open_at(location, local_root, opts.reader.clone()).await?;
    reader.search(&queries[0], opts.top_k, search).await?;
    let cold = started.elapsed();
    let cold_bytes = counting.bytes_read();

    let mut answers = Vec::with_capacity(queries.len());
    let mut shards_queried = 0;
    for q in queries {
        let r = reader.search(q, opts.top_k, search).await?;
        shards_queried += r.num_shards_queried;
        answers.push(r.results.into_iter().map(|x| x.id).collect());
    }
    let before = counting.bytes_read();
    let next = Arc::new(AtomicUsize::new(0));
    let total = queries.len() * opts.rounds;
    let queries: Arc<[Vec<f32>]> = queries.into();
    let started = Instant::now();
    let tasks: Vec<_> = (0..opts.concurrency)
        .map(|_| {
            let (reader, next, queries, search) = (
                reader.clone(),
                next.clone(),
                queries.clone(),
                search.clone(),
            );
            let k = opts.top_k;
            tokio::spawn(async move {
                let mut lat = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        return Ok::<_, Error>(lat);
                    }
                    let t = Instant::now();
                    reader
                        .search(&queries[i % queries.len()], k, &search)
                        .await?;
                    lat.push(t.elapsed());
                }
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(total);
    for t in tasks {
        latencies.extend(t.await.map_err(|e| Error::task("benchmark", e))??);
    }
    let timing = timing(latencies, started.elapsed());
    let warm = counting.bytes_read() - before;
    Ok((
        Partial {
            cold,
            timing,
            answers,
            shards_queried,
            cold_bytes: Some(cold_bytes),
            warm_bytes_per_query: Some(warm as f64 / total as f64),
            resident_bytes: reader.resident_bytes(),
        },
        reader,
    ))
}

fn run_sync(
    prefix: &str,
    local_root: &PathBuf,
    queries: &[Vec<f32>],
    opts: &BenchOptions,
    search: &SearchOptions,
) -> Result<(Partial, ())> {
    let started = Instant::now();
    let workers = opts.concurrency.clamp(1, 64);
    let reader =
        ShardedVectorReader::open_with_workers(prefix, local_root, opts.reader.clone(), workers)?;
    reader.search(&queries[0], opts.top_k, search)?;
    let cold = started.elapsed();
    let mut answers = Vec::with_capacity(queries.len());
    let mut shards_queried = 0;
    for q in queries {
        let r = reader.search(q, opts.top_k, search)?;
        shards_queried += r.num_shards_queried;
        answers.push(r.results.into_iter().map(|x| x.id).collect());
    }
    let timing = run_threads(queries.len(), opts.concurrency, opts.rounds, |i| {
        reader.search(&queries[i], opts.top_k, search).map(|_| ())
    })?;
    Ok((
        Partial {
            cold,
            timing,
            answers,
            shards_queried,
            cold_bytes: None,
            warm_bytes_per_query: None,
            resident_bytes: reader.resident_bytes(),
        },
        (),
    ))
}

/// Runs `f(i)` for every `i < n`, `rounds` times, from `concurrency` OS
/// threads pulling from one counter.
fn run_threads(
    n: usize,
    concurrency: usize,
    rounds: usize,
    f: impl Fn(usize) -> Result<()> + Sync,
) -> Result<Timing> {
    let next = AtomicUsize::new(0);
    let total = n * rounds;
    let started = Instant::now();
    let per_thread: Vec<Result<Vec<Duration>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..concurrency)
            .map(|_| {
                s.spawn(|| {
                    let mut lat = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= total {
                            return Ok(lat);
                        }
                        let t = Instant::now();
                        f(i % n)?;
                        lat.push(t.elapsed());
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(Error::Internal {
                        what: "a benchmark thread panicked".into(),
                        source: None,
                    })
                })
            })
            .collect()
    });
    let wall = started.elapsed();
    let mut all = Vec::with_capacity(total);
    for lat in per_thread {
        all.extend(lat?);
    }
    Ok(timing(all, wall))
}

fn timing(mut latencies: Vec<Duration>, wall: Duration) -> Timing {
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    Timing {
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        qps: latencies.len() as f64 / wall.as_secs_f64().max(1e-9),
        n: latencies.len(),
    }
}

/// `VmHWM` of `/proc/self/status`, in MiB (Linux only).
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
