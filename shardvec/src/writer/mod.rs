//! The snapshot writer: records in, a published snapshot out.
//!
//! [`build`] runs these phases, each visible in [`BuildSummary::timings`]:
//!
//! 1. **Train** the routing artefacts: CLUSTER centroids (given, or k-means
//!    on a seeded sample of the input, see [`train`]), LSH hyperplanes
//!    (seeded Gaussian). EXPLICIT and CEL need none.
//! 2. **Write**: stream the input in batches; route every record with the
//!    core [`Router`] built from the very manifest that will be published
//!    (so the writer and every reader agree by construction), in parallel;
//!    append each batch's records to their shards' writers ([`shard`]) and
//!    finish every shard at the end — sqlite-vec shards in parallel, one
//!    per task; LanceDB shards one at a time, as LanceDB parallelises its
//!    own appends and index builds. Shards live in a local staging folder
//!    meanwhile.
//! 3. **Upload** shard files and `.npy` artefacts concurrently (bounded by
//!    [`WriterOptions::upload_concurrency`]), multipart for large files.
//! 4. **Publish**, two-phase: the manifest (checked by parsing it back
//!    and building a router from it), then `_CURRENT`, conditionally on
//!    the pointer it replaces and never over a newer publish of another
//!    writer unless forced ([`set_current`]).
//!
//! The phases are [`BuildPlan`]'s building blocks, run in one process; a
//! distributed writer runs them in an engine's tasks ([`plan`]).
//!
//! A failure in phases 1–4 before `_CURRENT` is written leaves `_CURRENT`
//! untouched (readers keep the previous snapshot) and removes, best effort,
//! the objects this run uploaded. The run's id (a UUID v4) names every
//! object it writes, so runs never overwrite each other's files.

pub mod input;
pub mod manifest;
pub mod plan;
pub mod progress;
pub mod shard;
pub mod train;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, SubsecRound, Utc};
use object_store::{ObjectStore, ObjectStoreExt};
use rayon::prelude::*;
use serde::Serialize;
use shardvec_core::layout::shard_dir;
use shardvec_core::manifest::CelSpec;
use shardvec_core::npy::Matrix;
use shardvec_core::{Metric, RouteOptions, Router, ShardId, Strategy};

use crate::backend::BackendKind;
use crate::error::{Error, Result};
use crate::location::{SnapshotLocation, StoreOptions};
pub use input::{Input, InputFormat, Record};
pub use plan::{BuildPlan, Published, ShardEntry};
pub use progress::{Phase, Progress};
use shard::{ShardLayout, ShardWriter, WrittenShard};

/// How vectors are routed to shards.
#[derive(Debug, Clone)]
pub enum StrategyConfig {
    /// Nearest centroid; `centroids` `[num_dbs, dim]`, or trained when
    /// `None`.
    Cluster {
        /// Given centroids.
        centroids: Option<Matrix>,
    },
    /// Random-hyperplane LSH with `num_hash_bits` hyperplanes.
    Lsh {
        /// Hyperplanes (1 to 64).
        num_hash_bits: u32,
    },
    /// Each record names its shard.
    Explicit,
    /// A CEL expression over each record's routing context.
    Cel(CelSpec),
}

impl StrategyConfig {
    fn strategy(&self) -> Strategy {
        match self {
            StrategyConfig::Cluster { .. } => Strategy::Cluster,
            StrategyConfig::Lsh { .. } => Strategy::Lsh,
            StrategyConfig::Explicit => Strategy::Explicit,
            StrategyConfig::Cel(_) => Strategy::Cel,
        }
    }
}

/// Options of [`build`]. Defaults are given on each setter.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    num_dbs: u32,
    metric: Metric,
    strategy: StrategyConfig,
    backend: BackendKind,
    num_probes: u32,
    train_sample: usize,
    seed: u64,
    max_iter: usize,
    lance_index_min_rows: u64,
    upload_concurrency: usize,
    batch_size: usize,
    store_options: StoreOptions,
    progress: Option<Arc<dyn Progress>>,
    user_fields: serde_json::Map<String, serde_json::Value>,
    run_id: Option<String>,
    staging_dir: Option<PathBuf>,
    force: bool,
}

impl WriterOptions {
    /// `num_dbs` shards, `metric`, routed by `strategy`.
    pub fn new(num_dbs: u32, metric: Metric, strategy: StrategyConfig) -> Self {
        WriterOptions {
            num_dbs,
            metric,
            strategy,
            backend: BackendKind::SqliteVec,
            num_probes: 1,
            train_sample: train::DEFAULT_TRAIN_SAMPLE,
            seed: train::DEFAULT_SEED,
            max_iter: train::DEFAULT_MAX_ITER,
            lance_index_min_rows: 10_000,
            upload_concurrency: 8,
            batch_size: 8192,
            store_options: StoreOptions::new(),
            progress: None,
            user_fields: serde_json::Map::new(),
            run_id: None,
            staging_dir: None,
            force: false,
        }
    }

    /// Shard backend (default sqlite-vec; it has no `dot_product`).
    pub fn backend(mut self, b: BackendKind) -> Self {
        self.backend = b;
        self
    }

    /// Default number of shards a query probes, recorded in the manifest
    /// (default 1; CLUSTER and LSH).
    pub fn num_probes(mut self, n: u32) -> Self {
        self.num_probes = n;
        self
    }

    /// CLUSTER training sample size (default 100 000).
    pub fn train_sample(mut self, n: usize) -> Self {
        self.train_sample = n;
        self
    }

    /// Seed of sampling, k-means and hyperplanes (default 42).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Cap on k-means iterations (default 100).
    pub fn max_iter(mut self, n: usize) -> Self {
        self.max_iter = n;
        self
    }

    /// LanceDB shards with at least this many rows get an approximate
    /// `IVF_HNSW_SQ` index, smaller ones an exact `IVF_FLAT` index (default
    /// 10 000; see `shard::lance_index`, feature `lancedb`).
    pub fn lance_index_min_rows(mut self, n: u64) -> Self {
        self.lance_index_min_rows = n;
        self
    }

    /// Files uploaded at once (default 8).
    pub fn upload_concurrency(mut self, n: usize) -> Self {
        self.upload_concurrency = n.max(1);
        self
    }

    /// Records routed and appended per step (default 8 192).
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n.max(1);
        self
    }

    /// Object-store options (endpoint, credentials, ...).
    pub fn store_options(mut self, o: StoreOptions) -> Self {
        self.store_options = o;
        self
    }

    /// Reports the build's progress to `progress` (default: none).
    pub fn progress(mut self, progress: Arc<dyn Progress>) -> Self {
        self.progress = Some(progress);
        self
    }

    /// A user field stored at the top level of the manifest's `custom`.
    pub fn user_field(mut self, key: impl Into<String>, value: serde_json::Value) -> Self {
        self.user_fields.insert(key.into(), value);
        self
    }

    /// The run id (default: a random UUID v4).
    pub fn run_id(mut self, id: impl Into<String>) -> Self {
        self.run_id = Some(id.into());
        self
    }

    /// Where shards are staged before upload (default: the system's
    /// temporary folder).
    pub fn staging_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.staging_dir = Some(dir.into());
        self
    }

    /// Publish even over a `_CURRENT` naming a manifest published after
    /// this run's (default false: such a publish fails with
    /// [`Error::NewerPublished`] and the run is removed, because another
    /// writer published meanwhile; see [`set_current`]).
    pub fn force(mut self, yes: bool) -> Self {
        self.force = yes;
        self
    }
}

/// One written shard.
#[derive(Debug, Clone, Serialize)]
pub struct ShardSummary {
    /// Shard id.
    pub db_id: ShardId,
    /// Vectors.
    pub rows: u64,
    /// Bytes uploaded.
    pub bytes: u64,
}

/// Milliseconds spent in each phase.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    /// Training routing artefacts.
    pub train_ms: u64,
    /// Routing and writing shards locally (index builds included).
    pub write_ms: u64,
    /// Uploading shards and artefacts.
    pub upload_ms: u64,
    /// Writing the manifest and `_CURRENT`.
    pub publish_ms: u64,
    /// The whole build.
    pub total_ms: u64,
}

/// What [`build`] published.
#[derive(Debug, Clone, Serialize)]
pub struct BuildSummary {
    /// The run id.
    pub run_id: String,
    /// The snapshot prefix.
    pub prefix: String,
    /// The published manifest's URL.
    pub manifest_url: String,
    /// Number of shards (including empty ones).
    pub num_dbs: u32,
    /// Vectors written.
    pub total_vectors: u64,
    /// The non-empty shards.
    pub shards: Vec<ShardSummary>,
    /// Phase timings.
    pub timings: Timings,
}

fn ms(since: Instant) -> u64 {
    since.elapsed().as_millis() as u64
}

/// A random UUID v4 (hyphenated). The format is four lines, not worth a
/// crate.
pub fn uuid4() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// `2026-11-21T18:28:00.726454Z`, as the reference writes timestamps.
fn timestamp(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// The phase `phase` of a build, reported to `progress` if any; finished
/// when dropped.
struct Report<'a> {
    progress: Option<&'a dyn Progress>,
    phase: Phase,
}

impl<'a> Report<'a> {
    fn start(progress: &'a Option<Arc<dyn Progress>>, phase: Phase, total: Option<u64>) -> Self {
        let progress = progress.as_deref();
        if let Some(p) = progress {
            p.start(phase, total);
        }
        Report { progress, phase }
    }

    fn advance(&self, n: u64) {
        if let Some(p) = self.progress {
            p.advance(self.phase, n);
        }
    }
}

impl Drop for Report<'_> {
    fn drop(&mut self) {
        if let Some(p) = self.progress {
            p.finish(self.phase);
        }
    }
}

/// Builds a snapshot of `input` at `prefix` and publishes it.
pub async fn build(prefix: &str, input: &Input, opts: &WriterOptions) -> Result<BuildSummary> {
    let location = SnapshotLocation::open(prefix, &opts.store_options)?;
    build_at(location, input, opts).await
}

/// [`build`] into an already open location: any `object_store` store,
/// wrapped as the caller likes (metrics, throttling, fault injection),
/// through [`SnapshotLocation::from_store`]. `opts.store_options` are not
/// used.
pub async fn build_at(
    location: SnapshotLocation,
    input: &Input,
    opts: &WriterOptions,
) -> Result<BuildSummary> {
    let started = Instant::now();
    plan::validate(opts)?;
    let dim = input.dim()?;
    if dim == 0 {
        return Err(Error::input(input.name(), None, "vectors have dimension 0"));
    }
    if let Some(run_id) = &opts.run_id {
        plan::check_new_run(&location, run_id).await?;
    }
    let mut timings = Timings::default();

    // Phase 1: routing artefacts, then the plan (the manifest to publish).
    let t = Instant::now();
    let plan = match &opts.strategy {
        StrategyConfig::Cluster { centroids: None } => {
            let centroids = train_on(input, opts, dim).await?;
            let mut opts = opts.clone();
            opts.strategy = StrategyConfig::Cluster {
                centroids: Some(centroids),
            };
            BuildPlan::for_new_run(location, dim, &opts)?
        }
        _ => BuildPlan::for_new_run(location, dim, opts)?,
    };
    timings.train_ms = ms(t);

    // Phase 2: route and write shards locally.
    let t = Instant::now();
    let staging = plan.staging()?;
    let written = {
        let (input, opts2, router, layout) = (
            input.clone(),
            opts.clone(),
            plan.router().clone(),
            plan.layout(),
        );
        let dir = staging.path().to_path_buf();
        let rt = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            write_shards(&input, &opts2, &router, &layout, &dir, &rt)
        })
        .await
        .map_err(|e| Error::task("shard writing", e))??
    };
    timings.write_ms = ms(t);

    // Phase 3: upload. On failure, remove what this run uploaded.
    let t = Instant::now();
    let uploaded = upload(&plan, &written, opts).await;
    timings.upload_ms = ms(t);
    if let Err(e) = uploaded {
        plan.abort().await;
        return Err(e);
    }

    // Phase 4: publish.
    let t = Instant::now();
    let entries = written
        .iter()
        .map(|w| ShardEntry {
            db_id: w.shard,
            attempt: 0,
            rows: w.rows,
            bytes: w.bytes,
            write_ms: timings.write_ms,
        })
        .collect();
    let published = plan.publish(entries).await?;
    timings.publish_ms = ms(t);
    timings.total_ms = ms(started);
    Ok(BuildSummary {
        run_id: plan.run_id().to_string(),
        prefix: plan.prefix().to_string(),
        manifest_url: published.manifest_url,
        num_dbs: plan.num_dbs(),
        total_vectors: published.total_vectors,
        shards: written
            .iter()
            .map(|w| ShardSummary {
                db_id: w.shard,
                rows: w.rows,
                bytes: w.bytes,
            })
            .collect(),
        timings,
    })
}

/// CLUSTER centroids trained with k-means on a seeded sample of `input`.
async fn train_on(input: &Input, opts: &WriterOptions, dim: usize) -> Result<Matrix> {
    let (input, opts) = (input.clone(), opts.clone());
    tokio::task::spawn_blocking(move || {
        let mut sample = train::Reservoir::new(opts.train_sample, opts.seed);
        for (i, r) in input.open()?.enumerate() {
            let r = r?;
            check_vector(&input.name(), i as u64, &r.vector, dim)?;
            sample.offer(&r.vector);
        }
        train::kmeans(
            sample.into_items(),
            opts.num_dbs as usize,
            opts.metric,
            opts.seed,
            opts.max_iter,
        )
    })
    .await
    .map_err(|e| Error::task("training", e))?
}

fn check_vector(input: &str, row: u64, v: &[f32], dim: usize) -> Result<()> {
    if v.len() != dim {
        return Err(Error::input(
            input,
            Some(row),
            format!("vector has dimension {}, expected {dim}", v.len()),
        ));
    }
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(Error::input(
            input,
            Some(row),
            format!("vector value {i} is not finite"),
        ));
    }
    Ok(())
}

/// The shard of record `r` (number `at` of `input`), checked: dimension,
/// finite values, a `shard_id` for EXPLICIT, a routing context for CEL.
fn route_record(router: &Router, input: &str, at: u64, r: &Record) -> Result<ShardId> {
    check_vector(input, at, &r.vector, router.dim())?;
    let explicit;
    let mut ro = RouteOptions {
        num_probes: Some(1),
        shard_ids: None,
        routing_context: r.routing_context.as_ref(),
    };
    match router.strategy() {
        Strategy::Explicit => {
            let s = r.shard_id.ok_or_else(|| {
                Error::input(
                    input,
                    Some(at),
                    "EXPLICIT snapshots need a shard_id per record",
                )
            })?;
            explicit = [s];
            ro.shard_ids = Some(&explicit);
        }
        Strategy::Cel if r.routing_context.is_none() => {
            return Err(Error::input(
                input,
                Some(at),
                "CEL snapshots need a routing_context per record",
            ))
        }
        _ => {}
    }
    let shards = router
        .route(&r.vector, &ro)
        .map_err(|e| Error::input(input, Some(at), e.to_string()))?;
    shards
        .first()
        .copied()
        .ok_or_else(|| Error::input(input, Some(at), "routed to no shard"))
}

/// Phase 2, on a blocking thread: batches → routes (parallel) → shard
/// appends → finished shards.
fn write_shards(
    input: &Input,
    opts: &WriterOptions,
    router: &Router,
    layout: &ShardLayout,
    dir: &std::path::Path,
    rt: &tokio::runtime::Handle,
) -> Result<Vec<WrittenShard>> {
    let name = input.name();
    // sqlite-vec shards are appended and finished in parallel, one shard
    // per rayon task. LanceDB parallelises its own writes and index builds
    // on rayon's global pool: calling it from that pool's threads would
    // leave its k-means waiting for the very threads it blocks, so LanceDB
    // shards are driven from this thread, one at a time.
    let parallel = layout.backend == BackendKind::SqliteVec;
    let bar = Report::start(&opts.progress, Phase::Write, input.len_hint());
    let mut writers: HashMap<ShardId, Box<dyn ShardWriter>> = HashMap::new();
    let mut records = input.open()?;
    let mut row: u64 = 0;
    loop {
        let batch: Vec<Record> = records
            .by_ref()
            .take(opts.batch_size)
            .collect::<Result<_>>()?;
        if batch.is_empty() {
            break;
        }
        let first = row;
        row += batch.len() as u64;
        let routes: Vec<ShardId> = batch
            .par_iter()
            .enumerate()
            .map(|(i, r)| route_record(router, &name, first + i as u64, r))
            .collect::<Result<_>>()?;
        let mut groups: BTreeMap<ShardId, Vec<&Record>> = BTreeMap::new();
        for (r, s) in batch.iter().zip(&routes) {
            groups.entry(*s).or_default().push(r);
        }
        let mut work = groups
            .into_iter()
            .map(|(s, recs)| {
                let w = match writers.remove(&s) {
                    Some(w) => w,
                    None => shard::writer(layout, s, &dir.join(format!("shard_{:05}", s.0)), rt)?,
                };
                Ok((s, recs, w))
            })
            .collect::<Result<Vec<_>>>()?;
        if parallel {
            work.par_iter_mut()
                .try_for_each(|(_, recs, w)| w.add(recs))?;
        } else {
            work.iter_mut().try_for_each(|(_, recs, w)| w.add(recs))?;
        }
        for (s, _, w) in work {
            writers.insert(s, w);
        }
        bar.advance(batch.len() as u64);
    }
    drop(bar);
    if row == 0 {
        return Err(Error::input(name, None, "no records"));
    }
    let mut shards: Vec<(ShardId, Box<dyn ShardWriter>)> = writers.into_iter().collect();
    shards.sort_by_key(|(s, _)| *s);
    if parallel {
        shards.into_par_iter().map(|(_, w)| w.finish()).collect()
    } else {
        shards.into_iter().map(|(_, w)| w.finish()).collect()
    }
}

async fn put_file(
    store: &Arc<dyn ObjectStore>,
    location: &SnapshotLocation,
    key: &str,
    local: &std::path::Path,
) -> Result<()> {
    use tokio::io::AsyncWriteExt;
    let url = location.display_url(key);
    let io_err = |e: std::io::Error| {
        Error::store(
            "put",
            url.clone(),
            object_store::Error::Generic {
                store: "upload",
                source: Box::new(e),
            },
        )
    };
    let mut file = tokio::fs::File::open(local)
        .await
        .map_err(|e| Error::io(local, e))?;
    // Buffered: one PUT for small files, a multipart upload for large ones.
    let mut w = object_store::buffered::BufWriter::new(store.clone(), location.path(key));
    tokio::io::copy(&mut file, &mut w).await.map_err(io_err)?;
    w.shutdown().await.map_err(io_err)
}

async fn put_bytes(location: &SnapshotLocation, key: &str, bytes: Vec<u8>) -> Result<()> {
    location
        .store()
        .put(&location.path(key), bytes.into())
        .await
        .map(|_| ())
        .map_err(|e| Error::store("put", location.display_url(key), e))
}

/// Phase 3: every written shard's files, to attempt 0.
async fn upload(plan: &BuildPlan, written: &[WrittenShard], opts: &WriterOptions) -> Result<()> {
    let bar = Report::start(
        &opts.progress,
        Phase::Upload,
        Some(written.iter().map(|w| w.bytes).sum()),
    );
    let dirs: Vec<String> = written
        .iter()
        .map(|w| shard_dir(plan.run_id(), w.shard, 0))
        .collect();
    let files = written
        .iter()
        .zip(&dirs)
        .flat_map(|(w, dir)| plan::shard_files(dir, w))
        .collect();
    plan.upload_files(files, |size| bar.advance(size)).await
}

pub use crate::manifest_store::{set_current, Replace};
