//! `shardvec.BuildPlan` and `shardvec.train_centroids`: the distributed
//! writer's building blocks ([`shardvec::writer::plan`]) for Python
//! engines. A plan pickles (its bytes and the store keywords it was given),
//! so Dask, Ray or Spark ship it to their tasks as they ship any argument;
//! shard entries are plain dicts. The orchestration per engine is Python
//! (`shardvec/distributed.py`); every fact of routing, writing and
//! publishing stays in the library.

use numpy::{PyArray1, PyArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyTuple};
use shardvec::core::{Metric, ShardId};
use shardvec::writer::{train, BuildPlan as Plan, Record, ShardEntry};
use shardvec::SnapshotLocation;

use crate::convert::{queries, store_options};
use crate::errors::{invalid, IntoPyResult};
use crate::writer::{records, Options};

/// A build in progress, shared by the tasks of a distributed build:
/// `create` it on the driver, ship it to tasks (it pickles), `route`
/// partitions, `write_shard` each shard once its records are together,
/// then `publish` the entries on the driver (or `abort`).
#[pyclass(module = "shardvec._shardvec", frozen)]
pub struct BuildPlan {
    plan: Plan,
    /// The keywords the store was opened with, for pickling.
    s3_connection_options: Option<Py<PyDict>>,
    credentials: Option<Py<PyAny>>,
}

/// Runs the future `f` makes on the library's runtime, the GIL released.
/// The future is made on the detached thread: it need not be `Send`.
fn block_on<F, T>(py: Python<'_>, f: impl FnOnce() -> F + Send) -> T
where
    F: std::future::Future<Output = T>,
    T: Send,
{
    py.detach(|| pyo3_async_runtimes::tokio::get_runtime().block_on(f()))
}

fn to_python<'py>(py: Python<'py>, value: &impl serde::Serialize) -> PyResult<Bound<'py, PyAny>> {
    let json = serde_json::to_value(value)
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
    pythonize::pythonize(py, &json)
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))
}

#[pymethods]
impl BuildPlan {
    /// Starts a build at `prefix` of `dim`-dimensional vectors (the
    /// keywords of `shardvec.build`). CLUSTER needs `centroids`
    /// (`train_centroids` on a sample of every partition); LSH hyperplanes
    /// come from `seed`. Nothing is written until a shard is.
    #[staticmethod]
    #[pyo3(signature = (
        prefix, *, dim, num_dbs, metric="l2", strategy="cluster", centroids=None,
        num_hash_bits=None, num_probes=1, seed=None, backend="sqlite-vec", run_id=None,
        s3_connection_options=None, credentials=None, force=false
    ))]
    #[allow(clippy::too_many_arguments)]
    fn create(
        py: Python<'_>,
        prefix: String,
        dim: usize,
        num_dbs: u32,
        metric: &str,
        strategy: &str,
        centroids: Option<&Bound<'_, PyAny>>,
        num_hash_bits: Option<u32>,
        num_probes: u32,
        seed: Option<u64>,
        backend: &str,
        run_id: Option<String>,
        s3_connection_options: Option<Bound<'_, PyDict>>,
        credentials: Option<Bound<'_, PyAny>>,
        force: bool,
    ) -> PyResult<BuildPlan> {
        let store = store_options(s3_connection_options.as_ref(), credentials.as_ref())?;
        let opts = Options {
            num_dbs,
            metric,
            strategy,
            centroids,
            num_hash_bits,
            num_probes,
            seed,
            train_sample: None,
            backend,
            run_id,
            force,
        }
        .writer_options(store.clone())?;
        let location = SnapshotLocation::open(&prefix, &store).py()?;
        let plan = block_on(py, || Plan::create(location, dim, &opts)).py()?;
        Ok(BuildPlan {
            plan,
            s3_connection_options: s3_connection_options.map(Bound::unbind),
            credentials: credentials.map(Bound::unbind),
        })
    }

    /// The plan as bytes (no credentials): the manifest to publish without
    /// its shards, the routing artefacts, the writer's settings.
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let bytes = self.plan.to_bytes().py()?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// The plan `to_bytes` wrote, on its prefix's store opened with these
    /// keywords.
    #[staticmethod]
    #[pyo3(signature = (data, *, s3_connection_options=None, credentials=None))]
    fn from_bytes(
        data: &[u8],
        s3_connection_options: Option<Bound<'_, PyDict>>,
        credentials: Option<Bound<'_, PyAny>>,
    ) -> PyResult<BuildPlan> {
        let store = store_options(s3_connection_options.as_ref(), credentials.as_ref())?;
        Ok(BuildPlan {
            plan: Plan::from_bytes(data, &store).py()?,
            s3_connection_options: s3_connection_options.map(Bound::unbind),
            credentials: credentials.map(Bound::unbind),
        })
    }

    /// Pickles as its bytes and store keywords (credentials included when
    /// given: pass them through the environment instead to keep them out
    /// of the engine's task payloads).
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let this = slf.get();
        let restore = py.get_type::<BuildPlan>().getattr("_restore")?;
        let args = (
            this.to_bytes(py)?,
            this.s3_connection_options.as_ref().map(|d| d.bind(py)),
            this.credentials.as_ref().map(|c| c.bind(py)),
        );
        PyTuple::new(py, [restore, args.into_pyobject(py)?.into_any()])
    }

    #[staticmethod]
    fn _restore(
        data: &[u8],
        s3_connection_options: Option<Bound<'_, PyDict>>,
        credentials: Option<Bound<'_, PyAny>>,
    ) -> PyResult<BuildPlan> {
        BuildPlan::from_bytes(data, s3_connection_options, credentials)
    }

    /// The run id, naming every object of this build.
    #[getter]
    fn run_id(&self) -> &str {
        self.plan.run_id()
    }

    /// The number of shards.
    #[getter]
    fn num_dbs(&self) -> u32 {
        self.plan.num_dbs()
    }

    /// The vectors' dimension.
    #[getter]
    fn dim(&self) -> usize {
        self.plan.dim()
    }

    /// The snapshot prefix.
    #[getter]
    fn prefix(&self) -> &str {
        self.plan.prefix()
    }

    /// The shard of each row of `vectors` (`[n, dim]`, any float dtype), as
    /// a uint32 array; EXPLICIT plans take `shard_ids` (n ints) and check
    /// them. Refuses a wrong dimension or a non-finite value, naming the
    /// row.
    #[pyo3(signature = (vectors, *, shard_ids=None))]
    fn route<'py>(
        &self,
        py: Python<'py>,
        vectors: &Bound<'py, PyAny>,
        shard_ids: Option<Vec<u32>>,
    ) -> PyResult<Bound<'py, PyArray1<u32>>> {
        let rows = queries(vectors)?;
        if let Some(s) = &shard_ids {
            if s.len() != rows.len() {
                return Err(invalid(format!(
                    "{} shard_ids for {} vectors",
                    s.len(),
                    rows.len()
                )));
            }
        }
        let records: Vec<Record> = rows
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                let r = Record::new(i as i64, v);
                match shard_ids.as_ref().and_then(|s| s.get(i)) {
                    Some(s) => r.shard_id(ShardId(*s)),
                    None => r,
                }
            })
            .collect();
        let routes = py.detach(|| self.plan.route("vectors", &records)).py()?;
        Ok(PyArray1::from_vec(
            py,
            routes.into_iter().map(|s| s.0).collect(),
        ))
    }

    /// Writes shard `shard_id` from all of its rows (`vectors` `[n, dim]`,
    /// `ids` n ints or strs, `payloads` n JSON-able values or None), each
    /// of which must route to it; uploads it under a fresh attempt folder
    /// and returns its entry (a dict) for `publish`.
    #[pyo3(signature = (shard_id, vectors, ids, payloads=None))]
    fn write_shard<'py>(
        &self,
        py: Python<'py>,
        shard_id: u32,
        vectors: &Bound<'py, PyAny>,
        ids: Vec<Bound<'py, PyAny>>,
        payloads: Option<Vec<Bound<'py, PyAny>>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let rows = queries(vectors)?;
        let n = rows.len();
        let recs = records(&rows, Some(ids), payloads, Some(vec![shard_id; n]))?;
        let entry = block_on(py, || self.plan.write_shard(ShardId(shard_id), recs)).py()?;
        to_python(py, &entry)
    }

    /// Publishes the snapshot of `entries` (one per non-empty shard, as
    /// `write_shard` returned them): checked against the store, then the
    /// manifest and `_CURRENT`. Returns `{manifest_url, total_vectors,
    /// run_id, prefix, num_dbs}`.
    fn publish<'py>(
        &self,
        py: Python<'py>,
        entries: Vec<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let entries = entries
            .iter()
            .enumerate()
            .map(|(i, e)| {
                pythonize::depythonize::<ShardEntry>(e)
                    .map_err(|err| invalid(format!("entry {i} is not a shard entry: {err}")))
            })
            .collect::<PyResult<Vec<_>>>()?;
        let published = block_on(py, || self.plan.publish(entries)).py()?;
        let out = to_python(py, &published)?;
        out.set_item("run_id", self.plan.run_id())?;
        out.set_item("prefix", self.plan.prefix())?;
        out.set_item("num_dbs", self.plan.num_dbs())?;
        Ok(out)
    }

    /// Removes, best effort, every object this build wrote.
    fn abort(&self, py: Python<'_>) {
        block_on(py, || self.plan.abort())
    }

    fn __repr__(&self) -> String {
        format!(
            "BuildPlan(prefix={:?}, run_id={:?}, num_dbs={}, dim={})",
            self.plan.prefix(),
            self.plan.run_id(),
            self.plan.num_dbs(),
            self.plan.dim()
        )
    }
}

/// CLUSTER centroids: k-means (the library's, seeded) on `sample`
/// (`[n, dim]`, n ≥ num_dbs), as a float32 `[num_dbs, dim]` array.
#[pyfunction]
#[pyo3(signature = (
    sample, num_dbs, *, metric="l2", seed=train::DEFAULT_SEED, max_iter=train::DEFAULT_MAX_ITER
))]
pub fn train_centroids<'py>(
    py: Python<'py>,
    sample: &Bound<'py, PyAny>,
    num_dbs: usize,
    metric: &str,
    seed: u64,
    max_iter: usize,
) -> PyResult<Bound<'py, PyAny>> {
    let metric = Metric::parse(metric)
        .ok_or_else(|| invalid(format!("metric `{metric}`: cosine, l2 or dot_product")))?;
    let rows = queries(sample)?;
    let centroids = py
        .detach(|| train::kmeans(rows, num_dbs, metric, seed, max_iter))
        .py()?;
    let (k, dim) = (centroids.rows(), centroids.cols());
    Ok(PyArray1::from_vec(py, centroids.into_vec())
        .reshape([k, dim])?
        .into_any())
}
