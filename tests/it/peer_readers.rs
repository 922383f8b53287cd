//! Every query of every peer fixture (sqlite-vec and LanceDB), read from the
//! fixture folders (`file://`), through the async and the blocking reader:
//! results, routes and shard counts equal what the reference reader
//! recorded.

use shardvec::{AsyncShardedVectorReader, ReaderOptions, ShardedVectorReader};
use shardvec_e2e::Case;

fn all_cases() -> Vec<Case> {
    let cases = Case::all();
    assert_eq!(cases.len(), 9);
    cases
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_reader_reproduces_every_recorded_answer() {
    let mut compared = 0;
    for case in all_cases() {
        let root = tempfile::tempdir().unwrap();
        let prefix = case.dir.to_str().unwrap().to_string();
        let reader = AsyncShardedVectorReader::open(&prefix, root.path(), ReaderOptions::new())
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert_eq!(reader.snapshot_info().unwrap(), case.recorded.snapshot_info);
        assert_eq!(reader.shard_details().unwrap(), case.recorded.shards);
        assert_eq!(
            reader.snapshot_with_shards().unwrap(),
            (
                case.recorded.snapshot_info.clone(),
                case.recorded.shards.clone()
            )
        );
        for (i, q) in case.recorded.queries.iter().enumerate() {
            let what = format!("{} query {i} {:?}", case.name, q.args);
            let resp = reader
                .search(&q.query, q.top_k, &q.search_options())
                .await
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            q.check(&what, &case.name, &resp);
            if let Some(route) = &q.route {
                assert_eq!(&resp.route, route, "{what}");
            }
            assert_eq!(
                resp.manifest_ref.url,
                case.recorded.snapshot_info.manifest_ref
            );
            compared += 1;
        }
    }
    assert!(compared >= 330, "compared {compared} queries");
}

#[test]
fn blocking_reader_reproduces_every_recorded_answer() {
    for case in all_cases() {
        let root = tempfile::tempdir().unwrap();
        let opts = ReaderOptions::new().preload_shards(true);
        let reader = ShardedVectorReader::open(case.dir.to_str().unwrap(), root.path(), opts)
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        for (i, q) in case.recorded.queries.iter().enumerate() {
            let what = format!("{} query {i}", case.name);
            let resp = reader
                .search(&q.query, q.top_k, &q.search_options())
                .unwrap();
            q.check(&what, &case.name, &resp);
        }
        // A batch searches concurrently and answers as single searches do.
        let queries: Vec<Vec<f32>> = case
            .recorded
            .queries
            .iter()
            .map(|q| q.query.clone())
            .collect();
        let first = &case.recorded.queries[0];
        let batch = reader
            .batch_search(&queries, first.top_k, &first.search_options())
            .unwrap();
        assert_eq!(batch.len(), queries.len());
        for (resp, q) in batch.iter().zip(&case.recorded.queries) {
            let single = reader
                .search(&q.query, first.top_k, &first.search_options())
                .unwrap();
            assert_eq!(
                resp.results, single.results,
                "{}: batch equals single",
                case.name
            );
        }
    }
}

/// The two ways a sqlite-vec shard finds its top-k: sqlite-vec's own KNN
/// query reproduces the recorded answers too, and the in-memory SIMD scan
/// (the default) answers every recorded query, and a deeper top-k over
/// every shard, as sqlite-vec does.
#[test]
fn sqlite_vec_scans_in_memory_quantized_and_in_the_extension_agree() {
    use shardvec::backend::sqlite_vec::{SqliteVecBackend, SqliteVecScan};
    use shardvec::SearchOptions;
    use shardvec_core::ShardId;
    let mut deep = 0;
    for case in all_cases()
        .into_iter()
        .filter(|c| c.name.starts_with("sqlitevec_"))
    {
        let open = |scan| {
            let root = tempfile::tempdir().unwrap();
            let opts = ReaderOptions::new().shard_backend(SqliteVecBackend::new(scan));
            let r = ShardedVectorReader::open(case.dir.to_str().unwrap(), root.path(), opts)
                .unwrap_or_else(|e| panic!("{}: {e}", case.name));
            (r, root)
        };
        let (memory, _m) = open(SqliteVecScan::InMemory);
        let (quantized, _q) = open(SqliteVecScan::Quantized);
        let (extension, _e) = open(SqliteVecScan::Extension);
        let every: Vec<ShardId> = case.recorded.shards.iter().map(|s| s.db_id).collect();
        for (i, q) in case.recorded.queries.iter().enumerate() {
            for (scan, reader) in [("extension", &extension), ("quantized", &quantized)] {
                let what = format!("{} query {i} ({scan})", case.name);
                let resp = reader
                    .search(&q.query, q.top_k, &q.search_options())
                    .unwrap();
                q.check(&what, &case.name, &resp);
            }
            let all = SearchOptions::new().shard_ids(every.clone());
            let a = memory.search(&q.query, 40, &all).unwrap();
            let b = extension.search(&q.query, 40, &all).unwrap();
            let c = quantized.search(&q.query, 40, &all).unwrap();
            let what = format!("{} query {i}: top 40 of every shard", case.name);
            shardvec_e2e::assert_same_results(&what, &a.results, &b.results);
            // The int8 select pass returns exactly the f32 path's answer.
            assert_eq!(a.results, c.results, "{what}: quantized");
            // Not merely close: the in-memory scan rescores exactly as
            // sqlite-vec's C code does.
            let bits = |r: &shardvec::SearchResponse| -> Vec<u32> {
                r.results.iter().map(|x| x.score.to_bits()).collect()
            };
            assert_eq!(bits(&a), bits(&b), "{what}: score bits");
            deep += 1;
        }
        // Every shard is open now. The in-memory path holds the f32 copy;
        // the quantized path dropped it (its rescore reads the mapped
        // files), saving at least half of it net of the codes.
        let info = memory.snapshot_info().unwrap();
        let copy = info.total_vectors as usize * info.dim * 4;
        let (held, coded) = (memory.resident_bytes(), quantized.resident_bytes());
        assert!(
            held >= copy,
            "{}: {held} bytes held, vectors {copy}",
            case.name
        );
        assert!(
            held - coded.min(held) >= copy / 2,
            "{}: quantized holds {coded} bytes, in memory {held}, the f32 copy is {copy}",
            case.name
        );
    }
    assert!(deep >= 100, "compared {deep} deep queries");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lancedb_remote_mode_searches_in_place() {
    use shardvec::backend::lancedb::{LanceDbBackend, LanceDistance, LanceMode};
    for case in all_cases()
        .into_iter()
        .filter(|c| c.name.starts_with("lancedb_"))
    {
        let root = tempfile::tempdir().unwrap();
        let prefix = case.dir.to_str().unwrap().to_string();
        let opts = ReaderOptions::new().shard_backend(LanceDbBackend::new(
            LanceMode::Remote,
            LanceDistance::Reference,
        ));
        let reader = AsyncShardedVectorReader::open(&prefix, root.path(), opts)
            .await
            .unwrap();
        for (i, q) in case.recorded.queries.iter().enumerate() {
            let what = format!("{} query {i} (remote)", case.name);
            let resp = reader
                .search(&q.query, q.top_k, &q.search_options())
                .await
                .unwrap();
            q.check(&what, &case.name, &resp);
        }
        // Nothing was copied into the local cache.
        assert_eq!(
            std::fs::read_dir(root.path()).unwrap().count(),
            0,
            "{}",
            case.name
        );
    }
}

/// `LanceDistance::Metric` scores every shard with the snapshot's metric.
/// Checked on the fixtures' shards that have no vector index (their search
/// is exact): results equal brute force over the shard's vectors, read back
/// with a scan, scored as docs/format.md says LanceDB scores each metric.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lancedb_metric_distance_equals_brute_force_on_unindexed_shards() {
    use shardvec::backend::lancedb::{LanceDbBackend, LanceDistance, LanceMode};
    use shardvec_core::distance::{dot, l2_squared, norm};
    use shardvec_core::{Metric, ShardId};
    let mut checked = 0;
    for case in all_cases()
        .into_iter()
        .filter(|c| c.name.starts_with("lancedb_"))
    {
        let root = tempfile::tempdir().unwrap();
        let opts = ReaderOptions::new()
            .shard_backend(LanceDbBackend::new(LanceMode::Local, LanceDistance::Metric));
        let reader = AsyncShardedVectorReader::open(case.dir.to_str().unwrap(), root.path(), opts)
            .await
            .unwrap();
        let metric = reader.snapshot_info().unwrap().metric;
        for detail in reader.shard_details().unwrap() {
            let Some(url) = &detail.db_url else { continue };
            let rel = url.strip_prefix(&case.recorded.prefix).unwrap();
            let indices = case
                .dir
                .join(rel.trim_start_matches('/'))
                .join("vector_index.lance/_indices");
            if indices.exists() {
                continue;
            }
            let shard = detail.db_id;
            let rows = reader.scan_shard(shard).await.unwrap();
            assert_eq!(rows.len() as u64, detail.vector_count);
            for q in case.recorded.queries.iter().take(10) {
                let score = |v: &[f32]| match metric {
                    Metric::L2 => l2_squared(&q.query, v),
                    Metric::Cosine => 1.0 - dot(&q.query, v) / (norm(&q.query) * norm(v)),
                    Metric::DotProduct => 1.0 - dot(&q.query, v),
                };
                let mut truth: Vec<(f32, String)> = rows
                    .iter()
                    .map(|(id, v)| (score(v), id.to_string()))
                    .collect();
                truth.sort_by(|a, b| a.0.total_cmp(&b.0));
                truth.truncate(5);
                let so = shardvec::SearchOptions::new().shard_ids(vec![ShardId(shard.0)]);
                let got = reader.search(&q.query, 5, &so).await.unwrap();
                let ids: Vec<String> = got.results.iter().map(|h| h.id.to_string()).collect();
                let want: Vec<String> = truth.iter().map(|t| t.1.clone()).collect();
                assert_eq!(ids, want, "{} shard {shard}", case.name);
                for (h, t) in got.results.iter().zip(&truth) {
                    assert!(
                        (h.score - t.0).abs() <= 1e-4 * t.0.abs().max(1.0),
                        "{} {}: {} vs {}",
                        case.name,
                        h.id,
                        h.score,
                        t.0
                    );
                }
                checked += 1;
            }
        }
    }
    assert!(
        checked >= 10,
        "no un-indexed LanceDB shard was checked ({checked})"
    );
}

/// `LanceSearch::Exact` (issue 17): every shard of every LanceDB fixture,
/// indexed or not, answers its exact top-k: the scores of a brute force
/// over the shard's vectors, written here, with the metric scored as
/// docs/format.md says LanceDB scores it; the recall against that brute
/// force is 1.0 (ties may swap ids of equal scores).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lancedb_exact_search_equals_brute_force_on_every_shard() {
    use shardvec::backend::lancedb::{LanceDbBackend, LanceDistance, LanceMode, LanceSearch};
    use shardvec_core::distance::{dot, l2_squared, norm};
    use shardvec_core::{Metric, ShardId};
    let mut checked = 0;
    for case in all_cases()
        .into_iter()
        .filter(|c| c.name.starts_with("lancedb_"))
    {
        let root = tempfile::tempdir().unwrap();
        let backend = LanceDbBackend::new(LanceMode::Local, LanceDistance::Reference)
            .search(LanceSearch::Exact);
        let opts = ReaderOptions::new().shard_backend(backend);
        let reader = AsyncShardedVectorReader::open(case.dir.to_str().unwrap(), root.path(), opts)
            .await
            .unwrap();
        let metric = reader.snapshot_info().unwrap().metric;
        for detail in reader.shard_details().unwrap() {
            if detail.db_url.is_none() {
                continue;
            }
            let shard = detail.db_id;
            let rows = reader.scan_shard(shard).await.unwrap();
            for q in case.recorded.queries.iter().take(8) {
                let score = |v: &[f32]| match metric {
                    Metric::L2 => l2_squared(&q.query, v),
                    Metric::Cosine => 1.0 - dot(&q.query, v) / (norm(&q.query) * norm(v)),
                    Metric::DotProduct => 1.0 - dot(&q.query, v),
                };
                let truth: std::collections::HashMap<String, f32> = rows
                    .iter()
                    .map(|(id, v)| (id.to_string(), score(v)))
                    .collect();
                let mut ranked: Vec<f32> = truth.values().copied().collect();
                ranked.sort_by(f32::total_cmp);
                let so = shardvec::SearchOptions::new().shard_ids(vec![ShardId(shard.0)]);
                let got = reader.search(&q.query, 10, &so).await.unwrap();
                assert_eq!(got.results.len(), ranked.len().min(10));
                let close = |a: f32, b: f32| (a - b).abs() <= 1e-4 * a.abs().max(b.abs()).max(1.0);
                for (i, h) in got.results.iter().enumerate() {
                    let own = truth[&h.id.to_string()];
                    assert!(
                        close(h.score, own),
                        "{} {}: {} vs {own}",
                        case.name,
                        h.id,
                        h.score
                    );
                    assert!(
                        close(own, ranked[i]),
                        "{} shard {shard} rank {i}: {} has {own}, the {i}th best is {}",
                        case.name,
                        h.id,
                        ranked[i]
                    );
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 40, "checked {checked}");
}

/// A build without a backend (here: a reader given only the sqlite-vec
/// backend, as a build without the `lancedb` feature has) opens a LanceDB
/// snapshot and routes it exactly as recorded, and a search of a LanceDB
/// shard fails alone with an error naming the missing cargo feature.
#[test]
fn a_shard_whose_backend_is_not_compiled_in_fails_naming_the_feature() {
    use shardvec::backend::sqlite_vec::SqliteVecBackend;
    use shardvec::backend::{BackendKind, Backends};
    use shardvec::{Error, ErrorKind};

    let mut only_sqlite = Backends::empty();
    only_sqlite.insert(std::sync::Arc::new(SqliteVecBackend::default()));
    let mut checked = 0;
    for case in all_cases() {
        let root = tempfile::tempdir().unwrap();
        let opts = ReaderOptions::new().backends(only_sqlite.clone());
        let reader = ShardedVectorReader::open(case.dir.to_str().unwrap(), root.path(), opts)
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        for q in &case.recorded.queries {
            let route = reader.route(&q.query, &q.search_options()).unwrap();
            if let Some(recorded) = &q.route {
                assert_eq!(&route, recorded, "{}", case.name);
            }
            let result = reader.search(&q.query, q.top_k, &q.search_options());
            if case.name.starts_with("sqlitevec_") {
                q.check(&case.name, &case.name, &result.unwrap());
                continue;
            }
            if q.results.is_empty() {
                continue;
            }
            let e = result.expect_err("a LanceDB shard without the backend");
            assert!(
                matches!(
                    e,
                    Error::BackendNotCompiled {
                        backend: BackendKind::Lancedb,
                        ..
                    }
                ),
                "{}: {e:?}",
                case.name
            );
            assert_eq!(e.kind(), ErrorKind::Unsupported);
            assert!(e.to_string().contains("`lancedb`"), "{e}");
            checked += 1;
        }
    }
    assert!(checked > 0, "no LanceDB query was checked");
    // And with no backend at all, a sqlite-vec shard names its feature.
    let case = all_cases()
        .into_iter()
        .find(|c| c.name.starts_with("sqlitevec_"))
        .unwrap();
    let root = tempfile::tempdir().unwrap();
    let opts = ReaderOptions::new().backends(Backends::empty());
    let reader = ShardedVectorReader::open(case.dir.to_str().unwrap(), root.path(), opts).unwrap();
    let q = &case.recorded.queries[0];
    let e = reader
        .search(&q.query, q.top_k, &q.search_options())
        .unwrap_err();
    assert!(e.to_string().contains("`sqlite-vec`"), "{e}");
}
