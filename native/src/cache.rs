//! The local shard cache under `local_root`.
//!
//! Each shard has a folder `local_root/shard_<NNNNN>/` holding its files and
//! `identity.json` (the shard's URL, `checkpoint_id` and byte size). A shard
//! is downloaded only when the identity differs or a file is missing or of
//! the wrong size. Downloads go to a temporary file that is renamed into
//! place, so a reader never sees a torn file; the folder's `.lock` file
//! (an OS file lock) serialises processes and threads sharing the same
//! `local_root`, and a process that dies mid-download leaves only a
//! temporary file behind. Shard folders are named by shard id, never by
//! anything taken from a URL.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use futures::StreamExt;
use object_store::ObjectStoreExt;
use serde::{Deserialize, Serialize};
use shardvec_core::ShardId;

use crate::error::{Error, Result};
use crate::location::SnapshotLocation;

/// What identifies the bytes of a cached shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The shard's recorded URL.
    pub db_url: String,
    /// The manifest's `checkpoint_id` (content identity).
    pub checkpoint_id: Option<String>,
    /// Files of the shard, relative to its folder, with their sizes.
    pub files: Vec<(String, u64)>,
}

const IDENTITY_FILE: &str = "identity.json";
const LOCK_FILE: &str = ".lock";

/// The cache folder of a shard.
pub fn shard_dir(local_root: &Path, shard: ShardId) -> PathBuf {
    local_root.join(format!("shard_{:05}", shard.0))
}

fn read_identity(dir: &Path) -> Option<Identity> {
    let bytes = fs::read(dir.join(IDENTITY_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn is_complete(dir: &Path, id: &Identity) -> bool {
    read_identity(dir).as_ref() == Some(id)
        && id.files.iter().all(|(name, size)| {
            fs::metadata(dir.join(name)).is_ok_and(|m| m.is_file() && m.len() == *size)
        })
}

/// Makes sure the shard's files are in its cache folder, downloading them
/// from `location` (keys `src_key/<file>`) when needed. Returns the folder.
pub async fn ensure(
    location: &SnapshotLocation,
    local_root: &Path,
    shard: ShardId,
    src_key: &str,
    identity: &Identity,
) -> Result<PathBuf> {
    let dir = shard_dir(local_root, shard);
    if is_complete(&dir, identity) {
        return Ok(dir);
    }
    fs::create_dir_all(&dir).map_err(|e| Error::cache(&dir, e))?;
    let lock_path = dir.join(LOCK_FILE);
    let lock = tokio::task::spawn_blocking(move || -> std::io::Result<File> {
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)?;
        f.lock()?;
        Ok(f)
    })
    .await
    .map_err(|e| Error::cache(&dir, std::io::Error::other(e)))?
    .map_err(|e| Error::cache(dir.join(LOCK_FILE), e))?;

    // Another process may have finished while we waited for the lock.
    if !is_complete(&dir, identity) {
        // The old identity goes first: a crash from here on leaves the
        // folder visibly incomplete.
        let _ = fs::remove_file(dir.join(IDENTITY_FILE));
        for (name, size) in &identity.files {
            download(
                location,
                &format!("{src_key}/{name}"),
                &dir.join(name),
                *size,
                shard,
            )
            .await?;
        }
        let tmp = dir.join(format!("{IDENTITY_FILE}.tmp-{}", std::process::id()));
        let json = serde_json::to_vec(identity)
            .map_err(|e| Error::cache(&tmp, std::io::Error::other(e)))?;
        fs::write(&tmp, json).map_err(|e| Error::cache(&tmp, e))?;
        fs::rename(&tmp, dir.join(IDENTITY_FILE)).map_err(|e| Error::cache(&dir, e))?;
    }
    drop(lock);
    Ok(dir)
}

async fn download(
    location: &SnapshotLocation,
    key: &str,
    dest: &Path,
    expected: u64,
    shard: ShardId,
) -> Result<()> {
    let url = location.display_url(key);
    let backend = |reason: String| Error::Backend {
        shard,
        url: url.clone(),
        reason,
    };
    let result = location
        .store()
        .get(&location.path(key))
        .await
        .map_err(|e| backend(format!("cannot download: {e}")))?;
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent).map_err(|e| Error::cache(parent, e))?;
    }
    let tmp = dest.with_file_name(format!(
        "{}.part-{}",
        dest.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("download"),
        std::process::id()
    ));
    let mut file = File::create(&tmp).map_err(|e| Error::cache(&tmp, e))?;
    let mut written = 0u64;
    let mut stream = result.into_stream();
    let outcome: Result<()> = async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| backend(format!("download interrupted: {e}")))?;
            written += chunk.len() as u64;
            file.write_all(&chunk).map_err(|e| Error::cache(&tmp, e))?;
        }
        file.sync_all().map_err(|e| Error::cache(&tmp, e))?;
        if written != expected {
            return Err(backend(format!(
                "object has {written} bytes, the snapshot records {expected}"
            )));
        }
        fs::rename(&tmp, dest).map_err(|e| Error::cache(dest, e))
    }
    .await;
    if outcome.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    outcome
}
