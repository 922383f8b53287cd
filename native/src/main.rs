//! The `shardvec` command-line tool (read side): `info`, `shards`, `route`
//! and `search` against a snapshot prefix.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use shardvec::{AsyncShardedVectorReader, ReaderOptions, SearchOptions, StoreOptions};
use shardvec_core::npy::Matrix;
use shardvec_core::{RoutingContext, ShardId};

/// Search and inspect sharded vector snapshots on object storage.
///
/// PREFIX is a snapshot URL (s3://bucket/prefix, gs://…, az://…,
/// file:///path) or a local folder. S3 credentials, region and endpoint come
/// from the standard AWS_* environment variables or the options below.
#[derive(Parser)]
#[command(name = "shardvec", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct Common {
    /// Snapshot prefix (URL or local folder).
    #[arg(long)]
    prefix: String,
    /// Local shard cache (default: ~/.cache/shardvec).
    #[arg(long)]
    local_root: Option<PathBuf>,
    /// Print one JSON document instead of a table.
    #[arg(long)]
    json: bool,
    /// S3-compatible endpoint, e.g. http://127.0.0.1:9000 (allows plain HTTP).
    #[arg(long)]
    endpoint: Option<String>,
}

#[derive(Args)]
struct Routing {
    /// Shards to probe (CLUSTER, LSH); default: the manifest's num_probes.
    #[arg(long)]
    num_probes: Option<u32>,
    /// Explicit shard ids, comma-separated (override routing).
    #[arg(long, value_delimiter = ',')]
    shard_ids: Option<Vec<u32>>,
    /// CEL routing context, a JSON object such as {"tenant": "acme"}.
    #[arg(long)]
    routing_context: Option<String>,
}

#[derive(Args)]
struct Query {
    /// Query vector as a JSON array.
    #[arg(long, conflicts_with = "query_file", allow_hyphen_values = true)]
    query: Option<String>,
    /// float32 .npy file [q, dim]: every row is a query.
    #[arg(long)]
    query_file: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Snapshot facts: run, shards, dimension, metric, strategy, vectors.
    Info(Common),
    /// Every shard 0..num_dbs with its URL, vector count and checkpoint.
    Shards(Common),
    /// The shards a query is routed to.
    Route {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        query: Query,
        #[command(flatten)]
        routing: Routing,
        /// Also say why: distances to centroids, LSH bits and buckets, the
        /// CEL value (JSON).
        #[arg(long)]
        explain: bool,
    },
    /// Nearest neighbours of a query.
    Search {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        query: Query,
        #[command(flatten)]
        routing: Routing,
        /// Number of results.
        #[arg(long, default_value_t = 10)]
        top_k: usize,
    },
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
    let mut store = StoreOptions::new();
    if let Some(e) = &c.endpoint {
        store = store.endpoint(e.clone()).allow_http(true);
    }
    let root = c.local_root.clone().unwrap_or_else(default_root);
    Ok(
        AsyncShardedVectorReader::open(&c.prefix, root, ReaderOptions::new().store_options(store))
            .await?,
    )
}

fn queries(q: &Query) -> Result<Vec<Vec<f32>>, BoxError> {
    match (&q.query, &q.query_file) {
        (Some(json), _) => {
            let v: Vec<f32> = serde_json::from_str(json).map_err(|e| format!("--query: {e}"))?;
            Ok(vec![v])
        }
        (None, Some(path)) => {
            let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let m = Matrix::from_npy(&bytes, &path.display().to_string())?;
            Ok(m.iter_rows().map(<[f32]>::to_vec).collect())
        }
        (None, None) => Err("give --query or --query-file".into()),
    }
}

fn search_options(r: &Routing) -> Result<SearchOptions, BoxError> {
    let mut o = SearchOptions::new();
    o.num_probes = r.num_probes;
    o.shard_ids = r
        .shard_ids
        .clone()
        .map(|v| v.into_iter().map(ShardId).collect());
    if let Some(s) = &r.routing_context {
        let v: serde_json::Value =
            serde_json::from_str(s).map_err(|e| format!("--routing-context: {e}"))?;
        o.routing_context = Some(RoutingContext::from_json(&v)?);
    }
    Ok(o)
}

fn print_json(v: &impl serde::Serialize) -> Result<(), BoxError> {
    println!("{}", serde_json::to_string(v)?);
    Ok(())
}

async fn run(cli: Cli) -> Result<(), BoxError> {
    match cli.command {
        Command::Info(c) => {
            let r = open(&c).await?;
            let info = r.snapshot_info()?;
            if c.json {
                print_json(&info)?;
            } else {
                println!("run_id         {}", info.run_id);
                println!("manifest       {}", info.manifest_ref);
                println!("shards         {}", info.num_dbs);
                println!("dimension      {}", info.dim);
                println!("metric         {}", info.metric);
                println!("sharding       {}", info.sharding);
                println!("vectors        {}", info.total_vectors);
            }
        }
        Command::Shards(c) => {
            let r = open(&c).await?;
            let shards = r.shard_details()?;
            if c.json {
                print_json(&shards)?;
            } else {
                println!(
                    "{:>6}  {:>9}  {:<34}  url",
                    "db_id", "vectors", "checkpoint"
                );
                for s in shards {
                    println!(
                        "{:>6}  {:>9}  {:<34}  {}",
                        s.db_id,
                        s.vector_count,
                        s.checkpoint_id.as_deref().unwrap_or("-"),
                        s.db_url.as_deref().unwrap_or("-")
                    );
                }
            }
        }
        Command::Route {
            common,
            query,
            routing,
            explain,
        } => {
            let r = open(&common).await?;
            let opts = search_options(&routing)?;
            for q in queries(&query)? {
                if explain {
                    print_json(&r.explain(&q, &opts)?)?;
                    continue;
                }
                let shards = r.route(&q, &opts)?;
                if common.json {
                    print_json(&serde_json::json!({ "shards": shards }))?;
                } else {
                    let list: Vec<String> = shards.iter().map(ToString::to_string).collect();
                    println!("shards {}", list.join(", "));
                }
            }
        }
        Command::Search {
            common,
            query,
            routing,
            top_k,
        } => {
            let r = open(&common).await?;
            let opts = search_options(&routing)?;
            for q in queries(&query)? {
                let resp = r.search(&q, top_k, &opts).await?;
                if common.json {
                    print_json(&serde_json::json!({
                        "results": resp.results,
                        "num_shards_queried": resp.num_shards_queried,
                        "latency_ms": resp.latency.as_secs_f64() * 1000.0,
                        "route": resp.route,
                    }))?;
                } else {
                    println!(
                        "{} results from {} shards in {:.2} ms",
                        resp.results.len(),
                        resp.num_shards_queried,
                        resp.latency.as_secs_f64() * 1000.0
                    );
                    println!("{:>4}  {:<16}  {:>12}  payload", "rank", "id", "score");
                    for (i, hit) in resp.results.iter().enumerate() {
                        let payload = hit
                            .payload
                            .as_ref()
                            .map(ToString::to_string)
                            .unwrap_or_default();
                        println!(
                            "{:>4}  {:<16}  {:>12.6}  {}",
                            i + 1,
                            hit.id.to_string(),
                            hit.score,
                            payload
                        );
                    }
                }
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
