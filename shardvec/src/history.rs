//! A snapshot prefix's publish history: every manifest it holds, which one
//! `_CURRENT` names, and rollback (pointing `_CURRENT` at an older one).
//!
//! Rollback checks its target before touching `_CURRENT`: the manifest must
//! be listed under the prefix and parse; its routing artefacts must load.
//! A failed check leaves `_CURRENT` as it was.

use serde::Serialize;
use shardvec_core::ManifestRef;

use crate::error::{Error, Result};
use crate::location::SnapshotLocation;
use crate::manifest_store::{ManifestStore, ObjectManifestStore, Replace};

/// One published manifest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryEntry {
    /// The manifest's URL (under the prefix as opened).
    pub manifest_url: String,
    /// Its run.
    pub run_id: String,
    /// When it was published (from its folder name).
    pub published_at: chrono::DateTime<chrono::Utc>,
    /// Whether `_CURRENT` names it.
    pub current: bool,
}

/// What to roll back to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RollbackTarget {
    /// The newest manifest of this run.
    RunId(String),
    /// A manifest URL (recorded or under the opened prefix).
    ManifestUrl(String),
}

impl RollbackTarget {
    /// A URL when `s` has a scheme or ends in `/manifest`, a run id
    /// otherwise.
    pub fn parse(s: &str) -> RollbackTarget {
        if s.contains("://") || s.ends_with("/manifest") {
            RollbackTarget::ManifestUrl(s.to_string())
        } else {
            RollbackTarget::RunId(s.to_string())
        }
    }
}

/// Every manifest under the prefix, newest first.
pub async fn history(location: &SnapshotLocation) -> Result<Vec<HistoryEntry>> {
    let store = ObjectManifestStore::new(location.clone());
    let current = store.load_current().await?;
    let current_key = current
        .as_ref()
        .and_then(|c| ObjectManifestStore::manifest_key(&c.manifest_ref).map(str::to_string));
    Ok(store
        .list_manifests()
        .await?
        .into_iter()
        .map(|r| HistoryEntry {
            current: current_key.is_some()
                && ObjectManifestStore::manifest_key(&r.url) == current_key.as_deref(),
            manifest_url: r.url,
            run_id: r.run_id,
            published_at: r.published_at,
        })
        .collect())
}

/// Points `_CURRENT` at `target` after checking it is readable. Returns the
/// manifest now current.
pub async fn rollback(location: &SnapshotLocation, target: &RollbackTarget) -> Result<ManifestRef> {
    let store = ObjectManifestStore::new(location.clone());
    let listed = store.list_manifests().await?;
    let found = match target {
        RollbackTarget::RunId(run) => listed.into_iter().find(|r| &r.run_id == run),
        RollbackTarget::ManifestUrl(url) => {
            let key = ObjectManifestStore::manifest_key(url);
            listed
                .into_iter()
                .find(|r| key.is_some() && ObjectManifestStore::manifest_key(&r.url) == key)
        }
    };
    let target_ref = found.ok_or_else(|| {
        Error::InvalidArgument(format!(
            "no manifest for {} under {}",
            match target {
                RollbackTarget::RunId(r) => format!("run {r}"),
                RollbackTarget::ManifestUrl(u) => u.clone(),
            },
            location.url()
        ))
    })?;
    // Readable: parses, its artefacts load and it routes.
    crate::source::check(location, &store, &target_ref).await?;
    // A rollback goes back in time on purpose.
    crate::manifest_store::set_current(location, &target_ref, Replace::Any).await?;
    Ok(target_ref)
}
