//! `Router::route_into` allocates nothing for CLUSTER (up to STACK_PROBES
//! probes), LSH and explicit shard ids once the output vector has capacity:
//! checked with a counting global allocator.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{ManifestSpec, Rng};
use serde_json::json;
use shardvec_core::npy::Matrix;
use shardvec_core::{Manifest, RouteOptions, Router, RoutingArtefacts, ShardId};

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::SeqCst);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::SeqCst);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn router(strategy: &str, num_dbs: usize, dim: usize, rng: &mut Rng) -> Router {
    let mut v =
        json!({"dim": dim, "metric": "cosine", "sharding_strategy": strategy, "num_probes": 4});
    let rows = if strategy == "cluster" { num_dbs } else { 16 };
    let m = Matrix::new(rows, dim, (0..rows * dim).map(|_| rng.f32()).collect()).unwrap();
    let artefacts = if strategy == "cluster" {
        v["centroids_ref"] = json!("s3://b/p/c.npy");
        RoutingArtefacts::centroids(m)
    } else {
        v["hyperplanes_ref"] = json!("s3://b/p/h.npy");
        v["num_hash_bits"] = json!(16);
        RoutingArtefacts::hyperplanes(m)
    };
    let manifest = Manifest::parse(&ManifestSpec::vector(v, num_dbs as i64).write()).unwrap();
    Router::new(&manifest, artefacts).unwrap()
}

#[test]
fn routing_reuses_the_output_vector() {
    let mut rng = Rng(5);
    let dim = 64;
    let queries: Vec<Vec<f32>> = (0..100)
        .map(|_| (0..dim).map(|_| rng.f32()).collect())
        .collect();
    let ids = [ShardId(3), ShardId(1), ShardId(3)];
    for (strategy, num_dbs) in [("cluster", 256), ("lsh", 64)] {
        let r = router(strategy, num_dbs, dim, &mut rng);
        let mut out = Vec::with_capacity(64);
        for probes in [1, 4, 32] {
            let opts = RouteOptions::new().num_probes(probes);
            r.route_into(&queries[0], &opts, &mut out).unwrap();
            let before = ALLOCS.load(Ordering::SeqCst);
            for q in &queries {
                r.route_into(q, &opts, &mut out).unwrap();
                assert!(!out.is_empty());
            }
            r.route_into(&queries[0], &RouteOptions::new().shard_ids(&ids), &mut out)
                .unwrap();
            assert_eq!(out, [ShardId(3), ShardId(1)]);
            let after = ALLOCS.load(Ordering::SeqCst);
            assert_eq!(
                after - before,
                0,
                "{strategy} with {probes} probes allocated"
            );
        }
    }
}
