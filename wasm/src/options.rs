//! Routing options read from JS (`route`, `explain`, the edge client).

use js_sys::Array;
use shardvec_core::{RouteOptions, RoutingContext, ShardId};
use wasm_bindgen::prelude::*;

use crate::js::{absent, from_js, js_display, js_err, prop};

#[wasm_bindgen(typescript_custom_section)]
const TS_ROUTE_OPTIONS: &str = r#"
/** Routing inputs of `route` and `explain` (snake_case names work too). */
export interface RouteOptions {
  numProbes?: number;
  shardIds?: number[];
  routingContext?: Record<string, string | number | bigint | boolean | Uint8Array>;
}
"#;

/// Routing options read from a JS object.
pub(crate) struct Options {
    num_probes: Option<u32>,
    shard_ids: Option<Vec<ShardId>>,
    routing_context: Option<RoutingContext>,
}

impl Options {
    /// Reads `{numProbes, shardIds, routingContext}` (or their snake_case
    /// names); `undefined` and `null` are no options.
    pub(crate) fn from_js(v: &JsValue, num_dbs: u32) -> Result<Options, JsError> {
        let mut o = Options {
            num_probes: None,
            shard_ids: None,
            routing_context: None,
        };
        if absent(v) {
            return Ok(o);
        }
        if !v.is_object() || Array::is_array(v) {
            return Err(JsError::new("route options must be an object"));
        }
        let n = prop(v, "numProbes", "num_probes");
        if !absent(&n) {
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
        let ids = prop(v, "shardIds", "shard_ids");
        if !absent(&ids) {
            o.shard_ids = Some(shard_ids_from_js(&ids, num_dbs)?);
        }
        let ctx = prop(v, "routingContext", "routing_context");
        if !absent(&ctx) {
            let json = from_js(&ctx, 0).map_err(|e| js_err(format!("routingContext: {e}")))?;
            o.routing_context = Some(RoutingContext::from_json(&json).map_err(js_err)?);
        }
        Ok(o)
    }

    /// The routing fields of a host's `POST /v1/search` request, checked
    /// against `num_dbs` with the core's errors.
    pub(crate) fn from_wire(
        num_probes: Option<u32>,
        shard_ids: Option<&[u32]>,
        routing_context: Option<&serde_json::Value>,
        num_dbs: u32,
    ) -> Result<Options, shardvec_core::Error> {
        Ok(Options {
            num_probes,
            shard_ids: shard_ids
                .map(|ids| {
                    ids.iter()
                        .map(|&id| ShardId::checked(i128::from(id), num_dbs))
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()?,
            routing_context: routing_context.map(RoutingContext::from_json).transpose()?,
        })
    }

    /// Whether the options name the shards (`shardIds`), which overrides
    /// routing.
    pub(crate) fn names_shards(&self) -> bool {
        self.shard_ids.is_some()
    }

    /// The core's view of the options.
    pub(crate) fn route_options(&self) -> RouteOptions<'_> {
        RouteOptions {
            num_probes: self.num_probes,
            shard_ids: self.shard_ids.as_deref(),
            routing_context: self.routing_context.as_ref(),
        }
    }
}

/// Shard ids from a JS array (or `Uint32Array`) of integers, range-checked
/// against `num_dbs` with the core's error.
pub(crate) fn shard_ids_from_js(v: &JsValue, num_dbs: u32) -> Result<Vec<ShardId>, JsError> {
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
