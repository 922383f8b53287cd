//! A sqlite-vec shard's vectors read in place from its memory-mapped file.
//!
//! `vec0` keeps a table's vectors in chunks: each row of the shadow table
//! `<table>_vector_chunks00` is one chunk, a BLOB of `chunk_size` vectors
//! (little-endian `f32`s, back to back), and `<table>_rowids` says which
//! chunk and which slot in it hold each rowid. sqlite-vec itself reads a
//! vector with `sqlite3_blob_open` on the chunk's rowid and a ranged
//! `sqlite3_blob_read`.
//!
//! Those BLOBs are ordinary SQLite payloads: a cell's local part and a
//! chain of overflow pages. [`Vec0File::open`] finds, once, where each
//! chunk's payload lies in the file (the core's SQLite reader,
//! [`PayloadExtents`]) and where each row's vector starts in it; a read is
//! then a copy of `4 × dim` bytes out of the map, with no SQL, no lock and
//! no `f32` copy of the shard in memory. The int8 select pass
//! ([`crate::int8`]) needs the exact vectors of a few hundred candidates
//! per search, and this is where it reads them
//! ([`FlatVectors::read_rows_from`](crate::flat::FlatVectors::read_rows_from),
//! which also checks every row against SQLite's own reading before the
//! copy is dropped).
//!
//! What is held per row: the chunk and byte offset of its vector (8 bytes);
//! per chunk, its payload's page list. The file's pages are the OS page
//! cache's, shared with SQLite's own map of the same file.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

use memmap2::Mmap;
use rusqlite::Connection;
use shardvec_core::sqlite::{Database, PayloadExtents};

use super::ShardSource;
use crate::error::Result;
use crate::flat::RowSource;

/// The vec0 table of a shard (`CREATE VIRTUAL TABLE vec_index USING vec0`).
const VEC0_TABLE: &str = "vec_index";

/// sqlite-vec's shadow tables of [`VEC0_TABLE`], and the chunk column.
const ROWIDS_SQL: &str = "SELECT rowid, chunk_id, chunk_offset FROM vec_index_rowids";
const CHUNKS_TABLE: &str = "vec_index_vector_chunks00";
const CHUNK_COLUMN: &str = "vectors";

/// Vectors of one shard, read from its memory-mapped file.
pub(crate) struct Vec0File {
    /// The shard file. Shard-cache files are written once and renamed
    /// into place, never modified (see `map`'s safety note).
    map: Mmap,
    dim: usize,
    /// Each chunk's payload in the file.
    chunks: Vec<PayloadExtents>,
    /// Per row: index into `chunks`, and the offset of its vector in that
    /// chunk's payload.
    rows: Vec<(u32, u32)>,
}

impl std::fmt::Debug for Vec0File {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vec0File")
            .field("bytes", &self.map.len())
            .field("dim", &self.dim)
            .field("chunks", &self.chunks.len())
            .field("rows", &self.rows.len())
            .finish()
    }
}

impl Vec0File {
    /// Maps `path` and locates the vector of each of `rowids`, in that
    /// order (row `i` of the result is `rowids[i]`). `conn` is an open
    /// connection to the same file (for the small rowid table).
    pub(crate) fn open(
        path: &Path,
        conn: &Connection,
        source: &ShardSource,
        rowids: &[i64],
    ) -> Result<Vec0File> {
        let dim = source.dim;
        let slots = slots(conn, source)?;
        let file = File::open(path)
            .map_err(|e| source.failed(format!("cannot open {}", path.display()), e))?;
        // SAFETY: the map is read-only and of a shard-cache file, which is
        // written to a temporary name, renamed into place and never written
        // again (an evicted file is unlinked, which keeps its pages while
        // mapped). No one truncates or rewrites it while the map lives.
        let map = unsafe { Mmap::map(&file) }
            .map_err(|e| source.failed(format!("cannot map {}", path.display()), e))?;
        let (chunks, chunk_of) = chunk_payloads(&map, source)?;
        let vector_bytes = dim * 4;
        let mut rows = Vec::with_capacity(rowids.len());
        for rowid in rowids {
            let located = slots.get(rowid).and_then(|&(chunk_id, slot)| {
                let &(index, start, len) = chunk_of.get(&chunk_id)?;
                let at = usize::try_from(slot).ok()?.checked_mul(vector_bytes)?;
                let end = at.checked_add(vector_bytes)?;
                (end <= len).then_some(())?;
                Some((u32::try_from(index).ok()?, u32::try_from(start + at).ok()?))
            });
            match located {
                Some(row) => rows.push(row),
                None => {
                    return Err(source.damaged(format!(
                        "the vector of rowid {rowid} is not in a `{CHUNKS_TABLE}` chunk"
                    )))
                }
            }
        }
        Ok(Vec0File {
            map,
            dim,
            chunks,
            rows,
        })
    }
}

/// Chunk and slot of each rowid, from `vec_index_rowids`.
fn slots(conn: &Connection, source: &ShardSource) -> Result<HashMap<i64, (i64, i64)>> {
    let failed = |e| source.failed(format!("cannot read the rowids of `{VEC0_TABLE}`"), e);
    let mut st = conn.prepare(ROWIDS_SQL).map_err(failed)?;
    let rows = st
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, (r.get(1)?, r.get(2)?))))
        .map_err(failed)?;
    let slots = rows.collect::<rusqlite::Result<_>>().map_err(failed)?;
    Ok(slots)
}

/// Each chunk's payload, and by chunk id: its index, and where the vectors
/// BLOB starts in the payload and how long it is.
#[allow(clippy::type_complexity)]
fn chunk_payloads(
    image: &[u8],
    source: &ShardSource,
) -> Result<(Vec<PayloadExtents>, HashMap<i64, (usize, usize, usize)>)> {
    let unreadable =
        |e: shardvec_core::Error| source.failed(format!("cannot read `{CHUNKS_TABLE}`"), e);
    let db = Database::open(image).map_err(unreadable)?;
    let table = db.table(CHUNKS_TABLE).map_err(unreadable)?;
    let column = table.column(CHUNK_COLUMN).map_err(unreadable)?;
    let mut chunks = Vec::new();
    let mut chunk_of = HashMap::new();
    // The b-tree key is the chunk id sqlite-vec opens the BLOB by.
    db.scan_extents(table.root_page, |chunk_id, payload| {
        let (start, len) = payload.column_span(image, column)?.ok_or_else(|| {
            shardvec_core::Error::CorruptSqlite {
                page: payload.page(),
                reason: format!("a chunk row without its `{CHUNK_COLUMN}` column"),
            }
        })?;
        chunk_of.insert(chunk_id, (chunks.len(), start, len));
        chunks.push(payload);
        Ok(())
    })
    .map_err(unreadable)?;
    Ok((chunks, chunk_of))
}

impl RowSource for Vec0File {
    fn read(&self, row: usize, out: &mut [f32]) -> bool {
        // Read the bytes through a small stack buffer: vectors in a
        // payload are not 4-byte aligned in general.
        const STEP: usize = 256;
        let Some(&(chunk, at)) = self.rows.get(row) else {
            return false;
        };
        let Some(payload) = self.chunks.get(chunk as usize) else {
            return false;
        };
        if out.len() != self.dim {
            return false;
        }
        let mut bytes = [0u8; STEP * 4];
        let mut at = at as usize;
        for part in out.chunks_mut(STEP) {
            let n = part.len() * 4;
            if !payload.read_at(&self.map, at, &mut bytes[..n]) {
                return false;
            }
            for (x, b) in part.iter_mut().zip(bytes.chunks_exact(4)) {
                *x = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
            at += n;
        }
        true
    }

    fn heap_bytes(&self) -> usize {
        self.rows.capacity() * std::mem::size_of::<(u32, u32)>()
            + self
                .chunks
                .iter()
                .map(|c| std::mem::size_of_val(c) + c.heap_bytes())
                .sum::<usize>()
    }
}
