//! Payload filters from JS: parsed and evaluated by the core
//! ([`shardvec_core::filter`]), so a filter means in a browser or an edge
//! worker exactly what it means on a host.
//!
//! `Snapshot.parseFilter` checks a filter and gives its canonical JSON;
//! `Snapshot.filterMatches` tests one record; the edge client parses the
//! `filter` option of a search before it sends anything.

use shardvec_core::filter::{Filter, FilterError, FilterErrorKind};
use shardvec_core::VectorId;
use wasm_bindgen::prelude::*;

use crate::js::{absent, from_js, js_err, to_js, MAX_SAFE_INTEGER};
use crate::snapshot::Snapshot;

#[wasm_bindgen(typescript_custom_section)]
const TS_FILTER: &str = r#"
/**
 * A payload filter: MongoDB-style JSON over payload fields and the record
 * id (`$id`), e.g. `{ tenant: "acme", i: { $gte: 10, $lt: 20 } }`.
 * Operators: `$eq $ne $gt $gte $lt $lte $in $nin $exists` on fields,
 * `$and $or $not` on filters; dotted paths reach nested objects. The same
 * filter as JSON text is accepted too.
 */
export type SearchFilter = Record<string, unknown> | string;
"#;

/// A filter from a JS value: a plain object (the JSON of the filter) or
/// its JSON text. Errors are the core's [`FilterError`]s
/// (`filter.$or[1].i: $gte needs a number or a string`); a JS value that
/// is not JSON data (a function, `NaN`, nesting past the converter's
/// limit) is reported as `filter: not JSON: ...`.
pub(crate) fn filter_from_js(v: &JsValue) -> Result<Filter, FilterError> {
    if let Some(text) = v.as_string() {
        return Filter::parse_str(&text);
    }
    let json = from_js(v, 0).map_err(|e| FilterError {
        path: "filter".to_string(),
        kind: FilterErrorKind::NotJson(e),
    })?;
    Filter::parse(&json)
}

/// A record id from JS: a string, an integral number within 2^53, or a
/// `BigInt` within `i64` (the ids hosts and `merge` hand out).
fn id_from_js(v: &JsValue) -> Result<VectorId, JsError> {
    if let Some(s) = v.as_string() {
        return Ok(VectorId::Str(s));
    }
    if let Some(f) = v.as_f64() {
        if f.fract() == 0.0 && f.abs() <= MAX_SAFE_INTEGER {
            return Ok(VectorId::Int(f as i64));
        }
    } else if v.is_bigint() {
        if let Some(i) = i128::try_from(v.clone())
            .ok()
            .and_then(|i| i64::try_from(i).ok())
        {
            return Ok(VectorId::Int(i));
        }
    }
    Err(JsError::new(
        "id must be a string or an integer (a number within 2^53 or a BigInt within 64 bits)",
    ))
}

#[wasm_bindgen]
impl Snapshot {
    /// Checks a payload filter (a plain object, or its JSON text) with the
    /// core's parser and returns its canonical JSON (as a plain object):
    /// what the edge client sends to hosts. Throws an `Error` whose message
    /// is the core's, naming the place at fault
    /// (`filter.$or[1].i: $gte needs a number or a string`).
    #[wasm_bindgen(js_name = parseFilter, unchecked_return_type = "Record<string, unknown>")]
    pub fn parse_filter(
        #[wasm_bindgen(unchecked_param_type = "SearchFilter")] filter: JsValue,
    ) -> Result<JsValue, JsError> {
        let f = filter_from_js(&filter).map_err(js_err)?;
        Ok(to_js(&f.to_json()))
    }

    /// Whether the record with `id` (a string, an integer or a `BigInt`)
    /// and `payload` (an object, or `null`/`undefined` for a record
    /// without one) matches `filter`, evaluated by the core as hosts
    /// evaluate it. Throws on a malformed filter, as `parseFilter`.
    #[wasm_bindgen(js_name = filterMatches)]
    pub fn filter_matches(
        #[wasm_bindgen(unchecked_param_type = "SearchFilter")] filter: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string | number | bigint")] id: JsValue,
        #[wasm_bindgen(unchecked_param_type = "unknown")] payload: JsValue,
    ) -> Result<bool, JsError> {
        let f = filter_from_js(&filter).map_err(js_err)?;
        let id = id_from_js(&id)?;
        let payload = if absent(&payload) {
            None
        } else {
            Some(from_js(&payload, 0).map_err(|e| js_err(format!("payload: {e}")))?)
        };
        Ok(f.matches(&id, payload.as_ref()))
    }
}
