//! Value types shared by every target: ids, metrics, strategies and results.
//!
//! Their serde form is the JSON the reference reader reports (and the host
//! server and wasm package speak): metrics and strategies as lower-case
//! strings, vector ids as a bare integer or string.

use alloc::string::String;
use core::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Index of a shard in `[0, num_dbs)`: the manifest's `db_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ShardId(pub u32);

impl ShardId {
    /// The id as a `usize` index.
    pub fn index(self) -> usize {
        self.0 as usize
    }

    /// Checks `id` against `num_dbs`, the way every id from a caller or an
    /// expression is checked.
    pub fn checked(id: i128, num_dbs: u32) -> Result<ShardId> {
        if id >= 0 && id < i128::from(num_dbs) {
            Ok(ShardId(id as u32))
        } else {
            Err(Error::ShardOutOfRange { id, num_dbs })
        }
    }
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<ShardId> for u32 {
    fn from(id: ShardId) -> u32 {
        id.0
    }
}

/// Distance metric of a snapshot. Lower scores are always closer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// `1 - cos(a, b)`.
    Cosine,
    /// Euclidean (routing uses the squared distance).
    L2,
    /// Negated inner product.
    DotProduct,
}

impl Metric {
    /// The name used in manifests and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Cosine => "cosine",
            Metric::L2 => "l2",
            Metric::DotProduct => "dot_product",
        }
    }

    /// Parses a manifest name.
    pub fn parse(s: &str) -> Option<Metric> {
        match s {
            "cosine" => Some(Metric::Cosine),
            "l2" => Some(Metric::L2),
            "dot_product" => Some(Metric::DotProduct),
            _ => None,
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How vectors were assigned to shards, and so how queries are routed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Nearest k-means centroid(s).
    Cluster,
    /// Random-hyperplane hash, multi-probe by bit flips.
    Lsh,
    /// The caller names the shards.
    Explicit,
    /// A CEL expression over the request's routing context.
    Cel,
}

impl Strategy {
    /// The name used in manifests and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Cluster => "cluster",
            Strategy::Lsh => "lsh",
            Strategy::Explicit => "explicit",
            Strategy::Cel => "cel",
        }
    }

    /// Parses a manifest name.
    pub fn parse(s: &str) -> Option<Strategy> {
        match s {
            "cluster" => Some(Strategy::Cluster),
            "lsh" => Some(Strategy::Lsh),
            "explicit" => Some(Strategy::Explicit),
            "cel" => Some(Strategy::Cel),
            _ => None,
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The id of a stored vector: an integer or a string, as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum VectorId {
    /// Integer id.
    Int(i64),
    /// String id.
    Str(String),
}

impl fmt::Display for VectorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VectorId::Int(i) => i.fmt(f),
            VectorId::Str(s) => f.write_str(s),
        }
    }
}

impl From<i64> for VectorId {
    fn from(v: i64) -> Self {
        VectorId::Int(v)
    }
}

impl From<&str> for VectorId {
    fn from(v: &str) -> Self {
        VectorId::Str(v.into())
    }
}

impl From<String> for VectorId {
    fn from(v: String) -> Self {
        VectorId::Str(v)
    }
}

fn score_as_f64<S: serde::Serializer>(score: &f32, s: S) -> core::result::Result<S::Ok, S::Error> {
    s.serialize_f64(f64::from(*score))
}

/// One hit of a search. `score` is a distance: lower is closer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchResult {
    /// Id of the vector.
    pub id: VectorId,
    /// Distance as the shard backend reports it for the snapshot's metric.
    /// On the wire it is the f64 of this f32 (the digits the reference
    /// prints for a float32 score), so JSON text, JS numbers and the peer's
    /// recorded answers agree digit for digit.
    #[serde(serialize_with = "score_as_f64")]
    pub score: f32,
    /// The record's JSON payload, if it has one.
    #[serde(default)]
    pub payload: Option<serde_json::Value>,
    /// The shard the hit came from. Set by whoever knows it: the readers
    /// on every merged hit, the host on every answer, the edge client on
    /// what hosts answered; absent on the wire when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_id: Option<ShardId>,
}

/// Why a search that probes until enough rows match
/// (`min_results`) stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeStop {
    /// At least `min_results` matching rows were found.
    Enough,
    /// `max_probes` shards were searched.
    ProbeLimit,
    /// Every shard that holds vectors was searched.
    AllShards,
}

impl Probing {
    /// The report of a search that found `found` matching rows for
    /// `min_results` after probing `shards_probed` of `num_dbs` shards.
    pub fn new(min_results: usize, found: usize, shards_probed: usize, num_dbs: u32) -> Probing {
        let stop = if found >= min_results {
            ProbeStop::Enough
        } else if shards_probed as u64 >= u64::from(num_dbs) {
            ProbeStop::AllShards
        } else {
            ProbeStop::ProbeLimit
        };
        Probing {
            min_results,
            found,
            shards_probed,
            stop,
        }
    }
}

/// How a search with `min_results` went: shards searched and why it
/// stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probing {
    /// The `min_results` asked for.
    pub min_results: usize,
    /// Matching rows found (before the cut to `top_k`).
    pub found: usize,
    /// Shards searched, routed ones included.
    pub shards_probed: usize,
    /// Why the search stopped.
    pub stop: ProbeStop,
}

/// Snapshot-level facts, as the reference reader's `snapshot_info()`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    /// Run that produced the snapshot.
    pub run_id: String,
    /// Number of shards (including empty ones).
    pub num_dbs: u32,
    /// Vector dimension.
    pub dim: usize,
    /// Distance metric.
    pub metric: Metric,
    /// Sharding strategy.
    pub sharding: Strategy,
    /// URL of the manifest object.
    pub manifest_ref: String,
    /// Sum of the shards' vector counts.
    pub total_vectors: u64,
}

/// One shard, as the reference reader's `shard_details()`.
///
/// Shards absent from the manifest are empty: `vector_count` 0, no URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardDetail {
    /// Shard id.
    pub db_id: ShardId,
    /// Where the shard lives, as recorded in the manifest.
    pub db_url: Option<String>,
    /// Number of vectors.
    pub vector_count: u64,
    /// Content identity of the shard's bytes.
    pub checkpoint_id: Option<String>,
}
