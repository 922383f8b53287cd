//! The `shardvec` binary against every peer fixture: `search
//! --json` reproduces every recorded answer, `route`, `info` and `shards`
//! print the recorded values, and errors are one line on stderr with a
//! non-zero exit.

use std::process::{Command, Output};

use shardvec_core::{SearchResult, ShardDetail, ShardId, SnapshotInfo};
use shardvec_e2e::{assert_results, halved_scores_allowed, Case};

fn shardvec(args: &[&str]) -> Output {
    Command::new(shardvec_e2e::shardvec_bin())
        .args(args)
        .output()
        .expect("run shardvec")
}

fn json(out: Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON document")
}

#[test]
fn search_route_info_and_shards_match_the_reference() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path().to_str().unwrap();
    let mut compared = 0;
    for case in Case::all() {
        let prefix = case.dir.to_str().unwrap().to_string();
        let common = ["--prefix", &prefix, "--local-root", root, "--json"];
        let info: SnapshotInfo =
            serde_json::from_value(json(shardvec(&[&["info"][..], &common].concat()))).unwrap();
        assert_eq!(info, case.recorded.snapshot_info);
        let shards: Vec<ShardDetail> =
            serde_json::from_value(json(shardvec(&[&["shards"][..], &common].concat()))).unwrap();
        assert_eq!(shards, case.recorded.shards);

        for (i, q) in case.recorded.queries.iter().enumerate() {
            let what = format!("{} query {i}", case.name);
            let query = serde_json::to_string(&q.query).unwrap();
            let top_k = format!("--top-k={}", q.top_k);
            let extra = q.args.cli_args();
            let mut args: Vec<&str> = vec!["search"];
            args.extend(common);
            args.extend(["--query", &query, &top_k]);
            args.extend(extra.iter().map(String::as_str));
            let doc = json(shardvec(&args));
            let results: Vec<SearchResult> =
                serde_json::from_value(doc["results"].clone()).unwrap();
            assert_results(
                &what,
                &results,
                &q.results,
                halved_scores_allowed(&case.name),
            );
            assert_eq!(doc["num_shards_queried"], q.num_shards_queried, "{what}");
            assert!(doc["latency_ms"].as_f64().is_some());
            if let Some(route) = &q.route {
                let mut args: Vec<&str> = vec!["route"];
                args.extend(common);
                args.extend(["--query", &query]);
                args.extend(extra.iter().map(String::as_str));
                let doc = json(shardvec(&args));
                let got: Vec<ShardId> = serde_json::from_value(doc["shards"].clone()).unwrap();
                assert_eq!(&got, route, "{what}");
            }
            compared += 1;
        }
    }
    assert!(compared >= 330, "compared {compared} queries");
}

#[test]
fn errors_are_one_line_on_stderr() {
    let case = Case::load("sqlitevec_cluster_cosine");
    let prefix = case.dir.to_str().unwrap().to_string();
    let root = tempfile::tempdir().unwrap();
    let root = root.path().to_str().unwrap();
    for (args, needle) in [
        (
            vec![
                "search",
                "--prefix",
                &prefix,
                "--local-root",
                root,
                "--query",
                "[1, 2]",
            ],
            "dimension",
        ),
        (
            vec![
                "info",
                "--prefix",
                "/nonexistent/snapshot",
                "--local-root",
                root,
            ],
            "_CURRENT",
        ),
        (
            vec!["search", "--prefix", &prefix, "--local-root", root],
            "--query",
        ),
    ] {
        let out = shardvec(&args);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains(needle), "{err}");
        assert!(out.stdout.is_empty());
    }
}
