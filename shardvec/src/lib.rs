//! # shardvec
//!
//! Sharded vector search over object storage, for Rust services and
//! operators. Built on [`shardvec_core`] (manifest parsing, routing and
//! merge, shared with the WebAssembly package).
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
//! - [`backend::ShardBackend`]: how a shard is opened and searched
//!   (sqlite-vec and LanceDB), with the local cache of [`cache`].
//! - [`metrics::Metrics`] (a hook trait) and [`rate_limit::RateLimiter`]
//!   (a token bucket), set through [`ReaderOptions`].
//! - [`writer::build`] with [`writer::Input`] and [`writer::WriterOptions`]:
//!   records in (`.npy`, `.fvecs`, JSON Lines, memory), a published
//!   snapshot out, routed by the same core router the readers use.
//! - [`host`]: the HTTP/JSON host server (`shardvec serve`) for clients and
//!   edge workers.
//! - [`history`] (manifests under a prefix, rollback) and [`verify`]
//!   (recall@k of routed search against exact brute force).
//! - [`bench`]: latency, throughput, recall, bytes read and the SIMD
//!   brute-force floor of a snapshot (`shardvec bench`).
//! - [`synthetic`]: seeded clustered data for the demo, tests and benchmarks.
//! - [`Error`]: the crate's one error type.

pub mod backend;
pub mod bench;
pub mod blocking;
pub mod cache;
mod error;
pub mod flat;
pub mod history;
pub mod host;
pub mod location;
pub mod manifest_store;
pub mod metrics;
pub mod rate_limit;
pub mod reader;
pub mod synthetic;
pub mod verify;
pub mod writer;

pub use blocking::ShardedVectorReader;
pub use error::{Error, Result};
pub use location::{SnapshotLocation, StoreOptions};
pub use manifest_store::{ManifestStore, ObjectManifestStore};
pub use reader::{
    AsyncShardedVectorReader, Health, HealthStatus, ReaderOptions, RoutingFiles, SearchOptions,
    SearchResponse, ShardHits, ShardSearchResponse,
};
pub use shardvec_core as core;
