//! GitHub `deployment_status` webhooks → deploy records. Pure.
//!
//! A delivery is authentic when `X-Hub-Signature-256` is
//! `sha256=<hex HMAC-SHA256(secret, body)>` (compared in constant time).
//! Only `deployment_status` events whose state is `success` are deploys;
//! every other event or state is acknowledged and ignored. Mapping: service
//! = the repository's name, revision = `deployment.sha`, time =
//! `deployment_status.created_at`, repo = the repository's `clone_url`. The
//! previous revision is not in the payload: triage finds the diff through
//! its diff sources from the repository.

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::record::DeployRecord;

/// Checks `header` (`sha256=<hex>`) against the HMAC of `body`.
pub fn verify(secret: &[u8], body: &[u8], header: Option<&str>) -> Result<(), String> {
    let header = header.ok_or("missing X-Hub-Signature-256")?;
    let hex = header
        .strip_prefix("sha256=")
        .ok_or("X-Hub-Signature-256 must start with sha256=")?;
    let expected = decode_hex(hex).ok_or("X-Hub-Signature-256 is not hexadecimal")?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(body);
    mac.verify_slice(&expected)
        .map_err(|_| "X-Hub-Signature-256 does not match the body".to_owned())
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The deploy a delivery of `event` (the `X-GitHub-Event` header) describes:
/// `Ok(None)` for events and states that are not a finished deploy; `Err`
/// names the missing or malformed field.
pub fn deploy_of(event: &str, payload: &Value) -> Result<Option<DeployRecord>, String> {
    if event != "deployment_status" {
        return Ok(None);
    }
    let text = |path: &[&str]| -> Result<&str, String> {
        let mut v = payload;
        for key in path {
            v = v
                .get(key)
                .ok_or_else(|| format!("missing {}", path.join(".")))?;
        }
        v.as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| format!("{} must be a non-empty string", path.join(".")))
    };
    if text(&["deployment_status", "state"])? != "success" {
        return Ok(None);
    }
    let created = text(&["deployment_status", "created_at"])?;
    let ts = OffsetDateTime::parse(created, &Rfc3339)
        .map_err(|e| format!("deployment_status.created_at: {e}"))?;
    Ok(Some(DeployRecord {
        ts_ms: i64::try_from(ts.unix_timestamp_nanos() / 1_000_000)
            .map_err(|_| "deployment_status.created_at out of range".to_owned())?,
        service: text(&["repository", "name"])?.to_owned(),
        revision: text(&["deployment", "sha"])?.to_owned(),
        previous_revision: None,
        repo: text(&["repository", "clone_url"]).ok().map(str::to_owned),
        commit_range: None,
        diff: None,
        diff_url: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_checked_like_github_documents() {
        // GitHub's documented example: secret "It's a Secret to Everybody",
        // payload "Hello, World!".
        let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert!(verify(b"It's a Secret to Everybody", b"Hello, World!", Some(sig)).is_ok());
        assert!(verify(b"It's a Secret to Everybody", b"Hello, World?", Some(sig)).is_err());
        assert!(verify(b"k", b"x", None).is_err());
        assert!(verify(b"k", b"x", Some("sha1=00")).is_err());
    }

    #[test]
    fn a_successful_deployment_status_is_a_deploy() {
        let payload = serde_json::json!({
            "action": "created",
            "deployment_status": {"state": "success", "created_at": "2026-03-09T10:00:00Z",
                "environment": "production"},
            "deployment": {"sha": "a1b2c3d", "ref": "main", "environment": "production"},
            "repository": {"name": "checkout", "clone_url": "https://github.com/shop/checkout.git"}
        });
        let d = deploy_of("deployment_status", &payload).unwrap().unwrap();
        assert_eq!(
            (d.service.as_str(), d.revision.as_str()),
            ("checkout", "a1b2c3d")
        );
        assert_eq!(d.ts_ms, 1_773_050_400_000);
        assert_eq!(
            d.repo.as_deref(),
            Some("https://github.com/shop/checkout.git")
        );
        let mut pending = payload.clone();
        pending["deployment_status"]["state"] = "pending".into();
        assert!(deploy_of("deployment_status", &pending).unwrap().is_none());
        assert!(deploy_of("push", &payload).unwrap().is_none());
        let mut broken = payload;
        broken["deployment"] = serde_json::json!({});
        assert_eq!(
            deploy_of("deployment_status", &broken).unwrap_err(),
            "missing deployment.sha"
        );
    }
}
