//! The `shardvec` command-line tool.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use shardvec::LocalSnapshot;
use shardvec_core::{RouteOptions, RoutingContext, ShardId};

/// Inspect and route sharded vector snapshots.
#[derive(Parser)]
#[command(name = "shardvec", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print a snapshot's info and shard table (JSON).
    Info {
        /// Snapshot folder (a local copy of the prefix).
        dir: PathBuf,
    },
    /// Print the shards a query is routed to and why (JSON).
    Route {
        /// Snapshot folder (a local copy of the prefix).
        dir: PathBuf,
        /// Query vector, comma-separated.
        #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
        query: Vec<f32>,
        /// Shards to probe (CLUSTER, LSH). Default: the manifest's.
        #[arg(long)]
        num_probes: Option<u32>,
        /// Explicit shard ids, comma-separated (override routing).
        #[arg(long, value_delimiter = ',')]
        shard_ids: Option<Vec<u32>>,
        /// CEL routing context as a JSON object.
        #[arg(long)]
        context: Option<String>,
    },
}

fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    match cli.command {
        Command::Info { dir } => {
            let snap = LocalSnapshot::open(dir)?;
            let out = serde_json::json!({
                "snapshot_info": snap.info(),
                "shards": snap.manifest.shard_details(),
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        Command::Route {
            dir,
            query,
            num_probes,
            shard_ids,
            context,
        } => {
            let snap = LocalSnapshot::open(dir)?;
            let ids: Option<Vec<ShardId>> = shard_ids.map(|v| v.into_iter().map(ShardId).collect());
            let ctx = match context {
                Some(s) => Some(RoutingContext::from_json(&serde_json::from_str(&s)?)?),
                None => None,
            };
            let opts = RouteOptions {
                num_probes,
                shard_ids: ids.as_deref(),
                routing_context: ctx.as_ref(),
            };
            let explanation = snap.router.explain(&query, &opts)?;
            println!("{}", serde_json::to_string_pretty(&explanation)?);
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
