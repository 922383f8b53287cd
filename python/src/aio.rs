//! `shardvec.AsyncShardedVectorReader`: the asyncio reader.
//!
//! `await AsyncShardedVectorReader.open(...)` builds the library's async
//! reader; `search`, `batch_search`, `refresh` and `close` return
//! awaitables whose work runs on a tokio runtime of the library's own
//! (`pyo3-async-runtimes`), never on the event loop's thread, so an
//! asyncio service (FastAPI, aiohttp) stays responsive while shards are
//! searched or downloaded.

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3_async_runtimes::tokio::future_into_py;

use crate::convert::{
    calls, Query, ReaderArgs, ReaderHealth, SearchArgs, SearchResponse, ShardDetail, SnapshotInfo,
};
use crate::errors::IntoPyResult;

/// Searches a sharded vector snapshot from asyncio code. Open it with
/// `await AsyncShardedVectorReader.open(...)`; a drop-in for
/// shardyfusion's `AsyncShardedVectorReader`.
#[pyclass(frozen, module = "shardvec")]
pub struct AsyncShardedVectorReader {
    inner: shardvec::AsyncShardedVectorReader,
}

#[pymethods]
impl AsyncShardedVectorReader {
    /// Opens the snapshot at `s3_prefix` (awaitable); the keywords are the
    /// blocking reader's.
    #[staticmethod]
    #[pyo3(signature = (
        s3_prefix, local_root, *, max_workers=None, max_fallback_attempts=3,
        max_cached_shards=None, preload_shards=false, rate_limiter=None,
        s3_connection_options=None, credentials=None, max_concurrency=None,
        prefetch_on_refresh=false
    ))]
    #[allow(clippy::too_many_arguments)]
    fn open<'py>(
        py: Python<'py>,
        s3_prefix: String,
        local_root: PathBuf,
        max_workers: Option<usize>,
        max_fallback_attempts: usize,
        max_cached_shards: Option<usize>,
        preload_shards: bool,
        rate_limiter: Option<Bound<'py, PyAny>>,
        s3_connection_options: Option<Bound<'py, PyDict>>,
        credentials: Option<Bound<'py, PyAny>>,
        max_concurrency: Option<usize>,
        prefetch_on_refresh: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        // The runtime is shared by every async reader: `max_workers` sizes
        // only the blocking reader's own runtime.
        let _ = max_workers;
        let options = ReaderArgs {
            max_fallback_attempts,
            max_cached_shards,
            preload_shards,
            rate_limiter,
            s3_connection_options,
            credentials,
            max_concurrency,
            prefetch_on_refresh,
        }
        .options()?;
        future_into_py(py, async move {
            let inner = shardvec::AsyncShardedVectorReader::open(&s3_prefix, local_root, options)
                .await
                .py()?;
            Ok(AsyncShardedVectorReader { inner })
        })
    }

    /// Awaitable `search`; see `ShardedVectorReader.search`.
    #[pyo3(signature = (
        query, top_k=10, *, shard_ids=None, num_probes=None, routing_context=None,
        filter=None, min_results=None, max_probes=None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn search<'py>(
        &self,
        py: Python<'py>,
        query: &Bound<'py, PyAny>,
        top_k: usize,
        shard_ids: Option<Vec<u32>>,
        num_probes: Option<u32>,
        routing_context: Option<Bound<'py, PyAny>>,
        filter: Option<Bound<'py, PyAny>>,
        min_results: Option<usize>,
        max_probes: Option<u32>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let opts = SearchArgs {
            shard_ids,
            num_probes,
            routing_context,
            filter,
            min_results,
            max_probes,
        }
        .options()?;
        // Copied: the search outlives this call (and the GIL).
        let values = Query::extract(query)?.as_slice()?.to_vec();
        let inner = self.inner.clone();
        future_into_py(py, async move {
            let answer = inner.search(&values, top_k, &opts).await.py()?;
            Python::attach(|py| SearchResponse::from_rust(py, answer))
        })
    }

    /// Awaitable `batch_search`; see `ShardedVectorReader.batch_search`.
    #[pyo3(signature = (
        queries, top_k=10, *, shard_ids=None, num_probes=None, routing_context=None,
        filter=None, min_results=None, max_probes=None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn batch_search<'py>(
        &self,
        py: Python<'py>,
        queries: &Bound<'py, PyAny>,
        top_k: usize,
        shard_ids: Option<Vec<u32>>,
        num_probes: Option<u32>,
        routing_context: Option<Bound<'py, PyAny>>,
        filter: Option<Bound<'py, PyAny>>,
        min_results: Option<usize>,
        max_probes: Option<u32>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let opts = SearchArgs {
            shard_ids,
            num_probes,
            routing_context,
            filter,
            min_results,
            max_probes,
        }
        .options()?;
        let rows = crate::convert::queries(queries)?;
        // One owned search per row, run together (the library's
        // `batch_search` borrows its rows across awaits, which a future
        // handed to another runtime cannot).
        let searches: Vec<_> = rows
            .into_iter()
            .map(|row| {
                let (inner, opts) = (self.inner.clone(), opts.clone());
                async move { inner.search(&row, top_k, &opts).await }
            })
            .collect();
        future_into_py(py, async move {
            let answers = futures::future::try_join_all(searches).await.py()?;
            Python::attach(|py| {
                answers
                    .into_iter()
                    .map(|a| SearchResponse::from_rust(py, a))
                    .collect::<PyResult<Vec<_>>>()
            })
        })
    }

    /// The shards a search of `query` would probe, in order.
    #[pyo3(signature = (query, *, num_probes=None, routing_context=None))]
    fn route_vector<'py>(
        &self,
        query: &Bound<'py, PyAny>,
        num_probes: Option<u32>,
        routing_context: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Vec<u32>> {
        calls::route_vector(&self.inner, query, num_probes, routing_context)
    }

    /// Snapshot-level facts of the manifest served.
    fn snapshot_info(&self) -> PyResult<SnapshotInfo> {
        calls::snapshot_info(&self.inner)
    }

    /// Every shard of the manifest served, by id.
    fn shard_details(&self) -> PyResult<Vec<ShardDetail>> {
        calls::shard_details(&self.inner)
    }

    /// The reader's state; see `ShardedVectorReader.health`.
    #[pyo3(signature = (staleness_threshold=None))]
    fn health(&self, staleness_threshold: Option<&Bound<'_, PyAny>>) -> PyResult<ReaderHealth> {
        calls::health(&self.inner, staleness_threshold)
    }

    /// Awaitable `refresh`: True when the manifest changed, False when it
    /// did not or the refresh failed (`raise_on_error=True` raises).
    #[pyo3(signature = (*, raise_on_error=false))]
    fn refresh<'py>(&self, py: Python<'py>, raise_on_error: bool) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.inner.clone();
        future_into_py(py, async move {
            match inner.refresh().await {
                Ok(changed) => Ok(changed),
                Err(e) if raise_on_error => Err(crate::errors::to_py(e)),
                Err(_) => Ok(false),
            }
        })
    }

    /// Awaitable `close`: later calls raise `ReaderStateError`.
    fn close<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.inner.clone();
        future_into_py(py, async move {
            inner.close();
            Ok(())
        })
    }

    fn __aenter__<'py>(slf: Py<Self>, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        future_into_py(py, async move { Ok(slf) })
    }

    #[pyo3(signature = (*_exc))]
    fn __aexit__<'py>(
        &self,
        py: Python<'py>,
        _exc: &Bound<'py, pyo3::types::PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.inner.clone();
        future_into_py(py, async move {
            inner.close();
            Ok(false)
        })
    }
}
