//! Local stand-ins for GitHub's REST API and an OpenCode headless server,
//! implementing just the endpoints the dispatchers call, recording every
//! request, and able to answer with an error or too slowly.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

/// How the stand-in answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Like the real service.
    Ok,
    /// Every request gets this status and an error body.
    Fail(u16),
    /// Every request is answered after this long.
    Slow(Duration),
}

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Value,
}

#[derive(Clone)]
struct Shared {
    mode: Mode,
    seen: Arc<Mutex<Vec<Seen>>>,
}

/// A running stand-in.
pub struct StandIn {
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl StandIn {
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn gate(
    s: &Shared,
    path: String,
    headers: HeaderMap,
    body: Value,
) -> Option<(StatusCode, Json<Value>)> {
    s.seen.lock().unwrap().push(Seen {
        path,
        headers,
        body,
    });
    match s.mode {
        Mode::Ok => None,
        Mode::Fail(code) => Some((
            StatusCode::from_u16(code).unwrap(),
            Json(json!({"message": "stand-in failure", "token": "ghp_secretsecretsecret123"})),
        )),
        Mode::Slow(d) => {
            tokio::time::sleep(d).await;
            None
        }
    }
}

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    format!("http://{addr}")
}

/// GitHub stand-in: `POST /repos/{o}/{r}/issues`, `/dispatches`, `/pulls`.
pub async fn github(mode: Mode) -> StandIn {
    let shared = Shared {
        mode,
        seen: Arc::default(),
    };
    let seen = shared.seen.clone();
    let router = Router::new()
        .route(
            "/repos/{owner}/{repo}/issues",
            post(
                |State(s): State<Shared>, Path((o, r)): Path<(String, String)>, h: HeaderMap, Json(b): Json<Value>| async move {
                    if let Some(err) = gate(&s, format!("/repos/{o}/{r}/issues"), h, b).await {
                        return err;
                    }
                    (
                        StatusCode::CREATED,
                        Json(json!({"number": 7, "html_url": format!("https://github.example/{o}/{r}/issues/7")})),
                    )
                },
            ),
        )
        .route(
            "/repos/{owner}/{repo}/pulls",
            post(
                |State(s): State<Shared>, Path((o, r)): Path<(String, String)>, h: HeaderMap, Json(b): Json<Value>| async move {
                    if let Some(err) = gate(&s, format!("/repos/{o}/{r}/pulls"), h, b).await {
                        return err;
                    }
                    (
                        StatusCode::CREATED,
                        Json(json!({"number": 8, "html_url": format!("https://github.example/{o}/{r}/pull/8")})),
                    )
                },
            ),
        )
        .route(
            "/repos/{owner}/{repo}/dispatches",
            post(
                |State(s): State<Shared>, Path((o, r)): Path<(String, String)>, h: HeaderMap, Json(b): Json<Value>| async move {
                    if let Some((code, body)) = gate(&s, format!("/repos/{o}/{r}/dispatches"), h, b).await {
                        return (code, body.to_string());
                    }
                    (StatusCode::NO_CONTENT, String::new())
                },
            ),
        )
        .with_state(shared);
    StandIn {
        url: serve(router).await,
        seen,
    }
}

/// OpenCode stand-in: `POST /session`, `POST /session/{id}/message`.
pub async fn opencode(session_mode: Mode, message_mode: Mode) -> StandIn {
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let s1 = Shared {
        mode: session_mode,
        seen: seen.clone(),
    };
    let s2 = Shared {
        mode: message_mode,
        seen: seen.clone(),
    };
    let router = Router::new()
        .route(
            "/session",
            post(move |h: HeaderMap, Json(b): Json<Value>| async move {
                if let Some(err) = gate(&s1, "/session".into(), h, b).await {
                    return err;
                }
                (StatusCode::OK, Json(json!({"id": "ses_42", "title": "x"})))
            }),
        )
        .route(
            "/session/{id}/message",
            post(
                move |Path(id): Path<String>, h: HeaderMap, Json(b): Json<Value>| async move {
                    if let Some(err) = gate(&s2, format!("/session/{id}/message"), h, b).await {
                        return err;
                    }
                    (
                        StatusCode::OK,
                        Json(json!({"info": {"id": "msg_1", "sessionID": id}, "parts": []})),
                    )
                },
            ),
        );
    StandIn {
        url: serve(router).await,
        seen,
    }
}
