//! selfheal fixer: decides between rollback, fix-forward, notify and nothing, per
//! verdict; carries it out through executors and agent dispatchers; and checks
//! that the service recovered.
//!
//! # Layout
//! - [`policy`] (pure, sync, event time only; in the core crate
//!   `selfheal-fixer-core` with the `[fixer]` config): the rule table, the
//!   safety rails and the recovery check. Drivable from a backtest ([`policy::Policy::actions_for`],
//!   [`policy::backtest_record`]).
//! - [`executors`]: rollback by argv-template command or HMAC-signed webhook;
//!   notifications of actions (Slack, PagerDuty, signed webhook).
//! - [`dispatch`]: fix-forward via a GitHub issue or `repository_dispatch`, an
//!   OpenCode server, a local CLI agent in a worktree, or the built-in revert.
//! - [`text`]: scrubbing and fencing of untrusted text.
//! - [`adapter`]: the consumer-loop stage, job tasks, restore from the actions topic.
//! - [`error`]: [`error::Error`], retryable or not.

pub mod adapter;
pub mod dispatch;
pub mod error;
pub mod executors;
/// The remediation policy lives in the pure core crate (`selfheal-fixer-core`).
pub use selfheal_fixer_core::policy;
pub mod text;

use std::sync::Arc;
use std::time::Duration;

use selfheal_common::kafka::{ensure_topics, EventProducer};
use selfheal_common::service::{spawn_stage, ServiceHandle};
use selfheal_common::{CancellationToken, Config, Result};

/// The service name.
pub const NAME: &str = "fixer";

/// Starts the fixer: builds the executors, restores its state from the actions
/// topic, reports actions interrupted by a previous stop, then runs the consumer
/// loop (deploys, regressions, verdicts, traffic, signature counts, actions) and
/// the health/metrics HTTP server.
pub async fn spawn(config: Arc<Config>, shutdown: CancellationToken) -> Result<ServiceHandle> {
    let executors =
        adapter::Executors::from_config(&config).map_err(|e| selfheal_common::Error::Config {
            source_name: "fixer".to_owned(),
            message: e.to_string(),
        })?;
    ensure_topics(&config).await?;
    let mut policy = policy::Policy::new(config.fixer.clone());
    let restore_config = config.clone();
    let restored = tokio::task::spawn_blocking(move || {
        let topic = restore_config.topics.actions.clone();
        adapter::read_actions(&restore_config, &topic, Duration::from_secs(60))
    })
    .await
    .map_err(selfheal_common::Error::caused(NAME, "restore task"))??;
    for a in &restored {
        policy.restore(a);
    }
    // The deploys and regressions it already consumed (committed offsets) are
    // re-read into its tables, or a verdict arriving after a restart would
    // wait for context it will never see again.
    let boot = config.clone();
    let context = tokio::task::spawn_blocking(move || {
        let mut events = Vec::new();
        for topic in [&boot.topics.deploys, &boot.topics.regressions] {
            events.extend(selfheal_common::kafka::read_to_end(
                &boot.kafka,
                &boot.kafka.group_prefix,
                topic,
                Duration::from_secs(60),
            )?);
        }
        Ok::<_, selfheal_common::Error>(events)
    })
    .await
    .map_err(selfheal_common::Error::caused(NAME, "bootstrap task"))??;
    for e in &context {
        policy.remember(e);
    }
    let updates = EventProducer::new(&config.kafka)?;
    let interrupted = policy.finish_restore();
    let msgs = interrupted
        .iter()
        .map(|d| selfheal_common::kafka::Outgoing::event(&config.topics.actions, &d.action))
        .collect::<Result<Vec<_>, _>>()
        .map_err(selfheal_common::Error::caused(NAME, "cannot encode Action"))?;
    updates.send_all(&msgs).await?;
    tracing::info!(
        restored = restored.len(),
        interrupted = interrupted.len(),
        ?executors,
        dry_run = config.fixer.dry_run,
        "fixer state restored from the actions topic"
    );
    let t = &config.topics;
    let inputs = vec![
        t.deploys.clone(),
        t.regressions.clone(),
        t.verdicts.clone(),
        t.traffic.clone(),
        t.signatures.clone(),
        t.latency.clone(),
        t.actions.clone(),
    ];
    let stage = adapter::FixerStage::new(policy, config.clone(), executors, updates);
    let addr = config.http.fixer;
    spawn_stage(config, stage, addr, inputs, shutdown).await
}

/// Runs the fixer until `shutdown` is cancelled.
pub async fn run(config: Arc<Config>, shutdown: CancellationToken) -> Result<()> {
    spawn(config, shutdown).await?.wait().await
}
