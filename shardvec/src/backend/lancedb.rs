//! The LanceDB backend: one Lance dataset (`vector_index.lance/`) per shard,
//! opened as table `vector_index` with the `lancedb` crate.
//!
//! Default ([`LanceMode::Local`]): the dataset's objects are copied into the
//! local cache (identity: URL, `checkpoint_id` and the object list with
//! sizes) and searched there. [`LanceMode::Remote`] opens the dataset where
//! it is, without a copy: `file://` snapshots directly, every other store
//! (S3, GCS, Azure, memory) through the reader's own `object_store` client,
//! handed to Lance by [`super::lance_store`] (lancedb is linked without its
//! cloud features).
//!
//! A search is `nearest_to(query).limit(top_k)` with LanceDB's default query
//! parameters — the reference's query — so indexed shards return the same
//! (approximate, PQ-quantised) answers. The score is `_distance`; ids come
//! back as strings, as the dataset stores them.
//!
//! **Filtered searches** do not go through Lance's index: the reference's
//! LanceDB shards carry a PQ index with one sub-vector whose recall is
//! 0.28–0.49 even unfiltered (measured on the peer fixtures), and a
//! prefilter cannot make an approximate index exact. The first filtered
//! search of a shard reads its ids, vectors and payloads once into memory
//! ([`crate::flat::FlatVectors`], [`crate::payload_index`]), and every
//! filtered search is then an exact scan of the matching rows with the same
//! SIMD kernels as sqlite-vec shards: recall 1.0 against the filtered brute
//! force. Its scores are the snapshot's metric in Lance's conventions
//! ([`crate::flat::lance_score`]: `1 - cos`, squared L2, `1 - dot`), whatever
//! the shard's index.
//!
//! [`LanceSearch::Exact`] sends unfiltered searches down the same exact
//! in-memory path: recall 1.0 instead of the index's approximation, at the
//! memory of the shard's vectors (BENCHMARKS.md compares both).
//!
//! LanceDB's default distance is the index's metric on an indexed shard but
//! L2 on a shard without an index (small shards), and the reference reader
//! reports exactly that (see the `lancedb_cluster_dot` fixture, shard 3).
//! [`LanceDistance::Reference`] (default) reproduces it;
//! [`LanceDistance::Metric`] asks for the snapshot's metric on every shard,
//! which makes scores of indexed and un-indexed shards comparable.

use std::sync::Arc;

use shardvec_core::filter::ColumnsBuilder;
use tokio::sync::OnceCell;

use futures::future::BoxFuture;
use futures::TryStreamExt;
use lancedb::arrow::arrow_array::{
    Array, FixedSizeListArray, Float32Array, RecordBatch, StringArray,
};
use lancedb::query::{ExecutableQuery, QueryBase};
use shardvec_core::{Metric, SearchResult, VectorId};

use super::{
    lance_store, BackendKind, OpenFailure, ShardBackend, ShardQuery, ShardSearcher, ShardSource,
    StoredVector,
};
use crate::cache::CachedVersion;
use crate::error::Result;
use crate::flat::{FlatVectors, Scores};
use crate::payload_index::PayloadIndex;

/// The dataset folder of a shard.
pub const DATASET_DIR: &str = shardvec_core::layout::LANCE_DATASET_DIR;
/// The table name.
pub const TABLE: &str = shardvec_core::layout::LANCE_TABLE;

/// Where LanceDB shards are searched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LanceMode {
    /// Copy the dataset into the local cache and search the copy (default).
    #[default]
    Local,
    /// Search the dataset in place, reading only the parts of it a search
    /// needs (any store the reader opens).
    Remote,
}

/// Which distance LanceDB shards are searched with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LanceDistance {
    /// LanceDB's default, as the reference reader: the index's metric, or L2
    /// on shards without an index (default).
    #[default]
    Reference,
    /// The snapshot's metric on every shard.
    Metric,
}

/// How unfiltered searches find their top-k.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LanceSearch {
    /// Lance's own vector index, as the reference (default): approximate on
    /// indexed shards (the reference's PQ indexes reach recall 0.28–0.49 on
    /// the peer fixtures), scored as [`LanceDistance`] says.
    #[default]
    Index,
    /// An exact scan of the shard, read once into memory on first use (the
    /// filtered path's SIMD kernels): recall 1.0, scores of the snapshot's
    /// metric in Lance's conventions (`1 - cos`, squared L2, `1 - dot`)
    /// whatever the shard's index. Memory: the shard's vectors, ids and
    /// payloads.
    Exact,
}

/// Opens LanceDB shards.
#[derive(Debug, Clone, Default)]
pub struct LanceDbBackend {
    mode: LanceMode,
    distance: LanceDistance,
    search: LanceSearch,
}

impl LanceDbBackend {
    /// A backend searching in `mode` with `distance`, through the index
    /// ([`LanceSearch::Index`]).
    pub fn new(mode: LanceMode, distance: LanceDistance) -> Self {
        LanceDbBackend {
            mode,
            distance,
            search: LanceSearch::default(),
        }
    }

    /// How unfiltered searches find their top-k (default
    /// [`LanceSearch::Index`]).
    pub fn search(mut self, search: LanceSearch) -> Self {
        self.search = search;
        self
    }
}

impl ShardBackend for LanceDbBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Lancedb
    }

    fn open<'a>(
        &'a self,
        source: &'a ShardSource,
    ) -> BoxFuture<'a, Result<Arc<dyn ShardSearcher>>> {
        Box::pin(async move {
            match self.mode {
                LanceMode::Local => self.open_local(source).await,
                LanceMode::Remote => {
                    let (uri, session) = remote_uri(source)?;
                    let table = open_table(source, &uri, session).await?;
                    Ok(self.shard(source, table, None))
                }
            }
        })
    }
}

impl LanceDbBackend {
    /// Copies the dataset into the local cache and opens the copy. A copy
    /// that fails to open for any reason but the machine's resources (file
    /// descriptors, memory, disk) is damaged — Lance reports a bad manifest
    /// or a missing file in many shapes — and is downloaded again once, as
    /// is one whose row count differs from the manifest's.
    async fn open_local(&self, source: &ShardSource) -> Result<Arc<dyn ShardSearcher>> {
        let dataset_key = source.object_key(DATASET_DIR);
        let mut files: Vec<(String, u64)> = source
            .location
            .list(&dataset_key)
            .await?
            .into_iter()
            .filter_map(|(k, size)| Some((source.name_in_shard(&k)?.to_string(), size)))
            .collect();
        if files.is_empty() {
            return Err(source.error(format!("no objects under {DATASET_DIR}/")));
        }
        files.sort();
        source
            .open_cached(files, |version| async move {
                let opened = async {
                    let uri = path_uri(source, version.path())?;
                    // Lance can panic on a damaged manifest (an arithmetic
                    // overflow decoding its footer): a panic here is damage.
                    let open = std::panic::AssertUnwindSafe(open_table(source, &uri, None));
                    let table =
                        futures::FutureExt::catch_unwind(open)
                            .await
                            .map_err(|panic| {
                                let what = panic
                                    .downcast_ref::<&str>()
                                    .map(|s| s.to_string())
                                    .or_else(|| panic.downcast_ref::<String>().cloned())
                                    .unwrap_or_default();
                                source.damaged(format!("LanceDB panicked opening the copy: {what}"))
                            })??;
                    let rows = table
                        .count_rows(None)
                        .await
                        .map_err(|e| source.failed("cannot count rows", e))?;
                    if rows as u64 != source.meta.row_count {
                        return Err(source.damaged(format!(
                            "the copy has {rows} rows, the manifest records {}",
                            source.meta.row_count
                        )));
                    }
                    Ok(table)
                };
                match opened.await {
                    Ok(table) => Ok(self.shard(source, table, Some(version))),
                    Err(e) if super::caused_by(&e, super::is_resource_exhaustion) => {
                        Err(OpenFailure::Failed(e))
                    }
                    Err(e) => Err(OpenFailure::Damaged(e)),
                }
            })
            .await
    }

    fn shard(
        &self,
        source: &ShardSource,
        table: lancedb::Table,
        version: Option<Arc<CachedVersion>>,
    ) -> Arc<dyn ShardSearcher> {
        Arc::new(LanceShard {
            table,
            source: source.clone(),
            distance: self.distance,
            search: self.search,
            resident: OnceCell::new(),
            _version: version,
        })
    }
}

/// Where a [`LanceMode::Remote`] shard is opened: its URI, and the session
/// holding the reader's store for stores Lance cannot open itself.
fn remote_uri(source: &ShardSource) -> Result<(String, Option<Arc<lancedb::Session>>)> {
    let local_dir = url::Url::parse(source.location.url())
        .ok()
        .filter(|u| u.scheme() == "file")
        .and_then(|u| u.to_file_path().ok());
    match local_dir {
        // Lance's own file-system paths are the fastest. Built from the
        // checked key's segments, never by parsing a URL again (no
        // percent-decoding).
        Some(mut dir) => {
            for seg in source.key.split('/').filter(|s| !s.is_empty()) {
                dir.push(seg);
            }
            Ok((path_uri(source, &dir)?, None))
        }
        None => {
            let (s, uri) = lance_store::session_for(
                source.location.store().clone(),
                &source.location.path(&source.key),
            );
            Ok((uri, Some(s)))
        }
    }
}

/// Opens table [`TABLE`] of the dataset at `uri`.
async fn open_table(
    source: &ShardSource,
    uri: &str,
    session: Option<Arc<lancedb::Session>>,
) -> Result<lancedb::Table> {
    let mut connect = lancedb::connect(uri);
    if let Some(s) = session {
        connect = connect.session(s);
    }
    let conn = connect
        .execute()
        .await
        .map_err(|e| source.failed(format!("cannot open LanceDB at {uri}"), e))?;
    conn.open_table(TABLE)
        .execute()
        .await
        .map_err(|e| source.failed(format!("cannot open table `{TABLE}`"), e))
}

/// LanceDB's name for a metric.
pub(crate) fn distance_type(metric: Metric) -> lancedb::DistanceType {
    match metric {
        Metric::L2 => lancedb::DistanceType::L2,
        Metric::Cosine => lancedb::DistanceType::Cosine,
        Metric::DotProduct => lancedb::DistanceType::Dot,
    }
}

fn path_uri(source: &ShardSource, dir: &std::path::Path) -> Result<String> {
    dir.to_str()
        .map(str::to_string)
        .ok_or_else(|| source.error("cache path is not UTF-8"))
}

/// One open LanceDB shard.
#[derive(Debug)]
pub struct LanceShard {
    table: lancedb::Table,
    source: ShardSource,
    distance: LanceDistance,
    search: LanceSearch,
    /// The shard in memory, loaded by the first exact or filtered search or
    /// scan.
    resident: OnceCell<Arc<Resident>>,
    /// The cache version read ([`LanceMode::Local`]), kept in use while
    /// the shard is open.
    _version: Option<Arc<CachedVersion>>,
}

/// A LanceDB shard in memory, for exact filtered searches.
#[derive(Debug)]
struct Resident {
    vectors: FlatVectors,
    ids: Vec<VectorId>,
    payloads: Vec<Option<String>>,
    index: PayloadIndex,
}

impl LanceShard {
    /// Runs a query and collects its batches; errors say `what` failed.
    async fn run(&self, q: &impl ExecutableQuery, what: &str) -> Result<Vec<RecordBatch>> {
        let fail = |e: lancedb::Error| self.source.failed(format!("{what} failed"), e);
        q.execute()
            .await
            .map_err(fail)?
            .try_collect()
            .await
            .map_err(fail)
    }

    /// Column `name` of `batch` as `T`: `None` if absent, an error if of
    /// another type.
    fn column<'b, T: 'static>(
        &self,
        batch: &'b RecordBatch,
        name: &str,
        kind: &str,
    ) -> Result<Option<&'b T>> {
        batch
            .column_by_name(name)
            .map(|c| {
                c.as_any().downcast_ref::<T>().ok_or_else(|| {
                    self.source
                        .error(format!("`{name}` is not a {kind} column"))
                })
            })
            .transpose()
    }

    /// [`Self::column`], which must be present.
    fn required<'b, T: 'static>(
        &self,
        batch: &'b RecordBatch,
        name: &str,
        kind: &str,
    ) -> Result<&'b T> {
        self.column(batch, name, kind)?
            .ok_or_else(|| self.source.error(format!("result has no `{name}` column")))
    }

    fn decode(&self, batch: &RecordBatch, out: &mut Vec<SearchResult>) -> Result<()> {
        let ids: &StringArray = self.required(batch, "id", "utf8")?;
        let dist: &Float32Array = self.required(batch, "_distance", "float32")?;
        let payloads: Option<&StringArray> = self.column(batch, "payload", "utf8")?;
        for i in 0..batch.num_rows() {
            if ids.is_null(i) {
                return Err(self.source.error("a result has a null id"));
            }
            let id = VectorId::Str(ids.value(i).to_string());
            let payload = payloads
                .filter(|p| !p.is_null(i))
                .map(|p| self.source.payload(&id, p.value(i)))
                .transpose()?;
            out.push(SearchResult {
                id,
                score: dist.value(i),
                payload,
                shard_id: None,
            });
        }
        Ok(())
    }
}

impl LanceShard {
    /// Reads every id, vector and payload of the shard.
    async fn load(&self) -> Result<Resident> {
        let has_payload = self
            .table
            .schema()
            .await
            .map_err(|e| self.source.failed("cannot read the schema", e))?
            .column_with_name("payload")
            .is_some();
        let mut cols = vec!["id", "vector"];
        if has_payload {
            cols.push("payload");
        }
        let q = self
            .table
            .query()
            .select(lancedb::query::Select::columns(&cols));
        let batches = self.run(&q, "filter load").await?;
        let mut vectors =
            FlatVectors::new(self.source.dim, self.source.metric).with_scores(Scores::Lance);
        let mut ids = Vec::new();
        let mut payloads = Vec::new();
        let mut columns = ColumnsBuilder::new();
        for b in &batches {
            let id_col: &StringArray = self.required(b, "id", "utf8")?;
            let vec_col: &FixedSizeListArray = self.required(b, "vector", "fixed-size list")?;
            let payload_col: Option<&StringArray> = self.column(b, "payload", "utf8")?;
            for i in 0..b.num_rows() {
                if id_col.is_null(i) {
                    return Err(self.source.error("a row has a null id"));
                }
                let v = vec_col.value(i);
                let v = v
                    .as_any()
                    .downcast_ref::<Float32Array>()
                    .ok_or_else(|| self.source.error("`vector` items are not float32"))?;
                if !vectors.push(v.values()) {
                    return Err(self.source.error(format!(
                        "vector of {} has dimension {}, not {}",
                        id_col.value(i),
                        v.len(),
                        self.source.dim
                    )));
                }
                let id = VectorId::Str(id_col.value(i).to_string());
                let text = payload_col
                    .filter(|p| !p.is_null(i))
                    .map(|p| p.value(i).to_string());
                let json = text
                    .as_deref()
                    .map(|t| self.source.payload(&id, t))
                    .transpose()?;
                columns.push(&id, json.as_ref());
                ids.push(id);
                payloads.push(text);
            }
        }
        let index = PayloadIndex::new(columns.finish());
        tracing::debug!(
            shard = self.source.id().0,
            rows = ids.len(),
            bytes = vectors.heap_bytes() + index.heap_bytes(),
            "LanceDB shard loaded for filtered search"
        );
        Ok(Resident {
            vectors,
            ids,
            payloads,
            index,
        })
    }

    /// The shard in memory, loaded on first use.
    async fn resident(&self) -> Result<&Arc<Resident>> {
        self.resident
            .get_or_try_init(|| async { self.load().await.map(Arc::new) })
            .await
    }

    /// The exact top-`top_k` among the rows matching `filter` (every row
    /// without one), from the shard in memory.
    async fn search_resident(
        &self,
        query: &[f32],
        top_k: usize,
        filter: Option<&shardvec_core::Filter>,
    ) -> Result<Vec<SearchResult>> {
        let resident = self.resident().await?;
        // The scan is CPU work: off the async workers, as sqlite-vec's.
        let (r, q, f) = (resident.clone(), query.to_vec(), filter.cloned());
        let best = tokio::task::spawn_blocking(move || match f {
            Some(f) => {
                let rows = r.index.rows(&f);
                r.vectors.top_k_in(&q, top_k, Some(&rows))
            }
            None => r.vectors.top_k_in(&q, top_k, None),
        })
        .await
        .map_err(|e| crate::error::Error::task("shard search", e))?;
        best.into_iter()
            .map(|(score, row)| {
                let row = row as usize;
                let id = resident
                    .ids
                    .get(row)
                    .ok_or_else(|| self.source.error("row out of range"))?;
                let payload = resident
                    .payloads
                    .get(row)
                    .and_then(Option::as_deref)
                    .map(|t| self.source.payload(id, t))
                    .transpose()?;
                Ok(SearchResult {
                    id: id.clone(),
                    score,
                    payload,
                    shard_id: None,
                })
            })
            .collect()
    }
}

impl ShardSearcher for LanceShard {
    fn scan(&self) -> BoxFuture<'_, Result<Vec<StoredVector>>> {
        // The rows the filtered path holds (loaded once, kept for filters).
        Box::pin(async move {
            let r = self.resident().await?;
            Ok(r.ids
                .iter()
                .enumerate()
                .filter_map(|(i, id)| Some((id.clone(), r.vectors.row_to_vec(i)?)))
                .collect())
        })
    }

    fn resident_bytes(&self) -> usize {
        // Only the in-memory copy (loaded by the first exact or filtered
        // search); Lance's own caches are not counted.
        self.resident.get().map_or(0, |r| {
            r.vectors.heap_bytes()
                + r.index.heap_bytes()
                + r.ids.capacity() * std::mem::size_of::<VectorId>()
                + r.payloads
                    .iter()
                    .map(|p| p.as_ref().map_or(0, String::capacity))
                    .sum::<usize>()
        })
    }

    fn search(&self, query: ShardQuery) -> BoxFuture<'_, Result<Vec<SearchResult>>> {
        Box::pin(async move {
            let top_k = query.top_k;
            let filter = query.effective_filter();
            if filter.is_some() || self.search == LanceSearch::Exact {
                return self.search_resident(&query.vector, top_k, filter).await;
            }
            let query = query.vector;
            let fail = |e: lancedb::Error| self.source.failed("search failed", e);
            let mut q = self
                .table
                .query()
                .nearest_to(query.as_ref())
                .map_err(fail)?;
            if self.distance == LanceDistance::Metric {
                q = q.distance_type(distance_type(self.source.metric));
            }
            let batches = self.run(&q.limit(top_k), "search").await?;
            let mut out = Vec::with_capacity(top_k);
            for b in &batches {
                self.decode(b, &mut out)?;
            }
            // LanceDB returns rows by distance; keep that order stable.
            out.sort_by(|a, b| shardvec_core::distance::total_order(a.score, b.score));
            Ok(out)
        })
    }
}
