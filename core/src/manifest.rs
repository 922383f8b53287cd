//! The manifest of one publish: a typed, validated view of its SQLite image.
//!
//! [`Manifest::parse`] reads `build_meta` (one row) and `shards` (one row per
//! non-empty shard) by column name with the [`sqlite`](crate::sqlite) reader,
//! then applies the validation of docs/format.md (any failure is a manifest parse
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
use crate::layout::DB_PATH_TEMPLATE;
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

// ---- encoding -------------------------------------------------------------

impl BuildMeta {
    /// The `build_meta` row of a vector snapshot, as the reference fills it:
    /// key column [`VECTOR_KEY_COL`], the hash placeholder
    /// [`BuildMeta::vector_sharding`], [`DB_PATH_TEMPLATE`],
    /// [`DEFAULT_SHARD_PREFIX`], [`FORMAT_VERSION`] and
    /// [`VECTOR_KEY_ENCODING`].
    pub fn for_vectors(
        run_id: impl Into<String>,
        created_at: impl Into<String>,
        num_dbs: u32,
        s3_prefix: impl Into<String>,
    ) -> BuildMeta {
        BuildMeta {
            run_id: run_id.into(),
            created_at: created_at.into(),
            num_dbs,
            s3_prefix: s3_prefix.into(),
            key_col: VECTOR_KEY_COL.to_string(),
            sharding: BuildMeta::vector_sharding(),
            db_path_template: DB_PATH_TEMPLATE.to_string(),
            shard_prefix: DEFAULT_SHARD_PREFIX.to_string(),
            format_version: FORMAT_VERSION,
            key_encoding: VECTOR_KEY_ENCODING.to_string(),
        }
    }

    /// The `sharding` JSON of vector snapshots: the reference's key-value
    /// sharding spec left at hash with no CEL fields (vector routing lives
    /// in `custom.vector`).
    pub fn vector_sharding() -> Json {
        let mut m = Map::new();
        m.insert("cel_columns".to_string(), Json::Null);
        m.insert("cel_expr".to_string(), Json::Null);
        m.insert("hash_algorithm".to_string(), Json::from("xxh3_64"));
        m.insert("routing_values".to_string(), Json::Null);
        m.insert("strategy".to_string(), Json::from("hash"));
        Json::Object(m)
    }
}

impl ShardMeta {
    /// The `shards` row, in [`SHARDS_COLUMNS`] order, for
    /// [`SHARDS_INSERT`]. JSON columns are [`py_json`] text; `min_key` and
    /// `max_key` are NULL when absent. Counts above `i64::MAX` (which
    /// SQLite cannot store) saturate.
    pub fn row(&self) -> [Value; 9] {
        let int = |n: u64| Value::Integer(i64::try_from(n).unwrap_or(i64::MAX));
        let opt_text = |s: &Option<String>| s.clone().map_or(Value::Null, Value::Text);
        let opt_json =
            |j: &Option<Json>| j.as_ref().map_or(Value::Null, |j| Value::Text(py_json(j)));
        [
            Value::Integer(i64::from(self.db_id.0)),
            opt_text(&self.db_url),
            Value::Integer(self.attempt),
            int(self.row_count),
            int(self.db_bytes),
            opt_json(&self.min_key),
            opt_json(&self.max_key),
            opt_text(&self.checkpoint_id),
            Value::Text(py_json(&self.writer_info)),
        ]
    }

    /// `writer_info` as the reference records it for a shard written by
    /// one process: `{"attempt", "duration_ms", "stage_id": null,
    /// "task_attempt_id": null}`.
    pub fn reference_writer_info(attempt: i64, duration_ms: u64) -> Json {
        let mut m = Map::new();
        m.insert("attempt".to_string(), Json::from(attempt));
        m.insert("duration_ms".to_string(), Json::from(duration_ms));
        m.insert("stage_id".to_string(), Json::Null);
        m.insert("task_attempt_id".to_string(), Json::Null);
        Json::Object(m)
    }
}

impl VectorMeta {
    /// The `custom.vector` keys this crate reads into typed fields. An
    /// [`extra`](VectorMeta::extra) entry with one of these names is never
    /// encoded: the typed field owns the key.
    pub const KNOWN_KEYS: [&'static str; 13] = [
        "dim",
        "metric",
        "sharding_strategy",
        "num_probes",
        "centroids_ref",
        "hyperplanes_ref",
        "num_hash_bits",
        "cel_expr",
        "cel_columns",
        "routing_values",
        "index_type",
        "quantization",
        "total_vectors",
    ];

    /// The `custom.vector` object, with the keys the reference writes:
    ///
    /// - always `dim`, `metric`, `sharding_strategy`, `num_probes`,
    ///   `index_type`, `quantization` and `total_vectors` (the last three as
    ///   `null` when absent; the reference writes `"quantization": null`);
    /// - `centroids_ref`, `hyperplanes_ref` and `num_hash_bits` only when
    ///   present (the reference omits them for the other strategies);
    /// - with a CEL spec, `cel_expr` and `cel_columns`, and
    ///   `routing_values` only when present (omitted, not `null`, for
    ///   non-categorical CEL);
    /// - then every [`extra`](VectorMeta::extra) entry whose key is not in
    ///   [`KNOWN_KEYS`](VectorMeta::KNOWN_KEYS).
    pub fn to_json(&self) -> Map<String, Json> {
        let mut v = Map::new();
        let opt_str = |s: &Option<String>| s.clone().map_or(Json::Null, Json::String);
        v.insert("dim".to_string(), Json::from(self.dim as u64));
        v.insert("metric".to_string(), Json::from(self.metric.as_str()));
        v.insert(
            "sharding_strategy".to_string(),
            Json::from(self.strategy.as_str()),
        );
        v.insert("num_probes".to_string(), Json::from(self.num_probes));
        v.insert("index_type".to_string(), opt_str(&self.index_type));
        v.insert("quantization".to_string(), opt_str(&self.quantization));
        v.insert(
            "total_vectors".to_string(),
            self.total_vectors.map_or(Json::Null, Json::from),
        );
        if let Some(r) = &self.centroids_ref {
            v.insert("centroids_ref".to_string(), Json::from(r.as_str()));
        }
        if let Some(r) = &self.hyperplanes_ref {
            v.insert("hyperplanes_ref".to_string(), Json::from(r.as_str()));
        }
        if let Some(b) = self.num_hash_bits {
            v.insert("num_hash_bits".to_string(), Json::from(b));
        }
        if let Some(cel) = &self.cel {
            v.insert("cel_expr".to_string(), Json::from(cel.expr.as_str()));
            v.insert(
                "cel_columns".to_string(),
                Json::Object(
                    cel.columns
                        .iter()
                        .map(|(k, t)| (k.clone(), Json::from(t.as_str())))
                        .collect(),
                ),
            );
            if let Some(values) = &cel.routing_values {
                v.insert(
                    "routing_values".to_string(),
                    Json::Array(values.iter().map(RoutingValue::to_json).collect()),
                );
            }
        }
        for (k, x) in &self.extra {
            if !VectorMeta::KNOWN_KEYS.contains(&k.as_str()) {
                v.insert(k.clone(), x.clone());
            }
        }
        v
    }
}

impl Manifest {
    /// The `custom` object: the user fields and `vector`
    /// ([`VectorMeta::to_json`]; a user field named `vector` is replaced).
    pub fn custom(&self) -> Map<String, Json> {
        let mut custom = self.user_fields.clone();
        custom.insert("vector".to_string(), Json::Object(self.vector.to_json()));
        custom
    }

    /// The `build_meta.custom` text ([`py_json`] of [`Manifest::custom`]).
    pub fn custom_text(&self) -> String {
        py_json(&Json::Object(self.custom()))
    }

    /// The `build_meta` row, in [`BUILD_META_COLUMNS`] order, for
    /// [`BUILD_META_INSERT`]. JSON columns are [`py_json`] text.
    pub fn build_meta_row(&self) -> [Value; 11] {
        let b = &self.build;
        [
            Value::Text(b.run_id.clone()),
            Value::Text(b.created_at.clone()),
            Value::Integer(i64::from(b.num_dbs)),
            Value::Text(b.s3_prefix.clone()),
            Value::Text(b.key_col.clone()),
            Value::Text(py_json(&b.sharding)),
            Value::Text(b.db_path_template.clone()),
            Value::Text(b.shard_prefix.clone()),
            Value::Integer(b.format_version),
            Value::Text(b.key_encoding.clone()),
            Value::Text(self.custom_text()),
        ]
    }

    /// The `shards` rows ([`ShardMeta::row`]), by shard id.
    pub fn shard_rows(&self) -> Vec<[Value; 9]> {
        self.shards.iter().map(ShardMeta::row).collect()
    }
}

// ---- JSON text in the reference's style -----------------------------------

/// JSON text exactly as the reference writes its JSON columns: Python's
/// `json.dumps(value, sort_keys=True)` — keys sorted by code point at every
/// level, `", "` and `": "` separators, every character outside printable
/// ASCII escaped (`\n`-style short escapes, otherwise `\u00e9`, astral
/// characters as surrogate pairs, lower-case hex), floats as Python's
/// `repr` (`1.0`, `1e-05`, `1e+16`).
pub fn py_json(v: &Json) -> String {
    let mut out = String::new();
    write_py_json(v, &mut out);
    out
}

/// [`py_json`], appending to `out`.
pub fn write_py_json(v: &Json, out: &mut String) {
    match v {
        Json::Null => out.push_str("null"),
        Json::Bool(true) => out.push_str("true"),
        Json::Bool(false) => out.push_str("false"),
        Json::Number(n) => write_py_number(n, out),
        Json::String(s) => write_py_str(s, out),
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_py_json(item, out);
            }
            out.push(']');
        }
        Json::Object(map) => {
            // Sorted whatever map type serde_json was built with; `str`
            // order is code point order, as Python sorts.
            let mut entries: Vec<(&String, &Json)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_py_str(k, out);
                out.push_str(": ");
                write_py_json(item, out);
            }
            out.push('}');
        }
    }
}

/// A string as Python's `json.dumps` with `ensure_ascii=True` writes it.
fn write_py_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

fn write_py_number(n: &serde_json::Number, out: &mut String) {
    if let Some(i) = n.as_i64() {
        let _ = write!(out, "{i}");
    } else if let Some(u) = n.as_u64() {
        let _ = write!(out, "{u}");
    } else if let Some(f) = n.as_f64() {
        write_py_float(f, out);
    }
}

/// A float as Python's `float.__repr__`: the shortest digits that round
/// trip; positional when the decimal exponent is in `-4..16`, otherwise
/// `d.ddde±XX`.
fn write_py_float(f: f64, out: &mut String) {
    if !f.is_finite() {
        // Unreachable for serde_json values; Python's spelling.
        out.push_str(if f.is_nan() {
            "NaN"
        } else if f > 0.0 {
            "Infinity"
        } else {
            "-Infinity"
        });
        return;
    }
    if f.is_sign_negative() {
        out.push('-');
    }
    if f == 0.0 {
        out.push_str("0.0");
        return;
    }
    let (digits, exp) = shortest_digits(f.abs());
    // Position of the decimal point relative to the digits.
    let point = exp + 1;
    if !(-4 < point && point <= 16) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let sign = if exp < 0 { '-' } else { '+' };
        let _ = write!(out, "e{sign}{:02}", exp.unsigned_abs());
    } else if point <= 0 {
        out.push_str("0.");
        for _ in 0..-point {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        let point = point as usize;
        if point < digits.len() {
            out.push_str(&digits[..point]);
            out.push('.');
            out.push_str(&digits[point..]);
        } else {
            out.push_str(&digits);
            for _ in digits.len()..point {
                out.push('0');
            }
            out.push_str(".0");
        }
    }
}

/// The shortest decimal digits of `a > 0` that parse back to `a`, and the
/// decimal exponent of the first: `a ≈ d.ddd × 10^exp`. When two such
/// digit strings are equally close to `a`, Python (David Gay's `dtoa`)
/// takes the even one, where Rust's formatting rounds up.
fn shortest_digits(a: f64) -> (String, i32) {
    let (digits, exp) = split_sci(&format!("{a:e}"));
    // The exact value (a double has at most 767 significant digits): a tie
    // is an exact value one digit longer than the shortest, ending in 5.
    let (exact, exact_exp) = split_sci(&format!("{a:.800e}"));
    if exact_exp == exp && exact.len() == digits.len() + 1 && exact.ends_with('5') {
        let lo = &exact[..digits.len()];
        let lo_even = lo.ends_with(['0', '2', '4', '6', '8']);
        let (even, even_exp) = if lo_even {
            (trim_zeros(lo), exp)
        } else {
            increment(lo, exp)
        };
        if sci_value(&even, even_exp) == Some(a) {
            return (even, even_exp);
        }
    }
    (digits, exp)
}

/// `d[.ddd]e[-]x` → (digits without trailing zeros, x).
fn split_sci(s: &str) -> (String, i32) {
    let (mantissa, exp) = s.split_once('e').unwrap_or((s, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    (trim_zeros(&digits), exp.parse().unwrap_or(0))
}

fn trim_zeros(digits: &str) -> String {
    let t = digits.trim_end_matches('0');
    String::from(if t.is_empty() { "0" } else { t })
}

/// `digits + 1` in the last place (carrying into a new leading digit).
fn increment(digits: &str, exp: i32) -> (String, i32) {
    let mut d: Vec<u8> = digits.bytes().collect();
    for i in (0..d.len()).rev() {
        if d[i] == b'9' {
            d[i] = b'0';
        } else {
            d[i] += 1;
            return (trim_zeros(&String::from_utf8_lossy(&d)), exp);
        }
    }
    (String::from("1"), exp + 1)
}

fn sci_value(digits: &str, exp: i32) -> Option<f64> {
    let (first, rest) = digits.split_at(1);
    format!("{first}.{rest}0e{exp}").parse().ok()
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_text_matches_pythons_sort_keys_dumps() {
        // Expected texts printed by CPython 3's json.dumps(v, sort_keys=True).
        let v = json!({"b": [1, 2.5, null], "a": {"z": true,
            "y": "é\"\u{7f}\u{0}\u{1f}\u{2028}🙂\n\t\u{8}\u{c}\r/\\"},
            "Z": -5, "é": u64::MAX});
        assert_eq!(
            py_json(&v),
            r#"{"Z": -5, "a": {"y": "\u00e9\"\u007f\u0000\u001f\u2028\ud83d\ude42\n\t\b\f\r/\\", "z": true}, "b": [1, 2.5, null], "\u00e9": 18446744073709551615}"#
        );
        assert_eq!(
            py_json(&BuildMeta::vector_sharding()),
            r#"{"cel_columns": null, "cel_expr": null, "hash_algorithm": "xxh3_64", "routing_values": null, "strategy": "hash"}"#
        );
        assert_eq!(
            py_json(&ShardMeta::reference_writer_info(0, 0)),
            r#"{"attempt": 0, "duration_ms": 0, "stage_id": null, "task_attempt_id": null}"#
        );
    }

    #[test]
    // The literals are CPython's own test values, digits included.
    #[allow(clippy::excessive_precision, clippy::approx_constant)]
    fn floats_print_as_python_repr() {
        let cases: [(f64, &str); 22] = [
            (0.1, "0.1"),
            (1.0, "1.0"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (9999999999999998.0, "9999999999999998.0"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (0.00012345, "0.00012345"),
            (123456789.125, "123456789.125"),
            (1.5e300, "1.5e+300"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (2.5e-7, "2.5e-07"),
            (-3.14, "-3.14"),
            (1e22, "1e+22"),
            (100.0, "100.0"),
            // Ties between two shortest candidates go to the even one.
            (2249082146819912.25, "2249082146819912.2"),
            (215713215722524.125, "215713215722524.12"),
            (-163207628571124.625, "-163207628571124.62"),
            (1e23, "1e+23"),
        ];
        for (f, want) in cases {
            assert_eq!(py_json(&Json::from(f)), want, "{f:?}");
        }
    }

    #[test]
    fn insert_statements_name_the_columns_in_row_order() {
        let cols = |sql: &str| -> Vec<String> {
            let inner = &sql[sql.find('(').unwrap() + 1..sql.find(')').unwrap()];
            inner.split(',').map(|c| c.trim().to_string()).collect()
        };
        assert_eq!(cols(BUILD_META_INSERT), BUILD_META_COLUMNS);
        assert_eq!(cols(SHARDS_INSERT), SHARDS_COLUMNS);
        for c in BUILD_META_COLUMNS {
            assert!(BUILD_META_DDL.contains(&format!("\n    {c} ")), "{c}");
        }
        for c in SHARDS_COLUMNS {
            assert!(SHARDS_DDL.contains(&format!("\n    {c} ")), "{c}");
        }
        assert!(BUILD_META_INSERT.ends_with("?11)"));
        assert!(SHARDS_INSERT.ends_with("?9)"));
    }

    #[test]
    fn extra_keys_never_shadow_typed_fields() {
        let mut extra = Map::new();
        extra.insert("centroids_ref".to_string(), json!("s3://elsewhere"));
        extra.insert("metric".to_string(), json!("l2"));
        extra.insert("future_key".to_string(), json!({"a": 1}));
        let v = VectorMeta {
            dim: 3,
            metric: Metric::Cosine,
            strategy: Strategy::Explicit,
            num_probes: 1,
            centroids_ref: None,
            hyperplanes_ref: None,
            num_hash_bits: None,
            cel: None,
            index_type: Some("hnsw".to_string()),
            quantization: None,
            total_vectors: Some(7),
            extra,
        };
        assert_eq!(
            py_json(&Json::Object(v.to_json())),
            r#"{"dim": 3, "future_key": {"a": 1}, "index_type": "hnsw", "metric": "cosine", "num_probes": 1, "quantization": null, "sharding_strategy": "explicit", "total_vectors": 7}"#
        );
    }
}
