//! The console's HTTP adapter (axum): renders the model's pages, announces
//! changes by server-sent events. Read-only: GET routes only.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use selfheal_common::CancellationToken;
use selfheal_schemas::AnyEvent;
use tokio::sync::watch;

use super::html;
use super::model::Model;

/// The model shared between the feeding side and the pages.
#[derive(Clone)]
pub(crate) struct Shared {
    model: Arc<RwLock<Model>>,
    changed: Arc<watch::Sender<u64>>,
}

impl Default for Shared {
    fn default() -> Self {
        Self {
            model: Arc::default(),
            changed: Arc::new(watch::channel(0).0),
        }
    }
}

impl Shared {
    /// Folds events in and announces the new version to open pages.
    pub(crate) fn fold_all<'a>(&self, events: impl IntoIterator<Item = &'a AnyEvent>) {
        let version = {
            let mut m = self.model.write().unwrap_or_else(|p| p.into_inner());
            for e in events {
                m.fold(e);
            }
            m.version
        };
        self.changed.send_replace(version);
    }

    fn read<T>(&self, f: impl FnOnce(&Model) -> T) -> T {
        f(&self.model.read().unwrap_or_else(|p| p.into_inner()))
    }
}

async fn fleet(State(s): State<Shared>) -> Html<String> {
    Html(s.read(html::fleet))
}

async fn service(State(s): State<Shared>, Path(name): Path<String>) -> Response {
    s.read(|m| match m.services.get(&name) {
        Some(st) => Html(html::service(&name, st)).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Html(html::not_found(&format!("service {name}"))),
        )
            .into_response(),
    })
}

async fn incident(
    State(s): State<Shared>,
    Path((name, revision)): Path<(String, String)>,
) -> Response {
    s.read(|m| {
        let found = m
            .services
            .get(&name)
            .and_then(|st| st.incidents.get(&revision).map(|i| (st, i)));
        match found {
            Some((st, i)) => Html(html::incident(&name, &revision, st, i)).into_response(),
            None => (
                StatusCode::NOT_FOUND,
                Html(html::not_found(&format!("incident of {name} {revision}"))),
            )
                .into_response(),
        }
    })
}

/// Sends the model's version now and after every change; a page reloads
/// when it sees a version other than the first it got.
async fn events(
    State(s): State<Shared>,
) -> Sse<impl futures::Stream<Item = Result<Event, Infallible>>> {
    let rx = s.changed.subscribe();
    let stream = futures::stream::unfold((rx, true), |(mut rx, first)| async move {
        if !first && rx.changed().await.is_err() {
            return None;
        }
        let v = *rx.borrow_and_update();
        Some((Ok(Event::default().data(v.to_string())), (rx, false)))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// The console's routes over `shared`.
pub(crate) fn router(shared: Shared) -> Router {
    Router::new()
        .route("/", get(fleet))
        .route("/service/{name}", get(service))
        .route("/incident/{name}/{revision}", get(incident))
        .route("/events", get(events))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(shared)
}

/// Binds `addr` and serves the console until `shutdown`; returns the bound
/// address and the server task.
pub(crate) async fn serve(
    addr: SocketAddr,
    shared: Shared,
    shutdown: CancellationToken,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("console: cannot listen on {addr} (console.listen): {e}"))?;
    let bound = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, router(shared))
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "console server failed");
        }
    });
    Ok((bound, task))
}
