//! Global top-k of per-shard top-k lists.
//!
//! Each shard returns its own best hits; the global answer is the `top_k`
//! smallest scores over all of them, ties kept in the order the shards were
//! queried (and, within a shard, in the shard's order) — the same as the
//! reference's `heapq.nsmallest`, which is stable.
//!
//! The merge keeps a bounded max-heap of `top_k` entries: O(n log k) time and
//! O(k) extra space for n candidates. NaN scores sort after every number and
//! `-0.0` ties with `0.0`.

use alloc::collections::BinaryHeap;
use alloc::vec::Vec;
use core::cmp::Ordering;

use crate::distance::total_order;
use crate::types::SearchResult;

/// Merges per-shard result lists (in query order) into the global top-k.
pub fn merge<L>(per_shard: L, top_k: usize) -> Vec<SearchResult>
where
    L: IntoIterator,
    L::Item: IntoIterator<Item = SearchResult>,
{
    merge_by(per_shard, top_k, |r| r.score)
}

/// [`merge`] for any item type, given its score.
pub fn merge_by<T, L, F>(per_shard: L, top_k: usize, score: F) -> Vec<T>
where
    L: IntoIterator,
    L::Item: IntoIterator<Item = T>,
    F: Fn(&T) -> f32,
{
    if top_k == 0 {
        return Vec::new();
    }
    let mut heap: BinaryHeap<Entry<T>> = BinaryHeap::with_capacity(top_k.min(1024) + 1);
    let mut seq = 0u64;
    for list in per_shard {
        for item in list {
            let key = Key::new(score(&item), seq);
            seq += 1;
            if heap.len() < top_k {
                heap.push(Entry { key, item });
            } else if let Some(mut worst) = heap.peek_mut() {
                if key < worst.key {
                    // Replaces the root and sifts it down once.
                    *worst = Entry { key, item };
                }
            }
        }
    }
    // `into_sorted_vec` is ascending: best first, ties by arrival.
    heap.into_sorted_vec().into_iter().map(|e| e.item).collect()
}

/// Total order on (score, arrival): NaN last, `-0.0 == 0.0`.
#[derive(Clone, Copy)]
struct Key {
    score: f32,
    seq: u64,
}

impl Key {
    fn new(score: f32, seq: u64) -> Key {
        Key { score, seq }
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Key {}
impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        total_order(self.score, other.score).then(self.seq.cmp(&other.seq))
    }
}

struct Entry<T> {
    key: Key,
    item: T,
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl<T> Eq for Entry<T> {}
impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Entry<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key.cmp(&other.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn ties_keep_shard_order() {
        let a = vec![(1.0, 'a'), (2.0, 'b')];
        let b = vec![(1.0, 'c'), (0.5, 'd')];
        let got: Vec<char> = merge_by([a, b], 3, |x| x.0)
            .into_iter()
            .map(|x| x.1)
            .collect();
        assert_eq!(got, ['d', 'a', 'c']);
    }

    #[test]
    fn nan_last_and_zero_k() {
        let a = vec![f32::NAN, 3.0, -0.0, 0.0];
        assert_eq!(merge_by([a.clone()], 0, |x| *x), Vec::<f32>::new());
        let got = merge_by([a], 4, |x| *x);
        assert_eq!(got[..3], [-0.0, 0.0, 3.0]);
        assert!(got[3].is_nan());
    }
}
