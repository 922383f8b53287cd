//! `shardvec build`: input files in, a published snapshot out.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use shardvec::backend::BackendKind;
use shardvec::writer::{self, Input, InputFormat, StrategyConfig, WriterOptions};
use shardvec_core::npy::Matrix;
use shardvec_core::{CelColumnType, CelSpec, Metric, RoutingValue};

use crate::{print_json, BoxError, Store};

#[derive(Clone, Copy, ValueEnum)]
pub enum StrategyArg {
    Cluster,
    Lsh,
    Explicit,
    Cel,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum MetricArg {
    Cosine,
    L2,
    #[value(name = "dot_product")]
    DotProduct,
}

impl From<MetricArg> for Metric {
    fn from(m: MetricArg) -> Metric {
        match m {
            MetricArg::Cosine => Metric::Cosine,
            MetricArg::L2 => Metric::L2,
            MetricArg::DotProduct => Metric::DotProduct,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum BackendArg {
    #[value(name = "sqlite-vec")]
    SqliteVec,
    Lancedb,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum FormatArg {
    Npy,
    Fvecs,
    Jsonl,
}

#[derive(Args)]
pub struct BuildArgs {
    #[command(flatten)]
    store: Store,
    /// Input vectors: .npy (f32/f64 [n, dim]), .fvecs or JSON Lines
    /// ({"id", "vector", "payload", "shard_id", "routing_context"}).
    #[arg(long)]
    input: PathBuf,
    /// Input format (default: from the file extension).
    #[arg(long, value_enum)]
    format: Option<FormatArg>,
    /// Ids by row for .npy/.fvecs input: int .npy, or text with one id per line.
    #[arg(long)]
    ids: Option<PathBuf>,
    /// Payloads by row for .npy/.fvecs input: JSON Lines, an object or null per line.
    #[arg(long)]
    payloads: Option<PathBuf>,
    /// Routing contexts by row for .npy/.fvecs input (CEL): JSON Lines.
    #[arg(long)]
    routing_contexts: Option<PathBuf>,
    /// Shard ids by row for .npy/.fvecs input (EXPLICIT): int .npy or text.
    #[arg(long)]
    shard_ids: Option<PathBuf>,
    /// How vectors are routed to shards.
    #[arg(long, value_enum)]
    strategy: StrategyArg,
    /// Number of shards.
    #[arg(long)]
    num_dbs: u32,
    /// Distance metric.
    #[arg(long, value_enum, default_value = "cosine")]
    metric: MetricArg,
    /// Shard backend (sqlite-vec has no dot_product).
    #[arg(long, value_enum, default_value = "sqlite-vec")]
    backend: BackendArg,
    /// Default shards probed per query, recorded in the manifest.
    #[arg(long, default_value_t = 1)]
    num_probes: u32,
    /// CLUSTER: given centroids (.npy [num_dbs, dim]) instead of k-means.
    #[arg(long)]
    centroids: Option<PathBuf>,
    /// CLUSTER: training sample size.
    #[arg(long, default_value_t = writer::train::DEFAULT_TRAIN_SAMPLE)]
    train_sample: usize,
    /// Seed of sampling, k-means and LSH hyperplanes.
    #[arg(long, default_value_t = writer::train::DEFAULT_SEED)]
    seed: u64,
    /// Publish even if _CURRENT names a manifest published after this
    /// run's (by default such a build fails, newer_published, and removes
    /// its objects: another writer published meanwhile).
    #[arg(long)]
    force: bool,
    /// LSH: number of hyperplanes (1 to 64).
    #[arg(long, default_value_t = 16)]
    num_hash_bits: u32,
    /// CEL: the routing expression, e.g. 'shard_hash(tenant) % 8u'.
    #[arg(long)]
    cel_expr: Option<String>,
    /// CEL: a typed column NAME:TYPE (int, uint, string, bytes, double,
    /// bool); repeat for each.
    #[arg(long = "cel-column")]
    cel_columns: Vec<String>,
    /// CEL: categorical routing values, a JSON array; value i goes to shard i.
    #[arg(long)]
    routing_values: Option<String>,
    /// LanceDB: shards with at least this many rows get an IVF_HNSW_SQ
    /// index, smaller ones an exact IVF_FLAT index.
    #[arg(long, default_value_t = 10_000)]
    lance_index_min_rows: u64,
    /// Print the summary as one JSON document.
    #[arg(long)]
    json: bool,
    /// No progress bars (default: shown when stderr is a terminal).
    #[arg(long)]
    no_progress: bool,
}

fn strategy(a: &BuildArgs) -> Result<StrategyConfig, BoxError> {
    Ok(match a.strategy {
        StrategyArg::Cluster => StrategyConfig::Cluster {
            centroids: match &a.centroids {
                Some(p) => {
                    let bytes = std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?;
                    Some(Matrix::from_npy(&bytes, &p.display().to_string())?)
                }
                None => None,
            },
        },
        StrategyArg::Lsh => StrategyConfig::Lsh {
            num_hash_bits: a.num_hash_bits,
        },
        StrategyArg::Explicit => StrategyConfig::Explicit,
        StrategyArg::Cel => {
            let expr = a
                .cel_expr
                .clone()
                .ok_or("--strategy cel needs --cel-expr")?;
            let mut columns = BTreeMap::new();
            for c in &a.cel_columns {
                let (name, ty) = c
                    .split_once(':')
                    .ok_or_else(|| format!("--cel-column {c}: expected NAME:TYPE"))?;
                let ty = CelColumnType::parse(ty)
                    .ok_or_else(|| format!("--cel-column {c}: unknown type {ty}"))?;
                columns.insert(name.to_string(), ty);
            }
            let routing_values = match &a.routing_values {
                None => None,
                Some(s) => {
                    let v: Vec<serde_json::Value> =
                        serde_json::from_str(s).map_err(|e| format!("--routing-values: {e}"))?;
                    Some(
                        v.iter()
                            .map(|x| {
                                RoutingValue::from_json(x)
                                    .ok_or_else(|| format!("--routing-values: {x} is not a scalar"))
                            })
                            .collect::<Result<Vec<_>, _>>()?,
                    )
                }
            };
            StrategyConfig::Cel(CelSpec {
                expr,
                columns,
                routing_values,
            })
        }
    })
}

pub async fn run(a: &BuildArgs) -> Result<(), BoxError> {
    let mut input = match a.format {
        Some(f) => Input::file(
            &a.input,
            match f {
                FormatArg::Npy => InputFormat::Npy,
                FormatArg::Fvecs => InputFormat::Fvecs,
                FormatArg::Jsonl => InputFormat::Jsonl,
            },
        ),
        None => Input::path(&a.input)?,
    };
    if let Some(p) = &a.ids {
        input = input.ids(p);
    }
    if let Some(p) = &a.payloads {
        input = input.payloads(p);
    }
    if let Some(p) = &a.routing_contexts {
        input = input.routing_contexts(p);
    }
    if let Some(p) = &a.shard_ids {
        input = input.shard_ids(p);
    }
    let opts = WriterOptions::new(a.num_dbs, a.metric.into(), strategy(a)?)
        .backend(match a.backend {
            BackendArg::SqliteVec => BackendKind::SqliteVec,
            BackendArg::Lancedb => BackendKind::Lancedb,
        })
        .num_probes(a.num_probes)
        .train_sample(a.train_sample)
        .seed(a.seed)
        .force(a.force)
        .lance_index_min_rows(a.lance_index_min_rows)
        .store_options(a.store.options());
    let opts = if !a.no_progress && !a.json && std::io::stderr().is_terminal() {
        opts.progress(std::sync::Arc::new(crate::progress::Bars::default()))
    } else {
        opts
    };
    let summary = writer::build(&a.store.prefix, &input, &opts).await?;
    if a.json {
        return print_json(&summary);
    }
    let t = &summary.timings;
    println!("published run {}", summary.run_id);
    println!("manifest      {}", summary.manifest_url);
    println!(
        "vectors       {} in {} non-empty of {} shards",
        summary.total_vectors,
        summary.shards.len(),
        summary.num_dbs
    );
    println!(
        "time          {} ms (train {}, write {}, upload {}, publish {})",
        t.total_ms, t.train_ms, t.write_ms, t.upload_ms, t.publish_ms
    );
    Ok(())
}
