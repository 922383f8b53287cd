//! Reference line (a) of the benchmarks: exact brute force over the probed
//! shards' vectors held in memory, with simsimd's SIMD kernels
//! ([`shardvec::flat`]). This is the floor a flat (un-indexed) shard can reach:
//! no I/O, no SQL, no decoding.

use shardvec_core::merge::merge_by;
use shardvec_core::{Metric, ShardId, VectorId};

use shardvec::backend::StoredVector;
use shardvec::flat::FlatVectors;
use shardvec::{Error, Result};

/// One shard's vectors with their ids.
#[derive(Debug)]
pub struct FlatShard {
    ids: Vec<VectorId>,
    vectors: FlatVectors,
}

/// Every shard of a snapshot in memory.
#[derive(Debug)]
pub struct FlatSnapshot {
    shards: Vec<FlatShard>,
}

impl FlatSnapshot {
    /// Builds the in-memory copy from each shard's scan (index = shard id).
    pub fn new(shards: Vec<Vec<StoredVector>>, dim: usize, metric: Metric) -> Result<Self> {
        let mut out = Vec::with_capacity(shards.len());
        for (s, rows) in shards.into_iter().enumerate() {
            let mut flat = FlatShard {
                ids: Vec::with_capacity(rows.len()),
                vectors: FlatVectors::new(dim, metric),
            };
            flat.vectors.reserve(rows.len());
            for (id, v) in rows {
                if !flat.vectors.push(&v) {
                    return Err(Error::Backend {
                        shard: shardvec_core::ShardId(s as u32),
                        url: String::new(),
                        source: format!(
                            "vector {id} has dimension {}, not the snapshot's {dim}",
                            v.len()
                        )
                        .into(),
                    });
                }
                flat.ids.push(id);
            }
            out.push(flat);
        }
        Ok(FlatSnapshot { shards: out })
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
    /// Scores as [`FlatVectors::top_k`] gives them.
    pub fn search(&self, query: &[f32], k: usize, shards: &[ShardId]) -> Vec<(f32, VectorId)> {
        let lists = shards
            .iter()
            .filter_map(|s| self.shards.get(s.index()))
            .map(|shard| {
                shard
                    .vectors
                    .top_k(query, k)
                    .into_iter()
                    .filter_map(|(d, i)| Some((d, shard.ids.get(i as usize)?.clone())))
                    .collect::<Vec<_>>()
            });
        merge_by(lists.collect::<Vec<_>>(), k, |x| x.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shardvec_core::distance::{distance, total_order};

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
