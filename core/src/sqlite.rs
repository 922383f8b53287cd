//! A small read-only reader of the SQLite file format.
//!
//! Manifests are SQLite database images (Python's `Connection.serialize()`).
//! Reading three small tables does not justify linking an SQLite engine (C,
//! and unavailable in `no_std`/`wasm32v1-none`), and no maintained crate
//! reads the file format without std, so this module implements the part of
//! <https://www.sqlite.org/fileformat2.html> that a table scan needs:
//!
//! - the 100-byte database header (page size, reserved bytes, encoding);
//! - table b-trees: interior pages (`0x05`) and leaf pages (`0x0d`);
//! - payloads that spill into overflow page chains;
//! - records and every serial type (NULL, 1–8 byte integers, float64, the
//!   constants 0 and 1, blobs, text);
//! - `sqlite_schema`, and the `CREATE TABLE` statements in it, for column
//!   names and `INTEGER PRIMARY KEY` columns (aliases of the rowid: the record
//!   stores NULL there and the value is the cell's rowid).
//!
//! Not supported (an [`Error::UnsupportedSqlite`]): UTF-16 databases,
//! `WITHOUT ROWID` and virtual tables. Indexes, the freelist and pointer-map
//! pages are never read, so they need no support.
//!
//! Every read is bounds-checked: a hostile image yields an error, never a
//! panic or an unbounded loop (page visits are capped by the page count), and
//! the records decoded by one scan never add up to more bytes than the image
//! (cells shared between pages or looped overflow chains are caught).

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use alloc::{format, vec};

use crate::error::{Error, Result};

/// The 16-byte magic every SQLite database starts with.
pub const MAGIC: &[u8; 16] = b"SQLite format 3\0";

const HEADER_LEN: usize = 100;
const MAX_DEPTH: usize = 64;

/// A value read from a record.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// 64-bit signed integer.
    Integer(i64),
    /// IEEE float64.
    Real(f64),
    /// UTF-8 text.
    Text(String),
    /// Raw bytes.
    Blob(Vec<u8>),
}

impl Value {
    /// The SQLite type name, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "NULL",
            Value::Integer(_) => "INTEGER",
            Value::Real(_) => "REAL",
            Value::Text(_) => "TEXT",
            Value::Blob(_) => "BLOB",
        }
    }
}

/// An open, read-only database image borrowed from a byte slice.
#[derive(Debug, Clone, Copy)]
pub struct Database<'a> {
    data: &'a [u8],
    page_size: usize,
    usable: usize,
    page_count: u32,
}

/// One row of `sqlite_schema`.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaEntry {
    /// `table`, `index`, `view` or `trigger`.
    pub kind: String,
    /// Object name.
    pub name: String,
    /// Table the object belongs to.
    pub tbl_name: String,
    /// Root page of its b-tree (0 for views, triggers and virtual tables).
    pub root_page: u32,
    /// The `CREATE` statement, if any.
    pub sql: Option<String>,
}

/// A column of a table, from its `CREATE TABLE` statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Column name (unquoted).
    pub name: String,
    /// Declared type, upper-cased (empty if none).
    pub decl_type: String,
    /// `INTEGER PRIMARY KEY`: an alias of the rowid.
    pub rowid_alias: bool,
}

/// A table: its root page and columns.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Table name.
    pub name: String,
    /// Root page of the table b-tree.
    pub root_page: u32,
    /// Columns in declaration order.
    pub columns: Vec<Column>,
}

/// One row of a table: its rowid and one value per column (rowid aliases
/// filled in with the rowid).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The row's rowid.
    pub rowid: i64,
    /// Values in column order.
    pub values: Vec<Value>,
}

impl<'a> Database<'a> {
    /// Checks the header of `data` and opens it.
    pub fn open(data: &'a [u8]) -> Result<Database<'a>> {
        if data.len() < HEADER_LEN || &data[..16] != MAGIC {
            return Err(Error::NotSqlite(
                "missing the 16-byte magic `SQLite format 3\\0`",
            ));
        }
        let raw = u16::from_be_bytes([data[16], data[17]]);
        let page_size = match raw {
            1 => 65536,
            n if n >= 512 && n.is_power_of_two() => usize::from(n),
            _ => return Err(Error::corrupt(0, format!("invalid page size {raw}"))),
        };
        let reserved = usize::from(data[20]);
        let usable = page_size - reserved;
        if usable < 480 {
            return Err(Error::corrupt(
                0,
                format!("usable page size {usable} < 480"),
            ));
        }
        match u32::from_be_bytes([data[56], data[57], data[58], data[59]]) {
            0 | 1 => {}
            2 | 3 => return Err(Error::UnsupportedSqlite("UTF-16 text encoding".to_string())),
            n => return Err(Error::corrupt(0, format!("invalid text encoding {n}"))),
        }
        if !data.len().is_multiple_of(page_size) {
            return Err(Error::corrupt(
                0,
                format!(
                    "image size {} is not a multiple of the page size {page_size}",
                    data.len()
                ),
            ));
        }
        let page_count = u32::try_from(data.len() / page_size)
            .map_err(|_| Error::corrupt(0, "image has more than 2^32 pages"))?;
        Ok(Database {
            data,
            page_size,
            usable,
            page_count,
        })
    }

    /// Page size in bytes.
    pub fn page_size(&self) -> usize {
        self.page_size
    }

    /// Number of pages in the image.
    pub fn page_count(&self) -> u32 {
        self.page_count
    }

    fn page(&self, n: u32) -> Result<&'a [u8]> {
        if n == 0 || n > self.page_count {
            return Err(Error::corrupt(
                n,
                format!("page number out of range 1..={}", self.page_count),
            ));
        }
        let start = (n as usize - 1) * self.page_size;
        Ok(&self.data[start..start + self.page_size])
    }

    /// Reads `sqlite_schema` (page 1).
    pub fn schema(&self) -> Result<Vec<SchemaEntry>> {
        let mut out = Vec::new();
        self.scan(1, |_, rec| {
            let text = |i: usize| match rec.get(i) {
                Some(Value::Text(s)) => Ok(s.clone()),
                other => Err(Error::corrupt(
                    1,
                    format!("sqlite_schema column {i} is {other:?}, expected TEXT"),
                )),
            };
            let root_page = match rec.get(3) {
                Some(Value::Integer(n)) => u32::try_from(*n)
                    .map_err(|_| Error::corrupt(1, format!("root page {n} out of range")))?,
                Some(Value::Null) | None => 0,
                Some(v) => {
                    return Err(Error::corrupt(
                        1,
                        format!("sqlite_schema rootpage is {}", v.type_name()),
                    ))
                }
            };
            let sql = match rec.get(4) {
                Some(Value::Text(s)) => Some(s.clone()),
                _ => None,
            };
            out.push(SchemaEntry {
                kind: text(0)?,
                name: text(1)?,
                tbl_name: text(2)?,
                root_page,
                sql,
            });
            Ok(())
        })?;
        Ok(out)
    }

    /// Finds table `name` (case-insensitive, as SQL) and parses its columns.
    pub fn table(&self, name: &str) -> Result<Table> {
        let entry = self
            .schema()?
            .into_iter()
            .find(|e| e.kind == "table" && e.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| Error::MissingTable(name.to_string()))?;
        let sql = entry.sql.as_deref().unwrap_or("");
        let columns = parse_create_table(sql)?;
        if entry.root_page == 0 {
            return Err(Error::UnsupportedSqlite(format!(
                "table `{}` has no b-tree (virtual table?)",
                entry.name
            )));
        }
        Ok(Table {
            name: entry.name,
            root_page: entry.root_page,
            columns,
        })
    }

    /// Reads every row of `table` in rowid order.
    pub fn rows(&self, table: &Table) -> Result<Vec<Row>> {
        let mut rows = Vec::new();
        let n = table.columns.len();
        self.scan(table.root_page, |rowid, mut values| {
            // Rows written before an `ALTER TABLE ADD COLUMN` are shorter;
            // the missing trailing columns read as NULL.
            values.resize(n.max(values.len()), Value::Null);
            values.truncate(n);
            for (i, col) in table.columns.iter().enumerate() {
                if col.rowid_alias {
                    values[i] = Value::Integer(rowid);
                }
            }
            rows.push(Row { rowid, values });
            Ok(())
        })?;
        Ok(rows)
    }

    /// Walks the table b-tree rooted at `root` in key order and calls `f`
    /// with each row's rowid and decoded record.
    pub fn scan(&self, root: u32, mut f: impl FnMut(i64, Vec<Value>) -> Result<()>) -> Result<()> {
        self.scan_extents(root, |rowid, payload| {
            let record = payload.to_vec(self.data);
            f(rowid, parse_record(&record, payload.page)?)
        })
    }

    /// Walks the table b-tree rooted at `root` in key order and calls `f`
    /// with each row's rowid and where its payload lies in the image,
    /// without copying it: a reader of large payloads (a sqlite-vec
    /// chunk's vectors) reads the parts it needs in place
    /// ([`PayloadExtents::read_at`]).
    pub fn scan_extents(
        &self,
        root: u32,
        mut f: impl FnMut(i64, PayloadExtents) -> Result<()>,
    ) -> Result<()> {
        // Depth-first with an explicit stack; `visits` bounds the work on
        // images whose child pointers form a cycle. Every payload byte is
        // stored once in the image, so the payloads of one scan cannot add up
        // to more than the image: `budget` stops images whose cells or
        // overflow chains are shared or looped from costing unbounded time
        // and memory.
        let mut stack: Vec<(u32, usize)> = vec![(root, 0)];
        let mut visits: u64 = 0;
        let mut budget = self.data.len();
        while let Some((pgno, depth)) = stack.pop() {
            visits += 1;
            if visits > u64::from(self.page_count) {
                return Err(Error::corrupt(
                    pgno,
                    "b-tree visits more pages than the image has",
                ));
            }
            if depth > MAX_DEPTH {
                return Err(Error::corrupt(pgno, "b-tree deeper than 64 levels"));
            }
            let page = self.page(pgno)?;
            let hdr = if pgno == 1 { HEADER_LEN } else { 0 };
            let kind = *page
                .get(hdr)
                .ok_or_else(|| Error::corrupt(pgno, "page header out of bounds"))?;
            let ncells = usize::from(be16(page, hdr + 3, pgno)?);
            match kind {
                0x0d => {
                    let ptrs = hdr + 8;
                    for i in 0..ncells {
                        let off = usize::from(be16(page, ptrs + 2 * i, pgno)?);
                        let (rowid, payload) = self.leaf_cell(pgno, off, &mut budget)?;
                        f(rowid, payload)?;
                    }
                }
                0x05 => {
                    let right = be32(page, hdr + 8, pgno)?;
                    let ptrs = hdr + 12;
                    // Push children so the leftmost is popped first.
                    stack.push((right, depth + 1));
                    for i in (0..ncells).rev() {
                        let off = usize::from(be16(page, ptrs + 2 * i, pgno)?);
                        let child = be32(page, off, pgno)?;
                        stack.push((child, depth + 1));
                    }
                }
                0x02 | 0x0a => {
                    return Err(Error::corrupt(
                        pgno,
                        "index b-tree page where a table page was expected",
                    ))
                }
                other => {
                    return Err(Error::corrupt(
                        pgno,
                        format!("invalid b-tree page type {other:#04x}"),
                    ))
                }
            }
        }
        Ok(())
    }

    /// Decodes a table-leaf cell at `off` of page `pgno`: its rowid and
    /// where its payload lies (the local part, then the overflow chain
    /// when the payload spills).
    fn leaf_cell(
        &self,
        pgno: u32,
        off: usize,
        budget: &mut usize,
    ) -> Result<(i64, PayloadExtents)> {
        let page = self.page(pgno)?;
        let page_start = (pgno as usize - 1) * self.page_size;
        let (payload_len, n1) = varint(page, off, pgno)?;
        let (rowid, n2) = varint(page, off + n1, pgno)?;
        let start = off + n1 + n2;
        let payload_len = usize::try_from(payload_len)
            .ok()
            .filter(|&p| p <= *budget)
            .ok_or_else(|| {
                Error::corrupt(
                    pgno,
                    format!(
                        "records add up to more than the image's {} bytes",
                        self.data.len()
                    ),
                )
            })?;
        *budget -= payload_len;
        let u = self.usable;
        // Local payload size for table leaves (fileformat2 §1.6).
        let max_local = u - 35;
        let min_local = (u - 12) * 32 / 255 - 23;
        let local = if payload_len <= max_local {
            payload_len
        } else {
            let k = min_local + (payload_len - min_local) % (u - 4);
            if k <= max_local {
                k
            } else {
                min_local
            }
        };
        if page.get(start..start + local).is_none() {
            return Err(Error::corrupt(pgno, "cell payload runs past the page"));
        }
        let mut payload = PayloadExtents {
            len: payload_len,
            page: pgno,
            pieces: vec![Piece {
                at: 0,
                image: page_start + start,
                len: local,
            }],
        };
        if local < payload_len {
            let mut next = be32(page, start + local, pgno)?;
            let mut hops: u32 = 0;
            let mut have = local;
            while have < payload_len {
                hops += 1;
                if next == 0 || hops > self.page_count {
                    return Err(Error::corrupt(
                        pgno,
                        "overflow chain ends before the payload does",
                    ));
                }
                let ov = self.page(next)?;
                // Each overflow page: the next page's number, then content.
                let take = (payload_len - have).min(u - 4);
                payload.pieces.push(Piece {
                    at: have,
                    image: (next as usize - 1) * self.page_size + 4,
                    len: take,
                });
                have += take;
                next = be32(ov, 0, next)?;
            }
        }
        Ok((rowid as i64, payload))
    }
}

/// Where one row's payload lies in a database image: its byte ranges in
/// payload order (the cell's local part, then each overflow page's
/// content), from [`Database::scan_extents`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadExtents {
    len: usize,
    /// The leaf page of the cell (for errors).
    page: u32,
    /// Non-empty; `pieces[i].at` is the sum of the lengths before it.
    pieces: Vec<Piece>,
}

/// One contiguous part of a payload: payload bytes `at..at + len` are
/// image bytes `image..image + len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Piece {
    at: usize,
    image: usize,
    len: usize,
}

impl PayloadExtents {
    /// Payload length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The leaf page holding the cell.
    pub fn page(&self) -> u32 {
        self.page
    }

    /// Bytes this description holds on the heap.
    pub fn heap_bytes(&self) -> usize {
        self.pieces.capacity() * core::mem::size_of::<Piece>()
    }

    /// Copies payload bytes `at..at + out.len()` out of `image` (the bytes
    /// the [`Database`] was opened on); `false` if they are not all in the
    /// payload and the image.
    pub fn read_at(&self, image: &[u8], at: usize, out: &mut [u8]) -> bool {
        match at.checked_add(out.len()) {
            Some(end) if end <= self.len => {}
            _ => return false,
        }
        // The pieces are in payload order: the first one ending after `at`.
        let mut i = self.pieces.partition_point(|p| p.at + p.len <= at);
        let mut done = 0;
        while done < out.len() {
            let Some(p) = self.pieces.get(i) else {
                return false;
            };
            let from = at + done - p.at;
            let take = (p.len - from).min(out.len() - done);
            let Some(src) = image.get(p.image + from..p.image + from + take) else {
                return false;
            };
            out[done..done + take].copy_from_slice(src);
            done += take;
            i += 1;
        }
        true
    }

    /// The whole payload, copied out of `image` (the bytes the
    /// [`Database`] was opened on, which hold every piece: the scan
    /// checked them).
    pub fn to_vec(&self, image: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len);
        for p in &self.pieces {
            if let Some(src) = image.get(p.image..p.image + p.len) {
                out.extend_from_slice(src);
            }
        }
        out
    }

    /// Where column `column` of the record this payload holds lies:
    /// `(payload offset, length)`, read from the record header alone;
    /// `None` if the record has fewer columns.
    pub fn column_span(&self, image: &[u8], column: usize) -> Result<Option<(usize, usize)>> {
        let pgno = self.page;
        let mut first = [0u8; 9];
        let n = self.len.min(first.len());
        if !self.read_at(image, 0, &mut first[..n]) {
            return Err(Error::corrupt(pgno, "record header out of bounds"));
        }
        let (hdr_len, _) = varint(&first[..n], 0, pgno)?;
        let hdr_len = usize::try_from(hdr_len)
            .ok()
            .filter(|&h| h <= self.len)
            .ok_or_else(|| Error::corrupt(pgno, "record header length out of bounds"))?;
        let mut header = vec![0u8; hdr_len];
        if !self.read_at(image, 0, &mut header) {
            return Err(Error::corrupt(pgno, "record header out of bounds"));
        }
        let (_, mut pos) = varint(&header, 0, pgno)?;
        if hdr_len < pos {
            return Err(Error::corrupt(pgno, "record header length out of bounds"));
        }
        let mut body = hdr_len;
        let mut index = 0;
        while pos < hdr_len {
            let (st, n) = varint(&header, pos, pgno)?;
            pos += n;
            let len = serial_len(st, pgno)?;
            if body.checked_add(len).is_none_or(|end| end > self.len) {
                return Err(Error::corrupt(pgno, "record value runs past the payload"));
            }
            if index == column {
                return Ok(Some((body, len)));
            }
            body += len;
            index += 1;
        }
        Ok(None)
    }
}

fn be16(b: &[u8], off: usize, pgno: u32) -> Result<u16> {
    b.get(off..off + 2)
        .map(|s| u16::from_be_bytes([s[0], s[1]]))
        .ok_or_else(|| Error::corrupt(pgno, format!("offset {off} out of bounds")))
}

fn be32(b: &[u8], off: usize, pgno: u32) -> Result<u32> {
    b.get(off..off + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| Error::corrupt(pgno, format!("offset {off} out of bounds")))
}

/// Reads an SQLite varint (1–9 bytes, big-endian, 7 bits a byte; the ninth
/// byte contributes all 8 bits). Returns the value and its length.
pub fn varint(b: &[u8], off: usize, pgno: u32) -> Result<(u64, usize)> {
    let mut v: u64 = 0;
    for i in 0..9 {
        let byte = *b
            .get(off + i)
            .ok_or_else(|| Error::corrupt(pgno, "varint runs past the end"))?;
        if i == 8 {
            return Ok(((v << 8) | u64::from(byte), 9));
        }
        v = (v << 7) | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            return Ok((v, i + 1));
        }
    }
    unreachable!("the loop returns by the ninth byte")
}

/// Decodes a record (header of serial types, then the body).
pub fn parse_record(rec: &[u8], pgno: u32) -> Result<Vec<Value>> {
    let (hdr_len, mut pos) = varint(rec, 0, pgno)?;
    let hdr_len = usize::try_from(hdr_len)
        .ok()
        .filter(|&h| h <= rec.len() && h >= pos)
        .ok_or_else(|| Error::corrupt(pgno, "record header length out of bounds"))?;
    let mut body = hdr_len;
    let mut values = Vec::new();
    while pos < hdr_len {
        let (st, n) = varint(&rec[..hdr_len], pos, pgno)?;
        pos += n;
        let (value, len) = decode_value(st, rec, body, pgno)?;
        body += len;
        values.push(value);
    }
    Ok(values)
}

/// Bytes a value of serial type `st` takes in a record's body.
fn serial_len(st: u64, pgno: u32) -> Result<usize> {
    match st {
        0 | 8 | 9 => Ok(0),
        1..=4 => Ok(st as usize),
        5 => Ok(6),
        6 | 7 => Ok(8),
        10 | 11 => Err(Error::corrupt(pgno, format!("reserved serial type {st}"))),
        n => {
            usize::try_from((n - 12) / 2).map_err(|_| Error::corrupt(pgno, "record value too long"))
        }
    }
}

fn decode_value(st: u64, rec: &[u8], at: usize, pgno: u32) -> Result<(Value, usize)> {
    let len = serial_len(st, pgno)?;
    let bytes = rec
        .get(at..at.saturating_add(len))
        .ok_or_else(|| Error::corrupt(pgno, "record value runs past the payload"))?;
    let value = match st {
        0 => Value::Null,
        1..=6 => {
            // Sign-extend a big-endian two's-complement integer.
            let mut v: i64 = if bytes[0] & 0x80 != 0 { -1 } else { 0 };
            for &b in bytes {
                v = (v << 8) | i64::from(b);
            }
            Value::Integer(v)
        }
        7 => {
            let mut a = [0u8; 8];
            a.copy_from_slice(bytes);
            Value::Real(f64::from_be_bytes(a))
        }
        8 => Value::Integer(0),
        9 => Value::Integer(1),
        n if n % 2 == 0 => Value::Blob(bytes.to_vec()),
        _ => {
            let s = core::str::from_utf8(bytes)
                .map_err(|_| Error::corrupt(pgno, "TEXT value is not valid UTF-8"))?;
            Value::Text(s.to_string())
        }
    };
    Ok((value, len))
}

// ---------------------------------------------------------------------------
// CREATE TABLE parsing
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// Bare word or quoted identifier, unquoted.
    Word(String, bool),
    /// String literal.
    Str,
    /// Punctuation character.
    Punct(char),
}

fn tokenize(sql: &str) -> Result<Vec<Tok>> {
    let bad = |why: &str| Error::UnsupportedSqlite(format!("cannot parse `{sql}`: {why}"));
    let mut toks = Vec::new();
    let mut chars = sql.char_indices().peekable();
    while let Some(&(_, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '-' && sql[chars.peek().map_or(0, |p| p.0)..].starts_with("--") {
            for (_, c) in chars.by_ref() {
                if c == '\n' {
                    break;
                }
            }
        } else if c == '/' && sql[chars.peek().map_or(0, |p| p.0)..].starts_with("/*") {
            chars.next();
            chars.next();
            let mut prev = ' ';
            for (_, c) in chars.by_ref() {
                if prev == '*' && c == '/' {
                    break;
                }
                prev = c;
            }
        } else if c == '"' || c == '`' || c == '[' || c == '\'' {
            let close = if c == '[' { ']' } else { c };
            chars.next();
            let mut s = String::new();
            loop {
                match chars.next() {
                    None => return Err(bad("unterminated quote")),
                    Some((_, ch)) if ch == close => {
                        // A doubled quote is an escaped quote (not for `[`).
                        if close != ']' && chars.peek().map(|p| p.1) == Some(close) {
                            chars.next();
                            s.push(close);
                        } else {
                            break;
                        }
                    }
                    Some((_, ch)) => s.push(ch),
                }
            }
            toks.push(if c == '\'' {
                Tok::Str
            } else {
                Tok::Word(s, true)
            });
        } else if c.is_alphanumeric() || c == '_' || c == '$' {
            let mut s = String::new();
            while let Some(&(_, ch)) = chars.peek() {
                if ch.is_alphanumeric() || ch == '_' || ch == '$' || ch == '.' {
                    s.push(ch);
                    chars.next();
                } else {
                    break;
                }
            }
            toks.push(Tok::Word(s, false));
        } else {
            toks.push(Tok::Punct(c));
            chars.next();
        }
    }
    Ok(toks)
}

fn is_kw(t: &Tok, kw: &str) -> bool {
    matches!(t, Tok::Word(w, false) if w.eq_ignore_ascii_case(kw))
}

/// Parses the column list of a `CREATE TABLE` statement.
pub fn parse_create_table(sql: &str) -> Result<Vec<Column>> {
    let unsupported = |why: &str| Error::UnsupportedSqlite(format!("{why}: `{sql}`"));
    let toks = tokenize(sql)?;
    if toks.len() < 3 || !is_kw(&toks[0], "CREATE") {
        return Err(unsupported("not a CREATE TABLE statement"));
    }
    if toks.iter().take(3).any(|t| is_kw(t, "VIRTUAL")) {
        return Err(unsupported("virtual tables cannot be read"));
    }
    let open = toks
        .iter()
        .position(|t| *t == Tok::Punct('('))
        .ok_or_else(|| unsupported("CREATE TABLE without a column list"))?;
    // Split the parenthesised body into top-level comma-separated items.
    let mut items: Vec<&[Tok]> = Vec::new();
    let mut depth = 0usize;
    let mut start = open + 1;
    let mut close = None;
    for (i, t) in toks.iter().enumerate().skip(open) {
        match t {
            Tok::Punct('(') => depth += 1,
            Tok::Punct(')') => {
                depth -= 1;
                if depth == 0 {
                    items.push(&toks[start..i]);
                    close = Some(i);
                    break;
                }
            }
            Tok::Punct(',') if depth == 1 => {
                items.push(&toks[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    let close = close.ok_or_else(|| unsupported("unbalanced parentheses"))?;
    let tail = &toks[close + 1..];
    if tail.iter().any(|t| is_kw(t, "ROWID")) && tail.iter().any(|t| is_kw(t, "WITHOUT")) {
        return Err(unsupported("WITHOUT ROWID tables are not supported"));
    }

    const CONSTRAINT_START: [&str; 5] = ["CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN"];
    const COLUMN_CONSTRAINT: [&str; 11] = [
        "CONSTRAINT",
        "PRIMARY",
        "NOT",
        "NULL",
        "UNIQUE",
        "CHECK",
        "DEFAULT",
        "COLLATE",
        "REFERENCES",
        "GENERATED",
        "AS",
    ];
    let mut columns = Vec::new();
    let mut table_pk: Option<Vec<String>> = None;
    for item in items {
        let Some(first) = item.first() else {
            return Err(unsupported("empty column definition"));
        };
        if CONSTRAINT_START.iter().any(|k| is_kw(first, k)) {
            // Table constraint: remember `PRIMARY KEY (col)`.
            if let Some(p) = item.iter().position(|t| is_kw(t, "PRIMARY")) {
                let cols: Vec<String> = item[p..]
                    .iter()
                    .skip_while(|t| **t != Tok::Punct('('))
                    .take_while(|t| **t != Tok::Punct(')'))
                    .filter_map(|t| match t {
                        Tok::Word(w, _) if !is_kw(t, "ASC") && !is_kw(t, "DESC") => Some(w.clone()),
                        _ => None,
                    })
                    .collect();
                // Unlike the column constraint, a table-level
                // `PRIMARY KEY (x DESC)` still makes x a rowid alias.
                table_pk = Some(cols);
            }
            continue;
        }
        let Tok::Word(name, _) = first else {
            return Err(unsupported("column definition does not start with a name"));
        };
        let rest = &item[1..];
        let type_end = rest
            .iter()
            .position(|t| COLUMN_CONSTRAINT.iter().any(|k| is_kw(t, k)))
            .unwrap_or(rest.len());
        let mut decl_type = String::new();
        for t in &rest[..type_end] {
            if let Tok::Word(w, _) = t {
                if !decl_type.is_empty() {
                    decl_type.push(' ');
                }
                decl_type.push_str(&w.to_ascii_uppercase());
            } else if let Tok::Punct('(') = t {
                break; // VARCHAR(10): the size does not matter here
            }
        }
        let constraints = &rest[type_end..];
        let pk = constraints
            .windows(2)
            .position(|w| is_kw(&w[0], "PRIMARY") && is_kw(&w[1], "KEY"));
        let desc = pk.is_some_and(|p| constraints.get(p + 2).is_some_and(|t| is_kw(t, "DESC")));
        let rowid_alias = pk.is_some() && !desc && decl_type == "INTEGER";
        columns.push(Column {
            name: name.clone(),
            decl_type,
            rowid_alias,
        });
    }
    if let Some(pk) = table_pk {
        if let [only] = pk.as_slice() {
            for c in &mut columns {
                if c.name.eq_ignore_ascii_case(only) && c.decl_type == "INTEGER" {
                    c.rowid_alias = true;
                }
            }
        }
    }
    if columns.is_empty() {
        return Err(unsupported("table has no columns"));
    }
    Ok(columns)
}

impl Table {
    /// Index of column `name` (case-insensitive), or a [`Error::MissingColumn`].
    pub fn column(&self, name: &str) -> Result<usize> {
        self.columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| Error::MissingColumn {
                table: self.name.clone(),
                column: name.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_lengths() {
        assert_eq!(varint(&[0x05], 0, 1).unwrap(), (5, 1));
        assert_eq!(varint(&[0x81, 0x00], 0, 1).unwrap(), (128, 2));
        let nine = [0xff; 9];
        assert_eq!(varint(&nine, 0, 1).unwrap(), (u64::MAX, 9));
        assert!(varint(&[0x81], 0, 1).is_err());
    }

    #[test]
    fn create_table_columns() {
        let cols = parse_create_table(
            "CREATE TABLE \"t\" (db_id INTEGER NOT NULL PRIMARY KEY, [db url] TEXT, -- c\n \
             x VARCHAR(10) DEFAULT 'a,b', CONSTRAINT c UNIQUE (x))",
        )
        .unwrap();
        let names: Vec<_> = cols.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["db_id", "db url", "x"]);
        assert!(cols[0].rowid_alias);
        assert!(!cols[1].rowid_alias);
        assert_eq!(cols[2].decl_type, "VARCHAR");

        let cols = parse_create_table("CREATE TABLE t (a INTEGER, b, PRIMARY KEY (a))").unwrap();
        assert!(cols[0].rowid_alias);
        let cols = parse_create_table("CREATE TABLE t (a INTEGER, PRIMARY KEY (a DESC))").unwrap();
        assert!(
            cols[0].rowid_alias,
            "a table-level DESC key still aliases the rowid"
        );
        let cols = parse_create_table("CREATE TABLE t (a INTEGER PRIMARY KEY DESC)").unwrap();
        assert!(!cols[0].rowid_alias);
        let cols = parse_create_table("CREATE TABLE t (a INT PRIMARY KEY)").unwrap();
        assert!(
            !cols[0].rowid_alias,
            "only the exact type INTEGER aliases the rowid"
        );
        assert!(
            parse_create_table("CREATE TABLE t (a INTEGER PRIMARY KEY) WITHOUT ROWID").is_err()
        );
    }

    #[test]
    fn rejects_bad_headers() {
        assert!(matches!(Database::open(b"nope"), Err(Error::NotSqlite(_))));
        let mut img = vec![0u8; 512];
        img[..16].copy_from_slice(MAGIC);
        img[16..18].copy_from_slice(&300u16.to_be_bytes());
        assert!(matches!(
            Database::open(&img),
            Err(Error::CorruptSqlite { .. })
        ));
    }
}
