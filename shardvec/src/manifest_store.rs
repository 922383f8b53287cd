//! Where `_CURRENT` and manifests are read from (and, for writers, written).
//!
//! [`ManifestStore`] is one small trait so a deployment can keep manifests
//! elsewhere (a database, a config service); [`ObjectManifestStore`], on the
//! snapshot's own object store, is the default.

use bytes::Bytes;
use futures::future::BoxFuture;
use object_store::{ObjectStore, ObjectStoreExt};
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

/// Points `_CURRENT` under `location` at `manifest_url`: the second phase
/// of a publish, and a rollback.
pub async fn set_current(
    location: &SnapshotLocation,
    manifest_url: &str,
    run_id: &str,
) -> Result<()> {
    let pointer = CurrentPointer {
        manifest_ref: manifest_url.to_string(),
        manifest_content_type: shardvec_core::current::MANIFEST_CONTENT_TYPE.to_string(),
        run_id: run_id.to_string(),
        // Microseconds, as the reference writes timestamps.
        updated_at: chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 6),
        format_version: shardvec_core::current::CURRENT_FORMAT_VERSION,
    };
    location
        .store()
        .put(
            &location.path(CURRENT_KEY),
            pointer.to_json().into_bytes().into(),
        )
        .await
        .map(|_| ())
        .map_err(|e| Error::store("put", location.display_url(CURRENT_KEY), e))
}
