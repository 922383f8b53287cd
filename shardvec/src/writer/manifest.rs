//! The manifest image. What goes in it is the core's encoding
//! ([`Manifest::build_meta_row`], [`Manifest::shard_rows`]: every value,
//! JSON columns in the reference's text style included); this module only
//! runs the SQL, with rusqlite, as the reference's Python `sqlite3` lays the
//! image out: the same DDL, page size 4096, rollback journal.

use std::path::Path;

use rusqlite::types::Value as SqlValue;
use rusqlite::Connection;
use shardvec_core::manifest::{
    Manifest, BUILD_META_DDL, BUILD_META_INSERT, SHARDS_DDL, SHARDS_INSERT,
};
use shardvec_core::sqlite::Value;

use crate::error::{Error, Result};

/// Writes `manifest` as a SQLite image at `path` and returns its bytes.
pub fn write_image(manifest: &Manifest, path: &Path) -> Result<Vec<u8>> {
    let fail = |e: rusqlite::Error| Error::io(path, std::io::Error::other(e));
    let mut conn = Connection::open(path).map_err(fail)?;
    conn.execute_batch("PRAGMA page_size = 4096; PRAGMA journal_mode = DELETE;")
        .map_err(fail)?;
    let tx = conn.transaction().map_err(fail)?;
    tx.execute_batch(&format!("{BUILD_META_DDL};\n{SHARDS_DDL};"))
        .map_err(fail)?;
    tx.execute(
        BUILD_META_INSERT,
        rusqlite::params_from_iter(manifest.build_meta_row().into_iter().map(sql_value)),
    )
    .map_err(fail)?;
    for row in manifest.shard_rows() {
        tx.execute(
            SHARDS_INSERT,
            rusqlite::params_from_iter(row.into_iter().map(sql_value)),
        )
        .map_err(fail)?;
    }
    tx.commit().map_err(fail)?;
    conn.close().map_err(|(_, e)| fail(e))?;
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

fn sql_value(v: Value) -> SqlValue {
    match v {
        Value::Null => SqlValue::Null,
        Value::Integer(i) => SqlValue::Integer(i),
        Value::Real(f) => SqlValue::Real(f),
        Value::Text(s) => SqlValue::Text(s),
        Value::Blob(b) => SqlValue::Blob(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shardvec_core::manifest::{BuildMeta, ShardMeta, VectorMeta};
    use shardvec_core::{Metric, ShardId, Strategy};

    #[test]
    fn the_image_parses_back_to_the_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = Manifest {
            build: BuildMeta::for_vectors("r", "2026-11-21T18:28:00.726454Z", 3, "s3://b/p"),
            shards: vec![ShardMeta {
                db_id: ShardId(1),
                db_url: Some("s3://b/p/shards/run_id=r/db=00001/attempt=00".into()),
                attempt: 0,
                row_count: 5,
                db_bytes: 4096,
                min_key: None,
                max_key: None,
                checkpoint_id: Some("ck".into()),
                writer_info: ShardMeta::reference_writer_info(0, 12),
            }],
            vector: VectorMeta {
                dim: 4,
                metric: Metric::Cosine,
                strategy: Strategy::Explicit,
                num_probes: 1,
                centroids_ref: None,
                hyperplanes_ref: None,
                num_hash_bits: None,
                cel: None,
                index_type: Some("hnsw".into()),
                quantization: None,
                total_vectors: Some(5),
                extra: Default::default(),
            },
            user_fields: [("owner".to_string(), serde_json::json!("é"))]
                .into_iter()
                .collect(),
        };
        let image = write_image(&manifest, &dir.path().join("manifest")).unwrap();
        assert_eq!(Manifest::parse(&image).unwrap(), manifest);
    }
}
