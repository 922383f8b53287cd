//! Reference line (a) of the benchmarks: exact brute force over the probed
//! shards' vectors held in memory, with simsimd's SIMD kernels. This is the
//! floor a flat (un-indexed) shard can reach: no I/O, no SQL, no decoding.

use shardvec_core::merge::merge_by;
use shardvec_core::{distance::total_order, Metric, ShardId, VectorId};
use simsimd::SpatialSimilarity;

use crate::backend::StoredVector;
use crate::error::{Error, Result};

/// One shard's vectors, row-major, with their ids.
#[derive(Debug, Default)]
pub struct FlatShard {
    ids: Vec<VectorId>,
    data: Vec<f32>,
}

/// Every shard of a snapshot in memory.
#[derive(Debug)]
pub struct FlatSnapshot {
    shards: Vec<FlatShard>,
    dim: usize,
    metric: Metric,
}

impl FlatSnapshot {
    /// Builds the in-memory copy from each shard's scan (index = shard id).
    pub fn new(shards: Vec<Vec<StoredVector>>, dim: usize, metric: Metric) -> Result<Self> {
        let mut out = Vec::with_capacity(shards.len());
        for (s, rows) in shards.into_iter().enumerate() {
            let mut flat = FlatShard {
                ids: Vec::with_capacity(rows.len()),
                data: Vec::with_capacity(rows.len() * dim),
            };
            for (id, v) in rows {
                if v.len() != dim {
                    return Err(Error::InvalidArgument(format!(
                        "shard {s}: vector {id} has dimension {}, not {dim}",
                        v.len()
                    )));
                }
                flat.ids.push(id);
                flat.data.extend_from_slice(&v);
            }
            out.push(flat);
        }
        Ok(FlatSnapshot {
            shards: out,
            dim,
            metric,
        })
    }

    /// Vectors held.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.ids.len()).sum()
    }

    /// Whether no vector is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Exact top-`k` of `query` over `shards` (distance, id), best first;
    /// per-shard lists merged in shard order like a routed search.
    /// Distances are simsimd's: cosine distance, squared L2, negative dot.
    pub fn search(&self, query: &[f32], k: usize, shards: &[ShardId]) -> Vec<(f32, VectorId)> {
        let lists = shards
            .iter()
            .filter_map(|s| self.shards.get(s.index()))
            .map(|shard| {
                let mut scored: Vec<(f32, u32)> = shard
                    .data
                    .chunks_exact(self.dim.max(1))
                    .enumerate()
                    .map(|(i, v)| (self.kernel(query, v), i as u32))
                    .collect();
                if scored.len() > k {
                    scored.select_nth_unstable_by(k, |a, b| total_order(a.0, b.0));
                    scored.truncate(k);
                }
                scored.sort_by(|a, b| total_order(a.0, b.0));
                scored
                    .into_iter()
                    .map(|(d, i)| (d, shard.ids[i as usize].clone()))
                    .collect::<Vec<_>>()
            });
        merge_by(lists.collect::<Vec<_>>(), k, |x| x.0)
    }

    fn kernel(&self, a: &[f32], b: &[f32]) -> f32 {
        let d = match self.metric {
            Metric::Cosine => <f32 as SpatialSimilarity>::cos(a, b),
            Metric::L2 => <f32 as SpatialSimilarity>::l2sq(a, b),
            Metric::DotProduct => <f32 as SpatialSimilarity>::dot(a, b).map(|d| -d),
        };
        d.map_or(f32::NAN, |d| d as f32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shardvec_core::distance::distance;

    #[test]
    fn equals_scalar_brute_force() {
        let data = crate::synthetic::blobs(600, 24, 4, 0.3, 3).unwrap();
        let rows: Vec<StoredVector> = data
            .vectors
            .iter_rows()
            .enumerate()
            .map(|(i, v)| (VectorId::Int(i as i64), v.to_vec()))
            .collect();
        let (a, b) = rows.split_at(250);
        for metric in [Metric::Cosine, Metric::L2, Metric::DotProduct] {
            let flat = FlatSnapshot::new(vec![a.to_vec(), b.to_vec()], 24, metric).unwrap();
            assert_eq!(flat.len(), 600);
            for q in crate::synthetic::queries_near(&data.vectors, 20, 0.1, 9) {
                let got: Vec<VectorId> = flat
                    .search(&q, 10, &[ShardId(0), ShardId(1)])
                    .into_iter()
                    .map(|x| x.1)
                    .collect();
                let mut want: Vec<(f32, usize)> = rows
                    .iter()
                    .enumerate()
                    .map(|(i, (_, v))| (distance(metric, &q, v), i))
                    .collect();
                want.sort_by(|x, y| total_order(x.0, y.0));
                let want: Vec<VectorId> = want[..10]
                    .iter()
                    .map(|(_, i)| VectorId::Int(*i as i64))
                    .collect();
                assert_eq!(got, want, "{metric:?}");
            }
        }
    }
}
