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

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, Promise, Reflect};
use serde::Serialize;
use serde_json::{json, Value as Json};
use shardvec_core::api::{ErrorBody, SearchResponse, ShardsSearchRequest, ShardsSearchResponse};
use shardvec_core::snapshot::{self, LoadError, Object, Source};
use shardvec_core::{merge, CurrentPointer, Manifest, ManifestRef, SearchResult, ShardId};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

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
  results: SearchHit[];
  route: number[];
  num_shards_queried: number;
  manifest_ref: string;
  /** With `minResults`: how far the search probed and why it stopped. */
  probing?: { min_results: number; found: number; shards_probed: number; stop: "enough" | "probe_limit" | "all_shards" };
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
    /// asks the hosts of the routed shards concurrently, merges. Resolves
    /// to an `EdgeSearchResult`; rejects with an `Error` naming the host
    /// that failed (unless `allowPartial`) or the input at fault.
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
}

impl SearchCall {
    fn from_js(inner: &Inner, v: &JsValue) -> Result<SearchCall, JsError> {
        let num_dbs = inner.snapshot.borrow().router.num_dbs();
        let opts = Options::from_js(v, num_dbs)?;
        let mut top_k = 10;
        let mut allow_partial = inner.allow_partial;
        if !absent(v) {
            let k = prop(v, "topK", "top_k");
            if !absent(&k) {
                top_k = k
                    .as_f64()
                    .filter(|k| k.fract() == 0.0 && (1.0..=4096.0).contains(k))
                    .ok_or_else(|| {
                        js_err(format!(
                            "topK must be an integer in 1..=4096, got {}",
                            js_display(&k)
                        ))
                    })? as usize;
            }
            if let Some(p) = opt_bool(prop(v, "allowPartial", "allow_partial"), "allowPartial")? {
                allow_partial = p;
            }
        }
        Ok(SearchCall {
            opts,
            top_k,
            allow_partial,
        })
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
        let mut groups: Vec<HostShards> = Vec::new();
        for sid in route.iter().copied() {
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
        Ok((route.into_iter().map(|s| s.0).collect(), groups))
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
            let (route, groups) = self.plan(&snapshot, &query, &call.opts).map_err(js_err)?;
            let manifest_ref = snapshot.manifest_ref.as_ref().map(|r| r.url.clone());
            let calls = groups.into_iter().map(|(host, ids)| {
                self.ask(host, ids, &query, call.top_k, manifest_ref.as_deref())
            });
            let outcomes = futures::future::join_all(calls).await;
            let stale = outcomes.iter().find_map(|o| match &o.result {
                Err(HostFailure::Stale(msg)) => Some((o.host, msg.clone())),
                _ => None,
            });
            if let Some((host, msg)) = stale {
                if retried {
                    return Err(js_err(format!(
                        "{}: {msg} (still after reloading the snapshot once)",
                        self.hosts[host].url
                    )));
                }
                retried = true;
                let url = self.hosts[host].url.clone();
                self.reload_from(&url).await?;
                continue;
            }
            let latency_ms = now_ms() - started;
            return self.finish(route, outcomes, &call, manifest_ref, retried, latency_ms);
        }
    }

    /// Posts one host's shards.
    async fn ask(
        &self,
        host: usize,
        shard_ids: Vec<u32>,
        query: &[f32],
        top_k: usize,
        manifest_ref: Option<&str>,
    ) -> HostOutcome {
        let url = format!("{}/v1/shards/search", self.hosts[host].url);
        let body = ShardsSearchRequest {
            query: query.to_vec(),
            top_k,
            shard_ids: shard_ids.clone(),
            manifest_ref: manifest_ref.map(str::to_string),
            filter: None,
        };
        let body = serde_json::to_string(&body).unwrap_or_default();
        let started = now_ms();
        let resp = http::send(&http::Request {
            method: "POST",
            url: &url,
            json: Some(body),
            token: self.token.as_deref(),
            timeout_ms: self.timeout_ms,
        })
        .await;
        let latency_ms = now_ms() - started;
        let (status, result) = match resp {
            Err(e) => (None, Err(HostFailure::Other(e))),
            Ok(r) => (Some(r.status), answer(&url, &r, &shard_ids, manifest_ref)),
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
        route: Vec<u32>,
        outcomes: Vec<HostOutcome>,
        call: &SearchCall,
        manifest_ref: Option<String>,
        retried: bool,
        latency_ms: f64,
    ) -> Result<JsValue, JsError> {
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
                probing: None,
            },
            hosts: reports,
            partial: !failures.is_empty(),
            retried,
        };
        let value = serde_json::to_value(&answer).map_err(js_err)?;
        Ok(to_js(&value))
    }
}

/// Reads a host's answer: per-shard lists for exactly the shards asked,
/// for the pinned manifest.
fn answer(
    url: &str,
    r: &http::Response,
    asked: &[u32],
    manifest_ref: Option<&str>,
) -> Result<Vec<(u32, Vec<SearchResult>)>, HostFailure> {
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
    if manifest_ref.is_some_and(|m| m != a.manifest_ref) {
        return Err(HostFailure::Stale(format!(
            "answered for manifest {}",
            a.manifest_ref
        )));
    }
    let got: Vec<u32> = a.shards.iter().map(|s| s.shard_id.0).collect();
    if got.len() != asked.len() || asked.iter().any(|s| !got.contains(s)) {
        return Err(HostFailure::Other(format!(
            "asked for shards {asked:?}, answered {got:?}"
        )));
    }
    Ok(a.shards
        .into_iter()
        .map(|s| (s.shard_id.0, s.results))
        .collect())
}
