//! An edge worker's side of the host protocol, so that a Worker or a Deno
//! service is a few lines of glue: `EdgeClient.connect` (a client from
//! its hosts alone), `handleSearch` (a host's `POST /v1/search`, parsed
//! by the core's parser and answered at the edge with the host's JSON)
//! and `revalidate` (the snapshot's `current` asked again with the `ETag`
//! the hosts send, a new publish loaded).

use js_sys::{Object, Promise, Reflect};
use serde::Serialize;
use shardvec_core::api::{self, ErrorBody, SearchRequest, SearchResponse};
use shardvec_core::CurrentPointer;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::edge::{
    host_urls, load_from_host, routing_url, Config, EdgeAnswer, EdgeClient, Inner, SearchCall,
};
use crate::error::{joined, Error, Failure};
use crate::http;

#[wasm_bindgen(typescript_custom_section)]
const TS_SERVE: &str = r#"
/** The answer `EdgeClient.handleSearch` resolves to: what to send back. */
export interface EdgeHttpAnswer {
  /** 200; 400 or 413 for the request's fault; 502 when the hosts failed. */
  status: number;
  /** JSON: the host's `/v1/search` answer (plus `missing_shards` when
   * partial), or `{"error": {"code", "message"}}`. */
  body: string;
  /** For the log: the full message of a 5xx (naming hosts), else null. */
  detail: string | null;
}
"#;

/// The most bytes of a request body read: the host's default
/// (`serve --max-body-bytes`).
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// The most bytes read of a `current` pointer when revalidating.
const MAX_CURRENT_BYTES: usize = 64 * 1024;

/// A search answered over HTTP: the host's `/v1/search` answer, and the
/// shards missing when partial answers are allowed (only then present).
#[derive(Serialize)]
struct WireAnswer<'a> {
    #[serde(flatten)]
    search: &'a SearchResponse,
    #[serde(skip_serializing_if = "<[u32]>::is_empty")]
    missing_shards: &'a [u32],
}

/// `{status, body, detail}` for JS.
fn http_answer(status: u16, body: &str, detail: Option<&str>) -> JsValue {
    let o = Object::new();
    // Setting data properties on a fresh object cannot fail.
    let _ = Reflect::set(&o, &"status".into(), &JsValue::from(status));
    let _ = Reflect::set(&o, &"body".into(), &JsValue::from_str(body));
    let detail = detail.map_or(JsValue::NULL, JsValue::from_str);
    let _ = Reflect::set(&o, &"detail".into(), &detail);
    o.into()
}

/// An error answer: 4xx with the message, 5xx with the code and the
/// shards at fault only (host URLs stay in `detail`, for the log), as
/// hosts do.
fn error_answer(status: u16, code: &str, message: &str, shards: &[u32]) -> JsValue {
    let (public, detail) = if status >= 500 {
        let what = match shards {
            [] => "the edge could not serve this request".to_string(),
            [one] => format!("no replica of shard {one} answered"),
            many => format!(
                "no replica of shards {} answered",
                many.iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        (
            format!("{what} ({code}); details are in the edge's log"),
            Some(message),
        )
    } else {
        (message.to_string(), None)
    };
    // An error body always serialises.
    let body = serde_json::to_string(&ErrorBody::new(code, public)).unwrap_or_default();
    http_answer(status, &body, detail)
}

/// Answers a `/v1/search` body.
async fn answer_search(inner: &Inner, body: &[u8]) -> JsValue {
    if body.len() > MAX_BODY_BYTES {
        let message = format!("the body is larger than {MAX_BODY_BYTES} bytes");
        return error_answer(413, api::codes::BODY_TOO_LARGE, &message, &[]);
    }
    let req = match SearchRequest::parse(body) {
        Ok(req) => req,
        Err(e) => return error_answer(400, api::codes::BAD_JSON, &e.to_string(), &[]),
    };
    let result = match SearchCall::from_request(inner, &req) {
        Ok(call) => inner.search(req.query, call).await,
        Err(f) => Err(f),
    };
    match result {
        Ok(EdgeAnswer {
            search,
            missing_shards,
            ..
        }) => {
            let wire = WireAnswer {
                search: &search,
                missing_shards: &missing_shards,
            };
            match serde_json::to_string(&wire) {
                Ok(json) => http_answer(200, &json, None),
                Err(e) => error_answer(500, "internal", &e.to_string(), &[]),
            }
        }
        Err(Failure::Input { code, message }) => error_answer(400, code, &message, &[]),
        Err(Failure::Edge {
            code,
            message,
            shards,
        }) => error_answer(502, code, &message, &shards),
    }
}

#[wasm_bindgen]
impl EdgeClient {
    /// A client over `options.hosts` (the constructor's options without
    /// `snapshot`), routing with the snapshot of the first host, in the
    /// order given, whose routing files load (`Snapshot.fromHost`'s
    /// checks). Rejects naming every host's failure.
    #[wasm_bindgen(unchecked_return_type = "Promise<EdgeClient>")]
    pub fn connect(
        #[wasm_bindgen(unchecked_param_type = "EdgeConnectOptions")] options: JsValue,
    ) -> Promise {
        future_to_promise(async move {
            let urls = host_urls(&options)?;
            // Every option is checked before the first request.
            let config = Config::from_js(&options)?;
            let mut failures = Vec::new();
            for url in &urls {
                match load_from_host(url, config.token.as_deref(), config.timeout_ms).await {
                    Ok(pinned) => return Ok(EdgeClient::build(&options, pinned)?.into()),
                    Err(e) => failures.push((format!("host {url}"), e)),
                }
            }
            let refs: Vec<(String, &Error)> =
                failures.iter().map(|(p, e)| (p.clone(), e)).collect();
            Err(joined(&refs).into())
        })
    }

    /// Answers the body of a host's `POST /v1/search` request
    /// (`{query, top_k?, num_probes?, shard_ids?, routing_context?,
    /// filter?, min_results?, max_probes?}`, parsed by the core's parser)
    /// as a host would: `{status: 200, body}` with the host's JSON answer
    /// (plus `missing_shards` when the client allows partial answers and
    /// some are missing); 400 with `{"error": {code, message}}` for a bad
    /// request (`bad_json`, `invalid_query`, `invalid_filter`,
    /// `top_k_too_large`), 413 `body_too_large` past [`MAX_BODY_BYTES`];
    /// 502 when the hosts failed, the message naming the code and the
    /// shards, `detail` the full message for the log. Never rejects.
    #[wasm_bindgen(js_name = handleSearch, unchecked_return_type = "Promise<EdgeHttpAnswer>")]
    pub fn handle_search(&self, body: Vec<u8>) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move { Ok(answer_search(&inner, &body).await) })
    }

    /// Asks the hosts (in the order given, the next after a failure)
    /// whether the snapshot changed: `GET /v1/routing/current` with
    /// `If-None-Match` the `ETag` a host sends for the pinned manifest
    /// ([`api::etag`]). Resolves to `false` when it did not (304, or the
    /// same manifest), `true` after loading the new one from that host;
    /// rejects naming every host's failure.
    #[wasm_bindgen(unchecked_return_type = "Promise<boolean>")]
    pub fn revalidate(&self) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let pinned = inner.pinned.borrow().manifest_ref.clone();
            let etag = api::etag(&pinned, "current");
            let mut failures = Vec::new();
            for h in 0..inner.hosts.len() {
                let host = inner.hosts.url(h).to_string();
                match revalidate_at(&inner, &host, &pinned, &etag).await {
                    Ok(changed) => return Ok(JsValue::from_bool(changed)),
                    Err(e) => failures.push((format!("host {host}"), e)),
                }
            }
            let refs: Vec<(String, &Error)> =
                failures.iter().map(|(p, e)| (p.clone(), e)).collect();
            Err(joined(&refs).into())
        })
    }
}

/// Revalidates at one host: whether it serves another manifest than
/// `pinned` (then loaded from it).
async fn revalidate_at(inner: &Inner, host: &str, pinned: &str, etag: &str) -> Result<bool, Error> {
    let url = routing_url(host, "current");
    let resp = http::send(&http::Request {
        method: "GET",
        url: &url,
        json: None,
        token: inner.config.token.as_deref(),
        if_none_match: Some(etag),
        timeout_ms: inner.config.timeout_ms,
        max_bytes: Some(MAX_CURRENT_BYTES),
    })
    .await?;
    match resp.status {
        304 => Ok(false),
        200 => {
            let current = CurrentPointer::parse(&resp.body)
                .map_err(|e| Error::Failed(format!("{url}: {e}")))?;
            if current.manifest_ref().url == pinned {
                return Ok(false);
            }
            inner.reload_from(host).await?;
            Ok(true)
        }
        status => Err(Error::Failed(format!("GET {url}: HTTP {status}"))),
    }
}
