//! Exact search over vectors held in memory, with simsimd's SIMD kernels.
//!
//! [`FlatVectors`] is one shard's vectors, row-major (or, once int8 codes
//! are built, the codes and a [`RowSource`] for the rows). It serves
//! sqlite-vec shards searched in memory
//! ([`SqliteVecScan::InMemory`](crate::backend::sqlite_vec::SqliteVecScan::InMemory),
//! [`SqliteVecScan::Quantized`](crate::backend::sqlite_vec::SqliteVecScan::Quantized)),
//! LanceDB shards searched exactly, and the floor of `shardvec bench`
//! (`shardvec_cli::bench::floor`).
//!
//! A search runs in two passes:
//!
//! 1. **select**: every row is scored with simsimd's SIMD kernels and the
//!    best `k + max(k, 32)` rows are kept. Cosine uses the stored vectors'
//!    norms, computed once when a vector is added, and one dot product per
//!    row (one accumulator instead of three).
//! 2. **rescore**: those candidates are scored again exactly as sqlite-vec's
//!    C code scores them ([`sqlite_vec_score`]: sequential `f32` sums, the
//!    square roots and the division in `f64`), sorted, and cut to `k`.
//!
//! With [`FlatVectors::quantize`], the select pass reads int8 codes (a
//! quarter of the bytes, [`crate::int8`]) and keeps the rows whose *lower
//! bound* is smallest; the answer is accepted only when the bound proves
//! that no other row can enter the top-k, and otherwise the `f32` select
//! pass runs. The codes change the speed of a search, never its answer.
//! Once the codes are built, [`FlatVectors::read_rows_from`] can drop the
//! `f32` copy: the rows the rescore pass needs are then read from a
//! [`RowSource`] (a sqlite-vec shard's memory-mapped file), so the memory
//! held is the codes' (about a quarter of the vectors) instead of the
//! vectors plus codes. The rare searches the bound cannot serve (a zero
//! query under cosine) then run the `f32` select over the source, one row
//! copy at a time: slower, the same answer.
//!
//! The scores are therefore bit-identical to the ones sqlite-vec reports
//! (`1 - cos`, plain Euclidean distance), not merely close: near
//! neighbours under cosine have distances near 0, where the rounding of a
//! differently ordered sum is a large *relative* error. The selection can
//! only differ from an exact one when more than `max(k, 32)` rows lie
//! within the SIMD kernels' rounding error (about 1e-6) of the k-th score:
//! those rows are tied for every practical purpose.

use std::sync::atomic::{AtomicU64, Ordering};

use shardvec_core::distance::{norm, total_order};
use shardvec_core::filter::RowSet;
use shardvec_core::Metric;
use simsimd::SpatialSimilarity;

use crate::int8::{Int8Codes, MAX_DIM};

/// Extra candidates the select pass keeps for rescoring: `max(k, this)`.
const RESCORE_MARGIN: usize = 32;

/// Candidates the int8 select pass rescores first: `k + max(k, this)`.
/// More than the `f32` pass, as the codes' estimates are coarser; the rows
/// the bound cannot rule out are rescored after them (see BENCHMARKS.md).
const INT8_MARGIN: usize = 64;

/// Int8 searches, and the rows rescored beyond the first candidates
/// (process-wide; `shardvec bench` reports them).
static INT8_SEARCHES: AtomicU64 = AtomicU64::new(0);
static INT8_EXTRA_ROWS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Each search's lower bounds, one buffer per thread (no allocation
    /// per search once warm).
    static BOUNDS: std::cell::RefCell<Vec<(f32, u32)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `(searches, extra rows rescored)` of the int8 select pass in this
/// process.
pub fn int8_stats() -> (u64, u64) {
    (
        INT8_SEARCHES.load(Ordering::Relaxed),
        INT8_EXTRA_ROWS.load(Ordering::Relaxed),
    )
}

/// How the rescore pass reports a distance: as sqlite-vec does (default),
/// or as Lance does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Scores {
    /// [`sqlite_vec_score`]: `1 - cos`, Euclidean distance, `-dot`.
    #[default]
    SqliteVec,
    /// [`lance_score`]: `1 - cos`, *squared* Euclidean distance, `1 - dot`.
    Lance,
}

/// Rows held elsewhere than in a [`FlatVectors`]' own `f32` copy (a
/// memory-mapped shard file), read one at a time by the rescore pass.
pub trait RowSource: std::fmt::Debug + Send + Sync {
    /// Copies row `row` (`out.len()` floats, the dimension) into `out`;
    /// `false` if there is no such row.
    fn read(&self, row: usize, out: &mut [f32]) -> bool;
    /// Bytes of memory the source holds (not the file it reads).
    fn heap_bytes(&self) -> usize;
}

/// One shard's vectors: in memory, or as int8 codes with the rows read
/// from a [`RowSource`].
#[derive(Debug, Clone)]
pub struct FlatVectors {
    dim: usize,
    metric: Metric,
    scores: Scores,
    /// Row-major vectors; empty once [`source`](Self::source) is set.
    data: Vec<f32>,
    /// Rows held.
    rows: usize,
    /// Where rows are read once the `f32` copy is dropped
    /// ([`read_rows_from`](FlatVectors::read_rows_from)).
    source: Option<std::sync::Arc<dyn RowSource>>,
    /// Euclidean norm of each row (cosine only).
    norms: Vec<f32>,
    /// Int8 codes for the select pass ([`quantize`](Self::quantize)).
    codes: Option<Int8Codes>,
}

impl FlatVectors {
    /// No vectors yet.
    pub fn new(dim: usize, metric: Metric) -> FlatVectors {
        FlatVectors {
            dim,
            metric,
            scores: Scores::SqliteVec,
            data: Vec::new(),
            rows: 0,
            source: None,
            norms: Vec::new(),
            codes: None,
        }
    }

    /// Reports distances as `scores` says (default [`Scores::SqliteVec`]).
    pub fn with_scores(mut self, scores: Scores) -> FlatVectors {
        self.scores = scores;
        self
    }

    /// Reserves room for `rows` more vectors.
    pub fn reserve(&mut self, rows: usize) {
        self.data.reserve(rows.saturating_mul(self.dim));
        if self.metric == Metric::Cosine {
            self.norms.reserve(rows);
        }
    }

    /// Appends one vector; `false` (and nothing added) if its length is not
    /// the dimension, or once rows are read from a source.
    pub fn push(&mut self, v: &[f32]) -> bool {
        if v.len() != self.dim || self.source.is_some() {
            return false;
        }
        self.data.extend_from_slice(v);
        self.rows += 1;
        if self.metric == Metric::Cosine {
            self.norms.push(norm(v));
        }
        // Codes describe the rows they were built from.
        self.codes = None;
        true
    }

    /// Builds int8 codes of the vectors held, for a faster select pass of
    /// the same answers (see the module docs). Call it once every vector
    /// is pushed: a later push drops the codes. Only the sqlite-vec scores
    /// use them; once rows are read from a source, the codes stay as they
    /// are.
    pub fn quantize(&mut self) {
        // Longer rows would overflow the codes' integer sums: they keep
        // the `f32` select.
        // Rows read from a source already have their codes.
        if self.scores == Scores::SqliteVec
            && self.dim > 0
            && self.dim <= MAX_DIM
            && self.source.is_none()
        {
            self.codes = Some(Int8Codes::build(&self.data, self.dim, self.metric));
        }
    }

    /// Whether int8 codes are held.
    pub fn is_quantized(&self) -> bool {
        self.codes.is_some()
    }

    /// Drops the `f32` copy: from now on rows are read from `source`,
    /// which must hold every row bit for bit (checked here, one pass over
    /// the rows). Only with int8 codes ([`quantize`](Self::quantize)),
    /// which keep the select pass off the source; without them, or if
    /// any row differs, nothing changes and `false` is returned.
    pub fn read_rows_from(&mut self, source: std::sync::Arc<dyn RowSource>) -> bool {
        if self.codes.is_none() || self.source.is_some() {
            return false;
        }
        let mut buf = vec![0f32; self.dim];
        let same = self
            .data
            .chunks_exact(self.dim.max(1))
            .enumerate()
            .all(|(i, row)| {
                source.read(i, &mut buf)
                    && row
                        .iter()
                        .zip(&buf)
                        .all(|(a, b)| a.to_bits() == b.to_bits())
            });
        if !same {
            return false;
        }
        self.data = Vec::new();
        self.source = Some(source);
        true
    }

    /// Whether rows are read from a [`RowSource`] rather than held.
    pub fn reads_rows_from_source(&self) -> bool {
        self.source.is_some()
    }

    /// Vectors held.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no vector is held.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Bytes held (a [`RowSource`]'s own memory included, not the file it
    /// reads).
    pub fn heap_bytes(&self) -> usize {
        (self.data.capacity() + self.norms.capacity()) * std::mem::size_of::<f32>()
            + self.codes.as_ref().map_or(0, Int8Codes::heap_bytes)
            + self.source.as_ref().map_or(0, |s| s.heap_bytes())
    }

    /// The exact top-`k` rows for `query` as `(score, row)`, best first,
    /// scored as [`sqlite_vec_score`] (or [`lance_score`]); ties keep row
    /// order. `query` must have the dimension (the reader checks it;
    /// otherwise nothing is returned); a row that scores NaN (a zero vector
    /// under cosine) is never returned.
    pub fn top_k(&self, query: &[f32], k: usize) -> Vec<(f32, u32)> {
        self.top_k_in(query, k, None)
    }

    /// [`top_k`](Self::top_k) among `rows` only (all rows if `None`): the
    /// filtered search. Only the rows in the set are read, so a selective
    /// filter scans fewer bytes than an unfiltered search.
    pub fn top_k_in(&self, query: &[f32], k: usize, rows: Option<&RowSet>) -> Vec<(f32, u32)> {
        if let Some(codes) = &self.codes {
            if let Some(found) = self.top_k_int8(codes, query, k, rows) {
                return found;
            }
        }
        let m = k.saturating_add(k.max(RESCORE_MARGIN));
        let candidates = match rows {
            None => self.select(query, m, 0..self.len()),
            Some(set) => self.select(query, m, set.iter()),
        };
        self.rescore(query, candidates, k)
    }

    /// The candidates scored exactly, best first, cut to `k`.
    fn rescore(&self, query: &[f32], candidates: Vec<(f32, u32)>, k: usize) -> Vec<(f32, u32)> {
        let mut buf = vec![0f32; self.dim];
        let mut exact: Vec<(f32, u32)> = Vec::with_capacity(candidates.len());
        for (_, row) in candidates {
            if let Some(v) = self.row_in(row as usize, &mut buf) {
                let d = self.exact(query, v);
                if !d.is_nan() {
                    exact.push((d, row));
                }
            }
        }
        exact.sort_by(|a, b| total_order(a.0, b.0).then(a.1.cmp(&b.1)));
        exact.truncate(k);
        exact
    }

    /// The int8 select pass: every row's lower bound, the `m` smallest
    /// rescored exactly, then every other row whose bound is below the
    /// k-th exact key (plus the rounding of reported scores). No row left
    /// out can enter the top-k, so the answer is the exact one. `None`
    /// only when the bound is unusable (a zero query under cosine, fewer
    /// than k scorable rows among the candidates).
    fn top_k_int8(
        &self,
        codes: &Int8Codes,
        query: &[f32],
        k: usize,
        rows: Option<&RowSet>,
    ) -> Option<Vec<(f32, u32)>> {
        if k == 0 || self.dim == 0 || query.len() != self.dim {
            return None;
        }
        if self.metric == Metric::Cosine && norm(query) == 0.0 {
            return None;
        }
        let q = codes.query(query);
        INT8_SEARCHES.fetch_add(1, Ordering::Relaxed);
        BOUNDS.with(|cell| {
            let mut bounds = cell.borrow_mut();
            bounds.clear();
            // A zero vector has no cosine: the codes give it an infinite
            // bound, and its rescore is NaN (dropped, as `select` skips it).
            match rows {
                None => codes.lower_bounds(&q, None, &mut bounds),
                Some(set) => codes.lower_bounds(&q, Some(&mut set.iter()), &mut bounds),
            }
            let m = k.saturating_add(k.max(INT8_MARGIN)).min(bounds.len());
            if m < bounds.len() {
                bounds.select_nth_unstable_by(m, |a, b| total_order(a.0, b.0));
            }
            let (pool, rest) = bounds.split_at(m);
            let exact = self.rescore(query, pool.to_vec(), k);
            if exact.len() < k {
                return if rest.is_empty() { Some(exact) } else { None };
            }
            let (upper, rounding) = codes.key_upper_bound(&q, exact[k - 1].0);
            let threshold = upper + rounding;
            let extra: Vec<(f32, u32)> = rest
                .iter()
                .filter(|(lb, _)| f64::from(*lb) < threshold)
                .copied()
                .collect();
            if extra.is_empty() {
                return Some(exact);
            }
            INT8_EXTRA_ROWS.fetch_add(extra.len() as u64, Ordering::Relaxed);
            let mut all = self.rescore(query, extra, k);
            all.extend(exact);
            all.sort_by(|a, b| total_order(a.0, b.0).then(a.1.cmp(&b.1)));
            all.truncate(k);
            Some(all)
        })
    }

    /// The vector of `row`, copied.
    pub fn row_to_vec(&self, row: usize) -> Option<Vec<f32>> {
        let mut buf = vec![0f32; self.dim];
        Some(self.row_in(row, &mut buf)?.to_vec())
    }

    /// The vector of `row`: in the `f32` copy, or read from the source
    /// into `buf` (of the dimension).
    #[inline]
    fn row_in<'a>(&'a self, row: usize, buf: &'a mut [f32]) -> Option<&'a [f32]> {
        match &self.source {
            None => {
                let start = row.checked_mul(self.dim)?;
                self.data.get(start..start.checked_add(self.dim)?)
            }
            Some(source) => source.read(row, buf).then_some(&*buf),
        }
    }

    /// The reported distance of `v` to `query`.
    fn exact(&self, query: &[f32], v: &[f32]) -> f32 {
        match self.scores {
            Scores::SqliteVec => sqlite_vec_score(self.metric, query, v),
            Scores::Lance => lance_score(self.metric, query, v),
        }
    }

    /// The select pass: the best `m` of `rows` by the SIMD kernels' scores
    /// (any monotone form of the distance: the rescore pass reports it).
    fn select(
        &self,
        query: &[f32],
        m: usize,
        rows: impl Iterator<Item = usize>,
    ) -> Vec<(f32, u32)> {
        let mut best = TopK::new(m);
        if self.dim == 0 || query.len() != self.dim {
            return best.into_sorted();
        }
        let mut buf = vec![0f32; self.dim];
        match self.metric {
            Metric::Cosine => {
                let qn = norm(query);
                for i in rows {
                    let vn = self.norms.get(i).copied().unwrap_or(0.0);
                    // A zero vector has no cosine (the rescore makes it NaN
                    // and drops it): never let it take a candidate's place.
                    if vn == 0.0 {
                        continue;
                    }
                    let Some(v) = self.row_in(i, &mut buf) else {
                        continue;
                    };
                    let d = match <f32 as SpatialSimilarity>::dot(query, v) {
                        _ if qn == 0.0 => 1.0,
                        Some(dot) => (1.0 - dot / (f64::from(qn) * f64::from(vn))) as f32,
                        None => f32::NAN,
                    };
                    best.offer(d, i as u32);
                }
            }
            Metric::L2 => {
                for i in rows {
                    let Some(v) = self.row_in(i, &mut buf) else {
                        continue;
                    };
                    let d = <f32 as SpatialSimilarity>::l2sq(query, v)
                        .map_or(f32::NAN, |d| d.max(0.0).sqrt() as f32);
                    best.offer(d, i as u32);
                }
            }
            Metric::DotProduct => {
                for i in rows {
                    let Some(v) = self.row_in(i, &mut buf) else {
                        continue;
                    };
                    let d =
                        <f32 as SpatialSimilarity>::dot(query, v).map_or(f32::NAN, |d| -d as f32);
                    best.offer(d, i as u32);
                }
            }
        }
        best.into_sorted()
    }
}

/// A distance as Lance reports it (`lance-linalg`): `1 - cos`, the
/// *squared* Euclidean distance, and `1 - dot`, here with the same
/// sequential `f32` sums as [`sqlite_vec_score`] (Lance's SIMD sums may
/// differ in the last bits).
pub fn lance_score(metric: Metric, a: &[f32], b: &[f32]) -> f32 {
    match metric {
        Metric::Cosine => sqlite_vec_score(metric, a, b),
        Metric::L2 => {
            let mut sum = 0f32;
            for (&x, &y) in a.iter().zip(b) {
                let t = x - y;
                sum += t * t;
            }
            sum
        }
        Metric::DotProduct => 1.0 + sqlite_vec_score(metric, a, b),
    }
}

/// A score exactly as sqlite-vec 0.1.9's scalar C code computes it
/// (`distance_cosine_float`, `l2_sqr_float` in `sqlite-vec.c`): `f32` sums
/// in index order, without fused multiply-adds; `sqrt` of the promoted
/// sums, and for cosine the division and `1 - …`, in `f64`; the result
/// rounded to `f32`. The inner product (not a sqlite-vec metric) is the
/// same sequential sum, negated.
pub fn sqlite_vec_score(metric: Metric, a: &[f32], b: &[f32]) -> f32 {
    match metric {
        Metric::Cosine => {
            let (mut dot, mut a2, mut b2) = (0f32, 0f32, 0f32);
            for (&x, &y) in a.iter().zip(b) {
                dot += x * y;
                a2 += x * x;
                b2 += y * y;
            }
            (1.0 - f64::from(dot) / (f64::from(a2).sqrt() * f64::from(b2).sqrt())) as f32
        }
        Metric::L2 => {
            let mut sum = 0f32;
            for (&x, &y) in a.iter().zip(b) {
                let t = x - y;
                sum += t * t;
            }
            f64::from(sum).sqrt() as f32
        }
        Metric::DotProduct => {
            let mut dot = 0f32;
            for (&x, &y) in a.iter().zip(b) {
                dot += x * y;
            }
            -dot
        }
    }
}

/// The `k` smallest scores seen, kept sorted. Insertion is O(k) but only
/// for a score better than the current k-th, which after the first few
/// hundred rows is rare: no allocation beyond the k slots, no sort of all
/// rows.
pub(crate) struct TopK {
    k: usize,
    items: Vec<(f32, u32)>,
}

impl TopK {
    pub(crate) fn new(k: usize) -> TopK {
        TopK {
            k,
            items: Vec::with_capacity(k.min(4096)),
        }
    }

    #[inline]
    pub(crate) fn offer(&mut self, d: f32, row: u32) {
        if d.is_nan() || self.k == 0 {
            return;
        }
        if self.items.len() == self.k {
            match self.items.last() {
                Some(&(worst, _)) if d < worst => {
                    self.items.pop();
                }
                _ => return,
            }
        }
        // After every equal score already kept: ties keep row order.
        let at = self
            .items
            .partition_point(|x| total_order(x.0, d) != std::cmp::Ordering::Greater);
        self.items.insert(at, (d, row));
    }

    pub(crate) fn into_sorted(self) -> Vec<(f32, u32)> {
        self.items
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_distr::{Distribution, StandardNormal};
    use shardvec_core::distance::distance;

    /// Every row of `data` scored as sqlite-vec does and sorted (ties by
    /// row): the exact answer, written independently of the scan.
    fn exhaustive(metric: Metric, data: &[Vec<f32>], q: &[f32]) -> Vec<(f32, u32)> {
        let mut all: Vec<(f32, u32)> = data
            .iter()
            .enumerate()
            .map(|(i, v)| (sqlite_vec_score(metric, q, v), i as u32))
            .filter(|x| !x.0.is_nan())
            .collect();
        all.sort_by(|x, y| total_order(x.0, y.0).then(x.1.cmp(&y.1)));
        all
    }

    /// `n` seeded vectors around `clusters` random centres.
    fn blobs(n: usize, dim: usize, clusters: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let centres: Vec<Vec<f32>> = (0..clusters)
            .map(|_| (0..dim).map(|_| rng.random_range(-1.0..1.0)).collect())
            .collect();
        (0..n)
            .map(|i| {
                centres[i % clusters]
                    .iter()
                    .map(|c| {
                        let z: f32 = StandardNormal.sample(&mut rng);
                        c + 0.3 * z
                    })
                    .collect()
            })
            .collect()
    }

    /// Equal to scoring every row with [`sqlite_vec_score`] and sorting
    /// (rows and score bits), and those scores agree with the core's
    /// independently written distances.
    #[test]
    fn equals_an_exhaustive_exact_search() {
        let data = blobs(700, 24, 4, 5);
        let queries = blobs(20, 24, 4, 9);
        for metric in [Metric::Cosine, Metric::L2, Metric::DotProduct] {
            let mut flat = FlatVectors::new(24, metric);
            flat.reserve(700);
            for v in &data {
                assert!(flat.push(v));
            }
            assert!(!flat.push(&[1.0; 3]), "wrong dimension refused");
            assert_eq!(flat.len(), 700);
            for q in &queries {
                let all = exhaustive(metric, &data, q);
                for k in [1, 10, 100, 1000] {
                    let got = flat.top_k(q, k);
                    assert_eq!(got, all[..k.min(700)], "{metric:?} k {k}");
                }
                for (d, i) in &all[..50] {
                    let v = &data[*i as usize];
                    let core = distance(metric, q, v);
                    // The core's L2 is squared (routing); sqlite-vec reports
                    // the plain distance.
                    let core = if metric == Metric::L2 {
                        core.sqrt()
                    } else {
                        core
                    };
                    assert!(
                        (d - core).abs() <= 1e-5 * core.abs().max(1.0),
                        "{metric:?}: {d} vs {core}"
                    );
                }
            }
        }
    }

    /// With int8 codes: still equal to scoring every row and sorting (rows
    /// and score bits), for every metric and k, filtered or not; the proof
    /// accepts most searches (the codes are used, not bypassed), and where
    /// it fails the answer is the `f32` path's. Adversarial data: a
    /// constant dimension, exact duplicates (ties), large magnitudes.
    #[test]
    fn quantized_equals_an_exhaustive_exact_search() {
        let mut data = blobs(2_000, 40, 6, 21);
        for v in &mut data {
            v[3] = 0.25; // a constant dimension: scale 0
        }
        data[20] = vec![0.0; 40]; // no cosine
        for i in 0..50 {
            data[1_000 + i] = data[7].clone(); // 51 copies of one row
            data[1_500 + i].iter_mut().for_each(|x| *x *= 1e4);
        }
        let queries = blobs(40, 40, 6, 22);
        let mut near_dup = data[7].clone();
        near_dup[0] += 1e-4;
        let all_queries: Vec<Vec<f32>> = queries.into_iter().chain([near_dup]).collect();
        for metric in [Metric::Cosine, Metric::L2, Metric::DotProduct] {
            let mut flat = FlatVectors::new(40, metric);
            for v in &data {
                assert!(flat.push(v));
            }
            flat.quantize();
            assert!(flat.is_quantized());
            let codes = flat.codes.clone().unwrap();
            let (mut proven, mut tried) = (0, 0);
            for q in &all_queries {
                let all = exhaustive(metric, &data, q);
                for k in [1, 10, 100] {
                    assert_eq!(flat.top_k(q, k), all[..k], "{metric:?} k {k}");
                    tried += 1;
                    let found = flat.top_k_int8(&codes, q, k, None);
                    assert_eq!(found.as_deref(), Some(&all[..k]), "{metric:?} k {k}");
                    proven += 1;
                }
            }
            assert_eq!(proven, tried);
        }
        // Ordinary data: the bound rules out nearly every row, so few are
        // rescored beyond the first candidates.
        let data = blobs(3_000, 64, 8, 31);
        let queries = blobs(30, 64, 8, 32);
        for metric in [Metric::Cosine, Metric::L2, Metric::DotProduct] {
            let mut flat = FlatVectors::new(64, metric);
            data.iter().for_each(|v| assert!(flat.push(v)));
            flat.quantize();
            let codes = flat.codes.clone().unwrap();
            for query in &queries {
                let qc = codes.query(query);
                let mut scanned = Vec::new();
                codes.lower_bounds(&qc, None, &mut scanned);
                let mut given = Vec::new();
                codes.lower_bounds(&qc, Some(&mut (0..3_000)), &mut given);
                assert_eq!(scanned, given, "the scan and a row set bound alike");
                let exact = flat.top_k(query, 10);
                let kth = codes.key_upper_bound(&qc, exact[9].0);
                let unruled = scanned
                    .iter()
                    .filter(|(lb, _)| f64::from(*lb) < kth.0 + kth.1)
                    .count();
                assert!(
                    unruled <= 300,
                    "{metric:?}: {unruled} of 3000 rows not ruled out"
                );
            }
        }
    }

    /// Among a row set: equal to scoring only the rows in the set and
    /// sorting; Lance's conventions report squared L2 and `1 - dot`.
    #[test]
    fn filtered_equals_an_exhaustive_search_of_the_rows() {
        use shardvec_core::filter::ColumnsBuilder;
        use shardvec_core::{Filter, VectorId};
        let data = blobs(600, 16, 3, 11);
        let queries = blobs(8, 16, 3, 12);
        let mut cols = ColumnsBuilder::new();
        for i in 0..600 {
            let payload = serde_json::json!({ "m": i % 7 });
            cols.push(&VectorId::Int(i), Some(&payload));
        }
        let cols = cols.finish();
        let filter = Filter::parse(&serde_json::json!({"m": {"$in": [0, 3]}})).unwrap();
        let rows = filter.select(&cols);
        assert_eq!(
            rows.count(),
            (0..600).filter(|i| i % 7 == 0 || i % 7 == 3).count()
        );
        for (metric, scores) in [
            (Metric::Cosine, Scores::SqliteVec),
            (Metric::L2, Scores::SqliteVec),
            (Metric::L2, Scores::Lance),
            (Metric::DotProduct, Scores::Lance),
        ] {
            let mut flat = FlatVectors::new(16, metric).with_scores(scores);
            for v in &data {
                flat.push(v);
            }
            for q in &queries {
                let mut all: Vec<(f32, u32)> = data
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| i % 7 == 0 || i % 7 == 3)
                    .map(|(i, v)| {
                        let s = match scores {
                            Scores::SqliteVec => sqlite_vec_score(metric, q, v),
                            Scores::Lance => lance_score(metric, q, v),
                        };
                        (s, i as u32)
                    })
                    .collect();
                all.sort_by(|x, y| total_order(x.0, y.0).then(x.1.cmp(&y.1)));
                for k in [1, 10, 500] {
                    let got = flat.top_k_in(q, k, Some(&rows));
                    assert_eq!(got, all[..k.min(all.len())], "{metric:?} {scores:?} k {k}");
                }
            }
        }
        let l2 = lance_score(Metric::L2, &[0.0, 0.0], &[3.0, 4.0]);
        assert_eq!(l2, 25.0);
        assert_eq!(
            lance_score(Metric::DotProduct, &[1.0, 0.0], &[0.5, 9.0]),
            0.5
        );
    }

    #[test]
    fn ties_keep_row_order_and_nan_is_skipped() {
        let mut flat = FlatVectors::new(2, Metric::L2);
        for v in [
            [1.0, 0.0],
            [0.0, 1.0],
            [f32::NAN, 0.0],
            [1.0, 0.0],
            [5.0, 5.0],
        ] {
            flat.push(&v);
        }
        let got = flat.top_k(&[0.0, 0.0], 10);
        let rows: Vec<u32> = got.iter().map(|x| x.1).collect();
        assert_eq!(rows, vec![0, 1, 3, 4]);
        assert_eq!(got[0].0, 1.0);
        assert!(flat.top_k(&[0.0, 0.0], 0).is_empty());
        assert!(flat.top_k(&[0.0], 3).is_empty(), "wrong dimension");
    }

    #[test]
    fn zero_vectors_are_never_returned_under_cosine() {
        let mut flat = FlatVectors::new(2, Metric::Cosine);
        flat.push(&[0.0, 0.0]);
        flat.push(&[1.0, 1.0]);
        let got = flat.top_k(&[2.0, 2.0], 2);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1, 1);
        assert!(got[0].0.abs() < 1e-6);
        assert!(sqlite_vec_score(Metric::Cosine, &[2.0, 2.0], &[0.0, 0.0]).is_nan());
    }

    /// Rows served by the test: a copy of the vectors.
    #[derive(Debug)]
    struct Rows(Vec<Vec<f32>>);

    impl RowSource for Rows {
        fn read(&self, row: usize, out: &mut [f32]) -> bool {
            match self.0.get(row) {
                Some(v) if v.len() == out.len() => {
                    out.copy_from_slice(v);
                    true
                }
                _ => false,
            }
        }
        fn heap_bytes(&self) -> usize {
            0
        }
    }

    /// Dropping the `f32` copy for a row source changes no answer (the
    /// int8 pass and the `f32` fallback, which a zero query takes under
    /// cosine, both read the source), frees the copy, and is refused
    /// without codes or when the source differs from the copy by one bit.
    #[test]
    fn rows_read_from_a_source_answer_as_the_copy_did() {
        let dim = 24;
        let data = blobs(1_500, dim, 5, 41);
        let mut queries = blobs(12, dim, 5, 42);
        queries.push(vec![0.0; dim]);
        queries.push(data[99].clone());
        for metric in [Metric::Cosine, Metric::L2, Metric::DotProduct] {
            let mut flat = FlatVectors::new(dim, metric);
            data.iter().for_each(|v| assert!(flat.push(v)));
            let mut plain = flat.clone();
            assert!(!plain.read_rows_from(std::sync::Arc::new(Rows(data.clone()))));
            flat.quantize();
            let before: Vec<Vec<(f32, u32)>> = queries
                .iter()
                .flat_map(|q| [1, 10, 100].map(|k| flat.top_k(q, k)))
                .collect();
            let mut altered = data.clone();
            altered[700][3] = f32::from_bits(altered[700][3].to_bits() ^ 1);
            assert!(!flat.read_rows_from(std::sync::Arc::new(Rows(altered))));
            assert!(!flat.reads_rows_from_source());
            let held = flat.heap_bytes();
            assert!(flat.read_rows_from(std::sync::Arc::new(Rows(data.clone()))));
            assert!(flat.reads_rows_from_source());
            assert!(
                flat.heap_bytes() + data.len() * dim * 4 <= held,
                "{metric:?}"
            );
            let after: Vec<Vec<(f32, u32)>> = queries
                .iter()
                .flat_map(|q| [1, 10, 100].map(|k| flat.top_k(q, k)))
                .collect();
            assert_eq!(before, after, "{metric:?}");
            let want = exhaustive(metric, &data, &queries[0]);
            assert_eq!(after[1], want[..10], "{metric:?}");
            assert_eq!(flat.row_to_vec(5).as_deref(), Some(&data[5][..]));
            assert!(
                !flat.push(&data[0]),
                "no rows added once read from a source"
            );
            assert_eq!(flat.len(), data.len());
        }
    }
}
