//! The metrics hook: a trait the reader calls on every search, shard open,
//! shard-cache lookup, refresh and error. Every method has an empty default,
//! so an implementation overrides only what it records (Prometheus
//! counters, StatsD, logs). `tracing` spans cover the same events for
//! tracing subscribers.

use std::time::Duration;

use shardvec_core::{ManifestRef, ShardId};

use crate::backend::BackendKind;
use crate::error::Error;

/// One finished search.
#[derive(Debug, Clone)]
pub struct SearchEvent {
    /// Requested results.
    pub top_k: usize,
    /// Shards searched.
    pub num_shards_queried: usize,
    /// Results returned.
    pub num_results: usize,
    /// Wall time.
    pub latency: Duration,
}

/// Receives reader events. Implementations must be cheap and must not
/// block: they run on the search path.
pub trait Metrics: Send + Sync + std::fmt::Debug {
    /// A search finished successfully.
    fn search(&self, _event: &SearchEvent) {}
    /// A search or refresh failed.
    fn error(&self, _error: &Error) {}
    /// A shard handle was looked up: `hit` when it was already open.
    fn shard_cache(&self, _shard: ShardId, _hit: bool) {}
    /// A shard was opened (downloaded if needed) in `elapsed`.
    fn shard_opened(&self, _shard: ShardId, _backend: BackendKind, _elapsed: Duration) {}
    /// A refresh swapped in a new manifest.
    fn refreshed(&self, _manifest: &ManifestRef) {}
}
