//! Shard backends: how one shard is opened and searched.
//!
//! A [`ShardBackend`] turns a shard of the manifest into an open
//! [`ShardSearcher`]; searchers are cached by the reader and shared by
//! concurrent searches (they are `Send + Sync`). Searching is async: the
//! sqlite-vec backend runs its CPU-bound KNN scan on tokio's blocking pool,
//! LanceDB is async itself.
//!
//! [`detect`] tells which backend wrote a shard from its objects:
//! `shard.db` → sqlite-vec, `vector_index.lance/` → LanceDB.

mod lance_store;
pub mod lancedb;
pub mod sqlite_vec;

use std::path::PathBuf;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use shardvec_core::{Metric, SearchResult, ShardId, ShardMeta, VectorId};

use crate::cache::{self, Identity};
use crate::error::{Error, Result};
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
    /// The name used in options and output.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::SqliteVec => "sqlite-vec",
            BackendKind::Lancedb => "lancedb",
        }
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
    /// are in the local cache under this shard's identity, and returns the
    /// cached version folder.
    pub async fn cache(&self, files: Vec<(String, u64)>) -> Result<PathBuf> {
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
        )
        .await
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

    /// A backend error about this shard.
    pub fn error(&self, reason: impl std::fmt::Display) -> Error {
        Error::Backend {
            shard: self.id(),
            url: self.url(),
            reason: reason.to_string(),
        }
    }
}

/// An open shard.
pub trait ShardSearcher: Send + Sync + std::fmt::Debug {
    /// The shard's local top-`top_k`, best first.
    fn search(&self, query: Arc<[f32]>, top_k: usize) -> BoxFuture<'_, Result<Vec<SearchResult>>>;
    /// Every vector of the shard with its id, in storage order: the
    /// ground truth of exact checks (`verify`, tests).
    fn scan(&self) -> BoxFuture<'_, Result<Vec<StoredVector>>>;
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
    let names = keys.iter().filter_map(|(k, _)| source.name_in_shard(k));
    let mut lance = false;
    for name in names {
        if name == sqlite_vec::SHARD_FILE {
            return Ok(BackendKind::SqliteVec);
        }
        lance |= name.starts_with("vector_index.lance/");
    }
    if lance {
        Ok(BackendKind::Lancedb)
    } else {
        Err(source.error("no shard objects found (expected shard.db or vector_index.lance/)"))
    }
}
