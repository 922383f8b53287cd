//! # shardvec-cli
//!
//! The `shardvec` command-line tool (`src/main.rs`, one module per group of
//! subcommands under `src/cmd/`) and the operator tools behind it that are
//! not part of the `shardvec` library's API:
//!
//! - [`bench`]: latency, throughput, recall, bytes read and the SIMD
//!   brute-force floor of a snapshot (`shardvec bench`);
//! - [`verify`]: recall@k of routed search against exact brute force, per
//!   `num_probes` (`shardvec verify`);
//! - [`synthetic`]: seeded clustered data for the demo, tests and
//!   benchmarks (`shardvec synth`).
//!
//! Cargo features pass through to `shardvec`: `sqlite-vec` and `aws`
//! (default), `lancedb`, `gcp`, `azure`.

pub mod bench;
pub mod synthetic;
pub mod verify;
