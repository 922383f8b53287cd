//! The edge client: route in WebAssembly, send each query only to the
//! hosts holding the chosen shards, merge their per-shard answers.
//!
//! A search routes with the client's [`Snapshot`], drops shards the
//! manifest records as empty, sends each remaining shard to one of the
//! hosts listing it (its replicas; which one, and the circuit breaker
//! that takes a failing host out for a while, are [`crate::replicas`]'s)
//! and posts `POST /v1/shards/search` to every host chosen concurrently,
//! pinning the manifest it routed with. The per-shard lists are merged by
//! the core merge in route order, which is what the native reader does,
//! so the answer is the native reader's.
//!
//! A host that fails (a network error, `timeoutMs`, an error status other
//! than 400/413, an answer the edge refuses) fails over: its shards go to
//! their next replica, until one answers or every replica was tried. With
//! `hedgeAfterMs` (off by default) the shards still unanswered after that
//! delay are also sent to their next replica, and the first answer of
//! each shard is taken. A shard no replica answered fails the search with
//! an error naming the shard and every host's failure, unless the caller
//! opted into partial results (`allowPartial`), which then name the
//! shards missing (`missing_shards`) and say `partial: true`. Errors are
//! JS `Error`s with a `code` ([`Error::code`]).
//!
//! Every search is pinned to the manifest the client's snapshot was loaded
//! from (a snapshot without a manifest reference is refused when the
//! client is built): a host serving another manifest answers 409
//! `stale_manifest`, and a 200 answer for another manifest is refused the
//! same way; the client then reloads its snapshot from that host's routing
//! files (`GET /v1/routing/*`) and retries once. Loading from a host checks
//! that every routing file belongs to the manifest `current` named: by its
//! `ETag` ([`api::etag`] of that manifest, when the host sends one) and by
//! the manifest's run, so a host changing snapshots between two requests
//! is an error (`wrong_manifest`), never a router built from two publishes.
//! A host's answer is read up to `maxResponseBytes` (default
//! [`DEFAULT_MAX_RESPONSE_BYTES`]) and no further, and may hold at most
//! `topK` hits per shard.
//!
//! A `filter` is parsed by the core before anything is sent (a malformed
//! one rejects the search with the core's message, and no host is asked),
//! then sent in its canonical JSON with every per-shard request; each hit
//! a host answers must match it and carries its `shard_id`. With
//! `minResults` (CLUSTER and LSH, without `shardIds`) the search probes on
//! as the native reader does: while the hits found (the sum of the
//! per-shard list lengths) are fewer than `minResults`, the next shards in
//! routing order — the core router's route with `maxProbes` (default: every
//! shard) probes, of which the route is the prefix — are searched, a batch
//! of the routed count at a time; the answer reports it in `probing`
//! (`{min_results, found, shards_probed, stop}`, `stop` one of `enough`,
//! `all_shards`, `probe_limit`) and its `route` lists every shard probed.
//! Everything that can be refused (the filter, `minResults` above `topK`,
//! `maxProbes` below the routed count, the route) is refused before the
//! first request; a stale manifest met in any batch reloads the snapshot
//! and restarts the search, once.

use std::cell::RefCell;
use std::rc::Rc;

use futures::future::{select, Either, FutureExt, LocalBoxFuture};
use futures::stream::{FuturesUnordered, StreamExt};
use js_sys::{Array, Promise, Reflect};
use serde::Serialize;
use serde_json::{json, Value as Json};
use shardvec_core::api::{
    self, ErrorBody, SearchRequest, SearchResponse, ShardsSearchRequest, ShardsSearchResponse,
    DEFAULT_HOST_MAX_TOP_K, MAX_TOP_K,
};
use shardvec_core::snapshot::{self, LoadError, Object, Source};
use shardvec_core::{
    merge, CurrentPointer, Filter, Manifest, ManifestRef, Probing, SearchResult, ShardId, Strategy,
};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::error::{joined, Error, Failure};
use crate::filter::filter_from_js;
use crate::http::{self, now_ms};
use crate::js::{absent, js_display, js_err, prop, to_js};
use crate::options::{shard_ids_from_js, Options};
use crate::replicas::{
    Breaker, Choice, HostEntry, Hosts, DEFAULT_BREAKER_COOLDOWN_MS, DEFAULT_BREAKER_FAILURES,
};
use crate::snapshot::Snapshot;

#[wasm_bindgen(typescript_custom_section)]
const TS_EDGE: &str = r#"
/**
 * The `code` of an `Error` that `EdgeClient.search`, `EdgeClient.reload`
 * and `Snapshot.fromHost` reject with after a request: `request_failed`
 * (network, timeout, HTTP status, unreadable answer), `stale_manifest` (a
 * host serves another manifest, still after one reload), `wrong_manifest`
 * (a routing file of another manifest than the one `current` named),
 * `answer_too_large` (over `maxResponseBytes`), `too_many_hits` (a shard's
 * list longer than `topK`), `host_out` (every replica left was taken out
 * by the circuit breaker), `shard_not_served` (no host lists a routed
 * shard). A search failing on several shards has the first one's code.
 * Errors in the caller's input have no code.
 */
export type EdgeErrorCode =
  | "request_failed"
  | "stale_manifest"
  | "wrong_manifest"
  | "answer_too_large"
  | "too_many_hits"
  | "host_out"
  | "shard_not_served";
/** A host and the shards it serves (several hosts may serve a shard: replicas). */
export interface EdgeHost {
  url: string;
  shards: number[];
}
/** Options of `EdgeClient.connect(...)`: those of the constructor but the snapshot. */
export interface EdgeConnectOptions {
  hosts: EdgeHost[];
  /** Sent as `Authorization: Bearer <token>`. */
  token?: string;
  /** Default of `allowPartial` for every search (false). */
  allowPartial?: boolean;
  /** Time limit of each host request, in milliseconds. */
  timeoutMs?: number;
  /** Most bytes read of one host answer (default 32 768 000: 1000 hits,
   * the host's default `top_k` cap, of 32 KiB); a longer answer fails
   * that host with `code: "answer_too_large"` and is not read further. */
  maxResponseBytes?: number;
  /** Also ask the next replica for the shards not answered after this
   * many milliseconds, and take the first answer (default: no hedging). */
  hedgeAfterMs?: number;
  /** Failures in a row that take a host out (default 3; 0: never). */
  breakerFailures?: number;
  /** How long a host taken out stays out, in milliseconds (default 10 000). */
  breakerCooldownMs?: number;
}
/** Options of `new EdgeClient(...)`. */
export interface EdgeClientOptions extends EdgeConnectOptions {
  snapshot: Snapshot;
}
/** Options of `EdgeClient.search`: routing options plus `topK` (default 10). */
export interface EdgeSearchOptions extends RouteOptions {
  topK?: number;
  allowPartial?: boolean;
  /** Only records matching this payload filter; checked with the core's
   * parser before any request (a bad filter throws its message), sent to
   * every host in canonical form. */
  filter?: SearchFilter;
  /** CLUSTER/LSH without `shardIds`: probe the next shards in routing
   * order, a batch of the routed count at a time, until this many hits
   * were found (at most `topK`); reported in `probing`. */
  minResults?: number;
  /** The most shards `minResults` may probe (default: every shard; not
   * below the routed count). */
  maxProbes?: number;
}
/** How a search with `minResults` went, as the native reader reports it. */
export interface Probing {
  min_results: number;
  /** Hits found (the per-shard lists' lengths, before the cut to `topK`). */
  found: number;
  /** Shards probed, the routed ones included (= `route.length`). */
  shards_probed: number;
  stop: "enough" | "probe_limit" | "all_shards";
}
/** What happened at one host request. */
export interface EdgeHostReport {
  url: string;
  shard_ids: number[];
  /** `primary`, `failover` (after another replica failed) or `hedge`. */
  role: "primary" | "failover" | "hedge";
  ok: boolean;
  latency_ms: number;
  status: number | null;
  error: string | null;
}
/** The answer of `EdgeClient.search`. */
export interface EdgeSearchResult {
  /** The merged hits; each carries its `shard_id`. */
  results: SearchHit[];
  /** The shards probed, in routing order (with `minResults`, every batch). */
  route: number[];
  num_shards_queried: number;
  manifest_ref: string;
  /** With `minResults`: how far the search probed and why it stopped. */
  probing?: Probing;
  /** Wall time of the whole search at the edge, reload included. */
  latency_ms: number;
  /** Every host request, in the order they were answered. */
  hosts: EdgeHostReport[];
  /** Whether shards are missing (only with `allowPartial`). */
  partial: boolean;
  /** The shards no replica answered, in route order. */
  missing_shards: number[];
  retried: boolean;
}
"#;

/// Default of `maxResponseBytes`: room for [`DEFAULT_HOST_MAX_TOP_K`]
/// hits (the most a host answers per shard unless configured otherwise)
/// of 32 KiB each, id, score and payload.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = DEFAULT_HOST_MAX_TOP_K * 32 * 1024;

/// A snapshot and the manifest it was loaded from: what every search of
/// the client is pinned to.
#[derive(Clone)]
pub(crate) struct Pinned {
    pub(crate) snapshot: Snapshot,
    /// `snapshot`'s manifest URL.
    pub(crate) manifest_ref: String,
}

impl Pinned {
    /// `snapshot`, if it has a manifest reference.
    fn of(snapshot: Snapshot) -> Option<Pinned> {
        let manifest_ref = snapshot.manifest_ref.as_ref()?.url.clone();
        Some(Pinned {
            snapshot,
            manifest_ref,
        })
    }
}

/// The client's settings, from the options object.
pub(crate) struct Config {
    pub(crate) token: Option<String>,
    allow_partial: bool,
    pub(crate) timeout_ms: Option<f64>,
    max_response_bytes: usize,
    hedge_after_ms: Option<f64>,
    breaker: Breaker,
}

pub(crate) struct Inner {
    pub(crate) pinned: RefCell<Pinned>,
    pub(crate) hosts: Hosts,
    pub(crate) config: Config,
}

/// Routes queries at the edge and searches only the chosen shards on their
/// hosts. See the module documentation.
#[wasm_bindgen]
pub struct EdgeClient {
    pub(crate) inner: Rc<Inner>,
}

fn opt_bool(v: JsValue, what: &str) -> Result<Option<bool>, JsError> {
    if absent(&v) {
        return Ok(None);
    }
    v.as_bool()
        .map(Some)
        .ok_or_else(|| js_err(format!("{what} must be a boolean, got {}", js_display(&v))))
}

/// A positive number of milliseconds, or none.
fn opt_ms(v: JsValue, what: &str) -> Result<Option<f64>, JsError> {
    if absent(&v) {
        return Ok(None);
    }
    v.as_f64()
        .filter(|ms| ms.is_finite() && *ms > 0.0)
        .map(Some)
        .ok_or_else(|| js_err(format!("{what} must be a positive number")))
}

/// The host URLs of `options.hosts`, checked, without their shards.
pub(crate) fn host_urls(options: &JsValue) -> Result<Vec<String>, JsError> {
    if !options.is_object() {
        return Err(JsError::new(
            "EdgeClient options must be an object {hosts, snapshot}",
        ));
    }
    let hosts_js = prop(options, "hosts", "hosts");
    if !Array::is_array(&hosts_js) || Array::from(&hosts_js).length() == 0 {
        return Err(JsError::new(
            "hosts must be a non-empty array of {url, shards}",
        ));
    }
    Array::from(&hosts_js)
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let url = prop(&h, "url", "url")
                .as_string()
                .ok_or_else(|| js_err(format!("hosts[{i}].url must be a string")))?;
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(js_err(format!(
                    "hosts[{i}].url must be an http(s) URL, got {url:?}"
                )));
            }
            Ok(url.trim_end_matches('/').to_string())
        })
        .collect()
}

/// The token of `options`, if any.
pub(crate) fn token_of(options: &JsValue) -> Result<Option<String>, JsError> {
    let token = prop(options, "token", "token");
    if absent(&token) {
        return Ok(None);
    }
    token
        .as_string()
        .map(Some)
        .ok_or_else(|| JsError::new("token must be a string"))
}

impl Config {
    /// Reads every option but `hosts` and `snapshot`.
    pub(crate) fn from_js(options: &JsValue) -> Result<Config, JsError> {
        let allow_partial = opt_bool(
            prop(options, "allowPartial", "allow_partial"),
            "allowPartial",
        )?
        .unwrap_or(false);
        let timeout_ms = opt_ms(prop(options, "timeoutMs", "timeout_ms"), "timeoutMs")?;
        let hedge_after_ms = opt_ms(
            prop(options, "hedgeAfterMs", "hedge_after_ms"),
            "hedgeAfterMs",
        )?;
        let m = prop(options, "maxResponseBytes", "max_response_bytes");
        let max_response_bytes = if absent(&m) {
            DEFAULT_MAX_RESPONSE_BYTES
        } else {
            m.as_f64()
                .filter(|n| n.fract() == 0.0 && (1.0..=f64::from(u32::MAX)).contains(n))
                .ok_or_else(|| {
                    js_err(format!(
                        "maxResponseBytes must be an integer in 1..={}, got {}",
                        u32::MAX,
                        js_display(&m)
                    ))
                })? as usize
        };
        let failures = opt_count(
            prop(options, "breakerFailures", "breaker_failures"),
            "breakerFailures",
            f64::from(u32::MAX),
        )?
        .map_or(DEFAULT_BREAKER_FAILURES, |n| n as u32);
        let cooldown_ms = opt_ms(
            prop(options, "breakerCooldownMs", "breaker_cooldown_ms"),
            "breakerCooldownMs",
        )?
        .unwrap_or(DEFAULT_BREAKER_COOLDOWN_MS);
        Ok(Config {
            token: token_of(options)?,
            allow_partial,
            timeout_ms,
            max_response_bytes,
            hedge_after_ms,
            breaker: Breaker {
                failures,
                cooldown_ms,
            },
        })
    }
}

impl EdgeClient {
    /// A client over `options.hosts` routing with `pinned`.
    pub(crate) fn build(options: &JsValue, pinned: Pinned) -> Result<EdgeClient, JsError> {
        let num_dbs = pinned.snapshot.router.num_dbs();
        let urls = host_urls(options)?;
        let hosts_js = Array::from(&prop(options, "hosts", "hosts"));
        let mut entries = Vec::with_capacity(urls.len());
        for (i, url) in urls.into_iter().enumerate() {
            let shards =
                shard_ids_from_js(&prop(&hosts_js.get(i as u32), "shards", "shards"), num_dbs)
                    .map_err(|_| {
                        js_err(format!(
                            "hosts[{i}].shards must be an array of shard ids below {num_dbs}"
                        ))
                    })?;
            entries.push(HostEntry {
                url,
                shards: shards.into_iter().map(|s| s.0).collect(),
            });
        }
        let config = Config::from_js(options)?;
        Ok(EdgeClient {
            inner: Rc::new(Inner {
                pinned: RefCell::new(pinned),
                hosts: Hosts::new(entries, config.breaker),
                config,
            }),
        })
    }
}

#[wasm_bindgen]
impl EdgeClient {
    /// A client over `hosts` (`[{url, shards}]`; a shard listed by several
    /// hosts has replicas), routing with `snapshot` (the client keeps its
    /// own handle; reloading it does not change the caller's), which must
    /// have a manifest reference (`Snapshot.open`, `fromHost`, or
    /// `fromParts` with the `_CURRENT` text). Options: `token`,
    /// `allowPartial` (default false), `timeoutMs` (per host request;
    /// default none), `maxResponseBytes` (per host answer; default
    /// [`DEFAULT_MAX_RESPONSE_BYTES`]), `hedgeAfterMs` (default: no
    /// hedging), `breakerFailures` (default
    /// [`DEFAULT_BREAKER_FAILURES`]), `breakerCooldownMs` (default
    /// [`DEFAULT_BREAKER_COOLDOWN_MS`]).
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "EdgeClientOptions")] options: JsValue,
    ) -> Result<EdgeClient, JsError> {
        if !options.is_object() {
            return Err(JsError::new(
                "EdgeClient options must be an object {hosts, snapshot}",
            ));
        }
        // Hosts refuse a search pinned to another manifest; with no
        // manifest to pin, an edge could merge two snapshots.
        let pinned =
            Pinned::of(snapshot_of(&prop(&options, "snapshot", "snapshot"))?).ok_or_else(|| {
                JsError::new(
                    "the EdgeClient's snapshot has no manifest reference (build it with \
                     Snapshot.open, Snapshot.fromHost, or fromParts with the _CURRENT text)",
                )
            })?;
        EdgeClient::build(&options, pinned)
    }

    /// The snapshot the client routes with (after a reload, the new one).
    #[wasm_bindgen(getter)]
    pub fn snapshot(&self) -> Snapshot {
        self.inner.pinned.borrow().snapshot.clone()
    }

    /// Which host each routed shard would go to now, without searching:
    /// `{route, hosts: [{url, shard_ids}]}` (empty shards are left out).
    #[wasm_bindgen(
        unchecked_return_type = "{ route: number[]; hosts: { url: string; shard_ids: number[] }[] }"
    )]
    pub fn plan(
        &self,
        query: &[f32],
        #[wasm_bindgen(unchecked_optional_param_type = "RouteOptions")] options: JsValue,
    ) -> Result<JsValue, JsError> {
        let snapshot = self.inner.pinned.borrow().snapshot.clone();
        let opts = Options::from_js(&options, snapshot.router.num_dbs())?;
        let route = snapshot
            .router
            .route(query, &opts.route_options())
            .map_err(js_err)?;
        let shards = self.inner.searched(&snapshot, &route).map_err(js_err)?;
        let order = self.inner.hosts.order(false);
        let mut groups: Vec<(usize, Vec<u32>)> = Vec::new();
        for sid in shards {
            if let Choice::Host(h) = self.inner.hosts.choose(&order, sid, &[], now_ms()) {
                match groups.iter_mut().find(|(g, _)| *g == h) {
                    Some((_, ids)) => ids.push(sid),
                    None => groups.push((h, vec![sid])),
                }
            }
        }
        let hosts: Vec<Json> = groups
            .iter()
            .map(|(h, ids)| json!({ "url": self.inner.hosts.url(*h), "shard_ids": ids }))
            .collect();
        let route: Vec<u32> = route.into_iter().map(|s| s.0).collect();
        Ok(to_js(&json!({ "route": route, "hosts": hosts })))
    }

    /// Searches `query` (a `Float32Array` or an array of numbers): routes,
    /// asks the hosts of the routed shards concurrently (failing over to
    /// replicas), merges. Options: routing options, `topK`,
    /// `allowPartial`, `filter` (a payload filter, parsed by the core
    /// before any request), `minResults` and `maxProbes` (probe on in
    /// routing order until enough hits; see the module docs). Resolves to
    /// an `EdgeSearchResult` whose hits carry their `shard_id`; rejects
    /// with an `Error` naming the shards no replica answered and each
    /// host's failure (unless `allowPartial`) or the input at fault (for a
    /// filter, the core's message, e.g. `filter.i: $gte needs a number or
    /// a string`).
    #[wasm_bindgen(unchecked_return_type = "Promise<EdgeSearchResult>")]
    pub fn search(
        &self,
        query: Vec<f32>,
        #[wasm_bindgen(unchecked_optional_param_type = "EdgeSearchOptions")] options: JsValue,
    ) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let call = SearchCall::from_js(&inner, &options)?;
            let answer = inner.search(query, call).await?;
            let value = serde_json::to_value(&answer).map_err(js_err)?;
            Ok(to_js(&value))
        })
    }

    /// Reloads the snapshot from the routing files of the first host that
    /// answers, in the order given.
    #[wasm_bindgen(unchecked_return_type = "Promise<Snapshot>")]
    pub fn reload(&self) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let snapshot = inner.reload_any().await?;
            Ok(JsValue::from(snapshot))
        })
    }
}

#[wasm_bindgen]
impl Snapshot {
    /// Loads the snapshot a shardvec host serves, from its routing files
    /// (`GET {hostUrl}/v1/routing/{current,manifest,centroids.npy,
    /// hyperplanes.npy}`), with an optional bearer token. Every file must
    /// belong to the manifest `current` names: a file whose `ETag` is
    /// another manifest's, or a manifest of another run, rejects with an
    /// `Error` whose `code` is `wrong_manifest`, naming the file and the
    /// manifest (the host changed snapshots between two requests; retry).
    /// Without an `ETag` (a proxy that drops it, a cross-origin answer
    /// that does not expose it) only the manifest's run is checked.
    #[wasm_bindgen(js_name = fromHost)]
    pub async fn from_host(
        #[wasm_bindgen(js_name = hostUrl)] host_url: String,
        token: Option<String>,
    ) -> Result<Snapshot, JsValue> {
        let pinned = load_from_host(host_url.trim_end_matches('/'), token.as_deref(), None).await?;
        Ok(pinned.snapshot)
    }

    /// Another handle on the same snapshot (snapshots are immutable).
    #[wasm_bindgen(js_name = clone)]
    pub fn clone_handle(&self) -> Snapshot {
        self.clone()
    }
}

/// The Rust snapshot behind a JS `Snapshot`, without taking the caller's
/// object: a fresh handle from its `clone()` is what gets consumed.
fn snapshot_of(v: &JsValue) -> Result<Snapshot, JsError> {
    use wasm_bindgen::convert::TryFromJsValue;
    let not_a_snapshot =
        || JsError::new("snapshot must be a Snapshot (Snapshot.open, fromParts or fromHost)");
    let clone = Reflect::get(v, &JsValue::from_str("clone"))
        .ok()
        .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
        .ok_or_else(not_a_snapshot)?;
    let fresh = clone.call0(v).map_err(|_| not_a_snapshot())?;
    Snapshot::try_from_js_value(fresh).map_err(|_| not_a_snapshot())
}

/// A host's routing files (`GET {host}/v1/routing/*`) as a loader source:
/// the manifest and artefacts the host serves now, whatever their recorded
/// URLs; no listing (a host serves one snapshot, so there is nothing to
/// fall back to). Every file fetched must belong to `manifest`, the one
/// `current` named ([`check_etag`], [`Source::check_manifest`]).
struct HostSource<'a> {
    host: &'a str,
    token: Option<&'a str>,
    timeout_ms: Option<f64>,
    manifest: &'a ManifestRef,
}

/// The URL of a host's routing file.
pub(crate) fn routing_url(host: &str, file: &str) -> String {
    format!("{host}/v1/routing/{file}")
}

/// A host names the manifest each routing file belongs to in its `ETag`
/// ([`api::etag`]): the file fetched from `url` must carry the one of
/// `manifest`, if it carries one (a weak `W/` validator, as a compressing
/// proxy marks it, names the same file).
fn check_etag(
    url: &str,
    file: &str,
    manifest: &ManifestRef,
    resp: &http::Response,
) -> Result<(), Error> {
    let Some(etag) = resp.etag.as_deref() else {
        return Ok(());
    };
    let expected = api::etag(&manifest.url, file);
    if etag.strip_prefix("W/").unwrap_or(etag) == expected {
        return Ok(());
    }
    Err(Error::WrongManifest {
        url: url.to_string(),
        file: file.to_string(),
        manifest: manifest.url.clone(),
        evidence: format!("ETag {etag}, expected {expected}"),
    })
}

impl Source for HostSource<'_> {
    type Bytes = Vec<u8>;
    type Error = Error;

    async fn fetch(&self, object: Object<'_>) -> Result<Vec<u8>, Error> {
        let file = match object {
            Object::Manifest { .. } => "manifest",
            Object::Artefact { file, .. } => file,
        };
        let url = routing_url(self.host, file);
        let resp = http::get(&url, self.token, self.timeout_ms).await?;
        check_etag(&url, file, self.manifest, &resp)?;
        Ok(resp.body)
    }

    async fn list_manifests(&self) -> Result<Option<Vec<ManifestRef>>, Error> {
        Ok(None)
    }

    /// The manifest must be the run `current` named (checked before the
    /// artefacts are fetched), also when the host sends no `ETag`.
    fn check_manifest(&self, current: &ManifestRef, manifest: &Manifest) -> Result<(), Error> {
        if current.run_id != manifest.build.run_id {
            return Err(Error::WrongManifest {
                url: routing_url(self.host, "manifest"),
                file: "manifest".to_string(),
                manifest: current.url.clone(),
                evidence: format!(
                    "its run is {}, not {}",
                    manifest.build.run_id, current.run_id
                ),
            });
        }
        Ok(())
    }
}

/// Loads the snapshot `host` serves: its `current` pointer, then, through
/// the core loader, the manifest it names and its artefacts, each checked
/// to belong to that manifest.
pub(crate) async fn load_from_host(
    host: &str,
    token: Option<&str>,
    timeout_ms: Option<f64>,
) -> Result<Pinned, Error> {
    let current_url = routing_url(host, "current");
    let resp = http::get(&current_url, token, timeout_ms).await?;
    let manifest_ref = CurrentPointer::parse(&resp.body)
        .map_err(|e| Error::Failed(format!("{current_url}: {e}")))?
        .manifest_ref();
    check_etag(&current_url, "current", &manifest_ref, &resp)?;
    let source = HostSource {
        host,
        token,
        timeout_ms,
        manifest: &manifest_ref,
    };
    let loaded = snapshot::load(&source, &manifest_ref, 0)
        .await
        .map_err(|e| match e {
            LoadError::Source(e) => e,
            // Files are named by their endpoint, not their recorded URL.
            LoadError::Manifest { source: e, .. } => {
                Error::Failed(format!("{}: {e}", routing_url(host, "manifest")))
            }
            LoadError::Artefact {
                file, source: e, ..
            } => Error::Failed(format!("{}: {e}", routing_url(host, file))),
            LoadError::Router { source: e, .. } => Error::Failed(e.to_string()),
        })?;
    Ok(Pinned {
        manifest_ref: loaded.manifest_ref.url.clone(),
        snapshot: Snapshot::new(
            loaded.manifest,
            Some(loaded.manifest_ref),
            loaded.routing,
            None,
        ),
    })
}

/// The inputs of one search.
pub(crate) struct SearchCall {
    opts: Options,
    top_k: usize,
    allow_partial: bool,
    /// The payload filter, parsed by the core.
    filter: Option<Filter>,
    /// Probe on until this many hits were found (CLUSTER, LSH).
    min_results: Option<usize>,
    /// The most shards `min_results` may probe.
    max_probes: Option<u32>,
}

/// A non-negative integer option up to `max`, or none.
fn opt_count(v: JsValue, what: &str, max: f64) -> Result<Option<f64>, JsError> {
    if absent(&v) {
        return Ok(None);
    }
    v.as_f64()
        .filter(|n| n.fract() == 0.0 && (0.0..=max).contains(n))
        .map(Some)
        .ok_or_else(|| {
            js_err(format!(
                "{what} must be an integer in 0..={max}, got {}",
                js_display(&v)
            ))
        })
}

/// `topK` out of 1..=[`MAX_TOP_K`].
fn top_k_refused(k: impl core::fmt::Display) -> String {
    format!("topK must be an integer in 1..={MAX_TOP_K}, got {k}")
}

impl SearchCall {
    fn from_js(inner: &Inner, v: &JsValue) -> Result<SearchCall, JsError> {
        let num_dbs = inner.pinned.borrow().snapshot.router.num_dbs();
        let opts = Options::from_js(v, num_dbs)?;
        let mut call = SearchCall {
            opts,
            top_k: api::DEFAULT_TOP_K,
            allow_partial: inner.config.allow_partial,
            filter: None,
            min_results: None,
            max_probes: None,
        };
        if absent(v) {
            return Ok(call);
        }
        let k = prop(v, "topK", "top_k");
        if !absent(&k) {
            call.top_k =
                k.as_f64()
                    .filter(|k| k.fract() == 0.0 && (1.0..=MAX_TOP_K as f64).contains(k))
                    .ok_or_else(|| js_err(top_k_refused(js_display(&k))))? as usize;
        }
        if let Some(p) = opt_bool(prop(v, "allowPartial", "allow_partial"), "allowPartial")? {
            call.allow_partial = p;
        }
        let f = prop(v, "filter", "filter");
        if !absent(&f) {
            // The core's message as is (`filter.i: $gte needs ...`).
            call.filter = Some(filter_from_js(&f).map_err(js_err)?);
        }
        call.min_results = opt_count(
            prop(v, "minResults", "min_results"),
            "minResults",
            MAX_TOP_K as f64,
        )?
        .map(|n| n as usize);
        call.max_probes = opt_count(
            prop(v, "maxProbes", "max_probes"),
            "maxProbes",
            f64::from(u32::MAX),
        )?
        .map(|n| n as u32);
        call.check().map_err(js_err)?;
        Ok(call)
    }

    /// A host's `POST /v1/search` request (parsed by the core), with the
    /// client's `allowPartial`.
    pub(crate) fn from_request(inner: &Inner, req: &SearchRequest) -> Result<SearchCall, Failure> {
        use crate::error::INVALID_QUERY;
        let num_dbs = inner.pinned.borrow().snapshot.router.num_dbs();
        let opts = Options::from_wire(
            req.num_probes,
            req.shard_ids.as_deref(),
            req.routing_context.as_ref(),
            num_dbs,
        )
        .map_err(Failure::query)?;
        if req.top_k == 0 {
            return Err(Failure::input(INVALID_QUERY, top_k_refused(0)));
        }
        if req.top_k > MAX_TOP_K {
            return Err(Failure::input(
                api::codes::TOP_K_TOO_LARGE,
                top_k_refused(req.top_k),
            ));
        }
        let call = SearchCall {
            opts,
            top_k: req.top_k,
            allow_partial: inner.config.allow_partial,
            filter: req.filter().map_err(Failure::query)?,
            min_results: req.min_results,
            max_probes: req.max_probes,
        };
        call.check()
            .map_err(|message| Failure::input(INVALID_QUERY, message))?;
        Ok(call)
    }

    /// `minResults` at most `topK`.
    fn check(&self) -> Result<(), String> {
        match self.min_results {
            Some(min) if min > self.top_k => {
                Err(format!("minResults {min} is above topK {}", self.top_k))
            }
            _ => Ok(()),
        }
    }

    /// Whether `minResults` applies to a search of `snapshot` (CLUSTER and
    /// LSH routes; not when the caller names the shards), as natively.
    fn probes_further(&self, snapshot: &Snapshot) -> Option<usize> {
        let routed = matches!(
            snapshot.router.strategy(),
            Strategy::Cluster | Strategy::Lsh
        );
        self.min_results
            .filter(|_| routed && !self.opts.names_shards())
    }
}

/// The answer of `EdgeClient.search`: a host's `/v1/search` answer (the
/// core's wire type), plus what only an edge knows.
#[derive(Serialize)]
pub(crate) struct EdgeAnswer {
    #[serde(flatten)]
    pub(crate) search: SearchResponse,
    /// Shards no replica answered (route order); only with
    /// `allow_partial`.
    pub(crate) missing_shards: Vec<u32>,
    hosts: Vec<HostReport>,
    partial: bool,
    retried: bool,
}

/// Why a host was asked.
#[derive(Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Role {
    /// The shards' first choice.
    Primary,
    /// After another replica failed.
    Failover,
    /// After `hedge_after_ms` without an answer.
    Hedge,
}

/// What happened at one host request (`EdgeHostReport`).
#[derive(Serialize)]
struct HostReport {
    url: String,
    shard_ids: Vec<u32>,
    role: Role,
    ok: bool,
    latency_ms: f64,
    status: Option<u16>,
    error: Option<String>,
}

/// What one host request did.
struct HostOutcome {
    host: usize,
    shard_ids: Vec<u32>,
    latency_ms: f64,
    status: Option<u16>,
    result: Result<Vec<(u32, Vec<SearchResult>)>, Error>,
}

/// A shard during one pass over the hosts.
struct ShardState {
    sid: u32,
    /// Hosts asked for it in this pass.
    tried: Vec<usize>,
    /// Requests for it not answered yet.
    in_flight: u32,
    /// Whether a request for it succeeded (its list is taken).
    done: bool,
    /// Whether it was hedged.
    hedged: bool,
    /// Every failure met for it.
    causes: Causes,
}

/// Everything one or more passes over the hosts gathered.
#[derive(Default)]
struct Gathered {
    /// Per-shard lists, in the order they were answered.
    lists: Vec<(u32, Vec<SearchResult>)>,
    /// Shards no replica answered, with every failure met.
    missing: Vec<(u32, Causes)>,
    reports: Vec<HostReport>,
    /// A host answering for another manifest: its index and error
    /// ([`Error::Stale`]).
    stale: Option<(usize, Error)>,
}

impl Gathered {
    /// Hits found so far: the per-shard lists' lengths, as natively.
    fn found(&self) -> usize {
        self.lists.iter().map(|(_, hits)| hits.len()).sum()
    }

    fn extend(&mut self, more: Gathered) {
        self.lists.extend(more.lists);
        self.missing.extend(more.missing);
        self.reports.extend(more.reports);
    }
}

/// How one pass over the hosts ended.
enum Attempt {
    Done {
        gathered: Gathered,
        /// The shards probed, in routing order (with `min_results`, every
        /// batch).
        route: Vec<u32>,
        probing: Option<Probing>,
    },
    /// A host serves another manifest: its index and error
    /// ([`Error::Stale`]).
    Stale(usize, Error),
}

/// Every failure met for a shard: the host and the error.
type Causes = Vec<(usize, Error)>;

/// The requests of one pass in flight.
type Running<'a> = FuturesUnordered<LocalBoxFuture<'a, (Role, HostOutcome)>>;

/// `shard 4` or `shards 4, 5, 6`.
fn shards_named(ids: &[u32]) -> String {
    let list: Vec<String> = ids.iter().map(u32::to_string).collect();
    match ids {
        [_] => format!("shard {}", list[0]),
        _ => format!("shards {}", list.join(", ")),
    }
}

impl Inner {
    /// The shards of `shards` that hold vectors (the others are skipped,
    /// as natively), each listed by some host.
    fn searched(&self, snapshot: &Snapshot, shards: &[ShardId]) -> Result<Vec<u32>, Error> {
        let mut out = Vec::with_capacity(shards.len());
        for sid in shards {
            if snapshot.manifest.shard(*sid).is_none() {
                continue;
            }
            if !self.hosts.anyone_serves(sid.0) {
                return Err(Error::NotServed { shard: sid.0 });
            }
            out.push(sid.0);
        }
        Ok(out)
    }

    /// Reloads the snapshot from `url`'s routing files and pins the
    /// client to it.
    pub(crate) async fn reload_from(&self, url: &str) -> Result<Snapshot, Error> {
        let pinned =
            load_from_host(url, self.config.token.as_deref(), self.config.timeout_ms).await?;
        let snapshot = pinned.snapshot.clone();
        *self.pinned.borrow_mut() = pinned;
        Ok(snapshot)
    }

    /// Reloads from the first host, in the order given, whose routing
    /// files load.
    pub(crate) async fn reload_any(&self) -> Result<Snapshot, Failure> {
        let mut failures = Vec::new();
        for h in 0..self.hosts.len() {
            match self.reload_from(self.hosts.url(h)).await {
                Ok(snapshot) => return Ok(snapshot),
                Err(e) => failures.push((format!("host {}", self.hosts.url(h)), e)),
            }
        }
        let refs: Vec<(String, &Error)> = failures.iter().map(|(p, e)| (p.clone(), e)).collect();
        Err(joined(&refs))
    }

    pub(crate) async fn search(
        &self,
        query: Vec<f32>,
        call: SearchCall,
    ) -> Result<EdgeAnswer, Failure> {
        let started = now_ms();
        let mut retried = false;
        loop {
            let pinned = self.pinned.borrow().clone();
            match self.attempt(&pinned, &query, &call).await? {
                Attempt::Done {
                    gathered,
                    route,
                    probing,
                } => {
                    let latency_ms = now_ms() - started;
                    return self.finish(
                        gathered,
                        route,
                        probing,
                        &call,
                        pinned.manifest_ref,
                        retried,
                        latency_ms,
                    );
                }
                Attempt::Stale(host, e) => {
                    let url = self.hosts.url(host).to_string();
                    if retried {
                        return Err(Error::Stale(format!(
                            "host {url}: {e} (still after reloading the snapshot once)"
                        ))
                        .into());
                    }
                    retried = true;
                    self.reload_from(&url).await?;
                }
            }
        }
    }

    /// One search on `pinned`: the routed shards, then (with
    /// `min_results`) further batches in routing order. Everything that
    /// can be refused (the route, `max_probes`, the routing order) is
    /// checked before the first request.
    async fn attempt(
        &self,
        pinned: &Pinned,
        query: &[f32],
        call: &SearchCall,
    ) -> Result<Attempt, Failure> {
        let snapshot = &pinned.snapshot;
        let router = &snapshot.router;
        // The native reader's probe-further plan, from the core: the order
        // the shards are probed in (the route is its prefix), at most
        // `maxProbes` long; routed once.
        let (route, further) = match call.probes_further(snapshot) {
            None => (
                router
                    .route(query, &call.opts.route_options())
                    .map_err(Failure::query)?,
                None,
            ),
            Some(min) => {
                let order = router
                    .probe_order(query, &call.opts.route_options(), call.max_probes)
                    .map_err(Failure::query)?;
                (order.route().to_vec(), Some((min, order.shards)))
            }
        };
        let manifest_ref = pinned.manifest_ref.as_str();
        // One preference order over the hosts for the whole search.
        let preference = self.hosts.order(true);
        let shards = self.searched(snapshot, &route)?;
        let mut gathered = self
            .gather(shards, query, call, manifest_ref, &preference)
            .await;
        if let Some((host, e)) = gathered.stale.take() {
            return Ok(Attempt::Stale(host, e));
        }
        let batch = route.len().max(1);
        let mut probed = route;
        let mut probing = None;
        if let Some((min, order)) = further {
            while gathered.found() < min
                && probed.len() < order.len()
                // A failure fails the search, unless partial answers are fine.
                && (call.allow_partial || gathered.missing.is_empty())
            {
                let next = &order[probed.len()..(probed.len() + batch).min(order.len())];
                let shards = self.searched(snapshot, next)?;
                let mut more = self
                    .gather(shards, query, call, manifest_ref, &preference)
                    .await;
                if let Some((host, e)) = more.stale.take() {
                    return Ok(Attempt::Stale(host, e));
                }
                gathered.extend(more);
                probed.extend_from_slice(next);
            }
            probing = Some(Probing::new(
                min,
                gathered.found(),
                probed.len(),
                router.num_dbs(),
            ));
        }
        Ok(Attempt::Done {
            gathered,
            route: probed.into_iter().map(|s| s.0).collect(),
            probing,
        })
    }

    /// Sends the shards `which` (indexes into `state`) each to its next
    /// replica in `order`, grouped by host, into `running`. A shard with
    /// no replica left records why (hosts taken out) and is not sent.
    #[allow(clippy::too_many_arguments)]
    fn dispatch<'a>(
        &'a self,
        state: &mut [ShardState],
        which: &[usize],
        role: Role,
        order: &[usize],
        running: &mut Running<'a>,
        query: &'a [f32],
        call: &'a SearchCall,
        manifest_ref: &'a str,
    ) {
        let now = now_ms();
        let mut groups: Vec<(usize, Vec<u32>)> = Vec::new();
        for &i in which {
            let s = &mut state[i];
            match self.hosts.choose(order, s.sid, &s.tried, now) {
                Choice::Host(h) => {
                    s.tried.push(h);
                    s.in_flight += 1;
                    match groups.iter_mut().find(|(g, _)| *g == h) {
                        Some((_, ids)) => ids.push(s.sid),
                        None => groups.push((h, vec![s.sid])),
                    }
                }
                // A hedge with no replica left waits for the request in
                // flight; otherwise the shard is missing, and why.
                Choice::None(out) if role != Role::Hedge => s.causes.extend(out),
                Choice::None(_) => {}
            }
        }
        for (host, ids) in groups {
            running.push(
                self.ask(host, ids, query, call, manifest_ref)
                    .map(move |o| (role, o))
                    .boxed_local(),
            );
        }
    }

    /// Asks the hosts for `shards` (holding vectors, each served by some
    /// host): each shard from its first replica in `order`, failing over
    /// to the next one when a request fails, hedged to the next one after
    /// `hedge_after_ms`; until every shard has an answer or no replica
    /// left. Requests still running then (a hedge's loser) are dropped.
    async fn gather(
        &self,
        shards: Vec<u32>,
        query: &[f32],
        call: &SearchCall,
        manifest_ref: &str,
        order: &[usize],
    ) -> Gathered {
        let mut state: Vec<ShardState> = shards
            .iter()
            .map(|&sid| ShardState {
                sid,
                tried: Vec::new(),
                in_flight: 0,
                done: false,
                hedged: false,
                causes: Vec::new(),
            })
            .collect();
        let index = |sid: u32| shards.iter().position(|&s| s == sid);
        let mut out = Gathered::default();
        let mut running: Running<'_> = FuturesUnordered::new();
        let all: Vec<usize> = (0..state.len()).collect();
        self.dispatch(
            &mut state,
            &all,
            Role::Primary,
            order,
            &mut running,
            query,
            call,
            manifest_ref,
        );
        let mut timer = self
            .config
            .hedge_after_ms
            .map(|ms| http::sleep(ms).boxed_local());
        while !state.iter().all(|s| s.done || s.in_flight == 0) {
            let next = running.next();
            let event = match timer.as_mut() {
                Some(t) => match select(next, t).await {
                    Either::Left((o, _)) => Some(o),
                    Either::Right(_) => None,
                },
                None => Some(next.await),
            };
            let (role, o) = match event {
                // The hedge delay passed: the shards still waiting go to
                // their next replica too.
                None => {
                    timer = None;
                    let waiting: Vec<usize> = (0..state.len())
                        .filter(|&i| {
                            let s = &state[i];
                            !s.done && s.in_flight > 0 && !s.hedged
                        })
                        .collect();
                    for &i in &waiting {
                        state[i].hedged = true;
                    }
                    self.dispatch(
                        &mut state,
                        &waiting,
                        Role::Hedge,
                        order,
                        &mut running,
                        query,
                        call,
                        manifest_ref,
                    );
                    continue;
                }
                Some(None) => break,
                Some(Some(done)) => done,
            };
            for &sid in &o.shard_ids {
                if let Some(i) = index(sid) {
                    state[i].in_flight = state[i].in_flight.saturating_sub(1);
                }
            }
            out.reports.push(HostReport {
                url: self.hosts.url(o.host).to_string(),
                shard_ids: o.shard_ids.clone(),
                role,
                ok: o.result.is_ok(),
                latency_ms: o.latency_ms,
                status: o.status,
                error: o.result.as_ref().err().map(Error::to_string),
            });
            match o.result {
                Ok(lists) => {
                    self.hosts.succeeded(o.host);
                    for (sid, hits) in lists {
                        if let Some(s) = index(sid).map(|i| &mut state[i]) {
                            if !s.done {
                                s.done = true;
                                out.lists.push((sid, hits));
                            }
                        }
                    }
                }
                Err(e @ Error::Stale(_)) => {
                    out.stale = Some((o.host, e));
                    return out;
                }
                Err(e) => {
                    // 400 and 413 are the request's fault: every replica
                    // would refuse it too.
                    let request_fault = matches!(o.status, Some(400 | 413));
                    if !request_fault {
                        self.hosts.failed(o.host, now_ms());
                    }
                    let mut again = Vec::new();
                    for &sid in &o.shard_ids {
                        let Some(i) = index(sid) else { continue };
                        let s = &mut state[i];
                        if s.done {
                            continue;
                        }
                        s.causes.push((o.host, e.clone()));
                        if !request_fault && s.in_flight == 0 {
                            again.push(i);
                        }
                    }
                    self.dispatch(
                        &mut state,
                        &again,
                        Role::Failover,
                        order,
                        &mut running,
                        query,
                        call,
                        manifest_ref,
                    );
                }
            }
        }
        for s in state {
            if !s.done {
                out.missing.push((s.sid, s.causes));
            }
        }
        out
    }

    /// Posts one host's shards.
    async fn ask(
        &self,
        host: usize,
        shard_ids: Vec<u32>,
        query: &[f32],
        call: &SearchCall,
        manifest_ref: &str,
    ) -> HostOutcome {
        let url = format!("{}/v1/shards/search", self.hosts.url(host));
        let body = ShardsSearchRequest {
            query: query.to_vec(),
            top_k: call.top_k,
            shard_ids: shard_ids.clone(),
            manifest_ref: Some(manifest_ref.to_string()),
            filter: call.filter.as_ref().map(Filter::to_json),
        };
        let started = now_ms();
        let resp = match serde_json::to_string(&body) {
            Ok(json) => {
                http::send(&http::Request {
                    method: "POST",
                    url: &url,
                    json: Some(json),
                    token: self.config.token.as_deref(),
                    if_none_match: None,
                    timeout_ms: self.config.timeout_ms,
                    max_bytes: Some(self.config.max_response_bytes),
                })
                .await
            }
            Err(e) => Err(Error::Failed(format!(
                "POST {url}: the request could not be encoded: {e}"
            ))),
        };
        let latency_ms = now_ms() - started;
        let (status, result) = match resp {
            Err(e) => (None, Err(e)),
            Ok(r) => {
                let asked = Asked {
                    url: &url,
                    shards: &shard_ids,
                    top_k: call.top_k,
                    manifest_ref,
                    filter: call.filter.as_ref(),
                };
                (Some(r.status), answer(&asked, &r))
            }
        };
        HostOutcome {
            host,
            shard_ids,
            latency_ms,
            status,
            result,
        }
    }

    /// The error of shards no replica answered: for each set of shards
    /// that failed alike, every host's failure.
    fn unavailable(&self, missing: &[(u32, Causes)]) -> Failure {
        let mut alike: Vec<(Vec<u32>, &Causes)> = Vec::new();
        for (sid, causes) in missing {
            match alike.iter_mut().find(|(_, c)| *c == causes) {
                Some((ids, _)) => ids.push(*sid),
                None => alike.push((vec![*sid], causes)),
            }
        }
        let failures: Vec<(String, &Error)> = alike
            .iter()
            .flat_map(|(ids, causes)| {
                let named = shards_named(ids);
                causes
                    .iter()
                    .map(move |(h, e)| (format!("{named}: host {}", self.hosts.url(*h)), e))
            })
            .collect();
        match joined(&failures) {
            Failure::Edge { code, message, .. } => Failure::Edge {
                code,
                message,
                shards: missing.iter().map(|(sid, _)| *sid).collect(),
            },
            input => input,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn finish(
        &self,
        gathered: Gathered,
        route: Vec<u32>,
        probing: Option<Probing>,
        call: &SearchCall,
        manifest_ref: String,
        retried: bool,
        latency_ms: f64,
    ) -> Result<EdgeAnswer, Failure> {
        let Gathered {
            mut lists,
            missing,
            reports,
            ..
        } = gathered;
        if !missing.is_empty() && !call.allow_partial {
            return Err(self.unavailable(&missing));
        }
        let queried = lists.len();
        // Merge in route order, as the native reader does.
        let ordered: Vec<Vec<SearchResult>> = route
            .iter()
            .filter_map(|sid| {
                let i = lists.iter().position(|(s, _)| s == sid)?;
                Some(lists.swap_remove(i).1)
            })
            .collect();
        let missing_shards: Vec<u32> = route
            .iter()
            .copied()
            .filter(|sid| missing.iter().any(|(m, _)| m == sid))
            .collect();
        Ok(EdgeAnswer {
            search: SearchResponse {
                results: merge(ordered, call.top_k),
                num_shards_queried: queried,
                latency_ms,
                route: route.into_iter().map(ShardId).collect(),
                manifest_ref,
                probing,
            },
            partial: !missing_shards.is_empty(),
            missing_shards,
            hosts: reports,
            retried,
        })
    }
}

/// What one host request asked for.
struct Asked<'a> {
    url: &'a str,
    shards: &'a [u32],
    top_k: usize,
    /// The manifest the search is pinned to.
    manifest_ref: &'a str,
    filter: Option<&'a Filter>,
}

/// Reads a host's answer: per-shard lists for exactly the shards asked,
/// for the pinned manifest (an answer for another one is
/// [`Error::Stale`]), at most `top_k` hits each, every hit marked with its
/// shard and matching the filter (a host that ignored it would otherwise
/// go unnoticed).
fn answer(asked: &Asked<'_>, r: &http::Response) -> Result<Vec<(u32, Vec<SearchResult>)>, Error> {
    let url = asked.url;
    let not_json = || {
        let text: String = String::from_utf8_lossy(&r.body).chars().take(200).collect();
        Error::Failed(format!("HTTP {} (not JSON): {text}", r.status))
    };
    // One parse of the body: a data error is JSON of another shape, any
    // other error is not JSON at all.
    if r.status != 200 {
        let (code, message) = match serde_json::from_slice::<ErrorBody>(&r.body) {
            Ok(b) => (b.error.code, b.error.message),
            Err(e) if e.is_data() => (String::new(), String::new()),
            Err(_) => return Err(not_json()),
        };
        let msg = format!("HTTP {} {code}: {message}", r.status);
        return Err(if r.status == 409 && code == api::codes::STALE_MANIFEST {
            Error::Stale(msg)
        } else {
            Error::Failed(msg)
        });
    }
    let a: ShardsSearchResponse = serde_json::from_slice(&r.body).map_err(|e| {
        if e.is_data() {
            Error::Failed(format!("{url}: unexpected answer: {e}"))
        } else {
            not_json()
        }
    })?;
    if a.manifest_ref != asked.manifest_ref {
        return Err(Error::Stale(format!(
            "answered for manifest {}, the search is pinned to manifest {}",
            a.manifest_ref, asked.manifest_ref
        )));
    }
    let got: Vec<u32> = a.shards.iter().map(|s| s.shard_id.0).collect();
    if got.len() != asked.shards.len() || asked.shards.iter().any(|s| !got.contains(s)) {
        return Err(Error::Failed(format!(
            "asked for shards {:?}, answered {got:?}",
            asked.shards
        )));
    }
    let mut lists = Vec::with_capacity(a.shards.len());
    for s in a.shards {
        let sid = s.shard_id;
        let mut hits = s.results;
        if hits.len() > asked.top_k {
            return Err(Error::TooManyHits {
                url: url.to_string(),
                shard: sid.0,
                hits: hits.len(),
                top_k: asked.top_k,
            });
        }
        for hit in &mut hits {
            match hit.shard_id {
                None => hit.shard_id = Some(sid),
                Some(other) if other != sid => {
                    return Err(Error::Failed(format!(
                        "{url}: hit {} in the answer of shard {sid} is marked shard {other}",
                        hit.id
                    )))
                }
                Some(_) => {}
            }
            if asked
                .filter
                .is_some_and(|f| !f.matches(&hit.id, hit.payload.as_ref()))
            {
                return Err(Error::Failed(format!(
                    "{url}: hit {} of shard {sid} does not match the filter",
                    hit.id
                )));
            }
        }
        lists.push((sid.0, hits));
    }
    Ok(lists)
}
