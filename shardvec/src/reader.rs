//! The async reader: [`AsyncShardedVectorReader`].
//!
//! ## Design
//!
//! Everything a search needs from one publish — manifest, its ref, the
//! [`Router`] and the cache of open shard handles — lives in one immutable
//! `State` behind an [`ArcSwap`]. A search loads the current `Arc<State>`
//! once and uses it to the end, so it never mixes two manifests; `refresh`
//! builds a complete new state and swaps the pointer atomically. Shard
//! handles are `Arc`s: when a refresh retires a state, or the LRU evicts a
//! handle, the handle closes when the last search using it finishes.
//!
//! A search routes (core), drops shards absent from the manifest, searches
//! the rest concurrently (at most `max_concurrency` at once, on tokio's
//! blocking pool) and merges (core) in route order.
//!
//! ## Filters and probing until enough match
//!
//! A [`Filter`] goes to every shard searched: each returns its local top-k
//! among the rows that match, so the merge is the exact filtered top-k of
//! the routed shards. Routing ignores the filter. With
//! [`SearchOptions::min_results`], a CLUSTER or LSH search that found
//! fewer matching rows than asked in its routed shards goes on to the
//! next-nearest shards in routing order — the order `num_probes` would
//! take them in — a batch of `num_probes` shards at a time, until enough
//! rows matched, `max_probes` shards were searched, or none is left; the
//! answer's [`Probing`] says which.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use lru::LruCache;
use serde::Serialize;
use shardvec_core::snapshot::Loaded;
use shardvec_core::{
    merge, Filter, Manifest, ManifestRef, Probing, RouteOptions, Router, RoutingContext,
    SearchResult, ShardDetail, ShardId, SnapshotInfo, Strategy,
};
use tokio::sync::OnceCell;
use tracing::Instrument;

use crate::backend::{
    self, BackendKind, Backends, ShardBackend, ShardQuery, ShardSearcher, ShardSource, StoredVector,
};
use crate::cache::DownloadOptions;
use crate::error::{Error, Result};
use crate::location::{SnapshotLocation, StoreOptions};
use crate::manifest_store::{ManifestStore, ObjectManifestStore};
use crate::metrics::{Metrics, SearchEvent};
use crate::rate_limit::RateLimiter;
use crate::source;

use shardvec_core::api::MAX_RESULTS;
/// Largest `top_k` a search accepts (sqlite-vec's own KNN limit).
pub use shardvec_core::api::MAX_TOP_K;
pub use shardvec_core::api::{HealthStatus, ShardHits};

/// Options of a reader. Defaults: 3 fallback attempts, lazy shard loading,
/// no prefetch on refresh, downloads in parts ([`DownloadOptions`]),
/// unbounded shard cache, 8 concurrent shard
/// searches, no store options, the object-store manifest store, backends
/// detected per shard.
#[derive(Debug, Clone)]
pub struct ReaderOptions {
    pub(crate) max_fallback_attempts: usize,
    pub(crate) preload_shards: bool,
    pub(crate) max_cached_shards: Option<NonZeroUsize>,
    pub(crate) max_concurrency: usize,
    pub(crate) store: StoreOptions,
    pub(crate) manifest_store: Option<Arc<dyn ManifestStore>>,
    pub(crate) backend: Option<BackendKind>,
    pub(crate) backends: Backends,
    pub(crate) rate_limiter: Option<Arc<RateLimiter>>,
    pub(crate) metrics: Option<Arc<dyn Metrics>>,
    pub(crate) allow_foreign_urls: bool,
    pub(crate) prefetch_on_refresh: bool,
    pub(crate) download: DownloadOptions,
}

impl Default for ReaderOptions {
    fn default() -> Self {
        ReaderOptions {
            max_fallback_attempts: 3,
            preload_shards: false,
            max_cached_shards: None,
            max_concurrency: 8,
            store: StoreOptions::default(),
            manifest_store: None,
            backend: None,
            backends: Backends::default(),
            rate_limiter: None,
            metrics: None,
            allow_foreign_urls: false,
            prefetch_on_refresh: false,
            download: DownloadOptions::default(),
        }
    }
}

impl ReaderOptions {
    /// Default options.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many older manifests to try when the current one cannot be
    /// parsed at open (default 3; 0 disables the fallback).
    pub fn max_fallback_attempts(mut self, n: usize) -> Self {
        self.max_fallback_attempts = n;
        self
    }

    /// Read shards whose recorded URL lies outside the snapshot's prefix
    /// from that URL, with the same store options (default false: such a
    /// manifest fails with [`Error::ForeignUrl`], because a manifest must
    /// not make the reader fetch arbitrary objects). The local cache is
    /// named by shard id either way, never by a URL.
    pub fn allow_foreign_urls(mut self, yes: bool) -> Self {
        self.allow_foreign_urls = yes;
        self
    }

    /// Open every shard at open and refresh time instead of on first use.
    pub fn preload_shards(mut self, yes: bool) -> Self {
        self.preload_shards = yes;
        self
    }

    /// On refresh, open in the new snapshot every shard open in the current
    /// one (downloading what changed) *before* swapping it in (default
    /// false: shards open on first use). A refresh whose shards cannot be
    /// opened — a store missing objects, a full disk — then fails and the
    /// current snapshot stays in service, instead of searches failing
    /// after the swap. Shards unchanged by the publish are carried over
    /// either way.
    pub fn prefetch_on_refresh(mut self, yes: bool) -> Self {
        self.prefetch_on_refresh = yes;
        self
    }

    /// How shard objects are downloaded into the local cache: ranged parts,
    /// their size, how many at once, their time limit and attempts
    /// (default: [`DownloadOptions::default`]).
    pub fn download(mut self, opts: DownloadOptions) -> Self {
        self.download = opts;
        self
    }

    /// Keep at most `n` shard handles open (least recently used evicted).
    pub fn max_cached_shards(mut self, n: NonZeroUsize) -> Self {
        self.max_cached_shards = Some(n);
        self
    }

    /// Shard searches running at once for one search (default 8; min 1).
    pub fn max_concurrency(mut self, n: usize) -> Self {
        self.max_concurrency = n.max(1);
        self
    }

    /// Object-store options (endpoint, credentials, …).
    pub fn store_options(mut self, opts: StoreOptions) -> Self {
        self.store = opts;
        self
    }

    /// Reads `_CURRENT` and manifests from a custom store.
    pub fn manifest_store(mut self, store: Arc<dyn ManifestStore>) -> Self {
        self.manifest_store = Some(store);
        self
    }

    /// Limits searches to `per_second` on average with bursts of `burst`
    /// (default: no limit); searches over the limit wait.
    pub fn rate_limit(mut self, per_second: f64, burst: u32) -> Result<Self> {
        self.rate_limiter = Some(Arc::new(RateLimiter::new(per_second, burst)?));
        Ok(self)
    }

    /// Receives search, shard and refresh events (default: none).
    pub fn metrics(mut self, metrics: Arc<dyn Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Opens shards of `backend.kind()` with `backend` instead of the
    /// default instance: how backend options are set, e.g.
    /// `SqliteVecBackend::new(SqliteVecScan::Extension)` or
    /// `LanceDbBackend::new(LanceMode::Remote, LanceDistance::Metric)`.
    /// Default: every backend compiled in (cargo features `sqlite-vec` and
    /// `lancedb`), with its default options.
    pub fn shard_backend(mut self, backend: impl ShardBackend + 'static) -> Self {
        self.backends.insert(Arc::new(backend));
        self
    }

    /// The object-store options set.
    pub fn store(&self) -> &StoreOptions {
        &self.store
    }

    /// Opens shards with exactly these backends (default:
    /// [`Backends::default`], every backend compiled in). A shard whose
    /// backend is missing fails with [`Error::BackendNotCompiled`].
    pub fn backends(mut self, backends: Backends) -> Self {
        self.backends = backends;
        self
    }

    /// States the shards' backend instead of detecting it.
    pub fn backend(mut self, kind: BackendKind) -> Self {
        self.backend = Some(kind);
        self
    }
}

/// Per-search inputs. Defaults: the manifest's `num_probes`, routing by the
/// snapshot's strategy, no routing context, no filter, no probing past the
/// route.
#[derive(Debug, Clone, Default)]
pub struct SearchOptions {
    /// Explicit shards (override routing).
    pub shard_ids: Option<Vec<ShardId>>,
    /// Shards to probe (CLUSTER, LSH).
    pub num_probes: Option<u32>,
    /// CEL routing context.
    pub routing_context: Option<RoutingContext>,
    /// Only rows matching this filter are returned.
    pub filter: Option<Arc<Filter>>,
    /// Probe further shards until this many matching rows were found
    /// (CLUSTER, LSH; at most `top_k`).
    pub min_results: Option<usize>,
    /// The most shards `min_results` may search (default: every shard).
    pub max_probes: Option<u32>,
}

impl SearchOptions {
    /// Default options.
    pub fn new() -> Self {
        Self::default()
    }

    /// Names the shards.
    pub fn shard_ids(mut self, ids: impl Into<Vec<ShardId>>) -> Self {
        self.shard_ids = Some(ids.into());
        self
    }

    /// Sets the number of probes.
    pub fn num_probes(mut self, n: u32) -> Self {
        self.num_probes = Some(n);
        self
    }

    /// Sets the CEL routing context.
    pub fn routing_context(mut self, ctx: RoutingContext) -> Self {
        self.routing_context = Some(ctx);
        self
    }

    /// Returns only rows matching `filter` (see [`shardvec_core::filter`]):
    /// the exact top-k among them in the shards searched.
    pub fn filter(mut self, filter: Filter) -> Self {
        self.filter = Some(Arc::new(filter));
        self
    }

    /// With a CLUSTER or LSH snapshot, keeps searching the next-nearest
    /// shards, in routing order, until `n` matching rows were found (or
    /// [`max_probes`](Self::max_probes) shards were searched). `n` must be
    /// at most `top_k`. Ignored with explicit shard ids and for EXPLICIT
    /// and CEL snapshots, whose routing names the only shards that can
    /// hold a record.
    pub fn min_results(mut self, n: usize) -> Self {
        self.min_results = Some(n);
        self
    }

    /// The most shards a search with [`min_results`](Self::min_results)
    /// searches, routed ones included (default: every shard). At least
    /// the number of routed shards.
    pub fn max_probes(mut self, n: u32) -> Self {
        self.max_probes = Some(n);
        self
    }

    fn route_options(&self) -> RouteOptions<'_> {
        RouteOptions {
            num_probes: self.num_probes,
            shard_ids: self.shard_ids.as_deref(),
            routing_context: self.routing_context.as_ref(),
        }
    }

    /// Whether `min_results` applies to a search of `router`'s snapshot.
    fn probes_further(&self, router: &Router) -> bool {
        self.min_results.is_some()
            && self.shard_ids.is_none()
            && matches!(router.strategy(), Strategy::Cluster | Strategy::Lsh)
    }
}

/// The answer of a search. On the wire (JSON) it is
/// [`shardvec_core::api::SearchResponse`]: see [`SearchResponse::into_wire`].
#[derive(Debug, Clone)]
pub struct SearchResponse {
    /// Global top-k, best first.
    pub results: Vec<SearchResult>,
    /// Shards searched (routed shards present in the manifest).
    pub num_shards_queried: usize,
    /// The routed shards, in probe order.
    pub route: Vec<ShardId>,
    /// Wall time of the search.
    pub latency: Duration,
    /// The manifest the search ran against.
    pub manifest_ref: ManifestRef,
    /// With [`SearchOptions::min_results`]: how far the search probed.
    pub probing: Option<Probing>,
}

impl SearchResponse {
    /// The answer on the wire (`POST /v1/search`, `search --json`).
    pub fn into_wire(self) -> shardvec_core::api::SearchResponse {
        shardvec_core::api::SearchResponse {
            results: self.results,
            num_shards_queried: self.num_shards_queried,
            latency_ms: self.latency.as_secs_f64() * 1000.0,
            route: self.route,
            manifest_ref: self.manifest_ref.url,
            probing: self.probing,
        }
    }
}

/// Per-shard answers of [`AsyncShardedVectorReader::search_shards`]. On
/// the wire it is [`shardvec_core::api::ShardsSearchResponse`]: see
/// [`ShardSearchResponse::into_wire`].
#[derive(Debug, Clone)]
pub struct ShardSearchResponse {
    /// One entry per requested shard, in request order.
    pub shards: Vec<ShardHits>,
    /// The manifest the search ran against.
    pub manifest_ref: ManifestRef,
    /// Wall time of the search.
    pub latency: Duration,
}

impl ShardSearchResponse {
    /// The answer on the wire (`POST /v1/shards/search`).
    pub fn into_wire(self) -> shardvec_core::api::ShardsSearchResponse {
        shardvec_core::api::ShardsSearchResponse {
            shards: self.shards,
            manifest_ref: self.manifest_ref.url,
            latency_ms: self.latency.as_secs_f64() * 1000.0,
        }
    }
}

/// The raw routing files of the manifest a reader serves: what an edge
/// router needs to route exactly as the reader does.
#[derive(Debug, Clone)]
pub struct RoutingFiles {
    /// The manifest served.
    pub manifest_ref: ManifestRef,
    /// A `_CURRENT` naming that manifest (the store's own `_CURRENT` may
    /// already name a newer one).
    pub current: Bytes,
    /// The manifest's bytes (SQLite).
    pub manifest: Bytes,
    /// `centroids.npy` (CLUSTER).
    pub centroids: Option<Bytes>,
    /// `hyperplanes.npy` (LSH).
    pub hyperplanes: Option<Bytes>,
}

/// What `health` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Health {
    /// Overall status.
    pub status: HealthStatus,
    /// The manifest served (none when closed).
    pub manifest_ref: Option<ManifestRef>,
    /// Age of that manifest.
    pub manifest_age: Option<Duration>,
    /// Number of shards.
    pub num_shards: u32,
    /// Whether the reader is closed.
    pub is_closed: bool,
}

type Slot = Arc<OnceCell<Arc<dyn ShardSearcher>>>;

/// One publish, immutable once built.
struct State {
    manifest_ref: ManifestRef,
    manifest: Manifest,
    router: Router,
    files: RoutingFiles,
    handles: Mutex<LruCache<ShardId, Slot>>,
}

struct Inner {
    location: SnapshotLocation,
    local_root: PathBuf,
    options: ReaderOptions,
    manifests: Arc<dyn ManifestStore>,
    state: ArcSwap<State>,
    closed: AtomicBool,
    refresh: tokio::sync::Mutex<()>,
}

/// Searches a sharded vector snapshot from async code (tokio).
///
/// Cheap to clone; clones share state.
#[derive(Clone)]
pub struct AsyncShardedVectorReader {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AsyncShardedVectorReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncShardedVectorReader")
            .field("prefix", &self.inner.location.url())
            .field("manifest", &self.inner.state.load().manifest_ref.url)
            .finish_non_exhaustive()
    }
}

impl AsyncShardedVectorReader {
    /// Opens the snapshot at `prefix` (URL or local path), caching shards
    /// under `local_root`.
    pub async fn open(
        prefix: &str,
        local_root: impl Into<PathBuf>,
        options: ReaderOptions,
    ) -> Result<Self> {
        let location = SnapshotLocation::open(prefix, &options.store)?;
        Self::open_at(location, local_root, options).await
    }

    /// Opens a snapshot at an already built location.
    pub async fn open_at(
        location: SnapshotLocation,
        local_root: impl Into<PathBuf>,
        options: ReaderOptions,
    ) -> Result<Self> {
        let manifests = options
            .manifest_store
            .clone()
            .unwrap_or_else(|| Arc::new(ObjectManifestStore::new(location.clone())));
        let local_root = local_root.into();
        let current = manifests
            .load_current()
            .await?
            .ok_or_else(|| Error::NoCurrent(location.url().to_string()))?;
        let loaded = source::load(
            &location,
            &*manifests,
            &current.manifest_ref(),
            options.max_fallback_attempts,
        )
        .await?;
        let state = State::new(loaded, &options);
        let inner = Arc::new(Inner {
            location,
            local_root,
            options,
            manifests,
            state: ArcSwap::from_pointee(state),
            closed: AtomicBool::new(false),
            refresh: tokio::sync::Mutex::new(()),
        });
        let reader = AsyncShardedVectorReader { inner };
        if reader.inner.options.preload_shards {
            let state = reader.inner.state.load_full();
            reader.preload(&state).await?;
        }
        Ok(reader)
    }

    fn check_open(&self) -> Result<()> {
        if self.inner.closed.load(Ordering::Acquire) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    fn current(&self) -> Result<Arc<State>> {
        self.check_open()?;
        Ok(self.inner.state.load_full())
    }

    /// Searches `query` for its `top_k` nearest vectors.
    #[tracing::instrument(level = "debug", skip_all, fields(top_k))]
    pub async fn search(
        &self,
        query: &[f32],
        top_k: usize,
        opts: &SearchOptions,
    ) -> Result<SearchResponse> {
        self.search_checked(query, top_k, opts, |_| Ok::<(), Error>(()))
            .await
    }

    /// [`Self::search`], with `check` called on the shards the search is
    /// about to search (the routed shards that hold vectors, from the same
    /// manifest) before any of them is opened — and again on each further
    /// batch of a search that probes until enough rows match. An error from
    /// `check` is returned as is and nothing more is searched; a host uses
    /// it to refuse shards it does not serve without routing twice.
    pub async fn search_checked<E: From<Error>>(
        &self,
        query: &[f32],
        top_k: usize,
        opts: &SearchOptions,
        mut check: impl FnMut(&[ShardId]) -> std::result::Result<(), E>,
    ) -> std::result::Result<SearchResponse, E> {
        let started = Instant::now();
        let planned = self.plan(query, top_k, opts);
        let (state, route, targets, order) = match planned {
            Ok(p) => p,
            Err(e) => {
                self.report(Err(&e), top_k);
                return Err(e.into());
            }
        };
        check(&targets)?;
        let sq = ShardQuery {
            vector: Arc::from(query),
            top_k,
            filter: opts.filter.clone(),
        };
        let first = self.search_targets(&state, &sq, &targets).await;
        let result = match (first, opts.min_results, order) {
            (Ok(per_shard), Some(min), Some(order)) => {
                let searched = Searched {
                    per_shard,
                    num_shards_queried: targets.len(),
                    route,
                    probing: None,
                };
                self.probe_further(&state, &sq, min, order, searched, &mut check)
                    .await
            }
            (first, _, _) => first.map(|per_shard| Searched {
                per_shard,
                num_shards_queried: targets.len(),
                route,
                probing: None,
            }),
        };
        let result = result.map(|s| SearchResponse {
            results: merge(s.per_shard, top_k),
            num_shards_queried: s.num_shards_queried,
            route: s.route,
            latency: started.elapsed(),
            manifest_ref: state.manifest_ref.clone(),
            probing: s.probing,
        });
        self.report(result.as_ref(), top_k);
        Ok(result?)
    }

    /// Searches the next shards of `order` (the route is its prefix), a
    /// batch of as many shards as were routed at a time, until `min`
    /// matching rows were found (module docs). A shard `check` refuses (a
    /// host that does not serve it) is skipped, not searched.
    async fn probe_further<E>(
        &self,
        state: &Arc<State>,
        sq: &ShardQuery,
        min: usize,
        order: Vec<ShardId>,
        mut s: Searched,
        check: &mut impl FnMut(&[ShardId]) -> std::result::Result<(), E>,
    ) -> Result<Searched> {
        let batch = s.route.len().max(1);
        let found = |per_shard: &[Vec<SearchResult>]| per_shard.iter().map(Vec::len).sum::<usize>();
        while found(&s.per_shard) < min && s.route.len() < order.len() {
            let end = (s.route.len() + batch).min(order.len());
            let next: Vec<ShardId> = order[s.route.len()..end].to_vec();
            let more: Vec<ShardId> = next
                .iter()
                .copied()
                .filter(|&sid| state.manifest.shard(sid).is_some() && check(&[sid]).is_ok())
                .collect();
            s.per_shard
                .extend(self.search_targets(state, sq, &more).await?);
            s.route.extend(next);
            s.num_shards_queried += more.len();
        }
        let found = found(&s.per_shard);
        s.probing = Some(Probing::new(
            min,
            found,
            s.route.len(),
            state.manifest.num_dbs(),
        ));
        Ok(s)
    }

    /// The state searched, the route, the routed shards that hold vectors,
    /// and, for a search that may probe further, the order it probes in.
    #[allow(clippy::type_complexity)]
    fn plan(
        &self,
        query: &[f32],
        top_k: usize,
        opts: &SearchOptions,
    ) -> Result<(Arc<State>, Vec<ShardId>, Vec<ShardId>, Option<Vec<ShardId>>)> {
        let state = self.current()?;
        check_top_k(top_k)?;
        if let Some(min) = opts.min_results {
            if min > top_k {
                return Err(Error::InvalidArgument(format!(
                    "min_results {min} is above top_k {top_k}"
                )));
            }
        }
        // A search that may probe further routes once, for its whole order
        // (the route is the order's prefix).
        let (route, order) = if opts.probes_further(&state.router) {
            let order = state
                .router
                .probe_order(query, &opts.route_options(), opts.max_probes)?;
            (order.route().to_vec(), Some(order.shards))
        } else {
            (state.router.route(query, &opts.route_options())?, None)
        };
        let targets: Vec<ShardId> = route
            .iter()
            .copied()
            .filter(|s| state.manifest.shard(*s).is_some())
            .collect();
        Ok((state, route, targets, order))
    }

    /// Tells the metrics hook how a search ended.
    fn report(&self, result: std::result::Result<&SearchResponse, &Error>, top_k: usize) {
        if let Some(m) = &self.inner.options.metrics {
            match result {
                Ok(r) => m.search(&SearchEvent {
                    top_k,
                    num_shards_queried: r.num_shards_queried,
                    num_results: r.results.len(),
                    latency: r.latency,
                }),
                Err(e) => m.error(e),
            }
        }
    }

    /// The local top-`top_k` of each of `shards` (no routing, no merge), for
    /// a caller that routes and merges itself, such as an edge worker.
    ///
    /// With `manifest_ref`, the search runs only if that is the manifest
    /// served, and fails with [`Error::StaleManifest`] otherwise, so a
    /// caller never merges answers of two snapshots. The query is checked
    /// (dimension, finite values) as a routed search checks it; a repeated
    /// shard is searched once; an empty shard answers an empty list.
    pub async fn search_shards(
        &self,
        query: &[f32],
        top_k: usize,
        shards: &[ShardId],
        manifest_ref: Option<&str>,
        filter: Option<Arc<Filter>>,
    ) -> Result<ShardSearchResponse> {
        let started = Instant::now();
        let result = async {
            let state = self.current()?;
            if let Some(want) = manifest_ref {
                if want != state.manifest_ref.url {
                    return Err(Error::StaleManifest {
                        requested: want.to_string(),
                        serving: state.manifest_ref.url.clone(),
                    });
                }
            }
            check_top_k(top_k)?;
            // The query checked and the ids checked and deduplicated (first
            // occurrences, in order) exactly as a routed search's are.
            let ids = state
                .router
                .route(query, &RouteOptions::new().shard_ids(shards))?;
            if ids.len().saturating_mul(top_k) > MAX_RESULTS {
                return Err(Error::InvalidArgument(format!(
                    "{} shards × top_k {top_k} is more than {MAX_RESULTS} results",
                    ids.len()
                )));
            }
            let targets: Vec<ShardId> = ids
                .iter()
                .copied()
                .filter(|s| state.manifest.shard(*s).is_some())
                .collect();
            let sq = ShardQuery {
                vector: Arc::from(query),
                top_k,
                filter,
            };
            let mut found = self
                .search_targets(&state, &sq, &targets)
                .await?
                .into_iter();
            let shards = ids
                .into_iter()
                .map(|shard_id| ShardHits {
                    shard_id,
                    results: if state.manifest.shard(shard_id).is_some() {
                        found.next().unwrap_or_default()
                    } else {
                        Vec::new()
                    },
                })
                .collect();
            Ok(ShardSearchResponse {
                shards,
                manifest_ref: state.manifest_ref.clone(),
                latency: started.elapsed(),
            })
        }
        .await;
        if let Some(m) = &self.inner.options.metrics {
            match &result {
                Ok(r) => m.search(&SearchEvent {
                    top_k,
                    num_shards_queried: r.shards.len(),
                    num_results: r.shards.iter().map(|s| s.results.len()).sum(),
                    latency: r.latency,
                }),
                Err(e) => m.error(e),
            }
        }
        result
    }

    /// Searches `targets` (shards present in `state`'s manifest)
    /// concurrently; one list per target, in target order, every hit
    /// marked with its shard.
    async fn search_targets(
        &self,
        state: &Arc<State>,
        query: &ShardQuery,
        targets: &[ShardId],
    ) -> Result<Vec<Vec<SearchResult>>> {
        if let Some(rl) = &self.inner.options.rate_limiter {
            rl.acquire().await;
        }
        futures::stream::iter(targets.iter().copied())
            .map(|sid| {
                let state = state.clone();
                let query = query.clone();
                async move {
                    let shard = self.handle(&state, sid).await?;
                    let mut hits = shard.search(query).await?;
                    for hit in &mut hits {
                        hit.shard_id = Some(sid);
                    }
                    Ok(hits)
                }
            })
            .buffered(self.inner.options.max_concurrency)
            .try_collect()
            .await
    }

    /// Every vector of shard `sid` with its id (empty shards: none). For
    /// exact checks such as `shardvec verify`; reads the whole shard.
    pub async fn scan_shard(&self, sid: ShardId) -> Result<Vec<StoredVector>> {
        let state = self.current()?;
        ShardId::checked(i128::from(sid.0), state.manifest.num_dbs())?;
        if state.manifest.shard(sid).is_none() {
            return Ok(Vec::new());
        }
        self.handle(&state, sid).await?.scan().await
    }

    /// Searches several queries concurrently (each with the same options).
    pub async fn batch_search(
        &self,
        queries: &[Vec<f32>],
        top_k: usize,
        opts: &SearchOptions,
    ) -> Result<Vec<SearchResponse>> {
        futures::stream::iter(queries.iter())
            .map(|q| self.search(q, top_k, opts))
            .buffered(self.inner.options.max_concurrency)
            .try_collect()
            .await
    }

    /// The shards a search with these options would probe (including empty
    /// shards, which a search skips).
    pub fn route(&self, query: &[f32], opts: &SearchOptions) -> Result<Vec<ShardId>> {
        Ok(self.current()?.router.route(query, &opts.route_options())?)
    }

    /// The routing decision with its reasons (distances, LSH buckets, CEL
    /// value).
    pub fn explain(
        &self,
        query: &[f32],
        opts: &SearchOptions,
    ) -> Result<shardvec_core::Explanation> {
        Ok(self
            .current()?
            .router
            .explain(query, &opts.route_options())?)
    }

    /// Snapshot facts.
    pub fn snapshot_info(&self) -> Result<SnapshotInfo> {
        let s = self.current()?;
        Ok(s.manifest.snapshot_info(&s.manifest_ref.url))
    }

    /// Every shard `0..num_dbs`.
    pub fn shard_details(&self) -> Result<Vec<ShardDetail>> {
        Ok(self.current()?.manifest.shard_details())
    }

    /// [`Self::snapshot_info`] and [`Self::shard_details`] of one manifest:
    /// a refresh between two separate calls could mix two publishes.
    pub fn snapshot_with_shards(&self) -> Result<(SnapshotInfo, Vec<ShardDetail>)> {
        let s = self.current()?;
        Ok((
            s.manifest.snapshot_info(&s.manifest_ref.url),
            s.manifest.shard_details(),
        ))
    }

    /// One shard (empty shards: count 0, no URL).
    pub fn shard_for_id(&self, id: ShardId) -> Result<ShardDetail> {
        let s = self.current()?;
        ShardId::checked(i128::from(id.0), s.manifest.num_dbs())?;
        Ok(s.manifest.shard_detail(id))
    }

    /// The raw routing files of the manifest served (manifest, a matching
    /// `_CURRENT`, centroids, hyperplanes).
    pub fn routing_files(&self) -> Result<RoutingFiles> {
        Ok(self.current()?.files.clone())
    }

    /// The manifest currently served.
    pub fn manifest_ref(&self) -> Result<ManifestRef> {
        Ok(self.current()?.manifest_ref.clone())
    }

    /// Bytes of memory the open shards hold beyond their files (vectors in
    /// memory, int8 codes, payload indexes: [`ShardSearcher::resident_bytes`]),
    /// summed over the shard handles of the current snapshot. The files'
    /// pages are the OS page cache's and not counted.
    pub fn resident_bytes(&self) -> usize {
        let state = self.inner.state.load();
        let Ok(handles) = state.handles.lock() else {
            return 0;
        };
        handles
            .iter()
            .filter_map(|(_, slot)| slot.get())
            .map(|shard| shard.resident_bytes())
            .sum()
    }

    /// Health; `Degraded` when the manifest is older than `staleness`.
    pub fn health(&self, staleness: Option<Duration>) -> Health {
        if self.inner.closed.load(Ordering::Acquire) {
            return Health {
                status: HealthStatus::Unhealthy,
                manifest_ref: None,
                manifest_age: None,
                num_shards: 0,
                is_closed: true,
            };
        }
        let s = self.inner.state.load();
        let age = (chrono::Utc::now() - s.manifest_ref.published_at)
            .to_std()
            .ok();
        let stale = matches!((staleness, age), (Some(limit), Some(age)) if age > limit);
        Health {
            status: if stale {
                HealthStatus::Degraded
            } else {
                HealthStatus::Healthy
            },
            manifest_ref: Some(s.manifest_ref.clone()),
            manifest_age: age,
            num_shards: s.manifest.num_dbs(),
            is_closed: false,
        }
    }

    /// Re-reads `_CURRENT`; if it names another manifest, loads it and swaps
    /// it in atomically. Returns whether the snapshot changed. On error the
    /// current snapshot stays in service.
    pub async fn refresh(&self) -> Result<bool> {
        self.check_open()?;
        let _guard = self.inner.refresh.lock().await;
        let current = self
            .inner
            .manifests
            .load_current()
            .await?
            .ok_or_else(|| Error::NoCurrent(self.inner.location.url().to_string()))?;
        if current.manifest_ref == self.inner.state.load().manifest_ref.url {
            return Ok(false);
        }
        // No fallback on refresh: an unusable new manifest fails the
        // refresh and the current state stays in service.
        let loaded = source::load(
            &self.inner.location,
            &*self.inner.manifests,
            &current.manifest_ref(),
            0,
        )
        .await?;
        let state = Arc::new(State::new(loaded, &self.inner.options));
        let old = self.inner.state.load_full();
        let carried = state.carry_unchanged(&old);
        tracing::debug!(
            shards = carried.len(),
            "shard handles carried over the refresh"
        );
        if self.inner.options.preload_shards {
            self.preload(&state).await?;
        } else if self.inner.options.prefetch_on_refresh {
            let open: Vec<ShardId> = old
                .open_shards()
                .into_iter()
                .filter(|s| !carried.contains(s) && state.manifest.shard(*s).is_some())
                .collect();
            self.open_all(&state, open).await?;
        }
        drop(old);
        // `close` may have run while the new state was being built.
        self.check_open()?;
        if let Some(m) = &self.inner.options.metrics {
            m.refreshed(&state.manifest_ref);
        }
        self.inner.state.store(state);
        Ok(true)
    }

    /// Closes the reader: later calls fail with [`Error::Closed`]; open
    /// shard handles close when in-flight searches finish.
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        if let Ok(mut h) = self.inner.state.load().handles.lock() {
            h.clear();
        }
    }

    /// Opens (downloads, if needed) the non-empty shards among `ids` now
    /// rather than at their first search.
    pub async fn open_shards(&self, ids: &[ShardId]) -> Result<()> {
        let state = self.current()?;
        let present: Vec<ShardId> = ids
            .iter()
            .copied()
            .filter(|s| state.manifest.shard(*s).is_some())
            .collect();
        self.open_all(&state, present).await
    }

    /// Opens every non-empty shard of `state`.
    async fn preload(&self, state: &Arc<State>) -> Result<()> {
        let ids: Vec<ShardId> = state.manifest.shards.iter().map(|s| s.db_id).collect();
        self.open_all(state, ids).await
    }

    async fn open_all(&self, state: &Arc<State>, ids: Vec<ShardId>) -> Result<()> {
        futures::stream::iter(ids)
            .map(|id| self.handle(state, id))
            .buffer_unordered(self.inner.options.max_concurrency)
            .try_collect::<Vec<_>>()
            .await
            .map(|_| ())
    }

    /// The open handle of shard `sid` of `state`, opening it if needed.
    async fn handle(&self, state: &Arc<State>, sid: ShardId) -> Result<Arc<dyn ShardSearcher>> {
        self.check_open()?;
        let slot: Slot = {
            let mut handles = state.handles.lock().map_err(|_| Error::Internal {
                what: "the shard handle cache lock is poisoned".into(),
                source: None,
            })?;
            handles
                .get_or_insert(sid, || Arc::new(OnceCell::new()))
                .clone()
        };
        if let Some(m) = &self.inner.options.metrics {
            m.shard_cache(sid, slot.initialized());
        }
        if let Some(handle) = slot.get() {
            return Ok(handle.clone());
        }
        // The open (download, integrity check, loading) runs in its own
        // task, detached from this caller: a caller that stops waiting (a
        // host's request timeout drops its future) leaves it running to
        // completion, and every caller meanwhile waits on the same slot, so
        // a shard slower to open than one request's time limit is opened
        // once and then served, instead of being restarted (and its partial
        // download deleted) by each request.
        let opening = tokio::spawn({
            let reader = self.clone();
            let state = state.clone();
            async move {
                slot.get_or_try_init(|| async {
                    let started = Instant::now();
                    let (kind, handle) = reader.open_shard(&state, sid).await?;
                    if let Some(m) = &reader.inner.options.metrics {
                        m.shard_opened(sid, kind, started.elapsed());
                    }
                    Ok::<_, Error>(handle)
                })
                .await
                .cloned()
            }
        });
        opening.await.map_err(|e| Error::task("shard open", e))?
    }

    async fn open_shard(
        &self,
        state: &State,
        sid: ShardId,
    ) -> Result<(BackendKind, Arc<dyn ShardSearcher>)> {
        let meta = state
            .manifest
            .shard(sid)
            .ok_or(shardvec_core::Error::ShardOutOfRange {
                id: i128::from(sid.0),
                num_dbs: state.manifest.num_dbs(),
            })?
            .clone();
        let url = meta.db_url.clone().ok_or_else(|| Error::Backend {
            shard: sid,
            url: String::new(),
            source: "the manifest records no URL for this shard".into(),
        })?;
        let (location, key) = match self
            .inner
            .location
            .resolve(&url, &state.manifest.build.s3_prefix)
        {
            Ok(key) => (self.inner.location.clone(), key),
            Err(Error::ForeignUrl { .. }) if self.inner.options.allow_foreign_urls => {
                tracing::debug!(shard = sid.0, url = %url, "reading a shard outside the prefix");
                (
                    SnapshotLocation::open(&url, &self.inner.options.store)?,
                    String::new(),
                )
            }
            Err(e) => return Err(e),
        };
        let source = ShardSource {
            meta,
            key,
            location,
            local_root: self.inner.local_root.clone(),
            metric: state.manifest.vector.metric,
            dim: state.manifest.vector.dim,
            download: self.inner.options.download,
        };
        let kind = match self.inner.options.backend {
            Some(k) => k,
            None => backend::detect(&source).await?,
        };
        let backend = self.inner.options.backends.for_shard(sid, kind)?;
        let span = tracing::debug_span!("open_shard", shard = sid.0, backend = kind.as_str());
        let handle = backend.open(&source).instrument(span).await?;
        Ok((kind, handle))
    }
}

impl State {
    /// The state of a loaded publish, with no shard open yet.
    fn new(loaded: Loaded<Bytes>, options: &ReaderOptions) -> State {
        let Loaded {
            manifest_ref,
            manifest,
            manifest_bytes,
            routing,
        } = loaded;
        let files = RoutingFiles {
            current: Bytes::from(manifest_ref.to_current().to_json()),
            manifest_ref: manifest_ref.clone(),
            manifest: manifest_bytes,
            centroids: routing.centroids.map(|(_, b)| b),
            hyperplanes: routing.hyperplanes.map(|(_, b)| b),
        };
        State {
            manifest_ref,
            manifest,
            router: routing.router,
            files,
            handles: Mutex::new(match options.max_cached_shards {
                Some(n) => LruCache::new(n),
                None => LruCache::unbounded(),
            }),
        }
    }
}

impl State {
    /// Puts into this (new, unused) state the open handles of `old` whose
    /// shard this publish did not change — the same manifest entry (URL,
    /// checkpoint, sizes, row count), dimension, metric and prefix — so a
    /// refresh neither reopens them nor holds two copies. Returns their ids.
    fn carry_unchanged(&self, old: &State) -> Vec<ShardId> {
        let same_space = old.manifest.vector.dim == self.manifest.vector.dim
            && old.manifest.vector.metric == self.manifest.vector.metric
            && old.manifest.build.s3_prefix == self.manifest.build.s3_prefix;
        let (Ok(old_handles), Ok(mut handles)) = (old.handles.lock(), self.handles.lock()) else {
            return Vec::new();
        };
        if !same_space {
            return Vec::new();
        }
        let mut carried = Vec::new();
        // Least recently used first, so the new cache keeps the old order.
        for (sid, slot) in old_handles.iter().rev() {
            let unchanged = slot.initialized()
                && old.manifest.shard(*sid).is_some()
                && old.manifest.shard(*sid) == self.manifest.shard(*sid);
            if unchanged {
                handles.put(*sid, slot.clone());
                carried.push(*sid);
            }
        }
        carried
    }

    /// The shards with an open handle.
    fn open_shards(&self) -> Vec<ShardId> {
        self.handles.lock().map_or_else(
            |_| Vec::new(),
            |h| {
                h.iter()
                    .filter(|(_, slot)| slot.initialized())
                    .map(|(sid, _)| *sid)
                    .collect()
            },
        )
    }
}

/// The shards searched by a routed search, before the merge.
struct Searched {
    per_shard: Vec<Vec<SearchResult>>,
    num_shards_queried: usize,
    route: Vec<ShardId>,
    probing: Option<Probing>,
}

fn check_top_k(top_k: usize) -> Result<()> {
    if top_k == 0 || top_k > MAX_TOP_K {
        return Err(Error::InvalidArgument(format!(
            "top_k must be in 1..={MAX_TOP_K}, got {top_k}"
        )));
    }
    Ok(())
}
