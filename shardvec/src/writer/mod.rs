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
//! A failure in phases 1–4 before `_CURRENT` is written leaves `_CURRENT`
//! untouched (readers keep the previous snapshot) and removes, best effort,
//! the objects this run uploaded. The run's id (a UUID v4) names every
//! object it writes, so runs never overwrite each other's files.

pub mod input;
pub mod manifest;
pub mod progress;
pub mod shard;
pub mod train;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, SubsecRound, Utc};
use futures::{StreamExt, TryStreamExt};
use object_store::{ObjectStore, ObjectStoreExt};
use rayon::prelude::*;
use serde::Serialize;
use shardvec_core::current::manifest_dir_name;
use shardvec_core::layout::{
    artefact_key, manifest_key, run_dirs, shard_dir, CENTROIDS_FILE, HYPERPLANES_FILE,
    MANIFEST_FILE,
};
use shardvec_core::manifest::{BuildMeta, CelSpec, Manifest, ShardMeta, VectorMeta, MAX_NUM_DBS};
use shardvec_core::npy::Matrix;
use shardvec_core::{
    ManifestRef, Metric, RouteOptions, Router, RoutingArtefacts, ShardId, Strategy,
};

use crate::backend::BackendKind;
use crate::error::{Error, Result};
use crate::location::{SnapshotLocation, StoreOptions};
pub use input::{Input, InputFormat, Record};
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

/// The keys of one run's objects ([`shardvec_core::layout`]).
struct RunKeys {
    run_id: String,
}

impl RunKeys {
    fn shard_dir(&self, shard: ShardId) -> String {
        shard_dir(&self.run_id, shard)
    }
    fn artefact(&self, file: &str) -> String {
        artefact_key(&self.run_id, file)
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
    let num_dbs = opts.num_dbs;
    if num_dbs == 0 || num_dbs > MAX_NUM_DBS {
        return Err(Error::InvalidArgument(format!(
            "num_dbs must be 1 to {MAX_NUM_DBS}, got {num_dbs}"
        )));
    }
    if opts.backend == BackendKind::SqliteVec && opts.metric == Metric::DotProduct {
        return Err(Error::InvalidArgument(
            "sqlite-vec has no dot_product metric; use the LanceDB backend".into(),
        ));
    }
    let dim = input.dim()?;
    if dim == 0 {
        return Err(Error::input(input.name(), None, "vectors have dimension 0"));
    }
    let run = RunKeys {
        run_id: opts.run_id.clone().unwrap_or_else(uuid4),
    };
    // A chosen run id must be new: never write over (and on failure clean
    // up) another run's objects.
    if opts.run_id.is_some() {
        for dir in run_dirs(&run.run_id) {
            if !location.list(&dir).await?.is_empty() {
                return Err(Error::RunExists {
                    run_id: run.run_id.clone(),
                    prefix: location.url().to_string(),
                });
            }
        }
    }
    let mut timings = Timings::default();

    // Phase 1: routing artefacts.
    let t = Instant::now();
    let artefacts = match &opts.strategy {
        StrategyConfig::Cluster { centroids: Some(c) } => RoutingArtefacts::centroids(
            c.clone().expect_shape(num_dbs as usize, dim, "centroids")?,
        ),
        StrategyConfig::Cluster { centroids: None } => {
            let (input, opts2) = (input.clone(), opts.clone());
            let centroids = tokio::task::spawn_blocking(move || {
                let mut sample = train::Reservoir::new(opts2.train_sample, opts2.seed);
                for (i, r) in input.open()?.enumerate() {
                    let r = r?;
                    check_vector(&input.name(), i as u64, &r.vector, dim)?;
                    sample.offer(&r.vector);
                }
                train::kmeans(
                    sample.into_items(),
                    num_dbs as usize,
                    opts2.metric,
                    opts2.seed,
                    opts2.max_iter,
                )
            })
            .await
            .map_err(|e| Error::task("training", e))??;
            RoutingArtefacts::centroids(centroids)
        }
        StrategyConfig::Lsh { num_hash_bits } => {
            RoutingArtefacts::hyperplanes(train::hyperplanes(*num_hash_bits, dim, opts.seed)?)
        }
        StrategyConfig::Explicit | StrategyConfig::Cel(_) => RoutingArtefacts::none(),
    };
    timings.train_ms = ms(t);

    let created_at = now();
    let vector = VectorMeta {
        dim,
        metric: opts.metric,
        strategy: opts.strategy.strategy(),
        num_probes: opts.num_probes.max(1),
        centroids_ref: artefacts
            .centroids
            .as_ref()
            .map(|_| location.display_url(&run.artefact(CENTROIDS_FILE))),
        hyperplanes_ref: artefacts
            .hyperplanes
            .as_ref()
            .map(|_| location.display_url(&run.artefact(HYPERPLANES_FILE))),
        num_hash_bits: artefacts.hyperplanes.as_ref().map(|h| h.rows() as u32),
        cel: match &opts.strategy {
            StrategyConfig::Cel(spec) => Some(spec.clone()),
            _ => None,
        },
        index_type: Some("hnsw".into()),
        quantization: None,
        total_vectors: None,
        extra: Default::default(),
    };
    let mut manifest = Manifest {
        build: BuildMeta::for_vectors(
            run.run_id.clone(),
            timestamp(&created_at),
            num_dbs,
            location.url().to_string(),
        ),
        shards: Vec::new(),
        vector,
        user_fields: opts.user_fields.clone(),
    };
    // The router every reader will build from this manifest.
    let router = Arc::new(Router::new(&manifest, artefacts.clone())?);

    // Phase 2: route and write shards locally.
    let t = Instant::now();
    let staging = match &opts.staging_dir {
        Some(d) => {
            std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
            tempfile::Builder::new()
                .prefix("shardvec-build-")
                .tempdir_in(d)
        }
        None => tempfile::Builder::new().prefix("shardvec-build-").tempdir(),
    }
    .map_err(|e| {
        Error::io(
            opts.staging_dir.clone().unwrap_or_else(std::env::temp_dir),
            e,
        )
    })?;
    let layout = ShardLayout {
        backend: opts.backend,
        dim,
        metric: opts.metric,
        lance_index_min_rows: opts.lance_index_min_rows,
    };
    let written = {
        let (input, opts2, router, layout) =
            (input.clone(), opts.clone(), router.clone(), layout.clone());
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
    let uploaded = upload(&location, &run, &written, &artefacts, opts).await;
    timings.upload_ms = ms(t);
    if let Err(e) = uploaded {
        cleanup(&location, &run).await;
        return Err(e);
    }

    // Phase 4: publish.
    let t = Instant::now();
    let total: u64 = written.iter().map(|w| w.rows).sum();
    manifest.vector.total_vectors = Some(total);
    manifest.shards = written
        .iter()
        .map(|w| ShardMeta {
            db_id: w.shard,
            db_url: Some(location.display_url(&run.shard_dir(w.shard))),
            attempt: 0,
            row_count: w.rows,
            db_bytes: w.bytes,
            min_key: None,
            max_key: None,
            checkpoint_id: Some(hex(&rand::random::<[u8; 16]>())),
            writer_info: ShardMeta::reference_writer_info(0, timings.write_ms),
        })
        .collect();
    let replace = if opts.force {
        Replace::Any
    } else {
        Replace::OlderOnly
    };
    let published = publish(&location, &manifest, artefacts, staging.path(), replace).await;
    timings.publish_ms = ms(t);
    let manifest_url = match published {
        Ok(url) => url,
        Err(f) if f.maybe_live => return Err(f.error),
        Err(f) => {
            cleanup(&location, &run).await;
            if let Some(key) = f.manifest_key {
                // The orphan manifest, which `history`/`rollback` would offer.
                if let Err(e) = location.store().delete(&location.path(&key)).await {
                    tracing::warn!(key, error = %e, "cannot remove the manifest of a failed publish");
                }
            }
            return Err(f.error);
        }
    };
    timings.total_ms = ms(started);
    Ok(BuildSummary {
        run_id: run.run_id,
        prefix: location.url().to_string(),
        manifest_url,
        num_dbs,
        total_vectors: total,
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
    let strategy = router.strategy();
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
            .map(|(i, r)| {
                let at = first + i as u64;
                check_vector(&name, at, &r.vector, layout.dim)?;
                let explicit;
                let mut ro = RouteOptions {
                    num_probes: Some(1),
                    shard_ids: None,
                    routing_context: r.routing_context.as_ref(),
                };
                match strategy {
                    Strategy::Explicit => {
                        let s = r.shard_id.ok_or_else(|| {
                            Error::input(
                                &name,
                                Some(at),
                                "EXPLICIT snapshots need a shard_id per record",
                            )
                        })?;
                        explicit = [s];
                        ro.shard_ids = Some(&explicit);
                    }
                    Strategy::Cel if r.routing_context.is_none() => {
                        return Err(Error::input(
                            &name,
                            Some(at),
                            "CEL snapshots need a routing_context per record",
                        ))
                    }
                    _ => {}
                }
                let shards = router
                    .route(&r.vector, &ro)
                    .map_err(|e| Error::input(&name, Some(at), e.to_string()))?;
                shards
                    .first()
                    .copied()
                    .ok_or_else(|| Error::input(&name, Some(at), "routed to no shard"))
            })
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

async fn upload(
    location: &SnapshotLocation,
    run: &RunKeys,
    written: &[WrittenShard],
    artefacts: &RoutingArtefacts,
    opts: &WriterOptions,
) -> Result<()> {
    let files: Vec<(String, PathBuf, u64)> = written
        .iter()
        .flat_map(|w| {
            let dir = run.shard_dir(w.shard);
            w.files
                .iter()
                .map(move |(rel, path, size)| (format!("{dir}/{rel}"), path.clone(), *size))
        })
        .collect();
    let bar = Report::start(
        &opts.progress,
        Phase::Upload,
        Some(files.iter().map(|f| f.2).sum()),
    );
    let store = location.store().clone();
    futures::stream::iter(files.iter().map(|(key, path, size)| {
        let (store, bar) = (&store, &bar);
        async move {
            put_file(store, location, key, path).await?;
            bar.advance(*size);
            Ok::<_, Error>(())
        }
    }))
    .buffer_unordered(opts.upload_concurrency)
    .try_collect::<Vec<()>>()
    .await?;
    drop(bar);
    if let Some(c) = &artefacts.centroids {
        put_bytes(location, &run.artefact(CENTROIDS_FILE), c.to_npy()).await?;
    }
    if let Some(h) = &artefacts.hyperplanes {
        put_bytes(location, &run.artefact(HYPERPLANES_FILE), h.to_npy()).await?;
    }
    Ok(())
}

/// Why a publish failed, and what of it is in the store.
struct PublishFailure {
    error: Error,
    /// The manifest's key, if it was uploaded (an orphan to remove).
    manifest_key: Option<String>,
    /// `_CURRENT` may name this run: its PUT failed and reading it back
    /// failed too. Nothing of the run may be removed then.
    maybe_live: bool,
}

impl From<Error> for PublishFailure {
    fn from(error: Error) -> Self {
        PublishFailure {
            error,
            manifest_key: None,
            maybe_live: false,
        }
    }
}

/// Writes the manifest, checks it, uploads it, then points `_CURRENT` at
/// it. Returns the manifest's URL.
///
/// A failed `_CURRENT` PUT is not proof that `_CURRENT` is unchanged: the
/// store may have applied it and lost the answer (a timeout). `_CURRENT` is
/// then read back: naming this manifest, the publish succeeded; naming
/// another, it failed and the run may be removed; unreadable, the outcome
/// is unknown and the run's objects must stay (removing them could delete
/// the live snapshot's shards).
async fn publish(
    location: &SnapshotLocation,
    manifest: &Manifest,
    artefacts: RoutingArtefacts,
    staging: &std::path::Path,
    replace: Replace,
) -> std::result::Result<String, PublishFailure> {
    let image = manifest::write_image(manifest, &staging.join(MANIFEST_FILE))?;
    let published_at = now();
    let key = manifest_key(&manifest_dir_name(&published_at, &manifest.build.run_id));
    let url = location.display_url(&key);
    // What a reader will see: parse it back and build its router.
    let parsed = Manifest::parse(&image).map_err(|source| Error::Manifest {
        url: url.clone(),
        source,
    })?;
    Router::new(&parsed, artefacts).map_err(|source| Error::Manifest {
        url: url.clone(),
        source,
    })?;
    if let Err(error) = put_bytes(location, &key, image).await {
        // Even a failed PUT may have been applied: remove it with the run.
        return Err(PublishFailure {
            error,
            manifest_key: Some(key),
            maybe_live: false,
        });
    }
    let target = ManifestRef {
        url: url.clone(),
        run_id: manifest.build.run_id.clone(),
        published_at,
    };
    let Err(error) = set_current(location, &target, replace).await else {
        return Ok(url);
    };
    let store = crate::manifest_store::ObjectManifestStore::new(location.clone());
    match crate::manifest_store::ManifestStore::load_current(&store).await {
        Ok(Some(current)) if current.manifest_ref == url => {
            tracing::warn!(error = %error, manifest = %url, "the _CURRENT PUT reported an error but was applied: published");
            Ok(url)
        }
        Ok(_) => Err(PublishFailure {
            error,
            manifest_key: Some(key),
            maybe_live: false,
        }),
        Err(read) => {
            tracing::error!(error = %error, read_back = %read, manifest = %url, "_CURRENT may name this run: keeping its objects");
            Err(PublishFailure {
                error,
                manifest_key: Some(key),
                maybe_live: true,
            })
        }
    }
}

pub use crate::manifest_store::{set_current, Replace};

/// Best-effort removal of a failed run's objects.
async fn cleanup(location: &SnapshotLocation, run: &RunKeys) {
    for dir in run_dirs(&run.run_id) {
        if let Ok(objects) = location.list(&dir).await {
            for (key, _) in objects {
                if let Err(e) = location.store().delete(&location.path(&key)).await {
                    tracing::warn!(key, error = %e, "cannot remove an object of a failed build");
                }
            }
        }
    }
}
