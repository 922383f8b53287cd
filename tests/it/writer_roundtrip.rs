//! The writer, checked against independent truth:
//!
//! - every strategy × backend × metric the backends support: build, read
//!   back, and every search equals brute force (computed here from the
//!   input records) over the vectors of the shards the query was routed to;
//! - writer and router agree: every written vector is stored in the shard
//!   its route names, exactly once;
//! - payloads and id types survive;
//! - the manifest and `_CURRENT` have the reference's layout (compared with
//!   a manifest the reference wrote);
//! - a failed build leaves `_CURRENT` and the published snapshot untouched.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use shardvec::backend::BackendKind;
use shardvec::writer::{self, Input, Record, StrategyConfig, WriterOptions};
use shardvec::{AsyncShardedVectorReader, ReaderOptions, SearchOptions};
use shardvec_cli::synthetic;
use shardvec_core::distance::{dot, l2_squared, norm};
use shardvec_core::{
    CelColumnType, CelSpec, Metric, RoutingContext, RoutingValue, ShardId, Strategy, VectorId,
};

const N: usize = 600;
const DIM: usize = 16;
const DBS: u32 = 4;
const TENANTS: [&str; 5] = ["acme", "globex", "hooli", "initech", "umbrella"];

fn records(backend: BackendKind) -> Vec<Record> {
    let data = synthetic::blobs(N, DIM, 6, 0.3, 11).unwrap();
    data.vectors
        .iter_rows()
        .enumerate()
        .map(|(i, v)| {
            // sqlite-vec keeps id types: mix ints and strings.
            let id = if backend == BackendKind::SqliteVec && i % 3 == 0 {
                VectorId::Str(format!("doc-{i}"))
            } else {
                VectorId::Int(i as i64)
            };
            let mut r = Record::new(id, v.to_vec())
                .shard_id(ShardId(i as u32 % DBS))
                .routing_context(RoutingContext::new().with(
                    "tenant",
                    RoutingValue::Str(TENANTS[i % TENANTS.len()].into()),
                ));
            if i % 5 != 0 {
                r = r.payload(serde_json::json!({"i": i, "blob": data.labels[i]}));
            }
            r
        })
        .collect()
}

fn strategies() -> Vec<StrategyConfig> {
    vec![
        StrategyConfig::Cluster { centroids: None },
        StrategyConfig::Lsh { num_hash_bits: 6 },
        StrategyConfig::Explicit,
        StrategyConfig::Cel(CelSpec {
            expr: "shard_hash(tenant) % 4u".into(),
            columns: BTreeMap::from([("tenant".to_string(), CelColumnType::String)]),
            routing_values: None,
        }),
    ]
}

/// The score a backend reports for `metric` (docs/format.md, "Shards").
fn expected_score(backend: BackendKind, metric: Metric, q: &[f32], v: &[f32]) -> f32 {
    let cos = || 1.0 - dot(q, v) / (norm(q) * norm(v));
    match (backend, metric) {
        (BackendKind::SqliteVec, Metric::L2) => l2_squared(q, v).sqrt(),
        (BackendKind::Lancedb, Metric::L2) => l2_squared(q, v),
        (_, Metric::Cosine) => cos(),
        (_, Metric::DotProduct) => 1.0 - dot(q, v),
    }
}

fn id_text(id: &VectorId) -> String {
    id.to_string()
}

/// The search options that route `r` as the writer routed it.
fn options_for(strategy: Strategy, r: &Record, probes: u32) -> SearchOptions {
    match strategy {
        Strategy::Explicit => SearchOptions::new().shard_ids(vec![r.shard_id.unwrap()]),
        Strategy::Cel => SearchOptions::new().routing_context(r.routing_context.clone().unwrap()),
        _ => SearchOptions::new().num_probes(probes),
    }
}

/// Builds `input` at `prefix` and opens the result with an empty cache at
/// `cache`.
async fn build_and_open(
    prefix: &Path,
    input: &Input,
    opts: &WriterOptions,
    cache: impl Into<std::path::PathBuf>,
) -> (shardvec::writer::BuildSummary, AsyncShardedVectorReader) {
    let p = prefix.to_str().unwrap();
    let summary = writer::build(p, input, opts)
        .await
        .unwrap_or_else(|e| panic!("build {p}: {e}"));
    let reader = AsyncShardedVectorReader::open(p, cache, ReaderOptions::new())
        .await
        .unwrap_or_else(|e| panic!("open {p}: {e}"));
    (summary, reader)
}

async fn round_trip(backend: BackendKind, metric: Metric, strategy: StrategyConfig) {
    let what = format!("{backend:?}/{metric:?}/{:?}", strategy_name(&strategy));
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("snap");
    let recs = records(backend);
    let opts = WriterOptions::new(DBS, metric, strategy)
        .backend(backend)
        .num_probes(2)
        .seed(5);
    let (summary, reader) = build_and_open(
        &prefix,
        &Input::memory(recs.clone()),
        &opts,
        dir.path().join("cache"),
    )
    .await;
    assert_eq!(summary.total_vectors, N as u64, "{what}");

    let info = reader.snapshot_info().unwrap();
    assert_eq!(
        (info.num_dbs, info.dim, info.metric, info.total_vectors),
        (DBS, DIM, metric, N as u64),
        "{what}"
    );
    let strategy = info.sharding;

    // Writer and router agree; every record stored exactly once.
    let by_id: HashMap<String, &Record> = recs.iter().map(|r| (id_text(&r.id), r)).collect();
    let mut stored: HashMap<String, ShardId> = HashMap::new();
    for s in 0..DBS {
        for (id, v) in reader.scan_shard(ShardId(s)).await.unwrap() {
            let r = by_id
                .get(&id_text(&id))
                .unwrap_or_else(|| panic!("{what}: unknown id {id}"));
            assert_eq!(v, r.vector, "{what}: vector of {id}");
            if backend == BackendKind::SqliteVec {
                assert_eq!(id, r.id, "{what}: id type of {id}");
            }
            let route = reader
                .route(&r.vector, &options_for(strategy, r, 1))
                .unwrap();
            assert_eq!(
                route[0],
                ShardId(s),
                "{what}: {id} stored in {s}, routed to {route:?}"
            );
            assert!(
                stored.insert(id_text(&id), ShardId(s)).is_none(),
                "{what}: {id} twice"
            );
        }
    }
    assert_eq!(stored.len(), N, "{what}");

    // Searches equal brute force over the shards routed to.
    let queries = synthetic::queries_near(
        &synthetic::blobs(N, DIM, 6, 0.3, 11).unwrap().vectors,
        12,
        0.05,
        3,
    );
    for (qi, q) in queries.iter().enumerate() {
        let template = &recs[qi * 7];
        let so = options_for(strategy, template, 2);
        let resp = reader.search(q, 10, &so).await.unwrap();
        let probed = reader.route(q, &so).unwrap();
        let mut truth: Vec<(f32, &Record)> = recs
            .iter()
            .filter(|r| probed.contains(&stored[&id_text(&r.id)]))
            .map(|r| (expected_score(backend, metric, q, &r.vector), r))
            .collect();
        truth.sort_by(|a, b| a.0.total_cmp(&b.0));
        truth.truncate(10);
        let got: Vec<String> = resp.results.iter().map(|h| id_text(&h.id)).collect();
        let want: Vec<String> = truth.iter().map(|(_, r)| id_text(&r.id)).collect();
        assert_eq!(got, want, "{what}: query {qi} probed {probed:?}");
        for (hit, (score, r)) in resp.results.iter().zip(&truth) {
            assert!(
                (hit.score - score).abs() <= 1e-4 * score.abs().max(1.0),
                "{what}: query {qi} {}: score {} vs {score}",
                hit.id,
                hit.score
            );
            assert_eq!(hit.payload, r.payload, "{what}: payload of {}", hit.id);
        }
    }
}

fn strategy_name(s: &StrategyConfig) -> &'static str {
    match s {
        StrategyConfig::Cluster { .. } => "cluster",
        StrategyConfig::Lsh { .. } => "lsh",
        StrategyConfig::Explicit => "explicit",
        StrategyConfig::Cel(_) => "cel",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_vec_round_trips_every_strategy_and_metric() {
    for metric in [Metric::Cosine, Metric::L2] {
        for s in strategies() {
            round_trip(BackendKind::SqliteVec, metric, s).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lancedb_round_trips_every_strategy_and_metric() {
    for metric in [Metric::Cosine, Metric::L2, Metric::DotProduct] {
        for s in strategies() {
            round_trip(BackendKind::Lancedb, metric, s).await;
        }
    }
}

/// `sqlite_master` of a manifest: (type, name, sql).
fn schema(path: &Path) -> Vec<(String, String, Option<String>)> {
    let c = rusqlite::Connection::open(path).unwrap();
    let mut st = c
        .prepare("SELECT type, name, sql FROM sqlite_master ORDER BY name")
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn manifest_file(prefix: &Path) -> std::path::PathBuf {
    let dir = std::fs::read_dir(prefix.join("manifests"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    dir.join("manifest")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifest_and_current_have_the_reference_layout() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("snap");
    let opts = WriterOptions::new(
        DBS,
        Metric::Cosine,
        StrategyConfig::Cluster { centroids: None },
    )
    .num_probes(2);
    writer::build(
        prefix.to_str().unwrap(),
        &Input::memory(records(BackendKind::SqliteVec)),
        &opts,
    )
    .await
    .unwrap();
    let ours = manifest_file(&prefix);
    let reference = manifest_file(&shardvec_e2e::fixtures_dir().join("sqlitevec_cluster_cosine"));
    assert_eq!(schema(&ours), schema(&reference));
    // A shard: the same tables as the reference's (its `kv` table belongs to
    // unified snapshots and is ignored by vector readers).
    let shard_db = |root: &Path| -> std::path::PathBuf {
        let run = std::fs::read_dir(root.join("shards"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        run.join("db=00001/attempt=00/shard.db")
    };
    // Dimensions differ (16 here, 32 there): compare the SQL without them.
    let vector_tables = |p: &Path| -> Vec<(String, String, Option<String>)> {
        schema(p)
            .into_iter()
            .filter(|(_, name, _)| name != "kv")
            .map(|(t, n, sql)| {
                let sql = sql.map(|s| {
                    s.replace(&format!("float[{DIM}]"), "float[D]")
                        .replace("float[32]", "float[D]")
                });
                (t, n, sql)
            })
            .collect()
    };
    assert_eq!(
        vector_tables(&shard_db(&prefix)),
        vector_tables(&shard_db(
            &shardvec_e2e::fixtures_dir().join("sqlitevec_cluster_cosine")
        ))
    );

    let custom = |p: &Path| -> serde_json::Value {
        let c = rusqlite::Connection::open(p).unwrap();
        let s: String = c
            .query_row("SELECT custom FROM build_meta", [], |r| r.get(0))
            .unwrap();
        serde_json::from_str(&s).unwrap()
    };
    let keys = |v: &serde_json::Value| -> Vec<String> {
        v["vector"].as_object().unwrap().keys().cloned().collect()
    };
    assert_eq!(keys(&custom(&ours)), keys(&custom(&reference)));
    // Same SQLite column types, row by row.
    let types = |p: &Path| -> Vec<String> {
        let c = rusqlite::Connection::open(p).unwrap();
        let mut v: Vec<String> = c
            .prepare("SELECT typeof(run_id), typeof(created_at), typeof(num_dbs), typeof(s3_prefix), typeof(custom), typeof(format_version) FROM build_meta")
            .unwrap()
            .query_row([], |r| (0..6).map(|i| r.get::<_, String>(i)).collect())
            .unwrap();
        v.extend(
            c.prepare("SELECT typeof(db_url), typeof(attempt), typeof(row_count), typeof(db_bytes), typeof(min_key), typeof(checkpoint_id), typeof(writer_info) FROM shards LIMIT 1")
                .unwrap()
                .query_row([], |r| (0..7).map(|i| r.get::<_, String>(i)).collect::<Result<Vec<_>, _>>())
                .unwrap(),
        );
        v
    };
    assert_eq!(types(&ours), types(&reference));
    let current_keys = |p: &Path| -> Vec<String> {
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(p.join("_CURRENT")).unwrap()).unwrap();
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(
        current_keys(&prefix),
        current_keys(&shardvec_e2e::fixtures_dir().join("sqlitevec_cluster_cosine"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_build_leaves_the_published_snapshot_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("snap");
    let p = prefix.to_str().unwrap();
    let opts = WriterOptions::new(DBS, Metric::L2, StrategyConfig::Lsh { num_hash_bits: 4 });
    let good = records(BackendKind::SqliteVec);
    writer::build(p, &Input::memory(good.clone()), &opts)
        .await
        .unwrap();
    let current = std::fs::read(prefix.join("_CURRENT")).unwrap();
    let objects_before = walk(&prefix);

    // Record 450 has the wrong dimension: found while writing shards.
    let mut bad = good.clone();
    bad[450].vector.pop();
    let err = writer::build(p, &Input::memory(bad), &opts)
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("record 450") && msg.contains("dimension 15"),
        "{msg}"
    );
    // A NaN, and an EXPLICIT record without a shard.
    let mut nan = good.clone();
    nan[3].vector[0] = f32::NAN;
    let msg = writer::build(p, &Input::memory(nan), &opts)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("record 3") && msg.contains("not finite"),
        "{msg}"
    );
    let mut no_shard = good.clone();
    no_shard[7].shard_id = None;
    let explicit = WriterOptions::new(DBS, Metric::L2, StrategyConfig::Explicit);
    let msg = writer::build(p, &Input::memory(no_shard), &explicit)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("record 7") && msg.contains("shard_id"),
        "{msg}"
    );
    // sqlite-vec cannot do dot products: refused before anything is written.
    let dotp = WriterOptions::new(DBS, Metric::DotProduct, StrategyConfig::Explicit);
    assert!(matches!(
        writer::build(p, &Input::memory(good), &dotp).await,
        Err(shardvec::Error::InvalidArgument(_))
    ));

    assert_eq!(std::fs::read(prefix.join("_CURRENT")).unwrap(), current);
    assert_eq!(
        walk(&prefix),
        objects_before,
        "failed builds left objects behind"
    );
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

/// The file formats: the same records as `.npy` + side files, `.fvecs` +
/// side files and JSON Lines give the same stored shards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn npy_fvecs_and_jsonl_inputs_store_the_same_records() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let recs = records(BackendKind::SqliteVec);
    // .npy (float64, to check the conversion) + ids + payloads + contexts.
    let mut npy = Vec::new();
    let header = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': ({N}, {DIM}), }}");
    let pad = (64 - (10 + header.len() + 1) % 64) % 64;
    let header = format!("{header}{}\n", " ".repeat(pad));
    npy.extend_from_slice(b"\x93NUMPY\x01\x00");
    npy.extend_from_slice(&(header.len() as u16).to_le_bytes());
    npy.extend_from_slice(header.as_bytes());
    let mut fvecs = Vec::new();
    let (mut ids, mut payloads, mut contexts, mut jsonl) =
        (String::new(), String::new(), String::new(), String::new());
    for r in &recs {
        for x in &r.vector {
            npy.extend_from_slice(&f64::from(*x).to_le_bytes());
        }
        fvecs.extend_from_slice(&(DIM as i32).to_le_bytes());
        for x in &r.vector {
            fvecs.extend_from_slice(&x.to_le_bytes());
        }
        let id = match &r.id {
            VectorId::Int(i) => serde_json::json!(i),
            VectorId::Str(s) => serde_json::json!(s),
        };
        let payload = r.payload.clone().unwrap_or(serde_json::Value::Null);
        let ctx = r.routing_context.as_ref().unwrap().to_json();
        ids.push_str(&format!("{id}\n"));
        payloads.push_str(&format!("{payload}\n"));
        contexts.push_str(&format!("{ctx}\n"));
        jsonl.push_str(&format!(
            "{}\n",
            serde_json::json!({"id": id, "vector": r.vector, "payload": payload, "routing_context": ctx})
        ));
    }
    for (name, bytes) in [
        ("v.npy", npy),
        ("v.fvecs", fvecs),
        ("ids.txt", ids.into_bytes()),
        ("p.jsonl", payloads.into_bytes()),
        ("c.jsonl", contexts.into_bytes()),
        ("all.jsonl", jsonl.into_bytes()),
    ] {
        std::fs::File::create(d.join(name))
            .unwrap()
            .write_all(&bytes)
            .unwrap();
    }
    let cel = StrategyConfig::Cel(CelSpec {
        expr: "shard_hash(tenant) % 4u".into(),
        columns: BTreeMap::from([("tenant".to_string(), CelColumnType::String)]),
        routing_values: None,
    });
    let side = |i: Input| {
        i.ids(d.join("ids.txt"))
            .payloads(d.join("p.jsonl"))
            .routing_contexts(d.join("c.jsonl"))
    };
    let inputs = [
        ("memory", Input::memory(recs.clone())),
        ("npy", side(Input::path(d.join("v.npy")).unwrap())),
        ("fvecs", side(Input::path(d.join("v.fvecs")).unwrap())),
        ("jsonl", Input::path(d.join("all.jsonl")).unwrap()),
    ];
    let mut stored: Vec<Vec<Vec<shardvec::backend::StoredVector>>> = Vec::new();
    for (name, input) in inputs {
        assert_eq!(input.dim().unwrap(), DIM, "{name}");
        let prefix = d.join(format!("snap-{name}"));
        let opts = WriterOptions::new(DBS, Metric::L2, cel.clone());
        let (_, reader) =
            build_and_open(&prefix, &input, &opts, d.join(format!("cache-{name}"))).await;
        let mut shards = Vec::new();
        for s in 0..DBS {
            shards.push(reader.scan_shard(ShardId(s)).await.unwrap());
        }
        // Payloads came through too.
        let r = &recs[1];
        let hit = reader
            .search(
                &r.vector,
                1,
                &SearchOptions::new().routing_context(r.routing_context.clone().unwrap()),
            )
            .await
            .unwrap();
        assert_eq!(
            (&hit.results[0].id, &hit.results[0].payload),
            (&r.id, &r.payload),
            "{name}"
        );
        stored.push(shards);
    }
    for (i, s) in stored.iter().enumerate().skip(1) {
        assert_eq!(s, &stored[0], "input {i} stored differently");
    }
}

/// Given centroids are used as they are; categorical CEL routes value i to
/// shard i.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_centroids_and_categorical_cel() {
    let dir = tempfile::tempdir().unwrap();
    let recs = records(BackendKind::SqliteVec);
    // Centroids: the first record of each shard-to-be, chosen here.
    let centroids: Vec<f32> = (0..DBS as usize)
        .flat_map(|i| recs[i * 100].vector.clone())
        .collect();
    let m = shardvec_core::npy::Matrix::new(DBS as usize, DIM, centroids).unwrap();
    let prefix = dir.path().join("c");
    let opts = WriterOptions::new(
        DBS,
        Metric::L2,
        StrategyConfig::Cluster {
            centroids: Some(m.clone()),
        },
    );
    let (_, reader) = build_and_open(
        &prefix,
        &Input::memory(recs.clone()),
        &opts,
        dir.path().join("cc"),
    )
    .await;
    for s in 0..DBS {
        for (id, v) in reader.scan_shard(ShardId(s)).await.unwrap() {
            // Nearest given centroid, computed here (ties: lowest index).
            let best = (0..DBS as usize)
                .min_by(|a, b| {
                    l2_squared(&v, m.row(*a).unwrap())
                        .total_cmp(&l2_squared(&v, m.row(*b).unwrap()))
                })
                .unwrap();
            assert_eq!(best as u32, s, "{id}");
        }
    }

    let prefix = dir.path().join("cat");
    let regions = ["eu", "us", "ap"];
    let recs: Vec<Record> = recs
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            r.routing_context(
                RoutingContext::new().with("region", RoutingValue::Str(regions[i % 3].into())),
            )
        })
        .collect();
    let cel = StrategyConfig::Cel(CelSpec {
        expr: "region".into(),
        columns: BTreeMap::from([("region".to_string(), CelColumnType::String)]),
        routing_values: Some(
            regions
                .iter()
                .map(|r| RoutingValue::Str(r.to_string()))
                .collect(),
        ),
    });
    let (_, reader) = build_and_open(
        &prefix,
        &Input::memory(recs.clone()),
        &WriterOptions::new(3, Metric::Cosine, cel),
        dir.path().join("cc2"),
    )
    .await;
    for s in 0..3u32 {
        let rows = reader.scan_shard(ShardId(s)).await.unwrap();
        assert_eq!(rows.len(), N / 3);
        for (id, _) in rows {
            let i: usize = id.to_string().trim_start_matches("doc-").parse().unwrap();
            assert_eq!(i % 3, s as usize, "{id}");
        }
    }
}

/// Large LanceDB shards get the approximate IVF_HNSW_SQ index; its recall
/// against brute force (computed here) stays high.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lancedb_hnsw_sq_index_keeps_recall_high() {
    let dir = tempfile::tempdir().unwrap();
    let data = synthetic::blobs(3000, 24, 6, 0.4, 21).unwrap();
    let recs: Vec<Record> = data
        .vectors
        .iter_rows()
        .enumerate()
        .map(|(i, v)| Record::new(i as i64, v.to_vec()))
        .collect();
    let prefix = dir.path().join("s");
    let opts = WriterOptions::new(2, Metric::Cosine, StrategyConfig::Lsh { num_hash_bits: 3 })
        .backend(BackendKind::Lancedb)
        .lance_index_min_rows(500);
    writer::build(
        prefix.to_str().unwrap(),
        &Input::memory(recs.clone()),
        &opts,
    )
    .await
    .unwrap();
    // Every shard has an index folder.
    let shards = prefix.join("shards");
    let run = std::fs::read_dir(&shards)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    for db in std::fs::read_dir(&run).unwrap() {
        let p = db
            .unwrap()
            .path()
            .join("attempt=00/vector_index.lance/_indices");
        assert!(p.exists(), "{}", p.display());
    }
    let reader = AsyncShardedVectorReader::open(
        prefix.to_str().unwrap(),
        dir.path().join("c"),
        ReaderOptions::new(),
    )
    .await
    .unwrap();
    let queries = synthetic::queries_near(&data.vectors, 50, 0.05, 4);
    let mut found = 0;
    for q in &queries {
        let so = SearchOptions::new().num_probes(2);
        let got = reader.search(q, 10, &so).await.unwrap();
        let mut truth: Vec<(f32, usize)> = recs
            .iter()
            .enumerate()
            .map(|(i, r)| (1.0 - dot(q, &r.vector) / (norm(q) * norm(&r.vector)), i))
            .collect();
        truth.sort_by(|a, b| a.0.total_cmp(&b.0));
        found += truth[..10]
            .iter()
            .filter(|(_, i)| {
                got.results
                    .iter()
                    .any(|h| h.id.to_string() == i.to_string())
            })
            .count();
    }
    let recall = found as f64 / (10.0 * queries.len() as f64);
    assert!(recall >= 0.9, "recall@10 {recall}");
}
