//! selfheal detector: decides whether a deploy made errors worse.
//!
//! # Layout
//! - [`core`] (pure): the detection rules over events; no IO, no clock.
//! - [`DetectorStage`] (adapter): plugs the core into the shared at-least-once
//!   consumer loop (signatures, traffic, deploys, builds → regressions).

pub mod core;

use std::sync::Arc;

use selfheal_common::consumer::{MessageMeta, Stage, StageError};
use selfheal_common::kafka::Outgoing;
use selfheal_common::service::{spawn_stage, ServiceHandle};
use selfheal_common::{CancellationToken, Config, Result};
use selfheal_schemas::AnyEvent;

/// The service name.
pub const NAME: &str = "detector";

/// The detector as a consumer-loop stage.
#[derive(Debug)]
pub struct DetectorStage {
    core: core::Detector,
    regressions_topic: String,
}

impl DetectorStage {
    /// Builds the stage from the configuration.
    pub fn new(config: &Config) -> Self {
        Self {
            core: core::Detector::new(config.detector.clone()),
            regressions_topic: config.topics.regressions.clone(),
        }
    }
}

impl Stage for DetectorStage {
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
            .map(|r| {
                tracing::info!(service = %r.service, revision = %r.revision, signature = %r.signature,
                    kind = ?r.kind, observed = r.observed, p_value = r.p_value, "regression");
                Outgoing::event(&self.regressions_topic, r)
                    .map_err(|e| StageError::Fatal(format!("cannot encode regression: {e}")))
            })
            .collect()
    }
}

/// Starts the detector (consumer loop + health/metrics HTTP).
pub async fn spawn(config: Arc<Config>, shutdown: CancellationToken) -> Result<ServiceHandle> {
    let t = &config.topics;
    let inputs = vec![
        t.signatures.clone(),
        t.traffic.clone(),
        t.deploys.clone(),
        t.builds.clone(),
    ];
    let stage = DetectorStage::new(&config);
    let addr = config.http.detector;
    spawn_stage(config, stage, addr, inputs, shutdown).await
}

/// Runs the detector until `shutdown` is cancelled.
pub async fn run(config: Arc<Config>, shutdown: CancellationToken) -> Result<()> {
    spawn(config, shutdown).await?.wait().await
}
