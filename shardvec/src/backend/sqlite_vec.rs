//! The sqlite-vec backend: one `shard.db` per shard.
//!
//! The file is downloaded into the local cache (see [`crate::cache`]) and
//! opened read-only with rusqlite (bundled SQLite) and the sqlite-vec
//! extension. A search finds the top-k rowids one of two ways
//! ([`SqliteVecScan`]):
//!
//! - **in memory** (default): the vectors are copied out of `vec_index`
//!   once, at open, and every search scans them with simsimd's SIMD
//!   kernels ([`crate::flat`]). sqlite-vec's own distance loop is scalar C
//!   (the crate builds it without its AVX path, and has none for cosine);
//!   it was most of the search time and 3× the in-memory floor on cosine
//!   (BENCHMARKS.md). The cost is `dim × 4` bytes per vector of each open
//!   shard, the size of the vectors in the file.
//! - **extension**: the `vec0` KNN query (`embedding MATCH ?`), exactly as
//!   the reference reader runs it, with no extra memory.
//!
//! Either way the rowids are then mapped through `vec_id_map` (typed ids,
//! `{"v": 12, "t": "int"}`) and `vec_payloads` (JSON objects; no row = no
//! payload): payload JSON is read and decoded only for the rows returned.
//! Scores are sqlite-vec's (`1 - cos`, plain Euclidean distance) on both
//! paths; the tests check both against the peer's recorded answers.
//!
//! Each shard keeps a small pool of read connections with their prepared
//! statements cached, so concurrent searches of one shard do not
//! serialise; they read the file through a memory map.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Once};

use futures::future::BoxFuture;
use rusqlite::{Connection, OpenFlags};
use shardvec_core::{SearchResult, VectorId};

use super::{BackendKind, ShardBackend, ShardSearcher, ShardSource, StoredVector};
use crate::error::{Error, Result};
use crate::flat::FlatVectors;

/// The shard's file name.
pub const SHARD_FILE: &str = shardvec_core::layout::SQLITE_VEC_SHARD_FILE;

/// Connections kept per shard once released (more may be open at peaks).
const POOL_SIZE: usize = 8;

/// Largest part of a shard file read through `mmap` (address space only;
/// pages are shared between a shard's connections and with the OS cache).
const MMAP_BYTES: i64 = 1 << 34;

const SEARCH_SQL: &str = "\
SELECT m.original_id, v.distance, p.payload
FROM (SELECT rowid, distance FROM vec_index WHERE embedding MATCH ?1 AND k = ?2) AS v
LEFT JOIN vec_id_map AS m ON m.internal_id = v.rowid
LEFT JOIN vec_payloads AS p ON p.rowid = v.rowid
ORDER BY v.distance";

/// The id and payload of one rowid (the in-memory path).
const ROW_SQL: &str = "\
SELECT m.original_id, p.payload
FROM vec_id_map AS m LEFT JOIN vec_payloads AS p ON p.rowid = m.internal_id
WHERE m.internal_id = ?1";

/// Every stored vector with its rowid.
const VECTORS_SQL: &str = "SELECT rowid, embedding FROM vec_index";

/// How sqlite-vec shards find their top-k (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SqliteVecScan {
    /// Vectors copied into memory at open, scanned with SIMD kernels
    /// (default).
    #[default]
    InMemory,
    /// sqlite-vec's own KNN query over the file; no extra memory.
    Extension,
}

/// Registers sqlite-vec with every SQLite connection of the process.
pub(crate) fn register_extension() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        type EntryPoint = unsafe extern "C" fn(
            *mut rusqlite::ffi::sqlite3,
            *mut *mut std::os::raw::c_char,
            *const rusqlite::ffi::sqlite3_api_routines,
        ) -> std::os::raw::c_int;
        // SAFETY: the crate declares `sqlite3_vec_init` without arguments,
        // but the C symbol is SQLite's standard extension entry point, which
        // is what `sqlite3_auto_extension` calls it as; the pointer is
        // 'static.
        unsafe {
            let init = std::mem::transmute::<*const (), EntryPoint>(
                sqlite_vec::sqlite3_vec_init as *const (),
            );
            rusqlite::ffi::sqlite3_auto_extension(Some(init));
        }
    });
}

/// Opens sqlite-vec shards.
#[derive(Debug, Default, Clone)]
pub struct SqliteVecBackend {
    scan: SqliteVecScan,
}

impl SqliteVecBackend {
    /// A backend whose shards search as `scan` says.
    pub fn new(scan: SqliteVecScan) -> SqliteVecBackend {
        SqliteVecBackend { scan }
    }
}

impl ShardBackend for SqliteVecBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::SqliteVec
    }

    fn open<'a>(
        &'a self,
        source: &'a ShardSource,
    ) -> BoxFuture<'a, Result<Arc<dyn ShardSearcher>>> {
        Box::pin(async move {
            let files = vec![(SHARD_FILE.to_string(), source.meta.db_bytes)];
            // A cached file of the right size can still be damaged (bit rot,
            // a writer outside shardvec): one that does not open or fails
            // the integrity check is discarded and downloaded once more.
            let mut attempt = 0;
            loop {
                let dir = source.cache(files.clone()).await?;
                let path = dir.join(SHARD_FILE);
                let src = source.clone();
                let scan = self.scan;
                let opened =
                    tokio::task::spawn_blocking(move || SqliteVecShard::open(&path, &src, scan))
                        .await
                        .map_err(|e| Error::task("shard open", e))?;
                match opened {
                    Ok(shard) => {
                        return Ok(
                            Arc::new(SqliteVecSearcher(Arc::new(shard))) as Arc<dyn ShardSearcher>
                        )
                    }
                    Err(e) if attempt == 0 => {
                        tracing::warn!(shard = source.id().0, error = %e, "cached shard damaged; downloading it again");
                        crate::cache::discard(&dir).await?;
                        attempt += 1;
                    }
                    Err(e) => return Err(e),
                }
            }
        })
    }
}

/// One open sqlite-vec shard.
#[derive(Debug)]
pub struct SqliteVecShard {
    path: PathBuf,
    source: ShardSource,
    pool: Mutex<Vec<Connection>>,
    /// The vectors and their rowids ([`SqliteVecScan::InMemory`]).
    resident: Option<Resident>,
}

#[derive(Debug)]
struct Resident {
    vectors: FlatVectors,
    rowids: Vec<i64>,
}

impl SqliteVecShard {
    /// Opens `path` read-only, checks its schema and integrity, and for
    /// [`SqliteVecScan::InMemory`] loads its vectors.
    pub fn open(path: &Path, source: &ShardSource, scan: SqliteVecScan) -> Result<SqliteVecShard> {
        register_extension();
        let mut shard = SqliteVecShard {
            path: path.to_path_buf(),
            source: source.clone(),
            pool: Mutex::new(Vec::new()),
            resident: None,
        };
        let conn = shard.connect()?;
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table'")
            .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
            .map_err(|e| source.failed("not a readable SQLite file", e))?;
        for t in ["vec_index", "vec_id_map"] {
            if !tables.iter().any(|n| n == t) {
                return Err(source.error(format!("table `{t}` is missing")));
            }
        }
        // Every page read once: b-tree structure and record formats (not
        // index contents, which `integrity_check` would add at many times
        // the cost).
        let check: String = conn
            .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
            .map_err(|e| source.failed("integrity check failed", e))?;
        if check != "ok" {
            return Err(source.error(format!("integrity check failed: {check}")));
        }
        if scan == SqliteVecScan::InMemory {
            shard.resident = Some(shard.load(&conn)?);
        }
        shard.release(conn);
        Ok(shard)
    }

    /// Copies every vector out of `vec_index`.
    fn load(&self, conn: &Connection) -> Result<Resident> {
        let count: i64 = conn
            .query_row("SELECT count(*) FROM vec_id_map", [], |r| r.get(0))
            .map_err(|e| self.source.failed("cannot count vectors", e))?;
        let mut vectors = FlatVectors::new(self.source.dim, self.source.metric);
        let expected = usize::try_from(count).unwrap_or(0);
        vectors.reserve(expected);
        let mut rowids = Vec::with_capacity(expected);
        let mut floats = Vec::with_capacity(self.source.dim);
        let mut st = conn
            .prepare(VECTORS_SQL)
            .map_err(|e| self.source.failed("cannot read vectors", e))?;
        let mut rows = st
            .query([])
            .map_err(|e| self.source.failed("cannot read vectors", e))?;
        loop {
            let row = match rows.next() {
                Ok(Some(row)) => row,
                Ok(None) => break,
                Err(e) => return Err(self.source.failed("cannot read vectors", e)),
            };
            let (rowid, blob) = row
                .get::<_, i64>(0)
                .and_then(|id| Ok((id, row.get_ref(1)?.as_blob()?)))
                .map_err(|e| self.source.failed("cannot read vectors", e))?;
            floats.clear();
            floats.extend(
                blob.chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            );
            if blob.len() % 4 != 0 || !vectors.push(&floats) {
                return Err(self.source.error(format!(
                    "vector of rowid {rowid} has {} bytes, not {} (dimension {})",
                    blob.len(),
                    self.source.dim * 4,
                    self.source.dim
                )));
            }
            rowids.push(rowid);
        }
        tracing::debug!(
            shard = self.source.id().0,
            vectors = rowids.len(),
            bytes = vectors.heap_bytes(),
            "sqlite-vec shard loaded into memory"
        );
        Ok(Resident { vectors, rowids })
    }

    fn connect(&self) -> Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| {
            self.source
                .failed(format!("cannot open {}", self.path.display()), e)
        })?;
        conn.set_prepared_statement_cache_capacity(4);
        // Read the (immutable, read-only) file through a memory map: a KNN
        // query scans every vector chunk, and through SQLite's small page
        // cache each scan was a pread per page — about a third of the
        // search time in the profile (BENCHMARKS.md).
        conn.pragma_update(None, "mmap_size", MMAP_BYTES)
            .map_err(|e| self.source.failed("cannot set mmap_size", e))?;
        Ok(conn)
    }

    fn acquire(&self) -> Result<Connection> {
        let pooled = self.pool.lock().map(|mut p| p.pop()).unwrap_or(None);
        match pooled {
            Some(c) => Ok(c),
            None => self.connect(),
        }
    }

    fn release(&self, conn: Connection) {
        if let Ok(mut pool) = self.pool.lock() {
            if pool.len() < POOL_SIZE {
                pool.push(conn);
            }
        }
    }
}

/// One row of the search: `original_id`, distance, payload.
type Hit = (Option<String>, f64, Option<String>);

/// Decodes `{"v": 12, "t": "int"}` / `{"v": "doc-1", "t": "str"}`.
fn decode_id(raw: &str) -> Option<VectorId> {
    let v: serde_json::Value = serde_json::from_str(raw).ok()?;
    match (v.get("t")?.as_str()?, v.get("v")?) {
        ("int", serde_json::Value::Number(n)) => n.as_i64().map(VectorId::Int),
        ("str", serde_json::Value::String(s)) => Some(VectorId::Str(s.clone())),
        _ => None,
    }
}

/// The async face of a [`SqliteVecShard`]: its blocking search runs on
/// tokio's blocking pool.
#[derive(Debug)]
struct SqliteVecSearcher(Arc<SqliteVecShard>);

impl ShardSearcher for SqliteVecSearcher {
    fn scan(&self) -> BoxFuture<'_, Result<Vec<StoredVector>>> {
        let shard = self.0.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || shard.scan())
                .await
                .map_err(|e| Error::task("shard scan", e))?
        })
    }

    fn search(&self, query: Arc<[f32]>, top_k: usize) -> BoxFuture<'_, Result<Vec<SearchResult>>> {
        let shard = self.0.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || shard.search(&query, top_k))
                .await
                .map_err(|e| Error::task("shard search", e))?
        })
    }
}

impl SqliteVecShard {
    /// Every vector with its id (blocking).
    pub fn scan(&self) -> Result<Vec<StoredVector>> {
        const SCAN_SQL: &str = "SELECT m.original_id, v.embedding FROM vec_index AS v
            JOIN vec_id_map AS m ON m.internal_id = v.rowid ORDER BY v.rowid";
        let conn = self.acquire()?;
        let rows: rusqlite::Result<Vec<(String, Vec<u8>)>> = conn
            .prepare(SCAN_SQL)
            .and_then(|mut st| st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect());
        let rows = rows.map_err(|e| self.source.failed("scan failed", e))?;
        self.release(conn);
        rows.into_iter()
            .map(|(raw, blob)| {
                let id = decode_id(&raw)
                    .ok_or_else(|| self.source.error(format!("malformed original_id {raw}")))?;
                let v = blob
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                Ok((id, v))
            })
            .collect()
    }

    /// The shard's local top-`top_k`, best first (blocking).
    pub fn search(&self, query: &[f32], top_k: usize) -> Result<Vec<SearchResult>> {
        match &self.resident {
            Some(resident) => self.search_in_memory(resident, query, top_k),
            None => self.search_extension(query, top_k),
        }
    }

    fn search_in_memory(
        &self,
        resident: &Resident,
        query: &[f32],
        top_k: usize,
    ) -> Result<Vec<SearchResult>> {
        let best = resident.vectors.top_k(query, top_k);
        let conn = self.acquire()?;
        let rows: rusqlite::Result<Vec<Hit>> = conn.prepare_cached(ROW_SQL).and_then(|mut st| {
            best.iter()
                .map(|&(distance, row)| {
                    let rowid = resident.rowids.get(row as usize).copied().unwrap_or(-1);
                    let found = st.query_row([rowid], |r| Ok((r.get(0)?, r.get(1)?)));
                    match found {
                        Ok((id, payload)) => Ok((id, f64::from(distance), payload)),
                        Err(rusqlite::Error::QueryReturnedNoRows) => {
                            Ok((None, f64::from(distance), None))
                        }
                        Err(e) => Err(e),
                    }
                })
                .collect()
        });
        let rows = rows.map_err(|e| self.source.failed("search failed", e))?;
        self.release(conn);
        self.results(rows)
    }

    fn search_extension(&self, query: &[f32], top_k: usize) -> Result<Vec<SearchResult>> {
        let conn = self.acquire()?;
        let bytes: Vec<u8> = query.iter().flat_map(|v| v.to_le_bytes()).collect();
        let k =
            i64::try_from(top_k).map_err(|_| Error::InvalidArgument(format!("top_k {top_k}")))?;
        let rows: rusqlite::Result<Vec<Hit>> =
            conn.prepare_cached(SEARCH_SQL).and_then(|mut st| {
                st.query_map(rusqlite::params![bytes, k], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?
                .collect()
            });
        let rows = rows.map_err(|e| self.source.failed("search failed", e))?;
        self.release(conn);
        self.results(rows)
    }

    /// Decodes ids and payloads of the rows found.
    fn results(&self, rows: Vec<Hit>) -> Result<Vec<SearchResult>> {
        rows.into_iter()
            .map(|(id, distance, payload)| {
                let raw =
                    id.ok_or_else(|| self.source.error("vec_id_map has no row for a result"))?;
                let id = decode_id(&raw)
                    .ok_or_else(|| self.source.error(format!("malformed original_id {raw}")))?;
                let payload = match payload {
                    Some(p) => Some(serde_json::from_str(&p).map_err(|e| {
                        self.source
                            .failed(format!("payload of {id} is not JSON"), e)
                    })?),
                    None => None,
                };
                Ok(SearchResult {
                    id,
                    score: distance as f32,
                    payload,
                })
            })
            .collect()
    }
}
