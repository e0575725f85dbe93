//! selfheal triage: decides whether a deploy caused a regression, citing the
//! changed line.
//!
//! # Layout
//! - [`diff`] (pure): unified-diff parsing.
//! - [`core`] (pure): linking stack frames to changed lines; verdicts.
//! - [`TriageStage`] (adapter): deploys + regressions → verdicts over Kafka.
//!
//! Known limit of the skeleton: deploys are kept in memory, so after a restart
//! triage only knows deploys it re-reads (its group offsets are committed).
//! The triage issue adds diff fetching from git and a per-deploy cache.

pub mod core;
pub mod diff;

use std::sync::Arc;

use selfheal_common::consumer::{MessageMeta, Stage, StageError};
use selfheal_common::kafka::Outgoing;
use selfheal_common::service::{spawn_stage, ServiceHandle};
use selfheal_common::{CancellationToken, Config, Result};
use selfheal_schemas::AnyEvent;

/// The service name.
pub const NAME: &str = "triage";

/// Triage as a consumer-loop stage.
#[derive(Debug)]
pub struct TriageStage {
    core: core::Triage,
    verdicts_topic: String,
}

impl TriageStage {
    /// Builds the stage from the configuration.
    pub fn new(config: &Config) -> Self {
        Self {
            core: core::Triage::new(config.triage.clone()),
            verdicts_topic: config.topics.verdicts.clone(),
        }
    }
}

impl Stage for TriageStage {
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
            .map(|v| {
                tracing::info!(service = %v.service, revision = %v.revision, decision = ?v.decision,
                    confidence = v.confidence, evidence = ?v.evidence.first().map(|e| (&e.file, e.line)),
                    "verdict");
                Outgoing::event(&self.verdicts_topic, v)
                    .map_err(|e| StageError::Fatal(format!("cannot encode verdict: {e}")))
            })
            .collect()
    }
}

/// Starts triage (consumer loop + health/metrics HTTP).
pub async fn spawn(config: Arc<Config>, shutdown: CancellationToken) -> Result<ServiceHandle> {
    let inputs = vec![
        config.topics.deploys.clone(),
        config.topics.regressions.clone(),
    ];
    let stage = TriageStage::new(&config);
    let addr = config.http.triage;
    spawn_stage(config, stage, addr, inputs, shutdown).await
}

/// Runs triage until `shutdown` is cancelled.
pub async fn run(config: Arc<Config>, shutdown: CancellationToken) -> Result<()> {
    spawn(config, shutdown).await?.wait().await
}
