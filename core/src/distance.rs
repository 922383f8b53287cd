//! Distances used for routing, computed on float32 exactly as FORMAT.md
//! defines them (lower = closer):
//!
//! - `l2`: squared Euclidean distance;
//! - `cosine`: `1 - dot / (|a| |b| + 1e-10)`, and `1.0` for a zero query;
//! - `dot_product`: `-dot`.
//!
//! The loops accumulate in f32 in index order, as the reference's NumPy code
//! does for these small vectors; they are written so that the compiler
//! vectorises them without changing the order of additions.

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

/// Inner product.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).fold(0.0f32, |acc, (x, y)| acc + x * y)
}

/// Squared Euclidean distance.
#[inline]
pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).fold(0.0f32, |acc, (x, y)| {
        let d = y - x;
        acc + d * d
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
}
