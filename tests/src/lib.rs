//! Shared helpers of the cross-crate end-to-end tests: the peer fixtures,
//! a real S3-compatible server on loopback with a proxy that injects
//! transient faults in front of it, and host servers on loopback.

pub mod fault_proxy;
pub mod fault_store;
pub mod filter_oracle;
pub mod fixtures;
pub mod host;
pub mod s3;

pub use fixtures::*;

/// The README's Rust examples, compiled (and run) as doctests of this
/// crate, which depends on every library crate with every feature, so the
/// README cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeExamples;
