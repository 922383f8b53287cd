//! The host's Prometheus metrics: the reader's [`Metrics`] events plus
//! HTTP request counts, encoded as Prometheus text by `prometheus-client`.

use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use shardvec_core::{ManifestRef, ShardId};

use shardvec::backend::BackendKind;
use shardvec::metrics::{Metrics, SearchEvent};
use shardvec::Error;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BackendLabel {
    backend: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabel {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    endpoint: String,
    status: u16,
}

/// Metrics of one host, shared by its reader (as a [`Metrics`] hook) and
/// its HTTP layer. Series (all prefixed `shardvec_`):
///
/// - `searches_total`, `search_latency_seconds` (histogram, 0.25 ms to ~8 s),
///   `search_results_total`: searches the reader finished, routed or
///   per-shard;
/// - `shard_loads_total{backend}`, `shard_load_seconds_total`: shard opens
///   (downloads included);
/// - `shard_cache_lookups_total{result="hit"|"miss"}`: open-handle cache;
/// - `errors_total{kind}`: reader errors by [`Error::code`];
/// - `refreshes_total`: refreshes that swapped in a new manifest;
/// - `http_requests_total{endpoint,status}`: every HTTP answer.
#[derive(Debug)]
pub struct HostMetrics {
    registry: Registry,
    searches: Counter,
    search_results: Counter,
    latency: Histogram,
    shard_loads: Family<BackendLabel, Counter>,
    shard_load_seconds: Counter<f64, std::sync::atomic::AtomicU64>,
    cache: Family<CacheLabel, Counter>,
    errors: Family<KindLabel, Counter>,
    refreshes: Counter,
    requests: Family<RequestLabels, Counter>,
}

impl Default for HostMetrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("shardvec");
        let searches = Counter::default();
        let search_results = Counter::default();
        let latency = Histogram::new(exponential_buckets(0.000_25, 2.0, 16));
        let shard_loads = Family::default();
        let shard_load_seconds = Counter::default();
        let cache = Family::default();
        let errors = Family::default();
        let refreshes = Counter::default();
        let requests = Family::default();
        registry.register("searches", "Searches finished", searches.clone());
        registry.register(
            "search_results",
            "Results returned by searches",
            search_results.clone(),
        );
        registry.register(
            "search_latency_seconds",
            "Search wall time",
            latency.clone(),
        );
        registry.register("shard_loads", "Shards opened", shard_loads.clone());
        registry.register(
            "shard_load_seconds",
            "Time spent opening shards",
            shard_load_seconds.clone(),
        );
        registry.register(
            "shard_cache_lookups",
            "Open-shard cache lookups",
            cache.clone(),
        );
        registry.register("errors", "Reader errors by kind", errors.clone());
        registry.register(
            "refreshes",
            "Refreshes that swapped the manifest",
            refreshes.clone(),
        );
        registry.register("http_requests", "HTTP answers", requests.clone());
        HostMetrics {
            registry,
            searches,
            search_results,
            latency,
            shard_loads,
            shard_load_seconds,
            cache,
            errors,
            refreshes,
            requests,
        }
    }
}

impl HostMetrics {
    /// Counts one HTTP answer.
    pub fn request(&self, endpoint: &str, status: u16) {
        self.requests
            .get_or_create(&RequestLabels {
                endpoint: endpoint.to_string(),
                status,
            })
            .inc();
    }

    /// The Prometheus text exposition of every series.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

impl Metrics for HostMetrics {
    fn search(&self, event: &SearchEvent) {
        self.searches.inc();
        self.search_results.inc_by(event.num_results as u64);
        self.latency.observe(event.latency.as_secs_f64());
    }

    fn error(&self, error: &Error) {
        self.errors
            .get_or_create(&KindLabel { kind: error.code() })
            .inc();
    }

    fn shard_cache(&self, _shard: ShardId, hit: bool) {
        let result = if hit { "hit" } else { "miss" };
        self.cache.get_or_create(&CacheLabel { result }).inc();
    }

    fn shard_opened(&self, _shard: ShardId, backend: BackendKind, elapsed: Duration) {
        self.shard_loads
            .get_or_create(&BackendLabel {
                backend: backend.as_str(),
            })
            .inc();
        self.shard_load_seconds.inc_by(elapsed.as_secs_f64());
    }

    fn refreshed(&self, _manifest: &ManifestRef) {
        self.refreshes.inc();
    }
}
