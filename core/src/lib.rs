//! # shardvec-core
//!
//! The part of shardvec that every target shares — native readers, the
//! WebAssembly edge package and the browser demo all link this crate, so a
//! snapshot is parsed, routed and merged by exactly one implementation.
//!
//! It is `#![no_std]` + `alloc`: it performs no I/O and never touches the
//! clock, the file system or the network. Callers hand it bytes (a manifest
//! image, a `_CURRENT` object, `.npy` artefacts) and get typed values back.
//!
//! Each fact of the format and of the wire protocol is written here once:
//! [`layout`] (where every object lives under a prefix), [`manifest`]
//! (parse *and* encode), [`current`], [`npy`], [`resolve`] (recorded URLs
//! against the prefix a snapshot is read from), [`snapshot`] (which files a
//! snapshot needs, in which order, and the fallback), [`router`], [`merge`]
//! and [`api`] (the host protocol's requests, answers, errors and limits).
//!
//! ## Main types
//!
//! - [`Manifest`] — the SQLite manifest of one publish, parsed by
//!   [`sqlite`], a small read-only reader of the SQLite file format (no C, no
//!   SQLite engine), then validated into [`BuildMeta`], [`ShardMeta`] rows and
//!   the vector section [`VectorMeta`] (with [`Metric`] and [`Strategy`]).
//! - [`CurrentPointer`] and [`ManifestRef`] — the `_CURRENT` pointer and the
//!   `<timestamp>_run_id=<id>` manifest directory names.
//! - [`npy::Matrix`] — a float32 matrix read from a NumPy `.npy` file
//!   (centroids, hyperplanes, query sets).
//! - [`Router`] — built once from a manifest and its routing artefacts; maps
//!   a query (vector, explicit shard ids or a CEL routing context) to the
//!   shards to probe, exactly as the reference writer assigned vectors.
//! - [`merge()`] — the global top-k of per-shard top-k lists.
//! - [`snapshot::load`] — loading a snapshot (manifest, artefacts, router)
//!   from any [`snapshot::Source`], with the fallback to older manifests:
//!   the one loader of the native reader and the wasm package.
//! - [`SearchResult`], [`VectorId`], [`SnapshotInfo`], [`ShardDetail`] — the
//!   result types every target reports, with serde.
//! - [`api::SearchResponse`], [`api::ShardsSearchResponse`],
//!   [`api::ErrorBody`], ... — what the host sends, the CLI prints and the
//!   edge client parses.
//!
//! ## Features
//!
//! - `std` (default): implements `std::error::Error` through dependencies.
//! - `cel`: CEL routing with the [`cel`](https://docs.rs/cel) interpreter and
//!   the `shard_hash` function (implies `std`). Without it, a CEL snapshot
//!   still parses, and routing it returns [`Error::CelUnsupported`].
//!
//! With `--no-default-features` the crate builds for targets without `std`
//! (CI checks `wasm32v1-none`).
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

#[cfg(feature = "cel")]
mod cel_eval;
/// Entry points for fuzz targets; not a stable API.
#[cfg(feature = "cel")]
#[doc(hidden)]
pub mod __fuzz {
    pub use crate::cel_eval::route_expr;
}
pub mod api;
pub mod current;
pub mod distance;
mod error;
pub mod filter;
pub mod layout;
pub mod manifest;
pub mod merge;
pub mod npy;
pub mod resolve;
pub mod router;
pub mod routing_value;
pub mod snapshot;
pub mod sqlite;
pub mod types;

pub use current::{CurrentPointer, ManifestRef};
pub use error::{Error, Result};
pub use filter::{Filter, FilterBuilder, FilterError};
pub use manifest::{BuildMeta, CelColumnType, CelSpec, Manifest, ShardMeta, VectorMeta};
pub use merge::{merge, merge_by};
pub use router::{Explanation, ProbeOrder, RouteOptions, Router, RoutingArtefacts};
pub use routing_value::{shard_hash, RoutingContext, RoutingValue};
pub use snapshot::{LoadError, Loaded, Routing};
pub use types::{
    Metric, ProbeStop, Probing, SearchResult, ShardDetail, ShardId, SnapshotInfo, Strategy,
    VectorId,
};
