//! Filters over record payloads: the language, its semantics, and two ways
//! to evaluate it.
//!
//! A [`Filter`] is parsed once from JSON ([`Filter::parse`]) into a typed
//! expression and then evaluated either on one record
//! ([`Filter::matches`]), or on a whole shard at once against its payloads
//! decoded into typed columns ([`Columns`], [`Filter::select`] → a
//! [`RowSet`] bitmap). Both evaluations call the same per-value test
//! (`eval::test`), so they cannot disagree; every target (native reader,
//! host, edge, browser) uses this module, so a filter means one thing.
//!
//! # The language
//!
//! MongoDB's query syntax, as Pinecone and Chroma also use it, in JSON:
//!
//! | filter | matches a record whose … |
//! |---|---|
//! | `{"tenant": "acme"}` | `tenant` equals `"acme"` (short for `$eq`) |
//! | `{"i": {"$gte": 10, "$lt": 20}}` | `i` is in `[10, 20)` (several operators: AND) |
//! | `{"meta.lang": "en"}` | nested object `meta` has `lang` = `"en"` |
//! | `{"tag": {"$in": ["a", "b"]}}` / `$nin` | `tag` is (not) one of the list |
//! | `{"x": {"$exists": false}}` | payload has no `x` |
//! | `{"$id": {"$in": [3, "doc-7"]}}` | the record *id* is 3 or `"doc-7"` |
//! | `{"$and": [f, g]}`, `{"$or": [f, g]}`, `{"$not": f}` | logic; several keys in one object mean AND |
//! | `{"i": {"$not": {"$gt": 5}}}` | NOT of the operators on that field |
//! | `{}` | every record |
//!
//! Operators: `$eq $ne $gt $gte $lt $lte $in $nin $exists` on fields;
//! `$and $or $not` on filters.
//!
//! # Semantics
//!
//! - **Values.** `$eq`, `$ne`, `$in` and `$nin` take scalars (null,
//!   boolean, number, string); `$gt $gte $lt $lte` a number or a string;
//!   `$exists` a boolean.
//! - **Types never mix.** A condition matches only values of its operand's
//!   type: `{"i": 5}` does not match `"5"`, `{"i": {"$gt": 1}}` does not
//!   match `"2"` or `true`. Numbers compare as numbers whatever their JSON
//!   spelling (`10`, `10.0` and `1e1` are equal), and exactly: all of
//!   `i64` and `u64`, and an integer against a fraction without rounding
//!   the integer (`9007199254740993` is above `9007199254740992.0`).
//!   Strings compare lexicographically by their UTF-8 bytes.
//! - **Missing fields** never match a comparison (`$eq $gt $gte $lt $lte
//!   $in`), including `$eq: null`, which matches only an explicit `null`
//!   (use `$exists` for absence). **`$ne` and `$nin` are the negations** of
//!   `$eq` and `$in`, so they *do* match a missing field or a value of
//!   another type, as in MongoDB. `$not` is plain negation too.
//! - **Arrays.** A field holding an array matches a condition when *any*
//!   of its scalar elements does (MongoDB's rule: `{"tags": "a"}` matches
//!   `["a", "b"]`); `$ne`/`$nin` then mean *no element* matches. Nested
//!   arrays and objects inside arrays never match a value.
//! - **Paths.** `a.b.c` walks nested objects; it does not index into arrays,
//!   and a payload key that itself contains a dot cannot be addressed. An
//!   object value is present for `$exists` but matches no comparison.
//! - **Ids.** `$id` is the record id: an integer id matches numbers, a
//!   string id matches strings (`{"$id": 3}` does not match the id `"3"`).
//!   Records without a payload have only `$id`. LanceDB shards store every
//!   id as text (the reference's schema), so there an integer id *is* the
//!   string `"3"`: filter LanceDB snapshots by `$id` with strings.
//! - **`$ne: null`** matches every record whose field is not an explicit
//!   `null`, records *without* the field included (it is the negation of
//!   `$eq: null`); MongoDB's idiom for "has a non-null value" is
//!   `{"f": {"$exists": true, "$ne": null}}` here.
//!
//! # Bounds
//!
//! A filter nests at most [`MAX_DEPTH`] levels (`$and`, `$or`, `$not`
//! around a condition) and holds at most [`MAX_TERMS`] filter objects,
//! conditions and list values altogether; a field path has at
//! most [`MAX_PATH_SEGMENTS`] segments. Past them, or on any malformed
//! part, parsing fails with a [`FilterError`] that names the place in the
//! filter (`filter.$or[1].i: $gte needs a number or a string`).

mod columns;
mod eval;
mod parse;

use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

pub use columns::{Columns, ColumnsBuilder, RowSet};

// `FilterBuilder` is defined below, next to `Filter`.

use crate::types::VectorId;

/// Deepest nesting of a filter (objects and lists).
pub const MAX_DEPTH: usize = 32;
/// Most filter objects, conditions and list values in one filter.
pub const MAX_TERMS: usize = 10_000;
/// Most segments in one field path (`a.b.c` has 3).
pub const MAX_PATH_SEGMENTS: usize = 16;

/// A parsed payload filter; see the [module docs](self) for the language.
///
/// `Filter` serialises to its canonical JSON ([`Filter::to_json`]) and
/// deserialises through [`Filter::parse`], so a filter in a request body is
/// checked while the body is parsed.
#[derive(Debug, Clone)]
pub struct Filter {
    root: Expr,
    /// XXH3-128 of the canonical JSON, computed once when the filter is
    /// made: the key per-shard caches of evaluated filters look it up by,
    /// on every filtered search of every shard.
    key: u128,
}

/// A filter expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    /// Every part matches (an empty list: every record).
    And(Vec<Expr>),
    /// Some part matches.
    Or(Vec<Expr>),
    /// The part does not match.
    Not(Box<Expr>),
    /// A condition on one field.
    Field(Field, Cond),
}

/// What a condition looks at.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Field {
    /// The record id (`$id`).
    Id,
    /// A dotted path into the payload, split into segments.
    Path(Vec<String>),
}

/// A condition on one field's value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cond {
    Eq(Scalar),
    Ne(Scalar),
    Cmp(CmpOp, Bound),
    In(ScalarSet),
    Nin(ScalarSet),
    Exists(bool),
}

/// The operand of `$in`/`$nin`, sorted for membership by binary search (an
/// allow-list of ten thousand ids tests a row in 14 comparisons).
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct ScalarSet {
    pub(crate) null: bool,
    pub(crate) bools: [bool; 2],
    /// Sorted numerically, without duplicates.
    pub(crate) nums: Vec<Num>,
    /// Sorted by bytes, without duplicates.
    pub(crate) strs: Vec<String>,
}

impl ScalarSet {
    pub(crate) fn new(items: Vec<Scalar>) -> ScalarSet {
        let mut set = ScalarSet::default();
        for item in items {
            match item {
                Scalar::Null => set.null = true,
                Scalar::Bool(b) => set.bools[usize::from(b)] = true,
                Scalar::Num(n) => set.nums.push(n),
                Scalar::Str(s) => set.strs.push(s),
            }
        }
        set.nums
            .sort_by(|a, b| a.cmp_num(*b).unwrap_or(core::cmp::Ordering::Equal));
        set.nums.dedup();
        set.strs.sort();
        set.strs.dedup();
        set
    }

    /// The members, in canonical order.
    pub(crate) fn items(&self) -> Vec<Scalar> {
        let mut out = Vec::new();
        if self.null {
            out.push(Scalar::Null);
        }
        for b in [false, true] {
            if self.bools[usize::from(b)] {
                out.push(Scalar::Bool(b));
            }
        }
        out.extend(self.nums.iter().map(|n| Scalar::Num(*n)));
        out.extend(self.strs.iter().cloned().map(Scalar::Str));
        out
    }
}

/// An ordering comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Gt,
    Gte,
    Lt,
    Lte,
}

impl CmpOp {
    pub(crate) fn name(self) -> &'static str {
        match self {
            CmpOp::Gt => "$gt",
            CmpOp::Gte => "$gte",
            CmpOp::Lt => "$lt",
            CmpOp::Lte => "$lte",
        }
    }
}

/// The operand of an ordering comparison.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Bound {
    Num(Num),
    Str(String),
}

/// A scalar operand.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar {
    Null,
    Bool(bool),
    Num(Num),
    Str(String),
}

/// A JSON number, kept exact when it is an integer.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Num {
    Int(i64),
    UInt(u64),
    Float(f64),
}

impl PartialEq for Num {
    fn eq(&self, other: &Num) -> bool {
        self.cmp_num(*other) == Some(core::cmp::Ordering::Equal)
    }
}

impl Num {
    pub(crate) fn from_json(n: &serde_json::Number) -> Option<Num> {
        if let Some(i) = n.as_i64() {
            Some(Num::Int(i))
        } else if let Some(u) = n.as_u64() {
            Some(Num::UInt(u))
        } else {
            n.as_f64().filter(|f| f.is_finite()).map(Num::Float)
        }
    }

    fn as_int(self) -> Option<i128> {
        match self {
            Num::Int(i) => Some(i128::from(i)),
            Num::UInt(u) => Some(i128::from(u)),
            Num::Float(_) => None,
        }
    }

    /// Numeric order, exact for every pair: integers as integers, an
    /// integer against a fraction by the fraction's floor (no rounding of
    /// the integer to `f64`), fractions as `f64`. A total order on the
    /// finite numbers JSON can spell (`None` only for a NaN, which no
    /// parsed filter or payload holds).
    pub(crate) fn cmp_num(self, other: Num) -> Option<core::cmp::Ordering> {
        match (self.as_int(), other.as_int(), self, other) {
            (Some(a), Some(b), _, _) => Some(a.cmp(&b)),
            (Some(a), None, _, Num::Float(f)) => cmp_int_float(a, f),
            (None, Some(b), Num::Float(f), _) => {
                cmp_int_float(b, f).map(core::cmp::Ordering::reverse)
            }
            (_, _, Num::Float(a), Num::Float(b)) => a.partial_cmp(&b),
            _ => None,
        }
    }
}

/// `i` against the finite `f`, exactly.
fn cmp_int_float(i: i128, f: f64) -> Option<core::cmp::Ordering> {
    use core::cmp::Ordering;
    if f.is_nan() {
        return None;
    }
    // Every i64/u64 lies strictly inside ±2^127.
    const LIMIT: f64 = 1.7e38;
    if f >= LIMIT {
        return Some(Ordering::Less);
    }
    if f <= -LIMIT {
        return Some(Ordering::Greater);
    }
    let floor = libm::floor(f);
    let whole = floor as i128; // exact: |floor| < 2^127
    Some(match i.cmp(&whole) {
        Ordering::Equal if floor < f => Ordering::Less,
        o => o,
    })
}

/// Why a filter was refused, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    /// Where in the filter: `filter`, `filter.$or[1].i`, ...
    pub path: String,
    /// What is wrong there.
    pub kind: FilterErrorKind,
}

/// What is wrong with a filter.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FilterErrorKind {
    /// Text that is not JSON (with the parser's message).
    NotJson(String),
    /// A filter (or a `$not` operand) that is not a JSON object.
    NotAnObject,
    /// An operator this language does not have.
    UnknownOperator(String),
    /// An operator given an operand of the wrong type.
    Operand {
        /// The operator, e.g. `$gte`.
        op: &'static str,
        /// What it needs, e.g. `a number or a string`.
        needs: &'static str,
    },
    /// An empty field path or path segment (`""`, `a..b`).
    EmptyPath,
    /// Nested deeper than [`MAX_DEPTH`] or with more path segments than
    /// [`MAX_PATH_SEGMENTS`].
    TooDeep,
    /// More than [`MAX_TERMS`] conditions and values.
    TooLarge,
}

impl fmt::Display for FilterErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FilterErrorKind::NotJson(e) => write!(f, "not JSON: {e}"),
            FilterErrorKind::NotAnObject => f.write_str("a filter must be a JSON object"),
            FilterErrorKind::UnknownOperator(op) => write!(f, "unknown operator {op}"),
            FilterErrorKind::Operand { op, needs } => write!(f, "{op} needs {needs}"),
            FilterErrorKind::EmptyPath => f.write_str("empty field name"),
            FilterErrorKind::TooDeep => write!(
                f,
                "nested deeper than {MAX_DEPTH} levels or {MAX_PATH_SEGMENTS} path segments"
            ),
            FilterErrorKind::TooLarge => {
                write!(f, "more than {MAX_TERMS} conditions and values")
            }
        }
    }
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.kind)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for FilterError {}

impl Filter {
    /// Parses a filter; see the [module docs](self) for the language.
    pub fn parse(json: &serde_json::Value) -> Result<Filter, FilterError> {
        parse::parse(json).map(Filter::new)
    }

    /// Parses a filter from JSON text.
    pub fn parse_str(text: &str) -> Result<Filter, FilterError> {
        let json: serde_json::Value = serde_json::from_str(text).map_err(|e| FilterError {
            path: String::from("filter"),
            kind: FilterErrorKind::NotJson(alloc::format!("{e}")),
        })?;
        Filter::parse(&json)
    }

    fn new(root: Expr) -> Filter {
        let canonical = parse::to_json(&root).to_string();
        Filter {
            key: xxhash_rust::xxh3::xxh3_128(canonical.as_bytes()),
            root,
        }
    }

    /// A 128-bit hash of the canonical JSON: equal filters have equal
    /// keys (the key of per-shard caches of evaluated filters).
    pub fn key(&self) -> u128 {
        self.key
    }

    /// A builder of filters in code ([`FilterBuilder`]).
    pub fn builder() -> FilterBuilder {
        FilterBuilder::default()
    }

    /// The filter that matches every record (`{}`).
    pub fn all() -> Filter {
        Filter::new(Expr::And(Vec::new()))
    }

    /// Whether this filter matches every record (it is `{}`).
    pub fn is_all(&self) -> bool {
        matches!(&self.root, Expr::And(parts) if parts.is_empty())
    }

    /// The canonical JSON of this filter: `Filter::parse` of it gives an
    /// equal filter, and equal filters have equal canonical JSON (the key
    /// of per-shard caches of evaluated filters).
    pub fn to_json(&self) -> serde_json::Value {
        parse::to_json(&self.root)
    }

    /// Whether the record with `id` and `payload` matches.
    pub fn matches(&self, id: &VectorId, payload: Option<&serde_json::Value>) -> bool {
        eval::matches(&self.root, id, payload)
    }

    /// The rows of `columns` that match, as a bitmap over row numbers.
    pub fn select(&self, columns: &Columns) -> RowSet {
        columns.select(&self.root)
    }
}

/// Builds a [`Filter`] in code: each call adds one condition, all of them
/// must hold; [`build`](Self::build) checks the result with the same parser
/// as JSON filters, so a builder cannot make a filter JSON could not.
///
/// ```
/// use shardvec_core::Filter;
/// let f = Filter::builder()
///     .eq("tenant", "acme")
///     .gte("i", 10)
///     .lt("i", 20)
///     .is_in("meta.lang", ["en", "de"])
///     .build()
///     .unwrap();
/// let same = Filter::parse(&serde_json::json!({
///     "tenant": "acme", "i": {"$gte": 10, "$lt": 20}, "meta.lang": {"$in": ["en", "de"]}
/// })).unwrap();
/// assert_eq!(f.to_json(), same.to_json());
/// ```
#[derive(Debug, Clone, Default)]
pub struct FilterBuilder {
    parts: Vec<serde_json::Value>,
}

impl FilterBuilder {
    fn op(mut self, path: &str, op: &str, arg: serde_json::Value) -> Self {
        let mut ops = serde_json::Map::new();
        ops.insert(op.into(), arg);
        let mut cond = serde_json::Map::new();
        cond.insert(path.into(), serde_json::Value::Object(ops));
        self.parts.push(serde_json::Value::Object(cond));
        self
    }

    /// `path` equals `v` (`$eq`; `path` may be `$id`).
    pub fn eq(self, path: &str, v: impl Into<serde_json::Value>) -> Self {
        self.op(path, "$eq", v.into())
    }
    /// `path` does not equal `v` (`$ne`).
    pub fn ne(self, path: &str, v: impl Into<serde_json::Value>) -> Self {
        self.op(path, "$ne", v.into())
    }
    /// `path` > `v` (`$gt`).
    pub fn gt(self, path: &str, v: impl Into<serde_json::Value>) -> Self {
        self.op(path, "$gt", v.into())
    }
    /// `path` >= `v` (`$gte`).
    pub fn gte(self, path: &str, v: impl Into<serde_json::Value>) -> Self {
        self.op(path, "$gte", v.into())
    }
    /// `path` < `v` (`$lt`).
    pub fn lt(self, path: &str, v: impl Into<serde_json::Value>) -> Self {
        self.op(path, "$lt", v.into())
    }
    /// `path` <= `v` (`$lte`).
    pub fn lte(self, path: &str, v: impl Into<serde_json::Value>) -> Self {
        self.op(path, "$lte", v.into())
    }
    /// `path` is one of `vs` (`$in`).
    pub fn is_in<V: Into<serde_json::Value>>(
        self,
        path: &str,
        vs: impl IntoIterator<Item = V>,
    ) -> Self {
        let list = vs.into_iter().map(Into::into).collect();
        self.op(path, "$in", serde_json::Value::Array(list))
    }
    /// `path` is none of `vs` (`$nin`).
    pub fn not_in<V: Into<serde_json::Value>>(
        self,
        path: &str,
        vs: impl IntoIterator<Item = V>,
    ) -> Self {
        let list = vs.into_iter().map(Into::into).collect();
        self.op(path, "$nin", serde_json::Value::Array(list))
    }
    /// `path` is present (`true`) or absent (`false`) (`$exists`).
    pub fn exists(self, path: &str, present: bool) -> Self {
        self.op(path, "$exists", serde_json::Value::Bool(present))
    }
    /// At least one of `filters` holds (`$or`).
    pub fn any_of(mut self, filters: impl IntoIterator<Item = Filter>) -> Self {
        let list = filters.into_iter().map(|f| f.to_json()).collect();
        let mut m = serde_json::Map::new();
        m.insert("$or".into(), serde_json::Value::Array(list));
        self.parts.push(serde_json::Value::Object(m));
        self
    }
    /// `filter` holds too (to combine built filters).
    pub fn and(mut self, filter: &Filter) -> Self {
        self.parts.push(filter.to_json());
        self
    }
    /// `filter` does not hold (`$not`).
    pub fn not(mut self, filter: &Filter) -> Self {
        let mut m = serde_json::Map::new();
        m.insert("$not".into(), filter.to_json());
        self.parts.push(serde_json::Value::Object(m));
        self
    }
    /// The filter: every condition added, checked as a JSON filter is
    /// (no condition: every record).
    pub fn build(self) -> Result<Filter, FilterError> {
        let json = match self.parts.len() {
            0 => serde_json::Value::Object(serde_json::Map::new()),
            1 => self.parts.into_iter().next().unwrap_or_default(),
            _ => {
                let mut m = serde_json::Map::new();
                m.insert("$and".into(), serde_json::Value::Array(self.parts));
                serde_json::Value::Object(m)
            }
        };
        Filter::parse(&json)
    }
}

/// Filters are equal when their expressions are (the key follows from
/// the expression).
impl PartialEq for Filter {
    fn eq(&self, other: &Filter) -> bool {
        self.root == other.root
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_json())
    }
}

impl serde::Serialize for Filter {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for Filter {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Filter, D::Error> {
        let json = serde_json::Value::deserialize(d)?;
        Filter::parse(&json).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;
