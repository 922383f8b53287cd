//! The `merge` export: the core merge over JS result objects.

use js_sys::{Array, Reflect};
use wasm_bindgen::prelude::*;

use crate::js::{js_err, MAX_SAFE_INTEGER};

#[wasm_bindgen(typescript_custom_section)]
const TS_SEARCH_HIT: &str = r#"
/** A search hit as shards and the host server report it. */
export interface SearchHit {
  id: string | number | bigint;
  score: number;
  payload?: unknown;
  /** The shard the hit came from (hosts and the edge client set it). */
  shard_id?: number;
  [extra: string]: unknown;
}
"#;

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
