//! The distributed writer's building blocks ([`BuildPlan`]), run as an
//! engine would run them: the plan shipped as bytes to "tasks" (separate
//! plan instances), partitions routed independently, shards written one
//! task each, published from the entries. Checked against the single-machine
//! build of the same input with the same centroids (every answer equal), and
//! against the store (retried attempts, refused entries, nothing published
//! on failure).

use std::collections::BTreeMap;
use std::path::Path;

use shardvec::writer::WriterOptions;
use shardvec::writer::{self, train, BuildPlan, Input, Record, ShardEntry, StrategyConfig};
use shardvec::{AsyncShardedVectorReader, ReaderOptions, SearchOptions, SnapshotLocation};
use shardvec::{ErrorKind, StoreOptions};
use shardvec_cli::synthetic;
use shardvec_core::{Metric, ShardId, VectorId};

const DBS: u32 = 6;
const DIM: usize = 12;

fn input(n: usize) -> Vec<Record> {
    let data = synthetic::blobs(n, DIM, 8, 0.4, 5).unwrap();
    data.vectors
        .iter_rows()
        .enumerate()
        .map(|(i, v)| {
            Record::new(VectorId::Int(i as i64), v.to_vec()).payload(serde_json::json!({ "i": i }))
        })
        .collect()
}

fn opts(centroids: &shardvec_core::npy::Matrix) -> WriterOptions {
    WriterOptions::new(
        DBS,
        Metric::Cosine,
        StrategyConfig::Cluster {
            centroids: Some(centroids.clone()),
        },
    )
    .num_probes(2)
}

/// What a distributed engine does: partitions routed by tasks, a shuffle,
/// one task per shard, then publish. Returns the entries published.
async fn distributed_build(
    prefix: &str,
    records: &[Record],
    opts: &WriterOptions,
) -> Vec<ShardEntry> {
    let location = SnapshotLocation::open(prefix, &StoreOptions::new()).unwrap();
    let driver = BuildPlan::create(location, DIM, opts).await.unwrap();
    let bytes = driver.to_bytes().unwrap();
    // Map: each partition routed by its own task's plan.
    let mut shuffled: BTreeMap<ShardId, Vec<Record>> = BTreeMap::new();
    for (p, part) in records.chunks(170).enumerate() {
        let task = BuildPlan::from_bytes(&bytes, &StoreOptions::new()).unwrap();
        assert_eq!(task.run_id(), driver.run_id());
        let routes = task.route(&format!("partition {p}"), part).unwrap();
        for (r, s) in part.iter().zip(routes) {
            shuffled.entry(s).or_default().push(r.clone());
        }
    }
    // Reduce: one task per shard, concurrently.
    let tasks = shuffled.into_iter().map(|(shard, recs)| {
        let task = BuildPlan::from_bytes(&bytes, &StoreOptions::new()).unwrap();
        async move { task.write_shard(shard, recs).await.unwrap() }
    });
    let entries = futures::future::join_all(tasks).await;
    let published = driver.publish(entries.clone()).await.unwrap();
    assert_eq!(published.total_vectors, records.len() as u64);
    entries
}

async fn answers(prefix: &str, cache: &Path, queries: &[Record]) -> Vec<Vec<(VectorId, u32)>> {
    let reader = AsyncShardedVectorReader::open(prefix, cache, ReaderOptions::new())
        .await
        .unwrap();
    let mut out = Vec::new();
    for q in queries {
        let resp = reader
            .search(&q.vector, 10, &SearchOptions::new())
            .await
            .unwrap();
        out.push(
            resp.results
                .iter()
                .map(|h| (h.id.clone(), h.score.to_bits()))
                .collect(),
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_distributed_build_answers_like_the_single_machine_build() {
    let dir = tempfile::tempdir().unwrap();
    let records = input(1_200);
    // Centroids trained once, on the driver, from a sample of every part.
    let sample: Vec<Vec<f32>> = records
        .iter()
        .step_by(3)
        .map(|r| r.vector.clone())
        .collect();
    let centroids = train::kmeans(sample, DBS as usize, Metric::Cosine, 7, 50).unwrap();
    let opts = opts(&centroids);

    let single = dir.path().join("single");
    let summary = writer::build(
        single.to_str().unwrap(),
        &Input::memory(records.clone()),
        &opts,
    )
    .await
    .unwrap();
    let spread = dir.path().join("spread");
    let entries = distributed_build(spread.to_str().unwrap(), &records, &opts).await;

    // The same shards with the same rows.
    let mut rows: Vec<(ShardId, u64)> = entries.iter().map(|e| (e.db_id, e.rows)).collect();
    rows.sort();
    let want: Vec<(ShardId, u64)> = summary.shards.iter().map(|s| (s.db_id, s.rows)).collect();
    assert_eq!(rows, want);
    assert!(entries.iter().all(|e| e.attempt == 0));

    let queries = input(40);
    let a = answers(single.to_str().unwrap(), &dir.path().join("c1"), &queries).await;
    let b = answers(spread.to_str().unwrap(), &dir.path().join("c2"), &queries).await;
    assert_eq!(a.len(), 40);
    assert!(a.iter().all(|hits| hits.len() == 10));
    assert_eq!(a, b, "the distributed build answers differently");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_task_writes_a_new_attempt_and_publish_keeps_only_the_named_one() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("snap");
    let p = prefix.to_str().unwrap();
    let opts = WriterOptions::new(3, Metric::L2, StrategyConfig::Explicit);
    let records: Vec<Record> = input(90)
        .into_iter()
        .enumerate()
        .map(|(i, r)| r.shard_id(ShardId(i as u32 % 3)))
        .collect();
    let location = SnapshotLocation::open(p, &StoreOptions::new()).unwrap();
    let plan = BuildPlan::create(location, DIM, &opts).await.unwrap();
    let of = |s: u32| -> Vec<Record> {
        records
            .iter()
            .filter(|r| r.shard_id == Some(ShardId(s)))
            .cloned()
            .collect()
    };
    let first = plan.write_shard(ShardId(1), of(1)).await.unwrap();
    let retry = plan.write_shard(ShardId(1), of(1)).await.unwrap();
    assert_eq!((first.attempt, retry.attempt), (0, 1));
    let e0 = plan.write_shard(ShardId(0), of(0)).await.unwrap();
    let e2 = plan.write_shard(ShardId(2), of(2)).await.unwrap();
    plan.publish(vec![e2, retry, e0]).await.unwrap();

    let run = prefix
        .join("shards")
        .join(format!("run_id={}", plan.run_id()));
    assert!(
        // (file:// leaves the emptied folder; object stores have none)
        !run.join("db=00001/attempt=00/shard.db").exists(),
        "the unnamed attempt stayed"
    );
    assert!(run.join("db=00001/attempt=01/shard.db").exists());
    let reader = AsyncShardedVectorReader::open(p, &dir.path().join("cache"), ReaderOptions::new())
        .await
        .unwrap();
    let detail = reader.shard_details().unwrap();
    let shard1 = detail.iter().find(|d| d.db_id == ShardId(1)).unwrap();
    assert!(
        shard1
            .db_url
            .as_deref()
            .unwrap()
            .ends_with("db=00001/attempt=01"),
        "{:?}",
        shard1.db_url
    );
    // Every record is found in its shard, exactly.
    for r in records.iter().step_by(7) {
        let so = SearchOptions::new().shard_ids(vec![r.shard_id.unwrap()]);
        let hits = reader.search(&r.vector, 1, &so).await.unwrap().results;
        assert_eq!(hits[0].id, r.id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_entries_records_and_plans_are_refused_and_nothing_is_published() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("snap");
    let p = prefix.to_str().unwrap();
    let records = input(300);
    let sample: Vec<Vec<f32>> = records.iter().map(|r| r.vector.clone()).collect();
    let centroids = train::kmeans(sample, DBS as usize, Metric::Cosine, 1, 20).unwrap();
    let location = SnapshotLocation::open(p, &StoreOptions::new()).unwrap();
    let plan = BuildPlan::create(location, DIM, &opts(&centroids))
        .await
        .unwrap();
    let routes = plan.route("input", &records).unwrap();
    let mut by_shard: BTreeMap<ShardId, Vec<Record>> = BTreeMap::new();
    for (r, s) in records.iter().zip(&routes) {
        by_shard.entry(*s).or_default().push(r.clone());
    }
    let (&s0, recs0) = by_shard.iter().next().unwrap();
    let (&s1, recs1) = by_shard.iter().nth(1).unwrap();

    // Records routed elsewhere (a shuffle bug) are refused.
    let mut mixed = recs0.clone();
    mixed.push(recs1[0].clone());
    let err = plan.write_shard(s0, mixed).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(
        err.to_string().contains(&format!("routes to shard {s1}")),
        "{err}"
    );
    // Out of range, empty, wrong dimension.
    assert!(matches!(
        plan.write_shard(ShardId(DBS), recs0.clone()).await,
        Err(shardvec::Error::ShardEntry { .. })
    ));
    assert!(plan.write_shard(s0, Vec::new()).await.is_err());
    let mut short = recs0.clone();
    short[0].vector.pop();
    assert!(plan
        .route("input", &short)
        .unwrap_err()
        .to_string()
        .contains("dimension"));

    let e0 = plan.write_shard(s0, recs0.clone()).await.unwrap();
    let e1 = plan.write_shard(s1, recs1.clone()).await.unwrap();
    // Entries that do not match the store.
    let refused = |entries: Vec<ShardEntry>, needle: &'static str| {
        let plan = &plan;
        async move {
            let err = plan.publish(entries).await.unwrap_err();
            assert!(
                matches!(err, shardvec::Error::ShardEntry { .. })
                    && err.to_string().contains(needle),
                "{err}"
            );
            assert_eq!(err.kind(), ErrorKind::Conflict);
        }
    };
    refused(vec![e0.clone(), e0.clone()], "two entries").await;
    refused(
        vec![ShardEntry {
            attempt: 4,
            ..e1.clone()
        }],
        "no objects",
    )
    .await;
    refused(
        vec![ShardEntry {
            bytes: e1.bytes + 1,
            ..e1.clone()
        }],
        "bytes",
    )
    .await;
    refused(
        vec![ShardEntry {
            db_id: ShardId(DBS + 3),
            ..e1.clone()
        }],
        "shards",
    )
    .await;
    assert!(
        !prefix.join("_CURRENT").exists(),
        "a refused publish published"
    );
    // The written shards survive a refused publish: publish again, right.
    plan.publish(vec![e0, e1]).await.unwrap();
    assert!(prefix.join("_CURRENT").exists());

    // Bytes that are not a plan, or a plan for another prefix.
    let bytes = plan.to_bytes().unwrap();
    for bad in [&b"not a plan"[..], &bytes[..bytes.len() - 3]] {
        let err = BuildPlan::from_bytes(bad, &StoreOptions::new()).unwrap_err();
        assert!(matches!(err, shardvec::Error::Plan { .. }), "{err}");
    }
    let elsewhere = SnapshotLocation::open(
        dir.path().join("other").to_str().unwrap(),
        &StoreOptions::new(),
    )
    .unwrap();
    assert!(BuildPlan::from_bytes_at(&bytes, elsewhere).is_err());
    // CLUSTER without centroids is refused with advice.
    let untrained = WriterOptions::new(
        DBS,
        Metric::Cosine,
        StrategyConfig::Cluster { centroids: None },
    );
    let location = SnapshotLocation::open(p, &StoreOptions::new()).unwrap();
    let err = BuildPlan::create(location, DIM, &untrained)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("kmeans"), "{err}");
}
