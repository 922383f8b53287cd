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
//! A damaged version — a file missing or of the wrong size, no identity,
//! or, found by the backend, a file that fails its integrity check — is
//! moved aside and downloaded again ([`discard`]). Only damage does that: a
//! version that fails to open for want of file descriptors, memory or a
//! lock stays, so pressure never turns into a download storm.
//!
//! The shard folder's `.lock` file (an OS file lock) serialises downloads,
//! discards and prunes of the shard across processes and threads sharing
//! one `local_root`; a process that dies mid-download leaves only a
//! temporary folder behind, which the next download removes.
//!
//! **Pruning.** Every version in use — by an open shard handle, in any
//! process — is held open with a shared lock on its folder
//! ([`CachedVersion`]). After a download installs a new version, every
//! other version of the shard whose folder's exclusive lock can be taken
//! (nobody uses it) is renamed aside and deleted, so `local_root` holds
//! about one version per shard however many times the snapshot is
//! published, never less than what live handles read. A version still in
//! use when a newer one arrives goes at a later download. (On non-Unix
//! systems nothing is pruned.)
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

/// A cached version in use: its folder, held open under a shared OS lock
/// for as long as this value lives, so that no process prunes it meanwhile
/// (module docs). Shard handles keep theirs.
#[derive(Debug)]
pub struct CachedVersion {
    path: PathBuf,
    /// The version folder, open and share-locked (Unix).
    #[cfg(unix)]
    _guard: File,
    /// Its device and inode: they tell this version from a later download
    /// of the same identity.
    #[cfg(unix)]
    inode: (u64, u64),
}

impl CachedVersion {
    /// The version folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Takes the folder at `path` into use, if it is a complete version of
    /// `id`: opens and share-locks it, then checks it is still the folder
    /// at `path` (a pruner renames before it deletes) and complete.
    fn take(path: &Path, id: &Identity) -> std::io::Result<Option<CachedVersion>> {
        #[cfg(unix)]
        {
            let guard = match File::open(path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e),
            };
            guard.lock_shared()?;
            let held = inode_of(&guard)?;
            if inode(path)? != Some(held) || !is_complete(path, id) {
                return Ok(None);
            }
            Ok(Some(CachedVersion {
                path: path.to_path_buf(),
                _guard: guard,
                inode: held,
            }))
        }
        #[cfg(not(unix))]
        {
            Ok(is_complete(path, id).then(|| CachedVersion {
                path: path.to_path_buf(),
            }))
        }
    }

    /// A check, runnable anywhere, of whether the folder at this version's
    /// path is still this version (not moved aside, not replaced by a later
    /// download).
    fn in_place_check(&self) -> impl Fn() -> std::io::Result<bool> + Send + 'static {
        let path = self.path.clone();
        #[cfg(unix)]
        let held = self.inode;
        move || {
            #[cfg(unix)]
            {
                Ok(inode(&path)? == Some(held))
            }
            #[cfg(not(unix))]
            {
                Ok(path.exists())
            }
        }
    }
}

#[cfg(unix)]
fn inode(path: &Path) -> std::io::Result<Option<(u64, u64)>> {
    use std::os::unix::fs::MetadataExt;
    match fs::metadata(path) {
        Ok(m) => Ok(Some((m.dev(), m.ino()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(unix)]
fn inode_of(file: &File) -> std::io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = file.metadata()?;
    Ok((m.dev(), m.ino()))
}

/// Takes the shard folder's `.lock` (exclusive, blocking): one download,
/// discard or prune of a shard at a time, across processes.
fn lock_shard(dir: &Path) -> std::io::Result<File> {
    fs::create_dir_all(dir)?;
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(LOCK_FILE))?;
    f.lock()?;
    Ok(f)
}

/// A fresh name to move a folder aside under (removed by the next download).
fn aside_name(dir: &Path) -> PathBuf {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    dir.join(format!(".old-{}-{stamp}", std::process::id()))
}

/// Makes sure the shard's files are cached, downloading them from
/// `location` (keys `src_key/<file>`) when needed, and takes the version
/// into use. After a download, other versions of the shard that no handle
/// in any process uses are pruned.
pub async fn ensure(
    location: &SnapshotLocation,
    local_root: &Path,
    shard: ShardId,
    src_key: &str,
    identity: &Identity,
) -> Result<CachedVersion> {
    for (name, _) in &identity.files {
        check_name(name, shard)?;
    }
    {
        let root = local_root.to_path_buf();
        blocking(local_root.to_path_buf(), move || secure_root(&root)).await?;
    }
    let dir = shard_dir(local_root, shard);
    let version = dir.join(identity.version_name());
    let take = || {
        let (v, id) = (version.clone(), identity.clone());
        blocking(version.clone(), move || CachedVersion::take(&v, &id))
    };
    if let Some(cached) = take().await? {
        return Ok(cached);
    }
    let lock = {
        let d = dir.clone();
        blocking(dir.join(LOCK_FILE), move || lock_shard(&d)).await?
    };
    // Another process may have finished while we waited for the lock.
    if let Some(cached) = take().await? {
        return Ok(cached);
    }
    let tmp = dir.join(format!(
        ".tmp-{}-{}",
        identity.version_name(),
        std::process::id()
    ));
    {
        let (d, t, v) = (dir.clone(), tmp.clone(), version.clone());
        blocking(dir.clone(), move || {
            // Leftovers of crashed downloads, and a damaged version.
            remove_aside(&d)?;
            if v.exists() {
                fs::rename(&v, aside_name(&d))?;
            }
            fs::create_dir_all(&t)
        })
        .await?;
    }
    for (name, size) in &identity.files {
        let dest = tmp.join(name);
        if let Err(e) = download(location, &format!("{src_key}/{name}"), &dest, *size, shard).await
        {
            let t = tmp.clone();
            let _ = blocking(tmp.clone(), move || fs::remove_dir_all(&t)).await;
            return Err(e);
        }
    }
    let json =
        serde_json::to_vec(identity).map_err(|e| Error::cache(&tmp, std::io::Error::other(e)))?;
    let (d, t, v, id) = (dir.clone(), tmp.clone(), version.clone(), identity.clone());
    let cached = blocking(version.clone(), move || {
        fs::write(t.join(IDENTITY_FILE), json)?;
        fs::rename(&t, &v)?;
        let cached = CachedVersion::take(&v, &id)?;
        prune(&d, &v)?;
        remove_aside(&d)?;
        Ok(cached)
    })
    .await?;
    drop(lock);
    cached.ok_or_else(|| {
        Error::cache(
            &version,
            std::io::Error::other("the version just installed is not complete"),
        )
    })
}

/// Removes the folders moved aside in `dir` (damaged or pruned versions,
/// leftovers of crashed downloads). Called under the shard lock.
fn remove_aside(dir: &Path) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let p = entry?.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with(".tmp-") || name.starts_with(".old-") {
            let _ = fs::remove_dir_all(&p);
        }
    }
    Ok(())
}

/// Moves aside every version in `dir` but `keep` that no handle in any
/// process has in use (its folder's exclusive lock is free). Called under
/// the shard lock; a version a handle still uses goes at a later prune.
fn prune(dir: &Path, keep: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    for entry in fs::read_dir(dir)? {
        let p = entry?.path();
        let is_version = p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("v-"));
        if !is_version || p == keep {
            continue;
        }
        let Ok(folder) = File::open(&p) else { continue };
        if folder.try_lock().is_ok() {
            // Renamed first: a reader taking it into use checks the inode
            // at the path after locking, and never gets a half-deleted one.
            fs::rename(&p, aside_name(dir))?;
            tracing::debug!(version = %p.display(), "pruned an unused cache version");
        }
    }
    #[cfg(not(unix))]
    let _ = (dir, keep);
    Ok(())
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
/// right sizes but do not open: see the backends) aside, under the shard
/// lock, so the next [`ensure`] downloads it again. Nothing happens if the
/// folder at its path is no longer this version (another thread or process
/// already replaced it). Handles open on it keep their files until they
/// close.
pub async fn discard(version: &CachedVersion) -> Result<()> {
    let path = version.path.clone();
    let Some(dir) = path.parent().map(Path::to_path_buf) else {
        return Ok(());
    };
    let in_place = version.in_place_check();
    blocking(path.clone(), move || {
        let _lock = lock_shard(&dir)?;
        if in_place()? {
            fs::rename(&path, aside_name(&dir))?;
        }
        Ok(())
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
