//! Rollback by POSTing an HMAC-signed JSON body to a webhook (Argo, Spinnaker,
//! an in-house deployer).
//!
//! Body: `{"action_id", "service", "revision", "target_revision"}`. Header
//! `X-Selfheal-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes>`,
//! as GitHub signs its webhooks, so receivers can reuse their verification.
//! Any 2xx is success; 5xx, 429, timeouts and connection errors are retried.

use std::time::Duration;

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use selfheal_common::config::{RollbackConfig, RollbackExecutorKind};
use sha2::Sha256;

use super::RollbackExecutor;
use crate::error::{Error, Result};
use crate::policy::RollbackJob;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "x-selfheal-signature";

/// POSTs rollbacks to a webhook.
#[derive(Debug, Clone)]
pub struct WebhookExecutor {
    url: String,
    secret: Vec<u8>,
    client: reqwest::Client,
}

impl WebhookExecutor {
    /// Builds the executor; the secret is read from `webhook_secret_env`.
    pub fn new(config: &RollbackConfig) -> Result<Self> {
        let secret = std::env::var(&config.webhook_secret_env).map_err(|_| {
            Error::Config(format!(
                "rollback webhook: the environment variable {} (the HMAC secret) is not set",
                config.webhook_secret_env
            ))
        })?;
        Self::with_secret(config, secret.into_bytes())
    }

    /// Builds the executor with an explicit secret.
    pub fn with_secret(config: &RollbackConfig, secret: Vec<u8>) -> Result<Self> {
        if config.webhook_url.is_empty() {
            return Err(Error::Config("rollback.webhook_url is empty".to_owned()));
        }
        if secret.is_empty() {
            return Err(Error::Config("rollback webhook secret is empty".to_owned()));
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.timeout_ms))
            .build()
            .map_err(|source| Error::Transport {
                what: "building the HTTP client".to_owned(),
                source,
            })?;
        Ok(Self {
            url: config.webhook_url.clone(),
            secret,
            client,
        })
    }
}

/// `sha256=<hex>` of HMAC-SHA256(`secret`, `body`).
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(body);
    format!("sha256={}", hex(&mac.finalize().into_bytes()))
}

/// Lowercase hexadecimal.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[async_trait]
impl RollbackExecutor for WebhookExecutor {
    fn kind(&self) -> RollbackExecutorKind {
        RollbackExecutorKind::Webhook
    }

    async fn rollback(&self, job: &RollbackJob) -> Result<String> {
        let body = serde_json::to_vec(&serde_json::json!({
            "action_id": job.action_id,
            "service": job.service,
            "revision": job.revision,
            "target_revision": job.target_revision,
        }))
        .expect("a JSON object serializes");
        let what = format!("rollback webhook {}", self.url);
        let req = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature(&self.secret, &body))
            .body(body);
        let (status, _) = super::send(req, &what, 0).await?;
        Ok(format!("webhook answered {status}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_rfc_4231_vector() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
