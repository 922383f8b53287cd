//! # shardvec-wasm
//!
//! WebAssembly bindings of [`shardvec_core`] for edge workers and browsers:
//! they compute exactly the routes the native reader computes, from the same
//! snapshot files, with the same code, and merge per-shard results.
//!
//! Main types: [`Snapshot`] (built from the snapshot's raw files with
//! [`Snapshot::from_parts`]) and the free function [`merge`].
//! Errors become JavaScript `Error`s carrying the core error's message.

use shardvec_core::npy::Matrix;
use shardvec_core::{
    CurrentPointer, Manifest, ManifestRef, RouteOptions, Router, RoutingArtefacts, RoutingContext,
    SearchResult, ShardId,
};
use wasm_bindgen::prelude::*;

fn js_err(e: impl core::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

/// A snapshot's routing state: manifest, `_CURRENT` and artefacts.
#[wasm_bindgen]
pub struct Snapshot {
    manifest: Manifest,
    manifest_ref: Option<ManifestRef>,
    router: Router,
}

#[wasm_bindgen]
impl Snapshot {
    /// Builds a snapshot from the bytes of its manifest, the text of
    /// `_CURRENT` (optional) and the routing artefacts it needs.
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
        let artefacts = RoutingArtefacts {
            centroids: centroids_npy
                .map(|b| Matrix::from_npy(&b, "centroids.npy"))
                .transpose()
                .map_err(js_err)?,
            hyperplanes: hyperplanes_npy
                .map(|b| Matrix::from_npy(&b, "hyperplanes.npy"))
                .transpose()
                .map_err(js_err)?,
        };
        let router = Router::new(&manifest, artefacts).map_err(js_err)?;
        Ok(Snapshot {
            manifest,
            manifest_ref,
            router,
        })
    }

    /// Snapshot info as JSON text.
    pub fn info(&self) -> String {
        let url = self.manifest_ref.as_ref().map_or("", |r| r.url.as_str());
        serde_json::to_string(&self.manifest.snapshot_info(url)).unwrap_or_default()
    }

    /// Routes `query`; `options_json` may hold `numProbes`, `shardIds` and
    /// `routingContext`. Returns the shard ids.
    pub fn route(&self, query: &[f32], options_json: Option<String>) -> Result<Vec<u32>, JsError> {
        let opts: serde_json::Value = match options_json {
            Some(s) => serde_json::from_str(&s).map_err(js_err)?,
            None => serde_json::Value::Null,
        };
        let num_probes = opts
            .get("numProbes")
            .and_then(|v| v.as_u64())
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX));
        let shard_ids: Option<Vec<ShardId>> = match opts.get("shardIds") {
            Some(v) => Some(serde_json::from_value(v.clone()).map_err(js_err)?),
            None => None,
        };
        let ctx = match opts.get("routingContext") {
            Some(v) => Some(RoutingContext::from_json(v).map_err(js_err)?),
            None => None,
        };
        let ro = RouteOptions {
            num_probes,
            shard_ids: shard_ids.as_deref(),
            routing_context: ctx.as_ref(),
        };
        let shards = self.router.route(query, &ro).map_err(js_err)?;
        Ok(shards.into_iter().map(u32::from).collect())
    }
}

/// Merges per-shard result lists (JSON: `[[{id, score, payload}, ...], ...]`)
/// into the global top-k (JSON).
#[wasm_bindgen]
pub fn merge(per_shard_json: &str, top_k: usize) -> Result<String, JsError> {
    let lists: Vec<Vec<SearchResult>> = serde_json::from_str(per_shard_json).map_err(js_err)?;
    serde_json::to_string(&shardvec_core::merge(lists, top_k)).map_err(js_err)
}
