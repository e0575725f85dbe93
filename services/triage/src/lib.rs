//! selfheal triage: decides whether a deploy caused a regression, citing the
//! changed line.
//!
//! # Layout
//! - [`diff`] (pure): unified-diff parsing.
//! - [`core`] (pure): linking stack frames to changed lines; verdicts.
//! - the [`Core`] impl (adapter): the shared at-least-once consumer loop runs the
//!   core over deploys and regressions, publishing verdicts.
//!
//! Known limit of the skeleton: deploys are kept in memory, so after a restart
//! triage only knows deploys it re-reads (its group offsets are committed).
//! The triage issue adds diff fetching from git and a per-deploy cache.

pub mod core;
pub mod diff;

use std::sync::Arc;

use selfheal_common::consumer::{Core, CoreStage};
use selfheal_common::service::{spawn_stage, ServiceHandle};
use selfheal_common::{CancellationToken, Config, Result};
use selfheal_schemas::{AnyEvent, Verdict};

/// The service name.
pub const NAME: &str = "triage";

/// Starts triage (consumer loop + health/metrics HTTP).
pub async fn spawn(config: Arc<Config>, shutdown: CancellationToken) -> Result<ServiceHandle> {
    let inputs = vec![
        config.topics.deploys.clone(),
        config.topics.regressions.clone(),
    ];
    let stage = CoreStage::new(
        NAME,
        core::Triage::new(config.triage.clone()),
        config.topics.verdicts.clone(),
    );
    let addr = config.http.triage;
    spawn_stage(config, stage, addr, inputs, shutdown).await
}

/// Runs triage until `shutdown` is cancelled.
pub async fn run(config: Arc<Config>, shutdown: CancellationToken) -> Result<()> {
    spawn(config, shutdown).await?.wait().await
}

impl Core for core::Triage {
    type Output = Verdict;

    fn on_event(&mut self, event: &AnyEvent) -> Vec<Verdict> {
        core::Triage::on_event(self, event)
    }

    fn describe(o: &Verdict) -> String {
        format!(
            "{:?} ({:.2}) for {} {}: {}",
            o.decision,
            o.confidence,
            o.service,
            o.revision,
            o.evidence
                .first()
                .map(|e| format!("{}:{}", e.file, e.line.unwrap_or_default()))
                .unwrap_or_else(|| "no line cited".to_owned())
        )
    }
}
