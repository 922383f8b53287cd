//! HTTP through the runtime's global `fetch` (browsers, workers, Node 18+;
//! no `window`, so no web-sys), and a clock.

use js_sys::{Function, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use crate::js::js_message;

/// One request.
pub(crate) struct Request<'a> {
    pub method: &'a str,
    pub url: &'a str,
    /// A JSON body (sent with `content-type: application/json`).
    pub json: Option<String>,
    /// `Authorization: Bearer <token>`.
    pub token: Option<&'a str>,
    /// Abort after this many milliseconds (`AbortSignal.timeout`).
    pub timeout_ms: Option<f64>,
}

/// An answer of any status.
pub(crate) struct Response {
    pub status: u16,
    pub status_text: String,
    pub body: Vec<u8>,
}

fn global_fn(obj: &JsValue, name: &str) -> Option<Function> {
    Reflect::get(obj, &JsValue::from_str(name))
        .ok()
        .and_then(|f| f.dyn_into::<Function>().ok())
}

fn set(o: &Object, k: &str, v: &JsValue) {
    // Setting a data property on a fresh object cannot fail.
    let _ = Reflect::set(o, &JsValue::from_str(k), v);
}

/// Sends `req`; any status is an answer. Network errors, timeouts and an
/// unreadable body are errors naming the method and URL.
pub(crate) async fn send(req: &Request<'_>) -> Result<Response, String> {
    let what = format!("{} {}", req.method, req.url);
    let global = js_sys::global();
    let fetch = global_fn(&global, "fetch")
        .ok_or_else(|| format!("{what}: this runtime has no global fetch"))?;
    let init = Object::new();
    set(&init, "method", &JsValue::from_str(req.method));
    let headers = Object::new();
    if let Some(body) = &req.json {
        set(
            &headers,
            "content-type",
            &JsValue::from_str("application/json"),
        );
        set(&init, "body", &JsValue::from_str(body));
    }
    if let Some(t) = req.token {
        set(
            &headers,
            "authorization",
            &JsValue::from_str(&format!("Bearer {t}")),
        );
    }
    set(&init, "headers", &headers);
    if let Some(ms) = req.timeout_ms {
        let abort = Reflect::get(&global, &JsValue::from_str("AbortSignal")).unwrap_or_default();
        if let Some(timeout) = global_fn(&abort, "timeout") {
            if let Ok(signal) = timeout.call1(&abort, &JsValue::from_f64(ms)) {
                set(&init, "signal", &signal);
            }
        }
    }
    let promise = |r: Result<JsValue, JsValue>| -> Result<Promise, String> {
        r.map_err(|e| format!("{what}: {}", js_message(&e)))?
            .dyn_into::<Promise>()
            .map_err(|_| format!("{what}: fetch did not return a promise"))
    };
    let sent = promise(fetch.call2(&global, &JsValue::from_str(req.url), &init))?;
    let resp = JsFuture::from(sent)
        .await
        .map_err(|e| format!("{what}: {}", js_message(&e)))?;
    let status = Reflect::get(&resp, &JsValue::from_str("status"))
        .ok()
        .and_then(|s| s.as_f64())
        .unwrap_or(0.0) as u16;
    let status_text = Reflect::get(&resp, &JsValue::from_str("statusText"))
        .ok()
        .and_then(|s| s.as_string())
        .unwrap_or_default();
    let array_buffer = global_fn(&resp, "arrayBuffer")
        .ok_or_else(|| format!("{what}: the response has no body"))?;
    let body = promise(array_buffer.call0(&resp))?;
    let buf = JsFuture::from(body)
        .await
        .map_err(|e| format!("{what}: reading the body: {}", js_message(&e)))?;
    Ok(Response {
        status,
        status_text,
        body: Uint8Array::new(&buf).to_vec(),
    })
}

/// `GET url`: the body of a 2xx answer, or an error naming the URL and the
/// HTTP status (or the network error).
pub(crate) async fn fetch_bytes(url: &str) -> Result<Vec<u8>, String> {
    get(url, None, None).await
}

/// `GET url` with an optional bearer token and time limit.
pub(crate) async fn get(
    url: &str,
    token: Option<&str>,
    timeout_ms: Option<f64>,
) -> Result<Vec<u8>, String> {
    let resp = send(&Request {
        method: "GET",
        url,
        json: None,
        token,
        timeout_ms,
    })
    .await?;
    if !(200..300).contains(&resp.status) {
        return Err(
            format!("GET {url}: HTTP {} {}", resp.status, resp.status_text)
                .trim_end()
                .to_string(),
        );
    }
    Ok(resp.body)
}

/// Milliseconds from the runtime's monotonic clock (`performance.now`),
/// or `Date.now` where there is none.
pub(crate) fn now_ms() -> f64 {
    let global = js_sys::global();
    let perf = Reflect::get(&global, &JsValue::from_str("performance")).unwrap_or_default();
    global_fn(&perf, "now")
        .and_then(|now| now.call0(&perf).ok())
        .and_then(|v| v.as_f64())
        .unwrap_or_else(js_sys::Date::now)
}
