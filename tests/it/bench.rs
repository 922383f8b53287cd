//! The benchmark harness measures what it says: `shardvec_cli::bench::bench`
//! and `shardvec bench --json` on peer fixtures, with recall@k checked
//! against recall computed here independently (the reader's routed answers
//! against a scalar brute force over every stored vector, with the core's
//! distances, not the harness's SIMD floor).

use std::collections::HashSet;

use shardvec::{AsyncShardedVectorReader, ReaderOptions, SearchOptions};
use shardvec_cli::bench::{bench, Api, BenchOptions};
use shardvec_core::distance::{distance, total_order};
use shardvec_core::npy::Matrix;
use shardvec_core::{ShardId, VectorId};
use shardvec_e2e::{shardvec_bin, Case};

const K: usize = 10;

fn queries(case: &Case) -> Vec<Vec<f32>> {
    case.recorded
        .queries
        .iter()
        .map(|q| q.query.clone())
        .collect()
}

/// Mean recall@K of routed search with `num_probes`, computed without the
/// harness.
async fn independent_recall(case: &Case, queries: &[Vec<f32>], num_probes: u32) -> f64 {
    let root = tempfile::tempdir().unwrap();
    let reader = AsyncShardedVectorReader::open(
        case.dir.to_str().unwrap(),
        root.path(),
        ReaderOptions::new(),
    )
    .await
    .unwrap();
    let info = reader.snapshot_info().unwrap();
    let mut all = Vec::new();
    for s in 0..info.num_dbs {
        all.extend(reader.scan_shard(ShardId(s)).await.unwrap());
    }
    let opts = SearchOptions::new().num_probes(num_probes);
    let mut sum = 0.0;
    for q in queries {
        let mut exact: Vec<(f32, &VectorId)> = all
            .iter()
            .map(|(id, v)| (distance(info.metric, q, v), id))
            .collect();
        exact.sort_by(|a, b| total_order(a.0, b.0));
        exact.truncate(K);
        let found: HashSet<VectorId> = reader
            .search(q, K, &opts)
            .await
            .unwrap()
            .results
            .into_iter()
            .map(|r| r.id)
            .collect();
        let hits = exact.iter().filter(|(_, id)| found.contains(id)).count();
        sum += hits as f64 / exact.len() as f64;
    }
    sum / queries.len() as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_reports_recall_floor_and_timings_that_hold() {
    for name in ["sqlitevec_cluster_cosine", "sqlitevec_lsh_l2"] {
        let case = Case::load(name);
        let qs = queries(&case);
        let num_dbs = case.recorded.snapshot_info.num_dbs;
        for probes in [1, num_dbs] {
            let want = independent_recall(&case, &qs, probes).await;
            if probes == num_dbs && name.contains("cluster") {
                // CLUSTER probing every centroid searches every shard
                // (sqlite-vec is exact); LSH probes buckets, not shards.
                assert_eq!(want, 1.0, "{name}: every shard probed is exact");
            }
            for api in [Api::Async, Api::Sync] {
                let root = tempfile::tempdir().unwrap();
                let opts = BenchOptions::new()
                    .num_probes(Some(probes))
                    .api(api)
                    .concurrency(2)
                    .rounds(2)
                    .recall(true)
                    .floor(true);
                let r = bench(case.dir.to_str().unwrap(), root.path(), &qs, &opts)
                    .await
                    .unwrap();
                let what = format!("{name} probes {probes} {api:?}");
                let got = r.recall_at_k.expect("recall measured");
                assert!((got - want).abs() < 1e-9, "{what}: {got} vs {want}");
                assert_eq!(r.queries, qs.len(), "{what}");
                assert_eq!(r.top_k, K, "{what}");
                assert_eq!(r.concurrency, 2, "{what}");
                for (field, v) in [
                    ("cold", r.cold_open_first_query_ms),
                    ("p50", r.warm_p50_ms),
                    ("p99", r.warm_p99_ms),
                    ("qps", r.qps),
                ] {
                    assert!(v.is_finite() && v > 0.0, "{what}: {field} {v}");
                }
                assert!(r.warm_p50_ms <= r.warm_p99_ms, "{what}");
                let floor = r.floor.as_ref().expect("floor measured");
                assert_eq!(
                    floor.n,
                    qs.len() * 2,
                    "{what}: floor timed every query twice"
                );
                assert!(r.mean_shards_queried >= 1.0, "{what}");
                assert!(r.mean_shards_queried <= f64::from(probes), "{what}");
                if api == Api::Async {
                    // Counted at the store: the cold open read the shard
                    // files; warm queries hit the local cache only.
                    assert!(r.cold_bytes_read.unwrap() > 0, "{what}");
                    assert_eq!(r.warm_bytes_read_per_query, Some(0.0), "{what}");
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_cli_prints_the_issue_keys() {
    let case = Case::load("sqlitevec_cluster_cosine");
    let qs = queries(&case);
    let dim = qs[0].len();
    let tmp = tempfile::tempdir().unwrap();
    let qfile = tmp.path().join("q.npy");
    let m = Matrix::new(qs.len(), dim, qs.concat()).unwrap();
    std::fs::write(&qfile, m.to_npy()).unwrap();
    let run = |extra: &[&str]| {
        let out = std::process::Command::new(shardvec_bin())
            .args(["bench", "--prefix", case.dir.to_str().unwrap(), "--queries"])
            .arg(&qfile)
            .args(extra)
            .arg("--json")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let j = run(&["--num-probes", "1", "--concurrency", "2", "--recall"]);
    for key in [
        "cold_open_first_query_ms",
        "warm_p50_ms",
        "warm_p99_ms",
        "qps",
        "concurrency",
        "queries",
        "recall_at_k",
    ] {
        assert!(j.get(key).is_some_and(|v| !v.is_null()), "{key} in {j}");
    }
    assert_eq!(j["queries"], qs.len());
    assert_eq!(j["concurrency"], 2);
    let want = independent_recall(&case, &qs, 1).await;
    let got = j["recall_at_k"].as_f64().unwrap();
    assert!((got - want).abs() < 1e-9, "{got} vs {want}");
    // The extension scan answers the same queries as well.
    let ext = run(&[
        "--num-probes",
        "1",
        "--recall",
        "--sqlite-scan",
        "extension",
    ]);
    assert_eq!(ext["recall_at_k"], j["recall_at_k"]);
    // So does the int8 scan, holding less than the f32 copies; the
    // extension holds no vectors at all.
    let int8 = run(&[
        "--num-probes",
        "1",
        "--recall",
        "--sqlite-scan",
        "quantized",
    ]);
    assert_eq!(int8["recall_at_k"], j["recall_at_k"]);
    let resident = |r: &serde_json::Value| r["shards_resident_mib"].as_f64().unwrap();
    assert!(resident(&j) > 0.0, "{j}");
    assert!(resident(&int8) < resident(&j), "{int8} vs {j}");
    assert_eq!(resident(&ext), 0.0, "{ext}");
    let route = run(&["--route-only"]);
    assert!(
        route["route_ns_per_query"].as_f64().unwrap() > 0.0,
        "{route}"
    );
}
