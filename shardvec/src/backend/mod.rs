//! Shard backends: how one shard is opened and searched.
//!
//! A [`ShardBackend`] turns a shard of the manifest into an open
//! [`ShardSearcher`]; searchers are cached by the reader and shared by
//! concurrent searches (they are `Send + Sync`). Searching is async: the
//! sqlite-vec backend runs its CPU-bound KNN scan on tokio's blocking pool,
//! LanceDB is async itself.
//!
//! [`detect`] tells which backend wrote a shard from its objects:
//! `shard.db` → sqlite-vec, `vector_index.lance/` → LanceDB. The reader
//! then asks its [`Backends`] for that kind: the backends compiled in
//! (cargo features `sqlite-vec`, default, and `lancedb`), each with its
//! default options unless the caller registered another instance
//! ([`crate::ReaderOptions::shard_backend`]). A shard whose backend is not
//! compiled in fails alone, with [`Error::BackendNotCompiled`] naming the
//! feature.
//!
//! Adding a backend touches this folder only: a [`BackendKind`] variant
//! with its feature name and detection rule, a module implementing
//! [`ShardBackend`], and its line in [`Backends::default`].

#[cfg(feature = "lancedb")]
mod lance_store;
#[cfg(feature = "lancedb")]
pub mod lancedb;
#[cfg(feature = "sqlite-vec")]
pub mod sqlite_vec;
#[cfg(feature = "sqlite-vec")]
mod vec0_file;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use shardvec_core::{Filter, Metric, SearchResult, ShardId, ShardMeta, VectorId};

use shardvec_core::layout::{LANCE_DATASET_DIR, SQLITE_VEC_SHARD_FILE};

use crate::cache::{self, CachedVersion, DownloadOptions, Identity};
use crate::error::{BoxError, Error, Result};
use crate::location::SnapshotLocation;

/// The storage engine of a shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackendKind {
    /// One SQLite file with a sqlite-vec `vec0` table.
    SqliteVec,
    /// A Lance dataset opened with LanceDB.
    Lancedb,
}

impl BackendKind {
    /// Every kind, compiled in or not.
    pub const ALL: [BackendKind; 2] = [BackendKind::SqliteVec, BackendKind::Lancedb];

    /// The name used in options and output.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::SqliteVec => "sqlite-vec",
            BackendKind::Lancedb => "lancedb",
        }
    }

    /// The cargo feature of `shardvec` that compiles this backend in.
    pub fn feature(self) -> &'static str {
        self.as_str()
    }

    /// Whether this build has the backend.
    pub fn is_compiled(self) -> bool {
        match self {
            BackendKind::SqliteVec => cfg!(feature = "sqlite-vec"),
            BackendKind::Lancedb => cfg!(feature = "lancedb"),
        }
    }

    /// The kind of a shard, from the names of its objects (relative to the
    /// shard folder); `None` if none matches.
    pub fn detect<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<BackendKind> {
        let mut lance = false;
        for name in names {
            if name == SQLITE_VEC_SHARD_FILE {
                return Some(BackendKind::SqliteVec);
            }
            lance |= name
                .strip_prefix(LANCE_DATASET_DIR)
                .is_some_and(|rest| rest.starts_with('/'));
        }
        lance.then_some(BackendKind::Lancedb)
    }
}

/// The backends a reader opens shards with, at most one per
/// [`BackendKind`]. Default: every backend compiled in, with its default
/// options.
#[derive(Debug, Clone)]
pub struct Backends {
    backends: Vec<Arc<dyn ShardBackend>>,
}

impl Default for Backends {
    // One `push` per feature: `vec![]` cannot hold `#[cfg]` elements.
    #[allow(clippy::vec_init_then_push)]
    fn default() -> Self {
        #[allow(unused_mut)]
        let mut backends: Vec<Arc<dyn ShardBackend>> = Vec::new();
        #[cfg(feature = "sqlite-vec")]
        backends.push(Arc::new(sqlite_vec::SqliteVecBackend::default()));
        #[cfg(feature = "lancedb")]
        backends.push(Arc::new(lancedb::LanceDbBackend::default()));
        Backends { backends }
    }
}

impl Backends {
    /// No backend at all (register them with [`Backends::insert`]).
    pub fn empty() -> Self {
        Backends {
            backends: Vec::new(),
        }
    }

    /// Registers `backend`, replacing the one of the same kind.
    pub fn insert(&mut self, backend: Arc<dyn ShardBackend>) {
        self.backends.retain(|b| b.kind() != backend.kind());
        self.backends.push(backend);
    }

    /// The backend of `kind`, if registered.
    pub fn get(&self, kind: BackendKind) -> Option<&Arc<dyn ShardBackend>> {
        self.backends.iter().find(|b| b.kind() == kind)
    }

    /// The backend for shard `shard` of kind `kind`, or the error that
    /// names the missing feature.
    pub fn for_shard(&self, shard: ShardId, kind: BackendKind) -> Result<&Arc<dyn ShardBackend>> {
        self.get(kind).ok_or(Error::BackendNotCompiled {
            shard,
            backend: kind,
        })
    }
}

/// Everything a backend needs to open one shard.
#[derive(Debug, Clone)]
pub struct ShardSource {
    /// The shard's row of the manifest.
    pub meta: ShardMeta,
    /// The shard folder's key relative to `location`.
    pub key: String,
    /// Where the shard is read from: the snapshot's location, or, for a
    /// recorded URL outside it that the caller allowed, the shard's own.
    pub location: SnapshotLocation,
    /// The local cache root.
    pub local_root: PathBuf,
    /// The snapshot's metric.
    pub metric: Metric,
    /// The snapshot's dimension.
    pub dim: usize,
    /// How its objects are downloaded into the cache.
    pub download: DownloadOptions,
}

impl ShardSource {
    /// The shard id.
    pub fn id(&self) -> ShardId {
        self.meta.db_id
    }

    /// The shard's URL, for messages.
    pub fn url(&self) -> String {
        self.location.display_url(&self.key)
    }

    /// Makes sure `files` (relative to the shard folder, with their sizes)
    /// are in the local cache under this shard's identity, and takes the
    /// cached version into use (keep it as long as its files are read).
    pub async fn cache(&self, files: Vec<(String, u64)>) -> Result<CachedVersion> {
        let identity = Identity {
            db_url: self.meta.db_url.clone().unwrap_or_default(),
            checkpoint_id: self.meta.checkpoint_id.clone(),
            files,
        };
        cache::ensure(
            &self.location,
            &self.local_root,
            self.id(),
            &self.key,
            &identity,
            self.download,
        )
        .await
    }

    /// Caches `files` ([`ShardSource::cache`]) and opens the cached version
    /// with `open`. A version `open` finds damaged
    /// ([`OpenFailure::Damaged`]) is discarded and downloaded once more; any
    /// other failure keeps the cached copy and is returned as it is.
    pub async fn open_cached<T, F, Fut>(&self, files: Vec<(String, u64)>, mut open: F) -> Result<T>
    where
        F: FnMut(Arc<CachedVersion>) -> Fut,
        Fut: Future<Output = std::result::Result<T, OpenFailure>>,
    {
        let mut retried = false;
        loop {
            let version = Arc::new(self.cache(files.clone()).await?);
            match open(version.clone()).await {
                Ok(opened) => return Ok(opened),
                Err(OpenFailure::Damaged(e)) if !retried => {
                    tracing::warn!(shard = self.id().0, error = %e, "cached shard damaged; downloading it again");
                    cache::discard(&version).await?;
                    retried = true;
                }
                Err(OpenFailure::Damaged(e) | OpenFailure::Failed(e)) => return Err(e),
            }
        }
    }

    /// The key of `name` inside the shard folder (relative to `location`).
    pub fn object_key(&self, name: &str) -> String {
        if self.key.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", self.key)
        }
    }

    /// A key listed under `location` as a name inside the shard folder.
    pub fn name_in_shard<'k>(&self, key: &'k str) -> Option<&'k str> {
        if self.key.is_empty() {
            Some(key)
        } else {
            key.strip_prefix(&self.key)?.strip_prefix('/')
        }
    }

    /// A record's payload, stored as JSON text, decoded; the error names
    /// the record.
    pub fn payload(&self, id: &VectorId, text: &str) -> Result<serde_json::Value> {
        serde_json::from_str(text)
            .map_err(|e| self.failed(format!("payload of {id} is not JSON"), e))
    }

    /// A backend error about this shard: `reason`, with no cause.
    pub fn error(&self, reason: impl Into<String>) -> Error {
        Error::Backend {
            shard: self.id(),
            url: self.url(),
            source: reason.into().into(),
        }
    }

    /// A backend error about this shard's bytes: `reason` shows they are
    /// damaged (a check failed, a structure is malformed).
    /// [`OpenFailure::classify`] recognises it.
    pub fn damaged(&self, reason: impl Into<String>) -> Error {
        Error::Backend {
            shard: self.id(),
            url: self.url(),
            source: Box::new(Damaged(reason.into())),
        }
    }

    /// A backend error about this shard: `what` failed because of `cause`,
    /// which stays the error's source.
    pub fn failed(&self, what: impl Into<String>, cause: impl Into<BoxError>) -> Error {
        Error::Backend {
            shard: self.id(),
            url: self.url(),
            source: Box::new(crate::error::Context {
                what: what.into(),
                cause: cause.into(),
            }),
        }
    }
}

/// The cause of an error showing a shard's bytes are damaged
/// ([`ShardSource::damaged`]).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Damaged(String);

/// Why a cached shard did not open.
#[derive(Debug)]
pub enum OpenFailure {
    /// The cached bytes are damaged: discard them and download again.
    Damaged(Error),
    /// Anything else (out of file descriptors or memory, a lock, a bug):
    /// the cached copy stays.
    Failed(Error),
}

impl OpenFailure {
    /// Sorts `e`: damaged when its chain of causes holds a [`Damaged`] or
    /// a cause `is_damage` recognises (an engine's own corruption codes).
    pub fn classify(e: Error, is_damage: impl Fn(&Cause) -> bool) -> Self {
        if caused_by(&e, |c| c.is::<Damaged>() || is_damage(c)) {
            OpenFailure::Damaged(e)
        } else {
            OpenFailure::Failed(e)
        }
    }
}

/// One link of an error's chain of causes.
pub type Cause = dyn std::error::Error + 'static;

/// Whether `e` or any of its causes satisfies `test`.
pub fn caused_by(e: &Error, test: impl Fn(&Cause) -> bool) -> bool {
    let mut cause: Option<&Cause> = Some(e);
    while let Some(c) = cause {
        if test(c) {
            return true;
        }
        cause = c.source();
    }
    false
}

/// Whether `cause` is the machine running short (file descriptors, memory,
/// disk space, a temporarily unavailable resource): never a reason to
/// think a cached copy damaged.
pub fn is_resource_exhaustion(cause: &Cause) -> bool {
    let Some(io) = cause.downcast_ref::<std::io::Error>() else {
        return false;
    };
    matches!(
        io.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM | libc::ENOSPC | libc::EAGAIN)
    ) || matches!(
        io.kind(),
        std::io::ErrorKind::OutOfMemory
            | std::io::ErrorKind::StorageFull
            | std::io::ErrorKind::ResourceBusy
    )
}

/// One search of one shard.
#[derive(Debug, Clone)]
pub struct ShardQuery {
    /// The query vector (dimension and finiteness already checked).
    pub vector: Arc<[f32]>,
    /// Results wanted.
    pub top_k: usize,
    /// Only rows matching this filter count; `None`: every row.
    pub filter: Option<Arc<Filter>>,
}

impl ShardQuery {
    /// The filter, unless it matches every row (`{}`).
    pub fn effective_filter(&self) -> Option<&Filter> {
        self.filter.as_deref().filter(|f| !f.is_all())
    }
}

/// An open shard.
pub trait ShardSearcher: Send + Sync + std::fmt::Debug {
    /// The shard's local top-`top_k` among the rows matching the query's
    /// filter, best first: exactly the rows a brute-force scan of the
    /// shard with the filter applied first returns (a LanceDB shard's
    /// *unfiltered* search is its index's approximate answer, as the
    /// reference's). Hits leave `shard_id` unset: the reader marks them.
    fn search(&self, query: ShardQuery) -> BoxFuture<'_, Result<Vec<SearchResult>>>;
    /// Every vector of the shard with its id, in storage order: the
    /// ground truth of exact checks (`verify`, tests).
    fn scan(&self) -> BoxFuture<'_, Result<Vec<StoredVector>>>;
    /// Bytes of memory the open shard holds beyond its files: vectors,
    /// codes and indexes built from them (0 by default). The files' own
    /// pages belong to the OS page cache and are not counted.
    fn resident_bytes(&self) -> usize {
        0
    }
}

/// A vector as a shard stores it, with its id.
pub type StoredVector = (VectorId, Vec<f32>);

/// Opens shards of one storage engine.
pub trait ShardBackend: Send + Sync + std::fmt::Debug {
    /// The engine.
    fn kind(&self) -> BackendKind;
    /// Opens (downloading into the local cache if needed) one shard.
    fn open<'a>(&'a self, source: &'a ShardSource)
        -> BoxFuture<'a, Result<Arc<dyn ShardSearcher>>>;
}

/// Detects the engine of a shard from its objects.
pub async fn detect(source: &ShardSource) -> Result<BackendKind> {
    let keys = source.location.list(&source.key).await?;
    BackendKind::detect(keys.iter().filter_map(|(k, _)| source.name_in_shard(k))).ok_or_else(|| {
        source.error(format!(
            "no shard objects found (expected {SQLITE_VEC_SHARD_FILE} or {LANCE_DATASET_DIR}/)"
        ))
    })
}
