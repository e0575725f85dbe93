//! Notifications of actions against local receivers that record every
//! request: a Slack-compatible incoming webhook, PagerDuty's Events API v2
//! (`/v2/enqueue`, answering 202 like the real one) and a generic webhook
//! that verifies the HMAC signature and fails its first request with 503.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use selfheal_common::config::NotifyConfig;
use selfheal_fixer::executors::notify::Notifier;
use selfheal_fixer::executors::webhook::signature;
use selfheal_schemas::{Action, ActionKind, ActionStatus};
use serde_json::Value;

#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<(String, HeaderMap, Value)>>>,
}

async fn record(
    State(r): State<Receiver>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let value: Value = serde_json::from_slice(&body).expect("a JSON body");
    let path = uri.path().to_owned();
    let mut seen = r.seen.lock().unwrap();
    seen.push((path.clone(), headers.clone(), value));
    match path.as_str() {
        "/v2/enqueue" => (
            StatusCode::ACCEPTED,
            r#"{"status":"success","message":"Event processed"}"#.to_owned(),
        ),
        "/hook" => {
            let ok = headers
                .get("x-selfheal-signature")
                .and_then(|v| v.to_str().ok())
                == Some(signature(b"s3cret", &body).as_str());
            let first = seen.iter().filter(|(p, _, _)| p == "/hook").count() == 1;
            match (ok, first) {
                (false, _) => (StatusCode::UNAUTHORIZED, "bad signature".to_owned()),
                (true, true) => (StatusCode::SERVICE_UNAVAILABLE, "try again".to_owned()),
                (true, false) => (StatusCode::OK, "ok".to_owned()),
            }
        }
        _ => (StatusCode::OK, "ok".to_owned()),
    }
}

async fn receiver() -> (String, Receiver) {
    let r = Receiver::default();
    let app = Router::new()
        .route("/slack", post(record))
        .route("/v2/enqueue", post(record))
        .route("/hook", post(record))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), r)
}

fn action(status: ActionStatus) -> Action {
    Action {
        id: "act-1".into(),
        service: "checkout".into(),
        revision: "b".into(),
        action: ActionKind::Rollback,
        status,
        rule: "caused_high_severity_rollback".into(),
        reasons: vec!["KeyError at src/checkout/pricing.py:216 since deploy b".into()],
        executor: Some("rollback_command".into()),
        target_revision: Some("a".into()),
        pr_url: None,
        recovery_verified: None,
        signatures: vec!["sig1".into()],
        verdict_id: Some("v1".into()),
        decided_at_ms: 1_773_050_520_000,
        incident_id: Some("inc-7".into()),
    }
}

#[tokio::test]
async fn every_sink_gets_its_documented_shape() {
    let (base, r) = receiver().await;
    let config = NotifyConfig {
        slack_webhook_url: format!("{base}/slack"),
        pagerduty_routing_key_env: "UNUSED".into(),
        pagerduty_url: format!("{base}/v2/enqueue"),
        webhook_url: format!("{base}/hook"),
        retries: 2,
        backoff_ms: 10,
        ..NotifyConfig::default()
    };
    let notifier =
        Notifier::with_secrets(&config, Some("R0UTINGKEY".into()), Some(b"s3cret".to_vec()))
            .unwrap()
            .expect("sinks configured");

    let errors = notifier.notify(&action(ActionStatus::Succeeded)).await;
    assert!(errors.is_empty(), "{errors:?}");
    let errors = notifier
        .notify(&action(ActionStatus::RecoveryVerified))
        .await;
    assert!(errors.is_empty(), "{errors:?}");
    // Not announced: the transient status.
    assert!(notifier
        .notify(&action(ActionStatus::InProgress))
        .await
        .is_empty());

    let seen = r.seen.lock().unwrap().clone();
    let of = |path: &str| -> Vec<Value> {
        seen.iter()
            .filter(|(p, _, _)| p == path)
            .map(|(_, _, v)| v.clone())
            .collect()
    };
    let slack = of("/slack");
    assert_eq!(slack.len(), 2, "{slack:?}");
    let text = slack[0]["text"].as_str().unwrap();
    assert!(
        text.contains("rollback succeeded to a for checkout@b"),
        "{text}"
    );
    assert_eq!(slack[0]["blocks"][1]["type"], "section");
    assert!(slack[0]["blocks"][1]["text"]["text"]
        .as_str()
        .unwrap()
        .contains("pricing.py:216"));

    let pd = of("/v2/enqueue");
    assert_eq!(pd.len(), 2);
    assert_eq!(pd[0]["routing_key"], "R0UTINGKEY");
    assert_eq!(pd[0]["event_action"], "trigger");
    assert_eq!(pd[0]["dedup_key"], "inc-7", "the incident id");
    assert_eq!(pd[0]["payload"]["source"], "checkout");
    assert_eq!(pd[0]["payload"]["severity"], "error");
    assert!(pd[0]["payload"]["summary"].as_str().unwrap().len() <= 1024);
    assert_eq!(pd[1]["event_action"], "resolve", "recovery resolves");
    assert_eq!(pd[1]["dedup_key"], "inc-7");

    // The webhook's first answer was a 503: retried, signed each time.
    let hook = of("/hook");
    assert_eq!(hook.len(), 3, "2 notifications, the first resent once");
    assert_eq!(hook[0], hook[1]);
    assert_eq!(hook[0]["action"], "rollback");
    assert_eq!(hook[0]["status"], "succeeded");
    assert_eq!(hook[0]["target_revision"], "a");
}

#[tokio::test]
async fn no_sink_configured_is_no_notifier_and_a_missing_secret_fails_start_up() {
    assert!(Notifier::from_config(&NotifyConfig::default())
        .unwrap()
        .is_none());
    let config = NotifyConfig {
        webhook_url: "http://127.0.0.1:9/hook".into(),
        webhook_secret_env: "SELFHEAL_TEST_NOTIFY_SECRET_NEVER_SET".into(),
        ..NotifyConfig::default()
    };
    let e = Notifier::from_config(&config).unwrap_err().to_string();
    assert!(e.contains("SELFHEAL_TEST_NOTIFY_SECRET_NEVER_SET"), "{e}");
}
