//! Shared helpers of the cross-crate end-to-end tests (peer fixtures, and
//! later S3 servers and hosts).

pub mod fixtures;

pub use fixtures::*;
