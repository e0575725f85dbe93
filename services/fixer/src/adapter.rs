//! The fixer's adapter: the shared at-least-once consumer loop feeds the
//! [`Policy`]; decisions are published by the loop (their input's offset is
//! stored only once they are acknowledged), and jobs run on tokio tasks, off
//! the hot path, publishing their progress as updates of the same action.
//!
//! Order on the topic, and nothing announced that is not durable: a decided
//! action is published by the loop, and its job (which publishes
//! `in_progress`, then the outcome) and its notification start only when the
//! fixer reads that very update back from the actions topic, so `planned` is
//! always on the topic before `in_progress`, and Slack never hears of an
//! action Kafka has not acknowledged.
//!
//! Idempotence across restarts: before consuming, the fixer re-reads its own
//! actions topic from the beginning up to its current end and restores the
//! policy from it, so a verdict delivered again after a restart (or twice by
//! triage) finds its action already there. Actions that were executing when the
//! process stopped are reported failed, never silently re-run. The fixer also
//! consumes the actions topic as an input, which is how executor outcomes reach
//! the policy (a succeeded rollback starts its recovery watch).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use selfheal_common::config::{Config, RollbackExecutorKind};
use selfheal_common::consumer::{MessageMeta, Stage, StageError};
use selfheal_common::kafka::{EventProducer, Outgoing};
use selfheal_schemas::{Action, ActionStatus, AnyEvent};

use crate::dispatch::{self, FixDispatcher, Target};
use crate::error::{Error, Result};
use crate::executors::command::CommandExecutor;
use crate::executors::kube::{history::Workload, KubeExecutor};
use crate::executors::notify::Notifier;
use crate::executors::webhook::WebhookExecutor;
use crate::executors::{with_retries, RollbackExecutor};
use crate::policy::{Decided, Job, Policy};

/// The executors a fixer runs jobs with.
#[derive(Clone, Default)]
pub struct Executors {
    /// Rollback executor, if configured.
    pub rollback: Option<Arc<dyn RollbackExecutor>>,
    /// Fix-forward dispatcher, if configured.
    pub dispatcher: Option<Arc<dyn FixDispatcher>>,
    /// Notification sinks, if any is configured.
    pub notifier: Option<Arc<Notifier>>,
}

impl std::fmt::Debug for Executors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executors")
            .field("rollback", &self.rollback.as_ref().map(|e| e.name()))
            .field("dispatcher", &self.dispatcher.as_ref().map(|d| d.name()))
            .field("notifier", &self.notifier.is_some())
            .finish()
    }
}

impl Executors {
    /// Builds the configured executors; a broken template or a missing secret
    /// fails start-up rather than the first rollback.
    pub fn from_config(config: &Config) -> Result<Self> {
        let f = &config.fixer;
        let rollback: Option<Arc<dyn RollbackExecutor>> = match f.rollback.executor {
            RollbackExecutorKind::None => None,
            RollbackExecutorKind::Command => Some(Arc::new(CommandExecutor::new(&f.rollback)?)),
            RollbackExecutorKind::Webhook => Some(Arc::new(WebhookExecutor::new(&f.rollback)?)),
            RollbackExecutorKind::Kubernetes => Some(Arc::new(KubeExecutor::new(
                &f.rollback,
                Workload::Deployment,
            )?)),
            RollbackExecutorKind::ArgoRollouts => {
                Some(Arc::new(KubeExecutor::new(&f.rollback, Workload::Rollout)?))
            }
        };
        Ok(Self {
            rollback,
            dispatcher: dispatch::from_config(f)?,
            notifier: Notifier::from_config(&f.notify)?.map(Arc::new),
        })
    }
}

/// The fixer as a consumer-loop stage.
pub struct FixerStage {
    policy: Policy,
    config: Arc<Config>,
    executors: Executors,
    updates: EventProducer,
    /// Updates this process published, waiting to be read back from the
    /// actions topic (then durable) before their job and notification start.
    pending: HashMap<(String, ActionStatus), Option<Job>>,
}

impl std::fmt::Debug for FixerStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FixerStage")
            .field("executors", &self.executors)
            .finish_non_exhaustive()
    }
}

impl FixerStage {
    /// A stage running `policy`, executing jobs with `executors` and publishing
    /// their updates with `updates`.
    pub fn new(
        policy: Policy,
        config: Arc<Config>,
        executors: Executors,
        updates: EventProducer,
    ) -> Self {
        Self {
            policy,
            config,
            executors,
            updates,
            pending: HashMap::new(),
        }
    }

    /// An update read back from the actions topic: if this process decided
    /// it, it is now durable, so its notification and job may start.
    fn on_read_back(&mut self, a: &Action) {
        let Some(job) = self.pending.remove(&(a.id.clone(), a.status)) else {
            return;
        };
        self.announce(a);
        if let Some(job) = job {
            self.launch(a.clone(), job);
        }
    }

    /// Announces `action` on a task of its own (never holding up the loop).
    fn announce(&self, action: &Action) {
        if let Some(n) = &self.executors.notifier {
            let (n, action) = (n.clone(), action.clone());
            tokio::spawn(async move { n.notify(&action).await });
        }
    }

    fn launch(&self, action: Action, job: Job) {
        let executors = self.executors.clone();
        let producer = self.updates.clone();
        let topic = self.config.topics.actions.clone();
        let config = self.config.clone();
        tokio::spawn(async move {
            let mut running = action.clone();
            running.status = ActionStatus::InProgress;
            publish(&producer, &topic, &running).await;
            let mut done = running;
            match execute(&executors, &config, &job).await {
                Ok((detail, pr_url)) => {
                    done.status = ActionStatus::Succeeded;
                    done.reasons.push(detail);
                    done.pr_url = pr_url;
                }
                Err(e) => {
                    tracing::warn!(action = %done.id, error = %e, "action failed");
                    done.status = ActionStatus::Failed;
                    done.reasons.push(format!("failed: {e}"));
                }
            }
            tracing::info!(action = %done.id, status = ?done.status, service = %done.service,
                "{}", selfheal_common::describe::action(&done));
            publish(&producer, &topic, &done).await;
            if let Some(n) = &executors.notifier {
                n.notify(&done).await;
            }
        });
    }
}

async fn execute(
    executors: &Executors,
    config: &Config,
    job: &Job,
) -> Result<(String, Option<String>)> {
    let r = &config.fixer.rollback;
    match job {
        Job::Rollback(j) => {
            let exec = executors
                .rollback
                .as_ref()
                .ok_or_else(|| Error::Config("no rollback executor".to_owned()))?;
            let detail = with_retries(r.retries, Duration::from_millis(r.backoff_ms), |_| {
                exec.rollback(j)
            })
            .await?;
            Ok((
                format!("rolled back to {}: {detail}", j.target_revision),
                None,
            ))
        }
        Job::FixForward(req) => {
            let d = executors
                .dispatcher
                .as_ref()
                .ok_or_else(|| Error::Config("no fix-forward dispatcher".to_owned()))?;
            let target = Target::resolve(&config.fixer, req);
            // Dispatches are not blindly retried: a half-done one (an issue
            // opened, then a timeout) would be duplicated.
            let out = d.dispatch(req, &target).await?;
            Ok((
                format!("dispatched via {}: {}", d.name(), out.reference),
                out.pr_url,
            ))
        }
    }
}

/// Publishes an action update, retrying until Kafka acknowledges it (an
/// outcome must not be lost; the producer itself retries within its timeout).
async fn publish(producer: &EventProducer, topic: &str, action: &Action) {
    let msg = match Outgoing::event(topic, action) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "cannot encode an action update");
            return;
        }
    };
    let mut wait = Duration::from_millis(500);
    for attempt in 0..10 {
        match producer.send_all(std::slice::from_ref(&msg)).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(attempt, error = %e, action = %action.id, "action update not acknowledged; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(30));
            }
        }
    }
    tracing::error!(action = %action.id, status = ?action.status, "action update lost after retries");
}

impl Stage for FixerStage {
    fn name(&self) -> &'static str {
        crate::NAME
    }

    fn handle(
        &mut self,
        event: AnyEvent,
        _meta: &MessageMeta,
    ) -> Result<Vec<Outgoing>, StageError> {
        let decided = self.policy.on_event(&event);
        if let AnyEvent::Action(a) = &event {
            self.on_read_back(a);
        }
        let mut out = Vec::with_capacity(decided.len());
        for Decided { action, job } in decided {
            tracing::info!(
                stage = crate::NAME,
                action = ?action.action,
                status = ?action.status,
                service = %action.service,
                revision = %action.revision,
                rule = %action.rule,
                "{}",
                selfheal_common::describe::action(&action)
            );
            out.push(
                Outgoing::event(&self.config.topics.actions, &action)
                    .map_err(|e| StageError::Fatal(format!("cannot encode Action: {e}")))?,
            );
            // Bounded: an update that never comes back (the topic lost it)
            // must not pin memory; its job is then not run (a planned
            // action with no outcome, as after a crash), never run twice.
            if self.pending.len() >= MAX_PENDING {
                self.pending.clear();
            }
            self.pending.insert((action.id.clone(), action.status), job);
        }
        Ok(out)
    }
}

/// Most updates waiting to be read back (each is read back within moments).
const MAX_PENDING: usize = 10_000;

/// Reads `topic` from the beginning up to its end at the time of the call.
pub fn read_actions(
    config: &Config,
    topic: &str,
    timeout: Duration,
) -> selfheal_common::Result<Vec<Action>> {
    Ok(selfheal_common::kafka::read_to_end(
        &config.kafka,
        &format!("{}.fixer-restore", config.kafka.group_prefix),
        topic,
        timeout,
    )?
    .into_iter()
    .filter_map(|e| match e {
        AnyEvent::Action(a) => Some(a),
        _ => None,
    })
    .collect())
}
