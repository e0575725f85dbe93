//! The fixer against the real broker: idempotent across restarts and duplicate
//! verdicts, and a live rollback carried out, reported and verified.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{bootstrap, isolated_config, of, read_until};
use selfheal_common::kafka::{EventProducer, Outgoing};
use selfheal_common::{CancellationToken, Config};
use selfheal_schemas::{
    Action, ActionKind, ActionStatus, AnyEvent, Event, Regression, Traffic, Verdict,
};

const WAIT: Duration = Duration::from_secs(60);
const T0: i64 = 1_773_050_400_000;

fn regression(service: &str) -> Regression {
    Regression {
        id: format!("r-{service}"),
        service: service.into(),
        signature: "00112233aabbccdd".into(),
        rate_ratio: 0.0,
        ..selfheal_schemas::testing::regression()
    }
}

fn verdict(service: &str) -> Verdict {
    Verdict {
        id: format!("v-{service}"),
        service: service.into(),
        reasoning: "frame touches a changed line".into(),
        evidence: vec![],
        signatures: vec!["00112233aabbccdd".into()],
        regression_ids: vec![format!("r-{service}")],
        ..selfheal_schemas::testing::verdict()
    }
}

async fn send<E: Event>(config: &Config, topic: &str, events: &[E]) {
    let p = EventProducer::new(&config.kafka).unwrap();
    let msgs: Vec<Outgoing> = events
        .iter()
        .map(|e| Outgoing::event(topic, e).unwrap())
        .collect();
    p.send_all(&msgs).await.unwrap();
}

async fn incident(config: &Config, service: &str) {
    let t = &config.topics;
    send(config, &t.deploys, &[common::deploy(service, T0)]).await;
    send(config, &t.regressions, &[regression(service)]).await;
    send(config, &t.verdicts, &[verdict(service)]).await;
}

async fn actions_until(
    config: &Config,
    done: impl Fn(&[Action]) -> bool + Send + 'static,
) -> Vec<Action> {
    actions_within(config, WAIT, done).await
}

async fn actions_within(
    config: &Config,
    wait: Duration,
    done: impl Fn(&[Action]) -> bool + Send + 'static,
) -> Vec<Action> {
    let b = config.kafka.bootstrap.clone().unwrap();
    let topic = config.topics.actions.clone();
    let events = tokio::task::spawn_blocking(move || {
        read_until(&b, &topic, wait, |evs| {
            done(&of(evs, |e| match e {
                AnyEvent::Action(a) => Some(a),
                _ => None,
            }))
        })
    })
    .await
    .unwrap();
    of(&events, |e| match e {
        AnyEvent::Action(a) => Some(a),
        _ => None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_action_per_deploy_across_restarts_and_duplicate_verdicts() {
    let Some(bootstrap) = bootstrap() else { return };
    let config = Arc::new(isolated_config(&bootstrap));
    let shutdown = CancellationToken::new();
    let fixer = selfheal_fixer::spawn(config.clone(), shutdown.clone())
        .await
        .unwrap();
    incident(&config, "checkout").await;
    let first = actions_until(&config, |a| !a.is_empty()).await;
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0].action, ActionKind::Rollback);
    assert_eq!(first[0].status, ActionStatus::DryRun);
    shutdown.cancel();
    fixer.wait().await.unwrap();

    // A new process (offsets committed, state gone) gets the same verdict again,
    // twice, then an incident elsewhere that proves it is consuming.
    let shutdown = CancellationToken::new();
    let fixer = selfheal_fixer::spawn(config.clone(), shutdown.clone())
        .await
        .unwrap();
    send(
        &config,
        &config.topics.verdicts,
        &[verdict("checkout"), verdict("checkout")],
    )
    .await;
    incident(&config, "cart").await;
    actions_until(&config, |a| a.iter().any(|a| a.service == "cart")).await;
    // Partitions are read in any order: read everything there is for a while.
    let all = actions_within(&config, Duration::from_secs(3), |_| false).await;
    assert!(all.iter().any(|a| a.service == "cart"));
    let checkout: Vec<_> = all.iter().filter(|a| a.service == "checkout").collect();
    assert_eq!(
        checkout.len(),
        1,
        "duplicates after a restart gave no new action: {all:?}"
    );
    shutdown.cancel();
    fixer.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn live_rollback_is_executed_reported_and_verified() {
    let Some(bootstrap) = bootstrap() else { return };
    let tmp =
        std::env::temp_dir().join(format!("selfheal-fixer-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&tmp).unwrap();
    let mut config = isolated_config(&bootstrap);
    config.fixer.dry_run = false;
    config.fixer.rollback.executor = selfheal_common::config::RollbackExecutorKind::Command;
    let marker = tmp.join("rolled-back");
    config.fixer.rollback.command = vec![
        "sh".into(),
        "-c".into(),
        format!("echo \"$0 $1\" > {}", marker.display()),
        "{service}".into(),
        "{target_revision}".into(),
    ];
    let config = Arc::new(config);
    let shutdown = CancellationToken::new();
    let fixer = selfheal_fixer::spawn(config.clone(), shutdown.clone())
        .await
        .unwrap();
    incident(&config, "checkout").await;
    let seen = actions_until(&config, |a| {
        a.iter().any(|a| a.status == ActionStatus::Succeeded)
    })
    .await;
    let statuses: Vec<_> = seen.iter().map(|a| a.status).collect();
    assert!(statuses.contains(&ActionStatus::Planned), "{statuses:?}");
    assert!(statuses.contains(&ActionStatus::InProgress), "{statuses:?}");
    // In topic order (one key, one partition): the job starts only once
    // `planned` is on the topic.
    let at = |s: ActionStatus| statuses.iter().position(|x| *x == s).unwrap();
    assert!(
        at(ActionStatus::Planned) < at(ActionStatus::InProgress)
            && at(ActionStatus::InProgress) < at(ActionStatus::Succeeded),
        "{statuses:?}"
    );
    assert!(
        seen.iter().all(|a| a.id == seen[0].id),
        "one action id throughout"
    );
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap().trim(),
        "checkout a"
    );

    // Traffic past the verification window (grace 60 s + window 300 s after the
    // decision at T0+120 s), with no more errors: recovery verified.
    let traffic: Vec<Traffic> = (0..8)
        .map(|i| Traffic {
            service: "checkout".into(),
            revision: "a".into(),
            window_start_ms: T0 + 180_000 + i * 60_000,
            window_s: 60,
            requests: 1000,
            errors: None,
        })
        .collect();
    send(&config, &config.topics.traffic, &traffic).await;
    let seen = actions_until(&config, |a| {
        a.iter().any(|a| a.status == ActionStatus::RecoveryVerified)
    })
    .await;
    let verified = seen
        .iter()
        .find(|a| a.status == ActionStatus::RecoveryVerified)
        .unwrap();
    assert_eq!(verified.recovery_verified, Some(true));
    assert_eq!(verified.id, seen[0].id);
    shutdown.cancel();
    fixer.wait().await.unwrap();
    let _ = std::fs::remove_dir_all(&tmp);
}
