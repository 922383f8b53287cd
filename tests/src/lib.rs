//! Shared helpers of the cross-crate end-to-end tests: the peer fixtures,
//! and a real S3-compatible server on loopback.

pub mod fixtures;
pub mod s3;

pub use fixtures::*;
