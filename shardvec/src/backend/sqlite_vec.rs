//! The sqlite-vec backend: one `shard.db` per shard.
//!
//! The file is downloaded into the local cache (see [`crate::cache`]) and
//! opened read-only with rusqlite (bundled SQLite) and the sqlite-vec
//! extension. A search finds the top-k rowids one of three ways
//! ([`SqliteVecScan`]):
//!
//! - **in memory** (default): the vectors are copied out of `vec_index`
//!   once, at open, and every search scans them with simsimd's SIMD
//!   kernels ([`crate::flat`]). sqlite-vec's own distance loop is scalar C
//!   (the crate builds it without its AVX path, and has none for cosine);
//!   it was most of the search time and 3× the in-memory floor on cosine
//!   (BENCHMARKS.md). The cost is `dim × 4` bytes per vector of each open
//!   shard, the size of the vectors in the file.
//! - **quantized**: int8 codes of the vectors (`dim` bytes per vector)
//!   select the candidates, a quarter of the bytes per search; a bound
//!   proves each answer equal to the in-memory path's, or that path runs
//!   ([`crate::flat`]). The `f32` copy is dropped once the codes are
//!   built: the few candidates a search rescores are read from the
//!   memory-mapped file ([`vec0_file`](super::vec0_file)), so an open shard
//!   holds about 0.3× the memory of the in-memory path.
//! - **extension**: the `vec0` KNN query (`embedding MATCH ?`), exactly as
//!   the reference reader runs it, with no extra memory.
//!
//! Either way the rowids are then mapped through `vec_id_map` (typed ids,
//! `{"v": 12, "t": "int"}`) and `vec_payloads` (JSON objects; no row = no
//! payload): payload JSON is read and decoded only for the rows returned.
//! Scores are sqlite-vec's (`1 - cos`, plain Euclidean distance) on both
//! paths; the tests check both against the peer's recorded answers.
//!
//! **Filtered searches** (a [`ShardQuery`] with a filter) evaluate the
//! filter over the shard's payloads decoded into columns once
//! ([`crate::payload_index`]), then score only the matching rows: on the
//! in-memory path with the same SIMD select and exact rescore; on the
//! extension path by reading the vectors from `vec_index` and scoring the
//! matching ones with [`sqlite_vec_score`] (sqlite-vec's own arithmetic,
//! see [`crate::flat`]). Both give exactly the top-k of a brute-force scan
//! of the matching rows, with sqlite-vec's scores.
//!
//! Each shard keeps a small pool of read connections with their prepared
//! statements cached, so concurrent searches of one shard do not
//! serialise; they read the file through a memory map.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Once};

use futures::future::BoxFuture;
use rusqlite::{Connection, OpenFlags};
use shardvec_core::{SearchResult, VectorId};

use shardvec_core::filter::{ColumnsBuilder, RowSet};
use shardvec_core::Filter;

use super::vec0_file::Vec0File;
use super::{
    BackendKind, OpenFailure, ShardBackend, ShardQuery, ShardSearcher, ShardSource, StoredVector,
};
use crate::cache::CachedVersion;
use crate::error::{Error, Result};
use crate::flat::{sqlite_vec_score, FlatVectors, TopK};
use crate::payload_index::PayloadIndex;

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

/// Every record's id and payload, by rowid (filter columns).
const RECORDS_SQL: &str = "\
SELECT m.internal_id, m.original_id, p.payload
FROM vec_id_map AS m LEFT JOIN vec_payloads AS p ON p.rowid = m.internal_id";

/// How sqlite-vec shards find their top-k (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SqliteVecScan {
    /// Vectors copied into memory at open, scanned with SIMD kernels
    /// (default).
    #[default]
    InMemory,
    /// Int8 codes of the vectors (a quarter of their size) select the
    /// candidates, which are rescored from the memory-mapped file: fewer
    /// bytes scanned per search and held per open shard, the same answers
    /// (a proof checks each one; see [`crate::flat`]).
    Quantized,
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
            let scan = self.scan;
            source
                .open_cached(files, |version| async move {
                    let path = version.path().join(SHARD_FILE);
                    let src = source.clone();
                    let opened = tokio::task::spawn_blocking(move || {
                        SqliteVecShard::open(&path, &src, scan)
                    })
                    .await
                    .map_err(|e| OpenFailure::Failed(Error::task("shard open", e)))?;
                    match opened {
                        Ok(mut shard) => {
                            shard.version = Some(version);
                            Ok(Arc::new(SqliteVecSearcher(Arc::new(shard)))
                                as Arc<dyn ShardSearcher>)
                        }
                        Err(e) => Err(OpenFailure::classify(e, is_corruption)),
                    }
                })
                .await
        })
    }
}

/// Whether `cause` is SQLite saying the file is damaged (not, say, out of
/// memory, file descriptors or a lock): a cached copy is downloaded again
/// only then.
fn is_corruption(cause: &super::Cause) -> bool {
    use rusqlite::ErrorCode;
    matches!(
        cause.downcast_ref::<rusqlite::Error>(),
        Some(rusqlite::Error::SqliteFailure(f, _))
            if matches!(f.code, ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
    )
}

/// One open sqlite-vec shard.
#[derive(Debug)]
pub struct SqliteVecShard {
    path: PathBuf,
    source: ShardSource,
    pool: Mutex<Vec<Connection>>,
    /// The vectors and their rowids ([`SqliteVecScan::InMemory`],
    /// [`SqliteVecScan::Quantized`]).
    resident: Option<Resident>,
    /// Payload columns, built by the first filtered search (under the
    /// lock: concurrent first searches wait for one build).
    payloads: Mutex<Option<Arc<Payloads>>>,
    /// The cache version read, kept in use while the shard is open.
    version: Option<Arc<CachedVersion>>,
}

/// The payload index of a shard: rows in the resident vectors' order, or,
/// on the extension path (no resident vectors), in `vec_index`'s scan
/// order with the maps between rows and rowids.
#[derive(Debug)]
struct Payloads {
    index: PayloadIndex,
    /// The extension path's rows (`None` with resident vectors, whose
    /// `rowids` already are this map).
    rows: Option<ScanRows>,
}

/// Rows of `vec_index`'s scan and their rowids.
#[derive(Debug)]
struct ScanRows {
    /// Row number of each rowid.
    row_of: HashMap<i64, u32>,
    /// Rowid of each row.
    rowids: Vec<i64>,
}

#[derive(Debug)]
struct Resident {
    vectors: FlatVectors,
    rowids: Vec<i64>,
}

impl SqliteVecShard {
    /// Opens `path` read-only, checks its schema and integrity, and for
    /// [`SqliteVecScan::InMemory`] and [`SqliteVecScan::Quantized`] loads
    /// its vectors. `path` is a shard-cache file: written once, never
    /// modified while open (the quantized scan maps it, see
    /// [`Vec0File`]), so this is not public.
    pub(crate) fn open(
        path: &Path,
        source: &ShardSource,
        scan: SqliteVecScan,
    ) -> Result<SqliteVecShard> {
        register_extension();
        let mut shard = SqliteVecShard {
            path: path.to_path_buf(),
            source: source.clone(),
            pool: Mutex::new(Vec::new()),
            resident: None,
            payloads: Mutex::new(None),
            version: None,
        };
        let conn = shard.connect()?;
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table'")
            .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
            .map_err(|e| source.failed("not a readable SQLite file", e))?;
        for t in ["vec_index", "vec_id_map"] {
            if !tables.iter().any(|n| n == t) {
                return Err(source.damaged(format!("table `{t}` is missing")));
            }
        }
        // Every page read once: b-tree structure and record formats (not
        // index contents, which `integrity_check` would add at many times
        // the cost).
        let check: String = conn
            .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
            .map_err(|e| source.failed("integrity check failed", e))?;
        if check != "ok" {
            return Err(source.damaged(format!("integrity check failed: {check}")));
        }
        match scan {
            SqliteVecScan::InMemory => shard.resident = Some(shard.load(&conn)?),
            SqliteVecScan::Quantized => {
                let mut resident = shard.load(&conn)?;
                resident.vectors.quantize();
                shard.read_in_place(&conn, &mut resident);
                shard.resident = Some(resident);
            }
            SqliteVecScan::Extension => {}
        }
        shard.release(conn);
        Ok(shard)
    }

    /// Drops the `f32` copy of a quantized shard: the rescore pass reads
    /// its few rows per search from the mapped file instead
    /// ([`Vec0File`]). If the file is not laid out as that reader expects,
    /// or a row read there differs from SQLite's reading of it, the copy
    /// stays and a warning says why: the answers are the same either way.
    fn read_in_place(&self, conn: &Connection, resident: &mut Resident) {
        if !resident.vectors.is_quantized() {
            return;
        }
        let shard = self.source.id().0;
        match Vec0File::open(&self.path, conn, &self.source, &resident.rowids) {
            Ok(file) => {
                if !resident.vectors.read_rows_from(Arc::new(file)) {
                    tracing::warn!(
                        shard,
                        "vectors read from the mapped file differ from SQLite's; keeping the f32 copy"
                    );
                }
            }
            Err(e) => tracing::warn!(
                shard,
                error = %e,
                "cannot read the vectors in place; keeping the f32 copy"
            ),
        }
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
            if !read_f32s(blob, self.source.dim, &mut floats) || !vectors.push(&floats) {
                return Err(self.source.damaged(format!(
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

/// `blob` (little-endian `f32`s, as `vec0` stores them) into `out`;
/// `false` if its length is not `dim` floats.
fn read_f32s(blob: &[u8], dim: usize, out: &mut Vec<f32>) -> bool {
    out.clear();
    out.extend(
        blob.chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
    );
    blob.len() == dim * 4
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

    fn search(&self, query: ShardQuery) -> BoxFuture<'_, Result<Vec<SearchResult>>> {
        let shard = self.0.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                shard.search(&query.vector, query.top_k, query.effective_filter())
            })
            .await
            .map_err(|e| Error::task("shard search", e))?
        })
    }

    fn resident_bytes(&self) -> usize {
        self.0.resident_bytes()
    }
}

impl SqliteVecShard {
    /// Bytes of memory the open shard holds beyond its file: the vectors
    /// or their codes, the rowids, and the payload index once a filtered
    /// search built it.
    pub fn resident_bytes(&self) -> usize {
        let resident = self.resident.as_ref().map_or(0, |r| {
            r.vectors.heap_bytes() + r.rowids.capacity() * std::mem::size_of::<i64>()
        });
        // Not waiting for a payload index being built (under this lock):
        // it is counted once built.
        let payloads = match self.payloads.try_lock() {
            Ok(p) => p.as_ref().map_or(0, |p| p.index.heap_bytes()),
            Err(_) => 0,
        };
        resident + payloads
    }

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
                let mut v = Vec::new();
                read_f32s(&blob, self.source.dim, &mut v);
                Ok((id, v))
            })
            .collect()
    }

    /// The shard's local top-`top_k` among the rows matching `filter`,
    /// best first (blocking).
    pub fn search(
        &self,
        query: &[f32],
        top_k: usize,
        filter: Option<&Filter>,
    ) -> Result<Vec<SearchResult>> {
        match (&self.resident, filter) {
            (Some(resident), None) => self.search_in_memory(resident, query, top_k, None),
            (Some(resident), Some(f)) => {
                let rows = self.payloads()?.index.rows(f);
                self.search_in_memory(resident, query, top_k, Some(&rows))
            }
            (None, None) => self.search_extension(query, top_k),
            (None, Some(f)) => self.search_extension_filtered(query, top_k, f),
        }
    }

    /// The payload index, built on first use.
    fn payloads(&self) -> Result<Arc<Payloads>> {
        // Held while building (on a blocking thread): a second first search
        // waits instead of building a second copy.
        let mut slot = self
            .payloads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(p) = slot.as_ref() {
            return Ok(p.clone());
        }
        let built = Arc::new(self.build_payloads()?);
        *slot = Some(built.clone());
        Ok(built)
    }

    /// Decodes every id and payload into columns, rows in the order of
    /// the resident vectors (or of `vec_index`'s scan).
    fn build_payloads(&self) -> Result<Payloads> {
        let fail = |e| self.source.failed("cannot read payloads", e);
        let conn = self.acquire()?;
        let mut records: HashMap<i64, (String, Option<String>)> = HashMap::new();
        {
            let mut st = conn.prepare(RECORDS_SQL).map_err(fail)?;
            let rows = st
                .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get(1)?, r.get(2)?)))
                .map_err(fail)?;
            for row in rows {
                let (rowid, id, payload) = row.map_err(fail)?;
                records.insert(rowid, (id, payload));
            }
        }
        let scanned: Option<Vec<i64>> = match &self.resident {
            Some(_) => None,
            None => Some(
                conn.prepare("SELECT rowid FROM vec_index")
                    .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
                    .map_err(fail)?,
            ),
        };
        self.release(conn);
        let rowids: &[i64] = match (&self.resident, &scanned) {
            (Some(r), _) => &r.rowids,
            (None, Some(s)) => s,
            (None, None) => &[],
        };
        let mut columns = ColumnsBuilder::new();
        for rowid in rowids {
            let (raw, payload) = records
                .get(rowid)
                .ok_or_else(|| self.source.error(format!("vec_id_map has no row {rowid}")))?;
            let id = decode_id(raw)
                .ok_or_else(|| self.source.error(format!("malformed original_id {raw}")))?;
            let payload = payload
                .as_deref()
                .map(|p| self.source.payload(&id, p))
                .transpose()?;
            columns.push(&id, payload.as_ref());
        }
        let index = PayloadIndex::new(columns.finish());
        tracing::debug!(
            shard = self.source.id().0,
            rows = index.len(),
            bytes = index.heap_bytes(),
            "sqlite-vec shard payloads indexed"
        );
        let rows = scanned.map(|rowids| ScanRows {
            row_of: rowids
                .iter()
                .enumerate()
                .map(|(row, &rowid)| (rowid, row as u32))
                .collect(),
            rowids,
        });
        Ok(Payloads { index, rows })
    }

    fn search_in_memory(
        &self,
        resident: &Resident,
        query: &[f32],
        top_k: usize,
        rows: Option<&RowSet>,
    ) -> Result<Vec<SearchResult>> {
        let best = resident.vectors.top_k_in(query, top_k, rows);
        let found = best.iter().map(|&(distance, row)| {
            let rowid = resident.rowids.get(row as usize).copied().unwrap_or(-1);
            (distance, rowid)
        });
        self.by_rowid(found)
    }

    /// Ids and payloads of `(distance, rowid)` hits, in order.
    fn by_rowid(&self, hits: impl Iterator<Item = (f32, i64)>) -> Result<Vec<SearchResult>> {
        let conn = self.acquire()?;
        let rows: rusqlite::Result<Vec<Hit>> = conn.prepare_cached(ROW_SQL).and_then(|mut st| {
            hits.map(|(distance, rowid)| {
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

    /// The extension path with a filter: every vector of `vec_index` is
    /// read, the matching ones scored with sqlite-vec's arithmetic.
    fn search_extension_filtered(
        &self,
        query: &[f32],
        top_k: usize,
        filter: &Filter,
    ) -> Result<Vec<SearchResult>> {
        let payloads = self.payloads()?;
        // Built without resident vectors, as this path is taken: `Some`.
        let Some(scan) = &payloads.rows else {
            return Err(Error::Internal {
                what: "the extension path's rows were not indexed".into(),
                source: None,
            });
        };
        let rows = payloads.index.rows(filter);
        let metric = self.source.metric;
        let fail = |e| self.source.failed("search failed", e);
        let mut best = TopK::new(top_k);
        let mut floats = Vec::with_capacity(self.source.dim);
        let conn = self.acquire()?;
        {
            let mut st = conn.prepare_cached(VECTORS_SQL).map_err(fail)?;
            let mut it = st.query([]).map_err(fail)?;
            while let Some(r) = it.next().map_err(fail)? {
                let rowid: i64 = r.get(0).map_err(fail)?;
                let Some(&row) = scan.row_of.get(&rowid) else {
                    continue;
                };
                if !rows.contains(row as usize) {
                    continue;
                }
                let blob = r.get_ref(1).and_then(|v| Ok(v.as_blob()?)).map_err(fail)?;
                if !read_f32s(blob, query.len(), &mut floats) {
                    return Err(self.source.error(format!(
                        "vector of rowid {rowid} has {} bytes, not {}",
                        blob.len(),
                        query.len() * 4
                    )));
                }
                best.offer(sqlite_vec_score(metric, query, &floats), row);
            }
        }
        self.release(conn);
        let hits = best
            .into_sorted()
            .into_iter()
            .map(|(d, row)| (d, scan.rowids.get(row as usize).copied().unwrap_or(-1)));
        self.by_rowid(hits)
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
                let payload = payload
                    .as_deref()
                    .map(|p| self.source.payload(&id, p))
                    .transpose()?;
                Ok(SearchResult {
                    id,
                    score: distance as f32,
                    payload,
                    shard_id: None,
                })
            })
            .collect()
    }
}
