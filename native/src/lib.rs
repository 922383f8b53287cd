//! # shardvec
//!
//! Sharded vector search over object storage, for Rust services and
//! operators. This crate builds on [`shardvec_core`] (manifest parsing,
//! routing and merge, shared with the WebAssembly package) and will hold the
//! object-store I/O, the sqlite-vec and LanceDB shard backends, the blocking
//! and tokio readers, the writer, the CLI and the host server.
//!
//! Today it offers [`LocalSnapshot`]: a snapshot folder on local disk (for
//! instance a copy of an S3 prefix), opened through its `_CURRENT` pointer,
//! with the snapshot's [`Router`](shardvec_core::Router) ready to use.

pub mod local;

pub use local::{Error, LocalSnapshot};
pub use shardvec_core as core;
