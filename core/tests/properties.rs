//! Property tests: merge against a sort-based reference, CLUSTER routing
//! against brute force, LSH probe invariants.

mod common;

use common::ManifestSpec;
use proptest::prelude::*;
use serde_json::json;
use shardvec_core::distance::{distance, total_order};
use shardvec_core::npy::Matrix;
use shardvec_core::{merge_by, Manifest, Metric, RouteOptions, Router, RoutingArtefacts, ShardId};

/// Reference merge: concatenate in shard order, stable sort, truncate.
fn reference_merge(lists: &[Vec<(f32, u32)>], k: usize) -> Vec<(f32, u32)> {
    let mut all: Vec<(f32, u32)> = lists.iter().flatten().copied().collect();
    all.sort_by(|a, b| total_order(a.0, b.0));
    all.truncate(k);
    all
}

fn score() -> impl Strategy<Value = f32> {
    prop_oneof![
        // Few distinct values: many ties.
        (0u8..6).prop_map(|v| v as f32 * 0.5),
        -1e3f32..1e3,
        Just(f32::NAN),
        Just(-0.0f32),
    ]
}

proptest! {
    #[test]
    fn merge_equals_sorting(
        lists in prop::collection::vec(prop::collection::vec(score(), 0..20), 0..8),
        k in 0usize..40,
    ) {
        // Tag each item with a unique id to compare identity, not just score.
        let mut next = 0u32;
        let lists: Vec<Vec<(f32, u32)>> = lists
            .into_iter()
            .map(|l| l.into_iter().map(|s| { next += 1; (s, next) }).collect())
            .collect();
        let got = merge_by(lists.clone(), k, |x| x.0);
        let want = reference_merge(&lists, k);
        let ids = |v: &[(f32, u32)]| v.iter().map(|x| x.1).collect::<Vec<_>>();
        prop_assert_eq!(ids(&got), ids(&want));
    }
}

fn manifest(strategy: &str, metric: Metric, num_dbs: usize, dim: usize, bits: usize) -> Manifest {
    let mut v = json!({"dim": dim, "metric": metric.as_str(), "sharding_strategy": strategy,
                       "num_probes": 1});
    if strategy == "cluster" {
        v["centroids_ref"] = json!("s3://b/p/c.npy");
    } else {
        v["hyperplanes_ref"] = json!("s3://b/p/h.npy");
        v["num_hash_bits"] = json!(bits);
    }
    Manifest::parse(&ManifestSpec::vector(v, num_dbs as i64).write()).unwrap()
}

fn metric() -> impl Strategy<Value = Metric> {
    prop_oneof![
        Just(Metric::L2),
        Just(Metric::Cosine),
        Just(Metric::DotProduct)
    ]
}

/// Coordinates from a small grid so that distance ties really happen.
fn coord() -> impl Strategy<Value = f32> {
    prop_oneof![(-2i8..=2).prop_map(|v| v as f32), -3.0f32..3.0]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn cluster_probe0_is_the_nearest_centroid(
        metric in metric(),
        num_dbs in 1usize..80,
        dim in 1usize..6,
        seed in prop::collection::vec(coord(), 80 * 6 + 6),
        probes in 1u32..90,
    ) {
        let m = manifest("cluster", metric, num_dbs, dim, 0);
        let centroids = Matrix::new(num_dbs, dim, seed[..num_dbs * dim].to_vec()).unwrap();
        let query = seed[seed.len() - dim..].to_vec();
        let router = Router::new(&m, RoutingArtefacts::centroids(centroids.clone())).unwrap();
        let route = router.route(&query, &RouteOptions::new().num_probes(probes)).unwrap();

        // Brute force, written independently: argmin with ties → lowest index.
        let dists: Vec<f32> = centroids.iter_rows().map(|c| distance(metric, &query, c)).collect();
        let mut best = 0;
        for (i, d) in dists.iter().enumerate() {
            if *d < dists[best] {
                best = i;
            }
        }
        prop_assert_eq!(route[0], ShardId(best as u32));
        prop_assert_eq!(route.len(), (probes as usize).min(num_dbs));
        // The whole route is the prefix of a stable sort by distance.
        let mut order: Vec<usize> = (0..num_dbs).collect();
        order.sort_by(|&a, &b| dists[a].partial_cmp(&dists[b]).unwrap());
        let want: Vec<ShardId> = order[..route.len()].iter().map(|&i| ShardId(i as u32)).collect();
        prop_assert_eq!(&route, &want);
    }

    #[test]
    fn lsh_probes_are_distinct_and_in_range(
        num_dbs in 1usize..40,
        bits in 1usize..20,
        dim in 1usize..6,
        seed in prop::collection::vec(coord(), 20 * 6 + 6),
        probes in 1u32..50,
    ) {
        let m = manifest("lsh", Metric::L2, num_dbs, dim, bits);
        let planes = Matrix::new(bits, dim, seed[..bits * dim].to_vec()).unwrap();
        let query = seed[seed.len() - dim..].to_vec();
        let router = Router::new(&m, RoutingArtefacts::hyperplanes(planes.clone())).unwrap();
        let route = router.route(&query, &RouteOptions::new().num_probes(probes)).unwrap();
        prop_assert!(!route.is_empty() && route.len() <= probes as usize);
        prop_assert!(route.iter().all(|s| (s.0 as usize) < num_dbs));
        let mut uniq = route.clone();
        uniq.sort();
        uniq.dedup();
        prop_assert_eq!(uniq.len(), route.len());
        // Primary bucket, from an independent hash computation.
        let code: u64 = planes
            .iter_rows()
            .enumerate()
            .map(|(i, h)| {
                let p: f32 = h.iter().zip(&query).map(|(a, b)| a * b).sum();
                u64::from(p > 0.0) << i
            })
            .sum();
        prop_assert_eq!(route[0], ShardId((code % num_dbs as u64) as u32));
        // Every probe is the primary or one bit-flip away from it.
        for s in &route[1..] {
            prop_assert!((0..bits).any(|b| (code ^ (1 << b)) % num_dbs as u64 == s.0 as u64));
        }
    }
}
