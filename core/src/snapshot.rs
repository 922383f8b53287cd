//! Loading a snapshot: which objects, in which order, and the fallback to
//! older manifests — written once, without I/O, for every target.
//!
//! A loader starts from the manifest `_CURRENT` names (a [`ManifestRef`])
//! and asks a [`Source`] for objects: the manifest, then the routing
//! artefacts the manifest records (`centroids.npy` for CLUSTER,
//! `hyperplanes.npy` for LSH, fetched concurrently). The source maps each
//! [`Object`] to its own I/O — an object store key, an HTTP URL, a host's
//! routing endpoint — and [`load`] parses, validates and builds the
//! [`Router`].
//!
//! ## Fallback
//!
//! [`load`] keeps the native reader's rules (and the reference's):
//!
//! - A **snapshot** error on the current manifest — it does not parse, an
//!   artefact does not parse, or the router rejects manifest and
//!   artefacts — falls back to older manifests.
//! - A **source** error on the current manifest or its artefacts does not:
//!   an unreachable store must not silently serve an old publish.
//! - Candidates are the listed manifests published strictly before the
//!   current one (after a rollback, the manifest rolled back from must not
//!   come back), other than the current URL, newest first, at most
//!   `max_fallback_attempts` of them. For those, any error skips to the
//!   next.
//! - If none loads (or the source cannot list), the current manifest's
//!   error is returned. `max_fallback_attempts == 0` disables the fallback
//!   and the listing.
//!
//! The functions are plain `async fn`s with no runtime and no `Send`
//! bounds: a source whose futures are `Send` (the native object store
//! source) gets a `Send` future from [`load`], a single-threaded one (the
//! wasm `fetch` source) gets one that is not.
//!
//! [`s3`] lists manifests over plain HTTP from an S3-compatible server
//! (`ListObjectsV2`), for sources that have no listing of their own.

use alloc::string::String;
use alloc::vec::Vec;
use core::future::{poll_fn, Future};
use core::pin::pin;
use core::task::Poll;

use crate::current::ManifestRef;
use crate::error::Error;
use crate::layout::{CENTROIDS_FILE, HYPERPLANES_FILE};
use crate::manifest::Manifest;
use crate::npy::Matrix;
use crate::router::{Router, RoutingArtefacts};

/// What a loader asks its source for. The source resolves it to its own
/// I/O (an object store key, a URL, a host endpoint).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Object<'a> {
    /// The manifest a `_CURRENT` pointer or a listing names, by its
    /// recorded URL ([`ManifestRef::url`]); usually resolved with
    /// [`resolve::manifest_key`](crate::resolve::manifest_key).
    Manifest {
        /// The manifest URL.
        url: &'a str,
    },
    /// A routing artefact recorded in a manifest; usually resolved with
    /// [`resolve::resolve_key`](crate::resolve::resolve_key).
    Artefact {
        /// Its recorded URL (`custom.vector.centroids_ref` /
        /// `hyperplanes_ref`).
        url: &'a str,
        /// The manifest's recorded prefix (`build_meta.s3_prefix`).
        recorded_prefix: &'a str,
        /// The file name: [`CENTROIDS_FILE`] or [`HYPERPLANES_FILE`].
        file: &'static str,
    },
}

/// Where a loader's objects come from.
///
/// The futures carry no `Send` bound here; a source whose futures are
/// `Send` makes [`load`]'s future `Send`.
pub trait Source {
    /// The bytes of one object.
    type Bytes: AsRef<[u8]>;
    /// A source error: the object could not be fetched (store unreachable,
    /// object missing, URL refused).
    type Error;

    /// Fetches one object.
    fn fetch(&self, object: Object<'_>) -> impl Future<Output = Result<Self::Bytes, Self::Error>>;

    /// The published manifests, in any order, or `Ok(None)` when this
    /// source cannot list (plain HTTP without a listing, a host's routing
    /// files). Only called when the current manifest is unusable.
    fn list_manifests(&self)
        -> impl Future<Output = Result<Option<Vec<ManifestRef>>, Self::Error>>;

    /// Checks a manifest that parsed, before its artefacts are fetched.
    /// An `Err` is a source error (it does not fall back from the current
    /// manifest). Default: accept. A source that can be raced (a host may
    /// switch snapshots between two requests) rejects a manifest that is
    /// not the one `manifest_ref` names.
    fn check_manifest(
        &self,
        manifest_ref: &ManifestRef,
        manifest: &Manifest,
    ) -> Result<(), Self::Error> {
        let _ = (manifest_ref, manifest);
        Ok(())
    }

    /// Called when [`load`] passes over a manifest (the current one, then
    /// each candidate that failed) to try the next: for logs and metrics.
    /// Default: nothing.
    fn skipped(&self, manifest_ref: &ManifestRef, error: &LoadError<Self::Error>) {
        let _ = (manifest_ref, error);
    }
}

/// A manifest's router and the artefacts it was built from (parsed, with
/// their bytes).
#[derive(Debug)]
pub struct Routing<B> {
    /// The router.
    pub router: Router,
    /// `centroids.npy`, parsed, and its bytes.
    pub centroids: Option<(Matrix, B)>,
    /// `hyperplanes.npy`, parsed, and its bytes.
    pub hyperplanes: Option<(Matrix, B)>,
}

/// Why [`Routing::build`] failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RoutingError {
    /// An artefact does not parse.
    #[error("{source}")]
    Artefact {
        /// [`CENTROIDS_FILE`] or [`HYPERPLANES_FILE`].
        file: &'static str,
        /// The parse error.
        source: Error,
    },
    /// The router rejects manifest and artefacts (an artefact the strategy
    /// needs is missing, has the wrong shape or non-finite values; the CEL
    /// expression does not compile).
    #[error(transparent)]
    Router(Error),
}

impl RoutingError {
    /// The core error.
    pub fn into_inner(self) -> Error {
        match self {
            RoutingError::Artefact { source, .. } | RoutingError::Router(source) => source,
        }
    }
}

impl<B: AsRef<[u8]>> Routing<B> {
    /// The last, I/O-free step of loading: parses the artefacts at hand
    /// and builds the router of `manifest`. Artefacts are parsed whether or
    /// not the manifest records them ([`load`] fetches only the recorded
    /// ones; a caller holding the files, such as the wasm
    /// `Snapshot.fromParts`, passes what it has); the strategy uses its own.
    pub fn build(
        manifest: &Manifest,
        centroids: Option<B>,
        hyperplanes: Option<B>,
    ) -> Result<Routing<B>, RoutingError> {
        let parse = |bytes: Option<B>, file: &'static str| match bytes {
            None => Ok(None),
            Some(b) => match Matrix::from_npy(b.as_ref(), file) {
                Ok(m) => Ok(Some((m, b))),
                Err(source) => Err(RoutingError::Artefact { file, source }),
            },
        };
        let centroids = parse(centroids, CENTROIDS_FILE)?;
        let hyperplanes = parse(hyperplanes, HYPERPLANES_FILE)?;
        let router = Router::new(
            manifest,
            RoutingArtefacts {
                centroids: centroids.as_ref().map(|(m, _)| m.clone()),
                hyperplanes: hyperplanes.as_ref().map(|(m, _)| m.clone()),
            },
        )
        .map_err(RoutingError::Router)?;
        Ok(Routing {
            router,
            centroids,
            hyperplanes,
        })
    }
}

/// A loaded snapshot: the manifest that loaded (the current one, or the
/// older one the fallback settled on), parsed, with its bytes and its
/// routing.
#[derive(Debug)]
pub struct Loaded<B> {
    /// The manifest that loaded; differs from the `current` given to
    /// [`load`] after a fallback.
    pub manifest_ref: ManifestRef,
    /// The parsed manifest.
    pub manifest: Manifest,
    /// Its bytes.
    pub manifest_bytes: B,
    /// Its router and artefacts.
    pub routing: Routing<B>,
}

/// Why [`load`] failed. Every variant but [`Source`](Self::Source) is a
/// snapshot error (the one that falls back).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LoadError<E> {
    /// The source failed to fetch an object (or refused it).
    #[error(transparent)]
    Source(E),
    /// The manifest does not parse or is invalid.
    #[error("manifest {url} cannot be read: {source}")]
    Manifest {
        /// The manifest URL.
        url: String,
        /// The parse error.
        source: Error,
    },
    /// A routing artefact does not parse.
    #[error("routing artefact {url}: {source}")]
    Artefact {
        /// Its recorded URL.
        url: String,
        /// [`CENTROIDS_FILE`] or [`HYPERPLANES_FILE`].
        file: &'static str,
        /// The parse error.
        source: Error,
    },
    /// The router rejects the manifest and its artefacts. The message is
    /// the core error's (as the readers have always reported it); `url`
    /// names the manifest.
    #[error("{source}")]
    Router {
        /// The manifest URL.
        url: String,
        /// The router's error.
        source: Error,
    },
}

impl<E> LoadError<E> {
    /// Whether this is a source error (which does not fall back).
    pub fn is_source(&self) -> bool {
        matches!(self, LoadError::Source(_))
    }

    /// Converts the source error.
    pub fn map_source<F>(self, f: impl FnOnce(E) -> F) -> LoadError<F> {
        match self {
            LoadError::Source(e) => LoadError::Source(f(e)),
            LoadError::Manifest { url, source } => LoadError::Manifest { url, source },
            LoadError::Artefact { url, file, source } => LoadError::Artefact { url, file, source },
            LoadError::Router { url, source } => LoadError::Router { url, source },
        }
    }
}

/// Loads the manifest `current` names and its routing, falling back to
/// older manifests as described in the [module documentation](self).
pub async fn load<S: Source>(
    source: &S,
    current: &ManifestRef,
    max_fallback_attempts: usize,
) -> Result<Loaded<S::Bytes>, LoadError<S::Error>> {
    let first = match load_one(source, current).await {
        Ok(loaded) => return Ok(loaded),
        Err(e) if e.is_source() || max_fallback_attempts == 0 => return Err(e),
        Err(e) => e,
    };
    source.skipped(current, &first);
    let Ok(Some(mut candidates)) = source.list_manifests().await else {
        return Err(first);
    };
    candidates.retain(|r| r.url != current.url && r.published_at < current.published_at);
    // Newest first; ties (one publish time, two runs) in a fixed order.
    candidates.sort_unstable_by(|a, b| (b.published_at, &b.url).cmp(&(a.published_at, &a.url)));
    candidates.dedup_by(|a, b| a.url == b.url);
    for r in candidates.iter().take(max_fallback_attempts) {
        match load_one(source, r).await {
            Ok(loaded) => return Ok(loaded),
            Err(e) => source.skipped(r, &e),
        }
    }
    Err(first)
}

/// Loads one manifest and its routing, without fallback.
async fn load_one<S: Source>(
    source: &S,
    manifest_ref: &ManifestRef,
) -> Result<Loaded<S::Bytes>, LoadError<S::Error>> {
    let url = manifest_ref.url.as_str();
    let manifest_bytes = source
        .fetch(Object::Manifest { url })
        .await
        .map_err(LoadError::Source)?;
    let manifest =
        Manifest::parse(manifest_bytes.as_ref()).map_err(|source| LoadError::Manifest {
            url: url.into(),
            source,
        })?;
    source
        .check_manifest(manifest_ref, &manifest)
        .map_err(LoadError::Source)?;
    let recorded_prefix = manifest.build.s3_prefix.as_str();
    let centroids_ref = manifest.vector.centroids_ref.as_deref();
    let hyperplanes_ref = manifest.vector.hyperplanes_ref.as_deref();
    let (centroids, hyperplanes) = join(
        fetch_artefact(source, centroids_ref, recorded_prefix, CENTROIDS_FILE),
        fetch_artefact(source, hyperplanes_ref, recorded_prefix, HYPERPLANES_FILE),
    )
    .await;
    // Source errors first: an unreachable store is never taken for a
    // corrupt snapshot.
    let centroids = centroids.map_err(LoadError::Source)?;
    let hyperplanes = hyperplanes.map_err(LoadError::Source)?;
    let routing = Routing::build(&manifest, centroids, hyperplanes).map_err(|e| match e {
        RoutingError::Artefact { file, source } => LoadError::Artefact {
            url: if file == CENTROIDS_FILE {
                centroids_ref
            } else {
                hyperplanes_ref
            }
            .unwrap_or(file)
            .into(),
            file,
            source,
        },
        RoutingError::Router(source) => LoadError::Router {
            url: url.into(),
            source,
        },
    })?;
    Ok(Loaded {
        manifest_ref: manifest_ref.clone(),
        manifest,
        manifest_bytes,
        routing,
    })
}

/// Fetches an artefact if the manifest records it.
async fn fetch_artefact<S: Source>(
    source: &S,
    url: Option<&str>,
    recorded_prefix: &str,
    file: &'static str,
) -> Result<Option<S::Bytes>, S::Error> {
    match url {
        None => Ok(None),
        Some(url) => source
            .fetch(Object::Artefact {
                url,
                recorded_prefix,
                file,
            })
            .await
            .map(Some),
    }
}

/// Runs two futures concurrently (no runtime needed): both outputs, once
/// both are done.
async fn join<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let mut a = pin!(a);
    let mut b = pin!(b);
    let mut out_a = None;
    let mut out_b = None;
    poll_fn(move |cx| {
        if out_a.is_none() {
            if let Poll::Ready(v) = a.as_mut().poll(cx) {
                out_a = Some(v);
            }
        }
        if out_b.is_none() {
            if let Poll::Ready(v) = b.as_mut().poll(cx) {
                out_b = Some(v);
            }
        }
        if out_a.is_some() && out_b.is_some() {
            if let (Some(x), Some(y)) = (out_a.take(), out_b.take()) {
                return Poll::Ready((x, y));
            }
        }
        Poll::Pending
    })
    .await
}

pub mod s3 {
    //! Listing a snapshot's manifests over plain HTTP from an S3-compatible
    //! server: a path-style `ListObjectsV2` request
    //! (`GET <origin>/<bucket>?list-type=2&prefix=<key prefix>manifests/&delimiter=/`)
    //! and its XML answer, without I/O.
    //!
    //! The answer is parsed by hand: only four elements of one fixed
    //! document shape are read (`CommonPrefixes/Prefix`, `Contents/Key`,
    //! `IsTruncated`, `NextContinuationToken`), and an XML crate would add
    //! a dependency (and, in the wasm package, its size) for that. The
    //! parser is strict where it matters: the document must be complete
    //! and well nested, its root must be `ListBucketResult`, and entities
    //! must be valid; anything else (an S3 error document, an HTML or JSON
    //! page, a truncated body) is "no listing".

    use alloc::format;
    use alloc::string::{String, ToString};
    use alloc::vec::Vec;

    use crate::current::{parse_manifest_dir_name, ManifestRef};
    use crate::layout;

    /// Deepest element nesting accepted (a listing nests 3 deep).
    const MAX_DEPTH: usize = 16;

    /// The manifest listing of a snapshot served, path-style, by an
    /// S3-compatible server at `<origin>/<bucket>/<key prefix>`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ManifestListing {
        /// `<origin>/<bucket>`: where `ListObjectsV2` is sent.
        bucket_url: String,
        /// The listed key prefix (decoded): `<key prefix>/manifests/`.
        prefix: String,
        /// The snapshot URL (no trailing `/`): listed manifests are
        /// `<base>/manifests/<dir>/manifest`.
        base: String,
    }

    /// One page of a listing.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ListPage {
        /// The manifests on this page (directories that are not
        /// `<timestamp>_run_id=<run>` are left out).
        pub manifests: Vec<ManifestRef>,
        /// The continuation token of the next page, if the listing is
        /// truncated.
        pub next: Option<String>,
    }

    impl ManifestListing {
        /// The listing of the snapshot at `base_url`, read path-style: the
        /// first path segment is the bucket, the rest the key prefix.
        /// `None` when the URL has no bucket segment, or has a query or a
        /// fragment.
        pub fn new(base_url: &str) -> Option<ManifestListing> {
            let base = base_url.trim_end_matches('/');
            if base.contains(['?', '#']) {
                return None;
            }
            let (scheme, rest) = base.split_once("://")?;
            let (authority, path) = rest.split_once('/')?;
            if scheme.is_empty() || authority.is_empty() {
                return None;
            }
            let (bucket, key) = path.split_once('/').unwrap_or((path, ""));
            if bucket.is_empty() {
                return None;
            }
            let mut prefix = percent_decode(key)?;
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(layout::MANIFESTS_DIR);
            prefix.push('/');
            Some(ManifestListing {
                bucket_url: format!("{scheme}://{authority}/{bucket}"),
                prefix,
                base: base.to_string(),
            })
        }

        /// The URL of one `ListObjectsV2` page (the first without a token).
        pub fn page_url(&self, continuation_token: Option<&str>) -> String {
            let mut url = format!(
                "{}?list-type=2&prefix={}&delimiter=%2F",
                self.bucket_url,
                percent_encode(&self.prefix)
            );
            if let Some(t) = continuation_token {
                url.push_str("&continuation-token=");
                url.push_str(&percent_encode(t));
            }
            url
        }

        /// Reads one page of the answer. `None` when the body is not a
        /// complete `ListBucketResult` document.
        pub fn parse_page(&self, body: &[u8]) -> Option<ListPage> {
            let text = core::str::from_utf8(body).ok()?;
            let text = text.strip_prefix('\u{feff}').unwrap_or(text);
            let mut dirs: Vec<String> = Vec::new();
            let mut truncated = false;
            let mut token = None;
            let root = walk(text, |path, value| match path {
                ["ListBucketResult", "CommonPrefixes", "Prefix"] => {
                    if let Some(dir) = value
                        .strip_prefix(self.prefix.as_str())
                        .and_then(|r| r.strip_suffix('/'))
                    {
                        dirs.push(dir.to_string());
                    }
                }
                // Servers that ignore the delimiter list the objects.
                ["ListBucketResult", "Contents", "Key"] => {
                    if let Some(dir) = value
                        .strip_prefix(self.prefix.as_str())
                        .and_then(|r| r.strip_suffix(layout::MANIFEST_FILE))
                        .and_then(|r| r.strip_suffix('/'))
                    {
                        dirs.push(dir.to_string());
                    }
                }
                ["ListBucketResult", "IsTruncated"] => truncated = value.trim() == "true",
                ["ListBucketResult", "NextContinuationToken"] => token = Some(value),
                _ => {}
            })?;
            if root != "ListBucketResult" {
                return None;
            }
            let mut manifests: Vec<ManifestRef> = Vec::new();
            for dir in &dirs {
                if dir.contains('/') {
                    continue;
                }
                let Ok((published_at, run_id)) = parse_manifest_dir_name(dir) else {
                    continue;
                };
                let url = format!("{}/{}", self.base, layout::manifest_key(dir));
                if manifests.iter().all(|m| m.url != url) {
                    manifests.push(ManifestRef {
                        url,
                        run_id: run_id.to_string(),
                        published_at,
                    });
                }
            }
            Some(ListPage {
                manifests,
                next: token.filter(|t| truncated && !t.is_empty()),
            })
        }
    }

    /// Walks an XML document, calling `on_close(path, text)` at the end of
    /// every element with the path of local names from the root and the
    /// element's text (entities decoded, CDATA included). Returns the root
    /// element's local name, or `None` if the document is malformed,
    /// incomplete or nested deeper than [`MAX_DEPTH`].
    fn walk<'x>(xml: &'x str, mut on_close: impl FnMut(&[&'x str], String)) -> Option<&'x str> {
        let mut stack: Vec<&'x str> = Vec::new();
        let mut root: Option<&'x str> = None;
        let mut text = String::new();
        let mut rest = xml;
        loop {
            let Some(lt) = rest.find('<') else {
                // The end: complete only with the root closed and nothing
                // but whitespace after it.
                return (stack.is_empty() && rest.trim().is_empty())
                    .then_some(root)
                    .flatten();
            };
            let (chunk, after) = rest.split_at(lt);
            if stack.is_empty() {
                if !chunk.trim().is_empty() {
                    return None;
                }
            } else {
                decode_into(chunk, &mut text)?;
            }
            rest = after;
            if let Some(r) = rest.strip_prefix("<?") {
                rest = &r[r.find("?>")? + 2..];
            } else if let Some(r) = rest.strip_prefix("<!--") {
                rest = &r[r.find("-->")? + 3..];
            } else if let Some(r) = rest.strip_prefix("<![CDATA[") {
                let end = r.find("]]>")?;
                if stack.is_empty() {
                    return None;
                }
                text.push_str(&r[..end]);
                rest = &r[end + 3..];
            } else if let Some(r) = rest.strip_prefix("<!") {
                // A DOCTYPE; one with an internal subset is refused.
                let end = r.find('>')?;
                if root.is_some() || r[..end].contains('[') {
                    return None;
                }
                rest = &r[end + 1..];
            } else if let Some(r) = rest.strip_prefix("</") {
                let end = r.find('>')?;
                let name = local_name(r[..end].trim_end())?;
                if stack.last() != Some(&name) {
                    return None;
                }
                on_close(&stack, core::mem::take(&mut text));
                stack.pop();
                rest = &r[end + 1..];
            } else {
                let r = &rest[1..];
                let end = tag_end(r)?;
                let (inner, empty) = match r[..end].strip_suffix('/') {
                    Some(inner) => (inner, true),
                    None => (&r[..end], false),
                };
                let name = local_name(inner.split(|c: char| c.is_ascii_whitespace()).next()?)?;
                if stack.is_empty() {
                    if root.is_some() {
                        return None;
                    }
                    root = Some(name);
                }
                if stack.len() >= MAX_DEPTH {
                    return None;
                }
                stack.push(name);
                text.clear();
                if empty {
                    on_close(&stack, String::new());
                    stack.pop();
                }
                rest = &r[end + 1..];
            }
        }
    }

    /// The index of the `>` ending a start tag (quotes respected).
    fn tag_end(s: &str) -> Option<usize> {
        let mut quote = None;
        for (i, c) in s.char_indices() {
            match (quote, c) {
                (None, '>') => return Some(i),
                (None, '<') => return None,
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                _ => {}
            }
        }
        None
    }

    /// The local part of a (possibly prefixed) element name.
    fn local_name(name: &str) -> Option<&str> {
        let local = name.rsplit(':').next().unwrap_or(name);
        let ok = !local.is_empty()
            && !local.contains(|c: char| {
                c.is_whitespace() || matches!(c, '<' | '>' | '&' | '"' | '\'' | '=' | '/')
            });
        ok.then_some(local)
    }

    /// Appends `chunk` to `out` with its entity and character references
    /// decoded; `None` for an unknown or unterminated reference.
    fn decode_into(chunk: &str, out: &mut String) -> Option<()> {
        let mut rest = chunk;
        while let Some(amp) = rest.find('&') {
            out.push_str(&rest[..amp]);
            let r = &rest[amp + 1..];
            let semi = r.find(';')?;
            let c = match &r[..semi] {
                "amp" => '&',
                "lt" => '<',
                "gt" => '>',
                "quot" => '"',
                "apos" => '\'',
                num => {
                    let n = num.strip_prefix('#')?;
                    let code = match n.strip_prefix('x') {
                        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                        None => n.parse::<u32>().ok()?,
                    };
                    char::from_u32(code)?
                }
            };
            out.push(c);
            rest = &r[semi + 1..];
        }
        out.push_str(rest);
        Some(())
    }

    /// Percent-encodes everything but RFC 3986 unreserved characters.
    fn percent_encode(s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        for b in s.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    }

    /// Decodes `%XX` escapes; `None` for a bad escape or invalid UTF-8.
    fn percent_decode(s: &str) -> Option<String> {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                let hex = core::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).ok()
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use alloc::vec;

        const LISTING: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>fixtures</Name>
  <Prefix>my snap/manifests/</Prefix>
  <KeyCount>4</KeyCount>
  <MaxKeys>1000</MaxKeys>
  <Delimiter>/</Delimiter>
  <IsTruncated>false</IsTruncated>
  <CommonPrefixes>
    <Prefix>my snap/manifests/2026-11-21T18:28:06.647893Z_run_id=a&amp;b/</Prefix>
  </CommonPrefixes>
  <CommonPrefixes><Prefix>my snap/manifests/2026-11-22T09:00:00.000001Z_run_id=&#x72;2/</Prefix></CommonPrefixes>
  <CommonPrefixes><Prefix>my snap/manifests/not-a-manifest/</Prefix></CommonPrefixes>
  <!-- a comment -->
  <CommonPrefixes><Prefix><![CDATA[my snap/manifests/2026-11-20T00:00:00.000000Z_run_id=c/]]></Prefix></CommonPrefixes>
</ListBucketResult>
"#;

        fn listing() -> ManifestListing {
            ManifestListing::new("http://127.0.0.1:9000/fixtures/my%20snap/").unwrap()
        }

        #[test]
        fn requests_are_path_style() {
            let l = listing();
            assert_eq!(
                l.page_url(None),
                "http://127.0.0.1:9000/fixtures?list-type=2&prefix=my%20snap%2Fmanifests%2F&delimiter=%2F"
            );
            assert_eq!(
                l.page_url(Some("a+b/=")),
                "http://127.0.0.1:9000/fixtures?list-type=2&prefix=my%20snap%2Fmanifests%2F&delimiter=%2F&continuation-token=a%2Bb%2F%3D"
            );
            let root = ManifestListing::new("https://s3.example/bucket").unwrap();
            assert_eq!(
                root.page_url(None),
                "https://s3.example/bucket?list-type=2&prefix=manifests%2F&delimiter=%2F"
            );
            for bad in [
                "https://s3.example",
                "https://s3.example/",
                "https://s3.example//x",
                "https://s3.example/b?x=1",
                "https://s3.example/b#f",
                "no-scheme/b/c",
                "https://s3.example/b/%zz",
            ] {
                assert_eq!(ManifestListing::new(bad), None, "{bad}");
            }
        }

        #[test]
        fn parses_a_listing_with_escapes() {
            let page = listing().parse_page(LISTING.as_bytes()).unwrap();
            let got: Vec<(&str, &str)> = page
                .manifests
                .iter()
                .map(|m| (m.url.as_str(), m.run_id.as_str()))
                .collect();
            assert_eq!(
                got,
                vec![
                    (
                        "http://127.0.0.1:9000/fixtures/my%20snap/manifests/2026-11-21T18:28:06.647893Z_run_id=a&b/manifest",
                        "a&b"
                    ),
                    (
                        "http://127.0.0.1:9000/fixtures/my%20snap/manifests/2026-11-22T09:00:00.000001Z_run_id=r2/manifest",
                        "r2"
                    ),
                    (
                        "http://127.0.0.1:9000/fixtures/my%20snap/manifests/2026-11-20T00:00:00.000000Z_run_id=c/manifest",
                        "c"
                    ),
                ]
            );
            assert_eq!(
                crate::current::format_manifest_timestamp(&page.manifests[0].published_at),
                "2026-11-21T18:28:06.647893Z"
            );
            assert_eq!(page.next, None);
        }

        #[test]
        fn pages_and_object_listings() {
            let body = "<ListBucketResult><IsTruncated>true</IsTruncated>\
                <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>\
                <Contents><Key>my snap/manifests/2026-11-21T18:28:06.647893Z_run_id=x/manifest</Key><Size>8192</Size></Contents>\
                <Contents><Key>my snap/manifests/2026-11-21T18:28:06.647893Z_run_id=x/other</Key></Contents>\
                <Contents><Key>elsewhere/manifests/2026-11-21T18:28:06.647893Z_run_id=y/manifest</Key></Contents>\
                <Contents><Key>my snap/manifests/a/2026-11-21T18:28:06.647893Z_run_id=z/manifest</Key></Contents>\
                <EncodingType/></ListBucketResult>";
            let page = listing().parse_page(body.as_bytes()).unwrap();
            assert_eq!(page.manifests.len(), 1);
            assert_eq!(page.manifests[0].run_id, "x");
            assert_eq!(
                page.next.as_deref(),
                Some("1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=")
            );
            // A token without IsTruncated=true is not followed.
            let body = "<ListBucketResult><NextContinuationToken>t</NextContinuationToken></ListBucketResult>";
            assert_eq!(listing().parse_page(body.as_bytes()).unwrap().next, None);
            // An empty listing is a listing.
            let empty = listing()
                .parse_page(b"<ListBucketResult xmlns='x'/>")
                .unwrap();
            assert!(empty.manifests.is_empty());
        }

        #[test]
        fn garbage_is_no_listing() {
            let l = listing();
            let cut = &LISTING[..LISTING.len() / 2];
            for bad in [
                cut,
                &LISTING[..LISTING.len() - 20],
                "",
                "not found",
                "{\"error\": 1}",
                "<!DOCTYPE html><html><body>not found</body></html>",
                "<?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code><Message>x</Message></Error>",
                "<ListBucketResult><Prefix>a &nbsp; b</Prefix></ListBucketResult>",
                "<ListBucketResult><Prefix>a & b</Prefix></ListBucketResult>",
                "<ListBucketResult><Prefix>x</Name></ListBucketResult>",
                "<ListBucketResult></ListBucketResult><ListBucketResult></ListBucketResult>",
                "<ListBucketResult></ListBucketResult>trailing",
                "<ListBucketResult><Prefix>&#xD800;</Prefix></ListBucketResult>",
                "<ListBucketResult><CommonPrefixes><![CDATA[x</CommonPrefixes></ListBucketResult>",
                "<ListBucketResult a=\"x>",
            ] {
                assert_eq!(l.parse_page(bad.as_bytes()), None, "{bad:?}");
            }
            assert_eq!(l.parse_page(&[0xff, 0xfe, b'<']), None);
            let deep = "<a>".repeat(100) + &"</a>".repeat(100);
            assert_eq!(l.parse_page(deep.as_bytes()), None);
            // Depth within bounds, but not a listing.
            let shallow = "<a>".repeat(5) + &"</a>".repeat(5);
            assert_eq!(l.parse_page(shallow.as_bytes()), None);
        }

        #[test]
        fn xml_walk_details() {
            let mut seen = Vec::new();
            let root = walk(
                "\u{20}<?xml version='1.0'?><!-- c --><s3:R xmlns:s3='u' a='1>2'><s3:K>x&lt;y&gt;&quot;&apos;&#65;</s3:K><E/></s3:R>\n",
                |path, text| seen.push((path.join("/"), text)),
            );
            assert_eq!(root, Some("R"));
            assert_eq!(
                seen,
                vec![
                    ("R/K".to_string(), "x<y>\"'A".to_string()),
                    ("R/E".to_string(), String::new()),
                    ("R".to_string(), String::new()),
                ]
            );
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use alloc::collections::BTreeMap;
    use alloc::format;
    use alloc::string::ToString;
    use alloc::vec;
    use core::pin::Pin;
    use core::task::{Context, Waker};
    use std::sync::Mutex;

    use crate::current::manifest_dir_name;
    use crate::manifest::{BUILD_META_DDL, SHARDS_DDL};

    const PREFIX: &str = "s3://b/snap";

    /// Polls a future to completion with a waker that does nothing (the
    /// test futures make progress on every poll).
    fn block_on<F: Future>(fut: F) -> F::Output {
        let mut fut = pin!(fut);
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
                return v;
            }
        }
    }

    /// Pending once, then ready: makes `join` interleave its futures.
    struct YieldOnce(bool);

    impl Future for YieldOnce {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.0 {
                Poll::Ready(())
            } else {
                self.0 = true;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }

    fn assert_send<T: Send>(_: &T) {}

    /// A manifest image written by the real SQLite engine: EXPLICIT
    /// routing, or CLUSTER with `centroids_ref` under `PREFIX`.
    fn manifest_image(run: &str, cluster: bool) -> Vec<u8> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "shardvec-core-snapshot-{}-{}.db",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_file(&path);
        let vector = if cluster {
            serde_json::json!({"dim": 2, "metric": "l2", "sharding_strategy": "cluster",
                "num_probes": 1, "centroids_ref": artefact_url(run)})
        } else {
            serde_json::json!({"dim": 2, "metric": "l2", "sharding_strategy": "explicit"})
        };
        {
            let c = rusqlite::Connection::open(&path).unwrap();
            c.execute_batch(BUILD_META_DDL).unwrap();
            c.execute_batch(SHARDS_DDL).unwrap();
            c.execute(
                "INSERT INTO build_meta VALUES (?1, ?2, 2, ?3, '_vector_id', ?4, 'db={db_id:05d}', 'shards', 4, 'raw', ?5)",
                rusqlite::params![
                    run,
                    "2026-11-21T18:28:06.639911Z",
                    PREFIX,
                    r#"{"strategy": "hash"}"#,
                    serde_json::json!({ "vector": vector }).to_string(),
                ],
            )
            .unwrap();
        }
        let bytes = std::fs::read(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        bytes
    }

    fn artefact_url(run: &str) -> String {
        format!(
            "{PREFIX}/{}",
            crate::layout::artefact_key(run, CENTROIDS_FILE)
        )
    }

    fn centroids(rows: usize) -> Vec<u8> {
        Matrix::new(rows, 2, vec![0.5; rows * 2]).unwrap().to_npy()
    }

    /// A manifest ref published `minute` minutes after a fixed time.
    fn mref(minute: u32, run: &str) -> ManifestRef {
        let ts = chrono::DateTime::parse_from_rfc3339(&format!("2026-11-21T18:{minute:02}:00Z"))
            .unwrap()
            .with_timezone(&chrono::Utc);
        let url = format!(
            "{PREFIX}/{}",
            crate::layout::manifest_key(&manifest_dir_name(&ts, run))
        );
        ManifestRef {
            url,
            run_id: run.to_string(),
            published_at: ts,
        }
    }

    #[derive(Debug, Clone, PartialEq)]
    struct StoreDown(String);

    impl core::fmt::Display for StoreDown {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            write!(f, "store down: {}", self.0)
        }
    }

    impl core::error::Error for StoreDown {}

    /// An in-memory store. Objects are keyed by URL; a missing object is a
    /// source error. Records what was asked, in order.
    #[derive(Default)]
    struct Mem {
        objects: BTreeMap<String, Result<Vec<u8>, String>>,
        /// `None`: the source cannot list; `Some(Err)`: listing fails.
        listing: Option<Result<Vec<ManifestRef>, String>>,
        log: Mutex<Vec<String>>,
        skipped: Mutex<Vec<String>>,
        reject_run: Option<String>,
    }

    impl Mem {
        fn put(&mut self, url: impl Into<String>, bytes: Vec<u8>) {
            self.objects.insert(url.into(), Ok(bytes));
        }
        fn fail(&mut self, url: impl Into<String>) {
            self.objects.insert(url.into(), Err("timeout".into()));
        }
        /// Publishes a manifest (and its centroids, for CLUSTER).
        fn publish(&mut self, r: &ManifestRef, cluster: bool) {
            self.put(r.url.clone(), manifest_image(&r.run_id, cluster));
            if cluster {
                self.put(artefact_url(&r.run_id), centroids(2));
            }
        }
        fn list(mut self, refs: &[&ManifestRef]) -> Self {
            self.listing = Some(Ok(refs.iter().map(|r| (*r).clone()).collect()));
            self
        }
        fn log(&self) -> Vec<String> {
            self.log.lock().unwrap().clone()
        }
        fn load(
            &self,
            current: &ManifestRef,
            attempts: usize,
        ) -> Result<Loaded<Vec<u8>>, LoadError<StoreDown>> {
            let fut = load(self, current, attempts);
            assert_send(&fut);
            block_on(fut)
        }
    }

    impl Source for Mem {
        type Bytes = Vec<u8>;
        type Error = StoreDown;

        async fn fetch(&self, object: Object<'_>) -> Result<Vec<u8>, StoreDown> {
            let url = match object {
                Object::Manifest { url } => url,
                Object::Artefact {
                    url,
                    recorded_prefix,
                    file,
                } => {
                    assert_eq!(recorded_prefix, PREFIX);
                    assert!(url.ends_with(file));
                    url
                }
            };
            self.log.lock().unwrap().push(url.to_string());
            YieldOnce(false).await;
            match self.objects.get(url) {
                Some(Ok(b)) => Ok(b.clone()),
                Some(Err(e)) => Err(StoreDown(format!("{url}: {e}"))),
                None => Err(StoreDown(format!("{url}: not found"))),
            }
        }

        async fn list_manifests(&self) -> Result<Option<Vec<ManifestRef>>, StoreDown> {
            self.log.lock().unwrap().push("LIST".into());
            YieldOnce(false).await;
            match &self.listing {
                None => Ok(None),
                Some(Ok(refs)) => Ok(Some(refs.clone())),
                Some(Err(e)) => Err(StoreDown(e.clone())),
            }
        }

        fn check_manifest(&self, r: &ManifestRef, m: &Manifest) -> Result<(), StoreDown> {
            assert_eq!(r.run_id, m.build.run_id);
            match &self.reject_run {
                Some(run) if *run == r.run_id => Err(StoreDown("flipped".into())),
                _ => Ok(()),
            }
        }

        fn skipped(&self, r: &ManifestRef, e: &LoadError<StoreDown>) {
            self.skipped
                .lock()
                .unwrap()
                .push(format!("{}: {e}", r.run_id));
        }
    }

    #[test]
    fn loads_the_current_manifest_and_its_artefacts() {
        let (old, cur) = (mref(1, "old"), mref(2, "cur"));
        let mut mem = Mem::default().list(&[&old, &cur]);
        mem.publish(&old, false);
        mem.publish(&cur, true);
        let l = mem.load(&cur, 3).unwrap();
        assert_eq!(l.manifest_ref, cur);
        assert_eq!(l.manifest.build.run_id, "cur");
        assert_eq!(l.manifest_bytes, mem.objects[&cur.url].clone().unwrap());
        let (m, bytes) = l.routing.centroids.as_ref().unwrap();
        assert_eq!((m.rows(), m.cols()), (2, 2));
        assert_eq!(*bytes, centroids(2));
        assert!(l.routing.hyperplanes.is_none());
        assert_eq!(l.routing.router.num_dbs(), 2);
        // No listing when the current manifest loads.
        assert_eq!(mem.log(), [cur.url.clone(), artefact_url("cur")]);
        assert!(mem.skipped.lock().unwrap().is_empty());
    }

    #[test]
    fn a_corrupt_current_manifest_falls_back_to_the_previous_one() {
        let (a, b, cur) = (mref(1, "a"), mref(2, "b"), mref(3, "cur"));
        let mut mem = Mem::default().list(&[&a, &cur, &b]);
        mem.publish(&a, true);
        mem.publish(&b, true);
        mem.put(cur.url.clone(), b"<html>not a manifest</html>".to_vec());
        let l = mem.load(&cur, 3).unwrap();
        assert_eq!(l.manifest_ref, b);
        assert_eq!(
            mem.log(),
            [
                cur.url.clone(),
                "LIST".into(),
                b.url.clone(),
                artefact_url("b")
            ]
        );
        let skipped = mem.skipped.lock().unwrap().clone();
        assert_eq!(skipped.len(), 1);
        assert!(
            skipped[0].starts_with(&format!(
                "cur: manifest {} cannot be read: not an SQLite database",
                cur.url
            )),
            "{skipped:?}"
        );
    }

    #[test]
    fn a_store_error_on_the_current_snapshot_does_not_fall_back() {
        let (a, cur) = (mref(1, "a"), mref(2, "cur"));
        // The manifest is unreachable.
        let mut mem = Mem::default().list(&[&a, &cur]);
        mem.publish(&a, false);
        mem.fail(cur.url.clone());
        let e = mem.load(&cur, 3).unwrap_err();
        assert_eq!(
            e,
            LoadError::Source(StoreDown(format!("{}: timeout", cur.url)))
        );
        assert_eq!(e.to_string(), format!("store down: {}: timeout", cur.url));
        assert_eq!(mem.log(), core::slice::from_ref(&cur.url));
        // The manifest is there, its artefact is not reachable.
        let mut mem = Mem::default().list(&[&a, &cur]);
        mem.publish(&a, false);
        mem.publish(&cur, true);
        mem.fail(artefact_url("cur"));
        assert!(mem.load(&cur, 3).unwrap_err().is_source());
        assert!(!mem.log().contains(&"LIST".to_string()));
        // A manifest the source rejects after parsing.
        let mut mem = Mem::default().list(&[&a, &cur]);
        mem.publish(&a, false);
        mem.publish(&cur, true);
        mem.reject_run = Some("cur".into());
        assert_eq!(
            mem.load(&cur, 3).unwrap_err(),
            LoadError::Source(StoreDown("flipped".into()))
        );
        assert_eq!(mem.log(), core::slice::from_ref(&cur.url));
    }

    #[test]
    fn a_rollback_never_serves_a_newer_manifest() {
        // `_CURRENT` was rolled back to `cur`; `newer` was published after
        // it (and `same` at the same instant): neither may be served.
        let (old, cur, newer) = (mref(1, "old"), mref(2, "cur"), mref(3, "newer"));
        let same = mref(2, "same");
        let mut mem = Mem::default().list(&[&newer, &same, &cur, &old]);
        mem.publish(&old, false);
        mem.publish(&newer, false);
        mem.publish(&same, false);
        mem.put(cur.url.clone(), vec![0; 100]);
        assert_eq!(mem.load(&cur, 3).unwrap().manifest_ref, old);
        assert!(!mem.log().contains(&newer.url));
        assert!(!mem.log().contains(&same.url));
        // Without an older manifest, the current error.
        let mut mem = Mem::default().list(&[&newer, &cur]);
        mem.publish(&newer, false);
        mem.put(cur.url.clone(), vec![0; 100]);
        assert!(matches!(
            mem.load(&cur, 3).unwrap_err(),
            LoadError::Manifest { url, .. } if url == cur.url
        ));
    }

    #[test]
    fn fallback_attempts_are_bounded_newest_first() {
        let refs: Vec<ManifestRef> = (0..5).map(|i| mref(i, &format!("r{i}"))).collect();
        let cur = &refs[4];
        let mut mem = Mem::default().list(&refs.iter().collect::<Vec<_>>());
        mem.put(cur.url.clone(), vec![1; 10]);
        // r3 is corrupt, r2 unreachable (any error skips a candidate), r1
        // and r0 are good.
        mem.put(refs[3].url.clone(), vec![2; 10]);
        mem.fail(refs[2].url.clone());
        mem.publish(&refs[1], false);
        mem.publish(&refs[0], false);
        let e = mem.load(cur, 2).unwrap_err();
        assert!(
            matches!(&e, LoadError::Manifest { url, .. } if *url == cur.url),
            "{e:?}"
        );
        assert_eq!(
            mem.log(),
            [
                cur.url.clone(),
                "LIST".into(),
                refs[3].url.clone(),
                refs[2].url.clone()
            ]
        );
        assert_eq!(mem.skipped.lock().unwrap().len(), 3);
        mem.log.lock().unwrap().clear();
        assert_eq!(mem.load(cur, 3).unwrap().manifest_ref, refs[1]);
        assert_eq!(mem.load(cur, 100).unwrap().manifest_ref, refs[1]);
        // 0 disables the fallback and the listing.
        mem.log.lock().unwrap().clear();
        assert!(matches!(
            mem.load(cur, 0).unwrap_err(),
            LoadError::Manifest { .. }
        ));
        assert_eq!(mem.log(), core::slice::from_ref(&cur.url));
    }

    #[test]
    fn unusable_artefacts_fall_back() {
        let (a, cur) = (mref(1, "a"), mref(2, "cur"));
        // The artefact does not parse.
        let mut mem = Mem::default().list(&[&a, &cur]);
        mem.publish(&a, true);
        mem.publish(&cur, true);
        mem.put(artefact_url("cur"), b"\x93NUMPY garbage".to_vec());
        assert_eq!(mem.load(&cur, 3).unwrap().manifest_ref, a);
        let e = mem.load(&cur, 0).unwrap_err();
        assert!(
            matches!(&e, LoadError::Artefact { url, file: CENTROIDS_FILE, .. } if *url == artefact_url("cur")),
            "{e:?}"
        );
        assert!(e.to_string().starts_with(&format!(
            "routing artefact {}: .npy centroids.npy: ",
            artefact_url("cur")
        )));
        // The router rejects it (3 centroids for 2 shards).
        mem.put(artefact_url("cur"), centroids(3));
        assert_eq!(mem.load(&cur, 3).unwrap().manifest_ref, a);
        let e = mem.load(&cur, 0).unwrap_err();
        assert!(
            matches!(&e, LoadError::Router { url, .. } if *url == cur.url),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            ".npy centroids.npy: shape is (3, 2), the manifest says (2, 2)"
        );
        // A candidate whose artefact is missing is skipped.
        let (b, c) = (mref(0, "b"), mref(1, "c"));
        let mut mem = Mem::default().list(&[&b, &c, &cur]);
        mem.publish(&b, true);
        mem.put(c.url.clone(), manifest_image("c", true));
        mem.put(cur.url.clone(), vec![]);
        assert_eq!(mem.load(&cur, 3).unwrap().manifest_ref, b);
    }

    #[test]
    fn without_a_listing_the_current_error_is_returned() {
        let (a, cur) = (mref(1, "a"), mref(2, "cur"));
        for listing in [None, Some(Err("list denied".to_string()))] {
            let mut mem = Mem {
                listing,
                ..Mem::default()
            };
            mem.publish(&a, false);
            mem.put(cur.url.clone(), b"garbage".to_vec());
            let e = mem.load(&cur, 3).unwrap_err();
            assert!(
                matches!(&e, LoadError::Manifest { url, .. } if *url == cur.url),
                "{e:?}"
            );
            assert_eq!(mem.log(), [cur.url.clone(), "LIST".to_string()]);
        }
    }

    #[test]
    fn routing_from_bytes_at_hand() {
        let m = Manifest::parse(&manifest_image("x", true)).unwrap();
        let r = Routing::build(&m, Some(centroids(2)), Some(centroids(1))).unwrap();
        assert_eq!(
            r.hyperplanes.unwrap().0.rows(),
            1,
            "given artefacts are parsed"
        );
        let e = Routing::<Vec<u8>>::build(&m, None, None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cluster routing needs the `centroids.npy` artefact"
        );
        let e = Routing::build(&m, Some(vec![1u8, 2, 3]), None).unwrap_err();
        assert!(matches!(
            e,
            RoutingError::Artefact {
                file: CENTROIDS_FILE,
                ..
            }
        ));
        assert!(e
            .into_inner()
            .to_string()
            .starts_with(".npy centroids.npy: "));
    }

    #[test]
    fn join_polls_both_futures() {
        let log = Mutex::new(Vec::new());
        let step = |name: &'static str| {
            let log = &log;
            async move {
                log.lock().unwrap().push((name, 0));
                YieldOnce(false).await;
                log.lock().unwrap().push((name, 1));
                name
            }
        };
        assert_eq!(block_on(join(step("a"), step("b"))), ("a", "b"));
        assert_eq!(
            *log.lock().unwrap(),
            [("a", 0), ("b", 0), ("a", 1), ("b", 1)]
        );
    }
}
