//! Distances used for routing, computed on float32 exactly as docs/format.md
//! defines them (lower = closer):
//!
//! - `l2`: squared Euclidean distance;
//! - `cosine`: `1 - dot / (|a| |b| + 1e-10)`, and `1.0` for a zero query;
//! - `dot_product`: `-dot`.
//!
//! # One summation order on every target
//!
//! Routes must be the same bit for bit wherever a snapshot is read: the
//! Python reference (NumPy), the native readers, and the WebAssembly package
//! in edge workers and browsers. A route is decided by comparing sums of
//! float32 terms, and float addition is not associative, so "the same sum"
//! means the same additions in the same order. That order is fixed here,
//! explicitly, as NumPy's pairwise summation (`sum`): eight interleaved
//! partial sums per block of up to 128 terms, reduced in a fixed tree
//! `((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7))`, then the block's remainder in
//! index order; longer runs split in two halves. It is both what the
//! reference's NumPy reductions compute and what maps onto SIMD: the eight
//! partial sums are independent, so they are eight lanes (an index-order
//! fold could not be vectorised at all).
//!
//! Each target computes exactly those IEEE-754 operations, each rounded
//! once:
//!
//! - natively, the scalar `block` (over `[f32; 8]` chunks), which
//!   the compiler turns into 8-lane SIMD (two SSE registers on x86-64, NEON
//!   on aarch64) without changing any operation: lane `j` of the vector is
//!   partial sum `r[j]`;
//! - in WebAssembly built with `simd128` (the package, see
//!   `scripts/wasm.sh`), the same block written with `f32x4` intrinsics:
//!   partial sums `r0..r3` in one vector and `r4..r7` in another, the tree
//!   reduced lane by lane in scalar code;
//! - elsewhere (`wasm32v1-none`, which has no SIMD), the scalar block.
//!
//! No multiply-add is fused anywhere: a fused `a * b + c` rounds once where
//! NumPy rounds twice. Rust never contracts `a * b + c` on its own, and no
//! kernel here calls `mul_add` or an FMA intrinsic. Float SIMD lanes are
//! IEEE operations like scalar ones (WebAssembly's `f32x4` arithmetic is
//! specified as the scalar `f32` operations per lane, subnormals included),
//! so the lane-wise and the scalar blocks give the same bits; the wasm
//! tests (`tests/wasm/simd.test.mjs`) compare every score against the native
//! binary's, for dimensions that are and are not multiples of 8.
//!
//! The writer and the readers share this code, so a vector is routed to the
//! shard the writer put it in, on every target.

use core::cmp::Ordering;

use crate::types::Metric;

/// Total order on scores and distances: ascending, `-0.0` equal to `0.0`,
/// NaN after every number (as NumPy's sorts place it).
#[inline]
pub fn total_order(a: f32, b: f32) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (false, false) => (a + 0.0).total_cmp(&(b + 0.0)),
        (a_nan, b_nan) => a_nan.cmp(&b_nan),
    }
}

/// Terms per block of [`sum`] (NumPy's `PW_BLOCKSIZE`).
const BLOCK: usize = 128;

/// The term summed for each pair of coordinates `(x, y)`, as one scalar
/// operation and as the same operation on four lanes.
trait Term {
    fn scalar(x: f32, y: f32) -> f32;
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    fn lanes(x: core::arch::wasm32::v128, y: core::arch::wasm32::v128) -> core::arch::wasm32::v128;
}

/// `x * y` (dot products and norms).
struct Product;

impl Term for Product {
    #[inline(always)]
    fn scalar(x: f32, y: f32) -> f32 {
        x * y
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    #[inline(always)]
    fn lanes(x: core::arch::wasm32::v128, y: core::arch::wasm32::v128) -> core::arch::wasm32::v128 {
        core::arch::wasm32::f32x4_mul(x, y)
    }
}

/// `(y - x)²` (squared Euclidean distance).
struct SquaredDifference;

impl Term for SquaredDifference {
    #[inline(always)]
    fn scalar(x: f32, y: f32) -> f32 {
        let d = y - x;
        d * d
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    #[inline(always)]
    fn lanes(x: core::arch::wasm32::v128, y: core::arch::wasm32::v128) -> core::arch::wasm32::v128 {
        use core::arch::wasm32::{f32x4_mul, f32x4_sub};
        let d = f32x4_sub(y, x);
        f32x4_mul(d, d)
    }
}

/// `Σ T(a[i], b[i])` over the common length of `a` and `b`, in the order
/// of NumPy's `pairwise_sum` (numpy/_core/src/umath/loops_utils.h.src):
/// fewer than 8 terms in index order; up to 128 terms as one [`block`];
/// longer runs split in two halves whose first is a multiple of 8, each
/// summed the same way, and the two sums added.
#[inline]
fn sum<T: Term>(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    // Checked splits (never failing here): no panic path to keep out of
    // line in the size-optimised wasm build.
    let (Some(a), Some(b)) = (a.get(..n), b.get(..n)) else {
        return 0.0;
    };
    if n < 8 {
        in_order::<T>(a, b)
    } else if n <= BLOCK {
        block::<T>(a, b)
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        let (Some((a1, a2)), Some((b1, b2))) = (a.split_at_checked(n2), b.split_at_checked(n2))
        else {
            return 0.0;
        };
        sum::<T>(a1, b1) + sum::<T>(a2, b2)
    }
}

/// `Σ T(a[i], b[i])` in index order, starting from `0.0` (runs of fewer
/// than 8 terms).
#[inline(always)]
fn in_order<T: Term>(a: &[f32], b: &[f32]) -> f32 {
    let mut res = 0.0f32;
    for (x, y) in a.iter().zip(b) {
        res += T::scalar(*x, *y);
    }
    res
}

/// One block of NumPy's pairwise sum (`a` and `b` of one length, 8 to 128
/// terms): eight partial sums `r[j]`, started at the first chunk's terms
/// (not at `0.0`, which would turn a `-0.0` term into `+0.0`) and
/// accumulated `r[j] += T(a[8k + j], b[8k + j])` over the other whole
/// chunks; combined `((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7))`; then the
/// remainder (fewer than 8 terms) added in index order.
///
/// The scalar form: the compiler keeps `r` in vector registers (lane `j` =
/// `r[j]`), with exactly these operations.
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
#[inline(always)]
fn block<T: Term>(a: &[f32], b: &[f32]) -> f32 {
    let (ca, ta) = a.as_chunks::<8>();
    let (cb, tb) = b.as_chunks::<8>();
    let (Some((fa, ra)), Some((fb, rb))) = (ca.split_first(), cb.split_first()) else {
        return in_order::<T>(a, b);
    };
    let mut r: [f32; 8] = core::array::from_fn(|j| T::scalar(fa[j], fb[j]));
    for (x, y) in ra.iter().zip(rb) {
        for j in 0..8 {
            r[j] += T::scalar(x[j], y[j]);
        }
    }
    let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (x, y) in ta.iter().zip(tb) {
        res += T::scalar(*x, *y);
    }
    res
}

/// One block of NumPy's pairwise sum with WebAssembly `simd128`: the same
/// operations as the scalar [`block`], the partial sums `r0..r3` in the
/// lanes of `lo` and `r4..r7` in those of `hi`; the tree reduction and the
/// remainder in scalar code, in the scalar block's order.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
fn block<T: Term>(a: &[f32], b: &[f32]) -> f32 {
    use core::arch::wasm32::{f32x4_add, f32x4_extract_lane as lane, v128};
    /// A chunk's lanes 0..4 and 4..8: two `v128.load`s (a by-value cast,
    /// so the chunk needs no 16-byte alignment).
    #[inline(always)]
    fn halves(c: &[f32; 8]) -> (v128, v128) {
        let [lo, hi] = bytemuck::cast::<[f32; 8], [v128; 2]>(*c);
        (lo, hi)
    }
    let (ca, ta) = a.as_chunks::<8>();
    let (cb, tb) = b.as_chunks::<8>();
    let (Some((fa, ra)), Some((fb, rb))) = (ca.split_first(), cb.split_first()) else {
        return in_order::<T>(a, b);
    };
    let ((x0, x1), (y0, y1)) = (halves(fa), halves(fb));
    let mut r = (T::lanes(x0, y0), T::lanes(x1, y1));
    /// The partial sums after one more chunk.
    #[inline(always)]
    fn add<T: Term>((lo, hi): (v128, v128), x: &[f32; 8], y: &[f32; 8]) -> (v128, v128) {
        let ((x0, x1), (y0, y1)) = (halves(x), halves(y));
        (
            f32x4_add(lo, T::lanes(x0, y0)),
            f32x4_add(hi, T::lanes(x1, y1)),
        )
    }
    // Two chunks a step (the size-optimised build does not unroll loops);
    // each partial sum still takes its terms chunk after chunk.
    let (pa, ra) = ra.as_chunks::<2>();
    let (pb, rb) = rb.as_chunks::<2>();
    for ([x, x2], [y, y2]) in pa.iter().zip(pb) {
        r = add::<T>(add::<T>(r, x, y), x2, y2);
    }
    for (x, y) in ra.iter().zip(rb) {
        r = add::<T>(r, x, y);
    }
    let (lo, hi) = r;
    let mut res = ((lane::<0>(lo) + lane::<1>(lo)) + (lane::<2>(lo) + lane::<3>(lo)))
        + ((lane::<0>(hi) + lane::<1>(hi)) + (lane::<2>(hi) + lane::<3>(hi)));
    for (x, y) in ta.iter().zip(tb) {
        res += T::scalar(*x, *y);
    }
    res
}

/// Inner product.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    sum::<Product>(a, b)
}

/// Squared Euclidean distance.
#[inline]
pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    sum::<SquaredDifference>(a, b)
}

/// Euclidean norm.
#[inline]
pub fn norm(a: &[f32]) -> f32 {
    libm::sqrtf(dot(a, a))
}

/// Cosine distance given precomputed norms (`1.0` when the query is zero).
#[inline]
pub fn cosine_with_norms(dot_ab: f32, norm_query: f32, norm_target: f32) -> f32 {
    if norm_query == 0.0 {
        return 1.0;
    }
    1.0 - dot_ab / (norm_target * norm_query + 1e-10)
}

/// Routing distance between a query and a target under `metric`.
pub fn distance(metric: Metric, query: &[f32], target: &[f32]) -> f32 {
    match metric {
        Metric::L2 => l2_squared(query, target),
        Metric::DotProduct => -dot(target, query),
        Metric::Cosine => cosine_with_norms(dot(target, query), norm(query), norm(target)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        let a = [1.0, 0.0, 0.0];
        let b = [0.0, 2.0, 0.0];
        assert_eq!(distance(Metric::L2, &a, &b), 5.0);
        assert_eq!(distance(Metric::DotProduct, &a, &[3.0, 1.0, 0.0]), -3.0);
        assert!((distance(Metric::Cosine, &a, &b) - 1.0).abs() < 1e-6);
        assert!(distance(Metric::Cosine, &a, &[2.0, 0.0, 0.0]).abs() < 1e-6);
        assert_eq!(distance(Metric::Cosine, &[0.0; 3], &b), 1.0);
    }

    /// NumPy's pairwise summation, transcribed literally (index arithmetic
    /// as in C), against the closure-based one.
    fn numpy_pairwise(a: &[f32]) -> f32 {
        let n = a.len();
        if n < 8 {
            let mut res = 0.0f32;
            for x in a {
                res += *x;
            }
            res
        } else if n <= 128 {
            let mut r = [a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]];
            let mut i = 8;
            while i < n - (n % 8) {
                for j in 0..8 {
                    r[j] += a[i + j];
                }
                i += 8;
            }
            let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
            while i < n {
                res += a[i];
                i += 1;
            }
            res
        } else {
            let mut n2 = n / 2;
            n2 -= n2 % 8;
            numpy_pairwise(&a[..n2]) + numpy_pairwise(&a[n2..])
        }
    }

    #[test]
    fn sums_in_numpy_pairwise_order() {
        // Values of very different magnitudes make every order give
        // another float; only the same order gives the same bits.
        for n in [
            0, 1, 7, 8, 9, 13, 31, 32, 127, 128, 129, 300, 767, 768, 1000,
        ] {
            let a: std::vec::Vec<f32> = (0..n)
                .map(|i| ((i * 7919 % 1009) as f32 - 500.0) * if i % 3 == 0 { 1e4 } else { 1e-3 })
                .collect();
            let b: std::vec::Vec<f32> = (0..n).map(|i| 1.0 + (i % 5) as f32 * 0.25).collect();
            let products: std::vec::Vec<f32> = a.iter().zip(&b).map(|(x, y)| x * y).collect();
            assert_eq!(
                dot(&a, &b).to_bits(),
                numpy_pairwise(&products).to_bits(),
                "dot, n {n}"
            );
            let squares: std::vec::Vec<f32> =
                a.iter().zip(&b).map(|(x, y)| (y - x) * (y - x)).collect();
            assert_eq!(
                l2_squared(&a, &b).to_bits(),
                numpy_pairwise(&squares).to_bits(),
                "l2, n {n}"
            );
        }
    }

    #[test]
    fn blocks_start_at_the_first_terms() {
        // A block's partial sums start at its first chunk's terms, as
        // NumPy's do: a sum of `-0.0` terms stays `-0.0` (a start at `0.0`
        // would make it `+0.0`). Runs under 8 terms start at `0.0`.
        for n in [8, 9, 15, 16, 128, 129, 768, 1000] {
            let a = std::vec![-1.0f32; n];
            let b = std::vec![0.0f32; n];
            assert_eq!(dot(&a, &b).to_bits(), (-0.0f32).to_bits(), "n {n}");
        }
        for n in [1, 7] {
            assert_eq!(dot(&[-1.0; 7][..n], &[0.0; 7][..n]).to_bits(), 0, "n {n}");
        }
    }
}
