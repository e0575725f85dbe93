//! HTTP endpoints every service exposes: `/healthz` (the process is alive),
//! `/readyz` (it can do its job: Kafka reachable, topics in place, consuming) and
//! `/metrics` (Prometheus text format).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus::Registry;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{Error, Result};

/// A shared readiness flag.
#[derive(Clone, Debug, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    /// Marks the service ready or not.
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::SeqCst);
    }

    /// Whether the service is ready.
    pub fn get(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

#[derive(Clone)]
struct Ops {
    registry: Registry,
    ready: Readiness,
}

/// The `/healthz`, `/readyz`, `/metrics` routes; merge service routes into it.
pub fn ops_router(registry: Registry, ready: Readiness) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(Ops { registry, ready })
}

async fn readyz(State(ops): State<Ops>) -> impl IntoResponse {
    if ops.ready.get() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

async fn metrics(State(ops): State<Ops>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::render(&ops.registry),
    )
}

/// Binds `addr` (port 0 picks a free port).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|source| Error::Http {
        addr: addr.to_string(),
        source,
    })
}

/// Serves `router` on `listener` until `stop` is cancelled, then finishes the
/// in-flight requests (axum graceful shutdown).
pub fn serve(
    listener: TcpListener,
    router: Router,
    stop: CancellationToken,
) -> JoinHandle<Result<()>> {
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await
            .map_err(|source| Error::Http { addr, source })
    })
}

/// The local address of a bound listener.
pub fn local_addr(listener: &TcpListener) -> Result<SocketAddr> {
    listener.local_addr().map_err(|source| Error::Http {
        addr: "listener".to_owned(),
        source,
    })
}
