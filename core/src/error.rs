//! The one error type of `shardvec-core`.
//!
//! Every variant names the object, field, shard or value at fault, so a
//! message read in a log (or in a browser console, through the wasm package)
//! says what failed and where without a stack trace.

use alloc::string::String;

use crate::types::Strategy;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// Everything that can go wrong while parsing snapshot files or routing.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- SQLite image -------------------------------------------------
    /// The bytes are not an SQLite database image.
    #[error("not an SQLite database: {0}")]
    NotSqlite(&'static str),
    /// The SQLite image is malformed (bad page, cell, record or b-tree).
    #[error("corrupt SQLite image (page {page}): {reason}")]
    CorruptSqlite {
        /// 1-based page number where the problem was found (0: file header).
        page: u32,
        /// What is wrong.
        reason: String,
    },
    /// The SQLite image uses a feature this reader does not implement.
    #[error("unsupported SQLite feature: {0}")]
    UnsupportedSqlite(String),
    /// A table the manifest needs is absent.
    #[error("manifest table `{0}` not found")]
    MissingTable(String),
    /// A column the manifest needs is absent from its table.
    #[error("manifest column `{table}.{column}` not found")]
    MissingColumn {
        /// Table name.
        table: String,
        /// Column name.
        column: String,
    },

    // ---- manifest, _CURRENT, names -------------------------------------
    /// A manifest field has the wrong type or an invalid value.
    #[error("manifest field `{field}`: {reason}")]
    InvalidManifest {
        /// Dotted path of the field, e.g. `build_meta.num_dbs` or
        /// `custom.vector.metric`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `custom.vector` is absent or not an object.
    #[error("not a vector snapshot: `custom.vector` is missing or not an object")]
    NotVectorSnapshot,
    /// The `_CURRENT` pointer is malformed.
    #[error("_CURRENT pointer: {0}")]
    InvalidCurrent(String),
    /// A manifest directory name is not `<timestamp>_run_id=<id>`.
    #[error("manifest name `{name}`: {reason}")]
    InvalidManifestName {
        /// The offending name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    // ---- .npy -----------------------------------------------------------
    /// A `.npy` file is malformed or has the wrong shape.
    #[error(".npy {artefact}: {reason}")]
    Npy {
        /// Which artefact (e.g. `centroids.npy`), or `npy` when unknown.
        artefact: String,
        /// What is wrong.
        reason: String,
    },
    /// A routing artefact the strategy needs was not provided.
    #[error("{strategy} routing needs the `{artefact}` artefact")]
    MissingArtefact {
        /// Strategy that needs it.
        strategy: Strategy,
        /// Artefact name (`centroids.npy`, `hyperplanes.npy`).
        artefact: &'static str,
    },

    // ---- queries ----------------------------------------------------------
    /// The query has the wrong number of components.
    #[error("query has dimension {got}, the snapshot has dimension {expected}")]
    DimensionMismatch {
        /// Dimension of the snapshot.
        expected: usize,
        /// Dimension of the query.
        got: usize,
    },
    /// The query contains NaN or an infinity.
    #[error("query component {index} is not finite ({value})")]
    NonFiniteQuery {
        /// Index of the first bad component.
        index: usize,
        /// Its value.
        value: f32,
    },
    /// `num_probes` was 0.
    #[error("num_probes must be at least 1")]
    ZeroProbes,
    /// A shard id outside `[0, num_dbs)`.
    #[error("shard id {id} is out of range: the snapshot has {num_dbs} shards")]
    ShardOutOfRange {
        /// The offending id.
        id: i128,
        /// Number of shards of the snapshot.
        num_dbs: u32,
    },
    /// The strategy needs an input the search did not supply.
    #[error("{strategy} routing needs {needs}")]
    MissingRoutingInput {
        /// The snapshot's strategy.
        strategy: Strategy,
        /// What is missing (`shard_ids`, `routing_context`).
        needs: &'static str,
    },

    // ---- CEL ------------------------------------------------------------
    /// CEL routing is not compiled in (feature `cel`).
    #[error("this build cannot route CEL snapshots (feature `cel` is off)")]
    CelUnsupported,
    /// The manifest's CEL expression does not compile.
    #[error("CEL expression `{expr}` does not compile: {reason}")]
    CelCompile {
        /// The expression.
        expr: String,
        /// Parser message.
        reason: String,
    },
    /// A variable the expression uses is missing from the routing context.
    #[error("CEL variable `{0}` is missing from the routing context")]
    CelVariableMissing(String),
    /// A routing-context value has the wrong type for its CEL column.
    #[error("CEL variable `{name}` must be {expected}, got {got}")]
    CelVariableType {
        /// Variable name.
        name: String,
        /// Declared CEL type.
        expected: &'static str,
        /// What was supplied.
        got: String,
    },
    /// The expression failed at run time.
    #[error("CEL evaluation failed: {0}")]
    CelEval(String),
    /// The expression's value is not an integer shard id.
    #[error("CEL result {0} is not an integer shard id")]
    CelResultNotInteger(String),
    /// A request body is not a valid request (JSON shape or types).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// A payload filter is malformed (the error names the place in it).
    #[error("invalid filter: {0}")]
    InvalidFilter(alloc::boxed::Box<crate::filter::FilterError>),
    /// The expression's value is not one of the manifest's `routing_values`.
    #[error("CEL result {0} is not one of the snapshot's routing_values")]
    UnknownRoutingValue(String),
}

impl From<crate::filter::FilterError> for Error {
    fn from(e: crate::filter::FilterError) -> Self {
        Error::InvalidFilter(alloc::boxed::Box::new(e))
    }
}

impl Error {
    /// Whether the error is the caller's: the query, its options or its
    /// routing context (dimension, non-finite values, zero probes, a shard
    /// out of range, CEL inputs and results). Otherwise the snapshot's
    /// files are at fault.
    pub fn is_request_error(&self) -> bool {
        matches!(
            self,
            Error::DimensionMismatch { .. }
                | Error::NonFiniteQuery { .. }
                | Error::ZeroProbes
                | Error::ShardOutOfRange { .. }
                | Error::MissingRoutingInput { .. }
                | Error::CelVariableMissing(_)
                | Error::CelVariableType { .. }
                | Error::CelEval(_)
                | Error::CelResultNotInteger(_)
                | Error::UnknownRoutingValue(_)
                | Error::InvalidRequest(_)
                | Error::InvalidFilter(_)
        )
    }

    pub(crate) fn field(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidManifest {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn corrupt(page: u32, reason: impl Into<String>) -> Self {
        Error::CorruptSqlite {
            page,
            reason: reason.into(),
        }
    }

    pub(crate) fn npy(artefact: &str, reason: impl Into<String>) -> Self {
        Error::Npy {
            artefact: artefact.into(),
            reason: reason.into(),
        }
    }
}
