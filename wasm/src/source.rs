//! Where `Snapshot.open` gets a snapshot's objects: a
//! [`shardvec_core::snapshot::Source`] over the runtime's `fetch`, relative
//! to the URL the snapshot was opened at.
//!
//! The rules are the core's ([`shardvec_core::resolve`]), as in the native
//! reader: URLs recorded in a snapshot start with the prefix it was written
//! at (`s3_prefix`), so a copy served from anywhere else is read by
//! stripping that prefix and appending the rest to the URL it was opened
//! at; the manifest `_CURRENT` names is read from its `manifests/` segment
//! on. A recorded URL must not escape the snapshot: `..` and `.` segments,
//! percent-escapes (which a later URL parse would decode into `..`) and
//! backslashes are refused.
//!
//! Listing (for the fallback to older manifests, only needed when the
//! current manifest is unusable): the manifests given in `open`'s options,
//! or else an S3 `ListObjectsV2` request, path-style
//! ([`shardvec_core::snapshot::s3`]), which an S3-compatible server
//! answers; any other answer (a static file server's 404 or HTML page, a
//! CORS refusal) means "no listing".

use js_sys::Array;
use shardvec_core::snapshot::s3::ManifestListing;
use shardvec_core::snapshot::{Object, Source};
use shardvec_core::ManifestRef;
use wasm_bindgen::prelude::*;

use crate::error::Error;
use crate::http::fetch_bytes;
use crate::js::{absent, js_display, js_err, prop};

/// Default of `maxFallbackAttempts`: the native reader's default.
pub(crate) const DEFAULT_FALLBACK_ATTEMPTS: usize = 3;

/// Largest `maxFallbackAttempts` accepted.
const MAX_FALLBACK_ATTEMPTS: f64 = 1_000_000.0;

/// Most `ListObjectsV2` pages read (1000 manifests each): S3 lists oldest
/// first, so every page is read to find the newest.
const MAX_LIST_PAGES: usize = 100;

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

#[wasm_bindgen(typescript_custom_section)]
const TS_OPEN_OPTIONS: &str = r#"
/** Options of `Snapshot.open` (snake_case names work too). */
export interface OpenOptions {
  /**
   * The manifests to fall back to when the current one is unusable: their
   * URLs as recorded (`.../manifests/<timestamp>_run_id=<run>/manifest`) or
   * their keys (`manifests/<timestamp>_run_id=<run>/manifest`). Default: an
   * S3 `ListObjectsV2` listing of `baseUrl` (path-style), if its server
   * answers one.
   */
  manifests?: string[];
  /** Older manifests tried at most (default 3; 0 disables the fallback). */
  maxFallbackAttempts?: number;
}
"#;

/// `Snapshot.open`'s options.
pub(crate) struct OpenOptions {
    pub manifests: Option<Vec<ManifestRef>>,
    pub max_fallback_attempts: usize,
}

impl OpenOptions {
    pub(crate) fn from_js(v: &JsValue) -> Result<OpenOptions, JsError> {
        let mut o = OpenOptions {
            manifests: None,
            max_fallback_attempts: DEFAULT_FALLBACK_ATTEMPTS,
        };
        if absent(v) {
            return Ok(o);
        }
        if !v.is_object() || Array::is_array(v) {
            return Err(JsError::new("open options must be an object"));
        }
        let m = prop(v, "manifests", "manifests");
        if !absent(&m) {
            if !Array::is_array(&m) {
                return Err(JsError::new("manifests must be an array of manifest URLs"));
            }
            let refs = Array::from(&m)
                .iter()
                .enumerate()
                .map(|(i, u)| {
                    let url = u.as_string().ok_or_else(|| {
                        js_err(format!(
                            "manifests[{i}] must be a string, got {}",
                            js_display(&u)
                        ))
                    })?;
                    ManifestRef::from_url(&url).map_err(|e| js_err(format!("manifests[{i}]: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            o.manifests = Some(refs);
        }
        let n = prop(v, "maxFallbackAttempts", "max_fallback_attempts");
        if !absent(&n) {
            let a = n
                .as_f64()
                .filter(|a| a.fract() == 0.0 && (0.0..=MAX_FALLBACK_ATTEMPTS).contains(a))
                .ok_or_else(|| {
                    js_err(format!(
                        "maxFallbackAttempts must be a non-negative integer, got {}",
                        js_display(&n)
                    ))
                })?;
            o.max_fallback_attempts = a as usize;
        }
        Ok(o)
    }
}

/// The objects of the snapshot at `base` (no trailing `/`), over `fetch`.
/// Errors are messages naming the URL (the HTTP status or network error),
/// or a refused recorded URL.
pub(crate) struct HttpSource {
    base: String,
    /// Manifests given by the caller, instead of a listing.
    manifests: Option<Vec<ManifestRef>>,
}

impl HttpSource {
    /// A source over `base` (no trailing `/`). Given manifests named by
    /// their key are named by their URL under `base`, as listed ones are
    /// (the URL a fallback snapshot reports as its `manifestRef`).
    pub(crate) fn new(base: String, manifests: Option<Vec<ManifestRef>>) -> HttpSource {
        let manifests = manifests.map(|refs| {
            refs.into_iter()
                .map(|mut r| {
                    if !r.url.contains("://") {
                        r.url = format!("{base}/{}", r.url.trim_start_matches('/'));
                    }
                    r
                })
                .collect()
        });
        HttpSource { base, manifests }
    }
}

impl Source for HttpSource {
    type Bytes = Vec<u8>;
    type Error = Error;

    async fn fetch(&self, object: Object<'_>) -> Result<Vec<u8>, Error> {
        let key = match object {
            Object::Manifest { url } => manifest_key(url).ok_or_else(|| {
                Error::Failed(
                    ForeignUrl {
                        url: url.to_string(),
                        prefix: self.base.clone(),
                    }
                    .to_string(),
                )
            })?,
            Object::Artefact {
                url,
                recorded_prefix,
                ..
            } => resolve_key(url, recorded_prefix, &self.base)
                .map_err(|e| Error::Failed(e.to_string()))?,
        };
        fetch_bytes(&format!("{}/{key}", self.base)).await
    }

    async fn list_manifests(&self) -> Result<Option<Vec<ManifestRef>>, Error> {
        if let Some(m) = &self.manifests {
            return Ok(Some(m.clone()));
        }
        let Some(listing) = ManifestListing::new(&self.base) else {
            return Ok(None);
        };
        let mut found = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_LIST_PAGES {
            // Any failure (status, network, CORS, not a listing) is "this
            // server does not list"; a partial listing would miss the
            // newest manifests, so it is none either.
            let Ok(body) = fetch_bytes(&listing.page_url(token.as_deref())).await else {
                return Ok(None);
            };
            let Some(page) = listing.parse_page(&body) else {
                return Ok(None);
            };
            found.extend(page.manifests);
            match page.next {
                None => return Ok(Some(found)),
                Some(t) => token = Some(t),
            }
        }
        Ok(None)
    }
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
