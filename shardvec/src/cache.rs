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
use std::ops::Range;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
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
    opts: DownloadOptions,
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
    // Files download side by side (a Lance dataset has many small ones).
    // (Futures built first, then run: a stream mapping borrowed items to
    // futures trips the compiler's higher-ranked `Send` check.)
    let files: Vec<_> = identity
        .files
        .iter()
        .map(|(name, size)| {
            let (key, dest) = (format!("{src_key}/{name}"), tmp.join(name));
            async move { download(location, &key, &dest, *size, shard, opts).await }
        })
        .collect();
    let downloaded = futures::stream::iter(files)
        .buffer_unordered(opts.parallel_parts)
        .try_collect::<()>()
        .await;
    if let Err(e) = downloaded {
        let t = tmp.clone();
        let _ = blocking(tmp.clone(), move || fs::remove_dir_all(&t)).await;
        return Err(e);
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

/// How the cache downloads shard objects. Defaults: parts of 8 MiB, 4 in
/// flight per object, 60 s and 3 attempts per part.
///
/// Every object is fetched in ranged parts, each with its own time limit
/// and attempts: a store's request timeout covers a whole response body
/// and its retry budget counts from the first attempt, so one GET of an
/// object larger than `timeout × bandwidth` could never finish. Parts in
/// flight together also make cold opens faster on stores whose
/// per-connection bandwidth is below the machine's. The first part pins
/// the object's ETag; the others are read only from that same object
/// (`If-Match`), so a replaced object fails the download rather than
/// mixing two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DownloadOptions {
    part_bytes: u64,
    parallel_parts: usize,
    part_timeout: std::time::Duration,
    part_attempts: u32,
}

impl Default for DownloadOptions {
    fn default() -> Self {
        DownloadOptions {
            part_bytes: 8 << 20,
            parallel_parts: 4,
            part_timeout: std::time::Duration::from_secs(60),
            part_attempts: 3,
        }
    }
}

impl DownloadOptions {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Size of one ranged part (min 1 byte; default 8 MiB).
    pub fn part_bytes(mut self, n: u64) -> Self {
        self.part_bytes = n.max(1);
        self
    }

    /// Parts of one object in flight at once (min 1; default 4).
    pub fn parallel_parts(mut self, n: usize) -> Self {
        self.parallel_parts = n.max(1);
        self
    }

    /// Time limit of one attempt at one part (default 60 s).
    pub fn part_timeout(mut self, t: std::time::Duration) -> Self {
        self.part_timeout = t;
        self
    }

    /// Attempts per part before the download fails (min 1; default 3).
    pub fn part_attempts(mut self, n: u32) -> Self {
        self.part_attempts = n.max(1);
        self
    }
}

/// Downloads one object of `expected` bytes into `dest` in ranged parts
/// ([`DownloadOptions`]), checking the object's size against `expected`.
async fn download(
    location: &SnapshotLocation,
    key: &str,
    dest: &Path,
    expected: u64,
    shard: ShardId,
    opts: DownloadOptions,
) -> Result<()> {
    let fetch = PartFetch {
        location,
        path: location.path(key),
        url: location.display_url(key),
        expected,
        shard,
        opts,
    };
    let file = {
        let d = dest.to_path_buf();
        blocking(dest.to_path_buf(), move || {
            if let Some(parent) = d.parent() {
                fs::create_dir_all(parent)?;
            }
            let file = File::create(&d)?;
            file.set_len(expected)?;
            Ok(Arc::new(file))
        })
        .await?
    };
    let parts: Vec<Range<u64>> = (0..expected.div_ceil(opts.part_bytes))
        .map(|i| i * opts.part_bytes..((i + 1) * opts.part_bytes).min(expected))
        .collect();
    let write = |range: Range<u64>, bytes: Bytes| {
        let file = file.clone();
        blocking(dest.to_path_buf(), move || {
            std::os::unix::fs::FileExt::write_all_at(&*file, &bytes, range.start)
        })
    };
    // The first part pins the object (its ETag) for the others.
    let Some(first) = parts.first().cloned() else {
        return Ok(()); // an empty object: nothing to fetch
    };
    let (bytes, e_tag) = fetch.part(first.clone(), None).await?;
    write(first, bytes).await?;
    let rest: Vec<_> = parts
        .into_iter()
        .skip(1)
        .map(|range| {
            let (e_tag, fetch, write) = (e_tag.clone(), &fetch, &write);
            async move {
                let (bytes, _) = fetch.part(range.clone(), e_tag).await?;
                write(range, bytes).await
            }
        })
        .collect();
    futures::stream::iter(rest)
        .buffer_unordered(opts.parallel_parts)
        .try_collect::<()>()
        .await?;
    blocking(dest.to_path_buf(), move || file.sync_all()).await
}

/// Fetches the parts of one object.
struct PartFetch<'a> {
    location: &'a SnapshotLocation,
    path: object_store::path::Path,
    url: String,
    expected: u64,
    shard: ShardId,
    opts: DownloadOptions,
}

impl PartFetch<'_> {
    /// One part, with its own time limit and attempts (backing off 100 ms,
    /// doubling); a missing object, a changed one or a size other than the
    /// snapshot records fail at once. Returns the bytes and the object's
    /// ETag.
    async fn part(
        &self,
        range: Range<u64>,
        if_match: Option<String>,
    ) -> Result<(Bytes, Option<String>)> {
        let mut backoff = std::time::Duration::from_millis(100);
        let mut attempt = 1;
        loop {
            let options = object_store::GetOptions {
                range: Some(range.clone().into()),
                if_match: if_match.clone(),
                ..Default::default()
            };
            let got = tokio::time::timeout(self.opts.part_timeout, async {
                let got = self.location.store().get_opts(&self.path, options).await?;
                let (size, e_tag) = (got.meta.size, got.meta.e_tag.clone());
                Ok::<_, object_store::Error>((size, e_tag, got.bytes().await?))
            })
            .await;
            let failure = match got {
                Ok(Ok((size, _, _))) if size != self.expected => {
                    return Err(self.error(
                        format!(
                            "object has {size} bytes, the snapshot records {}",
                            self.expected
                        ),
                        None,
                    ))
                }
                Ok(Ok((_, e_tag, bytes))) if bytes.len() as u64 == range.end - range.start => {
                    return Ok((bytes, e_tag))
                }
                Ok(Ok((_, _, bytes))) => self.error(
                    format!("bytes {range:?} came back as {} bytes", bytes.len()),
                    None,
                ),
                Ok(Err(
                    e @ (object_store::Error::NotFound { .. }
                    | object_store::Error::Precondition { .. }),
                )) => return Err(self.error("cannot download", Some(Box::new(e)))),
                Ok(Err(e)) => self.error("cannot download", Some(Box::new(e))),
                Err(_) => self.error(
                    format!(
                        "bytes {range:?} took longer than {:?}",
                        self.opts.part_timeout
                    ),
                    None,
                ),
            };
            if attempt >= self.opts.part_attempts {
                return Err(failure);
            }
            tracing::debug!(shard = self.shard.0, url = %self.url, attempt, error = %failure, "retrying a part");
            tokio::time::sleep(backoff).await;
            backoff *= 2;
            attempt += 1;
        }
    }

    fn error(&self, what: impl Into<String>, cause: Option<crate::error::BoxError>) -> Error {
        let what = what.into();
        Error::Backend {
            shard: self.shard,
            url: self.url.clone(),
            source: match cause {
                Some(cause) => Box::new(crate::error::Context { what, cause }),
                None => what.into(),
            },
        }
    }
}
