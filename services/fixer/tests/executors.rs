//! Rollback executors with real processes and a local webhook receiver.

mod standin;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use selfheal_common::config::RollbackConfig;
use selfheal_fixer::error::Error;
use selfheal_fixer::executors::command::CommandExecutor;
use selfheal_fixer::executors::webhook::{signature, WebhookExecutor};
use selfheal_fixer::executors::{with_retries, RollbackExecutor};
use selfheal_fixer::policy::RollbackJob;

fn job(target: &str) -> RollbackJob {
    RollbackJob {
        action_id: "0123456789abcdef".into(),
        service: "checkout".into(),
        revision: "b".into(),
        target_revision: target.into(),
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .trim()
        .to_owned()
}

fn alive(pid: &str) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

/// A "service" is a process serving one revision; the deploy script (what
/// `kubectl rollout undo` is in production) stops it and starts the target.
#[tokio::test]
async fn rollback_command_really_restarts_the_process_at_the_previous_revision() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let service = dir.join("service.sh");
    std::fs::write(
        &service,
        "#!/bin/sh\n# serve revision $2 of $1: report it, then stay up\necho \"$2\" > \"$3/$1.revision\"\nexec sleep 300\n",
    )
    .unwrap();
    let deploy = dir.join("deploy.sh");
    std::fs::write(
        &deploy,
        format!(
            "#!/bin/sh\nset -e\nstate={state}\n[ -f \"$state/$1.pid\" ] && kill \"$(cat \"$state/$1.pid\")\" 2>/dev/null || true\n\
             rm -f \"$state/$1.revision\"\nnohup {service} \"$1\" \"$2\" \"$state\" >/dev/null 2>&1 &\necho $! > \"$state/$1.pid\"\n\
             for i in $(seq 50); do [ -s \"$state/$1.revision\" ] && exit 0; sleep 0.1; done\nexit 1\n",
            state = dir.display(),
            service = service.display()
        ),
    )
    .unwrap();
    for f in [&service, &deploy] {
        std::process::Command::new("chmod")
            .arg("+x")
            .arg(f)
            .status()
            .unwrap();
    }
    // Revision b is live.
    let st = std::process::Command::new(&deploy)
        .args(["checkout", "b"])
        .status()
        .unwrap();
    assert!(st.success());
    let pid_b = read(&dir.join("checkout.pid"));
    assert_eq!(read(&dir.join("checkout.revision")), "b");
    assert!(alive(&pid_b));

    let exec = CommandExecutor::new(&RollbackConfig {
        command: vec![
            deploy.to_string_lossy().into_owned(),
            "{service}".into(),
            "{target_revision}".into(),
        ],
        timeout_ms: 10_000,
        ..RollbackConfig::default()
    })
    .unwrap();
    let out = exec.rollback(&job("a")).await.unwrap();
    assert!(out.contains("deploy.sh checkout a"), "{out}");

    let pid_a = read(&dir.join("checkout.pid"));
    assert_ne!(pid_a, pid_b, "a new process");
    assert!(alive(&pid_a));
    assert_eq!(read(&dir.join("checkout.revision")), "a");
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(&pid_b) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!alive(&pid_b), "the old revision's process was stopped");
    let _ = std::process::Command::new("kill").arg(&pid_a).status();
}

#[tokio::test]
async fn rollback_command_refuses_unsafe_values_and_reports_failures() {
    let exec = CommandExecutor::new(&RollbackConfig {
        command: vec!["echo".into(), "{target_revision}".into()],
        ..RollbackConfig::default()
    })
    .unwrap();
    let err = exec
        .rollback(&job("a; touch /tmp/pwned"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unsafe { .. }), "{err}");
    assert!(
        CommandExecutor::new(&RollbackConfig {
            command: vec!["echo".into(), "{prompt}".into()],
            ..RollbackConfig::default()
        })
        .is_err(),
        "unknown placeholder rejected at start-up"
    );
    let failing = CommandExecutor::new(&RollbackConfig {
        command: vec![
            "sh".into(),
            "-c".into(),
            "echo no such deployment >&2; exit 3".into(),
        ],
        ..RollbackConfig::default()
    })
    .unwrap();
    let err = failing.rollback(&job("a")).await.unwrap_err();
    assert!(err.to_string().contains("no such deployment"), "{err}");
    let slow = CommandExecutor::new(&RollbackConfig {
        command: vec!["sleep".into(), "30".into()],
        timeout_ms: 200,
        ..RollbackConfig::default()
    })
    .unwrap();
    let started = Instant::now();
    let err = slow.rollback(&job("a")).await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

type Received = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

async fn webhook_receiver(fail_first: usize) -> (String, Received) {
    let got: Received = Arc::default();
    let g = got.clone();
    let router = Router::new().route(
        "/rollback",
        post(move |h: HeaderMap, body: Bytes| {
            let g = g.clone();
            async move {
                let mut v = g.lock().unwrap();
                v.push((h, body));
                if v.len() <= fail_first {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::ACCEPTED
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (format!("http://{addr}/rollback"), got)
}

#[tokio::test]
async fn webhook_body_is_hmac_signed_and_5xx_is_retried() {
    let (url, got) = webhook_receiver(1).await;
    let exec = WebhookExecutor::with_secret(
        &RollbackConfig {
            webhook_url: url,
            timeout_ms: 5_000,
            ..RollbackConfig::default()
        },
        b"s3cret".to_vec(),
    )
    .unwrap();
    let j = job("a");
    let out = with_retries(2, Duration::from_millis(10), |_| exec.rollback(&j))
        .await
        .unwrap();
    assert!(out.contains("202"), "{out}");
    let got = got.lock().unwrap();
    assert_eq!(got.len(), 2, "one 503, then success");
    let (headers, body) = &got[1];
    let sent: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(sent["target_revision"], "a");
    assert_eq!(sent["service"], "checkout");
    assert_eq!(
        headers["x-selfheal-signature"],
        signature(b"s3cret", body).as_str()
    );
    assert_ne!(
        headers["x-selfheal-signature"],
        signature(b"other", body).as_str()
    );
}

#[tokio::test]
async fn webhook_timeout_and_missing_secret() {
    let gh = standin::github(standin::Mode::Slow(Duration::from_secs(5))).await;
    let exec = WebhookExecutor::with_secret(
        &RollbackConfig {
            webhook_url: format!("{}/repos/x/y/issues", gh.url),
            timeout_ms: 200,
            ..RollbackConfig::default()
        },
        b"k".to_vec(),
    )
    .unwrap();
    let err = exec.rollback(&job("a")).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    let err = WebhookExecutor::new(&RollbackConfig {
        webhook_url: "http://127.0.0.1:1/x".into(),
        webhook_secret_env: "SELFHEAL_TEST_SURELY_UNSET_SECRET".into(),
        ..RollbackConfig::default()
    })
    .unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err}");
}

/// `rollback.executor = X` builds the executor of kind X, and it records the
/// name the policy planned with: the name has one copy, on the kind.
#[test]
fn the_configured_kind_builds_its_executor_under_the_planned_name() {
    use selfheal_common::config::{Config, RollbackExecutorKind as K};
    use selfheal_fixer::adapter::Executors;
    let mut names = std::collections::BTreeSet::new();
    for kind in [K::Command, K::Webhook, K::Kubernetes, K::ArgoRollouts] {
        let mut c = Config::default();
        let r = &mut c.fixer.rollback;
        r.executor = kind;
        r.command = vec!["true".into()];
        r.webhook_url = "http://127.0.0.1:9/rollback".into();
        // Any variable that is set serves as the secret here.
        r.webhook_secret_env = "PATH".into();
        r.kubernetes.token_file = String::new();
        r.kubernetes.ca_file = String::new();
        let built = Executors::from_config(&c).expect("builds").rollback;
        let executor = built.expect("an executor for a named kind");
        assert_eq!(executor.kind(), kind);
        assert_eq!(Some(executor.name()), kind.executor_name());
        assert!(names.insert(executor.name()), "{} twice", executor.name());
    }
    let none = Executors::from_config(&Config::default()).expect("builds");
    assert!(none.rollback.is_none());
    assert_eq!(K::None.executor_name(), None);
}
