//! Rollback executors: the IO that carries out a planned rollback.
//!
//! Each runs off the consumer's hot path (the adapter spawns it), with a timeout
//! per attempt and retries with exponential backoff for retryable failures; its
//! outcome is published as an update of the same action.
//!
//! # Layout
//! - [`template`]: argv templates with strictly validated placeholders.
//! - [`command`]: run a command (no shell), e.g. `kubectl rollout undo …`.
//! - [`webhook`]: POST an HMAC-SHA256-signed JSON body.
//! - [`kube`]: a Kubernetes Deployment or Argo Rollouts `Rollout` back to the
//!   target revision's pod template (abort first when mid-update).
//! - [`notify`]: announce actions to Slack, PagerDuty (Events API v2) and a
//!   signed webhook.

pub mod command;
pub mod kube;
pub mod notify;
pub mod template;
pub mod webhook;

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use selfheal_common::config::RollbackExecutorKind;

use crate::error::{Error, Result};
use crate::policy::RollbackJob;

/// Sends an HTTP request for the fixer (webhook, GitHub, OpenCode): a
/// transport failure, a timeout (reported as `timeout_ms`) or a non-2xx
/// status is an error naming `what`, a bad status with the scrubbed tail of
/// the body. Returns the status and the body text.
pub(crate) async fn send(
    req: reqwest::RequestBuilder,
    what: &str,
    timeout_ms: u64,
) -> Result<(reqwest::StatusCode, String)> {
    let resp = req.send().await.map_err(|source| {
        if source.is_timeout() {
            Error::Timeout {
                what: what.to_owned(),
                ms: timeout_ms,
            }
        } else {
            Error::Transport {
                what: what.to_owned(),
                source,
            }
        }
    })?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    if !status.is_success() {
        return Err(Error::Status {
            what: what.to_owned(),
            status: status.as_u16(),
            body: command::tail(&crate::text::scrub(&text), 300),
        });
    }
    Ok((status, text))
}

/// Carries out rollbacks.
#[async_trait]
pub trait RollbackExecutor: Send + Sync {
    /// Which `rollback.executor` this is; its name comes from the kind.
    fn kind(&self) -> RollbackExecutorKind;

    /// The name recorded in `Action.executor`, the one the policy planned
    /// with ([`RollbackExecutorKind::executor_name`]).
    fn name(&self) -> &'static str {
        self.kind().executor_name().unwrap_or("none")
    }

    /// Rolls back once (no retries); returns a one-line account of what happened.
    async fn rollback(&self, job: &RollbackJob) -> Result<String>;
}

/// Retries `attempt` while it fails with a retryable error, `retries` times at
/// most, waiting `backoff`, then twice that, and so on.
pub async fn with_retries<T, F, Fut>(retries: u32, backoff: Duration, mut attempt: F) -> Result<T>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut wait = backoff;
    let mut n = 0;
    loop {
        match attempt(n).await {
            Ok(v) => return Ok(v),
            Err(e) if e.is_retryable() && n < retries => {
                tracing::warn!(attempt = n + 1, error = %e, retry_in_ms = wait.as_millis() as u64, "retrying");
                tokio::time::sleep(wait).await;
                wait = wait.saturating_mul(2);
                n += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn retries_retryable_errors_with_backoff_then_gives_up() {
        let calls = AtomicU32::new(0);
        let started = tokio::time::Instant::now();
        let r: Result<()> = with_retries(2, Duration::from_secs(1), |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async {
                Err(Error::Timeout {
                    what: "x".into(),
                    ms: 1,
                })
            }
        })
        .await;
        assert!(r.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(started.elapsed(), Duration::from_secs(3), "1 s then 2 s");
    }

    #[tokio::test(start_paused = true)]
    async fn does_not_retry_refusals() {
        let calls = AtomicU32::new(0);
        let r: Result<()> = with_retries(5, Duration::from_secs(1), |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err(Error::Config("bad".into())) }
        })
        .await;
        assert!(r.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
