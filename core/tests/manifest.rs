//! Manifest parsing and validation on images written by the real SQLite
//! engine with the reference schema.

mod common;

use common::{ManifestSpec, ShardRow};
use serde_json::json;
use shardvec_core::{Error, Manifest, Metric, ShardId, Strategy};

fn cluster_vector() -> serde_json::Value {
    json!({"dim": 4, "metric": "l2", "sharding_strategy": "cluster", "num_probes": 2,
           "centroids_ref": "s3://b/p/vector_meta/run_id=r/centroids.npy",
           "index_type": "hnsw", "quantization": null, "total_vectors": 10})
}

#[test]
fn thousands_of_shards_and_large_custom_fields() {
    for page_size in [512u32, 4096] {
        let mut spec = ManifestSpec::vector(cluster_vector(), 5000);
        let big = "x".repeat(100_000);
        spec.custom =
            json!({"vector": cluster_vector(), "owner": "team-a", "notes": big}).to_string();
        spec.page_size = page_size;
        // Leave a few shards empty and insert out of order.
        spec.shards.retain(|s| s.db_id % 97 != 3);
        spec.shards.reverse();
        let bytes = spec.write();
        let m = Manifest::parse(&bytes).unwrap();
        assert_eq!(m.num_dbs(), 5000);
        assert_eq!(m.shards.len(), spec.shards.len());
        for s in &spec.shards {
            let got = m.shard(ShardId(s.db_id as u32)).unwrap();
            assert_eq!(got.db_url, s.db_url);
            assert_eq!(got.row_count, s.row_count as u64);
            assert_eq!(got.db_bytes, s.db_bytes as u64);
            assert_eq!(got.checkpoint_id, s.checkpoint_id);
            assert_eq!(got.writer_info, json!({"attempt": 0}));
            assert_eq!(got.min_key, None);
        }
        let empty = m.shard_detail(ShardId(3));
        assert_eq!((empty.vector_count, empty.db_url), (0, None));
        assert_eq!(m.shard_details().len(), 5000);
        assert_eq!(m.user_fields["owner"], "team-a");
        assert_eq!(m.user_fields["notes"].as_str().unwrap().len(), 100_000);
        assert!(!m.user_fields.contains_key("vector"));
        assert_eq!(m.vector.metric, Metric::L2);
        assert_eq!(m.vector.strategy, Strategy::Cluster);
        assert_eq!(m.vector.num_probes, 2);
        assert_eq!(m.vector.total_vectors, Some(10));
        assert_eq!(m.build.run_id, "run-1");
        assert_eq!(m.build.s3_prefix, "s3://b/p");
        let expected_total: u64 = spec.shards.iter().map(|s| s.row_count as u64).sum();
        assert_eq!(m.total_vectors(), expected_total);
    }
}

fn parse_err(spec: &ManifestSpec) -> Error {
    Manifest::parse(&spec.write()).expect_err("manifest must be rejected")
}

fn field_of(e: &Error) -> &str {
    match e {
        Error::InvalidManifest { field, .. } => field,
        other => panic!("expected InvalidManifest, got {other:?}"),
    }
}

#[test]
fn validation_rejects_what_format_md_rejects() {
    let mut s = ManifestSpec::vector(cluster_vector(), 3);
    s.format_version = 3;
    assert_eq!(field_of(&parse_err(&s)), "build_meta.format_version");

    let mut s = ManifestSpec::vector(cluster_vector(), 3);
    s.num_dbs = 0;
    s.shards.clear();
    assert_eq!(field_of(&parse_err(&s)), "build_meta.num_dbs");

    let mut s = ManifestSpec::vector(cluster_vector(), 3);
    s.num_dbs = i64::from(shardvec_core::manifest::MAX_NUM_DBS) + 1;
    assert_eq!(field_of(&parse_err(&s)), "build_meta.num_dbs");

    let mut s = ManifestSpec::vector(cluster_vector(), 3);
    s.shards.push(ShardRow {
        db_id: 3,
        ..s.shards[0].clone()
    });
    assert_eq!(field_of(&parse_err(&s)), "shards");

    let mut s = ManifestSpec::vector(cluster_vector(), 3);
    s.shards[2].db_id = 7;
    assert_eq!(field_of(&parse_err(&s)), "shards.db_id");

    let mut s = ManifestSpec::vector(cluster_vector(), 3);
    s.shards[1].row_count = -1;
    assert_eq!(field_of(&parse_err(&s)), "shards.row_count");

    let mut s = ManifestSpec::vector(cluster_vector(), 3);
    s.extra_build_rows = 1;
    assert_eq!(field_of(&parse_err(&s)), "build_meta");

    let mut s = ManifestSpec::vector(cluster_vector(), 3);
    s.custom = "{}".into();
    assert_eq!(parse_err(&s), Error::NotVectorSnapshot);
    s.custom = r#"{"vector": 3}"#.into();
    assert_eq!(parse_err(&s), Error::NotVectorSnapshot);
    s.custom = "not json".into();
    assert_eq!(field_of(&parse_err(&s)), "build_meta.custom");

    for (key, bad) in [
        ("metric", json!("hamming")),
        ("sharding_strategy", json!("random")),
        ("dim", json!(0)),
        ("num_probes", json!(0)),
        ("centroids_ref", json!(null)),
    ] {
        let mut v = cluster_vector();
        v[key] = bad;
        let s = ManifestSpec::vector(v, 3);
        assert_eq!(field_of(&parse_err(&s)), format!("custom.vector.{key}"));
    }
    let mut v = cluster_vector();
    v["sharding_strategy"] = json!("lsh");
    v["hyperplanes_ref"] = json!("s3://b/p/h.npy");
    v["num_hash_bits"] = json!(65);
    assert_eq!(
        field_of(&parse_err(&ManifestSpec::vector(v, 3))),
        "custom.vector.num_hash_bits"
    );
}

#[test]
fn not_sqlite_and_missing_tables() {
    assert!(matches!(
        Manifest::parse(b"{\"json\": true}"),
        Err(Error::NotSqlite(_))
    ));
    assert!(matches!(Manifest::parse(&[]), Err(Error::NotSqlite(_))));
    let tmp = common::TempDb::new();
    let c = tmp.connect(4096);
    c.execute_batch(common::SHARDS_SQL).unwrap();
    drop(c);
    assert_eq!(
        Manifest::parse(&tmp.bytes()),
        Err(Error::MissingTable("build_meta".into()))
    );
    let tmp = common::TempDb::new();
    let c = tmp.connect(4096);
    c.execute_batch("CREATE TABLE build_meta (run_id TEXT); INSERT INTO build_meta VALUES ('r');")
        .unwrap();
    drop(c);
    assert!(matches!(
        Manifest::parse(&tmp.bytes()),
        Err(Error::MissingColumn { .. })
    ));
}

#[test]
fn cel_spec_and_routing_values_are_decoded() {
    let v = json!({"dim": 2, "metric": "cosine", "sharding_strategy": "cel", "num_probes": 1,
                   "cel_expr": "key", "cel_columns": {"key": "bytes", "n": "uint"},
                   "routing_values": ["eu", 7, {"__bytes_hex__": "00ff"}], "future_key": [1, 2]});
    let m = Manifest::parse(&ManifestSpec::vector(v, 3).write()).unwrap();
    let cel = m.vector.cel.as_ref().unwrap();
    assert_eq!(cel.expr, "key");
    use shardvec_core::{CelColumnType, RoutingValue};
    assert_eq!(cel.columns["key"], CelColumnType::Bytes);
    assert_eq!(cel.columns["n"], CelColumnType::UInt);
    assert_eq!(
        cel.routing_values.as_deref().unwrap(),
        [
            RoutingValue::Str("eu".into()),
            RoutingValue::Int(7),
            RoutingValue::Bytes(vec![0, 255])
        ]
    );
    assert_eq!(m.vector.extra["future_key"], json!([1, 2]));
}
