//! NumPy `.npy` files holding float matrices (centroids, hyperplanes, query
//! sets).
//!
//! Supports format versions 1.0 (u16 header length), 2.0 and 3.0 (u32 header
//! length; 3.0 allows a UTF-8 header), dtypes `<f4` and `<f8` (converted to
//! f32 with round-to-nearest, as NumPy's `astype(float32)`), C order, and 2-D
//! shapes. The data is read with `bytemuck`.
//!
//! The header is a Python dict literal. The maintained Rust `.npy` crates
//! need std, so the few tokens it can hold (strings, integers, tuples,
//! `True`/`False`) are parsed here.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::error::{Error, Result};

const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// A dense row-major float32 matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    rows: usize,
    cols: usize,
    data: Vec<f32>,
}

impl Matrix {
    /// Builds a matrix from row-major data; `data.len()` must be `rows * cols`.
    pub fn new(rows: usize, cols: usize, data: Vec<f32>) -> Result<Matrix> {
        if rows.checked_mul(cols) != Some(data.len()) {
            return Err(Error::npy(
                "matrix",
                format!("{} values do not make a {rows} x {cols} matrix", data.len()),
            ));
        }
        Ok(Matrix { rows, cols, data })
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> Option<&[f32]> {
        if i >= self.rows {
            return None;
        }
        // In range: (i + 1) * cols <= rows * cols == data.len().
        self.data.get(i * self.cols..(i + 1) * self.cols)
    }

    /// Rows in order.
    pub fn iter_rows(&self) -> impl ExactSizeIterator<Item = &[f32]> + '_ {
        // `chunks_exact(0)` panics; a zero-column matrix has no data anyway.
        self.data.chunks_exact(self.cols.max(1))
    }

    /// All values, row-major.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    /// Consumes the matrix, returning its row-major data.
    pub fn into_vec(self) -> Vec<f32> {
        self.data
    }

    /// Parses an `.npy` image. `artefact` names the file in errors.
    pub fn from_npy(bytes: &[u8], artefact: &str) -> Result<Matrix> {
        let err = |reason: String| Error::npy(artefact, reason);
        let h = NpyHeader::parse(bytes, artefact)?;
        if h.ndim != 2 {
            return Err(err(format!("expected a 2-D array, shape is [{}]", h.rows)));
        }
        let item = match h.dtype {
            Dtype::F4 => 4,
            Dtype::F8 => 8,
            d => {
                return Err(err(format!(
                    "unsupported dtype `{}` (expected <f4 or <f8)",
                    d.descr()
                )))
            }
        };
        let (rows, cols) = (h.rows, h.cols);
        let data = &bytes[h.data_offset..];
        let expected = h
            .data_len()
            .ok_or_else(|| err("shape overflows".to_string()))?;
        if data.len() != expected {
            return Err(err(format!(
                "shape ({rows}, {cols}) needs {expected} data bytes, file has {}",
                data.len()
            )));
        }
        let values: Vec<f32> = if item == 4 {
            bytemuck::pod_collect_to_vec::<u8, [u8; 4]>(data)
                .into_iter()
                .map(f32::from_le_bytes)
                .collect()
        } else {
            bytemuck::pod_collect_to_vec::<u8, [u8; 8]>(data)
                .into_iter()
                .map(|b| f64::from_le_bytes(b) as f32)
                .collect()
        };
        Matrix::new(rows, cols, values)
    }

    /// Checks the shape against what the manifest says.
    pub fn expect_shape(self, rows: usize, cols: usize, artefact: &str) -> Result<Matrix> {
        if self.rows != rows || self.cols != cols {
            return Err(Error::npy(
                artefact,
                format!(
                    "shape is ({}, {}), the manifest says ({rows}, {cols})",
                    self.rows, self.cols
                ),
            ));
        }
        Ok(self)
    }

    /// Serialises the matrix as a version 1.0 `<f4` `.npy` image.
    pub fn to_npy(&self) -> Vec<u8> {
        let mut header = format!(
            "{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {}), }}",
            self.rows, self.cols
        );
        // Pad with spaces so that magic + version + length + header + '\n'
        // is a multiple of 64, as NumPy does.
        let unpadded = 10 + header.len() + 1;
        header.extend(core::iter::repeat_n(' ', (64 - unpadded % 64) % 64));
        header.push('\n');
        let mut out = Vec::with_capacity(10 + header.len() + self.data.len() * 4);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        for v in &self.data {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }
}

/// Element type of an `.npy` array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    /// `<f4`
    F4,
    /// `<f8`
    F8,
    /// `<i4`
    I4,
    /// `<i8`
    I8,
}

impl Dtype {
    /// The NumPy `descr` string.
    pub fn descr(self) -> &'static str {
        match self {
            Dtype::F4 => "<f4",
            Dtype::F8 => "<f8",
            Dtype::I4 => "<i4",
            Dtype::I8 => "<i8",
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Dtype::F4 | Dtype::I4 => 4,
            Dtype::F8 | Dtype::I8 => 8,
        }
    }
}

/// The header of an `.npy` file: what a streaming reader needs to read
/// rows one at a time from the rest of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyHeader {
    /// Rows (a 1-D array of n elements is n rows of 1 column).
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// Element type.
    pub dtype: Dtype,
    /// Number of dimensions of the stored shape (1 or 2).
    pub ndim: usize,
    /// Offset of the first data byte.
    pub data_offset: usize,
}

impl NpyHeader {
    /// Parses the header at the start of `bytes` (which may hold only a
    /// prefix of the file, as long as it covers the header). Accepts C-order
    /// 1-D and 2-D arrays of `<f4`, `<f8`, `<i4` and `<i8`.
    pub fn parse(bytes: &[u8], artefact: &str) -> Result<NpyHeader> {
        let err = |reason: String| Error::npy(artefact, reason);
        if bytes.len() < 10 || &bytes[..6] != MAGIC {
            return Err(err("missing the `\\x93NUMPY` magic".to_string()));
        }
        let major = bytes[6];
        let (header_len, start): (usize, usize) = match major {
            1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
            2 | 3 => {
                let b = bytes
                    .get(8..12)
                    .ok_or_else(|| err("truncated header length".to_string()))?;
                let n = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                (
                    usize::try_from(n).map_err(|_| err("header too long".to_string()))?,
                    12,
                )
            }
            v => return Err(err(format!("unsupported format version {v}.{}", bytes[7]))),
        };
        let header = bytes
            .get(start..start.saturating_add(header_len))
            .ok_or_else(|| err("header runs past the end of the file".to_string()))?;
        let header =
            core::str::from_utf8(header).map_err(|_| err("header is not UTF-8".to_string()))?;
        let h = parse_header(header).map_err(|r| err(format!("header {header:?}: {r}")))?;
        if h.fortran_order {
            return Err(err("Fortran-order arrays are not supported".to_string()));
        }
        let (rows, cols) = match h.shape.as_slice() {
            [r, c] => (*r, *c),
            [r] => (*r, 1),
            s => return Err(err(format!("expected a 1-D or 2-D array, shape is {s:?}"))),
        };
        if cols == 0 && rows != 0 {
            return Err(err(format!("shape ({rows}, 0) has rows without columns")));
        }
        let dtype = match h.descr.as_str() {
            "<f4" => Dtype::F4,
            "<f8" => Dtype::F8,
            "<i4" => Dtype::I4,
            "<i8" => Dtype::I8,
            d => {
                return Err(err(format!(
                    "unsupported dtype `{d}` (expected <f4, <f8, <i4 or <i8)"
                )))
            }
        };
        Ok(NpyHeader {
            rows,
            cols,
            dtype,
            ndim: h.shape.len(),
            data_offset: start + header_len,
        })
    }

    /// Bytes of data the shape needs, or `None` on overflow.
    pub fn data_len(&self) -> Option<usize> {
        self.rows
            .checked_mul(self.cols)
            .and_then(|n| n.checked_mul(self.dtype.size()))
    }
}

struct Header {
    descr: String,
    fortran_order: bool,
    shape: Vec<usize>,
}

#[derive(Debug, PartialEq)]
enum Tok<'a> {
    Str(&'a str),
    Int(usize),
    Bool(bool),
    P(u8),
}

fn lex(s: &str) -> core::result::Result<Vec<Tok<'_>>, String> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'{' | b'}' | b'(' | b')' | b':' | b',' => {
                out.push(Tok::P(c));
                i += 1;
            }
            b'\'' | b'"' => {
                let end = s[i + 1..]
                    .find(c as char)
                    .ok_or_else(|| "unterminated string".to_string())?;
                out.push(Tok::Str(&s[i + 1..i + 1 + end]));
                i += end + 2;
            }
            b'0'..=b'9' => {
                let mut n: usize = 0;
                while i < b.len() && b[i].is_ascii_digit() {
                    n = n
                        .checked_mul(10)
                        .and_then(|n| n.checked_add(usize::from(b[i] - b'0')))
                        .ok_or_else(|| "integer overflows".to_string())?;
                    i += 1;
                }
                // Python 2 era headers may write `10L`.
                if i < b.len() && b[i] == b'L' {
                    i += 1;
                }
                out.push(Tok::Int(n));
            }
            _ if s[i..].starts_with("True") => {
                out.push(Tok::Bool(true));
                i += 4;
            }
            _ if s[i..].starts_with("False") => {
                out.push(Tok::Bool(false));
                i += 5;
            }
            _ => return Err(format!("unexpected character {:?}", c as char)),
        }
    }
    Ok(out)
}

fn parse_header(s: &str) -> core::result::Result<Header, String> {
    let toks = lex(s)?;
    let mut it = toks.iter().peekable();
    if it.next() != Some(&Tok::P(b'{')) {
        return Err("expected `{`".to_string());
    }
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    loop {
        match it.next() {
            Some(Tok::P(b'}')) => break,
            Some(Tok::Str(key)) => {
                if it.next() != Some(&Tok::P(b':')) {
                    return Err(format!("expected `:` after {key:?}"));
                }
                match *key {
                    "descr" => match it.next() {
                        Some(Tok::Str(d)) => descr = Some(d.to_string()),
                        _ => {
                            return Err(
                                "descr must be a string (structured dtypes are not supported)"
                                    .to_string(),
                            )
                        }
                    },
                    "fortran_order" => match it.next() {
                        Some(Tok::Bool(b)) => fortran = Some(*b),
                        _ => return Err("fortran_order must be True or False".to_string()),
                    },
                    "shape" => {
                        if it.next() != Some(&Tok::P(b'(')) {
                            return Err("shape must be a tuple".to_string());
                        }
                        let mut dims = Vec::new();
                        loop {
                            match it.next() {
                                Some(Tok::Int(n)) => dims.push(*n),
                                Some(Tok::P(b',')) => {}
                                Some(Tok::P(b')')) => break,
                                _ => return Err("shape must hold integers".to_string()),
                            }
                            if dims.len() > 32 {
                                return Err("too many dimensions".to_string());
                            }
                        }
                        shape = Some(dims);
                    }
                    other => return Err(format!("unknown key {other:?}")),
                }
                match it.next() {
                    Some(Tok::P(b',')) => {}
                    Some(Tok::P(b'}')) => break,
                    _ => return Err("expected `,` or `}`".to_string()),
                }
            }
            _ => return Err("expected a key".to_string()),
        }
    }
    Ok(Header {
        descr: descr.ok_or_else(|| "missing descr".to_string())?,
        fortran_order: fortran.ok_or_else(|| "missing fortran_order".to_string())?,
        shape: shape.ok_or_else(|| "missing shape".to_string())?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn round_trip_v1() {
        let m = Matrix::new(2, 3, vec![1.0, -2.5, 3.0, 0.0, 1e-30, f32::MAX]).unwrap();
        let bytes = m.to_npy();
        assert_eq!((bytes.len() - 6 * 4) % 64, 0);
        assert_eq!(Matrix::from_npy(&bytes, "t").unwrap(), m);
    }

    #[test]
    fn reads_v2_and_f8() {
        let header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 2), }\n";
        let mut b = Vec::from(&MAGIC[..]);
        b.extend_from_slice(&[2, 0]);
        b.extend_from_slice(&(header.len() as u32).to_le_bytes());
        b.extend_from_slice(header.as_bytes());
        b.extend_from_slice(&0.1f64.to_le_bytes());
        b.extend_from_slice(&(-7.0f64).to_le_bytes());
        let m = Matrix::from_npy(&b, "t").unwrap();
        assert_eq!(m.as_slice(), &[0.1f64 as f32, -7.0]);
    }

    #[test]
    fn reads_v3_utf8_header() {
        let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1), 'é': 0}";
        let mut b = Vec::from(&MAGIC[..]);
        b.extend_from_slice(&[3, 0]);
        b.extend_from_slice(&(header.len() as u32).to_le_bytes());
        b.extend_from_slice(header.as_bytes());
        b.extend_from_slice(&2.5f32.to_le_bytes());
        // Unknown keys are refused: NumPy writes exactly three.
        assert!(Matrix::from_npy(&b, "t").is_err());
        let header = "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (1, 1)}";
        let mut b = Vec::from(&MAGIC[..]);
        b.extend_from_slice(&[3, 0]);
        b.extend_from_slice(&(header.len() as u32).to_le_bytes());
        b.extend_from_slice(header.as_bytes());
        b.extend_from_slice(&2.5f32.to_le_bytes());
        assert_eq!(Matrix::from_npy(&b, "t").unwrap().as_slice(), &[2.5]);
    }

    #[test]
    fn rejects_bad_files() {
        let m = Matrix::new(2, 2, vec![0.0; 4]).unwrap().to_npy();
        assert!(Matrix::from_npy(&m[..m.len() - 1], "t").is_err());
        let mut fortran = m.clone();
        let at = m.windows(5).position(|w| w == b"False").unwrap();
        fortran[at..at + 5].copy_from_slice(b"True ");
        assert!(Matrix::from_npy(&fortran, "t").is_err());
        let mut big = m.clone();
        big[6] = 9;
        assert!(Matrix::from_npy(&big, "t").is_err());
        assert!(Matrix::from_npy(&m, "t")
            .unwrap()
            .expect_shape(2, 3, "t")
            .is_err());
    }
}
