//! The manifest of one publish: a typed, validated view of its SQLite image.
//!
//! [`Manifest::parse`] reads `build_meta` (one row) and `shards` (one row per
//! non-empty shard) by column name with the [`sqlite`](crate::sqlite) reader,
//! then applies the validation of FORMAT.md (any failure is a manifest parse
//! error naming the field): `format_version` 4, `num_dbs > 0`, at most
//! `num_dbs` shard rows with unique ids in `[0, num_dbs)`, and a
//! `custom.vector` object whose keys make sense for its strategy.
//!
//! The encoding lives next to the parsing, so every fact of the format is
//! written down once: [`VectorMeta::to_json`] (the `custom.vector` keys the
//! reference writes, null or omitted exactly as it does),
//! [`Manifest::custom_text`], [`Manifest::build_meta_row`] and
//! [`ShardMeta::row`] (the values a writer binds to [`BUILD_META_INSERT`] and
//! [`SHARDS_INSERT`] after creating [`BUILD_META_DDL`] and [`SHARDS_DDL`]),
//! and [`py_json`], the JSON text style of every JSON column (Python's
//! `json.dumps(value, sort_keys=True)`). For every valid manifest `m`,
//! parsing the image made of those rows gives back `m`.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::Write as _;

use serde_json::{Map, Value as Json};

use crate::error::{Error, Result};
use crate::routing_value::{json_kind, RoutingValue};
use crate::sqlite::{Database, Row, Table, Value};
use crate::types::{Metric, ShardDetail, ShardId, SnapshotInfo, Strategy};

/// The only manifest format version this crate reads and writes.
pub const FORMAT_VERSION: i64 = 4;

/// Largest accepted `num_dbs`. A manifest is tiny whatever its shard count,
/// so without a bound a hostile one could make every per-shard table (shard
/// details, caches) enormous.
pub const MAX_NUM_DBS: u32 = 1 << 20;

/// `build_meta` as the reference writer creates it (its DDL verbatim):
/// what writers must create so that either side can read the manifest.
pub const BUILD_META_DDL: &str = "CREATE TABLE build_meta (
    run_id           TEXT    NOT NULL,
    created_at       TEXT    NOT NULL,
    num_dbs          INTEGER NOT NULL,
    s3_prefix        TEXT    NOT NULL,
    key_col          TEXT    NOT NULL,
    sharding         TEXT    NOT NULL,
    db_path_template TEXT    NOT NULL,
    shard_prefix     TEXT    NOT NULL,
    format_version   INTEGER NOT NULL,
    key_encoding     TEXT    NOT NULL,
    custom           TEXT    NOT NULL DEFAULT '{}'
)";

/// `shards` as the reference writer creates it (its DDL verbatim).
pub const SHARDS_DDL: &str = "CREATE TABLE shards (
    db_id         INTEGER NOT NULL PRIMARY KEY,
    db_url        TEXT,
    attempt       INTEGER NOT NULL,
    row_count     INTEGER NOT NULL,
    db_bytes      INTEGER NOT NULL,
    min_key       TEXT,
    max_key       TEXT,
    checkpoint_id TEXT,
    writer_info   TEXT    NOT NULL DEFAULT '{}'
)";

/// The insert of the `build_meta` row: binds [`Manifest::build_meta_row`]
/// (`?1`..`?11`, in [`BUILD_META_COLUMNS`] order).
pub const BUILD_META_INSERT: &str = "INSERT INTO build_meta (run_id, created_at, num_dbs, \
     s3_prefix, key_col, sharding, db_path_template, shard_prefix, format_version, \
     key_encoding, custom) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";

/// The insert of one `shards` row: binds [`ShardMeta::row`] (`?1`..`?9`, in
/// [`SHARDS_COLUMNS`] order).
pub const SHARDS_INSERT: &str = "INSERT INTO shards (db_id, db_url, attempt, row_count, \
     db_bytes, min_key, max_key, checkpoint_id, writer_info) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

/// The columns of [`BUILD_META_INSERT`], in binding order.
pub const BUILD_META_COLUMNS: [&str; 11] = [
    "run_id",
    "created_at",
    "num_dbs",
    "s3_prefix",
    "key_col",
    "sharding",
    "db_path_template",
    "shard_prefix",
    "format_version",
    "key_encoding",
    "custom",
];

/// The columns of [`SHARDS_INSERT`], in binding order.
pub const SHARDS_COLUMNS: [&str; 9] = [
    "db_id",
    "db_url",
    "attempt",
    "row_count",
    "db_bytes",
    "min_key",
    "max_key",
    "checkpoint_id",
    "writer_info",
];

/// `build_meta.key_col` of vector snapshots.
pub const VECTOR_KEY_COL: &str = "_vector_id";
/// `build_meta.key_encoding` of vector snapshots.
pub const VECTOR_KEY_ENCODING: &str = "raw";
/// `build_meta.shard_prefix` as the reference writes it by default.
pub const DEFAULT_SHARD_PREFIX: &str = "shards";

/// Largest LSH code width: codes are `u64`.
pub const MAX_HASH_BITS: u32 = 64;

/// The `build_meta` row.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildMeta {
    /// Run that produced the snapshot.
    pub run_id: String,
    /// When the run wrote the manifest (RFC 3339, as recorded).
    pub created_at: String,
    /// Number of shards.
    pub num_dbs: u32,
    /// The snapshot prefix at write time; recorded URLs start with it.
    pub s3_prefix: String,
    /// Key column name (`_vector_id`).
    pub key_col: String,
    /// The `sharding` JSON (for vector snapshots always the hash placeholder).
    pub sharding: Json,
    /// Shard directory template, e.g. `db={db_id:05d}`.
    pub db_path_template: String,
    /// Folder of the shards under the prefix (default `shards`).
    pub shard_prefix: String,
    /// Manifest format version (4).
    pub format_version: i64,
    /// Key encoding (`raw`).
    pub key_encoding: String,
}

/// One row of `shards`.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardMeta {
    /// Shard id.
    pub db_id: ShardId,
    /// Where the shard lives (a folder URL), if recorded.
    pub db_url: Option<String>,
    /// Writer attempt that produced it.
    pub attempt: i64,
    /// Number of vectors.
    pub row_count: u64,
    /// Size of the shard's bytes.
    pub db_bytes: u64,
    /// Smallest key (JSON) or none.
    pub min_key: Option<Json>,
    /// Largest key (JSON) or none.
    pub max_key: Option<Json>,
    /// Opaque content identity; changes whenever the bytes change.
    pub checkpoint_id: Option<String>,
    /// Writer details (JSON).
    pub writer_info: Json,
}

/// Declared type of a CEL column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CelColumnType {
    /// `int` (i64).
    Int,
    /// `uint` (u64).
    UInt,
    /// `string`.
    String,
    /// `bytes`.
    Bytes,
    /// `double`.
    Double,
    /// `bool`.
    Bool,
}

impl CelColumnType {
    /// The manifest name.
    pub fn as_str(self) -> &'static str {
        match self {
            CelColumnType::Int => "int",
            CelColumnType::UInt => "uint",
            CelColumnType::String => "string",
            CelColumnType::Bytes => "bytes",
            CelColumnType::Double => "double",
            CelColumnType::Bool => "bool",
        }
    }

    /// Parses a manifest name.
    pub fn parse(s: &str) -> Option<CelColumnType> {
        Some(match s {
            "int" => CelColumnType::Int,
            "uint" => CelColumnType::UInt,
            "string" => CelColumnType::String,
            "bytes" => CelColumnType::Bytes,
            "double" => CelColumnType::Double,
            "bool" => CelColumnType::Bool,
            _ => return None,
        })
    }
}

/// CEL routing spec: expression, typed columns, optional categorical values.
#[derive(Debug, Clone, PartialEq)]
pub struct CelSpec {
    /// The expression, e.g. `shard_hash(tenant) % 5u`.
    pub expr: String,
    /// Declared variables and their types.
    pub columns: BTreeMap<String, CelColumnType>,
    /// Categorical routing: the expression's value is looked up here and
    /// its index is the shard id.
    pub routing_values: Option<Vec<RoutingValue>>,
}

/// The `custom.vector` section.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorMeta {
    /// Vector dimension.
    pub dim: usize,
    /// Distance metric.
    pub metric: Metric,
    /// Sharding strategy.
    pub strategy: Strategy,
    /// Default number of shards to probe (CLUSTER, LSH); at least 1.
    pub num_probes: u32,
    /// URL of `centroids.npy` (CLUSTER).
    pub centroids_ref: Option<String>,
    /// URL of `hyperplanes.npy` (LSH).
    pub hyperplanes_ref: Option<String>,
    /// Rows of the hyperplane matrix (LSH).
    pub num_hash_bits: Option<u32>,
    /// CEL spec (CEL).
    pub cel: Option<CelSpec>,
    /// Informational: index type.
    pub index_type: Option<String>,
    /// Informational: quantization.
    pub quantization: Option<String>,
    /// Informational: number of vectors written.
    pub total_vectors: Option<u64>,
    /// Keys of `custom.vector` this crate does not know, kept verbatim.
    pub extra: Map<String, Json>,
}

/// A parsed, validated manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// The `build_meta` row.
    pub build: BuildMeta,
    /// Non-empty shards, sorted by id.
    pub shards: Vec<ShardMeta>,
    /// The `custom.vector` section.
    pub vector: VectorMeta,
    /// The other top-level keys of `custom`: user fields, kept verbatim.
    pub user_fields: Map<String, Json>,
}

impl Manifest {
    /// Parses and validates a manifest image.
    pub fn parse(bytes: &[u8]) -> Result<Manifest> {
        let db = Database::open(bytes)?;
        let build_table = db.table("build_meta")?;
        let rows = db.rows(&build_table)?;
        let row = match rows.as_slice() {
            [row] => row,
            _ => {
                return Err(Error::field(
                    "build_meta",
                    format!("expected exactly one row, found {}", rows.len()),
                ))
            }
        };
        let b = Cols::new(&build_table, row);
        let num_dbs_raw = b.int("num_dbs")?;
        let num_dbs = u32::try_from(num_dbs_raw)
            .ok()
            .filter(|&n| n > 0 && n <= MAX_NUM_DBS)
            .ok_or_else(|| {
                Error::field(
                    "build_meta.num_dbs",
                    format!("must be in 1..={MAX_NUM_DBS}, got {num_dbs_raw}"),
                )
            })?;
        let format_version = b.int("format_version")?;
        if format_version != FORMAT_VERSION {
            return Err(Error::field(
                "build_meta.format_version",
                format!("expected {FORMAT_VERSION}, got {format_version}"),
            ));
        }
        let custom = match b.opt_text("custom")? {
            None => Map::new(),
            Some(s) => match parse_json("build_meta.custom", &s)? {
                Json::Object(m) => m,
                other => {
                    return Err(Error::field(
                        "build_meta.custom",
                        format!("expected a JSON object, got {}", json_kind(&other)),
                    ))
                }
            },
        };
        let build = BuildMeta {
            run_id: b.text("run_id")?,
            created_at: b.text("created_at")?,
            num_dbs,
            s3_prefix: b.text("s3_prefix")?,
            key_col: b.text("key_col")?,
            sharding: parse_json("build_meta.sharding", &b.text("sharding")?)?,
            db_path_template: b.text("db_path_template")?,
            shard_prefix: b.text("shard_prefix")?,
            format_version,
            key_encoding: b.text("key_encoding")?,
        };

        let shard_table = db.table("shards")?;
        let shard_rows = db.rows(&shard_table)?;
        if shard_rows.len() > num_dbs as usize {
            return Err(Error::field(
                "shards",
                format!("{} rows for num_dbs {num_dbs}", shard_rows.len()),
            ));
        }
        let mut shards = Vec::with_capacity(shard_rows.len());
        for row in &shard_rows {
            shards.push(parse_shard(&shard_table, row, num_dbs)?);
        }
        shards.sort_by_key(|s| s.db_id);
        if let Some(w) = shards.windows(2).find(|w| w[0].db_id == w[1].db_id) {
            return Err(Error::field(
                "shards.db_id",
                format!("duplicate db_id {}", w[0].db_id),
            ));
        }

        let mut user_fields = custom;
        let vector = match user_fields.remove("vector") {
            Some(Json::Object(v)) => parse_vector(v, num_dbs)?,
            _ => return Err(Error::NotVectorSnapshot),
        };
        Ok(Manifest {
            build,
            shards,
            vector,
            user_fields,
        })
    }

    /// Number of shards.
    pub fn num_dbs(&self) -> u32 {
        self.build.num_dbs
    }

    /// The row of shard `id`, or `None` for an empty shard.
    pub fn shard(&self, id: ShardId) -> Option<&ShardMeta> {
        self.shards
            .binary_search_by_key(&id, |s| s.db_id)
            .ok()
            .map(|i| &self.shards[i])
    }

    /// Sum of the shards' row counts.
    pub fn total_vectors(&self) -> u64 {
        self.shards
            .iter()
            .fold(0u64, |acc, s| acc.saturating_add(s.row_count))
    }

    /// Snapshot facts for a manifest found at `manifest_url`.
    pub fn snapshot_info(&self, manifest_url: &str) -> SnapshotInfo {
        SnapshotInfo {
            run_id: self.build.run_id.clone(),
            num_dbs: self.build.num_dbs,
            dim: self.vector.dim,
            metric: self.vector.metric,
            sharding: self.vector.strategy,
            manifest_ref: manifest_url.to_string(),
            total_vectors: self.total_vectors(),
        }
    }

    /// Detail of shard `id` (empty shards: count 0, no URL).
    pub fn shard_detail(&self, id: ShardId) -> ShardDetail {
        match self.shard(id) {
            Some(s) => ShardDetail {
                db_id: id,
                db_url: s.db_url.clone(),
                vector_count: s.row_count,
                checkpoint_id: s.checkpoint_id.clone(),
            },
            None => ShardDetail {
                db_id: id,
                db_url: None,
                vector_count: 0,
                checkpoint_id: None,
            },
        }
    }

    /// Details of every shard `0..num_dbs`, empty ones included.
    pub fn shard_details(&self) -> Vec<ShardDetail> {
        (0..self.build.num_dbs)
            .map(|i| self.shard_detail(ShardId(i)))
            .collect()
    }
}

fn parse_json(field: &str, s: &str) -> Result<Json> {
    serde_json::from_str(s).map_err(|e| Error::field(field, format!("invalid JSON: {e}")))
}

/// Typed access to one row's columns by name.
struct Cols<'a> {
    table: &'a Table,
    row: &'a Row,
}

impl<'a> Cols<'a> {
    fn new(table: &'a Table, row: &'a Row) -> Self {
        Cols { table, row }
    }

    fn get(&self, col: &str) -> Result<&'a Value> {
        let i = self.table.column(col)?;
        // `rows()` pads every row to the column count.
        self.row
            .values
            .get(i)
            .ok_or_else(|| Error::field(self.name(col), "missing value"))
    }

    fn name(&self, col: &str) -> String {
        format!("{}.{col}", self.table.name)
    }

    fn int(&self, col: &str) -> Result<i64> {
        match self.get(col)? {
            Value::Integer(i) => Ok(*i),
            v => Err(Error::field(
                self.name(col),
                format!("expected INTEGER, got {}", v.type_name()),
            )),
        }
    }

    fn text(&self, col: &str) -> Result<String> {
        self.opt_text(col)?
            .ok_or_else(|| Error::field(self.name(col), "expected TEXT, got NULL"))
    }

    fn opt_text(&self, col: &str) -> Result<Option<String>> {
        match self.get(col)? {
            Value::Text(s) => Ok(Some(s.clone())),
            Value::Null => Ok(None),
            v => Err(Error::field(
                self.name(col),
                format!("expected TEXT, got {}", v.type_name()),
            )),
        }
    }

    fn opt_json(&self, col: &str) -> Result<Option<Json>> {
        match self.opt_text(col)? {
            Some(s) => Ok(Some(parse_json(&self.name(col), &s)?)),
            None => Ok(None),
        }
    }
}

fn parse_shard(table: &Table, row: &Row, num_dbs: u32) -> Result<ShardMeta> {
    let c = Cols::new(table, row);
    let db_id = c.int("db_id")?;
    let db_id = ShardId::checked(i128::from(db_id), num_dbs)
        .map_err(|_| Error::field("shards.db_id", format!("{db_id} is outside [0, {num_dbs})")))?;
    let non_negative = |col: &str| -> Result<u64> {
        let v = c.int(col)?;
        u64::try_from(v).map_err(|_| Error::field(c.name(col), format!("negative value {v}")))
    };
    Ok(ShardMeta {
        db_id,
        db_url: c.opt_text("db_url")?,
        attempt: c.int("attempt")?,
        row_count: non_negative("row_count")?,
        db_bytes: non_negative("db_bytes")?,
        min_key: c.opt_json("min_key")?,
        max_key: c.opt_json("max_key")?,
        checkpoint_id: c.opt_text("checkpoint_id")?,
        writer_info: c.opt_json("writer_info")?.unwrap_or(Json::Null),
    })
}

fn vfield(key: &str) -> String {
    format!("custom.vector.{key}")
}

fn take_str(v: &mut Map<String, Json>, key: &str) -> Result<Option<String>> {
    match v.remove(key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => Ok(Some(s)),
        Some(other) => Err(Error::field(
            vfield(key),
            format!("expected a string, got {}", json_kind(&other)),
        )),
    }
}

fn take_uint(v: &mut Map<String, Json>, key: &str) -> Result<Option<u64>> {
    match v.remove(key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::Number(n)) => n.as_u64().map(Some).ok_or_else(|| {
            Error::field(
                vfield(key),
                format!("expected a non-negative integer, got {n}"),
            )
        }),
        Some(other) => Err(Error::field(
            vfield(key),
            format!("expected an integer, got {}", json_kind(&other)),
        )),
    }
}

fn parse_vector(mut v: Map<String, Json>, num_dbs: u32) -> Result<VectorMeta> {
    let dim = take_uint(&mut v, "dim")?
        .filter(|&d| d > 0)
        .ok_or_else(|| Error::field(vfield("dim"), "must be a positive integer"))?;
    let dim = usize::try_from(dim).map_err(|_| Error::field(vfield("dim"), "too large"))?;
    let metric_s =
        take_str(&mut v, "metric")?.ok_or_else(|| Error::field(vfield("metric"), "missing"))?;
    let metric = Metric::parse(&metric_s)
        .ok_or_else(|| Error::field(vfield("metric"), format!("unknown metric `{metric_s}`")))?;
    let strategy_s = take_str(&mut v, "sharding_strategy")?
        .ok_or_else(|| Error::field(vfield("sharding_strategy"), "missing"))?;
    let strategy = Strategy::parse(&strategy_s).ok_or_else(|| {
        Error::field(
            vfield("sharding_strategy"),
            format!("unknown strategy `{strategy_s}`"),
        )
    })?;
    let num_probes = match take_uint(&mut v, "num_probes")? {
        None => 1,
        Some(n) => u32::try_from(n).ok().filter(|&n| n > 0).ok_or_else(|| {
            Error::field(vfield("num_probes"), format!("must be in 1..2^32, got {n}"))
        })?,
    };
    let centroids_ref = take_str(&mut v, "centroids_ref")?;
    let hyperplanes_ref = take_str(&mut v, "hyperplanes_ref")?;
    let num_hash_bits = match take_uint(&mut v, "num_hash_bits")? {
        None => None,
        Some(n) if n >= 1 && n <= u64::from(MAX_HASH_BITS) => Some(n as u32),
        Some(n) => {
            return Err(Error::field(
                vfield("num_hash_bits"),
                format!("must be in 1..={MAX_HASH_BITS}, got {n}"),
            ))
        }
    };
    let cel_expr = take_str(&mut v, "cel_expr")?;
    let cel_columns = match v.remove("cel_columns") {
        None | Some(Json::Null) => None,
        Some(Json::Object(m)) => {
            let mut cols = BTreeMap::new();
            for (name, ty) in m {
                let ty_s = ty.as_str().unwrap_or("");
                let ty = CelColumnType::parse(ty_s).ok_or_else(|| {
                    Error::field(
                        format!("custom.vector.cel_columns.{name}"),
                        format!("unknown CEL type {ty}"),
                    )
                })?;
                cols.insert(name, ty);
            }
            Some(cols)
        }
        Some(other) => {
            return Err(Error::field(
                vfield("cel_columns"),
                format!("expected an object, got {}", json_kind(&other)),
            ))
        }
    };
    let routing_values = match v.remove("routing_values") {
        None | Some(Json::Null) => None,
        Some(Json::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                out.push(RoutingValue::from_json(item).ok_or_else(|| {
                    Error::field(
                        format!("custom.vector.routing_values[{i}]"),
                        format!("not a scalar: {item}"),
                    )
                })?);
            }
            if out.len() > num_dbs as usize {
                return Err(Error::field(
                    vfield("routing_values"),
                    format!("{} values for {num_dbs} shards", out.len()),
                ));
            }
            Some(out)
        }
        Some(other) => {
            return Err(Error::field(
                vfield("routing_values"),
                format!("expected an array, got {}", json_kind(&other)),
            ))
        }
    };

    let cel = match strategy {
        Strategy::Cel => Some(CelSpec {
            expr: cel_expr.ok_or_else(|| {
                Error::field(vfield("cel_expr"), "CEL snapshots need an expression")
            })?,
            columns: cel_columns.unwrap_or_default(),
            routing_values,
        }),
        _ => None,
    };
    match strategy {
        Strategy::Cluster if centroids_ref.is_none() => {
            return Err(Error::field(
                vfield("centroids_ref"),
                "CLUSTER snapshots need centroids",
            ))
        }
        Strategy::Lsh if hyperplanes_ref.is_none() => {
            return Err(Error::field(
                vfield("hyperplanes_ref"),
                "LSH snapshots need hyperplanes",
            ))
        }
        _ => {}
    }
    Ok(VectorMeta {
        dim,
        metric,
        strategy,
        num_probes,
        centroids_ref,
        hyperplanes_ref,
        num_hash_bits,
        cel,
        index_type: take_str(&mut v, "index_type")?,
        quantization: take_str(&mut v, "quantization")?,
        total_vectors: take_uint(&mut v, "total_vectors")?,
        extra: v,
    })
}
