//! Claims of RELIABILITY.md that no test checked (issue 15, last section),
//! each checked against real processes, sockets and servers on 127.0.0.1:
//!
//! - a body over the host's limit is answered 413 without being read
//!   whole (a huge `Content-Length` with little sent, an endless chunked
//!   body);
//! - `/demo/` stays open while a token guards `/v1/*`;
//! - SIGTERM to a `shardvec serve` process finishes the request in flight
//!   and exits 0;
//! - the writer removes every object of a run whose *upload* failed;
//! - a store that accepts connections and never answers fails opens and
//!   searches within the configured timeouts, and a reader already serving
//!   keeps answering from its open shards.
//!
//! (The `/proc` readings that fail instead of passing are unit tests of
//! `shardvec_e2e::host`; the CEL deadline is in `core/tests`.)

use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::memory::InMemory;
use object_store::{ObjectStore, ObjectStoreExt};
use serde_json::json;
use shardvec::writer::{self, Input, StrategyConfig, WriterOptions};
use shardvec::{
    AsyncShardedVectorReader, ErrorKind, ReaderOptions, SearchOptions, SnapshotLocation,
};
use shardvec_core::{Metric, SearchResult, ShardId};
use shardvec_e2e::fault_proxy::FaultProxy;
use shardvec_e2e::fault_store::{FaultStore, PutFault};
use shardvec_e2e::host::ServeProcess;
use shardvec_e2e::s3::{S3Server, KEY_ID, REGION, SECRET};
use shardvec_e2e::{assert_same_results, Case};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What a raw connection received until `limit`: the bytes, and whether
/// the server closed it (EOF or reset) by then.
async fn read_until_closed(s: &mut TcpStream, limit: Duration) -> (String, bool) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), false),
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// "A body over the limit gets 413 without being read whole": a request
/// announcing a gigabyte and sending 11 bytes of it, and a chunked body
/// that never ends, both against a `shardvec serve` process with a 64 KiB
/// body limit and a 20 s request timeout. Each is answered 413
/// `body_too_large` within a few seconds (the announced one at once, from
/// its `Content-Length`; the chunked one once 64 KiB arrived) and the
/// connection is closed, so the rest is never read. A search within the
/// limit still answers.
///
/// Before the fix the announced body was read until the limit was
/// exceeded, which never happens when the client stops sending: the
/// connection was held until the request timeout (504), 20 s here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_is_refused_without_being_read_whole() {
    let case = Case::load("sqlitevec_lsh_l2");
    let root = tempfile::tempdir().unwrap();
    let serve = ServeProcess::start(
        case.dir.to_str().unwrap(),
        root.path(),
        &["--max-body-bytes", "65536", "--timeout-ms", "20000"],
    );
    // A gigabyte announced, 11 bytes sent, then silence.
    let mut s = TcpStream::connect(&serve.addr).await.unwrap();
    let started = Instant::now();
    s.write_all(
        b"POST /v1/search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 1000000000\r\n\r\n{\"query\": [",
    )
    .await
    .unwrap();
    let (answer, closed) = read_until_closed(&mut s, Duration::from_secs(8)).await;
    let took = started.elapsed();
    assert!(
        answer.starts_with("HTTP/1.1 413"),
        "after {took:?}: {answer:?}"
    );
    assert!(answer.contains("body_too_large"), "{answer}");
    assert!(closed, "the connection was kept open after the 413");
    assert!(took < Duration::from_secs(3), "answered after {took:?}");

    // A chunked body that never ends: 4 KiB every 10 ms.
    let mut s = TcpStream::connect(&serve.addr).await.unwrap();
    s.write_all(
        b"POST /v1/search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Transfer-Encoding: chunked\r\n\r\n",
    )
    .await
    .unwrap();
    let (mut rd, mut wr) = s.into_split();
    let started = Instant::now();
    let sender = tokio::spawn(async move {
        let mut chunk = format!("{:x}\r\n", 4096).into_bytes();
        chunk.extend(std::iter::repeat_n(b' ', 4096));
        chunk.extend_from_slice(b"\r\n");
        let mut sent = 0usize;
        while started.elapsed() < Duration::from_secs(15) {
            if wr.write_all(&chunk).await.is_err() {
                return (sent, started.elapsed(), true);
            }
            sent += 4096;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        (sent, started.elapsed(), false)
    });
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(10), rd.read(&mut buf)).await {
            Err(_) => break false,
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    };
    let answered = started.elapsed();
    let answer = String::from_utf8_lossy(&got).into_owned();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer:?}");
    assert!(answer.contains("body_too_large"), "{answer}");
    assert!(closed, "the connection was kept open after the 413");
    assert!(
        answered < Duration::from_secs(5),
        "closed after {answered:?}"
    );
    // The sender finds the connection closed (it would go on for 15 s).
    let (sent, stopped, refused) = sender.await.unwrap();
    assert!(refused, "the endless body was accepted for {stopped:?}");
    assert!(
        stopped < Duration::from_secs(8),
        "{stopped:?}, {sent} bytes"
    );

    // Within the limit: answered.
    let q = &case.recorded.queries[0];
    let (status, v) = shardvec_e2e::host::post(
        &reqwest::Client::new(),
        &format!("http://{}/v1/search", serve.addr),
        &json!({"query": q.query, "top_k": 3, "shard_ids": [0]}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
}

/// "`/healthz` and `/demo/` stay open" while `--token-file` guards the
/// API: a `shardvec serve --token-file F --demo-dir web-demo` process
/// serves the demo's files byte for byte without a token, and `/v1/*`
/// answers 401 (`WWW-Authenticate: Bearer`) without it, 200 with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_is_open_while_a_token_guards_the_api() {
    let case = Case::load("sqlitevec_lsh_l2");
    let root = tempfile::tempdir().unwrap();
    let token_file = root.path().join("token");
    std::fs::write(&token_file, "s3cret-demo-token\n").unwrap();
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../web-demo");
    let serve = ServeProcess::start(
        case.dir.to_str().unwrap(),
        &root.path().join("cache"),
        &[
            "--token-file",
            token_file.to_str().unwrap(),
            "--demo-dir",
            demo.to_str().unwrap(),
        ],
    );
    let client = reqwest::Client::new();
    let base = format!("http://{}", serve.addr);
    for (path, file) in [
        ("/demo/", "index.html"),
        ("/demo/index.html", "index.html"),
        ("/demo/app.js", "app.js"),
        ("/demo/style.css", "style.css"),
    ] {
        let resp = client.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path} without a token");
        let body = resp.bytes().await.unwrap();
        assert_eq!(
            body.as_ref(),
            std::fs::read(demo.join(file)).unwrap(),
            "{path} is not {file}"
        );
    }
    let resp = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let search = json!({"query": case.recorded.queries[0].query, "top_k": 3});
    for (method, path) in [("GET", "/v1/snapshot"), ("POST", "/v1/search")] {
        let req = |token: Option<&str>| {
            let url = format!("{base}{path}");
            let mut r = if method == "GET" {
                client.get(url)
            } else {
                client.post(url).json(&search)
            };
            if let Some(t) = token {
                r = r.bearer_auth(t);
            }
            r.send()
        };
        let resp = req(None).await.unwrap();
        assert_eq!(resp.status(), 401, "{path} without a token");
        assert_eq!(resp.headers()["www-authenticate"], "Bearer");
        let resp = req(Some("s3cret-demo")).await.unwrap();
        assert_eq!(resp.status(), 401, "{path} with a prefix of the token");
        let resp = req(Some("s3cret-demo-token")).await.unwrap();
        assert_eq!(resp.status(), 200, "{path} with the token");
    }
}

/// The environment a `shardvec` process needs to reach moto.
const AWS_ENV: [(&str, &str); 3] = [
    ("AWS_ACCESS_KEY_ID", KEY_ID),
    ("AWS_SECRET_ACCESS_KEY", SECRET),
    ("AWS_REGION", REGION),
];

/// SIGTERM to a real `shardvec serve` process while a search is in
/// flight: the snapshot on moto behind a proxy giving each connection
/// 100 kB/s, so the search's first open of shard 0 (209 kB) takes about
/// two seconds. SIGTERM is sent once the shard's download has started;
/// the search still answers 200 with the same hits as a reader of the
/// fixture's files, after the signal, and the process exits 0 (having
/// printed `shut down`) well within its 15 s deadline; nothing listens
/// after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_to_serve_finishes_the_request_in_flight() {
    let case = Case::load("sqlitevec_cluster_cosine");
    let server = S3Server::start();
    server.create_bucket("fixtures");
    server.upload_dir(&case.dir, "fixtures", &case.name).await;
    let proxy = FaultProxy::start(&server.endpoint);
    let root = tempfile::tempdir().unwrap();
    let prefix = format!("s3://fixtures/{}", case.name);
    let mut serve = ServeProcess::start_with_env(
        &prefix,
        root.path(),
        &[
            "--endpoint",
            &proxy.endpoint,
            "--shutdown-deadline-ms",
            "15000",
            "--timeout-ms",
            "20000",
        ],
        &AWS_ENV,
    );
    // From now on 100 kB/s per connection; the open's pooled connections
    // are closed so none bypasses the limit.
    proxy.limit_bandwidth(100_000);
    proxy.fail_next(0);
    let q = &case.recorded.queries[0];
    let body = json!({"query": q.query, "top_k": 10, "shard_ids": [0]});
    let url = format!("http://{}/v1/search", serve.addr);
    let forwarded = proxy.forwarded();
    let started = Instant::now();
    let in_flight = tokio::spawn(async move {
        let r = shardvec_e2e::host::post(&reqwest::Client::new(), &url, &body).await;
        (r, Instant::now())
    });
    // The search is in flight once the host reaches the store for it.
    while proxy.forwarded() == forwarded {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the search never reached the store"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    serve.sigterm();
    let signalled = Instant::now();
    let ((status, v), answered) = in_flight.await.unwrap();
    assert_eq!(status, 200, "{v}");
    assert!(
        answered > signalled + Duration::from_millis(200),
        "the search was not in flight at SIGTERM: answered {:?} after it",
        answered.saturating_duration_since(signalled)
    );
    let got: Vec<SearchResult> = serde_json::from_value(v["results"].clone()).unwrap();
    let want = AsyncShardedVectorReader::open(
        case.dir.to_str().unwrap(),
        tempfile::tempdir().unwrap().keep(),
        ReaderOptions::new(),
    )
    .await
    .unwrap()
    .search(
        &q.query,
        10,
        &SearchOptions::new().shard_ids(vec![ShardId(0)]),
    )
    .await
    .unwrap();
    assert_same_results("in flight at SIGTERM", &got, &want.results);
    let status = serve
        .exits_within(Duration::from_secs(10))
        .expect("still running 10 s after SIGTERM");
    assert!(status.success(), "exit status {status}");
    // The `shut down` line comes after `serve` returned.
    let deadline = Instant::now() + Duration::from_secs(2);
    while !serve.stdout_lines().iter().any(|l| l == "shut down") {
        assert!(Instant::now() < deadline, "{:?}", serve.stdout_lines());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(TcpStream::connect(&serve.addr).await.is_err());
}

use shardvec_e2e::records;

/// Every object under the store, with its bytes, sorted by key.
async fn objects(store: &Arc<InMemory>) -> Vec<(String, bytes::Bytes)> {
    use futures::TryStreamExt;
    let metas: Vec<_> = store.list(None).try_collect().await.unwrap();
    let mut out = Vec::new();
    for m in metas {
        let bytes = store.get(&m.location).await.unwrap().bytes().await.unwrap();
        out.push((m.location.to_string(), bytes));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// "A failed build removes what it uploaded", when the *upload* fails (the
/// phase between writing the shards locally and publishing): a first
/// build publishes run A; a second build's upload is refused for one
/// shard's `shard.db` (mid-upload: other shards go up beside it, four at
/// a time) and, in another run, for the LSH `hyperplanes.npy` (after every
/// shard is up). Each build fails naming the object, and the store holds
/// exactly run A's objects, byte for byte (`_CURRENT` included): nothing
/// of the failed run is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_upload_leaves_no_object_of_its_run() {
    for refused in ["db=00002/attempt=00/shard.db", "hyperplanes.npy"] {
        let memory = Arc::new(InMemory::new());
        let at =
            |s: Arc<dyn ObjectStore>| SnapshotLocation::from_store(s, "".into(), "memory:///snap");
        let opts = WriterOptions::new(6, Metric::L2, StrategyConfig::Lsh { num_hash_bits: 3 })
            .num_probes(2)
            .seed(9);
        writer::build_at(at(memory.clone()), &Input::memory(records(300, 0.0)), &opts)
            .await
            .unwrap();
        let before = objects(&memory).await;
        let faulty = Arc::new(FaultStore::new(memory.clone(), refused, PutFault::Refuse));
        let e = writer::build_at(
            at(faulty.clone()),
            &Input::memory(records(400, 1.0)),
            &opts.clone().run_id("failed-upload"),
        )
        .await
        .expect_err("the upload was refused");
        assert!(faulty.faults() >= 1, "{refused}: no fault injected");
        assert!(e.to_string().contains(refused), "{refused}: {e}");
        let after = objects(&memory).await;
        let left: Vec<&String> = after
            .iter()
            .map(|(k, _)| k)
            .filter(|k| k.contains("failed-upload"))
            .collect();
        assert!(left.is_empty(), "{refused}: left behind {left:?}");
        assert_eq!(
            after, before,
            "{refused}: the store is not as run A left it"
        );
        let reader = AsyncShardedVectorReader::open_at(
            at(memory.clone()),
            tempfile::tempdir().unwrap().keep(),
            ReaderOptions::new(),
        )
        .await
        .unwrap();
        assert_eq!(reader.snapshot_info().unwrap().total_vectors, 300);
    }
}

/// A store that accepts connections and never answers (a proxy in front
/// of moto told to hang), with a 1 s request timeout and one retry:
///
/// - opening a reader on it fails within 10 s (run under a timeout, so a
///   hang fails the test) with a typed store error (`store`, `upstream`)
///   whose chain says the request timed out;
/// - a reader opened while the store answered, with shard 1 open, keeps
///   answering shard 1 exactly as before once the store hangs; its
///   refresh fails within the bound and leaves the snapshot served; a
///   search needing an uncached shard fails within the bound, typed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_store_times_out_and_open_shards_keep_answering() {
    let case = Case::load("sqlitevec_cluster_cosine");
    let server = S3Server::start();
    server.create_bucket("fixtures");
    server.upload_dir(&case.dir, "fixtures", &case.name).await;
    let prefix = format!("s3://fixtures/{}", case.name);
    let store_via = |proxy: &FaultProxy| {
        server
            .options()
            .endpoint(proxy.endpoint.clone())
            .option("timeout", "1s")
            .retry(1, Duration::from_secs(2))
            .retry_backoff(Duration::from_millis(50), Duration::from_millis(100))
    };
    let bound = Duration::from_secs(10);
    let timed_out = |e: &shardvec::Error| {
        let mut chain = e.to_string();
        let mut next = std::error::Error::source(e);
        while let Some(s) = next {
            chain.push_str(&format!(": {s}"));
            next = s.source();
        }
        chain
    };

    // Hanging from the first connection: the open fails in time.
    let hung = FaultProxy::start(&server.endpoint);
    hung.hang();
    let opts = ReaderOptions::new().store_options(store_via(&hung));
    let started = Instant::now();
    let opened = tokio::time::timeout(
        bound,
        AsyncShardedVectorReader::open(&prefix, tempfile::tempdir().unwrap().keep(), opts),
    )
    .await
    .unwrap_or_else(|_| panic!("open still waiting on a hanging store after {bound:?}"));
    let e = opened.expect_err("a hanging store cannot be opened");
    let took = started.elapsed();
    assert!(hung.held() >= 1, "the hanging store saw no connection");
    assert_eq!(
        (e.code(), e.kind()),
        ("store", ErrorKind::Upstream),
        "{e:?}"
    );
    let chain = timed_out(&e);
    assert!(
        chain.to_lowercase().contains("timed out") || chain.to_lowercase().contains("timeout"),
        "{chain}"
    );
    assert!(took >= Duration::from_secs(1), "{took:?}: {chain}");

    // A reader serving shard 1, then the store hangs.
    let proxy = FaultProxy::start(&server.endpoint);
    let opts = ReaderOptions::new().store_options(store_via(&proxy));
    let reader = AsyncShardedVectorReader::open(&prefix, tempfile::tempdir().unwrap().keep(), opts)
        .await
        .expect("open while the store answers");
    let shard = |id: u32| SearchOptions::new().shard_ids(vec![ShardId(id)]);
    let queries: Vec<&Vec<f32>> = case.recorded.queries.iter().map(|q| &q.query).collect();
    let mut before = Vec::new();
    for q in &queries {
        before.push(reader.search(q, 10, &shard(1)).await.unwrap().results);
    }
    let manifest = reader.manifest_ref().unwrap();
    proxy.hang();
    let started = Instant::now();
    let refreshed = tokio::time::timeout(bound, reader.refresh())
        .await
        .unwrap_or_else(|_| panic!("refresh still waiting after {bound:?}"));
    let e = refreshed.expect_err("refresh from a hanging store");
    assert_eq!(e.kind(), ErrorKind::Upstream, "{e:?}");
    assert!(started.elapsed() >= Duration::from_secs(1));
    for (q, want) in queries.iter().zip(&before) {
        let got = tokio::time::timeout(bound, reader.search(q, 10, &shard(1)))
            .await
            .expect("a search of an open shard waited on the store")
            .expect("an open shard answers while the store hangs");
        assert_same_results("open shard, store hanging", &got.results, want);
        assert_eq!(got.manifest_ref, manifest);
    }
    let started = Instant::now();
    let e = tokio::time::timeout(bound, reader.search(queries[0], 10, &shard(4)))
        .await
        .unwrap_or_else(|_| panic!("an uncached shard waited past {bound:?}"))
        .expect_err("an uncached shard from a hanging store");
    assert!(
        matches!(e.kind(), ErrorKind::Upstream | ErrorKind::Timeout),
        "{e:?}"
    );
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert!(proxy.held() >= 1, "the hanging store saw no connection");
}
