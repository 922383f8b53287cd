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
