//! Routing artefacts the writer makes: CLUSTER centroids (k-means) and LSH
//! hyperplanes.
//!
//! Both are deterministic for a seed: the random source is ChaCha8, whose
//! output is fixed by its specification (not by a library version).
//!
//! CLUSTER training follows the reference writer: a uniform sample of the
//! input (reservoir sampling, default 100 000 vectors, seed 42), k-means++
//! seeding, then Lloyd iterations (at most 100, stopping when no centroid
//! moves by more than 1e-6 in any coordinate). Assignment in each iteration
//! runs on all cores (rayon). Training is in squared L2; for the cosine
//! metric the sample is L2-normalised first (spherical k-means), so the
//! centroids are directions, which is what cosine routing compares.
//! Vectors are then *assigned* by the core router, never by this module, so
//! writer and reader cannot disagree.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;
use shardvec_core::distance::{l2_squared, norm};
use shardvec_core::npy::Matrix;
use shardvec_core::Metric;

use crate::error::{Error, Result};

/// Default size of the CLUSTER training sample.
pub const DEFAULT_TRAIN_SAMPLE: usize = 100_000;
/// Default seed of training and hyperplanes.
pub const DEFAULT_SEED: u64 = 42;
/// Default cap on Lloyd iterations.
pub const DEFAULT_MAX_ITER: usize = 100;

/// Uniform sample of at most `k` items of a stream (Algorithm R).
#[derive(Debug)]
pub struct Reservoir {
    k: usize,
    seen: u64,
    rng: ChaCha8Rng,
    items: Vec<Vec<f32>>,
}

impl Reservoir {
    /// A reservoir of `k` items, seeded.
    pub fn new(k: usize, seed: u64) -> Self {
        Reservoir {
            k,
            seen: 0,
            rng: ChaCha8Rng::seed_from_u64(seed),
            items: Vec::with_capacity(k.min(1 << 16)),
        }
    }

    /// Offers one item.
    pub fn offer(&mut self, v: &[f32]) {
        self.seen += 1;
        if self.items.len() < self.k {
            self.items.push(v.to_vec());
        } else {
            let j = self.rng.random_range(0..self.seen);
            if (j as usize) < self.k {
                self.items[j as usize] = v.to_vec();
            }
        }
    }

    /// The sample.
    pub fn into_items(self) -> Vec<Vec<f32>> {
        self.items
    }
}

/// Trains `k` centroids on `sample` for `metric`.
pub fn kmeans(
    mut sample: Vec<Vec<f32>>,
    k: usize,
    metric: Metric,
    seed: u64,
    max_iter: usize,
) -> Result<Matrix> {
    let n = sample.len();
    if k == 0 || n < k {
        return Err(Error::InvalidArgument(format!(
            "need at least {k} vectors to train {k} centroids, got {n}"
        )));
    }
    let dim = sample[0].len();
    if metric == Metric::Cosine {
        for v in &mut sample {
            normalise(v);
        }
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut centroids: Vec<Vec<f32>> = Vec::with_capacity(k);
    centroids.push(sample[rng.random_range(0..n)].clone());
    // k-means++: each next centroid is drawn with probability proportional
    // to the squared distance to the nearest chosen one.
    let mut d2: Vec<f64> = sample
        .par_iter()
        .map(|v| f64::from(l2_squared(v, &centroids[0])))
        .collect();
    while centroids.len() < k {
        let total: f64 = d2.iter().sum();
        let pick = if total > 0.0 {
            let mut t = rng.random::<f64>() * total;
            let mut pick = n - 1;
            for (i, d) in d2.iter().enumerate() {
                if t < *d {
                    pick = i;
                    break;
                }
                t -= d;
            }
            pick
        } else {
            rng.random_range(0..n)
        };
        let c = sample[pick].clone();
        d2.par_iter_mut().zip(sample.par_iter()).for_each(|(d, v)| {
            *d = d.min(f64::from(l2_squared(v, &c)));
        });
        centroids.push(c);
    }
    for _ in 0..max_iter {
        let assign: Vec<usize> = sample.par_iter().map(|v| nearest(v, &centroids)).collect();
        let mut sums = vec![vec![0f64; dim]; k];
        let mut counts = vec![0usize; k];
        for (v, &c) in sample.iter().zip(&assign) {
            counts[c] += 1;
            for (s, x) in sums[c].iter_mut().zip(v) {
                *s += f64::from(*x);
            }
        }
        let mut moved = false;
        for c in 0..k {
            // An empty cluster keeps its centroid (as the reference).
            if counts[c] == 0 {
                continue;
            }
            let mut next: Vec<f32> = sums[c]
                .iter()
                .map(|s| (s / counts[c] as f64) as f32)
                .collect();
            if metric == Metric::Cosine {
                normalise(&mut next);
            }
            if next
                .iter()
                .zip(&centroids[c])
                .any(|(a, b)| (a - b).abs() > 1e-6)
            {
                moved = true;
            }
            centroids[c] = next;
        }
        if !moved {
            break;
        }
    }
    Matrix::new(k, dim, centroids.concat()).map_err(Error::Core)
}

fn normalise(v: &mut [f32]) {
    let n = norm(v);
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

fn nearest(v: &[f32], centroids: &[Vec<f32>]) -> usize {
    let mut best = (f32::INFINITY, 0);
    for (i, c) in centroids.iter().enumerate() {
        let d = l2_squared(v, c);
        if d < best.0 {
            best = (d, i);
        }
    }
    best.1
}

/// `bits` Gaussian hyperplanes of dimension `dim`, seeded.
pub fn hyperplanes(bits: u32, dim: usize, seed: u64) -> Result<Matrix> {
    if bits == 0 || bits > shardvec_core::manifest::MAX_HASH_BITS {
        return Err(Error::InvalidArgument(format!(
            "num_hash_bits must be 1 to 64, got {bits}"
        )));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let data: Vec<f32> = (0..bits as usize * dim)
        .map(|_| StandardNormal.sample(&mut rng))
        .collect();
    Matrix::new(bits as usize, dim, data).map_err(Error::Core)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blobs(per: usize, centres: &[[f32; 2]], seed: u64) -> Vec<Vec<f32>> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut out = Vec::new();
        for c in centres {
            for _ in 0..per {
                let dx: f32 = StandardNormal.sample(&mut rng);
                let dy: f32 = StandardNormal.sample(&mut rng);
                out.push(vec![c[0] + 0.1 * dx, c[1] + 0.1 * dy]);
            }
        }
        out
    }

    #[test]
    fn kmeans_finds_well_separated_blobs_and_is_deterministic() {
        let centres = [[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]];
        let sample = blobs(200, &centres, 7);
        let a = kmeans(sample.clone(), 4, Metric::L2, 42, 100).unwrap();
        let b = kmeans(sample, 4, Metric::L2, 42, 100).unwrap();
        assert_eq!(a, b);
        // Every true centre has a trained centroid within 0.1.
        for c in centres {
            let best = a
                .iter_rows()
                .map(|r| l2_squared(r, &c))
                .fold(f32::INFINITY, f32::min);
            assert!(best < 0.01, "{c:?}: {best}");
        }
    }

    #[test]
    fn too_small_samples_and_bad_bits_are_errors() {
        assert!(kmeans(vec![vec![1.0]], 2, Metric::L2, 1, 10).is_err());
        assert!(hyperplanes(0, 4, 1).is_err());
        assert!(hyperplanes(65, 4, 1).is_err());
        let h = hyperplanes(8, 16, 3).unwrap();
        assert_eq!((h.rows(), h.cols()), (8, 16));
        assert_eq!(h, hyperplanes(8, 16, 3).unwrap());
        assert_ne!(h, hyperplanes(8, 16, 4).unwrap());
    }

    #[test]
    fn reservoir_keeps_k_items_from_the_stream() {
        let mut r = Reservoir::new(10, 1);
        for i in 0..1000 {
            r.offer(&[i as f32]);
        }
        let items = r.into_items();
        assert_eq!(items.len(), 10);
        // A uniform sample of 0..1000 is not the first 10.
        assert!(items.iter().any(|v| v[0] >= 10.0));
    }
}
