//! OpenCode headless server (`opencode serve`): `POST /session` creates a
//! session, `POST /session/{id}/message` sends the prompt. The session id is
//! recorded even when the message fails, so a human can open the session.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};

use super::{prompt, Dispatched, FixDispatcher, Target};
use selfheal_common::config::DispatcherKind;

use crate::error::{Error, Result};
use crate::policy::FixRequest;

/// Dispatches to an OpenCode server.
#[derive(Debug, Clone)]
pub struct OpenCodeDispatcher {
    url: String,
    client: reqwest::Client,
    http_timeout: Duration,
    message_timeout: Duration,
}

impl OpenCodeDispatcher {
    /// A dispatcher for the server at `url`. Creating the session is bounded by
    /// `http_timeout`; the message (the agent works while it is open) by
    /// `message_timeout`.
    pub fn new(url: &str, http_timeout: Duration, message_timeout: Duration) -> Result<Self> {
        let client = reqwest::Client::builder()
            .connect_timeout(http_timeout)
            .timeout(http_timeout.max(message_timeout))
            .build()
            .map_err(|source| Error::Transport {
                what: "building the HTTP client".to_owned(),
                source,
            })?;
        Ok(Self {
            url: url.trim_end_matches('/').to_owned(),
            client,
            http_timeout,
            message_timeout,
        })
    }

    async fn post(&self, path: &str, body: &Value, timeout: Duration, what: &str) -> Result<Value> {
        let req = self
            .client
            .post(format!("{}{path}", self.url))
            .timeout(timeout)
            .json(body);
        let (_, text) = crate::executors::send(req, what, timeout.as_millis() as u64).await?;
        serde_json::from_str(&text).map_err(|e| Error::Response {
            what: what.to_owned(),
            why: e.to_string(),
        })
    }
}

#[async_trait]
impl FixDispatcher for OpenCodeDispatcher {
    fn kind(&self) -> DispatcherKind {
        DispatcherKind::Opencode
    }

    async fn dispatch(&self, req: &FixRequest, _target: &Target) -> Result<Dispatched> {
        let session = self
            .post(
                "/session",
                &json!({"title": prompt::title(req)}),
                self.http_timeout,
                "creating an OpenCode session",
            )
            .await?;
        let id = session["id"]
            .as_str()
            .filter(|id| crate::executors::template::check_value(id).is_ok())
            .ok_or_else(|| Error::Response {
                what: "creating an OpenCode session".to_owned(),
                why: "no usable session id".to_owned(),
            })?
            .to_owned();
        let body = json!({"parts": [{"type": "text", "text": prompt::build(req)}]});
        self.post(
            &format!("/session/{id}/message"),
            &body,
            self.message_timeout,
            &format!("sending the prompt to OpenCode session {id}"),
        )
        .await?;
        Ok(Dispatched {
            pr_url: None,
            reference: format!("opencode session {id}"),
        })
    }
}
