//! Operator commands: `history`, `rollback`, `verify`.

use std::path::PathBuf;

use clap::Args;
use shardvec::history::{self, RollbackTarget};
use shardvec::SnapshotLocation;
use shardvec_cli::verify::{self, VerifyOptions, VerifyReport};

use crate::{open, print_json, BoxError, Common, Store};

pub async fn history(store: &Store, json: bool) -> Result<(), BoxError> {
    let location = SnapshotLocation::open(&store.prefix, &store.options())?;
    let entries = history::history(&location).await?;
    if json {
        return print_json(&entries);
    }
    if entries.is_empty() {
        println!("no manifests under {}", location.url());
        return Ok(());
    }
    println!("    {:<27}  {:<36}  manifest", "published", "run_id");
    for e in entries {
        println!(
            "{}  {:<27}  {:<36}  {}",
            if e.current { " *" } else { "  " },
            e.published_at.format("%Y-%m-%dT%H:%M:%S%.6fZ"),
            e.run_id,
            e.manifest_url
        );
    }
    println!("(* = current)");
    Ok(())
}

pub async fn rollback(store: &Store, to: &str, json: bool) -> Result<(), BoxError> {
    let location = SnapshotLocation::open(&store.prefix, &store.options())?;
    let now = history::rollback(&location, &RollbackTarget::parse(to)).await?;
    if json {
        return print_json(&serde_json::json!({
            "manifest_ref": now.url, "run_id": now.run_id,
        }));
    }
    println!("_CURRENT now names run {} ({})", now.run_id, now.url);
    Ok(())
}

#[derive(Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    common: Common,
    /// Queries drawn from the snapshot's own vectors (with a little noise).
    #[arg(long, default_value_t = 100)]
    queries: usize,
    /// Use these queries instead (float32 .npy [q, dim]).
    #[arg(long)]
    query_file: Option<PathBuf>,
    /// The k of recall@k.
    #[arg(long, default_value_t = 10)]
    top_k: usize,
    /// num_probes values to measure, comma-separated (default 1, 2, 4, …,
    /// num_dbs).
    #[arg(long, value_delimiter = ',')]
    num_probes: Option<Vec<u32>>,
}

pub fn print_report(r: &VerifyReport) {
    println!(
        "recall@{} over {} queries, {} vectors ({} {})",
        r.top_k,
        r.queries,
        r.vectors,
        r.strategy.as_str(),
        r.metric.as_str()
    );
    println!(
        "{:>10}  {:>10}  {:>14}  {:>12}",
        "num_probes", "recall", "shards/query", "latency ms"
    );
    for row in &r.rows {
        println!(
            "{:>10}  {:>10.4}  {:>14.2}  {:>12.3}",
            row.num_probes, row.recall_at_k, row.mean_shards_queried, row.mean_latency_ms
        );
    }
}

pub async fn verify(a: &VerifyArgs) -> Result<(), BoxError> {
    let reader = open(&a.common).await?;
    let mut opts = VerifyOptions::new().queries(a.queries).top_k(a.top_k);
    if let Some(p) = &a.num_probes {
        opts = opts.num_probes(p.clone());
    }
    if let Some(q) = &a.query_file {
        opts = opts.given_queries(crate::read::read_queries(q)?);
    }
    let report = verify::verify(&reader, &opts).await?;
    if a.common.json {
        return print_json(&report);
    }
    print_report(&report);
    Ok(())
}
