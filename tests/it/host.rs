//! The host server (`shardvec_host`) on 127.0.0.1, driven over HTTP:
//! every recorded query of every peer fixture through `/v1/search` and
//! through `/v1/shards/search` plus the core merge; routing files and
//! their ETags; refresh with a pinned `manifest_ref`; the limits and the
//! bearer token; graceful shutdown with a request in flight (store slowed
//! by `object_store`'s `ThrottledStore`); and a bounded load run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::memory::InMemory;
use object_store::throttle::{ThrottleConfig, ThrottledStore};
use object_store::ObjectStoreExt;
use serde_json::{json, Value};
use shardvec::{AsyncShardedVectorReader, ReaderOptions, SnapshotLocation};
use shardvec_core::{merge, SearchResult};
use shardvec_e2e::host::{error_code, get, post, rss_kib, TestHost};
use shardvec_e2e::{
    assert_results, assert_same_results, current_manifest_url, halved_scores_allowed,
    two_publishes, write_current, Case,
};
use shardvec_host::{HostMetrics, HostOptions, ShardSet};

fn results(v: &Value) -> Vec<SearchResult> {
    serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("results {v}: {e}"))
}

/// The JSON body of `/v1/search` for a recorded query.
fn search_body(q: &shardvec_e2e::RecordedQuery) -> Value {
    let mut body = json!({ "query": q.query, "top_k": q.top_k });
    if let Some(n) = q.args.num_probes {
        body["num_probes"] = json!(n);
    }
    if let Some(ids) = &q.args.shard_ids {
        body["shard_ids"] = json!(ids);
    }
    if let Some(ctx) = &q.args.routing_context {
        body["routing_context"] = ctx.clone();
    }
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_recorded_answer_through_both_search_endpoints() {
    let client = reqwest::Client::new();
    let mut compared = 0;
    for case in Case::all() {
        let host = TestHost::start(case.dir.to_str().unwrap(), HostOptions::new()).await;
        let manifest_ref = current_manifest_url(&case.name);
        for (i, q) in case.recorded.queries.iter().enumerate() {
            let what = format!("{} query {i}", case.name);
            let (status, routed) =
                post(&client, &format!("{}/v1/search", host.url), &search_body(q)).await;
            assert_eq!(status, 200, "{what}: {routed}");
            let got = results(&routed["results"]);
            assert_results(&what, &got, &q.results, halved_scores_allowed(&case.name));
            assert_eq!(routed["num_shards_queried"], json!(q.num_shards_queried));
            assert_eq!(routed["manifest_ref"], json!(manifest_ref));

            // The edge path: per-shard answers of the routed shards, merged
            // by the core in route order, equal the host's own merge.
            let route = routed["route"].clone();
            let body = json!({
                "query": q.query, "top_k": q.top_k, "shard_ids": route,
                "manifest_ref": manifest_ref,
            });
            let (status, per_shard) =
                post(&client, &format!("{}/v1/shards/search", host.url), &body).await;
            assert_eq!(status, 200, "{what}: {per_shard}");
            let lists: Vec<Vec<SearchResult>> = per_shard["shards"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| results(&s["results"]))
                .collect();
            let ids: Vec<&Value> = per_shard["shards"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| &s["shard_id"])
                .collect();
            assert_eq!(json!(ids), route, "{what}: one answer per routed shard");
            assert_same_results(&what, &merge(lists, q.top_k), &got);
            compared += 1;
        }
    }
    let recorded: usize = Case::all().iter().map(|c| c.recorded.queries.len()).sum();
    assert_eq!(compared, recorded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_files_etags_and_snapshot() {
    let case = Case::load("sqlitevec_cluster_cosine");
    let host = TestHost::start(case.dir.to_str().unwrap(), HostOptions::new()).await;
    let client = reqwest::Client::new();
    let (current, manifest, _) = case.core_routing();
    let manifest_file = std::fs::read(case.local_path(&current.manifest_ref)).unwrap();

    let resp = client
        .get(format!("{}/v1/routing/manifest", host.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let etag = resp.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(
        resp.bytes().await.unwrap().as_ref(),
        manifest_file.as_slice()
    );

    // Revalidation: the same ETag is 304 with no body.
    let resp = client
        .get(format!("{}/v1/routing/manifest", host.url))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 304);
    assert!(resp.bytes().await.unwrap().is_empty());

    let centroids = client
        .get(format!("{}/v1/routing/centroids.npy", host.url))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let recorded = manifest.vector.centroids_ref.clone().unwrap();
    assert_eq!(
        centroids.as_ref(),
        std::fs::read(case.local_path(&recorded)).unwrap()
    );

    let (status, cur) = get(&client, &format!("{}/v1/routing/current", host.url)).await;
    assert_eq!(status, 200);
    let parsed = shardvec_core::CurrentPointer::parse(cur.to_string().as_bytes()).unwrap();
    assert_eq!(parsed.manifest_ref, current.manifest_ref);

    // A CLUSTER snapshot has no hyperplanes; unknown files are 404 too.
    for file in ["hyperplanes.npy", "passwd"] {
        let (status, v) = get(&client, &format!("{}/v1/routing/{file}", host.url)).await;
        assert_eq!((status, error_code(&v)), (404, "not_found"), "{file}");
    }

    let (status, snap) = get(&client, &format!("{}/v1/snapshot", host.url)).await;
    assert_eq!(status, 200);
    assert_eq!(snap["manifest_ref"], json!(current.manifest_ref));
    assert_eq!(
        serde_json::from_value::<shardvec_core::SnapshotInfo>(snap["info"].clone()).unwrap(),
        case.recorded.snapshot_info
    );
    let all: Vec<u32> = (0..case.recorded.snapshot_info.num_dbs).collect();
    assert_eq!(snap["served_shards"], json!(all));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_errors() {
    let case = Case::load("sqlitevec_cluster_cosine");
    let opts = HostOptions::new()
        .shards("0-1".parse::<ShardSet>().unwrap())
        .max_top_k(50)
        .max_body_bytes(64 * 1024);
    let host = TestHost::start(case.dir.to_str().unwrap(), opts).await;
    let client = reqwest::Client::new();
    let search = format!("{}/v1/search", host.url);
    let shards = format!("{}/v1/shards/search", host.url);
    let q = case.recorded.queries[0].query.clone();
    let dim = q.len();
    // Finite in JSON, infinite as f32.
    let huge = vec![1e39f64; dim];

    let cases: Vec<(&str, &str, Value, u16, &str)> = vec![
        (
            "wrong dimension",
            &search,
            json!({"query": [0.5, 0.5], "top_k": 5}),
            400,
            "invalid_query",
        ),
        (
            "overflowing number",
            &shards,
            json!({"query": huge, "top_k": 5, "shard_ids": [0]}),
            400,
            "invalid_query",
        ),
        (
            "top_k above the cap",
            &search,
            json!({"query": q, "top_k": 51}),
            400,
            "top_k_too_large",
        ),
        (
            "top_k zero",
            &shards,
            json!({"query": q, "top_k": 0, "shard_ids": [0]}),
            400,
            "invalid_argument",
        ),
        (
            "unknown field",
            &search,
            json!({"query": q, "topk": 5}),
            400,
            "bad_json",
        ),
        (
            "missing query",
            &search,
            json!({"top_k": 5}),
            400,
            "bad_json",
        ),
        (
            "string query",
            &search,
            json!({"query": "x", "top_k": 5}),
            400,
            "bad_json",
        ),
        (
            "shard not served",
            &shards,
            json!({"query": q, "top_k": 5, "shard_ids": [0, 3]}),
            404,
            "shard_not_served",
        ),
        (
            "shard out of range",
            &shards,
            json!({"query": q, "top_k": 5, "shard_ids": [7]}),
            404,
            "shard_not_served",
        ),
        (
            "routed to shards not served",
            &search,
            json!({"query": q, "top_k": 5, "shard_ids": [2]}),
            404,
            "shard_not_served",
        ),
        (
            "stale manifest",
            &shards,
            json!({"query": q, "top_k": 5, "shard_ids": [0], "manifest_ref": "s3://x/manifests/2020-01-01T00:00:00.000000Z_run_id=old/manifest"}),
            409,
            "stale_manifest",
        ),
        (
            "too large",
            &search,
            json!({"query": vec![0.25f32; 20_000], "top_k": 5}),
            413,
            "body_too_large",
        ),
    ];
    for (what, url, body, status, code) in cases {
        let (got, v) = post(&client, url, &body).await;
        assert_eq!((got, error_code(&v)), (status, code), "{what}: {v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{what}: {v}"
        );
    }
    // The messages name what is at fault.
    let (_, v) = post(&client, &search, &json!({"query": [0.5, 0.5], "top_k": 5})).await;
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains(&dim.to_string()) && msg.contains('2'), "{msg}");
    let (_, v) = post(
        &client,
        &shards,
        &json!({"query": q, "top_k": 5, "shard_ids": [0, 3]}),
    )
    .await;
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains('3') && msg.contains("0-1"), "{msg}");

    // Not JSON at all.
    let resp = client
        .post(&search)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let (status, v) = get(&client, &format!("{}/v1/nope", host.url)).await;
    assert_eq!((status, error_code(&v)), (404, "not_found"));

    // Served shards still answer, and every refusal was counted.
    let (status, v) = post(
        &client,
        &shards,
        &json!({"query": q, "top_k": 5, "shard_ids": [1, 0, 1]}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["shards"].as_array().unwrap().len(),
        2,
        "a repeated shard is searched once"
    );
    let (_, metrics) = get(&client, &format!("{}/metrics", host.url)).await;
    let text = metrics.as_str().unwrap();
    assert!(
        text.contains(
            r#"shardvec_http_requests_total{endpoint="/v1/shards/search",status="404"} 3"#
        ),
        "{text}"
    );
    assert!(text.contains("shardvec_searches_total 1"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_guards_the_api_but_not_health() {
    let case = Case::load("sqlitevec_explicit_cosine");
    let host = TestHost::start(
        case.dir.to_str().unwrap(),
        HostOptions::new().token("s3cret-token"),
    )
    .await;
    let client = reqwest::Client::new();
    let url = format!("{}/v1/snapshot", host.url);
    for header in [
        None,
        Some("Bearer wrong-token!"),
        Some("Bearer s3cret-toke"),
        Some("Bearer s3cret-token2"),
        Some("Bearer "),
        Some("s3cret-token"),
    ] {
        let mut req = client.get(&url);
        if let Some(h) = header {
            req = req.header("authorization", h);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 401, "{header:?}");
        assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    }
    let resp = client
        .get(&url)
        .bearer_auth("s3cret-token")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (status, _) = get(&client, &format!("{}/metrics", host.url)).await;
    assert_eq!(status, 401);
    let (status, health) = get(&client, &format!("{}/healthz", host.url)).await;
    assert_eq!(status, 200);
    assert_eq!(health["status"], "healthy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_swaps_the_manifest_and_refuses_the_old_one() {
    // Two publishes under one prefix: cluster (older), explicit (newer).
    let (older, newer) = ("sqlitevec_cluster_cosine", "sqlitevec_explicit_cosine");
    let (_tmp, prefix, [older_url, newer_url]) = two_publishes(older, newer);
    let host = TestHost::start(prefix.to_str().unwrap(), HostOptions::new()).await;
    let client = reqwest::Client::new();
    let q = Case::load(older).recorded.queries[0].query.clone();
    let pinned = |m: &str| json!({"query": q, "top_k": 3, "shard_ids": [0, 1], "manifest_ref": m});
    let shards = format!("{}/v1/shards/search", host.url);

    let (status, _) = post(&client, &shards, &pinned(&older_url)).await;
    assert_eq!(status, 200);
    let (_, v) = post(&client, &format!("{}/v1/refresh", host.url), &json!({})).await;
    assert_eq!(v, json!({"changed": false, "manifest_ref": older_url}));

    write_current(&prefix, &newer_url);
    let (status, v) = post(&client, &format!("{}/v1/refresh", host.url), &json!({})).await;
    assert_eq!(
        (status, &v),
        (200, &json!({"changed": true, "manifest_ref": newer_url}))
    );
    let (status, v) = post(&client, &shards, &pinned(&older_url)).await;
    assert_eq!((status, error_code(&v)), (409, "stale_manifest"), "{v}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains(&older_url) && msg.contains(&newer_url),
        "{msg}"
    );
    let (status, v) = post(&client, &shards, &pinned(&newer_url)).await;
    assert_eq!(status, 200, "{v}");

    // A refresh that fails (corrupt _CURRENT) keeps the snapshot in service
    // and shows in /healthz.
    std::fs::write(prefix.join("_CURRENT"), b"{ corrupt").unwrap();
    let (status, v) = post(&client, &format!("{}/v1/refresh", host.url), &json!({})).await;
    assert!(status >= 500, "{status} {v}");
    let (_, health) = get(&client, &format!("{}/healthz", host.url)).await;
    assert_eq!(health["manifest_ref"], json!(newer_url));
    assert!(
        health["last_refresh"]["error"].as_str().is_some(),
        "{health}"
    );
    let (status, _) = post(&client, &shards, &pinned(&newer_url)).await;
    assert_eq!(status, 200);
    let (_, metrics) = get(&client, &format!("{}/metrics", host.url)).await;
    assert!(metrics
        .as_str()
        .unwrap()
        .contains("shardvec_refreshes_total 1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_finishes_the_request_in_flight() {
    // Every GET of the store waits 150 ms, so a cold search (shard download)
    // is still running when the shutdown is asked for.
    let case = Case::load("sqlitevec_cluster_cosine");
    // (In memory: the throttle cannot wrap LocalFileSystem's file reads.)
    let memory = InMemory::new();
    for key in &case.recorded.objects {
        let rel = key.strip_prefix(&format!("{}/", case.name)).unwrap();
        let bytes = std::fs::read(case.dir.join(rel)).unwrap();
        memory.put(&rel.into(), bytes.into()).await.unwrap();
    }
    let store = Arc::new(ThrottledStore::new(memory, ThrottleConfig::default()));
    let location = SnapshotLocation::from_store(
        store.clone(),
        object_store::path::Path::from(""),
        case.dir.to_str().unwrap(),
    );
    let metrics = Arc::new(HostMetrics::default());
    let root = tempfile::tempdir().unwrap();
    let reader = AsyncShardedVectorReader::open_at(
        location,
        root.path(),
        ReaderOptions::new().metrics(metrics.clone()),
    )
    .await
    .unwrap();
    store.config_mut(|c| c.wait_get_per_call = Duration::from_millis(150));
    let mut host = TestHost::serve(reader, HostOptions::new(), metrics, root).await;
    let client = reqwest::Client::new();
    let q = &case.recorded.queries[0];
    let url = format!("{}/v1/search", host.url);
    let body = search_body(q);
    let in_flight = tokio::spawn({
        let client = client.clone();
        async move { post(&client, &url, &body).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    let served = host.shutdown();
    let (status, v) = in_flight.await.unwrap();
    assert_eq!(status, 200, "{v}");
    assert_results("in flight", &results(&v["results"]), &q.results, false);
    served.await.unwrap().unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(100),
        "shutdown waited"
    );
    // After shutdown nothing listens.
    assert!(client
        .get(format!("{}/healthz", host.url))
        .send()
        .await
        .is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_malformed_clients_do_not_hurt_the_others() {
    use tokio::io::AsyncWriteExt;
    let case = Case::load("sqlitevec_cluster_cosine");
    let host = TestHost::start(
        case.dir.to_str().unwrap(),
        HostOptions::new().max_body_bytes(64 * 1024),
    )
    .await;
    let addr = host.url.trim_start_matches("http://").to_string();
    let rss_before = rss_kib();
    // 64 slow clients (half a request line, then silence), 32 sending
    // garbage, 32 announcing a gigabyte body and sending a little of it.
    let mut held = Vec::new();
    for i in 0..128 {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let bytes: Vec<u8> = match i % 4 {
            0 | 1 => b"POST /v1/sea".to_vec(),
            2 => (0..4096u32).map(|x| (x * 7919 % 251) as u8).collect(),
            _ => b"POST /v1/search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n{\"query\": [".to_vec(),
        };
        let _ = s.write_all(&bytes).await;
        held.push(s);
    }
    let client = reqwest::Client::new();
    let q = &case.recorded.queries[0];
    for _ in 0..20 {
        let t = Instant::now();
        let (status, health) = get(&client, &format!("{}/healthz", host.url)).await;
        assert_eq!(status, 200, "{health}");
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "healthz took {:?}",
            t.elapsed()
        );
        let (status, v) = post(&client, &format!("{}/v1/search", host.url), &search_body(q)).await;
        assert_eq!(status, 200, "{v}");
        assert_results(
            "beside slow clients",
            &results(&v["results"]),
            &q.results,
            false,
        );
    }
    // A body over the limit is refused without being read whole.
    let big = format!("{{\"query\": [{}]}}", vec!["0.5"; 40_000].join(","));
    let resp = client
        .post(format!("{}/v1/search", host.url))
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    drop(held);
    let grown = rss_kib().saturating_sub(rss_before);
    assert!(grown < 64 * 1024, "RSS grew {grown} KiB");
    let (status, _) = get(&client, &format!("{}/healthz", host.url)).await;
    assert_eq!(status, 200);
}

/// A bounded load run: a fixed number of requests from concurrent clients,
/// every answer checked against the reader's own. Prints throughput and
/// latency percentiles (recorded in BENCHMARKS.md from a release build).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bounded_load_run_has_no_errors() {
    const CLIENTS: usize = 16;
    const PER_CLIENT: usize = 100;
    let case = Case::load("sqlitevec_lsh_l2");
    let host = TestHost::start(case.dir.to_str().unwrap(), HostOptions::new()).await;
    let queries: Arc<Vec<(Value, Vec<SearchResult>)>> = Arc::new({
        let reader = host.host.reader();
        let mut out = Vec::new();
        for q in &case.recorded.queries {
            let want = reader
                .search(&q.query, q.top_k, &q.search_options())
                .await
                .unwrap()
                .results;
            out.push((search_body(q), want));
        }
        out
    });
    let client = reqwest::Client::new();
    let started = Instant::now();
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (client, queries, url) = (client.clone(), queries.clone(), host.url.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(PER_CLIENT);
                for i in 0..PER_CLIENT {
                    let (body, want) = &queries[(c * PER_CLIENT + i) % queries.len()];
                    let t = Instant::now();
                    let (status, v) = post(&client, &format!("{url}/v1/search"), body).await;
                    latencies.push(t.elapsed());
                    assert_eq!(status, 200, "client {c} request {i}: {v}");
                    assert_same_results("load", &results(&v["results"]), want);
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in futures::future::join_all(tasks).await {
        all.extend(t.expect("client task"));
    }
    let wall = started.elapsed();
    all.sort();
    assert_eq!(all.len(), CLIENTS * PER_CLIENT);
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    println!(
        "load run: {} requests, {CLIENTS} clients, {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms",
        all.len(),
        all.len() as f64 / wall.as_secs_f64(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3
    );
    let (_, metrics) = get(&client, &format!("{}/metrics", host.url)).await;
    let want = format!(
        "shardvec_searches_total {}",
        CLIENTS * PER_CLIENT + queries.len()
    );
    assert!(metrics.as_str().unwrap().contains(&want), "{want}");
}
