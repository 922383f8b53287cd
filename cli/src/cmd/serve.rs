//! `shardvec serve`: the host server (see `shardvec_host`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use shardvec::{AsyncShardedVectorReader, ReaderOptions};
use shardvec_host::{shutdown_signal, Host, HostMetrics, HostOptions, ShardSet};

use crate::{default_root, BoxError, SqliteScan, Store};

#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    store: Store,
    /// Address to listen on (port 0 picks a free port; the address bound is
    /// printed as `listening on http://ADDR`).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Shards this host serves, e.g. 0-7,12 (default: all).
    #[arg(long)]
    shards: Option<ShardSet>,
    /// File holding a bearer token required on /v1/* and /metrics.
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Local shard cache (default: ~/.cache/shardvec).
    #[arg(long)]
    local_root: Option<PathBuf>,
    /// How sqlite-vec shards find their top-k.
    #[arg(long, value_enum, default_value_t = SqliteScan::Memory)]
    sqlite_scan: SqliteScan,
    /// Open every served shard before listening.
    #[arg(long)]
    preload: bool,
    /// Most shards held open at once (least recently used closed first);
    /// default: every shard searched stays open.
    #[arg(long)]
    max_open_shards: Option<std::num::NonZeroUsize>,
    /// The most shards a search with min_results may search.
    #[arg(long, default_value_t = shardvec_host::DEFAULT_MAX_PROBES)]
    max_probes: u32,
    /// Largest top_k accepted.
    #[arg(long, default_value_t = 1000)]
    max_top_k: usize,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = 1 << 20)]
    max_body_bytes: usize,
    /// Time limit of one request (body, search or refresh), in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    timeout_ms: u64,
    /// Time a connection has to send a request head, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    header_timeout_ms: u64,
    /// Most connections open at once (new ones past it are closed).
    #[arg(long, default_value_t = 1024)]
    max_connections: usize,
    /// Most requests in flight (503 overloaded, Retry-After, past it).
    #[arg(long, default_value_t = 256)]
    max_in_flight: usize,
    /// After SIGTERM, how long requests in flight may take, in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    shutdown_deadline_ms: u64,
    /// /healthz reports "degraded" when the manifest is older (seconds).
    #[arg(long)]
    staleness_secs: Option<u64>,
    /// Re-read _CURRENT every this many seconds.
    #[arg(long)]
    refresh_secs: Option<u64>,
    /// On refresh, open the new snapshot's shards that are open now before
    /// switching to it; a refresh whose shards fail to open (missing
    /// objects, full disk) is refused and the current snapshot kept.
    #[arg(long)]
    prefetch_on_refresh: bool,
    /// Serve this folder (web-demo/, with its pkg/) at /demo/.
    #[arg(long)]
    demo_dir: Option<PathBuf>,
}

pub async fn run(a: &ServeArgs) -> Result<(), BoxError> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let metrics = Arc::new(HostMetrics::default());
    let root = a.local_root.clone().unwrap_or_else(default_root);
    let mut reader_opts = ReaderOptions::new()
        .store_options(a.store.options())
        .prefetch_on_refresh(a.prefetch_on_refresh)
        .metrics(metrics.clone());
    if let Some(n) = a.max_open_shards {
        reader_opts = reader_opts.max_cached_shards(n);
    }
    let reader =
        AsyncShardedVectorReader::open(&a.store.prefix, root, a.sqlite_scan.apply(reader_opts))
            .await?;
    let mut opts = HostOptions::new()
        .max_top_k(a.max_top_k)
        .max_probes(a.max_probes)
        .max_body_bytes(a.max_body_bytes)
        .request_timeout(Duration::from_millis(a.timeout_ms))
        .header_read_timeout(Duration::from_millis(a.header_timeout_ms))
        .max_connections(a.max_connections)
        .max_in_flight(a.max_in_flight)
        .shutdown_deadline(Duration::from_millis(a.shutdown_deadline_ms));
    if let Some(s) = &a.shards {
        opts = opts.shards(s.clone());
    }
    if let Some(path) = &a.token_file {
        let token = std::fs::read_to_string(path)
            .map_err(|e| format!("--token-file {}: {e}", path.display()))?;
        opts = opts.token(token.trim());
    }
    if let Some(s) = a.staleness_secs {
        opts = opts.staleness(Duration::from_secs(s));
    }
    if let Some(s) = a.refresh_secs {
        opts = opts.refresh_every(Duration::from_secs(s.max(1)));
    }
    if let Some(d) = &a.demo_dir {
        opts = opts.demo_dir(d);
    }
    let host = Host::new(reader, opts, metrics)?;
    if a.preload {
        let num_dbs = host.reader().snapshot_info()?.num_dbs;
        let served = a.shards.clone().unwrap_or_default().ids(num_dbs);
        host.reader().open_shards(&served).await?;
    }
    let listener = tokio::net::TcpListener::bind(a.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", a.listen))?;
    let addr = listener.local_addr()?;
    println!(
        "listening on http://{addr} (shards {})",
        a.shards.clone().unwrap_or_default()
    );
    host.serve(listener, shutdown_signal()).await?;
    println!("shut down");
    Ok(())
}
