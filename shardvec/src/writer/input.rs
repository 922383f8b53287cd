//! What the writer reads: records, streamed from files or memory.
//!
//! A [`Record`] is one vector with its id, optional payload, and the
//! routing inputs the EXPLICIT (`shard_id`) and CEL (`routing_context`)
//! strategies need. An [`Input`] names where records come from and can be
//! opened any number of times: CLUSTER training reads it once to sample,
//! then again to write, so files larger than memory work.
//!
//! Formats:
//! - `.npy`: float32 or float64 `[n, dim]`, read row by row. Side files
//!   give the other fields by row: ids (`.npy` int32/int64, or text, one id
//!   per line: a JSON number or string, or a bare word), payloads (JSON
//!   Lines: an object or `null` per line), routing contexts (JSON Lines:
//!   an object per line), shard ids (`.npy` ints or text, one per line).
//! - `.fvecs`: records of `int32 dim` + `dim` float32 (the TexMex format);
//!   same side files.
//! - JSON Lines (`.jsonl`, `.ndjson`): one object per line,
//!   `{"id", "vector", "payload", "shard_id", "routing_context"}`; only
//!   `vector` is required. Blank lines are skipped.
//!
//! Without ids, a record's id is its position (0, 1, ...).

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use shardvec_core::npy::{Dtype, NpyHeader};
use shardvec_core::{RoutingContext, ShardId, VectorId};

use crate::error::{Error, Result};

/// One vector to write.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Its id (int or string; kept as given).
    pub id: VectorId,
    /// The vector.
    pub vector: Vec<f32>,
    /// JSON payload returned with search results.
    pub payload: Option<serde_json::Value>,
    /// The shard, for EXPLICIT snapshots.
    pub shard_id: Option<ShardId>,
    /// Routing inputs, for CEL snapshots.
    pub routing_context: Option<RoutingContext>,
}

impl Record {
    /// A record with only an id and a vector.
    pub fn new(id: impl Into<VectorId>, vector: Vec<f32>) -> Self {
        Record {
            id: id.into(),
            vector,
            payload: None,
            shard_id: None,
            routing_context: None,
        }
    }

    /// Sets the payload.
    pub fn payload(mut self, payload: serde_json::Value) -> Self {
        self.payload = Some(payload);
        self
    }

    /// Sets the shard (EXPLICIT).
    pub fn shard_id(mut self, shard: ShardId) -> Self {
        self.shard_id = Some(shard);
        self
    }

    /// Sets the routing context (CEL).
    pub fn routing_context(mut self, ctx: RoutingContext) -> Self {
        self.routing_context = Some(ctx);
        self
    }
}

/// A stream of records.
pub type Records = Box<dyn Iterator<Item = Result<Record>> + Send>;

/// File formats of [`Input`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    /// NumPy `.npy`.
    Npy,
    /// TexMex `.fvecs`.
    Fvecs,
    /// JSON Lines.
    Jsonl,
}

impl InputFormat {
    /// The format a file name's extension implies.
    pub fn from_path(path: &Path) -> Option<InputFormat> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "npy" => Some(InputFormat::Npy),
            "fvecs" => Some(InputFormat::Fvecs),
            "jsonl" | "ndjson" => Some(InputFormat::Jsonl),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
enum Source {
    File(PathBuf, InputFormat),
    Memory(Arc<[Record]>),
}

/// Where the writer's records come from. Re-openable.
#[derive(Debug, Clone)]
pub struct Input {
    source: Source,
    ids: Option<PathBuf>,
    payloads: Option<PathBuf>,
    routing_contexts: Option<PathBuf>,
    shard_ids: Option<PathBuf>,
}

impl Input {
    /// A file in `format`.
    pub fn file(path: impl Into<PathBuf>, format: InputFormat) -> Self {
        Input::with_source(Source::File(path.into(), format))
    }

    /// A file whose format its extension names (`.npy`, `.fvecs`, `.jsonl`,
    /// `.ndjson`).
    pub fn path(path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        let format = InputFormat::from_path(&path).ok_or_else(|| {
            Error::input(
                path.display().to_string(),
                None,
                "unknown format: expected a .npy, .fvecs, .jsonl or .ndjson file",
            )
        })?;
        Ok(Input::file(path, format))
    }

    /// Records held in memory.
    pub fn memory(records: impl Into<Arc<[Record]>>) -> Self {
        Input::with_source(Source::Memory(records.into()))
    }

    fn with_source(source: Source) -> Self {
        Input {
            source,
            ids: None,
            payloads: None,
            routing_contexts: None,
            shard_ids: None,
        }
    }

    /// Ids by row, for `.npy` and `.fvecs` inputs.
    pub fn ids(mut self, path: impl Into<PathBuf>) -> Self {
        self.ids = Some(path.into());
        self
    }

    /// Payloads by row (JSON Lines), for `.npy` and `.fvecs` inputs.
    pub fn payloads(mut self, path: impl Into<PathBuf>) -> Self {
        self.payloads = Some(path.into());
        self
    }

    /// Routing contexts by row (JSON Lines), for `.npy` and `.fvecs` inputs.
    pub fn routing_contexts(mut self, path: impl Into<PathBuf>) -> Self {
        self.routing_contexts = Some(path.into());
        self
    }

    /// Shard ids by row, for `.npy` and `.fvecs` inputs (EXPLICIT).
    pub fn shard_ids(mut self, path: impl Into<PathBuf>) -> Self {
        self.shard_ids = Some(path.into());
        self
    }

    /// The name used in messages.
    pub fn name(&self) -> String {
        match &self.source {
            Source::File(p, _) => p.display().to_string(),
            Source::Memory(_) => "memory".to_string(),
        }
    }

    /// Number of records, when known without reading them all.
    pub fn len_hint(&self) -> Option<u64> {
        match &self.source {
            Source::Memory(r) => Some(r.len() as u64),
            Source::File(p, InputFormat::Npy) => {
                NpyRows::open(p, &self.name()).ok().map(|r| r.rows as u64)
            }
            Source::File(p, InputFormat::Fvecs) => {
                let dim = fvecs_dim(p, &self.name()).ok()?;
                let len = std::fs::metadata(p).ok()?.len();
                Some(len / (4 + 4 * dim as u64))
            }
            Source::File(_, InputFormat::Jsonl) => None,
        }
    }

    /// Opens a fresh stream of the records.
    pub fn open(&self) -> Result<Records> {
        let name = self.name();
        let side_files = self.ids.is_some()
            || self.payloads.is_some()
            || self.routing_contexts.is_some()
            || self.shard_ids.is_some();
        let base: Records = match &self.source {
            Source::Memory(records) => {
                let records = records.clone();
                Box::new((0..records.len()).map(move |i| Ok(records[i].clone())))
            }
            Source::File(p, InputFormat::Jsonl) => {
                if side_files {
                    return Err(Error::input(
                        name,
                        None,
                        "JSON Lines records carry their own ids, payloads, shard ids and routing contexts; side files apply to .npy and .fvecs inputs",
                    ));
                }
                Box::new(JsonlRecords::open(p, &name)?)
            }
            Source::File(p, InputFormat::Npy) => Box::new(
                NpyRows::open(p, &name)?
                    .enumerate()
                    .map(|(i, v)| v.map(|v| Record::new(i as i64, v))),
            ),
            Source::File(p, InputFormat::Fvecs) => {
                let dim = fvecs_dim(p, &name)?;
                Box::new(
                    FvecsRows::open(p, &name, dim)?
                        .enumerate()
                        .map(|(i, v)| v.map(|v| Record::new(i as i64, v))),
                )
            }
        };
        if !side_files {
            return Ok(base);
        }
        let mut ids = self.ids.as_deref().map(IdLines::open).transpose()?;
        let mut payloads = self.payloads.as_deref().map(JsonLines::open).transpose()?;
        let mut contexts = self
            .routing_contexts
            .as_deref()
            .map(JsonLines::open)
            .transpose()?;
        let mut shards = self.shard_ids.as_deref().map(IdLines::open).transpose()?;
        let mut done = false;
        Ok(Box::new(base.enumerate().map_while(move |(i, rec)| {
            if done {
                return None;
            }
            let r = (|| {
                let mut rec = rec?;
                let row = i as u64;
                if let Some(ids) = ids.as_mut() {
                    rec.id = ids.next_for(row)?;
                }
                if let Some(p) = payloads.as_mut() {
                    let v = p.next_for(row)?;
                    rec.payload = match v {
                        serde_json::Value::Null => None,
                        v @ serde_json::Value::Object(_) => Some(v),
                        other => {
                            return Err(p.error(row, format!("payload {other} is not an object")))
                        }
                    };
                }
                if let Some(c) = contexts.as_mut() {
                    let v = c.next_for(row)?;
                    rec.routing_context = Some(
                        RoutingContext::from_json(&v).map_err(|e| c.error(row, e.to_string()))?,
                    );
                }
                if let Some(s) = shards.as_mut() {
                    rec.shard_id = Some(match s.next_for(row)? {
                        VectorId::Int(n) => {
                            ShardId(u32::try_from(n).map_err(|_| {
                                s.error(row, format!("shard id {n} is out of range"))
                            })?)
                        }
                        VectorId::Str(t) => {
                            return Err(s.error(row, format!("shard id {t:?} is not an integer")))
                        }
                    });
                }
                Ok(rec)
            })();
            done = r.is_err();
            Some(r)
        })))
    }

    /// Dimension of the vectors (from the header, or the first record).
    pub fn dim(&self) -> Result<usize> {
        match &self.source {
            Source::File(p, InputFormat::Npy) => Ok(NpyRows::open(p, &self.name())?.cols),
            Source::File(p, InputFormat::Fvecs) => fvecs_dim(p, &self.name()),
            _ => match self.open()?.next() {
                Some(r) => Ok(r?.vector.len()),
                None => Err(Error::input(self.name(), None, "no records")),
            },
        }
    }
}

fn open_file(path: &Path) -> Result<File> {
    File::open(path).map_err(|e| Error::io(path, e))
}

/// Rows of a float `.npy`, one `Vec<f32>` at a time.
struct NpyRows {
    reader: BufReader<File>,
    name: String,
    rows: usize,
    cols: usize,
    f64: bool,
    next: usize,
    buf: Vec<u8>,
}

impl NpyRows {
    fn open(path: &Path, name: &str) -> Result<NpyRows> {
        let (reader, h) = open_npy(path, name)?;
        let f64 = match h.dtype {
            Dtype::F4 => false,
            Dtype::F8 => true,
            d => {
                return Err(Error::input(
                    name,
                    None,
                    format!("vectors must be <f4 or <f8, not {}", d.descr()),
                ))
            }
        };
        if h.ndim != 2 {
            return Err(Error::input(
                name,
                None,
                "vectors must be a 2-D array [n, dim]",
            ));
        }
        Ok(NpyRows {
            reader,
            name: name.to_string(),
            rows: h.rows,
            cols: h.cols,
            f64,
            next: 0,
            buf: vec![0; h.cols * h.dtype.size()],
        })
    }
}

/// Opens an `.npy` file, checks its size against the header and leaves the
/// reader at the first data byte.
fn open_npy(path: &Path, name: &str) -> Result<(BufReader<File>, NpyHeader)> {
    let mut f = open_file(path)?;
    let len = f.metadata().map_err(|e| Error::io(path, e))?.len();
    // NumPy headers are a few hundred bytes; 1 MiB covers any 2-D array.
    let mut head = Vec::new();
    (&mut f)
        .take(1 << 20)
        .read_to_end(&mut head)
        .map_err(|e| Error::io(path, e))?;
    let h = NpyHeader::parse(&head, name)?;
    let data_len = h
        .data_len()
        .ok_or_else(|| Error::input(name, None, "shape overflows"))?;
    if len != (h.data_offset + data_len) as u64 {
        return Err(Error::input(
            name,
            None,
            format!(
                "shape ({}, {}) needs {} data bytes, file has {}",
                h.rows,
                h.cols,
                data_len,
                len.saturating_sub(h.data_offset as u64)
            ),
        ));
    }
    f.seek(SeekFrom::Start(h.data_offset as u64))
        .map_err(|e| Error::io(path, e))?;
    Ok((BufReader::with_capacity(1 << 20, f), h))
}

impl Iterator for NpyRows {
    type Item = Result<Vec<f32>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.rows {
            return None;
        }
        let row = self.next;
        self.next += 1;
        if let Err(e) = self.reader.read_exact(&mut self.buf) {
            self.next = self.rows;
            return Some(Err(Error::input(
                &self.name,
                Some(row as u64),
                e.to_string(),
            )));
        }
        let v = if self.f64 {
            self.buf
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().unwrap_or_default()) as f32)
                .collect()
        } else {
            self.buf
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap_or_default()))
                .collect()
        };
        Some(Ok(v))
    }
}

fn fvecs_dim(path: &Path, name: &str) -> Result<usize> {
    let mut b = [0u8; 4];
    open_file(path)?
        .read_exact(&mut b)
        .map_err(|_| Error::input(name, None, "empty .fvecs file"))?;
    let d = i32::from_le_bytes(b);
    if d <= 0 || d > 1 << 16 {
        return Err(Error::input(
            name,
            Some(0),
            format!("dimension {d} is out of range"),
        ));
    }
    Ok(d as usize)
}

/// Records of an `.fvecs` file.
struct FvecsRows {
    reader: BufReader<File>,
    name: String,
    dim: usize,
    row: u64,
    done: bool,
}

impl FvecsRows {
    fn open(path: &Path, name: &str, dim: usize) -> Result<FvecsRows> {
        Ok(FvecsRows {
            reader: BufReader::with_capacity(1 << 20, open_file(path)?),
            name: name.to_string(),
            dim,
            row: 0,
            done: false,
        })
    }
}

impl Iterator for FvecsRows {
    type Item = Result<Vec<f32>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let row = self.row;
        self.row += 1;
        let mut fail = |reason: String| {
            self.done = true;
            Some(Err(Error::input(&self.name, Some(row), reason)))
        };
        let mut d = [0u8; 4];
        match self.reader.read(&mut d[..1]) {
            Ok(0) => {
                self.done = true;
                return None;
            }
            Ok(_) => {}
            Err(e) => return fail(e.to_string()),
        }
        if let Err(e) = self.reader.read_exact(&mut d[1..]) {
            return fail(format!("truncated record header: {e}"));
        }
        let dim = i32::from_le_bytes(d);
        if dim != self.dim as i32 {
            return fail(format!(
                "dimension {dim}, the first record has {}",
                self.dim
            ));
        }
        let mut buf = vec![0u8; self.dim * 4];
        if let Err(e) = self.reader.read_exact(&mut buf) {
            return fail(format!("truncated record: {e}"));
        }
        Some(Ok(buf
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap_or_default()))
            .collect()))
    }
}

/// One line of a JSON Lines input.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonlRecord {
    id: Option<serde_json::Value>,
    vector: Vec<f64>,
    payload: Option<serde_json::Value>,
    shard_id: Option<u32>,
    routing_context: Option<serde_json::Value>,
}

struct JsonlRecords {
    lines: std::io::Lines<BufReader<File>>,
    name: String,
    row: u64,
    done: bool,
}

impl JsonlRecords {
    fn open(path: &Path, name: &str) -> Result<JsonlRecords> {
        Ok(JsonlRecords {
            lines: BufReader::with_capacity(1 << 20, open_file(path)?).lines(),
            name: name.to_string(),
            row: 0,
            done: false,
        })
    }

    fn parse(&self, line: &str, row: u64) -> Result<Record> {
        let err = |reason: String| Error::input(&self.name, Some(row), reason);
        let r: JsonlRecord = serde_json::from_str(line).map_err(|e| err(e.to_string()))?;
        let id = match r.id {
            None => VectorId::Int(row as i64),
            Some(v) => {
                json_id(&v).ok_or_else(|| err(format!("id {v} is not an integer or a string")))?
            }
        };
        let payload = match r.payload {
            None | Some(serde_json::Value::Null) => None,
            Some(v @ serde_json::Value::Object(_)) => Some(v),
            Some(other) => return Err(err(format!("payload {other} is not an object"))),
        };
        let routing_context = r
            .routing_context
            .map(|v| RoutingContext::from_json(&v))
            .transpose()
            .map_err(|e| err(e.to_string()))?;
        Ok(Record {
            id,
            vector: r.vector.into_iter().map(|x| x as f32).collect(),
            payload,
            shard_id: r.shard_id.map(ShardId),
            routing_context,
        })
    }
}

impl Iterator for JsonlRecords {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let line = match self.lines.next()? {
                Ok(l) => l,
                Err(e) => {
                    self.done = true;
                    return Some(Err(Error::input(&self.name, Some(self.row), e.to_string())));
                }
            };
            if line.trim().is_empty() {
                continue;
            }
            let row = self.row;
            self.row += 1;
            let r = self.parse(&line, row);
            self.done = r.is_err();
            return Some(r);
        }
        None
    }
}

/// An id from JSON: an integer or a string.
fn json_id(v: &serde_json::Value) -> Option<VectorId> {
    match v {
        serde_json::Value::Number(n) => n.as_i64().map(VectorId::Int),
        serde_json::Value::String(s) => Some(VectorId::Str(s.clone())),
        _ => None,
    }
}

/// Ids (or shard ids) by row: an int `.npy` or a text file.
enum IdLines {
    Npy {
        reader: BufReader<File>,
        wide: bool,
        rows: u64,
        name: String,
    },
    Text(JsonLines),
}

impl IdLines {
    fn open(path: &Path) -> Result<IdLines> {
        let name = path.display().to_string();
        if InputFormat::from_path(path) == Some(InputFormat::Npy) {
            let (reader, h) = open_npy(path, &name)?;
            let wide = match h.dtype {
                Dtype::I8 => true,
                Dtype::I4 => false,
                d => {
                    return Err(Error::input(
                        name,
                        None,
                        format!("ids must be <i4 or <i8, not {}", d.descr()),
                    ))
                }
            };
            if h.cols != 1 {
                return Err(Error::input(name, None, "ids must be a 1-D array"));
            }
            return Ok(IdLines::Npy {
                reader,
                wide,
                rows: h.rows as u64,
                name,
            });
        }
        Ok(IdLines::Text(JsonLines::open_lenient(path)?))
    }

    fn error(&self, row: u64, reason: String) -> Error {
        match self {
            IdLines::Npy { name, .. } => Error::input(name, Some(row), reason),
            IdLines::Text(t) => t.error(row, reason),
        }
    }

    fn next_for(&mut self, row: u64) -> Result<VectorId> {
        match self {
            IdLines::Npy {
                reader,
                wide,
                rows,
                name,
            } => {
                if row >= *rows {
                    return Err(Error::input(
                        name.as_str(),
                        Some(row),
                        format!("has {rows} rows, fewer than the vectors"),
                    ));
                }
                let mut b = [0u8; 8];
                let n = if *wide { 8 } else { 4 };
                reader
                    .read_exact(&mut b[..n])
                    .map_err(|e| Error::input(name.as_str(), Some(row), e.to_string()))?;
                Ok(VectorId::Int(if *wide {
                    i64::from_le_bytes(b)
                } else {
                    i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                }))
            }
            IdLines::Text(t) => {
                let v = t.next_for(row)?;
                json_id(&v)
                    .ok_or_else(|| t.error(row, format!("{v} is not an integer or a string")))
            }
        }
    }
}

/// One JSON value per line (blank lines are not skipped: rows align).
struct JsonLines {
    lines: std::io::Lines<BufReader<File>>,
    name: String,
    /// Bare words that are not JSON become strings (id files).
    lenient: bool,
}

impl JsonLines {
    fn open(path: &Path) -> Result<JsonLines> {
        Ok(JsonLines {
            lines: BufReader::new(open_file(path)?).lines(),
            name: path.display().to_string(),
            lenient: false,
        })
    }

    fn open_lenient(path: &Path) -> Result<JsonLines> {
        let mut j = JsonLines::open(path)?;
        j.lenient = true;
        Ok(j)
    }

    fn error(&self, row: u64, reason: String) -> Error {
        Error::input(&self.name, Some(row), reason)
    }

    fn next_for(&mut self, row: u64) -> Result<serde_json::Value> {
        let line = match self.lines.next() {
            Some(Ok(l)) => l,
            Some(Err(e)) => return Err(self.error(row, e.to_string())),
            None => return Err(self.error(row, "has fewer lines than the vectors".to_string())),
        };
        match serde_json::from_str(&line) {
            Ok(v) => Ok(v),
            Err(_) if self.lenient && !line.trim().is_empty() => {
                Ok(serde_json::Value::String(line.trim().to_string()))
            }
            Err(e) => Err(self.error(row, e.to_string())),
        }
    }
}
