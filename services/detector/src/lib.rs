//! selfheal detector: decides whether a deploy made errors worse.
//!
//! # Layout
//! - [`core`] (pure): windows, baselines, the sequential test, the fleet guard.
//! - [`fleet`] (pure): fleet summaries exchanged between detector instances,
//!   and the bounded view of the other instances' services.
//! - [`series`] (pure): compact minute/hour event-time count series.
//! - [`stats`] (pure): p-values, e-values, e-BH, dispersion.
//! - the [`Core`] impl (adapter): the shared at-least-once consumer loop runs the
//!   core over signatures, traffic, deploys and builds, publishing regressions.
//! - [`exactly_once`] (adapter): the transactional loop for real brokers, with
//!   the state changelog and the fleet topic ([`fleet_topic`]).
//! - [`metrics`] (adapter): the core's input-quality counters as Prometheus
//!   metrics (late and beyond-horizon events, waited evaluations).

pub mod core;
pub mod exactly_once;
pub mod fleet;
pub mod fleet_topic;
pub mod metrics;
pub mod series;
pub mod stats;

use std::sync::Arc;

use selfheal_common::consumer::{Core, CoreStage};
use selfheal_common::service::{spawn_stage, ServiceHandle};
use selfheal_common::{CancellationToken, Config, Result};
use selfheal_schemas::{AnyEvent, Regression};

/// The service name.
pub const NAME: &str = "detector";

/// Starts the detector (consumer loop + health/metrics HTTP): exactly-once
/// with a state changelog when `detector.exactly_once`, else at-least-once.
pub async fn spawn(config: Arc<Config>, shutdown: CancellationToken) -> Result<ServiceHandle> {
    if config.detector.exactly_once {
        return exactly_once::spawn(config, shutdown).await;
    }
    if config.detector.fleet_guard {
        tracing::info!(
            "at-least-once mode: the fleet guard sees this instance's services only \
             (the fleet topic is exchanged by the exactly-once mode)"
        );
    }
    let t = &config.topics;
    let inputs = vec![
        t.signatures.clone(),
        t.traffic.clone(),
        t.deploys.clone(),
        t.builds.clone(),
    ];
    let stage = CoreStage::new(
        NAME,
        core::Detector::new(config.detector.clone()),
        config.topics.regressions.clone(),
    );
    let addr = config.http.detector;
    spawn_stage(config, stage, addr, inputs, shutdown).await
}

/// Runs the detector until `shutdown` is cancelled.
pub async fn run(config: Arc<Config>, shutdown: CancellationToken) -> Result<()> {
    spawn(config, shutdown).await?.wait().await
}

impl Core for core::Detector {
    type Output = Regression;

    fn on_event(&mut self, event: &AnyEvent) -> Vec<Regression> {
        core::Detector::on_event(self, event)
    }

    fn describe(o: &Regression) -> String {
        format!(
            "{:?} regression of {} in {} {}: observed {}, p = {:.2e}",
            o.kind, o.signature, o.service, o.revision, o.observed, o.p_value
        )
    }
}
