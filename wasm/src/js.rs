//! JS values <-> JSON, errors as JS `Error`s, and the debug panic hook.

use js_sys::{Array, Object, Reflect, Uint8Array};
use serde_json::{Map, Value as Json};
use wasm_bindgen::prelude::*;

/// Largest integer a JS number holds exactly (`Number.MAX_SAFE_INTEGER`).
pub(crate) const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

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

/// A JS `Error` carrying `e`'s message.
pub(crate) fn js_err(e: impl core::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

/// A short text of a JS value for messages.
pub(crate) fn js_display(v: &JsValue) -> String {
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
pub(crate) fn js_message(e: &JsValue) -> String {
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

/// Property `camel` of `o`, or `snake` when `camel` is undefined.
pub(crate) fn prop(o: &JsValue, camel: &str, snake: &str) -> JsValue {
    let v = Reflect::get(o, &JsValue::from_str(camel)).unwrap_or(JsValue::UNDEFINED);
    if v.is_undefined() && camel != snake {
        Reflect::get(o, &JsValue::from_str(snake)).unwrap_or(JsValue::UNDEFINED)
    } else {
        v
    }
}

/// `undefined` or `null`.
pub(crate) fn absent(v: &JsValue) -> bool {
    v.is_undefined() || v.is_null()
}

/// A JSON value as a plain JS value. Integers beyond 2^53 become `BigInt`s.
pub(crate) fn to_js(v: &Json) -> JsValue {
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
pub(crate) fn from_js(v: &JsValue, depth: usize) -> Result<Json, String> {
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
