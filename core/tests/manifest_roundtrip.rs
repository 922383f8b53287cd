//! Manifest encoding against parsing.
//!
//! - Property: every valid manifest (all four strategies, CEL columns and
//!   categorical values, unknown `custom.vector` keys, user fields, optional
//!   fields present and absent, any Unicode) encoded with the core's rows
//!   ([`Manifest::build_meta_row`], [`ShardMeta::row`]), written by the real
//!   SQLite engine the way the writer writes it, parses back equal.
//! - Reference: every peer fixture manifest (written by the Python
//!   reference) parses, and re-encoding it gives the very column values the
//!   reference wrote, byte for byte — the `custom` JSON text included.

mod common;

use std::path::{Path, PathBuf};

use common::TempDb;
use proptest::prelude::*;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OpenFlags};
use serde_json::{Map, Value as Json};
use shardvec_core::manifest::{
    py_json, BuildMeta, CelColumnType, CelSpec, Manifest, ShardMeta, VectorMeta,
    BUILD_META_COLUMNS, BUILD_META_DDL, BUILD_META_INSERT, FORMAT_VERSION, MAX_HASH_BITS,
    MAX_NUM_DBS, SHARDS_COLUMNS, SHARDS_DDL, SHARDS_INSERT,
};
use shardvec_core::sqlite::Value;
use shardvec_core::{Metric, RoutingValue, ShardId, Strategy as Sharding};

// ---- writing an image as the writer does ---------------------------------

fn to_sql(v: Value) -> SqlValue {
    match v {
        Value::Null => SqlValue::Null,
        Value::Integer(i) => SqlValue::Integer(i),
        Value::Real(f) => SqlValue::Real(f),
        Value::Text(s) => SqlValue::Text(s),
        Value::Blob(b) => SqlValue::Blob(b),
    }
}

/// The manifest image: the reference DDL, then one insert per row with the
/// core's encoded values (page size 4096, rollback journal).
fn write_image(m: &Manifest) -> Vec<u8> {
    let tmp = TempDb::new();
    let mut conn = tmp.connect(4096);
    let tx = conn.transaction().unwrap();
    tx.execute_batch(&format!("{BUILD_META_DDL};\n{SHARDS_DDL};"))
        .unwrap();
    tx.execute(
        BUILD_META_INSERT,
        rusqlite::params_from_iter(m.build_meta_row().into_iter().map(to_sql)),
    )
    .unwrap();
    for row in m.shard_rows() {
        tx.execute(
            SHARDS_INSERT,
            rusqlite::params_from_iter(row.into_iter().map(to_sql)),
        )
        .unwrap();
    }
    tx.commit().unwrap();
    drop(conn);
    tmp.bytes()
}

// ---- strategies -------------------------------------------------------------

/// Strings: plain identifiers, any `char` (controls, NUL, astral), and a
/// few hand-picked awkward ones.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z0-9_./:=-]{0,16}",
        2 => prop::collection::vec(any::<char>(), 0..10)
            .prop_map(|cs| cs.into_iter().collect::<String>()),
        1 => prop::sample::select(vec![
            "", "é", "中文", "🙂", "\"quoted\\\"", "line\nbreak", "\u{0}nul", "\u{7f}\u{2028}",
        ])
        .prop_map(String::from),
    ]
}

/// Finite floats that serde_json reads back exactly from their text.
///
/// The filter is serde_json's, not the format's: built without its
/// `float_roundtrip` feature, serde_json may parse a 17-digit float 1 ULP
/// off (e.g. `3.3698524793024512e-124`), whoever wrote the text.
fn finite_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("finite", |f| f.is_finite()),
        -1e6f64..1e6,
        prop::sample::select(vec![0.0, -0.0, 0.1, 1.0, 1e16, 1e-5, 5e-324, f64::MAX]),
    ]
    .prop_filter("serde_json parses its text exactly", |f| {
        serde_json::from_str::<f64>(&py_json(&Json::from(*f))).ok() == Some(*f)
    })
}

/// Any JSON value serde_json can hold.
fn json_value() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        any::<i64>().prop_map(Json::from),
        any::<u64>().prop_map(Json::from),
        finite_f64().prop_map(Json::from),
        text().prop_map(Json::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Json::Array),
            prop::collection::btree_map(text(), inner, 0..4)
                .prop_map(|m| Json::Object(m.into_iter().collect())),
        ]
    })
}

fn json_map(
    keys: impl Strategy<Value = String>,
    len: std::ops::Range<usize>,
) -> impl Strategy<Value = Map<String, Json>> {
    prop::collection::btree_map(keys, json_value(), len).prop_map(|m| m.into_iter().collect())
}

/// Routing values in their canonical form (what parsing yields): a JSON
/// integer is `Int` whenever it fits an `i64`, so `UInt` only above.
fn routing_value() -> impl Strategy<Value = RoutingValue> {
    prop_oneof![
        any::<i64>().prop_map(RoutingValue::Int),
        (i64::MAX as u64 + 1..=u64::MAX).prop_map(RoutingValue::UInt),
        finite_f64().prop_map(RoutingValue::Double),
        any::<bool>().prop_map(RoutingValue::Bool),
        text().prop_map(RoutingValue::Str),
        prop::collection::vec(any::<u8>(), 0..8).prop_map(RoutingValue::Bytes),
    ]
}

fn cel_type() -> impl Strategy<Value = CelColumnType> {
    prop::sample::select(vec![
        CelColumnType::Int,
        CelColumnType::UInt,
        CelColumnType::String,
        CelColumnType::Bytes,
        CelColumnType::Double,
        CelColumnType::Bool,
    ])
}

fn cel_spec(num_dbs: u32) -> impl Strategy<Value = CelSpec> {
    let max_values = (num_dbs as usize).min(6);
    (
        text(),
        prop::collection::btree_map(text(), cel_type(), 0..4),
        proptest::option::of(prop::collection::vec(routing_value(), 0..=max_values)),
    )
        .prop_map(|(expr, columns, routing_values)| CelSpec {
            expr,
            columns,
            routing_values,
        })
}

fn metric() -> impl Strategy<Value = Metric> {
    prop::sample::select(vec![Metric::Cosine, Metric::L2, Metric::DotProduct])
}

fn vector_meta(num_dbs: u32) -> impl Strategy<Value = VectorMeta> {
    let strategy = prop::sample::select(vec![
        Sharding::Cluster,
        Sharding::Lsh,
        Sharding::Explicit,
        Sharding::Cel,
    ]);
    let shape = (strategy, 1usize..=1 << 20, metric(), 1u32..=u32::MAX);
    // Optional keys, each present or absent whatever the strategy (the
    // strategy's own are forced present below).
    let refs = (
        proptest::option::of(text()),
        proptest::option::of(text()),
        proptest::option::of(1..=MAX_HASH_BITS),
        text(),
    );
    let info = (
        proptest::option::of(text()),
        proptest::option::of(text()),
        proptest::option::of(any::<u64>()),
    );
    let unknown = text().prop_filter("an unknown key", |k| {
        !VectorMeta::KNOWN_KEYS.contains(&k.as_str())
    });
    (
        shape,
        refs,
        info,
        json_map(unknown, 0..3),
        cel_spec(num_dbs),
    )
        .prop_map(
            move |(
                (strategy, dim, metric, num_probes),
                (centroids_ref, hyperplanes_ref, num_hash_bits, url),
                (index_type, quantization, total_vectors),
                extra,
                cel,
            )| {
                let mut v = VectorMeta {
                    dim,
                    metric,
                    strategy,
                    num_probes,
                    centroids_ref,
                    hyperplanes_ref,
                    num_hash_bits,
                    cel: None,
                    index_type,
                    quantization,
                    total_vectors,
                    extra,
                };
                match strategy {
                    Sharding::Cluster => {
                        v.centroids_ref.get_or_insert(url);
                    }
                    Sharding::Lsh => {
                        v.hyperplanes_ref.get_or_insert(url);
                    }
                    Sharding::Explicit => {}
                    Sharding::Cel => v.cel = Some(cel),
                }
                v
            },
        )
}

fn shard(db_id: u32) -> impl Strategy<Value = ShardMeta> {
    let count = 0..=i64::MAX as u64;
    (
        proptest::option::of(text()),
        any::<i64>(),
        count.clone(),
        count,
        proptest::option::of(json_value()),
        proptest::option::of(json_value()),
        proptest::option::of(text()),
        json_value(),
    )
        .prop_map(
            move |(db_url, attempt, row_count, db_bytes, min_key, max_key, checkpoint_id, wi)| {
                ShardMeta {
                    db_id: ShardId(db_id),
                    db_url,
                    attempt,
                    row_count,
                    db_bytes,
                    min_key,
                    max_key,
                    checkpoint_id,
                    writer_info: wi,
                }
            },
        )
}

fn build_meta(num_dbs: u32) -> impl Strategy<Value = BuildMeta> {
    (
        (text(), text(), text(), text()),
        json_value(),
        (text(), text(), text()),
    )
        .prop_map(
            move |(
                (run_id, created_at, s3_prefix, key_col),
                sharding,
                (db_path_template, shard_prefix, key_encoding),
            )| BuildMeta {
                run_id,
                created_at,
                num_dbs,
                s3_prefix,
                key_col,
                sharding,
                db_path_template,
                shard_prefix,
                format_version: FORMAT_VERSION,
                key_encoding,
            },
        )
}

/// A valid manifest: shard rows a sorted subset of `[0, num_dbs)`.
fn manifest() -> impl Strategy<Value = Manifest> {
    prop_oneof![1u32..=12, 1u32..=MAX_NUM_DBS].prop_flat_map(|num_dbs| {
        let max_rows = (num_dbs as usize).min(8);
        let shards = prop::collection::btree_set(0..num_dbs, 0..=max_rows)
            .prop_flat_map(|ids| ids.into_iter().map(shard).collect::<Vec<_>>());
        let user = text().prop_filter("not `vector`", |k| k != "vector");
        (
            build_meta(num_dbs),
            shards,
            vector_meta(num_dbs),
            json_map(user, 0..4),
        )
            .prop_map(|(build, shards, vector, user_fields)| Manifest {
                build,
                shards,
                vector,
                user_fields,
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn encoded_manifests_parse_back_equal(m in manifest()) {
        let parsed = Manifest::parse(&write_image(&m)).unwrap();
        prop_assert_eq!(&parsed, &m);
        // The text is a pure function of the value.
        prop_assert_eq!(parsed.custom_text(), m.custom_text());
        let json: Json = serde_json::from_str(&m.custom_text()).unwrap();
        prop_assert_eq!(json, Json::Object(m.custom()));
    }
}

// ---- the reference's manifests ------------------------------------------------

/// The peer fixtures (snapshots written by the Python reference).
fn peer_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/peer")
}

/// Every `<case>/manifests/<dir>/manifest` under the fixtures.
fn peer_manifests() -> Vec<(String, PathBuf)> {
    let root = peer_root();
    let mut out = Vec::new();
    let cases = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("peer fixtures at {}: {e}", root.display()));
    for case in cases {
        let case = case.unwrap().path();
        let Ok(dirs) = std::fs::read_dir(case.join("manifests")) else {
            continue;
        };
        for dir in dirs {
            let path = dir.unwrap().path().join("manifest");
            if path.is_file() {
                let name = case.file_name().unwrap().to_string_lossy().into_owned();
                out.push((name, path));
            }
        }
    }
    out.sort();
    out
}

/// Rows as the SQLite engine reads them (independent of the core reader).
fn raw_rows(path: &Path, table: &str, columns: &[&str]) -> Vec<Vec<SqlValue>> {
    let uri = format!("file:{}?immutable=1", path.display());
    let conn = Connection::open_with_flags(
        uri,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI,
    )
    .unwrap();
    let sql = format!("SELECT {} FROM {table} ORDER BY rowid", columns.join(", "));
    let mut st = conn.prepare(&sql).unwrap();
    let rows = st
        .query_map([], |r| {
            (0..columns.len())
                .map(|i| r.get::<_, SqlValue>(i))
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .unwrap();
    rows.map(Result::unwrap).collect()
}

#[test]
fn peer_manifests_reencode_to_the_references_bytes() {
    let manifests = peer_manifests();
    assert!(
        manifests.len() >= 9,
        "expected the peer fixtures under {}, found {}",
        peer_root().display(),
        manifests.len()
    );
    for (case, path) in manifests {
        let bytes = std::fs::read(&path).unwrap();
        let m = Manifest::parse(&bytes).unwrap_or_else(|e| panic!("{case}: {e}"));

        let raw_build = raw_rows(&path, "build_meta", &BUILD_META_COLUMNS);
        assert_eq!(raw_build.len(), 1, "{case}");
        let custom_col = BUILD_META_COLUMNS
            .iter()
            .position(|c| *c == "custom")
            .unwrap();
        assert_eq!(
            SqlValue::Text(m.custom_text()),
            raw_build[0][custom_col],
            "{case}: custom text"
        );
        let encoded: Vec<SqlValue> = m.build_meta_row().into_iter().map(to_sql).collect();
        assert_eq!(encoded, raw_build[0], "{case}: build_meta row");

        let raw_shards = raw_rows(&path, "shards", &SHARDS_COLUMNS);
        let encoded: Vec<Vec<SqlValue>> = m
            .shard_rows()
            .into_iter()
            .map(|r| r.into_iter().map(to_sql).collect())
            .collect();
        assert_eq!(encoded, raw_shards, "{case}: shards rows");

        // And our image of it reads back the same manifest.
        assert_eq!(Manifest::parse(&write_image(&m)).unwrap(), m, "{case}");
    }
}

/// What the writer records for each strategy has the reference's keys.
#[test]
fn writer_style_vector_sections_have_the_reference_keys() {
    let manifests = peer_manifests();
    for (case, path) in manifests {
        let m = Manifest::parse(&std::fs::read(&path).unwrap()).unwrap();
        let mut keys: Vec<String> = m.vector.to_json().keys().cloned().collect();
        keys.sort_unstable();
        let mut want = vec![
            "dim",
            "index_type",
            "metric",
            "num_probes",
            "quantization",
            "sharding_strategy",
            "total_vectors",
        ];
        match m.vector.strategy {
            Sharding::Cluster => want.push("centroids_ref"),
            Sharding::Lsh => want.extend(["hyperplanes_ref", "num_hash_bits"]),
            Sharding::Explicit => {}
            Sharding::Cel => {
                want.extend(["cel_columns", "cel_expr"]);
                if m.vector.cel.as_ref().unwrap().routing_values.is_some() {
                    want.push("routing_values");
                }
            }
        }
        want.sort_unstable();
        assert_eq!(keys, want, "{case}");
    }
}
