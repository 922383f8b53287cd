//! Reliability, round two (issue 15): failures found by reading the code,
//! each confirmed with a test that failed before its fix.
//!
//! - A shard slower to open than the host's request timeout: the open runs
//!   to completion detached from the request, once, and is then served.
//! - A failed `_CURRENT` PUT: the writer reads `_CURRENT` back before
//!   removing anything; a PUT that was applied (its answer lost) is a
//!   publish, one that was not removes the run *and* its orphan manifest,
//!   and an unreadable `_CURRENT` keeps everything.

use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::memory::InMemory;
use object_store::throttle::{ThrottleConfig, ThrottledStore};
use object_store::{ObjectStore, ObjectStoreExt};
use serde_json::json;
use shardvec::writer::{self, Input, StrategyConfig, WriterOptions};
use shardvec::{AsyncShardedVectorReader, ReaderOptions, SearchOptions, SnapshotLocation};
use shardvec_cli::bench::CountingStore;
use shardvec_core::{Metric, ShardId};
use shardvec_e2e::fault_store::{FaultStore, PutFault};
use shardvec_e2e::host::{post, ServeProcess, TestHost};
use shardvec_e2e::Case;
use shardvec_host::{HostMetrics, HostOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_slower_to_open_than_the_timeout_opens_once_and_is_served() {
    let case = Case::load("sqlitevec_cluster_cosine");
    let memory = Arc::new(InMemory::new());
    for key in &case.recorded.objects {
        let rel = key.strip_prefix(&format!("{}/", case.name)).unwrap();
        let bytes = std::fs::read(case.dir.join(rel)).unwrap();
        memory.put(&rel.into(), bytes.into()).await.unwrap();
    }
    let throttled = Arc::new(ThrottledStore::new(memory, ThrottleConfig::default()));
    let counting = Arc::new(CountingStore::new(throttled.clone()));
    let location = SnapshotLocation::from_store(
        counting.clone(),
        object_store::path::Path::from(""),
        case.dir.to_str().unwrap(),
    );
    let metrics = Arc::new(HostMetrics::default());
    let root = tempfile::tempdir().unwrap();
    let reader = AsyncShardedVectorReader::open_at(location, root.path(), ReaderOptions::new())
        .await
        .unwrap();
    // Every read of the store now takes 800 ms; a request may take 300.
    throttled.config_mut(|c| c.wait_get_per_call = Duration::from_millis(800));
    let opts = HostOptions::new().request_timeout(Duration::from_millis(300));
    let host = TestHost::serve(reader, opts, metrics, root).await;
    let client = reqwest::Client::new();
    let q = &case.recorded.queries[0];
    let body = json!({"query": q.query, "top_k": q.top_k, "shard_ids": [3]});
    let reads_before = counting.requests();
    let started = Instant::now();
    let mut statuses = Vec::new();
    let answer = loop {
        let (status, v) = post(&client, &format!("{}/v1/search", host.url), &body).await;
        statuses.push(status);
        if status == 200 {
            break v;
        }
        assert_eq!(status, 504, "{v}");
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "never served: {statuses:?}"
        );
    };
    assert!(statuses[0] == 504 && statuses.len() >= 2, "{statuses:?}");
    // One open: listing the shard folder, a HEAD and a GET of shard.db, however
    // many requests timed out meanwhile (each used to start its own).
    let reads = counting.requests() - reads_before;
    assert!(
        reads <= 3,
        "{reads} store reads for one shard open ({statuses:?})"
    );
    let hits = answer["results"].as_array().unwrap();
    assert!(!hits.is_empty());
    assert!(hits.iter().all(|h| h["shard_id"] == 3));
}

use shardvec_e2e::records;

fn options() -> WriterOptions {
    WriterOptions::new(4, Metric::L2, StrategyConfig::Lsh { num_hash_bits: 3 })
        .num_probes(2)
        .seed(9)
}

/// Every key under the store, sorted.
async fn keys(store: &Arc<InMemory>) -> Vec<String> {
    use futures::TryStreamExt;
    let mut k: Vec<String> = store
        .list(None)
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap();
    k.sort();
    k
}

/// A snapshot published once (run A), then a second build (run B) whose
/// `_CURRENT` PUT fails as `fault` says.
async fn second_publish_with(
    fault: PutFault,
    unreadable_current: bool,
) -> (
    Arc<InMemory>,
    Vec<String>,
    shardvec::Result<writer::BuildSummary>,
) {
    let memory = Arc::new(InMemory::new());
    let plain = SnapshotLocation::from_store(memory.clone(), "".into(), "memory:///snap");
    writer::build_at(plain, &Input::memory(records(120, 0.0)), &options())
        .await
        .unwrap();
    let before = keys(&memory).await;
    let mut store = FaultStore::new(memory.clone(), "_CURRENT", fault);
    if unreadable_current {
        store = store.failing_gets();
    }
    let faulty = SnapshotLocation::from_store(Arc::new(store), "".into(), "memory:///snap");
    let second = writer::build_at(faulty, &Input::memory(records(150, 1.0)), &options()).await;
    (memory, before, second)
}

async fn open(memory: &Arc<InMemory>) -> AsyncShardedVectorReader {
    let loc = SnapshotLocation::from_store(memory.clone(), "".into(), "memory:///snap");
    let root = tempfile::tempdir().unwrap().keep();
    AsyncShardedVectorReader::open_at(loc, root, ReaderOptions::new())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_current_put_applied_but_reported_failed_is_a_publish() {
    let (memory, _, second) = second_publish_with(PutFault::ApplyThenFail, false).await;
    let summary = second.expect("the PUT was applied: published");
    // `_CURRENT` names run B, and every shard of run B is still there.
    let reader = open(&memory).await;
    assert_eq!(reader.snapshot_info().unwrap().run_id, summary.run_id);
    assert_eq!(reader.snapshot_info().unwrap().total_vectors, 150);
    let all: Vec<ShardId> = (0..4).map(ShardId).collect();
    let r = reader
        .search(&[0.1; 8], 150, &SearchOptions::new().shard_ids(all))
        .await
        .expect("run B's shards are intact");
    assert_eq!(r.results.len(), 150);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_current_put_removes_the_run_and_its_orphan_manifest() {
    let (memory, before, second) = second_publish_with(PutFault::Refuse, false).await;
    let e = second.unwrap_err();
    assert!(e.to_string().contains("_CURRENT"), "{e}");
    // Exactly run A's objects remain: no shard, artefact or manifest of B.
    assert_eq!(keys(&memory).await, before);
    let reader = open(&memory).await;
    assert_eq!(reader.snapshot_info().unwrap().total_vectors, 120);
    let loc = SnapshotLocation::from_store(memory.clone(), "".into(), "memory:///snap");
    assert_eq!(shardvec::history::history(&loc).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_publish_outcome_removes_nothing() {
    let (memory, before, second) = second_publish_with(PutFault::ApplyThenFail, true).await;
    assert!(second.is_err());
    // `_CURRENT` was written (it names run B) but could not be read back:
    // every object of run B must still be there.
    let after = keys(&memory).await;
    assert!(after.len() > before.len(), "run B's objects were removed");
    assert!(before.iter().all(|k| after.contains(k)));
    let reader = open(&memory).await;
    assert_eq!(reader.snapshot_info().unwrap().total_vectors, 150);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_and_health_name_no_paths_or_urls() {
    let case = Case::load("sqlitevec_lsh_l2");
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("snap");
    shardvec_e2e::copy_dir(&case.dir, &prefix);
    let secret_path = prefix.to_str().unwrap().to_string();
    let host = TestHost::start(&secret_path, HostOptions::new()).await;
    let client = reqwest::Client::new();
    // Damage every shard file: a search answers 502, without paths.
    for entry in shardvec_e2e::files_under(&prefix) {
        if entry.ends_with("shard.db") {
            std::fs::write(&entry, b"not a database").unwrap();
        }
    }
    let q = &case.recorded.queries[0];
    let body = json!({"query": q.query, "top_k": 3, "shard_ids": [0]});
    let (status, v) = post(&client, &format!("{}/v1/search", host.url), &body).await;
    assert!(status >= 500, "{status} {v}");
    let text = v.to_string();
    assert!(
        !text.contains(&secret_path) && !text.contains("fixtures"),
        "{text}"
    );
    assert!(text.contains("details are in its log"), "{text}");
    // A failed refresh: /healthz (no token needed) says only the code.
    std::fs::write(prefix.join("_CURRENT"), b"{ corrupt").unwrap();
    let (status, _) = post(&client, &format!("{}/v1/refresh", host.url), &json!({})).await;
    assert!(status >= 500);
    let (_, health) = shardvec_e2e::host::get(&client, &format!("{}/healthz", host.url)).await;
    let err = health["last_refresh"]["error"].as_str().unwrap();
    assert!(
        !err.is_empty() && err.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
        "{health}"
    );
    assert!(!health.to_string().contains(&secret_path), "{health}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_cannot_ask_for_unbounded_work() {
    use shardvec_core::api::{MAX_RESULTS, MAX_SHARD_IDS};
    let case = Case::load("sqlitevec_lsh_l2");
    let host = TestHost::start(case.dir.to_str().unwrap(), HostOptions::new()).await;
    let client = reqwest::Client::new();
    let q = &case.recorded.queries[0].query;
    // Far more ids than allowed (all valid, repeated): refused at once.
    let many: Vec<u32> = (0..MAX_SHARD_IDS as u32 + 1).map(|i| i % 6).collect();
    for endpoint in ["search", "shards/search"] {
        let started = Instant::now();
        let (status, v) = post(
            &client,
            &format!("{}/v1/{endpoint}", host.url),
            &json!({"query": q, "top_k": 5, "shard_ids": many}),
        )
        .await;
        assert_eq!(status, 400, "{v}");
        assert!(v.to_string().contains("at most 4096"), "{v}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    // The allowed number of repeats dedupes to the six shards, in order.
    let ok: Vec<u32> = (0..MAX_SHARD_IDS as u32).map(|i| 5 - i % 6).collect();
    let (status, v) = post(
        &client,
        &format!("{}/v1/shards/search", host.url),
        &json!({"query": q, "top_k": 2, "shard_ids": ok}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let order: Vec<u64> = v["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["shard_id"].as_u64().unwrap())
        .collect();
    assert_eq!(order, [5, 4, 3, 2, 1, 0]);
    // Shards × top_k past the results cap: 32 shards × top_k 4096.
    let memory = Arc::new(InMemory::new());
    let loc = SnapshotLocation::from_store(memory.clone(), "".into(), "memory:///wide");
    let wide = WriterOptions::new(32, Metric::L2, StrategyConfig::Lsh { num_hash_bits: 5 }).seed(2);
    writer::build_at(loc.clone(), &Input::memory(records(100, 0.5)), &wide)
        .await
        .unwrap();
    let root = tempfile::tempdir().unwrap();
    let reader = AsyncShardedVectorReader::open_at(loc, root.path(), ReaderOptions::new())
        .await
        .unwrap();
    let all: Vec<ShardId> = (0..32).map(ShardId).collect();
    let q = [0.2f32; 8];
    const { assert!(32 * 4096 > MAX_RESULTS && 24 * 4096 <= MAX_RESULTS) };
    let e = reader
        .search_shards(&q, 4096, &all, None, None)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("more than 100000 results"), "{e}");
    let r = reader
        .search_shards(&q, 4096, &all[..24], None, None)
        .await
        .unwrap();
    assert_eq!(r.shards.len(), 24);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_run_id_is_refused_before_anything_is_written() {
    let memory = Arc::new(InMemory::new());
    let loc = SnapshotLocation::from_store(memory.clone(), "".into(), "memory:///snap");
    let opts = options().run_id("nightly");
    writer::build_at(loc.clone(), &Input::memory(records(80, 0.0)), &opts)
        .await
        .unwrap();
    let before = keys(&memory).await;
    let e = writer::build_at(loc, &Input::memory(records(90, 2.0)), &opts)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), shardvec::ErrorKind::Conflict);
    assert!(
        e.to_string().contains("run `nightly` already has objects"),
        "{e}"
    );
    assert_eq!(keys(&memory).await, before, "the live run was touched");
    assert_eq!(
        open(&memory).await.snapshot_info().unwrap().total_vectors,
        80
    );
}

/// Whether the server closed `s` (EOF or reset) within `limit`.
async fn closed_within(s: &mut tokio::net::TcpStream, limit: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // An answer (408, 504): keep reading until the close.
            Ok(Ok(_)) => continue,
        }
    }
}

/// Issue 15, item 3: half-sent request lines are closed after the
/// header-read timeout; a trickling body ends at the request timeout;
/// SIGTERM while connections are held exits within the shutdown deadline;
/// past the connection cap a new connection is closed at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_and_cannot_hold_shutdown() {
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;
    let case = Case::load("sqlitevec_lsh_l2");
    let root = tempfile::tempdir().unwrap();
    let mut serve = ServeProcess::start(
        case.dir.to_str().unwrap(),
        root.path(),
        &[
            "--header-timeout-ms",
            "600",
            "--timeout-ms",
            "1500",
            "--shutdown-deadline-ms",
            "2000",
            "--max-connections",
            "8",
        ],
    );
    // Half request lines: closed after the header timeout.
    let mut half = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(&serve.addr).await.unwrap();
        s.write_all(b"GET /heal").await.unwrap();
        half.push(s);
    }
    let started = Instant::now();
    for s in &mut half {
        assert!(
            closed_within(s, Duration::from_secs(5)).await,
            "a half request line was kept open"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    // A body trickling one byte every 100 ms: cut at the request timeout.
    let mut slow = TcpStream::connect(&serve.addr).await.unwrap();
    slow.write_all(b"POST /v1/search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
        .await
        .unwrap();
    let trickle = tokio::spawn(async move {
        let started = Instant::now();
        let mut answer = Vec::new();
        loop {
            if slow.write_all(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            let mut buf = [0u8; 512];
            if let Ok(Ok(n)) = tokio::time::timeout(
                Duration::from_millis(1),
                tokio::io::AsyncReadExt::read(&mut slow, &mut buf),
            )
            .await
            {
                if n == 0 {
                    break;
                }
                answer.extend_from_slice(&buf[..n]);
            }
            if started.elapsed() > Duration::from_secs(10) {
                break;
            }
        }
        (
            started.elapsed(),
            String::from_utf8_lossy(&answer).to_string(),
        )
    });
    let (took, answer) = trickle.await.unwrap();
    assert!(
        took < Duration::from_secs(5),
        "trickling body held for {took:?}"
    );
    assert!(answer.is_empty() || answer.contains("504"), "{answer}");
    // The cap: 8 held connections, the ninth is closed at once.
    let mut held = Vec::new();
    for _ in 0..8 {
        let mut s = TcpStream::connect(&serve.addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHo").await.unwrap();
        held.push(s);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut ninth = TcpStream::connect(&serve.addr).await.unwrap();
    let _ = ninth
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    assert!(
        closed_within(&mut ninth, Duration::from_millis(400)).await,
        "a ninth connection was served"
    );
    drop(held);
    // SIGTERM while half request lines and a trickling body are held: the
    // process exits within the deadline.
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(&serve.addr).await.unwrap();
        s.write_all(b"POST /v1/sea").await.unwrap();
        held.push(s);
    }
    let mut body = TcpStream::connect(&serve.addr).await.unwrap();
    body.write_all(b"POST /v1/search HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{")
        .await
        .unwrap();
    let dribble = tokio::spawn(async move {
        for _ in 0..100 {
            if body.write_all(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    serve.sigterm();
    let status = serve.exits_within(Duration::from_secs(5));
    assert!(status.is_some(), "still running 5 s after SIGTERM");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    drop(held);
    dribble.abort();
}

/// Issue 15, item 3: past `max_in_flight` a request is shed at once with
/// 503 `overloaded` and `Retry-After`, and `/healthz` still answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_in_flight_limit_requests_are_shed() {
    let case = Case::load("sqlitevec_cluster_cosine");
    let memory = Arc::new(InMemory::new());
    for key in &case.recorded.objects {
        let rel = key.strip_prefix(&format!("{}/", case.name)).unwrap();
        memory
            .put(
                &rel.into(),
                std::fs::read(case.dir.join(rel)).unwrap().into(),
            )
            .await
            .unwrap();
    }
    let throttled = Arc::new(ThrottledStore::new(memory, ThrottleConfig::default()));
    let location =
        SnapshotLocation::from_store(throttled.clone(), "".into(), case.dir.to_str().unwrap());
    let root = tempfile::tempdir().unwrap();
    let reader = AsyncShardedVectorReader::open_at(location, root.path(), ReaderOptions::new())
        .await
        .unwrap();
    throttled.config_mut(|c| c.wait_get_per_call = Duration::from_millis(700));
    let host = TestHost::serve(
        reader,
        HostOptions::new().max_in_flight(1),
        Arc::new(HostMetrics::default()),
        root,
    )
    .await;
    let client = reqwest::Client::new();
    let q = &case.recorded.queries[0];
    let url = format!("{}/v1/search", host.url);
    let body = json!({"query": q.query, "top_k": 3, "shard_ids": [1]});
    let slow = tokio::spawn({
        let (client, url, body) = (client.clone(), url.clone(), body.clone());
        async move { post(&client, &url, &body).await }
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let started = Instant::now();
    let resp = client.post(&url).json(&body).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    assert_eq!(resp.headers().get("retry-after").unwrap(), "1");
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "overloaded");
    assert!(started.elapsed() < Duration::from_millis(500));
    let (status, _) = shardvec_e2e::host::get(&client, &format!("{}/healthz", host.url)).await;
    assert_eq!(status, 200);
    let (status, v) = slow.await.unwrap();
    assert_eq!(status, 200, "{v}");
}

/// Issue 15, item 6: a new cache root is private; a world-writable root
/// owned by another user is refused (a planted shard could be served).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_root_is_private_and_a_planted_one_is_refused() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let case = Case::load("sqlitevec_lsh_l2");
    let prefix = case.dir.to_str().unwrap();
    let q = &case.recorded.queries[0];
    let opts = SearchOptions::new().shard_ids(vec![ShardId(0)]);
    let tmp = tempfile::tempdir().unwrap();
    let fresh = tmp.path().join("fresh");
    let r = AsyncShardedVectorReader::open(prefix, &fresh, ReaderOptions::new())
        .await
        .unwrap();
    r.search(&q.query, 3, &opts).await.unwrap();
    assert_eq!(std::fs::metadata(&fresh).unwrap().mode() & 0o777, 0o700);
    // Another user's world-writable folder (needs root to make one).
    let planted = tmp.path().join("planted");
    std::fs::create_dir(&planted).unwrap();
    std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o777)).unwrap();
    let chowned = std::process::Command::new("chown")
        .args(["65534", planted.to_str().unwrap()])
        .status()
        .is_ok_and(|s| s.success());
    if !chowned {
        eprintln!("not root: the planted-folder half of this test needs chown");
        return;
    }
    assert_ne!(std::fs::metadata(&planted).unwrap().uid(), 0);
    let r = AsyncShardedVectorReader::open(prefix, &planted, ReaderOptions::new())
        .await
        .unwrap();
    let e = r.search(&q.query, 3, &opts).await.unwrap_err();
    assert!(
        e.to_string()
            .contains("world-writable and owned by another user"),
        "{e}"
    );
    // Our own world-writable folder is fine.
    let own = tmp.path().join("own");
    std::fs::create_dir(&own).unwrap();
    std::fs::set_permissions(&own, std::fs::Permissions::from_mode(0o777)).unwrap();
    let r = AsyncShardedVectorReader::open(prefix, &own, ReaderOptions::new())
        .await
        .unwrap();
    r.search(&q.query, 3, &opts).await.unwrap();
}

/// Issue 15, item 11: two writers race on `_CURRENT`. Writer A reads the
/// pointer, then its PUT is held while writer B publishes a newer run;
/// released, A's conditional PUT finds `_CURRENT` changed, reads it again,
/// sees a newer publish and refuses (`newer_published`), removing its run.
/// With `force`, A publishes over B. Over the memory store and over a real
/// S3 server (moto: `If-Match`). Before: a plain PUT, and the older run won.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_publish_never_replaces_a_newer_one() {
    use shardvec_e2e::fault_store::Gate;
    let s3 = shardvec_e2e::s3::S3Server::start();
    for (store_name, force) in [("memory", false), ("memory", true), ("s3", false)] {
        let store: Arc<dyn ObjectStore> = if store_name == "s3" {
            s3.create_bucket("race");
            s3.store("race")
        } else {
            Arc::new(InMemory::new())
        };
        let at =
            |s: Arc<dyn ObjectStore>| SnapshotLocation::from_store(s, "".into(), "memory:///snap");
        writer::build_at(
            at(store.clone()),
            &Input::memory(records(120, 0.0)),
            &options(),
        )
        .await
        .unwrap();
        let gate = Arc::new(Gate::default());
        let held = Arc::new(FaultStore::gated(store.clone(), "_CURRENT", gate.clone()));
        let late_opts = options().run_id("late").force(force);
        let late_input = Input::memory(records(130, 2.0));
        let newer_input = Input::memory(records(150, 1.0));
        let newer_opts = options().run_id("newer");
        let (late, newer) =
            tokio::join!(writer::build_at(at(held), &late_input, &late_opts), async {
                gate.arrived().await;
                let newer = writer::build_at(at(store.clone()), &newer_input, &newer_opts).await;
                gate.release();
                newer.unwrap()
            });
        let loc = at(store.clone());
        let reader = AsyncShardedVectorReader::open_at(
            loc.clone(),
            tempfile::tempdir().unwrap().keep(),
            ReaderOptions::new(),
        )
        .await
        .unwrap();
        let info = reader.snapshot_info().unwrap();
        if force {
            let late = late.expect("forced");
            assert_eq!(info.run_id, late.run_id, "{store_name}");
            assert_eq!(info.total_vectors, 130);
            continue;
        }
        let err = late.expect_err("a late publish over a newer one");
        assert!(
            matches!(&err, shardvec::Error::NewerPublished { .. }),
            "{store_name}: {err:?}"
        );
        assert_eq!(err.code(), "newer_published");
        assert_eq!(info.run_id, newer.run_id, "{store_name}");
        assert_eq!(info.total_vectors, 150);
        // The refused run left nothing behind (its manifest neither).
        let left: Vec<String> = loc
            .list("")
            .await
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .filter(|k| k.contains("run_id=late"))
            .collect();
        assert!(left.is_empty(), "{store_name}: {left:?}");
    }
}

/// Issue 15, item 10: a shard larger than `request timeout × bandwidth`.
/// Behind a proxy giving each connection 50 kB/s, with a 1 s request
/// timeout and one retry, shard 0 (209 kB) cannot come down in one GET:
/// object_store resumes an interrupted body from where it stopped, but
/// every resumption spends the one retry budget of the request, which
/// counts from its first attempt (here 2 × 1 s × 50 kB/s < 209 kB; with
/// the defaults, any object needing more than 10 resumptions or 3
/// minutes). In ranged parts of 32 KiB, four at a time, each part has its
/// own budget and fits in the timeout: the shard opens and answers as the
/// fixture records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_larger_than_timeout_times_bandwidth_downloads_in_parts() {
    use shardvec::DownloadOptions;
    use shardvec_e2e::fault_proxy::FaultProxy;
    use shardvec_e2e::s3::S3Server;
    let case = Case::load("sqlitevec_cluster_cosine");
    let server = S3Server::start();
    server.create_bucket("fixtures");
    server.upload_dir(&case.dir, "fixtures", &case.name).await;
    let shard0 = case
        .recorded
        .objects
        .iter()
        .find(|k| k.contains("db=00000") && k.ends_with("shard.db"))
        .unwrap();
    let rel = shard0.strip_prefix(&format!("{}/", case.name)).unwrap();
    let size = std::fs::metadata(case.dir.join(rel)).unwrap().len();
    assert!(size > 2 * 50_000, "shard 0 has {size} bytes");
    let proxy = FaultProxy::start(&server.endpoint);
    proxy.limit_bandwidth(50_000);
    let store = server
        .options()
        .endpoint(proxy.endpoint.clone())
        .option("timeout", "1s")
        .retry(1, Duration::from_secs(3));
    let prefix = format!("s3://fixtures/{}", case.name);
    let q = &case.recorded.queries[0];
    let shard0_only = SearchOptions::new().shard_ids(vec![ShardId(0)]);
    let open = |download: DownloadOptions| {
        let opts = ReaderOptions::new()
            .store_options(store.clone())
            .download(download);
        let prefix = prefix.clone();
        async move {
            let root = tempfile::tempdir().unwrap().keep();
            AsyncShardedVectorReader::open(&prefix, root, opts)
                .await
                .unwrap()
        }
    };

    let whole = open(DownloadOptions::new().part_bytes(u64::MAX).part_attempts(1)).await;
    let err = whole
        .search(&q.query, 10, &shard0_only)
        .await
        .expect_err("one GET of the whole shard cannot finish in time");
    assert_eq!(err.code(), "backend", "{err:?}");

    let parts = open(
        DownloadOptions::new()
            .part_bytes(64 << 10)
            .parallel_parts(4),
    )
    .await;
    let got = parts
        .search(&q.query, 10, &shard0_only)
        .await
        .expect("in parts");
    let local = AsyncShardedVectorReader::open(
        case.dir.to_str().unwrap(),
        tempfile::tempdir().unwrap().keep(),
        ReaderOptions::new(),
    )
    .await
    .unwrap()
    .search(&q.query, 10, &shard0_only)
    .await
    .unwrap();
    shardvec_e2e::assert_same_results("in parts", &got.results, &local.results);
}
