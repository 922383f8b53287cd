//! The cross-crate end-to-end tests, one module per area, in one test
//! binary: every module links the same stack (the readers, the LanceDB
//! backend, the host, the CLI's tools), so one binary links it once instead
//! of once per file. Shared helpers (peer fixtures, S3 server, fault proxy,
//! host processes) are the library of this crate, `shardvec_e2e`.
//!
//! Run one area with `cargo test -p shardvec-e2e --test it -- host::`.

mod bench;
mod build_plan;
mod cache;
mod claims;
mod cli;
mod cli_ops;
mod faults;
mod filter_prop;
mod filtered;
mod golden_routes;
mod host;
mod peer_readers;
mod peer_routing;
mod reader_behaviour;
mod reliability;
mod s3;
mod wire;
mod writer_roundtrip;
