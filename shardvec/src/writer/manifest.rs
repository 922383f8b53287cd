//! The manifest image, written with rusqlite exactly as FORMAT.md (and the
//! reference's Python `sqlite3`) lays it out: the same DDL text, column
//! order and types, page size 4096, rollback journal, and JSON text in the
//! reference's style (`json.dumps(..., sort_keys=True)`: sorted keys, `", "`
//! and `": "` separators).

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::Connection;
use serde_json::Value as Json;
use shardvec_core::manifest::{Manifest, ShardMeta, VectorMeta, BUILD_META_DDL, SHARDS_DDL};
use shardvec_core::Strategy;

use crate::error::{Error, Result};

/// JSON text as Python's `json.dumps(value, sort_keys=True)` writes it
/// (non-ASCII characters are kept as UTF-8, which any JSON reader accepts).
pub fn py_json(v: &Json) -> String {
    let mut out = String::new();
    write_py_json(v, &mut out);
    out
}

fn write_py_json(v: &Json, out: &mut String) {
    match v {
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_py_json(item, out);
            }
            out.push(']');
        }
        Json::Object(map) => {
            // Sorted whatever map type serde_json was built with.
            let sorted: BTreeMap<&String, &Json> = map.iter().collect();
            out.push('{');
            for (i, (k, item)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&Json::String(k.clone()).to_string());
                out.push_str(": ");
                write_py_json(item, out);
            }
            out.push('}');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// The `custom` JSON of a manifest: user fields plus `vector`.
pub fn custom_json(vector: &VectorMeta, user_fields: &serde_json::Map<String, Json>) -> Json {
    let mut v = serde_json::Map::new();
    v.insert("dim".into(), Json::from(vector.dim as u64));
    v.insert("metric".into(), Json::from(vector.metric.as_str()));
    v.insert(
        "sharding_strategy".into(),
        Json::from(vector.strategy.as_str()),
    );
    v.insert("num_probes".into(), Json::from(vector.num_probes));
    v.insert(
        "index_type".into(),
        vector.index_type.clone().map_or(Json::Null, Json::from),
    );
    v.insert(
        "quantization".into(),
        vector.quantization.clone().map_or(Json::Null, Json::from),
    );
    if let Some(n) = vector.total_vectors {
        v.insert("total_vectors".into(), Json::from(n));
    }
    match vector.strategy {
        Strategy::Cluster => {
            if let Some(r) = &vector.centroids_ref {
                v.insert("centroids_ref".into(), Json::from(r.as_str()));
            }
        }
        Strategy::Lsh => {
            if let Some(r) = &vector.hyperplanes_ref {
                v.insert("hyperplanes_ref".into(), Json::from(r.as_str()));
            }
            if let Some(b) = vector.num_hash_bits {
                v.insert("num_hash_bits".into(), Json::from(b));
            }
        }
        Strategy::Explicit => {}
        Strategy::Cel => {
            if let Some(cel) = &vector.cel {
                v.insert("cel_expr".into(), Json::from(cel.expr.as_str()));
                v.insert(
                    "cel_columns".into(),
                    Json::Object(
                        cel.columns
                            .iter()
                            .map(|(k, t)| (k.clone(), Json::from(t.as_str())))
                            .collect(),
                    ),
                );
                if let Some(values) = &cel.routing_values {
                    v.insert(
                        "routing_values".into(),
                        Json::Array(values.iter().map(|x| x.to_json()).collect()),
                    );
                }
            }
        }
    }
    for (k, x) in &vector.extra {
        v.entry(k.clone()).or_insert_with(|| x.clone());
    }
    let mut custom = user_fields.clone();
    custom.insert("vector".into(), Json::Object(v));
    Json::Object(custom)
}

/// Writes `manifest` as a SQLite image at `path` and returns its bytes.
pub fn write_image(manifest: &Manifest, path: &Path) -> Result<Vec<u8>> {
    let fail = |e: rusqlite::Error| Error::io(path, std::io::Error::other(e));
    let mut conn = Connection::open(path).map_err(fail)?;
    conn.execute_batch("PRAGMA page_size = 4096; PRAGMA journal_mode = DELETE;")
        .map_err(fail)?;
    let tx = conn.transaction().map_err(fail)?;
    tx.execute_batch(&format!("{BUILD_META_DDL};\n{SHARDS_DDL};"))
        .map_err(fail)?;
    let b = &manifest.build;
    tx.execute(
        "INSERT INTO build_meta (run_id, created_at, num_dbs, s3_prefix, key_col, sharding,
             db_path_template, shard_prefix, format_version, key_encoding, custom)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        rusqlite::params![
            b.run_id,
            b.created_at,
            i64::from(b.num_dbs),
            b.s3_prefix,
            b.key_col,
            py_json(&b.sharding),
            b.db_path_template,
            b.shard_prefix,
            b.format_version,
            b.key_encoding,
            py_json(&custom_json(&manifest.vector, &manifest.user_fields)),
        ],
    )
    .map_err(fail)?;
    for s in &manifest.shards {
        insert_shard(&tx, s).map_err(fail)?;
    }
    tx.commit().map_err(fail)?;
    conn.close().map_err(|(_, e)| fail(e))?;
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

fn insert_shard(tx: &rusqlite::Transaction<'_>, s: &ShardMeta) -> rusqlite::Result<usize> {
    let to_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    tx.execute(
        "INSERT INTO shards (db_id, db_url, attempt, row_count, db_bytes, min_key, max_key,
             checkpoint_id, writer_info)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        rusqlite::params![
            i64::from(s.db_id.0),
            s.db_url,
            s.attempt,
            to_i64(s.row_count),
            to_i64(s.db_bytes),
            s.min_key.as_ref().map(py_json),
            s.max_key.as_ref().map(py_json),
            s.checkpoint_id,
            py_json(&s.writer_info),
        ],
    )
}

/// The `sharding` column of a vector snapshot (always the hash placeholder).
pub fn sharding_placeholder() -> Json {
    serde_json::json!({
        "cel_columns": null,
        "cel_expr": null,
        "hash_algorithm": "xxh3_64",
        "routing_values": null,
        "strategy": "hash",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_text_matches_pythons_sort_keys_dumps() {
        // As Python prints json.dumps({...}, sort_keys=True).
        let v = serde_json::json!({"b": [1, 2.5, null], "a": {"z": true, "y": "é\""}});
        assert_eq!(
            py_json(&v),
            r#"{"a": {"y": "é\"", "z": true}, "b": [1, 2.5, null]}"#
        );
        assert_eq!(
            py_json(&sharding_placeholder()),
            r#"{"cel_columns": null, "cel_expr": null, "hash_algorithm": "xxh3_64", "routing_values": null, "strategy": "hash"}"#
        );
    }
}
