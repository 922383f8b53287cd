//! The readers against a real S3-compatible server (moto) on 127.0.0.1:
//! each peer fixture (sqlite-vec and LanceDB) is uploaded to a bucket and read as `s3://` — once
//! at its recorded prefix, once copied to another bucket and prefix (the
//! recorded `s3://fixtures/...` URLs are resolved against the opened prefix).

use shardvec::{AsyncShardedVectorReader, Error, ReaderOptions};
use shardvec_e2e::s3::S3Server;
use shardvec_e2e::Case;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_recorded_answer_over_s3() {
    let server = S3Server::start();
    server.create_bucket("fixtures");
    server.create_bucket("elsewhere");
    let mut compared = 0;
    for case in Case::all() {
        let n = server.upload_dir(&case.dir, "fixtures", &case.name).await;
        assert_eq!(n, case.recorded.objects.len(), "{}", case.name);
        let copy = format!("copies/{}", case.name);
        server.upload_dir(&case.dir, "elsewhere", &copy).await;
        for prefix in [
            format!("s3://fixtures/{}", case.name),
            format!("s3://elsewhere/{copy}"),
        ] {
            let root = tempfile::tempdir().unwrap();
            let opts = ReaderOptions::new().store_options(server.options());
            let reader = AsyncShardedVectorReader::open(&prefix, root.path(), opts)
                .await
                .unwrap_or_else(|e| panic!("{prefix}: {e}"));
            assert_eq!(reader.snapshot_info().unwrap(), case.recorded.snapshot_info);
            for (i, q) in case.recorded.queries.iter().enumerate() {
                let what = format!("{prefix} query {i}");
                let resp = reader
                    .search(&q.query, q.top_k, &q.search_options())
                    .await
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
                q.check(&what, &case.name, &resp);
                compared += 1;
            }
        }
    }
    assert!(compared >= 660, "compared {compared}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_snapshot_and_stopped_server_are_clear_errors() {
    let server = S3Server::start();
    server.create_bucket("fixtures");
    let root = tempfile::tempdir().unwrap();
    let opts = ReaderOptions::new().store_options(server.options());
    match AsyncShardedVectorReader::open("s3://fixtures/nothing-here", root.path(), opts.clone())
        .await
    {
        Err(Error::NoCurrent(url)) => assert_eq!(url, "s3://fixtures/nothing-here"),
        other => panic!("expected NoCurrent, got {other:?}"),
    }
    let endpoint = server.endpoint.clone();
    drop(server);
    let opts = ReaderOptions::new().store_options(
        shardvec::StoreOptions::new()
            .endpoint(endpoint)
            .credentials("testing", "testing")
            .region("us-east-1")
            .allow_http(true)
            .retry(1, std::time::Duration::from_secs(2))
            .option("connect_timeout", "2s"),
    );
    match AsyncShardedVectorReader::open("s3://fixtures/case", root.path(), opts).await {
        Err(Error::Store { location, .. }) => {
            assert!(location.ends_with("/_CURRENT"), "{location}")
        }
        other => panic!("expected a store error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lancedb_remote_mode_searches_s3_in_place() {
    use shardvec::backend::lancedb::{LanceDbBackend, LanceDistance, LanceMode};
    let server = S3Server::start();
    server.create_bucket("elsewhere");
    let (mut compared, mut cases) = (0, 0);
    for case in Case::all()
        .into_iter()
        .filter(|c| c.name.starts_with("lancedb_"))
    {
        cases += 1;
        let copy = format!("copies/{}", case.name);
        server.upload_dir(&case.dir, "elsewhere", &copy).await;
        let prefix = format!("s3://elsewhere/{copy}");
        let root = tempfile::tempdir().unwrap();
        let opts = ReaderOptions::new()
            .store_options(server.options())
            .shard_backend(LanceDbBackend::new(
                LanceMode::Remote,
                LanceDistance::Reference,
            ));
        let reader = AsyncShardedVectorReader::open(&prefix, root.path(), opts)
            .await
            .unwrap_or_else(|e| panic!("{prefix}: {e}"));
        for (i, q) in case.recorded.queries.iter().enumerate() {
            let what = format!("{prefix} query {i} (remote)");
            let resp = reader
                .search(&q.query, q.top_k, &q.search_options())
                .await
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            q.check(&what, &case.name, &resp);
            compared += 1;
        }
        // Searched in place: nothing was copied into the local cache.
        assert_eq!(
            std::fs::read_dir(root.path()).unwrap().count(),
            0,
            "{prefix}"
        );
    }
    // Every query of the three LanceDB cases.
    assert!(
        cases == 3 && compared >= 3 * 40,
        "{cases} cases, {compared} queries"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_publishes_to_s3() {
    use shardvec::backend::BackendKind;
    use shardvec::writer::{self, Input, StrategyConfig, WriterOptions};
    use shardvec::SearchOptions;
    use shardvec_core::Metric;
    let server = S3Server::start();
    server.create_bucket("snaps");
    let data = shardvec_cli::synthetic::blobs(800, 8, 4, 0.2, 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("v.npy");
    std::fs::write(&input, data.vectors.to_npy()).unwrap();
    for backend in [BackendKind::SqliteVec, BackendKind::Lancedb] {
        let prefix = format!("s3://snaps/{}", backend.as_str());
        let opts = WriterOptions::new(4, Metric::L2, StrategyConfig::Cluster { centroids: None })
            .backend(backend)
            .store_options(server.options());
        let summary = writer::build(&prefix, &Input::path(&input).unwrap(), &opts)
            .await
            .unwrap_or_else(|e| panic!("{prefix}: {e}"));
        assert!(
            summary.manifest_url.starts_with(&prefix),
            "{}",
            summary.manifest_url
        );
        let root = tempfile::tempdir().unwrap();
        let reader = AsyncShardedVectorReader::open(
            &prefix,
            root.path(),
            ReaderOptions::new().store_options(server.options()),
        )
        .await
        .unwrap();
        assert_eq!(reader.snapshot_info().unwrap().total_vectors, 800);
        // Every 50th stored vector is its own nearest neighbour.
        for i in (0..800).step_by(50) {
            let q = data.vectors.row(i).unwrap();
            let r = reader.search(q, 1, &SearchOptions::new()).await.unwrap();
            assert_eq!(r.results[0].id.to_string(), i.to_string(), "{prefix}");
            assert!(r.results[0].score < 1e-6, "{prefix}");
        }
    }
}
