//! `shardvec.ShardedVectorReader`: the blocking reader.
//!
//! It owns the library's blocking reader (a tokio runtime of
//! `max_workers` threads driving the async reader). Every call that may
//! wait — opening, searching, refreshing — releases the GIL, so Python
//! threads search in parallel.

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::convert::{
    calls, Query, ReaderArgs, ReaderHealth, SearchArgs, SearchResponse, ShardDetail, SnapshotInfo,
};
use crate::errors::{invalid, IntoPyResult};

/// Searches a sharded vector snapshot (shardyfusion's format) from
/// blocking code. A drop-in for shardyfusion's `ShardedVectorReader`.
#[pyclass(frozen, module = "shardvec")]
pub struct ShardedVectorReader {
    inner: shardvec::ShardedVectorReader,
}

#[pymethods]
impl ShardedVectorReader {
    #[new]
    #[pyo3(signature = (
        s3_prefix, local_root, *, max_workers=None, max_fallback_attempts=3,
        max_cached_shards=None, preload_shards=false, rate_limiter=None,
        s3_connection_options=None, credentials=None, max_concurrency=None,
        prefetch_on_refresh=false
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new<'py>(
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
    ) -> PyResult<Self> {
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
        let workers = max_workers.unwrap_or(4);
        if workers == 0 {
            return Err(invalid("max_workers must be at least 1"));
        }
        let inner = py
            .detach(move || {
                shardvec::ShardedVectorReader::open_with_workers(
                    &s3_prefix, local_root, options, workers,
                )
            })
            .py()?;
        Ok(ShardedVectorReader { inner })
    }

    /// The `top_k` nearest vectors to `query` among the routed shards.
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
    ) -> PyResult<SearchResponse> {
        let opts = SearchArgs {
            shard_ids,
            num_probes,
            routing_context,
            filter,
            min_results,
            max_probes,
        }
        .options()?;
        let query = Query::extract(query)?;
        let values = query.as_slice()?;
        let answer = py.detach(|| self.inner.search(values, top_k, &opts)).py()?;
        SearchResponse::from_rust(py, answer)
    }

    /// One search per row of `queries` (a 2-D array or a list of
    /// vectors), with the same arguments; the shards of all of them are
    /// searched concurrently.
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
    ) -> PyResult<Vec<SearchResponse>> {
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
        let answers = py
            .detach(|| self.inner.batch_search(&rows, top_k, &opts))
            .py()?;
        answers
            .into_iter()
            .map(|a| SearchResponse::from_rust(py, a))
            .collect()
    }

    /// The shards a search of `query` would probe, in order.
    #[pyo3(signature = (query, *, num_probes=None, routing_context=None))]
    fn route_vector<'py>(
        &self,
        query: &Bound<'py, PyAny>,
        num_probes: Option<u32>,
        routing_context: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Vec<u32>> {
        calls::route_vector(self.inner.as_async(), query, num_probes, routing_context)
    }

    /// Snapshot-level facts of the manifest served.
    fn snapshot_info(&self) -> PyResult<SnapshotInfo> {
        calls::snapshot_info(self.inner.as_async())
    }

    /// Every shard of the manifest served, by id.
    fn shard_details(&self) -> PyResult<Vec<ShardDetail>> {
        calls::shard_details(self.inner.as_async())
    }

    /// The reader's state; `degraded` when the manifest is older than
    /// `staleness_threshold` (seconds or a `timedelta`).
    #[pyo3(signature = (staleness_threshold=None))]
    fn health(&self, staleness_threshold: Option<&Bound<'_, PyAny>>) -> PyResult<ReaderHealth> {
        calls::health(self.inner.as_async(), staleness_threshold)
    }

    /// Re-reads `_CURRENT` and swaps to a new manifest if there is one.
    /// True when it changed; False when it did not or the refresh failed
    /// (as the reference; the current snapshot stays in service).
    /// `raise_on_error=True` raises the failure instead.
    #[pyo3(signature = (*, raise_on_error=false))]
    fn refresh(&self, py: Python<'_>, raise_on_error: bool) -> PyResult<bool> {
        match py.detach(|| self.inner.refresh()) {
            Ok(changed) => Ok(changed),
            Err(e) if raise_on_error => Err(crate::errors::to_py(e)),
            Err(_) => Ok(false),
        }
    }

    /// Closes the reader; later calls raise `ReaderStateError`.
    fn close(&self) {
        self.inner.close();
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, _exc: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.inner.close();
        false
    }

    fn __repr__(&self) -> String {
        match self.inner.manifest_ref() {
            Ok(m) => format!("ShardedVectorReader(manifest={:?})", m.url),
            Err(_) => "ShardedVectorReader(closed)".to_string(),
        }
    }
}
