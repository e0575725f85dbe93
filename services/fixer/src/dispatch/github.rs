//! GitHub REST API: issues, `repository_dispatch`, pull requests.
//!
//! Used by the issue and repository-dispatch dispatchers and by the git-based
//! ones to open their PR. The base URL is configurable (GitHub Enterprise, or a
//! local stand-in in tests).

use std::time::Duration;

use async_trait::async_trait;
use selfheal_common::config::{DispatchConfig, DispatcherKind};
use serde_json::{json, Value};

use super::{prompt, Dispatched, FixDispatcher, Target};
use crate::error::{Error, Result};
use crate::policy::FixRequest;

/// A small GitHub API client.
#[derive(Debug, Clone)]
pub struct GitHub {
    api: String,
    token: Option<String>,
    client: reqwest::Client,
}

impl GitHub {
    /// A client for `api` (no trailing slash needed) with an optional token.
    pub fn new(api: &str, token: Option<String>, timeout: Duration) -> Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent("selfheal-fixer")
            .build()
            .map_err(|source| Error::Transport {
                what: "building the HTTP client".to_owned(),
                source,
            })?;
        Ok(Self {
            api: api.trim_end_matches('/').to_owned(),
            token,
            client,
        })
    }

    /// From the dispatch settings; the token comes from `github_token_env`.
    pub fn from_config(c: &DispatchConfig) -> Result<Self> {
        Self::new(
            &c.github_api_url,
            std::env::var(&c.github_token_env)
                .ok()
                .filter(|t| !t.is_empty()),
            Duration::from_millis(c.http_timeout_ms),
        )
    }

    async fn post(&self, path: &str, body: &Value, what: &str) -> Result<Value> {
        let mut req = self
            .client
            .post(format!("{}{path}", self.api))
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28")
            .json(body);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let (_, text) = crate::executors::send(req, what, 0).await?;
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|e| Error::Response {
            what: what.to_owned(),
            why: e.to_string(),
        })
    }

    fn html_url(v: &Value, what: &str) -> Result<String> {
        v["html_url"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| Error::Response {
                what: what.to_owned(),
                why: "no html_url".to_owned(),
            })
    }

    /// Opens an issue; returns its URL.
    pub async fn create_issue(
        &self,
        repo: &str,
        title: &str,
        body: &str,
        labels: &[String],
        assignees: &[String],
    ) -> Result<String> {
        let what = format!("creating an issue in {repo}");
        let v = self
            .post(
                &format!("/repos/{repo}/issues"),
                &json!({"title": title, "body": body, "labels": labels, "assignees": assignees}),
                &what,
            )
            .await?;
        Self::html_url(&v, &what)
    }

    /// Sends a `repository_dispatch` event (GitHub answers 204, no body).
    pub async fn repository_dispatch(
        &self,
        repo: &str,
        event_type: &str,
        payload: &Value,
    ) -> Result<()> {
        self.post(
            &format!("/repos/{repo}/dispatches"),
            &json!({"event_type": event_type, "client_payload": payload}),
            &format!("repository_dispatch to {repo}"),
        )
        .await
        .map(|_| ())
    }

    /// Opens a pull request of `head` into `base`; returns its URL.
    pub async fn create_pull(
        &self,
        repo: &str,
        title: &str,
        head: &str,
        base: &str,
        body: &str,
    ) -> Result<String> {
        let what = format!("opening a pull request in {repo}");
        let v = self
            .post(
                &format!("/repos/{repo}/pulls"),
                &json!({"title": title, "head": head, "base": base, "body": body}),
                &what,
            )
            .await?;
        Self::html_url(&v, &what)
    }
}

/// Opens a GitHub issue holding the investigation prompt, with the configured
/// labels (e.g. the one that triggers Open SWE) and assignees (a coding agent).
#[derive(Debug, Clone)]
pub struct IssueDispatcher {
    /// The client.
    pub github: GitHub,
    /// Issue labels.
    pub labels: Vec<String>,
    /// Issue assignees.
    pub assignees: Vec<String>,
}

#[async_trait]
impl FixDispatcher for IssueDispatcher {
    fn kind(&self) -> DispatcherKind {
        DispatcherKind::GithubIssue
    }

    async fn dispatch(&self, req: &FixRequest, target: &Target) -> Result<Dispatched> {
        let repo = target.github_repo()?;
        let url = self
            .github
            .create_issue(
                repo,
                &prompt::title(req),
                &prompt::build(req),
                &self.labels,
                &self.assignees,
            )
            .await?;
        Ok(Dispatched {
            pr_url: None,
            reference: format!("issue {url}"),
        })
    }
}

/// Sends a `repository_dispatch` event whose payload carries the prompt, for a
/// workflow (e.g. a coding agent's action) to pick up.
#[derive(Debug, Clone)]
pub struct RepositoryDispatcher {
    /// The client.
    pub github: GitHub,
    /// The event type.
    pub event_type: String,
}

#[async_trait]
impl FixDispatcher for RepositoryDispatcher {
    fn kind(&self) -> DispatcherKind {
        DispatcherKind::RepositoryDispatch
    }

    async fn dispatch(&self, req: &FixRequest, target: &Target) -> Result<Dispatched> {
        let repo = target.github_repo()?;
        let payload = json!({
            "action_id": req.action_id,
            "service": req.service,
            "revision": req.revision,
            "previous_revision": req.previous_revision,
            "title": prompt::title(req),
            "prompt": prompt::build(req),
        });
        self.github
            .repository_dispatch(repo, &self.event_type, &payload)
            .await?;
        Ok(Dispatched {
            pr_url: None,
            reference: format!("repository_dispatch {} to {repo}", self.event_type),
        })
    }
}
