//! Seeded synthetic data: Gaussian blobs, for `shardvec demo`, tests and
//! benchmarks. The same seed gives the same data on every machine (ChaCha8).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use shardvec_core::npy::Matrix;

use shardvec::{Error, Result};

/// A clustered dataset.
#[derive(Debug, Clone)]
pub struct Blobs {
    /// `[n, dim]` vectors.
    pub vectors: Matrix,
    /// The blob each vector was drawn from.
    pub labels: Vec<u32>,
    /// `[clusters, dim]` blob centres.
    pub centres: Matrix,
}

/// `n` vectors of dimension `dim` around `clusters` centres drawn from a
/// standard normal; each vector is its centre plus normal noise of
/// standard deviation `spread` per coordinate. Blobs take turns, so every
/// blob has `n / clusters` vectors (± 1).
pub fn blobs(n: usize, dim: usize, clusters: usize, spread: f32, seed: u64) -> Result<Blobs> {
    let clusters = clusters.max(1);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let centres: Vec<f32> = (0..clusters * dim)
        .map(|_| StandardNormal.sample(&mut rng))
        .collect();
    let mut data = Vec::with_capacity(n * dim);
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let c = i % clusters;
        labels.push(c as u32);
        for j in 0..dim {
            let noise: f32 = StandardNormal.sample(&mut rng);
            data.push(centres[c * dim + j] + spread * noise);
        }
    }
    Ok(Blobs {
        vectors: Matrix::new(n, dim, data).map_err(Error::Core)?,
        labels,
        centres: Matrix::new(clusters, dim, centres).map_err(Error::Core)?,
    })
}

/// `n` queries: random rows of `data` plus normal noise of standard
/// deviation `noise`, seeded.
pub fn queries_near(data: &Matrix, n: usize, noise: f32, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    if data.rows() == 0 {
        return Vec::new();
    }
    (0..n)
        .map(|_| {
            let row = data.row(rng.random_range(0..data.rows())).unwrap_or(&[]);
            row.iter()
                .map(|x| {
                    let e: f32 = StandardNormal.sample(&mut rng);
                    x + noise * e
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_are_seeded_and_clustered() {
        let a = blobs(300, 8, 3, 0.05, 1).unwrap();
        assert_eq!(a.vectors.rows(), 300);
        assert_eq!(a.vectors, blobs(300, 8, 3, 0.05, 1).unwrap().vectors);
        assert_ne!(a.vectors, blobs(300, 8, 3, 0.05, 2).unwrap().vectors);
        // Every vector is nearer its own centre than any other.
        for (v, l) in a.vectors.iter_rows().zip(&a.labels) {
            let d = |c: usize| shardvec_core::distance::l2_squared(v, a.centres.row(c).unwrap());
            assert!((0..3).all(|c| d(*l as usize) <= d(c)));
        }
        let q = queries_near(&a.vectors, 5, 0.01, 3);
        assert_eq!(q.len(), 5);
        assert!(q.iter().all(|v| v.len() == 8));
    }
}
