//! Read-side commands: `info`, `shards`, `route`, `search`.

use std::path::PathBuf;

use clap::Args;
use shardvec::{Filter, SearchOptions};
use shardvec_core::npy::Matrix;
use shardvec_core::{RoutingContext, ShardId};

use crate::{open, print_json, BoxError, Common};

#[derive(Args)]
pub struct Routing {
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

/// Filtered search: which rows count, and how far to probe for them.
#[derive(Args, Default)]
pub struct Filtering {
    /// Payload filter, JSON (MongoDB style), e.g. {"tenant": "acme"} or
    /// {"i": {"$gte": 10, "$lt": 20}}: only matching rows are returned,
    /// the exact top-k among them in the shards searched.
    #[arg(long, conflicts_with = "filter_file")]
    pub filter: Option<String>,
    /// The payload filter, read from a JSON file.
    #[arg(long)]
    pub filter_file: Option<PathBuf>,
    /// Keep searching the next-nearest shards (CLUSTER, LSH) until this
    /// many matching rows were found; at most --top-k.
    #[arg(long)]
    pub min_results: Option<usize>,
    /// The most shards --min-results may search (default: every shard).
    #[arg(long)]
    pub max_probes: Option<u32>,
}

impl Filtering {
    /// The parsed filter, if one was given.
    pub fn filter(&self) -> Result<Option<Filter>, BoxError> {
        let text = match (&self.filter, &self.filter_file) {
            (Some(text), _) => text.clone(),
            (None, Some(path)) => std::fs::read_to_string(path)
                .map_err(|e| format!("--filter-file {}: {e}", path.display()))?,
            (None, None) => return Ok(None),
        };
        Ok(Some(
            Filter::parse_str(&text).map_err(|e| format!("--filter: {e}"))?,
        ))
    }

    /// Sets the filter and probing options on `o`.
    pub fn apply(&self, o: &mut SearchOptions) -> Result<(), BoxError> {
        o.filter = self.filter()?.map(std::sync::Arc::new);
        o.min_results = self.min_results;
        o.max_probes = self.max_probes;
        Ok(())
    }
}

#[derive(Args)]
pub struct Query {
    /// Query vector as a JSON array.
    #[arg(long, conflicts_with = "query_file", allow_hyphen_values = true)]
    query: Option<String>,
    /// float32 .npy file [q, dim]: every row is a query.
    #[arg(long)]
    query_file: Option<PathBuf>,
}

#[derive(Args)]
pub struct RouteArgs {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    query: Query,
    #[command(flatten)]
    routing: Routing,
    /// Also say why: distances to centroids, LSH bits and buckets, the CEL
    /// value (JSON).
    #[arg(long)]
    explain: bool,
}

#[derive(Args)]
pub struct SearchArgs {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    query: Query,
    #[command(flatten)]
    routing: Routing,
    #[command(flatten)]
    filtering: Filtering,
    /// Number of results.
    #[arg(long, default_value_t = 10)]
    top_k: usize,
}

/// The rows of a `.npy` query file (float32 or float64, `[q, dim]`).
pub fn read_queries(path: &std::path::Path) -> Result<Vec<Vec<f32>>, BoxError> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let m = Matrix::from_npy(&bytes, &path.display().to_string())?;
    Ok(m.iter_rows().map(<[f32]>::to_vec).collect())
}

fn queries(q: &Query) -> Result<Vec<Vec<f32>>, BoxError> {
    match (&q.query, &q.query_file) {
        (Some(json), _) => {
            let v: Vec<f32> = serde_json::from_str(json).map_err(|e| format!("--query: {e}"))?;
            Ok(vec![v])
        }
        (None, Some(path)) => read_queries(path),
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

pub async fn info(c: &Common) -> Result<(), BoxError> {
    let r = open(c).await?;
    let info = r.snapshot_info()?;
    if c.json {
        return print_json(&info);
    }
    println!("run_id         {}", info.run_id);
    println!("manifest       {}", info.manifest_ref);
    println!("shards         {}", info.num_dbs);
    println!("dimension      {}", info.dim);
    println!("metric         {}", info.metric);
    println!("sharding       {}", info.sharding);
    println!("vectors        {}", info.total_vectors);
    Ok(())
}

pub async fn shards(c: &Common) -> Result<(), BoxError> {
    let r = open(c).await?;
    let shards = r.shard_details()?;
    if c.json {
        return print_json(&shards);
    }
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
    Ok(())
}

pub async fn route(a: &RouteArgs) -> Result<(), BoxError> {
    let r = open(&a.common).await?;
    let opts = search_options(&a.routing)?;
    for q in queries(&a.query)? {
        if a.explain {
            print_json(&r.explain(&q, &opts)?)?;
            continue;
        }
        let shards = r.route(&q, &opts)?;
        if a.common.json {
            print_json(&serde_json::json!({ "shards": shards }))?;
        } else {
            let list: Vec<String> = shards.iter().map(ToString::to_string).collect();
            println!("shards {}", list.join(", "));
        }
    }
    Ok(())
}

pub async fn search(a: &SearchArgs) -> Result<(), BoxError> {
    let r = open(&a.common).await?;
    let mut opts = search_options(&a.routing)?;
    a.filtering.apply(&mut opts)?;
    for q in queries(&a.query)? {
        let resp = r.search(&q, a.top_k, &opts).await?;
        if a.common.json {
            print_json(&resp.into_wire())?;
            continue;
        }
        println!(
            "{} results from {} shards in {:.2} ms",
            resp.results.len(),
            resp.num_shards_queried,
            resp.latency.as_secs_f64() * 1000.0
        );
        if let Some(p) = &resp.probing {
            println!(
                "probed {} shards for {} matching rows: found {} ({})",
                p.shards_probed,
                p.min_results,
                p.found,
                match p.stop {
                    shardvec::ProbeStop::Enough => "enough",
                    shardvec::ProbeStop::ProbeLimit => "probe limit reached",
                    shardvec::ProbeStop::AllShards => "every shard searched",
                }
            );
        }
        print_results(&resp.results);
    }
    Ok(())
}

/// The human table of search results.
pub fn print_results(results: &[shardvec_core::SearchResult]) {
    println!(
        "{:>4}  {:<16}  {:>12}  {:>5}  payload",
        "rank", "id", "score", "shard"
    );
    for (i, hit) in results.iter().enumerate() {
        let payload = hit
            .payload
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        let shard = hit.shard_id.map(|s| s.0.to_string()).unwrap_or_default();
        println!(
            "{:>4}  {:<16}  {:>12.6}  {:>5}  {}",
            i + 1,
            hit.id.to_string(),
            hit.score,
            shard,
            payload
        );
    }
}
