//! selfheal fixer: decides between rollback, fix-forward, notify and nothing, per
//! verdict, and records the decision as an Action.
//!
//! # Layout
//! - [`core`] (pure): the remediation policy.
//! - [`FixerStage`] (adapter): deploys + regressions + verdicts → actions over Kafka.

pub mod core;

use std::sync::Arc;

use selfheal_common::consumer::{MessageMeta, Stage, StageError};
use selfheal_common::kafka::Outgoing;
use selfheal_common::service::{spawn_stage, ServiceHandle};
use selfheal_common::{CancellationToken, Config, Result};
use selfheal_schemas::AnyEvent;

/// The service name.
pub const NAME: &str = "fixer";

/// The fixer as a consumer-loop stage.
#[derive(Debug)]
pub struct FixerStage {
    core: core::Fixer,
    actions_topic: String,
}

impl FixerStage {
    /// Builds the stage from the configuration.
    pub fn new(config: &Config) -> Self {
        Self {
            core: core::Fixer::new(config.fixer.clone()),
            actions_topic: config.topics.actions.clone(),
        }
    }
}

impl Stage for FixerStage {
    fn name(&self) -> &'static str {
        NAME
    }

    fn handle(
        &mut self,
        event: AnyEvent,
        _meta: &MessageMeta,
    ) -> Result<Vec<Outgoing>, StageError> {
        self.core
            .on_event(&event)
            .iter()
            .map(|a| {
                tracing::info!(service = %a.service, revision = %a.revision, action = ?a.action,
                    status = ?a.status, rule = %a.rule, "action");
                Outgoing::event(&self.actions_topic, a)
                    .map_err(|e| StageError::Fatal(format!("cannot encode action: {e}")))
            })
            .collect()
    }
}

/// Starts the fixer (consumer loop + health/metrics HTTP).
pub async fn spawn(config: Arc<Config>, shutdown: CancellationToken) -> Result<ServiceHandle> {
    let t = &config.topics;
    let inputs = vec![t.deploys.clone(), t.regressions.clone(), t.verdicts.clone()];
    let stage = FixerStage::new(&config);
    let addr = config.http.fixer;
    spawn_stage(config, stage, addr, inputs, shutdown).await
}

/// Runs the fixer until `shutdown` is cancelled.
pub async fn run(config: Arc<Config>, shutdown: CancellationToken) -> Result<()> {
    spawn(config, shutdown).await?.wait().await
}
