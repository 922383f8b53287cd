//! Distances used for routing, computed on float32 exactly as docs/format.md
//! defines them (lower = closer):
//!
//! - `l2`: squared Euclidean distance;
//! - `cosine`: `1 - dot / (|a| |b| + 1e-10)`, and `1.0` for a zero query;
//! - `dot_product`: `-dot`.
//!
//! Sums run in f32 in NumPy's pairwise order ([`pairwise_sum`]): eight
//! interleaved partial sums per block of up to 128 terms, which is both what
//! the reference's NumPy reductions do and what the compiler turns into
//! 8-lane SIMD (an index-order fold cannot be vectorised: float addition is
//! not associative). The writer and the readers share this code, so routes
//! match bit for bit across them and across native and WebAssembly.

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

/// Terms per block of [`pairwise_sum`] (NumPy's `PW_BLOCKSIZE`).
const BLOCK: usize = 128;

/// `Σ f(a[i], b[i])` over the common length of `a` and `b`, in the order
/// of NumPy's `pairwise_sum` (numpy/_core/src/umath/loops_utils.h.src):
/// fewer than 8 terms in index order; up to 128 terms as 8 interleaved
/// partial sums `r[j] += f(a[8k + j], b[8k + j])`, combined
/// `((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7))`, then the remainder in order;
/// longer runs split in two halves whose first is a multiple of 8.
#[inline]
pub fn pairwise_sum<F: Fn(f32, f32) -> f32 + Copy>(a: &[f32], b: &[f32], f: F) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    if n < 8 {
        let mut res = 0.0f32;
        for (x, y) in a.iter().zip(b) {
            res += f(*x, *y);
        }
        res
    } else if n <= BLOCK {
        let whole = n - n % 8;
        let mut r = [0.0f32; 8];
        for j in 0..8 {
            r[j] = f(a[j], b[j]);
        }
        // Fixed-size chunks: no bounds checks, one 8-lane vector per step.
        for (ca, cb) in a[8..whole].chunks_exact(8).zip(b[8..whole].chunks_exact(8)) {
            for j in 0..8 {
                r[j] += f(ca[j], cb[j]);
            }
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (x, y) in a[whole..].iter().zip(&b[whole..]) {
            res += f(*x, *y);
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise_sum(&a[..n2], &b[..n2], f) + pairwise_sum(&a[n2..], &b[n2..], f)
    }
}

/// Inner product.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    pairwise_sum(a, b, |x, y| x * y)
}

/// Squared Euclidean distance.
#[inline]
pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    pairwise_sum(a, b, |x, y| {
        let d = y - x;
        d * d
    })
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
        for n in [0, 1, 7, 8, 9, 31, 32, 127, 128, 129, 300, 768, 1000] {
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
}
