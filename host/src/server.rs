//! Accepting connections: the limits a slow or greedy client meets before
//! any handler runs, and a shutdown that cannot be held open.
//!
//! `axum::serve` sets none of these: hyper's header-read timeout needs a
//! timer, which `axum::serve` does not give it; nothing caps connections;
//! and a graceful shutdown waits for every connection, including one that
//! holds a half-sent request line forever. This loop is `axum::serve`'s,
//! with:
//!
//! - a **header-read timeout** ([`HostOptions::header_read_timeout`]): a
//!   connection that has not sent a complete request head in time is
//!   closed (also between keep-alive requests);
//! - a **connection cap** ([`HostOptions::max_connections`]): past it, a
//!   new connection is closed at once, so held connections cannot exhaust
//!   file descriptors or tasks;
//! - a **shutdown deadline** ([`HostOptions::shutdown_deadline`]): after
//!   the shutdown signal no connection is accepted, idle ones close, busy
//!   ones finish their request — and whatever is still open at the
//!   deadline is dropped.
//!
//! Request bodies and load shedding are per request, in the router
//! (`api::limit_requests`).
//!
//! [`HostOptions::header_read_timeout`]: crate::HostOptions::header_read_timeout
//! [`HostOptions::max_connections`]: crate::HostOptions::max_connections
//! [`HostOptions::shutdown_deadline`]: crate::HostOptions::shutdown_deadline

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt as _;

/// The connection limits (see the module docs).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
    pub shutdown_deadline: Duration,
}

/// Serves `app` on `listener` until `shutdown`, within `limits`.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let service = app.map_request(|req: Request<Incoming>| req.map(Body::new));
    // Connection tasks, so that the deadline can drop what is left.
    let mut tasks = tokio::task::JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        while tasks.try_join_next().is_some() {}
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = &mut shutdown => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: back off, go on.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(
                max = limits.max_connections,
                "connection cap reached; closing a new connection"
            );
            drop(stream);
            continue;
        };
        let hyper_service = TowerToHyperService::new(service.clone());
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), hyper_service)
            .into_owned();
        let conn = graceful.watch(conn);
        tasks.spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.shutdown_deadline, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            deadline = ?limits.shutdown_deadline,
            open = tasks.len(),
            "connections still open at the shutdown deadline; dropping them"
        );
    }
    tasks.abort_all();
    Ok(())
}
