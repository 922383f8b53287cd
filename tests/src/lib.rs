//! Shared helpers of the cross-crate end-to-end tests: the peer fixtures,
//! a real S3-compatible server on loopback, and host servers on loopback.

pub mod fixtures;
pub mod host;
pub mod s3;

pub use fixtures::*;
