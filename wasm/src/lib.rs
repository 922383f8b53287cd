//! # shardvec-wasm
//!
//! WebAssembly bindings of [`shardvec_core`] for edge workers and browsers:
//! they compute exactly the routes the native reader computes, from the same
//! snapshot files, with the same code, and merge per-shard results.
//!
//! Main types: [`Snapshot`] (built from the snapshot's raw files with
//! [`Snapshot::from_parts`], or fetched over HTTP(S) with
//! [`Snapshot::open`]) and the free function [`merge`].
//!
//! Values cross the boundary as plain JavaScript values: options and routing
//! contexts are plain objects, results are plain objects and arrays (built
//! from the core types' serde form, so their keys are the JSON keys the CLI
//! and the host server print). 64-bit integers that do not fit a JS number
//! (LSH codes of more than 53 bits, `uint` routing values) become `BigInt`s,
//! and a `BigInt` or a `Uint8Array` (CEL `bytes`) is accepted in a routing
//! context.
//!
//! Errors become JavaScript `Error`s carrying the core error's message (for
//! [`Snapshot::open`], prefixed with the URL at fault, as the native reader
//! does). Inputs are validated before they reach the core, so no panic
//! reaches JavaScript; debug builds install a panic hook that logs to
//! `console.error` all the same.

use shardvec_core::npy::Matrix;
use shardvec_core::{
    CurrentPointer, Manifest, ManifestRef, RouteOptions, Router, RoutingArtefacts, RoutingContext,
    ShardId,
};
use wasm_bindgen::prelude::*;

use js_sys::{Array, Object, Reflect, Uint8Array};
use serde_json::{Map, Value as Json};

mod edge;
mod http;
mod location;

pub use edge::EdgeClient;
use http::fetch_bytes;
pub use location::{manifest_key, resolve_key, ForeignUrl};
use std::rc::Rc;

fn js_err(e: impl core::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

/// Largest integer a JS number holds exactly (`Number.MAX_SAFE_INTEGER`).
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// Deepest nesting accepted in a JS value (routing contexts, payloads).
const MAX_DEPTH: usize = 64;

#[cfg(debug_assertions)]
#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn console_error(message: &str);
}

/// Debug builds only: panics are logged to `console.error` (release builds
/// carry no hook; nothing is expected to panic).
#[cfg(debug_assertions)]
#[wasm_bindgen(start)]
pub fn start() {
    std::panic::set_hook(Box::new(|info| {
        console_error(&format!("shardvec-wasm panicked: {info}"))
    }));
}

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &str = r#"
/** Routing inputs of `route` and `explain` (snake_case names work too). */
export interface RouteOptions {
  numProbes?: number;
  shardIds?: number[];
  routingContext?: Record<string, string | number | bigint | boolean | Uint8Array>;
}
/** `Snapshot.info()`, as the CLI's `info --json`. */
export interface SnapshotInfo {
  run_id: string;
  num_dbs: number;
  dim: number;
  metric: "cosine" | "l2" | "dot_product";
  sharding: "cluster" | "lsh" | "explicit" | "cel";
  manifest_ref: string | null;
  total_vectors: number;
}
/** One shard; empty shards have `vector_count` 0 and no URL. */
export interface ShardDetail {
  db_id: number;
  db_url: string | null;
  vector_count: number;
  checkpoint_id: string | null;
}
/** Why a route is what it is (`shards` equals `route`). */
export type Explanation =
  | { kind: "explicit"; shards: number[] }
  | { kind: "cluster"; distances: number[]; ranking: number[]; shards: number[] }
  | {
      kind: "lsh";
      projections: number[];
      code: number | bigint;
      buckets: { flipped_bit: number | null; code: number | bigint; shard: number; probed: boolean }[];
      shards: number[];
    }
  | { kind: "cel"; value: unknown; categorical_index: number | null; shards: number[] };
/** A search hit as shards and the host server report it. */
export interface SearchHit {
  id: string | number | bigint;
  score: number;
  payload?: unknown;
  [extra: string]: unknown;
}
"#;

/// A snapshot's routing state: manifest, `_CURRENT` and artefacts.
/// Immutable; copies share it (an [`EdgeClient`] keeps one).
#[wasm_bindgen]
#[derive(Clone)]
pub struct Snapshot {
    data: Rc<SnapshotData>,
}

impl core::ops::Deref for Snapshot {
    type Target = SnapshotData;
    fn deref(&self) -> &SnapshotData {
        &self.data
    }
}

#[doc(hidden)]
pub struct SnapshotData {
    manifest: Manifest,
    manifest_ref: Option<ManifestRef>,
    router: Router,
    centroids: Option<Matrix>,
    hyperplanes: Option<Matrix>,
    base_url: Option<String>,
}

#[wasm_bindgen]
impl Snapshot {
    /// Builds a snapshot from the bytes of its manifest, the text of
    /// `_CURRENT` (optional; it gives the manifest URL reported by
    /// `info()`) and the routing artefacts the strategy needs
    /// (`centroids.npy` for CLUSTER, `hyperplanes.npy` for LSH).
    #[wasm_bindgen(js_name = fromParts)]
    pub fn from_parts(
        manifest: &[u8],
        current_json: Option<String>,
        centroids_npy: Option<Vec<u8>>,
        hyperplanes_npy: Option<Vec<u8>>,
    ) -> Result<Snapshot, JsError> {
        let manifest = Manifest::parse(manifest).map_err(js_err)?;
        let manifest_ref = match current_json {
            Some(s) => Some(
                CurrentPointer::parse(s.as_bytes())
                    .map_err(js_err)?
                    .manifest_ref(),
            ),
            None => None,
        };
        let centroids = centroids_npy
            .map(|b| Matrix::from_npy(&b, "centroids.npy"))
            .transpose()
            .map_err(js_err)?;
        let hyperplanes = hyperplanes_npy
            .map(|b| Matrix::from_npy(&b, "hyperplanes.npy"))
            .transpose()
            .map_err(js_err)?;
        Snapshot::build(manifest, manifest_ref, centroids, hyperplanes, None).map_err(js_err)
    }

    /// Opens the snapshot published under `baseUrl` (an `http(s)://` URL,
    /// or any URL the runtime's `fetch` accepts): fetches `_CURRENT`, the
    /// manifest it names and the routing artefacts the manifest names.
    ///
    /// URLs recorded in the snapshot start with the prefix it was written
    /// at (e.g. `s3://bucket/snap/...`); they are resolved against
    /// `baseUrl` as the native reader does, and one outside the snapshot
    /// (another prefix, `..`, `.`, `%` or `\` in a path) is refused.
    /// Uses the global `fetch` (browsers, workers, Node 18+).
    pub async fn open(
        #[wasm_bindgen(js_name = baseUrl)] base_url: String,
    ) -> Result<Snapshot, JsError> {
        let base = base_url.trim_end_matches('/').to_string();
        let current_url = format!("{base}/_CURRENT");
        let current_bytes = fetch_bytes(&current_url).await.map_err(js_err)?;
        let current = CurrentPointer::parse(&current_bytes)
            .map_err(|e| js_err(format!("{current_url}: {e}")))?;
        let manifest_ref = current.manifest_ref();
        let key = manifest_key(&manifest_ref.url).ok_or_else(|| {
            js_err(location::ForeignUrl {
                url: manifest_ref.url.clone(),
                prefix: base.clone(),
            })
        })?;
        let manifest_url = format!("{base}/{key}");
        let manifest_bytes = fetch_bytes(&manifest_url).await.map_err(js_err)?;
        let manifest = Manifest::parse(&manifest_bytes)
            .map_err(|e| js_err(format!("manifest {} cannot be read: {e}", manifest_ref.url)))?;
        let prefix = manifest.build.s3_prefix.clone();
        let mut artefacts = [None, None];
        let refs = [
            (manifest.vector.centroids_ref.clone(), "centroids.npy"),
            (manifest.vector.hyperplanes_ref.clone(), "hyperplanes.npy"),
        ];
        for (slot, (recorded, name)) in artefacts.iter_mut().zip(refs) {
            let Some(recorded) = recorded else { continue };
            let key = resolve_key(&recorded, &prefix, &base).map_err(js_err)?;
            let url = format!("{base}/{key}");
            let bytes = fetch_bytes(&url).await.map_err(js_err)?;
            let m = Matrix::from_npy(&bytes, name)
                .map_err(|e| js_err(format!("routing artefact {recorded}: {e}")))?;
            *slot = Some(m);
        }
        let [centroids, hyperplanes] = artefacts;
        Snapshot::build(
            manifest,
            Some(manifest_ref),
            centroids,
            hyperplanes,
            Some(base),
        )
        .map_err(js_err)
    }

    /// Snapshot facts, as the CLI's `info --json`: `{run_id, num_dbs, dim,
    /// metric, sharding, manifest_ref, total_vectors}` (`manifest_ref` is
    /// `null` when the snapshot was built without `_CURRENT`).
    #[wasm_bindgen(unchecked_return_type = "SnapshotInfo")]
    pub fn info(&self) -> Result<JsValue, JsError> {
        let url = self.manifest_ref.as_ref().map_or("", |r| r.url.as_str());
        let mut info = serde_json::to_value(self.manifest.snapshot_info(url)).map_err(js_err)?;
        if self.manifest_ref.is_none() {
            info["manifest_ref"] = Json::Null;
        }
        Ok(to_js(&info))
    }

    /// Every shard `0..num_dbs`, empty ones included:
    /// `[{db_id, db_url, vector_count, checkpoint_id}, ...]`.
    #[wasm_bindgen(unchecked_return_type = "ShardDetail[]")]
    pub fn shards(&self) -> Result<JsValue, JsError> {
        let details = serde_json::to_value(self.manifest.shard_details()).map_err(js_err)?;
        Ok(to_js(&details))
    }

    /// The `custom.vector` section of the manifest: `dim`, `metric`,
    /// `sharding_strategy`, `num_probes`, the artefact URLs, `num_hash_bits`,
    /// `cel_expr`, `cel_columns`, `routing_values` and the informational
    /// keys, plus any unknown keys verbatim.
    #[wasm_bindgen(js_name = vectorMeta, unchecked_return_type = "Record<string, unknown>")]
    pub fn vector_meta(&self) -> JsValue {
        let v = &self.manifest.vector;
        let mut m: Map<String, Json> = v.extra.clone();
        m.insert("dim".into(), Json::from(v.dim));
        m.insert("metric".into(), Json::from(v.metric.as_str()));
        m.insert("sharding_strategy".into(), Json::from(v.strategy.as_str()));
        m.insert("num_probes".into(), Json::from(v.num_probes));
        let opt_str = |s: &Option<String>| s.clone().map_or(Json::Null, Json::String);
        m.insert("centroids_ref".into(), opt_str(&v.centroids_ref));
        m.insert("hyperplanes_ref".into(), opt_str(&v.hyperplanes_ref));
        m.insert(
            "num_hash_bits".into(),
            v.num_hash_bits.map_or(Json::Null, Json::from),
        );
        let (expr, columns, values) = match &v.cel {
            Some(cel) => (
                Json::from(cel.expr.as_str()),
                Json::Object(
                    cel.columns
                        .iter()
                        .map(|(k, t)| (k.clone(), Json::from(t.as_str())))
                        .collect(),
                ),
                cel.routing_values.as_ref().map_or(Json::Null, |vals| {
                    Json::Array(vals.iter().map(|v| v.to_json()).collect())
                }),
            ),
            None => (Json::Null, Json::Null, Json::Null),
        };
        m.insert("cel_expr".into(), expr);
        m.insert("cel_columns".into(), columns);
        m.insert("routing_values".into(), values);
        m.insert("index_type".into(), opt_str(&v.index_type));
        m.insert("quantization".into(), opt_str(&v.quantization));
        m.insert(
            "total_vectors".into(),
            v.total_vectors.map_or(Json::Null, Json::from),
        );
        to_js(&Json::Object(m))
    }

    /// The manifest URL from `_CURRENT`, if known.
    #[wasm_bindgen(js_name = manifestRef)]
    pub fn manifest_ref(&self) -> Option<String> {
        self.manifest_ref.as_ref().map(|r| r.url.clone())
    }

    /// The prefix the snapshot was written at (`s3_prefix`); recorded URLs
    /// start with it.
    #[wasm_bindgen(getter, js_name = recordedPrefix)]
    pub fn recorded_prefix(&self) -> String {
        self.manifest.build.s3_prefix.clone()
    }

    /// The URL given to [`open`](Self::open) (no trailing slash), if the
    /// snapshot was opened from one.
    #[wasm_bindgen(getter, js_name = baseUrl)]
    pub fn base_url(&self) -> Option<String> {
        self.base_url.clone()
    }

    /// Maps a URL recorded in the snapshot (a shard's `db_url`, an artefact)
    /// to where it is under the URL the snapshot was opened at (or, for a
    /// snapshot built with `fromParts`, to its key relative to the prefix).
    /// Errors for URLs outside the snapshot.
    #[wasm_bindgen(js_name = resolveUrl)]
    pub fn resolve_url(&self, recorded_url: &str) -> Result<String, JsError> {
        let base = self.base_url.as_deref().unwrap_or("");
        let key =
            resolve_key(recorded_url, &self.manifest.build.s3_prefix, base).map_err(js_err)?;
        Ok(match &self.base_url {
            Some(b) => format!("{b}/{key}"),
            None => key,
        })
    }

    /// Vector dimension.
    #[wasm_bindgen(getter)]
    pub fn dim(&self) -> usize {
        self.router.dim()
    }

    /// Number of shards.
    #[wasm_bindgen(getter, js_name = numDbs)]
    pub fn num_dbs(&self) -> u32 {
        self.router.num_dbs()
    }

    /// Distance metric: `cosine`, `l2` or `dot_product`.
    #[wasm_bindgen(getter)]
    pub fn metric(&self) -> String {
        self.router.metric().as_str().to_string()
    }

    /// Sharding strategy: `cluster`, `lsh`, `explicit` or `cel`.
    #[wasm_bindgen(getter)]
    pub fn strategy(&self) -> String {
        self.router.strategy().as_str().to_string()
    }

    /// The manifest's default `num_probes`.
    #[wasm_bindgen(getter, js_name = defaultProbes)]
    pub fn default_probes(&self) -> u32 {
        self.router.default_probes()
    }

    /// The centroids (CLUSTER), row-major `numDbs × dim`, or `undefined`.
    pub fn centroids(&self) -> Option<Vec<f32>> {
        self.centroids.as_ref().map(|m| m.as_slice().to_vec())
    }

    /// The hyperplanes (LSH), row-major `num_hash_bits × dim`, or
    /// `undefined`.
    pub fn hyperplanes(&self) -> Option<Vec<f32>> {
        self.hyperplanes.as_ref().map(|m| m.as_slice().to_vec())
    }

    /// The shards to probe for `query`, as an array of numbers. `options`
    /// may hold `numProbes` (CLUSTER, LSH; default: the manifest's),
    /// `shardIds` (explicit shards, override every strategy) and
    /// `routingContext` (a plain object, for CEL); the snake_case names
    /// `num_probes`, `shard_ids` and `routing_context` are accepted too.
    #[wasm_bindgen(unchecked_return_type = "number[]")]
    pub fn route(
        &self,
        query: &[f32],
        #[wasm_bindgen(unchecked_optional_param_type = "RouteOptions")] options: JsValue,
    ) -> Result<Array, JsError> {
        let opts = Options::from_js(&options, self.router.num_dbs())?;
        let shards = self
            .router
            .route(query, &opts.route_options())
            .map_err(js_err)?;
        Ok(shards.into_iter().map(|s| JsValue::from(s.0)).collect())
    }

    /// The routing decision for `query` with its reasons, as a plain object
    /// tagged by `kind`: `explicit` `{shards}`; `cluster` `{distances,
    /// ranking, shards}`; `lsh` `{projections, code, buckets: [{flipped_bit,
    /// code, shard, probed}], shards}`; `cel` `{value, categorical_index,
    /// shards}`. `shards` always equals `route` for the same inputs.
    #[wasm_bindgen(unchecked_return_type = "Explanation")]
    pub fn explain(
        &self,
        query: &[f32],
        #[wasm_bindgen(unchecked_optional_param_type = "RouteOptions")] options: JsValue,
    ) -> Result<JsValue, JsError> {
        let opts = Options::from_js(&options, self.router.num_dbs())?;
        let explanation = self
            .router
            .explain(query, &opts.route_options())
            .map_err(js_err)?;
        let value = serde_json::to_value(&explanation).map_err(js_err)?;
        Ok(to_js(&value))
    }
}

impl Snapshot {
    fn build(
        manifest: Manifest,
        manifest_ref: Option<ManifestRef>,
        centroids: Option<Matrix>,
        hyperplanes: Option<Matrix>,
        base_url: Option<String>,
    ) -> shardvec_core::Result<Snapshot> {
        let router = Router::new(
            &manifest,
            RoutingArtefacts {
                centroids: centroids.clone(),
                hyperplanes: hyperplanes.clone(),
            },
        )?;
        Ok(Snapshot {
            data: Rc::new(SnapshotData {
                manifest,
                manifest_ref,
                router,
                centroids,
                hyperplanes,
                base_url,
            }),
        })
    }
}

/// Routing options read from a JS object.
struct Options {
    num_probes: Option<u32>,
    shard_ids: Option<Vec<ShardId>>,
    routing_context: Option<RoutingContext>,
}

impl Options {
    fn from_js(v: &JsValue, num_dbs: u32) -> Result<Options, JsError> {
        let mut o = Options {
            num_probes: None,
            shard_ids: None,
            routing_context: None,
        };
        if v.is_undefined() || v.is_null() {
            return Ok(o);
        }
        if !v.is_object() || Array::is_array(v) {
            return Err(JsError::new("route options must be an object"));
        }
        let get = |camel: &str, snake: &str| -> JsValue {
            let x = Reflect::get(v, &JsValue::from_str(camel)).unwrap_or(JsValue::UNDEFINED);
            if x.is_undefined() {
                Reflect::get(v, &JsValue::from_str(snake)).unwrap_or(JsValue::UNDEFINED)
            } else {
                x
            }
        };
        let n = get("numProbes", "num_probes");
        if !(n.is_undefined() || n.is_null()) {
            let p = n
                .as_f64()
                .filter(|p| p.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(p))
                .ok_or_else(|| {
                    js_err(format!(
                        "numProbes must be a positive integer, got {}",
                        js_display(&n)
                    ))
                })?;
            o.num_probes = Some(p as u32);
        }
        let ids = get("shardIds", "shard_ids");
        if !(ids.is_undefined() || ids.is_null()) {
            o.shard_ids = Some(shard_ids_from_js(&ids, num_dbs)?);
        }
        let ctx = get("routingContext", "routing_context");
        if !(ctx.is_undefined() || ctx.is_null()) {
            let json = from_js(&ctx, 0).map_err(|e| js_err(format!("routingContext: {e}")))?;
            o.routing_context = Some(RoutingContext::from_json(&json).map_err(js_err)?);
        }
        Ok(o)
    }

    fn route_options(&self) -> RouteOptions<'_> {
        RouteOptions {
            num_probes: self.num_probes,
            shard_ids: self.shard_ids.as_deref(),
            routing_context: self.routing_context.as_ref(),
        }
    }
}

/// Shard ids from a JS array (or `Uint32Array`) of integers, range-checked
/// against `num_dbs` with the core's error.
fn shard_ids_from_js(v: &JsValue, num_dbs: u32) -> Result<Vec<ShardId>, JsError> {
    let items: Vec<JsValue> = if Array::is_array(v) {
        Array::from(v).iter().collect()
    } else if let Some(t) = v.dyn_ref::<js_sys::Uint32Array>() {
        t.to_vec().into_iter().map(JsValue::from).collect()
    } else {
        return Err(JsError::new("shardIds must be an array of shard ids"));
    };
    items
        .iter()
        .map(|x| {
            let id = if let Some(f) = x.as_f64() {
                if f.fract() != 0.0 || !f.is_finite() {
                    return Err(js_err(format!("shard id {f} is not an integer")));
                }
                f as i128
            } else if let Ok(i) = i128::try_from(x.clone()) {
                i
            } else {
                return Err(JsError::new("shardIds must hold integers"));
            };
            ShardId::checked(id, num_dbs).map_err(js_err)
        })
        .collect()
}

/// Merges per-shard result lists — an array (in the order the shards were
/// queried) of arrays of `{id, score, payload?, ...}` — into the global
/// `topK` with the core's merge: the `topK` smallest scores, ties kept in
/// arrival order, NaN last. Returns the selected result objects themselves
/// (extra keys such as `shard` are kept).
#[wasm_bindgen(unchecked_return_type = "SearchHit[]")]
pub fn merge(
    #[wasm_bindgen(js_name = perShard, unchecked_param_type = "SearchHit[][]")] per_shard: JsValue,
    #[wasm_bindgen(js_name = topK)] top_k: f64,
) -> Result<Array, JsError> {
    if !(top_k.fract() == 0.0 && (0.0..=MAX_SAFE_INTEGER).contains(&top_k)) {
        return Err(js_err(format!(
            "topK must be a non-negative integer, got {top_k}"
        )));
    }
    if !Array::is_array(&per_shard) {
        return Err(JsError::new(
            "perShard must be an array of per-shard result arrays",
        ));
    }
    let mut lists: Vec<Vec<(f32, JsValue)>> = Vec::new();
    for (s, list) in Array::from(&per_shard).iter().enumerate() {
        if !Array::is_array(&list) {
            return Err(js_err(format!("perShard[{s}] is not an array")));
        }
        let mut items = Vec::new();
        for (i, item) in Array::from(&list).iter().enumerate() {
            let at = || format!("perShard[{s}][{i}]");
            if !item.is_object() {
                return Err(js_err(format!("{}: expected an object", at())));
            }
            let score = Reflect::get(&item, &JsValue::from_str("score"))
                .ok()
                .and_then(|v| v.as_f64())
                .ok_or_else(|| js_err(format!("{}: `score` must be a number", at())))?;
            let id = Reflect::get(&item, &JsValue::from_str("id")).unwrap_or(JsValue::UNDEFINED);
            let id_ok = id.as_string().is_some()
                || id
                    .as_f64()
                    .is_some_and(|f| f.fract() == 0.0 && f.abs() <= MAX_SAFE_INTEGER)
                || id.is_bigint();
            if !id_ok {
                return Err(js_err(format!(
                    "{}: `id` must be a string or an integer",
                    at()
                )));
            }
            // Scores compare as f32, as the native merge of `SearchResult`s.
            items.push((score as f32, item));
        }
        lists.push(items);
    }
    let merged = shardvec_core::merge_by(lists, top_k as usize, |(score, _)| *score);
    Ok(merged.into_iter().map(|(_, item)| item).collect())
}

/// A short text of a JS value for messages.
fn js_display(v: &JsValue) -> String {
    match v.as_f64() {
        Some(f) => format!("{f}"),
        None => v.as_string().map_or_else(
            || format!("a {}", v.js_typeof().as_string().unwrap_or_default()),
            |s| format!("{s:?}"),
        ),
    }
}

/// The message of a thrown JS value (with its `cause`, as Node's fetch
/// reports connection errors there).
fn js_message(e: &JsValue) -> String {
    let text = |v: &JsValue| -> Option<String> {
        v.dyn_ref::<js_sys::Error>()
            .map(|e| String::from(e.message()))
            .or_else(|| v.as_string())
    };
    let mut msg = text(e).unwrap_or_else(|| "unknown error".to_string());
    if let Ok(cause) = Reflect::get(e, &JsValue::from_str("cause")) {
        if let Some(c) = text(&cause) {
            msg = format!("{msg} ({c})");
        }
    }
    msg
}

// ---- JS values <-> JSON ----------------------------------------------------

/// A JSON value as a plain JS value. Integers beyond 2^53 become `BigInt`s.
fn to_js(v: &Json) -> JsValue {
    match v {
        Json::Null => JsValue::NULL,
        Json::Bool(b) => JsValue::from_bool(*b),
        Json::Number(n) => {
            if let Some(u) = n.as_u64() {
                if u as f64 > MAX_SAFE_INTEGER {
                    JsValue::from(u)
                } else {
                    JsValue::from_f64(u as f64)
                }
            } else if let Some(i) = n.as_i64() {
                if (i as f64) < -MAX_SAFE_INTEGER {
                    JsValue::from(i)
                } else {
                    JsValue::from_f64(i as f64)
                }
            } else {
                JsValue::from_f64(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Json::String(s) => JsValue::from_str(s),
        Json::Array(items) => items.iter().map(to_js).collect::<Array>().into(),
        Json::Object(m) => {
            let o = Object::new();
            for (k, v) in m {
                // Setting a data property on a fresh object cannot fail.
                let _ = Reflect::set(&o, &JsValue::from_str(k), &to_js(v));
            }
            o.into()
        }
    }
}

/// A plain JS value as JSON: numbers (integral ones within 2^53 as
/// integers), `BigInt`s (as 64-bit integers), strings, booleans, `null`,
/// arrays, plain objects, and `Uint8Array`s as `{"__bytes_hex__": ...}`.
fn from_js(v: &JsValue, depth: usize) -> Result<Json, String> {
    if depth > MAX_DEPTH {
        return Err(format!("nested deeper than {MAX_DEPTH} levels"));
    }
    if v.is_null() || v.is_undefined() {
        return Ok(Json::Null);
    }
    if let Some(b) = v.as_bool() {
        return Ok(Json::Bool(b));
    }
    if let Some(f) = v.as_f64() {
        if !f.is_finite() {
            return Err(format!("{f} is not a finite number"));
        }
        if f.fract() == 0.0 && f.abs() <= MAX_SAFE_INTEGER {
            return Ok(Json::from(f as i64));
        }
        return Ok(Json::from(f));
    }
    if v.is_bigint() {
        let i = i128::try_from(v.clone()).map_err(|_| "BigInt out of range".to_string())?;
        return if let Ok(i) = i64::try_from(i) {
            Ok(Json::from(i))
        } else if let Ok(u) = u64::try_from(i) {
            Ok(Json::from(u))
        } else {
            Err(format!("{i} does not fit in 64 bits"))
        };
    }
    if let Some(s) = v.as_string() {
        return Ok(Json::String(s));
    }
    if let Some(bytes) = v.dyn_ref::<Uint8Array>() {
        let hex: String = bytes.to_vec().iter().map(|b| format!("{b:02x}")).collect();
        let mut m = Map::new();
        m.insert(
            shardvec_core::routing_value::BYTES_HEX_KEY.to_string(),
            Json::String(hex),
        );
        return Ok(Json::Object(m));
    }
    if Array::is_array(v) {
        return Array::from(v)
            .iter()
            .map(|x| from_js(&x, depth + 1))
            .collect::<Result<Vec<_>, _>>()
            .map(Json::Array);
    }
    if let Some(o) = v.dyn_ref::<Object>() {
        let mut m = Map::new();
        for entry in Object::entries(o).iter() {
            let pair = Array::from(&entry);
            let key = pair.get(0).as_string().unwrap_or_default();
            m.insert(key, from_js(&pair.get(1), depth + 1)?);
        }
        return Ok(Json::Object(m));
    }
    Err("unsupported value (expected JSON-like data)".to_string())
}
