//! HTTP through the runtime's global `fetch` (browsers, workers, Node 18+;
//! no `window`, so no web-sys), with an optional bound on the bytes read
//! of a body, a clock and a timer.

use js_sys::{Function, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use crate::error::Error;
use crate::js::js_message;

/// One request.
pub(crate) struct Request<'a> {
    pub method: &'a str,
    pub url: &'a str,
    /// A JSON body (sent with `content-type: application/json`).
    pub json: Option<String>,
    /// `Authorization: Bearer <token>`.
    pub token: Option<&'a str>,
    /// `If-None-Match`: a 304 answer when the resource still has this
    /// `ETag`.
    pub if_none_match: Option<&'a str>,
    /// Abort after this many milliseconds (`AbortSignal.timeout`).
    pub timeout_ms: Option<f64>,
    /// Read at most this many bytes of the body: a longer one (by its
    /// `Content-Length`, or once the bytes read pass the limit) is
    /// [`Error::TooLarge`] and the rest is not read (the stream is
    /// cancelled). `None`: the whole body.
    pub max_bytes: Option<usize>,
}

/// An answer of any status.
pub(crate) struct Response {
    pub status: u16,
    pub status_text: String,
    /// The `ETag` header, when the runtime lets the page see it (a
    /// cross-origin answer shows it only with
    /// `Access-Control-Expose-Headers: ETag`).
    pub etag: Option<String>,
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

fn property(o: &JsValue, k: &str) -> JsValue {
    Reflect::get(o, &JsValue::from_str(k)).unwrap_or_default()
}

/// The promise a JS call returned, or an error naming `what`.
fn promise(what: &str, r: Result<JsValue, JsValue>) -> Result<Promise, Error> {
    r.map_err(|e| Error::Failed(format!("{what}: {}", js_message(&e))))?
        .dyn_into::<Promise>()
        .map_err(|_| Error::Failed(format!("{what}: a body call did not return a promise")))
}

/// Awaits `p`, or an error naming `what`.
async fn settle(what: &str, p: Promise) -> Result<JsValue, Error> {
    JsFuture::from(p)
        .await
        .map_err(|e| Error::Failed(format!("{what}: {}", js_message(&e))))
}

/// Header `name` of a `fetch` `Response`.
fn header(resp: &JsValue, name: &str) -> Option<String> {
    let headers = property(resp, "headers");
    global_fn(&headers, "get")?
        .call1(&headers, &JsValue::from_str(name))
        .ok()?
        .as_string()
}

/// Sends `req`; any status is an answer. Network errors, timeouts and an
/// unreadable body are [`Error::Failed`] naming the method and URL; a body
/// over `req.max_bytes` is [`Error::TooLarge`].
pub(crate) async fn send(req: &Request<'_>) -> Result<Response, Error> {
    let what = format!("{} {}", req.method, req.url);
    let global = js_sys::global();
    let fetch = global_fn(&global, "fetch")
        .ok_or_else(|| Error::Failed(format!("{what}: this runtime has no global fetch")))?;
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
    if let Some(etag) = req.if_none_match {
        set(&headers, "if-none-match", &JsValue::from_str(etag));
    }
    set(&init, "headers", &headers);
    if let Some(ms) = req.timeout_ms {
        let abort = property(&global, "AbortSignal");
        if let Some(timeout) = global_fn(&abort, "timeout") {
            if let Ok(signal) = timeout.call1(&abort, &JsValue::from_f64(ms)) {
                set(&init, "signal", &signal);
            }
        }
    }
    let sent = promise(
        &what,
        fetch.call2(&global, &JsValue::from_str(req.url), &init),
    )?;
    let resp = settle(&what, sent).await?;
    let status = property(&resp, "status").as_f64().unwrap_or(0.0) as u16;
    let status_text = property(&resp, "statusText")
        .as_string()
        .unwrap_or_default();
    let etag = header(&resp, "etag");
    let body = match req.max_bytes {
        None => read_all(&what, &resp).await?,
        Some(limit) => read_at_most(&what, &resp, limit).await?,
    };
    Ok(Response {
        status,
        status_text,
        etag,
        body,
    })
}

/// The whole body (`arrayBuffer()`).
async fn read_all(what: &str, resp: &JsValue) -> Result<Vec<u8>, Error> {
    let array_buffer = global_fn(resp, "arrayBuffer")
        .ok_or_else(|| Error::Failed(format!("{what}: the response has no body")))?;
    let reading = format!("{what}: reading the body");
    let buf = settle(&reading, promise(&reading, array_buffer.call0(resp))?).await?;
    Ok(Uint8Array::new(&buf).to_vec())
}

/// The body, read chunk by chunk from its stream, refused (and the stream
/// cancelled, so the rest is never downloaded) as soon as it is known to
/// be longer than `limit`: from `Content-Length` before reading, or when
/// the bytes read pass it.
async fn read_at_most(what: &str, resp: &JsValue, limit: usize) -> Result<Vec<u8>, Error> {
    let too_large = || Error::TooLarge {
        request: what.to_string(),
        limit,
    };
    let stream = property(resp, "body");
    if stream.is_null() || stream.is_undefined() {
        return Ok(Vec::new());
    }
    let declared = header(resp, "content-length").and_then(|n| n.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        cancel(&stream).await;
        return Err(too_large());
    }
    let reading = format!("{what}: reading the body");
    let reader = global_fn(&stream, "getReader")
        .and_then(|f| f.call0(&stream).ok())
        .ok_or_else(|| Error::Failed(format!("{reading}: the body is not a readable stream")))?;
    let read = global_fn(&reader, "read")
        .ok_or_else(|| Error::Failed(format!("{reading}: the body is not a readable stream")))?;
    let mut body = Vec::new();
    loop {
        let chunk = settle(&reading, promise(&reading, read.call0(&reader))?).await?;
        if property(&chunk, "done").as_bool().unwrap_or(true) {
            return Ok(body);
        }
        let bytes = property(&chunk, "value")
            .dyn_into::<Uint8Array>()
            .map_err(|_| Error::Failed(format!("{reading}: a chunk is not bytes")))?;
        let n = bytes.length() as usize;
        if n > limit - body.len() {
            cancel(&reader).await;
            return Err(too_large());
        }
        let start = body.len();
        body.resize(start + n, 0);
        bytes.copy_to(&mut body[start..]);
    }
}

/// Cancels a body stream or its reader (`cancel()`): the rest of the body
/// is not downloaded. Best effort: the caller's error is the answer's
/// size, whatever `cancel` says.
async fn cancel(target: &JsValue) {
    if let Some(c) = global_fn(target, "cancel") {
        if let Ok(p) = promise("cancel", c.call0(target)) {
            let _ = settle("cancel", p).await;
        }
    }
}

/// `GET url`: a 2xx answer, or an error naming the URL and the HTTP
/// status (or the network error).
pub(crate) async fn get(
    url: &str,
    token: Option<&str>,
    timeout_ms: Option<f64>,
) -> Result<Response, Error> {
    let resp = send(&Request {
        method: "GET",
        url,
        json: None,
        token,
        if_none_match: None,
        timeout_ms,
        max_bytes: None,
    })
    .await?;
    if !(200..300).contains(&resp.status) {
        return Err(Error::Failed(
            format!("GET {url}: HTTP {} {}", resp.status, resp.status_text)
                .trim_end()
                .to_string(),
        ));
    }
    Ok(resp)
}

/// `GET url`: the body of a 2xx answer, or an error naming the URL and the
/// HTTP status (or the network error).
pub(crate) async fn fetch_bytes(url: &str) -> Result<Vec<u8>, Error> {
    get(url, None, None).await.map(|r| r.body)
}

/// Milliseconds from the runtime's monotonic clock (`performance.now`),
/// or `Date.now` where there is none.
pub(crate) fn now_ms() -> f64 {
    let global = js_sys::global();
    let perf = property(&global, "performance");
    global_fn(&perf, "now")
        .and_then(|now| now.call0(&perf).ok())
        .and_then(|v| v.as_f64())
        .unwrap_or_else(js_sys::Date::now)
}

/// Resolves after `ms` milliseconds (the runtime's `setTimeout`); at once
/// where there is none.
pub(crate) async fn sleep(ms: f64) {
    let global = js_sys::global();
    let Some(set_timeout) = global_fn(&global, "setTimeout") else {
        return;
    };
    let timer = Promise::new(&mut |resolve, _| {
        // A failed setTimeout resolves at once: a hedge then goes early.
        if set_timeout
            .call2(&global, &resolve, &JsValue::from_f64(ms))
            .is_err()
        {
            let _ = resolve.call0(&JsValue::UNDEFINED);
        }
    });
    let _ = JsFuture::from(timer).await;
}
