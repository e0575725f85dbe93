//! Notification sinks for actions: a Slack-compatible incoming webhook,
//! PagerDuty Events API v2, and a generic HMAC-signed webhook.
//!
//! The payloads are pure functions of the action ([`slack_payload`],
//! [`pagerduty_payload`], [`webhook_payload`]); [`Notifier`] sends them.
//! Written on `reqwest` because neither service has a maintained Rust client
//! that fits: both are one JSON POST.
//!
//! PagerDuty: `dedup_key` is the incident id (the action id without one), so
//! every update of one incident lands on one PagerDuty incident; a verified
//! recovery `resolve`s it, anything else `trigger`s (PagerDuty deduplicates).

use std::time::Duration;

use selfheal_common::config::NotifyConfig;
use selfheal_schemas::{Action, ActionKind, ActionStatus};
use serde_json::{json, Value};

use super::webhook::{signature, SIGNATURE_HEADER};
use super::with_retries;
use crate::error::{Error, Result};

/// Whether an action update is announced: not `none` actions, not the
/// transient `in_progress`.
pub fn worth_notifying(a: &Action) -> bool {
    a.action != ActionKind::None && a.status != ActionStatus::InProgress
}

fn symbol<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(Value::String(s)) => s,
        _ => "other".to_owned(),
    }
}

/// One line saying what happened.
pub fn summary(a: &Action) -> String {
    let target = a
        .target_revision
        .as_deref()
        .map(|t| format!(" to {t}"))
        .unwrap_or_default();
    format!(
        "selfheal: {} {}{target} for {}@{} ({}, rule {})",
        symbol(&a.action),
        symbol(&a.status),
        a.service,
        a.revision,
        a.reasons
            .first()
            .map(String::as_str)
            .unwrap_or("no reason given"),
        a.rule
    )
}

/// A Slack incoming-webhook message: `text` (the fallback and the
/// notification) and one section block with the reasons.
pub fn slack_payload(a: &Action) -> Value {
    let mut details = a
        .reasons
        .iter()
        .map(|r| format!("• {r}"))
        .collect::<Vec<_>>()
        .join("\n");
    if let Some(pr) = &a.pr_url {
        details.push_str(&format!("\nPR: {pr}"));
    }
    json!({
        "text": summary(a),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": summary(a)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": details}},
        ],
    })
}

/// A PagerDuty Events API v2 event.
pub fn pagerduty_payload(a: &Action, routing_key: &str) -> Value {
    let dedup_key = a.incident_id.clone().unwrap_or_else(|| a.id.clone());
    if a.status == ActionStatus::RecoveryVerified {
        return json!({
            "routing_key": routing_key,
            "event_action": "resolve",
            "dedup_key": dedup_key,
        });
    }
    let severity = match (a.action, a.status) {
        (_, ActionStatus::Failed | ActionStatus::RecoveryFailed) => "critical",
        (ActionKind::Rollback, _) => "error",
        _ => "warning",
    };
    json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "payload": {
            // PagerDuty caps the summary at 1024 characters.
            "summary": summary(a).chars().take(1024).collect::<String>(),
            "source": a.service,
            "severity": severity,
            "component": a.service,
            "class": symbol(&a.action),
            "custom_details": webhook_payload(a),
        },
    })
}

/// The generic webhook body: the action's fields.
pub fn webhook_payload(a: &Action) -> Value {
    json!({
        "action_id": a.id,
        "incident_id": a.incident_id,
        "service": a.service,
        "revision": a.revision,
        "action": symbol(&a.action),
        "status": symbol(&a.status),
        "rule": a.rule,
        "reasons": a.reasons,
        "target_revision": a.target_revision,
        "pr_url": a.pr_url,
        "signatures": a.signatures,
        "verdict_id": a.verdict_id,
        "decided_at_ms": a.decided_at_ms,
    })
}

/// Sends action notifications to the configured sinks.
#[derive(Debug, Clone)]
pub struct Notifier {
    config: NotifyConfig,
    routing_key: Option<String>,
    webhook_secret: Option<Vec<u8>>,
    client: reqwest::Client,
}

impl Notifier {
    /// The configured notifier; `None` when no sink is on. A sink whose
    /// secret is missing fails start-up.
    pub fn from_config(config: &NotifyConfig) -> Result<Option<Self>> {
        let env = |name: &str, what: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    Error::Config(format!(
                        "fixer.notify: the environment variable {name} ({what}) is not set"
                    ))
                })
        };
        let routing_key = match config.pagerduty_routing_key_env.as_str() {
            "" => None,
            name => Some(env(name, "the PagerDuty routing key")?),
        };
        let webhook_secret = match config.webhook_url.as_str() {
            "" => None,
            _ => Some(env(&config.webhook_secret_env, "the webhook's HMAC secret")?.into_bytes()),
        };
        Self::with_secrets(config, routing_key, webhook_secret)
    }

    /// [`Self::from_config`] with explicit secrets.
    pub fn with_secrets(
        config: &NotifyConfig,
        routing_key: Option<String>,
        webhook_secret: Option<Vec<u8>>,
    ) -> Result<Option<Self>> {
        if config.slack_webhook_url.is_empty() && routing_key.is_none() && webhook_secret.is_none()
        {
            return Ok(None);
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.timeout_ms))
            .build()
            .map_err(|source| Error::Transport {
                what: "building the HTTP client".to_owned(),
                source,
            })?;
        Ok(Some(Self {
            config: config.clone(),
            routing_key,
            webhook_secret,
            client,
        }))
    }

    /// Sends `action` to every sink (each with its retries); returns the
    /// sinks' errors, if any, after trying all of them.
    pub async fn notify(&self, action: &Action) -> Vec<Error> {
        let mut errors = Vec::new();
        if !worth_notifying(action) {
            return errors;
        }
        let c = &self.config;
        let backoff = Duration::from_millis(c.backoff_ms);
        let mut sinks: Vec<(String, Value, Option<Vec<u8>>)> = Vec::new();
        if !c.slack_webhook_url.is_empty() {
            sinks.push((c.slack_webhook_url.clone(), slack_payload(action), None));
        }
        if let Some(key) = &self.routing_key {
            sinks.push((
                c.pagerduty_url.clone(),
                pagerduty_payload(action, key),
                None,
            ));
        }
        if let Some(secret) = &self.webhook_secret {
            sinks.push((
                c.webhook_url.clone(),
                webhook_payload(action),
                Some(secret.clone()),
            ));
        }
        for (url, body, secret) in sinks {
            let body = serde_json::to_vec(&body).expect("a JSON value serializes");
            let what = format!("notification to {url}");
            let sent = with_retries(c.retries, backoff, |_| {
                let mut req = self
                    .client
                    .post(&url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone());
                if let Some(secret) = &secret {
                    req = req.header(SIGNATURE_HEADER, signature(secret, &body));
                }
                super::send(req, &what, c.timeout_ms)
            })
            .await;
            if let Err(e) = sent {
                tracing::warn!(action = %action.id, error = %e, "notification not delivered");
                errors.push(e);
            }
        }
        errors
    }
}
