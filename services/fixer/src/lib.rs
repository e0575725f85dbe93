//! selfheal fixer: decides between rollback, fix-forward, notify and nothing, per
//! verdict; carries it out through executors and agent dispatchers; and checks
//! that the service recovered.
//!
//! # Layout
//! - [`policy`] (pure, sync, event time only): the rule table, the safety rails
//!   and the recovery check. Drivable from a backtest.
//! - the [`Core`] impl (adapter): the shared at-least-once consumer loop runs the
//!   policy over its inputs, publishing actions.

pub mod dispatch;
pub mod error;
pub mod executors;
pub mod policy;
pub mod text;

use std::sync::Arc;

use selfheal_common::consumer::{Core, CoreStage};
use selfheal_common::service::{spawn_stage, ServiceHandle};
use selfheal_common::{CancellationToken, Config, Result};
use selfheal_schemas::{Action, AnyEvent};

/// The service name.
pub const NAME: &str = "fixer";

/// Starts the fixer (consumer loop + health/metrics HTTP).
pub async fn spawn(config: Arc<Config>, shutdown: CancellationToken) -> Result<ServiceHandle> {
    let t = &config.topics;
    let inputs = vec![t.deploys.clone(), t.regressions.clone(), t.verdicts.clone()];
    let stage = CoreStage::new(
        NAME,
        policy::Policy::new(config.fixer.clone()),
        config.topics.actions.clone(),
    );
    let addr = config.http.fixer;
    spawn_stage(config, stage, addr, inputs, shutdown).await
}

/// Runs the fixer until `shutdown` is cancelled.
pub async fn run(config: Arc<Config>, shutdown: CancellationToken) -> Result<()> {
    spawn(config, shutdown).await?.wait().await
}

impl Core for policy::Policy {
    type Output = Action;

    fn on_event(&mut self, event: &AnyEvent) -> Vec<Action> {
        self.actions_for(event)
    }

    fn describe(o: &Action) -> String {
        format!(
            "{:?} ({:?}) for {} {} by rule {}",
            o.action, o.status, o.service, o.revision, o.rule
        )
    }
}
