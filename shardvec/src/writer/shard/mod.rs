//! Writing one shard into a local staging folder, in the layout docs/format.md
//! gives for each backend.
//!
//! - sqlite-vec: `shard.db` with `vec_index` (`vec0`, the snapshot's metric),
//!   `vec_id_map` (ids as `{"v": ..., "t": "int"|"str"}`) and
//!   `vec_payloads`; rows are inserted in one transaction per batch.
//! - LanceDB: the dataset `vector_index.lance/` of table `vector_index`
//!   (`id: utf8`, `vector: fixed_size_list<f32>[dim]`, `payload: utf8`),
//!   appended in batches. Every shard gets a vector index (see
//!   `lance_index`): LanceDB searches an un-indexed table with L2 whatever
//!   the snapshot's metric (and so does the reference reader), while an
//!   index carries the metric. Small shards get an exact one.

use std::path::{Path, PathBuf};

#[cfg(feature = "lancedb")]
mod lancedb;
#[cfg(feature = "sqlite-vec")]
mod sqlite_vec;

#[cfg(feature = "lancedb")]
pub use self::lancedb::lance_index;

use shardvec_core::{Metric, ShardId, VectorId};

use super::input::Record;
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
    let _ = rt; // used by the LanceDB writer only
    match layout.backend {
        #[cfg(feature = "sqlite-vec")]
        BackendKind::SqliteVec => Ok(Box::new(sqlite_vec::SqliteVecWriter::create(
            layout, shard, dir,
        )?)),
        #[cfg(feature = "lancedb")]
        BackendKind::Lancedb => Ok(Box::new(lancedb::LanceWriter::create(
            layout, shard, dir, rt,
        )?)),
        #[allow(unreachable_patterns)]
        other => Err(Error::BackendNotCompiled {
            shard,
            backend: other,
        }),
    }
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

#[cfg(feature = "lancedb")]
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
