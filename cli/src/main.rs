//! The `shardvec` command-line tool.
//!
//! Read side (`read.rs`): `info`, `shards`, `route`, `search`.
//! Benchmarks: `bench` and `synth` (`bench.rs`).
//! Operator side: `build` (`build.rs`), `history`, `rollback` and `verify`
//! (`ops.rs`), `demo` (`demo.rs`), the one-command tour, and `serve`
//! (`serve.rs`), the host server.

#[path = "cmd/bench.rs"]
mod bench;
#[path = "cmd/build.rs"]
mod build;
#[path = "cmd/demo.rs"]
mod demo;
#[path = "cmd/ops.rs"]
mod ops;
#[path = "cmd/progress.rs"]
mod progress;
#[path = "cmd/read.rs"]
mod read;
#[path = "cmd/serve.rs"]
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use shardvec::{AsyncShardedVectorReader, ReaderOptions, StoreOptions};

/// Build, search and operate sharded vector snapshots on object storage.
///
/// PREFIX is a snapshot URL (s3://bucket/prefix, gs://…, az://…,
/// file:///path) or a local folder. S3 credentials, region and endpoint come
/// from the standard AWS_* environment variables or --endpoint.
#[derive(Parser)]
#[command(name = "shardvec", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the snapshot is.
#[derive(Args)]
struct Store {
    /// Snapshot prefix (URL or local folder).
    #[arg(long)]
    prefix: String,
    /// S3-compatible endpoint, e.g. http://127.0.0.1:9000 (allows plain HTTP).
    #[arg(long)]
    endpoint: Option<String>,
    /// Retries of a failed store request (connection errors, timeouts, 5xx),
    /// with exponential backoff from 100 ms.
    #[arg(long, default_value_t = 10)]
    retries: usize,
    /// Give up retrying a store request after this many seconds.
    #[arg(long, default_value_t = 180)]
    retry_timeout: u64,
}

impl Store {
    fn options(&self) -> StoreOptions {
        let mut store = StoreOptions::new().retry(
            self.retries,
            std::time::Duration::from_secs(self.retry_timeout),
        );
        if let Some(e) = &self.endpoint {
            store = store.endpoint(e.clone()).allow_http(true);
        }
        store
    }
}

/// How sqlite-vec shards find their top-k.
#[derive(Clone, Copy, ValueEnum)]
enum SqliteScan {
    /// Vectors held in memory and scanned with SIMD kernels (dim x 4 bytes
    /// per vector of each open shard).
    Memory,
    /// Int8 codes (dim bytes per vector) select the candidates, rescored
    /// from the memory-mapped file: the same answers, fewer bytes scanned
    /// and held.
    Quantized,
    /// sqlite-vec's own KNN query over the file; no extra memory.
    Extension,
}

impl SqliteScan {
    /// `opts` with sqlite-vec shards searched this way.
    fn apply(self, opts: ReaderOptions) -> ReaderOptions {
        use shardvec::backend::sqlite_vec::{SqliteVecBackend, SqliteVecScan};
        let scan = match self {
            SqliteScan::Memory => SqliteVecScan::InMemory,
            SqliteScan::Quantized => SqliteVecScan::Quantized,
            SqliteScan::Extension => SqliteVecScan::Extension,
        };
        opts.shard_backend(SqliteVecBackend::new(scan))
    }
}

#[derive(Args)]
struct Common {
    #[command(flatten)]
    store: Store,
    /// Local shard cache (default: ~/.cache/shardvec).
    #[arg(long)]
    local_root: Option<PathBuf>,
    /// Print one JSON document instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Snapshot facts: run, shards, dimension, metric, strategy, vectors.
    Info(Common),
    /// Every shard 0..num_dbs with its URL, vector count and checkpoint.
    Shards(Common),
    /// The shards a query is routed to.
    Route(read::RouteArgs),
    /// Nearest neighbours of a query.
    Search(read::SearchArgs),
    /// Build a snapshot from .npy, .fvecs or JSON Lines input and publish it.
    Build(build::BuildArgs),
    /// Every manifest published under a prefix, newest first.
    History {
        #[command(flatten)]
        store: Store,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Point _CURRENT back at an older manifest.
    Rollback {
        #[command(flatten)]
        store: Store,
        /// Run id or manifest URL to make current.
        #[arg(long)]
        to: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Recall@k of routed search against exact brute force, per num_probes.
    Verify(ops::VerifyArgs),
    /// Time a snapshot: cold open and first query, warm p50/p99 and
    /// throughput from concurrent callers, recall, bytes read, peak RSS.
    Bench(bench::BenchArgs),
    /// Write seeded clustered vectors and queries (.npy) for benchmarks.
    Synth(bench::SynthArgs),
    /// Serve a snapshot over HTTP/JSON: routed search for clients,
    /// per-shard search and routing files for edge workers, health,
    /// metrics and the web demo.
    Serve(serve::ServeArgs),
    /// Generate a clustered dataset, build a local snapshot, search it and
    /// show routing decisions and recall.
    Demo(demo::DemoArgs),
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn default_root() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("shardvec")
}

async fn open(c: &Common) -> Result<AsyncShardedVectorReader, BoxError> {
    let root = c.local_root.clone().unwrap_or_else(default_root);
    Ok(AsyncShardedVectorReader::open(
        &c.store.prefix,
        root,
        ReaderOptions::new().store_options(c.store.options()),
    )
    .await?)
}

fn print_json(v: &impl serde::Serialize) -> Result<(), BoxError> {
    println!("{}", serde_json::to_string(v)?);
    Ok(())
}

async fn run(cli: Cli) -> Result<(), BoxError> {
    match cli.command {
        Command::Info(c) => read::info(&c).await,
        Command::Shards(c) => read::shards(&c).await,
        Command::Route(a) => read::route(&a).await,
        Command::Search(a) => read::search(&a).await,
        Command::Build(a) => build::run(&a).await,
        Command::History { store, json } => ops::history(&store, json).await,
        Command::Rollback { store, to, json } => ops::rollback(&store, &to, json).await,
        Command::Verify(a) => ops::verify(&a).await,
        Command::Demo(a) => demo::run(&a).await,
        Command::Serve(a) => serve::run(&a).await,
        Command::Bench(a) => bench::run(&a).await,
        Command::Synth(a) => bench::synth(&a),
    }
}

/// `shardvec --version`: the version and the cargo features compiled in
/// (scripts/demo.sh reads it to tell a full build from a default one).
fn long_version() -> String {
    let features = [
        ("sqlite-vec", true),
        ("lancedb", cfg!(feature = "lancedb")),
        ("aws", cfg!(feature = "aws")),
        ("gcp", cfg!(feature = "gcp")),
        ("azure", cfg!(feature = "azure")),
    ];
    let on: Vec<&str> = features.iter().filter(|f| f.1).map(|f| f.0).collect();
    format!(
        "{} (features: {})",
        env!("CARGO_PKG_VERSION"),
        on.join(", ")
    )
}

fn main() -> ExitCode {
    // Leaked once: clap takes `&'static str` without its `string` feature.
    let version: &'static str = Box::leak(long_version().into_boxed_str());
    let matches = Cli::command().long_version(version).get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("shardvec: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shardvec: {e}");
            ExitCode::FAILURE
        }
    }
}
