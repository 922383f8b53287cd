//! A shard's payloads decoded for filtering, with the bitmaps of the
//! filters it answered last.
//!
//! A filtered search of an in-memory shard (sqlite-vec's default path, and
//! LanceDB's filtered path) does not test payloads row by row: the first
//! filtered search of a shard decodes every id and payload once into typed
//! columns ([`shardvec_core::filter::Columns`]), each filter is evaluated
//! over the columns into a [`RowSet`] bitmap, and the scan then scores only
//! the rows in the bitmap ([`crate::flat::FlatVectors::top_k_in`]). The
//! last [`RECENT_FILTERS`] bitmaps are kept per shard (LRU, keyed by
//! [`Filter::key`], the 128-bit XXH3 hash of the canonical JSON computed
//! once per filter: 16 bytes whatever the filter's size), so repeated filters — a tenant, a language —
//! cost one bitmap lookup.
//!
//! Memory, per shard that saw a filter: the columns (about 24 bytes per
//! row and payload field, see `Columns`) plus at most [`RECENT_FILTERS`]
//! bitmaps of one bit per row. Unfiltered searches never build any of it.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use lru::LruCache;
use shardvec_core::filter::{Columns, RowSet};
use shardvec_core::Filter;

/// Filter bitmaps kept per shard.
pub const RECENT_FILTERS: usize = 16;

/// See the module docs.
#[derive(Debug)]
pub struct PayloadIndex {
    columns: Columns,
    recent: Mutex<LruCache<u128, Arc<RowSet>>>,
}

impl PayloadIndex {
    /// An index over `columns` (rows in the shard's scan order).
    pub fn new(columns: Columns) -> PayloadIndex {
        let cap = NonZeroUsize::new(RECENT_FILTERS).unwrap_or(NonZeroUsize::MIN);
        PayloadIndex {
            columns,
            recent: Mutex::new(LruCache::new(cap)),
        }
    }

    /// The rows matching `filter`.
    pub fn rows(&self, filter: &Filter) -> Arc<RowSet> {
        let key = filter.key();
        // A poisoned lock only loses the cache: evaluate without it.
        if let Ok(mut recent) = self.recent.lock() {
            if let Some(hit) = recent.get(&key) {
                return hit.clone();
            }
        }
        let rows = Arc::new(filter.select(&self.columns));
        if let Ok(mut recent) = self.recent.lock() {
            recent.put(key, rows.clone());
        }
        rows
    }

    /// Rows indexed.
    pub fn len(&self) -> usize {
        self.columns.rows()
    }

    /// Whether the shard has no rows.
    pub fn is_empty(&self) -> bool {
        self.columns.rows() == 0
    }

    /// Heap bytes of the columns (bitmaps not counted).
    pub fn heap_bytes(&self) -> usize {
        self.columns.heap_bytes()
    }
}
