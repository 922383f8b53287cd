//! A build split into tasks that any engine can schedule: the building
//! blocks of distributed writers (Dask, Ray, Spark, or a shell loop).
//!
//! The single-machine [`build`](super::build) runs these same steps in one
//! process; a distributed build runs them where the data is:
//!
//! 1. **On the driver**: train (or load) the routing artefacts once — CLUSTER
//!    centroids with [`kmeans`](super::train::kmeans) on a sample drawn from
//!    *every* partition, LSH hyperplanes from the seed — and create the
//!    [`BuildPlan`]. The plan is the manifest that will be published, minus
//!    its shards, plus its artefacts and the writer's settings; it ships to
//!    tasks as bytes ([`BuildPlan::to_bytes`], [`BuildPlan::from_bytes`]).
//! 2. **In tasks, per input partition**: [`BuildPlan::route`] assigns each
//!    record its shard with the core [`Router`] built from that manifest —
//!    the router every reader will build, so writers and readers agree by
//!    construction.
//! 3. **In tasks, per shard** (after the engine's shuffle has brought all
//!    of a shard's records together): [`BuildPlan::write_shard`] writes the
//!    shard locally, uploads it under a fresh attempt folder, and returns
//!    its [`ShardEntry`]. It refuses records routed elsewhere: a shuffle
//!    bug would otherwise publish vectors that no query can reach.
//! 4. **On the driver**: [`BuildPlan::publish`] checks every entry against
//!    the store (the attempt's objects exist and add up to the entry's
//!    bytes), uploads the artefacts, writes the manifest and then
//!    `_CURRENT` (two-phase, conditional, as the CLI's build), and removes
//!    the attempts of failed or retried tasks that no entry names.
//!    [`BuildPlan::abort`] removes a failed build's objects.
//!
//! Retries: a task that runs again writes the next free attempt folder of
//! its shard, so a retried task never mixes its files with a failed one's;
//! the entry names the attempt it wrote. Two attempts running *at once*
//! (speculative execution) may pick the same folder; `publish`'s size
//! check catches most such mixes, so keep speculation off for builds.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use shardvec_core::current::manifest_dir_name;
use shardvec_core::layout::{
    artefact_key, manifest_key, run_dirs, shard_attempt_of, shard_attempts_dir, shard_dir,
    CENTROIDS_FILE, HYPERPLANES_FILE, MANIFEST_FILE,
};
use shardvec_core::manifest::{BuildMeta, Manifest, ShardMeta, VectorMeta, MAX_NUM_DBS};
use shardvec_core::npy::Matrix;
use shardvec_core::{ManifestRef, Metric, Router, RoutingArtefacts, ShardId};

use super::shard::{self, ShardLayout, WrittenShard};
use super::{hex, now, put_bytes, put_file, route_record, timestamp, uuid4};
use super::{Record, StrategyConfig, WriterOptions};
use crate::backend::BackendKind;
use crate::error::{Error, Result};
use crate::location::{SnapshotLocation, StoreOptions};
use crate::manifest_store::{set_current, Replace};

/// The first bytes of [`BuildPlan::to_bytes`], with the container's version.
const PLAN_MAGIC: &[u8] = b"shardvec-build-plan/1\n";

/// A build in progress: what every task of a distributed build shares.
/// See the [module documentation](self) for the steps.
pub struct BuildPlan {
    location: SnapshotLocation,
    /// The manifest to publish, without its shards.
    manifest: Manifest,
    artefacts: RoutingArtefacts,
    router: Arc<Router>,
    settings: Settings,
    staging_dir: Option<PathBuf>,
}

/// The writer's settings that the manifest does not record.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Settings {
    backend: BackendKind,
    lance_index_min_rows: u64,
    upload_concurrency: usize,
    force: bool,
}

/// One shard written and uploaded by [`BuildPlan::write_shard`], for
/// [`BuildPlan::publish`]. Serializable, to travel back from a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardEntry {
    /// The shard.
    pub db_id: ShardId,
    /// The attempt folder its files were uploaded to.
    pub attempt: u32,
    /// Vectors written.
    pub rows: u64,
    /// Total size of its files.
    pub bytes: u64,
    /// Milliseconds spent writing it locally (index builds included).
    pub write_ms: u64,
}

/// What [`BuildPlan::publish`] published.
#[derive(Debug, Clone, Serialize)]
pub struct Published {
    /// The manifest's URL, now named by `_CURRENT`.
    pub manifest_url: String,
    /// Vectors in the snapshot.
    pub total_vectors: u64,
}

impl std::fmt::Debug for BuildPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuildPlan")
            .field("prefix", &self.location.url())
            .field("run_id", &self.manifest.build.run_id)
            .field("num_dbs", &self.manifest.build.num_dbs)
            .field("dim", &self.manifest.vector.dim)
            .field("strategy", &self.manifest.vector.strategy)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl BuildPlan {
    /// Starts a build at `location` of `dim`-dimensional vectors with
    /// `opts`. CLUSTER needs its centroids here (train them first, e.g.
    /// with [`kmeans`](super::train::kmeans) on a sample of every
    /// partition); LSH hyperplanes come from `opts`' seed. A chosen run id
    /// must be new under the prefix.
    pub async fn create(
        location: SnapshotLocation,
        dim: usize,
        opts: &WriterOptions,
    ) -> Result<BuildPlan> {
        validate(opts)?;
        let plan = BuildPlan::for_new_run(location, dim, opts)?;
        if opts.run_id.is_some() {
            check_new_run(&plan.location, plan.run_id()).await?;
        }
        Ok(plan)
    }

    /// [`create`](Self::create) once `opts` are validated and a chosen run
    /// id is known to be new.
    pub(super) fn for_new_run(
        location: SnapshotLocation,
        dim: usize,
        opts: &WriterOptions,
    ) -> Result<BuildPlan> {
        if dim == 0 {
            return Err(Error::InvalidArgument("vectors have dimension 0".into()));
        }
        let artefacts = match &opts.strategy {
            StrategyConfig::Cluster { centroids: Some(c) } => RoutingArtefacts::centroids(
                c.clone()
                    .expect_shape(opts.num_dbs as usize, dim, "centroids")?,
            ),
            StrategyConfig::Cluster { centroids: None } => {
                return Err(Error::InvalidArgument(
                    "a CLUSTER build plan needs its centroids: train them first \
                     (writer::train::kmeans on a sample of the input)"
                        .into(),
                ))
            }
            StrategyConfig::Lsh { num_hash_bits } => RoutingArtefacts::hyperplanes(
                super::train::hyperplanes(*num_hash_bits, dim, opts.seed)?,
            ),
            StrategyConfig::Explicit | StrategyConfig::Cel(_) => RoutingArtefacts::none(),
        };
        let run_id = opts.run_id.clone().unwrap_or_else(uuid4);
        let manifest = manifest_template(&location, &run_id, dim, opts, &artefacts);
        BuildPlan::assemble(
            location,
            manifest,
            artefacts,
            Settings {
                backend: opts.backend,
                lance_index_min_rows: opts.lance_index_min_rows,
                upload_concurrency: opts.upload_concurrency,
                force: opts.force,
            },
        )
        .map(|plan| plan.staging_dir(opts.staging_dir.clone()))
    }

    fn assemble(
        location: SnapshotLocation,
        manifest: Manifest,
        artefacts: RoutingArtefacts,
        settings: Settings,
    ) -> Result<BuildPlan> {
        let router = Arc::new(Router::new(&manifest, artefacts.clone())?);
        Ok(BuildPlan {
            location,
            manifest,
            artefacts,
            router,
            settings,
            staging_dir: None,
        })
    }

    /// Where tasks stage shards before upload (default: the system's
    /// temporary folder). Not part of [`to_bytes`](Self::to_bytes): each
    /// machine chooses its own.
    pub fn staging_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.staging_dir = dir;
        self
    }

    /// The plan as bytes, to ship to tasks: the manifest image the build
    /// will publish (without shards), the routing artefacts as `.npy`, and
    /// the writer's settings. Holds no credentials.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let staging = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
        let image = super::manifest::write_image(&self.manifest, &staging.path().join("plan"))?;
        let settings = serde_json::to_vec(&self.settings).map_err(|e| Error::Internal {
            what: "encoding the build plan's settings".into(),
            source: Some(Box::new(e)),
        })?;
        let npy = |m: &Option<Matrix>| m.as_ref().map(Matrix::to_npy).unwrap_or_default();
        let mut out = PLAN_MAGIC.to_vec();
        for part in [
            settings,
            image,
            npy(&self.artefacts.centroids),
            npy(&self.artefacts.hyperplanes),
        ] {
            out.extend_from_slice(&(part.len() as u64).to_le_bytes());
            out.extend_from_slice(&part);
        }
        Ok(out)
    }

    /// The plan [`to_bytes`](Self::to_bytes) wrote, on the store its
    /// manifest names, opened with `opts` (credentials, endpoint).
    pub fn from_bytes(bytes: &[u8], opts: &StoreOptions) -> Result<BuildPlan> {
        let parts = PlanParts::parse(bytes)?;
        let location = SnapshotLocation::open(&parts.manifest.build.s3_prefix, opts)?;
        parts.into_plan(location)
    }

    /// [`from_bytes`](Self::from_bytes) on an already open location (any
    /// `object_store` store, see [`SnapshotLocation::from_store`]); it must
    /// be the plan's prefix.
    pub fn from_bytes_at(bytes: &[u8], location: SnapshotLocation) -> Result<BuildPlan> {
        let parts = PlanParts::parse(bytes)?;
        if parts.manifest.build.s3_prefix != location.url() {
            return Err(plan_error(format!(
                "the plan is for {}, not {}",
                parts.manifest.build.s3_prefix,
                location.url()
            )));
        }
        parts.into_plan(location)
    }

    /// The run id, naming every object of this build.
    pub fn run_id(&self) -> &str {
        &self.manifest.build.run_id
    }

    /// The number of shards.
    pub fn num_dbs(&self) -> u32 {
        self.manifest.build.num_dbs
    }

    /// The vectors' dimension.
    pub fn dim(&self) -> usize {
        self.manifest.vector.dim
    }

    /// The snapshot prefix.
    pub fn prefix(&self) -> &str {
        self.location.url()
    }

    /// The routing artefacts (centroids or hyperplanes) every task routes
    /// with.
    pub fn artefacts(&self) -> &RoutingArtefacts {
        &self.artefacts
    }

    /// The router every task routes with (and every reader will build).
    pub(super) fn router(&self) -> &Arc<Router> {
        &self.router
    }

    pub(super) fn layout(&self) -> ShardLayout {
        ShardLayout {
            backend: self.settings.backend,
            dim: self.dim(),
            metric: self.manifest.vector.metric,
            lance_index_min_rows: self.settings.lance_index_min_rows,
        }
    }

    /// The shard of each record (in parallel), checked as the writer
    /// checks them: dimension, finite values, a `shard_id` for EXPLICIT, a
    /// routing context for CEL. `input` names the records in errors.
    pub fn route(&self, input: &str, records: &[Record]) -> Result<Vec<ShardId>> {
        records
            .par_iter()
            .enumerate()
            .map(|(i, r)| route_record(&self.router, input, i as u64, r))
            .collect()
    }

    /// Writes shard `shard` from all of its `records` (each must route to
    /// it), uploads it under the next free attempt folder and returns its
    /// entry. On an upload failure the attempt's objects are removed.
    pub async fn write_shard(&self, shard: ShardId, records: Vec<Record>) -> Result<ShardEntry> {
        if shard.0 >= self.num_dbs() {
            return Err(Error::ShardEntry {
                shard,
                reason: format!("the build has {} shards", self.num_dbs()),
            });
        }
        if records.is_empty() {
            return Err(Error::ShardEntry {
                shard,
                reason: "no records: empty shards are not written".into(),
            });
        }
        let started = Instant::now();
        // The staging folder lives until the upload is done.
        let staging = self.staging()?;
        let written = {
            let (router, layout) = (self.router.clone(), self.layout());
            let dir = staging.path().join(format!("shard_{:05}", shard.0));
            let rt = tokio::runtime::Handle::current();
            tokio::task::spawn_blocking(move || {
                let input = format!("shard {shard}");
                for (i, r) in records.iter().enumerate() {
                    let routed = route_record(&router, &input, i as u64, r)?;
                    if routed != shard {
                        return Err(Error::input(
                            &input,
                            Some(i as u64),
                            format!("record {:?} routes to shard {routed}", r.id),
                        ));
                    }
                }
                let mut w = shard::writer(&layout, shard, &dir, &rt)?;
                w.add(&records.iter().collect::<Vec<_>>())?;
                w.finish()
            })
            .await
            .map_err(|e| Error::task("shard writing", e))??
        };
        let write_ms = started.elapsed().as_millis() as u64;
        let attempt = self.next_attempt(shard).await?;
        let dir = shard_dir(self.run_id(), shard, attempt);
        if let Err(e) = self.upload_shard(&dir, &written).await {
            self.remove_under(&dir).await;
            return Err(e);
        }
        Ok(ShardEntry {
            db_id: shard,
            attempt,
            rows: written.rows,
            bytes: written.bytes,
            write_ms,
        })
    }

    /// A staging folder for one task, removed when dropped.
    pub(super) fn staging(&self) -> Result<tempfile::TempDir> {
        let dir = self.staging_dir.clone().unwrap_or_else(std::env::temp_dir);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        tempfile::Builder::new()
            .prefix("shardvec-build-")
            .tempdir_in(&dir)
            .map_err(|e| Error::io(dir, e))
    }

    /// One past the highest attempt of `shard` in the store (0 for none).
    async fn next_attempt(&self, shard: ShardId) -> Result<u32> {
        let taken = self
            .location
            .list(&shard_attempts_dir(self.run_id(), shard))
            .await?;
        Ok(taken
            .iter()
            .filter_map(|(key, _)| shard_attempt_of(self.run_id(), key))
            .map(|(_, attempt)| attempt + 1)
            .max()
            .unwrap_or(0))
    }

    /// Uploads one written shard's files under `dir`.
    async fn upload_shard(&self, dir: &str, written: &WrittenShard) -> Result<()> {
        self.upload_files(shard_files(dir, written).collect(), |_| {})
            .await
    }

    /// Uploads files (key, local path, size), `upload_concurrency` at a
    /// time, calling `done` with each finished file's size.
    pub(super) async fn upload_files(
        &self,
        files: Vec<(String, PathBuf, u64)>,
        done: impl Fn(u64),
    ) -> Result<()> {
        let store = self.location.store().clone();
        futures::stream::iter(files.iter().map(|(key, path, size)| {
            let (store, done) = (&store, &done);
            async move {
                put_file(store, &self.location, key, path).await?;
                done(*size);
                Ok::<_, Error>(())
            }
        }))
        .buffer_unordered(self.settings.upload_concurrency)
        .try_collect::<Vec<()>>()
        .await
        .map(|_| ())
    }

    /// Publishes the snapshot of `entries` (one per non-empty shard): checks
    /// them against the store, uploads the routing artefacts, writes the
    /// manifest, then `_CURRENT`. On failure before `_CURRENT` names the
    /// manifest, this run's objects are removed (best effort) and
    /// `_CURRENT` is untouched; a failure in checking the entries removes
    /// nothing (write the missing shards and publish again).
    pub async fn publish(&self, entries: Vec<ShardEntry>) -> Result<Published> {
        // One listing of the run's shards serves the check and the clean-up.
        let stored = self.shard_objects().await?;
        let entries = self.check_entries(entries, &stored)?;
        self.remove_unnamed_attempts(&entries, &stored).await;
        let published = self.publish_checked(&entries).await;
        match published {
            Ok(p) => Ok(p),
            Err(f) if f.maybe_live => Err(f.error),
            Err(f) => {
                self.abort().await;
                if let Some(key) = f.manifest_key {
                    // The orphan manifest, which `history`/`rollback` would offer.
                    self.delete(&key, "the manifest of a failed publish").await;
                }
                Err(f.error)
            }
        }
    }

    /// Removes, best effort, every object of this run: for a driver whose
    /// tasks failed.
    pub async fn abort(&self) {
        for dir in run_dirs(self.run_id()) {
            self.remove_under(&dir).await;
        }
    }

    async fn remove_under(&self, dir: &str) {
        if let Ok(objects) = self.location.list(dir).await {
            for (key, _) in objects {
                self.delete(&key, "an object of a failed build").await;
            }
        }
    }

    /// Deletes `key`, best effort: a failure is logged as `what`.
    async fn delete(&self, key: &str, what: &str) {
        if let Err(e) = self.location.store().delete(&self.location.path(key)).await {
            tracing::warn!(key, error = %e, "cannot remove {what}");
        }
    }

    /// Entries sorted by shard: in range, one per shard, and each
    /// attempt's objects in the store adding up to the entry's bytes.
    fn check_entries(
        &self,
        mut entries: Vec<ShardEntry>,
        objects: &[ShardObject],
    ) -> Result<Vec<ShardEntry>> {
        if entries.is_empty() {
            return Err(Error::input("shard entries", None, "no records"));
        }
        entries.sort_by_key(|e| e.db_id);
        let mut stored: BTreeMap<(ShardId, u32), u64> = BTreeMap::new();
        for o in objects {
            *stored.entry(o.attempt).or_insert(0) += o.size;
        }
        let mut seen = BTreeSet::new();
        for e in &entries {
            let fail = |reason: String| Error::ShardEntry {
                shard: e.db_id,
                reason,
            };
            if e.db_id.0 >= self.num_dbs() {
                return Err(fail(format!("the build has {} shards", self.num_dbs())));
            }
            if !seen.insert(e.db_id) {
                return Err(fail("two entries name this shard".into()));
            }
            match stored.get(&(e.db_id, e.attempt)) {
                Some(&bytes) if bytes == e.bytes => {}
                Some(&bytes) => {
                    return Err(fail(format!(
                        "attempt {} holds {bytes} bytes in the store, the entry says {} \
                         (two attempts wrote the same folder?)",
                        e.attempt, e.bytes
                    )))
                }
                None => {
                    return Err(fail(format!(
                        "attempt {} has no objects under {}",
                        e.attempt,
                        self.location
                            .display_url(&shard_dir(self.run_id(), e.db_id, e.attempt))
                    )))
                }
            }
        }
        Ok(entries)
    }

    /// This run's shard objects: one listing of the run's shards folder.
    async fn shard_objects(&self) -> Result<Vec<ShardObject>> {
        let listed = self.location.list(&run_dirs(self.run_id())[0]).await?;
        Ok(listed
            .into_iter()
            .filter_map(|(key, size)| {
                let attempt = shard_attempt_of(self.run_id(), &key)?;
                Some(ShardObject { key, attempt, size })
            })
            .collect())
    }

    /// Removes the attempts of this run that no entry names (failed or
    /// retried tasks), best effort.
    async fn remove_unnamed_attempts(&self, entries: &[ShardEntry], objects: &[ShardObject]) {
        let named: BTreeSet<(ShardId, u32)> =
            entries.iter().map(|e| (e.db_id, e.attempt)).collect();
        for o in objects.iter().filter(|o| !named.contains(&o.attempt)) {
            self.delete(&o.key, "an unpublished attempt").await;
        }
    }

    /// The artefacts, the manifest, then `_CURRENT`.
    async fn publish_checked(
        &self,
        entries: &[ShardEntry],
    ) -> std::result::Result<Published, PublishFailure> {
        if let Some(c) = &self.artefacts.centroids {
            put_bytes(&self.location, &self.artefact(CENTROIDS_FILE), c.to_npy()).await?;
        }
        if let Some(h) = &self.artefacts.hyperplanes {
            put_bytes(&self.location, &self.artefact(HYPERPLANES_FILE), h.to_npy()).await?;
        }
        let mut manifest = self.manifest.clone();
        let total: u64 = entries.iter().map(|e| e.rows).sum();
        manifest.vector.total_vectors = Some(total);
        manifest.shards = entries
            .iter()
            .map(|e| ShardMeta {
                db_id: e.db_id,
                db_url: Some(self.location.display_url(&shard_dir(
                    self.run_id(),
                    e.db_id,
                    e.attempt,
                ))),
                attempt: i64::from(e.attempt),
                row_count: e.rows,
                db_bytes: e.bytes,
                min_key: None,
                max_key: None,
                checkpoint_id: Some(hex(&rand::random::<[u8; 16]>())),
                writer_info: ShardMeta::reference_writer_info(i64::from(e.attempt), e.write_ms),
            })
            .collect();
        let replace = if self.settings.force {
            Replace::Any
        } else {
            Replace::OlderOnly
        };
        let staging = self.staging()?;
        let manifest_url = publish(
            &self.location,
            &manifest,
            self.artefacts.clone(),
            staging.path(),
            replace,
        )
        .await?;
        Ok(Published {
            manifest_url,
            total_vectors: total,
        })
    }

    fn artefact(&self, file: &str) -> String {
        artefact_key(self.run_id(), file)
    }
}

/// The files of a written shard as (key under `dir`, local path, size).
pub(super) fn shard_files<'a>(
    dir: &'a str,
    written: &'a WrittenShard,
) -> impl Iterator<Item = (String, PathBuf, u64)> + 'a {
    written
        .files
        .iter()
        .map(move |(rel, path, size)| (format!("{dir}/{rel}"), path.clone(), *size))
}

/// A chosen run id must be new: never write over (and on failure clean
/// up) another run's objects.
pub(super) async fn check_new_run(location: &SnapshotLocation, run_id: &str) -> Result<()> {
    for dir in run_dirs(run_id) {
        if !location.list(&dir).await?.is_empty() {
            return Err(Error::RunExists {
                run_id: run_id.to_string(),
                prefix: location.url().to_string(),
            });
        }
    }
    Ok(())
}

/// The checks of the options every build makes before reading its input.
pub(super) fn validate(opts: &WriterOptions) -> Result<()> {
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
    Ok(())
}

/// The manifest a build publishes, before its shards are known.
fn manifest_template(
    location: &SnapshotLocation,
    run_id: &str,
    dim: usize,
    opts: &WriterOptions,
    artefacts: &RoutingArtefacts,
) -> Manifest {
    let vector = VectorMeta {
        dim,
        metric: opts.metric,
        strategy: opts.strategy.strategy(),
        num_probes: opts.num_probes.max(1),
        centroids_ref: artefacts
            .centroids
            .as_ref()
            .map(|_| location.display_url(&artefact_key(run_id, CENTROIDS_FILE))),
        hyperplanes_ref: artefacts
            .hyperplanes
            .as_ref()
            .map(|_| location.display_url(&artefact_key(run_id, HYPERPLANES_FILE))),
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
    Manifest {
        build: BuildMeta::for_vectors(
            run_id.to_string(),
            timestamp(&now()),
            opts.num_dbs,
            location.url().to_string(),
        ),
        shards: Vec::new(),
        vector,
        user_fields: opts.user_fields.clone(),
    }
}

fn plan_error(reason: impl Into<String>) -> Error {
    Error::Plan {
        reason: reason.into(),
    }
}

/// An object of the run's shards folder.
struct ShardObject {
    key: String,
    /// Its shard and attempt.
    attempt: (ShardId, u32),
    size: u64,
}

/// The parts of [`BuildPlan::to_bytes`].
struct PlanParts {
    settings: Settings,
    manifest: Manifest,
    artefacts: RoutingArtefacts,
}

impl PlanParts {
    fn parse(bytes: &[u8]) -> Result<PlanParts> {
        let mut rest = bytes
            .strip_prefix(PLAN_MAGIC)
            .ok_or_else(|| plan_error("not a shardvec build plan (or another version)"))?;
        let mut next = |what: &str| -> Result<&[u8]> {
            let (len, tail) = rest
                .split_first_chunk::<8>()
                .ok_or_else(|| plan_error(format!("truncated before its {what}")))?;
            let len = usize::try_from(u64::from_le_bytes(*len))
                .map_err(|_| plan_error(format!("its {what} is too large")))?;
            if tail.len() < len {
                return Err(plan_error(format!("truncated in its {what}")));
            }
            let (part, tail) = tail.split_at(len);
            rest = tail;
            Ok(part)
        };
        let settings: Settings = serde_json::from_slice(next("settings")?)
            .map_err(|e| plan_error(format!("settings: {e}")))?;
        let manifest =
            Manifest::parse(next("manifest")?).map_err(|e| plan_error(format!("manifest: {e}")))?;
        let npy = |bytes: &[u8], name: &str| -> Result<Option<Matrix>> {
            if bytes.is_empty() {
                return Ok(None);
            }
            Matrix::from_npy(bytes, name)
                .map(Some)
                .map_err(|e| plan_error(format!("{name}: {e}")))
        };
        let centroids = npy(next("centroids")?, CENTROIDS_FILE)?;
        let hyperplanes = npy(next("hyperplanes")?, HYPERPLANES_FILE)?;
        if !rest.is_empty() {
            return Err(plan_error("trailing bytes"));
        }
        Ok(PlanParts {
            settings,
            manifest,
            artefacts: RoutingArtefacts {
                centroids,
                hyperplanes,
            },
        })
    }

    fn into_plan(self, location: SnapshotLocation) -> Result<BuildPlan> {
        BuildPlan::assemble(location, self.manifest, self.artefacts, self.settings)
    }
}

/// Why a publish failed, and what of it is in the store.
pub(super) struct PublishFailure {
    pub(super) error: Error,
    /// The manifest's key, if it was uploaded (an orphan to remove).
    pub(super) manifest_key: Option<String>,
    /// `_CURRENT` may name this run: its PUT failed and reading it back
    /// failed too. Nothing of the run may be removed then.
    pub(super) maybe_live: bool,
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
    let image = super::manifest::write_image(manifest, &staging.join(MANIFEST_FILE))?;
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
