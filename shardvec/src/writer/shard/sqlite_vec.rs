//! sqlite-vec shards: `shard.db` with `vec_index`, `vec_id_map` and
//! `vec_payloads`, one transaction per batch.

use std::path::{Path, PathBuf};

use rusqlite::Connection;
use shardvec_core::layout::SQLITE_VEC_SHARD_FILE;
use shardvec_core::{Metric, ShardId};

use super::{id_json, Record, ShardLayout, ShardWriter, WrittenShard};
use crate::error::{Error, Result};

pub(super) struct SqliteVecWriter {
    shard: ShardId,
    path: PathBuf,
    conn: Connection,
    rows: u64,
}

impl SqliteVecWriter {
    pub(super) fn create(layout: &ShardLayout, shard: ShardId, dir: &Path) -> Result<Self> {
        let metric = match layout.metric {
            Metric::Cosine => "cosine",
            Metric::L2 => "l2",
            Metric::DotProduct => {
                return Err(Error::ShardWrite {
                    shard,
                    source: "sqlite-vec has no dot_product metric; use LanceDB".into(),
                })
            }
        };
        crate::backend::sqlite_vec::register_extension();
        let path = dir.join(SQLITE_VEC_SHARD_FILE);
        let fail = |e: rusqlite::Error| Error::shard_write(shard, path.display().to_string(), e);
        let conn = Connection::open(&path).map_err(fail)?;
        conn.execute_batch(&format!(
            "PRAGMA page_size = 4096;
             PRAGMA journal_mode = DELETE;
             PRAGMA synchronous = OFF;
             CREATE VIRTUAL TABLE vec_index USING vec0(embedding float[{dim}] distance_metric={metric});
             CREATE TABLE vec_id_map (internal_id INTEGER PRIMARY KEY, original_id TEXT NOT NULL);
             CREATE TABLE vec_payloads (rowid INTEGER PRIMARY KEY, payload TEXT NOT NULL);",
            dim = layout.dim
        ))
        .map_err(fail)?;
        Ok(SqliteVecWriter {
            shard,
            path,
            conn,
            rows: 0,
        })
    }
}

impl ShardWriter for SqliteVecWriter {
    fn add(&mut self, records: &[&Record]) -> Result<()> {
        let (shard, path) = (self.shard, self.path.clone());
        let fail = |e: rusqlite::Error| Error::shard_write(shard, path.display().to_string(), e);
        let tx = self.conn.transaction().map_err(fail)?;
        {
            let mut vec_stmt = tx
                .prepare_cached("INSERT INTO vec_index(rowid, embedding) VALUES (?1, ?2)")
                .map_err(fail)?;
            let mut id_stmt = tx
                .prepare_cached("INSERT INTO vec_id_map(internal_id, original_id) VALUES (?1, ?2)")
                .map_err(fail)?;
            let mut payload_stmt = tx
                .prepare_cached("INSERT INTO vec_payloads(rowid, payload) VALUES (?1, ?2)")
                .map_err(fail)?;
            let mut bytes = Vec::new();
            for r in records {
                let rowid = self.rows as i64;
                bytes.clear();
                bytes.extend(r.vector.iter().flat_map(|x| x.to_le_bytes()));
                vec_stmt
                    .execute(rusqlite::params![rowid, bytes])
                    .map_err(fail)?;
                id_stmt
                    .execute(rusqlite::params![rowid, id_json(&r.id)])
                    .map_err(fail)?;
                if let Some(p) = &r.payload {
                    payload_stmt
                        .execute(rusqlite::params![rowid, p.to_string()])
                        .map_err(fail)?;
                }
                self.rows += 1;
            }
        }
        tx.commit().map_err(fail)
    }

    fn finish(self: Box<Self>) -> Result<WrittenShard> {
        let SqliteVecWriter {
            shard,
            path,
            conn,
            rows,
        } = *self;
        conn.close()
            .map_err(|(_, e)| Error::shard_write(shard, path.display().to_string(), e))?;
        let bytes = std::fs::metadata(&path)
            .map_err(|e| Error::io(&path, e))?
            .len();
        Ok(WrittenShard {
            shard,
            rows,
            bytes,
            files: vec![(SQLITE_VEC_SHARD_FILE.to_string(), path, bytes)],
        })
    }
}
