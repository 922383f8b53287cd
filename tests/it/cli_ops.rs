//! The operator commands of the `shardvec` binary: `build` from files,
//! `history`, `rollback`, `verify` and `demo`, each checked against truth
//! computed here (the input data, brute force, the files on disk).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

use shardvec_cli::synthetic;

fn shardvec(args: &[&str]) -> Output {
    Command::new(shardvec_e2e::shardvec_bin())
        .args(args)
        .output()
        .expect("run shardvec")
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json(out: Output) -> serde_json::Value {
    serde_json::from_str(&ok(out)).expect("one JSON document")
}

fn write_inputs(dir: &Path, n: usize, dim: usize) -> synthetic::Blobs {
    let blobs = synthetic::blobs(n, dim, 8, 0.2, 3).unwrap();
    std::fs::write(dir.join("v.npy"), blobs.vectors.to_npy()).unwrap();
    let mut ids = std::fs::File::create(dir.join("ids.txt")).unwrap();
    let mut payloads = std::fs::File::create(dir.join("p.jsonl")).unwrap();
    for i in 0..n {
        writeln!(ids, "item-{i}").unwrap();
        writeln!(payloads, "{}", serde_json::json!({"n": i})).unwrap();
    }
    blobs
}

#[test]
fn build_history_rollback_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let blobs = write_inputs(d, 1200, 12);
    let prefix = d.join("snap");
    let prefix = prefix.to_str().unwrap();
    let input = d.join("v.npy");
    let (ids, payloads) = (d.join("ids.txt"), d.join("p.jsonl"));
    let base = [
        "build",
        "--prefix",
        prefix,
        "--input",
        input.to_str().unwrap(),
        "--ids",
        ids.to_str().unwrap(),
        "--payloads",
        payloads.to_str().unwrap(),
        "--num-dbs",
        "4",
        "--metric",
        "l2",
        "--json",
    ];
    let first = json(shardvec(
        &[&base[..], &["--strategy", "cluster", "--num-probes", "2"]].concat(),
    ));
    assert_eq!(first["total_vectors"], 1200);
    let second = json(shardvec(
        &[&base[..], &["--strategy", "lsh", "--num-hash-bits", "5"]].concat(),
    ));
    assert_ne!(first["run_id"], second["run_id"]);

    // A search for a stored vector finds it with distance 0, id and payload
    // as given in the side files.
    let root = d.join("cache");
    let root = root.to_str().unwrap();
    let q = serde_json::to_string(blobs.vectors.row(17).unwrap()).unwrap();
    let hit = json(shardvec(&[
        "search",
        "--prefix",
        prefix,
        "--local-root",
        root,
        "--json",
        "--query",
        &q,
        "--top-k",
        "1",
        "--num-probes",
        "5",
    ]));
    assert_eq!(hit["results"][0]["id"], "item-17");
    assert_eq!(hit["results"][0]["payload"], serde_json::json!({"n": 17}));
    assert!(hit["results"][0]["score"].as_f64().unwrap() < 1e-6);

    // History: newest first, the LSH run current.
    let h = json(shardvec(&["history", "--prefix", prefix, "--json"]));
    let h = h.as_array().unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!(h[0]["run_id"], second["run_id"]);
    assert_eq!(
        (h[0]["current"].as_bool(), h[1]["current"].as_bool()),
        (Some(true), Some(false))
    );
    let info = json(shardvec(&[
        "info",
        "--prefix",
        prefix,
        "--local-root",
        root,
        "--json",
    ]));
    assert_eq!(info["sharding"], "lsh");

    // Rollback to the CLUSTER run by run id; then forward again by URL.
    let run1 = first["run_id"].as_str().unwrap();
    json(shardvec(&[
        "rollback", "--prefix", prefix, "--to", run1, "--json",
    ]));
    let info = json(shardvec(&[
        "info",
        "--prefix",
        prefix,
        "--local-root",
        root,
        "--json",
    ]));
    assert_eq!(
        (info["sharding"].as_str(), info["run_id"].as_str()),
        (Some("cluster"), Some(run1))
    );
    let url2 = second["manifest_url"].as_str().unwrap();
    json(shardvec(&[
        "rollback", "--prefix", prefix, "--to", url2, "--json",
    ]));
    let info = json(shardvec(&[
        "info",
        "--prefix",
        prefix,
        "--local-root",
        root,
        "--json",
    ]));
    assert_eq!(info["sharding"], "lsh");
    // An unknown target is refused and changes nothing.
    let current = std::fs::read(d.join("snap/_CURRENT")).unwrap();
    let out = shardvec(&["rollback", "--prefix", prefix, "--to", "no-such-run"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-run"));
    assert_eq!(std::fs::read(d.join("snap/_CURRENT")).unwrap(), current);

    // Verify: probing every shard is exact brute force, so recall is 1.
    let v = json(shardvec(&[
        "verify",
        "--prefix",
        prefix,
        "--local-root",
        root,
        "--json",
        "--queries",
        "40",
        "--num-probes",
        "1,4",
    ]));
    assert_eq!(v["vectors"], 1200);
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows[1]["num_probes"], 4);
    assert_eq!(rows[1]["recall_at_k"], 1.0);
    let r1 = rows[0]["recall_at_k"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&r1));
}

#[test]
fn build_errors_are_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("bad.jsonl"),
        "{\"vector\": [1, 2]}\n{\"vector\": [1]}\n",
    )
    .unwrap();
    let prefix = d.join("snap");
    let out = shardvec(&[
        "build",
        "--prefix",
        prefix.to_str().unwrap(),
        "--input",
        d.join("bad.jsonl").to_str().unwrap(),
        "--strategy",
        "lsh",
        "--num-dbs",
        "2",
        "--metric",
        "l2",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("record 1") && err.contains("dimension 1, expected 2"),
        "{err}"
    );
    assert!(!prefix.join("_CURRENT").exists());
}

#[test]
fn demo_builds_searches_and_reports_recall() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(shardvec(&[
        "demo",
        "--dir",
        dir.path().to_str().unwrap(),
        "--vectors",
        "3000",
        "--dim",
        "16",
        "--shards",
        "4",
    ]));
    for needle in [
        "1. dataset",
        "2. build",
        "published run",
        "probes shards",
        "recall@10",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    // The last recall row probes all 4 shards: exact.
    let last = out
        .lines()
        .filter(|l| l.trim_start().starts_with('4') && l.contains("1.0000"))
        .count();
    assert_eq!(last, 1, "{out}");
    assert!(dir.path().join("snapshot/_CURRENT").exists());
}

/// Issue 15, item 11, from the CLI: a build finding `_CURRENT` naming a
/// manifest published after its own (another writer's) fails with
/// `newer_published`, leaves `_CURRENT` alone and removes its run;
/// `--force` publishes over it.
#[test]
fn build_refuses_to_replace_a_newer_publish_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_inputs(d, 300, 8);
    let prefix = d.join("snap");
    let input = d.join("v.npy");
    let build = |extra: &[&str]| {
        let mut args = vec![
            "build",
            "--prefix",
            prefix.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--num-dbs",
            "2",
            "--metric",
            "l2",
            "--strategy",
            "lsh",
            "--num-hash-bits",
            "2",
            "--json",
        ];
        args.extend_from_slice(extra);
        shardvec(&args)
    };
    json(build(&[]));
    // Another writer's publish, dated in the future.
    let current: serde_json::Value =
        serde_json::from_slice(&std::fs::read(prefix.join("_CURRENT")).unwrap()).unwrap();
    let url = current["manifest_ref"].as_str().unwrap();
    let folder = url.rsplit('/').nth(1).unwrap();
    let (_, run) = folder.split_once("_run_id=").unwrap();
    let future = format!("2099-01-01T00:00:00.000000Z_run_id={run}");
    let manifests = prefix.join("manifests");
    std::fs::create_dir_all(manifests.join(&future)).unwrap();
    std::fs::copy(
        manifests.join(folder).join("manifest"),
        manifests.join(&future).join("manifest"),
    )
    .unwrap();
    let future_url = url.replace(folder, &future);
    let pointer = shardvec_core::ManifestRef::from_url(&future_url)
        .unwrap()
        .to_current()
        .to_json();
    std::fs::write(prefix.join("_CURRENT"), &pointer).unwrap();
    let before = files(&prefix);

    let refused = build(&[]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("published after"), "{err}");
    assert_eq!(
        std::fs::read_to_string(prefix.join("_CURRENT")).unwrap(),
        pointer
    );
    assert_eq!(files(&prefix), before, "the refused run left objects");

    let forced = json(build(&["--force"]));
    let now: serde_json::Value =
        serde_json::from_slice(&std::fs::read(prefix.join("_CURRENT")).unwrap()).unwrap();
    assert_eq!(now["run_id"], forced["run_id"]);
}

/// Every file under `dir`, relative, sorted (a local store leaves empty
/// folders behind when it deletes objects).
fn files(dir: &Path) -> Vec<String> {
    shardvec_e2e::files_under(dir)
        .iter()
        .map(|p| p.strip_prefix(dir).unwrap().display().to_string())
        .collect()
}
