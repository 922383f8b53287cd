//! Python values in and out: queries, keyword arguments, store options,
//! and the result classes (`SearchResult`, `SearchResponse`,
//! `SnapshotInfo`, `ShardDetail`, `ReaderHealth`).

use std::num::NonZeroUsize;
use std::time::Duration;

use numpy::{PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use shardvec::core::{RoutingContext, ShardId, VectorId};
use shardvec::{Filter, ReaderOptions, SearchOptions, StoreOptions};

use crate::errors::{invalid, to_py};

/// A query vector: borrowed from a float32 C-contiguous numpy array, or
/// converted once (any other float dtype, a non-contiguous view, a list).
pub enum Query<'py> {
    /// Read in place. The array must not change while a search runs.
    Borrowed(PyReadonlyArray1<'py, f32>),
    /// Converted.
    Owned(Vec<f32>),
}

impl<'py> Query<'py> {
    /// Reads `obj` as a 1-D vector.
    pub fn extract(obj: &Bound<'py, PyAny>) -> PyResult<Query<'py>> {
        if let Ok(arr) = obj.extract::<PyReadonlyArray1<'py, f32>>() {
            // Contiguous and aligned (an array unpickled from an
            // out-of-band buffer may be neither).
            if arr.as_slice().is_ok() {
                return Ok(Query::Borrowed(arr));
            }
        }
        let converted = numpy_f32(obj)?;
        let arr: PyReadonlyArray1<'py, f32> = converted
            .extract()
            .map_err(|_| invalid("the query must be a 1-D sequence of numbers"))?;
        Ok(Query::Owned(arr.as_slice()?.to_vec()))
    }

    /// The values.
    pub fn as_slice(&self) -> PyResult<&[f32]> {
        match self {
            Query::Borrowed(arr) => Ok(arr.as_slice()?),
            Query::Owned(v) => Ok(v),
        }
    }
}

/// `numpy.require(obj, numpy.float32, "CA")`: C-contiguous and aligned
/// (`ascontiguousarray` keeps a misaligned array, as Dask's unpickled
/// partitions can be), copied only if it is not already.
fn numpy_f32<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let np = obj.py().import("numpy")?;
    np.call_method1("require", (obj, np.getattr("float32")?, "CA"))
        .map_err(|e| invalid(format!("the query is not numeric: {e}")))
}

/// A batch of queries (a 2-D array or a sequence of vectors), one `Vec`
/// per row.
pub fn queries(obj: &Bound<'_, PyAny>) -> PyResult<Vec<Vec<f32>>> {
    let converted = numpy_f32(obj)?;
    if let Ok(arr) = converted.extract::<PyReadonlyArray2<'_, f32>>() {
        let dim = arr.shape()[1];
        let flat = arr.as_slice()?;
        return Ok(if dim == 0 {
            vec![Vec::new(); arr.shape()[0]]
        } else {
            flat.chunks(dim).map(<[f32]>::to_vec).collect()
        });
    }
    Err(invalid(
        "queries must be a 2-D array or a sequence of equal-length vectors",
    ))
}

/// The per-search keyword arguments.
pub struct SearchArgs<'py> {
    pub shard_ids: Option<Vec<u32>>,
    pub num_probes: Option<u32>,
    pub routing_context: Option<Bound<'py, PyAny>>,
    pub filter: Option<Bound<'py, PyAny>>,
    pub min_results: Option<usize>,
    pub max_probes: Option<u32>,
}

impl<'py> SearchArgs<'py> {
    /// The arguments of `route_vector`: routing only.
    pub fn routing(num_probes: Option<u32>, routing_context: Option<Bound<'py, PyAny>>) -> Self {
        SearchArgs {
            shard_ids: None,
            num_probes,
            routing_context,
            filter: None,
            min_results: None,
            max_probes: None,
        }
    }

    /// The library's options.
    pub fn options(&self) -> PyResult<SearchOptions> {
        let mut opts = SearchOptions::new();
        if let Some(ids) = &self.shard_ids {
            opts = opts.shard_ids(ids.iter().copied().map(ShardId).collect::<Vec<_>>());
        }
        if let Some(n) = self.num_probes {
            opts = opts.num_probes(n);
        }
        if let Some(ctx) = &self.routing_context {
            let json: serde_json::Value = pythonize::depythonize(ctx)
                .map_err(|e| invalid(format!("routing_context: {e}")))?;
            opts = opts
                .routing_context(RoutingContext::from_json(&json).map_err(|e| to_py(e.into()))?);
        }
        if let Some(f) = &self.filter {
            opts = opts.filter(filter(f)?);
        }
        if let Some(n) = self.min_results {
            opts = opts.min_results(n);
        }
        if let Some(n) = self.max_probes {
            opts = opts.max_probes(n);
        }
        Ok(opts)
    }
}

/// A filter: its JSON text, or the same as Python dicts and lists.
fn filter(obj: &Bound<'_, PyAny>) -> PyResult<Filter> {
    let parsed = match obj.extract::<String>() {
        Ok(text) => Filter::parse_str(&text),
        Err(_) => {
            let json: serde_json::Value =
                pythonize::depythonize(obj).map_err(|e| invalid(format!("filter: {e}")))?;
            Filter::parse(&json)
        }
    };
    parsed.map_err(|e| to_py(shardvec::core::Error::InvalidFilter(Box::new(e)).into()))
}

/// The reader's constructor keywords (the reference's names).
pub struct ReaderArgs<'py> {
    pub max_fallback_attempts: usize,
    pub max_cached_shards: Option<usize>,
    pub preload_shards: bool,
    pub rate_limiter: Option<Bound<'py, PyAny>>,
    pub s3_connection_options: Option<Bound<'py, PyDict>>,
    pub credentials: Option<Bound<'py, PyAny>>,
    pub max_concurrency: Option<usize>,
    pub prefetch_on_refresh: bool,
}

impl ReaderArgs<'_> {
    /// The library's options.
    pub fn options(&self) -> PyResult<ReaderOptions> {
        let mut opts = ReaderOptions::new()
            .max_fallback_attempts(self.max_fallback_attempts)
            .preload_shards(self.preload_shards)
            .prefetch_on_refresh(self.prefetch_on_refresh)
            .store_options(self.store()?);
        if let Some(n) = self.max_cached_shards {
            let n = NonZeroUsize::new(n).ok_or_else(|| invalid("max_cached_shards must be ≥ 1"))?;
            opts = opts.max_cached_shards(n);
        }
        if let Some(n) = self.max_concurrency {
            opts = opts.max_concurrency(n);
        }
        if let Some(limiter) = &self.rate_limiter {
            let (rate, burst) = rate_limit(limiter)?;
            opts = opts.rate_limit(rate, burst).map_err(to_py)?;
        }
        Ok(opts)
    }

    /// Store options from `s3_connection_options` and `credentials`.
    fn store(&self) -> PyResult<StoreOptions> {
        store_options(
            self.s3_connection_options.as_ref(),
            self.credentials.as_ref(),
        )
    }
}

/// Store options from the reference's `s3_connection_options` and
/// `credentials` (the `AWS_*` environment applies too).
pub fn store_options(
    s3_connection_options: Option<&Bound<'_, PyDict>>,
    credentials: Option<&Bound<'_, PyAny>>,
) -> PyResult<StoreOptions> {
    let mut store = StoreOptions::new();
    if let Some(conn) = s3_connection_options {
        for (key, value) in conn.iter() {
            let key: String = key.extract()?;
            if value.is_none() {
                continue;
            }
            store = match key.as_str() {
                "endpoint_url" => {
                    let url: String = value.extract()?;
                    let http = url.starts_with("http://");
                    store.endpoint(url).allow_http(http)
                }
                "region_name" => store.region(value.extract::<String>()?),
                "addressing_style" => {
                    let style: String = value.extract()?;
                    store.option(
                        "aws_virtual_hosted_style_request",
                        (style == "virtual").to_string(),
                    )
                }
                "verify_ssl" | "verify" => match value.extract::<bool>() {
                    Ok(verify) => store.option("allow_invalid_certificates", (!verify).to_string()),
                    Err(_) => store,
                },
                "connect_timeout" => store.option("connect_timeout", seconds(&value)?),
                "read_timeout" => store.option("timeout", seconds(&value)?),
                "max_attempts" | "retries" => {
                    let n: usize = value.extract()?;
                    store.retry(n, Duration::from_secs(180))
                }
                // Other botocore settings (signature version, proxies,
                // ...) have no equivalent here; they are ignored.
                _ => store,
            };
        }
    }
    if let Some(creds) = credentials {
        let get = |names: &[&str]| -> PyResult<Option<String>> {
            for name in names {
                let value = match creds.cast::<PyDict>() {
                    Ok(d) => d.get_item(name)?,
                    Err(_) => creds.getattr(*name).ok(),
                };
                if let Some(v) = value.filter(|v| !v.is_none()) {
                    return Ok(Some(v.extract()?));
                }
            }
            Ok(None)
        };
        let key = get(&["access_key_id", "aws_access_key_id"])?;
        let secret = get(&["secret_access_key", "aws_secret_access_key"])?;
        match (key, secret) {
            (Some(k), Some(s)) => store = store.credentials(k, s),
            (None, None) => {}
            _ => {
                return Err(invalid(
                    "credentials need both an access key id and a secret access key",
                ))
            }
        }
        if let Some(token) = get(&["session_token", "aws_session_token"])? {
            store = store.option("aws_session_token", token);
        }
    }
    Ok(store)
}

/// A duration in seconds as object_store writes it (`"2.5s"`).
fn seconds(value: &Bound<'_, PyAny>) -> PyResult<String> {
    let s: f64 = value.extract()?;
    if !(s.is_finite() && s > 0.0) {
        return Err(invalid(format!(
            "a timeout must be positive seconds, got {s}"
        )));
    }
    Ok(format!("{}ms", (s * 1000.0).round() as u64))
}

/// `(rate per second, burst)` from a limiter: a `(rate, burst)` tuple, a
/// dict, or an object with `rate`/`rate_per_second` and
/// `burst`/`capacity`.
fn rate_limit(obj: &Bound<'_, PyAny>) -> PyResult<(f64, u32)> {
    if let Ok((rate, burst)) = obj.extract::<(f64, u32)>() {
        return Ok((rate, burst));
    }
    let get = |names: &[&str]| -> Option<Bound<'_, PyAny>> {
        names.iter().find_map(|n| match obj.cast::<PyDict>() {
            Ok(d) => d.get_item(n).ok().flatten(),
            Err(_) => obj.getattr(*n).ok(),
        })
    };
    let rate = get(&["rate", "rate_per_second", "per_second"])
        .ok_or_else(|| invalid("rate_limiter needs a rate (per second)"))?
        .extract::<f64>()?;
    let burst = match get(&["burst", "capacity", "max_tokens"]) {
        Some(b) => b.extract::<f64>()?.max(1.0) as u32,
        None => rate.max(1.0).ceil() as u32,
    };
    Ok((rate, burst))
}

/// One hit.
#[pyclass(frozen, module = "shardvec")]
pub struct SearchResult {
    /// The vector's id (int or str).
    #[pyo3(get)]
    pub id: Py<PyAny>,
    /// Its distance, as the shard's backend reports it.
    #[pyo3(get)]
    pub score: f32,
    /// Its JSON payload (None without one).
    #[pyo3(get)]
    pub payload: Py<PyAny>,
    /// The shard it came from.
    #[pyo3(get)]
    pub shard_id: Option<u32>,
}

#[pymethods]
impl SearchResult {
    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "SearchResult(id={}, score={}, shard_id={:?})",
            self.id
                .bind(py)
                .repr()
                .map(|r| r.to_string())
                .unwrap_or_default(),
            self.score,
            self.shard_id
        )
    }

    /// `{"id", "score", "payload"}`.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("id", self.id.bind(py))?;
        d.set_item("score", self.score)?;
        d.set_item("payload", self.payload.bind(py))?;
        Ok(d)
    }
}

/// The answer of one search.
#[pyclass(frozen, module = "shardvec")]
pub struct SearchResponse {
    /// Global top-k, best first.
    #[pyo3(get)]
    pub results: Py<PyList>,
    /// Shards searched.
    #[pyo3(get)]
    pub num_shards_queried: usize,
    /// Wall time of the search, in milliseconds.
    #[pyo3(get)]
    pub latency_ms: f64,
    /// The routed shards, in probe order.
    #[pyo3(get)]
    pub route: Vec<u32>,
    /// The manifest the search ran against.
    #[pyo3(get)]
    pub manifest_ref: String,
    /// With `min_results`: how far the search probed (a dict), else None.
    #[pyo3(get)]
    pub probing: Py<PyAny>,
}

#[pymethods]
impl SearchResponse {
    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "SearchResponse(results={}, num_shards_queried={}, latency_ms={:.3})",
            self.results.bind(py).len(),
            self.num_shards_queried,
            self.latency_ms
        )
    }

    fn __len__(&self, py: Python<'_>) -> usize {
        self.results.bind(py).len()
    }
}

/// Python's value of a JSON value.
fn json_to_py(py: Python<'_>, v: &serde_json::Value) -> PyResult<Py<PyAny>> {
    Ok(pythonize::pythonize(py, v)
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?
        .unbind())
}

impl SearchResponse {
    /// The Python object of a library response.
    pub fn from_rust(py: Python<'_>, r: shardvec::SearchResponse) -> PyResult<SearchResponse> {
        let results = PyList::empty(py);
        for hit in r.results {
            let id = match hit.id {
                VectorId::Int(i) => i.into_pyobject(py)?.into_any().unbind(),
                VectorId::Str(s) => s.into_pyobject(py)?.into_any().unbind(),
            };
            let payload = match &hit.payload {
                Some(p) => json_to_py(py, p)?,
                None => py.None(),
            };
            let result = SearchResult {
                id,
                score: hit.score,
                payload,
                shard_id: hit.shard_id.map(|s| s.0),
            };
            results.append(Py::new(py, result)?)?;
        }
        let probing = match &r.probing {
            Some(p) => json_to_py(
                py,
                &serde_json::to_value(p)
                    .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?,
            )?,
            None => py.None(),
        };
        Ok(SearchResponse {
            results: results.unbind(),
            num_shards_queried: r.num_shards_queried,
            latency_ms: r.latency.as_secs_f64() * 1000.0,
            route: r.route.iter().map(|s| s.0).collect(),
            manifest_ref: r.manifest_ref.url,
            probing,
        })
    }
}

/// Snapshot-level facts (`snapshot_info()`).
#[pyclass(frozen, get_all, module = "shardvec")]
pub struct SnapshotInfo {
    /// Run that produced the snapshot.
    pub run_id: String,
    /// Number of shards.
    pub num_dbs: u32,
    /// Vector dimension.
    pub dim: usize,
    /// `cosine`, `l2` or `dot_product`.
    pub metric: String,
    /// `cluster`, `lsh`, `explicit` or `cel`.
    pub sharding: String,
    /// URL of the manifest.
    pub manifest_ref: String,
    /// Vectors in all shards.
    pub total_vectors: u64,
}

#[pymethods]
impl SnapshotInfo {
    fn __repr__(&self) -> String {
        format!(
            "SnapshotInfo(run_id={:?}, num_dbs={}, dim={}, metric={:?}, sharding={:?}, total_vectors={})",
            self.run_id, self.num_dbs, self.dim, self.metric, self.sharding, self.total_vectors
        )
    }
}

impl From<shardvec::core::SnapshotInfo> for SnapshotInfo {
    fn from(i: shardvec::core::SnapshotInfo) -> Self {
        SnapshotInfo {
            run_id: i.run_id,
            num_dbs: i.num_dbs,
            dim: i.dim,
            metric: i.metric.as_str().to_string(),
            sharding: i.sharding.as_str().to_string(),
            manifest_ref: i.manifest_ref,
            total_vectors: i.total_vectors,
        }
    }
}

/// One shard (`shard_details()`).
#[pyclass(frozen, get_all, module = "shardvec")]
pub struct ShardDetail {
    /// Shard id.
    pub db_id: u32,
    /// Its recorded URL (None for an empty shard).
    pub db_url: Option<String>,
    /// Vectors in it.
    pub vector_count: u64,
    /// Content identity of its bytes.
    pub checkpoint_id: Option<String>,
}

#[pymethods]
impl ShardDetail {
    fn __repr__(&self) -> String {
        format!(
            "ShardDetail(db_id={}, vector_count={}, db_url={:?})",
            self.db_id, self.vector_count, self.db_url
        )
    }
}

impl From<shardvec::core::ShardDetail> for ShardDetail {
    fn from(d: shardvec::core::ShardDetail) -> Self {
        ShardDetail {
            db_id: d.db_id.0,
            db_url: d.db_url,
            vector_count: d.vector_count,
            checkpoint_id: d.checkpoint_id,
        }
    }
}

/// The reader's state (`health()`).
#[pyclass(frozen, get_all, module = "shardvec")]
pub struct ReaderHealth {
    /// `healthy`, `degraded` (manifest older than the threshold) or
    /// `unhealthy` (closed).
    pub status: String,
    /// The manifest served.
    pub manifest_ref: Option<String>,
    /// Its age in seconds.
    pub manifest_age_seconds: Option<f64>,
    /// Number of shards.
    pub num_shards: u32,
    /// Whether the reader is closed.
    pub is_closed: bool,
}

#[pymethods]
impl ReaderHealth {
    fn __repr__(&self) -> String {
        format!(
            "ReaderHealth(status={:?}, num_shards={}, is_closed={})",
            self.status, self.num_shards, self.is_closed
        )
    }
}

impl From<shardvec::Health> for ReaderHealth {
    fn from(h: shardvec::Health) -> Self {
        ReaderHealth {
            status: match h.status {
                shardvec::HealthStatus::Healthy => "healthy",
                shardvec::HealthStatus::Degraded => "degraded",
                shardvec::HealthStatus::Unhealthy => "unhealthy",
            }
            .to_string(),
            manifest_ref: h.manifest_ref.map(|m| m.url),
            manifest_age_seconds: h.manifest_age.map(|a| a.as_secs_f64()),
            num_shards: h.num_shards,
            is_closed: h.is_closed,
        }
    }
}

/// A staleness threshold: seconds, or a `datetime.timedelta`.
pub fn staleness(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Duration>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(None);
    };
    let secs: f64 = match obj.call_method0("total_seconds") {
        Ok(s) => s.extract()?,
        Err(_) => obj.extract()?,
    };
    Duration::try_from_secs_f64(secs).map(Some).map_err(|_| {
        invalid(format!(
            "staleness_threshold must be ≥ 0 seconds, got {secs}"
        ))
    })
}

/// The calls both readers answer without waiting, on the async reader
/// (the blocking one lends its own with `as_async`).
pub mod calls {
    use pyo3::prelude::*;

    use super::{staleness, Query, ReaderHealth, SearchArgs, ShardDetail, SnapshotInfo};
    use crate::errors::IntoPyResult;

    /// `route_vector`.
    pub fn route_vector<'py>(
        reader: &shardvec::AsyncShardedVectorReader,
        query: &Bound<'py, PyAny>,
        num_probes: Option<u32>,
        routing_context: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Vec<u32>> {
        let opts = SearchArgs::routing(num_probes, routing_context).options()?;
        let query = Query::extract(query)?;
        let route = reader.route(query.as_slice()?, &opts).py()?;
        Ok(route.iter().map(|s| s.0).collect())
    }

    /// `snapshot_info`.
    pub fn snapshot_info(reader: &shardvec::AsyncShardedVectorReader) -> PyResult<SnapshotInfo> {
        Ok(reader.snapshot_info().py()?.into())
    }

    /// `shard_details`.
    pub fn shard_details(
        reader: &shardvec::AsyncShardedVectorReader,
    ) -> PyResult<Vec<ShardDetail>> {
        Ok(reader
            .shard_details()
            .py()?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// `health`.
    pub fn health(
        reader: &shardvec::AsyncShardedVectorReader,
        staleness_threshold: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<ReaderHealth> {
        Ok(reader.health(staleness(staleness_threshold)?).into())
    }
}
