//! `shardvec::Error` as Python exceptions.
//!
//! The classes live in `shardvec/errors.py` (so they can also derive from
//! Python's own `ValueError`, `TimeoutError`, ...); this module picks one
//! by the error's variant and kind and raises it with the Rust message,
//! its chain of causes included.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use shardvec::{Error, ErrorKind};

/// The name of the exception class for `e` in `shardvec.errors`.
fn class_name(e: &Error) -> &'static str {
    match e {
        Error::Closed | Error::BlockingInAsync => "ReaderStateError",
        Error::Manifest { .. } => "ManifestParseError",
        Error::Backend { .. } | Error::Cache { .. } | Error::BackendNotCompiled { .. } => {
            "DbAdapterError"
        }
        _ => match e.kind() {
            ErrorKind::InvalidInput => "ConfigValidationError",
            ErrorKind::NotFound => "SnapshotNotFoundError",
            ErrorKind::Conflict => "ConflictError",
            ErrorKind::Unavailable => "ReaderStateError",
            ErrorKind::Timeout => "ShardvecTimeoutError",
            ErrorKind::Upstream => "ObjectStoreError",
            ErrorKind::Corrupt => "ManifestParseError",
            ErrorKind::Unsupported => "DbAdapterError",
            ErrorKind::Internal => "ShardvecError",
        },
    }
}

/// The message: the error and each of its causes, as `a: b: c`.
fn message(e: &Error) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let part = c.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = c.source();
    }
    text
}

/// `e` as the Python exception of its class, with `code` and `kind`
/// attributes (`backend`, `invalid_input`, ...).
pub fn to_py(e: Error) -> PyErr {
    Python::attach(|py| {
        let raised = (|| -> PyResult<PyErr> {
            let module = py.import("shardvec.errors")?;
            let class = module.getattr(class_name(&e))?;
            let exc = class.call1((message(&e),))?;
            exc.setattr("code", e.code())?;
            exc.setattr("kind", e.kind().as_str())?;
            Ok(PyErr::from_value(exc))
        })();
        raised.unwrap_or_else(|import_failed| {
            PyRuntimeError::new_err(format!("{} (and {import_failed})", message(&e)))
        })
    })
}

/// `Result<T, shardvec::Error>` into `PyResult<T>`.
pub trait IntoPyResult<T> {
    /// Maps the error with [`to_py`].
    fn py(self) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for shardvec::Result<T> {
    fn py(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}

/// A `ConfigValidationError` for a bad argument.
pub fn invalid(what: impl Into<String>) -> PyErr {
    to_py(Error::InvalidArgument(what.into()))
}
