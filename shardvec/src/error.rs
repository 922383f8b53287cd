//! The one error type of the `shardvec` crate.
//!
//! Variants follow the reference reader's failure matrix and name what
//! failed: the URL, object, shard or file; the underlying error is kept as
//! the [`source`](std::error::Error::source), never flattened into text.
//! [`Error::kind`] sorts every variant into an [`ErrorKind`], which callers
//! (the host server's HTTP statuses, metrics, retry policies) match
//! exhaustively instead of parsing names or messages.

use std::path::PathBuf;

use shardvec_core::ShardId;

use crate::backend::BackendKind;

/// Result alias of the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Any error, boxed: what a backend or a task failed with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What kind of failure an [`Error`] is: who is at fault and whether
/// retrying can help. Deliberately not `#[non_exhaustive]`: a new kind must
/// be mapped by every exhaustive `match` over it (the host's HTTP statuses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The caller's input or options are wrong (a wrong dimension, NaN,
    /// `top_k` 0, an unknown shard id, a bad URL); retrying the same call
    /// fails the same way.
    InvalidInput,
    /// Something the call needs does not exist: no snapshot published, an
    /// object missing from the store.
    NotFound,
    /// The call raced a change: it pinned a manifest that is no longer the
    /// one served. Reload and retry.
    Conflict,
    /// The reader is closed or shutting down.
    Unavailable,
    /// The call ran past its time limit.
    Timeout,
    /// The object store failed (connection error, 5xx, after retries).
    Upstream,
    /// The snapshot's data is unusable: a manifest, artefact or shard that
    /// does not parse or does not agree with its manifest, a URL outside the
    /// snapshot.
    Corrupt,
    /// The snapshot needs something this build does not have (a backend
    /// whose cargo feature is off).
    Unsupported,
    /// A failure inside this process: local disk, a task that panicked, a
    /// poisoned lock. A bug or the machine, not the caller.
    Internal,
}

impl ErrorKind {
    /// A short stable name (`invalid_input`, `not_found`, ...), for metrics
    /// labels and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Upstream => "upstream",
            ErrorKind::Corrupt => "corrupt",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything that can fail while reading or writing a snapshot.
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
    #[error("shard {shard} ({url}): {source}")]
    Backend {
        /// The shard.
        shard: ShardId,
        /// Where it lives.
        url: String,
        /// What failed (the backend's own error, or a message).
        #[source]
        source: BoxError,
    },
    /// A shard's backend is not compiled into this build.
    #[error(
        "shard {shard} is a {} shard, and this build of shardvec has no `{}` feature \
         (enable the cargo feature `{}`)",
        backend.as_str(), backend.feature(), backend.feature()
    )]
    BackendNotCompiled {
        /// The shard.
        shard: ShardId,
        /// The backend its objects show.
        backend: BackendKind,
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
    /// A build was given a run id that already has objects under the
    /// prefix: writing it would overwrite that run (possibly the live one),
    /// and a failed build would then delete it.
    #[error("run `{run_id}` already has objects under {prefix}; choose another run id")]
    RunExists {
        /// The run id asked for.
        run_id: String,
        /// The snapshot prefix.
        prefix: String,
    },
    /// A publish found `_CURRENT` naming a manifest published after its own
    /// (a concurrent writer's): pointing `_CURRENT` back at the older one
    /// would undo that publish. Publish with `force` to do it anyway.
    #[error(
        "_CURRENT under {prefix} names {current}, published after this run's {ours}; \
         not replacing a newer publish (force to do it anyway)"
    )]
    NewerPublished {
        /// The snapshot prefix.
        prefix: String,
        /// The manifest `_CURRENT` names.
        current: String,
        /// The manifest this publish would have made current.
        ours: String,
    },
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
    /// A distributed build's shard entry does not match the plan or the
    /// store (out of range, named twice, not uploaded, wrong size).
    #[error("shard entry {shard}: {reason}")]
    ShardEntry {
        /// The shard.
        shard: ShardId,
        /// What is wrong.
        reason: String,
    },
    /// Bytes given as a build plan are not one ([`crate::writer::BuildPlan::from_bytes`]).
    #[error("build plan: {reason}")]
    Plan {
        /// What is wrong.
        reason: String,
    },
    /// Writing one shard failed.
    #[error("writing shard {shard}: {source}")]
    ShardWrite {
        /// The shard.
        shard: ShardId,
        /// What failed.
        #[source]
        source: BoxError,
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
    /// A failure inside this process: a task that panicked or was
    /// cancelled, a poisoned lock, a runtime that could not start.
    #[error("internal error: {what}{}", source.as_ref().map(|s| format!(": {s}")).unwrap_or_default())]
    Internal {
        /// What failed.
        what: String,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },
}

impl Error {
    /// What kind of failure this is (see [`ErrorKind`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidLocation { .. }
            | Error::InvalidArgument(_)
            | Error::BlockingInAsync
            | Error::Input { .. }
            | Error::Plan { .. } => ErrorKind::InvalidInput,
            Error::ShardEntry { .. } => ErrorKind::Conflict,
            Error::Store { source, .. } => match source {
                object_store::Error::NotFound { .. } => ErrorKind::NotFound,
                _ => ErrorKind::Upstream,
            },
            Error::NoCurrent(_) => ErrorKind::NotFound,
            Error::Manifest { .. }
            | Error::Artefact { .. }
            | Error::ForeignUrl { .. }
            | Error::Backend { .. } => ErrorKind::Corrupt,
            Error::Core(e) if e.is_request_error() => ErrorKind::InvalidInput,
            Error::Core(_) => ErrorKind::Corrupt,
            Error::BackendNotCompiled { .. } => ErrorKind::Unsupported,
            Error::StaleManifest { .. }
            | Error::RunExists { .. }
            | Error::NewerPublished { .. } => ErrorKind::Conflict,
            Error::Timeout { .. } => ErrorKind::Timeout,
            Error::Closed => ErrorKind::Unavailable,
            Error::Cache { .. }
            | Error::ShardWrite { .. }
            | Error::Io { .. }
            | Error::Internal { .. } => ErrorKind::Internal,
        }
    }

    /// A short stable name of the variant (`stale_manifest`, `backend`,
    /// ...), for metrics labels and the host server's JSON errors.
    pub fn code(&self) -> &'static str {
        use shardvec_core::api::codes;
        match self {
            Error::InvalidLocation { .. } => "invalid_location",
            Error::Store { .. } => "store",
            Error::NoCurrent(_) => "no_current",
            Error::Manifest { .. } => "manifest",
            Error::Artefact { .. } => "artefact",
            Error::ForeignUrl { .. } => "foreign_url",
            Error::Backend { .. } => "backend",
            Error::BackendNotCompiled { .. } => "backend_not_compiled",
            Error::Cache { .. } => "cache",
            Error::InvalidArgument(_) => "invalid_argument",
            Error::StaleManifest { .. } => "stale_manifest",
            Error::RunExists { .. } => "run_exists",
            Error::NewerPublished { .. } => "newer_published",
            Error::Timeout { .. } => "timeout",
            Error::Closed => "closed",
            Error::BlockingInAsync => "blocking_in_async",
            Error::Core(shardvec_core::Error::InvalidFilter(_)) => codes::INVALID_FILTER,
            Error::Core(e) if e.is_request_error() => codes::INVALID_QUERY,
            Error::Core(_) => "snapshot",
            Error::Input { .. } => "input",
            Error::ShardWrite { .. } => "shard_write",
            Error::ShardEntry { .. } => "shard_entry",
            Error::Plan { .. } => "plan",
            Error::Io { .. } => "io",
            Error::Internal { .. } => "internal",
        }
    }

    /// An object-store failure of `op` on `location`.
    pub fn store(
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

    /// A local file failure.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// A writer input failure.
    pub fn input(input: impl Into<String>, record: Option<u64>, reason: impl Into<String>) -> Self {
        Error::Input {
            input: input.into(),
            record,
            reason: reason.into(),
        }
    }

    /// A local cache failure.
    pub fn cache(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Cache {
            path: path.into(),
            source,
        }
    }

    /// An internal failure (`what` failed), with its cause.
    pub fn internal(what: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Error::Internal {
            what: what.into(),
            source: Some(source.into()),
        }
    }

    /// Writing shard `shard` failed: `what`, because of `cause`.
    pub fn shard_write(
        shard: ShardId,
        what: impl Into<String>,
        cause: impl Into<BoxError>,
    ) -> Self {
        Error::ShardWrite {
            shard,
            source: Box::new(Context {
                what: what.into(),
                cause: cause.into(),
            }),
        }
    }

    /// A task on the runtime's pool that did not finish: it panicked or
    /// was cancelled.
    pub fn task(what: &str, e: tokio::task::JoinError) -> Self {
        Error::internal(format!("{what} task did not finish"), e)
    }
}

/// `what` failed because of `cause`: the source of an error that adds
/// context to a foreign error without flattening it into text.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {cause}")]
pub(crate) struct Context {
    pub(crate) what: String,
    #[source]
    pub(crate) cause: BoxError,
}
