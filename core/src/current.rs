//! The `_CURRENT` pointer and manifest directory names.
//!
//! `_CURRENT` is a small JSON object naming the live manifest. Manifests live
//! at `manifests/<timestamp>_run_id=<run>/manifest`, where the timestamp is
//! UTC `YYYY-MM-DDTHH:MM:SS.ffffffZ`, so names sort by publish time. Both
//! sources lead to a [`ManifestRef`]: the manifest URL, its run and when it
//! was published.

use alloc::string::{String, ToString};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The content type recorded in `_CURRENT` for SQLite manifests.
pub const MANIFEST_CONTENT_TYPE: &str = "application/x-sqlite3";
/// The `_CURRENT` format version this crate writes and accepts.
pub const CURRENT_FORMAT_VERSION: u32 = 1;
/// The separator between timestamp and run id in manifest directory names.
const RUN_ID_SEP: &str = "_run_id=";

/// The `_CURRENT` object.
///
/// Fields are in sorted order: serialised in that order, the JSON has the
/// reference's key order (Python's `sort_keys=True`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentPointer {
    /// Pointer format (1).
    pub format_version: u32,
    /// `application/x-sqlite3`.
    pub manifest_content_type: String,
    /// Full URL of the manifest object.
    pub manifest_ref: String,
    /// Run that produced the manifest.
    pub run_id: String,
    /// When `_CURRENT` was written.
    pub updated_at: DateTime<Utc>,
}

impl CurrentPointer {
    /// Parses and validates a `_CURRENT` object.
    pub fn parse(bytes: &[u8]) -> Result<CurrentPointer> {
        let p: CurrentPointer =
            serde_json::from_slice(bytes).map_err(|e| Error::InvalidCurrent(e.to_string()))?;
        if p.format_version != CURRENT_FORMAT_VERSION {
            return Err(Error::InvalidCurrent(alloc::format!(
                "format_version {} is not {CURRENT_FORMAT_VERSION}",
                p.format_version
            )));
        }
        if p.manifest_ref.is_empty() {
            return Err(Error::InvalidCurrent("manifest_ref is empty".to_string()));
        }
        if p.manifest_content_type != MANIFEST_CONTENT_TYPE {
            return Err(Error::InvalidCurrent(alloc::format!(
                "manifest_content_type `{}` is not `{MANIFEST_CONTENT_TYPE}`",
                p.manifest_content_type
            )));
        }
        Ok(p)
    }

    /// Serialises the pointer as the reference writes it (compact JSON).
    pub fn to_json(&self) -> String {
        // Serialising plain strings, a u32 and a timestamp cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The manifest this pointer names. `published_at` comes from the
    /// manifest's directory name when it follows the layout, otherwise from
    /// `updated_at`.
    pub fn manifest_ref(&self) -> ManifestRef {
        let published_at = manifest_dir_of(&self.manifest_ref)
            .and_then(|dir| parse_manifest_dir_name(dir).ok())
            .map(|(ts, _)| ts)
            .unwrap_or(self.updated_at);
        ManifestRef {
            url: self.manifest_ref.clone(),
            run_id: self.run_id.clone(),
            published_at,
        }
    }
}

/// A published manifest: where it is, which run wrote it and when.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ManifestRef {
    /// Full URL of the manifest object.
    pub url: String,
    /// Run that produced it.
    pub run_id: String,
    /// Publish time.
    pub published_at: DateTime<Utc>,
}

impl ManifestRef {
    /// Builds a ref from a manifest object URL that follows the layout
    /// (`.../manifests/<timestamp>_run_id=<run>/manifest`).
    pub fn from_url(url: &str) -> Result<ManifestRef> {
        let dir = manifest_dir_of(url).ok_or_else(|| Error::InvalidManifestName {
            name: url.to_string(),
            reason: "expected `.../<timestamp>_run_id=<run>/manifest`",
        })?;
        let (published_at, run_id) = parse_manifest_dir_name(dir)?;
        Ok(ManifestRef {
            url: url.to_string(),
            run_id: run_id.to_string(),
            published_at,
        })
    }

    /// A `_CURRENT` pointer naming this manifest (`updated_at` is the
    /// publish time): what a host serves as the pointer of the manifest it
    /// serves, which may lag the store's `_CURRENT`.
    pub fn to_current(&self) -> CurrentPointer {
        CurrentPointer {
            manifest_ref: self.url.clone(),
            manifest_content_type: MANIFEST_CONTENT_TYPE.to_string(),
            run_id: self.run_id.clone(),
            updated_at: self.published_at,
            format_version: CURRENT_FORMAT_VERSION,
        }
    }
}

/// The directory name of a manifest object URL (the path segment before
/// the final `manifest`).
fn manifest_dir_of(url: &str) -> Option<&str> {
    let rest = url.strip_suffix("/manifest")?;
    Some(rest.rsplit('/').next().unwrap_or(rest))
}

/// Splits `<timestamp>_run_id=<run>` into its publish time and run id.
pub fn parse_manifest_dir_name(name: &str) -> Result<(DateTime<Utc>, &str)> {
    let bad = |reason| Error::InvalidManifestName {
        name: name.to_string(),
        reason,
    };
    let (ts, run_id) = name
        .split_once(RUN_ID_SEP)
        .ok_or_else(|| bad("missing `_run_id=`"))?;
    if run_id.is_empty() || run_id.contains('/') {
        return Err(bad("empty or invalid run id"));
    }
    let ts = DateTime::parse_from_rfc3339(ts)
        .map_err(|_| bad("timestamp is not RFC 3339"))?
        .with_timezone(&Utc);
    Ok((ts, run_id))
}

/// Formats a publish time as the manifest directory name prefix
/// (`YYYY-MM-DDTHH:MM:SS.ffffffZ`).
pub fn format_manifest_timestamp(ts: &DateTime<Utc>) -> String {
    ts.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// The manifest directory name for a publish: `<timestamp>_run_id=<run>`.
pub fn manifest_dir_name(ts: &DateTime<Utc>, run_id: &str) -> String {
    let mut s = format_manifest_timestamp(ts);
    s.push_str(RUN_ID_SEP);
    s.push_str(run_id);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_names_round_trip() {
        let name = "2026-11-21T18:28:06.647893Z_run_id=934f4c6e-b15e";
        let (ts, run) = parse_manifest_dir_name(name).unwrap();
        assert_eq!(run, "934f4c6e-b15e");
        assert_eq!(manifest_dir_name(&ts, run), name);
        assert!(parse_manifest_dir_name("2026-11-21_run_id=x").is_err());
        assert!(parse_manifest_dir_name("2026-11-21T18:28:06.647893Z").is_err());
    }

    #[test]
    fn current_rejects_bad_pointers() {
        assert!(CurrentPointer::parse(b"{}").is_err());
        assert!(CurrentPointer::parse(b"not json").is_err());
        let ok = br#"{"format_version":1,"manifest_content_type":"application/x-sqlite3","manifest_ref":"s3://b/p/manifests/2026-11-21T18:28:06.647893Z_run_id=r/manifest","run_id":"r","updated_at":"2026-11-21T18:28:06.651846Z"}"#;
        let p = CurrentPointer::parse(ok).unwrap();
        // Written back byte for byte as the reference wrote it.
        assert_eq!(p.to_json().as_bytes(), &ok[..]);
        let r = p.manifest_ref();
        assert_eq!(
            format_manifest_timestamp(&r.published_at),
            "2026-11-21T18:28:06.647893Z"
        );
        assert_eq!(ManifestRef::from_url(&r.url).unwrap(), r);
        let v2 = alloc::string::String::from_utf8_lossy(ok)
            .replace("\"format_version\":1", "\"format_version\":2");
        assert!(CurrentPointer::parse(v2.as_bytes()).is_err());
    }
}
