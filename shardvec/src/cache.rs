//! The local shard cache under `local_root`.
//!
//! Each shard has a folder `local_root/shard_<NNNNN>/` (named by shard id,
//! never by anything taken from a URL). Inside it, every version of the
//! shard's bytes has its own folder `v-<hash>/`, where the hash covers the
//! shard's URL, its `checkpoint_id` and its file list with sizes (the
//! [`Identity`], also written to `v-<hash>/identity.json`).
//!
//! A version folder is filled under a temporary name and renamed into place
//! when complete, and a finished version is never modified: a handle opened
//! on one version keeps reading exactly those bytes even while another
//! process, or a refresh in this one, installs a newer version next to it.
//! A damaged version (a file missing or of the wrong size, no identity, or
//! — found by the backend — a file that does not open or fails SQLite's
//! `quick_check`, see [`discard`]) is moved aside and downloaded again. The shard folder's `.lock` file (an OS file lock)
//! serialises processes and threads sharing one `local_root`; a process that
//! dies mid-download leaves only a temporary folder behind, which the next
//! download removes. Versions are not deleted while readers may use them:
//! a snapshot flipping between publishes re-uses each cached version
//! (pruning old versions is left to the operator for now).
//!
//! `local_root` is created private (`0700`), and an existing one that is
//! world-writable and not owned by this user is refused ([`Error::Cache`]):
//! another local user could plant shard bytes there (a fallback such as
//! `/tmp/shardvec`). A world-writable folder of one's own (a sticky `/tmp`
//! itself) is allowed.
//!
//! All file-system work runs on tokio's blocking pool.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Component, Path, PathBuf};

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

impl Identity {
    /// The version folder name: `v-` and a hash of the identity.
    pub fn version_name(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        format!("v-{:016x}", xxhash_rust::xxh3::xxh3_64(&json))
    }
}

const IDENTITY_FILE: &str = "identity.json";
const LOCK_FILE: &str = ".lock";

/// The cache folder of a shard (holding its version folders).
pub fn shard_dir(local_root: &Path, shard: ShardId) -> PathBuf {
    local_root.join(format!("shard_{:05}", shard.0))
}

/// Checks that a file name from a listing is a plain relative path: no
/// `..`, no root, no backslash, no empty segment. Only such names may
/// become local paths.
fn check_name(name: &str, shard: ShardId) -> Result<()> {
    let plain = !name.is_empty()
        && !name.contains('\\')
        && name.split('/').all(|s| !s.is_empty())
        && Path::new(name)
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
    if plain {
        Ok(())
    } else {
        Err(Error::Backend {
            shard,
            url: name.to_string(),
            source: "object name is not a plain relative path".into(),
        })
    }
}

fn is_complete(dir: &Path, id: &Identity) -> bool {
    let recorded: Option<Identity> = fs::read(dir.join(IDENTITY_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    recorded.as_ref() == Some(id)
        && id.files.iter().all(|(name, size)| {
            fs::metadata(dir.join(name)).is_ok_and(|m| m.is_file() && m.len() == *size)
        })
}

async fn blocking<T: Send + 'static>(
    what: PathBuf,
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T> {
    let path = what.clone();
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::cache(&path, std::io::Error::other(e)))?
        .map_err(|e| Error::cache(what, e))
}

/// Makes sure the shard's files are cached, downloading them from
/// `location` (keys `src_key/<file>`) when needed. Returns the version
/// folder holding them.
pub async fn ensure(
    location: &SnapshotLocation,
    local_root: &Path,
    shard: ShardId,
    src_key: &str,
    identity: &Identity,
) -> Result<PathBuf> {
    for (name, _) in &identity.files {
        check_name(name, shard)?;
    }
    {
        let root = local_root.to_path_buf();
        blocking(local_root.to_path_buf(), move || secure_root(&root)).await?;
    }
    let dir = shard_dir(local_root, shard);
    let version = dir.join(identity.version_name());
    {
        let (v, id) = (version.clone(), identity.clone());
        if blocking(version.clone(), move || Ok(is_complete(&v, &id))).await? {
            return Ok(version);
        }
    }
    let lock_path = dir.join(LOCK_FILE);
    let lock = {
        let (d, l) = (dir.clone(), lock_path.clone());
        blocking(lock_path, move || -> std::io::Result<File> {
            fs::create_dir_all(&d)?;
            let f = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&l)?;
            f.lock()?;
            Ok(f)
        })
        .await?
    };

    // Another process may have finished while we waited for the lock.
    let (v, id) = (version.clone(), identity.clone());
    let done = blocking(version.clone(), move || Ok(is_complete(&v, &id))).await?;
    if !done {
        let tmp = dir.join(format!(
            ".tmp-{}-{}",
            identity.version_name(),
            std::process::id()
        ));
        {
            let (d, t, v) = (dir.clone(), tmp.clone(), version.clone());
            blocking(dir.clone(), move || {
                // Leftovers of crashed downloads, and a damaged version.
                for entry in fs::read_dir(&d)? {
                    let p = entry?.path();
                    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                    if name.starts_with(".tmp-") || name.starts_with(".old-") {
                        let _ = fs::remove_dir_all(&p);
                    }
                }
                if v.exists() {
                    fs::rename(&v, d.join(format!(".old-{}", std::process::id())))?;
                }
                fs::create_dir_all(&t)
            })
            .await?;
        }
        for (name, size) in &identity.files {
            let dest = tmp.join(name);
            if let Err(e) =
                download(location, &format!("{src_key}/{name}"), &dest, *size, shard).await
            {
                let t = tmp.clone();
                let _ = blocking(tmp.clone(), move || fs::remove_dir_all(&t)).await;
                return Err(e);
            }
        }
        let json = serde_json::to_vec(identity)
            .map_err(|e| Error::cache(&tmp, std::io::Error::other(e)))?;
        let (d, t, v) = (dir.clone(), tmp.clone(), version.clone());
        blocking(version.clone(), move || {
            fs::write(t.join(IDENTITY_FILE), json)?;
            fs::rename(&t, &v)?;
            // Damaged versions moved aside go; other versions stay, because
            // a state still in service (before or during a refresh, or in
            // another process) may open new connections to them.
            for entry in fs::read_dir(&d)? {
                let p = entry?.path();
                let aside = p
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(".old-"));
                if aside {
                    let _ = fs::remove_dir_all(&p);
                }
            }
            Ok(())
        })
        .await?;
    }
    drop(lock);
    Ok(version)
}

/// Creates `root` private, or checks that an existing one is not open to
/// other users (module docs).
fn secure_root(root: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt};
        match fs::metadata(root) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(root),
            Err(e) => Err(e),
            Ok(m) => {
                // SAFETY: geteuid has no preconditions and cannot fail.
                let me = unsafe { libc::geteuid() };
                if m.mode() & 0o002 != 0 && m.uid() != me {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::PermissionDenied,
                        format!(
                            "{} is world-writable and owned by another user (uid {}); \
                             choose a local root of your own",
                            root.display(),
                            m.uid()
                        ),
                    ));
                }
                Ok(())
            }
        }
    }
    #[cfg(not(unix))]
    {
        fs::create_dir_all(root)
    }
}

/// Moves a cached version that turned out damaged (its files have the
/// right sizes but do not open) aside, so the next [`ensure`] downloads it
/// again. Handles already open on it keep their files until they close.
pub async fn discard(version: &Path) -> Result<()> {
    let v = version.to_path_buf();
    blocking(version.to_path_buf(), move || {
        let Some(dir) = v.parent() else {
            return Ok(());
        };
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        match fs::rename(&v, dir.join(format!(".old-{}-{stamp}", std::process::id()))) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    })
    .await
}

/// Streams one object into `dest`, checking its size as it goes.
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
        source: reason.into(),
    };
    // A store failure stays the error's source.
    let failed = |what: &str, e: object_store::Error| Error::Backend {
        shard,
        url: url.clone(),
        source: Box::new(crate::error::Context {
            what: what.to_string(),
            cause: Box::new(e),
        }),
    };
    let result = location
        .store()
        .get(&location.path(key))
        .await
        .map_err(|e| failed("cannot download", e))?;
    // Chunks go to a blocking writer through a bounded channel, so a slow
    // disk never stalls the async workers.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(8);
    let path = dest.to_path_buf();
    let writer = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        let mut file = File::create(&path)?;
        while let Some(chunk) = rx.blocking_recv() {
            file.write_all(&chunk)?;
        }
        file.sync_all()
    });
    let mut written = 0u64;
    let mut stream = result.into_stream();
    let mut failure = None;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => {
                written += chunk.len() as u64;
                if written > expected {
                    failure = Some(backend(format!(
                        "object is larger than the {expected} bytes the snapshot records"
                    )));
                    break;
                }
                if tx.send(chunk).await.is_err() {
                    break; // the writer failed; its error is reported below
                }
            }
            Err(e) => {
                failure = Some(failed("download interrupted", e));
                break;
            }
        }
    }
    drop(tx);
    let wrote = writer
        .await
        .map_err(|e| Error::cache(dest, std::io::Error::other(e)))?;
    if let Some(f) = failure {
        return Err(f);
    }
    wrote.map_err(|e| Error::cache(dest, e))?;
    if written != expected {
        return Err(backend(format!(
            "object has {written} bytes, the snapshot records {expected}"
        )));
    }
    Ok(())
}
