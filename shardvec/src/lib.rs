//! # shardvec
//!
//! Sharded vector search over object storage, for Rust services: the
//! readers, the object-store I/O, the local shard cache, the shard
//! backends and (feature `writer`) the writer. Built on [`shardvec_core`]
//! (the format, routing and merge, shared with the WebAssembly package);
//! the HTTP host is the crate `shardvec-host`, the command-line tool
//! `shardvec-cli`.
//!
//! ## Main types
//!
//! - [`AsyncShardedVectorReader`] (tokio) and [`ShardedVectorReader`]
//!   (blocking): open a snapshot prefix (`s3://`, `gs://`, `az://`,
//!   `file://`, a local path, `memory://`), route each query, search the
//!   chosen shards concurrently and merge. See [`reader`] for the design
//!   (one immutable state per publish, swapped atomically by `refresh`).
//! - [`SnapshotLocation`] and [`StoreOptions`]: the object store and where
//!   the snapshot is in it; recorded URLs are resolved against it, so copies
//!   of a snapshot read the same.
//! - [`ManifestStore`]: where `_CURRENT` and manifests come from.
//! - [`backend::ShardBackend`]: how a shard is opened and searched, one
//!   implementation per storage engine, registered in
//!   [`backend::Backends`]; the local cache is [`cache`].
//! - [`metrics::Metrics`] (a hook trait) and [`rate_limit::RateLimiter`]
//!   (a token bucket), set through [`ReaderOptions`].
//! - [`Filter`] (from [`shardvec_core::filter`]): filtered search inside
//!   the shards, exact top-k among the rows that match
//!   ([`SearchOptions::filter`]); shards evaluate filters over their
//!   payloads decoded into columns ([`payload_index`]).
//! - [`history`]: the manifests under a prefix, and rollback.
//! - `writer::build` with `writer::Input` and `writer::WriterOptions`
//!   (feature `writer`): records in (`.npy`, `.fvecs`, JSON Lines, memory),
//!   a published snapshot out, routed by the same core router the readers
//!   use.
//! - [`Error`] with its [`ErrorKind`]: the crate's one error type.
//!
//! ## Cargo features
//!
//! | feature | default | what |
//! |---|---|---|
//! | `sqlite-vec` | yes | shards stored as sqlite-vec files (bundled SQLite) |
//! | `lancedb` | no | shards stored as Lance datasets (the Arrow/DataFusion stack: most of a full build) |
//! | `aws` | yes | `s3://` and S3-compatible servers |
//! | `gcp`, `azure` | no | `gs://`, `az://` |
//! | `writer` | no | build and publish snapshots |
//!
//! `file://`, local folders and `memory://` always work. A snapshot whose
//! shards need a backend that is not compiled in opens (routing works), and
//! searching such a shard fails with [`Error::BackendNotCompiled`], naming
//! the feature.

pub mod backend;
pub mod blocking;
pub mod cache;
mod error;
#[cfg(any(feature = "sqlite-vec", feature = "lancedb"))]
pub mod flat;
pub mod history;
#[cfg(any(feature = "sqlite-vec", feature = "lancedb"))]
mod int8;
pub mod location;
pub mod manifest_store;
pub mod metrics;
pub mod payload_index;
pub mod rate_limit;
pub mod reader;
mod source;
#[cfg(feature = "writer")]
pub mod writer;

pub use blocking::ShardedVectorReader;
pub use cache::DownloadOptions;
pub use error::{BoxError, Error, ErrorKind, Result};
pub use location::{SnapshotLocation, StoreOptions};
pub use manifest_store::{ManifestStore, ObjectManifestStore};
pub use reader::{
    AsyncShardedVectorReader, Health, HealthStatus, ReaderOptions, RoutingFiles, SearchOptions,
    SearchResponse, ShardHits, ShardSearchResponse,
};
pub use shardvec_core as core;
pub use shardvec_core::{Filter, FilterError, ProbeStop, Probing};
