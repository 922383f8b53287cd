//! Where each object of a snapshot lives under its prefix: the one place
//! the key layout is written down (readers, the writer, the host's routing
//! files and the wasm package all build keys here).
//!
//! ```text
//! <prefix>/_CURRENT                                            pointer (JSON)
//! <prefix>/manifests/<published_at>_run_id=<run>/manifest      SQLite manifest
//! <prefix>/vector_meta/run_id=<run>/centroids.npy              CLUSTER artefact
//! <prefix>/vector_meta/run_id=<run>/hyperplanes.npy            LSH artefact
//! <prefix>/shards/run_id=<run>/db=<00000>/attempt=<00>/...     one shard
//! ```
//!
//! Inside a shard folder, the backend is told by its objects: a sqlite-vec
//! shard is the single file [`SQLITE_VEC_SHARD_FILE`], a LanceDB shard the
//! dataset folder [`LANCE_DATASET_DIR`] (table [`LANCE_TABLE`]).

use alloc::format;
use alloc::string::String;

use crate::types::ShardId;

/// Key of the pointer object under the prefix.
pub const CURRENT_KEY: &str = "_CURRENT";
/// Folder of the manifests under the prefix.
pub const MANIFESTS_DIR: &str = "manifests";
/// File name of a manifest inside its folder.
pub const MANIFEST_FILE: &str = "manifest";
/// File name of the CLUSTER centroids artefact.
pub const CENTROIDS_FILE: &str = "centroids.npy";
/// File name of the LSH hyperplanes artefact.
pub const HYPERPLANES_FILE: &str = "hyperplanes.npy";
/// The sqlite-vec shard file inside a shard folder.
pub const SQLITE_VEC_SHARD_FILE: &str = "shard.db";
/// The Lance dataset folder inside a shard folder.
pub const LANCE_DATASET_DIR: &str = "vector_index.lance";
/// The table name of a LanceDB shard.
pub const LANCE_TABLE: &str = "vector_index";
/// `build_meta.db_path_template` as the reference writes it (Python format
/// syntax; informational, readers use each shard's recorded URL).
pub const DB_PATH_TEMPLATE: &str = "db={db_id:05d}";

/// Key of the manifest in the folder named `dir`
/// ([`crate::current::manifest_dir_name`]).
pub fn manifest_key(dir: &str) -> String {
    format!("{MANIFESTS_DIR}/{dir}/{MANIFEST_FILE}")
}

/// Key of the routing artefact `file` of run `run_id`.
pub fn artefact_key(run_id: &str, file: &str) -> String {
    format!("vector_meta/run_id={run_id}/{file}")
}

/// Key of the folder holding every attempt of shard `shard` of run
/// `run_id`.
pub fn shard_attempts_dir(run_id: &str, shard: ShardId) -> String {
    format!("shards/run_id={run_id}/db={:05}", shard.0)
}

/// Key of the folder of attempt `attempt` of shard `shard` of run `run_id`
/// (a single-machine build writes attempt 0; a distributed build's retried
/// task writes the next attempt, and the manifest names the one published).
pub fn shard_dir(run_id: &str, shard: ShardId, attempt: u32) -> String {
    format!("{}/attempt={attempt:02}", shard_attempts_dir(run_id, shard))
}

/// The shard and attempt of a key in run `run_id`'s shards folder
/// (`shards/run_id=r/db=00003/attempt=01/shard.db` → shard 3, attempt 1),
/// or `None` for a key outside the layout.
pub fn shard_attempt_of(run_id: &str, key: &str) -> Option<(ShardId, u32)> {
    let rest = key
        .strip_prefix("shards/run_id=")?
        .strip_prefix(run_id)?
        .strip_prefix("/db=")?;
    let (db, rest) = rest.split_once('/')?;
    let shard = ShardId(db.parse().ok()?);
    let (attempt, _) = rest.split_once('/')?;
    let attempt = attempt.strip_prefix("attempt=")?.parse().ok()?;
    // Only the layout's own spelling (`db=00003`, not `db=3`).
    let dir = shard_dir(run_id, shard, attempt);
    (key.strip_prefix(dir.as_str())?.starts_with('/')).then_some((shard, attempt))
}

/// The folder prefix of every object of run `run_id` (shards, then
/// artefacts), for cleaning up a failed run.
pub fn run_dirs(run_id: &str) -> [String; 2] {
    [
        format!("shards/run_id={run_id}"),
        format!("vector_meta/run_id={run_id}"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_reference_layout() {
        assert_eq!(
            manifest_key("2026-11-21T18:28:06.647893Z_run_id=r"),
            "manifests/2026-11-21T18:28:06.647893Z_run_id=r/manifest"
        );
        assert_eq!(
            artefact_key("r", CENTROIDS_FILE),
            "vector_meta/run_id=r/centroids.npy"
        );
        assert_eq!(
            shard_dir("r", ShardId(7), 0),
            "shards/run_id=r/db=00007/attempt=00"
        );
        assert_eq!(
            shard_dir("r", ShardId(7), 12),
            "shards/run_id=r/db=00007/attempt=12"
        );
        let key = shard_dir("r", ShardId(7), 3) + "/shard.db";
        assert_eq!(shard_attempt_of("r", &key), Some((ShardId(7), 3)));
        let lance = shard_dir("r", ShardId(0), 0) + "/vector_index.lance/_versions/1.manifest";
        assert_eq!(shard_attempt_of("r", &lance), Some((ShardId(0), 0)));
        assert!(key.starts_with(&shard_attempts_dir("r", ShardId(7))));
        for outside in [
            "shards/run_id=r/db=00007/attempt=x/shard.db",
            "shards/run_id=r/db=7/attempt=03/shard.db",
            "shards/run_id=r/db=00007/attempt=03",
            "shards/run_id=rr/db=00007/attempt=03/shard.db",
            "vector_meta/run_id=r/centroids.npy",
        ] {
            assert_eq!(shard_attempt_of("r", outside), None, "{outside}");
        }
    }
}
