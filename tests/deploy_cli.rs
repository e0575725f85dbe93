//! `selfheal deploy` against a real intake and broker: from a git checkout
//! with two commits it records one Deploy whose diff is the change between
//! them and whose previous revision is the first; the same step run again
//! (a CI retry) records nothing more. Also the body the README's Argo CD
//! notification template renders is taken as a deploy.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::{bootstrap, isolated_config, of, read_until};
use selfheal_common::CancellationToken;
use selfheal_schemas::{AnyEvent, Deploy};

fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=ci", "-c", "user.email=ci@example.com"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn repo() -> (tempfile::TempDir, String, String) {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    git(d, &["init", "-q"]);
    std::fs::create_dir_all(d.join("src/shop")).unwrap();
    let mut body: String = (1..=40).map(|i| format!("# line {i}\n")).collect();
    body.push_str("def quote(params):\n    return convert(params.get(\"currency\", \"USD\"))\n");
    std::fs::write(d.join("src/shop/pricing.py"), &body).unwrap();
    git(d, &["add", "."]);
    git(d, &["commit", "-qm", "a"]);
    let a = git(d, &["rev-parse", "HEAD"]);
    std::fs::write(
        d.join("src/shop/pricing.py"),
        body.replace("\"USD\"", "\"usd\""),
    )
    .unwrap();
    git(d, &["commit", "-qam", "b"]);
    let b = git(d, &["rev-parse", "HEAD"]);
    (tmp, a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ci_step_records_one_deploy_with_its_diff_even_when_retried() {
    let Some(bootstrap) = bootstrap() else { return };
    let mut config = isolated_config(&bootstrap);
    config.ingest.flush_interval_ms = 200;
    let config = Arc::new(config);
    let shutdown = CancellationToken::new();
    let ingest = selfheal_ingest::spawn(config.clone(), shutdown.clone())
        .await
        .unwrap();
    let (dir, a, b) = repo();
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_selfheal"))
            .args([
                "deploy",
                "--ingest",
                &format!("http://{}", ingest.http_addr),
            ])
            .args(["--service", "checkout", "--revision", &b, "--diff-from", &a])
            .args(["--repo", "shop/checkout", "--ts", "2026-03-09T10:00:00Z"])
            .arg("--repo-dir")
            .arg(dir.path())
            .output()
            .unwrap()
    };
    for _ in 0..2 {
        let out = run();
        assert!(out.status.success(), "{out:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("recorded"),
            "{out:?}"
        );
    }
    // A bad revision range fails the step, naming git's complaint.
    let out = Command::new(env!("CARGO_BIN_EXE_selfheal"))
        .args([
            "deploy",
            "--service",
            "checkout",
            "--revision",
            &b,
            "--diff-from",
            "no-such-rev",
            "--dry-run",
        ])
        .arg("--repo-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("git diff"),
        "{out:?}"
    );

    // Argo CD notifications: the body the README's template renders.
    let argo = serde_json::json!({
        "type": "deploy", "ts": "2026-03-09T11:00:00Z", "service": "cart",
        "revision": "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432",
        "repo": "https://github.com/shop/cart.git"
    });
    let r = reqwest::Client::new()
        .post(format!("http://{}/v1/deploys", ingest.http_addr))
        .header("content-type", "application/json")
        .body(argo.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let (bs, topic) = (bootstrap.clone(), config.topics.deploys.clone());
    let events = tokio::task::spawn_blocking(move || {
        read_until(&bs, &topic, Duration::from_secs(10), |_| false)
    })
    .await
    .unwrap();
    let deploys: Vec<Deploy> = of(&events, |e| match e {
        AnyEvent::Deploy(d) => Some(d),
        _ => None,
    });
    assert_eq!(
        deploys.len(),
        2,
        "one per deploy, the retry not counted: {deploys:?}"
    );
    let d = deploys.iter().find(|d| d.service == "checkout").unwrap();
    assert_eq!(d.revision, b);
    assert_eq!(d.previous_revision.as_deref(), Some(a.as_str()));
    let diff = d.diff.as_deref().unwrap_or_default();
    assert!(
        diff.contains("+    return convert(params.get(\"currency\", \"usd\"))"),
        "{diff}"
    );
    // 25 lines of context: the enclosing `def` is in the diff.
    assert!(diff.contains(" def quote(params):"), "{diff}");
    assert!(deploys.iter().any(|d| d.service == "cart"));
    shutdown.cancel();
    ingest.wait().await.unwrap();
}
