//! A snapshot folder on local disk.
//!
//! The folder holds the snapshot's objects under their keys (`_CURRENT`,
//! `manifests/...`, `vector_meta/...`, `shards/...`), as a copy of an object
//! store prefix would. URLs recorded in the snapshot start with the prefix
//! the writer used (`build_meta.s3_prefix`); they are resolved against the
//! folder instead, so copies of a snapshot work wherever they are.

use std::path::{Path, PathBuf};

use shardvec_core::npy::Matrix;
use shardvec_core::{
    CurrentPointer, Manifest, ManifestRef, Router, RoutingArtefacts, SnapshotInfo,
};

/// Errors of the `shardvec` crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading a file failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A recorded URL is not under the snapshot's recorded prefix.
    #[error("recorded URL {url} is outside the snapshot prefix {prefix}")]
    ForeignUrl {
        /// The URL.
        url: String,
        /// The recorded prefix.
        prefix: String,
    },
    /// Parsing or routing failed.
    #[error(transparent)]
    Core(#[from] shardvec_core::Error),
}

/// A snapshot read from a local folder, with its router.
#[derive(Debug)]
pub struct LocalSnapshot {
    /// The folder.
    pub root: PathBuf,
    /// The live manifest's ref.
    pub manifest_ref: ManifestRef,
    /// The parsed manifest.
    pub manifest: Manifest,
    /// The router built from the manifest and its artefacts.
    pub router: Router,
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

impl LocalSnapshot {
    /// Opens the snapshot in `root` through its `_CURRENT` pointer.
    pub fn open(root: impl Into<PathBuf>) -> Result<LocalSnapshot, Error> {
        let root = root.into();
        let current = CurrentPointer::parse(&read(&root.join("_CURRENT"))?)?;
        let manifest_ref = current.manifest_ref();
        // The manifest URL is `<prefix>/manifests/<name>/manifest`.
        let key = manifest_ref
            .url
            .rfind("/manifests/")
            .map(|i| &manifest_ref.url[i + 1..])
            .ok_or_else(|| Error::ForeignUrl {
                url: manifest_ref.url.clone(),
                prefix: "<prefix>/manifests/".into(),
            })?;
        let manifest = Manifest::parse(&read(&root.join(key))?)?;
        let prefix = manifest.build.s3_prefix.trim_end_matches('/').to_string();
        let local = |url: &str| -> Result<PathBuf, Error> {
            url.strip_prefix(&prefix)
                .map(|rel| root.join(rel.trim_start_matches('/')))
                .ok_or_else(|| Error::ForeignUrl {
                    url: url.into(),
                    prefix: prefix.clone(),
                })
        };
        let load = |url: &Option<String>, name: &str| -> Result<Option<Matrix>, Error> {
            match url {
                Some(u) => Ok(Some(Matrix::from_npy(&read(&local(u)?)?, name)?)),
                None => Ok(None),
            }
        };
        let artefacts = RoutingArtefacts {
            centroids: load(&manifest.vector.centroids_ref, "centroids.npy")?,
            hyperplanes: load(&manifest.vector.hyperplanes_ref, "hyperplanes.npy")?,
        };
        let router = Router::new(&manifest, artefacts)?;
        Ok(LocalSnapshot {
            root,
            manifest_ref,
            manifest,
            router,
        })
    }

    /// Snapshot facts.
    pub fn info(&self) -> SnapshotInfo {
        self.manifest.snapshot_info(&self.manifest_ref.url)
    }
}
