//! The one error type of the `shardvec` crate.
//!
//! Variants follow the reference reader's failure matrix and name what
//! failed: the URL, object, shard or file.

use std::path::PathBuf;

use shardvec_core::ShardId;

/// Result alias of the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can fail while reading a snapshot.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The snapshot URL or an option is unusable.
    #[error("invalid snapshot location `{url}`: {reason}")]
    InvalidLocation {
        /// The URL or path given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An object-store request failed.
    #[error("object store: cannot {op} {location}: {source}")]
    Store {
        /// What was attempted (`get`, `head`, `list`, `put`).
        op: &'static str,
        /// The object's full URL.
        location: String,
        /// The store's error.
        #[source]
        source: object_store::Error,
    },
    /// The snapshot has no `_CURRENT` pointer (reader-state error).
    #[error("no snapshot published at {0}: `_CURRENT` does not exist")]
    NoCurrent(String),
    /// No manifest could be parsed, after trying older ones.
    #[error("manifest {url} cannot be read: {source}")]
    Manifest {
        /// The manifest that failed first (the current one).
        url: String,
        /// Why it failed.
        #[source]
        source: shardvec_core::Error,
    },
    /// A routing artefact could not be read.
    #[error("routing artefact {url}: {source}")]
    Artefact {
        /// The artefact's URL.
        url: String,
        /// Why it failed.
        #[source]
        source: shardvec_core::Error,
    },
    /// A recorded URL lies outside the snapshot.
    #[error("recorded URL {url} is outside the snapshot prefix {prefix}")]
    ForeignUrl {
        /// The URL.
        url: String,
        /// The snapshot's recorded prefix.
        prefix: String,
    },
    /// Opening or searching a shard failed (backend error).
    #[error("shard {shard} ({url}): {reason}")]
    Backend {
        /// The shard.
        shard: ShardId,
        /// Where it lives.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The local shard cache could not be written or read.
    #[error("local cache {path}: {source}")]
    Cache {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An argument is out of range (`top_k` 0, a zero worker count, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A caller pinned a manifest that is not the one served (an edge
    /// holding an older or newer snapshot than the host).
    #[error(
        "manifest {requested} is not the one served ({serving}); reload the snapshot and retry"
    )]
    StaleManifest {
        /// The manifest the caller routed with.
        requested: String,
        /// The manifest served.
        serving: String,
    },
    /// An operation ran past its time limit.
    #[error("{what} took longer than {limit:?}")]
    Timeout {
        /// What was running.
        what: &'static str,
        /// The limit.
        limit: std::time::Duration,
    },
    /// The reader was closed.
    #[error("the reader is closed")]
    Closed,
    /// A blocking reader method was called from inside a tokio runtime.
    #[error("ShardedVectorReader blocks; inside a tokio runtime use AsyncShardedVectorReader")]
    BlockingInAsync,
    /// Parsing or routing failed: dimension mismatch, NaN query, bad shard
    /// id, missing routing context, CEL errors (config errors).
    #[error(transparent)]
    Core(#[from] shardvec_core::Error),
    /// A writer input is unreadable or a record in it is invalid.
    #[error("input {input}{}: {reason}", record.map(|r| format!(", record {r}")).unwrap_or_default())]
    Input {
        /// The input file (or `memory`).
        input: String,
        /// The record's 0-based position, when one record is at fault.
        record: Option<u64>,
        /// What is wrong.
        reason: String,
    },
    /// Writing one shard failed.
    #[error("writing shard {shard}: {reason}")]
    ShardWrite {
        /// The shard.
        shard: ShardId,
        /// What failed.
        reason: String,
    },
    /// A local file could not be read or written.
    #[error("file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// A short stable name of the variant (`stale_manifest`, `backend`,
    /// ...), for metrics labels and the host server's JSON errors.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidLocation { .. } => "invalid_location",
            Error::Store { .. } => "store",
            Error::NoCurrent(_) => "no_current",
            Error::Manifest { .. } => "manifest",
            Error::Artefact { .. } => "artefact",
            Error::ForeignUrl { .. } => "foreign_url",
            Error::Backend { .. } => "backend",
            Error::Cache { .. } => "cache",
            Error::InvalidArgument(_) => "invalid_argument",
            Error::StaleManifest { .. } => "stale_manifest",
            Error::Timeout { .. } => "timeout",
            Error::Closed => "closed",
            Error::BlockingInAsync => "blocking_in_async",
            Error::Core(e) if e.is_request_error() => "invalid_query",
            Error::Core(_) => "snapshot",
            Error::Input { .. } => "input",
            Error::ShardWrite { .. } => "shard_write",
            Error::Io { .. } => "io",
        }
    }

    pub(crate) fn store(
        op: &'static str,
        location: impl Into<String>,
        source: object_store::Error,
    ) -> Self {
        Error::Store {
            op,
            location: location.into(),
            source,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn input(
        input: impl Into<String>,
        record: Option<u64>,
        reason: impl Into<String>,
    ) -> Self {
        Error::Input {
            input: input.into(),
            record,
            reason: reason.into(),
        }
    }

    pub(crate) fn cache(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Cache {
            path: path.into(),
            source,
        }
    }
}
