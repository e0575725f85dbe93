//! selfheal detector: decides whether a deploy made errors worse.
//!
//! # Layout
//! In the core crate `selfheal-detector-core` with the `[detector]` config,
//! re-exported here:
//! - [`core`] (pure): windows, baselines, the sequential test, the fleet guard.
//! - [`fleet`] (pure): fleet summaries exchanged between detector instances,
//!   and the bounded view of the other instances' services.
//! - [`series`] (pure): compact minute/hour event-time count series.
//! - [`stats`] (pure): p-values, e-values, e-BH, dispersion.
//!
//! In this crate:
//! - [`validate`] (pure): input events of the wrong type for their topic or
//!   with absurd values are rejected (dead-lettered) before the core.
//! - [`Checked`], the [`Core`] impl (adapter): the shared at-least-once
//!   consumer loop runs the checked core over signatures, traffic, deploys and
//!   builds, publishing regressions.
//! - [`exactly_once`] (adapter): the transactional loop for real brokers, with
//!   the state changelog and the fleet topic ([`fleet_topic`]).
//! - [`merge`] (pure): the input partitions' records merged in event-time
//!   order (the backtest's), waiting for an empty partition unless it is
//!   caught up; [`ordered_input`] (adapter) feeds it from the consumer and
//!   commits only what was processed.
//! - [`changelog`] (pure): the changelog's bounded records (a head per
//!   service, a part per signature, chunked) and their reassembly.
//! - [`metrics`] (adapter): the core's input-quality counters as Prometheus
//!   metrics (late and beyond-horizon events, waited evaluations).

pub mod changelog;
pub mod exactly_once;
pub mod fleet_topic;
pub mod merge;
pub mod metrics;
pub mod ordered_input;
pub mod validate;

/// The statistics live in the core crate (`selfheal-detector-core`), which
/// builds and tests without librdkafka or an async runtime.
pub use selfheal_detector_core::{config, core, fleet, series, stats};

use std::sync::Arc;

use selfheal_common::config::TopicsConfig;
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
    let inputs: Vec<String> = t.detector_inputs().map(str::to_owned).to_vec();
    let stage = CoreStage::new(
        NAME,
        Checked {
            detector: core::Detector::new(config.detector.clone()),
            topics: config.topics.clone(),
        },
        config.topics.regressions.clone(),
    );
    let addr = config.http.detector;
    spawn_stage(config, stage, addr, inputs, shutdown).await
}

/// Runs the detector until `shutdown` is cancelled.
pub async fn run(config: Arc<Config>, shutdown: CancellationToken) -> Result<()> {
    spawn(config, shutdown).await?.wait().await
}

/// The detector core behind its input checks ([`validate`]): what they
/// reject is dead-lettered and never reaches the state.
#[derive(Debug)]
pub struct Checked {
    /// The core.
    pub detector: core::Detector,
    /// The topic names (which event type each input carries).
    pub topics: TopicsConfig,
}

impl Core for Checked {
    type Output = Regression;

    fn on_event(&mut self, event: &AnyEvent) -> Vec<Regression> {
        self.detector.on_event(event)
    }

    fn check(&self, topic: &str, event: &AnyEvent) -> Result<(), String> {
        validate::check(&self.topics, topic, event)
    }

    fn describe(o: &Regression) -> String {
        selfheal_common::describe::regression(o)
    }
}
