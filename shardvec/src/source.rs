//! The object-store side of loading a snapshot. What to fetch, in which
//! order, and when to fall back to an older manifest is decided once, in
//! [`shardvec_core::snapshot::load`] (shared with the wasm package);
//! [`StoreSource`] only answers its requests from a [`SnapshotLocation`]
//! and a [`ManifestStore`], and [`load`] maps its errors to this crate's.

use bytes::Bytes;
use object_store::ObjectStoreExt;
use shardvec_core::snapshot::{self, LoadError, Loaded, Object};
use shardvec_core::ManifestRef;

use crate::error::{Error, Result};
use crate::location::SnapshotLocation;
use crate::manifest_store::ManifestStore;

/// Manifests from a [`ManifestStore`], artefacts from the snapshot's
/// location (recorded URLs resolved against it).
pub(crate) struct StoreSource<'a> {
    pub(crate) location: &'a SnapshotLocation,
    pub(crate) manifests: &'a dyn ManifestStore,
}

impl StoreSource<'_> {
    async fn get(&self, url: &str, recorded_prefix: &str) -> Result<Bytes> {
        let key = self.location.resolve(url, recorded_prefix)?;
        let store = self.location.store();
        let path = self.location.path(&key);
        let fail = |e| Error::store("get", self.location.display_url(&key), e);
        store
            .get(&path)
            .await
            .map_err(fail)?
            .bytes()
            .await
            .map_err(fail)
    }
}

impl snapshot::Source for StoreSource<'_> {
    type Bytes = Bytes;
    type Error = Error;

    async fn fetch(&self, object: Object<'_>) -> Result<Bytes> {
        match object {
            Object::Manifest { url } => self.manifests.load_manifest(url).await,
            Object::Artefact {
                url,
                recorded_prefix,
                ..
            } => self.get(url, recorded_prefix).await,
        }
    }

    async fn list_manifests(&self) -> Result<Option<Vec<ManifestRef>>> {
        self.manifests.list_manifests().await.map(Some)
    }

    fn skipped(&self, manifest_ref: &ManifestRef, error: &LoadError<Error>) {
        tracing::warn!(manifest = %manifest_ref.url, error = %error, "manifest unusable; trying an older one");
    }
}

/// Loads the manifest `current` names, with its routing artefacts and
/// router; when it is unusable, up to `max_fallback_attempts` older ones
/// (see [`shardvec_core::snapshot::load`] for the rules).
pub(crate) async fn load(
    location: &SnapshotLocation,
    manifests: &dyn ManifestStore,
    current: &ManifestRef,
    max_fallback_attempts: usize,
) -> Result<Loaded<Bytes>> {
    let source = StoreSource {
        location,
        manifests,
    };
    let loaded = snapshot::load(&source, current, max_fallback_attempts)
        .await
        .map_err(|e| match e {
            LoadError::Source(e) => e,
            LoadError::Manifest { url, source } => Error::Manifest { url, source },
            LoadError::Artefact { url, source, .. } => Error::Artefact { url, source },
            LoadError::Router { source, .. } => Error::Core(source),
        })?;
    if loaded.manifest_ref.url != current.url {
        tracing::warn!(manifest = %loaded.manifest_ref.url, "serving an older manifest");
    }
    Ok(loaded)
}

/// Checks that `target` parses and routes with its artefacts (a rollback
/// target is checked this way before `_CURRENT` moves).
pub(crate) async fn check(
    location: &SnapshotLocation,
    manifests: &dyn ManifestStore,
    target: &ManifestRef,
) -> Result<()> {
    load(location, manifests, target, 0).await.map(|_| ())
}
