//! Filtered search on every peer fixture, both backends (sqlite-vec in
//! memory and through the extension, LanceDB), the async and the blocking
//! reader, against a brute force written here: the rows of each shard are
//! read apart from the reader's search code (vectors by `scan_shard`, ids
//! and payloads straight from the shard files with rusqlite or lancedb),
//! the filters are evaluated by hand-written predicates, the distances
//! computed in f64. Also: probing until enough rows match (`min_results`,
//! `max_probes`), the host's `filter` (and its 400 on a malformed one), and
//! `shardvec search --filter`.

use std::path::{Path, PathBuf};

use futures::TryStreamExt;
use lancedb::arrow::arrow_array::{Array, StringArray};
use lancedb::query::{ExecutableQuery, QueryBase};
use serde_json::{json, Value};
use shardvec::backend::sqlite_vec::{SqliteVecBackend, SqliteVecScan};
use shardvec::{
    AsyncShardedVectorReader, Filter, ProbeStop, ReaderOptions, SearchOptions, ShardedVectorReader,
};
use shardvec_core::{Metric, SearchResult, ShardId, VectorId};
use shardvec_e2e::host::{error_code, post, TestHost};
use shardvec_e2e::Case;
use shardvec_host::HostOptions;

/// One stored record of a shard.
#[derive(Debug, Clone)]
struct Row {
    id: VectorId,
    vector: Vec<f32>,
    payload: Option<Value>,
}

/// A filter with the hand-written predicate it must equal.
struct Case2 {
    json: Value,
    pred: Box<dyn Fn(&Row) -> bool>,
}

fn field<'a>(r: &'a Row, k: &str) -> Option<&'a Value> {
    r.payload.as_ref()?.get(k)
}

/// Filters over the fixtures' payload fields (`tenant`, `label`, `i`) and
/// ids, chosen from the rows so each matches something.
fn filters(rows: &[Row]) -> Vec<Case2> {
    let tenants: Vec<String> = {
        let mut t: Vec<String> = rows
            .iter()
            .filter_map(|r| field(r, "tenant")?.as_str().map(str::to_string))
            .collect();
        t.sort();
        t.dedup();
        t
    };
    let labels: Vec<Value> = {
        let mut l: Vec<Value> = rows
            .iter()
            .filter_map(|r| field(r, "label").cloned())
            .collect();
        l.sort_by_key(|v| v.to_string());
        l.dedup();
        l
    };
    assert!(tenants.len() >= 3 && !labels.is_empty(), "fixture payloads");
    let t0 = tenants[0].clone();
    let (t1, t2) = (tenants[1].clone(), tenants[2].clone());
    let l0 = labels[0].clone();
    let some_ids: Vec<VectorId> = rows.iter().step_by(97).map(|r| r.id.clone()).collect();
    let id_json: Vec<Value> = some_ids
        .iter()
        .map(|id| match id {
            VectorId::Int(i) => json!(i),
            VectorId::Str(s) => json!(s),
        })
        .collect();
    let num = |r: &Row, k: &str| field(r, k).and_then(Value::as_f64);
    vec![
        Case2 {
            json: json!({ "tenant": t0 }),
            pred: Box::new({
                let t0 = t0.clone();
                move |r| field(r, "tenant").and_then(Value::as_str) == Some(t0.as_str())
            }),
        },
        Case2 {
            json: json!({"i": {"$gte": 100, "$lt": 400}}),
            pred: Box::new(move |r| num(r, "i").is_some_and(|i| (100.0..400.0).contains(&i))),
        },
        Case2 {
            json: json!({"$or": [{"label": l0}, {"tenant": {"$in": [t1, t2]}}]}),
            pred: Box::new({
                let (t1, t2, l0) = (tenants[1].clone(), tenants[2].clone(), labels[0].clone());
                move |r| {
                    field(r, "label") == Some(&l0)
                        || field(r, "tenant")
                            .and_then(Value::as_str)
                            .is_some_and(|t| t == t1 || t == t2)
                }
            }),
        },
        Case2 {
            // $not matches rows without a payload too.
            json: json!({"$not": {"tenant": t0}}),
            pred: Box::new({
                let t0 = t0.clone();
                move |r| field(r, "tenant").and_then(Value::as_str) != Some(t0.as_str())
            }),
        },
        Case2 {
            json: json!({"tenant": t0, "i": {"$lt": 1000}}),
            pred: Box::new(move |r| {
                field(r, "tenant").and_then(Value::as_str) == Some(t0.as_str())
                    && num(r, "i").is_some_and(|i| i < 1000.0)
            }),
        },
        Case2 {
            json: json!({"$id": {"$in": id_json}}),
            pred: Box::new(move |r| some_ids.contains(&r.id)),
        },
        Case2 {
            json: json!({"i": {"$exists": false}}),
            pred: Box::new(move |r| field(r, "i").is_none()),
        },
    ]
}

/// The local file of a shard of `case` (recorded URLs point into
/// `s3://fixtures/<case>/`).
fn shard_path(case: &Case, db_url: &str) -> PathBuf {
    let rel = db_url
        .strip_prefix(&format!("s3://fixtures/{}/", case.name))
        .unwrap_or_else(|| panic!("db_url {db_url}"));
    case.dir.join(rel)
}

fn decode_original_id(raw: &str) -> VectorId {
    let v: Value = serde_json::from_str(raw).unwrap();
    match v["t"].as_str().unwrap() {
        "int" => VectorId::Int(v["v"].as_i64().unwrap()),
        _ => VectorId::Str(v["v"].as_str().unwrap().to_string()),
    }
}

/// Ids and payloads of a shard, read from its files.
async fn payloads_of(dir: &Path, lance: bool) -> Vec<(VectorId, Option<Value>)> {
    if !lance {
        let conn = rusqlite::Connection::open(dir.join("shard.db")).unwrap();
        let mut st = conn
            .prepare(
                "SELECT m.original_id, p.payload FROM vec_id_map m \
                 LEFT JOIN vec_payloads p ON p.rowid = m.internal_id",
            )
            .unwrap();
        let rows: Vec<(String, Option<String>)> = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        return rows
            .into_iter()
            .map(|(id, p)| {
                (
                    decode_original_id(&id),
                    p.map(|p| serde_json::from_str(&p).unwrap()),
                )
            })
            .collect();
    }
    let db = lancedb::connect(dir.to_str().unwrap())
        .execute()
        .await
        .unwrap();
    let table = db.open_table("vector_index").execute().await.unwrap();
    let batches: Vec<_> = table
        .query()
        .select(lancedb::query::Select::columns(&["id", "payload"]))
        .execute()
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let mut out = Vec::new();
    for b in &batches {
        let ids = b
            .column_by_name("id")
            .unwrap()
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        let ps = b
            .column_by_name("payload")
            .unwrap()
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        for i in 0..b.num_rows() {
            let p = (!ps.is_null(i)).then(|| serde_json::from_str(ps.value(i)).unwrap());
            out.push((VectorId::Str(ids.value(i).to_string()), p));
        }
    }
    out
}

/// Every row of every shard, by shard.
async fn rows_of(case: &Case, reader: &AsyncShardedVectorReader) -> Vec<Vec<Row>> {
    let lance = case.name.starts_with("lancedb");
    let mut out = Vec::new();
    for detail in reader.shard_details().unwrap() {
        let Some(url) = &detail.db_url else {
            out.push(Vec::new());
            continue;
        };
        let dir = shard_path(case, url);
        let payloads = payloads_of(&dir, lance).await;
        let rows: Vec<Row> = reader
            .scan_shard(detail.db_id)
            .await
            .unwrap()
            .into_iter()
            .map(|(id, vector)| {
                let payload = payloads
                    .iter()
                    .find(|(pid, _)| *pid == id)
                    .unwrap_or_else(|| panic!("{}: no payload row for {id}", case.name))
                    .1
                    .clone();
                Row {
                    id,
                    vector,
                    payload,
                }
            })
            .collect();
        assert_eq!(rows.len() as u64, detail.vector_count, "{}", case.name);
        out.push(rows);
    }
    out
}

/// The distance as the backend reports it, in f64.
fn distance(metric: Metric, lance: bool, q: &[f32], v: &[f32]) -> f64 {
    let dot: f64 = q
        .iter()
        .zip(v)
        .map(|(a, b)| f64::from(*a) * f64::from(*b))
        .sum();
    let nq: f64 = q.iter().map(|a| f64::from(*a).powi(2)).sum::<f64>().sqrt();
    let nv: f64 = v.iter().map(|a| f64::from(*a).powi(2)).sum::<f64>().sqrt();
    let l2sq: f64 = q
        .iter()
        .zip(v)
        .map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2))
        .sum();
    match (metric, lance) {
        (Metric::Cosine, _) => 1.0 - dot / (nq * nv),
        (Metric::L2, false) => l2sq.sqrt(),
        (Metric::L2, true) => l2sq,
        (Metric::DotProduct, false) => -dot,
        (Metric::DotProduct, true) => 1.0 - dot,
    }
}

/// Checks `got` against the brute force over `shards` of `rows`.
#[allow(clippy::too_many_arguments)]
fn check(
    what: &str,
    got: &[SearchResult],
    rows: &[Vec<Row>],
    shards: &[ShardId],
    pred: &dyn Fn(&Row) -> bool,
    q: &[f32],
    k: usize,
    metric: Metric,
    lance: bool,
) {
    let mut truth: Vec<(f64, &Row, ShardId)> = shards
        .iter()
        .flat_map(|s| rows[s.index()].iter().map(move |r| (r, *s)))
        .filter(|(r, _)| pred(r))
        .map(|(r, s)| (distance(metric, lance, q, &r.vector), r, s))
        .collect();
    truth.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert_eq!(got.len(), truth.len().min(k), "{what}: result count");
    let tol = |d: f64| 1e-4 * d.abs().max(1e-3);
    for (i, hit) in got.iter().enumerate() {
        let (d, row, shard) = truth
            .iter()
            .find(|(_, r, _)| r.id == hit.id)
            .unwrap_or_else(|| panic!("{what}: {} does not match the filter", hit.id));
        assert!(pred(row), "{what}: {} does not match", hit.id);
        assert_eq!(hit.payload, row.payload, "{what}: payload of {}", hit.id);
        assert_eq!(hit.shard_id, Some(*shard), "{what}: shard of {}", hit.id);
        assert!(
            (f64::from(hit.score) - d).abs() <= tol(*d),
            "{what}: score of {}: {} vs {d}",
            hit.id,
            hit.score
        );
        // Rank i holds the i-th best distance (ties in any order).
        let want = truth[i].0;
        assert!(
            (d - want).abs() <= tol(want),
            "{what}: rank {i} is {} at {d}, brute force {want}",
            hit.id
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filtered_search_equals_brute_force_on_every_fixture() {
    let mut checked = 0;
    for case in Case::all() {
        let lance = case.name.starts_with("lancedb");
        let metric = case.recorded.snapshot_info.metric;
        let prefix = case.dir.to_str().unwrap().to_string();
        let scans: &[Option<SqliteVecScan>] = if lance {
            &[None]
        } else {
            &[
                Some(SqliteVecScan::InMemory),
                Some(SqliteVecScan::Quantized),
                Some(SqliteVecScan::Extension),
            ]
        };
        for scan in scans {
            let root = tempfile::tempdir().unwrap();
            let mut opts = ReaderOptions::new();
            if let Some(scan) = scan {
                opts = opts.shard_backend(SqliteVecBackend::new(*scan));
            }
            let reader = AsyncShardedVectorReader::open(&prefix, root.path(), opts)
                .await
                .unwrap();
            let rows = rows_of(&case, &reader).await;
            let all: Vec<Row> = rows.iter().flatten().cloned().collect();
            for f in filters(&all) {
                let filter = Filter::parse(&f.json).unwrap();
                for (qi, q) in case.recorded.queries.iter().take(12).enumerate() {
                    let k = 10;
                    let opts = q.search_options().filter(filter.clone());
                    let what = format!("{} {scan:?} {} query {qi}", case.name, f.json);
                    let resp = reader.search(&q.query, k, &opts).await.unwrap();
                    check(
                        &what,
                        &resp.results,
                        &rows,
                        &resp.route,
                        &f.pred,
                        &q.query,
                        k,
                        metric,
                        lance,
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 1000, "checked {checked}");
}

#[test]
fn the_blocking_reader_filters_the_same() {
    for name in ["sqlitevec_cluster_cosine", "lancedb_lsh_cosine"] {
        let case = Case::load(name);
        let root = tempfile::tempdir().unwrap();
        let reader = ShardedVectorReader::open(
            case.dir.to_str().unwrap(),
            root.path(),
            ReaderOptions::new(),
        )
        .unwrap();
        let root2 = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let areader = rt
            .block_on(AsyncShardedVectorReader::open(
                case.dir.to_str().unwrap(),
                root2.path(),
                ReaderOptions::new(),
            ))
            .unwrap();
        let rows = rt.block_on(rows_of(&case, &areader));
        let all: Vec<Row> = rows.iter().flatten().cloned().collect();
        for f in filters(&all) {
            let filter = Filter::parse(&f.json).unwrap();
            for q in case.recorded.queries.iter().take(5) {
                let opts = q.search_options().filter(filter.clone());
                let resp = reader.search(&q.query, 7, &opts).unwrap();
                let lance = case.name.starts_with("lancedb");
                check(
                    name,
                    &resp.results,
                    &rows,
                    &resp.route,
                    &f.pred,
                    &q.query,
                    7,
                    case.recorded.snapshot_info.metric,
                    lance,
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_results_probes_further_and_honours_the_limit() {
    let case = Case::load("sqlitevec_cluster_cosine");
    let root = tempfile::tempdir().unwrap();
    let reader = AsyncShardedVectorReader::open(
        case.dir.to_str().unwrap(),
        root.path(),
        ReaderOptions::new(),
    )
    .await
    .unwrap();
    let rows = rows_of(&case, &reader).await;
    let num_dbs = reader.snapshot_info().unwrap().num_dbs;
    let q = &case.recorded.queries[0].query;
    let route1 = reader
        .route(q, &SearchOptions::new().num_probes(1))
        .unwrap();
    // Routing order: every shorter route is a prefix of the full order.
    let order = reader
        .route(q, &SearchOptions::new().num_probes(num_dbs))
        .unwrap();
    for p in 1..=num_dbs {
        let r = reader
            .route(q, &SearchOptions::new().num_probes(p))
            .unwrap();
        assert_eq!(r[..], order[..p as usize]);
    }
    // A record held by the shard routed last: the nearest shards hold no match.
    let far = order[order.len() - 1];
    let target = rows[far.index()][0].id.clone();
    let filter =
        Filter::parse(&json!({"$id": {"$in": [serde_json::to_value(&target).unwrap()]}})).unwrap();

    let plain = SearchOptions::new().num_probes(1).filter(filter.clone());
    let r = reader.search(q, 5, &plain).await.unwrap();
    assert!(
        r.results.is_empty() && r.probing.is_none(),
        "{:?}",
        r.results
    );

    let more = plain.clone().min_results(1);
    let r = reader.search(q, 5, &more).await.unwrap();
    assert_eq!(r.results.len(), 1);
    assert_eq!(r.results[0].id, target);
    assert_eq!(r.results[0].shard_id, Some(far));
    let p = r.probing.unwrap();
    assert_eq!(
        (p.stop, p.found, p.shards_probed),
        (ProbeStop::Enough, 1, num_dbs as usize)
    );
    assert_eq!(r.route, order);
    assert_eq!(r.route[..1], route1[..]);

    let capped = more.clone().max_probes(3);
    let r = reader.search(q, 5, &capped).await.unwrap();
    assert!(r.results.is_empty());
    let p = r.probing.unwrap();
    assert_eq!(
        (p.stop, p.found, p.shards_probed),
        (ProbeStop::ProbeLimit, 0, 3)
    );
    assert_eq!(r.route, order[..3]);

    let none = SearchOptions::new()
        .num_probes(2)
        .filter(Filter::parse(&json!({"tenant": "no such tenant"})).unwrap())
        .min_results(3);
    let r = reader.search(q, 5, &none).await.unwrap();
    let p = r.probing.unwrap();
    assert_eq!(
        (p.stop, p.shards_probed),
        (ProbeStop::AllShards, num_dbs as usize)
    );

    // Enough in the routed shards: no further probe.
    let t = rows[route1[0].index()]
        .iter()
        .find_map(|r| r.payload.as_ref()?.get("tenant").cloned())
        .unwrap();
    let easy = SearchOptions::new()
        .num_probes(1)
        .filter(Filter::parse(&json!({"tenant": t})).unwrap())
        .min_results(1);
    let r = reader.search(q, 5, &easy).await.unwrap();
    assert_eq!(r.probing.unwrap().shards_probed, 1);

    // Refused: min_results above top_k, max_probes below the route.
    let e = reader
        .search(q, 2, &more.clone().min_results(3))
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("min_results 3 is above top_k 2"),
        "{e}"
    );
    let e = reader
        .search(q, 5, &more.num_probes(2).max_probes(1))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("max_probes 1"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_filters_and_refuses_malformed_filters() {
    let case = Case::load("sqlitevec_lsh_l2");
    let prefix = case.dir.to_str().unwrap().to_string();
    let host = TestHost::start(&prefix, HostOptions::default()).await;
    let root = tempfile::tempdir().unwrap();
    let reader = AsyncShardedVectorReader::open(&prefix, root.path(), ReaderOptions::new())
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let q = &case.recorded.queries[1].query;
    let filter = json!({"i": {"$gte": 500}});
    let (status, body) = post(
        &client,
        &format!("{}/v1/search", host.url),
        &json!({"query": q, "top_k": 10, "filter": filter, "min_results": 10}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let want = reader
        .search(
            q,
            10,
            &SearchOptions::new()
                .filter(Filter::parse(&filter).unwrap())
                .min_results(10),
        )
        .await
        .unwrap()
        .into_wire();
    let got: Vec<SearchResult> = serde_json::from_value(body["results"].clone()).unwrap();
    assert_eq!(got, want.results);
    assert!(got
        .iter()
        .all(|h| h.payload.as_ref().unwrap()["i"].as_f64().unwrap() >= 500.0));
    assert_eq!(body["probing"], serde_json::to_value(want.probing).unwrap());
    // Per-shard answers, filtered too.
    let shards: Vec<u32> = want.route.iter().map(|s| s.0).collect();
    let (status, body) = post(
        &client,
        &format!("{}/v1/shards/search", host.url),
        &json!({"query": q, "top_k": 10, "shard_ids": shards, "filter": filter}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    for s in body["shards"].as_array().unwrap() {
        for h in s["results"].as_array().unwrap() {
            assert!(h["payload"]["i"].as_f64().unwrap() >= 500.0);
            assert_eq!(h["shard_id"], s["shard_id"]);
        }
    }
    for (bad, place) in [
        (
            json!({"$or": [{"i": 1}, {"i": {"$gte": true}}]}),
            "filter.$or[1].i: $gte needs",
        ),
        (json!({"i": {"$in": 3}}), "filter.i: $in needs a list"),
        (json!({"i": {"$regex": "x"}}), "unknown operator $regex"),
    ] {
        for endpoint in ["search", "shards/search"] {
            let (status, body) = post(
                &client,
                &format!("{}/v1/{endpoint}", host.url),
                &json!({"query": q, "top_k": 3, "shard_ids": [0], "filter": bad}),
            )
            .await;
            assert_eq!(status, 400, "{body}");
            assert_eq!(error_code(&body), "invalid_filter");
            assert!(body.to_string().contains(place), "{body}");
        }
    }
}

#[test]
fn the_cli_filters() {
    let case = Case::load("sqlitevec_explicit_cosine");
    let q = &case.recorded.queries[0];
    let shard_ids: Vec<String> = q
        .args
        .shard_ids
        .clone()
        .unwrap_or_default()
        .iter()
        .map(|s| s.0.to_string())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let filter_file = dir.path().join("f.json");
    std::fs::write(
        &filter_file,
        r#"{"label": {"$exists": true}, "i": {"$lt": 900}}"#,
    )
    .unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec![
            "search".to_string(),
            "--prefix".into(),
            case.dir.to_str().unwrap().into(),
            "--local-root".into(),
            dir.path().join("cache").to_str().unwrap().into(),
            "--query".into(),
            serde_json::to_string(&q.query).unwrap(),
            "--shard-ids".into(),
            shard_ids.join(","),
            "--top-k".into(),
            "8".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        std::process::Command::new(shardvec_e2e::shardvec_bin())
            .args(&args)
            .output()
            .unwrap()
    };
    let out = run(&["--json", "--filter-file", filter_file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    let hits = body["results"].as_array().unwrap();
    assert!(!hits.is_empty());
    for h in hits {
        assert!(h["payload"]["label"].is_string() || !h["payload"]["label"].is_null());
        assert!(h["payload"]["i"].as_f64().unwrap() < 900.0);
        assert!(h["shard_id"].is_u64());
    }
    // Probing from the command line: a CLUSTER snapshot, a filter that
    // matches nothing, --min-results with and without --max-probes.
    let cluster = Case::load("sqlitevec_cluster_cosine");
    let probe = |extra: &[&str]| -> Value {
        let mut args = vec![
            "search".to_string(),
            "--prefix".into(),
            cluster.dir.to_str().unwrap().into(),
            "--local-root".into(),
            dir.path().join("cache2").to_str().unwrap().into(),
            "--query".into(),
            serde_json::to_string(&cluster.recorded.queries[0].query).unwrap(),
            "--num-probes".into(),
            "1".into(),
            "--filter".into(),
            r#"{"tenant": "nobody"}"#.into(),
            "--min-results".into(),
            "2".into(),
            "--json".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let out = std::process::Command::new(shardvec_e2e::shardvec_bin())
            .args(&args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let v = probe(&["--max-probes", "3"]);
    assert_eq!(
        v["probing"],
        json!({"min_results": 2, "found": 0, "shards_probed": 3, "stop": "probe_limit"})
    );
    assert_eq!(v["route"].as_array().unwrap().len(), 3);
    let v = probe(&[]);
    assert_eq!(v["probing"]["stop"], "all_shards");
    assert_eq!(
        v["probing"]["shards_probed"],
        cluster.recorded.snapshot_info.num_dbs
    );
    let out = run(&["--filter", r#"{"i": {"$gt": []}}"#]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("filter.i: $gt needs a number or a string"),
        "{err}"
    );
}

/// LSH probing reaches every shard: with 3 bits and 4 shards the one-bit
/// flips of a code reach 3 shards at most; the probe order goes on by
/// Hamming distance to the fourth.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lsh_probing_reaches_every_shard() {
    use shardvec::writer::{self, Input, Record, StrategyConfig, WriterOptions};
    let records: Vec<Record> = (0..200)
        .map(|i| {
            let v: Vec<f32> = (0..6)
                .map(|d| ((i * 5 + d * 11) as f32 * 0.61).cos())
                .collect();
            Record::new(VectorId::Int(i), v).payload(json!({"i": i}))
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("snap");
    let opts = WriterOptions::new(4, Metric::L2, StrategyConfig::Lsh { num_hash_bits: 3 })
        .num_probes(1)
        .seed(4);
    writer::build(prefix.to_str().unwrap(), &Input::memory(records), &opts)
        .await
        .unwrap();
    let reader = AsyncShardedVectorReader::open(
        prefix.to_str().unwrap(),
        dir.path().join("c"),
        ReaderOptions::new(),
    )
    .await
    .unwrap();
    let nothing = Filter::parse(&json!({"i": {"$lt": 0}})).unwrap();
    for q in [[0.3f32; 6], [-0.2, 0.9, 0.1, -0.7, 0.4, 0.0]] {
        let r = reader
            .search(
                &q,
                5,
                &SearchOptions::new().filter(nothing.clone()).min_results(1),
            )
            .await
            .unwrap();
        let mut probed: Vec<u32> = r.route.iter().map(|s| s.0).collect();
        assert_eq!(r.probing.unwrap().stop, ProbeStop::AllShards, "{probed:?}");
        probed.sort();
        assert_eq!(probed, [0, 1, 2, 3]);
        // The route of one probe is the order's first entry.
        let one = reader.route(&q, &SearchOptions::new()).unwrap();
        assert_eq!(r.route[..1], one[..]);
    }
}
