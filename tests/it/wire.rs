//! The wire protocol is written once, in `shardvec_core::api`: every answer
//! a real host sends, and the CLI's `search --json`, parse into those types
//! and serialise back to exactly the same JSON (no field dropped or added),
//! and the TypeScript declarations of the wasm package name the same
//! fields as the types they describe.

use std::collections::BTreeSet;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};
use shardvec_core::api::{
    ErrorBody, HealthResponse, RefreshResponse, SearchResponse, ShardsSearchResponse,
    SnapshotResponse,
};
use shardvec_core::{SearchResult, ShardDetail, SnapshotInfo, VectorId};
use shardvec_e2e::host::{get, post, TestHost};
use shardvec_e2e::{shardvec_bin, Case};
use shardvec_host::HostOptions;

/// `v` parses as `T` and serialises back to `v` itself.
fn round_trips<T: Serialize + DeserializeOwned>(what: &str, v: &Value) -> T {
    let parsed: T =
        serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{what}: {e}\n{v}"));
    // Through text, as on the wire (f32 scores print their shortest form).
    let back: Value = serde_json::from_str(&serde_json::to_string(&parsed).unwrap()).unwrap();
    assert_eq!(&back, v, "{what}: the wire type loses or adds fields");
    parsed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_host_answer_is_a_core_api_type() {
    let client = reqwest::Client::new();
    for name in ["sqlitevec_cluster_cosine", "lancedb_lsh_cosine"] {
        let case = Case::load(name);
        let host = TestHost::start(case.dir.to_str().unwrap(), HostOptions::new()).await;
        let q = &case.recorded.queries[0];
        let u = |p: &str| format!("{}{p}", host.url);

        let (status, v) = get(&client, &u("/v1/snapshot")).await;
        assert_eq!(status, 200, "{v}");
        let snap: SnapshotResponse = round_trips("/v1/snapshot", &v);
        assert_eq!(snap.info.run_id, case.recorded.snapshot_info.run_id);
        assert_eq!(snap.shards, case.recorded.shards);

        let (status, v) = post(
            &client,
            &u("/v1/search"),
            &json!({"query": q.query, "top_k": q.top_k, "num_probes": snap.info.num_dbs}),
        )
        .await;
        assert_eq!(status, 200, "{v}");
        let s: SearchResponse = round_trips("/v1/search", &v);
        assert_eq!(s.manifest_ref, snap.manifest_ref);

        let all: Vec<u32> = (0..snap.info.num_dbs).collect();
        let (status, v) = post(
            &client,
            &u("/v1/shards/search"),
            &json!({"query": q.query, "top_k": 3, "shard_ids": all, "manifest_ref": snap.manifest_ref}),
        )
        .await;
        assert_eq!(status, 200, "{v}");
        let per: ShardsSearchResponse = round_trips("/v1/shards/search", &v);
        assert_eq!(per.shards.len(), all.len());

        let (status, v) = post(&client, &u("/v1/refresh"), &json!({})).await;
        assert_eq!(status, 200, "{v}");
        let r: RefreshResponse = round_trips("/v1/refresh", &v);
        assert!(!r.changed);

        let (status, v) = get(&client, &u("/healthz")).await;
        assert_eq!(status, 200, "{v}");
        round_trips::<HealthResponse>("/healthz", &v);

        let (status, v) = post(&client, &u("/v1/search"), &json!({"query": [1.0]})).await;
        assert_eq!(status, 400, "{v}");
        let e: ErrorBody = round_trips("an error", &v);
        assert_eq!(e.error.code, "invalid_query");
    }
}

#[test]
fn cli_search_json_is_the_hosts_search_response() {
    let case = Case::load("sqlitevec_cluster_cosine");
    let q = &case.recorded.queries[0];
    let root = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(shardvec_bin())
        .args(["search", "--prefix", case.dir.to_str().unwrap(), "--json"])
        .arg("--local-root")
        .arg(root.path())
        .arg("--query")
        .arg(serde_json::to_string(&q.query).unwrap())
        .arg(format!("--top-k={}", q.top_k))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let s: SearchResponse = round_trips("search --json", &v);
    assert!(s.manifest_ref.contains("/manifests/"), "{}", s.manifest_ref);
}

/// The fields of `export interface NAME { ... }` in the wasm package's
/// TypeScript declarations (the `typescript_custom_section`s of
/// `wasm/src`), without `?`.
fn ts_fields(name: &str) -> BTreeSet<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../wasm/src");
    let mut text = String::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            text += &std::fs::read_to_string(&path).unwrap();
        }
    }
    let head = format!("export interface {name} ");
    let start = text
        .find(&head)
        .unwrap_or_else(|| panic!("no `{head}` in wasm/src"));
    let body = &text[start..];
    let open = body.find('{').unwrap();
    let mut depth = 0;
    let mut fields = BTreeSet::new();
    let mut token = String::new();
    for c in body[open..].chars() {
        match c {
            '{' | '[' | '(' | '<' => depth += 1,
            '}' | ']' | ')' | '>' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            ':' if depth == 1 => {
                let t = token.trim().trim_end_matches('?').to_string();
                if !t.starts_with('[') && !t.is_empty() {
                    fields.insert(t);
                }
                token.clear();
                continue;
            }
            ';' | '\n' if depth == 1 => {
                token.clear();
                continue;
            }
            _ => {}
        }
        if depth == 1 && c != '{' {
            token.push(c);
        }
    }
    // `[extra: string]: unknown` index signatures are not fields.
    fields.retain(|f| !f.contains(['[', ']', ' ']));
    fields
}

/// The keys `v` serialises to.
fn keys(v: &impl Serialize) -> BTreeSet<String> {
    match serde_json::to_value(v).unwrap() {
        Value::Object(m) => m.keys().cloned().collect(),
        other => panic!("not an object: {other}"),
    }
}

#[test]
fn typescript_declarations_name_the_core_types_fields() {
    let info = SnapshotInfo {
        run_id: "r".into(),
        num_dbs: 2,
        dim: 3,
        metric: shardvec_core::Metric::Cosine,
        sharding: shardvec_core::Strategy::Cluster,
        manifest_ref: "m".into(),
        total_vectors: 4,
    };
    assert_eq!(ts_fields("SnapshotInfo"), keys(&info));
    let shard = ShardDetail {
        db_id: shardvec_core::ShardId(0),
        db_url: None,
        vector_count: 0,
        checkpoint_id: None,
    };
    assert_eq!(ts_fields("ShardDetail"), keys(&shard));
    let hit = SearchResult {
        id: VectorId::Int(1),
        score: 0.5,
        payload: Some(json!({"k": 1})),
        shard_id: Some(shardvec_core::ShardId(3)),
    };
    assert_eq!(ts_fields("SearchHit"), keys(&hit));
    // The edge client answers what a host's /v1/search answers, plus what
    // only an edge knows (per-host reports, partial answers, retries).
    let wire = SearchResponse {
        results: vec![],
        num_shards_queried: 0,
        latency_ms: 0.0,
        route: vec![],
        manifest_ref: "m".into(),
        probing: Some(shardvec_core::Probing {
            min_results: 1,
            found: 0,
            shards_probed: 1,
            stop: shardvec_core::ProbeStop::AllShards,
        }),
    };
    let edge = ts_fields("EdgeSearchResult");
    let missing: Vec<_> = keys(&wire).difference(&edge).cloned().collect();
    assert!(missing.is_empty(), "EdgeSearchResult lacks {missing:?}");
}
