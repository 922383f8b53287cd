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
    /// A routed shard that no host of the client lists.
    NotServed {
        /// The shard.
        shard: u32,
    },
    /// A host taken out by the circuit breaker: it failed `failures`
    /// times in a row and is not asked again before its time out ends.
    HostOut {
        /// Failures in a row.
        failures: u32,
        /// Milliseconds until it is asked again.
        retry_in_ms: u64,
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
    /// `stale_manifest`, `wrong_manifest`, `answer_too_large`,
    /// `too_many_hits`, `shard_not_served` or `host_out`.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            Error::Failed(_) => REQUEST_FAILED,
            Error::Stale(_) => shardvec_core::api::codes::STALE_MANIFEST,
            Error::WrongManifest { .. } => "wrong_manifest",
            Error::TooLarge { .. } => "answer_too_large",
            Error::TooManyHits { .. } => "too_many_hits",
            Error::NotServed { .. } => shardvec_core::api::codes::SHARD_NOT_SERVED,
            Error::HostOut { .. } => "host_out",
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
            Error::NotServed { shard } => {
                write!(f, "shard {shard} is routed to but no host serves it")
            }
            Error::HostOut {
                failures,
                retry_in_ms,
            } => write!(
                f,
                "taken out after {failures} failures in a row; asked again in {retry_in_ms} ms"
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

/// Several failures as one: every message after its prefix (`shard 4:
/// host <url>: ...`), joined by `; `, with the first one's code.
pub(crate) fn joined(failures: &[(String, &Error)]) -> Failure {
    let message = failures
        .iter()
        .map(|(prefix, e)| format!("{prefix}: {e}"))
        .collect::<Vec<_>>()
        .join("; ");
    let code = failures.first().map_or(REQUEST_FAILED, |(_, e)| e.code());
    Failure::Edge {
        code,
        message,
        shards: Vec::new(),
    }
}

/// Why a search failed: its input (before any request), or the hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The query or an option, refused with the core's message; a plain
    /// JS `Error` (no code), HTTP 400 at a worker (`code`: the wire
    /// code).
    Input {
        /// `invalid_query`, `invalid_filter`, `top_k_too_large`.
        code: &'static str,
        /// The message.
        message: String,
    },
    /// A host exchange ([`Error`], or several joined): a JS `Error` with
    /// the `code`, HTTP 502 at a worker.
    Edge {
        /// [`Error::code`].
        code: &'static str,
        /// The message, naming the shards and hosts.
        message: String,
        /// The shards no replica answered, if that is the failure.
        shards: Vec<u32>,
    },
}

/// The code of a refused query: the native reader's, so a worker answers
/// what a host would.
pub(crate) use shardvec_core::api::codes::INVALID_QUERY;

impl Failure {
    /// The core's refusal of the query (or of its filter).
    pub(crate) fn query(e: shardvec_core::Error) -> Failure {
        let code = if matches!(e, shardvec_core::Error::InvalidFilter(_)) {
            shardvec_core::api::codes::INVALID_FILTER
        } else {
            INVALID_QUERY
        };
        Failure::Input {
            code,
            message: e.to_string(),
        }
    }

    /// An input error of `code` with `message`.
    pub(crate) fn input(code: &'static str, message: impl Into<String>) -> Failure {
        Failure::Input {
            code,
            message: message.into(),
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::Edge {
            code: e.code(),
            message: e.to_string(),
            shards: Vec::new(),
        }
    }
}

impl From<Failure> for JsValue {
    fn from(f: Failure) -> JsValue {
        match f {
            Failure::Input { message, .. } => js_sys::Error::new(&message).into(),
            Failure::Edge { code, message, .. } => js_error(&message, code),
        }
    }
}
