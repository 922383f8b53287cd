//! The error of every HTTP exchange of the package: a request that got no
//! usable answer, or an answer the package refuses. It reaches JavaScript
//! as an `Error` with the message and a stable `code` (see [`Error::code`]),
//! so callers can tell a host that changed snapshots from one that is down.

use wasm_bindgen::JsValue;

/// The code of [`Error::Failed`].
const REQUEST_FAILED: &str = "request_failed";

/// Why a fetch or a host's answer failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Error {
    /// No usable answer: a network error, a timeout, an HTTP error status,
    /// a body that does not parse. The message names the request.
    Failed(String),
    /// A host answered 409 `stale_manifest`, or answered for another
    /// manifest than the one the search was pinned to: the edge reloads
    /// its snapshot and retries once.
    Stale(String),
    /// A routing file fetched from a host belongs to another manifest
    /// than the one being loaded (its `ETag` is not
    /// [`shardvec_core::api::etag`] of that manifest, or the manifest's
    /// run is not the one `current` named): the host changed snapshots
    /// between two requests.
    WrongManifest {
        /// The URL fetched.
        url: String,
        /// The file (`manifest`, `centroids.npy`, ...).
        file: String,
        /// The manifest being loaded (the URL `current` named).
        manifest: String,
        /// What shows the file belongs to another one.
        evidence: String,
    },
    /// An answer's body is longer than the limit (read no further).
    TooLarge {
        /// The request (`POST <url>`).
        request: String,
        /// The limit, in bytes.
        limit: usize,
    },
    /// A shard's list holds more hits than the `top_k` asked for.
    TooManyHits {
        /// The URL asked.
        url: String,
        /// The shard.
        shard: u32,
        /// Hits answered.
        hits: usize,
        /// Hits asked for.
        top_k: usize,
    },
}

impl Error {
    /// The `code` of the JavaScript `Error`: `request_failed`,
    /// `stale_manifest`, `wrong_manifest`, `answer_too_large` or
    /// `too_many_hits`.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            Error::Failed(_) => REQUEST_FAILED,
            Error::Stale(_) => shardvec_core::api::codes::STALE_MANIFEST,
            Error::WrongManifest { .. } => "wrong_manifest",
            Error::TooLarge { .. } => "answer_too_large",
            Error::TooManyHits { .. } => "too_many_hits",
        }
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::Failed(m) | Error::Stale(m) => f.write_str(m),
            Error::WrongManifest {
                url,
                file,
                manifest,
                evidence,
            } => write!(
                f,
                "{url}: {file} belongs to a different manifest than manifest {manifest} \
                 ({evidence}): the host changed snapshots while its routing files were \
                 read; retry"
            ),
            Error::TooLarge { request, limit } => write!(
                f,
                "{request}: the answer is larger than maxResponseBytes ({limit} bytes); \
                 not read further"
            ),
            Error::TooManyHits {
                url,
                shard,
                hits,
                top_k,
            } => write!(
                f,
                "{url}: answered {hits} hits for shard {shard}, more than the top {top_k} asked for"
            ),
        }
    }
}

/// A JavaScript `Error` with `message` and a `code` property.
fn js_error(message: &str, code: &str) -> JsValue {
    let js = js_sys::Error::new(message);
    // Setting a data property on a fresh Error cannot fail.
    let _ = js_sys::Reflect::set(&js, &JsValue::from_str("code"), &JsValue::from_str(code));
    js.into()
}

/// A JavaScript `Error` with the message and the `code`.
impl From<Error> for JsValue {
    fn from(e: Error) -> JsValue {
        js_error(&e.to_string(), e.code())
    }
}

/// Several failures as one JavaScript `Error`: every message after its
/// prefix (`host <url>: ...`), joined by `; `, with the first one's
/// `code`.
pub(crate) fn joined(failures: &[(String, &Error)]) -> JsValue {
    let message = failures
        .iter()
        .map(|(prefix, e)| format!("{prefix}: {e}"))
        .collect::<Vec<_>>()
        .join("; ");
    let code = failures.first().map_or(REQUEST_FAILED, |(_, e)| e.code());
    js_error(&message, code)
}
