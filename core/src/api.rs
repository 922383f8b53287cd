//! The wire protocol, in both directions: the JSON bodies of the host
//! server's requests and answers, the error body, and the limits. The host
//! (`shardvec-host`) serialises these types, the CLI's `--json` output is
//! the same types, and the wasm edge client parses host answers with them
//! and builds its own answer as one; the TypeScript declarations of the
//! wasm package are checked against them by its tests.
//!
//! Request parsing checks the shape only (unknown fields are refused,
//! numbers must fit their types); the query's dimension and finiteness,
//! `top_k` limits and shard ranges are checked against the snapshot by the
//! reader. The `host_json` fuzz target runs this parser.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::routing_value::RoutingContext;
use crate::types::{Probing, SearchResult, ShardDetail, ShardId, SnapshotInfo};

/// `top_k` when a request gives none.
pub const DEFAULT_TOP_K: usize = 10;
/// The largest `top_k` a reader accepts, whatever the caller.
pub const MAX_TOP_K: usize = 4096;
/// The most shard ids one request may name (repeats included): a
/// request body must not be able to make a reader dedupe or open an
/// unbounded list.
pub const MAX_SHARD_IDS: usize = 4096;
/// The most results one answer may hold: `top_k` × the distinct shards of
/// a `/v1/shards/search`.
pub const MAX_RESULTS: usize = 100_000;
/// The largest `top_k` a host accepts unless configured otherwise.
pub const DEFAULT_HOST_MAX_TOP_K: usize = 1000;

fn default_top_k() -> usize {
    DEFAULT_TOP_K
}

/// `POST /v1/search`: a routed search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    /// The query vector.
    pub query: Vec<f32>,
    /// Results wanted (default 10).
    #[serde(default = "default_top_k")]
    pub top_k: usize,
    /// Shards to probe (CLUSTER, LSH).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_probes: Option<u32>,
    /// Explicit shards (override routing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard_ids: Option<Vec<u32>>,
    /// CEL routing context (a JSON object).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routing_context: Option<Json>,
    /// Payload filter ([`crate::filter`]); checked by [`Self::filter`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Json>,
    /// Keep probing shards (CLUSTER, LSH) until this many matching rows
    /// were found; at most `top_k`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_results: Option<usize>,
    /// The most shards `min_results` may probe (default: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_probes: Option<u32>,
}

/// `POST /v1/shards/search`: the local top-k of named shards, for an edge
/// that routes and merges itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardsSearchRequest {
    /// The query vector.
    pub query: Vec<f32>,
    /// Results wanted per shard.
    pub top_k: usize,
    /// The shards to search.
    pub shard_ids: Vec<u32>,
    /// The manifest the caller routed with; refused if not the one served.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest_ref: Option<String>,
    /// Payload filter ([`crate::filter`]); checked by [`Self::filter`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Json>,
}

/// The answer to `POST /v1/search`, and the CLI's `search --json`: the
/// global top-k, best first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchResponse {
    /// The merged results.
    pub results: Vec<SearchResult>,
    /// Shards searched.
    pub num_shards_queried: usize,
    /// Wall time of the search, in milliseconds.
    pub latency_ms: f64,
    /// The shards probed, in routing order.
    pub route: Vec<ShardId>,
    /// The manifest the search ran against.
    pub manifest_ref: String,
    /// With `min_results`: how far the search probed and why it stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probing: Option<Probing>,
}

/// One shard's local top-k, best first (empty for an empty shard).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardHits {
    /// The shard.
    pub shard_id: ShardId,
    /// Its local top-k.
    pub results: Vec<SearchResult>,
}

/// The answer to `POST /v1/shards/search`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardsSearchResponse {
    /// One entry per requested shard, in request order.
    pub shards: Vec<ShardHits>,
    /// The manifest the search ran against.
    pub manifest_ref: String,
    /// Wall time of the search, in milliseconds.
    pub latency_ms: f64,
}

/// The answer to `GET /v1/snapshot`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotResponse {
    /// The manifest served (also the `ETag`).
    pub manifest_ref: String,
    /// Snapshot facts.
    pub info: SnapshotInfo,
    /// Every shard of the manifest.
    pub shards: Vec<ShardDetail>,
    /// The shards this host serves.
    pub served_shards: Vec<ShardId>,
}

/// The answer to `POST /v1/refresh`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshResponse {
    /// Whether the manifest changed.
    pub changed: bool,
    /// The manifest served now.
    pub manifest_ref: String,
}

/// Health of a reader or host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Serving a manifest younger than the staleness threshold.
    Healthy,
    /// Serving, but the manifest is older than the threshold.
    Degraded,
    /// Closed.
    Unhealthy,
}

/// The outcome of a host's last refresh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshRecord {
    /// When it finished.
    pub at: chrono::DateTime<chrono::Utc>,
    /// Whether the manifest changed.
    pub changed: bool,
    /// The error code if it failed (the old snapshot stayed in service);
    /// the details are in the host's log, not in this unauthenticated
    /// answer.
    pub error: Option<String>,
}

/// The answer to `GET /healthz` (503 when the reader is closed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthResponse {
    /// Overall status.
    pub status: HealthStatus,
    /// The manifest served (none when closed).
    pub manifest_ref: Option<String>,
    /// Age of that manifest, in seconds.
    pub manifest_age_s: Option<f64>,
    /// Shards in the manifest.
    pub num_shards: u32,
    /// The shards this host serves (`all` or ranges such as `0-7,12`).
    pub served_shards: String,
    /// The last refresh, if any.
    pub last_refresh: Option<RefreshRecord>,
}

/// The `ETag` of a host's answer about `file` (`snapshot`, `manifest`,
/// `centroids.npy`, ...) of the manifest `manifest_url`: quoted, and
/// changing exactly when the manifest served changes.
pub fn etag(manifest_url: &str, file: &str) -> String {
    alloc::format!(
        "\"{:016x}-{file}\"",
        xxhash_rust::xxh3::xxh3_64(manifest_url.as_bytes())
    )
}

/// The error body of every failed request: `{"error": {"code",
/// "message"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// The inside of an [`ErrorBody`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// A short stable code (`invalid_query`, `stale_manifest`, ...).
    pub code: String,
    /// What went wrong, for people.
    pub message: String,
}

impl ErrorBody {
    /// An error body.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorBody {
            error: ErrorDetail {
                code: code.into(),
                message: message.into(),
            },
        }
    }
}

/// The host's own error codes (the reader's are its error's `code()`).
pub mod codes {
    /// No or a wrong bearer token (401).
    pub const UNAUTHORIZED: &str = "unauthorized";
    /// A search names a shard the host does not serve (404).
    pub const SHARD_NOT_SERVED: &str = "shard_not_served";
    /// The pinned manifest is not the one served (409).
    pub const STALE_MANIFEST: &str = "stale_manifest";
    /// `top_k` above the host's cap (400).
    pub const TOP_K_TOO_LARGE: &str = "top_k_too_large";
    /// The body is not a valid request (400).
    pub const BAD_JSON: &str = "bad_json";
    /// The body is larger than the cap (413).
    pub const BODY_TOO_LARGE: &str = "body_too_large";
    /// The request ran past the time limit (504).
    pub const TIMEOUT: &str = "timeout";
    /// No such endpoint or file (404).
    pub const NOT_FOUND: &str = "not_found";
    /// A malformed request the body parser refused (400).
    pub const BAD_REQUEST: &str = "bad_request";
    /// More requests in flight than the host takes (503, `Retry-After`).
    pub const OVERLOADED: &str = "overloaded";
    /// A malformed payload filter (400); the message names the place.
    pub const INVALID_FILTER: &str = "invalid_filter";
    /// A query the reader refuses (400): a wrong dimension, a non-finite
    /// number, `top_k` 0.
    pub const INVALID_QUERY: &str = "invalid_query";
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| Error::InvalidRequest(e.to_string()))
}

fn parse_filter(json: Option<&Json>) -> Result<Option<Filter>> {
    Ok(json.map(Filter::parse).transpose()?)
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

    /// The payload filter, parsed.
    pub fn filter(&self) -> Result<Option<Filter>> {
        parse_filter(self.filter.as_ref())
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

    /// The payload filter, parsed.
    pub fn filter(&self) -> Result<Option<Filter>> {
        parse_filter(self.filter.as_ref())
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
