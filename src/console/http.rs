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
    /// Ends the event streams, so a graceful shutdown does not wait forever
    /// for open pages.
    stop: CancellationToken,
}

impl Default for Shared {
    fn default() -> Self {
        Self {
            model: Arc::default(),
            changed: Arc::new(watch::channel(0).0),
            stop: CancellationToken::new(),
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
    let stop = s.stop.clone();
    let stream = futures::stream::unfold((rx, true), move |(mut rx, first)| {
        let stop = stop.clone();
        async move {
            if !first {
                tokio::select! {
                    changed = rx.changed() => changed.ok()?,
                    () = stop.cancelled() => return None,
                }
            }
            let v = *rx.borrow_and_update();
            Some((Ok(Event::default().data(v.to_string())), (rx, false)))
        }
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
    mut shared: Shared,
    shutdown: CancellationToken,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    shared.stop = shutdown.clone();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::testing::{deploy, regression};

    async fn next_data(r: &mut reqwest::Response) -> String {
        loop {
            let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), r.chunk())
                .await
                .expect("an event within 10 s")
                .unwrap()
                .expect("the stream stays open");
            let text = String::from_utf8_lossy(&chunk).into_owned();
            if let Some(line) = text.lines().find_map(|l| l.strip_prefix("data: ")) {
                return line.to_owned();
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pages_are_served_and_changes_are_announced_by_sse() {
        let shared = Shared::default();
        let shutdown = CancellationToken::new();
        let (addr, task) = serve(
            "127.0.0.1:0".parse().unwrap(),
            shared.clone(),
            shutdown.clone(),
        )
        .await
        .unwrap();
        let http = reqwest::Client::new();
        let mut sse = http
            .get(format!("http://{addr}/events"))
            .send()
            .await
            .unwrap();
        assert_eq!(next_data(&mut sse).await, "0", "the current version first");
        let missing = http
            .get(format!("http://{addr}/incident/checkout/b"))
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status(), 404);

        shared.fold_all(&[
            AnyEvent::Deploy(deploy("checkout", "b", 600_000)),
            AnyEvent::Regression(regression("checkout", "b", 720_000)),
        ]);
        assert_eq!(next_data(&mut sse).await, "2", "announced after the change");
        let page = http
            .get(format!("http://{addr}/incident/checkout/b"))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        assert!(page.text().await.unwrap().contains("6 vs 0.04"));
        let post = http.post(format!("http://{addr}/")).send().await.unwrap();
        assert_eq!(post.status(), 405, "read-only");

        // An open page does not hold up the shutdown: its stream ends.
        shutdown.cancel();
        tokio::time::timeout(std::time::Duration::from_secs(10), task)
            .await
            .expect("the server stops with a page still open")
            .unwrap();
        drop(sse);
    }
}
