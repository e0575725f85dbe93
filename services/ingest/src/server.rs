//! The intake's HTTP/1 server (adapter): hyper's connection loop with the
//! protections a public endpoint needs, which `axum::serve` does not expose.
//!
//! - **Header timeout** (`ingest.header_timeout_ms`): a connection must send
//!   a request's complete headers within it, counted from when the server
//!   starts reading them, i.e. from the accept, and from the end of the
//!   previous response on a keep-alive connection. So it also closes idle
//!   keep-alive connections and slowloris clients that trickle headers.
//! - **Body timeout** (`ingest.body_timeout_ms`): applied by the handlers
//!   while they read the body (after authentication, see [`crate::intake`]):
//!   408 and the connection closes.
//! - **Connection cap** (`ingest.max_connections`): a connection is accepted
//!   only when fewer are open; further clients wait in the kernel's accept
//!   queue (back-pressure, not errors).
//!
//! Shutdown: stop accepting, let every open connection finish its in-flight
//! request (hyper's graceful shutdown), then return.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use selfheal_common::{CancellationToken, Error, Result};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

/// Connection limits of the server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Complete request headers within this (also the keep-alive idle bound).
    pub header_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
}

/// Serves `router` on `listener` with `limits` until `stop` is cancelled,
/// then finishes the in-flight requests.
pub fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    stop: CancellationToken,
) -> JoinHandle<Result<()>> {
    tokio::spawn(async move {
        let max = limits.max_connections.clamp(1, u32::MAX as usize);
        let open = Arc::new(Semaphore::new(max));
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout);
        loop {
            let permit = tokio::select! {
                _ = stop.cancelled() => break,
                p = open.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            };
            let (stream, _) = tokio::select! {
                _ = stop.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: back off, go on.
                        tracing::warn!(service = crate::NAME, error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let conn = builder.serve_connection(
                TokioIo::new(stream),
                TowerToHyperService::new(router.clone()),
            );
            let stop = stop.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let mut conn = std::pin::pin!(conn);
                let result = tokio::select! {
                    r = conn.as_mut() => r,
                    _ = stop.cancelled() => {
                        conn.as_mut().graceful_shutdown();
                        conn.await
                    }
                };
                if let Err(e) = result {
                    // Timeouts, resets and bad requests: the client's doing.
                    tracing::debug!(service = crate::NAME, error = %e, "connection ended");
                }
            });
        }
        drop(listener);
        // Every connection holds a permit: all of them back means all done.
        let _ = open
            .acquire_many(u32::try_from(max).unwrap_or(u32::MAX))
            .await;
        Ok::<(), Error>(())
    })
}
