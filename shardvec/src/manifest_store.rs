//! Where `_CURRENT` and manifests are read from (and, for writers, written).
//!
//! [`ManifestStore`] is one small trait so a deployment can keep manifests
//! elsewhere (a database, a config service); [`ObjectManifestStore`], on the
//! snapshot's own object store, is the default.

use bytes::Bytes;
use futures::future::BoxFuture;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, UpdateVersion};
use shardvec_core::current::parse_manifest_dir_name;
use shardvec_core::{CurrentPointer, ManifestRef};

use crate::error::{Error, Result};
use crate::location::SnapshotLocation;

pub use shardvec_core::layout::{CURRENT_KEY, MANIFESTS_DIR};

/// Reads the pointer and the manifests of one snapshot prefix.
pub trait ManifestStore: Send + Sync + std::fmt::Debug {
    /// The `_CURRENT` pointer, or `None` if nothing was published.
    fn load_current(&self) -> BoxFuture<'_, Result<Option<CurrentPointer>>>;
    /// The bytes of the manifest at `url` (as recorded in `_CURRENT`).
    fn load_manifest<'a>(&'a self, url: &'a str) -> BoxFuture<'a, Result<Bytes>>;
    /// Every published manifest, newest first.
    fn list_manifests(&self) -> BoxFuture<'_, Result<Vec<ManifestRef>>>;
}

/// The default store: `_CURRENT` and `manifests/` on the snapshot's object
/// store.
#[derive(Debug, Clone)]
pub struct ObjectManifestStore {
    location: SnapshotLocation,
}

impl ObjectManifestStore {
    /// A store over `location`.
    pub fn new(location: SnapshotLocation) -> Self {
        ObjectManifestStore { location }
    }

    /// The key of a manifest URL relative to the prefix: everything from
    /// its `manifests/` segment on, so a copied snapshot's recorded URLs
    /// (which name the original bucket) resolve here.
    pub fn manifest_key(url: &str) -> Option<&str> {
        shardvec_core::resolve::manifest_key(url)
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let store = self.location.store();
        let path = self.location.path(key);
        match store.get(&path).await {
            Ok(r) => Ok(Some(r.bytes().await.map_err(|e| {
                Error::store("get", self.location.display_url(key), e)
            })?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(Error::store("get", self.location.display_url(key), e)),
        }
    }
}

impl ManifestStore for ObjectManifestStore {
    fn load_current(&self) -> BoxFuture<'_, Result<Option<CurrentPointer>>> {
        Box::pin(async move {
            match self.get(CURRENT_KEY).await? {
                None => Ok(None),
                Some(b) => Ok(Some(CurrentPointer::parse(&b)?)),
            }
        })
    }

    fn load_manifest<'a>(&'a self, url: &'a str) -> BoxFuture<'a, Result<Bytes>> {
        Box::pin(async move {
            let key = Self::manifest_key(url).ok_or_else(|| Error::ForeignUrl {
                url: url.to_string(),
                prefix: self.location.url().to_string(),
            })?;
            self.get(key).await?.ok_or_else(|| {
                Error::store(
                    "get",
                    self.location.display_url(key),
                    object_store::Error::NotFound {
                        path: key.to_string(),
                        source: "manifest object does not exist".into(),
                    },
                )
            })
        })
    }

    fn list_manifests(&self) -> BoxFuture<'_, Result<Vec<ManifestRef>>> {
        Box::pin(async move {
            let dir = self.location.path(MANIFESTS_DIR);
            let listing = self
                .location
                .store()
                .list_with_delimiter(Some(&dir))
                .await
                .map_err(|e| Error::store("list", self.location.display_url(MANIFESTS_DIR), e))?;
            let mut refs: Vec<ManifestRef> = listing
                .common_prefixes
                .iter()
                .filter_map(|p| {
                    let name = p.filename()?;
                    let (published_at, run_id) = parse_manifest_dir_name(name).ok()?;
                    Some(ManifestRef {
                        url: self
                            .location
                            .display_url(&shardvec_core::layout::manifest_key(name)),
                        run_id: run_id.to_string(),
                        published_at,
                    })
                })
                .collect();
            refs.sort_by_key(|r| std::cmp::Reverse(r.published_at));
            Ok(refs)
        })
    }
}

/// What a write of `_CURRENT` may replace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Replace {
    /// Only a pointer to a manifest published no later than the new one
    /// (default, a publish): a writer finishing late never points
    /// `_CURRENT` back over a concurrent writer's newer publish
    /// ([`Error::NewerPublished`]).
    #[default]
    OlderOnly,
    /// Whatever `_CURRENT` names (a rollback, a forced publish).
    Any,
}

/// How many times a `_CURRENT` write starts over after another writer
/// changed `_CURRENT` between its read and its conditional PUT.
const CURRENT_WRITE_ATTEMPTS: usize = 5;

/// Points `_CURRENT` under `location` at `target`: the second phase of a
/// publish, and a rollback.
///
/// The PUT is conditional on the `_CURRENT` read just before it (its ETag
/// or version; "must not exist" when there was none), where the store
/// supports it (S3 and S3-compatible servers with `If-Match`, GCS, Azure,
/// memory): a writer that changed `_CURRENT` in between makes it start
/// over, re-checking `replace` against the new pointer. A store without
/// conditional updates (a local file system) gets a plain PUT after the
/// check, which leaves a short window between the two.
pub async fn set_current(
    location: &SnapshotLocation,
    target: &ManifestRef,
    replace: Replace,
) -> Result<()> {
    let pointer = CurrentPointer {
        manifest_ref: target.url.clone(),
        manifest_content_type: shardvec_core::current::MANIFEST_CONTENT_TYPE.to_string(),
        run_id: target.run_id.clone(),
        // Microseconds, as the reference writes timestamps.
        updated_at: chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 6),
        format_version: shardvec_core::current::CURRENT_FORMAT_VERSION,
    };
    let path = location.path(CURRENT_KEY);
    let url = || location.display_url(CURRENT_KEY);
    let body = Bytes::from(pointer.to_json().into_bytes());
    for _ in 0..CURRENT_WRITE_ATTEMPTS {
        let (current, mode) = read_current(location).await?;
        if let Some(current) = &current {
            let theirs = current.manifest_ref();
            if replace == Replace::OlderOnly
                && theirs.url != target.url
                && theirs.published_at > target.published_at
            {
                return Err(Error::NewerPublished {
                    prefix: location.url().to_string(),
                    current: theirs.url,
                    ours: target.url.clone(),
                });
            }
        }
        let put = |mode| {
            location
                .store()
                .put_opts(&path, body.clone().into(), PutOptions::from(mode))
        };
        match put(mode).await {
            Ok(_) => return Ok(()),
            // Changed since the read: read again and re-check.
            Err(
                object_store::Error::Precondition { .. }
                | object_store::Error::AlreadyExists { .. },
            ) => {
                tracing::debug!("_CURRENT changed during a publish; checking it again");
                continue;
            }
            Err(object_store::Error::NotImplemented { .. }) => {
                return put(PutMode::Overwrite)
                    .await
                    .map(|_| ())
                    .map_err(|e| Error::store("put", url(), e));
            }
            Err(e) => return Err(Error::store("put", url(), e)),
        }
    }
    Err(Error::store(
        "put",
        url(),
        object_store::Error::Precondition {
            path: path.to_string(),
            source: format!(
                "_CURRENT changed under every one of {CURRENT_WRITE_ATTEMPTS} conditional writes"
            )
            .into(),
        },
    ))
}

/// `_CURRENT` (if any) and the mode of a PUT replacing exactly what was
/// read: an update of its version, a create where there was none, a plain
/// overwrite when the store gave no version.
async fn read_current(location: &SnapshotLocation) -> Result<(Option<CurrentPointer>, PutMode)> {
    match location.store().get(&location.path(CURRENT_KEY)).await {
        Ok(got) => {
            let version = UpdateVersion {
                e_tag: got.meta.e_tag.clone(),
                version: got.meta.version.clone(),
            };
            let bytes = got
                .bytes()
                .await
                .map_err(|e| Error::store("get", location.display_url(CURRENT_KEY), e))?;
            // An unreadable pointer is replaced, as a missing one would be.
            let pointer = CurrentPointer::parse(&bytes).ok();
            let mode = if version.e_tag.is_some() || version.version.is_some() {
                PutMode::Update(version)
            } else {
                PutMode::Overwrite
            };
            Ok((pointer, mode))
        }
        Err(object_store::Error::NotFound { .. }) => Ok((None, PutMode::Create)),
        Err(e) => Err(Error::store("get", location.display_url(CURRENT_KEY), e)),
    }
}
