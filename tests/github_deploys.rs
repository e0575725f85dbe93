//! GitHub `deployment_status` webhooks on the intake against a real broker:
//! a signed delivery of a successful deployment becomes a Deploy event, a
//! redelivery (same `X-GitHub-Delivery`) is answered without writing again,
//! a bad signature is 401 with nothing written, other states are ignored.
//!
//! Its own test binary: it sets a process environment variable.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{bootstrap, isolated_config, of, read_until};
use selfheal_common::CancellationToken;
use selfheal_fixer::executors::webhook::signature;
use selfheal_schemas::{AnyEvent, Deploy};

const SECRET: &str = "It's a Secret to Everybody";

/// A `deployment_status` delivery in the shape of GitHub's webhook reference
/// (abridged: the fields selfheal reads plus their usual neighbours).
fn delivery(state: &str) -> String {
    serde_json::json!({
        "action": "created",
        "deployment_status": {
            "url": "https://api.github.com/repos/shop/checkout/deployments/42/statuses/1",
            "id": 1, "state": state, "environment": "production",
            "created_at": "2026-03-09T10:00:00Z", "updated_at": "2026-03-09T10:00:00Z",
            "creator": {"login": "octocat", "id": 1, "type": "User"}
        },
        "deployment": {
            "url": "https://api.github.com/repos/shop/checkout/deployments/42",
            "id": 42, "sha": "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678", "ref": "main",
            "task": "deploy", "payload": {}, "environment": "production",
            "created_at": "2026-03-09T09:59:00Z"
        },
        "repository": {
            "id": 7, "name": "checkout", "full_name": "shop/checkout",
            "clone_url": "https://github.com/shop/checkout.git", "default_branch": "main"
        },
        "sender": {"login": "octocat", "id": 1, "type": "User"}
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_deployment_status_becomes_one_deploy() {
    let Some(bootstrap) = bootstrap() else { return };
    std::env::set_var("SELFHEAL_TEST_GITHUB_SECRET", SECRET);
    let mut config = isolated_config(&bootstrap);
    config.ingest.flush_interval_ms = 200;
    config.ingest.github_webhook_secret_env = "SELFHEAL_TEST_GITHUB_SECRET".to_owned();
    let config = Arc::new(config);
    let shutdown = CancellationToken::new();
    let ingest = selfheal_ingest::spawn(config.clone(), shutdown.clone())
        .await
        .unwrap();
    let url = format!("http://{}/v1/webhooks/github", ingest.http_addr);
    let post = |body: String, sig: String, delivery_id: &str| {
        reqwest::Client::new()
            .post(&url)
            .header("content-type", "application/json")
            .header("x-github-event", "deployment_status")
            .header("x-github-delivery", delivery_id.to_owned())
            .header("x-hub-signature-256", sig)
            .body(body)
            .send()
    };

    let forged = delivery("success");
    let r = post(
        forged.clone(),
        signature(b"wrong", forged.as_bytes()),
        "d-0",
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 401);

    let body = delivery("success");
    let sig = signature(SECRET.as_bytes(), body.as_bytes());
    let r = post(body.clone(), sig.clone(), "d-1").await.unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["accepted"], 1, "{v}");
    let r = post(body, sig, "d-1").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["idempotent-replayed"], "true", "a redelivery");

    let pending = delivery("pending");
    let r = post(
        pending.clone(),
        signature(SECRET.as_bytes(), pending.as_bytes()),
        "d-2",
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["accepted"], 0, "not a finished deploy: {v}");

    let b = bootstrap.clone();
    let topic = config.topics.deploys.clone();
    let events = tokio::task::spawn_blocking(move || {
        read_until(&b, &topic, Duration::from_secs(10), |_| false)
    })
    .await
    .unwrap();
    let deploys: Vec<Deploy> = of(&events, |e| match e {
        AnyEvent::Deploy(d) => Some(d),
        _ => None,
    });
    assert_eq!(deploys.len(), 1, "exactly one deploy: {deploys:?}");
    let d = &deploys[0];
    assert_eq!(d.service, "checkout");
    assert_eq!(d.revision, "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678");
    assert_eq!(
        d.repo.as_deref(),
        Some("https://github.com/shop/checkout.git")
    );

    shutdown.cancel();
    ingest.wait().await.unwrap();
}
