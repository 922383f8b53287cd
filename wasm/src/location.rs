//! Where a snapshot's objects are, relative to the URL it was opened at.
//!
//! The same rules as the native reader (`shardvec::SnapshotLocation::resolve`
//! and `ObjectManifestStore::manifest_key`): URLs recorded in a snapshot
//! start with the prefix it was written at (`s3_prefix`), so a copy served
//! from anywhere else is read by stripping that prefix and appending the
//! rest to the URL it was opened at. A recorded URL must not escape the
//! snapshot: `..` and `.` segments, percent-escapes (which a later URL
//! parse would decode into `..`) and backslashes are refused.

/// A recorded URL that lies outside the snapshot (the native reader's
/// `ForeignUrl` error, with the same message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignUrl {
    /// The URL.
    pub url: String,
    /// The prefix it should have started with.
    pub prefix: String,
}

impl core::fmt::Display for ForeignUrl {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "recorded URL {} is outside the snapshot prefix {}",
            self.url, self.prefix
        )
    }
}

/// The key (relative to the snapshot prefix) of a URL recorded in the
/// snapshot ([`shardvec_core::resolve::resolve_key`]): it must start with
/// `recorded_prefix` (the manifest's `s3_prefix`) or with `base` (the URL
/// the snapshot was opened at).
pub fn resolve_key(
    recorded_url: &str,
    recorded_prefix: &str,
    base: &str,
) -> Result<String, ForeignUrl> {
    shardvec_core::resolve::resolve_key(recorded_url, recorded_prefix, base)
        .map(str::to_string)
        .ok_or_else(|| ForeignUrl {
            url: recorded_url.to_string(),
            prefix: recorded_prefix.to_string(),
        })
}

/// The key of the manifest named by `_CURRENT`
/// ([`shardvec_core::resolve::manifest_key`]).
pub fn manifest_key(url: &str) -> Option<String> {
    shardvec_core::resolve::manifest_key(url).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_recorded_urls_against_the_opened_prefix() {
        let p = "s3://fixtures/case";
        let base = "http://127.0.0.1:8080/copy";
        let ok = |u: &str| resolve_key(u, p, base);
        assert_eq!(
            ok("s3://fixtures/case/shards/db=00000").unwrap(),
            "shards/db=00000"
        );
        assert_eq!(ok("http://127.0.0.1:8080/copy/a/b").unwrap(), "a/b");
        assert_eq!(
            resolve_key("s3://fixtures/case/x", "s3://fixtures/case/", "").unwrap(),
            "x"
        );
        for bad in [
            "s3://other/case/x",
            "s3://fixtures/casex/x",
            "s3://fixtures/case/../x",
            "s3://fixtures/case/./x",
            "s3://fixtures/case/%2e%2e/x",
            "s3://fixtures/case/a\\..\\b",
            "http://127.0.0.1:8080/copyx/a",
        ] {
            let e = ok(bad).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("recorded URL {bad} is outside the snapshot prefix {p}")
            );
        }
    }

    #[test]
    fn manifest_keys() {
        let u = "s3://fixtures/c/manifests/2026-11-21T18:28:06.647893Z_run_id=r/manifest";
        assert_eq!(
            manifest_key(u).unwrap(),
            "manifests/2026-11-21T18:28:06.647893Z_run_id=r/manifest"
        );
        assert_eq!(
            manifest_key("manifests/x/manifest").unwrap(),
            "manifests/x/manifest"
        );
        assert!(manifest_key("s3://b/p/other/x").is_none());
        assert!(manifest_key("s3://b/p/manifests/../../x/manifest").is_none());
        assert!(manifest_key("s3://b/p/manifests/%2e%2e/manifest").is_none());
    }
}
