//! The host server's JSON request bodies (`POST /v1/search`,
//! `POST /v1/shards/search`), parsed here so that the host, its clients'
//! tests and the `host_json` fuzz target share one parser.
//!
//! Parsing checks the shape only (unknown fields are refused, numbers must
//! fit their types); the query's dimension and finiteness, `top_k` limits
//! and shard ranges are checked against the snapshot by the reader.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use serde::Deserialize;
use serde_json::Value as Json;

use crate::error::{Error, Result};
use crate::routing_value::RoutingContext;
use crate::types::ShardId;

fn default_top_k() -> usize {
    10
}

/// `POST /v1/search`: a routed search.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    /// The query vector.
    pub query: Vec<f32>,
    /// Results wanted (default 10).
    #[serde(default = "default_top_k")]
    pub top_k: usize,
    /// Shards to probe (CLUSTER, LSH).
    pub num_probes: Option<u32>,
    /// Explicit shards (override routing).
    pub shard_ids: Option<Vec<u32>>,
    /// CEL routing context (a JSON object).
    pub routing_context: Option<Json>,
}

/// `POST /v1/shards/search`: the local top-k of named shards, for an edge
/// that routes and merges itself.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardsSearchRequest {
    /// The query vector.
    pub query: Vec<f32>,
    /// Results wanted per shard.
    pub top_k: usize,
    /// The shards to search.
    pub shard_ids: Vec<u32>,
    /// The manifest the caller routed with; refused if not the one served.
    pub manifest_ref: Option<String>,
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| Error::InvalidRequest(e.to_string()))
}

impl SearchRequest {
    /// Parses a request body.
    pub fn parse(body: &[u8]) -> Result<Self> {
        parse(body)
    }

    /// The routing context as typed values.
    pub fn context(&self) -> Result<Option<RoutingContext>> {
        self.routing_context
            .as_ref()
            .map(RoutingContext::from_json)
            .transpose()
    }

    /// The explicit shard ids, typed.
    pub fn shards(&self) -> Option<Vec<ShardId>> {
        self.shard_ids
            .as_ref()
            .map(|ids| ids.iter().copied().map(ShardId).collect())
    }
}

impl ShardsSearchRequest {
    /// Parses a request body.
    pub fn parse(body: &[u8]) -> Result<Self> {
        parse(body)
    }

    /// The shard ids, typed.
    pub fn shards(&self) -> Vec<ShardId> {
        self.shard_ids.iter().copied().map(ShardId).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        let r =
            SearchRequest::parse(br#"{"query": [1, 2.5], "routing_context": {"t": "a"}}"#).unwrap();
        assert_eq!(r.query, [1.0, 2.5]);
        assert_eq!(r.top_k, 10);
        assert!(r.context().unwrap().is_some());
        let s = ShardsSearchRequest::parse(br#"{"query": [0], "top_k": 3, "shard_ids": [2, 0]}"#)
            .unwrap();
        assert_eq!(s.shards(), [ShardId(2), ShardId(0)]);
        for bad in [
            &br#"{"query": [1], "topk": 3}"#[..],
            br#"{"query": "x"}"#,
            br#"{"query": [1], "top_k": -1}"#,
            br#"{"query": [1], "shard_ids": [4294967296]}"#,
            br#"{"query": [NaN]}"#,
            br#"{"query": [1]"#,
            b"",
        ] {
            let e = SearchRequest::parse(bad).unwrap_err();
            assert!(matches!(e, Error::InvalidRequest(_)), "{e}");
        }
        let e = ShardsSearchRequest::parse(br#"{"query": [1], "top_k": 1}"#).unwrap_err();
        assert!(e.to_string().contains("shard_ids"), "{e}");
    }
}
