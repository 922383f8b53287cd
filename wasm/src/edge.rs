//! The edge client: route in WebAssembly, send each query only to the
//! hosts holding the chosen shards, merge their per-shard answers.
//!
//! A search routes with the client's [`Snapshot`], drops shards the
//! manifest records as empty, groups the rest by host (the first host
//! listing a shard serves it) and posts `POST /v1/shards/search` to every
//! host concurrently, pinning the manifest it routed with. The per-shard
//! lists are merged by the core merge in route order, which is what the
//! native reader does, so the answer is the native reader's.
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
//! `topK` hits per shard. Any failure of a host fails the search with an
//! error naming the host, unless the caller opted into partial results
//! (`allowPartial`), which then report the failed hosts and `partial:
//! true`. Errors are JS `Error`s with a `code` ([`Error::code`]).
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

use js_sys::{Array, Promise, Reflect};
use serde::Serialize;
use serde_json::{json, Value as Json};
use shardvec_core::api::{
    self, ErrorBody, SearchResponse, ShardsSearchRequest, ShardsSearchResponse,
    DEFAULT_HOST_MAX_TOP_K, MAX_TOP_K,
};
use shardvec_core::snapshot::{self, LoadError, Object, Source};
use shardvec_core::{
    merge, CurrentPointer, Filter, Manifest, ManifestRef, Probing, SearchResult, ShardId, Strategy,
};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::error::{joined, Error};
use crate::filter::filter_from_js;
use crate::http::{self, now_ms};
use crate::js::{absent, js_display, js_err, prop, to_js};
use crate::options::{shard_ids_from_js, Options};
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
 * list longer than `topK`). Errors in the caller's input have no code.
 */
export type EdgeErrorCode =
  | "request_failed"
  | "stale_manifest"
  | "wrong_manifest"
  | "answer_too_large"
  | "too_many_hits";
/** A host and the shards it serves. */
export interface EdgeHost {
  url: string;
  shards: number[];
}
/** Options of `new EdgeClient(...)`. */
export interface EdgeClientOptions {
  hosts: EdgeHost[];
  snapshot: Snapshot;
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
/** What happened at one host. */
export interface EdgeHostReport {
  url: string;
  shard_ids: number[];
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
  hosts: EdgeHostReport[];
  partial: boolean;
  retried: boolean;
}
"#;

struct HostEntry {
    url: String,
    shards: Vec<u32>,
}

/// Default of `maxResponseBytes`: room for [`DEFAULT_HOST_MAX_TOP_K`]
/// hits (the most a host answers per shard unless configured otherwise)
/// of 32 KiB each, id, score and payload.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = DEFAULT_HOST_MAX_TOP_K * 32 * 1024;

/// A snapshot and the manifest it was loaded from: what every search of
/// the client is pinned to.
#[derive(Clone)]
struct Pinned {
    snapshot: Snapshot,
    /// `snapshot`'s manifest URL.
    manifest_ref: String,
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

struct Inner {
    pinned: RefCell<Pinned>,
    hosts: Vec<HostEntry>,
    token: Option<String>,
    allow_partial: bool,
    timeout_ms: Option<f64>,
    max_response_bytes: usize,
}

/// Routes queries at the edge and searches only the chosen shards on their
/// hosts. See the module documentation.
#[wasm_bindgen]
pub struct EdgeClient {
    inner: Rc<Inner>,
}

fn opt_bool(v: JsValue, what: &str) -> Result<Option<bool>, JsError> {
    if absent(&v) {
        return Ok(None);
    }
    v.as_bool()
        .map(Some)
        .ok_or_else(|| js_err(format!("{what} must be a boolean, got {}", js_display(&v))))
}

#[wasm_bindgen]
impl EdgeClient {
    /// A client over `hosts` (`[{url, shards}]`), routing with `snapshot`
    /// (the client keeps its own handle; reloading it does not change the
    /// caller's), which must have a manifest reference (`Snapshot.open`,
    /// `fromHost`, or `fromParts` with the `_CURRENT` text). Options:
    /// `token`, `allowPartial` (default false), `timeoutMs` (per host
    /// request; default none), `maxResponseBytes` (per host answer;
    /// default [`DEFAULT_MAX_RESPONSE_BYTES`]).
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
        let num_dbs = pinned.snapshot.router.num_dbs();
        let hosts_js = prop(&options, "hosts", "hosts");
        if !Array::is_array(&hosts_js) || Array::from(&hosts_js).length() == 0 {
            return Err(JsError::new(
                "hosts must be a non-empty array of {url, shards}",
            ));
        }
        let mut hosts = Vec::new();
        for (i, h) in Array::from(&hosts_js).iter().enumerate() {
            let url = prop(&h, "url", "url")
                .as_string()
                .ok_or_else(|| js_err(format!("hosts[{i}].url must be a string")))?;
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(js_err(format!(
                    "hosts[{i}].url must be an http(s) URL, got {url:?}"
                )));
            }
            let shards =
                shard_ids_from_js(&prop(&h, "shards", "shards"), num_dbs).map_err(|_| {
                    js_err(format!(
                        "hosts[{i}].shards must be an array of shard ids below {num_dbs}"
                    ))
                })?;
            hosts.push(HostEntry {
                url: url.trim_end_matches('/').to_string(),
                shards: shards.into_iter().map(|s| s.0).collect(),
            });
        }
        let token = prop(&options, "token", "token");
        let token = if absent(&token) {
            None
        } else {
            Some(
                token
                    .as_string()
                    .ok_or_else(|| JsError::new("token must be a string"))?,
            )
        };
        let allow_partial = opt_bool(
            prop(&options, "allowPartial", "allow_partial"),
            "allowPartial",
        )?
        .unwrap_or(false);
        let t = prop(&options, "timeoutMs", "timeout_ms");
        let timeout_ms = if absent(&t) {
            None
        } else {
            Some(
                t.as_f64()
                    .filter(|ms| ms.is_finite() && *ms > 0.0)
                    .ok_or_else(|| js_err("timeoutMs must be a positive number"))?,
            )
        };
        let m = prop(&options, "maxResponseBytes", "max_response_bytes");
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
        Ok(EdgeClient {
            inner: Rc::new(Inner {
                pinned: RefCell::new(pinned),
                hosts,
                token,
                allow_partial,
                timeout_ms,
                max_response_bytes,
            }),
        })
    }

    /// The snapshot the client routes with (after a reload, the new one).
    #[wasm_bindgen(getter)]
    pub fn snapshot(&self) -> Snapshot {
        self.inner.pinned.borrow().snapshot.clone()
    }

    /// Which host each routed shard goes to, without searching:
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
        let (route, groups) = self.inner.plan(&snapshot, query, &opts).map_err(js_err)?;
        let hosts: Vec<Json> = groups
            .iter()
            .map(|(h, ids)| json!({ "url": self.inner.hosts[*h].url, "shard_ids": ids }))
            .collect();
        Ok(to_js(&json!({ "route": route, "hosts": hosts })))
    }

    /// Searches `query` (a `Float32Array` or an array of numbers): routes,
    /// asks the hosts of the routed shards concurrently, merges. Options:
    /// routing options, `topK`, `allowPartial`, `filter` (a payload filter,
    /// parsed by the core before any request), `minResults` and
    /// `maxProbes` (probe on in routing order until enough hits; see the
    /// module docs). Resolves to an `EdgeSearchResult` whose hits carry
    /// their `shard_id`; rejects with an `Error` naming the host that
    /// failed (unless `allowPartial`) or the input at fault (for a filter,
    /// the core's message, e.g. `filter.i: $gte needs a number or a
    /// string`).
    #[wasm_bindgen(unchecked_return_type = "Promise<EdgeSearchResult>")]
    pub fn search(
        &self,
        query: Vec<f32>,
        #[wasm_bindgen(unchecked_optional_param_type = "EdgeSearchOptions")] options: JsValue,
    ) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let call = SearchCall::from_js(&inner, &options)?;
            inner.search(query, call).await
        })
    }

    /// Reloads the snapshot from the first host's routing files.
    #[wasm_bindgen(unchecked_return_type = "Promise<Snapshot>")]
    pub fn reload(&self) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let url = inner.hosts[0].url.clone();
            let snapshot = inner.reload_from(&url).await?;
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
fn routing_url(host: &str, file: &str) -> String {
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
async fn load_from_host(
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
struct SearchCall {
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

impl SearchCall {
    fn from_js(inner: &Inner, v: &JsValue) -> Result<SearchCall, JsError> {
        let num_dbs = inner.pinned.borrow().snapshot.router.num_dbs();
        let opts = Options::from_js(v, num_dbs)?;
        let mut call = SearchCall {
            opts,
            top_k: 10,
            allow_partial: inner.allow_partial,
            filter: None,
            min_results: None,
            max_probes: None,
        };
        if absent(v) {
            return Ok(call);
        }
        let k = prop(v, "topK", "top_k");
        if !absent(&k) {
            call.top_k = k
                .as_f64()
                .filter(|k| k.fract() == 0.0 && (1.0..=MAX_TOP_K as f64).contains(k))
                .ok_or_else(|| {
                    js_err(format!(
                        "topK must be an integer in 1..={MAX_TOP_K}, got {}",
                        js_display(&k)
                    ))
                })? as usize;
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
        if let Some(min) = call.min_results {
            if min > call.top_k {
                return Err(js_err(format!(
                    "minResults {min} is above topK {}",
                    call.top_k
                )));
            }
        }
        Ok(call)
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
struct EdgeAnswer {
    #[serde(flatten)]
    search: SearchResponse,
    hosts: Vec<HostReport>,
    partial: bool,
    retried: bool,
}

/// What happened at one host (`EdgeHostReport`).
#[derive(Serialize)]
struct HostReport {
    url: String,
    shard_ids: Vec<u32>,
    ok: bool,
    latency_ms: f64,
    status: Option<u16>,
    error: Option<String>,
}

/// A host (index into the client's hosts) and the routed shards it gets.
type HostShards = (usize, Vec<u32>);

/// What one host did.
struct HostOutcome {
    host: usize,
    shard_ids: Vec<u32>,
    latency_ms: f64,
    status: Option<u16>,
    result: Result<Vec<(u32, Vec<SearchResult>)>, Error>,
}

/// Everything the hosts answered for one search on one snapshot.
struct Searched {
    /// The shards probed, in routing order (with `min_results`, every
    /// batch).
    route: Vec<u32>,
    /// One per host request, in the order they were sent.
    outcomes: Vec<HostOutcome>,
    probing: Option<Probing>,
}

/// How one pass over the hosts ended.
enum Attempt {
    Done(Searched),
    /// A host serves another manifest: its index and error
    /// ([`Error::Stale`]).
    Stale(usize, Error),
}

/// The first stale-manifest answer among `outcomes`.
fn stale_of(outcomes: &[HostOutcome]) -> Option<(usize, Error)> {
    outcomes.iter().find_map(|o| match &o.result {
        Err(e @ Error::Stale(_)) => Some((o.host, e.clone())),
        _ => None,
    })
}

/// Hits found so far: the per-shard lists' lengths, as natively.
fn found(outcomes: &[HostOutcome]) -> usize {
    outcomes
        .iter()
        .filter_map(|o| o.result.as_ref().ok())
        .flatten()
        .map(|(_, hits)| hits.len())
        .sum()
}

impl Inner {
    /// The route and, per host (in order of first use), its routed shards.
    fn plan(
        &self,
        snapshot: &Snapshot,
        query: &[f32],
        opts: &Options,
    ) -> Result<(Vec<u32>, Vec<HostShards>), String> {
        let route = snapshot
            .router
            .route(query, &opts.route_options())
            .map_err(|e| e.to_string())?;
        let groups = self.group(snapshot, &route)?;
        Ok((route.into_iter().map(|s| s.0).collect(), groups))
    }

    /// `shards` that hold vectors, grouped by the host serving them (the
    /// first listing them), hosts in order of first use.
    fn group(&self, snapshot: &Snapshot, shards: &[ShardId]) -> Result<Vec<HostShards>, String> {
        let mut groups: Vec<HostShards> = Vec::new();
        for sid in shards.iter().copied() {
            if snapshot.manifest.shard(sid).is_none() {
                continue;
            }
            let host = self
                .hosts
                .iter()
                .position(|h| h.shards.contains(&sid.0))
                .ok_or_else(|| format!("shard {sid} is routed to but no host serves it"))?;
            match groups.iter_mut().find(|(h, _)| *h == host) {
                Some((_, ids)) => ids.push(sid.0),
                None => groups.push((host, vec![sid.0])),
            }
        }
        Ok(groups)
    }

    /// Reloads the snapshot from `url`'s routing files and pins the
    /// client to it.
    async fn reload_from(&self, url: &str) -> Result<Snapshot, Error> {
        let pinned = load_from_host(url, self.token.as_deref(), self.timeout_ms).await?;
        let snapshot = pinned.snapshot.clone();
        *self.pinned.borrow_mut() = pinned;
        Ok(snapshot)
    }

    async fn search(&self, query: Vec<f32>, call: SearchCall) -> Result<JsValue, JsValue> {
        let started = now_ms();
        let mut retried = false;
        loop {
            let pinned = self.pinned.borrow().clone();
            match self.attempt(&pinned, &query, &call).await? {
                Attempt::Done(searched) => {
                    let latency_ms = now_ms() - started;
                    return self.finish(searched, &call, pinned.manifest_ref, retried, latency_ms);
                }
                Attempt::Stale(host, e) => {
                    let url = self.hosts[host].url.clone();
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

    /// One search on `snapshot`: the routed shards, then (with
    /// `min_results`) further batches in routing order. Everything that
    /// can be refused (the route, `max_probes`, the routing order) is
    /// checked before the first request.
    async fn attempt(
        &self,
        pinned: &Pinned,
        query: &[f32],
        call: &SearchCall,
    ) -> Result<Attempt, JsError> {
        let snapshot = &pinned.snapshot;
        let router = &snapshot.router;
        // The native reader's probe-further plan, from the core: the order
        // the shards are probed in (the route is its prefix), at most
        // `maxProbes` long; routed once.
        let (route, further) = match call.probes_further(snapshot) {
            None => (
                router
                    .route(query, &call.opts.route_options())
                    .map_err(js_err)?,
                None,
            ),
            Some(min) => {
                let order = router
                    .probe_order(query, &call.opts.route_options(), call.max_probes)
                    .map_err(js_err)?;
                (order.route().to_vec(), Some((min, order.shards)))
            }
        };
        let manifest_ref = pinned.manifest_ref.as_str();
        let mut outcomes = self
            .ask_all(snapshot, &route, query, call, manifest_ref)
            .await?;
        if let Some((host, msg)) = stale_of(&outcomes) {
            return Ok(Attempt::Stale(host, msg));
        }
        let batch = route.len().max(1);
        let mut probed = route;
        let mut probing = None;
        if let Some((min, order)) = further {
            let failed = |o: &[HostOutcome]| o.iter().any(|o| o.result.is_err());
            while found(&outcomes) < min
                && probed.len() < order.len()
                // A failure fails the search, unless partial answers are fine.
                && (call.allow_partial || !failed(&outcomes))
            {
                let next = &order[probed.len()..(probed.len() + batch).min(order.len())];
                let more = self
                    .ask_all(snapshot, next, query, call, manifest_ref)
                    .await?;
                if let Some((host, msg)) = stale_of(&more) {
                    return Ok(Attempt::Stale(host, msg));
                }
                outcomes.extend(more);
                probed.extend_from_slice(next);
            }
            probing = Some(Probing::new(
                min,
                found(&outcomes),
                probed.len(),
                router.num_dbs(),
            ));
        }
        Ok(Attempt::Done(Searched {
            route: probed.into_iter().map(|s| s.0).collect(),
            outcomes,
            probing,
        }))
    }

    /// Asks every host serving some of `shards` (those holding vectors)
    /// concurrently.
    async fn ask_all(
        &self,
        snapshot: &Snapshot,
        shards: &[ShardId],
        query: &[f32],
        call: &SearchCall,
        manifest_ref: &str,
    ) -> Result<Vec<HostOutcome>, JsError> {
        let groups = self.group(snapshot, shards).map_err(js_err)?;
        let calls = groups
            .into_iter()
            .map(|(host, ids)| self.ask(host, ids, query, call, manifest_ref));
        Ok(futures::future::join_all(calls).await)
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
        let url = format!("{}/v1/shards/search", self.hosts[host].url);
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
                    token: self.token.as_deref(),
                    timeout_ms: self.timeout_ms,
                    max_bytes: Some(self.max_response_bytes),
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

    fn finish(
        &self,
        searched: Searched,
        call: &SearchCall,
        manifest_ref: String,
        retried: bool,
        latency_ms: f64,
    ) -> Result<JsValue, JsValue> {
        let Searched {
            route,
            outcomes,
            probing,
        } = searched;
        let failures: Vec<(String, &Error)> = outcomes
            .iter()
            .filter_map(|o| {
                let e = o.result.as_ref().err()?;
                Some((format!("host {}", self.hosts[o.host].url), e))
            })
            .collect();
        if !failures.is_empty() && !call.allow_partial {
            return Err(joined(&failures));
        }
        let partial = !failures.is_empty();
        // Merge in route order, as the native reader does.
        let mut lists: Vec<(u32, Vec<SearchResult>)> = Vec::new();
        let mut reports = Vec::new();
        for o in outcomes {
            let error = match o.result {
                Ok(found) => {
                    lists.extend(found);
                    None
                }
                Err(e) => Some(e.to_string()),
            };
            reports.push(HostReport {
                url: self.hosts[o.host].url.clone(),
                shard_ids: o.shard_ids,
                ok: error.is_none(),
                latency_ms: o.latency_ms,
                status: o.status,
                error,
            });
        }
        let queried = lists.len();
        let ordered: Vec<Vec<SearchResult>> = route
            .iter()
            .filter_map(|sid| {
                let i = lists.iter().position(|(s, _)| s == sid)?;
                Some(lists.swap_remove(i).1)
            })
            .collect();
        let answer = EdgeAnswer {
            search: SearchResponse {
                results: merge(ordered, call.top_k),
                num_shards_queried: queried,
                latency_ms,
                route: route.into_iter().map(ShardId).collect(),
                manifest_ref,
                probing,
            },
            hosts: reports,
            partial,
            retried,
        };
        let value = serde_json::to_value(&answer).map_err(js_err)?;
        Ok(to_js(&value))
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
