//! Serves an axum router as `axum::serve` does (HTTP/1 and 2, upgrades for WebSockets, the
//! peer's address as `ConnectInfo`, graceful shutdown), plus the two limits a server reachable
//! by many peers needs and `axum::serve` leaves out:
//! - a deadline on each request's headers: hyper has one, but it only runs with a timer, and
//!   `axum::serve` installs none, so a peer trickling its headers held a connection for ever;
//! - a cap on open connections: past it, accepting waits until one closes.

use axum::extract::connect_info::ConnectInfo;
use axum::extract::Request;
use axum::serve::Listener;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Semaphore};
use tower::ServiceExt;

/// The limits a server keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeLimits {
    /// Connections open at once; the next one is accepted when one closes.
    pub max_connections: usize,
    /// Time a peer has to send a request's headers once it starts one.
    pub header_read_timeout: Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits {
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(30),
        }
    }
}

/// Serves `router` on `listener` until `shutdown` completes; then accepts nothing more, lets
/// each connection finish its request and returns once all are closed.
pub async fn serve<L>(
    mut listener: L,
    router: Router,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) where
    L: Listener,
    L::Addr: Clone + Send + Sync + 'static,
{
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    // WebSockets over HTTP/2 use the CONNECT protocol.
    builder.http2().enable_connect_protocol();
    let builder = Arc::new(builder);
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    // Dropped when shutdown starts; every connection task holds a receiver of `closed`.
    let (stop_tx, stop_rx) = watch::channel(());
    let (closed_tx, closed_rx) = watch::channel(());
    tokio::spawn(async move {
        shutdown.await;
        drop(stop_rx);
    });
    loop {
        let next = async {
            let permit = permits.clone().acquire_owned().await;
            (permit, listener.accept().await)
        };
        let (permit, (io, peer)) = tokio::select! {
            next = next => next,
            () = stop_tx.closed() => break,
        };
        let Ok(permit) = permit else { break };
        let service = router
            .clone()
            .map_request(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer.clone()));
                request.map(axum::body::Body::new)
            });
        let builder = builder.clone();
        let stop = stop_tx.clone();
        let closed = closed_rx.clone();
        tokio::spawn(async move {
            let io = TokioIo::new(io);
            let conn =
                builder.serve_connection_with_upgrades(io, TowerToHyperService::new(service));
            tokio::pin!(conn);
            let mut stopping = false;
            loop {
                tokio::select! {
                    served = conn.as_mut() => {
                        if let Err(e) = served {
                            tracing::trace!(error = %e, "connection ended with an error");
                        }
                        break;
                    }
                    () = stop.closed(), if !stopping => {
                        stopping = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
            drop((permit, closed));
        });
    }
    drop(listener);
    drop(closed_rx);
    closed_tx.closed().await;
}

#[cfg(test)]
#[path = "lib_tests.rs"]
mod tests;
