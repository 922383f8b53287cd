//! # shardvec-wasm
//!
//! WebAssembly bindings of [`shardvec_core`] for edge workers and browsers:
//! they compute exactly the routes the native reader computes, from the same
//! snapshot files, with the same code, and merge per-shard results.
//!
//! Main types: [`Snapshot`] (built from the snapshot's raw files with
//! [`Snapshot::from_parts`], fetched over HTTP(S) with [`Snapshot::open`],
//! or from a host with [`Snapshot::from_host`]), [`EdgeClient`] and the
//! free function [`merge`]. Every way of loading a snapshot goes through
//! the core loader ([`shardvec_core::snapshot`]), the native reader's: the
//! same objects in the same order, the same checks and the same fallback
//! to older manifests.
//!
//! Modules: `snapshot` (the `Snapshot` class), `source` (where
//! `Snapshot.open` fetches from), `edge` (`EdgeClient`, `Snapshot.fromHost`),
//! `replicas` (which replica gets a shard, the circuit breaker), `serve`
//! (`EdgeClient.connect`, `handleSearch`, `revalidate`: a host's
//! `/v1/search` answered by an edge worker),
//! `options` (routing options from JS), `filter` (payload filters from
//! JS: `Snapshot.parseFilter`, `filterMatches`), `merge`, `js` (JS values <-> JSON,
//! errors), `http` (`fetch`, with a bound on the bytes read), `error` (the
//! error of every HTTP exchange, a JS `Error` with a `code`).
//!
//! Values cross the boundary as plain JavaScript values: options and routing
//! contexts are plain objects, results are plain objects and arrays (built
//! from the core types' serde form, so their keys are the JSON keys the CLI
//! and the host server print). 64-bit integers that do not fit a JS number
//! (LSH codes of more than 53 bits, `uint` routing values) become `BigInt`s,
//! and a `BigInt` or a `Uint8Array` (CEL `bytes`) is accepted in a routing
//! context.
//!
//! Errors become JavaScript `Error`s carrying the core error's message (for
//! [`Snapshot::open`], prefixed with the URL at fault, as the native reader
//! does); those of the edge client's requests and of `Snapshot.fromHost`
//! also carry a `code` (`wrong_manifest`, `stale_manifest`,
//! `answer_too_large`, `too_many_hits`, `host_out`, `shard_not_served`,
//! `request_failed`). Inputs are
//! validated before they reach the core, so no panic reaches JavaScript;
//! debug builds install a panic hook that logs to `console.error` all the
//! same.

mod edge;
mod error;
mod filter;
mod http;
mod js;
mod merge;
mod options;
mod replicas;
mod serve;
mod snapshot;
mod source;

pub use edge::{EdgeClient, DEFAULT_MAX_RESPONSE_BYTES};
#[cfg(debug_assertions)]
pub use js::start;
pub use merge::merge;
pub use serve::MAX_BODY_BYTES;
pub use snapshot::{Snapshot, SnapshotData};
pub use source::{manifest_key, resolve_key, ForeignUrl};
