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
//! A host serving another manifest answers 409 `stale_manifest`: the
//! client then reloads its snapshot from that host's routing files
//! (`GET /v1/routing/*`) and retries once. Any other failure of a host
//! fails the search with an error naming the host, unless the caller opted
//! into partial results (`allowPartial`), which then report the failed
//! hosts and `partial: true`.
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
    ErrorBody, SearchResponse, ShardsSearchRequest, ShardsSearchResponse, MAX_TOP_K,
};
use shardvec_core::snapshot::{self, LoadError, Object, Source};
use shardvec_core::{
    merge, CurrentPointer, Filter, Manifest, ManifestRef, Probing, SearchResult, ShardId, Strategy,
};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::filter::filter_from_js;
use crate::http::{self, now_ms};
use crate::js::{absent, js_display, js_err, prop, to_js};
use crate::options::{shard_ids_from_js, Options};
use crate::snapshot::Snapshot;

#[wasm_bindgen(typescript_custom_section)]
const TS_EDGE: &str = r#"
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

struct Inner {
    snapshot: RefCell<Snapshot>,
    hosts: Vec<HostEntry>,
    token: Option<String>,
    allow_partial: bool,
    timeout_ms: Option<f64>,
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
    /// caller's). Options: `token`, `allowPartial` (default false),
    /// `timeoutMs` (per host request; default none).
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "EdgeClientOptions")] options: JsValue,
    ) -> Result<EdgeClient, JsError> {
        if !options.is_object() {
            return Err(JsError::new(
                "EdgeClient options must be an object {hosts, snapshot}",
            ));
        }
        let snapshot = snapshot_of(&prop(&options, "snapshot", "snapshot"))?;
        if snapshot.manifest_ref.is_none() {
            // Hosts refuse a search pinned to another manifest; with no
            // manifest to pin, an edge could merge two snapshots.
            return Err(JsError::new(
                "the EdgeClient's snapshot has no manifest reference (build it with \
                 Snapshot.open, Snapshot.fromHost, or fromParts with the _CURRENT text)",
            ));
        }
        let num_dbs = snapshot.router.num_dbs();
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
        Ok(EdgeClient {
            inner: Rc::new(Inner {
                snapshot: RefCell::new(snapshot),
                hosts,
                token,
                allow_partial,
                timeout_ms,
            }),
        })
    }

    /// The snapshot the client routes with (after a reload, the new one).
    #[wasm_bindgen(getter)]
    pub fn snapshot(&self) -> Snapshot {
        self.inner.snapshot.borrow().clone()
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
        let snapshot = self.inner.snapshot.borrow().clone();
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
            inner.search(query, call).await.map_err(JsValue::from)
        })
    }

    /// Reloads the snapshot from the first host's routing files.
    #[wasm_bindgen(unchecked_return_type = "Promise<Snapshot>")]
    pub fn reload(&self) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let url = inner.hosts[0].url.clone();
            let snapshot = inner.reload_from(&url).await.map_err(JsValue::from)?;
            Ok(JsValue::from(snapshot))
        })
    }
}

#[wasm_bindgen]
impl Snapshot {
    /// Loads the snapshot a shardvec host serves, from its routing files
    /// (`GET {hostUrl}/v1/routing/{current,manifest,centroids.npy,
    /// hyperplanes.npy}`), with an optional bearer token.
    #[wasm_bindgen(js_name = fromHost)]
    pub async fn from_host(
        #[wasm_bindgen(js_name = hostUrl)] host_url: String,
        token: Option<String>,
    ) -> Result<Snapshot, JsError> {
        load_from_host(host_url.trim_end_matches('/'), token.as_deref(), None).await
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
/// fall back to).
struct HostSource<'a> {
    host: &'a str,
    token: Option<&'a str>,
    timeout_ms: Option<f64>,
}

impl HostSource<'_> {
    fn url(&self, file: &str) -> String {
        format!("{}/v1/routing/{file}", self.host)
    }
}

impl Source for HostSource<'_> {
    type Bytes = Vec<u8>;
    type Error = String;

    async fn fetch(&self, object: Object<'_>) -> Result<Vec<u8>, String> {
        let file = match object {
            Object::Manifest { .. } => "manifest",
            Object::Artefact { file, .. } => file,
        };
        http::get(&self.url(file), self.token, self.timeout_ms).await
    }

    async fn list_manifests(&self) -> Result<Option<Vec<ManifestRef>>, String> {
        Ok(None)
    }

    /// The host may switch snapshots between two requests: the manifest
    /// must be the run `current` named (checked before the artefacts are
    /// fetched).
    fn check_manifest(&self, current: &ManifestRef, manifest: &Manifest) -> Result<(), String> {
        if current.run_id != manifest.build.run_id {
            return Err(format!(
                "{} refreshed while its routing files were read (run {} vs {}); retry",
                self.host, current.run_id, manifest.build.run_id
            ));
        }
        Ok(())
    }
}

/// Loads the snapshot `host` serves: its `current` pointer, then, through
/// the core loader, the manifest it names and its artefacts.
async fn load_from_host(
    host: &str,
    token: Option<&str>,
    timeout_ms: Option<f64>,
) -> Result<Snapshot, JsError> {
    let source = HostSource {
        host,
        token,
        timeout_ms,
    };
    let current_url = source.url("current");
    let current_bytes = http::get(&current_url, token, timeout_ms)
        .await
        .map_err(js_err)?;
    let current =
        CurrentPointer::parse(&current_bytes).map_err(|e| js_err(format!("{current_url}: {e}")))?;
    let loaded = snapshot::load(&source, &current.manifest_ref(), 0)
        .await
        .map_err(|e| match e {
            LoadError::Source(msg) => js_err(msg),
            // Files are named by their endpoint, not their recorded URL.
            LoadError::Manifest { source: e, .. } => {
                js_err(format!("{}: {e}", source.url("manifest")))
            }
            LoadError::Artefact {
                file, source: e, ..
            } => js_err(format!("{}: {e}", source.url(file))),
            LoadError::Router { source: e, .. } => js_err(e),
        })?;
    Ok(Snapshot::new(
        loaded.manifest,
        Some(loaded.manifest_ref),
        loaded.routing,
        None,
    ))
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
        let num_dbs = inner.snapshot.borrow().router.num_dbs();
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
    result: Result<Vec<(u32, Vec<SearchResult>)>, HostFailure>,
}

enum HostFailure {
    /// 409 `stale_manifest`, or an answer for another manifest.
    Stale(String),
    Other(String),
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
    /// A host serves another manifest: its index and message.
    Stale(usize, String),
}

/// The first stale-manifest answer among `outcomes`.
fn stale_of(outcomes: &[HostOutcome]) -> Option<(usize, String)> {
    outcomes.iter().find_map(|o| match &o.result {
        Err(HostFailure::Stale(msg)) => Some((o.host, msg.clone())),
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

    async fn reload_from(&self, url: &str) -> Result<Snapshot, JsError> {
        let snapshot = load_from_host(url, self.token.as_deref(), self.timeout_ms).await?;
        *self.snapshot.borrow_mut() = snapshot.clone();
        Ok(snapshot)
    }

    async fn search(&self, query: Vec<f32>, call: SearchCall) -> Result<JsValue, JsError> {
        let started = now_ms();
        let mut retried = false;
        loop {
            let snapshot = self.snapshot.borrow().clone();
            match self.attempt(&snapshot, &query, &call).await? {
                Attempt::Done(searched) => {
                    let manifest_ref = snapshot.manifest_ref.as_ref().map(|r| r.url.clone());
                    let latency_ms = now_ms() - started;
                    return self.finish(searched, &call, manifest_ref, retried, latency_ms);
                }
                Attempt::Stale(host, msg) => {
                    if retried {
                        return Err(js_err(format!(
                            "{}: {msg} (still after reloading the snapshot once)",
                            self.hosts[host].url
                        )));
                    }
                    retried = true;
                    let url = self.hosts[host].url.clone();
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
        snapshot: &Snapshot,
        query: &[f32],
        call: &SearchCall,
    ) -> Result<Attempt, JsError> {
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
        let manifest_ref = snapshot.manifest_ref.as_ref().map(|r| r.url.as_str());
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
        manifest_ref: Option<&str>,
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
        manifest_ref: Option<&str>,
    ) -> HostOutcome {
        let url = format!("{}/v1/shards/search", self.hosts[host].url);
        let body = ShardsSearchRequest {
            query: query.to_vec(),
            top_k: call.top_k,
            shard_ids: shard_ids.clone(),
            manifest_ref: manifest_ref.map(str::to_string),
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
                })
                .await
            }
            Err(e) => Err(format!("POST {url}: the request could not be encoded: {e}")),
        };
        let latency_ms = now_ms() - started;
        let (status, result) = match resp {
            Err(e) => (None, Err(HostFailure::Other(e))),
            Ok(r) => {
                let asked = Asked {
                    url: &url,
                    shards: &shard_ids,
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
        manifest_ref: Option<String>,
        retried: bool,
        latency_ms: f64,
    ) -> Result<JsValue, JsError> {
        let Searched {
            route,
            outcomes,
            probing,
        } = searched;
        let failures: Vec<String> = outcomes
            .iter()
            .filter_map(|o| match &o.result {
                Err(HostFailure::Other(m) | HostFailure::Stale(m)) => {
                    Some(format!("host {}: {m}", self.hosts[o.host].url))
                }
                Ok(_) => None,
            })
            .collect();
        if !failures.is_empty() && !call.allow_partial {
            return Err(js_err(failures.join("; ")));
        }
        // Merge in route order, as the native reader does.
        let mut lists: Vec<(u32, Vec<SearchResult>)> = Vec::new();
        let mut reports = Vec::new();
        for o in outcomes {
            let error = match o.result {
                Ok(found) => {
                    lists.extend(found);
                    None
                }
                Err(HostFailure::Other(m) | HostFailure::Stale(m)) => Some(m),
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
                manifest_ref: manifest_ref.unwrap_or_default(),
                probing,
            },
            hosts: reports,
            partial: !failures.is_empty(),
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
    manifest_ref: Option<&'a str>,
    filter: Option<&'a Filter>,
}

/// Reads a host's answer: per-shard lists for exactly the shards asked,
/// for the pinned manifest, every hit marked with its shard and matching
/// the filter (a host that ignored it would otherwise go unnoticed).
fn answer(
    asked: &Asked<'_>,
    r: &http::Response,
) -> Result<Vec<(u32, Vec<SearchResult>)>, HostFailure> {
    let url = asked.url;
    let not_json = || {
        let text: String = String::from_utf8_lossy(&r.body).chars().take(200).collect();
        HostFailure::Other(format!("HTTP {} (not JSON): {text}", r.status))
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
        return Err(
            if r.status == 409 && code == shardvec_core::api::codes::STALE_MANIFEST {
                HostFailure::Stale(msg)
            } else {
                HostFailure::Other(msg)
            },
        );
    }
    let a: ShardsSearchResponse = serde_json::from_slice(&r.body).map_err(|e| {
        if e.is_data() {
            HostFailure::Other(format!("{url}: unexpected answer: {e}"))
        } else {
            not_json()
        }
    })?;
    if asked.manifest_ref.is_some_and(|m| m != a.manifest_ref) {
        return Err(HostFailure::Stale(format!(
            "answered for manifest {}",
            a.manifest_ref
        )));
    }
    let got: Vec<u32> = a.shards.iter().map(|s| s.shard_id.0).collect();
    if got.len() != asked.shards.len() || asked.shards.iter().any(|s| !got.contains(s)) {
        return Err(HostFailure::Other(format!(
            "asked for shards {:?}, answered {got:?}",
            asked.shards
        )));
    }
    let mut lists = Vec::with_capacity(a.shards.len());
    for s in a.shards {
        let sid = s.shard_id;
        let mut hits = s.results;
        for hit in &mut hits {
            match hit.shard_id {
                None => hit.shard_id = Some(sid),
                Some(other) if other != sid => {
                    return Err(HostFailure::Other(format!(
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
                return Err(HostFailure::Other(format!(
                    "{url}: hit {} of shard {sid} does not match the filter",
                    hit.id
                )));
            }
        }
        lists.push((sid.0, hits));
    }
    Ok(lists)
}
