//! Where a snapshot's recorded URLs point, relative to the prefix it was
//! opened at. One implementation for the native reader and the wasm package.
//!
//! URLs recorded in a snapshot start with the prefix it was written at (the
//! manifest's `s3_prefix`); a copy served from anywhere else is read by
//! stripping that prefix and appending the rest to the prefix it was opened
//! at. A recorded URL must not escape the snapshot: `..` and `.` segments,
//! percent-escapes (which a later URL parse would decode into `..`) and
//! backslashes are refused.

/// Whether a relative key could leave the snapshot prefix.
pub fn escapes(rel: &str) -> bool {
    rel.split('/').any(|s| s == ".." || s == ".") || rel.contains('%') || rel.contains('\\')
}

/// The key (relative to the snapshot prefix, no leading `/`) of a URL
/// recorded in the snapshot. It must start with `recorded_prefix` (the
/// manifest's `s3_prefix`) or with `opened_at` (the prefix the snapshot
/// was opened at), at a segment boundary, and must not escape. `None`:
/// the URL is foreign.
pub fn resolve_key<'a>(
    recorded_url: &'a str,
    recorded_prefix: &str,
    opened_at: &str,
) -> Option<&'a str> {
    let rel = [
        recorded_prefix.trim_end_matches('/'),
        opened_at.trim_end_matches('/'),
    ]
    .iter()
    .filter(|p| !p.is_empty())
    .find_map(|p| {
        recorded_url
            .strip_prefix(p)
            .filter(|rest| rest.is_empty() || rest.starts_with('/'))
    })?
    .trim_start_matches('/');
    (!escapes(rel)).then_some(rel)
}

/// The key of the manifest a `_CURRENT` pointer names: everything from its
/// `manifests/` segment on, so a copied snapshot's pointer (which names the
/// original bucket) resolves under the copy. `None` if the URL has no such
/// segment or could escape the prefix.
pub fn manifest_key(url: &str) -> Option<&str> {
    let key = url
        .rfind("/manifests/")
        .map(|i| &url[i + 1..])
        .or_else(|| url.strip_prefix("manifests/").map(|_| url))?;
    (!escapes(key)).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_urls_resolve_only_inside_the_snapshot() {
        let r = |u| resolve_key(u, "s3://fixtures/case", "file:///copy");
        assert_eq!(
            r("s3://fixtures/case/shards/db=00000"),
            Some("shards/db=00000")
        );
        assert_eq!(r("file:///copy/a"), Some("a"));
        assert_eq!(r("s3://fixtures/casex/x"), None);
        assert_eq!(r("s3://other/case/x"), None);
        assert_eq!(r("s3://fixtures/case/../x"), None);
        assert_eq!(r("s3://fixtures/case/%2e%2e/x"), None);
        assert_eq!(r("s3://fixtures/case/a\\b"), None);
        assert_eq!(
            manifest_key("s3://b/p/manifests/t_run_id=r/manifest"),
            Some("manifests/t_run_id=r/manifest")
        );
        assert_eq!(
            manifest_key("manifests/x/manifest"),
            Some("manifests/x/manifest")
        );
        assert_eq!(manifest_key("s3://b/p/other/x"), None);
        assert_eq!(manifest_key("s3://b/p/manifests/../../x/manifest"), None);
    }
}
