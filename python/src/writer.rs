//! `shardvec.build`: build and publish a snapshot from numpy arrays on one
//! machine, with the library's writer (the CLI's `build`): routing trained
//! or given, shards written and uploaded in parallel, published in two
//! phases. Returns the build summary as a dict.

use pyo3::prelude::*;
use pyo3::types::PyDict;
use shardvec::backend::BackendKind;
use shardvec::core::npy::Matrix;
use shardvec::core::{Metric, ShardId, VectorId};
use shardvec::writer::{self, Input, Record, StrategyConfig, WriterOptions};
use shardvec::StoreOptions;

use crate::convert::{queries, store_options};
use crate::errors::{invalid, IntoPyResult};

/// Builds a snapshot at `prefix` from `vectors` (`[n, dim]`, any float
/// dtype) and publishes it. `ids`: n ints or strs (default `0..n`);
/// `payloads`: n JSON-able values or None; `strategy`: `cluster`
/// (`centroids` `[num_dbs, dim]` or trained on a seeded sample), `lsh`
/// (`num_hash_bits`) or `explicit` (`shard_ids`); `backend`:
/// `sqlite-vec` or `lancedb`. A publish over a newer one fails unless
/// `force`.
#[pyfunction]
#[pyo3(signature = (
    prefix, vectors, *, num_dbs, metric="l2", strategy="cluster", ids=None, payloads=None,
    shard_ids=None, num_probes=1, num_hash_bits=None, centroids=None, seed=None,
    train_sample=None, backend="sqlite-vec", run_id=None, s3_connection_options=None,
    credentials=None, force=false
))]
#[allow(clippy::too_many_arguments)]
pub fn build<'py>(
    py: Python<'py>,
    prefix: String,
    vectors: &Bound<'py, PyAny>,
    num_dbs: u32,
    metric: &str,
    strategy: &str,
    ids: Option<Vec<Bound<'py, PyAny>>>,
    payloads: Option<Vec<Bound<'py, PyAny>>>,
    shard_ids: Option<Vec<u32>>,
    num_probes: u32,
    num_hash_bits: Option<u32>,
    centroids: Option<&Bound<'py, PyAny>>,
    seed: Option<u64>,
    train_sample: Option<usize>,
    backend: &str,
    run_id: Option<String>,
    s3_connection_options: Option<Bound<'py, PyDict>>,
    credentials: Option<Bound<'py, PyAny>>,
    force: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let rows = queries(vectors)?;
    let records = records(&rows, ids, payloads, shard_ids)?;
    let opts = Options {
        num_dbs,
        metric,
        strategy,
        centroids,
        num_hash_bits,
        num_probes,
        seed,
        train_sample,
        backend,
        run_id,
        force,
    }
    .writer_options(store_options(
        s3_connection_options.as_ref(),
        credentials.as_ref(),
    )?)?;
    let input = Input::memory(records);
    let summary = py
        .detach(|| {
            pyo3_async_runtimes::tokio::get_runtime()
                .block_on(writer::build(&prefix, &input, &opts))
        })
        .py()?;
    let json = serde_json::to_value(&summary)
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
    pythonize::pythonize(py, &json)
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))
}

/// The writer keywords `build` and `BuildPlan.create` share.
pub struct Options<'a, 'py> {
    pub num_dbs: u32,
    pub metric: &'a str,
    pub strategy: &'a str,
    pub centroids: Option<&'a Bound<'py, PyAny>>,
    pub num_hash_bits: Option<u32>,
    pub num_probes: u32,
    pub seed: Option<u64>,
    pub train_sample: Option<usize>,
    pub backend: &'a str,
    pub run_id: Option<String>,
    pub force: bool,
}

impl Options<'_, '_> {
    /// The library's options, each keyword checked.
    pub fn writer_options(self, store: StoreOptions) -> PyResult<WriterOptions> {
        let metric = Metric::parse(self.metric).ok_or_else(|| {
            invalid(format!(
                "metric `{}`: cosine, l2 or dot_product",
                self.metric
            ))
        })?;
        let config = match self.strategy {
            "cluster" => StrategyConfig::Cluster {
                centroids: self.centroids.map(matrix).transpose()?,
            },
            "lsh" => StrategyConfig::Lsh {
                num_hash_bits: self
                    .num_hash_bits
                    .ok_or_else(|| invalid("lsh needs num_hash_bits"))?,
            },
            "explicit" => StrategyConfig::Explicit,
            other => {
                return Err(invalid(format!(
                    "strategy `{other}`: cluster, lsh or explicit (CEL snapshots: the CLI's build)"
                )))
            }
        };
        let mut opts = WriterOptions::new(self.num_dbs, metric, config)
            .num_probes(self.num_probes)
            .force(self.force)
            .store_options(store)
            .backend(match self.backend {
                "sqlite-vec" => BackendKind::SqliteVec,
                "lancedb" => BackendKind::Lancedb,
                other => return Err(invalid(format!("backend `{other}`: sqlite-vec or lancedb"))),
            });
        if let Some(s) = self.seed {
            opts = opts.seed(s);
        }
        if let Some(n) = self.train_sample {
            opts = opts.train_sample(n);
        }
        if let Some(id) = self.run_id {
            opts = opts.run_id(id);
        }
        Ok(opts)
    }
}

/// A `[rows, cols]` float matrix.
pub fn matrix(obj: &Bound<'_, PyAny>) -> PyResult<Matrix> {
    let rows = queries(obj)?;
    let cols = rows.first().map_or(0, Vec::len);
    let n = rows.len();
    Matrix::new(n, cols, rows.into_iter().flatten().collect())
        .map_err(|e| crate::errors::to_py(e.into()))
}

/// One record per row, with its id, payload and shard.
pub fn records(
    rows: &[Vec<f32>],
    ids: Option<Vec<Bound<'_, PyAny>>>,
    payloads: Option<Vec<Bound<'_, PyAny>>>,
    shard_ids: Option<Vec<u32>>,
) -> PyResult<Vec<Record>> {
    let n = rows.len();
    let same = |what: &str, len: usize| {
        if len == n {
            Ok(())
        } else {
            Err(invalid(format!("{len} {what} for {n} vectors")))
        }
    };
    if let Some(v) = &ids {
        same("ids", v.len())?;
    }
    if let Some(v) = &payloads {
        same("payloads", v.len())?;
    }
    if let Some(v) = &shard_ids {
        same("shard_ids", v.len())?;
    }
    let mut out = Vec::with_capacity(n);
    for (i, row) in rows.iter().enumerate() {
        let id = match ids.as_ref().and_then(|v| v.get(i)) {
            None => VectorId::Int(i as i64),
            Some(obj) => match obj.extract::<i64>() {
                Ok(int) => VectorId::Int(int),
                Err(_) => VectorId::Str(
                    obj.extract::<String>()
                        .map_err(|_| invalid(format!("id {i} is neither an int nor a str")))?,
                ),
            },
        };
        let mut record = Record::new(id, row.clone());
        if let Some(p) = payloads
            .as_ref()
            .and_then(|v| v.get(i))
            .filter(|p| !p.is_none())
        {
            let json: serde_json::Value =
                pythonize::depythonize(p).map_err(|e| invalid(format!("payload {i}: {e}")))?;
            record = record.payload(json);
        }
        if let Some(s) = shard_ids.as_ref().and_then(|v| v.get(i)) {
            record = record.shard_id(ShardId(*s));
        }
        out.push(record);
    }
    Ok(out)
}
