//! The `Snapshot` class: a snapshot's routing state, loaded through the
//! core loader ([`shardvec_core::snapshot`]) from a URL (`open`), from a
//! host (`fromHost`, in [`crate::edge`]) or built from files at hand
//! (`fromParts`).

use std::rc::Rc;

use js_sys::Array;
use serde_json::Value as Json;
use shardvec_core::npy::Matrix;
use shardvec_core::snapshot::{self, Routing};
use shardvec_core::{CurrentPointer, Manifest, ManifestRef, Router};
use wasm_bindgen::prelude::*;

use crate::http::fetch_bytes;
use crate::js::{js_err, to_js};
use crate::options::Options;
use crate::source::{resolve_key, HttpSource, OpenOptions};

#[wasm_bindgen(typescript_custom_section)]
const TS_SNAPSHOT: &str = r#"
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
"#;

/// A snapshot's routing state: manifest, `_CURRENT` and artefacts.
/// Immutable; copies share it (an [`EdgeClient`](crate::EdgeClient) keeps
/// one).
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
    pub(crate) manifest: Manifest,
    pub(crate) manifest_ref: Option<ManifestRef>,
    pub(crate) router: Router,
    pub(crate) centroids: Option<Matrix>,
    pub(crate) hyperplanes: Option<Matrix>,
    pub(crate) base_url: Option<String>,
}

#[wasm_bindgen]
impl Snapshot {
    /// Builds a snapshot from the bytes of its manifest, the text of
    /// `_CURRENT` (optional; it gives the manifest URL reported by
    /// `info()`, which an `EdgeClient` needs, and must name the run of the
    /// manifest given) and the routing artefacts the strategy needs
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
            Some(s) => {
                let r = CurrentPointer::parse(s.as_bytes())
                    .map_err(js_err)?
                    .manifest_ref();
                // The reference is what an EdgeClient pins its searches
                // to: it must name this manifest's run.
                if r.run_id != manifest.build.run_id {
                    return Err(js_err(format!(
                        "_CURRENT names run {} (manifest {}), the manifest given is run {}",
                        r.run_id, r.url, manifest.build.run_id
                    )));
                }
                Some(r)
            }
            None => None,
        };
        // The last step of the core loader, on the files at hand (no
        // fetch, no fallback: there is nothing to fall back to).
        let routing = Routing::build(&manifest, centroids_npy, hyperplanes_npy)
            .map_err(|e| js_err(e.into_inner()))?;
        Ok(Snapshot::new(manifest, manifest_ref, routing, None))
    }

    /// Opens the snapshot published under `baseUrl` (an `http(s)://` URL,
    /// or any URL the runtime's `fetch` accepts): fetches `_CURRENT`, the
    /// manifest it names and the routing artefacts the manifest names.
    ///
    /// URLs recorded in the snapshot start with the prefix it was written
    /// at (e.g. `s3://bucket/snap/...`); they are resolved against
    /// `baseUrl` as the native reader does, and one outside the snapshot
    /// (another prefix, `..`, `.`, `%` or `\` in a path) is refused.
    ///
    /// If the current manifest is unusable (it or one of its artefacts
    /// does not parse, or they do not fit together), older manifests are
    /// tried, newest first, as the native reader does: those of
    /// `options.manifests`, or else those an S3 `ListObjectsV2` listing of
    /// `baseUrl` returns (path-style; a server that does not answer one
    /// has no fallback). A fetch that fails on the current manifest or its
    /// artefacts is an error, not a reason to serve an older publish.
    /// `options.maxFallbackAttempts` (default 3; 0 disables the fallback)
    /// bounds the manifests tried.
    ///
    /// Uses the global `fetch` (browsers, workers, Node 18+).
    pub async fn open(
        #[wasm_bindgen(js_name = baseUrl)] base_url: String,
        #[wasm_bindgen(unchecked_optional_param_type = "OpenOptions")] options: JsValue,
    ) -> Result<Snapshot, JsError> {
        let options = OpenOptions::from_js(&options)?;
        let base = base_url.trim_end_matches('/').to_string();
        let current_url = format!("{base}/_CURRENT");
        let current_bytes = fetch_bytes(&current_url).await.map_err(js_err)?;
        let current = CurrentPointer::parse(&current_bytes)
            .map_err(|e| js_err(format!("{current_url}: {e}")))?;
        let source = HttpSource::new(base.clone(), options.manifests);
        // The messages are the native reader's: the fetch error, `manifest
        // <url> cannot be read: ...`, `routing artefact <url>: ...`, or the
        // router's.
        let loaded = snapshot::load(
            &source,
            &current.manifest_ref(),
            options.max_fallback_attempts,
        )
        .await
        .map_err(js_err)?;
        Ok(Snapshot::new(
            loaded.manifest,
            Some(loaded.manifest_ref),
            loaded.routing,
            Some(base),
        ))
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

    /// The `custom.vector` section of the manifest, exactly the keys the
    /// writer recorded (encoded by the core, as the writer encodes it):
    /// `dim`, `metric`, `sharding_strategy`, `num_probes`, `index_type`,
    /// `quantization`, `total_vectors`, the strategy's keys
    /// (`centroids_ref`; `hyperplanes_ref`, `num_hash_bits`; `cel_expr`,
    /// `cel_columns`, `routing_values`) and any unknown keys verbatim.
    #[wasm_bindgen(js_name = vectorMeta, unchecked_return_type = "Record<string, unknown>")]
    pub fn vector_meta(&self) -> JsValue {
        to_js(&Json::Object(self.manifest.vector.to_json()))
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
    /// A snapshot over a loaded manifest and its routing (the artefacts'
    /// bytes are not kept).
    pub(crate) fn new<B>(
        manifest: Manifest,
        manifest_ref: Option<ManifestRef>,
        routing: Routing<B>,
        base_url: Option<String>,
    ) -> Snapshot {
        Snapshot {
            data: Rc::new(SnapshotData {
                manifest,
                manifest_ref,
                router: routing.router,
                centroids: routing.centroids.map(|(m, _)| m),
                hyperplanes: routing.hyperplanes.map(|(m, _)| m),
                base_url,
            }),
        }
    }
}
