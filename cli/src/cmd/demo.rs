//! `shardvec demo`: the main job on a fresh machine, in one command.
//!
//! Generates a clustered dataset (seeded Gaussian blobs), writes it as
//! `.npy` + JSON Lines payloads, builds a CLUSTER snapshot from those files
//! on the local file system (`file://`), then opens it like any service
//! would and shows searches, routing decisions and recall per num_probes.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use shardvec::backend::BackendKind;
use shardvec::writer::{self, Input, StrategyConfig, WriterOptions};
use shardvec::{AsyncShardedVectorReader, ReaderOptions, SearchOptions};
use shardvec_cli::synthetic;
use shardvec_cli::verify::{self, VerifyOptions};
use shardvec_core::{Explanation, Metric};

use crate::BoxError;

#[derive(Args)]
pub struct DemoArgs {
    /// Folder for the dataset, the snapshot and the shard cache (default:
    /// shardvec-demo in the system's temporary folder). Runs add publishes.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Vectors to generate.
    #[arg(long, default_value_t = 20_000)]
    vectors: usize,
    /// Dimension.
    #[arg(long, default_value_t = 64)]
    dim: usize,
    /// Shards (and k-means clusters).
    #[arg(long, default_value_t = 8)]
    shards: u32,
    /// Shard backend.
    #[arg(long, value_enum, default_value = "sqlite-vec")]
    backend: crate::build::BackendArg,
}

fn section(title: &str) {
    println!("\n== {title}");
}

pub async fn run(a: &DemoArgs) -> Result<(), BoxError> {
    let dir = a
        .dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("shardvec-demo"));
    let data_dir = dir.join("data");
    std::fs::create_dir_all(&data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
    let snapshot = dir.join("snapshot");
    std::fs::create_dir_all(&snapshot).map_err(|e| format!("{}: {e}", snapshot.display()))?;
    let prefix = snapshot.display().to_string();

    section("1. dataset");
    let blobs = synthetic::blobs(a.vectors, a.dim, 2 * a.shards as usize, 1.0, 42)?;
    let vectors = data_dir.join("vectors.npy");
    std::fs::write(&vectors, blobs.vectors.to_npy())
        .map_err(|e| format!("{}: {e}", vectors.display()))?;
    let payloads = data_dir.join("payloads.jsonl");
    let mut f = std::io::BufWriter::new(
        std::fs::File::create(&payloads).map_err(|e| format!("{}: {e}", payloads.display()))?,
    );
    for (i, l) in blobs.labels.iter().enumerate() {
        writeln!(f, "{}", serde_json::json!({"i": i, "blob": l}))?;
    }
    f.flush()?;
    println!(
        "{} vectors of dimension {} in {} Gaussian blobs (seed 42)",
        a.vectors,
        a.dim,
        blobs.centres.rows()
    );
    println!("  {}\n  {}", vectors.display(), payloads.display());

    section("2. build (CLUSTER, k-means, cosine)");
    let backend = match a.backend {
        crate::build::BackendArg::SqliteVec => BackendKind::SqliteVec,
        crate::build::BackendArg::Lancedb => BackendKind::Lancedb,
    };
    let input = Input::path(&vectors)?.payloads(&payloads);
    let opts = WriterOptions::new(
        a.shards,
        Metric::Cosine,
        StrategyConfig::Cluster { centroids: None },
    )
    .backend(backend)
    .num_probes(2);
    let summary = writer::build(&prefix, &input, &opts).await?;
    println!("published run {}", summary.run_id);
    println!("  manifest {}", summary.manifest_url);
    println!(
        "  {} ms: train {}, write {}, upload {}, publish {}",
        summary.timings.total_ms,
        summary.timings.train_ms,
        summary.timings.write_ms,
        summary.timings.upload_ms,
        summary.timings.publish_ms
    );
    println!("  {:>5}  {:>8}  {:>10}", "shard", "vectors", "bytes");
    for s in &summary.shards {
        println!("  {:>5}  {:>8}  {:>10}", s.db_id, s.rows, s.bytes);
    }

    section("3. search (a service opens the snapshot and queries it)");
    let reader =
        AsyncShardedVectorReader::open(&prefix, dir.join("cache"), ReaderOptions::new()).await?;
    let queries = synthetic::queries_near(&blobs.vectors, 3, 0.05, 9);
    for (n, q) in queries.iter().enumerate() {
        let opts = SearchOptions::new();
        if let Explanation::Cluster {
            distances,
            ranking,
            shards,
            ..
        } = reader.explain(q, &opts)?
        {
            let nearest: Vec<String> = ranking
                .iter()
                .take(4)
                .map(|s| format!("{s} ({:.3})", distances[s.index()]))
                .collect();
            let probed: Vec<String> = shards.iter().map(ToString::to_string).collect();
            println!(
                "\nquery {}: nearest centroids {} … → probes shards [{}]",
                n + 1,
                nearest.join(", "),
                probed.join(", ")
            );
        }
        let resp = reader.search(q, 5, &opts).await?;
        println!(
            "  {} results from {} shards in {:.2} ms",
            resp.results.len(),
            resp.num_shards_queried,
            resp.latency.as_secs_f64() * 1e3
        );
        crate::read::print_results(&resp.results);
    }

    section("4. recall against exact brute force");
    let report = verify::verify(&reader, &VerifyOptions::new().queries(200)).await?;
    crate::ops::print_report(&report);

    section("next");
    println!("  shardvec info    --prefix {prefix}");
    println!("  shardvec history --prefix {prefix}");
    println!("  shardvec search  --prefix {prefix} --query-file Q.npy --top-k 10");
    println!("  shardvec verify  --prefix {prefix} --num-probes 1,2,3");
    Ok(())
}
