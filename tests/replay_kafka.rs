//! `selfheal replay` against the real broker: history that ingest wrote to
//! the input topics is replayed from a timestamp into separate `.replay`
//! topics, leaving the live output topics alone.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::{bootstrap, isolated_config, of, read_until, BAD_DEPLOY};
use selfheal_common::CancellationToken;
use selfheal_schemas::{AnyEvent, RegressionKind};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_writes_the_backtest_results_to_separate_topics() {
    let Some(bootstrap) = bootstrap() else { return };
    let config = Arc::new(isolated_config(&bootstrap));
    let shutdown = CancellationToken::new();
    let ingest = selfheal_ingest::spawn(config.clone(), shutdown.clone())
        .await
        .unwrap();
    let r = reqwest::Client::new()
        .post(format!("http://{}/v1/ndjson/logs", ingest.http_addr))
        .body(BAD_DEPLOY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    shutdown.cancel();
    ingest.wait().await.unwrap();

    let t = &config.topics;
    let status = Command::new(env!("CARGO_BIN_EXE_selfheal"))
        .args([
            "replay",
            "--kafka",
            &bootstrap,
            "--from",
            "2026-03-09T00:00:00Z",
        ])
        .env("SELFHEAL__TOPICS__DEPLOYS", &t.deploys)
        .env("SELFHEAL__TOPICS__BUILDS", &t.builds)
        .env("SELFHEAL__TOPICS__TRAFFIC", &t.traffic)
        .env("SELFHEAL__TOPICS__SIGNATURES", &t.signatures)
        .env("SELFHEAL__TOPICS__REGRESSIONS", &t.regressions)
        .env("SELFHEAL__TOPICS__VERDICTS", &t.verdicts)
        .env("SELFHEAL__TOPICS__ACTIONS", &t.actions)
        .env("SELFHEAL__KAFKA__GROUP_PREFIX", &config.kafka.group_prefix)
        .status()
        .unwrap();
    assert!(status.success());

    let wait = Duration::from_secs(30);
    let regs = read_until(
        &bootstrap,
        &format!("{}.replay", t.regressions),
        wait,
        |e| !e.is_empty(),
    );
    let regs = of(&regs, |e| match e {
        AnyEvent::Regression(r) => Some(r),
        _ => None,
    });
    assert_eq!(regs.len(), 1, "{regs:?}");
    assert_eq!(regs[0].kind, RegressionKind::New);
    assert_eq!(
        (regs[0].service.as_str(), regs[0].revision.as_str()),
        ("checkout", "b")
    );
    let actions = read_until(&bootstrap, &format!("{}.replay", t.actions), wait, |e| {
        !e.is_empty()
    });
    assert!(!actions.is_empty());
    // The live output topic was not written.
    let live = read_until(&bootstrap, &t.regressions, Duration::from_secs(3), |e| {
        !e.is_empty()
    });
    assert!(live.is_empty(), "{live:?}");
}
