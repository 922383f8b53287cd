//! The blocking reader: [`ShardedVectorReader`].
//!
//! It owns a small multi-threaded tokio runtime (`max_workers` threads,
//! default 4) and drives an [`AsyncShardedVectorReader`] on it, so blocking
//! code gets the same concurrent fan-out. Calling it from inside a tokio
//! runtime would deadlock or panic, so it returns
//! [`Error::BlockingInAsync`] there instead.

use std::path::PathBuf;
use std::time::Duration;

use shardvec_core::{ManifestRef, ShardDetail, ShardId, SnapshotInfo};

use crate::error::{Error, Result};
use crate::reader::{
    AsyncShardedVectorReader, Health, ReaderOptions, SearchOptions, SearchResponse,
};

/// Searches a sharded vector snapshot from blocking code.
#[derive(Debug)]
pub struct ShardedVectorReader {
    // `Option` only so that `Drop` can shut the runtime down without
    // blocking (dropping a runtime inside another one would panic).
    runtime: Option<tokio::runtime::Runtime>,
    inner: AsyncShardedVectorReader,
}

impl Drop for ShardedVectorReader {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

fn not_in_async() -> Result<()> {
    if tokio::runtime::Handle::try_current().is_ok() {
        Err(Error::BlockingInAsync)
    } else {
        Ok(())
    }
}

impl ShardedVectorReader {
    /// Opens the snapshot at `prefix` with a runtime of 4 worker threads.
    pub fn open(
        prefix: &str,
        local_root: impl Into<PathBuf>,
        options: ReaderOptions,
    ) -> Result<Self> {
        Self::open_with_workers(prefix, local_root, options, 4)
    }

    /// Opens the snapshot with `max_workers` runtime threads.
    pub fn open_with_workers(
        prefix: &str,
        local_root: impl Into<PathBuf>,
        options: ReaderOptions,
        max_workers: usize,
    ) -> Result<Self> {
        not_in_async()?;
        if max_workers == 0 {
            return Err(Error::InvalidArgument(
                "max_workers must be at least 1".into(),
            ));
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(max_workers)
            .thread_name("shardvec-reader")
            .enable_all()
            .build()
            .map_err(|e| Error::internal("cannot start the reader runtime", e))?;
        let local_root = local_root.into();
        let inner =
            runtime.block_on(AsyncShardedVectorReader::open(prefix, local_root, options))?;
        Ok(ShardedVectorReader {
            runtime: Some(runtime),
            inner,
        })
    }

    fn block<T>(&self, f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        not_in_async()?;
        match &self.runtime {
            Some(rt) => rt.block_on(f),
            None => Err(Error::Closed),
        }
    }

    /// See [`AsyncShardedVectorReader::search`].
    pub fn search(
        &self,
        query: &[f32],
        top_k: usize,
        opts: &SearchOptions,
    ) -> Result<SearchResponse> {
        self.block(self.inner.search(query, top_k, opts))
    }

    /// See [`AsyncShardedVectorReader::batch_search`].
    pub fn batch_search(
        &self,
        queries: &[Vec<f32>],
        top_k: usize,
        opts: &SearchOptions,
    ) -> Result<Vec<SearchResponse>> {
        self.block(self.inner.batch_search(queries, top_k, opts))
    }

    /// See [`AsyncShardedVectorReader::route`].
    pub fn route(&self, query: &[f32], opts: &SearchOptions) -> Result<Vec<ShardId>> {
        self.inner.route(query, opts)
    }

    /// See [`AsyncShardedVectorReader::snapshot_info`].
    pub fn snapshot_info(&self) -> Result<SnapshotInfo> {
        self.inner.snapshot_info()
    }

    /// See [`AsyncShardedVectorReader::shard_details`].
    pub fn shard_details(&self) -> Result<Vec<ShardDetail>> {
        self.inner.shard_details()
    }

    /// See [`AsyncShardedVectorReader::shard_for_id`].
    pub fn shard_for_id(&self, id: ShardId) -> Result<ShardDetail> {
        self.inner.shard_for_id(id)
    }

    /// See [`AsyncShardedVectorReader::manifest_ref`].
    pub fn manifest_ref(&self) -> Result<ManifestRef> {
        self.inner.manifest_ref()
    }

    /// See [`AsyncShardedVectorReader::resident_bytes`].
    pub fn resident_bytes(&self) -> usize {
        self.inner.resident_bytes()
    }

    /// See [`AsyncShardedVectorReader::health`].
    pub fn health(&self, staleness: Option<Duration>) -> Health {
        self.inner.health(staleness)
    }

    /// See [`AsyncShardedVectorReader::refresh`].
    pub fn refresh(&self) -> Result<bool> {
        self.block(self.inner.refresh())
    }

    /// See [`AsyncShardedVectorReader::close`].
    pub fn close(&self) {
        self.inner.close()
    }

    /// The async reader this one drives (shares its state).
    pub fn as_async(&self) -> &AsyncShardedVectorReader {
        &self.inner
    }
}
