//! A shard's payloads as typed columns, and a filter evaluated over them
//! into a bitmap of matching rows.
//!
//! [`ColumnsBuilder`] takes the records of a shard in row order (the order
//! its vectors are scanned in) and decodes each payload once: every scalar
//! leaf reachable through nested objects becomes a cell of the column named
//! by its dotted path; strings are interned per column. [`Filter::select`]
//! then evaluates a filter column by column: a string condition is tested
//! once per *distinct* string of the column, not once per row, and the
//! logic (`$and`, `$or`, `$not`) is bitmap intersection, union and
//! complement.
//!
//! Columns are sparse: a column holds a cell for each row whose payload
//! has the field, not one per row, so memory is proportional to the
//! payloads themselves whatever their shape — a payload with keys of its
//! own (`{"scores": {"<doc-id>": 0.3}}`) makes many small columns, not a
//! rows × paths matrix. About 28 bytes per field present in a row (with
//! each nested object's own path counted), each distinct string once per
//! column, array elements 24 bytes each: a 100 000-row shard with three
//! payload fields holds about 8 MB.
//!
//! [`Filter::select`]: super::Filter::select

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use fixedbitset::FixedBitSet;
use serde_json::{Map, Value};

use super::eval::{hit, outcome, ScalarRef};
use super::{Cond, Expr, Field, Num, MAX_PATH_SEGMENTS};
use crate::types::VectorId;

/// A set of row numbers: the rows of a shard that match a filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowSet {
    bits: FixedBitSet,
}

impl RowSet {
    fn none(rows: usize) -> RowSet {
        RowSet {
            bits: FixedBitSet::with_capacity(rows),
        }
    }

    fn all(rows: usize) -> RowSet {
        let mut bits = FixedBitSet::with_capacity(rows);
        bits.insert_range(..);
        RowSet { bits }
    }

    /// Rows the set is over (matching or not).
    pub fn rows(&self) -> usize {
        self.bits.len()
    }

    /// Matching rows.
    pub fn count(&self) -> usize {
        self.bits.count_ones(..)
    }

    /// Whether `row` matches.
    pub fn contains(&self, row: usize) -> bool {
        self.bits.contains(row)
    }

    /// The matching rows, ascending.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.bits.ones()
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        core::mem::size_of_val(self.bits.as_slice())
    }
}

/// One cell: a field's value in one row.
#[derive(Debug, Clone, Copy)]
enum Cell {
    Null,
    Bool(bool),
    Num(Num),
    /// Index into the column's strings.
    Str(u32),
    /// An object, or an array without scalars: present, never equal.
    Compound,
    /// An array: index into the column's element lists.
    Many(u32),
}

/// One field's values: `(row, cell)` for the rows that have the field, in
/// row order (absent rows are missing).
#[derive(Debug, Default)]
struct Column {
    rows: Vec<u32>,
    cells: Vec<Cell>,
    strs: Vec<String>,
    many: Vec<Vec<Cell>>,
}

impl Column {
    fn scalar<'a>(&'a self, cell: Cell) -> Option<ScalarRef<'a>> {
        Some(match cell {
            Cell::Null => ScalarRef::Null,
            Cell::Bool(b) => ScalarRef::Bool(b),
            Cell::Num(n) => ScalarRef::Num(n),
            Cell::Str(i) => ScalarRef::Str(self.strs.get(i as usize)?),
            Cell::Compound | Cell::Many(_) => return None,
        })
    }

    fn eval(&self, cond: &Cond, rows: usize) -> RowSet {
        // Strings are tested once per distinct value.
        let str_hits: Vec<bool> = match cond {
            Cond::Exists(_) => Vec::new(),
            _ => self
                .strs
                .iter()
                .map(|s| hit(cond, ScalarRef::Str(s)))
                .collect(),
        };
        let scalar_hit = |cell: Cell| match cell {
            Cell::Str(i) => str_hits.get(i as usize).copied().unwrap_or(false),
            c => self.scalar(c).is_some_and(|v| hit(cond, v)),
        };
        // Rows without the field all get the verdict on a missing field;
        // the rows that have it are then decided one by one.
        let mut out = if outcome(cond, false, false) {
            RowSet::all(rows)
        } else {
            RowSet::none(rows)
        };
        for (&row, &cell) in self.rows.iter().zip(&self.cells) {
            let verdict = match cell {
                Cell::Many(i) => {
                    let items = self.many.get(i as usize).map_or(&[][..], Vec::as_slice);
                    outcome(cond, true, items.iter().any(|&c| scalar_hit(c)))
                }
                c => outcome(cond, true, scalar_hit(c)),
            };
            out.bits.set(row as usize, verdict);
        }
        out
    }
}

/// A shard's ids and payloads as typed columns (see the module docs).
#[derive(Debug, Default)]
pub struct Columns {
    rows: usize,
    ids: Column,
    fields: BTreeMap<String, Column>,
}

impl Columns {
    /// Rows held.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The dotted paths of the payload fields seen, sorted (for the demo's
    /// filter examples and for `shardvec shards`).
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.fields.keys().map(String::as_str)
    }

    /// Heap bytes held, approximately.
    pub fn heap_bytes(&self) -> usize {
        let col = |c: &Column| {
            c.cells.capacity() * core::mem::size_of::<Cell>()
                + c.rows.capacity() * core::mem::size_of::<u32>()
                + c.strs.iter().map(|s| s.capacity() + 24).sum::<usize>()
                + c.many
                    .iter()
                    .map(|m| m.capacity() * core::mem::size_of::<Cell>() + 24)
                    .sum::<usize>()
        };
        col(&self.ids)
            + self
                .fields
                .iter()
                .map(|(k, c)| k.capacity() + col(c))
                .sum::<usize>()
    }

    pub(super) fn select(&self, e: &Expr) -> RowSet {
        match e {
            Expr::And(parts) => {
                let mut acc = RowSet::all(self.rows);
                for p in parts {
                    acc.bits.intersect_with(&self.select(p).bits);
                }
                acc
            }
            Expr::Or(parts) => {
                let mut acc = RowSet::none(self.rows);
                for p in parts {
                    acc.bits.union_with(&self.select(p).bits);
                }
                acc
            }
            Expr::Not(inner) => {
                let mut set = self.select(inner);
                set.bits.toggle_range(..);
                set
            }
            Expr::Field(Field::Id, cond) => self.ids.eval(cond, self.rows),
            Expr::Field(Field::Path(segments), cond) => {
                match self.fields.get(&segments.join(".")) {
                    Some(col) => col.eval(cond, self.rows),
                    None if outcome(cond, false, false) => RowSet::all(self.rows),
                    None => RowSet::none(self.rows),
                }
            }
        }
    }
}

/// Builds [`Columns`] from records in row order.
#[derive(Debug, Default)]
pub struct ColumnsBuilder {
    columns: Columns,
    interned: BTreeMap<String, BTreeMap<String, u32>>,
    id_strings: BTreeMap<String, u32>,
}

impl ColumnsBuilder {
    /// No rows yet.
    pub fn new() -> ColumnsBuilder {
        ColumnsBuilder::default()
    }

    /// Adds the next row: its id and payload.
    pub fn push(&mut self, id: &VectorId, payload: Option<&Value>) {
        let row = self.columns.rows;
        self.columns.rows += 1;
        let cell = match id {
            VectorId::Int(i) => Cell::Num(Num::Int(*i)),
            VectorId::Str(s) => {
                Cell::Str(intern(&mut self.id_strings, &mut self.columns.ids.strs, s))
            }
        };
        self.columns.ids.rows.push(row as u32);
        self.columns.ids.cells.push(cell);
        if let Some(Value::Object(obj)) = payload {
            self.flatten(row, "", obj, 1);
        }
    }

    fn flatten(&mut self, row: usize, prefix: &str, obj: &Map<String, Value>, depth: usize) {
        for (key, value) in obj {
            // Such keys cannot be named by a filter path (module docs of
            // `filter`); `Filter::matches` never reaches them either.
            if key.is_empty() || key.contains('.') {
                continue;
            }
            let name = if prefix.is_empty() {
                key.clone()
            } else {
                alloc::format!("{prefix}.{key}")
            };
            let col = self.columns.fields.entry(name.clone()).or_default();
            let strings = self.interned.entry(name.clone()).or_default();
            let cell = match value {
                Value::Array(items) => {
                    let cells: Vec<Cell> = items
                        .iter()
                        .filter_map(|v| scalar_cell(v, strings, &mut col.strs))
                        .collect();
                    col.many.push(cells);
                    Cell::Many((col.many.len() - 1) as u32)
                }
                Value::Object(_) => Cell::Compound,
                v => scalar_cell(v, strings, &mut col.strs).unwrap_or(Cell::Compound),
            };
            col.rows.push(row as u32);
            col.cells.push(cell);
            if let Value::Object(inner) = value {
                if depth < MAX_PATH_SEGMENTS {
                    self.flatten(row, &name, inner, depth + 1);
                }
            }
        }
    }

    /// The columns.
    pub fn finish(mut self) -> Columns {
        for col in self.columns.fields.values_mut() {
            col.rows.shrink_to_fit();
            col.cells.shrink_to_fit();
        }
        self.columns
    }
}

fn intern(map: &mut BTreeMap<String, u32>, strs: &mut Vec<String>, s: &str) -> u32 {
    if let Some(&i) = map.get(s) {
        return i;
    }
    let i = strs.len() as u32;
    strs.push(s.to_string());
    map.insert(s.to_string(), i);
    i
}

fn scalar_cell(v: &Value, map: &mut BTreeMap<String, u32>, strs: &mut Vec<String>) -> Option<Cell> {
    Some(match v {
        Value::Null => Cell::Null,
        Value::Bool(b) => Cell::Bool(*b),
        Value::Number(n) => Cell::Num(Num::from_json(n)?),
        Value::String(s) => Cell::Str(intern(map, strs, s)),
        Value::Array(_) | Value::Object(_) => return None,
    })
}
