//! `shardvec._shardvec`: the Python extension module behind the `shardvec`
//! package (PyO3, abi3 for CPython ≥ 3.9).
//!
//! It exposes the library's readers with the reference Python library's
//! API (shardyfusion's `ShardedVectorReader` and
//! `AsyncShardedVectorReader`): the same constructor keywords where they
//! make sense, the same methods and result attributes, exception classes
//! named like the reference's. Nothing of the format, routing or merging
//! is written here: every call goes to the `shardvec` crate.
//!
//! - [`reader`]: the blocking reader. Searches release the GIL, so Python
//!   threads search in parallel; a float32 C-contiguous numpy query is
//!   read in place, anything else converted once.
//! - [`aio`]: the asyncio reader, its futures driven by a tokio runtime of
//!   the library's own (through `pyo3-async-runtimes`).
//! - [`convert`]: Python values in (queries, keyword arguments, store
//!   options) and results out.
//! - [`writer`]: `shardvec.build`, a snapshot from numpy arrays on one
//!   machine (the library's writer).
//! - [`plan`]: `shardvec.BuildPlan` and `shardvec.train_centroids`, the
//!   building blocks of distributed builds (`shardvec.distributed` drives
//!   them on Dask and Ray).
//! - [`errors`]: `shardvec::Error` onto the exception classes defined in
//!   `shardvec/errors.py`, by kind.

mod aio;
mod convert;
mod errors;
mod plan;
mod reader;
mod writer;

use pyo3::prelude::*;

/// The extension module.
#[pymodule]
fn _shardvec(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<reader::ShardedVectorReader>()?;
    m.add_class::<aio::AsyncShardedVectorReader>()?;
    m.add_class::<convert::SearchResult>()?;
    m.add_class::<convert::SearchResponse>()?;
    m.add_class::<convert::SnapshotInfo>()?;
    m.add_class::<convert::ShardDetail>()?;
    m.add_class::<convert::ReaderHealth>()?;
    m.add_function(wrap_pyfunction!(writer::build, m)?)?;
    m.add_class::<plan::BuildPlan>()?;
    m.add_function(wrap_pyfunction!(plan::train_centroids, m)?)?;
    // The writer's training defaults, for `shardvec.distributed`.
    use shardvec::writer::train;
    m.add("DEFAULT_TRAIN_SAMPLE", train::DEFAULT_TRAIN_SAMPLE)?;
    m.add("DEFAULT_SEED", train::DEFAULT_SEED)?;
    m.add("DEFAULT_MAX_ITER", train::DEFAULT_MAX_ITER)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
