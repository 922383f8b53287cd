//! The host's HTTP endpoints, request and answer shapes, and errors.

use std::sync::Arc;

use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use sha2::Digest;
use shardvec_core::api::{
    codes, ErrorBody, HealthResponse, RefreshResponse, SearchRequest, SearchResponse,
    ShardsSearchRequest, ShardsSearchResponse, SnapshotResponse,
};
use shardvec_core::ShardId;
use subtle::ConstantTimeEq;
use tower_http::services::ServeDir;

use shardvec::{Error, ErrorKind, SearchOptions};

use super::Shared;

/// Every endpoint, with the token check on `/v1/*` and `/metrics`, the
/// body limit and the request counter.
pub(super) fn router(shared: Arc<Shared>) -> Router {
    let guarded = Router::new()
        .route("/v1/snapshot", get(snapshot))
        .route("/v1/routing/{file}", get(routing_file))
        .route("/v1/search", post(search))
        .route("/v1/shards/search", post(shards_search))
        .route("/v1/refresh", post(refresh))
        .route("/metrics", get(metrics))
        .route_layer(from_fn_with_state(shared.clone(), require_token));
    let mut app = guarded.route("/healthz", get(healthz));
    if let Some(dir) = &shared.options.demo_dir {
        app = app.nest_service("/demo", ServeDir::new(dir));
    }
    app.fallback(not_found)
        .layer(DefaultBodyLimit::max(shared.options.max_body_bytes))
        .layer(from_fn_with_state(shared.clone(), limit_requests))
        .layer(from_fn_with_state(shared.clone(), count_requests))
        .with_state(shared)
}

/// An error answer: `{"error": {"code", "message"}}`.
#[derive(Debug)]
pub(super) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        // Exhaustive: a new kind does not compile until it has a status.
        let status = match e.kind() {
            ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            // The snapshot behind this host is missing, unreachable or
            // damaged: the host's upstream failed, not the request.
            ErrorKind::NotFound | ErrorKind::Upstream | ErrorKind::Corrupt => {
                StatusCode::BAD_GATEWAY
            }
            ErrorKind::Unsupported => StatusCode::NOT_IMPLEMENTED,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            // The caller learns the kind; the details (store URLs, bucket
            // and prefix, local cache paths, sources) go to the log only.
            tracing::error!(code = e.code(), error = %ErrorChain(&e), "request failed");
            return ApiError::new(status, e.code(), server_error_message(e.code()));
        }
        ApiError::new(status, e.code(), e.to_string())
    }
}

/// The message of a 5xx answer: the code, never the error's details.
pub(super) fn server_error_message(code: &str) -> String {
    format!("the host could not serve this request ({code}); details are in its log")
}

/// An error with its chain of sources, for the log.
pub(super) struct ErrorChain<'a>(pub(super) &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut next = self.0.source();
        while let Some(e) = next {
            write!(f, ": {e}")?;
            next = e.source();
        }
        Ok(())
    }
}

impl From<BytesRejection> for ApiError {
    fn from(r: BytesRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(r.status(), codes::BODY_TOO_LARGE, r.body_text())
        } else {
            ApiError::new(r.status(), codes::BAD_REQUEST, r.body_text())
        }
    }
}

/// A request body parsed by the core's parser (the one the `host_json`
/// fuzz target exercises).
fn parse_body<T>(
    body: Result<Bytes, BytesRejection>,
    parse: impl Fn(&[u8]) -> shardvec_core::Result<T>,
) -> ApiResult<T> {
    let body = body?;
    parse(&body).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, codes::BAD_JSON, e.to_string()))
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(ErrorBody::new(self.code, self.message));
        let mut resp = (self.status, body).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// The SHA-256 digest a token is compared by.
pub(super) fn token_digest(token: &str) -> [u8; 32] {
    sha2::Sha256::digest(token.as_bytes()).into()
}

/// `Authorization: Bearer <token>`. The SHA-256 digests of the given and
/// the expected token are compared in constant time: comparing digests of
/// a fixed length also hides the expected token's length, which comparing
/// the tokens themselves would show.
async fn require_token(State(s): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    if let Some(expected) = &s.token_digest {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !bool::from(token_digest(given)[..].ct_eq(&expected[..])) {
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                codes::UNAUTHORIZED,
                "a valid `Authorization: Bearer <token>` header is required",
            )
            .into_response();
        }
    }
    next.run(req).await
}

async fn count_requests(State(s): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let endpoint = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("other", MatchedPath::as_str)
        .to_string();
    let resp = next.run(req).await;
    s.metrics.request(&endpoint, resp.status().as_u16());
    resp
}

/// Load shedding and the time limit of the whole request: a body declared
/// larger than `max_body_bytes` is refused (413) from its `Content-Length`
/// before any of it is read; past `max_in_flight` requests, 503
/// `overloaded` with `Retry-After` at once (`/healthz` is never shed);
/// every request — reading its body included, which a trickling client
/// can stretch — ends by the request timeout. A 413 closes the
/// connection, so the rest of the body is never read.
async fn limit_requests(State(s): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if let Some(len) = declared.filter(|&n| n > s.options.max_body_bytes as u64) {
        // The body limit (`DefaultBodyLimit`) only fails once more than the
        // limit has arrived: a client announcing a gigabyte and sending a
        // little of it would hold the request until its timeout.
        let mut resp = ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            codes::BODY_TOO_LARGE,
            format!(
                "the body's Content-Length {len} is above this host's limit of {} bytes",
                s.options.max_body_bytes
            ),
        )
        .into_response();
        close_connection(&mut resp);
        return resp;
    }
    let health = req.uri().path() == "/healthz";
    let _slot = if health {
        None
    } else {
        match s.in_flight.clone().try_acquire_owned() {
            Ok(slot) => Some(slot),
            Err(_) => {
                let mut resp = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    codes::OVERLOADED,
                    format!(
                        "more than {} requests in flight; retry shortly",
                        s.options.max_in_flight
                    ),
                )
                .into_response();
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                return resp;
            }
        }
    };
    let limit = s.options.request_timeout;
    let mut resp = match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => ApiError::from(Error::Timeout {
            what: "the request",
            limit,
        })
        .into_response(),
    };
    if resp.status() == StatusCode::PAYLOAD_TOO_LARGE {
        // A streamed body past the limit: the rest is not read either.
        close_connection(&mut resp);
    }
    resp
}

/// Asks the server to close the connection after this answer (hyper then
/// neither reads nor drains what is left of the request body).
fn close_connection(resp: &mut Response) {
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, codes::NOT_FOUND, "no such endpoint")
}

fn check_top_k(s: &Shared, top_k: usize) -> ApiResult<()> {
    if top_k > s.options.max_top_k {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            codes::TOP_K_TOO_LARGE,
            format!(
                "top_k {top_k} is above this host's limit of {}",
                s.options.max_top_k
            ),
        ));
    }
    Ok(())
}

fn check_served(s: &Shared, shards: &[ShardId]) -> ApiResult<()> {
    let missing: Vec<String> = shards
        .iter()
        .filter(|&&id| !s.options.shards.contains(id))
        .map(ToString::to_string)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::NOT_FOUND,
        codes::SHARD_NOT_SERVED,
        format!(
            "shard(s) {} are not served by this host (it serves {})",
            missing.join(", "),
            s.options.shards
        ),
    ))
}

fn etag_of(manifest_url: &str, file: &str) -> String {
    shardvec_core::api::etag(manifest_url, file)
}

fn served_ids(s: &Shared, num_dbs: u32) -> Vec<ShardId> {
    s.options.shards.ids(num_dbs)
}

async fn snapshot(State(s): State<Arc<Shared>>) -> ApiResult<Response> {
    let (info, shards) = s.reader.snapshot_with_shards()?;
    let manifest_ref = info.manifest_ref.clone();
    let body = SnapshotResponse {
        manifest_ref: manifest_ref.clone(),
        served_shards: served_ids(&s, info.num_dbs),
        info,
        shards,
    };
    let etag = etag_of(&manifest_ref, "snapshot");
    Ok(([(header::ETAG, etag)], Json(body)).into_response())
}

async fn routing_file(
    State(s): State<Arc<Shared>>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let files = s.reader.routing_files()?;
    let (bytes, content_type): (Option<Bytes>, &str) = match file.as_str() {
        "manifest" => (Some(files.manifest), "application/x-sqlite3"),
        "current" => (Some(files.current), "application/json"),
        "centroids.npy" => (files.centroids, "application/octet-stream"),
        "hyperplanes.npy" => (files.hyperplanes, "application/octet-stream"),
        _ => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                codes::NOT_FOUND,
                format!(
                    "no routing file `{file}` (manifest, current, centroids.npy, hyperplanes.npy)"
                ),
            ))
        }
    };
    let Some(bytes) = bytes else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            codes::NOT_FOUND,
            format!("this snapshot's sharding strategy has no {file}"),
        ));
    };
    let etag = etag_of(&files.manifest_ref.url, &file);
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let common = [
        (header::ETAG, etag),
        (header::CACHE_CONTROL, "no-cache".to_string()),
    ];
    if matches {
        return Ok((StatusCode::NOT_MODIFIED, common).into_response());
    }
    Ok((
        common,
        [(header::CONTENT_TYPE, content_type.to_string())],
        bytes,
    )
        .into_response())
}

/// `POST /v1/search`.
async fn search(
    State(s): State<Arc<Shared>>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<SearchResponse>> {
    let req = parse_body(body, SearchRequest::parse)?;
    check_top_k(&s, req.top_k)?;
    let mut opts = SearchOptions::new();
    opts.num_probes = req.num_probes;
    opts.shard_ids = req.shards();
    opts.routing_context = req.context().map_err(Error::from)?;
    opts.filter = req.filter().map_err(Error::from)?.map(Arc::new);
    opts.min_results = req.min_results;
    let cap = s.options.max_probes;
    opts.max_probes = Some(req.max_probes.map_or(cap, |n| n.min(cap)));
    // The routed shards that hold vectors must all be served here (an
    // empty shard is skipped by the search wherever it is), checked on the
    // route and manifest the search itself uses.
    // The request's time limit is `limit_requests`'s, around the body too.
    let resp = s
        .reader
        .search_checked(&req.query, req.top_k, &opts, |targets| {
            check_served(&s, targets)
        })
        .await?;
    Ok(Json(resp.into_wire()))
}

/// `POST /v1/shards/search`.
async fn shards_search(
    State(s): State<Arc<Shared>>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<ShardsSearchResponse>> {
    let req = parse_body(body, ShardsSearchRequest::parse)?;
    check_top_k(&s, req.top_k)?;
    let ids = req.shards();
    check_served(&s, &ids)?;
    let filter = req.filter().map_err(Error::from)?.map(Arc::new);
    let resp = s
        .reader
        .search_shards(
            &req.query,
            req.top_k,
            &ids,
            req.manifest_ref.as_deref(),
            filter,
        )
        .await?;
    Ok(Json(resp.into_wire()))
}

async fn refresh(State(s): State<Arc<Shared>>) -> ApiResult<Json<RefreshResponse>> {
    let changed = s.refresh().await?;
    Ok(Json(RefreshResponse {
        changed,
        manifest_ref: s.reader.manifest_ref()?.url,
    }))
}

async fn healthz(State(s): State<Arc<Shared>>) -> Response {
    let h = s.reader.health(s.options.staleness);
    let last = s.last_refresh.lock().ok().and_then(|l| l.clone());
    let status = if h.is_closed {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let body = HealthResponse {
        status: h.status,
        manifest_ref: h.manifest_ref.map(|r| r.url),
        manifest_age_s: h.manifest_age.map(|a| a.as_secs_f64()),
        num_shards: h.num_shards,
        served_shards: s.options.shards.to_string(),
        last_refresh: last,
    };
    (status, Json(body)).into_response()
}

async fn metrics(State(s): State<Arc<Shared>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.encode(),
    )
        .into_response()
}
