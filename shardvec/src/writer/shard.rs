//! Writing one shard into a local staging folder, in the layout FORMAT.md
//! gives for each backend.
//!
//! - sqlite-vec: `shard.db` with `vec_index` (`vec0`, the snapshot's metric),
//!   `vec_id_map` (ids as `{"v": ..., "t": "int"|"str"}`) and
//!   `vec_payloads`; rows are inserted in one transaction per batch.
//! - LanceDB: the dataset `vector_index.lance/` of table `vector_index`
//!   (`id: utf8`, `vector: fixed_size_list<f32>[dim]`, `payload: utf8`),
//!   appended in batches. Every shard gets a vector index (see
//!   [`lance_index`]): LanceDB searches an un-indexed table with L2 whatever
//!   the snapshot's metric (and so does the reference reader), while an
//!   index carries the metric. Small shards get an exact one.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use lancedb::arrow::arrow_array::{
    types::Float32Type, FixedSizeListArray, RecordBatch, StringArray,
};
use lancedb::arrow::arrow_schema::{DataType, Field, Schema};
use rusqlite::Connection;
use shardvec_core::{Metric, ShardId, VectorId};

use super::input::Record;
use crate::backend::lancedb::{DATASET_DIR, TABLE};
use crate::backend::BackendKind;
use crate::error::{Error, Result};

/// How shards are laid out and indexed.
#[derive(Debug, Clone)]
pub struct ShardLayout {
    /// Backend.
    pub backend: BackendKind,
    /// Vector dimension.
    pub dim: usize,
    /// Metric.
    pub metric: Metric,
    /// LanceDB shards with at least this many rows get an approximate
    /// (`IVF_HNSW_SQ`) index, smaller ones an exact (`IVF_FLAT`, one
    /// partition) index.
    pub lance_index_min_rows: u64,
}

/// A finished shard in the staging folder.
#[derive(Debug, Clone)]
pub struct WrittenShard {
    /// The shard.
    pub shard: ShardId,
    /// Vectors written.
    pub rows: u64,
    /// Total size of its files.
    pub bytes: u64,
    /// Its files: path relative to the shard folder, local path, size.
    pub files: Vec<(String, PathBuf, u64)>,
}

/// Writes one shard.
pub trait ShardWriter: Send {
    /// Appends records (already routed to this shard).
    fn add(&mut self, records: &[&Record]) -> Result<()>;
    /// Completes the shard (indexes, closes files) and lists its files.
    fn finish(self: Box<Self>) -> Result<WrittenShard>;
}

/// A writer for `shard` of `layout` in `dir` (created, must be empty).
pub fn writer(
    layout: &ShardLayout,
    shard: ShardId,
    dir: &Path,
    rt: &tokio::runtime::Handle,
) -> Result<Box<dyn ShardWriter>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    Ok(match layout.backend {
        BackendKind::SqliteVec => Box::new(SqliteVecWriter::create(layout, shard, dir)?),
        BackendKind::Lancedb => Box::new(LanceWriter::create(layout, shard, dir, rt)?),
    })
}

/// The `vec_id_map.original_id` text of an id, as the reference writes it.
pub fn id_json(id: &VectorId) -> String {
    match id {
        VectorId::Int(i) => format!("{{\"v\": {i}, \"t\": \"int\"}}"),
        VectorId::Str(s) => format!(
            "{{\"v\": {}, \"t\": \"str\"}}",
            serde_json::Value::String(s.clone())
        ),
    }
}

fn files_under(root: &Path, rel_root: &str) -> Result<Vec<(String, PathBuf, u64)>> {
    let mut out = Vec::new();
    let mut stack = vec![(root.to_path_buf(), rel_root.to_string())];
    while let Some((dir, rel)) = stack.pop() {
        for entry in std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
            let entry = entry.map_err(|e| Error::io(&dir, e))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let child = format!("{rel}/{name}");
            let meta = entry.metadata().map_err(|e| Error::io(&path, e))?;
            if meta.is_dir() {
                stack.push((path, child));
            } else {
                out.push((child, path, meta.len()));
            }
        }
    }
    out.sort();
    Ok(out)
}

struct SqliteVecWriter {
    shard: ShardId,
    path: PathBuf,
    conn: Connection,
    rows: u64,
}

impl SqliteVecWriter {
    fn create(layout: &ShardLayout, shard: ShardId, dir: &Path) -> Result<Self> {
        let metric = match layout.metric {
            Metric::Cosine => "cosine",
            Metric::L2 => "l2",
            Metric::DotProduct => {
                return Err(Error::ShardWrite {
                    shard,
                    reason: "sqlite-vec has no dot_product metric; use LanceDB".into(),
                })
            }
        };
        crate::backend::sqlite_vec::register_extension();
        let path = dir.join("shard.db");
        let fail = |e: rusqlite::Error| Error::ShardWrite {
            shard,
            reason: format!("{}: {e}", path.display()),
        };
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
        let fail = |e: rusqlite::Error| Error::ShardWrite {
            shard,
            reason: format!("{}: {e}", path.display()),
        };
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
        conn.close().map_err(|(_, e)| Error::ShardWrite {
            shard,
            reason: format!("{}: {e}", path.display()),
        })?;
        let bytes = std::fs::metadata(&path)
            .map_err(|e| Error::io(&path, e))?
            .len();
        Ok(WrittenShard {
            shard,
            rows,
            bytes,
            files: vec![("shard.db".to_string(), path, bytes)],
        })
    }
}

/// Rows buffered per shard before a LanceDB append (one data file each).
const LANCE_BATCH_ROWS: usize = 65_536;

struct LanceWriter {
    shard: ShardId,
    dir: PathBuf,
    rt: tokio::runtime::Handle,
    conn: lancedb::Connection,
    table: Option<lancedb::Table>,
    schema: Arc<Schema>,
    buf: Vec<Record>,
    rows: u64,
    layout: ShardLayout,
}

impl LanceWriter {
    fn create(
        layout: &ShardLayout,
        shard: ShardId,
        dir: &Path,
        rt: &tokio::runtime::Handle,
    ) -> Result<Self> {
        let uri = dir.to_str().ok_or_else(|| Error::ShardWrite {
            shard,
            reason: format!("staging path {} is not UTF-8", dir.display()),
        })?;
        let conn = rt
            .block_on(lancedb::connect(uri).execute())
            .map_err(|e| Error::ShardWrite {
                shard,
                reason: format!("cannot create LanceDB at {uri}: {e}"),
            })?;
        let dim = i32::try_from(layout.dim).map_err(|_| Error::ShardWrite {
            shard,
            reason: format!("dimension {} is too large", layout.dim),
        })?;
        // The reference's pyarrow schema: every field nullable.
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, true),
            Field::new(
                "vector",
                DataType::FixedSizeList(Arc::new(Field::new("item", DataType::Float32, true)), dim),
                true,
            ),
            Field::new("payload", DataType::Utf8, true),
        ]));
        Ok(LanceWriter {
            shard,
            dir: dir.to_path_buf(),
            rt: rt.clone(),
            conn,
            table: None,
            schema,
            buf: Vec::new(),
            rows: 0,
            layout: layout.clone(),
        })
    }

    fn fail(&self, what: &str, e: impl std::fmt::Display) -> Error {
        Error::ShardWrite {
            shard: self.shard,
            reason: format!("{what}: {e}"),
        }
    }

    fn flush(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let ids = StringArray::from_iter_values(self.buf.iter().map(|r| r.id.to_string()));
        let vectors = FixedSizeListArray::from_iter_primitive::<Float32Type, _, _>(
            self.buf
                .iter()
                .map(|r| Some(r.vector.iter().map(|x| Some(*x)).collect::<Vec<_>>())),
            self.layout.dim as i32,
        );
        let payloads: StringArray = self
            .buf
            .iter()
            .map(|r| r.payload.as_ref().map(|p| p.to_string()))
            .collect();
        let batch = RecordBatch::try_new(
            self.schema.clone(),
            vec![Arc::new(ids), Arc::new(vectors), Arc::new(payloads)],
        )
        .map_err(|e| self.fail("building a record batch", e))?;
        let table = match self.table.take() {
            None => self
                .rt
                .block_on(self.conn.create_table(TABLE, batch).execute())
                .map_err(|e| self.fail("creating the table", e))?,
            Some(t) => {
                self.rt
                    .block_on(t.add(batch).execute())
                    .map_err(|e| self.fail("appending rows", e))?;
                t
            }
        };
        self.table = Some(table);
        self.buf.clear();
        Ok(())
    }
}

impl ShardWriter for LanceWriter {
    fn add(&mut self, records: &[&Record]) -> Result<()> {
        for r in records {
            self.buf.push((*r).clone());
            self.rows += 1;
            if self.buf.len() >= LANCE_BATCH_ROWS {
                self.flush()?;
            }
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<WrittenShard> {
        self.flush()?;
        if let Some(table) = &self.table {
            let index = lance_index(
                self.layout.metric,
                self.rows,
                self.layout.lance_index_min_rows,
            );
            self.rt
                .block_on(table.create_index(&["vector"], index).execute())
                .map_err(|e| self.fail("building the vector index", e))?;
        }
        let dataset = self.dir.join(DATASET_DIR);
        let files = files_under(&dataset, DATASET_DIR)?;
        Ok(WrittenShard {
            shard: self.shard,
            rows: self.rows,
            bytes: files.iter().map(|f| f.2).sum(),
            files,
        })
    }
}

/// The LanceDB vector index of a shard of `rows` rows, with the snapshot's
/// metric:
/// - below `min_rows` (default 10 000): `IVF_FLAT` with one partition, an
///   exact search that costs no more than the un-indexed scan;
/// - otherwise `IVF_HNSW_SQ`: 8-bit scalar quantisation (distances within
///   about 1% of the exact ones, unlike the reference's 1-sub-vector PQ),
///   `m = 20` and `ef_construction = 300` (LanceDB's defaults, as the
///   reference), one IVF partition per 8 192 rows (at most 256). LanceDB's
///   default query probes 20 partitions, so shards of up to ~160 000 rows
///   are searched in every partition and recall is limited only by HNSW and
///   quantisation (`shardvec verify` measures it).
pub fn lance_index(metric: Metric, rows: u64, min_rows: u64) -> lancedb::index::Index {
    use lancedb::index::vector::{IvfFlatIndexBuilder, IvfHnswSqIndexBuilder};
    let distance = crate::backend::lancedb::distance_type(metric);
    if rows < min_rows {
        return lancedb::index::Index::IvfFlat(
            IvfFlatIndexBuilder::default()
                .distance_type(distance)
                .num_partitions(1),
        );
    }
    lancedb::index::Index::IvfHnswSq(
        IvfHnswSqIndexBuilder::default()
            .distance_type(distance)
            .num_partitions((rows / 8192).clamp(1, 256) as u32)
            .num_edges(20)
            .ef_construction(300),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_written_as_the_reference_writes_them() {
        assert_eq!(id_json(&VectorId::Int(12)), r#"{"v": 12, "t": "int"}"#);
        assert_eq!(
            id_json(&VectorId::Str("doc-\"1\"".into())),
            r#"{"v": "doc-\"1\"", "t": "str"}"#
        );
    }
}
