//! # shardvec-host
//!
//! The host server: HTTP/JSON over an [`AsyncShardedVectorReader`] (axum
//! on tokio), as a library type, [`Host`], to embed or to run
//! (`shardvec serve`).
//!
//! ## Design
//!
//! A host serves one snapshot prefix, all of its shards or a
//! [`ShardSet`]. It answers two kinds of callers:
//!
//! - plain clients send `POST /v1/search`; the host routes, searches and
//!   merges, like `shardvec search --json`;
//! - edge workers route in WebAssembly themselves (from the routing files
//!   of `GET /v1/routing/*`), send `POST /v1/shards/search` only to the
//!   hosts holding the chosen shards, and merge the per-shard answers. Each
//!   such request pins the manifest the edge routed with; a host serving
//!   another manifest refuses it (409 `stale_manifest`), so an edge never
//!   merges answers of two snapshots: it reloads and retries.
//!
//! Endpoints (JSON unless said otherwise):
//!
//! | | |
//! |---|---|
//! | `GET /v1/snapshot` | info, shard details, shards served, manifest ref (also the `ETag`) |
//! | `GET /v1/routing/{manifest,current,centroids.npy,hyperplanes.npy}` | raw routing files, `ETag` / `If-None-Match` |
//! | `POST /v1/search` | `{query, top_k?, num_probes?, shard_ids?, routing_context?}` → merged results |
//! | `POST /v1/shards/search` | `{query, top_k, shard_ids, manifest_ref?}` → per-shard local top-k |
//! | `POST /v1/refresh` | re-read `_CURRENT`, swap the manifest if it changed |
//! | `GET /healthz` | health with manifest age and the last refresh (no token needed) |
//! | `GET /metrics` | Prometheus text ([`HostMetrics`]) |
//! | `GET /demo/` | the web demo and the wasm package, from [`HostOptions::demo_dir`] (no token needed) |
//!
//! Errors are `{"error": {"code", "message"}}` with a 4xx/5xx status
//! chosen by an exhaustive `match` on the reader error's
//! [`ErrorKind`](shardvec::ErrorKind) (so a new kind cannot silently
//! become a 500): the code is [`shardvec::Error::code`] or one of the
//! host's own
//! (`unauthorized`, `shard_not_served`, `top_k_too_large`, `bad_json`,
//! `body_too_large`, `timeout`, `not_found`).
//!
//! Limits ([`HostOptions`]): request body size, `top_k` cap, per-request
//! timeout, optional bearer token (SHA-256 digests compared in constant time). The query's
//! dimension and finiteness are checked by the reader. [`Host::serve`]
//! shuts down gracefully: in-flight requests finish.

mod api;
mod error;
mod prometheus;
mod server;
mod shard_set;

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use chrono::Utc;

pub use self::error::{Error, Result};
pub use self::prometheus::HostMetrics;
pub use self::shard_set::ShardSet;
use shardvec::AsyncShardedVectorReader;
pub use shardvec_core::api::RefreshRecord;

/// The default of [`HostOptions::max_probes`].
pub const DEFAULT_MAX_PROBES: u32 = 32;

/// Options of a host. Defaults: every shard, no token, 1 MiB bodies,
/// `top_k` ≤ 1 000, at most 32 shards searched by a `min_results` search,
/// 30 s per request (body included), 10 s to send a request head, 1 024
/// connections, 256 requests in flight, 30 s to shut down, no staleness
/// threshold, no periodic refresh, no demo.
/// `Debug` never shows the token.
#[derive(Clone)]
pub struct HostOptions {
    pub(crate) shards: ShardSet,
    pub(crate) token: Option<String>,
    pub(crate) max_body_bytes: usize,
    pub(crate) max_top_k: usize,
    pub(crate) max_probes: u32,
    pub(crate) request_timeout: Duration,
    pub(crate) header_read_timeout: Duration,
    pub(crate) max_connections: usize,
    pub(crate) max_in_flight: usize,
    pub(crate) shutdown_deadline: Duration,
    pub(crate) staleness: Option<Duration>,
    pub(crate) refresh_every: Option<Duration>,
    pub(crate) demo_dir: Option<PathBuf>,
}

impl std::fmt::Debug for HostOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostOptions")
            .field("shards", &self.shards)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_top_k", &self.max_top_k)
            .field("max_probes", &self.max_probes)
            .field("request_timeout", &self.request_timeout)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("max_connections", &self.max_connections)
            .field("max_in_flight", &self.max_in_flight)
            .field("shutdown_deadline", &self.shutdown_deadline)
            .field("staleness", &self.staleness)
            .field("refresh_every", &self.refresh_every)
            .field("demo_dir", &self.demo_dir)
            .finish()
    }
}

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions {
            shards: ShardSet::All,
            token: None,
            max_body_bytes: 1 << 20,
            max_top_k: shardvec_core::api::DEFAULT_HOST_MAX_TOP_K,
            max_probes: DEFAULT_MAX_PROBES,
            request_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(10),
            max_connections: 1024,
            max_in_flight: 256,
            shutdown_deadline: Duration::from_secs(30),
            staleness: None,
            refresh_every: None,
            demo_dir: None,
        }
    }
}

impl HostOptions {
    /// Default options.
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves only these shards (searches naming others get 404
    /// `shard_not_served`).
    pub fn shards(mut self, shards: ShardSet) -> Self {
        self.shards = shards;
        self
    }

    /// Requires `Authorization: Bearer <token>` on `/v1/*` and `/metrics`.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Largest request body (413 `body_too_large` beyond).
    pub fn max_body_bytes(mut self, n: usize) -> Self {
        self.max_body_bytes = n;
        self
    }

    /// Largest `top_k` (400 `top_k_too_large` beyond).
    pub fn max_top_k(mut self, n: usize) -> Self {
        self.max_top_k = n;
        self
    }

    /// The most shards a search with `min_results` may search: a request's
    /// `max_probes` is lowered to it (default 32), so one request cannot
    /// make the host open every shard of a large snapshot.
    pub fn max_probes(mut self, n: u32) -> Self {
        self.max_probes = n.max(1);
        self
    }

    /// Time limit of one request, from its head to its answer: reading
    /// the body, the search or refresh (504 `timeout` beyond).
    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.request_timeout = d;
        self
    }

    /// Time a connection has to send a complete request head (at the
    /// start, and between keep-alive requests); closed beyond.
    pub fn header_read_timeout(mut self, d: Duration) -> Self {
        self.header_read_timeout = d;
        self
    }

    /// Most connections open at once; a new one past it is closed.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// Most requests handled at once (`/healthz` aside); past it, 503
    /// `overloaded` with `Retry-After: 1`, at once.
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n.max(1);
        self
    }

    /// After the shutdown signal, how long requests in flight may take
    /// to finish; connections still open then are dropped.
    pub fn shutdown_deadline(mut self, d: Duration) -> Self {
        self.shutdown_deadline = d;
        self
    }

    /// `/healthz` reports `degraded` when the manifest is older than this.
    pub fn staleness(mut self, d: Duration) -> Self {
        self.staleness = Some(d);
        self
    }

    /// Refreshes every `d` in the background.
    pub fn refresh_every(mut self, d: Duration) -> Self {
        self.refresh_every = Some(d);
        self
    }

    /// Serves this folder (the web demo with its `pkg/`) at `/demo/`.
    pub fn demo_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.demo_dir = Some(dir.into());
        self
    }
}

/// A host server over one reader. Build the reader with
/// `ReaderOptions::metrics(host_metrics.clone())` so `/metrics` sees its
/// events.
#[derive(Debug, Clone)]
pub struct Host {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    reader: AsyncShardedVectorReader,
    options: HostOptions,
    /// SHA-256 of the bearer token, if one is required.
    token_digest: Option<[u8; 32]>,
    metrics: Arc<HostMetrics>,
    last_refresh: Mutex<Option<RefreshRecord>>,
    /// Requests in flight ([`HostOptions::max_in_flight`]).
    in_flight: Arc<tokio::sync::Semaphore>,
}

impl Host {
    /// A host serving `reader`. Fails if the shard set names shards the
    /// snapshot does not have.
    pub fn new(
        reader: AsyncShardedVectorReader,
        options: HostOptions,
        metrics: Arc<HostMetrics>,
    ) -> Result<Host> {
        let num_dbs = reader.snapshot_info()?.num_dbs;
        if let Some(max) = options.shards.max().filter(|&m| m >= num_dbs) {
            return Err(Error::InvalidOption {
                option: "shards",
                reason: format!(
                    "names shard {max}, but the snapshot has {num_dbs} shards (0..{num_dbs})"
                ),
            });
        }
        if options.token.as_deref().is_some_and(str::is_empty) {
            return Err(Error::InvalidOption {
                option: "token",
                reason: "the bearer token is empty".into(),
            });
        }
        Ok(Host {
            shared: Arc::new(Shared {
                reader,
                token_digest: options.token.as_deref().map(api::token_digest),
                in_flight: Arc::new(tokio::sync::Semaphore::new(options.max_in_flight)),
                options,
                metrics,
                last_refresh: Mutex::new(None),
            }),
        })
    }

    /// The reader served.
    pub fn reader(&self) -> &AsyncShardedVectorReader {
        &self.shared.reader
    }

    /// The axum router of every endpoint (for embedding in another server).
    pub fn router(&self) -> Router {
        api::router(self.shared.clone())
    }

    /// Refreshes the reader and records the outcome for `/healthz`.
    pub async fn refresh(&self) -> shardvec::Result<bool> {
        self.shared.refresh().await
    }

    /// Serves on `listener` until `shutdown` completes, then stops
    /// accepting connections and waits for in-flight requests, at most
    /// [`HostOptions::shutdown_deadline`]. Slow clients meet the limits of
    /// the `server` module (header-read timeout, connection cap). Runs the
    /// periodic refresh, if configured, meanwhile.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let refresher = self.shared.options.refresh_every.map(|every| {
            let shared = self.shared.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                // A refresh slower than the period (a slow store) delays the
                // next one; missed ticks are not fired back to back.
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    if let Err(e) = shared.refresh().await {
                        tracing::warn!(error = %e, "periodic refresh failed; serving the old snapshot");
                    }
                }
            })
        });
        let limits = server::Limits {
            header_read_timeout: self.shared.options.header_read_timeout,
            max_connections: self.shared.options.max_connections,
            shutdown_deadline: self.shared.options.shutdown_deadline,
        };
        let result = server::serve(listener, self.router(), limits, shutdown).await;
        if let Some(task) = refresher {
            task.abort();
        }
        result
    }
}

impl Shared {
    async fn refresh(&self) -> shardvec::Result<bool> {
        let limit = self.options.request_timeout;
        let result = match tokio::time::timeout(limit, self.reader.refresh()).await {
            Ok(r) => r,
            Err(_) => Err(shardvec::Error::Timeout {
                what: "refresh",
                limit,
            }),
        };
        if let Err(e) = &result {
            tracing::warn!(code = e.code(), error = %api::ErrorChain(e), "refresh failed; the snapshot served stays");
        }
        // `/healthz` needs no token: the record says what kind of failure,
        // never the bucket, prefix or URL (those are in the log).
        let record = RefreshRecord {
            at: Utc::now(),
            changed: *result.as_ref().unwrap_or(&false),
            error: result.as_ref().err().map(|e| e.code().to_string()),
        };
        if let Ok(mut last) = self.last_refresh.lock() {
            *last = Some(record);
        }
        result
    }
}

/// Resolves on SIGTERM or Ctrl-C (for [`Host::serve`]).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::HostOptions;

    #[test]
    fn debug_never_shows_the_token() {
        let shown = format!("{:?}", HostOptions::new().token("s3cr3t-token"));
        assert!(!shown.contains("s3cr3t-token"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }
}
